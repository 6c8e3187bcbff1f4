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
