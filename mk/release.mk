# Releases (.github/workflows/release.yml runs these on every vX.Y.Z tag):
#   make release-dist                    every function for arm64 and x86_64 into dist/<arch>/<fn>.zip,
#                                        dist/manifest.json and the release assets in dist/assets
#   make release-reproducible            release-dist, then a second build from a fresh copy of the
#                                        tracked sources with an empty Go build cache: every byte must match
#   make release-tree TAG=vX.Y.Z         commit dist/ on top of the tag as tag vX.Y.Z-bundled (not pushed)
#   make verify-release TAG=... SUMS=... rebuild a tag's release and compare it with its SHA256SUMS
# Workflows are linted with actionlint (pinned, built into .tools/bin), part of `make test`.
RELEASE_ARCHS ?= arm64,x86_64
comma := ,
ACTIONLINT    := $(TOOLS)/bin/actionlint

.PHONY: release-dist release-reproducible release-tree verify-release source-hash actionlint
TEST_TIERS += actionlint

release-dist: ## build the release zips (arm64, x86_64) into dist/<arch>/, dist/manifest.json and dist/assets (zips, SHA256SUMS)
	$(GO) run ./tools/package -release $(DIST) -release-archs $(RELEASE_ARCHS)

release-reproducible: release-dist ## release-dist twice (fresh source copy, empty build cache); fails unless the zips are identical
	@work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; mkdir "$$work/src"; \
	git ls-files -z | tar --null -T - -cf - | tar -x -C "$$work/src"; \
	echo "second build in $$work/src with an empty GOCACHE"; \
	(cd "$$work/src" && GOCACHE="$$work/gocache" $(GO) run ./tools/package -release "$$work/dist" -release-archs $(RELEASE_ARCHS)); \
	if diff -r $(DIST)/assets "$$work/dist/assets" $(foreach a,$(subst $(comma), ,$(RELEASE_ARCHS)),&& diff -r $(DIST)/$(a) "$$work/dist/$(a)"); then \
		echo "release-reproducible: two builds are byte-identical:"; cat $(DIST)/assets/SHA256SUMS; \
	else \
		echo "release-reproducible: the two builds differ"; diff $(DIST)/assets/SHA256SUMS "$$work/dist/assets/SHA256SUMS" || true; exit 1; \
	fi

release-tree: ## TAG=vX.Y.Z: tag vX.Y.Z-bundled = the tag plus dist/ from release-dist (push it yourself)
	scripts/release-tree.sh "$(TAG)" $(DIST)

verify-release: ## TAG=<tag> SUMS=<SHA256SUMS>: rebuild the tag's release from source and compare with SUMS
	scripts/verify-release.sh "$(TAG)" "$(SUMS)"

source-hash: ## the source hash of lambda/ + tools/package + go.mod/go.sum (what dist/manifest.json must hold)
	@$(GO) run ./tools/package -source-hash

$(ACTIONLINT): scripts/install-terraform-tools.sh
	@TOOLS=$(TOOLS) scripts/install-terraform-tools.sh actionlint

# shellcheck and pyflakes are off so the result does not depend on what else
# the machine has installed.
actionlint: $(ACTIONLINT) ## lint .github/workflows with actionlint (pinned)
	$(ACTIONLINT) -no-color -shellcheck= -pyflakes= .github/workflows/*.yml
