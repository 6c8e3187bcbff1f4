//! Streaming RTMP analysis of captures: packets in, records out (RTMP 1.0 §5.2
//! handshake, §5.3 chunk stream, §5.4/§6/§7 messages), for `dump` and later
//! `diagnose` and `ecn`.
//!
//! Per TCP connection (reassembled by [`crate::capture::tcp::Reassembler`]) the
//! analyzer recognises RTMP by its handshake: the first byte of the connection
//! is C0 = 3, sent by the connecting side (`--port` forces a port instead).
//! The client is the SYN sender; without a SYN it is the side that does not
//! use the forced port or 1935, or else the one with the higher (ephemeral)
//! port. It inspects C0/C1/C2 and S0/S1/S2 (version, time, version
//! bytes, digest scheme found and verified), then runs one
//! [`ChunkDecoder`] per direction and decodes every message.
//!
//! Captures that start mid-connection (no SYN, no handshake) are recognised
//! by their chunk structure on any port: the analyzer looks for a position
//! where fmt 0/1 chunk headers hold together under a chunk size (candidates:
//! common sizes and sizes the bytes point to; see [`crate::proto::chunk::walk`])
//! and decodes from there. Fields of fmt 1-3 headers the capture never showed
//! are reported unknown, never guessed. When bytes are missing (snaplen, a
//! hole that never filled), a gap inside a chunk's payload is filled and the
//! message reported damaged; a gap over a chunk header loses the boundaries,
//! and the direction finds its way back with its chunk size and per-stream
//! header state, trying where the next segment starts first.
//!
//! The analyzer words nothing: it yields typed [`Record`]s ([`RecordKind`]),
//! each with connection, direction, frame, time and offset, which `dump`'s
//! renderers, and later diagnose and the relay's live view, consume.
//!
//! Memory is bounded per connection (handshake bytes, a resync window of
//! [`SYNC_WINDOW`] bytes, the chunk decoder's incomplete messages) and no
//! per-message history is kept: every record is handed to the caller at once.

mod rtmfp;
pub mod secrets;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

pub use crate::capture::tcp::{CloseKind, GapReason};
use crate::capture::tcp::{
    ConnId, ConnKey, Dir, DirStats, EndReason, Event, Limits, Reassembler, Roles,
};
use crate::capture::{DecodeError, Packet, Timestamp, Transport, decode};
use crate::proto::chunk::walk::{
    CANDIDATE_CHUNK_SIZES, Search, SearchOptions, Start, WalkState, find_boundary,
};
use crate::proto::chunk::{
    ChunkDecoder, ChunkError, ChunkEvent, ChunkInfo, DamagedMessage, DecoderConfig, RawMessage,
    ReserveBudget, Skip, Type3ExtendedTimestamp,
};
use crate::proto::handshake::{
    C1S1Info, C2S2Info, PACKET_LEN, RTMP_VERSION, Role, inspect_c1s1, inspect_c2s2,
};
use crate::proto::message::{Message, MessageError};
pub use rtmfp::{MAX_SESSIONS, RtmfpPacket};

/// Bytes of a complete handshake per direction: C0 + C1 + C2.
pub const HANDSHAKE_LEN: usize = 1 + 2 * PACKET_LEN;

/// Most bytes a direction buffers while looking for a chunk boundary; past
/// it the bytes before the position still being judged are dropped, and after
/// [`GIVE_UP_AFTER`] bytes without a boundary the direction is given up.
pub const SYNC_WINDOW: usize = 1 << 20;

/// Bytes searched without finding a chunk boundary before a direction is
/// taken for something other than RTMP.
pub const GIVE_UP_AFTER: u64 = 2 << 20;

/// Settings of an [`Analyzer`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Treat every TCP connection with this port as RTMP (this port is the server).
    pub port: Option<u16>,
    /// Emit a [`RecordKind::Chunk`] record for every chunk.
    pub report_chunks: bool,
    /// Bytes incomplete messages of all connections may reserve ahead of
    /// their data (default [`DEFAULT_MAX_RESERVED`]); past it buffers grow
    /// with what arrives, so announced lengths alone cannot take memory.
    pub max_reserved_bytes: Option<usize>,
    /// Bytes the incomplete messages of all connections may hold together
    /// (default [`DEFAULT_MAX_HELD`]); past it, the direction whose chunk
    /// would cross it stops with a [`ChunkError::TooMuchBuffered`] record.
    pub max_held_bytes: Option<usize>,
    /// TCP connections tracked at once (default [`DEFAULT_MAX_CONNECTIONS`]);
    /// past it the least recently active eighth is dropped, and each dropped
    /// connection says so.
    pub max_connections: Option<usize>,
    /// RTMFP session keys (`--keylog`).
    pub keylog: Option<Arc<crate::proto::rtmfp::keylog::KeyLog>>,
}

/// Default of [`Options::max_connections`]: 32768 (a few KiB each while
/// the handshake is held).
pub const DEFAULT_MAX_CONNECTIONS: usize = 32_768;

/// Undecodable packets reported one by one (the rest are counted).
pub const MAX_UNDECODABLE_REPORTS: u64 = 10;
/// Most reasons the end of capture counts undecodable packets by.
pub const MAX_UNDECODABLE_REASONS: usize = 8;

/// Default of [`Options::max_reserved_bytes`]: 32 MiB.
pub const DEFAULT_MAX_RESERVED: usize = 32 << 20;

/// Default of [`Options::max_held_bytes`]: 128 MiB (five hundred live
/// streams each with a 256 KiB key frame in flight; bytes that are not RTMP
/// after a handshake decode to messages that never complete, and would
/// otherwise keep a capture's worth of them).
pub const DEFAULT_MAX_HELD: usize = 128 << 20;

/// Which handshake packet a [`RecordKind::Handshake`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakePacket {
    /// C0 or S0: the version byte.
    Version(u8),
    /// C1 or S1.
    Hello {
        /// Time, version bytes and digest.
        info: C1S1Info,
        /// S1 equals the client's C1 byte for byte (nginx-rtmp's simple answer).
        echo_of_peer: bool,
    },
    /// C2 or S2; `None` when the peer's C1/S1 was not seen.
    Response(Option<C2S2Info>, u32),
}

/// Why a direction starts (again) at a chunk boundary it had to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncCause {
    /// The capture started mid-connection: no handshake was seen.
    MidStream,
    /// Bytes went missing (a gap) over a chunk header.
    Gap,
    /// The chunk stream stopped making sense (wrong boundary or chunk size).
    Error,
}

/// What happens in a direction after a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterGap {
    /// The bytes were inside a chunk's payload: filled, the message is
    /// damaged, decoding goes on in step.
    Filled,
    /// The gap covered a chunk header: the direction looks for the next boundary.
    Resync,
    /// The gap was inside the handshake: decoding goes on after it.
    InHandshake,
    /// The direction was not being decoded.
    NotDecoded,
    /// The connection ends there.
    Ends,
}

/// What a record says.
#[derive(Debug, Clone)]
pub enum RecordKind {
    /// A connection was recognised as RTMP (first record of the connection).
    Open {
        /// Client endpoint.
        client: SocketAddr,
        /// Server endpoint.
        server: SocketAddr,
        /// The client's SYN was seen.
        syn_seen: bool,
    },
    /// The capture starts mid-connection: no handshake was seen.
    MidStream,
    /// A handshake packet; the name is C0/C1/C2 for c2s, S0/S1/S2 for s2c.
    Handshake(HandshakePacket),
    /// C0/S0 was not 3: the direction is not decoded further.
    BadVersion {
        /// The version byte.
        version: u8,
        /// Up to 16 bytes from the start of the direction (they often name
        /// what answered: [`crate::proto::handshake::describe_bad_version`]).
        head: Vec<u8>,
    },
    /// One chunk (with [`Options::report_chunks`]).
    Chunk(ChunkInfo),
    /// A complete message, decoded.
    Message {
        /// The message as the chunk layer delivered it.
        raw: RawMessage,
        /// Its body, decoded (or why not).
        decoded: Result<Message, MessageError>,
    },
    /// Set Chunk Size took effect from `offset`.
    ChunkSizeChanged {
        /// Size before.
        old: u32,
        /// Size now.
        new: u32,
    },
    /// Set Chunk Size with a value that cannot be applied.
    InvalidChunkSize {
        /// The value as sent.
        raw: u32,
    },
    /// How the sender treats extended timestamps on type-3 continuation
    /// chunks (first seen, or changed).
    Type3Convention {
        /// Chunk stream where it was seen.
        csid: u32,
        /// What the sender did.
        convention: Type3ExtendedTimestamp,
    },
    /// An Abort message dropped a partial message.
    Aborted {
        /// Chunk stream.
        csid: u32,
        /// Bytes dropped.
        discarded: usize,
    },
    /// A new header interrupted a message in progress on the same chunk stream.
    Interrupted {
        /// Chunk stream.
        csid: u32,
        /// Bytes of the dropped message that had arrived.
        received: usize,
        /// Its announced length.
        length: u32,
    },
    /// Bytes of the direction are missing from the capture.
    Gap {
        /// Missing bytes.
        missing: u64,
        /// Why the reassembler gave up on them.
        reason: GapReason,
        /// What the direction does about it.
        then: AfterGap,
    },
    /// A retransmission carried different bytes than the first copy (which is decoded).
    Inconsistent {
        /// Bytes that differ.
        len: u64,
    },
    /// Decoding (re)starts at a chunk boundary that had to be found.
    Resynced {
        /// Why it had to be found.
        cause: SyncCause,
        /// Bytes skipped before the boundary.
        skipped: u64,
        /// Chunk size in force from there.
        chunk_size: u32,
        /// Whether the chunk size was kept from before (else inferred).
        size_kept: bool,
        /// Chunk headers that held together to confirm the boundary.
        chunks_agreed: usize,
    },
    /// No chunk boundary in `searched` bytes: the direction is given up.
    NoBoundary {
        /// Bytes searched.
        searched: u64,
    },
    /// A message that lost bytes to a gap (or was cut off by the end).
    Damaged(DamagedMessage),
    /// The chunk stream stopped making sense.
    ChunkError {
        /// What went wrong.
        error: ChunkError,
        /// Chunk size in force.
        chunk_size: u32,
        /// Whether the direction looks for another boundary (else it stops).
        resync: bool,
    },
    /// An RTMFP session was recognised (first record of the session).
    RtmfpSession {
        /// The side that sent IHello / IIKeying (or mode-1 packets).
        initiator: SocketAddr,
        /// The other side.
        responder: SocketAddr,
    },
    /// An RTMFP datagram (UDP), opened or sealed.
    Rtmfp(Box<RtmfpPacket>),
    /// The connection was dropped: too many connections were tracked at once
    /// ([`Options::max_connections`]; the least recently active go first).
    Evicted,
    /// A direction was closed by FIN or RST.
    Closed {
        /// FIN or RST.
        kind: CloseKind,
    },
    /// The connection ended; TCP counters per direction (c2s, s2c).
    End {
        /// TCP counters, indexed by [`Dir::index`].
        stats: [DirStats; 2],
    },
    /// A packet that could not be decoded down to TCP/UDP: an unsupported
    /// link type or a malformed header (`conn` is empty, `conn_id` is
    /// [`u64::MAX`]). The first [`MAX_UNDECODABLE_REPORTS`] are reported one
    /// by one; the end of capture says how many there were.
    Undecodable {
        /// Why.
        reason: String,
    },
    /// The capture ended (the last record; `conn` is empty, `conn_id` is
    /// [`u64::MAX`]).
    EndOfCapture {
        /// Packets that could not be decoded (link type, encapsulation, IP
        /// or TCP header).
        undecodable: u64,
        /// RTMP connections seen.
        connections: u64,
        /// Packets read.
        packets: u64,
        /// Packets decoded down to IP.
        ip_packets: u64,
        /// The undecodable packets by reason ([`DecodeError::summary`]),
        /// most frequent first, at most [`MAX_UNDECODABLE_REASONS`] (the
        /// last then counts every other reason).
        reasons: Vec<(String, u64)>,
    },
}

impl RecordKind {
    /// Whether the record reports a problem in the capture (a `warning`).
    pub fn is_problem(&self) -> bool {
        if let RecordKind::EndOfCapture { undecodable, .. } = self {
            // Packets not understood: said once more, counted by reason.
            return *undecodable > 0;
        }
        matches!(
            self,
            RecordKind::MidStream
                | RecordKind::BadVersion { .. }
                | RecordKind::InvalidChunkSize { .. }
                | RecordKind::Aborted { .. }
                | RecordKind::Interrupted { .. }
                | RecordKind::Gap { .. }
                | RecordKind::Inconsistent { .. }
                | RecordKind::Resynced { .. }
                | RecordKind::NoBoundary { .. }
                | RecordKind::Damaged(_)
                | RecordKind::ChunkError { .. }
                | RecordKind::Undecodable { .. }
                | RecordKind::Evicted
        )
    }
}

/// First [`Record::conn_id`] of RTMFP sessions (TCP connections count from 0).
pub const RTMFP_CONN_BASE: u64 = 1 << 32;

/// How a connection number is shown: `3` for TCP connection 3, `u0` for the
/// first RTMFP (UDP) session, `-` for records of no connection.
pub fn conn_label(id: u64) -> String {
    if id == u64::MAX {
        // A record of the capture, not of a connection.
        return "-".to_owned();
    }
    if id >= RTMFP_CONN_BASE {
        format!("u{}", id - RTMFP_CONN_BASE)
    } else {
        id.to_string()
    }
}

/// One unit of output, in capture order.
#[derive(Debug, Clone)]
pub struct Record {
    /// `client_ip:port-server_ip:port`, the same for every record of a connection.
    pub conn: Arc<str>,
    /// Connection number (order of appearance in the capture, from 0).
    pub conn_id: u64,
    /// Direction, when the record is about one.
    pub dir: Option<Dir>,
    /// 1-based frame number of the packet that completed the unit.
    pub frame: u64,
    /// Capture time of that packet.
    pub time: Timestamp,
    /// Stream offset of the unit in its direction (C0 = 0), when it has one.
    pub offset: Option<u64>,
    /// The content.
    pub kind: RecordKind,
}

impl Record {
    /// A record of the capture, not of a connection (`conn` empty,
    /// `conn_id` [`u64::MAX`]).
    fn of_capture(frame: u64, time: Timestamp, offset: Option<u64>, kind: RecordKind) -> Record {
        Record {
            conn: Arc::from(""),
            conn_id: u64::MAX,
            dir: None,
            frame,
            time,
            offset,
            kind,
        }
    }
}

/// Decoding state of one direction.
enum Phase {
    /// Collecting C0, C1, C2 (`hs` holds them).
    Handshake,
    /// Looking for a chunk boundary in `sync`.
    Sync {
        cause: SyncCause,
        /// The decoder to continue (its chunk size and per-stream state), or
        /// none when the stream is joined mid-way.
        dec: Option<Box<ChunkDecoder>>,
    },
    /// Decoding chunks.
    Chunks { dec: Box<ChunkDecoder> },
    /// Nothing more is decoded in this direction.
    Stopped,
}

/// The bytes a direction searches for a chunk boundary, their memory
/// counted in the budget every connection shares ([`Options::max_held_bytes`]
/// bounds them with the decoders' incomplete messages).
#[derive(Default)]
struct SyncBytes {
    bytes: Vec<u8>,
    /// Capacity counted in `budget`.
    counted: usize,
    budget: Option<Arc<ReserveBudget>>,
}

impl std::ops::Deref for SyncBytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.bytes
    }
}

impl std::ops::DerefMut for SyncBytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }
}

impl SyncBytes {
    /// Counts the buffer's memory as it is now.
    fn recount(&mut self, budget: &Arc<ReserveBudget>) {
        let now = self.bytes.capacity();
        let b = self.budget.get_or_insert_with(|| budget.clone());
        if now > self.counted {
            b.hold(now - self.counted);
        } else {
            b.unhold(self.counted - now);
        }
        self.counted = now;
    }

    /// The bytes, the buffer left empty (and its memory given back).
    fn take(&mut self) -> Vec<u8> {
        let v = std::mem::take(&mut self.bytes);
        if let Some(b) = &self.budget {
            b.unhold(self.counted);
        }
        self.counted = 0;
        v
    }

    /// Whether the connections together hold more than the budget allows:
    /// searches then keep [`SMALL_SYNC_WINDOW`] bytes.
    fn tight(budget: &ReserveBudget) -> bool {
        budget.held() > budget.held_limit()
    }
}

impl Drop for SyncBytes {
    fn drop(&mut self) {
        self.take();
    }
}

/// The window of a boundary search while the connections together hold
/// more than [`Options::max_held_bytes`] (16 KiB: a boundary of a stream
/// chunked at 4096 shows within it).
const SMALL_SYNC_WINDOW: usize = 16 << 10;

struct Half {
    phase: Phase,
    hs: Vec<u8>,
    /// Bytes of the handshake that were missing (filled with zeros).
    hs_damaged: bool,
    sync: SyncBytes,
    /// Stream offset of `sync[0]`.
    sync_offset: u64,
    /// Positions of `sync` before this were judged.
    sync_from: usize,
    /// Positions of `sync` that need more bytes to be judged.
    sync_pending: Vec<usize>,
    /// Bytes skipped since the search began.
    sync_skipped: u64,
    /// Where the bytes of `sync` came from: (stream offset, frame, time)
    /// of each packet's first byte, so that what a found boundary decodes
    /// names the packet that completed it (at most [`MAX_SYNC_MARKS`]).
    sync_marks: Vec<(u64, u64, Timestamp)>,
    /// Holes inside `sync` (stream offset, length): bytes the capture
    /// lacks, held as zeros so that a walk skips them as payload (a snaplen
    /// cuts bodies, not the small segments headers come in); they reach
    /// the decoder as holes, never as data.
    sync_holes: Vec<(u64, u64)>,
}

/// Largest hole a direction's search holds inside its bytes (a longer one
/// starts the search again after it).
const MAX_SYNC_HOLE: u64 = 64 << 10;

/// Packets a direction's search remembers the frames of (older ones are
/// merged into the next: their messages name a later frame).
const MAX_SYNC_MARKS: usize = 4096;

impl Half {
    fn new(phase: Phase) -> Self {
        Half {
            phase,
            hs: Vec::new(),
            hs_damaged: false,
            sync: SyncBytes::default(),
            sync_offset: 0,
            sync_from: 0,
            sync_pending: Vec::new(),
            sync_skipped: 0,
            sync_marks: Vec::new(),
            sync_holes: Vec::new(),
        }
    }

    /// Notes that the bytes of `sync` from stream `offset` came in `frame`.
    fn mark(&mut self, offset: u64, frame: u64, time: Timestamp) {
        if self.sync_marks.last().is_some_and(|m| m.1 == frame) {
            return;
        }
        if self.sync_marks.len() >= MAX_SYNC_MARKS {
            self.sync_marks.drain(..MAX_SYNC_MARKS / 2);
        }
        self.sync_marks.push((offset, frame, time));
    }

    /// Forgets the marks of bytes no longer in `sync` (all but the last
    /// one at or before its start).
    fn prune_marks(&mut self) {
        if self.sync.is_empty() {
            self.sync_marks.clear();
            self.sync_holes.clear();
            return;
        }
        let start = self.sync_offset;
        self.sync_holes.retain_mut(|(off, len)| {
            let end = *off + *len;
            if *off < start {
                *len = end.saturating_sub(start);
                *off = start;
            }
            *len > 0
        });
        let keep = self
            .sync_marks
            .iter()
            .rposition(|m| m.0 <= start)
            .unwrap_or(0);
        self.sync_marks.drain(..keep);
    }
}

enum Class {
    /// No data yet.
    Pending,
    /// No SYN, and the client's first byte is C0's 3 but no chunk header:
    /// a handshake only if the server's first byte is S0's 3 before the
    /// client has sent more than C0 + C1 (a client cannot send C2 before
    /// S1). A capture that starts at C2, whose first byte (S1's time echoed)
    /// may be 3, is mid-stream. The client's bytes wait here, at most
    /// C0 + C1.
    ///
    /// Also: the SYN or SYN+ACK fixed the stream starts, and the server's
    /// S0 came before the client's first byte (a capture out of time order:
    /// two taps merged, a multi-queue NIC): a handshake if the client's
    /// first byte is C0's 3. The server's bytes wait here, at most
    /// [`S0_FIRST_WAIT`] ([`Conn::s0_first`]).
    Tentative(Vec<Waiting>),
    /// Decoded as RTMP.
    Rtmp,
    /// Not RTMP: ignored.
    Ignored,
}

struct Conn {
    id: u64,
    name: Arc<str>,
    client: SocketAddr,
    server: SocketAddr,
    syn_seen: bool,
    /// The SYN or SYN+ACK was seen: stream offset 0 is each side's first byte.
    start_known: bool,
    /// [`Class::Tentative`] on the server's S0 seen before any client byte.
    s0_first: bool,
    /// Our client is the reassembler's server.
    flipped: bool,
    class: Class,
    /// The Open record was emitted (mid-connection: once a boundary is found).
    announced: bool,
    /// Indexed by our direction.
    half: [Half; 2],
    /// Records held until the connection is announced (mid-connection).
    held: Vec<Record>,
}

/// Bytes of one direction of an RTMP connection, handed to a tap
/// ([`Analyzer::packet_with_data`]) before the records they produce: for
/// analyses that walk the chunk stream again (chunk-size inference in
/// `diag`) without parsing the capture a second time.
#[derive(Debug, Clone, Copy)]
pub struct Data<'a> {
    /// Connection number, as in [`Record::conn_id`].
    pub conn_id: u64,
    /// Direction.
    pub dir: Dir,
    /// Stream offset of `bytes[0]` (C0 = 0).
    pub offset: u64,
    /// Frame of the packet that delivered them.
    pub frame: u64,
    /// Capture time of that packet.
    pub time: Timestamp,
    /// The bytes, in stream order.
    pub bytes: &'a [u8],
    /// The connection is over (`bytes` is empty): nothing more comes for
    /// it, neither bytes nor records. The last call for a connection; for
    /// one never announced (no chunk boundary found, so no
    /// [`RecordKind::End`]) the only sign that what a tap kept of it can go.
    pub end: bool,
}

/// Where records go.
struct Ctx<'a> {
    opts: &'a Options,
    time: Timestamp,
    /// The packet being processed (the last one at the end of the capture).
    frame: u64,
    emit: &'a mut dyn FnMut(Record),
    rtmp_conns: &'a mut u64,
    /// TCP connections that ended with every payload byte cut by the snaplen.
    cut_conns: &'a mut u64,
    budget: &'a Arc<ReserveBudget>,
    /// Where the bytes go, when someone asked for them.
    data: Option<&'a mut dyn FnMut(Data<'_>)>,
}

impl Ctx<'_> {
    fn rec(
        &mut self,
        c: &mut Conn,
        dir: Option<Dir>,
        frame: u64,
        offset: Option<u64>,
        kind: RecordKind,
    ) {
        let r = Record {
            conn: c.name.clone(),
            conn_id: c.id,
            dir,
            frame,
            time: self.time,
            offset,
            kind,
        };
        if c.announced {
            (self.emit)(r);
        } else if c.held.len() < 64 {
            // A mid-connection stream not (yet) recognised as RTMP: what it
            // said before is told once it is.
            c.held.push(r);
        }
    }
}

/// The streaming analyzer: feed packets, receive records.
pub struct Analyzer {
    opts: Options,
    re: Reassembler,
    conns: HashMap<u64, Conn>,
    /// Connections announced as RTMP so far.
    rtmp_conns: u64,
    /// TCP connections of which the snaplen left no payload byte.
    cut_conns: u64,
    /// Frame and time of the last packet.
    last: (u64, Timestamp),
    /// Up-front reservations of incomplete messages, over all connections.
    budget: Arc<ReserveBudget>,
    /// Packets read.
    packets: u64,
    /// Packets decoded down to IP.
    ip_packets: u64,
    /// Packets that did not decode down to TCP/UDP.
    undecodable: u64,
    /// Those by reason, bounded (see [`RecordKind::EndOfCapture`]).
    reasons: Vec<(String, u64)>,
    /// RTMFP over UDP.
    rtmfp: rtmfp::Rtmfp,
    /// IP fragments of UDP datagrams.
    defrag: crate::capture::frag::Defragmenter,
}

/// The name of handshake packet `n` (0, 1, 2) sent in direction `d`.
pub fn handshake_packet_name(d: Dir, n: usize) -> &'static str {
    match (d, n) {
        (Dir::C2s, 0) => "C0",
        (Dir::C2s, 1) => "C1",
        (Dir::C2s, _) => "C2",
        (Dir::S2c, 0) => "S0",
        (Dir::S2c, 1) => "S1",
        (Dir::S2c, _) => "S2",
    }
}

impl Analyzer {
    /// A new analyzer.
    pub fn new(opts: Options) -> Self {
        let opts_reserve = opts.max_reserved_bytes.unwrap_or(DEFAULT_MAX_RESERVED);
        let max_conns = opts.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        Analyzer {
            re: Reassembler::with_limits(Limits {
                max_conns,
                ..Limits::default()
            }),
            conns: HashMap::new(),
            rtmp_conns: 0,
            cut_conns: 0,
            last: (0, Timestamp::default()),
            budget: ReserveBudget::with_held_limit(
                opts_reserve,
                opts.max_held_bytes.unwrap_or(DEFAULT_MAX_HELD),
            ),
            packets: 0,
            ip_packets: 0,
            undecodable: 0,
            reasons: Vec::new(),
            rtmfp: rtmfp::Rtmfp::new(opts.keylog.clone()),
            defrag: Default::default(),
            opts,
        }
    }

    /// Connections currently tracked (bounded by the reassembler's limits).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Bytes the connections hold now in messages in progress and boundary
    /// searches (bounded by [`Options::max_held_bytes`], give or take the
    /// searches' last packets).
    pub fn held_bytes(&self) -> usize {
        self.budget.held()
    }

    /// Processes one captured packet; records go to `emit` in order.
    pub fn packet(&mut self, p: &Packet<'_>, emit: &mut dyn FnMut(Record)) {
        self.packet_inner(p, emit, None);
    }

    /// As [`Analyzer::packet`], and hands every byte of an RTMP connection
    /// to `data` (in stream order, before the records it produces).
    pub fn packet_with_data(
        &mut self,
        p: &Packet<'_>,
        emit: &mut dyn FnMut(Record),
        data: &mut dyn FnMut(Data<'_>),
    ) {
        self.packet_inner(p, emit, Some(data));
    }

    fn packet_inner<'a>(
        &'a mut self,
        p: &Packet<'_>,
        emit: &'a mut dyn FnMut(Record),
        data: Option<&'a mut dyn FnMut(Data<'_>)>,
    ) {
        self.last = (p.frame, p.time);
        self.packets += 1;
        let d = match decode(p.link_type, p.data) {
            Ok(d) => d,
            // Not IP (ARP, LLC...): not ours to decode.
            Err(DecodeError::NotIp(_)) => return,
            Err(e) => {
                self.undecodable += 1;
                count_reason(&mut self.reasons, e.summary());
                if self.undecodable <= MAX_UNDECODABLE_REPORTS {
                    let kind = RecordKind::Undecodable {
                        reason: e.to_string(),
                    };
                    emit(Record::of_capture(p.frame, p.time, Some(p.offset), kind));
                }
                return;
            }
        };
        self.ip_packets += 1;
        // A TCP segment the IP layer fragmented (a path MTU below the
        // sender's, tunnels): reassembled like UDP's, then decoded.
        let whole;
        let (src, dst, seg) = match d.transport {
            Transport::Tcp(seg) => (d.src, d.dst, seg),
            Transport::Fragment if d.fragment.is_some_and(|f| f.protocol == 6) => {
                let Some(f) = d.fragment else { return };
                whole = match self
                    .defrag
                    .add(d.src.ip(), d.dst.ip(), d.ecn, &f, p.time.sec)
                {
                    Some(w) => w,
                    None => return,
                };
                let Some((sp, dp, seg)) = crate::capture::tcp_segment(&whole.bytes) else {
                    return;
                };
                let at = |a: SocketAddr, port| SocketAddr::new(a.ip(), port);
                (at(d.src, sp), at(d.dst, dp), seg)
            }
            Transport::Udp(_) => {
                if let Some(u) = crate::capture::Udp::from_decoded(&d, p.frame, p.time) {
                    self.rtmfp.datagram(&u, emit);
                }
                return;
            }
            Transport::Fragment => {
                if let Some(f) = d.fragment
                    && f.protocol == 17
                    && let Some(w) = self
                        .defrag
                        .add(d.src.ip(), d.dst.ip(), d.ecn, &f, p.time.sec)
                    && w.bytes.len() >= 8
                {
                    let b = &w.bytes;
                    let len = usize::from(u16::from_be_bytes([b[4], b[5]]));
                    let end = if len >= 8 { len.min(b.len()) } else { b.len() };
                    let u = crate::capture::Udp {
                        src: SocketAddr::new(d.src.ip(), u16::from_be_bytes([b[0], b[1]])),
                        dst: SocketAddr::new(d.dst.ip(), u16::from_be_bytes([b[2], b[3]])),
                        payload: &b[8..end],
                        wire_len: (end - 8) as u32,
                        ecn: w.ecn,
                        dscp: d.dscp,
                        frame: p.frame,
                        time: p.time,
                    };
                    self.rtmfp.datagram(&u, emit);
                }
                return;
            }
            _ => return,
        };
        let Analyzer {
            opts,
            re,
            conns,
            rtmp_conns,
            cut_conns,
            budget,
            ..
        } = self;
        let mut ctx = Ctx {
            opts,
            time: p.time,
            frame: p.frame,
            emit,
            rtmp_conns,
            cut_conns,
            budget,
            data,
        };
        re.segment(src, dst, &seg, p.frame, p.time, |ev| {
            handle(conns, &mut ctx, ev)
        });
    }

    /// End of capture: reports what is still pending (gaps, cut-off
    /// messages, ends), then [`RecordKind::EndOfCapture`].
    pub fn finish(&mut self, emit: &mut dyn FnMut(Record)) {
        let Analyzer {
            opts,
            re,
            conns,
            rtmp_conns,
            cut_conns,
            last,
            budget,
            undecodable,
            packets,
            ip_packets,
            reasons,
            rtmfp,
            ..
        } = self;
        let mut ctx = Ctx {
            opts,
            time: last.1,
            frame: last.0,
            emit,
            rtmp_conns,
            cut_conns,
            budget,
            data: None,
        };
        re.flush(|ev| handle(conns, &mut ctx, ev));
        rtmfp.finish(*last, ctx.emit);
        // IP datagrams a fragment of which never came: their TCP segment
        // or UDP datagram is lost (said once, for all).
        let lost = self.defrag.dropped + self.defrag.incomplete() as u64;
        if lost > 0 {
            let kind = RecordKind::Undecodable {
                reason: format!(
                    "{lost} fragmented IP datagram(s) never reassembled (a fragment missing from the capture, or over the reassembly limits): the TCP segments or UDP datagrams they carried are lost"
                ),
            };
            (ctx.emit)(Record::of_capture(last.0, last.1, None, kind));
        }
        // Connections of which the snaplen left nothing to look at: not
        // "0 RTMP connections" without a word (tcpdump -s 66 and the like).
        if *ctx.cut_conns > 0 {
            let kind = RecordKind::Undecodable {
                reason: format!(
                    "{} TCP connection(s) not decoded: the capture's snaplen cut every payload byte of them (capture with a larger snaplen, e.g. tcpdump -s 0)",
                    ctx.cut_conns
                ),
            };
            (ctx.emit)(Record::of_capture(last.0, last.1, None, kind));
        }
        let connections = *ctx.rtmp_conns + rtmfp.sessions();
        let mut reasons = reasons.clone();
        // Most frequent first; "other reasons" stays last.
        let named = reasons.len().min(MAX_UNDECODABLE_REASONS - 1);
        reasons[..named].sort_by_key(|r| std::cmp::Reverse(r.1));
        let kind = RecordKind::EndOfCapture {
            undecodable: *undecodable,
            connections,
            packets: *packets,
            ip_packets: *ip_packets,
            reasons,
        };
        (ctx.emit)(Record::of_capture(last.0, last.1, None, kind));
    }
}

/// Adds one packet not decoded for `reason` to the tally, which keeps at
/// most [`MAX_UNDECODABLE_REASONS`] entries: a capture of ever new
/// reasons folds them into the last, "other reasons".
fn count_reason(tally: &mut Vec<(String, u64)>, reason: String) {
    if let Some(e) = tally.iter_mut().find(|e| e.0 == reason) {
        e.1 += 1;
    } else if tally.len() + 1 < MAX_UNDECODABLE_REASONS {
        tally.push((reason, 1));
    } else if let Some(e) = tally.get_mut(MAX_UNDECODABLE_REASONS - 1) {
        e.1 += 1;
    } else {
        tally.push(("other reasons".into(), 1));
    }
}

fn conn_name(client: SocketAddr, server: SocketAddr) -> Arc<str> {
    Arc::from(format!("{client}-{server}"))
}

fn handle(conns: &mut HashMap<u64, Conn>, ctx: &mut Ctx<'_>, ev: Event<'_>) {
    // Anything but data on a connection still tentative: the client sent
    // at most C0 + C1 and the server nothing; taken as the handshake it
    // looks like.
    let other = match &ev {
        Event::Gap { conn, .. }
        | Event::Inconsistent { conn, .. }
        | Event::Close { conn, .. }
        | Event::End { conn, .. } => Some(*conn),
        _ => None,
    };
    if let Some(conn) = other
        && conns
            .get(&conn.0)
            .is_some_and(|c| matches!(c.class, Class::Tentative(_)))
    {
        decide(conns, conn, true, ctx);
    }
    match ev {
        Event::Open {
            conn,
            key,
            syn_seen,
            ..
        } => {
            conns.insert(conn.0, new_conn(conn, key, syn_seen, ctx.opts));
        }
        Event::Data {
            conn,
            dir,
            stream_offset,
            bytes,
            frame,
            time,
        } => {
            let Some(c) = conns.get_mut(&conn.0) else {
                return;
            };
            ctx.time = time;
            let dir = if c.flipped { dir.reverse() } else { dir };
            if matches!(c.class, Class::Pending) {
                classify(c, dir, stream_offset, bytes, ctx.opts);
                match c.class {
                    Class::Rtmp => {
                        if matches!(c.half[0].phase, Phase::Handshake) {
                            announce(c, frame, ctx);
                        } else {
                            ctx.rec(c, None, frame, None, RecordKind::MidStream);
                        }
                    }
                    Class::Tentative(_) => {}
                    Class::Ignored | Class::Pending => return,
                }
            }
            if let Class::Tentative(waiting) = &mut c.class {
                match starts_with_handshake(waiting, c.s0_first, dir, bytes) {
                    None => {
                        waiting.push(Waiting {
                            dir,
                            offset: stream_offset,
                            bytes: bytes.to_vec(),
                            frame,
                            time,
                        });
                    }
                    Some(handshake) => {
                        decide(conns, conn, handshake, ctx);
                        if let Some(c) = conns.get_mut(&conn.0)
                            && matches!(c.class, Class::Rtmp)
                        {
                            rtmp_data(c, dir, stream_offset, bytes, frame, time, ctx);
                        }
                    }
                }
                return;
            }
            if matches!(c.class, Class::Rtmp) {
                rtmp_data(c, dir, stream_offset, bytes, frame, time, ctx);
            }
        }
        Event::Gap {
            conn,
            dir,
            stream_offset,
            missing_len,
            frame,
            reason,
        } => {
            if let Some((c, dir)) = rtmp_conn(conns, conn, dir) {
                gap(c, dir, stream_offset, missing_len, frame, reason, ctx);
            }
        }
        Event::Inconsistent {
            conn,
            dir,
            stream_offset,
            len,
            frame,
        } => {
            if let Some((c, dir)) = rtmp_conn(conns, conn, dir) {
                let kind = RecordKind::Inconsistent { len };
                ctx.rec(c, Some(dir), frame, Some(stream_offset), kind);
            }
        }
        Event::Close {
            conn,
            dir,
            kind,
            frame,
        } => {
            if let Some((c, dir)) = rtmp_conn(conns, conn, dir) {
                // A message the sender had not finished is cut off here.
                finish_half(c, dir, frame, ctx);
                ctx.rec(c, Some(dir), frame, None, RecordKind::Closed { kind });
            }
        }
        Event::End {
            conn,
            stats,
            reason,
            ..
        } => {
            let c = conns.remove(&conn.0);
            if let Some(c) = &c
                && matches!(c.class, Class::Pending)
                && stats.iter().any(|s| s.truncated_segments > 0)
                && stats.iter().all(|s| s.bytes == 0)
            {
                *ctx.cut_conns += 1;
            }
            if let Some(mut c) = c
                && matches!(c.class, Class::Rtmp)
            {
                // The packet that ended it (evicted, or the capture's last).
                let frame = ctx.frame;
                if reason == EndReason::Evicted {
                    ctx.rec(&mut c, None, frame, None, RecordKind::Evicted);
                }
                let stats = if c.flipped {
                    [stats[1], stats[0]]
                } else {
                    stats
                };
                for d in [Dir::C2s, Dir::S2c] {
                    finish_half(&mut c, d, frame, ctx);
                }
                ctx.rec(&mut c, None, frame, None, RecordKind::End { stats });
                if let Some(tap) = ctx.data.as_mut() {
                    tap(Data {
                        conn_id: c.id,
                        dir: Dir::C2s,
                        offset: 0,
                        frame,
                        time: ctx.time,
                        bytes: &[],
                        end: true,
                    });
                }
            }
        }
    }
}

/// A connection decoded as RTMP, and the reassembler's direction in our roles.
fn rtmp_conn(conns: &mut HashMap<u64, Conn>, conn: ConnId, dir: Dir) -> Option<(&mut Conn, Dir)> {
    let c = conns.get_mut(&conn.0)?;
    if !matches!(c.class, Class::Rtmp) {
        return None;
    }
    let dir = if c.flipped { dir.reverse() } else { dir };
    Some((c, dir))
}

/// The direction ends: a message still in progress is reported cut off.
#[inline(never)]
fn finish_half(c: &mut Conn, dir: Dir, frame: u64, ctx: &mut Ctx<'_>) {
    let d = dir.index();
    // Bytes still waiting for a boundary (or for its chunk size to be told
    // apart): nothing more comes, decide with what there is.
    if matches!(c.half[d].phase, Phase::Sync { .. }) && !c.half[d].sync.is_empty() {
        try_sync(c, dir, true, frame, ctx);
    }
    let h = &mut c.half[d];
    if let Phase::Chunks { dec } = &mut h.phase {
        if dec.partial_bytes() > 0 || dec.pending() > 0 {
            let at = dec.offset();
            dec.restart(at);
            drain(c, dir, frame, ctx);
        }
        if let Phase::Chunks { dec } = &mut c.half[d].phase {
            // Nothing more arrives: a later restart must not report twice.
            let at = dec.offset();
            dec.restart(at);
        }
    }
}

/// Emits the Open record (and what was held until then).
fn announce(c: &mut Conn, frame: u64, ctx: &mut Ctx<'_>) {
    if c.announced {
        return;
    }
    c.announced = true;
    *ctx.rtmp_conns += 1;
    let kind = RecordKind::Open {
        client: c.client,
        server: c.server,
        syn_seen: c.syn_seen,
    };
    ctx.rec(c, None, frame, None, kind);
    for r in std::mem::take(&mut c.held) {
        (ctx.emit)(r);
    }
}

fn new_conn(id: ConnId, key: ConnKey, syn_seen: bool, opts: &Options) -> Conn {
    let (mut client, mut server) = (key.client, key.server);
    let mut flipped = false;
    if !matches!(key.roles, Roles::Syn | Roles::SynAck) {
        // A guess from the first data sender: trust the well-known or forced
        // server port over it.
        let server_port = opts.port.unwrap_or(1935);
        let (cp, sp) = (client.port(), server.port());
        let swap = if cp == server_port || sp == server_port {
            cp == server_port && sp != server_port
        } else {
            // Clients connect from ephemeral ports, above the server's.
            cp < sp
        };
        if swap {
            std::mem::swap(&mut client, &mut server);
            flipped = true;
        }
    }
    Conn {
        id: id.0,
        name: conn_name(client, server),
        client,
        server,
        syn_seen,
        start_known: matches!(key.roles, Roles::Syn | Roles::SynAck),
        s0_first: false,
        flipped,
        class: Class::Pending,
        announced: false,
        half: [Half::new(Phase::Handshake), Half::new(Phase::Handshake)],
        held: Vec::new(),
    }
}

/// Most server bytes a [`Class::Tentative`] connection whose S0 came first
/// holds while the client's first byte is awaited: S0 + S1 + S2 and the
/// server's first control messages (Window Acknowledgement Size, Set Peer
/// Bandwidth, Set Chunk Size).
const S0_FIRST_WAIT: usize = HANDSHAKE_LEN + 512;

/// Bytes of a [`Class::Tentative`] connection: the client's, or the
/// server's when its S0 came first.
struct Waiting {
    dir: Dir,
    offset: u64,
    bytes: Vec<u8>,
    frame: u64,
    time: Timestamp,
}

/// Whether a [`Class::Tentative`] connection starts with a handshake, once
/// `dir`'s next `bytes` say so (`None`: not yet known).
fn starts_with_handshake(
    waiting: &[Waiting],
    s0_first: bool,
    dir: Dir,
    bytes: &[u8],
) -> Option<bool> {
    let sent: usize = waiting.iter().map(|w| w.bytes.len()).sum();
    let c0 = || bytes.first() == Some(&RTMP_VERSION) && !starts_with_chunk(bytes);
    if s0_first {
        // The server's S0 + S1 (+ S2) came first: the client's first byte decides.
        return match dir {
            Dir::C2s => Some(c0()),
            Dir::S2c if sent + bytes.len() > S0_FIRST_WAIT => Some(false),
            Dir::S2c => None,
        };
    }
    match dir {
        Dir::S2c => Some(bytes.first() == Some(&RTMP_VERSION) && !starts_with_chunk(bytes)),
        Dir::C2s if sent + bytes.len() > 1 + PACKET_LEN => Some(false),
        Dir::C2s => None,
    }
}

/// Ends a [`Class::Tentative`] connection: handshake or mid-stream, then
/// the client bytes that waited are decoded.
#[inline(never)]
fn decide(conns: &mut HashMap<u64, Conn>, conn: ConnId, handshake: bool, ctx: &mut Ctx<'_>) {
    let Some(c) = conns.get_mut(&conn.0) else {
        return;
    };
    let Class::Tentative(waiting) = std::mem::replace(&mut c.class, Class::Rtmp) else {
        return;
    };
    let first = waiting.first().map_or(0, |w| w.frame);
    if handshake {
        announce(c, first, ctx);
    } else if c.s0_first && c.syn_seen {
        // With the SYN seen, a server speaking first is another protocol.
        c.class = Class::Ignored;
        return;
    } else {
        for h in &mut c.half {
            h.phase = Phase::Sync {
                cause: SyncCause::MidStream,
                dec: None,
            };
        }
        ctx.rec(c, None, first, None, RecordKind::MidStream);
    }
    for w in waiting {
        rtmp_data(c, w.dir, w.offset, &w.bytes, w.frame, w.time, ctx);
    }
}

/// Bytes of a connection decoded as RTMP: to the tap, then decoded. (Not
/// through [`handle`]: a recursive `handle` is not inlined into the
/// reassembler's callback, which costs every event.)
#[inline]
fn rtmp_data(
    c: &mut Conn,
    dir: Dir,
    stream_offset: u64,
    bytes: &[u8],
    frame: u64,
    time: Timestamp,
    ctx: &mut Ctx<'_>,
) {
    if let Some(tap) = ctx.data.as_mut() {
        tap(Data {
            conn_id: c.id,
            dir,
            offset: stream_offset,
            frame,
            time,
            bytes,
            end: false,
        });
    }
    feed(c, dir, stream_offset, bytes, frame, ctx);
}

/// Decides from the first data of a connection whether it is RTMP.
#[inline(never)]
fn classify(c: &mut Conn, dir: Dir, offset: u64, bytes: &[u8], opts: &Options) {
    let Some(&first) = bytes.first() else {
        return;
    };
    let forced = opts
        .port
        .is_some_and(|p| c.server.port() == p || c.client.port() == p);
    // TPKT (RFC 1006: RDP, ISO-TSAP, S7comm on port 102) also starts with
    // 3: a whole TPKT with an X.224 connection request or confirm is not
    // RTMP's C0+C1 (whose time field would have to spell it out).
    if !forced && is_tpkt(bytes) {
        c.class = Class::Ignored;
        return;
    }
    if c.start_known && dir == Dir::S2c && offset == 0 && first == RTMP_VERSION && !forced {
        // The server's S0 before any client byte: a capture out of time
        // order (the server cannot answer a C0 it has not had). The
        // client's first byte decides.
        c.s0_first = true;
        c.class = Class::Tentative(Vec::new());
        return;
    }
    if c.syn_seen {
        // On the RTMP port a client that does not send C0 = 3 is still
        // reported (TLS or HTTP sent to an RTMP server, RTMPE).
        let forced = forced || (opts.port.is_none() && c.server.port() == 1935 && dir == Dir::C2s);
        // The handshake starts with the client's C0; a server speaking first
        // is another protocol.
        c.class = if forced || (dir == Dir::C2s && first == RTMP_VERSION) {
            Class::Rtmp
        } else {
            Class::Ignored
        };
        return;
    }
    // Without the SYN a first byte 3 may also be a fmt-0 chunk header on
    // chunk stream 3 (e.g. `connect`): a handshake only if it is not one.
    if dir == Dir::C2s && first == RTMP_VERSION && !starts_with_chunk(bytes) {
        c.class = Class::Tentative(Vec::new());
        return;
    }
    // Mid-connection: look for chunk boundaries on any port. Only
    // connections where a boundary is found are reported.
    c.class = Class::Rtmp;
    for h in &mut c.half {
        h.phase = Phase::Sync {
            cause: SyncCause::MidStream,
            dec: None,
        };
    }
}

/// Whether `b` starts with a TPKT header (version 3, reserved 0, a length
/// of at least 7) around an X.224 TPDU: a connection request or confirm
/// whose length indicator is the rest of the packet, or a data TPDU.
fn is_tpkt(b: &[u8]) -> bool {
    if b.len() < 7 || b[0] != 3 || b[1] != 0 {
        return false;
    }
    let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
    let (li, code) = (usize::from(b[4]), b[5] & 0xf0);
    len >= 7
        && match code {
            0xe0 | 0xd0 => li + 5 == len,
            0xf0 => li == 2,
            _ => false,
        }
}

/// Whether `b` starts with chunk headers that hold together (a first byte 3
/// that is a fmt-0 header on chunk stream 3, not C0).
fn starts_with_chunk(b: &[u8]) -> bool {
    let mut st = WalkState::default();
    let w = crate::proto::chunk::walk::walk(b, 128, &mut st, Start::Join, 2);
    w.clean() && w.chunks >= 1
}

#[inline]
fn feed(c: &mut Conn, dir: Dir, offset: u64, bytes: &[u8], frame: u64, ctx: &mut Ctx<'_>) {
    let d = dir.index();
    let mut data = bytes;
    let mut offset = offset;
    if matches!(c.half[d].phase, Phase::Handshake) {
        let consumed = handshake(c, dir, offset, data, frame, ctx);
        data = &data[consumed..];
        offset += consumed as u64;
        if data.is_empty() {
            return;
        }
    }
    match &mut c.half[d].phase {
        Phase::Handshake | Phase::Stopped => {}
        Phase::Chunks { dec } => {
            dec.push(data);
            drain(c, dir, frame, ctx);
        }
        Phase::Sync { .. } => {
            let h = &mut c.half[d];
            if h.sync.is_empty() {
                h.sync_offset = offset;
                h.sync_from = 0;
                h.sync_pending.clear();
                h.sync_marks.clear();
                h.sync_holes.clear();
            }
            h.mark(offset, frame, ctx.time);
            h.sync.extend_from_slice(data);
            try_sync(c, dir, false, frame, ctx);
        }
    }
}

/// Consumes handshake bytes of `data` (at stream `offset`); returns how many.
#[inline(never)]
fn handshake(
    c: &mut Conn,
    dir: Dir,
    offset: u64,
    data: &[u8],
    frame: u64,
    ctx: &mut Ctx<'_>,
) -> usize {
    let d = dir.index();
    let have = c.half[d].hs.len();
    if offset != have as u64 {
        // Cannot happen for a stream that starts at 0 (data is in order).
        c.half[d].phase = Phase::Stopped;
        return data.len();
    }
    let take = (HANDSHAKE_LEN - have).min(data.len());
    c.half[d].hs.extend_from_slice(&data[..take]);
    handshake_progress(c, dir, have, frame, ctx);
    take
}

/// Reports the handshake packets completed by the bytes after `have`.
fn handshake_progress(c: &mut Conn, dir: Dir, have: usize, frame: u64, ctx: &mut Ctx<'_>) {
    let d = dir.index();
    let now = c.half[d].hs.len();
    let damaged = c.half[d].hs_damaged;
    let role = if dir == Dir::C2s {
        Role::Client
    } else {
        Role::Server
    };
    if have < 1 && now >= 1 {
        let v = c.half[d].hs[0];
        ctx.rec(
            c,
            Some(dir),
            frame,
            Some(0),
            RecordKind::Handshake(HandshakePacket::Version(v)),
        );
        if v != RTMP_VERSION && !damaged {
            let head = c.half[d].hs[..now.min(16)].to_vec();
            let kind = RecordKind::BadVersion { version: v, head };
            ctx.rec(c, Some(dir), frame, Some(0), kind);
            c.half[d].phase = Phase::Stopped;
            c.half[d].hs = Vec::new();
            return;
        }
    }
    if have < 1 + PACKET_LEN && now > PACKET_LEN && !damaged {
        let h = &c.half[d].hs;
        if let Ok(info) = inspect_c1s1(&h[1..1 + PACKET_LEN], role) {
            let peer = &c.half[1 - d].hs;
            let echo_of_peer = dir == Dir::S2c
                && peer.len() > PACKET_LEN
                && !c.half[1 - d].hs_damaged
                && peer[1..1 + PACKET_LEN] == h[1..1 + PACKET_LEN];
            ctx.rec(
                c,
                Some(dir),
                frame,
                Some(1),
                RecordKind::Handshake(HandshakePacket::Hello { info, echo_of_peer }),
            );
        }
    }
    if now == HANDSHAKE_LEN {
        if !damaged {
            let h = &c.half[d].hs;
            let packet = &h[1 + PACKET_LEN..];
            let peer = &c.half[1 - d].hs;
            let info = if peer.len() > PACKET_LEN && !c.half[1 - d].hs_damaged {
                inspect_c2s2(packet, role, &peer[1..1 + PACKET_LEN]).ok()
            } else {
                None
            };
            let time = u32::from_be_bytes([packet[0], packet[1], packet[2], packet[3]]);
            ctx.rec(
                c,
                Some(dir),
                frame,
                Some(1 + PACKET_LEN as u64),
                RecordKind::Handshake(HandshakePacket::Response(info, time)),
            );
        }
        c.half[d].phase = Phase::Chunks {
            dec: Box::new(ChunkDecoder::new(DecoderConfig {
                start_offset: HANDSHAKE_LEN as u64,
                report_chunks: ctx.opts.report_chunks,
                reserve_budget: Some(ctx.budget.clone()),
                ..Default::default()
            })),
        };
        // The peer's C2/S2 needs our C1/S1: free both only when both are done.
        if c.half[1 - d].hs.len() == HANDSHAKE_LEN
            || matches!(c.half[1 - d].phase, Phase::Stopped | Phase::Sync { .. })
        {
            c.half[0].hs = Vec::new();
            c.half[1].hs = Vec::new();
        }
    }
}

/// Hands every event the decoder has ready to the caller.
#[inline]
fn drain(c: &mut Conn, dir: Dir, frame: u64, ctx: &mut Ctx<'_>) {
    let d = dir.index();
    loop {
        let Phase::Chunks { dec } = &mut c.half[d].phase else {
            return;
        };
        match dec.poll() {
            Ok(None) => return,
            Ok(Some(ev)) => event(c, dir, frame, ev, ctx),
            Err(error) => {
                let chunk_size = dec.chunk_size();
                let offset = match &error {
                    ChunkError::NoPreviousHeader { offset, .. }
                    | ChunkError::TooMuchBuffered { offset, .. }
                    | ChunkError::InvalidChunkSize { offset, .. } => *offset,
                };
                // The bytes from the bad chunk on are searched again (with the
                // state so far) for the next boundary.
                // So are they when the connections together hold too much
                // (this one's messages in progress are given up, not the
                // direction: the others may be what holds the memory).
                let resync = matches!(
                    error,
                    ChunkError::NoPreviousHeader { .. }
                        | ChunkError::TooMuchBuffered { shared: true, .. }
                );
                let kind = RecordKind::ChunkError {
                    error,
                    chunk_size,
                    resync,
                };
                ctx.rec(c, Some(dir), frame, Some(offset), kind);
                let h = &mut c.half[d];
                let Phase::Chunks { mut dec } = std::mem::replace(&mut h.phase, Phase::Stopped)
                else {
                    return;
                };
                if resync {
                    let rest = dec.take_pending();
                    dec.free_partials();
                    h.sync.clear();
                    // Skip the byte that broke, so the search moves on.
                    h.sync.extend_from_slice(rest.get(1..).unwrap_or_default());
                    h.sync_offset = offset + 1;
                    h.sync_from = 0;
                    h.sync_pending.clear();
                    h.sync_marks.clear();
                    h.mark(offset + 1, frame, ctx.time);
                    h.sync_skipped = 1;
                    h.phase = Phase::Sync {
                        cause: SyncCause::Error,
                        dec: Some(dec),
                    };
                    try_sync(c, dir, false, frame, ctx);
                }
                return;
            }
        }
    }
}

fn event(c: &mut Conn, dir: Dir, frame: u64, ev: ChunkEvent, ctx: &mut Ctx<'_>) {
    let (offset, kind) = match ev {
        ChunkEvent::Message(raw) => {
            let decoded = Message::decode(raw.header.msg_type, raw.payload.clone());
            (raw.offset, RecordKind::Message { raw, decoded })
        }
        ChunkEvent::Chunk(info) => (info.offset, RecordKind::Chunk(info)),
        ChunkEvent::ChunkSizeChanged {
            old, new, offset, ..
        } => (offset, RecordKind::ChunkSizeChanged { old, new }),
        ChunkEvent::Type3ExtendedTimestamp {
            csid,
            convention,
            offset,
        } => (offset, RecordKind::Type3Convention { csid, convention }),
        ChunkEvent::InvalidChunkSize { raw, offset } => {
            (offset, RecordKind::InvalidChunkSize { raw })
        }
        ChunkEvent::Aborted {
            csid,
            discarded,
            offset,
        } => (offset, RecordKind::Aborted { csid, discarded }),
        ChunkEvent::MessageInterrupted {
            csid,
            received,
            length,
            offset,
        } => (
            offset,
            RecordKind::Interrupted {
                csid,
                received,
                length,
            },
        ),
        ChunkEvent::Damaged(m) => (m.offset, RecordKind::Damaged(m)),
    };
    ctx.rec(c, Some(dir), frame, Some(offset), kind);
}

#[inline(never)]
fn gap(
    c: &mut Conn,
    dir: Dir,
    offset: u64,
    missing: u64,
    frame: u64,
    reason: GapReason,
    ctx: &mut Ctx<'_>,
) {
    let d = dir.index();
    // A gap at the end of a connection (reset, end of capture) is handled as
    // any other: data buffered after it is still delivered and decoded.
    // Bytes waiting for a boundary end here: decide with what there is
    // (unless the hole is held among them, for the walk to step over).
    if matches!(c.half[d].phase, Phase::Sync { .. })
        && !c.half[d].sync.is_empty()
        && !holds_hole(&c.half[d], offset, missing, reason)
    {
        try_sync(c, dir, true, frame, ctx);
    }
    let then = match &mut c.half[d].phase {
        Phase::Stopped => AfterGap::NotDecoded,
        Phase::Handshake => AfterGap::InHandshake,
        Phase::Sync { .. } => AfterGap::Resync,
        Phase::Chunks { dec } => match dec.skip(missing) {
            Skip::Filled => AfterGap::Filled,
            Skip::Lost => AfterGap::Resync,
        },
    };
    let kind = RecordKind::Gap {
        missing,
        reason,
        then,
    };
    ctx.rec(c, Some(dir), frame, Some(offset), kind);
    let h = &mut c.half[d];
    match then {
        AfterGap::InHandshake => {
            // The handshake has a fixed length: fill what is missing of it and
            // decode the chunk stream after it.
            let have = h.hs.len();
            let fill = (HANDSHAKE_LEN - have).min(missing.min(HANDSHAKE_LEN as u64) as usize);
            h.hs_damaged = true;
            h.hs.resize(have + fill, 0);
            handshake_progress(c, dir, have, frame, ctx);
            let rest = missing - fill as u64;
            if rest > 0
                && let Phase::Chunks { dec } = &mut c.half[d].phase
                && dec.skip(rest) == Skip::Lost
            {
                to_sync(c, dir, SyncCause::Gap);
            }
        }
        AfterGap::Resync => {
            drain(c, dir, frame, ctx);
            if matches!(c.half[d].phase, Phase::Chunks { .. }) {
                to_sync(c, dir, SyncCause::Gap);
            } else if holds_hole(&c.half[d], offset, missing, reason) {
                sync_hole(c, dir, offset, missing, frame, ctx);
            } else {
                let h = &mut c.half[d];
                h.sync.clear();
                h.sync_from = 0;
                h.sync_pending.clear();
                h.prune_marks();
                h.sync_skipped += missing;
            }
        }
        AfterGap::Filled => drain(c, dir, frame, ctx),
        AfterGap::NotDecoded | AfterGap::Ends => {}
    }
}

/// Whether a hole of `missing` at `offset` is held among the bytes a
/// direction searches (small, right after them, not the end of the stream).
fn holds_hole(h: &Half, offset: u64, missing: u64, reason: GapReason) -> bool {
    matches!(h.phase, Phase::Sync { .. })
        && !h.sync.is_empty()
        && !matches!(
            reason,
            GapReason::EndOfCapture | GapReason::Reset | GapReason::Evicted
        )
        && missing <= MAX_SYNC_HOLE
        && offset == h.sync_offset + h.sync.len() as u64
        && h.sync.len() as u64 + missing <= SYNC_WINDOW as u64
}

/// Holds a hole among the bytes a direction searches, and searches on.
#[inline(never)]
fn sync_hole(c: &mut Conn, dir: Dir, offset: u64, missing: u64, frame: u64, ctx: &mut Ctx<'_>) {
    let h = &mut c.half[dir.index()];
    h.mark(offset, frame, ctx.time);
    h.sync_holes.push((offset, missing));
    let n = h.sync.len() + missing as usize;
    h.sync.resize(n, 0);
    try_sync(c, dir, false, frame, ctx);
}

/// The direction's chunk boundaries are lost: look for the next one, keeping
/// the decoder's chunk size and per-stream state.
fn to_sync(c: &mut Conn, dir: Dir, cause: SyncCause) {
    let h = &mut c.half[dir.index()];
    if let Phase::Chunks { mut dec } = std::mem::replace(&mut h.phase, Phase::Stopped) {
        dec.free_partials();
        h.sync.clear();
        h.sync_from = 0;
        h.sync_pending.clear();
        h.prune_marks();
        h.sync_skipped = 0;
        h.phase = Phase::Sync {
            cause,
            dec: Some(dec),
        };
    }
}

#[inline(never)]
fn try_sync(c: &mut Conn, dir: Dir, final_bytes: bool, frame: u64, ctx: &mut Ctx<'_>) {
    let d = dir.index();
    let h = &mut c.half[d];
    let Phase::Sync { cause, dec } = &h.phase else {
        return;
    };
    let cause = *cause;
    let (state, sizes, start) = match dec {
        Some(dec) if cause == SyncCause::Error => {
            // The chunk size in force may be what went wrong: try the others,
            // and the sizes the bytes point to, after it.
            let mut sizes = vec![dec.chunk_size()];
            sizes.extend(
                CANDIDATE_CHUNK_SIZES
                    .iter()
                    .filter(|&&x| x != dec.chunk_size()),
            );
            (dec.walk_state(), sizes, Start::Continue)
        }
        Some(dec) => (dec.walk_state(), vec![dec.chunk_size()], Start::Continue),
        None => (
            WalkState::default(),
            CANDIDATE_CHUNK_SIZES.to_vec(),
            Start::Join,
        ),
    };
    // After a gap the size is known and the next segment most likely starts
    // a chunk: little evidence is enough. Elsewhere the boundary must prove itself.
    let known = dec.is_some();
    let kept_size = dec.as_ref().map_or(0, |d| d.chunk_size());
    let lenient = known && cause == SyncCause::Gap;
    let opts = SearchOptions {
        sizes,
        infer_sizes: !lenient,
        start,
        min_chunks: if lenient { 3 } else { 6 },
        min_messages: if lenient { 1 } else { 3 },
        final_bytes,
        from: h.sync_from,
    };
    match find_boundary(&h.sync, &state, &opts, &mut h.sync_pending) {
        Search::Found(b) => {
            let start_offset = h.sync_offset + b.pos as u64;
            let skipped = h.sync_skipped + b.pos as u64;
            let dec = match std::mem::replace(&mut h.phase, Phase::Stopped) {
                Phase::Sync {
                    dec: Some(mut dec), ..
                } => {
                    dec.restart(start_offset);
                    dec.set_chunk_size(b.chunk_size);
                    dec
                }
                _ => Box::new(ChunkDecoder::new(DecoderConfig {
                    chunk_size: b.chunk_size,
                    start_offset,
                    report_chunks: ctx.opts.report_chunks,
                    reserve_budget: Some(ctx.budget.clone()),
                    resume: true,
                    ..Default::default()
                })),
            };
            let bytes = h.sync.take();
            // The packets the bytes from the boundary on came in: each
            // piece is decoded with its own frame and time.
            let base = h.sync_offset;
            let mut pieces: Vec<(usize, u64, Timestamp)> = Vec::new();
            for &(off, fr, tm) in &h.sync_marks {
                let at = (off.saturating_sub(base) as usize).clamp(b.pos, bytes.len());
                match pieces.last_mut() {
                    Some(l) if l.0 == at => *l = (at, fr, tm),
                    _ => pieces.push((at, fr, tm)),
                }
            }
            if pieces.first().is_none_or(|p| p.0 > b.pos) {
                pieces.insert(0, (b.pos, frame, ctx.time));
            }
            h.sync_marks.clear();
            h.sync_from = 0;
            h.sync_pending.clear();
            h.sync_skipped = 0;
            h.phase = Phase::Chunks { dec };
            let now = ctx.time;
            let (first_frame, first_time) = (pieces[0].1, pieces[0].2);
            ctx.time = first_time;
            announce(c, first_frame, ctx);
            let kind = RecordKind::Resynced {
                cause,
                skipped,
                chunk_size: b.chunk_size,
                size_kept: known && b.chunk_size == kept_size,
                chunks_agreed: b.chunks,
            };
            ctx.rec(c, Some(dir), first_frame, Some(start_offset), kind);
            let holes = std::mem::take(&mut c.half[d].sync_holes);
            for (i, &(at, fr, tm)) in pieces.iter().enumerate() {
                let end = pieces.get(i + 1).map_or(bytes.len(), |p| p.0);
                ctx.time = tm;
                // The piece's bytes, with the holes in it given as holes.
                let mut from = at;
                let spans = holes.iter().filter_map(|&(off, len)| {
                    let s = (off.saturating_sub(base) as usize).max(at);
                    let e = ((off + len).saturating_sub(base) as usize).min(end);
                    (s < e).then_some((s, e))
                });
                for (hs, he) in spans.chain(std::iter::once((end, end))) {
                    if from < hs {
                        match &mut c.half[d].phase {
                            Phase::Chunks { dec } => {
                                dec.push(&bytes[from..hs]);
                                drain(c, dir, fr, ctx);
                            }
                            // The decoder lost the boundary again: the rest
                            // is searched as it came.
                            _ => feed(c, dir, base + from as u64, &bytes[from..hs], fr, ctx),
                        }
                    }
                    if hs < he {
                        let (off, len) = (base + hs as u64, (he - hs) as u64);
                        let held = holds_hole(&c.half[d], off, len, GapReason::Truncated);
                        match &mut c.half[d].phase {
                            Phase::Chunks { dec } => {
                                if dec.skip(len) == Skip::Lost {
                                    to_sync(c, dir, SyncCause::Gap);
                                } else {
                                    drain(c, dir, fr, ctx);
                                }
                            }
                            _ if held => sync_hole(c, dir, off, len, fr, ctx),
                            _ => {
                                let h = &mut c.half[d];
                                h.sync.clear();
                                h.sync_from = 0;
                                h.sync_pending.clear();
                                h.prune_marks();
                                h.sync_skipped += len;
                            }
                        }
                    }
                    from = he.max(from);
                }
            }
            ctx.time = now;
        }
        Search::Undecided => {
            h.sync_from = h.sync.len();
            let tight = SyncBytes::tight(ctx.budget);
            let window = if tight {
                SMALL_SYNC_WINDOW
            } else {
                SYNC_WINDOW
            };
            if h.sync.len() > window {
                // Keep the window bounded: positions before the first still
                // waiting hold no boundary, and none waits longer than the window.
                let floor = h.sync.len() - window;
                let cut = h.sync_pending.first().map_or(floor, |&p| p.max(floor));
                h.sync_pending.retain(|&p| p >= cut);
                for p in &mut h.sync_pending {
                    *p -= cut;
                }
                h.sync.drain(..cut);
                h.sync_offset += cut as u64;
                h.sync_skipped += cut as u64;
                h.sync_from -= cut;
                h.prune_marks();
            }
            if tight {
                h.sync.shrink_to(window);
            }
            h.sync.recount(ctx.budget);
            give_up_if_long(c, dir, frame, ctx);
        }
        Search::NotFound => {
            // Every position was judged and none holds a boundary.
            let drop = h.sync.len();
            h.sync.clear();
            if SyncBytes::tight(ctx.budget) {
                h.sync.shrink_to(SMALL_SYNC_WINDOW);
            }
            h.sync.recount(ctx.budget);
            h.sync_offset += drop as u64;
            h.sync_skipped += drop as u64;
            h.sync_from = 0;
            h.sync_pending.clear();
            h.prune_marks();
            give_up_if_long(c, dir, frame, ctx);
        }
    }
}

/// A direction searched for too long without a boundary is not RTMP.
#[inline(never)]
fn give_up_if_long(c: &mut Conn, dir: Dir, frame: u64, ctx: &mut Ctx<'_>) {
    let h = &mut c.half[dir.index()];
    // A direction already decoded as RTMP is searched again after every gap
    // or error, however long it takes (the work per byte is bounded); only a
    // stream never recognised is given up.
    let joined = matches!(
        h.phase,
        Phase::Sync {
            cause: SyncCause::MidStream,
            ..
        }
    );
    let searched = h.sync_skipped + h.sync.len() as u64;
    if !joined || searched <= GIVE_UP_AFTER {
        return;
    }
    h.sync.take();
    h.sync_pending = Vec::new();
    h.phase = Phase::Stopped;
    let offset = h.sync_offset;
    // On the RTMP port (or the forced one) the user expects RTMP: say why
    // nothing was decoded. Elsewhere unknown TCP traffic stays quiet.
    let port = ctx.opts.port.unwrap_or(1935);
    if !c.announced && (c.server.port() == port || c.client.port() == port) {
        announce(c, frame, ctx);
    }
    if c.announced {
        ctx.rec(
            c,
            Some(dir),
            frame,
            Some(offset),
            RecordKind::NoBoundary { searched },
        );
    }
}

/// One live connection (`serve`, `relay --listen`) followed exactly as a
/// reassembled TCP connection of a capture is: the same records and taps,
/// so the same analyses (`diag`) run on it. "Frame" counts the reads and
/// writes handed in (1-based); offsets are stream offsets (C0 = 0).
pub struct LiveConn {
    opts: Options,
    conn: Option<Conn>,
    key: ConnKey,
    offsets: [u64; 2],
    frame: u64,
    stats: [DirStats; 2],
    rtmp_conns: u64,
    cut_conns: u64,
    budget: Arc<ReserveBudget>,
}

impl LiveConn {
    /// A connection from `client` to `server` (us), opened at `time`;
    /// `budget` is shared by every connection of the process.
    pub fn new(
        opts: Options,
        client: SocketAddr,
        server: SocketAddr,
        id: u64,
        budget: Arc<ReserveBudget>,
    ) -> Self {
        let key = ConnKey {
            client,
            server,
            roles: Roles::Syn,
        };
        let conn = new_conn(ConnId(id), key, true, &opts);
        LiveConn {
            opts,
            conn: Some(conn),
            key,
            offsets: [0; 2],
            frame: 0,
            stats: [DirStats::default(); 2],
            rtmp_conns: 0,
            cut_conns: 0,
            budget,
        }
    }

    fn with_ctx<'a>(
        &'a mut self,
        time: Timestamp,
        emit: &'a mut dyn FnMut(Record),
        data: Option<&'a mut dyn FnMut(Data<'_>)>,
        ev: Event<'_>,
    ) {
        let Some(c) = self.conn.take() else { return };
        let mut conns = HashMap::with_capacity(1);
        conns.insert(c.id, c);
        let mut ctx = Ctx {
            opts: &self.opts,
            time,
            frame: self.frame,
            emit,
            rtmp_conns: &mut self.rtmp_conns,
            cut_conns: &mut self.cut_conns,
            budget: &self.budget,
            data,
        };
        handle(&mut conns, &mut ctx, ev);
        self.conn = conns.into_values().next();
    }

    /// Bytes that went `dir` (received from the client, or sent to it).
    pub fn data<'a>(
        &'a mut self,
        dir: Dir,
        bytes: &[u8],
        time: Timestamp,
        emit: &'a mut dyn FnMut(Record),
        tap: Option<&'a mut dyn FnMut(Data<'_>)>,
    ) {
        if bytes.is_empty() {
            return;
        }
        self.frame += 1;
        let i = dir.index();
        let offset = self.offsets[i];
        self.offsets[i] += bytes.len() as u64;
        self.stats[i].segments += 1;
        self.stats[i].bytes += bytes.len() as u64;
        let conn = ConnId(self.conn.as_ref().map_or(0, |c| c.id));
        let frame = self.frame;
        self.with_ctx(
            time,
            emit,
            tap,
            Event::Data {
                conn,
                dir,
                stream_offset: offset,
                bytes,
                frame,
                time,
            },
        );
    }

    /// The connection ended (`kind` for the direction that closed first):
    /// a message cut off is reported, then [`RecordKind::End`].
    pub fn end(
        &mut self,
        dir: Dir,
        kind: CloseKind,
        time: Timestamp,
        emit: &mut dyn FnMut(Record),
    ) {
        let Some(id) = self.conn.as_ref().map(|c| c.id) else {
            return;
        };
        let frame = self.frame;
        self.with_ctx(
            time,
            emit,
            None,
            Event::Close {
                conn: ConnId(id),
                dir,
                kind,
                frame,
            },
        );
        let (key, stats) = (self.key, self.stats);
        self.with_ctx(
            time,
            emit,
            None,
            Event::End {
                conn: ConnId(id),
                key,
                reason: if kind == CloseKind::Rst {
                    EndReason::Reset
                } else {
                    EndReason::Closed
                },
                stats,
            },
        );
        self.conn = None;
    }
}
