//! TCP stream reassembly per connection and direction (RFC 9293 §3.4 sequence
//! numbers, §3.5 connection establishment, §3.6 closing).
//!
//! Feed each decoded [`TcpSegment`] with its frame number and time to
//! [`Reassembler::segment`]; events come out through a callback, in order, with
//! borrowed bytes (in-order data from the current segment is passed through
//! without copying; only out-of-order data is buffered).
//!
//! Stream offsets are 64-bit: offset 0 is the first byte after the SYN, or the
//! first payload byte seen when the capture starts mid-connection. 32-bit
//! sequence numbers are unwrapped relative to the next expected offset (a
//! segment more than 2 GiB behind or ahead is taken as the nearer
//! interpretation, RFC 9293 §3.4's modular comparison).
//!
//! Every stream byte is delivered at most once. Retransmissions (exact or
//! partial) are counted as duplicates; when a retransmission overlaps
//! *buffered* out-of-order data with different bytes, an
//! [`Event::Inconsistent`] is emitted (the first copy wins, as in most stacks).
//! Bytes already delivered are not kept, so they are not compared.
//!
//! Out-of-order segments are held and placed when the hole before them
//! fills. A hole becomes an [`Event::Gap`] (never invented bytes) only when it
//! can no longer fill: the snaplen cut a segment ([`GapReason::Truncated`]);
//! the capture moved well past it, by [`Limits::reorder_packets`] packets of
//! the connection or [`Limits::reorder_time_ms`] of capture time (by the
//! clock of that direction's packets: two taps' clocks may differ) since the
//! data after it arrived ([`GapReason::AckedUnseen`] when the peer had
//! acknowledged the missing bytes, [`GapReason::NotCaptured`] otherwise);
//! out-of-order data exceeds [`Limits`] ([`GapReason::BufferLimit`]); or the
//! connection ends (reset, eviction, port reuse, [`Reassembler::flush`]).
//! The peer's ACK past a hole is evidence, not proof: captures from SPAN
//! ports, multi-queue NICs and merged files show ACKs before the data they
//! acknowledge, so an ACK only names the reason once the wait is over.
//!
//! Memory is bounded by [`Limits`]: at most `max_conns` connections (when full,
//! the least recently active eighth is evicted, their pending data reported
//! first), `max_ooo_bytes` / `max_ooo_segments` of out-of-order data per
//! direction and `max_total_ooo_bytes` over all connections (exceeding it turns
//! the direction being fed into a gap). Closed (both FINs delivered) and reset
//! connections are freed at once; a later SYN on the same 4-tuple opens a new
//! connection, as does a SYN with a new initial sequence number (port reuse).
//! Segments without payload, SYN or FIN on an unknown 4-tuple (pure ACKs,
//! TIME-WAIT retransmissions) open nothing.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;

use super::decode::{TcpFlags, TcpSegment};
use super::reader::Timestamp;

/// Identifies one TCP connection for the lifetime of a [`Reassembler`]
/// (numbered from 0 in order of appearance; a reused 4-tuple gets a new id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Direction of a byte stream within a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dir {
    /// From [`ConnKey::client`] to [`ConnKey::server`].
    C2s,
    /// From [`ConnKey::server`] to [`ConnKey::client`].
    S2c,
}

impl Dir {
    /// 0 for [`Dir::C2s`], 1 for [`Dir::S2c`].
    pub fn index(self) -> usize {
        match self {
            Dir::C2s => 0,
            Dir::S2c => 1,
        }
    }

    /// The opposite direction.
    pub fn reverse(self) -> Dir {
        match self {
            Dir::C2s => Dir::S2c,
            Dir::S2c => Dir::C2s,
        }
    }

    fn from_index(i: usize) -> Dir {
        if i == 0 { Dir::C2s } else { Dir::S2c }
    }
}

/// How the client endpoint was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Roles {
    /// The client sent a SYN without ACK.
    Syn,
    /// Only the server's SYN+ACK was seen: its receiver is the client.
    SynAck,
    /// No handshake seen: the client is a guess (the first sender of data).
    Guessed,
    /// The caller swapped the roles with [`Reassembler::flip_roles`].
    Flipped,
}

/// The two endpoints of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey {
    /// The connecting side (SYN sender), or the guess, see [`ConnKey::roles`].
    pub client: SocketAddr,
    /// The other side.
    pub server: SocketAddr,
    /// How `client` was decided.
    pub roles: Roles,
}

/// Why a gap was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GapReason {
    /// The capture's snaplen cut the segment: its tail was never captured.
    Truncated,
    /// The receiver acknowledged bytes the capture never saw, and they did
    /// not arrive within the reorder wait.
    AckedUnseen,
    /// The bytes did not arrive within the reorder wait (and no ACK had
    /// covered them): lost before the capture point, or dropped by it.
    NotCaptured,
    /// Out-of-order data exceeded [`Limits`] while waiting for the hole.
    BufferLimit,
    /// The connection was reset.
    Reset,
    /// The connection was evicted (too many connections).
    Evicted,
    /// A new connection reused the 4-tuple.
    Reused,
    /// [`Reassembler::flush`] at end of capture.
    EndOfCapture,
}

/// How a direction was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseKind {
    /// FIN reached in sequence.
    Fin,
    /// RST sent by this direction's sender.
    Rst,
}

/// Why a connection's state was freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// Both directions delivered their FIN.
    Closed,
    /// A RST was seen.
    Reset,
    /// Evicted to respect [`Limits::max_conns`].
    Evicted,
    /// A new SYN reused the 4-tuple.
    Reused,
    /// End of capture ([`Reassembler::flush`]).
    EndOfCapture,
}

/// Counters for one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirStats {
    /// Segments seen in this direction (any flags).
    pub segments: u64,
    /// Stream bytes delivered as [`Event::Data`].
    pub bytes: u64,
    /// Segments whose payload was entirely already received.
    pub dup_segments: u64,
    /// Payload bytes received more than once.
    pub dup_bytes: u64,
    /// Gaps declared.
    pub gaps: u64,
    /// Bytes reported missing.
    pub gap_bytes: u64,
    /// Overlaps with different bytes.
    pub inconsistent: u64,
    /// Segments cut by the snaplen.
    pub truncated_segments: u64,
    /// A SYN was seen from this direction's sender.
    pub syn_seen: bool,
    /// A FIN was seen.
    pub fin_seen: bool,
    /// A RST was seen.
    pub rst_seen: bool,
}

/// An event of the reassembly, in stream order per direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A connection appeared.
    Open {
        /// Connection.
        conn: ConnId,
        /// Endpoints and roles.
        key: ConnKey,
        /// The client's SYN was seen.
        syn_seen: bool,
        /// Frame that opened it.
        frame: u64,
        /// Its time.
        time: Timestamp,
    },
    /// In-order stream bytes, each delivered once.
    Data {
        /// Connection.
        conn: ConnId,
        /// Direction.
        dir: Dir,
        /// Stream offset of `bytes[0]`.
        stream_offset: u64,
        /// The bytes.
        bytes: &'a [u8],
        /// Frame that carried them.
        frame: u64,
        /// Its time.
        time: Timestamp,
    },
    /// Stream bytes that are missing from the capture.
    Gap {
        /// Connection.
        conn: ConnId,
        /// Direction.
        dir: Dir,
        /// Stream offset of the first missing byte.
        stream_offset: u64,
        /// Number of missing bytes.
        missing_len: u64,
        /// Frame being processed when the gap was declared.
        frame: u64,
        /// Why.
        reason: GapReason,
    },
    /// A retransmission overlapped buffered data with different bytes.
    Inconsistent {
        /// Connection.
        conn: ConnId,
        /// Direction.
        dir: Dir,
        /// Stream offset of the overlap.
        stream_offset: u64,
        /// Length of the overlap.
        len: u64,
        /// Frame of the retransmission.
        frame: u64,
    },
    /// A direction ended.
    Close {
        /// Connection.
        conn: ConnId,
        /// Direction.
        dir: Dir,
        /// FIN or RST.
        kind: CloseKind,
        /// Frame.
        frame: u64,
    },
    /// The connection's state was freed; last event for `conn`.
    End {
        /// Connection.
        conn: ConnId,
        /// Endpoints and roles.
        key: ConnKey,
        /// Why.
        reason: EndReason,
        /// Counters, indexed by [`Dir::index`].
        stats: [DirStats; 2],
    },
}

/// Resource bounds of a [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections tracked at once.
    pub max_conns: usize,
    /// Most out-of-order bytes buffered per direction.
    pub max_ooo_bytes: usize,
    /// Most out-of-order segments buffered per direction.
    pub max_ooo_segments: usize,
    /// Most out-of-order bytes buffered over all connections.
    pub max_total_ooo_bytes: usize,
    /// Packets of a connection (either direction) after which a hole that
    /// data is waiting behind is declared lost.
    pub reorder_packets: u64,
    /// Capture time (milliseconds) of the hole's direction after which such
    /// a hole is declared lost.
    pub reorder_time_ms: u64,
}

impl Default for Limits {
    /// 65536 connections, 4 MiB / 4096 segments per direction, 32 MiB in
    /// total; a hole waits 256 packets or 2 s.
    fn default() -> Self {
        Limits {
            max_conns: 65_536,
            max_ooo_bytes: 4 << 20,
            max_ooo_segments: 4096,
            max_total_ooo_bytes: 32 << 20,
            reorder_packets: 256,
            reorder_time_ms: 2000,
        }
    }
}

/// A small, fast, non-cryptographic hasher (FxHash) for the connection table.
/// The table is bounded by [`Limits::max_conns`], so adversarial collisions
/// cost time, never memory.
#[derive(Default)]
struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            self.add(u64::from_le_bytes(a));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Canonical (order-independent) 4-tuple.
type TupleKey = (SocketAddr, SocketAddr);

fn tuple(a: SocketAddr, b: SocketAddr) -> TupleKey {
    if a <= b { (a, b) } else { (b, a) }
}

/// One buffered out-of-order piece: bytes, or a known-lost range (snaplen).
#[derive(Debug)]
struct Piece {
    /// Captured bytes; empty for a lost piece.
    data: Vec<u8>,
    /// Length in stream bytes (== data.len() unless lost).
    len: u64,
    lost: bool,
    frame: u64,
    time: Timestamp,
    /// The connection's packet count when it arrived.
    packet: u64,
}

/// Farthest a SYN that arrives after data may lie before that data's first
/// byte and still be the same connection's (bytes sent before the capture's
/// first segment of it): a new connection's random ISN falls in this
/// window once in 4096.
const LATE_SYN_WINDOW: u32 = 1 << 20;

/// Whether a SYN with sequence number `syn` belongs to a half whose data
/// started at `base` (offset 0): the data follows the SYN within
/// [`LATE_SYN_WINDOW`] bytes.
fn late_syn(syn: u32, base: u32) -> bool {
    base.wrapping_sub(syn.wrapping_add(1)) < LATE_SYN_WINDOW
}

/// One direction's state.
#[derive(Debug, Default)]
struct Half {
    /// Sequence number of stream offset 0, once known.
    base: Option<u32>,
    syn_seq: Option<u32>,
    /// Next in-order stream offset.
    next: u64,
    /// Stream offset of the FIN, once seen.
    fin: Option<u64>,
    closed: bool,
    ooo: BTreeMap<u64, Piece>,
    ooo_bytes: usize,
    /// Highest stream offset the peer acknowledged.
    acked: u64,
    /// The connection's packet count and the time when the FIN arrived.
    fin_at: Option<(u64, Timestamp)>,
    /// Capture time of this direction's latest packet: its holes' wait is
    /// timed by its own packets (two taps, or two interfaces of a pcapng,
    /// each with its own clock).
    last_time: Option<Timestamp>,
    stats: DirStats,
}

impl Half {
    /// Stream offset (possibly negative: before the stream start) of `seq`.
    fn unwrap(&self, base: u32, seq: u32) -> i64 {
        let rel = seq.wrapping_sub(base);
        let delta = rel.wrapping_sub(self.next as u32) as i32;
        self.next as i64 + i64::from(delta)
    }
}

#[derive(Debug)]
struct Conn {
    id: ConnId,
    /// ep[0] is the client, ep[1] the server; half[i] is data sent by ep[i].
    ep: [SocketAddr; 2],
    roles: Roles,
    half: [Half; 2],
    last_frame: u64,
    /// Packets seen, both directions.
    packets: u64,
}

impl Conn {
    fn key(&self) -> ConnKey {
        ConnKey {
            client: self.ep[0],
            server: self.ep[1],
            roles: self.roles,
        }
    }
}

/// Context passed down while processing one segment.
#[derive(Clone, Copy)]
struct Ctx {
    conn: ConnId,
    dir: Dir,
    frame: u64,
    /// The connection's packet count, this packet included.
    packet: u64,
}

/// TCP reassembler for any number of connections (see the module docs).
#[derive(Debug)]
pub struct Reassembler {
    limits: Limits,
    conns: FxMap<TupleKey, Conn>,
    ids: FxMap<ConnId, TupleKey>,
    next_id: u64,
    total_ooo: usize,
    /// Scratch list of uncovered sub-ranges while buffering a segment.
    scratch: Vec<(u64, u64)>,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new()
    }
}

impl Reassembler {
    /// A reassembler with [`Limits::default`].
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// A reassembler with the given bounds (each at least 1).
    pub fn with_limits(limits: Limits) -> Self {
        let limits = Limits {
            max_conns: limits.max_conns.max(1),
            max_ooo_bytes: limits.max_ooo_bytes.max(1),
            max_ooo_segments: limits.max_ooo_segments.max(1),
            max_total_ooo_bytes: limits.max_total_ooo_bytes.max(1),
            ..limits
        };
        Reassembler {
            limits,
            conns: FxMap::default(),
            ids: FxMap::default(),
            next_id: 0,
            total_ooo: 0,
            scratch: Vec::new(),
        }
    }

    /// Connections currently tracked.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Out-of-order bytes currently buffered over all connections.
    pub fn buffered_bytes(&self) -> usize {
        self.total_ooo
    }

    /// Endpoints and roles of a live connection.
    pub fn conn_key(&self, conn: ConnId) -> Option<ConnKey> {
        self.ids
            .get(&conn)
            .and_then(|t| self.conns.get(t))
            .map(Conn::key)
    }

    /// Counters of a live connection, indexed by [`Dir::index`].
    pub fn conn_stats(&self, conn: ConnId) -> Option<[DirStats; 2]> {
        self.ids
            .get(&conn)
            .and_then(|t| self.conns.get(t))
            .map(|c| [c.half[0].stats, c.half[1].stats])
    }

    /// Swap client and server of a live connection (e.g. when the application
    /// protocol shows who the client is). Later events use the new roles;
    /// returns the new key, or `None` if the connection is gone.
    pub fn flip_roles(&mut self, conn: ConnId) -> Option<ConnKey> {
        let t = self.ids.get(&conn)?;
        let c = self.conns.get_mut(t)?;
        c.ep.swap(0, 1);
        c.half.swap(0, 1);
        c.roles = Roles::Flipped;
        Some(c.key())
    }

    /// Process one segment from `src` to `dst`.
    pub fn segment<F: FnMut(Event<'_>)>(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        seg: &TcpSegment<'_>,
        frame: u64,
        time: Timestamp,
        mut emit: F,
    ) {
        let flags = seg.flags;
        let syn = flags.has(TcpFlags::SYN);
        let ack = flags.has(TcpFlags::ACK);
        let rst = flags.has(TcpFlags::RST);
        let fin = flags.has(TcpFlags::FIN);
        let wire_len = u64::from(seg.wire_len).max(seg.payload.len() as u64);
        let t = tuple(src, dst);

        // Port reuse: a client SYN with a new ISN on a known 4-tuple ends the old connection.
        if syn && !ack && !rst {
            let reused = match self.conns.get(&t) {
                Some(c) => {
                    let h = &c.half[usize::from(c.ep[0] != src)];
                    // A first SYN for a half that has sent nothing yet (capture began
                    // at the SYN+ACK) belongs to this connection, and so does one that
                    // comes after the first data it precedes (a capture out of time
                    // order: multi-queue NICs, merged files): its data starts just
                    // after the SYN's sequence number.
                    match (h.syn_seq, h.base) {
                        (Some(s), _) => s != seg.seq,
                        (None, Some(base)) => !late_syn(seg.seq, base),
                        (None, None) => false,
                    }
                }
                None => false,
            };
            if reused {
                self.end_conn(t, EndReason::Reused, GapReason::Reused, frame, &mut emit);
            }
        }

        if !self.conns.contains_key(&t) {
            if rst || (!syn && wire_len == 0) {
                // Nothing to reassemble from a pure ACK / stray RST / lone FIN.
                return;
            }
            if self.conns.len() >= self.limits.max_conns {
                self.evict(frame, &mut emit);
            }
            let (ep, roles) = if syn && !ack {
                ([src, dst], Roles::Syn)
            } else if syn {
                ([dst, src], Roles::SynAck)
            } else {
                ([src, dst], Roles::Guessed)
            };
            let id = ConnId(self.next_id);
            self.next_id += 1;
            let conn = Conn {
                id,
                ep,
                roles,
                half: [Half::default(), Half::default()],
                last_frame: frame,
                packets: 0,
            };
            emit(Event::Open {
                conn: id,
                key: conn.key(),
                syn_seen: roles == Roles::Syn,
                frame,
                time,
            });
            self.conns.insert(t, conn);
            self.ids.insert(id, t);
        }

        let limits = self.limits;
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        }; // ok: inserted above
        c.last_frame = frame;
        c.packets += 1;
        let i = usize::from(c.ep[0] != src);
        let ctx = Ctx {
            conn: c.id,
            dir: Dir::from_index(i),
            frame,
            packet: c.packets,
        };

        if rst {
            c.half[i].stats.segments += 1;
            c.half[i].stats.rst_seen = true;
            emit(Event::Close {
                conn: c.id,
                dir: ctx.dir,
                kind: CloseKind::Rst,
                frame,
            });
            self.end_conn(t, EndReason::Reset, GapReason::Reset, frame, &mut emit);
            return;
        }

        let before = c.half[i].ooo_bytes + c.half[1 - i].ooo_bytes;
        {
            let h = &mut c.half[i];
            h.stats.segments += 1;
            h.last_time = Some(time);
            if syn {
                h.stats.syn_seen = true;
                // A SYN fixes offset 0 unless data already started without it.
                if h.base.is_none() {
                    h.base = Some(seg.seq.wrapping_add(1));
                }
                h.syn_seq.get_or_insert(seg.seq);
            }
            if fin {
                h.stats.fin_seen = true;
            }
            if (wire_len > 0 || fin) && h.base.is_none() {
                // Mid-connection start: the first payload/FIN byte is offset 0.
                h.base = Some(seg.seq);
            }
            if let Some(base) = h.base {
                let data_seq = seg.seq.wrapping_add(u32::from(syn));
                let off = h.unwrap(base, data_seq);
                if wire_len > 0 {
                    if (seg.payload.len() as u64) < wire_len {
                        h.stats.truncated_segments += 1;
                    }
                    let scratch = &mut self.scratch;
                    insert(
                        h,
                        ctx,
                        off,
                        seg.payload,
                        wire_len,
                        time,
                        &limits,
                        scratch,
                        &mut emit,
                    );
                }
                if fin && h.fin.is_none() {
                    let f = off + wire_len as i64;
                    if f >= 0 {
                        h.fin = Some(f as u64);
                        h.fin_at = Some((c.packets, time));
                    }
                }
            }
        }

        // The peer's ACK tells which of this half's missing bytes were really
        // sent: evidence that names the reason once a hole is given up.
        if ack {
            let h = &mut c.half[1 - i];
            if let Some(base) = h.base {
                let a = h.unwrap(base, seg.ack);
                if a > h.acked as i64 {
                    h.acked = a as u64;
                }
            }
        }
        // Holes the capture has moved well past can no longer fill. Time
        // is each direction's own: a capture of two taps whose clocks
        // differ (the server's 5 s behind) had every hole of one direction
        // declared lost by the other's next packet.
        for j in 0..2 {
            let other = Ctx {
                conn: c.id,
                dir: Dir::from_index(j),
                frame,
                packet: c.packets,
            };
            let now = c.half[j].last_time.unwrap_or(time);
            expire(&mut c.half[j], other, now, &limits, &mut emit);
        }

        // Global bound: turn the fed direction's wait into a gap.
        let after = c.half[i].ooo_bytes + c.half[1 - i].ooo_bytes;
        self.total_ooo = (self.total_ooo + after).saturating_sub(before);
        if self.total_ooo > limits.max_total_ooo_bytes {
            let freed = c.half[i].ooo_bytes;
            resolve_all(&mut c.half[i], ctx, GapReason::BufferLimit, &mut emit);
            self.total_ooo = self.total_ooo.saturating_sub(freed);
        }
        for k in 0..2 {
            let h = &mut c.half[k];
            if !h.closed && h.fin.is_some_and(|f| h.next >= f) && h.ooo.is_empty() {
                h.closed = true;
                emit(Event::Close {
                    conn: c.id,
                    dir: Dir::from_index(k),
                    kind: CloseKind::Fin,
                    frame,
                });
            }
        }
        if c.half[0].closed && c.half[1].closed {
            self.end_conn(
                t,
                EndReason::Closed,
                GapReason::EndOfCapture,
                frame,
                &mut emit,
            );
        }
    }

    /// End of capture: report every connection's pending data (buffered bytes
    /// are delivered, holes become gaps), FINs reached, and `End` events, in
    /// connection order. The reassembler is empty afterwards.
    pub fn flush<F: FnMut(Event<'_>)>(&mut self, mut emit: F) {
        let mut all: Vec<(ConnId, TupleKey, u64)> = self
            .conns
            .iter()
            .map(|(t, c)| (c.id, *t, c.last_frame))
            .collect();
        all.sort_unstable();
        for (_, t, last) in all {
            self.end_conn(
                t,
                EndReason::EndOfCapture,
                GapReason::EndOfCapture,
                last,
                &mut emit,
            );
        }
    }

    /// Evict the least recently active eighth of the connections.
    fn evict<F: FnMut(Event<'_>)>(&mut self, frame: u64, emit: &mut F) {
        let mut all: Vec<(u64, ConnId, TupleKey)> = self
            .conns
            .iter()
            .map(|(t, c)| (c.last_frame, c.id, *t))
            .collect();
        let n = (all.len() / 8).max(1).min(all.len());
        if n == 0 {
            return;
        }
        if n < all.len() {
            all.select_nth_unstable(n - 1);
        }
        let mut victims: Vec<_> = all[..n].to_vec();
        victims.sort_unstable();
        for (_, _, t) in victims {
            self.end_conn(t, EndReason::Evicted, GapReason::Evicted, frame, emit);
        }
    }

    /// Flush and free one connection.
    fn end_conn<F: FnMut(Event<'_>)>(
        &mut self,
        t: TupleKey,
        reason: EndReason,
        gap: GapReason,
        frame: u64,
        emit: &mut F,
    ) {
        let Some(mut c) = self.conns.remove(&t) else {
            return;
        };
        self.ids.remove(&c.id);
        for k in 0..2 {
            let ctx = Ctx {
                conn: c.id,
                dir: Dir::from_index(k),
                frame,
                packet: c.packets,
            };
            let h = &mut c.half[k];
            self.total_ooo = self.total_ooo.saturating_sub(h.ooo_bytes);
            // Bytes the receiver acknowledged were sent and lost by the
            // capture: the end only stopped the wait for them.
            let gap = match gap {
                GapReason::Reset | GapReason::EndOfCapture if h.acked > h.next => {
                    GapReason::AckedUnseen
                }
                g => g,
            };
            if reason != EndReason::Reset || !h.ooo.is_empty() {
                resolve_all(h, ctx, gap, emit);
            }
            if let Some(f) = h.fin {
                if h.next < f && reason != EndReason::Reset {
                    gap_to(h, ctx, f, gap, emit);
                }
                if !h.closed && h.next >= f {
                    h.closed = true;
                    emit(Event::Close {
                        conn: c.id,
                        dir: ctx.dir,
                        kind: CloseKind::Fin,
                        frame,
                    });
                }
            }
        }
        emit(Event::End {
            conn: c.id,
            key: c.key(),
            reason,
            stats: [c.half[0].stats, c.half[1].stats],
        });
    }
}

/// Declare `[next, to)` missing.
fn gap_to<F: FnMut(Event<'_>)>(h: &mut Half, ctx: Ctx, to: u64, reason: GapReason, emit: &mut F) {
    if to > h.next {
        let missing = to - h.next;
        h.stats.gaps += 1;
        h.stats.gap_bytes += missing;
        emit(Event::Gap {
            conn: ctx.conn,
            dir: ctx.dir,
            stream_offset: h.next,
            missing_len: missing,
            frame: ctx.frame,
            reason,
        });
        h.next = to;
    }
}

/// Deliver buffered pieces that are now in order.
fn drain<F: FnMut(Event<'_>)>(h: &mut Half, ctx: Ctx, emit: &mut F) {
    while let Some(entry) = h.ooo.first_entry() {
        let start = *entry.key();
        if start > h.next {
            break;
        }
        let p = entry.remove();
        h.ooo_bytes -= p.data.len();
        let end = start + p.len;
        if end <= h.next {
            continue;
        }
        let skip = (h.next - start) as usize;
        if p.lost {
            gap_to(h, ctx, end, GapReason::Truncated, emit);
        } else {
            let bytes = &p.data[skip..];
            h.stats.bytes += bytes.len() as u64;
            emit(Event::Data {
                conn: ctx.conn,
                dir: ctx.dir,
                stream_offset: h.next,
                bytes,
                frame: p.frame,
                time: p.time,
            });
            h.next = end;
        }
    }
}

/// Give up on every hole: buffered data is delivered, holes become gaps.
fn resolve_all<F: FnMut(Event<'_>)>(h: &mut Half, ctx: Ctx, reason: GapReason, emit: &mut F) {
    while let Some((&start, _)) = h.ooo.first_key_value() {
        gap_to(h, ctx, start, reason, emit);
        drain(h, ctx, emit);
    }
}

/// Whether `(packet, time)` lies past the reorder wait, seen at `ctx`/`now`.
fn waited(since: (u64, Timestamp), ctx: Ctx, now: Timestamp, limits: &Limits) -> bool {
    let (packet, time) = since;
    if ctx.packet.saturating_sub(packet) >= limits.reorder_packets {
        return true;
    }
    let ms = (now.sec - time.sec) as i128 * 1000
        + (i128::from(now.nsec) - i128::from(time.nsec)) / 1_000_000;
    ms >= i128::from(limits.reorder_time_ms)
}

/// Declares lost the holes that data (or the FIN) has waited behind for longer
/// than the reorder wait; the peer's ACK names the reason.
fn expire<F: FnMut(Event<'_>)>(
    h: &mut Half,
    ctx: Ctx,
    now: Timestamp,
    limits: &Limits,
    emit: &mut F,
) {
    loop {
        let (limit, since) = match h.ooo.first_key_value() {
            Some((&s, p)) => (s, (p.packet, p.time)),
            None => match (h.fin, h.fin_at) {
                (Some(f), Some(at)) if h.next < f => (f, at),
                _ => return,
            },
        };
        if limit <= h.next || !waited(since, ctx, now, limits) {
            return;
        }
        let reason = if h.acked > h.next {
            GapReason::AckedUnseen
        } else {
            GapReason::NotCaptured
        };
        gap_to(h, ctx, limit, reason, emit);
        drain(h, ctx, emit);
    }
}

/// Insert a segment's range `[off, off+wire_len)` whose first
/// `payload.len()` bytes were captured.
#[allow(clippy::too_many_arguments)]
fn insert<F: FnMut(Event<'_>)>(
    h: &mut Half,
    ctx: Ctx,
    off: i64,
    payload: &[u8],
    wire_len: u64,
    time: Timestamp,
    limits: &Limits,
    scratch: &mut Vec<(u64, u64)>,
    emit: &mut F,
) {
    let next = h.next as i64;
    let end = off + wire_len as i64;
    if end <= next {
        h.stats.dup_segments += 1;
        h.stats.dup_bytes += wire_len;
        return;
    }
    // Trim the part already delivered (or before the stream start).
    let (mut s, mut data) = (off, payload);
    if s < next {
        let cut = (next - s) as u64;
        if off >= 0 {
            h.stats.dup_bytes += cut;
        }
        let c = (cut as usize).min(data.len());
        data = &data[c..];
        s = next;
    }
    let s = s as u64;
    let end = end as u64;
    let present_end = s + data.len() as u64;

    if s == h.next {
        // Fast path: in order. Compare with any buffered overlap first.
        let mut covered = 0u64;
        for (&ps, p) in h.ooo.range(..end) {
            let pe = ps + p.len;
            if pe <= s {
                continue;
            }
            covered += pe.min(end) - ps.max(s);
            if differs(p, ps, s, data, ctx, emit) {
                h.stats.inconsistent += 1;
            }
        }
        h.stats.dup_bytes += covered;
        if !data.is_empty() {
            h.stats.bytes += data.len() as u64;
            emit(Event::Data {
                conn: ctx.conn,
                dir: ctx.dir,
                stream_offset: s,
                bytes: data,
                frame: ctx.frame,
                time,
            });
            h.next = present_end;
        }
        if end > present_end {
            // The snaplen cut the tail: buffer it as lost (buffered bytes for the
            // same range, if any, win); drain turns it into a Truncated gap.
            insert_pieces(h, ctx, present_end, &[], end, time, scratch, emit);
        }
        drain(h, ctx, emit);
    } else {
        insert_pieces(h, ctx, s, data, end, time, scratch, emit);
        // Bounds: give up on the oldest hole until back under the limits.
        while h.ooo_bytes > limits.max_ooo_bytes || h.ooo.len() > limits.max_ooo_segments {
            let Some((&first, _)) = h.ooo.first_key_value() else {
                break;
            };
            gap_to(h, ctx, first, GapReason::BufferLimit, emit);
            drain(h, ctx, emit);
        }
    }
}

/// True (and an [`Event::Inconsistent`] emitted) if buffered piece `p` at
/// `ps` holds different bytes than `data` (starting at `s`) where they overlap.
fn differs<F: FnMut(Event<'_>)>(
    p: &Piece,
    ps: u64,
    s: u64,
    data: &[u8],
    ctx: Ctx,
    emit: &mut F,
) -> bool {
    if p.lost {
        return false;
    }
    let lo = ps.max(s);
    let hi = (ps + p.len).min(s + data.len() as u64);
    if hi <= lo {
        return false;
    }
    let a = &p.data[(lo - ps) as usize..(hi - ps) as usize];
    let b = &data[(lo - s) as usize..(hi - s) as usize];
    if a == b {
        return false;
    }
    emit(Event::Inconsistent {
        conn: ctx.conn,
        dir: ctx.dir,
        stream_offset: lo,
        len: hi - lo,
        frame: ctx.frame,
    });
    true
}

/// Buffer the parts of `[s, end)` not yet buffered; bytes `[s, s+data.len())` are
/// captured, the rest is known lost. Overlaps are compared and counted.
#[allow(clippy::too_many_arguments)]
fn insert_pieces<F: FnMut(Event<'_>)>(
    h: &mut Half,
    ctx: Ctx,
    s: u64,
    data: &[u8],
    end: u64,
    time: Timestamp,
    scratch: &mut Vec<(u64, u64)>,
    emit: &mut F,
) {
    scratch.clear();
    let mut cursor = s;
    let mut covered = 0u64;
    // A piece starting before `s` may reach into the range.
    let prev = h.ooo.range(..s).next_back().map(|(&ps, p)| (ps, p));
    let iter = prev
        .into_iter()
        .chain(h.ooo.range(s..end).map(|(&ps, p)| (ps, p)));
    for (ps, p) in iter {
        let pe = ps + p.len;
        if pe <= cursor {
            continue;
        }
        if ps > cursor {
            scratch.push((cursor, ps.min(end)));
        }
        let lo = ps.max(s);
        let hi = pe.min(end);
        if hi > lo {
            covered += hi - lo;
            if differs(p, ps, s, data, ctx, emit) {
                h.stats.inconsistent += 1;
            }
        }
        cursor = cursor.max(pe);
        if cursor >= end {
            break;
        }
    }
    if cursor < end {
        scratch.push((cursor, end));
    }
    if covered > 0 {
        h.stats.dup_bytes += covered;
        if scratch.is_empty() {
            h.stats.dup_segments += 1;
        }
    }
    let present_end = s + data.len() as u64;
    for &(a, b) in scratch.iter() {
        // Split each uncovered range into its captured and its lost part.
        if a < present_end {
            let pe = b.min(present_end);
            let bytes = data[(a - s) as usize..(pe - s) as usize].to_vec();
            h.ooo_bytes += bytes.len();
            h.ooo.insert(
                a,
                Piece {
                    len: pe - a,
                    data: bytes,
                    lost: false,
                    frame: ctx.frame,
                    time,
                    packet: ctx.packet,
                },
            );
        }
        if b > present_end {
            let la = a.max(present_end);
            h.ooo.insert(
                la,
                Piece {
                    data: Vec::new(),
                    len: b - la,
                    lost: true,
                    frame: ctx.frame,
                    time,
                    packet: ctx.packet,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const F: u16 = TcpFlags::FIN;
    const S: u16 = TcpFlags::SYN;
    const R: u16 = TcpFlags::RST;
    const A: u16 = TcpFlags::ACK;

    #[derive(Debug, Clone, PartialEq)]
    enum Ev {
        Open(u64, Roles),
        Data(u64, Dir, u64, Vec<u8>),
        Gap(u64, Dir, u64, u64, GapReason),
        Inc(u64, Dir, u64, u64),
        Close(u64, Dir, CloseKind),
        End(u64, EndReason, [DirStats; 2]),
    }

    fn own(e: Event<'_>) -> Ev {
        match e {
            Event::Open { conn, key, .. } => Ev::Open(conn.0, key.roles),
            Event::Data {
                conn,
                dir,
                stream_offset,
                bytes,
                ..
            } => Ev::Data(conn.0, dir, stream_offset, bytes.to_vec()),
            Event::Gap {
                conn,
                dir,
                stream_offset,
                missing_len,
                reason,
                ..
            } => Ev::Gap(conn.0, dir, stream_offset, missing_len, reason),
            Event::Inconsistent {
                conn,
                dir,
                stream_offset,
                len,
                ..
            } => Ev::Inc(conn.0, dir, stream_offset, len),
            Event::Close {
                conn, dir, kind, ..
            } => Ev::Close(conn.0, dir, kind),
            Event::End {
                conn,
                reason,
                stats,
                ..
            } => Ev::End(conn.0, reason, stats),
        }
    }

    struct H {
        r: Reassembler,
        ev: Vec<Ev>,
        frame: u64,
        port: u16,
        now: Timestamp,
    }

    impl H {
        fn new() -> H {
            H {
                r: Reassembler::new(),
                ev: Vec::new(),
                frame: 0,
                port: 5000,
                now: Timestamp::default(),
            }
        }
        fn client(&self) -> SocketAddr {
            SocketAddr::from(([10, 0, 0, 1], self.port))
        }
        fn server(&self) -> SocketAddr {
            SocketAddr::from(([10, 0, 0, 2], 1935))
        }
        /// A segment from the client (`c2s`) or the server.
        fn seg(
            &mut self,
            c2s: bool,
            seq: u32,
            ack: u32,
            flags: u16,
            payload: &[u8],
            wire_len: u32,
        ) {
            self.frame += 1;
            let (src, dst) = if c2s {
                (self.client(), self.server())
            } else {
                (self.server(), self.client())
            };
            let s = TcpSegment {
                seq,
                ack,
                flags: TcpFlags(flags),
                window: 1000,
                payload,
                wire_len,
            };
            let ev = &mut self.ev;
            self.r
                .segment(src, dst, &s, self.frame, self.now, |e| ev.push(own(e)));
        }
        fn data(&mut self, c2s: bool, seq: u32, payload: &[u8]) {
            self.seg(c2s, seq, 0, 0, payload, payload.len() as u32);
        }
        fn flush(&mut self) {
            let ev = &mut self.ev;
            self.r.flush(|e| ev.push(own(e)));
        }
        /// The reassembled stream of `dir` (gaps as `?` bytes), checking contiguity.
        fn stream(&self, conn: u64, dir: Dir) -> Vec<u8> {
            let mut out = Vec::new();
            for e in &self.ev {
                match e {
                    Ev::Data(c, d, off, b) if *c == conn && *d == dir => {
                        assert_eq!(*off, out.len() as u64, "contiguous");
                        out.extend_from_slice(b);
                    }
                    Ev::Gap(c, d, off, n, _) if *c == conn && *d == dir => {
                        assert_eq!(*off, out.len() as u64, "contiguous");
                        out.extend(std::iter::repeat_n(b'?', *n as usize));
                    }
                    _ => {}
                }
            }
            out
        }
        fn gaps(&self) -> Vec<(u64, u64, GapReason)> {
            self.ev
                .iter()
                .filter_map(|e| {
                    if let Ev::Gap(_, _, o, n, r) = e {
                        Some((*o, *n, *r))
                    } else {
                        None
                    }
                })
                .collect()
        }
        fn end_stats(&self, conn: u64) -> [DirStats; 2] {
            self.ev
                .iter()
                .find_map(|e| {
                    if let Ev::End(c, _, s) = e {
                        (*c == conn).then_some(*s)
                    } else {
                        None
                    }
                })
                .unwrap()
        }
        fn handshake(&mut self, isn_c: u32, isn_s: u32) {
            self.seg(true, isn_c, 0, S, b"", 0);
            self.seg(false, isn_s, isn_c.wrapping_add(1), S | A, b"", 0);
            self.seg(
                true,
                isn_c.wrapping_add(1),
                isn_s.wrapping_add(1),
                A,
                b"",
                0,
            );
        }
    }

    #[test]
    fn handshake_data_and_fin_close() {
        let mut h = H::new();
        h.handshake(1000, 9000);
        h.data(true, 1001, b"hello");
        h.data(false, 9001, b"world!");
        h.seg(true, 1006, 9007, F | A, b"", 0);
        h.seg(false, 9007, 1007, F | A, b"", 0);
        assert_eq!(h.ev[0], Ev::Open(0, Roles::Syn));
        assert_eq!(h.ev[1], Ev::Data(0, Dir::C2s, 0, b"hello".to_vec()));
        assert_eq!(h.ev[2], Ev::Data(0, Dir::S2c, 0, b"world!".to_vec()));
        assert_eq!(h.ev[3], Ev::Close(0, Dir::C2s, CloseKind::Fin));
        assert_eq!(h.ev[4], Ev::Close(0, Dir::S2c, CloseKind::Fin));
        assert!(matches!(h.ev[5], Ev::End(0, EndReason::Closed, _)));
        assert_eq!(h.r.connections(), 0, "closed connections are freed");
        // A pure ACK after close opens nothing; a new SYN opens connection 1.
        h.seg(true, 1007, 9008, A, b"", 0);
        assert_eq!(h.ev.len(), 6);
        h.handshake(5, 6);
        assert_eq!(h.ev[6], Ev::Open(1, Roles::Syn));
    }

    #[test]
    fn out_of_order_retransmissions_and_overlaps() {
        let mut h = H::new();
        h.handshake(u32::MAX - 3, 0); // client sequence numbers wrap after 2 bytes
        let b = |i: u32| (u32::MAX - 2).wrapping_add(i);
        let msg = b"0123456789abcdefghij";
        h.data(true, b(10), &msg[10..15]); // out of order
        h.data(true, b(5), &msg[5..12]); // overlaps the buffered piece
        h.data(true, b(0), &msg[0..3]);
        h.data(true, b(0), &msg[0..3]); // exact retransmission
        h.data(true, b(2), &msg[2..6]); // partial overlap with delivered + buffered
        h.data(true, b(14), &msg[14..20]);
        h.data(true, b(15), &msg[15..18]); // retransmission of delivered bytes
        assert_eq!(h.stream(0, Dir::C2s), msg);
        assert!(h.gaps().is_empty());
        h.flush();
        let st = h.end_stats(0)[0];
        assert_eq!(st.bytes, 20);
        assert_eq!(st.dup_segments, 2);
        // [10,12) re-sent over buffered; exact resend 3; [2,3) delivered + [5,6) buffered;
        // [14,15) buffered; [15,18) delivered.
        assert_eq!(st.dup_bytes, 2 + 3 + 1 + 1 + 1 + 3);
        assert_eq!(st.inconsistent, 0);
    }

    #[test]
    fn inconsistent_retransmission_keeps_first_copy() {
        let mut h = H::new();
        h.handshake(0, 0);
        h.data(true, 6, b"WORLD"); // offsets 5..10
        h.data(true, 4, b"loXOR"); // offsets 3..8: "XOR" overlaps buffered "WOR"
        h.data(true, 1, b"hel");
        assert_eq!(h.stream(0, Dir::C2s), b"helloWORLD");
        assert!(h.ev.contains(&Ev::Inc(0, Dir::C2s, 5, 3)));
    }

    #[test]
    fn snaplen_truncated_segment_becomes_a_gap() {
        let mut h = H::new();
        h.handshake(0, 0);
        h.seg(true, 1, 0, A, b"abcd", 10); // 6 bytes cut by the snaplen
        h.data(true, 11, b"next");
        assert_eq!(h.stream(0, Dir::C2s), b"abcd??????next");
        assert_eq!(h.gaps(), vec![(4, 6, GapReason::Truncated)]);
        // Out of order truncated segment: the lost tail is a gap when reached.
        h.seg(true, 20, 0, A, b"xy", 5);
        h.data(true, 15, b"12345");
        assert_eq!(h.stream(0, Dir::C2s), b"abcd??????next12345xy???");
    }

    /// A RST (or the capture's end) before the reorder wait ran out: the
    /// hole the receiver acknowledged is still named for what it is, not
    /// for the reset that only ended the wait.
    #[test]
    fn an_acked_hole_ended_by_a_reset_is_acked_unseen() {
        let mut h = H::new();
        h.handshake(0, 0);
        h.data(true, 1, b"aaaa");
        h.data(true, 9, b"cccc"); // bytes 4..8 never captured
        h.seg(false, 1, 13, A, b"", 0); // the server acknowledges them
        h.seg(true, 13, 0, R, b"", 0);
        assert_eq!(h.gaps(), vec![(4, 4, GapReason::AckedUnseen)]);
        let mut h = H::new();
        h.handshake(0, 0);
        h.data(true, 1, b"aaaa");
        h.data(true, 9, b"cccc");
        h.seg(true, 13, 0, R, b"", 0); // no ACK covered them
        assert_eq!(h.gaps(), vec![(4, 4, GapReason::Reset)]);
    }

    #[test]
    fn hole_acked_by_peer_is_a_gap_after_the_reorder_wait() {
        let mut h = H::new();
        h.handshake(0, 0);
        h.data(true, 1, b"aaaa");
        h.data(true, 9, b"cccc"); // bytes 4..8 never captured
        assert_eq!(h.stream(0, Dir::C2s), b"aaaa");
        h.seg(false, 1, 13, A, b"", 0); // server acknowledges everything
        // Evidence, not proof: the hole still waits.
        assert!(h.gaps().is_empty());
        for _ in 0..Limits::default().reorder_packets {
            h.seg(false, 1, 13, A, b"", 0);
        }
        assert_eq!(h.stream(0, Dir::C2s), b"aaaa????cccc");
        assert_eq!(h.gaps(), vec![(4, 4, GapReason::AckedUnseen)]);
    }

    /// SPAN ports and merged captures show the ACK before the data it
    /// acknowledges: the late segment is placed, no gap.
    #[test]
    fn ack_before_reordered_data_is_no_loss() {
        let mut h = H::new();
        h.handshake(0, 0);
        h.data(true, 1, b"aaaa");
        h.data(true, 9, b"cccc");
        h.seg(false, 1, 13, A, b"", 0);
        h.data(true, 5, b"bbbb");
        assert_eq!(h.stream(0, Dir::C2s), b"aaaabbbbcccc");
        assert!(h.gaps().is_empty());
    }

    /// Reordered by up to three segments, in every permutation: the stream is
    /// exact and no gap is declared.
    #[test]
    fn every_reordering_of_four_segments_is_exact() {
        let parts: [&[u8]; 4] = [b"aaaa", b"bbb", b"cccccc", b"dd"];
        let mut offs = [0u32; 4];
        let mut o = 1;
        for (k, p) in parts.iter().enumerate() {
            offs[k] = o;
            o += p.len() as u32;
        }
        let perms = permutations(4);
        assert_eq!(perms.len(), 24);
        for perm in perms {
            let mut h = H::new();
            h.handshake(0, 0);
            for &k in &perm {
                h.data(true, offs[k], parts[k]);
                h.seg(false, 1, o, A, b"", 0); // the receiver acks everything at once
            }
            assert_eq!(h.stream(0, Dir::C2s), b"aaaabbbccccccdd", "{perm:?}");
            assert!(h.gaps().is_empty(), "{perm:?}");
        }
    }

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![Vec::new()];
        }
        let mut out = Vec::new();
        for p in permutations(n - 1) {
            for at in 0..=p.len() {
                let mut q = p.clone();
                q.insert(at, n - 1);
                out.push(q);
            }
        }
        out
    }

    /// A hole nothing acknowledged is given up after the reorder time.
    #[test]
    fn unacked_hole_is_lost_after_the_reorder_time() {
        let mut h = H::new();
        h.handshake(0, 0);
        h.data(true, 1, b"aaaa");
        h.data(true, 9, b"cccc");
        h.now.sec += 1;
        h.data(true, 13, b"dd");
        assert!(h.gaps().is_empty());
        h.now.sec += 1;
        h.data(true, 15, b"ee");
        assert_eq!(h.gaps(), vec![(4, 4, GapReason::NotCaptured)]);
        assert_eq!(h.stream(0, Dir::C2s), b"aaaa????ccccddee");
    }

    /// Two taps (or two interfaces of a pcapng) whose clocks differ: the
    /// server's packets are stamped 5 s after the client's. A hole in the
    /// client's data waits by the client's own clock; the server's packets
    /// (ACKs of it) do not make it lost. The client's own time still does.
    #[test]
    fn the_reorder_wait_is_timed_by_each_directions_clock() {
        let mut h = H::new();
        h.handshake(0, 0);
        h.data(true, 1, b"aaaa");
        h.data(true, 9, b"cccc");
        h.now.sec += 5;
        h.seg(false, 1, 13, A, b"", 0);
        h.seg(false, 1, 13, A, b"", 0);
        h.now.sec -= 5;
        h.data(true, 5, b"bbbb");
        assert!(h.gaps().is_empty(), "{:?}", h.gaps());
        assert_eq!(h.stream(0, Dir::C2s), b"aaaabbbbcccc");
        h.data(true, 17, b"eeee");
        h.now.sec += 5;
        h.seg(false, 1, 13, A, b"", 0);
        assert!(h.gaps().is_empty());
        h.now.sec -= 3;
        h.data(true, 21, b"ff");
        assert_eq!(h.gaps(), vec![(12, 4, GapReason::NotCaptured)]);
    }

    #[test]
    fn buffer_limit_declares_gap_and_flush_reports_pending() {
        let mut h = H::new();
        h.r = Reassembler::with_limits(Limits {
            max_ooo_bytes: 10,
            ..Limits::default()
        });
        h.handshake(0, 0);
        h.data(true, 101, b"0123456");
        assert!(h.gaps().is_empty());
        h.data(true, 108, b"789ab"); // 12 bytes buffered > 10
        assert_eq!(h.gaps(), vec![(0, 100, GapReason::BufferLimit)]);
        assert_eq!(h.stream(0, Dir::C2s).len(), 112);
        h.data(true, 200, b"zz");
        h.seg(true, 202, 0, F, b"", 0);
        h.flush();
        assert_eq!(h.gaps()[1], (112, 87, GapReason::EndOfCapture));
        assert!(h.stream(0, Dir::C2s).ends_with(b"?zz"));
        assert!(h.ev.contains(&Ev::Close(0, Dir::C2s, CloseKind::Fin)));
        assert!(matches!(
            h.ev.last(),
            Some(Ev::End(0, EndReason::EndOfCapture, _))
        ));
        assert_eq!(h.r.buffered_bytes(), 0);
    }

    #[test]
    fn mid_stream_roles_can_be_flipped() {
        let mut h = H::new();
        // Capture starts mid-connection: the server speaks first here.
        h.data(false, 777, b"S0S1");
        assert_eq!(h.ev[0], Ev::Open(0, Roles::Guessed));
        assert_eq!(h.ev[1], Ev::Data(0, Dir::C2s, 0, b"S0S1".to_vec()));
        let key = h.r.flip_roles(ConnId(0)).unwrap();
        assert_eq!(
            (key.client, key.server, key.roles),
            (h.client(), h.server(), Roles::Flipped)
        );
        h.data(false, 781, b"S2");
        h.data(true, 50, b"C2");
        assert_eq!(h.ev[2], Ev::Data(0, Dir::S2c, 4, b"S2".to_vec()));
        assert_eq!(h.ev[3], Ev::Data(0, Dir::C2s, 0, b"C2".to_vec()));
    }

    #[test]
    fn reset_reuse_and_eviction() {
        let mut h = H::new();
        h.handshake(100, 200);
        h.data(true, 101, b"x");
        h.data(true, 110, b"late");
        h.seg(false, 201, 0, R, b"", 0);
        assert!(h.ev.contains(&Ev::Close(0, Dir::S2c, CloseKind::Rst)));
        assert!(h.ev.contains(&Ev::Gap(0, Dir::C2s, 1, 8, GapReason::Reset)));
        assert!(matches!(h.ev.last(), Some(Ev::End(0, EndReason::Reset, _))));
        // Port reuse without close: a SYN with a new ISN ends the old connection.
        h.handshake(1, 2);
        h.data(true, 2, b"a");
        h.seg(true, 1, 0, S, b"", 0); // retransmitted SYN: same connection
        h.handshake(5000, 6000);
        assert!(
            h.ev.iter()
                .any(|e| matches!(e, Ev::End(1, EndReason::Reused, _)))
        );
        assert!(h.ev.contains(&Ev::Open(2, Roles::Syn)));
        // Eviction of the least recently active.
        let mut h = H::new();
        h.r = Reassembler::with_limits(Limits {
            max_conns: 4,
            ..Limits::default()
        });
        for p in 0..5 {
            h.port = 6000 + p;
            h.handshake(0, 0);
        }
        assert!(
            h.ev.iter()
                .any(|e| matches!(e, Ev::End(0, EndReason::Evicted, _)))
        );
        assert_eq!(h.r.connections(), 4);
    }

    /// A capture out of time order (multi-queue NIC, merged files): the
    /// client's SYN and the SYN+ACK come after the first data. Same
    /// connection, nothing lost; a SYN far from the data is still reuse.
    #[test]
    fn late_syn_is_the_same_connection() {
        let mut h = H::new();
        h.data(true, 101, b"C0C1");
        h.seg(true, 100, 0, S, b"", 0);
        h.seg(false, 200, 101, S | A, b"", 0);
        h.data(false, 201, b"S0S1");
        h.data(true, 105, b"C2");
        h.seg(true, 100, 0, S, b"", 0); // retransmitted SYN
        assert_eq!(
            h.ev,
            vec![
                Ev::Open(0, Roles::Guessed),
                Ev::Data(0, Dir::C2s, 0, b"C0C1".to_vec()),
                Ev::Data(0, Dir::S2c, 0, b"S0S1".to_vec()),
                Ev::Data(0, Dir::C2s, 4, b"C2".to_vec()),
            ]
        );
        // Data seen from offset 1000 of the stream, its SYN late: still one.
        let mut h = H::new();
        h.data(true, 5001, b"x");
        h.seg(true, 4000, 0, S, b"", 0);
        h.data(true, 5002, b"y");
        assert!(!h.ev.iter().any(|e| matches!(e, Ev::End(..))));
        // A SYN with an ISN far from the data is port reuse.
        h.seg(
            true,
            4000u32.wrapping_add(LATE_SYN_WINDOW + 2000),
            0,
            S,
            b"",
            0,
        );
        assert!(
            h.ev.iter()
                .any(|e| matches!(e, Ev::End(0, EndReason::Reused, _)))
        );
    }

    #[test]
    fn syn_ack_only_marks_roles() {
        let mut h = H::new();
        h.seg(false, 50, 11, S | A, b"", 0);
        h.seg(true, 10, 0, S, b"", 0); // late client SYN: same connection
        h.data(true, 11, b"C0C1");
        assert_eq!(h.ev[0], Ev::Open(0, Roles::SynAck));
        assert_eq!(h.ev[1], Ev::Data(0, Dir::C2s, 0, b"C0C1".to_vec()));
    }

    proptest! {
        #[test]
        fn random_segmentation_reassembles(
            data in proptest::collection::vec(any::<u8>(), 1..3000),
            cuts in proptest::collection::vec(1usize..200, 1..60),
            swaps in proptest::collection::vec((0usize..100, 0usize..4), 0..40),
            dups in proptest::collection::vec(0usize..100, 0..20),
            isn in any::<u32>(),
        ) {
            // Cut into segments, duplicate some, shuffle within a window of 4.
            let mut segs = Vec::new();
            let (mut at, mut k) = (0, 0);
            while at < data.len() {
                let n = cuts[k % cuts.len()].min(data.len() - at);
                segs.push((at, n));
                at += n;
                k += 1;
            }
            for d in dups {
                let s = segs[d % segs.len()];
                segs.insert(d % segs.len(), s);
            }
            let len = segs.len();
            for (a, w) in swaps {
                let i = a % len;
                segs.swap(i, (i + w).min(len - 1));
            }
            let mut h = H::new();
            h.handshake(isn, 0);
            for (off, n) in segs {
                h.data(true, isn.wrapping_add(1).wrapping_add(off as u32), &data[off..off + n]);
            }
            prop_assert!(h.gaps().is_empty());
            prop_assert_eq!(h.stream(0, Dir::C2s), data);
        }
    }
}
