//! `rtmptool relay SRC DST`: reaches both ends with `publish`'s and
//! `play`'s connect ([`super::streaming::connect`]) and runs
//! [`rtmptool::relay`]; says when an end drops or comes back (stderr), and
//! prints the final stats (stdout; a `stats` record with `--json`).

use std::io::{IsTerminal, Write};
use std::time::Instant;

use serde_json::json;

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

use super::streaming::{ConnectOptions, connect, err, human_bytes, sigint, until_interrupted};
use crate::cli::{GlobalArgs, RelayArgs};
use crate::report::{Style, write_json_line};
use crate::{Exit, exit};
use rtmptool::net::{Driver, RtmpUrl};
use rtmptool::proto::session::Goal;
use rtmptool::relay::{self, ConnectError, Connector, Progress, RelayConfig, RelayStats, Side};

struct Ends<'a> {
    src: RtmpUrl,
    dst: RtmpUrl,
    args: &'a RelayArgs,
    timeout: std::time::Duration,
}

impl Connector for Ends<'_> {
    async fn connect(&mut self, side: Side) -> Result<Driver, ConnectError> {
        let (url, goal) = match side {
            Side::Source => (
                &self.src,
                Goal::Play {
                    stream: self.src.stream_with_query(),
                    start: -2.0,
                    buffer_ms: 1000,
                },
            ),
            Side::Destination => (
                &self.dst,
                Goal::Publish {
                    stream: self.dst.stream_with_query(),
                    kind: "live".into(),
                },
            ),
        };
        connect(ConnectOptions {
            url,
            goal,
            chunk_size: self.args.chunk_size,
            timeout: self.timeout,
            ca: self.args.ca.clone(),
            insecure: self.args.insecure,
            reveal_keys: self.args.reveal_keys,
            connect_extra: Vec::new(),
        })
        .await
        .map_err(|e| ConnectError {
            code: e.code,
            message: format!("{:#}", e.error),
        })
    }
}

fn stats_json(s: &RelayStats, secs: f64, src: &str, dst: &str) -> serde_json::Value {
    json!({
        "type": "stats", "src": src, "dst": dst,
        "bytes": s.bytes, "video_frames": s.frames.video_frames,
        "audio_frames": s.frames.audio_frames, "keyframes": s.frames.keyframes,
        "duration_ms": (secs * 1e6).round() / 1e3,
        "bitrate_kbps": if secs > 0.0 { (s.bytes as f64 * 8.0 / secs / 1000.0 * 10.0).round() / 10.0 } else { 0.0 },
        "source_reconnects": s.source_reconnects,
        "destination_reconnects": s.destination_reconnects,
        "dropped": s.dropped,
        "timestamp_shift_ms": s.timestamp_shift_ms,
        "relay_latency_ms": {
            "count": s.latency_us.count(),
            "p50": s.latency_us.quantile_ms(0.5),
            "p99": s.latency_us.quantile_ms(0.99),
            "max": s.latency_us.quantile_ms(1.0),
        },
    })
}

/// Runs `relay`.
pub fn run(args: &RelayArgs, global: &GlobalArgs) -> Result<(), Exit> {
    let style = Style::from_args(global);
    let parse =
        |u: &str| RtmpUrl::parse(u, None, None).map_err(|e| err(exit::BAD_INPUT, e.to_string()));
    if let Some(addr) = args.listen {
        let [dst] = args.urls.as_slice() else {
            return Err(err(
                exit::USAGE,
                "relay --listen ADDR takes one URL: the server to carry encoders to".into(),
            ));
        };
        // rtmp://host[:port] carries the encoder's app and stream name;
        // a path replaces them (…/APP, or …/APP/STREAM).
        let rest = dst.split_once("://").map_or("", |(_, r)| r);
        let has_path = rest
            .find(['/', '?'])
            .is_some_and(|i| !rest[i..].trim_start_matches('/').is_empty());
        let url = if has_path {
            parse(dst)?
        } else {
            parse(&format!("{}/_", dst.trim_end_matches('/')))?
        };
        return listen(args, global, style, addr, url, has_path);
    }
    let [src, dst] = args.urls.as_slice() else {
        return Err(err(
            exit::USAGE,
            "relay takes SRC_URL and DST_URL (or --listen ADDR DST_URL)".into(),
        ));
    };
    let src = parse(src)?;
    let dst = parse(dst)?;
    let (src_shown, dst_shown) = (src.shown(args.reveal_keys), dst.shown(args.reveal_keys));
    if src.same_stream(&dst) {
        return Err(err(
            exit::USAGE,
            format!(
                "relay: {src_shown} is both the source and the destination: the relay would publish the stream it plays"
            ),
        ));
    }
    // What a server says may name either end's key (onStatus descriptions).
    let (src_c, dst_c) = (src.clone(), dst.clone());
    let reveal = args.reveal_keys;
    let scrub = move |text: &str| -> String {
        let t = rtmptool::text::sanitize(text);
        let t = src_c.scrub(&t, reveal);
        dst_c.scrub(&t, reveal).into_owned()
    };
    let mut ends = Ends {
        src,
        dst,
        args,
        timeout: global.timeout,
    };
    let cfg = RelayConfig {
        reconnect: args.reconnect,
        queue_bytes: args.queue,
        stall: global.timeout,
        ..RelayConfig::default()
    };
    let rt = super::runtime()?;
    let quiet = style.verbosity < 0;
    let json = style.json;
    let started = Instant::now();
    let live = std::io::stderr().is_terminal() && !json && !quiet;
    let mut last_bytes = 0u64;
    let mut shown_live = false;
    let progress = |p: &Progress, s: &RelayStats| {
        if let Progress::Tick = p {
            // A live status line on a terminal: bitrate over the last
            // second, frames, reconnects, queue depth.
            if live {
                let kbps = (s.bytes - last_bytes.min(s.bytes)) as f64 * 8.0 / 1000.0;
                last_bytes = s.bytes;
                eprint!(
                    "\r\x1b[K{:.0} kbit/s, {} video / {} audio frames, reconnects {}+{}, queue {}, dropped {}",
                    kbps,
                    s.frames.video_frames,
                    s.frames.audio_frames,
                    s.source_reconnects,
                    s.destination_reconnects,
                    human_bytes(s.queued as u64),
                    s.dropped
                );
                shown_live = true;
            }
            return;
        }
        if shown_live {
            eprint!("\r\x1b[K");
            shown_live = false;
        }
        let line = match p {
            Progress::Tick => return,
            Progress::Flowing => format!("relaying {src_shown} → {dst_shown}"),
            Progress::Dropped { side, why } => format!(
                "{} dropped: {}{}",
                side.name(),
                scrub(why),
                if args.reconnect { "; reconnecting" } else { "" }
            ),
            Progress::Reconnected { side } => format!(
                "{} reconnected (reconnects: source {}, destination {})",
                side.name(),
                s.source_reconnects,
                s.destination_reconnects
            ),
            Progress::Skipping { queued, video } => format!(
                "the destination is slower than the source: {} waiting; dropping media {}",
                human_bytes(*queued as u64),
                if *video {
                    "to the next key frame"
                } else {
                    "until it takes audio again"
                }
            ),
            Progress::SourceEnded => {
                "the source's publisher left; waiting for the next (the destination's stream stays up)"
                    .to_owned()
            }
            Progress::Shifted { shift_ms } => format!(
                "the source's stream started again behind the destination's time: its timestamps are now sent {shift_ms} ms later, so the destination's do not go back"
            ),
        };
        if json {
            let _ = write_json_line(
                &mut std::io::stdout(),
                &json!({"type":"relay_event","message":line,"elapsed_ms":(started.elapsed().as_secs_f64()*1e6).round()/1e3}),
            );
        } else if !quiet {
            eprintln!("{line}");
        }
    };
    let result: Result<Result<RelayStats, relay::RelayError>, Exit> = rt.block_on(async {
        let mut sig = sigint()?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        let duration = args.duration;
        // A task of its own: the relay's wakeups do not poll it.
        let stopper = tokio::spawn(async move {
            until_interrupted(&mut sig, duration).await;
            let _ = tx.send(true);
        });
        let r = relay::run(&mut ends, cfg, progress, rx).await;
        stopper.abort();
        Ok(r)
    });
    if live {
        eprint!("\r\x1b[K");
    }
    let secs = started.elapsed().as_secs_f64();
    let (stats, failure) = match result? {
        Ok(s) => (s, None),
        Err(e) => (e.stats, Some((e.code, e.side, e.message))),
    };
    let out = std::io::stdout();
    let mut o = out.lock();
    if json {
        let _ = write_json_line(&mut o, &stats_json(&stats, secs, &src_shown, &dst_shown));
    } else if !quiet {
        let _ = writeln!(
            o,
            "relayed {src_shown} → {dst_shown}: {} video frames ({} keyframes), {} audio frames, {} in {:.1} s; reconnects: source {}, destination {}; dropped {}{}",
            stats.frames.video_frames,
            stats.frames.keyframes,
            stats.frames.audio_frames,
            human_bytes(stats.bytes),
            secs,
            stats.source_reconnects,
            stats.destination_reconnects,
            stats.dropped,
            if stats.timestamp_shift_ms > 0 {
                format!("; timestamps shifted by {} ms", stats.timestamp_shift_ms)
            } else {
                String::new()
            }
        );
    }
    match failure {
        None => Ok(()),
        Some((code, side, message)) => Err(err(
            code,
            format!(
                "relay: {} {}: {}",
                side.name(),
                match side {
                    relay::Side::Source => &src_shown,
                    relay::Side::Destination => &dst_shown,
                },
                scrub(&message)
            ),
        )),
    }
}

/// `relay --listen ADDR DST`: the decoding proxy, its records rendered by
/// `dump`'s renderer, its findings by `diagnose`'s.
fn listen(
    args: &RelayArgs,
    global: &GlobalArgs,
    style: Style,
    addr: std::net::SocketAddr,
    dst: RtmpUrl,
    has_path: bool,
) -> Result<(), Exit> {
    use crate::cli::DumpArgs;
    use crate::report::dump::{Filter, Renderer};
    use rtmptool::relay::proxy::{self, ProxyConfig, ProxyEvent};
    let dump_args = DumpArgs {
        input: "-".into(),
        hex: false,
        stats: false,
        conn: Vec::new(),
        dir: None,
        msg_type: Vec::new(),
        stream_id: Vec::new(),
        command: Vec::new(),
        port: None,
        keylog: None,
        // The proxy shortens each connection's secrets itself (it knows
        // --reveal-keys).
        reveal_keys: true,
    };
    let filter = Filter::from_args(&dump_args).map_err(|e| err(exit::USAGE, e.to_string()))?;
    let renderer =
        std::sync::Mutex::new(Renderer::new(std::io::stdout(), style, &dump_args, filter));
    let json = style.json;
    let rewrite = proxy::Rewrite::from_url(&dst, has_path);
    let shown = if has_path {
        dst.shown(args.reveal_keys)
    } else {
        format!("{} (the encoder's app and stream name)", dst.server())
    };
    let sink: proxy::ProxySink = std::sync::Arc::new(move |ev: ProxyEvent| {
        let mut r = renderer.lock().unwrap_or_else(|e| e.into_inner());
        match ev {
            ProxyEvent::Record(rec) => {
                let _ = r.record(&rec);
                let _ = r.flush();
            }
            ProxyEvent::Finding { peer, finding: f } => {
                drop(r);
                let mut o = std::io::stdout().lock();
                if json {
                    // As serve's: the finding record plus the peer and the time.
                    let mut v = crate::report::diagnose::finding_json(&f);
                    if let Some(m) = v.as_object_mut() {
                        m.insert("peer".into(), json!(peer.to_string()));
                        m.entry("time").or_insert(json!(now_secs()));
                    }
                    let _ = write_json_line(&mut o, &v);
                } else {
                    let _ = writeln!(
                        o,
                        "#{} finding {} {}: {}\n    fix: {}",
                        f.conn_id,
                        f.severity.as_str(),
                        f.code.as_str(),
                        f.message,
                        f.fix
                    );
                }
            }
            ProxyEvent::Session {
                id,
                peer,
                event,
                stream,
                detail,
            } => {
                drop(r);
                if json {
                    let _ = write_json_line(
                        &mut std::io::stdout().lock(),
                        &json!({"type":"session","peer":peer.to_string(),"id":id,"event":event,
                                "stream":stream,"detail":detail,"time":now_secs()}),
                    );
                } else if !detail.is_empty() {
                    eprintln!(
                        "#{id} {peer}: {event} {}, {}",
                        rtmptool::text::sanitize(&stream),
                        rtmptool::text::sanitize(&detail)
                    );
                }
            }
            ProxyEvent::Accepted { id, peer } => {
                if !json {
                    eprintln!("#{id} {peer}: encoder connected");
                }
            }
            ProxyEvent::Closed {
                id,
                peer,
                why,
                bytes,
            } => {
                if json {
                    let _ = write_json_line(
                        &mut std::io::stdout().lock(),
                        &json!({"type":"session","peer":peer.to_string(),"id":id,"event":"close",
                                "detail":rtmptool::text::sanitize(&why),"time":now_secs(),
                                "bytes_in":bytes[0],"bytes_out":bytes[1]}),
                    );
                } else {
                    eprintln!(
                        "#{id} {peer}: {} ({} bytes from the encoder, {} from the server)",
                        rtmptool::text::sanitize(&why),
                        bytes[0],
                        bytes[1]
                    );
                }
            }
        }
    });
    let cfg = ProxyConfig {
        upstream: dst,
        rewrite,
        tls: rtmptool::net::tls::TlsOptions {
            ca: args.ca.clone(),
            insecure: args.insecure,
        },
        timeout: global.timeout,
        reveal_keys: args.reveal_keys,
        record: args.record.clone(),
    };
    let rt = super::runtime()?;
    let duration = args.duration;
    rt.block_on(async move {
        let mut sig = sigint()?;
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| err(exit::NETWORK, format!("cannot listen on {addr}: {e}")))?;
        if !json && style.verbosity >= 0 {
            eprintln!("relaying encoders on {addr} to {shown}");
        }
        let (tx, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(proxy::run(l, cfg, sink, rx));
        until_interrupted(&mut sig, duration).await;
        let _ = tx.send(true);
        let _ = task.await;
        Ok(())
    })
}
