package auth

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// Environment variables read by [ConfigFromEnv]. Exactly one of the seven key
// sources must be set.
const (
	// EnvSecret is the HS256 secret itself.
	EnvSecret = "WS_JWT_SECRET"
	// EnvSecretSSMParameter names an SSM parameter (SecureString) holding the secret.
	EnvSecretSSMParameter = "WS_JWT_SECRET_SSM_PARAMETER"
	// EnvSecretARN is the ARN of a Secrets Manager secret holding the secret.
	EnvSecretARN = "WS_JWT_SECRET_ARN"
	// EnvPublicKey is PEM or JWKS JSON itself.
	EnvPublicKey = "WS_JWT_PUBLIC_KEY"
	// EnvPublicKeySSMParameter names an SSM parameter holding PEM or JWKS JSON.
	EnvPublicKeySSMParameter = "WS_JWT_PUBLIC_KEY_SSM_PARAMETER"
	// EnvPublicKeySecretARN is the ARN of a Secrets Manager secret holding PEM or JWKS JSON.
	EnvPublicKeySecretARN = "WS_JWT_PUBLIC_KEY_SECRET_ARN"
	// EnvJWKSURL is an identity provider's https jwks_uri, fetched at cold
	// start and refetched as [RemoteJWKS] describes.
	EnvJWKSURL = "WS_JWT_JWKS_URL"
	// EnvTokenUse, when set, is the "token_use" claim tokens must carry
	// (Amazon Cognito): "id" or "access". With "access", EnvAudience is
	// compared with the token's "client_id" instead of "aud".
	EnvTokenUse = "WS_JWT_TOKEN_USE"
	// EnvIssuer is the required "iss", if any.
	EnvIssuer = "WS_JWT_ISSUER"
	// EnvAudience is the required "aud", if any.
	EnvAudience = "WS_JWT_AUDIENCE"
	// EnvUserClaim names the userId claim (default sub).
	EnvUserClaim = "WS_JWT_USER_CLAIM"
	// EnvChannelsClaim names the channels claim (default channels).
	EnvChannelsClaim = "WS_JWT_CHANNELS_CLAIM"
	// EnvLeeway is the clock skew tolerated on exp and nbf: a Go duration
	// ("5s", "1m30s") or a whole number of seconds ("5"); DefaultLeeway when
	// unset. A negative or unreadable value fails start-up.
	EnvLeeway = "WS_JWT_LEEWAY"
	// EnvIdentitySource is the one place the token is taken from,
	// route.request.querystring.NAME or route.request.header.NAME
	// (DefaultIdentitySource when unset); the module sets it to its
	// authorizer's first identity source.
	EnvIdentitySource = "WS_JWT_IDENTITY_SOURCE"
)

// DefaultLeeway is the clock skew [ConfigFromEnv] tolerates when EnvLeeway is
// unset: enough for clocks kept by NTP, too little to matter for expiry.
const DefaultLeeway = 5 * time.Second

// ParameterGetter is the part of the SSM client ConfigFromEnv uses.
type ParameterGetter interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// SecretGetter is the part of the Secrets Manager client ConfigFromEnv uses.
type SecretGetter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

var (
	_ ParameterGetter = (*ssm.Client)(nil)
	_ SecretGetter    = (*secretsmanager.Client)(nil)
)

// EnvClients are what [ConfigFromEnv] may need to load a key. A field may be
// nil when its source is not configured.
type EnvClients struct {
	// SSM reads WS_JWT_SECRET_SSM_PARAMETER and WS_JWT_PUBLIC_KEY_SSM_PARAMETER.
	SSM ParameterGetter
	// SecretsManager reads WS_JWT_SECRET_ARN and WS_JWT_PUBLIC_KEY_SECRET_ARN.
	SecretsManager SecretGetter
	// HTTP fetches WS_JWT_JWKS_URL; nil means a client with the system's root
	// certificates (see [JWKSConfig]).
	HTTP *http.Client
	// Logger receives the JWKS fetch log lines; nil means slog.Default().
	Logger *slog.Logger
}

type keySource struct {
	env    string
	public bool
	remote bool // an https JWKS URL rather than key bytes
	fetch  func(ctx context.Context, value string, params ParameterGetter, secrets SecretGetter) ([]byte, error)
}

var keySources = []keySource{
	{env: EnvSecret, fetch: inlineValue},
	{env: EnvSecretSSMParameter, fetch: parameterValue},
	{env: EnvSecretARN, fetch: secretValue},
	{env: EnvPublicKey, public: true, fetch: inlineValue},
	{env: EnvPublicKeySSMParameter, public: true, fetch: parameterValue},
	{env: EnvPublicKeySecretARN, public: true, fetch: secretValue},
	{env: EnvJWKSURL, remote: true},
}

// ConfigFromEnv builds a Config from the WS_JWT_* environment variables read
// through getenv, fetching the key once from SSM (with decryption) or Secrets
// Manager when the variable names one, or the key set from WS_JWT_JWKS_URL.
// Secrets fetched from SSM or Secrets Manager are used byte for byte; a
// Secrets Manager secret may be a string or binary.
func ConfigFromEnv(ctx context.Context, getenv func(string) string, clients EnvClients) (Config, error) {
	var chosen []keySource
	for _, s := range keySources {
		if getenv(s.env) != "" {
			chosen = append(chosen, s)
		}
	}
	switch len(chosen) {
	case 0:
		names := make([]string, len(keySources))
		for i, s := range keySources {
			names[i] = s.env
		}
		return Config{}, fmt.Errorf("load JWT config: no key configured; set one of %s", strings.Join(names, ", "))
	case 1:
	default:
		names := make([]string, len(chosen))
		for i, s := range chosen {
			names[i] = s.env
		}
		return Config{}, fmt.Errorf("load JWT config: %s are all set; set exactly one key source", strings.Join(names, " and "))
	}

	src := chosen[0]
	leeway, err := ParseLeeway(getenv(EnvLeeway))
	if err != nil {
		return Config{}, fmt.Errorf("load JWT config: %s: %w", EnvLeeway, err)
	}
	source := strings.TrimSpace(getenv(EnvIdentitySource))
	if source != "" {
		if _, err := ParseIdentitySource(source); err != nil {
			return Config{}, fmt.Errorf("load JWT config: %s: %w", EnvIdentitySource, err)
		}
	}
	tokenUse := strings.TrimSpace(getenv(EnvTokenUse))
	if tokenUse != "" && tokenUse != TokenUseID && tokenUse != TokenUseAccess {
		return Config{}, fmt.Errorf("load JWT config: %s=%q: want %q or %q", EnvTokenUse, tokenUse, TokenUseID, TokenUseAccess)
	}
	cfg := Config{
		Issuer:         getenv(EnvIssuer),
		Audience:       getenv(EnvAudience),
		UserClaim:      strings.TrimSpace(getenv(EnvUserClaim)),
		ChannelsClaim:  strings.TrimSpace(getenv(EnvChannelsClaim)),
		IdentitySource: source,
		TokenUse:       tokenUse,
		Leeway:         leeway,
	}
	if src.remote {
		remote, err := NewRemoteJWKS(ctx, JWKSConfig{URL: strings.TrimSpace(getenv(src.env)), Client: clients.HTTP, Logger: clients.Logger})
		if err != nil {
			return Config{}, fmt.Errorf("load JWT config from %s: %w", src.env, err)
		}
		cfg.RemoteKeys = remote
		return cfg, nil
	}
	data, err := src.fetch(ctx, getenv(src.env), clients.SSM, clients.SecretsManager)
	if err != nil {
		return Config{}, fmt.Errorf("load JWT config from %s: %w", src.env, err)
	}
	if len(data) == 0 {
		return Config{}, fmt.Errorf("load JWT config from %s: the key is empty", src.env)
	}
	if src.public {
		if cfg.PublicKeys, err = ParsePublicKeys(data); err != nil {
			return Config{}, fmt.Errorf("load JWT config from %s: %w", src.env, err)
		}
	} else {
		cfg.Secret = data
	}
	return cfg, nil
}

// ParseLeeway reads a clock-skew tolerance as [EnvLeeway] spells it: a Go
// duration ("5s", "500ms", "1m") or a whole number of seconds ("5"). Empty
// means DefaultLeeway; a negative or unreadable value is an error.
func ParseLeeway(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultLeeway, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseInt(s, 10, 32)
		if nerr != nil {
			return 0, fmt.Errorf("leeway %q: want a duration such as 5s or a whole number of seconds", s)
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 {
		return 0, fmt.Errorf("leeway %q is negative", s)
	}
	return d, nil
}

func inlineValue(_ context.Context, value string, _ ParameterGetter, _ SecretGetter) ([]byte, error) {
	return []byte(value), nil
}

func parameterValue(ctx context.Context, name string, params ParameterGetter, _ SecretGetter) ([]byte, error) {
	name = strings.TrimSpace(name)
	if params == nil {
		return nil, fmt.Errorf("get SSM parameter %s: no SSM client", name)
	}
	out, err := params.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("get SSM parameter %s: %w", name, err)
	}
	if out == nil || out.Parameter == nil || out.Parameter.Value == nil {
		return nil, fmt.Errorf("get SSM parameter %s: response has no value", name)
	}
	return []byte(*out.Parameter.Value), nil
}

func secretValue(ctx context.Context, arn string, _ ParameterGetter, secrets SecretGetter) ([]byte, error) {
	arn = strings.TrimSpace(arn)
	if secrets == nil {
		return nil, fmt.Errorf("get secret %s: no Secrets Manager client", arn)
	}
	out, err := secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("get secret %s: %w", arn, err)
	}
	switch {
	case out == nil:
		return nil, fmt.Errorf("get secret %s: empty response", arn)
	case out.SecretString != nil:
		return []byte(*out.SecretString), nil
	case out.SecretBinary != nil:
		return out.SecretBinary, nil
	default:
		return nil, fmt.Errorf("get secret %s: neither SecretString nor SecretBinary is set", arn)
	}
}

// SecretFromEnv reads a secret that configuration gives in one of three
// ways: the value itself in inlineEnv, the name or ARN of an SSM parameter
// (a SecureString, read with decryption) in ssmEnv, or the ARN of a Secrets
// Manager secret in arnEnv. At most one may be set; found is false when none
// is. Fetched values are used byte for byte, like the JWT keys of
// [ConfigFromEnv].
func SecretFromEnv(ctx context.Context, getenv func(string) string, clients EnvClients, inlineEnv, ssmEnv, arnEnv string) (secret []byte, found bool, err error) {
	sources := []keySource{
		{env: inlineEnv, fetch: inlineValue},
		{env: ssmEnv, fetch: parameterValue},
		{env: arnEnv, fetch: secretValue},
	}
	var set []string
	var src keySource
	for _, s := range sources {
		if getenv(s.env) != "" {
			set = append(set, s.env)
			src = s
		}
	}
	switch len(set) {
	case 0:
		return nil, false, nil
	case 1:
	default:
		return nil, true, fmt.Errorf("load secret: %s are all set; set exactly one", strings.Join(set, " and "))
	}
	data, err := src.fetch(ctx, getenv(src.env), clients.SSM, clients.SecretsManager)
	if err != nil {
		return nil, true, fmt.Errorf("load secret from %s: %w", src.env, err)
	}
	if len(data) == 0 {
		return nil, true, fmt.Errorf("load secret from %s: the value is empty", src.env)
	}
	return data, true, nil
}
