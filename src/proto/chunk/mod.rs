//! The RTMP chunk stream (RTMP 1.0 §5.3): basic headers in their three csid
//! forms, message headers of fmt 0-3, extended timestamps, Set Chunk Size and
//! Abort applied per direction, and interleaved chunk streams.
//!
//! [`ChunkDecoder`] turns one direction's byte stream into [`RawMessage`]s and
//! [`ChunkEvent`]s; [`ChunkEncoder`] frames messages the way real peers do.
//! Both are sans-IO: bytes in, bytes or events out.

mod decoder;
mod encoder;
mod header;
pub mod walk;

pub use decoder::{
    ChunkDecoder, ChunkError, ChunkEvent, ChunkInfo, DamagedMessage, DecoderConfig, RawMessage,
    ReserveBudget, Skip, UnknownFields,
};
pub use encoder::{ChunkEncoder, EncoderConfig};
pub use header::{BasicHeader, MAX_CSID, MIN_CSID, decode_basic_header, encode_basic_header};

/// The chunk size both directions start with (RTMP 1.0 §5.4.1).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;

/// The largest chunk size Set Chunk Size can announce: 31 bits (RTMP 1.0 §5.4.1).
pub const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;

/// The 24-bit timestamp value that says "the real value is in the extended
/// timestamp field" (RTMP 1.0 §5.3.1.3).
pub const EXTENDED_TIMESTAMP_MARK: u32 = 0x00FF_FFFF;

/// How a peer treats the extended timestamp on type-3 chunks that continue a
/// message whose header carried one.
///
/// RTMP 1.0 §5.3.1.3 says the field is present there too; FFmpeg and librtmp
/// send it, others (older OBS, some servers) do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Type3ExtendedTimestamp {
    /// The 4 bytes are repeated on continuation chunks (the spec's reading).
    Present,
    /// Continuation chunks carry no extended timestamp.
    Absent,
}

/// Header fields of one message, as the chunk layer sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    /// Absolute timestamp in milliseconds (32 bits, wraps).
    pub timestamp: u32,
    /// Message type id.
    pub msg_type: crate::proto::message::MessageType,
    /// Message stream id (little-endian on the wire).
    pub stream_id: u32,
}

/// A 24-bit big-endian field (timestamps and lengths of chunk headers).
#[inline]
pub(crate) fn be24(b: &[u8]) -> u32 {
    u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2])
}

/// A 32-bit big-endian field.
#[inline]
pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests;
