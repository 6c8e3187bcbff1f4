#!/usr/bin/env bash
# relay (issue 13) side by side with nginx-rtmp relaying the same stream:
# one ~1 Mbit/s stream (x264 + AAC, made once with ffmpeg) published in real
# time by `rtmptool publish` for DURATION (12 s), REPEAT times (3), the
# setups alternated and the medians compared (one pair of runs on a busy
# 2-core machine differs by more than some of the costs measured).
#
# CPU is what the kernel accounted to each process, all its threads
# (/proc/PID/task/*/schedstat, ns), while the stream flowed:
#   - push: what `push` adds to nginx A's own worker (A publishing with a
#     push minus A alone): nginx's relay inside the process that already
#     has the stream, so it pays only the writes;
#   - hop: an nginx-rtmp of its own (M) that is pushed the stream by A and
#     pushes it on to B: nginx-rtmp as a relay between two servers, the
#     same work `rtmptool relay` does (read, de-chunk, re-chunk, write);
#   - tcp: nginx's stream module forwarding a relay's input as plain TCP
#     (no RTMP at all; a second relay plays A through it, in runs of its
#     own): what a process outside nginx-rtmp pays to be woken for each
#     read and to write it on (its 16 KiB buffer reads a key frame in
#     several rounds);
#   - relay: `rtmptool relay` A -> B.
#   - relay over rtmps: `rtmptool relay` between TLS ports that nginx's
#     stream module terminates in front of A and B (nginx-rtmp cannot push
#     over TLS at all; this is the relay's own cost of TLS).
# And the latency the relay adds per message: from its arrival from the
# source to the moment the destination's socket took all of it (p50/p99,
# the relay's own --json stats over all runs).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-12}
REPEAT=${REPEAT:-3}
cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/rtmptool
# RELAY_BIN: another build's binary for the relay (to compare versions).
RELAY=${RELAY_BIN:-$BIN}
dir=$(mktemp -d); chmod 755 "$dir"
FLV=${FLV:-target/bench-1mbit.flv}
if [ ! -s "$FLV" ]; then
  mkdir -p "$(dirname "$FLV")"
  ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440 \
    -c:v libx264 -preset veryfast -b:v 950k -maxrate 950k -bufsize 1900k -g 60 \
    -c:a aac -b:a 64k -t 30 -f flv "$FLV"
fi
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# CPU of a process, all its threads (a thread's own schedstat; the relay's
# steady state runs on a thread of its own).
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {print s}'; }
wait_port() { for _ in $(seq 200); do bash -c "echo >/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }
pa=$(port); pb=$(port); pm=$(port); pc=$(port); pat=$(port); pbt=$(port)
# A self-signed certificate for the TLS ports.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
mk() { # name port apps [tls-port]
  mkdir -p "$dir/$1"
  local tls=""
  [ -n "${4:-}" ] && tls="stream { server { listen 127.0.0.1:$4 ssl; ssl_certificate $dir/cert.pem; ssl_certificate_key $dir/key.pem; proxy_pass 127.0.0.1:$2; } }"
  cat > "$dir/$1/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1;
pid $dir/$1/nginx.pid;
error_log $dir/$1/error.log info;
events { worker_connections 256; }
rtmp { server { listen 127.0.0.1:$2; chunk_size 4096;
  application live { live on; }
  $3 } }
$tls
CONF
  nginx -p "$dir/$1" -c "$dir/$1/nginx.conf" -e "$dir/$1/error.log"
  wait_port "$2"
}
mk b "$pb" "" "$pbt"
mk m "$pm" "application hop { live on; push rtmp://127.0.0.1:$pb/live; }"
mk a "$pa" "application push { live on; push rtmp://127.0.0.1:$pb/live; }
  application fan { live on; push rtmp://127.0.0.1:$pm/hop; }" "$pat"
# c: nginx's stream module as a plain TCP proxy in front of A.
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
rp=
cleanup() {
  [ -n "$rp" ] && kill "$rp" "$rp2" "$rp3" 2>/dev/null
  for n in a b m c; do kill "$(cat "$dir/$n/nginx.pid")" 2>/dev/null || true; done
}
trap cleanup EXIT
worker() { pgrep -P "$(cat "$dir/$1/nginx.pid")" | head -1; }
wa=$(worker a); wm=$(worker m); wc=$(worker c)

publish() { "$BIN" -q publish --duration "${DURATION}s" "$FLV" "rtmp://127.0.0.1:$pa/$1"; }
# CPU (ns) of process $1 while `publish $2` runs, and 0.5 s after (what
# was sent at the end is still being relayed).
during() { local p=$1 t0 t1; t0=$(cpu_ns "$p"); publish "$2"; sleep 0.5; t1=$(cpu_ns "$p"); echo $((t1 - t0)); }

# The relays stay up across the runs (--reconnect: the publisher leaving
# does not end them), so their CPU is read while they run.
"$RELAY" --json relay --reconnect "rtmp://127.0.0.1:$pa/live/src" "rtmp://127.0.0.1:$pb/live/relayed" > "$dir/relay.json" &
rp=$!
"$BIN" --json relay --reconnect "rtmp://127.0.0.1:$pc/live/viatcp" "rtmp://127.0.0.1:$pb/live/viatcp" > /dev/null &
rp2=$!
"$RELAY" --json relay --reconnect --ca "$dir/cert.pem" "rtmps://127.0.0.1:$pat/live/tlssrc" "rtmps://127.0.0.1:$pbt/live/tlsrelayed" > "$dir/relay-tls.json" &
rp3=$!
for _ in $(seq 100); do grep -q "play: name='viatcp'" "$dir/a/error.log" 2>/dev/null && grep -q "play: name='src'" "$dir/a/error.log" && grep -q "play: name='tlssrc'" "$dir/a/error.log" && break; sleep 0.05; done

bases=(); pushes=(); hops=(); relays=(); floors=(); tlss=()
for i in $(seq "$REPEAT"); do
  bases+=("$(during "$wa" "live/base$i")")
  pushes+=("$(during "$wa" "push/pushed$i")")
  hops+=("$(during "$wm" "fan/hop$i")")
  relays+=("$(during "$rp" live/src)")
  floors+=("$(during "$wc" live/viatcp)")
  tlss+=("$(during "$rp3" live/tlssrc)")
done
kill -INT "$rp" "$rp2" "$rp3"; wait "$rp" "$rp2" "$rp3" || true; rp=
python3 - "$dir/relay.json" "$DURATION" "${bases[*]}" "${pushes[*]}" "${hops[*]}" "${floors[*]}" "${relays[*]}" "${tlss[*]}" <<'PY'
import json, statistics, sys
stats = [json.loads(l) for l in open(sys.argv[1]) if '"stats"' in l][-1]
dur = float(sys.argv[2])
runs = {k: [int(x) / 1e6 for x in v.split()] for k, v in zip(["base", "push", "hop", "floor", "relay", "tls"], sys.argv[3:9])}
med = {k: statistics.median(v) for k, v in runs.items()}
n = len(runs["base"])
lat = stats["relay_latency_ms"]
msgs = lat["count"] / n
print(f"stream: {msgs:.0f} messages, {stats['bytes'] / n / 1e6:.2f} MB in {dur:.0f} s; {n} runs of each, medians (all runs in brackets)")
print(f"relay adds per message: p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms ({lat['count']} messages)")
fmt = lambda k: ", ".join(f"{x:.1f}" for x in runs[k])
push = med["push"] - med["base"]
print(f"nginx A's worker alone {med['base']:.1f} ms [{fmt('base')}], with push {med['push']:.1f} ms [{fmt('push')}]")
rows = [
    ("nginx-rtmp push, added to A's worker", push),
    ("nginx-rtmp hop (its own nginx, pushed to and pushing on)", med["hop"]),
    ("nginx stream module, TCP only", med["floor"]),
    ("rtmptool relay", med["relay"]),
    ("rtmptool relay, rtmps at both ends", med["tls"]),
]
for name, v in rows:
    print(f"  {name:58} {v:7.1f} ms CPU  {v * 1000 / msgs:6.1f} µs/message")
print(f"ratios: relay / hop {med['relay'] / med['hop']:.2f}; relay / tcp {med['relay'] / med['floor']:.2f}; relay / push {med['relay'] / push:.2f}" if push > 0 else "")
print(f"rtmps relay / plain relay {med['tls'] / med['relay']:.2f}; rtmps relay / hop {med['tls'] / med['hop']:.2f}")
print(f"runs: hop [{fmt('hop')}], tcp [{fmt('floor')}], relay [{fmt('relay')}], rtmps relay [{fmt('tls')}]")
PY
