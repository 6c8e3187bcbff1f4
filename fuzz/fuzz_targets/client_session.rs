//! The client session fed arbitrary server bytes: never panics; it either
//! goes on or fails with a typed error.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rtmptool::proto::session::{ClientSession, Goal, SessionConfig};

fuzz_target!(|data: &[u8]| {
    let cfg = SessionConfig::new("live", "rtmp://127.0.0.1/live", Goal::Connect);
    let mut fill = |b: &mut [u8]| b.fill(1);
    let mut s = ClientSession::new(cfg, Duration::ZERO, &mut fill);
    while s.poll_transmit().is_some() {}
    for (i, piece) in data.chunks(509).enumerate() {
        if s.handle_input(piece, Duration::from_millis(i as u64)).is_err() {
            break;
        }
        while s.poll_transmit().is_some() {}
        while s.poll_event().is_some() {}
    }
});
