//! `rtmptool load` against nginx-rtmp started by the test: every player gets
//! every frame of its stream (counted by the same MediaCounter rule as the
//! FLV), failures are classified when nginx is stopped mid-run, and
//! `--fail-if` sets exit 8.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Nginx, bin, media, wait_output};
use rtmptool::load::SharedFlv;

fn summary(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .find(|l| l.contains("\"load_summary\""))
        .unwrap_or_else(|| panic!("no load_summary in {text:?}"));
    serde_json::from_str(line).expect("summary JSON")
}

#[test]
fn every_player_gets_every_frame() {
    let nginx = Nginx::start(4096, "");
    let file = media("h264base_aac_10s.flv");
    let flv = SharedFlv::read(&file).unwrap();
    let child = bin()
        .args(["--json", "--timeout", "20s", "load"])
        .arg(nginx.url("live/s{i}"))
        .args(["--players", "200", "--publishers", "5", "--ramp", "400"])
        .arg("--flv")
        .arg(&file)
        .arg("--delay-probe")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, "load 200 players", Duration::from_secs(90));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    let s = summary(&out.stdout);
    assert_eq!(s["players"], 200, "{s}");
    assert_eq!(s["publishers"], 5, "{s}");
    assert_eq!(s["failed"], 0, "{s}");
    let streams = s["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 5);
    for st in streams {
        assert_eq!(st["players"], 40, "{st}");
        assert_eq!(
            st["published"]["video_frames"], flv.frames.video_frames,
            "{st}"
        );
        assert_eq!(
            st["published"]["audio_frames"], flv.frames.audio_frames,
            "{st}"
        );
        for k in ["video_frames", "audio_frames"] {
            let want = st["published"][k].as_u64().unwrap();
            assert_eq!(st[k]["min"], want, "{k} of {st}");
            assert_eq!(st[k]["max"], want, "{k} of {st}");
        }
        assert_eq!(st["ended"], 40, "{st}");
    }
    assert!(s["connect_ms"]["count"].as_u64().unwrap() == 205, "{s}");
    assert!(s["first_frame_ms"]["count"].as_u64().unwrap() == 200, "{s}");
    // About 10 probes a second per stream, each seen by 40 players.
    assert!(
        s["delay_ms"]["count"].as_u64().unwrap() > 5 * 40 * 50,
        "{s}"
    );
    assert!(s["delay_ms"]["p99"].as_f64().unwrap() < 2000.0, "{s}");
    // Stream keys are never printed in full.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("/live/s1\""), "{text}");
}

#[test]
fn failures_are_classified_when_the_server_stops() {
    let nginx = Nginx::start(4096, "");
    let mut child = bin()
        .args(["--json", "--timeout", "3s", "load"])
        .arg(nginx.url("live/x{i}"))
        .args(["--players", "20", "--publishers", "2", "--ramp", "200"])
        .args(["--duration", "60s", "--flv"])
        .arg(media("h264base_aac_10s.flv"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Wait (bounded) until everyone plays or publishes, then stop nginx by PID
    // (TERM: the master stops its worker at once, closing every connection).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "load never got going: {lines:?}");
        let Ok(line) = rx.recv_timeout(left) else {
            panic!("load stopped early: {lines:?}");
        };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        lines.push(line);
        if v["playing"] == 20 && v["publishing"] == 2 {
            break;
        }
    }
    let pid = nginx.pid().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = wait_output(child, "load after nginx stopped", Duration::from_secs(30));
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    assert_eq!(out.status.code(), Some(3), "{lines:?}");
    let s: serde_json::Value = serde_json::from_str(
        lines
            .iter()
            .find(|l| l.contains("load_summary"))
            .expect("summary"),
    )
    .unwrap();
    assert_eq!(s["failed"], 22, "{s}");
    let failures = s["failures"].as_object().unwrap();
    let mut total = 0;
    for (key, f) in failures {
        assert!(
            key.starts_with("play: ") || key.starts_with("publish: "),
            "{key}"
        );
        assert_eq!(f["exit"], 3, "{key}");
        assert_eq!(f["class"], "network", "{key}");
        total += f["count"].as_u64().unwrap();
    }
    assert_eq!(total, 22);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("22 of 22 connections failed"), "{stderr}");
}

#[test]
fn fail_if_sets_exit_8() {
    let nginx = Nginx::start(4096, "");
    let run = |cond: &str| {
        let child = bin()
            .args(["--json", "load"])
            .arg(nginx.url("live/f"))
            .args(["--players", "3", "--publishers", "1", "--duration", "2s"])
            .arg("--flv")
            .arg(media("h264base_aac_10s.flv"))
            .args(["--delay-probe", "--fail-if", "failed>0", "--fail-if", cond])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_output(child, "load --fail-if", Duration::from_secs(30))
    };
    let ok = run("p99_delay_ms>60000");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = run("players<1000");
    assert_eq!(bad.status.code(), Some(8));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("players<1000"), "{stderr}");
    let s = summary(&bad.stdout);
    assert_eq!(s["fail_if"][1]["violated"], true, "{s}");
    // A malformed condition is a usage error.
    let out = bin()
        .args(["load", "rtmp://127.0.0.1/live/x", "--players", "1"])
        .args(["--fail-if", "p99_latency>5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn ctrl_c_closes_every_connection_and_prints_the_summary() {
    let nginx = Nginx::start(4096, "");
    let mut child = bin()
        .args(["--json", "load"])
        .arg(nginx.url("live/nobody"))
        .args(["--players", "10", "--ramp", "500"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "players never played: {lines:?}");
        let line = rx.recv_timeout(left).expect("a progress record");
        let playing = serde_json::from_str::<serde_json::Value>(&line).unwrap()["playing"] == 10;
        lines.push(line);
        if playing {
            break;
        }
    }
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = wait_output(child, "load after Ctrl-C", Duration::from_secs(20));
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    assert!(out.status.success(), "{:?} {lines:?}", out.status);
    let s: serde_json::Value =
        serde_json::from_str(lines.iter().find(|l| l.contains("load_summary")).unwrap()).unwrap();
    assert_eq!(s["interrupted"], true, "{s}");
    assert_eq!(s["players"], 10, "{s}");
    assert_eq!(s["failed"], 0, "{s}");
    // Every player closed its stream (deleteStream) and the connection.
    let progress: serde_json::Value = serde_json::from_str(
        lines
            .iter()
            .rev()
            .find(|l| l.contains("load_progress"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(progress["closed"], 10, "{progress}");
}

#[test]
fn too_few_file_descriptors_fail_before_connecting() {
    // A hard limit below what 500 players need: the run must not start.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 100 && exec {} load rtmp://127.0.0.1:1/live/x --players 500 --bind 127.0.0.1",
            env!("CARGO_BIN_EXE_rtmptool")
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ulimit -n 532"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn bind_spreads_source_addresses() {
    let nginx = Nginx::start(4096, "");
    let out = bin()
        .args(["--json", "load"])
        .arg(nginx.url("live/b"))
        .args(["--players", "4", "--duration", "1s"])
        .args(["--bind", "127.0.0.2", "--bind", "127.0.0.3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let s = summary(&out.stdout);
    assert_eq!(s["players"], 4, "{s}");
}
