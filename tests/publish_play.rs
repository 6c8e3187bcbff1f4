//! `publish` and `play` against real peers on loopback: nginx-rtmp (started
//! by the test on a free port, stopped by PID), ffmpeg as receiver and as
//! publisher, ffprobe as reader of what `play` wrote. Equality is checked per
//! track (audio, video): payload and timestamp of every tag equal the source
//! file's, read with the crate's FLV reader. nginx-rtmp re-orders tags of
//! different tracks that share a timestamp (it sends the codec headers itself
//! when the first frame of a track arrives), so interleaving is not compared.
//! Streams are published paced (`--rate 1`): nginx drops frames for live
//! players that fall behind a full-speed publisher. The paced runs go in
//! parallel on one nginx, so the file takes about 15 s.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Nginx, assert_same, bin, media, require, stats, wait_logged, wait_output};
use rtmptool::proto::flv;

const FILES: &[&str] = &[
    "aac_only_10s.flv",
    "h264_mp3_10s.flv",
    "h264_only_10s.flv",
    "h264base_aac_10s.flv",
    "h264main_bframes_10s.flv",
];

/// Each source file published paced by rtmptool, received by ffmpeg.
#[test]
fn rtmptool_publish_to_ffmpeg_receiver() {
    let ffmpeg = require("ffmpeg");
    let nginx = Nginx::start(4096, "");
    let dir = tempfile::tempdir().expect("tmp");
    let mut runs = Vec::new();
    for (i, f) in FILES.iter().enumerate() {
        let url = nginx.url(&format!("live/ff{i}"));
        let out = dir.path().join(format!("ff{i}.flv"));
        let rx = common::ffmpeg_player(&ffmpeg, &url, &out)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ffmpeg");
        runs.push((f, url, out, rx));
    }
    // ffmpeg needs its play in place before the publisher starts.
    let names: Vec<String> = (0..FILES.len()).map(|i| format!("ff{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    wait_logged(&nginx, "play", &names);
    let pubs: Vec<_> = runs
        .iter()
        .map(|(f, url, _, _)| {
            bin()
                .args(["--json", "publish"])
                .arg(media(f))
                .arg(url)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start rtmptool")
        })
        .collect();
    for ((f, _, out, rx), p) in runs.into_iter().zip(pubs) {
        let po = wait_output(p, "rtmptool publish", Duration::from_secs(30));
        assert!(
            po.status.success(),
            "publish {f}: {}",
            String::from_utf8_lossy(&po.stderr)
        );
        // The live stream stays open after unpublish: ffmpeg ends by its
        // -rw_timeout (3 s without data), after it has read everything.
        let ro = wait_output(rx, "ffmpeg receiver", Duration::from_secs(15));
        assert!(
            out.is_file(),
            "ffmpeg receiving {f}: {}",
            String::from_utf8_lossy(&ro.stderr)
        );
        assert_same(&format!("{f} via ffmpeg"), &media(f), &out, 0);
    }
}

/// ffmpeg publishes; rtmptool play writes an FLV equal to ffmpeg's input
/// that ffprobe reads without error.
#[test]
fn ffmpeg_publish_to_rtmptool_play() {
    let ffmpeg = require("ffmpeg");
    let ffprobe = require("ffprobe");
    let nginx = Nginx::start(4096, "");
    let dir = tempfile::tempdir().expect("tmp");
    let src = media("h264base_aac_10s.flv");
    let url = nginx.url("live/fromffmpeg");
    let out = dir.path().join("played.flv");
    let play = bin()
        .args(["--json", "play", &url, "-o"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start play");
    wait_logged(&nginx, "play", &["fromffmpeg"]);
    let pubr = Command::new(&ffmpeg)
        .args(["-nostdin", "-loglevel", "error", "-re", "-i"])
        .arg(&src)
        .args(["-c", "copy", "-f", "flv", &url])
        .output()
        .expect("run ffmpeg");
    assert!(
        pubr.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&pubr.stderr)
    );
    let po = wait_output(play, "rtmptool play", Duration::from_secs(20));
    assert!(
        po.status.success(),
        "play: {}",
        String::from_utf8_lossy(&po.stderr)
    );
    let s = stats(&po);
    assert_eq!(s["keyframes"], 5, "{s}");
    assert_same("ffmpeg → nginx → play", &src, &out, 0);
    let probe = Command::new(ffprobe)
        .args(["-v", "error", "-show_streams"])
        .arg(&out)
        .output()
        .expect("run ffprobe");
    assert!(
        probe.status.success() && probe.stderr.is_empty(),
        "ffprobe: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let text = String::from_utf8_lossy(&probe.stdout);
    assert!(
        text.contains("codec_name=h264") && text.contains("codec_name=aac"),
        "{text}"
    );
}

/// rtmptool publish → nginx → rtmptool play, equal tag by tag, with chunk
/// sizes 128/4096/65536 and a start timestamp crossing 0xFFFFFF; the paced
/// publish of a 10 s file takes 10 s ± 2 %.
#[test]
fn rtmptool_publish_to_rtmptool_play() {
    let nginx = Nginx::start(4096, "");
    let dir = tempfile::tempdir().expect("tmp");
    let src = media("h264base_aac_10s.flv");
    let cases: &[(&str, &[&str], u32)] = &[
        ("c128", &["--chunk-size", "128"], 0),
        ("c4096", &["--chunk-size", "4096"], 0),
        ("c65536", &["--chunk-size", "65536"], 0),
        ("ext", &["--start-timestamp", "16777000"], 16_777_000),
    ];
    // The first player writes into a FIFO (as `-o /dev/null` writes into a
    // device): the FLV must come through it and the FIFO must still be one
    // afterwards (a rename over it would replace it with a regular file).
    let fifo = dir.path().join("c128.fifo");
    let mk = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(mk.success());
    let mut fifo_reader = Some({
        let (fifo, out) = (fifo.clone(), dir.path().join("c128.flv"));
        std::thread::spawn(move || {
            let mut r = std::fs::File::open(&fifo).expect("open the FIFO");
            let mut w = std::fs::File::create(&out).expect("create");
            std::io::copy(&mut r, &mut w).expect("read the FIFO")
        })
    });
    let mut players = Vec::new();
    for (name, _, _) in cases {
        let out = dir.path().join(format!("{name}.flv"));
        let target = if *name == "c128" { &fifo } else { &out };
        let p = bin()
            .args(["--json", "play", &nginx.url(&format!("live/{name}")), "-o"])
            .arg(target)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start play");
        players.push((out, p));
    }
    let names: Vec<&str> = cases.iter().map(|(n, _, _)| *n).collect();
    wait_logged(&nginx, "play", &names);
    let pubs: Vec<_> = cases
        .iter()
        .map(|(name, flags, _)| {
            let t = Instant::now();
            let c = bin()
                .args(["--json", "publish"])
                .args(*flags)
                .arg(&src)
                .arg(nginx.url(&format!("live/{name}")))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start publish");
            (t, c)
        })
        .collect();
    // A second publisher on a taken name is refused: exit 5 with the code.
    wait_logged(&nginx, "publish", &["c4096"]);
    let dup = bin()
        .args(["publish"])
        .arg(&src)
        .arg(nginx.url("live/c4096"))
        .output()
        .expect("run publish");
    assert_eq!(
        dup.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&dup.stderr)
    );
    assert!(String::from_utf8_lossy(&dup.stderr).contains("NetStream.Publish.BadName"));

    for (((name, _, shift), (t, p)), (out, player)) in cases.iter().zip(pubs).zip(players) {
        let po = wait_output(p, "publish", Duration::from_secs(30));
        let wall = t.elapsed().as_secs_f64();
        assert!(
            po.status.success(),
            "publish {name}: {}",
            String::from_utf8_lossy(&po.stderr)
        );
        // Pacing: 10 s of media take 10 s of wall time (± 2 %).
        assert!(
            (wall - 10.0).abs() <= 0.2,
            "publish {name} took {wall:.3} s"
        );
        let s = stats(&po);
        assert_eq!(s["video_frames"], 250, "{s}");
        assert_eq!(s["audio_frames"], 432, "{s}");
        let pl = wait_output(player, "play", Duration::from_secs(20));
        assert!(
            pl.status.success(),
            "play {name}: {}",
            String::from_utf8_lossy(&pl.stderr)
        );
        if *name == "c128" {
            let r = fifo_reader.take().expect("one FIFO reader");
            r.join().expect("FIFO reader");
        }
        assert_same(&format!("publish → play {name}"), &src, &out, *shift);
    }
    assert!(fifo_reader.is_none(), "the FIFO was never read");
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::symlink_metadata(&fifo).expect("stat").file_type();
    assert!(kind.is_fifo(), "the FIFO was replaced: {kind:?}");
}

/// Faults: not-an-FLV and truncated input (exit 7, after publishing what is
/// whole), unwritable output (exit 7, nothing left), refused TCP (exit 3).
#[test]
fn faults_have_their_exit_codes() {
    let dir = tempfile::tempdir().expect("tmp");
    // Not an FLV: refused before connecting (the port is closed anyway).
    let bogus = dir.path().join("bogus.flv");
    std::fs::write(&bogus, b"this is not a video file at all").expect("write");
    let o = bin()
        .arg("publish")
        .arg(&bogus)
        .arg("rtmp://127.0.0.1:1/live/x")
        .output()
        .expect("run");
    assert_eq!(
        o.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an FLV"));

    // Nothing listens: exit 3.
    let port = common::free_port();
    let o = bin()
        .args(["publish"])
        .arg(media("aac_only_10s.flv"))
        .arg(format!("rtmp://127.0.0.1:{port}/live/x"))
        .output()
        .expect("run");
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Unwritable output: exit 7 before connecting, nothing created.
    let o = bin()
        .args(["play", "rtmp://127.0.0.1:1/live/x", "-o"])
        .arg(dir.path().join("no/such/dir/out.flv"))
        .output()
        .expect("run");
    assert_eq!(
        o.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot write"));

    // An existing output is never replaced without --force, and a `.part`
    // left by an earlier run is never truncated: exit 7, both untouched.
    let kept = dir.path().join("kept.flv");
    std::fs::write(&kept, b"precious").expect("write");
    let o = bin()
        .args(["play", "rtmp://127.0.0.1:1/live/x", "-o"])
        .arg(&kept)
        .output()
        .expect("run");
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(7), "{e}");
    assert!(e.contains("--force"), "{e}");
    assert_eq!(std::fs::read(&kept).expect("read"), b"precious");
    let part = dir.path().join("kept.flv.part");
    std::fs::write(&part, b"partial").expect("write");
    let o = bin()
        .args(["play", "--force", "rtmp://127.0.0.1:1/live/x", "-o"])
        .arg(&kept)
        .output()
        .expect("run");
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(7), "{e}");
    assert!(e.contains("kept.flv.part exists"), "{e}");
    assert_eq!(std::fs::read(&part).expect("read"), b"partial");
    assert_eq!(std::fs::read(&kept).expect("read"), b"precious");
    // With --force and no stale .part, a failed run (closed port: exit 3)
    // leaves the old file as it was and no .part behind.
    std::fs::remove_file(&part).expect("rm");
    let o = bin()
        .args(["play", "--force", "rtmp://127.0.0.1:1/live/x", "-o"])
        .arg(&kept)
        .output()
        .expect("run");
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read(&kept).expect("read"), b"precious");
    assert!(!part.exists());

    // Truncated: the first 100 000 bytes of a file, published unpaced.
    let nginx = Nginx::start(4096, "");
    let src = std::fs::read(media("h264base_aac_10s.flv")).expect("read");
    let cut = dir.path().join("cut.flv");
    std::fs::write(&cut, &src[..100_000]).expect("write");
    let (_, whole, _) = {
        let mut r = flv::Reader::new();
        r.push(&src[..100_000]);
        let mut tags = Vec::new();
        while let Ok(Some(ev)) = r.poll() {
            if let flv::FlvEvent::Tag(t) = ev {
                tags.push(t);
            }
        }
        ((), tags, ())
    };
    let o = bin()
        .args(["--json", "publish", "--no-pace"])
        .arg(&cut)
        .arg(nginx.url("live/cut"))
        .output()
        .expect("run");
    assert_eq!(
        o.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    let last = whole.last().expect("some whole tags");
    let end = last.offset + last.tag_size() as u64;
    assert!(err.contains(&format!("offset {end}")), "{err}");
    assert_eq!(stats(&o)["tags"], whole.len(), "{err}");
}

/// A server may send the sequence headers stamped as they were published,
/// seconds before the frames a player joins (nginx-rtmp does for a player
/// waiting when the stream starts): the configuration does not start the
/// media clock, so `--duration 2s` plays 2 s of frames, not none.
#[test]
fn duration_counts_from_the_first_frame_not_the_configuration() {
    use rtmptool::proto::stream_config::classify;
    let nginx = Nginx::start(4096, "");
    let dir = tempfile::tempdir().expect("tmp");
    // The headers at 0, every frame 5 s later.
    let (h, tags, _) =
        flv::read_all(&std::fs::read(media("h264base_aac_10s.flv")).unwrap()).expect("source flv");
    let mut data = bytes::BytesMut::new();
    let mut w = flv::Writer::new();
    w.write_header(&h, &mut data);
    for t in &tags {
        let frame = (t.is_audio() || t.is_video()) && classify(t.is_video(), &t.data).1.is_none();
        let ts = t.timestamp + if frame { 5000 } else { 0 };
        w.write_tag_parts(t.tag_type, ts, 0, &t.data, &mut data)
            .expect("tag");
    }
    let src = dir.path().join("late_frames.flv");
    std::fs::write(&src, &data).expect("write");
    let out = dir.path().join("got.flv");
    let player = bin()
        .args(["--json", "play", &nginx.url("live/late"), "-o"])
        .arg(&out)
        .args(["--duration", "2s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start play");
    wait_logged(&nginx, "play", &["late"]);
    let publish = bin()
        .args(["publish", "--no-pace"])
        .arg(&src)
        .arg(nginx.url("live/late"))
        .output()
        .expect("publish");
    assert!(
        publish.status.success(),
        "{}",
        String::from_utf8_lossy(&publish.stderr)
    );
    let po = wait_output(player, "play", Duration::from_secs(20));
    assert!(
        po.status.success(),
        "{}",
        String::from_utf8_lossy(&po.stderr)
    );
    let s = stats(&po);
    // 2 s of 25 fps video.
    let frames = s["video_frames"].as_u64().unwrap_or(0);
    assert!((49..=51).contains(&frames), "{s}");
    assert!(
        (1900.0..=2000.0).contains(&s["duration_ms"].as_f64().unwrap_or(0.0)),
        "{s}"
    );
    assert_eq!(s["gaps"], 0, "{s}");
}

/// Tags a file holds that RTMP cannot carry as they are: an unknown tag
/// type (0x0f), an encrypted one (Filter bit: 0x29) and script data that is
/// not AMF0. They are not sent, and this is said once for each reason with
/// the tag's file offset; the stats count them apart (`unsent_tags`), not
/// as sent. What reaches a player equals the source file, tag for tag.
/// Before, they were dropped in silence and counted as sent.
#[test]
fn tags_that_cannot_be_sent_are_said_and_counted_apart() {
    let src = media("h264base_aac_10s.flv");
    let (header, tags, _) = flv::read_all(&std::fs::read(&src).unwrap()).unwrap();
    let mut out = bytes::BytesMut::new();
    let mut w = flv::Writer::new();
    w.write_header(&header, &mut out);
    let mut offsets = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let odd: Option<(u8, &[u8])> = match i {
            5 => Some((0x0f, b"\x01\x02\x03\x04\x05")),
            10 => Some((0x29, b"\x17\x01\x00\x00\x00secret")),
            15 => Some((0x12, b"\x02\xff\xffno")),
            20 => Some((0x0f, b"again")),
            _ => None,
        };
        if let Some((ty, body)) = odd {
            offsets.push(out.len());
            w.write_tag_parts(flv::TagType(ty), t.timestamp, 0, body, &mut out)
                .unwrap();
        }
        w.write_tag_parts(t.tag_type, t.timestamp, 0, &t.data, &mut out)
            .unwrap();
    }
    let dir = tempfile::tempdir().expect("tmp");
    let odd = dir.path().join("odd.flv");
    std::fs::write(&odd, &out).unwrap();
    let serve = common::Serve::start(&[]);
    let got = dir.path().join("got.flv");
    let player = bin()
        .args(["play", &serve.url("live/odd"), "-o"])
        .arg(&got)
        .stderr(Stdio::piped())
        .spawn()
        .expect("play");
    serve.wait_sessions("play", 1);
    let o = bin()
        .args(["--json", "publish", "--rate", "4"])
        .arg(&odd)
        .arg(serve.url("live/odd"))
        .output()
        .expect("publish");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let st = stats(&o);
    assert_eq!(st["tags"], tags.len(), "{st}");
    assert_eq!(st["unsent_tags"], 4, "{st}");
    let body: usize = tags.iter().map(|t| t.data.len()).sum();
    assert_eq!(st["bytes"], body, "{st}");
    let said: Vec<&str> = stderr.lines().filter(|l| l.contains("not sent")).collect();
    assert_eq!(said.len(), 3, "{stderr}");
    for (line, (off, what)) in said.iter().zip([
        (offsets[0], "type 0x0f"),
        (offsets[1], "encrypted"),
        (offsets[2], "does not decode as AMF0"),
    ]) {
        assert!(line.contains(&format!("offset {off} ")), "{line}");
        assert!(line.contains(what), "{line}");
    }
    let p = wait_output(player, "play", Duration::from_secs(20));
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    assert_same(
        "publish of a file with odd tags → serve → play",
        &src,
        &got,
        0,
    );
}
