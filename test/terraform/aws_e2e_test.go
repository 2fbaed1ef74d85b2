//go:build aws

package terraform_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gruntwork-io/terratest/modules/random"
	"github.com/gruntwork-io/terratest/modules/retry"
	"github.com/gruntwork-io/terratest/modules/terraform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCompleteExampleOnAWS is the real-AWS tier: it applies examples/complete
// in the account and region of the ambient AWS credentials with a unique name,
// connects over wss with a JWT, subscribes, publishes through the publisher
// Lambda (distributed: the example's fan-out threshold is 0, so the send goes
// through the SQS queue and the fan-out worker), receives, exercises the
// custom route, checks that a closed connection is removed, and destroys
// everything (deferred).
//
// Opt in with the build tag and an environment variable; it costs a few cents:
//
//	cd test/terraform && WS_AWS_E2E=1 AWS_REGION=eu-west-1 TERRAFORM_BINARY=$(command -v terraform) \
//	  go test -tags aws -run TestCompleteExampleOnAWS -timeout 40m ./...
//
// WS_AWS_E2E_ACCESS_LOGS=1 keeps stage access logs on (the account then needs
// API Gateway's CloudWatch Logs role).
func TestCompleteExampleOnAWS(t *testing.T) {
	if os.Getenv("WS_AWS_E2E") != "1" {
		t.Skip("real-AWS tier: set WS_AWS_E2E=1 (and AWS credentials) to run it")
	}
	t.Parallel()

	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	bin := os.Getenv("TERRAFORM_BINARY")
	if bin == "" {
		bin = "terraform"
	}
	name := "wse2e-" + strings.ToLower(random.UniqueId())
	secret := randomHex(t, 32)

	opts := terraform.WithDefaultRetryableErrors(t, &terraform.Options{
		TerraformBinary: bin,
		TerraformDir:    filepath.Join(copyModule(t), "examples", "complete"),
		NoColor:         true,
		Vars: map[string]interface{}{
			"name":                name,
			"region":              region,
			"jwt_secret":          secret,
			"access_logs_enabled": os.Getenv("WS_AWS_E2E_ACCESS_LOGS") == "1",
			// Every channel send goes through the fan-out queue and worker.
			"fanout_threshold": 0,
		},
	})
	defer terraform.Destroy(t, opts)
	terraform.InitAndApply(t, opts)

	wsURL := terraform.Output(t, opts, "websocket_url")
	publisher := terraform.Output(t, opts, "publisher_function_name")
	issuer := terraform.Output(t, opts, "jwt_issuer")
	audience := terraform.Output(t, opts, "jwt_audience")
	require.True(t, strings.HasPrefix(wsURL, "wss://"), wsURL)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	require.NoError(t, err)
	invoker := lambda.NewFromConfig(awsCfg)

	// A connection without a token is refused by API Gateway (identity source missing).
	_, resp, err := websocket.Dial(ctx, wsURL, nil)
	require.Error(t, err, "a connection without a token must be refused")
	if resp != nil {
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}

	token := signToken(t, secret, issuer, audience, "e2e-user")
	// The first connections can race IAM propagation and cold starts: retry until accepted.
	conn := retry.DoWithRetryInterface(t, "connect with a JWT", 30, 5*time.Second, func() (interface{}, error) {
		c, _, err := websocket.Dial(ctx, wsURL+"?token="+token, nil)
		return c, err
	}).(*websocket.Conn)
	defer conn.CloseNow()

	sendFrame(ctx, t, conn, map[string]interface{}{"action": "subscribe", "channel": "news"})
	assert.JSONEq(t, `{"type":"subscribed","channel":"news"}`, string(readFrame(ctx, t, conn)))

	// The custom route "echo" goes to the user's function and answers through the route response.
	sendFrame(ctx, t, conn, map[string]interface{}{"action": "echo", "data": map[string]int{"x": 1}})
	var echo struct {
		Type         string          `json:"type"`
		ConnectionID string          `json:"connectionId"`
		UserID       string          `json:"userId"`
		Data         json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(readFrame(ctx, t, conn), &echo))
	assert.Equal(t, "echo", echo.Type)
	assert.Equal(t, "e2e-user", echo.UserID, "the authorizer context reaches custom routes")
	assert.JSONEq(t, `{"x":1}`, string(echo.Data))
	require.NotEmpty(t, echo.ConnectionID)

	// Publish through the publisher Lambda; the payload arrives unchanged.
	data := fmt.Sprintf(`{"hello":"aws","name":%q}`, name)
	answer := invokePublisher(ctx, t, invoker, publisher, fmt.Sprintf(`{"action":"sendToChannel","channel":"news","data":%s}`, data))
	assert.Equal(t, true, answer["ok"], answer)
	assert.EqualValues(t, 1, answer["delivered"], answer)
	assert.JSONEq(t, data, string(readFrame(ctx, t, conn)))

	// The publisher sees the connection with its user...
	found := invokePublisher(ctx, t, invoker, publisher, fmt.Sprintf(`{"action":"connection","connectionId":%q}`, echo.ConnectionID))
	require.Equal(t, true, found["found"], found)

	// ...and no longer once it is closed ($disconnect removes it).
	require.NoError(t, conn.Close(websocket.StatusNormalClosure, "done"))
	retry.DoWithRetry(t, "connection removed after close", 30, 2*time.Second, func() (string, error) {
		got := invokePublisher(ctx, t, invoker, publisher, fmt.Sprintf(`{"action":"connection","connectionId":%q}`, echo.ConnectionID))
		if got["found"] == true {
			return "", errors.New("connection still registered")
		}
		return "removed", nil
	})
}

// TestLaravelExampleOnAWS is the Pusher case of the real-AWS tier: it applies
// examples/laravel (Pusher mode behind CloudFront, the secret generated into
// SSM), reads the secret from SSM, and runs test/pusher/aws-e2e.mjs with
// pusher-js and the `pusher` server SDK against the CloudFront host: two
// connections on a private channel authorised by the SDK, a trigger through
// the HTTP API (/apps/*), toOthers, a whisper, presence members from the
// client and the HTTP API. Then it destroys everything (deferred).
//
// Opt in as for TestCompleteExampleOnAWS; it needs Node and `npm ci` in
// test/pusher (make pusher-web). A new distribution takes several minutes:
//
//	cd test/terraform && WS_AWS_E2E=1 AWS_REGION=eu-west-1 TERRAFORM_BINARY=$(command -v terraform) \
//	  go test -tags aws -run TestLaravelExampleOnAWS -timeout 60m ./...
func TestLaravelExampleOnAWS(t *testing.T) {
	if os.Getenv("WS_AWS_E2E") != "1" {
		t.Skip("real-AWS tier: set WS_AWS_E2E=1 (and AWS credentials) to run it")
	}
	t.Parallel()

	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	bin := os.Getenv("TERRAFORM_BINARY")
	if bin == "" {
		bin = "terraform"
	}
	name := "wse2e-" + strings.ToLower(random.UniqueId())
	opts := terraform.WithDefaultRetryableErrors(t, &terraform.Options{
		TerraformBinary: bin,
		TerraformDir:    filepath.Join(copyModule(t), "examples", "laravel"),
		NoColor:         true,
		Vars: map[string]interface{}{
			"name":                name,
			"region":              region,
			"access_logs_enabled": os.Getenv("WS_AWS_E2E_ACCESS_LOGS") == "1",
		},
	})
	defer terraform.Destroy(t, opts)
	terraform.InitAndApply(t, opts)

	host := terraform.Output(t, opts, "pusher_host")
	require.True(t, strings.HasSuffix(host, ".cloudfront.net"), host)
	env := terraform.Output(t, opts, "pusher_env")
	assert.Contains(t, env, "PUSHER_HOST="+host)
	assert.Contains(t, env, "PUSHER_PORT=443")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	require.NoError(t, err)
	param, err := ssm.NewFromConfig(awsCfg).GetParameter(ctx, &ssm.GetParameterInput{
		Name: aws.String("/" + name + "/pusher-app-secret"), WithDecryption: aws.Bool(true),
	})
	require.NoError(t, err)
	secret := aws.ToString(param.Parameter.Value)
	require.NotEmpty(t, secret)
	assert.NotContains(t, env, secret, "the .env block never carries the secret")

	pusherDir, err := filepath.Abs(filepath.Join(repoRoot, "test", "pusher"))
	require.NoError(t, err)
	require.DirExists(t, filepath.Join(pusherDir, "node_modules", "pusher-js"), "run `make pusher-web` (npm ci in test/pusher) first")
	// A fresh distribution answers before it has reached every edge, and the
	// first handshakes race cold starts: retry the whole scenario.
	retry.DoWithRetry(t, "pusher-js and the pusher SDK through CloudFront", 20, 30*time.Second, func() (string, error) {
		cmd := exec.CommandContext(ctx, "node", "--test", "aws-e2e.mjs")
		cmd.Dir = pusherDir
		cmd.Env = append(os.Environ(),
			"PUSHER_HOST="+host, "PUSHER_PORT=443", "PUSHER_SCHEME=https",
			"PUSHER_APP_ID="+terraform.Output(t, opts, "pusher_app_id"),
			"PUSHER_APP_KEY="+terraform.Output(t, opts, "pusher_key"),
			"PUSHER_APP_SECRET="+secret,
		)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("aws-e2e.mjs: %w\n%s", err, out)
		}
		return string(out), nil
	})
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

func signToken(t *testing.T, secret, issuer, audience, subject string) string {
	t.Helper()
	now := time.Now()
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub":      subject,
		"iss":      issuer,
		"aud":      audience,
		"iat":      now.Unix(),
		"exp":      now.Add(30 * time.Minute).Unix(),
		"channels": []string{"private-" + subject + "-*"},
	}).SignedString([]byte(secret))
	require.NoError(t, err)
	return token
}

func sendFrame(ctx context.Context, t *testing.T, c *websocket.Conn, frame interface{}) {
	t.Helper()
	body, err := json.Marshal(frame)
	require.NoError(t, err)
	require.NoError(t, c.Write(ctx, websocket.MessageText, body))
}

func readFrame(ctx context.Context, t *testing.T, c *websocket.Conn) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, body, err := c.Read(ctx)
	require.NoError(t, err)
	return body
}

func invokePublisher(ctx context.Context, t *testing.T, client *lambda.Client, function, payload string) map[string]interface{} {
	t.Helper()
	out, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(function), Payload: []byte(payload)})
	require.NoError(t, err, "invoke %s", function)
	require.Nilf(t, out.FunctionError, "publisher failed: %s", out.Payload)
	var answer map[string]interface{}
	require.NoError(t, json.Unmarshal(out.Payload, &answer), "publisher answer: %s", out.Payload)
	return answer
}
