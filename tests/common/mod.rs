//! Shared helpers for tests that run real peers on loopback: nginx with the
//! RTMP module started on a free port and stopped by PID, and polling with a
//! deadline instead of sleeps.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtmptool::proto::flv;
use serde_json::Value as Json;

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

    /// The master process's PID (to stop it by PID).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops nginx (by PID, at once: SIGTERM) and starts it again with the
    /// same configuration on the same port; returns once it listens.
    pub fn restart(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let conf = self.dir.path().join("nginx.conf");
        self.child = Command::new(require("nginx"))
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(self.dir.path().join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("restart nginx");
        let addr = self.addr;
        wait_for("nginx to listen again", Duration::from_secs(10), || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        });
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
/// `url` (any server); the caller waits for it and stops it by PID.
#[allow(dead_code)]
pub fn ffmpeg_publish_loop_to(url: &str) -> Child {
    Command::new(require("ffmpeg"))
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
        ])
        .arg(media("h264base_aac_10s.flv"))
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ffmpeg")
}

/// ffmpeg publishing testdata's 10 s FLV in a loop, in real time, to
/// `live/NAME` on `nginx`; returns once nginx has logged the publisher.
/// The caller stops the child by PID.
pub fn ffmpeg_publish_loop(nginx: &Nginx, name: &str) -> Child {
    let child = ffmpeg_publish_loop_to(&nginx.url(&format!("live/{name}")));
    wait_for("ffmpeg to publish", Duration::from_secs(10), || {
        nginx
            .log()
            .contains(&format!("publish: name='{name}'"))
            .then_some(())
    });
    child
}

/// The rtmptool binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rtmptool"))
}

/// A file of `testdata/rtmp/media`.
pub fn media(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/rtmp/media")
        .join(name)
}

/// Waits until nginx-rtmp has logged `VERB: name='NAME'` for every name
/// (`play` when a player's play is in place, `publish` for a publisher).
pub fn wait_logged(nginx: &Nginx, verb: &str, names: &[&str]) {
    let what = format!("nginx to log {verb} for {names:?}");
    wait_for(&what, Duration::from_secs(15), || {
        let log = nginx.log();
        names
            .iter()
            .all(|n| log.contains(&format!("{verb}: name='{n}'")))
            .then_some(())
    });
}

/// Timestamp and payload of each tag of one track.
pub type Track = Vec<(u32, Bytes)>;

/// Audio and video tags (timestamp, payload) of FLV bytes.
pub fn tracks_of(what: &str, data: &[u8]) -> (Track, Track) {
    let (_, tags, _) = flv::read_all(data).unwrap_or_else(|e| panic!("{what}: {e}"));
    let pick = |video: bool| {
        tags.iter()
            .filter(|t| if video { t.is_video() } else { t.is_audio() })
            .map(|t| (t.timestamp, t.data.clone()))
            .collect::<Vec<_>>()
    };
    (pick(false), pick(true))
}

/// Audio and video tags (timestamp, payload) of an FLV file.
pub fn tracks(path: &Path) -> (Track, Track) {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    tracks_of(&path.display().to_string(), &data)
}

/// Asserts that `got` holds the source's tags, timestamps shifted by `shift`.
pub fn assert_same(what: &str, source: &Path, got: &Path, shift: u32) {
    let (sa, sv) = tracks(source);
    let (ga, gv) = tracks(got);
    for (kind, s, g) in [("audio", sa, ga), ("video", sv, gv)] {
        assert_eq!(
            s.len(),
            g.len(),
            "{what}: {kind} tag count differs from {}",
            source.display()
        );
        for (i, (a, b)) in s.iter().zip(&g).enumerate() {
            assert_eq!(
                a.0.wrapping_add(shift),
                b.0,
                "{what}: {kind} tag {i} timestamp"
            );
            assert!(a.1 == b.1, "{what}: {kind} tag {i} payload differs");
        }
    }
}

/// Waits for `child` to exit (killed by PID after `limit`) and collects its
/// output.
pub fn wait_output(child: Child, what: &str, limit: Duration) -> Output {
    use std::io::Read;
    let pid = child.id();
    let deadline = Instant::now() + limit;
    let mut child = child;
    // Read while it runs: output larger than a pipe's buffer would
    // otherwise stop the child before it could exit.
    fn drain(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut b);
            }
            b
        })
    }
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            let _ = child.wait();
            let stderr = err.join().unwrap_or_default();
            panic!(
                "{what} did not finish within {limit:?}; stderr: {}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// The `stats` record of a `--json` run.
pub fn stats(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("\"stats\""))
        .unwrap_or_else(|| panic!("no stats record in {text:?}"));
    serde_json::from_str(line).expect("stats JSON")
}

/// A test CA and a leaf certificate for 127.0.0.1/localhost that it signs
/// (webpki refuses a CA certificate as the leaf), made with openssl.
pub struct Certs {
    /// Holds the files.
    pub dir: tempfile::TempDir,
    /// The leaf certificate (PEM).
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// The CA certificate, for `--ca`.
    pub ca: PathBuf,
}

impl Certs {
    /// Makes them.
    pub fn new() -> Certs {
        let openssl = require("openssl");
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("write");
        let run = |args: &str| {
            let st = Command::new(&openssl)
                .current_dir(dir.path())
                .args(args.split(' '))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run openssl");
            assert!(st.success(), "openssl {args}");
        };
        run(
            "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=rtmptool_test_CA -keyout ca.key -out ca.pem",
        );
        run("req -newkey rsa:2048 -nodes -subj /CN=rtmptool_test -keyout key.pem -out leaf.csr");
        run(
            "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out cert.pem",
        );
        Certs {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            ca: dir.path().join("ca.pem"),
            dir,
        }
    }
}

impl Nginx {
    /// nginx-rtmp with the stream module terminating TLS (`certs`) in front
    /// of its RTMP port; returns it and the TLS port, once that listens.
    pub fn start_tls(chunk_size: u32, extra_apps: &str, certs: &Certs) -> (Nginx, u16) {
        Self::start_tls_to(chunk_size, extra_apps, certs, |rtmp| rtmp)
    }

    /// nginx-rtmp with the stream module terminating TLS in front of the
    /// port `backend` makes of its RTMP port; returns it and the TLS port.
    fn start_tls_to(
        chunk_size: u32,
        extra_apps: &str,
        certs: &Certs,
        backend: impl FnOnce(u16) -> u16,
    ) -> (Nginx, u16) {
        let tls_port = free_port();
        let nginx = Nginx::start_with(chunk_size, extra_apps, |rtmp| {
            format!(
                "stream {{ server {{ listen 127.0.0.1:{tls_port} ssl; ssl_certificate {}; ssl_certificate_key {}; proxy_pass 127.0.0.1:{}; }} }}",
                certs.cert.display(),
                certs.key.display(),
                backend(rtmp)
            )
        });
        wait_for("the TLS port", Duration::from_secs(5), || {
            TcpStream::connect(("127.0.0.1", tls_port)).ok()
        });
        (nginx, tls_port)
    }
}

/// TLS (nginx's stream module) in front of any server on `backend`:
/// returns the nginx (stop it by dropping) and the TLS port.
pub fn tls_front(certs: &Certs, backend: u16) -> (Nginx, u16) {
    Nginx::start_tls_to(4096, "", certs, |_| backend)
}

/// FFmpeg playing `url` into the FLV file `out` (stream copy, no stdin,
/// errors only, a 3 s read timeout); the caller sets stderr and spawns.
pub fn ffmpeg_player(ffmpeg: &Path, url: &str, out: &Path) -> Command {
    let mut c = Command::new(ffmpeg);
    c.args([
        "-nostdin",
        "-loglevel",
        "error",
        "-rw_timeout",
        "3000000",
        "-i",
        url,
    ])
    .args(["-c", "copy", "-f", "flv"])
    .arg(out)
    .stdout(Stdio::null());
    c
}

/// The header of a little-endian microsecond pcap with link type `link`.
pub fn pcap_header(link: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(0xa1b2_c3d4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend([0u8; 8]);
    out.extend(262_144u32.to_le_bytes());
    out.extend(link.to_le_bytes());
    out
}

/// A pcap of one TCP conversation (Ethernet/IPv4, SYN and SYN-ACK first),
/// its parts in order (`true`: from the client), each cut into segments of
/// at most 1448 bytes.
pub fn conversation_pcap(parts: &[(bool, &[u8])]) -> Vec<u8> {
    use etherparse::PacketBuilder;
    let mut out = pcap_header(1);
    let (mut cs, mut ss) = (1000u32, 5000u32);
    let mut n = 0u32;
    let mut push = |from_client: bool, flags: u8, payload: &[u8]| {
        let (src, dst, sp, dp, seq, ack) = if from_client {
            ([10, 0, 0, 1], [10, 0, 0, 2], 40000, 1935, cs, ss)
        } else {
            ([10, 0, 0, 2], [10, 0, 0, 1], 1935, 40000, ss, cs)
        };
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(src, dst, 64)
            .tcp(sp, dp, seq, 65535);
        let b = match flags {
            1 => b.syn(),
            2 => b.syn().ack(ack),
            _ => b.ack(ack),
        };
        let mut f = Vec::new();
        b.write(&mut f, payload).unwrap();
        let adv = payload.len() as u32 + u32::from(flags != 0);
        if from_client {
            cs += adv;
        } else {
            ss += adv;
        }
        pcap_record(&mut out, 1_700_000_000, n * 100, &f, f.len() as u32);
        n += 1;
    };
    push(true, 1, &[]);
    push(false, 2, &[]);
    for (from_client, bytes) in parts {
        for seg in bytes.chunks(1448) {
            push(*from_client, 0, seg);
        }
    }
    out
}

/// Appends one pcap record: captured `data`, `orig` bytes on the wire.
pub fn pcap_record(out: &mut Vec<u8>, sec: u32, usec: u32, data: &[u8], orig: u32) {
    out.extend(sec.to_le_bytes());
    out.extend(usec.to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out.extend(orig.to_le_bytes());
    out.extend(data);
}

/// The client bytes (C0 on) of a capture's first connection, reassembled:
/// to replay a captured client against a live server.
pub fn client_bytes(pcap: &Path) -> Vec<u8> {
    use rtmptool::analyze::{Analyzer, Options};
    use rtmptool::capture::Reader;
    use rtmptool::capture::tcp::Dir;
    let f = std::fs::File::open(pcap).expect("open");
    let mut r = Reader::new(f).expect("capture");
    let mut an = Analyzer::new(Options::default());
    let mut bytes = Vec::new();
    while let Some(p) = r.next_packet().expect("packet") {
        an.packet_with_data(&p, &mut |_| {}, &mut |d| {
            if d.dir == Dir::C2s && d.conn_id == 0 {
                bytes.extend_from_slice(d.bytes);
            }
        });
    }
    bytes
}

/// Peak resident memory of a running process (VmHWM), in kB.
pub fn vm_hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("process status")
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Like [`wait_output`], and it must have succeeded (its stderr says why not).
pub fn wait_success(child: Child, what: &str, limit: Duration) -> Output {
    let out = wait_output(child, what, limit);
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `rtmptool --json serve` on a free port, its NDJSON in a file.
pub struct Serve {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Serve {
    pub fn start(extra: &[&str]) -> Serve {
        Serve::start_on(free_port(), extra)
    }

    /// On `port` (a restart on the port of one stopped).
    pub fn start_on(port: u16, extra: &[&str]) -> Serve {
        let dir = tempfile::tempdir().expect("tmp");
        let log = dir.path().join("serve.ndjson");
        let child = bin()
            .args(["--json", "serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(Stdio::piped())
            .spawn()
            .expect("start serve");
        let s = Serve {
            child,
            port,
            log,
            _dir: dir,
        };
        wait_for("serve to listen", Duration::from_secs(10), || {
            s.records()
                .iter()
                .any(|r| r["type"] == "listening")
                .then_some(())
        });
        s
    }

    pub fn url(&self, path: &str) -> String {
        format!("rtmp://127.0.0.1:{}/{path}", self.port)
    }

    pub fn records(&self) -> Vec<Json> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn sessions(&self, event: &str) -> usize {
        self.records()
            .iter()
            .filter(|r| r["type"] == "session" && r["event"] == event)
            .count()
    }

    pub fn wait_sessions(&self, event: &str, n: usize) {
        wait_for(
            &format!("{n} {event} sessions"),
            Duration::from_secs(20),
            || (self.sessions(event) >= n).then_some(()),
        );
    }

    pub fn findings(&self) -> Vec<Json> {
        self.records()
            .into_iter()
            .filter(|r| r["type"] == "finding")
            .collect()
    }

    /// Ctrl-C, then the records (every connection closed, findings out).
    pub fn stop(mut self) -> Vec<Json> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                assert!(st.success(), "serve exited with {st}");
                break;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.records()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// The tags of an FLV file still being written: those complete so far
/// (`rtmptool play -o F` writes `F.part` until it ends).
pub fn tags_so_far(path: &Path) -> Vec<flv::Tag> {
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    let data = std::fs::read(&part)
        .or_else(|_| std::fs::read(path))
        .unwrap_or_default();
    let mut r = flv::Reader::new();
    r.push(&data);
    let mut tags = Vec::new();
    while let Ok(Some(ev)) = r.poll() {
        if let flv::FlvEvent::Tag(t) = ev {
            tags.push(t);
        }
    }
    tags
}

/// A stream whose tracks each need their own configuration, from the
/// publisher of `testdata/ertmp/ertmp_onetrack_modex_opus.pcap`: E-RTMP HEVC
/// as track 2 (OneTrack), Opus as audio track 1 (OneTrack) beside legacy AAC
/// (the default track 0), each with its sequence start.
pub struct Multitrack {
    /// As FLV: metadata and the three sequence starts once, then the frames
    /// `loops` times, each loop's timestamps after the last's.
    pub flv: Vec<u8>,
    /// The sequence starts (tag type, body) in the order sent.
    pub configs: Vec<(flv::TagType, Bytes)>,
}

pub fn ertmp_multitrack(loops: u32) -> Multitrack {
    use rtmptool::analyze::{Analyzer, Options, RecordKind};
    use rtmptool::capture::Reader;
    use rtmptool::capture::tcp::Dir;
    use rtmptool::proto::message::{Message, MessageType};
    use rtmptool::proto::stream_config::classify;
    let pcap =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/ertmp/ertmp_onetrack_modex_opus.pcap");
    let mut an = Analyzer::new(Options::default());
    let mut r = Reader::new(std::fs::File::open(&pcap).expect("capture")).expect("pcap");
    let mut per_conn: std::collections::HashMap<u64, Vec<(MessageType, u32, Bytes)>> =
        Default::default();
    let mut publisher = None;
    while let Some(p) = r.next_packet().expect("packet") {
        an.packet(&p, &mut |rec| {
            if rec.dir != Some(Dir::C2s) {
                return;
            }
            if let RecordKind::Message { raw, decoded } = rec.kind {
                let t = raw.header.msg_type;
                if [
                    MessageType::AUDIO,
                    MessageType::VIDEO,
                    MessageType::DATA_AMF0,
                ]
                .contains(&t)
                {
                    per_conn.entry(rec.conn_id).or_default().push((
                        t,
                        raw.header.timestamp,
                        raw.payload.clone(),
                    ));
                }
                if let Ok(Message::Command(c)) = decoded
                    && c.name() == "publish"
                {
                    publisher = Some(rec.conn_id);
                }
            }
        });
    }
    let msgs = per_conn
        .remove(&publisher.expect("a publish in the capture"))
        .expect("the publisher's messages");
    let tag_type = |t: MessageType| match t {
        MessageType::AUDIO => flv::TagType::AUDIO,
        MessageType::VIDEO => flv::TagType::VIDEO,
        _ => flv::TagType::SCRIPT,
    };
    let (mut head, mut frames, mut configs) = (Vec::new(), Vec::new(), Vec::new());
    for (t, ts, body) in msgs {
        let media = t != MessageType::DATA_AMF0;
        if media && classify(t == MessageType::VIDEO, &body).1.is_none() {
            frames.push((tag_type(t), ts, body));
            continue;
        }
        // A script tag holds onMetaData without the @setDataFrame before it.
        let body = match body.strip_prefix(b"\x02\x00\x0d@setDataFrame".as_slice()) {
            Some(rest) if !media => Bytes::copy_from_slice(rest),
            _ => body,
        };
        if media {
            configs.push((tag_type(t), body.clone()));
        }
        head.push((tag_type(t), ts, body));
    }
    assert_eq!(configs.len(), 3, "HEVC, Opus and AAC sequence starts");
    let span = frames.iter().map(|f| f.1).max().unwrap_or(0) + 40;
    let mut out = bytes::BytesMut::new();
    let mut w = flv::Writer::new();
    w.write_header(&flv::FlvHeader::new(true, true), &mut out);
    for (t, ts, body) in &head {
        w.write_tag_parts(*t, *ts, 0, body, &mut out).expect("tag");
    }
    for k in 0..loops {
        for (t, ts, body) in &frames {
            w.write_tag_parts(*t, ts + k * span, 0, body, &mut out)
                .expect("tag");
        }
    }
    Multitrack {
        flv: out.to_vec(),
        configs,
    }
}

/// Asserts that `tags` (as a player wrote them) hold every configuration
/// of `m`, byte for byte, before the first frame of any track.
pub fn assert_configured_first(what: &str, m: &Multitrack, tags: &[flv::Tag]) {
    use rtmptool::proto::stream_config::classify;
    let first_frame = tags
        .iter()
        .position(|t| (t.is_audio() || t.is_video()) && classify(t.is_video(), &t.data).1.is_none())
        .unwrap_or_else(|| panic!("{what}: no frame among {} tags", tags.len()));
    for (t, body) in &m.configs {
        assert!(
            tags[..first_frame]
                .iter()
                .any(|g| g.tag_type == *t && g.data == *body),
            "{what}: the {} configuration {:02x?}… is not before the first frame (tag {first_frame})",
            t.name(),
            &body[..body.len().min(8)]
        );
    }
}

/// A server on a free port that accepts connections and never answers:
/// every client stays in its handshake.
pub fn silent_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

/// One RTMP message as chunks of `chunk` bytes: a full (type 0) header,
/// then type 3 continuations. Timestamps from 0xFFFFFF on are sent as
/// 0xFFFFFE (no extended timestamp).
pub fn chunked(
    chunk: usize,
    csid: u8,
    msg_type: u8,
    ts: u32,
    stream_id: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = Vec::with_capacity(payload.len() + payload.len() / chunk + 16);
    b.push(csid);
    b.extend_from_slice(&ts.min(0xFF_FFFE).to_be_bytes()[1..]);
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    b.push(msg_type);
    b.extend_from_slice(&stream_id.to_le_bytes());
    for (i, c) in payload.chunks(chunk).enumerate() {
        if i > 0 {
            b.push(0xc0 | csid);
        }
        b.extend_from_slice(c);
    }
    b
}

/// The body of an aggregate message (type 22, RTMP 1.0 §7.1.6) holding
/// `tags` as FLV tags, each followed by its back pointer.
pub fn aggregate_body(tags: &[&flv::Tag]) -> Vec<u8> {
    let mut body = Vec::new();
    for t in tags {
        body.push(t.tag_type.0);
        body.extend_from_slice(&(t.data.len() as u32).to_be_bytes()[1..]);
        body.extend_from_slice(&t.timestamp.to_be_bytes()[1..]);
        body.push((t.timestamp >> 24) as u8);
        body.extend_from_slice(&[0, 0, 0]);
        body.extend_from_slice(&t.data);
        body.extend_from_slice(&(11 + t.data.len() as u32).to_be_bytes());
    }
    body
}

/// `rtmptool ARGS` on a terminal (a pty made by `script`): what it wrote
/// there, stdout and stderr together.
pub fn on_a_terminal(args: &str) -> Output {
    let script = require("script");
    let cmd = format!("{} {args}", env!("CARGO_BIN_EXE_rtmptool"));
    Command::new(script)
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("run script")
}
