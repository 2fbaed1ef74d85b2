package store_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/store"
	"github.com/wsforge/terraform-aws-websocket/lambda/store/storetest"
)

// The DynamoDB tests run against DynamoDB Local when WS_DYNAMODB_ENDPOINT is
// set (`make test-dynamodb` starts it). With WS_REQUIRE_DYNAMODB=1 a missing
// endpoint fails the tests instead of skipping them.
const (
	envEndpoint = "WS_DYNAMODB_ENDPOINT"
	envRequire  = "WS_REQUIRE_DYNAMODB"
)

func dynamoEndpoint(t *testing.T) string {
	t.Helper()
	endpoint := os.Getenv(envEndpoint)
	if endpoint == "" {
		if os.Getenv(envRequire) == "1" {
			t.Fatalf("%s=1 but %s is not set", envRequire, envEndpoint)
		}
		t.Skipf("%s not set: DynamoDB contract tests run in `make test-dynamodb`", envEndpoint)
	}
	return endpoint
}

// localClient is a DynamoDB client for DynamoDB Local: static fake
// credentials, a region, no response checksum validation, and a request counter.
//
// DynamoDB Local serialises transactions on a lock and answers 500 "timed out
// waiting for a lock. This request will succeed in actual DynamoDB API" when
// the concurrency suites keep it busy on a loaded machine; the SDK retries
// those, but its client-side retry quota (meant to stop retry storms against
// a real service) runs dry within seconds. The tests retry more and without
// the quota, so an emulator artefact cannot fail a contract.
func localClient(t *testing.T) (*dynamodb.Client, *store.RequestCounter) {
	t.Helper()
	rc := store.NewRequestCounter()
	client := dynamodb.New(dynamodb.Options{
		Region:                          "us-east-1",
		BaseEndpoint:                    aws.String(dynamoEndpoint(t)),
		Credentials:                     credentials.NewStaticCredentialsProvider("local", "local", ""),
		DisableValidateResponseChecksum: true,
		APIOptions:                      []func(*middleware.Stack) error{rc.AddToStack},
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 10
			o.RateLimiter = ratelimit.None
		}),
	})
	return client, rc
}

var (
	tableSeq   atomic.Int64
	tableChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)
)

// freshTable creates a uniquely named table for one test and deletes it afterwards.
func freshTable(t *testing.T, client *dynamodb.Client) string {
	t.Helper()
	name := tableChars.ReplaceAllString(t.Name(), "-")
	name = fmt.Sprintf("ws-%d-%d-%s", time.Now().UnixNano()%1e9, tableSeq.Add(1), name)
	if len(name) > 200 {
		name = name[:200]
	}
	require.NoError(t, store.CreateTable(t.Context(), client, name))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		assert.NoError(t, err, "delete table %s", name)
	})
	return name
}

// residue lists the table's items other than counters at zero: a test-only
// Scan (the store itself never scans).
func residue(client *dynamodb.Client, table string) func(ctx context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		var left []string
		p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, it := range page.Items {
				pk := it["pk"].(*types.AttributeValueMemberS).Value
				sk := it["sk"].(*types.AttributeValueMemberS).Value
				if n, ok := it["n"].(*types.AttributeValueMemberN); ok && strings.HasPrefix(pk, "cnt#") {
					if n.Value == "0" {
						continue
					}
					left = append(left, fmt.Sprintf("%s/%s n=%s", pk, sk, n.Value))
					continue
				}
				left = append(left, pk+"/"+sk)
			}
		}
		slices.Sort(left)
		return left, nil
	}
}

func dynamoFactory(t *testing.T, cfg storetest.Config) storetest.Instance {
	client, rc := localClient(t)
	table := freshTable(t, client)
	t.Cleanup(func() {
		counts := rc.Snapshot()
		t.Logf("DynamoDB requests: %d %v", counts.Total(), counts.Requests)
	})
	s, err := store.NewDynamoDB(cutShort{client}, store.DynamoOptions{Table: table, TTL: cfg.TTL, Now: cfg.Now, PageSize: cfg.PageSize})
	require.NoError(t, err)
	return storetest.Instance{Store: s, Residue: residue(client, table), CutShort: cutShortAfter}
}

func TestDynamoDBContract(t *testing.T) {
	dynamoEndpoint(t)
	storetest.Run(t, dynamoFactory)
}

func TestDynamoDBConcurrency(t *testing.T) {
	dynamoEndpoint(t)
	storetest.RunConcurrency(t, dynamoFactory, storetest.ConcurrencyOptions{})
}

func TestCreateTableIdempotent(t *testing.T) {
	client, _ := localClient(t)
	table := freshTable(t, client)
	require.NoError(t, store.CreateTable(t.Context(), client, table), "second call")

	out, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	require.NoError(t, err)
	assert.Equal(t, types.TableStatusActive, out.Table.TableStatus)
	var indexes []string
	for _, g := range out.Table.GlobalSecondaryIndexes {
		indexes = append(indexes, aws.ToString(g.IndexName))
		assert.Equal(t, types.ProjectionTypeInclude, g.Projection.ProjectionType)
		assert.Equal(t, []string{store.TTLAttribute}, g.Projection.NonKeyAttributes)
	}
	slices.Sort(indexes)
	assert.Equal(t, []string{store.ChannelIndex, store.ShardIndex, store.UserIndex}, indexes)

	ttl, err := client.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	require.NoError(t, err)
	assert.Equal(t, store.TTLAttribute, aws.ToString(ttl.TimeToLiveDescription.AttributeName))
	assert.Equal(t, types.TimeToLiveStatusEnabled, ttl.TimeToLiveDescription.TimeToLiveStatus)
}

// TestCreateTableRefusesAnotherSchema: an existing table that is not the
// store's (a mistyped -table) is refused, and its TTL left alone.
func TestCreateTableRefusesAnotherSchema(t *testing.T) {
	client, _ := localClient(t)
	ctx := t.Context()
	create := func(in *dynamodb.CreateTableInput) string {
		name := fmt.Sprintf("ws-other-%d-%d", time.Now().UnixNano()%1e9, tableSeq.Add(1))
		in.TableName = aws.String(name)
		_, err := client.CreateTable(ctx, in)
		require.NoError(t, err)
		t.Cleanup(func() {
			_, err := client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
			assert.NoError(t, err)
		})
		return name
	}
	other := create(&dynamodb.CreateTableInput{
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	})
	err := store.CreateTable(ctx, client, other)
	require.ErrorContains(t, err, "exists with another schema than the store's (keys id HASH, want pk HASH, sk RANGE)")
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(other)})
	require.NoError(t, err)
	assert.Equal(t, types.TimeToLiveStatusDisabled, ttl.TimeToLiveDescription.TimeToLiveStatus, "someone else's table is not changed")

	noIndex := store.TableInput("")
	noIndex.GlobalSecondaryIndexes = noIndex.GlobalSecondaryIndexes[:2]
	noIndex.AttributeDefinitions = noIndex.AttributeDefinitions[:6] // without the shard index's keys
	require.ErrorContains(t, store.CreateTable(ctx, client, create(noIndex)), "no index "+store.ShardIndex)

	expires := create(store.TableInput(""))
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(expires), TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("expiresAt"), Enabled: aws.Bool(true)}})
	require.NoError(t, err)
	require.ErrorContains(t, store.CreateTable(ctx, client, expires), `expires items by attribute "expiresAt"`)
}

// TestDynamoDBRequestCounts measures the DynamoDB requests of each mutation
// on a nearly empty table and on one with many other connections, channels
// and members, and requires them to be the same constants.
func TestDynamoDBRequestCounts(t *testing.T) {
	type counts = map[string]int64
	want := map[string]counts{
		"AddConnection":                 {"TransactWriteItems": 1},
		"Join (new)":                    {"GetItem": 1, "TransactWriteItems": 1},
		"Join (again)":                  {"GetItem": 1, "TransactWriteItems": 1},
		"Leave":                         {"TransactWriteItems": 1},
		"Leave (not a member)":          {"TransactWriteItems": 1},
		"Leave (record gone)":           {"TransactWriteItems": 2},
		"GetConnection":                 {"Query": 1},
		"IsMember":                      {"GetItem": 1},
		"JoinAtMost (at the cap)":       {"GetItem": 2},
		"RemoveConnection (3 channels)": {"TransactWriteItems": 2, "Query": 1},
		"RemoveConnection (0 channels)": {"TransactWriteItems": 1, "Query": 1},
	}
	measure := func(t *testing.T, others int) map[string]store.RequestCounts {
		client, rc := localClient(t)
		table := freshTable(t, client)
		s, err := store.NewDynamoDB(client, store.DynamoOptions{Table: table})
		require.NoError(t, err)
		ctx := t.Context()
		for i := range others {
			id := fmt.Sprintf("other-%03d", i)
			require.NoError(t, s.AddConnection(ctx, store.Connection{ID: id, UserID: "u"}))
			for k := range 4 {
				_, err := s.Join(ctx, id, fmt.Sprintf("ch-%d", (i+k)%10))
				require.NoError(t, err)
			}
			_, err := s.Join(ctx, id, "a")
			require.NoError(t, err)
		}
		got := map[string]store.RequestCounts{}
		step := func(name string, fn func() error) {
			before := rc.Snapshot()
			require.NoError(t, fn(), name)
			got[name] = rc.Snapshot().Sub(before)
		}
		step("AddConnection", func() error { return s.AddConnection(ctx, store.Connection{ID: "me", UserID: "u"}) })
		step("Join (new)", func() error { _, err := s.Join(ctx, "me", "a"); return err })
		step("Join (again)", func() error { _, err := s.Join(ctx, "me", "a"); return err })
		for _, ch := range []string{"b", "c", "d"} {
			_, err := s.Join(ctx, "me", ch)
			require.NoError(t, err)
		}
		step("Leave", func() error { _, err := s.Leave(ctx, "me", "d"); return err })
		step("Leave (not a member)", func() error { _, err := s.Leave(ctx, "me", "d"); return err })
		step("GetConnection", func() error { _, err := s.GetConnection(ctx, "me"); return err })
		step("IsMember", func() error {
			if ok, err := s.IsMember(ctx, "me", "a"); err != nil || !ok {
				return fmt.Errorf("is member: %v %w", ok, err)
			}
			return nil
		})
		step("JoinAtMost (at the cap)", func() error {
			_, err := s.JoinAtMost(ctx, "me", "z", 3)
			if !errors.Is(err, store.ErrTooManyChannels) {
				return fmt.Errorf("join past the cap: %w", err)
			}
			return nil
		})
		step("RemoveConnection (3 channels)", func() error { _, err := s.RemoveConnection(ctx, "me"); return err })
		require.NoError(t, s.AddConnection(ctx, store.Connection{ID: "bare"}))
		step("RemoveConnection (0 channels)", func() error { _, err := s.RemoveConnection(ctx, "bare"); return err })
		// A membership whose connection record is gone (a removal cut short
		// deletes the record first): the first transaction is cancelled on
		// meta's condition and the second goes without it.
		require.NoError(t, s.AddConnection(ctx, store.Connection{ID: "orphan"}))
		_, err = s.Join(ctx, "orphan", "e")
		require.NoError(t, err)
		_, err = client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "c#orphan"}, "sk": &types.AttributeValueMemberS{Value: "meta"},
		}})
		require.NoError(t, err)
		step("Leave (record gone)", func() error {
			if left, err := s.Leave(ctx, "orphan", "e"); err != nil || !left {
				return fmt.Errorf("leave: %v %w", left, err)
			}
			return nil
		})
		return got
	}
	small := measure(t, 0)
	large := measure(t, 120)
	assert.Positive(t, large["AddConnection"].TotalCapacity(), "consumed capacity is reported")
	for _, op := range slices.Sorted(maps.Keys(want)) {
		w := want[op]
		assert.Equal(t, w, small[op].Requests, "%s on an empty table", op)
		assert.Equal(t, w, large[op].Requests, "%s among 120 connections in 11 channels", op)
		t.Logf("%-30s requests %v capacity units %.1f (empty) %.1f (120 others)", op, large[op].Requests,
			small[op].TotalCapacity(), large[op].TotalCapacity())
	}
}

func TestNewDynamoDBOptions(t *testing.T) {
	client := dynamodb.New(dynamodb.Options{Region: "us-east-1"})
	tests := []struct {
		name string
		opts store.DynamoOptions
		ok   bool
	}{
		{"defaults", store.DynamoOptions{Table: "t"}, true},
		{"all set", store.DynamoOptions{Table: "t", TTL: time.Hour, Shards: 4, PageSize: 10, Parallelism: 2, Now: time.Now}, true},
		{"no table", store.DynamoOptions{}, false},
		{"negative ttl", store.DynamoOptions{Table: "t", TTL: -time.Second}, false},
		{"sub-second ttl", store.DynamoOptions{Table: "t", TTL: time.Millisecond}, false},
		{"negative shards", store.DynamoOptions{Table: "t", Shards: -1}, false},
		{"too many shards", store.DynamoOptions{Table: "t", Shards: 1001}, false},
		{"negative page size", store.DynamoOptions{Table: "t", PageSize: -1}, false},
		{"negative parallelism", store.DynamoOptions{Table: "t", Parallelism: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := store.NewDynamoDB(client, tc.opts)
			if tc.ok {
				require.NoError(t, err)
				assert.NotNil(t, s)
			} else {
				require.Error(t, err)
			}
		})
	}
	_, err := store.NewDynamoDB(nil, store.DynamoOptions{Table: "t"})
	require.Error(t, err, "nil client")
}

// conflictInjector cancels every n-th transaction with a TransactionConflict
// reason before sending it, as DynamoDB does when two transactions touch the
// same item at once. DynamoDB Local serialises transactions and never does,
// so this is how the tests reach the store's retry path.
type conflictInjector struct {
	store.DynamoAPI
	every    int64
	calls    atomic.Int64
	injected atomic.Int64
}

func (c *conflictInjector) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if c.calls.Add(1)%c.every == 0 {
		c.injected.Add(1)
		reasons := make([]types.CancellationReason, len(in.TransactItems))
		codes := make([]string, len(reasons))
		for i := range reasons {
			codes[i] = "None"
		}
		codes[len(codes)-1] = "TransactionConflict"
		for i := range reasons {
			reasons[i].Code = aws.String(codes[i])
		}
		return nil, &types.TransactionCanceledException{
			Message:             aws.String("Transaction cancelled, please refer cancellation reasons for specific reasons [" + strings.Join(codes, ", ") + "]"),
			CancellationReasons: reasons,
		}
	}
	return c.DynamoAPI.TransactWriteItems(ctx, in, optFns...)
}

// TestDynamoDBTransactionConflictsRetried runs the concurrency suite with one
// transaction in three cancelled by a conflict: the store retries them and
// every membership and counter still comes out exact.
func TestDynamoDBTransactionConflictsRetried(t *testing.T) {
	dynamoEndpoint(t)
	storetest.RunConcurrency(t, func(t *testing.T, cfg storetest.Config) storetest.Instance {
		client, _ := localClient(t)
		table := freshTable(t, client)
		inj := &conflictInjector{DynamoAPI: client, every: 3}
		t.Cleanup(func() {
			assert.Positive(t, inj.injected.Load(), "conflicts injected")
			t.Logf("%d of %d transactions cancelled by an injected conflict", inj.injected.Load(), inj.calls.Load())
		})
		s, err := store.NewDynamoDB(inj, store.DynamoOptions{Table: table, TTL: cfg.TTL, Now: cfg.Now, PageSize: cfg.PageSize})
		require.NoError(t, err)
		return storetest.Instance{Store: s, Residue: residue(client, table)}
	}, storetest.ConcurrencyOptions{Connections: 60, RaceConnections: 30})
}

// TestDynamoDBLegacyOrphans covers memberships left without a removal marker
// (by a removal interrupted before markers existed, which deleted the record
// and its counter first): a repeated RemoveConnection sweeps them, and so does
// Cleanup once they expire, and every counter ends exact.
func TestDynamoDBLegacyOrphans(t *testing.T) {
	client, _ := localClient(t)
	table := freshTable(t, client)
	clock := storetest.NewClock(time.Now().Truncate(time.Second))
	s, err := store.NewDynamoDB(client, store.DynamoOptions{Table: table, TTL: time.Hour, Now: clock.Now, Shards: 1})
	require.NoError(t, err)
	ctx := t.Context()

	for _, id := range []string{"a", "b", "live"} {
		require.NoError(t, s.AddConnection(ctx, store.Connection{ID: id}))
		for _, ch := range []string{"x", "y"} {
			_, err := s.Join(ctx, id, ch)
			require.NoError(t, err)
		}
	}
	av := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	for _, id := range []string{"a", "b"} {
		_, err := client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Delete: &types.Delete{TableName: aws.String(table), Key: map[string]types.AttributeValue{"pk": av("c#" + id), "sk": av("meta")}}},
			{Update: &types.Update{
				TableName: aws.String(table), Key: map[string]types.AttributeValue{"pk": av("cnt#c#0"), "sk": av("cnt")},
				UpdateExpression:          aws.String("ADD n :d"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":d": &types.AttributeValueMemberN{Value: "-1"}},
			}},
		}})
		require.NoError(t, err)
	}

	st, err := s.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), st.TotalConnections)
	assert.Equal(t, map[string]int64{"x": 3, "y": 3}, st.Channels, "left-over memberships still counted")

	removed, err := s.RemoveConnection(ctx, "a")
	require.NoError(t, err)
	assert.True(t, removed, "the repeated removal swept the memberships")
	st, err = s.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"x": 2, "y": 2}, st.Channels)

	clock.Advance(time.Hour) // "b"'s memberships and "live" expire
	n, err := s.Cleanup(ctx, clock.Now())
	require.NoError(t, err)
	assert.Equal(t, 1, n, "one connection record (live) removed; b's memberships swept without a record")
	st, err = s.Stats(ctx)
	require.NoError(t, err)
	assert.Zero(t, st.TotalConnections)
	assert.Empty(t, st.Channels)
	left, err := residue(client, table)(ctx)
	require.NoError(t, err)
	assert.Empty(t, left)
}

// cutShort cancels a context once the store has completed a given number of
// TransactWriteItems requests under it, as a Lambda timeout would in the
// middle of an operation (see storetest.Instance.CutShort).
type cutShort struct {
	store.DynamoAPI
}

type cutKey struct{}

type cutBudget struct {
	left   atomic.Int64
	cancel context.CancelFunc
}

func cutShortAfter(ctx context.Context, writes int) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	b := &cutBudget{cancel: cancel}
	b.left.Store(int64(writes))
	return context.WithValue(ctx, cutKey{}, b)
}

func (c cutShort) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	out, err := c.DynamoAPI.TransactWriteItems(ctx, in, optFns...)
	if b, ok := ctx.Value(cutKey{}).(*cutBudget); ok && b.left.Add(-1) == 0 {
		b.cancel()
	}
	return out, err
}

// TestDynamoDBStoredTTL checks the ttl attribute DynamoDB's TTL process acts
// on: the connection's expiry plus store.TTLDeletionDelay, on the record and
// on each membership, so DynamoDB never deletes a record before Cleanup could.
func TestDynamoDBStoredTTL(t *testing.T) {
	client, _ := localClient(t)
	table := freshTable(t, client)
	now := time.Now().Truncate(time.Second)
	s, err := store.NewDynamoDB(client, store.DynamoOptions{Table: table, Now: func() time.Time { return now }})
	require.NoError(t, err)
	ctx := t.Context()
	expires := now.Add(90*time.Minute + 700*time.Millisecond)
	require.NoError(t, s.AddConnection(ctx, store.Connection{ID: "c", ExpiresAt: expires}))
	_, err = s.Join(ctx, "c", "news")
	require.NoError(t, err)

	want := fmt.Sprint(expires.Add(store.TTLDeletionDelay).Unix())
	for _, sk := range []string{"meta", "ch#news"} {
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true), Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "c#c"}, "sk": &types.AttributeValueMemberS{Value: sk},
		}})
		require.NoError(t, err)
		require.NotNil(t, out.Item, sk)
		assert.Equal(t, &types.AttributeValueMemberN{Value: want}, out.Item[store.TTLAttribute], sk)
	}
	got, err := s.GetConnection(ctx, "c")
	require.NoError(t, err)
	assert.True(t, expires.Truncate(time.Second).Equal(got.ExpiresAt), "ExpiresAt in whole seconds: %s", got.ExpiresAt)
}

// queryHook runs before once, the first time the store queries a
// connection's partition (the removal's read), and lets it shape the answer.
type queryHook struct {
	store.DynamoAPI
	fired  bool
	before func(ctx context.Context, in *dynamodb.QueryInput) (*dynamodb.QueryOutput, error)
}

func (h *queryHook) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if h.fired || in.IndexName != nil {
		return h.DynamoAPI.Query(ctx, in, o...)
	}
	h.fired = true
	return h.before(ctx, in)
}

// A join that lands while a removal reads the connection must not leave a
// membership behind: neither on a record written before the membership
// count existed (the join's ADD sets the count to 1 and would pass the
// removal's condition), nor when the read saw the join's count but not yet
// its membership (DynamoDB's Query is read-committed item by item, and the
// memberships sort before the record).
func TestDynamoDBRemovalRacingAJoinLeavesNoMembership(t *testing.T) {
	client, _ := localClient(t)
	ctx := t.Context()
	av := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, plain *store.DynamoDB, table string)
		read  func(t *testing.T, plain *store.DynamoDB, in *dynamodb.QueryInput) (*dynamodb.QueryOutput, error)
	}{
		{
			name: "record without a membership count",
			setup: func(t *testing.T, plain *store.DynamoDB, table string) {
				_, err := plain.Join(ctx, "c", "a")
				require.NoError(t, err)
				_, err = client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table),
					Key: map[string]types.AttributeValue{"pk": av("c#c"), "sk": av("meta")}, UpdateExpression: aws.String("REMOVE nch")})
				require.NoError(t, err)
			},
			read: func(t *testing.T, plain *store.DynamoDB, in *dynamodb.QueryInput) (*dynamodb.QueryOutput, error) {
				out, err := client.Query(ctx, in)
				_, jerr := plain.Join(ctx, "c", "b") // after the read, before the delete
				require.NoError(t, jerr)
				return out, err
			},
		},
		{
			name:  "the join's count read, its membership not",
			setup: func(*testing.T, *store.DynamoDB, string) {},
			read: func(t *testing.T, plain *store.DynamoDB, in *dynamodb.QueryInput) (*dynamodb.QueryOutput, error) {
				before, err := client.Query(ctx, in)
				require.NoError(t, err)
				_, err = plain.Join(ctx, "c", "b")
				require.NoError(t, err)
				after, err := client.Query(ctx, in)
				require.NoError(t, err)
				out := &dynamodb.QueryOutput{}
				for _, it := range before.Items {
					if it["sk"].(*types.AttributeValueMemberS).Value != "meta" {
						out.Items = append(out.Items, it)
					}
				}
				for _, it := range after.Items {
					if it["sk"].(*types.AttributeValueMemberS).Value == "meta" {
						out.Items = append(out.Items, it)
					}
				}
				return out, nil
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := freshTable(t, client)
			plain, err := store.NewDynamoDB(client, store.DynamoOptions{Table: table, Shards: 1})
			require.NoError(t, err)
			require.NoError(t, plain.AddConnection(ctx, store.Connection{ID: "c", UserID: "u"}))
			tc.setup(t, plain, table)
			hook := &queryHook{DynamoAPI: client}
			hook.before = func(ctx context.Context, in *dynamodb.QueryInput) (*dynamodb.QueryOutput, error) {
				return tc.read(t, plain, in)
			}
			s, err := store.NewDynamoDB(hook, store.DynamoOptions{Table: table, Shards: 1})
			require.NoError(t, err)
			removed, err := s.RemoveConnection(ctx, "c")
			require.NoError(t, err)
			require.True(t, hook.fired)
			assert.True(t, removed)
			for _, ch := range []string{"a", "b"} {
				var ids []string
				require.NoError(t, plain.ChannelMembers(ctx, ch, func(page []string) error { ids = append(ids, page...); return nil }))
				assert.Empty(t, ids, ch)
			}
			left, err := residue(client, table)(ctx)
			require.NoError(t, err)
			assert.Empty(t, left, "no membership, no marker")
		})
	}
}

// txHook runs before once, ahead of the store's first TransactWriteItems.
type txHook struct {
	store.DynamoAPI
	fired  bool
	before func(ctx context.Context)
}

func (h *txHook) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if !h.fired {
		h.fired = true
		h.before(ctx)
	}
	return h.DynamoAPI.TransactWriteItems(ctx, in, o...)
}

// A join of a connection removed between the join's read of the record and
// its transaction, whose membership of that channel the removal has not
// swept yet, is ErrNotFound, not "already a member".
func TestDynamoDBJoinOfAConnectionRemovedMeanwhile(t *testing.T) {
	client, _ := localClient(t)
	table := freshTable(t, client)
	ctx := t.Context()
	plain, err := store.NewDynamoDB(client, store.DynamoOptions{Table: table, Shards: 1})
	require.NoError(t, err)
	require.NoError(t, plain.AddConnection(ctx, store.Connection{ID: "c"}))
	_, err = plain.Join(ctx, "c", "a")
	require.NoError(t, err)
	av := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	hook := &txHook{DynamoAPI: client, before: func(ctx context.Context) {
		// The removal's first step: the record goes, the membership stays for its sweep.
		_, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table),
			Key: map[string]types.AttributeValue{"pk": av("c#c"), "sk": av("meta")}})
		require.NoError(t, err)
	}}
	s, err := store.NewDynamoDB(hook, store.DynamoOptions{Table: table, Shards: 1})
	require.NoError(t, err)
	added, err := s.Join(ctx, "c", "a")
	require.True(t, hook.fired)
	assert.False(t, added)
	assert.ErrorIs(t, err, store.ErrNotFound)
}

// TestDynamoDBCleanupSweepsZeroCounters: a channel everyone left leaves
// sub-counters at 0, which Channels and Stats would read forever; Cleanup
// deletes them, and a later join counts from scratch.
func TestDynamoDBCleanupSweepsZeroCounters(t *testing.T) {
	client, _ := localClient(t)
	table := freshTable(t, client)
	s, err := store.NewDynamoDB(client, store.DynamoOptions{Table: table})
	require.NoError(t, err)
	ctx := t.Context()
	channelCounters := func() (zero, other int) {
		out, err := client.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
		require.NoError(t, err)
		for _, it := range out.Items {
			if !strings.HasPrefix(it["pk"].(*types.AttributeValueMemberS).Value, "cnt#ch#") {
				continue
			}
			if it["n"].(*types.AttributeValueMemberN).Value == "0" {
				zero++
			} else {
				other++
			}
		}
		return zero, other
	}
	for _, id := range []string{"a", "b"} {
		require.NoError(t, s.AddConnection(ctx, store.Connection{ID: id}))
	}
	for _, ch := range []string{"gone-1", "gone-2", "kept"} {
		_, err := s.Join(ctx, "a", ch)
		require.NoError(t, err)
	}
	_, err = s.Join(ctx, "b", "kept")
	require.NoError(t, err)
	for _, ch := range []string{"gone-1", "gone-2"} {
		_, err := s.Leave(ctx, "a", ch)
		require.NoError(t, err)
	}
	zero, other := channelCounters()
	require.Equal(t, 2, zero, "the channels everyone left leave counters at 0")

	_, err = s.Cleanup(ctx, time.Now())
	require.NoError(t, err)
	zero, after := channelCounters()
	assert.Zero(t, zero, "Cleanup deletes the counters at 0")
	assert.Equal(t, other, after, "and no other")
	chans, err := s.Channels(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"kept"}, chans)

	_, err = s.Join(ctx, "b", "gone-1")
	require.NoError(t, err)
	st, err := s.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"gone-1": 1, "kept": 2}, st.Channels, "a join after the sweep counts from scratch")
}
