# Go unit tests, vet, fuzz seed corpora, packaging.
GO ?= go
LAMBDA_FUNCTIONS := websocket authorizer publisher

.PHONY: test-unit vet package
TEST_TIERS += vet test-unit

vet: ## go vet and gofmt check
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '^test/'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go' | grep -v '^test/'); exit 1; }
	$(GO) vet ./...

test-unit: ## unit tests with the in-memory store and a fake management API (fuzz seeds included)
	$(GO) test -race -count=1 ./...

package: ## build linux/arm64 bootstrap zips into dist/ (GOARCH=amd64 for the host)
	$(GO) run ./tools/package -out $(DIST) -arch $${GOARCH:-arm64} $(LAMBDA_FUNCTIONS)
