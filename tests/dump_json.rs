//! `rtmptool dump --json`, run as a program, against the independent
//! reference decoder: for every capture in `testdata/rtmp` and
//! `testdata/ertmp`, the message records equal the rows of `X.messages.tsv`
//! in order (connection, direction, completing frame, csid, type, length,
//! stream id, timestamp, command name) and the AMF values of `X.json`.
//! Also: bad input (exit 7, earlier records still printed), a capture that
//! starts mid-connection, and stdin input.

mod common;

use common::same_json;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value as Json;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rtmptool"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn captures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in ["rtmp", "ertmp"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            // The derived hard cases: tests/field_captures.rs.
            let derived = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("hard_"));
            if p.extension().is_some_and(|x| x == "pcap") && !derived {
                v.push(p);
            }
        }
    }
    v.sort();
    assert_eq!(v.len(), 25);
    v
}

fn records(out: &[u8]) -> Vec<Json> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// The values as they were on the wire (stream keys too), to compare with
/// the references.
fn dump_json(path: &Path) -> Output {
    bin()
        .args(["dump", "--json", "--reveal-keys"])
        .arg(path)
        .output()
        .unwrap()
}

/// The AMF values of a message record, in wire order (as the reference lists them).
fn amf_of(r: &Json) -> Option<Json> {
    let mut v = Vec::new();
    if let Some(c) = r.get("command") {
        if let Some(values) = r.get("values") {
            return Some(values.clone());
        }
        v.push(c.clone());
        v.push(r["transaction_id"].clone());
        if let Some(o) = r.get("command_object") {
            v.push(o.clone());
        }
        v.extend(r["args"].as_array()?.iter().cloned());
    } else if let Some(values) = r.get("values") {
        if !r["name"].is_null() {
            v.push(r["name"].clone());
        }
        v.extend(values.as_array()?.iter().cloned());
    } else {
        return None;
    }
    Some(Json::Array(v))
}

/// (dir, last_frame, csid, type, len, msid, ts, name) of a `.messages.tsv` row.
type Row = (String, u64, u64, u64, u64, u64, u64, String);

fn row_of(r: &Json) -> Row {
    let name = r
        .get("command")
        .or_else(|| r.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or("")
        .to_owned();
    (
        r["dir"].as_str().unwrap().to_owned(),
        r["frame"].as_u64().unwrap(),
        r["csid"].as_u64().unwrap(),
        r["msg_type"].as_u64().unwrap(),
        r["length"].as_u64().unwrap(),
        r["stream_id"].as_u64().unwrap(),
        r["timestamp"].as_u64().unwrap(),
        name,
    )
}

fn tsv_rows(path: &Path) -> Vec<(usize, Row)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let msg_type: u64 = f[8].parse().unwrap();
            let name = match msg_type {
                15 | 17 | 18 | 20 => f[13]
                    .split_once(' ')
                    .map(|(_, n)| n)
                    .filter(|n| !n.starts_with("(undecodable"))
                    .unwrap_or("")
                    .to_owned(),
                _ => String::new(),
            };
            let n = |i: usize| f[i].parse::<u64>().unwrap();
            (
                f[0].parse().unwrap(),
                (
                    f[1].to_owned(),
                    n(4),
                    n(6),
                    msg_type,
                    n(9),
                    n(10),
                    n(11),
                    name,
                ),
            )
        })
        .collect()
}

#[test]
fn json_messages_equal_the_reference_decoder() {
    let mut total = 0;
    for pcap in captures() {
        let name = pcap.display().to_string();
        let out = dump_json(&pcap);
        assert!(out.status.success(), "{name}: {out:?}");
        let recs = records(&out.stdout);
        let sidecar: Json =
            serde_json::from_str(&std::fs::read_to_string(pcap.with_extension("json")).unwrap())
                .unwrap();
        let gt = sidecar["ground_truth"]["connections"].as_array().unwrap();
        let conn_index: HashMap<String, usize> = gt
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    format!(
                        "{}-{}",
                        c["client"].as_str().unwrap(),
                        c["server"].as_str().unwrap()
                    ),
                    i,
                )
            })
            .collect();
        // The reference decoder stops at a chunk error; dump goes on after it
        // at a boundary it finds (checked in tests/field_captures.rs).
        let mut stop: HashMap<(String, String), u64> = HashMap::new();
        for r in recs.iter().filter(|r| r["code"] == "chunk_error") {
            let key = (
                r["conn"].as_str().unwrap().to_string(),
                r["dir"].as_str().unwrap().to_string(),
            );
            let at = r["offset"].as_u64().unwrap();
            stop.entry(key)
                .and_modify(|o| *o = (*o).min(at))
                .or_insert(at);
        }
        let msgs: Vec<&Json> = recs
            .iter()
            .filter(|r| r["type"] == "message")
            .filter(|r| {
                let key = (
                    r["conn"].as_str().unwrap().to_string(),
                    r["dir"].as_str().unwrap().to_string(),
                );
                stop.get(&key)
                    .is_none_or(|&at| r["offset"].as_u64().unwrap() < at)
            })
            .collect();
        // Per connection and direction, in order.
        let mut got: HashMap<(usize, String), Vec<Row>> = HashMap::new();
        for r in &msgs {
            let ci = conn_index[r["conn"].as_str().unwrap()];
            let row = row_of(r);
            got.entry((ci, row.0.clone())).or_default().push(row);
            // Every message's AMF equals the sidecar's, found by stream offset.
            if let Some(amf) = amf_of(r) {
                let off = r["offset"].as_u64().unwrap();
                let dir = r["dir"].as_str().unwrap();
                let want = gt[ci][dir]["amf_messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|w| w["off"].as_u64() == Some(off))
                    .unwrap_or_else(|| panic!("{name}: no reference AMF at {dir} offset {off}"));
                assert!(
                    same_json(&amf, &want["amf"]),
                    "{name} {dir} offset {off}:\n ours {amf}\n  ref {}",
                    want["amf"]
                );
            }
        }
        let mut want: HashMap<(usize, String), Vec<Row>> = HashMap::new();
        for (ci, row) in tsv_rows(&pcap.with_extension("messages.tsv")) {
            want.entry((ci, row.0.clone())).or_default().push(row);
        }
        for key in want.keys().chain(got.keys()) {
            let g = got.get(key).cloned().unwrap_or_default();
            let w = want.get(key).cloned().unwrap_or_default();
            for (i, (a, b)) in g.iter().zip(&w).enumerate() {
                assert_eq!(a, b, "{name} conn {} {} message {i}", key.0, key.1);
            }
            assert_eq!(g.len(), w.len(), "{name} conn {} {}: count", key.0, key.1);
        }
        total += msgs.len();
        // Every record has a type; handshake and message records the keys of CLI.md.
        for r in &recs {
            assert!(r["type"].is_string(), "{name}: {r}");
            if r["type"] == "handshake" {
                for k in ["conn", "dir", "frame", "time", "packet", "version"] {
                    if r["packet"] == "C2" || r["packet"] == "S2" {
                        continue;
                    }
                    assert!(r.get(k).is_some(), "{name}: {k} missing in {r}");
                }
            }
        }
    }
    assert_eq!(total, 9269, "messages compared");
}

#[test]
fn handshake_records_match_ground_truth() {
    for pcap in captures() {
        let name = pcap.display().to_string();
        let recs = records(&dump_json(&pcap).stdout);
        let sidecar: Json =
            serde_json::from_str(&std::fs::read_to_string(pcap.with_extension("json")).unwrap())
                .unwrap();
        for c in sidecar["ground_truth"]["connections"].as_array().unwrap() {
            let conn = format!(
                "{}-{}",
                c["client"].as_str().unwrap(),
                c["server"].as_str().unwrap()
            );
            for (dir, p0, p1) in [("c2s", "C0", "C1"), ("s2c", "S0", "S1")] {
                let hs = &c[dir]["handshake"];
                let find = |p: &str| {
                    recs.iter()
                        .find(|r| r["conn"] == conn.as_str() && r["packet"] == p)
                        .cloned()
                };
                if let Some(v) = hs["version"].as_u64() {
                    let r = find(p0).unwrap_or_else(|| panic!("{name}: no {p0}"));
                    assert_eq!(r["version"].as_u64(), Some(v), "{name} {p0}");
                    assert_eq!(r["frame"], hs["version_frame"], "{name} {p0} frame");
                }
                if let Some(want) = hs["c1s1_version"].as_str() {
                    let r = find(p1).unwrap_or_else(|| panic!("{name}: no {p1}"));
                    let got: Vec<String> = r["version"]
                        .as_str()
                        .unwrap()
                        .split('.')
                        .map(|x| format!("{:02x}", x.parse::<u8>().unwrap()))
                        .collect();
                    assert_eq!(got.concat(), want, "{name} {p1} version");
                    assert_eq!(r["timestamp"], hs["c1s1_time"], "{name} {p1} time");
                }
            }
        }
    }
}

/// Rewrites a classic pcap keeping the file header and the records for which
/// `keep(index)` is true; `cut` truncates the output to that many bytes.
fn rewrite_pcap(src: &[u8], keep: impl Fn(usize) -> bool) -> Vec<u8> {
    let be = src[..4] == [0xa1, 0xb2, 0xc3, 0xd4] || src[..4] == [0xa1, 0xb2, 0x3c, 0x4d];
    let u32_at = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if be {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    };
    let mut out = src[..24].to_vec();
    let mut pos = 24;
    let mut i = 0;
    while pos + 16 <= src.len() {
        let incl = u32_at(&src[pos + 8..]) as usize;
        let end = pos + 16 + incl;
        if keep(i) {
            out.extend_from_slice(&src[pos..end]);
        }
        pos = end;
        i += 1;
    }
    out
}

fn write_tmp(name: &str, bytes: &[u8]) -> tempfile::TempPath {
    let mut f = tempfile::Builder::new().prefix(name).tempfile().unwrap();
    f.write_all(bytes).unwrap();
    f.into_temp_path()
}

#[test]
fn not_a_capture_is_exit_7() {
    let p = write_tmp("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let out = bin().args(["dump"]).arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a pcap/pcapng file"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn truncated_capture_prints_what_came_before_then_exit_7() {
    let src = std::fs::read(root().join("rtmp/pub_ffmpeg_mp3.pcap")).unwrap();
    // Cut in the middle of a record well into the capture.
    let full = bin()
        .args(["dump", "--json"])
        .arg(root().join("rtmp/pub_ffmpeg_mp3.pcap"))
        .output()
        .unwrap();
    let full = records(&full.stdout);
    let cut = src.len() / 2;
    let p = write_tmp("truncated", &src[..cut]);
    let out = bin().args(["dump", "--json"]).arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("truncated pcap record at byte offset") && err.contains("(frame "),
        "{err}"
    );
    let got = records(&out.stdout);
    let msgs: Vec<&Json> = got.iter().filter(|r| r["type"] == "message").collect();
    assert!(msgs.len() > 100, "messages before the cut: {}", msgs.len());
    // Those printed are the full capture's, in order.
    let full_msgs: Vec<&Json> = full.iter().filter(|r| r["type"] == "message").collect();
    for (a, b) in msgs.iter().zip(&full_msgs) {
        assert_eq!(a, b);
    }
    // The frame named in the error is after the last message printed.
    let frame: u64 = err
        .split("(frame ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(msgs.iter().all(|m| m["frame"].as_u64().unwrap() < frame));
}

#[test]
fn stdin_gives_the_same_records_as_the_file() {
    let path = root().join("ertmp/ertmp_hevc.pcap");
    let from_file = bin().args(["dump", "--json"]).arg(&path).output().unwrap();
    let from_file = from_file.stdout;
    let mut child = bin()
        .args(["dump", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let data = std::fs::read(&path).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // Small writes: the reader must cope with a pipe delivering pieces.
        for piece in data.chunks(1000) {
            stdin.write_all(piece).unwrap();
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, from_file);
}

#[test]
fn capture_starting_mid_connection_finds_chunk_boundaries() {
    let path = root().join("rtmp/pub_ffmpeg_h264aac_fast.pcap");
    let src = std::fs::read(&path).unwrap();
    let full = records(&dump_json(&path).stdout);
    // Drop the first 11 packets: SYN and handshake; the capture starts with
    // `connect` (FFmpeg sends media with fmt-1 headers, so a fmt-0 boundary
    // must be a command or control message).
    const DROP: usize = 11;
    let p = write_tmp("midconn", &rewrite_pcap(&src, |i| i >= DROP));
    let out = bin().args(["dump", "--json"]).arg(&p).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let recs = records(&out.stdout);
    let warnings: Vec<&str> = recs
        .iter()
        .filter(|r| r["type"] == "warning")
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("mid-connection") && w.contains("no handshake")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("chunk size")),
        "{warnings:?}"
    );
    assert!(!recs.iter().any(|r| r["type"] == "handshake"));
    // Per direction, the messages decoded are the full capture's last ones,
    // in order (type, length, timestamp), each completed no earlier than in
    // the full capture (messages held while the boundary was being validated
    // come out with the frame that validated it).
    let key = |r: &Json| {
        (
            r["dir"].as_str().unwrap().to_owned(),
            r["msg_type"].as_u64().unwrap(),
            r["length"].as_u64().unwrap(),
            r["timestamp"].as_u64().unwrap(),
        )
    };
    for dir in ["c2s", "s2c"] {
        let want: Vec<_> = full
            .iter()
            .filter(|r| r["type"] == "message" && r["dir"] == dir)
            .collect();
        let got: Vec<_> = recs
            .iter()
            .filter(|r| r["type"] == "message" && r["dir"] == dir)
            .collect();
        assert!(
            got.len() * 10 >= want.len() * 9,
            "{dir}: {} of {}",
            got.len(),
            want.len()
        );
        let tail = &want[want.len() - got.len()..];
        for (g, w) in got.iter().zip(tail) {
            assert_eq!(key(g), key(w), "{dir}");
            assert!(g["frame"].as_u64().unwrap() + DROP as u64 >= w["frame"].as_u64().unwrap());
        }
    }
}

/// Ctrl-C while reading a pipe (`tcpdump -w - | rtmptool dump --stats -`):
/// the tables so far are printed and the exit status is 0, though the writer
/// still holds the pipe open.
#[test]
fn ctrl_c_on_a_pipe_prints_the_stats_so_far() {
    use std::time::{Duration, Instant};
    let pcap = std::fs::read(root().join("rtmp/pub_ffmpeg_h264aac_fast.pcap")).unwrap();
    for json in [false, true] {
        let mut args = vec!["dump", "--stats", "-"];
        if json {
            args.insert(0, "--json");
        }
        let mut child = bin()
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // Two thirds of the capture; the pipe stays open.
        let part = pcap.len() * 2 / 3;
        stdin.write_all(&pcap[..part]).unwrap();
        stdin.flush().unwrap();
        // Wait until rtmptool has read it (its read counter), then Ctrl-C.
        let io = format!("/proc/{}/io", child.id());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let read: u64 = std::fs::read_to_string(&io)
                .ok()
                .and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("rchar: ").map(|v| v.trim().parse().ok()))
                        .flatten()
                })
                .unwrap_or(0);
            if read >= part as u64 {
                break;
            }
            assert!(Instant::now() < deadline, "rtmptool did not read its input");
            std::thread::sleep(Duration::from_millis(10));
        }
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let out = common::wait_output(child, "dump --stats -", Duration::from_secs(10));
        drop(stdin);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        if json {
            let r: Json = serde_json::from_str(text.lines().next().unwrap()).unwrap();
            assert_eq!(r["type"], "conn_stats");
            let audio = r["c2s"]["audio_frames"].as_u64().unwrap();
            assert!(audio > 10, "{r}");
        } else {
            assert!(text.contains("connection #0"), "{text}");
            assert!(text.contains("audio frames"), "{text}");
        }
    }
}
