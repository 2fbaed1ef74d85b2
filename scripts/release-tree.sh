#!/usr/bin/env bash
# Makes the release tree of a source tag: a commit whose parent is the tag's
# commit and which adds only dist/manifest.json and dist/<arch>/<function>.zip
# (from `make release-dist`, built from that tag's sources), tagged
# <tag>-bundled. Module sources pin that tag (?ref=vX.Y.Z-bundled&depth=1) to deploy
# without Go. No branch, HEAD or working-tree file changes, so the zips never
# land on main; pushing the new tag is up to the caller:
#
#   scripts/release-tree.sh v1.2.0 [dist]
#   git push origin refs/tags/v1.2.0-bundled
set -euo pipefail

die() { echo "release-tree: $*" >&2; exit 1; }

tag="${1:?usage: $0 vX.Y.Z [dist folder, default dist]}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dist="$(cd "${2:-$root/dist}" && pwd)"
bundled="$tag-bundled"
go="${GO:-go}"
# The tag's module alone: a go.work (GOWORK, or one around the checkout)
# would leave tools/package outside its workspace.
export GOWORK=off

[[ "$tag" == v* && "$tag" != *-bundled ]] || die "$tag: want a source tag vX.Y.Z (the bundled tag is derived from it)"
cd "$root"
commit="$(git rev-parse --verify --quiet "refs/tags/$tag^{commit}")" || die "no tag $tag"
if git rev-parse --verify --quiet "refs/tags/$bundled" >/dev/null; then
  die "tag $bundled exists already"
fi

[[ -f "$dist/manifest.json" ]] || die "no $dist/manifest.json: run make release-dist on $tag first"

# The zips must come from exactly the tag's sources, each with the sha256 the
# manifest gives: the tag's own packager checks both and lists the files.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git archive --format=tar "$commit" | tar -x -C "$work"
list="$(cd "$work" && "$go" run ./tools/package -check-release "$dist")" || die "$dist is not a release of $tag: rebuild it with make release-dist on $tag"
mapfile -t files <<<"$list"
# Both of Lambda's architectures: lambda_architecture may be either, and a
# bundle without the chosen one would send its users back to building.
for arch in arm64 x86_64; do
  printf '%s\n' "${files[@]}" | grep -q "^$arch/" ||
    die "$dist has no $arch zips (one architecture, as make package builds): run make release-dist, which builds both"
done
hash="$(cd "$work" && "$go" run ./tools/package -source-hash)"

# Build the commit with a private index: git's own index, HEAD and branches
# stay as they are.
export GIT_INDEX_FILE="$work/index"
git read-tree "$commit"
for f in "${files[@]}"; do
  blob="$(git hash-object -w "$dist/$f")"
  git update-index --add --cacheinfo "100644,$blob,dist/$f"
done
tree="$(git write-tree)"
unset GIT_INDEX_FILE
git config user.name >/dev/null || export GIT_AUTHOR_NAME="release" GIT_COMMITTER_NAME="release"
git config user.email >/dev/null || export GIT_AUTHOR_EMAIL="release@localhost" GIT_COMMITTER_EMAIL="release@localhost"
msg="Release $tag with its Lambda zips (source hash $hash)

dist/<arch>/<function>.zip were built from $tag ($commit) by
tools/package; dist/manifest.json records the source hash and each zip's
sha256. Pin ?ref=$bundled to deploy without Go."
new="$(git commit-tree "$tree" -p "$commit" -m "$msg")"
git tag -a "$bundled" "$new" -m "$msg"
echo "release-tree: tagged $bundled ($new, parent $tag $commit)"
