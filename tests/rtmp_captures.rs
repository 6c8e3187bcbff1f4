//! End-to-end check of the protocol core on every real RTMP capture in
//! `testdata/`: both directions of every TCP connection, reassembled by
//! `capture`, decoded by the handshake inspector, the chunk decoder, the message
//! layer and AMF, must give exactly the message list of the independent
//! reference decoder (`X.messages.tsv`), with the AMF values of its `X.json`,
//! the chunk-size changes it saw, and the parse error where it saw one.
//! tshark is not used as an oracle: it drops messages.

mod common;

use common::same_json;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use rtmptool::capture::tcp::{Event, Reassembler};
use rtmptool::capture::{Reader, Transport, decode};
use rtmptool::proto::chunk::{ChunkDecoder, ChunkError, ChunkEvent, DecoderConfig};
use rtmptool::proto::message::Message;
use serde_json::Value as Json;

const HANDSHAKE_LEN: usize = 1 + 1536 + 1536;

#[derive(Debug, Clone, PartialEq)]
struct Row {
    frame: u64,
    last_frame: u64,
    off: u64,
    csid: u32,
    fmt: u8,
    msg_type: u8,
    len: usize,
    msid: u32,
    ts: u32,
    chunks: u32,
    /// Command / data name for AMF messages, else "".
    name: String,
}

#[derive(Default)]
struct DirState {
    /// Bytes of the handshake still to skip.
    handshake: Vec<u8>,
    decoder: Option<ChunkDecoder>,
    /// (stream offset, frame) of each data segment, to find a message's first frame.
    segments: Vec<(u64, u64)>,
    rows: Vec<Row>,
    amf: Vec<(usize, u64, Json)>,
    chunk_sizes: Vec<(u64, u32)>,
    error: Option<ChunkError>,
    /// C0/S0 when it was not 3.
    bad_version: Option<u8>,
    /// (index, type, body) of every audio/video message.
    media: Vec<(usize, u8, bytes::Bytes)>,
    /// (offset, error) of messages the message layer could not decode.
    undecodable: Vec<(u64, String)>,
}

impl DirState {
    fn feed(&mut self, stream_offset: u64, bytes: &[u8], frame: u64) {
        self.segments.push((stream_offset, frame));
        let mut data = bytes;
        if self.handshake.len() < HANDSHAKE_LEN {
            let take = (HANDSHAKE_LEN - self.handshake.len()).min(data.len());
            self.handshake.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.handshake.first().is_some_and(|v| *v != 3) {
                // RTMP 1.0 §5.2.2: version 3; the reference decoder stops here.
                self.bad_version = self.handshake.first().copied();
                return;
            }
            if self.handshake.len() == HANDSHAKE_LEN {
                self.decoder = Some(ChunkDecoder::new(DecoderConfig {
                    start_offset: HANDSHAKE_LEN as u64,
                    ..Default::default()
                }));
            }
        }
        let Some(dec) = self.decoder.as_mut() else {
            return;
        };
        dec.push(data);
        loop {
            match dec.poll() {
                Ok(Some(ChunkEvent::Message(m))) => {
                    let first_frame = match self
                        .segments
                        .binary_search_by(|(off, _)| off.cmp(&m.offset))
                    {
                        Ok(i) => self.segments[i].1,
                        Err(i) => self.segments[i - 1].1,
                    };
                    let mut name = String::new();
                    let decoded = Message::decode(m.header.msg_type, m.payload.clone());
                    match &decoded {
                        // Every decodable message re-encodes byte-exactly.
                        Ok(msg) => assert_eq!(
                            msg.encode(),
                            m.payload,
                            "re-encoding {msg:?} at offset {}",
                            m.offset
                        ),
                        Err(e) => self.undecodable.push((m.offset, e.to_string())),
                    }
                    match decoded {
                        Ok(Message::Command(c)) => {
                            name = c.name().to_owned();
                            let json = Json::Array(c.values.iter().map(|v| v.to_json()).collect());
                            self.amf.push((self.rows.len(), m.offset, json));
                        }
                        Ok(Message::Data(d)) => {
                            name = d.name().to_owned();
                            let json = Json::Array(d.values.iter().map(|v| v.to_json()).collect());
                            self.amf.push((self.rows.len(), m.offset, json));
                        }
                        _ => {}
                    }
                    if matches!(m.header.msg_type.0, 8 | 9) {
                        self.media
                            .push((self.rows.len(), m.header.msg_type.0, m.payload.clone()));
                    }
                    self.rows.push(Row {
                        frame: first_frame,
                        last_frame: frame,
                        off: m.offset,
                        csid: m.csid,
                        fmt: m.fmt,
                        msg_type: m.header.msg_type.0,
                        len: m.payload.len(),
                        msid: m.header.stream_id,
                        ts: m.header.timestamp,
                        chunks: m.chunks,
                        name,
                    });
                }
                Ok(Some(ChunkEvent::ChunkSizeChanged { new, offset, .. })) => {
                    self.chunk_sizes.push((offset, new));
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    self.error = Some(e);
                    break;
                }
            }
        }
    }
}

struct Decoded {
    /// Per connection in order of appearance: [c2s, s2c].
    conns: Vec<[DirState; 2]>,
}

fn decode_capture(path: &Path) -> Decoded {
    let mut reader = Reader::new(File::open(path).unwrap()).unwrap();
    let mut re = Reassembler::new();
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut conns: Vec<[DirState; 2]> = Vec::new();
    let mut handle = |ev: Event<'_>| match ev {
        Event::Open { conn, syn_seen, .. } => {
            assert!(
                syn_seen,
                "{}: every test capture starts with the SYN",
                path.display()
            );
            index.insert(conn.0, conns.len());
            conns.push(Default::default());
        }
        Event::Data {
            conn,
            dir,
            stream_offset,
            bytes,
            frame,
            ..
        } => {
            let c = index[&conn.0];
            conns[c][dir.index()].feed(stream_offset, bytes, frame);
        }
        Event::Gap { .. } => panic!("{}: unexpected gap: {ev:?}", path.display()),
        _ => {}
    };
    while let Some(p) = reader.next_packet().unwrap() {
        let frame = p.frame;
        let time = p.time;
        let d = decode(p.link_type, p.data).unwrap();
        if let Transport::Tcp(seg) = d.transport {
            re.segment(d.src, d.dst, &seg, frame, time, &mut handle);
        }
    }
    re.flush(&mut handle);
    Decoded { conns }
}

fn tsv_rows(path: &Path) -> HashMap<(usize, String), Vec<Row>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: HashMap<(usize, String), Vec<Row>> = HashMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let info = f[13];
        let msg_type: u8 = f[8].parse().unwrap();
        let name = match msg_type {
            17 | 20 | 15 | 18 => info
                .split_once(' ')
                .map(|(_, n)| n)
                .filter(|n| !n.starts_with("(undecodable"))
                .unwrap_or("")
                .to_owned(),
            _ => String::new(),
        };
        out.entry((f[0].parse().unwrap(), f[1].to_owned()))
            .or_default()
            .push(Row {
                frame: f[3].parse().unwrap(),
                last_frame: f[4].parse().unwrap(),
                off: f[5].parse().unwrap(),
                csid: f[6].parse().unwrap(),
                fmt: f[7].parse().unwrap(),
                msg_type,
                len: f[9].parse().unwrap(),
                msid: f[10].parse().unwrap(),
                ts: f[11].parse().unwrap(),
                chunks: f[12].parse().unwrap(),
                name,
            });
    }
    out
}

fn captures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut v = Vec::new();
    for dir in ["rtmp", "ertmp"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            // The hard cases (derived by reordering, cutting, truncating) have
            // their own test through the analyzer: tests/field_captures.rs.
            let derived = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("hard_"));
            if p.extension().is_some_and(|x| x == "pcap") && !derived {
                v.push(p);
            }
        }
    }
    v.sort();
    assert_eq!(v.len(), 25, "23 RTMP captures and two E-RTMP captures");
    v
}

#[test]
fn every_capture_matches_the_reference_decoder() {
    let mut total = 0;
    for pcap in captures() {
        let name = pcap.display().to_string();
        let decoded = decode_capture(&pcap);
        let expected = tsv_rows(&pcap.with_extension("messages.tsv"));
        let sidecar: Json =
            serde_json::from_str(&std::fs::read_to_string(pcap.with_extension("json")).unwrap())
                .unwrap();
        let gt_conns = sidecar["ground_truth"]["connections"].as_array().unwrap();
        assert_eq!(decoded.conns.len(), gt_conns.len(), "{name}: connections");
        for (ci, dirs) in decoded.conns.iter().enumerate() {
            for (di, dname) in ["c2s", "s2c"].iter().enumerate() {
                let got = &dirs[di];
                let want = expected
                    .get(&(ci, dname.to_string()))
                    .cloned()
                    .unwrap_or_default();
                for (i, (g, w)) in got.rows.iter().zip(&want).enumerate() {
                    assert_eq!(g, w, "{name} conn {ci} {dname} message {i}");
                }
                assert_eq!(
                    got.rows.len(),
                    want.len(),
                    "{name} conn {ci} {dname}: message count"
                );
                total += got.rows.len();

                let gt = &gt_conns[ci][dname];
                // Chunk size changes: stream offset of the Set Chunk Size message.
                let want_cs: Vec<(u64, u32)> = gt["chunk_size_changes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| {
                        (
                            c["off"].as_u64().unwrap(),
                            c["chunk_size"].as_u64().unwrap() as u32,
                        )
                    })
                    .collect();
                let got_cs: Vec<(u64, u32)> = got
                    .chunk_sizes
                    .iter()
                    .map(|(after, size)| {
                        // The event gives the offset from which the size applies; the
                        // reference gives the Set Chunk Size message's offset.
                        let msg = got
                            .rows
                            .iter()
                            .rev()
                            .find(|r| r.msg_type == 1 && r.off < *after)
                            .unwrap();
                        (msg.off, *size)
                    })
                    .collect();
                assert_eq!(
                    got_cs, want_cs,
                    "{name} conn {ci} {dname}: chunk size changes"
                );

                // AMF values of every command and data message.
                let want_amf = gt["amf_messages"].as_array().unwrap();
                let got_amf: Vec<&(usize, u64, Json)> = got.amf.iter().collect();
                for w in want_amf {
                    let off = w["off"].as_u64().unwrap();
                    let Some((_, _, g)) = got_amf.iter().find(|(_, o, _)| *o == off) else {
                        // The reference lists undecodable AMF too; we must not have decoded it.
                        assert!(
                            w["amf"].is_null() || w.get("error").is_some(),
                            "{name} conn {ci} {dname}: no AMF decoded at offset {off}: {w}"
                        );
                        continue;
                    };
                    assert!(
                        same_json(g, &w["amf"]),
                        "{name} conn {ci} {dname} offset {off}:\n ours {g}\n  ref {}",
                        w["amf"]
                    );
                }

                // Healthy connections have no undecodable message.
                if !name.contains("fault_") {
                    assert_eq!(got.undecodable, [], "{name} conn {ci} {dname}");
                }

                // Where the reference decoder stopped with a parse error, so do we.
                let want_err = &gt["parse_error"];
                match (&got.error, want_err.is_null()) {
                    (None, true) => {}
                    (None, false)
                        if got.handshake.len() < HANDSHAKE_LEN && got.bad_version.is_none() =>
                    {
                        assert_eq!(
                            want_err["why"].as_str().unwrap(),
                            format!(
                                "handshake incomplete ({} of {HANDSHAKE_LEN} bytes)",
                                got.handshake.len()
                            ),
                            "{name}"
                        );
                    }
                    (None, false) if got.bad_version.is_some() => {
                        assert_eq!(
                            want_err["why"].as_str().unwrap(),
                            format!(
                                "handshake version byte 0x{:02x} != 0x03",
                                got.bad_version.unwrap()
                            ),
                            "{name}"
                        );
                    }
                    (Some(ChunkError::NoPreviousHeader { offset, fmt, csid }), false) => {
                        assert_eq!(Some(*offset), want_err["off"].as_u64(), "{name}");
                        assert_eq!(
                            want_err["why"].as_str().unwrap(),
                            format!("fmt {fmt} chunk on csid {csid} with no previous header"),
                            "{name}"
                        );
                    }
                    (g, _) => panic!("{name} conn {ci} {dname}: error {g:?}, reference {want_err}"),
                }
            }
        }
    }
    // Every line of every .messages.tsv (9269) was compared.
    assert_eq!(total, 9269, "messages compared");
}

/// Handshake facts (C0/S0, C1/S1 time and version bytes, digest) and media
/// facts (key frames, AVC/AAC sequence headers, composition times, sound
/// formats) of every direction equal the sidecar's ground truth.
#[test]
fn handshake_and_media_facts_match_ground_truth() {
    use rtmptool::proto::handshake::{Role, inspect_c1s1};
    use rtmptool::proto::media::{AudioInfo, VideoInfo};
    for pcap in captures() {
        let name = pcap.display().to_string();
        let decoded = decode_capture(&pcap);
        let sidecar: Json =
            serde_json::from_str(&std::fs::read_to_string(pcap.with_extension("json")).unwrap())
                .unwrap();
        for (ci, dirs) in decoded.conns.iter().enumerate() {
            for (di, dname) in ["c2s", "s2c"].iter().enumerate() {
                let got = &dirs[di];
                let gt = &sidecar["ground_truth"]["connections"][ci][dname];
                let hs = &gt["handshake"];
                if let Some(v) = hs["version"].as_u64() {
                    assert_eq!(u64::from(got.handshake[0]), v, "{name} {dname} C0/S0");
                }
                if let Some(want) = hs["c1s1_version"].as_str() {
                    let role = if di == 0 { Role::Client } else { Role::Server };
                    let info = inspect_c1s1(&got.handshake[1..1537], role).unwrap();
                    let version: String = info.version.iter().map(|b| format!("{b:02x}")).collect();
                    assert_eq!(version, want, "{name} {dname} C1/S1 version");
                    assert_eq!(
                        u64::from(info.time),
                        hs["c1s1_time"].as_u64().unwrap(),
                        "{name} {dname}"
                    );
                    // A digest, where the version bytes announce one, verifies
                    // (the fault servers' S1 are not digest packets).
                    if want != "00000000" && !name.contains("fault_d") {
                        assert_eq!(
                            info.digest().map(|(_, ok)| ok),
                            Some(true),
                            "{name} {dname}: digest"
                        );
                    }
                }

                // The sidecar's legacy media summary of the multitrack capture
                // reads E-RTMP bodies as AVC (its "cts" reaches 951816); its
                // per-message E-RTMP truth is checked by tests/ertmp_tracks.rs.
                if name.contains("ertmp_onetrack") {
                    continue;
                }
                let mut keyframes = 0;
                let mut avc_seq = 0;
                let mut nonzero_cts = 0;
                let mut cts: Vec<i32> = Vec::new();
                let mut formats: Vec<u64> = Vec::new();
                let mut aac_seq = 0;
                for (_, t, body) in &got.media {
                    if *t == 9 {
                        let Ok(v) = VideoInfo::parse(body) else {
                            continue;
                        };
                        if v.ex_header {
                            continue;
                        }
                        keyframes += usize::from(v.is_keyframe());
                        avc_seq += usize::from(v.is_sequence_header());
                        if let Some(c) = v.composition_time.filter(|_| v.is_coded_frames()) {
                            nonzero_cts += usize::from(c != 0);
                            cts.push(c);
                        }
                    } else if let Ok(a) = AudioInfo::parse(body)
                        && let Some(f) = a.sound_format
                    {
                        if !formats.contains(&u64::from(f.0)) {
                            formats.push(u64::from(f.0));
                        }
                        aac_seq += usize::from(a.is_sequence_header());
                    }
                }
                if let Some(video) = gt.get("video").filter(|v| v.is_object()) {
                    assert_eq!(
                        keyframes as u64,
                        video["keyframes"].as_u64().unwrap(),
                        "{name} {dname} keyframes"
                    );
                    assert_eq!(
                        avc_seq as u64,
                        video["avc_seq_headers"].as_u64().unwrap(),
                        "{name} {dname}"
                    );
                    assert_eq!(
                        nonzero_cts as u64,
                        video["nonzero_cts"].as_u64().unwrap(),
                        "{name} {dname}"
                    );
                    let range = [
                        cts.iter().min().copied().unwrap_or(0),
                        cts.iter().max().copied().unwrap_or(0),
                    ];
                    let want: Vec<i64> = video["cts_range"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_i64().unwrap())
                        .collect();
                    assert_eq!(
                        range.map(i64::from).to_vec(),
                        want,
                        "{name} {dname} cts range"
                    );
                }
                if let Some(audio) = gt.get("audio").filter(|v| v.is_object()) {
                    formats.sort();
                    let want: Vec<u64> = audio["sound_formats"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_u64().unwrap())
                        .collect();
                    assert_eq!(formats, want, "{name} {dname} sound formats");
                    assert_eq!(
                        aac_seq as u64,
                        audio["aac_seq_headers"].as_u64().unwrap(),
                        "{name} {dname}"
                    );
                }
            }
        }
    }
}

/// Every audio/video message of the E-RTMP capture, decoded end to end, has
/// the header facts of the ground truth (`ertmp_hevc.ertmp.tsv`) and its CRC-32.
#[test]
fn ertmp_facts_match_ground_truth() {
    use rtmptool::proto::media::{AudioInfo, VideoInfo};
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/ertmp/ertmp_hevc.pcap");
    let decoded = decode_capture(&pcap);
    let tsv = std::fs::read_to_string(pcap.with_extension("ertmp.tsv")).unwrap();
    let mut lines = tsv.lines();
    let head: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |n: &str| head.iter().position(|h| *h == n).unwrap();
    let mut checked = 0;
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let conn: usize = f[col("conn")].parse().unwrap();
        let dir = if f[col("dir")] == "c2s" { 0 } else { 1 };
        let i: usize = f[col("i")].parse().unwrap();
        let d = &decoded.conns[conn][dir];
        let row = &d.rows[i];
        let (_, t, body) = d.media.iter().find(|(idx, _, _)| *idx == i).unwrap();
        assert_eq!(row.ts.to_string(), f[col("ts")], "{line}");
        assert_eq!(body.len().to_string(), f[col("len")], "{line}");
        assert_eq!(t.to_string(), f[col("type")], "{line}");
        let pt = f[col("packet_type")];
        if *t == 9 {
            let v = VideoInfo::parse(body).unwrap();
            assert_eq!(v.ex_header, f[col("ex_header")] == "1", "{line}");
            assert_eq!(v.frame_type.0.to_string(), f[col("frame_type")], "{line}");
            assert_eq!(
                v.fourcc.map(|c| c.text()).unwrap_or_default(),
                f[col("fourcc")],
                "{line}"
            );
            assert_eq!(
                v.packet_type.map(|p| p.name()).unwrap_or_default(),
                pt,
                "{line}"
            );
            let cts = v
                .composition_time
                .map(|c| c.to_string())
                .unwrap_or_default();
            assert_eq!(cts, f[col("composition_time")], "{line}");
            assert_eq!(v.is_keyframe(), f[col("key_frame")] == "1", "{line}");
            assert_eq!(
                v.is_sequence_header(),
                f[col("sequence_start")] == "1",
                "{line}"
            );
            assert_eq!(v.is_sequence_end(), f[col("sequence_end")] == "1", "{line}");
        } else {
            let a = AudioInfo::parse(body).unwrap();
            assert_eq!(
                a.sound_format.map(|s| s.0.to_string()).unwrap_or_default(),
                f[col("sound_format")],
                "{line}"
            );
            assert_eq!(a.is_sequence_header(), pt == "legacy_aac_pt0", "{line}");
        }
        checked += 1;
    }
    assert_eq!(checked, 831);
}
