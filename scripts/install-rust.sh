#!/usr/bin/env bash
# Makes sure a Rust toolchain new enough for this crate (edition 2024: 1.85+) is on PATH.
set -euo pipefail
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if command -v cargo >/dev/null 2>&1; then
  exit 0
fi
echo "== installing Rust with rustup"
if ! command -v curl >/dev/null 2>&1; then
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl ca-certificates
fi
curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
echo "Rust installed: run '. \$HOME/.cargo/env' in this shell to use it"
