# JavaScript client tier: clients/js (dependency-free; its tests use the ws
# package, pinned in clients/js/package-lock.json, installed with npm ci)
# against wslocal with -history, twice: on the embedded store and on DynamoDB
# Local (in-process handlers). The tests start and stop wslocal by its PID;
# DynamoDB Local is started and stopped by its PID here, also on failure.
# The recovery scenario runs 15 s here; `make scenario-js-client` runs the
# documented 60 s on both stores (docs/benchmarks.md).
JS_CLIENT_DIR           := $(ROOT)/clients/js
JS_CLIENT_DYNAMODB_PORT ?= 8748
JS_CLIENT_TESTS         := test/unit.test.mjs test/client.test.mjs test/scenario.test.mjs

.PHONY: test-js-client scenario-js-client js-client-deps
TEST_TIERS += test-js-client

js-client-deps:
	cd $(JS_CLIENT_DIR) && npm ci --no-audit --no-fund --loglevel=error

define js_client_run
	cd $(JS_CLIENT_DIR) && WSLOCAL_BIN=$(WSLOCAL_BIN) SCENARIO_SECONDS=$(1) node --test --test-concurrency=1 $(2)
	export DYNAMODB_LOCAL_PORT=$(JS_CLIENT_DYNAMODB_PORT); \
	$(ROOT)/scripts/dynamodb-local.sh start; \
	trap '$(ROOT)/scripts/dynamodb-local.sh stop' EXIT; \
	cd $(JS_CLIENT_DIR) && WSLOCAL_BIN=$(WSLOCAL_BIN) SCENARIO_SECONDS=$(1) \
	  WSLOCAL_ARGS="-dynamodb-endpoint $$($(ROOT)/scripts/dynamodb-local.sh endpoint) -table js-client-$$$$" \
	  node --test --test-concurrency=1 $(2)
endef

test-js-client: wslocal-bin js-client-deps ## clients/js against wslocal: history, recovery after forced closes, presence; the recovery scenario (15 s) on the embedded store and DynamoDB Local; index.d.ts type-checks the README's usage (tsc --strict)
	cd $(JS_CLIENT_DIR) && node_modules/.bin/tsc -p test/tsconfig.json
	$(call js_client_run,15,$(JS_CLIENT_TESTS))

scenario-js-client: wslocal-bin js-client-deps ## the full recovery scenario: 50 subscribers, 50 msg/s for 60 s, connections closed every 5 s (embedded store, DynamoDB Local)
	$(call js_client_run,60,test/scenario.test.mjs)
