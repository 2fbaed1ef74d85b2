package store

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

// Items of DynamoHistory, in the store's table (see docs/data-model.md):
//
//	hs#{channel} / meta          the stream: off (last offset), ep (epoch), ttl
//	hs#{channel} / p#{offset}    a publication: ep, d (payload), ttl; offset zero-padded to 20 digits
const (
	prefixHistory      = "hs#"
	skHistoryMeta      = "meta"
	prefixHistoryPub   = "p#"
	attrOffset         = "off"
	attrEpoch          = "ep"
	attrData           = "d"
	maxAppendAttempts  = 200 // concurrent appends to one stream take turns
	maxCachedPositions = 10000
)

// HistoryAPI is the subset of *dynamodb.Client that DynamoHistory uses.
type HistoryAPI interface {
	DynamoAPI
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

var _ HistoryAPI = (*dynamodb.Client)(nil)

// DynamoHistory is History on the DynamoDB store's table. An append is one
// TransactWriteItems: it moves the stream meta from the offset this process
// last saw to the next one (a condition on offset and epoch) and puts the
// publication. When another writer moved the meta first, the failed
// condition returns the meta as it is, and the append tries again from
// there; a process that has not seen the stream yet reads the meta once.
// Reads are one GetItem of the meta and one bounded Query of the stream's
// partition, never a Scan.
type DynamoHistory struct {
	d      *DynamoDB
	client HistoryAPI

	mu   sync.Mutex
	last map[string]StreamPosition // the position this process last saw per channel
}

var _ History = (*DynamoHistory)(nil)

// NewDynamoHistory returns History on the store's table (opts as for
// NewDynamoDB: Table and Now are used).
func NewDynamoHistory(client HistoryAPI, opts DynamoOptions) (*DynamoHistory, error) {
	d, err := NewDynamoDB(client, opts)
	if err != nil {
		return nil, fmt.Errorf("new dynamodb history: %w", err)
	}
	return &DynamoHistory{d: d, client: client, last: map[string]StreamPosition{}}, nil
}

func (h *DynamoHistory) table() *string { return aws.String(h.d.opts.Table) }

func pubSK(offset uint64) string { return fmt.Sprintf("%s%020d", prefixHistoryPub, offset) }

func (h *DynamoHistory) remember(channel string, pos StreamPosition) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.last) >= maxCachedPositions {
		clear(h.last)
	}
	h.last[channel] = pos
}

func (h *DynamoHistory) cached(channel string) (StreamPosition, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	pos, ok := h.last[channel]
	return pos, ok
}

// metaPosition returns the position a meta item holds; ok is false when the
// item is missing or expired.
func (h *DynamoHistory) metaPosition(item map[string]types.AttributeValue) (StreamPosition, bool) {
	if item == nil || !liveAt(item, ttlCutoff(h.d.opts.Now())) {
		return StreamPosition{}, false
	}
	off, _ := getN(item, attrOffset)
	return StreamPosition{Offset: uint64(off), Epoch: getS(item, attrEpoch)}, true
}

func (h *DynamoHistory) getMeta(ctx context.Context, channel string) (StreamPosition, bool, error) {
	out, err := h.d.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: h.table(), Key: itemKey(prefixHistory+channel, skHistoryMeta), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return StreamPosition{}, false, fmt.Errorf("read stream meta: %w", err)
	}
	pos, ok := h.metaPosition(out.Item)
	return pos, ok, nil
}

// Append implements History.
func (h *DynamoHistory) Append(ctx context.Context, channel string, data []byte, lim HistoryLimits) (StreamPosition, error) {
	if lim.TTL <= 0 || lim.Size <= 0 {
		return StreamPosition{}, fmt.Errorf("append to %s: history size %d and ttl %s must be positive", channel, lim.Size, lim.TTL)
	}
	pos, live := h.cached(channel)
	if !live {
		var err error
		if pos, live, err = h.getMeta(ctx, channel); err != nil {
			return StreamPosition{}, fmt.Errorf("append to %s: %w", channel, err)
		}
	}
	for attempt := 1; attempt <= maxAppendAttempts; attempt++ {
		now := h.d.opts.Now()
		ttl := num(historyTTL(now.Add(lim.TTL)))
		next := StreamPosition{Offset: pos.Offset + 1, Epoch: pos.Epoch}
		var meta types.TransactWriteItem
		if live {
			meta = types.TransactWriteItem{Update: &types.Update{
				TableName: h.table(), Key: itemKey(prefixHistory+channel, skHistoryMeta),
				UpdateExpression:                    aws.String("SET #off = :next, #ttl = :ttl"),
				ConditionExpression:                 aws.String("#off = :cur AND #ep = :ep AND #ttl > :cutoff"),
				ExpressionAttributeNames:            map[string]string{"#off": attrOffset, "#ep": attrEpoch, "#ttl": attrTTL},
				ExpressionAttributeValues:           map[string]types.AttributeValue{":next": num(int64(next.Offset)), ":cur": num(int64(pos.Offset)), ":ep": str(pos.Epoch), ":ttl": ttl, ":cutoff": num(ttlCutoff(now))},
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}}
		} else {
			next = StreamPosition{Offset: 1, Epoch: newEpoch()}
			meta = types.TransactWriteItem{Put: &types.Put{
				TableName: h.table(),
				Item: map[string]types.AttributeValue{
					attrPK: str(prefixHistory + channel), attrSK: str(skHistoryMeta),
					attrOffset: num(1), attrEpoch: str(next.Epoch), attrTTL: ttl,
				},
				ConditionExpression:                 aws.String("attribute_not_exists(pk) OR #ttl <= :cutoff"),
				ExpressionAttributeNames:            map[string]string{"#ttl": attrTTL},
				ExpressionAttributeValues:           map[string]types.AttributeValue{":cutoff": num(ttlCutoff(now))},
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}}
		}
		pub := types.TransactWriteItem{Put: &types.Put{TableName: h.table(), Item: map[string]types.AttributeValue{
			attrPK: str(prefixHistory + channel), attrSK: str(pubSK(next.Offset)),
			attrEpoch: str(next.Epoch), attrData: &types.AttributeValueMemberB{Value: data}, attrTTL: ttl,
		}}}
		err := h.d.transact(ctx, []types.TransactWriteItem{meta, pub})
		var tc *txCanceled
		switch {
		case err == nil:
			h.remember(channel, next)
			return next, nil
		case !errors.As(err, &tc) || !tc.failed(0):
			return StreamPosition{}, fmt.Errorf("append to %s at offset %d: %w", channel, next.Offset, err)
		}
		// Another writer moved the stream: go on from where it stands.
		pos, live = h.metaPosition(tc.item(0))
		if attempt%4 == 0 {
			if werr := backoff(ctx, attempt/4); werr != nil {
				return StreamPosition{}, fmt.Errorf("append to %s: %w", channel, werr)
			}
		}
	}
	return StreamPosition{}, fmt.Errorf("append to %s: too much contention", channel)
}

// stream returns the live position of channel, creating the stream (offset
// 0, a new epoch) when it is missing or expired.
func (h *DynamoHistory) stream(ctx context.Context, channel string, lim HistoryLimits) (StreamPosition, error) {
	for attempt := 1; attempt <= maxTxAttempts; attempt++ {
		pos, live, err := h.getMeta(ctx, channel)
		if err != nil || live {
			return pos, err
		}
		now := h.d.opts.Now()
		pos = StreamPosition{Epoch: newEpoch()}
		_, err = h.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: h.table(),
			Item: map[string]types.AttributeValue{
				attrPK: str(prefixHistory + channel), attrSK: str(skHistoryMeta),
				attrOffset: num(0), attrEpoch: str(pos.Epoch), attrTTL: num(historyTTL(now.Add(lim.TTL))),
			},
			ConditionExpression:       aws.String("attribute_not_exists(pk) OR #ttl <= :cutoff"),
			ExpressionAttributeNames:  map[string]string{"#ttl": attrTTL},
			ExpressionAttributeValues: map[string]types.AttributeValue{":cutoff": num(ttlCutoff(now))},
		})
		var ccf *types.ConditionalCheckFailedException
		switch {
		case err == nil:
			return pos, nil
		case !errors.As(err, &ccf):
			return StreamPosition{}, fmt.Errorf("create stream meta: %w", err)
		}
		// Someone else created it first: read theirs.
	}
	return StreamPosition{}, errors.New("create stream meta: too much contention")
}

// ReadHistory implements History.
func (h *DynamoHistory) ReadHistory(ctx context.Context, channel string, since uint64, limit, maxBytes int, lim HistoryLimits) (StreamPosition, []Publication, error) {
	if lim.TTL <= 0 || lim.Size <= 0 {
		return StreamPosition{}, nil, fmt.Errorf("read history of %s: history size %d and ttl %s must be positive", channel, lim.Size, lim.TTL)
	}
	pos, err := h.stream(ctx, channel, lim)
	if err != nil {
		return StreamPosition{}, nil, fmt.Errorf("read history of %s: %w", channel, err)
	}
	out := []Publication{}
	if since >= pos.Offset {
		return pos, out, nil // nothing after it (and since+1 would wrap at the top)
	}
	from := max(since+1, oldestKept(pos.Offset, lim.Size))
	if from > pos.Offset {
		return pos, out, nil
	}
	want := int(pos.Offset - from + 1)
	if limit > 0 {
		want = min(want, limit)
	}
	cutoff := ttlCutoff(h.d.opts.Now())
	in := &dynamodb.QueryInput{
		TableName:              h.table(),
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :from AND :to"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(prefixHistory + channel), ":from": str(pubSK(from)), ":to": str(pubSK(pos.Offset)),
		},
		ConsistentRead: aws.Bool(true),
		Limit:          aws.Int32(int32(want)),
	}
	// A page holds at most 1 MB: a read bounded in bytes stops after the
	// page that passes maxBytes, however many items want asks for.
	bytes := 0
	for len(out) < want && (maxBytes <= 0 || bytes <= maxBytes) {
		page, err := h.d.client.Query(ctx, in)
		if err != nil {
			return StreamPosition{}, nil, fmt.Errorf("read history of %s since %d: %w", channel, since, err)
		}
		for _, it := range page.Items {
			if len(out) >= want {
				break
			}
			// A publication of an older epoch, or expired, is not this stream's.
			if getS(it, attrEpoch) != pos.Epoch || !liveAt(it, cutoff) {
				continue
			}
			off, err := strconv.ParseUint(getS(it, attrSK)[len(prefixHistoryPub):], 10, 64)
			if err != nil {
				return StreamPosition{}, nil, fmt.Errorf("read history of %s: bad publication key %q", channel, getS(it, attrSK))
			}
			var data []byte
			if b, ok := it[attrData].(*types.AttributeValueMemberB); ok {
				data = b.Value
			}
			out = append(out, Publication{Offset: off, Data: data})
			if bytes += len(data); maxBytes > 0 && bytes > maxBytes {
				break
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	return pos, out, nil
}

// historyTTL is the ttl attribute of a stream or publication that expires
// at t, rounded up to the next whole second: DynamoDB's ttl is in seconds,
// and rounding down would end a short ttl (1 s, 2 s) up to a second early,
// giving the stream a new epoch although it was appended to within its ttl.
func historyTTL(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s + deletionDelaySeconds
}
