package realtime

import (
	"context"

	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// Distributor hands large fan-outs to worker Lambdas instead of sending them
// from the calling one. *fanout.Enqueuer (package lambda/fanout) implements
// it over SQS: up to its threshold (WS_FANOUT_THRESHOLD) it sends directly
// with s; above, it enqueues the recipients in batches (WS_FANOUT_BATCH_SIZE)
// for the fan-out worker and reports how many in Report.Batches, the rest of
// the Report empty.
//
// endpoint is the management API the recipients belong to, carried in each
// batch for the worker; pages yields the recipients a page at a time.
type Distributor interface {
	SendOrDistribute(ctx context.Context, s *sender.Sender, endpoint string, data []byte,
		pages func(fn func(ids []string) error) error) (sender.Report, error)
}
