#!/usr/bin/env bash
# The main job on an embedded default, from a fresh Debian/Ubuntu machine: installs what it needs, builds octopush,
# starts a throw-away registry on 127.0.0.1, builds the embedded example natively (no Docker daemon), publishes
# it there with tags from the current commit, writes it as an OCI layout under ./out/example, and checks the
# result with skopeo, an independent client.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
scripts/install-rust.sh
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --release --locked
bin=target/release/octopush

work=$(mktemp -d)
cleanup() { [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=lib/registry.sh
. scripts/lib/registry.sh
start_local_registry "$work/registry"
registry_pid=$REGISTRY_PID
registry=$REGISTRY
echo "== local registry at $registry"

sha=$(git rev-parse HEAD 2>/dev/null || echo 0000000000000000000000000000000000000000)
# The commit time is the build clock, so the same commit always gives the same digest.
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH
echo "== octopush publish --example"
GITHUB_SHA=$sha GITHUB_REF=refs/heads/main GITHUB_REPOSITORY=octopush/example \
  "$bin" publish --example --registry "$registry" --repository octopush/example \
  --tags latest --tag-with-sha --output oci:out/example

echo "== checking with skopeo"
skopeo inspect --tls-verify=false "docker://$registry/octopush/example:latest" | jq '{Digest, Labels, Layers}'
skopeo inspect "oci:out/example:latest" | jq '{Digest}'
echo "done: pushed to $registry (stopped now) and written to ./out/example"
