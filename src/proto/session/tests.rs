//! The client session against the server session, in memory, as a [`Pair`]
//! driven by one clock (see [`Server`]).

use super::*;
use crate::proto::handshake::PeerHandshake;

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

/// What the server side of a [`Pair`] does with requests (the caller's
/// decisions a real server makes).
#[derive(Default)]
struct Policy {
    /// `publish` answers BadName (a stream of that name is being published).
    busy: bool,
    /// Refuse connect with `_error`.
    refuse: bool,
}

/// A client and a [`ServerSession`] in memory, driven by one clock. The
/// server answers as nginx-rtmp does (RTMP 1.0 §7.2.1.1 connect sequence:
/// Window Ack Size, Set Peer Bandwidth, Set Chunk Size, `_result`), pings the
/// client after connect, and sends a 10 kB video and an audio message to a
/// player.
struct Server {
    session: ServerSession,
    policy: Policy,
    /// Everything the server session reported.
    got: Vec<ServerEvent>,
}

impl Server {
    fn new() -> Server {
        Server::with(ServerConfig::default())
    }

    fn with(config: ServerConfig) -> Server {
        Server {
            session: ServerSession::new(config, Duration::ZERO, &mut random(7)),
            policy: Policy::default(),
            got: Vec::new(),
        }
    }

    fn window(window: u32) -> Server {
        Server::with(ServerConfig {
            window_ack_size: window,
            ..ServerConfig::default()
        })
    }

    fn input(&mut self, data: &[u8], now: Duration) {
        self.session.handle_input(data, now).unwrap();
        while let Some(ev) = self.session.poll_event() {
            let ev = ev.event;
            if let ServerEvent::Request(id, req) = &ev {
                let s = &mut self.session;
                match req {
                    Request::Connect { .. } if self.policy.refuse => {
                        s.reject(*id, "NetConnection.Connect.Rejected", "go away")
                    }
                    Request::Connect { .. } => {
                        s.accept(*id);
                        s.send_ping(1234);
                    }
                    Request::Publish { .. } if self.policy.busy => {
                        s.reject(*id, "NetStream.Publish.BadName", "Already publishing")
                    }
                    Request::Play { stream_id, .. } => {
                        let sid = *stream_id;
                        s.accept(*id);
                        // A large video message: several chunks at 4096.
                        s.send_media(sid, MessageType::VIDEO, 40, &[0x17u8; 10_000]);
                        s.send_media(sid, MessageType::AUDIO, 41, &[0xaf, 1, 2]);
                    }
                    _ => {
                        s.accept(*id);
                    }
                }
            }
            self.got.push(ev);
        }
    }

    fn out(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        while let Some(b) = self.session.poll_transmit() {
            v.extend_from_slice(&b);
        }
        v
    }

    /// Command names the server saw, in order (requests and others).
    fn commands(&self) -> Vec<&str> {
        self.got
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Request(_, r) => Some(r.command()),
                ServerEvent::Command(c) => Some(c.name()),
                _ => None,
            })
            .collect()
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
            *now += 1;
            server.input(&b, Duration::from_millis(*now));
            moved = true;
        }
        let out = server.out();
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
        // The server saw: the handshake, our Set Chunk Size (before
        // connect), connect with app and tcUrl, and the answer to its ping.
        assert!(matches!(server.got[0], ServerEvent::Handshake(_)));
        assert_eq!(server.got[1], ServerEvent::ChunkSize(4096));
        let ServerEvent::Request(_, Request::Connect { app, tc_url, .. }) = &server.got[2] else {
            panic!("{:?}", server.got[2])
        };
        assert_eq!(app, "live");
        assert_eq!(tc_url.as_deref(), Some("rtmp://127.0.0.1/live"));
        assert!(server.session.is_connected());
        assert!(
            server
                .got
                .contains(&ServerEvent::UserControl(UserControl::PingResponse(1234)))
        );
    }
}

#[test]
fn event_times_are_the_times_of_arrival() {
    let mut server = Server::new();
    let mut c = ClientSession::new(config(Goal::Connect), Duration::ZERO, &mut random(3));
    server.input(&c.poll_transmit().unwrap(), Duration::ZERO);
    let s = server.out();
    c.handle_input(&s[..3073], Duration::from_millis(5))
        .unwrap();
    server.input(&c.poll_transmit().unwrap(), Duration::ZERO);
    let replies = server.out();
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
    assert_eq!(
        server.commands(),
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
    assert!(server.got.iter().any(|e| matches!(e,
        ServerEvent::Media(m) if m.csid == CSID_VIDEO
            && m.header.stream_id == 1
            && m.header.msg_type == MessageType::VIDEO
            && m.payload[..] == [0x17, 0, 0, 0, 0])));
    assert_eq!(server.session.stream_state(1), None, "deleted");
}

#[test]
fn publish_refused_with_bad_name_fails() {
    let mut server = Server::new();
    server.policy.busy = true;
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
    server.policy.refuse = true;
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
    // A small window, so the 10 kB video needs acknowledgements.
    let mut server = Server::window(2500);
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
    assert!(
        server
            .got
            .contains(&ServerEvent::UserControl(UserControl::SetBufferLength {
                stream_id: 1,
                buffer_ms: 3000
            }))
    );
    assert_eq!(server.session.stream_state(1), Some(StreamState::Playing));
    // Acknowledgements: increasing, each at least a window after the last.
    let acks: Vec<u32> = server
        .got
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Acknowledgement(sequence) => Some(*sequence),
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
            let mut server = Server::window(2500);
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
        server.input(&c.poll_transmit().unwrap(), Duration::ZERO);
        let s = server.out();
        c.handle_input(&s, Duration::ZERO).unwrap();
        let _ = c.handle_input(&junk, Duration::ZERO);
        while c.poll_event().is_some() {}
    });
}

/// A client that does not wait for answers (commands pipelined behind
/// `connect` and `createStream`): each is understood as if it had waited,
/// because input behind a request is decoded once it is decided.
#[test]
fn pipelined_commands_are_understood_in_order() {
    let goal = Goal::Publish {
        stream: "key".into(),
        kind: "live".into(),
    };
    // Everything a publishing client sends, as one input: its bytes against
    // a first server, replayed to a second.
    let mut first = Server::new();
    let mut c = ClientSession::new(config(goal), Duration::ZERO, &mut random(3));
    let mut now = 0;
    let mut sent = Vec::new();
    for _ in 0..20 {
        while let Some(b) = c.poll_transmit() {
            sent.extend_from_slice(&b);
            now += 1;
            first.input(&b, Duration::from_millis(now));
        }
        let out = first.out();
        if out.is_empty() {
            break;
        }
        c.handle_input(&out, Duration::from_millis(now)).unwrap();
    }
    c.send_media(&Message::Video(Bytes::from_static(&[0x17, 1, 0, 0, 0])), 40);
    while let Some(b) = c.poll_transmit() {
        sent.extend_from_slice(&b);
    }
    let mut second = Server::new();
    second.input(&sent, Duration::ZERO);
    assert_eq!(
        second.commands(),
        [
            "connect",
            "releaseStream",
            "FCPublish",
            "createStream",
            "publish"
        ]
    );
    assert_eq!(
        second.session.stream_state(1),
        Some(StreamState::Publishing)
    );
    assert!(
        second
            .got
            .iter()
            .any(|e| matches!(e, ServerEvent::Media(m) if m.header.timestamp == 40))
    );
}

#[test]
fn the_server_states_its_e_rtmp_capabilities_to_a_client_that_announced_its_own() {
    use crate::proto::capabilities::Capabilities;
    let reply = |extra: Vec<(String, Amf0Value)>| {
        let mut server = Server::new();
        let mut now = 0;
        let mut cfg = config(Goal::Connect);
        cfg.connect_extra = extra;
        let mut c = ClientSession::new(cfg, Duration::ZERO, &mut random(3));
        run(&mut c, &mut server, 1000, &mut now);
        let ServerEvent::Request(_, Request::Connect { object, .. }) = &server.got[2] else {
            panic!("{:?}", server.got[2])
        };
        let announced = Capabilities::announced_in(object);
        let r = events(&mut c)
            .into_iter()
            .find_map(|e| match e {
                Event::Reply(r) => Some(r),
                _ => None,
            })
            .unwrap();
        let props = r.command.command_object().cloned().unwrap();
        (announced, props)
    };
    // Only the E-RTMP v1 list, as FFmpeg 6.1 and OBS 29 send it.
    let v1 = vec![(
        "fourCcList".to_owned(),
        Amf0Value::StrictArray(vec![Amf0Value::String("hvc1".into())]),
    )];
    let (announced, props) = reply(v1);
    assert!(announced);
    let stated = Capabilities::from_objects([&props]).expect("capabilities stated");
    assert_eq!(stated, Capabilities::forwarder());
    assert_eq!(
        props.get("fmsVer").and_then(Amf0Value::as_str),
        Some("FMS/3,0,1,123")
    );
    // A legacy client gets the legacy answer, property for property.
    let (announced, props) = reply(Vec::new());
    assert!(!announced);
    let names: Vec<&str> = props
        .properties()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(names, ["fmsVer", "capabilities"]);
}
