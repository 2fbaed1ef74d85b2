package localgw_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
)

// Stage names follow API Gateway's rule ([A-Za-z0-9_-], at most 128): a "*"
// or "?" in the stage would become a wildcard in the method ARN the
// authorizer's policy is matched against (review item 14).
func TestNewAcceptsOnlyAPIGatewayStageNames(t *testing.T) {
	ws := localgw.Function(func(context.Context, []byte) ([]byte, error) { return []byte(`{"statusCode":200}`), nil })
	for _, stage := range []string{"dev", "prod", "v2", "my_stage-1", strings.Repeat("s", 128)} {
		_, err := localgw.New(localgw.Config{Stage: stage, WebSocket: ws})
		assert.NoError(t, err, "stage %q", stage)
	}
	for _, stage := range []string{"a*b", "*", "a?", "dev.1", "dé", "a b", "a/b", "$default", strings.Repeat("s", 129)} {
		_, err := localgw.New(localgw.Config{Stage: stage, WebSocket: ws})
		require.Error(t, err, "stage %q", stage)
		assert.ErrorContains(t, err, "invalid stage")
	}
}
