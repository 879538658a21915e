#!/usr/bin/env bash
# shellcheck disable=SC2015 # the `a && b || fail` chains below mean it: b failing is a failure too
# Benchmark: octopush publish vs buildah (bud + push) vs docker build + docker push.
# Sets up everything itself on 127.0.0.1 in a temp dir: a docker-registry, a dockerd (vfs storage), a busybox-static
# base image (single-platform tag and a two-platform index) pushed with skopeo from a hand-built OCI layout.
# Workloads (w1-w4 have no RUN: octopush's native builder, docker's classic builder, DOCKER_BUILDKIT=0):
#   w1  ~2,000 files, ~70 MB site:   FROM base; COPY site/ /srv/www/          (cold: clean tool state, fresh repository)
#   w2  one 512 MiB file (compressible mix)                                     (cold)
#   w3  w1 republished unchanged: a second run of each tool right after w1 (same repository and tag, warm tool state)
#   w4  w1 on a two-platform base index, for linux/amd64 + linux/arm64         (cold; docker classic builder: n/a)
#   w5  FROM base; RUN writes 96 files, 192 MiB (half text, half pseudo-random bytes); COPY site/ /srv/www/   (cold)
#       octopush (`builder: auto`, the default): a split build, the engine (BuildKit in the same dockerd) builds to
#       the RUN, octopush exports, compresses and pushes it, lays the COPY natively, and loads the result into the
#       engine under its tag; octopush-engine (`builder: engine`): all of it on the engine, then exported and pushed;
#       docker: DOCKER_BUILDKIT=1 docker build --network none + docker push; buildah: bud --isolation chroot + push
#   w5-push  rides on w5: after an untimed docker build of the w5 image (BuildKit cache warm, image in the engine),
#       octopush publish of it with `builder: engine` (a BuildKit cache hit: export + compress + upload) vs docker
#       push of it, fresh repositories,
#       and the floor: the same new layers' bytes (saved from the engine beforehand, in the page cache) compressed
#       by `pigz -6` on every core, hashed and uploaded with curl: compression plus upload and nothing else
#   octopush-zstd  (w5 and w5-push only) octopush with `compression: zstd`, the faster codec users can choose
#   octopush-engine  (w5 only) octopush with `builder: engine`
# Env: BENCH_REPEAT=N (default 1; the table shows the median), BENCH_WORKLOADS="w1 w2 w4 w5" (w3 rides on w1,
#      w5-push on w5),
#      BENCH_TOOLS="octopush octopush-zstd octopush-engine buildah docker", BENCH_TIMEOUT=seconds per command (default 300), BENCH_KEEP=1 keeps the temp dir,
#      BENCH_NO_BUILD=1 skips cargo build.
# Output: a Markdown table on stdout (also written to $BENCH_OUT, default bench/last-table.md); logs in the temp dir.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
REPEAT=${BENCH_REPEAT:-1}
WORKLOADS=${BENCH_WORKLOADS:-w1 w2 w4 w5}
TOOLS=${BENCH_TOOLS:-octopush octopush-zstd octopush-engine buildah docker}
TMO=${BENCH_TIMEOUT:-300}
OUT=${BENCH_OUT:-$ROOT/bench/last-table.md}

need=()
for c in docker-registry skopeo buildah dockerd busybox jq python3 curl pigz; do command -v "$c" >/dev/null || need+=("$c"); done
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing missing packages (${need[*]})"
  apt-get update -qq && apt-get install -y -qq --no-install-recommends docker-registry skopeo umoci buildah \
    busybox-static jq docker.io time curl pigz >/dev/null
fi
if [ -z "${BENCH_NO_BUILD:-}" ]; then
  # shellcheck source=/dev/null
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  echo "== cargo build --release --locked"
  cargo build --release --locked 2>&1 | tail -1
fi
BIN=$ROOT/target/release/octopush
[ -x "$BIN" ] || { echo "no $BIN"; exit 1; }
DOCKER=/usr/bin/docker          # the 20.10 CLI that matches dockerd 20.10
[ -x $DOCKER ] || DOCKER=$(command -v docker)
BUSYBOX=/bin/busybox
file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' || { [ -x /usr/bin/busybox ] && BUSYBOX=/usr/bin/busybox; }

W=$(mktemp -d /tmp/octobench.XXXXXX)
LOG=$W/bench.log
REG_PID=; DOCKERD_PID=
cleanup() {
  [ -n "$DOCKERD_PID" ] && kill "$DOCKERD_PID" 2>/dev/null && for _ in $(seq 50); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null
  if [ -z "${BENCH_KEEP:-}" ]; then
    # buildah/vfs and dockerd leave read-only dirs and mounts behind; unmount before removing
    grep -o " ${W}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$W"
  else echo "kept $W"; fi
}
trap cleanup EXIT
echo "== work dir $W"

# ---------- registry ----------
# shellcheck source=SCRIPTDIR/../scripts/lib/registry.sh
. scripts/lib/registry.sh
start_local_registry "$W/registry"
REG_PID=$REGISTRY_PID
REG=$REGISTRY
echo "== registry $REG"

# ---------- dockerd ----------
D=$W/docker; mkdir -p "$D"
export DOCKER_HOST=unix://$D/docker.sock
start_dockerd() {
  dockerd -H "unix://$D/docker.sock" --data-root "$D/root" --exec-root "$D/exec" --pidfile "$D/dockerd.pid" \
    --storage-driver vfs --iptables=false --ip6tables=false --bridge=none --ip-masq=false --ip-forward=false \
    >> "$D/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 1 100); do $DOCKER version >/dev/null 2>&1 && break; sleep 0.1; done
  $DOCKER version >/dev/null 2>&1 || { echo "dockerd did not start"; tail -20 "$D/dockerd.log"; exit 1; }
}
stop_dockerd() {
  kill "$DOCKERD_PID" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
}
start_dockerd
echo "== dockerd $($DOCKER version -f '{{.Server.Version}}') at $DOCKER_HOST (pid $DOCKERD_PID)"

# ---------- base image: OCI layout by hand, pushed with skopeo ----------
python3 - "$W/base-oci" "$BUSYBOX" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
out, bb = sys.argv[1], sys.argv[2]
os.makedirs(f"{out}/blobs/sha256", exist_ok=True)
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return "sha256:" + d, len(data)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
    for d in ["bin", "etc", "tmp", "srv"]:
        ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; ti.mtime = 0; t.addfile(ti)
    data = open(bb, "rb").read()
    ti = tarfile.TarInfo("bin/busybox"); ti.size = len(data); ti.mode = 0o755; ti.mtime = 0
    t.addfile(ti, io.BytesIO(data))
    for n in ["sh", "ls", "cat", "echo", "httpd"]:
        ti = tarfile.TarInfo("bin/" + n); ti.type = tarfile.SYMTYPE; ti.linkname = "busybox"; ti.mtime = 0; t.addfile(ti)
raw = buf.getvalue()
gz = gzip.compress(raw, mtime=0)
ldig, lsize = blob(gz)
diff = "sha256:" + hashlib.sha256(raw).hexdigest()
def image(arch, variant=None):
    cfg = {"architecture": arch, "os": "linux",
           "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
           "rootfs": {"type": "layers", "diff_ids": [diff]},
           "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "busybox-static"}],
           "created": "1970-01-01T00:00:00Z"}
    if variant: cfg["variant"] = variant
    cdig, csize = blob(json.dumps(cfg).encode())
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig, "size": csize},
         "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ldig, "size": lsize}]}
    mdig, msize = blob(json.dumps(m).encode())
    plat = {"architecture": arch, "os": "linux"}
    if variant: plat["variant"] = variant
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdig, "size": msize, "platform": plat}
amd, arm = image("amd64"), image("arm64", "v8")
idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [amd, arm]}
idig, isize = blob(json.dumps(idx).encode())
top = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    dict(amd, annotations={"org.opencontainers.image.ref.name": "1"}),
    {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": idig, "size": isize,
     "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}
json.dump(top, open(f"{out}/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(f"{out}/oci-layout", "w"))
PY
skopeo copy -q --dest-tls-verify=false "oci:$W/base-oci:1" "docker://$REG/base/busybox:1" >>"$LOG" 2>&1 \
  && skopeo copy -q --all --dest-tls-verify=false "oci:$W/base-oci:multi" "docker://$REG/base/busybox:multi" >>"$LOG" 2>&1 \
  || { echo "skopeo push of the base failed"; tail -20 "$LOG"; exit 1; }
echo "== base images $REG/base/busybox:1 (amd64) and :multi (amd64+arm64 index)"

# ---------- data ----------
echo "== generating data"
python3 - "$W" <<'PY'
import os, random, sys
w = sys.argv[1]
rnd = random.Random(20261123)
words = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 10))) for _ in range(4000)]
def texty(n):  # html/js-like text: compresses ~3-4x
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rnd.choice(words) for _ in range(12)) + b"\n"
    return bytes(out[:n])
# w1: 2,000 files in 40 dirs, ~70 MB: half random bytes (images, fonts), half text; sizes skewed (many small, few large)
site = f"{w}/ctx-site/site"
total = 0
for i in range(2000):
    d = f"{site}/d{i % 40:02d}"
    os.makedirs(d, exist_ok=True)
    size = int(rnd.paretovariate(1.2) * 9000)
    size = min(size, 3_000_000)
    if i % 2: data = rnd.randbytes(size); name = f"f{i:04d}.bin"
    else: data = texty(size); name = f"f{i:04d}.html"
    open(f"{d}/{name}", "wb").write(data); total += size
# pad to ~70 MB with one file per dir
rest = 70_000_000 - total
for k in range(40):
    if rest <= 0: break
    n = max(rest // (40 - k), 0)
    open(f"{site}/d{k:02d}/bundle.js" if k % 2 == 0 else f"{site}/d{k:02d}/media.bin", "wb").write(
        texty(n) if k % 2 == 0 else rnd.randbytes(n))
    rest -= n
# w2: one 512 MiB file, 1 MiB chunks: 1/2 random, 1/2 text, so it gzips to ~60%
big = f"{w}/ctx-big/data"
os.makedirs(big, exist_ok=True)
chunk_text = texty(1 << 20)
with open(f"{big}/blob.bin", "wb") as f:
    for i in range(512):
        f.write(rnd.randbytes(1 << 20) if i % 2 else chunk_text[i % 7 * 1000:] + chunk_text[: i % 7 * 1000])
PY
printf 'FROM %s\nCOPY site/ /srv/www/\n' "$REG/base/busybox:1" > "$W/ctx-site/Dockerfile"
printf 'FROM %s\nCOPY data/ /data/\n' "$REG/base/busybox:1" > "$W/ctx-big/Dockerfile"
mkdir -p "$W/ctx-multi"
cp -a "$W/ctx-site/site" "$W/ctx-multi/site"
printf 'FROM %s\nCOPY site/ /srv/www/\n' "$REG/base/busybox:multi" > "$W/ctx-multi/Dockerfile"
# w5: a RUN that writes 96 files of 2 MiB (192 MiB) with busybox alone, deterministic: a 1 MiB word soup (12 words
# a line from a vocabulary of 4,000 random words, as w1's text; gzips to 45%) and a 1 MiB block of awk rand() bytes
# (16 bits per call: incompressible), each file both, rotated by a different number of 4 KiB pages. The blocks repeat
# from file to file 2 MiB apart, far beyond gzip's 32 KiB window, so gzip (the only codec here) finds nothing to reuse
# across files. Then w1's COPY of the site.
mkdir -p "$W/ctx-run"
cp -a "$W/ctx-site/site" "$W/ctx-run/site"
cat > "$W/ctx-run/Dockerfile" <<DOCKERFILE
FROM $REG/base/busybox:1
RUN set -e; b=/bin/busybox; \\
    \$b mkdir -p /data /tmp; \\
    \$b awk 'BEGIN { srand(20261123); for (i = 0; i < 65536; i++) printf "%04x%04x%04x%04x%04x%04x%04x%04x", rand() * 65536, rand() * 65536, rand() * 65536, rand() * 65536, rand() * 65536, rand() * 65536, rand() * 65536, rand() * 65536 }' | \$b xxd -r -p > /tmp/rnd; \\
    \$b awk 'BEGIN { srand(7); for (i = 0; i < 4000; i++) { w = ""; n = 2 + int(rand() * 9); for (j = 0; j < n; j++) w = w sprintf("%c", 97 + int(rand() * 26)); v[i] = w } while (t < 1048576) { s = v[int(rand() * 4000)]; for (j = 1; j < 12; j++) s = s " " v[int(rand() * 4000)]; print s; t += length(s) + 1 } }' | \$b head -c 1048576 > /tmp/txt; \\
    for k in \$(\$b seq 0 95); do \\
      o=\$((k * 37 % 256)); \\
      { \$b dd if=/tmp/txt bs=4096 skip=\$o; \$b dd if=/tmp/txt bs=4096 count=\$o; \\
        \$b dd if=/tmp/rnd bs=4096 skip=\$o; \$b dd if=/tmp/rnd bs=4096 count=\$o; } 2>/dev/null > /data/f\$k.dat; \\
    done; \\
    \$b rm -f /tmp/rnd /tmp/txt
COPY site/ /srv/www/
DOCKERFILE
echo "   site: $(find "$W/ctx-site/site" -type f | wc -l) files, $(du -sb "$W/ctx-site/site" | cut -f1) bytes; big: $(stat -c %s "$W/ctx-big/data/blob.bin") bytes"

# ---------- measurement ----------
RES=$W/results.tsv; : > "$RES"; : > "$W/phases.tsv"; : > "$W/save.tsv"
# run LABEL CMD... : appends "wall rss_kib user_s sys_s" of one command to $W/cur, or returns 1
# The tool's output goes to the log with each line's time since the start (busybox ts), and to $W/last.out.
run() {
  local label=$1; shift
  echo "--- $label: $*" >>"$LOG"
  if { /usr/bin/time -f '%e %M %U %S' -o "$W/t" timeout "$TMO" "$@" 2>&1; } | "$BUSYBOX" ts -s '%.s' \
      | tee "$W/last.out" >>"$LOG"; then
    cat "$W/t" >> "$W/cur"
  else
    { echo "    FAILED ($label), see log:"; tail -5 "$LOG" | sed 's/^/      /'; } >&2; return 1
  fi
}
BROOT=$W/buildah
BAH=(buildah --root "$BROOT/root" --runroot "$BROOT/run" --storage-driver vfs)
bah() { "${BAH[@]}" "$@"; }
clean_buildah() { bah rm -a >/dev/null 2>&1; bah rmi -a -f >/dev/null 2>&1; umount_under "$BROOT"; rm -rf "$BROOT"; mkdir -p "$BROOT"; }
umount_under() { grep -o " ${1}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null; true; }
clean_docker() {
  $DOCKER ps -aq | xargs -r "$DOCKER" rm -f >/dev/null 2>&1
  $DOCKER image ls -aq | sort -u | xargs -r "$DOCKER" rmi -f >/dev/null 2>&1
  $DOCKER builder prune -af >/dev/null 2>&1; true
}
dockerd_hwm_reset() { echo 5 > "/proc/$DOCKERD_PID/clear_refs" 2>/dev/null; }
dockerd_hwm() { awk '/VmHWM/ {print $2}' "/proc/$DOCKERD_PID/status"; }
# CPU seconds (user+sys) of dockerd and its containerd child so far, with the children they waited for (a RUN's
# runc and the processes of its container)
dockerd_cpu() { local t=0 p; for p in $DOCKERD_PID $(pgrep -P "$DOCKERD_PID"); do t=$(( t + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat") )); done; echo "$t $(getconf CLK_TCK)" | awk '{printf "%.2f", $1 / $2}'; }
# the engine cold (w5): no containers, images or build cache, and dockerd restarted without its distribution
# metadata, so a push cannot mount a layer that an earlier run pushed to another repository
clean_engine() {
  clean_docker
  stop_dockerd
  rm -rf "$D/root/image/vfs/distribution"
  start_dockerd
}

ctx_of() { case $1 in w1|w3) echo "$W/ctx-site";; w2) echo "$W/ctx-big";; w4) echo "$W/ctx-multi";; w5|w5push) echo "$W/ctx-run";; esac; }

# one_run TOOL WORKLOAD REP REPO : measures one publish; prints "wall rss_kib cpu_s" or "fail", and for octopush's
# engine builds also dockerd's VmHWM (KiB) and CPU seconds during the run
one_run() {
  local tool=$1 wl=$2 rep=$3 repo=$4 ctx; ctx=$(ctx_of "$wl")
  local engine=; case $wl in w5|w5push) engine=1;; esac
  : > "$W/cur"
  case $tool in
    octopush|octopush-zstd|octopush-engine)
      [ "$tool" != octopush ] && [ -z "$engine" ] && { echo "n/a"; return; }
      [ "$tool" = octopush-engine ] && [ "$wl" = w5push ] && { echo "n/a"; return; }
      local extra=()
      # shellcheck disable=SC2054 # one argument: a comma-separated list
      [ "$wl" = w4 ] && extra=(--platforms linux/amd64,linux/arm64)
      [ -n "$engine" ] && extra=(--network none)
      # w5-push measures the engine's export + push against docker push: the whole image from the engine
      if [ "$tool" = octopush-engine ] || [ "$wl" = w5push ]; then extra+=(--builder engine); fi
      [ "$tool" = octopush-zstd ] && extra+=(--compression zstd)
      dockerd_hwm_reset; local c0; c0=$(dockerd_cpu)
      GITHUB_SHA=0123456789abcdef0123456789abcdef01234567 SOURCE_DATE_EPOCH=1700000000 \
        run "$tool/$wl" "$BIN" publish --path "$ctx" --registry "$REG" --repository "$repo" --tags t "${extra[@]}" \
          --cache-dir "$W/octopush-cache" || { echo fail; return; }
      local e=""
      if [ -n "$engine" ]; then
        e=" $(dockerd_hwm) $(echo "$(dockerd_cpu) $c0" | awk '{printf "%.2f", $1 - $2}')"
        # phases from octopush's own lines: the build (until "built"), the export with compression (until
        # "exported and compressed"), and what is left (the last uploads, the manifest)
        awk -v wl="$wl" -v tool="$tool" \
          '/ built sha256:/ {b = $1} / exported and compressed / {x = $1} {end = $1}
          END {printf "%s %s %.2f %.2f %.2f\n", wl, tool, b, x - b, end - x}' "$W/last.out" >> "$W/phases.tsv"
      fi
      awk -v e="$e" '{w += $1; c += $3 + $4; if ($2 > m) m = $2} END {printf "%.2f %d %.2f%s\n", w, m, c, e}' "$W/cur"
      return
      ;;
    buildah)
      if [ "$wl" = w4 ]; then
        run "$tool/$wl bud" "${BAH[@]}" bud --isolation chroot --tls-verify=false --platform linux/amd64,linux/arm64 \
            --manifest "localhost/$repo:t" "$ctx" \
          && run "$tool/$wl push" "${BAH[@]}" manifest push --all --tls-verify=false "localhost/$repo:t" "docker://$REG/$repo:t" \
          || { echo fail; return; }
      else
        run "$tool/$wl bud" "${BAH[@]}" bud --isolation chroot --tls-verify=false -t "localhost/$repo:t" "$ctx" \
          && run "$tool/$wl push" "${BAH[@]}" push --tls-verify=false "localhost/$repo:t" "docker://$REG/$repo:t" \
          || { echo fail; return; }
      fi
      ;;
    docker)
      [ "$wl" = w4 ] && { echo "n/a"; return; }
      # w1-w3 have no RUN: the classic builder, as before; w5 is built by BuildKit, with no network (no bridge here)
      local bk=0 net=(); [ -n "$engine" ] && bk=1 net=(--network none)
      dockerd_hwm_reset; local c0; c0=$(dockerd_cpu)
      if [ "$wl" = w5push ]; then   # the image is built already (w5_push): the push alone
        run "$tool/$wl push" "$DOCKER" push "$REG/$repo:t" || { echo fail; return; }
      else
        DOCKER_BUILDKIT=$bk run "$tool/$wl build" "$DOCKER" build -q "${net[@]}" -t "$REG/$repo:t" "$ctx" \
          && run "$tool/$wl push" "$DOCKER" push "$REG/$repo:t" || { echo fail; return; }
      fi
      # dockerd does the work: its peak RSS (reset before the build) and its CPU time (plus the client's, above)
      echo "0 $(dockerd_hwm) $(echo "$(dockerd_cpu) $c0" | awk '{printf "%.2f", $1 - $2}') 0" >> "$W/cur"
      ;;
  esac
  awk '{w += $1; c += $3 + $4; if ($2 > m) m = $2} END {printf "%.2f %d %.2f\n", w, m, c}' "$W/cur"
}

# w5_floor REP IMAGE: the floor of w5-push. The image's new layers (every layer after the base's one), saved from
# the engine untimed so they sit in the page cache, then timed: `pigz -6` on every core (gzip's default level, what
# octopush and docker push write), sha256sum, and one streaming PUT per layer with curl, both layers at once.
w5_floor() {
  local rep=$1 src=$2 dir=$W/floor r
  rm -rf "$dir"; mkdir -p "$dir/x"
  curl -s --unix-socket "$D/docker.sock" "http://engine/images/$src/get" | tar -x -C "$dir/x" \
    && python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))[0]["Layers"][1:]))' \
      "$dir/x/manifest.json" > "$dir/layers" || { echo "    FAILED (floor: saving the w5 image)" >&2; return; }
  cat > "$dir/floor.sh" <<'SH'
set -eu
dir=$1 reg=$2 repo=$3 n=0
while read -r l; do n=$((n + 1)); pigz -6 -p "$(nproc)" -c "$dir/x/$l" > "$dir/l$n.gz"; done < "$dir/layers"
pids=()
for f in "$dir"/l*.gz; do
  d=$(sha256sum "$f" | cut -d' ' -f1)
  loc=$(curl -sf -X POST -D - -o /dev/null "http://$reg/v2/$repo/blobs/uploads/" | tr -d '\r' \
    | awk 'tolower($1) == "location:" {print $2}')
  case $loc in http*) ;; *) loc="http://$reg$loc";; esac
  case $loc in *\?*) sep='&';; *) sep='?';; esac
  curl -sf -T "$f" -H 'Content-Type: application/octet-stream' -o /dev/null "$loc${sep}digest=sha256:$d" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
SH
  : > "$W/cur"
  sync
  if run "floor/w5push" bash "$dir/floor.sh" "$dir" "$REG" "floor/w5push-r$rep"; then
    r=$(awk '{printf "%.2f %d %.2f\n", $1, $2, $3 + $4}' "$W/cur")
  else r=fail; fi
  echo "w5push floor $rep $r" >> "$RES"
  echo "   rep $rep w5-push floor (pigz -6 + curl of the same new layers): $r"
  rm -rf "$dir"
}

# w5_push REP: export + push alone. An untimed docker build puts the w5 image in the engine (BuildKit cache warm);
# then octopush publishes the same Dockerfile (every step a BuildKit cache hit: its time is the context check, the
# export, compression and upload) and docker pushes the built image, each to a fresh repository.
w5_push() {
  local rep=$1 r; local src="$REG/w5push/src-r$rep:t"
  clean_engine
  echo "--- w5push: untimed build of $src" >>"$LOG"
  if ! DOCKER_BUILDKIT=1 timeout "$TMO" "$DOCKER" build -q --network none -t "$src" "$W/ctx-run" >>"$LOG" 2>&1; then
    echo "    FAILED (w5push build), see $LOG" >&2; return
  fi
  rm -rf "$W/octopush-cache"; sync
  r=$(one_run octopush w5push "$rep" "octopush/w5push-r$rep"); echo "w5push octopush $rep $r" >> "$RES"
  echo "   rep $rep w5-push octopush: $r"
  if [[ " $TOOLS " == *" octopush-zstd "* ]]; then
    rm -rf "$W/octopush-cache"; sync
    r=$(one_run octopush-zstd w5push "$rep" "octopush-zstd/w5push-r$rep"); echo "w5push octopush-zstd $rep $r" >> "$RES"
    echo "   rep $rep w5-push octopush-zstd: $r"
  fi
  $DOCKER tag "$src" "$REG/docker/w5push-r$rep:t"; sync
  r=$(one_run docker w5push "$rep" "docker/w5push-r$rep"); echo "w5push docker $rep $r" >> "$RES"
  echo "   rep $rep w5-push docker: $r"
  w5_floor "$rep" "$src"
  # the engine's export alone, what octopush reads: GET /images/{id}/get to /dev/null (first byte, last byte, bytes)
  curl -s --unix-socket "$D/docker.sock" "http://engine/images/$src/get" -o /dev/null \
    -w "%{time_starttransfer} %{time_total} %{size_download}\n" >> "$W/save.tsv"
}

# a machine still busy with the set-up (package installs, data generation, a build) would slow the first runs:
# wait up to a minute for the one-minute load average to fall under 0.5
for _ in $(seq 1 30); do awk '{exit !($1 < 0.5)}' /proc/loadavg && break; sleep 2; done
START=$(date +%s)
echo "== load before: $(uptime)"
for rep in $(seq 1 "$REPEAT"); do
  for wl in $WORKLOADS; do
    for tool in $TOOLS; do
      repo="$tool/$wl-r$rep"
      # cold: no tool keeps state from an earlier run (octopush's layer cache is emptied too; for w5 the engine is
      # cold for octopush too, since it builds there)
      case $tool/$wl in
        buildah/*) clean_buildah;;
        docker/w5|octopush/w5|octopush-zstd/w5|octopush-engine/w5) clean_engine; rm -rf "$W/octopush-cache";;
        docker/*) clean_docker;;
        octopush*/*) rm -rf "$W/octopush-cache";;
      esac
      # what the previous run wrote is on disk before this one starts, so its writeback is nobody's cost
      sync
      r=$(one_run "$tool" "$wl" "$rep" "$repo"); echo "$wl $tool $rep $r" >> "$RES"
      echo "   rep $rep $wl $tool: $r  (wall s, peak RSS KiB, CPU s[, dockerd VmHWM KiB, dockerd CPU s])"
      if [ "$wl" = w1 ]; then   # w3: the same publish again, unchanged data, warm state, same repository and tag
        r=$(one_run "$tool" w3 "$rep" "$repo"); echo "w3 $tool $rep $r" >> "$RES"
        echo "   rep $rep w3 $tool: $r"
      fi
    done
    if [ "$wl" = w5 ] && [[ " $TOOLS " == *" octopush "* ]] && [[ " $TOOLS " == *" docker "* ]]; then
      w5_push "$rep"
    fi
  done
done
echo "== load after: $(uptime)"
echo "== measured in $(( $(date +%s) - START )) s"

python3 - "$RES" "$TOOLS" "$W/phases.tsv" "$W/save.tsv" <<'PY' | tee "$OUT"
import statistics, sys
tools = sys.argv[2].split()
names = {"w1": "w1: 2,000 files / 70 MB, cold", "w2": "w2: one 512 MiB file, cold",
         "w3": "w3: w1 republished unchanged", "w4": "w4: w1 for linux/amd64+arm64, cold",
         "w5": "w5: RUN writes 192 MiB + COPY w1's site, cold", "w5push": "w5-push: export+push of the built w5 image"}
res = {}
for l in open(sys.argv[1]):
    r = l.split()
    if len(r) < 4: continue
    # wall, RSS KiB, CPU s, and for octopush's engine builds dockerd's VmHWM KiB and CPU s during the run
    res.setdefault((r[0], r[1]), []).append(tuple(float(x) for x in r[3:8]) if len(r) >= 6 else r[3])
def med(w, t, i):
    v = res.get((w, t))
    if not v: return "-"
    bad = [x for x in v if not isinstance(x, tuple)]
    if bad: return bad[0]
    if any(len(x) <= i for x in v): return "-"
    return statistics.median(x[i] for x in v)
wls = [w for w in ["w1", "w2", "w3", "w4", "w5", "w5push"] if any(k[0] == w for k in res)]
# the floor (w5-push only: pigz -6 + curl of the same new layers) is a column beside the tools
if any(k[1] == "floor" for k in res): tools = tools + ["floor"]
ours = [t for t in tools if t.startswith("octopush")]
peers = [t for t in tools if not t.startswith("octopush")]
def table(title, cols, cell, rows=None):
    print(f"\n{title}\n")
    print("| workload | " + " | ".join(cols) + " |"); print("|---|" + "---:|" * len(cols))
    for w in rows or wls: print(f"| {names[w]} | " + " | ".join(cell(w, c) for c in cols) + " |")
f = lambda v, fmt: fmt.format(v) if isinstance(v, (int, float)) else str(v)
mib = lambda v: f(v / 1024 if isinstance(v, (int, float)) else v, "{:.0f}")
table("Wall seconds (build + push; w5-push: push only)", tools, lambda w, t: f(med(w, t, 0), "{:.2f}"))
if ours and peers:
    def ratio(w, p, o):
        a, b = med(w, p, 0), med(w, o, 0)
        return f"{a / b:.2f}x" if isinstance(a, float) and isinstance(b, float) and b > 0 else "n/a"
    table("Ratio peer / octopush (wall; above 1 = octopush faster)", [f"{p}/{o}" for o in ours for p in peers],
          lambda w, c: ratio(w, *c.split("/")))
table("Peak RSS, MiB (octopush: its own process)", tools, lambda w, t: mib(med(w, t, 1)))
def cpu(w, t):  # octopush's engine builds: its own CPU plus dockerd's during the run (the build runs there)
    own, eng = med(w, t, 2), med(w, t, 4)
    return f(own + eng if isinstance(own, float) and isinstance(eng, float) else own, "{:.2f}")
table("CPU seconds (user + sys; octopush's engine builds: octopush + dockerd)", tools, cpu)
eng = [w for w in wls if isinstance(med(w, "octopush", 3), float)]
if eng:
    print("\noctopush's engine builds, split: octopush's own process and the dockerd it drives\n")
    print("| workload | octopush RSS MiB | dockerd VmHWM MiB | octopush CPU s | dockerd CPU s |")
    print("|---|---:|---:|---:|---:|")
    for w in eng:
        print(f"| {names[w]} | {mib(med(w, 'octopush', 1))} | {mib(med(w, 'octopush', 3))} | "
              f"{f(med(w, 'octopush', 2), '{:.2f}')} | {f(med(w, 'octopush', 4), '{:.2f}')} |")
phases = {}
for l in open(sys.argv[3]):
    r = l.split()
    if len(r) == 5: phases.setdefault((r[0], r[1]), []).append([float(x) for x in r[2:]])
if phases:
    print("\noctopush's engine builds, phases (median s; from its log lines): the build until `built`, the export with "
          "compression until `exported and compressed`, the rest (last uploads, manifest; for a split build also the native COPY and the load into the engine)\n")
    print("| workload | build | export + compress | rest | runs (build / export / rest) |"); print("|---|---:|---:|---:|---|")
    for w, t in [(w, t) for w in wls for t in tools if (w, t) in phases]:
        v = phases[(w, t)]
        m = [statistics.median(x[i] for x in v) for i in range(3)]
        tag = {'octopush-zstd': ' (zstd)', 'octopush-engine': ' (builder: engine)'}.get(t, '')
        print(f"| {names[w]}{tag} | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.2f} | "
              + "; ".join(" / ".join(f"{y:.1f}" for y in x) for x in v) + " |")
save = [[float(x) for x in l.split()] for l in open(sys.argv[4]) if len(l.split()) == 3]
if save:
    print(f"\nThe engine's export alone (GET /images/{{id}}/get of the w5 image to /dev/null, {save[0][2] / 1e6:.0f} MB): "
          f"first byte after {statistics.median(x[0] for x in save):.2f} s, last after "
          f"{statistics.median(x[1] for x in save):.2f} s (median; runs: "
          + "; ".join(f"{x[0]:.2f} / {x[1]:.2f}" for x in save) + ")")
print("\nEvery run, wall seconds (in order)\n")
print("| workload | " + " | ".join(tools) + " |"); print("|---|" + "---|" * len(tools))
for w in wls:
    runs = lambda t: ", ".join(f"{x[0]:.2f}" if isinstance(x, tuple) else str(x) for x in res.get((w, t), [])) or "-"
    print(f"| {names[w]} | " + " | ".join(runs(t) for t in tools) + " |")
n = max(len(v) for v in res.values())
print(f"\nmedian of {n} run(s) each. buildah = bud + push (RSS: the larger of the two); docker = build + push "
      "(w1-w4: classic builder, DOCKER_BUILDKIT=0; w5: BuildKit, DOCKER_BUILDKIT=1), RSS = dockerd's VmHWM (reset "
      "before the build), CPU = client + dockerd + containerd and the children they waited for.")
PY
