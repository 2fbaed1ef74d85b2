# Pusher tier: pusher-js 8.6.0, laravel-echo 2.5.0 and the `pusher` 5.3.4 server
# SDK (pinned in test/pusher/package-lock.json, installed with npm ci) against
# wslocal's Pusher mode, twice: on the embedded store with the in-process
# handlers, and on DynamoDB Local with the compiled bootstraps (-lambda-dir).
# The test starts and stops wslocal by its PID; DynamoDB Local is started and
# stopped by its PID here, also when the tests fail.
PUSHER_TEST_DIR       := $(ROOT)/test/pusher
PUSHER_DYNAMODB_PORT  ?= 8746

.PHONY: test-pusher
TEST_TIERS += test-pusher

test-pusher: wslocal-bin host-lambdas pusher-web ## pusher-js, laravel-echo and the pusher server SDK against wslocal (embedded store; DynamoDB Local + bootstraps)
	$(GO) test -count=1 ./lambda/pusher/...
	cd $(PUSHER_TEST_DIR) && WSLOCAL_BIN=$(WSLOCAL_BIN) node --test --test-concurrency=1 pusher.test.mjs
	export DYNAMODB_LOCAL_PORT=$(PUSHER_DYNAMODB_PORT); \
	$(ROOT)/scripts/dynamodb-local.sh start; \
	trap '$(ROOT)/scripts/dynamodb-local.sh stop' EXIT; \
	cd $(PUSHER_TEST_DIR) && WSLOCAL_BIN=$(WSLOCAL_BIN) \
	  WSLOCAL_ARGS="-dynamodb-endpoint $$($(ROOT)/scripts/dynamodb-local.sh endpoint) -table pusher-e2e -lambda-dir $(HOST_LAMBDA_DIR) -quiet-processes" \
	  node --test --test-concurrency=1 pusher.test.mjs

.PHONY: test-pusher-browser pusher-web
TEST_TIERS += test-pusher-browser

# The presence chat page (/pusher.html) loads pusher-js and laravel-echo from
# test/pusher/node_modules (wslocal's -web-node-modules default): make dev
# installs them when npm is there; the gateway itself needs no Node, so
# without npm it starts anyway and says what the page lacks.
.PHONY: dev-pusher-web
dev: dev-pusher-web
dev-pusher-web:
	@if command -v npm >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory pusher-web; \
	else \
	  echo "make dev: npm not found: the gateway starts, but its presence chat page (/pusher.html) has no pusher-js or laravel-echo until Node.js is installed" >&2; \
	fi
pusher-web:
	cd $(PUSHER_TEST_DIR) && npm ci --no-audit --no-fund --loglevel=error

test-pusher-browser: chromium wslocal-bin pusher-web ## the presence chat page (Echo + pusher-js) in headless Chromium: two tabs see each other, whisper and chat
	cd $(BROWSER_TEST_DIR) && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(ARTIFACTS)/browser
	cd $(BROWSER_TEST_DIR) && WSLOCAL_BIN=$(WSLOCAL_BIN) WEB_NODE_MODULES=$(PUSHER_TEST_DIR)/node_modules \
	  CHROMIUM=$$(command -v chromium || echo $(CHROMIUM)) ARTIFACTS_DIR=$(ARTIFACTS)/browser node pusher-chat.test.mjs
