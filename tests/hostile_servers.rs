//! Hostile servers for `probe`, `play`, `relay` and `load`, each a short
//! script on a raw socket: what the server sends is written here byte for byte (chunk
//! headers by `common::chunked`), so every test knows exactly what arrived.
//! Checked: the phase, exit code (CLI.md) and words of each failure, that
//! what came before a fault is kept, and that the server's text is shown
//! with the URL's secrets removed.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Output;
use std::time::Duration;

use rtmptool::proto::amf0::Amf0Value;
use rtmptool::proto::chunk::{ChunkDecoder, ChunkEvent, DecoderConfig};
use rtmptool::proto::flv;
use rtmptool::proto::message::{Command as Cmd, Message, MessageType};

/// How long a script waits for the client at most.
const PATIENCE: Duration = Duration::from_secs(20);

/// One accepted connection past the handshake.
struct Srv {
    s: TcpStream,
    dec: ChunkDecoder,
}

impl Srv {
    /// Writes `b` as it is.
    fn raw(&mut self, b: &[u8]) {
        let _ = self.s.write_all(b);
    }

    /// One message in 128-byte chunks.
    fn send(&mut self, csid: u8, msg_type: u8, ts: u32, stream_id: u32, payload: &[u8]) {
        self.raw(&common::chunked(
            128, csid, msg_type, ts, stream_id, payload,
        ));
    }

    /// One AMF0 command.
    fn command(
        &mut self,
        stream_id: u32,
        name: &str,
        txn: f64,
        obj: Amf0Value,
        args: Vec<Amf0Value>,
    ) {
        let body = Message::Command(Cmd::new(name, txn, obj, args)).encode();
        self.send(if stream_id == 0 { 3 } else { 5 }, 20, 0, stream_id, &body);
    }

    /// Reads until the client sends the command `name`; its transaction id.
    fn expect(&mut self, name: &str) -> f64 {
        let mut buf = [0u8; 16384];
        loop {
            while let Ok(Some(ev)) = self.dec.poll() {
                let ChunkEvent::Message(m) = ev else { continue };
                if m.header.msg_type != MessageType::COMMAND_AMF0 {
                    continue;
                }
                if let Ok(Message::Command(c)) = Message::decode(m.header.msg_type, m.payload)
                    && c.name() == name
                {
                    return c.transaction_id().unwrap_or(0.0);
                }
            }
            match self.s.read(&mut buf) {
                Ok(0) | Err(_) => panic!("the client left before sending {name}"),
                Ok(n) => self.dec.push(&buf[..n]),
            }
        }
    }

    /// Holds the connection until the client closes it.
    fn hold(mut self) {
        let mut buf = [0u8; 4096];
        while matches!(self.s.read(&mut buf), Ok(n) if n > 0) {}
    }

    /// Answers connect (`_result` with `info`), createStream (stream 1) and
    /// play (NetStream.Play.Start).
    fn answer_until_play(&mut self) {
        self.answer_until_play_then(&[]);
    }

    /// [`Srv::answer_until_play`], with `then` in the same write as
    /// NetStream.Play.Start.
    fn answer_until_play_then(&mut self, then: &[u8]) {
        let t = self.expect("connect");
        self.command(
            0,
            "_result",
            t,
            Amf0Value::Null,
            vec![status("status", "NetConnection.Connect.Success", "")],
        );
        let t = self.expect("createStream");
        self.command(
            0,
            "_result",
            t,
            Amf0Value::Null,
            vec![Amf0Value::Number(1.0)],
        );
        self.expect("play");
        let body = Message::Command(Cmd::new(
            "onStatus",
            0.0,
            Amf0Value::Null,
            vec![status("status", "NetStream.Play.Start", "")],
        ))
        .encode();
        let mut b = common::chunked(128, 5, 20, 0, 1, &body);
        b.extend_from_slice(then);
        self.raw(&b);
    }
}

/// Configuration, then 6 video and 6 audio frames (type, timestamp, body).
fn sample_media() -> Vec<(u8, u32, Vec<u8>)> {
    let mut sent: Vec<(u8, u32, Vec<u8>)> = vec![
        (
            9,
            0,
            vec![0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 0],
        ),
        (8, 0, vec![0xaf, 0, 0x12, 0x10]),
    ];
    for i in 0..6u32 {
        let key = if i % 3 == 0 { 0x17 } else { 0x27 };
        sent.push((9, i * 40, vec![key, 1, 0, 0, 0, 0, 0, 0, 1, i as u8]));
        sent.push((8, i * 40 + 3, vec![0xaf, 1, 0x21, i as u8]));
    }
    sent
}

/// `media` on stream 1 as chunks, then bytes breaking the chunk stream.
fn media_then_fault(media: &[(u8, u32, Vec<u8>)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (t, ts, d) in media {
        b.extend(common::chunked(
            128,
            if *t == 9 { 6 } else { 4 },
            *t,
            *ts,
            1,
            d,
        ));
    }
    b.extend_from_slice(&HEADERLESS);
    b
}

/// When a [`faulty_source`] sends its media and the fault.
#[derive(Debug, Clone, Copy, PartialEq)]
enum When {
    /// In the write of NetStream.Play.Start.
    WithPlayStart,
    /// In a write right after it.
    AfterPlayStart,
    /// Once the test says so (the client is streaming).
    Later,
}

/// A source that sends media and a fault in one write, `when` says when
/// (`go` says it for [`When::Later`]).
fn faulty_source(when: When, go: std::sync::mpsc::Receiver<()>) -> u16 {
    server(simple, move |mut s| {
        let b = media_then_fault(&sample_media());
        match when {
            When::WithPlayStart => s.answer_until_play_then(&b),
            When::AfterPlayStart => {
                s.answer_until_play();
                s.raw(&b);
            }
            When::Later => {
                s.answer_until_play();
                let _ = go.recv_timeout(PATIENCE);
                s.raw(&b);
            }
        }
        s.hold();
    })
}

/// An onStatus-style info object.
fn status(level: &str, code: &str, description: &str) -> Amf0Value {
    let s = |v: &str| Amf0Value::String(v.into());
    Amf0Value::Object(vec![
        ("level".into(), s(level)),
        ("code".into(), s(code)),
        ("description".into(), s(description)),
    ])
}

/// A server on a free loopback port for one connection: `hs` answers C0+C1
/// (given them, returns what to write), then C2 is read and `script` runs.
fn server(hs: fn(&[u8]) -> Vec<u8>, script: impl FnOnce(Srv) + Send + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let _ = s.set_read_timeout(Some(PATIENCE));
        let _ = s.set_nodelay(true);
        let mut c0c1 = [0u8; 1537];
        if s.read_exact(&mut c0c1).is_err() || s.write_all(&hs(&c0c1)).is_err() {
            return;
        }
        let mut c2 = [0u8; 1536];
        if s.read_exact(&mut c2).is_err() {
            return;
        }
        let dec = ChunkDecoder::new(DecoderConfig::default());
        script(Srv { s, dec });
    });
    port
}

/// The simple handshake: S0, S1 of zeros, S2 echoing C1.
fn simple(c0c1: &[u8]) -> Vec<u8> {
    let mut b = vec![3u8];
    b.extend_from_slice(&[0u8; 1536]);
    b.extend_from_slice(&c0c1[1..]);
    b
}

/// A chunk of fmt 1 on chunk stream 9, which has had no header: the
/// peer breaking the protocol (exit 9).
const HEADERLESS: [u8; 8] = [0x40 | 9, 0, 0, 0, 0, 0, 4, 9];

fn run(args: &[&str]) -> Output {
    let child = common::bin()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run rtmptool");
    common::wait_output(child, &args.join(" "), Duration::from_secs(30))
}

fn probe_json(port: u16, path: &str, more: &[&str]) -> (Output, serde_json::Value) {
    let url = format!("rtmp://127.0.0.1:{port}/{path}");
    let mut args = vec!["--json", "--timeout", "5s", "probe", &url];
    args.extend_from_slice(more);
    let out = run(&args);
    let line = String::from_utf8_lossy(&out.stdout);
    let rec = serde_json::from_str(line.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no probe record ({e}): {line:?}"));
    (out, rec)
}

/// Bytes right after S2 that break the chunk stream: the handshake
/// succeeded, so the failure is the connect phase's and the server broke
/// the protocol (exit 9), not a failed handshake (4).
#[test]
fn a_fault_right_after_s2_is_connects() {
    let port = server(
        |c0c1| {
            let mut b = simple(c0c1);
            b.extend_from_slice(&HEADERLESS);
            b
        },
        Srv::hold,
    );
    let (out, rec) = probe_json(port, "live/k", &[]);
    assert_eq!(out.status.code(), Some(9), "{rec}");
    assert_eq!(rec["phase"], "connect", "{rec}");
    assert_eq!(rec["server"]["handshake"], "simple", "{rec}");
    assert!(rec["handshake_ms"].is_f64(), "{rec}");
    assert!(
        rec["error"]
            .as_str()
            .unwrap()
            .contains("no previous header"),
        "{rec}"
    );
}

/// Media and a fault in one TCP read: the tags before the fault are
/// written (exit 9), byte for byte as sent.
#[test]
fn play_keeps_the_tags_read_with_a_fault() {
    let mut sent: Vec<(u8, u32, Vec<u8>)> = vec![
        (
            9,
            0,
            vec![0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 0],
        ),
        (8, 0, vec![0xaf, 0, 0x12, 0x10]),
    ];
    for i in 0..6u32 {
        let key = if i % 3 == 0 { 0x17 } else { 0x27 };
        sent.push((9, i * 40, vec![key, 1, 0, 0, 0, 0, 0, 0, 1, i as u8]));
        sent.push((8, i * 40 + 3, vec![0xaf, 1, 0x21, i as u8]));
    }
    let script = sent.clone();
    let port = server(simple, move |mut s| {
        s.answer_until_play();
        let mut b = Vec::new();
        for (t, ts, d) in &script {
            b.extend(common::chunked(
                128,
                if *t == 9 { 6 } else { 4 },
                *t,
                *ts,
                1,
                d,
            ));
        }
        b.extend_from_slice(&HEADERLESS);
        s.raw(&b);
        s.hold();
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.flv");
    let url = format!("rtmp://127.0.0.1:{port}/live/k");
    let out = run(&[
        "--timeout",
        "5s",
        "play",
        &url,
        "-o",
        path.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{err}");
    assert!(err.contains("no previous header"), "{err}");
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}: {err}"));
    let (_, tags, _) = flv::read_all(&data).unwrap();
    let got: Vec<(u8, u32, Vec<u8>)> = tags
        .iter()
        .map(|t| (t.tag_type.0, t.timestamp, t.data.to_vec()))
        .collect();
    assert_eq!(got, sent, "{err}");
}

/// Answers connect with `_result`, then createStream with `_result`
/// carrying `id` in place of a stream id.
fn bad_stream_id(id: Amf0Value) -> u16 {
    server(simple, move |mut s| {
        let t = s.expect("connect");
        let ok = status("status", "NetConnection.Connect.Success", "");
        s.command(0, "_result", t, Amf0Value::Null, vec![ok]);
        let t = s.expect("createStream");
        s.command(0, "_result", t, Amf0Value::Null, vec![id]);
        s.hold();
    })
}

/// A createStream `_result` without a usable stream id is the server
/// breaking the protocol, said at once (was: 'no answer' after the whole
/// timeout, exit 3).
#[test]
fn a_create_stream_result_without_a_stream_id() {
    let t0 = std::time::Instant::now();
    // The server's value is quoted: with the URL's secrets removed.
    let (out, rec) = probe_json(
        bad_stream_id(Amf0Value::String("key12345".into())),
        "live/key12345",
        &["--play"],
    );
    assert!(!rec.to_string().contains("key12345"), "{rec}");
    assert_eq!(out.status.code(), Some(9), "{rec}");
    assert_eq!(rec["phase"], "create_stream", "{rec}");
    assert!(
        rec["error"].as_str().unwrap().contains("no stream id"),
        "{rec}"
    );
    let port = bad_stream_id(Amf0Value::Number(-1.0));
    let url = format!("rtmp://127.0.0.1:{port}/live/k");
    let out = run(&["--timeout", "5s", "play", &url, "-o", "-"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{err}");
    assert!(err.contains("create_stream") && err.contains("-1"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}

/// FMS/Wowza's redirect: `_error` NetConnection.Connect.Rejected with
/// `ex.code` 302 and `ex.redirect`: the new address is said (its token
/// shortened) in place of 'does not serve this app'.
#[test]
fn a_connect_redirect_is_named() {
    let redirect = || {
        server(simple, |mut s| {
            let t = s.expect("connect");
            let Amf0Value::Object(mut info) = status(
                "error",
                "NetConnection.Connect.Rejected",
                "Connection failed: Application rejected connection.",
            ) else {
                unreachable!()
            };
            info.push((
                "ex".into(),
                Amf0Value::Object(vec![
                    ("code".into(), Amf0Value::Number(302.0)),
                    (
                        "redirect".into(),
                        Amf0Value::String("rtmp://edge2.test/live?token=SECRETTOK".into()),
                    ),
                ]),
            ));
            s.command(
                0,
                "_error",
                t,
                Amf0Value::Null,
                vec![Amf0Value::Object(info)],
            );
            s.hold();
        })
    };
    let (out, rec) = probe_json(redirect(), "live/k", &[]);
    assert_eq!(out.status.code(), Some(5), "{rec}");
    let want = "redirects to rtmp://edge2.test/live?token=SE… (ex.code 302)";
    assert!(rec["error"].as_str().unwrap().contains(want), "{rec}");
    assert_eq!(
        rec["server"]["redirect"],
        "rtmp://edge2.test/live?token=SE…"
    );
    assert!(!rec.to_string().contains("SECRETTOK"), "{rec}");
    let url = format!("rtmp://127.0.0.1:{}/live/k", redirect());
    let out = run(&["--timeout", "5s", "play", &url, "-o", "-"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains(want) && !err.contains("SECRETTOK"), "{err}");
}

/// A `_result` whose transaction id is none of ours: still waited for
/// (FFmpeg ignores it too), but when the phase times out the failure names
/// it and is the server's (exit 9), not 'no answer' (exit 3).
#[test]
fn a_reply_with_the_wrong_transaction_id() {
    let wrong = || {
        server(simple, |mut s| {
            let t = s.expect("connect");
            let ok = status("status", "NetConnection.Connect.Success", "");
            s.command(0, "_result", t + 6.0, Amf0Value::Null, vec![ok]);
            s.hold();
        })
    };
    let url = format!("rtmp://127.0.0.1:{}/live/k", wrong());
    let out = run(&["--json", "--timeout", "1s", "probe", &url]);
    let rec: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(out.status.code(), Some(9), "{rec}");
    assert_eq!(rec["phase"], "connect", "{rec}");
    assert!(
        rec["error"]
            .as_str()
            .unwrap()
            .contains("_result with transaction id 7"),
        "{rec}"
    );
    let url = format!("rtmp://127.0.0.1:{}/live/k", wrong());
    let out = run(&["--timeout", "1s", "play", &url, "-o", "-"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{err}");
    assert!(err.contains("wrong transaction id"), "{err}");
}

/// onMetaData as AMF3 (a data message of type 15 whose object follows an
/// AVM+ switch, as a Flash client with objectEncoding 3 sends it): the FLV
/// script tag is AMF0 only, so play writes the AMF0 equivalent. Checked
/// by ffprobe, which reads `encoder` from it (it stopped at the 0x11
/// marker: "unsupported amf type 17").
#[test]
fn play_writes_amf3_metadata_as_amf0() {
    use rtmptool::proto::amf3::{Amf3Object, Amf3Value};
    let ffprobe = common::require("ffprobe");
    let port = server(simple, |mut s| {
        s.answer_until_play();
        let meta = Amf3Value::Object(Box::new(Amf3Object {
            class_name: String::new(),
            dynamic: true,
            externalizable: false,
            sealed: vec![("width".into(), Amf3Value::Integer(32))],
            dynamic_members: vec![
                ("encoder".into(), Amf3Value::String("hostile-amf3".into())),
                ("framerate".into(), Amf3Value::Double(25.0)),
            ],
            external: None,
        }));
        let mut body = vec![0u8];
        rtmptool::proto::amf0::encode(&Amf0Value::String("onMetaData".into()), &mut body);
        rtmptool::proto::amf0::encode(&Amf0Value::AvmPlus(meta), &mut body);
        s.send(5, 15, 0, 1, &body);
        s.send(4, 8, 0, 1, &[0xaf, 0, 0x12, 0x10]);
        s.send(4, 8, 23, 1, &[0xaf, 1, 0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c]);
        s.send(2, 4, 0, 0, &[0, 1, 0, 0, 0, 1]);
        s.hold();
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.flv");
    let url = format!("rtmp://127.0.0.1:{port}/live/k");
    let out = run(&[
        "--timeout",
        "5s",
        "play",
        &url,
        "-o",
        path.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let (_, tags, _) = flv::read_all(&std::fs::read(&path).unwrap()).unwrap();
    let script = tags
        .iter()
        .find(|t| t.tag_type.0 == 18)
        .expect("a script tag");
    assert!(!script.data.contains(&0x11), "{:02x?}", &script.data[..]);
    let probe = std::process::Command::new(ffprobe)
        .args(["-v", "debug", "-show_entries", "format_tags=encoder"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout) + String::from_utf8_lossy(&probe.stderr);
    assert!(text.contains("encoder=hostile-amf3"), "{text}");
    assert!(!text.contains("unsupported amf type"), "{text}");
}

/// CLI.md's minimum keys of a probe record are in every record, null for
/// the phases not reached: a failure before the handshake (nothing
/// listens) and one after it (a server that closes after S2).
#[test]
fn a_failed_probe_record_has_every_key() {
    let closes = server(simple, drop);
    for (port, phase) in [(common::free_port(), "tcp_connect"), (closes, "connect")] {
        let url = format!("rtmp://127.0.0.1:{port}/live/k");
        let out = run(&["--json", "--timeout", "5s", "probe", &url]);
        let rec: serde_json::Value =
            serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
        assert_eq!(rec["phase"], phase, "{rec}");
        assert_eq!(rec["ok"], false, "{rec}");
        for k in [
            "type",
            "seq",
            "url",
            "ok",
            "tcp_connect_ms",
            "tls_ms",
            "handshake_ms",
            "connect_ms",
            "total_ms",
            "server",
            "phase",
            "error",
        ] {
            assert!(rec.get(k).is_some(), "{k} missing: {rec}");
        }
        for k in [
            "handshake",
            "version",
            "fms_ver",
            "chunk_size",
            "window_ack_size",
            "peer_bandwidth",
        ] {
            assert!(rec["server"].get(k).is_some(), "server.{k} missing: {rec}");
        }
    }
}

/// A server answering in AMF3 (command messages of type 17 whose info
/// objects follow an AVM+ switch, as FMS answers objectEncoding 3): the
/// connect `_result`'s fmsVer and code are read, and a StreamNotFound is a
/// refusal (exit 5), not a play that started with no media (probe: exit 0,
/// a false all-clear).
#[test]
fn amf3_answers_are_read() {
    use rtmptool::proto::amf3::{Amf3Object, Amf3Value};
    fn amf3(members: &[(&str, &str)]) -> Amf0Value {
        Amf0Value::AvmPlus(Amf3Value::Object(Box::new(Amf3Object {
            class_name: String::new(),
            dynamic: true,
            externalizable: false,
            sealed: Vec::new(),
            dynamic_members: members
                .iter()
                .map(|(k, v)| (k.to_string(), Amf3Value::String(v.to_string())))
                .collect(),
            external: None,
        })))
    }
    fn command17(
        s: &mut Srv,
        stream_id: u32,
        name: &str,
        txn: f64,
        obj: Amf0Value,
        info: Amf0Value,
    ) {
        let mut body = vec![0u8];
        for v in [
            Amf0Value::String(name.into()),
            Amf0Value::Number(txn),
            obj,
            info,
        ] {
            rtmptool::proto::amf0::encode(&v, &mut body);
        }
        s.send(if stream_id == 0 { 3 } else { 5 }, 17, 0, stream_id, &body);
    }
    let not_found = || {
        server(simple, |mut s| {
            let t = s.expect("connect");
            let props = amf3(&[("fmsVer", "FMS/5,0,3,3029")]);
            let info = amf3(&[
                ("level", "status"),
                ("code", "NetConnection.Connect.Success"),
            ]);
            command17(&mut s, 0, "_result", t, props, info);
            let t = s.expect("createStream");
            s.command(
                0,
                "_result",
                t,
                Amf0Value::Null,
                vec![Amf0Value::Number(1.0)],
            );
            s.expect("play");
            let info = amf3(&[
                ("level", "error"),
                ("code", "NetStream.Play.StreamNotFound"),
                ("description", "no such stream"),
            ]);
            command17(&mut s, 1, "onStatus", 0.0, Amf0Value::Null, info);
            s.hold();
        })
    };
    let (out, rec) = probe_json(not_found(), "live/k", &["--play"]);
    assert_eq!(out.status.code(), Some(5), "{rec}");
    assert_eq!(rec["phase"], "play", "{rec}");
    assert_eq!(rec["server"]["fms_ver"], "FMS/5,0,3,3029", "{rec}");
    assert_eq!(
        rec["server"]["connect_code"],
        "NetConnection.Connect.Success"
    );
    assert!(
        rec["error"]
            .as_str()
            .unwrap()
            .contains("StreamNotFound (no such stream)"),
        "{rec}"
    );
    let url = format!("rtmp://127.0.0.1:{}/live/k", not_found());
    let out = run(&["--timeout", "5s", "play", &url, "-o", "-"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("NetStream.Play.StreamNotFound"), "{err}");
}

/// A refusal of connect as an onStatus (level error) in place of an
/// `_error`, the connection then closed: exit 5 with the server's words
/// (was: 'closed the connection without a reason', exit 3; held open: 'no
/// answer' after the timeout).
#[test]
fn a_connect_refused_by_onstatus() {
    let refuse = |close: bool| {
        server(simple, move |mut s| {
            s.expect("connect");
            let info = status(
                "error",
                "NetConnection.Connect.Rejected",
                "[ AccessManager.Reject ] : [ code=403 need auth; authmod=adobe ] : ",
            );
            s.command(0, "onStatus", 0.0, Amf0Value::Null, vec![info]);
            if !close {
                s.hold();
            }
        })
    };
    let (out, rec) = probe_json(refuse(true), "live/k", &[]);
    assert_eq!(out.status.code(), Some(5), "{rec}");
    assert_eq!(rec["phase"], "connect", "{rec}");
    assert!(
        rec["error"]
            .as_str()
            .unwrap()
            .contains("code=403 need auth"),
        "{rec}"
    );
    let url = format!("rtmp://127.0.0.1:{}/live/k", refuse(false));
    let out = run(&["--timeout", "5s", "play", &url, "-o", "-"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("NetConnection.Connect.Rejected"), "{err}");
}

/// play (and publish, relay: the same connect) names what answered the
/// handshake as probe does: an HTTP server; a server that closed after
/// part of S0+S1+S2 (was 'handshake failed: the server closed the
/// connection').
#[test]
fn play_names_what_answered_the_handshake() {
    for (answer, want) in [
        (
            &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
            "an HTTP server answered",
        ),
        (&[3u8; 100][..], "after 100 of 3073 bytes of S0+S1+S2"),
    ] {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut c0c1 = [0u8; 1537];
            let _ = s.read_exact(&mut c0c1);
            let _ = s.write_all(answer);
        });
        let url = format!("rtmp://127.0.0.1:{port}/live/k");
        let out = run(&["--timeout", "5s", "play", &url, "-o", "-"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{err}");
        assert!(err.contains(want), "{err}");
    }
}

/// A connect `_error` with no info object: said so (was 'refused
/// connect:  ()').
#[test]
fn a_connect_error_without_info() {
    let port = server(simple, |mut s| {
        let t = s.expect("connect");
        s.command(0, "_error", t, Amf0Value::Null, vec![]);
        s.hold();
    });
    let (out, rec) = probe_json(port, "live/k", &[]);
    assert_eq!(out.status.code(), Some(5), "{rec}");
    assert!(
        rec["error"].as_str().unwrap().ends_with(
            "refused connect: no code or description (the reply carries no info object)"
        ),
        "{rec}"
    );
}

/// A relay whose source sends media and a fault in one TCP write (with
/// NetStream.Play.Start, or after it): the destination (serve, read by a
/// player) gets every message before the fault, byte for byte, then the
/// relay fails with exit 9 naming the fault.
#[test]
fn relay_forwards_what_came_with_a_fault() {
    for when in [When::WithPlayStart, When::AfterPlayStart, When::Later] {
        let (go, wait) = std::sync::mpsc::channel();
        let port = faulty_source(when, wait);
        let serve = common::Serve::start(&[]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.flv");
        let player = common::bin()
            .args(["play", &serve.url("live/dst"), "-o", path.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("play");
        serve.wait_sessions("play", 1);
        let src = format!("rtmp://127.0.0.1:{port}/live/k");
        let relay = common::bin()
            .args(["--timeout", "5s", "relay", &src, &serve.url("live/dst")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("relay");
        // Both ends reached: the relay streams.
        serve.wait_sessions("publish", 1);
        let _ = go.send(());
        let out = common::wait_output(relay, "relay", Duration::from_secs(30));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(9), "{when:?}: {err}");
        assert!(err.contains("no previous header"), "{err}");
        let po = common::wait_output(player, "play", Duration::from_secs(20));
        let data = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&po.stderr)));
        let (_, tags, _) = flv::read_all(&data).unwrap();
        let got: Vec<(u8, u32, Vec<u8>)> = tags
            .iter()
            .map(|t| (t.tag_type.0, t.timestamp, t.data.to_vec()))
            .collect();
        assert_eq!(got, sample_media(), "{when:?}: {err}");
    }
}

/// A load player whose server sends media and a fault in one TCP write
/// (with NetStream.Play.Start, or after it) counts the frames before the
/// fault, then fails as a protocol fault (exit 9).
#[test]
fn load_counts_the_frames_read_with_a_fault() {
    for when in [When::WithPlayStart, When::AfterPlayStart] {
        let (_go, wait) = std::sync::mpsc::channel();
        let port = faulty_source(when, wait);
        let url = format!("rtmp://127.0.0.1:{port}/live/k");
        let out = run(&[
            "--json",
            "--timeout",
            "5s",
            "load",
            &url,
            "--players",
            "1",
            "--duration",
            "3s",
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.contains("\"load_summary\""))
            .unwrap_or_else(|| {
                panic!(
                    "no summary: {text} {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        let s: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(out.status.code(), Some(9), "{when:?}: {s}");
        assert_eq!(s["failed"], 1, "{s}");
        let st = &s["streams"][0];
        for k in ["video_frames", "audio_frames"] {
            assert_eq!(st[k]["max"], 6, "{when:?}: {k} of {s}");
        }
    }
}
