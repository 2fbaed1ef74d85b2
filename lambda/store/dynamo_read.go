package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"
)

func jitter(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return rand.Int64N(n)
}

// errStop ends a paged Query early without an error.
var errStop = errors.New("stop paging")

// queryPages runs a Query page by page (following LastEvaluatedKey past the
// 1 MB page limit) and hands each page's items to fn.
func (d *DynamoDB) queryPages(ctx context.Context, in *dynamodb.QueryInput, fn func(items []map[string]types.AttributeValue) error) error {
	for {
		out, err := d.client.Query(ctx, in)
		if err != nil {
			return err
		}
		if err := fn(out.Items); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// liveIndexQuery is a Query of a GSI partition that keeps only items whose ttl
// is after now (DynamoDB deletes expired items late, so every read filters).
func (d *DynamoDB) liveIndexQuery(index, hashAttr, hashValue string, now int64, limit int) *dynamodb.QueryInput {
	in := &dynamodb.QueryInput{
		TableName:                aws.String(d.opts.Table),
		IndexName:                aws.String(index),
		KeyConditionExpression:   aws.String("#h = :h"),
		FilterExpression:         aws.String("#ttl > :now"),
		ExpressionAttributeNames: map[string]string{"#h": hashAttr, "#ttl": attrTTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":h": avS(hashValue), ":now": avN(now),
		},
	}
	if limit > 0 {
		in.Limit = aws.Int32(int32(limit))
	}
	return in
}

// streamIDs delivers the ids (attribute idAttr) of each non-empty page to fn.
func (d *DynamoDB) streamIDs(ctx context.Context, in *dynamodb.QueryInput, idAttr string, fn PageFunc) error {
	ids := make([]string, 0, d.opts.PageSize)
	return d.queryPages(ctx, in, func(items []map[string]types.AttributeValue) error {
		ids = ids[:0]
		for _, it := range items {
			if id := getS(it, idAttr); id != "" {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		return fn(ids)
	})
}

// GetConnection implements Store: one strongly consistent Query of the
// connection's partition returns its record and its memberships together.
func (d *DynamoDB) GetConnection(ctx context.Context, id string) (Connection, error) {
	c, ok, err := d.connectionWithChannels(ctx, id)
	if err != nil {
		return Connection{}, fmt.Errorf("get connection %s: %w", id, err)
	}
	if !ok {
		return Connection{}, fmt.Errorf("get connection %s: %w", id, ErrNotFound)
	}
	return c, nil
}

func (d *DynamoDB) connectionWithChannels(ctx context.Context, id string) (Connection, bool, error) {
	if !ValidConnectionID(id) {
		return Connection{}, false, nil
	}
	now := ttlCutoff(d.opts.Now())
	meta, members, err := d.partition(ctx, id)
	if err != nil {
		return Connection{}, false, err
	}
	if meta == nil || !liveAt(meta, now) {
		return Connection{}, false, nil
	}
	channels := []string{}
	for _, m := range members {
		if liveAt(m, now) {
			channels = append(channels, channelOf(m))
		}
	}
	c := connFromItem(meta)
	slices.Sort(channels)
	c.Channels = channels
	return c, true, nil
}

// ConnectionChannels implements Store with the same single Query as GetConnection.
func (d *DynamoDB) ConnectionChannels(ctx context.Context, id string) ([]string, error) {
	c, ok, err := d.connectionWithChannels(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("connection channels %s: %w", id, err)
	}
	if !ok {
		return []string{}, nil
	}
	return c.Channels, nil
}

// ChannelMembers implements Store: a Query of the channel-index partition of
// the channel, PageSize items per request, each page streamed to fn.
func (d *DynamoDB) ChannelMembers(ctx context.Context, channel string, fn PageFunc) error {
	if !ValidChannel(channel) {
		return nil // no member can have joined it
	}
	in := d.liveIndexQuery(ChannelIndex, attrGSI1PK, prefixMember+channel, ttlCutoff(d.opts.Now()), d.opts.PageSize)
	if err := d.streamIDs(ctx, in, attrGSI1SK, fn); err != nil {
		return fmt.Errorf("channel members %s: %w", channel, err)
	}
	return nil
}

// UserConnections implements Store: a Query of the user-index partition of the user.
func (d *DynamoDB) UserConnections(ctx context.Context, userID string) ([]string, error) {
	ids := []string{}
	if userID == "" || !ValidUserID(userID) {
		return ids, nil
	}
	in := d.liveIndexQuery(UserIndex, attrGSI2PK, prefixUser+userID, ttlCutoff(d.opts.Now()), 0)
	err := d.streamIDs(ctx, in, attrGSI2SK, func(page []string) error {
		ids = append(ids, page...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("user connections %s: %w", userID, err)
	}
	slices.Sort(ids)
	return ids, nil
}

// AllConnections implements Store: one Query per shard-index shard, run in
// parallel (at most Parallelism at once); pages reach fn one at a time.
func (d *DynamoDB) AllConnections(ctx context.Context, fn PageFunc) error {
	now := ttlCutoff(d.opts.Now())
	var (
		mu      sync.Mutex
		stopped bool
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.opts.Parallelism)
	for shard := range d.opts.Shards {
		g.Go(func() error {
			in := d.liveIndexQuery(ShardIndex, attrGSI3PK, prefixShard+strconv.Itoa(shard), now, d.opts.PageSize)
			return d.streamIDs(gctx, in, attrGSI3SK, func(ids []string) error {
				mu.Lock()
				defer mu.Unlock()
				if stopped {
					return errStop
				}
				if err := gctx.Err(); err != nil {
					return err
				}
				if err := fn(ids); err != nil {
					stopped = true
					return err
				}
				return nil
			})
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("all connections: %w", err)
	}
	return nil
}

// channelCounts sums the channel sub-counters: one Query per counter
// partition, in parallel.
func (d *DynamoDB) channelCounts(ctx context.Context) (map[string]int64, error) {
	counts := map[string]int64{}
	err := d.counterPartitions(ctx, func(in *dynamodb.QueryInput) {}, func(items []map[string]types.AttributeValue) {
		for _, it := range items {
			n, _ := getN(it, attrCount)
			counts[getS(it, attrChannel)] += n
		}
	})
	if err != nil {
		return nil, err
	}
	for ch, n := range counts {
		if n <= 0 {
			delete(counts, ch)
		}
	}
	return counts, nil
}

// counterPartitions runs one Query of every channel-counter partition, in
// parallel, shaped by shape (a filter, a projection), and hands each page of
// items to fn, one page at a time.
func (d *DynamoDB) counterPartitions(ctx context.Context, shape func(*dynamodb.QueryInput), fn func(items []map[string]types.AttributeValue)) error {
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.opts.Parallelism)
	for p := range d.opts.Shards {
		g.Go(func() error {
			in := &dynamodb.QueryInput{
				TableName:                 aws.String(d.opts.Table),
				KeyConditionExpression:    aws.String("#pk = :pk"),
				ExpressionAttributeNames:  map[string]string{"#pk": attrPK},
				ExpressionAttributeValues: map[string]types.AttributeValue{":pk": avS(prefixChanCount + strconv.Itoa(p))},
			}
			shape(in)
			return d.queryPages(gctx, in, func(items []map[string]types.AttributeValue) error {
				mu.Lock()
				defer mu.Unlock()
				fn(items)
				return nil
			})
		})
	}
	return g.Wait()
}

// Channels implements Store from the channel counters (never a Scan).
func (d *DynamoDB) Channels(ctx context.Context) ([]string, error) {
	counts, err := d.channelCounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("channels: %w", err)
	}
	out := make([]string, 0, len(counts))
	for ch := range counts {
		out = append(out, ch)
	}
	slices.Sort(out)
	return out, nil
}

// connectionCount sums the connection counter shards with BatchGetItem.
func (d *DynamoDB) connectionCount(ctx context.Context) (int64, error) {
	var keys []map[string]types.AttributeValue
	for shard := range d.opts.Shards {
		keys = append(keys, connCountKey(shard))
	}
	var total int64
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 100)]
		keys = keys[len(batch):]
		for attempt := 1; len(batch) > 0; attempt++ {
			out, err := d.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
				RequestItems: map[string]types.KeysAndAttributes{d.opts.Table: {Keys: batch, ConsistentRead: aws.Bool(true)}},
			})
			if err != nil {
				return 0, err
			}
			for _, it := range out.Responses[d.opts.Table] {
				n, _ := getN(it, attrCount)
				total += n
			}
			batch = out.UnprocessedKeys[d.opts.Table].Keys
			if len(batch) > 0 {
				if err := backoff(ctx, attempt); err != nil {
					return 0, err
				}
			}
		}
	}
	return total, nil
}

// Stats implements Store from the counters: one BatchGetItem of the
// connection counter shards and one Query per channel counter partition.
func (d *DynamoDB) Stats(ctx context.Context) (Stats, error) {
	var (
		st     = Stats{Channels: map[string]int64{}}
		counts map[string]int64
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		st.TotalConnections, err = d.connectionCount(gctx)
		return err
	})
	g.Go(func() (err error) {
		counts, err = d.channelCounts(gctx)
		return err
	})
	if err := g.Wait(); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	st.TotalConnections = max(st.TotalConnections, 0)
	st.Channels = counts
	st.TotalChannels = int64(len(counts))
	return st, nil
}

// Cleanup implements Store. It first finishes removals that were cut short:
// their markers are listed with one Query per shard (partitions that hold
// only the removals in progress, so they are nearly always empty) and each
// connection's left-over memberships are swept with their counter
// decrements. Then it finds expired connection records through the
// shard-index (one Query per shard, filter ttl <= now) and removes each with
// its memberships and counter decrements, exactly as RemoveConnection does.
// Last it looks for expired memberships whose record is gone and that have
// no marker (left by a removal interrupted before markers existed) through
// the channel-index of every counted channel, and sweeps them too. It returns
// how many connection records it removed.
func (d *DynamoDB) Cleanup(ctx context.Context, now time.Time) (int, error) {
	return d.CleanupFunc(ctx, now, nil)
}

// CleanupFunc implements Store: Cleanup that hands each removed connection,
// with the channels its removal found in its partition, to fn.
func (d *DynamoDB) CleanupFunc(ctx context.Context, now time.Time, fn RemovedFunc) (int, error) {
	limit := ttlCutoff(now)
	if err := d.finishRemovals(ctx, fn); err != nil {
		return 0, fmt.Errorf("cleanup: %w", err)
	}
	expired, err := d.expiredIDs(ctx, limit)
	if err != nil {
		return 0, fmt.Errorf("cleanup: %w", err)
	}
	removed, err := d.removeExpired(ctx, expired, limit, fn)
	if err != nil {
		return removed, fmt.Errorf("cleanup: %w", err)
	}
	orphans, err := d.expiredMembers(ctx, limit, expired)
	if err != nil {
		return removed, fmt.Errorf("cleanup: %w", err)
	}
	more, err := d.removeExpired(ctx, orphans, limit, fn)
	removed += more
	if err != nil {
		return removed, fmt.Errorf("cleanup: %w", err)
	}
	if err := d.sweepZeroCounters(ctx); err != nil {
		return removed, fmt.Errorf("cleanup: %w", err)
	}
	return removed, nil
}

// sweepZeroCounters deletes the channel sub-counters that stand at 0 (every
// member of their channel in that shard left). Channels and Stats read every
// counter partition, so without this their cost would grow with every channel
// ever used instead of the channels in use. Each delete is conditioned on the
// counter still being 0, so a join racing it either keeps the item or, after
// the delete, adds it back (ADD creates it, with its channel): counts stay
// exact. One Query per counter partition, then one request per zero counter.
func (d *DynamoDB) sweepZeroCounters(ctx context.Context) error {
	var keys []map[string]types.AttributeValue
	err := d.counterPartitions(ctx, func(in *dynamodb.QueryInput) {
		in.FilterExpression = aws.String("#n = :zero")
		in.ProjectionExpression = aws.String("#pk, #sk")
		in.ExpressionAttributeNames["#sk"] = attrSK
		in.ExpressionAttributeNames["#n"] = attrCount
		in.ExpressionAttributeValues[":zero"] = avN(0)
	}, func(items []map[string]types.AttributeValue) { keys = append(keys, items...) })
	if err != nil {
		return fmt.Errorf("find counters at zero: %w", err)
	}
	for _, k := range keys {
		err := d.transact(ctx, []types.TransactWriteItem{{Delete: &types.Delete{
			TableName:                 aws.String(d.opts.Table),
			Key:                       key(getS(k, attrPK), getS(k, attrSK)),
			ConditionExpression:       aws.String("#n = :zero"),
			ExpressionAttributeNames:  map[string]string{"#n": attrCount},
			ExpressionAttributeValues: map[string]types.AttributeValue{":zero": avN(0)},
		}}})
		var tc *txCanceled
		if err != nil && !errors.As(err, &tc) {
			return fmt.Errorf("delete counter at zero: %w", err)
		}
	}
	return nil
}

// shardIDs runs the Query query(shard) on every shard, in parallel, and
// collects the ids (attribute idAttr) of the items they return.
func (d *DynamoDB) shardIDs(ctx context.Context, idAttr string, query func(shard int) *dynamodb.QueryInput) (map[string]struct{}, error) {
	var mu sync.Mutex
	ids := map[string]struct{}{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.opts.Parallelism)
	for shard := range d.opts.Shards {
		g.Go(func() error {
			return d.streamIDs(gctx, query(shard), idAttr, func(page []string) error {
				mu.Lock()
				defer mu.Unlock()
				for _, id := range page {
					ids[id] = struct{}{}
				}
				return nil
			})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return ids, nil
}

// finishRemovals completes every removal that left its marker: it sweeps the
// connection's memberships and deletes the marker. A marker whose id was
// recorded again since only goes itself: the memberships are the new record's.
func (d *DynamoDB) finishRemovals(ctx context.Context, fn RemovedFunc) error {
	ids, err := d.shardIDs(ctx, attrSK, func(shard int) *dynamodb.QueryInput {
		return &dynamodb.QueryInput{
			TableName:                 aws.String(d.opts.Table),
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": avS(prefixRemoving + strconv.Itoa(shard))},
			ProjectionExpression:      aws.String("sk"),
			ConsistentRead:            aws.Bool(true),
		}
	})
	if err != nil {
		return fmt.Errorf("find removals cut short: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.opts.Parallelism)
	for id := range ids {
		g.Go(func() error {
			meta, members, err := d.partition(gctx, id)
			if err != nil {
				return fmt.Errorf("finish removal of %s: %w", id, err)
			}
			var channels []string
			if meta == nil {
				for _, m := range members {
					channels = append(channels, channelOf(m))
				}
			}
			if _, err := d.sweep(gctx, id, channels, true, false); err != nil {
				return fmt.Errorf("finish removal of %s: %w", id, err)
			}
			if meta == nil && fn != nil {
				fn(gctx, Removed{ID: id, Channels: channels})
			}
			return nil
		})
	}
	return g.Wait()
}

// expiredIDs lists connection records with ttl <= cutoff from every shard.
func (d *DynamoDB) expiredIDs(ctx context.Context, cutoff int64) (map[string]struct{}, error) {
	ids, err := d.shardIDs(ctx, attrGSI3SK, func(shard int) *dynamodb.QueryInput {
		in := d.liveIndexQuery(ShardIndex, attrGSI3PK, prefixShard+strconv.Itoa(shard), cutoff, 0)
		in.FilterExpression = aws.String("#ttl <= :now")
		return in
	})
	if err != nil {
		return nil, fmt.Errorf("find expired connections: %w", err)
	}
	return ids, nil
}

// expiredMembers lists connection ids with expired memberships in any counted
// channel, except those in skip.
func (d *DynamoDB) expiredMembers(ctx context.Context, cutoff int64, skip map[string]struct{}) (map[string]struct{}, error) {
	counts, err := d.channelCounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("find expired memberships: %w", err)
	}
	var mu sync.Mutex
	ids := map[string]struct{}{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.opts.Parallelism)
	for ch := range counts {
		g.Go(func() error {
			in := d.liveIndexQuery(ChannelIndex, attrGSI1PK, prefixMember+ch, cutoff, 0)
			in.FilterExpression = aws.String("#ttl <= :now")
			return d.streamIDs(gctx, in, attrGSI1SK, func(page []string) error {
				mu.Lock()
				defer mu.Unlock()
				for _, id := range page {
					if _, done := skip[id]; !done {
						ids[id] = struct{}{}
					}
				}
				return nil
			})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("find expired memberships: %w", err)
	}
	return ids, nil
}

// removeExpired removes the given connections if their record expired at
// cutoff (or is gone), in parallel, and counts the records removed.
func (d *DynamoDB) removeExpired(ctx context.Context, ids map[string]struct{}, cutoff int64, fn RemovedFunc) (int, error) {
	var (
		mu sync.Mutex
		n  int
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.opts.Parallelism)
	for id := range ids {
		g.Go(func() error {
			meta, swept, channels, err := d.remove(gctx, id, cutoff, true)
			if (meta || swept > 0) && fn != nil {
				fn(gctx, Removed{ID: id, Channels: channels})
			}
			if err != nil {
				return fmt.Errorf("remove %s: %w", id, err)
			}
			if meta {
				mu.Lock()
				n++
				mu.Unlock()
			}
			return nil
		})
	}
	err := g.Wait()
	return n, err
}
