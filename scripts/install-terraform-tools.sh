#!/usr/bin/env bash
# Installs one pinned Terraform-tier (or workflow-lint) tool into $TOOLS/bin (default .tools/bin),
# built from source with the Go toolchain (the only thing a clean machine needs).
# Idempotent: a stamp file records the installed version, so a second run is a no-op.
#
#   scripts/install-terraform-tools.sh terraform|tofu|tflint|tfsec|terraform-docs|actionlint
set -euo pipefail

TERRAFORM_VERSION=v1.5.7
TOFU_VERSION=v1.6.3
TFLINT_VERSION=v0.64.0
TFSEC_VERSION=v1.28.14
TERRAFORM_DOCS_VERSION=v0.20.0
ACTIONLINT_VERSION=v1.7.12

root="$(cd "$(dirname "$0")/.." && pwd)"
tools="${TOOLS:-$root/.tools}"
bin="$tools/bin"
stamps="$tools/stamps"
mkdir -p "$bin" "$stamps"

tool="${1:?usage: $0 terraform|tofu|tflint|tfsec|terraform-docs|actionlint}"
case "$tool" in
  terraform)      version=$TERRAFORM_VERSION ;;
  tofu)           version=$TOFU_VERSION ;;
  tflint)         version=$TFLINT_VERSION ;;
  tfsec)          version=$TFSEC_VERSION ;;
  terraform-docs) version=$TERRAFORM_DOCS_VERSION ;;
  actionlint)     version=$ACTIONLINT_VERSION ;;
  *) echo "unknown tool: $tool" >&2; exit 2 ;;
esac

stamp="$stamps/$tool-$version"
if [[ -f "$stamp" && -x "$bin/$tool" ]]; then
  exit 0
fi

echo "installing $tool $version into $bin (built from source, takes a while the first time)" >&2
export GOBIN="$bin" CGO_ENABLED=0 GOFLAGS=-buildvcs=false
case "$tool" in
  terraform) go install -trimpath "github.com/hashicorp/terraform@$version" ;;
  tofu)      go install -trimpath -ldflags "-X github.com/opentofu/opentofu/version.dev=no" "github.com/opentofu/opentofu/cmd/tofu@$version" ;;
  tflint)    go install -trimpath "github.com/terraform-linters/tflint@$version" ;;
  tfsec)     go install -trimpath "github.com/aquasecurity/tfsec/cmd/tfsec@$version" ;;
  actionlint) go install -trimpath "github.com/rhysd/actionlint/cmd/actionlint@$version" ;;
  terraform-docs)
    # `go install pkg@version` is refused for terraform-docs (replace directives in
    # its go.mod), so build it inside a throwaway module.
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && go mod init tmp >/dev/null 2>&1 \
      && go get "github.com/terraform-docs/terraform-docs@$version" >/dev/null 2>&1 \
      && go build -trimpath -o "$bin/terraform-docs" github.com/terraform-docs/terraform-docs)
    ;;
esac
rm -f "$stamps/$tool"-*
touch "$stamp"
