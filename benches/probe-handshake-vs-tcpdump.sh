#!/usr/bin/env bash
# Checks the handshake time `rtmptool probe` reports against the packet
# timestamps of a tcpdump capture taken at the same time (issue: probe).
# Needs root (tcpdump on lo), nginx + libnginx-mod-rtmp, tshark; loopback only.
# Prints, per probe, capture time from C0+C1 to the last byte of S0+S1+S2 and
# the probe's handshake_ms, and the largest difference.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/rtmptool
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log info;
events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:$port; chunk_size 4096; application live { live on; } } }
CONF
nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
tcpdump -Z root -i lo --immediate-mode -U -w "$dir/hs.pcap" "tcp port $port" 2>/dev/null & tp=$!
cleanup() { kill "$tp" 2>/dev/null || true; [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true; }
trap cleanup EXIT
# Wait until tcpdump has opened its file.
for _ in $(seq 100); do [ -s "$dir/hs.pcap" ] && break; sleep 0.05; done
sleep 1 # the file header is written before the filter is attached
for _ in $(seq "$N"); do "$bin" --json probe "rtmp://127.0.0.1:$port/live/x"; done > "$dir/probe.json"
sleep 0.5
cleanup; trap - EXIT; sleep 0.3
tshark -r "$dir/hs.pcap" -T fields -e frame.time_epoch -e tcp.srcport -e tcp.dstport -e tcp.len \
  > "$dir/frames.tsv" 2>/dev/null
python3 - "$dir/probe.json" "$port" "$dir/frames.tsv" <<'PY'
import json, sys
port = int(sys.argv[2])
conns = {}
for line in open(sys.argv[3]):
    t, s, d, n = line.split()
    t, s, d, n = float(t), int(s), int(d), int(n)
    c = conns.setdefault(s if d == port else d, {"c2s": 0, "s2c": 0})
    if n == 0:
        continue
    if d == port:
        if c["c2s"] == 0:
            c["c0c1"] = t
        c["c2s"] += n
    else:
        c["s2c"] += n
        if c["s2c"] >= 3073 and "s2" not in c:
            c["s2"] = t
probes = [json.loads(l) for l in open(sys.argv[1])]
worst = 0.0
for (cport, c), p in zip(sorted(conns.items()), probes):
    cap = (c["s2"] - c["c0c1"]) * 1000
    diff = p["handshake_ms"] - cap
    worst = max(worst, abs(diff))
    print(f"client port {cport}: capture {cap:.3f} ms, probe {p['handshake_ms']:.3f} ms, diff {diff:+.3f} ms")
print(f"largest difference {worst:.3f} ms (target 0.2 ms)")
PY
