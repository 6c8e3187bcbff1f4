//! RTMFP captures rewritten into variants the shared set does not have:
//! IPv6, IP fragments (IPv4 and IPv6, out of order), snaplen-truncated
//! frames, ECN bleached between the legs of a relayed session, and a session
//! whose ECN Reports were removed (re-encrypted with the session key). The
//! decoder must give the same packets as from the original capture, and
//! `ecn` the right verdicts. The `ecn` results of the original relay
//! captures are checked against their `.ecn.json`.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use rtmptool::capture::{Reader, Udp, decode};
use rtmptool::proto::rtmfp::chunk::{ChunkBody, decode_packet, write_chunk, write_header};
use rtmptool::proto::rtmfp::crypto::unscramble_sid;
use rtmptool::proto::rtmfp::crypto::{DirKeys, seal_flash};
use rtmptool::proto::rtmfp::datagram::open;
use rtmptool::proto::rtmfp::keylog::KeyLog;

struct Frame {
    sec: u32,
    usec: u32,
    src: SocketAddr,
    dst: SocketAddr,
    ecn: u8,
    payload: Vec<u8>,
}

fn read(path: &str) -> Vec<Frame> {
    let mut r = Reader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        let d = decode(p.link_type, p.data).unwrap();
        if let Some(u) = Udp::from_decoded(&d, p.frame, p.time) {
            out.push(Frame {
                sec: u.time.sec as u32,
                usec: u.time.nsec / 1000,
                src: u.src,
                dst: u.dst,
                ecn: u.ecn,
                payload: u.payload.to_vec(),
            });
        }
    }
    out
}

fn cksum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend(src.port().to_be_bytes());
    u.extend(dst.port().to_be_bytes());
    u.extend(((payload.len() + 8) as u16).to_be_bytes());
    u.extend([0, 0]);
    u.extend_from_slice(payload);
    u
}

/// Ethernet frames (one or more fragments) carrying the datagram.
fn ip_frames(f: &Frame, v6: bool, frag: Option<usize>, id: u32) -> Vec<Vec<u8>> {
    let (src, dst) = if v6 {
        let m = |a: SocketAddr| SocketAddr::new("::1".parse().unwrap(), a.port());
        (m(f.src), m(f.dst))
    } else {
        (f.src, f.dst)
    };
    let body = udp(src, dst, &f.payload);
    let piece = frag.filter(|&n| n < body.len()).unwrap_or(body.len());
    let mut out = Vec::new();
    let mut off = 0;
    while off < body.len() {
        let end = (off + piece).min(body.len());
        let more = end < body.len();
        let chunk = &body[off..end];
        let whole = frag.is_none() || (off == 0 && !more);
        let mut e = vec![0u8; 12];
        if v6 {
            e.extend([0x86, 0xdd]);
            let mut h = vec![0x60, f.ecn << 4, 0, 0];
            let ext = if whole { 0 } else { 8 };
            h.extend(((chunk.len() + ext) as u16).to_be_bytes());
            h.push(if whole { 17 } else { 44 });
            h.push(64);
            let (IpAddr::V6(s), IpAddr::V6(d)) = (src.ip(), dst.ip()) else {
                unreachable!()
            };
            h.extend(s.octets());
            h.extend(d.octets());
            if !whole {
                h.extend([17, 0]);
                h.extend((((off as u16) & !7) | u16::from(more)).to_be_bytes());
                h.extend(id.to_be_bytes());
            }
            e.extend(h);
        } else {
            e.extend([0x08, 0x00]);
            let mut h = vec![0x45, f.ecn];
            h.extend(((chunk.len() + 20) as u16).to_be_bytes());
            h.extend((id as u16).to_be_bytes());
            let fo = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
            h.extend(fo.to_be_bytes());
            h.extend([64, 17, 0, 0]);
            let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
                unreachable!()
            };
            h.extend(s.octets());
            h.extend(d.octets());
            let c = cksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            e.extend(h);
        }
        e.extend_from_slice(chunk);
        out.push(e);
        off = end;
    }
    out
}

fn write(path: &Path, frames: &[(u32, u32, Vec<u8>, usize)]) {
    let mut f = Vec::new();
    f.extend(0xa1b2c3d4u32.to_le_bytes());
    f.extend(2u16.to_le_bytes());
    f.extend(4u16.to_le_bytes());
    f.extend([0; 8]);
    f.extend(65535u32.to_le_bytes());
    f.extend(1u32.to_le_bytes());
    for (s, u, d, orig) in frames {
        f.extend(s.to_le_bytes());
        f.extend(u.to_le_bytes());
        f.extend((d.len() as u32).to_le_bytes());
        f.extend((*orig as u32).to_le_bytes());
        f.extend_from_slice(d);
    }
    std::fs::write(path, f).unwrap();
}

fn dump(pcap: &Path, keys: &Path) -> Vec<serde_json::Value> {
    let out = common::bin()
        .args(["--json", "dump"])
        .arg(pcap)
        .arg("--keylog")
        .arg(keys)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["type"] == "rtmfp_packet")
        .collect()
}

/// What must not change with the IP layer.
fn essence(r: &serde_json::Value) -> String {
    let mut r = r.clone();
    for k in ["src", "dst", "frame", "conn", "time"] {
        r.as_object_mut().unwrap().remove(k);
    }
    r.to_string()
}

#[test]
fn ipv6_and_fragments_decode_like_the_original() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["flash_hmac_sseq_g16_anc", "flash_cksum_g2_host", "plain_v4"] {
        let base = format!("testdata/rtmfp/{name}");
        let keys = Path::new(&format!("{base}.keys")).to_path_buf();
        let want: Vec<String> = dump(Path::new(&format!("{base}.pcap")), &keys)
            .iter()
            .map(essence)
            .collect();
        let frames = read(&format!("{base}.pcap"));
        let keys6 = dir.path().join(format!("{name}.v6.keys"));
        std::fs::write(
            &keys6,
            std::fs::read_to_string(&keys)
                .unwrap()
                .replace("127.0.0.1:", "[::1]:"),
        )
        .unwrap();
        for (v6, frag) in [(true, None), (true, Some(304)), (false, Some(200))] {
            let mut out = Vec::new();
            for (i, f) in frames.iter().enumerate() {
                let mut fr = ip_frames(f, v6, frag, i as u32 + 1);
                // Last fragment first: reassembly must not depend on order.
                fr.rotate_right(1);
                for d in fr {
                    let n = d.len();
                    out.push((f.sec, f.usec, d, n));
                }
            }
            let p = dir.path().join(format!("{name}-{v6}-{frag:?}.pcap"));
            write(&p, &out);
            let got: Vec<String> = dump(&p, if v6 { &keys6 } else { &keys })
                .iter()
                .map(essence)
                .collect();
            assert_eq!(got, want, "{name} v6 {v6} fragments {frag:?}");
        }
    }
}

#[test]
fn snaplen_truncated_frames_do_not_decode_as_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let base = "testdata/rtmfp/flash_cksum_g2_host";
    let frames = read(&format!("{base}.pcap"));
    let mut out = Vec::new();
    for f in &frames {
        for d in ip_frames(f, false, None, 1) {
            let n = d.len();
            out.push((f.sec, f.usec, d[..n.min(120)].to_vec(), n));
        }
    }
    let p = dir.path().join("cut.pcap");
    write(&p, &out);
    let recs = dump(&p, Path::new(&format!("{base}.keys")));
    // Frames that fit (payload <= 78 bytes) still decode; the others say so.
    for (r, f) in recs.iter().zip(&frames) {
        if f.payload.len() + 42 <= 120 {
            assert_eq!(r["encrypted"], false, "{r}");
        } else {
            assert_eq!(r["truncated"], true, "{r}");
            assert!(r.get("chunks").is_none());
        }
    }
    assert!(!recs.is_empty());
    // ecn says why they could not be opened: the snaplen, not a missing key.
    let (_, legs) = ecn(&p, Path::new(&format!("{base}.keys")));
    let text = serde_json::to_string(&legs).unwrap();
    assert!(text.contains("cut by the capture's snaplen"), "{text}");
    assert!(!text.contains("give --keylog"), "{text}");
}

fn ecn(pcap: &Path, keys: &Path) -> (i32, Vec<serde_json::Value>) {
    let out = common::bin()
        .args(["--json", "ecn"])
        .arg(pcap)
        .arg("--keylog")
        .arg(keys)
        .output()
        .unwrap();
    let recs = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out.status.code().unwrap(), recs)
}

fn verdict<'a>(r: &'a serde_json::Value, code: &str) -> Vec<&'a str> {
    r["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["code"] == code)
        .map(|v| v["verdict"].as_str().unwrap())
        .collect()
}

#[test]
fn ecn_matches_the_relay_summaries() {
    for name in ["ecn_ce_every10th_c2s", "ecn_ce_all_wrap"] {
        let base = format!("testdata/rtmfp/{name}");
        let (code, recs) = ecn(
            Path::new(&format!("{base}.pcap")),
            Path::new(&format!("{base}.keys")),
        );
        assert_eq!(code, 0, "{name}: {recs:?}");
        let want: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{base}.ecn.json")).unwrap())
                .unwrap();
        let want = want.as_object().unwrap();
        assert_eq!(recs.len(), want.len());
        for r in &recs {
            assert_eq!(r["type"], "ecn_session");
            let w = &want[r["leg"].as_str().unwrap()];
            for k in [
                "packets",
                "user_data_packets",
                "last_ect_user_data_frame",
                "first_not_ect_user_data_frame",
                "ecn_reports",
            ] {
                assert_eq!(r[k], w[k], "{name} {} {k}", r["leg"]);
            }
            assert_eq!(r["ce"], w["packets"]["ce"]);
            assert!(!verdict(r, "reports_match_ce").contains(&"fault"));
            assert_eq!(verdict(r, "marks_only_user_data"), ["ok"]);
        }
        // The relay marked CE: congestion marking, not a fault.
        assert!(
            recs.iter()
                .any(|r| verdict(r, "relay_marks_ce") == ["info"])
        );
    }
}

#[test]
fn ecn_bleached_between_legs_is_a_fault() {
    let dir = tempfile::tempdir().unwrap();
    let base = "testdata/rtmfp/ecn_ce_every10th_c2s";
    let mut out = Vec::new();
    for mut f in read(&format!("{base}.pcap")) {
        // The relay's leg to the server loses every mark.
        if f.src.port() == 19421 {
            f.ecn = 0;
        }
        for d in ip_frames(&f, false, None, 1) {
            let n = d.len();
            out.push((f.sec, f.usec, d, n));
        }
    }
    let p = dir.path().join("bleached.pcap");
    write(&p, &out);
    let (code, recs) = ecn(&p, Path::new(&format!("{base}.keys")));
    assert_eq!(code, 8);
    let up = recs
        .iter()
        .find(|r| r["leg"] == "127.0.0.1:19410 -> 127.0.0.1:19420")
        .unwrap();
    assert_eq!(verdict(up, "relay_bleaches_ecn"), ["fault"]);
    assert_eq!(up["transitions"]["ect0->not_ect"], 311);
    // The server's reports now claim CE it never got.
    let down = recs
        .iter()
        .find(|r| r["leg"] == "127.0.0.1:19400 -> 127.0.0.1:19421")
        .unwrap();
    assert_eq!(verdict(down, "reports_match_ce"), ["fault"]);
    assert_eq!(verdict(down, "report_without_marks"), ["fault"]);
}

#[test]
fn ecn_without_reports_sender_must_stop_marking() {
    // Remove every ECN Report from a session (re-sealed with its key): the
    // client, which really got reports, kept marking: a fault here.
    let dir = tempfile::tempdir().unwrap();
    let base = "testdata/rtmfp/flash_cksum_g2_host";
    let keys = KeyLog::parse(&std::fs::read_to_string(format!("{base}.keys")).unwrap()).unwrap();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for mut f in read(&format!("{base}.pcap")) {
        let sid = unscramble_sid(&f.payload);
        let ks = keys.keys_for(f.src, f.dst, sid).to_vec();
        let o = open(&f.payload, &ks, &mut buf).unwrap();
        if o.key.as_str() == "session" {
            let pk = decode_packet(&o.plain).unwrap();
            if pk
                .chunks
                .iter()
                .any(|c| matches!(c.body, ChunkBody::EcnReport { .. }))
            {
                let body = &o.plain[..];
                let mut p = Vec::new();
                write_header(&mut p, pk.flags, pk.ts, pk.tse);
                let mut at =
                    1 + 2 * usize::from(pk.ts.is_some()) + 2 * usize::from(pk.tse.is_some());
                for c in &pk.chunks {
                    let n = 3 + usize::from(c.len);
                    if !matches!(c.body, ChunkBody::EcnReport { .. }) {
                        write_chunk(&mut p, c.ty, &body[at + 3..at + n]);
                    }
                    at += n;
                }
                let k: &DirKeys = &ks[0];
                f.payload = seal_flash(sid, &p, 0, k);
            }
        }
        for d in ip_frames(&f, false, None, 1) {
            let n = d.len();
            out.push((f.sec, f.usec, d, n));
        }
    }
    let p = dir.path().join("noreports.pcap");
    write(&p, &out);
    let (code, recs) = ecn(&p, Path::new(&format!("{base}.keys")));
    assert_eq!(code, 8);
    let c2s = recs.iter().find(|r| r["dir"] == "c2s").unwrap();
    assert_eq!(c2s["ecn_reports"], serde_json::json!([]));
    assert_eq!(verdict(c2s, "kept_marking_without_reports"), ["fault"]);
    assert_eq!(verdict(c2s, "path_bleaches_ecn"), ["fault"]);
}

#[test]
fn a_reconnect_on_the_same_addresses_is_a_new_session() {
    let dir = tempfile::tempdir().unwrap();
    let base = "testdata/rtmfp/flash_cksum_g2_host";
    let frames = read(&format!("{base}.pcap"));
    let mut out = Vec::new();
    for shift in [0u32, 60] {
        for f in &frames {
            for d in ip_frames(f, false, None, 1) {
                let n = d.len();
                out.push((f.sec + shift, f.usec, d, n));
            }
        }
    }
    let p = dir.path().join("twice.pcap");
    write(&p, &out);
    let out = common::bin()
        .args(["--json", "dump", "--stats"])
        .arg(&p)
        .arg("--keylog")
        .arg(format!("{base}.keys"))
        .output()
        .unwrap();
    let recs: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stats: Vec<_> = recs.iter().filter(|r| r["type"] == "rtmfp_stats").collect();
    assert_eq!(stats.len(), 2);
    for s in stats {
        let n = s["c2s"]["packets"].as_u64().unwrap() + s["s2c"]["packets"].as_u64().unwrap();
        assert_eq!(n as usize, frames.len());
        assert_eq!(s["closed"], "Close by initiator, CloseAck by responder");
    }
}

/// Datagrams duplicated (by the capture or the network: the same bytes
/// again; a retransmission is a new datagram): dump decodes each once and
/// says which are copies, its flow counts are the original's, and ecn
/// counts a copy's CE mark once, as the receiver does. They were counted as
/// retransmissions and as CE marks the reports "missed" (a false fault).
#[test]
fn duplicated_datagrams_are_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    for (name, every) in [
        ("ecn_ce_every10th_c2s", 5usize),
        ("flash_hmac_sseq_g16_anc", 3),
        ("ecn_ce_all_wrap", 7),
    ] {
        let base = format!("testdata/rtmfp/{name}");
        let keys = Path::new(&format!("{base}.keys")).to_path_buf();
        let frames = read(&format!("{base}.pcap"));
        let mut out = Vec::new();
        let mut copies = 0;
        for (i, f) in frames.iter().enumerate() {
            for d in ip_frames(f, false, None, i as u32 + 1) {
                let n = d.len();
                out.push((f.sec, f.usec, d.clone(), n));
                if i % every == every - 1 {
                    out.push((f.sec, f.usec, d, n));
                    copies += 1;
                }
            }
        }
        let p = dir.path().join(format!("{name}-dup.pcap"));
        write(&p, &out);
        let orig_path = format!("{base}.pcap");
        let orig = Path::new(&orig_path);
        let want: Vec<String> = dump(orig, &keys).iter().map(essence).collect();
        let got = dump(&p, &keys);
        let dups = got.iter().filter(|r| r["duplicate"] == true).count();
        assert_eq!(dups, copies, "{name}");
        let got: Vec<String> = got
            .iter()
            .filter(|r| r["duplicate"] != true)
            .map(essence)
            .collect();
        assert_eq!(got, want, "{name}: the originals decode as before");
        // The stats: as the original's, plus the copies said.
        let stats = |pcap: &Path| {
            let o = common::bin()
                .args(["--json", "dump", "--stats", "--keylog"])
                .arg(&keys)
                .arg(pcap)
                .output()
                .unwrap();
            String::from_utf8(o.stdout)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .filter(|r| r["type"] == "rtmfp_stats")
                .collect::<Vec<_>>()
        };
        let (a, b) = (stats(orig), stats(&p));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            for d in ["c2s", "s2c"] {
                assert_eq!(x[d]["flows"], y[d]["flows"], "{name} {d}");
                assert_eq!(x[d]["ecn_reports"], y[d]["ecn_reports"], "{name} {d}");
            }
        }
        if name.starts_with("ecn") {
            let (c0, r0) = ecn(orig, &keys);
            let (c1, r1) = ecn(&p, &keys);
            assert_eq!(c1, c0, "{name}: {r1:?}");
            for (x, y) in r0.iter().zip(&r1) {
                assert_eq!(x["ce"], y["ce"], "{name}");
                assert_eq!(x["verdicts"], y["verdicts"], "{name}");
            }
        }
    }
}

/// A key log line whose HMAC key is right and decryption key wrong (a
/// mixed-up log): what it decrypts is noise, which must not be shown as
/// the packet ("hmac ok" and garbage chunks); the packet does not open,
/// and with the right line after the wrong one it opens with that.
#[test]
fn a_wrong_decryption_key_beside_a_right_hmac_key_opens_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let base = "testdata/rtmfp/flash_hmac_sseq_g16_anc";
    let pcap = Path::new(&format!("{base}.pcap")).to_path_buf();
    let keys = std::fs::read_to_string(format!("{base}.keys")).unwrap();
    let want: Vec<String> = dump(&pcap, Path::new(&format!("{base}.keys")))
        .iter()
        .map(essence)
        .collect();
    // Each session line with its enc_key and dec_key (fields 4 and 5)
    // flipped in one bit: the HMAC keys stay right.
    let broken: Vec<String> = keys
        .lines()
        .map(|l| {
            if !l.starts_with("RTMFP_SESSION") {
                return l.to_owned();
            }
            let mut f: Vec<String> = l.split(' ').map(str::to_owned).collect();
            for i in [3, 4] {
                let b = u8::from_str_radix(&f[i][..2], 16).unwrap() ^ 1;
                f[i] = format!("{b:02x}{}", &f[i][2..]);
            }
            f.join(" ")
        })
        .collect();
    let only_wrong = dir.path().join("wrong.keys");
    std::fs::write(&only_wrong, broken.join("\n")).unwrap();
    let got = dump(&pcap, &only_wrong);
    let opened_with_session_key = got.iter().filter(|r| r["key"] == "session").count();
    assert_eq!(opened_with_session_key, 0, "{got:?}");
    let failed = got
        .iter()
        .filter(|r| {
            r["encrypted"] == true
                && r["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("do not open"))
        })
        .count();
    assert!(failed > 20, "{failed}");
    // The wrong line first, the right one after: as with the right log.
    let both = dir.path().join("both.keys");
    std::fs::write(&both, format!("{}\n{keys}", broken.join("\n"))).unwrap();
    let got: Vec<String> = dump(&pcap, &both).iter().map(essence).collect();
    assert_eq!(got, want);
}

/// One leg of the relayed sessions alone (a capture at the client, or at
/// the server): the relay's CE marks are made after the capture point, so
/// reports count CE that never passed it. That is ECN working, said as
/// info, not a fault (exit 0); the other verdicts are as with both legs.
#[test]
fn one_leg_alone_is_not_a_fault() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["ecn_ce_every10th_c2s", "ecn_ce_all_wrap"] {
        let base = format!("testdata/rtmfp/{name}");
        let keys = Path::new(&format!("{base}.keys")).to_path_buf();
        let frames = read(&format!("{base}.pcap"));
        // Leg A: client 19410 <-> relay 19420; leg B: relay 19421 <-> server 19400.
        for (leg, port) in [("a", 19420u16), ("b", 19421)] {
            let mut out = Vec::new();
            for (i, f) in frames.iter().enumerate() {
                if f.src.port() != port && f.dst.port() != port {
                    continue;
                }
                for d in ip_frames(f, false, None, i as u32 + 1) {
                    let n = d.len();
                    out.push((f.sec, f.usec, d, n));
                }
            }
            assert!(out.len() > 100, "{name} leg {leg}: {}", out.len());
            let p = dir.path().join(format!("{name}-{leg}.pcap"));
            write(&p, &out);
            let (code, recs) = ecn(&p, &keys);
            assert_eq!(code, 0, "{name} leg {leg}: {recs:?}");
            for r in &recs {
                let faults: Vec<_> = r["verdicts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|v| v["verdict"] == "fault")
                    .collect();
                assert!(faults.is_empty(), "{name} leg {leg}: {faults:?}");
            }
        }
    }
}
