package auth

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
)

// Where a $connect request may carry its token.
const (
	// TokenQueryParameter is the query string parameter of the default
	// identity source: wss://host/stage?token=JWT.
	TokenQueryParameter = "token"
	// AuthorizationHeader carries "Bearer JWT" for clients that can set headers.
	AuthorizationHeader = "Authorization"
	// SubprotocolHeader carries the token for browsers, which can set no other
	// header on a WebSocket handshake.
	SubprotocolHeader = "Sec-WebSocket-Protocol"

	// DefaultIdentitySource is the identity source the module configures by
	// default, and the one a Config without IdentitySource uses.
	DefaultIdentitySource = identityQueryPrefix + TokenQueryParameter

	identityQueryPrefix  = "route.request.querystring."
	identityHeaderPrefix = "route.request.header."
)

// identityName is API Gateway's pattern for the NAME of an identity source.
var identityName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// IdentitySource is the one place of a $connect request the token is taken
// from, written as in API Gateway's identity sources:
// route.request.querystring.NAME or route.request.header.NAME. Parse one with
// [ParseIdentitySource]; the zero value is not valid.
type IdentitySource struct {
	header bool
	name   string
}

// ParseIdentitySource parses route.request.querystring.NAME or
// route.request.header.NAME, NAME matching [A-Za-z0-9._-]+ as API Gateway
// requires.
func ParseIdentitySource(s string) (IdentitySource, error) {
	if name, ok := strings.CutPrefix(s, identityQueryPrefix); ok && identityName.MatchString(name) {
		return IdentitySource{name: name}, nil
	}
	if name, ok := strings.CutPrefix(s, identityHeaderPrefix); ok && identityName.MatchString(name) {
		return IdentitySource{header: true, name: name}, nil
	}
	return IdentitySource{}, fmt.Errorf("identity source %q: want %sNAME or %sNAME, NAME of letters, digits, '.', '_' or '-'", s, identityQueryPrefix, identityHeaderPrefix)
}

// String is the source in API Gateway's syntax.
func (s IdentitySource) String() string {
	if s.header {
		return identityHeaderPrefix + s.name
	}
	return identityQueryPrefix + s.name
}

// Token returns the JWT at this source of a $connect request, or "" when
// there is none. It looks nowhere else:
//
//   - a query string parameter is matched by its exact name;
//   - a header is matched case-insensitively, as HTTP requires, and a
//     "Bearer " prefix (any case) is stripped, so both "Authorization: Bearer
//     JWT" and "X-Token: JWT" work;
//   - the Sec-WebSocket-Protocol header holds the subprotocols a browser
//     offers: new WebSocket(url, ["my-protocol", jwt]). The first offered
//     value shaped like a compact JWT (three dot-separated base64url
//     segments, the first decoding to a JSON object) is the token; the others
//     are left for [ResponseSubprotocol].
func (s IdentitySource) Token(headers, query map[string]string) string {
	if !s.header {
		return query[s.name]
	}
	if strings.EqualFold(s.name, SubprotocolHeader) {
		for _, p := range offeredSubprotocols(headers) {
			if looksLikeJWT(p) {
				return p
			}
		}
		return ""
	}
	v := strings.TrimSpace(headerValue(headers, s.name))
	if scheme, rest, _ := strings.Cut(v, " "); strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(rest)
	}
	return v
}

// ResponseSubprotocol returns the value the $connect response must send back in
// Sec-WebSocket-Protocol, or "" when the client offered no subprotocol.
// Browsers fail the handshake when they offered subprotocols and the response
// names none, so a client that carries its token there gets its first
// non-token subprotocol back, or the token itself if it offered nothing else.
func ResponseSubprotocol(headers map[string]string) string {
	offered := offeredSubprotocols(headers)
	for _, p := range offered {
		if !looksLikeJWT(p) {
			return p
		}
	}
	if len(offered) > 0 {
		return offered[0]
	}
	return ""
}

func offeredSubprotocols(headers map[string]string) []string {
	var out []string
	for _, p := range strings.Split(headerValue(headers, SubprotocolHeader), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func headerValue(headers map[string]string, name string) string {
	if v, ok := headers[name]; ok {
		return v
	}
	for k, v := range headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// looksLikeJWT tells a compact JWS from a subprotocol name such as
// "wamp.2.json", which also has three dot-separated parts.
func looksLikeJWT(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return false
	}
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return false
	}
	header = bytes.TrimSpace(header)
	return len(header) > 0 && header[0] == '{'
}
