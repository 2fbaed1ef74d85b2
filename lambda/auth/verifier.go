package auth

import (
	"cmp"
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// DefaultUserClaim is the claim that becomes the context's userId.
	DefaultUserClaim = "sub"
	// DefaultChannelsClaim is the claim that becomes the context's channels.
	DefaultChannelsClaim = "channels"
	// MinSecretLength is the shortest HMAC secret accepted, in bytes. RFC 7518
	// section 3.2 requires a key at least as long as the hash output, 256 bits
	// for HS256.
	MinSecretLength = 32

	// TokenUseID is Amazon Cognito's token_use of an ID token, whose "aud" is
	// the app client id.
	TokenUseID = "id"
	// TokenUseAccess is Amazon Cognito's token_use of an access token, which
	// has no "aud" but a "client_id".
	TokenUseAccess = "access"

	// maxTokenLength bounds the work spent on one request; real tokens are a
	// few hundred bytes to a few KiB.
	maxTokenLength = 16 << 10
)

// Sentinel errors of [Verifier.Verify] and [Verifier.VerifyRequest]. Match them with errors.Is.
var (
	// ErrNoToken means the request carried no token; API Gateway answers 401.
	ErrNoToken = errors.New("no token in request")
	// ErrInvalidToken means a token was present but failed verification; the
	// authorizer answers with a Deny policy (403). The wrapped error says why.
	ErrInvalidToken = errors.New("invalid token")
)

// Config says how tokens are verified. Exactly one of Secret, PublicKeys and
// RemoteKeys must be set.
type Config struct {
	// Secret is the HMAC key for HS256, HS384 and HS512 tokens, at least
	// MinSecretLength bytes.
	Secret []byte
	// PublicKeys verify RS*, PS* and ES* tokens; see [ParsePublicKeys].
	PublicKeys []PublicKey
	// RemoteKeys verify RS*, PS* and ES* tokens with a key set fetched from
	// an identity provider's jwks_uri; see [NewRemoteJWKS].
	RemoteKeys *RemoteJWKS
	// Issuer, when set, must equal the token's "iss".
	Issuer string
	// Audience, when set, must be one of the token's "aud" values, or, when
	// TokenUse is TokenUseAccess, equal its "client_id" (Amazon Cognito's
	// access tokens carry the app client id there and have no "aud").
	Audience string
	// TokenUse, when set, must equal the token's "token_use" claim, which
	// Amazon Cognito sets: TokenUseID for ID tokens, TokenUseAccess for access
	// tokens.
	TokenUse string
	// UserClaim names the claim that becomes userId; DefaultUserClaim when empty.
	UserClaim string
	// ChannelsClaim names the claim that becomes channels; DefaultChannelsClaim when empty.
	ChannelsClaim string
	// IdentitySource is where [Verifier.VerifyRequest] takes the token from,
	// in API Gateway's syntax (see [ParseIdentitySource]);
	// DefaultIdentitySource when empty. No other place is looked at.
	IdentitySource string
	// Now is the clock for exp and nbf; time.Now when nil.
	Now func() time.Time
	// Leeway is the clock skew tolerated on exp and nbf; zero tolerates
	// none ([ConfigFromEnv] defaults to DefaultLeeway).
	Leeway time.Duration
}

// Identity is what a verified token says about its bearer.
type Identity struct {
	// UserID is the user claim as a string. A number keeps its exact digits
	// (ids above 2^53 stay distinct) without a fraction of zeros: 42 and 42.0
	// are the user "42", -0 is "0" (see the package doc for what is refused).
	UserID string
	// Channels is the channels claim as comma-separated glob patterns, each
	// trimmed of white space at its ends, without empty entries; "" when the
	// claim is absent. (A pattern with white space inside matches no channel:
	// channel names have none.)
	Channels string
	// Claims holds every claim of the token; JSON numbers are json.Number.
	Claims map[string]any
}

// Verifier checks JWTs against one configured key source. It is safe for
// concurrent use.
type Verifier struct {
	secret        []byte
	keys          []PublicKey
	remote        *RemoteJWKS
	tokenUse      string
	clientID      string // the client_id access tokens must carry; "" checks none
	parser        *jwt.Parser
	source        IdentitySource
	userClaim     string
	channelsClaim string
}

// NewVerifier validates cfg and returns a Verifier for it.
func NewVerifier(cfg Config) (*Verifier, error) {
	v := &Verifier{
		userClaim:     cmp.Or(cfg.UserClaim, DefaultUserClaim),
		channelsClaim: cmp.Or(cfg.ChannelsClaim, DefaultChannelsClaim),
	}
	if cfg.Leeway < 0 {
		return nil, fmt.Errorf("new verifier: leeway %s is negative", cfg.Leeway)
	}
	var err error
	if v.source, err = ParseIdentitySource(cmp.Or(cfg.IdentitySource, DefaultIdentitySource)); err != nil {
		return nil, fmt.Errorf("new verifier: %w", err)
	}
	switch cfg.TokenUse {
	case "", TokenUseID, TokenUseAccess:
		v.tokenUse = cfg.TokenUse
	default:
		return nil, fmt.Errorf("new verifier: token use %q: want %q, %q or none", cfg.TokenUse, TokenUseID, TokenUseAccess)
	}
	sources := 0
	for _, set := range []bool{len(cfg.Secret) > 0, len(cfg.PublicKeys) > 0, cfg.RemoteKeys != nil} {
		if set {
			sources++
		}
	}
	var methods []string
	switch {
	case sources > 1:
		return nil, errors.New("new verifier: more than one of a secret, public keys and a remote key set are configured; set exactly one")
	case cfg.RemoteKeys != nil:
		v.remote = cfg.RemoteKeys
		methods = remoteAlgorithms
	case len(cfg.Secret) > 0:
		if len(cfg.Secret) < MinSecretLength {
			return nil, fmt.Errorf("new verifier: secret is %d bytes; HS256 needs at least %d", len(cfg.Secret), MinSecretLength)
		}
		v.secret = slices.Clone(cfg.Secret)
		methods = []string{"HS256", "HS384", "HS512"}
	case len(cfg.PublicKeys) > 0:
		for i, k := range cfg.PublicKeys {
			algs := algorithmsFor(k.Key)
			if algs == nil {
				return nil, fmt.Errorf("new verifier: public key %d (kid %q) is a %T; want an RSA key or an EC key on P-256, P-384 or P-521", i, k.KeyID, k.Key)
			}
			if k.Algorithm != "" {
				if !slices.Contains(algs, k.Algorithm) {
					return nil, fmt.Errorf("new verifier: public key %d (kid %q) cannot verify %s", i, k.KeyID, k.Algorithm)
				}
				algs = []string{k.Algorithm}
			}
			for _, a := range algs {
				if !slices.Contains(methods, a) {
					methods = append(methods, a)
				}
			}
		}
		v.keys = slices.Clone(cfg.PublicKeys)
	default:
		return nil, errors.New("new verifier: no key configured; set a secret, public keys or a remote key set")
	}

	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), // a token issued in the future (beyond the leeway) is refused
		jwt.WithJSONNumber(),
		jwt.WithLeeway(cfg.Leeway),
	}
	if cfg.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(cfg.Now))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	switch {
	case cfg.Audience == "":
	case cfg.TokenUse == TokenUseAccess:
		v.clientID = cfg.Audience
	default:
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// VerifyRequest takes the token from the configured identity source of a
// request's headers and query string (see [IdentitySource.Token]) and
// verifies it. It returns ErrNoToken when the source holds none.
func (v *Verifier) VerifyRequest(ctx context.Context, headers, query map[string]string) (Identity, error) {
	return v.Verify(ctx, v.source.Token(headers, query))
}

// Verify checks a compact JWT: signature with an allowed algorithm, exp
// (required), nbf, iss and aud, then extracts the user and channels claims.
// An empty token yields ErrNoToken; every other failure wraps ErrInvalidToken.
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, error) {
	if err := ctx.Err(); err != nil {
		return Identity{}, fmt.Errorf("verify token: %w", err)
	}
	if token == "" {
		return Identity{}, ErrNoToken
	}
	if len(token) > maxTokenLength {
		return Identity{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, maxTokenLength)
	}
	keyfunc := v.key
	if v.remote != nil {
		v.remote.refreshIfStale(ctx)
		keyfunc = func(t *jwt.Token) (any, error) { return v.remoteKey(ctx, t) }
	}
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(token, claims, keyfunc); err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if err := v.checkCognitoClaims(claims); err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	user, err := userFromClaim(claims, v.userClaim)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	channels, err := channelsFromClaim(claims, v.channelsClaim)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return Identity{UserID: user, Channels: channels, Claims: claims}, nil
}

// key is the jwt.Keyfunc for a secret or static public keys. It runs after
// the algorithm passed WithValidMethods and checks again that the key type
// fits the algorithm, so a public key can never be used as an HMAC secret.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	kid, hasKid, err := tokenKeyID(t)
	if err != nil {
		return nil, err
	}
	if v.secret != nil {
		if _, ok := t.Method.(*jwt.SigningMethodHMAC); !ok {
			return nil, fmt.Errorf("algorithm %s does not use a shared secret", t.Method.Alg())
		}
		return v.secret, nil
	}
	return selectPublicKey(v.keys, t.Method.Alg(), kid, hasKid)
}

// remoteKey is the jwt.Keyfunc for a remote key set: a kid the set lacks
// triggers one refetch (rate-limited by the RemoteJWKS) and one more look.
func (v *Verifier) remoteKey(ctx context.Context, t *jwt.Token) (any, error) {
	kid, hasKid, err := tokenKeyID(t)
	if err != nil {
		return nil, err
	}
	set := v.remote.current()
	key, err := selectPublicKey(set.keys, t.Method.Alg(), kid, hasKid)
	var unknown *unknownKeyError
	if !errors.As(err, &unknown) || !v.remote.refreshForUnknownKey(ctx, set, kid) {
		return key, err
	}
	return selectPublicKey(v.remote.current().keys, t.Method.Alg(), kid, hasKid)
}

// tokenKeyID refuses critical header extensions and returns the "kid"
// header. Headers that point at keys elsewhere ("jku", "x5u", "jwk", "x5c")
// are never followed: keys come from configuration only.
func tokenKeyID(t *jwt.Token) (kid string, hasKid bool, err error) {
	if _, ok := t.Header["crit"]; ok {
		return "", false, errors.New("critical header extensions are not supported")
	}
	raw, hasKid := t.Header["kid"]
	if !hasKid {
		return "", false, nil
	}
	kid, ok := raw.(string)
	if !ok {
		return "", false, errors.New("kid header is not a string")
	}
	return kid, true, nil
}

// unknownKeyError means no configured key fits the token's algorithm and kid.
type unknownKeyError struct {
	alg, kid string
	hasKid   bool
}

func (e *unknownKeyError) Error() string {
	if e.hasKid {
		return fmt.Sprintf("no %s key with kid %q", e.alg, e.kid)
	}
	return fmt.Sprintf("no %s key configured", e.alg)
}

// selectPublicKey picks the keys able to verify an alg token with the given
// kid: a token naming a kid we know uses only that key; otherwise keys
// without a kid (PEM) are tried, never keys published under another kid.
func selectPublicKey(keys []PublicKey, alg, kid string, hasKid bool) (any, error) {
	fits := func(k PublicKey) bool {
		return slices.Contains(algorithmsFor(k.Key), alg) && (k.Algorithm == "" || k.Algorithm == alg)
	}
	var exact, anonymous []crypto.PublicKey
	for _, k := range keys {
		if !fits(k) {
			continue
		}
		switch {
		case !hasKid || k.KeyID == kid:
			exact = append(exact, k.Key)
		case k.KeyID == "":
			anonymous = append(anonymous, k.Key)
		}
	}
	candidates := exact
	if len(candidates) == 0 {
		candidates = anonymous
	}
	switch len(candidates) {
	case 0:
		return nil, &unknownKeyError{alg: alg, kid: kid, hasKid: hasKid}
	case 1:
		return candidates[0], nil
	}
	set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, 0, len(candidates))}
	for _, k := range candidates {
		set.Keys = append(set.Keys, k)
	}
	return set, nil
}

// checkCognitoClaims applies TokenUse and, for access tokens, the audience
// as client_id.
func (v *Verifier) checkCognitoClaims(claims jwt.MapClaims) error {
	if v.tokenUse != "" {
		if use, _ := claims["token_use"].(string); use != v.tokenUse {
			return fmt.Errorf("token_use is %q, want %q", use, v.tokenUse)
		}
	}
	if v.clientID != "" {
		if id, _ := claims["client_id"].(string); id != v.clientID {
			return errors.New("client_id is not the configured audience")
		}
	}
	return nil
}

// channelsFromClaim accepts a JSON array of strings or one comma-separated
// string and returns the patterns joined by commas.
func channelsFromClaim(claims jwt.MapClaims, name string) (string, error) {
	var patterns []string
	switch v := claims[name].(type) {
	case nil:
		return "", nil
	case string:
		patterns = strings.Split(v, ",")
	case []any:
		for i, item := range v {
			s, ok := item.(string)
			if !ok {
				return "", fmt.Errorf("claim %q item %d is a %T, want a string", name, i, item)
			}
			if strings.Contains(s, ",") {
				return "", fmt.Errorf("claim %q item %d contains a comma", name, i)
			}
			patterns = append(patterns, s)
		}
	default:
		return "", fmt.Errorf("claim %q is a %T, want an array of strings or a comma-separated string", name, v)
	}
	out := patterns[:0]
	for _, p := range patterns {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ","), nil
}
