#!/usr/bin/env bash
# relay (issue 13), side by side with nginx-rtmp's own `push` of the same
# stream: one ~1 Mbit/s stream (x264 + AAC, made once with ffmpeg) published
# in real time by `rtmptool publish` for DURATION (12 s).
#   - the latency the relay adds per message: from its arrival from the
#     source to the moment the destination's socket took all of it (p50/p99,
#     the relay's own --json stats);
#   - CPU: the relay process (/proc/PID/schedstat, ns) against what `push`
#     adds to nginx A's worker (worker CPU with `push` minus without), and
#     against nginx's stream module forwarding the relay's input as plain
#     TCP (the floor for any process outside nginx).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-12}
cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/rtmptool
dir=$(mktemp -d); chmod 755 "$dir"
FLV=${FLV:-target/bench-1mbit.flv}
if [ ! -s "$FLV" ]; then
  ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440 \
    -c:v libx264 -preset veryfast -b:v 950k -maxrate 950k -bufsize 1900k -g 60 \
    -c:a aac -b:a 64k -t 30 -f flv "$FLV"
fi
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ns() { awk '{print $1}' "/proc/$1/schedstat"; }
wait_port() { for _ in $(seq 200); do bash -c "echo >/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }
pa=$(port); pb=$(port)
mk() { # name port extra
  mkdir -p "$dir/$1"
  cat > "$dir/$1/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
pid $dir/$1/nginx.pid;
error_log $dir/$1/error.log warn;
events { worker_connections 256; }
rtmp { server { listen 127.0.0.1:$2; chunk_size 4096;
  application live { live on; }
  $3 } }
CONF
  nginx -p "$dir/$1" -c "$dir/$1/nginx.conf" -e "$dir/$1/error.log"
  wait_port "$2"
}
mk a "$pa" "application push { live on; push rtmp://127.0.0.1:$pb/live; }"
mk b "$pb" ""
# c: nginx's stream module as a plain TCP proxy in front of A (no RTMP
# parsing at all). The relay plays from A through it, so c's worker does
# what any separate forwarding process must do per message (wake, read,
# write): the floor for a process outside nginx.
pc=$(port)
mkdir -p "$dir/c"
cat > "$dir/c/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1;
pid $dir/c/nginx.pid;
error_log $dir/c/error.log warn;
events { worker_connections 64; }
stream { server { listen 127.0.0.1:$pc; proxy_pass 127.0.0.1:$pa; } }
CONF
nginx -p "$dir/c" -c "$dir/c/nginx.conf" -e "$dir/c/error.log"
wait_port "$pc"
cleanup() { kill "$(cat "$dir/a/nginx.pid")" "$(cat "$dir/b/nginx.pid")" "$(cat "$dir/c/nginx.pid")" 2>/dev/null || true; }
trap cleanup EXIT
worker() { pgrep -P "$(cat "$dir/$1/nginx.pid")" | head -1; }
wa=$(worker a)
wc=$(worker c)

publish() { "$BIN" -q publish --duration "${DURATION}s" "$FLV" "rtmp://127.0.0.1:$pa/$1"; }

# 1. nginx A alone (no relay, no push): the baseline of A's worker, and
# 2. A pushing to B. The two are alternated REPEAT times (default 3) and the medians compared:
# one pair of runs differs by more than push costs on a busy machine.
REPEAT=${REPEAT:-3}
bases=(); pushes=()
for _ in $(seq "$REPEAT"); do
  a0=$(cpu_ns "$wa"); publish live/base; a1=$(cpu_ns "$wa"); bases+=($((a1 - a0)))
  a0=$(cpu_ns "$wa"); publish push/pushed; a1=$(cpu_ns "$wa"); pushes+=($((a1 - a0)))
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
base=$(median "${bases[@]}")
# 2. nginx A pushing to B (the same runs, alternated).
push=$(median "${pushes[@]}")
echo "A's worker, ms: alone $(printf '%s ' "${bases[@]}" | awk '{for(i=1;i<=NF;i++) printf "%.1f ", $i/1e6}')/ with push $(printf '%s ' "${pushes[@]}" | awk '{for(i=1;i<=NF;i++) printf "%.1f ", $i/1e6}')"
# 3. rtmptool relay A -> B.
# --reconnect: it stays up after the stream ends, so its CPU can be read.
"$BIN" --json relay --reconnect "rtmp://127.0.0.1:$pc/live/src" "rtmp://127.0.0.1:$pb/live/relayed" > "$dir/relay.json" &
rp=$!
for _ in $(seq 100); do grep -q "play: name='src'" "$dir/a/error.log" 2>/dev/null && break; sleep 0.05; done
r0=$(cpu_ns "$rp"); a0=$(cpu_ns "$wa"); c0=$(cpu_ns "$wc")
publish live/src
a1=$(cpu_ns "$wa")
sleep 0.5
r1=$(cpu_ns "$rp"); c1=$(cpu_ns "$wc")
kill -INT $rp; wait $rp || true
relay_a=$((a1 - a0))
python3 - "$base" "$push" "$relay_a" "$dir/relay.json" "$DURATION" "$((r1 - r0))" "$((c1 - c0))" <<'PY'
import json, sys
base, push, relay_a = (int(x) for x in sys.argv[1:4])
relay_cpu = int(sys.argv[6]) / 1e6
proxy_cpu = int(sys.argv[7]) / 1e6
dur = float(sys.argv[5])
stats = [json.loads(l) for l in open(sys.argv[4]) if '"stats"' in l][-1]
lat = stats["relay_latency_ms"]
print(f"stream: {stats['video_frames']} video / {stats['audio_frames']} audio frames, {stats['bytes']} bytes in {dur:.0f} s")
print(f"relay adds per message: p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms ({lat['count']} messages)")
push_cost = (push - base) / 1e6
print(f"nginx A worker (medians): alone {base/1e6:.1f} ms CPU, with push {push/1e6:.1f} ms (push adds {push_cost:.1f} ms), serving the relay as a player {relay_a/1e6:.1f} ms")
print(f"relay process: {relay_cpu:.1f} ms CPU; ratio relay / nginx push: {relay_cpu / push_cost:.2f}" if push_cost > 0 else f"relay process: {relay_cpu:.1f} ms CPU")
print(f"nginx stream proxy forwarding the same stream (TCP only, no RTMP): {proxy_cpu:.1f} ms CPU; ratio relay / that floor: {relay_cpu / proxy_cpu:.2f}" if proxy_cpu > 0 else "")
PY
