#!/usr/bin/env bash
# Benchmark: `octopush install` vs its peers on the same image, one after the other, on 127.0.0.1.
#   dir:  octopush install REF dir:X        vs  skopeo copy docker://REF oci:L  +  umoci raw unpack (L -> X)
#   oci:  octopush install REF oci:L        vs  skopeo copy docker://REF oci:L
# The image: 4 gzip layers (level 6) of 64 MiB each, files of 64 KiB to 4 MiB alternating random bytes and
# word text (compresses to about 0.7), made by a short Python script and pushed with skopeo to a docker-registry.
# Env: BENCH_REPEAT=N (default 3; the table shows the median), BENCH_NO_BUILD=1 skips cargo build.
# Output: a Markdown table on stdout: wall time, peak RSS and CPU of each, and octopush's time as a ratio to the peer's.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
REPEAT=${BENCH_REPEAT:-3}
for c in docker-registry skopeo umoci python3; do command -v "$c" >/dev/null || { echo "missing $c: run scripts/install-test-deps.sh"; exit 1; }; done
[ -x /usr/bin/time ] || { echo "missing /usr/bin/time (Debian's time)"; exit 1; }
if [ -z "${BENCH_NO_BUILD:-}" ]; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  cargo build --release --locked 2>&1 | tail -1
fi
BIN=$ROOT/target/release/octopush
W=$(mktemp -d /tmp/octoinstall.XXXXXX)
REGISTRY_PID=
cleanup() { [ -n "$REGISTRY_PID" ] && kill "$REGISTRY_PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
# shellcheck source=../scripts/lib/registry.sh
. scripts/lib/registry.sh
start_local_registry "$W/registry"

python3 - "$W/src" <<'PY'
import gzip, hashlib, io, json, os, random, sys, tarfile
out = sys.argv[1]
os.makedirs(f"{out}/blobs/sha256", exist_ok=True)
rnd = random.Random(20261204)
words = b" ".join(w.encode() for w in "the quick brown fox jumps over a lazy dog while octopush installs layers".split())
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return "sha256:" + d, len(data)
layers, diff_ids = [], []
for n in range(4):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        total, i = 0, 0
        while total < 64 << 20:
            size = rnd.choice([64 << 10, 256 << 10, 1 << 20, 4 << 20])
            data = rnd.randbytes(size) if i % 2 else (words * (size // len(words) + 1))[:size]
            info = tarfile.TarInfo(f"layer{n}/d{i % 16}/f{i}")
            info.size, info.mode, info.mtime = size, 0o644, 1700000000
            t.addfile(info, io.BytesIO(data))
            total += size; i += 1
    raw = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    d, s = blob(gzip.compress(raw, 6, mtime=0))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
cd, cs = blob(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                  "layers": layers}).encode()
md, ms = blob(man)
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
           "annotations": {"org.opencontainers.image.ref.name": "1"}}]}, open(f"{out}/index.json", "w"))
PY
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$W/src:1" "docker://$REGISTRY/bench/big:1" || exit 1
REF=$REGISTRY/bench/big:1
SIZE=$(du -sm "$W/src/blobs" | cut -f1)

# run NAME CMD...: one timed run; prints "wall rss_kb cpu"
run() {
  local name=$1; shift
  /usr/bin/time -f '%e %M %U %S' -o "$W/time" "$@" > "$W/$name.log" 2>&1 || { echo "$name failed:"; tail -5 "$W/$name.log"; exit 1; }
  awk '{printf "%s %s %.2f\n", $1, $2, $3 + $4}' "$W/time"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A T R C
for i in $(seq 1 "$REPEAT"); do
  rm -rf "$W/out"; mkdir -p "$W/out"
  read -r t r c < <(run oct-dir "$BIN" install --images "$REF dir:$W/out/octo-dir")
  T[oct-dir]+="$t "; R[oct-dir]+="$r "; C[oct-dir]+="$c "
  read -r t r c < <(run peer-dir sh -c "skopeo --insecure-policy copy -q --src-tls-verify=false docker://$REF oci:$W/out/peer-layout:1 && umoci raw unpack --rootless --image $W/out/peer-layout:1 $W/out/peer-dir")
  T[peer-dir]+="$t "; R[peer-dir]+="$r "; C[peer-dir]+="$c "
  read -r t r c < <(run oct-oci "$BIN" install --images "$REF oci:$W/out/octo-oci")
  T[oct-oci]+="$t "; R[oct-oci]+="$r "; C[oct-oci]+="$c "
  read -r t r c < <(run peer-oci skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$REF" "oci:$W/out/peer-oci:1")
  T[peer-oci]+="$t "; R[peer-oci]+="$r "; C[peer-oci]+="$c "
  cmp -s <(cd "$W/out/octo-dir" && find . -type f -exec sha256sum {} + | sort -k2) <(cd "$W/out/peer-dir" && find . -type f -exec sha256sum {} + | sort -k2) \
    || { echo "the two dir installs differ"; exit 1; }
done
m() { echo "${1}" | tr ' ' '\n' | grep . | median; }
echo "| target | octopush s | peer s | octopush / peer | octopush peak RSS MB | peer peak RSS MB | octopush CPU s | peer CPU s |"
echo "|---|---|---|---|---|---|---|---|"
for k in dir oci; do
  ot=$(m "${T[oct-$k]}"); pt=$(m "${T[peer-$k]}")
  printf '| %s | %s | %s | %.2f | %d | %d | %s | %s |\n' "$k" "$ot" "$pt" "$(echo "$ot / $pt" | bc -l)" \
    "$(( $(m "${R[oct-$k]}") / 1024 ))" "$(( $(m "${R[peer-$k]}") / 1024 ))" "$(m "${C[oct-$k]}")" "$(m "${C[peer-$k]}")"
done
echo
echo "image: 4 gzip layers, ${SIZE} MB compressed (256 MiB of files); median of $REPEAT; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
