//! Live checks of a server (`rtmptool diagnose URL`): the handshake both
//! ways, connect, a short publish at chunk sizes 128, 4096 and 65536, a
//! timestamp crossing 0xFFFFFF and a key frame over 1 MiB. Each check is one
//! connection driven by [`crate::net::Driver`] over the sans-IO
//! [`ClientSession`]; its outcome is a [`Finding`] with the check's name (an
//! `info` one when the server accepts, `warning`/`error` when it refuses,
//! naming the nginx-rtmp setting to change).
//!
//! This is the one part of `diag` that does I/O; the analyses it shares
//! with captures stay pure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Code, Fact, Finding, Severity};
use crate::net::url::RtmpUrl;
use crate::net::{self, DriveError, Driver, Stream};
use crate::proto::handshake::{HandshakeConfig, PeerHandshake};
use crate::proto::message::Message;
use crate::proto::session::{ClientSession, Event, Goal, SessionConfig, State};

/// One live check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Simple handshake (version bytes zero).
    HandshakeSimple,
    /// Digest handshake (FFmpeg's C1).
    HandshakeDigest,
    /// `connect` to the URL's application.
    Connect,
    /// Publish a few media messages chunked at this size.
    Publish(u32),
    /// Publish with timestamps crossing 0xFFFFFF (extended timestamps).
    ExtendedTimestamp,
    /// Publish a key frame of this many bytes.
    BigKeyFrame(u32),
    /// Publish as fast as the server takes it for this long, measuring the
    /// rate by the server's own Acknowledgements.
    Throughput(Duration),
}

impl Check {
    /// The check's name (the `check` of its finding).
    pub fn name(self) -> String {
        match self {
            Check::HandshakeSimple => "handshake_simple".into(),
            Check::HandshakeDigest => "handshake_digest".into(),
            Check::Connect => "connect".into(),
            Check::Publish(n) => format!("publish_chunk_size_{n}"),
            Check::ExtendedTimestamp => "extended_timestamp".into(),
            Check::BigKeyFrame(n) => format!("key_frame_{n}"),
            Check::Throughput(_) => "throughput".into(),
        }
    }
}

/// The default checks, in order.
pub const CHECKS: [Check; 8] = [
    Check::HandshakeSimple,
    Check::HandshakeDigest,
    Check::Connect,
    Check::Publish(128),
    Check::Publish(4096),
    Check::Publish(65536),
    Check::ExtendedTimestamp,
    Check::BigKeyFrame(1536 << 10),
];

/// How long a server that accepted media is watched for a refusal.
const SETTLE: Duration = Duration::from_millis(600);
/// The same after the key frame over 1 MiB.
const SETTLE_BIG: Duration = Duration::from_secs(2);

/// Window Acknowledgement Size we ask the server to use during the
/// throughput check: an Acknowledgement every 64 KiB received.
const THROUGHPUT_WINDOW: u32 = 64 << 10;

/// Video message size while measuring throughput: small, so one blocked
/// write never holds back reading the server's acknowledgements for long.
const THROUGHPUT_MESSAGE: usize = 4096;

/// A throughput measurement from the server's acknowledgements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    /// Bits per second the server acknowledged.
    pub bits_per_second: f64,
    /// Acknowledgements used.
    pub acks: usize,
    /// Seconds between the first and the last of them.
    pub seconds: f64,
}

/// What one check saw.
enum Outcome {
    Accepted(String),
    /// The throughput check's measurement.
    Measured(Throughput),
    /// Refused: what happened, the server's words if any.
    Refused(String),
    /// A step before what the check tests failed (`step`: connect,
    /// createStream, publish), so the check says nothing of its subject.
    Before {
        /// The command that got no further.
        step: &'static str,
        /// What happened.
        why: String,
    },
    /// The server broke the protocol (its chunk stream or a command does
    /// not decode): `chunk` when the chunk stream broke.
    Broke {
        why: String,
        chunk: bool,
    },
    /// The check could not run (network, a step before it failed).
    Failed(String),
    /// Not tried: an earlier check showed it cannot get anywhere (why,
    /// and what to fix first).
    Skipped(String, &'static str),
}

fn xorshift() -> impl FnMut(&mut [u8]) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = t | 1;
    move |buf: &mut [u8]| {
        for b in buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
    }
}

/// An AVC sequence header (avcC with a small baseline SPS/PPS).
fn avc_sequence_header() -> Bytes {
    let sps = [
        0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04,
        0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x58, 0xba, 0x80,
    ];
    let pps = [0x68, 0xce, 0x0f, 0x2c, 0x80];
    let mut b = vec![0x17, 0x00, 0, 0, 0, 0x01, 0x42, 0xc0, 0x1e, 0xff, 0xe1];
    b.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    b.extend_from_slice(&sps);
    b.push(1);
    b.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    b.extend_from_slice(&pps);
    Bytes::from(b)
}

/// A video frame (AVC NALU packet) of `len` bytes in all.
fn avc_frame(key: bool, len: usize) -> Bytes {
    let len = len.max(10);
    let mut b = vec![0u8; len];
    b[0] = if key { 0x17 } else { 0x27 };
    b[1] = 1;
    let nal = (len - 9) as u32;
    b[5..9].copy_from_slice(&nal.to_be_bytes());
    b[9] = if key { 0x65 } else { 0x41 };
    for (i, x) in b.iter_mut().enumerate().skip(10) {
        *x = (i * 7 + 3) as u8;
    }
    Bytes::from(b)
}

async fn connect(url: &RtmpUrl, timeout: Duration) -> Result<Stream, String> {
    let addrs = net::resolve(&url.host, url.port, timeout)
        .await
        .map_err(|e| format!("cannot resolve '{}': {e}", url.host))?;
    let tcp = net::tcp_connect(&addrs, timeout)
        .await
        .map_err(|e| format!("TCP connect to {}: {e}", addrs[0]))?;
    let _ = tcp.set_nodelay(true);
    Ok(Stream::Plain(tcp))
}

/// The command a session in `state` waits on.
fn step_name(state: State) -> &'static str {
    match state {
        State::Handshake => "the handshake",
        State::Connect => "connect",
        State::CreateStream => "createStream",
        _ => "publish",
    }
}

/// Runs one check against `url`.
async fn run_check(check: Check, url: &RtmpUrl, timeout: Duration) -> Outcome {
    let stream = match connect(url, timeout).await {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(e),
    };
    let goal = match check {
        Check::HandshakeSimple | Check::HandshakeDigest | Check::Connect => Goal::Connect,
        _ => Goal::Publish {
            // A name of its own per run: a server may still hold the last one.
            stream: format!(
                "{}_{}_{}",
                url.stream_with_query(),
                check.name(),
                std::process::id()
            ),
            kind: "live".into(),
        },
    };
    let mut config = SessionConfig::new(url.app(), &url.tc_url(), goal);
    config.handshake = match check {
        Check::HandshakeSimple => HandshakeConfig::simple(),
        _ => HandshakeConfig::client(),
    };
    if let Check::Publish(n) = check {
        config.chunk_size = n;
    }
    let session = ClientSession::new(config, Duration::ZERO, &mut xorshift());
    let mut d = Driver::new(stream, session, Instant::now(), false);
    // --timeout bounds each phase (CLI.md), not the whole check.
    let mut deadline = Instant::now() + timeout;
    // Handshake.
    let outcome = loop {
        match d.next_event(deadline).await {
            Ok(ev) => {
                if let Event::Handshake(o) = ev.event {
                    break o;
                }
            }
            Err(e) => return Outcome::Refused(format!("handshake failed: {e}")),
        }
    };
    let how = match outcome.kind {
        PeerHandshake::Simple if outcome.peer_hello_is_echo => "S1 echoes C1 (simple answer)",
        PeerHandshake::Simple => "simple",
        PeerHandshake::Digest { .. } => "digest verified",
        PeerHandshake::UnverifiedDigest => "digest does not verify",
    };
    if matches!(check, Check::HandshakeSimple | Check::HandshakeDigest) {
        return Outcome::Accepted(format!("handshake completed (server: {how})"));
    }
    // Connect (and publish). A failure at a step before what the check
    // tests is said as such: only connect can depend on a publish check's
    // chunk size (createStream and publish are far shorter than 128 bytes).
    let want = if check == Check::Connect {
        State::Connected
    } else {
        State::Active
    };
    let mut state = d.session.state();
    deadline = Instant::now() + timeout;
    let before = |state: State, why: String| {
        let step = step_name(state);
        if check == Check::Connect || (matches!(check, Check::Publish(_)) && step == "connect") {
            Outcome::Refused(format!("{step}: {why}"))
        } else {
            Outcome::Before { step, why }
        }
    };
    while d.session.state() != want {
        match d.next_event(deadline).await {
            Ok(ev) => match ev.event {
                Event::Reply(r) if !r.ok => {
                    let code = r.info("code").unwrap_or_default().into_owned();
                    let desc = r.info("description").unwrap_or_default().into_owned();
                    return before(state, format!("refused: {code} {desc}"));
                }
                Event::Status(s) if s.is_error() => {
                    return before(state, format!("refused: {} {}", s.code, s.description));
                }
                _ => {}
            },
            Err(DriveError::Session(e)) => {
                let chunk = matches!(e, crate::proto::session::SessionError::Chunk(_));
                return Outcome::Broke {
                    why: format!("in its answer to {}: {e}", step_name(state)),
                    chunk,
                };
            }
            Err(DriveError::Timeout) => {
                return before(state, format!("no answer within {timeout:?}"));
            }
            Err(DriveError::Closed) => {
                return before(state, "the server closed the connection".into());
            }
            Err(e) => return before(state, e.to_string()),
        }
        if d.session.state() == State::Failed {
            return before(state, "the session failed".into());
        }
        if d.session.state() != state {
            state = d.session.state();
            deadline = Instant::now() + timeout;
        }
    }
    if check == Check::Connect {
        return Outcome::Accepted("connect accepted".into());
    }
    if let Check::Throughput(dur) = check {
        return measure(d, dur).await;
    }
    // Media.
    let (start, frames, key_len) = match check {
        Check::ExtendedTimestamp => (0x00FF_FF00u32, 12, 20_000),
        Check::BigKeyFrame(n) => (0, 2, n as usize),
        _ => (0, 6, 100_000),
    };
    d.session
        .send_media(&Message::Video(avc_sequence_header()), start);
    for i in 0..frames {
        let ts = start.wrapping_add(i * 40);
        let key = i == 0;
        let len = if key { key_len } else { 3000 };
        d.session
            .send_media(&Message::Video(avc_frame(key, len)), ts);
        d.session.send_media(
            &Message::Audio(Bytes::from_static(&[0xaf, 0x01, 0x21, 0x10, 0x04, 0x60])),
            ts,
        );
    }
    if let Err(e) = d.flush_within(timeout).await {
        return Outcome::Refused(format!("the server stopped reading ({e})"));
    }
    // A server that refuses closes the connection: watch for it. Some take
    // their time over a message too big (serve reads on for a second, to
    // say what it saw).
    let t = Instant::now();
    let settle = Instant::now()
        + match check {
            Check::BigKeyFrame(_) => SETTLE_BIG,
            _ => SETTLE,
        };
    loop {
        match d.next_event(settle).await {
            Ok(ev) => {
                if let Event::Status(s) = ev.event
                    && s.is_error()
                {
                    return Outcome::Refused(format!("refused: {} {}", s.code, s.description));
                }
            }
            Err(DriveError::Timeout) => break,
            Err(DriveError::Closed) => {
                return Outcome::Refused(format!(
                    "the server closed the connection {} ms after the media",
                    t.elapsed().as_millis()
                ));
            }
            Err(e) => return Outcome::Refused(format!("{e}")),
        }
    }
    d.session.close();
    let _ = d.flush().await;
    let _ = d.stream.shutdown().await;
    Outcome::Accepted(format!(
        "server took {frames} video frames{} and kept the connection",
        match check {
            Check::ExtendedTimestamp => " with timestamps crossing 0xFFFFFF",
            Check::BigKeyFrame(_) => " including the key frame",
            _ => "",
        }
    ))
}

/// Publishes as fast as the server takes it for `dur` and measures the rate
/// from the server's Acknowledgement messages (what it really received, not
/// what our send buffer took). A task reads the socket and stamps each read
/// with its arrival time while this one writes: a blocked write (the kernel
/// wakes writers only when much of the buffer is free) never delays them.
async fn measure(d: Driver, dur: Duration) -> Outcome {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Driver {
        stream,
        mut session,
        epoch,
        ..
    } = d;
    let Stream::Plain(tcp) = stream else {
        return Outcome::Failed("throughput is measured over rtmp:// only".into());
    };
    // At the end, drop what is still queued (a reset): at a low rate the
    // send buffer holds seconds of data the server need not read.
    let _ = socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO));
    let (mut rd, mut wr) = tcp.into_split();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Duration, Vec<u8>)>();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send((epoch.elapsed(), buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    // Ask for an acknowledgement every THROUGHPUT_WINDOW bytes (sent on the
    // publish stream: the session encodes it; servers dispatch control
    // messages by type).
    session.send_media(&Message::WindowAckSize(THROUGHPUT_WINDOW), 0);
    session.send_media(&Message::Video(avc_sequence_header()), 0);
    session.send_media(&Message::Video(avc_frame(true, THROUGHPUT_MESSAGE)), 0);
    let end = Instant::now() + dur;
    let mut acks: Vec<(Duration, u32)> = Vec::new();
    let mut ts = 0u32;
    let mut closed = false;
    'send: while Instant::now() < end {
        ts = ts.wrapping_add(40);
        session.send_media(&Message::Video(avc_frame(false, THROUGHPUT_MESSAGE)), ts);
        while let Some(b) = session.poll_transmit() {
            let left = end.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, wr.write_all(&b)).await {
                Err(_) => break 'send,
                Ok(Err(_)) => {
                    closed = true;
                    break 'send;
                }
                Ok(Ok(())) => {}
            }
        }
        while let Ok((at, bytes)) = rx.try_recv() {
            if session.handle_input(&bytes, at).is_err() {
                break;
            }
        }
        while let Some(ev) = session.poll_event() {
            if let Event::Acknowledgement(seq) = ev.event {
                acks.push((ev.at, seq));
            }
        }
    }
    reader.abort();
    drop(wr);
    while let Ok((at, bytes)) = rx.try_recv() {
        let _ = session.handle_input(&bytes, at);
    }
    while let Some(ev) = session.poll_event() {
        if let Event::Acknowledgement(seq) = ev.event {
            acks.push((ev.at, seq));
        }
    }
    if closed && acks.len() < 3 {
        return Outcome::Refused("the server closed the connection".into());
    }
    // Leave the first second out: the send buffer fills at memory speed.
    let warm = acks
        .first()
        .map(|a| a.0 + Duration::from_millis(1000))
        .unwrap_or_default();
    let used: Vec<&(Duration, u32)> = acks.iter().filter(|a| a.0 >= warm).collect();
    let (Some(a), Some(b)) = (used.first(), used.last()) else {
        return Outcome::Refused(format!(
            "the server sent {} acknowledgements in {:.1} s (it ignores Window Acknowledgement \
             Size, or takes almost nothing)",
            acks.len(),
            dur.as_secs_f64()
        ));
    };
    let secs = (b.0 - a.0).as_secs_f64();
    if used.len() < 3 || secs <= 0.0 {
        return Outcome::Refused(format!(
            "too few acknowledgements to measure ({} in {:.1} s)",
            acks.len(),
            dur.as_secs_f64()
        ));
    }
    let bytes = f64::from(b.1.wrapping_sub(a.1));
    Outcome::Measured(Throughput {
        bits_per_second: bytes * 8.0 / secs,
        acks: used.len(),
        seconds: secs,
    })
}

/// What [`run_checks`] found.
#[derive(Debug)]
pub struct LiveReport {
    /// One finding per check run, in order.
    pub findings: Vec<Finding>,
    /// `stop` came before every check had run: the checks after the
    /// findings were not run (the one under way was dropped, its
    /// connection closed).
    pub interrupted: bool,
}

/// Runs every check in `checks` against `url`, one connection each, until
/// `stop` completes (Ctrl-C).
pub async fn run_checks(
    url: &RtmpUrl,
    checks: &[Check],
    timeout: Duration,
    reveal: bool,
    bitrate: Option<f64>,
    stop: impl Future<Output = ()>,
) -> LiveReport {
    let shown = url.shown(reveal);
    let conn: Arc<str> = Arc::from(format!("{}:{}", url.host, url.port));
    let mut out = Vec::new();
    let mut stop = std::pin::pin!(stop);
    // Handshake checks whose handshake never completed: when both kinds
    // failed, every later check would wait out the same timeout.
    let mut no_handshake = 0;
    // Why the checks that publish cannot get anywhere: connect failed, or
    // publishing failed before any media went (which no chunk size,
    // timestamp or frame size of theirs changes).
    let mut blocked: Option<(String, &'static str)> = None;
    for (n, &check) in checks.iter().enumerate() {
        let handshake_check = matches!(check, Check::HandshakeSimple | Check::HandshakeDigest);
        let outcome = if no_handshake == 2 && !handshake_check {
            Outcome::Skipped(
                "the server completed neither the simple nor the digest handshake".into(),
                "make the handshake work first (above)",
            )
        } else if let (Some((why, fix)), false) = (&blocked, handshake_check) {
            Outcome::Skipped(why.clone(), fix)
        } else {
            tokio::select! {
            biased;
            _ = &mut stop => {
                return LiveReport {
                    findings: out,
                    interrupted: true,
                };
            }
            o = run_check(check, url, timeout) => o,
            }
        };
        if handshake_check
            && matches!(&outcome, Outcome::Refused(s) if s.starts_with("handshake failed"))
        {
            no_handshake += 1;
        }
        match (&outcome, check) {
            // Unreachable: each check says so (the network may come back).
            (Outcome::Accepted(_) | Outcome::Failed(_), _)
            | (_, Check::HandshakeSimple | Check::HandshakeDigest) => {}
            (_, Check::Connect) => {
                blocked = Some((
                    "connect failed (above)".into(),
                    "make connect work first (above)",
                ));
            }
            (Outcome::Before { step, .. }, _) if blocked.is_none() => {
                blocked = Some((
                    format!("publishing failed before any media, at {step} (above)"),
                    "make publishing work first (above)",
                ));
            }
            (Outcome::Broke { .. }, _) if blocked.is_none() => {
                blocked = Some((
                    "the server broke the protocol before any media (above)".into(),
                    "make the server's answers decode first (above)",
                ));
            }
            _ => {}
        }
        let mut facts = vec![
            ("check", Fact::Text(check.name())),
            ("url", Fact::Text(shown.clone())),
        ];
        if let Outcome::Measured(t) = &outcome {
            facts.push(("throughput_kbps", Fact::Float(t.bits_per_second / 1000.0)));
            facts.push(("acks", Fact::Int(t.acks as u64)));
            if let Some(b) = bitrate {
                facts.push(("bitrate_kbps", Fact::Float(b / 1000.0)));
            }
        }
        let (severity, code, message, fix) = judge(check, outcome, bitrate);
        let message = url.scrub(&message, reveal).into_owned();
        out.push(Finding {
            code,
            severity,
            conn: conn.clone(),
            conn_id: n as u64,
            dir: None,
            frame: None,
            offset: None,
            time: None,
            message,
            fix: fix.into(),
            facts,
        });
    }
    LiveReport {
        findings: out,
        interrupted: false,
    }
}

fn judge(check: Check, o: Outcome, bitrate: Option<f64>) -> (Severity, Code, String, String) {
    let (what, refused) = match o {
        Outcome::Measured(t) => {
            let mbps = t.bits_per_second / 1e6;
            let how = format!(
                "the server took {mbps:.2} Mbit/s (its own acknowledgements: {} over {:.1} s)",
                t.acks, t.seconds
            );
            return match bitrate {
                Some(b) if t.bits_per_second < b => (
                    Severity::Warning,
                    Code::FallsBehindRealTime,
                    format!(
                        "{how}, less than the {:.2} Mbit/s you plan to send: the stream will fall \
                         behind real time and players will buffer",
                        b / 1e6
                    ),
                    "lower the bitrate below what the path carries, or find the bottleneck \
                     (uplink, a shaper, server CPU)"
                        .into(),
                ),
                Some(b) => (
                    Severity::Info,
                    Code::FallsBehindRealTime,
                    format!("{how}: room for the {:.2} Mbit/s you plan to send", b / 1e6),
                    String::new(),
                ),
                None => (
                    Severity::Info,
                    Code::FallsBehindRealTime,
                    how,
                    String::new(),
                ),
            };
        }
        Outcome::Accepted(s) => {
            return (
                Severity::Info,
                code_of(check),
                format!("accepted: {s}"),
                String::new(),
            );
        }
        Outcome::Skipped(s, fix) => {
            return (
                Severity::Info,
                code_of(check),
                format!("not run: {s}"),
                fix.into(),
            );
        }
        Outcome::Broke { why, chunk } => {
            let (code, message, fix) = if chunk {
                (
                    Code::ChunkSizeMismatch,
                    format!(
                        "the server broke the RTMP chunk stream {why}: its chunks do not follow the \
                         chunk size it announced (a Set Chunk Size missing or smaller than the \
                         chunks it sends); every client fails here (FFmpeg: \"RTMP packet size \
                         mismatch\"; probe: exit 9)"
                    ),
                    "the server must send Set Chunk Size before it chunks at more than 128 bytes: \
                     a server bug or a proxy in between that rewrites the stream; fix or replace it",
                )
            } else {
                (
                    Code::Refused,
                    format!("the server broke the protocol {why}"),
                    "the server's answer does not decode: a server bug, or not an RTMP server",
                )
            };
            return (Severity::Error, code, message, fix.into());
        }
        Outcome::Before { step, why } => {
            let fix = match step {
                "connect" => {
                    "check the application name (nginx: an application block of that name) and access rules"
                }
                _ => {
                    "the server does not let this client publish here: check the stream key, the \
                      application's publish rules (nginx: allow publish, on_publish) and that the \
                      server answers createStream and publish"
                }
            };
            return (
                Severity::Error,
                Code::Refused,
                format!("could not get to the media: {step}: {why}"),
                fix.into(),
            );
        }
        Outcome::Refused(s) => (s, true),
        Outcome::Failed(s) => (s, false),
    };
    if !refused {
        return (
            Severity::Error,
            code_of(check),
            format!("could not run: {what}"),
            "check that the server is reachable".into(),
        );
    }
    let (sev, fix) = match check {
        Check::HandshakeSimple | Check::HandshakeDigest => (
            Severity::Error,
            "the server does not complete an RTMP handshake of this kind: check it is an RTMP port".to_string(),
        ),
        Check::Connect if what.contains("no answer within") => (
            Severity::Error,
            "the server did not answer connect in time: an overloaded server, or an application \
             that holds connects (nginx: an on_connect hook); raise --timeout to wait longer"
                .to_string(),
        ),
        Check::Connect => (
            Severity::Error,
            "check the application name (nginx: an application block of that name) and access rules".to_string(),
        ),
        Check::Publish(n) => (
            Severity::Warning,
            format!(
                "the server does not take chunks of {n} bytes: encoders using that size fail here \
                 (nginx: chunk_size; SRS refuses sizes below 128)"
            ),
        ),
        Check::ExtendedTimestamp => (
            Severity::Warning,
            "the server mishandles extended timestamps: streams break after 4h39m (nginx: publish_time_fix)".to_string(),
        ),
        Check::Throughput(_) => (
            Severity::Warning,
            "the throughput could not be measured: the server must acknowledge what it receives"
                .to_string(),
        ),
        Check::BigKeyFrame(n) => (
            Severity::Warning,
            format!(
                "the server refuses messages of {n} bytes: raise nginx-rtmp's max_message \
                 (default 1M, e.g. max_message 4M;) or lower the encoder's key frame size"
            ),
        ),
    };
    let extra = match check {
        Check::BigKeyFrame(_) => {
            " (nginx-rtmp logs \"too big message: 1048576\": max_message, default 1M)"
        }
        _ => "",
    };
    (sev, code_of(check), format!("refused: {what}{extra}"), fix)
}

fn code_of(check: Check) -> Code {
    match check {
        Check::HandshakeSimple | Check::HandshakeDigest => Code::HandshakeIncomplete,
        Check::Connect => Code::Refused,
        Check::Publish(_) => Code::ChunkSizeMismatch,
        Check::ExtendedTimestamp => Code::ExtendedTimestamp,
        Check::BigKeyFrame(_) => Code::MessageTooBig,
        Check::Throughput(_) => Code::FallsBehindRealTime,
    }
}
