package localgw_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
	"github.com/wsforge/terraform-aws-websocket/lambda/localgw/localgwtest"
	"github.com/wsforge/terraform-aws-websocket/lambda/protocol"
)

// numericUserAuthorizer allows every handshake and answers the ?token= digits
// as a JSON number userId, as a custom authorizer with numeric ids does.
func numericUserAuthorizer(_ context.Context, payload []byte) ([]byte, error) {
	var req struct {
		MethodArn string            `json:"methodArn"`
		Query     map[string]string `json:"queryStringParameters"`
	}
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, `{"principalId":"p","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":["execute-api:Invoke"],"Effect":"Allow","Resource":[%q]}]},"context":{"userId":%s}}`,
		req.MethodArn, req.Query["token"]), nil
}

// TestNumericUserIDsKeepEveryDigit: 9007199254740993 and 9007199254740992 are
// the same float64; as user ids they must stay two users.
func TestNumericUserIDsKeepEveryDigit(t *testing.T) {
	testNumericUserIDs(t, startServer(t, localgw.ServerConfig{Authorizer: numericUserAuthorizer}))
}

func testNumericUserIDs(t *testing.T, srv *localgw.Server) {
	ctx := testCtx(t)
	ids := []string{"9007199254740993", "9007199254740992"}
	for _, id := range ids {
		c := localgwtest.MustDial(ctx, t, srv.URL(), id)
		got := c.Whoami(ctx)
		require.NotNil(t, got.UserID)
		assert.Equal(t, id, *got.UserID)
	}
	for _, id := range ids {
		conns, err := srv.Store().UserConnections(ctx, id)
		require.NoError(t, err)
		assert.Len(t, conns, 1, "connections of user %s", id)
	}
}

// TestChannelsPerConnectionCap: the gateway's cap reaches the handler, for
// subscribe (too_many_channels) and for ?channels= (400).
func TestChannelsPerConnectionCap(t *testing.T) {
	testChannelsCap(t, startServer(t, localgw.ServerConfig{MaxChannelsPerConnection: 2}))
}

func testChannelsCap(t *testing.T, srv *localgw.Server) {
	ctx := testCtx(t)
	c := localgwtest.MustDial(ctx, t, srv.URL(), "")
	c.Subscribe(ctx, "a")
	c.Subscribe(ctx, "b")
	c.Send(ctx, map[string]string{"action": protocol.ActionSubscribe, "channel": "c"})
	got := c.ExpectType(ctx, "error", "")
	assert.Equal(t, protocol.CodeTooManyChannels, got.Code)
	c.Subscribe(ctx, "a") // re-joining a channel it holds is fine

	_, resp, err := localgwtest.Dial(ctx, t, srv.URL()+"?channels=a,b,c", "")
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	ok := localgwtest.MustDial(ctx, t, srv.URL()+"?channels=a,b,a", "")
	ok.Whoami(ctx)
}
