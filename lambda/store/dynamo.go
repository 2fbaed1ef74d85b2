package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Names of the single-table layout. The Terraform module creates the same
// table; docs/data-model.md describes every item.
const (
	// ChannelIndex is the GSI holding channel memberships (gsi1pk = "ch#"+channel, gsi1sk = connection id).
	ChannelIndex = "channel-index"
	// UserIndex is the GSI holding a user's connections (gsi2pk = "u#"+user, gsi2sk = connection id).
	UserIndex = "user-index"
	// ShardIndex is the GSI holding every connection, spread over shards (gsi3pk = "s#"+shard, gsi3sk = connection id).
	ShardIndex = "shard-index"
	// TTLAttribute is the table's TTL attribute: expiry in epoch seconds.
	TTLAttribute = "ttl"
)

const (
	attrPK          = "pk"
	attrSK          = "sk"
	attrTTL         = TTLAttribute
	attrGSI1PK      = "gsi1pk"
	attrGSI1SK      = "gsi1sk"
	attrGSI2PK      = "gsi2pk"
	attrGSI2SK      = "gsi2sk"
	attrGSI3PK      = "gsi3pk"
	attrGSI3SK      = "gsi3sk"
	attrID          = "id"
	attrUserID      = "userId"
	attrConnectedAt = "connectedAt"
	attrRouteKey    = "routeKey"
	attrSourceIP    = "sourceIp"
	attrUserAgent   = "userAgent"
	attrChannel     = "ch"
	attrCount       = "n"
	// attrMemberships on a connection record counts its memberships, so a
	// join can be capped in the same transaction that adds one.
	attrMemberships = "nch"
	// attrPending on a connection record is Connection.Pending.
	attrPending = "pending"

	prefixConn        = "c#"
	prefixMember      = "ch#"
	prefixUser        = "u#"
	prefixShard       = "s#"
	prefixConnCount   = "cnt#c#"
	prefixChanCount   = "cnt#ch#"
	prefixRemoving    = "rm#"
	skMeta            = "meta"
	skConnCount       = "cnt"
	maxTxItems        = 100 // DynamoDB's TransactWriteItems limit
	maxTxAttempts     = 30  // attempts while a transaction only meets TransactionConflict/throttling
	maxSweepRounds    = 50  // re-queries of a connection's memberships while others remove them too
	defaultShards     = 16
	maxShards         = 1000
	defaultPageSize   = 1000
	defaultParallel   = 8
	txBackoffBase     = 5 * time.Millisecond
	txBackoffMaxDelay = 400 * time.Millisecond
)

// DynamoAPI is the subset of *dynamodb.Client that the DynamoDB store uses.
type DynamoAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ DynamoAPI = (*dynamodb.Client)(nil)

// DynamoOptions configures a DynamoDB store.
type DynamoOptions struct {
	// Table is the table name (required).
	Table string
	// TTL is added to ConnectedAt when a connection has no ExpiresAt. Zero means DefaultTTL.
	TTL time.Duration
	// Shards is how many partitions the shard-index and the counters are
	// spread over. Zero means 16. It must stay the same for the life of a table.
	Shards int
	// Now returns the current time; nil means time.Now. Tests use it to expire records.
	Now func() time.Time
	// PageSize is the Query Limit of streamed reads (ChannelMembers,
	// AllConnections), so each PageFunc call receives at most PageSize ids.
	// Zero means 1000.
	PageSize int
	// Parallelism bounds the concurrent Queries of AllConnections, Stats,
	// Channels and Cleanup. Zero means 8.
	Parallelism int
}

// DynamoDB is the Store on Amazon DynamoDB: one table, three GSIs, sharded
// counters. Every connect, join and leave is a constant number of requests, a
// removal one Query and one transaction per 49 memberships (transactions with
// conditions, so concurrent writers cannot lose each other's updates), every
// lookup is a Query or GetItem (never a Scan), and every read ignores items
// whose ttl has passed, because DynamoDB deletes expired items up to days late.
//
// Expiry has one-second resolution: ExpiresAt is kept in whole epoch seconds
// (truncated) and a record is live while now < ExpiresAt. The ttl attribute
// that DynamoDB's TTL acts on is ExpiresAt plus TTLDeletionDelay.
//
// Stats and Channels are read from counters maintained on write; they include
// connections that expired but have not yet been removed by Cleanup.
type DynamoDB struct {
	client DynamoAPI
	opts   DynamoOptions
}

var _ Store = (*DynamoDB)(nil)

// NewDynamoDB returns a store on an existing table (see CreateTable for the schema).
func NewDynamoDB(client DynamoAPI, opts DynamoOptions) (*DynamoDB, error) {
	if client == nil {
		return nil, errors.New("new dynamodb store: nil client")
	}
	if opts.Table == "" {
		return nil, errors.New("new dynamodb store: empty table name")
	}
	if opts.TTL < 0 {
		return nil, fmt.Errorf("new dynamodb store: negative TTL %s", opts.TTL)
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.TTL < time.Second {
		return nil, fmt.Errorf("new dynamodb store: TTL %s below the one-second resolution", opts.TTL)
	}
	if opts.Shards < 0 || opts.Shards > maxShards {
		return nil, fmt.Errorf("new dynamodb store: shards %d out of range 1..%d", opts.Shards, maxShards)
	}
	if opts.Shards == 0 {
		opts.Shards = defaultShards
	}
	if opts.PageSize < 0 {
		return nil, fmt.Errorf("new dynamodb store: negative page size %d", opts.PageSize)
	}
	if opts.PageSize == 0 {
		opts.PageSize = defaultPageSize
	}
	if opts.Parallelism < 0 {
		return nil, fmt.Errorf("new dynamodb store: negative parallelism %d", opts.Parallelism)
	}
	if opts.Parallelism == 0 {
		opts.Parallelism = defaultParallel
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &DynamoDB{client: client, opts: opts}, nil
}

// ---- keys and attribute values ---------------------------------------------

func hash32(s string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return h.Sum32()
}

// shardOf is the shard of a connection: its shard-index partition, its
// connection-counter item and its sub-counter of every channel counter.
func (d *DynamoDB) shardOf(id string) int { return int(hash32(id) % uint32(d.opts.Shards)) }

// channelPartition is the counter partition that holds a channel's sub-counters.
func (d *DynamoDB) channelPartition(channel string) int {
	return int(hash32(channel) % uint32(d.opts.Shards))
}

func avS(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func avN(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: avS(pk), attrSK: avS(sk)}
}

func metaKey(id string) map[string]types.AttributeValue { return key(prefixConn+id, skMeta) }

func memberKey(id, channel string) map[string]types.AttributeValue {
	return key(prefixConn+id, prefixMember+channel)
}

func connCountKey(shard int) map[string]types.AttributeValue {
	return key(prefixConnCount+strconv.Itoa(shard), skConnCount)
}

func (d *DynamoDB) chanCountKey(channel, id string) map[string]types.AttributeValue {
	return key(prefixChanCount+strconv.Itoa(d.channelPartition(channel)),
		channel+"#"+strconv.Itoa(d.shardOf(id)))
}

func getS(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(item map[string]types.AttributeValue, name string) (int64, bool) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// TTLDeletionDelay is how long after a record expires DynamoDB's TTL process
// may delete it: the stored ttl attribute is ExpiresAt plus this delay, and
// reads treat a record as gone from ExpiresAt on (they compare ttl with
// now + TTLDeletionDelay). DynamoDB's TTL deletes items without touching the
// counters, so the delay gives Cleanup a day to remove expired records itself,
// with their counter decrements, before DynamoDB may.
const TTLDeletionDelay = 24 * time.Hour

const deletionDelaySeconds = int64(TTLDeletionDelay / time.Second)

// ttlOf is the ttl attribute of a record that expires at t.
func ttlOf(t time.Time) int64 { return t.Unix() + deletionDelaySeconds }

// ttlCutoff is the ttl value at and below which a record has expired at t.
func ttlCutoff(t time.Time) int64 { return t.Unix() + deletionDelaySeconds }

// liveAt reports whether an item with a ttl attribute is live at cutoff now.
func liveAt(item map[string]types.AttributeValue, now int64) bool {
	ttl, ok := getN(item, attrTTL)
	return ok && ttl > now
}

// counterUpdate adds delta to a counter item, naming its channel when there is one.
func (d *DynamoDB) counterUpdate(k map[string]types.AttributeValue, channel string, delta int64) *types.Update {
	u := &types.Update{
		TableName:                 aws.String(d.opts.Table),
		Key:                       k,
		UpdateExpression:          aws.String("ADD #n :d"),
		ExpressionAttributeNames:  map[string]string{"#n": attrCount},
		ExpressionAttributeValues: map[string]types.AttributeValue{":d": avN(delta)},
	}
	if channel != "" {
		u.UpdateExpression = aws.String("SET #ch = :ch ADD #n :d")
		u.ExpressionAttributeNames["#ch"] = attrChannel
		u.ExpressionAttributeValues[":ch"] = avS(channel)
	}
	return u
}

func (d *DynamoDB) connItem(c Connection, ttl int64) map[string]types.AttributeValue {
	item := metaKey(c.ID)
	item[attrID] = avS(c.ID)
	item[attrConnectedAt] = avN(c.ConnectedAt.UnixNano())
	item[attrTTL] = avN(ttl)
	shard := strconv.Itoa(d.shardOf(c.ID))
	item[attrGSI3PK] = avS(prefixShard + shard)
	item[attrGSI3SK] = avS(c.ID)
	if c.UserID != "" {
		item[attrUserID] = avS(c.UserID)
		item[attrGSI2PK] = avS(prefixUser + c.UserID)
		item[attrGSI2SK] = avS(c.ID)
	}
	for name, v := range map[string]string{attrRouteKey: c.RouteKey, attrSourceIP: c.SourceIP, attrUserAgent: c.UserAgent} {
		if v != "" {
			item[name] = avS(v)
		}
	}
	if c.Pending {
		item[attrPending] = &types.AttributeValueMemberBOOL{Value: true}
	}
	return item
}

func connFromItem(item map[string]types.AttributeValue) Connection {
	c := Connection{
		ID:        getS(item, attrID),
		UserID:    getS(item, attrUserID),
		RouteKey:  getS(item, attrRouteKey),
		SourceIP:  getS(item, attrSourceIP),
		UserAgent: getS(item, attrUserAgent),
	}
	if b, ok := item[attrPending].(*types.AttributeValueMemberBOOL); ok {
		c.Pending = b.Value
	}
	if ns, ok := getN(item, attrConnectedAt); ok {
		c.ConnectedAt = time.Unix(0, ns)
	}
	if ttl, ok := getN(item, attrTTL); ok {
		c.ExpiresAt = time.Unix(ttl-deletionDelaySeconds, 0)
	}
	return c
}

// ---- transactions ------------------------------------------------------------

// txCanceled is a transaction cancelled by a failed condition. reasons holds
// one code per item ("None", "ConditionalCheckFailed", ...).
type txCanceled struct {
	reasons []types.CancellationReason
	cause   error
}

func (e *txCanceled) Error() string { return e.cause.Error() }
func (e *txCanceled) Unwrap() error { return e.cause }

// failed reports whether item i of the transaction failed its condition.
func (e *txCanceled) failed(i int) bool {
	return i < len(e.reasons) && aws.ToString(e.reasons[i].Code) == "ConditionalCheckFailed"
}

// item returns the old item that failed its condition (ReturnValuesOnConditionCheckFailure ALL_OLD).
func (e *txCanceled) item(i int) map[string]types.AttributeValue {
	if i < len(e.reasons) {
		return e.reasons[i].Item
	}
	return nil
}

func retryableReason(code string) bool {
	switch code {
	case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
		return true
	}
	return false
}

// transact runs one TransactWriteItems request. Cancellations caused only by
// conflicts with other transactions or by throttling are retried with jittered
// exponential backoff; a cancellation with a failed condition is returned as
// *txCanceled so the caller can tell which item failed.
func (d *DynamoDB) transact(ctx context.Context, items []types.TransactWriteItem) error {
	in := &dynamodb.TransactWriteItemsInput{TransactItems: items}
	for attempt := 1; ; attempt++ {
		_, err := d.client.TransactWriteItems(ctx, in)
		if err == nil {
			return nil
		}
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			return err
		}
		retry := false
		for _, r := range tce.CancellationReasons {
			code := aws.ToString(r.Code)
			if code == "ConditionalCheckFailed" {
				return &txCanceled{reasons: tce.CancellationReasons, cause: err}
			}
			if retryableReason(code) {
				retry = true
			}
		}
		if !retry || attempt >= maxTxAttempts {
			return err
		}
		if werr := backoff(ctx, attempt); werr != nil {
			return werr
		}
	}
}

// backoff waits a full-jitter exponential delay before attempt+1.
func backoff(ctx context.Context, attempt int) error {
	ceiling := txBackoffBase << min(attempt, 10)
	ceiling = min(ceiling, txBackoffMaxDelay)
	delay := time.Duration(jitter(int64(ceiling)))
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ---- mutations ---------------------------------------------------------------

// AddConnection implements Store: one TransactWriteItems that puts the
// connection record (only if no live record has the id) and adds one to the
// connection's counter shard. A stale record with the same id is removed first.
func (d *DynamoDB) AddConnection(ctx context.Context, c Connection) error {
	if !ValidConnectionID(c.ID) {
		return fmt.Errorf("add connection %.*q: %w", MaxConnectionIDLength, c.ID, ErrInvalidID)
	}
	if !ValidUserID(c.UserID) {
		return fmt.Errorf("add connection %s: user id of %d bytes: %w", c.ID, len(c.UserID), ErrInvalidUserID)
	}
	now := d.opts.Now()
	if c.ConnectedAt.IsZero() {
		c.ConnectedAt = now
	}
	if c.ExpiresAt.IsZero() {
		c.ExpiresAt = c.ConnectedAt.Add(d.opts.TTL)
	}
	ttl := ttlOf(c.ExpiresAt)
	items := []types.TransactWriteItem{
		{Put: &types.Put{
			TableName:                           aws.String(d.opts.Table),
			Item:                                d.connItem(c, ttl),
			ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}},
		{Update: d.counterUpdate(connCountKey(d.shardOf(c.ID)), "", 1)},
	}
	for attempt := 0; ; attempt++ {
		err := d.transact(ctx, items)
		if err == nil {
			return nil
		}
		var tc *txCanceled
		if !errors.As(err, &tc) || !tc.failed(0) {
			return fmt.Errorf("add connection %s: %w", c.ID, err)
		}
		old := tc.item(0)
		if old == nil {
			if old, err = d.getMeta(ctx, c.ID); err != nil {
				return fmt.Errorf("add connection %s: %w", c.ID, err)
			}
		}
		if old != nil && liveAt(old, ttlCutoff(now)) {
			return fmt.Errorf("add connection %s: %w", c.ID, ErrExists)
		}
		if attempt >= 2 {
			return fmt.Errorf("add connection %s: stale record keeps reappearing: %w", c.ID, ErrExists)
		}
		// A stale (expired) record holds the id: remove it with its memberships and counters, then put again.
		if _, _, _, err := d.remove(ctx, c.ID, ttlCutoff(now), true); err != nil {
			return fmt.Errorf("add connection %s: remove stale record: %w", c.ID, err)
		}
	}
}

func (d *DynamoDB) getMeta(ctx context.Context, id string) (map[string]types.AttributeValue, error) {
	out, err := d.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(d.opts.Table),
		Key:            metaKey(id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

// RemoveConnection implements Store. It reads the connection's partition
// (record and memberships) with one strongly consistent Query, then deletes
// the record and decrements its counter in one transaction, so no join can
// succeed afterwards. The delete is conditioned on the record's membership
// count being the number of memberships read, so a join or leave in between
// makes it read the partition again instead of leaving a membership behind.
// When there are memberships, the same transaction writes a removal marker
// (pk "rm#"+shard, sk the id) that Cleanup finds with a Query if the removal
// is cut short. The memberships then go in transactions of up to 49, each
// delete conditioned on the membership still existing and paired with its
// counter decrement; the last one also deletes the marker.
func (d *DynamoDB) RemoveConnection(ctx context.Context, id string) (bool, error) {
	return d.RemoveConnectionFunc(ctx, id, nil)
}

// RemoveConnectionFunc implements Store: fn gets the channels read from the
// connection's partition by the removal's own Query.
func (d *DynamoDB) RemoveConnectionFunc(ctx context.Context, id string, fn RemovedFunc) (bool, error) {
	if !ValidConnectionID(id) {
		return false, nil
	}
	meta, n, channels, err := d.remove(ctx, id, 0, false)
	// Once the record is gone the connection is, even if its sweep was cut
	// short (Cleanup finishes it and reports what was left).
	if (meta || n > 0) && fn != nil {
		fn(ctx, Removed{ID: id, Channels: channels})
	}
	if err != nil {
		return meta || n > 0, fmt.Errorf("remove connection %s: %w", id, err)
	}
	return meta || n > 0, nil
}

// partition reads a connection's record and its membership items (live or
// not) with one strongly consistent Query of its partition.
func (d *DynamoDB) partition(ctx context.Context, id string) (meta map[string]types.AttributeValue, members []map[string]types.AttributeValue, err error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(d.opts.Table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": avS(prefixConn + id)},
		ConsistentRead:            aws.Bool(true),
	}
	err = d.queryPages(ctx, in, func(items []map[string]types.AttributeValue) error {
		for _, it := range items {
			sk := getS(it, attrSK)
			switch {
			case sk == skMeta:
				meta = it
			case strings.HasPrefix(sk, prefixMember):
				members = append(members, it)
			}
		}
		return nil
	})
	return meta, members, err
}

// channelOf is the channel of a membership item.
func channelOf(member map[string]types.AttributeValue) string {
	return strings.TrimPrefix(getS(member, attrSK), prefixMember)
}

// remove deletes the connection record and its memberships. With onlyExpired
// it deletes the record only if its ttl <= now, and leaves a live record and
// its memberships alone. It reports whether it deleted the record, how many
// memberships it removed and the channels of the memberships it found. A
// record already gone (a concurrent removal, or one cut short) has whatever
// memberships it left swept.
func (d *DynamoDB) remove(ctx context.Context, id string, now int64, onlyExpired bool) (bool, int, []string, error) {
	for round := 0; ; round++ {
		meta, members, err := d.partition(ctx, id)
		if err != nil {
			return false, 0, nil, fmt.Errorf("read connection: %w", err)
		}
		channels := make([]string, len(members))
		for i, m := range members {
			channels[i] = channelOf(m)
		}
		if meta == nil {
			n, err := d.sweep(ctx, id, channels, len(channels) > 0, false)
			return false, n, channels, err
		}
		if onlyExpired && liveAt(meta, now) {
			return false, 0, nil, nil
		}
		if round >= maxSweepRounds {
			return false, 0, nil, fmt.Errorf("delete record: its memberships still change after %d reads", round)
		}
		// The count matches the memberships read unless the record predates
		// the count while it has memberships (a join racing the removal
		// would then set it to 1 and pass the condition), the partition
		// changed between two pages of the Query, or the Query saw a racing
		// join's count but not yet its membership: then the record is
		// deleted without the condition and the memberships are read again
		// after the delete. A record that never joined has no count, and the
		// condition still catches a racing join (it sets the count).
		count, counted := getN(meta, attrMemberships)
		exact := count == int64(len(channels)) && (counted || len(channels) == 0)
		cond := "attribute_exists(pk)"
		names := map[string]string{}
		values := map[string]types.AttributeValue{}
		if exact {
			cond += " AND (attribute_not_exists(#nch) OR #nch = :n)"
			names["#nch"] = attrMemberships
			values[":n"] = avN(int64(len(channels)))
		}
		if onlyExpired {
			cond += " AND #ttl <= :now"
			names["#ttl"] = attrTTL
			values[":now"] = avN(now)
		}
		del := &types.Delete{TableName: aws.String(d.opts.Table), Key: metaKey(id), ConditionExpression: aws.String(cond)}
		if len(names) > 0 {
			del.ExpressionAttributeNames, del.ExpressionAttributeValues = names, values
		}
		items := []types.TransactWriteItem{
			{Delete: del},
			{Update: d.counterUpdate(connCountKey(d.shardOf(id)), "", -1)},
		}
		marker := len(channels) > 0 || !exact
		if marker {
			items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(d.opts.Table), Item: d.markerItem(id, meta)}})
		}
		err = d.transact(ctx, items)
		var tc *txCanceled
		switch {
		case err == nil:
		case errors.As(err, &tc) && tc.failed(0):
			continue // a join, a leave or another removal changed the record: read it again
		default:
			return false, 0, nil, fmt.Errorf("delete record: %w", err)
		}
		n, err := d.sweep(ctx, id, channels, marker, !exact)
		return true, n, channels, err
	}
}

// markerKey is the key of a connection's removal marker: one partition per
// shard, so Cleanup lists removals cut short with one Query per shard.
func (d *DynamoDB) markerKey(id string) map[string]types.AttributeValue {
	return key(prefixRemoving+strconv.Itoa(d.shardOf(id)), id)
}

// markerItem is the removal marker of a connection whose record is meta. It
// expires with the memberships it stands for.
func (d *DynamoDB) markerItem(id string, meta map[string]types.AttributeValue) map[string]types.AttributeValue {
	item := d.markerKey(id)
	item[attrID] = avS(id)
	if ttl, ok := getN(meta, attrTTL); ok {
		item[attrTTL] = avN(ttl)
	}
	return item
}

func (d *DynamoDB) markerDelete(id string) *types.Delete {
	return &types.Delete{TableName: aws.String(d.opts.Table), Key: d.markerKey(id)}
}

// memberships returns the channels a connection has membership items for,
// live or not, by a strongly consistent Query of its partition.
func (d *DynamoDB) memberships(ctx context.Context, id string) ([]string, error) {
	var channels []string
	in := &dynamodb.QueryInput{
		TableName:              aws.String(d.opts.Table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :ch)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": avS(prefixConn + id), ":ch": avS(prefixMember),
		},
		ProjectionExpression: aws.String("sk"),
		ConsistentRead:       aws.Bool(true),
	}
	for {
		out, err := d.client.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("query memberships: %w", err)
		}
		for _, it := range out.Items {
			channels = append(channels, strings.TrimPrefix(getS(it, attrSK), prefixMember))
		}
		if len(out.LastEvaluatedKey) == 0 {
			return channels, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// sweep removes the given memberships of a removed connection, each with its
// counter decrement, and with marker its removal marker once none is left. A
// chunk cancelled because another writer removed one of its memberships (a
// concurrent Leave or removal) makes it read the memberships again, so every
// membership is decremented exactly once; verify reads them again even when
// no chunk was cancelled.
func (d *DynamoDB) sweep(ctx context.Context, id string, channels []string, marker, verify bool) (int, error) {
	removed := 0
	for round := 0; ; round++ {
		if len(channels) == 0 && verify {
			// Nothing was read, but a membership may have been written after
			// the read: read again before the marker goes.
			verify = false
			var err error
			if channels, err = d.memberships(ctx, id); err != nil {
				return removed, err
			}
		}
		if len(channels) == 0 {
			if marker {
				if err := d.transact(ctx, []types.TransactWriteItem{{Delete: d.markerDelete(id)}}); err != nil {
					return removed, fmt.Errorf("delete removal marker: %w", err)
				}
			}
			return removed, nil
		}
		if round >= maxSweepRounds {
			return removed, fmt.Errorf("remove memberships: still %d left after %d rounds", len(channels), round)
		}
		contended := false
		const perTx = maxTxItems/2 - 1 // a delete and a counter update per membership, and room for the marker
		for start := 0; start < len(channels); start += perTx {
			chunk := channels[start:min(start+perTx, len(channels))]
			items := make([]types.TransactWriteItem, 0, 2*len(chunk)+1)
			for _, ch := range chunk {
				items = append(items,
					types.TransactWriteItem{Delete: &types.Delete{
						TableName:           aws.String(d.opts.Table),
						Key:                 memberKey(id, ch),
						ConditionExpression: aws.String("attribute_exists(pk)"),
					}},
					types.TransactWriteItem{Update: d.counterUpdate(d.chanCountKey(ch, id), ch, -1)},
				)
			}
			// The marker goes with the last memberships only when nothing
			// can be left behind them.
			withMarker := marker && !verify && !contended && start+perTx >= len(channels)
			if withMarker {
				items = append(items, types.TransactWriteItem{Delete: d.markerDelete(id)})
			}
			err := d.transact(ctx, items)
			var tc *txCanceled
			switch {
			case err == nil:
				removed += len(chunk)
				if withMarker {
					marker = false
				}
			case errors.As(err, &tc):
				contended = true
			default:
				return removed, fmt.Errorf("remove memberships: %w", err)
			}
		}
		if !contended && !verify {
			return removed, nil
		}
		verify = false
		var err error
		if channels, err = d.memberships(ctx, id); err != nil {
			return removed, err
		}
	}
}

// Join implements Store: JoinAtMost without a cap.
func (d *DynamoDB) Join(ctx context.Context, id, channel string) (bool, error) {
	return d.JoinAtMost(ctx, id, channel, 0)
}

// JoinAtMost implements Store: a strongly consistent GetItem of the
// connection record (for its ttl, which the membership inherits, and its
// membership count) and one transaction that adds one to the record's
// membership count if the record still exists with that ttl (and, with a
// cap, holds fewer than max channels), puts the membership if absent and adds
// one to the channel's counter. A removed or expired connection fails the
// check, so a late join cannot resurrect it; a repeated join fails the put and
// changes nothing; concurrent joins of one connection all update its record,
// so DynamoDB serialises them and the cap holds exactly.
func (d *DynamoDB) JoinAtMost(ctx context.Context, id, channel string, max int) (bool, error) {
	return d.joinAtMost(ctx, id, channel, max, false)
}

// JoinLiveAtMost implements LiveJoiner: JoinAtMost whose update of the
// connection record also removes its pending attribute (no extra request).
func (d *DynamoDB) JoinLiveAtMost(ctx context.Context, id, channel string, max int) (bool, error) {
	return d.joinAtMost(ctx, id, channel, max, true)
}

func (d *DynamoDB) joinAtMost(ctx context.Context, id, channel string, max int, live bool) (bool, error) {
	if !ValidChannel(channel) {
		return false, fmt.Errorf("join %.*q to %.64q: %w", MaxConnectionIDLength, id, channel, ErrInvalidChannel)
	}
	if !ValidConnectionID(id) {
		return false, fmt.Errorf("join %.*q to %s: %w", MaxConnectionIDLength, id, channel, ErrNotFound)
	}
	now := ttlCutoff(d.opts.Now())
	meta, err := d.getMeta(ctx, id)
	if err != nil {
		return false, fmt.Errorf("join %s to %s: %w", id, channel, err)
	}
	if meta == nil || !liveAt(meta, now) {
		return false, fmt.Errorf("join %s to %s: %w", id, channel, ErrNotFound)
	}
	if n, _ := getN(meta, attrMemberships); max > 0 && n >= int64(max) {
		return d.joinAtCap(ctx, id, channel, n)
	}
	ttl, _ := getN(meta, attrTTL)
	member := memberKey(id, channel)
	member[attrChannel] = avS(channel)
	member[attrTTL] = avN(ttl)
	member[attrGSI1PK] = avS(prefixMember + channel)
	member[attrGSI1SK] = avS(id)
	cond := "attribute_exists(pk) AND #ttl = :ttl AND #ttl > :now"
	values := map[string]types.AttributeValue{":ttl": avN(ttl), ":now": avN(now), ":one": avN(1)}
	if max > 0 {
		cond += " AND (attribute_not_exists(#nch) OR #nch < :max)"
		values[":max"] = avN(int64(max))
	}
	update, names := "ADD #nch :one", map[string]string{"#ttl": attrTTL, "#nch": attrMemberships}
	if live {
		update += " REMOVE #pending"
		names["#pending"] = attrPending
	}
	err = d.transact(ctx, []types.TransactWriteItem{
		{Update: &types.Update{
			TableName:                           aws.String(d.opts.Table),
			Key:                                 metaKey(id),
			UpdateExpression:                    aws.String(update),
			ConditionExpression:                 aws.String(cond),
			ExpressionAttributeNames:            names,
			ExpressionAttributeValues:           values,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}},
		{Put: &types.Put{
			TableName:           aws.String(d.opts.Table),
			Item:                member,
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}},
		{Update: d.counterUpdate(d.chanCountKey(channel, id), channel, 1)},
	})
	if err == nil {
		return true, nil
	}
	var tc *txCanceled
	if !errors.As(err, &tc) {
		return false, fmt.Errorf("join %s to %s: %w", id, channel, err)
	}
	if !tc.failed(0) {
		if tc.failed(1) {
			return false, nil // the record holds: already a member
		}
		return false, fmt.Errorf("join %s to %s: %w", id, channel, err)
	}
	// The record's condition failed first of all: a membership left over by
	// a removal that has not swept it yet must not count as "already a
	// member" of a connection that is gone.
	old := tc.item(0)
	if oldTTL, _ := getN(old, attrTTL); max > 0 && old != nil && oldTTL == ttl && liveAt(old, now) {
		// The record is the same and live: the cap failed the condition.
		n, _ := getN(old, attrMemberships)
		return d.joinAtCap(ctx, id, channel, n)
	}
	return false, fmt.Errorf("join %s to %s: %w", id, channel, ErrNotFound)
}

// joinAtCap answers a join of a connection that holds n >= max channels: no
// change when it is already a member of the channel, ErrTooManyChannels otherwise.
func (d *DynamoDB) joinAtCap(ctx context.Context, id, channel string, n int64) (bool, error) {
	member, err := d.IsMember(ctx, id, channel)
	if err != nil {
		return false, fmt.Errorf("join %s to %s: %w", id, channel, err)
	}
	if member {
		return false, nil
	}
	return false, fmt.Errorf("join %s to %s: %d channels: %w", id, channel, n, ErrTooManyChannels)
}

// IsMember implements Store: one strongly consistent GetItem of the
// membership item, whatever the connection's other channels. A membership
// carries its connection's expiry, so an expired connection is no member.
func (d *DynamoDB) IsMember(ctx context.Context, id, channel string) (bool, error) {
	if !ValidConnectionID(id) || !ValidChannel(channel) {
		return false, nil
	}
	out, err := d.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(d.opts.Table),
		Key:                      memberKey(id, channel),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#ttl"),
		ExpressionAttributeNames: map[string]string{"#ttl": attrTTL},
	})
	if err != nil {
		return false, fmt.Errorf("is member %s of %s: %w", id, channel, err)
	}
	return out.Item != nil && liveAt(out.Item, ttlCutoff(d.opts.Now())), nil
}

// Leave implements Store: one transaction that deletes the membership if it
// exists, subtracts one from the channel's counter and one from the
// connection record's membership count. When the record is gone (a removal
// under way) the membership goes without the count.
func (d *DynamoDB) Leave(ctx context.Context, id, channel string) (bool, error) {
	if !ValidConnectionID(id) || !ValidChannel(channel) {
		return false, nil
	}
	items := []types.TransactWriteItem{
		{Delete: &types.Delete{
			TableName:           aws.String(d.opts.Table),
			Key:                 memberKey(id, channel),
			ConditionExpression: aws.String("attribute_exists(pk)"),
		}},
		{Update: d.counterUpdate(d.chanCountKey(channel, id), channel, -1)},
		{Update: &types.Update{
			TableName:                 aws.String(d.opts.Table),
			Key:                       metaKey(id),
			UpdateExpression:          aws.String("ADD #nch :minus"),
			ConditionExpression:       aws.String("attribute_exists(pk)"),
			ExpressionAttributeNames:  map[string]string{"#nch": attrMemberships},
			ExpressionAttributeValues: map[string]types.AttributeValue{":minus": avN(-1)},
		}},
	}
	for {
		err := d.transact(ctx, items)
		if err == nil {
			return true, nil
		}
		var tc *txCanceled
		switch {
		case errors.As(err, &tc) && tc.failed(0):
			return false, nil
		case errors.As(err, &tc) && len(items) == 3 && tc.failed(2):
			items = items[:2]
		default:
			return false, fmt.Errorf("leave %s from %s: %w", id, channel, err)
		}
	}
}
