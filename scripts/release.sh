#!/usr/bin/env bash
# Releases octopush as a container action that starts without building: cross-compiles static musl binaries
# for linux/amd64 and linux/arm64 on this one machine (cargo-zigbuild, see scripts/install-release-tools.sh),
# checks that each runs (the foreign one under qemu-user), publishes them as one multi-platform image with
# octopush itself (the native builder, scripts/release/Dockerfile: FROM scratch, one COPY by TARGETARCH), and
# writes the release's action.yml whose `runs.image` is that image pinned by digest. With --git-commit it then
# commits that action.yml on top of HEAD (no branch moves, the working tree is not touched), tags the commit
# vX.Y.Z and moves vX there; --git-push sends both tags. .github/workflows/release.yml runs it on a tag push;
# tests/release.rs runs it against a local registry.
#
# Usage: scripts/release.sh --image REGISTRY/OWNER/NAME [options]
#   --image REF         where the image goes (the workflow: ghcr.io/OWNER/octopush)
#   --version X.Y.Z     the version to release; default: GITHUB_REF_NAME without its `v` (a tag push), else
#                       Cargo.toml's. Must be Cargo.toml's version, which the binary reports.
#   --profile NAME      cargo profile (default `release`; the test uses `release-check`, see Cargo.toml)
#   --target-dir DIR    cargo's target directory (default: cargo's own)
#   --out DIR           where the build context, the outputs and the release's action.yml go
#                       (default target/release-VERSION)
#   --repo DIR          the git checkout whose action.yml is pinned and committed (default: this one)
#   --git-commit        commit the pinned action.yml on top of the checkout's HEAD, tag it vX.Y.Z (annotated;
#                       an existing vX.Y.Z must name HEAD, as the pushed tag does) and move vX (not for a
#                       pre-release such as 1.2.0-rc.1)
#   --git-push REMOTE   push vX.Y.Z (replacing the tag the release started from, and only that) and vX
# Credentials: octopush's own defaults, GITHUB_ACTOR and GITHUB_TOKEN from the environment (never argv).
# Prints the image reference with its digest as the last line; writes it to OUT/image and, in a workflow step,
# to the step outputs `image` and `digest`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PLATFORMS=(amd64:x86_64-unknown-linux-musl arm64:aarch64-unknown-linux-musl)

fail() {
  echo "release: error: $*" >&2
  exit 1
}
say() { echo "release: $*" >&2; }

image='' version='' profile=release target_dir='' out='' repo=$ROOT git_commit=false git_push=''
while [ $# -gt 0 ]; do
  case $1 in
    --image | --version | --profile | --target-dir | --out | --repo | --git-push)
      [ $# -ge 2 ] || fail "$1 needs a value"
      case $1 in
        --image) image=$2 ;;
        --version) version=$2 ;;
        --profile) profile=$2 ;;
        --target-dir) target_dir=$2 ;;
        --out) out=$2 ;;
        --repo) repo=$2 ;;
        --git-push) git_push=$2 ;;
      esac
      shift 2
      ;;
    --git-commit) git_commit=true; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) fail "unknown argument $1 (see $0 --help)" ;;
  esac
done
[ -n "$git_push" ] && [ "$git_commit" != true ] && fail "--git-push needs --git-commit (it pushes the tags that makes)"

# --- what to release ----------------------------------------------------------------------------------------
[ -n "$image" ] || fail "--image is required (for example ghcr.io/OWNER/octopush)"
[[ $image =~ ^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+$ ]] \
  || fail "--image $image is not REGISTRY/REPOSITORY in lower case, without a tag or digest"
registry=${image%%/*}
repository=${image#*/}

cargo_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)
[ -n "$cargo_version" ] || fail "no version in $ROOT/Cargo.toml"
if [ -z "$version" ]; then
  if [[ ${GITHUB_REF:-} == refs/tags/v* ]]; then version=${GITHUB_REF_NAME#v}; else version=$cargo_version; fi
fi
version=${version#v}
[[ $version =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$ ]] \
  || fail "version $version is not X.Y.Z (or X.Y.Z-PRERELEASE)"
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]} prerelease=${BASH_REMATCH[4]}
[ "$version" = "$cargo_version" ] \
  || fail "releasing $version, but Cargo.toml says $cargo_version (the binary's --version): bump Cargo.toml, commit, and tag that commit v$version"
tag="v$version"
# Image tags: X.Y.Z always, X.Y and X for a final release only.
image_tags=$version
[ -n "$prerelease" ] || image_tags="$version,$major.$minor,$major"

out=${out:-$ROOT/target/release-$version}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The release commit is made from the checkout's action.yml: find its one `image: Dockerfile` under `runs:`
# before spending minutes on the build.
action_yml="$repo/action.yml"
[ -f "$action_yml" ] || fail "$action_yml not found (--repo names the checkout to release)"
n=$(awk '/^runs:/{r=1;next} /^[^ #]/{r=0} r && /^  image: Dockerfile$/{n++} END{print n+0}' "$action_yml")
[ "$n" = 1 ] || fail "$action_yml has no single \`runs.image: Dockerfile\` to pin (is HEAD already a release commit?)"
if [ "$git_commit" = true ]; then
  git -C "$repo" rev-parse --verify -q HEAD >/dev/null || fail "$repo is not a git checkout with a commit"
  head=$(git -C "$repo" rev-parse HEAD)
  if existing=$(git -C "$repo" rev-parse --verify -q "refs/tags/$tag^{commit}"); then
    [ "$existing" = "$head" ] || fail "tag $tag names $existing, not HEAD ($head): check out the tagged commit"
  fi
fi
# The remote's vX.Y.Z (the tag push that started the release) is replaced only while it still names HEAD: its
# current value is the lease of the push below.
previous=''
if [ -n "$git_push" ]; then
  remote_tags=$(git -C "$repo" ls-remote "$git_push" "refs/tags/$tag" "refs/tags/$tag^{}") \
    || fail "cannot read the tags of $git_push"
  previous=$(awk -v r="refs/tags/$tag" '$2 == r {print $1}' <<<"$remote_tags")
  peeled=$(awk -v r="refs/tags/$tag^{}" '$2 == r {print $1}' <<<"$remote_tags")
  peeled=${peeled:-$previous}
  [ -z "$previous" ] || [ "$peeled" = "$head" ] \
    || fail "$git_push already has $tag at $peeled, not at HEAD ($head): a release is never moved to another commit"
fi

# --- build ---------------------------------------------------------------------------------------------------
tools=$("$ROOT/scripts/install-release-tools.sh" --bin-dir) || exit 1
export PATH="$tools:$PATH"
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

build=(cargo zigbuild --locked --profile "$profile")
for p in "${PLATFORMS[@]}"; do build+=(--target "${p#*:}"); done
artifacts=${target_dir:-${CARGO_TARGET_DIR:-$ROOT/target}}
build+=(--target-dir "$artifacts")
say "${build[*]}"
(cd "$ROOT" && "${build[@]}") || fail "the build failed"
# cargo's `dev` profile lives in `debug/`.
profile_dir=$profile
[ "$profile" = dev ] && profile_dir=debug

context="$out/context"
rm -rf "$context"
mkdir -p "$context"
for p in "${PLATFORMS[@]}"; do
  arch=${p%%:*}
  mkdir -p "$context/$arch"
  cp "$artifacts/${p#*:}/$profile_dir/octopush" "$context/$arch/octopush"
done
bundle=/etc/ssl/certs/ca-certificates.crt
[ -f "$bundle" ] || fail "$bundle not found (Debian/Ubuntu: apt-get install ca-certificates)"
cp "$bundle" "$context/ca-certificates.crt"
cp "$ROOT/scripts/release/Dockerfile" "$context/Dockerfile"

# --- check that each binary runs and says this version ---------------------------------------------------------
case $(uname -m) in
  x86_64) host_arch=amd64 ;;
  aarch64 | arm64) host_arch=arm64 ;;
  *) fail "this machine is $(uname -m): the release runs on amd64 or arm64" ;;
esac
for p in "${PLATFORMS[@]}"; do
  arch=${p%%:*}
  bin="$context/$arch/octopush"
  if [ "$arch" = "$host_arch" ]; then
    runner=()
  else
    emulator=qemu-$([ "$arch" = amd64 ] && echo x86_64 || echo aarch64)
    command -v "$emulator" >/dev/null 2>&1 \
      || fail "$emulator not found: the $arch binary is checked under it (Debian/Ubuntu: apt-get install qemu-user)"
    runner=("$emulator")
  fi
  said=$("${runner[@]}" "$bin" --version 2>&1) || fail "the $arch binary does not run: $said"
  [ "$said" = "octopush $version" ] || fail "the $arch binary says \"$said\", not \"octopush $version\""
  say "linux/$arch: $said, $(wc -c <"$bin") bytes"
done

# --- publish with octopush itself ----------------------------------------------------------------------------
# The digest comes from octopush's step outputs, written to a file of our own (in a workflow step the runner's
# GITHUB_OUTPUT is for this script's outputs, below).
outputs="$out/octopush-outputs"
: >"$outputs"
if [ -z "${SOURCE_DATE_EPOCH:-}" ] && git -C "$ROOT" rev-parse --verify -q HEAD >/dev/null; then
  # Layer times from the released commit, not the clock.
  SOURCE_DATE_EPOCH=$(git -C "$ROOT" log -1 --format=%ct HEAD)
  export SOURCE_DATE_EPOCH
fi
say "publishing $image:{$image_tags} for linux/amd64,linux/arm64"
GITHUB_OUTPUT="$outputs" "$context/$host_arch/octopush" publish \
  --path "$context" \
  --registry "$registry" \
  --repository "$repository" \
  --tags "$image_tags" \
  --platforms linux/amd64,linux/arm64 \
  --builder native \
  </dev/null || fail "octopush publish failed"
digest=$(awk '/^digest<</{getline; print; exit}' "$outputs")
[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || fail "octopush wrote no digest output (got \"$digest\") in $outputs"
reference="$image@$digest"
echo "$reference" >"$out/image"

# --- the release's action.yml --------------------------------------------------------------------------------
awk -v ref="docker://$reference" -v tag="$tag" '
  /^runs:/ { r = 1; print; next }
  /^[^ #]/ { r = 0 }
  r && /^  image: Dockerfile$/ {
    print "  # " tag ": the prebuilt multi-platform image (scripts/release.sh), pinned by digest; main builds the Dockerfile."
    print "  image: \x27" ref "\x27"
    next
  }
  { print }' "$action_yml" >"$out/action.yml"
grep -qF "image: 'docker://$reference'" "$out/action.yml" || fail "could not pin the image in $out/action.yml"
say "wrote $out/action.yml (runs.image: docker://$reference)"

if [ -n "${GITHUB_OUTPUT:-}" ]; then
  printf 'image=%s\ndigest=%s\n' "$reference" "$digest" >>"$GITHUB_OUTPUT"
fi

# --- the release commit and its tags -------------------------------------------------------------------------
if [ "$git_commit" = true ]; then
  # A commit of HEAD's tree with action.yml replaced, made through a private index: HEAD, the branch, the index
  # and the working tree of the checkout stay as they are.
  index=$(mktemp)
  trap 'rm -f "$index"' EXIT
  blob=$(git -C "$repo" hash-object -w "$out/action.yml")
  tree=$(
    export GIT_INDEX_FILE="$index"
    git -C "$repo" read-tree HEAD
    git -C "$repo" update-index --cacheinfo "100644,$blob,action.yml"
    git -C "$repo" write-tree
  )
  commit=$(git -C "$repo" commit-tree "$tree" -p "$head" \
    -m "Release $tag: action.yml runs the prebuilt image" -m "image: docker://$reference")
  git -C "$repo" tag -f -a "$tag" -m "octopush $version" -m "image: docker://$reference" "$commit" >/dev/null
  moved=("$tag")
  if [ -z "$prerelease" ]; then
    git -C "$repo" tag -f "v$major" "$commit" >/dev/null
    moved+=("v$major")
  fi
  say "release commit $commit (parent $head), tags ${moved[*]}"
  if [ -n "$git_push" ]; then
    # vX.Y.Z replaces the tag that started the release only if the remote still has that (or none); vX moves.
    refspecs=()
    for t in "${moved[@]}"; do refspecs+=("refs/tags/$t:refs/tags/$t"); done
    git -C "$repo" push --force-with-lease="refs/tags/$tag:$previous" "$git_push" "${refspecs[0]}" \
      || fail "git push of $tag to $git_push failed"
    if [ "${#refspecs[@]}" -gt 1 ]; then
      git -C "$repo" push --force "$git_push" "${refspecs[1]}" || fail "git push of ${moved[1]} to $git_push failed"
    fi
    say "pushed ${moved[*]} to $git_push"
  fi
fi

echo "$reference"
