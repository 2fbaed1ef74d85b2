# Go unit tests, vet, fuzzing, packaging.
GO ?= go
LAMBDA_FUNCTIONS ?= websocket authorizer publisher fanout deployer
# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can
# fail a clean run with a bare "context deadline exceeded" when the deadline
# lands while its workers are mid-batch (go.dev/issue/75804, fixed in Go
# 1.27). 50,000 inputs take about 3 to 10 s per target here.
FUZZTIME ?= 50000x
# The whole-handler targets (a client's message through the v1 and Pusher
# handlers, a signed Pusher HTTP API request, a publisher invocation, the
# local gateway's HTTP side) run the stores and a
# management API stand-in per input: fewer inputs, and a bounded
# minimization of each new interesting one (60 s by default).
FUZZTIME_HANDLER ?= 10000x

.PHONY: vet test-unit test-fuzz package
TEST_TIERS += vet test-unit test-fuzz

vet: ## go vet (also with -tags aws) and a gofmt check
	@files=$$(git ls-files '*.go'); test -z "$$(gofmt -l $$files)" || { echo "gofmt needed:"; gofmt -l $$files; exit 1; }
	$(GO) vet ./...

test-unit: ## unit tests: memory store, fake management API, handler, publisher, fuzz seed corpora, packaging
	$(GO) test -race -count=1 -timeout 20m ./...

test-fuzz: ## a short coverage-guided run of each fuzz target (FUZZTIME=50000x inputs, FUZZTIME_HANDLER=10000x for the whole-handler targets, or durations)
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./lambda/protocol
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./lambda/publisher
	$(GO) test -run '^$$' -fuzz '^FuzzFrameGuard$$' -fuzztime $(FUZZTIME) ./lambda/localgw
	$(GO) test -run '^$$' -fuzz '^FuzzHandleMessage$$' -fuzztime $(FUZZTIME_HANDLER) -fuzzminimizetime 200x ./lambda/realtime
	$(GO) test -run '^$$' -fuzz '^FuzzHandleFrame$$' -fuzztime $(FUZZTIME_HANDLER) -fuzzminimizetime 200x ./lambda/pusher
	$(GO) test -run '^$$' -fuzz '^FuzzServeAPI$$' -fuzztime $(FUZZTIME_HANDLER) -fuzzminimizetime 200x ./lambda/pusher
	$(GO) test -run '^$$' -fuzz '^FuzzHandle$$' -fuzztime $(FUZZTIME_HANDLER) -fuzzminimizetime 200x ./lambda/publisher
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyClaims$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 200x ./lambda/auth
	$(GO) test -run '^$$' -fuzz '^FuzzServeHTTP$$' -fuzztime $(FUZZTIME_HANDLER) -fuzzminimizetime 200x ./lambda/localgw

package: ## build every function's linux/arm64 zip (ARCH=amd64 for x86 Lambdas) into dist/<fn>.zip for lambda_artifacts, and as a one-architecture bundle (dist/<arch>/, dist/manifest.json) that the module in this checkout deploys while its sources match
	@case "$${ARCH:-arm64}" in arm64) a=arm64;; amd64|x86_64) a=x86_64;; *) echo "package: ARCH=$$ARCH: want arm64 or amd64" >&2; exit 2;; esac; \
	rm -rf $(DIST)/arm64 $(DIST)/x86_64 $(DIST)/assets $(DIST)/manifest.json && \
	$(GO) run ./tools/package -release $(DIST) -release-archs $$a && \
	for fn in $(LAMBDA_FUNCTIONS); do cp $(DIST)/$$a/$$fn.zip $(DIST)/$$fn.zip || exit 1; done && \
	echo "package: dist/<fn>.zip and the $$a bundle in dist/$$a/ with dist/manifest.json"
