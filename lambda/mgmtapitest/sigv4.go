package mgmtapitest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SigV4 makes the server verify every management API call's Signature
// Version 4 signature as API Gateway does, recomputing it with the SDK's own
// signer from the known credentials, the region and the service execute-api.
type SigV4 struct {
	// Credentials are the only ones the server accepts.
	Credentials aws.Credentials
	// Region is the signing region. Default us-east-1.
	Region string
	// MaxSkew is how far X-Amz-Date may be from the server's clock. Default
	// 15 minutes (AWS's limit).
	MaxSkew time.Duration
}

// SigningService is the SigV4 service name of the management API.
const SigningService = "execute-api"

// TestCredentials are the credentials the benchmark client signs with and the
// benchmark stand-in accepts.
var TestCredentials = aws.Credentials{AccessKeyID: "AKIDMGMTAPITEST", SecretAccessKey: "mgmtapitest-secret-key", Source: "mgmtapitest"}

// The 403 answers of API Gateway to unsigned or wrongly signed calls: the
// error type in x-amzn-ErrorType and the message of the JSON body.
const (
	ErrorTypeMissingToken     = "MissingAuthenticationTokenException"
	MessageMissingToken       = "Missing Authentication Token"
	ErrorTypeInvalidSignature = "InvalidSignatureException"
	MessageInvalidSignature   = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	ErrorTypeUnrecognized     = "UnrecognizedClientException"
	MessageUnrecognized       = "The security token included in the request is invalid."
)

const (
	sigv4Algorithm = "AWS4-HMAC-SHA256"
	amzDateFormat  = "20060102T150405Z"
)

// sigv4Verifier recomputes signatures with the SDK's signer.
type sigv4Verifier struct {
	cfg    SigV4
	signer *v4.Signer
}

func newSigV4Verifier(cfg SigV4) *sigv4Verifier {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = 15 * time.Minute
	}
	return &sigv4Verifier{cfg: cfg, signer: v4.NewSigner()}
}

// verify checks r's Authorization header against the signature recomputed
// over the signed headers r names, its path and body. It returns the status,
// error type and message to answer with, or 0 when the signature is valid.
func (v *sigv4Verifier) verify(r *http.Request, body []byte) (int, string, string) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return http.StatusForbidden, ErrorTypeMissingToken, MessageMissingToken
	}
	rest, ok := strings.CutPrefix(auth, sigv4Algorithm+" ")
	if !ok {
		return http.StatusForbidden, ErrorTypeInvalidSignature, MessageInvalidSignature
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = val
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return http.StatusForbidden, ErrorTypeInvalidSignature, MessageInvalidSignature
	}
	if scope[0] != v.cfg.Credentials.AccessKeyID {
		return http.StatusForbidden, ErrorTypeUnrecognized, MessageUnrecognized
	}
	if r.Header.Get("X-Amz-Security-Token") != v.cfg.Credentials.SessionToken {
		return http.StatusForbidden, ErrorTypeUnrecognized, MessageUnrecognized
	}
	signingTime, err := time.Parse(amzDateFormat, r.Header.Get("X-Amz-Date"))
	if err != nil || scope[1] != signingTime.Format("20060102") || scope[2] != v.cfg.Region ||
		scope[3] != SigningService || scope[4] != "aws4_request" {
		return http.StatusForbidden, ErrorTypeInvalidSignature, MessageInvalidSignature
	}
	if skew := time.Since(signingTime); skew > v.cfg.MaxSkew || skew < -v.cfg.MaxSkew {
		return http.StatusForbidden, ErrorTypeInvalidSignature, "Signature expired: " + signingTime.Format(amzDateFormat) +
			" is now earlier than " + time.Now().UTC().Add(-v.cfg.MaxSkew).Format(amzDateFormat)
	}

	// Rebuild the request from what the client says it signed, and sign it
	// again: only the named headers, the escaped path as sent, the body as
	// received (a client cannot sign one body and send another).
	u := &url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	again := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: http.Header{}, ContentLength: int64(len(body))}
	for _, name := range strings.Split(fields["SignedHeaders"], ";") {
		switch name {
		case "host", "content-length":
			continue
		}
		if vals := r.Header.Values(name); len(vals) > 0 {
			again.Header[http.CanonicalHeaderKey(name)] = vals
		}
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != hash {
		return http.StatusForbidden, ErrorTypeInvalidSignature, MessageInvalidSignature
	}
	if err := v.signer.SignHTTP(context.Background(), v.cfg.Credentials, again, hash, SigningService, v.cfg.Region, signingTime); err != nil {
		return http.StatusForbidden, ErrorTypeInvalidSignature, MessageInvalidSignature
	}
	want := again.Header.Get("Authorization")
	if want != auth {
		return http.StatusForbidden, ErrorTypeInvalidSignature, MessageInvalidSignature
	}
	return 0, "", ""
}
