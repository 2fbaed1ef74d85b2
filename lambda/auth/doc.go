// Package auth is the built-in JWT REQUEST authorizer of the WebSocket API.
//
// API Gateway calls the authorizer once per connection, on $connect. The
// authorizer finds a JWT in the request (see [TokenFromRequest]), verifies it
// with a [Verifier] and answers with an IAM policy plus an authorizer context
// that API Gateway hands to every later route of the connection:
//
//	userId    the user claim (default "sub"): a string as written, or an integer's digits;
//	          at most MaxUserIDLength bytes, no control characters or edge white space;
//	          42.0 is 42, other fractions are refused (docs/module.md lists the rules)
//	channels  the channels claim (default "channels") as comma-separated glob patterns
//	          naming the private-* channels the user may join; "" when absent
//
// # Keys and algorithms
//
// A [Verifier] holds one of: a shared secret (HS256, HS384, HS512), one or
// more public keys (RS256/384/512 and PS256/384/512 for RSA keys,
// ES256/ES384/ES512 for P-256/P-384/P-521 keys), or a [RemoteJWKS] fetched
// from an identity provider's https jwks_uri and refetched when a token names
// an unknown kid (at most once a minute). The accepted
// algorithms follow from the configured key type, so "alg": "none" and
// algorithm confusion (an HS256 token signed with the public key as HMAC
// secret) are refused before any signature is checked. Public keys come as PEM
// (several blocks allowed) or as JWKS JSON; a token's "kid" header selects the
// JWKS key; "jku", "x5u" and "jwk" headers are never followed. Tokens must
// carry "exp"; "nbf" is honoured when present (both with Config.Leeway of
// clock skew); "iss" and "aud" are required to match when configured, and
// Amazon Cognito's "token_use" when Config.TokenUse is set (for access tokens
// the audience is compared with "client_id").
//
// # How a refusal reaches the client
//
// API Gateway turns the authorizer's answer into the status of the WebSocket
// handshake. [Authorizer.Handle] answers:
//
//	no token in the request            error "Unauthorized"  -> 401 Unauthorized
//	token present but not valid        explicit Deny policy  -> 403 Forbidden
//	valid token                        Allow policy + context -> handshake proceeds
//
// The 401 for a missing token is what API Gateway itself answers when an
// identity source is configured and absent, so both paths look the same to a
// client. Handle returns another error only for an event without methodArn or
// a cancelled context; API Gateway reports those as 500. [HTTPStatus] applies
// API Gateway's mapping to any authorizer answer, so a local gateway can mirror
// it for this and for user-supplied authorizers; [IsUnauthorized] matches the
// "Unauthorized" error by message, as API Gateway does.
//
// # Where the token comes from
//
// From exactly one place, the identity source (Config.IdentitySource, default
// route.request.querystring.token); see [IdentitySource.Token]. A header
// source strips a "Bearer " prefix. With route.request.header.Sec-WebSocket-Protocol
// a browser, which can set no other header, offers the token as a subprotocol
// next to a named one; the $connect route must echo the value
// [ResponseSubprotocol] picks, or browsers abort the handshake.
//
// Tokens and secrets are never logged.
package auth
