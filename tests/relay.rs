//! `rtmptool relay SRC DST` between two nginx-rtmp servers started by the
//! test: FFmpeg publishes to A, the relay plays A and publishes to B, FFmpeg
//! and rtmpdump play from B, tag for tag; B restarted mid-stream with
//! `--reconnect`: play from B resumes decodable (a sequence header or a key
//! frame first).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Nginx, bin, media, require, tracks, wait_logged, wait_output};

fn relay(src: &str, dst: &str, extra: &[&str]) -> Child {
    bin()
        .args(["--json", "relay", src, dst])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start relay")
}

/// `relay --listen` on a free port, carrying encoders to `upstream`, its
/// NDJSON in `log`; returns it and its port once it listens (the probe
/// connection that saw it listen is one session of its own).
fn proxy(
    global: &[&str],
    upstream: &str,
    extra: &[&std::ffi::OsStr],
    log: &std::path::Path,
) -> (Running, u16) {
    let port = common::free_port();
    let child = bin()
        .arg("--json")
        .args(global)
        .args(["relay", "--listen", &format!("127.0.0.1:{port}"), upstream])
        .args(extra)
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .expect("proxy");
    common::wait_for("the proxy to listen", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    (Running(Some(child)), port)
}

/// `rtmptool play URL -o OUT`, started.
fn play_to(url: &str, out: &std::path::Path) -> Child {
    bin()
        .args(["play", url, "-o"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("play")
}

/// `rtmptool publish` of testdata's 10 s FLV to `url` at 4× real time.
fn publish_at_4x(url: &str) -> Child {
    bin()
        .args(["publish", "--rate", "4"])
        .arg(media("h264base_aac_10s.flv"))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("publish")
}

/// FFmpeg publishes `src` to `url` in real time (`-re`, stream copy); it
/// must succeed.
fn ffmpeg_publish(ffmpeg: &std::path::Path, src: &std::path::Path, url: &str) {
    let out = Command::new(ffmpeg)
        .args(["-nostdin", "-loglevel", "error", "-re", "-i"])
        .arg(src)
        .args(["-c", "copy", "-f", "flv"])
        .arg(url)
        .output()
        .expect("ffmpeg publish");
    assert!(
        out.status.success(),
        "ffmpeg publish: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The records of an NDJSON log so far.
fn records(log: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A process of the test's that is killed (by PID) if the test ends
/// before it does: a failed assertion must not leave it running.
struct Running(Option<Child>);

impl Running {
    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Ctrl-C (SIGINT, by PID), then its output.
fn interrupt(mut running: Running, what: &str) -> std::process::Output {
    let child = running.0.take().expect("running");
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    wait_output(child, what, Duration::from_secs(10))
}

/// Ctrl-C, which must end it successfully within `limit`; its output.
fn interrupted_within(running: Running, what: &str, limit: Duration) -> std::process::Output {
    let asked = Instant::now();
    let out = interrupt(running, what);
    assert!(
        asked.elapsed() < limit,
        "{what}: Ctrl-C took {:?}",
        asked.elapsed()
    );
    assert!(
        out.status.success(),
        "{what}: {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn end(child: Child, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut child = child;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = wait_output(child, "after SIGINT", Duration::from_secs(10));
}

#[test]
fn ffmpeg_to_a_relay_to_b_ffmpeg_and_rtmpdump_play_tag_for_tag() {
    let ffmpeg = require("ffmpeg");
    let rtmpdump = require("rtmpdump");
    let a = Nginx::start(4096, "");
    let b = Nginx::start(4096, "");
    let dir = tempfile::tempdir().expect("tmp");
    let src = media("h264base_aac_10s.flv");
    let by_ffmpeg = dir.path().join("ffmpeg.flv");
    let by_rtmpdump = dir.path().join("rtmpdump.flv");
    let p1 = common::ffmpeg_player(&ffmpeg, &b.url("live/relayed"), &by_ffmpeg)
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg player");
    let p2 = Command::new(&rtmpdump)
        .args(["-q", "--live", "-r"])
        .arg(b.url("live/relayed"))
        .arg("-o")
        .arg(&by_rtmpdump)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rtmpdump");
    wait_logged(&b, "play", &["relayed"]);
    let r = relay(&a.url("live/origin"), &b.url("live/relayed"), &[]);
    wait_logged(&a, "play", &["origin"]);
    wait_logged(&b, "publish", &["relayed"]);
    ffmpeg_publish(&ffmpeg, &src, &a.url("live/origin"));
    let ro = common::wait_success(r, "relay", Duration::from_secs(20));
    let stats = common::stats(&ro);
    assert_eq!(stats["video_frames"], 250, "{stats}");
    end(p1, Duration::from_secs(10));
    end(p2, Duration::from_secs(5));
    common::assert_same("ffmpeg → A → relay → B → ffmpeg", &src, &by_ffmpeg, 0);
    // librtmp leaves out video bodies of 5 bytes or less (FFmpeg's end of
    // sequence), see tests/serve.rs.
    let (sa, sv) = tracks(&src);
    let (ga, gv) = tracks(&by_rtmpdump);
    let sv: Vec<_> = sv.into_iter().filter(|t| t.1.len() > 5).collect();
    assert!(sa == ga, "rtmpdump: audio differs");
    assert!(sv == gv, "rtmpdump: video differs");
}

#[test]
fn b_restarted_mid_stream_resumes_decodable_with_reconnect() {
    let a = Nginx::start(4096, "");
    let mut b = Nginx::start(4096, "");
    let publisher = common::ffmpeg_publish_loop(&a, "loop");
    let r = relay(&a.url("live/loop"), &b.url("live/copy"), &["--reconnect"]);
    wait_logged(&b, "publish", &["copy"]);
    b.restart();
    // The relay reconnects and publishes again.
    common::wait_for(
        "the relay to publish again",
        Duration::from_secs(20),
        || {
            b.log()
                .matches("publish: name='copy'")
                .count()
                .ge(&2)
                .then_some(())
        },
    );
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("after.flv");
    let play = bin()
        .args(["play", &b.url("live/copy"), "-o"])
        .arg(&out)
        .args(["--duration", "3s"])
        .output()
        .expect("play");
    assert!(
        play.status.success(),
        "{}",
        String::from_utf8_lossy(&play.stderr)
    );
    let (_, video) = tracks(&out);
    let first = &video.first().expect("video after the restart").1;
    // AVC sequence header (0x17 0x00) or a key frame (0x17 0x01).
    assert_eq!(
        first[0], 0x17,
        "first video tag is not a key frame or header"
    );
    let ro = interrupt(Running(Some(r)), "relay");
    let text = String::from_utf8_lossy(&ro.stdout);
    assert!(text.contains("\"destination_reconnects\":1"), "{text}");
    drop(Running(Some(publisher)));
}

/// `relay --listen`: FFmpeg publishes through the proxy to nginx; play from
/// nginx equals the source; the live decode (`--json`, the dump records)
/// shows FFmpeg's connect and its Set Chunk Size; a client whose chunks lie
/// about their size (the lying fault capture's client bytes, replayed) is
/// reported with `chunk_size_mismatch`.
#[test]
fn listen_proxies_ffmpeg_to_nginx_and_decodes_it_live() {
    use std::io::{Read, Write};
    let ffmpeg = require("ffmpeg");
    let b = Nginx::start(4096, "");
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("proxy.ndjson");
    let copy = dir.path().join("copy.flv");
    std::fs::write(&copy, b"not to be overwritten").unwrap();
    let (proxy, port) = proxy(
        &[],
        &b.url("live"),
        &["--record".as_ref(), copy.as_os_str()],
        &log,
    );
    let src = media("h264base_aac_10s.flv");
    let out = dir.path().join("played.flv");
    let play = play_to(&b.url("live/viaproxy"), &out);
    wait_logged(&b, "play", &["viaproxy"]);
    ffmpeg_publish(
        &ffmpeg,
        &src,
        &format!("rtmp://127.0.0.1:{port}/live/viaproxy"),
    );
    common::wait_success(play, "play", Duration::from_secs(20));
    common::assert_same("ffmpeg → relay --listen → nginx → play", &src, &out, 0);
    // --record: the encoder's media, in a new file beside the existing one.
    assert_eq!(std::fs::read(&copy).unwrap(), b"not to be overwritten");
    // (The test's own connect to see the proxy listen made copy-1.flv.)
    let (sa, sv) = common::tracks(&src);
    let recorded = common::wait_for(
        "the recording to be complete",
        Duration::from_secs(10),
        || {
            (1..4)
                .map(|n| dir.path().join(format!("copy-{n}.flv")))
                .find(|p| {
                    std::fs::read(p)
                        .ok()
                        .and_then(|d| rtmptool::proto::flv::read_all(&d).ok())
                        .is_some_and(|(_, tags, _)| tags.len() >= sa.len() + sv.len())
                })
        },
    );
    common::assert_same("relay --listen --record", &src, &recorded, 0);
    // The lying client.
    let bytes = common::client_bytes(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/rtmp/fault_b_lying_setchunksize.pcap"),
    );
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut r = tcp.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut b = [0u8; 65536];
        while matches!(r.read(&mut b), Ok(n) if n > 0) {}
    });
    for piece in bytes.chunks(1460) {
        if tcp.write_all(piece).is_err() {
            break;
        }
    }
    let records = || records(&log);
    common::wait_for(
        "the chunk_size_mismatch finding",
        Duration::from_secs(15),
        || {
            records()
                .iter()
                .any(|r| r["type"] == "finding" && r["code"] == "chunk_size_mismatch")
                .then_some(())
        },
    );
    let _ = tcp.shutdown(std::net::Shutdown::Write);
    reader.join().unwrap();
    let all = records();
    assert!(
        all.iter()
            .any(|r| r["type"] == "message" && r["dir"] == "c2s" && r["command"] == "connect"),
        "no connect from the encoder in the live decode"
    );
    assert!(
        all.iter()
            .any(|r| r["type"] == "message" && r["dir"] == "c2s" && r["msg_type"] == 1),
        "no Set Chunk Size from the encoder in the live decode"
    );
    interrupt(proxy, "proxy");
}

/// Ctrl-C while the relay waits for a server that never answers its
/// handshake: it stops at once, with its stats.
#[test]
fn sigint_while_connecting_stops_at_once() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let r = bin()
        .args(["--json", "relay"])
        .arg(format!("rtmp://127.0.0.1:{port}/live/a"))
        .arg(format!("rtmp://127.0.0.1:{port}/live/b"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("relay");
    // The relay's TCP connect is in the listener's queue: it is waiting.
    silent.set_nonblocking(false).unwrap();
    let (_held, _) = silent.accept().expect("the relay connects");
    let t = Instant::now();
    let _ = Command::new("kill")
        .args(["-INT", &r.id().to_string()])
        .status();
    let out = wait_output(r, "relay after SIGINT", Duration::from_secs(5));
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"type\":\"stats\""));
}

/// `relay --listen` with the upstream URL's path: `rtmp://host:port` carries
/// the encoder's app and stream name; `…/live/renamed` replaces both (the
/// encoder's app `other` does not exist on nginx, so only the rewrite lets
/// it publish). Play from nginx equals the source either way; the session
/// records say what was carried, and the encoder's stream key is never shown.
#[test]
fn listen_carries_or_rewrites_app_and_stream() {
    let ffmpeg = require("ffmpeg");
    let b = Nginx::start(4096, "");
    let dir = tempfile::tempdir().expect("tmp");
    // A 3 s cut of the source, made by FFmpeg: what it will publish.
    let src = dir.path().join("src.flv");
    let cut = Command::new(&ffmpeg)
        .args(["-nostdin", "-loglevel", "error", "-i"])
        .arg(media("h264base_aac_10s.flv"))
        .args(["-t", "3", "-c", "copy", "-f", "flv"])
        .arg(&src)
        .output()
        .expect("ffmpeg");
    assert!(cut.status.success());
    let server = format!("rtmp://{}", b.addr);
    let cases = [
        ("carried", server.clone(), "live/kept", "live/kept"),
        (
            "rewritten",
            b.url("live/renamed"),
            "other/secretkey123",
            "live/renamed",
        ),
    ];
    let mut runs = Vec::new();
    for (name, upstream, sent, played) in cases {
        let log = dir.path().join(format!("{name}.ndjson"));
        let (proxy, port) = proxy(&[], &upstream, &[], &log);
        let out = dir.path().join(format!("{name}.flv"));
        let play = play_to(&b.url(played), &out);
        runs.push((name, proxy, log, play, out, port, sent, played));
    }
    wait_logged(&b, "play", &["kept", "renamed"]);
    let publishers: Vec<_> = runs
        .iter()
        .map(|(_, _, _, _, _, port, sent, _)| {
            Command::new(&ffmpeg)
                .args(["-nostdin", "-loglevel", "error", "-re", "-i"])
                .arg(&src)
                .args(["-c", "copy", "-f", "flv"])
                .arg(format!("rtmp://127.0.0.1:{port}/{sent}"))
                .stderr(Stdio::piped())
                .spawn()
                .expect("ffmpeg")
        })
        .collect();
    for p in publishers {
        common::wait_success(p, "ffmpeg", Duration::from_secs(20));
    }
    for (name, proxy, log, play, out, _, sent, played) in runs {
        common::wait_success(play, "play", Duration::from_secs(20));
        common::assert_same(name, &src, &out, 0);
        let po = interrupt(proxy, "proxy");
        let text = std::fs::read_to_string(&log).unwrap();
        let stderr = String::from_utf8_lossy(&po.stderr);
        assert!(
            !text.contains("secretkey123") && !stderr.contains("secretkey123"),
            "{text}{stderr}"
        );
        let sessions: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| r["type"] == "session")
            .collect();
        let one = |event: &str| {
            sessions
                .iter()
                .find(|r| r["event"] == event)
                .unwrap_or_else(|| panic!("{name}: no {event} session record in {text}"))
                .clone()
        };
        let (sent_app, sent_stream) = sent.split_once('/').unwrap();
        let (played_app, played_stream) = played.split_once('/').unwrap();
        let connect = one("connect");
        let publish = one("publish");
        assert_eq!(connect["stream"], sent_app, "{name}");
        if name == "carried" {
            assert_eq!(connect["detail"], "", "{name}");
            assert_eq!(publish["stream"], "ke…", "{name}");
            assert_eq!(publish["detail"], "", "{name}");
        } else {
            assert_eq!(connect["detail"], format!("carried as {played_app}"));
            assert_eq!(publish["stream"], format!("{}…", &sent_stream[..2]));
            assert_eq!(
                publish["detail"],
                format!("carried as {}…", &played_stream[..2])
            );
        }
        assert!(
            sessions
                .iter()
                .any(|r| r["event"] == "close" && r["bytes_in"].as_u64() > Some(50_000)),
            "{name}: {text}"
        );
    }
}

/// `relay --listen` reports a finding while the encoder goes on, once: a
/// publisher whose timestamps cross 0xFFFFFF (extended timestamps) at 8×
/// real time through the proxy to nginx.
#[test]
fn listen_reports_findings_while_the_encoder_goes_on() {
    let b = Nginx::start(4096, "");
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("proxy.ndjson");
    let (proxy, port) = proxy(&[], &b.url("live"), &[], &log);
    let mut publish = bin()
        .args(["publish", "--rate", "8", "--start-timestamp", "16777000"])
        .arg(media("h264base_aac_60s.flv"))
        .arg(format!("rtmp://127.0.0.1:{port}/live/ext"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("publish");
    let count = || {
        records(&log)
            .into_iter()
            .filter(|r| {
                r["type"] == "finding" && r["code"] == "extended_timestamp" && r["dir"] == "c2s"
            })
            .count()
    };
    common::wait_for("the finding, live", Duration::from_secs(20), || {
        (count() == 1).then_some(())
    });
    assert!(
        publish.try_wait().unwrap().is_none(),
        "the publisher had already finished: not live"
    );
    let st = publish.wait().unwrap();
    assert!(st.success());
    // CLI.md: relay --listen's findings carry the peer and the time.
    let finding = records(&log)
        .into_iter()
        .find(|r| r["type"] == "finding")
        .unwrap();
    assert!(
        finding["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{finding}"
    );
    assert!(finding["time"].as_f64().is_some(), "{finding}");
    common::wait_for("the encoder's close", Duration::from_secs(10), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("\"event\":\"close\",\"detail\":\"closed by the encoder\",\"time\"")
            .then_some(())
            .filter(|_| {
                std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .matches("\"event\":\"close\"")
                    .count()
                    >= 2
            })
    });
    interrupt(proxy, "proxy");
    assert_eq!(count(), 1, "reported again at the end");
}

/// `relay --listen` in front of a server that accepts TCP and then says
/// nothing: an encoder pushing 64 MiB of audio, or 4 million one-byte
/// messages (2 bytes each on the wire), is held back (the proxy stops
/// reading it at its queue limit, counting what each message held costs,
/// so its memory stays bounded) and the connection is closed once the
/// server's handshake is overdue, with the reason.
#[test]
fn listen_bounds_memory_when_the_server_stalls() {
    use rtmptool::proto::chunk::{ChunkEncoder, MessageHeader};
    use rtmptool::proto::message::MessageType;
    use std::io::{Read, Write};
    for (body_len, count) in [(60_000usize, 1100u32), (1, 4_000_000)] {
        let what = format!("{count} messages of {body_len} bytes");
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let up = silent.local_addr().unwrap().port();
        let dir = tempfile::tempdir().expect("tmp");
        let log = dir.path().join("proxy.ndjson");
        let (proxy, port) = proxy(
            &["--timeout", "3s"],
            &format!("rtmp://127.0.0.1:{up}"),
            &[],
            &log,
        );
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        // The proxy's TCP connects reach the silent server, which never
        // reads (the first is the listen probe's).
        silent.set_nonblocking(false).unwrap();
        // The handshake with the proxy (its own): C0 C1, S0 S1 S2, C2.
        let mut c0c1 = vec![3u8];
        c0c1.extend([0u8; 1536]);
        tcp.write_all(&c0c1).unwrap();
        let mut s = vec![0u8; 1 + 1536 * 2];
        tcp.read_exact(&mut s).unwrap();
        tcp.write_all(&s[1..1537]).unwrap();
        let (_held, _) = silent.accept().expect("the proxy connects upstream");
        let mut r = tcp.try_clone().unwrap();
        let reader = std::thread::spawn(move || {
            let mut b = [0u8; 4096];
            while matches!(r.read(&mut b), Ok(n) if n > 0) {}
        });
        let writer = std::thread::spawn(move || {
            let mut enc = ChunkEncoder::default();
            let body = vec![0xAFu8; body_len];
            let mut sent = 0usize;
            let mut out = Vec::new();
            for i in 0..count {
                let h = MessageHeader {
                    timestamp: i * 23,
                    msg_type: MessageType::AUDIO,
                    stream_id: 1,
                };
                enc.encode(4, &h, &body, &mut out);
                if out.len() >= 64 << 10 || i + 1 == count {
                    if tcp.write_all(&out).is_err() {
                        break;
                    }
                    sent += out.len();
                    out.clear();
                }
            }
            sent
        });
        let t = Instant::now();
        let closed = common::wait_for(
            "the proxy to give up on the server",
            Duration::from_secs(15),
            || {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                text.lines()
                    .find(|l| l.contains("\"event\":\"close\"") && l.contains("handshake"))
                    .map(str::to_owned)
            },
        );
        assert!(
            t.elapsed() < Duration::from_secs(8),
            "{what}: {:?}",
            t.elapsed()
        );
        assert!(
            closed.contains("did not complete the RTMP handshake in 3 s"),
            "{what}: {closed}"
        );
        let hwm = common::vm_hwm_kb(proxy.id());
        let sent = writer.join().unwrap();
        reader.join().unwrap();
        assert!(
            sent < 40 << 20,
            "{what}: the encoder was not held back: {sent} bytes taken"
        );
        assert!(hwm < 48 * 1024, "{what}: proxy peak RSS {hwm} kB");
        interrupt(proxy, "proxy");
    }
}

/// Both ends over RTMPS (nginx's stream module terminating TLS in front of
/// each nginx-rtmp, with a CA of the test's own): FFmpeg publishes to A,
/// `relay rtmps://A rtmps://B --ca`, `rtmptool play` from B: tag for tag.
#[test]
fn relay_over_rtmps_at_both_ends() {
    let ffmpeg = require("ffmpeg");
    let certs = common::Certs::new();
    let (a, a_tls) = Nginx::start_tls(4096, "", &certs);
    let (b, b_tls) = Nginx::start_tls(4096, "", &certs);
    let dir = tempfile::tempdir().expect("tmp");
    let src = media("h264base_aac_10s.flv");
    let out = dir.path().join("played.flv");
    let play = play_to(&b.url("live/relayed"), &out);
    wait_logged(&b, "play", &["relayed"]);
    let ca = certs.ca.to_str().unwrap().to_owned();
    let r = relay(
        &format!("rtmps://127.0.0.1:{a_tls}/live/origin"),
        &format!("rtmps://127.0.0.1:{b_tls}/live/relayed"),
        &["--ca", &ca],
    );
    wait_logged(&a, "play", &["origin"]);
    wait_logged(&b, "publish", &["relayed"]);
    ffmpeg_publish(&ffmpeg, &src, &a.url("live/origin"));
    common::wait_success(r, "relay", Duration::from_secs(20));
    common::wait_success(play, "play", Duration::from_secs(20));
    common::assert_same("ffmpeg → A → relay over rtmps → B → play", &src, &out, 0);
}

/// A destination slower than the source: nginx B's worker is stopped
/// (SIGSTOP, by PID) while the source is published as fast as it goes. The
/// relay's queue stays bounded (`--queue`): it says it drops media to the
/// next key frame, counts what it dropped, keeps its memory small, and
/// finishes once B reads again.
#[test]
fn a_slow_destination_is_skipped_to_the_next_key_frame() {
    let a = Nginx::start(4096, "");
    let b = Nginx::start(4096, "");
    let worker: u32 = common::wait_for("nginx B's worker", Duration::from_secs(5), || {
        let pid = b.pid();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|w| w.parse().ok()))
    });
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("relay.ndjson");
    let r = bin()
        .args(["--json", "--timeout", "30s", "relay", "--queue", "262144"])
        .arg(a.url("live/fast"))
        .arg(b.url("live/slow"))
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .expect("relay");
    wait_logged(&a, "play", &["fast"]);
    wait_logged(&b, "publish", &["slow"]);
    let signal = |sig: &str| {
        let st = Command::new("kill")
            .args([sig, &worker.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    };
    signal("-STOP");
    // Whatever happens next, the worker is continued.
    let _continue = Continue(worker);
    let publish = bin()
        // 8 × 2.6 MB: more than the kernel's socket buffers hold.
        .args(["publish", "--no-pace", "--loop", "8"])
        .arg(media("h264base_aac_60s.flv"))
        .arg(a.url("live/fast"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("publish");
    let said = common::wait_for("the relay to skip", Duration::from_secs(20), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .find(|l| l.contains("slower than the source"))
            .map(str::to_owned)
    });
    let hwm = common::vm_hwm_kb(r.id());
    signal("-CONT");
    common::wait_success(publish, "publish", Duration::from_secs(30));
    common::wait_success(r, "relay", Duration::from_secs(30));
    let text = std::fs::read_to_string(&log).unwrap();
    let stats: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v["type"] == "stats")
        .expect("stats record");
    assert!(stats["dropped"].as_u64() > Some(0), "{said}\n{stats}");
    assert!(hwm < 64 * 1024, "relay peak RSS {hwm} kB");
}

/// Continues a stopped process (by PID) when dropped: a stopped nginx
/// worker would outlive its master's SIGTERM.
struct Continue(u32);

impl Drop for Continue {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

/// The steady state (its own thread between two plain TCP ends) answers
/// Ctrl-C at once, closing the destination's stream politely, and ends at
/// `--duration`; and a destination that stops reading ends the relay after
/// `--timeout` with the reason, instead of hanging.
#[test]
fn a_flowing_relay_stops_on_ctrl_c_and_on_a_destination_that_stops_reading() {
    let a = Nginx::start(4096, "");
    let b = Nginx::start(4096, "");
    let publish = |name: &str, extra: &[&str]| {
        Running(Some(
            bin()
                .args(["publish", "--loop", "8"])
                .args(extra)
                .arg(media("h264base_aac_60s.flv"))
                .arg(a.url(&format!("live/{name}")))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("publish"),
        ))
    };
    // Ctrl-C while the stream flows.
    let r = Running(Some(relay(&a.url("live/s1"), &b.url("live/d1"), &[])));
    wait_logged(&a, "play", &["s1"]);
    let _publisher = publish("s1", &[]);
    wait_logged(&b, "publish", &["d1"]);
    // Media flows through the relay: a player of B gets video within 5 s
    // (the source's key frames are 2 s apart; nginx starts a player at
    // one).
    let player = bin()
        .args(["--json", "play", "--duration", "5s"])
        .arg(b.url("live/d1"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("play");
    let played = wait_output(player, "play from B", Duration::from_secs(20));
    let stats = common::stats(&played);
    assert!(stats["video_frames"].as_u64() > Some(0), "{stats}");
    let out = interrupted_within(r, "relay after Ctrl-C", Duration::from_secs(3));
    let stats = common::stats(&out);
    assert!(stats["video_frames"].as_u64() > Some(0), "{stats}");
    common::wait_for(
        "B to log the relay's deleteStream",
        Duration::from_secs(5),
        || b.log().contains("deleteStream").then_some(()),
    );

    // --duration ends a flowing relay as Ctrl-C does.
    let started = Instant::now();
    let r = relay(&a.url("live/s1"), &b.url("live/d4"), &["--duration", "2s"]);
    let out = wait_output(r, "relay --duration 2s", Duration::from_secs(15));
    let took = started.elapsed();
    assert!(
        out.status.success() && took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "{:?} after {took:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stats = common::stats(&out);
    assert!(stats["video_frames"].as_u64() > Some(0), "{stats}");

    // B's worker stops reading: the relay queues (its --queue), the
    // kernel's buffers fill, and after --timeout without a byte taken it
    // ends with exit 3 and the reason.
    let worker: u32 = common::wait_for("nginx B's worker", Duration::from_secs(5), || {
        let pid = b.pid();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|w| w.parse().ok()))
    });
    let r = bin()
        .args(["--json", "--timeout", "2s", "relay"])
        .arg(a.url("live/s2"))
        .arg(b.url("live/d2"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("relay");
    let r = Running(Some(r));
    wait_logged(&a, "play", &["s2"]);
    wait_logged(&b, "publish", &["d2"]);
    let _ = Command::new("kill")
        .args(["-STOP", &worker.to_string()])
        .status();
    let _continue = Continue(worker);
    let _flood = publish("s2", &["--no-pace"]);
    let mut r = r;
    let child = r.0.take().expect("relay");
    let out = wait_output(
        child,
        "relay with a stalled destination",
        Duration::from_secs(60),
    );
    drop(_continue);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    // Whether the source was still publishing or had already ended: the
    // destination is named, and why.
    assert!(
        stderr.contains("destination")
            && stderr.contains("stopped reading: 0 bytes accepted in 2 s"),
        "{stderr}"
    );

    // The same with a long --timeout: the source ends while the relay
    // waits for the stalled destination; Ctrl-C ends the wait.
    let r = bin()
        .args(["--json", "--timeout", "60s", "relay"])
        .arg(a.url("live/s3"))
        .arg(b.url("live/d3"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("relay");
    let r = Running(Some(r));
    wait_logged(&a, "play", &["s3"]);
    wait_logged(&b, "publish", &["d3"]);
    let _ = Command::new("kill")
        .args(["-STOP", &worker.to_string()])
        .status();
    let _continue = Continue(worker);
    let mut flood = publish("s3", &["--no-pace"]);
    common::wait_success(
        flood.0.take().expect("publish"),
        "publish",
        Duration::from_secs(60),
    );
    interrupted_within(
        r,
        "relay after Ctrl-C, the destination stalled",
        Duration::from_secs(6),
    );
}

/// Other chunk sizes on each hop and other codecs, through the threaded
/// steady state: nginx A sends at 128 bytes a chunk and the relay at its
/// own size, B at another; H.264 Main with B-frames (composition times)
/// and H.264 + MP3. FFmpeg plays B; each track equals the source tag for
/// tag.
#[test]
fn chunk_sizes_and_codecs_pass_tag_for_tag() {
    let ffmpeg = require("ffmpeg");
    for (a_chunk, relay_chunk, b_chunk, name, start) in [
        (128, 128, 60_000, "h264main_bframes_10s.flv", 0),
        (60_000, 65_536, 128, "h264_mp3_10s.flv", 0),
        // Extended timestamps from 215 ms in; a 32-bit wrap 3 s in.
        (4096, 4096, 4096, "h264base_aac_10s.flv", 16_777_000),
        (4096, 1000, 4096, "h264base_aac_10s.flv", u32::MAX - 3000),
    ] {
        let what = format!("{name} from {start}: A {a_chunk} → relay {relay_chunk} → B {b_chunk}");
        let a = Nginx::start(a_chunk, "");
        let b = Nginx::start(b_chunk, "");
        let dir = tempfile::tempdir().expect("tmp");
        let got = dir.path().join("got.flv");
        // FFmpeg writes its FLV from 0: the timestamp cases play with
        // rtmptool, which keeps them.
        let player = if start == 0 {
            common::ffmpeg_player(&ffmpeg, &b.url("live/out"), &got)
                .stderr(Stdio::null())
                .spawn()
                .expect("ffmpeg player")
        } else {
            play_to(&b.url("live/out"), &got)
        };
        wait_logged(&b, "play", &["out"]);
        let r = relay(
            &a.url("live/in"),
            &b.url("live/out"),
            &["--chunk-size", &relay_chunk.to_string()],
        );
        wait_logged(&a, "play", &["in"]);
        wait_logged(&b, "publish", &["out"]);
        let publish = bin()
            .args(["publish", "--chunk-size", &a_chunk.to_string()])
            .args(["--start-timestamp", &start.to_string()])
            .arg(media(name))
            .arg(a.url("live/in"))
            .output()
            .expect("publish");
        assert!(
            publish.status.success(),
            "{what}: publish: {}",
            String::from_utf8_lossy(&publish.stderr)
        );
        let ro = common::wait_success(r, "relay", Duration::from_secs(20));
        assert_eq!(common::stats(&ro)["dropped"], 0, "{what}");
        end(player, Duration::from_secs(10));
        common::assert_same(&what, &media(name), &got, start);
    }
}

/// The steady state drives `rtmps://` ends on its thread too (rustls'
/// records on the same socket calls): with TLS at either end, the stream
/// flows, Ctrl-C and `--duration` end it at once with the destination's
/// stream closed politely (over the TLS state given back to the runtime),
/// and a TLS destination that stops reading ends the relay after
/// `--timeout` with the reason.
#[test]
fn rtmps_at_either_end_flows_stops_and_stalls_like_plain() {
    let certs = common::Certs::new();
    let ca = certs.ca.to_str().unwrap().to_owned();
    let (a, a_tls) = Nginx::start_tls(4096, "", &certs);
    let (b, b_tls) = Nginx::start_tls(4096, "", &certs);
    let publish = |name: &str, extra: &[&str]| {
        Running(Some(
            bin()
                .args(["publish", "--loop", "8"])
                .args(extra)
                .arg(media("h264base_aac_60s.flv"))
                .arg(a.url(&format!("live/{name}")))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("publish"),
        ))
    };
    let tls_url = |port: u16, path: &str| format!("rtmps://127.0.0.1:{port}/{path}");

    // Plain source, TLS destination; Ctrl-C while it flows. (The player
    // plays 5 s: the source's key frames are 2 s apart, and nginx starts a
    // player at one.)
    let r = Running(Some(relay(
        &a.url("live/t1"),
        &tls_url(b_tls, "live/u1"),
        &["--ca", &ca],
    )));
    wait_logged(&a, "play", &["t1"]);
    let _p1 = publish("t1", &[]);
    wait_logged(&b, "publish", &["u1"]);
    let player = bin()
        .args(["--json", "play", "--duration", "5s"])
        .arg(b.url("live/u1"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("play");
    let played = wait_output(player, "play from B", Duration::from_secs(20));
    assert!(
        common::stats(&played)["video_frames"].as_u64() > Some(0),
        "{}{}",
        String::from_utf8_lossy(&played.stdout),
        String::from_utf8_lossy(&played.stderr)
    );
    let out = interrupted_within(r, "relay to rtmps after Ctrl-C", Duration::from_secs(3));
    assert!(common::stats(&out)["video_frames"].as_u64() > Some(0));
    common::wait_for(
        "B to log the relay's deleteStream",
        Duration::from_secs(5),
        || b.log().contains("deleteStream").then_some(()),
    );

    // TLS source, plain destination; --duration ends it.
    let started = Instant::now();
    let r = relay(
        &tls_url(a_tls, "live/t1"),
        &b.url("live/u2"),
        &["--ca", &ca, "--duration", "2s"],
    );
    let out = wait_output(r, "relay from rtmps --duration 2s", Duration::from_secs(15));
    let took = started.elapsed();
    assert!(
        out.status.success() && took < Duration::from_secs(8),
        "{:?} after {took:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(common::stats(&out)["video_frames"].as_u64() > Some(0));

    // TLS at both ends, B's worker (its TLS and its RTMP) stopped.
    let worker: u32 = common::wait_for("nginx B's worker", Duration::from_secs(5), || {
        let pid = b.pid();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|w| w.parse().ok()))
    });
    let r = bin()
        .args(["--json", "--timeout", "2s", "relay", "--ca", &ca])
        .arg(tls_url(a_tls, "live/t3"))
        .arg(tls_url(b_tls, "live/u3"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("relay");
    let mut r = Running(Some(r));
    wait_logged(&a, "play", &["t3"]);
    wait_logged(&b, "publish", &["u3"]);
    let _ = Command::new("kill")
        .args(["-STOP", &worker.to_string()])
        .status();
    let _continue = Continue(worker);
    let _flood = publish("t3", &["--no-pace"]);
    let out = wait_output(
        r.0.take().expect("relay"),
        "relay over rtmps with a stalled destination",
        Duration::from_secs(60),
    );
    drop(_continue);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("destination") && stderr.contains("stopped reading"),
        "{stderr}"
    );
}

/// Enhanced RTMP multitrack through a reconnect: after B restarts, the
/// relay sends the configuration of every track first (legacy AAC on the
/// default track, Opus on audio track 1, HEVC on video track 2: the
/// E-RTMP capture's publisher), stamped with the stream's time, and video
/// from a key frame. A and B are `rtmptool serve` (stock nginx-rtmp holds
/// back E-RTMP video, see `testdata/ertmp/README.md`).
#[test]
fn reconnect_sends_every_tracks_configuration_first() {
    let m = common::ertmp_multitrack(4);
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("multitrack.flv");
    std::fs::write(&src, &m.flv).expect("write flv");
    let a = common::Serve::start(&[]);
    let b_port = common::free_port();
    let b = common::Serve::start_on(b_port, &[]);
    let r = relay(&a.url("live/in"), &b.url("live/out"), &["--reconnect"]);
    a.wait_sessions("play", 1);
    let publisher = bin()
        .arg("publish")
        .arg(&src)
        .arg(a.url("live/in"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("publish");
    b.wait_sessions("publish", 1);
    let watch = dir.path().join("watch.flv");
    let watcher = play_to(&b.url("live/out"), &watch);
    common::wait_for("B's stream to be 2 s in", Duration::from_secs(20), || {
        common::tags_so_far(&watch)
            .iter()
            .any(|t| t.timestamp >= 2000)
            .then_some(())
    });
    drop(b);
    let _ = wait_output(watcher, "player of the first B", Duration::from_secs(10));
    let b = common::Serve::start_on(b_port, &[]);
    b.wait_sessions("publish", 1);
    let out = dir.path().join("after.flv");
    let after = bin()
        .args(["play", &b.url("live/out"), "-o"])
        .arg(&out)
        .args(["--duration", "2s"])
        .output()
        .expect("play");
    assert!(
        after.status.success(),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    let tags = common::tags_so_far(&out);
    common::assert_configured_first("play from B after the restart", &m, &tags);
    let first_video = tags.iter().find(|t| t.is_video()).expect("video");
    assert!(
        first_video.timestamp >= 2000,
        "configuration at the stream's time, not at 0: {}",
        first_video.timestamp
    );
    let ro = interrupt(Running(Some(r)), "relay");
    assert_eq!(common::stats(&ro)["destination_reconnects"], 1);
    drop(Running(Some(publisher)));
}

/// `--reconnect` keeps the destination's stream up while the source's
/// publisher restarts (its timestamps from 0 again): the relay sends the
/// new stream's timestamps shifted to go on after what the destination
/// has, so nginx B's players see one stream whose time never goes back
/// (FFmpeg warned "Non-monotonous DTS" on every frame after the restart,
/// and the FLV went 10 s back in time).
#[test]
fn a_publisher_restart_at_the_source_keeps_the_destination_timeline() {
    let ffmpeg = require("ffmpeg");
    let a = common::Serve::start(&[]);
    let b = Nginx::start(4096, "");
    let dir = tempfile::tempdir().expect("tmp");
    let got = dir.path().join("b.flv");
    let ff_got = dir.path().join("b_ffmpeg.flv");
    let player = bin()
        .args(["--json", "play", &b.url("live/out"), "-o"])
        .arg(&got)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("play");
    let ff = common::ffmpeg_player(&ffmpeg, &b.url("live/out"), &ff_got)
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg player");
    wait_logged(&b, "play", &["out", "out"]);
    let r = relay(&a.url("live/in"), &b.url("live/out"), &["--reconnect"]);
    a.wait_sessions("play", 1);
    wait_logged(&b, "publish", &["out"]);
    let src = media("h264base_aac_10s.flv");
    for _ in 0..2 {
        let p = bin()
            .args(["publish", "--rate", "4"])
            .arg(&src)
            .arg(a.url("live/in"))
            .output()
            .expect("publish");
        assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    }
    let ro = interrupt(Running(Some(r)), "relay");
    let text = String::from_utf8_lossy(&ro.stdout);
    let stats = common::stats(&ro);
    let shift = stats["timestamp_shift_ms"].as_u64().unwrap_or(0);
    // After the last of the first run's timestamps (audio to 10008 ms).
    assert!((10_000..10_100).contains(&shift), "{text}");
    assert!(text.contains("publisher left"), "{text}");
    let po = wait_output(player, "play", Duration::from_secs(10));
    assert!(
        po.status.success(),
        "{}",
        String::from_utf8_lossy(&po.stderr)
    );
    let ps = common::stats(&po);
    assert_eq!(ps["regressions"], 0, "{ps}");
    assert_eq!(ps["video_frames"], 500, "{ps}");
    // Both runs back to back: 20 s of media, no gap.
    let d = ps["duration_ms"].as_f64().unwrap_or(0.0);
    assert!((19_900.0..20_100.0).contains(&d), "{ps}");
    assert_eq!(ps["gaps"], 0, "{ps}");
    let (audio, video) = tracks(&got);
    for (kind, t) in [("audio", &audio), ("video", &video)] {
        assert!(
            t.windows(2).all(|w| w[1].0 >= w[0].0),
            "{kind} timestamps go back"
        );
    }
    // FFmpeg clamps timestamps that go back (each frame of the new run
    // would have been written at the old run's last time).
    let _ = wait_output(ff, "ffmpeg player", Duration::from_secs(10));
    let (_, fv) = tracks(&ff_got);
    // (A sequence header and the key frame after it share a time: once
    // per run.)
    let same = fv.windows(2).filter(|w| w[1].0 <= w[0].0).count();
    assert!(
        same <= 2,
        "FFmpeg's video: {same} timestamps not after the one before"
    );
    let span = fv.last().map_or(0, |l| l.0) - fv.first().map_or(0, |f| f.0);
    // (FFmpeg's player may miss the first and last moments; clamped it
    // would span 10 s.)
    assert!(span >= 15_000, "FFmpeg's video spans {span} ms");
}

/// `--reconnect` when the source drops (A stopped and started again,
/// with a new publisher from timestamp 0): the relay reaches A again and
/// plays on; B's stream stays up, its video resumes with a key frame, and
/// its time never goes back.
#[test]
fn the_source_restarted_mid_stream_is_reached_again() {
    let a_port = common::free_port();
    let a = common::Serve::start_on(a_port, &[]);
    let b = Nginx::start(4096, "");
    let dir = tempfile::tempdir().expect("tmp");
    let got = dir.path().join("b.flv");
    let player = bin()
        .args(["--json", "play", &b.url("live/out"), "-o"])
        .arg(&got)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("play");
    wait_logged(&b, "play", &["out"]);
    let r = relay(&a.url("live/in"), &b.url("live/out"), &["--reconnect"]);
    a.wait_sessions("play", 1);
    let publish = || publish_at_4x(&format!("rtmp://127.0.0.1:{a_port}/live/in"));
    let first = publish();
    common::wait_for("B's stream to be 4 s in", Duration::from_secs(20), || {
        common::tags_so_far(&got)
            .iter()
            .any(|t| t.timestamp >= 4000)
            .then_some(())
    });
    drop(a);
    let _ = wait_output(first, "the first publisher", Duration::from_secs(10));
    let a = common::Serve::start_on(a_port, &[]);
    a.wait_sessions("play", 1);
    let second = publish();
    let so = wait_output(second, "the second publisher", Duration::from_secs(20));
    assert!(
        so.status.success(),
        "{}",
        String::from_utf8_lossy(&so.stderr)
    );
    let ro = interrupt(Running(Some(r)), "relay");
    let stats = common::stats(&ro);
    assert_eq!(stats["source_reconnects"], 1, "{stats}");
    assert!(stats["timestamp_shift_ms"].as_u64() > Some(4000), "{stats}");
    let po = wait_output(player, "play", Duration::from_secs(10));
    assert!(
        po.status.success(),
        "{}",
        String::from_utf8_lossy(&po.stderr)
    );
    let ps = common::stats(&po);
    assert_eq!(ps["regressions"], 0, "{ps}");
    // The second run whole after the first's part.
    assert!(ps["video_frames"].as_u64() > Some(250 + 90), "{ps}");
    let (_, video) = tracks(&got);
    let shift = stats["timestamp_shift_ms"].as_u64().unwrap() as u32;
    let after = video
        .iter()
        .find(|v| v.0 >= shift)
        .expect("video after the restart");
    // AVC sequence header (0x17 0x00) or a key frame (0x17 0x01).
    assert_eq!(after.1[0], 0x17, "first video tag after the restart");
}

/// The destination refuses (serve with `--publish-key`, publishing without
/// the key): `relay SRC DST` ends with exit 5 and the server's words;
/// through `relay --listen`, the encoder gets the same onStatus (rtmptool
/// publish exits 5 naming it) and the proxy reports the refusal.
#[test]
fn a_refusal_by_the_destination_reaches_the_user_and_the_encoder() {
    let a = common::Serve::start(&[]);
    let b = common::Serve::start(&["--publish-key", "k3y"]);
    let r = bin()
        .args(["relay", &a.url("live/in"), &b.url("live/out")])
        .output()
        .expect("relay");
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(5), "{err}");
    assert!(err.contains("NetStream.Publish.Unauthorized"), "{err}");
    assert!(err.contains("destination"), "{err}");
    // Through the proxy: the encoder hears the server's refusal.
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("proxy.ndjson");
    let (running, port) = proxy(&[], &format!("rtmp://127.0.0.1:{}", b.port), &[], &log);
    let p = bin()
        .args(["publish"])
        .arg(media("h264base_aac_10s.flv"))
        .arg(format!("rtmp://127.0.0.1:{port}/live/z"))
        .output()
        .expect("publish");
    let perr = String::from_utf8_lossy(&p.stderr);
    assert_eq!(p.status.code(), Some(5), "{perr}");
    assert!(perr.contains("NetStream.Publish.Unauthorized"), "{perr}");
    let findings = common::wait_for("the proxy's finding", Duration::from_secs(10), || {
        let f: Vec<_> = records(&log)
            .into_iter()
            .filter(|r| r["type"] == "finding" && r["code"] == "refused")
            .collect();
        (!f.is_empty()).then_some(f)
    });
    let message = findings[0]["message"].as_str().unwrap_or("");
    // The code whole: a one-letter stream name takes no letter out of it.
    assert!(
        message.contains("NetStream.Publish.Unauthorized"),
        "{message}"
    );
    drop(running);
}

/// The live status line (bitrate, frames, reconnects, queue depth) is
/// drawn on a terminal (a pty made by `script`) and never when stderr is
/// not one; the final stats are printed either way.
#[test]
fn live_stats_are_drawn_on_a_terminal_only() {
    let a = common::Serve::start(&[]);
    let b = common::Serve::start(&[]);
    // Killed when the test ends, whichever way.
    let _publisher = Running(Some(
        bin()
            .args(["publish", "--loop", "0"])
            .arg(media("h264base_aac_10s.flv"))
            .arg(a.url("live/in"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("publish"),
    ));
    a.wait_sessions("publish", 1);
    let o = common::on_a_terminal(&format!(
        "relay --duration 2500ms {} {}",
        a.url("live/in"),
        b.url("live/tty")
    ));
    let tty = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{tty}");
    for words in [
        "kbit/s",
        "video /",
        "audio frames",
        "reconnects 0+0",
        "queue ",
        "relayed ",
    ] {
        assert!(tty.contains(words), "{words:?} not in {tty}");
    }
    let o = bin()
        .args([
            "relay",
            "--duration",
            "2500ms",
            &a.url("live/in"),
            &b.url("live/notty"),
        ])
        .output()
        .expect("relay");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        !err.contains("kbit/s"),
        "status line without a terminal: {err}"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("relayed "));
}

/// `relay --listen`: several encoders at once through one proxy, each on
/// an upstream connection of its own, each stream arriving at nginx whole
/// and apart (tag for tag), with one session per encoder.
#[test]
fn listen_carries_several_encoders_at_once() {
    let b = Nginx::start(4096, "");
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("proxy.ndjson");
    let (running, port) = proxy(&[], &format!("rtmp://{}", b.addr), &[], &log);
    let names = ["one", "two", "three"];
    let src = media("h264base_aac_10s.flv");
    let players: Vec<_> = names
        .iter()
        .map(|n| {
            let out = dir.path().join(format!("{n}.flv"));
            (play_to(&b.url(&format!("live/{n}")), &out), out)
        })
        .collect();
    wait_logged(&b, "play", &names);
    let encoders: Vec<_> = names
        .iter()
        .map(|n| {
            bin()
                .args(["publish", "--rate", "2"])
                .arg(&src)
                .arg(format!("rtmp://127.0.0.1:{port}/live/{n}"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("publish")
        })
        .collect();
    for e in encoders {
        common::wait_success(e, "publish through the proxy", Duration::from_secs(30));
    }
    for ((p, out), n) in players.into_iter().zip(names) {
        common::wait_success(p, "play", Duration::from_secs(20));
        common::assert_same(n, &src, &out, 0);
    }
    let po = interrupt(running, "proxy");
    assert!(
        po.status.success(),
        "{}",
        String::from_utf8_lossy(&po.stderr)
    );
    let publishes = records(&log)
        .into_iter()
        .filter(|r| r["type"] == "session" && r["event"] == "publish")
        .count();
    assert_eq!(
        publishes,
        names.len(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
}

/// The source's server dies mid-stream (killed: its socket closes with no
/// Stream EOF or UnpublishNotify). Without `--reconnect` the relay ends the
/// destination's stream politely but says the stream broke, exit 3, as
/// `play` does of the same close; it exited 0 in silence, as if the
/// publisher had left.
#[test]
fn a_source_that_dies_mid_stream_is_a_broken_stream() {
    let mut a = common::Serve::start(&[]);
    let b = Nginx::start(4096, "");
    let dir = tempfile::tempdir().expect("tmp");
    let got = dir.path().join("b.flv");
    let player = Running(Some(play_to(&b.url("live/kq7dest"), &got)));
    wait_logged(&b, "play", &["kq7dest"]);
    let r = relay(&a.url("live/in"), &b.url("live/kq7dest"), &[]);
    a.wait_sessions("play", 1);
    let publisher = Running(Some(publish_at_4x(&a.url("live/in"))));
    common::wait_for("B's stream to be 2 s in", Duration::from_secs(20), || {
        common::tags_so_far(&got)
            .iter()
            .any(|t| t.timestamp >= 2000)
            .then_some(())
    });
    a.child.kill().expect("kill A");
    let _ = a.child.wait();
    let out = wait_output(r, "relay", Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("source") && stderr.contains("mid-stream"),
        "{stderr}"
    );
    // The line names the end that broke (its URL, key shortened), and the
    // two-letter key takes no letters out of its words.
    assert!(
        stderr.contains("relay: source rtmp://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("without ending the stream"), "{stderr}");
    // The final stats still came, and B had the stream until then.
    let stats = common::stats(&out);
    assert!(stats["video_frames"].as_u64() > Some(40), "{stats}");
    drop(publisher);
    drop(player);
}

/// `publish` of an E-RTMP stream announces its codecs in `connect`, as OBS
/// and FFmpeg's `-rtmp_enhanced_codecs` do (E-RTMP v2, "Enhancing
/// NetConnection connect Command"): the capture's publisher's stream (HEVC
/// on video track 2, Opus on audio track 1 beside legacy AAC, ModEx with
/// nanosecond offsets: its ground truth, `testdata/ertmp/README.md`) is
/// announced as `fourCcList` ["hvc1", "Opus"], each `CanEncode` (2), and
/// `capsEx` Multitrack | ModEx | TimestampNanoOffset (14: what it sends as
/// the file has it; not Reconnect, which it does not follow). The server
/// (serve) then states its own. A stream of legacy codecs sends the legacy
/// connect. Seen in the live decode of `relay --listen` in between.
#[test]
fn publish_announces_the_ertmp_codecs_of_its_stream() {
    let m = common::ertmp_multitrack(1);
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("multitrack.flv");
    std::fs::write(&src, &m.flv).expect("write flv");
    let serve = common::Serve::start(&[]);
    let log = dir.path().join("proxy.ndjson");
    let (proxy, port) = proxy(&[], &serve.url(""), &[], &log);
    let legacy = common::media("h264base_aac_10s.flv");
    for (file, key) in [(src.as_path(), "ertmp"), (legacy.as_path(), "legacy")] {
        let o = bin()
            .args(["publish", "--no-pace", "--duration", "1s"])
            .arg(file)
            .arg(format!("rtmp://127.0.0.1:{port}/live/{key}"))
            .output()
            .expect("publish");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let all = interrupt(proxy, "proxy");
    assert!(all.status.success());
    // connect and its _result, of each publisher (the connection that saw
    // the proxy listen sent nothing).
    let text: Vec<String> = records(&log)
        .into_iter()
        .filter(|r| {
            r["type"] == "message" && (r["command"] == "connect" || r["transaction_id"] == 1)
        })
        .map(|c| c.to_string())
        .collect();
    assert_eq!(text.len(), 4, "{text:#?}");
    let (ertmp, legacy) = (&text[0], &text[2]);
    assert!(ertmp.contains(r#""fourCcList":["hvc1","Opus"]"#), "{ertmp}");
    assert!(
        ertmp.contains(r#""videoFourCcInfoMap":{"hvc1":2.0}"#),
        "{ertmp}"
    );
    assert!(
        ertmp.contains(r#""audioFourCcInfoMap":{"Opus":2.0}"#),
        "{ertmp}"
    );
    assert!(ertmp.contains(r#""capsEx":14.0"#), "{ertmp}");
    assert!(
        text[1].contains(r#""fourCcList":["*"]"#),
        "serve states: {}",
        text[1]
    );
    for t in [legacy, &text[3]] {
        assert!(!t.contains("fourCc") && !t.contains("capsEx"), "{t}");
    }
}
