//! Chunk stream decoder for one direction (RTMP 1.0 §5.3.1, §5.3.2, §5.4.1, §5.4.2).
//!
//! The decoder keeps per-csid header state, reassembles interleaved messages,
//! and applies Set Chunk Size and Abort itself, from the byte right after the
//! message that carried them, reporting each as a [`ChunkEvent`].
//!
//! Extended timestamps on type-3 chunks: the spec says a type-3 chunk repeats
//! the extended timestamp when the last type 0/1/2 header on its csid had one
//! (§5.3.1.3); some peers omit it on continuation chunks. Like SRS, the decoder
//! peeks: if the next four bytes equal the extended value, they are the field;
//! otherwise they are payload. It reports which convention the peer used.
//!
//! Captures are not always whole. A decoder made with [`DecoderConfig::resume`]
//! joins a stream mid-way: a fmt-1 header on a chunk stream it has not seen
//! starts a message whose absolute timestamp and message stream id the capture
//! never showed; they are reported as unknown ([`UnknownFields`]), never
//! guessed. [`ChunkDecoder::skip`] tells the decoder that bytes are missing:
//! inside the payload of the chunk being read they are filled and the message
//! is reported as [`ChunkEvent::Damaged`]; anywhere else the chunk boundaries
//! are lost, every message in progress is reported damaged, and the caller
//! finds the next boundary (see [`super::walk`]) and calls
//! [`ChunkDecoder::restart`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Buf, Bytes, BytesMut};

use super::header::{MAX_CSID, decode_basic_header};
use super::{
    DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP_MARK, MessageHeader, Type3ExtendedTimestamp, be24, be32,
};
use crate::proto::message::MessageType;

/// Bytes that incomplete messages may reserve ahead of their data, shared by
/// every decoder of a process (a capture with thousands of connections, each
/// announcing 16 MiB messages, must not reserve them all). Past the limit a
/// message's buffer grows with what arrives instead.
#[derive(Debug)]
pub struct ReserveBudget {
    limit: usize,
    used: AtomicUsize,
    /// Most bytes the incomplete messages of all the decoders may hold
    /// (what arrived, reserved or not).
    held_limit: usize,
    held: AtomicUsize,
}

impl ReserveBudget {
    /// A budget of `limit` bytes, to share between decoders.
    pub fn new(limit: usize) -> Arc<ReserveBudget> {
        Self::with_held_limit(limit, usize::MAX)
    }

    /// A budget of `limit` bytes of reservations, whose decoders' incomplete
    /// messages may hold at most `held_limit` bytes together: past it, the
    /// decoder whose chunk would cross it fails with
    /// [`ChunkError::TooMuchBuffered`] (many connections each holding
    /// megabytes of messages that never complete, as bytes that are not
    /// RTMP decode to, cannot take the memory of a capture's size).
    pub fn with_held_limit(limit: usize, held_limit: usize) -> Arc<ReserveBudget> {
        Arc::new(ReserveBudget {
            limit,
            used: AtomicUsize::new(0),
            held_limit,
            held: AtomicUsize::new(0),
        })
    }

    /// Bytes the incomplete messages of all the decoders hold now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Most bytes the incomplete messages of all the decoders may hold.
    pub fn held_limit(&self) -> usize {
        self.held_limit
    }

    /// Counts `n` more bytes held (by a decoder's incomplete messages, or
    /// by whoever else shares the budget: the analyzer's boundary searches).
    pub fn hold(&self, n: usize) {
        self.held.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` bytes no longer held (of those counted by [`Self::hold`]).
    pub fn unhold(&self, n: usize) {
        let before = self.held.fetch_sub(n, Ordering::Relaxed);
        debug_assert!(before >= n, "unhold {n} of {before} held");
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                u.checked_add(n).filter(|&t| t <= self.limit)
            })
            .is_ok()
    }

    fn give(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            });
    }
}

/// Bytes of a decoder's incomplete messages not counted in the shared
/// [`ReserveBudget::held`] (the frame a stream has in progress): what the
/// budget bounds is decoders holding more.
pub const UNCOUNTED_PARTIAL: usize = 16 << 10;

/// The shared count moves in steps of this many bytes (16 KiB): a stream's
/// chunks change it every few chunks, not every one.
const COUNT_STEP: usize = 16 << 10;

/// Of a decoder's incomplete messages' bytes, those the shared budget
/// counts: what is past [`UNCOUNTED_PARTIAL`], rounded up to a step.
#[inline]
fn counted(partial: usize) -> usize {
    // (A decoder holds at most `max_partial_bytes`: no overflow.)
    (partial.saturating_sub(UNCOUNTED_PARTIAL) + COUNT_STEP - 1) & !(COUNT_STEP - 1)
}

/// Settings of a [`ChunkDecoder`].
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    /// Chunk size in force at the start (128 unless the capture starts mid-stream).
    pub chunk_size: u32,
    /// Stream offset of the first byte pushed (3073 after a complete handshake,
    /// counting C0 as offset 0).
    pub start_offset: u64,
    /// Limit on the bytes held in incomplete messages across all chunk streams.
    pub max_partial_bytes: usize,
    /// Emit a [`ChunkEvent::Chunk`] for every chunk (for `dump -v`).
    pub report_chunks: bool,
    /// The stream is joined mid-way (a capture that started late, or after a
    /// gap): a fmt-1 header on an unseen chunk stream starts a message with
    /// unknown absolute timestamp and message stream id.
    pub resume: bool,
    /// A budget for up-front reservations shared with other decoders (the
    /// analyzer gives every connection the same one).
    pub reserve_budget: Option<Arc<ReserveBudget>>,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            start_offset: 0,
            max_partial_bytes: 64 << 20,
            report_chunks: false,
            resume: false,
            reserve_budget: None,
        }
    }
}

/// One complete message as it came out of the chunk stream.
#[derive(Debug, Clone, PartialEq)]
pub struct RawMessage {
    /// Chunk stream id it arrived on.
    pub csid: u32,
    /// Timestamp, type and message stream id.
    pub header: MessageHeader,
    /// The message body.
    pub payload: Bytes,
    /// Stream offset of the basic header of its first chunk.
    pub offset: u64,
    /// fmt of its first chunk.
    pub fmt: u8,
    /// Number of chunks it spanned.
    pub chunks: u32,
    /// Whether its header used the extended timestamp field.
    pub extended_timestamp: bool,
    /// Header fields the stream never showed (a stream joined mid-way).
    pub unknown: UnknownFields,
}

/// Header fields of a message that the decoder could not know: the stream was
/// joined after the fmt-0 header that set them ([`DecoderConfig::resume`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnknownFields {
    /// The absolute timestamp is unknown (only deltas were seen); the
    /// message's `timestamp` then counts from an unknown base.
    pub timestamp: bool,
    /// The message stream id is unknown (reported as 0).
    pub stream_id: bool,
}

impl UnknownFields {
    /// Whether any field is unknown.
    pub fn any(self) -> bool {
        self.timestamp || self.stream_id
    }
}

/// A message that lost bytes: its header is known, its body is not whole.
#[derive(Debug, Clone, PartialEq)]
pub struct DamagedMessage {
    /// Chunk stream id.
    pub csid: u32,
    /// Timestamp, type and message stream id.
    pub header: MessageHeader,
    /// Fields of `header` the stream never showed.
    pub unknown: UnknownFields,
    /// Stream offset of the basic header of its first chunk.
    pub offset: u64,
    /// Its announced length.
    pub length: u32,
    /// Bytes of it that were captured.
    pub captured: u64,
    /// Bytes of it known to be missing (filled), or, when the chunk
    /// boundaries were lost, the rest of its length.
    pub missing: u64,
    /// Whether its end was seen (false: the chunk boundaries were lost in it).
    pub complete: bool,
}

/// What [`ChunkDecoder::skip`] did with missing bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// They lie inside the payload of the chunk being read: filled, the
    /// message will be reported damaged, and decoding goes on in step.
    Filled,
    /// They cover a chunk header: the chunk boundaries are lost. Messages in
    /// progress were reported damaged; find the next boundary and
    /// [`ChunkDecoder::restart`] there.
    Lost,
}

/// Chunk-level detail of one chunk (for `dump -v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkInfo {
    /// Stream offset of the basic header.
    pub offset: u64,
    /// Message header format.
    pub fmt: u8,
    /// Chunk stream id.
    pub csid: u32,
    /// Basic + message header + extended timestamp bytes.
    pub header_len: usize,
    /// Payload bytes in this chunk.
    pub payload_len: usize,
    /// Whether this chunk carried an extended timestamp field.
    pub extended_timestamp: bool,
}

/// What the decoder reports besides messages.
#[derive(Debug, Clone, PartialEq)]
pub enum ChunkEvent {
    /// A complete message.
    Message(RawMessage),
    /// One chunk (only with [`DecoderConfig::report_chunks`]); comes before the
    /// message it completes.
    Chunk(ChunkInfo),
    /// Set Chunk Size took effect: chunks from `offset` on are read with `new`.
    ChunkSizeChanged {
        /// Size before.
        old: u32,
        /// Size now.
        new: u32,
        /// Raw 32-bit value (top bit should be 0; masked off if not).
        raw: u32,
        /// Stream offset from which the new size applies.
        offset: u64,
    },
    /// Set Chunk Size with a value the decoder cannot apply (0, or too short a body).
    InvalidChunkSize {
        /// The value as sent (0 if the body was too short).
        raw: u32,
        /// Stream offset of the Set Chunk Size message.
        offset: u64,
    },
    /// An Abort message dropped the partial message of `csid`.
    Aborted {
        /// Chunk stream whose message was dropped.
        csid: u32,
        /// Bytes of it that had arrived (0 if none was in progress).
        discarded: usize,
        /// Stream offset of the Abort message.
        offset: u64,
    },
    /// The first time the peer's treatment of extended timestamps on type-3
    /// continuation chunks was seen, and whenever it changes.
    Type3ExtendedTimestamp {
        /// Chunk stream where it was seen.
        csid: u32,
        /// What the peer did.
        convention: Type3ExtendedTimestamp,
        /// Stream offset of that chunk.
        offset: u64,
    },
    /// A message that lost bytes to a gap in the capture (see
    /// [`ChunkDecoder::skip`]); it is not delivered as a message.
    Damaged(DamagedMessage),
    /// A fmt 0/1/2 header arrived on a csid whose message was still incomplete;
    /// the incomplete message is dropped.
    MessageInterrupted {
        /// Chunk stream.
        csid: u32,
        /// Bytes of the dropped message that had arrived.
        received: usize,
        /// Its announced length.
        length: u32,
        /// Stream offset of the interrupting chunk.
        offset: u64,
    },
}

/// Why a direction's chunk stream cannot be decoded further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// A fmt 1/2/3 chunk on a chunk stream that never had a fmt-0 header:
    /// the classic symptom of reading with the wrong chunk size.
    #[error(
        "chunk at stream offset {offset}: fmt {fmt} header on chunk stream {csid}, which has no previous header"
    )]
    NoPreviousHeader {
        /// Stream offset of the chunk.
        offset: u64,
        /// Its fmt.
        fmt: u8,
        /// Its csid.
        csid: u32,
    },
    /// Set Chunk Size with a value no chunk can have: 0, or only the bit
    /// that must be zero (RTMP 1.0 §5.4.1: 1 to 2^31 - 1). A decoder goes on
    /// with its chunk size; a peer of the sender fails with this.
    #[error(
        "Set Chunk Size at stream offset {offset}: {raw} is not a chunk size (1 to 2147483647)"
    )]
    InvalidChunkSize {
        /// Stream offset of the message.
        offset: u64,
        /// The value as sent.
        raw: u32,
    },
    /// Incomplete messages hold more than [`DecoderConfig::max_partial_bytes`].
    #[error(
        "chunk at stream offset {offset}: a message of type {msg_type} on chunk stream {csid} declares {length} bytes; incomplete messages{} would hold {buffered} bytes, over the limit of {limit}",
        if *shared { " of all connections" } else { "" }
    )]
    TooMuchBuffered {
        /// Stream offset of the chunk.
        offset: u64,
        /// Bytes that would be buffered (of this message and the others
        /// unfinished) once this chunk is taken.
        buffered: usize,
        /// The limit.
        limit: usize,
        /// Chunk stream of the message the chunk belongs to.
        csid: u32,
        /// Its type (from its fmt 0/1 header).
        msg_type: u8,
        /// Its length as its header declares it: the bytes it needs whole.
        length: u32,
        /// Bytes other unfinished messages (other chunk streams) hold.
        others: usize,
        /// The limit crossed is the one the decoders sharing a
        /// [`ReserveBudget`] have together (`buffered` and `limit` are
        /// theirs), not this decoder's own.
        shared: bool,
    },
}

/// A range of missing payload bytes (stream offset, length).
type Filler = (u64, u64);

/// What a hole after the buffered bytes cuts (see
/// [`ChunkDecoder::skip`]).
struct Hole {
    /// Payload bytes the chunk at the buffer's start still needs.
    need: u64,
    /// Payload bytes of its message after that chunk.
    after: u64,
    /// Its chunk stream.
    csid: u32,
    /// The message carries an extended timestamp (a fmt-3 header may or
    /// may not repeat it: the bytes cannot be rebuilt).
    ext: bool,
}

#[derive(Debug, Default)]
struct Partial {
    data: BytesMut,
    /// Capacity reserved up front from the announced length (0: grown).
    reserved: usize,
    length: u32,
    offset: u64,
    fmt: u8,
    chunks: u32,
    /// Filled (missing) bytes in it.
    missing: u64,
    /// Bytes received and given up ([`ChunkDecoder::free_partials`]).
    freed: u64,
}

impl Partial {
    /// Payload bytes received so far (kept or given up).
    fn received(&self) -> usize {
        self.data.len() + self.freed as usize
    }
}

#[derive(Debug, Default)]
struct CsidState {
    has_header: bool,
    timestamp: u32,
    delta: u32,
    length: u32,
    msg_type: u8,
    stream_id: u32,
    /// The last fmt 0/1/2 header carried an extended timestamp ...
    ext: bool,
    /// ... with this value (absolute for fmt 0, delta for fmt 1/2).
    ext_value: u32,
    /// Extended timestamp flag of the message in progress.
    msg_ext: bool,
    /// Fields never seen on this chunk stream (joined mid-way).
    unknown: UnknownFields,
    partial: Option<Partial>,
}

/// Decodes one direction of an RTMP chunk stream (after the handshake).
#[derive(Debug)]
pub struct ChunkDecoder {
    cfg: DecoderConfig,
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    offset: u64,
    chunk_size: u32,
    states: Vec<CsidState>,
    partial_bytes: usize,
    /// `counted(partial_bytes)`: what the shared budget counts of it.
    counted: usize,
    /// `partial_bytes` in `count_lo..=count_hi` is counted as `counted`.
    count_lo: usize,
    count_hi: usize,
    /// Sum of [`Partial::reserved`]: bounded by `max_partial_bytes`.
    reserved: usize,
    events: VecDeque<ChunkEvent>,
    failed: Option<ChunkError>,
    type3_convention: Option<Type3ExtendedTimestamp>,
    /// Filled stream ranges `(offset, len)` not yet consumed, in order.
    filler: VecDeque<(u64, u64)>,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        Self::new(DecoderConfig::default())
    }
}

impl ChunkDecoder {
    /// A decoder with the given settings.
    pub fn new(cfg: DecoderConfig) -> Self {
        Self {
            offset: cfg.start_offset,
            chunk_size: cfg.chunk_size.max(1),
            cfg,
            buf: BytesMut::new(),
            states: Vec::new(),
            partial_bytes: 0,
            counted: 0,
            count_lo: 0,
            count_hi: UNCOUNTED_PARTIAL,
            reserved: 0,
            events: VecDeque::new(),
            failed: None,
            type3_convention: None,
            filler: VecDeque::new(),
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The receive buffer itself, for a driver that reads straight into it
    /// (no copy): bytes appended there are decoded exactly as if
    /// [`ChunkDecoder::push`]ed. Only append; never remove or change bytes.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// The chunk size currently applied to incoming chunks.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Forces the chunk size (e.g. when a capture starts mid-stream).
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.max(1);
    }

    /// Stream offset of the next byte not yet consumed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes pushed but not yet consumed by a complete chunk.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Gives back `n` reserved bytes (to the shared budget too).
    /// Sets the bytes incomplete messages hold, and the shared count (of
    /// what is past [`UNCOUNTED_PARTIAL`]: the usual frame in progress costs
    /// no shared update).
    #[inline]
    fn set_partial(&mut self, n: usize) {
        self.partial_bytes = n;
        // Within the step counted, nothing to do (most chunks).
        if n > self.count_hi || n < self.count_lo {
            self.recount();
        }
    }

    /// Moves the shared count to the step `partial_bytes` is in.
    #[cold]
    #[inline(never)]
    fn recount(&mut self) {
        let (was, now) = (self.counted, counted(self.partial_bytes));
        if let Some(g) = &self.cfg.reserve_budget {
            if now > was {
                g.hold(now - was);
            } else {
                g.unhold(was - now);
            }
        }
        self.counted = now;
        // The partial sizes counted as `now`: count_lo..=count_hi.
        self.count_hi = UNCOUNTED_PARTIAL + now;
        self.count_lo = if now == 0 {
            0
        } else {
            self.count_hi - COUNT_STEP + 1
        };
    }

    /// With `after` bytes in incomplete messages (more than the step
    /// counted now), whether the decoders sharing the budget would hold more
    /// than it allows: (what they would hold, the limit).
    #[cold]
    #[inline(never)]
    fn over_shared(&self, after: usize) -> Option<(usize, usize)> {
        let g = self.cfg.reserve_budget.as_ref()?;
        let all = g.held() + counted(after) - self.counted;
        (all > g.held_limit()).then_some((all, g.held_limit()))
    }

    fn release(&mut self, n: usize) {
        let n = n.min(self.reserved);
        self.reserved -= n;
        if let Some(g) = &self.cfg.reserve_budget {
            g.give(n);
        }
    }

    /// Bytes reserved ahead of their data by this decoder's incomplete messages.
    pub fn reserved_bytes(&self) -> usize {
        self.reserved
    }

    /// Takes the bytes pushed but not yet consumed (after an error: from the
    /// chunk that failed on).
    pub fn take_pending(&mut self) -> Bytes {
        self.buf.split().freeze()
    }

    /// Gives up the bytes of the messages in progress, keeping what is
    /// known of them: a boundary search follows, and [`Self::restart`]
    /// reports them cut, so a decoder waiting on a search holds no payload.
    pub fn free_partials(&mut self) {
        let mut reserved = 0;
        for st in &mut self.states {
            if let Some(p) = &mut st.partial {
                p.freed += p.data.len() as u64;
                p.data = BytesMut::new();
                reserved += std::mem::take(&mut p.reserved);
            }
        }
        self.release(reserved);
        self.set_partial(0);
    }

    /// Bytes held in incomplete messages.
    pub fn partial_bytes(&self) -> usize {
        self.partial_bytes
    }

    /// The peer's treatment of extended timestamps on type-3 continuation
    /// chunks, once seen.
    pub fn type3_convention(&self) -> Option<Type3ExtendedTimestamp> {
        self.type3_convention
    }

    /// The error that stopped decoding, if any.
    pub fn error(&self) -> Option<&ChunkError> {
        self.failed.as_ref()
    }

    /// `len` bytes are missing from the stream after the bytes pushed so far
    /// (a gap in a capture). Call it once [`ChunkDecoder::poll`] has returned
    /// `Ok(None)`.
    ///
    /// When the chunk being read has its header buffered and at least `len`
    /// payload bytes still to come, the bytes are filled, the message is
    /// reported as [`ChunkEvent::Damaged`] when it ends, and decoding goes on
    /// in step ([`Skip::Filled`]). Otherwise the chunk boundaries are lost
    /// ([`Skip::Lost`]): every message in progress is reported damaged, the
    /// buffer is emptied, and the decoder waits for [`ChunkDecoder::restart`].
    pub fn skip(&mut self, len: u64) -> Skip {
        if len == 0 {
            return Skip::Filled;
        }
        if self.failed.is_none()
            && let Some(hole) = self.hole_shape()
        {
            let at = self.offset + self.buf.len() as u64;
            if len <= hole.need {
                self.filler.push_back((at, len));
                self.buf.resize(self.buf.len() + len as usize, 0);
                return Skip::Filled;
            }
            // The hole runs on into the message's next chunks (a snaplen
            // cut a segment that held several): their fmt-3 headers are
            // known (the chunk size, the chunk stream, no extended
            // timestamp to repeat or not), so the bytes are rebuilt with
            // the payload zeroed, as long as the hole ends inside the
            // message. Beyond its end nothing is known.
            if let Some((bytes, fills)) = self.rebuild(at, len, &hole) {
                self.buf.extend_from_slice(&bytes);
                self.filler.extend(fills);
                return Skip::Filled;
            }
        }
        self.lose_sync(len);
        Skip::Lost
    }

    /// The bytes of a hole of `len` at stream offset `at` that covers the
    /// rest of the chunk at the buffer's start and continuation chunks of
    /// its message: (bytes with payload zeroed, the payload ranges missing).
    fn rebuild(&self, at: u64, len: u64, hole: &Hole) -> Option<(Vec<u8>, Vec<Filler>)> {
        if hole.ext || hole.after == 0 || len > hole.need + hole.after * 2 + 1024 {
            return None;
        }
        let header: Vec<u8> = match hole.csid {
            c @ 2..=63 => vec![0xC0 | c as u8],
            c @ 64..=319 => vec![0xC0, (c - 64) as u8],
            c => {
                let v = c - 64;
                vec![0xC1, (v & 0xff) as u8, (v >> 8) as u8]
            }
        };
        let size = u64::from(self.chunk_size.max(1));
        let mut bytes = vec![0u8; hole.need as usize];
        let mut fills = Vec::new();
        if hole.need > 0 {
            fills.push((at, hole.need));
        }
        let mut left = len - hole.need;
        let mut after = hole.after;
        while left > 0 && after > 0 {
            let h = (header.len() as u64).min(left) as usize;
            bytes.extend_from_slice(&header[..h]);
            left -= h as u64;
            if left == 0 {
                break;
            }
            let payload = after.min(size);
            let p = payload.min(left);
            fills.push((at + bytes.len() as u64, p));
            bytes.resize(bytes.len() + p as usize, 0);
            left -= p;
            after -= payload.min(p);
        }
        (left == 0).then_some((bytes, fills))
    }

    /// What a hole right after the buffered bytes would cut: the rest of
    /// the chunk at the buffer's start, when its whole header is buffered.
    fn hole_shape(&self) -> Option<Hole> {
        let bh = decode_basic_header(&self.buf)?;
        let hdr_len = [11usize, 7, 3, 0][usize::from(bh.fmt)];
        let mut pos = bh.len + hdr_len;
        if self.buf.len() < pos {
            return None;
        }
        let st = self.states.get(bh.csid as usize);
        if bh.fmt != 0 && !st.is_some_and(|s| s.has_header) && !(self.cfg.resume && bh.fmt == 1) {
            return None;
        }
        let h = &self.buf[bh.len..pos];
        let ts_field = if bh.fmt < 3 { be24(&h[0..3]) } else { 0 };
        if bh.fmt < 3 && ts_field == EXTENDED_TIMESTAMP_MARK {
            pos += 4;
        } else if bh.fmt == 3 && st.is_some_and(|s| s.ext) {
            // Which convention the peer follows decides where the payload
            // starts: without the 4 bytes buffered it cannot be told.
            let v = st.map_or(0, |s| s.ext_value);
            if self.buf.len() < pos + 4 {
                return None;
            }
            if be32(&self.buf[pos..pos + 4]) == v {
                pos += 4;
            }
        }
        if self.buf.len() < pos {
            return None;
        }
        let in_progress = st.and_then(|s| s.partial.as_ref().map(|p| (p.data.len(), p.length)));
        let (received, msg_len) = match (bh.fmt, in_progress) {
            (3, Some(p)) => p,
            (0 | 1, _) => (0, be24(&h[3..6])),
            _ => (0, st.map_or(0, |s| s.length)),
        };
        let remaining = (msg_len as usize).saturating_sub(received);
        let payload_len = remaining.min(self.chunk_size as usize);
        let have = self.buf.len() - pos;
        let ext = (bh.fmt < 3 && ts_field == EXTENDED_TIMESTAMP_MARK) || st.is_some_and(|s| s.ext);
        Some(Hole {
            need: payload_len.saturating_sub(have) as u64,
            after: (remaining - payload_len) as u64,
            csid: bh.csid,
            ext,
        })
    }

    /// The chunk boundaries are lost after the buffered bytes and `len`
    /// missing ones: report what was in progress, forget the buffer.
    fn lose_sync(&mut self, len: u64) {
        // A message whose first chunk was cut (its header here, its payload
        // not all): reported too, not dropped in silence.
        let cut = self.cut_first_chunk();
        for (csid, st) in self.states.iter_mut().enumerate() {
            // Timestamp deltas of lost headers are lost too: absolute
            // timestamps are unknown until the next fmt-0 header.
            if st.has_header && len > 0 {
                st.unknown.timestamp = true;
            }
            if let Some(p) = st.partial.take() {
                let captured = p.received() as u64;
                self.events.push_back(ChunkEvent::Damaged(DamagedMessage {
                    csid: csid as u32,
                    header: MessageHeader {
                        timestamp: st.timestamp,
                        msg_type: MessageType(st.msg_type),
                        stream_id: st.stream_id,
                    },
                    unknown: st.unknown,
                    offset: p.offset,
                    length: p.length,
                    captured: captured.saturating_sub(p.missing),
                    missing: u64::from(p.length).saturating_sub(captured) + p.missing,
                    complete: false,
                }));
            }
        }
        self.events.extend(cut);
        self.set_partial(0);
        self.release(self.reserved);
        self.filler.clear();
        self.offset += self.buf.len() as u64 + len;
        self.buf.clear();
    }

    /// The message that the chunk at the front of the buffer starts, when
    /// its header is all here and its payload is not: the start of a
    /// message cut off (by a gap or the end of the stream). `None` for a
    /// continuation chunk (its message is reported as a partial), or a
    /// header not all here (nothing of the message is known).
    fn cut_first_chunk(&self) -> Option<ChunkEvent> {
        let bh = decode_basic_header(&self.buf)?;
        let hdr_len = [11usize, 7, 3, 0][usize::from(bh.fmt)];
        let h = self.buf.get(bh.len..bh.len + hdr_len)?;
        let st = self.states.get(bh.csid as usize).filter(|s| s.has_header);
        if bh.fmt != 0 && st.is_none() || bh.fmt == 3 && st.is_some_and(|s| s.partial.is_some()) {
            return None;
        }
        let mut pos = bh.len + hdr_len;
        let ts_field = if bh.fmt < 3 { be24(&h[0..3]) } else { 0 };
        let value = if ts_field == EXTENDED_TIMESTAMP_MARK {
            let v = be32(self.buf.get(pos..pos + 4)?);
            pos += 4;
            v
        } else {
            ts_field
        };
        let (prev_ts, prev_delta) = st.map_or((0, 0), |s| (s.timestamp, s.delta));
        let (timestamp, length, msg_type, stream_id) = match (bh.fmt, st) {
            (0, _) => (
                value,
                be24(&h[3..6]),
                h[6],
                u32::from_le_bytes([h[7], h[8], h[9], h[10]]),
            ),
            (1, Some(s)) => (
                prev_ts.wrapping_add(value),
                be24(&h[3..6]),
                h[6],
                s.stream_id,
            ),
            (2, Some(s)) => (
                prev_ts.wrapping_add(value),
                s.length,
                s.msg_type,
                s.stream_id,
            ),
            (_, Some(s)) => (
                prev_ts.wrapping_add(prev_delta),
                s.length,
                s.msg_type,
                s.stream_id,
            ),
            _ => return None,
        };
        let captured = (self.buf.len() - pos.min(self.buf.len())) as u64;
        if captured >= u64::from(length.min(self.chunk_size)) {
            return None;
        }
        Some(ChunkEvent::Damaged(DamagedMessage {
            csid: bh.csid,
            header: MessageHeader {
                timestamp,
                msg_type: MessageType(msg_type),
                stream_id,
            },
            unknown: st.map_or(UnknownFields::default(), |s| s.unknown),
            offset: self.offset,
            length,
            captured,
            missing: u64::from(length) - captured,
            complete: false,
        }))
    }

    /// Continue at stream `offset`, a chunk boundary found by the caller after
    /// [`Skip::Lost`] (or to drop what is buffered). Header state per chunk
    /// stream is kept, so fmt 1-3 headers decode; messages in progress are
    /// reported damaged. A decoder stopped by an error starts again.
    pub fn restart(&mut self, offset: u64) {
        let in_progress = self.states.iter().any(|s| s.partial.is_some());
        if !self.buf.is_empty() || self.partial_bytes > 0 || in_progress {
            self.lose_sync(0);
        }
        self.buf.clear();
        self.filler.clear();
        self.offset = offset;
        self.failed = None;
        self.cfg.resume = true;
    }

    /// Header state of every chunk stream seen, for a boundary search that
    /// continues this decoder's view ([`super::walk`]).
    pub fn walk_state(&self) -> super::walk::WalkState {
        let mut w = super::walk::WalkState::default();
        for (csid, st) in self.states.iter().enumerate() {
            // Roughly where the stream's clock is (deltas lost in a gap
            // shift it a little; the span allowed is minutes).
            if st.has_header && matches!(st.msg_type, 8 | 9 | 18 | 20) {
                w.near_timestamp = Some(
                    w.near_timestamp
                        .map_or(st.timestamp, |t| t.max(st.timestamp)),
                );
            }
            if st.has_header {
                w.insert(
                    csid as u32,
                    st.length,
                    st.msg_type,
                    st.ext.then_some(st.ext_value),
                );
            }
        }
        w
    }

    /// Next event; `Ok(None)` when more bytes are needed.
    ///
    /// After an error, events decoded before it are still returned first; then
    /// the error is returned on every call.
    pub fn poll(&mut self) -> Result<Option<ChunkEvent>, ChunkError> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Ok(Some(ev));
            }
            if let Some(err) = &self.failed {
                return Err(err.clone());
            }
            match self.decode_chunk() {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => {
                    self.failed = Some(e.clone());
                    if self.events.is_empty() {
                        return Err(e);
                    }
                }
            }
        }
    }

    fn state(&mut self, csid: u32) -> &mut CsidState {
        let i = csid as usize;
        if i >= self.states.len() {
            // csid <= 65599 by construction of the basic header.
            self.states
                .resize_with((i + 1).min(MAX_CSID as usize + 1), Default::default);
        }
        &mut self.states[i]
    }

    /// Decodes one chunk if all of it is buffered. Returns whether it did.
    fn decode_chunk(&mut self) -> Result<bool, ChunkError> {
        let Some(bh) = decode_basic_header(&self.buf) else {
            return Ok(false);
        };
        let chunk_offset = self.offset;
        let fmt = bh.fmt;
        let csid = bh.csid;
        let mut pos = bh.len;
        let hdr_len = [11usize, 7, 3, 0][usize::from(fmt)];
        if self.buf.len() < pos + hdr_len {
            return Ok(false);
        }
        let chunk_size = self.chunk_size;
        let buf = &self.buf[..];
        let h = &buf[pos..pos + hdr_len];
        pos += hdr_len;

        let st_has_header = self.states.get(csid as usize).is_some_and(|s| s.has_header);
        let joined = fmt == 1 && !st_has_header && self.cfg.resume;
        if fmt != 0 && !st_has_header && !joined {
            return Err(ChunkError::NoPreviousHeader {
                offset: chunk_offset,
                fmt,
                csid,
            });
        }
        let (ts_field, length, msg_type, stream_id) = match fmt {
            0 => (
                be24(&h[0..3]),
                Some(be24(&h[3..6])),
                Some(h[6]),
                Some(u32::from_le_bytes([h[7], h[8], h[9], h[10]])),
            ),
            1 => (be24(&h[0..3]), Some(be24(&h[3..6])), Some(h[6]), None),
            2 => (be24(&h[0..3]), None, None, None),
            _ => (0, None, None, None),
        };

        // `states` has an entry for csid unless fmt == 0 on a new csid.
        let (prev_ext, prev_ext_value, in_progress) = match self.states.get(csid as usize) {
            Some(s) => (
                s.ext,
                s.ext_value,
                // (A partial given up by `free_partials` is never continued:
                // a restart reports it first.)
                s.partial.as_ref().map(|p| (p.data.len(), p.length)),
            ),
            None => (false, 0, None),
        };

        // Extended timestamp field.
        let mut ext_present = false;
        let mut value = ts_field;
        let mut type3_seen = None;
        if fmt < 3 {
            if ts_field == EXTENDED_TIMESTAMP_MARK {
                if buf.len() < pos + 4 {
                    return Ok(false);
                }
                value = be32(&buf[pos..pos + 4]);
                pos += 4;
                ext_present = true;
            }
        } else if prev_ext {
            if buf.len() < pos + 4 {
                return Ok(false);
            }
            let present = be32(&buf[pos..pos + 4]) == prev_ext_value;
            if present {
                pos += 4;
                ext_present = true;
            }
            if in_progress.is_some() {
                type3_seen = Some(if present {
                    Type3ExtendedTimestamp::Present
                } else {
                    Type3ExtendedTimestamp::Absent
                });
            }
        }

        // A fmt 0-2 header interrupts a message still in progress on this csid.
        let continuing = fmt == 3 && in_progress.is_some();
        let (received, msg_len) = if continuing {
            in_progress.unwrap_or((0, 0))
        } else {
            let prev_len = self.states.get(csid as usize).map_or(0, |s| s.length);
            (0, length.unwrap_or(prev_len))
        };
        let remaining = (msg_len as usize).saturating_sub(received);
        let payload_len = remaining.min(chunk_size as usize);
        if buf.len() < pos + payload_len {
            return Ok(false);
        }
        let single = !continuing && payload_len == remaining;
        if !single {
            let after = self.partial_bytes + payload_len;
            // The decoders that share a budget, together (only when this
            // one would be counted a step more).
            let shared = if after > self.count_hi {
                self.over_shared(after)
            } else {
                None
            };
            if after > self.cfg.max_partial_bytes || shared.is_some() {
                let prev_type = self.states.get(csid as usize).map_or(0, |s| s.msg_type);
                let (buffered, limit) = shared.unwrap_or((after, self.cfg.max_partial_bytes));
                return Err(ChunkError::TooMuchBuffered {
                    offset: chunk_offset,
                    buffered,
                    limit,
                    csid,
                    msg_type: msg_type.unwrap_or(prev_type),
                    length: msg_len,
                    others: self.partial_bytes.saturating_sub(received),
                    shared: shared.is_some(),
                });
            }
        }

        // The whole chunk is here: commit.
        if let Some(convention) = type3_seen
            && self.type3_convention != Some(convention)
        {
            self.type3_convention = Some(convention);
            self.events.push_back(ChunkEvent::Type3ExtendedTimestamp {
                csid,
                convention,
                offset: chunk_offset,
            });
        }
        if self.cfg.report_chunks {
            self.events.push_back(ChunkEvent::Chunk(ChunkInfo {
                offset: chunk_offset,
                fmt,
                csid,
                header_len: pos,
                payload_len,
                extended_timestamp: ext_present,
            }));
        }
        let mut chunk = self.buf.split_to(pos + payload_len);
        chunk.advance(pos);
        let chunk_end = self.offset + (pos + payload_len) as u64;
        self.offset = chunk_end;
        let mut missing = 0;
        while let Some(&(at, len)) = self.filler.front() {
            if at >= chunk_end {
                break;
            }
            let end = at + len;
            missing += end.min(chunk_end) - at;
            if end <= chunk_end {
                self.filler.pop_front();
            } else {
                self.filler[0] = (chunk_end, end - chunk_end);
            }
        }

        let mut dropped = None;
        // A message is reassembled in a buffer of its announced length when
        // the up-front reservations of all partial messages stay within
        // `max_partial_bytes` (no regrowth copies); past that it grows with
        // what arrives, so an announced length alone never allocates much.
        let budget = self.cfg.max_partial_bytes.saturating_sub(self.reserved);
        let global = self.cfg.reserve_budget.clone();
        let mut reserved_now = 0;
        let mut released = 0;
        let st = self.state(csid);
        if !continuing {
            if let Some(p) = st.partial.take() {
                dropped = Some((p.received(), p.length));
                released += p.reserved;
            }
            if fmt == 0 {
                st.unknown = UnknownFields::default();
            } else if joined {
                st.unknown = UnknownFields {
                    timestamp: true,
                    stream_id: true,
                };
            }
            match fmt {
                0 => {
                    st.timestamp = value;
                    // "If the delta between the first message and the second message is
                    // same as the timestamp of the first message, then a chunk of Type 3
                    // could immediately follow the chunk of Type 0" (§5.3.2.2).
                    st.delta = value;
                }
                1 | 2 => {
                    st.delta = value;
                    st.timestamp = st.timestamp.wrapping_add(value);
                }
                _ => st.timestamp = st.timestamp.wrapping_add(st.delta),
            }
            if fmt < 3 {
                st.ext = ext_present;
                st.ext_value = value;
            }
            st.has_header = true;
            st.msg_ext = if fmt < 3 { ext_present } else { st.ext };
            if let Some(l) = length {
                st.length = l;
            }
            if let Some(t) = msg_type {
                st.msg_type = t;
            }
            if let Some(s) = stream_id {
                st.stream_id = s;
            }
        }
        let header = MessageHeader {
            timestamp: st.timestamp,
            msg_type: MessageType(st.msg_type),
            stream_id: st.stream_id,
        };
        let msg_ext = st.msg_ext;
        let unknown = st.unknown;

        let complete = if single {
            Some(RawMessage {
                csid,
                header,
                payload: chunk.freeze(),
                offset: chunk_offset,
                fmt,
                chunks: 1,
                extended_timestamp: msg_ext,
                unknown,
            })
        } else {
            let p = st.partial.get_or_insert_with(|| {
                let want = msg_len as usize;
                let (cap, reserved) =
                    if want <= budget && global.as_ref().is_none_or(|g| g.take(want)) {
                        reserved_now = want;
                        (want, want)
                    } else {
                        // Grow with what arrives: 65599 chunk streams could each
                        // announce 16 MiB.
                        (want.min(payload_len.saturating_mul(4).max(256)), 0)
                    };
                Partial {
                    data: BytesMut::with_capacity(cap),
                    reserved,
                    length: msg_len,
                    offset: chunk_offset,
                    fmt,
                    chunks: 0,
                    missing: 0,
                    freed: 0,
                }
            });
            p.data.extend_from_slice(&chunk);
            p.chunks += 1;
            p.missing += missing;
            missing = 0;
            if p.data.len() >= p.length as usize {
                st.partial.take().map(|p| {
                    released += p.reserved;
                    missing = p.missing;
                    RawMessage {
                        csid,
                        header,
                        payload: p.data.freeze(),
                        offset: p.offset,
                        fmt: p.fmt,
                        chunks: p.chunks,
                        extended_timestamp: msg_ext,
                        unknown,
                    }
                })
            } else {
                None
            }
        };
        self.reserved += reserved_now;
        self.release(released);
        // What incomplete messages hold after this chunk, counted once.
        let mut partial = self.partial_bytes;
        if let Some((received, length)) = dropped {
            partial = partial.saturating_sub(received);
            self.events.push_back(ChunkEvent::MessageInterrupted {
                csid,
                received,
                length,
                offset: chunk_offset,
            });
        }
        if !single {
            partial += payload_len;
            if let Some(msg) = &complete {
                partial = partial.saturating_sub(msg.payload.len());
            }
        }
        if partial != self.partial_bytes {
            self.set_partial(partial);
        }
        if let Some(msg) = complete {
            if missing > 0 {
                // Filled bytes: the header is right, the body is not whole.
                self.events.push_back(ChunkEvent::Damaged(DamagedMessage {
                    csid,
                    header: msg.header,
                    unknown: msg.unknown,
                    offset: msg.offset,
                    length: msg.payload.len() as u32,
                    captured: msg.payload.len() as u64 - missing,
                    missing,
                    complete: true,
                }));
                return Ok(true);
            }
            let control = match msg.header.msg_type {
                MessageType::SET_CHUNK_SIZE | MessageType::ABORT => Some((
                    msg.header.msg_type,
                    msg.payload.get(..4).map(be32),
                    msg.offset,
                )),
                _ => None,
            };
            self.events.push_back(ChunkEvent::Message(msg));
            if let Some((msg_type, value, offset)) = control {
                self.apply_control(msg_type, value, offset);
            }
        }
        Ok(true)
    }

    /// Applies Set Chunk Size (1) and Abort (2) as a receiver must (§5.4.1, §5.4.2):
    /// from the byte after the message that carried them.
    fn apply_control(&mut self, msg_type: MessageType, value: Option<u32>, offset: u64) {
        match (msg_type, value) {
            (MessageType::SET_CHUNK_SIZE, Some(raw)) if raw & 0x7FFF_FFFF != 0 => {
                // "The first bit of the payload MUST be zero" (§5.4.1): masked off.
                let new = raw & 0x7FFF_FFFF;
                let old = self.chunk_size;
                self.chunk_size = new;
                self.events.push_back(ChunkEvent::ChunkSizeChanged {
                    old,
                    new,
                    raw,
                    offset: self.offset,
                });
            }
            (MessageType::SET_CHUNK_SIZE, raw) => {
                self.events.push_back(ChunkEvent::InvalidChunkSize {
                    raw: raw.unwrap_or(0),
                    offset,
                });
            }
            (MessageType::ABORT, Some(csid)) => {
                let mut discarded = 0;
                if let Some(st) = self.states.get_mut(csid as usize)
                    && let Some(partial) = st.partial.take()
                {
                    discarded = partial.received();
                    self.release(partial.reserved);
                }
                self.set_partial(self.partial_bytes.saturating_sub(discarded));
                self.events.push_back(ChunkEvent::Aborted {
                    csid,
                    discarded,
                    offset,
                });
            }
            _ => {}
        }
    }
}

impl Drop for ChunkDecoder {
    fn drop(&mut self) {
        // What this decoder reserved and held goes back to the shared budget.
        self.release(self.reserved);
        self.set_partial(0);
    }
}
