//! Shared helpers for tests that run real peers on loopback: nginx with the
//! RTMP module started on a free port and stopped by PID, and polling with a
//! deadline instead of sleeps.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Fails loudly when a peer program the test needs is not installed.
pub fn require(program: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "{program} is not installed: this test runs it as a real peer \
             (scripts/test.sh installs nginx libnginx-mod-rtmp ffmpeg rtmpdump tshark tcpdump)"
        )
    })
}

/// A free TCP port on 127.0.0.1 (bound, then released for the peer to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// Polls `f` until it returns `Some` or the deadline passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::yield_now();
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// nginx with the RTMP module, in a temporary prefix, on a free port.
pub struct Nginx {
    child: Child,
    /// The RTMP listen address.
    pub addr: SocketAddr,
    /// The prefix directory (config, logs).
    pub dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx-rtmp with `chunk_size` and the given extra `application`
    /// blocks (an `application live { live on; }` is always there).
    pub fn start(chunk_size: u32, extra_apps: &str) -> Nginx {
        Self::start_with(chunk_size, extra_apps, |_| String::new())
    }

    /// Like [`Nginx::start`], plus top-level configuration made from the RTMP
    /// port (e.g. a `stream { … }` block terminating TLS in front of it; the
    /// stream module is loaded when the text mentions `stream {`).
    pub fn start_with(
        chunk_size: u32,
        extra_apps: &str,
        top_level: impl FnOnce(u16) -> String,
    ) -> Nginx {
        let nginx = require("nginx");
        let module = PathBuf::from("/usr/lib/nginx/modules/ngx_rtmp_module.so");
        assert!(
            module.is_file(),
            "{} is missing: install libnginx-mod-rtmp",
            module.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let top = top_level(port);
        let stream_module = if top.contains("stream {") {
            let m = PathBuf::from("/usr/lib/nginx/modules/ngx_stream_module.so");
            assert!(
                m.is_file(),
                "{} is missing: install libnginx-mod-stream",
                m.display()
            );
            format!("load_module {};\n", m.display())
        } else {
            String::new()
        };
        let conf = format!(
            "load_module {module};\n{stream_module}\
             worker_processes 1;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             rtmp {{\n  server {{\n    listen 127.0.0.1:{port};\n    chunk_size {chunk_size};\n\
                 application live {{ live on; }}\n    {extra_apps}\n  }}\n}}\n{top}\n",
            module = module.display(),
            d = dir.path().display(),
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let child = Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut n = Nginx { child, addr, dir };
        let log = n.dir.path().join("error.log");
        wait_for("nginx to listen", Duration::from_secs(10), || {
            if let Ok(Some(status)) = n.child.try_wait() {
                panic!(
                    "nginx exited with {status}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        });
        n
    }

    /// nginx's error log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// `rtmp://127.0.0.1:PORT/`.
    pub fn url(&self, path: &str) -> String {
        format!("rtmp://{}/{path}", self.addr)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Stop by PID: the master we started (it stops its worker).
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Compares our JSON view of AMF values with the reference decoder's sidecar
/// JSON, which wraps ECMA arrays as `{"ecma_array": {...}}` and AMF3 values as
/// `{"amf3": ...}`; numbers compare by value (1 == 1.0), objects in order.
pub fn same_json(ours: &serde_json::Value, reference: &serde_json::Value) -> bool {
    use serde_json::Value as Json;
    match (ours, reference) {
        (_, Json::Object(m))
            if m.len() == 1 && (m.contains_key("ecma_array") || m.contains_key("amf3")) =>
        {
            m.values()
                .next()
                .is_some_and(|inner| same_json(ours, inner))
        }
        (Json::Number(a), Json::Number(b)) => a.as_f64() == b.as_f64(),
        (Json::Array(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_json(x, y))
        }
        (Json::Object(a), Json::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_json(va, vb))
        }
        _ => ours == reference,
    }
}

/// ffmpeg publishing testdata's 10 s FLV in a loop, in real time, to
/// `live/NAME` on `nginx`; returns once nginx has logged the publisher.
/// The caller stops the child by PID.
pub fn ffmpeg_publish_loop(nginx: &Nginx, name: &str) -> Child {
    let ffmpeg = require("ffmpeg");
    let media = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/rtmp/media/h264base_aac_10s.flv"
    );
    let child = Command::new(ffmpeg)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            media,
        ])
        .args([
            "-c",
            "copy",
            "-f",
            "flv",
            &nginx.url(&format!("live/{name}")),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ffmpeg");
    wait_for("ffmpeg to publish", Duration::from_secs(10), || {
        nginx
            .log()
            .contains(&format!("publish: name='{name}'"))
            .then_some(())
    });
    child
}
