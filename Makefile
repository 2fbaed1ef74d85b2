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

# Tiers append their targets here, in the order they should run.
TEST_TIERS :=

include mk/go.mk
include $(filter-out mk/go.mk,$(sort $(wildcard mk/*.mk)))

.PHONY: help test
help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

test: $(TEST_TIERS) ## run every offline test tier
	@echo "make test: all tiers passed ($(TEST_TIERS))"
