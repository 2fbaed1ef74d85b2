package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/store"
	"github.com/wsforge/terraform-aws-websocket/lambda/store/storetest"
)

func memoryPresence(_ *testing.T, now func() time.Time) storetest.PresenceBackend {
	return store.NewMemoryPresence(now)
}

func dynamoPresence(t *testing.T, now func() time.Time) storetest.PresenceBackend {
	client, _ := localClient(t)
	p, err := store.NewDynamoPresence(client, store.DynamoOptions{Table: freshTable(t, client), Now: now})
	require.NoError(t, err)
	return p
}

func TestMemoryPresenceContract(t *testing.T) {
	t.Parallel()
	storetest.RunPresence(t, memoryPresence)
}

func TestMemoryPresenceConcurrency(t *testing.T) {
	t.Parallel()
	storetest.RunPresenceConcurrency(t, memoryPresence, storetest.PresenceConcurrencyOptions{})
}

func TestDynamoDBPresenceContract(t *testing.T) {
	dynamoEndpoint(t)
	storetest.RunPresence(t, dynamoPresence)
}

func TestDynamoDBPresenceConcurrency(t *testing.T) {
	dynamoEndpoint(t)
	storetest.RunPresenceConcurrency(t, dynamoPresence, storetest.PresenceConcurrencyOptions{})
}
