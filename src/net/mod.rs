//! Tokio drivers for the sans-IO core: resolve, TCP connect (TCP_NODELAY, and
//! TCP_QUICKACK on Linux re-armed after every read), TLS (rustls) for
//! `rtmps://`, and [`Driver`], which moves bytes between a socket and a
//! [`ClientSession`] with a monotonic clock. Every step is bounded by a
//! deadline supplied by the caller; errors say which phase failed.

pub mod client;
pub mod rtmfp;
pub mod tls;
pub mod url;

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::proto::session::{ClientSession, SessionError, SessionEvent};

pub use tls::{TlsInfo, TlsOptions};
pub use url::RtmpUrl;

/// The phases of reaching a server, as named in JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Name resolution.
    Resolve,
    /// TCP three-way handshake.
    TcpConnect,
    /// TLS handshake (rtmps).
    Tls,
    /// RTMP handshake (C0+C1 sent → S2).
    Handshake,
    /// `connect` → `_result`/`_error`.
    Connect,
    /// `createStream` → `_result`.
    CreateStream,
    /// `publish` → first onStatus.
    Publish,
    /// `play` → first onStatus.
    Play,
}

impl Phase {
    /// The name used in JSON (`tcp_connect`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::TcpConnect => "tcp_connect",
            Phase::Tls => "tls",
            Phase::Handshake => "handshake",
            Phase::Connect => "connect",
            Phase::CreateStream => "create_stream",
            Phase::Publish => "publish",
            Phase::Play => "play",
        }
    }
}

/// Resolves `host:port` within `timeout` to every address (IPv6 and IPv4,
/// in the resolver's order; [`tcp_connect`] tries them in turn). IP
/// literals skip the resolver; `localhost` always includes ::1 and
/// 127.0.0.1.
pub async fn resolve(host: &str, port: u16, timeout: Duration) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if host.eq_ignore_ascii_case("localhost") {
        // Both loopbacks, whatever /etc/hosts says: a server may listen on
        // either (nginx's `listen 1935` is IPv4 only).
        return Ok(vec![
            SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), port),
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), port),
        ]);
    }
    let addrs = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "name resolution timed out"))??;
    let v: Vec<SocketAddr> = addrs.collect();
    if v.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} has no addresses"),
        ));
    }
    Ok(v)
}

/// Connects to the first address that accepts, within `timeout` overall,
/// with TCP_NODELAY set (commands go out in one segment each).
pub async fn tcp_connect(addrs: &[SocketAddr], timeout: Duration) -> io::Result<TcpStream> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
    for addr in addrs {
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Ok(Err(e)) => last = e,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("TCP connect to {addr} timed out after {timeout:?}"),
                ));
            }
        }
    }
    Err(last)
}

/// Asks the kernel to acknowledge received data at once instead of waiting
/// for the delayed-ACK timer (~40 ms). Linux clears the flag as it goes, so
/// it is re-armed after every read. A no-op elsewhere.
pub fn arm_quickack(tcp: &TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // Best effort: failing to set it only costs latency.
        let _ = socket2::SockRef::from(tcp).set_tcp_quickack(true);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = tcp;
}

/// A plain or TLS connection.
pub enum Stream {
    /// `rtmp://`.
    Plain(TcpStream),
    /// `rtmps://`.
    Tls(Box<tokio_rustls::client::TlsStream<tls::TcpUnderTls>>),
    /// `rtmps://` given back by a thread that drove it itself (the relay's
    /// steady state): the socket and rustls' state, driven here through
    /// the socket's readiness.
    TlsParts(TcpStream, Box<rustls::ClientConnection>),
}

/// A tokio socket as `Read`/`Write` for rustls (`WouldBlock` when it is
/// not ready).
struct TryIo<'a>(&'a TcpStream);

impl io::Read for TryIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl io::Write for TryIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A rustls error as an I/O error (as tokio-rustls reports it).
pub(crate) fn tls_io_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Writes every TLS record rustls holds (cancel safe: what is not written
/// stays with rustls).
async fn tls_send(tcp: &TcpStream, conn: &mut rustls::ClientConnection) -> io::Result<()> {
    while conn.wants_write() {
        tcp.writable().await?;
        match conn.write_tls(&mut TryIo(tcp)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads plaintext into `buf` (0: the server closed). Cancel safe.
async fn tls_recv(
    tcp: &TcpStream,
    conn: &mut rustls::ClientConnection,
    buf: &mut bytes::BytesMut,
) -> io::Result<usize> {
    use std::io::Read;
    let mut plain = [0u8; 16 * 1024];
    loop {
        match conn.reader().read(&mut plain) {
            Ok(n) => {
                buf.extend_from_slice(&plain[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // Closed without close_notify.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
            Err(e) => return Err(e),
        }
        tcp.readable().await?;
        match conn.read_tls(&mut TryIo(tcp)) {
            Ok(0) => return Ok(0),
            Ok(_) => {
                conn.process_new_packets().map_err(tls_io_error)?;
                // Alerts or key updates rustls has to answer.
                tls_send(tcp, conn).await?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

impl Stream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) | Stream::TlsParts(s, _) => s,
            Stream::Tls(s) => s.get_ref().0.tcp(),
        }
    }

    /// Reads into the spare capacity of `buf` (cancel safe).
    async fn read_buf(&mut self, buf: &mut bytes::BytesMut) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read_buf(buf).await,
            Stream::Tls(s) => s.read_buf(buf).await,
            Stream::TlsParts(tcp, conn) => tls_recv(tcp, conn, buf).await,
        }
    }

    /// Writes some of `buf` (at least one byte unless it is empty).
    async fn write_some(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf).await,
            Stream::Tls(s) => s.write(buf).await,
            // The records rustls holds go first; then rustls takes the
            // plaintext (sent by the next write or flush).
            Stream::TlsParts(tcp, conn) => {
                tls_send(tcp, conn).await?;
                io::Write::write(&mut conn.writer(), buf)
            }
        }
    }

    /// Pushes out what the TLS layer buffered (no-op for plain TCP).
    async fn flush_tls(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(_) => Ok(()),
            Stream::Tls(s) => s.flush().await,
            Stream::TlsParts(tcp, conn) => tls_send(tcp, conn).await,
        }
    }

    /// Closes the write side (TLS: close_notify first).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
            Stream::TlsParts(tcp, conn) => {
                conn.send_close_notify();
                tls_send(tcp, conn).await?;
                tcp.shutdown().await
            }
        }
    }
}

/// `3 s`, `500 ms`, `1.5 s`: a limit as people write it.
pub fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A peer that took no byte for `limit` with `queued` bytes still to send
/// (kind `TimedOut`).
pub(crate) fn stalled(limit: Duration, queued: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "the server stopped reading: 0 bytes accepted in {}, {queued} bytes still to send",
            human_duration(limit)
        ),
    )
}

/// Why [`Driver::next_event`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// The deadline passed with no complete answer.
    #[error("timed out")]
    Timeout,
    /// The peer closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// A socket error.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The session rejected what arrived.
    #[error("{0}")]
    Session(#[from] SessionError),
}

/// How many reads and writes [`Driver`] logs (the first ones: what stall
/// diagnosis looks at), so a long stream does not grow the log.
impl DriveError {
    /// A TLS record or alert that broke the protocol (rustls' error under
    /// the I/O error): a TLS failure (exit 6), not the network's.
    pub fn tls_fault(&self) -> bool {
        matches!(self, DriveError::Io(e)
            if e.get_ref().is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some()))
    }
}

const MAX_LOGGED_IO: usize = 4096;

/// Spare room offered to each socket read: large reads keep the syscall
/// count low on fast streams; the session's buffer is reused as it drains.
const READ_SIZE: usize = 256 * 1024;

/// A [`Driver`] taken apart ([`Driver::into_plain`]): the same session and
/// queued bytes, its socket a non-blocking std stream (or whatever
/// [`PlainDriver::with_socket`] made of it), and rustls' state when the
/// connection is `rtmps://`.
pub struct PlainDriver<S = std::net::TcpStream> {
    /// The socket (non-blocking).
    pub tcp: S,
    /// rustls' state for an `rtmps://` connection: the owner reads and
    /// writes TLS records on the socket through it.
    pub tls: Option<Box<rustls::ClientConnection>>,
    /// The session.
    pub session: ClientSession,
    /// Time zero for the session's `now`.
    pub epoch: Instant,
    /// Re-arm TCP_QUICKACK after every read.
    pub quickack: bool,
    /// As [`Driver::reads`].
    pub reads: Vec<(Duration, usize)>,
    /// As [`Driver::writes`].
    pub writes: Vec<(Duration, usize)>,
    /// Bytes of a buffer from the session not yet written.
    pub unsent: bytes::Bytes,
}

impl<S> PlainDriver<S> {
    /// The same driver over another form of its socket.
    pub fn with_socket<T>(self, f: impl FnOnce(S) -> T) -> PlainDriver<T> {
        PlainDriver {
            tcp: f(self.tcp),
            tls: self.tls,
            session: self.session,
            epoch: self.epoch,
            quickack: self.quickack,
            reads: self.reads,
            writes: self.writes,
            unsent: self.unsent,
        }
    }
}

impl PlainDriver {
    /// Back to a [`Driver`] on the current runtime.
    pub fn into_driver(self) -> io::Result<Driver> {
        let tcp = TcpStream::from_std(self.tcp)?;
        Ok(Driver {
            stream: match self.tls {
                None => Stream::Plain(tcp),
                Some(conn) => Stream::TlsParts(tcp, conn),
            },
            session: self.session,
            epoch: self.epoch,
            quickack: self.quickack,
            reads: self.reads,
            writes: self.writes,
            unsent: self.unsent,
        })
    }
}

/// Moves bytes between a [`Stream`] and a [`ClientSession`], stamping input
/// with the time since `epoch`.
pub struct Driver {
    /// The connection.
    pub stream: Stream,
    /// The session.
    pub session: ClientSession,
    /// Time zero for the session's `now`.
    pub epoch: Instant,
    /// Re-arm TCP_QUICKACK after every read.
    pub quickack: bool,
    /// When each read returned data and how much (for stall diagnosis; the
    /// first 4096).
    pub reads: Vec<(Duration, usize)>,
    /// When each write was issued and how much (the first 4096).
    pub writes: Vec<(Duration, usize)>,
    /// The part of a buffer from the session not yet written (a flush that
    /// was cancelled or stalled resumes here, so the byte stream stays whole).
    unsent: bytes::Bytes,
}

impl Driver {
    /// Wraps a connected stream and a fresh session.
    pub fn new(stream: Stream, session: ClientSession, epoch: Instant, quickack: bool) -> Driver {
        if quickack {
            arm_quickack(stream.tcp());
        }
        Driver {
            stream,
            session,
            epoch,
            quickack,
            reads: Vec::new(),
            writes: Vec::new(),
            unsent: bytes::Bytes::new(),
        }
    }

    /// Takes a driver apart, its socket as a std stream (still
    /// non-blocking) and, for TLS, rustls' state, for a synchronous loop on
    /// a thread of its own; [`PlainDriver::into_driver`] puts it back
    /// together.
    pub fn into_plain(self) -> io::Result<PlainDriver> {
        let (tcp, tls) = match self.stream {
            Stream::Plain(tcp) => (tcp, None),
            Stream::Tls(s) => {
                let (io, conn) = s.into_inner();
                (io.into_inner(), Some(Box::new(conn)))
            }
            Stream::TlsParts(tcp, conn) => (tcp, Some(conn)),
        };
        Ok(PlainDriver {
            tcp: tcp.into_std()?,
            tls,
            session: self.session,
            epoch: self.epoch,
            quickack: self.quickack,
            reads: self.reads,
            writes: self.writes,
            unsent: self.unsent,
        })
    }

    /// Time since the epoch.
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Writes everything the session has queued. Cancel safe: bytes not
    /// yet written stay queued for the next flush.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.flush_stalling(None).await
    }

    /// Bytes queued but not yet accepted by the socket.
    pub fn unsent(&self) -> usize {
        self.unsent.len()
    }

    /// Like [`Driver::flush`], but fails when the peer stops reading: when
    /// the socket accepts no byte for `stall`, the error (kind `TimedOut`)
    /// says "the server stopped reading: 0 bytes accepted in …", with how
    /// much is still queued. A slow peer that takes some bytes within each
    /// `stall` is waited for.
    pub async fn flush_within(&mut self, stall: Duration) -> io::Result<()> {
        self.flush_stalling(Some(stall)).await
    }

    async fn flush_stalling(&mut self, stall: Option<Duration>) -> io::Result<()> {
        loop {
            if self.unsent.is_empty() {
                match self.session.poll_transmit() {
                    None => {
                        // rustls buffers records: push them out now.
                        let flush = self.stream.flush_tls();
                        return match stall {
                            None => flush.await,
                            Some(limit) => tokio::time::timeout(limit, flush)
                                .await
                                .unwrap_or_else(|_| Err(stalled(limit, 0))),
                        };
                    }
                    Some(b) => {
                        if self.writes.len() < MAX_LOGGED_IO {
                            let at = self.now();
                            self.writes.push((at, b.len()));
                        }
                        self.unsent = b;
                    }
                }
            }
            let write = self.stream.write_some(&self.unsent);
            let n = match stall {
                None => write.await?,
                Some(limit) => match tokio::time::timeout(limit, write).await {
                    Ok(r) => r?,
                    Err(_) => {
                        let queued = self.unsent.len() + self.session.poll_transmit_len();
                        return Err(stalled(limit, queued));
                    }
                },
            };
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            bytes::Buf::advance(&mut self.unsent, n);
        }
    }

    /// Reads once (whatever the socket has, waiting for at least one byte)
    /// and hands it to the session; returns the number of bytes read. Cancel
    /// safe: bytes are only consumed when the read completes. Used by
    /// streaming commands that interleave sending and receiving.
    /// When the bytes read hold a fault after complete messages, those
    /// messages' events come first (`Ok`): the error is returned by the
    /// next call.
    pub async fn read_some(&mut self) -> Result<usize, DriveError> {
        if let Some(e) = self.session.error() {
            return Err(e.clone().into());
        }
        let n = self
            .stream
            .read_buf(self.session.receive_buffer(READ_SIZE))
            .await?;
        if n == 0 {
            return Err(DriveError::Closed);
        }
        let now = self.now();
        if self.quickack {
            arm_quickack(self.stream.tcp());
        }
        match self.session.handle_received(n, now) {
            Err(e) if !self.session.has_events() => Err(e.into()),
            _ => Ok(n),
        }
    }

    /// Flushes, then waits for the next session event (reading as needed)
    /// until `deadline`. When the input holds a fault, the events of what
    /// came before it come out first, then the error.
    pub async fn next_event(&mut self, deadline: Instant) -> Result<SessionEvent, DriveError> {
        loop {
            self.flush().await?;
            if let Some(ev) = self.session.poll_event() {
                return Ok(ev);
            }
            if let Some(e) = self.session.error() {
                return Err(e.clone().into());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let buf = self.session.receive_buffer(READ_SIZE);
            let n = match tokio::time::timeout(left, self.stream.read_buf(buf)).await {
                Err(_) => return Err(DriveError::Timeout),
                Ok(r) => r?,
            };
            if n == 0 {
                return Err(DriveError::Closed);
            }
            let now = self.now();
            if self.quickack {
                arm_quickack(self.stream.tcp());
            }
            if self.reads.len() < MAX_LOGGED_IO {
                self.reads.push((now, n));
            }
            // A fault is returned above once the events before it are out.
            let _ = self.session.handle_received(n, now);
        }
    }
}
