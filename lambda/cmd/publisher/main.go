// Command publisher is the server-side API Lambda: backends in any language
// invoke it with a JSON command (send, sendToUser, sendToChannel, broadcast,
// disconnect, stats, ...; see docs/publisher.md) and get per-recipient results.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wsforge/terraform-aws-websocket/lambda/lambdaenv"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/publisher"
	"github.com/wsforge/terraform-aws-websocket/lambda/pusher"
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
	m, err := lambdaenv.NewManager(context.Background(), settings, log, realtime.Hooks{})
	if err != nil {
		log.Error("publisher: start", "error", err)
		os.Exit(1)
	}
	// Its scheduled Cleanup also removes expired Pusher connections (same
	// table): leave their Pusher presence channels (docs/pusher.md).
	if p := m.Presence(); p != nil {
		m.OnRemoved(pusher.LeavePresenceQuietly(p, log))
	}
	lambda.Start(metrics.Wrap(rec, publisher.New(m).Handle))
}
