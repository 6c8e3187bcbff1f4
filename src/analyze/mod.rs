//! Streaming RTMP analysis of captures: packets in, records out (RTMP 1.0 §5.2
//! handshake, §5.3 chunk stream, §5.4/§6/§7 messages), for `dump` and later
//! `diagnose` and `ecn`.
//!
//! Per TCP connection (reassembled by [`crate::capture::tcp::Reassembler`]) the
//! analyzer recognises RTMP by its handshake: the first byte of the connection
//! is C0 = 3, sent by the connecting side (`--port` forces a port instead).
//! The client is the SYN sender; without a SYN it is the reassembler's guess,
//! flipped when the guessed client uses the forced port or 1935 and the other
//! side does not. It inspects C0/C1/C2 and S0/S1/S2 (version, time, version
//! bytes, digest scheme found and verified), then runs one
//! [`ChunkDecoder`] per direction and decodes every message.
//!
//! Captures that start mid-connection (no SYN, no handshake) are searched for a
//! chunk boundary: a fmt-0 header with a plausible type, length and stream id,
//! validated by decoding what follows with each candidate chunk size (the one
//! that decodes most messages cleanly wins; the record says which was
//! assumed). After a gap in the TCP stream a direction resyncs the same way,
//! keeping its chunk size. Problems are [`RecordKind::Warning`] records.
//!
//! Memory is bounded per connection (handshake bytes, a resync window of
//! [`SYNC_WINDOW`] bytes, the chunk decoder's incomplete messages) and no
//! per-message history is kept: every record is handed to the caller at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::capture::tcp::{ConnId, ConnKey, Dir, DirStats, Event, GapReason, Reassembler, Roles};
use crate::capture::{Packet, Timestamp, Transport, decode};
use crate::proto::chunk::{
    ChunkDecoder, ChunkError, ChunkEvent, ChunkInfo, DecoderConfig, RawMessage, decode_basic_header,
};
use crate::proto::handshake::{
    C1S1Info, C2S2Info, PACKET_LEN, RTMP_VERSION, Role, describe_bad_version, inspect_c1s1,
    inspect_c2s2,
};
use crate::proto::message::{Message, MessageError};

/// Bytes of a complete handshake per direction: C0 + C1 + C2.
pub const HANDSHAKE_LEN: usize = 1 + 2 * PACKET_LEN;

/// Most bytes a direction buffers while looking for a chunk boundary.
pub const SYNC_WINDOW: usize = 1 << 20;

/// Chunk sizes tried when a capture starts mid-connection, in order of preference.
const CANDIDATE_CHUNK_SIZES: [u32; 11] = [
    128, 4096, 60000, 65536, 1024, 8192, 256, 512, 2048, 16384, 32768,
];

/// Settings of an [`Analyzer`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Treat every TCP connection with this port as RTMP (this port is the server).
    pub port: Option<u16>,
    /// Emit a [`RecordKind::Chunk`] record for every chunk.
    pub report_chunks: bool,
}

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
    /// A handshake packet; the name is C0/C1/C2 for c2s, S0/S1/S2 for s2c.
    Handshake(HandshakePacket),
    /// One chunk (with [`Options::report_chunks`]).
    Chunk(ChunkInfo),
    /// A complete message, decoded.
    Message {
        /// The message as the chunk layer delivered it.
        raw: RawMessage,
        /// Its body, decoded (or why not).
        decoded: Result<Message, MessageError>,
    },
    /// Something in the capture that the reader should know.
    Warning(String),
    /// The connection ended; TCP counters per direction (c2s, s2c).
    End {
        /// TCP counters, indexed by [`Dir::index`].
        stats: [DirStats; 2],
    },
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

/// Decoding state of one direction.
enum Phase {
    /// Collecting C0, C1, C2 (`hs` holds them).
    Handshake,
    /// Looking for a chunk boundary in `sync` (mid-connection start or after a gap).
    Sync {
        /// Chunk size to assume first (kept across a gap).
        hint: Option<u32>,
    },
    /// Decoding chunks.
    Chunks {
        dec: Box<ChunkDecoder>,
        /// Found heuristically: on a decoder error, resync instead of stopping.
        heuristic: bool,
    },
    /// Nothing more is decoded in this direction.
    Stopped,
}

struct Half {
    phase: Phase,
    hs: Vec<u8>,
    sync: Vec<u8>,
    /// Stream offset of `sync[0]`.
    sync_offset: u64,
}

impl Half {
    fn new(phase: Phase) -> Self {
        Half {
            phase,
            hs: Vec::new(),
            sync: Vec::new(),
            sync_offset: 0,
        }
    }
}

enum Class {
    /// No data yet.
    Pending,
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
    /// Our client is the reassembler's server.
    flipped: bool,
    class: Class,
    /// The Open record was emitted (mid-connection: once a boundary is found).
    announced: bool,
    /// Indexed by our direction.
    half: [Half; 2],
}

/// Where records go.
struct Ctx<'a> {
    opts: &'a Options,
    time: Timestamp,
    emit: &'a mut dyn FnMut(Record),
}

impl Ctx<'_> {
    fn rec(
        &mut self,
        c: &Conn,
        dir: Option<Dir>,
        frame: u64,
        offset: Option<u64>,
        kind: RecordKind,
    ) {
        if !c.announced {
            // A mid-connection stream not (yet) recognised as RTMP.
            return;
        }
        (self.emit)(Record {
            conn: c.name.clone(),
            conn_id: c.id,
            dir,
            frame,
            time: self.time,
            offset,
            kind,
        });
    }
}

/// The streaming analyzer: feed packets, receive records.
pub struct Analyzer {
    opts: Options,
    re: Reassembler,
    conns: HashMap<u64, Conn>,
}

fn dir_name(d: Dir) -> &'static str {
    match d {
        Dir::C2s => "c2s",
        Dir::S2c => "s2c",
    }
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
        Analyzer {
            opts,
            re: Reassembler::new(),
            conns: HashMap::new(),
        }
    }

    /// Connections currently tracked (bounded by the reassembler's limits).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Processes one captured packet; records go to `emit` in order.
    pub fn packet(&mut self, p: &Packet<'_>, emit: &mut dyn FnMut(Record)) {
        let Ok(d) = decode(p.link_type, p.data) else {
            // Not IP (ARP, LLC...) or a malformed header: not ours to decode.
            return;
        };
        let Transport::Tcp(seg) = d.transport else {
            return;
        };
        let Analyzer { opts, re, conns } = self;
        let mut ctx = Ctx {
            opts,
            time: p.time,
            emit,
        };
        re.segment(d.src, d.dst, &seg, p.frame, p.time, |ev| {
            handle(conns, &mut ctx, ev)
        });
    }

    /// End of capture: reports what is still pending (gaps, ends).
    pub fn finish(&mut self, emit: &mut dyn FnMut(Record)) {
        let Analyzer { opts, re, conns } = self;
        let mut ctx = Ctx {
            opts,
            time: Timestamp::default(),
            emit,
        };
        re.flush(|ev| handle(conns, &mut ctx, ev));
    }
}

fn conn_name(client: SocketAddr, server: SocketAddr) -> Arc<str> {
    Arc::from(format!("{client}-{server}"))
}

fn handle(conns: &mut HashMap<u64, Conn>, ctx: &mut Ctx<'_>, ev: Event<'_>) {
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
                classify(c, dir, bytes, ctx.opts);
                match c.class {
                    Class::Rtmp => {
                        if matches!(c.half[0].phase, Phase::Handshake) {
                            announce(c, frame, ctx);
                        }
                    }
                    Class::Ignored | Class::Pending => return,
                }
            }
            if matches!(c.class, Class::Rtmp) {
                feed(c, dir, stream_offset, bytes, frame, ctx);
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
            let Some(c) = conns.get_mut(&conn.0) else {
                return;
            };
            if !matches!(c.class, Class::Rtmp) {
                return;
            }
            let dir = if c.flipped { dir.reverse() } else { dir };
            gap(c, dir, stream_offset, missing_len, frame, reason, ctx);
        }
        Event::Inconsistent {
            conn,
            dir,
            stream_offset,
            len,
            frame,
        } => {
            let Some(c) = conns.get_mut(&conn.0) else {
                return;
            };
            if matches!(c.class, Class::Rtmp) {
                let dir = if c.flipped { dir.reverse() } else { dir };
                let msg = format!(
                    "{}: a retransmission carries {len} bytes at stream offset {stream_offset} \
                     that differ from the first copy (the first copy is decoded)",
                    dir_name(dir)
                );
                ctx.rec(
                    c,
                    Some(dir),
                    frame,
                    Some(stream_offset),
                    RecordKind::Warning(msg),
                );
            }
        }
        Event::Close { .. } => {}
        Event::End { conn, stats, .. } => {
            if let Some(c) = conns.remove(&conn.0)
                && matches!(c.class, Class::Rtmp)
            {
                let stats = if c.flipped {
                    [stats[1], stats[0]]
                } else {
                    stats
                };
                ctx.rec(&c, None, 0, None, RecordKind::End { stats });
            }
        }
    }
}

/// Emits the Open record (and, mid-connection, says so).
fn announce(c: &mut Conn, frame: u64, ctx: &mut Ctx<'_>) {
    if c.announced {
        return;
    }
    c.announced = true;
    let kind = RecordKind::Open {
        client: c.client,
        server: c.server,
        syn_seen: c.syn_seen,
    };
    ctx.rec(c, None, frame, None, kind);
    if !matches!(c.half[0].phase, Phase::Handshake) && !matches!(c.half[1].phase, Phase::Handshake)
    {
        ctx.rec(
            c,
            None,
            frame,
            None,
            RecordKind::Warning(
                "capture starts mid-connection: no handshake seen; looking for a chunk \
                 boundary in each direction (stream offsets count from the first byte captured)"
                    .into(),
            ),
        );
    }
}

fn new_conn(id: ConnId, key: ConnKey, syn_seen: bool, opts: &Options) -> Conn {
    let (mut client, mut server) = (key.client, key.server);
    let mut flipped = false;
    if !matches!(key.roles, Roles::Syn | Roles::SynAck) {
        // A guess from the first data sender: trust the well-known or forced
        // server port over it.
        let server_port = opts.port.unwrap_or(1935);
        if client.port() == server_port && server.port() != server_port {
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
        flipped,
        class: Class::Pending,
        announced: false,
        half: [Half::new(Phase::Handshake), Half::new(Phase::Handshake)],
    }
}

/// Decides from the first data of a connection whether it is RTMP.
fn classify(c: &mut Conn, dir: Dir, bytes: &[u8], opts: &Options) {
    let Some(&first) = bytes.first() else {
        return;
    };
    let forced = opts
        .port
        .is_some_and(|p| c.server.port() == p || c.client.port() == p);
    if c.syn_seen {
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
    if dir == Dir::C2s && first == RTMP_VERSION && !plausible_fmt0(bytes) {
        c.class = Class::Rtmp;
        return;
    }
    // Mid-connection: look for chunk boundaries. Without a forced port only
    // connections where a boundary is found are reported (see `sync`).
    c.class = Class::Rtmp;
    for h in &mut c.half {
        h.phase = Phase::Sync { hint: None };
    }
}

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
        Phase::Chunks { dec, .. } => {
            dec.push(data);
            drain(c, dir, frame, ctx);
        }
        Phase::Sync { hint } => {
            let hint = *hint;
            let h = &mut c.half[d];
            if h.sync.is_empty() {
                h.sync_offset = offset;
            }
            h.sync.extend_from_slice(data);
            try_sync(c, dir, hint, frame, ctx);
        }
    }
}

/// Consumes handshake bytes of `data` (at stream `offset`); returns how many.
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
    let now = c.half[d].hs.len();
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
        if v != RTMP_VERSION {
            let why = describe_bad_version(v, &c.half[d].hs);
            let msg = format!(
                "{} version byte 0x{v:02x} is not 3 ({why}); {} is not decoded further",
                handshake_packet_name(dir, 0),
                dir_name(dir)
            );
            ctx.rec(c, Some(dir), frame, Some(0), RecordKind::Warning(msg));
            c.half[d].phase = Phase::Stopped;
            c.half[d].hs = Vec::new();
            return data.len();
        }
    }
    if have < 1 + PACKET_LEN && now > PACKET_LEN {
        let h = &c.half[d].hs;
        if let Ok(info) = inspect_c1s1(&h[1..1 + PACKET_LEN], role) {
            let peer = &c.half[1 - d].hs;
            let echo_of_peer = dir == Dir::S2c
                && peer.len() > PACKET_LEN
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
        let h = &c.half[d].hs;
        let packet = &h[1 + PACKET_LEN..];
        let peer = &c.half[1 - d].hs;
        let info = if peer.len() > PACKET_LEN {
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
        c.half[d].phase = Phase::Chunks {
            dec: Box::new(ChunkDecoder::new(DecoderConfig {
                start_offset: HANDSHAKE_LEN as u64,
                report_chunks: ctx.opts.report_chunks,
                ..Default::default()
            })),
            heuristic: false,
        };
        // The peer's C2/S2 needs our C1/S1: free both only when both are done.
        if c.half[1 - d].hs.len() == HANDSHAKE_LEN
            || matches!(c.half[1 - d].phase, Phase::Stopped | Phase::Sync { .. })
        {
            c.half[0].hs = Vec::new();
            c.half[1].hs = Vec::new();
        }
    }
    take
}

/// Hands every event the decoder has ready to the caller.
fn drain(c: &mut Conn, dir: Dir, frame: u64, ctx: &mut Ctx<'_>) {
    let d = dir.index();
    loop {
        let Phase::Chunks { dec, heuristic } = &mut c.half[d].phase else {
            return;
        };
        let heuristic = *heuristic;
        match dec.poll() {
            Ok(None) => return,
            Ok(Some(ev)) => event(c, dir, frame, ev, ctx),
            Err(e) => {
                let chunk_size = dec.chunk_size();
                let offset = match &e {
                    ChunkError::NoPreviousHeader { offset, .. }
                    | ChunkError::TooMuchBuffered { offset, .. } => *offset,
                };
                if heuristic {
                    let msg = format!(
                        "{}: {e}; the assumed chunk boundary or chunk size was wrong, \
                         looking for another chunk boundary",
                        dir_name(dir)
                    );
                    ctx.rec(c, Some(dir), frame, Some(offset), RecordKind::Warning(msg));
                    // What the decoder still holds is dropped; the search
                    // restarts with the next data.
                    c.half[d].phase = Phase::Sync { hint: None };
                    c.half[d].sync.clear();
                } else {
                    let msg = format!(
                        "{}: {e} (chunk size in force {chunk_size}); {} is not decoded further",
                        dir_name(dir),
                        dir_name(dir)
                    );
                    ctx.rec(c, Some(dir), frame, Some(offset), RecordKind::Warning(msg));
                    c.half[d].phase = Phase::Stopped;
                }
                return;
            }
        }
    }
}

fn event(c: &Conn, dir: Dir, frame: u64, ev: ChunkEvent, ctx: &mut Ctx<'_>) {
    match ev {
        ChunkEvent::Message(raw) => {
            let decoded = Message::decode(raw.header.msg_type, raw.payload.clone());
            let offset = raw.offset;
            ctx.rec(
                c,
                Some(dir),
                frame,
                Some(offset),
                RecordKind::Message { raw, decoded },
            );
        }
        ChunkEvent::Chunk(info) => {
            ctx.rec(
                c,
                Some(dir),
                frame,
                Some(info.offset),
                RecordKind::Chunk(info),
            );
        }
        ChunkEvent::ChunkSizeChanged { .. } | ChunkEvent::Type3ExtendedTimestamp { .. } => {}
        ChunkEvent::InvalidChunkSize { raw, offset } => {
            let msg = format!(
                "{}: Set Chunk Size {raw} cannot be applied; the chunk size stays as it was",
                dir_name(dir)
            );
            ctx.rec(c, Some(dir), frame, Some(offset), RecordKind::Warning(msg));
        }
        ChunkEvent::Aborted {
            csid,
            discarded,
            offset,
        } => {
            let msg = format!(
                "{}: Abort dropped {discarded} bytes of the message on chunk stream {csid}",
                dir_name(dir)
            );
            ctx.rec(c, Some(dir), frame, Some(offset), RecordKind::Warning(msg));
        }
        ChunkEvent::MessageInterrupted {
            csid,
            received,
            length,
            offset,
        } => {
            let msg = format!(
                "{}: a new header on chunk stream {csid} interrupted a message after \
                 {received} of {length} bytes; the partial message is dropped",
                dir_name(dir)
            );
            ctx.rec(c, Some(dir), frame, Some(offset), RecordKind::Warning(msg));
        }
    }
}

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
    let why = match reason {
        GapReason::Truncated => "the capture's snaplen cut a segment",
        GapReason::AckedUnseen => {
            "the receiver acknowledged data the capture never saw, and it never arrived"
        }
        GapReason::NotCaptured => "the data never arrived in the capture",
        GapReason::BufferLimit => "too much out-of-order data waited for a hole",
        GapReason::Reset => "the connection was reset",
        GapReason::Evicted => "too many connections: this one was evicted",
        GapReason::Reused => "a new connection reused the addresses",
        GapReason::EndOfCapture => "the capture ended",
    };
    let ends = matches!(
        reason,
        GapReason::Reset | GapReason::Evicted | GapReason::Reused | GapReason::EndOfCapture
    );
    let name = dir_name(dir);
    let then = match &c.half[d].phase {
        _ if ends => "the connection ends there".to_string(),
        Phase::Stopped => format!("{name} was not being decoded"),
        Phase::Handshake => format!("the handshake is incomplete; {name} is not decoded further"),
        Phase::Sync { .. } => format!("{name} keeps looking for a chunk boundary after it"),
        Phase::Chunks { dec, .. } => format!(
            "{name} resyncs at the next plausible fmt-0 chunk header, keeping chunk size {}",
            dec.chunk_size()
        ),
    };
    let msg = format!("{name}: {missing} bytes missing at stream offset {offset} ({why}); {then}");
    ctx.rec(c, Some(dir), frame, Some(offset), RecordKind::Warning(msg));
    if ends {
        return;
    }
    let h = &mut c.half[d];
    h.phase = match &h.phase {
        Phase::Handshake | Phase::Stopped => Phase::Stopped,
        Phase::Sync { hint } => Phase::Sync { hint: *hint },
        Phase::Chunks { dec, .. } => Phase::Sync {
            hint: Some(dec.chunk_size()),
        },
    };
    h.sync.clear();
    h.hs = Vec::new();
}

/// Whether `b` starts with a fmt-0 chunk header that a real peer could have
/// sent; returns the message type.
fn plausible_fmt0(b: &[u8]) -> bool {
    let Some(bh) = decode_basic_header(b) else {
        return false;
    };
    if bh.fmt != 0 || b.len() < bh.len + 11 {
        return false;
    }
    let h = &b[bh.len..bh.len + 11];
    let len = u32::from_be_bytes([0, h[3], h[4], h[5]]);
    let typ = h[6];
    let sid = u32::from_le_bytes([h[7], h[8], h[9], h[10]]);
    let len_ok = match typ {
        1 | 2 | 3 | 5 => len == 4,
        4 => (6..=10).contains(&len),
        6 => len == 5,
        8 | 9 => len <= 16 << 20,
        15..=20 => (1..=1 << 20).contains(&len),
        22 => (11..=16 << 20).contains(&len),
        _ => false,
    };
    // Real peers use small chunk stream and message stream ids.
    if !len_ok || sid > MAX_PLAUSIBLE_STREAM_ID || bh.csid > MAX_PLAUSIBLE_CSID {
        return false;
    }
    // Protocol control messages travel on csid 2, stream 0 (RTMP 1.0 §5.4).
    let control = (1..=6).contains(&typ);
    if control != (bh.csid == 2) {
        return false;
    }
    !(control && sid != 0)
}

/// Largest chunk stream id accepted when looking for a boundary (the one- and
/// two-byte basic header forms).
const MAX_PLAUSIBLE_CSID: u32 = 319;

/// Largest message stream id accepted when looking for a boundary.
const MAX_PLAUSIBLE_STREAM_ID: u32 = 255;

/// Whether a message decoded from a candidate boundary looks like one a peer sent.
fn plausible_message(m: &RawMessage) -> bool {
    let t = m.header.msg_type.0;
    if !matches!(t, 1..=6 | 8 | 9 | 15..=20 | 22)
        || m.header.stream_id > MAX_PLAUSIBLE_STREAM_ID
        || m.csid > MAX_PLAUSIBLE_CSID
    {
        return false;
    }
    match Message::decode(m.header.msg_type, m.payload.clone()) {
        Err(_) => false,
        Ok(Message::Video(b)) => crate::proto::media::VideoInfo::parse(&b)
            .is_ok_and(|v| (1..=5).contains(&v.frame_type.0)),
        Ok(Message::Audio(b)) => crate::proto::media::AudioInfo::parse(&b).is_ok(),
        Ok(_) => true,
    }
}

/// Messages decoded cleanly from `buf` with chunk size `size`; `None` on an error.
fn score(buf: &[u8], size: u32) -> Option<usize> {
    let mut dec = ChunkDecoder::new(DecoderConfig {
        chunk_size: size,
        ..Default::default()
    });
    dec.push(buf);
    let mut n = 0;
    loop {
        match dec.poll() {
            Ok(Some(ChunkEvent::Message(m))) => {
                if !plausible_message(&m) {
                    return None;
                }
                n += 1;
            }
            Ok(Some(ChunkEvent::MessageInterrupted { .. })) => return None,
            Ok(Some(_)) => {}
            Ok(None) => return Some(n),
            Err(_) => return None,
        }
    }
}

fn try_sync(c: &mut Conn, dir: Dir, hint: Option<u32>, frame: u64, ctx: &mut Ctx<'_>) {
    let d = dir.index();
    let h = &mut c.half[d];
    let buf = &h.sync;
    let mut found = None;
    let mut pos = 0;
    while pos + 12 <= buf.len() {
        if plausible_fmt0(&buf[pos..]) {
            let candidates = hint.into_iter().chain(CANDIDATE_CHUNK_SIZES);
            let mut best: Option<(usize, u32)> = None;
            let mut undecided = false;
            for size in candidates {
                match score(&buf[pos..], size) {
                    Some(n) if n >= 2 && best.is_none_or(|(b, _)| n > b) => best = Some((n, size)),
                    Some(_) => undecided = true,
                    None => {}
                }
            }
            if let Some((_, size)) = best {
                found = Some((pos, size));
                break;
            }
            if undecided {
                // Not enough data after this header yet: wait for more.
                break;
            }
        }
        pos += 1;
    }
    let Some((pos, size)) = found else {
        if h.sync.len() > SYNC_WINDOW {
            let msg = format!(
                "{}: no chunk boundary found in {} bytes from stream offset {}; \
                 {} is not decoded further",
                dir_name(dir),
                h.sync.len(),
                h.sync_offset,
                dir_name(dir)
            );
            h.sync = Vec::new();
            h.phase = Phase::Stopped;
            ctx.rec(c, Some(dir), frame, None, RecordKind::Warning(msg));
        }
        return;
    };
    let start = h.sync_offset + pos as u64;
    let mut dec = ChunkDecoder::new(DecoderConfig {
        chunk_size: size,
        start_offset: start,
        report_chunks: ctx.opts.report_chunks,
        ..Default::default()
    });
    dec.push(&h.sync[pos..]);
    h.sync = Vec::new();
    h.phase = Phase::Chunks {
        dec: Box::new(dec),
        heuristic: true,
    };
    announce(c, frame, ctx);
    let how = if hint == Some(size) {
        "kept"
    } else {
        "assumed (no Set Chunk Size seen)"
    };
    let msg = format!(
        "{}: decoding from a fmt-0 chunk header at stream offset {start} ({pos} bytes skipped); \
         chunk size {size} {how}",
        dir_name(dir)
    );
    ctx.rec(c, Some(dir), frame, Some(start), RecordKind::Warning(msg));
    drain(c, dir, frame, ctx);
}
