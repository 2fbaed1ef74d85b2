package sender

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// postSigner computes the SigV4 Authorization of the lean path's one request
// shape: POST {path} with Content-Length, Content-Type
// application/octet-stream, Host, X-Amz-Date and, with temporary
// credentials, X-Amz-Security-Token, an empty query, and the payload's hash
// given. It writes exactly the canonical request v4.Signer.SignHTTP writes
// for that request (TestPostSignerMatchesSDKSigner compares the two byte for
// byte), with the standard library's crypto/sha256 and crypto/hmac, but it
// does not rebuild a header map, sort header names or allocate an HMAC per
// call: the signed header list is fixed, the derived key and its keyed HMAC
// state are kept per access key, day, region and service (as the SDK caches
// the derived key), and X-Amz-Date is formatted once a second. SigV4
// signing was the largest user-space item of a post left on the lean path
// (docs/benchmarks.md, "CPU per post").
//
// Values the SDK would normalise (a host or session token with spaces or
// control characters, where SigV4 trims and collapses whitespace) are signed
// by v4.Signer itself instead.
type postSigner struct {
	region string
	sdk    *v4.Signer
	key    atomic.Pointer[derivedKey]
	date   atomic.Pointer[amzDate]
	bufs   sync.Pool // *[]byte scratch for the canonical request and string to sign
}

// derivedKey is the SigV4 signing key of one secret on one day, with a pool
// of HMAC-SHA256 states keyed with it (hmac's Reset goes back to the keyed
// state, so a signature costs two short hashes and no key schedule).
type derivedKey struct {
	accessKey, secret, day string
	scope                  string // day/region/execute-api/aws4_request
	credential             string // "Credential=" + access key + "/" + scope
	macs                   sync.Pool
}

// amzDate is one second's X-Amz-Date.
type amzDate struct {
	unix int64
	text string // 20060102T150405Z
}

func newPostSigner(region string) *postSigner {
	return &postSigner{region: region, sdk: v4.NewSigner()}
}

// signed is what a signed post adds to its request.
type signed struct {
	date, authorization, token string
}

// sign signs POST {escapedPath} to host with a body of length bytes hashing
// to payloadHash (hex). host is the Host header value as sent: without the
// scheme's default port.
func (s *postSigner) sign(creds aws.Credentials, host, escapedPath string, length int, payloadHash string, now time.Time) (signed, error) {
	if !plainHeaderValue(host) || !plainHeaderValue(creds.SessionToken) {
		return s.signWithSDK(creds, host, escapedPath, length, payloadHash, now)
	}
	date := s.amzDate(now)
	key := s.derived(creds, date[:8])

	// The canonical request, as v4.Signer builds it for this request.
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer s.bufs.Put(bp)
	cr := append((*bp)[:0], "POST\n"...)
	cr = appendEscapePath(cr, escapedPath, false)
	cr = append(cr, "\n\n"...)
	if length > 0 {
		cr = append(cr, "content-length:"...)
		cr = strconv.AppendInt(cr, int64(length), 10)
		cr = append(cr, '\n')
	}
	cr = append(cr, "content-type:application/octet-stream\nhost:"...)
	cr = append(cr, host...)
	cr = append(cr, "\nx-amz-date:"...)
	cr = append(cr, date...)
	cr = append(cr, '\n')
	if creds.SessionToken != "" {
		cr = append(cr, "x-amz-security-token:"...)
		cr = append(cr, creds.SessionToken...)
		cr = append(cr, '\n')
	}
	cr = append(cr, '\n')
	signedHeaders := signedHeaderList(length > 0, creds.SessionToken != "")
	cr = append(cr, signedHeaders...)
	cr = append(cr, '\n')
	cr = append(cr, payloadHash...)
	crHash := sha256.Sum256(cr)

	// The string to sign and its HMAC under the derived key.
	sts := append(cr[:0], "AWS4-HMAC-SHA256\n"...)
	sts = append(sts, date...)
	sts = append(sts, '\n')
	sts = append(sts, key.scope...)
	sts = append(sts, '\n')
	sts = hex.AppendEncode(sts, crHash[:])
	mac := key.mac()
	mac.Write(sts)
	b := mac.Sum(sts) // the signature, after the string to sign
	key.macs.Put(mac)
	sig := b[len(sts):]

	// The Authorization header, after both in the same scratch buffer.
	n := len(b)
	b = append(b, "AWS4-HMAC-SHA256 "...)
	b = append(b, key.credential...)
	b = append(b, ", SignedHeaders="...)
	b = append(b, signedHeaders...)
	b = append(b, ", Signature="...)
	b = hex.AppendEncode(b, sig)
	auth := string(b[n:])
	*bp = b[:0] // keep the grown buffer for the next call
	return signed{date: date, authorization: auth, token: creds.SessionToken}, nil
}

// signWithSDK signs the same request with v4.Signer and reads back what it set.
func (s *postSigner) signWithSDK(creds aws.Credentials, host, escapedPath string, length int, payloadHash string, now time.Time) (signed, error) {
	// Opaque carries the escaped path as it is (v4.Signer reads the path
	// from it), whatever the host looks like.
	req := &http.Request{Method: http.MethodPost, URL: &url.URL{Scheme: "https", Opaque: "//" + host + escapedPath}, Host: host, Header: http.Header{}, Body: http.NoBody}
	req = req.WithContext(context.Background())
	req.ContentLength = int64(length)
	req.Header.Set("Content-Type", "application/octet-stream")
	if err := s.sdk.SignHTTP(req.Context(), creds, req, payloadHash, signingService, s.region, now.UTC()); err != nil {
		return signed{}, err
	}
	return signed{date: req.Header.Get("X-Amz-Date"), authorization: req.Header.Get("Authorization"), token: req.Header.Get("X-Amz-Security-Token")}, nil
}

// set puts the signature's headers on h.
func (sg signed) set(h http.Header) {
	h["X-Amz-Date"] = []string{sg.date}
	h["Authorization"] = []string{sg.authorization}
	if sg.token != "" {
		h["X-Amz-Security-Token"] = []string{sg.token}
	}
}

// plainHeaderValue reports whether v is printable ASCII with no spaces, so
// SigV4's whitespace trimming leaves it as it is.
func plainHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f {
			return false
		}
	}
	return true
}

func signedHeaderList(withLength, withToken bool) string {
	switch {
	case withLength && withToken:
		return "content-length;content-type;host;x-amz-date;x-amz-security-token"
	case withLength:
		return "content-length;content-type;host;x-amz-date"
	case withToken:
		return "content-type;host;x-amz-date;x-amz-security-token"
	default:
		return "content-type;host;x-amz-date"
	}
}

// amzDate returns now's X-Amz-Date, formatted once per second.
func (s *postSigner) amzDate(now time.Time) string {
	now = now.UTC()
	sec := now.Unix()
	if d := s.date.Load(); d != nil && d.unix == sec {
		return d.text
	}
	d := &amzDate{unix: sec, text: now.Format("20060102T150405Z")}
	s.date.Store(d)
	return d.text
}

// derived returns the signing key of creds on day (yyyymmdd), derived once.
func (s *postSigner) derived(creds aws.Credentials, day string) *derivedKey {
	if k := s.key.Load(); k != nil && k.day == day && k.accessKey == creds.AccessKeyID && k.secret == creds.SecretAccessKey {
		return k
	}
	step := func(key []byte, data string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(data))
		return m.Sum(nil)
	}
	key := step([]byte("AWS4"+creds.SecretAccessKey), day)
	key = step(key, s.region)
	key = step(key, signingService)
	key = step(key, "aws4_request")
	scope := day + "/" + s.region + "/" + signingService + "/aws4_request"
	k := &derivedKey{accessKey: creds.AccessKeyID, secret: creds.SecretAccessKey, day: day, scope: scope,
		credential: "Credential=" + creds.AccessKeyID + "/" + scope}
	k.macs.New = func() any { return hmac.New(sha256.New, key) }
	s.key.Store(k)
	return k
}

// mac returns an HMAC-SHA256 state keyed with the derived key, reset.
func (k *derivedKey) mac() hash.Hash {
	m := k.macs.Get().(hash.Hash)
	m.Reset()
	return m
}

// appendEscapePath appends s escaped as smithy's httpbinding.EscapePath
// escapes a path (every byte but A-Z a-z 0-9 - . _ ~, and '/' unless
// encodeSep, as %XX with upper-case hex), without its per-byte fmt call.
func appendEscapePath(dst []byte, s string, encodeSep bool) []byte {
	const upperHex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~', c == '/' && !encodeSep:
			dst = append(dst, c)
		default:
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return dst
}
