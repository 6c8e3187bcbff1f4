//! Captures: pcap/pcapng reading, link types, IPv4/IPv6, TCP reassembly, UDP.
//!
//! The pipeline is [`Reader`] (pcap-savefile(5) / draft-ietf-opsawg-pcapng
//! framing, streaming, bounded memory) → [`decode()`] (link layer, IP, TCP/UDP,
//! lax) → [`tcp::Reassembler`] (RFC 9293 per-direction byte streams) for TCP,
//! or [`Udp`] for datagrams. Everything works in constant memory over a
//! stream: the reader holds one fixed buffer, decoding borrows, and
//! reassembly only buffers out-of-order data within [`tcp::Limits`].

mod decode;
#[cfg(test)]
mod testutil;
mod reader;
pub mod tcp;

pub use decode::{DecodeError, Decoded, TcpFlags, TcpSegment, Transport, UdpDatagram, decode};
pub use reader::{
    BUFFER_LEN, CaptureError, Format, LinkType, MAX_BLOCK_LEN, MAX_INTERFACES, MAX_PACKET_LEN, Packet, Reader,
    Timestamp,
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
