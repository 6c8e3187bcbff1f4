//! `probe`'s engine: reach an `rtmp://` or `rtmps://` server and time every
//! phase (resolve, TCP, TLS, handshake, connect; createStream and
//! publish/play when asked; the first audio and video of a play), keep what
//! the server announced, and explain the first failure in words. The
//! command prints the [`Attempt`]s and maps their [`Fault`] to an exit code.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::net::client::{
    connect_refusal, malformed_command, peer_json, random_source, refusal, tcp_connect_failure,
};
use crate::net::tls::{self, TlsError, TlsOptions};
use crate::net::{self, DriveError, Driver, Phase, RtmpUrl, Stream};
use crate::proto::amf0::Amf0Value;
use crate::proto::capabilities::Capabilities;
use crate::proto::handshake::{HandshakeConfig, HandshakeOutcome, PeerHandshake};
use crate::proto::session::{ClientSession, Event, Goal, SessionConfig, SessionError, Status};
use crate::text::sanitize;

/// What to probe, and how.
#[derive(Debug, Clone, Default)]
pub struct ProbeOptions {
    /// The simple handshake (else the digest one, as Flash Player sends).
    pub simple_handshake: bool,
    /// Go on to createStream and publish.
    pub publish: bool,
    /// Go on to createStream and play, and time the first audio and video.
    pub play: bool,
    /// `tcUrl` in place of the URL's.
    pub tc_url: Option<String>,
    /// `flashVer` in place of the default.
    pub flash_ver: Option<String>,
    /// Announce E-RTMP in connect, as a forwarder of any codec.
    pub enhanced: bool,
    /// TCP_QUICKACK, re-armed after every read.
    pub quickack: bool,
    /// rtmps: the CA file, or no verification.
    pub tls: TlsOptions,
    /// Show stream keys and tokens in what is said.
    pub reveal_keys: bool,
    /// Limit for each phase.
    pub timeout: Duration,
}

/// What kind of failure ended an attempt (the command maps each to its
/// exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Resolve, TCP, or the connection lost.
    Network,
    /// A file the user gave (the CA file) is unusable.
    BadInput,
    /// TLS failed.
    Tls,
    /// The RTMP handshake failed.
    Handshake,
    /// The server refused connect, createStream, publish or play.
    Refused,
    /// The server broke the protocol.
    Protocol,
}

/// A reply gap this long inside one answer, with the server otherwise idle,
/// is the delayed-ACK timer (Linux: 40 ms) holding a Nagle-delayed segment.
const STALL_MIN: Duration = Duration::from_millis(30);
const STALL_MAX: Duration = Duration::from_millis(250);

/// One attempt's result (`None` for the phases not reached or not asked).
#[derive(Debug, Default)]
pub struct Attempt {
    /// Every phase asked for succeeded.
    pub ok: bool,
    /// The phase that failed.
    pub phase: Option<Phase>,
    /// Why, in words (the URL's secrets removed unless revealed).
    pub error: Option<String>,
    /// What kind of failure.
    pub fault: Option<Fault>,
    /// Name resolution, ms.
    pub resolve_ms: Option<f64>,
    /// TCP connect, ms.
    pub tcp_connect_ms: Option<f64>,
    /// TLS handshake, ms.
    pub tls_ms: Option<f64>,
    /// RTMP handshake (C0+C1 sent to S2 read), ms.
    pub handshake_ms: Option<f64>,
    /// connect sent to its `_result`/`_error`, ms.
    pub connect_ms: Option<f64>,
    /// createStream, ms.
    pub create_stream_ms: Option<f64>,
    /// publish/play to its onStatus, ms.
    pub start_ms: Option<f64>,
    /// play to the first video message, ms.
    pub first_video_ms: Option<f64>,
    /// play to the first audio message, ms.
    pub first_audio_ms: Option<f64>,
    /// The whole attempt, ms.
    pub total_ms: Option<f64>,
    /// The address reached.
    pub peer: Option<String>,
    /// The TLS session.
    pub tls: Option<tls::TlsInfo>,
    /// The server's handshake.
    pub hs: Option<HandshakeOutcome>,
    /// What the server announced (chunk size, window, fmsVer, capabilities…), for JSON.
    pub server: serde_json::Map<String, Value>,
    /// onStatus messages, for JSON.
    pub statuses: Vec<Value>,
    /// Things worth knowing that are not failures (delayed-ACK stalls, no media).
    pub notes: Vec<String>,
    /// The last `_result`/`_error` of the phase whose transaction id
    /// matched none of ours (and is not 0), as `_result with transaction
    /// id 7`: if the phase then times out, this is why.
    pub stray_reply: Option<String>,
}

/// A duration in ms, rounded to µs.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn fail(a: &mut Attempt, phase: Phase, fault: Fault, error: String) {
    a.ok = false;
    a.phase = Some(phase);
    a.fault = Some(fault);
    a.error = Some(error);
}

/// One probe of `url`: every phase timed, what the server said kept, the
/// first failure named.
pub async fn attempt(o: &ProbeOptions, url: &RtmpUrl) -> Attempt {
    let mut a = Attempt::default();
    let t0 = Instant::now();
    run_phases(o, url, o.timeout, &mut a, t0).await;
    a.total_ms = Some(ms(t0.elapsed()));
    a
}

async fn run_phases(
    args: &ProbeOptions,
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
            return fail(a, Phase::Resolve, Fault::Network, why);
        }
    };
    a.resolve_ms = Some(ms(t0.elapsed()));

    // TCP.
    let t = Instant::now();
    let tcp = match net::tcp_connect(&addrs, timeout).await {
        Ok(s) => s,
        Err(e) => {
            let why = tcp_connect_failure(&e, addrs[0], timeout);
            return fail(a, Phase::TcpConnect, Fault::Network, why);
        }
    };
    a.tcp_connect_ms = Some(ms(t.elapsed()));
    a.peer = tcp.peer_addr().ok().map(|p| p.to_string());
    let quickack = args.quickack;
    if quickack {
        net::arm_quickack(&tcp);
    }

    // TLS.
    let stream = if url.tls {
        let t = Instant::now();
        match tls::connect(tcp, &url.host, &args.tls, timeout).await {
            Ok((s, info)) => {
                a.tls_ms = Some(ms(t.elapsed()));
                a.tls = Some(info);
                Stream::Tls(Box::new(s))
            }
            Err(e) => {
                let code = match e {
                    TlsError::CaFile { .. } => Fault::BadInput,
                    _ => Fault::Tls,
                };
                return fail(a, Phase::Tls, code, e.to_string());
            }
        }
    } else {
        Stream::Plain(tcp)
    };

    // RTMP session.
    let handshake = if args.simple_handshake {
        HandshakeConfig::simple()
    } else {
        HandshakeConfig::client()
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
        &args.tc_url.clone().unwrap_or_else(|| url.tc_url()),
        goal,
    );
    config.handshake = handshake;
    if let Some(f) = &args.flash_ver {
        config.flash_ver = f.clone();
    }
    if args.enhanced {
        config.connect_extra = Capabilities::forwarder().to_properties();
    }
    let epoch = Instant::now();
    let session = ClientSession::new(config, Duration::ZERO, &mut random_source());
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
                let why = handshake_failure(&d, e, timeout, url).await;
                return fail(a, Phase::Handshake, Fault::Handshake, why);
            }
        }
    };
    a.hs = Some(outcome);

    // Connect: the C2 + Set Chunk Size + connect write → _result/_error.
    if let Err(e) = d.flush().await {
        return fail(
            a,
            Phase::Connect,
            Fault::Network,
            format!("sending connect: {e}"),
        );
    }
    let connect_sent = d.writes.last().map_or(hs_sent, |w| w.0);
    a.stray_reply = None;
    let reads_before = d.reads.len();
    let deadline = Instant::now() + timeout;
    let connected_at = loop {
        match d.next_event(deadline).await {
            Ok(ev) => {
                let at = ev.at;
                if let Some(why) = malformed_command(&ev.event, url, args.reveal_keys) {
                    return fail(a, Phase::Connect, Fault::Protocol, why);
                }
                // A refusal as an onStatus (level error) in place of an
                // `_error`, which FFmpeg takes as a refusal too.
                if let Event::Status(st) = &ev.event
                    && st.is_error()
                {
                    a.connect_ms = Some(ms(at.saturating_sub(connect_sent)));
                    let why = format!(
                        "the server refused connect: {}",
                        refusal(url, &st.code, &st.description, args.reveal_keys)
                    );
                    observe(a, ev.event, url, args.reveal_keys);
                    return fail(a, Phase::Connect, Fault::Refused, why);
                }
                if let Some(r) = observe(a, ev.event, url, args.reveal_keys) {
                    if !r.ok {
                        a.connect_ms = Some(ms(at.saturating_sub(connect_sent)));
                        let why = format!(
                            "the server refused connect: {}",
                            connect_refusal(url, &r, args.reveal_keys)
                        );
                        return fail(a, Phase::Connect, Fault::Refused, why);
                    }
                    a.connect_ms = Some(ms(at.saturating_sub(connect_sent)));
                    break at;
                }
            }
            Err(e) => return fail_after(a, Phase::Connect, e, timeout),
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
        a.stray_reply = None;
        let started_at = loop {
            match d.next_event(deadline).await {
                Ok(ev) => {
                    let at = ev.at;
                    if let Some(why) = malformed_command(&ev.event, url, args.reveal_keys) {
                        let phase = if created_at.is_some() {
                            start_phase
                        } else {
                            Phase::CreateStream
                        };
                        return fail(a, phase, Fault::Protocol, why);
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
                            return fail(a, Phase::CreateStream, Fault::Refused, why);
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
                            return fail(a, start_phase, Fault::Refused, why);
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
                    return fail_after(a, phase, e, timeout);
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
                    Err(e) => return fail_after(a, Phase::Play, e, timeout),
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
) -> Option<crate::proto::session::Reply> {
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
            // A redirect (FMS, Wowza): `ex.redirect` of the _error's info.
            let ex = r.command.args().first().and_then(|o| o.get("ex"));
            if let Some(to) = ex.and_then(|e| e.get("redirect")).and_then(Amf0Value::text) {
                let to = match crate::net::RtmpUrl::parse(&to, None, None) {
                    Ok(u) if !reveal => scrub(&u.shown(false)),
                    _ => scrub(&to),
                };
                s.insert("redirect".into(), json!(to));
            }
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
            if matches!(c.name(), "_result" | "_error")
                && let Some(t) = c.transaction_id().filter(|&t| t != 0.0)
            {
                a.stray_reply = Some(format!("{} with transaction id {t}", c.name()));
            }
        }
        _ => {}
    }
    None
}

/// The E-RTMP capabilities a server stated, as `server.enhanced`.
pub fn enhanced_json(c: &Capabilities) -> Value {
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

/// An onStatus for JSON: code, level and description with the URL's
/// secrets removed.
fn status_json(st: &Status, url: &RtmpUrl, reveal: bool) -> Value {
    json!({
        "code": peer_json(url, &st.code, reveal),
        "level": peer_json(url, &st.level, reveal),
        "description": peer_json(url, &st.description, reveal),
    })
}

fn drive_fault(e: &DriveError) -> Fault {
    match e {
        DriveError::Session(_) => Fault::Protocol,
        _ => Fault::Network,
    }
}

/// A failure after the handshake. A timeout after a reply that matched
/// none of our transaction ids is the server's fault (exit 9), said so.
fn fail_after(a: &mut Attempt, phase: Phase, e: DriveError, timeout: Duration) {
    if matches!(e, DriveError::Timeout)
        && let Some(stray) = a.stray_reply.take()
    {
        let why = format!(
            "no answer to {} within {timeout:?} but a {}, which matches none of our commands: the server answered with the wrong transaction id",
            phase.name(),
            sanitize(&stray)
        );
        return fail(a, phase, Fault::Protocol, why);
    }
    fail(
        a,
        phase,
        drive_fault(&e),
        after_handshake(e, phase.name(), timeout),
    )
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

/// Why the RTMP handshake failed, in words: what answered instead, how
/// much of S0+S1+S2 came, and on a silent plain port whether it speaks TLS
/// (a second connection sends a ClientHello).
pub async fn handshake_failure(
    d: &Driver,
    e: DriveError,
    timeout: Duration,
    url: &RtmpUrl,
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
                let tls_answer = tls_answers(url, probe_timeout).await;
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

async fn tls_answers(url: &RtmpUrl, timeout: Duration) -> bool {
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

/// `simple` or `digest`, as JSON says it.
pub fn hs_kind(o: &HandshakeOutcome) -> &'static str {
    match o.kind {
        PeerHandshake::Simple => "simple",
        PeerHandshake::Digest { .. } => "digest",
        PeerHandshake::UnverifiedDigest => "digest",
    }
}
