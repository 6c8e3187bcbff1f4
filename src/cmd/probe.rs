//! `rtmptool probe URL`: reach a server phase by phase (resolve, TCP, TLS,
//! RTMP handshake, connect, and with `--publish`/`--play` createStream and
//! publish/play), time each with a monotonic clock, record what the server
//! announced, and explain a failure in words with the exit code of CLI.md.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::{GlobalArgs, HandshakeChoice, OnOff, ProbeArgs};
use crate::report::{Style, write_json_line};
use crate::{Exit, exit};
use rtmptool::net::tls::{self, TlsError, TlsOptions};
use rtmptool::net::{self, DriveError, Driver, Phase, RtmpUrl, Stream};
use rtmptool::proto::amf0::Amf0Value;
use rtmptool::proto::capabilities::{self, Capabilities};
use rtmptool::proto::handshake::{HandshakeConfig, HandshakeOutcome, PeerHandshake};
use rtmptool::proto::session::{ClientSession, Event, Goal, SessionConfig, SessionError, Status};
use rtmptool::text::sanitize;

use super::streaming::{peer_json, refusal};

/// A reply gap this long inside one answer, with the server otherwise idle,
/// is the delayed-ACK timer (Linux: 40 ms) holding a Nagle-delayed segment.
const STALL_MIN: Duration = Duration::from_millis(30);
const STALL_MAX: Duration = Duration::from_millis(250);

/// One attempt's result.
#[derive(Debug, Default)]
struct Attempt {
    ok: bool,
    phase: Option<Phase>,
    error: Option<String>,
    code: u8,
    resolve_ms: Option<f64>,
    tcp_connect_ms: Option<f64>,
    tls_ms: Option<f64>,
    handshake_ms: Option<f64>,
    connect_ms: Option<f64>,
    create_stream_ms: Option<f64>,
    start_ms: Option<f64>,
    first_video_ms: Option<f64>,
    first_audio_ms: Option<f64>,
    total_ms: Option<f64>,
    peer: Option<String>,
    tls: Option<tls::TlsInfo>,
    hs: Option<HandshakeOutcome>,
    server: serde_json::Map<String, Value>,
    statuses: Vec<Value>,
    notes: Vec<String>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
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
    let rt = super::runtime()?;
    let stdout = std::io::stdout();
    let count = args.count.max(1);
    let shown = url.shown(args.reveal_keys);
    let mut results = Vec::new();
    // Ctrl-C ends the run like ping's: the attempt in flight is dropped, the
    // summary of those completed is printed.
    let mut sig = {
        let _in_runtime = rt.enter();
        super::streaming::sigint()?
    };
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
                a = attempt(args, &url, global.timeout) => a,
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
            code: a.code,
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

fn fail(a: &mut Attempt, phase: Phase, code: u8, error: String) {
    a.ok = false;
    a.phase = Some(phase);
    a.code = code;
    a.error = Some(error);
}

async fn attempt(args: &ProbeArgs, url: &RtmpUrl, timeout: Duration) -> Attempt {
    let mut a = Attempt::default();
    let t0 = Instant::now();
    run_phases(args, url, timeout, &mut a, t0).await;
    a.total_ms = Some(ms(t0.elapsed()));
    a
}

async fn run_phases(
    args: &ProbeArgs,
    url: &RtmpUrl,
    timeout: Duration,
    a: &mut Attempt,
    t0: Instant,
) {
    // Resolve.
    let addrs = match net::resolve(&url.host, url.port, timeout).await {
        Ok(v) => v,
        Err(e) => {
            let why = format!("cannot resolve '{}': {e}", url.host);
            return fail(a, Phase::Resolve, exit::NETWORK, why);
        }
    };
    a.resolve_ms = Some(ms(t0.elapsed()));

    // TCP.
    let t = Instant::now();
    let tcp = match net::tcp_connect(&addrs, timeout).await {
        Ok(s) => s,
        Err(e) => {
            let addr = addrs[0];
            let why = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => format!(
                    "connection refused by {addr}: nothing listens on port {} (server down or wrong port)",
                    url.port
                ),
                std::io::ErrorKind::TimedOut => format!(
                    "no answer to the TCP SYN from {addr} within {timeout:?}: the port is filtered by a firewall, or the host is down or unreachable"
                ),
                _ => format!("TCP connect to {addr}: {e}"),
            };
            return fail(a, Phase::TcpConnect, exit::NETWORK, why);
        }
    };
    a.tcp_connect_ms = Some(ms(t.elapsed()));
    a.peer = tcp.peer_addr().ok().map(|p| p.to_string());
    let quickack = args.quickack == OnOff::On;
    if quickack {
        net::arm_quickack(&tcp);
    }

    // TLS.
    let stream = if url.tls {
        let t = Instant::now();
        let opts = TlsOptions {
            ca: args.ca.clone(),
            insecure: args.insecure,
        };
        match tls::connect(tcp, &url.host, &opts, timeout).await {
            Ok((s, info)) => {
                a.tls_ms = Some(ms(t.elapsed()));
                a.tls = Some(info);
                Stream::Tls(Box::new(s))
            }
            Err(e) => {
                let code = match e {
                    TlsError::CaFile { .. } => exit::BAD_INPUT,
                    _ => exit::TLS,
                };
                return fail(a, Phase::Tls, code, e.to_string());
            }
        }
    } else {
        Stream::Plain(tcp)
    };

    // RTMP session.
    let handshake = match args.handshake {
        HandshakeChoice::Simple => HandshakeConfig::simple(),
        HandshakeChoice::Digest | HandshakeChoice::Auto | HandshakeChoice::Full => {
            HandshakeConfig::client()
        }
    };
    let stream_name = url.stream_with_query();
    let goal = if args.publish {
        Goal::Publish {
            stream: stream_name,
            kind: "live".into(),
        }
    } else if args.play {
        Goal::Play {
            stream: stream_name,
            start: -1000.0,
            buffer_ms: 1000,
        }
    } else {
        Goal::Connect
    };
    let mut config = SessionConfig::new(
        url.app(),
        &args.tcurl.clone().unwrap_or_else(|| url.tc_url()),
        goal,
    );
    config.handshake = handshake;
    if let Some(f) = &args.flashver {
        config.flash_ver = f.clone();
    }
    if args.enhanced {
        config.connect_extra = Capabilities::forwarder().to_properties();
    }
    let epoch = Instant::now();
    let session = ClientSession::new(
        config,
        Duration::ZERO,
        &mut super::streaming::random_source(),
    );
    let mut d = Driver::new(stream, session, epoch, quickack);

    // Handshake: C0+C1 sent → S2.
    let hs_sent = d.now();
    let deadline = Instant::now() + timeout;
    let outcome = loop {
        match d.next_event(deadline).await {
            Ok(ev) => {
                if let Event::Handshake(o) = ev.event {
                    a.handshake_ms = Some(ms(ev.at.saturating_sub(hs_sent)));
                    break o;
                }
            }
            Err(e) => {
                let why = handshake_failure(&d, e, timeout, url, args).await;
                return fail(a, Phase::Handshake, exit::HANDSHAKE, why);
            }
        }
    };
    a.hs = Some(outcome);

    // Connect: the C2 + Set Chunk Size + connect write → _result/_error.
    if let Err(e) = d.flush().await {
        return fail(
            a,
            Phase::Connect,
            exit::NETWORK,
            format!("sending connect: {e}"),
        );
    }
    let connect_sent = d.writes.last().map_or(hs_sent, |w| w.0);
    let reads_before = d.reads.len();
    let deadline = Instant::now() + timeout;
    let connected_at = loop {
        match d.next_event(deadline).await {
            Ok(ev) => {
                let at = ev.at;
                if let Some(why) = super::streaming::malformed_command(&ev.event) {
                    return fail(a, Phase::Connect, exit::PROTOCOL, why);
                }
                if let Some(r) = observe(a, ev.event, url, args.reveal_keys) {
                    let info = |k: &str| r.info(k).unwrap_or_default().into_owned();
                    if !r.ok {
                        a.connect_ms = Some(ms(at.saturating_sub(connect_sent)));
                        let why = format!(
                            "the server refused connect: {}",
                            refusal(url, &info("code"), &info("description"), args.reveal_keys)
                        );
                        return fail(a, Phase::Connect, exit::REFUSED, why);
                    }
                    a.connect_ms = Some(ms(at.saturating_sub(connect_sent)));
                    break at;
                }
            }
            Err(e) => {
                return fail(
                    a,
                    Phase::Connect,
                    drive_code(&e),
                    after_handshake(e, "connect", timeout),
                );
            }
        }
    };
    stall_note(a, &d, reads_before, connect_sent, "connect");

    if args.publish || args.play {
        let start_phase = if args.publish {
            Phase::Publish
        } else {
            Phase::Play
        };
        let deadline = Instant::now() + timeout;
        let mut created_at = None;
        let started_at = loop {
            match d.next_event(deadline).await {
                Ok(ev) => {
                    let at = ev.at;
                    if let Some(why) = super::streaming::malformed_command(&ev.event) {
                        let phase = if created_at.is_some() {
                            start_phase
                        } else {
                            Phase::CreateStream
                        };
                        return fail(a, phase, exit::PROTOCOL, why);
                    }
                    match ev.event {
                        Event::StreamCreated(id) => {
                            a.server.insert("stream_id".into(), json!(id));
                            a.create_stream_ms = Some(ms(at.saturating_sub(connected_at)));
                            created_at = Some(at);
                        }
                        Event::Reply(r) if !r.ok => {
                            let why = format!(
                                "the server refused {}: {}",
                                r.to,
                                refusal(
                                    url,
                                    &r.info("code").unwrap_or_default(),
                                    &r.info("description").unwrap_or_default(),
                                    args.reveal_keys
                                )
                            );
                            return fail(a, Phase::CreateStream, exit::REFUSED, why);
                        }
                        Event::Started(s) => {
                            // Its Status event came just before it.
                            let _ = s;
                            a.start_ms = Some(ms(at.saturating_sub(created_at.unwrap_or(at))));
                            break at;
                        }
                        Event::Status(s) if s.is_error() && created_at.is_some() => {
                            a.statuses.push(status_json(&s, url, args.reveal_keys));
                            a.start_ms = Some(ms(at.saturating_sub(created_at.unwrap_or(at))));
                            let why = format!(
                                "the server refused {}: {}",
                                start_phase.name(),
                                refusal(url, &s.code, &s.description, args.reveal_keys)
                            );
                            return fail(a, start_phase, exit::REFUSED, why);
                        }
                        other => {
                            observe(a, other, url, args.reveal_keys);
                        }
                    }
                }
                Err(e) => {
                    let phase = if created_at.is_some() {
                        start_phase
                    } else {
                        Phase::CreateStream
                    };
                    return fail(
                        a,
                        phase,
                        drive_code(&e),
                        after_handshake(e, phase.name(), timeout),
                    );
                }
            }
        };
        if args.play {
            // Time to the first video and audio message, measured from play.
            let play_sent = created_at.unwrap_or(started_at);
            let deadline = Instant::now() + timeout;
            let mut audio_deadline = deadline;
            while a.first_video_ms.is_none() || a.first_audio_ms.is_none() {
                let dl = if a.first_video_ms.is_some() {
                    audio_deadline.min(deadline)
                } else {
                    deadline
                };
                match d.next_event(dl).await {
                    Ok(ev) => match ev.event {
                        Event::Video { .. } if a.first_video_ms.is_none() => {
                            a.first_video_ms = Some(ms(ev.at.saturating_sub(play_sent)));
                            // A stream may carry no audio: wait at most 1 s more.
                            audio_deadline = Instant::now() + Duration::from_secs(1);
                        }
                        Event::Audio { .. } if a.first_audio_ms.is_none() => {
                            a.first_audio_ms = Some(ms(ev.at.saturating_sub(play_sent)));
                        }
                        Event::Video { .. } | Event::Audio { .. } | Event::Data { .. } => {}
                        other => {
                            observe(a, other, url, args.reveal_keys);
                        }
                    },
                    Err(DriveError::Timeout) => break,
                    Err(e) => {
                        return fail(
                            a,
                            Phase::Play,
                            drive_code(&e),
                            after_handshake(e, "play", timeout),
                        );
                    }
                }
            }
            if a.first_video_ms.is_none() && a.first_audio_ms.is_none() {
                a.notes.push(format!(
                    "no audio or video arrived within {timeout:?} of play (is anyone publishing this stream?)"
                ));
            }
        }
    }

    // Clean close.
    while let Some(ev) = d.session.poll_event() {
        observe(a, ev.event, url, args.reveal_keys);
    }
    d.session.close();
    let _ = tokio::time::timeout(timeout, d.flush()).await;
    let _ = tokio::time::timeout(timeout, d.stream.shutdown()).await;
    a.ok = true;
}

/// Records what the server said; returns the reply to `connect`, if this is it.
fn observe(
    a: &mut Attempt,
    ev: Event,
    url: &RtmpUrl,
    reveal: bool,
) -> Option<rtmptool::proto::session::Reply> {
    let scrub = |t: &str| peer_json(url, t, reveal);
    let scrub_json = |v: Value| match v {
        Value::String(t) => Value::String(scrub(&t)),
        v => v,
    };
    let s = &mut a.server;
    match ev {
        Event::ChunkSize(n) => {
            s.insert("chunk_size".into(), json!(n));
        }
        Event::WindowAckSize(n) => {
            s.insert("window_ack_size".into(), json!(n));
        }
        Event::PeerBandwidth { size, limit } => {
            s.insert("peer_bandwidth".into(), json!(size));
            s.insert("peer_bandwidth_limit".into(), json!(limit.name()));
        }
        Event::BwDone => {
            s.insert("bw_done".into(), json!(true));
        }
        Event::Status(st) => {
            a.statuses.push(status_json(&st, url, reveal));
        }
        Event::Reply(r) if r.to == "connect" => {
            let obj = r.command.command_object();
            let prop = |k: &str| {
                obj.and_then(|o| o.get(k)).map(|v| match v {
                    // Integral numbers as integers (capabilities 31, mode 1).
                    Amf0Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => json!(*n as i64),
                    v => scrub_json(v.to_json()),
                })
            };
            s.insert("fms_ver".into(), prop("fmsVer").unwrap_or(Value::Null));
            s.insert(
                "capabilities".into(),
                prop("capabilities").unwrap_or(Value::Null),
            );
            s.insert("mode".into(), prop("mode").unwrap_or(Value::Null));
            let stated =
                Capabilities::from_objects(obj.into_iter().chain(r.command.args().first()));
            s.insert(
                "enhanced".into(),
                stated.map_or(Value::Null, |c| enhanced_json(&c)),
            );
            s.insert(
                "connect_code".into(),
                json!(r.info("code").map(|t| scrub(&t))),
            );
            s.insert(
                "connect_description".into(),
                json!(r.info("description").map(|t| scrub(&t))),
            );
            return Some(r);
        }
        Event::UserControl(uc) => {
            let names = s.entry("user_control").or_insert_with(|| json!([]));
            if let Value::Array(v) = names {
                v.push(json!(uc.name()));
            }
        }
        Event::Command(c) => {
            let names = s.entry("other_commands").or_insert_with(|| json!([]));
            if let Value::Array(v) = names {
                let name = c.values.first().and_then(Amf0Value::text);
                v.push(json!(scrub(name.as_deref().unwrap_or(""))));
            }
        }
        _ => {}
    }
    None
}

/// An onStatus for JSON: code, level and description with the URL's
/// secrets removed.
/// The E-RTMP capabilities a server stated, as `server.enhanced`.
fn enhanced_json(c: &Capabilities) -> Value {
    let map = |m: &Option<Vec<(String, u32)>>| {
        m.as_ref().map_or(Value::Null, |m| {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
        })
    };
    json!({
        "fourcc_list": c.fourcc_list,
        "video_fourcc_info_map": map(&c.video),
        "audio_fourcc_info_map": map(&c.audio),
        "caps_ex": c.caps_ex,
        "caps_ex_names": c.caps_ex_names(),
    })
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

fn status_json(st: &Status, url: &RtmpUrl, reveal: bool) -> Value {
    json!({
        "code": peer_json(url, &st.code, reveal),
        "level": peer_json(url, &st.level, reveal),
        "description": peer_json(url, &st.description, reveal),
    })
}

fn drive_code(e: &DriveError) -> u8 {
    match e {
        DriveError::Session(_) => exit::PROTOCOL,
        _ => exit::NETWORK,
    }
}

fn after_handshake(e: DriveError, what: &str, timeout: Duration) -> String {
    match e {
        DriveError::Timeout => format!("no answer to {what} within {timeout:?}"),
        DriveError::Closed => format!(
            "the server closed the connection after {what} (it rejected the app, tcUrl or stream name without a reason)"
        ),
        DriveError::Io(e) => format!("{what}: {e}"),
        DriveError::Session(e) => format!(
            "{what}: the server broke the protocol: {}",
            sanitize(&e.to_string())
        ),
    }
}

async fn handshake_failure(
    d: &Driver,
    e: DriveError,
    timeout: Duration,
    url: &RtmpUrl,
    args: &ProbeArgs,
) -> String {
    let got: usize = d.reads.iter().map(|r| r.1).sum();
    match e {
        DriveError::Session(SessionError::Handshake(h)) => {
            format!(
                "the server's answer is not RTMP: {}",
                sanitize(&h.to_string())
            )
        }
        DriveError::Session(e) => sanitize(&e.to_string()).into_owned(),
        DriveError::Closed => format!(
            "the server closed the connection during the RTMP handshake after {got} of 3073 bytes of S0+S1+S2 (it refuses this handshake, or is not RTMP)"
        ),
        DriveError::Io(e) => format!("RTMP handshake: {e} after {got} bytes of S0+S1+S2"),
        DriveError::Timeout if got > 0 => format!(
            "RTMP handshake stalled: {got} of 3073 bytes of S0+S1+S2 arrived within {timeout:?}"
        ),
        DriveError::Timeout => {
            let mut why = format!(
                "RTMP handshake timed out: the server accepted the TCP connection but sent nothing in {timeout:?} after C0+C1"
            );
            if !url.tls {
                // Is it a TLS port waiting for a ClientHello?
                let probe_timeout =
                    (timeout / 4).clamp(Duration::from_millis(200), Duration::from_secs(1));
                let tls_answer = tls_answers(url, probe_timeout, args).await;
                if tls_answer {
                    why.push_str(": this port answers TLS, so it is an rtmps port (use rtmps://)");
                } else {
                    why.push_str(": it does not answer a TLS ClientHello either, so it is not an RTMP server (a protocol where the client waits), or an overloaded server");
                }
            }
            why
        }
    }
}

async fn tls_answers(url: &RtmpUrl, timeout: Duration, _args: &ProbeArgs) -> bool {
    let Ok(addrs) = net::resolve(&url.host, url.port, timeout).await else {
        return false;
    };
    let Ok(tcp) = net::tcp_connect(&addrs, timeout).await else {
        return false;
    };
    let opts = TlsOptions {
        ca: None,
        insecure: true,
    };
    matches!(
        tls::connect(tcp, &url.host, &opts, timeout).await,
        Ok(_) | Err(TlsError::Protocol(_) | TlsError::Certificate(_))
    )
}

/// Names a delayed-ACK stall: within the answer to `what`, a gap between two
/// reads of about the delayed-ACK timer.
fn stall_note(a: &mut Attempt, d: &Driver, from: usize, sent: Duration, what: &str) {
    let reads = &d.reads[from.min(d.reads.len())..];
    let mut prev = sent;
    let mut first = true;
    for &(at, _) in reads {
        let gap = at.saturating_sub(prev);
        if !first && (STALL_MIN..=STALL_MAX).contains(&gap) {
            a.notes.push(format!(
                "delayed-ACK stall: the server's answer to {what} arrived in pieces {:.1} ms apart; the server sends without TCP_NODELAY (Nagle) and waited for our delayed ACK{}",
                ms(gap),
                if d.quickack { "" } else { " (--quickack off)" }
            ));
            return;
        }
        first = false;
        prev = at;
    }
}

fn hs_kind(o: &HandshakeOutcome) -> &'static str {
    match o.kind {
        PeerHandshake::Simple => "simple",
        PeerHandshake::Digest { .. } => "digest",
        PeerHandshake::UnverifiedDigest => "digest",
    }
}

fn record(seq: u32, args: &ProbeArgs, url: &RtmpUrl, a: &Attempt) -> Value {
    let mut server = serde_json::Map::new();
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
        let mut s = g("connect_code").unwrap_or_default();
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
