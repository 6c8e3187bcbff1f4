//! `play` and `publish` options and endings against real peers on loopback:
//! nginx-rtmp's `vod` application (serves a file as fast as the player
//! reads: no pacing, no live-player frame drops) and its `record`
//! application (writes what a publisher sent to an FLV file), plain and
//! behind TLS (nginx's stream module). Checked: `--frames`,
//! `--until-keyframes`, `--duration`; a pipe reader that goes away; stdin
//! and `--loop` with continuous timestamps; SIGINT closing with
//! deleteStream and leaving a valid FLV; rtmps publish and play.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    Certs, Nginx, Track, assert_same, bin, media, stats, tracks, tracks_of, wait_for, wait_logged,
    wait_output,
};
use rtmptool::proto::media::{AudioInfo, VideoInfo};

const SRC: &str = "h264base_aac_10s.flv";

/// A directory nginx's workers (user nobody) can read and write, holding
/// a copy of the source file for `vod`.
fn served_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    std::fs::copy(media(SRC), dir.path().join(SRC)).expect("copy");
    dir
}

fn apps(dir: &Path) -> String {
    format!(
        "application vod {{ play {d}; }}\n    \
         application rec {{ live on; record all; record_path {d}; record_unique off; }}",
        d = dir.display()
    )
}

/// Coded frames only (no AVC/AAC sequence headers): nginx's recorder
/// writes the codec headers once, from its own copy.
fn coded(t: &Track, video: bool) -> Track {
    t.iter()
        .filter(|(_, d)| {
            if video {
                VideoInfo::parse(d).is_ok_and(|v| v.is_coded_frames())
            } else {
                AudioInfo::parse(d).is_ok_and(|a| a.is_coded_frames())
            }
        })
        .cloned()
        .collect()
}

fn coded_video_frames(t: &Track) -> usize {
    coded(t, true).len()
}

fn keyframes(t: &Track) -> usize {
    t.iter()
        .filter(|(_, d)| VideoInfo::parse(d).is_ok_and(|v| v.is_coded_frames() && v.is_keyframe()))
        .count()
}

/// Asserts that `got` is a prefix of `src` (timestamps and payloads).
fn assert_prefix(what: &str, src: &Track, got: &Track) {
    assert!(got.len() <= src.len(), "{what}: more tags than the source");
    for (i, (a, b)) in src.iter().zip(got).enumerate() {
        assert!(a == b, "{what}: tag {i} differs from the source");
    }
}

/// nginx's number (`*N`) of the connection that logged `VERB: name='NAME'`.
fn conn_of(nginx: &Nginx, verb: &str, name: &str) -> String {
    let needle = format!("{verb}: name='{name}'");
    let log = nginx.log();
    let line = log
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("nginx never logged {needle}"));
    line.split_whitespace()
        .find(|w| w.starts_with('*'))
        .expect("connection number")
        .to_string()
}

/// nginx's log up to its disconnect of connection `conn`, once logged.
fn log_until_disconnect(nginx: &Nginx, conn: &str) -> Vec<String> {
    let end = format!("{conn} disconnect");
    wait_for(
        "nginx to log the disconnect",
        Duration::from_secs(10),
        || {
            let log = nginx.log();
            let lines: Vec<String> = log.lines().map(String::from).collect();
            let at = lines.iter().position(|l| l.contains(&end))?;
            Some(lines[..at].to_vec())
        },
    )
}

/// The file nginx recorded of stream `name`, after the publisher's
/// connection is gone (nginx closes the recording at deleteStream).
fn recorded(nginx: &Nginx, dir: &Path, name: &str) -> PathBuf {
    log_until_disconnect(nginx, &conn_of(nginx, "publish", name));
    dir.join(format!("{name}.flv"))
}

/// Whether the connection that logged `VERB: name='NAME'` sent deleteStream
/// before it disconnected (nginx logs a deleteStream of its own after a
/// disconnect).
fn closed_cleanly(nginx: &Nginx, verb: &str, name: &str) -> bool {
    let conn = conn_of(nginx, verb, name);
    log_until_disconnect(nginx, &conn)
        .iter()
        .any(|l| l.contains(&format!("{conn} deleteStream")))
}

/// `--frames`, `--until-keyframes` and `--duration` stop where they say,
/// with everything before that point equal to the source.
#[test]
fn play_stops_at_frames_keyframes_and_duration() {
    let dir = served_dir();
    let nginx = Nginx::start(4096, &apps(dir.path()));
    let url = nginx.url(&format!("vod/{SRC}"));
    let (sa, sv) = tracks(&media(SRC));
    let cases: &[(&str, &[&str])] = &[
        ("frames", &["--frames", "30"]),
        ("keyframes", &["--until-keyframes", "2"]),
        ("duration", &["--duration", "3s"]),
    ];
    for (name, flags) in cases {
        let out = dir.path().join(format!("{name}.flv"));
        let o = bin()
            .args(["--json", "play"])
            .args(*flags)
            .arg(&url)
            .arg("-o")
            .arg(&out)
            .output()
            .expect("run play");
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let s = stats(&o);
        let (ga, gv) = tracks(&out);
        assert_prefix(&format!("{name} video"), &sv, &gv);
        assert_prefix(&format!("{name} audio"), &sa, &ga);
        assert_eq!(
            s["video_frames"].as_u64(),
            Some(coded_video_frames(&gv) as u64),
            "{s}"
        );
        match *name {
            "frames" => assert_eq!(coded_video_frames(&gv), 30, "{s}"),
            "keyframes" => {
                // Two whole GOPs of 50 frames; the third keyframe not kept.
                assert_eq!(keyframes(&gv), 2, "{s}");
                assert_eq!(coded_video_frames(&gv), 100, "{s}");
            }
            _ => {
                let expect = coded(&sv, true).iter().filter(|t| t.0 < 3000).count();
                assert_eq!(coded_video_frames(&gv), expect, "{s}");
                assert!(ga.iter().chain(&gv).all(|t| t.0 < 3000), "{s}");
            }
        }
    }
}

/// A reader of stdout that goes away (as `ffprobe -` does once it has
/// seen enough) ends the play normally: exit 0, and it says so.
#[test]
fn play_to_a_pipe_whose_reader_leaves_exits_0() {
    let dir = served_dir();
    let nginx = Nginx::start(4096, &apps(dir.path()));
    let mut child = bin()
        .args(["play", &nginx.url(&format!("vod/{SRC}")), "-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start play");
    let mut head = [0u8; 50_000];
    let mut stdout = child.stdout.take().expect("stdout");
    std::io::Read::read_exact(&mut stdout, &mut head).expect("read the FLV");
    assert_eq!(&head[..3], b"FLV");
    drop(stdout);
    let o = wait_output(child, "play", Duration::from_secs(20));
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("the reader of the output went away"), "{e}");
}

/// `publish -` from stdin and `publish --loop 2 FILE`, unpaced, into
/// nginx's recorder: the stdin stream arrives whole; both passes of the
/// loop arrive whole, the second continuing the timestamps of the first.
#[test]
fn publish_from_stdin_and_with_loop() {
    let dir = served_dir();
    let nginx = Nginx::start(4096, &apps(dir.path()));
    let (sa, sv) = tracks(&media(SRC));
    let input = std::fs::File::open(media(SRC)).expect("open");
    let o = bin()
        .args(["--json", "publish", "--no-pace", "-"])
        .arg(nginx.url("rec/stdin"))
        .stdin(Stdio::from(input))
        .output()
        .expect("run publish");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (ra, rv) = tracks(&recorded(&nginx, dir.path(), "stdin"));
    assert!(
        coded(&sa, false) == coded(&ra, false),
        "stdin: audio differs"
    );
    assert!(coded(&sv, true) == coded(&rv, true), "stdin: video differs");

    let o = bin()
        .args(["--json", "publish", "--no-pace", "--loop", "2"])
        .arg(media(SRC))
        .arg(nginx.url("rec/looped"))
        .output()
        .expect("run publish");
    let s = stats(&o);
    assert_eq!(
        s["video_frames"].as_u64(),
        Some(2 * coded_video_frames(&sv) as u64),
        "{s}"
    );
    let rec = recorded(&nginx, dir.path(), "looped");
    let (ra, rv) = tracks(&rec);
    let src_max = sa.iter().chain(&sv).map(|t| t.0).max().expect("tags");
    for (kind, src, got) in [
        ("audio", coded(&sa, false), coded(&ra, false)),
        ("video", coded(&sv, true), coded(&rv, true)),
    ] {
        assert_eq!(got.len(), 2 * src.len(), "{kind}: two passes");
        let (p1, p2) = got.split_at(src.len());
        assert!(p1 == src.as_slice(), "{kind}: the first pass differs");
        // The second pass starts one frame step after the first ended.
        let offset = p2[0].0 - src[0].0;
        assert!(
            offset > src_max && offset <= src_max + 100,
            "{kind}: second pass offset {offset} ms after a pass ending at {src_max} ms"
        );
        for (i, (a, b)) in src.iter().zip(p2).enumerate() {
            assert_eq!(a.0 + offset, b.0, "{kind} tag {i} of pass 2: timestamp");
            assert!(a.1 == b.1, "{kind} tag {i} of pass 2: payload");
        }
    }
}

/// A live stream `live/NAME` (ffmpeg publishing in a loop) with rtmptool
/// playing it into `NAME.flv` and rtmptool publishing `live/NAMEpub`, both
/// under way: the player has written media, nginx has the publisher.
struct UnderWay {
    nginx: Nginx,
    dir: tempfile::TempDir,
    ffmpeg: std::process::Child,
    player: std::process::Child,
    publisher: std::process::Child,
    out: PathBuf,
    part: PathBuf,
}

impl UnderWay {
    fn start(name: &str) -> UnderWay {
        let dir = served_dir();
        let nginx = Nginx::start(4096, &apps(dir.path()));
        let ffmpeg = common::ffmpeg_publish_loop(&nginx, name);
        let out = dir.path().join(format!("{name}.flv"));
        let part = dir.path().join(format!("{name}.flv.part"));
        let spawn = |args: Vec<std::ffi::OsString>| {
            bin()
                .arg("--json")
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start rtmptool")
        };
        let player = spawn(vec![
            "play".into(),
            nginx.url(&format!("live/{name}")).into(),
            "-o".into(),
            out.clone().into(),
        ]);
        let publisher = spawn(vec![
            "publish".into(),
            media(SRC).into(),
            nginx.url(&format!("live/{name}pub")).into(),
        ]);
        // The header waits for both tracks, then the file grows.
        wait_for("play to write media", Duration::from_secs(15), || {
            (std::fs::metadata(&part).ok()?.len() > 50_000).then_some(())
        });
        wait_logged(&nginx, "publish", &[&format!("{name}pub")]);
        UnderWay {
            nginx,
            dir,
            ffmpeg,
            player,
            publisher,
            out,
            part,
        }
    }

    /// Waits for both rtmptool runs (play, publish), then stops ffmpeg.
    fn finish(mut self) -> (std::process::Output, std::process::Output, UnderWayDone) {
        let po = wait_output(self.player, "play", Duration::from_secs(10));
        let uo = wait_output(self.publisher, "publish", Duration::from_secs(10));
        let _ = Command::new("kill")
            .arg(self.ffmpeg.id().to_string())
            .status();
        let _ = self.ffmpeg.wait();
        let done = UnderWayDone {
            nginx: self.nginx,
            _dir: self.dir,
            out: self.out,
            part: self.part,
        };
        (po, uo, done)
    }
}

/// What is left to check once both runs ended.
struct UnderWayDone {
    nginx: Nginx,
    _dir: tempfile::TempDir,
    out: PathBuf,
    part: PathBuf,
}

impl UnderWayDone {
    /// The played file is complete under its final name and valid FLV.
    fn assert_kept_file_valid(&self) {
        assert!(!self.part.exists(), "the .part file was left behind");
        let data = std::fs::read(&self.out).expect("the played file");
        let (_, gv) = tracks_of("the played file", &data);
        assert!(coded_video_frames(&gv) > 0);
    }
}

fn kill(signal: &str, pid: u32) {
    let st = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
}

/// SIGINT ends play and publish cleanly: deleteStream sent before the
/// disconnect, exit 0, `interrupted` in the statistics, and the played file
/// complete under its final name.
#[test]
fn sigint_closes_cleanly_and_leaves_a_valid_flv() {
    let w = UnderWay::start("sig");
    kill("-INT", w.player.id());
    kill("-INT", w.publisher.id());
    let (po, uo, done) = w.finish();
    for (what, o) in [("play", &po), ("publish", &uo)] {
        assert_eq!(
            o.status.code(),
            Some(0),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(stats(o)["interrupted"], true, "{what}");
    }
    done.assert_kept_file_valid();
    assert!(
        closed_cleanly(&done.nginx, "play", "sig"),
        "play: no deleteStream"
    );
    assert!(
        closed_cleanly(&done.nginx, "publish", "sigpub"),
        "publish: no deleteStream"
    );
}

/// rtmps: publish into the recorder and play from vod through nginx's TLS
/// front, trusting the test CA with `--ca`; both equal to the source.
#[test]
fn rtmps_publish_and_play() {
    let dir = served_dir();
    let certs = Certs::new();
    let (nginx, tls_port) = Nginx::start_tls(4096, &apps(dir.path()), &certs);
    let base = format!("rtmps://127.0.0.1:{tls_port}");
    let o = bin()
        .args(["--json", "publish", "--no-pace", "--ca"])
        .arg(&certs.ca)
        .arg(media(SRC))
        .arg(format!("{base}/rec/overtls"))
        .output()
        .expect("run publish");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rec = recorded(&nginx, dir.path(), "overtls");
    let (sa, sv) = tracks(&media(SRC));
    let (ra, rv) = tracks(&rec);
    assert!(
        coded(&sa, false) == coded(&ra, false),
        "audio over TLS differs"
    );
    assert!(
        coded(&sv, true) == coded(&rv, true),
        "video over TLS differs"
    );

    let out = dir.path().join("fromtls.flv");
    let o = bin()
        .args(["--json", "play", "--ca"])
        .arg(&certs.ca)
        .arg(format!("{base}/vod/{SRC}"))
        .arg("-o")
        .arg(&out)
        .output()
        .expect("run play");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same("rtmps vod play", &media(SRC), &out, 0);
    drop(certs);
}

/// The progress line (media time, bitrate, bytes, lag) is drawn on a
/// terminal (a pty made by `script`), and never when stderr is not one.
#[test]
fn progress_is_drawn_on_a_terminal_only() {
    let nginx = Nginx::start(4096, "");
    let o = common::on_a_terminal(&format!(
        "publish --duration 2s {} {}",
        media(SRC).display(),
        nginx.url("live/tty")
    ));
    let tty = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{tty}");
    assert!(tty.contains("kbit/s") && tty.contains("lag "), "{tty}");
    assert!(tty.contains("published"), "{tty}");

    let o = bin()
        .args(["publish", "--duration", "2s"])
        .arg(media(SRC))
        .arg(nginx.url("live/notty"))
        .output()
        .expect("run publish");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        !err.contains("lag "),
        "progress drawn without a terminal: {err}"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("published"));
}

/// The server going away mid-stream: play and publish exit 3 saying how
/// far they got; the played file keeps every whole tag, as valid FLV.
#[test]
fn server_gone_mid_stream_is_exit_3_with_how_far() {
    let w = UnderWay::start("gone");
    // Fast shutdown: nginx closes every connection at once.
    kill("-TERM", w.nginx.pid());
    let (po, uo, done) = w.finish();
    for (what, o) in [("play", &po), ("publish", &uo)] {
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{what}: {e}");
        assert!(
            e.contains("broke mid-stream") && e.contains(" tags, "),
            "{what}: {e}"
        );
    }
    let e = String::from_utf8_lossy(&po.stderr);
    assert!(e.contains("kept") && e.contains("gone.flv"), "{e}");
    done.assert_kept_file_valid();
}
