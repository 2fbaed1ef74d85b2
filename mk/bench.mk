# Benchmarks behind docs/benchmarks.md, and a smoke tier that runs each of them
# once at a small size so they cannot rot (no timing is asserted anywhere).
#   make bench             reproduce docs/benchmarks.md (about 25 minutes; tables on
#                          stdout and in artifacts/, chart artifacts/benchmarks-rate.svg)
#   make test-bench-smoke  the smoke tier (part of `make test`)
BENCH_OUT ?= $(ROOT)/artifacts
# A port of its own, so this tier never meets test-dynamodb's DynamoDB Local.
BENCH_DYNAMODB_PORT ?= 8743
BENCH_FUNCTIONS := websocket,authorizer,publisher,fanout,deployer

.PHONY: bench bench-fanout bench-cpu bench-workers bench-small bench-lambda bench-dynamo test-bench-smoke
TEST_TIERS += test-bench-smoke

bench: bench-fanout bench-cpu bench-workers bench-small bench-lambda bench-dynamo ## reproduce docs/benchmarks.md (tables in artifacts/*.md, chart in artifacts/)

# The machine's own ceiling (10,900-11,300 calls/s on 2 cores in the
# published runs) is only just above the 10,000/s limit, so the comparison
# also runs at a limit it reaches with CPU to spare.
BENCH_SCALED_RATE ?= 3000

bench-fanout: ## fan-out: sequential vs all-at-once vs ours at N = 1,000/10,000/100,000
	@mkdir -p $(BENCH_OUT)/scaled $(BENCH_OUT)/c64
	$(GO) build -o $(BENCH_OUT)/wsbench ./cmd/wsbench
	$(BENCH_OUT)/wsbench fanout -ceiling -out $(BENCH_OUT) | tee $(BENCH_OUT)/fanout.md
	@echo "bench-fanout: paste $(BENCH_OUT)/fanout.md into docs/benchmarks.md section 1, then: go run ./cmd/wsbench chart"
	$(BENCH_OUT)/wsbench fanout -rate $(BENCH_SCALED_RATE) -out $(BENCH_OUT)/scaled | tee $(BENCH_OUT)/scaled/fanout.md
	$(BENCH_OUT)/wsbench fanout -n 100000 -strategies ours -concurrency 64 -out $(BENCH_OUT)/c64 | tee $(BENCH_OUT)/c64/fanout.md

# A sender held below the limit (a fan-out worker's share of the budget):
# CPU per post with and without the pacing grid (sender.Options.PaceWindow).
BENCH_CAPPED_RATES ?= 1250 2500

bench-cpu: ## client CPU per post at N = 100,000: the SDK client, the lean path through net/http, the lean path (the Lambdas') at GOMAXPROCS 1 and 2; at capped rates with and without the pacing grid; client CPU per new connection (TLS handshake full and resumed, with and without the post-quantum key exchange)
	@mkdir -p $(BENCH_OUT)/cpu
	$(GO) build -o $(BENCH_OUT)/wsbench ./cmd/wsbench
	@for p in sdk lean-client lean; do \
		$(BENCH_OUT)/wsbench fanout -n 100000 -strategies ours -post $$p -out $(BENCH_OUT)/cpu/$$p | tee $(BENCH_OUT)/cpu/$$p.md; \
	done
	$(BENCH_OUT)/wsbench fanout -n 100000 -strategies ours -post lean -client-gomaxprocs 0 -out $(BENCH_OUT)/cpu/lean-procs-default | tee $(BENCH_OUT)/cpu/lean-procs-default.md
	@for r in $(BENCH_CAPPED_RATES); do for p in -1ns 0s; do \
		$(BENCH_OUT)/wsbench fanout -n 20000 -strategies ours -max-rate $$r -pace-window=$$p -out $(BENCH_OUT)/cpu/capped-$$r-pace$$p | tee $(BENCH_OUT)/cpu/capped-$$r-pace$$p.md; \
	done; done
	$(BENCH_OUT)/wsbench handshake -n 2000 | tee $(BENCH_OUT)/cpu/handshake.md

bench-workers: ## distributed fan-out: k = 1, 2, 4, 8 worker processes sharing one 10,000/s limit, before/with the rate hint, with/without the pacing grid and the in-flight share, 1 batch per invocation and the module's default (messages_per_invocation unset), against the machine ceiling for k processes
	@mkdir -p $(BENCH_OUT)
	$(GO) build -o $(BENCH_OUT)/wsbench ./cmd/wsbench
	$(BENCH_OUT)/wsbench workers -k 1,2,4,8 -n 100000 -modes before,hint-unpaced,hint-full,hint -ceiling | tee $(BENCH_OUT)/workers.md
	$(BENCH_OUT)/wsbench workers -k 1,2,4,8 -n 100000 -modes hint -per-invocation auto -ceiling | tee $(BENCH_OUT)/workers-per-invocation.md

bench-small: ## small fan-outs: N = 100 and 1,000 on a cold and on a warm sender, against the ideal (before/with the start rate)
	@mkdir -p $(BENCH_OUT)
	$(GO) build -o $(BENCH_OUT)/wsbench ./cmd/wsbench
	$(BENCH_OUT)/wsbench small -n 100,1000 -runs 5 -start-rate=-1,0 | tee $(BENCH_OUT)/small.md

bench-lambda: ## zipped bootstrap sizes and start-up time per function
	@mkdir -p $(BENCH_OUT)
	$(GO) run ./cmd/wsbench lambda -functions $(BENCH_FUNCTIONS) -max-zip-mb 10 | tee $(BENCH_OUT)/lambda.md

bench-dynamo: ## DynamoDB requests per operation and a 100,000-member channel, on DynamoDB Local
	@mkdir -p $(BENCH_OUT)
	@trap 'DYNAMODB_LOCAL_PORT=$(BENCH_DYNAMODB_PORT) scripts/dynamodb-local.sh stop' EXIT; \
	DYNAMODB_LOCAL_PORT=$(BENCH_DYNAMODB_PORT) scripts/dynamodb-local.sh start; \
	$(GO) run ./cmd/wsbench dynamo -endpoint http://127.0.0.1:$(BENCH_DYNAMODB_PORT) | tee $(BENCH_OUT)/dynamo.md

test-bench-smoke: ## every benchmark once at small N, the fan-out ledger on DynamoDB Local
	$(GO) test -count=1 -run '^$$' -bench . -benchtime=1x ./bench/ -wsbench.n=1000 -wsbench.timebox=1s
	@mkdir -p $(BENCH_OUT)/smoke
	$(GO) build -o $(BENCH_OUT)/smoke/wsbench ./cmd/wsbench
	$(BENCH_OUT)/smoke/wsbench fanout -n 1000 -timebox 1s -out $(BENCH_OUT)/smoke >/dev/null
	$(BENCH_OUT)/smoke/wsbench fanout -n 1000 -strategies ours -post sdk -out $(BENCH_OUT)/smoke >/dev/null
	@grep -q '"accepted"' $(BENCH_OUT)/smoke/fanout.json || { echo "test-bench-smoke: fanout.json has no accepted calls over time"; exit 1; }
	@rm -rf $(BENCH_OUT)/smoke/wprof
	$(BENCH_OUT)/smoke/wsbench workers -k 1,2 -n 2000 -modes before,alone,hint,hint-unpaced,hint-full -per-invocation auto -ceiling -cpuprofile $(BENCH_OUT)/smoke/wprof >/dev/null
	@test -n "$$(find $(BENCH_OUT)/smoke/wprof -name 'cpu-k2-hint-*-w1.pprof' -size +0)" || { echo "test-bench-smoke: workers -cpuprofile wrote no profile for k=2 hint worker 1"; ls $(BENCH_OUT)/smoke/wprof; exit 1; }
	$(BENCH_OUT)/smoke/wsbench fanout -n 1000 -strategies ours -max-rate 2500 -pace-window=-1ns -out $(BENCH_OUT)/smoke >/dev/null
	$(BENCH_OUT)/smoke/wsbench small -n 100 -runs 1 -pause 10ms -start-rate=-1,0 >/dev/null
	$(BENCH_OUT)/smoke/wsbench handshake -n 20 >/dev/null
	$(GO) run ./cmd/wsbench lambda -functions $(BENCH_FUNCTIONS) -runs 1 -max-zip-mb 10 >/dev/null
	@trap 'DYNAMODB_LOCAL_PORT=$(BENCH_DYNAMODB_PORT) scripts/dynamodb-local.sh stop' EXIT; \
	DYNAMODB_LOCAL_PORT=$(BENCH_DYNAMODB_PORT) scripts/dynamodb-local.sh start; \
	WS_DYNAMODB_ENDPOINT=http://127.0.0.1:$(BENCH_DYNAMODB_PORT) WS_REQUIRE_DYNAMODB=1 \
	  $(GO) test -count=1 -run 'DynamoLedger' ./lambda/fanout/; \
	$(BENCH_OUT)/smoke/wsbench dynamo -endpoint http://127.0.0.1:$(BENCH_DYNAMODB_PORT) -channel 2000 -small 50 >/dev/null
