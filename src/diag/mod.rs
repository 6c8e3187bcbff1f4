//! Faults found in an RTMP connection, explained: pure analyses over the
//! analyzer's typed [`Record`]s (and, for chunk-size inference, the bytes it
//! hands to its tap, [`Data`]) that produce [`Finding`]s. `diagnose` runs
//! them over a capture; `serve` and `relay` can run them live on their
//! sessions' events.
//!
//! What is looked for, with the spec section each rests on:
//! - `chunk_size_mismatch` (RTMP 1.0 §5.3.1, §5.4.1): a sender chunking at a
//!   size the receiver was not told; [`chunk_size`] infers the size used,
//!   the first divergence and what nginx-rtmp logs for it;
//! - `message_too_big`: over nginx-rtmp's limits (`max_message`,
//!   `max_streams`) or a Set Chunk Size outside what servers accept;
//! - `handshake_incomplete`, `handshake_bad_version` (§5.2);
//! - `refused`: `_error` answers and `onStatus` errors (§7.2), and servers that
//!   close after connect or publish without an answer;
//! - `extended_timestamp` (§5.3.1.3), `ertmp_not_relayed` (E-RTMP v2),
//!   `falls_behind_real_time`, `acknowledgement` (§5.4.3, §5.4.4);
//! - `protocol_violation`: what a client sends that is not RTMP and no
//!   chunk-size mismatch explains: a chunk on a chunk stream no fmt-0 header
//!   opened (§5.3.1.2), a body that does not decode (§5.4, §7.1), a message
//!   type RTMP does not define.
//!
//! [`live`] runs checks against a server (`diagnose URL`) and reports them
//! as findings too.

pub mod chunk_size;
pub mod ecn;
pub mod live;

use std::collections::HashMap;
use std::sync::Arc;

use crate::analyze::{CloseKind, Data, HandshakePacket, Record, RecordKind, SyncCause};
use crate::capture::Timestamp;
use crate::capture::tcp::Dir;
use crate::proto::amf0::Amf0Value;
use crate::proto::chunk::walk::plausible_length;
use crate::proto::chunk::{DEFAULT_CHUNK_SIZE, RawMessage, Type3ExtendedTimestamp};
use crate::proto::handshake::{PeerHandshake, describe_bad_version};
use crate::proto::message::{Message, MessageType};

use chunk_size::{CsidHeader, Limits, NGINX_MAX_CHUNK_SIZE, NGINX_MAX_MESSAGE, NGINX_MAX_STREAMS};

/// What kind of fault a finding is about (the `code` of a `finding` record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    /// A sender chunks at a size the receiver was not told.
    ChunkSizeMismatch,
    /// A message, chunk stream id or chunk size over a server's limit.
    MessageTooBig,
    /// A handshake packet never came.
    HandshakeIncomplete,
    /// C0/S0 is not 3, or a digest does not verify.
    HandshakeBadVersion,
    /// Extended timestamps or timestamps that jump.
    ExtendedTimestamp,
    /// The server refused connect, publish or play.
    Refused,
    /// E-RTMP video that players do not get or cannot read.
    ErtmpNotRelayed,
    /// Media arrives slower than real time.
    FallsBehindRealTime,
    /// Acknowledgement window trouble.
    Acknowledgement,
    /// Writes held back by Nagle's algorithm against delayed ACKs.
    NagleStall,
    /// The peer broke the protocol: a chunk on a chunk stream no header
    /// opened, a message that does not decode, a message type RTMP does not
    /// define.
    ProtocolViolation,
    /// `serve`: the peer uses something serve does not support (a shared
    /// object, AMF3 data AMF0 cannot carry); what serve did instead.
    Unsupported,
}

impl Code {
    /// The stable machine name.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::ChunkSizeMismatch => "chunk_size_mismatch",
            Code::MessageTooBig => "message_too_big",
            Code::HandshakeIncomplete => "handshake_incomplete",
            Code::HandshakeBadVersion => "handshake_bad_version",
            Code::ExtendedTimestamp => "extended_timestamp",
            Code::Refused => "refused",
            Code::ErtmpNotRelayed => "ertmp_not_relayed",
            Code::FallsBehindRealTime => "falls_behind_real_time",
            Code::Acknowledgement => "acknowledgement",
            Code::NagleStall => "nagle_stall",
            Code::ProtocolViolation => "protocol_violation",
            Code::Unsupported => "unsupported",
        }
    }
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; nothing breaks.
    Info,
    /// Breaks with some peers or settings.
    Warning,
    /// Breaks the session.
    Error,
}

impl Severity {
    /// The stable machine name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// A typed value attached to a finding (its machine-readable facts).
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    /// A count, size, offset or frame.
    Int(u64),
    /// A rate or duration.
    Float(f64),
    /// A name or a predicted log line.
    Text(String),
}

/// One fault, where it is, what it means and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// What kind of fault.
    pub code: Code,
    /// How bad.
    pub severity: Severity,
    /// The connection (`client_ip:port-server_ip:port`).
    pub conn: Arc<str>,
    /// Connection number in the capture.
    pub conn_id: u64,
    /// The direction it is about.
    pub dir: Option<Dir>,
    /// Capture frame where it shows first.
    pub frame: Option<u64>,
    /// Stream offset in `dir` (C0 = 0).
    pub offset: Option<u64>,
    /// Capture time of `frame`.
    pub time: Option<Timestamp>,
    /// What happened, in words (text from the capture sanitised, secrets redacted).
    pub message: String,
    /// What to do about it (mostly words that do not change: not copied
    /// into every finding of a capture with many).
    pub fix: std::borrow::Cow<'static, str>,
    /// Machine-readable facts (`used_chunk_size`, `nginx_log`, ...).
    pub facts: Vec<(&'static str, Fact)>,
}

/// Settings of a [`Diagnoser`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Show stream keys and query values in full in messages.
    pub reveal_keys: bool,
    /// Bytes the chunk-stream watches of all live connections may keep
    /// before one that needs more gives up (default 64 MiB; see
    /// [`Diagnoser::unjudged`]).
    pub watch_budget: Option<usize>,
}

/// The handshake packet of a direction was seen at this frame and time.
#[derive(Debug, Clone, Copy)]
struct Seen {
    frame: u64,
    time: Timestamp,
}

/// Bytes kept after a chunk stream went wrong before it is judged.
const EVIDENCE_AFTER_TROUBLE: u64 = 2 << 20;
/// Clean message starts kept as walk anchors.
const ANCHOR_LAG: usize = 16;
/// Bytes the oldest anchor may lie behind the newest.
const ANCHOR_SPAN: u64 = 256 << 10;

/// Most bytes buffered without a message start to anchor them (a stream
/// still looking for its first chunk boundary, or one huge message).
const MAX_UNANCHORED: usize = 8 << 20;

/// Bytes the chunk-stream watches of all live connections keep together
/// before a watch that needs more gives up (a capture of many connections
/// carrying megabytes each of what is not RTMP would otherwise keep all of
/// them).
const WATCH_BUDGET: usize = 64 << 20;

/// Memory of a connection's watches.
fn watched(c: &ConnDiag) -> usize {
    c.watch[0].buf.capacity() + c.watch[1].buf.capacity()
}

#[derive(Debug, Clone)]
struct Anchor {
    offset: u64,
    /// Set where a Set Chunk Size took effect (no message read with the
    /// new size yet).
    scs: bool,
    state: Vec<CsidHeader>,
    chunk_size: u32,
    /// Where the chunk size in force was announced (offset, frame), if it was.
    announced_at: Option<(u64, u64)>,
}

/// Chunk-stream watch of one direction: recent bytes from the last clean
/// message start, to re-walk when the stream goes wrong.
#[derive(Debug, Default)]
struct Watch {
    buf: Vec<u8>,
    base: u64,
    /// `(offset, frame)` of each delivered segment still in `buf`.
    segs: Vec<(u64, u64)>,
    chunk_size: u32,
    announced_at: Option<(u64, u64)>,
    csids: Vec<CsidHeader>,
    /// The last [`ANCHOR_LAG`] clean message starts (since the last chunk
    /// size change), oldest first: walks start at the oldest, so a few
    /// misread messages that happened to look sane before the first symptom
    /// do not hide where the stream really went wrong.
    anchors: std::collections::VecDeque<Anchor>,
    /// The anchors from before the last Set Chunk Size, until a message is
    /// read cleanly with the new size: a "Set Chunk Size" misread from a
    /// payload must not hide where the stream went wrong.
    prev_anchors: std::collections::VecDeque<Anchor>,
    /// First symptom: offset and frame.
    trouble: Option<(u64, u64)>,
    /// Where the analyzer's decoder broke.
    decoder_break: Option<(u64, u64)>,
    /// Judged (or given up): no more buffering.
    done: bool,
}

impl Watch {
    fn new() -> Self {
        Watch {
            chunk_size: DEFAULT_CHUNK_SIZE,
            ..Default::default()
        }
    }

    fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    fn frame_at(&self, off: u64) -> Option<u64> {
        let i = self.segs.partition_point(|s| s.0 <= off);
        self.segs.get(i.checked_sub(1)?).map(|s| s.1)
    }

    fn reset(&mut self, at: u64) {
        self.buf.clear();
        self.segs.clear();
        self.base = at;
        self.anchors.clear();
        self.prev_anchors.clear();
    }

    /// Takes a direction's bytes. `tight`: the connections together keep
    /// more than their budget ([`WATCH_BUDGET`]); a watch that would need
    /// more memory then gives up (returns true: the direction's chunk size
    /// is not judged). Watches of streams that flow cleanly keep their
    /// size; those that only grow (bytes that never settle into messages)
    /// are the ones that give up.
    fn push(&mut self, d: &Data<'_>, tight: bool) -> bool {
        if self.done || d.bytes.is_empty() {
            return false;
        }
        if tight && self.buf.len() + d.bytes.len() > self.buf.capacity() {
            self.done = true;
            self.buf = Vec::new();
            self.segs = Vec::new();
            return true;
        }
        if d.offset != self.end() {
            // A hole (or the start): what is buffered no longer continues.
            self.reset(d.offset);
        }
        self.segs.push((d.offset, d.frame));
        self.buf.extend_from_slice(d.bytes);
        if self.anchors.is_empty() && self.trouble.is_none() && self.buf.len() > MAX_UNANCHORED {
            let end = self.end();
            self.reset(end);
        }
        false
    }

    /// Adds a walk anchor at `offset` (a chunk boundary where the chunk size
    /// in force and the per-stream state `self.csids` are known), unless
    /// trouble froze the anchors or the last one is further on. After a
    /// chunk size change (`fresh`) the older anchors go: walks do not apply
    /// Set Chunk Size.
    fn add_anchor(&mut self, offset: u64, fresh: bool) {
        if self.trouble.is_some()
            || self.done
            || offset < self.base
            || offset > self.end()
            || self.anchors.back().is_some_and(|a| a.offset > offset)
        {
            return;
        }
        if fresh {
            let only_scs = self.anchors.len() == 1 && self.anchors[0].scs;
            if !only_scs {
                self.prev_anchors = std::mem::take(&mut self.anchors);
            }
            self.anchors.clear();
        } else if !self.prev_anchors.is_empty() {
            // A message read cleanly with the new size: it holds.
            self.prev_anchors.clear();
        }
        if self.anchors.back().is_some_and(|a| a.offset == offset) {
            self.anchors.pop_back();
        }
        // Reuse the oldest anchor's allocation once the ring is full.
        let mut a = if self.anchors.len() >= ANCHOR_LAG {
            self.anchors.pop_front().unwrap_or_else(|| Anchor {
                offset,
                scs: fresh,
                state: Vec::new(),
                chunk_size: 0,
                announced_at: None,
            })
        } else {
            Anchor {
                offset,
                scs: fresh,
                state: Vec::new(),
                chunk_size: 0,
                announced_at: None,
            }
        };
        a.offset = offset;
        a.scs = fresh;
        a.state.clone_from(&self.csids);
        a.chunk_size = self.chunk_size;
        a.announced_at = self.announced_at;
        self.anchors.push_back(a);
        // Bounded in bytes too: big media messages keep few anchors (and
        // the buffer small enough to stay in cache).
        while self.anchors.len() > 1
            && self
                .anchors
                .front()
                .is_some_and(|f| offset - f.offset > ANCHOR_SPAN)
        {
            self.anchors.pop_front();
        }
        self.trim();
    }

    /// Drops bytes before the oldest anchor (amortised: only when they are many).
    fn trim(&mut self) {
        let Some(a) = self.anchors.front() else {
            return;
        };
        let dead = (a.offset - self.base) as usize;
        if dead > (64 << 10) && dead > self.buf.len() / 2 {
            self.buf.drain(..dead);
            self.base = a.offset;
            let keep = self
                .segs
                .partition_point(|s| s.0 <= a.offset)
                .saturating_sub(1);
            self.segs.drain(..keep);
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct MediaStats {
    messages: u64,
    bytes: u64,
    first: Option<(u32, Timestamp, u64)>,
    last: Option<(u32, Timestamp)>,
    audio: u64,
    video: u64,
    ertmp_video: u64,
    small_video: u64,
    first_audio_frame: Option<u64>,
}

/// Acknowledgements of a direction's bytes: count, last sequence number,
/// and where it went back (frame, from, to).
type AckState = (u64, u32, Option<(u64, u32, u32)>);

#[derive(Debug)]
struct ConnDiag {
    name: Arc<str>,
    id: u64,
    mid_stream: bool,
    opened: bool,
    hs: [[Option<Seen>; 3]; 2],
    hs_bytes: [u64; 2],
    bad_version: Option<(Dir, u8, Vec<u8>, u64, Timestamp)>,
    /// The other side's first bytes when they are not RTMP either.
    answer_not_rtmp: Option<(u8, Vec<u8>)>,
    bad_digest: [bool; 2],
    closed: [Option<(CloseKind, u64, Timestamp)>; 2],
    last_time: Option<Timestamp>,
    watch: [Watch; 2],
    /// c2s commands waiting for an answer: transaction id, name, frame, time.
    pending: Vec<(f64, String, u64, Timestamp)>,
    /// Commands the client sent: name, frame, time, answered.
    commands: Vec<(String, u64, Timestamp, bool)>,
    flash_ver: Option<String>,
    /// The server answered connect with nginx-rtmp's fmsVer.
    nginx: bool,
    secrets: Vec<String>,
    publishing: bool,
    playing: Option<(u64, Timestamp)>,
    media: [MediaStats; 2],
    type3: [Option<Type3ExtendedTimestamp>; 2],
    type3_mixed: [Option<(u64, u64, u32)>; 2],
    flagged: Vec<(Code, Option<Dir>)>,
    findings: Vec<Finding>,
    /// Window Acknowledgement Size sent in a direction: (size, offset, frame).
    ack_window: [Option<(u32, u64, u64)>; 2],
    /// Acknowledgements of a direction's bytes (sent the other way): count,
    /// last sequence number, and where the sequence number went back (wrap).
    acks: [AckState; 2],
    /// Last media timestamp per direction, stream id and type.
    last_ts: Vec<(Dir, u32, u8, u32)>,
    /// Per direction: the last segment (time, frame, length) and whether
    /// the peer sent data since.
    last_seg: [Option<(Timestamp, u64, usize)>; 2],
    peer_since: [bool; 2],
    /// Media began in the direction (the setup phase is over).
    media_started: [bool; 2],
    /// Segments sent ~40 ms after a small one with nothing from the peer in
    /// between: (dir, frame, delay in s, what the held segment carried).
    stalls: Vec<(Dir, u64, f64, Option<String>)>,
    /// Per direction: bytes were missed or the reading joined mid-stream
    /// (a break there may be the capture's, not the peer's).
    unclean: [bool; 2],
    /// Per direction: the first message that was not one (unknown type or
    /// a body that does not decode), while the chunk stream held.
    odd: [Option<Odd>; 2],
    /// Per direction: where the chunk stream itself broke (offset, frame,
    /// time, fmt, csid).
    chunk_break: [Option<ChunkBreak>; 2],
    /// Per direction: not fully checked for the memory budget (counted once
    /// in [`Diagnoser::unjudged`]).
    limited: [bool; 2],
}

/// Where a chunk stream broke: offset, frame, time, fmt and csid of the
/// chunk no header opened.
type ChunkBreak = (u64, u64, Timestamp, u8, u32);

/// A message a peer should not have sent (see [`ConnDiag::odd`]).
#[derive(Debug, Clone)]
struct Odd {
    offset: u64,
    frame: u64,
    time: Timestamp,
    csid: u32,
    msg_type: u8,
    len: u32,
    /// Why its body does not decode; `None`: its type is not RTMP's.
    error: Option<String>,
}

impl ConnDiag {
    fn new(id: u64) -> Self {
        ConnDiag {
            name: Arc::from(""),
            id,
            mid_stream: false,
            opened: false,
            hs: [[None; 3]; 2],
            hs_bytes: [0; 2],
            bad_version: None,
            answer_not_rtmp: None,
            bad_digest: [false; 2],
            closed: [None; 2],
            last_time: None,
            watch: [Watch::new(), Watch::new()],
            pending: Vec::new(),
            commands: Vec::new(),
            flash_ver: None,
            nginx: false,
            secrets: Vec::new(),
            publishing: false,
            playing: None,
            media: [MediaStats::default(); 2],
            type3: [None; 2],
            type3_mixed: [None; 2],
            flagged: Vec::new(),
            findings: Vec::new(),
            ack_window: [None; 2],
            acks: [(0, 0, None); 2],
            last_ts: Vec::new(),
            last_seg: [None; 2],
            peer_since: [false; 2],
            media_started: [false; 2],
            stalls: Vec::new(),
            unclean: [false; 2],
            odd: [None, None],
            chunk_break: [None; 2],
            limited: [false; 2],
        }
    }

    fn once(&mut self, code: Code, dir: Option<Dir>) -> bool {
        if self.flagged.contains(&(code, dir)) {
            return false;
        }
        self.flagged.push((code, dir));
        true
    }
}

/// Runs every analysis over one capture's (or session's) records.
///
/// Memory: a connection's state lives from its first record to its
/// [`RecordKind::End`] (the analyzer ends, or evicts, connections beyond its
/// budget, so at most that many are live). What an ended connection leaves
/// behind is its findings and, for a player that may yet be told E-RTMP
/// video was not relayed to it, a few counters (`Player`); a connection
/// that ended with nothing found leaves nothing.
#[derive(Debug, Default)]
pub struct Diagnoser {
    opts: Options,
    /// Boxed: the table's buckets stay small (it keeps its capacity after
    /// a crowd of connections has gone).
    conns: HashMap<u64, Box<ConnDiag>>,
    /// Findings of the connections that ended, not yet taken.
    ended: Vec<Finding>,
    /// Players that ended and whose E-RTMP verdict waits for the whole
    /// capture (a publisher of E-RTMP video may come later).
    players: Vec<Player>,
    /// A connection that ended published E-RTMP video.
    ertmp_published: bool,
    /// Bytes the watches of the live connections keep (capacity).
    watch_bytes: usize,
    /// Directions not fully checked for the memory budgets.
    unjudged: u64,
}

/// What the E-RTMP verdict of a player that ended needs of it (see [`ertmp`]).
#[derive(Debug)]
struct Player {
    name: Arc<str>,
    id: u64,
    /// Frame and time of its play command.
    playing: (u64, Timestamp),
    /// Its s2c media.
    media: MediaStats,
    flash_ver: Option<Box<str>>,
}

impl Player {
    /// The player `c`, when some E-RTMP publisher could give it a finding.
    fn of(c: &mut ConnDiag) -> Option<Player> {
        let playing = c.playing?;
        let m = c.media[1];
        if !(m.audio > 0 && m.video == 0 || m.ertmp_video > 0) {
            return None;
        }
        Some(Player {
            name: c.name.clone(),
            id: c.id,
            playing,
            media: m,
            flash_ver: c.flash_ver.take().map(String::into_boxed_str),
        })
    }
}

/// Publishes E-RTMP video (what makes players' E-RTMP verdicts).
fn publishes_ertmp(c: &ConnDiag) -> bool {
    c.publishing && c.media[0].ertmp_video > 0
}

/// A finding as kept until it is reported: no spare capacity.
fn compact(mut f: Finding) -> Finding {
    f.message.shrink_to_fit();
    if let std::borrow::Cow::Owned(t) = &mut f.fix {
        t.shrink_to_fit();
    }
    f.facts.shrink_to_fit();
    for (_, v) in &mut f.facts {
        if let Fact::Text(t) = v {
            t.shrink_to_fit();
        }
    }
    f
}

fn secs(a: Timestamp, b: Timestamp) -> f64 {
    b.as_f64() - a.as_f64()
}

fn is_zero(t: Timestamp) -> bool {
    t.sec == 0 && t.nsec == 0
}

fn sender(d: Dir) -> &'static str {
    match d {
        Dir::C2s => "the client",
        Dir::S2c => "the server",
    }
}

fn receiver(d: Dir) -> &'static str {
    sender(d.reverse())
}

impl Diagnoser {
    /// A new diagnoser.
    pub fn new(opts: Options) -> Self {
        Diagnoser {
            opts,
            ..Default::default()
        }
    }

    /// Bytes of a connection, from [`crate::analyze::Analyzer::packet_with_data`].
    pub fn data(&mut self, d: Data<'_>) {
        if d.end {
            // Still here: the connection was never announced (it had no
            // record, so no finding either).
            if let Some(c) = self.conns.remove(&d.conn_id) {
                self.watch_bytes = self.watch_bytes.saturating_sub(watched(&c));
            }
            return;
        }
        let tight = self.watch_bytes > self.opts.watch_budget.unwrap_or(WATCH_BUDGET);
        let c = self
            .conns
            .entry(d.conn_id)
            .or_insert_with(|| Box::new(ConnDiag::new(d.conn_id)));
        let before = watched(c);
        let i = d.dir.index();
        let end = d.offset + d.bytes.len() as u64;
        if end > c.hs_bytes[i] {
            c.hs_bytes[i] = end;
        }
        if !is_zero(d.time) {
            c.last_time = Some(d.time);
        }
        segment_timing(c, d.dir, d.time, d.frame, d.bytes.len());
        let w = &mut c.watch[i];
        let mut d = d;
        let hs = crate::analyze::HANDSHAKE_LEN as u64;
        if c.opened && !c.mid_stream && d.offset < hs && (w.buf.is_empty() || w.base >= hs) {
            // The chunk stream starts after C2/S2 (walks start there at the
            // earliest): the handshake is not kept.
            if w.buf.is_empty() && w.base < hs {
                w.reset(hs);
            }
            let skip = (hs - d.offset).min(d.bytes.len() as u64);
            d.bytes = &d.bytes[skip as usize..];
            d.offset += skip;
        }
        let gave_up = w.push(&d, tight) && !c.limited[i];
        c.limited[i] |= gave_up;
        if let Some((t, _)) = w.trouble
            && !w.done
            && w.end() > t + EVIDENCE_AFTER_TROUBLE
        {
            judge_chunks(c, d.dir);
        }
        let after = watched(c);
        self.watch_bytes = (self.watch_bytes + after).saturating_sub(before);
        self.unjudged += u64::from(gave_up);
    }

    /// Bytes the chunk-stream watches of the live connections keep now.
    pub fn watch_bytes(&self) -> usize {
        self.watch_bytes
    }

    /// Directions not fully checked for memory: the watches of the
    /// connections together kept more than their budget (64 MiB), or the
    /// analyzer gave up messages in progress for its own
    /// ([`crate::analyze::Options::max_held_bytes`]).
    pub fn unjudged(&self) -> u64 {
        self.unjudged
    }

    /// One record from the analyzer.
    pub fn record(&mut self, r: &Record) {
        let watch = |s: &Self| s.conns.get(&r.conn_id).map_or(0, |c| watched(c));
        let before = watch(self);
        self.record_inner(r);
        self.watch_bytes = (self.watch_bytes + watch(self)).saturating_sub(before);
    }

    fn record_inner(&mut self, r: &Record) {
        // The analyzer gave up a direction's messages in progress because
        // the connections together held too much: what it then misses is
        // the capture's reading, not the peer's doing.
        if let RecordKind::ChunkError {
            error: crate::proto::chunk::ChunkError::TooMuchBuffered { shared: true, .. },
            ..
        } = &r.kind
            && let Some(d) = r.dir
        {
            let c = self
                .conns
                .entry(r.conn_id)
                .or_insert_with(|| Box::new(ConnDiag::new(r.conn_id)));
            let first = !c.limited[d.index()];
            c.limited[d.index()] = true;
            c.unclean[d.index()] = true;
            self.unjudged += u64::from(first);
        }
        let c = self
            .conns
            .entry(r.conn_id)
            .or_insert_with(|| Box::new(ConnDiag::new(r.conn_id)));
        if c.name.is_empty() {
            c.name = r.conn.clone();
        }
        if !is_zero(r.time) {
            c.last_time = Some(r.time);
        }
        let reveal = self.opts.reveal_keys;
        match &r.kind {
            RecordKind::Open { .. } => c.opened = true,
            RecordKind::MidStream => {
                c.mid_stream = true;
                c.unclean = [true; 2];
            }
            RecordKind::Handshake(h) => {
                let Some(d) = r.dir else { return };
                let n = match h {
                    HandshakePacket::Version(_) => 0,
                    HandshakePacket::Hello { info, .. } => {
                        if matches!(info.kind, PeerHandshake::UnverifiedDigest) {
                            c.bad_digest[d.index()] = true;
                        }
                        1
                    }
                    HandshakePacket::Response(..) => {
                        // The chunk stream starts after C2/S2 with nothing known.
                        let w = &mut c.watch[d.index()];
                        w.csids.clear();
                        w.chunk_size = DEFAULT_CHUNK_SIZE;
                        w.announced_at = None;
                        w.add_anchor(crate::analyze::HANDSHAKE_LEN as u64, true);
                        2
                    }
                };
                c.hs[d.index()][n] = Some(Seen {
                    frame: r.frame,
                    time: r.time,
                });
            }
            RecordKind::BadVersion { version, head } => {
                if let Some(d) = r.dir {
                    match &c.bad_version {
                        None => {
                            c.bad_version = Some((d, *version, head.clone(), r.frame, r.time));
                            c.watch[d.index()].done = true;
                        }
                        Some(first) if first.0 != d => {
                            c.answer_not_rtmp = Some((*version, head.clone()));
                        }
                        Some(_) => {}
                    }
                }
            }
            RecordKind::Message { raw, decoded } => {
                let Some(d) = r.dir else { return };
                // Bytes of the direction so far, also without the byte tap (live use).
                let end = raw.offset + raw.payload.len() as u64;
                let b = &mut c.hs_bytes[d.index()];
                *b = (*b).max(end);
                note_odd(c, d, r, raw, decoded.as_ref().err());
                message(c, d, r, raw, decoded.as_ref().ok(), reveal);
            }
            RecordKind::ChunkSizeChanged { new, .. } => {
                if let Some(d) = r.dir {
                    let w = &mut c.watch[d.index()];
                    w.chunk_size = *new;
                    w.announced_at = r.offset.map(|o| (o, r.frame));
                    // Walks start after the Set Chunk Size (the walk does
                    // not apply it): the new size is in force from here.
                    if let Some(o) = r.offset {
                        w.add_anchor(o, true);
                    }
                }
            }
            RecordKind::Resynced {
                cause,
                chunk_size,
                size_kept,
                ..
            } => {
                let Some(d) = r.dir else { return };
                if *cause != SyncCause::Error {
                    c.unclean[d.index()] = true;
                }
                let w = &mut c.watch[d.index()];
                match cause {
                    SyncCause::Error => trouble(w, r),
                    SyncCause::MidStream | SyncCause::Gap => {
                        if w.trouble.is_none() {
                            if !size_kept {
                                w.chunk_size = *chunk_size;
                            }
                            if let Some(o) = r.offset {
                                // A new start: only known state from here.
                                if *cause == SyncCause::MidStream {
                                    w.csids.clear();
                                }
                                let keep = o >= w.base && o <= w.end();
                                if keep {
                                    w.anchors.clear();
                                    w.prev_anchors.clear();
                                } else {
                                    w.reset(o);
                                }
                            }
                        }
                    }
                }
            }
            RecordKind::ChunkError { error, .. } => {
                let Some(d) = r.dir else { return };
                if let crate::proto::chunk::ChunkError::NoPreviousHeader { offset, fmt, csid } =
                    error
                    && !c.unclean[d.index()]
                    && c.chunk_break[d.index()].is_none()
                {
                    c.chunk_break[d.index()] = Some((*offset, r.frame, r.time, *fmt, *csid));
                }
                let w = &mut c.watch[d.index()];
                if w.decoder_break.is_none() {
                    w.decoder_break = r.offset.map(|o| (o, r.frame));
                }
                trouble(w, r);
            }
            RecordKind::Damaged(m) => {
                // A message cut off: its header still says how long it was.
                if let Some(d) = r.dir
                    && d == Dir::C2s
                    && m.length > NGINX_MAX_MESSAGE
                    && c.watch[d.index()].trouble.is_none()
                    && !c.findings.iter().any(|f| f.code == Code::ChunkSizeMismatch)
                {
                    let frame = c.watch[d.index()].frame_at(m.offset).unwrap_or(r.frame);
                    let h = m.header;
                    too_big(
                        c,
                        d,
                        r,
                        frame,
                        m.offset,
                        m.length,
                        h.msg_type,
                        h.timestamp,
                        false,
                    );
                }
            }
            RecordKind::NoBoundary { .. } => {
                // Not RTMP after all: nothing to re-walk.
                if let Some(d) = r.dir {
                    let w = &mut c.watch[d.index()];
                    w.done = true;
                    w.buf = Vec::new();
                    w.segs = Vec::new();
                }
            }
            RecordKind::Interrupted { .. } | RecordKind::InvalidChunkSize { .. } => {
                if let Some(d) = r.dir {
                    trouble(&mut c.watch[d.index()], r);
                }
            }
            RecordKind::Gap { .. } => {
                if let Some(d) = r.dir {
                    let i = d.index();
                    c.unclean[i] = true;
                    if c.watch[i].trouble.is_some() && !c.watch[i].done {
                        judge_chunks(c, d);
                    }
                    let w = &mut c.watch[i];
                    w.anchors.clear();
                    w.prev_anchors.clear();
                }
            }
            RecordKind::Type3Convention { convention, .. } => {
                if let Some(d) = r.dir {
                    let i = d.index();
                    match c.type3[i] {
                        Some(prev) if prev != *convention && c.type3_mixed[i].is_none() => {
                            c.type3_mixed[i] = Some((r.frame, r.offset.unwrap_or(0), 0));
                        }
                        None => c.type3[i] = Some(*convention),
                        _ => {}
                    }
                }
            }
            RecordKind::Closed { kind } => {
                if let Some(d) = r.dir {
                    let i = d.index();
                    if c.closed[i].is_none() {
                        c.closed[i] = Some((*kind, r.frame, r.time));
                    }
                    if c.watch[i].trouble.is_some() && !c.watch[i].done {
                        judge_chunks(c, d);
                    }
                }
            }
            RecordKind::End { .. } => {
                if let Some(c) = self.conns.remove(&r.conn_id) {
                    self.end(c);
                }
            }
            _ => {}
        }
    }

    /// Findings of connections still open that nothing later can revise,
    /// for reporting live (the caller keeps track of what it reported):
    /// those about a refusal or a handshake, and those whose direction was
    /// judged, or read cleanly for 2 MiB past them (a chunk-size judgement
    /// revises only what follows its divergence, within that distance).
    /// Message-too-big findings wait for the end, which may make them errors.
    pub fn settled(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in self.conns.values() {
            for f in &c.findings {
                if f.code == Code::MessageTooBig {
                    continue;
                }
                let ok = matches!(f.code, Code::Refused | Code::HandshakeBadVersion)
                    || match f.dir {
                        None => false,
                        Some(d) => {
                            let w = &c.watch[d.index()];
                            w.done
                                || (w.trouble.is_none()
                                    && f.offset
                                        .is_some_and(|o| w.end() >= o + EVIDENCE_AFTER_TROUBLE))
                        }
                    };
                if ok {
                    out.push(f.clone());
                }
            }
        }
        out
    }

    /// A connection ended: what the whole connection shows, then its
    /// state goes; its findings (and, for a player, what its E-RTMP
    /// verdict needs) stay.
    fn end(&mut self, mut c: Box<ConnDiag>) {
        end_of_conn(&mut c, self.opts.reveal_keys);
        self.ertmp_published |= publishes_ertmp(&c);
        self.ended
            .extend(std::mem::take(&mut c.findings).into_iter().map(compact));
        self.players.extend(Player::of(&mut c));
    }

    /// Findings so far of connections that ended (for live use).
    pub fn take_findings(&mut self) -> Vec<Finding> {
        std::mem::take(&mut self.ended)
    }

    /// End of input: every finding, by connection and frame.
    pub fn finish(mut self) -> Vec<Finding> {
        let rest: Vec<Box<ConnDiag>> = self.conns.drain().map(|(_, c)| c).collect();
        for c in rest {
            self.end(c);
        }
        let mut out = std::mem::take(&mut self.ended);
        if self.ertmp_published {
            // After each player's other findings (the sort below is stable).
            for p in &self.players {
                ertmp(p, &mut out);
            }
        }
        out.sort_by_key(|f| (f.conn_id, f.frame.unwrap_or(u64::MAX), f.code));
        out
    }
}

/// Linux delays an ACK up to 40 ms (TCP_DELACK_MIN); a held write leaves
/// when it arrives.
const DELAYED_ACK: std::ops::RangeInclusive<f64> = 0.036..=0.048;

/// Setup-phase segment timing: a small write that leaves ~40 ms after the
/// previous one, with nothing from the peer in between, waited for the
/// peer's delayed ACK (Nagle's algorithm holds a small segment while one is
/// unacknowledged).
fn segment_timing(c: &mut ConnDiag, d: Dir, t: Timestamp, frame: u64, len: usize) {
    let i = d.index();
    if len == 0 || is_zero(t) {
        return;
    }
    if !c.media_started[i]
        && !c.peer_since[i]
        && let Some((t0, _, _)) = c.last_seg[i]
    {
        let gap = secs(t0, t);
        if DELAYED_ACK.contains(&gap) && c.stalls.len() < 16 {
            c.stalls.push((d, frame, gap, None));
        }
    }
    c.last_seg[i] = Some((t, frame, len));
    c.peer_since[i] = false;
    c.peer_since[1 - i] = true;
}

/// One finding per direction whose writes waited for delayed ACKs.
fn nagle(c: &mut ConnDiag) {
    let mut total = 0.0;
    for d in [Dir::C2s, Dir::S2c] {
        let held: Vec<&(Dir, u64, f64, Option<String>)> =
            c.stalls.iter().filter(|s| s.0 == d).collect();
        if held.is_empty() {
            continue;
        }
        let cost: f64 = held.iter().map(|s| s.2).sum();
        total += cost;
        let list: Vec<String> = held
            .iter()
            .map(|s| {
                format!(
                    "{} (frame {}) {:.0} ms",
                    s.3.as_deref().unwrap_or("a write"),
                    s.1,
                    s.2 * 1000.0
                )
            })
            .collect();
        let ffmpeg = c.flash_ver.as_deref().is_some_and(|f| f.contains("Lavf"));
        let who = match d {
            Dir::S2c if c.nginx => {
                "nginx-rtmp does not set TCP_NODELAY and writes a reply in pieces: the second \
                 waits for the client's delayed ACK of the first"
            }
            Dir::S2c => {
                "the server writes a reply in pieces without TCP_NODELAY: the second waits for \
                 the client's delayed ACK of the first"
            }
            Dir::C2s if ffmpeg => {
                "FFmpeg writes C2 and connect, and each chunk header and its body, separately: \
                 the second write waits for the server's delayed ACK of the first"
            }
            Dir::C2s => {
                "the client writes in pieces without TCP_NODELAY: the second write waits for the \
                 server's delayed ACK of the first"
            }
        };
        c.findings.push(Finding {
            code: Code::NagleStall,
            severity: Severity::Info,
            conn: c.name.clone(),
            conn_id: c.id,
            dir: Some(d),
            frame: Some(held[0].1),
            offset: None,
            time: None,
            message: format!(
                "{} held {} small write(s) about 40 ms each until {}'s delayed ACK came: {}; {who} \
                 (Nagle's algorithm against delayed ACKs); {:.0} ms of setup lost in this direction",
                sender(d),
                held.len(),
                receiver(d),
                list.join(", "),
                cost * 1000.0
            ),
            fix: format!(
                "set TCP_NODELAY on {}'s socket, or write each message (header and body) in one piece",
                sender(d)
            )
            .into(),
            facts: vec![("stall_ms", Fact::Float(cost * 1000.0))],
        });
    }
    if total > 0.0
        && let Some(f) = c
            .findings
            .iter_mut()
            .rev()
            .find(|f| f.code == Code::NagleStall)
    {
        f.facts
            .push(("connect_cost_ms", Fact::Float(total * 1000.0)));
    }
}

/// Marks the first symptom of a direction's chunk stream going wrong.
fn trouble(w: &mut Watch, r: &Record) {
    if w.trouble.is_none() && !w.done {
        w.trouble = Some((r.offset.unwrap_or_else(|| w.end()), r.frame));
    }
}

/// Whether a body starting with `b` is what real peers send for type `t`
/// (as the boundary walk judges first payload bytes).
fn plausible_first_byte(t: u8, b: u8) -> bool {
    match t {
        18 | 20 => b == 0x02,
        15 | 17 => b == 0x00 || b == 0x02,
        // Frame type 1-5 (codec ids 2-7, 12), or an E-RTMP ex-header.
        9 => b & 0x80 != 0 || ((1..=5).contains(&(b >> 4)) && matches!(b & 0x0f, 1..=7 | 12 | 13)),
        // Every sound format but the reserved 12 and 13 (9 is E-RTMP's ex-header).
        8 => !matches!(b >> 4, 12 | 13),
        _ => true,
    }
}

fn known_type(t: u8) -> bool {
    matches!(t, 1..=6 | 8 | 9 | 15..=20 | 22)
}

/// Keeps the first message of the client that is not one: a type RTMP does
/// not define, or a body that does not decode (on a chunk stream read from
/// its start without holes, before it broke).
fn note_odd(
    c: &mut ConnDiag,
    d: Dir,
    r: &Record,
    raw: &RawMessage,
    error: Option<&crate::proto::message::MessageError>,
) {
    let i = d.index();
    if d != Dir::C2s || c.unclean[i] || c.odd[i].is_some() || c.chunk_break[i].is_some() {
        return;
    }
    let t = raw.header.msg_type.0;
    let error = if known_type(t) {
        match error {
            Some(e) => Some(e.to_string()),
            None => return,
        }
    } else {
        None
    };
    c.odd[i] = Some(Odd {
        offset: raw.offset,
        frame: r.frame,
        time: r.time,
        csid: raw.csid,
        msg_type: t,
        len: raw.payload.len() as u32,
        error,
    });
}

fn odd_words(o: &Odd) -> String {
    let name = MessageType(o.msg_type).name();
    match &o.error {
        Some(e) => format!(
            "a {name} message of {} bytes on chunk stream {} at offset {} (frame {}) that does \
             not decode: {e}",
            o.len, o.csid, o.offset, o.frame
        ),
        None => format!(
            "a message of type {} (0x{:02x}), which RTMP does not define ({} bytes on chunk \
             stream {} at offset {}, frame {})",
            o.msg_type, o.msg_type, o.len, o.csid, o.offset, o.frame
        ),
    }
}

/// What the client sent that breaks the protocol and no other finding
/// explains: a chunk on a chunk stream no fmt-0 header opened (RTMP 1.0
/// §5.3.1.2), a message whose body does not decode (§5.4, §7.1), a message
/// type RTMP does not define. One finding per connection; none when the
/// stream was misread (a chunk-size mismatch) or read with holes.
fn protocol_violation(c: &mut ConnDiag) {
    client_violation(c);
    server_chunk_break(c);
}

/// The server's chunk stream broke where the capture read it cleanly: a
/// chunk on a chunk stream no fmt-0 header opened (what the client then
/// reads is not what the server meant).
fn server_chunk_break(c: &mut ConnDiag) {
    let d = Dir::S2c;
    let i = d.index();
    if c.unclean[i]
        || c.bad_version.is_some()
        || c.answer_not_rtmp.is_some()
        || c.findings
            .iter()
            .any(|f| f.code == Code::ChunkSizeMismatch && f.dir == Some(d))
    {
        return;
    }
    let Some((offset, frame, time, fmt, csid)) = c.chunk_break[i] else {
        return;
    };
    let mut message = format!(
        "the server sent a fmt {fmt} chunk header on chunk stream {csid} at offset {offset} \
         (frame {frame}), a chunk stream that no fmt-0 header opened: the message's length, \
         type and stream are unknown, so nothing from there on reads as chunks; a client \
         misreads the rest of the stream or drops the connection"
    );
    if let Some((_, f, _)) = c.closed[Dir::C2s.index()] {
        message.push_str(&format!("; the client closed the connection (frame {f})"));
    }
    c.findings.push(Finding {
        code: Code::ProtocolViolation,
        severity: Severity::Error,
        conn: c.name.clone(),
        conn_id: c.id,
        dir: Some(d),
        frame: Some(frame),
        offset: Some(offset),
        time: Some(time),
        message,
        fix: "the server writes bytes that are not RTMP chunks after the handshake (its own \
              bug, a second writer on the socket, or a proxy that injects or drops bytes): \
              every chunk stream must start with a fmt-0 header (RTMP 1.0 §5.3.1.2); capture \
              the server's side (rtmptool dump) to see what it sent at that offset"
            .into(),
        facts: vec![
            ("csid", Fact::Int(u64::from(csid))),
            ("fmt", Fact::Int(u64::from(fmt))),
            ("break_offset", Fact::Int(offset)),
            ("offset", Fact::Int(offset)),
        ],
    });
}

/// The client's protocol breaks.
fn client_violation(c: &mut ConnDiag) {
    let d = Dir::C2s;
    let i = d.index();
    if c.unclean[i]
        || c.bad_version.is_some()
        || c.findings
            .iter()
            .any(|f| f.code == Code::ChunkSizeMismatch && f.dir == Some(d))
    {
        return;
    }
    let server_closed = c.closed[Dir::S2c.index()].map(|(_, f, _)| f);
    let odd = c.odd[i].clone();
    let (severity, offset, frame, time, mut message, fix, mut facts) = match (c.chunk_break[i], odd)
    {
        (Some((offset, frame, time, fmt, csid)), odd) => {
            let mut msg = format!(
                "the client sent a fmt {fmt} chunk header on chunk stream {csid} at offset {offset} \
                 (frame {frame}), a chunk stream that no fmt-0 header opened: the message's length, \
                 type and stream are unknown, so nothing from there on reads as chunks"
            );
            if let Some(o) = &odd {
                msg.push_str(&format!("; before it, the client sent {}", odd_words(o)));
            }
            msg.push_str(
                ". nginx-rtmp and FFmpeg do not check for it: they take a zeroed header (an empty \
                 message of type 0) and read the bytes after it as the next chunk header, so the \
                 rest of the stream is misread until a limit closes the connection (nginx-rtmp: \
                 \"RTMP in chunk stream too big\" or \"too big message\")",
            );
            let at = odd.as_ref().map_or(offset, |o| o.offset.min(offset));
            let frame_at = odd
                .as_ref()
                .filter(|o| o.offset < offset)
                .map_or(frame, |o| o.frame);
            let time_at = odd
                .as_ref()
                .filter(|o| o.offset < offset)
                .map_or(time, |o| o.time);
            (
                Severity::Error,
                at,
                frame_at,
                time_at,
                msg,
                "the client writes bytes that are not RTMP chunks after the handshake (its own \
                 bug, a second writer on the socket, or a proxy that injects or drops bytes): \
                 every chunk stream must start with a fmt-0 header (RTMP 1.0 §5.3.1.2); capture \
                 the client's side (rtmptool dump) to see what it sent at that offset"
                    .to_string(),
                vec![
                    ("csid", Fact::Int(u64::from(csid))),
                    ("fmt", Fact::Int(u64::from(fmt))),
                    ("break_offset", Fact::Int(offset)),
                ],
            )
        }
        (None, Some(o)) => {
            let name = MessageType(o.msg_type).name();
            let mut facts = vec![
                ("message_type", Fact::Int(u64::from(o.msg_type))),
                ("message_length", Fact::Int(u64::from(o.len))),
                ("csid", Fact::Int(u64::from(o.csid))),
            ];
            match &o.error {
                Some(e) => {
                    facts.push(("error", Fact::Text(e.clone())));
                    let nginx = if matches!(o.msg_type, 15..=20) {
                        ". nginx-rtmp closes the connection on an AMF message it cannot read (it \
                         logs \"AMF cmd failed\" at debug level only, so its error log shows just \
                         the disconnect)"
                    } else {
                        ". nginx-rtmp ignores a control message too short for its fields (\"too \
                         small buffer\", debug level only), so what the client meant by it does \
                         not happen"
                    };
                    (
                        Severity::Error,
                        o.offset,
                        o.frame,
                        o.time,
                        format!("the client sent {}{nginx}", odd_words(&o)),
                        format!(
                            "fix the client's encoding of {name} messages: the body must hold \
                             whole values of the declared length (RTMP 1.0 §5.4, §7.1); capture \
                             the client's side (rtmptool dump -v) to see the bytes"
                        ),
                        facts,
                    )
                }
                None => (
                    Severity::Warning,
                    o.offset,
                    o.frame,
                    o.time,
                    format!(
                        "the client sent {}: nginx-rtmp ignores it (\"unexpected RTMP message \
                         type\", debug level only), as librtmp does (\"unknown packet type \
                         received\"), so what the client meant by it does not happen; a \
                         stricter server may close the connection",
                        odd_words(&o)
                    ),
                    "make the client send only the message types of RTMP 1.0 §5.4 and §7.1 (1-6, \
                     8, 9, 15-20, 22); a vendor extension belongs in a command (type 20)"
                        .to_string(),
                    facts,
                ),
            }
        }
        (None, None) => return,
    };
    if let Some(sf) = server_closed
        && severity == Severity::Error
    {
        message.push_str(&format!("; the server closed the connection (frame {sf})"));
    }
    facts.push(("offset", Fact::Int(offset)));
    c.findings.push(Finding {
        code: Code::ProtocolViolation,
        severity,
        conn: c.name.clone(),
        conn_id: c.id,
        dir: Some(d),
        frame: Some(frame),
        offset: Some(offset),
        time: Some(time),
        message,
        fix: fix.into(),
        facts,
    });
}

fn message(
    c: &mut ConnDiag,
    d: Dir,
    r: &Record,
    raw: &RawMessage,
    decoded: Option<&Message>,
    reveal: bool,
) {
    let i = d.index();
    let t = raw.header.msg_type.0;
    let len = raw.payload.len() as u32;
    // Chunk-stream watch: a message that does not look like one is a symptom;
    // a clean one can anchor the next walk.
    {
        let w = &mut c.watch[i];
        // A Set Chunk Size beyond any message length (RTMP 1.0 §5.4.1: sizes
        // over 0xFFFFFF are all the same) is more likely a misread.
        let odd_size =
            matches!(decoded, Some(Message::SetChunkSize(v)) if !(1..=0xFF_FFFF).contains(v));
        let sane = decoded.is_some()
            && !odd_size
            && known_type(t)
            && plausible_length(t, len.max(1))
            && raw
                .payload
                .first()
                .is_none_or(|&b| plausible_first_byte(t, b));
        if !sane {
            trouble(w, r);
        } else if w.trouble.is_none() && !w.done {
            if raw.fmt <= 1 && w.anchors.back().is_none_or(|a| raw.offset > a.offset) {
                w.add_anchor(raw.offset, false);
            }
            let h = CsidHeader {
                csid: raw.csid,
                length: len,
                msg_type: t,
                ext: raw.extended_timestamp.then_some(raw.header.timestamp),
            };
            match w.csids.iter_mut().find(|x| x.csid == raw.csid) {
                Some(x) => *x = h,
                None => w.csids.push(h),
            }
        }
    }
    // Limits of common servers (what the client sends), on a chunk stream
    // that is read in step (after a mismatch, "messages" are misreads).
    let in_step = c.watch[i].trouble.is_none()
        && !c
            .findings
            .iter()
            .any(|f| f.code == Code::ChunkSizeMismatch && f.dir == Some(d));
    if d == Dir::C2s && in_step {
        if len > NGINX_MAX_MESSAGE {
            let h = raw.header;
            too_big(
                c,
                d,
                r,
                r.frame,
                raw.offset,
                len,
                h.msg_type,
                h.timestamp,
                true,
            );
        }
        if raw.csid >= NGINX_MAX_STREAMS && c.once(Code::MessageTooBig, None) {
            let line = format!(
                "RTMP in chunk stream too big: {} >= {NGINX_MAX_STREAMS}",
                raw.csid
            );
            c.findings.push(Finding {
                code: Code::MessageTooBig,
                severity: Severity::Warning,
                conn: c.name.clone(),
                conn_id: c.id,
                dir: Some(d),
                frame: Some(r.frame),
                offset: Some(raw.offset),
                time: Some(r.time),
                message: format!(
                    "chunk stream id {} is at or above nginx-rtmp's max_streams ({NGINX_MAX_STREAMS}): \
                     nginx logs \"{line}\" and closes the connection",
                    raw.csid
                ),
                fix: "use chunk stream ids below 32 in the sender, or raise max_streams in nginx's \
                      rtmp server block"
                    .into(),
                facts: vec![
                    ("csid", Fact::Int(u64::from(raw.csid))),
                    ("nginx_log", Fact::Text(line)),
                ],
            });
        }
    }
    // Name a held write by the first message it completed.
    if let Some(s) = c
        .stalls
        .iter_mut()
        .find(|s| s.0 == d && s.1 == r.frame && s.3.is_none())
    {
        s.3 = Some(match decoded {
            Some(Message::Command(cmd)) => cmd.name().to_string(),
            _ => raw.header.msg_type.name().to_string(),
        });
    }
    if matches!(t, 8 | 9) {
        c.media_started[i] = true;
    }
    let Some(m) = decoded else { return };
    match m {
        Message::SetChunkSize(v) => {
            // Its own chunk stream is now known to the anchor after it.
            let w = &mut c.watch[i];
            if let Some((o, _)) = w.announced_at
                && o > raw.offset
            {
                w.add_anchor(o, true);
            }
            set_chunk_size(c, d, r, raw, *v)
        }
        Message::Audio(_) | Message::Video(_) => {
            let body = &raw.payload;
            let ms = &mut c.media[i];
            ms.messages += 1;
            ms.bytes += body.len() as u64;
            if ms.first.is_none() {
                ms.first = Some((raw.header.timestamp, r.time, r.frame));
            }
            ms.last = Some((raw.header.timestamp, r.time));
            if t == 8 {
                ms.audio += 1;
                ms.first_audio_frame.get_or_insert(r.frame);
            } else {
                ms.video += 1;
                if body.first().is_some_and(|b| b & 0x80 != 0) {
                    ms.ertmp_video += 1;
                }
                if body.len() <= 5 {
                    ms.small_video += 1;
                }
            }
        }
        Message::Command(cmd)
            if matches!(cmd.encoding, crate::proto::message::Encoding::Amf3 { .. })
                || cmd
                    .values
                    .iter()
                    .any(|v| matches!(v, Amf0Value::AvmPlus(_))) =>
        {
            // Values behind an AVM+ switch (Flash Player/AIR with
            // objectEncoding 3, FMS answering it) read as AMF0: a stream
            // key among them is a secret, a status code is seen.
            let cmd = crate::proto::message::Command {
                encoding: cmd.encoding,
                values: cmd
                    .values
                    .iter()
                    .cloned()
                    .map(Amf0Value::without_avmplus)
                    .collect(),
            };
            command(c, d, r, raw, &cmd, reveal)
        }
        Message::Command(cmd) => command(c, d, r, raw, cmd, reveal),
        Message::WindowAckSize(w) if c.ack_window[i].is_none() && *w > 0 => {
            c.ack_window[i] = Some((*w, raw.offset, r.frame));
        }
        Message::Acknowledgement { sequence } => {
            // It acknowledges the bytes of the other direction.
            let a = &mut c.acks[d.reverse().index()];
            if a.0 > 0 && *sequence < a.1 && a.2.is_none() {
                a.2 = Some((r.frame, a.1, *sequence));
            }
            a.0 += 1;
            a.1 = *sequence;
        }
        _ => {}
    }
    if in_step && matches!(m, Message::Audio(_) | Message::Video(_)) && !raw.unknown.timestamp {
        media_timestamp(c, d, r, raw);
    }
}

/// Timestamps per stream and track: regressions, jumps, the 0xFFFFFF crossing.
fn media_timestamp(c: &mut ConnDiag, d: Dir, r: &Record, raw: &RawMessage) {
    let (sid, t, ts) = (
        raw.header.stream_id,
        raw.header.msg_type.0,
        raw.header.timestamp,
    );
    let prev = match c
        .last_ts
        .iter_mut()
        .find(|x| x.0 == d && x.1 == sid && x.2 == t)
    {
        Some(x) => std::mem::replace(&mut x.3, ts),
        None => {
            c.last_ts.push((d, sid, t, ts));
            return;
        }
    };
    let kind = if t == 8 { "audio" } else { "video" };
    let who = sender(d);
    let (what, severity) = if ts < prev && prev - ts > 1000 && prev - ts < 0x8000_0000 {
        (
            format!(
                "{kind} timestamps from {who} on stream {sid} go back {} ms ({prev} -> {ts}): players \
                 stall or drop frames, recorders cut the file",
                prev - ts
            ),
            Severity::Warning,
        )
    } else if ts > prev && ts - prev > 10_000 && ts - prev < 0x8000_0000 {
        (
            format!(
                "{kind} timestamps from {who} on stream {sid} jump {} ms ahead ({prev} -> {ts}): players \
                 wait that long or resynchronise",
                ts - prev
            ),
            Severity::Warning,
        )
    } else if prev < crate::proto::chunk::EXTENDED_TIMESTAMP_MARK
        && ts >= crate::proto::chunk::EXTENDED_TIMESTAMP_MARK
    {
        (
            format!(
                "{kind} timestamps from {who} on stream {sid} cross 0xFFFFFF ms (4h39m): from here every \
                 header carries an extended timestamp, which peers treat differently on type-3 \
                 chunks (nginx-rtmp publish_time_fix, SRS peeks, older OBS omitted it)"
            ),
            Severity::Info,
        )
    } else {
        return;
    };
    if !c.once(Code::ExtendedTimestamp, Some(d)) {
        return;
    }
    c.findings.push(Finding {
        code: Code::ExtendedTimestamp,
        severity,
        conn: c.name.clone(),
        conn_id: c.id,
        dir: Some(d),
        frame: Some(r.frame),
        offset: Some(raw.offset),
        time: Some(r.time),
        message: what,
        fix: "keep timestamps monotonic per stream and track (check the encoder's timestamp \
         source; restart the stream after a source switch)"
            .into(),
        facts: vec![
            ("previous_timestamp", Fact::Int(u64::from(prev))),
            ("timestamp", Fact::Int(u64::from(ts))),
        ],
    });
}

/// Acknowledgement windows: a receiver that never acks, sequence-number wrap.
fn acknowledgement(c: &mut ConnDiag) {
    for d in [Dir::C2s, Dir::S2c] {
        let i = d.index();
        let (count, _, wrap) = c.acks[i];
        if let Some((w, off, frame)) = c.ack_window[i] {
            let after = c.hs_bytes[i].saturating_sub(off);
            if count == 0 && after > 3 * u64::from(w) {
                c.findings.push(Finding {
                    code: Code::Acknowledgement,
                    severity: Severity::Warning,
                    conn: c.name.clone(),
                    conn_id: c.id,
                    dir: Some(d),
                    frame: Some(frame),
                    offset: Some(off),
                    time: None,
                    message: format!(
                        "{} announced a window of {w} bytes and sent {after} bytes after it, but \
                         {} never acknowledged any: a sender that waits for acknowledgements \
                         stalls, and servers that count on them drop the session",
                        sender(d),
                        receiver(d)
                    ),
                    fix: format!(
                        "{} must send Acknowledgement (type 3) after each window of bytes received",
                        receiver(d)
                    )
                    .into(),
                    facts: vec![
                        ("window", Fact::Int(u64::from(w))),
                        ("bytes_after", Fact::Int(after)),
                    ],
                });
            }
        }
        if let Some((frame, from, to)) = wrap {
            c.findings.push(Finding {
                code: Code::Acknowledgement,
                severity: Severity::Info,
                conn: c.name.clone(),
                conn_id: c.id,
                dir: Some(d.reverse()),
                frame: Some(frame),
                offset: None,
                time: None,
                message: format!(
                    "{}'s acknowledgement sequence number went back from {from} to {to} (the \
                     4 GiB wrap, or a reset counter as nginx-rtmp does at 0xF0000000): servers \
                     that mishandle the wrap stall encoders (SRS #598/#730, nginx-rtmp #354)",
                    receiver(d)
                ),
                fix: "nothing to do if the stream goes on; otherwise update the server".into(),
                facts: vec![],
            });
        }
    }
}

/// A message over nginx-rtmp's max_message (seen whole, or only its header
/// when the server cut the connection before the rest arrived).
#[allow(clippy::too_many_arguments)]
fn too_big(
    c: &mut ConnDiag,
    d: Dir,
    r: &Record,
    frame: u64,
    offset: u64,
    len: u32,
    t: MessageType,
    ts: u32,
    whole: bool,
) {
    if !c.once(Code::MessageTooBig, Some(d)) {
        return;
    }
    let cut = if whole {
        String::new()
    } else {
        " (the connection ended before the rest of it was sent)".into()
    };
    c.findings.push(Finding {
        code: Code::MessageTooBig,
        severity: Severity::Warning,
        conn: c.name.clone(),
        conn_id: c.id,
        dir: Some(d),
        frame: Some(frame),
        offset: Some(offset),
        time: (frame == r.frame).then_some(r.time),
        message: format!(
            "{} message of {len} bytes (ts {ts}){cut} is over nginx-rtmp's max_message (1 MiB): \
             nginx logs \"too big message: {NGINX_MAX_MESSAGE}\" (its limit, not the length) \
             and closes the connection",
            t.name(),
        ),
        fix: "raise max_message in nginx's rtmp server block (e.g. max_message 4M;), or lower \
              the encoder's key frame size (bitrate, keyint)"
            .into(),
        facts: vec![
            ("length", Fact::Int(u64::from(len))),
            ("limit", Fact::Int(u64::from(NGINX_MAX_MESSAGE))),
            (
                "nginx_log",
                Fact::Text(format!("too big message: {NGINX_MAX_MESSAGE}")),
            ),
        ],
    });
}

fn set_chunk_size(c: &mut ConnDiag, d: Dir, r: &Record, raw: &RawMessage, v: u32) {
    let size = v & 0x7fff_ffff;
    let (severity, what, fix, log) = if v & 0x8000_0000 != 0 {
        (
            Severity::Warning,
            format!("Set Chunk Size 0x{v:08x} has the top bit set (RTMP 1.0 §5.4.1: it must be 0)"),
            "send the chunk size as a 31-bit value".to_string(),
            None,
        )
    } else if size > NGINX_MAX_CHUNK_SIZE {
        let line = format!("too big RTMP chunk size:{v}");
        (
            Severity::Warning,
            format!(
                "Set Chunk Size {v} is over nginx-rtmp's 10 MiB limit: nginx logs \"{line}\" and closes the connection"
            ),
            "announce a chunk size of at most 10485760 (4096-65536 is common)".to_string(),
            Some(line),
        )
    } else if size < DEFAULT_CHUNK_SIZE {
        (
            Severity::Warning,
            format!("Set Chunk Size {size} is below 128: SRS refuses it and closes the connection"),
            "announce a chunk size of at least 128".to_string(),
            None,
        )
    } else {
        return;
    };
    if !c.once(Code::MessageTooBig, Some(d.reverse())) {
        return;
    }
    let mut facts = vec![("chunk_size", Fact::Int(u64::from(v)))];
    if let Some(l) = log {
        facts.push(("nginx_log", Fact::Text(l)));
    }
    c.findings.push(Finding {
        code: Code::MessageTooBig,
        severity,
        conn: c.name.clone(),
        conn_id: c.id,
        dir: Some(d),
        frame: Some(r.frame),
        offset: Some(raw.offset),
        time: Some(r.time),
        message: format!("{} {what}", sender(d)),
        fix: fix.into(),
        facts,
    });
}

fn text(v: &Amf0Value) -> Option<String> {
    v.text().map(|s| s.into_owned())
}

/// Text from the capture, made safe to print: control characters escaped,
/// secrets (stream keys seen in this connection) redacted.
fn quote(c: &ConnDiag, s: &str, reveal: bool) -> String {
    let mut s = crate::text::sanitize(s).into_owned();
    if !reveal {
        for k in &c.secrets {
            if let std::borrow::Cow::Owned(t) =
                crate::text::hide_secret(&s, k, &crate::net::url::redact(k, false))
            {
                s = t;
            }
        }
    }
    s
}

fn command(
    c: &mut ConnDiag,
    d: Dir,
    r: &Record,
    raw: &RawMessage,
    cmd: &crate::proto::message::Command,
    reveal: bool,
) {
    let name = cmd.name().to_string();
    if d == Dir::C2s {
        match name.as_str() {
            "connect" => {
                if let Some(o) = cmd.command_object() {
                    c.flash_ver = o.get("flashVer").and_then(text);
                    if let Some(q) = o
                        .get("tcUrl")
                        .and_then(text)
                        .and_then(|u| u.split_once('?').map(|x| x.1.to_string()))
                    {
                        for kv in q.split('&') {
                            let v = kv.split_once('=').map_or(kv, |x| x.1);
                            c.secrets.push(v.to_string());
                        }
                    }
                }
            }
            "publish" | "play" | "releaseStream" | "FCPublish" => {
                if let Some(k) = cmd.args().first().and_then(text) {
                    let k = k.split_once('?').map_or(k.as_str(), |x| x.0).to_string();
                    if !c.secrets.contains(&k) {
                        c.secrets.push(k);
                    }
                }
                if name == "publish" {
                    c.publishing = true;
                }
                if name == "play" {
                    c.playing = Some((r.frame, r.time));
                }
            }
            _ => {}
        }
        if matches!(
            name.as_str(),
            "connect" | "createStream" | "publish" | "play"
        ) {
            c.commands.push((name.clone(), r.frame, r.time, false));
            if let Some(tx) = cmd.transaction_id() {
                c.pending.push((tx, name.clone(), r.frame, r.time));
            }
        }
        return;
    }
    // Answers from the server.
    let tx = cmd.transaction_id().unwrap_or(-1.0);
    let answered = |c: &mut ConnDiag, what: &str| {
        if let Some(x) = c.commands.iter_mut().rev().find(|x| x.0 == what) {
            x.3 = true;
        }
    };
    let info = cmd
        .args()
        .first()
        .or(cmd.command_object())
        .cloned()
        .unwrap_or(Amf0Value::Null);
    let level = info.get("level").and_then(text).unwrap_or_default();
    let code = info.get("code").and_then(text).unwrap_or_default();
    let desc = info.get("description").and_then(text).unwrap_or_default();
    let asked = c
        .pending
        .iter()
        .position(|p| p.0 == tx && tx > 0.0)
        .map(|i| c.pending.remove(i));
    match name.as_str() {
        "_result" => {
            if let Some(a) = &asked {
                answered(c, &a.1.clone());
            }
            // nginx-rtmp answers connect with this fmsVer.
            if cmd
                .command_object()
                .and_then(|o| o.get("fmsVer"))
                .and_then(text)
                .is_some_and(|v| v == "FMS/3,0,1,123")
            {
                c.nginx = true;
            }
            return;
        }
        "_error" => {
            if let Some(a) = &asked {
                answered(c, &a.1.clone());
            }
        }
        "onStatus" => {
            let what = if code.starts_with("NetStream.Publish") {
                "publish"
            } else if code.starts_with("NetStream.Play") {
                "play"
            } else {
                ""
            };
            if !what.is_empty() {
                answered(c, what);
            }
            if level != "error" {
                return;
            }
        }
        _ => return,
    }
    let what = asked.as_ref().map_or_else(
        || {
            if code.starts_with("NetStream.Publish") {
                "publish".to_string()
            } else if code.starts_with("NetStream.Play") {
                "play".to_string()
            } else if code.starts_with("NetConnection") {
                "connect".to_string()
            } else {
                "a command".to_string()
            }
        },
        |a| a.1.clone(),
    );
    let why = likely_reason(&code, &desc, &what);
    let q_code = quote(c, &code, reveal);
    let q_desc = quote(c, &desc, reveal);
    let mut message = format!("the server refused {what}");
    if let Some(a) = &asked {
        message.push_str(&format!(" (sent at frame {})", a.2));
    }
    message.push_str(&format!(": {name} "));
    if !q_code.is_empty() {
        message.push_str(&format!("\"{q_code}\""));
    }
    if !q_desc.is_empty() {
        message.push_str(&format!(" \"{q_desc}\""));
    }
    message.push_str(&format!("; likely reason: {}", why.0));
    c.findings.push(Finding {
        code: Code::Refused,
        severity: Severity::Error,
        conn: c.name.clone(),
        conn_id: c.id,
        dir: Some(d),
        frame: Some(r.frame),
        offset: Some(raw.offset),
        time: Some(r.time),
        message,
        fix: why.1.into(),
        facts: vec![
            ("command", Fact::Text(what)),
            ("status_code", Fact::Text(q_code)),
            ("description", Fact::Text(q_desc)),
        ],
    });
}

/// The likely reason for a refusal and what to do, from the status code.
fn likely_reason(code: &str, desc: &str, what: &str) -> (&'static str, &'static str) {
    let d = desc.to_ascii_lowercase();
    match code {
        "NetStream.Publish.BadName" => (
            "the stream key is already publishing (nginx-rtmp: \"Already publishing\"): another \
             encoder, or a stale session the server has not dropped yet, holds this name",
            "stop the other publisher or wait for its session to time out (nginx: drop_idle_publisher); \
             use a unique stream key per encoder",
        ),
        "NetStream.Play.StreamNotFound" => (
            "no stream of that name is published (or the application does not record/serve it)",
            "check the stream name and that the publisher is live on the same application",
        ),
        "NetConnection.Connect.InvalidApp" => (
            "the application name is wrong",
            "use the application configured on the server (nginx: an application block of that name)",
        ),
        _ if d.contains("forbidden") || d.contains("denied") || d.contains("unauthori") => (
            "an access rule or authentication refused it (nginx: allow/deny publish|play, on_publish/on_play returning non-2xx)",
            "allow the client's address (allow publish <addr>;) or fix the credentials the auth hook checks",
        ),
        _ if code.contains("Rejected") || what == "connect" => (
            "the server rejected the connection: a wrong application name, or an authentication hook",
            "check the application name in the URL and any credentials in its query",
        ),
        _ => (
            "the server gave no more detail than the status code",
            "look up the status code in the server's documentation and logs",
        ),
    }
}

/// Judges a direction whose chunk stream went wrong: infers the size really
/// used from the last clean message start.
fn judge_chunks(c: &mut ConnDiag, d: Dir) {
    let i = d.index();
    let w = &mut c.watch[i];
    let Some((t_off, _)) = w.trouble else { return };
    // Right after a Set Chunk Size that no message confirmed, walk from
    // before it: it may itself be a misread.
    let from = if w.anchors.len() == 1 && w.anchors[0].scs && !w.prev_anchors.is_empty() {
        &w.prev_anchors
    } else {
        &w.anchors
    };
    let Some(a) = from.front().cloned() else {
        w.done = true;
        return;
    };
    if a.offset < w.base || a.offset > w.end() {
        w.done = true;
        return;
    }
    let buf = &w.buf[(a.offset - w.base) as usize..];
    let Some(inf) = chunk_size::infer_chunk_size(buf, &a.state, a.chunk_size) else {
        // The announced size holds: the trouble is something else. Watch on.
        w.trouble = None;
        w.anchors.clear();
        w.prev_anchors.clear();
        if w.end() > t_off + EVIDENCE_AFTER_TROUBLE {
            w.done = true;
        }
        return;
    };
    let Some(div) = chunk_size::divergence(buf, a.offset, &a.state, a.chunk_size, inf.size) else {
        w.done = true;
        return;
    };
    let nginx = chunk_size::receive(
        buf,
        a.offset,
        &a.state,
        a.chunk_size,
        &Limits::NGINX,
        usize::MAX,
    )
    .refusal
    .filter(|(o, _)| *o >= div.offset);
    let frame_of = |o: u64| w.frame_at(o);
    let ann = a.chunk_size;
    let used = inf.size;
    let m = div.message;
    let mut msg = match a.announced_at {
        None => format!(
            "{} chunks at {used} bytes but never sent Set Chunk Size, so {} reads with {ann} \
             (the default)",
            sender(d),
            receiver(d)
        ),
        Some((o, f)) => format!(
            "{} announced Set Chunk Size {ann} (offset {o}, frame {f}) but chunks at {used} bytes",
            sender(d)
        ),
    };
    if !inf.proven && !inf.also_consistent.is_empty() {
        msg.push_str(&format!(
            " (no later message is longer than {used}, so larger sizes fit too: {})",
            inf.also_consistent
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    msg.push_str(&format!(
        ". The first message longer than {}: {} of {} bytes on chunk stream {} at offset {} \
         (frame {}). ",
        ann.min(used),
        MessageType(m.msg_type).name(),
        m.length,
        m.csid,
        m.offset,
        frame_of(m.offset).unwrap_or(0)
    ));
    let div_frame = frame_of(div.offset);
    let mis_frame = frame_of(div.misparsed_header);
    if used > ann {
        msg.push_str(&format!(
            "{} expects a fmt-3 chunk header after {ann} payload bytes, at offset {} (frame {}), \
             but the sender's chunk goes on with payload",
            capitalized(receiver(d)),
            div.offset,
            div_frame.unwrap_or(0)
        ));
    } else {
        msg.push_str(&format!(
            "The sender puts a fmt-3 chunk header at offset {} (frame {}) that {} takes as payload \
             ({} header(s) swallowed); it then reads its next header at offset {} (frame {}), \
             which is really payload",
            div.offset,
            div_frame.unwrap_or(0),
            receiver(d),
            div.swallowed_headers,
            div.misparsed_header,
            mis_frame.unwrap_or(0)
        ));
    }
    let mut facts = vec![
        ("announced_chunk_size", Fact::Int(u64::from(ann))),
        ("used_chunk_size", Fact::Int(u64::from(used))),
        (
            "size_proven",
            Fact::Text(if inf.proven { "yes" } else { "consistent" }.into()),
        ),
        ("message_offset", Fact::Int(m.offset)),
        ("message_type", Fact::Int(u64::from(m.msg_type))),
        ("message_length", Fact::Int(u64::from(m.length))),
        ("misparsed_header_offset", Fact::Int(div.misparsed_header)),
        ("swallowed_headers", Fact::Int(div.swallowed_headers as u64)),
    ];
    if let Some(f) = frame_of(m.offset) {
        facts.push(("message_frame", Fact::Int(f)));
    }
    if let Some(f) = mis_frame {
        facts.push(("misparsed_header_frame", Fact::Int(f)));
    }
    if d == Dir::C2s {
        match &nginx {
            Some((o, why)) => match why.nginx_log() {
                Some(line) => {
                    msg.push_str(&format!(
                        ". nginx-rtmp logs \"{line}\" (reading offset {o}, frame {}) and closes the \
                         connection",
                        frame_of(*o).unwrap_or(0)
                    ));
                    facts.push(("nginx_log", Fact::Text(line)));
                    facts.push(("nginx_log_offset", Fact::Int(*o)));
                }
                None => msg.push_str(&format!(
                    ". nginx-rtmp closes the connection at offset {o} without an error line (a \
                     misread AMF message, logged at debug level only)"
                )),
            },
            None => msg.push_str(
                ". nginx-rtmp misreads the stream silently as far as the capture goes (no limit \
                 is hit)",
            ),
        }
    }
    msg.push_str(
        "; FFmpeg reports \"RTMP packet size mismatch\", Wireshark shows \"Unknown (0x0)\" messages",
    );
    if let Some((o, f)) = w.decoder_break {
        msg.push_str(&format!(
            " (rtmptool's decoder lost step at offset {o}, frame {f})"
        ));
    }
    let fix = match (d, a.announced_at) {
        (Dir::C2s, None) => format!(
            "send Set Chunk Size {used} before the first chunk larger than {ann} (FFmpeg copies the \
             server's chunk size: make the encoder's and the server's chunk_size agree), or chunk at {ann}"
        ),
        (Dir::C2s, Some(_)) => format!(
            "make the encoder chunk at the size it announces ({ann}), or announce {used}; encoder \
             and server chunk_size settings must agree"
        ),
        (Dir::S2c, _) => format!(
            "the server must send Set Chunk Size {used} before its first chunk larger than {ann}; \
             check the server's chunk_size setting and any proxy between"
        ),
    };
    c.findings.push(Finding {
        code: Code::ChunkSizeMismatch,
        severity: Severity::Error,
        conn: c.name.clone(),
        conn_id: c.id,
        dir: Some(d),
        frame: div_frame,
        offset: Some(div.offset),
        time: None,
        message: msg,
        fix: fix.into(),
        facts,
    });
    // What the direction "said" from the divergence on was misread: no
    // other finding rests on it.
    let cut = div.offset;
    c.findings.retain(|f| {
        f.code == Code::ChunkSizeMismatch || f.dir != Some(d) || f.offset.is_none_or(|o| o < cut)
    });
    let w = &mut c.watch[i];
    w.done = true;
    w.buf = Vec::new();
    w.segs = Vec::new();
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Analyses that need the whole connection.
fn end_of_conn(c: &mut ConnDiag, reveal: bool) {
    for d in [Dir::C2s, Dir::S2c] {
        if c.watch[d.index()].trouble.is_some() && !c.watch[d.index()].done {
            judge_chunks(c, d);
        }
        c.watch[d.index()] = Watch {
            done: true,
            ..Watch::new()
        };
    }
    if !c.opened && !c.mid_stream {
        return;
    }
    // Over a limit and then closed by the server: the limit is why.
    if let Some((_, sframe, _)) = c.closed[Dir::S2c.index()] {
        for f in &mut c.findings {
            if f.code == Code::MessageTooBig
                && f.dir == Some(Dir::C2s)
                && f.frame.is_some_and(|x| x <= sframe)
            {
                f.severity = Severity::Error;
                f.message.push_str(&format!(
                    "; the server closed the connection (frame {sframe})"
                ));
            }
        }
    }
    handshake(c);
    protocol_violation(c);
    silent_refusal(c, reveal);
    timing(c);
    acknowledgement(c);
    nagle(c);
}

fn close_words(c: &ConnDiag, since: Timestamp) -> String {
    let mut parts = Vec::new();
    let mut closes: Vec<(Dir, CloseKind, u64, Timestamp)> = [Dir::C2s, Dir::S2c]
        .iter()
        .filter_map(|&d| c.closed[d.index()].map(|(k, f, t)| (d, k, f, t)))
        .collect();
    closes.sort_by_key(|x| x.2);
    for (d, k, f, t) in closes {
        let kind = match k {
            CloseKind::Fin => "FIN",
            CloseKind::Rst => "RST",
        };
        parts.push(format!(
            "{} sent {kind} {:.2} s later (frame {f})",
            sender(d),
            secs(since, t)
        ));
    }
    if parts.is_empty() {
        match c.last_time {
            Some(t) => format!(
                "nobody closed the connection; the capture ends {:.2} s later",
                secs(since, t)
            ),
            None => "nobody closed the connection".into(),
        }
    } else {
        parts.join(", then ")
    }
}

/// What the conversation is, and what to do, when the client's first bytes
/// (`what`, from `dir`) and the server's answer are the same other
/// protocol: HTTP or TLS.
fn foreign_exchange(
    dir: Dir,
    what: &str,
    answer: Option<&(u8, Vec<u8>)>,
) -> Option<(&'static str, &'static str)> {
    let (version, head) = answer?;
    let answer = describe_bad_version(*version, head);
    if dir != Dir::C2s {
        return None;
    }
    if what.contains("HTTP request") && answer.contains("HTTP server answered") {
        Some((
            "not RTMP: an HTTP exchange (the client sent an HTTP request, the server answered \
             with HTTP): an HTTP server holds this port",
            "nothing to fix in RTMP; if RTMP was expected on this port, point the client at the \
             RTMP server's port",
        ))
    } else if what.contains("TLS handshake") && answer.contains("TLS") {
        Some((
            "not plain RTMP: a TLS exchange (the client sent a TLS handshake, the server \
             answered with TLS): an rtmps port, or another protocol over TLS, encrypted",
            "nothing to fix in plain RTMP; to read RTMPS, capture behind the TLS terminator \
             (nginx's stream module, a load balancer) where the RTMP is plain",
        ))
    } else {
        None
    }
}

fn handshake(c: &mut ConnDiag) {
    if c.mid_stream {
        return;
    }
    let [cs, ss] = c.hs;
    if let Some((d, version, head, frame, time)) = c.bad_version.clone() {
        let what = describe_bad_version(version, &head);
        // Both sides speak the same other protocol (an HTTP server or a
        // TLS port answering its client): a conversation that is not RTMP,
        // no RTMP fault.
        if let Some((message, fix)) = foreign_exchange(d, what, c.answer_not_rtmp.as_ref()) {
            c.findings.push(Finding {
                code: Code::HandshakeBadVersion,
                severity: Severity::Info,
                conn: c.name.clone(),
                conn_id: c.id,
                dir: Some(d),
                frame: Some(frame),
                offset: Some(0),
                time: Some(time),
                message: message.into(),
                fix: fix.into(),
                facts: vec![
                    ("version", Fact::Int(u64::from(version))),
                    ("what", Fact::Text(what.into())),
                ],
            });
            return;
        }
        let packet = if d == Dir::S2c { "S0" } else { "C0" };
        let verb = if d == Dir::S2c { "answered" } else { "sent" };
        let mut msg = format!(
            "{} {verb} {packet} = 0x{version:02x}, not 3: {what}",
            sender(d)
        );
        if d == Dir::S2c {
            match cs[2] {
                Some(c2) => {
                    let after: Vec<String> = c
                        .commands
                        .iter()
                        .map(|x| format!("{} (frame {})", x.0, x.1))
                        .collect();
                    msg.push_str(&format!(
                        ". The client ignored it: it sent C2 (frame {})",
                        c2.frame
                    ));
                    if !after.is_empty() {
                        msg.push_str(&format!(" and {}", after.join(", ")));
                    }
                    msg.push_str(&format!(
                        ", got no answer, and waited: {}. FFmpeg and rtmpdump do this and then \
                         fail with an error that never names the version byte (FFmpeg \
                         \"Input/output error\", rtmpdump \"RTMP_ReadPacket, failed to read RTMP \
                         packet header\")",
                        close_words(c, c2.time)
                    ));
                }
                None => msg.push_str(&format!(
                    ". The client stopped at {packet}: {}",
                    close_words(c, time)
                )),
            }
        } else {
            msg.push_str(&format!(
                "; the server sees no RTMP handshake (nginx-rtmp closes such a connection): {}",
                close_words(c, time)
            ));
        }
        let fix = match (d, version) {
            (Dir::C2s, _) if what.contains("TLS") => {
                "the client speaks TLS (rtmps://) to a plain RTMP port: use rtmp:// here, or the \
                 server's RTMPS port"
            }
            (Dir::C2s, _) if what.contains("HTTP") => {
                "the client speaks HTTP (a web URL, or RTMPT) to the RTMP port: use an rtmp:// URL"
            }
            (Dir::C2s, 6 | 8 | 9) => {
                "the client asks for RTMPE (encrypted RTMP), which servers such as nginx-rtmp do \
                 not speak: use rtmp:// or rtmps://"
            }
            (Dir::C2s, _) => "the client does not speak RTMP: check what connects to this port",
            _ if what.contains("HTTP") => {
                "point the client at the RTMP port (1935), not an HTTP port"
            }
            _ if what.contains("TLS") => {
                "use rtmps:// for this port, or the server's plain RTMP port"
            }
            (_, 6 | 8 | 9) => {
                "the peer speaks RTMPE (encrypted RTMP): use plain rtmp:// against a server with \
                 RTMPE off, or rtmps://"
            }
            _ => "check that the port belongs to an RTMP server (not a proxy or another protocol)",
        };
        c.findings.push(Finding {
            code: Code::HandshakeBadVersion,
            severity: Severity::Error,
            conn: c.name.clone(),
            conn_id: c.id,
            dir: Some(d),
            frame: Some(frame),
            offset: Some(0),
            time: Some(time),
            message: msg,
            fix: fix.into(),
            facts: vec![
                ("version", Fact::Int(u64::from(version))),
                ("what", Fact::Text(what.into())),
                (
                    "client_ignored",
                    Fact::Text(if cs[2].is_some() { "yes" } else { "no" }.into()),
                ),
            ],
        });
        return;
    }
    for d in [Dir::C2s, Dir::S2c] {
        if c.bad_digest[d.index()] {
            let (p, severity, effect, fix) = if d == Dir::C2s {
                (
                    "C1",
                    Severity::Info,
                    "servers that check it (nginx-rtmp) answer with the simple handshake (S1 \
                     echoes C1); servers that require a digest drop the client",
                    "send zero in bytes 4-7 for a simple handshake, or a correct digest",
                )
            } else {
                (
                    "S1",
                    Severity::Warning,
                    "clients that offered a digest handshake check the server's: FFmpeg fails \
                     with \"Server response validating failed\"",
                    "the server must send a valid S1 digest (or zero version bytes for a simple \
                     handshake)",
                )
            };
            c.findings.push(Finding {
                code: Code::HandshakeBadVersion,
                severity,
                conn: c.name.clone(),
                conn_id: c.id,
                dir: Some(d),
                frame: c.hs[d.index()][1].map(|s| s.frame),
                offset: Some(1),
                time: c.hs[d.index()][1].map(|s| s.time),
                message: format!(
                    "{p} carries a version in bytes 4-7 (digest handshake) but no digest verifies \
                     under either scheme: {effect}"
                ),
                fix: fix.into(),
                facts: vec![("packet", Fact::Text(p.into()))],
            });
        }
    }
    // Which packet never came: C0+C1, then S0+S1+S2, then C2 (by the bytes
    // each direction delivered: a snaplen-damaged handshake still counts).
    let c1_len = 1 + crate::proto::handshake::PACKET_LEN as u64;
    let full = crate::analyze::HANDSHAKE_LEN as u64;
    let [cb, sb] = c.hs_bytes;
    let missing: Option<(Dir, &str, Option<Seen>, &str)> = if cb < c1_len {
        Some((Dir::C2s, "C1", cs[0], "the client"))
    } else if sb < c1_len {
        let what = if sb == 0 { "S0/S1" } else { "S1" };
        Some((Dir::S2c, what, cs[1].or(cs[0]), "the server"))
    } else if sb < full {
        Some((Dir::S2c, "S2", cs[1].max_by_frame(ss[1]), "the server"))
    } else if cb < full {
        Some((Dir::C2s, "C2", ss[2].max_by_frame(ss[1]), "the client"))
    } else {
        None
    };
    let Some((d, what, after, who)) = missing else {
        return;
    };
    let Some(after) = after else { return };
    let closed = c.closed.iter().any(|x| x.is_some());
    let got = c.hs_bytes[d.index()];
    let mut msg = match what {
        "S0/S1" => format!(
            "no S0/S1 after the client's C0+C1 (frame {}): the server accepted TCP but never \
             answered the handshake ({got} bytes from it)",
            after.frame
        ),
        "C1" => format!(
            "the client's C1 never completed ({} of {c1_len} bytes)",
            got
        ),
        "C2" => format!(
            "no C2 from the client after the server's S0+S1+S2 (frame {}): nginx-rtmp logs \
             \"handshake: client not responding\" when its timeout expires",
            after.frame
        ),
        _ => format!("no {what} from the server after frame {}", after.frame),
    };
    msg.push_str(&format!("; {}", close_words(c, after.time)));
    if what == "S0/S1" {
        msg.push_str(
            ". Clients then fail without naming the cause: FFmpeg \"Cannot read RTMP handshake \
             response\" / \"Connection timed out\", rtmpdump \"RTMP_Connect1, handshake failed.\"",
        );
    }
    let fix = match what {
        "S0/S1" | "S1" | "S2" => {
            "the server (or a proxy/load balancer in front of it) accepts TCP without speaking \
             RTMP: check that an RTMP server listens on this port and is not stuck or overloaded"
        }
        _ => {
            "the client stopped mid-handshake: check its logs (a digest it could not verify, a \
             timeout shorter than the server's answer)"
        }
    };
    c.findings.push(Finding {
        code: Code::HandshakeIncomplete,
        severity: if closed {
            Severity::Error
        } else {
            Severity::Warning
        },
        conn: c.name.clone(),
        conn_id: c.id,
        dir: Some(d),
        frame: Some(after.frame),
        offset: Some(got),
        time: Some(after.time),
        message: msg,
        fix: fix.into(),
        facts: vec![
            ("missing", Fact::Text(what.into())),
            ("waited_by", Fact::Text(who.into())),
        ],
    });
}

trait MaxByFrame {
    fn max_by_frame(self, o: Option<Seen>) -> Option<Seen>;
}

impl MaxByFrame for Option<Seen> {
    fn max_by_frame(self, o: Option<Seen>) -> Option<Seen> {
        match (self, o) {
            (Some(a), Some(b)) => Some(if a.frame >= b.frame { a } else { b }),
            (a, b) => a.or(b),
        }
    }
}

/// connect or publish/play never answered, and the server closed the connection.
fn silent_refusal(c: &mut ConnDiag, reveal: bool) {
    if c.bad_version.is_some() || c.flagged.iter().any(|x| x.0 == Code::Refused) {
        return;
    }
    let Some((_, sframe, stime)) = c.closed[Dir::S2c.index()] else {
        return;
    };
    if c.findings.iter().any(|f| f.code == Code::ChunkSizeMismatch) {
        return;
    }
    if c.findings
        .iter()
        .any(|f| f.code == Code::MessageTooBig && f.severity >= Severity::Warning)
    {
        return;
    }
    // The client closing first is a client giving up, not a refusal.
    if let Some((_, cf, _)) = c.closed[Dir::C2s.index()]
        && cf < sframe
    {
        return;
    }
    let unanswered = c
        .commands
        .iter()
        .find(|x| !x.3 && x.1 < sframe && matches!(x.0.as_str(), "connect" | "publish" | "play"))
        .cloned();
    // A publish/play the server accepted and then dropped at once.
    let dropped = c
        .commands
        .iter()
        .rev()
        .find(|x| x.3 && x.1 < sframe && matches!(x.0.as_str(), "publish" | "play"))
        .filter(|x| secs(x.2, stime) < 2.0)
        .cloned();
    let (cmd, answered) = match (unanswered, dropped) {
        (Some(x), _) => (x, false),
        (None, Some(x)) => (x, true),
        (None, None) => return,
    };
    let (why, fix) = match cmd.0.as_str() {
        "connect" => (
            "nginx-rtmp closes the connection this way when the application does not exist (its \
             log: \"connect: application not found\")",
            "use an application name the server has (nginx: an application block of that name)",
        ),
        _ => (
            "nginx-rtmp closes the connection this way when an access rule refuses the client \
             (allow/deny publish|play, log \"access forbidden by rule\") or an on_publish/on_play \
             hook does not return 2xx",
            "allow the client's address in the application (allow publish <addr>;) or fix the \
             credentials the hook checks",
        ),
    };
    let what = if answered {
        format!(
            "{} (frame {}) was accepted, but the server closed the connection {:.2} s later",
            cmd.0,
            cmd.1,
            secs(cmd.2, stime)
        )
    } else {
        format!(
            "{} (frame {}) got no answer; the server closed the connection {:.2} s later",
            cmd.0,
            cmd.1,
            secs(cmd.2, stime)
        )
    };
    let _ = reveal;
    c.findings.push(Finding {
        code: Code::Refused,
        severity: Severity::Error,
        conn: c.name.clone(),
        conn_id: c.id,
        dir: Some(Dir::S2c),
        frame: Some(sframe),
        offset: None,
        time: Some(stime),
        message: format!("{what}: {why}"),
        fix: fix.into(),
        facts: vec![("command", Fact::Text(cmd.0))],
    });
}

/// Timing analyses: media against the capture clock, extended timestamps.
fn timing(c: &mut ConnDiag) {
    for d in [Dir::C2s, Dir::S2c] {
        let i = d.index();
        if let Some((frame, offset, _)) = c.type3_mixed[i] {
            c.findings.push(Finding {
                code: Code::ExtendedTimestamp,
                severity: Severity::Warning,
                conn: c.name.clone(),
                conn_id: c.id,
                dir: Some(d),
                frame: Some(frame),
                offset: Some(offset),
                time: None,
                message: format!(
                    "{} sends type-3 continuation chunks both with and without the extended \
                     timestamp (RTMP 1.0 §5.3.1.3 says repeat it): nginx-rtmp (publish_time_fix \
                     on) always reads the 4 bytes, SRS peeks, FFmpeg follows the spec",
                    sender(d)
                ),
                fix: "repeat the extended timestamp on every type-3 chunk of a message whose \
                      header carried one"
                    .into(),
                facts: vec![],
            });
        }
        let m = c.media[i];
        let (Some((ts0, t0, f0)), Some((ts1, t1))) = (m.first, m.last) else {
            continue;
        };
        let media = f64::from(ts1.wrapping_sub(ts0)) / 1000.0;
        let wall = secs(t0, t1);
        let lag = wall - media;
        if media >= 2.0 && wall > 0.0 && lag > 1.0 && lag > 0.1 * media {
            let media_kbps = m.bytes as f64 * 8.0 / media / 1000.0;
            let carried_kbps = m.bytes as f64 * 8.0 / wall / 1000.0;
            let who = if d == Dir::C2s {
                "the publisher's media"
            } else {
                "the player's media"
            };
            c.findings.push(Finding {
                code: Code::FallsBehindRealTime,
                severity: Severity::Warning,
                conn: c.name.clone(),
                conn_id: c.id,
                dir: Some(d),
                frame: Some(f0),
                offset: None,
                time: Some(t0),
                message: format!(
                    "{who} falls behind real time: {media:.1} s of media took {wall:.1} s to \
                     carry (lag at the end {lag:.1} s); media bitrate {media_kbps:.0} kbit/s, \
                     carried {carried_kbps:.0} kbit/s — players buffer"
                ),
                fix: "lower the bitrate below what the path carries, or find the bottleneck \
                      (uplink, server CPU, a shaper)"
                    .into(),
                facts: vec![
                    ("media_s", Fact::Float(media)),
                    ("wall_s", Fact::Float(wall)),
                    ("lag_s", Fact::Float(lag)),
                    ("media_kbps", Fact::Float(media_kbps)),
                    ("carried_kbps", Fact::Float(carried_kbps)),
                ],
            });
        }
    }
}

/// What player `p` got when a connection of the same capture published
/// E-RTMP video.
fn ertmp(c: &Player, out: &mut Vec<Finding>) {
    let m = c.media;
    let fv = c.flash_ver.as_deref().unwrap_or_default().to_string();
    let (pf, pt) = c.playing;
    if m.audio > 0 && m.video == 0 {
        out.push(Finding {
            code: Code::ErtmpNotRelayed,
            severity: Severity::Error,
            conn: c.name.clone(),
            conn_id: c.id,
            dir: Some(Dir::S2c),
            frame: m.first_audio_frame.or(Some(pf)),
            offset: None,
            time: Some(pt),
            message: format!(
                "the publisher sends Enhanced RTMP video, this player got {} audio messages \
                 and no video: stock nginx-rtmp (wait_key on, its default) reads the E-RTMP \
                 packet type as a frame type (9 for an ex-header key frame, never 1) and waits \
                 for a key frame forever",
                m.audio
            ),
            fix: "set `wait_key off;` in the nginx-rtmp application (it then relays every \
                  body unchanged), or use a server that knows E-RTMP"
                .into(),
            facts: vec![("audio_messages", Fact::Int(m.audio))],
        });
    } else if m.ertmp_video > 0 {
        let ffmpeg = fv.starts_with("LNX 9,0,124") || fv.contains("Lavf");
        let rtmpdump = fv.starts_with("LNX 10,0,32");
        if ffmpeg {
            out.push(Finding {
                code: Code::ErtmpNotRelayed,
                severity: Severity::Warning,
                conn: c.name.clone(),
                conn_id: c.id,
                dir: Some(Dir::S2c),
                frame: Some(pf),
                offset: None,
                time: Some(pt),
                message: format!(
                    "this player (flashVer \"{}\", FFmpeg's) receives {} Enhanced RTMP video \
                     messages: FFmpeg before 6.1 takes the E-RTMP packet type for a legacy \
                     codec id and cannot decode them",
                    crate::text::sanitize(&fv),
                    m.ertmp_video
                ),
                fix: "play with FFmpeg 6.1 or later".into(),
                facts: vec![("ertmp_video", Fact::Int(m.ertmp_video))],
            });
        }
        if rtmpdump && m.small_video > 0 {
            out.push(Finding {
                code: Code::ErtmpNotRelayed,
                severity: Severity::Warning,
                conn: c.name.clone(),
                conn_id: c.id,
                dir: Some(Dir::S2c),
                frame: Some(pf),
                offset: None,
                time: Some(pt),
                message: format!(
                    "this player (flashVer \"{}\", rtmpdump's) receives {} video messages of \
                     5 bytes or less, which rtmpdump drops: a bare E-RTMP SequenceEnd is lost",
                    crate::text::sanitize(&fv),
                    m.small_video
                ),
                fix: "use a player that keeps short video messages (FFmpeg 6.1+)".into(),
                facts: vec![("small_video", Fact::Int(m.small_video))],
            });
        }
    }
}
