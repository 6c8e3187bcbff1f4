//! RTMP messages (RTMP 1.0 §5.4 protocol control messages, §6.2 user control
//! messages, §7.1 message types): what the chunk layer's payloads mean.
//!
//! Wire values stay open: [`MessageType`] and [`UserControl::Unknown`] keep
//! types this module does not know, and [`Message::Unknown`] keeps their
//! payload raw, so a dump can show everything that was sent.





/// A message type id (RTMP 1.0 §5.4, §7.1). Open: unknown ids are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MessageType(pub u8);

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
