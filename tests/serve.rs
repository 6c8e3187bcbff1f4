//! `rtmptool serve` with real peers on loopback: FFmpeg publishes, rtmpdump,
//! FFmpeg and `rtmptool play` play, tag for tag; RTMPS on the same port;
//! nginx-rtmp pushes to it and pulls from it; a second publisher is refused
//! as nginx refuses it; a player that stops reading does not hold anyone
//! back; the client byte streams of the fault captures give the findings
//! `diagnose` gives on the captures.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use common::{Certs, Nginx, Serve, assert_same, bin, media, require, wait_for, wait_output};

/// Sends a client's bytes to serve on `port` at once, reads what it says
/// until it closes.
fn send_as_client(port: u16, bytes: &[u8]) {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let reader = {
        let mut r = tcp.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut b = [0u8; 65536];
            while matches!(r.read(&mut b), Ok(n) if n > 0) {}
        })
    };
    tcp.write_all(bytes).unwrap();
    let _ = tcp.shutdown(std::net::Shutdown::Write);
    reader.join().unwrap();
}

/// Waits for a player to end by itself (up to `limit`), else interrupts
/// it by PID (ffmpeg and rtmpdump finish their files on SIGINT).
fn end_player(mut child: Child, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = wait_output(child, "player after SIGINT", Duration::from_secs(10));
}

fn ffmpeg_publish(url: &str, src: &Path) {
    let out = Command::new(require("ffmpeg"))
        .args(["-nostdin", "-loglevel", "error", "-re", "-i"])
        .arg(src)
        .args(["-c", "copy", "-f", "flv", url])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg publish: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rtmptool_play(url: &str, out: &Path, extra: &[&str]) -> Child {
    bin()
        .args(["--json", "play", url, "-o"])
        .arg(out)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start play")
}

#[test]
fn ffmpeg_publishes_and_rtmpdump_ffmpeg_and_rtmptool_play_tag_for_tag() {
    let rtmpdump = require("rtmpdump");
    let ffmpeg = require("ffmpeg");
    let serve = Serve::start(&[]);
    let dir = tempfile::tempdir().expect("tmp");
    let src = media("h264base_aac_10s.flv");
    let url = serve.url("live/interop");
    let ours = dir.path().join("rtmptool.flv");
    let by_ffmpeg = dir.path().join("ffmpeg.flv");
    let by_rtmpdump = dir.path().join("rtmpdump.flv");
    let p1 = rtmptool_play(&url, &ours, &[]);
    let p2 = common::ffmpeg_player(&ffmpeg, &url, &by_ffmpeg)
        .stderr(Stdio::null())
        .spawn()
        .expect("start ffmpeg player");
    let p3 = Command::new(&rtmpdump)
        .args(["-q", "--live", "-r", &url, "-o"])
        .arg(&by_rtmpdump)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rtmpdump");
    serve.wait_sessions("play", 3);
    ffmpeg_publish(&url, &src);
    let po = wait_output(p1, "rtmptool play", Duration::from_secs(20));
    assert!(
        po.status.success(),
        "play: {}",
        String::from_utf8_lossy(&po.stderr)
    );
    end_player(p2, Duration::from_secs(10));
    end_player(p3, Duration::from_secs(5));
    assert_same("ffmpeg → serve → rtmptool play", &src, &ours, 0);
    assert_same("ffmpeg → serve → ffmpeg", &src, &by_ffmpeg, 0);
    // librtmp does not hand video bodies of 5 bytes or less to rtmpdump's
    // writer (here FFmpeg's end-of-sequence tag, which the other two
    // players received): compare without them.
    let (sa, sv) = common::tracks(&src);
    let (ga, gv) = common::tracks(&by_rtmpdump);
    let sv: Vec<_> = sv.into_iter().filter(|t| t.1.len() > 5).collect();
    assert!(sa == ga, "ffmpeg → serve → rtmpdump: audio differs");
    assert!(sv == gv, "ffmpeg → serve → rtmpdump: video differs");
    let log = serve.log.clone();
    let records = serve.stop();
    // FFmpeg, rtmpdump and our player keep to the protocol: no error.
    let errors: Vec<&Json> = records
        .iter()
        .filter(|r| r["type"] == "finding" && r["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    // The publisher's stream key is never printed in full.
    let all = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!all.contains("interop"), "stream key in the output");
}

/// RTMPS and RTMP on one port, and players with merged writes.
#[test]
fn rtmps_and_rtmp_on_one_port() {
    let certs = Certs::new();
    let cert = certs.cert.to_string_lossy().into_owned();
    let key = certs.key.to_string_lossy().into_owned();
    // Merged writes too: what a player gets is the same, only later.
    let serve = Serve::start(&["--cert", &cert, "--key", &key, "--merge-writes", "30ms"]);
    let dir = tempfile::tempdir().expect("tmp");
    let src = media("h264base_aac_10s.flv");
    let out = dir.path().join("played.flv");
    let play = rtmptool_play(&serve.url("live/tls"), &out, &[]);
    serve.wait_sessions("play", 1);
    let tls_url = format!("rtmps://127.0.0.1:{}/live/tls", serve.port);
    let p = bin()
        .args(["publish", "--rate", "4", "--ca"])
        .arg(&certs.ca)
        .arg(&src)
        .arg(&tls_url)
        .output()
        .expect("publish");
    assert!(
        p.status.success(),
        "rtmps publish: {}",
        String::from_utf8_lossy(&p.stderr)
    );
    let po = wait_output(play, "play", Duration::from_secs(20));
    assert!(
        po.status.success(),
        "play: {}",
        String::from_utf8_lossy(&po.stderr)
    );
    assert_same("rtmps publish → serve → rtmp play", &src, &out, 0);
}

#[test]
fn a_second_publisher_is_refused_as_nginx_refuses_it() {
    let serve = Serve::start(&[]);
    let src = media("h264base_aac_60s.flv");
    let url = serve.url("live/twice");
    let first = bin()
        .args(["publish"])
        .arg(&src)
        .arg(&url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("first publisher");
    serve.wait_sessions("publish", 1);
    let second = bin()
        .args(["publish"])
        .arg(&src)
        .arg(&url)
        .output()
        .expect("second publisher");
    assert_eq!(
        second.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("NetStream.Publish.BadName"), "{err}");
    wait_for("the refusal finding", Duration::from_secs(10), || {
        serve
            .findings()
            .iter()
            .any(|f| {
                f["code"] == "refused"
                    && f["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("NetStream.Publish.BadName"))
                    && f["peer"].is_string()
            })
            .then_some(())
    });
    let _ = Command::new("kill").arg(first.id().to_string()).status();
    let _ = wait_output(first, "first publisher", Duration::from_secs(10));
}

#[test]
fn publish_key_and_address_rules() {
    let serve = Serve::start(&["--publish-key", "s3cret", "--deny", "play:127.0.0.0/8"]);
    let src = media("aac_only_10s.flv");
    let wrong = bin()
        .args(["publish", "--rate", "8"])
        .arg(&src)
        .arg(serve.url("live/guess"))
        .output()
        .expect("publish");
    assert_eq!(wrong.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("Unauthorized"));
    let right = bin()
        .args(["publish", "--rate", "8"])
        .arg(&src)
        .arg(serve.url("live/s3cret"))
        .output()
        .expect("publish");
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    let play = bin()
        .args([
            "play",
            &serve.url("live/s3cret"),
            "-o",
            "-",
            "--duration",
            "1s",
        ])
        .output()
        .expect("play");
    assert_eq!(
        play.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&play.stderr)
    );
    let records = serve.stop();
    let text = records.iter().map(|r| r.to_string()).collect::<String>();
    assert!(!text.contains("s3cret"), "the key reached the output");
}

/// Coded frames only (sequence headers left out: nginx-rtmp re-sends its
/// own copies when a relay starts).
fn frames(t: common::Track) -> common::Track {
    t.into_iter()
        .filter(|(_, b)| !(b.len() >= 2 && b[1] == 0 && matches!(b[0], 0xaf | 0x17)))
        .collect()
}

/// nginx-rtmp's relay joins a live stream where it is (its push connects
/// after the publisher started): what arrives is the source's frames from
/// some point to the end, byte for byte, and most of them.
fn assert_suffix(what: &str, source: &Path, got: &Path) {
    let (sa, sv) = common::tracks(source);
    let (ga, gv) = common::tracks(got);
    for (kind, s, g) in [
        ("audio", frames(sa), frames(ga)),
        ("video", frames(sv), frames(gv)),
    ] {
        assert!(
            g.len() * 10 >= s.len() * 7,
            "{what}: only {} of {} {kind} frames",
            g.len(),
            s.len()
        );
        assert!(
            s.ends_with(&g),
            "{what}: the {kind} frames are not the source's last {}",
            g.len()
        );
    }
}

/// nginx-rtmp pushes a stream to serve (`push`), and pulls one from it
/// (`pull`); both arrive tag for tag.
#[test]
fn nginx_pushes_to_serve_and_pulls_from_it() {
    let serve = Serve::start(&[]);
    let apps = format!(
        "application push {{ live on; push 127.0.0.1:{p} app=live; }}\n    \
         application pull {{ live on; pull rtmp://127.0.0.1:{p}/live; }}",
        p = serve.port
    );
    let nginx = Nginx::start(4096, &apps);
    let dir = tempfile::tempdir().expect("tmp");
    let src = media("h264base_aac_10s.flv");
    // push: ffmpeg → nginx/push/pushed → serve/live/pushed → rtmptool play
    let out = dir.path().join("pushed.flv");
    let play = rtmptool_play(&serve.url("live/pushed"), &out, &[]);
    serve.wait_sessions("play", 1);
    ffmpeg_publish(&nginx.url("push/pushed"), &src);
    let po = wait_output(play, "play from serve", Duration::from_secs(20));
    assert!(
        po.status.success(),
        "{}",
        String::from_utf8_lossy(&po.stderr)
    );
    assert_suffix("nginx push → serve", &src, &out);
    // pull: rtmptool publish → serve/live/pulled ← nginx/pull/pulled ← play
    let out = dir.path().join("pulled.flv");
    let play = rtmptool_play(&nginx.url("pull/pulled"), &out, &[]);
    serve.wait_sessions("play", 2);
    let p = bin()
        .args(["publish"])
        .arg(&src)
        .arg(serve.url("live/pulled"))
        .output()
        .expect("publish");
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    end_player(play, Duration::from_secs(15));
    assert_suffix("serve ← nginx pull", &src, &out);
}

/// A player that stops reading: the publisher keeps its pace, a second
/// player gets every tag, and serve says the stalled one skipped.
#[test]
fn a_player_that_stops_reading_holds_no_one_back() {
    use rtmptool::proto::session::{ClientSession, Goal, SessionConfig, State};
    let serve = Serve::start(&["--queue", "32"]);
    let dir = tempfile::tempdir().expect("tmp");
    let src = media("h264base_aac_60s.flv");
    let url = serve.url("live/slow");
    // The stalled player: plays, then never reads again (small receive buffer).
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], serve.port)).into())
        .unwrap();
    let mut tcp: TcpStream = sock.into();
    let goal = Goal::Play {
        stream: "slow".into(),
        start: -2.0,
        buffer_ms: 1000,
    };
    let cfg = SessionConfig::new(
        "live",
        &format!("rtmp://127.0.0.1:{}/live", serve.port),
        goal,
    );
    let mut x = 7u8;
    let mut c = ClientSession::new(cfg, Duration::ZERO, &mut |b: &mut [u8]| {
        for v in b {
            x = x.wrapping_mul(31).wrapping_add(7);
            *v = x;
        }
    });
    let mut buf = vec![0u8; 4096];
    let t0 = Instant::now();
    while c.state() != State::Active {
        while let Some(b) = c.poll_transmit() {
            tcp.write_all(&b).unwrap();
        }
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0, "serve closed on the stalled player");
        c.handle_input(&buf[..n], t0.elapsed()).unwrap();
        assert!(t0.elapsed() < Duration::from_secs(10), "play never started");
    }
    // A healthy player.
    let out = dir.path().join("healthy.flv");
    let healthy = rtmptool_play(&url, &out, &[]);
    serve.wait_sessions("play", 2);
    let start = Instant::now();
    let p = bin()
        .args(["publish", "--rate", "4"])
        .arg(&src)
        .arg(&url)
        .output()
        .expect("publish");
    let took = start.elapsed();
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    // 60 s of media at 4× real time: 15 s; a publisher held back by the
    // stalled player would take much longer (or never end).
    assert!(took < Duration::from_secs(20), "publish took {took:?}");
    let po = wait_output(healthy, "healthy player", Duration::from_secs(20));
    assert!(
        po.status.success(),
        "{}",
        String::from_utf8_lossy(&po.stderr)
    );
    assert_same("healthy player beside a stalled one", &src, &out, 0);
    let skipped: Vec<Json> = serve
        .records()
        .into_iter()
        .filter(|r| r["type"] == "skipped")
        .collect();
    assert!(!skipped.is_empty(), "no skip reported");
    assert!(skipped.iter().all(|r| r["dropped"].as_u64() > Some(0)));
    drop(tcp);
}

/// Codes of `diagnose --json` findings about the client's bytes.
fn diagnose_codes(pcap: &Path) -> Vec<String> {
    let out = bin()
        .args(["--json", "diagnose"])
        .arg(pcap)
        .output()
        .expect("diagnose");
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .filter(|f| f["dir"] == "c2s" && f["severity"] != "info")
        .filter_map(|f| f["code"].as_str().map(str::to_owned))
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn fault_captures_replayed_give_the_findings_of_diagnose() {
    let serve = Serve::start(&["--handshake-timeout", "2s", "--idle-timeout", "2s"]);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rtmp");
    let cases = [
        "fault_a_no_setchunksize.pcap",
        "fault_a_no_setchunksize_toobig.pcap",
        "fault_b_announce8192_chunk4096.pcap",
        "fault_b_lying_setchunksize.pcap",
    ];
    let mut expected = Vec::new();
    for name in cases {
        let pcap = dir.join(name);
        let want = diagnose_codes(&pcap);
        assert!(!want.is_empty(), "{name}: diagnose found nothing in c2s");
        let bytes = common::client_bytes(&pcap);
        let mut tcp = TcpStream::connect(("127.0.0.1", serve.port)).expect("connect");
        let reader = {
            let mut r = tcp.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut b = [0u8; 65536];
                while matches!(r.read(&mut b), Ok(n) if n > 0) {}
            })
        };
        // The client's bytes as it sent them; the server may close early.
        for piece in bytes.chunks(1460) {
            if tcp.write_all(piece).is_err() {
                break;
            }
        }
        let _ = tcp.shutdown(std::net::Shutdown::Write);
        reader.join().unwrap();
        expected.push((name, want));
    }
    let records = serve.stop();
    let findings: Vec<&Json> = records.iter().filter(|r| r["type"] == "finding").collect();
    for (i, (name, want)) in expected.iter().enumerate() {
        let mut got: Vec<String> = findings
            .iter()
            .filter(|f| {
                f["conn"].as_str().is_some() && f["dir"] == "c2s" && f["severity"] != "info"
            })
            .filter(|f| {
                records
                    .iter()
                    .any(|s| s["type"] == "session" && s["id"] == i && s["peer"] == f["peer"])
            })
            .filter_map(|f| f["code"].as_str().map(str::to_owned))
            .collect();
        got.sort();
        got.dedup();
        let mine: Vec<&Json> = records.iter().filter(|r| r["id"] == i).collect();
        assert_eq!(
            &got, want,
            "{name}: serve {got:?}, diagnose {want:?}; {mine:?}"
        );
    }
}

/// HTTP sent to the RTMP port and a handshake that stalls: each is a
/// finding with `diagnose`'s code, and the server goes on serving.
#[test]
fn hostile_peers_are_findings_and_the_server_goes_on() {
    let serve = Serve::start(&["--handshake-timeout", "1s"]);
    let mut http = TcpStream::connect(("127.0.0.1", serve.port)).expect("connect");
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let _ = http.shutdown(std::net::Shutdown::Write);
    let mut stall = TcpStream::connect(("127.0.0.1", serve.port)).expect("connect");
    stall.write_all(&[3; 700]).unwrap();
    // The stalled client is closed by the handshake timeout.
    let mut b = [0u8; 4096];
    stall
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while matches!(stall.read(&mut b), Ok(n) if n > 0) {}
    wait_for("both findings", Duration::from_secs(10), || {
        let f = serve.findings();
        let has = |code: &str| f.iter().any(|x| x["code"] == code && x["dir"] == "c2s");
        (has("handshake_bad_version") && has("handshake_incomplete")).then_some(())
    });
    let http_finding = serve
        .findings()
        .into_iter()
        .find(|x| x["code"] == "handshake_bad_version")
        .unwrap();
    assert!(
        http_finding["message"]
            .as_str()
            .unwrap_or("")
            .contains("HTTP"),
        "{http_finding}"
    );
    // Still serving.
    let p = bin()
        .args(["probe", &serve.url("live/x")])
        .output()
        .expect("probe");
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// 300 clients, each past the handshake, announce four 16 MiB messages and
/// send one small chunk of each, then hold on: serve reserves nothing it
/// was not sent (bounded), a real client is still served, and every one of
/// them is closed by the idle timeout.
#[test]
fn announced_lengths_cost_nothing_until_sent() {
    let serve = Serve::start(&["--idle-timeout", "3s"]);
    let mut held = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(("127.0.0.1", serve.port)).expect("connect");
        let mut hs = vec![3u8];
        hs.extend(std::iter::repeat_n(0u8, 1536 * 2));
        s.write_all(&hs).unwrap();
        let mut out = Vec::new();
        for csid in 4u8..8 {
            // fmt 0 on chunk stream csid: timestamp 0, length 0xFFFFFF,
            // type 9 (video), stream 1; then 128 bytes of it.
            out.extend_from_slice(&[csid, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0]);
            out.extend(std::iter::repeat_n(0x17u8, 128));
        }
        s.write_all(&out).unwrap();
        held.push(s);
    }
    // Every connection has been read (the server took the bytes).
    wait_for(
        "the 300 connections to be read",
        Duration::from_secs(20),
        || {
            held.iter()
                .all(|s| {
                    let mut b = [0u8; 1];
                    s.set_nonblocking(true).ok();
                    // S0+S1+S2 arrived: the server read C0+C1.
                    matches!(s.peek(&mut b), Ok(1))
                })
                .then_some(())
        },
    );
    let rss = rss_kib(serve.child.id());
    eprintln!("serve RSS with 300 such clients: {rss} KiB");
    assert!(
        rss < 128 * 1024,
        "serve RSS {rss} KiB with 300 × 4 announced 16 MiB messages"
    );
    let p = bin()
        .args(["probe", &serve.url("live/x")])
        .output()
        .expect("probe");
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    // The idle timeout closes them all.
    for mut s in held {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut b = [0u8; 65536];
        loop {
            match s.read(&mut b) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) => panic!("not closed by the idle timeout: {e}"),
            }
        }
    }
}

/// Enhanced RTMP through serve: the client bytes of a captured E-RTMP HEVC
/// publish (FourCC `hvc1`, ex-headers) replayed to serve; a player gets
/// every video body byte for byte, starting with the sequence start.
#[test]
fn enhanced_rtmp_hevc_goes_through_byte_for_byte() {
    use rtmptool::analyze::{Analyzer, Options, RecordKind};
    use rtmptool::capture::Reader;
    use rtmptool::capture::tcp::Dir;
    use rtmptool::proto::message::{Message, MessageType};
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/ertmp/ertmp_hevc.pcap");
    // What the publishing client sent: its bytes, its stream name, its
    // video bodies (the capture also holds players' connections).
    let mut an = Analyzer::new(Options::default());
    let mut r = Reader::new(std::fs::File::open(&pcap).unwrap()).unwrap();
    let mut per_conn: std::collections::HashMap<u64, (Vec<u8>, common::Track)> = Default::default();
    let mut name = None;
    let mut publisher = None;
    while let Some(p) = r.next_packet().unwrap() {
        let cell = std::cell::RefCell::new(&mut per_conn);
        an.packet_with_data(
            &p,
            &mut |rec| {
                if rec.dir != Some(Dir::C2s) {
                    return;
                }
                if let RecordKind::Message { raw, decoded } = rec.kind {
                    if raw.header.msg_type == MessageType::VIDEO {
                        cell.borrow_mut()
                            .entry(rec.conn_id)
                            .or_default()
                            .1
                            .push((raw.header.timestamp, raw.payload.clone()));
                    }
                    if let Ok(Message::Command(c)) = decoded
                        && c.name() == "publish"
                    {
                        name = c.args().first().and_then(|a| a.as_str()).map(str::to_owned);
                        publisher = Some(rec.conn_id);
                    }
                }
            },
            &mut |d| {
                if d.dir == Dir::C2s {
                    cell.borrow_mut()
                        .entry(d.conn_id)
                        .or_default()
                        .0
                        .extend_from_slice(d.bytes);
                }
            },
        );
    }
    let (bytes, video) = per_conn
        .remove(&publisher.expect("a publish in the capture"))
        .unwrap();
    let name = name.expect("a publish in the capture");
    assert!(!video.is_empty());
    let serve = Serve::start(&[]);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("hevc.flv");
    // The capture's app is `live` (its connect); play the same name.
    let play = rtmptool_play(&serve.url(&format!("live/{name}")), &out, &[]);
    serve.wait_sessions("play", 1);
    send_as_client(serve.port, &bytes);
    assert_eq!(serve.sessions("publish"), 1, "{:?}", serve.records());
    let po = wait_output(play, "play", Duration::from_secs(20));
    assert!(
        po.status.success(),
        "{}",
        String::from_utf8_lossy(&po.stderr)
    );
    let (_, got) = common::tracks(&out);
    assert_eq!(got.len(), video.len(), "video tag count");
    for (i, (a, b)) in video.iter().zip(&got).enumerate() {
        assert_eq!(a.0, b.0, "video {i} timestamp");
        assert!(a.1 == b.1, "video {i} body differs");
    }
    // Ex-header, SequenceStart (packet type 0) of hvc1 first.
    assert_eq!(got[0].1[0] & 0x8f, 0x80, "{:02x?}", &got[0].1[..8]);
    assert_eq!(&got[0].1[1..5], b"hvc1");
}

/// A deviation that does not end the connection is reported while the
/// publisher is still publishing (once nothing later can revise it), and
/// only once.
#[test]
fn findings_are_reported_while_the_publisher_goes_on() {
    let serve = Serve::start(&[]);
    // Timestamps that cross 0xFFFFFF (extended timestamps) early in 60 s of
    // media sent at 4× real time.
    let mut publish = bin()
        .args(["publish", "--rate", "4", "--start-timestamp", "16777000"])
        .arg(media("h264base_aac_60s.flv"))
        .arg(serve.url("live/ext"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("publish");
    let count = || {
        serve
            .findings()
            .iter()
            .filter(|f| f["code"] == "extended_timestamp" && f["dir"] == "c2s")
            .count()
    };
    wait_for("the finding, live", Duration::from_secs(20), || {
        (count() == 1).then_some(())
    });
    assert!(
        publish.try_wait().unwrap().is_none(),
        "the publisher had already finished: not live"
    );
    let st = publish.wait().unwrap();
    assert!(st.success());
    serve.wait_sessions("close", 1);
    let records = serve.stop();
    let n = records
        .iter()
        .filter(|f| f["type"] == "finding" && f["code"] == "extended_timestamp")
        .count();
    assert_eq!(n, 1, "reported again at the end");
}

/// Enhanced RTMP multitrack: a player that joins late gets the sequence
/// start of every track first, not only the last one of each kind. The
/// stream (the E-RTMP capture's publisher) has legacy AAC on the default
/// track and Opus on audio track 1, each with its own configuration, and
/// HEVC on video track 2; they are sent once, before 12 s of frames.
#[test]
fn a_late_player_gets_the_configuration_of_every_track() {
    let m = common::ertmp_multitrack(3);
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("multitrack.flv");
    std::fs::write(&src, &m.flv).expect("write flv");
    let serve = Serve::start(&[]);
    let url = serve.url("live/tracks");
    let early = dir.path().join("early.flv");
    let watcher = rtmptool_play(&url, &early, &[]);
    serve.wait_sessions("play", 1);
    let publisher = bin()
        .args(["publish"])
        .arg(&src)
        .arg(&url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("publish");
    // Joins once the stream is 2 s in: its configuration went long before.
    wait_for("the stream to be 2 s in", Duration::from_secs(20), || {
        common::tags_so_far(&early)
            .iter()
            .any(|t| t.timestamp >= 2000)
            .then_some(())
    });
    let late = dir.path().join("late.flv");
    let player = rtmptool_play(&url, &late, &["--duration", "2s"]);
    let po = wait_output(player, "late player", Duration::from_secs(20));
    assert!(
        po.status.success(),
        "{}",
        String::from_utf8_lossy(&po.stderr)
    );
    let tags = common::tags_so_far(&late);
    let first = tags
        .iter()
        .find(|t| t.is_video())
        .expect("video in the late player's output");
    assert!(first.timestamp >= 2000, "joined late: {}", first.timestamp);
    common::assert_configured_first("late player", &m, &tags);
    // Metadata and configuration at the time it joined, as nginx-rtmp
    // stamps them, not 2 s and more before its first frame.
    assert!(
        tags.iter()
            .take_while(|t| t.is_script() || t.timestamp == first.timestamp)
            .count()
            > m.configs.len(),
        "{:?}",
        tags.iter()
            .take(6)
            .map(|t| (t.tag_type.name(), t.timestamp))
            .collect::<Vec<_>>()
    );
    // `--duration` counts media time from the first frame, not from the
    // configuration (which a server may send stamped as published).
    let st = common::stats(&po);
    assert!(st["video_frames"].as_u64() > Some(10), "{st}");
    assert!(
        (1900.0..2100.0).contains(&st["duration_ms"].as_f64().unwrap_or(0.0)),
        "{st}"
    );
    // The early player got them live, in the publisher's order.
    let _ = wait_output(publisher, "publish", Duration::from_secs(30));
    end_player(watcher, Duration::from_secs(10));
    common::assert_configured_first("early player", &m, &common::tags_so_far(&early));
}

/// A publisher that sends its media in aggregates (type 22, five tags
/// each, as Adobe Media Server and Wowza relay it): serve splits them as
/// nginx-rtmp does, so a player gets the source's tags and the recording
/// every tag (before, players got type 22 as it came, and the GOP cache
/// and the recording saw no audio or video at all).
#[test]
fn a_publisher_sending_aggregates_is_split_for_players_and_recording() {
    use rtmptool::proto::amf0::Amf0Value as V;
    use rtmptool::proto::message::{Command as Cmd, Message};
    let dir = tempfile::tempdir().expect("tmp");
    let rec = dir.path().join("rec");
    std::fs::create_dir(&rec).unwrap();
    let serve = Serve::start(&["--record", rec.to_str().unwrap()]);
    let src = media("h264base_aac_10s.flv");
    let out = dir.path().join("played.flv");
    let play = rtmptool_play(&serve.url("live/agg"), &out, &[]);
    serve.wait_sessions("play", 1);
    // C0, C1, C2 (the handshake serve checks is the client's C0/C1), then
    // connect, createStream, publish and the aggregates, in one stream.
    let mut bytes = vec![3u8];
    bytes.extend_from_slice(&[0u8; 1536 * 2]);
    let cmd = |name: &str, tx: f64, obj: V, args: Vec<V>| {
        Message::Command(Cmd::new(name, tx, obj, args)).encode()
    };
    let connect = cmd(
        "connect",
        1.0,
        V::Object(vec![
            ("app".into(), V::String("live".into())),
            ("tcUrl".into(), V::String(serve.url("live"))),
        ]),
        vec![],
    );
    bytes.extend(common::chunked(128, 3, 20, 0, 0, &connect));
    let create = cmd("createStream", 2.0, V::Null, vec![]);
    bytes.extend(common::chunked(128, 3, 20, 0, 0, &create));
    let publish = cmd(
        "publish",
        3.0,
        V::Null,
        vec![V::String("agg".into()), V::String("live".into())],
    );
    bytes.extend(common::chunked(128, 8, 20, 0, 1, &publish));
    let (_, tags, _) = rtmptool::proto::flv::read_all(&std::fs::read(&src).unwrap()).unwrap();
    let av: Vec<_> = tags
        .iter()
        .filter(|t| t.is_audio() || t.is_video())
        .collect();
    for group in av.chunks(5) {
        let body = common::aggregate_body(group);
        bytes.extend(common::chunked(128, 7, 22, group[0].timestamp, 1, &body));
    }
    send_as_client(serve.port, &bytes);
    let po = wait_output(play, "play", Duration::from_secs(20));
    assert!(
        po.status.success(),
        "{}",
        String::from_utf8_lossy(&po.stderr)
    );
    assert_same("aggregates → serve → play", &src, &out, 0);
    let recorded: Vec<_> = std::fs::read_dir(&rec).unwrap().flatten().collect();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let (ra, rv) = common::tracks(&recorded[0].path());
    let (sa, sv) = common::tracks(&src);
    assert_eq!((ra.len(), rv.len()), (sa.len(), sv.len()), "recorded tags");
}

/// A `connect` whose AMF does not decode (nested past the limit, a string
/// longer than the message, an unknown marker): serve closes the
/// connection and says why, as nginx-rtmp closes; it waited in silence and
/// the client waited for an answer that never came.
#[test]
fn a_connect_that_does_not_decode_is_closed_and_said() {
    let serve = Serve::start(&[]);
    let mut connect = Vec::new();
    rtmptool::proto::amf0::encode(
        &rtmptool::proto::amf0::Amf0Value::String("connect".into()),
        &mut connect,
    );
    rtmptool::proto::amf0::encode(&rtmptool::proto::amf0::Amf0Value::Number(1.0), &mut connect);
    let bodies: [Vec<u8>; 3] = [
        [connect.clone(), vec![3u8; 200]].concat(),
        [connect.clone(), vec![0x0c, 0xff, 0xff, 0xff, 0xf0, b'a']].concat(),
        vec![0xff, 0xfe, 0, 0, 0],
    ];
    for (i, body) in bodies.iter().enumerate() {
        let mut tcp = TcpStream::connect(("127.0.0.1", serve.port)).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut c0c1 = vec![3u8];
        c0c1.extend([0u8; 1536]);
        tcp.write_all(&c0c1).unwrap();
        let mut s = vec![0u8; 3073];
        tcp.read_exact(&mut s).unwrap();
        tcp.write_all(&s[1..1537]).unwrap();
        tcp.write_all(&common::chunked(128, 3, 20, 0, 0, body))
            .unwrap();
        let t = Instant::now();
        let mut b = [0u8; 4096];
        let closed = loop {
            match tcp.read(&mut b) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(_) => break false,
            }
        };
        assert!(closed, "body {i}: not closed after {:?}", t.elapsed());
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "body {i}: {:?}",
            t.elapsed()
        );
    }
    serve.wait_sessions("close", 3);
    let closes: Vec<String> = serve
        .records()
        .iter()
        .filter(|r| r["type"] == "session" && r["event"] == "close")
        .map(|r| r["detail"].as_str().unwrap_or("").to_owned())
        .collect();
    for d in &closes {
        assert!(d.contains("does not decode"), "{closes:?}");
    }
}

/// serve closes a publisher whose unfinished messages grow over its own
/// `--max-message`, and says so (message_too_big, with the limit and the
/// fix); it said an access rule had refused the client.
#[test]
fn its_own_max_message_is_said_as_such() {
    use rtmptool::proto::amf0::Amf0Value as A;
    use rtmptool::proto::message::{Command as Cmd, Message};
    let serve = Serve::start(&["--max-message", "5000"]);
    let cmd = |name: &str, txn: f64, obj: A, args: Vec<A>| {
        Message::Command(Cmd::new(name, txn, obj, args)).encode()
    };
    let mut bytes = vec![3u8];
    bytes.extend([0u8; 3072]);
    let connect = A::Object(vec![("app".into(), A::String("live".into()))]);
    bytes.extend(common::chunked(
        128,
        3,
        20,
        0,
        0,
        &cmd("connect", 1.0, connect, vec![]),
    ));
    bytes.extend(common::chunked(
        128,
        3,
        20,
        0,
        0,
        &cmd("createStream", 2.0, A::Null, vec![]),
    ));
    let publish = vec![A::String("big".into()), A::String("live".into())];
    bytes.extend(common::chunked(
        128,
        4,
        20,
        0,
        1,
        &cmd("publish", 3.0, A::Null, publish),
    ));
    // A 20 000-byte video message, of which 10 000 bytes come.
    let video = common::chunked(128, 6, 9, 0, 1, &[0x17; 20_000]);
    bytes.extend(&video[..10_000]);
    send_as_client(serve.port, &bytes);
    serve.wait_sessions("close", 1);
    let findings = serve.findings();
    assert!(
        findings.iter().any(|f| f["code"] == "message_too_big"
            && f["message"]
                .as_str()
                .unwrap_or("")
                .contains("--max-message")),
        "{findings:?}"
    );
    assert!(
        !findings.iter().any(|f| f["code"] == "refused"),
        "{findings:?}"
    );
}

/// A raw client of serve on `port`: C0+C1, S0+S1+S2 read, C2 (S1 echoed),
/// then `connect` to `live`, with TCP_NODELAY (no Nagle notes).
fn connected_client(port: u16) -> TcpStream {
    connected_client_with(port, None)
}

/// [`connected_client`], with a receive buffer of `rcvbuf` bytes.
fn connected_client_with(port: u16, rcvbuf: Option<usize>) -> TcpStream {
    use rtmptool::proto::amf0::Amf0Value as A;
    use rtmptool::proto::message::{Command as Cmd, Message};
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    if let Some(n) = rcvbuf {
        sock.set_recv_buffer_size(n).unwrap();
    }
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    sock.connect(&addr.into()).expect("connect");
    let mut tcp: TcpStream = sock.into();
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.extend([0u8; 1536]);
    tcp.write_all(&c0c1).unwrap();
    let mut s = vec![0u8; 3073];
    tcp.read_exact(&mut s).unwrap();
    tcp.write_all(&s[1..1537]).unwrap();
    let connect = A::Object(vec![
        ("app".into(), A::String("live".into())),
        (
            "tcUrl".into(),
            A::String(format!("rtmp://127.0.0.1:{port}/live")),
        ),
    ]);
    let body = Message::Command(Cmd::new("connect", 1.0, connect, vec![])).encode();
    tcp.write_all(&common::chunked(128, 3, 20, 0, 0, &body))
        .unwrap();
    tcp
}

/// Sends `bytes`, half-closes, and reads until serve closes.
fn send_then_close(mut tcp: TcpStream, bytes: &[u8]) {
    tcp.write_all(bytes).unwrap();
    let _ = tcp.shutdown(std::net::Shutdown::Write);
    let mut b = [0u8; 65536];
    while matches!(tcp.read(&mut b), Ok(n) if n > 0) {}
}

/// A client that breaks the protocol after a clean connect gets one finding
/// for it (protocol_violation), with where and what and a fix, in the JSON
/// with "peer" and "time"; the summary counts them. serve said nothing for
/// a chunk stream no header opened, bytes that are not chunks, a command
/// whose AMF is cut short or a message type RTMP does not define.
#[test]
fn protocol_breaks_of_a_client_are_findings() {
    let serve = Serve::start(&[]);
    // Deterministic "random" bytes (xorshift).
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..5000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let cases: [(&str, Vec<u8>, &str, &str); 4] = [
        (
            "fmt 3 on a new chunk stream",
            [vec![0xc5], vec![b'A'; 100]].concat(),
            "error",
            "chunk stream 5",
        ),
        (
            "bytes that are not chunks",
            noise,
            "error",
            "no fmt-0 header",
        ),
        (
            "a command cut short",
            common::chunked(128, 3, 20, 0, 0, b"\x02\x00\x05pub"),
            "error",
            "does not decode",
        ),
        (
            "an unknown message type",
            common::chunked(128, 3, 0x7f, 0, 0, b"xyz"),
            "warning",
            "type 127 (0x7f)",
        ),
    ];
    let mut peers = Vec::new();
    for (what, bytes, _, _) in &cases {
        let tcp = connected_client(serve.port);
        peers.push(tcp.local_addr().unwrap().to_string());
        // serve has answered connect before the break comes.
        let n = peers.len();
        wait_for(what, Duration::from_secs(10), || {
            (serve.sessions("connect") >= n).then_some(())
        });
        send_then_close(tcp, bytes);
    }
    serve.wait_sessions("close", cases.len());
    let records = serve.stop();
    let summary = records
        .iter()
        .find(|r| r["type"] == "serve_summary")
        .expect("serve_summary");
    let mut total = 0;
    for ((what, _, severity, words), peer) in cases.iter().zip(&peers) {
        let mine: Vec<&Json> = records
            .iter()
            .filter(|r| r["type"] == "finding" && r["peer"] == peer.as_str())
            .collect();
        total += mine.len();
        let breaks: Vec<&&Json> = mine
            .iter()
            .filter(|f| f["code"] == "protocol_violation")
            .collect();
        assert_eq!(breaks.len(), 1, "{what}: {mine:?}");
        let f = breaks[0];
        assert_eq!(f["severity"], *severity, "{what}: {f}");
        assert_eq!(f["dir"], "c2s", "{what}: {f}");
        assert!(f["time"].as_f64().is_some(), "{what}: {f}");
        assert!(
            f["offset"].as_u64().is_some_and(|o| o > 3073),
            "{what}: {f}"
        );
        let msg = f["message"].as_str().unwrap_or("");
        assert!(msg.contains(words), "{what}: {msg}");
        assert!(msg.contains("nginx-rtmp"), "{what}: {msg}");
        assert!(!f["fix"].as_str().unwrap_or("").is_empty(), "{what}: {f}");
        assert!(
            mine.iter()
                .all(|f| f["severity"] == "info" || f["code"] == "protocol_violation"),
            "{what}: {mine:?}"
        );
    }
    assert_eq!(summary["findings"], total as u64, "{summary}");
}

/// serve's own --max-message names the message that crossed it by the
/// length its header declared (not the bytes held when it was crossed:
/// "196608" for a 500,002-byte message), and following the fix works.
#[test]
fn max_message_names_the_declared_length_and_its_fix_works() {
    use rtmptool::proto::amf0::Amf0Value as A;
    use rtmptool::proto::message::{Command as Cmd, Message};
    let cmd = |name: &str, txn: f64, args: Vec<A>| {
        Message::Command(Cmd::new(name, txn, A::Null, args)).encode()
    };
    let publisher = |port: u16| {
        let tcp = connected_client(port);
        let mut bytes = common::chunked(128, 3, 20, 0, 0, &cmd("createStream", 2.0, vec![]));
        let publish = vec![A::String("big".into()), A::String("live".into())];
        bytes.extend(common::chunked(
            128,
            4,
            20,
            0,
            1,
            &cmd("publish", 3.0, publish),
        ));
        // Set Chunk Size 65536, then one 500,002-byte key frame.
        bytes.extend(common::chunked(128, 2, 1, 0, 0, &65536u32.to_be_bytes()));
        let mut frame = vec![0x17, 0x01, 0, 0, 0];
        frame.resize(500_002, 0);
        bytes.extend(common::chunked(65536, 6, 9, 0, 1, &frame));
        send_then_close(tcp, &bytes);
    };
    let serve = Serve::start(&["--max-message", "100000"]);
    publisher(serve.port);
    serve.wait_sessions("close", 1);
    let records = serve.stop();
    let f = records
        .iter()
        .find(|r| r["type"] == "finding" && r["code"] == "message_too_big")
        .unwrap_or_else(|| panic!("no message_too_big: {records:?}"));
    let msg = f["message"].as_str().unwrap_or("");
    let fix = f["fix"].as_str().unwrap_or("");
    assert!(
        msg.contains("video message on chunk stream 6 declares 500002 bytes"),
        "{msg}"
    );
    assert!(msg.contains("--max-message"), "{msg}");
    assert!(fix.contains("at least 500002"), "{fix}");
    assert!(!fix.contains("131072"), "{fix}");
    assert_eq!(f["length"], 500_002, "{f}");
    // The fix: the same publisher goes through.
    let serve = Serve::start(&["--max-message", "500002"]);
    publisher(serve.port);
    serve.wait_sessions("close", 1);
    let records = serve.stop();
    assert!(
        !records
            .iter()
            .any(|r| r["type"] == "finding" && r["code"] == "message_too_big"),
        "{records:?}"
    );
    let close = records
        .iter()
        .find(|r| r["type"] == "session" && r["event"] == "close")
        .unwrap();
    assert_eq!(close["messages"], 1, "{close}");
}

/// Ctrl-C while a client is in its handshake: serve ended the connection,
/// the client broke no timeout, so no handshake_incomplete (it said "no
/// C2 from the client … nginx-rtmp logs handshake: client not responding").
#[test]
fn stopping_mid_handshake_is_not_the_clients_fault() {
    let serve = Serve::start(&[]);
    let mut tcp = TcpStream::connect(("127.0.0.1", serve.port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.extend([0u8; 1536]);
    tcp.write_all(&c0c1).unwrap();
    let mut s = vec![0u8; 3073];
    tcp.read_exact(&mut s).unwrap();
    let records = serve.stop();
    assert!(
        !records
            .iter()
            .any(|r| r["type"] == "finding" && r["code"] == "handshake_incomplete"),
        "{records:?}"
    );
    let close = records
        .iter()
        .find(|r| r["type"] == "session" && r["event"] == "close")
        .unwrap_or_else(|| panic!("no close: {records:?}"));
    assert_eq!(close["detail"], "server stopping", "{close}");
    let summary = records
        .iter()
        .find(|r| r["type"] == "serve_summary")
        .unwrap();
    assert_eq!(summary["findings"], 0, "{summary}");
    drop(tcp);
}

/// `--record`: while the publisher goes on, the file already holds what
/// was published (it reached the disk within 250 ms, not once 256 KiB had
/// piled up: 7 s of this stream); after Ctrl-C of serve it is a whole FLV,
/// the published tags tag for tag.
#[test]
fn a_recording_is_on_disk_while_publishing_and_whole_after_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    std::fs::create_dir(&rec).unwrap();
    let serve = Serve::start(&["--record", rec.to_str().unwrap()]);
    let src = media("h264base_aac_10s.flv");
    let mut publish = bin()
        .args(["--json", "publish"])
        .arg(&src)
        .arg(serve.url("live/rec"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start publish");
    let (sa, sv) = common::tracks(&src);
    let file = wait_for("the recording", Duration::from_secs(10), || {
        std::fs::read_dir(&rec)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "flv"))
    });
    let started = Instant::now();
    // ≈1 s in (paced at real time): half a second of media is on disk.
    let so_far = wait_for("recorded tags so far", Duration::from_secs(3), || {
        let tags = common::tags_so_far(&file);
        tags.iter()
            .any(|t| t.is_video() && t.timestamp >= 500)
            .then_some(tags)
    });
    assert!(
        matches!(publish.try_wait(), Ok(None)),
        "the publisher ended before its recording was checked"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    for (kind, s, t) in [
        (
            "audio",
            &sa,
            so_far.iter().filter(|t| t.is_audio()).collect::<Vec<_>>(),
        ),
        (
            "video",
            &sv,
            so_far.iter().filter(|t| t.is_video()).collect::<Vec<_>>(),
        ),
    ] {
        for (i, (a, b)) in s.iter().zip(&t).enumerate() {
            assert_eq!(a.0, b.timestamp, "so far: {kind} tag {i} timestamp");
            assert!(a.1 == b.data, "so far: {kind} tag {i} payload differs");
        }
    }
    // Ctrl-C of serve while the publisher goes on.
    serve.stop();
    let _ = wait_output(
        publish,
        "publish after serve stopped",
        Duration::from_secs(10),
    );
    let data = std::fs::read(&file).unwrap();
    let (_, _, warnings) = rtmptool::proto::flv::read_all(&data).expect("a whole FLV");
    assert!(warnings.is_empty(), "{warnings:?}");
    let (ga, gv) = common::tracks(&file);
    assert!(gv.len() >= so_far.iter().filter(|t| t.is_video()).count());
    for (kind, s, g) in [("audio", &sa, &ga), ("video", &sv, &gv)] {
        assert!(
            g.len() <= s.len() && !g.is_empty(),
            "{kind}: {} tags",
            g.len()
        );
        for (i, (a, b)) in s.iter().zip(g).enumerate() {
            assert_eq!(a.0, b.0, "{kind} tag {i} timestamp");
            assert!(a.1 == b.1, "{kind} tag {i} payload differs");
        }
    }
}

/// An AMF3 value of an anonymous dynamic object, behind an AVM+ switch.
fn amf3_object(
    members: Vec<(&str, rtmptool::proto::amf3::Amf3Value)>,
) -> rtmptool::proto::amf0::Amf0Value {
    use rtmptool::proto::amf3::{Amf3Object, Amf3Value};
    rtmptool::proto::amf0::Amf0Value::AvmPlus(Amf3Value::Object(Box::new(Amf3Object {
        class_name: String::new(),
        dynamic: true,
        externalizable: false,
        sealed: vec![],
        dynamic_members: members
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        external: None,
    })))
}

/// A command or data message in the AMF3 form (type 17 or 15: format byte
/// 0, then `values`), as Flash Player and AIR send with objectEncoding 3.
fn amf3_body(command: bool, values: Vec<rtmptool::proto::amf0::Amf0Value>) -> Vec<u8> {
    use rtmptool::proto::message::{Command as Cmd, DataMessage, Encoding, Message};
    let encoding = Encoding::Amf3 { format: 0 };
    if command {
        Message::Command(Cmd { encoding, values }).encode().to_vec()
    } else {
        Message::Data(DataMessage { encoding, values })
            .encode()
            .to_vec()
    }
}

/// A client of serve that speaks AMF3 (type 17): handshake, then `connect`
/// with objectEncoding 3 and its command object behind an AVM+ switch, and
/// `createStream`; returns the connection and the `_result` of connect.
fn amf3_client(
    port: u16,
) -> (
    TcpStream,
    rtmptool::proto::chunk::ChunkDecoder,
    rtmptool::proto::amf0::Amf0Value,
) {
    use rtmptool::proto::amf0::Amf0Value as V;
    use rtmptool::proto::amf3::Amf3Value as V3;
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.extend([0u8; 1536]);
    tcp.write_all(&c0c1).unwrap();
    let mut s = vec![0u8; 3073];
    tcp.read_exact(&mut s).unwrap();
    tcp.write_all(&s[1..1537]).unwrap();
    let connect = amf3_body(
        true,
        vec![
            V::String("connect".into()),
            V::Number(1.0),
            amf3_object(vec![
                ("app", V3::String("live".into())),
                ("flashVer", V3::String("WIN 32,0,0,465".into())),
                ("tcUrl", V3::String(format!("rtmp://127.0.0.1:{port}/live"))),
                ("objectEncoding", V3::Integer(3)),
            ]),
        ],
    );
    let create = amf3_body(
        true,
        vec![V::String("createStream".into()), V::Number(2.0), V::Null],
    );
    let mut bytes = common::chunked(128, 3, 17, 0, 0, &connect);
    bytes.extend(common::chunked(128, 3, 17, 0, 0, &create));
    tcp.write_all(&bytes).unwrap();
    let mut dec =
        rtmptool::proto::chunk::ChunkDecoder::new(rtmptool::proto::chunk::DecoderConfig::default());
    let got = read_commands(&mut tcp, &mut dec, |c| {
        c.name() == "_result" && c.transaction_id() == Some(2.0)
    });
    let info = got
        .iter()
        .find(|c| c.name() == "_result" && c.transaction_id() == Some(1.0))
        .and_then(|c| c.args().first().cloned())
        .expect("connect _result");
    (tcp, dec, info)
}

/// Reads what serve sends until a command `until` accepts; the commands.
fn read_commands(
    tcp: &mut TcpStream,
    dec: &mut rtmptool::proto::chunk::ChunkDecoder,
    until: impl Fn(&rtmptool::proto::message::Command) -> bool,
) -> Vec<rtmptool::proto::message::Command> {
    let mut got = Vec::new();
    for m in read_messages(
        tcp,
        dec,
        |m| matches!(m, rtmptool::proto::message::Message::Command(c) if until(c)),
    ) {
        if let rtmptool::proto::message::Message::Command(c) = m {
            got.push(c);
        }
    }
    got
}

/// Reads and decodes what serve sends until a message `until` accepts (or
/// serve closes); the messages, with their type kept in [`Message`].
fn read_messages(
    tcp: &mut TcpStream,
    dec: &mut rtmptool::proto::chunk::ChunkDecoder,
    until: impl Fn(&rtmptool::proto::message::Message) -> bool,
) -> Vec<rtmptool::proto::message::Message> {
    use rtmptool::proto::chunk::ChunkEvent;
    use rtmptool::proto::message::Message;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        while let Some(ev) = dec.poll().expect("serve's chunk stream") {
            if let ChunkEvent::Message(raw) = ev {
                let m = Message::decode(raw.header.msg_type, raw.payload.clone())
                    .unwrap_or_else(|e| panic!("{:?}: {e}", raw.header));
                let done = until(&m);
                got.push(m);
                if done {
                    return got;
                }
            }
        }
        match tcp.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => dec.push(&buf[..n]),
            Err(e) => panic!("reading serve: {e} after {got:?}"),
        }
    }
}

/// A publisher and a player speaking AMF3 (commands of type 17 whose values
/// switch to AMF3, as Flash Player/AIR with objectEncoding 3 send them;
/// `@setDataFrame` as type 15): serve reads the connect object, the stream
/// names and the metadata behind the switches, answers objectEncoding 3 as
/// nginx-rtmp does (in AMF0, type 20), and players (the AMF3 one, and
/// ffprobe, which skips type 15) get the metadata as AMF0 data (type 18).
/// serve took the app and stream names for empty ("/"), answered
/// objectEncoding 0, and forwarded type 15, which ffprobe never saw.
#[test]
fn amf3_clients_publish_and_play() {
    use rtmptool::proto::amf0::Amf0Value as V;
    use rtmptool::proto::amf3::Amf3Value as V3;
    use rtmptool::proto::message::Message;
    let ffprobe = require("ffprobe");
    let serve = Serve::start(&["--reveal-keys"]);
    let probe = Command::new(ffprobe)
        .args(["-v", "error", "-rw_timeout", "5000000"])
        .args(["-show_entries", "format_tags", "-of", "json"])
        .arg(serve.url("live/flash"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ffprobe");
    // The AMF3 player: play with its name behind a switch.
    let (mut player, mut pdec, info) = amf3_client(serve.port);
    assert_eq!(
        info.get("objectEncoding"),
        Some(&V::Number(3.0)),
        "{info:?}"
    );
    let play = amf3_body(
        true,
        vec![
            V::String("play".into()),
            V::Number(3.0),
            V::Null,
            V::AvmPlus(V3::String("flash".into())),
            V::AvmPlus(V3::Integer(0)),
        ],
    );
    player
        .write_all(&common::chunked(128, 8, 17, 0, 1, &play))
        .unwrap();
    serve.wait_sessions("play", 2);
    // The AMF3 publisher.
    let (mut publisher, mut dec, _) = amf3_client(serve.port);
    let publish = amf3_body(
        true,
        vec![
            V::String("publish".into()),
            V::Number(3.0),
            V::Null,
            V::AvmPlus(V3::String("flash".into())),
            V::AvmPlus(V3::String("live".into())),
        ],
    );
    publisher
        .write_all(&common::chunked(128, 8, 17, 0, 1, &publish))
        .unwrap();
    let got = read_commands(&mut publisher, &mut dec, |c| c.name() == "onStatus");
    let status = got.last().and_then(|c| c.args().first()).cloned();
    assert_eq!(
        status.as_ref().and_then(|s| s.get("code")),
        Some(&V::String("NetStream.Publish.Start".into())),
        "{got:?}"
    );
    let meta = amf3_body(
        false,
        vec![
            V::String("@setDataFrame".into()),
            V::String("onMetaData".into()),
            amf3_object(vec![
                ("amf3marker", V3::String("from-flash".into())),
                ("framerate", V3::Double(25.0)),
            ]),
        ],
    );
    let mut bytes = common::chunked(128, 4, 15, 0, 1, &meta);
    // What serve does not support: a shared object (type 16: a format
    // byte, the name "so", version, flags, a "use" event) and AMF3 data
    // holding a byte array, which AMF0 cannot carry.
    let so = [&[0u8, 0, 2][..], b"so", &[0; 12], &[1, 0, 0, 0, 0]].concat();
    bytes.extend(common::chunked(128, 3, 16, 0, 0, &so));
    let cue = amf3_body(
        false,
        vec![
            V::String("onCuePoint".into()),
            amf3_object(vec![("thumb", V3::ByteArray(vec![0xff; 40]))]),
        ],
    );
    bytes.extend(common::chunked(128, 4, 15, 0, 1, &cue));
    let src = media("h264base_aac_10s.flv");
    let (_, tags, _) = rtmptool::proto::flv::read_all(&std::fs::read(&src).unwrap()).unwrap();
    for t in tags.iter().filter(|t| t.is_audio() || t.is_video()) {
        bytes.extend(common::chunked(
            128,
            6,
            t.tag_type.0,
            t.timestamp,
            1,
            &t.data,
        ));
    }
    publisher.write_all(&bytes).unwrap();
    // The AMF3 player gets the metadata as AMF0 data, then media.
    let got = read_messages(
        &mut player,
        &mut pdec,
        |m| matches!(m, Message::Data(d) if d.values.first().and_then(V::as_str) == Some("onMetaData")),
    );
    let Some(Message::Data(d)) = got.last() else {
        panic!("no metadata: {got:?}");
    };
    assert_eq!(
        d.encoding,
        rtmptool::proto::message::Encoding::Amf0,
        "{d:?}"
    );
    assert_eq!(
        d.values[1].get("amf3marker"),
        Some(&V::String("from-flash".into())),
        "{d:?}"
    );
    let mut b = [0u8; 65536];
    for mut c in [player, publisher] {
        let _ = c.shutdown(std::net::Shutdown::Write);
        while matches!(c.read(&mut b), Ok(n) if n > 0) {}
    }
    let out = wait_output(probe, "ffprobe", Duration::from_secs(30));
    let j: Json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(
        j["format"]["tags"]["amf3marker"],
        "from-flash",
        "{j} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let streams: Vec<String> = serve
        .records()
        .iter()
        .filter(|r| {
            r["type"] == "session" && matches!(r["event"].as_str(), Some("publish" | "play"))
        })
        .map(|r| r["stream"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(streams, ["live/flash"; 3], "{streams:?}");
    let findings = serve.stop();
    let unsupported: Vec<_> = findings
        .iter()
        .filter(|f| f["type"] == "finding" && f["code"] != "nagle_stall")
        .map(|f| {
            (
                f["code"].as_str(),
                f["what"].as_str(),
                f["severity"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        unsupported,
        [
            (Some("unsupported"), Some("shared_object"), Some("warning")),
            (Some("unsupported"), Some("amf3_data"), Some("warning")),
        ],
        "{findings:?}"
    );
    let words = findings
        .iter()
        .find(|f| f["what"] == "amf3_data")
        .and_then(|f| f["message"].as_str())
        .unwrap_or("");
    assert!(
        words.contains("\"onCuePoint\" holds a byte array (40 bytes)"),
        "{words}"
    );
}

/// Players that go away mid-stream (a reset: they close with data unread)
/// while serve writes to them gave up, they were not refused: no
/// `refused` finding. serve took the failed write for its own close and
/// said "play was accepted, but the server closed the connection: … an
/// access rule refuses the client" (when the write, not the read, saw the
/// reset first: each player has a small receive buffer, so that serve has
/// bytes waiting for it, and there are eight).
#[test]
fn players_that_reset_are_not_refused() {
    use rtmptool::proto::amf0::Amf0Value as A;
    use rtmptool::proto::message::{Command as Cmd, Message};
    let serve = Serve::start(&[]);
    let cmd = |name: &str, txn: f64, args: Vec<A>| {
        Message::Command(Cmd::new(name, txn, A::Null, args)).encode()
    };
    let mut players = Vec::new();
    for _ in 0..8 {
        // A small receive buffer: serve has bytes waiting for it.
        let mut p = connected_client_with(serve.port, Some(4096));
        let mut b = common::chunked(128, 3, 20, 0, 0, &cmd("createStream", 2.0, vec![]));
        b.extend(common::chunked(
            128,
            8,
            20,
            0,
            1,
            &cmd("play", 3.0, vec![A::String("gone".into())]),
        ));
        p.write_all(&b).unwrap();
        players.push(p);
    }
    serve.wait_sessions("play", 8);
    let mut publisher = connected_client(serve.port);
    let mut b = common::chunked(128, 3, 20, 0, 0, &cmd("createStream", 2.0, vec![]));
    b.extend(common::chunked(
        128,
        8,
        20,
        0,
        1,
        &cmd(
            "publish",
            3.0,
            vec![A::String("gone".into()), A::String("live".into())],
        ),
    ));
    let src = media("h264base_aac_10s.flv");
    let (_, tags, _) = rtmptool::proto::flv::read_all(&std::fs::read(&src).unwrap()).unwrap();
    for t in tags.iter().filter(|t| t.is_audio() || t.is_video()) {
        b.extend(common::chunked(
            128,
            6,
            t.tag_type.0,
            t.timestamp,
            1,
            &t.data,
        ));
    }
    let writer = std::thread::spawn(move || {
        let _ = publisher.write_all(&b);
        publisher
    });
    // Each player takes some media, then resets.
    for mut p in players {
        let mut got = 0;
        let mut buf = [0u8; 16384];
        while got < 16 * 1024 {
            match p.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        drop(p);
    }
    serve.wait_sessions("close", 8);
    send_then_close(writer.join().unwrap(), &[]);
    let findings = serve.stop();
    let refused: Vec<_> = findings
        .iter()
        .filter(|f| f["type"] == "finding" && f["code"] == "refused")
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
}
