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

# A small base with a shell, made here from Debian's static busybox (no registry of the internet is needed).
busybox=/bin/busybox   # busybox-static, installed by install-test-deps.sh
python3 scripts/lib/busybox_base.py "$work/base" "$busybox"
skopeo copy -q --dest-tls-verify=false "oci:$work/base:1" "docker://$registry/base/busybox:1"
base=$registry/base/busybox:1

# The commit comes from this checkout (its time is the build clock), so the same commit gives the same digest.
echo "== octopush publish --example (on $base)"
"$bin" publish --example --build-args "BASE=$base" --registry "$registry" --repository octopush/example \
  --tags latest --tag-with-sha --output oci:out/example

echo "== checking with skopeo"
skopeo inspect --tls-verify=false "docker://$registry/octopush/example:latest" | jq '{Digest, Labels, Layers}'
skopeo inspect "oci:out/example:latest" | jq '{Digest}'

# A next step that outlives the registry: the same image as a tar for `docker load`.
"$bin" publish --example --build-args "BASE=$base" --registry "$registry" --repository octopush/example \
  --tags latest --push false --output docker-archive:out/example.tar
reference=$registry/octopush/example:latest
if docker info >/dev/null 2>&1; then
  echo "== docker load and run (the Docker Engine at ${DOCKER_HOST:-/var/run/docker.sock})"
  docker load -i out/example.tar
  docker run --rm "$reference" cat /etc/hello.txt
fi
echo "done: pushed to $registry (stopped now), written to ./out/example (OCI layout) and ./out/example.tar"
echo "next: docker load -i out/example.tar && docker run --rm -p 8080:8080 $reference   # then open http://localhost:8080"
