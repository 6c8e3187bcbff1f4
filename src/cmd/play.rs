//! `rtmptool play URL [-o FILE|-]`: connect, createStream, play (RTMP 1.0
//! §7.2.2.1, Set Buffer Length §7.1.7), and write what arrives as FLV with
//! [`rtmptool::play`] (the engine: the output, the counters, when a play
//! ends); shows progress on a terminal, maps how it ended to an exit code
//! and prints the final statistics: frames, keyframes, GOP length,
//! bitrate, fps, A/V timestamp spread, gaps and timestamp regressions.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use super::streaming::{self, ConnectOptions, err, human_bytes, media_time, ms_f};
use crate::cli::{GlobalArgs, PlayArgs};
use crate::report::{Style, write_json_line};
use crate::{Exit, exit};
use rtmptool::net::RtmpUrl;
use rtmptool::play::{Fault, GAP_MS, Limits, Note, Output, PlayStats, Sink};
use rtmptool::proto::session::Goal;

/// Runs `play`.
pub fn run(args: &PlayArgs, global: &GlobalArgs) -> Result<(), Exit> {
    let style = Style::from_args(global);
    let url = RtmpUrl::parse(
        &args.url,
        args.conn.app.as_deref(),
        args.conn.stream.as_deref(),
    )
    .map_err(|e| err(exit::BAD_INPUT, e.to_string()))?;
    // Open the output before connecting: an unwritable path fails at once.
    let sink = match &args.output {
        None => Sink::Null,
        Some(p) => Sink::open(p, args.force).map_err(|e| err(exit::BAD_INPUT, e))?,
    };
    let rt = super::runtime()?;
    rt.block_on(play(args, global, &url, style, sink))
}

async fn play(
    args: &PlayArgs,
    global: &GlobalArgs,
    url: &RtmpUrl,
    style: Style,
    sink: Sink,
) -> Result<(), Exit> {
    let mut out = Output::new(sink);
    let to_stdout = out.to_stdout();
    let mut sig = streaming::sigint()?;
    let connected = streaming::connect_or_interrupt(
        ConnectOptions::of(
            url,
            Goal::Play {
                stream: url.stream_with_query(),
                start: args.start,
                buffer_ms: args.buffer_ms,
            },
            &args.conn,
            global.timeout,
        ),
        &mut sig,
        "play",
    )
    .await;
    let mut d = match connected {
        Ok(d) => d,
        Err(e) => {
            out.discard();
            return Err(e);
        }
    };
    let t0 = Instant::now();
    let shown = url.shown(args.conn.reveal_keys);
    let idle = args.idle_timeout.unwrap_or(global.timeout);
    let limits = Limits {
        idle,
        duration_ms: args.duration.map(|d| d.as_millis() as u64),
        frames: args.frames,
        until_keyframes: args.until_keyframes,
    };
    let bar = (style.progress && !to_stdout).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        b
    });
    let mut note = |n: Note<'_>| match n {
        Note::Warning(w) => warn(&bar, &w),
        Note::Progress(st) => {
            if let Some(b) = &bar {
                b.set_message(format!(
                    "{}  {:.0} kbit/s  {}  {} video / {} audio frames",
                    media_time(st.media_ms()),
                    st.bitrate_kbps(),
                    human_bytes(st.bytes),
                    st.video_frames,
                    st.audio_frames
                ));
                b.tick();
            }
        }
    };
    let (mut st, fault) =
        rtmptool::play::receive(&mut d, &mut out, &limits, &mut sig, &mut note).await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let wall = t0.elapsed();
    let failure = fault.map(|f| match f {
        Fault::Idle if st.tags == 0 => err(
            exit::NETWORK,
            format!(
                "{shown}: play: no media arrived within {idle:?} of play (is anyone publishing this stream?)"
            ),
        ),
        Fault::Idle => err(
            exit::NETWORK,
            format!(
                "{shown}: play: the stream stalled: nothing for {idle:?} after {} tags, {} of media",
                st.tags,
                media_time(st.media_ms())
            ),
        ),
        Fault::Broke(e) => streaming::broke_mid_stream(
            &e,
            &format!("{shown}: play"),
            &format!(
                "{} tags, {} of media, {}",
                st.tags,
                media_time(st.media_ms()),
                human_bytes(st.bytes)
            ),
        ),
        Fault::Stopped(s) => err(
            exit::REFUSED,
            format!(
                "{shown}: play: the server stopped the stream: {}",
                streaming::refusal(url, &s.code, &s.description, args.conn.reveal_keys)
            ),
        ),
        Fault::Write(e) => write_failed(&out, &e),
    });
    if failure.is_none() || st.interrupted {
        d.session.close();
        let _ = tokio::time::timeout(global.timeout, d.flush()).await;
        let _ = tokio::time::timeout(global.timeout, d.stream.shutdown()).await;
    }
    if st.interrupted && st.tags == 0 && failure.is_none() {
        // Ctrl-C before anything came (waiting for a publisher): nothing
        // could be saved (CLI.md: 130), and no header-only file is left.
        out.discard();
        return Err(err(
            exit::INTERRUPTED,
            format!("{shown}: play: interrupted before any media arrived; nothing written"),
        ));
    }
    let kept = if st.output_closed {
        None
    } else if st.tags == 0 && failure.is_some() {
        out.discard();
        None
    } else {
        match out.finish(&st) {
            Ok(p) => p,
            Err(e) => match out.write_error(e, &mut st) {
                None => None,
                Some(Fault::Write(e)) => {
                    let f = write_failed(&out, &e);
                    out.discard();
                    return Err(f);
                }
                Some(_) => None,
            },
        }
    };
    report(&style, &st, wall, url, args, to_stdout, kept.as_deref());
    match failure {
        None => Ok(()),
        Some(mut f) => {
            if let Some(p) = kept {
                f.error =
                    f.error
                        .context(format!("kept {} whole tags in {}", st.tags, p.display()));
            }
            Err(f)
        }
    }
}

/// A warning line on stderr (around the progress bar).
fn warn(bar: &Option<indicatif::ProgressBar>, w: &str) {
    let line = format!("rtmptool: warning: {}", rtmptool::text::sanitize(w));
    match bar {
        Some(b) => b.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
    }
}

/// The exit of an output that could not be written.
fn write_failed(out: &Output, e: &std::io::Error) -> Exit {
    let code = if e.kind() == std::io::ErrorKind::BrokenPipe {
        exit::FAILURE
    } else {
        exit::BAD_INPUT
    };
    err(code, format!("cannot write the output {}: {e}", out.name()))
}

fn report(
    style: &Style,
    st: &PlayStats,
    wall: Duration,
    url: &RtmpUrl,
    args: &PlayArgs,
    to_stdout: bool,
    kept: Option<&Path>,
) {
    // With the FLV on stdout, the statistics go to stderr.
    let mut out: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let (gop_frames, gop_ms) = st.gop();
    let av_start = match (st.first_video, st.first_audio) {
        (Some(v), Some(a)) => Some(i64::from(a) - i64::from(v)),
        _ => None,
    };
    if style.json {
        let _ = write_json_line(
            &mut out,
            &json!({
                "type": "stats",
                "url": url.shown(args.conn.reveal_keys),
                "output": kept.map(|p| p.display().to_string()),
                "bytes": st.bytes,
                "tags": st.tags,
                "video_frames": st.video_frames,
                "audio_frames": st.audio_frames,
                "keyframes": st.keyframes,
                "duration_ms": st.media_ms() as f64,
                "bitrate_kbps": st.bitrate_kbps(),
                "fps": st.fps(),
                "gop_frames": gop_frames,
                "gop_ms": gop_ms,
                "av_start_offset_ms": av_start,
                "av_max_spread_ms": (st.has_audio && st.has_video).then_some(st.max_spread),
                "gaps": st.gaps,
                "regressions": st.regressions,
                "malformed_messages": st.malformed,
                "wall_ms": ms_f(wall),
                "interrupted": st.interrupted,
                "output_closed": st.output_closed,
            }),
        );
    } else if style.verbosity >= 0 {
        let opt = |v: Option<f64>, unit: &str| v.map_or("-".into(), |v| format!("{v}{unit}"));
        let _ = writeln!(
            out,
            "played {}{}: {} video frames ({} keyframes, GOP {} / {}), {} audio frames, {} tags, {} in {} of media ({:.0} kbit/s, {} fps); A/V start offset {}, max spread {}; {} gaps > {GAP_MS} ms, {} timestamp regressions; wall {:.3} s{}",
            url.shown(args.conn.reveal_keys),
            kept.map_or(String::new(), |p| format!(" into {}", p.display())),
            st.video_frames,
            st.keyframes,
            opt(gop_frames, " frames"),
            opt(gop_ms, " ms"),
            st.audio_frames,
            st.tags,
            human_bytes(st.bytes),
            media_time(st.media_ms()),
            st.bitrate_kbps(),
            opt(st.fps(), ""),
            av_start.map_or("-".into(), |v| format!("{v} ms")),
            if st.has_audio && st.has_video {
                format!("{} ms", st.max_spread)
            } else {
                "-".into()
            },
            st.gaps,
            st.regressions,
            wall.as_secs_f64(),
            if st.interrupted {
                " (interrupted)"
            } else if st.output_closed {
                " (the reader of the output went away)"
            } else {
                ""
            }
        );
    }
    let _ = out.flush();
}
