# Terraform tier (offline): fmt, tflint, tfsec, terraform-docs check, and the
# Terratest suite in test/terraform, which runs init/validate/plan (and a few
# applies) with Terraform and OpenTofu against the schema-replay provider in
# test/tfprovider (the real hashicorp/aws v6.0.0 schema, no AWS access).
# Tools are built from source, pinned, into $(TOOLS)/bin (scripts/install-terraform-tools.sh).

TF_TOOL_INSTALL := $(ROOT)/scripts/install-terraform-tools.sh
TERRAFORM       := $(TOOLS)/bin/terraform
TOFU            := $(TOOLS)/bin/tofu
TFLINT          := $(TOOLS)/bin/tflint
TFSEC           := $(TOOLS)/bin/tfsec
TERRAFORM_DOCS  := $(TOOLS)/bin/terraform-docs

# Schema-replay provider, installed as hashicorp/aws 6.0.0 in a filesystem
# mirror under both registry hosts (Terraform's and OpenTofu's).
TF_PROVIDER_VERSION := 6.0.0
TF_MIRROR           := $(TOOLS)/tfmirror
TF_CLI_CONFIG       := $(TF_MIRROR)/cli.tfrc
TF_PROVIDER_SRC     := $(wildcard test/tfprovider/*.go) test/tfprovider/go.mod test/tfprovider/go.sum
TF_PROVIDER_BIN     := $(TOOLS)/tfprovider/terraform-provider-aws_v$(TF_PROVIDER_VERSION)
TF_PROVIDER_HOSTS   := registry.terraform.io registry.opentofu.org
TF_PROVIDER_MIRRORED := $(foreach h,$(TF_PROVIDER_HOSTS),$(TF_MIRROR)/$(h)/hashicorp/aws/$(TF_PROVIDER_VERSION)/linux_amd64/terraform-provider-aws_v$(TF_PROVIDER_VERSION))

# Every Terraform command here uses the mirror only; nothing reaches a registry.
TF_ENV := TF_CLI_CONFIG_FILE=$(TF_CLI_CONFIG) TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1

.PHONY: test-terraform terraform-tools tf-fmt tf-lint tf-sec tf-docs tf-docs-check tf-provider tf-go-vet tf-terratest
TEST_TIERS += test-terraform

test-terraform: tf-fmt tf-lint tf-sec tf-docs-check tf-go-vet tf-terratest ## Terraform tier: fmt, tflint, tfsec, docs, validate/plan with terraform+tofu, Terratest
	@echo "test-terraform: passed"

terraform-tools: ## install pinned terraform, tofu, tflint, tfsec, terraform-docs into .tools/bin
	@for t in terraform tofu tflint tfsec terraform-docs; do TOOLS=$(TOOLS) $(TF_TOOL_INSTALL) $$t; done

$(TERRAFORM) $(TOFU) $(TFLINT) $(TFSEC) $(TERRAFORM_DOCS): $(TF_TOOL_INSTALL)
	@TOOLS=$(TOOLS) $(TF_TOOL_INSTALL) $(notdir $@)

tf-fmt: $(TERRAFORM) ## terraform fmt -check on the module and examples
	cd $(ROOT) && $(TF_ENV) $(TERRAFORM) fmt -check -recursive -diff .

tf-lint: $(TFLINT) ## tflint with the bundled terraform ruleset, every rule on (.tflint.hcl)
	cd $(ROOT) && $(TFLINT) --config=$(ROOT)/.tflint.hcl --recursive --format=compact

TF_CONFIGURATIONS := . examples/minimal examples/complete examples/chat examples/laravel

tf-sec: $(TFSEC) ## tfsec on the module and each example: every finding fixed or suppressed inline with a reason
	@cd $(ROOT) && for d in $(TF_CONFIGURATIONS); do \
		echo "tfsec $$d"; \
		$(TFSEC) $$d --no-color --concise-output --no-module-downloads --exclude-path .tools --exclude-path test || exit 1; \
	done

tf-docs: $(TERRAFORM_DOCS) ## regenerate the inputs/outputs section of README.md
	cd $(ROOT) && $(TERRAFORM_DOCS) -c .terraform-docs.yml .

tf-docs-check: $(TERRAFORM_DOCS) ## fail when the README inputs/outputs are stale (fix: make tf-docs)
	cd $(ROOT) && $(TERRAFORM_DOCS) -c .terraform-docs.yml --output-check . || { echo "README.md inputs/outputs are stale: run make tf-docs"; exit 1; }

$(TF_PROVIDER_BIN): $(TF_PROVIDER_SRC)
	@mkdir -p $(dir $@)
	cd test/tfprovider && GONOSUMDB=github.com/lonegunmanb CGO_ENABLED=0 $(GO) build -trimpath -o $@ .

$(TF_PROVIDER_MIRRORED): $(TF_PROVIDER_BIN)
	@mkdir -p $(dir $@)
	cp $< $@

$(TF_CLI_CONFIG): mk/terraform.mk
	@mkdir -p $(dir $@)
	@printf 'provider_installation {\n  filesystem_mirror {\n    path    = "%s"\n    include = ["registry.terraform.io/hashicorp/aws", "registry.opentofu.org/hashicorp/aws"]\n  }\n}\n' "$(TF_MIRROR)" > $@

tf-provider: $(TF_PROVIDER_MIRRORED) $(TF_CLI_CONFIG) ## build the schema-replay provider into the filesystem mirror

tf-go-vet: ## go vet the test modules, including the real-AWS tier (build tag aws)
	cd test/tfprovider && GONOSUMDB=github.com/lonegunmanb $(GO) vet ./...
	cd test/terraform && $(GO) vet ./... && $(GO) vet -tags aws ./...
	@test -z "$$(gofmt -l test/tfprovider test/terraform)" || { echo "gofmt needed:"; gofmt -l test/tfprovider test/terraform; exit 1; }

tf-terratest: tf-provider $(TERRAFORM) $(TOFU) ## Terratest: validate/plan every configuration with terraform and tofu, plan assertions, IAM checks
	cd test/terraform && $(TF_ENV) TERRAFORM_BINARY=$(TERRAFORM) TOFU_BINARY=$(TOFU) \
		$(GO) test -count=1 -parallel 4 -timeout 20m ./...
