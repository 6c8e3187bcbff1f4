//! The pcap/pcapng reader and TCP reassembly on arbitrary bytes: never panics;
//! the same packets whatever the read size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmptool::capture::tcp::Reassembler;
use rtmptool::capture::{Reader, Transport, decode};

struct Pieces<'a>(&'a [u8], usize);

impl std::io::Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn run(data: &[u8], step: usize) -> Vec<(u64, usize)> {
    let mut out = Vec::new();
    let Ok(mut r) = Reader::new(Pieces(data, step)) else {
        return out;
    };
    let mut re = Reassembler::new();
    while let Ok(Some(p)) = r.next_packet() {
        out.push((p.frame, p.data.len()));
        if let Ok(d) = decode(p.link_type, p.data)
            && let Transport::Tcp(seg) = d.transport
        {
            re.segment(d.src, d.dst, &seg, p.frame, p.time, |_| {});
        }
    }
    re.flush(|_| {});
    out
}

fuzz_target!(|data: &[u8]| {
    assert_eq!(run(data, data.len().max(1)), run(data, 7));
});
