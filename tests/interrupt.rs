//! Ctrl-C at every phase: a command interrupted while it connects ends at
//! once with 130 and one line (and leaves no file behind); a capture read
//! from a pipe that Ctrl-C ends is reported as if it had ended there, the
//! same report as the file's; Ctrl-C before a capture's header is 130.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bin, wait_output};

fn testdata(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(p)
}

fn sigint(child: &Child) {
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
}

/// Bytes `pid` has read so far (`/proc/PID/io`).
fn read_so_far(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("rchar: ").map(|v| v.trim().parse().ok()))
                .flatten()
        })
        .unwrap_or(0)
}

/// Interrupted `wait` after it started: exits within 2 s with 130 and
/// one line naming `words`.
fn interrupted(args: &[&str], wait: Duration, words: &str) -> Output {
    let child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    std::thread::sleep(wait);
    sigint(&child);
    let t = Instant::now();
    let out = wait_output(child, args[0], Duration::from_secs(15));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "{args:?}: took {:?} after Ctrl-C",
        t.elapsed()
    );
    assert_eq!(out.status.code(), Some(130), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.contains(words), "{args:?}: {stderr}");
    out
}

/// Before this, play and publish waited out `--timeout` (Ctrl-C was heard
/// only once they streamed), and a Ctrl-C that killed play left its
/// `FILE.part`, which the next run refused to overwrite; diagnose URL ran
/// all its checks (80 s against a silent port).
#[test]
fn ctrl_c_while_connecting_ends_at_once() {
    let port = common::silent_server();
    let url = format!("rtmp://127.0.0.1:{port}/live/key");
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("x.flv");
    let flv = common::media("h264base_aac_10s.flv");
    // The phase it waits in is the handshake (the server accepted).
    let wait = Duration::from_millis(700);
    interrupted(
        &["play", &url, "-o", out.to_str().unwrap()],
        wait,
        "interrupted while connecting",
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "play left {left:?}");
    interrupted(
        &["publish", flv.to_str().unwrap(), &url],
        wait,
        "interrupted while connecting",
    );
    interrupted(
        &["publish", "-", &url],
        wait,
        "interrupted while waiting for stdin",
    );
    let o = interrupted(&["diagnose", &url], wait, "interrupted after 0 of");
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    interrupted(&["probe", &url], wait, "interrupted");
    // Keys stay secret in these lines too.
    for args in [vec!["play", &url, "-o", "-"], vec!["diagnose", &url]] {
        let o = interrupted(&args, wait, "…");
        assert!(!String::from_utf8_lossy(&o.stderr).contains("key"));
    }
}

/// Ctrl-C before any byte of a capture came down the pipe: 130, not "the
/// input is empty" (bad input).
#[test]
fn ctrl_c_before_a_capture_header_is_130() {
    for cmd in ["dump", "diagnose", "ecn"] {
        interrupted(
            &[cmd, "-"],
            Duration::from_millis(500),
            "interrupted before a capture header arrived",
        );
    }
}

/// `tcpdump -U -w - | rtmptool diagnose -` (or `ecn -`, `dump -`) ended
/// with Ctrl-C, the writer still holding the pipe: the report of what came
/// is the report of the same bytes as a file, exit status included.
#[test]
fn ctrl_c_on_a_pipe_reports_what_came_as_the_file_would() {
    let lying = testdata("rtmp/fault_b_lying_setchunksize.pcap");
    let ecn = testdata("rtmfp/ecn_ce_every10th_c2s.pcap");
    let keys = testdata("rtmfp/ecn_ce_every10th_c2s.keys");
    let (lying, ecn, keys) = (
        lying.to_str().unwrap(),
        ecn.to_str().unwrap(),
        keys.to_str().unwrap(),
    );
    let cases: [(&[&str], &str); 5] = [
        (&["diagnose"], lying),
        (&["--json", "diagnose"], lying),
        (&["ecn", "--keylog", keys], ecn),
        (&["--json", "ecn", "--keylog", keys], ecn),
        (&["dump", "--stats"], lying),
    ];
    for (args, file) in cases {
        let whole = bin().args(args).arg(file).output().expect("run");
        let data = std::fs::read(file).expect("capture");
        let mut child = bin()
            .args(args)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&data).unwrap();
        stdin.flush().unwrap();
        common::wait_for("the capture to be read", Duration::from_secs(20), || {
            (read_so_far(child.id()) >= data.len() as u64).then_some(())
        });
        sigint(&child);
        let piped = wait_output(child, args[0], Duration::from_secs(10));
        drop(stdin);
        assert!(!whole.stdout.is_empty(), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&piped.stdout),
            String::from_utf8_lossy(&whole.stdout),
            "{args:?}"
        );
        assert_eq!(piped.status.code(), whole.status.code(), "{args:?}");
    }
}

/// Ctrl-C while play waits for a publisher (serve has the stream's player,
/// no publisher): nothing could be saved, so 130 and no file, not exit 0
/// with a 13-byte header ffprobe rejects.
#[test]
fn ctrl_c_while_waiting_for_a_publisher_saves_nothing() {
    let serve = common::Serve::start(&[]);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("wait.flv");
    let url = serve.url("live/waitingkey");
    let child = bin()
        .args(["play", &url, "-o", out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    serve.wait_sessions("play", 1);
    sigint(&child);
    let o = wait_output(child, "play", Duration::from_secs(15));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    // (Right after serve's play record the client may still be reading
    // Play.Start: "interrupted while connecting" is as right.)
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!stderr.contains("waitingkey"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "play left {left:?}");
}

fn sigterm(pid: u32) {
    let st = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
}

/// SIGTERM (`kill PID`, `timeout`, systemd) ends a command as Ctrl-C does,
/// in every phase: play mid-stream saves a whole FLV that ffprobe reads,
/// publish and serve end with their stats and 0; while connecting, 130 and
/// one line. Before, SIGTERM killed them: play left `FILE.part`, and no
/// stats were said.
#[test]
fn sigterm_ends_a_command_as_ctrl_c_does() {
    let serve = common::Serve::start(&[]);
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("term.flv");
    let url = serve.url("live/termkey");
    let flv = common::media("h264base_aac_60s.flv");
    let publish = bin()
        .args(["publish", flv.to_str().unwrap(), &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("publish");
    let play = bin()
        .args(["play", &url, "-o", out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("play");
    common::wait_for("play to save 40 tags", Duration::from_secs(20), || {
        (common::tags_so_far(&out).len() >= 40).then_some(())
    });
    sigterm(play.id());
    let o = wait_output(play, "play", Duration::from_secs(10));
    let said = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(said.contains("(interrupted)"), "{said}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["term.flv"]);
    // A real reader takes the file whole: its packets are the tags saved.
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "packet=pts", "-of", "csv"])
        .arg(&out)
        .output()
        .expect("ffprobe (apt-get install ffmpeg)");
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert!(
        probe.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let packets = String::from_utf8_lossy(&probe.stdout).lines().count();
    assert!(packets >= 39, "ffprobe read {packets} packets");

    sigterm(publish.id());
    let o = wait_output(publish, "publish", Duration::from_secs(10));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("(interrupted)"));

    // serve: its summary, every connection closed, 0.
    let mut serve = serve;
    sigterm(serve.child.id());
    common::wait_for("serve to end", Duration::from_secs(10), || {
        serve.child.try_wait().ok().flatten()
    });
    let records = serve.records();
    let last = records.last().expect("records");
    assert_eq!(last["type"], "serve_summary", "{last}");
    assert_eq!(last["connections"], 2, "{last}");

    // While connecting: 130 and one line, as with Ctrl-C.
    let port = common::silent_server();
    let child = bin()
        .args([
            "play",
            &format!("rtmp://127.0.0.1:{port}/live/key"),
            "-o",
            "-",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("play");
    std::thread::sleep(Duration::from_millis(700));
    sigterm(child.id());
    let o = wait_output(child, "play", Duration::from_secs(5));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted while connecting"), "{stderr}");
}
