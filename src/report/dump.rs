//! Rendering of `dump` records: NDJSON with the keys of the CLI contract
//! (`CLI.md`, "JSON records": handshake, message, warning), human text (one
//! line per unit, AMF values indented, `-v` chunk detail, `--hex` payload
//! dumps) and `--stats` tables (comfy-table) per connection.
//!
//! Statistics are counters per connection and direction, never per message,
//! so memory does not grow with the capture.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Write};

use anyhow::bail;
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use owo_colors::OwoColorize;
use serde_json::{Map, Value as Json, json};

use super::{Style, words, write_json_line};
use crate::cli::{DirFilter, DumpArgs};
use rtmptool::analyze::secrets::Secrets;
use rtmptool::analyze::{HandshakePacket, Record, RecordKind, handshake_packet_name};
use rtmptool::capture::tcp::{Dir, DirStats};
use rtmptool::proto::amf0::Amf0Value;
use rtmptool::proto::chunk::DEFAULT_CHUNK_SIZE;
use rtmptool::proto::handshake::PeerHandshake;
use rtmptool::proto::media::{AudioInfo, MediaCounter, MultitrackType, Track, VideoInfo};
use rtmptool::proto::message::{Message, MessageType, UserControl};
use rtmptool::text::sanitize;

/// What `--conn`, `--dir`, `--type`, `--stream-id` and `--command` select.
#[derive(Debug, Default)]
pub struct Filter {
    conns: Vec<String>,
    dir: Option<Dir>,
    types: Vec<u8>,
    stream_ids: Vec<u32>,
    commands: Vec<String>,
}

/// Message type numbers for a `--type` word: a number, a `msg_type_name`, or a group.
fn type_numbers(word: &str) -> anyhow::Result<Vec<u8>> {
    let w = word.trim().to_ascii_lowercase();
    if let Ok(n) = w.parse::<u8>() {
        return Ok(vec![n]);
    }
    let group: &[u8] = match w.as_str() {
        "command" | "commands" => &[17, 20],
        "data" => &[15, 18],
        "control" => &[1, 2, 3, 4, 5, 6],
        "media" => &[8, 9],
        "shared_object" => &[16, 19],
        _ => &[],
    };
    if !group.is_empty() {
        return Ok(group.to_vec());
    }
    match (0..=u8::MAX).find(|t| MessageType(*t).name() == w && w != "unknown") {
        Some(t) => Ok(vec![t]),
        None => bail!(
            "--type {word}: not a message type (a number, a name such as video, audio, \
             command_amf0, set_chunk_size, or a group: command, data, control, media)"
        ),
    }
}

impl Filter {
    /// The filter of the command line; an unknown `--type` is a usage error.
    pub fn from_args(a: &DumpArgs) -> anyhow::Result<Filter> {
        let mut types = Vec::new();
        for t in &a.msg_type {
            types.extend(type_numbers(t)?);
        }
        Ok(Filter {
            conns: a.conn.clone(),
            dir: a.dir.map(|d| match d {
                DirFilter::C2s => Dir::C2s,
                DirFilter::S2c => Dir::S2c,
            }),
            types,
            stream_ids: a.stream_id.clone(),
            commands: a.command.clone(),
        })
    }

    fn message_filters(&self) -> bool {
        !(self.types.is_empty() && self.stream_ids.is_empty() && self.commands.is_empty())
    }

    /// Whether `r` is to be shown (and counted by `--stats`).
    pub fn matches(&self, r: &Record) -> bool {
        if !self.conns.is_empty()
            && !self
                .conns
                .iter()
                .any(|c| conn_matches(c, r.conn_id, &r.conn))
        {
            return false;
        }
        if let (Some(want), Some(d)) = (self.dir, r.dir)
            && want != d
        {
            return false;
        }
        match &r.kind {
            RecordKind::Message { raw, decoded } => {
                if !self.types.is_empty() && !self.types.contains(&raw.header.msg_type.0) {
                    return false;
                }
                if !self.stream_ids.is_empty() && !self.stream_ids.contains(&raw.header.stream_id) {
                    return false;
                }
                if !self.commands.is_empty() {
                    let name = match decoded {
                        Ok(Message::Command(c)) => c.name(),
                        Ok(Message::Data(d)) => d.name(),
                        _ => return false,
                    };
                    return self.commands.iter().any(|c| c == name);
                }
                true
            }
            RecordKind::Handshake(_) | RecordKind::Chunk(_) => !self.message_filters(),
            k if k.is_problem() => true,
            RecordKind::Open { .. } | RecordKind::End { .. } => true,
            RecordKind::RtmfpSession { .. } => true,
            _ => !self.message_filters(),
        }
    }
}

/// Counters of one direction for `--stats`.
#[derive(Debug)]
struct DirCounters {
    /// (count, payload bytes) per message type.
    by_type: Vec<(u8, u64, u64)>,
    /// Chunk sizes in force, in order (the first is the default 128).
    chunk_sizes: Vec<u32>,
    /// Frames by the one rule play and publish use too.
    counter: MediaCounter,
    media_bytes: u64,
    /// First and last RTMP timestamps of any message.
    first_ts: Option<u32>,
    last_ts: u32,
    /// First and last timestamps of media messages (for the bitrate).
    media_ts: Option<(u32, u32)>,
    /// Messages that lost bytes to a gap.
    damaged: u64,
    /// Per media track (E-RTMP track ids; a message without Multitrack is track 0,
    /// the default track), in order of first appearance. At most 2 × 256 entries.
    tracks: Vec<TrackCounters>,
}

/// Counters of one media track of one direction for `--stats`.
#[derive(Debug)]
struct TrackCounters {
    video: bool,
    track_id: u8,
    /// Codec of the track's first message ("hvc1", "AAC", ...).
    codec: String,
    frames: u64,
    keyframes: u64,
    /// Bytes of the track: the whole message for single-track and OneTrack
    /// messages, the track's data (UI24 size) for ManyTracks*.
    bytes: u64,
    /// First and last RTMP timestamps of the track's messages.
    ts: Option<(u32, u32)>,
}

impl TrackCounters {
    fn label(&self) -> String {
        let kind = if self.video { "video" } else { "audio" };
        format!("{kind} track {} {}", self.track_id, self.codec)
    }

    fn bitrate_kbps(&self) -> Option<f64> {
        let (a, b) = self.ts?;
        let span = b.wrapping_sub(a);
        (span > 0).then(|| self.bytes as f64 * 8.0 / f64::from(span))
    }

    fn json(&self) -> Json {
        json!({
            "media": if self.video { "video" } else { "audio" },
            "track_id": self.track_id,
            "codec": self.codec,
            "frames": self.frames,
            "keyframes": self.keyframes,
            "bytes": self.bytes,
            "bitrate_kbps": self.bitrate_kbps(),
        })
    }
}

impl Default for DirCounters {
    fn default() -> Self {
        DirCounters {
            by_type: Vec::new(),
            chunk_sizes: vec![DEFAULT_CHUNK_SIZE],
            counter: MediaCounter::default(),
            media_bytes: 0,
            first_ts: None,
            last_ts: 0,
            media_ts: None,
            damaged: 0,
            tracks: Vec::new(),
        }
    }
}

/// Most chunk size changes listed per direction.
const MAX_CHUNK_SIZES: usize = 16;

impl DirCounters {
    fn message(&mut self, msg_type: u8, len: u64, ts: u32, decoded: &Option<&Message>) {
        match self.by_type.iter_mut().find(|(t, _, _)| *t == msg_type) {
            Some(e) => {
                e.1 += 1;
                e.2 += len;
            }
            None => {
                self.by_type.push((msg_type, 1, len));
                self.by_type.sort_unstable();
            }
        }
        self.first_ts.get_or_insert(ts);
        self.last_ts = ts;
        match decoded {
            Some(Message::SetChunkSize(n)) if self.chunk_sizes.len() < MAX_CHUNK_SIZES => {
                self.chunk_sizes.push(n & 0x7FFF_FFFF)
            }
            Some(Message::Video(body)) => {
                self.counter.count(true, body);
                if let Ok(v) = VideoInfo::parse(body) {
                    let codec = v.fourcc.map_or_else(|| v.codec_name(), |f| f.text());
                    let (frame, key) = (v.is_coded_frames(), v.is_keyframe());
                    self.track_media(true, v.multitrack, &v.tracks, &codec, len, ts, frame, key);
                }
                self.media(len, ts);
            }
            Some(Message::Audio(body)) => {
                self.counter.count(false, body);
                if let Ok(a) = AudioInfo::parse(body) {
                    let codec = a.fourcc.map_or_else(|| a.codec_name(), |f| f.text());
                    let frame = a.is_coded_frames();
                    self.track_media(
                        false,
                        a.multitrack,
                        &a.tracks,
                        &codec,
                        len,
                        ts,
                        frame,
                        false,
                    );
                }
                self.media(len, ts);
            }
            Some(Message::Aggregate(body)) => {
                // Its parts count as the messages they are (one splitter,
                // shared with play: proto::message::split_aggregate).
                let (parts, _) = rtmptool::proto::message::split_aggregate(ts, 0, body);
                for p in parts {
                    let video = p.msg_type == MessageType::VIDEO;
                    if video || p.msg_type == MessageType::AUDIO {
                        self.counter.count(video, &p.payload);
                        self.media(p.payload.len() as u64, p.timestamp);
                    }
                }
            }
            _ => {}
        }
    }

    /// Counts one audio/video message per track it carries.
    #[allow(clippy::too_many_arguments)]
    fn track_media(
        &mut self,
        video: bool,
        mt: Option<MultitrackType>,
        tracks: &[Track],
        codec: &str,
        len: u64,
        ts: u32,
        frame: bool,
        key: bool,
    ) {
        let mut count = |id: u8, codec: &str, bytes: u64| {
            let i = match self
                .tracks
                .iter()
                .position(|t| t.video == video && t.track_id == id)
            {
                Some(i) => i,
                None => {
                    self.tracks.push(TrackCounters {
                        video,
                        track_id: id,
                        codec: codec.to_owned(),
                        frames: 0,
                        keyframes: 0,
                        bytes: 0,
                        ts: None,
                    });
                    self.tracks.len() - 1
                }
            };
            let t = &mut self.tracks[i];
            t.frames += u64::from(frame);
            t.keyframes += u64::from(key);
            t.bytes += bytes;
            t.ts = Some(t.ts.map_or((ts, ts), |(a, _)| (a, ts)));
        };
        match (mt, tracks) {
            (None, _) => count(0, codec, len),
            (Some(MultitrackType::ONE_TRACK), [t]) => count(t.track_id, &t.fourcc.text(), len),
            (Some(_), _) => {
                for t in tracks {
                    count(t.track_id, &t.fourcc.text(), t.data_len as u64);
                }
            }
        }
    }

    fn media(&mut self, len: u64, ts: u32) {
        self.media_bytes += len;
        self.media_ts = Some(match self.media_ts {
            None => (ts, ts),
            Some((a, _)) => (a, ts),
        });
    }

    /// Media bitrate in kbit/s over the media timestamps' span.
    fn bitrate_kbps(&self) -> Option<f64> {
        let (a, b) = self.media_ts?;
        let span = b.wrapping_sub(a);
        (span > 0).then(|| self.media_bytes as f64 * 8.0 / f64::from(span))
    }

    fn json(&self) -> Json {
        let mut types = Map::new();
        for (t, n, b) in &self.by_type {
            let name = match MessageType(*t).name() {
                "unknown" => format!("type_{t}"),
                n => n.to_owned(),
            };
            types.insert(name, json!({"count": n, "bytes": b}));
        }
        json!({
            "messages": types,
            "chunk_sizes": self.chunk_sizes,
            "video_frames": self.counter.video_frames,
            "keyframes": self.counter.keyframes,
            "audio_frames": self.counter.audio_frames,
            "unparsed_media": self.counter.unparsed,
            "media_bytes": self.media_bytes,
            "bitrate_kbps": self.bitrate_kbps(),
            "first_timestamp": self.first_ts,
            "last_timestamp": self.first_ts.map(|_| self.last_ts),
            "first_media_timestamp": self.media_ts.map(|m| m.0),
            "last_media_timestamp": self.media_ts.map(|m| m.1),
            "damaged_messages": self.damaged,
            "tracks": self.tracks.iter().map(TrackCounters::json).collect::<Vec<_>>(),
        })
    }
}

#[derive(Debug)]
struct ConnCounters {
    id: u64,
    name: String,
    dirs: [DirCounters; 2],
    warnings: u64,
    tcp: Option<[DirStats; 2]>,
    /// RTMFP session counters (RTMFP sessions only).
    rtmfp: Option<Box<super::rtmfp::SessionStats>>,
}

/// Turns records into output.
pub struct Renderer<W: Write> {
    out: W,
    style: Style,
    hex: bool,
    stats: bool,
    filter: Filter,
    /// Time of the first record, for relative times in human output.
    t0: Option<f64>,
    dirty: bool,
    conns: Vec<ConnCounters>,
    index: HashMap<u64, usize>,
    /// Scratch buffer for records written directly.
    line: Vec<u8>,
    /// What each connection names as secrets, shortened in what is shown
    /// (`None` with `--reveal-keys`); a connection's are forgotten at its
    /// end.
    secrets: Option<HashMap<u64, Secrets>>,
    /// RTMFP user data bytes are shown (`--hex`).
    hex_secrets: bool,
}

fn dir_str(d: Dir) -> &'static str {
    match d {
        Dir::C2s => "c2s",
        Dir::S2c => "s2c",
    }
}

fn version_str(v: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", v[0], v[1], v[2], v[3])
}

fn digest_str(k: PeerHandshake) -> &'static str {
    match k {
        PeerHandshake::Simple => "none",
        PeerHandshake::Digest { scheme } => match scheme.as_u8() {
            0 => "scheme0",
            _ => "scheme1",
        },
        PeerHandshake::UnverifiedDigest => "unverified",
    }
}

fn num(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        Json::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}

/// The JSON fields describing a decoded message's content.
fn content_json(m: &mut Map<String, Json>, decoded: &Message) {
    match decoded {
        Message::SetChunkSize(n) => {
            m.insert("chunk_size".into(), json!(n));
        }
        Message::Abort { csid } => {
            m.insert("abort_csid".into(), json!(csid));
        }
        Message::Acknowledgement { sequence } => {
            m.insert("sequence".into(), json!(sequence));
        }
        Message::WindowAckSize(n) => {
            m.insert("window_ack_size".into(), json!(n));
        }
        Message::SetPeerBandwidth { size, limit } => {
            m.insert("peer_bandwidth".into(), json!(size));
            m.insert("limit_type".into(), json!(limit.name()));
        }
        Message::UserControl(u) => {
            m.insert("event".into(), json!(u.name()));
            m.insert("event_type".into(), json!(u.event_type()));
            match u {
                UserControl::StreamBegin(s)
                | UserControl::StreamEof(s)
                | UserControl::StreamDry(s)
                | UserControl::StreamIsRecorded(s) => {
                    m.insert("event_stream_id".into(), json!(s));
                }
                UserControl::SetBufferLength {
                    stream_id,
                    buffer_ms,
                } => {
                    m.insert("event_stream_id".into(), json!(stream_id));
                    m.insert("buffer_ms".into(), json!(buffer_ms));
                }
                UserControl::PingRequest(t) | UserControl::PingResponse(t) => {
                    m.insert("ping_timestamp".into(), json!(t));
                }
                UserControl::Unknown { data, .. } => {
                    m.insert("event_data".into(), json!(hex(data)));
                }
            }
        }
        Message::Command(c) => {
            let usual = !c.name().is_empty() || c.values.len() < 2;
            if usual && c.transaction_id().is_some() || c.values.len() == 1 {
                m.insert("command".into(), json!(c.name()));
                m.insert(
                    "transaction_id".into(),
                    c.transaction_id().map_or(Json::Null, num),
                );
                if let Some(o) = c.command_object() {
                    m.insert("command_object".into(), o.to_json());
                }
                m.insert(
                    "args".into(),
                    Json::Array(c.args().iter().map(Amf0Value::to_json).collect()),
                );
            } else {
                // Not the usual layout: every value as sent.
                m.insert("command".into(), json!(c.name()));
                m.insert(
                    "values".into(),
                    Json::Array(c.values.iter().map(Amf0Value::to_json).collect()),
                );
            }
        }
        Message::Data(d) => {
            let named = matches!(
                d.values.first(),
                Some(Amf0Value::String(_) | Amf0Value::LongString(_))
            );
            m.insert(
                "name".into(),
                if named { json!(d.name()) } else { Json::Null },
            );
            let rest = if named { &d.values[1..] } else { &d.values[..] };
            m.insert(
                "values".into(),
                Json::Array(rest.iter().map(Amf0Value::to_json).collect()),
            );
        }
        Message::Video(body) => match VideoInfo::parse(body) {
            Ok(v) => {
                m.insert("codec".into(), json!(v.codec_name()));
                if let Some(f) = v.fourcc {
                    m.insert("fourcc".into(), json!(f.text()));
                }
                m.insert("frame_type".into(), json!(v.frame_type.name()));
                m.insert("packet_type".into(), json!(v.packet_type_name()));
                m.insert("keyframe".into(), json!(v.is_keyframe()));
                m.insert("sequence_header".into(), json!(v.is_sequence_header()));
                m.insert("composition_time".into(), json!(v.composition_time));
                ertmp_json(m, v.multitrack, &v.tracks, v.timestamp_offset_nano());
                if let Some(md) = &v.metadata {
                    m.insert("metadata".into(), md.to_json());
                }
            }
            Err(e) => {
                m.insert("error".into(), json!(e.to_string()));
            }
        },
        Message::Audio(body) => match AudioInfo::parse(body) {
            Ok(a) => {
                m.insert("codec".into(), json!(a.codec_name()));
                m.insert("sound_format".into(), json!(a.sound_format.map(|f| f.0)));
                m.insert("packet_type".into(), json!(a.packet_type_name()));
                m.insert("sequence_header".into(), json!(a.is_sequence_header()));
                m.insert("sound_rate_hz".into(), json!(a.sound_rate_hz()));
                m.insert("channels".into(), json!(a.channels()));
                if let Some(f) = a.fourcc {
                    m.insert("fourcc".into(), json!(f.text()));
                }
                ertmp_json(m, a.multitrack, &a.tracks, a.timestamp_offset_nano());
                if let Some(c) = &a.multichannel {
                    m.insert("multichannel".into(), json!(c));
                }
            }
            Err(e) => {
                m.insert("error".into(), json!(e.to_string()));
            }
        },
        Message::Aggregate(body) => {
            let (parts, err) = rtmptool::proto::message::aggregate_parts(body);
            m.insert("parts".into(), json!(parts.len()));
            if let Some(e) = err {
                m.insert("error".into(), json!(e.to_string()));
            }
        }
        Message::SharedObject { .. } | Message::Unknown { .. } => {}
    }
}

/// The E-RTMP multitrack and ModEx facts of an audio/video message:
/// `multitrack`, `tracks` (id, FourCC, composition time, size of the track's
/// data, plus a track's `multichannel` / `metadata`), `timestamp_offset_nano`.
fn ertmp_json(
    m: &mut Map<String, Json>,
    mt: Option<MultitrackType>,
    tracks: &[Track],
    nano: Option<u32>,
) {
    if let Some(mt) = mt {
        m.insert("multitrack".into(), json!(mt.name()));
        let tracks = tracks.iter().map(|t| {
            let mut o = json!({
                "track_id": t.track_id,
                "fourcc": t.fourcc.text(),
                "composition_time": t.composition_time,
                "size": t.data_len,
            });
            if let Some(c) = &t.multichannel {
                o["multichannel"] = json!(c);
            }
            if let Some(md) = &t.metadata {
                o["metadata"] = md.to_json();
            }
            o
        });
        m.insert("tracks".into(), Json::Array(tracks.collect()));
    }
    if let Some(n) = nano {
        m.insert("timestamp_offset_nano".into(), json!(n));
    }
}

/// The human text of E-RTMP multitrack and ModEx facts, e.g.
/// `, OneTrack: track 2 hvc1 cts 80, +105422 ns`.
fn ertmp_text(mt: Option<MultitrackType>, tracks: &[Track], nano: Option<u32>) -> String {
    let mut s = String::new();
    if let Some(mt) = mt {
        let parts: Vec<String> = tracks
            .iter()
            .map(|t| {
                let mut p = format!("track {} {}", t.track_id, t.fourcc.text());
                if let Some(c) = t.composition_time.filter(|c| *c != 0) {
                    p.push_str(&format!(" cts {c}"));
                }
                if let Some(c) = &t.multichannel {
                    p.push_str(&format!(" {}", multichannel_text(c)));
                }
                if let Some(md) = &t.metadata {
                    p.push_str(&format!(" {}", metadata_text(md)));
                }
                if t.size.is_some() {
                    p.push_str(&format!(" ({} B)", t.data_len));
                }
                p
            })
            .collect();
        s.push_str(&format!(", {}: {}", mt.name(), parts.join("; ")));
    }
    if let Some(n) = nano {
        s.push_str(&format!(", +{n} ns"));
    }
    s
}

fn multichannel_text(c: &rtmptool::proto::media::MultichannelConfig) -> String {
    let order = match c.channel_order {
        0 => "unspecified order".to_owned(),
        1 => format!("mask {:#x}", c.channel_flags.unwrap_or(0)),
        2 => format!("map {:?}", c.channel_mapping),
        n => format!("order {n}"),
    };
    format!("{} ch {order}", c.channel_count)
}

fn metadata_text(md: &rtmptool::proto::media::VideoMetadata) -> String {
    let names: Vec<&str> = md.pairs().iter().map(|p| p.0).collect();
    let mut s = names.join(" ");
    if let Some(c) = md.color_info() {
        if c.reset {
            s.push_str(" reset");
        } else {
            let f = |v: Option<f64>| v.map_or("-".to_owned(), |v| v.to_string());
            s.push_str(&format!(
                " {}-bit primaries {} transfer {} matrix {}",
                f(c.bit_depth),
                f(c.color_primaries),
                f(c.transfer_characteristics),
                f(c.matrix_coefficients)
            ));
        }
    }
    s
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// One-line human summary of a message's content.
fn content_text(decoded: &Message) -> String {
    match decoded {
        Message::SetChunkSize(n) => format!("{n}"),
        Message::Abort { csid } => format!("chunk stream {csid}"),
        Message::Acknowledgement { sequence } => format!("{sequence}"),
        Message::WindowAckSize(n) => format!("{n}"),
        Message::SetPeerBandwidth { size, limit } => format!("{size} {}", limit.name()),
        Message::UserControl(u) => match u {
            UserControl::StreamBegin(s)
            | UserControl::StreamEof(s)
            | UserControl::StreamDry(s)
            | UserControl::StreamIsRecorded(s) => format!("{} {s}", u.name()),
            UserControl::SetBufferLength {
                stream_id,
                buffer_ms,
            } => format!("{} stream {stream_id} {buffer_ms} ms", u.name()),
            UserControl::PingRequest(t) | UserControl::PingResponse(t) => {
                format!("{} {t}", u.name())
            }
            UserControl::Unknown { event_type, data } => {
                format!("event {event_type} {}", hex(data))
            }
        },
        // Names from the peer: escaped (rtmptool::text), invalid UTF-8 as \xNN.
        Message::Command(c) => {
            let name = c.values.first().and_then(Amf0Value::text);
            let name = sanitize(name.as_deref().unwrap_or(""));
            match c.transaction_id() {
                Some(t) => format!("{name}({})", num(t)),
                None => name.into_owned(),
            }
        }
        Message::Data(d) => {
            let name = d.values.first().and_then(Amf0Value::text);
            sanitize(name.as_deref().unwrap_or("")).into_owned()
        }
        Message::Video(body) => match VideoInfo::parse(body) {
            Ok(v) => {
                let mut s = format!("{} {}", v.codec_name(), v.frame_type.name());
                let pt = v.packet_type_name();
                if !pt.is_empty() {
                    s.push_str(", ");
                    s.push_str(&pt);
                }
                if let Some(c) = v.composition_time.filter(|c| *c != 0)
                    && v.multitrack.is_none()
                {
                    s.push_str(&format!(", cts {c}"));
                }
                if let (Some(md), None) = (&v.metadata, v.multitrack) {
                    s.push_str(&format!(", {}", metadata_text(md)));
                }
                s.push_str(&ertmp_text(
                    v.multitrack,
                    &v.tracks,
                    v.timestamp_offset_nano(),
                ));
                s
            }
            Err(e) => format!("({e})"),
        },
        Message::Audio(body) => match AudioInfo::parse(body) {
            Ok(a) => {
                let mut s = a.codec_name();
                let pt = a.packet_type_name();
                if !pt.is_empty() {
                    s.push_str(&format!(" {pt}"));
                }
                if let (Some(r), Some(c)) = (a.sound_rate_hz(), a.channels()) {
                    s.push_str(&format!(", {r} Hz, {c} ch"));
                }
                if let (Some(c), None) = (&a.multichannel, a.multitrack) {
                    s.push_str(&format!(", {}", multichannel_text(c)));
                }
                s.push_str(&ertmp_text(
                    a.multitrack,
                    &a.tracks,
                    a.timestamp_offset_nano(),
                ));
                s
            }
            Err(e) => format!("({e})"),
        },
        Message::Aggregate(body) => {
            let (parts, _) = rtmptool::proto::message::aggregate_parts(body);
            format!("{} parts", parts.len())
        }
        Message::SharedObject { .. } | Message::Unknown { .. } => String::new(),
    }
}

/// The AMF values shown below a command or data line.
fn amf_values(decoded: &Message) -> Vec<&Amf0Value> {
    match decoded {
        Message::Command(c) => c
            .values
            .iter()
            .skip(2)
            .filter(|v| !matches!(v, Amf0Value::Null))
            .collect(),
        Message::Data(d) => d.values.iter().skip(1).collect(),
        _ => Vec::new(),
    }
}

/// The typed fields of a non-message record, beside its `message`.
fn event_fields(m: &mut Map<String, Json>, kind: &RecordKind) {
    let mut put = |k: &str, v: Json| {
        m.insert(k.into(), v);
    };
    match kind {
        RecordKind::BadVersion { version, head } => {
            put("version", json!(version));
            put("first_bytes_hex", json!(hex(head)));
        }
        RecordKind::ChunkSizeChanged { old, new } => {
            put("old", json!(old));
            put("chunk_size", json!(new));
        }
        RecordKind::InvalidChunkSize { raw } => put("raw", json!(raw)),
        RecordKind::Type3Convention { csid, convention } => {
            put("csid", json!(csid));
            put("convention", json!(convention));
        }
        RecordKind::Aborted { csid, discarded } => {
            put("csid", json!(csid));
            put("discarded", json!(discarded));
        }
        RecordKind::Interrupted {
            csid,
            received,
            length,
        } => {
            put("csid", json!(csid));
            put("received", json!(received));
            put("length", json!(length));
        }
        RecordKind::Gap {
            missing, reason, ..
        } => {
            put("missing", json!(missing));
            put("reason", json!(format!("{reason:?}")));
        }
        RecordKind::Inconsistent { len } => put("length", json!(len)),
        RecordKind::Resynced {
            skipped,
            chunk_size,
            size_kept,
            chunks_agreed,
            ..
        } => {
            put("skipped", json!(skipped));
            put("chunk_size", json!(chunk_size));
            put("chunk_size_kept", json!(size_kept));
            put("chunks_agreed", json!(chunks_agreed));
        }
        RecordKind::NoBoundary { searched } => put("searched", json!(searched)),
        RecordKind::EndOfCapture {
            undecodable,
            connections,
            packets,
            ip_packets,
            reasons,
        } => {
            put("connections", json!(connections));
            put("packets", json!(packets));
            put("ip_packets", json!(ip_packets));
            put("undecodable", json!(undecodable));
            let by: Vec<Json> = reasons
                .iter()
                .map(|(r, n)| json!({"reason": r, "packets": n}))
                .collect();
            put("undecodable_reasons", Json::Array(by));
        }
        RecordKind::Damaged(d) => {
            put("csid", json!(d.csid));
            put("msg_type", json!(d.header.msg_type.0));
            put("msg_type_name", json!(d.header.msg_type.name()));
            put(
                "timestamp",
                json!((!d.unknown.timestamp).then_some(d.header.timestamp)),
            );
            put("length", json!(d.length));
            put("captured", json!(d.captured));
            put("missing", json!(d.missing));
        }
        RecordKind::ChunkError { chunk_size, .. } => put("chunk_size", json!(chunk_size)),
        RecordKind::Closed { kind } => put("by", json!(format!("{kind:?}").to_lowercase())),
        _ => {}
    }
}

impl<W: Write> Renderer<W> {
    /// A renderer writing to `out`.
    pub fn new(out: W, style: Style, args: &DumpArgs, filter: Filter) -> Self {
        Renderer {
            out,
            style,
            hex: args.hex,
            stats: args.stats,
            filter,
            t0: None,
            dirty: false,
            conns: Vec::new(),
            index: HashMap::new(),
            line: Vec::with_capacity(4096),
            secrets: (!args.reveal_keys && !args.stats).then(HashMap::new),
            hex_secrets: args.hex,
        }
    }

    /// Whether anything was written since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Renders (or counts) one record.
    pub fn record(&mut self, r: &Record) -> io::Result<()> {
        // Learnt from every record, shown or not: the publish a filter
        // hides still names the key its onStatus echoes.
        let r = match &mut self.secrets {
            Some(all) if matches!(r.kind, RecordKind::End { .. }) => {
                all.remove(&r.conn_id);
                Cow::Borrowed(r)
            }
            Some(all) if Secrets::concern(r) => all
                .entry(r.conn_id)
                .or_insert_with(|| Secrets::new(self.hex_secrets))
                .shown(r),
            _ => Cow::Borrowed(r),
        };
        let r = &*r;
        if !self.filter.matches(r) {
            return Ok(());
        }
        if self.stats {
            self.count(r);
            return Ok(());
        }
        self.dirty = true;
        if self.style.json {
            if let RecordKind::Rtmfp(p) = &r.kind {
                // The bulk of RTMFP output: written directly (see report::rtmfp::Obj).
                self.line.clear();
                super::rtmfp::packet_line(
                    &mut self.line,
                    &r.conn,
                    r.dir.map(dir_str),
                    r.frame,
                    r.time.as_f64(),
                    p,
                    self.hex,
                );
                return self.out.write_all(&self.line);
            }
            let v = self.json(r);
            if v.is_null() {
                return Ok(());
            }
            write_json_line(&mut self.out, &v)
        } else {
            self.human(r)
        }
    }

    fn count(&mut self, r: &Record) {
        if r.conn_id == u64::MAX {
            // Capture-level records (end of capture, undecodable packets).
            return;
        }
        let i = *self.index.entry(r.conn_id).or_insert_with(|| {
            self.conns.push(ConnCounters {
                id: r.conn_id,
                name: r.conn.to_string(),
                dirs: Default::default(),
                warnings: 0,
                tcp: None,
                rtmfp: None,
            });
            self.conns.len() - 1
        });
        let c = &mut self.conns[i];
        match &r.kind {
            RecordKind::Message { raw, decoded } => {
                if let Some(d) = r.dir {
                    c.dirs[d.index()].message(
                        raw.header.msg_type.0,
                        raw.payload.len() as u64,
                        raw.header.timestamp,
                        &decoded.as_ref().ok(),
                    );
                }
            }
            RecordKind::Damaged(_) => {
                c.warnings += 1;
                if let Some(d) = r.dir {
                    c.dirs[d.index()].damaged += 1;
                }
            }
            k if k.is_problem() => c.warnings += 1,
            RecordKind::End { stats } => c.tcp = Some(*stats),
            RecordKind::RtmfpSession { .. } => c.rtmfp = Some(Box::default()),
            RecordKind::Rtmfp(p) => {
                if let Some(d) = r.dir {
                    c.rtmfp
                        .get_or_insert_with(Box::default)
                        .packet(d, r.time, p);
                }
            }
            _ => {}
        }
    }

    fn base(&self, r: &Record, ty: &str) -> Map<String, Json> {
        let mut m = Map::new();
        m.insert("type".into(), json!(ty));
        m.insert("conn".into(), json!(&*r.conn));
        m.insert("dir".into(), json!(r.dir.map(dir_str)));
        m.insert("frame".into(), json!(r.frame));
        m.insert("time".into(), json!(r.time.as_f64()));
        m
    }

    fn json(&self, r: &Record) -> Json {
        match &r.kind {
            RecordKind::Open {
                client,
                server,
                syn_seen,
            } => {
                let mut m = self.base(r, "connection");
                m.insert("client".into(), json!(client.to_string()));
                m.insert("server".into(), json!(server.to_string()));
                m.insert("syn_seen".into(), json!(syn_seen));
                Json::Object(m)
            }
            RecordKind::RtmfpSession {
                initiator,
                responder,
            } => {
                let mut m = self.base(r, "rtmfp_session");
                m.insert("initiator".into(), json!(initiator.to_string()));
                m.insert("responder".into(), json!(responder.to_string()));
                Json::Object(m)
            }
            // Written directly by `record` (report::rtmfp::packet_line).
            RecordKind::Rtmfp(_) => Json::Null,
            RecordKind::Handshake(h) => {
                let mut m = self.base(r, "handshake");
                let d = r.dir.unwrap_or(Dir::C2s);
                m.insert("offset".into(), json!(r.offset));
                match h {
                    HandshakePacket::Version(v) => {
                        m.insert("packet".into(), json!(handshake_packet_name(d, 0)));
                        m.insert("version".into(), json!(v));
                    }
                    HandshakePacket::Hello { info, echo_of_peer } => {
                        m.insert("packet".into(), json!(handshake_packet_name(d, 1)));
                        m.insert("version".into(), json!(version_str(info.version)));
                        m.insert("timestamp".into(), json!(info.time));
                        m.insert("digest".into(), json!(digest_str(info.kind)));
                        m.insert("digest_verified".into(), json!(info.kind.digest_verified()));
                        m.insert("echo_of_peer".into(), json!(echo_of_peer));
                    }
                    HandshakePacket::Response(info, time) => {
                        m.insert("packet".into(), json!(handshake_packet_name(d, 2)));
                        m.insert("timestamp".into(), json!(time));
                        if let Some(i) = info {
                            m.insert("time2".into(), json!(i.time2));
                            m.insert("time_echo".into(), json!(i.time_echo));
                            m.insert("random_echo".into(), json!(i.random_echo));
                            m.insert("hmac".into(), json!(i.hmac));
                            m.insert("valid".into(), json!(i.is_valid()));
                        }
                    }
                }
                Json::Object(m)
            }
            RecordKind::Chunk(c) => {
                let mut m = self.base(r, "chunk");
                m.insert("offset".into(), json!(c.offset));
                m.insert("fmt".into(), json!(c.fmt));
                m.insert("csid".into(), json!(c.csid));
                m.insert("header_len".into(), json!(c.header_len));
                m.insert("payload_len".into(), json!(c.payload_len));
                Json::Object(m)
            }
            RecordKind::Message { raw, decoded } => {
                let mut m = self.base(r, "message");
                m.insert("offset".into(), json!(raw.offset));
                m.insert("csid".into(), json!(raw.csid));
                m.insert("fmt".into(), json!(raw.fmt));
                m.insert("chunks".into(), json!(raw.chunks));
                m.insert("msg_type".into(), json!(raw.header.msg_type.0));
                m.insert("msg_type_name".into(), json!(raw.header.msg_type.name()));
                let u = raw.unknown;
                m.insert(
                    "stream_id".into(),
                    json!((!u.stream_id).then_some(raw.header.stream_id)),
                );
                m.insert(
                    "timestamp".into(),
                    json!((!u.timestamp).then_some(raw.header.timestamp)),
                );
                m.insert("length".into(), json!(raw.payload.len()));
                match decoded {
                    Ok(Message::Aggregate(body)) => {
                        let (parts, err) = rtmptool::proto::message::split_aggregate(
                            raw.header.timestamp,
                            raw.header.stream_id,
                            body,
                        );
                        let list: Vec<Json> = parts
                            .iter()
                            .map(|p| {
                                json!({"msg_type": p.msg_type.0, "msg_type_name": p.msg_type.name(),
                                       "timestamp": p.timestamp, "length": p.payload.len()})
                            })
                            .collect();
                        m.insert("parts".into(), json!(list));
                        if let Some(e) = err {
                            m.insert("error".into(), json!(e.to_string()));
                        }
                    }
                    Ok(msg) => content_json(&mut m, msg),
                    Err(e) => {
                        m.insert("error".into(), json!(e.to_string()));
                    }
                }
                if self.hex {
                    m.insert("payload_hex".into(), json!(hex(&raw.payload)));
                }
                Json::Object(m)
            }
            kind if !matches!(kind, RecordKind::End { .. })
                && (kind.is_problem() || self.style.verbosity > 0) =>
            {
                let ty = if kind.is_problem() {
                    "warning"
                } else {
                    "event"
                };
                let mut m = self.base(r, ty);
                m.insert("offset".into(), json!(r.offset));
                m.insert("code".into(), json!(words::code(kind)));
                if let Some(msg) = words::describe(kind, r.dir) {
                    m.insert("message".into(), json!(msg));
                }
                event_fields(&mut m, kind);
                Json::Object(m)
            }
            RecordKind::End { stats } => {
                let mut m = self.base(r, "connection_end");
                for (d, s) in [Dir::C2s, Dir::S2c].iter().zip(stats) {
                    m.insert(
                        dir_str(*d).into(),
                        json!({
                            "segments": s.segments, "bytes": s.bytes,
                            "dup_segments": s.dup_segments, "gaps": s.gaps,
                            "gap_bytes": s.gap_bytes,
                        }),
                    );
                }
                m.remove("frame");
                m.remove("time");
                Json::Object(m)
            }
            _ => Json::Null,
        }
    }

    fn paint(&self, s: &str, f: fn(&str) -> String) -> String {
        if self.style.color { f(s) } else { s.to_owned() }
    }

    fn human(&mut self, r: &Record) -> io::Result<()> {
        let t = r.time.as_f64();
        let rel = match r.kind {
            RecordKind::End { .. } => return Ok(()),
            _ => t - *self.t0.get_or_insert(t),
        };
        let prefix = format!(
            "{:>6} {:>10.6} #{} {}",
            r.frame,
            rel,
            rtmptool::analyze::conn_label(r.conn_id),
            r.dir.map_or("   ", dir_str)
        );
        let prefix = self.paint(&prefix, |s| s.dimmed().to_string());
        match &r.kind {
            RecordKind::Open {
                client,
                server,
                syn_seen,
            } => {
                let how = if *syn_seen { "SYN seen" } else { "no SYN seen" };
                let line = format!("connection #{}: {client} -> {server} ({how})", r.conn_id);
                let line = self.paint(&line, |s| s.bold().to_string());
                writeln!(self.out, "{prefix} {line}")
            }
            RecordKind::RtmfpSession {
                initiator,
                responder,
            } => {
                let line = format!(
                    "RTMFP session #{}: {initiator} -> {responder} (initiator -> responder)",
                    rtmptool::analyze::conn_label(r.conn_id)
                );
                let line = self.paint(&line, |s| s.bold().to_string());
                writeln!(self.out, "{prefix} {line}")
            }
            RecordKind::Rtmfp(p) => {
                writeln!(self.out, "{prefix} {}", super::rtmfp::packet_text(p))?;
                if self.hex
                    && let Some(pk) = p.packet()
                {
                    for c in &pk.chunks {
                        if let rtmptool::proto::rtmfp::chunk::ChunkBody::UserData(d) = &c.body
                            && !d.data.is_empty()
                        {
                            hexyl::PrinterBuilder::new(&mut self.out)
                                .show_color(self.style.color)
                                .build()
                                .print_all(&d.data[..])?;
                        }
                    }
                }
                Ok(())
            }
            RecordKind::Handshake(h) => {
                let d = r.dir.unwrap_or(Dir::C2s);
                let text = match h {
                    HandshakePacket::Version(v) => format!("version {v}"),
                    HandshakePacket::Hello { info, echo_of_peer } => {
                        let digest = match info.kind {
                            PeerHandshake::Simple => "simple handshake".to_owned(),
                            PeerHandshake::Digest { scheme } => {
                                format!("digest scheme {} verified", scheme.as_u8())
                            }
                            PeerHandshake::UnverifiedDigest => "digest not verified".to_owned(),
                        };
                        let echo = if *echo_of_peer { ", echo of C1" } else { "" };
                        format!(
                            "time {} version {}, {digest}{echo}",
                            info.time,
                            version_str(info.version)
                        )
                    }
                    HandshakePacket::Response(info, time) => match info {
                        Some(i) => {
                            let what = if i.random_echo {
                                "echo"
                            } else if i.hmac == Some(true) {
                                "HMAC verified"
                            } else if i.hmac == Some(false) {
                                "HMAC not verified"
                            } else {
                                "neither echo nor HMAC"
                            };
                            format!("time {time}, {what}")
                        }
                        None => format!("time {time}"),
                    },
                };
                let name = self.paint(
                    handshake_packet_name(
                        d,
                        match h {
                            HandshakePacket::Version(_) => 0,
                            HandshakePacket::Hello { .. } => 1,
                            HandshakePacket::Response(..) => 2,
                        },
                    ),
                    |s| s.cyan().to_string(),
                );
                writeln!(self.out, "{prefix} {name} {text}")
            }
            RecordKind::Chunk(c) => {
                if self.style.verbosity > 0 {
                    writeln!(
                        self.out,
                        "{prefix}   chunk fmt {} csid {} offset {} ({} + {} bytes)",
                        c.fmt, c.csid, c.offset, c.header_len, c.payload_len
                    )?;
                }
                Ok(())
            }
            RecordKind::Message { raw, decoded } => {
                let ty = raw.header.msg_type;
                let name = match ty.name() {
                    "unknown" => format!("type {}", ty.0),
                    n => n.to_owned(),
                };
                let colour: fn(&str) -> String = match ty.0 {
                    8 | 9 => |s| s.green().to_string(),
                    15..=20 => |s| s.yellow().to_string(),
                    _ => |s| s.blue().to_string(),
                };
                let name = self.paint(&name, colour);
                let (content, amf) = match decoded {
                    Ok(m) => (content_text(m), amf_values(m)),
                    Err(e) => (
                        self.paint(&format!("({e})"), |s| s.red().to_string()),
                        vec![],
                    ),
                };
                let sid = if raw.unknown.stream_id {
                    "?".to_string()
                } else {
                    raw.header.stream_id.to_string()
                };
                let ts = if raw.unknown.timestamp {
                    "?".to_string()
                } else {
                    raw.header.timestamp.to_string()
                };
                let mut line = format!(
                    "{prefix} csid {} sid {sid} ts {ts} {name} {} B {content}",
                    raw.csid,
                    raw.payload.len()
                );
                if self.style.verbosity > 0 {
                    line.push_str(&format!(
                        "  [offset {}, fmt {}, {} chunks]",
                        raw.offset, raw.fmt, raw.chunks
                    ));
                }
                writeln!(self.out, "{}", line.trim_end())?;
                if self.style.verbosity >= 0 {
                    for v in amf {
                        let text = serde_json::to_string_pretty(&v.to_json())
                            .unwrap_or_else(|e| e.to_string());
                        for l in text.lines() {
                            // JSON escapes C0; DEL and C1 controls it leaves.
                            writeln!(self.out, "{:22}{}", "", sanitize(l))?;
                        }
                    }
                }
                if self.hex && !raw.payload.is_empty() {
                    hexyl::PrinterBuilder::new(&mut self.out)
                        .show_color(self.style.color)
                        .build()
                        .print_all(&raw.payload[..])?;
                }
                Ok(())
            }
            RecordKind::End { .. } => Ok(()),
            kind => {
                let Some(msg) = words::describe(kind, r.dir) else {
                    return Ok(());
                };
                if kind.is_problem() {
                    let w = self.paint("warning:", |s| s.yellow().bold().to_string());
                    writeln!(self.out, "{prefix} {w} {msg}")
                } else if self.style.verbosity > 0 {
                    writeln!(self.out, "{prefix} {msg}")
                } else {
                    Ok(())
                }
            }
        }
    }

    /// End of input: the `--stats` tables (or records), then flush.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.stats {
            let conns = std::mem::take(&mut self.conns);
            for c in &conns {
                if let Some(st) = &c.rtmfp {
                    if self.style.json {
                        write_json_line(&mut self.out, &st.json(&c.name))?;
                    } else {
                        let title = format!(
                            "RTMFP session #{}: {}",
                            rtmptool::analyze::conn_label(c.id),
                            c.name
                        );
                        let title = self.paint(&title, |s| s.bold().to_string());
                        write!(self.out, "{}", st.text(&title))?;
                    }
                    if c.dirs.iter().all(|d| d.by_type.is_empty()) {
                        continue;
                    }
                }
                if self.style.json {
                    let mut v = json!({
                        "type": "conn_stats",
                        "conn": c.name,
                        "c2s": c.dirs[0].json(),
                        "s2c": c.dirs[1].json(),
                        "warnings": c.warnings,
                    });
                    if let Some(t) = &c.tcp {
                        v["tcp_bytes"] = json!([t[0].bytes, t[1].bytes]);
                    }
                    write_json_line(&mut self.out, &v)?;
                } else {
                    self.stats_table(c)?;
                }
            }
        }
        self.out.flush()
    }

    fn stats_table(&mut self, c: &ConnCounters) -> io::Result<()> {
        let title = format!(
            "connection #{}: {}",
            rtmptool::analyze::conn_label(c.id),
            c.name
        );
        writeln!(self.out, "{}", self.paint(&title, |s| s.bold().to_string()))?;
        let mut t = Table::new();
        t.load_style(presets::ASCII_MARKDOWN)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(vec![
                "type",
                "c2s messages",
                "c2s bytes",
                "s2c messages",
                "s2c bytes",
            ]);
        let mut types: Vec<u8> = c
            .dirs
            .iter()
            .flat_map(|d| d.by_type.iter().map(|e| e.0))
            .collect();
        types.sort_unstable();
        types.dedup();
        for ty in types {
            let mut row = vec![match MessageType(ty).name() {
                "unknown" => format!("type {ty}"),
                n => format!("{n} ({ty})"),
            }];
            for d in &c.dirs {
                let (n, b) = d
                    .by_type
                    .iter()
                    .find(|e| e.0 == ty)
                    .map_or((0, 0), |e| (e.1, e.2));
                row.push(n.to_string());
                row.push(b.to_string());
            }
            t.add_row(row);
        }
        for i in 1..5 {
            if let Some(col) = t.column_mut(i) {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
        writeln!(self.out, "{t}")?;
        let mut f = Table::new();
        f.load_style(presets::ASCII_MARKDOWN)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(vec!["", "c2s", "s2c"]);
        let row = |name: &str, g: &dyn Fn(&DirCounters) -> String| {
            vec![name.to_owned(), g(&c.dirs[0]), g(&c.dirs[1])]
        };
        f.add_row(row("chunk sizes", &|d| {
            d.chunk_sizes
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" -> ")
        }));
        f.add_row(row("media bitrate (kbit/s)", &|d| {
            d.bitrate_kbps().map_or("-".into(), |b| format!("{b:.0}"))
        }));
        f.add_row(row("video frames (key)", &|d| {
            format!("{} ({})", d.counter.video_frames, d.counter.keyframes)
        }));
        f.add_row(row("audio frames", &|d| d.counter.audio_frames.to_string()));
        // Per-track rows when a direction carried more than one track or any
        // E-RTMP track id other than the default 0.
        let multi = c.dirs.iter().any(|d| {
            d.tracks.iter().filter(|t| t.video).count() > 1
                || d.tracks.iter().filter(|t| !t.video).count() > 1
                || d.tracks.iter().any(|t| t.track_id != 0)
        });
        if multi {
            let mut labels: Vec<(bool, u8, String)> = Vec::new();
            for t in c.dirs.iter().flat_map(|d| &d.tracks) {
                if !labels.iter().any(|l| (l.0, l.1) == (t.video, t.track_id)) {
                    labels.push((t.video, t.track_id, t.label()));
                }
            }
            labels.sort_unstable_by_key(|l| (!l.0, l.1));
            for (video, id, label) in labels {
                let cell = |d: &DirCounters| {
                    d.tracks
                        .iter()
                        .find(|t| (t.video, t.track_id) == (video, id))
                        .map_or("-".into(), |t| {
                            let rate = t.bitrate_kbps().map_or("-".into(), |b| format!("{b:.0}"));
                            if video {
                                format!("{} ({}) frames, {rate} kbit/s", t.frames, t.keyframes)
                            } else {
                                format!("{} frames, {rate} kbit/s", t.frames)
                            }
                        })
                };
                f.add_row(vec![label, cell(&c.dirs[0]), cell(&c.dirs[1])]);
            }
        }
        f.add_row(row("first / last media timestamp (ms)", &|d| {
            d.media_ts
                .or(d.first_ts.map(|a| (a, d.last_ts)))
                .map_or("-".into(), |(a, b)| format!("{a} / {b}"))
        }));
        if let Some(tcp) = &c.tcp {
            f.add_row(vec![
                "TCP bytes (gaps)".to_owned(),
                format!("{} ({})", tcp[0].bytes, tcp[0].gaps),
                format!("{} ({})", tcp[1].bytes, tcp[1].gaps),
            ]);
        }
        if c.dirs.iter().any(|d| d.damaged > 0) {
            f.add_row(row("messages that lost bytes", &|d| d.damaged.to_string()));
        }
        f.add_row(vec![
            "warnings".to_owned(),
            c.warnings.to_string(),
            String::new(),
        ]);
        writeln!(self.out, "{f}\n")
    }
}

/// Whether `--conn c` picks connection `id` named `conn`
/// (`client-server`): its number (`0`, `u0`), the whole name, or one end
/// whole, its address or its port (`127.0.0.1:41186`, `127.0.0.1`,
/// `41186`). Whole parts only: `1` is connection 1 (or port 1), not every
/// connection of 127.0.0.1.
fn conn_matches(c: &str, id: u64, conn: &str) -> bool {
    if c.parse::<u64>().ok() == Some(id) || c == rtmptool::analyze::conn_label(id) || c == conn {
        return true;
    }
    conn.split('-').any(|end| {
        let (addr, port) = end.rsplit_once(':').unwrap_or((end, ""));
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        end == c || port == c || addr == c.trim_start_matches('[').trim_end_matches(']')
    })
}

#[cfg(test)]
mod tests {
    use super::conn_matches;

    #[test]
    fn conn_picks_whole_parts_only() {
        let v4 = "127.0.0.1:41186-127.0.0.1:1935";
        for c in ["1", "127.0.0.1:41186", "127.0.0.1", "41186", "1935", v4] {
            assert!(conn_matches(c, 1, v4), "{c}");
        }
        // Connection 0 of the same addresses: "1" is not in it as a whole.
        for c in ["1", "11", "0.0", "4118", "127.0.0.1:4118", "27.0.0.1"] {
            assert!(!conn_matches(c, 0, v4), "{c}");
        }
        let v6 = "[::1]:50000-[::1]:1935";
        for c in ["::1", "[::1]", "[::1]:50000", "50000"] {
            assert!(conn_matches(c, 7, v6), "{c}");
        }
        assert!(!conn_matches("::", 7, v6));
        // RTMFP sessions by their own number.
        let base = rtmptool::analyze::RTMFP_CONN_BASE;
        assert!(conn_matches("u0", base, "10.0.0.1:1935-10.0.0.2:5000"));
        assert!(!conn_matches("0", base, "10.0.0.1:1935-10.0.0.2:5000"));
    }
}
