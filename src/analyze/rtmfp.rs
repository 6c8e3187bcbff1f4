//! RTMFP over UDP, the second producer of the analyzer's record stream
//! (RFC 7016, RFC 7425). Any UDP datagram the default key, a key of the
//! `--keylog` or the plain profile opens is RTMFP, on any port; once an
//! address pair is known as RTMFP, datagrams no key opens are reported as
//! sealed (session id and size only). Sessions are keyed by their address
//! pair; the initiator is the side that sent IHello/IIKeying or mode-1
//! packets.
//!
//! User data of flows whose metadata starts with "TC" (RTMP in RTMFP, RFC
//! 7425 §5.1) is reassembled per flow (sequence order, fragments, forward
//! sequence numbers, bounded buffers) and every message is decoded with the
//! RTMP core and emitted as a [`RecordKind::Message`] record with the flow
//! id as its `csid`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::{Record, RecordKind};
use crate::capture::tcp::Dir;
use crate::capture::{Timestamp, Udp};
use crate::proto::chunk::{MessageHeader, RawMessage, UnknownFields};
use crate::proto::message::{Message, MessageType};
use crate::proto::rtmfp::chunk::{ChunkBody, UserData, ty};
use crate::proto::rtmfp::crypto::unscramble_sid;
use crate::proto::rtmfp::datagram::{Opened, open};
use crate::proto::rtmfp::keylog::KeyLog;

/// One RTMFP datagram as captured.
#[derive(Debug, Clone)]
pub struct RtmfpPacket {
    /// Source.
    pub src: SocketAddr,
    /// Destination.
    pub dst: SocketAddr,
    /// `src` and `dst` as text (made once per session).
    pub names: Arc<(String, String)>,
    /// IP ECN codepoint.
    pub ecn: u8,
    /// IP DSCP.
    pub dscp: u8,
    /// UDP payload length on the wire.
    pub udp_len: u32,
    /// Unscrambled session id.
    pub sid: [u8; 4],
    /// The opened packet; `None` when no key opened it (sealed).
    pub opened: Option<Opened>,
    /// User Data chunks of this packet whose sequence number had been seen
    /// before (retransmissions).
    pub retransmitted: u32,
    /// The capture cut the datagram (snaplen): it is not opened.
    pub truncated: bool,
    /// The key log has keys for this packet's session and direction, and
    /// none opened it (HMAC or checksum does not verify: damaged, or the
    /// wrong keys).
    pub key_failed: bool,
    /// A hash of the payload (length, first 32 and last 16 bytes): equal
    /// on two legs of a relayed session, which never changes payloads.
    pub fingerprint: u64,
    /// The same datagram (by its fingerprint) came in this session and
    /// direction within the last `DUPLICATE_WINDOW` (256) datagrams: a capture
    /// or network duplicate (a retransmission is a new datagram). Its
    /// chunks are not taken again; counts and ECN leave it out.
    pub duplicate: bool,
}

/// Datagrams of each session direction remembered to tell duplicates.
pub const DUPLICATE_WINDOW: usize = 256;

/// The [`RtmfpPacket::fingerprint`] of a payload.
pub fn fingerprint(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ b.len() as u64;
    let head = &b[..b.len().min(32)];
    let tail = &b[b.len().saturating_sub(16)..];
    for &x in head.iter().chain(tail) {
        h = (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl RtmfpPacket {
    /// The decoded packet, if it was opened and parsed.
    pub fn packet(&self) -> Option<&crate::proto::rtmfp::chunk::Packet> {
        self.opened.as_ref()?.packet.as_ref().ok()
    }
}

/// Sessions tracked at once.
pub const MAX_SESSIONS: usize = 65_536;
/// Out-of-order user data chunks held per flow.
const MAX_PENDING: usize = 512;
/// Largest reassembled message.
const MAX_MESSAGE: usize = 16 << 20;
/// Flows tracked per session.
const MAX_FLOWS: usize = 4096;
/// Bytes held for reassembly over all flows of all sessions; past it the
/// flow that would grow drops what it holds (its messages are lost).
pub const MAX_HELD: usize = 64 << 20;

#[derive(Default)]
struct Flow {
    metadata: Option<Vec<u8>>,
    next: Option<u64>,
    pending: BTreeMap<u64, (u8, Vec<u8>)>,
    pending_bytes: usize,
    partial: Option<Vec<u8>>,
    /// Every sequence number up to this one was seen.
    seen_upto: Option<u64>,
    /// Sequence numbers seen above `seen_upto`.
    seen: std::collections::BTreeSet<u64>,
}

impl Flow {
    /// Notes a sequence number; true when it was seen before.
    fn seen(&mut self, seq: u64, fsn: Option<u64>) -> bool {
        // In order with nothing above: no set to touch.
        if let Some(u) = self.seen_upto.as_mut()
            && self.seen.is_empty()
            && Some(seq) == u.checked_add(1)
        {
            *u = seq;
            return false;
        }
        let upto = self
            .seen_upto
            .get_or_insert(fsn.unwrap_or(seq.saturating_sub(1)));
        if let Some(f) = fsn.map(|f| f.min(seq.saturating_sub(1)))
            && f > *upto
        {
            *upto = f;
            self.seen.retain(|&k| k > f);
        }
        if seq <= *upto || !self.seen.insert(seq) {
            return true;
        }
        while let Some(n) = upto.checked_add(1)
            && self.seen.remove(&n)
        {
            *upto = n;
        }
        if self.seen.len() > 4096 {
            // A hole that never fills: give it up.
            if let Some(&k) = self.seen.iter().next() {
                *upto = k;
                self.seen.remove(&k);
            }
        }
        false
    }
}

struct Session {
    id: u64,
    name: Arc<str>,
    initiator: SocketAddr,
    /// Address texts of c2s and s2c packets.
    names: [Arc<(String, String)>; 2],
    /// A session packet (mode 1 or 2) was seen.
    opened: bool,
    flows: HashMap<(u8, u64), Flow, crate::proto::rtmfp::vlu::FnvBuild>,
    /// Fingerprints of the last datagrams of each direction.
    recent: [std::collections::VecDeque<u64>; 2],
}

/// The RTMFP half of the analyzer.
pub struct Rtmfp {
    keys: Option<Arc<KeyLog>>,
    sessions: HashMap<(SocketAddr, SocketAddr), Session, crate::proto::rtmfp::vlu::FnvBuild>,
    next_id: u64,
    buf: Vec<u8>,
    /// Bytes all flows hold for reassembly.
    held: usize,
}

fn pair(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b { (a, b) } else { (b, a) }
}

/// The flow's RTMP message stream id from "TC" metadata (RFC 7425 §5.1.3).
fn tc_stream_id(md: &[u8]) -> Option<u32> {
    if md.len() < 3 || &md[..2] != b"TC" {
        return None;
    }
    let rest = md.get(3..).unwrap_or(&[]);
    match rest.first() {
        None | Some(0) => Some(0),
        Some(_) if rest.len() > 1 => crate::proto::rtmfp::vlu::read_vlu(&rest[1..])
            .map(|v| v.0 as u32)
            .or(Some(u32::from(rest[0]))),
        Some(&x) => Some(u32::from(x)),
    }
}

impl Rtmfp {
    /// A new RTMFP analyzer with these keys.
    pub fn new(keys: Option<Arc<KeyLog>>) -> Self {
        Rtmfp {
            keys,
            sessions: HashMap::default(),
            next_id: super::RTMFP_CONN_BASE,
            buf: Vec::with_capacity(2048),
            held: 0,
        }
    }

    /// RTMFP sessions seen.
    pub fn sessions(&self) -> u64 {
        self.next_id - super::RTMFP_CONN_BASE
    }

    /// One UDP datagram; records go to `emit`.
    pub fn datagram(&mut self, u: &Udp<'_>, emit: &mut dyn FnMut(Record)) {
        let sid = unscramble_sid(u.payload);
        let empty = KeyLog::default();
        let kl = self.keys.as_deref().unwrap_or(&empty);
        let ks = kl.keys_for(u.src, u.dst, sid);
        let truncated = (u.payload.len() as u64) < u64::from(u.wire_len);
        let had_keys = !ks.is_empty();
        let opened = if truncated {
            None
        } else {
            open(u.payload, ks, &mut self.buf)
        };
        let key_failed = had_keys && !truncated && opened.is_none();
        let key = pair(u.src, u.dst);
        let pk = opened.as_ref().and_then(|o| o.packet.as_ref().ok());
        // A new IHello or IIKeying after the session opened on these
        // addresses (a reconnect from the same port) starts a new session.
        if let Some(p) = pk
            && p.mode() == 3
            && p.chunks
                .iter()
                .any(|c| c.ty == ty::IHELLO || c.ty == ty::IIKEYING)
            && self.sessions.get(&key).is_some_and(|s| s.opened)
        {
            self.sessions.remove(&key);
        }
        let known = self.sessions.contains_key(&key);
        if opened.is_none() && !known {
            // Not (known as) RTMFP: a truncated startup packet cannot be told.
            return;
        }
        if !known {
            if self.sessions.len() >= MAX_SESSIONS {
                return;
            }
            let initiator = match opened.as_ref().and_then(|o| o.packet.as_ref().ok()) {
                Some(p) => {
                    let responder_says = p.chunks.iter().any(|c| {
                        matches!(
                            c.ty,
                            ty::RHELLO | ty::REDIRECT | ty::RIKEYING | ty::COOKIE_CHANGE
                        )
                    });
                    if responder_says || p.mode() == 2 {
                        u.dst
                    } else {
                        u.src
                    }
                }
                None => u.src,
            };
            let responder = if initiator == u.src { u.dst } else { u.src };
            let id = self.next_id;
            self.next_id += 1;
            let name: Arc<str> = Arc::from(format!("{initiator}-{responder}"));
            emit(Record {
                conn: name.clone(),
                conn_id: id,
                dir: None,
                frame: u.frame,
                time: u.time,
                offset: None,
                kind: RecordKind::RtmfpSession {
                    initiator,
                    responder,
                },
            });
            self.sessions.insert(
                key,
                Session {
                    id,
                    name,
                    initiator,
                    names: [
                        Arc::new((initiator.to_string(), responder.to_string())),
                        Arc::new((responder.to_string(), initiator.to_string())),
                    ],
                    flows: HashMap::default(),
                    opened: false,
                    recent: Default::default(),
                },
            );
        }
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        let dir = if u.src == s.initiator {
            Dir::C2s
        } else {
            Dir::S2c
        };
        if opened
            .as_ref()
            .and_then(|o| o.packet.as_ref().ok())
            .is_some_and(|p| matches!(p.mode(), 1 | 2))
            || opened.is_none()
        {
            s.opened = true;
        }
        let fp = fingerprint(u.payload);
        let recent = &mut s.recent[dir.index()];
        let duplicate = recent.contains(&fp);
        if !duplicate {
            if recent.len() >= DUPLICATE_WINDOW {
                recent.pop_front();
            }
            recent.push_back(fp);
        }
        let mut msgs = Vec::new();
        let mut retransmitted = 0;
        if !duplicate && let Some(p) = opened.as_ref().and_then(|o| o.packet.as_ref().ok()) {
            for c in &p.chunks {
                if let ChunkBody::UserData(d) = &c.body {
                    retransmitted += u32::from(deliver(s, dir, d, &mut msgs, &mut self.held));
                }
            }
        }
        let (conn, id) = (s.name.clone(), s.id);
        let names = s.names[dir.index()].clone();
        let rec = |kind| Record {
            conn: conn.clone(),
            conn_id: id,
            dir: Some(dir),
            frame: u.frame,
            time: u.time,
            offset: None,
            kind,
        };
        emit(rec(RecordKind::Rtmfp(Box::new(RtmfpPacket {
            src: u.src,
            dst: u.dst,
            names,
            ecn: u.ecn,
            dscp: u.dscp,
            udp_len: u.wire_len,
            sid,
            opened,
            retransmitted,
            truncated,
            key_failed,
            fingerprint: fp,
            duplicate,
        }))));
        for m in msgs {
            emit(rec(m));
        }
    }

    /// Capture time is not needed at the end: nothing is pending that a
    /// record could say (partial messages are dropped silently).
    pub fn finish(&mut self, _last: (u64, Timestamp), _emit: &mut dyn FnMut(Record)) {}
}

/// Takes one user data chunk into its flow; returns whether it was seen
/// before. Completed RTMP messages go to `out`.
fn deliver(
    s: &mut Session,
    dir: Dir,
    d: &UserData,
    out: &mut Vec<RecordKind>,
    held: &mut usize,
) -> bool {
    let n = s.flows.len();
    let f = match s.flows.get_mut(&(dir.index() as u8, d.flow_id)) {
        Some(f) => f,
        None if n < MAX_FLOWS => s.flows.entry((dir.index() as u8, d.flow_id)).or_default(),
        None => return false,
    };
    let before = f.held();
    let dup = take(f, d, out);
    let after = f.held();
    *held = (*held + after).saturating_sub(before);
    if *held > MAX_HELD {
        *held = held.saturating_sub(after);
        f.pending.clear();
        f.pending_bytes = 0;
        f.partial = None;
        f.next = None;
    }
    dup
}

impl Flow {
    fn held(&self) -> usize {
        self.pending_bytes + self.partial.as_ref().map_or(0, Vec::len)
    }
}

fn take(f: &mut Flow, d: &UserData, out: &mut Vec<RecordKind>) -> bool {
    if f.metadata.is_none()
        && let Some(md) = d.metadata()
    {
        f.metadata = Some(md.to_vec());
    }
    let fsn = d.fsn_offset.map(|o| d.sequence.saturating_sub(o));
    let dup = f.seen(d.sequence, fsn);
    let Some(stream_id) = f.metadata.as_deref().and_then(tc_stream_id) else {
        return dup;
    };
    let next = f
        .next
        .get_or_insert(fsn.map_or(d.sequence, |x| x.saturating_add(1)));
    if let Some(fsn) = fsn
        && fsn >= *next
    {
        *next = fsn.saturating_add(1);
        f.partial = None;
    }
    if d.sequence < *next || dup {
        return dup;
    }
    if f.pending.len() >= MAX_PENDING || f.pending_bytes > MAX_MESSAGE {
        // Lost data: continue from what is held.
        if let Some((&k, _)) = f.pending.iter().next() {
            *next = k;
        }
        f.partial = None;
    }
    f.pending_bytes += d.data.len();
    f.pending
        .entry(d.sequence)
        .or_insert_with(|| (d.flags, d.data.to_vec()));
    let mut freed = 0;
    f.pending.retain(|&k, v| {
        let keep = k >= *next;
        if !keep {
            freed += v.1.len();
        }
        keep
    });
    f.pending_bytes = f.pending_bytes.saturating_sub(freed);
    while let Some((flags, data)) = f.pending.remove(next) {
        f.pending_bytes = f.pending_bytes.saturating_sub(data.len());
        *next = next.saturating_add(1);
        if flags & 0x02 != 0 {
            f.partial = None;
            continue;
        }
        let whole = match (flags >> 4) & 3 {
            0 => Some(data),
            1 => {
                f.partial = Some(data);
                None
            }
            3 => {
                if let Some(p) = &mut f.partial
                    && p.len() + data.len() <= MAX_MESSAGE
                {
                    p.extend_from_slice(&data);
                } else {
                    f.partial = None;
                }
                None
            }
            _ => f.partial.take().and_then(|mut p| {
                (p.len() + data.len() <= MAX_MESSAGE).then(|| {
                    p.extend_from_slice(&data);
                    p
                })
            }),
        };
        if let Some(m) = whole
            && m.len() >= 5
        {
            let msg_type = MessageType(m[0]);
            let timestamp = u32::from_be_bytes([m[1], m[2], m[3], m[4]]);
            let payload = Bytes::from(m).slice(5..);
            let decoded = Message::decode(msg_type, payload.clone());
            out.push(RecordKind::Message {
                raw: RawMessage {
                    csid: d.flow_id as u32,
                    header: MessageHeader {
                        timestamp,
                        msg_type,
                        stream_id,
                    },
                    payload,
                    offset: 0,
                    fmt: 0,
                    chunks: 1,
                    extended_timestamp: false,
                    unknown: UnknownFields::default(),
                },
                decoded,
            });
        }
    }
    dup
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::rtmfp::chunk::{write_chunk, write_header};
    use crate::proto::rtmfp::crypto::{DirKeys, seal_flash};
    use proptest::prelude::*;

    fn udp<'a>(payload: &'a [u8], frame: u64) -> Udp<'a> {
        Udp {
            src: "10.0.0.1:5000".parse().unwrap(),
            dst: "10.0.0.2:1935".parse().unwrap(),
            payload,
            wire_len: payload.len() as u32,
            ecn: 2,
            dscp: 0,
            frame,
            time: Timestamp::default(),
        }
    }

    #[test]
    fn extreme_sequence_numbers() {
        let mut r = Rtmfp::new(None);
        let mut n = 0;
        let mut emit = |_: Record| n += 1;
        for (seq, off) in [
            (u64::MAX, 0),
            (u64::MAX, u64::MAX),
            (u64::MAX - 1, 0),
            (1, u64::MAX),
        ] {
            let mut ud = vec![0x80];
            crate::proto::rtmfp::chunk::put_vlu(&mut ud, 2);
            crate::proto::rtmfp::chunk::put_vlu(&mut ud, seq);
            crate::proto::rtmfp::chunk::put_vlu(&mut ud, off);
            ud.extend([5, 0, b'T', b'C', 4, 0, 0, 0x14, 0, 0, 0, 0, 2]);
            let mut q = Vec::new();
            write_header(&mut q, 0x09, Some(2), None);
            write_chunk(&mut q, 0x10, &ud);
            write_chunk(&mut q, 0x11, &[0x10, 0x14, 0, 0, 0, 0, 5]);
            write_chunk(&mut q, 0x11, &[0x20, 1]);
            let d = seal_flash([0; 4], &q, 0, &DirKeys::default_key());
            r.datagram(&udp(&d, 1), &mut emit);
        }
        assert!(n >= 4);
    }

    proptest! {
        /// Valid startup and user-data packets (so the session and its flows
        /// exist), then arbitrary and bit-flipped ones: never a panic.
        #[test]
        fn never_panics(garbage in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20),
                        flips in proptest::collection::vec((any::<usize>(), 0u8..8), 0..20)) {
            let mut r = Rtmfp::new(None);
            let mut p = Vec::new();
            write_header(&mut p, 0x0b, Some(1), None);
            write_chunk(&mut p, 0x30, &[2, 0x01, 0x0a, 1, 2, 3]);
            let hello = seal_flash([0; 4], &p, 0, &DirKeys::default_key());
            let mut q = Vec::new();
            write_header(&mut q, 0x09, Some(2), None);
            write_chunk(&mut q, 0x10, &[0x90, 2, 1, 1, 5, 0, b'T', b'C', 4, 0, 0, 0x14, 0, 0, 0, 0, 2]);
            write_chunk(&mut q, 0x11, &[0x20, 0, 3, b'a', b'b', b'c']);
            let data = seal_flash([0; 4], &q, 0, &DirKeys::default_key());
            let mut n = 0;
            let mut emit = |_: Record| n += 1;
            r.datagram(&udp(&hello, 1), &mut emit);
            r.datagram(&udp(&data, 2), &mut emit);
            for (i, g) in garbage.iter().enumerate() {
                r.datagram(&udp(g, 3 + i as u64), &mut emit);
            }
            for (at, bit) in flips {
                let mut d = data.clone();
                let i = at % d.len();
                d[i] ^= 1 << bit;
                r.datagram(&udp(&d, 100), &mut emit);
            }
            prop_assert!(n >= 2);
        }
    }
}
