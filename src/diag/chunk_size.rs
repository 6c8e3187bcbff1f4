//! Which chunk size a sender really used, where a receiver that believes
//! another one first goes wrong, and what that receiver then says (RTMP 1.0
//! §5.3.1 chunk headers, §5.4.1 Set Chunk Size).
//!
//! Two tools over one direction's bytes, starting at a message start whose
//! chunk-stream state is known ([`CsidHeader`]s):
//! - [`infer_chunk_size`] tries candidate sizes with the boundary walk of
//!   [`crate::proto::chunk::walk`] and keeps the one under which the rest
//!   parses cleanly;
//! - [`receive`] models a receiver reading with a chunk size, as nginx-rtmp's
//!   `ngx_rtmp_recv` does (per-csid header state, `max_streams`,
//!   `max_message`, Set Chunk Size applied on the fly), recording every chunk
//!   header it takes and the first thing it refuses. Run under the announced
//!   size and under the real one, the two header lists give the first
//!   divergence ([`divergence`]); run with [`Limits::NGINX`] it predicts
//!   nginx-rtmp's log line.

use crate::proto::chunk::EXTENDED_TIMESTAMP_MARK;
use crate::proto::chunk::walk::{CANDIDATE_CHUNK_SIZES, Start, WalkEnd, WalkState, walk};

/// nginx-rtmp's default `max_streams`.
pub const NGINX_MAX_STREAMS: u32 = 32;
/// nginx-rtmp's default `max_message` (1 MiB).
pub const NGINX_MAX_MESSAGE: u32 = 1 << 20;
/// nginx-rtmp's `NGX_RTMP_MAX_CHUNK_SIZE` (10 MiB).
pub const NGINX_MAX_CHUNK_SIZE: u32 = 10_485_760;

/// The last header a chunk stream had before the bytes walked (no message
/// in progress on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsidHeader {
    /// Chunk stream id.
    pub csid: u32,
    /// Message length of its last fmt 0/1 header.
    pub length: u32,
    /// Message type of its last fmt 0/1 header.
    pub msg_type: u8,
    /// Extended timestamp of its last fmt 0-2 header, if it had one.
    pub ext: Option<u32>,
}

/// What a receiver refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Chunk stream ids at or above this close the session.
    pub max_streams: Option<u32>,
    /// A header announcing a longer message closes the session.
    pub max_message: Option<u32>,
    /// A Set Chunk Size above this closes the session.
    pub max_chunk_size: Option<u32>,
    /// An AMF command/data message whose name does not read closes the session.
    pub amf_name_required: bool,
    /// A type-3 chunk always carries the extended timestamp when the
    /// message's header did (nginx-rtmp with `publish_time_fix on`); else it
    /// is taken only when the 4 bytes repeat the value (as the decoder peeks).
    pub type3_ext_always: bool,
}

impl Limits {
    /// nginx-rtmp 1.2 with its defaults.
    pub const NGINX: Limits = Limits {
        max_streams: Some(NGINX_MAX_STREAMS),
        max_message: Some(NGINX_MAX_MESSAGE),
        max_chunk_size: Some(NGINX_MAX_CHUNK_SIZE),
        amf_name_required: true,
        type3_ext_always: true,
    };
}

/// Why a modelled receiver gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A chunk stream id at or above `max_streams`.
    CsidTooBig {
        /// The csid read.
        csid: u32,
        /// The limit.
        max: u32,
    },
    /// A header announcing a message over `max_message`.
    MessageTooBig {
        /// The length read.
        length: u32,
        /// The limit (what nginx prints).
        max: u32,
    },
    /// A Set Chunk Size over the limit.
    ChunkSizeTooBig {
        /// The size read.
        size: u32,
    },
    /// An AMF message whose name does not read.
    AmfNameUnreadable {
        /// Its message type.
        msg_type: u8,
    },
}

impl Refusal {
    /// nginx-rtmp's error-log line for it (`None`: nginx closes the session
    /// with a debug-level line only).
    pub fn nginx_log(&self) -> Option<String> {
        match *self {
            Refusal::CsidTooBig { csid, max } => {
                Some(format!("RTMP in chunk stream too big: {csid} >= {max}"))
            }
            // nginx prints its max_message here, not the length it read.
            Refusal::MessageTooBig { max, .. } => Some(format!("too big message: {max}")),
            Refusal::ChunkSizeTooBig { size } => Some(format!("too big RTMP chunk size:{size}")),
            Refusal::AmfNameUnreadable { .. } => None,
        }
    }
}

/// One chunk header a modelled receiver took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderAt {
    /// Stream offset of its basic header.
    pub offset: u64,
    /// fmt.
    pub fmt: u8,
    /// Chunk stream id.
    pub csid: u32,
    /// It starts a message (else it continues one).
    pub starts_message: bool,
    /// Message length in force.
    pub length: u32,
    /// Message type in force.
    pub msg_type: u8,
}

/// What a modelled receiver did with the bytes.
#[derive(Debug, Clone, Default)]
pub struct Reception {
    /// Every chunk header taken, in order.
    pub headers: Vec<HeaderAt>,
    /// The first refusal and the stream offset of the header (or message) that caused it.
    pub refusal: Option<(u64, Refusal)>,
    /// Messages completed.
    pub messages: usize,
    /// Stream offset where reading stopped.
    pub end: u64,
}

#[derive(Debug, Clone, Default)]
struct St {
    csid: u32,
    mlen: u32,
    msg_type: u8,
    len: u32,
    ext: bool,
    ext_value: u32,
    /// First payload bytes of the message in progress (AMF name, Set Chunk Size).
    head: Vec<u8>,
}

/// Bytes of a message body kept to judge it (an AMF name fits).
const HEAD_KEEP: usize = 300;

/// Reads `buf` (stream offset `base`) as a receiver with `chunk_size` and
/// the chunk-stream state `state` would, up to `max_headers` chunk headers,
/// the end of the bytes, or the first refusal under `limits`.
pub fn receive(
    buf: &[u8],
    base: u64,
    state: &[CsidHeader],
    chunk_size: u32,
    limits: &Limits,
    max_headers: usize,
) -> Reception {
    let mut sts: Vec<St> = state
        .iter()
        .map(|h| St {
            csid: h.csid,
            mlen: h.length,
            msg_type: h.msg_type,
            ext: h.ext.is_some(),
            ext_value: h.ext.unwrap_or(0),
            ..Default::default()
        })
        .collect();
    let mut chunk = chunk_size.max(1);
    let mut r = Reception::default();
    let mut p = 0usize;
    let n = buf.len();
    let at = |p: usize| base + p as u64;
    while r.headers.len() < max_headers {
        let start = p;
        let Some(&b0) = buf.get(p) else { break };
        let fmt = b0 >> 6;
        let mut csid = u32::from(b0 & 0x3f);
        p += 1;
        match csid {
            0 => {
                let Some(&b1) = buf.get(p) else { break };
                csid = 64 + u32::from(b1);
                p += 1;
            }
            1 => {
                if p + 2 > n {
                    break;
                }
                csid = 64 + u32::from(buf[p]) + 256 * u32::from(buf[p + 1]);
                p += 2;
            }
            _ => {}
        }
        if let Some(max) = limits.max_streams
            && csid >= max
        {
            r.refusal = Some((at(start), Refusal::CsidTooBig { csid, max }));
            p = start;
            break;
        }
        let i = match sts.iter().position(|s| s.csid == csid) {
            Some(i) => i,
            None => {
                sts.push(St {
                    csid,
                    ..Default::default()
                });
                sts.len() - 1
            }
        };
        let hdr = [11usize, 7, 3, 0][usize::from(fmt)];
        if p + hdr > n {
            p = start;
            break;
        }
        let h = &buf[p..p + hdr];
        p += hdr;
        let st = &mut sts[i];
        let mut ext = st.ext;
        if fmt <= 2 {
            ext = be24(&h[0..3]) == EXTENDED_TIMESTAMP_MARK;
            if fmt <= 1 {
                st.mlen = be24(&h[3..6]);
                st.msg_type = h[6];
            }
        }
        if ext {
            if p + 4 > n {
                p = start;
                break;
            }
            let v = be32(&buf[p..p + 4]);
            if fmt <= 2 || limits.type3_ext_always || v == st.ext_value {
                p += 4;
                if fmt <= 2 {
                    st.ext_value = v;
                }
            }
        }
        let starts_message = st.len == 0;
        if starts_message {
            st.ext = ext;
            st.head.clear();
        }
        r.headers.push(HeaderAt {
            offset: at(start),
            fmt,
            csid,
            starts_message,
            length: st.mlen,
            msg_type: st.msg_type,
        });
        if let Some(max) = limits.max_message
            && st.mlen > max
        {
            r.refusal = Some((
                at(start),
                Refusal::MessageTooBig {
                    length: st.mlen,
                    max,
                },
            ));
            break;
        }
        let fsize = st.mlen.wrapping_sub(st.len);
        let take = fsize.min(chunk) as usize;
        if p + take > n {
            p = start;
            r.headers.pop();
            break;
        }
        if st.head.len() < HEAD_KEEP {
            let keep = take.min(HEAD_KEEP - st.head.len());
            st.head.extend_from_slice(&buf[p..p + keep]);
        }
        p += take;
        if fsize > chunk {
            st.len += chunk;
            continue;
        }
        // The message is complete.
        st.len = 0;
        r.messages += 1;
        let t = st.msg_type;
        let body = std::mem::take(&mut st.head);
        match t {
            1 if body.len() >= 4 => {
                let v = be32(&body[..4]);
                if let Some(max) = limits.max_chunk_size
                    && v > max
                {
                    r.refusal = Some((at(start), Refusal::ChunkSizeTooBig { size: v }));
                    break;
                }
                let v = v & 0x7fff_ffff;
                if v > 0 {
                    chunk = v;
                }
            }
            15 | 17 | 18 | 20 if limits.amf_name_required => {
                // AMF3 forms start with a format byte, skipped.
                let b = if matches!(t, 15 | 17) {
                    body.get(1..).unwrap_or_default()
                } else {
                    &body[..]
                };
                // A name longer than the bytes kept is taken as read.
                let ok = b.len() >= 3
                    && b[0] == 0x02
                    && (b.len() >= 3 + be16(&b[1..3]) || body.len() >= HEAD_KEEP);
                if !ok {
                    r.refusal = Some((at(start), Refusal::AmfNameUnreadable { msg_type: t }));
                    break;
                }
            }
            _ => {}
        }
        sts[i].head = body;
        sts[i].head.clear();
    }
    r.end = at(p);
    r
}

/// Where a receiver reading with `announced` parts from a sender chunking
/// at `used`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Divergence {
    /// The first chunk boundary where the two disagree: the smaller of the
    /// two positions at which each expects the next header.
    pub offset: u64,
    /// Where the receiver reads its first wrong header (payload, or a
    /// header it should have skipped).
    pub misparsed_header: u64,
    /// The header of the message in which it happens.
    pub message: HeaderAt,
    /// Sender headers the receiver takes as payload before that.
    pub swallowed_headers: usize,
}

/// Compares the chunk headers a receiver with `announced` takes with the
/// ones the sender wrote at `used`, from a message start with `state`.
pub fn divergence(
    buf: &[u8],
    base: u64,
    state: &[CsidHeader],
    announced: u32,
    used: u32,
) -> Option<Divergence> {
    let none = Limits::default();
    let a = receive(buf, base, state, announced, &none, usize::MAX);
    let u = receive(buf, base, state, used, &none, usize::MAX);
    let i = a
        .headers
        .iter()
        .zip(&u.headers)
        .position(|(x, y)| x.offset != y.offset)?;
    let (x, y) = (a.headers[i].offset, u.headers[i].offset);
    let message = u.headers[..i]
        .iter()
        .rev()
        .find(|h| h.starts_message)
        .copied()?;
    let swallowed = u.headers[i..].iter().take_while(|h| h.offset < x).count();
    Some(Divergence {
        offset: x.min(y),
        misparsed_header: x,
        message,
        swallowed_headers: swallowed,
    })
}

/// The chunk size a sender used, as [`infer_chunk_size`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeInference {
    /// The size under which the bytes parse furthest.
    pub size: u32,
    /// A message longer than `size` was walked: the size is shown, not just
    /// consistent.
    pub proven: bool,
    /// The walk under `size` reached the end of the bytes without fault.
    pub clean_to_end: bool,
    /// Messages walked under `size`.
    pub messages: usize,
    /// Messages walked under the announced size before it failed.
    pub announced_messages: usize,
    /// Other sizes under which the bytes parse exactly as far.
    pub also_consistent: Vec<u32>,
}

/// Infers the chunk size a sender used from `buf` (a message start whose
/// chunk-stream state is `state`): tries `announced`, the common sizes and
/// the sizes the bytes point to (distances from a message's first payload
/// byte to bytes that read as a fmt-3 header of its chunk stream), and keeps
/// the one under which the rest parses cleanly. `None` when the announced
/// size parses as far as any other (no mismatch shown).
pub fn infer_chunk_size(buf: &[u8], state: &[CsidHeader], announced: u32) -> Option<SizeInference> {
    let mut ws = WalkState::default();
    for h in state {
        ws.insert(h.csid, h.length, h.msg_type, h.ext);
    }
    let reach = |size: u32| {
        let mut st = ws.clone();
        let w = walk(buf, size, &mut st, Start::Continue, usize::MAX);
        match w.end {
            WalkEnd::Invalid(at) => (at, false, w.messages),
            WalkEnd::NeedMore(_) | WalkEnd::Limit => (buf.len(), true, w.messages),
        }
    };
    let (a_reach, a_clean, a_msgs) = reach(announced);
    if a_clean {
        return None;
    }
    let mut sizes: Vec<u32> = CANDIDATE_CHUNK_SIZES.to_vec();
    sizes.extend(sizes_pointed_to(buf, state, announced));
    sizes.retain(|&s| s != announced);
    let mut seen = Vec::new();
    sizes.retain(|s| {
        let new = !seen.contains(s);
        seen.push(*s);
        new
    });
    // (size, reach, clean, messages, proven, preference)
    let mut scored: Vec<(u32, usize, bool, usize, bool, usize)> = sizes
        .iter()
        .enumerate()
        .map(|(pref, &s)| {
            let (r, clean, msgs) = reach(s);
            (s, r, clean, msgs, false, pref)
        })
        .collect();
    let best_reach = scored.iter().map(|x| x.1).max()?;
    scored.retain(|x| x.1 == best_reach);
    let none = Limits::default();
    for x in &mut scored {
        let r = receive(&buf[..best_reach], 0, state, x.0, &none, usize::MAX);
        x.4 = r
            .headers
            .iter()
            .any(|h| !h.starts_message && h.length > x.0);
    }
    scored.sort_by_key(|x| (!x.4, x.5));
    let best = scored.first()?;
    // The announced size must fail clearly before the winner does.
    if best.1 <= a_reach || (!best.2 && best.3 < a_msgs + 2) {
        return None;
    }
    Some(SizeInference {
        size: best.0,
        proven: best.4,
        clean_to_end: best.2,
        messages: best.3,
        announced_messages: a_msgs,
        also_consistent: scored[1..].iter().map(|x| x.0).collect(),
    })
}

/// Sizes the bytes point to: read with one chunk per message (a size no
/// sender uses), a message longer than the size its sender used holds the
/// sender's own fmt-3 headers, one byte each, every `size` payload bytes. A
/// byte that reads as a fmt-3 header of the message's chunk stream at
/// distance `d` from its first payload byte makes `d` a candidate when the
/// bytes at `2d + 1`, `3d + 2`, ... (as far as the message goes) are such
/// headers too; sizes with more of them confirmed come first.
fn sizes_pointed_to(buf: &[u8], state: &[CsidHeader], announced: u32) -> Vec<u32> {
    let r = receive(buf, 0, state, 1 << 24, &Limits::default(), 64);
    let mut found: Vec<(usize, u32)> = Vec::new();
    for h in r.headers.iter().filter(|h| h.starts_message && h.fmt <= 1) {
        if h.csid >= 64 || h.length <= announced.min(128) {
            continue;
        }
        let start = h.offset as usize + 1 + [11usize, 7][usize::from(h.fmt)];
        let marker = 0xC0 | h.csid as u8;
        let len = h.length as usize;
        let end = (start + len.min(1 << 17)).min(buf.len());
        let Some(payload) = buf.get(start..end) else {
            continue;
        };
        for d in (1..payload.len()).filter(|&i| payload[i] == marker) {
            // Continuation headers at k*d + (k-1), while payload remains.
            let mut confirmed = 0;
            let mut k = 1;
            let ok = loop {
                if k * d >= len {
                    break true;
                }
                match buf.get(start + k * d + (k - 1)) {
                    Some(&b) if b == marker => confirmed += 1,
                    Some(_) => break false,
                    None => break true,
                }
                k += 1;
            };
            if ok && confirmed > 0 {
                match found.iter_mut().find(|x| x.1 == d as u32) {
                    Some(x) => x.0 = x.0.max(confirmed),
                    None => found.push((confirmed, d as u32)),
                }
            }
        }
        if found.len() >= 64 {
            break;
        }
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    found.into_iter().take(24).map(|x| x.1).collect()
}

#[inline]
fn be16(b: &[u8]) -> usize {
    usize::from(b[0]) << 8 | usize::from(b[1])
}

#[inline]
fn be24(b: &[u8]) -> u32 {
    u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2])
}

#[inline]
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::chunk::{ChunkEncoder, EncoderConfig, MessageHeader};
    use crate::proto::message::MessageType;
    use bytes::BytesMut;

    /// Media messages chunked at `size` (the first header fmt 0 on each csid).
    fn stream(size: u32, lens: &[usize]) -> Vec<u8> {
        let mut enc = ChunkEncoder::new(EncoderConfig::default());
        enc.set_chunk_size(size);
        let mut out = BytesMut::new();
        for (i, &len) in lens.iter().enumerate() {
            let video = i % 2 == 0;
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
    fn infers_the_size_used_and_the_first_divergence() {
        let lens = [300, 200, 5000, 250, 9000, 260, 700, 100, 4000, 90];
        for used in [1000u32, 4096, 60000] {
            let s = stream(used, &lens);
            let inf = infer_chunk_size(&s, &[], 128).expect("a mismatch");
            assert_eq!(inf.size, used, "{inf:?}");
            let d = divergence(&s, 0, &[], 128, used).expect("diverges");
            // The first message (300 B) is where 128 breaks: after the
            // 12-byte header and 128 payload bytes.
            assert_eq!(d.offset, 12 + 128);
            assert_eq!(d.misparsed_header, 12 + 128);
            assert_eq!(d.message.offset, 0);
        }
        // The announced size right: nothing to infer.
        let s = stream(4096, &lens);
        assert_eq!(infer_chunk_size(&s, &[], 4096), None);
    }

    #[test]
    fn a_larger_announced_size_swallows_headers() {
        let lens = [300, 200, 5000];
        let s = stream(128, &lens);
        let d = divergence(&s, 0, &[], 4096, 128).expect("diverges");
        assert_eq!(d.offset, 12 + 128);
        assert_eq!(d.misparsed_header, 12 + 300);
        assert_eq!(d.swallowed_headers, 2);
        let inf = infer_chunk_size(&s, &[], 4096).expect("a mismatch");
        assert_eq!(inf.size, 128);
    }

    #[test]
    fn nginx_refuses_a_big_csid_and_a_big_message() {
        // fmt 0 on csid 40.
        let mut b = vec![0x28];
        b.extend_from_slice(&[0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 16, 0]);
        let r = receive(&b, 100, &[], 128, &Limits::NGINX, usize::MAX);
        let (at, why) = r.refusal.expect("refused");
        assert_eq!(at, 100);
        assert_eq!(
            why.nginx_log().as_deref(),
            Some("RTMP in chunk stream too big: 40 >= 32")
        );
        // A 2 MiB video message on csid 6.
        let b = [0x06, 0, 0, 0, 0x20, 0, 0, 9, 1, 0, 0, 0, 0x17];
        let r = receive(&b, 0, &[], 128, &Limits::NGINX, usize::MAX);
        assert_eq!(
            r.refusal.and_then(|x| x.1.nginx_log()).as_deref(),
            Some("too big message: 1048576")
        );
        // Without limits the same bytes are just waiting for more.
        let r = receive(&b, 0, &[], 128, &Limits::default(), usize::MAX);
        assert_eq!(r.refusal, None);
    }
}
