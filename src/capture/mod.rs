//! Captures: pcap/pcapng reading, link types, IPv4/IPv6, TCP reassembly, UDP.
//!
//! The pipeline is [`Reader`] (pcap-savefile(5) / draft-ietf-opsawg-pcapng
//! framing, streaming, bounded memory) → [`decode()`] (link layer, IP, TCP/UDP,
//! lax) → [`tcp::Reassembler`] (RFC 9293 per-direction byte streams) for TCP,
//! or [`Udp`] for datagrams. Everything works in constant memory over a
//! stream: the reader holds one fixed buffer, decoding borrows, and
//! reassembly only buffers out-of-order data within [`tcp::Limits`].

mod decode;
pub mod frag;
mod reader;
pub mod tcp;
#[cfg(test)]
mod testutil;

pub use decode::{
    DecodeError, Decoded, IpFragment, TcpFlags, TcpSegment, Transport, UdpDatagram, decode,
    tcp_segment,
};
pub use reader::{
    BUFFER_LEN, CaptureError, Format, LinkType, MAX_BLOCK_LEN, MAX_INTERFACES, MAX_PACKET_LEN,
    Packet, Reader, Timestamp,
};

use std::net::SocketAddr;

/// A UDP datagram with its IP facts, passed through for RTMFP and ECN analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp<'a> {
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// Captured payload.
    pub payload: &'a [u8],
    /// Payload length on the wire (more than `payload.len()` if the snaplen cut it).
    pub wire_len: u32,
    /// IP ECN codepoint (0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE).
    pub ecn: u8,
    /// IP DSCP.
    pub dscp: u8,
    /// Frame number.
    pub frame: u64,
    /// Capture time.
    pub time: Timestamp,
}

impl<'a> Udp<'a> {
    /// The UDP view of a decoded packet, if it is an unfragmented UDP datagram.
    pub fn from_decoded(d: &Decoded<'a>, frame: u64, time: Timestamp) -> Option<Udp<'a>> {
        match d.transport {
            Transport::Udp(u) => Some(Udp {
                src: d.src,
                dst: d.dst,
                payload: u.payload,
                wire_len: u.wire_len,
                ecn: d.ecn,
                dscp: d.dscp,
                frame,
                time,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tcp::{Dir, Event, Reassembler};
    use super::testutil::{Ng, pcap, tcp4};
    use super::*;

    /// Read, decode and reassemble a whole capture; returns the c2s stream of
    /// connection 0 (gaps as `?`) and the number of UDP datagrams.
    fn run(file: &[u8]) -> (Vec<u8>, usize) {
        let mut r = Reader::new(file).unwrap();
        let mut re = Reassembler::new();
        let mut out = Vec::new();
        let mut udp = 0;
        let mut on = |e: Event<'_>| match e {
            Event::Data {
                dir: Dir::C2s,
                stream_offset,
                bytes,
                ..
            } => {
                assert_eq!(stream_offset, out.len() as u64);
                out.extend_from_slice(bytes);
            }
            Event::Gap {
                dir: Dir::C2s,
                missing_len,
                ..
            } => out.extend(std::iter::repeat_n(b'?', missing_len as usize)),
            _ => {}
        };
        while let Some(p) = r.next_packet().unwrap() {
            let d = decode(p.link_type, p.data).unwrap();
            match d.transport {
                Transport::Tcp(seg) => re.segment(d.src, d.dst, &seg, p.frame, p.time, &mut on),
                Transport::Udp(_) => udp += 1,
                _ => {}
            }
        }
        re.flush(&mut on);
        (out, udp)
    }

    const C: [u8; 4] = [192, 168, 0, 1];
    const S: [u8; 4] = [192, 168, 0, 2];

    /// SYN, then "hello world, this is rtmp" in 4 segments delivered out of
    /// order with a retransmission, the last one cut by the snaplen.
    fn segments() -> Vec<(Vec<u8>, u32)> {
        let syn = tcp4(C, 4000, S, 1935, 99, "S", b"");
        let a = tcp4(C, 4000, S, 1935, 100, "A", b"hello ");
        let b = tcp4(C, 4000, S, 1935, 106, "A", b"world, ");
        let c = tcp4(C, 4000, S, 1935, 113, "A", b"this is ");
        let d = tcp4(C, 4000, S, 1935, 121, "AP", b"rtmp");
        let dl = d.len() as u32;
        let d_cut = d[..d.len() - 2].to_vec();
        vec![
            (syn, 0),
            (b.clone(), 0),
            (a, 0),
            (c, 0),
            (b, 0),
            (d_cut, dl),
        ]
    }

    fn eth(ip: &[u8], vlan: bool) -> Vec<u8> {
        let mut f = vec![2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1];
        if vlan {
            f.extend([0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 6]); // QinQ: 802.1ad outer, 802.1Q inner
        }
        f.extend([0x08, 0x00]);
        f.extend(ip);
        f
    }

    const WANT: &[u8] = b"hello world, this is rt??";

    #[test]
    fn pipeline_pcap_link_types() {
        type Wrap = Box<dyn Fn(&[u8]) -> Vec<u8>>;
        let wraps: Vec<(u32, Wrap)> = vec![
            (1, Box::new(|ip| eth(ip, false))),
            (1, Box::new(|ip| eth(ip, true))),
            (101, Box::new(|ip| ip.to_vec())),
            (0, Box::new(|ip| [&2u32.to_le_bytes()[..], ip].concat())),
            (108, Box::new(|ip| [&2u32.to_be_bytes()[..], ip].concat())),
            (
                113,
                Box::new(|ip| [&[0, 0, 3, 4, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 8, 0][..], ip].concat()),
            ),
        ];
        for (link, wrap) in &wraps {
            for be in [false, true] {
                let frames: Vec<(Vec<u8>, u32)> = segments()
                    .into_iter()
                    .map(|(ip, orig)| {
                        let f = wrap(&ip);
                        let extra = f.len() as u32 - ip.len() as u32;
                        let o = if orig == 0 {
                            f.len() as u32
                        } else {
                            orig + extra
                        };
                        (f, o)
                    })
                    .collect();
                let recs: Vec<(u32, u32, &[u8], u32)> = frames
                    .iter()
                    .enumerate()
                    .map(|(i, (f, o))| (i as u32, 0, &f[..], *o))
                    .collect();
                let file = pcap(be, be, *link, &recs);
                assert_eq!(run(&file).0, WANT, "link {link} be {be}");
            }
        }
    }

    #[test]
    fn pipeline_pcapng_two_interfaces_two_sections() {
        let segs = segments();
        let le = Ng { be: false };
        let be = Ng { be: true };
        // Section 1: Ethernet (µs) and SLL2 (ns); section 2 (big-endian): raw IP.
        let mut f = le.shb();
        f.extend(le.idb(1, None));
        f.extend(le.idb(276, Some(9)));
        let sll2 = |ip: &[u8]| {
            [
                &[8, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0][..],
                ip,
            ]
            .concat()
        };
        f.extend(le.epb(0, 1, &eth(&segs[0].0, true), 0));
        f.extend(le.epb(1, 2, &sll2(&segs[1].0), 0));
        f.extend(le.epb(0, 3, &eth(&segs[2].0, false), 0));
        let mut u = Vec::new();
        etherparse::PacketBuilder::ipv4(C, S, 1)
            .udp(1, 2)
            .write(&mut u, b"dgram")
            .unwrap();
        f.extend(le.epb(1, 4, &sll2(&u), 0));
        f.extend(be.shb());
        f.extend(be.idb(101, Some(6)));
        f.extend(be.epb(0, 5, &segs[3].0, 0));
        f.extend(be.pb(0, 6, &segs[4].0));
        f.extend(be.epb(0, 7, &segs[5].0, segs[5].1));
        let (stream, udp) = run(&f);
        assert_eq!(stream, WANT);
        assert_eq!(udp, 1);
    }
}
