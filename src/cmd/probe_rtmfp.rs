//! `rtmptool probe rtmfp://host[:port]/app`: IHello (EPD = the URL as
//! ancillary data, or `--fingerprint` / `--hostname`), the RHello's cookie
//! and certificate or the Redirect's addresses, and with `--handshake full`
//! the keying to an open session. Exit 3 for name resolution, 4 for no
//! answer or an unexpected redirect, 9 for a malformed answer.

use std::io::Write;

use anyhow::anyhow;
use serde_json::{Value, json};

use crate::cli::{GlobalArgs, HandshakeChoice, ProbeArgs};
use crate::report::{Style, write_json_line};
use crate::{Exit, exit};
use rtmptool::net::rtmfp::{ProbeError, ProbeOptions, ProbeResult, RtmfpUrl, probe};
use rtmptool::net::url::redact_text_url;
use rtmptool::proto::rtmfp::handshake::{EPD_ANCILLARY, EPD_FINGERPRINT, EPD_HOSTNAME, epd};
use rtmptool::text::{sanitize, sanitize_bytes};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn parse_hex32(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    (0..32)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn record(url: &str, seq: u32, r: &ProbeResult, err: Option<(&str, String)>) -> Value {
    let info = r.cert_info.as_ref();
    json!({
        "type": "probe",
        "seq": seq,
        "url": url,
        "ok": err.is_none(),
        "protocol": "rtmfp",
        "server_addr": r.server.map(|a| a.to_string()),
        "tcp_connect_ms": null,
        "tls_ms": null,
        "rhello_ms": r.rhello_ms,
        "rtt_ms": r.rtt_ms,
        "ihello_sent": r.ihellos,
        "keying_ms": r.keying_ms,
        "handshake_ms": r.open_ms.or(r.rhello_ms),
        "total_ms": r.open_ms.or(r.rhello_ms),
        "server": {
            "cookie": r.cookie.as_deref().map(hex),
            "cert": r.cert.as_deref().map(hex),
            "fingerprint": r.fingerprint.as_ref().map(|f| hex(f)),
            "hostname": info.and_then(|i| i.hostname.as_deref()).map(|h| sanitize_bytes(h).into_owned()),
            "accepts_ancillary_data": info.map(|i| i.accepts_ancillary),
            "ephemeral_dh_groups": info.map(|i| i.ephemeral_groups.clone()),
            "static_dh_groups": info.map(|i| i.static_keys.iter().map(|k| k.0).collect::<Vec<_>>()),
            "redirect": r.redirect.as_ref().map(|a| a.iter().map(|x| json!({"addr": x.addr.to_string(), "origin": x.origin})).collect::<Vec<_>>()),
            "dh_group": r.group,
            "responder_session_id": r.responder_ssid.as_ref().map(|s| hex(s)),
            "hmac": r.hmac.map(|(t, x)| json!({"tx": t, "rx": x})),
            "sseq": r.sseq.map(|(t, x)| json!({"tx": t, "rx": x})),
        },
        "phase": err.as_ref().map(|e| e.0),
        "error": err.map(|e| e.1),
    })
}

fn human(url: &str, r: &ProbeResult, out: &mut dyn Write) -> std::io::Result<()> {
    let server = r.server.map(|a| a.to_string()).unwrap_or_default();
    if let Some(a) = &r.redirect {
        let list: Vec<String> = a
            .iter()
            .map(|x| format!("{} (origin {})", x.addr, x.origin))
            .collect();
        writeln!(
            out,
            "{url} ({server}): Redirect after {:.3} ms to {}",
            r.rhello_ms.unwrap_or(0.0),
            if list.is_empty() {
                "the address the IHello came from".into()
            } else {
                list.join(", ")
            }
        )?;
        return Ok(());
    }
    if let Some(ms) = r.rhello_ms {
        writeln!(
            out,
            "{url} ({server}): RHello after {ms:.3} ms ({} IHello sent, last answered in {:.3} ms)",
            r.ihellos,
            r.rtt_ms.unwrap_or(0.0)
        )?;
    }
    if let Some(c) = &r.cookie {
        writeln!(out, "  cookie       {} bytes", c.len())?;
    }
    if let (Some(i), Some(fp)) = (&r.cert_info, &r.fingerprint) {
        writeln!(out, "  fingerprint  {}", hex(fp))?;
        if let Some(h) = &i.hostname {
            writeln!(out, "  hostname     {}", sanitize_bytes(h))?;
        }
        writeln!(
            out,
            "  certificate  {} bytes; ancillary data {}; ephemeral DH groups {:?}; static DH groups {:?}",
            r.cert.as_ref().map_or(0, |c| c.len()),
            if i.accepts_ancillary {
                "accepted"
            } else {
                "not accepted"
            },
            i.ephemeral_groups,
            i.static_keys.iter().map(|k| k.0).collect::<Vec<_>>()
        )?;
    }
    if let Some(ms) = r.open_ms {
        let (th, rh) = r.hmac.unwrap_or((0, 0));
        let (ts, rs) = r.sseq.unwrap_or((false, false));
        writeln!(
            out,
            "  session open after {ms:.3} ms (keying {:.3} ms), DH group {}, responder session {}, HMAC tx {th} rx {rh} bytes, sequence numbers tx {ts} rx {rs}",
            r.keying_ms.unwrap_or(0.0),
            r.group.unwrap_or(0),
            r.responder_ssid.map(|s| hex(&s)).unwrap_or_default(),
        )?;
    }
    Ok(())
}

/// Runs `probe` for an rtmfp:// URL.
pub fn run(args: &ProbeArgs, global: &GlobalArgs) -> Result<(), Exit> {
    let style = Style::from_args(global);
    let usage = |e: String| Exit {
        code: exit::USAGE,
        error: anyhow!(e),
    };
    let url = RtmfpUrl::parse(&args.url).map_err(|e| Exit {
        code: exit::BAD_INPUT,
        error: anyhow!(e),
    })?;
    if args.publish || args.play {
        return Err(usage("--publish/--play are for rtmp:// URLs".into()));
    }
    let the_epd = if let Some(f) = &args.fingerprint {
        let b = parse_hex32(f)
            .ok_or_else(|| usage(format!("--fingerprint: {f:?} is not 64 hex digits")))?;
        epd(EPD_FINGERPRINT, &b)
    } else if let Some(h) = &args.hostname {
        epd(EPD_HOSTNAME, h.as_bytes())
    } else {
        epd(EPD_ANCILLARY, url.url.as_bytes())
    };
    let groups = match args.dh_group.as_deref() {
        Some("2") => vec![2],
        Some(_) => vec![14],
        None => vec![14, 2],
    };
    let opts = ProbeOptions {
        epd: the_epd,
        full: args.handshake == HandshakeChoice::Full,
        groups,
        timeout: global.timeout,
    };
    let rt = super::runtime()?;
    let shown = if args.reveal_keys {
        url.url.clone()
    } else {
        redact_text_url(&url.url)
    };
    let count = args.count.max(1);
    let url = std::sync::Arc::new(url);
    let opts = std::sync::Arc::new(opts);
    let stdout = std::io::stdout();
    let mut results: Vec<Attempt> = Vec::new();
    // Ctrl-C ends the run like ping's (and like rtmp:// probes): the
    // attempt in flight is dropped, the summary of those completed printed.
    let mut sig = super::streaming::sigint_in(&rt)?;
    let interrupted = rt.block_on(async {
        for seq in 1..=count {
            if seq > 1 {
                tokio::select! {
                    biased;
                    _ = sig.recv() => return true,
                    _ = tokio::time::sleep(args.interval) => {}
                }
            }
            let (u, o) = (url.clone(), opts.clone());
            let job = tokio::task::spawn_blocking(move || {
                let mut r = ProbeResult::default();
                let res = probe(&u, &o, &mut r);
                (r, res)
            });
            let (r, res) = tokio::select! {
                biased;
                _ = sig.recv() => return true,
                j = job => match j {
                    Ok(x) => x,
                    Err(_) => return true,
                },
            };
            let err = res.as_ref().err().map(|e| {
                let (phase, code) = match e {
                    ProbeError::Network(m)
                        if m.starts_with("cannot resolve") || m.contains("has no address") =>
                    {
                        ("resolve", exit::NETWORK)
                    }
                    ProbeError::Network(_) => ("ihello", exit::NETWORK),
                    ProbeError::NoAnswer { what: "IHello", .. } => ("ihello", exit::HANDSHAKE),
                    ProbeError::NoAnswer { .. } | ProbeError::Handshake(_) => {
                        ("keying", exit::HANDSHAKE)
                    }
                    ProbeError::Redirected(_) => ("ihello", exit::HANDSHAKE),
                    ProbeError::Malformed(_) => ("handshake", exit::PROTOCOL),
                };
                (phase, e.to_string(), code)
            });
            let mut out = stdout.lock();
            let e = err.as_ref().map(|(p, m, _)| (*p, m.clone()));
            let w = if style.json {
                write_json_line(&mut out, &record(&shown, seq, &r, e))
            } else if style.verbosity < 0 {
                Ok(())
            } else if seq > 1 {
                // Later attempts: a line each, like ping.
                writeln!(
                    out,
                    "seq={seq} {} rhello={} total={}{}",
                    if err.is_none() { "ok" } else { "FAILED" },
                    fmt_ms(r.rhello_ms),
                    fmt_ms(r.open_ms.or(r.rhello_ms)),
                    err.as_ref()
                        .map_or(String::new(), |(p, _, _)| format!(" ({p} failed)"))
                )
            } else {
                human(&shown, &r, &mut out)
            };
            let _ = w.and_then(|_| out.flush());
            if let Some((phase, m, _)) = &err
                && count > 1
            {
                eprintln!("rtmptool: probe {shown}: {phase} failed: {}", sanitize(m));
            }
            results.push(Attempt { r, err });
        }
        false
    });
    // The attempt Ctrl-C dropped may still wait on its socket.
    rt.shutdown_background();
    if results.is_empty() {
        return Err(Exit {
            code: exit::INTERRUPTED,
            error: anyhow!("probe {shown}: interrupted before the first attempt completed"),
        });
    }
    if count > 1 || interrupted {
        let mut out = stdout.lock();
        let s = summary(&results, interrupted);
        let _ = if style.json {
            write_json_line(&mut out, &s)
        } else if style.verbosity >= 0 || interrupted {
            super::probe::write_summary(&mut out, &s, &["rhello_ms", "keying_ms", "total_ms"])
        } else {
            Ok(())
        };
        let _ = out.flush();
    }
    let failed = results.iter().filter(|a| a.err.is_some()).count();
    match results.iter().rev().find_map(|a| a.err.as_ref()) {
        None => Ok(()),
        Some((phase, m, code)) => Err(Exit {
            code: *code,
            error: if count == 1 {
                anyhow!("probe {shown}: {m}")
            } else {
                anyhow!(
                    "probe {shown}: {failed} of {} attempts failed (the last in {phase}: {m})",
                    results.len()
                )
            },
        }),
    }
}

/// One attempt: what it learned and, if it failed, where, why and the exit
/// code.
struct Attempt {
    r: ProbeResult,
    err: Option<(&'static str, String, u8)>,
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3} ms"))
}

/// The `probe_summary` record of several attempts (the rtmp:// keys that
/// apply: sent, ok, failed, success_ratio, interrupted, phase times,
/// failed_in).
fn summary(results: &[Attempt], interrupted: bool) -> Value {
    let ok = results.iter().filter(|a| a.err.is_none()).count();
    let times = |get: &dyn Fn(&ProbeResult) -> Option<f64>, only_ok: bool| {
        let v: Vec<f64> = results
            .iter()
            .filter(|a| !only_ok || a.err.is_none())
            .filter_map(|a| get(&a.r))
            .collect();
        super::probe::stats(&v)
    };
    let mut failed_in = serde_json::Map::new();
    for (phase, _, _) in results.iter().filter_map(|a| a.err.as_ref()) {
        let n = failed_in.get(*phase).and_then(Value::as_u64).unwrap_or(0);
        failed_in.insert((*phase).into(), json!(n + 1));
    }
    json!({
        "type": "probe_summary",
        "protocol": "rtmfp",
        "sent": results.len(),
        "ok": ok,
        "failed": results.len() - ok,
        "success_ratio": ok as f64 / results.len().max(1) as f64,
        "interrupted": interrupted,
        "rhello_ms": times(&|r| r.rhello_ms, false),
        "keying_ms": times(&|r| r.keying_ms, false),
        "handshake_ms": times(&|r| r.open_ms.or(r.rhello_ms), false),
        "total_ms": times(&|r| r.open_ms.or(r.rhello_ms), true),
        "failed_in": failed_in,
    })
}
