package pusher

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// App is one Pusher application: the id the HTTP API names in its paths,
// the public key clients connect with and the secret both sides sign with.
type App struct {
	// ID is the app id (soketi's default "app-id").
	ID string
	// Key is the public key in ws://HOST/app/{key} (default "app-key").
	Key string
	// Secret signs channel and user authentications and HTTP API requests (default "app-secret").
	Secret string
}

// Default app credentials: soketi's well-known local defaults.
const (
	DefaultAppID     = "app-id"
	DefaultAppKey    = "app-key"
	DefaultAppSecret = "app-secret"
)

// appName is what an app id and key may be, as the module requires: they
// are the URL paths /apps/{id} and /app/{key}, and the key is the part of
// every signature before its ':'.
var appName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidAppName reports whether s may be an app id or key: 1 to 64 letters,
// digits, '-' or '_'.
func ValidAppName(s string) bool { return appName.MatchString(s) }

// Validate reports an app whose id or key no client could reach (another
// character than a letter, a digit, '-' or '_', or more than 64), or one
// without a secret.
func (a App) Validate() error {
	switch {
	case !ValidAppName(a.ID):
		return fmt.Errorf("pusher: app id %q: want 1 to 64 letters, digits, '-' or '_' (it is the URL path /apps/{id})", a.ID)
	case !ValidAppName(a.Key):
		return fmt.Errorf("pusher: app key %q: want 1 to 64 letters, digits, '-' or '_' (it is the URL path /app/{key} and the part of a signature before ':')", a.Key)
	case a.Secret == "":
		return errors.New("pusher: the app secret is required")
	}
	return nil
}

// sign returns hex(HMAC-SHA256(secret, msg)).
func sign(secret, msg string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(msg))
	return hex.EncodeToString(mac.Sum(nil))
}

// equal compares two signatures in constant time.
func equal(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

// ChannelSignature is the signature of a channel authorisation:
// hex(HMAC-SHA256(secret, socket_id:channel)) for private channels and
// hex(HMAC-SHA256(secret, socket_id:channel:channel_data)) for presence channels.
func ChannelSignature(secret, socketID, channel, channelData string) string {
	msg := socketID + ":" + channel
	if channelData != "" {
		msg += ":" + channelData
	}
	return sign(secret, msg)
}

// UserSignature is the signature of pusher:signin: hex(HMAC-SHA256(secret, socket_id::user::user_data)).
func UserSignature(secret, socketID, userData string) string {
	return sign(secret, socketID+"::user::"+userData)
}

// ChannelAuth is the auth string a client presents: "key:signature".
func (a App) ChannelAuth(socketID, channel, channelData string) string {
	return a.Key + ":" + ChannelSignature(a.Secret, socketID, channel, channelData)
}

// UserAuth is the auth string of pusher:signin: "key:signature".
func (a App) UserAuth(socketID, userData string) string {
	return a.Key + ":" + UserSignature(a.Secret, socketID, userData)
}

// verifyAuth checks "key:signature" against want in constant time.
func (a App) verifyAuth(auth, wantSignature string) bool {
	key, sig, ok := strings.Cut(auth, ":")
	if !ok {
		return false
	}
	keyOK := equal(key, a.Key)
	sigOK := equal(sig, wantSignature)
	return keyOK && sigOK
}

// VerifyChannelAuth reports whether auth authorises socketID on channel (with
// channelData for presence channels).
func (a App) VerifyChannelAuth(auth, socketID, channel, channelData string) bool {
	return a.verifyAuth(auth, ChannelSignature(a.Secret, socketID, channel, channelData))
}

// VerifyUserAuth reports whether auth signs userData for socketID.
func (a App) VerifyUserAuth(auth, socketID, userData string) bool {
	return a.verifyAuth(auth, UserSignature(a.Secret, socketID, userData))
}

// MaxRequestAge is how far auth_timestamp may be from the server's clock.
const MaxRequestAge = 600 * time.Second

// ErrBadSignature is returned by VerifyRequest for a missing, stale or wrong signature.
var ErrBadSignature = errors.New("bad signature")

// RequestSignature is auth_signature of an HTTP API request:
// hex(HMAC-SHA256(secret, METHOD\nPATH\nsorted query)), where the query is
// every parameter but auth_signature, keys lower-cased, sorted by key, as
// key=value joined with "&", values not escaped.
func RequestSignature(secret, method, path string, query url.Values) string {
	return sign(secret, stringToSign(method, path, query))
}

func stringToSign(method, path string, query url.Values) string {
	lower := map[string]string{}
	for k, vs := range query {
		if len(vs) > 0 {
			lower[strings.ToLower(k)] = vs[len(vs)-1]
		}
	}
	return canonicalStringToSign(method, path, lower)
}

// canonicalStringToSign is the string to sign from a query whose keys are
// lower-cased, one value each.
func canonicalStringToSign(method, path string, query map[string]string) string {
	keys := make([]string, 0, len(query))
	for k := range query {
		if k != "auth_signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + query[k]
	}
	return strings.ToUpper(method) + "\n" + path + "\n" + strings.Join(parts, "&")
}

// canonicalQuery is query with its keys lower-cased and one value each. A
// key given more than once, in any case, is refused: the checks and the
// signature must read the same values (with two auth_timestamp or
// body_md5, one could be checked and the other signed, and a captured
// request replayed with any body).
func canonicalQuery(query url.Values) (map[string]string, error) {
	out := make(map[string]string, len(query))
	for k, vs := range query {
		lk := strings.ToLower(k)
		if _, dup := out[lk]; dup || len(vs) != 1 {
			return nil, fmt.Errorf("%w: query parameter %s given more than once", ErrBadSignature, lk)
		}
		out[lk] = vs[0]
	}
	return out, nil
}

// BodyMD5 is the body_md5 parameter of a request with a body.
func BodyMD5(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}

// VerifyRequest checks an HTTP API request's auth_key, auth_timestamp (within
// MaxRequestAge of now), auth_version 1.0, body_md5 (when there is a body)
// and auth_signature. Its error says what is wrong, safe to send back.
func (a App) VerifyRequest(method, path string, values url.Values, body []byte, now time.Time) error {
	query, err := canonicalQuery(values)
	if err != nil {
		return err
	}
	if !equal(query["auth_key"], a.Key) {
		return fmt.Errorf("%w: unknown auth_key", ErrBadSignature)
	}
	if v := query["auth_version"]; v != "1.0" {
		return fmt.Errorf("%w: auth_version must be 1.0", ErrBadSignature)
	}
	ts, err := strconv.ParseInt(query["auth_timestamp"], 10, 64)
	if err != nil {
		return fmt.Errorf("%w: auth_timestamp missing or not a number", ErrBadSignature)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > MaxRequestAge || d < -MaxRequestAge {
		return fmt.Errorf("%w: timestamp expired: auth_timestamp must be within %d seconds of the server time", ErrBadSignature, int(MaxRequestAge.Seconds()))
	}
	if len(body) > 0 {
		if _, ok := query["body_md5"]; !ok {
			return fmt.Errorf("%w: body_md5 missing: a request with a body must sign its MD5 in body_md5", ErrBadSignature)
		}
		if !equal(query["body_md5"], BodyMD5(body)) {
			return fmt.Errorf("%w: body_md5 does not match the body", ErrBadSignature)
		}
	}
	if want := canonicalStringToSign(method, path, query); !equal(query["auth_signature"], sign(a.Secret, want)) {
		return fmt.Errorf("%w: invalid signature: you should have sent HmacSHA256Hex(%q, your_secret_key)", ErrBadSignature, want)
	}
	return nil
}
