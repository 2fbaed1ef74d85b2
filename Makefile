# The README's two commands: `make dev` (local gateway on the embedded store)
# and `make test` (every offline test tier). Each installs what it needs,
# pinned, into .tools/ (git-ignored). Tiers live in mk/*.mk, one file per concern.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT  := $(CURDIR)
TOOLS := $(ROOT)/.tools
DIST  := $(ROOT)/dist
export PATH := $(TOOLS)/bin:$(PATH)
export GOFLAGS := -buildvcs=false
# This module alone, whatever go.work surrounds the checkout (a monorepo's).
export GOWORK := off

# Tiers append their targets here, in the order they should run.
TEST_TIERS :=

include mk/go.mk
include $(filter-out mk/go.mk,$(sort $(wildcard mk/*.mk)))

.PHONY: help test
help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

# Tiers run one after another through a sub-make, so each one's time is
# printed (CI keeps the whole under 35 minutes on a fresh machine). The
# Terraform tools, which a fresh machine builds from source for most of that
# time, build in the background (niced) from the start, while the tiers that
# need none of them run; test-terraform, last, waits for them.
TOOLS_PREBUILD := terraform-tools tf-provider
test: ## run every offline test tier
	@start=$$(date +%s); mkdir -p $(TOOLS); \
	log=$(TOOLS)/prebuild.log; \
	setsid nice -n 10 $(MAKE) --no-print-directory $(TOOLS_PREBUILD) >"$$log" 2>&1 & prebuild=$$!; \
	trap 'kill -- -$$prebuild 2>/dev/null || true' EXIT; \
	for t in $(filter-out test-terraform,$(TEST_TIERS)); do \
		s=$$(date +%s); $(MAKE) --no-print-directory $$t; \
		echo "make test: $$t passed in $$(( $$(date +%s) - s ))s"; \
	done; \
	s=$$(date +%s); \
	wait $$prebuild || { cat "$$log"; echo "make test: building $(TOOLS_PREBUILD) failed"; exit 1; }; \
	echo "make test: waited $$(( $$(date +%s) - s ))s for $(TOOLS_PREBUILD) (built in the background; log $$log)"; \
	for t in $(filter test-terraform,$(TEST_TIERS)); do \
		s=$$(date +%s); $(MAKE) --no-print-directory $$t; \
		echo "make test: $$t passed in $$(( $$(date +%s) - s ))s"; \
	done; \
	echo "make test: all tiers passed in $$(( $$(date +%s) - start ))s ($(TEST_TIERS))"
