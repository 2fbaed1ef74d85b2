// Command websocket is the Lambda behind every route of the WebSocket API:
// $connect, $disconnect, $default (client protocol v1) and custom routes the
// module sends to it. Configuration comes from WS_* environment variables.
// With WS_PUSHER_APP_KEY set it speaks the Pusher protocol and HTTP API
// instead (docs/pusher.md).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/wsforge/terraform-aws-websocket/lambda/auth"
	"github.com/wsforge/terraform-aws-websocket/lambda/lambdaenv"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
)

func main() {
	settings, err := lambdaenv.Parse(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "websocket: configuration:", err)
		os.Exit(1)
	}
	log := lambdaenv.Logger(settings.LogLevel)
	getenv, err := pusherSecretEnv(context.Background())
	if err != nil {
		log.Error("websocket: load pusher app secret", "error", err)
		os.Exit(1)
	}
	ps, pusherMode, err := lambdaenv.ParsePusher(getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "websocket: configuration:", err)
		os.Exit(1)
	}
	rec := lambdaenv.NewEMF(settings, lambdaenv.MetricsFunction(pusherMode))
	settings.Metrics = rec
	if pusherMode {
		h, err := lambdaenv.NewPusherHandler(context.Background(), settings, ps, log)
		if err != nil {
			log.Error("websocket: start pusher mode", "error", err)
			os.Exit(1)
		}
		lambda.Start(metrics.Wrap(rec, h.Invoke))
		return
	}
	m, err := lambdaenv.NewManager(context.Background(), settings, log, realtime.Hooks{})
	if err != nil {
		log.Error("websocket: start", "error", err)
		os.Exit(1)
	}
	// HandleJSON decodes the event itself, so numeric authorizer context
	// values (a userId above 2^53) keep their exact digits.
	lambda.Start(metrics.Wrap(rec, m.HandleJSON))
}

// pusherSecretEnv returns os.Getenv, or, when the Pusher app secret is given
// by reference (WS_PUSHER_APP_SECRET_SSM_PARAMETER or _ARN), a getenv that
// answers WS_PUSHER_APP_SECRET with the value fetched once, at cold start.
func pusherSecretEnv(ctx context.Context) (func(string) string, error) {
	if !lambdaenv.PusherSecretReferenced(os.Getenv) {
		return lambdaenv.WithPusherSecret(ctx, os.Getenv, auth.EnvClients{})
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	return lambdaenv.WithPusherSecret(ctx, os.Getenv, auth.EnvClients{SSM: ssm.NewFromConfig(awsCfg), SecretsManager: secretsmanager.NewFromConfig(awsCfg)})
}
