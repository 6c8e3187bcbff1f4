//! The server session (and serve's strict analysis of the same bytes) fed
//! arbitrary client bytes: never panics, never grows without bound; it
//! either goes on or fails with a typed error. Requests are accepted and
//! refused in turn, and playing streams get media, as serve would.
//! An input whose first byte is even gets a valid handshake in front, so
//! most runs reach the chunk stream and the commands.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rtmptool::capture::Timestamp;
use rtmptool::proto::chunk::ReserveBudget;
use rtmptool::proto::message::MessageType;
use rtmptool::proto::session::{Request, ServerConfig, ServerEvent, ServerSession};
use rtmptool::serve::strict::Strict;

fuzz_target!(|data: &[u8]| {
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    let mut input = Vec::with_capacity(rest.len() + 3073);
    if flag % 2 == 0 {
        input.push(3);
        input.resize(3073, 0);
    }
    input.extend_from_slice(rest);
    let mut fill = |b: &mut [u8]| b.fill(1);
    let budget = ReserveBudget::new(8 << 20);
    let mut s = ServerSession::new(
        ServerConfig {
            budget: Some(budget.clone()),
            ..ServerConfig::default()
        },
        Duration::ZERO,
        &mut fill,
    );
    let client = "127.0.0.1:5000".parse().unwrap();
    let server = "127.0.0.1:1935".parse().unwrap();
    let mut strict = Strict::new(client, server, 0, Arc::clone(&budget), false);
    let mut turn = 0u32;
    for (i, piece) in input.chunks(509).enumerate() {
        let t = Timestamp { sec: i as i64, nsec: 0 };
        strict.received(piece, t);
        let failed = s.handle_input(piece, Duration::from_millis(i as u64)).is_err();
        while let Some(ev) = s.poll_event() {
            if let ServerEvent::Request(id, req) = ev.event {
                turn += 1;
                if turn % 3 == 0 {
                    s.reject(id, "NetStream.Publish.BadName", "no");
                } else {
                    s.accept(id);
                    if let Request::Play { stream_id, .. } = req {
                        s.send_media(stream_id, MessageType::VIDEO, i as u32, &[0x17, 1, 0, 0, 0]);
                    }
                }
            }
        }
        while let Some(b) = s.poll_transmit() {
            strict.sent(&b, t);
        }
        if failed {
            break;
        }
        let _ = strict.take_findings();
    }
    let _ = strict.end(
        rtmptool::capture::tcp::Dir::C2s,
        rtmptool::analyze::CloseKind::Fin,
        Timestamp { sec: 9999, nsec: 0 },
    );
});
