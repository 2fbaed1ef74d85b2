// Package deploy makes a new deployment of an API Gateway WebSocket API and
// moves a stage onto it: API Gateway v2's CreateDeployment with a stageName,
// one SigV4-signed request. The module's deployer function runs it after
// every change to the routes, route responses, integrations or authorizer,
// once the removed ones are gone, so a single apply takes a removed route out
// of service (docs/module.md, "Removing a route").
package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// signingName is the SigV4 service name of API Gateway's management API.
const signingName = "apigateway"

// Client calls API Gateway v2's management API.
type Client struct {
	// Endpoint is the API Gateway endpoint, https://apigateway.{region}.amazonaws.com.
	Endpoint string
	// Region signs the requests.
	Region string
	// Credentials sign the requests.
	Credentials aws.CredentialsProvider
	// HTTP sends the requests; nil uses http.DefaultClient.
	HTTP *http.Client
	// Attempts is how many times a throttled (429), conflicting (409) or
	// denied (403) request is sent in all; 0 means DefaultAttempts.
	Attempts int
	// Backoff is the wait before the second attempt, doubled after each;
	// 0 means DefaultBackoff.
	Backoff time.Duration
	// Logger logs retries; nil discards them.
	Logger *slog.Logger
}

// DefaultAttempts and DefaultBackoff bound the retries of a throttled or
// conflicting CreateDeployment: 1+2+4+8 s, well inside the function's timeout.
const (
	DefaultAttempts = 5
	DefaultBackoff  = time.Second
)

// Endpoint returns API Gateway's management endpoint in region, with the DNS
// suffix of the region's partition (amazonaws.com.cn in China, for example).
func Endpoint(region string) string {
	return "https://apigateway." + region + "." + dnsSuffix(region)
}

// partitionSuffixes maps region-name prefixes to their partition's DNS
// suffix (the SDK's partitions.json); other regions use amazonaws.com.
var partitionSuffixes = [][2]string{
	{"cn-", "amazonaws.com.cn"},
	{"us-isob-", "sc2s.sgov.gov"},
	{"us-iso-", "c2s.ic.gov"},
	{"us-isof-", "csp.hci.ic.gov"},
	{"eu-isoe-", "cloud.adc-e.uk"},
	{"eusc-", "amazonaws.eu"},
}

// dnsSuffix is the DNS suffix of the partition region belongs to.
func dnsSuffix(region string) string {
	for _, p := range partitionSuffixes {
		if strings.HasPrefix(region, p[0]) {
			return p[1]
		}
	}
	return "amazonaws.com"
}

// Deployment is what CreateDeployment answers (the fields the caller uses).
type Deployment struct {
	// DeploymentID is the new deployment's id.
	DeploymentID string `json:"deploymentId"`
	// DeploymentStatus is DEPLOYED, PENDING or FAILED.
	DeploymentStatus string `json:"deploymentStatus"`
	// DeploymentStatusMessage explains a FAILED status.
	DeploymentStatusMessage string `json:"deploymentStatusMessage,omitempty"`
}

// APIError is an error answer of API Gateway.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Type is the x-amzn-ErrorType header without its suffix, for example ConflictException.
	Type string
	// Message is the answer's message.
	Message string
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.StatusCode, e.Type, e.Message)
}

// retryable reports whether trying again may succeed: too many requests, a
// conflicting change to the same API still in progress, or a 403, which on
// the first apply is most often the function's new role or policy not yet
// in effect (IAM is eventually consistent): a lasting denial still fails,
// after the last attempt.
func (e *APIError) retryable() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusConflict || e.StatusCode == http.StatusForbidden
}

// CreateDeployment deploys the API's current routes to stage, retrying
// throttling and conflicts a few times. A FAILED deployment is an error.
func (c *Client) CreateDeployment(ctx context.Context, apiID, stage, description string) (Deployment, error) {
	if apiID == "" || stage == "" {
		return Deployment{}, fmt.Errorf("create deployment of api %q stage %q: api id and stage are required", apiID, stage)
	}
	body, err := json.Marshal(struct {
		Description string `json:"description,omitempty"`
		StageName   string `json:"stageName"`
	}{description, stage})
	if err != nil {
		return Deployment{}, fmt.Errorf("create deployment of api %s: %w", apiID, err)
	}
	attempts, backoff := c.Attempts, c.Backoff
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	if backoff <= 0 {
		backoff = DefaultBackoff
	}
	for attempt := 1; ; attempt++ {
		d, err := c.createOnce(ctx, apiID, body)
		var apiErr *APIError
		if err == nil || !errors.As(err, &apiErr) || !apiErr.retryable() || attempt == attempts {
			if err != nil {
				return Deployment{}, fmt.Errorf("create deployment of api %s stage %s (attempt %d): %w", apiID, stage, attempt, err)
			}
			if d.DeploymentStatus == "FAILED" {
				return d, fmt.Errorf("create deployment of api %s stage %s: deployment %s failed: %s", apiID, stage, d.DeploymentID, d.DeploymentStatusMessage)
			}
			return d, nil
		}
		if c.Logger != nil {
			c.Logger.WarnContext(ctx, "create deployment: retrying", "api", apiID, "stage", stage, "attempt", attempt, "error", err)
		}
		select {
		case <-ctx.Done():
			return Deployment{}, fmt.Errorf("create deployment of api %s stage %s: %w (last: %w)", apiID, stage, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// createOnce sends one signed CreateDeployment request.
func (c *Client) createOnce(ctx context.Context, apiID string, body []byte) (Deployment, error) {
	u := c.Endpoint + "/v2/apis/" + url.PathEscape(apiID) + "/deployments"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return Deployment{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return Deployment{}, fmt.Errorf("retrieve credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), signingName, c.Region, time.Now()); err != nil {
		return Deployment{}, fmt.Errorf("sign request: %w", err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Deployment{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Deployment{}, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{StatusCode: resp.StatusCode, Type: errorType(resp.Header.Get("X-Amzn-Errortype"))}
		var msg struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &msg) == nil {
			e.Message = msg.Message
		}
		return Deployment{}, e
	}
	var d Deployment
	if err := json.Unmarshal(data, &d); err != nil {
		return Deployment{}, fmt.Errorf("decode answer: %w", err)
	}
	if d.DeploymentID == "" {
		return Deployment{}, errors.New("answer has no deploymentId")
	}
	return d, nil
}

// errorType strips what follows the type in x-amzn-ErrorType
// ("ConflictException:http://internal.amazon.com/...").
func errorType(h string) string {
	for i := 0; i < len(h); i++ {
		if h[i] == ':' {
			return h[:i]
		}
	}
	return h
}

// Request is the deployer function's event: why it runs. The module passes a
// hash of everything a deployment snapshots, so the Lambda invocation resource
// runs again whenever that changes.
type Request struct {
	// Description becomes the deployment's description.
	Description string `json:"description"`
	// Hash identifies the routes, route responses, integrations and
	// authorizer being deployed; it only makes the invocation's input change.
	Hash string `json:"hash"`
}

// Response is the deployer function's answer.
type Response struct {
	// DeploymentID is the deployment the stage now serves.
	DeploymentID string `json:"deploymentId"`
	// Stage is the stage moved onto it.
	Stage string `json:"stage"`
}

// Handler deploys one API to one stage.
type Handler struct {
	// Client calls API Gateway.
	Client *Client
	// APIID is the WebSocket API's id (WS_API_ID).
	APIID string
	// Stage is the stage moved onto the new deployment (WS_STAGE_NAME).
	Stage string
	// Logger logs each deployment.
	Logger *slog.Logger
}

// Handle deploys the API's current routes to the stage.
func (h *Handler) Handle(ctx context.Context, req Request) (Response, error) {
	d, err := h.Client.CreateDeployment(ctx, h.APIID, h.Stage, req.Description)
	if err != nil {
		return Response{}, err
	}
	if h.Logger != nil {
		h.Logger.InfoContext(ctx, "deployed", "api", h.APIID, "stage", h.Stage, "deployment", d.DeploymentID, "hash", req.Hash)
	}
	return Response{DeploymentID: d.DeploymentID, Stage: h.Stage}, nil
}
