package auth

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUserFromClaim(t *testing.T) {
	tests := []struct {
		name    string
		claim   any
		want    string
		wantErr string
	}{
		{name: "string", claim: "user-1", want: "user-1"},
		{name: "Cognito sub", claim: "8a6e0804-2bd0-4672-b79d-d97027f9071a", want: "8a6e0804-2bd0-4672-b79d-d97027f9071a"},
		{name: "Auth0 sub with a pipe", claim: "auth0|5f7c8ec7c33c6c004bbafe82", want: "auth0|5f7c8ec7c33c6c004bbafe82"},
		{name: "non-ASCII letters", claim: "jürgen", want: "jürgen"},
		{name: "inner spaces are kept", claim: "Jane Doe", want: "Jane Doe"},
		{name: "255 bytes", claim: strings.Repeat("a", 255), want: strings.Repeat("a", 255)},
		{name: "256 bytes", claim: strings.Repeat("a", 256), wantErr: "256 bytes long; at most 255"},
		{name: "the bound counts bytes, not characters", claim: strings.Repeat("é", 128), wantErr: "256 bytes long"},
		{name: "3,000 bytes", claim: strings.Repeat("a", 3000), wantErr: "3000 bytes long"},
		{name: "empty", claim: "", wantErr: "empty or blank"},
		{name: "blank", claim: " \t\n", wantErr: "empty or blank"},
		{name: "leading space is not trimmed into another user", claim: " alice", wantErr: "starts or ends with white space"},
		{name: "trailing no-break space", claim: "alice\u00a0", wantErr: "starts or ends with white space"},
		{name: "NUL", claim: "al\x00ice", wantErr: "control character U+0000 at byte 2"},
		{name: "newline inside", claim: "al\nice", wantErr: "control character U+000A"},
		{name: "DEL", claim: "alice\x7f", wantErr: "control character U+007F"},
		{name: "C1 control", claim: "alice\u0085x", wantErr: "control character U+0085"},
		{name: "replacement character", claim: "al\ufffdice", wantErr: "U+FFFD at byte 2"},
		{name: "integer keeps its digits", claim: json.Number("42"), want: "42"},
		{name: "above 2^53 keeps its exact digits", claim: json.Number("9007199254740993"), want: "9007199254740993"},
		{name: "negative integer", claim: json.Number("-7"), want: "-7"},
		{name: "42.0 is 42", claim: json.Number("42.0"), want: "42"},
		{name: "42.000 is 42", claim: json.Number("42.000"), want: "42"},
		{name: "-0 is 0", claim: json.Number("-0.0"), want: "0"},
		{name: "fraction", claim: json.Number("42.5"), wantErr: "not an integer"},
		{name: "exponent", claim: json.Number("4.2e1"), wantErr: "not an integer"},
		{name: "huge exponent is refused, not evaluated", claim: json.Number("1e999999999"), wantErr: "not an integer"},
		{name: "300-digit integer", claim: json.Number(strings.Repeat("9", 300)), wantErr: "300 bytes long"},
		{name: "missing", claim: nil, wantErr: "missing"},
		{name: "boolean", claim: true, wantErr: "is a bool"},
		{name: "object", claim: map[string]any{"id": "x"}, wantErr: "is a map[string]interface {}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := userFromClaim(map[string]any{"sub": tt.claim}, "sub")
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// A token whose payload holds invalid UTF-8 in the sub is refused: the JSON
// decoder turns the bad byte into U+FFFD, which userFromClaim refuses.
func TestVerifyRefusesInvalidUTF8InTheSub(t *testing.T) {
	header := b64url([]byte(`{"alg":"HS256","typ":"JWT"}`))
	payload := b64url([]byte("{\"sub\":\"al\xffice\",\"exp\":" + jsonInt(testNow.Unix()+3600) + "}"))
	sig, err := jwt.SigningMethodHS256.Sign(header+"."+payload, []byte(testSecret))
	require.NoError(t, err)
	token := header + "." + payload + "." + b64url(sig)

	v := mustVerifier(t, Config{Secret: []byte(testSecret)})
	_, err = v.Verify(context.Background(), token)
	require.ErrorIs(t, err, ErrInvalidToken)
	assert.ErrorContains(t, err, "U+FFFD")
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
