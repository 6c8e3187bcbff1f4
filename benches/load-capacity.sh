#!/usr/bin/env bash
# rtmptool load capacity (issue 15), side by side with srs-bench's published
# figure (about 5,000 players per process). nginx-rtmp on loopback, pinned to
# one core (taskset when there are two); `rtmptool load` on the other.
#  active: N players of one ~500 kbit/s stream (testdata's 60 s FLV published
#          by `rtmptool publish --rate 1.4 --loop 0`): client CPU per player
#          from /proc/PID/stat (utime+stime over a steady window), bitrate,
#          failures.
#  idle:   players of a stream nobody publishes (connected, playing, no
#          media): RSS per idle player connection from /proc/PID/status,
#          (RSS at N_big − RSS at N_small) / (N_big − N_small).
# SERVER_KIND=serve runs `rtmptool serve --merge-writes 50ms` as the server
# instead of nginx-rtmp (it serves more players per core, so the load
# generator, not the server, is what saturates).
# Bounded by default (a few hundred players, seconds each); raise with
# PLAYERS="1000 5000" IDLE="100 5000" WINDOW=10 (nginx may be the limit:
# the figures are of the load generator itself).
set -euo pipefail
cd "$(dirname "$0")/.."
PLAYERS=${PLAYERS:-"100 400"}
# Extra `load` flags, e.g. LOAD_FLAGS="--read-every 100ms" (fewer wakeups).
LOAD_FLAGS=${LOAD_FLAGS:-}
IDLE=${IDLE:-"50 500"}
WINDOW=${WINDOW:-5}
FLV=${FLV:-testdata/rtmp/media/h264base_aac_60s.flv}
cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/rtmptool
CLK=$(getconf CLK_TCK)
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER="taskset -c 1"; CLIENT="taskset -c 0"
else
  SERVER=""; CLIENT=""
fi
max=0
for n in $PLAYERS $IDLE; do [ "$n" -gt "$max" ] && max=$n; done
ulimit -n $((max + 256)) 2>/dev/null || echo "warning: ulimit -n stays $(ulimit -n)" >&2

dir=$(mktemp -d)
chmod 755 "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
worker_rlimit_nofile $((max * 2 + 256));
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $((max + 256)); }
rtmp { server { listen 127.0.0.1:$port; chunk_size 4096;
  application live { live on; } } }
CONF
srv=""
if [ "${SERVER_KIND:-nginx}" = serve ]; then
  $SERVER "$BIN" -q serve --listen "127.0.0.1:$port" --max-connections $((max * 2 + 256)) --merge-writes 50ms > "$dir/serve.log" 2>&1 &
  srv=$!
else
  $SERVER nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
fi
pub=""
cleanup() {
  [ -n "$pub" ] && kill "$pub" 2>/dev/null || true
  [ -n "$srv" ] && kill "$srv" 2>/dev/null || true
  kill "$(cat "$dir/nginx.pid" 2>/dev/null)" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do bash -c "echo >/dev/tcp/127.0.0.1/$port" 2>/dev/null && break; sleep 0.05; done
URL=rtmp://127.0.0.1:$port/live

$SERVER "$BIN" -q publish --rate 1.4 --loop 0 "$FLV" "$URL/cap" &
pub=$!

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sys_ticks() { awk '{print $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# Waits (bounded) until the load run in $2 reports $3 playing.
wait_playing() {
  local pid=$1 out=$2 n=$3
  for _ in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || return 1
    grep -q "\"playing\":$n," "$out" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

echo "== active players of one stream (~$(( $(stat -c %s "$FLV") * 8 * 14 / 10 / 60000 )) kbit/s), $WINDOW s window"
printf '%8s %12s %16s %14s %8s\n' players "client CPU%" "CPU µs/s/player" "in kbit/s" failed
for n in $PLAYERS; do
  out=$dir/active-$n.json
  $CLIENT "$BIN" --json load "$URL/cap" --players "$n" --ramp 1000 $LOAD_FLAGS --duration $((WINDOW + 60)) > "$out" &
  lp=$!
  if ! wait_playing $lp "$out" "$n"; then echo "$n players never all played" >&2; kill $lp || true; continue; fi
  sleep 1
  t1=$(ticks $lp); k1=$(sys_ticks $lp); s1=$(date +%s.%N)
  sleep "$WINDOW"
  t2=$(ticks $lp); k2=$(sys_ticks $lp); s2=$(date +%s.%N)
  kill -INT $lp; wait $lp || true
  kbps=$(grep load_progress "$out" | tail -2 | head -1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["bitrate_kbps"])')
  failed=$(grep load_summary "$out" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["failed"])')
  python3 - "$n" "$t1" "$t2" "$s1" "$s2" "$CLK" "$kbps" "$failed" "$k1" "$k2" <<'PY'
import sys
n, t1, t2, s1, s2, clk = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
cpu = (t2 - t1) / clk / (s2 - s1)
ksys = (int(sys.argv[10]) - int(sys.argv[9])) / clk / (s2 - s1)
print(f"{n:8d} {cpu*100:11.1f}% {cpu*1e6/n:16.1f} {sys.argv[7]:>14} {sys.argv[8]:>8}   (kernel {ksys*100:.1f}%)")
print(f"         -> one core at this rate: about {int(n / cpu) if cpu > 0 else 0} players")
PY
done

echo "== RSS per idle player connection (stream not published)"
declare -a R
for n in $IDLE; do
  out=$dir/idle-$n.json
  $CLIENT "$BIN" --json load "$URL/idle" --players "$n" --ramp 2000 --duration 120 > "$out" &
  lp=$!
  if ! wait_playing $lp "$out" "$n"; then echo "$n idle players never all played" >&2; kill $lp || true; continue; fi
  sleep 1
  R+=("$n:$(rss_kb $lp)")
  kill -INT $lp; wait $lp || true
done
printf '%8s %10s\n' players "RSS KiB"
for r in "${R[@]}"; do printf '%8s %10s\n' "${r%%:*}" "${r##*:}"; done
if [ "${#R[@]}" -ge 2 ]; then
  a=${R[0]}; b=${R[${#R[@]}-1]}
  python3 -c "na,ra,nb,rb=$((${a%%:*})),$((${a##*:})),$((${b%%:*})),$((${b##*:})); print(f'RSS per idle player: {(rb-ra)/(nb-na):.1f} KiB (target <= 20 KB beyond socket buffers)')"
fi
echo "srs-bench (published): about 5000 players per process"
