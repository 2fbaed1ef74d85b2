// Command publisher is the server-side API Lambda: backends in any language
// invoke it with a JSON command (send, sendToUser, sendToChannel, broadcast,
// disconnect, stats, ...; see docs/publisher.md) and get per-recipient results.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/wsforge/terraform-aws-websocket/lambda/lambdaenv"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/publisher"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
)

func main() {
	settings, err := lambdaenv.Parse(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "publisher: configuration:", err)
		os.Exit(1)
	}
	log := lambdaenv.Logger(settings.LogLevel)
	rec := lambdaenv.NewEMF(settings, metrics.FunctionPublisher)
	settings.Metrics = rec
	awsCfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Error("publisher: load aws config", "error", err)
		os.Exit(1)
	}
	m, err := lambdaenv.NewManagerFromConfig(awsCfg, settings, log, realtime.Hooks{})
	if err != nil {
		log.Error("publisher: start", "error", err)
		os.Exit(1)
	}
	// Its scheduled Cleanup also removes expired Pusher connections (same
	// table): they leave their Pusher presence channels, with member_removed
	// through the Pusher stage when the module gives its endpoint
	// (WS_PUSHER_MANAGEMENT_ENDPOINT; docs/pusher.md).
	announce, err := lambdaenv.NewPusherAnnouncer(awsCfg, settings, log)
	if err != nil {
		log.Error("publisher: start", "error", err)
		os.Exit(1)
	}
	lambdaenv.LeavePusherPresence(m, announce, log)
	lambda.Start(metrics.Wrap(rec, publisher.New(m).Handle))
}
