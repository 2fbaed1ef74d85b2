// Package localgwtest holds test helpers for code running behind the local
// gateway: a WebSocket client that speaks protocol v1, JWT minting for the
// built-in authorizer, AWS SDK clients pointed at the gateway, and the
// end-to-end scenario the project runs against every backend (embedded
// store, DynamoDB Local, compiled bootstraps).
package localgwtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/protocol"
)

// Frame is a frame a client received: the protocol v1 reply fields plus the raw text.
type Frame struct {
	protocol.Reply
	// Raw is the frame as received.
	Raw []byte
}

// Client is a WebSocket client for tests. Frames are read in the background;
// Expect waits for one that matches.
type Client struct {
	// Conn is the underlying connection.
	Conn   *websocket.Conn
	t      testing.TB
	frames chan Frame
	done   chan struct{}

	mu       sync.Mutex
	closeErr error
}

// Dial connects to url with an optional token (sent as ?token=) and returns
// the client, or the handshake's HTTP response and error.
func Dial(ctx context.Context, t testing.TB, wsURL, token string) (*Client, *http.Response, error) {
	t.Helper()
	if token != "" {
		u, err := url.Parse(wsURL)
		require.NoError(t, err)
		q := u.Query()
		q.Set("token", token)
		u.RawQuery = q.Encode()
		wsURL = u.String()
	}
	conn, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": []string{"localgwtest"}}})
	if err != nil {
		return nil, resp, err
	}
	conn.SetReadLimit(-1)
	c := &Client{Conn: conn, t: t, frames: make(chan Frame, 1024), done: make(chan struct{})}
	go c.read()
	return c, resp, nil
}

// MustDial is Dial that fails the test on error and closes the client at cleanup.
func MustDial(ctx context.Context, t testing.TB, wsURL, token string) *Client {
	t.Helper()
	c, _, err := Dial(ctx, t, wsURL, token)
	require.NoError(t, err, "dial %s", wsURL)
	t.Cleanup(func() { c.Conn.CloseNow() })
	return c
}

func (c *Client) read() {
	defer close(c.done)
	for {
		_, data, err := c.Conn.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.closeErr = err
			c.mu.Unlock()
			return
		}
		var f Frame
		f.Raw = data
		_ = json.Unmarshal(data, &f.Reply)
		select {
		case c.frames <- f:
		default:
			// A test that does not read its frames must not block the reader.
			<-c.frames
			c.frames <- f
		}
	}
}

// Send writes v as a JSON text frame.
func (c *Client) Send(ctx context.Context, v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	require.NoError(c.t, err)
	require.NoError(c.t, c.Conn.Write(ctx, websocket.MessageText, b))
}

// Expect returns the first frame for which match is true, discarding others,
// and fails the test when ctx ends or the connection closes first.
func (c *Client) Expect(ctx context.Context, what string, match func(Frame) bool) Frame {
	c.t.Helper()
	for {
		select {
		case f := <-c.frames:
			if match(f) {
				return f
			}
		case <-c.done:
			// Drain what arrived before the close.
			for {
				select {
				case f := <-c.frames:
					if match(f) {
						return f
					}
				default:
					c.t.Fatalf("connection closed while waiting for %s: %v", what, c.CloseErr())
				}
			}
		case <-ctx.Done():
			c.t.Fatalf("timed out waiting for %s: %v", what, ctx.Err())
		}
	}
}

// ExpectType waits for a frame of the reply type (and channel, when not empty).
func (c *Client) ExpectType(ctx context.Context, typ, channel string) Frame {
	c.t.Helper()
	return c.Expect(ctx, fmt.Sprintf("%s frame on %q", typ, channel), func(f Frame) bool {
		return f.Type == typ && (channel == "" || f.Channel == channel)
	})
}

// ExpectRaw waits for a frame equal to want.
func (c *Client) ExpectRaw(ctx context.Context, want string) Frame {
	c.t.Helper()
	return c.Expect(ctx, "frame "+want, func(f Frame) bool { return string(f.Raw) == want })
}

// Whoami sends whoami and returns the answer.
func (c *Client) Whoami(ctx context.Context) Frame {
	c.t.Helper()
	c.Send(ctx, map[string]string{"action": protocol.ActionWhoami})
	return c.ExpectType(ctx, "whoami", "")
}

// Subscribe joins channel and waits for the confirmation.
func (c *Client) Subscribe(ctx context.Context, channel string) {
	c.t.Helper()
	c.Send(ctx, map[string]string{"action": protocol.ActionSubscribe, "channel": channel})
	c.ExpectType(ctx, "subscribed", channel)
}

// Closed waits until the connection is closed and returns the close error
// (use websocket.CloseStatus on it).
func (c *Client) Closed(ctx context.Context) error {
	c.t.Helper()
	select {
	case <-c.done:
		return c.CloseErr()
	case <-ctx.Done():
		c.t.Fatalf("connection still open: %v", ctx.Err())
		return nil
	}
}

// CloseErr is the error that ended the reader, nil while open.
func (c *Client) CloseErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

// Token mints an HS256 token for the built-in authorizer: sub, optional
// channels claim, one hour of validity.
func Token(t testing.TB, secret, userID, channels string) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": userID, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
	if channels != "" {
		claims["channels"] = channels
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	require.NoError(t, err)
	return s
}

// AWSConfig is an SDK configuration with static credentials, no retries, for the gateway.
func AWSConfig() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}
}

// ManagementClient is the unmodified SDK client for the management API at endpoint (http://host/stage).
func ManagementClient(endpoint string) *apigatewaymanagementapi.Client {
	return apigatewaymanagementapi.NewFromConfig(AWSConfig(), func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}

// LambdaClient is the unmodified SDK Lambda client for the Invoke API at endpoint (http://host).
func LambdaClient(endpoint string) *lambda.Client {
	return lambda.NewFromConfig(AWSConfig(), func(o *lambda.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}

// CloseCode returns the close status of err, or -1.
func CloseCode(err error) websocket.StatusCode {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}
