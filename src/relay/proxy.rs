//! `relay --listen ADDR DST`: a decoding proxy between encoders and a
//! server. Each encoder's connection gets its own upstream connection; the
//! two handshakes are each hop's own, and then every message is forwarded
//! both ways at the chunk layer, body and header (chunk stream, timestamp,
//! type, message stream id) unchanged, re-chunked at the size each side
//! was told: a Set Chunk Size from one side is applied to what the proxy
//! sends on to the other (RTMP 1.0 §5.4.1). Acknowledgements and ping
//! answers are each hop's own business and are not forwarded.
//!
//! The upstream URL's path, when it has one, replaces the encoder's app
//! (and tcUrl) and stream name in the commands that carry them
//! ([`Rewrite`]); without one, they go on as sent.
//!
//! The encoder's side is followed by [`Strict`]: its records go to the
//! caller (the live decode, with `dump`'s renderer) and to the diagnoser,
//! whose findings are reported as soon as nothing later can revise them
//! (the rest when the connection ends), each once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::analyze::secrets::{STREAM_COMMANDS, Secrets};
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
    Finding {
        /// The encoder.
        peer: SocketAddr,
        /// What was found.
        finding: Box<Finding>,
    },
    /// What the encoder asked for (`connect` with its app, `publish` or
    /// `play` with its stream name, redacted unless keys are revealed), and
    /// what the proxy carried upstream instead when it rewrote it.
    Session {
        /// Connection number.
        id: u64,
        /// The encoder.
        peer: SocketAddr,
        /// `connect`, `publish` or `play`.
        event: &'static str,
        /// The app (connect) or stream name the encoder sent.
        stream: String,
        /// Empty, or `carried as …` when it was rewritten.
        detail: String,
    },
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

/// What the proxy changes in the encoder's commands on their way upstream.
/// Empty: every command goes on byte for byte.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rewrite {
    /// `connect`'s `app`, and the `tcUrl` that goes with it.
    pub app: Option<(String, String)>,
    /// The stream name (with its query) of `publish`, `play`,
    /// `releaseStream`, `FCPublish` and `FCUnpublish`.
    pub stream: Option<String>,
}

impl Rewrite {
    /// From the upstream URL as given: `rtmp://host[:port]` carries the
    /// encoder's app and stream name; `…/APP` sets the app; `…/APP/STREAM`
    /// both. `has_path` says whether the URL had a path at all.
    pub fn from_url(url: &RtmpUrl, has_path: bool) -> Rewrite {
        if !has_path {
            return Rewrite::default();
        }
        Rewrite {
            app: Some((url.app().to_owned(), url.tc_url())),
            stream: url.has_stream().then(|| url.stream_with_query()),
        }
    }
}

/// What [`rewrite`] made of one message from the encoder.
struct Rewritten {
    /// The body to send upstream instead, when it changed.
    payload: Option<Bytes>,
    /// A session event to report: (event, what the encoder sent, what went upstream).
    session: Option<(&'static str, String, Option<String>)>,
}

/// Applies `rw` to a command from the encoder (RTMP 1.0 §7.2.1.1 connect's
/// `app` and `tcUrl`; §7.2.2.3/§7.2.2.6 the stream name of play and
/// publish). Anything else, and any command that does not decode, is left
/// as it is.
fn rewrite(m: &RawMessage, rw: &Rewrite) -> Rewritten {
    use crate::proto::amf0::Amf0Value;
    use crate::proto::message::Message;
    let none = Rewritten {
        payload: None,
        session: None,
    };
    let t = m.header.msg_type;
    if t != MessageType::COMMAND_AMF0 && t != MessageType::COMMAND_AMF3 {
        return none;
    }
    let Ok(Message::Command(mut c)) = Message::decode(t, m.payload.clone()) else {
        return none;
    };
    // A command the element budget cut short is passed on as sent: its
    // re-encoding would lose what was not decoded.
    if c.truncated().is_some() {
        return none;
    }
    let text = |v: Option<&Amf0Value>| match v {
        Some(Amf0Value::String(s) | Amf0Value::LongString(s)) => Some(s.clone()),
        _ => None,
    };
    let name = c.name().to_owned();
    let mut changed = None;
    let session = if name == "connect" {
        let props = match c.values.get_mut(2) {
            Some(Amf0Value::Object(p)) => Some(p),
            _ => None,
        };
        let app = props
            .as_ref()
            .and_then(|p| p.iter().find(|(k, _)| k == "app"))
            .and_then(|(_, v)| text(Some(v)))
            .unwrap_or_default();
        if let (Some((new_app, tc_url)), Some(props)) = (&rw.app, props) {
            for (k, v) in props.iter_mut() {
                match k.as_str() {
                    "app" => *v = Amf0Value::String(new_app.clone()),
                    "tcUrl" => *v = Amf0Value::String(tc_url.clone()),
                    _ => {}
                }
            }
            if *new_app != app {
                changed = Some(new_app.clone());
            }
        }
        Some(("connect", app, changed.clone()))
    } else if STREAM_COMMANDS.contains(&name.as_str()) {
        let old = text(c.values.get(3));
        if let (Some(new), Some(o)) = (&rw.stream, &old)
            && new != o
        {
            c.values[3] = Amf0Value::String(new.clone());
            changed = Some(new.clone());
        }
        match name.as_str() {
            "publish" | "play" => Some((
                if name == "play" { "play" } else { "publish" },
                old.unwrap_or_default(),
                changed.clone(),
            )),
            _ => None,
        }
    } else {
        None
    };
    let payload = (changed.is_some() || (name == "connect" && rw.app.is_some()))
        .then(|| Message::Command(c).encode());
    Rewritten { payload, session }
}

/// Settings of the proxy.
#[derive(Clone)]
pub struct ProxyConfig {
    /// The server every encoder is carried to.
    pub upstream: RtmpUrl,
    /// What changes on the way (by default nothing: the encoder's app and
    /// stream name go on as sent).
    pub rewrite: Rewrite,
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

/// Bytes that may wait for one side before the proxy stops reading the
/// other.
const QUEUE_LIMIT: usize = 4 << 20;

/// What a message held for the upstream handshake costs besides its body
/// (the decoded message and its slot), rounded up: 4 MiB of one-byte
/// messages would otherwise be some 500 MB.
const MESSAGE_OVERHEAD: usize = 160;

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

/// The message as it goes upstream (rewritten when `rw` says so), with
/// its session event reported.
fn carry(
    m: RawMessage,
    rw: &Rewrite,
    report: &mut impl FnMut(&'static str, String, Option<String>),
) -> RawMessage {
    let r = rewrite(&m, rw);
    if let Some((event, sent, carried)) = r.session {
        report(event, sent, carried);
    }
    match r.payload {
        Some(payload) => RawMessage { payload, ..m },
        None => m,
    }
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
    let reveal = cfg.reveal_keys;
    let mut secrets = Secrets::new(false);
    let mut strict =
        Strict::new(peer, local, id, budget, reveal).with_tap(Box::new(move |r: &Record| {
            let r = if reveal {
                r.clone()
            } else {
                secrets.shown(r).into_owned()
            };
            tap_sink(ProxyEvent::Record(Box::new(r)))
        }));
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
            let reveal = cfg.reveal_keys;
            let shown = |s: &str| crate::net::url::redact(s, reveal);
            let report = |event: &'static str, sent: String, carried: Option<String>| {
                // The app is not a secret; stream names are.
                let show = |s: &str| {
                    if event == "connect" {
                        s.to_owned()
                    } else {
                        shown(s)
                    }
                };
                sink(ProxyEvent::Session {
                    id,
                    peer,
                    event,
                    stream: show(&sent),
                    detail: carried
                        .map_or_else(String::new, |c| format!("carried as {}", show(&c))),
                });
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
                &cfg.rewrite,
                report,
                |fs| {
                    for f in fs {
                        sink(ProxyEvent::Finding {
                            peer,
                            finding: Box::new(f),
                        });
                    }
                },
                cfg.timeout,
            )
            .await;
            if let Some(r) = record {
                r.finish();
            }
            r
        }
    };
    for f in strict.end(how.0, how.1, wall_clock()) {
        sink(ProxyEvent::Finding {
            peer,
            finding: Box::new(f),
        });
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
    rw: &Rewrite,
    mut report: impl FnMut(&'static str, String, Option<String>),
    mut settled: impl FnMut(Vec<Finding>),
    hs_limit: Duration,
) -> (String, (Dir, CloseKind)) {
    // Findings nothing later can revise go out while the encoder goes on,
    // at most once a second (as in serve).
    let mut last_settled = Instant::now();
    // The server must complete its handshake within the limit.
    let hs_deadline = tokio::time::Instant::now() + hs_limit;
    let (mut er, mut ew) = enc.into_split();
    let (mut ur, mut uw) = tokio::io::split(up);
    let mut ebuf = BytesMut::with_capacity(64 * 1024);
    let mut ubuf = BytesMut::with_capacity(64 * 1024);
    let mut to_enc = Bytes::new();
    let mut to_up = Bytes::new();
    // Messages from the encoder wait until the upstream handshake is done
    // (chunks must not go out before C2).
    let mut waiting: Vec<RawMessage> = Vec::new();
    let mut waiting_bytes = 0usize;
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
            // Backpressure: a side is read only while what waits for the
            // other (queued, or held for the upstream handshake) is under
            // QUEUE_LIMIT, so a slow or stalled server bounds the memory.
            r = er.read_buf(&mut ebuf), if to_up.len() + upc.transmit_len() + waiting_bytes < QUEUE_LIMIT => match r {
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
                    if last_settled.elapsed() >= Duration::from_secs(1) {
                        last_settled = Instant::now();
                        let f = strict.take_settled();
                        if !f.is_empty() {
                            settled(f);
                        }
                    }
                    down.handle_input(&ebuf);
                    ebuf.clear();
                    loop {
                        match down.poll(epoch.elapsed().as_millis() as u32) {
                            Ok(Some(ConnEvent::Chunk(ChunkEvent::Message(m)))) => {
                                if let Some(r) = record.as_mut() {
                                    let t = m.header.msg_type;
                                    let body = crate::serve::hub::strip_set_data_frame(t, &m.payload);
                                    r.write_message(t, m.header.timestamp, &body);
                                }
                                let m = carry(m, rw, &mut report);
                                if upc.is_handshaken() {
                                    forward(upc, &m)
                                } else {
                                    // What a message held costs, not its
                                    // body alone (tiny messages).
                                    waiting_bytes += m.payload.len() + MESSAGE_OVERHEAD;
                                    waiting.push(m)
                                }
                            }
                            Ok(Some(_)) => {}
                            Ok(None) => break,
                            Err(e) => return fin(&format!("the encoder broke the chunk stream: {e}"), Dir::S2c),
                        }
                    }
                }
            },
            r = ur.read_buf(&mut ubuf), if to_enc.len() + down.transmit_len() < QUEUE_LIMIT => match r {
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
                                waiting_bytes = 0;
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
            _ = tokio::time::sleep_until(hs_deadline), if !upc.is_handshaken() => {
                return fin(
                    &format!(
                        "the server did not complete the RTMP handshake in {}",
                        crate::net::human_duration(hs_limit)
                    ),
                    Dir::S2c,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::amf0::Amf0Value as V;
    use crate::proto::chunk::MessageHeader;
    use crate::proto::message::{Command, Message};

    fn raw(c: Command) -> RawMessage {
        RawMessage {
            csid: 3,
            header: MessageHeader {
                timestamp: 0,
                msg_type: Message::Command(c.clone()).msg_type(),
                stream_id: 0,
            },
            payload: Message::Command(c).encode(),
            offset: 0,
            fmt: 0,
            chunks: 1,
            extended_timestamp: false,
            unknown: Default::default(),
        }
    }

    fn connect(app: &str, tc: &str) -> Command {
        Command::new(
            "connect",
            1.0,
            V::Object(vec![
                ("app".into(), V::String(app.into())),
                ("flashVer".into(), V::String("FMLE/3.0".into())),
                ("tcUrl".into(), V::String(tc.into())),
            ]),
            vec![],
        )
    }

    fn decoded(p: &Bytes) -> Command {
        match Message::decode(MessageType::COMMAND_AMF0, p.clone()).unwrap() {
            Message::Command(c) => c,
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn the_upstream_url_decides_what_is_rewritten() {
        let url = |s: &str| RtmpUrl::parse(s, None, None).unwrap();
        assert_eq!(
            Rewrite::from_url(&url("rtmp://h/_"), false),
            Rewrite::default()
        );
        let app = Rewrite::from_url(&url("rtmp://h:1936/live"), true);
        assert_eq!(app.app, Some(("live".into(), "rtmp://h:1936/live".into())));
        assert_eq!(app.stream, None);
        let both = Rewrite::from_url(&url("rtmp://h/live/cam?k=v"), true);
        assert_eq!(both.stream.as_deref(), Some("cam?k=v"));
        // A query on the app alone names no stream.
        let q = Rewrite::from_url(&url("rtmp://h/live?token=t"), true);
        assert_eq!(q.stream, None);
    }

    #[test]
    fn without_a_rewrite_commands_go_on_byte_for_byte() {
        let rw = Rewrite::default();
        let m = raw(connect("other", "rtmp://proxy:1935/other"));
        let r = rewrite(&m, &rw);
        assert_eq!(r.payload, None);
        assert_eq!(r.session, Some(("connect", "other".into(), None)));
        let p = raw(Command::new(
            "publish",
            5.0,
            V::Null,
            vec![V::String("key?x=1".into()), V::String("live".into())],
        ));
        let r = rewrite(&p, &rw);
        assert_eq!(r.payload, None);
        assert_eq!(r.session, Some(("publish", "key?x=1".into(), None)));
    }

    #[test]
    fn a_rewrite_replaces_app_tcurl_and_stream_and_keeps_the_rest() {
        let rw = Rewrite {
            app: Some(("live".into(), "rtmp://up:1935/live".into())),
            stream: Some("renamed".into()),
        };
        let r = rewrite(&raw(connect("other", "rtmp://proxy:1935/other")), &rw);
        let c = decoded(r.payload.as_ref().unwrap());
        let o = c.command_object().unwrap();
        assert_eq!(o.get("app"), Some(&V::String("live".into())));
        assert_eq!(
            o.get("tcUrl"),
            Some(&V::String("rtmp://up:1935/live".into()))
        );
        assert_eq!(o.get("flashVer"), Some(&V::String("FMLE/3.0".into())));
        assert_eq!(
            r.session,
            Some(("connect", "other".into(), Some("live".into())))
        );
        for name in [
            "releaseStream",
            "FCPublish",
            "publish",
            "play",
            "FCUnpublish",
        ] {
            let r = rewrite(
                &raw(Command::new(
                    name,
                    5.0,
                    V::Null,
                    vec![V::String("key".into()), V::String("live".into())],
                )),
                &rw,
            );
            let c = decoded(r.payload.as_ref().unwrap());
            assert_eq!(c.name(), name);
            assert_eq!(c.transaction_id(), Some(5.0));
            assert_eq!(
                c.args(),
                &[V::String("renamed".into()), V::String("live".into())]
            );
        }
        // The AMF3 command form (type 17, a format byte first), as Flash
        // clients send it: rewritten, and still type 17 with its format byte.
        let mut c3 = Command::new("publish", 5.0, V::Null, vec![V::String("key".into())]);
        c3.encoding = crate::proto::message::Encoding::Amf3 { format: 0 };
        let m3 = raw(c3);
        assert_eq!(m3.header.msg_type, MessageType::COMMAND_AMF3);
        let r = rewrite(&m3, &rw);
        let p = r.payload.unwrap();
        assert_eq!(p[0], 0, "format byte");
        match Message::decode(MessageType::COMMAND_AMF3, p).unwrap() {
            Message::Command(c) => {
                assert_eq!(c.args(), &[V::String("renamed".into())]);
                assert!(matches!(
                    c.encoding,
                    crate::proto::message::Encoding::Amf3 { format: 0 }
                ));
            }
            m => panic!("{m:?}"),
        }
        // A command too big to decode whole goes on as sent.
        let big = Command::new(
            "publish",
            5.0,
            V::Null,
            vec![
                V::String("key".into()),
                V::StrictArray(vec![V::Null; crate::proto::MAX_AMF_ELEMENTS + 1]),
            ],
        );
        let r = rewrite(&raw(big), &rw);
        assert_eq!((r.payload, r.session), (None, None));
        // Other commands are not touched.
        let r = rewrite(
            &raw(Command::new("createStream", 4.0, V::Null, vec![])),
            &rw,
        );
        assert_eq!((r.payload, r.session), (None, None));
    }
}
