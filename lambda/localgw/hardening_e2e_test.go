//go:build e2e

package localgw_test

import (
	"testing"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
)

// bootstrapServer runs cfg on DynamoDB Local and the compiled bootstraps: the
// websocket Lambda's own main, reading WS_MAX_CHANNELS_PER_CONNECTION.
func bootstrapServer(t *testing.T, cfg localgw.ServerConfig) *localgw.Server {
	cfg.DynamoDBEndpoint, cfg.Table, cfg.LambdaDir = dynamoEndpoint(t), uniqueTable(t), lambdaDir(t)
	cfg.ProcessOutput = testLog{t}
	return startServer(t, cfg)
}

func TestNumericUserIDsKeepEveryDigitBootstraps(t *testing.T) {
	testNumericUserIDs(t, bootstrapServer(t, localgw.ServerConfig{Authorizer: numericUserAuthorizer}))
}

func TestChannelsPerConnectionCapBootstraps(t *testing.T) {
	testChannelsCap(t, bootstrapServer(t, localgw.ServerConfig{MaxChannelsPerConnection: 2}))
}
