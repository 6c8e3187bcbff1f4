//! `probe rtmfp://`: the IHello it sends has the structure of those in
//! `ihello_probe_tcserver.pcap` (ground truth beside it), and against a
//! loopback responder built from the same codec it reports the RHello
//! (cookie, certificate, fingerprint), a Redirect, the full handshake with
//! DH groups 2 and 14, and exits 4 (no answer, unexpected redirect) or 9
//! (malformed answer).

mod common;

use std::io::BufRead;
use std::net::UdpSocket;
use std::sync::{Arc, Mutex};

use rtmptool::proto::rtmfp::chunk::{ChunkBody, write_chunk, write_header};
use rtmptool::proto::rtmfp::crypto::{DirKeys, seal_flash};
use rtmptool::proto::rtmfp::datagram::open_default;
use rtmptool::proto::rtmfp::handshake::{
    EPD_ANCILLARY, EPD_FINGERPRINT, EPD_HOSTNAME, Responder, ResponderEvent, epd, fingerprint,
    ihello,
};
use rtmptool::proto::rtmfp::vlu::{Address, read_options};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn lines(name: &str) -> Vec<serde_json::Value> {
    std::io::BufReader::new(std::fs::File::open(format!("testdata/rtmfp/{name}")).unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect()
}

#[test]
fn ihello_is_byte_for_byte_the_captured_one() {
    // The prober of the capture sent these EPDs; ours, with the same tag and
    // timestamp, must be the same packet.
    for t in lines("ihello_probe_tcserver.truth.jsonl") {
        let c = &t["chunks"][0];
        if c["name"] != "IHello" {
            continue;
        }
        let e = unhex(c["fields"]["epd"].as_str().unwrap());
        let (opts, _, _) = read_options(&e).unwrap();
        let (ty, val) = &opts[0];
        let mine = match *ty {
            EPD_ANCILLARY => epd(EPD_ANCILLARY, val),
            EPD_FINGERPRINT => epd(EPD_FINGERPRINT, val),
            EPD_HOSTNAME => epd(EPD_HOSTNAME, val),
            other => panic!("EPD option {other}"),
        };
        assert_eq!(mine, e);
        let tag: [u8; 16] = unhex(c["fields"]["tag"].as_str().unwrap())
            .try_into()
            .unwrap();
        let d = ihello(&mine, &tag, t["ts"].as_u64().unwrap() as u16);
        assert_eq!(d.len() as u64, t["udp_payload_len"].as_u64().unwrap());
        let mut buf = Vec::new();
        let o = open_default(&d, &mut buf).unwrap();
        let p = o.packet.unwrap();
        let packet = &o.plain[..p.len];
        assert_eq!(hex(packet), t["packet_hex"].as_str().unwrap());
        assert_eq!(hex(&o.margin), t["margin_hex"].as_str().unwrap());
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn fingerprint_of_captured_certificate() {
    let r = lines("ihello_probe_tcserver.results.jsonl");
    let want = r.last().unwrap()["tcserver_fingerprint"].as_str().unwrap();
    let cert = unhex(r[0]["cert"].as_str().unwrap());
    assert_eq!(hex(&fingerprint(&cert)), want);
}

/// A responder on a loopback port, answering from a thread; records the
/// datagrams it got.
fn serve(resp: Responder, garbage: bool) -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 8192];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            g.lock().unwrap().push(buf[..n].to_vec());
            if garbage {
                let mut p = Vec::new();
                write_header(&mut p, 0x0b, Some(1), None);
                write_chunk(&mut p, 0x70, &[0x20, 1]);
                let _ = sock.send_to(&seal_flash([0; 4], &p, 0, &DirKeys::default_key()), from);
                continue;
            }
            match resp.handle(&buf[..n], 9) {
                Ok(ResponderEvent::Reply(d)) | Ok(ResponderEvent::Open(d, _)) => {
                    let _ = sock.send_to(&d, from);
                }
                _ => {}
            }
        }
    });
    (port, got)
}

fn responder() -> Responder {
    Responder::new(
        Some("srv.test"),
        &[14, 2],
        [5; 32],
        [3, 0, 0, 0],
        vec![0x4d; 40],
        vec![7; 64],
    )
}

fn probe(args: &[&str]) -> (i32, Vec<serde_json::Value>, String) {
    let out = common::bin().args(args).output().unwrap();
    let recs = String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.code().unwrap(),
        recs,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn probe_reports_rhello_and_sends_the_url_as_epd() {
    let resp = responder();
    let fp = hex(&fingerprint(&resp.cert));
    let (port, got) = serve(resp, false);
    let url = format!("rtmfp://127.0.0.1:{port}/live");
    let (code, recs, err) = probe(&["--json", "probe", &url]);
    assert_eq!(code, 0, "{err}");
    let r = &recs[0];
    assert_eq!(r["ok"], true);
    assert_eq!(r["server"]["fingerprint"], fp);
    assert_eq!(r["server"]["hostname"], "srv.test");
    assert_eq!(
        r["server"]["ephemeral_dh_groups"],
        serde_json::json!([14, 2])
    );
    assert!(r["rhello_ms"].as_f64().unwrap() >= 0.0);
    // The datagram: one IHello, EPD = ancillary data with the URL, 16-byte tag.
    let d = got.lock().unwrap()[0].clone();
    let mut buf = Vec::new();
    let p = open_default(&d, &mut buf).unwrap().packet.unwrap();
    assert_eq!(p.flags, 0x0b);
    assert_eq!(p.chunks.len(), 1);
    let ChunkBody::IHello { epd: e, tag } = &p.chunks[0].body else {
        panic!()
    };
    assert_eq!(e, &epd(EPD_ANCILLARY, url.as_bytes()));
    assert_eq!(tag.len(), 16);
    // The fingerprint form selects it too.
    let (code, recs, _) = probe(&["--json", "probe", &url, "--fingerprint", &fp]);
    assert_eq!(code, 0);
    assert_eq!(recs[0]["ok"], true);
}

#[test]
fn probe_full_handshake_groups_2_and_14() {
    let (port, _) = serve(responder(), false);
    let url = format!("rtmfp://127.0.0.1:{port}/live");
    for g in ["2", "14"] {
        let (code, recs, err) = probe(&[
            "--json",
            "probe",
            &url,
            "--handshake",
            "full",
            "--dh-group",
            g,
        ]);
        assert_eq!(code, 0, "{err}");
        let r = &recs[0];
        assert_eq!(r["server"]["dh_group"], g.parse::<u64>().unwrap());
        assert_eq!(r["server"]["responder_session_id"], "03000000");
        assert_eq!(r["server"]["hmac"], serde_json::json!({"tx": 16, "rx": 16}));
        assert!(r["keying_ms"].as_f64().is_some());
    }
}

#[test]
fn probe_errors_and_redirects() {
    // Wrong hostname: no answer, exit 4.
    let (port, _) = serve(responder(), false);
    let url = format!("rtmfp://127.0.0.1:{port}/live");
    let (code, recs, err) = probe(&[
        "--json",
        "--timeout",
        "1200ms",
        "probe",
        &url,
        "--hostname",
        "other.test",
    ]);
    assert_eq!(code, 4, "{err}");
    assert_eq!(recs[0]["ok"], false);
    assert_eq!(recs[0]["phase"], "ihello");
    assert!(err.contains("no answer"), "{err}");
    // A redirect: reported (exit 0), but unexpected with --handshake full (4).
    let mut r = responder();
    r.redirect = Some(vec![Address {
        addr: "127.0.0.1:19400".parse().unwrap(),
        origin: 0,
    }]);
    let (port, _) = serve(r, false);
    let url = format!("rtmfp://127.0.0.1:{port}/live");
    let (code, recs, _) = probe(&["--json", "probe", &url]);
    assert_eq!(code, 0);
    assert_eq!(recs[0]["server"]["redirect"][0]["addr"], "127.0.0.1:19400");
    let (code, _, err) = probe(&["--json", "probe", &url, "--handshake", "full"]);
    assert_eq!(code, 4);
    assert!(err.contains("redirected to 127.0.0.1:19400"), "{err}");
    // A malformed RHello: exit 9.
    let (port, _) = serve(responder(), true);
    let url = format!("rtmfp://127.0.0.1:{port}/live");
    let (code, _, err) = probe(&["probe", &url]);
    assert_eq!(code, 9, "{err}");
}

/// The URL's secrets (user info, stream key, query values) stay out of
/// text and JSON (CLI.md), though the EPD carries the URL whole to the
/// server; `--count` ends with a `probe_summary` as rtmp:// probes do.
#[test]
fn probe_keeps_secrets_and_summarises_several_attempts() {
    let (port, got) = serve(responder(), false);
    let url =
        format!("rtmfp://alice:hunter2pw@127.0.0.1:{port}/live/kq7secretkey?token=tok3n5ecret&x");
    for json in [true, false] {
        let mut args = vec!["probe", "--count", "3", "-i", "50ms", url.as_str()];
        if json {
            args.insert(0, "--json");
        }
        let out = common::bin().args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for secret in ["alice", "hunter2pw", "kq7secretkey", "tok3n5ecret"] {
            assert!(!all.contains(secret), "{secret} leaked: {all}");
        }
        if json {
            let recs: Vec<serde_json::Value> = all
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(recs.len(), 4, "{all}");
            let s = &recs[3];
            assert_eq!(s["type"], "probe_summary");
            assert_eq!(
                (s["sent"].as_u64(), s["ok"].as_u64()),
                (Some(3), Some(3)),
                "{s}"
            );
            assert!(s["rhello_ms"]["avg"].as_f64().is_some(), "{s}");
        } else {
            assert!(all.contains("--- 3 attempts, 3 ok, 0% failed ---"), "{all}");
            assert!(all.contains("rtmfp://***@127.0.0.1"), "{all}");
        }
    }
    // The server was sent the URL whole (the EPD).
    let d = got.lock().unwrap()[0].clone();
    let mut buf = Vec::new();
    let p = open_default(&d, &mut buf).unwrap().packet.unwrap();
    let ChunkBody::IHello { epd: e, .. } = &p.chunks[0].body else {
        panic!()
    };
    assert_eq!(e, &epd(EPD_ANCILLARY, url.as_bytes()));
}

/// Ctrl-C while an IHello waits for an answer: 130 before any attempt
/// completed, the summary of those done with `--count` (it killed the
/// process by signal, no word said).
#[test]
fn ctrl_c_ends_an_rtmfp_probe() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "rtmfp://127.0.0.1:{}/live/key",
        silent.local_addr().unwrap().port()
    );
    let run = |extra: &[&str]| {
        let child = common::bin()
            .args(extra)
            .args(["probe", &url])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // It has sent its first IHello when the socket has one to read.
        silent
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut b = [0u8; 2048];
        silent.recv_from(&mut b).expect("an IHello");
        let _ = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        common::wait_output(child, "probe", std::time::Duration::from_secs(10))
    };
    let o = run(&["--timeout", "20s"]);
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("interrupted"));
}

/// A server that answers every IHello with a datagram that opens but holds
/// no RHello that decodes (an RHello chunk whose length overruns the
/// packet): it answered, so this is a malformed answer (exit 9), not "no
/// RTMFP server there" (exit 4, as before).
#[test]
fn an_answer_that_does_not_decode_is_malformed_not_silence() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 8192];
        while let Ok((_, from)) = sock.recv_from(&mut buf) {
            let mut p = Vec::new();
            write_header(&mut p, 0x0b, Some(1), None);
            // Chunk 0x70 (RHello) claiming 0xffff bytes, holding 4.
            p.extend_from_slice(&[0x70, 0xff, 0xff, 1, 2, 3, 4]);
            let _ = sock.send_to(&seal_flash([0; 4], &p, 0, &DirKeys::default_key()), from);
        }
    });
    let url = format!("rtmfp://127.0.0.1:{port}/live");
    let (code, recs, err) = probe(&["--json", "--timeout", "1500ms", "probe", &url]);
    assert_eq!(code, 9, "{err}");
    assert_eq!(recs[0]["phase"], "handshake", "{recs:?}");
    assert!(err.contains("none an RHello"), "{err}");
}
