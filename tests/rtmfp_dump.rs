//! `dump --json --keylog` on every capture of `testdata/rtmfp`: one
//! `rtmfp_packet` record per UDP frame, equal to the ground truth
//! (`*.truth.jsonl`): addresses, ECN/DSCP, session id, key, sequence
//! number, checksum/HMAC verdicts, header fields, margin, padding, and every
//! chunk with its decoded fields. Also: without keys session packets are
//! reported encrypted with what is visible; RTMP inside tcserver's flows is
//! decoded as RTMP messages; `--stats` per session.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader};

const CAPTURES: &[&str] = &[
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

fn run(args: &[&str]) -> Vec<serde_json::Value> {
    let out = common::bin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn truth(name: &str) -> Vec<serde_json::Value> {
    BufReader::new(File::open(format!("testdata/rtmfp/{name}.truth.jsonl")).unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect()
}

#[test]
fn every_packet_and_chunk_matches_truth() {
    for name in CAPTURES {
        let pcap = format!("testdata/rtmfp/{name}.pcap");
        let keys = format!("testdata/rtmfp/{name}.keys");
        let mut args = vec!["--json", "dump", &pcap[..]];
        if std::path::Path::new(&keys).exists() {
            args.extend(["--keylog", &keys[..]]);
        }
        let recs: Vec<_> = run(&args)
            .into_iter()
            .filter(|r| r["type"] == "rtmfp_packet")
            .collect();
        let t = truth(name);
        assert_eq!(recs.len(), t.len(), "{name}: packets");
        for (r, t) in recs.iter().zip(&t) {
            let f = &t["frame"];
            assert_eq!(&r["frame"], f, "{name}");
            for (ours, theirs) in [
                ("src", "src"),
                ("dst", "dst"),
                ("ecn", "ecn"),
                ("dscp", "dscp"),
                ("udp_len", "udp_payload_len"),
                ("session_id", "ssid"),
                ("key", "key"),
                ("sseq", "sseq"),
                ("checksum", "checksum"),
                ("hmac", "hmac"),
                ("flags", "flags"),
                ("mode", "mode"),
                ("tc", "tc"),
                ("tcr", "tcr"),
                ("ts", "ts"),
                ("tse", "tse"),
                ("margin_hex", "margin_hex"),
                ("padding_len", "padding_len"),
            ] {
                assert_eq!(r[ours], t[theirs], "{name} frame {f} {ours}");
            }
            let (rc, tc) = (
                r["chunks"].as_array().unwrap(),
                t["chunks"].as_array().unwrap(),
            );
            assert_eq!(rc.len(), tc.len(), "{name} frame {f} chunks");
            for (a, b) in rc.iter().zip(tc) {
                for k in ["type", "name", "len"] {
                    assert_eq!(a[k], b[k], "{name} frame {f} chunk {k}");
                }
                for (k, v) in b["fields"].as_object().unwrap() {
                    assert_eq!(
                        &a["fields"][k], v,
                        "{name} frame {f} {} field {k}",
                        b["name"]
                    );
                }
            }
        }
    }
}

#[test]
fn without_keys_session_packets_are_reported_encrypted() {
    let recs = run(&["--json", "dump", "testdata/rtmfp/flash_cksum_g2_host.pcap"]);
    let t = truth("flash_cksum_g2_host");
    let pk: Vec<_> = recs
        .iter()
        .filter(|r| r["type"] == "rtmfp_packet")
        .collect();
    assert_eq!(pk.len(), t.len());
    for (r, t) in pk.iter().zip(&t) {
        assert_eq!(r["session_id"], t["ssid"]);
        assert_eq!(r["udp_len"], t["udp_payload_len"]);
        if t["key"] == "session" {
            assert_eq!(r["encrypted"], true, "frame {}", t["frame"]);
        } else {
            assert_eq!(r["key"], "default");
        }
    }
}

#[test]
fn rtmp_inside_rtmfp_is_decoded() {
    let recs = run(&[
        "--json",
        "dump",
        "testdata/rtmfp/tc_publish_play_rtmp_relay.pcap",
        "--keylog",
        "testdata/rtmfp/tc_publish_play_rtmp_relay.keys",
    ]);
    let cmds: Vec<String> = recs
        .iter()
        .filter(|r| r["type"] == "message" && r["conn"].as_str().unwrap().contains(":19401"))
        .filter_map(|r| r["command"].as_str().map(String::from))
        .collect();
    for want in ["connect", "_result", "createStream", "publish", "onStatus"] {
        assert!(cmds.iter().any(|c| c == want), "{want} in {cmds:?}");
    }
    let media = recs
        .iter()
        .filter(|r| r["type"] == "message" && (r["msg_type"] == 8 || r["msg_type"] == 9))
        .filter(|r| r["conn"].as_str().unwrap().contains(":19401"))
        .count();
    assert!(media > 10, "{media} media messages");
}

#[test]
fn stats_per_session() {
    let recs = run(&[
        "--json",
        "dump",
        "--stats",
        "testdata/rtmfp/flash_hmac_sseq_g16_anc.pcap",
        "--keylog",
        "testdata/rtmfp/flash_hmac_sseq_g16_anc.keys",
    ]);
    let s = recs.iter().find(|r| r["type"] == "rtmfp_stats").unwrap();
    let t = truth("flash_hmac_sseq_g16_anc");
    let c2s = t.iter().filter(|x| x["src"] == "127.0.0.1:19410").count();
    assert_eq!(s["c2s"]["packets"], c2s);
    assert_eq!(s["s2c"]["packets"], t.len() - c2s);
    let flows = s["c2s"]["flows"].as_array().unwrap();
    let reject = flows.iter().find(|f| f["metadata"] == "reject").unwrap();
    assert_eq!(reject["exception"], 42);
    assert_eq!(s["closed"], "Close by initiator, CloseAck by responder");
}

#[test]
fn wrong_keys_are_told_apart_from_missing_keys() {
    let dir = tempfile::tempdir().unwrap();
    let keys = std::fs::read_to_string("testdata/rtmfp/flash_cksum_g2_host.keys").unwrap();
    // Every AES key one bit off: no session packet opens, and each says why.
    let bad: String = keys
        .lines()
        .map(|l| {
            if l.starts_with("RTMFP_SESSION") {
                let mut w: Vec<String> = l.split(' ').map(String::from).collect();
                for i in [3, 4] {
                    let c = if w[i].starts_with('0') { "1" } else { "0" };
                    w[i].replace_range(0..1, c);
                }
                w.join(" ")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let p = dir.path().join("bad.keys");
    std::fs::write(&p, bad).unwrap();
    let recs = run(&[
        "--json",
        "dump",
        "testdata/rtmfp/flash_cksum_g2_host.pcap",
        "--keylog",
        p.to_str().unwrap(),
    ]);
    let sealed: Vec<_> = recs
        .iter()
        .filter(|r| r["type"] == "rtmfp_packet" && r["encrypted"] == true)
        .collect();
    assert!(!sealed.is_empty());
    assert!(
        sealed
            .iter()
            .all(|r| r["error"].as_str().unwrap().contains("do not open"))
    );
    // A bad key log line is bad input (exit 7), with its line number.
    std::fs::write(&p, "RTMFP_SESSION 02000000 zz\n").unwrap();
    let out = common::bin()
        .args([
            "dump",
            "testdata/rtmfp/flash_cksum_g2_host.pcap",
            "--keylog",
        ])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 1"), "{err}");
}
