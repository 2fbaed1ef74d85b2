package sender

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/httpbinding"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/require"
)

// sdkSigned signs the lean path's request for id with v4.Signer, built the
// way the SDK client builds PostToConnection's request, and returns the
// headers the signer set and the Host it leaves on the request.
func sdkSigned(t *testing.T, creds aws.Credentials, region, endpoint, id string, data []byte, hash string, now time.Time) (signed, string) {
	t.Helper()
	base, err := url.Parse(endpoint)
	require.NoError(t, err)
	u := *base
	u.Path = smithyhttp.JoinPath(base.Path, "/@connections/"+id)
	u.RawPath = smithyhttp.JoinPath(base.EscapedPath(), "/@connections/"+httpbinding.EscapePath(id, true))
	req := &http.Request{Method: http.MethodPost, URL: &u, Host: u.Host, ContentLength: int64(len(data)),
		Header: http.Header{"Content-Type": {"application/octet-stream"}}, Body: http.NoBody}
	require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, signingService, region, now))
	return signed{date: req.Header.Get("X-Amz-Date"), authorization: req.Header.Get("Authorization"), token: req.Header.Get("X-Amz-Security-Token")}, req.Host
}

// TestPostSignerMatchesSDKSigner: the lean path's signer writes exactly
// v4.Signer's Authorization, X-Amz-Date and X-Amz-Security-Token, and the
// same Host, for every request shape the lean path sends: stage URLs, custom
// domains with base paths, explicit and default ports, ids that need
// escaping, empty and non-empty bodies, temporary credentials, session
// tokens the SDK normalises, keys that rotate and days that change.
func TestPostSignerMatchesSDKSigner(t *testing.T) {
	endpoints := []string{
		"https://abc123.execute-api.eu-west-1.amazonaws.com/dev",
		"https://abc123.execute-api.eu-west-1.amazonaws.com:443/prod",
		"https://ws.example.com",
		"https://ws.example.com/v1/a+b$!*'()",
		"https://127.0.0.1:8443/dev",
		"http://127.0.0.1:8080/dev",
		"http://localhost:80/dev/",
	}
	ids := []string{"AbC-123=", "a/b", "sp ace+%", "ünï", "~._-", "L0SM9cOFvHcCIhw=", ""}
	credSets := []aws.Credentials{
		{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
		{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "secret2", SessionToken: "IQoJb3JpZ2luX2VjEBAaCXVzLWVhc3QtMSJHMEUCIQ" + strings.Repeat("A/b+c=", 150)},
		{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "secret3", SessionToken: "  token  with   spaces "},
		{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "secret3", SessionToken: "tab\there"},
	}
	regions := []string{"eu-west-1", "us-east-1"}
	r := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 11, 26, 23, 59, 58, 0, time.UTC)
	for _, region := range regions {
		s := newPostSigner(region)
		for i := 0; i < 400; i++ {
			endpoint := endpoints[r.IntN(len(endpoints))]
			id := ids[r.IntN(len(ids))]
			creds := credSets[r.IntN(len(credSets))]
			// Seconds either side of midnight: the date, the derived key and
			// the cached X-Amz-Date all change.
			now := start.Add(time.Duration(r.IntN(5000)) * time.Millisecond)
			data := []byte(strings.Repeat("x", r.IntN(3)*37))
			hash := fmt.Sprintf("%064x", r.Uint64())

			want, wantHost := sdkSigned(t, creds, region, endpoint, id, data, hash, now)
			base, err := url.Parse(endpoint)
			require.NoError(t, err)
			host := sanitizedHost(base)
			escapedPath := smithyhttp.JoinPath(base.EscapedPath(), "/@connections/"+httpbinding.EscapePath(id, true))
			got, err := s.sign(creds, host, escapedPath, len(data), hash, now)
			require.NoError(t, err)
			require.Equal(t, wantHost, host, "Host of %s", endpoint)
			require.Equal(t, want, got, "%s, id %q, %d bytes, token %q, at %s", endpoint, id, len(data), creds.SessionToken, now)
		}
	}
}

// TestPostSignerFollowsRotatedCredentials: a new key pair signs with its
// own derived key at once, not the cached one.
func TestPostSignerFollowsRotatedCredentials(t *testing.T) {
	s := newPostSigner("eu-west-1")
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	a := aws.Credentials{AccessKeyID: "AKIDA", SecretAccessKey: "secret-a"}
	b := aws.Credentials{AccessKeyID: "AKIDA", SecretAccessKey: "secret-b"} // same id, rotated secret
	hash := strings.Repeat("0", 64)
	for _, creds := range []aws.Credentials{a, b, a} {
		want, _ := sdkSigned(t, creds, "eu-west-1", "https://x.example.com/dev", "id", []byte("m"), hash, now)
		got, err := s.sign(creds, "x.example.com", "/dev/@connections/id", 1, hash, now)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
}

func BenchmarkPostSigner(b *testing.B) {
	creds := aws.Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "secret", SessionToken: strings.Repeat("A/b+c=", 150)}
	hash := strings.Repeat("0", 64)
	b.Run("lean", func(b *testing.B) {
		s := newPostSigner("eu-west-1")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.sign(creds, "abc.execute-api.eu-west-1.amazonaws.com", "/dev/@connections/L0SM9cOFvHcCIhw%3D", 120, hash, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sdk", func(b *testing.B) {
		s := newPostSigner("eu-west-1")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.signWithSDK(creds, "abc.execute-api.eu-west-1.amazonaws.com", "/dev/@connections/L0SM9cOFvHcCIhw%3D", 120, hash, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestAppendEscapePathMatchesSmithy: the lean path escapes ids and the
// canonical path exactly as smithy's httpbinding.EscapePath does.
func TestAppendEscapePathMatchesSmithy(t *testing.T) {
	var every []byte
	for c := 0; c < 256; c++ {
		every = append(every, byte(c))
	}
	r := rand.New(rand.NewPCG(3, 4))
	inputs := []string{"", string(every), "/dev/@connections/L0SM9cOFvHcCIhw=", "a/b", "%2F%41", "ünï~._-"}
	for i := 0; i < 500; i++ {
		b := make([]byte, r.IntN(40))
		for j := range b {
			b[j] = byte(r.IntN(256))
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		for _, sep := range []bool{true, false} {
			require.Equal(t, httpbinding.EscapePath(in, sep), string(appendEscapePath([]byte("prefix"), in, sep))[len("prefix"):], "%q, encodeSep %v", in, sep)
		}
	}
}
