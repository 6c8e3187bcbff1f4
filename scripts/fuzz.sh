#!/usr/bin/env bash
# Runs every cargo-fuzz target under fuzz/ for FUZZ_SECONDS each (default
# 20), seeded from testdata/; exits non-zero on the first crash, leak or
# timeout (the crashing input is in fuzz/artifacts/TARGET/).
#
#   scripts/fuzz.sh                      # the short run CI does
#   FUZZ_SECONDS=3600 scripts/fuzz.sh    # a maintainer's long run
#   FUZZ_SECONDS=600 scripts/fuzz.sh chunk_decoder amf0
#   FUZZ_RUNS=10000000 FUZZ_SECONDS=3600 scripts/fuzz.sh amf3   # stop at 10 M runs
#   FUZZ_TIMEOUT=60 nice -n 19 scripts/fuzz.sh …   # in the background of a busy machine:
#                                 # a starved process must not look like a hang
#   FUZZ_SANITIZER=none FUZZ_RUNS=10000000 scripts/fuzz.sh amf0
#       # without AddressSanitizer: 15× the executions per second on the AMF
#       # targets, whose clone-heavy decoding makes ASan's allocator grow
#       # past the 4 GB RSS limit within the hour (48 MB steady without it).
#       # Safe Rust cannot corrupt memory; a leak still shows as RSS growth,
#       # which -rss_limit_mb catches.
#
# This machine has the stable toolchain only: RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz use the nightly flags it needs (-Zsanitizer=address).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
secs="${FUZZ_SECONDS:-20}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
san=(-s "${FUZZ_SANITIZER:-address}")
for t in "${targets[@]}"; do cargo fuzz build -O "${san[@]}" "$t" 2>&1 | tail -n 1; done
seeds() {
  case "$1" in
    amf0|amf3) echo ../testdata/amf ;;
    handshake) echo ../testdata/handshake ;;
    flv_reader) echo ../testdata/rtmp/media ;;
    capture_reader|dump_pipeline) echo ../testdata/rtmp ../testdata/capture ../testdata/rtmfp ;;
    rtmfp_packet) echo ../testdata/rtmfp ;;
    chunk_decoder|chunk_walk|client_session|server_session) echo ../testdata/amf ;;
  esac
}
# Captures need room for a few packets; the other decoders find their bugs
# in small inputs, many more of them per second.
max_len() {
  case "$1" in
    capture_reader|dump_pipeline) echo 16384 ;;
    *) echo 4096 ;;
  esac
}
runs="${FUZZ_RUNS:--1}"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  # shellcheck disable=SC2046
  # Inputs that once failed are replayed first, in every run.
  reg=(); [ -d "regressions/$t" ] && reg=("regressions/$t")
  out=$(cargo fuzz run -O "${san[@]}" "$t" "corpus/$t" $(seeds "$t") "${reg[@]}" -- \
        -max_total_time="$secs" -runs="$runs" -max_len="$(max_len "$t")" \
        -rss_limit_mb=4096 -malloc_limit_mb=1024 -timeout="${FUZZ_TIMEOUT:-10}" 2>&1) || {
    echo "$out" | tail -n 40
    echo "fuzz target $t failed (input in fuzz/artifacts/$t/)" >&2
    exit 1
  }
  echo "fuzz $t: $(echo "$out" | grep -E '^Done' | tail -n 1)"
done
