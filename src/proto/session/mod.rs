//! The client side of an RTMP session (RTMP 1.0 §5.2 handshake, §5.4 protocol
//! control messages, §6.2 user control, §7.2 NetConnection and NetStream
//! commands), sans-IO.
//!
//! [`ClientSession`] runs the handshake ([`crate::proto::handshake::ClientHandshake`] inside), then
//! `connect`, and — depending on [`Goal`] — `releaseStream`/`FCPublish`/
//! `createStream`/`publish` or `createStream`/`play`, and on
//! [`ClientSession::close`] `FCUnpublish`/`deleteStream`. On the way it
//! answers ping requests, acknowledges received bytes per the peer's Window
//! Acknowledgement Size, applies the peer's Set Chunk Size and announces its
//! own. Everything the server says comes out as a [`SessionEvent`] stamped
//! with the `now` of the [`ClientSession::handle_input`] call that delivered it.
//!
//! The caller passes bytes and time in ([`Duration`] since any fixed epoch)
//! and writes what [`ClientSession::poll_transmit`] returns; commands that
//! the session produces in one step (C2 + Set Chunk Size + `connect`) come out
//! as one buffer, so a driver with `TCP_NODELAY` sends them in one segment.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::proto::amf0::Amf0Value;
use crate::proto::chunk::{ChunkError, ChunkEvent, MessageHeader};
use crate::proto::handshake::{HandshakeConfig, HandshakeError, HandshakeOutcome, RTMP_VERSION};
use crate::proto::message::{
    Command, DataMessage, LimitType, Message, MessageType, UserControl, split_aggregate,
};

pub mod conn;
mod server;

pub use conn::{ConnEvent, Connection};
pub use server::*;

/// Chunk stream used for protocol control and user control messages (§5.4).
pub const CSID_CONTROL: u32 = 2;
/// Chunk stream used for NetConnection commands (as FFmpeg and librtmp do).
pub const CSID_COMMAND: u32 = 3;
/// Chunk stream used for NetStream commands and data.
pub const CSID_STREAM: u32 = 8;
/// Chunk stream used for audio.
pub const CSID_AUDIO: u32 = 4;
/// Chunk stream used for video.
pub const CSID_VIDEO: u32 = 6;

/// What the session does after `connect`.
#[derive(Debug, Clone, PartialEq)]
pub enum Goal {
    /// `connect` only.
    Connect,
    /// `releaseStream`, `FCPublish`, `createStream`, `publish(stream, kind)`.
    Publish {
        /// Stream name (with query, if any), as sent.
        stream: String,
        /// Publishing type: `"live"`, `"record"` or `"append"`.
        kind: String,
    },
    /// `createStream`, `play(stream, start)`, Set Buffer Length.
    Play {
        /// Stream name (with query, if any), as sent.
        stream: String,
        /// Start argument of `play`: -2 live or recorded, -1 live only, ≥0 ms.
        start: f64,
        /// Buffer length announced with Set Buffer Length (ms).
        buffer_ms: u32,
    },
}

/// Settings of a [`ClientSession`].
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// Handshake mode and version bytes.
    pub handshake: HandshakeConfig,
    /// `app` of the connect command object.
    pub app: String,
    /// `tcUrl` of the connect command object.
    pub tc_url: String,
    /// `flashVer` of the connect command object.
    pub flash_ver: String,
    /// Chunk size we send with; announced with Set Chunk Size before `connect`
    /// when it is not 128.
    pub chunk_size: u32,
    /// What to do after `connect`.
    pub goal: Goal,
    /// More properties of the connect command object, after the usual ones
    /// (E-RTMP's `fourCcList`, `capsEx`…).
    pub connect_extra: Vec<(String, Amf0Value)>,
}

impl SessionConfig {
    /// A digest-handshake client with chunk size 4096 and FMLE's flashVer.
    pub fn new(app: &str, tc_url: &str, goal: Goal) -> Self {
        SessionConfig {
            handshake: HandshakeConfig::client(),
            app: app.to_owned(),
            tc_url: tc_url.to_owned(),
            flash_ver: "FMLE/3.0 (compatible; rtmptool)".to_owned(),
            chunk_size: 4096,
            goal,
            connect_extra: Vec::new(),
        }
    }
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// C0+C1 sent, waiting for S0+S1+S2.
    Handshake,
    /// `connect` sent, waiting for `_result`/`_error`.
    Connect,
    /// Connected; no stream wanted ([`Goal::Connect`]).
    Connected,
    /// `createStream` sent.
    CreateStream,
    /// `publish`/`play` sent, waiting for the first onStatus.
    Starting,
    /// The stream is publishing or playing.
    Active,
    /// [`ClientSession::close`] was called.
    Closed,
    /// A command was refused or the input was bad.
    Failed,
}

/// A reply to one of our commands.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The command it answers (`"connect"`, `"createStream"`, ...).
    pub to: &'static str,
    /// True for `_result`, false for `_error`.
    pub ok: bool,
    /// The reply as sent.
    pub command: Command,
}

impl Reply {
    /// A property of the reply's info object (the first argument), e.g.
    /// `code` (invalid UTF-8 bytes written as `\xNN`).
    pub fn info(&self, key: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.command
            .args()
            .first()
            .and_then(|o| o.get(key))
            .and_then(Amf0Value::text)
    }
}

/// An `onStatus` (NetStream) or status-like info object.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// Message stream id it arrived on.
    pub stream_id: u32,
    /// `level`: `"status"`, `"warning"` or `"error"`.
    pub level: String,
    /// `code`, e.g. `NetStream.Publish.Start`.
    pub code: String,
    /// `description`.
    pub description: String,
    /// The whole info object.
    pub info: Amf0Value,
}

impl Status {
    fn from_info(stream_id: u32, info: &Amf0Value) -> Status {
        // Invalid UTF-8 bytes are kept as `\xNN` text.
        let s = |k: &str| {
            info.get(k)
                .and_then(Amf0Value::text)
                .unwrap_or_default()
                .into_owned()
        };
        Status {
            stream_id,
            level: s("level"),
            code: s("code"),
            description: s("description"),
            info: info.clone(),
        }
    }

    /// Whether the level is `error`.
    pub fn is_error(&self) -> bool {
        self.level.eq_ignore_ascii_case("error")
    }
}

/// What happened, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The handshake completed (S2 arrived).
    Handshake(HandshakeOutcome),
    /// The peer's Set Chunk Size (applied to the chunks after it).
    ChunkSize(u32),
    /// The peer's Window Acknowledgement Size.
    WindowAckSize(u32),
    /// The peer's Set Peer Bandwidth.
    PeerBandwidth {
        /// Window size.
        size: u32,
        /// Limit type.
        limit: LimitType,
    },
    /// The peer acknowledged bytes.
    Acknowledgement(u32),
    /// A user control event (Stream Begin, ping request, ...). Ping requests
    /// are answered by the session itself.
    UserControl(UserControl),
    /// `_result` or `_error` to one of our commands.
    Reply(Reply),
    /// `onBWDone` from the server.
    BwDone,
    /// `onStatus` (or `onFCPublish`/`onFCUnpublish` info objects).
    Status(Status),
    /// `createStream` succeeded with this message stream id.
    StreamCreated(u32),
    /// The stream is publishing (first non-error onStatus after `publish`) or
    /// playing (first non-error onStatus after `play`).
    Started(Status),
    /// An audio message.
    Audio {
        /// Message timestamp (ms).
        timestamp: u32,
        /// FLV audio tag body.
        payload: Bytes,
    },
    /// A video message.
    Video {
        /// Message timestamp (ms).
        timestamp: u32,
        /// FLV video tag body.
        payload: Bytes,
    },
    /// A data message (`onMetaData`, `|RtmpSampleAccess`, ...).
    Data {
        /// Message timestamp (ms).
        timestamp: u32,
        /// The message.
        data: DataMessage,
        /// Its body as received (for a relay that forwards it byte for byte).
        raw: Bytes,
    },
    /// Any other command from the server.
    Command(Command),
    /// Any other message.
    Other(Message),
    /// A message body that could not be decoded (kept going).
    Malformed {
        /// Message type number.
        msg_type: u8,
        /// Why.
        error: String,
    },
}

/// An [`Event`] with the `now` at which its bytes were handed in.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionEvent {
    /// Time of the [`ClientSession::handle_input`] call that produced it.
    pub at: Duration,
    /// What happened.
    pub event: Event,
}

/// Why the session cannot go on.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SessionError {
    /// The handshake failed.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// The chunk stream could not be decoded.
    #[error("chunk stream: {0}")]
    Chunk(#[from] ChunkError),
    /// A message the session cannot go on without does not decode (a
    /// server's `connect` whose AMF is broken).
    #[error("{0}")]
    Malformed(String),
}

/// The client session state machine. See the module documentation.
#[derive(Debug)]
pub struct ClientSession {
    config: SessionConfig,
    state: State,
    conn: Connection,
    events: VecDeque<SessionEvent>,
    next_txn: f64,
    /// Our outstanding commands: transaction id and name.
    pending: Vec<(f64, &'static str)>,
    stream_id: Option<u32>,
    failed: Option<SessionError>,
}

impl ClientSession {
    /// Starts a session: C0+C1 are ready to send at once. `random` fills the
    /// handshake's random fields.
    pub fn new(config: SessionConfig, now: Duration, random: &mut impl FnMut(&mut [u8])) -> Self {
        ClientSession {
            conn: Connection::client(config.handshake, ms(now), random),
            config,
            state: State::Handshake,
            events: VecDeque::new(),
            next_txn: 1.0,
            pending: Vec::new(),
            stream_id: None,
            failed: None,
        }
    }

    /// Where the session is.
    pub fn state(&self) -> State {
        self.state
    }

    /// The message stream id from `createStream`, once known.
    pub fn stream_id(&self) -> Option<u32> {
        self.stream_id
    }

    /// The chunk size the peer sends with.
    pub fn peer_chunk_size(&self) -> u32 {
        self.conn.peer_chunk_size()
    }

    /// The connection layer underneath (counters, chunk sizes).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Bytes to write to the peer, if any.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.conn.poll_transmit()
    }

    /// Bytes queued to send (not counting handshake bytes).
    pub fn poll_transmit_len(&self) -> usize {
        self.conn.transmit_len()
    }

    /// The queued bytes, written in place after the handshake (see
    /// [`Connection::transmit_queued`](conn::Connection::transmit_queued)).
    pub fn transmit_queued(&self) -> &[u8] {
        self.conn.transmit_queued()
    }

    /// Drops the first `n` bytes of [`ClientSession::transmit_queued`].
    pub fn transmit_consumed(&mut self, n: usize) {
        self.conn.transmit_consumed(n)
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Whether events wait for [`ClientSession::poll_event`].
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// What stopped the session, once something did. The events of the
    /// input before the fault stay queued: a driver hands them out first.
    pub fn error(&self) -> Option<&SessionError> {
        self.failed.as_ref()
    }

    /// Feeds bytes received from the peer. After an error, every call returns
    /// the same error.
    pub fn handle_input(&mut self, data: &[u8], now: Duration) -> Result<(), SessionError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.conn.handle_input(data);
        self.processed(now)
    }

    /// The buffer the next received bytes belong in, with at least `want`
    /// bytes of spare capacity: a driver may read straight into it (no
    /// copy) and then call [`ClientSession::handle_received`]. Bytes must
    /// only be appended.
    pub fn receive_buffer(&mut self, want: usize) -> &mut BytesMut {
        self.conn.receive_buffer(want)
    }

    /// Processes `n` bytes a driver appended to
    /// [`ClientSession::receive_buffer`]; otherwise as
    /// [`ClientSession::handle_input`].
    pub fn handle_received(&mut self, n: usize, now: Duration) -> Result<(), SessionError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.conn.handle_received(n);
        self.processed(now)
    }

    fn processed(&mut self, now: Duration) -> Result<(), SessionError> {
        let r = self.process(now);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
            self.state = State::Failed;
        }
        r
    }

    /// Runs the handshake on what it has buffered, then decodes chunks.
    fn process(&mut self, now: Duration) -> Result<(), SessionError> {
        while let Some(ev) = self.conn.poll(ms(now))? {
            match ev {
                ConnEvent::Handshake(outcome) => {
                    self.push(now, Event::Handshake(outcome));
                    self.after_handshake();
                }
                ConnEvent::Chunk(ChunkEvent::Message(m)) => {
                    match Message::decode(m.header.msg_type, m.payload.clone()) {
                        Ok(msg) => self.on_message(msg, m.header, m.payload, now),
                        Err(e) => self.push(
                            now,
                            Event::Malformed {
                                msg_type: m.header.msg_type.0,
                                error: e.to_string(),
                            },
                        ),
                    }
                }
                // A server that sets the chunk size to 0 broke the
                // protocol (exit 9), as FFmpeg holds too.
                ConnEvent::Chunk(ChunkEvent::InvalidChunkSize { raw, offset }) => {
                    return Err(SessionError::Chunk(ChunkError::InvalidChunkSize {
                        offset,
                        raw,
                    }));
                }
                ConnEvent::Chunk(_) => {}
            }
        }
        Ok(())
    }

    /// Ends the session politely: `FCUnpublish` + `deleteStream` after a
    /// publish, `deleteStream` after a play. The caller flushes
    /// [`ClientSession::poll_transmit`] and closes the connection.
    pub fn close(&mut self) {
        if let Some(id) = self.stream_id {
            if let Goal::Publish { stream, .. } = &self.config.goal {
                let stream = stream.clone();
                self.send_command(
                    CSID_COMMAND,
                    0,
                    "FCUnpublish",
                    vec![Amf0Value::String(stream)],
                    None,
                );
            }
            self.send_command(
                CSID_COMMAND,
                0,
                "deleteStream",
                vec![Amf0Value::Number(id.into())],
                None,
            );
        }
        self.state = State::Closed;
    }

    /// Sends an audio, video or data message on the created stream (publish).
    /// Does nothing before the stream exists.
    pub fn send_media(&mut self, msg: &Message, timestamp: u32) {
        let Some(stream_id) = self.stream_id else {
            return;
        };
        let csid = media_csid(msg.msg_type());
        self.conn.send(csid, stream_id, timestamp, msg);
    }

    /// Sends a message body byte for byte on the created stream (publish,
    /// relay): `msg_type` picks the chunk stream as [`ClientSession::send_media`]
    /// does. Does nothing before the stream exists.
    pub fn send_raw_media(&mut self, msg_type: MessageType, timestamp: u32, payload: &[u8]) {
        let Some(stream_id) = self.stream_id else {
            return;
        };
        let header = MessageHeader {
            timestamp,
            msg_type,
            stream_id,
        };
        self.conn.send_raw(media_csid(msg_type), &header, payload);
    }

    fn push(&mut self, at: Duration, event: Event) {
        self.events.push_back(SessionEvent { at, event });
    }

    fn send(&mut self, csid: u32, stream_id: u32, timestamp: u32, msg: &Message) {
        self.conn.send(csid, stream_id, timestamp, msg);
    }

    /// Sends a command; `expect` names it when a `_result`/`_error` is awaited.
    fn send_command(
        &mut self,
        csid: u32,
        stream_id: u32,
        name: &'static str,
        args: Vec<Amf0Value>,
        expect: Option<&'static str>,
    ) -> f64 {
        let txn = if expect.is_some() {
            self.next_txn += 1.0;
            self.next_txn - 1.0
        } else {
            0.0
        };
        if let Some(to) = expect {
            self.pending.push((txn, to));
        }
        let cmd = Command::new(name, txn, Amf0Value::Null, args);
        self.send(csid, stream_id, 0, &Message::Command(cmd));
        txn
    }

    fn after_handshake(&mut self) {
        self.state = State::Connect;
        self.conn.set_chunk_size(self.config.chunk_size);
        let mut props = vec![
            ("app".into(), Amf0Value::String(self.config.app.clone())),
            ("type".into(), Amf0Value::String("nonprivate".into())),
            (
                "flashVer".into(),
                Amf0Value::String(self.config.flash_ver.clone()),
            ),
            (
                "tcUrl".into(),
                Amf0Value::String(self.config.tc_url.clone()),
            ),
        ];
        props.extend(self.config.connect_extra.iter().cloned());
        let obj = Amf0Value::Object(props);
        let txn = self.next_txn;
        self.next_txn += 1.0;
        self.pending.push((txn, "connect"));
        let cmd = Command::new("connect", txn, obj, vec![]);
        self.send(CSID_COMMAND, 0, 0, &Message::Command(cmd));
    }

    fn on_message(&mut self, msg: Message, header: MessageHeader, raw: Bytes, now: Duration) {
        match msg {
            Message::SetChunkSize(n) => self.push(now, Event::ChunkSize(n & 0x7FFF_FFFF)),
            Message::WindowAckSize(n) => self.push(now, Event::WindowAckSize(n)),
            Message::SetPeerBandwidth { size, limit } => {
                self.push(now, Event::PeerBandwidth { size, limit })
            }
            Message::Acknowledgement { sequence } => {
                self.push(now, Event::Acknowledgement(sequence))
            }
            // Ping requests were answered by the connection layer.
            Message::UserControl(uc) => self.push(now, Event::UserControl(uc)),
            Message::Audio(payload) => self.push(
                now,
                Event::Audio {
                    timestamp: header.timestamp,
                    payload,
                },
            ),
            Message::Video(payload) => self.push(
                now,
                Event::Video {
                    timestamp: header.timestamp,
                    payload,
                },
            ),
            Message::Data(data) => self.push(
                now,
                Event::Data {
                    timestamp: header.timestamp,
                    data,
                    raw,
                },
            ),
            Message::Command(cmd) => self.on_command(cmd, header, now),
            Message::Aggregate(body) => self.on_aggregate(&body, header, now),
            other => self.push(now, Event::Other(other)),
        }
    }

    /// An aggregate (RTMP 1.0 §7.1.6, as Adobe Media Server and Wowza send
    /// them) comes out as the audio, video and data messages inside it, on
    /// the stream's timescale ([`split_aggregate`]). Parts of other types
    /// (an aggregate inside an aggregate, a command) and a body that does
    /// not split cleanly are [`Event::Malformed`]: said, not dropped.
    fn on_aggregate(&mut self, body: &Bytes, header: MessageHeader, now: Duration) {
        let (parts, error) = split_aggregate(header.timestamp, header.stream_id, body);
        for p in parts {
            if !matches!(
                p.msg_type,
                MessageType::AUDIO
                    | MessageType::VIDEO
                    | MessageType::DATA_AMF0
                    | MessageType::DATA_AMF3
            ) {
                self.push(
                    now,
                    Event::Malformed {
                        msg_type: MessageType::AGGREGATE.0,
                        error: format!("aggregate carries a {} message; skipped", p.msg_type),
                    },
                );
                continue;
            }
            let sub = MessageHeader {
                timestamp: p.timestamp,
                msg_type: p.msg_type,
                stream_id: p.stream_id,
            };
            let raw = p.payload.clone();
            match Message::decode(p.msg_type, p.payload) {
                Ok(msg) => self.on_message(msg, sub, raw, now),
                Err(e) => self.push(
                    now,
                    Event::Malformed {
                        msg_type: MessageType::AGGREGATE.0,
                        error: format!("in an aggregate: {e}"),
                    },
                ),
            }
        }
        if let Some(e) = error {
            self.push(
                now,
                Event::Malformed {
                    msg_type: MessageType::AGGREGATE.0,
                    error: e.to_string(),
                },
            );
        }
    }

    fn on_command(&mut self, cmd: Command, header: MessageHeader, now: Duration) {
        // Values behind an AVM+ switch (a server answering in AMF3, as FMS
        // does to objectEncoding 3) read as AMF0: a `_error`'s code, an
        // onStatus level "error" must not go unseen.
        let Command { encoding, values } = cmd;
        let cmd = Command {
            encoding,
            values: values.into_iter().map(Amf0Value::without_avmplus).collect(),
        };
        match cmd.name() {
            "_result" | "_error" => {
                let ok = cmd.name() == "_result";
                let txn = cmd.transaction_id().unwrap_or(-1.0);
                let Some(i) = self.pending.iter().position(|(t, _)| *t == txn) else {
                    self.push(now, Event::Command(cmd));
                    return;
                };
                let (_, to) = self.pending.remove(i);
                let first = cmd.args().first().cloned();
                let stream_id = first.as_ref().and_then(Amf0Value::as_f64);
                self.push(
                    now,
                    Event::Reply(Reply {
                        to,
                        ok,
                        command: cmd,
                    }),
                );
                match (to, ok) {
                    ("connect", true) => self.after_connect(),
                    ("createStream", true) => match stream_id {
                        Some(id) if id >= 0.0 && id <= f64::from(u32::MAX) => {
                            let id = id as u32;
                            self.stream_id = Some(id);
                            self.push(now, Event::StreamCreated(id));
                            self.start_stream(id);
                        }
                        // No stream to play or publish on: the server broke
                        // the protocol (said now, not by a timeout).
                        _ => {
                            self.state = State::Failed;
                            let got = first.map_or("nothing".into(), |v| {
                                let t = v.to_json().to_string();
                                let mut t: String = t.chars().take(60).collect();
                                if t.len() >= 60 {
                                    t.push('…');
                                }
                                crate::text::sanitize(&t).into_owned()
                            });
                            self.push(
                                now,
                                Event::Malformed {
                                    msg_type: header.msg_type.0,
                                    error: format!(
                                        "the _result to createStream carries no stream id (a number 0 to 4294967295) but {got}"
                                    ),
                                },
                            );
                        }
                    },
                    ("connect" | "createStream", false) => self.state = State::Failed,
                    _ => {}
                }
            }
            "onBWDone" => self.push(now, Event::BwDone),
            "onStatus" | "onFCPublish" | "onFCUnpublish" => {
                let st = match cmd.args().first() {
                    Some(info) => Status::from_info(header.stream_id, info),
                    None => Status::from_info(header.stream_id, &Amf0Value::Null),
                };
                let first = self.state == State::Starting && cmd.name() == "onStatus";
                self.push(now, Event::Status(st.clone()));
                if first {
                    if st.is_error() {
                        self.state = State::Failed;
                    } else {
                        self.state = State::Active;
                        self.push(now, Event::Started(st));
                    }
                }
            }
            _ => self.push(now, Event::Command(cmd)),
        }
    }

    fn after_connect(&mut self) {
        match self.config.goal.clone() {
            Goal::Connect => self.state = State::Connected,
            Goal::Publish { stream, .. } => {
                // What FMLE, OBS and FFmpeg send before createStream; servers
                // that do not know them ignore them (no reply is awaited).
                let s = Amf0Value::String(stream);
                self.send_command(CSID_COMMAND, 0, "releaseStream", vec![s.clone()], None);
                self.send_command(CSID_COMMAND, 0, "FCPublish", vec![s], None);
                self.send_command(
                    CSID_COMMAND,
                    0,
                    "createStream",
                    vec![],
                    Some("createStream"),
                );
                self.state = State::CreateStream;
            }
            Goal::Play { .. } => {
                self.send_command(
                    CSID_COMMAND,
                    0,
                    "createStream",
                    vec![],
                    Some("createStream"),
                );
                self.state = State::CreateStream;
            }
        }
    }

    fn start_stream(&mut self, id: u32) {
        match self.config.goal.clone() {
            Goal::Connect => {}
            Goal::Publish { stream, kind } => {
                self.send_command(
                    CSID_STREAM,
                    id,
                    "publish",
                    vec![Amf0Value::String(stream), Amf0Value::String(kind)],
                    None,
                );
                self.state = State::Starting;
            }
            Goal::Play {
                stream,
                start,
                buffer_ms,
            } => {
                self.send_command(
                    CSID_STREAM,
                    id,
                    "play",
                    vec![Amf0Value::String(stream), Amf0Value::Number(start)],
                    None,
                );
                self.send(
                    CSID_CONTROL,
                    0,
                    0,
                    &Message::UserControl(UserControl::SetBufferLength {
                        stream_id: id,
                        buffer_ms,
                    }),
                );
                self.state = State::Starting;
            }
        }
    }
}

/// The chunk stream a media or data message goes on.
pub fn media_csid(t: MessageType) -> u32 {
    match t {
        MessageType::AUDIO => CSID_AUDIO,
        MessageType::VIDEO => CSID_VIDEO,
        _ => CSID_STREAM,
    }
}

/// The RTMP epoch in ms (wraps, as the 32-bit time fields do).
pub(crate) fn ms(now: Duration) -> u32 {
    now.as_millis() as u32
}

// The handshake module's version constant, re-checked here so a session never
// sends anything but RTMP 3 unless configured to.
const _: () = assert!(RTMP_VERSION == 3);

#[cfg(test)]
mod tests;
