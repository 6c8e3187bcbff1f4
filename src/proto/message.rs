//! RTMP messages (RTMP 1.0 §5.4 protocol control messages, §6.2 user control
//! messages, §7.1 message types): what the chunk layer's payloads mean.
//!
//! Wire values stay open: [`MessageType`] and [`UserControl::Unknown`] keep
//! types this module does not know, and [`Message::Unknown`] keeps their
//! payload raw, so a dump can show everything that was sent.

use bytes::{BufMut, Bytes};

use crate::proto::amf0::{self, Amf0Value, AmfError};

/// A message type id (RTMP 1.0 §5.4, §7.1). Open: unknown ids are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MessageType(pub u8);

/// True for a stream's metadata: a data message (AMF0, or AMF3 after its
/// format byte 0) whose first value is the string `onMetaData`, or
/// `@setDataFrame` then `onMetaData` (as publishers send it).
pub fn is_metadata(msg_type: MessageType, body: &[u8]) -> bool {
    const ON_META_DATA: &[u8] = b"\x02\x00\x0aonMetaData";
    const SET_DATA_FRAME: &[u8] = b"\x02\x00\x0d@setDataFrame";
    let body = match msg_type {
        MessageType::DATA_AMF0 => body,
        MessageType::DATA_AMF3 => match body.split_first() {
            Some((0, rest)) => rest,
            _ => return false,
        },
        _ => return false,
    };
    let body = body.strip_prefix(SET_DATA_FRAME).unwrap_or(body);
    body.starts_with(ON_META_DATA)
}

impl MessageType {
    /// 1: Set Chunk Size.
    pub const SET_CHUNK_SIZE: Self = Self(1);
    /// 2: Abort.
    pub const ABORT: Self = Self(2);
    /// 3: Acknowledgement.
    pub const ACKNOWLEDGEMENT: Self = Self(3);
    /// 4: User Control.
    pub const USER_CONTROL: Self = Self(4);
    /// 5: Window Acknowledgement Size.
    pub const WINDOW_ACK_SIZE: Self = Self(5);
    /// 6: Set Peer Bandwidth.
    pub const SET_PEER_BANDWIDTH: Self = Self(6);
    /// 8: audio.
    pub const AUDIO: Self = Self(8);
    /// 9: video.
    pub const VIDEO: Self = Self(9);
    /// 15: data message, "AMF3" form.
    pub const DATA_AMF3: Self = Self(15);
    /// 16: shared object message, "AMF3" form.
    pub const SHARED_OBJECT_AMF3: Self = Self(16);
    /// 17: command message, "AMF3" form.
    pub const COMMAND_AMF3: Self = Self(17);
    /// 18: data message (AMF0).
    pub const DATA_AMF0: Self = Self(18);
    /// 19: shared object message (AMF0).
    pub const SHARED_OBJECT_AMF0: Self = Self(19);
    /// 20: command message (AMF0).
    pub const COMMAND_AMF0: Self = Self(20);
    /// 22: aggregate.
    pub const AGGREGATE: Self = Self(22);

    /// The name used in JSON output (`msg_type_name`), `"unknown"` for others.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "set_chunk_size",
            2 => "abort",
            3 => "acknowledgement",
            4 => "user_control",
            5 => "window_ack_size",
            6 => "set_peer_bandwidth",
            8 => "audio",
            9 => "video",
            15 => "data_amf3",
            16 => "shared_object_amf3",
            17 => "command_amf3",
            18 => "data_amf0",
            19 => "shared_object_amf0",
            20 => "command_amf0",
            22 => "aggregate",
            _ => "unknown",
        }
    }

    /// Whether this is a protocol control message (types 1-6), which travel on
    /// chunk stream 2, message stream 0.
    pub fn is_protocol_control(self) -> bool {
        (1..=6).contains(&self.0)
    }
}

impl std::fmt::Display for MessageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            "unknown" => write!(f, "type {}", self.0),
            n => f.write_str(n),
        }
    }
}

/// Set Peer Bandwidth limit type (RTMP 1.0 §5.4.5). Open: unknown values kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimitType(pub u8);

impl LimitType {
    /// 0: the peer should limit its output bandwidth to the window size.
    pub const HARD: Self = Self(0);
    /// 1: limit to this window or the one in effect, whichever is smaller.
    pub const SOFT: Self = Self(1);
    /// 2: hard if the previous limit was hard, else ignore.
    pub const DYNAMIC: Self = Self(2);

    /// `"hard"`, `"soft"`, `"dynamic"` or `"unknown"`.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "hard",
            1 => "soft",
            2 => "dynamic",
            _ => "unknown",
        }
    }
}

/// User Control events (RTMP 1.0 §7.1.7), carried by message type 4.
#[derive(Debug, Clone, PartialEq)]
pub enum UserControl {
    /// 0: the stream became functional.
    StreamBegin(u32),
    /// 1: playback ended.
    StreamEof(u32),
    /// 2: no more data on the stream.
    StreamDry(u32),
    /// 3: the client's buffer length in milliseconds.
    SetBufferLength {
        /// Message stream id.
        stream_id: u32,
        /// Buffer length in ms.
        buffer_ms: u32,
    },
    /// 4: the stream is recorded.
    StreamIsRecorded(u32),
    /// 6: ping from the server, with its timestamp.
    PingRequest(u32),
    /// 7: the answer to a ping, echoing its timestamp.
    PingResponse(u32),
    /// Any other event (e.g. 26/27 SWF verification, 31/32 buffer empty/ready),
    /// kept raw.
    Unknown {
        /// Event type.
        event_type: u16,
        /// Event data.
        data: Bytes,
    },
}

impl UserControl {
    /// The event type number.
    pub fn event_type(&self) -> u16 {
        match self {
            Self::StreamBegin(_) => 0,
            Self::StreamEof(_) => 1,
            Self::StreamDry(_) => 2,
            Self::SetBufferLength { .. } => 3,
            Self::StreamIsRecorded(_) => 4,
            Self::PingRequest(_) => 6,
            Self::PingResponse(_) => 7,
            Self::Unknown { event_type, .. } => *event_type,
        }
    }

    /// A name for the event (`"stream_begin"`, ...).
    pub fn name(&self) -> &'static str {
        match self.event_type() {
            0 => "stream_begin",
            1 => "stream_eof",
            2 => "stream_dry",
            3 => "set_buffer_length",
            4 => "stream_is_recorded",
            6 => "ping_request",
            7 => "ping_response",
            26 => "swf_verify_request",
            27 => "swf_verify_response",
            31 => "buffer_empty",
            32 => "buffer_ready",
            _ => "unknown",
        }
    }
}

/// Whether a command or data message is in the AMF0 form (20/18) or the
/// "AMF3" form (17/15), which starts with one format byte before AMF0 values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Types 20 / 18 / 19.
    Amf0,
    /// Types 17 / 15 / 16; the byte before the values (0 in practice).
    Amf3 {
        /// The leading format byte as sent.
        format: u8,
    },
}

/// A command message (20 or 17): name, transaction id, command object, arguments.
///
/// Kept as the list of values that was sent, so that odd commands (missing
/// transaction id, extra values) survive; the accessors read the usual layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// AMF0 or AMF3 form.
    pub encoding: Encoding,
    /// Every value, in order: name, transaction id, command object, arguments.
    pub values: Vec<Amf0Value>,
}

impl Command {
    /// A command in the usual layout: name, transaction id, command object, args.
    pub fn new(
        name: &str,
        transaction_id: f64,
        command_object: Amf0Value,
        args: Vec<Amf0Value>,
    ) -> Self {
        let mut values = vec![
            Amf0Value::String(name.to_owned()),
            Amf0Value::Number(transaction_id),
            command_object,
        ];
        values.extend(args);
        Self {
            encoding: Encoding::Amf0,
            values,
        }
    }

    /// The command name ("" when the first value is not a string).
    pub fn name(&self) -> &str {
        match self.values.first() {
            Some(Amf0Value::String(s) | Amf0Value::LongString(s)) => s,
            _ => "",
        }
    }

    /// The transaction id, when the second value is a number.
    pub fn transaction_id(&self) -> Option<f64> {
        match self.values.get(1) {
            Some(Amf0Value::Number(n)) => Some(*n),
            _ => None,
        }
    }

    /// The command object (third value), often null.
    pub fn command_object(&self) -> Option<&Amf0Value> {
        self.values.get(2)
    }

    /// The arguments after the command object.
    pub fn args(&self) -> &[Amf0Value] {
        self.values.get(3..).unwrap_or(&[])
    }

    /// Where AMF decoding stopped early (the element budget ran out), if it did.
    pub fn truncated(&self) -> Option<&amf0::Truncation> {
        amf0::truncation(&self.values)
    }
}

/// A data message (18 or 15), e.g. `@setDataFrame` + `onMetaData` + an ECMA array.
#[derive(Debug, Clone, PartialEq)]
pub struct DataMessage {
    /// AMF0 or AMF3 form.
    pub encoding: Encoding,
    /// The values, in order.
    pub values: Vec<Amf0Value>,
}

impl DataMessage {
    /// The first value when it is a string (the handler name, e.g. `@setDataFrame`).
    pub fn name(&self) -> &str {
        match self.values.first() {
            Some(Amf0Value::String(s) | Amf0Value::LongString(s)) => s,
            _ => "",
        }
    }

    /// Where AMF decoding stopped early (the element budget ran out), if it did.
    pub fn truncated(&self) -> Option<&amf0::Truncation> {
        amf0::truncation(&self.values)
    }
}

/// A decoded RTMP message body.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// 1: Set Chunk Size (raw 32-bit value; the top bit should be 0).
    SetChunkSize(u32),
    /// 2: Abort the message on this chunk stream.
    Abort {
        /// Chunk stream id.
        csid: u32,
    },
    /// 3: Acknowledgement with the number of bytes received so far.
    Acknowledgement {
        /// Sequence number (bytes received, wraps at 4 GiB).
        sequence: u32,
    },
    /// 4: User Control event.
    UserControl(UserControl),
    /// 5: Window Acknowledgement Size.
    WindowAckSize(u32),
    /// 6: Set Peer Bandwidth.
    SetPeerBandwidth {
        /// Window size in bytes.
        size: u32,
        /// Limit type.
        limit: LimitType,
    },
    /// 8: audio data (an FLV audio tag body).
    Audio(Bytes),
    /// 9: video data (an FLV video tag body).
    Video(Bytes),
    /// 20 / 17: command.
    Command(Command),
    /// 18 / 15: data.
    Data(DataMessage),
    /// 19 / 16: shared object message, kept raw.
    SharedObject {
        /// AMF0 or AMF3 form.
        encoding: Encoding,
        /// The body.
        payload: Bytes,
    },
    /// 22: aggregate of FLV-tag-like sub-messages (see [`aggregate_parts`]).
    Aggregate(Bytes),
    /// Any other type, kept raw.
    Unknown {
        /// The type id.
        msg_type: MessageType,
        /// The body.
        payload: Bytes,
    },
}

/// Why a message body could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MessageError {
    /// The body is shorter than its type requires.
    #[error("{msg_type} message too short: {len} bytes, needs {needed}")]
    TooShort {
        /// Message type.
        msg_type: MessageType,
        /// Body length.
        len: usize,
        /// Bytes the type requires.
        needed: usize,
    },
    /// The AMF in a command or data message is malformed.
    #[error("{msg_type} message: {source}")]
    Amf {
        /// Message type.
        msg_type: MessageType,
        /// The AMF error (its offset counts from the first AMF byte).
        source: AmfError,
    },
}

fn need(msg_type: MessageType, p: &[u8], needed: usize) -> Result<(), MessageError> {
    if p.len() < needed {
        Err(MessageError::TooShort {
            msg_type,
            len: p.len(),
            needed,
        })
    } else {
        Ok(())
    }
}

fn be32(p: &[u8]) -> u32 {
    u32::from_be_bytes([p[0], p[1], p[2], p[3]])
}

impl Message {
    /// Decodes the body of a message of type `msg_type`.
    pub fn decode(msg_type: MessageType, payload: Bytes) -> Result<Message, MessageError> {
        let p = payload.as_ref();
        Ok(match msg_type {
            MessageType::SET_CHUNK_SIZE => {
                need(msg_type, p, 4)?;
                Message::SetChunkSize(be32(p))
            }
            MessageType::ABORT => {
                need(msg_type, p, 4)?;
                Message::Abort { csid: be32(p) }
            }
            MessageType::ACKNOWLEDGEMENT => {
                need(msg_type, p, 4)?;
                Message::Acknowledgement { sequence: be32(p) }
            }
            MessageType::WINDOW_ACK_SIZE => {
                need(msg_type, p, 4)?;
                Message::WindowAckSize(be32(p))
            }
            MessageType::SET_PEER_BANDWIDTH => {
                need(msg_type, p, 5)?;
                Message::SetPeerBandwidth {
                    size: be32(p),
                    limit: LimitType(p[4]),
                }
            }
            MessageType::USER_CONTROL => {
                need(msg_type, p, 2)?;
                let event_type = u16::from_be_bytes([p[0], p[1]]);
                let d = &p[2..];
                let word = |n: usize| -> Result<u32, MessageError> {
                    need(msg_type, p, 2 + n)?;
                    Ok(be32(&d[n - 4..n]))
                };
                Message::UserControl(match event_type {
                    0 => UserControl::StreamBegin(word(4)?),
                    1 => UserControl::StreamEof(word(4)?),
                    2 => UserControl::StreamDry(word(4)?),
                    3 => UserControl::SetBufferLength {
                        stream_id: word(4)?,
                        buffer_ms: word(8)?,
                    },
                    4 => UserControl::StreamIsRecorded(word(4)?),
                    6 => UserControl::PingRequest(word(4)?),
                    7 => UserControl::PingResponse(word(4)?),
                    _ => UserControl::Unknown {
                        event_type,
                        data: payload.slice(2..),
                    },
                })
            }
            MessageType::AUDIO => Message::Audio(payload),
            MessageType::VIDEO => Message::Video(payload),
            MessageType::COMMAND_AMF0 | MessageType::COMMAND_AMF3 => {
                let (encoding, values) = decode_values(msg_type, p)?;
                Message::Command(Command { encoding, values })
            }
            MessageType::DATA_AMF0 | MessageType::DATA_AMF3 => {
                let (encoding, values) = decode_values(msg_type, p)?;
                Message::Data(DataMessage { encoding, values })
            }
            MessageType::SHARED_OBJECT_AMF0 => Message::SharedObject {
                encoding: Encoding::Amf0,
                payload,
            },
            MessageType::SHARED_OBJECT_AMF3 => {
                need(msg_type, p, 1)?;
                Message::SharedObject {
                    encoding: Encoding::Amf3 { format: p[0] },
                    payload: payload.slice(1..),
                }
            }
            MessageType::AGGREGATE => Message::Aggregate(payload),
            _ => Message::Unknown { msg_type, payload },
        })
    }

    /// The type id this message is sent with.
    pub fn msg_type(&self) -> MessageType {
        match self {
            Message::SetChunkSize(_) => MessageType::SET_CHUNK_SIZE,
            Message::Abort { .. } => MessageType::ABORT,
            Message::Acknowledgement { .. } => MessageType::ACKNOWLEDGEMENT,
            Message::UserControl(_) => MessageType::USER_CONTROL,
            Message::WindowAckSize(_) => MessageType::WINDOW_ACK_SIZE,
            Message::SetPeerBandwidth { .. } => MessageType::SET_PEER_BANDWIDTH,
            Message::Audio(_) => MessageType::AUDIO,
            Message::Video(_) => MessageType::VIDEO,
            Message::Command(c) => match c.encoding {
                Encoding::Amf0 => MessageType::COMMAND_AMF0,
                Encoding::Amf3 { .. } => MessageType::COMMAND_AMF3,
            },
            Message::Data(d) => match d.encoding {
                Encoding::Amf0 => MessageType::DATA_AMF0,
                Encoding::Amf3 { .. } => MessageType::DATA_AMF3,
            },
            Message::SharedObject { encoding, .. } => match encoding {
                Encoding::Amf0 => MessageType::SHARED_OBJECT_AMF0,
                Encoding::Amf3 { .. } => MessageType::SHARED_OBJECT_AMF3,
            },
            Message::Aggregate(_) => MessageType::AGGREGATE,
            Message::Unknown { msg_type, .. } => *msg_type,
        }
    }

    /// Encodes the body.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::new();
        match self {
            Message::SetChunkSize(v)
            | Message::Abort { csid: v }
            | Message::Acknowledgement { sequence: v }
            | Message::WindowAckSize(v) => out.put_u32(*v),
            Message::SetPeerBandwidth { size, limit } => {
                out.put_u32(*size);
                out.put_u8(limit.0);
            }
            Message::UserControl(uc) => {
                out.put_u16(uc.event_type());
                match uc {
                    UserControl::StreamBegin(v)
                    | UserControl::StreamEof(v)
                    | UserControl::StreamDry(v)
                    | UserControl::StreamIsRecorded(v)
                    | UserControl::PingRequest(v)
                    | UserControl::PingResponse(v) => out.put_u32(*v),
                    UserControl::SetBufferLength {
                        stream_id,
                        buffer_ms,
                    } => {
                        out.put_u32(*stream_id);
                        out.put_u32(*buffer_ms);
                    }
                    UserControl::Unknown { data, .. } => out.put_slice(data),
                }
            }
            Message::Audio(b) | Message::Video(b) | Message::Aggregate(b) => return b.clone(),
            Message::Unknown { payload, .. } => return payload.clone(),
            Message::Command(Command { encoding, values })
            | Message::Data(DataMessage { encoding, values }) => {
                if let Encoding::Amf3 { format } = encoding {
                    out.put_u8(*format);
                }
                // One encoder for the whole message: AMF3 values after 0x11
                // switches share their reference tables within a message.
                out.extend_from_slice(&amf0::encode_all(values));
            }
            Message::SharedObject { encoding, payload } => {
                if let Encoding::Amf3 { format } = encoding {
                    out.put_u8(*format);
                }
                out.put_slice(payload);
            }
        }
        Bytes::from(out)
    }
}

fn decode_values(
    msg_type: MessageType,
    p: &[u8],
) -> Result<(Encoding, Vec<Amf0Value>), MessageError> {
    let (encoding, body) = if matches!(msg_type, MessageType::COMMAND_AMF3 | MessageType::DATA_AMF3)
    {
        // "AMF3" command/data messages start with a format byte, then AMF0 values;
        // an AMF3 value inside is introduced by the AVM+ marker 0x11.
        need(msg_type, p, 1)?;
        (Encoding::Amf3 { format: p[0] }, &p[1..])
    } else {
        (Encoding::Amf0, p)
    };
    let values = amf0::decode_all(body).map_err(|source| MessageError::Amf { msg_type, source })?;
    Ok((encoding, values))
}

/// One sub-message of an aggregate message (type 22): an FLV tag without the
/// stream's framing, followed by a 4-byte back pointer.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatePart {
    /// Message type.
    pub msg_type: MessageType,
    /// Timestamp (24 bits + extension byte).
    pub timestamp: u32,
    /// Stream id (24 bits).
    pub stream_id: u32,
    /// Body.
    pub payload: Bytes,
}

/// Splits an aggregate message body into its parts; stops with an error at the
/// first part that does not fit (the parts before it are returned).
pub fn aggregate_parts(body: &Bytes) -> (Vec<AggregatePart>, Option<MessageError>) {
    let mut parts = Vec::new();
    let mut pos = 0usize;
    while pos < body.len() {
        let rest = &body[pos..];
        if rest.len() < 11 {
            return (
                parts,
                Some(MessageError::TooShort {
                    msg_type: MessageType::AGGREGATE,
                    len: rest.len(),
                    needed: 11,
                }),
            );
        }
        let size =
            (u32::from(rest[1]) << 16 | u32::from(rest[2]) << 8 | u32::from(rest[3])) as usize;
        let timestamp = u32::from(rest[7]) << 24
            | u32::from(rest[4]) << 16
            | u32::from(rest[5]) << 8
            | u32::from(rest[6]);
        let stream_id = u32::from(rest[8]) << 16 | u32::from(rest[9]) << 8 | u32::from(rest[10]);
        let total = 11 + size + 4;
        if rest.len() < total {
            return (
                parts,
                Some(MessageError::TooShort {
                    msg_type: MessageType::AGGREGATE,
                    len: rest.len(),
                    needed: total,
                }),
            );
        }
        parts.push(AggregatePart {
            msg_type: MessageType(rest[0]),
            timestamp,
            stream_id,
            payload: body.slice(pos + 11..pos + 11 + size),
        });
        pos += total;
    }
    (parts, None)
}

/// Splits an aggregate message (type 22, RTMP 1.0 §7.1.6) into the messages
/// it carries, on the stream's timescale: "the difference between the
/// timestamps of the aggregate message and the first sub-message is the
/// offset used to renormalize the timestamps of the sub-messages", and "the
/// message stream ID of the aggregate message overrides the message stream
/// IDs for the sub-messages". So the first part gets `timestamp` (the
/// aggregate's), each later part `timestamp + (its own - the first's)`
/// (modulo 2^32, as RTMP timestamps wrap), and every part `stream_id`.
///
/// A pure function over the body, for every consumer (the client session
/// for `play`, capture analysis for `dump`). Stops at the first part that
/// does not fit, returning the parts before it and why.
pub fn split_aggregate(
    timestamp: u32,
    stream_id: u32,
    body: &Bytes,
) -> (Vec<AggregatePart>, Option<MessageError>) {
    let (mut parts, err) = aggregate_parts(body);
    if let Some(first) = parts.first().map(|p| p.timestamp) {
        for p in &mut parts {
            p.timestamp = timestamp.wrapping_add(p.timestamp.wrapping_sub(first));
            p.stream_id = stream_id;
        }
    }
    (parts, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_in_either_data_encoding() {
        let meta = b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00\x00\x00\x09".to_vec();
        let mut sdf = b"\x02\x00\x0d@setDataFrame".to_vec();
        sdf.extend_from_slice(&meta);
        let amf3 = [&[0u8][..], &meta].concat();
        assert!(is_metadata(MessageType::DATA_AMF0, &meta));
        assert!(is_metadata(MessageType::DATA_AMF0, &sdf));
        assert!(is_metadata(MessageType::DATA_AMF3, &amf3));
        assert!(is_metadata(
            MessageType::DATA_AMF3,
            &[&[0u8][..], &sdf].concat()
        ));
        // Not the AMF3 format byte, another handler, another type.
        assert!(!is_metadata(MessageType::DATA_AMF3, &meta));
        assert!(!is_metadata(
            MessageType::DATA_AMF0,
            b"\x02\x00\x0aonTextData"
        ));
        let mut sdf_text = b"\x02\x00\x0d@setDataFrame".to_vec();
        sdf_text.extend_from_slice(b"\x02\x00\x0aonTextData");
        assert!(!is_metadata(MessageType::DATA_AMF0, &sdf_text));
        assert!(!is_metadata(MessageType::AUDIO, &meta));
    }
    use proptest::prelude::*;

    fn round_trip(m: &Message) -> Message {
        Message::decode(m.msg_type(), m.encode()).unwrap()
    }

    /// Byte layouts from RTMP 1.0 §5.4 and §7.1.7.
    #[test]
    fn control_message_layouts() {
        let cases: Vec<(Message, &[u8])> = vec![
            (Message::SetChunkSize(4096), &[0, 0, 0x10, 0]),
            (Message::Abort { csid: 6 }, &[0, 0, 0, 6]),
            (
                Message::Acknowledgement {
                    sequence: 5_000_000,
                },
                &[0, 0x4C, 0x4B, 0x40],
            ),
            (Message::WindowAckSize(2_500_000), &[0, 0x26, 0x25, 0xA0]),
            (
                Message::SetPeerBandwidth {
                    size: 5_000_000,
                    limit: LimitType::DYNAMIC,
                },
                &[0, 0x4C, 0x4B, 0x40, 2],
            ),
            (
                Message::UserControl(UserControl::StreamBegin(1)),
                &[0, 0, 0, 0, 0, 1],
            ),
            (
                Message::UserControl(UserControl::SetBufferLength {
                    stream_id: 1,
                    buffer_ms: 3000,
                }),
                &[0, 3, 0, 0, 0, 1, 0, 0, 0x0B, 0xB8],
            ),
            (
                Message::UserControl(UserControl::PingRequest(0x01020304)),
                &[0, 6, 1, 2, 3, 4],
            ),
            (
                Message::UserControl(UserControl::PingResponse(7)),
                &[0, 7, 0, 0, 0, 7],
            ),
            (
                Message::UserControl(UserControl::Unknown {
                    event_type: 31,
                    data: Bytes::from_static(&[0, 0, 0, 1]),
                }),
                &[0, 31, 0, 0, 0, 1],
            ),
        ];
        for (m, bytes) in cases {
            assert_eq!(m.encode().as_ref(), bytes, "{m:?}");
            assert_eq!(round_trip(&m), m);
        }
    }

    #[test]
    fn short_bodies_are_clean_errors() {
        for t in [1u8, 2, 3, 4, 5, 6, 15, 16, 17] {
            let r = Message::decode(MessageType(t), Bytes::new());
            assert!(
                matches!(r, Err(MessageError::TooShort { .. })),
                "type {t}: {r:?}"
            );
        }
        // Set Buffer Length needs 8 bytes of event data.
        let r = Message::decode(
            MessageType::USER_CONTROL,
            Bytes::from_static(&[0, 3, 0, 0, 0, 1]),
        );
        assert!(matches!(r, Err(MessageError::TooShort { needed: 10, .. })));
    }

    /// FFmpeg's connect command, cut from a capture (testdata/amf).
    #[test]
    fn ffmpeg_connect() {
        let body = Bytes::from_static(include_bytes!("../../testdata/amf/ffmpeg_connect.bin"));
        let m = Message::decode(MessageType::COMMAND_AMF0, body.clone()).unwrap();
        let Message::Command(c) = &m else {
            panic!("not a command: {m:?}")
        };
        assert_eq!(c.name(), "connect");
        assert_eq!(c.transaction_id(), Some(1.0));
        let obj = c.command_object().unwrap();
        assert_eq!(obj.get("app").and_then(|v| v.as_str()), Some("live"));
        // Byte-exact re-encoding.
        assert_eq!(m.encode(), body);
    }

    #[test]
    fn amf3_command_form() {
        let body = Bytes::from_static(include_bytes!(
            "../../testdata/amf/pyclient_amf3_connect.bin"
        ));
        let m = Message::decode(MessageType::COMMAND_AMF3, body.clone()).unwrap();
        let Message::Command(c) = &m else {
            panic!("not a command: {m:?}")
        };
        assert_eq!(c.encoding, Encoding::Amf3 { format: 0 });
        assert_eq!(c.name(), "connect");
        assert_eq!(m.msg_type(), MessageType::COMMAND_AMF3);
    }

    #[test]
    fn aggregate_split() {
        // Two sub-messages: audio (3 bytes, ts 0x01000010) and video (2 bytes).
        let mut b = Vec::new();
        b.extend_from_slice(&[8, 0, 0, 3, 0, 0, 0x10, 1, 0, 0, 1, 0xAF, 1, 2]);
        b.extend_from_slice(&(11u32 + 3).to_be_bytes());
        b.extend_from_slice(&[9, 0, 0, 2, 0, 0, 0x20, 0, 0, 0, 1, 0x17, 1]);
        b.extend_from_slice(&(11u32 + 2).to_be_bytes());
        let (parts, err) = aggregate_parts(&Bytes::from(b.clone()));
        assert!(err.is_none());
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].timestamp, 0x0100_0010);
        assert_eq!(parts[0].payload.as_ref(), &[0xAF, 1, 2]);
        assert_eq!(parts[1].msg_type, MessageType::VIDEO);
        let (parts, err) = aggregate_parts(&Bytes::from(b[..20].to_vec()));
        assert_eq!(parts.len(), 1);
        assert!(err.is_some());
    }

    #[test]
    fn aggregate_timestamps_are_renormalized() {
        // Sub-timestamps 1000, 1040, 1020 (relative to the first), the
        // aggregate at 5000 on stream 7: parts at 5000, 5040, 5020.
        let mut b = Vec::new();
        for (t, ts) in [(9u8, 1000u32), (8, 1040), (9, 1020)] {
            let data = [t, 1, 2];
            b.push(t);
            b.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
            b.extend_from_slice(&ts.to_be_bytes()[1..]);
            b.push((ts >> 24) as u8);
            b.extend_from_slice(&[0, 0, 1]);
            b.extend_from_slice(&data);
            b.extend_from_slice(&(11 + data.len() as u32).to_be_bytes());
        }
        let body = Bytes::from(b);
        let (parts, err) = split_aggregate(5000, 7, &body);
        assert!(err.is_none());
        let got: Vec<_> = parts
            .iter()
            .map(|p| (p.msg_type.0, p.timestamp, p.stream_id))
            .collect();
        assert_eq!(got, [(9, 5000, 7), (8, 5040, 7), (9, 5020, 7)]);
        // Wrapping: the aggregate just below 2^32, a part 100 ms later.
        let (parts, _) = split_aggregate(u32::MAX - 10, 1, &body);
        assert_eq!(parts[1].timestamp, 29);
        // Empty and cut bodies.
        assert_eq!(split_aggregate(0, 1, &Bytes::new()), (vec![], None));
        let (parts, err) = split_aggregate(0, 1, &body.slice(..20));
        assert_eq!(parts.len(), 1);
        assert!(err.is_some());
    }

    proptest! {
        #[test]
        fn split_aggregate_never_panics(ts in any::<u32>(), body in prop::collection::vec(any::<u8>(), 0..96)) {
            let b = Bytes::from(body);
            let (parts, _) = split_aggregate(ts, 1, &b);
            let total: usize = parts.iter().map(|p| 15 + p.payload.len()).sum();
            prop_assert!(total <= b.len());
            if let Some(p) = parts.first() {
                prop_assert_eq!(p.timestamp, ts);
            }
        }

        #[test]
        fn arbitrary_bodies_never_panic(t in any::<u8>(), body in prop::collection::vec(any::<u8>(), 0..64)) {
            let b = Bytes::from(body);
            if let Ok(m) = Message::decode(MessageType(t), b.clone()) {
                // Whatever decodes re-encodes to a body that decodes the same.
                prop_assert_eq!(Message::decode(m.msg_type(), m.encode()).unwrap(), m);
            }
        }
    }
}
