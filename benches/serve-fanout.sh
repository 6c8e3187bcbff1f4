#!/usr/bin/env bash
# serve's fan-out (issue 12), side by side with nginx-rtmp on this machine:
# N players of one ~1 Mbit/s stream and its publisher, all from
# `rtmptool load --delay-probe` pinned to one core; the server (serve, then
# nginx-rtmp's single worker) pinned to the other.
#   - server CPU over a steady window (/proc/PID/stat utime+stime) and the
#     players one core would serve at that rate (N / CPU);
#   - server memory per player: (RSS at N_big - RSS at N_small) / (N_big - N_small);
#   - p50/p99 delay from publisher to player (load's probe: one process, one clock);
#   - failures.
# serve runs twice: writing every message at once, and with merged writes
# (MERGE, default 50ms: players write what queued up at most every 50 ms,
# as SRS's mw_latency does).
# Bounded: PLAYERS="200 1000" by default, WINDOW=8 s each.
set -euo pipefail
cd "$(dirname "$0")/.."
PLAYERS=${PLAYERS:-"200 1000"}
WINDOW=${WINDOW:-8}
MERGE=${MERGE:-50ms}
cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/rtmptool
CLK=$(getconf CLK_TCK)
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER="taskset -c 1"; CLIENT="taskset -c 0"
else
  SERVER=""; CLIENT=""
fi
max=0
for n in $PLAYERS; do [ "$n" -gt "$max" ] && max=$n; done
ulimit -n $((max * 2 + 512)) 2>/dev/null || echo "warning: ulimit -n stays $(ulimit -n)" >&2
dir=$(mktemp -d)
chmod 755 "$dir"
FLV=${FLV:-target/bench-1mbit.flv}
if [ ! -s "$FLV" ]; then
  mkdir -p "$(dirname "$FLV")"
  ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440 \
    -c:v libx264 -preset veryfast -b:v 950k -maxrate 950k -bufsize 1900k -g 60 \
    -c:a aac -b:a 64k -t 30 -f flv "$FLV"
fi
kbps=$(( $(stat -c %s "$FLV") * 8 / 30000 ))
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
wait_port() { for _ in $(seq 200); do bash -c "echo >/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }
# Waits (bounded) until the load run writing $2 has $3 players playing and its publisher publishing.
wait_playing() {
  local pid=$1 out=$2 n=$3
  for _ in $(seq 900); do
    kill -0 "$pid" 2>/dev/null || return 1
    grep -q "\"playing\":$n,\"publishing\":1" "$out" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
spid=""
cleanup() { [ -n "$spid" ] && kill "$spid" 2>/dev/null || true; }
trap cleanup EXIT

run() { # name url server-pid
  local name=$1 url=$2 pid=$3
  local -a rss=()
  for n in $PLAYERS; do
    out=$dir/$name-$n.json
    $CLIENT "$BIN" --json load "$url/fan{i}" --players "$n" --publishers 1 --flv "$FLV" \
      --delay-probe --ramp 2000 --duration $((WINDOW + 40)) > "$out" &
    lp=$!
    if ! wait_playing $lp "$out" "$n"; then echo "$name: $n players never all played" >&2; kill $lp || true; continue; fi
    sleep 2
    t1=$(ticks "$pid"); s1=$(date +%s.%N)
    sleep "$WINDOW"
    t2=$(ticks "$pid"); s2=$(date +%s.%N)
    rss+=("$n:$(rss_kb "$pid")")
    kill -INT $lp; wait $lp || true
    python3 - "$name" "$n" "$t1" "$t2" "$s1" "$s2" "$CLK" "$out" <<'PY'
import json, sys
name, n = sys.argv[1], int(sys.argv[2])
t1, t2, s1, s2, clk = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
cpu = (t2 - t1) / clk / (s2 - s1)
summ = [json.loads(l) for l in open(sys.argv[8]) if '"load_summary"' in l][-1]
d = summ["delay_ms"]
per_core = int(n / cpu) if cpu > 0 else 0
print(f"{name:6} {n:6d} players: server CPU {cpu*100:5.1f}% ({cpu*1e6/n:6.1f} µs/s per player, one core ≈ {per_core} players); "
      f"delay p50 {d.get('p50')} ms p99 {d.get('p99')} ms max {d.get('max')} ms; failed {summ['failed']}")
PY
  done
  if [ "${#rss[@]}" -ge 2 ]; then
    a=${rss[0]}; b=${rss[${#rss[@]}-1]}
    python3 -c "na,ra,nb,rb=$((${a%%:*})),$((${a##*:})),$((${b%%:*})),$((${b##*:})); print(f'$name   memory per player: {(rb-ra)/(nb-na):.1f} KiB (RSS {ra} -> {rb} KiB)')"
  fi
}

echo "== one ${kbps} kbit/s stream, ${WINDOW} s windows; server on one core, load on the other"
for merge in 0ms "$MERGE"; do
  p=$(port)
  $SERVER "$BIN" -q serve --listen "127.0.0.1:$p" --max-connections $((max + 64)) --merge-writes "$merge" > "$dir/serve.log" 2>&1 &
  spid=$!
  wait_port "$p"
  echo "-- serve --merge-writes $merge"
  run serve "rtmp://127.0.0.1:$p/live" "$spid"
  kill -INT "$spid"; wait "$spid" || true; spid=""
done

echo "-- nginx-rtmp (1 worker)"
p=$(port)
cat > "$dir/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
worker_rlimit_nofile $((max * 2 + 512));
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $((max * 2 + 256)); }
rtmp { server { listen 127.0.0.1:$p; chunk_size 4096;
  application live { live on; } } }
CONF
$SERVER nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
wait_port "$p"
master=$(cat "$dir/nginx.pid")
worker=$(pgrep -P "$master" | head -1)
spid=$master
run nginx "rtmp://127.0.0.1:$p/live" "$worker"
kill "$master"; spid=""
