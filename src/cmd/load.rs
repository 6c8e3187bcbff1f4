//! `rtmptool load URL`: many players and publishers from one process
//! ([`rtmptool::load`]). Builds one URL per stream from the pattern, checks
//! the open-files limit, runs the engine on a single-threaded runtime, and
//! renders its progress (JSON records every second, or a live table on a
//! TTY stderr) and summary; exit codes: `--fail-if` violated → 8, else
//! connection failures → the class of the most frequent one.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use serde_json::json;

use super::streaming::err;
use crate::cli::{GlobalArgs, LoadArgs, ProbeCarrier};
use crate::report::{Style, write_json_line};
use crate::{Exit, exit};
use rtmptool::load::report::{FailureCount, Percentiles};
use rtmptool::load::{self, FailureClass, LoadConfig, Probe, Progress, SharedFlv, Summary};
use rtmptool::net::RtmpUrl;

/// The exit code of a failure class (CLI.md).
pub fn class_code(c: FailureClass) -> u8 {
    match c {
        FailureClass::Network => exit::NETWORK,
        FailureClass::Handshake => exit::HANDSHAKE,
        FailureClass::Refused => exit::REFUSED,
        FailureClass::Protocol => exit::PROTOCOL,
    }
}

/// One URL per stream: `--stream-pattern` replaces the URL's path, else a
/// `{i}` in the URL is the stream number.
fn stream_urls(args: &LoadArgs, count: u64) -> Result<Vec<RtmpUrl>, Exit> {
    let template = match &args.stream_pattern {
        Some(p) => {
            let (scheme, rest) = args.url.split_once("://").ok_or_else(|| {
                err(
                    exit::BAD_INPUT,
                    "the URL has no scheme: give rtmp://host[:port]/app/stream".into(),
                )
            })?;
            let authority = rest.split('/').next().unwrap_or(rest);
            format!("{scheme}://{authority}/{}", p.trim_start_matches('/'))
        }
        None => args.url.clone(),
    };
    if count > 1 && !template.contains("{i}") {
        return Err(err(
            exit::USAGE,
            format!(
                "{count} streams need distinct names: put {{i}} in the URL's stream name or give --stream-pattern 'live/s{{i}}'"
            ),
        ));
    }
    (0..count.max(1))
        .map(|i| {
            let u = template.replace("{i}", &i.to_string());
            let url = RtmpUrl::parse(&u, args.app.as_deref(), None)
                .map_err(|e| err(exit::BAD_INPUT, e.to_string()))?;
            if url.tls {
                return Err(err(
                    exit::USAGE,
                    "load speaks rtmp:// only (rtmps:// is not supported yet)".into(),
                ));
            }
            Ok(url)
        })
        .collect()
}

/// Runs `load`.
pub fn run(args: &LoadArgs, global: &GlobalArgs) -> Result<(), Exit> {
    let style = Style::from_args(global);
    if args.players + args.publishers == 0 {
        return Err(err(
            exit::USAGE,
            "nothing to do: give --players N and/or --publishers M --flv FILE".into(),
        ));
    }
    let streams = if args.publishers > 0 {
        args.publishers
    } else {
        args.streams.unwrap_or(1)
    };
    let urls = stream_urls(args, streams)?;
    let flv = match &args.flv {
        Some(p) if args.publishers > 0 => Some(Arc::new(
            SharedFlv::read(p).map_err(|e| err(exit::BAD_INPUT, e.to_string()))?,
        )),
        _ => None,
    };
    load::check_fds(args.players + args.publishers).map_err(|e| err(exit::USAGE, e.to_string()))?;
    let cfg = LoadConfig {
        streams: urls,
        players: args.players,
        publishers: args.publishers,
        flv,
        ramp: args.ramp,
        duration: args.duration,
        probe: args.delay_probe.then_some(match args.probe_as {
            ProbeCarrier::Video => Probe::Video,
            ProbeCarrier::Data => Probe::Data,
        }),
        timeout: global.timeout,
        chunk_size: args.chunk_size,
        buffer_ms: args.buffer_ms,
        read_every: args.read_every,
        bind: args.bind.clone(),
        reveal_keys: args.reveal_keys,
    };
    let rt = super::runtime()?;
    let live = style.progress && std::io::stderr().is_terminal();
    let mut drawn = 0usize;
    let json = style.json;
    let mut sig = super::streaming::sigint_in(&rt)?;
    let summary = rt.block_on(async {
        let interrupt = sig.recv();
        load::run(cfg, interrupt, |p| {
            if json {
                let mut v = serde_json::to_value(p).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.shift_insert(0, "type".into(), json!("load_progress"));
                    // The same shape as in the summary.
                    if let Some(fs) = o.get_mut("failures") {
                        *fs = failures_json(&p.failures);
                    }
                }
                let _ = write_json_line(&mut std::io::stdout().lock(), &v);
            } else if live {
                let text = table(p);
                let mut e = std::io::stderr().lock();
                if drawn > 0 {
                    let _ = write!(e, "\x1b[{drawn}A\x1b[J");
                }
                let _ = e.write_all(text.as_bytes());
                drawn = text.lines().count();
            }
        })
        .await
    });
    let summary = summary.map_err(|e| err(exit::NETWORK, format!("{}: {e}", args_url(args))))?;
    let mut checks = Vec::new();
    let mut violated = Vec::new();
    for c in &args.fail_if {
        let v = c.violated(&summary);
        let value = summary.value(&c.key);
        checks.push(json!({"condition": c.text, "value": value, "violated": v.is_some()}));
        if v.is_some() {
            violated.push(match value {
                Some(x) => format!("{} (it is {x})", c.text),
                None => format!("{} (no value: nothing was measured)", c.text),
            });
        }
    }
    if json {
        let mut v = serde_json::to_value(&summary).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.shift_insert(0, "type".into(), json!("load_summary"));
            if let Some(fs) = o.get_mut("failures") {
                *fs = failures_json(&summary.failures);
            }
            o.insert("fail_if".into(), json!(checks));
        }
        let _ = write_json_line(&mut std::io::stdout().lock(), &v);
    } else if !global.quiet {
        let _ = std::io::stdout().write_all(human(&summary).as_bytes());
    }
    if !violated.is_empty() {
        return Err(err(
            exit::FAULT,
            format!("--fail-if violated: {}", violated.join("; ")),
        ));
    }
    if let Some(top) = summary.failures.first() {
        return Err(err(
            class_code(top.class),
            format!(
                "{} of {} connections failed; most often in {}: {} ({}×)",
                summary.failed,
                summary.players_requested + summary.publishers_requested,
                top.phase,
                top.reason,
                top.count
            ),
        ));
    }
    Ok(())
}

fn args_url(args: &LoadArgs) -> String {
    RtmpUrl::parse(&args.url.replace("{i}", "0"), args.app.as_deref(), None)
        .map(|u| u.shown(args.reveal_keys))
        .unwrap_or_else(|_| "load".into())
}

/// `failures` as an object: `"phase: reason"` → `{count, exit, class}`.
fn failures_json(fs: &[FailureCount]) -> serde_json::Value {
    let mut o = serde_json::Map::new();
    for f in fs {
        o.insert(
            format!("{}: {}", f.phase, f.reason),
            json!({"phase": f.phase, "reason": f.reason, "count": f.count, "class": f.class, "exit": class_code(f.class)}),
        );
    }
    serde_json::Value::Object(o)
}

fn pct(p: &Percentiles) -> String {
    match (p.p50, p.p99, p.max) {
        (Some(a), Some(b), Some(c)) => format!("{a:.1} / {b:.1} / {c:.1} ms"),
        _ => "-".into(),
    }
}

/// The live table (TTY stderr).
fn table(p: &Progress) -> String {
    let mut s = format!(
        "{:>6.1} s  connecting {}  playing {}  publishing {}  failed {}  closed {}\n",
        p.elapsed_ms / 1000.0,
        p.connecting,
        p.playing,
        p.publishing,
        p.failed,
        p.closed
    );
    s.push_str(&format!(
        "  in {:.1} kbit/s ({:.1} per player)   frames {} video, {} audio\n",
        p.bitrate_kbps, p.per_player_kbps, p.video_frames, p.audio_frames
    ));
    s.push_str(&format!(
        "  p50/p99/max  connect {}   first frame {}   delay {}\n",
        pct(&p.connect_ms),
        pct(&p.first_frame_ms),
        pct(&p.delay_ms)
    ));
    for f in p.failures.iter().take(5) {
        s.push_str(&format!(
            "  failed {:>6}× in {} ({}, exit {}): {}\n",
            f.count,
            f.phase,
            class_name(f.class),
            class_code(f.class),
            f.reason
        ));
    }
    s
}

fn class_name(c: FailureClass) -> &'static str {
    match c {
        FailureClass::Network => "network",
        FailureClass::Handshake => "handshake",
        FailureClass::Refused => "refused",
        FailureClass::Protocol => "protocol",
    }
}

/// The human summary (stdout).
fn human(s: &Summary) -> String {
    let mut o = format!(
        "load {}: {}/{} players, {}/{} publishers, {} failed in {:.1} s{}\n",
        s.url,
        s.players,
        s.players_requested,
        s.publishers,
        s.publishers_requested,
        s.failed,
        s.duration_ms / 1000.0,
        if s.interrupted { " (interrupted)" } else { "" }
    );
    o.push_str(&format!(
        "  received {} bytes ({:.1} kbit/s), sent {} bytes\n",
        s.bytes_in, s.bitrate_kbps, s.bytes_out
    ));
    o.push_str(&format!(
        "  p50/p99/max: connect {}; first frame {}; delay {}\n",
        pct(&s.connect_ms),
        pct(&s.first_frame_ms),
        pct(&s.delay_ms)
    ));
    for st in &s.streams {
        if st.players == 0 && st.published.video_frames + st.published.audio_frames == 0 {
            continue;
        }
        o.push_str(&format!(
            "  stream {} {}: published {} video / {} audio frames; {} players got {}..{} video, {}..{} audio\n",
            st.i,
            st.stream,
            st.published.video_frames,
            st.published.audio_frames,
            st.players,
            st.video_frames.min,
            st.video_frames.max,
            st.audio_frames.min,
            st.audio_frames.max
        ));
    }
    for f in &s.failures {
        o.push_str(&format!(
            "  failed {}× in {} ({}, exit {}): {}\n",
            f.count,
            f.phase,
            class_name(f.class),
            class_code(f.class),
            f.reason
        ));
    }
    o
}
