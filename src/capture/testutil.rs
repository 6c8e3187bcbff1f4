//! Test helpers: hand-written pcap / pcapng bytes and packets built with
//! etherparse's `PacketBuilder` (an independent encoder).

use etherparse::PacketBuilder;

/// A classic pcap file: `(ts_sec, ts_frac, data, orig_len)` records.
pub fn pcap(be: bool, nanos: bool, link: u32, recs: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
    let w32 = |v: &mut Vec<u8>, x: u32| {
        v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() })
    };
    let w16 = |v: &mut Vec<u8>, x: u16| {
        v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() })
    };
    let mut v = Vec::new();
    w32(&mut v, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    w16(&mut v, 2);
    w16(&mut v, 4);
    w32(&mut v, 0);
    w32(&mut v, 0);
    w32(&mut v, 262_144);
    w32(&mut v, link);
    for (s, f, d, orig) in recs {
        w32(&mut v, *s);
        w32(&mut v, *f);
        w32(&mut v, d.len() as u32);
        w32(&mut v, *orig);
        v.extend_from_slice(d);
    }
    v
}

/// pcapng block writer for one byte order.
pub struct Ng {
    pub be: bool,
}

impl Ng {
    fn u32(&self, x: u32) -> [u8; 4] {
        if self.be {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    }
    fn u16(&self, x: u16) -> [u8; 2] {
        if self.be {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    }
    fn block(&self, t: u32, body: &[u8]) -> Vec<u8> {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let len = 12 + body.len() as u32;
        let mut v = self.u32(t).to_vec();
        v.extend_from_slice(&self.u32(len));
        v.extend_from_slice(&body);
        v.extend_from_slice(&self.u32(len));
        v
    }
    pub fn shb(&self) -> Vec<u8> {
        let mut b = self.u32(0x1A2B_3C4D).to_vec();
        b.extend_from_slice(&self.u16(1));
        b.extend_from_slice(&self.u16(0));
        b.extend_from_slice(&[0xff; 8]); // section length unknown (-1)
        self.block(0x0A0D_0D0A, &b)
    }
    pub fn idb(&self, link: u16, tsresol: Option<u8>) -> Vec<u8> {
        let mut b = self.u16(link).to_vec();
        b.extend_from_slice(&self.u16(0));
        b.extend_from_slice(&self.u32(0));
        if let Some(r) = tsresol {
            b.extend_from_slice(&self.u16(9));
            b.extend_from_slice(&self.u16(1));
            b.extend_from_slice(&[r, 0, 0, 0]);
            b.extend_from_slice(&[0; 4]); // opt_endofopt
        }
        self.block(1, &b)
    }
    /// An IDB with `if_tsresol` and `if_tsoffset` (seconds) options.
    pub fn idb_offset(&self, link: u16, tsresol: u8, offset: i64) -> Vec<u8> {
        let mut b = self.u16(link).to_vec();
        b.extend_from_slice(&self.u16(0));
        b.extend_from_slice(&self.u32(0));
        b.extend_from_slice(&self.u16(9));
        b.extend_from_slice(&self.u16(1));
        b.extend_from_slice(&[tsresol, 0, 0, 0]);
        b.extend_from_slice(&self.u16(14));
        b.extend_from_slice(&self.u16(8));
        b.extend_from_slice(&if self.be {
            offset.to_be_bytes()
        } else {
            offset.to_le_bytes()
        });
        b.extend_from_slice(&[0; 4]); // opt_endofopt
        self.block(1, &b)
    }
    pub fn epb(&self, ifid: u32, ts: u64, data: &[u8], orig: u32) -> Vec<u8> {
        let mut b = self.u32(ifid).to_vec();
        b.extend_from_slice(&self.u32((ts >> 32) as u32));
        b.extend_from_slice(&self.u32(ts as u32));
        b.extend_from_slice(&self.u32(data.len() as u32));
        b.extend_from_slice(&self.u32(orig));
        b.extend_from_slice(data);
        self.block(6, &b)
    }
    pub fn spb(&self, data: &[u8]) -> Vec<u8> {
        let mut b = self.u32(data.len() as u32).to_vec();
        b.extend_from_slice(data);
        self.block(3, &b)
    }
    /// Obsolete Packet Block (type 2).
    pub fn pb(&self, ifid: u16, ts: u64, data: &[u8]) -> Vec<u8> {
        let mut b = self.u16(ifid).to_vec();
        b.extend_from_slice(&self.u16(0));
        b.extend_from_slice(&self.u32((ts >> 32) as u32));
        b.extend_from_slice(&self.u32(ts as u32));
        b.extend_from_slice(&self.u32(data.len() as u32));
        b.extend_from_slice(&self.u32(data.len() as u32));
        b.extend_from_slice(data);
        self.block(2, &b)
    }
    /// A block of an unknown type (must be skipped).
    /// A block of a type no pcapng reader knows.
    pub fn unknown(&self, len: usize) -> Vec<u8> {
        self.block(0x0000_4242, &vec![0x5a; len])
    }
    /// A block of type `t` with `len` bytes of body.
    pub fn other(&self, t: u32, len: usize) -> Vec<u8> {
        self.block(t, &vec![0x5a; len])
    }
}

/// Raw IPv4 + TCP packet.
pub fn tcp4(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    seq: u32,
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(src, dst, 64).tcp(sport, dport, seq, 65535);
    for f in flags.chars() {
        b = match f {
            'S' => b.syn(),
            'F' => b.fin(),
            'R' => b.rst(),
            'P' => b.psh(),
            _ => b,
        };
    }
    if flags.contains('A') {
        b = b.ack(1);
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}
