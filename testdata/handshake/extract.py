#!/usr/bin/env python3
"""Extract RTMP handshake packets (C1, C2, S1, S2; 1536 bytes each) from the
classic-pcap captures in ../rtmp/ into *.bin files next to this script.

Usage (from the repository root):  python3 testdata/handshake/extract.py

How: reads the classic pcap (little- or big-endian, linktype 1 Ethernet; the
loopback captures carry all-zero MAC addresses), keeps IPv4/TCP, takes the first
TCP connection (first SYN), and rebuilds each direction's byte stream from the
TCP payloads ordered by sequence number (duplicates dropped). The client->server
stream starts with C0 (1 byte) + C1 (1536) + C2 (1536); server->client with
S0 + S1 + S2. C0/S0 are checked to be 0x03 and are not stored. Only the standard
library is used. Also prints the frame number(s) each packet came from.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RTMP = os.path.join(HERE, "..", "rtmp")
HS = 1536

# capture file stem -> output prefix
CAPTURES = {
    "pub_ffmpeg_h264aac_re": "ffmpeg_pub",   # ffmpeg 5.1 publishes to nginx-rtmp (digest)
    "play_ffmpeg_c4096": "ffmpeg_play",      # ffmpeg 5.1 plays from nginx-rtmp (digest)
    "play_rtmpdump_c4096": "rtmpdump_play",  # rtmpdump 2.4 plays from nginx-rtmp
    "pyclient_publish_ok": "pyclient_pub",   # rtmpclient.py, simple handshake
}


def frames(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        e = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        e = ">"
    else:
        sys.exit(f"{path}: not a classic microsecond pcap")
    linktype = struct.unpack(e + "I", data[20:24])[0]
    if linktype != 1:
        sys.exit(f"{path}: linktype {linktype}, expected 1 (Ethernet)")
    off, n = 24, 0
    while off + 16 <= len(data):
        _ts, _us, incl, _orig = struct.unpack(e + "IIII", data[off:off + 16])
        off += 16
        n += 1
        yield n, data[off:off + incl]
        off += incl


def tcp_segments(path):
    for n, fr in frames(path):
        if len(fr) < 14 or fr[12:14] != b"\x08\x00":
            continue
        ip = fr[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        if ip[9] != 6:
            continue
        src, dst = ip[12:16], ip[16:20]
        tcp = ip[ihl:total]
        sport, dport, seq = struct.unpack(">HHI", tcp[:8])
        doff = (tcp[12] >> 4) * 4
        flags = tcp[13]
        yield n, (src, sport), (dst, dport), seq, flags, tcp[doff:]


def streams(path):
    client = server = None
    isn = {}
    segs = {}
    for n, s, d, seq, flags, payload in tcp_segments(path):
        if client is None:
            if flags & 0x02 and not flags & 0x10:  # first SYN
                client, server = s, d
            else:
                continue
        if {s, d} != {client, server}:
            continue
        if flags & 0x02:
            isn[s] = seq + 1
            continue
        if payload:
            segs.setdefault(s, {}).setdefault(seq, (n, payload))
    out = {}
    for side in (client, server):
        base = isn[side]
        buf, frames_at = bytearray(), []
        for seq in sorted(segs[side]):
            n, p = segs[side][seq]
            rel = (seq - base) & 0xFFFFFFFF
            if rel + len(p) <= len(buf):
                continue  # retransmission
            p = p[len(buf) - rel:] if rel < len(buf) else p
            frames_at.append((len(buf), len(buf) + len(p), n))
            buf += p
            if len(buf) >= 1 + 2 * HS + 64:
                break
        out[side] = (bytes(buf), frames_at)
    return out[client], out[server]


def frame_of(frames_at, start, end):
    """Frame numbers of the segments overlapping stream bytes [start, end)."""
    return sorted({n for lo, hi, n in frames_at if lo < end and hi > start})


def main():
    for stem, prefix in CAPTURES.items():
        (cs, cf), (ss, sf) = streams(os.path.join(RTMP, stem + ".pcap"))
        for name, st, fa in (("c", cs, cf), ("s", ss, sf)):
            assert st[0] == 3, f"{stem}: {name}0 = {st[0]}"
            for i in (1, 2):
                start = 1 + (i - 1) * HS
                pkt = st[start:start + HS]
                assert len(pkt) == HS, f"{stem}: {name}{i} short"
                fn = f"{prefix}_{name}{i}.bin"
                with open(os.path.join(HERE, fn), "wb") as f:
                    f.write(pkt)
                print(f"{fn}: {stem}.pcap stream offset {start}, frames "
                      f"{frame_of(fa, start, start + HS)}, time={pkt[:4].hex()} "
                      f"version={pkt[4:8].hex()}")


if __name__ == "__main__":
    main()
