package store_test

import (
	"testing"

	"github.com/wsforge/terraform-aws-websocket/lambda/store"
	"github.com/wsforge/terraform-aws-websocket/lambda/store/storetest"
)

func memoryFactory(_ *testing.T, cfg storetest.Config) storetest.Instance {
	return storetest.Instance{Store: store.NewMemory(store.MemoryOptions{TTL: cfg.TTL, Now: cfg.Now, PageSize: cfg.PageSize})}
}

func TestMemoryContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, memoryFactory)
}

func TestMemoryConcurrency(t *testing.T) {
	t.Parallel()
	storetest.RunConcurrency(t, memoryFactory, storetest.ConcurrencyOptions{})
}
