#!/usr/bin/env bash
# rtmptool dump over 100 MB of random bytes in one TCP stream to port 1935
# (no handshake: the analyzer searches for chunk boundaries, gives the
# direction up after a bounded window, and says so), against `cat`.
# Prints MB/s, the ratio to cat and peak RSS.
#
# Usage: benches/dump-noise.sh   Env: MB (default 100), WORK (default target/bench)
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${MB:-100}
WORK=${WORK:-$PWD/target/bench}
RTMPTOOL=${RTMPTOOL:-$PWD/target/release/rtmptool}
mkdir -p "$WORK"
[ -x "$RTMPTOOL" ] || cargo build --release --quiet
PCAP=$WORK/noise-${MB}mb.pcap
if [ ! -s "$PCAP" ]; then
  python3 - "$PCAP" "$MB" <<'PY'
import os, struct, sys
path, mb = sys.argv[1], int(sys.argv[2])
with open(path, 'wb') as out:
    out.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
    eth = b'\x02' * 6 + b'\x01' * 6 + b'\x08\x00'
    seq, n, total = 1000, 0, 0
    while total < mb * 1024 * 1024:
        pl = os.urandom(1448)
        ip = struct.pack('>BBHHHBBH4s4s', 0x45, 0, 40 + len(pl), 0, 0, 64, 6, 0,
                         bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
        tcp = struct.pack('>HHIIBBHHH', 40000, 1935, seq & 0xffffffff, 1, 0x50, 0x18, 65535, 0, 0)
        pkt = eth + ip + tcp + pl
        out.write(struct.pack('<IIII', n // 1000, (n % 1000) * 1000, len(pkt), len(pkt)) + pkt)
        seq += 1448; n += 1; total += len(pl)
PY
fi
size=$(stat -c %s "$PCAP")
t() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -n 1; }
cat "$PCAP" >/dev/null
read -r cat_s _ < <(t cat "$PCAP")
read -r dump_s dump_kb < <(t "$RTMPTOOL" dump "$PCAP")
python3 - "$size" "$cat_s" "$dump_s" "$dump_kb" <<'PY'
import sys
size, cat_s, dump_s, kb = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
mbs = lambda s: size / 1e6 / max(s, 1e-3)
print(f"cat:  {mbs(cat_s):8.0f} MB/s")
print(f"dump: {mbs(dump_s):8.0f} MB/s ({mbs(dump_s)/mbs(cat_s):.2f}x cat), peak RSS {kb/1024:.1f} MB")
PY
