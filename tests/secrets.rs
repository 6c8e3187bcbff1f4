//! Secrets stay secret, terminals stay clean (CLI.md, "Secrets never reach
//! output"): every command's failure and success paths, against a tiny raw
//! RTMP responder (written here on the library's chunk decoder) that echoes
//! the key, the token and the app back in its text, and against nginx-rtmp;
//! with URLs carrying user info, a short key, a bare parameter and a token
//! in the app. Each secret is searched for in stdout, stderr and JSON: zero
//! hits without `--reveal-keys`, present with it. A hostile responder puts
//! ESC, CR/LF, OSC and invalid UTF-8 in every string it sends: no raw
//! control byte reaches stdout or stderr, every error is one line, JSON
//! stays valid and keeps the values. And Ctrl-C ends `probe --count` with
//! its summary.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rtmptool::proto::amf0::Amf0Value;
use rtmptool::proto::chunk::{ChunkDecoder, ChunkEvent, DecoderConfig};
use rtmptool::proto::message::{Message, MessageType};

/// What the responder does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `_error` to connect, echoing the app and tcUrl.
    RefuseConnect,
    /// connect and createStream succeed; publish/play get an error onStatus
    /// echoing the stream name.
    RefuseStart,
    /// Everything succeeds; the start onStatus echoes the stream name; a
    /// player gets a few media messages and Stream EOF.
    Accept,
}

/// ESC colour, OSC retitle, CR/LF with a forged line, a C1 CSI, DEL.
const HOSTILE: &str = "\u{1b}[31mRED\u{1b}]0;pwned\u{7}\r\nrtmptool: forged line\u{9b}2J\u{7f}";
/// Invalid UTF-8 after the hostile text.
const BAD_UTF8: &[u8] = b"\xff\xfe\xc3";

fn amf_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(2);
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn amf_num(out: &mut Vec<u8>, n: f64) {
    out.push(0);
    out.extend_from_slice(&n.to_be_bytes());
}

fn amf_obj(out: &mut Vec<u8>, props: &[(&str, &[u8])]) {
    out.push(3);
    for (k, v) in props {
        out.extend_from_slice(&(k.len() as u16).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        amf_str(out, v);
    }
    out.extend_from_slice(&[0, 0, 9]);
}

/// One message as chunks of 128 bytes (the default chunk size).
fn send(s: &mut TcpStream, csid: u8, msg_type: u8, stream_id: u32, payload: &[u8]) {
    let _ = s.write_all(&common::chunked(128, csid, msg_type, 0, stream_id, payload));
}

fn command(
    name: &[u8],
    tid: f64,
    obj: Option<&[(&str, &[u8])]>,
    info: &[(&str, &[u8])],
) -> Vec<u8> {
    let mut p = Vec::new();
    amf_str(&mut p, name);
    amf_num(&mut p, tid);
    match obj {
        Some(o) => amf_obj(&mut p, o),
        None => p.push(5),
    }
    amf_obj(&mut p, info);
    p
}

/// Text with the hostile bytes around `echo` when `hostile`.
fn said(hostile: bool, echo: &str) -> Vec<u8> {
    if hostile {
        let mut v = HOSTILE.as_bytes().to_vec();
        v.extend_from_slice(echo.as_bytes());
        v.extend_from_slice(BAD_UTF8);
        v
    } else {
        echo.as_bytes().to_vec()
    }
}

fn serve(mut s: TcpStream, mode: Mode, hostile: bool) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut c0c1 = [0u8; 1537];
    if s.read_exact(&mut c0c1).is_err() {
        return;
    }
    let mut s0s1s2 = vec![3u8];
    s0s1s2.extend_from_slice(&[0u8; 1536]);
    s0s1s2.extend_from_slice(&c0c1[1..]);
    if s.write_all(&s0s1s2).is_err() {
        return;
    }
    let mut c2 = [0u8; 1536];
    if s.read_exact(&mut c2).is_err() {
        return;
    }
    let mut dec = ChunkDecoder::new(DecoderConfig::default());
    let mut buf = [0u8; 65536];
    let mut app;
    let mut tc_url = String::new();
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        dec.push(&buf[..n]);
        while let Ok(Some(ev)) = dec.poll() {
            let ChunkEvent::Message(raw) = ev else {
                continue;
            };
            if raw.header.msg_type != MessageType(20) {
                continue;
            }
            let Ok(Message::Command(c)) = Message::decode(raw.header.msg_type, raw.payload) else {
                continue;
            };
            let tid = c.transaction_id().unwrap_or(0.0);
            let arg = c
                .args()
                .first()
                .and_then(Amf0Value::as_str)
                .unwrap_or("")
                .to_owned();
            match c.name() {
                "connect" => {
                    let o = c.command_object();
                    let get = |k: &str| o.and_then(|o| o.get(k)).and_then(Amf0Value::as_str);
                    app = get("app").unwrap_or("").to_owned();
                    tc_url = get("tcUrl").unwrap_or("").to_owned();
                    if hostile {
                        // A command with a hostile name before the answer.
                        let mut name = HOSTILE.as_bytes().to_vec();
                        name.extend_from_slice(BAD_UTF8);
                        send(&mut s, 3, 20, 0, &command(&name, 0.0, None, &[]));
                    }
                    if mode == Mode::RefuseConnect {
                        let d = said(hostile, &format!("app {app} tcUrl {tc_url} is not allowed"));
                        let code = said(hostile, "NetConnection.Connect.Rejected");
                        let p = command(
                            b"_error",
                            tid,
                            None,
                            &[("level", b"error"), ("code", &code), ("description", &d)],
                        );
                        send(&mut s, 3, 20, 0, &p);
                        continue;
                    }
                    send(&mut s, 2, 5, 0, &5_000_000u32.to_be_bytes());
                    let mut bw = 5_000_000u32.to_be_bytes().to_vec();
                    bw.push(2);
                    send(&mut s, 2, 6, 0, &bw);
                    let fms = if hostile {
                        format!("FMS/3,0,1,123{HOSTILE}").into_bytes()
                    } else {
                        b"FMS/3,0,1,123".to_vec()
                    };
                    let d = said(hostile, &format!("Connection succeeded for {app}"));
                    let p = command(
                        b"_result",
                        tid,
                        Some(&[("fmsVer", &fms)]),
                        &[
                            ("level", b"status"),
                            ("code", b"NetConnection.Connect.Success"),
                            ("description", &d),
                        ],
                    );
                    send(&mut s, 3, 20, 0, &p);
                }
                "createStream" => {
                    let mut p = Vec::new();
                    amf_str(&mut p, b"_result");
                    amf_num(&mut p, tid);
                    p.push(5);
                    amf_num(&mut p, 1.0);
                    send(&mut s, 3, 20, 0, &p);
                }
                "publish" | "play" => {
                    let publish = c.name() == "publish";
                    let (level, code) = match (mode, publish) {
                        (Mode::Accept, true) => ("status", "NetStream.Publish.Start"),
                        (Mode::Accept, false) => ("status", "NetStream.Play.Start"),
                        (_, true) => ("error", "NetStream.Publish.BadName"),
                        (_, false) => ("error", "NetStream.Play.StreamNotFound"),
                    };
                    let d = if level == "error" {
                        said(hostile, &format!("stream {arg} is not allowed on {tc_url}"))
                    } else {
                        said(hostile, &format!("Started {arg}"))
                    };
                    let code = said(hostile, code);
                    let p = command(
                        b"onStatus",
                        0.0,
                        None,
                        &[
                            ("level", level.as_bytes()),
                            ("code", &code),
                            ("description", &d),
                        ],
                    );
                    send(&mut s, 5, 20, 1, &p);
                    if mode == Mode::Accept && !publish {
                        // A keyframe and an audio frame, then Stream EOF.
                        for i in 0..3u8 {
                            send(&mut s, 6, 9, 1, &[0x17, 1, 0, 0, 0, i, 1, 2, 3]);
                            send(&mut s, 4, 8, 1, &[0xaf, 1, 0x21, i]);
                        }
                        send(&mut s, 2, 4, 0, &[0, 1, 0, 0, 0, 1]);
                    }
                }
                _ => {}
            }
        }
    }
}

/// A responder on a free port, serving every connection in a thread.
fn responder(mode: Mode, hostile: bool) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || serve(s, mode, hostile));
        }
    });
    port
}

fn run(args: &[String]) -> Output {
    let child = common::bin()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rtmptool");
    common::wait_output(
        child,
        &format!("rtmptool {args:?}"),
        Duration::from_secs(30),
    )
}

/// No raw control byte, no invalid UTF-8, every stderr line one
/// `rtmptool:` line; with `json`, every stdout line is a JSON object.
fn assert_clean(what: &str, out: &Output, json: bool) {
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = std::str::from_utf8(bytes)
            .unwrap_or_else(|e| panic!("{what}: {name} is not UTF-8 ({e}): {bytes:?}"));
        let bad = text
            .chars()
            .find(|&c| c.is_control() && c != '\n' || ('\u{80}'..='\u{9f}').contains(&c));
        assert!(bad.is_none(), "{what}: raw {bad:?} on {name}: {text:?}");
    }
    let err = String::from_utf8_lossy(&out.stderr);
    for l in err.lines() {
        assert!(
            l.starts_with("rtmptool: "),
            "{what}: stderr line not one rtmptool line: {l:?} in {err:?}"
        );
    }
    if !out.status.success() {
        assert!(
            err.lines().any(|l| l.starts_with("rtmptool: ")),
            "{what}: failed without an error line"
        );
    }
    if json {
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: {e}: {l}"));
            assert!(v["type"].is_string(), "{what}: {l}");
        }
    }
}

const SECRETS: [&str; 5] = ["alice", "hunter2pw", "kq7", "tokenonly", "tok3n5ecret"];

/// Runs `cmd` (probe, probe --publish, probe --play, publish, play) at
/// `url` with the app token; checks the secrets and the output's hygiene.
fn check(what: &str, cmd: &[&str], url: &str, json: bool, reveal: bool) -> Output {
    check_with(what, cmd, url, json, reveal, true)
}

/// As [`check`]; without `app_flag` the app's token is in `url`.
fn check_with(
    what: &str,
    cmd: &[&str],
    url: &str,
    json: bool,
    reveal: bool,
    app_flag: bool,
) -> Output {
    let mut args: Vec<String> = vec!["--timeout".into(), "2s".into()];
    if json {
        args.push("--json".into());
    }
    for a in cmd {
        args.push((*a).into());
    }
    if app_flag {
        args.push("--app".into());
        args.push("live?token=tok3n5ecret".into());
    }
    if reveal {
        args.push("--reveal-keys".into());
    }
    if cmd[0] == "publish" {
        args.extend(["--no-pace".into(), "--duration".into(), "500ms".into()]);
        args.push(common::media("h264base_aac_10s.flv").display().to_string());
    }
    args.push(url.into());
    let out = run(&args);
    let what = format!("{what} {args:?}");
    assert_clean(&what, &out, json);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for s in SECRETS {
        if reveal {
            assert!(
                all.contains(s),
                "{what}: --reveal-keys does not show {s}: {all}"
            );
        } else {
            assert!(!all.contains(s), "{what}: {s} leaked: {all}");
        }
    }
    out
}

const COMMANDS: [&[&str]; 5] = [
    &["probe"],
    &["probe", "--publish"],
    &["probe", "--play"],
    &["publish"],
    &["play"],
];

#[test]
fn secrets_never_reach_output() {
    for mode in [Mode::RefuseConnect, Mode::RefuseStart, Mode::Accept] {
        let port = responder(mode, false);
        let url = format!("rtmp://alice:hunter2pw@127.0.0.1:{port}/live/kq7?tokenonly");
        for cmd in COMMANDS {
            for json in [false, true] {
                for reveal in [false, true] {
                    let out = check(&format!("{mode:?}"), cmd, &url, json, reveal);
                    let refused = match mode {
                        Mode::RefuseConnect => true,
                        Mode::RefuseStart => cmd.len() > 1 || cmd[0] != "probe",
                        Mode::Accept => false,
                    };
                    let code = if refused { 5 } else { 0 };
                    assert_eq!(
                        out.status.code(),
                        Some(code),
                        "{mode:?} {cmd:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
    }
}

/// The app's token in the URL (`rtmp://h/live?token=T/key`, as platforms
/// hand them out): split as FFmpeg splits it (app `live?token=T`, stream
/// `key`), so the key is known as a key and the token as a token. It was
/// taken for a stream name `?token=T/key`: a responder's echo of the key
/// leaked, and `probe --publish` published an empty name.
#[test]
fn secrets_in_the_apps_query_of_the_url_never_reach_output() {
    for mode in [Mode::RefuseConnect, Mode::RefuseStart, Mode::Accept] {
        let port = responder(mode, false);
        let url = format!("rtmp://alice:hunter2pw@127.0.0.1:{port}/live?token=tok3n5ecret/kq7");
        for cmd in COMMANDS {
            for json in [false, true] {
                let out = check_with(
                    &format!("{mode:?} app query"),
                    cmd,
                    &url,
                    json,
                    false,
                    false,
                );
                let refused = match mode {
                    Mode::RefuseConnect => true,
                    Mode::RefuseStart => cmd.len() > 1 || cmd[0] != "probe",
                    Mode::Accept => false,
                };
                assert_eq!(
                    out.status.code(),
                    Some(if refused { 5 } else { 0 }),
                    "{mode:?} {cmd:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

/// serve, told the app's token by its clients (FFmpeg and rtmptool), shows
/// neither it nor the key, in text or JSON; the stream is the app's without
/// its query (as nginx-rtmp), so a player without the token finds it.
#[test]
fn serve_keeps_the_apps_token_secret() {
    let serve = common::Serve::start(&[]);
    let url = serve.url("live?token=tok3n5ecret/kq7secretkey");
    let mut ffmpeg = common::ffmpeg_publish_loop_to(&url);
    serve.wait_sessions("publish", 1);
    let played = tempfile::tempdir().unwrap();
    let out = played.path().join("p.flv");
    let p = run(&[
        "--timeout".into(),
        "5s".into(),
        "play".into(),
        "--duration".into(),
        "1s".into(),
        "-o".into(),
        out.display().to_string(),
        serve.url("live/kq7secretkey"),
    ]);
    assert_eq!(
        p.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&p.stderr)
    );
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    let log = std::fs::read_to_string(&serve.log).unwrap();
    for s in ["tok3n5ecret", "kq7secretkey", "secretkey"] {
        assert!(!log.contains(s), "{s} leaked: {log}");
    }
    assert!(log.contains("live?token=to…"), "{log}");
}

#[test]
fn refusal_hint_fits_the_status() {
    let port = responder(Mode::RefuseStart, false);
    let url = format!("rtmp://127.0.0.1:{port}/live/secretkey123");
    let out = run(&["probe".into(), "--publish".into(), url]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{e}");
    assert!(e.contains("NetStream.Publish.BadName"), "{e}");
    assert!(e.contains("stream se… is not allowed"), "{e}");
    assert!(!e.contains("already being published"), "{e}");
    assert!(e.contains("does not accept this stream name or key"), "{e}");
}

#[test]
fn secrets_never_reach_output_with_nginx() {
    let nginx = common::Nginx::start(4096, "");
    let port = nginx.addr.port();
    let url = format!("rtmp://alice:hunter2pw@127.0.0.1:{port}/live/kq7?tokenonly");
    for cmd in [&["probe"][..], &["probe", "--publish"], &["publish"]] {
        for reveal in [false, true] {
            let out = check("nginx", cmd, &url, true, reveal);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn hostile_text_is_escaped() {
    for mode in [Mode::RefuseConnect, Mode::RefuseStart, Mode::Accept] {
        let port = responder(mode, true);
        let url = format!("rtmp://127.0.0.1:{port}/live/kq7?tokenonly");
        for cmd in COMMANDS {
            for json in [false, true] {
                let out = check(&format!("hostile {mode:?}"), cmd, &url, json, false);
                let all = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                if json && cmd[0] == "probe" && mode != Mode::RefuseConnect {
                    // JSON keeps the decoded value.
                    let r: serde_json::Value =
                        serde_json::from_str(all.lines().next().unwrap()).unwrap();
                    let fms = r["server"]["fms_ver"].as_str().unwrap_or_default();
                    assert!(fms.ends_with(HOSTILE), "{r}");
                } else if !json && (cmd[0] == "probe" || mode != Mode::Accept) {
                    // Human text shows it escaped.
                    assert!(all.contains("\\u{1b}[31mRED"), "{all}");
                    assert!(all.contains("\\r\\n"), "{all}");
                }
            }
        }
    }
}

#[test]
fn ctrl_c_ends_probe_count_with_the_summary() {
    let port = responder(Mode::Accept, false);
    let url = format!("rtmp://127.0.0.1:{port}/live/kq7");
    for json in [false, true] {
        let mut cmd = common::bin();
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd
            .args(["probe", "--count", "100", "--interval", "200ms", &url])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait for the first attempt's output, then interrupt.
        let mut stdout = child.stdout.take().unwrap();
        let mut seen = Vec::new();
        common::wait_for("the first attempt", Duration::from_secs(10), || {
            let mut b = [0u8; 4096];
            let n = stdout.read(&mut b).ok()?;
            seen.extend_from_slice(&b[..n]);
            (seen.contains(&b'\n') || n == 0).then_some(())
        });
        let st = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let out = common::wait_output(child, "probe --count 100", Duration::from_secs(10));
        stdout.read_to_end(&mut seen).unwrap();
        let text = String::from_utf8_lossy(&seen);
        assert_eq!(out.status.code(), Some(0), "{text}");
        if json {
            let last: serde_json::Value =
                serde_json::from_str(text.lines().last().unwrap()).unwrap();
            assert_eq!(last["type"], "probe_summary", "{text}");
            assert_eq!(last["interrupted"], true);
            assert!(last["sent"].as_u64().unwrap() >= 1);
            for k in [
                "tcp_connect_ms",
                "handshake_ms",
                "connect_ms",
                "tls_ms",
                "total_ms",
            ] {
                assert!(last.get(k).is_some(), "{k}: {last}");
            }
            assert!(last["tls_ms"].is_null());
            assert!(last["handshake_ms"]["min"].is_number(), "{last}");
        } else {
            assert!(
                text.contains("attempts,") && text.contains("(interrupted)"),
                "{text}"
            );
        }
    }
}

/// The summary keeps its keys when every attempt failed after the handshake.
#[test]
fn probe_summary_keys_when_every_attempt_failed() {
    let port = responder(Mode::RefuseConnect, false);
    let url = format!("rtmp://127.0.0.1:{port}/live/kq7");
    let out = run(&[
        "--json".into(),
        "probe".into(),
        "--count".into(),
        "2".into(),
        "--interval".into(),
        "0".into(),
        url,
    ]);
    assert_eq!(out.status.code(), Some(5));
    let text = String::from_utf8_lossy(&out.stdout);
    let s: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(s["type"], "probe_summary");
    assert_eq!(s["ok"], 0);
    assert!(s["handshake_ms"]["avg"].is_number(), "{s}");
    assert!(s["total_ms"].is_null(), "{s}");
    assert_eq!(s["reached"]["handshake"], 2, "{s}");
    assert_eq!(s["failed_in"]["connect"], 2, "{s}");
}

/// URL parse errors print the redacted form, on one line.
#[test]
fn url_errors_are_redacted() {
    for url in [
        "rtmp://127.0.0.1:99999/live/secretkey123?token=abcdef",
        "http://u:hunter2@h/live/secretkey123?token=abcdef",
        "rtmp://u:hunter2@/live/secretkey123?token=abcdef",
        "rtmp://[::1/live/secretkey123?token=abcdef",
    ] {
        for cmd in ["probe", "play"] {
            let out = run(&[cmd.into(), url.into()]);
            assert_eq!(out.status.code(), Some(7), "{url}");
            let e = String::from_utf8_lossy(&out.stderr);
            assert_eq!(e.lines().count(), 1, "{e}");
            for s in ["secretkey123", "abcdef", "hunter2"] {
                assert!(!e.contains(s), "{e}");
            }
        }
    }
}

/// The commands that reach servers besides probe, publish and play:
/// diagnose's live checks, load, relay (the responder as source and as
/// destination), against a responder that refuses, refuses the stream or
/// accepts, echoing the key, token and user info.
#[test]
fn secrets_never_reach_output_of_diagnose_load_and_relay() {
    let flv = common::media("h264base_aac_10s.flv").display().to_string();
    for mode in [Mode::RefuseConnect, Mode::RefuseStart, Mode::Accept] {
        let port = responder(mode, false);
        let url =
            format!("rtmp://alice:hunter2pw@127.0.0.1:{port}/live?token=tok3n5ecret/kq7?tokenonly");
        let other = format!("rtmp://127.0.0.1:{port}/live/kq7?tokenonly");
        let cases: Vec<Vec<String>> = vec![
            vec!["diagnose".into(), url.clone()],
            vec![
                "load".into(),
                "--players".into(),
                "2".into(),
                "--duration".into(),
                "1s".into(),
                url.clone(),
            ],
            vec![
                "load".into(),
                "--publishers".into(),
                "1".into(),
                "--flv".into(),
                flv.clone(),
                "--duration".into(),
                "1s".into(),
                url.clone(),
            ],
            vec![
                "relay".into(),
                "--duration".into(),
                "1s".into(),
                url.clone(),
                other.clone(),
            ],
            vec![
                "relay".into(),
                "--duration".into(),
                "1s".into(),
                other.clone(),
                url.clone(),
            ],
        ];
        for case in cases {
            for json in [false, true] {
                let mut args: Vec<String> = vec!["--timeout".into(), "2s".into()];
                if json {
                    args.push("--json".into());
                }
                args.extend(case.iter().cloned());
                let out = run(&args);
                let what = format!("{mode:?} {args:?}");
                // (relay and load say what they do on stderr too: not only
                // `rtmptool:` error lines.)
                let all = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                for s in SECRETS {
                    assert!(!all.contains(s), "{what}: {s} leaked: {all}");
                }
            }
        }
    }
}
