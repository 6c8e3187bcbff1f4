#!/usr/bin/env bash
# rtmptool dump vs tshark on two large captures made here (never committed):
#  (1) loopback: ffmpeg publishes (no -re) a generated 1280x720 high-bitrate FLV
#      to nginx-rtmp on 127.0.0.1 while tcpdump records (-B 131072: a 2 GB buffer, -B 2000000, makes
#      tcpdump capture nothing on a 24 GB machine here; TCPDUMP_BUFFER_KB overrides);
#  (2) veth: the same traffic to nginx in a network namespace over a veth pair
#      with MTU 1500 and TSO/GSO/GRO off, captured on the host's veth end.
# Then times `rtmptool dump --json >/dev/null`, `rtmptool dump --stats`,
# tshark with the equivalent fields, and `cat FILE >/dev/null` (the limit),
# with peak RSS from /usr/bin/time -v, and prints MB/s and ratios.
#
# Usage: benches/dump-vs-tshark.sh [loopback|veth|both]   (root for veth/tcpdump)
# Env: DURATION (s of video, default 60), WORK (default target/bench),
#      RTMPTOOL (default target/release/rtmptool; built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-both}
DURATION=${DURATION:-60}
WORK=${WORK:-$PWD/target/bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
RTMPTOOL=${RTMPTOOL:-$CARGO_TARGET_DIR/release/rtmptool}
mkdir -p "$WORK"
[ -x "$RTMPTOOL" ] || cargo build --release --quiet
for p in ffmpeg nginx tcpdump tshark; do command -v $p >/dev/null || { echo "need $p" >&2; exit 1; }; done
[ -x /usr/bin/time ] || { echo "need /usr/bin/time (apt-get install time)" >&2; exit 1; }

FLV=$WORK/src-${DURATION}s.flv
if [ ! -s "$FLV" ]; then
  echo "== generating $FLV (${DURATION}s 1280x720 testsrc2+noise, x264 ultrafast qp 26, AAC)"
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=1280x720:rate=30,noise=alls=40:allf=t+u" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100" -t "$DURATION" \
    -c:v libx264 -preset ultrafast -qp 26 -g 60 -c:a aac -b:a 128k -f flv "$FLV"
fi

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# start_nginx DIR LISTEN_ADDR PORT [netns]  -> sets NGINX_PID
start_nginx() {
  local dir=$1 addr=$2 port=$3 ns=${4:-}
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log info;
events { worker_connections 256; }
rtmp { server { listen $addr:$port; chunk_size 4096; application live { live on; } } }
CONF
  if [ -n "$ns" ]; then
    ip netns exec "$ns" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;' &
  else
    nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;' &
  fi
  NGINX_PID=$!
  for _ in $(seq 100); do
    if [ -n "$ns" ]; then ip netns exec "$ns" bash -c "echo >/dev/tcp/$addr/$port" 2>/dev/null && return; 
    else bash -c "echo >/dev/tcp/$addr/$port" 2>/dev/null && return; fi
    sleep 0.05
  done
  echo "nginx did not start" >&2; cat "$dir/error.log" >&2; exit 1
}

# record IFACE FILTER OUT URL
record() {
  local iface=$1 filter=$2 out=$3 url=$4
  tcpdump -i "$iface" -B "${TCPDUMP_BUFFER_KB:-131072}" --immediate-mode -s 0 -U -w "$out" "$filter" 2>"$out.tcpdump.log" &
  local tpid=$!
  sleep 1
  ffmpeg -hide_banner -loglevel error -i "$FLV" -c copy -f flv "$url"
  sleep 1
  kill -INT "$tpid"; wait "$tpid" || true
  cat "$out.tcpdump.log" >&2
}

make_loopback() {
  local out=$WORK/loopback-${DURATION}s.pcap port
  [ -s "$out" ] && { echo "$out"; return; }
  port=$(free_port)
  start_nginx "$WORK/nginx-lo" 127.0.0.1 "$port"
  record lo "tcp port $port" "$out" "rtmp://127.0.0.1:$port/live/bench" >&2
  kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true
  echo "$out"
}

make_veth() {
  local out=$WORK/veth-${DURATION}s.pcap ns=rtmpbench$$ port=1935
  [ -s "$out" ] && { echo "$out"; return; }
  ip netns add "$ns"
  trap "ip netns del $ns 2>/dev/null || true; ip link del rb0$$ 2>/dev/null || true" EXIT
  ip link add "rb0$$" type veth peer name "rb1$$"
  ip link set "rb1$$" netns "$ns"
  ip addr add 10.77.0.1/24 dev "rb0$$"
  ip netns exec "$ns" ip addr add 10.77.0.2/24 dev "rb1$$"
  ip link set "rb0$$" mtu 1500 up
  ip netns exec "$ns" ip link set "rb1$$" mtu 1500 up
  ip netns exec "$ns" ip link set lo up
  ethtool -K "rb0$$" tso off gso off gro off >/dev/null 2>&1 || true
  ip netns exec "$ns" ethtool -K "rb1$$" tso off gso off gro off >/dev/null 2>&1 || true
  start_nginx "$WORK/nginx-ns" 10.77.0.2 "$port" "$ns"
  record "rb0$$" "tcp port $port" "$out" "rtmp://10.77.0.2:$port/live/bench" >&2
  kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true
  echo "$out"
}

# run NAME CMD... : prints "NAME seconds MB/s peakRSS_MB"
declare -A SECS RSS
run() {
  local name=$1; shift
  local log=$WORK/time.log
  if ! /usr/bin/time -v "$@" 2>"$log" >/dev/null; then
    echo "$name failed:" >&2; grep -v '^\s' "$log" | head -5 >&2; exit 1
  fi
  local el rss
  el=$(grep 'Elapsed (wall clock)' "$log" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(grep 'Maximum resident set size' "$log" | awk '{print $NF}')
  SECS[$name]=$el; RSS[$name]=$rss
  printf '  %-22s %8.2f s %9.1f MB/s %8.1f MB peak RSS\n' "$name" "$el" \
    "$(echo "$SIZE_MB / ($el + 0.0001)" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
}

bench() {
  local f=$1 port
  SIZE_MB=$(echo "$(stat -c %s "$f") / 1000000" | bc -l)
  port=$(tshark -r "$f" -c 1 -T fields -e tcp.dstport 2>/dev/null | head -1)
  [ "$port" -lt 30000 ] || port=$(tshark -r "$f" -c 1 -T fields -e tcp.srcport 2>/dev/null | head -1)
  printf '== %s (%.1f MB, server port %s)\n' "$f" "$SIZE_MB" "$port"
  run cat cat "$f"
  run "rtmptool --json" "$RTMPTOOL" dump --json "$f"
  run "rtmptool --stats" "$RTMPTOOL" dump --stats "$f"
  run tshark tshark -r "$f" -d "tcp.port==$port,rtmpt" -o rtmpt.max_packet_size:1048576 -Y rtmpt \
    -T fields -e frame.number -e tcp.stream -e rtmpt.header.csid -e rtmpt.header.typeid \
    -e rtmpt.header.bodysize -e rtmpt.header.streamid -e rtmpt.header.timestamp -e amf.string
  local ours theirs
  ours=$("$RTMPTOOL" dump --json --type media,command,data,control "$f" | grep -c '"type":"message"')
  theirs=$(tshark -r "$f" -d "tcp.port==$port,rtmpt" -o rtmpt.max_packet_size:1048576 -Y rtmpt \
    -T fields -e rtmpt.header.typeid 2>/dev/null | tr ',' '\n' | grep -c . || true)
  printf '  messages: rtmptool %s, tshark %s\n' "$ours" "$theirs"
  printf '  ratios: rtmptool --json is %.1fx tshark, %.2fx cat; --stats is %.1fx tshark\n' \
    "$(echo "${SECS[tshark]} / ${SECS["rtmptool --json"]}" | bc -l)" \
    "$(echo "${SECS[cat]} / ${SECS["rtmptool --json"]}" | bc -l)" \
    "$(echo "${SECS[tshark]} / ${SECS["rtmptool --stats"]}" | bc -l)"
}

case $MODE in
  loopback) bench "$(make_loopback)" ;;
  veth) bench "$(make_veth)" ;;
  both) bench "$(make_loopback)"; bench "$(make_veth)" ;;
  *) echo "usage: $0 [loopback|veth|both]" >&2; exit 2 ;;
esac
