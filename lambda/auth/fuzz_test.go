package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// FuzzVerifyClaims signs any payload with the right HS256 secret: Verify
// never panics, refuses with ErrInvalidToken, or accepts a user id of 1 to
// MaxUserIDLength bytes of valid UTF-8 without control characters or edge
// white space, and channel patterns without edge white space or empty
// entries.
func FuzzVerifyClaims(f *testing.F) {
	exp := jsonInt(testNow.Unix() + 3600)
	for _, seed := range []string{
		`{"sub":"alice","exp":` + exp + `}`,
		`{"sub":42,"exp":` + exp + `,"channels":"private-a,presence-*"}`,
		`{"sub":42.0,"exp":` + exp + `,"channels":["private-a","b*"]}`,
		`{"sub":"x","exp":` + exp + `,"nbf":1,"iat":1,"aud":"a","iss":"i"}`,
		`{"sub":null,"exp":` + exp + `}`, `{"exp":"soon"}`, `[]`, `{}`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	v, err := NewVerifier(Config{Secret: []byte(testSecret), Now: fixedNow})
	require.NoError(f, err)
	header := b64url([]byte(`{"alg":"HS256","typ":"JWT"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		signed := header + "." + b64url(payload)
		sig, err := jwt.SigningMethodHS256.Sign(signed, []byte(testSecret))
		require.NoError(t, err)
		id, err := v.Verify(context.Background(), signed+"."+b64url(sig))
		if err != nil {
			require.True(t, errors.Is(err, ErrInvalidToken), "%q: %v", payload, err)
			return
		}
		u := id.UserID
		require.True(t, len(u) >= 1 && len(u) <= MaxUserIDLength && utf8.ValidString(u), "%q: user %q", payload, u)
		require.Equal(t, strings.TrimSpace(u), u, "%q: user %q", payload, u)
		require.False(t, strings.ContainsFunc(u, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }), "%q: user %q", payload, u)
		if id.Channels != "" {
			for _, p := range strings.Split(id.Channels, ",") {
				require.True(t, p != "" && strings.TrimSpace(p) == p, "%q: channels %q", payload, id.Channels)
			}
		}
	})
}
