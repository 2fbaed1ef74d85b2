package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Items of DynamoPresence, in the store's table (see docs/data-model.md):
//
//	pm#{channel} / {connectionId}   a member connection: userId, info, ttl
//	pu#{channel} / {userId}         a user of the channel: n (its connections), info, ttl
//	pn#{channel} / n                the channel's user counter: n
//	kv#{key}     / v                a Values entry: val, n, ttl
const (
	prefixPresenceMember = "pm#"
	prefixPresenceUser   = "pu#"
	prefixPresenceCount  = "pn#"
	prefixValue          = "kv#"
	skPresenceCount      = "n"
	skValue              = "v"
	attrInfo             = "info"
	attrValue            = "val"
	maxPresenceAttempts  = 30
)

// PresenceAPI is the subset of *dynamodb.Client that DynamoPresence uses.
type PresenceAPI interface {
	DynamoAPI
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

var _ PresenceAPI = (*dynamodb.Client)(nil)

// DynamoPresence is Presence and Values on the DynamoDB store's table.
type DynamoPresence struct {
	d      *DynamoDB
	client PresenceAPI
}

var (
	_ Presence = (*DynamoPresence)(nil)
	_ Values   = (*DynamoPresence)(nil)
)

// NewDynamoPresence returns Presence and Values on the store's table
// (opts as for NewDynamoDB: Table, TTL and Now are used).
func NewDynamoPresence(client PresenceAPI, opts DynamoOptions) (*DynamoPresence, error) {
	d, err := NewDynamoDB(client, opts)
	if err != nil {
		return nil, fmt.Errorf("new dynamodb presence: %w", err)
	}
	return &DynamoPresence{d: d, client: client}, nil
}

func (p *DynamoPresence) table() *string { return aws.String(p.d.opts.Table) }

func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: pk}, attrSK: &types.AttributeValueMemberS{Value: sk}}
}

func num(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func str(s string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: s} }

// JoinPresence implements Presence. A first join is one transaction that
// creates the member and the user item (only if absent) and adds one to the
// channel's counter (only below maxUsers); when the user item exists, a
// second transaction creates the member and adds one to the user's count
// (only if the user item still exists). Whoever creates the user item is the
// user's first connection; nothing is read and rewritten.
func (p *DynamoPresence) JoinPresence(ctx context.Context, channel string, m PresenceMember, maxUsers int) (bool, error) {
	if m.ConnectionID == "" || m.UserID == "" {
		return false, fmt.Errorf("join presence %s: empty connection or user id", channel)
	}
	if m.ExpiresAt.IsZero() {
		m.ExpiresAt = p.d.opts.Now().Add(p.d.opts.TTL)
	}
	ttl := num(ttlOf(m.ExpiresAt))
	member := map[string]types.AttributeValue{
		attrPK: str(prefixPresenceMember + channel), attrSK: str(m.ConnectionID),
		attrUserID: str(m.UserID), attrInfo: str(string(m.UserInfo)), attrTTL: ttl,
	}
	putMember := types.TransactWriteItem{Put: &types.Put{TableName: p.table(), Item: member, ConditionExpression: aws.String("attribute_not_exists(pk)")}}
	countUpdate := &types.Update{
		TableName: p.table(), Key: itemKey(prefixPresenceCount+channel, skPresenceCount),
		UpdateExpression:          aws.String("ADD #n :one"),
		ExpressionAttributeNames:  map[string]string{"#n": attrCount},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1)},
	}
	if maxUsers > 0 {
		countUpdate.ConditionExpression = aws.String("attribute_not_exists(#n) OR #n < :max")
		countUpdate.ExpressionAttributeValues[":max"] = num(int64(maxUsers))
	}
	for attempt := 1; attempt <= maxPresenceAttempts; attempt++ {
		err := p.d.transact(ctx, []types.TransactWriteItem{
			putMember,
			{Put: &types.Put{TableName: p.table(), Item: map[string]types.AttributeValue{
				attrPK: str(prefixPresenceUser + channel), attrSK: str(m.UserID),
				attrCount: num(1), attrInfo: str(string(m.UserInfo)), attrTTL: ttl,
			}, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
			{Update: countUpdate},
		})
		var tc *txCanceled
		switch {
		case err == nil:
			return true, nil
		case !errors.As(err, &tc):
			return false, fmt.Errorf("join presence %s as %s (%s): %w", channel, m.UserID, m.ConnectionID, err)
		case tc.failed(0):
			return false, nil
		case !tc.failed(1) && tc.failed(2):
			return false, fmt.Errorf("join presence %s as %s: %w", channel, m.UserID, ErrPresenceFull)
		}
		// The user is already in the channel: count one more connection.
		err = p.d.transact(ctx, []types.TransactWriteItem{
			putMember,
			{Update: &types.Update{
				TableName: p.table(), Key: itemKey(prefixPresenceUser+channel, m.UserID),
				UpdateExpression:          aws.String("ADD #n :one SET #ttl = :ttl"),
				ConditionExpression:       aws.String("attribute_exists(pk)"),
				ExpressionAttributeNames:  map[string]string{"#n": attrCount, "#ttl": attrTTL},
				ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":ttl": ttl},
			}},
		})
		switch {
		case err == nil:
			return false, nil
		case !errors.As(err, &tc):
			return false, fmt.Errorf("join presence %s as %s (%s): %w", channel, m.UserID, m.ConnectionID, err)
		case tc.failed(0):
			return false, nil
		}
		// The user's last connection left in between: try the first join again.
		if werr := backoff(ctx, attempt); werr != nil {
			return false, werr
		}
	}
	return false, fmt.Errorf("join presence %s as %s (%s): too much contention", channel, m.UserID, m.ConnectionID)
}

// LeavePresence implements Presence: one transaction deletes the member and
// takes one from the user's count while it is above one; otherwise one
// deletes the member, the user item (only at a count of one) and takes one
// from the channel's counter. Whoever deletes the user item is the last leave.
func (p *DynamoPresence) LeavePresence(ctx context.Context, channel, connectionID string) (PresenceMember, bool, error) {
	out, err := p.d.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: p.table(), Key: itemKey(prefixPresenceMember+channel, connectionID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return PresenceMember{}, false, fmt.Errorf("leave presence %s: %s: %w", channel, connectionID, err)
	}
	if out.Item == nil {
		return PresenceMember{}, false, fmt.Errorf("leave presence %s: %s: %w", channel, connectionID, ErrNotFound)
	}
	m := presenceMember(out.Item)
	delMember := types.TransactWriteItem{Delete: &types.Delete{TableName: p.table(), Key: itemKey(prefixPresenceMember+channel, connectionID), ConditionExpression: aws.String("attribute_exists(pk)")}}
	userKey := itemKey(prefixPresenceUser+channel, m.UserID)
	for attempt := 1; attempt <= maxPresenceAttempts; attempt++ {
		err := p.d.transact(ctx, []types.TransactWriteItem{
			delMember,
			{Update: &types.Update{
				TableName: p.table(), Key: userKey,
				UpdateExpression:          aws.String("ADD #n :minus"),
				ConditionExpression:       aws.String("#n > :one"),
				ExpressionAttributeNames:  map[string]string{"#n": attrCount},
				ExpressionAttributeValues: map[string]types.AttributeValue{":minus": num(-1), ":one": num(1)},
			}},
		})
		var tc *txCanceled
		switch {
		case err == nil:
			return m, false, nil
		case !errors.As(err, &tc):
			return m, false, fmt.Errorf("leave presence %s: %s: %w", channel, connectionID, err)
		case tc.failed(0):
			return m, false, fmt.Errorf("leave presence %s: %s: %w", channel, connectionID, ErrNotFound)
		}
		err = p.d.transact(ctx, []types.TransactWriteItem{
			delMember,
			{Delete: &types.Delete{
				TableName: p.table(), Key: userKey,
				ConditionExpression:                 aws.String("#n = :one"),
				ExpressionAttributeNames:            map[string]string{"#n": attrCount},
				ExpressionAttributeValues:           map[string]types.AttributeValue{":one": num(1)},
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}},
			{Update: &types.Update{
				TableName: p.table(), Key: itemKey(prefixPresenceCount+channel, skPresenceCount),
				UpdateExpression:          aws.String("ADD #n :minus"),
				ExpressionAttributeNames:  map[string]string{"#n": attrCount},
				ExpressionAttributeValues: map[string]types.AttributeValue{":minus": num(-1)},
			}},
		})
		switch {
		case err == nil:
			return m, true, nil
		case !errors.As(err, &tc):
			return m, false, fmt.Errorf("leave presence %s: %s: %w", channel, connectionID, err)
		case tc.failed(0):
			return m, false, fmt.Errorf("leave presence %s: %s: %w", channel, connectionID, ErrNotFound)
		}
		// Another connection of the user joined in between: count down again.
		if werr := backoff(ctx, attempt); werr != nil {
			return m, false, werr
		}
	}
	return m, false, fmt.Errorf("leave presence %s: %s: too much contention", channel, connectionID)
}

func presenceMember(item map[string]types.AttributeValue) PresenceMember {
	m := PresenceMember{UserID: getS(item, attrUserID)}
	if sk := getS(item, attrSK); sk != "" {
		m.ConnectionID = sk
	}
	if info := getS(item, attrInfo); info != "" {
		m.UserInfo = []byte(info)
	}
	if ttl, ok := getN(item, attrTTL); ok {
		m.ExpiresAt = time.Unix(ttl-deletionDelaySeconds, 0)
	}
	return m
}

// PresenceMember implements Presence.
func (p *DynamoPresence) PresenceMember(ctx context.Context, channel, connectionID string) (PresenceMember, error) {
	out, err := p.d.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: p.table(), Key: itemKey(prefixPresenceMember+channel, connectionID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return PresenceMember{}, fmt.Errorf("presence member %s of %s: %w", connectionID, channel, err)
	}
	if out.Item == nil || !liveAt(out.Item, ttlCutoff(p.d.opts.Now())) {
		return PresenceMember{}, fmt.Errorf("presence member %s of %s: %w", connectionID, channel, ErrNotFound)
	}
	return presenceMember(out.Item), nil
}

// PresenceUsers implements Presence: a paged Query of the channel's user items.
func (p *DynamoPresence) PresenceUsers(ctx context.Context, channel string) ([]PresenceMember, error) {
	out := []PresenceMember{}
	cutoff := ttlCutoff(p.d.opts.Now())
	var start map[string]types.AttributeValue
	for {
		page, err := p.d.client.Query(ctx, &dynamodb.QueryInput{
			TableName:                 p.table(),
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(prefixPresenceUser + channel)},
			ConsistentRead:            aws.Bool(true),
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return nil, fmt.Errorf("presence users of %s: %w", channel, err)
		}
		for _, it := range page.Items {
			if !liveAt(it, cutoff) {
				continue
			}
			m := presenceMember(it)
			m.ConnectionID = ""
			m.UserID = getS(it, attrSK)
			out = append(out, m)
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		start = page.LastEvaluatedKey
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out, nil
}

// PresenceUserCount implements Presence: one GetItem of the channel's counter.
func (p *DynamoPresence) PresenceUserCount(ctx context.Context, channel string) (int, error) {
	out, err := p.d.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: p.table(), Key: itemKey(prefixPresenceCount+channel, skPresenceCount), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, fmt.Errorf("presence user count of %s: %w", channel, err)
	}
	n, _ := getN(out.Item, attrCount)
	return int(n), nil
}

// PutValue implements Values.
func (p *DynamoPresence) PutValue(ctx context.Context, k string, value []byte, expires time.Time, ifAbsent bool) (bool, error) {
	in := &dynamodb.PutItemInput{TableName: p.table(), Item: map[string]types.AttributeValue{
		attrPK: str(prefixValue + k), attrSK: str(skValue), attrTTL: num(ttlOf(expires)),
	}}
	if len(value) > 0 { // an empty value is no attribute (DynamoDB refuses a nil one); GetValue reads it empty
		in.Item[attrValue] = &types.AttributeValueMemberB{Value: value}
	}
	if ifAbsent {
		in.ConditionExpression = aws.String("attribute_not_exists(pk) OR #ttl <= :cutoff")
		in.ExpressionAttributeNames = map[string]string{"#ttl": attrTTL}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":cutoff": num(ttlCutoff(p.d.opts.Now()))}
	}
	if _, err := p.client.PutItem(ctx, in); err != nil {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return false, nil
		}
		return false, fmt.Errorf("put value %s: %w", k, err)
	}
	return true, nil
}

// GetValue implements Values.
func (p *DynamoPresence) GetValue(ctx context.Context, k string) ([]byte, error) {
	out, err := p.d.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: p.table(), Key: itemKey(prefixValue+k, skValue), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("get value %s: %w", k, err)
	}
	if out.Item == nil || !liveAt(out.Item, ttlCutoff(p.d.opts.Now())) {
		return nil, fmt.Errorf("get value %s: %w", k, ErrNotFound)
	}
	b, _ := out.Item[attrValue].(*types.AttributeValueMemberB)
	if b == nil {
		return nil, nil
	}
	return b.Value, nil
}

// Increment implements Values: one UpdateItem (ADD) returning the new count.
// Keys are per time window, so an expired counter is never incremented again.
func (p *DynamoPresence) Increment(ctx context.Context, k string, expires time.Time) (int64, error) {
	out, err := p.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: p.table(), Key: itemKey(prefixValue+k, skValue),
		UpdateExpression:          aws.String("ADD #n :one SET #ttl = if_not_exists(#ttl, :ttl)"),
		ExpressionAttributeNames:  map[string]string{"#n": attrCount, "#ttl": attrTTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":ttl": num(ttlOf(expires))},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, fmt.Errorf("increment %s: %w", k, err)
	}
	n, _ := getN(out.Attributes, attrCount)
	return n, nil
}
