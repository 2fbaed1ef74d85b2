package fanout_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/fanout"
	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// TestDynamoLedger runs the ledger contract against DynamoDB Local when
// WS_DYNAMODB_ENDPOINT is set (`make test-bench-smoke` starts it); with
// WS_REQUIRE_DYNAMODB=1 a missing endpoint fails instead of skipping.
func TestDynamoLedger(t *testing.T) {
	endpoint := os.Getenv("WS_DYNAMODB_ENDPOINT")
	if endpoint == "" {
		if os.Getenv("WS_REQUIRE_DYNAMODB") == "1" {
			t.Fatal("WS_REQUIRE_DYNAMODB=1 but WS_DYNAMODB_ENDPOINT is not set")
		}
		t.Skip("WS_DYNAMODB_ENDPOINT not set: runs in `make test-bench-smoke`")
	}
	ctx := context.Background()
	client := dynamodb.New(dynamodb.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials:                     credentials.NewStaticCredentialsProvider("local", "local", ""),
		DisableValidateResponseChecksum: true,
		Retryer:                         localgw.DynamoDBLocalRetryer(),
	})
	table := fmt.Sprintf("ws-ledger-%d", time.Now().UnixNano())
	require.NoError(t, store.CreateTable(ctx, client, table))
	t.Cleanup(func() {
		_, err := client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
		assert.NoError(t, err)
	})
	now := time.Now()
	l, err := fanout.NewDynamoLedger(client, table, time.Hour)
	require.NoError(t, err)
	l.WithClock(func() time.Time { return now })
	runLedgerContract(t, l, func(d time.Duration) { now = now.Add(d) })

	// ttlOf reads the ttl attribute of a batch's ledger item.
	ttlOf := func(id string) string {
		t.Helper()
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true), Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "batch#" + id}, "sk": &types.AttributeValueMemberS{Value: "batch"},
		}})
		require.NoError(t, err)
		ttl, ok := out.Item["ttl"].(*types.AttributeValueMemberN)
		require.True(t, ok, "the ledger item of %s carries the table's ttl attribute", id)
		return ttl.Value
	}

	assert.Equal(t, fmt.Sprint(now.Add(fanout.RedriveWindow).Unix()), ttlOf("a"), "a running claim outlives a redrive from the dead-letter queue")
	require.NoError(t, l.Complete(ctx, "a"))
	assert.Equal(t, fmt.Sprint(now.Add(time.Hour).Unix()), ttlOf("a"), "a done batch is remembered for the ledger's window")

	runProgressLedgerContract(t, l, func(d time.Duration) { now = now.Add(d) })

	// A released batch outlives the dead-letter queue's 14 days: a batch
	// redriven from it still finds the recipients it had left.
	c, _, err := l.ClaimRemaining(ctx, "redrive", time.Minute)
	require.NoError(t, err)
	require.Equal(t, fanout.Claimed, c)
	require.NoError(t, l.ReleaseRemaining(ctx, "redrive", []string{"x="}))
	assert.Equal(t, fmt.Sprint(now.Add(fanout.RedriveWindow).Unix()), ttlOf("redrive"), "15 days, not the ledger's hour")

	// Claiming it again keeps the 15 days: the claimer may die with it and
	// the message go to the dead-letter queue.
	now = now.Add(time.Hour)
	c, rest, err := l.ClaimRemaining(ctx, "redrive", time.Minute)
	require.NoError(t, err)
	require.Equal(t, fanout.Claimed, c)
	require.Equal(t, []string{"x="}, rest)
	assert.Equal(t, fmt.Sprint(now.Add(fanout.RedriveWindow).Unix()), ttlOf("redrive"), "a running claim keeps the redrive window")
	require.NoError(t, l.Complete(ctx, "redrive"))
}
