//! The server side of an RTMP session (RTMP 1.0 §7.2.1 NetConnection and
//! §7.2.2 NetStream commands, as nginx-rtmp answers them), sans-IO.
//!
//! [`ServerSession`] runs the server handshake on a [`Connection`], then
//! turns the client's commands into [`Request`]s: `connect`,
//! `releaseStream`/`FCPublish`/`FCUnpublish`, `createStream`, `publish`,
//! `play`, `deleteStream`, `closeStream`. The caller decides each with
//! [`ServerSession::accept`] or [`ServerSession::reject`], which send the
//! answers real servers send (nginx-rtmp's sequence and status codes). Media
//! and data messages on a publishing stream come out raw
//! ([`ServerEvent::Media`]), to be fanned out byte for byte with
//! [`ServerSession::send_media`].

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::{
    CSID_COMMAND, CSID_CONTROL, CSID_STREAM, ConnEvent, Connection, SessionError, Status,
    media_csid, ms,
};
use crate::proto::amf0::Amf0Value;
use crate::proto::capabilities::Capabilities;
use crate::proto::chunk::{ChunkEvent, MessageHeader, RawMessage, ReserveBudget};
use crate::proto::handshake::{HandshakeConfig, HandshakeOutcome};
use crate::proto::message::{Command, DataMessage, LimitType, Message, MessageType, UserControl};

/// Settings of a [`ServerSession`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Handshake mode and version bytes.
    pub handshake: HandshakeConfig,
    /// Chunk size we send with, announced when `connect` is accepted.
    pub chunk_size: u32,
    /// Window Acknowledgement Size we announce.
    pub window_ack_size: u32,
    /// Set Peer Bandwidth we announce (dynamic).
    pub peer_bandwidth: u32,
    /// Message streams a client may create (nginx-rtmp's `max_streams`
    /// default is 32, counting chunk streams; this counts message streams).
    pub max_streams: u32,
    /// A process-wide budget for partial messages of every connection.
    pub budget: Option<std::sync::Arc<ReserveBudget>>,
    /// Bytes a client may hold in messages it has not finished (over it the
    /// chunk stream fails: a message too big).
    pub max_message: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            handshake: HandshakeConfig::server(),
            chunk_size: 4096,
            window_ack_size: 5_000_000,
            peer_bandwidth: 5_000_000,
            max_streams: 16,
            budget: None,
            max_message: 16 << 20,
        }
    }
}

/// What a client asks for; the caller decides it with
/// [`ServerSession::accept`] or [`ServerSession::reject`].
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `connect` (§7.2.1.1).
    Connect {
        /// `app` of the command object.
        app: String,
        /// `tcUrl`, if sent.
        tc_url: Option<String>,
        /// `flashVer`, if sent.
        flash_ver: Option<String>,
        /// The whole command object.
        object: Amf0Value,
    },
    /// `releaseStream(name)` (FMLE, OBS, FFmpeg before publishing).
    ReleaseStream {
        /// Stream name.
        name: String,
    },
    /// `FCPublish(name)`.
    FcPublish {
        /// Stream name.
        name: String,
    },
    /// `FCUnpublish(name)`.
    FcUnpublish {
        /// Stream name.
        name: String,
    },
    /// `createStream` (§7.2.1.3); accepting it creates the next stream id.
    CreateStream,
    /// `publish(name, type)` on a created stream (§7.2.2.6).
    Publish {
        /// Message stream id.
        stream_id: u32,
        /// Stream name (with query, if any).
        name: String,
        /// `live`, `record` or `append`.
        kind: String,
    },
    /// `play(name, start)` on a created stream (§7.2.2.1).
    Play {
        /// Message stream id.
        stream_id: u32,
        /// Stream name (with query, if any).
        name: String,
        /// Start: -2 live or recorded, -1 live only, ≥0 recorded from ms.
        start: f64,
    },
    /// `deleteStream(id)` (§7.2.2.3): the stream is gone, no answer is sent.
    DeleteStream {
        /// Message stream id.
        stream_id: u32,
    },
    /// `closeStream` on a stream (FFmpeg sends it to stop a play).
    CloseStream {
        /// Message stream id.
        stream_id: u32,
    },
}

impl Request {
    /// The command name as sent.
    pub fn command(&self) -> &'static str {
        match self {
            Request::Connect { .. } => "connect",
            Request::ReleaseStream { .. } => "releaseStream",
            Request::FcPublish { .. } => "FCPublish",
            Request::FcUnpublish { .. } => "FCUnpublish",
            Request::CreateStream => "createStream",
            Request::Publish { .. } => "publish",
            Request::Play { .. } => "play",
            Request::DeleteStream { .. } => "deleteStream",
            Request::CloseStream { .. } => "closeStream",
        }
    }
}

/// Names one request so that it can be answered later.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestId {
    txn: f64,
    /// Message stream id it came on (`publish`/`play`) or is about.
    stream_id: u32,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Connect,
    Simple,
    CreateStream,
    Publish,
    Play,
    Gone,
}

/// What happened, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// The handshake completed (C2 arrived).
    Handshake(HandshakeOutcome),
    /// A command to decide.
    Request(RequestId, Request),
    /// Audio, video, data or aggregate message on a publishing stream, raw.
    Media(RawMessage),
    /// The client's Set Chunk Size took effect.
    ChunkSize(u32),
    /// The client's Window Acknowledgement Size.
    WindowAckSize(u32),
    /// The client acknowledged bytes.
    Acknowledgement(u32),
    /// A user control event (ping responses, Set Buffer Length).
    UserControl(UserControl),
    /// Any other command (not answered).
    Command(Command),
    /// Media or data on a stream that is not publishing, or any other
    /// message: not acted on.
    Ignored(RawMessage),
    /// A message body that did not decode (kept going).
    Malformed {
        /// Message type number.
        msg_type: u8,
        /// Why.
        error: String,
    },
}

/// A [`ServerEvent`] with the `now` at which its bytes were handed in.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSessionEvent {
    /// Time of the input call that produced it.
    pub at: Duration,
    /// What happened.
    pub event: ServerEvent,
}

/// Where a message stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    /// Created, nothing asked yet (or publish/play refused).
    Idle,
    /// A publish or play awaits the caller's answer.
    Asked,
    /// Publishing: media from the client is reported.
    Publishing,
    /// Playing: the caller sends media to it.
    Playing,
}

/// The server session state machine. See the module documentation.
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    conn: Connection,
    connected: bool,
    /// The client's `connect` announced E-RTMP capabilities (`fourCcList`,
    /// `[audio|video]FourCcInfoMap`, `capsEx`): the answer states the
    /// server's own.
    enhanced: bool,
    /// The client's `connect` asked for AMF3 (`objectEncoding` 3): the
    /// answer says so, as nginx-rtmp echoes it.
    amf3: bool,
    events: VecDeque<ServerSessionEvent>,
    /// Created message streams and their state.
    streams: Vec<(u32, StreamState)>,
    next_stream: u32,
    failed: Option<SessionError>,
    /// A request that changes what later commands mean (connect,
    /// createStream, publish, play) awaits the caller's decision: input
    /// after it is decoded once it is decided, so a client that sends
    /// `publish` right behind `createStream` (without waiting for the
    /// answer) is understood.
    blocked: Option<RequestId>,
    /// `now` of the last input, for what a decision unblocks.
    last_now: Duration,
}

fn info(level: &str, code: &str, description: &str) -> Amf0Value {
    Amf0Value::Object(vec![
        ("level".into(), Amf0Value::String(level.into())),
        ("code".into(), Amf0Value::String(code.into())),
        ("description".into(), Amf0Value::String(description.into())),
    ])
}

fn string_arg(cmd: &Command, i: usize) -> String {
    cmd.args()
        .get(i)
        .and_then(Amf0Value::text)
        .unwrap_or_default()
        .into_owned()
}

impl ServerSession {
    /// A session for a connection just accepted: waits for C0+C1.
    pub fn new(config: ServerConfig, now: Duration, random: &mut impl FnMut(&mut [u8])) -> Self {
        ServerSession {
            conn: Connection::server(
                config.handshake,
                ms(now),
                random,
                config.budget.clone(),
                config.max_message,
            ),
            config,
            connected: false,
            enhanced: false,
            amf3: false,
            events: VecDeque::new(),
            streams: Vec::new(),
            next_stream: 1,
            failed: None,
            blocked: None,
            last_now: now,
        }
    }

    /// The connection layer underneath (counters, chunk sizes).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Whether `connect` was accepted.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// State of a message stream, if it was created.
    pub fn stream_state(&self, stream_id: u32) -> Option<StreamState> {
        self.streams
            .iter()
            .find(|(id, _)| *id == stream_id)
            .map(|(_, s)| *s)
    }

    /// Bytes to write to the peer, if any.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.conn.poll_transmit()
    }

    /// Bytes queued to send (not counting handshake bytes).
    pub fn poll_transmit_len(&self) -> usize {
        self.conn.transmit_len()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerSessionEvent> {
        self.events.pop_front()
    }

    /// Feeds bytes received from the peer. After an error, every call
    /// returns the same error.
    pub fn handle_input(&mut self, data: &[u8], now: Duration) -> Result<(), SessionError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.conn.handle_input(data);
        self.processed(now)
    }

    /// The buffer the next received bytes belong in (read into it, then
    /// call [`ServerSession::handle_received`]).
    pub fn receive_buffer(&mut self, want: usize) -> &mut BytesMut {
        self.conn.receive_buffer(want)
    }

    /// Processes `n` bytes appended to [`ServerSession::receive_buffer`].
    pub fn handle_received(&mut self, n: usize, now: Duration) -> Result<(), SessionError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.conn.handle_received(n);
        self.processed(now)
    }

    fn processed(&mut self, now: Duration) -> Result<(), SessionError> {
        self.last_now = now;
        let r = self.process(now);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn push(&mut self, at: Duration, event: ServerEvent) {
        self.events.push_back(ServerSessionEvent { at, event });
    }

    fn process(&mut self, now: Duration) -> Result<(), SessionError> {
        while self.blocked.is_none()
            && let Some(ev) = self.conn.poll(ms(now))?
        {
            match ev {
                ConnEvent::Handshake(o) => self.push(now, ServerEvent::Handshake(o)),
                ConnEvent::Chunk(ChunkEvent::ChunkSizeChanged { new, .. }) => {
                    self.push(now, ServerEvent::ChunkSize(new))
                }
                ConnEvent::Chunk(ChunkEvent::Message(m)) => self.on_message(m, now),
                ConnEvent::Chunk(_) => {}
            }
        }
        Ok(())
    }

    fn on_message(&mut self, m: RawMessage, now: Duration) {
        let t = m.header.msg_type;
        if matches!(
            t,
            MessageType::AUDIO
                | MessageType::VIDEO
                | MessageType::DATA_AMF0
                | MessageType::DATA_AMF3
                | MessageType::AGGREGATE
        ) {
            let ev = if self.stream_state(m.header.stream_id) == Some(StreamState::Publishing) {
                ServerEvent::Media(m)
            } else {
                ServerEvent::Ignored(m)
            };
            self.push(now, ev);
            return;
        }
        let header = m.header;
        match Message::decode(t, m.payload.clone()) {
            Err(e) => {
                // A command before the connection is up is its `connect`
                // (or what stands for it): without it the session cannot
                // go on, and waiting would leave the client waiting for an
                // answer that never comes. nginx-rtmp closes too.
                if !self.connected
                    && matches!(t, MessageType::COMMAND_AMF0 | MessageType::COMMAND_AMF3)
                    && self.failed.is_none()
                {
                    self.failed = Some(SessionError::Malformed(format!(
                        "a command before connect (message type {}) does not decode: {e}",
                        t.0
                    )));
                }
                self.push(
                    now,
                    ServerEvent::Malformed {
                        msg_type: t.0,
                        error: e.to_string(),
                    },
                )
            }
            // Applied by the decoder; reported from its ChunkSizeChanged.
            Ok(Message::SetChunkSize(_)) => {}
            Ok(Message::WindowAckSize(n)) => self.push(now, ServerEvent::WindowAckSize(n)),
            Ok(Message::Acknowledgement { sequence }) => {
                self.push(now, ServerEvent::Acknowledgement(sequence))
            }
            Ok(Message::UserControl(uc)) => self.push(now, ServerEvent::UserControl(uc)),
            Ok(Message::Command(cmd)) => self.on_command(cmd, header, now),
            Ok(_) => self.push(now, ServerEvent::Ignored(m)),
        }
    }

    fn on_command(&mut self, cmd: Command, header: MessageHeader, now: Duration) {
        // A command of type 17 (AMF3: Flash Player or AIR with
        // objectEncoding 3) is a format byte, then AMF0 values, any of
        // which may switch to AMF3 (0x11): those are read as their AMF0
        // equivalents, so that a connect object, a stream name or a start
        // behind a switch is what the client asked (nginx-rtmp skips the
        // format byte and reads AMF0 too, but closes at a switch).
        let Command { encoding, values } = cmd;
        let cmd = Command {
            encoding,
            values: values.into_iter().map(Amf0Value::without_avmplus).collect(),
        };
        let txn = cmd.transaction_id().unwrap_or(0.0);
        let sid = header.stream_id;
        let id = |kind, stream_id| RequestId {
            txn,
            stream_id,
            kind,
        };
        let (rid, req) = match cmd.name() {
            "connect" if !self.connected => {
                let obj = cmd.command_object().cloned().unwrap_or(Amf0Value::Null);
                let s = |k: &str| obj.get(k).and_then(Amf0Value::text).map(|c| c.into_owned());
                self.enhanced = Capabilities::announced_in(&obj);
                self.amf3 = obj.get("objectEncoding").and_then(Amf0Value::as_f64) == Some(3.0);
                (
                    id(Kind::Connect, 0),
                    Request::Connect {
                        app: s("app").unwrap_or_default(),
                        tc_url: s("tcUrl"),
                        flash_ver: s("flashVer"),
                        object: obj.clone(),
                    },
                )
            }
            "releaseStream" => (
                id(Kind::Simple, 0),
                Request::ReleaseStream {
                    name: string_arg(&cmd, 0),
                },
            ),
            "FCPublish" => (
                id(Kind::Simple, 0),
                Request::FcPublish {
                    name: string_arg(&cmd, 0),
                },
            ),
            "FCUnpublish" => (
                id(Kind::Simple, 0),
                Request::FcUnpublish {
                    name: string_arg(&cmd, 0),
                },
            ),
            "createStream" => (id(Kind::CreateStream, 0), Request::CreateStream),
            "publish" if self.stream_state(sid) == Some(StreamState::Idle) => {
                self.set_stream(sid, StreamState::Asked);
                let kind = cmd
                    .args()
                    .get(1)
                    .and_then(Amf0Value::text)
                    .map(|c| c.into_owned())
                    .unwrap_or_else(|| "live".into());
                (
                    id(Kind::Publish, sid),
                    Request::Publish {
                        stream_id: sid,
                        name: string_arg(&cmd, 0),
                        kind,
                    },
                )
            }
            "play" if self.stream_state(sid) == Some(StreamState::Idle) => {
                self.set_stream(sid, StreamState::Asked);
                let start = cmd
                    .args()
                    .get(1)
                    .and_then(Amf0Value::as_f64)
                    .unwrap_or(-2.0);
                (
                    id(Kind::Play, sid),
                    Request::Play {
                        stream_id: sid,
                        name: string_arg(&cmd, 0),
                        start,
                    },
                )
            }
            "deleteStream" => {
                let target = cmd
                    .args()
                    .first()
                    .and_then(Amf0Value::as_f64)
                    .filter(|v| *v >= 0.0 && *v <= f64::from(u32::MAX))
                    .map(|v| v as u32)
                    .unwrap_or(sid);
                self.streams.retain(|(s, _)| *s != target);
                (
                    id(Kind::Gone, target),
                    Request::DeleteStream { stream_id: target },
                )
            }
            "closeStream" => {
                self.set_stream(sid, StreamState::Idle);
                (id(Kind::Gone, sid), Request::CloseStream { stream_id: sid })
            }
            _ => {
                self.push(now, ServerEvent::Command(cmd));
                return;
            }
        };
        if matches!(
            rid.kind,
            Kind::Connect | Kind::CreateStream | Kind::Publish | Kind::Play
        ) {
            self.blocked = Some(rid);
        }
        self.push(now, ServerEvent::Request(rid, req));
    }

    /// After a decision: decodes what the client sent behind the request.
    /// An error here is kept and returned by [`ServerSession::error`] and
    /// by the next input call.
    fn unblock(&mut self, decided: RequestId) {
        if self.blocked != Some(decided) {
            return;
        }
        self.blocked = None;
        if self.failed.is_none() {
            let now = self.last_now;
            if let Err(e) = self.process(now) {
                self.failed = Some(e);
            }
        }
    }

    /// The error that stopped the session, if one did.
    pub fn error(&self) -> Option<&SessionError> {
        self.failed.as_ref()
    }

    fn set_stream(&mut self, stream_id: u32, state: StreamState) {
        if let Some(s) = self.streams.iter_mut().find(|(id, _)| *id == stream_id) {
            s.1 = state;
        }
    }

    fn command(
        &mut self,
        csid: u32,
        stream_id: u32,
        name: &str,
        txn: f64,
        obj: Amf0Value,
        args: Vec<Amf0Value>,
    ) {
        let c = Command::new(name, txn, obj, args);
        self.conn.send(csid, stream_id, 0, &Message::Command(c));
    }

    fn on_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        self.command(
            CSID_STREAM,
            stream_id,
            "onStatus",
            0.0,
            Amf0Value::Null,
            vec![info(level, code, description)],
        );
    }

    /// Accepts a request with the answer nginx-rtmp gives:
    /// - `connect`: Window Acknowledgement Size, Set Peer Bandwidth, Set
    ///   Chunk Size, then `_result` with `NetConnection.Connect.Success`;
    /// - `createStream`: `_result` with the new stream id (returned);
    /// - `publish`: `onStatus` `NetStream.Publish.Start`;
    /// - `play`: Stream Begin, `onStatus` `NetStream.Play.Reset` and
    ///   `NetStream.Play.Start`, `|RtmpSampleAccess`;
    /// - `releaseStream`, `FCPublish`, `FCUnpublish`: `_result` when a
    ///   transaction id was given; `deleteStream`, `closeStream`: nothing.
    ///
    /// Returns the stream id a `createStream` created.
    pub fn accept(&mut self, id: RequestId) -> Option<u32> {
        let r = self.answer(id);
        self.unblock(id);
        r
    }

    fn answer(&mut self, id: RequestId) -> Option<u32> {
        match id.kind {
            Kind::Connect => {
                self.connected = true;
                let c = &self.config;
                let (w, bw, cs) = (c.window_ack_size, c.peer_bandwidth, c.chunk_size);
                self.conn
                    .send(CSID_CONTROL, 0, 0, &Message::WindowAckSize(w));
                self.conn.send(
                    CSID_CONTROL,
                    0,
                    0,
                    &Message::SetPeerBandwidth {
                        size: bw,
                        limit: LimitType::DYNAMIC,
                    },
                );
                self.conn.set_chunk_size(cs);
                let mut props = vec![
                    ("fmsVer".into(), Amf0Value::String("FMS/3,0,1,123".into())),
                    ("capabilities".into(), Amf0Value::Number(31.0)),
                ];
                if self.enhanced {
                    // E-RTMP: "the server SHOULD state its support".
                    props.extend(Capabilities::forwarder().to_properties());
                }
                let props = Amf0Value::Object(props);
                let mut i = info(
                    "status",
                    "NetConnection.Connect.Success",
                    "Connection succeeded.",
                );
                if let Amf0Value::Object(v) = &mut i {
                    // The client's encoding, as nginx-rtmp answers (the
                    // answers themselves are AMF0, type 20, as nginx's).
                    let enc = if self.amf3 { 3.0 } else { 0.0 };
                    v.push(("objectEncoding".into(), Amf0Value::Number(enc)));
                }
                self.command(CSID_COMMAND, 0, "_result", id.txn, props, vec![i]);
                None
            }
            Kind::CreateStream => {
                if self.streams.len() as u32 >= self.config.max_streams {
                    self.refuse(id, "NetConnection.Call.Failed", "Too many streams");
                    return None;
                }
                let sid = self.next_stream;
                self.next_stream = self.next_stream.wrapping_add(1).max(1);
                self.streams.push((sid, StreamState::Idle));
                self.command(
                    CSID_COMMAND,
                    0,
                    "_result",
                    id.txn,
                    Amf0Value::Null,
                    vec![Amf0Value::Number(sid.into())],
                );
                Some(sid)
            }
            Kind::Publish => {
                self.set_stream(id.stream_id, StreamState::Publishing);
                self.on_status(
                    id.stream_id,
                    "status",
                    "NetStream.Publish.Start",
                    "Start publishing",
                );
                None
            }
            Kind::Play => {
                self.set_stream(id.stream_id, StreamState::Playing);
                let s = id.stream_id;
                self.conn.send(
                    CSID_CONTROL,
                    0,
                    0,
                    &Message::UserControl(UserControl::StreamBegin(s)),
                );
                self.on_status(
                    s,
                    "status",
                    "NetStream.Play.Reset",
                    "Playing and resetting stream.",
                );
                self.on_status(s, "status", "NetStream.Play.Start", "Start live");
                let access = DataMessage {
                    encoding: crate::proto::message::Encoding::Amf0,
                    values: vec![
                        Amf0Value::String("|RtmpSampleAccess".into()),
                        Amf0Value::Boolean(true),
                        Amf0Value::Boolean(true),
                    ],
                };
                self.conn.send(CSID_STREAM, s, 0, &Message::Data(access));
                None
            }
            Kind::Simple => {
                if id.txn > 0.0 {
                    self.command(
                        CSID_COMMAND,
                        0,
                        "_result",
                        id.txn,
                        Amf0Value::Null,
                        vec![Amf0Value::Undefined],
                    );
                }
                None
            }
            Kind::Gone => None,
        }
    }

    /// Refuses a request with `code` (e.g. `NetStream.Publish.BadName`,
    /// `NetConnection.Connect.Rejected`) and `description`: `_error` to
    /// `connect`, `createStream` and the other calls with a transaction id;
    /// `onStatus` level `error` to `publish` and `play` (the stream returns
    /// to idle).
    pub fn reject(&mut self, id: RequestId, code: &str, description: &str) {
        self.refuse(id, code, description);
        self.unblock(id);
    }

    fn refuse(&mut self, id: RequestId, code: &str, description: &str) {
        match id.kind {
            Kind::Publish | Kind::Play => {
                self.set_stream(id.stream_id, StreamState::Idle);
                self.on_status(id.stream_id, "error", code, description);
            }
            Kind::Gone => {}
            Kind::Connect | Kind::CreateStream | Kind::Simple => {
                self.command(
                    CSID_COMMAND,
                    0,
                    "_error",
                    id.txn,
                    Amf0Value::Null,
                    vec![info("error", code, description)],
                );
            }
        }
    }

    /// Sends a status to a stream (e.g. `NetStream.Play.UnpublishNotify`
    /// when its publisher left).
    pub fn send_status(&mut self, stream_id: u32, status: &Status) {
        self.on_status(stream_id, &status.level, &status.code, &status.description);
    }

    /// Sends a media or data message body byte for byte to a playing stream.
    pub fn send_media(
        &mut self,
        stream_id: u32,
        msg_type: MessageType,
        timestamp: u32,
        payload: &[u8],
    ) {
        let header = MessageHeader {
            timestamp,
            msg_type,
            stream_id,
        };
        self.conn.send_raw(media_csid(msg_type), &header, payload);
    }

    /// Sends a user control event (Stream EOF when a publisher leaves).
    pub fn send_user_control(&mut self, uc: UserControl) {
        self.conn
            .send(CSID_CONTROL, 0, 0, &Message::UserControl(uc));
    }
}

impl ServerSession {
    /// Forgets the chunk header state of every chunk stream we send on: the
    /// next message on each goes with a full (type 0) header. For a caller
    /// that wrote chunks of its own to the peer in between
    /// ([`crate::serve`]'s shared frames).
    pub fn reset_chunk_state(&mut self) {
        self.conn.reset_encoder();
    }

    /// Sends a ping request (user control event 6) with `timestamp`; the
    /// answer comes as [`ServerEvent::UserControl`] `PingResponse`.
    pub fn send_ping(&mut self, timestamp: u32) {
        self.send_user_control(UserControl::PingRequest(timestamp));
    }
}
