package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const fixtureMethodArn = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/production/$connect"

// loadConnectEvent reads the $connect authorizer event fixture.
func loadConnectEvent(t *testing.T) Request {
	t.Helper()
	raw, err := os.ReadFile("testdata/apigw-websocket-request-authorizer-connect.json")
	require.NoError(t, err, "read fixture")
	var req Request
	require.NoError(t, json.Unmarshal(raw, &req), "decode fixture")
	require.Equal(t, "REQUEST", req.Type)
	require.Equal(t, fixtureMethodArn, req.MethodArn)
	require.Equal(t, "$connect", req.RequestContext.RouteKey)
	require.Equal(t, "CONNECT", req.RequestContext.EventType)
	require.Equal(t, "Sq3SXeq5IAMCJ8g=", req.RequestContext.ConnectionID)
	return req
}

// newTestAuthorizer verifies HS256 tokens taken from identity source
// (DefaultIdentitySource when "").
func newTestAuthorizer(t *testing.T, logs *bytes.Buffer, source string) *Authorizer {
	t.Helper()
	a, err := NewAuthorizer(mustVerifier(t, Config{Secret: []byte(testSecret), Issuer: "https://issuer.example", IdentitySource: source}),
		slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	return a
}

func TestHandle(t *testing.T) {
	valid := signToken(t, jwt.SigningMethodHS256, []byte(testSecret), baseClaims(), nil)
	expired := signToken(t, jwt.SigningMethodHS256, []byte(testSecret), claimsWith(func(c jwt.MapClaims) { c["exp"] = testNow.Add(-time.Hour).Unix() }), nil)
	none := signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, baseClaims(), nil)
	withSub := func(sub any) string {
		return signToken(t, jwt.SigningMethodHS256, []byte(testSecret), claimsWith(func(c jwt.MapClaims) { c["sub"] = sub }), nil)
	}
	numeric := signToken(t, jwt.SigningMethodHS256, []byte(testSecret), claimsWith(func(c jwt.MapClaims) {
		c["sub"] = 42
		c["channels"] = "private-a, private-b.*"
	}), nil)

	allowWith := func(user, channels string) events.APIGatewayCustomAuthorizerResponse {
		return events.APIGatewayCustomAuthorizerResponse{
			PrincipalID: user,
			PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
				Version:   "2012-10-17",
				Statement: []events.IAMPolicyStatement{{Action: []string{"execute-api:Invoke"}, Effect: "Allow", Resource: []string{fixtureMethodArn}}},
			},
			Context: map[string]any{"userId": user, "channels": channels},
		}
	}
	deny := events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: "anonymous",
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version:   "2012-10-17",
			Statement: []events.IAMPolicyStatement{{Action: []string{"execute-api:Invoke"}, Effect: "Deny", Resource: []string{fixtureMethodArn}}},
		},
	}

	const (
		authorizationSource = "route.request.header.Authorization"
		subprotocolSource   = "route.request.header.Sec-WebSocket-Protocol"
	)
	tests := []struct {
		name string
		// source is the authorizer's identity source; "" is the default.
		source     string
		edit       func(r *Request)
		want       events.APIGatewayCustomAuthorizerResponse
		wantErr    error
		wantStatus int
		// wantReason is a substring of the logged reason of a refusal.
		wantReason string
	}{
		{
			name:       "token in the query string",
			edit:       func(r *Request) { r.QueryStringParameters["token"] = valid },
			want:       allowWith("user-1", "private-team-1,private-chat.*"),
			wantStatus: http.StatusOK,
		},
		{
			name:   "Bearer token only in multiValueHeaders",
			source: authorizationSource,
			edit: func(r *Request) {
				r.MultiValueHeaders["Authorization"] = []string{"Bearer " + valid}
			},
			want:       allowWith("user-1", "private-team-1,private-chat.*"),
			wantStatus: http.StatusOK,
		},
		{
			name:   "token as a subprotocol",
			source: subprotocolSource,
			edit: func(r *Request) {
				r.Headers["Sec-WebSocket-Protocol"] = "chat.v1, " + numeric
			},
			want:       allowWith("42", "private-a,private-b.*"),
			wantStatus: http.StatusOK,
		},
		{
			name:       "no token",
			edit:       func(*Request) {},
			wantErr:    ErrUnauthorized,
			wantStatus: http.StatusUnauthorized,
		},
		{
			name:       "no query string at all",
			edit:       func(r *Request) { r.QueryStringParameters, r.MultiValueQueryStringParameters = nil, nil },
			wantErr:    ErrUnauthorized,
			wantStatus: http.StatusUnauthorized,
		},
		{
			name:       "expired token",
			edit:       func(r *Request) { r.QueryStringParameters["token"] = expired },
			want:       deny,
			wantStatus: http.StatusForbidden,
		},
		{
			name:       "alg none",
			edit:       func(r *Request) { r.QueryStringParameters["token"] = none },
			want:       deny,
			wantStatus: http.StatusForbidden,
		},
		{
			name:       "malformed token",
			source:     authorizationSource,
			edit:       func(r *Request) { r.Headers["Authorization"] = "Bearer garbage" },
			want:       deny,
			wantStatus: http.StatusForbidden,
		},
		// The token comes from the configured identity source and nowhere else.
		{
			name:   "header source ignores the query string",
			source: authorizationSource,
			edit: func(r *Request) {
				r.QueryStringParameters["token"] = valid
				r.Headers["Authorization"] = "Bearer " + expired
			},
			want:       deny,
			wantStatus: http.StatusForbidden,
			wantReason: "token is expired",
		},
		{
			name:       "header source without the header",
			source:     authorizationSource,
			edit:       func(r *Request) { r.QueryStringParameters["token"] = valid },
			wantErr:    ErrUnauthorized,
			wantStatus: http.StatusUnauthorized,
		},
		{
			name: "query source ignores the headers",
			edit: func(r *Request) {
				r.Headers["Authorization"] = "Bearer " + valid
				r.Headers["Sec-WebSocket-Protocol"] = valid
			},
			wantErr:    ErrUnauthorized,
			wantStatus: http.StatusUnauthorized,
		},
		{
			name:       "custom header without Bearer",
			source:     "route.request.header.X-Auth-Token",
			edit:       func(r *Request) { r.Headers["x-auth-token"] = valid },
			want:       allowWith("user-1", "private-team-1,private-chat.*"),
			wantStatus: http.StatusOK,
		},
		{
			name:   "custom query parameter",
			source: "route.request.querystring.access_token",
			edit: func(r *Request) {
				r.QueryStringParameters["access_token"] = valid
				r.QueryStringParameters["token"] = expired
			},
			want:       allowWith("user-1", "private-team-1,private-chat.*"),
			wantStatus: http.StatusOK,
		},
		// The user claim is bounded and normalised (review item 17).
		{
			name:       "3,000-byte sub",
			edit:       func(r *Request) { r.QueryStringParameters["token"] = withSub(strings.Repeat("a", 3000)) },
			want:       deny,
			wantStatus: http.StatusForbidden,
			wantReason: `claim "sub" is 3000 bytes long; at most 255 are allowed`,
		},
		{
			name:       "blank sub",
			edit:       func(r *Request) { r.QueryStringParameters["token"] = withSub("  ") },
			want:       deny,
			wantStatus: http.StatusForbidden,
			wantReason: `claim "sub" is empty or blank`,
		},
		{
			name:       "NUL in sub",
			edit:       func(r *Request) { r.QueryStringParameters["token"] = withSub("user\x001") },
			want:       deny,
			wantStatus: http.StatusForbidden,
			wantReason: `claim "sub" holds control character U+0000`,
		},
		{
			name:       "42.0 is the user 42",
			edit:       func(r *Request) { r.QueryStringParameters["token"] = withSub(json.Number("42.0")) },
			want:       allowWith("42", "private-team-1,private-chat.*"),
			wantStatus: http.StatusOK,
		},
		{
			name:       "non-integral numeric sub",
			edit:       func(r *Request) { r.QueryStringParameters["token"] = withSub(json.Number("42.5")) },
			want:       deny,
			wantStatus: http.StatusForbidden,
			wantReason: `claim "sub" is a number that is not an integer`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			a := newTestAuthorizer(t, &logs, tt.source)
			req := loadConnectEvent(t)
			tt.edit(&req)

			got, err := a.Handle(context.Background(), req)
			assert.Equal(t, tt.wantStatus, HTTPStatus(got, err, req.MethodArn))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Equal(t, "Unauthorized", err.Error(), "API Gateway matches the exact message")
				assert.Equal(t, events.APIGatewayCustomAuthorizerResponse{}, got)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
			}

			var line map[string]any
			require.NoError(t, json.Unmarshal(logs.Bytes(), &line), "one JSON log line: %s", logs.String())
			assert.Equal(t, "Sq3SXeq5IAMCJ8g=", line["connectionId"])
			assert.Equal(t, "$connect", line["routeKey"])
			if tt.wantReason != "" {
				assert.Contains(t, line["reason"], tt.wantReason)
			}
			for _, secret := range []string{testSecret, valid, expired, none, numeric, "garbage"} {
				assert.NotContains(t, logs.String(), secret, "logs must not contain tokens or secrets")
			}
		})
	}
}

func TestHandleResponseWireFormat(t *testing.T) {
	a := newTestAuthorizer(t, &bytes.Buffer{}, "")
	req := loadConnectEvent(t)
	req.QueryStringParameters["token"] = signToken(t, jwt.SigningMethodHS256, []byte(testSecret), baseClaims(), nil)

	resp, err := a.Handle(context.Background(), req)
	require.NoError(t, err)
	got, err := json.Marshal(resp)
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"principalId": "user-1",
		"policyDocument": {
			"Version": "2012-10-17",
			"Statement": [{
				"Action": ["execute-api:Invoke"],
				"Effect": "Allow",
				"Resource": ["arn:aws:execute-api:us-east-1:123456789012:abcdef123/production/$connect"]
			}]
		},
		"context": {"userId": "user-1", "channels": "private-team-1,private-chat.*"}
	}`, string(got))
}

func TestHandleWithoutMethodArnIsAServerError(t *testing.T) {
	a := newTestAuthorizer(t, &bytes.Buffer{}, "")
	req := loadConnectEvent(t)
	req.MethodArn = ""
	req.QueryStringParameters["token"] = signToken(t, jwt.SigningMethodHS256, []byte(testSecret), baseClaims(), nil)

	resp, err := a.Handle(context.Background(), req)
	require.ErrorContains(t, err, "authorize connection Sq3SXeq5IAMCJ8g=: event has no methodArn")
	assert.False(t, IsUnauthorized(err))
	assert.Equal(t, http.StatusInternalServerError, HTTPStatus(resp, err, ""))
}

func TestNewAuthorizerRequiresItsParts(t *testing.T) {
	_, err := NewAuthorizer(nil, slog.Default())
	require.ErrorContains(t, err, "nil verifier")
	_, err = NewAuthorizer(mustVerifier(t, Config{Secret: []byte(testSecret)}), nil)
	require.ErrorContains(t, err, "nil logger")
}

func TestIsUnauthorized(t *testing.T) {
	assert.True(t, IsUnauthorized(ErrUnauthorized))
	assert.True(t, IsUnauthorized(errors.New("Unauthorized")), "an error rebuilt from a Lambda errorMessage")
	assert.False(t, IsUnauthorized(nil))
	assert.False(t, IsUnauthorized(errors.New("unauthorized")))
	assert.False(t, IsUnauthorized(errors.New("Unauthorized: expired")))
}

func TestAllows(t *testing.T) {
	const arn = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/$connect"
	stmt := func(effect string, action, resource string) events.IAMPolicyStatement {
		return events.IAMPolicyStatement{Effect: effect, Action: []string{action}, Resource: []string{resource}}
	}
	tests := []struct {
		name       string
		statements []events.IAMPolicyStatement
		want       bool
	}{
		{name: "no statement", want: false},
		{name: "exact allow", statements: []events.IAMPolicyStatement{stmt("Allow", "execute-api:Invoke", arn)}, want: true},
		{name: "wildcard resource", statements: []events.IAMPolicyStatement{stmt("Allow", "execute-api:Invoke", "arn:aws:execute-api:eu-west-1:123456789012:abc123/*")}, want: true},
		{name: "question mark", statements: []events.IAMPolicyStatement{stmt("Allow", "execute-api:Invoke", "arn:aws:execute-api:eu-west-1:123456789012:abc12?/prod/$connect")}, want: true},
		{name: "star action", statements: []events.IAMPolicyStatement{stmt("Allow", "*", "*")}, want: true},
		{name: "service wildcard action, any case", statements: []events.IAMPolicyStatement{stmt("Allow", "Execute-API:*", arn)}, want: true},
		{name: "other API", statements: []events.IAMPolicyStatement{stmt("Allow", "execute-api:Invoke", "arn:aws:execute-api:eu-west-1:123456789012:zzz999/*")}, want: false},
		{name: "resources are case-sensitive", statements: []events.IAMPolicyStatement{stmt("Allow", "execute-api:Invoke", "arn:aws:execute-api:eu-west-1:123456789012:ABC123/*")}, want: false},
		{name: "other action", statements: []events.IAMPolicyStatement{stmt("Allow", "execute-api:ManageConnections", arn)}, want: false},
		{name: "explicit deny wins", statements: []events.IAMPolicyStatement{stmt("Allow", "*", "*"), stmt("Deny", "execute-api:Invoke", arn)}, want: false},
		{name: "deny elsewhere does not matter", statements: []events.IAMPolicyStatement{stmt("Deny", "execute-api:Invoke", "arn:aws:execute-api:eu-west-1:123456789012:abc123/dev/*"), stmt("Allow", "execute-api:Invoke", arn)}, want: true},
		{name: "unknown effect", statements: []events.IAMPolicyStatement{stmt("Maybe", "execute-api:Invoke", arn)}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Allows(events.APIGatewayCustomAuthorizerPolicy{Version: "2012-10-17", Statement: tt.statements}, arn))
		})
	}
}

// A "*" in the ARN is an ordinary character: the Deny's "*" must still match
// any run of characters there, not only a literal "*" (review item 14).
func TestAllowsDenyWithStarInTheARN(t *testing.T) {
	for _, arn := range []string{
		"arn:aws:execute-api:eu-west-1:123456789012:abc123/a*b/$connect",
		"arn:aws:execute-api:eu-west-1:123456789012:abc123/*x/$connect",
		"arn:aws:execute-api:eu-west-1:123456789012:abc123/x*/$connect",
		"arn:aws:execute-api:eu-west-1:123456789012:abc123/?/$connect",
	} {
		policy := events.APIGatewayCustomAuthorizerPolicy{Version: "2012-10-17", Statement: []events.IAMPolicyStatement{
			{Effect: "Allow", Action: []string{"execute-api:Invoke"}, Resource: []string{"*"}},
			{Effect: "Deny", Action: []string{"execute-api:Invoke"}, Resource: []string{"arn:aws:execute-api:eu-west-1:123456789012:abc123/*/$connect"}},
		}}
		assert.False(t, Allows(policy, arn), "the Deny must win for %s", arn)
	}
}

func TestWildcardMatch(t *testing.T) {
	for _, tt := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"a*c", "abbbc", true},
		{"a*c", "abbbd", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxcyyb", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"**", "xyz", true},
		{"*a", "bbbab", false},
		// Wildcards are special in the pattern only; in s they are plain characters.
		{"a*c", "a*bc", true},
		{"*/x", "*b/x", true},
		{"a*", "a*", true},
		{"a?c", "a*c", true},
		{"a*b", "a*c", false},
		{"x*y*z", "x*y*q*z", true},
	} {
		assert.Equal(t, tt.want, wildcardMatch(tt.pattern, tt.s), "%q ~ %q", tt.pattern, tt.s)
	}
}
