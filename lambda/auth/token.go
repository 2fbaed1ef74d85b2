package auth

import (
	"bytes"
	"encoding/base64"
	"strings"
)

// Where a $connect request may carry its token.
const (
	// TokenQueryParameter is the query string parameter holding a token:
	// wss://host/stage?token=JWT.
	TokenQueryParameter = "token"
	// AuthorizationHeader carries "Bearer JWT" for clients that can set headers.
	AuthorizationHeader = "Authorization"
	// SubprotocolHeader carries the token for browsers, which can set no other
	// header on a WebSocket handshake.
	SubprotocolHeader = "Sec-WebSocket-Protocol"
)

// TokenFromRequest returns the JWT of a $connect request, or "" when there is
// none. It looks, in this order, at:
//
//  1. the "token" query string parameter;
//  2. the Authorization header with the Bearer scheme (scheme case-insensitive;
//     other schemes are ignored);
//  3. the Sec-WebSocket-Protocol header. A browser offers the token as one of
//     its subprotocols, next to the real one:
//     new WebSocket(url, ["my-protocol", jwt]). The first offered value shaped
//     like a compact JWT (three dot-separated base64url segments, the first
//     decoding to a JSON object) is the token; the others are left for
//     [ResponseSubprotocol].
//
// Header names match case-insensitively, as HTTP requires.
func TokenFromRequest(headers, query map[string]string) string {
	if t := query[TokenQueryParameter]; t != "" {
		return t
	}
	if scheme, t, ok := strings.Cut(strings.TrimSpace(headerValue(headers, AuthorizationHeader)), " "); ok && strings.EqualFold(scheme, "Bearer") {
		if t = strings.TrimSpace(t); t != "" {
			return t
		}
	}
	for _, p := range offeredSubprotocols(headers) {
		if looksLikeJWT(p) {
			return p
		}
	}
	return ""
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
