//! Layer decoding: link layer → IPv4/IPv6 → TCP/UDP, lax like etherparse.
//!
//! Link layers (tcpdump.org link-layer header types): Ethernet (1) with 802.1Q /
//! 802.1ad / QinQ tags, Linux cooked capture v1 (113, 16-byte header, protocol at
//! offset 14) and v2 (276, 20-byte header, protocol at offset 0), raw IP (101, 12,
//! 14, 228, 229), BSD loopback/null (0, address family in the capturing host's
//! byte order: 2 = IPv4; 10, 24, 28, 30 = IPv6) and OpenBSD loop (108, family in
//! network byte order). IP and transport headers are sliced by etherparse's
//! `LaxSlicedPacket` (RFC 791 with options, RFC 8200 extension headers, RFC 9293,
//! RFC 768). ECN and DSCP are the low 2 / high 6 bits of the IPv4 TOS or IPv6
//! traffic class (RFC 3168 §5, RFC 2474).
//!
//! Encapsulations are opened, nested in any order, to at most
//! [`MAX_ENCAPSULATIONS`] levels: PPPoE session stage (RFC 2516, EtherType
//! 0x8864) carrying PPP (RFC 1661, protocol field compressed or not) with IPv4
//! 0x0021, IPv6 0x0057 or MPLS 0x0281/0x0283; MPLS (RFC 3032, EtherType
//! 0x8847/0x8848): the label stack down to the bottom-of-stack bit, then IPv4
//! or IPv6 by the first nibble, or a pseudowire control word (first nibble 0,
//! RFC 4385) and an Ethernet frame (RFC 4448); GRE (IP protocol 47, RFC
//! 2784/2890 and RFC 1701's routing field; version 1, PPTP's enhanced GRE of
//! RFC 2637, carrying PPP) with its protocol type read as an EtherType (0x6558:
//! transparent Ethernet bridging); IP in IP (protocols 4 and 41, RFC 2003 /
//! RFC 4213); VXLAN (RFC 7348, UDP destination port 4789, and Linux's old
//! default 8472 when the header is exactly as the RFC lays it out) and Geneve
//! (RFC 8926, UDP destination port 6081), each carrying an Ethernet frame; and
//! VLAN tags past the three etherparse slices in one pass. The headers
//! etherparse does not know are read here, every length checked.
//!
//! Link protocols that carry no IP (ARP, LLDP, LLC/STP, PPP's control
//! protocols, ...) are [`DecodeError::NotIp`]: nothing of RTMP's is in them.
//! An EtherType, PPP protocol, GRE protocol or MPLS payload this decoder does
//! not open is [`DecodeError::Unsupported`], so the packet is counted as not
//! understood rather than dropped unseen.
//!
//! IP fragments are reported as [`Transport::Fragment`] with their
//! identification, offset and bytes ([`Decoded::fragment`]), for
//! [`super::frag::Defragmenter`] to reassemble.
//! A payload cut by the capture's snaplen is reported through
//! [`Decoded::truncated`] and the transport's `wire_len`, so reassembly can
//! treat the missing bytes as a gap instead of garbage.

use std::net::{IpAddr, SocketAddr};

use etherparse::{
    EtherType, LaxIpPayloadSlice, LaxLinkExtSlice, LaxNetSlice, LaxSlicedPacket, TransportSlice,
};

use super::reader::LinkType;

/// TCP header flags (RFC 9293 §3.1, plus NS of RFC 3540).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: u16 = 0x001;
    /// Synchronize sequence numbers.
    pub const SYN: u16 = 0x002;
    /// Reset the connection.
    pub const RST: u16 = 0x004;
    /// Push function.
    pub const PSH: u16 = 0x008;
    /// Acknowledgment field is significant.
    pub const ACK: u16 = 0x010;
    /// Urgent pointer field is significant.
    pub const URG: u16 = 0x020;
    /// ECN-Echo (RFC 3168).
    pub const ECE: u16 = 0x040;
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: u16 = 0x080;
    /// ECN nonce sum (RFC 3540, historic).
    pub const NS: u16 = 0x100;

    /// True when every bit of `mask` is set.
    pub fn has(self, mask: u16) -> bool {
        self.0 & mask == mask
    }
}

/// A TCP segment as captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Advertised window (unscaled).
    pub window: u16,
    /// Payload bytes present in the capture.
    pub payload: &'a [u8],
    /// Payload length on the wire (from the IP length fields); larger than
    /// `payload.len()` when the snaplen cut the segment.
    pub wire_len: u32,
}

/// A UDP datagram as captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// Payload bytes present in the capture.
    pub payload: &'a [u8],
    /// Payload length on the wire (UDP length field − 8, or from IP).
    pub wire_len: u32,
}

/// The transport layer of a decoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    /// TCP.
    Tcp(TcpSegment<'a>),
    /// UDP.
    Udp(UdpDatagram<'a>),
    /// An IP fragment (IPv4 MF/offset or IPv6 Fragment header): not
    /// reassembled, so its transport header is not decoded.
    Fragment,
    /// Another IP protocol (ICMP, SCTP, ...), not decoded.
    Other,
}

/// A decoded IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Source address and port (port 0 unless TCP/UDP).
    pub src: SocketAddr,
    /// Destination address and port (port 0 unless TCP/UDP).
    pub dst: SocketAddr,
    /// IP protocol number of the payload (6 TCP, 17 UDP, ...).
    pub protocol: u8,
    /// ECN codepoint: 0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE.
    pub ecn: u8,
    /// Differentiated Services codepoint (6 bits).
    pub dscp: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// The packet is an IP fragment (not reassembled).
    pub fragmented: bool,
    /// The capture cut the IP payload short (snaplen).
    pub truncated: bool,
    /// Transport layer.
    pub transport: Transport<'a>,
    /// The fragment's facts when the packet is an IP fragment.
    pub fragment: Option<IpFragment<'a>>,
}

/// One IPv4 or IPv6 fragment (RFC 791 §3.2, RFC 8200 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpFragment<'a> {
    /// Identification (16 bits for IPv4, 32 for IPv6).
    pub id: u32,
    /// Byte offset of `payload` in the original datagram's payload.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
    /// Protocol of the reassembled payload (17 UDP, 6 TCP).
    pub protocol: u8,
    /// The fragment's bytes as captured.
    pub payload: &'a [u8],
    /// The capture cut this fragment.
    pub truncated: bool,
}

/// Why a packet could not be decoded down to IP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The link type is not one this decoder knows.
    #[error("unsupported link type {0}")]
    UnsupportedLinkType(u32),
    /// The link layer carries a protocol that is not IP and never carries it
    /// (ARP, LLDP, LLC/STP, PPP's control protocols, ...).
    #[error("not IP (link protocol {0:#06x})")]
    NotIp(u32),
    /// An encapsulation this decoder does not open (an unknown EtherType, PPP
    /// protocol or GRE protocol type, an MPLS payload neither IP nor Ethernet,
    /// MACsec-encrypted frames, ...).
    #[error("in an encapsulation rtmptool does not decode ({what} {value:#06x})")]
    Unsupported {
        /// The field that named it ("ethertype", "PPP protocol", ...).
        what: &'static str,
        /// Its value.
        value: u32,
    },
    /// More than `MAX_ENCAPSULATIONS` (8) encapsulations nested in one packet.
    #[error("more than {MAX_ENCAPSULATIONS} encapsulations nested")]
    TooDeep,
    /// The capture's snaplen cut the packet inside a header (the IP header
    /// says how long the packet was).
    #[error(
        "cut by the capture's snaplen inside the {layer} ({captured} of its {needed} bytes captured)"
    )]
    SnaplenCut {
        /// The header that was cut.
        layer: &'static str,
        /// Bytes of it captured.
        captured: usize,
        /// Bytes it has.
        needed: usize,
    },
    /// A header is cut short or malformed.
    #[error("malformed {layer}: {reason}")]
    Malformed {
        /// Layer where decoding stopped.
        layer: &'static str,
        /// What was wrong.
        reason: String,
    },
}

impl DecodeError {
    /// The reason without what varies from packet to packet (the lengths
    /// of a malformed header): packets not decoded are counted by it.
    pub fn summary(&self) -> String {
        match self {
            DecodeError::Malformed { layer, .. } => format!("malformed {layer}"),
            DecodeError::SnaplenCut { layer, .. } => {
                format!("cut by the capture's snaplen inside the {layer}")
            }
            e => e.to_string(),
        }
    }
}

/// Most encapsulations opened inside one packet (each PPPoE, MPLS stack,
/// tunnel or pass over VLAN tags counts one): a hostile capture of nested
/// tunnels ends here instead of recursing without end.
pub const MAX_ENCAPSULATIONS: usize = 8;

fn malformed(layer: &'static str, reason: impl ToString) -> DecodeError {
    DecodeError::Malformed {
        layer,
        reason: reason.to_string(),
    }
}

fn sliced_from_ip(data: &[u8]) -> Result<LaxSlicedPacket<'_>, DecodeError> {
    LaxSlicedPacket::from_ip(data).map_err(|e| malformed("IP header", e))
}

/// Decode one captured frame of the given link type.
pub fn decode(link_type: LinkType, data: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    let sliced = match link_type.0 {
        1 => LaxSlicedPacket::from_ethernet(data).map_err(|e| malformed("Ethernet header", e))?,
        113 => {
            if data.len() < 16 {
                return Err(malformed(
                    "Linux SLL header",
                    format!("{} bytes, need 16", data.len()),
                ));
            }
            let proto = u16::from_be_bytes([data[14], data[15]]);
            LaxSlicedPacket::from_ether_type(EtherType(proto), &data[16..])
        }
        276 => {
            if data.len() < 20 {
                return Err(malformed(
                    "Linux SLL2 header",
                    format!("{} bytes, need 20", data.len()),
                ));
            }
            let proto = u16::from_be_bytes([data[0], data[1]]);
            LaxSlicedPacket::from_ether_type(EtherType(proto), &data[20..])
        }
        0 | 108 => {
            if data.len() < 4 {
                return Err(malformed(
                    "loopback header",
                    format!("{} bytes, need 4", data.len()),
                ));
            }
            let be = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            // DLT_NULL is in the capturing host's byte order: a family fits in
            // 16 bits, so non-zero high bytes mean the other order.
            let family = if link_type.0 == 108 || be <= 0xffff {
                be
            } else {
                be.swap_bytes()
            };
            match family {
                2 | 10 | 24 | 28 | 30 => sliced_from_ip(&data[4..])?,
                f => return Err(DecodeError::NotIp(f)),
            }
        }
        101 | 12 | 14 | 228 | 229 => sliced_from_ip(data)?,
        other => return Err(DecodeError::UnsupportedLinkType(other)),
    };
    // The common case, TCP (never a tunnel here), goes straight on.
    if let Some(TransportSlice::Tcp(_)) = &sliced.transport {
        return from_sliced(sliced);
    }
    open(sliced, 0)
}

/// A sliced packet down to TCP/UDP, opening what etherparse left closed:
/// a link payload it does not slice, an IP tunnel, a UDP tunnel. `depth` is
/// how many encapsulations are already open around it.
fn open(p: LaxSlicedPacket<'_>, depth: usize) -> Result<Decoded<'_>, DecodeError> {
    if depth > MAX_ENCAPSULATIONS {
        return Err(DecodeError::TooDeep);
    }
    match (&p.net, &p.transport) {
        (None, _) if p.stop_err.is_none() => {
            return match p.ether_payload() {
                Some(e) => ether(e.ether_type.0, e.payload, depth + 1),
                None => Err(match p.link_exts.last() {
                    Some(LaxLinkExtSlice::Macsec(_)) => DecodeError::Unsupported {
                        what: "MACsec-protected ethertype",
                        value: 0x88e5,
                    },
                    _ => DecodeError::NotIp(0),
                }),
            };
        }
        (Some(net), None) if p.stop_err.is_none() => {
            if let Some(pl) = ip_payload(net) {
                let tunnel = matches!(pl.ip_number.0, 4 | 41 | 47);
                if tunnel && pl.fragmented {
                    // The tunnel's packet is in pieces: not reassembled.
                    return Err(DecodeError::Unsupported {
                        what: "fragmented tunnel packet, IP protocol",
                        value: u32::from(pl.ip_number.0),
                    });
                }
                match pl.ip_number.0 {
                    4 | 41 => return open(sliced_from_ip(pl.payload)?, depth + 1),
                    47 => return gre(pl.payload, depth + 1),
                    _ => {}
                }
            }
        }
        (Some(_), Some(TransportSlice::Udp(u))) => {
            if let Some((et, inner)) = udp_tunnel(u.destination_port(), u.payload()) {
                return ether(et, inner, depth + 1);
            }
        }
        _ => {}
    }
    from_sliced(p)
}

fn ip_payload<'a, 'b>(net: &'b LaxNetSlice<'a>) -> Option<&'b LaxIpPayloadSlice<'a>> {
    match net {
        LaxNetSlice::Ipv4(v4) => Some(v4.payload()),
        LaxNetSlice::Ipv6(v6) => Some(v6.payload()),
        LaxNetSlice::Arp(_) => None,
    }
}

/// EtherType of transparent Ethernet bridging (a whole Ethernet frame).
const TEB: u16 = 0x6558;

/// A payload named by an EtherType (Ethernet, VLAN, GRE, Geneve, Linux SLL).
fn ether(et: u16, b: &[u8], depth: usize) -> Result<Decoded<'_>, DecodeError> {
    if depth > MAX_ENCAPSULATIONS {
        return Err(DecodeError::TooDeep);
    }
    match et {
        0x0800 | 0x86dd => open(sliced_from_ip(b)?, depth),
        // VLAN tags (past the three etherparse takes in one pass), MACsec.
        0x8100 | 0x88a8 | 0x9100 | 0x88e5 => {
            open(LaxSlicedPacket::from_ether_type(EtherType(et), b), depth)
        }
        TEB => open(
            LaxSlicedPacket::from_ethernet(b).map_err(|e| malformed("inner Ethernet header", e))?,
            depth,
        ),
        0x8864 => pppoe(b, depth),
        0x8847 | 0x8848 => mpls(b, depth),
        et if not_ip(et) => Err(DecodeError::NotIp(u32::from(et))),
        et => Err(DecodeError::Unsupported {
            what: "ethertype",
            value: u32::from(et),
        }),
    }
}

/// EtherTypes of link protocols that never carry IP: nothing of RTMP's is
/// in them, so they are passed over without counting.
fn not_ip(et: u16) -> bool {
    // Below 0x0600 the field is an IEEE 802.3 length: LLC/SNAP (STP, CDP, ...).
    et < 0x0600
        || matches!(
            et,
            0x0806 // ARP
                | 0x8035 // RARP
                | 0x809b // AppleTalk
                | 0x80f3 // AARP
                | 0x8137 // IPX
                | 0x8808 // MAC control (PAUSE)
                | 0x8809 // slow protocols (LACP, OAM)
                | 0x8863 // PPPoE discovery stage
                | 0x888e // EAPOL (802.1X)
                | 0x8892 // PROFINET
                | 0x88a4 // EtherCAT
                | 0x88b8 // IEC 61850 GOOSE
                | 0x88cc // LLDP
                | 0x88e1 // HomePlug AV
                | 0x88e3 // MRP
                | 0x88f7 // PTP
                | 0x8902 // CFM (802.1ag)
                | 0x8906 // FCoE
                | 0x8914 // FIP
                | 0x893a // IEEE 1905.1
                | 0x9000 // loopback (configuration testing)
        )
}

/// PPPoE session stage (RFC 2516 §4): VER 1, TYPE 1, CODE 0, session id,
/// LENGTH of the PPP payload; then PPP.
fn pppoe(b: &[u8], depth: usize) -> Result<Decoded<'_>, DecodeError> {
    let Some(h) = b.get(..6) else {
        return Err(malformed(
            "PPPoE header",
            format!("{} bytes, need 6", b.len()),
        ));
    };
    if h[0] != 0x11 {
        return Err(DecodeError::Unsupported {
            what: "PPPoE version and type",
            value: u32::from(h[0]),
        });
    }
    if h[1] != 0 {
        // Session data has code 0; anything else is discovery or garbage.
        return Err(DecodeError::NotIp(0x8864));
    }
    let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let body = &b[6..];
    // LENGTH drops the Ethernet padding; a snaplen cut keeps what is there.
    ppp(&body[..len.min(body.len())], depth)
}

/// A PPP frame from its protocol field (RFC 1661 §2; one byte when
/// compressed, §6.5: the low bit of a protocol's last byte is 1).
fn ppp(b: &[u8], depth: usize) -> Result<Decoded<'_>, DecodeError> {
    let (proto, rest) = match b {
        [p, rest @ ..] if p & 1 == 1 => (u16::from(*p), rest),
        [a, c, rest @ ..] => (u16::from_be_bytes([*a, *c]), rest),
        _ => {
            return Err(malformed(
                "PPP header",
                format!("{} bytes, need 2", b.len()),
            ));
        }
    };
    match proto {
        0x0021 | 0x0057 => open(sliced_from_ip(rest)?, depth),
        0x0281 | 0x0283 => mpls(rest, depth),
        // Network and link control protocols (LCP, PAP, CHAP, IPCP, ...).
        p if p >= 0x8000 => Err(DecodeError::NotIp(u32::from(p))),
        p => Err(DecodeError::Unsupported {
            what: "PPP protocol",
            value: u32::from(p),
        }),
    }
}

/// An MPLS label stack (RFC 3032 §2.1: 4 bytes per entry, S the low bit of
/// the third byte) and what it carries.
fn mpls(mut b: &[u8], depth: usize) -> Result<Decoded<'_>, DecodeError> {
    loop {
        let Some((entry, rest)) = b.split_first_chunk::<4>() else {
            return Err(malformed(
                "MPLS label stack",
                "cut before the bottom of the stack",
            ));
        };
        b = rest;
        if entry[2] & 1 == 1 {
            break;
        }
    }
    match b.first().map(|x| x >> 4) {
        Some(4 | 6) => open(sliced_from_ip(b)?, depth),
        // A pseudowire control word (RFC 4385 §3), then an Ethernet frame.
        Some(0) if b.len() >= 4 => ether(TEB, &b[4..], depth + 1),
        Some(n) => Err(DecodeError::Unsupported {
            what: "MPLS payload with first nibble",
            value: u32::from(n),
        }),
        None => Err(malformed("MPLS payload", "empty")),
    }
}

/// GRE (RFC 2784 §2, RFC 2890 §2, RFC 1701 §2.1 for the routing field;
/// version 1 is PPTP's enhanced GRE, RFC 2637 §4.1) and its payload.
fn gre(b: &[u8], depth: usize) -> Result<Decoded<'_>, DecodeError> {
    let cut = || malformed("GRE header", format!("{} bytes, cut", b.len()));
    let h = b.get(..4).ok_or_else(cut)?;
    let flags = u16::from_be_bytes([h[0], h[1]]);
    let proto = u16::from_be_bytes([h[2], h[3]]);
    let (c, r, k, s) = (
        flags & 0x8000 != 0,
        flags & 0x4000 != 0,
        flags & 0x2000 != 0,
        flags & 0x1000 != 0,
    );
    let mut len = 4;
    match flags & 7 {
        0 => {
            // Checksum and offset (reserved) when C or R; key; sequence.
            len += 4 * (usize::from(c || r) + usize::from(k) + usize::from(s));
            if r {
                // Source route entries, ended by a NULL one (family 0, length 0).
                loop {
                    let sre = b.get(len..len + 4).ok_or_else(cut)?;
                    let (family, sre_len) = (u16::from_be_bytes([sre[0], sre[1]]), sre[3]);
                    len += 4 + usize::from(sre_len);
                    if family == 0 && sre_len == 0 {
                        break;
                    }
                }
            }
            ether(proto, b.get(len..).ok_or_else(cut)?, depth)
        }
        1 if proto == 0x880b => {
            // Key (payload length, call id) always; sequence and ack if flagged.
            len += 4 + 4 * (usize::from(s) + usize::from(flags & 0x0080 != 0));
            let mut p = b.get(len..).ok_or_else(cut)?;
            // Address and control (0xff 0x03) unless compressed away.
            if let [0xff, 0x03, rest @ ..] = p {
                p = rest;
            }
            if p.is_empty() {
                // An acknowledgement only.
                return Err(DecodeError::NotIp(0x880b));
            }
            ppp(p, depth)
        }
        v => Err(DecodeError::Unsupported {
            what: "GRE version",
            value: u32::from(v),
        }),
    }
}

/// A UDP tunnel by its destination port: the EtherType and bytes of what
/// it carries. VXLAN (RFC 7348 §5: flags with I set, 24 reserved bits, VNI,
/// 8 reserved bits) on 4789, and on Linux's old default 8472 only when
/// every reserved bit is 0; Geneve (RFC 8926 §3.4: version 0, options
/// length in 4-byte words, protocol type) on 6081.
fn udp_tunnel(port: u16, b: &[u8]) -> Option<(u16, &[u8])> {
    match port {
        4789 | 8472 => {
            let (h, rest) = b.split_first_chunk::<8>()?;
            let strict = h[0] == 0x08 && h[1..4] == [0, 0, 0] && h[7] == 0;
            (h[0] & 0x08 != 0 && (port == 4789 || strict)).then_some((TEB, rest))
        }
        6081 => {
            // Version 0, reserved bits 0, a protocol it can carry to us:
            // anything else (RTMFP on that port) stays UDP.
            let h = b.get(..8)?;
            let proto = u16::from_be_bytes([h[2], h[3]]);
            let plausible = h[0] >> 6 == 0 && h[1] & 0x3f == 0 && h[7] == 0;
            if !plausible || !matches!(proto, TEB | 0x0800 | 0x86dd) {
                return None;
            }
            let opts = usize::from(h[0] & 0x3f) * 4;
            Some((proto, b.get(8 + opts..)?))
        }
        _ => None,
    }
}

/// The Fragment header (RFC 8200 §4.5) among IPv6 extension headers:
/// (identification, byte offset, more fragments). Walked here rather than
/// with etherparse's iterator, which reads past the end of the slice when
/// a lax parse stopped inside the chain (found by fuzzing: a heap read
/// overflow under AddressSanitizer).
fn ipv6_fragment(mut next: u8, mut ext: &[u8]) -> Option<(u32, u32, bool)> {
    loop {
        let len = match next {
            // Hop-by-hop, routing, destination options: (len + 1) × 8.
            0 | 43 | 60 => (usize::from(*ext.get(1)?) + 1) * 8,
            // Fragment: 8 bytes.
            44 => {
                let f = ext.get(..8)?;
                let word = u16::from_be_bytes([f[2], f[3]]);
                return Some((
                    u32::from_be_bytes([f[4], f[5], f[6], f[7]]),
                    u32::from(word >> 3) * 8,
                    word & 1 == 1,
                ));
            }
            // Authentication header: (len + 2) × 4.
            51 => (usize::from(*ext.get(1)?) + 2) * 4,
            _ => return None,
        };
        next = *ext.first()?;
        ext = ext.get(len..)?;
    }
}

// Inlined into decode(), as it was when decode() was its only caller: an
// Ethernet/IPv4/TCP packet then takes 776 instructions (callgrind,
// benches/decode.rs; 798 before tunnels were opened, 803 with a call here).
#[inline(always)]
fn from_sliced(p: LaxSlicedPacket<'_>) -> Result<Decoded<'_>, DecodeError> {
    let frag_info: Option<(u32, u32, bool)>;
    let (src_ip, dst_ip, ecn, dscp, ttl, fragmented, payload, claimed): (
        IpAddr,
        IpAddr,
        _,
        _,
        _,
        _,
        _,
        _,
    ) = match &p.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            frag_info = Some((
                u32::from(h.identification()),
                u32::from(h.fragments_offset().byte_offset()),
                h.more_fragments(),
            ));
            let pl = v4.payload();
            let hdr_total =
                usize::from(h.ihl()) * 4 + v4.extensions().auth.map_or(0, |a| a.slice().len());
            // total_len 0 happens with TSO captures: then the slice is all we know.
            let claimed = if h.total_len() == 0 {
                pl.payload.len()
            } else {
                usize::from(h.total_len()).saturating_sub(hdr_total)
            };
            (
                h.source_addr().into(),
                h.destination_addr().into(),
                h.ecn().value(),
                h.dcp().value(),
                h.ttl(),
                pl.fragmented,
                pl.clone(),
                claimed,
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            frag_info = ipv6_fragment(h.next_header().0, v6.extensions().slice());
            let pl = v6.payload();
            let claimed = if h.payload_length() == 0 {
                pl.payload.len()
            } else {
                usize::from(h.payload_length()).saturating_sub(v6.extensions().slice().len())
            };
            (
                h.source_addr().into(),
                h.destination_addr().into(),
                h.ecn().value(),
                h.dscp().value(),
                h.hop_limit(),
                pl.fragmented,
                pl.clone(),
                claimed,
            )
        }
        Some(LaxNetSlice::Arp(_)) => return Err(DecodeError::NotIp(0x0806)),
        None => {
            if let Some((err, layer)) = &p.stop_err {
                return Err(malformed("link layer", format!("{layer}: {err}")));
            }
            let et = p.ether_payload().map_or(0, |e| u32::from(e.ether_type.0));
            return Err(DecodeError::NotIp(et));
        }
    };
    let protocol = payload.ip_number.0;
    let truncated = payload.incomplete || payload.payload.len() < claimed;
    let mut out = Decoded {
        src: SocketAddr::new(src_ip, 0),
        dst: SocketAddr::new(dst_ip, 0),
        protocol,
        ecn,
        dscp,
        ttl,
        fragmented,
        truncated,
        transport: if fragmented {
            Transport::Fragment
        } else {
            Transport::Other
        },
        fragment: None,
    };
    if fragmented {
        if let Some((id, offset, more)) = frag_info {
            out.fragment = Some(IpFragment {
                id,
                offset,
                more,
                protocol,
                payload: payload.payload,
                truncated,
            });
        }
        return Ok(out);
    }
    match &p.transport {
        Some(TransportSlice::Tcp(tcp)) => {
            let hdr = tcp.header_slice();
            let flags = u16::from_be_bytes([hdr[12], hdr[13]]) & 0x01ff;
            out.src.set_port(tcp.source_port());
            out.dst.set_port(tcp.destination_port());
            let payload = tcp.payload();
            let wire = claimed.saturating_sub(hdr.len()).max(payload.len());
            out.transport = Transport::Tcp(TcpSegment {
                seq: tcp.sequence_number(),
                ack: tcp.acknowledgment_number(),
                flags: TcpFlags(flags),
                window: tcp.window_size(),
                payload,
                wire_len: wire as u32,
            });
        }
        Some(TransportSlice::Udp(udp)) => {
            out.src.set_port(udp.source_port());
            out.dst.set_port(udp.destination_port());
            let payload = udp.payload();
            let from_udp = usize::from(udp.length()).saturating_sub(8);
            let wire = if udp.length() >= 8 {
                from_udp
            } else {
                claimed.saturating_sub(8)
            };
            out.transport = Transport::Udp(UdpDatagram {
                payload,
                wire_len: wire.max(payload.len()) as u32,
            });
        }
        Some(_) => {}
        None => {
            if let Some((err, layer)) = &p.stop_err {
                // TCP/UDP header itself cut or invalid: say so rather than pretend "other".
                if protocol == 6 || protocol == 17 {
                    let got = payload.payload;
                    // The IP header says more was sent than captured: the
                    // snaplen cut the header (as tcpdump -s 64 does to TCP
                    // headers with options), it is not malformed.
                    if truncated {
                        let (layer, needed) = if protocol == 6 {
                            let doff = got.get(12).map_or(20, |b| usize::from(b >> 4) * 4);
                            ("TCP header", doff.max(20))
                        } else {
                            ("UDP header", 8)
                        };
                        if got.len() < needed {
                            return Err(DecodeError::SnaplenCut {
                                layer,
                                captured: got.len(),
                                needed,
                            });
                        }
                    }
                    return Err(malformed("transport header", format!("{layer}: {err}")));
                }
            }
        }
    }
    Ok(out)
}

/// The TCP header and payload of a reassembled IP datagram's payload
/// (see [`super::frag::Defragmenter`]): source port, destination port and
/// the segment; `None` if the header is cut or invalid.
pub fn tcp_segment(bytes: &[u8]) -> Option<(u16, u16, TcpSegment<'_>)> {
    let tcp = etherparse::TcpSlice::from_slice(bytes).ok()?;
    let hdr = tcp.header_slice();
    let flags = u16::from_be_bytes([hdr[12], hdr[13]]) & 0x01ff;
    let payload = tcp.payload();
    Some((
        tcp.source_port(),
        tcp.destination_port(),
        TcpSegment {
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            flags: TcpFlags(flags),
            window: tcp.window_size(),
            payload,
            wire_len: payload.len() as u32,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPv6 extension chains, whole and cut: the Fragment header is found
    /// behind others, read as RFC 8200 §4.5 lays it out, and a chain that
    /// ends early (or names a header that is not there) gives None.
    #[test]
    fn ipv6_fragment_header_in_whole_and_cut_chains() {
        // Hop-by-hop (8 bytes, next 60), destination options (16 bytes,
        // next 44), fragment: offset 1480 bytes, more fragments, id 0x01020304.
        let mut ext = vec![60, 0, 0, 0, 0, 0, 0, 0];
        ext.extend([44, 1]);
        ext.extend([0; 14]);
        let word: u16 = (1480 / 8) << 3 | 1;
        ext.extend([17, 0]);
        ext.extend(word.to_be_bytes());
        ext.extend([1, 2, 3, 4]);
        assert_eq!(ipv6_fragment(0, &ext), Some((0x0102_0304, 1480, true)));
        for cut in 0..ext.len() {
            assert_eq!(ipv6_fragment(0, &ext[..cut]), None, "cut at {cut}");
        }
        // No fragment header: the chain ends at the transport.
        assert_eq!(ipv6_fragment(6, &[]), None);
        assert_eq!(ipv6_fragment(0, &[6, 0, 0, 0, 0, 0, 0, 0]), None);
        // The fuzzer's capture (a lax parse stopped inside the chain) decodes
        // without reading past its packet.
        let data = include_bytes!(
            "../../fuzz/regressions/capture_reader/crash-38a23c1ce78e2e979cdcf1f6717cccefe5bc6f66"
        );
        if let Ok(mut r) = crate::capture::Reader::new(&data[..]) {
            while let Ok(Some(p)) = r.next_packet() {
                let _ = decode(p.link_type, p.data);
            }
        }
    }
    use crate::capture::testutil::tcp4;
    use etherparse::{PacketBuilder, VlanId};

    fn eth_tcp(vlans: usize, payload: &[u8]) -> Vec<u8> {
        let e = PacketBuilder::ethernet2([1; 6], [2; 6]);
        let mut v = Vec::new();
        let vid = |x| VlanId::try_new(x).unwrap();
        match vlans {
            0 => e
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 9)
                .tcp(1935, 50000, 77, 500)
                .ack(9)
                .psh()
                .write(&mut v, payload),
            1 => e
                .single_vlan(vid(5))
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 9)
                .tcp(1935, 50000, 77, 500)
                .ack(9)
                .psh()
                .write(&mut v, payload),
            _ => e
                .double_vlan(vid(5), vid(6))
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 9)
                .tcp(1935, 50000, 77, 500)
                .ack(9)
                .psh()
                .write(&mut v, payload),
        }
        .unwrap();
        v
    }

    fn udp6(tc: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv6([0xfe; 16], [0x20; 16], 3)
            .udp(1111, 2222)
            .write(&mut v, payload)
            .unwrap();
        // Traffic class straddles bytes 0 and 1 (RFC 8200 §3).
        v[0] = 0x60 | (tc >> 4);
        v[1] = (v[1] & 0x0f) | (tc << 4);
        v
    }

    #[test]
    fn ethernet_with_and_without_vlan_tags() {
        for vlans in 0..3 {
            let f = eth_tcp(vlans, b"hello");
            let d = decode(LinkType::ETHERNET, &f).unwrap();
            assert_eq!(d.src, "10.0.0.1:1935".parse().unwrap());
            assert_eq!(d.dst, "10.0.0.2:50000".parse().unwrap());
            assert_eq!(
                (d.protocol, d.ttl, d.truncated, d.fragmented),
                (6, 9, false, false)
            );
            let Transport::Tcp(t) = d.transport else {
                panic!("{d:?}")
            };
            assert_eq!(
                (t.seq, t.ack, t.window, t.payload, t.wire_len),
                (77, 9, 500, &b"hello"[..], 5)
            );
            assert_eq!(t.flags.0, TcpFlags::ACK | TcpFlags::PSH);
        }
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut f = eth_tcp(0, b"");
        f.resize(60, 0); // minimum Ethernet frame: padded
        let Transport::Tcp(t) = decode(LinkType::ETHERNET, &f).unwrap().transport else {
            panic!()
        };
        assert!(t.payload.is_empty());
        assert_eq!(t.wire_len, 0);
    }

    #[test]
    fn other_link_types_and_ipv6_ecn() {
        let ip = udp6(0xb9, b"rtmfp"); // DSCP 46 (EF), ECN 1 (ECT(1))
        let mut sll = vec![0, 0, 3, 4, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x86, 0xdd];
        sll.extend(&ip);
        let mut sll2 = vec![
            0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        sll2.extend(&ip);
        let mut null_le = 30u32.to_le_bytes().to_vec(); // macOS AF_INET6, little-endian host
        null_le.extend(&ip);
        let mut null_be = 24u32.to_be_bytes().to_vec(); // big-endian host
        null_be.extend(&ip);
        let mut lp = 24u32.to_be_bytes().to_vec();
        lp.extend(&ip);
        let cases = [
            (LinkType::LINUX_SLL, sll),
            (LinkType::LINUX_SLL2, sll2),
            (LinkType::NULL, null_le),
            (LinkType::NULL, null_be),
            (LinkType::LOOP, lp),
            (LinkType::RAW, ip.clone()),
            (LinkType::IPV6, ip.clone()),
            (LinkType::RAW_12, ip.clone()),
        ];
        for (lt, f) in cases {
            let d = decode(lt, &f).unwrap_or_else(|e| panic!("{lt:?}: {e}"));
            assert_eq!(
                d.src.to_string(),
                "[fefe:fefe:fefe:fefe:fefe:fefe:fefe:fefe]:1111"
            );
            assert_eq!((d.ecn, d.dscp, d.protocol), (1, 46, 17), "{lt:?}");
            let Transport::Udp(u) = d.transport else {
                panic!()
            };
            assert_eq!(u.payload, b"rtmfp");
        }
        // IPv4 TOS: DSCP 10, ECN CE.
        let mut v4 = tcp4([1, 2, 3, 4], 1, [5, 6, 7, 8], 2, 0, "A", b"x");
        v4[1] = (10 << 2) | 3;
        let d = decode(LinkType::IPV4, &v4).unwrap();
        assert_eq!((d.ecn, d.dscp), (3, 10));
        assert_eq!(
            decode(LinkType(147), &v4),
            Err(DecodeError::UnsupportedLinkType(147))
        );
        let mut arp_null = 2u32.to_le_bytes().to_vec();
        arp_null[0] = 7;
        assert!(matches!(
            decode(LinkType::NULL, &arp_null),
            Err(DecodeError::NotIp(7))
        ));
    }

    #[test]
    fn snaplen_cut_and_fragments_are_reported() {
        let f = eth_tcp(0, &[0xab; 1000]);
        let cut = &f[..14 + 20 + 20 + 100];
        let d = decode(LinkType::ETHERNET, cut).unwrap();
        assert!(d.truncated);
        let Transport::Tcp(t) = d.transport else {
            panic!()
        };
        assert_eq!((t.payload.len(), t.wire_len), (100, 1000));
        // Cut inside the TCP header: a clean error, not a bogus segment,
        // that says the snaplen cut it (not "malformed").
        for (cut, got) in [(10, 10), (0, 0), (19, 19)] {
            let e = decode(LinkType::ETHERNET, &f[..14 + 20 + cut]).unwrap_err();
            assert_eq!(
                e,
                DecodeError::SnaplenCut {
                    layer: "TCP header",
                    captured: got,
                    needed: 20
                }
            );
            assert_eq!(
                e.summary(),
                "cut by the capture's snaplen inside the TCP header"
            );
        }
        // With options (32 bytes, tcpdump -s 64 keeps 30 of them).
        let mut o = f.clone();
        o[14 + 20 + 12] = 8 << 4;
        let e = decode(LinkType::ETHERNET, &o[..64]).unwrap_err();
        assert!(
            matches!(
                e,
                DecodeError::SnaplenCut {
                    captured: 30,
                    needed: 32,
                    ..
                }
            ),
            "{e}"
        );
        // The whole packet there but a header that does not fit: malformed.
        let mut short = tcp4([1, 2, 3, 4], 1, [5, 6, 7, 8], 2, 0, "A", b"");
        short[2..4].copy_from_slice(&30u16.to_be_bytes());
        short.truncate(30);
        assert!(matches!(
            decode(LinkType::RAW, &short),
            Err(DecodeError::Malformed { .. })
        ));
        // IPv4 fragment (MF set): noted, not reassembled.
        let mut frag = tcp4([1, 2, 3, 4], 1, [5, 6, 7, 8], 2, 0, "A", b"abc");
        frag[6] = 0x20;
        let d = decode(LinkType::RAW, &frag).unwrap();
        assert!(d.fragmented);
        assert_eq!(d.transport, Transport::Fragment);
    }

    /// The IPv4 packet of `eth_tcp(0, ..)` (behind its Ethernet header).
    fn ip4_of(frame: &[u8]) -> Vec<u8> {
        frame[14..].to_vec()
    }

    fn eth(et: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        v.extend(et.to_be_bytes());
        v.extend(payload);
        v
    }

    fn pppoe(proto: &[u8], inner: &[u8]) -> Vec<u8> {
        let len = (proto.len() + inner.len()) as u16;
        let mut v = vec![0x11, 0, 0x12, 0x34];
        v.extend(len.to_be_bytes());
        v.extend(proto);
        v.extend(inner);
        v
    }

    fn mpls(labels: &[u32], inner: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for (i, l) in labels.iter().enumerate() {
            let s = u32::from(i + 1 == labels.len());
            v.extend(((l << 12) | (s << 8) | 64).to_be_bytes());
        }
        v.extend(inner);
        v
    }

    /// An outer IPv4 packet of protocol `proto` around `payload`.
    fn outer4(proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        etherparse::Ipv4Header::new(
            payload.len() as u16,
            64,
            etherparse::IpNumber(proto),
            [192, 0, 2, 1],
            [192, 0, 2, 2],
        )
        .unwrap()
        .write(&mut v)
        .unwrap();
        v.extend(payload);
        v
    }

    fn gre(head: &[u8], inner: &[u8]) -> Vec<u8> {
        let mut v = head.to_vec();
        v.extend(inner);
        outer4(47, &v)
    }

    fn udp4(port: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .udp(40000, port)
            .write(&mut v, payload)
            .unwrap();
        v
    }

    /// Every encapsulation, alone and nested, decodes to the very packet
    /// it carries; every prefix of each decodes or fails without a panic.
    #[test]
    fn encapsulations_decode_to_the_packet_inside() {
        let plain = eth_tcp(0, b"hello rtmp");
        let want = decode(LinkType::ETHERNET, &plain).unwrap();
        let ip = ip4_of(&plain);
        let six = {
            let mut v = Vec::new();
            PacketBuilder::ipv6([0xfe; 16], [0x20; 16], 3)
                .tcp(1935, 50000, 77, 500)
                .write(&mut v, b"hello rtmp")
                .unwrap();
            v
        };
        let want6 = decode(LinkType::RAW, &six).unwrap();
        let vxlan_hdr = [0x08, 0, 0, 0, 0, 0x13, 0x89, 0];
        let vx = |port| {
            let mut v = vxlan_hdr.to_vec();
            v.extend(&plain);
            eth(0x0800, &udp4(port, &v))
        };
        let mut geneve = vec![1, 0, 0x65, 0x58, 0, 0, 1, 0, 1, 2, 3, 4];
        geneve.extend(&plain);
        let mut cw = vec![0u8; 4];
        cw.extend(&plain);
        let mut pptp = vec![
            0x30, 0x81, 0x88, 0x0b, 0, 14, 0, 7, 0, 0, 0, 1, 0, 0, 0, 9, 0xff, 0x03,
        ];
        pptp.extend([0, 0x21]);
        pptp.extend(&ip);
        let mut vlan_pppoe = vec![0, 5, 0x88, 0x64];
        vlan_pppoe.extend(pppoe(&[0, 0x21], &ip));
        let mut vlan_mpls = vec![0, 5, 0x88, 0x47];
        vlan_mpls.extend(mpls(&[16], &ip));
        let mut four_vlans = Vec::new();
        for _ in 0..4 {
            four_vlans.extend([0, 5, 0x81, 0x00]);
        }
        four_vlans.truncate(four_vlans.len() - 2);
        four_vlans.extend([0x08, 0x00]);
        four_vlans.extend(&ip);
        let cases: Vec<(&str, LinkType, Vec<u8>, &Decoded<'_>)> = vec![
            (
                "PPPoE IPv4",
                LinkType::ETHERNET,
                eth(0x8864, &pppoe(&[0, 0x21], &ip)),
                &want,
            ),
            (
                "PPPoE IPv6",
                LinkType::ETHERNET,
                eth(0x8864, &pppoe(&[0, 0x57], &six)),
                &want6,
            ),
            (
                "PPPoE, PPP protocol compressed",
                LinkType::ETHERNET,
                eth(0x8864, &pppoe(&[0x21], &ip)),
                &want,
            ),
            (
                "VLAN + PPPoE",
                LinkType::ETHERNET,
                eth(0x8100, &vlan_pppoe),
                &want,
            ),
            (
                "MPLS 1 label",
                LinkType::ETHERNET,
                eth(0x8847, &mpls(&[1000], &ip)),
                &want,
            ),
            (
                "MPLS 2 labels",
                LinkType::ETHERNET,
                eth(0x8847, &mpls(&[1000, 2000], &ip)),
                &want,
            ),
            (
                "MPLS 2 labels IPv6",
                LinkType::ETHERNET,
                eth(0x8848, &mpls(&[1000, 2000], &six)),
                &want6,
            ),
            (
                "MPLS over VLAN",
                LinkType::ETHERNET,
                eth(0x8100, &vlan_mpls),
                &want,
            ),
            (
                "MPLS pseudowire",
                LinkType::ETHERNET,
                eth(0x8847, &mpls(&[99], &cw)),
                &want,
            ),
            (
                "GRE",
                LinkType::ETHERNET,
                eth(0x0800, &gre(&[0, 0, 8, 0], &ip)),
                &want,
            ),
            (
                "GRE IPv6",
                LinkType::ETHERNET,
                eth(0x0800, &gre(&[0, 0, 0x86, 0xdd], &six)),
                &want6,
            ),
            (
                "GRE key + seq",
                LinkType::ETHERNET,
                eth(0x0800, &gre(&[0x30, 0, 8, 0, 0, 0, 0, 42, 0, 0, 0, 7], &ip)),
                &want,
            ),
            (
                "GRE checksum",
                LinkType::ETHERNET,
                eth(0x0800, &gre(&[0x80, 0, 8, 0, 0xab, 0xcd, 0, 0], &ip)),
                &want,
            ),
            (
                "GRE routing",
                LinkType::ETHERNET,
                eth(
                    0x0800,
                    &gre(
                        &[
                            0x40, 0, 8, 0, 0, 0, 0, 0, 0, 2, 0, 4, 1, 2, 3, 4, 0, 0, 0, 0,
                        ],
                        &ip,
                    ),
                ),
                &want,
            ),
            (
                "GRE TEB",
                LinkType::ETHERNET,
                eth(0x0800, &gre(&[0, 0, 0x65, 0x58], &plain)),
                &want,
            ),
            (
                "PPTP GRE",
                LinkType::ETHERNET,
                eth(0x0800, &outer4(47, &pptp)),
                &want,
            ),
            (
                "GRE in VLAN",
                LinkType::ETHERNET,
                eth(
                    0x8100,
                    &[&[0, 9, 8, 0][..], &gre(&[0, 0, 8, 0], &ip)].concat(),
                ),
                &want,
            ),
            ("IP in IP", LinkType::RAW, outer4(4, &ip), &want),
            ("VXLAN", LinkType::ETHERNET, vx(4789), &want),
            ("VXLAN on 8472", LinkType::ETHERNET, vx(8472), &want),
            ("Geneve", LinkType::RAW, udp4(6081, &geneve), &want),
            (
                "four VLAN tags",
                LinkType::ETHERNET,
                eth(0x8100, &four_vlans),
                &want,
            ),
            (
                "SLL PPPoE",
                LinkType::LINUX_SLL,
                [
                    &[0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x88, 0x64][..],
                    &pppoe(&[0, 0x21], &ip),
                ]
                .concat(),
                &want,
            ),
        ];
        for (name, lt, frame, want) in &cases {
            let got = decode(*lt, frame).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&&got, want, "{name}");
            for cut in 0..frame.len() {
                let _ = decode(*lt, &frame[..cut]);
            }
        }
        // A VXLAN-looking datagram on 8472 with reserved bits set is UDP.
        let mut odd = vxlan_hdr.to_vec();
        odd[1] = 1;
        odd.extend(&plain);
        let odd = udp4(8472, &odd);
        let d = decode(LinkType::RAW, &odd).unwrap();
        assert!(matches!(d.transport, Transport::Udp(_)));
        // So is a datagram on Geneve's port that is no Geneve (RTMFP there).
        for head in [
            [0x40, 0, 0x65, 0x58],
            [0, 0, 0x12, 0x34],
            [0, 1, 0x65, 0x58],
        ] {
            let mut g = head.to_vec();
            g.extend([0, 0, 1, 0]);
            g.extend(&plain);
            let g = udp4(6081, &g);
            let d = decode(LinkType::RAW, &g).unwrap();
            assert!(matches!(d.transport, Transport::Udp(_)), "{head:?}");
        }
    }

    /// What is not opened is said, and why: an unknown EtherType, PPP
    /// protocol, GRE protocol or MPLS payload is Unsupported; control
    /// protocols are NotIp; nesting past the limit is TooDeep.
    #[test]
    fn encapsulations_not_opened_are_named() {
        let ip = ip4_of(&eth_tcp(0, b"x"));
        let unsupported = |what, value| Err(DecodeError::Unsupported { what, value });
        assert_eq!(
            decode(LinkType::ETHERNET, &eth(0x88b5, &ip)),
            unsupported("ethertype", 0x88b5)
        );
        assert_eq!(
            decode(LinkType::ETHERNET, &eth(0x8864, &pppoe(&[0, 0x2d], &ip))),
            unsupported("PPP protocol", 0x2d)
        );
        assert_eq!(
            decode(LinkType::ETHERNET, &eth(0x8864, &pppoe(&[0xc0, 0x21], &ip))),
            Err(DecodeError::NotIp(0xc021))
        );
        assert_eq!(
            decode(
                LinkType::ETHERNET,
                &eth(0x0800, &gre(&[0, 0, 0x12, 0x34], &ip))
            ),
            unsupported("ethertype", 0x1234)
        );
        assert_eq!(
            decode(LinkType::ETHERNET, &eth(0x8847, &mpls(&[5], &[0x50; 20]))),
            unsupported("MPLS payload with first nibble", 5)
        );
        assert_eq!(
            decode(LinkType::ETHERNET, &eth(0x88cc, &[0; 40])),
            Err(DecodeError::NotIp(0x88cc))
        );
        assert!(matches!(
            decode(LinkType::ETHERNET, &eth(0x8847, &[0, 0, 0, 64])),
            Err(DecodeError::Malformed { .. })
        ));
        assert_eq!(
            DecodeError::Unsupported {
                what: "ethertype",
                value: 0x88b5
            }
            .to_string(),
            "in an encapsulation rtmptool does not decode (ethertype 0x88b5)"
        );
        // GRE in GRE in ...: the limit, not the stack, ends it.
        let mut p = ip.clone();
        for n in 1..=64 {
            p = gre(&[0, 0, 8, 0], &p);
            let got = decode(LinkType::RAW, &p);
            if n <= MAX_ENCAPSULATIONS {
                assert!(got.is_ok(), "{n}: {got:?}");
            } else {
                assert_eq!(got, Err(DecodeError::TooDeep), "{n}");
            }
        }
        // VLAN tags without end, and MPLS stacks with no bottom.
        let mut vlans = Vec::new();
        for _ in 0..10_000 {
            vlans.extend([0, 5, 0x81, 0x00]);
        }
        assert_eq!(
            decode(LinkType::ETHERNET, &eth(0x8100, &vlans)),
            Err(DecodeError::TooDeep)
        );
        assert!(matches!(
            decode(LinkType::ETHERNET, &eth(0x8847, &[0; 40_000])),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn every_prefix_never_panics() {
        let frames = [eth_tcp(2, b"payload"), udp6(3, b"abc")];
        for f in &frames {
            for cut in 0..=f.len() {
                for lt in [0, 1, 12, 101, 108, 113, 228, 229, 276] {
                    let _ = decode(LinkType(lt), &f[..cut]);
                }
            }
        }
    }
}
