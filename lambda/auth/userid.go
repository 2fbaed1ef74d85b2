package auth

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxUserIDLength is the longest userId accepted, in bytes of UTF-8.
//
// OpenID Connect Core 1.0 (section 2) says a "sub" "MUST NOT exceed 255 ASCII
// characters", so no identity provider issues longer ones. The bound matters
// beyond the spec: the userId becomes part of a DynamoDB key (the user index's
// partition key, "u#"+userId), and DynamoDB refuses a key attribute over 2,048
// bytes, so an unbounded claim turned the handshake into a 500; it also
// travels in the authorizer context API Gateway attaches to every event of
// the connection, and into every log line.
const MaxUserIDLength = 255

// integralNumber is a JSON number that denotes an integer when written
// without exponent: digits with an optional fraction of zeros ("42", "-7",
// "42.0").
var integralNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.0+)?$`)

// userFromClaim turns the user claim into the userId, so that one user is
// always one userId and two users never share one:
//
//   - a string is used exactly as written, never trimmed or case-folded
//     (that could merge two subjects); it is refused when it is empty, starts
//     or ends with white space, holds a control character (NUL, newline, DEL,
//     C1 controls) or U+FFFD (which is what invalid UTF-8 and lone surrogates
//     in the token decode to), or is longer than MaxUserIDLength bytes;
//   - a JSON number must be an integer; it keeps its exact digits (so ids
//     above 2^53 stay distinct), a fraction of zeros is dropped ("42.0" and
//     "42" are the same number, so the same user, "42") and "-0" is "0". A
//     non-integral number (42.5) and exponent notation (4.2e1, which would
//     make the work depend on the exponent) are refused.
//
// The error says why, never what the value was: it is logged.
func userFromClaim(claims map[string]any, name string) (string, error) {
	var id string
	switch v := claims[name].(type) {
	case string:
		if strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("claim %q is empty or blank", name)
		}
		id = v
	case json.Number:
		s := v.String()
		if !integralNumber.MatchString(s) {
			return "", fmt.Errorf("claim %q is a number that is not an integer written with digits only", name)
		}
		s, _, _ = strings.Cut(s, ".")
		if s == "-0" {
			s = "0"
		}
		id = s
	case nil:
		return "", fmt.Errorf("claim %q is missing", name)
	default:
		return "", fmt.Errorf("claim %q is a %T, want a string or a number", name, v)
	}
	if len(id) > MaxUserIDLength {
		return "", fmt.Errorf("claim %q is %d bytes long; at most %d are allowed", name, len(id), MaxUserIDLength)
	}
	if !utf8.ValidString(id) {
		return "", fmt.Errorf("claim %q is not valid UTF-8", name)
	}
	first, _ := utf8.DecodeRuneInString(id)
	last, _ := utf8.DecodeLastRuneInString(id)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return "", fmt.Errorf("claim %q starts or ends with white space", name)
	}
	for i, r := range id {
		switch {
		case unicode.IsControl(r):
			return "", fmt.Errorf("claim %q holds control character %U at byte %d", name, r, i)
		case r == utf8.RuneError:
			return "", fmt.Errorf("claim %q holds U+FFFD at byte %d (invalid UTF-8 or a lone surrogate in the token)", name, i)
		}
	}
	return id, nil
}
