package fanout

import (
	"context"
	"errors"
	"fmt"
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

// DefaultWindow is how long a delivered batch is remembered: longer than
// SQS's retries of one message can span (visibility timeout × maxReceiveCount;
// at the module's limits 6 × 900 s × 10 = 15 h). The ledger item costs one
// write and expires by TTL.
const DefaultWindow = 24 * time.Hour

// MemoryLedger is a Ledger in memory, for one process (tests, local gateway).
type MemoryLedger struct {
	mu      sync.Mutex
	now     func() time.Time
	window  time.Duration
	entries map[string]ledgerEntry
}

type ledgerEntry struct {
	done  bool
	until time.Time // lease end while running, forgotten after when done
}

var _ Ledger = (*MemoryLedger)(nil)

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
func (m *MemoryLedger) Claim(_ context.Context, id string, lease time.Duration) (Claim, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if e, ok := m.entries[id]; ok && now.Before(e.until) {
		if e.done {
			return AlreadyDone, nil
		}
		return Busy, nil
	}
	m.entries[id] = ledgerEntry{until: now.Add(lease)}
	return Claimed, nil
}

// Complete implements Ledger.
func (m *MemoryLedger) Complete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries[id] = ledgerEntry{done: true, until: m.now().Add(m.window)}
	return nil
}

// Release implements Ledger.
func (m *MemoryLedger) Release(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[id]; ok && !e.done {
		delete(m.entries, id)
	}
	return nil
}

// DynamoAPI is the part of the DynamoDB client the ledger uses.
type DynamoAPI interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
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

var _ Ledger = (*DynamoLedger)(nil)

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
	ledgerPrefix  = "batch#"
	attrState     = "state"
	attrLeaseEnds = "leaseEnds"
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

// Claim implements Ledger with one conditional PutItem: it succeeds when no
// item exists, or the item is past its ttl (DynamoDB deletes late), or it is
// a running claim whose lease ran out.
func (d *DynamoLedger) Claim(ctx context.Context, id string, lease time.Duration) (Claim, error) {
	now := d.now()
	item := ledgerKey(id)
	item[attrState] = &types.AttributeValueMemberS{Value: stateRunning}
	item[attrLeaseEnds] = num(now.Add(lease).UnixMilli())
	item["ttl"] = num(now.Add(d.window).Unix())
	_, err := d.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String(d.table),
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(pk) OR #ttl < :nowS OR (#state = :running AND #lease < :nowMs)"),
		ExpressionAttributeNames: map[string]string{
			"#ttl": "ttl", "#state": attrState, "#lease": attrLeaseEnds,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":nowS":    num(now.Unix()),
			":nowMs":   num(now.UnixMilli()),
			":running": &types.AttributeValueMemberS{Value: stateRunning},
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return Claimed, nil
	case errors.As(err, &ccf):
		if s, ok := ccf.Item[attrState].(*types.AttributeValueMemberS); ok && s.Value == stateDone {
			return AlreadyDone, nil
		}
		return Busy, nil
	default:
		return Busy, fmt.Errorf("claim batch %s: %w", id, err)
	}
}

// Complete implements Ledger.
func (d *DynamoLedger) Complete(ctx context.Context, id string) error {
	_, err := d.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(d.table),
		Key:                       ledgerKey(id),
		UpdateExpression:          aws.String("SET #state = :done, #ttl = :ttl REMOVE #lease"),
		ExpressionAttributeNames:  map[string]string{"#state": attrState, "#ttl": "ttl", "#lease": attrLeaseEnds},
		ExpressionAttributeValues: map[string]types.AttributeValue{":done": &types.AttributeValueMemberS{Value: stateDone}, ":ttl": num(d.now().Add(d.window).Unix())},
	})
	if err != nil {
		return fmt.Errorf("complete batch %s: %w", id, err)
	}
	return nil
}

// Release implements Ledger: it deletes a running claim (never a done one).
func (d *DynamoLedger) Release(ctx context.Context, id string) error {
	_, err := d.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(d.table),
		Key:                       ledgerKey(id),
		ConditionExpression:       aws.String("#state = :running"),
		ExpressionAttributeNames:  map[string]string{"#state": attrState},
		ExpressionAttributeValues: map[string]types.AttributeValue{":running": &types.AttributeValueMemberS{Value: stateRunning}},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("release batch %s: %w", id, err)
	}
	return nil
}
