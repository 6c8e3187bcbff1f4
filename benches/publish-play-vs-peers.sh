#!/usr/bin/env bash
# rtmptool publish/play vs FFmpeg and rtmpdump on the same large FLV, same
# nginx-rtmp on loopback (issue: publish and play). Loopback only.
#  publish: `rtmptool publish --no-pace FILE URL` vs `ffmpeg -i FILE -c copy -f flv URL`
#  play:    from an nginx `vod` application (sends as fast as the client reads):
#           `rtmptool play URL -o /dev/null` vs `rtmpdump -b 36000000 -o /dev/null`
#           and `ffmpeg -i URL -c copy -f flv /dev/null`
# Prints wall time, MB/s, CPU time (user+sys) and the ratios.
# Usage: benches/publish-play-vs-peers.sh [FLV]  (default: the 60 s file made by
# benches/dump-vs-tshark.sh in $WORK, or generated here).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-$PWD/target/bench}
mkdir -p "$WORK"
FLV=${1:-$WORK/src-60s.flv}
if [ ! -s "$FLV" ]; then
  echo "== generating $FLV (60 s 1280x720 testsrc2+noise, x264 ultrafast qp 26, AAC)" >&2
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1280x720:rate=30,noise=alls=60:allf=t" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100" -t 60 \
    -c:v libx264 -preset ultrafast -qp 26 -g 60 -c:a aac -f flv "$FLV"
fi
cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/rtmptool
MB=$(echo "$(stat -c %s "$FLV") / 1000000" | bc -l)

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$dir/vod"
chmod 755 "$dir" "$dir/vod" # nginx workers run as nobody
ln -s "$FLV" "$dir/vod/big.flv"
cat > "$dir/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log info;
events { worker_connections 256; }
rtmp { server { listen 127.0.0.1:$port; chunk_size 4096; max_message 16M;
  application live { live on; }
  application vod { play $dir/vod; } } }
CONF
nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
trap 'kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true' EXIT
for _ in $(seq 100); do bash -c "echo >/dev/tcp/127.0.0.1/$port" 2>/dev/null && break; sleep 0.05; done

# Each pair of commands runs REPEAT times, alternating, on the same nginx;
# the ratios are of the medians (a single run on a 2-core VM varies by
# +-30 %). ffmpeg's paced play (about a minute) runs once.
REPEAT=${REPEAT:-3}
declare -A WALLS CPUS
run() {
  local name=$1; shift
  /usr/bin/time -f "%e %U %S" -o "$dir/t" "$@" >/dev/null 2>"$dir/err" || { echo "$name failed:" >&2; tail -3 "$dir/err" >&2; exit 1; }
  read -r wall user sys < "$dir/t"
  local cpu; cpu=$(echo "$user + $sys" | bc -l)
  WALLS[$name]="${WALLS[$name]:-} $wall"; CPUS[$name]="${CPUS[$name]:-} $cpu"
  printf '  %-18s %7.2f s wall %8.1f MB/s %7.2f s CPU (%.0f%% of a core)\n' "$name" "$wall" \
    "$(echo "$MB / ($wall + 0.001)" | bc -l)" "$cpu" "$(echo "100 * $cpu / ($wall + 0.001)" | bc -l)"
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
W() { echo "${WALLS[$1]}" | median; }
C() { echo "${CPUS[$1]}" | median; }
printf '== publish %s (%.0f MB) to nginx-rtmp live, %d runs each\n' "$FLV" "$MB" "$REPEAT"
for i in $(seq "$REPEAT"); do
  run "rtmptool publish" "$BIN" -q publish --no-pace "$FLV" "rtmp://127.0.0.1:$port/live/a$i"
  run "ffmpeg publish" ffmpeg -hide_banner -loglevel error -nostdin -i "$FLV" -c copy -f flv "rtmp://127.0.0.1:$port/live/b$i"
done
printf '  ratio of medians: rtmptool %.2fx ffmpeg speed, %.2fx its CPU time\n' \
  "$(echo "$(W "ffmpeg publish") / $(W "rtmptool publish")" | bc -l)" \
  "$(echo "$(C "rtmptool publish") / $(C "ffmpeg publish")" | bc -l)"
printf '== play from nginx vod, %d runs each\n' "$REPEAT"
for i in $(seq "$REPEAT"); do
  run "rtmptool play" "$BIN" -q play --buffer-ms 36000000 "rtmp://127.0.0.1:$port/vod/big.flv" -o /dev/null
  # rtmpdump exits 2 when it cannot tell whether the download is complete (live-like vod end).
  run "rtmpdump" bash -c 'rtmpdump "$@"; [ $? -le 2 ]' rtmpdump -q -r "rtmp://127.0.0.1:$port/vod/big.flv" -b 36000000 -o /dev/null
done
run "ffmpeg play" ffmpeg -hide_banner -loglevel error -nostdin -i "rtmp://127.0.0.1:$port/vod/big.flv" -c copy -f flv -y /dev/null
printf '  ratio of medians: rtmptool %.2fx rtmpdump speed (%.2fx its CPU), %.2fx ffmpeg speed (%.2fx its CPU)\n' \
  "$(echo "$(W rtmpdump) / $(W "rtmptool play")" | bc -l)" \
  "$(echo "$(C "rtmptool play") / $(C rtmpdump)" | bc -l)" \
  "$(echo "$(W "ffmpeg play") / $(W "rtmptool play")" | bc -l)" \
  "$(echo "$(C "rtmptool play") / $(C "ffmpeg play")" | bc -l)"
