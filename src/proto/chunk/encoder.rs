//! Chunk stream encoder (RTMP 1.0 §5.3.1, §5.3.2): frames messages into chunks
//! with the most compact header the receiver can follow, as FFmpeg, librtmp and
//! nginx-rtmp do.
//!
//! Header choice per message on a csid: fmt 0 for the first message, a new
//! message stream id, or a timestamp that goes backwards; otherwise fmt 1 when
//! length or type changed, fmt 2 when only the delta changed, fmt 3 when the
//! delta repeats. fmt 3 is never used for a new message right after a fmt-0
//! header: the spec lets the fmt-0 timestamp stand as the delta there
//! (§5.3.2.2), but receivers disagree, so the encoder sends a fmt-2 header.

use bytes::BufMut;

use super::header::encode_basic_header;
use super::{DEFAULT_CHUNK_SIZE, EXTENDED_TIMESTAMP_MARK, MessageHeader};

/// Settings of a [`ChunkEncoder`].
#[derive(Debug, Clone)]
pub struct EncoderConfig {
    /// Chunk size at the start (128).
    pub chunk_size: u32,
    /// Repeat the extended timestamp on type-3 continuation chunks, as the spec
    /// says and FFmpeg and librtmp do.
    pub type3_extended_timestamp: bool,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            type3_extended_timestamp: true,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct LastHeader {
    valid: bool,
    timestamp: u32,
    /// `None` right after a fmt-0 header.
    delta: Option<u32>,
    length: u32,
    msg_type: u8,
    stream_id: u32,
}

/// Frames messages into chunks for one direction.
#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    cfg: EncoderConfig,
    chunk_size: u32,
    last: Vec<LastHeader>,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new(EncoderConfig::default())
    }
}

impl ChunkEncoder {
    /// An encoder with the given settings.
    pub fn new(cfg: EncoderConfig) -> Self {
        Self {
            chunk_size: cfg.chunk_size.clamp(1, super::MAX_CHUNK_SIZE),
            cfg,
            last: Vec::new(),
        }
    }

    /// The chunk size used for the next chunks.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Changes the chunk size. The caller sends Set Chunk Size first: the peer
    /// applies it from the chunk after that message.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, super::MAX_CHUNK_SIZE);
    }

    /// Forgets the header state of every csid, so the next message on each
    /// starts with fmt 0 (after an Abort, or for a fresh connection).
    pub fn reset(&mut self) {
        self.last.clear();
    }

    /// The most bytes [`ChunkEncoder::encode`] writes for a payload of
    /// `len` bytes at the current chunk size (to reserve them at once).
    pub fn max_encoded_len(&self, len: usize) -> usize {
        let len = len.min(0xFF_FFFF);
        let chunks = len.div_ceil((self.chunk_size as usize).max(1)).max(1);
        // First header: basic (3) + message (11) + extended timestamp (4);
        // each further chunk: basic (3) + extended timestamp (4).
        len + 18 + (chunks - 1) * 7
    }

    /// Appends the chunks of one message to `out`.
    ///
    /// `csid` must be 2..=65599 and the payload at most 0xFFFFFF bytes (the
    /// 24-bit length field); longer payloads are cut to that length.
    pub fn encode(
        &mut self,
        csid: u32,
        header: &MessageHeader,
        payload: &[u8],
        out: &mut impl BufMut,
    ) {
        let payload = &payload[..payload.len().min(0xFF_FFFF)];
        let length = payload.len() as u32;
        let idx = csid as usize;
        if idx >= self.last.len() {
            self.last.resize(idx + 1, LastHeader::default());
        }
        let last = self.last[idx];
        let msg_type = header.msg_type.0;

        let (fmt, field) = if !last.valid
            || last.stream_id != header.stream_id
            || header.timestamp < last.timestamp
        {
            (0u8, header.timestamp)
        } else {
            let delta = header.timestamp - last.timestamp;
            if last.length != length || last.msg_type != msg_type {
                (1, delta)
            } else if last.delta != Some(delta) {
                (2, delta)
            } else {
                (3, delta)
            }
        };
        let ext = field >= EXTENDED_TIMESTAMP_MARK;
        let ts24 = if ext { EXTENDED_TIMESTAMP_MARK } else { field };

        encode_basic_header(fmt, csid, out);
        if fmt <= 2 {
            put_u24(out, ts24);
        }
        if fmt <= 1 {
            put_u24(out, length);
            out.put_u8(msg_type);
        }
        if fmt == 0 {
            out.put_u32_le(header.stream_id);
        }
        // A fmt-3 header for a new message carries the extended field too when
        // the header it repeats did.
        if ext {
            out.put_u32(field);
        }

        let size = self.chunk_size as usize;
        let mut chunks = payload.chunks(size);
        if let Some(first) = chunks.next() {
            out.put_slice(first);
        }
        for rest in chunks {
            encode_basic_header(3, csid, out);
            if ext && self.cfg.type3_extended_timestamp {
                out.put_u32(field);
            }
            out.put_slice(rest);
        }

        self.last[idx] = LastHeader {
            valid: true,
            timestamp: header.timestamp,
            delta: if fmt == 0 { None } else { Some(field) },
            length,
            msg_type,
            stream_id: header.stream_id,
        };
    }
}

fn put_u24(out: &mut impl BufMut, v: u32) {
    out.put_u8((v >> 16) as u8);
    out.put_u8((v >> 8) as u8);
    out.put_u8(v as u8);
}
