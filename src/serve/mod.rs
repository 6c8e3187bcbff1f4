//! `serve`: a strict RTMP/RTMPS server (tokio edge over the sans-IO
//! [`ServerSession`]). Publishers' streams fan out to players through the
//! [`hub::Hub`]; every connection is followed by [`strict::Strict`], whose
//! findings carry the codes and words of `diagnose`.
//!
//! One listening port takes RTMP and, with a certificate, RTMPS: a first
//! byte of 0x16 (a TLS handshake record) is TLS, anything else RTMP.

pub mod hub;
pub mod record;
pub mod strict;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};

use crate::analyze::CloseKind;
use crate::capture::Timestamp;
use crate::capture::tcp::Dir;
use crate::diag::Finding;
use crate::net::url::{redact, redact_path_query};
use crate::proto::chunk::ReserveBudget;
use crate::proto::handshake::HandshakeConfig;
use crate::proto::message::{MessageType, UserControl};
use crate::proto::session::{Request, RequestId, ServerConfig, ServerEvent, ServerSession, Status};
use hub::{Frame, Hub, HubLimits, PublishRefused, Update};

/// What `--allow`/`--deny` rules apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Publishing.
    Publish,
    /// Playing.
    Play,
    /// Both.
    All,
}

/// One `--allow`/`--deny` rule: `publish:10.0.0.0/8`, `play:all`, `::1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Allow (true) or deny.
    pub allow: bool,
    /// What it is about.
    pub action: Action,
    /// Network and prefix length; `None` matches every address.
    pub net: Option<(IpAddr, u8)>,
}

impl Rule {
    /// Parses `[publish:|play:]ADDR[/PREFIX]|all`.
    pub fn parse(allow: bool, s: &str) -> Result<Rule, String> {
        let (action, rest) = match s.split_once(':') {
            Some(("publish", r)) => (Action::Publish, r),
            Some(("play", r)) => (Action::Play, r),
            _ => (Action::All, s),
        };
        if rest == "all" {
            return Ok(Rule {
                allow,
                action,
                net: None,
            });
        }
        let (addr, prefix) = match rest.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (rest, None),
        };
        let addr: IpAddr = addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("{s:?}: expected [publish:|play:]ADDRESS[/PREFIX] or all"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0..={max}"))?,
            None => max,
        };
        Ok(Rule {
            allow,
            action,
            net: Some((addr, prefix)),
        })
    }

    fn matches(&self, action: Action, ip: IpAddr) -> bool {
        if self.action != Action::All && self.action != action {
            return false;
        }
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match self.net {
            None => true,
            Some((IpAddr::V4(n), p)) => match ip {
                IpAddr::V4(a) => {
                    let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
                    u32::from(a) & mask == u32::from(n) & mask
                }
                IpAddr::V6(_) => false,
            },
            Some((IpAddr::V6(n), p)) => match ip {
                IpAddr::V6(a) => {
                    let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
                    u128::from(a) & mask == u128::from(n) & mask
                }
                IpAddr::V4(_) => false,
            },
        }
    }
}

/// Whether `ip` may do `action`: the first matching rule decides; none
/// matching allows (as nginx-rtmp's `allow`/`deny`).
pub fn allowed(rules: &[Rule], action: Action, ip: IpAddr) -> bool {
    rules
        .iter()
        .find(|r| r.matches(action, ip))
        .is_none_or(|r| r.allow)
}

/// Settings of a server.
#[derive(Clone)]
pub struct ServeConfig {
    /// Addresses to listen on.
    pub listen: Vec<SocketAddr>,
    /// TLS (RTMPS) on the same ports, when a certificate was given.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Write every published stream to an FLV file here.
    pub record_dir: Option<PathBuf>,
    /// A key publishers must give (the stream name, or its `key=` query
    /// parameter).
    pub publish_key: Option<String>,
    /// Address rules for publish and play.
    pub rules: Vec<Rule>,
    /// Connections at once; more are closed at once.
    pub max_connections: usize,
    /// Largest message a client may send (bytes held for partial messages
    /// of one connection).
    pub max_message: usize,
    /// Time for the handshake (and TLS) to complete.
    pub handshake_timeout: Duration,
    /// A connection that neither sends nor takes a byte for this long is closed.
    pub idle_timeout: Duration,
    /// Chunk size we send with.
    pub chunk_size: u32,
    /// Queue and GOP cache bounds.
    pub hub: HubLimits,
    /// SO_SNDBUF of each connection (Linux doubles it).
    pub send_buffer: usize,
    /// Players take their queue and write it at most this often (zero:
    /// every message at once); fewer wakeups and writes per player for up
    /// to this much delay (SRS's merged write, `mw_latency`).
    pub merge_writes: Duration,
    /// Show stream keys in full.
    pub reveal_keys: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 1935))],
            tls: None,
            record_dir: None,
            publish_key: None,
            rules: Vec::new(),
            max_connections: 10_000,
            max_message: 16 << 20,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            chunk_size: 4096,
            hub: HubLimits::default(),
            send_buffer: 256 * 1024,
            merge_writes: Duration::ZERO,
            reveal_keys: false,
        }
    }
}

/// What a session did (the `event` of a `session` record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// `connect` accepted.
    Connect,
    /// Publishing started.
    Publish,
    /// Playing started.
    Play,
    /// A request was refused.
    Refused,
    /// The connection closed.
    Close,
}

impl SessionKind {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Connect => "connect",
            SessionKind::Publish => "publish",
            SessionKind::Play => "play",
            SessionKind::Refused => "refused",
            SessionKind::Close => "close",
        }
    }
}

/// Counters of one connection, reported when it closes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Messages published (publisher) or sent (player).
    pub messages: u64,
    /// Messages a player skipped after falling behind.
    pub skipped: u64,
}

/// What the server reports, as it happens.
#[derive(Debug, Clone)]
pub enum ServeEvent {
    /// Listening on an address (with TLS when `tls`).
    Listening {
        /// The bound address.
        addr: SocketAddr,
        /// RTMPS too.
        tls: bool,
    },
    /// A session moved on.
    Session {
        /// The client.
        peer: SocketAddr,
        /// Connection number.
        id: u64,
        /// What happened.
        kind: SessionKind,
        /// `app/stream` (stream key redacted), when known.
        stream: String,
        /// More words: the refusal's code and why, how it closed.
        detail: String,
        /// Counters (for `close`).
        stats: ConnStats,
    },
    /// A deviation of a peer.
    Finding {
        /// The client.
        peer: SocketAddr,
        /// The finding.
        finding: Box<Finding>,
    },
    /// A player fell behind and skipped to a key frame.
    Skipped {
        /// The player.
        peer: SocketAddr,
        /// Connection number.
        id: u64,
        /// `app/stream`.
        stream: String,
        /// Messages dropped this time.
        dropped: u64,
    },
    /// A file is being recorded.
    Recording {
        /// The publisher.
        peer: SocketAddr,
        /// The file (stream key redacted).
        path: String,
    },
}

/// Where events go.
pub type Sink = Arc<dyn Fn(ServeEvent) + Send + Sync>;

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Totals of a server run.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeSummary {
    /// Connections accepted.
    pub connections: u64,
    /// Findings reported.
    pub findings: u64,
}

struct Shared {
    cfg: ServeConfig,
    hub: Arc<Hub>,
    sink: Sink,
    budget: Arc<ReserveBudget>,
    open: AtomicUsize,
    findings: AtomicU64,
    epoch: Instant,
    stop: watch::Receiver<bool>,
}

/// Binds every listening address (so that a port conflict fails before
/// anything else), returning the listeners and their bound addresses.
pub async fn bind(cfg: &ServeConfig) -> Result<Vec<TcpListener>, ServeError> {
    let mut out = Vec::new();
    for &addr in &cfg.listen {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        out.push(l);
    }
    Ok(out)
}

/// Runs the server on `listeners` until `stop` turns true; then closes every
/// connection and returns the totals.
pub async fn run(
    cfg: ServeConfig,
    listeners: Vec<TcpListener>,
    sink: Sink,
    stop: watch::Receiver<bool>,
) -> ServeSummary {
    let shared = Arc::new(Shared {
        hub: Hub::new(cfg.hub),
        budget: ReserveBudget::new(32 << 20),
        cfg,
        sink,
        open: AtomicUsize::new(0),
        findings: AtomicU64::new(0),
        epoch: Instant::now(),
        stop: stop.clone(),
    });
    let next_id = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for l in listeners {
        let addr = l.local_addr().ok();
        if let Some(addr) = addr {
            (shared.sink)(ServeEvent::Listening {
                addr,
                tls: shared.cfg.tls.is_some(),
            });
        }
        let shared = shared.clone();
        let next_id = next_id.clone();
        let mut stop = stop.clone();
        tasks.spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    r = l.accept() => {
                        let Ok((tcp, peer)) = r else { continue };
                        let id = next_id.fetch_add(1, Ordering::Relaxed);
                        let shared = shared.clone();
                        conns.spawn(async move { connection(tcp, peer, id, shared).await });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                    _ = stop.changed() => break,
                }
            }
            while conns.join_next().await.is_some() {}
        });
    }
    while tasks.join_next().await.is_some() {}
    ServeSummary {
        connections: next_id.load(Ordering::Relaxed),
        findings: shared.findings.load(Ordering::Relaxed),
    }
}

fn wall_clock() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        sec: d.as_secs() as i64,
        nsec: d.subsec_nanos(),
    }
}

fn seed(id: u64) -> impl FnMut(&mut [u8]) {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = (t ^ id.rotate_left(32)) | 1;
    move |buf: &mut [u8]| {
        for b in buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
    }
}

/// Spare room offered to each socket read once reads fill a small buffer.
const READ_SIZE: usize = 64 * 1024;
/// The first read buffer of a connection.
const SMALL_READ: usize = 4096;
/// A player whose bytes waiting to be written reach this drops what comes
/// and starts again at the next key frame once below it.
const HIGH_WATER: usize = 256 * 1024;
/// After a session error, how long and how much the client is still read.
const DRAIN_TIME: Duration = Duration::from_secs(1);
const DRAIN_BYTES: usize = 4 << 20;

enum Role {
    None,
    Publisher {
        key: String,
        stream_id: u32,
        record: Option<record::Recorder>,
    },
    Player {
        key: String,
        stream_id: u32,
        rx: broadcast::Receiver<Update>,
        need_key: bool,
        last_skip_report: Option<Instant>,
        unreported: u64,
    },
}

struct Conn {
    shared: Arc<Shared>,
    peer: SocketAddr,
    id: u64,
    session: ServerSession,
    strict: strict::Strict,
    app: String,
    role: Role,
    stats: ConnStats,
    /// The next bytes are a player's start: stop following what we send
    /// once they are queued.
    stop_following: bool,
    /// A new player's start (metadata, sequence headers, GOP): queued once
    /// the answer to its play has gone to the analysis.
    start: Vec<Arc<Frame>>,
    /// The last stream published or played (redacted), for the close record.
    last_stream: String,
    /// Bytes to write, in order (the session's and shared frames').
    out: VecDeque<Bytes>,
    /// Their total length.
    out_len: usize,
    /// The local address (the connection's name in findings).
    local: SocketAddr,
    /// serve closed the connection for a limit of its own (`--max-message`):
    /// the decoder's error, which names the message that crossed it.
    over_limit: Option<crate::proto::chunk::ChunkError>,
    /// serve is stopping and closed the connection itself: a handshake it
    /// cut short is not the client's fault.
    stopping: bool,
    /// What of the client's serve does not support was reported (once
    /// each per connection).
    unsupported: Vec<&'static str>,
}

async fn connection(tcp: TcpStream, peer: SocketAddr, id: u64, shared: Arc<Shared>) {
    let open = shared.open.fetch_add(1, Ordering::Relaxed) + 1;
    struct Guard(Arc<Shared>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let _guard = Guard(shared.clone());
    let local = tcp
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    if open > shared.cfg.max_connections {
        (shared.sink)(ServeEvent::Session {
            peer,
            id,
            kind: SessionKind::Refused,
            stream: String::new(),
            detail: format!(
                "closed at once: {} connections open (--max-connections)",
                open - 1
            ),
            stats: ConnStats::default(),
        });
        return;
    }
    let _ = tcp.set_nodelay(true);
    // A player that stops reading fills this and then its queue: keep it
    // small enough that the skip comes within seconds, not megabytes.
    let _ = socket2::SockRef::from(&tcp).set_send_buffer_size(shared.cfg.send_buffer);
    let deadline = Instant::now() + shared.cfg.handshake_timeout;
    // RTMPS on the same port: a TLS record starts with 0x16.
    let tls_stream = match &shared.cfg.tls {
        Some(tls) => {
            let mut first = [0u8; 1];
            let peeked = tokio::time::timeout_at(deadline.into(), tcp.peek(&mut first)).await;
            match peeked {
                Ok(Ok(1)) if first[0] == 0x16 => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
                    match tokio::time::timeout_at(deadline.into(), acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => Ok(s),
                        Ok(Err(e)) => {
                            closed(
                                &shared,
                                peer,
                                id,
                                format!("TLS handshake failed: {e}"),
                                ConnStats::default(),
                            );
                            return;
                        }
                        Err(_) => {
                            closed(
                                &shared,
                                peer,
                                id,
                                "TLS handshake timed out".into(),
                                ConnStats::default(),
                            );
                            return;
                        }
                    }
                }
                _ => Err(tcp),
            }
        }
        None => Err(tcp),
    };
    let session = ServerSession::new(
        ServerConfig {
            handshake: HandshakeConfig::server(),
            chunk_size: shared.cfg.chunk_size,
            max_message: shared.cfg.max_message,
            budget: Some(shared.budget.clone()),
            ..ServerConfig::default()
        },
        shared.epoch.elapsed(),
        &mut seed(id),
    );
    let strict = strict::Strict::new(
        peer,
        local,
        id,
        shared.budget.clone(),
        shared.cfg.reveal_keys,
    );
    let mut c = Conn {
        shared: shared.clone(),
        peer,
        id,
        session,
        strict,
        app: String::new(),
        role: Role::None,
        stats: ConnStats::default(),
        stop_following: false,
        start: Vec::new(),
        last_stream: String::new(),
        out: VecDeque::new(),
        out_len: 0,
        local,
        over_limit: None,
        stopping: false,
        unsupported: Vec::new(),
    };
    // Plain TCP: lock-free halves and no flush; TLS: the generic split.
    let (how, detail) = match tls_stream {
        Err(tcp) => {
            let (rd, wr) = tcp.into_split();
            c.drive(rd, wr, false, deadline).await
        }
        Ok(tls) => {
            let (rd, wr) = tokio::io::split(tls);
            c.drive(rd, wr, true, deadline).await
        }
    };
    c.finish(how, detail);
}

fn closed(shared: &Shared, peer: SocketAddr, id: u64, detail: String, stats: ConnStats) {
    (shared.sink)(ServeEvent::Session {
        peer,
        id,
        kind: SessionKind::Close,
        stream: String::new(),
        detail,
        stats,
    });
}

/// A write half that can write without waiting: fan-out writes a player's
/// bytes as soon as they are queued (one wakeup per message, as nginx-rtmp
/// sends from the publisher's event), and waits for writability only when
/// the socket is full.
trait TryWrite {
    /// `None` when the socket is full or the stream cannot tell (TLS).
    fn try_write_vectored_now(
        &mut self,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Option<std::io::Result<usize>>;
}

impl TryWrite for tokio::net::tcp::OwnedWriteHalf {
    fn try_write_vectored_now(
        &mut self,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Option<std::io::Result<usize>> {
        match self.try_write_vectored(bufs) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            r => Some(r),
        }
    }
}

impl<T> TryWrite for tokio::io::WriteHalf<T> {
    fn try_write_vectored_now(
        &mut self,
        _: &[std::io::IoSlice<'_>],
    ) -> Option<std::io::Result<usize>> {
        None
    }
}

/// `app/name` with the stream key (and any query of the app) redacted.
fn shown_key(key: &str, reveal: bool) -> String {
    match key.rsplit_once('/') {
        Some((a, s)) => format!("{}/{}", redact_path_query(a, reveal), redact(s, reveal)),
        None => redact(key, reveal),
    }
}

/// `app/name` without the queries of either: the hub's key (nginx-rtmp
/// also drops the app's query: `live?token=T` is application `live`).
fn stream_key(app: &str, name: &str) -> String {
    let app = app.split('?').next().unwrap_or("");
    let name = name.split('?').next().unwrap_or("");
    format!("{app}/{name}")
}

impl Conn {
    /// The connection's name in findings (`client-server`).
    fn conn_name(&self) -> String {
        format!("{}-{}", self.peer, self.local)
    }

    fn shown(&self, key: &str) -> String {
        shown_key(key, self.shared.cfg.reveal_keys)
    }

    fn session_event(&self, kind: SessionKind, stream: String, detail: String) {
        (self.shared.sink)(ServeEvent::Session {
            peer: self.peer,
            id: self.id,
            kind,
            stream,
            detail,
            stats: self.stats,
        });
    }

    /// Reads, writes and fans out until the connection ends; says how.
    /// Moves what the session queued to the output (through the strict
    /// analysis while it follows our side); a new player's start frames go
    /// right after the answer to its play.
    fn pull_session(&mut self) {
        while let Some(b) = self.session.poll_transmit() {
            self.strict.sent(&b, wall_clock());
            self.stats.bytes_out += b.len() as u64;
            self.out_len += b.len();
            self.out.push_back(b);
            if self.stop_following {
                self.strict.stop_following_sent();
                self.stop_following = false;
                if let Role::Player { stream_id, .. } = self.role {
                    for f in std::mem::take(&mut self.start) {
                        self.push_frame(stream_id, &f);
                    }
                }
            }
        }
    }

    /// Queues one message to a player: the bytes chunked once for every
    /// player when it plays on stream 1 (as the server's sessions number
    /// streams), else chunked for it alone.
    fn push_frame(&mut self, stream_id: u32, f: &Frame) {
        self.stats.messages += 1;
        if stream_id == hub::WIRE_STREAM_ID && !f.wire.is_empty() {
            self.pull_session();
            self.stats.bytes_out += f.wire.len() as u64;
            self.out_len += f.wire.len();
            self.out.push_back(f.wire.clone());
            // The shared bytes start with full headers: the session's own
            // next message on those chunk streams must too.
            self.session.reset_chunk_state();
        } else {
            self.session
                .send_media(stream_id, f.msg_type, f.timestamp, &f.payload);
        }
    }

    /// Takes `n` written bytes off the output.
    fn consume(&mut self, mut n: usize) {
        self.out_len -= n;
        while n > 0 {
            let Some(front) = self.out.front_mut() else {
                break;
            };
            if front.len() <= n {
                n -= front.len();
                self.out.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }

    /// Writes what the socket takes now, many buffers per call.
    fn write_now<W: TryWrite>(&mut self, wr: &mut W) -> Result<bool, ()> {
        let mut wrote = false;
        loop {
            self.pull_session();
            if self.out.is_empty() {
                return Ok(wrote);
            }
            let slices: Vec<std::io::IoSlice<'_>> = self
                .out
                .iter()
                .take(64)
                .map(|b| std::io::IoSlice::new(b))
                .collect();
            match wr.try_write_vectored_now(&slices) {
                Some(Ok(n)) if n > 0 => {
                    self.consume(n);
                    wrote = true;
                }
                Some(_) => return Err(()),
                None => return Ok(wrote),
            }
        }
    }

    /// Reads, writes and fans out until the connection ends; says how.
    async fn drive<R: AsyncRead + Unpin, W: AsyncWrite + TryWrite + Unpin>(
        &mut self,
        mut rd: R,
        mut wr: W,
        tls: bool,
        hs_deadline: Instant,
    ) -> (Option<(Dir, CloseKind)>, String) {
        // A write fails when the client reset the connection (or closed
        // it with data unread): its close, not serve's (a close of serve's
        // right after play reads as a refusal by an access rule).
        let gone = || {
            (
                Some((Dir::C2s, CloseKind::Rst)),
                "write failed: the client went away".to_string(),
            )
        };
        // Players send little: a small read buffer, grown for publishers.
        let mut rbuf = BytesMut::with_capacity(SMALL_READ);
        let sleep = tokio::time::sleep_until(hs_deadline.into());
        tokio::pin!(sleep);
        let mut armed = hs_deadline;
        let mut last_activity = Instant::now();
        // One registration for the whole connection, not one per wakeup.
        let mut stop_rx = self.shared.stop.clone();
        let stop = stop_rx.changed();
        tokio::pin!(stop);
        let idle = self.shared.cfg.idle_timeout;
        let mut needs_flush = false;
        // After the session failed: what the client sends next is still
        // read (not answered) for a moment, as evidence for the analysis.
        let mut failed: Option<String> = None;
        let mut drain_until: Option<Instant> = None;
        let mut drained = 0usize;
        let merge = self.shared.cfg.merge_writes;
        let mut last_settled = Instant::now();
        // With merged writes, a player takes its queue again only then.
        let mut next_take: Option<Instant> = None;
        loop {
            match self.write_now(&mut wr) {
                Ok(true) => last_activity = Instant::now(),
                Ok(false) => {}
                Err(()) => return gone(),
            }
            if let Some(t) = next_take
                && Instant::now() >= t
            {
                next_take = None;
            }
            if self.out.is_empty() && needs_flush {
                if wr.flush().await.is_err() {
                    return gone();
                }
                needs_flush = false;
            }
            let queued = self.out_len + self.session.poll_transmit_len();
            let handshaken = self.session.connection().is_handshaken();
            let deadline = if handshaken {
                last_activity + idle
            } else {
                hs_deadline
            };
            // One timer per connection, moved only when the deadline moved
            // by more than a little (activity moves it all the time).
            let due = drain_until.unwrap_or(deadline);
            let due = next_take.map_or(due, |t| t.min(due));
            if due < armed || due.saturating_duration_since(armed) > Duration::from_millis(500) {
                sleep.as_mut().reset(due.into());
                armed = due;
            }
            let rx = match &mut self.role {
                // Live messages wait until the start has been queued.
                Role::Player { rx, .. }
                    if failed.is_none() && !self.stop_following && next_take.is_none() =>
                {
                    Some(rx)
                }
                _ => None,
            };
            if let Some(until) = drain_until
                && (Instant::now() >= until || drained >= DRAIN_BYTES)
            {
                return (Some((Dir::S2c, CloseKind::Fin)), failed.unwrap_or_default());
            }
            // The socket was full: wait until it takes the next buffer.
            let front = self.out.front().cloned().unwrap_or_default();
            tokio::select! {
                r = rd.read_buf(&mut rbuf) => match r {
                    Ok(0) => return (Some((Dir::C2s, CloseKind::Fin)), "closed by the client".into()),
                    Err(e) => return (Some((Dir::C2s, CloseKind::Rst)), format!("read failed: {e}")),
                    Ok(n) => {
                        last_activity = Instant::now();
                        self.stats.bytes_in += n as u64;
                        self.strict.received(&rbuf, wall_clock());
                        if failed.is_some() {
                            drained += n;
                        } else {
                            let r = self.session.handle_input(&rbuf, self.shared.epoch.elapsed());
                            self.events();
                            // Decisions decode what followed a request.
                            let r = r.and_then(|()| match self.session.error() {
                                Some(e) => Err(e.clone()),
                                None => Ok(()),
                            });
                            if let Err(e) = r {
                                // The session cannot go on; the strict
                                // analysis says what went wrong (serve's
                                // own limit, serve says).
                                if let crate::proto::session::SessionError::Chunk(
                                    c @ crate::proto::chunk::ChunkError::TooMuchBuffered { .. },
                                ) = &e
                                {
                                    self.over_limit = Some(c.clone());
                                }
                                failed = Some(format!("closed: {e}"));
                                drain_until = Some(Instant::now() + DRAIN_TIME);
                                self.leave();
                            }
                        }
                        // Findings nothing later can revise go out now,
                        // at most once a second.
                        if last_settled.elapsed() >= Duration::from_secs(1) {
                            last_settled = Instant::now();
                            for f in self.strict.take_settled() {
                                self.shared.findings.fetch_add(1, Ordering::Relaxed);
                                (self.shared.sink)(ServeEvent::Finding {
                                    peer: self.peer,
                                    finding: Box::new(f),
                                });
                            }
                        }
                        let full = rbuf.len() == rbuf.capacity();
                        rbuf.clear();
                        if full && rbuf.capacity() < READ_SIZE {
                            rbuf.reserve(READ_SIZE);
                        }
                    }
                },
                w = wr.write(&front), if !front.is_empty() => match w {
                    Ok(0) | Err(_) => return gone(),
                    Ok(n) => {
                        last_activity = Instant::now();
                        self.consume(n);
                        needs_flush = tls;
                    }
                },
                u = recv(rx) => {
                    self.update(u, queued);
                    // What else is ready goes out in the same write.
                    for _ in 0..64 {
                        let queued = self.out_len + self.session.poll_transmit_len();
                        let next = match &mut self.role {
                            Role::Player { rx, .. } => rx.try_recv(),
                            _ => break,
                        };
                        match next {
                            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => break,
                            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                                self.update(Err(broadcast::error::RecvError::Lagged(n)), queued)
                            }
                            Ok(u) => self.update(Ok(u), queued),
                        }
                    }
                    if !merge.is_zero() {
                        next_take = Some(Instant::now() + merge);
                    }
                }
                _ = &mut sleep => {
                    if next_take.is_some_and(|t| Instant::now() >= t) {
                        continue;
                    }
                    if Instant::now() < due {
                        // Armed early (the deadline moved on since).
                        sleep.as_mut().reset(due.into());
                        armed = due;
                        continue;
                    }
                    if let Some(f) = failed {
                        return (Some((Dir::S2c, CloseKind::Fin)), f);
                    }
                    return if handshaken {
                        let what = if queued > 0 { "took no byte" } else { "sent nothing" };
                        (Some((Dir::S2c, CloseKind::Fin)), format!("closed: the client {what} for {} (--idle-timeout)", crate::net::human_duration(idle)))
                    } else {
                        (Some((Dir::S2c, CloseKind::Fin)), format!("closed: no complete handshake within {} (--handshake-timeout)", crate::net::human_duration(self.shared.cfg.handshake_timeout)))
                    };
                }
                _ = &mut stop => {
                    self.stopping = true;
                    let _ = wr.shutdown().await;
                    return (Some((Dir::S2c, CloseKind::Fin)), "server stopping".into());
                }
            }
        }
    }

    /// Acts on what the session reported.
    fn events(&mut self) {
        while let Some(ev) = self.session.poll_event() {
            match ev.event {
                ServerEvent::Request(id, req) => self.request(id, req),
                ServerEvent::Media(m) if m.header.msg_type == MessageType::AGGREGATE => {
                    // Its messages one by one, each at its own time (as
                    // nginx-rtmp splits them): players, the GOP cache and
                    // the recording see audio and video, not type 22. The
                    // strict analysis reports a malformed one; the parts
                    // before the fault still go on.
                    let (parts, _) = crate::proto::message::split_aggregate(
                        m.header.timestamp,
                        m.header.stream_id,
                        &m.payload,
                    );
                    for p in parts {
                        if matches!(
                            p.msg_type,
                            MessageType::AUDIO
                                | MessageType::VIDEO
                                | MessageType::DATA_AMF0
                                | MessageType::DATA_AMF3
                        ) {
                            self.published(p.msg_type, p.timestamp, &p.payload);
                        }
                    }
                }
                ServerEvent::Media(m) => {
                    self.published(m.header.msg_type, m.header.timestamp, &m.payload)
                }
                ServerEvent::Ignored(m)
                    if matches!(
                        m.header.msg_type,
                        MessageType::SHARED_OBJECT_AMF0 | MessageType::SHARED_OBJECT_AMF3
                    ) =>
                {
                    let t = m.header.msg_type;
                    self.unsupported(
                        "shared_object",
                        Some(m.offset),
                        format!(
                            "the client sent a shared object message (type {}, {}: {} bytes on \
                             chunk stream {} at offset {}): serve does not support remote shared \
                             objects and ignores it, as nginx-rtmp does; the client gets no \
                             answer (no sync or change events)",
                            t.0,
                            t.name(),
                            m.payload.len(),
                            m.csid,
                            m.offset
                        ),
                        "use a server with remote shared objects (Adobe Media Server, Wowza, \
                         Red5) for this application, or do without them",
                    );
                }
                _ => {}
            }
        }
    }

    /// Reports, once per `kind` and connection, what of the client's serve
    /// does not support and what it did instead (a warning, `unsupported`).
    fn unsupported(
        &mut self,
        kind: &'static str,
        offset: Option<u64>,
        message: String,
        fix: &'static str,
    ) {
        if self.unsupported.contains(&kind) {
            return;
        }
        self.unsupported.push(kind);
        let finding = crate::diag::Finding {
            code: crate::diag::Code::Unsupported,
            severity: crate::diag::Severity::Warning,
            conn: self.conn_name().into(),
            conn_id: self.id,
            dir: Some(Dir::C2s),
            frame: None,
            offset,
            time: Some(wall_clock()),
            message,
            fix: fix.into(),
            facts: vec![("what", crate::diag::Fact::Text(kind.into()))],
        };
        self.shared.findings.fetch_add(1, Ordering::Relaxed);
        (self.shared.sink)(ServeEvent::Finding {
            peer: self.peer,
            finding: Box::new(finding),
        });
    }

    /// A publisher's audio, video or data message: recorded and fanned out.
    fn published(&mut self, msg_type: MessageType, timestamp: u32, payload: &Bytes) {
        if let Role::Publisher { key, record, .. } = &mut self.role {
            let (msg_type, payload, loss) = hub::data_as_amf0(msg_type, payload);
            let payload = hub::strip_set_data_frame(msg_type, &payload);
            let frame = Frame::new(msg_type, timestamp, payload, self.shared.cfg.chunk_size);
            if let Some(r) = record {
                r.write(&frame);
            }
            self.stats.messages += 1;
            self.shared.hub.frame(key, frame);
            if let Some(loss) = loss {
                self.unsupported(
                    "amf3_data",
                    None,
                    format!(
                        "the publisher's AMF3 data message (type 15) {loss}, which AMF0 cannot \
                         carry: players get null in its place (serve sends AMF3 data to \
                         players as AMF0, type 18, as nginx-rtmp sends metadata; FFmpeg reads \
                         no type 15)"
                    ),
                    "send that value in a form AMF0 carries (a string, e.g. base64, or \
                     numbers), or publish with objectEncoding 0 (AMF0 data, type 18)",
                );
            }
        }
    }

    /// Refuses a request: the status goes to the client, a `refused`
    /// session record to the output; the strict analysis sees the answer
    /// and reports it as `diagnose` would (code `refused`).
    fn refuse(&mut self, id: RequestId, stream: String, code: &str, why: &str) {
        self.session.reject(id, code, why);
        self.session_event(SessionKind::Refused, stream, format!("{code}: {why}"));
    }

    fn request(&mut self, id: RequestId, req: Request) {
        let ip = self.peer.ip();
        let rules = &self.shared.cfg.rules;
        match req {
            Request::Connect { app, .. } => {
                // Kept as sent: the renderers escape it for a terminal, and
                // JSON carries the decoded value (CLI.md).
                self.app = app;
                self.session.accept(id);
                let shown = redact_path_query(&self.app, self.shared.cfg.reveal_keys);
                self.session_event(SessionKind::Connect, shown, String::new());
            }
            Request::Publish {
                stream_id,
                name,
                kind,
            } => {
                let key = stream_key(&self.app, &name);
                let shown = self.shown(&key);
                if !matches!(self.role, Role::None) {
                    self.refuse(
                        id,
                        shown,
                        "NetStream.Publish.BadConnection",
                        "this connection already publishes or plays",
                    );
                    return;
                }
                if !allowed(rules, Action::Publish, ip) {
                    self.refuse(
                        id,
                        shown,
                        "NetStream.Publish.Unauthorized",
                        "publishing from this address is denied",
                    );
                    return;
                }
                if let Some(want) = &self.shared.cfg.publish_key {
                    let plain = name.split('?').next().unwrap_or("");
                    let given = plain.rsplit('/').next().unwrap_or(plain);
                    let query_key = name
                        .split_once('?')
                        .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("key=")));
                    if given != want && query_key != Some(want.as_str()) {
                        self.refuse(
                            id,
                            shown,
                            "NetStream.Publish.Unauthorized",
                            "wrong stream key",
                        );
                        return;
                    }
                }
                match self.shared.hub.publish(&key, self.id) {
                    Err(PublishRefused::Busy) => {
                        self.refuse(id, shown, "NetStream.Publish.BadName", "Already publishing");
                    }
                    Ok(()) => {
                        self.session.accept(id);
                        let record = self.shared.cfg.record_dir.as_ref().and_then(|dir| {
                            match record::Recorder::create(dir, &key) {
                                Ok(r) => {
                                    let path = r.path().display().to_string();
                                    let shown_path = if self.shared.cfg.reveal_keys {
                                        path
                                    } else {
                                        match path.rsplit_once('/') {
                                            Some((d, f)) => format!("{d}/{}", redact(f, false)),
                                            None => redact(&path, false),
                                        }
                                    };
                                    (self.shared.sink)(ServeEvent::Recording {
                                        peer: self.peer,
                                        path: shown_path,
                                    });
                                    Some(r)
                                }
                                Err(e) => {
                                    self.session_event(
                                        SessionKind::Refused,
                                        shown.clone(),
                                        format!("not recorded: {e}"),
                                    );
                                    None
                                }
                            }
                        });
                        self.role = Role::Publisher {
                            key,
                            stream_id,
                            record,
                        };
                        self.last_stream = shown.clone();
                        self.session_event(SessionKind::Publish, shown, kind);
                    }
                }
            }
            Request::Play {
                stream_id, name, ..
            } => {
                let key = stream_key(&self.app, &name);
                let shown = self.shown(&key);
                if !matches!(self.role, Role::None) {
                    self.refuse(
                        id,
                        shown,
                        "NetStream.Play.Failed",
                        "this connection already publishes or plays",
                    );
                    return;
                }
                if !allowed(rules, Action::Play, ip) {
                    self.refuse(
                        id,
                        shown,
                        "NetStream.Play.Forbidden",
                        "playing from this address is denied",
                    );
                    return;
                }
                let sub = self.shared.hub.subscribe(&key);
                self.session.accept(id);
                self.start = sub.start;
                self.stop_following = true;
                self.role = Role::Player {
                    key,
                    stream_id,
                    rx: sub.rx,
                    need_key: false,
                    last_skip_report: None,
                    unreported: 0,
                };
                let detail = if sub.live {
                    "live"
                } else {
                    "waiting for a publisher"
                };
                self.last_stream = shown.clone();
                self.session_event(SessionKind::Play, shown, detail.into());
            }
            Request::DeleteStream { stream_id } | Request::CloseStream { stream_id } => {
                let mine = match &self.role {
                    Role::Publisher { stream_id: s, .. } | Role::Player { stream_id: s, .. } => {
                        *s == stream_id
                    }
                    Role::None => false,
                };
                if mine {
                    self.leave();
                }
                self.session.accept(id);
            }
            _ => {
                self.session.accept(id);
            }
        }
    }

    /// Stops publishing or playing.
    fn leave(&mut self) {
        match std::mem::replace(&mut self.role, Role::None) {
            Role::Publisher { key, record, .. } => {
                self.shared.hub.unpublish(&key, self.id);
                if let Some(r) = record {
                    r.finish();
                }
            }
            Role::Player { key, .. } => self.shared.hub.unsubscribe(&key),
            Role::None => {}
        }
    }

    fn update(&mut self, u: Result<Update, broadcast::error::RecvError>, queued: usize) {
        let Role::Player {
            key,
            stream_id,
            need_key,
            last_skip_report,
            unreported,
            ..
        } = &mut self.role
        else {
            return;
        };
        let sid = *stream_id;
        match u {
            Ok(Update::Frame(f)) => {
                let media = matches!(f.msg_type, MessageType::AUDIO | MessageType::VIDEO);
                if queued >= HIGH_WATER && media {
                    // The player takes less than the stream brings: its
                    // bytes waiting are at the bound. Drop, and start
                    // again at a key frame once it catches up.
                    *need_key = true;
                    *unreported += 1;
                    self.stats.skipped += 1;
                    report_skip(
                        &self.shared,
                        self.peer,
                        self.id,
                        key,
                        last_skip_report,
                        unreported,
                    );
                    return;
                }
                if *need_key {
                    let audio_only =
                        f.msg_type == MessageType::AUDIO && !self.shared.hub.has_video(key);
                    if f.is_keyframe() || audio_only {
                        *need_key = false;
                    } else if matches!(f.msg_type, MessageType::AUDIO | MessageType::VIDEO) {
                        *unreported += 1;
                        self.stats.skipped += 1;
                        return;
                    }
                }
                self.push_frame(sid, &f);
            }
            Ok(Update::Unpublished) => {
                self.session.send_user_control(UserControl::StreamEof(sid));
                self.session.send_status(
                    sid,
                    &status("NetStream.Play.UnpublishNotify", "stream is unpublished"),
                );
            }
            Ok(Update::Published) => {
                self.session.send_status(
                    sid,
                    &status("NetStream.Play.PublishNotify", "stream is published"),
                );
                self.session
                    .send_user_control(UserControl::StreamBegin(sid));
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                // Fell a whole queue behind: skip to the next key frame.
                *need_key = true;
                *unreported += n;
                self.stats.skipped += n;
                report_skip(
                    &self.shared,
                    self.peer,
                    self.id,
                    key,
                    last_skip_report,
                    unreported,
                );
            }
            Err(broadcast::error::RecvError::Closed) => {}
        }
    }

    fn finish(mut self, how: Option<(Dir, CloseKind)>, detail: String) {
        let stream = if self.last_stream.is_empty() {
            redact_path_query(&self.app, self.shared.cfg.reveal_keys)
        } else {
            self.last_stream.clone()
        };
        self.leave();
        let (dir, kind) = how.unwrap_or((Dir::S2c, CloseKind::Fin));
        let conn = self.conn_name();
        let mut findings = self.strict.end(dir, kind, wall_clock());
        if self.stopping {
            // serve ended the connection mid-handshake, not the client
            // (which broke no timeout): nothing to say about it.
            findings.retain(|f| f.code != crate::diag::Code::HandshakeIncomplete);
        }
        if let Some(e) = self.over_limit.take() {
            // The close is serve's own: not a refusal by an access rule,
            // which is what a capture of it would suggest.
            findings.retain(|f| f.code != crate::diag::Code::Refused);
            findings.extend(over_max_message(&e, &conn, self.id));
        }
        for f in findings {
            self.shared.findings.fetch_add(1, Ordering::Relaxed);
            (self.shared.sink)(ServeEvent::Finding {
                peer: self.peer,
                finding: Box::new(f),
            });
        }
        (self.shared.sink)(ServeEvent::Session {
            peer: self.peer,
            id: self.id,
            kind: SessionKind::Close,
            stream,
            detail,
            stats: self.stats,
        });
    }
}

/// The finding of a client closed for serve's own `--max-message`: the
/// message that crossed it, by the length its fmt-0/1 header declared (what
/// the limit must allow), not the bytes held when it was crossed.
fn over_max_message(
    e: &crate::proto::chunk::ChunkError,
    conn: &str,
    id: u64,
) -> Option<crate::diag::Finding> {
    use crate::diag::Fact;
    let crate::proto::chunk::ChunkError::TooMuchBuffered {
        offset,
        buffered,
        limit,
        csid,
        msg_type,
        length,
        others,
        ..
    } = *e
    else {
        return None;
    };
    let name = MessageType(msg_type).name();
    let needed = length as usize + others;
    let (held, raise) = if others > 0 {
        (
            format!(
                "; with the {others} bytes other unfinished messages hold, {needed} bytes are needed"
            ),
            format!("{needed} (the message's {length} bytes and the {others} others hold)"),
        )
    } else {
        (String::new(), format!("{length} (the message's length)"))
    };
    Some(crate::diag::Finding {
        code: crate::diag::Code::MessageTooBig,
        severity: crate::diag::Severity::Error,
        conn: conn.into(),
        conn_id: id,
        dir: Some(Dir::C2s),
        frame: None,
        offset: Some(offset),
        time: Some(wall_clock()),
        message: format!(
            "the client's {name} message on chunk stream {csid} declares {length} bytes, over this \
             server's limit of {limit} bytes for unfinished messages (--max-message){held}: serve \
             closed the connection at its chunk at offset {offset}, when {buffered} bytes would \
             have been held, as nginx-rtmp closes one over its max_message (\"too big message\")"
        ),
        fix: format!(
            "raise serve's --max-message (nginx-rtmp: max_message) to at least {raise}, or make \
             the encoder send smaller messages (a lower bitrate or smaller key frames)"
        )
        .into(),
        facts: vec![
            ("length", Fact::Int(u64::from(length))),
            ("limit", Fact::Int(limit as u64)),
            ("message_type", Fact::Int(u64::from(msg_type))),
            ("csid", Fact::Int(u64::from(csid))),
            ("needed", Fact::Int(needed as u64)),
        ],
    })
}

/// Says a player skipped, at most once a second (with what it dropped since).
fn report_skip(
    shared: &Shared,
    peer: SocketAddr,
    id: u64,
    key: &str,
    last: &mut Option<Instant>,
    unreported: &mut u64,
) {
    let now = Instant::now();
    if last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
        *last = Some(now);
        (shared.sink)(ServeEvent::Skipped {
            peer,
            id,
            stream: shown_key(key, shared.cfg.reveal_keys),
            dropped: std::mem::take(unreported),
        });
    }
}

fn status(code: &str, description: &str) -> Status {
    Status {
        stream_id: 0,
        level: "status".into(),
        code: code.into(),
        description: description.into(),
        info: crate::proto::amf0::Amf0Value::Null,
    }
}

async fn recv(
    rx: Option<&mut broadcast::Receiver<Update>>,
) -> Result<Update, broadcast::error::RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_by_action_and_prefix() {
        let rules = vec![
            Rule::parse(true, "publish:127.0.0.1").unwrap(),
            Rule::parse(false, "publish:all").unwrap(),
            Rule::parse(false, "play:10.0.0.0/8").unwrap(),
        ];
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let ten: IpAddr = "10.1.2.3".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert!(allowed(&rules, Action::Publish, lo));
        assert!(!allowed(&rules, Action::Publish, ten));
        assert!(!allowed(&rules, Action::Play, ten));
        assert!(!allowed(&rules, Action::Play, mapped));
        assert!(allowed(&rules, Action::Play, lo));
        assert!(Rule::parse(true, "10.0.0.0/33").is_err());
        assert!(Rule::parse(true, "nonsense").is_err());
        assert!(allowed(
            &[Rule::parse(true, "::1/128").unwrap()],
            Action::Play,
            "::1".parse().unwrap()
        ));
    }

    #[test]
    fn the_hub_key_drops_the_query() {
        assert_eq!(stream_key("live", "key?token=x"), "live/key");
    }
}
