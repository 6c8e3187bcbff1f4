//! `dump` keeps what a capture names secret (CLI.md, "Secrets never reach
//! output"): stream names, query values and user info, in human text, JSON,
//! `--hex` bytes and verbose output, and in what the server echoes; shown
//! in full with `--reveal-keys`.
//!
//! The class, not one file: every RTMP capture shipped (FFmpeg, rtmpdump,
//! OBS-like and Python clients, nginx-rtmp and other servers, mid-stream and
//! cut captures) is checked for the names its own clients sent; a crafted
//! conversation covers what those lack (user info and tokens in the tcUrl,
//! a token in the app and pageUrl, an AMF3 publish with a query, a play,
//! echoes in onStatus, `_result` and data, echoes a filter leaves shown
//! while hiding the command that named them, chunk sizes 128 and 4096);
//! and an RTMFP capture (the publish inside encrypted session packets).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use rtmptool::proto::amf0::Amf0Value as V;
use rtmptool::proto::amf3::Amf3Value;
use rtmptool::proto::chunk::{ChunkEncoder, EncoderConfig, MessageHeader};
use rtmptool::proto::message::{Command, DataMessage, Encoding, Message};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn dump(args: &[&str], capture: &Path) -> Output {
    let out = common::bin()
        .arg("dump")
        .args(args)
        .arg(capture)
        .output()
        .expect("run rtmptool dump");
    assert!(
        out.status.success(),
        "dump {args:?} {}: {}",
        capture.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Everything a user sees.
fn seen(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The views to check: text, JSON, hex, both, verbose.
const VIEWS: [&[&str]; 5] = [
    &[],
    &["--json"],
    &["--hex", "--color", "never"],
    &["--json", "--hex"],
    &["-v"],
];

/// Asserts that none of `secrets` is in any view of `capture`, and that
/// each of `revealed` is there with `--reveal-keys`.
fn assert_kept(capture: &Path, extra: &[&str], secrets: &[String], revealed: &[String]) {
    for view in VIEWS {
        let args: Vec<&str> = extra.iter().chain(view.iter()).copied().collect();
        let shown = seen(&dump(&args, capture));
        for s in secrets {
            assert!(
                !shown.contains(s.as_str()),
                "{}: {s:?} shown by dump {args:?}",
                capture.display()
            );
        }
        let mut reveal = args.clone();
        reveal.push("--reveal-keys");
        let shown = seen(&dump(&reveal, capture));
        for s in revealed {
            // --hex alone shows the values decoded too: each view has them.
            assert!(
                shown.contains(s.as_str()),
                "{}: {s:?} missing from dump {reveal:?}",
                capture.display()
            );
        }
    }
}

/// Commands whose first argument names a stream.
const NAMING: [&str; 7] = [
    "publish",
    "play",
    "releaseStream",
    "FCPublish",
    "FCUnpublish",
    "FCSubscribe",
    "getStreamLength",
];

/// Adds a stream name and its query values to `names` (those of 4
/// characters or more: shorter ones are shown as "…", but also occur by
/// chance in any output).
fn add_name(names: &mut Vec<String>, name: &str) {
    let (key, query) = name.split_once('?').unwrap_or((name, ""));
    for s in std::iter::once(key).chain(query.split('&').filter_map(|kv| kv.split('=').nth(1))) {
        if s.len() >= 4 && !names.iter().any(|n| n == s) {
            names.push(s.to_owned());
        }
    }
}

/// The stream names the clients of a capture sent, by the reference
/// decoder of its ground truth (the `.json` beside it), when there is one.
fn names_in_reference(capture: &Path) -> Option<Vec<String>> {
    let sidecar = std::fs::read_to_string(capture.with_extension("json")).ok()?;
    let sidecar: serde_json::Value = serde_json::from_str(&sidecar).unwrap();
    let mut names = Vec::new();
    for c in sidecar["ground_truth"]["connections"].as_array()? {
        for m in c["c2s"]["amf_messages"].as_array().into_iter().flatten() {
            if NAMING.contains(&m["amf"][0].as_str().unwrap_or(""))
                && let Some(name) = m["amf"][3].as_str()
            {
                add_name(&mut names, name);
            }
        }
    }
    Some(names)
}

/// The stream names (and their query values) the clients of a capture
/// sent: the reference's, and what `dump --json --reveal-keys` reads (for
/// captures without a reference, and messages the reference could not
/// decode, e.g. in a snaplen-cut capture). The names a default dump must
/// not show.
fn names_sent(capture: &Path, extra: &[&str]) -> Vec<String> {
    let mut names = names_in_reference(capture).unwrap_or_default();
    let mut args = vec!["--json", "--reveal-keys"];
    args.extend(extra);
    let out = dump(&args, capture);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        if r["dir"] == "c2s"
            && NAMING.contains(&r["command"].as_str().unwrap_or(""))
            && let Some(name) = r["args"][0].as_str()
        {
            add_name(&mut names, name);
        }
    }
    names
}

#[test]
fn no_shipped_capture_shows_the_names_its_clients_sent() {
    let mut checked = 0;
    let mut captures: Vec<PathBuf> = ["rtmp", "ertmp", "diag", "capture"]
        .iter()
        .flat_map(|d| std::fs::read_dir(testdata().join(d)).into_iter().flatten())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    captures.sort();
    let mut by_reference = 0;
    for c in &captures {
        by_reference += usize::from(names_in_reference(c).is_some_and(|n| !n.is_empty()));
        let names = names_sent(c, &[]);
        if names.is_empty() {
            continue;
        }
        // Text and JSON of every capture, as strings (a stream may be
        // called `play`, as its command is); every view of a few.
        let text = seen(&dump(&[], c));
        let json = String::from_utf8(dump(&["--json"], c).stdout).unwrap();
        let json: String = json
            .lines()
            .map(|l| {
                let mut r: serde_json::Value = serde_json::from_str(l).unwrap();
                r.as_object_mut().unwrap().remove("command");
                r.to_string()
            })
            .collect();
        for n in &names {
            let quoted = format!("\"{n}\"");
            assert!(!text.contains(&quoted), "{}: {n:?} in dump", c.display());
            assert!(
                !json.contains(&quoted),
                "{}: {n:?} in dump --json",
                c.display()
            );
        }
        let long: Vec<String> = names.iter().filter(|n| n.len() >= 8).cloned().collect();
        if checked % 6 == 0 && !long.is_empty() {
            assert_kept(c, &[], &long, &long);
        }
        checked += 1;
    }
    assert!(checked >= 20, "captures with stream names: {checked}");
    // Most of them named by the reference decoder, not by ours.
    assert!(
        by_reference >= 18,
        "captures named by the reference: {by_reference}"
    );
}

/// One side's chunk stream.
struct Side {
    enc: ChunkEncoder,
    out: Vec<u8>,
}

impl Side {
    fn new() -> Side {
        Side {
            enc: ChunkEncoder::new(EncoderConfig::default()),
            out: Vec::new(),
        }
    }

    fn send(&mut self, csid: u32, stream_id: u32, m: &Message) -> Vec<u8> {
        let header = MessageHeader {
            timestamp: 0,
            msg_type: m.msg_type(),
            stream_id,
        };
        self.out.clear();
        self.enc.encode(csid, &header, &m.encode(), &mut self.out);
        self.out.clone()
    }
}

fn command(name: &str, tid: f64, obj: V, args: Vec<V>) -> Message {
    Message::Command(Command::new(name, tid, obj, args))
}

fn s(t: &str) -> V {
    V::String(t.into())
}

/// A simple handshake (C0+C1, S0+S1+S2, C2): a conversation's first parts.
fn handshake() -> Vec<(bool, Vec<u8>)> {
    let mut c0c1 = vec![3u8];
    c0c1.extend([0u8; 1536]);
    let mut s012 = vec![3u8];
    s012.extend([0u8; 3072]);
    vec![(true, c0c1), (false, s012), (true, vec![0u8; 1536])]
}

/// A conversation that names every kind of secret, and echoes them.
fn crafted(chunk_size: u32) -> Vec<u8> {
    let (mut c, mut sv) = (Side::new(), Side::new());
    let mut parts = handshake();
    let scs = Message::SetChunkSize(chunk_size);
    parts.push((true, c.send(2, 0, &scs)));
    c.enc.set_chunk_size(chunk_size);
    let long = "x".repeat(300);
    let connect = command(
        "connect",
        1.0,
        V::Object(vec![
            ("app".into(), s("live?token=TOKapp1x")),
            (
                "tcUrl".into(),
                s("rtmp://bob:PWsecret@h/live?token=TOKapp1x"),
            ),
            (
                "pageUrl".into(),
                s("https://example.com/watch?sig=SIGpage9&x"),
            ),
            // Long enough to span chunks at 128.
            ("flashVer".into(), s(&format!("FMLE/3.0 {long}"))),
        ]),
        vec![],
    );
    parts.push((true, c.send(3, 0, &connect)));
    let result = command(
        "_result",
        1.0,
        V::Null,
        vec![V::Object(vec![
            ("code".into(), s("NetConnection.Connect.Success")),
            (
                "description".into(),
                s("accepted rtmp://bob:PWsecret@h/live?token=TOKapp1x"),
            ),
        ])],
    );
    parts.push((false, sv.send(3, 0, &result)));
    let release = command(
        "releaseStream",
        2.0,
        V::Null,
        vec![s("KEYfirst?auth=AUTHq77")],
    );
    parts.push((true, c.send(3, 0, &release)));
    parts.push((
        true,
        c.send(3, 0, &command("createStream", 3.0, V::Null, vec![])),
    ));
    parts.push((
        false,
        sv.send(
            3,
            0,
            &command("_result", 3.0, V::Null, vec![V::Number(1.0)]),
        ),
    ));
    // An AMF3 command (type 17).
    let publish = Message::Command(Command {
        encoding: Encoding::Amf3 { format: 0 },
        values: vec![
            s("publish"),
            V::Number(4.0),
            V::Null,
            s("KEYfirst?auth=AUTHq77"),
            s("live"),
        ],
    });
    parts.push((true, c.send(8, 1, &publish)));
    let status = |code: &str, text: &str, name: &str| {
        command(
            "onStatus",
            0.0,
            V::Null,
            vec![V::Object(vec![
                ("level".into(), s("status")),
                ("code".into(), s(code)),
                ("description".into(), s(text)),
                ("details".into(), V::AvmPlus(Amf3Value::String(name.into()))),
            ])],
        )
    };
    parts.push((
        false,
        sv.send(
            5,
            1,
            &status(
                "NetStream.Publish.Start",
                "live/KEYfirst is now published.",
                "KEYfirst",
            ),
        ),
    ));
    parts.push((
        true,
        c.send(3, 0, &command("createStream", 5.0, V::Null, vec![])),
    ));
    parts.push((
        false,
        sv.send(
            3,
            0,
            &command("_result", 5.0, V::Null, vec![V::Number(2.0)]),
        ),
    ));
    parts.push((
        true,
        c.send(8, 2, &command("play", 0.0, V::Null, vec![s("KEYsecond")])),
    ));
    parts.push((
        false,
        sv.send(
            5,
            2,
            &status(
                "NetStream.Play.Start",
                "Started playing KEYsecond.",
                "KEYsecond",
            ),
        ),
    ));
    let data = Message::Data(DataMessage {
        encoding: Encoding::Amf0,
        values: vec![
            s("onTextData"),
            V::Object(vec![("text".into(), s("KEYsecond"))]),
        ],
    });
    parts.push((false, sv.send(6, 2, &data)));
    let parts: Vec<(bool, &[u8])> = parts.iter().map(|(c, b)| (*c, &b[..])).collect();
    common::conversation_pcap(&parts)
}

#[test]
fn a_crafted_conversation_keeps_every_kind_of_secret() {
    let secrets: Vec<String> = [
        "TOKapp1x",
        "PWsecret",
        "SIGpage9",
        "KEYfirst",
        "AUTHq77",
        "KEYsecond",
    ]
    .map(String::from)
    .to_vec();
    let dir = tempfile::tempdir().unwrap();
    for chunk_size in [128, 4096] {
        let p = dir.path().join(format!("crafted-{chunk_size}.pcap"));
        std::fs::write(&p, crafted(chunk_size)).unwrap();
        assert_kept(&p, &[], &secrets, &secrets);
        // A filter hides the commands that named the secrets: what it
        // shows (the server's echoes) still does not name them.
        let echoed = &secrets[..2]
            .iter()
            .chain(&secrets[3..4])
            .chain(&secrets[5..])
            .cloned()
            .collect::<Vec<_>>();
        let echoes = [
            &["--dir", "s2c"][..],
            &["--command", "onStatus,_result,onTextData"],
        ];
        for f in echoes {
            assert_kept(&p, f, &secrets, echoed);
        }
        // What is kept is shortened as elsewhere.
        let text = seen(&dump(&[], &p));
        for short in ["KE…", "rtmp://***@h/live?token=TO…", "sig=SI…"] {
            assert!(text.contains(short), "{short} not in\n{text}");
        }
        // The rest of the output is the same.
        assert!(text.contains("NetStream.Publish.Start") && text.contains("live"));
    }
}

#[test]
fn rtmfp_publish_names_are_kept_in_session_packets() {
    let p = testdata().join("rtmfp/tc_publish_play_rtmp_relay.pcap");
    let keys = testdata().join("rtmfp/tc_publish_play_rtmp_relay.keys");
    let keys = keys.to_str().unwrap();
    let extra = ["--keylog", keys];
    let names = names_sent(&p, &extra);
    // The reference (the decrypted packets in the ground truth) has the
    // publisher name the stream "test": a publish command and that AMF
    // string in its user data.
    let truth = std::fs::read_to_string(p.with_extension("truth.jsonl")).unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert!(
        truth.contains(&hex(b"\x02\x00\x07publish")) && truth.contains(&hex(b"\x02\x00\x04test"))
    );
    assert!(names.iter().any(|n| n == "test"), "{names:?}");
    // The name is short: look for it quoted, as the views show a string.
    let shown = seen(&dump(&["--keylog", keys], &p));
    assert!(shown.contains("\"te…\""), "{shown}");
    assert!(!shown.contains("\"test\""), "{shown}");
    let json = seen(&dump(&["--keylog", keys, "--json"], &p));
    assert!(!json.contains("\"test\""));
    let revealed = seen(&dump(&["--keylog", keys, "--reveal-keys"], &p));
    assert!(revealed.contains("\"test\""));
    assert_kept(&p, &extra, &names, &names);
}

/// A hostile capture: one client names thousands of streams, each echoed
/// by the server at once. Each echo is still kept (the newest names are
/// remembered) and the work per value stays bounded: the dump ends (a hang
/// here would be quadratic work).
#[test]
fn a_client_naming_thousands_of_streams_is_kept_and_bounded() {
    let (mut c, mut sv) = (Side::new(), Side::new());
    let mut parts = handshake();
    let names: Vec<String> = (0..3000).map(|i| format!("HOSTILEkey{i:05}")).collect();
    for n in &names {
        parts.push((
            true,
            c.send(8, 1, &command("publish", 0.0, V::Null, vec![s(n)])),
        ));
        let echo = command(
            "onStatus",
            0.0,
            V::Null,
            vec![V::Object(vec![(
                "description".into(),
                s(&format!("{n} is busy")),
            )])],
        );
        parts.push((false, sv.send(5, 1, &echo)));
    }
    let parts: Vec<(bool, &[u8])> = parts.iter().map(|(c, b)| (*c, &b[..])).collect();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("many.pcap");
    std::fs::write(&p, common::conversation_pcap(&parts)).unwrap();
    for view in [&[][..], &["--json"]] {
        let child = common::bin()
            .arg("dump")
            .args(view)
            .arg(&p)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = common::wait_output(
            child,
            "dump of 3000 names",
            std::time::Duration::from_secs(60),
        );
        assert!(out.status.success());
        let shown = seen(&out);
        assert!(!shown.contains("HOSTILEkey"), "a name was shown");
        assert_eq!(shown.matches("is busy").count(), 3000);
    }
}
