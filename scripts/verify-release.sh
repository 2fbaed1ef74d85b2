#!/usr/bin/env bash
# Reproduces a release from a tag's source and compares it with the release's
# SHA256SUMS: extracts the tag (vX.Y.Z or vX.Y.Z-bundled) from git, rebuilds
# every zip with that tag's own packager (go run ./tools/package -release),
# and fails unless each asset's sha256 matches SUMS line for line. For a
# bundled tag it also checks that the zips and manifest in its dist/ are the
# ones its source builds to, and nothing more, and that it differs from its
# source tag (the name without -bundled) only in dist/. The build needs the
# Go version the release was built with (manifest.json's go_version):
# `GOTOOLCHAIN=go1.26.8 make ...`.
#
#   scripts/verify-release.sh v1.2.0 path/to/SHA256SUMS
#   make verify-release TAG=v1.2.0 SUMS=path/to/SHA256SUMS
#
# RELEASE_ARCHS (default arm64,x86_64) are the architectures to rebuild; SUMS
# must list exactly their assets. A bundled tag is always verified with both.
set -euo pipefail

die() { echo "verify-release: $*" >&2; exit 1; }

tag="${1:?usage: $0 TAG SHA256SUMS}"
sums="${2:?usage: $0 TAG SHA256SUMS}"
[[ -f "$sums" ]] || die "no checksum file $sums"
sums="$(cd "$(dirname "$sums")" && pwd)/$(basename "$sums")"
root="$(cd "$(dirname "$0")/.." && pwd)"
go="${GO:-go}"
# The tag's module alone: a go.work (GOWORK, or one around the checkout)
# would leave tools/package outside its workspace.
export GOWORK=off
archs="${RELEASE_ARCHS:-arm64,x86_64}"

cd "$root"
commit="$(git rev-parse --verify --quiet "refs/tags/$tag^{commit}")" || die "no tag $tag (git fetch --tags?)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
git archive --format=tar "$commit" | tar -x -C "$work/src"

# A bundled tag (named -bundled, or with a dist/ in its tree) must carry the
# zips of both architectures and a manifest listing both: it is verified
# whole, never one architecture of it. Its dist/ is read from the tag's tree
# (git ls-tree, git cat-file), not from git archive, which .gitattributes
# export-ignore could filter.
bundled=""
if [[ "$tag" == *-bundled ]] || git cat-file -e "$commit:dist" 2>/dev/null; then
  bundled=1
fi
if [[ -n "$bundled" && "$(tr , '\n' <<<"$archs" | sort -u | paste -sd, -)" != "arm64,x86_64" ]]; then
  die "$tag is a bundled tag: its dist/ and manifest hold both architectures, so it is verified whole; unset RELEASE_ARCHS (it is $archs)"
fi

echo "verify-release: rebuilding $tag ($commit) with $("$go" env GOVERSION) for $archs" >&2
(cd "$work/src" && "$go" run ./tools/package -release "$work/dist" -release-archs "$archs") >&2
rebuilt="$work/dist/assets/SHA256SUMS"

status=0
# Every published line must be rebuilt with the same sha256, and nothing more
# (a line may be in sha256sum's binary form, "HASH *NAME").
sed 's/^\([0-9a-f]*\) \*/\1  /' "$sums" >"$work/published"
while read -r want name; do
  [[ -n "$name" ]] || continue
  got="$(awk -v n="$name" '$2 == n {print $1}' "$rebuilt")"
  if [[ -z "$got" ]]; then
    echo "MISSING  $name: not built from $tag" ; status=1
  elif [[ "$got" != "$want" ]]; then
    echo "MISMATCH $name: published $want, rebuilt $got"; status=1
  else
    echo "OK       $name $got"
  fi
done <"$work/published"
while read -r got name; do
  awk -v n="$name" '$2 == n {found = 1} END {exit !found}' "$work/published" ||
    { echo "EXTRA    $name: rebuilt but not in $(basename "$sums")"; status=1; }
done <"$rebuilt"

# A bundled tag carries the zips themselves: exactly the rebuilt ones and
# the manifest, as regular files of its tree.
if [[ -n "$bundled" ]]; then
  if git cat-file -e "$commit:dist/manifest.json" 2>/dev/null; then
    if git cat-file blob "$commit:dist/manifest.json" | cmp -s - "$work/dist/manifest.json"; then
      echo "OK       dist/manifest.json of $tag"
    else
      echo "MISMATCH dist/manifest.json of $tag differs from the rebuilt one:"
      diff <(git cat-file blob "$commit:dist/manifest.json") "$work/dist/manifest.json" || true
      status=1
    fi
  else
    echo "MISSING  dist/manifest.json of $tag: a bundled tag without its manifest (the module would build instead)"; status=1
  fi
  IFS=, read -r -a arch_list <<<"$archs"
  for arch in "${arch_list[@]}"; do
    for zip in "$work/dist/$arch"/*.zip; do
      rel="dist/$arch/$(basename "$zip")"
      if ! git cat-file -e "$commit:$rel" 2>/dev/null; then
        echo "MISSING  $rel of $tag"; status=1
      elif git cat-file blob "$commit:$rel" | cmp -s - "$zip"; then
        echo "OK       $rel of $tag"
      else
        echo "MISMATCH $rel of $tag differs from the rebuilt zip"; status=1
      fi
    done
  done
  # Exactly those, as regular files: nothing else in the tag's dist/ (no
  # symlink, no .gitattributes, no other zip).
  while IFS=$'\t' read -r meta rel; do
    mode="${meta%% *}"
    if [[ "$mode" != 100644 && "$mode" != 100755 ]]; then
      echo "EXTRA    $rel of $tag: not a regular file (mode $mode)"; status=1
    elif [[ "$rel" != dist/manifest.json && ! ( "$rel" =~ ^dist/[^/]+/[^/]+\.zip$ && "$rel" != dist/assets/* && -f "$work/$rel" ) ]]; then
      echo "EXTRA    $rel of $tag: not a rebuilt file"; status=1
    fi
  done < <(git ls-tree -r --full-tree "$commit" -- dist)
fi

# A bundled tag is its source tag plus dist/: nothing else may differ (the
# zips' source hash does not cover the Terraform files).
if [[ "$tag" == *-bundled ]]; then
  source_tag="${tag%-bundled}"
  if source_commit="$(git rev-parse --verify --quiet "refs/tags/$source_tag^{commit}")"; then
    changed="$(git diff --name-only "$source_commit" "$commit" | grep -v '^dist/' || true)"
    if [[ -z "$changed" ]]; then
      echo "OK       $tag differs from $source_tag only in dist/"
    else
      while read -r f; do echo "CHANGED  $f: $tag differs from $source_tag outside dist/"; done <<<"$changed"
      status=1
    fi
  else
    echo "MISSING  tag $source_tag: cannot check that $tag adds only dist/ to it (git fetch --tags?)"; status=1
  fi
fi

if [[ $status -ne 0 ]]; then
  release_go=""
  for m in "$work/src/dist/manifest.json" "$(dirname "$sums")/manifest.json"; do
    [[ -z "$release_go" && -f "$m" ]] && release_go="$(sed -n 's/.*"go_version": "\(.*\)".*/\1/p' "$m")"
  done
  used_go="$("$go" env GOVERSION)"
  # The Go version is worth naming only when it differs.
  [[ "$release_go" == "$used_go" ]] && release_go=""
  echo "verify-release: $tag does NOT reproduce${release_go:+ (the release was built with $release_go; this build used $used_go)}" >&2
  exit 1
fi
echo "verify-release: $tag reproduces $(basename "$sums") exactly" >&2
