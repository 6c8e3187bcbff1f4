//! `rtmptool serve`: wires the arguments to [`rtmptool::serve`], runs it on
//! a single-threaded runtime until Ctrl-C or `--duration`, and renders its
//! events: one human line each (findings with their fix), or `session`,
//! `finding` (with `peer` and `time`) and `skipped` NDJSON records.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::streaming::err;
use crate::cli::{GlobalArgs, ServeArgs};
use crate::report::diagnose::finding_json;
use crate::report::{Style, write_json_line};
use crate::{Exit, exit};
use rtmptool::serve::{self, Rule, ServeConfig, ServeEvent, hub::HubLimits};

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One event as a JSON record.
fn event_json(ev: &ServeEvent) -> serde_json::Value {
    match ev {
        ServeEvent::Listening { addr, tls } => {
            json!({"type":"listening","addr":addr.to_string(),"tls":tls,"time":now_secs()})
        }
        ServeEvent::Session {
            peer,
            id,
            kind,
            stream,
            detail,
            stats,
        } => json!({
            "type":"session","peer":peer.to_string(),"id":id,"event":kind.as_str(),
            "stream":stream,"detail":detail,"time":now_secs(),
            "bytes_in":stats.bytes_in,"bytes_out":stats.bytes_out,
            "messages":stats.messages,"skipped":stats.skipped,
        }),
        ServeEvent::Finding { peer, finding } => {
            let mut v = finding_json(finding);
            if let Some(m) = v.as_object_mut() {
                m.insert("peer".into(), json!(peer.to_string()));
                m.entry("time").or_insert(json!(now_secs()));
            }
            v
        }
        ServeEvent::Skipped {
            peer,
            id,
            stream,
            dropped,
        } => json!({
            "type":"skipped","peer":peer.to_string(),"id":id,"stream":stream,
            "dropped":dropped,"time":now_secs(),
        }),
        ServeEvent::Recording { peer, path } => {
            json!({"type":"recording","peer":peer.to_string(),"path":path,"time":now_secs()})
        }
    }
}

/// One event in words.
fn event_text(ev: &ServeEvent, style: &Style) -> Option<String> {
    let clean = |s: &str| rtmptool::text::sanitize(s).into_owned();
    Some(match ev {
        ServeEvent::Listening { addr, tls } => format!(
            "listening on {addr} (rtmp://{addr}/{})",
            if *tls { ", rtmps:// too" } else { "" }
        )
        .replace("/)", ")"),
        ServeEvent::Session {
            peer,
            id,
            kind,
            stream,
            detail,
            stats,
        } => {
            use rtmptool::serve::SessionKind as K;
            let mut s = format!("#{id} {peer} {:<8} {}", kind.as_str(), clean(stream));
            if !detail.is_empty() {
                s.push_str(&format!(" ({})", clean(detail)));
            }
            if *kind == K::Close {
                s.push_str(&format!(
                    ": {} bytes in, {} out, {} messages",
                    stats.bytes_in, stats.bytes_out, stats.messages
                ));
                if stats.skipped > 0 {
                    s.push_str(&format!(", {} skipped", stats.skipped));
                }
                if style.verbosity < 1 && stats.bytes_in == 0 {
                    return None;
                }
            }
            s
        }
        ServeEvent::Finding { peer, finding } => {
            if style.verbosity < 1 && finding.severity == rtmptool::diag::Severity::Info {
                return None;
            }
            format!(
                "#{} {peer} {:<8} {}: {}\n    fix: {}",
                finding.conn_id,
                finding.severity.as_str(),
                finding.code.as_str(),
                finding.message,
                finding.fix
            )
        }
        ServeEvent::Skipped {
            peer,
            id,
            stream,
            dropped,
        } => format!(
            "#{id} {peer} skipped  {}: the player fell behind (256 KiB waiting for it, or --queue messages behind); {dropped} messages dropped, going on at the next key frame",
            clean(stream)
        ),
        ServeEvent::Recording { peer, path } => {
            format!("   {peer} recording to {}", clean(path))
        }
    })
}

/// Runs `serve`.
pub fn run(args: &ServeArgs, global: &GlobalArgs) -> Result<(), Exit> {
    let style = Style::from_args(global);
    let mut rules = Vec::new();
    for (allow, list) in [(true, &args.allow), (false, &args.deny)] {
        for r in list {
            rules.push(Rule::parse(allow, r).map_err(|e| err(exit::USAGE, e))?);
        }
    }
    // clap keeps --allow and --deny apart; their order on the command line
    // decides (first match wins), as in nginx.
    let order = |r: &str| {
        std::env::args()
            .position(|a| a == r || a.ends_with(&format!("={r}")))
            .unwrap_or(usize::MAX)
    };
    let mut texts: Vec<(usize, Rule)> = args
        .allow
        .iter()
        .chain(&args.deny)
        .zip(rules.iter().copied())
        .map(|(t, r)| (order(t), r))
        .collect();
    texts.sort_by_key(|(i, _)| *i);
    let rules = texts.into_iter().map(|(_, r)| r).collect();
    let tls = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => Some(Arc::new(
            rtmptool::net::tls::server_config(c, k).map_err(|e| err(exit::TLS, e))?,
        )),
        _ => None,
    };
    if let Some(dir) = &args.record
        && !dir.is_dir()
    {
        return Err(err(
            exit::BAD_INPUT,
            format!("--record {}: not a directory", dir.display()),
        ));
    }
    let cfg = ServeConfig {
        listen: args.listen.clone(),
        tls,
        record_dir: args.record.clone(),
        publish_key: args.publish_key.clone(),
        rules,
        max_connections: args.max_connections,
        max_message: args.max_message,
        handshake_timeout: args.handshake_timeout,
        idle_timeout: args.idle_timeout,
        chunk_size: args.chunk_size,
        hub: HubLimits {
            queue: args.queue as usize,
            ..HubLimits::default()
        },
        send_buffer: 256 * 1024,
        merge_writes: args.merge_writes,
        reveal_keys: args.reveal_keys,
    };
    let rt = super::runtime()?;
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let summary_out = out.clone();
    let json = style.json;
    let sink_style = style;
    let sink: serve::Sink = Arc::new(move |ev: ServeEvent| {
        let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = if json {
            write_json_line(&mut *o, &event_json(&ev))
        } else {
            match event_text(&ev, &sink_style) {
                Some(line) => writeln!(o, "{line}"),
                None => Ok(()),
            }
        };
        let _ = o.flush();
    });
    let duration = args.duration;
    rt.block_on(async move {
        let mut sig = super::streaming::sigint()?;
        let listeners = serve::bind(&cfg)
            .await
            .map_err(|e| err(exit::NETWORK, e.to_string()))?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(serve::run(cfg, listeners, sink, rx));
        super::streaming::until_interrupted(&mut sig, duration).await;
        let _ = tx.send(true);
        let summary = server
            .await
            .map_err(|e| err(exit::FAILURE, format!("server task failed: {e}")))?;
        if json {
            let mut o = summary_out.lock().unwrap_or_else(|e| e.into_inner());
            let _ = write_json_line(
                &mut *o,
                &json!({"type":"serve_summary","connections":summary.connections,
                    "findings":summary.findings,"time":now_secs()}),
            );
        } else if style.verbosity >= 0 {
            eprintln!(
                "served {} connection{}, {} finding{}",
                summary.connections,
                if summary.connections == 1 { "" } else { "s" },
                summary.findings,
                if summary.findings == 1 { "" } else { "s" }
            );
        }
        Ok(())
    })
}
