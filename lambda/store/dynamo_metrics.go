package store

import (
	"context"
	"maps"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// RequestCounter counts the DynamoDB requests a client sends (every attempt,
// retries included) by operation name, and sums the capacity units DynamoDB
// reports for them. It asks for ReturnConsumedCapacity TOTAL on every request
// it sees. Install it on a client with
//
//	dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, rc.AddToStack) })
//
// Benchmarks and tests read it with Snapshot before and after an operation.
type RequestCounter struct {
	mu       sync.Mutex
	requests map[string]int64
	capacity map[string]float64
}

// RequestCounts is a snapshot of a RequestCounter.
type RequestCounts struct {
	// Requests maps an operation name (GetItem, Query, TransactWriteItems, ...) to its request count.
	Requests map[string]int64
	// Capacity maps an operation name to the capacity units DynamoDB reported for it.
	Capacity map[string]float64
}

// NewRequestCounter returns an empty counter.
func NewRequestCounter() *RequestCounter {
	return &RequestCounter{requests: map[string]int64{}, capacity: map[string]float64{}}
}

// Snapshot returns a copy of the counts so far.
func (rc *RequestCounter) Snapshot() RequestCounts {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return RequestCounts{Requests: maps.Clone(rc.requests), Capacity: maps.Clone(rc.capacity)}
}

// Sub returns the counts in c that are not in earlier (c minus earlier).
func (c RequestCounts) Sub(earlier RequestCounts) RequestCounts {
	out := RequestCounts{Requests: map[string]int64{}, Capacity: map[string]float64{}}
	for op, n := range c.Requests {
		if d := n - earlier.Requests[op]; d != 0 {
			out.Requests[op] = d
		}
	}
	for op, n := range c.Capacity {
		if d := n - earlier.Capacity[op]; d != 0 {
			out.Capacity[op] = d
		}
	}
	return out
}

// Total is the number of requests over all operations.
func (c RequestCounts) Total() int64 {
	var n int64
	for _, v := range c.Requests {
		n += v
	}
	return n
}

// TotalCapacity is the capacity units over all operations.
func (c RequestCounts) TotalCapacity() float64 {
	var n float64
	for _, v := range c.Capacity {
		n += v
	}
	return n
}

// AddToStack installs the counter on a client's middleware stack; use it as
// an entry of dynamodb.Options.APIOptions.
func (rc *RequestCounter) AddToStack(stack *middleware.Stack) error {
	if err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("wsCapacity",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			in.Parameters = withCapacity(in.Parameters)
			out, md, err := next.HandleInitialize(ctx, in)
			if err == nil {
				if units := consumed(out.Result); units != 0 {
					rc.mu.Lock()
					rc.capacity[awsmiddleware.GetOperationName(ctx)] += units
					rc.mu.Unlock()
				}
			}
			return out, md, err
		}), middleware.Before); err != nil {
		return err
	}
	// After the retry middleware, so each attempt counts as a request.
	return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("wsRequests",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			rc.mu.Lock()
			rc.requests[awsmiddleware.GetOperationName(ctx)]++
			rc.mu.Unlock()
			return next.HandleFinalize(ctx, in)
		}), "Retry", middleware.After)
}

// withCapacity returns a copy of a request's input that asks for
// ReturnConsumedCapacity TOTAL (a copy, so the caller's input is not written
// to and may be shared between goroutines), or params itself for other operations.
func withCapacity(params any) any {
	total := types.ReturnConsumedCapacityTotal
	switch in := params.(type) {
	case *dynamodb.GetItemInput:
		c := *in
		c.ReturnConsumedCapacity = total
		return &c
	case *dynamodb.QueryInput:
		c := *in
		c.ReturnConsumedCapacity = total
		return &c
	case *dynamodb.ScanInput:
		c := *in
		c.ReturnConsumedCapacity = total
		return &c
	case *dynamodb.BatchGetItemInput:
		c := *in
		c.ReturnConsumedCapacity = total
		return &c
	case *dynamodb.TransactWriteItemsInput:
		c := *in
		c.ReturnConsumedCapacity = total
		return &c
	case *dynamodb.PutItemInput:
		c := *in
		c.ReturnConsumedCapacity = total
		return &c
	case *dynamodb.UpdateItemInput:
		c := *in
		c.ReturnConsumedCapacity = total
		return &c
	case *dynamodb.DeleteItemInput:
		c := *in
		c.ReturnConsumedCapacity = total
		return &c
	}
	return params
}

func sumCapacity(cc ...types.ConsumedCapacity) float64 {
	var n float64
	for _, c := range cc {
		if c.CapacityUnits != nil {
			n += *c.CapacityUnits
		}
	}
	return n
}

func consumed(result any) float64 {
	switch out := result.(type) {
	case *dynamodb.GetItemOutput:
		if out.ConsumedCapacity != nil {
			return sumCapacity(*out.ConsumedCapacity)
		}
	case *dynamodb.QueryOutput:
		if out.ConsumedCapacity != nil {
			return sumCapacity(*out.ConsumedCapacity)
		}
	case *dynamodb.ScanOutput:
		if out.ConsumedCapacity != nil {
			return sumCapacity(*out.ConsumedCapacity)
		}
	case *dynamodb.BatchGetItemOutput:
		return sumCapacity(out.ConsumedCapacity...)
	case *dynamodb.TransactWriteItemsOutput:
		return sumCapacity(out.ConsumedCapacity...)
	case *dynamodb.PutItemOutput:
		if out.ConsumedCapacity != nil {
			return sumCapacity(*out.ConsumedCapacity)
		}
	case *dynamodb.UpdateItemOutput:
		if out.ConsumedCapacity != nil {
			return sumCapacity(*out.ConsumedCapacity)
		}
	case *dynamodb.DeleteItemOutput:
		if out.ConsumedCapacity != nil {
			return sumCapacity(*out.ConsumedCapacity)
		}
	}
	return 0
}
