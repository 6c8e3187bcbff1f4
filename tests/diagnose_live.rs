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
