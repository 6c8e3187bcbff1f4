//! The FLV reader on arbitrary bytes, fed in pieces: never panics; the same
//! events whatever the piece size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmptool::proto::flv;

fn events(data: &[u8], step: usize) -> Vec<String> {
    let mut r = flv::Reader::new();
    let mut out = Vec::new();
    for piece in data.chunks(step.max(1)) {
        r.push(piece);
        loop {
            match r.poll() {
                Ok(Some(ev)) => out.push(format!("{ev:?}")),
                Ok(None) => break,
                Err(e) => {
                    out.push(format!("error {e}"));
                    return out;
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let whole = events(data, data.len());
    let pieces = events(data, 7);
    assert_eq!(whole, pieces);
});
