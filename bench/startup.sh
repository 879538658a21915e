#!/usr/bin/env bash
# Start-up benchmark of the release image (issue 10): builds the release exactly as a release does
# (scripts/release.sh, cargo profile `release`, both musl targets), publishes it to a docker-registry this script
# starts on 127.0.0.1, then measures
#   - the image's size per platform: what a runner downloads (config + compressed layers, from the manifest) and
#     what it unpacks (the layers' tar bytes), against the 15 MiB budget;
#   - the time from spawning a process to the first byte it writes on stdout (bench/first_output.py), median
#     and max of N runs, for
#       octopush --version                       the static musl binary
#       octopush as a step                       GITHUB_ACTIONS=true and INPUT_* of a publish to the local
#                                                registry: its first line (the ::add-mask:: of the token), and the
#                                                whole publish
#       busybox echo, skopeo --version           peers in the same run: the floor of spawning anything, and a
#                                                static Go CLI
#       docker run IMAGE --version               the image under dockerd 20.10 (vfs): container creation included
#   against the 50 ms budget for the binary's first output.
# Env: BENCH_RUNS=N (default 30), BENCH_PROFILE (default release), BENCH_NO_DOCKER=1 skips the docker run row.
# Output: a dated Markdown section on stdout, also added to bench/RESULTS.md under "Release image: size and
# start-up" (between the `startup.sh` markers, newest first; earlier runs stay). BENCH_NO_RECORD=1 leaves
# RESULTS.md alone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=${BENCH_RUNS:-30}
PROFILE=${BENCH_PROFILE:-release}
RESULTS=$ROOT/bench/RESULTS.md
BEGIN='<!-- bench/startup.sh: begin -->' END='<!-- bench/startup.sh: end -->'
# shellcheck source=scripts/lib/registry.sh
. scripts/lib/registry.sh

for c in docker-registry curl jq python3 skopeo busybox; do
  command -v "$c" >/dev/null || { echo "startup: $c is missing: run scripts/install-test-deps.sh" >&2; exit 1; }
done

W=$(mktemp -d /tmp/octostartup.XXXXXX)
REGISTRY_PID='' DOCKERD_PID=''
cleanup() {
  if [ -n "$DOCKERD_PID" ]; then
    kill "$DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  if [ -n "$REGISTRY_PID" ]; then kill "$REGISTRY_PID" 2>/dev/null || true; fi
  umount -R "$W/docker/root" 2>/dev/null || true
  rm -rf "$W" 2>/dev/null || true
}
trap cleanup EXIT
start_local_registry "$W/registry"

echo "== scripts/release.sh --profile $PROFILE (both musl targets) to $REGISTRY" >&2
scripts/release.sh --image "$REGISTRY/bench/octopush" --profile "$PROFILE" --out "$W/release" >"$W/release.log" 2>&1 \
  || { cat "$W/release.log" >&2; exit 1; }
ref=$(tail -1 "$W/release.log")
bin=$W/release/context/amd64/octopush
accept='application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json'

mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }
size_rows=''
index=$(curl -fsS -H "Accept: $accept" "http://$REGISTRY/v2/bench/octopush/manifests/${ref#*@}")
for platform in amd64 arm64; do
  child=$(jq -r --arg a "$platform" '.manifests[] | select(.platform.architecture == $a) | .digest' <<<"$index")
  manifest=$(curl -fsS -H "Accept: $accept" "http://$REGISTRY/v2/bench/octopush/manifests/$child")
  download=$(jq '.config.size + ([.layers[].size] | add)' <<<"$manifest")
  unpacked=0
  for layer in $(jq -r '.layers[].digest' <<<"$manifest"); do
    n=$(curl -fsS "http://$REGISTRY/v2/bench/octopush/blobs/$layer" | gzip -dc | wc -c)
    unpacked=$((unpacked + n))
  done
  binsize=$(wc -c <"$W/release/context/$platform/octopush")
  verdict=$([ "$download" -lt $((15 * 1048576)) ] && [ "$unpacked" -lt $((15 * 1048576)) ] && echo yes || echo NO)
  size_rows+="| linux/$platform | $(mib "$download") | $(mib "$unpacked") | $(mib "$binsize") | $verdict |"$'\n'
done

# A one-file context for the step's publish.
mkdir -p "$W/ctx"
printf 'FROM scratch\nCOPY hello.txt /hello.txt\n' >"$W/ctx/Dockerfile"
echo hello >"$W/ctx/hello.txt"
step_env=(env -i PATH=/usr/bin:/bin HOME="$W" GITHUB_ACTIONS=true GITHUB_WORKSPACE="$W/ctx"
  GITHUB_REPOSITORY=octo-org/app GITHUB_SHA=0123456789abcdef0123456789abcdef01234567 GITHUB_REF=refs/heads/main
  GITHUB_EVENT_NAME=push GITHUB_ACTOR=octocat GITHUB_API_URL=http://127.0.0.1:1 GITHUB_OUTPUT="$W/outputs"
  INPUT_REGISTRY="$REGISTRY" INPUT_REPOSITORY=bench/app INPUT_TAGS=latest INPUT_PATH=. INPUT_PASSWORD=s3cret-bench
  INPUT_USERNAME=octocat INPUT_CACHE_DIR=false)

measure() { python3 "$ROOT/bench/first_output.py" "$RUNS" "$@"; }
rows=''
rows+="| \`octopush --version\` (static musl, $PROFILE) | $(measure "$bin" --version) |"$'\n'
rows+="| octopush as a publish step (first line; whole step) | $(cd "$W/ctx" && measure "${step_env[@]}" "$bin") |"$'\n'
rows+="| peer: \`busybox echo\` (spawn floor) | $(measure busybox echo x) |"$'\n'
rows+="| peer: \`skopeo --version\` (Go) | $(measure skopeo --version) |"$'\n'

if [ -z "${BENCH_NO_DOCKER:-}" ] && [ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ]; then
  mkdir -p "$W/docker"
  /usr/sbin/dockerd -H "unix://$W/docker/d.sock" --data-root "$W/docker/root" --exec-root "$W/docker/exec" \
    --pidfile "$W/docker/d.pid" --storage-driver vfs --iptables=false --ip6tables=false --bridge=none \
    --ip-masq=false --ip-forward=false >"$W/docker/log" 2>&1 &
  DOCKERD_PID=$!
  export DOCKER_HOST=unix://$W/docker/d.sock
  for _ in $(seq 100); do /usr/bin/docker version >/dev/null 2>&1 && break; sleep 0.1; done
  /usr/bin/docker pull -q "$ref" >/dev/null
  rows+="| \`docker run --rm IMAGE --version\` (dockerd 20.10, vfs) | $(measure /usr/bin/docker run --rm --network none "$ref" --version) |"$'\n'
fi

command="BENCH_RUNS=$RUNS BENCH_PROFILE=$PROFILE${BENCH_NO_DOCKER:+ BENCH_NO_DOCKER=1} bench/startup.sh"
section=$(
  echo "## $(date -u '+%Y-%m-%d %H:%M') UTC, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo
  echo "    $command"
  echo
  echo "$(nproc) cores, $(uname -m), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; the image built by"
  echo "\`scripts/release.sh --profile $PROFILE\` (both musl targets, cargo-zigbuild) and published to a local"
  echo "docker-registry. Budgets: under 15 MiB, first output within 50 ms."
  echo
  echo "| image | download (config + gzip layers) | unpacked (layer tars) | binary | under 15 MiB |"
  echo "| --- | ---: | ---: | ---: | --- |"
  printf '%s' "$size_rows"
  echo
  echo "Time from spawn to the first byte on stdout, $RUNS runs each (median / max; the whole run's median too):"
  echo
  echo "| command | first output, median | first output, max | whole run, median |"
  echo "| --- | ---: | ---: | ---: |"
  printf '%s' "$rows"
)
echo "$section"
if [ -z "${BENCH_NO_RECORD:-}" ]; then
  # The block's heading and markers are made on the first run; each run goes on top of the earlier ones.
  python3 - "$RESULTS" "$BEGIN" "$END" "$section" <<'PY'
import sys
path, begin, end, section = sys.argv[1:]
text = open(path).read()
if begin not in text or end not in text:
    heading = (
        "# Release image: size and start-up (issue 10)\n\n"
        "Recorded by `bench/startup.sh`, newest run first.\n\n"
    )
    text = text.rstrip("\n") + "\n\n" + heading + begin + "\n" + end + "\n"
head, rest = text.split(begin, 1)
text = head + begin + "\n" + section + "\n\n" + rest.lstrip("\n")
open(path, "w").write(text)
PY
  echo "startup: recorded in $RESULTS" >&2
fi
