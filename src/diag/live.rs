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

/// What one check saw.
enum Outcome {
    Accepted(String),
    /// Refused: what happened, the server's words if any.
    Refused(String),
    /// The check could not run (network, a step before it failed).
    Failed(String),
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

/// Runs one check against `url`.
async fn run_check(check: Check, url: &RtmpUrl, timeout: Duration) -> Outcome {
    let stream = match connect(url, timeout).await {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(e),
    };
    let goal = match check {
        Check::HandshakeSimple | Check::HandshakeDigest | Check::Connect => Goal::Connect,
        _ => Goal::Publish {
            stream: format!("{}_{}", url.stream_with_query(), check.name()),
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
    let deadline = Instant::now() + timeout;
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
    // Connect (and publish).
    let want = if check == Check::Connect {
        State::Connected
    } else {
        State::Active
    };
    while d.session.state() != want {
        match d.next_event(deadline).await {
            Ok(ev) => match ev.event {
                Event::Reply(r) if !r.ok => {
                    let code = r.info("code").unwrap_or_default().into_owned();
                    let desc = r.info("description").unwrap_or_default().into_owned();
                    return Outcome::Refused(format!("{} refused: {code} {desc}", r.to));
                }
                Event::Status(s) if s.is_error() => {
                    return Outcome::Refused(format!("refused: {} {}", s.code, s.description));
                }
                _ => {}
            },
            Err(e) => return Outcome::Refused(format!("before {want:?}: {e}")),
        }
        if d.session.state() == State::Failed {
            return Outcome::Refused("the session failed".into());
        }
    }
    if check == Check::Connect {
        return Outcome::Accepted("connect accepted".into());
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
    if let Err(e) = d.flush().await {
        return Outcome::Refused(format!("the server stopped reading ({e})"));
    }
    // A server that refuses closes the connection: watch for it.
    let t = Instant::now();
    let settle = Instant::now() + SETTLE;
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

/// Runs every check in `checks` against `url`, one connection each.
pub async fn run_checks(
    url: &RtmpUrl,
    checks: &[Check],
    timeout: Duration,
    reveal: bool,
) -> Vec<Finding> {
    let shown = url.shown(reveal);
    let conn: Arc<str> = Arc::from(format!("{}:{}", url.host, url.port));
    let mut out = Vec::new();
    for (n, &check) in checks.iter().enumerate() {
        let outcome = run_check(check, url, timeout).await;
        let (severity, code, message, fix) = judge(check, outcome);
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
            fix,
            facts: vec![
                ("check", Fact::Text(check.name())),
                ("url", Fact::Text(shown.clone())),
            ],
        });
    }
    out
}

fn judge(check: Check, o: Outcome) -> (Severity, Code, String, String) {
    let (what, refused) = match o {
        Outcome::Accepted(s) => {
            return (
                Severity::Info,
                code_of(check),
                format!("accepted: {s}"),
                String::new(),
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
    }
}
