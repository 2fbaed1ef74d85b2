# Local gateway (cmd/wslocal): `make dev`, and the end-to-end, browser and load tiers.
E2E_DYNAMODB_PORT ?= 8744
HOST_LAMBDA_DIR   := $(DIST)/host
WSLOCAL_BIN       := $(DIST)/wslocal
ARTIFACTS         := $(ROOT)/artifacts
BROWSER_TEST_DIR  := $(ROOT)/test/browser
CHROMIUM          ?= /usr/bin/chromium
WSLOCAL_ARGS      ?=

.PHONY: dev test-e2e test-browser test-load host-lambdas wslocal-bin chromium
TEST_TIERS += test-e2e test-browser test-load

# The built binary, not `go run`: go run exits 1 when Ctrl-C interrupts it,
# even after wslocal's graceful shutdown exited 0, and make then reports Error 1.
dev: wslocal-bin ## run the local gateway on the embedded store: ws://127.0.0.1:8080/dev, demo page on http://127.0.0.1:8080/ (WSLOCAL_ARGS for flags)
	exec $(WSLOCAL_BIN) $(WSLOCAL_ARGS)

host-lambdas: ## build the module's bootstraps for this machine into dist/host (what -lambda-dir runs)
	$(GO) run ./tools/package -out $(HOST_LAMBDA_DIR) -os $$($(GO) env GOOS) -arch $$($(GO) env GOARCH) $(LAMBDA_FUNCTIONS)

wslocal-bin:
	$(GO) build -o $(WSLOCAL_BIN) ./cmd/wslocal

test-e2e: host-lambdas ## wslocal end to end: real WebSocket clients on the embedded store, DynamoDB Local and the compiled bootstraps
	$(GO) vet -tags e2e,load ./lambda/localgw/... ./cmd/wslocal/...
	export DYNAMODB_LOCAL_PORT=$(E2E_DYNAMODB_PORT); \
	scripts/dynamodb-local.sh start; \
	trap 'scripts/dynamodb-local.sh stop' EXIT; \
	WS_DYNAMODB_ENDPOINT=$$(scripts/dynamodb-local.sh endpoint) WS_REQUIRE_DYNAMODB=1 WS_LAMBDA_DIR=$(HOST_LAMBDA_DIR) \
		$(GO) test -tags e2e -race -count=1 -timeout 10m ./lambda/localgw/... ./cmd/wslocal/...

chromium:
	@command -v chromium >/dev/null || { \
		echo "installing Debian's chromium with apt-get"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

test-browser: chromium wslocal-bin ## the demo page (on clients/js) in headless Chromium: two users chat, presence, recovery after a forced close; screenshots in artifacts/browser
	cd $(BROWSER_TEST_DIR) && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(ARTIFACTS)/browser
	cd $(BROWSER_TEST_DIR) && WSLOCAL_BIN=$(WSLOCAL_BIN) CHROMIUM=$$(command -v chromium || echo $(CHROMIUM)) ARTIFACTS_DIR=$(ARTIFACTS)/browser node demo.test.mjs

test-load: ## 2,000 concurrent WebSocket connections to wslocal on loopback: subscribe, broadcast, disconnect, empty store
	$(GO) test -tags load -count=1 -timeout 10m -run TestLoad -v ./cmd/wslocal/
