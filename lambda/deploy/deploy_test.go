package deploy_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/deploy"
)

var creds = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")

// answer is one canned API Gateway answer.
type answer struct {
	status    int
	errorType string
	body      string
}

// fakeAPIGateway is API Gateway's CreateDeployment as seen on the wire: it
// checks each request's SigV4 signature by signing the same request again
// with the same credentials and time, and answers from a script.
type fakeAPIGateway struct {
	t       *testing.T
	mu      sync.Mutex
	answers []answer
	bodies  []string
	paths   []string
	// onRequest runs as each request arrives.
	onRequest func()
}

func (f *fakeAPIGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	require.NoError(f.t, err)
	f.verifySignature(r, body)
	f.mu.Lock()
	f.bodies = append(f.bodies, string(body))
	f.paths = append(f.paths, r.Method+" "+r.URL.EscapedPath())
	a := f.answers[0]
	if len(f.answers) > 1 {
		f.answers = f.answers[1:]
	}
	f.mu.Unlock()
	// After the request is recorded: a hook that cancels the caller's
	// context lets the test read what was recorded without a race.
	if f.onRequest != nil {
		f.onRequest()
	}
	w.Header().Set("Content-Type", "application/json")
	if a.errorType != "" {
		w.Header().Set("X-Amzn-Errortype", a.errorType+":http://internal.amazon.com/coral/com.amazonaws.apigatewayv2/")
	}
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (f *fakeAPIGateway) verifySignature(r *http.Request, body []byte) {
	auth := r.Header.Get("Authorization")
	date := r.Header.Get("X-Amz-Date")
	require.NotEmpty(f.t, date, "X-Amz-Date")
	assert.Equal(f.t, "session-token", r.Header.Get("X-Amz-Security-Token"))
	signedAt, err := time.Parse("20060102T150405Z", date)
	require.NoError(f.t, err)
	assert.True(f.t, strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"+signedAt.Format("20060102")+"/eu-west-1/apigateway/aws4_request, SignedHeaders="), auth)
	assert.Contains(f.t, auth, "content-type;host;x-amz-date;x-amz-security-token")

	again, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), strings.NewReader(string(body)))
	require.NoError(f.t, err)
	again.Header.Set("Content-Type", r.Header.Get("Content-Type"))
	c, err := creds.Retrieve(context.Background())
	require.NoError(f.t, err)
	sum := sha256Hex(body)
	require.NoError(f.t, v4.NewSigner().SignHTTP(context.Background(), c, again, sum, "apigateway", "eu-west-1", signedAt))
	assert.Equal(f.t, again.Header.Get("Authorization"), auth, "the signature covers the method, path, headers and body")
}

func newClient(t *testing.T, answers ...answer) (*deploy.Client, *fakeAPIGateway) {
	t.Helper()
	f := &fakeAPIGateway{t: t, answers: answers}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return &deploy.Client{
		Endpoint:    srv.URL,
		Region:      "eu-west-1",
		Credentials: creds,
		HTTP:        srv.Client(),
		Attempts:    3,
		Backoff:     time.Millisecond,
	}, f
}

const deployed = `{"autoDeployed":false,"createdDate":"2026-11-26T15:00:00Z","deploymentId":"dep123","deploymentStatus":"DEPLOYED","description":"routes abc"}`

func TestCreateDeploymentSignsAndPostsToTheStage(t *testing.T) {
	c, f := newClient(t, answer{status: http.StatusCreated, body: deployed})
	d, err := c.CreateDeployment(context.Background(), "a1b2c3", "live", "routes abc")
	require.NoError(t, err)
	assert.Equal(t, "dep123", d.DeploymentID)
	assert.Equal(t, []string{"POST /v2/apis/a1b2c3/deployments"}, f.paths)
	require.Len(t, f.bodies, 1)
	assert.JSONEq(t, `{"stageName":"live","description":"routes abc"}`, f.bodies[0])
}

func TestCreateDeploymentRetriesThrottlingAndConflicts(t *testing.T) {
	c, f := newClient(t,
		answer{status: http.StatusTooManyRequests, errorType: "TooManyRequestsException", body: `{"message":"Too Many Requests"}`},
		answer{status: http.StatusConflict, errorType: "ConflictException", body: `{"message":"Unable to complete operation due to concurrent modification. Please try again later."}`},
		answer{status: http.StatusCreated, body: deployed},
	)
	d, err := c.CreateDeployment(context.Background(), "a1b2c3", "live", "")
	require.NoError(t, err)
	assert.Equal(t, "dep123", d.DeploymentID)
	assert.Len(t, f.paths, 3)
}

func TestCreateDeploymentGivesUpAfterTheLastAttempt(t *testing.T) {
	c, f := newClient(t, answer{status: http.StatusConflict, errorType: "ConflictException", body: `{"message":"concurrent modification"}`})
	_, err := c.CreateDeployment(context.Background(), "a1b2c3", "live", "")
	var apiErr *deploy.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "ConflictException", apiErr.Type)
	assert.Equal(t, "concurrent modification", apiErr.Message)
	assert.Contains(t, err.Error(), "a1b2c3")
	assert.Len(t, f.paths, 3)
}

func TestCreateDeploymentDoesNotRetryOtherErrors(t *testing.T) {
	c, f := newClient(t, answer{status: http.StatusBadRequest, errorType: "BadRequestException", body: `{"message":"At least one route is required before deploying the Api."}`})
	_, err := c.CreateDeployment(context.Background(), "a1b2c3", "live", "")
	var apiErr *deploy.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	assert.Equal(t, "BadRequestException", apiErr.Type)
	assert.Len(t, f.paths, 1)
}

// TestCreateDeploymentRetriesADenial: on the first apply the role's policy
// may not be in effect yet (403); a denial that lasts fails after the last
// attempt.
func TestCreateDeploymentRetriesADenial(t *testing.T) {
	c, f := newClient(t,
		answer{status: http.StatusForbidden, errorType: "AccessDeniedException", body: `{"message":"User is not authorized to perform: apigateway:POST"}`},
		answer{status: http.StatusCreated, body: deployed},
	)
	d, err := c.CreateDeployment(context.Background(), "a1b2c3", "live", "")
	require.NoError(t, err)
	assert.Equal(t, "dep123", d.DeploymentID)
	assert.Len(t, f.paths, 2)

	c, f = newClient(t, answer{status: http.StatusForbidden, errorType: "AccessDeniedException", body: `{"message":"denied"}`})
	_, err = c.CreateDeployment(context.Background(), "a1b2c3", "live", "")
	var apiErr *deploy.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "AccessDeniedException", apiErr.Type)
	assert.Len(t, f.paths, 3, "every attempt")
}

func TestCreateDeploymentFailsOnAFailedDeployment(t *testing.T) {
	c, _ := newClient(t, answer{status: http.StatusCreated, body: `{"deploymentId":"dep9","deploymentStatus":"FAILED","deploymentStatusMessage":"integration missing"}`})
	_, err := c.CreateDeployment(context.Background(), "a1b2c3", "live", "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "dep9")
	assert.Contains(t, err.Error(), "integration missing")
}

func TestCreateDeploymentNeedsAPIAndStage(t *testing.T) {
	c, f := newClient(t, answer{status: http.StatusCreated, body: deployed})
	_, err := c.CreateDeployment(context.Background(), "", "live", "")
	require.Error(t, err)
	_, err = c.CreateDeployment(context.Background(), "a1b2c3", "", "")
	require.Error(t, err)
	assert.Empty(t, f.paths)
}

func TestCreateDeploymentStopsWhenTheContextEnds(t *testing.T) {
	c, f := newClient(t, answer{status: http.StatusTooManyRequests, errorType: "TooManyRequestsException", body: `{"message":"slow down"}`})
	c.Backoff = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	// Canceled during the first attempt: the client then waits for its
	// second one and must not sit out the hour.
	f.onRequest = cancel
	_, err := c.CreateDeployment(ctx, "a1b2c3", "live", "")
	require.True(t, errors.Is(err, context.Canceled), "%v", err)
	assert.Len(t, f.paths, 1)
}

func TestHandlerAnswersTheDeployment(t *testing.T) {
	c, f := newClient(t, answer{status: http.StatusCreated, body: deployed})
	h := &deploy.Handler{Client: c, APIID: "a1b2c3", Stage: "live"}
	resp, err := h.Handle(context.Background(), deploy.Request{Description: "routes abc", Hash: "abc"})
	require.NoError(t, err)
	out, err := json.Marshal(resp)
	require.NoError(t, err)
	assert.JSONEq(t, `{"deploymentId":"dep123","stage":"live"}`, string(out))
	assert.JSONEq(t, `{"stageName":"live","description":"routes abc"}`, f.bodies[0])
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestEndpointFollowsThePartition: the deployer reaches API Gateway in every
// partition, whose DNS suffix its region's name gives (the SDK's
// partitions.json).
func TestEndpointFollowsThePartition(t *testing.T) {
	for region, want := range map[string]string{
		"eu-west-1":       "https://apigateway.eu-west-1.amazonaws.com",
		"us-gov-west-1":   "https://apigateway.us-gov-west-1.amazonaws.com",
		"cn-north-1":      "https://apigateway.cn-north-1.amazonaws.com.cn",
		"cn-northwest-1":  "https://apigateway.cn-northwest-1.amazonaws.com.cn",
		"us-iso-east-1":   "https://apigateway.us-iso-east-1.c2s.ic.gov",
		"us-isob-east-1":  "https://apigateway.us-isob-east-1.sc2s.sgov.gov",
		"us-isof-south-1": "https://apigateway.us-isof-south-1.csp.hci.ic.gov",
		"eu-isoe-west-1":  "https://apigateway.eu-isoe-west-1.cloud.adc-e.uk",
		"eusc-de-east-1":  "https://apigateway.eusc-de-east-1.amazonaws.eu",
	} {
		assert.Equal(t, want, deploy.Endpoint(region), region)
	}
}
