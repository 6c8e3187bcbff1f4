//! Enhanced RTMP facts of every audio/video message of the E-RTMP captures
//! (`testdata/ertmp/ertmp_hevc.pcap`, `ertmp_onetrack_modex_opus.pcap`) against
//! the ground truth beside them (`X.ertmp.tsv`, written from the bodies the
//! publisher serialised and checked by an independent reader): per connection
//! and direction, in wire order, the message index, completing frame, type,
//! timestamp, length and the header facts of veovera/enhanced-rtmp v2
//! (ex-header, frame type, packet type, FourCC, multitrack type, track ids and
//! FourCCs, composition time per track, key frame, sequence start/end, ModEx
//! TimestampOffsetNano).
//!
//! Checked twice: through the library (`Analyzer` over `capture::Reader`, then
//! `VideoInfo` / `AudioInfo`), every column; and through `rtmptool dump --json`,
//! every column its records carry. Each check counts the rows it matched and
//! requires exactly the tsv's row count.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use rtmptool::analyze::{Analyzer, Options, RecordKind};
use rtmptool::capture::Reader;
use rtmptool::capture::tcp::Dir;
use rtmptool::proto::media::{AudioInfo, SoundFormat, Track, VideoInfo};
use serde_json::Value as Json;

/// The tsv columns compared, in order (`published_index` is the publisher's
/// bookkeeping, not a fact of the message).
const COLUMNS: [&str; 20] = [
    "conn",
    "dir",
    "i",
    "frame",
    "type",
    "ts",
    "len",
    "ex_header",
    "frame_type",
    "codec_id",
    "sound_format",
    "packet_type",
    "fourcc",
    "multitrack",
    "track_ids",
    "track_fourccs",
    "composition_time",
    "key_frame",
    "sequence_start",
    "sequence_end",
];
/// The last compared column, after [`COLUMNS`].
const MODEX: &str = "modex_nano";

/// The columns that `dump --json` records carry.
const JSON_COLUMNS: [&str; 17] = [
    "conn",
    "dir",
    "i",
    "frame",
    "type",
    "ts",
    "len",
    "packet_type",
    "fourcc",
    "multitrack",
    "track_ids",
    "track_fourccs",
    "composition_time",
    "key_frame",
    "sequence_start",
    "sequence_end",
    "modex_nano",
];

type Row = HashMap<&'static str, String>;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/ertmp")
        .join(name)
}

/// The tsv's rows (one per audio/video message), keyed by column name.
fn expected(capture: &str) -> Vec<Row> {
    let text = std::fs::read_to_string(testdata(&format!("{capture}.ertmp.tsv"))).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let mut all: Vec<&'static str> = COLUMNS.to_vec();
    all.push(MODEX);
    for c in &all {
        assert!(head.contains(c), "{capture}: tsv has no column {c}");
    }
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), head.len(), "{capture}: {l}");
            all.iter()
                .map(|c| {
                    let i = head.iter().position(|h| h == c).unwrap();
                    (*c, f[i].to_owned())
                })
                .collect()
        })
        .collect()
}

/// Connection index of the sidecar (`ground_truth.ertmp.connections[].conn`) by
/// client address.
fn conn_index(capture: &str) -> HashMap<String, usize> {
    let text = std::fs::read_to_string(testdata(&format!("{capture}.json"))).unwrap();
    let j: Json = serde_json::from_str(&text).unwrap();
    let conns = j["ground_truth"]["ertmp"]["connections"]
        .as_array()
        .unwrap();
    conns
        .iter()
        .map(|c| {
            (
                c["client"].as_str().unwrap().to_owned(),
                c["conn"].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

fn dir_name(d: Dir) -> &'static str {
    match d {
        Dir::C2s => "c2s",
        Dir::S2c => "s2c",
    }
}

fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.to_owned()
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or(String::new(), |v| v.to_string())
}

fn join<T>(tracks: &[T], f: impl Fn(&T) -> String) -> String {
    tracks.iter().map(f).collect::<Vec<_>>().join(",")
}

/// The multitrack columns: type name, track ids, track FourCCs.
fn track_columns(r: &mut Row, mt: Option<String>, tracks: &[Track]) {
    r.insert("multitrack", mt.unwrap_or_default());
    r.insert("track_ids", join(tracks, |t| t.track_id.to_string()));
    r.insert("track_fourccs", join(tracks, |t| t.fourcc.text()));
}

/// The facts of one audio/video body, formatted as the tsv writes them.
fn body_facts(r: &mut Row, msg_type: u8, body: &[u8]) {
    if msg_type == 9 {
        let v = VideoInfo::parse(body).unwrap_or_else(|e| panic!("{r:?}: {e}"));
        r.insert("ex_header", flag(v.ex_header));
        r.insert("frame_type", v.frame_type.0.to_string());
        r.insert("codec_id", opt(v.codec_id.map(|c| c.0)));
        r.insert("sound_format", String::new());
        r.insert(
            "packet_type",
            match (v.packet_type, v.avc_packet_type) {
                (Some(p), _) => p.name(),
                (None, Some(p)) => format!("legacy_avc_pt{}", p.0),
                (None, None) => String::new(),
            },
        );
        r.insert("fourcc", opt(v.fourcc.map(|f| f.text())));
        track_columns(r, v.multitrack.map(|m| m.name()), &v.tracks);
        r.insert(
            "composition_time",
            if v.multitrack.is_some() {
                join(&v.tracks, |t| opt(t.composition_time))
            } else {
                opt(v.composition_time)
            },
        );
        r.insert("key_frame", flag(v.is_keyframe()));
        r.insert("sequence_start", flag(v.is_sequence_header()));
        r.insert("sequence_end", flag(v.is_sequence_end()));
        r.insert(MODEX, opt(v.timestamp_offset_nano()));
    } else {
        let a = AudioInfo::parse(body).unwrap_or_else(|e| panic!("{r:?}: {e}"));
        let ex = a.sound_format == Some(SoundFormat::EX_HEADER);
        r.insert("ex_header", flag(ex));
        r.insert("frame_type", String::new());
        r.insert("codec_id", String::new());
        r.insert("sound_format", opt(a.sound_format.map(|f| f.0)));
        r.insert(
            "packet_type",
            match (a.packet_type, a.aac_packet_type) {
                (Some(p), _) => p.name(),
                (None, Some(p)) => format!("legacy_aac_pt{p}"),
                (None, None) => String::new(),
            },
        );
        r.insert("fourcc", opt(a.fourcc.map(|f| f.text())));
        track_columns(r, a.multitrack.map(|m| m.name()), &a.tracks);
        r.insert("composition_time", String::new());
        r.insert("key_frame", String::new());
        r.insert("sequence_start", flag(a.is_sequence_header()));
        r.insert(
            "sequence_end",
            if ex {
                flag(a.is_sequence_end())
            } else {
                String::new()
            },
        );
        r.insert(MODEX, opt(a.timestamp_offset_nano()));
    }
}

/// Every audio/video message of the capture through the library, in record order.
fn library_rows(capture: &str) -> Vec<Row> {
    let conns = conn_index(capture);
    let file = File::open(testdata(&format!("{capture}.pcap"))).unwrap();
    let mut reader = Reader::new(file).unwrap();
    let mut an = Analyzer::new(Options::default());
    let mut index: HashMap<(u64, Dir), usize> = HashMap::new();
    let mut rows = Vec::new();
    let mut emit = |rec: rtmptool::analyze::Record| {
        let RecordKind::Message { raw, .. } = &rec.kind else {
            return;
        };
        let dir = rec.dir.expect("a message has a direction");
        let i = index.entry((rec.conn_id, dir)).or_default();
        let this = *i;
        *i += 1;
        let t = raw.header.msg_type.0;
        if t != 8 && t != 9 {
            return;
        }
        let client = rec.conn.split('-').next().unwrap();
        let conn = conns[client];
        assert_eq!(conn as u64, rec.conn_id, "connection order differs");
        let mut r = Row::new();
        r.insert("conn", conn.to_string());
        r.insert("dir", dir_name(dir).to_owned());
        r.insert("i", this.to_string());
        r.insert("frame", rec.frame.to_string());
        r.insert("type", t.to_string());
        r.insert("ts", raw.header.timestamp.to_string());
        r.insert("len", raw.payload.len().to_string());
        body_facts(&mut r, t, &raw.payload);
        rows.push(r);
    };
    while let Some(p) = reader.next_packet().unwrap() {
        an.packet(&p, &mut emit);
    }
    an.finish(&mut emit);
    rows
}

/// Every audio/video message record of `rtmptool dump --json`, as tsv columns.
fn json_rows(capture: &str) -> Vec<Row> {
    let conns = conn_index(capture);
    let out = Command::new(env!("CARGO_BIN_EXE_rtmptool"))
        .args(["dump", "--json"])
        .arg(testdata(&format!("{capture}.pcap")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut rows = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let j: Json = serde_json::from_str(line).unwrap();
        if j["type"] != "message" {
            continue;
        }
        let conn = j["conn"].as_str().unwrap().to_owned();
        let dir = j["dir"].as_str().unwrap().to_owned();
        let i = index.entry((conn.clone(), dir.clone())).or_default();
        let this = *i;
        *i += 1;
        let t = j["msg_type"].as_u64().unwrap();
        if t != 8 && t != 9 {
            continue;
        }
        let s = |k: &str| match &j[k] {
            Json::Null => String::new(),
            Json::String(s) => s.clone(),
            v => v.to_string(),
        };
        let b = |k: &str| flag(j[k].as_bool().unwrap_or_else(|| panic!("{k}: {line}")));
        let mut r = Row::new();
        r.insert("conn", conns[conn.split('-').next().unwrap()].to_string());
        r.insert("dir", dir);
        r.insert("i", this.to_string());
        r.insert("frame", s("frame"));
        r.insert("type", t.to_string());
        r.insert("ts", s("timestamp"));
        r.insert("len", s("length"));
        let pt = s("packet_type");
        let ex = j.get("fourcc").is_some() || j.get("multitrack").is_some();
        r.insert(
            "packet_type",
            match pt.as_str() {
                "AudioSpecificConfig" if !ex => "legacy_aac_pt0".into(),
                "raw" if !ex => "legacy_aac_pt1".into(),
                _ => pt.clone(),
            },
        );
        r.insert("fourcc", s("fourcc"));
        r.insert("multitrack", s("multitrack"));
        let tracks = j["tracks"].as_array().cloned().unwrap_or_default();
        let per = |k: &str| {
            tracks
                .iter()
                .map(|t| match &t[k] {
                    Json::Null => String::new(),
                    Json::String(s) => s.clone(),
                    v => v.to_string(),
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        r.insert("track_ids", per("track_id"));
        r.insert("track_fourccs", per("fourcc"));
        r.insert(
            "composition_time",
            if j.get("multitrack").is_some() {
                per("composition_time")
            } else if t == 9 {
                s("composition_time")
            } else {
                String::new()
            },
        );
        r.insert(
            "key_frame",
            if t == 9 { b("keyframe") } else { String::new() },
        );
        r.insert("sequence_start", b("sequence_header"));
        r.insert(
            "sequence_end",
            if t == 9 || ex {
                flag(pt == "SequenceEnd")
            } else {
                String::new()
            },
        );
        r.insert(MODEX, s("timestamp_offset_nano"));
        rows.push(r);
    }
    rows
}

/// Compares `got` with the tsv on `columns`, row by row in wire order per
/// connection and direction; returns the rows matched.
fn compare(capture: &str, got: &[Row], columns: &[&'static str]) -> usize {
    let want = expected(capture);
    let key = |r: &Row| (r["conn"].clone(), r["dir"].clone());
    let mut by_stream: HashMap<(String, String), Vec<&Row>> = HashMap::new();
    for r in got {
        by_stream.entry(key(r)).or_default().push(r);
    }
    let mut want_by: HashMap<(String, String), Vec<&Row>> = HashMap::new();
    for r in &want {
        want_by.entry(key(r)).or_default().push(r);
    }
    let mut streams: Vec<_> = want_by.keys().cloned().collect();
    streams.sort();
    let mut got_streams: Vec<_> = by_stream.keys().cloned().collect();
    got_streams.sort();
    assert_eq!(
        got_streams, streams,
        "{capture}: connections/directions with media"
    );
    let mut matched = 0;
    for s in &streams {
        let (w, g) = (&want_by[s], &by_stream[s]);
        assert_eq!(g.len(), w.len(), "{capture} {s:?}: audio/video messages");
        for (n, (w, g)) in w.iter().zip(g.iter()).enumerate() {
            for c in columns {
                assert_eq!(
                    g.get(c),
                    w.get(c),
                    "{capture} conn {} {} message {n} (i {}), column {c}\n want {w:?}\n  got {g:?}",
                    s.0,
                    s.1,
                    w["i"]
                );
            }
            matched += 1;
        }
    }
    assert_eq!(matched, want.len(), "{capture}: rows matched");
    matched
}

fn all_columns() -> Vec<&'static str> {
    let mut c = COLUMNS.to_vec();
    c.push(MODEX);
    c
}

#[test]
fn library_facts_equal_ground_truth_hevc() {
    let n = compare("ertmp_hevc", &library_rows("ertmp_hevc"), &all_columns());
    assert_eq!(n, 831);
}

#[test]
fn library_facts_equal_ground_truth_onetrack_modex_opus() {
    let capture = "ertmp_onetrack_modex_opus";
    let n = compare(capture, &library_rows(capture), &all_columns());
    assert_eq!(n, 970);
}

#[test]
fn dump_json_facts_equal_ground_truth() {
    for (capture, rows) in [("ertmp_hevc", 831), ("ertmp_onetrack_modex_opus", 970)] {
        let n = compare(capture, &json_rows(capture), &JSON_COLUMNS);
        assert_eq!(n, rows, "{capture}");
    }
}

/// The ground truth itself covers what the test is for: OneTrack tracks,
/// composition times and ModEx offsets are present (a tsv of empty columns
/// would match a parser that found nothing).
#[test]
fn ground_truth_has_tracks_cts_and_modex() {
    let rows = expected("ertmp_onetrack_modex_opus");
    let count = |c: &str| rows.iter().filter(|r| !r[c].is_empty()).count();
    assert!(count("track_ids") > 500, "{}", count("track_ids"));
    assert!(count(MODEX) > 50);
    assert!(count("composition_time") > 200);
    let rows = expected("ertmp_hevc");
    assert!(rows.iter().any(|r| r["sequence_end"] == "1"));
    assert!(rows.iter().any(|r| r["packet_type"] == "CodedFramesX"));
}
