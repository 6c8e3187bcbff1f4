//! Finding chunk boundaries without a full decode (RTMP 1.0 §5.3.1): walks
//! chunk headers over a byte range, skipping payloads, and says how far the
//! headers hold together under a chunk size.
//!
//! This is the primitive behind joining a stream mid-way (a capture started
//! late), finding the way back after bytes went missing (a snaplen cut, a
//! lost segment), and inferring the chunk size a sender really used (try
//! candidates, keep the one under which the rest parses cleanly). It copies
//! nothing and allocates only its small per-chunk-stream table, so trying
//! every position of a window costs little: most positions fail at their
//! first header.
//!
//! A header holds together when its chunk stream id is small or already in
//! use, fmt 1-3 headers continue what their chunk stream had, a fmt 0-2
//! header does not interrupt a message in progress, and message types,
//! lengths, stream ids and the first payload byte are what real peers send.

use super::header::decode_basic_header;
use super::{EXTENDED_TIMESTAMP_MARK, be24, be32};

/// Largest chunk stream id a new chunk stream may have while searching (the
/// one- and two-byte basic header forms; real peers use small ids).
pub const MAX_PLAUSIBLE_CSID: u32 = 319;

/// Largest message stream id a fmt-0 header may carry while searching.
pub const MAX_PLAUSIBLE_STREAM_ID: u32 = 255;

/// Chunk sizes tried first when the size in force is unknown.
pub const CANDIDATE_CHUNK_SIZES: [u32; 11] = [
    128, 4096, 60000, 65536, 1024, 8192, 256, 512, 2048, 16384, 32768,
];

#[derive(Debug, Clone, Copy)]
struct Csid {
    csid: u32,
    length: u32,
    msg_type: u8,
    /// Extended timestamp value of the last fmt 0-2 header, if it had one.
    ext: Option<u32>,
    /// Bytes of the message in progress still to come (0: none in progress).
    remaining: u32,
    /// Messages of other chunk streams completed since this one's last
    /// chunk, while its message is in progress.
    idle: u32,
}

/// Messages of other chunk streams that may complete between two chunks of
/// one message. Senders send a message's chunks together, or interleave a
/// few small ones (audio between a key frame's chunks); a "message" that
/// waits longer was read from payload bytes.
pub const MAX_INTERLEAVED: u32 = 16;

/// What the walk knows of each chunk stream: the last header's length and
/// type, and the message in progress.
#[derive(Debug, Default)]
pub struct WalkState {
    csids: Vec<Csid>,
    /// A timestamp the stream had reached (continuing known state): a fmt-0
    /// header must carry 0 or one within [`TIMESTAMP_SPAN`] of it.
    pub near_timestamp: Option<u32>,
}

impl Clone for WalkState {
    fn clone(&self) -> Self {
        WalkState {
            csids: self.csids.clone(),
            near_timestamp: self.near_timestamp,
        }
    }

    /// Reuses the table's allocation: a search copies the state once per
    /// position and chunk size tried.
    fn clone_from(&mut self, source: &Self) {
        self.csids.clone_from(&source.csids);
        self.near_timestamp = source.near_timestamp;
    }
}

/// How far (ms) a fmt-0 timestamp may lie from the stream's known time when
/// continuing after a gap: ten minutes.
pub const TIMESTAMP_SPAN: u32 = 600_000;

impl WalkState {
    /// Records that `csid` had a header with this length, type and extended
    /// timestamp value, and no message in progress.
    pub fn insert(&mut self, csid: u32, length: u32, msg_type: u8, ext: Option<u32>) {
        let c = Csid {
            csid,
            length,
            msg_type,
            ext,
            remaining: 0,
            idle: 0,
        };
        match self.csids.iter_mut().find(|x| x.csid == csid) {
            Some(x) => *x = c,
            None => self.csids.push(c),
        }
    }

    /// The most messages of other chunk streams completed since a message
    /// still in progress had its last chunk (0 when none waits).
    pub fn stalest(&self) -> u32 {
        self.csids
            .iter()
            .filter(|c| c.remaining > 0)
            .map(|c| c.idle)
            .max()
            .unwrap_or(0)
    }

    /// Whether `csid` had a header.
    pub fn knows(&self, csid: u32) -> bool {
        self.csids.iter().any(|x| x.csid == csid)
    }

    fn get(&mut self, csid: u32) -> Option<&mut Csid> {
        self.csids.iter_mut().find(|x| x.csid == csid)
    }
}

/// How a walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkEnd {
    /// A header at this position (relative to the walk's start) does not
    /// hold together.
    Invalid(usize),
    /// The bytes ran out at this position (a header or payload continues
    /// past the end).
    NeedMore(usize),
    /// `max_chunks` chunks held together.
    Limit,
}

/// Result of [`walk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    /// Chunk headers that held together.
    pub chunks: usize,
    /// Messages whose last chunk was walked.
    pub messages: usize,
    /// Where and why the walk stopped.
    pub end: WalkEnd,
}

impl Walk {
    /// Whether the walk found nothing wrong.
    pub fn clean(&self) -> bool {
        !matches!(self.end, WalkEnd::Invalid(_))
    }
}

/// How strictly the first header is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A stream joined mid-way: the first header must be fmt 0 or fmt 1 (they
    /// say the message's length and type), and fmt 1 may start a chunk
    /// stream not seen before.
    Join,
    /// Continuing known state: fmt 0, 1 and 2 may start; fmt 3 only
    /// continues a message in progress (after a gap, a fmt-3 chunk could as
    /// well be the middle of a message whose first chunk was lost).
    Continue,
}

/// Whether a message of type `t` may have length `len` (what real peers send).
pub fn plausible_length(t: u8, len: u32) -> bool {
    match t {
        1 | 2 | 3 | 5 => len == 4,
        4 => (6..=10).contains(&len),
        6 => len == 5,
        8 | 9 => (1..=16 << 20).contains(&len),
        15..=20 => (1..=1 << 20).contains(&len),
        22 => (11..=16 << 20).contains(&len),
        _ => false,
    }
}

/// Whether the first payload byte `b` can start a message of type `t`.
fn plausible_first_byte(t: u8, b: u8) -> bool {
    match t {
        // AMF0 command and data messages start with a string (the name).
        18 | 20 => b == 0x02,
        // AMF3 messages: a format byte 0, then the AMF0 name string.
        15 | 17 => b == 0x00 || b == 0x02,
        // Video: frame type 1-5 in the high nibble, or an E-RTMP ex-header.
        9 => b & 0x80 != 0 || (1..=5).contains(&(b >> 4)),
        // Audio: any sound format except the reserved 12 and 13... E-RTMP 9.
        8 => !matches!(b >> 4, 12 | 13),
        // Set Chunk Size: top bit 0.
        1 => b & 0x80 == 0,
        // Aggregate: the first sub-tag's type.
        22 => matches!(b, 8 | 9 | 18),
        _ => true,
    }
}

/// Walks chunk headers over `buf` under `chunk_size`, starting from `state`
/// (which it updates), until something does not hold together, the bytes
/// run out, or `max_chunks` chunks held together.
pub fn walk(
    buf: &[u8],
    chunk_size: u32,
    state: &mut WalkState,
    start: Start,
    max_chunks: usize,
) -> Walk {
    let chunk_size = chunk_size.max(1) as usize;
    let mut pos = 0;
    let mut w = Walk {
        chunks: 0,
        messages: 0,
        end: WalkEnd::Limit,
    };
    while w.chunks < max_chunks {
        let at = pos;
        let Some(bh) = decode_basic_header(&buf[pos..]) else {
            w.end = WalkEnd::NeedMore(at);
            return w;
        };
        let first = w.chunks == 0;
        let known = state.knows(bh.csid);
        if !known && bh.csid > MAX_PLAUSIBLE_CSID {
            w.end = WalkEnd::Invalid(at);
            return w;
        }
        let hdr_len = [11usize, 7, 3, 0][usize::from(bh.fmt)];
        pos += bh.len;
        if buf.len() < pos + hdr_len {
            w.end = WalkEnd::NeedMore(at);
            return w;
        }
        let h = &buf[pos..pos + hdr_len];
        pos += hdr_len;
        let in_progress = state.get(bh.csid).map_or(0, |c| c.remaining);
        let ok = match bh.fmt {
            0 => {
                let t = h[6];
                let len = be24(&h[3..6]);
                let sid = u32::from_le_bytes([h[7], h[8], h[9], h[10]]);
                let control = (1..=6).contains(&t);
                let ts = be24(&h[0..3]);
                let ts_ok = match state.near_timestamp {
                    Some(near) if ts != 0 && ts != EXTENDED_TIMESTAMP_MARK => {
                        ts.abs_diff(near) <= TIMESTAMP_SPAN
                    }
                    _ => true,
                };
                ts_ok
                    && plausible_length(t, len)
                    && sid <= MAX_PLAUSIBLE_STREAM_ID
                    && in_progress == 0
                    && !(control && sid != 0)
            }
            1 => {
                let t = h[6];
                let len = be24(&h[3..6]);
                // It says the message's length and type: it may start a
                // walk on a chunk stream not seen (its fmt-0 header lost
                // with the bytes before; the decoder resumes such streams
                // with the stream id unknown).
                plausible_length(t, len) && in_progress == 0
            }
            2 => known && in_progress == 0 && !first,
            _ => known && !(first && (start == Start::Join || in_progress == 0)),
        };
        if !ok {
            w.end = WalkEnd::Invalid(at);
            return w;
        }
        // Extended timestamp: fmt 0-2 carry it when the field is 0xFFFFFF; a
        // fmt-3 chunk may repeat it (peeked, as the decoder does).
        let ts_field = if bh.fmt < 3 { be24(&h[0..3]) } else { 0 };
        let mut ext = None;
        if bh.fmt < 3 && ts_field == EXTENDED_TIMESTAMP_MARK {
            if buf.len() < pos + 4 {
                w.end = WalkEnd::NeedMore(at);
                return w;
            }
            ext = Some(be32(&buf[pos..pos + 4]));
            pos += 4;
        } else if bh.fmt == 3
            && let Some(v) = state.get(bh.csid).and_then(|c| c.ext)
        {
            if buf.len() < pos + 4 {
                w.end = WalkEnd::NeedMore(at);
                return w;
            }
            if be32(&buf[pos..pos + 4]) == v {
                pos += 4;
            }
        }
        // Commit the header to the state.
        if !known {
            state.csids.push(Csid {
                csid: bh.csid,
                length: 0,
                msg_type: 0,
                ext: None,
                remaining: 0,
                idle: 0,
            });
        }
        let Some(c) = state.get(bh.csid) else {
            w.end = WalkEnd::Invalid(at);
            return w;
        };
        if bh.fmt < 2 {
            c.length = be24(&h[3..6]);
            c.msg_type = h[6];
        }
        if bh.fmt < 3 {
            c.ext = ext;
        }
        let new_message = c.remaining == 0;
        if new_message {
            c.remaining = c.length;
        }
        let payload = (c.remaining as usize).min(chunk_size);
        if new_message && payload > 0 {
            match buf.get(pos) {
                Some(&b) if plausible_first_byte(c.msg_type, b) => {}
                Some(_) => {
                    w.end = WalkEnd::Invalid(at);
                    return w;
                }
                None => {
                    w.chunks += 1;
                    w.end = WalkEnd::NeedMore(pos);
                    return w;
                }
            }
        }
        c.remaining -= payload as u32;
        c.idle = 0;
        if c.remaining == 0 {
            w.messages += 1;
            let done = bh.csid;
            let mut stale = false;
            for o in state
                .csids
                .iter_mut()
                .filter(|o| o.csid != done && o.remaining > 0)
            {
                o.idle += 1;
                stale |= o.idle > MAX_INTERLEAVED;
            }
            if stale {
                w.end = WalkEnd::Invalid(at);
                return w;
            }
        }
        w.chunks += 1;
        pos += payload;
        if pos > buf.len() {
            w.end = WalkEnd::NeedMore(at);
            return w;
        }
    }
    w
}

/// A chunk boundary found by [`find_boundary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundary {
    /// Position in the searched bytes.
    pub pos: usize,
    /// Chunk size under which the headers hold together.
    pub chunk_size: u32,
    /// Chunk headers that held together from there.
    pub chunks: usize,
    /// Messages completed from there.
    pub messages: usize,
}

/// Outcome of a boundary search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    /// Found.
    Found(Boundary),
    /// No boundary yet; some positions (kept in the caller's pending list)
    /// need more bytes to decide.
    Undecided,
    /// No position holds a boundary.
    NotFound,
}

/// Most positions kept waiting for more bytes; past it the oldest is dropped.
pub const MAX_PENDING: usize = 256;

/// Settings of [`find_boundary`].
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// Chunk sizes to try, in order of preference (one when it is known).
    pub sizes: Vec<u32>,
    /// Also try sizes the bytes point to: the distance from a header to a
    /// fmt-3 header of the same chunk stream inside its message.
    pub infer_sizes: bool,
    /// How the first header is judged.
    pub start: Start,
    /// Chunks that must hold together for a boundary to count.
    pub min_chunks: usize,
    /// Messages that must complete for a boundary to count.
    pub min_messages: usize,
    /// The bytes end here for good (a gap or the end follows): a clean walk
    /// that ran out of bytes counts if it had at least one complete chunk
    /// header; at position 0 (where a segment starts after a gap) that is
    /// enough, elsewhere `min_messages` must still hold.
    pub final_bytes: bool,
    /// New positions are tried from here (the ones before were tried, and
    /// those that could not be decided are in the pending list).
    pub from: usize,
}

impl SearchOptions {
    /// Joining a stream mid-way with nothing known: the candidate sizes and
    /// the sizes the bytes point to, a fmt 0/1 start, six chunks and three
    /// messages that hold together, the bytes taken as final.
    pub fn join() -> SearchOptions {
        SearchOptions {
            sizes: CANDIDATE_CHUNK_SIZES.to_vec(),
            infer_sizes: true,
            start: Start::Join,
            min_chunks: 6,
            min_messages: 3,
            final_bytes: true,
            from: 0,
        }
    }
}

enum Verdict {
    Found(Boundary),
    Undecided,
    /// A boundary under several chunk sizes that the bytes so far cannot
    /// tell apart: the search waits on it (no later position is better).
    Tied,
    Invalid,
}

/// Judges one position under every candidate size.
fn judge(
    buf: &[u8],
    pos: usize,
    state: &WalkState,
    scratch: &mut WalkState,
    sizes: &mut Vec<u32>,
    opts: &SearchOptions,
) -> Verdict {
    // A stream joined mid-way starts at a fmt 0 or fmt 1 header.
    if opts.start == Start::Join && buf[pos] >> 6 > 1 {
        return Verdict::Invalid;
    }
    if opts.infer_sizes {
        sizes.truncate(opts.sizes.len());
        infer_from(buf, pos, sizes);
    }
    let mut best: Option<Boundary> = None;
    let mut undecided = false;
    // Sizes accepted with as many headers as the best: every message
    // there fitted all of them, so the stretch cannot tell them
    // apart (a stream chunked at 65536 whose messages so far were under
    // 4096 walks as cleanly at 4096). They are told apart further on.
    let mut tied: Vec<(u32, usize)> = Vec::new();
    for &size in sizes.iter() {
        scratch.clone_from(state);
        let w = walk(&buf[pos..], size, scratch, opts.start, 64);
        // The first header, and its first payload byte, are judged the
        // same under every chunk size (the size only says where the next
        // header is): where none held, no size will. Most positions of
        // bytes that are not chunks end here, after one walk.
        if w.chunks == 0 {
            return match w.end {
                WalkEnd::NeedMore(_) if !opts.final_bytes => Verdict::Undecided,
                _ => Verdict::Invalid,
            };
        }
        // Evidence that ran out while a message waits for its next chunk
        // behind others is not enough yet: a header read from payload
        // bytes starts a "message" whose next chunk never comes.
        let enough = w.chunks >= opts.min_chunks
            && w.messages >= opts.min_messages
            && scratch.stalest() == 0;
        let accept = match w.end {
            WalkEnd::Invalid(_) => false,
            WalkEnd::Limit => true,
            WalkEnd::NeedMore(_) if enough => true,
            WalkEnd::NeedMore(_) if opts.final_bytes => {
                w.chunks >= 1 && (pos == 0 || w.messages >= opts.min_messages)
            }
            WalkEnd::NeedMore(_) => {
                undecided = true;
                false
            }
        };
        if accept {
            tied.push((size, w.chunks));
        }
        if accept && best.is_none_or(|b| w.chunks > b.chunks) {
            best = Some(Boundary {
                pos,
                chunk_size: size,
                chunks: w.chunks,
                messages: w.messages,
            });
        }
    }
    if let Some(b) = best {
        tied.retain(|&(_, chunks)| chunks == b.chunks);
    }
    if tied.len() > 1
        && let Some(b) = best.as_mut()
    {
        // Walk the tied sizes further: a message longer than one of them
        // (a key frame) shows which holds. One that still cannot be told
        // apart for lack of bytes waits for more, unless these are the
        // last; one that holds over the long stretch too is as good as
        // any for what the stream sends (an audio-only stream).
        let mut far: Vec<(u32, Walk)> = tied
            .iter()
            .map(|&(size, _)| {
                scratch.clone_from(state);
                (
                    size,
                    walk(&buf[pos..], size, scratch, opts.start, DISAMBIGUATE_CHUNKS),
                )
            })
            .collect();
        // A size still walking when the bytes ran out may yet go astray
        // or hold: while two are, or one is but has walked less than one
        // that ended, it waits. (Counting headers of walks cut at
        // different places favours a wrong size that reads a header from
        // the middle of a message the right one cannot finish yet.) Then
        // the size whose headers held together the longest is the one: a
        // wrong one goes astray (a fmt-3 header read as payload, a length
        // read from payload), while the right one may still end at
        // something the walk finds implausible far on.
        let open = |w: &Walk| matches!(w.end, WalkEnd::NeedMore(_));
        let alive: Vec<usize> = far
            .iter()
            .filter(|(_, w)| open(w))
            .map(|(_, w)| w.chunks)
            .collect();
        let done = far
            .iter()
            .filter(|(_, w)| !open(w))
            .map(|(_, w)| w.chunks)
            .max();
        let settled = match alive.as_slice() {
            [] => true,
            [one] => done.is_none_or(|d| *one >= d),
            _ => false,
        };
        if !settled && !opts.final_bytes {
            return Verdict::Tied;
        }
        let most = far.iter().map(|(_, w)| w.chunks).max().unwrap_or(0);
        far.retain(|(_, w)| w.chunks == most);
        if let Some((size, w)) = far.first() {
            b.chunk_size = *size;
            b.chunks = w.chunks;
            b.messages = w.messages;
        }
    }
    match best {
        Some(b) => Verdict::Found(b),
        None if undecided => Verdict::Undecided,
        None => Verdict::Invalid,
    }
}

/// Headers walked to tell apart chunk sizes the first stretch could not.
pub const DISAMBIGUATE_CHUNKS: usize = 512;

/// Looks for a position in `buf` where chunk headers hold together, starting
/// each walk from `state`: first the `pending` positions (those that needed
/// more bytes before), then every position from `opts.from`. Positions that
/// still need more bytes are left in `pending` (at most [`MAX_PENDING`]), so
/// each position is judged once plus once per arrival while it waits: the
/// work stays linear in the bytes searched.
pub fn find_boundary(
    buf: &[u8],
    state: &WalkState,
    opts: &SearchOptions,
    pending: &mut Vec<usize>,
) -> Search {
    let mut sizes: Vec<u32> = opts.sizes.clone();
    let mut scratch = WalkState::default();
    let mut i = 0;
    while i < pending.len() {
        let pos = pending[i];
        if pos >= buf.len() {
            pending.remove(i);
            continue;
        }
        match judge(buf, pos, state, &mut scratch, &mut sizes, opts) {
            Verdict::Found(b) => {
                pending.clear();
                return Search::Found(b);
            }
            // A boundary waits to be told its chunk size: nothing after it
            // is judged meanwhile (nor can push it out of `pending`).
            Verdict::Tied => return Search::Undecided,
            Verdict::Undecided => i += 1,
            Verdict::Invalid => {
                pending.remove(i);
            }
        }
    }
    for pos in opts.from..buf.len() {
        match judge(buf, pos, state, &mut scratch, &mut sizes, opts) {
            Verdict::Found(b) => {
                pending.clear();
                return Search::Found(b);
            }
            Verdict::Tied => {
                if pending.len() >= MAX_PENDING {
                    pending.remove(0);
                }
                pending.push(pos);
                return Search::Undecided;
            }
            Verdict::Undecided => {
                if pending.len() >= MAX_PENDING {
                    pending.remove(0);
                }
                pending.push(pos);
            }
            Verdict::Invalid => {}
        }
    }
    if pending.is_empty() {
        Search::NotFound
    } else {
        Search::Undecided
    }
}

/// Adds the chunk sizes the bytes at `pos` point to: for a fmt 0/1 header
/// announcing a message longer than the smallest size, the distances to the
/// first bytes inside the message that read as a fmt-3 header of the same
/// chunk stream.
fn infer_from(buf: &[u8], pos: usize, sizes: &mut Vec<u32>) {
    let Some(bh) = decode_basic_header(&buf[pos..]) else {
        return;
    };
    if bh.fmt > 1 || bh.len != 1 {
        return;
    }
    let start = pos + bh.len + [11usize, 7][usize::from(bh.fmt)];
    let Some(h) = buf.get(pos + bh.len..start) else {
        return;
    };
    let len = be24(&h[3..6]) as usize;
    if !plausible_length(h[6], len as u32) || len <= 64 {
        return;
    }
    // Only where a message can start: its first payload byte must fit.
    if buf
        .get(start)
        .is_none_or(|&b| !plausible_first_byte(h[6], b))
    {
        return;
    }
    let marker = 0xC0 | bh.csid as u8;
    // Sizes from 64 to 2 KiB (larger common ones are candidates anyway).
    let end = (start + len.min(1 << 11)).min(buf.len());
    let mut found = 0;
    for (i, &b) in buf[start..end].iter().enumerate().skip(64) {
        if b == marker && !sizes.contains(&(i as u32)) {
            sizes.push(i as u32);
            found += 1;
            if found == 4 {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::chunk::{ChunkEncoder, EncoderConfig, MessageHeader};
    use crate::proto::message::MessageType;
    use bytes::BytesMut;

    /// A stream of audio/video messages chunked at `size` (fmt 0 first, then
    /// fmt 1 as peers do).
    fn stream(size: u32, n: usize) -> Vec<u8> {
        let mut enc = ChunkEncoder::new(EncoderConfig::default());
        enc.set_chunk_size(size);
        let mut out = BytesMut::new();
        for i in 0..n {
            let video = i % 3 != 0;
            // Lengths vary, so every new message has a fmt-1 header (a fmt-2/3
            // one on a chunk stream never seen cannot be walked).
            let len = if video {
                300 + (i * 137) % 5000
            } else {
                200 + i
            };
            let mut body = vec![(i % 251) as u8; len];
            body[0] = if video { 0x27 } else { 0xaf };
            let h = MessageHeader {
                timestamp: i as u32 * 20,
                msg_type: MessageType(if video { 9 } else { 8 }),
                stream_id: 1,
            };
            enc.encode(if video { 6 } else { 4 }, &h, &body, &mut out);
        }
        out.to_vec()
    }

    #[test]
    fn the_right_size_holds_and_wrong_ones_fail() {
        for size in [128u32, 1000, 4096] {
            let s = stream(size, 40);
            let mut st = WalkState::default();
            let w = walk(&s, size, &mut st, Start::Join, usize::MAX);
            assert!(w.clean(), "{size}: {w:?}");
            assert_eq!(w.messages, 40);
            for wrong in [129u32, 3000, 60000] {
                let mut st = WalkState::default();
                let w = walk(&s, wrong, &mut st, Start::Join, usize::MAX);
                assert!(!w.clean() || w.messages < 40, "{size} read as {wrong}");
            }
        }
    }

    #[test]
    fn joins_mid_message_and_infers_the_size() {
        for size in [128u32, 1000, 4096] {
            let s = stream(size, 60);
            // Every cut point in the first few kilobytes.
            for cut in (1..6000).step_by(97) {
                let opts = SearchOptions::join();
                match find_boundary(&s[cut..], &WalkState::default(), &opts, &mut Vec::new()) {
                    Search::Found(b) => {
                        assert_eq!(b.chunk_size, size, "cut {cut}");
                        // The boundary is a real one: walking the whole rest is clean.
                        let mut st = WalkState::default();
                        let w = walk(&s[cut + b.pos..], size, &mut st, Start::Join, usize::MAX);
                        assert!(w.clean(), "cut {cut} at {}", b.pos);
                    }
                    other => panic!("size {size} cut {cut}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn random_bytes_find_little_and_never_panic() {
        let mut x = 0x1234_5678u32;
        let buf: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let opts = SearchOptions::join();
        let _ = find_boundary(&buf, &WalkState::default(), &opts, &mut Vec::new());
        for cut in 0..buf.len().min(3000) {
            let mut st = WalkState::default();
            let _ = walk(&buf[cut..], 128, &mut st, Start::Continue, 64);
        }
    }
}
