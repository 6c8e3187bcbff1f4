#!/usr/bin/env bash
# Runs every check and test of rtmptool. Installs first, when missing, the
# system packages the tests run as real peers (nginx-rtmp, ffmpeg, rtmpdump,
# tshark, tcpdump). Used as is by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(nginx libnginx-mod-rtmp libnginx-mod-stream ffmpeg rtmpdump tshark tcpdump openssl ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo fmt --all --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
cargo test --doc
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps
