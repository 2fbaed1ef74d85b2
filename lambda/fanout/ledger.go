package fanout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Claim is the outcome of claiming a batch.
type Claim int

// Claim outcomes.
const (
	// Claimed: deliver the batch, then Complete it (or Release it on failure).
	Claimed Claim = iota
	// AlreadyDone: the batch was delivered within the window; acknowledge it.
	AlreadyDone
	// Busy: another worker holds a live lease on the batch; retry it later.
	Busy
)

// Ledger records which batches were delivered, for idempotency.
type Ledger interface {
	// Claim takes the batch for delivery for at most lease. A running batch
	// whose lease ran out (its worker died) can be claimed again.
	Claim(ctx context.Context, batchID string, lease time.Duration) (Claim, error)
	// Complete marks the batch delivered; redeliveries within the window are AlreadyDone.
	Complete(ctx context.Context, batchID string) error
	// Release gives up a claim so that a redelivery delivers the batch again.
	Release(ctx context.Context, batchID string) error
}

// ProgressLedger is a Ledger that also remembers, for a batch given back
// with ReleaseRemaining, which of its recipients are left: the next claim
// returns them, so a redelivery (or a DLQ redrive) sends only to those, not
// again to the ones that already have the message, and a batch too large
// for one invocation goes on where the last one stopped. Both ledgers here
// implement it; the worker uses it when its Ledger does.
type ProgressLedger interface {
	Ledger
	// ClaimRemaining is Claim that also returns the recipients left by the
	// last ReleaseRemaining (nil: all of the batch's).
	ClaimRemaining(ctx context.Context, batchID string, lease time.Duration) (Claim, []string, error)
	// ReleaseRemaining gives up a claim, keeping remaining (the recipients
	// a redelivery sends to; nil or empty: all again, as Release).
	ReleaseRemaining(ctx context.Context, batchID string, remaining []string) error
}

// DefaultWindow is how long a delivered batch is remembered: longer than
// SQS's retries of one message can span (visibility timeout × maxReceiveCount;
// at the module's limits 6 × 900 s × 10 = 15 h). The ledger item costs one
// write and expires by TTL.
const DefaultWindow = 24 * time.Hour

// RedriveWindow is how long a released batch keeps its remaining recipients:
// a batch that keeps failing goes to the dead-letter queue, which keeps it 14
// days from its first enqueue (before any release), and may be redriven to
// the queue any time in those days; a day more covers the redrive itself.
// Were the item deleted sooner, a redriven batch would find no remaining
// list and go to all its recipients again.
const RedriveWindow = 15 * 24 * time.Hour

// releasedWindow is how long a released batch is kept: window, or
// RedriveWindow when longer.
func releasedWindow(window time.Duration) time.Duration { return max(window, RedriveWindow) }

// MemoryLedger is a Ledger in memory, for one process (tests, local gateway).
type MemoryLedger struct {
	mu      sync.Mutex
	now     func() time.Time
	window  time.Duration
	entries map[string]ledgerEntry
}

type ledgerEntry struct {
	done      bool
	released  bool      // given back with remaining recipients
	until     time.Time // lease end while running, forgotten after when done
	remaining []string  // after ReleaseRemaining
}

var _ ProgressLedger = (*MemoryLedger)(nil)

// NewMemoryLedger returns an empty ledger remembering batches for window
// (DefaultWindow if 0); now may be nil for time.Now.
func NewMemoryLedger(window time.Duration, now func() time.Time) *MemoryLedger {
	if window <= 0 {
		window = DefaultWindow
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryLedger{now: now, window: window, entries: map[string]ledgerEntry{}}
}

// Claim implements Ledger.
func (m *MemoryLedger) Claim(ctx context.Context, id string, lease time.Duration) (Claim, error) {
	c, _, err := m.ClaimRemaining(ctx, id, lease)
	return c, err
}

// ClaimRemaining implements ProgressLedger.
func (m *MemoryLedger) ClaimRemaining(_ context.Context, id string, lease time.Duration) (Claim, []string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	e, ok := m.entries[id]
	if ok && !e.released && now.Before(e.until) {
		if e.done {
			return AlreadyDone, nil, nil
		}
		return Busy, nil, nil
	}
	// The remaining recipients stay with the claim: a worker that dies
	// with it leaves them to the next one.
	m.entries[id] = ledgerEntry{until: now.Add(lease), remaining: e.remaining}
	return Claimed, e.remaining, nil
}

// Complete implements Ledger.
func (m *MemoryLedger) Complete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries[id] = ledgerEntry{done: true, until: m.now().Add(m.window)}
	return nil
}

// Release implements Ledger.
func (m *MemoryLedger) Release(ctx context.Context, id string) error {
	return m.ReleaseRemaining(ctx, id, nil)
}

// ReleaseRemaining implements ProgressLedger.
func (m *MemoryLedger) ReleaseRemaining(_ context.Context, id string, remaining []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[id]
	switch {
	case !ok || e.done:
	case len(remaining) == 0:
		delete(m.entries, id)
	default:
		m.entries[id] = ledgerEntry{released: true, until: m.now().Add(releasedWindow(m.window)), remaining: slices.Clone(remaining)}
	}
	return nil
}

// DynamoAPI is the part of the DynamoDB client the ledger uses.
type DynamoAPI interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

var _ DynamoAPI = (*dynamodb.Client)(nil)

// DynamoLedger keeps the ledger in the connections table: one item
// pk=batch#<id>, sk=batch with a state, a lease end and the table's ttl
// attribute, so DynamoDB deletes it after the window. Every read is a
// condition on a write: no item is ever read separately.
type DynamoLedger struct {
	client DynamoAPI
	table  string
	window time.Duration
	now    func() time.Time
}

var _ ProgressLedger = (*DynamoLedger)(nil)

// NewDynamoLedger returns a ledger in table; window 0 means DefaultWindow.
func NewDynamoLedger(client DynamoAPI, table string, window time.Duration) (*DynamoLedger, error) {
	if client == nil || table == "" {
		return nil, errors.New("fanout: dynamodb ledger needs a client and a table")
	}
	if window <= 0 {
		window = DefaultWindow
	}
	return &DynamoLedger{client: client, table: table, window: window, now: time.Now}, nil
}

const (
	ledgerSK      = "batch"
	stateRunning  = "running"
	stateDone     = "done"
	stateReleased = "released" // given back with the recipients left
	ledgerPrefix  = "batch#"
	attrState     = "state"
	attrLeaseEnds = "leaseEnds"
	attrRemaining = "remaining"
)

func ledgerKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: ledgerPrefix + id},
		"sk": &types.AttributeValueMemberS{Value: ledgerSK},
	}
}

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// WithClock makes the ledger read time from now (tests; nil restores time.Now).
func (d *DynamoLedger) WithClock(now func() time.Time) *DynamoLedger {
	if now == nil {
		now = time.Now
	}
	d.now = now
	return d
}

// Claim implements Ledger (ClaimRemaining without the recipients).
func (d *DynamoLedger) Claim(ctx context.Context, id string, lease time.Duration) (Claim, error) {
	c, _, err := d.ClaimRemaining(ctx, id, lease)
	return c, err
}

// ClaimRemaining implements ProgressLedger with one conditional UpdateItem
// (which creates the item when there is none): it succeeds when no item
// exists, or the item is past its ttl (DynamoDB deletes late), or it is a
// running claim whose lease ran out, or a batch released with recipients
// left, which it returns (they stay on the item for a next claimer).
func (d *DynamoLedger) ClaimRemaining(ctx context.Context, id string, lease time.Duration) (Claim, []string, error) {
	now := d.now()
	// The ttl is the redrive window's: a claimer may die holding the claim
	// (and the recipients a released batch had left) and the message go on
	// to the dead-letter queue, so the item must outlive a redrive from it
	// as a released one does. Complete shortens it.
	out, err := d.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(d.table),
		Key:                 ledgerKey(id),
		UpdateExpression:    aws.String("SET #state = :running, #lease = :lease, #ttl = :ttl"),
		ConditionExpression: aws.String("attribute_not_exists(pk) OR #ttl < :nowS OR (#state = :running AND #lease < :nowMs) OR #state = :released"),
		ExpressionAttributeNames: map[string]string{
			"#ttl": "ttl", "#state": attrState, "#lease": attrLeaseEnds,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":lease":    num(now.Add(lease).UnixMilli()),
			":ttl":      num(now.Add(releasedWindow(d.window)).Unix()),
			":nowS":     num(now.Unix()),
			":nowMs":    num(now.UnixMilli()),
			":running":  &types.AttributeValueMemberS{Value: stateRunning},
			":released": &types.AttributeValueMemberS{Value: stateReleased},
		},
		ReturnValues:                        types.ReturnValueAllOld,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		var remaining []string
		if l, ok := out.Attributes[attrRemaining].(*types.AttributeValueMemberL); ok {
			for _, v := range l.Value {
				if s, ok := v.(*types.AttributeValueMemberS); ok {
					remaining = append(remaining, s.Value)
				}
			}
		}
		return Claimed, remaining, nil
	case errors.As(err, &ccf):
		if s, ok := ccf.Item[attrState].(*types.AttributeValueMemberS); ok && s.Value == stateDone {
			return AlreadyDone, nil, nil
		}
		return Busy, nil, nil
	default:
		return Busy, nil, fmt.Errorf("claim batch %s: %w", id, err)
	}
}

// Complete implements Ledger.
func (d *DynamoLedger) Complete(ctx context.Context, id string) error {
	_, err := d.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(d.table),
		Key:                       ledgerKey(id),
		UpdateExpression:          aws.String("SET #state = :done, #ttl = :ttl REMOVE #lease, #rem"),
		ExpressionAttributeNames:  map[string]string{"#state": attrState, "#ttl": "ttl", "#lease": attrLeaseEnds, "#rem": attrRemaining},
		ExpressionAttributeValues: map[string]types.AttributeValue{":done": &types.AttributeValueMemberS{Value: stateDone}, ":ttl": num(d.now().Add(d.window).Unix())},
	})
	if err != nil {
		return fmt.Errorf("complete batch %s: %w", id, err)
	}
	return nil
}

// Release implements Ledger: it deletes a running claim (never a done one),
// so a redelivery sends to all of the batch's recipients.
func (d *DynamoLedger) Release(ctx context.Context, id string) error {
	return d.ReleaseRemaining(ctx, id, nil)
}

// ReleaseRemaining implements ProgressLedger: a running claim becomes a
// released batch holding remaining (a list, in the batch's order); with no
// remaining recipients it is deleted, as Release does. A done batch is
// never touched.
func (d *DynamoLedger) ReleaseRemaining(ctx context.Context, id string, remaining []string) error {
	var err error
	if len(remaining) == 0 {
		_, err = d.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                 aws.String(d.table),
			Key:                       ledgerKey(id),
			ConditionExpression:       aws.String("#state = :running"),
			ExpressionAttributeNames:  map[string]string{"#state": attrState},
			ExpressionAttributeValues: map[string]types.AttributeValue{":running": &types.AttributeValueMemberS{Value: stateRunning}},
		})
	} else {
		list := make([]types.AttributeValue, len(remaining))
		for i, r := range remaining {
			list[i] = &types.AttributeValueMemberS{Value: r}
		}
		_, err = d.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:           aws.String(d.table),
			Key:                 ledgerKey(id),
			UpdateExpression:    aws.String("SET #state = :released, #rem = :rem, #ttl = :ttl REMOVE #lease"),
			ConditionExpression: aws.String("#state = :running"),
			ExpressionAttributeNames: map[string]string{
				"#state": attrState, "#rem": attrRemaining, "#ttl": "ttl", "#lease": attrLeaseEnds,
			},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":released": &types.AttributeValueMemberS{Value: stateReleased},
				":running":  &types.AttributeValueMemberS{Value: stateRunning},
				":rem":      &types.AttributeValueMemberL{Value: list},
				":ttl":      num(d.now().Add(releasedWindow(d.window)).Unix()),
			},
		})
	}
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("release batch %s: %w", id, err)
	}
	return nil
}
