//! Throughput of read + decode + reassemble (release build, ignored by default):
//!
//! ```text
//! cargo test --release --test capture_throughput -- --ignored --nocapture
//! CAPTURE_BENCH_FILE=/path/x.pcap cargo test --release --test capture_throughput -- --ignored --nocapture
//! ```
//!
//! Without `CAPTURE_BENCH_FILE` it writes a synthetic ~400 MB Ethernet pcap
//! (64 interleaved connections, 1448-byte segments, 1 % reordered, 0.5 %
//! retransmitted) to the target directory, then times a raw read of the file
//! (the `cat > /dev/null` baseline) and the full pipeline.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use etherparse::PacketBuilder;
use rtmptool::capture::tcp::{Event, Reassembler};
use rtmptool::capture::{Reader, Transport, decode};

fn synth(path: &PathBuf, target: u64) {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let mut hdr = Vec::new();
    hdr.extend(0xa1b2_c3d4u32.to_le_bytes());
    hdr.extend(2u16.to_le_bytes());
    hdr.extend(4u16.to_le_bytes());
    hdr.extend([0u8; 8]);
    hdr.extend(262_144u32.to_le_bytes());
    hdr.extend(1u32.to_le_bytes());
    w.write_all(&hdr).unwrap();
    let payload: Vec<u8> = (0..1448u32).map(|i| (i * 7) as u8).collect();
    let mut seqs = [1u32; 64];
    let (mut written, mut n) = (24u64, 0u64);
    let mut held: Option<Vec<u8>> = None;
    let mut frame = Vec::with_capacity(2000);
    while written < target {
        let c = (n % 64) as usize;
        frame.clear();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 1, c as u8], 64)
            .tcp(40000 + c as u16, 1935, seqs[c], 65535)
            .ack(1)
            .write(&mut frame, &payload)
            .unwrap();
        seqs[c] = seqs[c].wrapping_add(1448);
        let mut rec = Vec::with_capacity(16 + frame.len());
        rec.extend(((n / 10000) as u32).to_le_bytes());
        rec.extend(((n % 10000) as u32 * 100).to_le_bytes());
        rec.extend((frame.len() as u32).to_le_bytes());
        rec.extend((frame.len() as u32).to_le_bytes());
        rec.extend(&frame);
        if n % 100 == 7 && held.is_none() {
            held = Some(rec); // reorder: emit after the next packet of another conn
        } else {
            w.write_all(&rec).unwrap();
            written += rec.len() as u64;
            if n % 200 == 3 {
                w.write_all(&rec).unwrap(); // retransmission
                written += rec.len() as u64;
            }
            if let Some(h) = held.take() {
                w.write_all(&h).unwrap();
                written += h.len() as u64;
            }
        }
        n += 1;
    }
    w.flush().unwrap();
}

#[test]
#[ignore = "throughput measurement; run in release with --ignored --nocapture"]
fn throughput() {
    let path = match std::env::var_os("CAPTURE_BENCH_FILE") {
        Some(p) => PathBuf::from(p),
        None => {
            let dir = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| PathBuf::from("target"), PathBuf::from);
            let p = dir.join("capture_bench.pcap");
            if !p.exists() {
                synth(&p, 400 << 20);
            }
            p
        }
    };
    let size = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;

    let t = Instant::now();
    let mut f = File::open(&path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf).unwrap() > 0 {}
    let raw = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut r = Reader::new(File::open(&path).unwrap()).unwrap();
    let mut re = Reassembler::new();
    let (mut bytes, mut gaps, mut packets) = (0u64, 0u64, 0u64);
    let mut on = |e: Event<'_>| match e {
        Event::Data { bytes: b, .. } => bytes += b.len() as u64,
        Event::Gap { .. } => gaps += 1,
        _ => {}
    };
    while let Some(p) = r.next_packet().unwrap() {
        packets += 1;
        if let Ok(d) = decode(p.link_type, p.data)
            && let Transport::Tcp(seg) = d.transport
        {
            re.segment(d.src, d.dst, &seg, p.frame, p.time, &mut on);
        }
    }
    re.flush(&mut on);
    let full = t.elapsed().as_secs_f64();
    println!(
        "{size:.0} MB, {packets} packets: raw read {raw:.3} s ({:.0} MB/s); read+decode+reassemble {full:.3} s ({:.0} MB/s, {:.1} Mpkt/s); {bytes} stream bytes, {gaps} gaps",
        size / raw,
        size / full,
        packets as f64 / full / 1e6
    );
    assert_eq!(gaps, 0);
}
