//! Captures as they come from the field, through the analyzer behind `dump`:
//! the shared hard cases (reordered, mid-stream, snaplen-cut, merged pcapng)
//! and, for each class, variants built here from the clean captures (other
//! direction, other chunk sizes, other cut points and snaplens, pcapng read in
//! 1- and 7-byte pieces). The truth is the analyzer's own decode of the
//! untouched source capture, which tests/dump_json.rs and tests/rtmp_captures.rs
//! hold message for message to the independent reference decoder.

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use rtmptool::analyze::{Analyzer, Options, Record, RecordKind};
use rtmptool::capture::tcp::Dir;
use rtmptool::capture::{Reader, Transport, decode};
use serde_json::Value as Json;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// One captured packet: time (sec, nsec), captured bytes, length on the wire.
#[derive(Clone)]
struct Pkt {
    sec: i64,
    nsec: u32,
    data: Vec<u8>,
    orig: u32,
}

fn read_packets(bytes: &[u8]) -> (u32, Vec<Pkt>) {
    let mut r = Reader::new(bytes).unwrap();
    let link = r.pcap_link_type().map_or(1, |l| l.0);
    let mut v = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        v.push(Pkt {
            sec: p.time.sec,
            nsec: p.time.nsec,
            data: p.data.to_vec(),
            orig: p.orig_len,
        });
    }
    (link, v)
}

/// A classic little-endian microsecond pcap.
fn write_pcap(link: u32, pkts: &[Pkt], snaplen: Option<usize>) -> Vec<u8> {
    let mut out = common::pcap_header(link);
    for p in pkts {
        let cap = snaplen.map_or(p.data.len(), |s| s.min(p.data.len()));
        common::pcap_record(
            &mut out,
            p.sec as u32,
            p.nsec / 1000,
            &p.data[..cap],
            p.orig,
        );
    }
    out
}

/// The same packets as a pcapng (SHB, IDB, one EPB each).
#[allow(dead_code)]
fn write_pcapng(link: u32, pkts: &[Pkt]) -> Vec<u8> {
    fn block(t: u32, body: &[u8]) -> Vec<u8> {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let len = (12 + body.len()) as u32;
        let mut v = t.to_le_bytes().to_vec();
        v.extend(len.to_le_bytes());
        v.extend(body);
        v.extend(len.to_le_bytes());
        v
    }
    let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    shb.extend(1u16.to_le_bytes());
    shb.extend(0u16.to_le_bytes());
    shb.extend([0xff; 8]);
    let mut out = block(0x0A0D_0D0A, &shb);
    let mut idb = (link as u16).to_le_bytes().to_vec();
    idb.extend(0u16.to_le_bytes());
    idb.extend(0u32.to_le_bytes());
    out.extend(block(1, &idb));
    for p in pkts {
        let ts = p.sec as u64 * 1_000_000 + u64::from(p.nsec / 1000);
        let mut b = 0u32.to_le_bytes().to_vec();
        b.extend(((ts >> 32) as u32).to_le_bytes());
        b.extend((ts as u32).to_le_bytes());
        b.extend((p.data.len() as u32).to_le_bytes());
        b.extend(p.orig.to_le_bytes());
        b.extend(&p.data);
        out.extend(block(6, &b));
    }
    out
}

/// A decoded message: direction, stream offset, csid, type, length,
/// timestamp (None when unknown), CRC-32 of the body.
type Msg = (Dir, u64, u32, u8, usize, Option<u32>, u32);

#[derive(Default)]
struct Out {
    /// Messages per connection name.
    msgs: HashMap<String, Vec<Msg>>,
    records: Vec<Record>,
}

impl Out {
    fn warnings(&self, code: &str) -> Vec<&Record> {
        self.records
            .iter()
            .filter(|r| {
                matches!(
                    (&r.kind, code),
                    (RecordKind::Gap { .. }, "gap")
                        | (RecordKind::Resynced { .. }, "resynced")
                        | (RecordKind::Damaged(_), "damaged")
                        | (RecordKind::ChunkError { .. }, "chunk_error")
                )
            })
            .collect()
    }
    fn all(&self) -> Vec<Msg> {
        let mut v: Vec<Msg> = self.msgs.values().flatten().copied().collect();
        v.sort_by_key(|m| (m.0.index(), m.1));
        v
    }
    fn dir(&self, d: Dir) -> Vec<Msg> {
        self.all().into_iter().filter(|m| m.0 == d).collect()
    }
}

fn analyze(input: impl Read) -> Out {
    let mut r = Reader::new(input).unwrap();
    let mut an = Analyzer::new(Options::default());
    let mut out = Out::default();
    let mut take = |rec: Record| {
        if let (RecordKind::Message { raw, .. }, Some(d)) = (&rec.kind, rec.dir) {
            let ts = (!raw.unknown.timestamp).then_some(raw.header.timestamp);
            out.msgs.entry(rec.conn.to_string()).or_default().push((
                d,
                raw.offset,
                raw.csid,
                raw.header.msg_type.0,
                raw.payload.len(),
                ts,
                crc32fast::hash(&raw.payload),
            ));
        } else if !matches!(rec.kind, RecordKind::Chunk(_)) {
            out.records.push(rec);
        }
    };
    while let Some(p) = r.next_packet().unwrap() {
        an.packet(&p, &mut take);
    }
    an.finish(&mut take);
    out
}

fn analyze_file(name: &str) -> Out {
    analyze(std::fs::File::open(testdata(name)).unwrap())
}

fn sidecar(name: &str) -> Json {
    let p = testdata(name).with_extension("json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn reordered_segments_give_exactly_the_source_messages() {
    let src = analyze_file("rtmp/play_ffmpeg_c4096.pcap");
    let got = analyze_file("rtmp/hard_s2c_reorder.pcap");
    assert_eq!(got.all(), src.all());
    assert_eq!(got.all().len(), 701);
    assert!(got.warnings("gap").is_empty());
}

#[test]
fn merged_pcapng_gives_both_sources_message_lists() {
    let got = analyze_file("rtmp/merged_fast_play.pcapng");
    let mut want = analyze_file("rtmp/pub_ffmpeg_h264aac_fast.pcap").msgs;
    want.extend(analyze_file("rtmp/play_ffmpeg_c4096.pcap").msgs);
    assert_eq!(got.msgs, want);
    assert_eq!(got.msgs.values().map(Vec::len).sum::<usize>(), 1402);
    // Through a reader that hands out 1 and 7 bytes at a time.
    let bytes = std::fs::read(testdata("rtmp/merged_fast_play.pcapng")).unwrap();
    for step in [1, 7] {
        let got = analyze(Pieces { data: &bytes, step });
        assert_eq!(got.msgs, want, "reads of {step} bytes");
    }
}

/// A source that hands out `step` bytes per read.
struct Pieces<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn mid_stream_capture_gives_the_messages_after_the_cut() {
    let truth = &sidecar("rtmp/hard_s2c_midstream_c128.pcap")["ground_truth"]["derivation"];
    let cut = truth["cut"]["s2c_stream_offset_of_first_byte"]
        .as_u64()
        .unwrap();
    let exp = &truth["expected_s2c_messages_after_cut"];
    let got = analyze_file("rtmp/hard_s2c_midstream_c128.pcap");
    let s2c = got.dir(Dir::S2c);
    assert_eq!(s2c.len() as u64, exp["count"].as_u64().unwrap());
    for (m, w) in s2c.iter().zip(exp["first"].as_array().unwrap()) {
        assert_eq!(m.1 + cut, w["off"].as_u64().unwrap());
        assert_eq!(u64::from(m.2), w["csid"].as_u64().unwrap());
        assert_eq!(u64::from(m.3), w["type"].as_u64().unwrap());
        assert_eq!(m.4 as u64, w["len"].as_u64().unwrap());
        // fmt 1 headers: the absolute timestamp was never shown.
        assert_eq!(m.5, None);
        assert_eq!(format!("{:08x}", m.6), w["crc32"].as_str().unwrap());
    }
    let last = s2c.last().unwrap();
    assert_eq!(last.1 + cut, exp["last"]["off"].as_u64().unwrap());
    assert_eq!(u64::from(last.3), exp["last"]["type"].as_u64().unwrap());
    // The same messages as the source, offsets shifted.
    let src = analyze_file("rtmp/play_ffmpeg_c128.pcap").dir(Dir::S2c);
    let after: Vec<_> = src.iter().filter(|m| m.1 >= cut + s2c[0].1).collect();
    assert_eq!(after.len(), s2c.len());
    for (a, b) in after.iter().zip(&s2c) {
        assert_eq!((a.1 - cut, a.2, a.3, a.4, a.6), (b.1, b.2, b.3, b.4, b.6));
    }
    // It says once where decoding started and the chunk size it inferred.
    let rs: Vec<_> = got
        .records
        .iter()
        .filter_map(|r| match r.kind {
            RecordKind::Resynced {
                chunk_size,
                size_kept,
                ..
            } if r.dir == Some(Dir::S2c) => Some((chunk_size, size_kept)),
            _ => None,
        })
        .collect();
    assert_eq!(rs, vec![(128, false)]);
}

#[test]
fn snaplen_capture_gives_every_fully_captured_message() {
    let truth = sidecar("rtmp/hard_snaplen1000.pcap");
    let der = &truth["ground_truth"]["derivation"];
    let src = analyze_file("rtmp/play_rtmpdump_c4096.pcap");
    let got = analyze_file("rtmp/hard_snaplen1000.pcap");
    for (d, name) in [(Dir::C2s, "c2s"), (Dir::S2c, "s2c")] {
        let all = src.dir(d);
        let want: Vec<Msg> = der[name]["fully_captured_indices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| all[i.as_u64().unwrap() as usize])
            .collect();
        // Timestamps after a lost header are unknown (its delta is lost):
        // never wrong where given.
        let have = got.dir(d);
        assert_eq!(have.len(), want.len(), "{name}");
        for (h, w) in have.iter().zip(&want) {
            assert_eq!(
                (h.0, h.1, h.2, h.3, h.4, h.6),
                (w.0, w.1, w.2, w.3, w.4, w.6),
                "{name}"
            );
            if h.5.is_some() {
                assert_eq!(h.5, w.5, "{name} at {}", h.1);
            }
        }
        assert_eq!(
            want.len() as u64,
            der[name]["fully_captured"].as_u64().unwrap()
        );
        // Every other message is reported, not dropped silently.
        let damaged = got
            .warnings("damaged")
            .iter()
            .filter(|r| r.dir == Some(d))
            .count();
        let lost = all.len() - want.len();
        assert!(
            damaged >= lost.min(1),
            "{name}: {damaged} damaged reported, {lost} lost"
        );
    }
}

/// Packets of one source, with which direction each TCP payload belongs to.
fn source(name: &str) -> (u32, Vec<Pkt>, Vec<Option<Dir>>) {
    let bytes = std::fs::read(testdata(name)).unwrap();
    let (link, pkts) = read_packets(&bytes);
    let mut client = None;
    let dirs = pkts
        .iter()
        .map(|p| {
            let d = decode(rtmptool::capture::LinkType(link), &p.data).ok()?;
            let Transport::Tcp(seg) = d.transport else {
                return None;
            };
            if client.is_none() && seg.flags.has(rtmptool::capture::TcpFlags::SYN) {
                client = Some(d.src);
            }
            if seg.payload.is_empty() {
                return None;
            }
            Some(if Some(d.src) == client {
                Dir::C2s
            } else {
                Dir::S2c
            })
        })
        .collect();
    (link, pkts, dirs)
}

const SOURCES: [&str; 5] = [
    "rtmp/play_ffmpeg_c128.pcap",
    "rtmp/play_ffmpeg_c65536.pcap",
    "rtmp/pub_ffmpeg_h264aac_re.pcap",
    "rtmp/pyclient_publish_c128.pcap",
    "rtmp/play_rtmpdump_c4096.pcap",
];

/// Reordering by up to three segments, in either direction: exact.
#[test]
fn reordering_by_up_to_three_segments_is_exact() {
    for name in SOURCES {
        let base = analyze_file(name);
        let (link, pkts, dirs) = source(name);
        for (want_dir, step) in [(Dir::C2s, 5usize), (Dir::S2c, 4), (Dir::S2c, 7)] {
            let idx: Vec<usize> = (0..pkts.len())
                .filter(|&i| dirs[i] == Some(want_dir))
                .collect();
            let mut order: Vec<usize> = (0..pkts.len()).collect();
            // Swap pairs, and reverse runs of three, of same-direction data
            // packets (the ACKs of the other side stay where they were).
            let mut k = 2;
            while k + 3 < idx.len() {
                if (k / step) % 2 == 0 {
                    order.swap(idx[k], idx[k + 1]);
                } else {
                    order.swap(idx[k], idx[k + 2]);
                }
                k += step;
            }
            let moved: Vec<Pkt> = order.iter().map(|&i| pkts[i].clone()).collect();
            let got = analyze(&write_pcap(link, &moved, None)[..]);
            assert_eq!(got.all(), base.all(), "{name} {want_dir:?} every {step}");
            assert!(got.warnings("gap").is_empty(), "{name}");
        }
    }
}

/// A capture started late: at a message boundary or mid-chunk, in either
/// direction. Every message decoded is one the sender sent (never a wrong
/// guess), and nearly all after the first boundary are found.
#[test]
fn mid_stream_starts_at_any_cut_never_guess_wrong() {
    for name in SOURCES {
        let base = analyze_file(name);
        let (link, pkts, dirs) = source(name);
        let data_pkts: Vec<usize> = (0..pkts.len()).filter(|&i| dirs[i].is_some()).collect();
        for frac in [0.05, 0.1, 0.15, 0.2, 0.3, 0.38, 0.45, 0.55, 0.65, 0.8, 0.9] {
            let start = data_pkts[(data_pkts.len() as f64 * frac) as usize];
            let got = analyze(&write_pcap(link, &pkts[start..], None)[..]);
            for d in [Dir::C2s, Dir::S2c] {
                let want = base.dir(d);
                let have = got.dir(d);
                if have.is_empty() {
                    continue;
                }
                // Offsets count from the first captured byte: find the shift
                // from the first decoded message.
                let by_crc: HashMap<(u32, u8, usize, u32), u64> =
                    want.iter().map(|m| ((m.2, m.3, m.4, m.6), m.1)).collect();
                let first = have[0];
                let orig = by_crc[&(first.2, first.3, first.4, first.6)];
                let shift = orig - first.1;
                for m in &have {
                    let w = want.iter().find(|w| w.1 == m.1 + shift);
                    let w = w.unwrap_or_else(|| {
                        panic!(
                            "{name} {frac} (from packet {start}) {d:?}: no message at {} ({m:?})",
                            m.1 + shift
                        )
                    });
                    assert_eq!(
                        (w.2, w.3, w.4, w.6),
                        (m.2, m.3, m.4, m.6),
                        "{name} {frac} (from packet {start}) {d:?} at {}",
                        m.1
                    );
                    if let Some(ts) = m.5 {
                        assert_eq!(w.5, Some(ts), "{name} {frac} {d:?}");
                    }
                }
                let after = want.iter().filter(|w| w.1 >= orig).count();
                assert!(
                    have.len() * 100 >= after * 95,
                    "{name} {frac} {d:?}: {} of {after}",
                    have.len()
                );
            }
            assert!(!got.all().is_empty(), "{name} {frac}: nothing decoded");
        }
    }
}

/// Snaplen 96 and 1500: every message decoded is exact, none is invented,
/// and the ones that lost bytes are reported.
#[test]
fn snaplen_cuts_decode_only_exact_messages() {
    for name in SOURCES {
        let base = analyze_file(name);
        let (link, pkts, _) = source(name);
        for snap in [96usize, 1500] {
            let got = analyze(&write_pcap(link, &pkts, Some(snap))[..]);
            let all = base.all();
            for m in got.all() {
                let sent = all.iter().any(|w| {
                    (w.0, w.1, w.2, w.3, w.4, w.6) == (m.0, m.1, m.2, m.3, m.4, m.6)
                        && (m.5.is_none() || m.5 == w.5)
                });
                assert!(sent, "{name} snaplen {snap}: {m:?} was never sent");
            }
            let cut = pkts.iter().any(|p| p.data.len() > snap);
            if cut {
                assert!(
                    !got.warnings("gap").is_empty(),
                    "{name} snaplen {snap}: cut segments not reported"
                );
            }
        }
    }
}

/// 3 MB of random bytes in a TCP stream on port 1935: warnings, no panic,
/// nothing invented as RTMP.
#[test]
fn random_bytes_on_the_rtmp_port() {
    use etherparse::PacketBuilder;
    let mut x = 0x9E37_79B9u32;
    let mut pkts = Vec::new();
    let mut seq = 1000u32;
    for i in 0..2100u32 {
        let payload: Vec<u8> = (0..1448)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 1935, seq, 1000)
            .write(&mut frame, &payload)
            .unwrap();
        seq = seq.wrapping_add(1448);
        pkts.push(Pkt {
            sec: i64::from(i),
            nsec: 0,
            orig: frame.len() as u32,
            data: frame,
        });
    }
    let got = analyze(&write_pcap(1, &pkts, None)[..]);
    assert!(
        got.all().len() < 5,
        "{} messages from noise",
        got.all().len()
    );
    // It says why nothing was decoded.
    assert!(
        got.records
            .iter()
            .any(|r| matches!(r.kind, RecordKind::NoBoundary { .. })),
        "no warning"
    );
}

/// Lost segments (a lossy capture point: every 7th or 13th data segment of a
/// direction never captured, ACKs still there): every message decoded is
/// one the sender sent, the losses are reported, and decoding never gives up.
#[test]
fn lost_segments_never_stop_decoding() {
    for name in SOURCES {
        let base = analyze_file(name);
        let (link, pkts, dirs) = source(name);
        for (d, every) in [(Dir::C2s, 7usize), (Dir::S2c, 13)] {
            let total = dirs.iter().filter(|x| **x == Some(d)).count();
            // A hole shows only when data follows it.
            let holes = (4..total).any(|k| k % every == 0);
            let mut k = 0;
            let kept: Vec<Pkt> = pkts
                .iter()
                .zip(&dirs)
                .filter(|(_, pd)| {
                    if **pd != Some(d) {
                        return true;
                    }
                    k += 1;
                    // Keep the handshake; lose every `every`-th segment after it.
                    k < 4 || k % every != 0
                })
                .map(|(p, _)| p.clone())
                .collect();
            if kept.len() == pkts.len() {
                continue;
            }
            let got = analyze(&write_pcap(link, &kept, None)[..]);
            let all = base.all();
            for m in got.all() {
                let sent = all.iter().any(|w| {
                    (w.0, w.1, w.2, w.3, w.4, w.6) == (m.0, m.1, m.2, m.3, m.4, m.6)
                        && (m.5.is_none() || m.5 == w.5)
                });
                assert!(sent, "{name} {d:?} every {every}: {m:?} was never sent");
            }
            assert!(!holes || !got.warnings("gap").is_empty(), "{name} {d:?}");
            assert!(
                !got.records
                    .iter()
                    .any(|r| matches!(r.kind, RecordKind::NoBoundary { .. })),
                "{name} {d:?}: gave up"
            );
            let want = base.dir(d).len();
            let have = got.dir(d).len();
            eprintln!("{name} {d:?} losing every {every}th segment: {have} of {want} messages");
        }
    }
}

/// Splits an Ethernet/IPv4 packet's IP payload into fragments of at most
/// `size` bytes (a multiple of 8), as a router with a small MTU does. None
/// if the packet is not Ethernet/IPv4 or fits.
fn ipv4_fragments(link: u32, p: &Pkt, size: usize) -> Option<Vec<Pkt>> {
    let d = &p.data;
    if link != 1 || d.len() < 34 || d[12..14] != [0x08, 0x00] || d[14] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(d[14] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([d[16], d[17]]));
    let payload = &d[14 + ihl..(14 + total).min(d.len())];
    if payload.len() <= size {
        return None;
    }
    let mut out = Vec::new();
    for (i, piece) in payload.chunks(size).enumerate() {
        let mut f = d[..14 + ihl].to_vec();
        let len = (ihl + piece.len()) as u16;
        f[16..18].copy_from_slice(&len.to_be_bytes());
        let more = (i + 1) * size < payload.len();
        let off = ((i * size / 8) as u16) | if more { 0x2000 } else { 0 };
        f[20..22].copy_from_slice(&off.to_be_bytes());
        f[24..26].copy_from_slice(&[0, 0]);
        let sum = f[14..14 + ihl]
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum::<u32>();
        let sum = (sum & 0xffff) + (sum >> 16);
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        f[24..26].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(piece);
        out.push(Pkt {
            sec: p.sec,
            nsec: p.nsec,
            orig: f.len() as u32,
            data: f,
        });
    }
    Some(out)
}

/// TCP segments fragmented at the IP layer (a path MTU below the sender's:
/// tunnels, VPNs), fragments in order and in reverse, with a duplicate:
/// reassembled, every message exact, no gap.
#[test]
fn ip_fragmented_segments_are_reassembled() {
    for name in SOURCES {
        let base = analyze_file(name);
        let (link, pkts, _) = source(name);
        for (size, reverse) in [(552usize, false), (1000, true), (64, true)] {
            let mut fragmented = 0;
            let mut out = Vec::new();
            for p in &pkts {
                match ipv4_fragments(link, p, size) {
                    Some(mut f) => {
                        fragmented += 1;
                        if reverse {
                            f.reverse();
                            f.push(f[0].clone());
                        }
                        out.extend(f);
                    }
                    None => out.push(p.clone()),
                }
            }
            assert_eq!(link, 1, "{name}: the sources are Ethernet captures");
            assert!(fragmented > 0, "{name}: nothing to fragment");
            let got = analyze(&write_pcap(link, &out, None)[..]);
            assert_eq!(got.all(), base.all(), "{name} fragments of {size}");
            assert!(got.warnings("gap").is_empty(), "{name} fragments of {size}");
        }
        // One fragment of one datagram missing: its segment is a gap, and
        // the end of the capture says a datagram was never reassembled.
        let mut out = Vec::new();
        let mut dropped = false;
        for p in &pkts {
            match ipv4_fragments(link, p, 552) {
                Some(mut f) if !dropped && f.len() > 2 => {
                    f.remove(1);
                    dropped = true;
                    out.extend(f);
                }
                Some(f) => out.extend(f),
                None => out.push(p.clone()),
            }
        }
        let got = analyze(&write_pcap(link, &out, None)[..]);
        let said = got.records.iter().any(|r| {
            matches!(&r.kind, RecordKind::Undecodable { reason } if reason.contains("never reassembled"))
        });
        assert!(said, "{name}: the lost datagram is not said");
    }
}

/// A capture that starts at the client's C2, whose first byte (the echo of
/// S1's time) is 3 like C0's: mid-stream, not a handshake (it was taken for
/// C0 + C1, the server's first chunk for "S0 version 2", and nothing was
/// decoded). Every source, C2's first byte set to 3.
#[test]
fn a_capture_starting_at_c2_is_mid_stream() {
    let mut hit = 0;
    for name in SOURCES {
        let base = analyze_file(name);
        let (link, mut pkts, dirs) = source(name);
        // The client's packet that starts at stream offset 1537 (C2).
        let mut sent = 0usize;
        let mut at = None;
        for (i, p) in pkts.iter().enumerate() {
            if dirs[i] != Some(Dir::C2s) {
                continue;
            }
            let d = decode(rtmptool::capture::LinkType(link), &p.data).unwrap();
            let Transport::Tcp(seg) = d.transport else {
                continue;
            };
            if sent == 1537 {
                let off = seg.payload.as_ptr() as usize - p.data.as_ptr() as usize;
                at = Some((i, off));
                break;
            }
            sent += seg.payload.len();
        }
        let Some((i, off)) = at else {
            eprintln!("{name}: C2 does not start a packet");
            continue;
        };
        hit += 1;
        pkts[i].data[off] = 3;
        let got = analyze(&write_pcap(link, &pkts[i..], None)[..]);
        assert!(
            !got.records
                .iter()
                .any(|r| matches!(r.kind, RecordKind::Handshake { .. })),
            "{name}: a handshake was reported"
        );
        for d in [Dir::C2s, Dir::S2c] {
            let want = base.dir(d);
            let have = got.dir(d);
            // Offsets count from the cut: 1537 for the client, the
            // server's whole handshake for the server.
            for m in &have {
                assert!(
                    want.iter()
                        .any(|w| (w.2, w.3, w.4, w.6) == (m.2, m.3, m.4, m.6)),
                    "{name} {d:?}: {m:?} was never sent"
                );
            }
            assert!(
                have.len() * 100 >= want.len() * 95,
                "{name} {d:?}: {} of {} messages",
                have.len(),
                want.len()
            );
        }
    }
    assert!(
        hit >= 3,
        "only {hit} sources start C2 in a packet of its own"
    );
}

/// A capture that ends mid-message (and mid-handshake): every record names
/// a frame of the capture (1-based; the cut-off message's was 0).
#[test]
fn a_capture_ending_mid_message_names_real_frames() {
    for name in SOURCES {
        let (link, pkts, _) = source(name);
        for end in [3, 5, pkts.len() / 3, pkts.len() / 2, pkts.len() - 1] {
            let got = analyze(&write_pcap(link, &pkts[..end], None)[..]);
            for r in &got.records {
                assert!(
                    (1..=end as u64).contains(&r.frame),
                    "{name} cut at {end}: {:?} at frame {}",
                    r.kind,
                    r.frame
                );
            }
            assert!(
                end < 10 || !got.warnings("damaged").is_empty() || got.all().len() > 3,
                "{name} cut at {end}"
            );
        }
    }
}

/// Every message's `frame`, by direction and content: (dir, csid, type,
/// length, CRC-32) → frames in order.
fn message_frames(input: &[u8]) -> HashMap<(usize, u32, u8, usize, u32), Vec<u64>> {
    let mut r = Reader::new(input).unwrap();
    let mut an = Analyzer::new(Options::default());
    let mut out: HashMap<_, Vec<u64>> = HashMap::new();
    let mut take = |rec: Record| {
        if let (RecordKind::Message { raw, .. }, Some(d)) = (&rec.kind, rec.dir) {
            let k = (
                d.index(),
                raw.csid,
                raw.header.msg_type.0,
                raw.payload.len(),
                crc32fast::hash(&raw.payload),
            );
            out.entry(k).or_default().push(rec.frame);
        }
    };
    while let Some(p) = r.next_packet().unwrap() {
        an.packet(&p, &mut take);
    }
    an.finish(&mut take);
    out
}

/// A capture started late: the messages decoded once a boundary is found
/// name the packet that completed each (they all named the packet where
/// the boundary was found, up to tens of packets later).
#[test]
fn mid_stream_messages_name_the_packet_that_completed_them() {
    for name in SOURCES {
        let bytes = std::fs::read(testdata(name)).unwrap();
        let base = message_frames(&bytes);
        let (link, pkts, dirs) = source(name);
        let data_pkts: Vec<usize> = (0..pkts.len()).filter(|&i| dirs[i].is_some()).collect();
        for frac in [0.1, 0.2, 0.35, 0.5, 0.7] {
            let start = data_pkts[(data_pkts.len() as f64 * frac) as usize];
            let got = message_frames(&write_pcap(link, &pkts[start..], None));
            let mut checked = 0;
            for (k, frames) in &got {
                let Some(want) = base.get(k) else {
                    panic!(
                        "{name} cut at {start}: {k:?} was never sent ({} in the cut)",
                        frames.len()
                    )
                };
                // The same content sent again is matched from the end.
                let want = &want[want.len() - frames.len().min(want.len())..];
                for (g, w) in frames.iter().zip(want) {
                    assert_eq!(g + start as u64, *w, "{name} cut at {start}: {k:?}");
                    checked += 1;
                }
            }
            assert!(checked > 10, "{name} cut at {start}: {checked} messages");
        }
    }
}

/// FFmpeg publishing, captured with a snaplen (300, and others): FFmpeg
/// writes chunk headers as segments of their own, so the snaplen cuts the
/// bodies and keeps every header. Holes inside payloads are stepped over
/// (rebuilt fmt-3 headers within a message, holes held in the boundary
/// search), so nearly every fully captured message is decoded, each one
/// exact; at snaplen 300 it decoded 6 of the 157 (every hole lost the
/// boundaries again), now 150; at 600, 264 of 265.
#[test]
fn snaplen_cut_bodies_with_headers_kept_decode_the_fully_captured() {
    let name = "capture/pub_ffmpeg_small_segments_nano.pcap";
    let base = analyze_file(name);
    let (link, pkts, _) = source(name);
    let all = base.all();
    // Client messages whose bytes are all in the cut capture (counted from
    // the TCP sequence ranges captured): 5, 157 and 265 of 422.
    for (snap, at_least) in [(200usize, 5usize), (300, 145), (600, 255)] {
        let got = analyze(&write_pcap(link, &pkts, Some(snap))[..]);
        let have = got.dir(Dir::C2s);
        for m in got.all() {
            let sent = all.iter().any(|w| {
                (w.0, w.1, w.2, w.3, w.4, w.6) == (m.0, m.1, m.2, m.3, m.4, m.6)
                    && (m.5.is_none() || m.5 == w.5)
            });
            assert!(sent, "snaplen {snap}: {m:?} was never sent");
        }
        assert!(
            have.len() >= at_least,
            "snaplen {snap}: {} client messages decoded",
            have.len()
        );
        eprintln!(
            "snaplen {snap}: {} of {} client messages",
            have.len(),
            base.dir(Dir::C2s).len()
        );
    }
}

/// `p` (Ethernet, IPv4, TCP) with only the first `keep` bytes of its TCP
/// payload, its IP length and checksum made to fit: a packet that really
/// carried that much.
fn cut_payload(p: &Pkt, payload_at: usize, keep: usize) -> Pkt {
    let mut data = p.data[..payload_at + keep].to_vec();
    let ip = if data[12..14] == [0x81, 0x00] { 18 } else { 14 };
    let total = (data.len() - ip) as u16;
    data[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
    data[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
    let ihl = usize::from(data[ip] & 0x0f) * 4;
    let mut sum: u32 = data[ip..ip + ihl]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    data[ip + 10..ip + 12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    Pkt {
        sec: p.sec,
        nsec: p.nsec,
        orig: data.len() as u32,
        data,
    }
}

/// A capture (or a connection) that ends inside a message: every message
/// whose header was captured and whose payload was not all is reported
/// damaged, with its offset and length, also when the end falls in its
/// first chunk (that one vanished in silence). Each source is cut inside
/// its data packets at several points; the truth is the uncut decode's
/// messages and the TCP sequence numbers of what the cut capture holds.
#[test]
fn every_message_cut_off_by_the_end_is_reported() {
    let (mut firsts, mut total) = (0, 0);
    for name in SOURCES {
        let (link, pkts, dirs) = source(name);
        let full = analyze(&write_pcap(link, &pkts, None)[..]);
        let all = full.all();
        // Stream offset (from the SYN) of the end of what each direction
        // holds before packet i.
        let mut isn: [Option<u32>; 2] = [None, None];
        let mut held = [0u64; 2];
        let data_pkts = dirs.iter().filter(|d| d.is_some()).count();
        let step = (data_pkts / 40).max(1);
        let mut n = 0;
        for (i, p) in pkts.iter().enumerate() {
            let Ok(d) = decode(rtmptool::capture::LinkType(link), &p.data) else {
                continue;
            };
            let Transport::Tcp(seg) = d.transport else {
                continue;
            };
            let di = match dirs[i] {
                Some(dir) => dir.index(),
                None if seg.flags.has(rtmptool::capture::TcpFlags::SYN) => {
                    let ack = seg.flags.has(rtmptool::capture::TcpFlags::ACK);
                    isn[usize::from(ack)] = Some(seg.seq);
                    continue;
                }
                None => continue,
            };
            let Some(base) = isn[di] else { continue };
            let start = u64::from(seg.seq.wrapping_sub(base).wrapping_sub(1));
            let len = seg.payload.len();
            let payload_at = seg.payload.as_ptr() as usize - p.data.as_ptr() as usize;
            n += 1;
            if n % step == 0 && len > 1 {
                for keep in [1, len / 3, len / 2, len - 1] {
                    let mut cut = pkts[..i].to_vec();
                    cut.push(cut_payload(p, payload_at, keep));
                    let got = analyze(&write_pcap(link, &cut, None)[..]);
                    let mut upto = held;
                    upto[di] = upto[di].max(start + keep as u64);
                    let decoded: std::collections::HashSet<_> = got.all().into_iter().collect();
                    let damaged: Vec<(Dir, u64, u32)> = got
                        .records
                        .iter()
                        .filter_map(|r| match (&r.kind, r.dir) {
                            (RecordKind::Damaged(m), Some(d)) => Some((d, m.offset, m.length)),
                            _ => None,
                        })
                        .collect();
                    for m in &all {
                        let (dir, offset, mlen) = (m.0, m.1, m.4 as u64);
                        let h = upto[dir.index()];
                        // Its header (at most 18 bytes) is in, its end is not.
                        if decoded.contains(m) || offset + 18 > h || offset + mlen < h {
                            continue;
                        }
                        assert!(
                            damaged.contains(&(dir, offset, mlen as u32)),
                            "{name} cut in packet {i} after {keep} of {len} bytes: the {dir:?} message at {offset} ({mlen} bytes, {h} held) is not reported: {damaged:?}"
                        );
                        total += 1;
                        // Its first chunk cut (at most 128 bytes of it in).
                        firsts += usize::from(h < offset + 12 + 128);
                    }
                    for m in got.all() {
                        assert!(
                            all.contains(&m),
                            "{name} cut in packet {i} after {keep} bytes: {m:?} is not a message of the capture"
                        );
                    }
                }
            }
            held[di] = held[di].max(start + len as u64);
        }
    }
    assert!(total > 50, "only {total} cuts fell in a message");
    assert!(
        firsts > 10,
        "only {firsts} cuts fell in a message's first chunk"
    );
}

/// The IPv4 packet of an Ethernet/IPv4 frame, without Ethernet padding.
fn ipv4_of(frame: &[u8]) -> Option<&[u8]> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[14] >> 4 != 4 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    frame.get(14..14 + total)
}

/// The same TCP segment in IPv6 (2001:db8::<IPv4 address>); the TCP
/// checksum is left as it was (the decoder does not check it, as captures
/// with checksum offload require).
fn ipv6_from(ip: &[u8]) -> Vec<u8> {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let seg = &ip[ihl..];
    let mut v = vec![0x60, 0, 0, 0];
    v.extend((seg.len() as u16).to_be_bytes());
    v.extend([6, ip[8]]);
    for a in [&ip[12..16], &ip[16..20]] {
        v.extend([0x20, 0x01, 0x0d, 0xb8]);
        v.extend([0; 8]);
        v.extend(a);
    }
    v.extend(seg);
    v
}

fn ether(et: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    v.extend(et.to_be_bytes());
    v.extend(payload);
    v
}

fn pppoe(proto: u16, inner: &[u8]) -> Vec<u8> {
    let mut v = vec![0x11, 0, 0x12, 0x34];
    v.extend(((inner.len() + 2) as u16).to_be_bytes());
    v.extend(proto.to_be_bytes());
    v.extend(inner);
    v
}

fn mpls(labels: &[u32], inner: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        let bottom = u32::from(i + 1 == labels.len());
        v.extend(((l << 12) | (bottom << 8) | 64).to_be_bytes());
    }
    v.extend(inner);
    v
}

/// An outer IPv4 header (10.0.0.1 → 10.0.0.2, checksum set) around `payload`.
fn outer_ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend(((20 + payload.len()) as u16).to_be_bytes());
    h.extend([0, 1, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    let sum = h
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h.extend(payload);
    h
}

/// Every Ethernet/IPv4 packet of `pkts` rewritten by `wrap(i, frame, ip)`
/// (others kept), the length on the wire grown by what was added.
fn rewrap(pkts: &[Pkt], wrap: Wrap) -> Vec<Pkt> {
    pkts.iter()
        .enumerate()
        .map(|(i, p)| match ipv4_of(&p.data) {
            Some(ip) => {
                let data = wrap(i, &p.data, ip);
                let grown = data.len() as i64 - p.data.len() as i64;
                Pkt {
                    orig: (i64::from(p.orig) + grown) as u32,
                    data,
                    ..p.clone()
                }
            }
            None => p.clone(),
        })
        .collect()
}

type Wrap = fn(usize, &[u8], &[u8]) -> Vec<u8>;

/// The encapsulations of captures from the field, alone and nested.
const ENCAPSULATIONS: [(&str, Wrap); 16] = [
    ("PPPoE IPv4", |_, _, ip| ether(0x8864, &pppoe(0x0021, ip))),
    ("PPPoE IPv6", |_, _, ip| {
        ether(0x8864, &pppoe(0x0057, &ipv6_from(ip)))
    }),
    ("VLAN + PPPoE", |_, _, ip| {
        let mut v = vec![0, 7, 0x88, 0x64];
        v.extend(pppoe(0x0021, ip));
        ether(0x8100, &v)
    }),
    ("MPLS 1 label", |_, _, ip| ether(0x8847, &mpls(&[1000], ip))),
    ("MPLS 2 labels", |_, _, ip| {
        ether(0x8847, &mpls(&[1000, 2000], ip))
    }),
    ("MPLS 1 label IPv6", |_, _, ip| {
        ether(0x8847, &mpls(&[1000], &ipv6_from(ip)))
    }),
    ("MPLS 2 labels IPv6", |_, _, ip| {
        ether(0x8847, &mpls(&[1000, 2000], &ipv6_from(ip)))
    }),
    ("MPLS over VLAN", |_, _, ip| {
        let mut v = vec![0, 7, 0x88, 0x47];
        v.extend(mpls(&[16, 17], ip));
        ether(0x8100, &v)
    }),
    ("GRE", |_, _, ip| {
        let gre = [&[0, 0, 0x08, 0x00][..], ip].concat();
        ether(0x0800, &outer_ipv4(47, &gre))
    }),
    ("GRE key + sequence", |i, _, ip| {
        let mut gre = vec![0x30, 0, 0x08, 0x00, 0, 0, 0, 42];
        gre.extend((i as u32).to_be_bytes());
        gre.extend(ip);
        ether(0x0800, &outer_ipv4(47, &gre))
    }),
    ("GRE checksum", |_, _, ip| {
        let gre = [&[0x80, 0, 0x08, 0x00, 0x12, 0x34, 0, 0][..], ip].concat();
        ether(0x0800, &outer_ipv4(47, &gre))
    }),
    ("GRE IPv6", |_, _, ip| {
        let gre = [&[0, 0, 0x86, 0xdd][..], &ipv6_from(ip)].concat();
        ether(0x0800, &outer_ipv4(47, &gre))
    }),
    ("GRE TEB", |_, frame, _| {
        let gre = [&[0, 0, 0x65, 0x58][..], frame].concat();
        ether(0x0800, &outer_ipv4(47, &gre))
    }),
    ("GRE in VLAN", |_, _, ip| {
        let gre = [&[0, 0, 0x08, 0x00][..], ip].concat();
        let v = [&[0, 9, 0x08, 0x00][..], &outer_ipv4(47, &gre)].concat();
        ether(0x8100, &v)
    }),
    ("VXLAN", |i, frame, _| {
        let mut udp = (40000 + (i % 100) as u16).to_be_bytes().to_vec();
        udp.extend(4789u16.to_be_bytes());
        udp.extend(((16 + frame.len()) as u16).to_be_bytes());
        udp.extend([0, 0]);
        udp.extend([0x08, 0, 0, 0, 0, 0x13, 0x89, 0]);
        udp.extend(frame);
        ether(0x0800, &outer_ipv4(17, &udp))
    }),
    ("VLAN + VXLAN + PPPoE", |i, _, ip| {
        let inner = ether(0x8864, &pppoe(0x0021, ip));
        let mut udp = (40000 + (i % 100) as u16).to_be_bytes().to_vec();
        udp.extend(4789u16.to_be_bytes());
        udp.extend(((16 + inner.len()) as u16).to_be_bytes());
        udp.extend([0, 0]);
        udp.extend([0x08, 0, 0, 0, 0, 0x13, 0x89, 0]);
        udp.extend(inner);
        let v = [&[0, 9, 0x08, 0x00][..], &outer_ipv4(17, &udp)].concat();
        ether(0x8100, &v)
    }),
];

/// Captures re-encapsulated in PPPoE, MPLS, GRE and VXLAN (as ISP access
/// links, provider cores, tunnels and overlay networks carry them, and a
/// SPAN port there captures them) decode message for message as the
/// source: they used to decode to nothing, and say nothing.
#[test]
fn encapsulated_captures_give_the_source_messages() {
    for name in SOURCES {
        let base = analyze_file(name);
        let (link, pkts, _) = source(name);
        assert_eq!(link, 1, "{name}: the sources are Ethernet captures");
        for (what, wrap) in ENCAPSULATIONS {
            let got = analyze(&write_pcap(link, &rewrap(&pkts, wrap), None)[..]);
            assert_eq!(got.all(), base.all(), "{name} in {what}");
            let not_decoded: Vec<_> = got
                .records
                .iter()
                .filter(|r| {
                    matches!(
                        r.kind,
                        RecordKind::Undecodable { .. }
                            | RecordKind::EndOfCapture {
                                undecodable: 1..,
                                ..
                            }
                    )
                })
                .collect();
            assert!(not_decoded.is_empty(), "{name} in {what}: {not_decoded:?}");
        }
    }
}

fn run_bin(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rtmptool"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Packets not understood never vanish: `dump` says at the end how many
/// and why; `diagnose` of a capture of which no packet decoded down to IP
/// gives no all-clear but exit 7 (bad input) with the reason; when some
/// did, it diagnoses them and warns about the rest.
#[test]
fn packets_not_understood_are_counted_and_named() {
    let name = "rtmp/pub_ffmpeg_h264aac_fast.pcap";
    let (link, pkts, _) = source(name);
    let dir = std::env::temp_dir().join(format!("rtmptool-encap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Every frame behind a local experimental EtherType.
    let unknown: Vec<Pkt> = pkts
        .iter()
        .map(|p| {
            let mut data = p.data.clone();
            data[12..14].copy_from_slice(&[0x88, 0xb5]);
            Pkt { data, ..p.clone() }
        })
        .collect();
    let n = unknown.len();
    let all_unknown = dir.join("all_unknown.pcap");
    std::fs::write(&all_unknown, write_pcap(link, &unknown, None)).unwrap();
    let f = all_unknown.to_str().unwrap();
    let why = format!(
        "{n} of {n} packet(s) not decoded: {n} in an encapsulation rtmptool does not decode (ethertype 0x88b5)"
    );
    // diagnose and ecn: no all-clear ("no fault found", "no RTMFP session
    // found", exit 0) for a capture they could not look into.
    for cmd in ["diagnose", "ecn"] {
        let (code, out, err) = run_bin(&[cmd, "--color", "never", f]);
        assert_eq!(code, Some(7), "{cmd}: {out}{err}");
        assert!(out.is_empty(), "{cmd}: {out}");
        assert!(err.contains(&why), "{cmd}: {err}");
    }
    let (code, out, _) = run_bin(&["dump", "--color", "never", f]);
    assert_eq!(code, Some(0));
    assert!(
        out.lines()
            .last()
            .unwrap()
            .ends_with(&format!("0 RTMP connection(s); {why}")),
        "{out}"
    );
    let (_, out, _) = run_bin(&["--json", "dump", f]);
    let end: Json = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(end["code"], "end_of_capture");
    assert_eq!(end["undecodable"], n);
    assert_eq!(end["ip_packets"], 0);
    assert_eq!(end["undecodable_reasons"][0]["packets"], n);

    // A link type the decoder does not know (USER0): the same.
    let user0 = dir.join("user0.pcap");
    std::fs::write(&user0, write_pcap(147, &pkts, None)).unwrap();
    let (code, out, err) = run_bin(&["diagnose", user0.to_str().unwrap()]);
    assert_eq!(code, Some(7), "{out}{err}");
    assert!(err.contains("unsupported link type 147"), "{err}");

    // Half of them not understood: diagnosed, with a warning that says so.
    let mixed: Vec<Pkt> = pkts
        .iter()
        .zip(&unknown)
        .flat_map(|(p, u)| [p.clone(), u.clone()])
        .collect();
    let mixed_path = dir.join("mixed.pcap");
    std::fs::write(&mixed_path, write_pcap(link, &mixed, None)).unwrap();
    let f = mixed_path.to_str().unwrap();
    let (code, out, err) = run_bin(&["diagnose", "--color", "never", f]);
    assert_eq!(code, Some(0), "{out}{err}");
    let warn = format!(
        "warning: {n} of {} packet(s) not decoded: {n} in an encapsulation rtmptool does not decode (ethertype 0x88b5)",
        2 * n
    );
    assert!(out.contains("no fault found in 1 RTMP connection"), "{out}");
    assert!(out.contains(&warn), "{out}");
    let (code, out, err) = run_bin(&["ecn", "--color", "never", f]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("no RTMFP session found"), "{out}");
    assert!(out.contains(&warn), "{out}");
    let (_, out, _) = run_bin(&["--json", "diagnose", f]);
    let warned = out.lines().any(|l| {
        let v: Json = serde_json::from_str(l).unwrap();
        v["type"] == "warning" && v["code"] == "undecodable"
    });
    assert!(warned, "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Whether each packet is the server's (its TCP source port is the port the
/// client's SYN went to).
fn from_server(link: u32, pkts: &[Pkt]) -> Vec<bool> {
    let tcp = |p: &Pkt| {
        let d = decode(rtmptool::capture::LinkType(link), &p.data).ok()?;
        match d.transport {
            Transport::Tcp(seg) => Some((d.src.port(), d.dst.port(), seg.flags)),
            _ => None,
        }
    };
    let server = pkts
        .iter()
        .filter_map(tcp)
        .find(|t| t.2.has(rtmptool::capture::TcpFlags::SYN))
        .map(|t| t.1)
        .unwrap();
    pkts.iter()
        .map(|p| tcp(p).is_some_and(|t| t.0 == server))
        .collect()
}

/// Two captures of one connection merged by time (a passive tap's two
/// ports, `mergecap` of per-direction captures) whose clocks disagree: the
/// server's packets shifted by a skew, so that its SYN+ACK and S0 come
/// before the client's SYN and C0, or the client's C2 before S1. And a
/// client SYN written after the client's first data (capture order is not
/// time order). The same messages as the source, the handshake decoded:
/// the late SYN had ended the connection as a port reuse (nothing after it
/// decoded, no warning), and S0 before C0 was taken for a mid-stream start.
#[test]
fn out_of_time_order_captures_give_the_source_messages() {
    for name in [
        "rtmp/play_ffmpeg_c128.pcap",
        "rtmp/pyclient_publish_c128.pcap",
        "rtmp/play_rtmpdump_c4096.pcap",
    ] {
        let base = analyze_file(name);
        let handshakes = |o: &Out| {
            o.records
                .iter()
                .filter(|r| matches!(r.kind, RecordKind::Handshake { .. }))
                .count()
        };
        assert_eq!(handshakes(&base), 6, "{name}");
        let (link, pkts, dirs) = source(name);
        let server = from_server(link, &pkts);
        let mut variants = Vec::new();
        for skew_us in [-1000i64, -300, 300] {
            let mut moved: Vec<Pkt> = pkts.clone();
            for (p, _) in moved.iter_mut().zip(&server).filter(|(_, s)| **s) {
                let ns = i128::from(p.sec) * 1_000_000_000
                    + i128::from(p.nsec)
                    + i128::from(skew_us) * 1000;
                p.sec = (ns / 1_000_000_000) as i64;
                p.nsec = (ns % 1_000_000_000) as u32;
            }
            // Stable, as mergecap: each side keeps its own order.
            moved.sort_by_key(|p| (p.sec, p.nsec));
            variants.push((format!("server skew {skew_us} us"), moved));
        }
        let first_c2s = dirs.iter().position(|d| *d == Some(Dir::C2s)).unwrap();
        let mut late_syn = pkts.clone();
        let syn = late_syn.remove(0);
        late_syn.insert(first_c2s, syn);
        variants.push(("client SYN after C0+C1".into(), late_syn));
        for (what, moved) in variants {
            let got = analyze(&write_pcap(link, &moved, None)[..]);
            assert!(
                got.all() == base.all(),
                "{name}, {what}: {} messages of {}, or others",
                got.all().len(),
                base.all().len()
            );
            assert_eq!(handshakes(&got), 6, "{name}, {what}");
            assert!(
                !got.records
                    .iter()
                    .any(|r| matches!(r.kind, RecordKind::MidStream)),
                "{name}, {what}: taken for a mid-stream start"
            );
        }
    }
}

/// Captures made with a short snaplen (`tcpdump -s 64`, `-s 66`, old
/// tcpdump's default 68 with TCP timestamps): a TCP header cut is said to be
/// cut by the snaplen (it was "malformed transport header"), and connections
/// of which no payload byte was captured are said to be (it was "0 RTMP
/// connection(s)" and "no fault found" without a word).
#[test]
fn short_snaplen_captures_say_what_the_snaplen_cut() {
    let name = "rtmp/pub_ffmpeg_bframes.pcap";
    let (link, pkts, _) = source(name);
    let dir = std::env::temp_dir().join(format!("rtmptool-snap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cut_header = "cut by the capture's snaplen inside the TCP header";
    let no_payload =
        "1 TCP connection(s) not decoded: the capture's snaplen cut every payload byte of them";
    // The source's TCP headers are 32 bytes (40 with the SYN's options):
    // 14 + 20 + 32 = 66 keeps every header of data segments, no payload.
    for (snap, header_cut, empty) in [(54, true, false), (64, true, false), (66, true, true)] {
        let path = dir.join(format!("snap{snap}.pcap"));
        std::fs::write(&path, write_pcap(link, &pkts, Some(snap))).unwrap();
        let f = path.to_str().unwrap();
        let (code, out, err) = run_bin(&["dump", "--color", "never", f]);
        assert_eq!(code, Some(0), "{snap}: {err}");
        assert_eq!(out.contains(cut_header), header_cut, "{snap}: {out}");
        assert!(!out.contains("malformed"), "{snap}: {out}");
        assert_eq!(out.contains(no_payload), empty, "{snap}: {out}");
        let (_, out, err) = run_bin(&["diagnose", "--color", "never", f]);
        assert_eq!(out.contains(no_payload), empty, "{snap}: {out}{err}");
        assert!(out.contains("warning:"), "{snap}: {out}{err}");
    }
}

/// A gzip-compressed capture (`gzip cap.pcapng`, which tshark reads), as a
/// file and on stdin: the same records as the plain one. It was "not a
/// pcap/pcapng file (starts with 1f 8b ...)".
#[test]
fn gzip_compressed_captures_decode_as_the_plain_ones() {
    use std::io::Write;
    let plain = testdata("rtmp/pyclient_amf3.pcap");
    let bytes = std::fs::read(&plain).unwrap();
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&bytes).unwrap();
    let gz = z.finish().unwrap();
    let dir = std::env::temp_dir().join(format!("rtmptool-gz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cap.pcap.gz");
    std::fs::write(&path, &gz).unwrap();
    for cmd in ["dump", "diagnose"] {
        let (code, want, _) = run_bin(&["--json", cmd, plain.to_str().unwrap()]);
        let (gz_code, got, err) = run_bin(&["--json", cmd, path.to_str().unwrap()]);
        assert_eq!((gz_code, &got), (code, &want), "{cmd} file: {err}");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rtmptool"))
            .args(["--json", cmd, "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Written from a thread: the output may fill its pipe meanwhile.
        let mut stdin = child.stdin.take().unwrap();
        let input = gz.clone();
        let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert_eq!(out.status.code(), code, "{cmd} stdin");
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{cmd} stdin");
    }
    let (_, out, _) = run_bin(&["--json", "dump", path.to_str().unwrap()]);
    assert!(out.lines().count() > 50, "{out}");
}

/// One capture of two taps (or a pcapng of two interfaces) in arrival
/// order, whose clocks differ: the server's packets stamped 5 s before or
/// after the client's. Its reordered segments are placed as with one clock;
/// they were declared lost (90 gaps, 150 messages missing) when the
/// other direction's packet was 5 s "later".
#[test]
fn two_clocks_in_one_capture_are_no_loss() {
    let src = analyze_file("rtmp/play_ffmpeg_c4096.pcap");
    let name = "rtmp/hard_s2c_reorder.pcap";
    let (link, pkts, _) = source(name);
    let server = from_server(link, &pkts);
    for skew in [-5i64, 5, 86_400] {
        let moved: Vec<Pkt> = pkts
            .iter()
            .zip(&server)
            .map(|(p, &s)| Pkt {
                sec: p.sec + if s { skew } else { 0 },
                ..p.clone()
            })
            .collect();
        let got = analyze(&write_pcap(link, &moved, None)[..]);
        assert!(got.warnings("gap").is_empty(), "skew {skew} s: gaps");
        assert!(
            got.all() == src.all(),
            "skew {skew} s: {} messages",
            got.all().len()
        );
    }
}
