#!/usr/bin/env bash
# Runs every check and test of rtmptool. Installs first, when missing, the
# system packages the tests run as real peers (nginx-rtmp, ffmpeg, rtmpdump,
# tshark, tcpdump). Used as is by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# /dev/null must be the null device: cargo gives rustc /dev/null as stdin
# when it probes the target, and a regular file there (left by any program
# that renamed a file over it) feeds rustc whatever was "discarded" before.
if [ ! -c /dev/null ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "warning: /dev/null is not a character device; recreating it" >&2
    rm -f /dev/null && mknod -m 666 /dev/null c 1 3
  else
    echo "error: /dev/null is not a character device (ask root to run: rm /dev/null; mknod -m 666 /dev/null c 1 3)" >&2
    exit 1
  fi
fi

packages=(nginx libnginx-mod-rtmp libnginx-mod-stream ffmpeg rtmpdump tshark tcpdump openssl ca-certificates time iproute2)
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
# A short run of every fuzz target (FUZZ_SECONDS each, default 20); a crash fails.
scripts/fuzz.sh
