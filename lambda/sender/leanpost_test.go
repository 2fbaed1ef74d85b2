package sender_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// posterKinds are the Post paths that must behave alike: the SDK client,
// the lean path on its own HTTP/1.1 connections (what the Lambdas use) and
// the lean path through net/http's Transport.
var posterKinds = []struct {
	name string
	opts []sender.ManagementOption
}{
	{"sdk", []sender.ManagementOption{sender.WithSDKPost()}},
	{"lean", nil},
	{"lean-client", []sender.ManagementOption{sender.WithClientTransport()}},
}

const testRegion = "eu-west-1"

// verifyingServer is the HTTPS stand-in that checks every signature against
// mgmtapitest.TestCredentials.
func verifyingServer(t *testing.T, opts mgmtapitest.Options) *mgmtapitest.Server {
	t.Helper()
	return verifyingServerFor(t, opts, mgmtapitest.TestCredentials)
}

func verifyingServerFor(t *testing.T, opts mgmtapitest.Options, creds aws.Credentials) *mgmtapitest.Server {
	t.Helper()
	opts.TLS = true
	opts.SigV4 = &mgmtapitest.SigV4{Credentials: creds, Region: testRegion}
	srv := mgmtapitest.New(opts)
	t.Cleanup(srv.Close)
	return srv
}

// trustingClient is the fan-out HTTP client with the stand-in's certificate
// as its only root: the certificate is verified, not skipped.
func trustingClient(srv *mgmtapitest.Server, wrap func(http.RoundTripper) http.RoundTripper) *http.Client {
	c := sender.NewHTTPClient(16)
	tr := c.Transport.(*http.Transport)
	tr.TLSClientConfig = srv.TLSConfig()
	if wrap != nil {
		c.Transport = wrap(tr)
	}
	return c
}

func newPoster(t *testing.T, endpoint string, creds aws.Credentials, client *http.Client, opts []sender.ManagementOption) *sender.ManagementAPI {
	t.Helper()
	cfg := aws.Config{Region: testRegion, Credentials: credentials.StaticCredentialsProvider{Value: creds}}
	api, err := sender.NewManagementAPI(cfg, endpoint, client, opts...)
	require.NoError(t, err)
	return api
}

func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// Both paths' posts pass the stand-in's SigV4 verification over HTTPS, for
// ids that need escaping, and deliver the exact bytes.
func TestLeanPostSignatureAcceptedLikeSDK(t *testing.T) {
	ids := []string{"AbC-123_x.y~z=", "a/b", "sp ace+plus%25", "ünï", "q?x#y"}
	for _, kind := range posterKinds {
		t.Run(kind.name, func(t *testing.T) {
			srv := verifyingServer(t, mgmtapitest.Options{KeepMessages: true})
			srv.Connect(ids...)
			api := newPoster(t, srv.URL(), mgmtapitest.TestCredentials, trustingClient(srv, nil), kind.opts)
			for i, id := range ids {
				msg := []byte(strings.Repeat("m", i*1000+1))
				require.NoError(t, api.Post(context.Background(), id, msg), id)
				assert.Equal(t, [][]byte{msg}, srv.Messages(id), id)
			}
			// The same payload to many recipients: the cached hash must still sign each.
			for _, id := range ids {
				require.NoError(t, api.Post(context.Background(), id, []byte("same")), id)
			}
			assert.Zero(t, srv.Counts().Refused)
		})
	}
}

// A Lambda's credentials carry a session token (X-Amz-Security-Token, signed
// too): both paths send it and pass verification; without it both are refused.
func TestLeanPostSessionTokenLikeSDK(t *testing.T) {
	withToken := mgmtapitest.TestCredentials
	withToken.SessionToken = "session-token/with+special=chars"
	for _, kind := range posterKinds {
		t.Run(kind.name, func(t *testing.T) {
			srv := verifyingServerFor(t, mgmtapitest.Options{AutoRegister: true}, withToken)
			ok := newPoster(t, srv.URL(), withToken, trustingClient(srv, nil), kind.opts)
			require.NoError(t, ok.Post(context.Background(), "c1", []byte("hello")))
			noToken := newPoster(t, srv.URL(), mgmtapitest.TestCredentials, trustingClient(srv, nil), kind.opts)
			err := noToken.Post(context.Background(), "c1", []byte("hello"))
			assert.ErrorIs(t, err, sender.ErrForbidden)
			assert.Equal(t, mgmtapitest.ErrorTypeUnrecognized, errorCode(err))
		})
	}
}

// tamper changes the body after the request was signed.
type tamper struct{ next http.RoundTripper }

func (tp tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	b = bytes.ToUpper(b)
	r.Body = io.NopCloser(bytes.NewReader(b))
	return tp.next.RoundTrip(r)
}

// The verifier refuses both paths alike: wrong secret, unknown access key,
// a body changed after signing, no credentials at all.
func TestLeanPostRefusedLikeSDK(t *testing.T) {
	wrongSecret := mgmtapitest.TestCredentials
	wrongSecret.SecretAccessKey = "not-the-secret"
	unknownKey := mgmtapitest.TestCredentials
	unknownKey.AccessKeyID = "AKIDUNKNOWN"
	cases := []struct {
		name     string
		creds    aws.Credentials
		wrap     func(http.RoundTripper) http.RoundTripper
		wantCode string
	}{
		{"wrong secret", wrongSecret, nil, mgmtapitest.ErrorTypeInvalidSignature},
		{"unknown access key", unknownKey, nil, mgmtapitest.ErrorTypeUnrecognized},
		{"body changed after signing", mgmtapitest.TestCredentials, func(rt http.RoundTripper) http.RoundTripper { return tamper{rt} }, mgmtapitest.ErrorTypeInvalidSignature},
	}
	for _, kind := range posterKinds {
		for _, tc := range cases {
			t.Run(kind.name+"/"+tc.name, func(t *testing.T) {
				srv := verifyingServer(t, mgmtapitest.Options{AutoRegister: true})
				api := newPoster(t, srv.URL(), tc.creds, trustingClient(srv, tc.wrap), kind.opts)
				err := api.Post(context.Background(), "c1", []byte("hello"))
				require.Error(t, err)
				assert.ErrorIs(t, err, sender.ErrForbidden)
				assert.False(t, sender.Retryable(err))
				assert.Equal(t, tc.wantCode, errorCode(err))
				assert.Equal(t, int64(1), srv.Counts().Refused)
				assert.Zero(t, srv.Counts().Delivered)
			})
		}
		// No credentials, or anonymous ones: the SDK sends the call unsigned.
		for name, creds := range map[string]aws.CredentialsProvider{"no credentials": nil, "anonymous": aws.AnonymousCredentials{}} {
			t.Run(kind.name+"/"+name, func(t *testing.T) {
				srv := verifyingServer(t, mgmtapitest.Options{AutoRegister: true})
				cfg := aws.Config{Region: testRegion, Credentials: creds}
				api, err := sender.NewManagementAPI(cfg, srv.URL(), trustingClient(srv, nil), kind.opts...)
				require.NoError(t, err)
				err = api.Post(context.Background(), "c1", []byte("hello"))
				assert.ErrorIs(t, err, sender.ErrForbidden)
				assert.Equal(t, mgmtapitest.ErrorTypeMissingToken, errorCode(err))
			})
		}
	}
}

// Both paths classify every error answer alike: sentinel, retryability and
// error code, for each status the management API answers.
func TestLeanPostClassifiesLikeSDK(t *testing.T) {
	statuses := []int{403, 410, 413, 429, 500, 502, 503, 504}
	type outcome struct {
		gone, tooLarge, forbidden, throttled, retryable bool
		code                                            string
	}
	classify := func(err error) outcome {
		return outcome{
			gone: errors.Is(err, sender.ErrGone), tooLarge: errors.Is(err, sender.ErrTooLarge),
			forbidden: errors.Is(err, sender.ErrForbidden), throttled: errors.Is(err, sender.ErrThrottled),
			retryable: sender.Retryable(err), code: errorCode(err),
		}
	}
	got := map[string]map[int]outcome{}
	for _, kind := range posterKinds {
		got[kind.name] = map[int]outcome{}
		for _, status := range statuses {
			srv := verifyingServer(t, mgmtapitest.Options{AutoRegister: true, Inject: func(string, string, int) int { return status }})
			api := newPoster(t, srv.URL(), mgmtapitest.TestCredentials, trustingClient(srv, nil), kind.opts)
			err := api.Post(context.Background(), "c1", []byte("hello"))
			require.Error(t, err, "%s %d", kind.name, status)
			got[kind.name][status] = classify(err)
		}
	}
	assert.Equal(t, got["sdk"], got["lean"])
	// And the classification is the documented one.
	want := map[int]outcome{
		403: {forbidden: true, code: "ForbiddenException"},
		410: {gone: true, code: "GoneException"},
		413: {tooLarge: true, code: "PayloadTooLargeException"},
		429: {throttled: true, retryable: true, code: "LimitExceededException"},
		500: {retryable: true, code: "InternalServerErrorException"},
		502: {retryable: true, code: "BadGatewayException"},
		503: {retryable: true, code: "ServiceUnavailableException"},
		504: {retryable: true, code: "GatewayTimeoutException"},
	}
	assert.Equal(t, want, got["lean"])
}

// Error answers in the other shapes AWS uses: an error type with a ':'
// suffix, the type only in the body, an empty 410, a transport failure.
func TestLeanPostClassifiesOddAnswersLikeSDK(t *testing.T) {
	answers := map[string]func(w http.ResponseWriter){
		"type with suffix": func(w http.ResponseWriter) {
			w.Header().Set("x-amzn-ErrorType", "GoneException:http://internal.amazon.com/coral/com.amazon.coral.service/")
			w.WriteHeader(http.StatusGone)
			_, _ = w.Write([]byte(`{"message":null}`))
		},
		"type in body": func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"__type":"com.amazon#LimitExceededException","message":"Rate exceeded"}`))
		},
		"empty 410": func(w http.ResponseWriter) { w.WriteHeader(http.StatusGone) },
		"html 502": func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<html>bad gateway</html>"))
		},
	}
	cfgCreds := mgmtapitest.TestCredentials
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { answer(w) }))
			defer srv.Close()
			var errs []error
			for _, kind := range posterKinds {
				api := newPoster(t, srv.URL+"/dev", cfgCreds, nil, kind.opts)
				errs = append(errs, api.Post(context.Background(), "c1", []byte("x")))
			}
			for i := 1; i < len(errs); i++ {
				for _, sentinel := range []error{sender.ErrGone, sender.ErrThrottled, sender.ErrForbidden, sender.ErrTooLarge} {
					assert.Equal(t, errors.Is(errs[0], sentinel), errors.Is(errs[i], sentinel), "%s %v: %v vs %v", posterKinds[i].name, sentinel, errs[0], errs[i])
				}
				assert.Equal(t, sender.Retryable(errs[0]), sender.Retryable(errs[i]), posterKinds[i].name)
				if name != "html 502" { // the SDK fails to parse that body and reports no code
					assert.Equal(t, errorCode(errs[0]), errorCode(errs[i]), posterKinds[i].name)
				}
			}
		})
	}
	t.Run("transport failure", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		for _, kind := range posterKinds {
			err := newPoster(t, url+"/dev", cfgCreds, nil, kind.opts).Post(context.Background(), "c1", []byte("x"))
			require.Error(t, err)
			assert.True(t, sender.Retryable(err), kind.name)
		}
	})
}

// Both paths send the same request line, headers and body for every kind of
// endpoint: API stage URL, custom domain with a base path, custom domain at
// its root, and the local gateway's http:// URL.
func TestLeanPostRequestMatchesSDK(t *testing.T) {
	type seen struct {
		method, uri, contentType, contentLength, body string
		signedHeaders                                 string
	}
	var (
		mu   sync.Mutex
		last seen
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		auth := r.Header.Get("Authorization")
		_, sh, _ := strings.Cut(auth, "SignedHeaders=")
		sh, _, _ = strings.Cut(sh, ",")
		sh = strings.NewReplacer("amz-sdk-invocation-id;", "", "amz-sdk-request;", "").Replace(sh)
		mu.Lock()
		last = seen{r.Method, r.RequestURI, r.Header.Get("Content-Type"), r.Header.Get("Content-Length"), string(b), sh}
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	// Custom-domain base paths allow only letters, digits and $-_.+!*'() and
	// stage names fewer, so a base path never carries a percent-escape.
	bases := []string{"/dev", "/dev/", "/v1/api", "", "/v1/a+b$!*'()"}
	ids := []string{"AbC-123=", "a/b", "sp ace+%", "ünï", "~._-"}
	for _, base := range bases {
		for _, id := range ids {
			var got []seen
			for _, kind := range posterKinds {
				api := newPoster(t, srv.URL+base, mgmtapitest.TestCredentials, nil, kind.opts)
				require.NoError(t, api.Post(context.Background(), id, []byte("payload "+id)))
				mu.Lock()
				got = append(got, last)
				mu.Unlock()
			}
			for i := 1; i < len(got); i++ {
				assert.Equal(t, got[0], got[i], "%s: base %q id %q", posterKinds[i].name, base, id)
			}
		}
	}
}
