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
	rec := lambdaenv.NewEMF(settings, metrics.FunctionWebSocket)
	settings.Metrics = rec
	ps, pusherMode, err := lambdaenv.ParsePusher(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "websocket: configuration:", err)
		os.Exit(1)
	}
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
