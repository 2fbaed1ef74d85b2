# Go unit tests, vet, fuzzing, packaging.
GO ?= go
LAMBDA_FUNCTIONS ?= websocket authorizer publisher fanout deployer
# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can
# fail a clean run with a bare "context deadline exceeded" when the deadline
# lands while its workers are mid-batch (go.dev/issue/75804, fixed in Go
# 1.27). 50,000 inputs take about 3 to 10 s per target here.
FUZZTIME ?= 50000x

.PHONY: vet test-unit test-fuzz package
TEST_TIERS += vet test-unit test-fuzz

vet: ## go vet (also with -tags aws) and a gofmt check
	@files=$$(git ls-files '*.go'); test -z "$$(gofmt -l $$files)" || { echo "gofmt needed:"; gofmt -l $$files; exit 1; }
	$(GO) vet ./...

test-unit: ## unit tests: memory store, fake management API, handler, publisher, fuzz seed corpora, packaging
	$(GO) test -race -count=1 -timeout 20m ./...

test-fuzz: ## a short coverage-guided run of each fuzz target (FUZZTIME=50000x inputs, or a duration)
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./lambda/protocol
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./lambda/publisher
	$(GO) test -run '^$$' -fuzz '^FuzzFrameGuard$$' -fuzztime $(FUZZTIME) ./lambda/localgw

package: ## build linux/arm64 bootstrap zips into dist/ (ARCH=amd64 for x86 Lambdas)
	$(GO) run ./tools/package -out $(DIST) -arch $${ARCH:-arm64} $(LAMBDA_FUNCTIONS)
