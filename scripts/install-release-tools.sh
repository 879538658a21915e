#!/usr/bin/env bash
# Installs the cross toolchain that scripts/release.sh builds the action's static binaries with: the rustup
# targets x86_64- and aarch64-unknown-linux-musl, and cargo-zigbuild with Zig as the C compiler and linker for
# both (ring and zstd-sys compile C, so a linker alone is not enough; Zig ships musl's headers and libc for every
# target, where clang/lld would need a musl sysroot per architecture). Both come from PyPI as prebuilt binaries
# (`cargo-zigbuild`, `ziglang`), pinned, into a directory this script owns:
#   ${OCTOPUSH_RELEASE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/octopush-release-tools}/zig-Z-zigbuild-C/
# so nothing lands in the system's Python and a version bump gets a fresh directory.
#
#   scripts/install-release-tools.sh            install what is missing (idempotent, quick when all is there)
#   scripts/install-release-tools.sh --bin-dir  install nothing: print the directory to put first on PATH
#                                               (cargo-zigbuild, zig), or fail naming this script
set -euo pipefail

ZIG_VERSION=0.15.2
ZIGBUILD_VERSION=0.24.1
TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)

root=${OCTOPUSH_RELEASE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/octopush-release-tools}
dir="$root/zig-$ZIG_VERSION-zigbuild-$ZIGBUILD_VERSION"
bin="$dir/bin"

fail() {
  echo "install-release-tools: error: $*" >&2
  exit 1
}
say() { echo "install-release-tools: $*" >&2; }

# Every missing piece, one per line; nothing when all is there.
missing() {
  [ -x "$bin/cargo-zigbuild" ] || echo "cargo-zigbuild $ZIGBUILD_VERSION in $bin"
  [ -x "$bin/zig" ] && "$bin/zig" version >/dev/null 2>&1 || echo "zig $ZIG_VERSION in $bin"
  local installed
  installed=$(rustup target list --installed 2>/dev/null || true)
  for t in "${TARGETS[@]}"; do
    grep -qx "$t" <<<"$installed" || echo "rustup target $t"
  done
}

# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

if [ "${1:-}" = "--bin-dir" ]; then
  gaps=$(missing)
  [ -z "$gaps" ] || fail "missing: $(tr '\n' ';' <<<"$gaps" | sed 's/;$//; s/;/; /g'): run scripts/install-release-tools.sh"
  echo "$bin"
  exit 0
fi
[ $# -eq 0 ] || fail "unknown argument $1 (usage: $0 [--bin-dir])"

command -v rustup >/dev/null 2>&1 || fail "rustup not found: the musl targets are added with rustup (scripts/install-rust.sh installs it)"
installed=$(rustup target list --installed)
for t in "${TARGETS[@]}"; do
  if ! grep -qx "$t" <<<"$installed"; then
    say "rustup target add $t"
    rustup target add "$t" >&2 || fail "rustup target add $t failed"
  fi
done

if [ ! -x "$bin/cargo-zigbuild" ] || ! { [ -x "$bin/zig" ] && "$bin/zig" version >/dev/null 2>&1; }; then
  command -v python3 >/dev/null 2>&1 || fail "python3 not found (pip installs ziglang and cargo-zigbuild)"
  python3 -m pip --version >/dev/null 2>&1 || fail "python3 has no pip (Debian: apt-get install python3-pip)"
  say "pip install ziglang==$ZIG_VERSION cargo-zigbuild==$ZIGBUILD_VERSION into $dir"
  rm -rf "$dir.tmp"
  mkdir -p "$root"
  # --target: a private directory, so no PEP 668 refusal and nothing in the system's site-packages.
  pip=(python3 -m pip install --disable-pip-version-check --no-input -q --target "$dir.tmp")
  [ "$(id -u)" = 0 ] && pip+=(--root-user-action=ignore)
  "${pip[@]}" \
    "ziglang==$ZIG_VERSION" "cargo-zigbuild==$ZIGBUILD_VERSION" >&2 \
    || fail "pip install ziglang==$ZIG_VERSION cargo-zigbuild==$ZIGBUILD_VERSION failed"
  # The wheel's zig finds its lib/ next to its real path (/proc/self/exe), so a link on PATH is enough.
  ln -sf ../ziglang/zig "$dir.tmp/bin/zig"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
fi

gaps=$(missing)
[ -z "$gaps" ] || fail "still missing after installing: $gaps"
say "ok (cargo-zigbuild $("$bin/cargo-zigbuild" --version | awk '{print $2}'), zig $("$bin/zig" version), targets ${TARGETS[*]}) in $bin"
