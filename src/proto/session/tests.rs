//! The client session against a small server state machine built from the
//! same core (ServerHandshake, chunk decoder/encoder, messages), in memory.
//! The server behaves as nginx-rtmp does (RTMP 1.0 §7.2.1.1 connect sequence:
//! Window Ack Size, Set Peer Bandwidth, Set Chunk Size, `_result`, onBWDone).

use super::*;
use crate::proto::chunk::ChunkDecoder;
use crate::proto::handshake::{PeerHandshake, ServerHandshake};

fn random(seed: u64) -> impl FnMut(&mut [u8]) {
    let mut x = seed | 1;
    move |buf: &mut [u8]| {
        for b in buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
}

/// What the test server received, decoded.
#[derive(Default)]
struct Server {
    hs: Option<ServerHandshake>,
    hs_buf: BytesMut,
    handshaken: bool,
    dec: Option<ChunkDecoder>,
    enc: ChunkEncoder,
    out: BytesMut,
    got: Vec<(u32, u32, Message)>, // (csid, stream id, message)
    chunk_size: u32,
    window: u32,
    /// `publish` answers BadName (a stream of that name is being published).
    busy: bool,
    /// Refuse connect with `_error`.
    refuse: bool,
}

impl Server {
    fn new() -> Server {
        Server {
            hs: Some(ServerHandshake::new(
                HandshakeConfig::server(),
                0,
                &mut random(7),
            )),
            dec: Some(ChunkDecoder::default()),
            chunk_size: 4096,
            window: 5_000_000,
            ..Server::default()
        }
    }

    fn send(&mut self, csid: u32, stream_id: u32, ts: u32, msg: Message) {
        let h = MessageHeader {
            timestamp: ts,
            msg_type: msg.msg_type(),
            stream_id,
        };
        self.enc.encode(csid, &h, &msg.encode(), &mut self.out);
    }

    fn status(&mut self, stream_id: u32, level: &str, code: &str, desc: &str) {
        let info = Amf0Value::Object(vec![
            ("level".into(), Amf0Value::String(level.into())),
            ("code".into(), Amf0Value::String(code.into())),
            ("description".into(), Amf0Value::String(desc.into())),
        ]);
        let c = Command::new("onStatus", 0.0, Amf0Value::Null, vec![info]);
        self.send(5, stream_id, 0, Message::Command(c));
    }

    fn input(&mut self, data: &[u8]) {
        let hs = self.hs.as_mut().unwrap();
        let mut rest = BytesMut::new();
        if !self.handshaken {
            self.hs_buf.extend_from_slice(data);
            if hs.handle_input(&mut self.hs_buf, 1).unwrap().is_some() {
                self.handshaken = true;
                rest = self.hs_buf.split();
            }
            if let Some(b) = hs.poll_transmit() {
                self.out.extend_from_slice(&b);
            }
        } else {
            rest.extend_from_slice(data);
        }
        let dec = self.dec.as_mut().unwrap();
        dec.push(&rest);
        let mut msgs = Vec::new();
        while let Some(ev) = dec.poll().unwrap() {
            if let ChunkEvent::Message(m) = ev {
                msgs.push((
                    m.csid,
                    m.header.stream_id,
                    Message::decode(m.header.msg_type, m.payload).unwrap(),
                ));
            }
        }
        for (csid, sid, msg) in msgs {
            self.got.push((csid, sid, msg.clone()));
            let Message::Command(c) = msg else { continue };
            let txn = c.transaction_id().unwrap_or(0.0);
            match c.name() {
                "connect" if self.refuse => {
                    let info = Amf0Value::Object(vec![
                        ("level".into(), Amf0Value::String("error".into())),
                        (
                            "code".into(),
                            Amf0Value::String("NetConnection.Connect.Rejected".into()),
                        ),
                        ("description".into(), Amf0Value::String("go away".into())),
                    ]);
                    let r = Command::new("_error", txn, Amf0Value::Null, vec![info]);
                    self.send(3, 0, 0, Message::Command(r));
                }
                "connect" => {
                    self.send(2, 0, 0, Message::WindowAckSize(self.window));
                    self.send(
                        2,
                        0,
                        0,
                        Message::SetPeerBandwidth {
                            size: 5_000_000,
                            limit: LimitType::DYNAMIC,
                        },
                    );
                    self.send(2, 0, 0, Message::SetChunkSize(self.chunk_size));
                    self.enc.set_chunk_size(self.chunk_size);
                    let props = Amf0Value::Object(vec![
                        ("fmsVer".into(), Amf0Value::String("FMS/3,0,1,123".into())),
                        ("capabilities".into(), Amf0Value::Number(31.0)),
                    ]);
                    let info = Amf0Value::Object(vec![
                        ("level".into(), Amf0Value::String("status".into())),
                        (
                            "code".into(),
                            Amf0Value::String("NetConnection.Connect.Success".into()),
                        ),
                    ]);
                    let r = Command::new("_result", txn, props, vec![info]);
                    self.send(3, 0, 0, Message::Command(r));
                    let bw = Command::new("onBWDone", 0.0, Amf0Value::Null, vec![]);
                    self.send(3, 0, 0, Message::Command(bw));
                    self.send(
                        2,
                        0,
                        0,
                        Message::UserControl(UserControl::PingRequest(1234)),
                    );
                }
                "createStream" => {
                    let r = Command::new(
                        "_result",
                        txn,
                        Amf0Value::Null,
                        vec![Amf0Value::Number(1.0)],
                    );
                    self.send(3, 0, 0, Message::Command(r));
                }
                "publish" if self.busy => self.status(
                    sid,
                    "error",
                    "NetStream.Publish.BadName",
                    "Already publishing",
                ),
                "publish" => {
                    self.status(sid, "status", "NetStream.Publish.Start", "Start publishing")
                }
                "play" => {
                    self.send(2, 0, 0, Message::UserControl(UserControl::StreamBegin(sid)));
                    self.status(sid, "status", "NetStream.Play.Start", "Start live");
                    // A large video message: several chunks at the new size.
                    let big = Bytes::from(vec![0x17u8; 10_000]);
                    self.send(6, sid, 40, Message::Video(big));
                    self.send(
                        4,
                        sid,
                        41,
                        Message::Audio(Bytes::from_static(&[0xaf, 1, 2])),
                    );
                }
                _ => {}
            }
        }
    }
}

/// Runs client and server against each other until neither has anything to
/// send, feeding the client in pieces of `split` bytes.
fn run(client: &mut ClientSession, server: &mut Server, split: usize, now: &mut u64) {
    run_with(client, server, split, now, false);
}

/// As [`run`]; with `in_place` the client's input is appended to its
/// [`ClientSession::receive_buffer`] (as the network driver does) instead of
/// given to [`ClientSession::handle_input`].
fn run_with(
    client: &mut ClientSession,
    server: &mut Server,
    split: usize,
    now: &mut u64,
    in_place: bool,
) {
    for _ in 0..100 {
        let mut moved = false;
        while let Some(b) = client.poll_transmit() {
            server.input(&b);
            moved = true;
        }
        let out = server.out.split();
        for piece in out.chunks(split.max(1)) {
            *now += 1;
            let at = Duration::from_millis(*now);
            if in_place {
                client.receive_buffer(split).extend_from_slice(piece);
                client.handle_received(piece.len(), at).unwrap();
            } else {
                client.handle_input(piece, at).unwrap();
            }
            moved = true;
        }
        if !moved {
            return;
        }
    }
    panic!("client and server kept talking");
}

fn events(c: &mut ClientSession) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event())
        .map(|e| e.event)
        .collect()
}

fn config(goal: Goal) -> SessionConfig {
    SessionConfig::new("live", "rtmp://127.0.0.1/live", goal)
}

#[test]
fn connect_reports_everything_the_server_said() {
    for split in [1, 7, 1000, 100_000] {
        let mut server = Server::new();
        let mut now = 0;
        let mut c = ClientSession::new(config(Goal::Connect), Duration::ZERO, &mut random(3));
        run(&mut c, &mut server, split, &mut now);
        assert_eq!(c.state(), State::Connected, "split {split}");
        let ev = events(&mut c);
        let Event::Handshake(hs) = &ev[0] else {
            panic!("{ev:?}")
        };
        assert_eq!(hs.peer_version, [13, 14, 10, 13]);
        assert!(matches!(hs.kind, PeerHandshake::Digest { .. }));
        assert!(ev.contains(&Event::WindowAckSize(5_000_000)));
        assert!(ev.contains(&Event::PeerBandwidth {
            size: 5_000_000,
            limit: LimitType::DYNAMIC
        }));
        assert!(ev.contains(&Event::ChunkSize(4096)));
        assert!(ev.contains(&Event::BwDone));
        let reply = ev
            .iter()
            .find_map(|e| match e {
                Event::Reply(r) => Some(r),
                _ => None,
            })
            .unwrap();
        assert_eq!(reply.to, "connect");
        assert!(reply.ok);
        assert_eq!(
            reply.info("code").as_deref(),
            Some("NetConnection.Connect.Success")
        );
        assert_eq!(c.peer_chunk_size(), 4096);
        // The server saw: our Set Chunk Size (before connect), connect with
        // app and tcUrl, and the answer to its ping.
        assert_eq!(server.got[0].2, Message::SetChunkSize(4096));
        let Message::Command(connect) = &server.got[1].2 else {
            panic!()
        };
        assert_eq!(connect.name(), "connect");
        assert_eq!(connect.transaction_id(), Some(1.0));
        let obj = connect.command_object().unwrap();
        assert_eq!(obj.get("app").and_then(Amf0Value::as_str), Some("live"));
        assert!(
            server
                .got
                .iter()
                .any(|(_, _, m)| *m == Message::UserControl(UserControl::PingResponse(1234)))
        );
    }
}

#[test]
fn event_times_are_the_times_of_arrival() {
    let mut server = Server::new();
    let mut c = ClientSession::new(config(Goal::Connect), Duration::ZERO, &mut random(3));
    server.input(&c.poll_transmit().unwrap());
    let s = server.out.split();
    c.handle_input(&s[..3073], Duration::from_millis(5))
        .unwrap();
    server.input(&c.poll_transmit().unwrap());
    let replies = server.out.split();
    c.handle_input(&replies, Duration::from_millis(9)).unwrap();
    let all: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert_eq!(all[0].at, Duration::from_millis(5));
    assert!(all[1..].iter().all(|e| e.at == Duration::from_millis(9)));
}

#[test]
fn publish_then_close_sends_fcunpublish_and_delete_stream() {
    let mut server = Server::new();
    let mut now = 0;
    let goal = Goal::Publish {
        stream: "key".into(),
        kind: "live".into(),
    };
    let mut c = ClientSession::new(config(goal), Duration::ZERO, &mut random(3));
    run(&mut c, &mut server, 100, &mut now);
    assert_eq!(c.state(), State::Active);
    let ev = events(&mut c);
    assert!(ev.contains(&Event::StreamCreated(1)));
    let started = ev.iter().find_map(|e| match e {
        Event::Started(s) => Some(s),
        _ => None,
    });
    assert_eq!(started.unwrap().code, "NetStream.Publish.Start");
    c.send_media(&Message::Video(Bytes::from_static(&[0x17, 0, 0, 0, 0])), 0);
    c.close();
    run(&mut c, &mut server, 100, &mut now);
    let names: Vec<&str> = server
        .got
        .iter()
        .filter_map(|(_, _, m)| match m {
            Message::Command(c) => Some(c.name()),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        [
            "connect",
            "releaseStream",
            "FCPublish",
            "createStream",
            "publish",
            "FCUnpublish",
            "deleteStream"
        ]
    );
    assert!(
        server.got.iter().any(|(csid, sid, m)| *csid == CSID_VIDEO
            && *sid == 1
            && matches!(m, Message::Video(_)))
    );
}

#[test]
fn publish_refused_with_bad_name_fails() {
    let mut server = Server::new();
    server.busy = true;
    let mut now = 0;
    let goal = Goal::Publish {
        stream: "key".into(),
        kind: "live".into(),
    };
    let mut c = ClientSession::new(config(goal), Duration::ZERO, &mut random(3));
    run(&mut c, &mut server, 100, &mut now);
    assert_eq!(c.state(), State::Failed);
    let ev = events(&mut c);
    assert!(ev.iter().any(
        |e| matches!(e, Event::Status(s) if s.code == "NetStream.Publish.BadName" && s.is_error())
    ));
    assert!(!ev.iter().any(|e| matches!(e, Event::Started(_))));
}

#[test]
fn connect_error_is_a_failed_reply() {
    let mut server = Server::new();
    server.refuse = true;
    let mut now = 0;
    let mut c = ClientSession::new(config(Goal::Connect), Duration::ZERO, &mut random(3));
    run(&mut c, &mut server, 100, &mut now);
    assert_eq!(c.state(), State::Failed);
    let ev = events(&mut c);
    let r = ev
        .iter()
        .find_map(|e| match e {
            Event::Reply(r) => Some(r),
            _ => None,
        })
        .unwrap();
    assert!(!r.ok);
    assert_eq!(
        r.info("code").as_deref(),
        Some("NetConnection.Connect.Rejected")
    );
    assert_eq!(r.info("description").as_deref(), Some("go away"));
}

#[test]
fn play_delivers_media_and_acknowledges_per_window() {
    let mut server = Server::new();
    server.window = 2500; // small, so the 10 kB video needs acknowledgements
    let mut now = 0;
    let goal = Goal::Play {
        stream: "s".into(),
        start: -1000.0,
        buffer_ms: 3000,
    };
    let mut c = ClientSession::new(config(goal), Duration::ZERO, &mut random(3));
    run(&mut c, &mut server, 500, &mut now);
    assert_eq!(c.state(), State::Active);
    let ev = events(&mut c);
    assert!(ev.contains(&Event::UserControl(UserControl::StreamBegin(1))));
    let video = ev.iter().find_map(|e| match e {
        Event::Video { timestamp, payload } => Some((*timestamp, payload.len())),
        _ => None,
    });
    assert_eq!(video, Some((40, 10_000)));
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Audio { timestamp: 41, .. }))
    );
    // Set Buffer Length for stream 1 went out after play.
    assert!(server.got.iter().any(|(_, _, m)| *m
        == Message::UserControl(UserControl::SetBufferLength {
            stream_id: 1,
            buffer_ms: 3000
        })));
    // Acknowledgements: increasing, each at least a window after the last.
    let acks: Vec<u32> = server
        .got
        .iter()
        .filter_map(|(_, _, m)| match m {
            Message::Acknowledgement { sequence } => Some(*sequence),
            _ => None,
        })
        .collect();
    assert!(acks.len() >= 3, "{acks:?}");
    assert!(acks.windows(2).all(|w| w[1] - w[0] >= 2500), "{acks:?}");
}

/// Reading straight into the session's receive buffer decodes exactly what
/// handing it slices does: the same events at the same times, the same
/// replies and acknowledgements sent.
#[test]
fn receive_buffer_input_equals_handle_input() {
    for split in [1, 7, 500, 100_000] {
        let mut runs = Vec::new();
        for in_place in [false, true] {
            let mut server = Server::new();
            server.window = 2500;
            let mut now = 0;
            let goal = Goal::Play {
                stream: "s".into(),
                start: -1000.0,
                buffer_ms: 3000,
            };
            let mut c = ClientSession::new(config(goal), Duration::ZERO, &mut random(3));
            run_with(&mut c, &mut server, split, &mut now, in_place);
            let ev: Vec<SessionEvent> = std::iter::from_fn(|| c.poll_event()).collect();
            runs.push((c.state(), ev, server.got));
        }
        assert_eq!(runs[0].0, State::Active, "split {split}");
        assert!(runs[0].1.len() > 5, "split {split}");
        assert!(
            runs[0] == runs[1],
            "split {split}: the two input paths differ"
        );
    }
}

#[test]
fn an_http_answer_is_a_handshake_error_naming_http() {
    let mut c = ClientSession::new(config(Goal::Connect), Duration::ZERO, &mut random(3));
    let e = c
        .handle_input(b"HTTP/1.1 400 Bad Request\r\n\r\n", Duration::ZERO)
        .unwrap_err();
    assert!(e.to_string().contains("HTTP port"), "{e}");
    // Sticky.
    assert_eq!(c.handle_input(b"x", Duration::ZERO).unwrap_err(), e);
}

#[test]
fn hostile_input_after_the_handshake_never_panics() {
    use proptest::prelude::*;
    proptest!(|(junk in proptest::collection::vec(any::<u8>(), 0..4000))| {
        let mut server = Server::new();
        let mut c = ClientSession::new(config(Goal::Connect), Duration::ZERO, &mut random(3));
        server.input(&c.poll_transmit().unwrap());
        let s = server.out.split();
        c.handle_input(&s, Duration::ZERO).unwrap();
        let _ = c.handle_input(&junk, Duration::ZERO);
        while c.poll_event().is_some() {}
    });
}
