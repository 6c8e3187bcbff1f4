//! The handshake inspectors and both state machines on arbitrary bytes.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rtmptool::proto::handshake::{
    ClientHandshake, HandshakeConfig, Role, ServerHandshake, inspect_c1s1, inspect_c2s2,
};

fuzz_target!(|data: &[u8]| {
    let _ = inspect_c1s1(data, Role::Client);
    let _ = inspect_c1s1(data, Role::Server);
    if data.len() >= 3072 {
        let _ = inspect_c2s2(&data[..1536], Role::Client, &data[1536..3072]);
    }
    let mut fill = |b: &mut [u8]| b.fill(7);
    let mut c = ClientHandshake::new(HandshakeConfig::client(), 0, &mut fill);
    let _ = c.handle_input(&mut BytesMut::from(data), 1);
    let mut s = ServerHandshake::new(HandshakeConfig::server(), 0, &mut fill);
    let _ = s.handle_input(&mut BytesMut::from(data), 1);
});
