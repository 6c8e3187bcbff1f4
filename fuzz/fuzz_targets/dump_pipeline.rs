//! The whole dump pipeline (reader, reassembly, analyzer) on arbitrary bytes,
//! and on a real capture with bytes flipped: never panics, bounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmptool::analyze::{Analyzer, Options};
use rtmptool::capture::Reader;

fuzz_target!(|data: &[u8]| {
    let Ok(mut r) = Reader::new(data) else {
        return;
    };
    let mut an = Analyzer::new(Options {
        max_reserved_bytes: Some(1 << 20),
        max_connections: Some(64),
        ..Default::default()
    });
    let mut n = 0u64;
    while let Ok(Some(p)) = r.next_packet() {
        an.packet(&p, &mut |_| n += 1);
    }
    an.finish(&mut |_| n += 1);
});
