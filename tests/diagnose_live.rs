//! `rtmptool diagnose URL` against nginx-rtmp with its default settings
//! (max_message 1M), started by the test on a free port and stopped by PID:
//! the handshakes, connect and publishes at chunk sizes 128 to 65536 are
//! accepted, a 1.5 MiB key frame is refused and named (max_message), and a
//! server that is not there is a network error.

mod common;

use std::process::Command;

use serde_json::Value as Json;

fn diagnose(url: &str) -> (Vec<Json>, i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rtmptool"))
        .args(["--json", "--timeout", "5s", "diagnose", url])
        .output()
        .expect("run rtmptool");
    let findings = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (
        findings,
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn nginx_defaults_accept_chunk_sizes_and_refuse_a_big_key_frame() {
    let nginx = common::Nginx::start(4096, "");
    let url = nginx.url("live/secretkey42");
    let (f, code, err) = diagnose(&url);
    assert_eq!(code, 8, "{err}");
    let by_check = |name: &str| -> &Json {
        f.iter()
            .find(|x| x["check"] == name)
            .unwrap_or_else(|| panic!("no {name} in {f:?}"))
    };
    for name in [
        "handshake_simple",
        "handshake_digest",
        "connect",
        "publish_chunk_size_128",
        "publish_chunk_size_4096",
        "publish_chunk_size_65536",
        "extended_timestamp",
    ] {
        let x = by_check(name);
        assert_eq!(x["severity"], "info", "{name}: {x}");
        assert!(
            x["message"].as_str().unwrap().starts_with("accepted"),
            "{x}"
        );
    }
    let big = by_check("key_frame_1572864");
    assert_eq!(big["severity"], "warning", "{big}");
    assert_eq!(big["code"], "message_too_big");
    assert!(
        big["fix"].as_str().unwrap().contains("max_message"),
        "{big}"
    );
    // Live records name the check and the URL instead of frame and offset,
    // with the key redacted.
    assert!(big.get("frame").is_none() && big.get("offset").is_none());
    assert_eq!(big["url"], url.replace("secretkey42", "se…"));
    assert!(!err.contains("secretkey42") && !format!("{f:?}").contains("secretkey42"));
    // nginx says why it closed the connection.
    assert!(
        nginx.log().contains("too big message: 1048576"),
        "{}",
        nginx.log()
    );
}

#[test]
fn nobody_listening_is_a_network_error() {
    let port = common::free_port();
    let (_, code, err) = diagnose(&format!("rtmp://127.0.0.1:{port}/live/x"));
    assert_eq!(code, 3, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A port that accepts TCP and never answers the handshake (a wrong
/// service, a hung server): both handshake checks fail, and the checks
/// that need a handshake are not run (each would wait out the timeout:
/// 80 s at the default 10 s) but listed as such.
#[test]
fn a_server_that_never_answers_fails_the_handshakes_and_skips_the_rest() {
    let port = common::silent_server();
    let (findings, code, err) = diagnose(&format!("rtmp://127.0.0.1:{port}/live/x"));
    assert_eq!(code, 8, "{err}");
    assert_eq!(findings.len(), 8, "{findings:?}");
    for f in &findings[..2] {
        assert_eq!(f["severity"], "error", "{f}");
        assert!(
            f["message"]
                .as_str()
                .unwrap()
                .contains("handshake failed: timed out"),
            "{f}"
        );
    }
    for f in &findings[2..] {
        assert_eq!(f["severity"], "info", "{f}");
        assert!(
            f["message"].as_str().unwrap().starts_with("not run:"),
            "{f}"
        );
    }
}

/// A network namespace joined to the host by a veth pair whose host end is
/// shaped by `tc … tbf`; removed on drop.
struct ShapedNs {
    ns: String,
    veth: String,
    /// The namespace's address.
    addr: String,
}

impl ShapedNs {
    fn new(rate: &str) -> ShapedNs {
        common::require("ip");
        common::require("tc");
        let id = std::process::id() % 10_000;
        let (ns, veth) = (format!("rtdiag{id}"), format!("rtd{id}"));
        let net = format!("10.{}.{}", 90 + id % 100 / 10, id % 250);
        let me = ShapedNs {
            ns: ns.clone(),
            veth: veth.clone(),
            addr: format!("{net}.2"),
        };
        let sh = |args: &str| {
            let ok = Command::new("sh")
                .args(["-c", args])
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "failed: {args} (this test needs root: ip netns, veth, tc tbf)"
            );
        };
        sh(&format!("ip netns add {ns}"));
        sh(&format!("ip link add {veth}a type veth peer name {veth}b"));
        sh(&format!("ip link set {veth}b netns {ns}"));
        sh(&format!("ip addr add {net}.1/24 dev {veth}a"));
        sh(&format!(
            "ip netns exec {ns} ip addr add {net}.2/24 dev {veth}b"
        ));
        sh(&format!("ip link set {veth}a mtu 1500 up"));
        sh(&format!(
            "ip netns exec {ns} ip link set {veth}b mtu 1500 up"
        ));
        sh(&format!("ip netns exec {ns} ip link set lo up"));
        sh(&format!(
            "tc qdisc add dev {veth}a root tbf rate {rate} burst 32kb latency 200ms"
        ));
        me
    }
}

impl Drop for ShapedNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        // Usually gone with the namespace already.
        let _ = Command::new("ip")
            .args(["link", "del", &format!("{}a", self.veth)])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// nginx-rtmp inside the namespace, stopped by PID on drop.
struct NsNginx {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl NsNginx {
    fn start(ns: &ShapedNs) -> NsNginx {
        let nginx = common::require("nginx");
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display();
        let conf = format!(
            "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;\nworker_processes 1;\n\
             pid {d}/nginx.pid;\nerror_log {d}/error.log info;\nevents {{ worker_connections 64; }}\n\
             rtmp {{ server {{ listen {}:1935; application live {{ live on; }} }} }}\n",
            ns.addr
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.ns])
            .arg(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .args(["-g", "daemon off;"])
            .spawn()
            .expect("start nginx in the namespace");
        let addr: std::net::SocketAddr = format!("{}:1935", ns.addr).parse().unwrap();
        common::wait_for(
            "nginx in the namespace",
            std::time::Duration::from_secs(10),
            || {
                std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200))
                    .ok()
            },
        );
        NsNginx { child, _dir: dir }
    }
}

impl Drop for NsNginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[test]
fn throughput_is_measured_by_the_servers_acknowledgements_through_a_shaper() {
    let ns = ShapedNs::new("3mbit");
    let _nginx = NsNginx::start(&ns);
    let url = format!("rtmp://{}:1935/live/tp", ns.addr);
    let out = Command::new(env!("CARGO_BIN_EXE_rtmptool"))
        .args([
            "--json",
            "diagnose",
            "--throughput",
            "--bitrate",
            "4M",
            &url,
        ])
        .output()
        .expect("run rtmptool");
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Json = serde_json::from_str(text.lines().next().expect("a finding")).unwrap();
    assert_eq!(f["check"], "throughput", "{f}");
    let kbps = f["throughput_kbps"].as_f64().unwrap();
    assert!(
        (kbps / 3000.0 - 1.0).abs() < 0.10,
        "measured {kbps} kbit/s through a 3 Mbit/s shaper"
    );
    // Less than the planned 4 Mbit/s: a warning, exit 8.
    assert_eq!(f["severity"], "warning", "{f}");
    assert_eq!(f["code"], "falls_behind_real_time");
    assert_eq!(out.status.code(), Some(8));
}

// ---------------------------------------------------------------------------
// nginx's own log line against the one diagnose predicts from the same bytes.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use rtmptool::proto::amf0::Amf0Value;
use rtmptool::proto::chunk::{ChunkEncoder, EncoderConfig, MessageHeader};
use rtmptool::proto::message::{Command as Cmd, Message, MessageType};

/// The client's bytes: simple handshake, Set Chunk Size `announced` (if
/// any), connect/createStream/publish, then media; everything after the Set
/// Chunk Size chunked at `used`.
fn mismatched_publish(announced: Option<u32>, used: u32, seed: u32) -> Vec<u8> {
    let mut out = vec![3u8];
    out.extend((0..1536).map(|i| if i < 8 { 0 } else { (i * 7 % 253) as u8 }));
    out.extend(vec![0u8; 1536]); // C2
    let mut enc = ChunkEncoder::new(EncoderConfig::default());
    let mut b = bytes::BytesMut::new();
    let h = |t: u8, sid: u32, ts: u32| MessageHeader {
        timestamp: ts,
        msg_type: MessageType(t),
        stream_id: sid,
    };
    if let Some(a) = announced {
        enc.encode(2, &h(1, 0, 0), &Message::SetChunkSize(a).encode(), &mut b);
    }
    enc.set_chunk_size(used);
    let cmd = |name: &str, tx: f64, obj: Amf0Value, args: Vec<Amf0Value>| {
        Message::Command(Cmd::new(name, tx, obj, args)).encode()
    };
    let app = Amf0Value::Object(vec![
        ("app".into(), Amf0Value::String("live".into())),
        ("tcUrl".into(), Amf0Value::String("rtmp://h/live".into())),
    ]);
    enc.encode(3, &h(20, 0, 0), &cmd("connect", 1.0, app, vec![]), &mut b);
    enc.encode(
        3,
        &h(20, 0, 0),
        &cmd("createStream", 2.0, Amf0Value::Null, vec![]),
        &mut b,
    );
    let name = Amf0Value::String(format!("mm{seed}"));
    enc.encode(
        8,
        &h(20, 1, 0),
        &cmd("publish", 3.0, Amf0Value::Null, vec![name]),
        &mut b,
    );
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for i in 0..40u32 {
        let video = i % 3 != 0;
        let len = if video {
            150 + rnd() as usize % 9000
        } else {
            150 + rnd() as usize % 400
        };
        let mut body: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        body[0] = if video { 0x27 } else { 0xaf };
        let (csid, t) = if video { (6, 9) } else { (4, 8) };
        enc.encode(csid, &h(t, 1, i * 40), &body, &mut b);
    }
    out.extend_from_slice(&b);
    out
}

/// Sends `bytes` to nginx, reads until it closes; returns what it sent back.
fn send_to(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to nginx");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let _ = s.write_all(bytes);
    let mut back = Vec::new();
    let mut buf = [0u8; 65536];
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => back.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    back
}

/// A pcap of one conversation: C0+C1, then the server's answer, then the
/// rest of the client's bytes.
fn pcap_of(c2s: &[u8], s2c: &[u8]) -> Vec<u8> {
    common::conversation_pcap(&[(true, &c2s[..1537]), (false, s2c), (true, &c2s[1537..])])
}

/// nginx's error lines that close a session for a chunk-stream reason.
fn nginx_chunk_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| {
            [
                "RTMP in chunk stream too big",
                "too big message",
                "too big RTMP chunk size",
            ]
            .iter()
            .find_map(|k| l.find(k))
            .map(|i| {
                let rest = &l[i..];
                rest[..rest.find(", client:").unwrap_or(rest.len())].to_string()
            })
        })
        .collect()
}

#[test]
fn predicted_nginx_log_lines_match_nginx() {
    let nginx = common::Nginx::start(4096, "");
    let cases: [(Option<u32>, u32); 8] = [
        (None, 4096),
        (None, 1000),
        (Some(4096), 128),
        (Some(8192), 4096),
        (Some(128), 60000),
        (Some(2048), 4096),
        (None, 65536),
        (Some(65536), 1400),
    ];
    let mut compared = 0;
    for (i, (announced, used)) in cases.iter().enumerate() {
        for seed in 1..=4u32 {
            let before = nginx_chunk_lines(&nginx.log()).len();
            let c2s = mismatched_publish(*announced, *used, seed * 100 + i as u32);
            let s2c = send_to(nginx.addr, &c2s);
            // nginx logs before it closes; give the log a moment anyway.
            std::thread::sleep(Duration::from_millis(50));
            let lines = nginx_chunk_lines(&nginx.log());
            let actual = lines.get(before).cloned();
            let out = Command::new(env!("CARGO_BIN_EXE_rtmptool"))
                .args(["--json", "diagnose", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut ch| {
                    let pcap = pcap_of(&c2s, &s2c);
                    if std::env::var_os("DIAG_DUMP").is_some() {
                        std::fs::write(format!("/tmp/mm-{i}-{seed}.pcap"), &pcap).unwrap();
                    }
                    ch.stdin.take().unwrap().write_all(&pcap)?;
                    ch.wait_with_output()
                })
                .expect("run rtmptool");
            let findings: Vec<Json> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let f = findings
                .iter()
                .find(|f| f["code"] == "chunk_size_mismatch")
                .unwrap_or_else(|| {
                    panic!("{announced:?}/{used} seed {seed}: no mismatch in {findings:?}")
                });
            // With no message longer than the size used, larger sizes fit
            // the bytes as well: the finding lists them.
            if f["size_proven"] == "yes" {
                assert_eq!(
                    f["used_chunk_size"], *used,
                    "{announced:?}/{used} seed {seed}: {f}"
                );
            } else {
                let m = f["message"].as_str().unwrap();
                assert!(
                    f["used_chunk_size"] == *used || m.contains(&format!(" {used}")),
                    "{announced:?}/{used} seed {seed}: {f}"
                );
            }
            let predicted = f["nginx_log"].as_str().map(String::from);
            assert_eq!(
                predicted, actual,
                "{announced:?}/{used} seed {seed}: predicted vs nginx's log"
            );
            compared += usize::from(actual.is_some());
        }
    }
    assert!(
        compared >= 28,
        "only {compared} cases where nginx logged a line"
    );
}

/// A server that reads on for a while before it closes over a message too
/// big (serve reads for a second, to say what it saw): the key frame check
/// watches long enough to see the close, and names it (it had said
/// "accepted", exit 0). The smaller messages of the other checks pass.
#[test]
fn a_server_slow_to_refuse_the_key_frame_is_seen_refusing_it() {
    let serve = common::Serve::start(&["--max-message", "120000"]);
    let (findings, code, stderr) = diagnose(&serve.url("live/kf"));
    assert_eq!(code, 8, "{stderr}");
    let kf = findings
        .iter()
        .find(|f| f["check"] == "key_frame_1572864")
        .expect("key frame check");
    assert_eq!(kf["severity"], "warning", "{kf}");
    assert_eq!(kf["code"], "message_too_big", "{kf}");
    let others: Vec<_> = findings
        .iter()
        .filter(|f| f["check"] != "key_frame_1572864" && f["severity"] != "info")
        .collect();
    assert!(others.is_empty(), "{others:#?}");
    let said = serve.stop();
    assert!(
        said.iter()
            .any(|r| r["type"] == "finding" && r["code"] == "message_too_big"),
        "serve did not refuse it"
    );
}
