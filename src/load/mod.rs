//! `load`: many RTMP players and publishers from one process, each running
//! the whole client flow of [`ClientSession`] (handshake, connect,
//! createStream, play/publish, acknowledgements, deleteStream on the way
//! out) as one task of a single-threaded tokio runtime. Publishers share one
//! FLV ([`SharedFlv`], read once) and pace it by its timestamps; players
//! count frames by the one [`MediaCounter`] rule and drop the bodies at once.
//! With a delay probe, publishers stamp their send time on a message every
//! 100 ms and players measure arrival − send on the same clock.
//!
//! Order: players connect first (at the ramp rate) and wait for their
//! stream; publishers start once every player is playing or has failed, so
//! every player sees its stream from the first frame.

pub mod media;
pub mod report;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::net::{Phase, RtmpUrl};
use crate::proto::media::{MediaCounter, MediaUnit};
use crate::proto::message::{Message, UserControl};
use crate::proto::session::{ClientSession, Event, Goal, SessionConfig, SessionError};

pub use media::{Probe, SharedFlv};
pub use report::{FailIf, Failure, FailureClass, Metrics, Progress, Summary};

/// Interval between delay probes.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// File descriptors kept for everything but the connections.
pub const SPARE_FDS: u64 = 32;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// One URL per stream (index `i`).
    pub streams: Vec<RtmpUrl>,
    /// Players (player `k` plays stream `k mod streams`).
    pub players: u64,
    /// Publishers (publisher `k` publishes stream `k`).
    pub publishers: u64,
    /// The FLV publishers send.
    pub flv: Option<Arc<SharedFlv>>,
    /// Connections opened per second.
    pub ramp: f64,
    /// How long the run lasts (from its start); publishers repeat the FLV
    /// until then. `None`: publishers send it once and the run ends when
    /// they are done and their players saw the end (or after `timeout`);
    /// players-only runs go on until interrupted.
    pub duration: Option<Duration>,
    /// The delay probe, if any.
    pub probe: Option<Probe>,
    /// Limit for each connection phase.
    pub timeout: Duration,
    /// Our chunk size.
    pub chunk_size: u32,
    /// Players' Set Buffer Length (ms).
    pub buffer_ms: u32,
    /// Players pause this long after each read, so that what arrives in
    /// between is read (and acknowledged) at once: fewer wakeups and
    /// syscalls per player, at the cost of up to this much added delay.
    /// Zero: read as data arrives.
    pub read_every: Duration,
    /// Local addresses to connect from, used in turn (more source ports
    /// than one address has); empty: the system's choice.
    pub bind: Vec<std::net::IpAddr>,
    /// Show keys in reports.
    pub reveal_keys: bool,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Name resolution failed.
    #[error("resolve: cannot resolve '{host}': {error}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        error: std::io::Error,
    },
    /// Not enough file descriptors.
    #[error(
        "{needed} connections need about {fds} file descriptors, but the limit (ulimit -n) is {soft} and its hard limit {hard}: raise it first, e.g. `ulimit -n {fds}` in this shell (as root, or after raising the hard limit: `nofile` in /etc/security/limits.conf, LimitNOFILE= for a systemd unit)"
    )]
    Fds {
        /// Connections asked for.
        needed: u64,
        /// Descriptors they need.
        fds: u64,
        /// Soft limit.
        soft: u64,
        /// Hard limit.
        hard: u64,
    },
}

/// Checks (and, up to the hard limit, raises) the open-files limit for
/// `connections` sockets. Returns the soft limit in force.
pub fn check_fds(connections: u64) -> Result<u64, LoadError> {
    let fds = connections + SPARE_FDS;
    let Ok((soft, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else {
        return Ok(u64::MAX);
    };
    if fds <= soft {
        return Ok(soft);
    }
    if fds <= hard && rlimit::setrlimit(rlimit::Resource::NOFILE, fds, hard).is_ok() {
        return Ok(fds);
    }
    Err(LoadError::Fds {
        needed: connections,
        fds,
        soft,
        hard,
    })
}

/// The run's shared state.
struct Ctx {
    cfg: LoadConfig,
    addrs: Vec<Vec<SocketAddr>>,
    epoch: Instant,
    metrics: RefCell<Metrics>,
    stop: watch::Receiver<bool>,
    /// Handshake randomness (no cryptographic quality needed).
    seed: std::cell::Cell<u64>,
    /// Connections opened with `--bind` so far (picks the next address).
    bound: std::cell::Cell<usize>,
}

impl Ctx {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn random(&self, buf: &mut [u8]) {
        let mut x = self.seed.get();
        for b in buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
        self.seed.set(x);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Player,
    Publisher,
}

/// Runs a load. `interrupt` resolves on Ctrl-C; `progress` is called about
/// every second with a snapshot. Returns the summary once every connection
/// is closed.
pub async fn run(
    cfg: LoadConfig,
    interrupt: impl std::future::Future<Output = ()>,
    mut progress: impl FnMut(&Progress),
) -> Result<Summary, LoadError> {
    let epoch = Instant::now();
    let mut addrs = Vec::new();
    for u in &cfg.streams {
        let a = crate::net::resolve(&u.host, u.port, cfg.timeout)
            .await
            .map_err(|error| LoadError::Resolve {
                host: u.host.clone(),
                error,
            })?;
        addrs.push(a);
    }
    let names = cfg
        .streams
        .iter()
        .map(|u| u.shown(cfg.reveal_keys))
        .collect();
    let (stop_tx, stop_rx) = watch::channel(false);
    let seed = epoch.elapsed().as_nanos() as u64 ^ (u64::from(std::process::id()) << 32) | 1;
    let ctx = Rc::new(Ctx {
        addrs,
        epoch,
        metrics: RefCell::new(Metrics::new(names)),
        stop: stop_rx,
        seed: std::cell::Cell::new(seed),
        bound: std::cell::Cell::new(0),
        cfg,
    });
    let local = tokio::task::LocalSet::new();
    let interrupted = local
        .run_until(drive(ctx.clone(), stop_tx, interrupt, &mut progress))
        .await;
    let elapsed = epoch.elapsed().as_secs_f64() * 1000.0;
    let m = ctx.metrics.borrow();
    let first = ctx
        .cfg
        .streams
        .first()
        .map(|u| u.shown(ctx.cfg.reveal_keys));
    Ok(Summary::new(
        &m,
        first.unwrap_or_default(),
        (ctx.cfg.players, ctx.cfg.publishers),
        elapsed,
        interrupted,
    ))
}

/// Opens the connections, waits for the end, stops everything; true when
/// interrupted.
async fn drive(
    ctx: Rc<Ctx>,
    stop_tx: watch::Sender<bool>,
    interrupt: impl std::future::Future<Output = ()>,
    progress: &mut impl FnMut(&Progress),
) -> bool {
    tokio::pin!(interrupt);
    let cfg = &ctx.cfg;
    let start = tokio::time::Instant::now();
    let deadline = cfg.duration.map(|d| start + d);
    let gap = Duration::from_secs_f64(1.0 / cfg.ramp.max(0.001));
    let mut tasks = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut prev: Option<(f64, u64)> = Some((0.0, 0));
    let mut report = |ctx: &Ctx, prev: &mut Option<(f64, u64)>| {
        let m = ctx.metrics.borrow();
        let t = ctx.epoch.elapsed().as_secs_f64() * 1000.0;
        progress(&m.progress(t, *prev));
        *prev = Some((t, m.bytes_in));
    };
    let streams = cfg.streams.len().max(1) as u64;
    let plan: Vec<(Role, usize)> = (0..cfg.players)
        .map(|k| (Role::Player, (k % streams) as usize))
        .chain((0..cfg.publishers).map(|k| (Role::Publisher, k as usize)))
        .collect();
    let mut next_open = start;
    let mut interrupted = false;
    let mut publishers_started = false;
    let mut i = 0;
    // The run's end once publishers sent their FLV (no --duration).
    let mut wind_down: Option<tokio::time::Instant> = None;
    loop {
        // Wait for the next thing to do.
        let want_open = i < plan.len();
        let gate = want_open && plan[i].0 == Role::Publisher && !publishers_started && {
            let m = ctx.metrics.borrow();
            m.players_ok + m.players_failed < cfg.players
        };
        let open_at = if want_open && !gate {
            Some(next_open)
        } else {
            None
        };
        let end_at = [deadline, wind_down].into_iter().flatten().min();
        let wake = tokio::select! {
            biased;
            _ = &mut interrupt => { interrupted = true; break; }
            _ = tick.tick() => 0,
            _ = tokio::time::sleep_until(open_at.unwrap_or(start)), if open_at.is_some() => 1,
            _ = tokio::time::sleep_until(end_at.unwrap_or(start)), if end_at.is_some() => 2,
            // Re-check the publisher gate and the natural end often.
            _ = tokio::time::sleep(Duration::from_millis(20)), if (gate || i == plan.len()) => 3,
        };
        match wake {
            0 => report(&ctx, &mut prev),
            1 => {
                let (role, s) = plan[i];
                if role == Role::Publisher {
                    publishers_started = true;
                }
                i += 1;
                next_open = (next_open + gap).max(tokio::time::Instant::now() - gap * 4);
                let c = ctx.clone();
                ctx.metrics.borrow_mut().opened += 1;
                tasks.push(tokio::task::spawn_local(async move {
                    connection(c, role, s).await;
                }));
            }
            2 => break,
            _ => {
                if i == plan.len() {
                    // Every connection ended (failed, or players saw their
                    // stream end): nothing is left to wait for.
                    let m = ctx.metrics.borrow();
                    if m.connecting + m.playing + m.publishing == 0 {
                        break;
                    }
                }
                if want_done(&ctx, i, &plan) && wind_down.is_none() {
                    // Publishers are done: give players up to `timeout` to
                    // drain (they end by themselves on the unpublish notify).
                    wind_down = Some(tokio::time::Instant::now() + cfg.timeout);
                }
                if wind_down.is_some() && cfg.duration.is_none() {
                    let m = ctx.metrics.borrow();
                    if m.playing == 0 && m.connecting == 0 {
                        break;
                    }
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    // Every connection closes (deleteStream) within a bounded time.
    let limit = tokio::time::Instant::now() + cfg.timeout + Duration::from_secs(1);
    for t in tasks {
        let _ = tokio::time::timeout_at(limit, t).await;
    }
    report(&ctx, &mut prev);
    interrupted
}

/// True when every connection is opened, there were publishers, and all of
/// them are done (or failed).
fn want_done(ctx: &Ctx, i: usize, plan: &[(Role, usize)]) -> bool {
    if i < plan.len() || ctx.cfg.publishers == 0 || ctx.cfg.duration.is_some() {
        return false;
    }
    let m = ctx.metrics.borrow();
    m.publishers_done + m.publishers_failed >= ctx.cfg.publishers
}

/// A connection's socket and session.
struct Conn {
    tcp: TcpStream,
    session: ClientSession,
    /// Receive buffer size offered to the next read (grows on busy streams).
    want: usize,
    /// Re-arm TCP_QUICKACK after every read (while setting up: without it
    /// the server's delayed ACKs add ~40 ms to the command exchange).
    quickack: bool,
}

const MIN_READ: usize = 2048;
const MAX_READ: usize = 64 * 1024;

enum ConnErr {
    Timeout,
    Closed,
    Io(std::io::Error),
    Session(SessionError),
}

impl ConnErr {
    fn failure(self, phase: Phase) -> Failure {
        let (class, reason) = match self {
            ConnErr::Timeout => (FailureClass::Network, "no answer in time".to_owned()),
            ConnErr::Closed => (
                FailureClass::Network,
                "the server closed the connection".to_owned(),
            ),
            ConnErr::Io(e) => (FailureClass::Network, io_reason(&e)),
            ConnErr::Session(e) => (
                if phase == Phase::Handshake {
                    FailureClass::Handshake
                } else {
                    FailureClass::Protocol
                },
                crate::text::sanitize(&e.to_string()).into_owned(),
            ),
        };
        let class = if phase == Phase::Handshake && class == FailureClass::Network {
            FailureClass::Handshake
        } else {
            class
        };
        Failure {
            phase,
            class,
            reason,
        }
    }
}

fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset".into(),
        K::ConnectionAborted => "connection aborted".into(),
        K::BrokenPipe => "broken pipe (the server closed the connection)".into(),
        K::TimedOut => "timed out".into(),
        K::AddrNotAvailable => "no local port free (address not available)".into(),
        _ => crate::text::sanitize(&e.to_string()).into_owned(),
    }
}

impl Conn {
    async fn flush(&mut self, ctx: &Ctx) -> Result<(), ConnErr> {
        while let Some(b) = self.session.poll_transmit() {
            ctx.metrics.borrow_mut().bytes_out += b.len() as u64;
            match tokio::time::timeout(ctx.cfg.timeout, self.tcp.write_all(&b)).await {
                Err(_) => return Err(ConnErr::Timeout),
                Ok(Err(e)) => return Err(ConnErr::Io(e)),
                Ok(Ok(())) => {}
            }
        }
        Ok(())
    }

    /// Reads once into the session (cancel safe). When the bytes read hold
    /// a fault after complete messages, those messages' events come first
    /// (`Ok`): the error is returned by the next call.
    async fn read(&mut self, ctx: &Ctx) -> Result<(), ConnErr> {
        if let Some(e) = self.session.error() {
            return Err(ConnErr::Session(e.clone()));
        }
        let want = self.want;
        let n = self
            .tcp
            .read_buf(self.session.receive_buffer(want))
            .await
            .map_err(ConnErr::Io)?;
        if n == 0 {
            return Err(ConnErr::Closed);
        }
        if self.quickack {
            crate::net::arm_quickack(&self.tcp);
        }
        // Busy streams get bigger reads; idle ones keep small buffers.
        self.want = if n >= want {
            (want * 2).min(MAX_READ)
        } else {
            MIN_READ.max(want / 2)
        };
        ctx.metrics.borrow_mut().bytes_in += n as u64;
        match self.session.handle_received(n, ctx.now()) {
            Err(e) if !self.session.has_events() => Err(ConnErr::Session(e)),
            _ => Ok(()),
        }
    }
}

/// Where a connection is, for the counters.
enum Counted {
    Connecting,
    Active(Role),
    Done,
}

fn set_state(ctx: &Ctx, from: &mut Counted, to: Counted) {
    let mut m = ctx.metrics.borrow_mut();
    match from {
        Counted::Connecting => m.connecting -= 1,
        Counted::Active(Role::Player) => m.playing -= 1,
        Counted::Active(Role::Publisher) => m.publishing -= 1,
        Counted::Done => {}
    }
    match &to {
        Counted::Connecting => m.connecting += 1,
        Counted::Active(Role::Player) => {
            m.playing += 1;
            m.players_ok += 1;
        }
        Counted::Active(Role::Publisher) => {
            m.publishing += 1;
            m.publishers_ok += 1;
        }
        Counted::Done => {}
    }
    *from = to;
}

/// One connection, start to end.
async fn connection(ctx: Rc<Ctx>, role: Role, stream: usize) {
    let mut state = Counted::Done;
    set_state(&ctx, &mut state, Counted::Connecting);
    let started = Instant::now();
    let mut frames = MediaCounter::default();
    let mut ended = false;
    let r = run_connection(
        &ctx,
        role,
        stream,
        started,
        &mut state,
        &mut frames,
        &mut ended,
    )
    .await;
    let was_active = matches!(state, Counted::Active(_));
    set_state(&ctx, &mut state, Counted::Done);
    let mut m = ctx.metrics.borrow_mut();
    match r {
        Ok(()) => m.closed += 1,
        Err(f) => {
            m.fail(&f);
            match role {
                Role::Player => m.players_failed += 1,
                Role::Publisher => m.publishers_failed += 1,
            }
        }
    }
    match role {
        Role::Player if was_active => m.player_done(stream, &frames, ended),
        Role::Publisher if was_active => m.publisher_done(stream, &frames),
        _ => {}
    }
}

async fn run_connection(
    ctx: &Ctx,
    role: Role,
    stream: usize,
    started: Instant,
    state: &mut Counted,
    frames: &mut MediaCounter,
    ended: &mut bool,
) -> Result<(), Failure> {
    let cfg = &ctx.cfg;
    let url = &cfg.streams[stream];
    let mut stop = ctx.stop.clone();
    if *stop.borrow() {
        return Ok(());
    }
    let addrs = &ctx.addrs[stream];
    let tcp = if cfg.bind.is_empty() {
        crate::net::tcp_connect(addrs, cfg.timeout).await
    } else {
        let n = ctx.bound.get();
        ctx.bound.set(n.wrapping_add(1));
        connect_from(cfg.bind[n % cfg.bind.len()], addrs, cfg.timeout).await
    }
    .map_err(|e| ConnErr::Io(e).failure(Phase::TcpConnect))?;
    let goal = match role {
        Role::Player => Goal::Play {
            stream: url.stream_with_query(),
            start: -2.0,
            buffer_ms: cfg.buffer_ms,
        },
        Role::Publisher => Goal::Publish {
            stream: url.stream_with_query(),
            kind: "live".into(),
        },
    };
    let mut config = SessionConfig::new(url.app(), &url.tc_url(), goal);
    config.chunk_size = cfg.chunk_size;
    let session = ClientSession::new(config, ctx.now(), &mut |b: &mut [u8]| ctx.random(b));
    let mut c = Conn {
        tcp,
        session,
        want: MIN_READ,
        quickack: true,
    };
    crate::net::arm_quickack(&c.tcp);
    // Phases up to playing/publishing.
    let mut phase = Phase::Handshake;
    let start_phase = if role == Role::Player {
        Phase::Play
    } else {
        Phase::Publish
    };
    let mut deadline = tokio::time::Instant::now() + cfg.timeout;
    'setup: loop {
        c.flush(ctx).await.map_err(|e| e.failure(phase))?;
        while let Some(ev) = c.session.poll_event() {
            match ev.event {
                Event::Handshake(_) => {
                    phase = Phase::Connect;
                    deadline = tokio::time::Instant::now() + cfg.timeout;
                }
                Event::Reply(r) if r.to == "connect" && r.ok => {
                    phase = Phase::CreateStream;
                    deadline = tokio::time::Instant::now() + cfg.timeout;
                }
                Event::Reply(r) if !r.ok => {
                    let code = r.info("code").unwrap_or_default().into_owned();
                    return Err(refused(phase, &code));
                }
                Event::StreamCreated(_) => {
                    phase = start_phase;
                    deadline = tokio::time::Instant::now() + cfg.timeout;
                }
                Event::Status(s) if s.is_error() && phase == start_phase => {
                    return Err(refused(phase, &s.code));
                }
                Event::Started(_) => break 'setup,
                Event::Malformed {
                    msg_type: 17 | 20, ..
                } => {
                    return Err(Failure {
                        phase,
                        class: FailureClass::Protocol,
                        reason: "a malformed command message".into(),
                    });
                }
                _ => {}
            }
        }
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            _ = tokio::time::sleep_until(deadline) => return Err(ConnErr::Timeout.failure(phase)),
            r = c.read(ctx) => r.map_err(|e| e.failure(phase))?,
        }
    }
    Metrics::record(
        &mut ctx.metrics.borrow_mut().connect_us,
        started.elapsed().as_micros() as u64,
    );
    c.quickack = false;
    set_state(ctx, state, Counted::Active(role));
    let r = match role {
        Role::Player => play(ctx, &mut c, &mut stop, started, frames, ended).await,
        Role::Publisher => publish(ctx, &mut c, &mut stop, frames).await,
    };
    r.map_err(|e| e.failure(start_phase))?;
    // Clean end: deleteStream (FCUnpublish first for publishers), then FIN.
    c.session.close();
    let _ = c.flush(ctx).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), c.tcp.shutdown()).await;
    Ok(())
}

/// Connects from `local` (any port) to the first address of its family.
async fn connect_from(
    local: std::net::IpAddr,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    let Some(addr) = addrs.iter().find(|a| a.is_ipv4() == local.is_ipv4()) else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            format!("--bind {local}: the server has no address of that family"),
        ));
    };
    let sock = if local.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    sock.bind(SocketAddr::new(local, 0))?;
    let s = tokio::time::timeout(timeout, sock.connect(*addr))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "TCP connect timed out")
        })??;
    s.set_nodelay(true)?;
    Ok(s)
}

fn refused(phase: Phase, code: &str) -> Failure {
    let code = crate::text::sanitize(code);
    let code: String = code.chars().take(80).collect();
    Failure {
        phase,
        class: FailureClass::Refused,
        reason: if code.is_empty() {
            "refused".into()
        } else {
            format!("refused: {code}")
        },
    }
}

/// A player: counts frames, measures first frame and delay, notes the end
/// of the stream, until stopped.
async fn play(
    ctx: &Ctx,
    c: &mut Conn,
    stop: &mut watch::Receiver<bool>,
    started: Instant,
    frames: &mut MediaCounter,
    ended: &mut bool,
) -> Result<(), ConnErr> {
    let mut first = true;
    loop {
        while let Some(ev) = c.session.poll_event() {
            let at = ev.at;
            let (video, body): (bool, Bytes) = match ev.event {
                Event::Video { payload, .. } => (true, payload),
                Event::Audio { payload, .. } => (false, payload),
                Event::Data { data, .. } => {
                    if let Some(sent) = Probe::of_data(&data) {
                        delay(ctx, at, sent);
                    }
                    continue;
                }
                Event::Status(s) => {
                    if s.is_error() {
                        return Err(ConnErr::Io(std::io::Error::other(format!(
                            "stopped by the server: {}",
                            crate::text::sanitize(&s.code)
                        ))));
                    }
                    if matches!(
                        s.code.as_str(),
                        "NetStream.Play.UnpublishNotify"
                            | "NetStream.Play.Stop"
                            | "NetStream.Play.Complete"
                    ) {
                        *ended = true;
                    }
                    continue;
                }
                Event::UserControl(UserControl::StreamEof(_)) => {
                    *ended = true;
                    continue;
                }
                _ => continue,
            };
            if video && let Some(sent) = Probe::of_video(&body) {
                delay(ctx, at, sent);
                continue;
            }
            let unit = frames.count(video, &body);
            let mut m = ctx.metrics.borrow_mut();
            // The same unit, counted once more for the run (no second parse).
            match unit {
                MediaUnit::VideoFrame { key } => {
                    m.frames_in.video_frames += 1;
                    m.frames_in.keyframes += u64::from(key);
                }
                MediaUnit::AudioFrame => m.frames_in.audio_frames += 1,
                MediaUnit::Unparsed => m.frames_in.unparsed += 1,
                MediaUnit::Config => {}
            }
            if first && matches!(unit, MediaUnit::VideoFrame { .. } | MediaUnit::AudioFrame) {
                first = false;
                let us = started.elapsed().as_micros() as u64;
                Metrics::record(&mut m.first_frame_us, us);
            }
        }
        c.flush(ctx).await?;
        if *ended && ctx.cfg.duration.is_none() {
            return Ok(());
        }
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            r = c.read(ctx) => r?,
        }
        if !ctx.cfg.read_every.is_zero() {
            tokio::select! {
                _ = stop.changed() => return Ok(()),
                _ = tokio::time::sleep(ctx.cfg.read_every) => {}
            }
        }
    }
}

fn delay(ctx: &Ctx, at: Duration, sent_us: u64) {
    let now = at.as_micros() as u64;
    if now >= sent_us {
        Metrics::record(&mut ctx.metrics.borrow_mut().delay_us, now - sent_us);
    }
}

/// A publisher: sends the shared FLV paced by its timestamps (repeated until
/// the run's end when it has a duration), with delay probes every 100 ms.
async fn publish(
    ctx: &Ctx,
    c: &mut Conn,
    stop: &mut watch::Receiver<bool>,
    sent: &mut MediaCounter,
) -> Result<(), ConnErr> {
    let cfg = &ctx.cfg;
    let Some(flv) = cfg.flv.clone() else {
        return Ok(());
    };
    let t0 = tokio::time::Instant::now();
    let mut next_probe = t0;
    let mut pass: u64 = 0;
    let mut k = 0usize;
    loop {
        if k == flv.items.len() {
            if cfg.duration.is_none() {
                break;
            }
            pass += 1;
            k = 0;
        }
        let item = &flv.items[k];
        let media = pass * u64::from(flv.period_ms) + u64::from(item.media_ms);
        let due = t0 + Duration::from_millis(media);
        // Wait for the tag's time, answering the server and sending probes.
        loop {
            let now = tokio::time::Instant::now();
            if let Some(p) = cfg.probe
                && now >= next_probe
            {
                let us = ctx.now().as_micros() as u64;
                let ts = (now - t0).as_millis() as u32;
                c.session.send_media(&p.message(us, flv.video_codec), ts);
                next_probe += PROBE_INTERVAL;
                if next_probe < now {
                    next_probe = now + PROBE_INTERVAL;
                }
            }
            c.flush(ctx).await?;
            while let Some(ev) = c.session.poll_event() {
                if let Event::Status(s) = ev.event
                    && s.is_error()
                {
                    return Err(ConnErr::Io(std::io::Error::other(format!(
                        "stopped by the server: {}",
                        crate::text::sanitize(&s.code)
                    ))));
                }
            }
            if now >= due {
                break;
            }
            let wake = if cfg.probe.is_some() {
                due.min(next_probe)
            } else {
                due
            };
            tokio::select! {
                _ = stop.changed() => return Ok(()),
                r = c.read(ctx) => r?,
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
        if let Message::Audio(b) | Message::Video(b) = &item.msg {
            sent.count(matches!(item.msg, Message::Video(_)), b);
        }
        c.session.send_media(&item.msg, media as u32);
        k += 1;
    }
    c.flush(ctx).await?;
    ctx.metrics.borrow_mut().publishers_done += 1;
    Ok(())
}
