//! The README's "no server on the machine" example, as written: `serve`,
//! `play -o - | ffprobe -`, `publish` of a shipped FLV. No nginx.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{bin, free_port, media, require, wait_for, wait_output};

#[test]
fn serve_publish_play_into_ffprobe() {
    let ffprobe = require("ffprobe");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut serve = bin()
        .args(["serve", "--listen", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    wait_for("serve to listen", Duration::from_secs(10), || {
        std::net::TcpStream::connect(&addr).ok()
    });
    let url = format!("rtmp://{addr}/live/demo");
    let mut play = bin()
        .args(["play", &url, "-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("play");
    let probe = Command::new(ffprobe)
        .args(["-v", "error", "-show_streams", "-"])
        .stdin(play.stdout.take().expect("play stdout"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffprobe");
    // No wait for the player: one that comes after the publisher starts
    // gets the GOP cache (metadata, sequence headers, a key frame first),
    // and the paced publish lasts 10 s.
    let publish = bin()
        .args(["publish"])
        .arg(media("h264base_aac_10s.flv"))
        .arg(&url)
        .output()
        .expect("publish");
    assert!(
        publish.status.success(),
        "{}",
        String::from_utf8_lossy(&publish.stderr)
    );
    let po = wait_output(play, "play", Duration::from_secs(20));
    assert!(po.status.success(), "play failed");
    let fo = wait_output(probe, "ffprobe", Duration::from_secs(20));
    let text = String::from_utf8_lossy(&fo.stdout);
    assert!(
        fo.status.success() && fo.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&fo.stderr)
    );
    assert!(
        text.contains("codec_name=h264") && text.contains("codec_name=aac"),
        "{text}"
    );
    let _ = Command::new("kill")
        .args(["-INT", &serve.id().to_string()])
        .status();
    let st = serve.wait().expect("serve");
    assert!(st.success(), "serve exited with {st}");
}
