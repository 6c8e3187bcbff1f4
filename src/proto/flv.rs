//! FLV files as specified in Adobe's "Video File Format Specification" v10.1,
//! Annex E: the FLV header (E.2), the body of PreviousTagSize fields and tags
//! (E.3), and the tag header (E.4.1: reserved bits, Filter, TagType, 24-bit
//! DataSize, 24-bit Timestamp + TimestampExtended as the high byte, StreamID).
//!
//! [`Reader`] is a streaming, sans-IO decoder: push bytes, poll events; "need more
//! bytes" is `Ok(None)`. Peers' mistakes that do not stop decoding (a wrong
//! PreviousTagSize, a non-zero StreamID) are reported as [`FlvWarning`] events,
//! not errors. Tag data is handed out as [`Bytes`] split from the input buffer
//! (no copy), and nothing is allocated from a length read from the file: a tag's
//! data is only taken once all of it has been pushed.
//!
//! [`Writer`] writes a header, PreviousTagSize0 and tags with correct
//! PreviousTagSize fields. The facts of audio/video tag bodies are in
//! [`crate::proto::media`]. Script data tags (type 18, e.g. `onMetaData`) are kept
//! as raw bytes here; decoding them is the job of `crate::proto::amf0::decode_all`
//! applied to [`Tag::data`] (see [`Tag::is_script`]).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Serialize;
use thiserror::Error;

/// Length of the FLV header (version 1).
pub const HEADER_LEN: usize = 9;
/// Length of a tag header.
pub const TAG_HEADER_LEN: usize = 11;
/// Largest tag data size (24-bit DataSize).
pub const MAX_DATA_SIZE: usize = 0xff_ffff;

/// Why an FLV stream could not be decoded (every variant names a file offset).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FlvError {
    /// The first three bytes are not "FLV".
    #[error("not an FLV file: signature at offset 0 is {found:02x?}, expected \"FLV\" (46 4c 56)")]
    BadSignature {
        /// The bytes found.
        found: [u8; 3],
    },
    /// The header's DataOffset is smaller than the header itself.
    #[error("FLV header at offset 0: DataOffset {data_offset} is less than the 9-byte header")]
    BadDataOffset {
        /// DataOffset as sent.
        data_offset: u32,
    },
    /// The input ended inside the FLV header.
    #[error("truncated FLV header at offset 0: {needed} bytes needed, {present} present")]
    TruncatedHeader {
        /// Bytes the header needs (9, or DataOffset).
        needed: u64,
        /// Bytes present.
        present: u64,
    },
    /// The input ended inside a PreviousTagSize field.
    #[error("truncated PreviousTagSize at offset {offset}: 4 bytes needed, {present} present")]
    TruncatedPreviousTagSize {
        /// File offset of the field.
        offset: u64,
        /// Bytes present.
        present: usize,
    },
    /// The input ended inside a tag header.
    #[error("truncated tag header at offset {offset}: 11 bytes needed, {present} present")]
    TruncatedTagHeader {
        /// File offset of the tag.
        offset: u64,
        /// Bytes present.
        present: usize,
    },
    /// The input ended inside a tag's data.
    #[error("truncated tag at offset {offset}: header says {data_size} bytes, {present} present")]
    TruncatedTag {
        /// File offset of the tag header.
        offset: u64,
        /// DataSize from the tag header.
        data_size: u32,
        /// Data bytes present.
        present: usize,
    },
    /// A tag to write has more data than DataSize can express.
    #[error("tag data of {len} bytes exceeds the FLV limit of 16777215")]
    DataTooLarge {
        /// Data length.
        len: usize,
    },
    /// A tag to write has a StreamID that does not fit 24 bits.
    #[error("stream id {stream_id} does not fit the 24-bit StreamID field")]
    StreamIdTooLarge {
        /// The stream id.
        stream_id: u32,
    },
}

/// Something odd in the file that does not stop decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum FlvWarning {
    /// A PreviousTagSize field differs from 11 + the previous tag's DataSize (or
    /// from 0 for PreviousTagSize0). Peers write wrong ones; the reader goes on.
    PreviousTagSizeMismatch {
        /// File offset of the PreviousTagSize field.
        offset: u64,
        /// What it should be.
        expected: u32,
        /// What it is.
        got: u32,
    },
    /// StreamID is not 0 ("Always 0").
    NonZeroStreamId {
        /// File offset of the tag.
        offset: u64,
        /// StreamID found.
        stream_id: u32,
    },
    /// DataOffset > 9: bytes between the header and PreviousTagSize0 were skipped.
    ExtraHeaderBytes {
        /// DataOffset as sent.
        data_offset: u32,
    },
    /// The file ends right after the last tag's data, without its PreviousTagSize.
    MissingFinalPreviousTagSize {
        /// File offset where the field should start.
        offset: u64,
    },
}

/// The FLV header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FlvHeader {
    /// Version (1).
    pub version: u8,
    /// TypeFlagsAudio.
    pub has_audio: bool,
    /// TypeFlagsVideo.
    pub has_video: bool,
    /// The reserved flag bits as found (must be 0; kept so a copy is byte-exact).
    pub reserved_flags: u8,
    /// DataOffset: header length (9 for version 1).
    pub data_offset: u32,
}

impl FlvHeader {
    /// A version-1 header with the given flags.
    pub fn new(has_audio: bool, has_video: bool) -> Self {
        FlvHeader {
            version: 1,
            has_audio,
            has_video,
            reserved_flags: 0,
            data_offset: HEADER_LEN as u32,
        }
    }

    /// A version-1 header whose flags say what the tags contain.
    pub fn from_tags<'a>(tags: impl IntoIterator<Item = &'a Tag>) -> Self {
        let (mut a, mut v) = (false, false);
        for t in tags {
            a |= t.tag_type.base() == TagType::AUDIO;
            v |= t.tag_type.base() == TagType::VIDEO;
        }
        FlvHeader::new(a, v)
    }

    /// The TypeFlags byte.
    pub fn flags(&self) -> u8 {
        (self.reserved_flags & !0x05) | (u8::from(self.has_audio) << 2) | u8::from(self.has_video)
    }

    /// Decodes the 9 fixed header bytes.
    pub fn parse(b: &[u8]) -> Result<Option<FlvHeader>, FlvError> {
        // Check the signature on what is there, so a wrong file fails early.
        let sig_len = b.len().min(3);
        if b[..sig_len] != b"FLV"[..sig_len] {
            let mut found = [0u8; 3];
            found[..sig_len].copy_from_slice(&b[..sig_len]);
            return Err(FlvError::BadSignature { found });
        }
        let Some(h) = b.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let flags = h[4];
        let data_offset = u32::from_be_bytes([h[5], h[6], h[7], h[8]]);
        if (data_offset as usize) < HEADER_LEN {
            return Err(FlvError::BadDataOffset { data_offset });
        }
        Ok(Some(FlvHeader {
            version: h[3],
            has_audio: flags & 0x04 != 0,
            has_video: flags & 0x01 != 0,
            reserved_flags: flags & !0x05,
            data_offset,
        }))
    }

    /// Writes the 9 header bytes (DataOffset 9: extra header bytes are not kept).
    pub fn write(&self, out: &mut impl BufMut) {
        out.put_slice(b"FLV");
        out.put_u8(self.version);
        out.put_u8(self.flags());
        out.put_u32(HEADER_LEN as u32);
    }
}

/// The first byte of a tag header: 2 reserved bits, the Filter bit and the 5-bit
/// TagType. Kept whole so unknown and filtered tags survive a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TagType(pub u8);

impl TagType {
    /// Audio (8).
    pub const AUDIO: TagType = TagType(8);
    /// Video (9).
    pub const VIDEO: TagType = TagType(9);
    /// Script data (18).
    pub const SCRIPT: TagType = TagType(18);

    /// The 5-bit TagType alone (without Filter and reserved bits).
    pub fn base(&self) -> TagType {
        TagType(self.0 & 0x1f)
    }

    /// Filter bit: the data is encrypted/filtered (an EncryptionTagHeader and
    /// FilterParams precede the payload), so it does not start with the
    /// audio/video tag header.
    pub fn is_filtered(&self) -> bool {
        self.0 & 0x20 != 0
    }

    /// The 2 reserved bits ("Reserved for FMS, should be 0").
    pub fn reserved(&self) -> u8 {
        self.0 >> 6
    }

    /// Human name of the base type.
    pub fn name(&self) -> String {
        match self.base().0 {
            8 => "audio".into(),
            9 => "video".into(),
            18 => "script data".into(),
            n => format!("unknown tag type {n}"),
        }
    }
}

/// One FLV tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Tag type byte (with Filter and reserved bits).
    pub tag_type: TagType,
    /// Timestamp in ms: 24 bits + TimestampExtended as the high byte.
    pub timestamp: u32,
    /// StreamID (24 bits, always 0 in practice).
    pub stream_id: u32,
    /// Tag data: AUDIODATA, VIDEODATA or SCRIPTDATA.
    pub data: Bytes,
    /// File offset of the tag header (0 for tags not read from a file).
    pub offset: u64,
}

impl Tag {
    /// True for an unfiltered audio tag (data starts with an AudioTagHeader).
    pub fn is_audio(&self) -> bool {
        self.tag_type == TagType::AUDIO
    }

    /// True for an unfiltered video tag (data starts with a VideoTagHeader).
    pub fn is_video(&self) -> bool {
        self.tag_type == TagType::VIDEO
    }

    /// True for an unfiltered script data tag (AMF0: name, then value, e.g.
    /// "onMetaData" + ECMA array; decode with `crate::proto::amf0::decode_all`).
    pub fn is_script(&self) -> bool {
        self.tag_type == TagType::SCRIPT
    }

    /// Bytes the tag takes in a file, without its PreviousTagSize.
    pub fn tag_size(&self) -> usize {
        TAG_HEADER_LEN + self.data.len()
    }
}

/// One thing a [`Reader`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlvEvent {
    /// The file header.
    Header(FlvHeader),
    /// A tag.
    Tag(Tag),
    /// Something odd that did not stop decoding.
    Warning(FlvWarning),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    /// Skipping header bytes beyond the first 9.
    SkipHeader {
        remaining: u64,
    },
    /// Reading a PreviousTagSize; `after_tag` is false for PreviousTagSize0.
    PrevSize {
        expected: u32,
        after_tag: bool,
    },
    TagHeader,
    /// A decoding error was returned; the reader stays failed.
    Failed,
}

/// Streaming FLV reader: [`Reader::push`] bytes, then [`Reader::poll`] until it
/// returns `Ok(None)`; at end of input call [`Reader::finish`].
#[derive(Debug)]
pub struct Reader {
    buf: BytesMut,
    /// File offset of `buf[0]`.
    offset: u64,
    state: State,
    error: Option<FlvError>,
    /// A tag held back while its warning is reported first.
    pending: Option<Tag>,
}

impl Default for Reader {
    fn default() -> Self {
        Self::new()
    }
}

impl Reader {
    /// A reader at the start of a file.
    pub fn new() -> Self {
        Reader {
            buf: BytesMut::new(),
            offset: 0,
            state: State::Header,
            error: None,
            pending: None,
        }
    }

    /// Appends input bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.state != State::Failed {
            self.buf.extend_from_slice(data);
        }
    }

    /// File offset of the next byte not yet consumed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes pushed but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn advance(&mut self, n: usize) {
        self.buf.advance(n);
        self.offset += n as u64;
    }

    fn fail(&mut self, e: FlvError) -> Result<Option<FlvEvent>, FlvError> {
        self.state = State::Failed;
        self.buf = BytesMut::new();
        self.error = Some(e.clone());
        Err(e)
    }

    /// The next event, `Ok(None)` if more bytes are needed. After an error, the
    /// same error is returned again.
    pub fn poll(&mut self) -> Result<Option<FlvEvent>, FlvError> {
        if let Some(tag) = self.pending.take() {
            return Ok(Some(FlvEvent::Tag(tag)));
        }
        loop {
            match self.state {
                State::Failed => {
                    return Err(self.error.clone().unwrap_or(FlvError::TruncatedHeader {
                        needed: HEADER_LEN as u64,
                        present: 0,
                    }));
                }
                State::Header => {
                    let h = match FlvHeader::parse(&self.buf) {
                        Ok(Some(h)) => h,
                        Ok(None) => return Ok(None),
                        Err(e) => return self.fail(e),
                    };
                    self.advance(HEADER_LEN);
                    let extra = u64::from(h.data_offset) - HEADER_LEN as u64;
                    self.state = if extra > 0 {
                        State::SkipHeader { remaining: extra }
                    } else {
                        State::PrevSize {
                            expected: 0,
                            after_tag: false,
                        }
                    };
                    return Ok(Some(FlvEvent::Header(h)));
                }
                State::SkipHeader { remaining } => {
                    // Skip as bytes arrive: DataOffset is untrusted and may be huge.
                    let n = (self.buf.len() as u64).min(remaining) as usize;
                    self.advance(n);
                    let left = remaining - n as u64;
                    if left > 0 {
                        self.state = State::SkipHeader { remaining: left };
                        return Ok(None);
                    }
                    self.state = State::PrevSize {
                        expected: 0,
                        after_tag: false,
                    };
                    let data_offset = self.offset.min(u64::from(u32::MAX)) as u32;
                    return Ok(Some(FlvEvent::Warning(FlvWarning::ExtraHeaderBytes {
                        data_offset,
                    })));
                }
                State::PrevSize { expected, .. } => {
                    if self.buf.len() < 4 {
                        return Ok(None);
                    }
                    let at = self.offset;
                    let got = self.buf.get_u32();
                    self.offset += 4;
                    self.state = State::TagHeader;
                    if got != expected {
                        return Ok(Some(FlvEvent::Warning(
                            FlvWarning::PreviousTagSizeMismatch {
                                offset: at,
                                expected,
                                got,
                            },
                        )));
                    }
                }
                State::TagHeader => {
                    let Some(h) = self.buf.get(..TAG_HEADER_LEN) else {
                        return Ok(None);
                    };
                    let tag_type = TagType(h[0]);
                    let data_size = u32::from_be_bytes([0, h[1], h[2], h[3]]);
                    let timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
                    let stream_id = u32::from_be_bytes([0, h[8], h[9], h[10]]);
                    let total = TAG_HEADER_LEN + data_size as usize;
                    if self.buf.len() < total {
                        // Wait; never reserve `total` from an untrusted size.
                        return Ok(None);
                    }
                    let offset = self.offset;
                    self.advance(TAG_HEADER_LEN);
                    let data = self.buf.split_to(data_size as usize).freeze();
                    self.offset += u64::from(data_size);
                    self.state = State::PrevSize {
                        expected: total as u32,
                        after_tag: true,
                    };
                    let tag = Tag {
                        tag_type,
                        timestamp,
                        stream_id,
                        data,
                        offset,
                    };
                    if stream_id != 0 {
                        // Report the warning first, then the tag on the next poll.
                        self.pending_tag(tag);
                        return Ok(Some(FlvEvent::Warning(FlvWarning::NonZeroStreamId {
                            offset,
                            stream_id,
                        })));
                    }
                    return Ok(Some(FlvEvent::Tag(tag)));
                }
            }
        }
    }

    /// Keeps a tag aside to hand out on the next poll.
    fn pending_tag(&mut self, tag: Tag) {
        self.pending = Some(tag);
    }

    /// Call at end of input: `Ok(None)` for a clean end, `Ok(Some(warning))` for a
    /// file missing only its last PreviousTagSize, or the error saying what is
    /// truncated and where.
    pub fn finish(&mut self) -> Result<Option<FlvWarning>, FlvError> {
        let present = self.buf.len();
        match self.state {
            State::Failed => Err(self.error.clone().unwrap_or(FlvError::TruncatedHeader {
                needed: HEADER_LEN as u64,
                present: 0,
            })),
            State::Header => Err(FlvError::TruncatedHeader {
                needed: HEADER_LEN as u64,
                present: present as u64,
            }),
            State::SkipHeader { remaining } => Err(FlvError::TruncatedHeader {
                needed: self.offset + remaining,
                present: self.offset,
            }),
            State::PrevSize {
                after_tag: true, ..
            } if present == 0 => Ok(Some(FlvWarning::MissingFinalPreviousTagSize {
                offset: self.offset,
            })),
            State::PrevSize { .. } => Err(FlvError::TruncatedPreviousTagSize {
                offset: self.offset,
                present,
            }),
            State::TagHeader if present == 0 => Ok(None),
            State::TagHeader if present < TAG_HEADER_LEN => Err(FlvError::TruncatedTagHeader {
                offset: self.offset,
                present,
            }),
            State::TagHeader => Err(FlvError::TruncatedTag {
                offset: self.offset,
                data_size: u32::from_be_bytes([0, self.buf[1], self.buf[2], self.buf[3]]),
                present: present - TAG_HEADER_LEN,
            }),
        }
    }
}

/// Reads a whole FLV file: header, tags and warnings (a missing final
/// PreviousTagSize included), or the first error.
pub fn read_all(data: &[u8]) -> Result<(FlvHeader, Vec<Tag>, Vec<FlvWarning>), FlvError> {
    let mut r = Reader::new();
    r.push(data);
    let mut header = None;
    let mut tags = Vec::new();
    let mut warnings = Vec::new();
    while let Some(ev) = r.poll()? {
        match ev {
            FlvEvent::Header(h) => header = Some(h),
            FlvEvent::Tag(t) => tags.push(t),
            FlvEvent::Warning(w) => warnings.push(w),
        }
    }
    warnings.extend(r.finish()?);
    match header {
        Some(h) => Ok((h, tags, warnings)),
        // finish() already failed for a missing header; this keeps the type honest.
        None => Err(FlvError::TruncatedHeader {
            needed: HEADER_LEN as u64,
            present: data.len() as u64,
        }),
    }
}

/// FLV writer: [`Writer::write_header`] once, then [`Writer::write_tag`] per tag.
/// Each tag is followed by its PreviousTagSize (11 + DataSize).
#[derive(Debug, Default)]
pub struct Writer {
    tags: u64,
}

impl Writer {
    /// A writer for a new file.
    pub fn new() -> Self {
        Writer { tags: 0 }
    }

    /// Writes the 9-byte header and PreviousTagSize0 (0).
    pub fn write_header(&mut self, header: &FlvHeader, out: &mut impl BufMut) {
        header.write(out);
        out.put_u32(0);
    }

    /// Writes one tag and its PreviousTagSize.
    pub fn write_tag(&mut self, tag: &Tag, out: &mut impl BufMut) -> Result<(), FlvError> {
        self.write_tag_parts(tag.tag_type, tag.timestamp, tag.stream_id, &tag.data, out)
    }

    /// Writes one tag from its parts and its PreviousTagSize.
    pub fn write_tag_parts(
        &mut self,
        tag_type: TagType,
        timestamp: u32,
        stream_id: u32,
        data: &[u8],
        out: &mut impl BufMut,
    ) -> Result<(), FlvError> {
        let (head, tail) = self.tag_frame(tag_type, timestamp, stream_id, data.len())?;
        out.put_slice(&head);
        out.put_slice(data);
        out.put_slice(&tail);
        Ok(())
    }

    /// The 11-byte tag header and the 4-byte PreviousTagSize that surround a
    /// body of `len` bytes, for writers that send the body from where it
    /// already is (no copy). Counts the tag as written.
    pub fn tag_frame(
        &mut self,
        tag_type: TagType,
        timestamp: u32,
        stream_id: u32,
        len: usize,
    ) -> Result<([u8; TAG_HEADER_LEN], [u8; 4]), FlvError> {
        if len > MAX_DATA_SIZE {
            return Err(FlvError::DataTooLarge { len });
        }
        if stream_id > 0xff_ffff {
            return Err(FlvError::StreamIdTooLarge { stream_id });
        }
        let size = len as u32;
        let ts = timestamp.to_be_bytes();
        let sz = size.to_be_bytes();
        let sid = stream_id.to_be_bytes();
        // Lower 24 bits of the timestamp first, then TimestampExtended (the
        // high byte).
        let head = [
            tag_type.0, sz[1], sz[2], sz[3], ts[1], ts[2], ts[3], ts[0], sid[1], sid[2], sid[3],
        ];
        self.tags += 1;
        Ok((head, (TAG_HEADER_LEN as u32 + size).to_be_bytes()))
    }

    /// Tags written so far.
    pub fn tags_written(&self) -> u64 {
        self.tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::media::{AudioInfo, SoundFormat, VideoInfo};
    use proptest::prelude::*;

    /// The FLVs of testdata/rtmp/media with flvinfo.py's per-tag facts.
    const FILES: &[(&str, &[u8], &str)] = &[
        (
            "aac_only_10s.flv",
            include_bytes!("../../testdata/rtmp/media/aac_only_10s.flv"),
            include_str!("../../testdata/rtmp/media/aac_only_10s.tags.json"),
        ),
        (
            "h264_mp3_10s.flv",
            include_bytes!("../../testdata/rtmp/media/h264_mp3_10s.flv"),
            include_str!("../../testdata/rtmp/media/h264_mp3_10s.tags.json"),
        ),
        (
            "h264_only_10s.flv",
            include_bytes!("../../testdata/rtmp/media/h264_only_10s.flv"),
            include_str!("../../testdata/rtmp/media/h264_only_10s.tags.json"),
        ),
        (
            "h264base_aac_10s.flv",
            include_bytes!("../../testdata/rtmp/media/h264base_aac_10s.flv"),
            include_str!("../../testdata/rtmp/media/h264base_aac_10s.tags.json"),
        ),
        (
            "h264base_aac_60s.flv",
            include_bytes!("../../testdata/rtmp/media/h264base_aac_60s.flv"),
            include_str!("../../testdata/rtmp/media/h264base_aac_60s.tags.json"),
        ),
        (
            "h264main_bframes_10s.flv",
            include_bytes!("../../testdata/rtmp/media/h264main_bframes_10s.flv"),
            include_str!("../../testdata/rtmp/media/h264main_bframes_10s.tags.json"),
        ),
    ];

    fn write_all(h: &FlvHeader, tags: &[Tag]) -> BytesMut {
        let mut out = BytesMut::new();
        let mut w = Writer::new();
        w.write_header(h, &mut out);
        for t in tags {
            w.write_tag(t, &mut out).unwrap();
        }
        out
    }

    /// flvinfo.py's codec string for one tag ("F1/C7/P1/cts40", "S10/P0", "S2", "").
    fn codec_string(t: &Tag) -> String {
        if t.is_video() {
            let v = VideoInfo::parse(&t.data).unwrap();
            let mut s = format!("F{}/C{}", v.frame_type.0, v.codec_id.unwrap().0);
            if let Some(p) = v.avc_packet_type {
                s += &format!("/P{}/cts{}", p.0, v.composition_time.unwrap());
            }
            s
        } else if t.is_audio() {
            let a = AudioInfo::parse(&t.data).unwrap();
            let mut s = format!("S{}", a.sound_format.unwrap().0);
            if let Some(p) = a.aac_packet_type {
                s += &format!("/P{p}");
            }
            s
        } else {
            String::new()
        }
    }

    #[test]
    fn media_files_round_trip_byte_exact() {
        for (name, bytes, _) in FILES {
            let (h, tags, warnings) = read_all(bytes).unwrap();
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
            assert_eq!(&write_all(&h, &tags)[..], *bytes, "{name}");
            assert_eq!(FlvHeader::from_tags(&tags).flags(), h.flags(), "{name}");
        }
    }

    /// Every tag against flvinfo.py (an independent reader): offset, type, size,
    /// timestamp, codec facts and CRC-32 of the data; plus the header and counts.
    #[test]
    fn media_files_match_flvinfo_tags() {
        for (name, bytes, json) in FILES {
            let facts: serde_json::Value = serde_json::from_str(json).unwrap();
            let (h, tags, _) = read_all(bytes).unwrap();
            assert_eq!(facts["file"], *name);
            assert_eq!(facts["flv_version"], u64::from(h.version));
            assert_eq!(facts["has_audio"], h.has_audio, "{name}");
            assert_eq!(facts["has_video"], h.has_video, "{name}");
            let want = facts["tags"].as_array().unwrap();
            assert_eq!(want.len(), tags.len(), "{name}: tag count");
            assert_eq!(facts["tag_count"], tags.len() as u64);
            let mut keyframes = 0;
            let mut cts = (i32::MAX, i32::MIN);
            for (t, w) in tags.iter().zip(want) {
                let ctx = format!("{name} tag at {}", t.offset);
                assert_eq!(w[0], t.offset, "{ctx}: offset");
                assert_eq!(w[1], u64::from(t.tag_type.0), "{ctx}: type");
                assert_eq!(w[2], t.data.len() as u64, "{ctx}: size");
                assert_eq!(w[3], u64::from(t.timestamp), "{ctx}: timestamp");
                assert_eq!(w[4], codec_string(t).as_str(), "{ctx}: codec");
                let crc = format!("{:08x}", crc32fast::hash(&t.data));
                assert_eq!(w[5], crc.as_str(), "{ctx}: CRC-32");
                if t.is_video() {
                    let v = VideoInfo::parse(&t.data).unwrap();
                    keyframes += usize::from(v.is_keyframe());
                    if v.is_coded_frames() {
                        let c = v.composition_time.unwrap();
                        cts = (cts.0.min(c), cts.1.max(c));
                    }
                }
                if t.is_audio() {
                    let a = AudioInfo::parse(&t.data).unwrap();
                    assert_ne!(a.sound_format, Some(SoundFormat::EX_HEADER));
                }
            }
            assert_eq!(facts["video_keyframes"], keyframes as u64, "{name}");
            if keyframes > 0 {
                assert_eq!(facts["cts_min"], i64::from(cts.0), "{name}");
                assert_eq!(facts["cts_max"], i64::from(cts.1), "{name}");
            }
        }
    }

    #[test]
    fn streaming_in_odd_chunks_equals_read_all() {
        let bytes = FILES[5].1;
        let (h, tags, _) = read_all(bytes).unwrap();
        let mut r = Reader::new();
        let mut got = Vec::new();
        let mut header = None;
        // Chunk sizes 1, 2, 3, ... 97, repeating: splits every field somewhere.
        let mut pos = 0;
        let mut n = 1;
        while pos < bytes.len() {
            let end = (pos + n).min(bytes.len());
            r.push(&bytes[pos..end]);
            pos = end;
            n = n % 97 + 1;
            while let Some(ev) = r.poll().unwrap() {
                match ev {
                    FlvEvent::Header(x) => header = Some(x),
                    FlvEvent::Tag(t) => got.push(t),
                    FlvEvent::Warning(w) => panic!("{w:?}"),
                }
            }
        }
        assert_eq!(r.finish().unwrap(), None);
        assert_eq!(header, Some(h));
        assert_eq!(got, tags);
    }

    #[test]
    fn every_truncated_prefix_is_need_more_or_clean_error() {
        // Header + the first tags of a real file (script, AVC config, AAC config,
        // key frame, ...), about 4 KB.
        let bytes = &FILES[5].1[..4400];
        let (_, full_tags, _) = read_all(FILES[5].1).unwrap();
        for n in 0..=bytes.len() {
            let p = &bytes[..n];
            let mut r = Reader::new();
            r.push(p);
            let mut tags = 0;
            while let Some(ev) = r.poll().unwrap() {
                if let FlvEvent::Tag(t) = ev {
                    assert_eq!(t, full_tags[tags], "prefix {n}");
                    tags += 1;
                }
            }
            match r.finish() {
                Ok(None) => {}
                Ok(Some(FlvWarning::MissingFinalPreviousTagSize { offset })) => {
                    assert_eq!(offset, n as u64)
                }
                Ok(Some(w)) => panic!("prefix {n}: {w:?}"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains("truncated"), "prefix {n}: {msg}");
                    assert!(!matches!(
                        e,
                        FlvError::BadSignature { .. } | FlvError::BadDataOffset { .. }
                    ));
                }
            }
        }
        // Specific messages.
        let e = read_all(&bytes[..200]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "truncated tag at offset 13: header says 268 bytes, 176 present"
        );
        let e = read_all(&bytes[..300]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "truncated tag header at offset 296: 11 bytes needed, 4 present"
        );
        assert_eq!(
            read_all(&bytes[..5]).unwrap_err(),
            FlvError::TruncatedHeader {
                needed: 9,
                present: 5
            }
        );
        assert_eq!(
            read_all(&bytes[..11]).unwrap_err(),
            FlvError::TruncatedPreviousTagSize {
                offset: 9,
                present: 2
            }
        );
    }

    #[test]
    fn hostile_sizes_never_allocate_big() {
        // Tag DataSize 0xFFFFFF with 10 data bytes present.
        let mut f = Vec::new();
        f.extend_from_slice(b"FLV\x01\x05\0\0\0\x09\0\0\0\0");
        f.extend_from_slice(&[9, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0]);
        f.extend_from_slice(&[0x17; 10]);
        let mut r = Reader::new();
        r.push(&f);
        assert!(matches!(r.poll(), Ok(Some(FlvEvent::Header(_)))));
        assert_eq!(r.poll(), Ok(None));
        assert!(r.buf.capacity() < 4096, "capacity {}", r.buf.capacity());
        assert_eq!(
            r.finish().unwrap_err().to_string(),
            "truncated tag at offset 13: header says 16777215 bytes, 10 present"
        );
        // DataOffset 0xFFFFFFFF: skipped as bytes come, nothing reserved.
        let mut r = Reader::new();
        r.push(b"FLV\x01\x05\xff\xff\xff\xff");
        r.push(&[0u8; 1000]);
        assert!(matches!(r.poll(), Ok(Some(FlvEvent::Header(_)))));
        assert_eq!(r.poll(), Ok(None));
        assert_eq!(r.buffered(), 0);
        assert!(matches!(r.finish(), Err(FlvError::TruncatedHeader { .. })));
        // DataOffset < 9 and a wrong signature are clean errors naming offset 0.
        assert_eq!(
            read_all(b"FLV\x01\x05\0\0\0\x05\0\0\0\0").unwrap_err(),
            FlvError::BadDataOffset { data_offset: 5 }
        );
        let e = read_all(b"RIFF....WAVE").unwrap_err();
        assert_eq!(
            e.to_string(),
            "not an FLV file: signature at offset 0 is [52, 49, 46], expected \"FLV\" (46 4c 56)"
        );
        // A wrong signature is seen from the first byte.
        let mut r = Reader::new();
        r.push(b"G");
        assert!(r.poll().is_err());
        assert!(r.poll().is_err(), "stays failed");
    }

    #[test]
    fn warnings_are_data() {
        let bytes = FILES[0].1;
        let (h, tags, _) = read_all(bytes).unwrap();
        // Corrupt the PreviousTagSize after the first tag and PreviousTagSize0.
        let mut f = bytes.to_vec();
        let pts1 = 13 + tags[0].tag_size();
        f[pts1..pts1 + 4].copy_from_slice(&7u32.to_be_bytes());
        f[9..13].copy_from_slice(&1u32.to_be_bytes());
        // Non-zero StreamID on the second tag.
        let t2 = tags[1].offset as usize;
        f[t2 + 10] = 1;
        let (h2, tags2, w) = read_all(&f).unwrap();
        assert_eq!(h2, h);
        assert_eq!(tags2.len(), tags.len());
        assert_eq!(tags2[1].stream_id, 1);
        assert_eq!(
            w,
            vec![
                FlvWarning::PreviousTagSizeMismatch {
                    offset: 9,
                    expected: 0,
                    got: 1
                },
                FlvWarning::PreviousTagSizeMismatch {
                    offset: pts1 as u64,
                    expected: tags[0].tag_size() as u32,
                    got: 7
                },
                FlvWarning::NonZeroStreamId {
                    offset: t2 as u64,
                    stream_id: 1
                },
            ]
        );
        // A file without its final PreviousTagSize.
        let (_, tags3, w) = read_all(&bytes[..bytes.len() - 4]).unwrap();
        assert_eq!(tags3.len(), tags.len());
        assert_eq!(
            w,
            vec![FlvWarning::MissingFinalPreviousTagSize {
                offset: bytes.len() as u64 - 4
            }]
        );
    }

    #[test]
    fn writer_limits_and_header_flags() {
        let mut out = BytesMut::new();
        let mut w = Writer::new();
        let big = vec![0u8; MAX_DATA_SIZE + 1];
        assert_eq!(
            w.write_tag_parts(TagType::VIDEO, 0, 0, &big, &mut out),
            Err(FlvError::DataTooLarge {
                len: MAX_DATA_SIZE + 1
            })
        );
        assert!(out.is_empty());
        assert!(
            w.write_tag_parts(TagType::AUDIO, 0, 1 << 24, b"", &mut out)
                .is_err()
        );
        // Extended timestamp: 0x12345678 = 34 56 78 then 12 (TimestampExtended).
        w.write_tag_parts(TagType::AUDIO, 0x1234_5678, 0, b"\xaf\x01", &mut out)
            .unwrap();
        assert_eq!(
            &out[..],
            b"\x08\x00\x00\x02\x34\x56\x78\x12\x00\x00\x00\xaf\x01\x00\x00\x00\x0d"
        );
        let mut hdr = BytesMut::new();
        Writer::new().write_header(&FlvHeader::new(true, false), &mut hdr);
        assert_eq!(&hdr[..], b"FLV\x01\x04\x00\x00\x00\x09\x00\x00\x00\x00");
        let filtered = TagType(0x28);
        assert!(filtered.is_filtered() && filtered.base() == TagType::AUDIO);
        assert_ne!(filtered, TagType::AUDIO);
        assert_eq!(TagType(0x3f).name(), "unknown tag type 31");
    }

    proptest! {
        #[test]
        fn arbitrary_tags_round_trip(
            audio in any::<bool>(),
            video in any::<bool>(),
            tags in proptest::collection::vec(
                (any::<u8>(), any::<u32>(), 0u32..=0xff_ffff,
                 proptest::collection::vec(any::<u8>(), 0..200)),
                0..12),
            split in any::<prop::sample::Index>(),
        ) {
            let tags: Vec<Tag> = tags.into_iter().map(|(ty, ts, sid, d)| Tag {
                tag_type: TagType(ty), timestamp: ts, stream_id: sid,
                data: Bytes::from(d), offset: 0,
            }).collect();
            let h = FlvHeader::new(audio, video);
            let bytes = write_all(&h, &tags);
            // Read back in two pushes split anywhere.
            let at = split.index(bytes.len() + 1);
            let mut r = Reader::new();
            r.push(&bytes[..at]);
            let mut got = Vec::new();
            let mut header = None;
            let mut drain = |r: &mut Reader, got: &mut Vec<Tag>| {
                while let Some(ev) = r.poll().unwrap() {
                    match ev {
                        FlvEvent::Header(x) => header = Some(x),
                        FlvEvent::Tag(t) => got.push(t),
                        FlvEvent::Warning(FlvWarning::NonZeroStreamId { .. }) => {}
                        FlvEvent::Warning(w) => panic!("{w:?}"),
                    }
                }
            };
            drain(&mut r, &mut got);
            r.push(&bytes[at..]);
            drain(&mut r, &mut got);
            prop_assert_eq!(r.finish().unwrap(), None);
            prop_assert_eq!(header, Some(h));
            prop_assert_eq!(got.len(), tags.len());
            let mut offset = 13u64;
            for (g, t) in got.iter().zip(&tags) {
                prop_assert_eq!(g.offset, offset);
                offset += t.tag_size() as u64 + 4;
                prop_assert_eq!(&Tag { offset: 0, ..g.clone() }, t);
            }
        }

        #[test]
        fn arbitrary_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut f = b"FLV\x01\x05\0\0\0\x09".to_vec();
            f.extend(data);
            let _ = read_all(&f);
        }
    }
}
