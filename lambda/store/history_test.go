package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/store"
	"github.com/wsforge/terraform-aws-websocket/lambda/store/storetest"
)

func memoryHistory(_ *testing.T, now func() time.Time) (store.History, store.History) {
	h := store.NewMemoryHistory(now)
	return h, h
}

// dynamoHistory returns two DynamoHistory values on one table, as two
// Lambda instances would hold: each keeps its own view of the streams.
func dynamoHistory(t *testing.T, now func() time.Time) (store.History, store.History) {
	client, _ := localClient(t)
	opts := store.DynamoOptions{Table: freshTable(t, client), Now: now}
	a, err := store.NewDynamoHistory(client, opts)
	require.NoError(t, err)
	b, err := store.NewDynamoHistory(client, opts)
	require.NoError(t, err)
	return a, b
}

func TestMemoryHistoryContract(t *testing.T) {
	t.Parallel()
	storetest.RunHistory(t, memoryHistory)
}

func TestMemoryHistoryConcurrency(t *testing.T) {
	t.Parallel()
	storetest.RunHistoryConcurrency(t, memoryHistory, 16, 50)
}

func TestDynamoDBHistoryContract(t *testing.T) {
	dynamoEndpoint(t)
	storetest.RunHistory(t, dynamoHistory)
}

func TestDynamoDBHistoryConcurrency(t *testing.T) {
	dynamoEndpoint(t)
	storetest.RunHistoryConcurrency(t, dynamoHistory, 8, 25)
}
