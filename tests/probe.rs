//! `rtmptool probe` against real peers on loopback, started by the tests and
//! stopped by PID: nginx-rtmp (connect, publish, play; play of a stream that
//! ffmpeg publishes), nginx's stream module terminating TLS with a
//! self-signed certificate made by `openssl`, and hand-made misbehaving
//! listeners (silent, HTTP, closed port).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

fn rtmptool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rtmptool"))
        .args(args)
        .output()
        .expect("run rtmptool")
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn nginx_connect_publish_play() {
    let nginx = common::Nginx::start(8192, "");
    for mode in [None, Some("--publish"), Some("--play")] {
        let url = nginx.url("live/probekey123");
        let mut args = vec!["--json", "--timeout", "3s", "probe", &url];
        args.extend(mode);
        let out = rtmptool(&args);
        assert_eq!(out.status.code(), Some(0), "{mode:?}: {}", stderr(&out));
        let r = &json_lines(&out)[0];
        assert_eq!(r["type"], "probe");
        assert_eq!(r["ok"], true);
        assert_eq!(r["phase"], Value::Null);
        assert_eq!(r["server"]["handshake"], "digest");
        assert_eq!(r["server"]["version"], "13.14.10.13");
        assert_eq!(r["server"]["digest_verified"], true);
        assert_eq!(r["server"]["chunk_size"], 8192, "{r}");
        assert_eq!(r["server"]["window_ack_size"], 5_000_000);
        assert_eq!(r["server"]["fms_ver"], "FMS/3,0,1,123");
        // The stream key is redacted.
        assert!(r["url"].as_str().unwrap().ends_with("/live/pr…"), "{r}");
        for k in ["tcp_connect_ms", "handshake_ms", "connect_ms", "total_ms"] {
            assert!(r[k].as_f64().unwrap() >= 0.0, "{k}: {r}");
        }
        if mode == Some("--publish") {
            assert_eq!(
                r["server"]["on_status"][0]["code"],
                "NetStream.Publish.Start"
            );
            assert!(r["publish_ms"].as_f64().is_some());
        }
    }
    // The publish was closed cleanly: nginx logged the deleteStream.
    assert!(nginx.log().contains("deleteStream"), "{}", nginx.log());
}

#[test]
fn play_of_an_ffmpeg_stream_reports_time_to_first_video() {
    let nginx = common::Nginx::start(4096, "");
    let url = nginx.url("live/cam");
    let mut child = common::ffmpeg_publish_loop(&nginx, "cam");
    let out = rtmptool(&["--json", "--timeout", "5s", "probe", "--play", &url]);
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = &json_lines(&out)[0];
    assert_eq!(
        r["server"]["on_status"][0]["code"], "NetStream.Play.Start",
        "{r}"
    );
    let v = r["first_video_ms"].as_f64().expect("first_video_ms");
    assert!((0.0..5000.0).contains(&v), "{r}");
    assert!(r["first_audio_ms"].as_f64().is_some(), "{r}");
}

#[test]
fn rtmps_through_nginx_stream_tls() {
    let certs = common::Certs::new();
    let (nginx, tls_port) = common::Nginx::start_tls(4096, "", &certs);
    let url = format!("rtmps://127.0.0.1:{tls_port}/live/s");
    let ca = certs.ca.to_str().unwrap();
    let out = rtmptool(&["--json", "--timeout", "3s", "probe", "--ca", ca, &url]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = &json_lines(&out)[0];
    assert!(r["tls_ms"].as_f64().is_some(), "{r}");
    assert!(
        r["tls"]["version"].as_str().unwrap().starts_with("TLSv1."),
        "{r}"
    );
    assert!(!r["tls"]["cipher"].as_str().unwrap().is_empty());
    assert_eq!(r["tls"]["subject"], "CN=rtmptool_test");
    assert_eq!(r["tls"]["issuer"], "CN=rtmptool_test_CA");
    assert_eq!(r["server"]["version"], "13.14.10.13");

    // Without --ca: the self-signed certificate is not trusted.
    let out = rtmptool(&["--timeout", "3s", "probe", &url]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("not trusted"), "{}", stderr(&out));

    // --insecure works and says so loudly.
    let out = rtmptool(&["--timeout", "3s", "probe", "--insecure", &url]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("NOT verified"));
    drop(nginx);
}

/// A listener that accepts connections and runs `serve` on each, in a thread.
fn listener<F: Fn(std::net::TcpStream) + Send + Copy + 'static>(serve: F) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || serve(s));
        }
    });
    port
}

#[test]
fn silent_listener_is_a_handshake_timeout() {
    let port = listener(|mut s| {
        // Read and say nothing until the client leaves.
        let mut buf = [0u8; 4096];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    });
    let url = format!("rtmp://127.0.0.1:{port}/live/x");
    let t = Instant::now();
    let out = rtmptool(&["--timeout", "1s", "probe", &url]);
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(e.contains("handshake failed"), "{e}");
    assert!(e.contains("sent nothing"), "{e}");
    assert!(e.contains("not answer a TLS ClientHello"), "{e}");
    // The timeout plus the short TLS check (a quarter of it).
    assert!(took < Duration::from_millis(1800), "{took:?}");
}

#[test]
fn http_listener_is_named() {
    // A status line, an HTML page with no status line (Python's http.server
    // answers a binary request so), an SSH banner sent before any request.
    for (answer, after_request, want) in [
        (
            &b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"[..],
            true,
            "an HTTP server answered",
        ),
        (
            &b"<!DOCTYPE HTML>\n<html><head><title>Error response</title>"[..],
            true,
            "an HTTP server answered (an HTML page)",
        ),
        (
            &b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n"[..],
            false,
            "an SSH server answered",
        ),
    ] {
        let port = listener(move |mut s| {
            let mut buf = [0u8; 4096];
            if after_request {
                let _ = s.read(&mut buf);
            }
            let _ = s.write_all(answer);
            std::thread::sleep(Duration::from_millis(500));
        });
        let url = format!("rtmp://127.0.0.1:{port}/live/x");
        let out = rtmptool(&["--timeout", "2s", "probe", &url]);
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
        assert!(stderr(&out).contains(want), "{}", stderr(&out));
    }
}

#[test]
fn closed_port_is_a_network_error() {
    let port = common::free_port();
    let url = format!("rtmp://127.0.0.1:{port}/live/x");
    let out = rtmptool(&["--json", "probe", &url]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let r = &json_lines(&out)[0];
    assert_eq!(r["ok"], false);
    assert_eq!(r["phase"], "tcp_connect");
    assert!(r["error"].as_str().unwrap().contains("refused"));
}

#[test]
fn publish_of_a_busy_stream_is_refused() {
    let nginx = common::Nginx::start(4096, "");
    let url = nginx.url("live/busy");
    let mut child = common::ffmpeg_publish_loop(&nginx, "busy");
    let out = rtmptool(&["--timeout", "3s", "probe", "--publish", &url]);
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(e.contains("NetStream.Publish.BadName"), "{e}");
    assert!(e.contains("already being published"), "{e}");
}

fn connect_median(url: &str, quickack: &str) -> f64 {
    let out = rtmptool(&[
        "--json",
        "--timeout",
        "3s",
        "probe",
        "--count",
        "20",
        "--interval",
        "0",
        "--quickack",
        quickack,
        url,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 21);
    let s = &lines[20];
    assert_eq!(s["type"], "probe_summary");
    assert_eq!(s["sent"], 20);
    assert_eq!(s["ok"], 20);
    s["connect_ms"]["median"].as_f64().unwrap()
}

#[test]
fn connect_phase_median_is_at_most_2ms() {
    let nginx = common::Nginx::start(4096, "");
    let url = nginx.url("live/x");
    let on = connect_median(&url, "on");
    let off = connect_median(&url, "off");
    eprintln!("connect phase median over 20 probes: quickack on {on} ms, off {off} ms");
    assert!(on <= 2.0, "connect median {on} ms (quickack off: {off} ms)");
}

/// The first certificate every engineer makes, `openssl req -x509` (CA:TRUE,
/// no subjectAltName), served by nginx's TLS front: `--ca` with it pins it;
/// without `--ca` the rejection is one line naming the issuer and `--ca`.
#[test]
fn self_signed_req_x509_is_pinned_with_ca() {
    let openssl = common::require("openssl");
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new(openssl)
        .current_dir(dir.path())
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=rtmptool_selfsigned",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let certs = common::Certs {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
        ca: dir.path().join("cert.pem"),
        dir,
    };
    let (nginx, tls_port) = common::Nginx::start_tls(4096, "", &certs);
    let url = format!("rtmps://127.0.0.1:{tls_port}/live/selfsignedkey");
    let ca = certs.ca.to_str().unwrap();
    let out = rtmptool(&["--json", "--timeout", "3s", "probe", "--ca", ca, &url]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = &json_lines(&out)[0];
    assert_eq!(r["tls"]["subject"], "CN=rtmptool_selfsigned", "{r}");

    let out = rtmptool(&["--timeout", "3s", "probe", &url]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let e = stderr(&out);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.contains("not trusted"), "{e}");
    assert!(e.contains("issuer CN=rtmptool_selfsigned"), "{e}");
    assert!(e.contains("--ca"), "{e}");
    assert!(!e.contains("selfsignedkey"), "{e}");
    drop(nginx);
}

/// rtmps:// to a port that answers the ClientHello in plain text: the error
/// names what answered (an HTTP server, a plain RTMP server), and never
/// suggests a plain rtmp:// port to an HTTP server.
#[test]
fn rtmps_to_a_plain_port_names_what_answered() {
    for (answer, want, not) in [
        (
            &b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"[..],
            "an HTTP server answered",
            "rtmp://",
        ),
        (&[3u8; 1537][..], "use rtmp://", "HTTP"),
    ] {
        let port = listener(move |mut s| {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(answer);
            std::thread::sleep(Duration::from_millis(500));
        });
        let url = format!("rtmps://127.0.0.1:{port}/live/x");
        let out = rtmptool(&["--timeout", "2s", "probe", &url]);
        assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
        let e = stderr(&out);
        assert!(e.contains(want), "{e}");
        let last = e.lines().last().unwrap_or_default();
        let tail = last.split("tls failed:").nth(1).unwrap_or_default();
        assert!(!tail.contains(not), "{e}");
    }
}

/// `--enhanced` announces E-RTMP in connect, as OBS and FFmpeg do for HEVC,
/// AV1 or Opus. serve states its capabilities back (the E-RTMP v2 spec's
/// "the server SHOULD state its support"); nginx-rtmp, which knows nothing
/// of E-RTMP, still accepts the connect and states nothing; and without
/// the flag serve answers as before.
#[test]
fn enhanced_connect_shows_what_the_server_states() {
    let serve = common::Serve::start(&[]);
    let nginx = common::Nginx::start(4096, "");
    let probe = |url: &str, enhanced: bool, json: bool| {
        let mut args = vec!["--timeout", "3s", "probe", url];
        if json {
            args.insert(0, "--json");
        }
        if enhanced {
            args.push("--enhanced");
        }
        let out = rtmptool(&args);
        assert_eq!(out.status.code(), Some(0), "{url}: {}", stderr(&out));
        out
    };
    let stated = |out: &Output| json_lines(out)[0]["server"]["enhanced"].clone();
    let e = stated(&probe(&serve.url("live/k"), true, true));
    assert_eq!(e["video_fourcc_info_map"]["*"], 4, "{e}");
    assert_eq!(e["audio_fourcc_info_map"]["*"], 4, "{e}");
    assert_eq!(e["caps_ex"], 0x0e, "{e}");
    assert_eq!(e["fourcc_list"][0], "*", "{e}");
    let text =
        String::from_utf8_lossy(&probe(&serve.url("live/k"), true, false).stdout).into_owned();
    assert!(
        text.contains("e-rtmp")
            && text.contains("video *=forward")
            && text.contains("multitrack+modex"),
        "{text}"
    );
    assert_eq!(
        stated(&probe(&serve.url("live/k"), false, true)),
        Value::Null
    );
    assert_eq!(
        stated(&probe(&nginx.url("live/k"), true, true)),
        Value::Null
    );
    let text =
        String::from_utf8_lossy(&probe(&nginx.url("live/k"), true, false).stdout).into_owned();
    assert!(text.contains("not stated by the server"), "{text}");
}
