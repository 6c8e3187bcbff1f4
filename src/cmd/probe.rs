//! `rtmptool probe URL`: reach a server phase by phase (resolve, TCP, TLS,
//! RTMP handshake, connect, and with `--publish`/`--play` createStream and
//! publish/play), time each with a monotonic clock, record what the server
//! announced, and explain a failure in words with the exit code of CLI.md.

use std::io::Write;

use serde_json::{Value, json};

use crate::cli::{GlobalArgs, HandshakeChoice, OnOff, ProbeArgs};
use crate::report::{Style, write_json_line};
use crate::{Exit, exit};
use rtmptool::net::{Phase, RtmpUrl, TlsOptions};
use rtmptool::probe::{Attempt, Fault, ProbeOptions, attempt, hs_kind};
use rtmptool::proto::capabilities;
use rtmptool::text::sanitize;

/// The exit code of CLI.md for a failure.
fn exit_code(f: Option<Fault>) -> u8 {
    match f {
        Some(Fault::Network) | None => exit::NETWORK,
        Some(Fault::BadInput) => exit::BAD_INPUT,
        Some(Fault::Tls) => exit::TLS,
        Some(Fault::Handshake) => exit::HANDSHAKE,
        Some(Fault::Refused) => exit::REFUSED,
        Some(Fault::Protocol) => exit::PROTOCOL,
    }
}

/// Runs the probe; the exit code is 0 when every attempt succeeded, else the
/// code of the last failure.
pub fn run(args: &ProbeArgs, global: &GlobalArgs) -> Result<(), Exit> {
    if args.url.starts_with("rtmfp://") {
        return super::probe_rtmfp::run(args, global);
    }
    if args.handshake == HandshakeChoice::Full {
        return Err(Exit {
            code: exit::USAGE,
            error: anyhow::anyhow!("--handshake full is for rtmfp:// URLs"),
        });
    }
    let style = Style::from_args(global);
    let mut url =
        RtmpUrl::parse(&args.url, args.app.as_deref(), args.stream.as_deref()).map_err(|e| {
            Exit {
                code: exit::BAD_INPUT,
                error: e.into(),
            }
        })?;
    if let Some(t) = &args.tcurl {
        // A token in --tcurl is as secret as one in the URL.
        url.keep_secret(t);
    }
    if args.insecure && url.tls {
        eprintln!(
            "rtmptool: WARNING: --insecure: the server's certificate is NOT verified; anyone on the path can impersonate it"
        );
    }
    let options = ProbeOptions {
        simple_handshake: args.handshake == HandshakeChoice::Simple,
        publish: args.publish,
        play: args.play,
        tc_url: args.tcurl.clone(),
        flash_ver: args.flashver.clone(),
        enhanced: args.enhanced,
        quickack: args.quickack == OnOff::On,
        tls: TlsOptions {
            ca: args.ca.clone(),
            insecure: args.insecure,
        },
        reveal_keys: args.reveal_keys,
        timeout: global.timeout,
    };
    let rt = super::runtime()?;
    let stdout = std::io::stdout();
    let count = args.count.max(1);
    let shown = url.shown(args.reveal_keys);
    let mut results = Vec::new();
    // Ctrl-C ends the run like ping's: the attempt in flight is dropped, the
    // summary of those completed is printed.
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
            let a = tokio::select! {
                biased;
                _ = sig.recv() => return true,
                a = attempt(&options, &url) => a,
            };
            let mut out = stdout.lock();
            let _ = if style.json {
                write_json_line(&mut out, &record(seq, args, &url, &a))
            } else if style.verbosity >= 0 {
                human(&mut out, seq, count, args, &url, &a)
            } else {
                Ok(())
            };
            let _ = out.flush();
            if !a.ok && count > 1 {
                eprintln!(
                    "rtmptool: probe {shown}: {} failed: {}",
                    a.phase.map_or("?", Phase::name),
                    sanitize(a.error.as_deref().unwrap_or(""))
                );
            }
            results.push(a);
        }
        false
    });
    if results.is_empty() {
        return Err(Exit {
            code: exit::INTERRUPTED,
            error: anyhow::anyhow!("probe {shown}: interrupted before the first attempt completed"),
        });
    }
    if count > 1 || interrupted {
        let mut out = stdout.lock();
        let _ = if style.json {
            write_json_line(&mut out, &summary_json(&results, interrupted))
        } else if style.verbosity >= 0 || interrupted {
            human_summary(&mut out, &results, interrupted)
        } else {
            Ok(())
        };
        let _ = out.flush();
    }
    match results.iter().rev().find(|a| !a.ok) {
        None => Ok(()),
        Some(a) => Err(Exit {
            code: exit_code(a.fault),
            // With --count, each failure was said as it came: the last line
            // sums them up (one attempt interrupted said it already).
            error: if count == 1 {
                anyhow::anyhow!(
                    "probe {shown}: {} failed: {}",
                    a.phase.map_or("?", Phase::name),
                    a.error.as_deref().unwrap_or("")
                )
            } else {
                anyhow::anyhow!(
                    "probe {shown}: {} of {} attempts failed (the last in {}: {})",
                    results.iter().filter(|a| !a.ok).count(),
                    results.len(),
                    a.phase.map_or("?", Phase::name),
                    a.error.as_deref().unwrap_or("")
                )
            },
        }),
    }
}

/// The E-RTMP capabilities a server stated, in a line: `video *=forward;
/// audio *=forward; capsEx multitrack+modex; fourCcList *`.
fn enhanced_text(e: &Value) -> String {
    let mut parts = Vec::new();
    for (k, label) in [
        ("video_fourcc_info_map", "video"),
        ("audio_fourcc_info_map", "audio"),
    ] {
        if let Some(m) = e[k].as_object() {
            let codecs: Vec<String> = m
                .iter()
                .map(|(cc, v)| {
                    let mask = v.as_u64().unwrap_or(0) as u32;
                    format!("{}={}", sanitize(cc), capabilities::mask_names(mask))
                })
                .collect();
            parts.push(format!("{label} {}", codecs.join(" ")));
        }
    }
    if let Some(c) = e["caps_ex"].as_u64() {
        let names: Vec<&str> = e["caps_ex_names"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let names = if names.is_empty() {
            "none".to_owned()
        } else {
            names.join("+")
        };
        parts.push(format!("capsEx {c} ({names})"));
    }
    if let Some(l) = e["fourcc_list"].as_array() {
        let l: Vec<String> = l
            .iter()
            .filter_map(Value::as_str)
            .map(|s| sanitize(s).into_owned())
            .collect();
        parts.push(format!("fourCcList {}", l.join(" ")));
    }
    parts.join("; ")
}

fn record(seq: u32, args: &ProbeArgs, url: &RtmpUrl, a: &Attempt) -> Value {
    let mut server = serde_json::Map::new();
    // CLI.md's keys are there in every record, null before the handshake.
    for k in ["handshake", "version"] {
        server.insert(k.into(), Value::Null);
    }
    if let Some(o) = &a.hs {
        let v = o.peer_version;
        server.insert("handshake".into(), json!(hs_kind(o)));
        server.insert(
            "version".into(),
            json!(format!("{}.{}.{}.{}", v[0], v[1], v[2], v[3])),
        );
        server.insert("digest_verified".into(), json!(o.peer_digest_verified));
        server.insert("s1_echoes_c1".into(), json!(o.peer_hello_is_echo));
        server.insert("s2_valid".into(), json!(o.peer_response.is_valid()));
        server.insert("handshake_rtt_ms".into(), json!(o.rtt_ms));
    }
    for k in [
        "fms_ver",
        "capabilities",
        "mode",
        "chunk_size",
        "window_ack_size",
        "peer_bandwidth",
    ] {
        server.insert(k.into(), a.server.get(k).cloned().unwrap_or(Value::Null));
    }
    for (k, v) in &a.server {
        server.entry(k.clone()).or_insert_with(|| v.clone());
    }
    server.insert("on_status".into(), json!(a.statuses));
    let tls = a.tls.as_ref().map(|t| {
        json!({"version": t.version, "cipher": t.cipher, "alpn": t.alpn, "subject": t.subject,
               "issuer": t.issuer, "not_after": t.not_after, "days_left": t.days_left, "chain_len": t.chain_len})
    });
    let mut r = json!({
        "type": "probe",
        "seq": seq,
        "url": url.shown(args.reveal_keys),
        "peer": a.peer,
        "ok": a.ok,
        "resolve_ms": a.resolve_ms,
        "tcp_connect_ms": a.tcp_connect_ms,
        "tls_ms": a.tls_ms,
        "handshake_ms": a.handshake_ms,
        "connect_ms": a.connect_ms,
    });
    let m = r.as_object_mut().expect("json! object"); // ok: built just above
    if args.publish || args.play {
        m.insert("create_stream_ms".into(), json!(a.create_stream_ms));
        m.insert(
            if args.publish {
                "publish_ms"
            } else {
                "play_ms"
            }
            .into(),
            json!(a.start_ms),
        );
    }
    if args.play {
        m.insert("first_video_ms".into(), json!(a.first_video_ms));
        m.insert("first_audio_ms".into(), json!(a.first_audio_ms));
    }
    m.insert("total_ms".into(), json!(a.total_ms));
    m.insert("server".into(), Value::Object(server));
    m.insert("tls".into(), tls.unwrap_or(Value::Null));
    m.insert("notes".into(), json!(a.notes));
    m.insert("phase".into(), json!(a.phase.map(Phase::name)));
    m.insert("error".into(), json!(a.error));
    r
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3} ms"))
}

fn human(
    out: &mut dyn Write,
    seq: u32,
    count: u32,
    args: &ProbeArgs,
    url: &RtmpUrl,
    a: &Attempt,
) -> std::io::Result<()> {
    let peer = a.peer.as_deref().unwrap_or("?");
    if count > 1 && seq > 1 {
        // Later attempts: one line each, like ping.
        return writeln!(
            out,
            "seq={seq} {} tcp={} hs={} connect={} total={}{}",
            if a.ok { "ok" } else { "FAILED" },
            fmt_ms(a.tcp_connect_ms),
            fmt_ms(a.handshake_ms),
            fmt_ms(a.connect_ms),
            fmt_ms(a.total_ms),
            a.phase
                .map_or(String::new(), |p| format!(" ({} failed)", p.name()))
        );
    }
    writeln!(out, "probe {} ({peer})", url.shown(args.reveal_keys))?;
    let line =
        |out: &mut dyn Write, name: &str, v: Option<f64>, what: String| -> std::io::Result<()> {
            if v.is_some() || !what.is_empty() {
                writeln!(out, "  {name:<14}{:>12}  {what}", fmt_ms(v))?;
            }
            Ok(())
        };
    line(out, "resolve", a.resolve_ms, String::new())?;
    line(out, "tcp_connect", a.tcp_connect_ms, String::new())?;
    if let Some(t) = &a.tls {
        let mut s = format!("{} {}", t.version, t.cipher);
        if let Some(sub) = &t.subject {
            s.push_str(&format!("; subject {}", sanitize(sub)));
        }
        if let Some(i) = &t.issuer {
            s.push_str(&format!("; issuer {}", sanitize(i)));
        }
        if let (Some(na), Some(days)) = (&t.not_after, t.days_left) {
            s.push_str(&format!("; expires {na} ({days} days)"));
        }
        line(out, "tls", a.tls_ms, s)?;
    }
    if let Some(o) = &a.hs {
        let v = o.peer_version;
        let verified = match o.peer_digest_verified {
            Some(true) => ", digest verified",
            Some(false) => ", digest NOT verified",
            None => "",
        };
        let rtt = o
            .rtt_ms
            .map_or(String::new(), |r| format!(", time-echo RTT {r} ms"));
        line(
            out,
            "handshake",
            a.handshake_ms,
            format!(
                "{}, server version {}.{}.{}.{}{verified}{rtt}",
                hs_kind(o),
                v[0],
                v[1],
                v[2],
                v[3]
            ),
        )?;
    }
    let g = |k: &str| {
        a.server.get(k).map(|v| match v {
            Value::String(s) => sanitize(s).into_owned(),
            v => sanitize(&v.to_string()).into_owned(),
        })
    };
    if a.connect_ms.is_some() {
        let mut s = g("connect_code")
            .filter(|c| c != "null")
            .unwrap_or_else(|| "(no code: the reply carries no info object)".into());
        for (k, label) in [
            ("fms_ver", "fmsVer"),
            ("capabilities", "capabilities"),
            ("mode", "mode"),
        ] {
            if let Some(v) = g(k).filter(|v| v != "null") {
                s.push_str(&format!(" {label} {v}"));
            }
        }
        line(out, "connect", a.connect_ms, s)?;
        match a.server.get("enhanced") {
            Some(e) if !e.is_null() => writeln!(out, "  {:<26}  {}", "e-rtmp", enhanced_text(e))?,
            _ if args.enhanced => writeln!(
                out,
                "  {:<26}  not stated by the server (it may still take E-RTMP media)",
                "e-rtmp"
            )?,
            _ => {}
        }
    }
    if a.create_stream_ms.is_some() {
        line(
            out,
            "create_stream",
            a.create_stream_ms,
            format!("stream id {}", g("stream_id").unwrap_or_default()),
        )?;
    }
    if a.start_ms.is_some() {
        let st = a.statuses.last().map_or(String::new(), |s| {
            format!(
                "{} ({})",
                sanitize(s["code"].as_str().unwrap_or("")),
                sanitize(s["description"].as_str().unwrap_or(""))
            )
        });
        line(
            out,
            if args.publish { "publish" } else { "play" },
            a.start_ms,
            st,
        )?;
    }
    line(out, "first_video", a.first_video_ms, String::new())?;
    line(out, "first_audio", a.first_audio_ms, String::new())?;
    line(
        out,
        "total",
        a.total_ms,
        if a.ok { "ok".into() } else { "FAILED".into() },
    )?;
    let mut said = Vec::new();
    if let Some(v) = g("window_ack_size") {
        said.push(format!("window ack size {v}"));
    }
    if let Some(v) = g("peer_bandwidth") {
        said.push(format!(
            "peer bandwidth {v} ({})",
            g("peer_bandwidth_limit").unwrap_or_default()
        ));
    }
    if let Some(v) = g("chunk_size") {
        said.push(format!("chunk size {v}"));
    }
    if a.server.contains_key("bw_done") {
        said.push("onBWDone".into());
    }
    if !said.is_empty() {
        writeln!(out, "  server said: {}", said.join(", "))?;
    }
    for n in &a.notes {
        writeln!(out, "  note: {n}")?;
    }
    if let (Some(p), Some(e)) = (a.phase, &a.error) {
        writeln!(out, "  {} FAILED: {}", p.name(), sanitize(e))?;
    }
    Ok(())
}

/// min/avg/max/mdev of a phase over the successful attempts.
pub(crate) fn stats(values: &[f64]) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    let n = values.len() as f64;
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let avg = values.iter().sum::<f64>() / n;
    // ping's mdev: sqrt(mean(x²) - mean(x)²).
    let mdev = (values.iter().map(|v| v * v).sum::<f64>() / n - avg * avg)
        .max(0.0)
        .sqrt();
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
    };
    let r = |v: f64| (v * 1e3).round() / 1e3;
    json!({"min": r(min), "avg": r(avg), "max": r(max), "mdev": r(mdev), "median": r(median)})
}

type Getter = fn(&Attempt) -> Option<f64>;
const PHASES: [(&str, Getter); 9] = [
    ("tcp_connect_ms", |a| a.tcp_connect_ms),
    ("tls_ms", |a| a.tls_ms),
    ("handshake_ms", |a| a.handshake_ms),
    ("connect_ms", |a| a.connect_ms),
    ("create_stream_ms", |a| a.create_stream_ms),
    ("start_ms", |a| a.start_ms),
    ("first_video_ms", |a| a.first_video_ms),
    ("first_audio_ms", |a| a.first_audio_ms),
    ("total_ms", |a| a.total_ms),
];

fn summary_json(results: &[Attempt], interrupted: bool) -> Value {
    let ok = results.iter().filter(|a| a.ok).count();
    let mut m = serde_json::Map::new();
    m.insert("type".into(), json!("probe_summary"));
    m.insert("sent".into(), json!(results.len()));
    m.insert("ok".into(), json!(ok));
    m.insert("failed".into(), json!(results.len() - ok));
    m.insert(
        "success_ratio".into(),
        json!(ok as f64 / results.len().max(1) as f64),
    );
    m.insert("interrupted".into(), json!(interrupted));
    // Every key, null when no attempt produced a value. A phase's times
    // come from every attempt that completed it (a refused connect still
    // timed its answer); the total only from attempts that succeeded.
    for (k, get) in PHASES {
        let v: Vec<f64> = results
            .iter()
            .filter(|a| a.ok || k != "total_ms")
            .filter_map(get)
            .collect();
        m.insert(k.into(), stats(&v));
    }
    // How many attempts completed each phase, and where the others failed.
    let mut reached = serde_json::Map::new();
    for (k, get) in PHASES {
        if k == "total_ms" {
            continue;
        }
        let n = results.iter().filter(|a| get(a).is_some()).count();
        reached.insert(k.trim_end_matches("_ms").into(), json!(n));
    }
    reached.insert(
        "resolve".into(),
        json!(results.iter().filter(|a| a.resolve_ms.is_some()).count()),
    );
    m.insert("reached".into(), Value::Object(reached));
    let mut failed_in = serde_json::Map::new();
    for a in results.iter().filter(|a| !a.ok) {
        let k = a.phase.map_or("unknown", Phase::name);
        let n = failed_in.get(k).and_then(Value::as_u64).unwrap_or(0);
        failed_in.insert(k.into(), json!(n + 1));
    }
    m.insert("failed_in".into(), Value::Object(failed_in));
    Value::Object(m)
}

fn human_summary(
    out: &mut dyn Write,
    results: &[Attempt],
    interrupted: bool,
) -> std::io::Result<()> {
    let s = summary_json(results, interrupted);
    let phases: Vec<&str> = PHASES.iter().map(|(k, _)| *k).collect();
    write_summary(out, &s, &phases)
}

/// A `probe_summary` record in words, like ping's: attempts, failures by
/// phase, and min/avg/max/mdev of each of `phases` that has values (rtmp://
/// and rtmfp:// probes alike).
pub(crate) fn write_summary(
    out: &mut dyn Write,
    s: &Value,
    phases: &[&str],
) -> std::io::Result<()> {
    let sent = s["sent"].as_u64().unwrap_or(0);
    let failed = s["failed"].as_u64().unwrap_or(0);
    writeln!(
        out,
        "--- {sent} attempts, {} ok, {:.0}% failed{} ---",
        sent - failed.min(sent),
        100.0 * failed as f64 / sent.max(1) as f64,
        if s["interrupted"] == true {
            " (interrupted)"
        } else {
            ""
        }
    )?;
    if let Some(f) = s["failed_in"].as_object().filter(|f| !f.is_empty()) {
        let parts: Vec<String> = f.iter().map(|(k, n)| format!("{n} in {k}")).collect();
        writeln!(out, "failed: {}", parts.join(", "))?;
    }
    for k in phases {
        if let Some(v) = s.get(*k).filter(|v| !v.is_null()) {
            writeln!(
                out,
                "{:<16} min/avg/max/mdev = {}/{}/{}/{} ms (median {})",
                k.trim_end_matches("_ms"),
                v["min"],
                v["avg"],
                v["max"],
                v["mdev"],
                v["median"]
            )?;
        }
    }
    Ok(())
}
