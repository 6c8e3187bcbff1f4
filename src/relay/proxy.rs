//! `relay --listen ADDR DST`: a decoding proxy between encoders and a
//! server. Each encoder's connection gets its own upstream connection; the
//! two handshakes are each hop's own, and then every message is forwarded
//! both ways at the chunk layer, body and header (chunk stream, timestamp,
//! type, message stream id) unchanged, re-chunked at the size each side
//! was told: a Set Chunk Size from one side is applied to what the proxy
//! sends on to the other (RTMP 1.0 §5.4.1). Acknowledgements and ping
//! answers are each hop's own business and are not forwarded.
//!
//! The encoder's side is followed by [`Strict`]: its records go to the
//! caller (the live decode, with `dump`'s renderer) and to the diagnoser,
//! whose findings are reported when the connection ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::analyze::{CloseKind, Record};
use crate::capture::Timestamp;
use crate::capture::tcp::Dir;
use crate::diag::Finding;
use crate::net::RtmpUrl;
use crate::net::tls::TlsOptions;
use crate::proto::chunk::{ChunkEvent, RawMessage, ReserveBudget};
use crate::proto::handshake::HandshakeConfig;
use crate::proto::message::MessageType;
use crate::proto::session::{ConnEvent, Connection};
use crate::serve::strict::Strict;

/// What the proxy reports.
#[derive(Debug)]
pub enum ProxyEvent {
    /// An encoder connected (`id` numbers connections from 0).
    Accepted {
        /// Connection number.
        id: u64,
        /// The encoder.
        peer: SocketAddr,
    },
    /// A record of the encoder's connection (both directions), for the
    /// live decode.
    Record(Box<Record>),
    /// A finding about the encoder's connection.
    Finding(Box<Finding>),
    /// The connection ended.
    Closed {
        /// Connection number.
        id: u64,
        /// The encoder.
        peer: SocketAddr,
        /// How.
        why: String,
        /// Bytes from the encoder and from the server.
        bytes: [u64; 2],
    },
}

/// Where events go.
pub type ProxySink = Arc<dyn Fn(ProxyEvent) + Send + Sync>;

/// Settings of the proxy.
#[derive(Clone)]
pub struct ProxyConfig {
    /// The server every encoder is carried to (its app and stream name are
    /// the encoder's: the commands are forwarded as sent).
    pub upstream: RtmpUrl,
    /// TLS settings for an rtmps:// upstream.
    pub tls: TlsOptions,
    /// Limit for connecting and handshakes.
    pub timeout: Duration,
    /// Show stream keys in full in findings.
    pub reveal_keys: bool,
    /// Keep each encoder's media in this FLV file (suffixed, never
    /// overwritten).
    pub record: Option<std::path::PathBuf>,
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

fn fill(buf: &mut [u8]) {
    let mut x = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64)
        | 1;
    for b in buf {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = (x >> 24) as u8;
    }
}

/// Accepts encoders on `listener` until `stop`.
pub async fn run(
    listener: TcpListener,
    cfg: ProxyConfig,
    sink: ProxySink,
    mut stop: watch::Receiver<bool>,
) {
    let ids = AtomicU64::new(0);
    let budget = ReserveBudget::new(32 << 20);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => {
                let Ok((tcp, peer)) = r else { continue };
                let id = ids.fetch_add(1, Ordering::Relaxed);
                (sink)(ProxyEvent::Accepted { id, peer });
                let (cfg, sink, budget, stop) = (cfg.clone(), sink.clone(), budget.clone(), stop.clone());
                conns.spawn(async move { one(tcp, peer, id, cfg, sink, budget, stop).await });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    while conns.join_next().await.is_some() {}
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn upstream(cfg: &ProxyConfig) -> Result<Box<dyn Io>, String> {
    let u = &cfg.upstream;
    let addrs = crate::net::resolve(&u.host, u.port, cfg.timeout)
        .await
        .map_err(|e| format!("resolve {}: {e}", u.host))?;
    let tcp = crate::net::tcp_connect(&addrs, cfg.timeout)
        .await
        .map_err(|e| format!("connect to {}: {e}", addrs[0]))?;
    let _ = tcp.set_nodelay(true);
    if u.tls {
        let (s, _) = crate::net::tls::connect(tcp, &u.host, &cfg.tls, cfg.timeout)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        Ok(Box::new(s))
    } else {
        Ok(Box::new(tcp))
    }
}

/// Forwards one message to the other hop: a Set Chunk Size is applied
/// there (and so announced), acknowledgements and pings stay on their hop.
fn forward(to: &mut Connection, m: &RawMessage) {
    let t = m.header.msg_type;
    if t == MessageType::ACKNOWLEDGEMENT {
        return;
    }
    if t == MessageType::USER_CONTROL
        && m.payload.len() >= 2
        && matches!(m.payload[..2], [0, 6] | [0, 7])
    {
        return;
    }
    if t == MessageType::SET_CHUNK_SIZE && m.payload.len() >= 4 {
        let n = u32::from_be_bytes([m.payload[0], m.payload[1], m.payload[2], m.payload[3]]);
        to.set_chunk_size(n & 0x7FFF_FFFF);
        return;
    }
    to.send_raw(m.csid, &m.header, &m.payload);
}

#[allow(clippy::too_many_arguments)]
async fn one(
    tcp: TcpStream,
    peer: SocketAddr,
    id: u64,
    cfg: ProxyConfig,
    sink: ProxySink,
    budget: Arc<ReserveBudget>,
    mut stop: watch::Receiver<bool>,
) {
    let local = tcp.local_addr().unwrap_or(peer);
    let _ = tcp.set_nodelay(true);
    let tap_sink = sink.clone();
    let mut strict = Strict::new(peer, local, id, budget, cfg.reveal_keys).with_tap(Box::new(
        move |r: &Record| tap_sink(ProxyEvent::Record(Box::new(r.clone()))),
    ));
    let mut bytes = [0u64; 2];
    let (why, how) = match upstream(&cfg).await {
        Err(e) => (
            format!("upstream unreachable: {e}"),
            (Dir::S2c, CloseKind::Fin),
        ),
        Ok(up) => {
            let epoch = Instant::now();
            let mut down =
                Connection::server(HandshakeConfig::server(), 0, &mut fill, None, 16 << 20);
            let mut upc = Connection::client(HandshakeConfig::client(), 0, &mut fill);
            let mut record = match &cfg.record {
                Some(p) => match crate::serve::record::Recorder::create_path(p) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        sink(ProxyEvent::Closed {
                            id,
                            peer,
                            why: format!("not recorded: {}: {e}", p.display()),
                            bytes: [0, 0],
                        });
                        None
                    }
                },
                None => None,
            };
            let r = pump(
                tcp,
                up,
                &mut down,
                &mut upc,
                &mut strict,
                &mut bytes,
                epoch,
                &mut stop,
                &mut record,
            )
            .await;
            if let Some(r) = record {
                r.finish();
            }
            r
        }
    };
    for f in strict.end(how.0, how.1, wall_clock()) {
        sink(ProxyEvent::Finding(Box::new(f)));
    }
    sink(ProxyEvent::Closed {
        id,
        peer,
        why,
        bytes,
    });
}

#[allow(clippy::too_many_arguments)]
async fn pump(
    enc: TcpStream,
    up: Box<dyn Io>,
    down: &mut Connection,
    upc: &mut Connection,
    strict: &mut Strict,
    bytes: &mut [u64; 2],
    epoch: Instant,
    stop: &mut watch::Receiver<bool>,
    record: &mut Option<crate::serve::record::Recorder>,
) -> (String, (Dir, CloseKind)) {
    let (mut er, mut ew) = enc.into_split();
    let (mut ur, mut uw) = tokio::io::split(up);
    let mut ebuf = BytesMut::with_capacity(64 * 1024);
    let mut ubuf = BytesMut::with_capacity(64 * 1024);
    let mut to_enc = Bytes::new();
    let mut to_up = Bytes::new();
    // Messages from the encoder wait until the upstream handshake is done
    // (chunks must not go out before C2).
    let mut waiting: Vec<RawMessage> = Vec::new();
    let fin = |why: &str, d: Dir| (why.to_string(), (d, CloseKind::Fin));
    loop {
        if to_enc.is_empty()
            && let Some(b) = down.poll_transmit()
        {
            strict.sent(&b, wall_clock());
            to_enc = b;
        }
        if to_up.is_empty()
            && let Some(b) = upc.poll_transmit()
        {
            to_up = b;
        }
        tokio::select! {
            r = er.read_buf(&mut ebuf) => match r {
                Ok(0) => {
                    // What the encoder sent before it closed goes on first.
                    let _ = uw.write_all(&to_up).await;
                    while let Some(b) = upc.poll_transmit() {
                        let _ = uw.write_all(&b).await;
                    }
                    let _ = uw.flush().await;
                    let _ = uw.shutdown().await;
                    return fin("closed by the encoder", Dir::C2s);
                }
                Err(e) => return (format!("encoder: {e}"), (Dir::C2s, CloseKind::Rst)),
                Ok(n) => {
                    bytes[0] += n as u64;
                    strict.received(&ebuf, wall_clock());
                    down.handle_input(&ebuf);
                    ebuf.clear();
                    loop {
                        match down.poll(epoch.elapsed().as_millis() as u32) {
                            Ok(Some(ConnEvent::Chunk(ChunkEvent::Message(m)))) => {
                                if let Some(r) = record.as_mut() {
                                    let t = m.header.msg_type;
                                    let body = crate::serve::hub::strip_set_data_frame(&m.payload);
                                    r.write_message(t, m.header.timestamp, &body);
                                }
                                if upc.is_handshaken() { forward(upc, &m) } else { waiting.push(m) }
                            }
                            Ok(Some(_)) => {}
                            Ok(None) => break,
                            Err(e) => return fin(&format!("the encoder broke the chunk stream: {e}"), Dir::S2c),
                        }
                    }
                }
            },
            r = ur.read_buf(&mut ubuf) => match r {
                Ok(0) => {
                    let _ = ew.write_all(&to_enc).await;
                    while let Some(b) = down.poll_transmit() {
                        strict.sent(&b, wall_clock());
                        let _ = ew.write_all(&b).await;
                    }
                    let _ = ew.shutdown().await;
                    return fin("closed by the server", Dir::S2c);
                }
                Err(e) => return (format!("server: {e}"), (Dir::S2c, CloseKind::Rst)),
                Ok(n) => {
                    bytes[1] += n as u64;
                    upc.handle_input(&ubuf);
                    ubuf.clear();
                    loop {
                        match upc.poll(epoch.elapsed().as_millis() as u32) {
                            Ok(Some(ConnEvent::Handshake(_))) => {
                                for m in waiting.drain(..) {
                                    forward(upc, &m);
                                }
                            }
                            Ok(Some(ConnEvent::Chunk(ChunkEvent::Message(m)))) => forward(down, &m),
                            Ok(Some(_)) => {}
                            Ok(None) => break,
                            Err(e) => return fin(&format!("the server broke the chunk stream: {e}"), Dir::S2c),
                        }
                    }
                }
            },
            w = ew.write(&to_enc), if !to_enc.is_empty() => match w {
                Ok(n) if n > 0 => to_enc.advance(n),
                _ => return (String::from("the encoder went away"), (Dir::C2s, CloseKind::Rst)),
            },
            w = uw.write(&to_up), if !to_up.is_empty() => match w {
                Ok(n) if n > 0 => { to_up.advance(n); let _ = uw.flush().await; }
                _ => return (String::from("the server went away"), (Dir::S2c, CloseKind::Rst)),
            },
            _ = stop.changed() => return fin("proxy stopping", Dir::S2c),
        }
    }
}
