//! What `publish` and `play` share: reaching a server up to the first
//! onStatus of `publish`/`play` (RTMP 1.0 §7.2.1, §7.2.2), with each failure
//! explained and mapped to the exit codes of CLI.md, and small output helpers.

use std::time::{Duration, Instant};

use crate::{Exit, exit};
use rtmptool::net::tls::{self, TlsError, TlsOptions};
use rtmptool::net::{self, DriveError, Driver, Phase, RtmpUrl, Stream};
use rtmptool::proto::session::{ClientSession, Event, Goal, SessionConfig};

pub use rtmptool::net::client::{connect_refusal, malformed_command, random_source, refusal};

/// Connection options common to `publish` and `play`.
pub struct ConnectOptions<'a> {
    /// The parsed URL.
    pub url: &'a RtmpUrl,
    /// What to do after connect.
    pub goal: Goal,
    /// Our chunk size (announced with Set Chunk Size).
    pub chunk_size: u32,
    /// Limit for each phase.
    pub timeout: Duration,
    /// rtmps CA file.
    pub ca: Option<std::path::PathBuf>,
    /// rtmps without verification.
    pub insecure: bool,
    /// Show keys in messages.
    pub reveal_keys: bool,
    /// More properties for `connect`'s command object (E-RTMP
    /// capabilities).
    pub connect_extra: Vec<(String, rtmptool::proto::amf0::Amf0Value)>,
}

impl<'a> ConnectOptions<'a> {
    /// `goal` at `url` with the connection flags of play and publish.
    pub fn of(
        url: &'a RtmpUrl,
        goal: Goal,
        conn: &crate::cli::ConnArgs,
        timeout: Duration,
    ) -> Self {
        ConnectOptions {
            url,
            goal,
            chunk_size: conn.chunk_size,
            timeout,
            ca: conn.ca.clone(),
            insecure: conn.insecure,
            reveal_keys: conn.reveal_keys,
            connect_extra: Vec::new(),
        }
    }
}

/// An error with its exit code.
pub fn err(code: u8, msg: String) -> Exit {
    Exit {
        code,
        error: anyhow::anyhow!(msg),
    }
}

/// The connection broke while the stream flowed: the exit for `e` (9: the
/// peer broke the protocol, 6: TLS did, 3 otherwise) and one line, `what`
/// (`{url}: play`) and how far it got (`so_far`).
pub fn broke_mid_stream(e: &DriveError, what: &str, so_far: &str) -> Exit {
    let code = match e {
        DriveError::Session(_) => exit::PROTOCOL,
        _ if e.tls_fault() => exit::TLS,
        _ => exit::NETWORK,
    };
    let tls = if e.tls_fault() { "TLS: " } else { "" };
    err(
        code,
        format!(
            "{what}: the connection broke mid-stream ({tls}{}) after {so_far}",
            rtmptool::text::sanitize(&e.to_string())
        ),
    )
}

/// Maps a driver error after the handshake to an exit code and words.
pub fn drive_failure(e: &DriveError, what: &str, shown: &str, timeout: Duration) -> Exit {
    let what = format!("{shown}: {what}");
    let (code, msg) = match e {
        DriveError::Timeout => (
            exit::NETWORK,
            format!("{what}: no answer within {timeout:?}"),
        ),
        DriveError::Closed => (
            exit::NETWORK,
            format!(
                "{what}: the server closed the connection (it rejected the app, tcUrl or stream name without a reason)"
            ),
        ),
        DriveError::Io(io) if e.tls_fault() => (exit::TLS, format!("{what}: TLS: {io}")),
        DriveError::Io(e) => (exit::NETWORK, format!("{what}: {e}")),
        DriveError::Session(e) => (
            exit::PROTOCOL,
            format!(
                "{what}: the server broke the protocol: {}",
                rtmptool::text::sanitize(&e.to_string())
            ),
        ),
    };
    err(code, msg)
}

/// Resolves, connects (TCP, TLS), handshakes and runs the session to the
/// first onStatus of publish/play. Returns the driver with the stream active.
pub async fn connect(o: ConnectOptions<'_>) -> Result<Driver, Exit> {
    let url = o.url;
    let shown = url.shown(o.reveal_keys);
    let timeout = o.timeout;
    let addrs = net::resolve(&url.host, url.port, timeout)
        .await
        .map_err(|e| {
            err(
                exit::NETWORK,
                format!("{shown}: resolve: cannot resolve '{}': {e}", url.host),
            )
        })?;
    let tcp = net::tcp_connect(&addrs, timeout).await.map_err(|e| {
        let why = rtmptool::net::client::tcp_connect_failure(&e, addrs[0], timeout);
        err(exit::NETWORK, format!("{shown}: tcp_connect: {why}"))
    })?;
    let stream = if url.tls {
        let opts = TlsOptions {
            ca: o.ca.clone(),
            insecure: o.insecure,
        };
        match tls::connect(tcp, &url.host, &opts, timeout).await {
            Ok((s, _)) => Stream::Tls(Box::new(s)),
            Err(e) => {
                let code = match e {
                    TlsError::CaFile { .. } => exit::BAD_INPUT,
                    _ => exit::TLS,
                };
                return Err(err(code, format!("{shown}: tls: {e}")));
            }
        }
    } else {
        Stream::Plain(tcp)
    };
    let publish = matches!(o.goal, Goal::Publish { .. });
    let mut config = SessionConfig::new(url.app(), &url.tc_url(), o.goal);
    config.chunk_size = o.chunk_size;
    config.connect_extra = o.connect_extra;
    let session = ClientSession::new(config, Duration::ZERO, &mut random_source());
    let mut d = Driver::new(stream, session, Instant::now(), true);

    let deadline = Instant::now() + timeout;
    loop {
        match d.next_event(deadline).await {
            Ok(ev) => {
                if let Event::Handshake(_) = ev.event {
                    break;
                }
            }
            Err(e) => {
                let why = rtmptool::probe::handshake_failure(&d, e, timeout, url).await;
                return Err(err(exit::HANDSHAKE, format!("{shown}: handshake: {why}")));
            }
        }
    }
    let mut phase = Phase::Connect;
    let start_phase = if publish { Phase::Publish } else { Phase::Play };
    let mut deadline = Instant::now() + timeout;
    // A reply that matched none of our transaction ids, if the phase then
    // times out: the server answered with the wrong one (exit 9).
    let mut stray: Option<String> = None;
    loop {
        let ev = match d.next_event(deadline).await {
            Ok(ev) => ev,
            Err(DriveError::Timeout) if stray.is_some() => {
                return Err(err(
                    exit::PROTOCOL,
                    format!(
                        "{shown}: {}: no answer within {timeout:?} but a {}, which matches none of our commands: the server answered with the wrong transaction id",
                        phase.name(),
                        stray.unwrap_or_default()
                    ),
                ));
            }
            Err(e) => return Err(drive_failure(&e, phase.name(), &shown, timeout)),
        };
        if let Some(why) = malformed_command(&ev.event, url, o.reveal_keys) {
            return Err(err(
                exit::PROTOCOL,
                format!("{shown}: {}: {why}", phase.name()),
            ));
        }
        let before = phase;
        match ev.event {
            Event::Reply(r) if r.to == "connect" && r.ok => phase = Phase::CreateStream,
            Event::Reply(r) if !r.ok => {
                let phase = if r.to == "connect" {
                    Phase::Connect
                } else {
                    Phase::CreateStream
                };
                let why = if r.to == "connect" {
                    connect_refusal(url, &r, o.reveal_keys)
                } else {
                    refusal(
                        url,
                        &r.info("code").unwrap_or_default(),
                        &r.info("description").unwrap_or_default(),
                        o.reveal_keys,
                    )
                };
                return Err(err(
                    exit::REFUSED,
                    format!(
                        "{shown}: {}: the server refused {}: {why}",
                        phase.name(),
                        r.to,
                    ),
                ));
            }
            Event::StreamCreated(_) => phase = start_phase,
            Event::Started(_) => {
                // Quick ACKs speed up the command exchange; in a bulk
                // transfer they only cost an ACK per segment.
                d.quickack = false;
                return Ok(d);
            }
            // At connect: a refusal as an onStatus in place of an `_error`.
            Event::Status(s)
                if s.is_error() && (phase == Phase::Connect || phase == start_phase) =>
            {
                let why = format!(
                    "{shown}: {}: the server refused {}: {}",
                    phase.name(),
                    phase.name(),
                    refusal(url, &s.code, &s.description, o.reveal_keys)
                );
                return Err(err(exit::REFUSED, why));
            }
            Event::Command(c) if matches!(c.name(), "_result" | "_error") => {
                if let Some(t) = c.transaction_id().filter(|&t| t != 0.0) {
                    stray = Some(format!("{} with transaction id {t}", c.name()));
                }
            }
            _ => {}
        }
        // Each phase has its own limit (CLI.md's --timeout).
        if phase != before {
            deadline = Instant::now() + timeout;
            stray = None;
        }
    }
}

/// Milliseconds as a rounded float (JSON `_ms` keys).
pub fn ms_f(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Human byte count.
pub fn human_bytes(n: u64) -> String {
    if n >= 1 << 30 {
        format!("{:.2} GiB", n as f64 / (1u64 << 30) as f64)
    } else if n >= 1 << 20 {
        format!("{:.2} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// `m:ss.s` media time.
pub fn media_time(ms: u64) -> String {
    format!("{}:{:04.1}", ms / 60_000, (ms % 60_000) as f64 / 1000.0)
}

/// Ctrl-C (SIGINT) or a polite kill (SIGTERM, as `kill PID`, systemd and
/// `timeout` send it), listened for from [`sigint`] on: both end a command
/// the same way, with its stats and a valid file. A
/// `tokio::signal::ctrl_c()` future only starts listening once polled, and
/// a signal before that would kill the process without its stats.
pub struct Interrupt {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Interrupt {
    /// Resolves at the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

impl rtmptool::play::Stop for Interrupt {
    fn stopped(&mut self) -> impl Future<Output = ()> {
        self.recv()
    }
}

/// Starts listening for Ctrl-C and SIGTERM ([`Interrupt`]). Call inside the
/// runtime.
pub fn sigint() -> Result<Interrupt, Exit> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |k: SignalKind| {
        signal(k).map_err(|e| err(exit::FAILURE, format!("cannot listen for Ctrl-C: {e}")))
    };
    Ok(Interrupt {
        int: listen(SignalKind::interrupt())?,
        term: listen(SignalKind::terminate())?,
    })
}

/// [`sigint`] from outside the runtime `rt` (before a `block_on`).
pub fn sigint_in(rt: &tokio::runtime::Runtime) -> Result<Interrupt, Exit> {
    let _in_runtime = rt.enter();
    sigint()
}

/// [`connect`], unless Ctrl-C comes first: then exit 130 at once, in
/// whatever phase (nothing was sent or saved yet).
pub async fn connect_or_interrupt(
    o: ConnectOptions<'_>,
    sig: &mut Interrupt,
    what: &str,
) -> Result<Driver, Exit> {
    let shown = o.url.shown(o.reveal_keys);
    tokio::select! {
        biased;
        _ = sig.recv() => Err(err(
            exit::INTERRUPTED,
            format!("{shown}: {what}: interrupted while connecting"),
        )),
        r = connect(o) => r,
    }
}

/// Waits for Ctrl-C, or for `limit` when one is given.
pub async fn until_interrupted(sig: &mut Interrupt, limit: Option<Duration>) {
    match limit {
        Some(d) => {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = sig.recv() => {}
            }
        }
        None => {
            sig.recv().await;
        }
    }
}
