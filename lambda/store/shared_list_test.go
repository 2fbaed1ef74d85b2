package store_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDynamoDBSharedListLosesUpdates reproduces, on DynamoDB Local, the design
// this store replaces (docs/data-model.md): the original package keeps every
// connection id in one cached array that each connect reads, appends to and
// writes back. 200 concurrent connects lose most of their ids; the store's
// own concurrency test (TestDynamoDBConcurrency) loses none.
func TestDynamoDBSharedListLosesUpdates(t *testing.T) {
	client, _ := localClient(t)
	table := freshTable(t, client)
	ctx := t.Context()
	key := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "websocket:connections"},
		"sk": &types.AttributeValueMemberS{Value: "array"},
	}
	put := func(ids []types.AttributeValue) error {
		_, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
			"pk": key["pk"], "sk": key["sk"], "ids": &types.AttributeValueMemberL{Value: ids},
		}})
		return err
	}
	get := func() ([]types.AttributeValue, error) {
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, err
		}
		return out.Item["ids"].(*types.AttributeValueMemberL).Value, nil
	}
	require.NoError(t, put([]types.AttributeValue{}))

	const connects = 200
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, connects)
	)
	for i := range connects {
		wg.Go(func() {
			<-start
			ids, err := get() // Cache::get('websocket:connections', [])
			if err == nil {
				ids = append(ids, &types.AttributeValueMemberS{Value: fmt.Sprintf("conn-%03d", i)})
				err = put(ids) // Cache::put('websocket:connections', $ids)
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	ids, err := get()
	require.NoError(t, err)
	t.Logf("shared array after %d concurrent connects: %d ids kept, %d lost", connects, len(ids), connects-len(ids))
	assert.Less(t, len(ids), connects, "read-modify-write of one shared array loses concurrent updates")
}
