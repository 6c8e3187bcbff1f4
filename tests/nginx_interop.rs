//! Loopback interop with a real nginx-rtmp (Debian nginx + libnginx-mod-rtmp),
//! started on a free port and stopped by PID: our handshake (digest and
//! simple), chunk encoder/decoder and AMF complete a `connect` with
//! `NetConnection.Connect.Success`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtmptool::proto::amf0::Amf0Value;
use rtmptool::proto::chunk::{ChunkDecoder, ChunkEncoder, ChunkEvent, MessageHeader};
use rtmptool::proto::handshake::{
    ClientHandshake, HandshakeConfig, HandshakeOutcome, PeerHandshake,
};
use rtmptool::proto::message::{Command, Message};

fn random() -> impl FnMut(&mut [u8]) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    move |buf: &mut [u8]| {
        for b in buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
}

struct Connected {
    handshake: HandshakeOutcome,
    /// Everything nginx sent after the handshake, up to the connect `_result`.
    messages: Vec<Message>,
    chunk_size: u32,
}

fn connect(addr: std::net::SocketAddr, config: HandshakeConfig, app: &str) -> Connected {
    let start = Instant::now();
    let now = || start.elapsed().as_millis() as u32;
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.set_nodelay(true).unwrap();

    let mut hs = ClientHandshake::new(config, now(), &mut random());
    let mut buf = BytesMut::new();
    let mut tmp = [0u8; 65536];
    let outcome = loop {
        while let Some(out) = hs.poll_transmit() {
            sock.write_all(&out).unwrap();
        }
        if let Some(o) = hs.handle_input(&mut buf, now()).unwrap() {
            break o;
        }
        let n = sock.read(&mut tmp).unwrap();
        assert!(n > 0, "nginx closed the connection during the handshake");
        buf.extend_from_slice(&tmp[..n]);
    };
    while let Some(out) = hs.poll_transmit() {
        sock.write_all(&out).unwrap();
    }

    let tc_url = format!("rtmp://{addr}/{app}");
    let cmd = Command::new(
        "connect",
        1.0,
        Amf0Value::Object(vec![
            ("app".into(), Amf0Value::String(app.into())),
            ("type".into(), Amf0Value::String("nonprivate".into())),
            (
                "flashVer".into(),
                Amf0Value::String("FMLE/3.0 (compatible; rtmptool)".into()),
            ),
            ("tcUrl".into(), Amf0Value::String(tc_url)),
        ]),
        vec![],
    );
    let msg = Message::Command(cmd);
    let mut out = Vec::new();
    let mut enc = ChunkEncoder::default();
    enc.encode(
        3,
        &MessageHeader {
            timestamp: 0,
            msg_type: msg.msg_type(),
            stream_id: 0,
        },
        &msg.encode(),
        &mut out,
    );
    sock.write_all(&out).unwrap();

    let mut dec = ChunkDecoder::default();
    dec.push(&buf);
    let mut messages = Vec::new();
    loop {
        match dec.poll().unwrap() {
            Some(ChunkEvent::Message(m)) => {
                let msg = Message::decode(m.header.msg_type, m.payload).unwrap();
                let done = matches!(&msg, Message::Command(c) if c.name() == "_result" || c.name() == "_error");
                messages.push(msg);
                if done {
                    return Connected {
                        handshake: outcome,
                        messages,
                        chunk_size: dec.chunk_size(),
                    };
                }
            }
            Some(_) => {}
            None => {
                let n = sock.read(&mut tmp).unwrap();
                assert!(n > 0, "nginx closed the connection before _result");
                dec.push(&tmp[..n]);
            }
        }
    }
}

fn status_code(m: &Message) -> Option<String> {
    let Message::Command(c) = m else { return None };
    c.args()
        .first()
        .and_then(|info| info.get("code"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

#[test]
fn digest_handshake_and_connect() {
    let nginx = common::Nginx::start(4096, "");
    let c = connect(nginx.addr, HandshakeConfig::client(), "live");
    // nginx-rtmp answers a digest C1 with a digest S1, version 13.14.10.13.
    assert!(
        matches!(c.handshake.kind, PeerHandshake::Digest { .. }),
        "{:?}",
        c.handshake
    );
    assert_eq!(c.handshake.peer_version, [13, 14, 10, 13]);
    assert_eq!(c.handshake.peer_digest_verified, Some(true));
    assert_eq!(c.handshake.peer_rtmp_version, 3);
    // Its S2 answers our C1 with the right HMAC.
    assert!(
        c.handshake.peer_response.is_valid(),
        "{:?}",
        c.handshake.peer_response
    );

    let last = c.messages.last().unwrap();
    assert_eq!(
        status_code(last).as_deref(),
        Some("NetConnection.Connect.Success"),
        "{last:?}"
    );
    // What nginx announces before its _result: window, bandwidth, chunk size.
    assert!(
        c.messages.contains(&Message::WindowAckSize(5_000_000)),
        "{:?}",
        c.messages
    );
    assert!(c.messages.iter().any(|m| matches!(
        m,
        Message::SetPeerBandwidth {
            size: 5_000_000,
            ..
        }
    )));
    assert!(c.messages.contains(&Message::SetChunkSize(4096)));
    assert_eq!(c.chunk_size, 4096);
    let Message::Command(result) = last else {
        unreachable!()
    };
    let fms_ver = result
        .command_object()
        .and_then(|o| o.get("fmsVer"))
        .and_then(|v| v.as_str());
    assert_eq!(fms_ver, Some("FMS/3,0,1,123"));
    assert!(
        nginx.log().contains("connect: app='live'"),
        "{}",
        nginx.log()
    );
}

#[test]
fn simple_handshake_and_connect() {
    let nginx = common::Nginx::start(128, "");
    let c = connect(nginx.addr, HandshakeConfig::simple(), "live");
    // nginx answers a simple ("old-style") C1 with S1 = C1, which is an echo.
    assert_eq!(c.handshake.peer_digest_verified, None);
    assert_eq!(c.handshake.kind, PeerHandshake::Simple);
    assert_eq!(
        status_code(c.messages.last().unwrap()).as_deref(),
        Some("NetConnection.Connect.Success")
    );
    assert!(c.messages.contains(&Message::SetChunkSize(128)));
    // The RTT from the time echo of S2 is available for a simple handshake.
    assert!(c.handshake.rtt_ms.is_some());
}
