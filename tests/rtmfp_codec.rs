//! The RTMFP codec (library level) on every capture of `testdata/rtmfp`,
//! against the per-frame ground truth beside it (`*.truth.jsonl`, see the
//! README there): session id, key used, sequence number, checksum and HMAC
//! verdicts, header fields, the decrypted margin and packet bytes, padding,
//! and the chunk list.

use std::fs::File;
use std::io::{BufRead, BufReader};

use rtmptool::capture::{Reader, Udp, decode};
use rtmptool::proto::rtmfp::datagram::open;
use rtmptool::proto::rtmfp::keylog::KeyLog;
use sha2::{Digest, Sha256};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub const CAPTURES: &[&str] = &[
    "ecn_ce_all_wrap",
    "ecn_ce_every10th_c2s",
    "fcclient_echoserver",
    "flash_cksum_g2_host",
    "flash_hmac_sseq_g16_anc",
    "flash_sseq_nohmac_g14_fp",
    "ihello_probe_tcserver",
    "plain_v4",
    "redirect_static",
    "tc_publish_play_rtmp_relay",
];

fn check(name: &str) -> usize {
    let dir = "testdata/rtmfp";
    let truth: Vec<serde_json::Value> =
        BufReader::new(File::open(format!("{dir}/{name}.truth.jsonl")).unwrap())
            .lines()
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect();
    let keys = std::fs::read_to_string(format!("{dir}/{name}.keys"))
        .map(|t| KeyLog::parse(&t).unwrap())
        .unwrap_or_default();
    let mut r = Reader::new(File::open(format!("{dir}/{name}.pcap")).unwrap()).unwrap();
    let mut ti = truth.iter().peekable();
    let mut buf = Vec::new();
    let mut n = 0;
    while let Some(p) = r.next_packet().unwrap() {
        let d = decode(p.link_type, p.data).unwrap();
        let Some(u) = Udp::from_decoded(&d, p.frame, p.time) else {
            continue;
        };
        let t = ti.next().expect("more UDP frames than truth");
        let f = p.frame;
        assert_eq!(t["frame"].as_u64().unwrap(), f, "{name}");
        let sid = rtmptool::proto::rtmfp::crypto::unscramble_sid(u.payload);
        let ks = keys.keys_for(u.src, u.dst, sid);
        let o = open(u.payload, ks, &mut buf).unwrap_or_else(|| panic!("{name} frame {f}: sealed"));
        let w = |k: &str| t[k].clone();
        assert_eq!(hex(&o.sid), w("ssid").as_str().unwrap(), "{name} {f} ssid");
        assert_eq!(o.key.as_str(), w("key").as_str().unwrap(), "{name} {f} key");
        assert_eq!(o.sseq, w("sseq").as_u64(), "{name} {f} sseq");
        assert_eq!(
            o.checksum.as_str(),
            w("checksum").as_str().unwrap(),
            "{name} {f}"
        );
        assert_eq!(o.hmac.as_str(), w("hmac").as_str().unwrap(), "{name} {f}");
        assert_eq!(
            hex(&o.margin),
            w("margin_hex").as_str().unwrap(),
            "{name} {f}"
        );
        let pk = o.packet.as_ref().unwrap();
        assert_eq!(
            u64::from(pk.flags),
            w("flags").as_u64().unwrap(),
            "{name} {f}"
        );
        assert_eq!(u64::from(pk.mode()), w("mode").as_u64().unwrap());
        assert_eq!(pk.ts.map(u64::from), w("ts").as_u64(), "{name} {f} ts");
        assert_eq!(pk.tse.map(u64::from), w("tse").as_u64(), "{name} {f} tse");
        assert_eq!(
            pk.padding_len as u64,
            w("padding_len").as_u64().unwrap(),
            "{name} {f} padding"
        );
        // The packet bytes: flags through the last chunk.
        let bytes = &o.plain[..pk.len];
        match w("packet_hex").as_str() {
            Some(h) => assert_eq!(hex(bytes), h, "{name} {f} packet"),
            None => assert_eq!(
                hex(&Sha256::digest(bytes)),
                w("packet_sha256").as_str().unwrap(),
                "{name} {f} packet sha256"
            ),
        }
        let want: Vec<(String, u64)> = w("chunks")
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["type"].as_str().unwrap().to_string(),
                    c["len"].as_u64().unwrap(),
                )
            })
            .collect();
        let got: Vec<(String, u64)> = pk
            .chunks
            .iter()
            .map(|c| (format!("{:#04x}", c.ty), u64::from(c.len)))
            .collect();
        assert_eq!(got, want, "{name} {f} chunks");
        n += 1;
    }
    assert!(ti.next().is_none(), "{name}: fewer UDP frames than truth");
    n
}

#[test]
fn every_capture_matches_truth() {
    for c in CAPTURES {
        assert!(check(c) > 0, "{c}");
    }
}

/// Key derivation (RFC 7425 §4.6) makes one end's encrypt key the other's
/// decrypt key, and one end's HMAC send key the other's receive key: every
/// key log with both ends of a session says so, and its framing flags are
/// mirrored too. (The logs cannot reproduce the keys themselves: the
/// Diffie-Hellman private values never leave the processes; the derivation
/// is checked end to end by the in-memory handshake tests.)
#[test]
fn key_logs_are_mirrored_per_session() {
    let mut pairs = 0;
    for c in CAPTURES {
        let Ok(t) = std::fs::read_to_string(format!("testdata/rtmfp/{c}.keys")) else {
            continue;
        };
        let log = KeyLog::parse(&t).unwrap();
        for a in &log.entries {
            let Some(b) = log
                .entries
                .iter()
                .find(|b| b.near == a.far && b.far == a.near)
            else {
                continue;
            };
            assert_eq!(a.enc_key, b.dec_key, "{c}");
            assert_eq!(a.near_ssid, b.far_ssid, "{c}");
            assert_eq!(a.tx.hmac.map(|h| h.1), b.rx.hmac.map(|h| h.1), "{c}");
            assert_eq!(a.tx.hmac.map(|h| h.0), b.rx.hmac.map(|h| h.0), "{c}");
            assert_eq!(a.tx.sseq, b.rx.sseq, "{c}");
            pairs += 1;
        }
    }
    assert!(pairs >= 10, "{pairs}");
}
