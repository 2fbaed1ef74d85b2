// Command fanout is the fan-out worker Lambda: it receives batches of
// recipients from the SQS fan-out queue (events.SQSEvent) and delivers each
// through the management API, reporting the batches to retry. Environment:
// WS_TABLE_NAME (connections table: dead connections are removed from it and
// the idempotency ledger lives in it), WS_MANAGEMENT_ENDPOINT (for batches
// without an endpoint), WS_PUSHER_MANAGEMENT_ENDPOINT (Pusher mode: the
// Pusher stage, through which member_removed is announced for the Pusher
// connections found gone), WS_SEND_CONCURRENCY, WS_MAX_SEND_RATE,
// WS_LOG_LEVEL, WS_METRICS_NAMESPACE (CloudWatch EMF metrics on stdout).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wsforge/terraform-aws-websocket/lambda/fanout"
	"github.com/wsforge/terraform-aws-websocket/lambda/lambdaenv"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

func main() {
	settings, err := lambdaenv.Parse(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanout: configuration:", err)
		os.Exit(1)
	}
	log := lambdaenv.Logger(settings.LogLevel)
	rec := lambdaenv.NewEMF(settings, metrics.FunctionFanout)
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Error("fanout: load aws config", "error", err)
		os.Exit(1)
	}
	db := dynamodb.NewFromConfig(awsCfg)
	st, err := store.NewDynamoDB(db, store.DynamoOptions{Table: settings.TableName, TTL: settings.ConnectionTTL})
	if err != nil {
		log.Error("fanout: store", "error", err)
		os.Exit(1)
	}
	ledger, err := fanout.NewDynamoLedger(db, settings.TableName, fanout.DefaultWindow)
	if err != nil {
		log.Error("fanout: ledger", "error", err)
		os.Exit(1)
	}
	httpClient := sender.NewHTTPClient(settings.SendConcurrency)
	newPoster := func(endpoint string) (sender.Poster, error) {
		return sender.NewManagementAPI(awsCfg, endpoint, httpClient)
	}
	// Removes the connections that answer 410 and leaves their protocol v1
	// presence channels (member_left), as the websocket and publisher
	// functions do; its own posts (member_left) stay in this process.
	presence, err := store.NewDynamoPresence(db, store.DynamoOptions{Table: settings.TableName, TTL: settings.ConnectionTTL})
	if err != nil {
		log.Error("fanout: presence", "error", err)
		os.Exit(1)
	}
	gone, err := realtime.New(realtime.Config{
		Store: st, Presence: presence, NewPoster: newPoster, ManagementEndpoint: settings.ManagementEndpoint,
		Sender: sender.Options{Concurrency: settings.SendConcurrency, MaxRate: settings.MaxSendRate},
		TTL:    settings.ConnectionTTL, Logger: log, Metrics: rec,
	})
	if err != nil {
		log.Error("fanout: runtime", "error", err)
		os.Exit(1)
	}
	// The Pusher function's batches reach Pusher connections: one found gone
	// leaves its Pusher presence channels with member_removed, as on
	// $disconnect (quietly without WS_PUSHER_MANAGEMENT_ENDPOINT).
	settings.Metrics = rec // the announcer's posts count as this function's
	announce, err := lambdaenv.NewPusherAnnouncer(awsCfg, settings, log)
	if err != nil {
		log.Error("fanout: pusher announcer", "error", err)
		os.Exit(1)
	}
	lambdaenv.LeavePusherPresence(gone, announce, log)
	w, err := fanout.NewWorker(fanout.WorkerConfig{
		Endpoint: settings.ManagementEndpoint,
		Ledger:   ledger,
		Logger:   log,
		Metrics:  rec,
		NewSender: func(endpoint string) (*sender.Sender, error) {
			api, err := newPoster(endpoint)
			if err != nil {
				return nil, err
			}
			return sender.NewSender(api, sender.Options{
				Concurrency:   settings.SendConcurrency,
				MaxRate:       settings.MaxSendRate,
				OmitDelivered: true,
				Metrics:       rec,
				OnGone:        gone.RemoveGone,
			}), nil
		},
	})
	if err != nil {
		log.Error("fanout: worker", "error", err)
		os.Exit(1)
	}
	lambda.Start(metrics.Wrap(rec, w.Handle))
}
