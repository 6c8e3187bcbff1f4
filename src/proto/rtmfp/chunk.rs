//! RTMFP packets and chunks (RFC 7016 §2.2.4 packet, §2.3 chunks; the ECN
//! Report 0xec of zenomt/rtmfp-cpp). A packet is `flags | [timestamp] |
//! [timestamp echo] | chunks | padding`; a chunk is `type u8 | length u16 |
//! payload`. Chunks are read while 3 bytes remain, up to type 0xff (padding)
//! or a length longer than what remains (as rtmfp-cpp does, Session.cpp:74-85).
//! Unknown chunk types are kept raw; a known chunk whose payload does not
//! parse is kept raw with the reason.

use bytes::Bytes;

use super::vlu::{Address, Cursor, ListEnd, Opt, read_options, write_field, write_vlu};

/// Flags byte: time critical.
pub const FLAG_TC: u8 = 0x80;
/// Flags byte: time critical reverse.
pub const FLAG_TCR: u8 = 0x40;
/// Flags byte: timestamp present.
pub const FLAG_TS: u8 = 0x08;
/// Flags byte: timestamp echo present.
pub const FLAG_TSE: u8 = 0x04;

/// User Data flags: option list present.
pub const UD_OPT: u8 = 0x80;
/// User Data flags: abandoned.
pub const UD_ABN: u8 = 0x02;
/// User Data flags: final.
pub const UD_FIN: u8 = 0x01;

/// Chunk type numbers (RFC 7016 §2.3, rtmfp-cpp packet.hpp).
pub mod ty {
    #![allow(missing_docs)]
    pub const PING: u8 = 0x01;
    pub const CLOSE: u8 = 0x0c;
    pub const FIHELLO: u8 = 0x0f;
    pub const USER_DATA: u8 = 0x10;
    pub const NEXT_USER_DATA: u8 = 0x11;
    pub const BUFFER_PROBE: u8 = 0x18;
    pub const IHELLO: u8 = 0x30;
    pub const IIKEYING: u8 = 0x38;
    pub const PING_REPLY: u8 = 0x41;
    pub const CLOSE_ACK: u8 = 0x4c;
    pub const BITMAP_ACK: u8 = 0x50;
    pub const RANGE_ACK: u8 = 0x51;
    pub const FLOW_EXCEPTION: u8 = 0x5e;
    pub const RHELLO: u8 = 0x70;
    pub const REDIRECT: u8 = 0x71;
    pub const RIKEYING: u8 = 0x78;
    pub const COOKIE_CHANGE: u8 = 0x79;
    pub const PACKET_FRAGMENT: u8 = 0x7f;
    pub const ECN_REPORT: u8 = 0xec;
    pub const PADDING: u8 = 0xff;
}

/// The name of a chunk type (`Unknown` for others).
pub fn chunk_name(t: u8) -> &'static str {
    match t {
        ty::PING => "Ping",
        ty::CLOSE => "Close",
        ty::FIHELLO => "FIHello",
        ty::USER_DATA => "UserData",
        ty::NEXT_USER_DATA => "NextUserData",
        ty::BUFFER_PROBE => "BufferProbe",
        ty::IHELLO => "IHello",
        ty::IIKEYING => "IIKeying",
        ty::PING_REPLY => "PingReply",
        ty::CLOSE_ACK => "CloseAck",
        ty::BITMAP_ACK => "BitmapAck",
        ty::RANGE_ACK => "RangeAck",
        ty::FLOW_EXCEPTION => "FlowException",
        ty::RHELLO => "RHello",
        ty::REDIRECT => "Redirect",
        ty::RIKEYING => "RIKeying",
        ty::COOKIE_CHANGE => "CookieChange",
        ty::PACKET_FRAGMENT => "PacketFragment",
        ty::ECN_REPORT => "EcnReport",
        ty::PADDING => "Padding",
        _ => "Unknown",
    }
}

/// User Data or Next User Data (RFC 7016 §2.3.11, §2.3.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserData {
    /// Flags byte (OPT 0x80, fragment 0x30, ABN 0x02, FIN 0x01).
    pub flags: u8,
    /// Sender's flow id (inherited for Next User Data).
    pub flow_id: u64,
    /// Sequence number (previous + 1 for Next User Data).
    pub sequence: u64,
    /// Forward sequence number offset; `None` for Next User Data.
    pub fsn_offset: Option<u64>,
    /// Options (present when flags has OPT): metadata (0x00), return flow
    /// association (0x0a), others.
    pub options: Option<Vec<Opt>>,
    /// The user data (shares the decrypted packet's buffer).
    pub data: Bytes,
}

impl UserData {
    /// Fragment control: 0 whole, 1 begin, 2 end, 3 middle.
    pub fn fragment(&self) -> u8 {
        (self.flags >> 4) & 3
    }
    /// The user metadata option (type 0x00), if any.
    pub fn metadata(&self) -> Option<&[u8]> {
        self.options
            .as_ref()?
            .iter()
            .find(|(t, _)| *t == 0)
            .map(|(_, v)| &v[..])
    }
    /// The return flow association option (type 0x0a), if any.
    pub fn return_flow(&self) -> Option<u64> {
        let (_, v) = self.options.as_ref()?.iter().find(|(t, _)| *t == 0x0a)?;
        super::vlu::read_vlu(v).map(|x| x.0)
    }
}

/// A chunk body, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkBody {
    /// Initiator Hello: endpoint discriminator and tag.
    IHello {
        /// EPD (an option list in the Flash profile).
        epd: Vec<u8>,
        /// Tag.
        tag: Vec<u8>,
    },
    /// Forwarded Initiator Hello.
    FIHello {
        /// EPD.
        epd: Vec<u8>,
        /// Reply address.
        reply: Address,
        /// Tag.
        tag: Vec<u8>,
    },
    /// Responder Hello.
    RHello {
        /// Tag echo.
        tag: Vec<u8>,
        /// Cookie.
        cookie: Vec<u8>,
        /// Responder certificate.
        cert: Vec<u8>,
    },
    /// Responder Redirect.
    Redirect {
        /// Tag echo.
        tag: Vec<u8>,
        /// Addresses to try (empty: the address the IHello came from).
        addresses: Vec<Address>,
    },
    /// RHello Cookie Change.
    CookieChange {
        /// Old cookie.
        old: Vec<u8>,
        /// New cookie.
        new: Vec<u8>,
    },
    /// Initiator Initial Keying.
    IIKeying {
        /// Initiator's session id (4 bytes as on the wire).
        initiator_ssid: [u8; 4],
        /// Cookie echo.
        cookie: Vec<u8>,
        /// Initiator certificate.
        cert: Vec<u8>,
        /// Session key initiator component.
        skic: Vec<u8>,
        /// Signature.
        signature: Vec<u8>,
    },
    /// Responder Initial Keying.
    RIKeying {
        /// Responder's session id.
        responder_ssid: [u8; 4],
        /// Session key responder component.
        skrc: Vec<u8>,
        /// Signature.
        signature: Vec<u8>,
    },
    /// Ping (opaque message).
    Ping(Vec<u8>),
    /// Ping Reply (echoes the ping's message).
    PingReply(Vec<u8>),
    /// User Data (0x10) or Next User Data (0x11).
    UserData(UserData),
    /// Bitmap Ack.
    BitmapAck {
        /// Flow id.
        flow_id: u64,
        /// Buffer available, in 1024-byte blocks.
        buffer_blocks: u64,
        /// Cumulative ack.
        cumulative_ack: u64,
        /// Bitmap bytes.
        bitmap: Vec<u8>,
    },
    /// Range Ack.
    RangeAck {
        /// Flow id.
        flow_id: u64,
        /// Buffer available, in 1024-byte blocks.
        buffer_blocks: u64,
        /// Cumulative ack.
        cumulative_ack: u64,
        /// `(holes - 1, received - 1)` pairs as on the wire.
        ranges: Vec<(u64, u64)>,
    },
    /// Buffer Probe.
    BufferProbe {
        /// Flow id.
        flow_id: u64,
    },
    /// Flow Exception Report.
    FlowException {
        /// Flow id.
        flow_id: u64,
        /// Exception code.
        code: u64,
    },
    /// Session Close Request.
    Close,
    /// Session Close Acknowledgement.
    CloseAck,
    /// ECN Report: received CE count mod 256.
    EcnReport {
        /// The count.
        ce_count: u8,
    },
    /// A chunk of an unknown type (or Packet Fragment), raw.
    Unknown(Vec<u8>),
    /// A known chunk whose payload does not parse: raw bytes and why.
    Malformed {
        /// The payload.
        raw: Vec<u8>,
        /// What was wrong.
        reason: &'static str,
    },
}

/// One chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Type byte.
    pub ty: u8,
    /// Payload length (the chunk header's length field).
    pub len: u16,
    /// The payload, decoded.
    pub body: ChunkBody,
}

/// Why the chunk list stopped before the padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkListEnd {
    /// At padding (type 0xff), or with fewer than 3 bytes left.
    Padding,
    /// A chunk's length runs past the end of the packet.
    Overlong {
        /// Offset of that chunk in the packet.
        offset: usize,
        /// Its length field.
        len: u16,
    },
}

/// A decoded packet (the part after encryption framing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Flags byte.
    pub flags: u8,
    /// Timestamp (4 ms ticks).
    pub ts: Option<u16>,
    /// Timestamp echo.
    pub tse: Option<u16>,
    /// Chunks in order.
    pub chunks: Vec<Chunk>,
    /// Bytes from flags to the end of the last chunk.
    pub len: usize,
    /// Bytes after the last chunk (padding).
    pub padding_len: usize,
    /// How the chunk list ended.
    pub end: ChunkListEnd,
}

impl Packet {
    /// Mode: 1 initiator, 2 responder, 3 startup (0 invalid).
    pub fn mode(&self) -> u8 {
        self.flags & 3
    }
}

/// Why a packet could not be decoded at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Empty packet.
    #[error("empty packet")]
    Empty,
    /// The header announces a timestamp the packet does not hold.
    #[error("packet header truncated")]
    Truncated,
}

/// Most chunks read from one packet (a 1200-byte packet holds at most 400).
pub const MAX_CHUNKS: usize = 1024;

/// Decodes a packet (flags through padding).
pub fn decode_packet(b: &[u8]) -> Result<Packet, PacketError> {
    decode_packet_shared(&Bytes::copy_from_slice(b))
}

/// Decodes a packet held in `b`; user data shares its buffer.
pub fn decode_packet_shared(bytes: &Bytes) -> Result<Packet, PacketError> {
    let b = &bytes[..];
    let mut c = Cursor::new(b);
    let flags = c.u8().ok_or(PacketError::Empty)?;
    let ts = if flags & FLAG_TS != 0 {
        Some(c.u16().ok_or(PacketError::Truncated)?)
    } else {
        None
    };
    let tse = if flags & FLAG_TSE != 0 {
        Some(c.u16().ok_or(PacketError::Truncated)?)
    } else {
        None
    };
    let mut pos = c.pos();
    let mut chunks = Vec::new();
    let mut end = ChunkListEnd::Padding;
    // Next User Data inherits from the previous User Data chunk of the packet.
    let mut prev: Option<(u64, u64)> = None;
    while b.len() - pos >= 3 && chunks.len() < MAX_CHUNKS {
        let t = b[pos];
        if t == ty::PADDING {
            break;
        }
        let len = u16::from_be_bytes([b[pos + 1], b[pos + 2]]);
        if usize::from(len) > b.len() - pos - 3 {
            end = ChunkListEnd::Overlong { offset: pos, len };
            break;
        }
        let body = decode_chunk_shared(
            t,
            bytes.slice(pos + 3..pos + 3 + usize::from(len)),
            &mut prev,
        );
        chunks.push(Chunk { ty: t, len, body });
        pos += 3 + usize::from(len);
    }
    Ok(Packet {
        flags,
        ts,
        tse,
        chunks,
        len: pos,
        padding_len: b.len() - pos,
        end,
    })
}

fn malformed(p: &[u8], reason: &'static str) -> ChunkBody {
    ChunkBody::Malformed {
        raw: p.to_vec(),
        reason,
    }
}

/// Decodes one chunk payload. `prev` is the (flow id, sequence) of the last
/// User Data chunk of the packet, for Next User Data.
pub fn decode_chunk(t: u8, p: &[u8], prev: &mut Option<(u64, u64)>) -> ChunkBody {
    decode_chunk_shared(t, Bytes::copy_from_slice(p), prev)
}

fn decode_chunk_shared(t: u8, shared: Bytes, prev: &mut Option<(u64, u64)>) -> ChunkBody {
    let p = &shared[..];
    let mut c = Cursor::new(p);
    match t {
        ty::IHELLO => match c.field() {
            Some(epd) => ChunkBody::IHello {
                epd: epd.to_vec(),
                tag: c.rest().to_vec(),
            },
            None => malformed(p, "truncated EPD"),
        },
        ty::FIHELLO => {
            let Some(epd) = c.field() else {
                return malformed(p, "truncated EPD");
            };
            let Some(reply) = c.address() else {
                return malformed(p, "truncated reply address");
            };
            ChunkBody::FIHello {
                epd: epd.to_vec(),
                reply,
                tag: c.rest().to_vec(),
            }
        }
        ty::RHELLO => {
            let (Some(tag), Some(cookie)) = (c.field(), c.field()) else {
                return malformed(p, "truncated tag or cookie");
            };
            ChunkBody::RHello {
                tag: tag.to_vec(),
                cookie: cookie.to_vec(),
                cert: c.rest().to_vec(),
            }
        }
        ty::REDIRECT => {
            let Some(tag) = c.field() else {
                return malformed(p, "truncated tag");
            };
            let mut addresses = Vec::new();
            while c.remaining() > 0 {
                match c.address() {
                    Some(a) => addresses.push(a),
                    None => return malformed(p, "truncated address"),
                }
            }
            ChunkBody::Redirect {
                tag: tag.to_vec(),
                addresses,
            }
        }
        ty::COOKIE_CHANGE => match c.field() {
            Some(old) => ChunkBody::CookieChange {
                old: old.to_vec(),
                new: c.rest().to_vec(),
            },
            None => malformed(p, "truncated cookie"),
        },
        ty::IIKEYING => {
            let Some(sid) = c.bytes(4) else {
                return malformed(p, "truncated session id");
            };
            let (Some(cookie), Some(cert), Some(skic)) = (c.field(), c.field(), c.field()) else {
                return malformed(p, "truncated field");
            };
            ChunkBody::IIKeying {
                initiator_ssid: [sid[0], sid[1], sid[2], sid[3]],
                cookie: cookie.to_vec(),
                cert: cert.to_vec(),
                skic: skic.to_vec(),
                signature: c.rest().to_vec(),
            }
        }
        ty::RIKEYING => {
            let Some(sid) = c.bytes(4) else {
                return malformed(p, "truncated session id");
            };
            let Some(skrc) = c.field() else {
                return malformed(p, "truncated field");
            };
            ChunkBody::RIKeying {
                responder_ssid: [sid[0], sid[1], sid[2], sid[3]],
                skrc: skrc.to_vec(),
                signature: c.rest().to_vec(),
            }
        }
        ty::PING => ChunkBody::Ping(p.to_vec()),
        ty::PING_REPLY => ChunkBody::PingReply(p.to_vec()),
        ty::USER_DATA | ty::NEXT_USER_DATA => {
            let Some(flags) = c.u8() else {
                return malformed(p, "truncated flags");
            };
            let (flow_id, sequence, fsn_offset) = if t == ty::USER_DATA {
                let (Some(f), Some(s), Some(o)) = (c.vlu(), c.vlu(), c.vlu()) else {
                    return malformed(p, "truncated flow id, sequence or offset");
                };
                (f, s, Some(o))
            } else {
                match *prev {
                    Some((f, s)) => (f, s.wrapping_add(1), None),
                    None => return malformed(p, "Next User Data without User Data"),
                }
            };
            let options = if flags & UD_OPT != 0 {
                let rest = &p[c.pos()..];
                match read_options(rest) {
                    Ok((o, n, ListEnd::Marker)) => {
                        let _ = c.bytes(n);
                        Some(o)
                    }
                    Ok((_, _, ListEnd::End)) => return malformed(p, "option list without marker"),
                    Err(e) => return malformed(p, e),
                }
            } else {
                None
            };
            *prev = Some((flow_id, sequence));
            ChunkBody::UserData(UserData {
                flags,
                flow_id,
                sequence,
                fsn_offset,
                options,
                data: shared.slice(c.pos()..),
            })
        }
        ty::BITMAP_ACK | ty::RANGE_ACK => {
            let (Some(flow_id), Some(buffer_blocks), Some(cumulative_ack)) =
                (c.vlu(), c.vlu(), c.vlu())
            else {
                return malformed(p, "truncated ack");
            };
            if t == ty::BITMAP_ACK {
                return ChunkBody::BitmapAck {
                    flow_id,
                    buffer_blocks,
                    cumulative_ack,
                    bitmap: c.rest().to_vec(),
                };
            }
            let mut ranges = Vec::new();
            while c.remaining() > 0 {
                let (Some(h), Some(r)) = (c.vlu(), c.vlu()) else {
                    return malformed(p, "truncated ack range");
                };
                ranges.push((h, r));
            }
            ChunkBody::RangeAck {
                flow_id,
                buffer_blocks,
                cumulative_ack,
                ranges,
            }
        }
        ty::BUFFER_PROBE => match c.vlu() {
            Some(flow_id) => ChunkBody::BufferProbe { flow_id },
            None => malformed(p, "truncated flow id"),
        },
        ty::FLOW_EXCEPTION => match (c.vlu(), c.vlu()) {
            (Some(flow_id), Some(code)) => ChunkBody::FlowException { flow_id, code },
            _ => malformed(p, "truncated flow exception"),
        },
        ty::CLOSE => ChunkBody::Close,
        ty::CLOSE_ACK => ChunkBody::CloseAck,
        ty::ECN_REPORT => match p.first() {
            Some(&ce_count) => ChunkBody::EcnReport { ce_count },
            None => malformed(p, "empty ECN report"),
        },
        _ => ChunkBody::Unknown(p.to_vec()),
    }
}

/// Appends a chunk (type, length, payload).
pub fn write_chunk(out: &mut Vec<u8>, t: u8, payload: &[u8]) {
    out.push(t);
    out.extend((payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
}

/// The payload of an IHello chunk.
pub fn ihello_payload(epd: &[u8], tag: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    write_field(&mut p, epd);
    p.extend_from_slice(tag);
    p
}

/// The payload of an IIKeying chunk.
pub fn iikeying_payload(
    sid: [u8; 4],
    cookie: &[u8],
    cert: &[u8],
    skic: &[u8],
    sig: &[u8],
) -> Vec<u8> {
    let mut p = sid.to_vec();
    write_field(&mut p, cookie);
    write_field(&mut p, cert);
    write_field(&mut p, skic);
    p.extend_from_slice(sig);
    p
}

/// The payload of an RIKeying chunk.
pub fn rikeying_payload(sid: [u8; 4], skrc: &[u8], sig: &[u8]) -> Vec<u8> {
    let mut p = sid.to_vec();
    write_field(&mut p, skrc);
    p.extend_from_slice(sig);
    p
}

/// The payload of an RHello chunk.
pub fn rhello_payload(tag: &[u8], cookie: &[u8], cert: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    write_field(&mut p, tag);
    write_field(&mut p, cookie);
    p.extend_from_slice(cert);
    p
}

/// A packet header: flags with mode, optional timestamp and echo.
pub fn write_header(out: &mut Vec<u8>, flags: u8, ts: Option<u16>, tse: Option<u16>) {
    let mut f = flags & !(FLAG_TS | FLAG_TSE);
    if ts.is_some() {
        f |= FLAG_TS;
    }
    if tse.is_some() {
        f |= FLAG_TSE;
    }
    out.push(f);
    if let Some(t) = ts {
        out.extend(t.to_be_bytes());
    }
    if let Some(t) = tse {
        out.extend(t.to_be_bytes());
    }
}

/// Appends a VLU (re-exported for chunk builders).
pub fn put_vlu(out: &mut Vec<u8>, v: u64) {
    write_vlu(out, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn range_ack_of_the_notes() {
        let p = decode_packet(&[0x09, 0, 1, 0x51, 0, 3, 2, 0x40, 8, 0xff, 0xff]).unwrap();
        assert_eq!(p.ts, Some(1));
        assert_eq!(
            p.chunks[0].body,
            ChunkBody::RangeAck {
                flow_id: 2,
                buffer_blocks: 64,
                cumulative_ack: 8,
                ranges: vec![]
            }
        );
        assert_eq!(p.padding_len, 2);
    }

    proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let p = decode_packet(&b);
            if let Ok(p) = p {
                prop_assert!(p.len + p.padding_len == b.len());
            }
            for t in 0..=255u8 {
                let _ = decode_chunk(t, &b, &mut Some((1, 1)));
            }
        }

        #[test]
        fn truncations_and_flips(cut in 0usize..200, flip in 0usize..200, bit in 0u8..8) {
            // A packet with every kind of chunk, cut and with a bit flipped.
            let mut b = Vec::new();
            write_header(&mut b, 0x0d, Some(7), Some(9));
            write_chunk(&mut b, ty::IHELLO, &ihello_payload(b"\x05\x0aabcd", &[1; 16]));
            write_chunk(&mut b, ty::RHELLO, &rhello_payload(&[1; 16], &[2; 64], b"\x01\x0a"));
            write_chunk(&mut b, ty::IIKEYING, &iikeying_payload([1, 0, 0, 0], &[2; 8], b"c", b"\x02\x1d\x02", b"X"));
            write_chunk(&mut b, ty::RIKEYING, &rikeying_payload([2, 0, 0, 0], b"\x02\x1d\x02", b"X"));
            write_chunk(&mut b, ty::USER_DATA, &[0x80, 2, 1, 1, 3, 0, b'a', b'b', 0, b'x']);
            write_chunk(&mut b, ty::NEXT_USER_DATA, &[0x00, b'y']);
            write_chunk(&mut b, ty::ECN_REPORT, &[5]);
            write_chunk(&mut b, ty::RANGE_ACK, &[2, 64, 8, 1, 2]);
            write_chunk(&mut b, ty::REDIRECT, &[1, 9, 0, 127, 0, 0, 1, 0x4b, 0xc8]);
            write_chunk(&mut b, ty::FLOW_EXCEPTION, &[2, 42]);
            b.extend([0xff; 5]);
            let p = decode_packet(&b).unwrap();
            prop_assert_eq!(p.chunks.len(), 10);
            let bad = p.chunks.iter().any(|c| matches!(c.body, ChunkBody::Malformed { .. }));
            prop_assert!(!bad);
            let cut = cut.min(b.len());
            let _ = decode_packet(&b[..cut]);
            let mut f = b.clone();
            let i = flip % f.len();
            f[i] ^= 1 << bit;
            let _ = decode_packet(&f);
        }
    }
}
