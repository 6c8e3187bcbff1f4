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
//! IP fragments are reported as [`Transport::Fragment`] with their
//! identification, offset and bytes ([`Decoded::fragment`]), for
//! [`super::frag::Defragmenter`] to reassemble.
//! A payload cut by the capture's snaplen is reported through
//! [`Decoded::truncated`] and the transport's `wire_len`, so reassembly can
//! treat the missing bytes as a gap instead of garbage.

use std::net::{IpAddr, SocketAddr};

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};

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
    /// The link layer carries something other than IPv4/IPv6 (ARP, LLC, ...).
    #[error("not IP (link protocol {0:#06x})")]
    NotIp(u32),
    /// A header is cut short or malformed.
    #[error("malformed {layer}: {reason}")]
    Malformed {
        /// Layer where decoding stopped.
        layer: &'static str,
        /// What was wrong.
        reason: String,
    },
}

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
    from_sliced(sliced)
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
        // Cut inside the TCP header: a clean error, not a bogus segment.
        assert!(matches!(
            decode(LinkType::ETHERNET, &f[..14 + 20 + 10]),
            Err(DecodeError::Malformed { .. })
        ));
        // IPv4 fragment (MF set): noted, not reassembled.
        let mut frag = tcp4([1, 2, 3, 4], 1, [5, 6, 7, 8], 2, 0, "A", b"abc");
        frag[6] = 0x20;
        let d = decode(LinkType::RAW, &frag).unwrap();
        assert!(d.fragmented);
        assert_eq!(d.transport, Transport::Fragment);
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
