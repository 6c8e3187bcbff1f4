//! Facts of one audio or video tag body, shared by FLV tags (types 8/9) and RTMP
//! audio/video messages (types 8/9): the legacy headers of Adobe's FLV spec v10.1
//! (Annex E.4.2.1 `AUDIODATA`/`AudioTagHeader`, E.4.3.1 `VIDEODATA`/`VideoTagHeader`,
//! AVC/AAC packet types and the SI24 `CompositionTime`) and the Enhanced RTMP
//! extensions of veovera/enhanced-rtmp `docs/enhanced/enhanced-rtmp-v2.md`:
//!
//! - "Enhanced Audio": `ExAudioTagHeader` / `ExAudioTagBody` — audio FourCCs
//!   (`ac-3`, `ec-3`, `Opus`, `.mp3`, `fLaC`, `mp4a`), `AudioPacketType`
//!   (SequenceStart, CodedFrames, SequenceEnd, MultichannelConfig, Multitrack,
//!   ModEx) and the `MultichannelConfig` body (`AudioChannelOrder`, channel
//!   count, `audioChannelMapping` / `audioChannelFlags`);
//! - "Enhanced Video": `ExVideoTagHeader` / `ExVideoTagBody` — video FourCCs,
//!   `VideoPacketType` (SequenceStart, CodedFrames with the SI24 composition time
//!   of avc1/hvc1/vvc1, SequenceEnd, CodedFramesX, Metadata,
//!   MPEG2TSSequenceStart, Multitrack, ModEx) and command frames;
//! - the ModEx loop of both headers (`modExDataSize`, `modExData`,
//!   `*PacketModExType`; `TimestampOffsetNano` = UI24 of the data);
//! - "Multitrack Streaming via Enhanced RTMP" and the `AvMultitrackType` of both
//!   bodies: OneTrack (shared FourCC, one `trackId`), ManyTracks (shared FourCC,
//!   `trackId` + UI24 `sizeOfTrack` per track), ManyTracksManyCodecs (FourCC,
//!   `trackId`, size per track), each track's data decoded as a single-track body;
//! - "Metadata Frame": the AMF-encoded `[name, value]` pairs of
//!   `VideoPacketType.Metadata`, with the `colorInfo` object read into [`ColorInfo`].
//!
//! Parsing is sans-IO and never panics: values the spec does not define are kept
//! in open newtypes (they are facts, not errors); a body that ends before a field
//! the header announces yields [`MediaError`] naming the field and the offset.
//! Only the headers are decoded; codec payloads (NAL units, OBUs, AAC frames) are
//! located by offset and length and left to the caller.

use serde::Serialize;
use thiserror::Error;

use crate::proto::amf0::{self, Amf0Value, AmfError};

/// Why an audio/video body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MediaError {
    /// The body ended before a field its header announces.
    #[error("{what} truncated: {needed} byte(s) needed at body offset {offset}, body has {len}")]
    Truncated {
        /// The field that is missing, named as in the spec.
        what: &'static str,
        /// Body offset where the field starts.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Total body length.
        len: usize,
    },
    /// A video body of zero bytes (there is no `VideoTagHeader` to read).
    #[error("empty video body: no VideoTagHeader")]
    EmptyVideo,
    /// A multitrack track says it is longer than what is left of the body.
    #[error(
        "multitrack track {track_id} at body offset {offset} says {size} bytes, only {available} remain"
    )]
    TrackOverrun {
        /// The track's id.
        track_id: u8,
        /// Body offset of the first byte counted by the size.
        offset: usize,
        /// UI24 size as sent.
        size: u32,
        /// Bytes left in the body.
        available: usize,
    },
    /// The packet type after a Multitrack signal was Multitrack again, which the
    /// spec forbids ("This fetch MUST not result in a ...PacketType.Multitrack").
    #[error("nested Multitrack packet type at body offset {offset}")]
    NestedMultitrack {
        /// Body offset of the byte holding the nested packet type.
        offset: usize,
    },
}

/// A FourCC codec id (E-RTMP `VideoFourCc` / `AudioFourCc`): four bytes, big endian
/// relative to the ASCII text (`'av01'` = 0x61763031).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// H.264/AVC.
    pub const AVC1: FourCc = FourCc(*b"avc1");
    /// H.265/HEVC.
    pub const HVC1: FourCc = FourCc(*b"hvc1");
    /// AV1.
    pub const AV01: FourCc = FourCc(*b"av01");
    /// VP8.
    pub const VP08: FourCc = FourCc(*b"vp08");
    /// VP9.
    pub const VP09: FourCc = FourCc(*b"vp09");
    /// H.266/VVC (added in later v2 revisions).
    pub const VVC1: FourCc = FourCc(*b"vvc1");
    /// Opus.
    pub const OPUS: FourCc = FourCc(*b"Opus");
    /// FLAC.
    pub const FLAC: FourCc = FourCc(*b"fLaC");
    /// AC-3.
    pub const AC3: FourCc = FourCc(*b"ac-3");
    /// E-AC-3.
    pub const EAC3: FourCc = FourCc(*b"ec-3");
    /// AAC.
    pub const MP4A: FourCc = FourCc(*b"mp4a");
    /// MP3.
    pub const MP3: FourCc = FourCc(*b".mp3");

    /// The FourCC as text; bytes outside printable ASCII are shown as `\xNN`.
    pub fn text(&self) -> String {
        let mut s = String::with_capacity(4);
        for &b in &self.0 {
            if (0x20..0x7f).contains(&b) && b != b'\\' {
                s.push(b as char);
            } else {
                s.push_str(&format!("\\x{b:02x}"));
            }
        }
        s
    }

    /// Human name of the codec ("HEVC (hvc1)"), or the FourCC text if unknown.
    pub fn codec_name(&self) -> String {
        let name = match *self {
            FourCc::AVC1 => "AVC",
            FourCc::HVC1 => "HEVC",
            FourCc::AV01 => "AV1",
            FourCc::VP08 => "VP8",
            FourCc::VP09 => "VP9",
            FourCc::VVC1 => "VVC",
            FourCc::OPUS => "Opus",
            FourCc::FLAC => "FLAC",
            FourCc::AC3 => "AC-3",
            FourCc::EAC3 => "E-AC-3",
            FourCc::MP4A => "AAC",
            FourCc::MP3 => "MP3",
            _ => return format!("unknown FourCC '{}'", self.text()),
        };
        format!("{name} ({})", self.text())
    }

    /// True for the codecs whose CodedFrames carry an SI24 composition time
    /// (avc1, hvc1, vvc1).
    pub fn has_composition_time(&self) -> bool {
        matches!(*self, FourCc::AVC1 | FourCc::HVC1 | FourCc::VVC1)
    }
}

impl Serialize for FourCc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

/// Video frame type (`UB[3]` in an ex-header, `UB[4]` in a legacy header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct FrameType(pub u8);

impl FrameType {
    /// A seekable frame.
    pub const KEY: FrameType = FrameType(1);
    /// A non-seekable frame.
    pub const INTER: FrameType = FrameType(2);
    /// H.263 only.
    pub const DISPOSABLE_INTER: FrameType = FrameType(3);
    /// Reserved for server use.
    pub const GENERATED_KEY: FrameType = FrameType(4);
    /// Video info / command frame: a UI8 `VideoCommand` instead of video data.
    pub const COMMAND: FrameType = FrameType(5);

    /// Spec name, or "reserved".
    pub fn name(&self) -> &'static str {
        match self.0 {
            1 => "key frame",
            2 => "inter frame",
            3 => "disposable inter frame",
            4 => "generated key frame",
            5 => "video info/command frame",
            _ => "reserved",
        }
    }
}

/// Legacy video `CodecID` (`UB[4]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct VideoCodecId(pub u8);

impl VideoCodecId {
    /// Sorenson H.263.
    pub const SORENSON_H263: VideoCodecId = VideoCodecId(2);
    /// Screen video.
    pub const SCREEN: VideoCodecId = VideoCodecId(3);
    /// On2 VP6.
    pub const VP6: VideoCodecId = VideoCodecId(4);
    /// On2 VP6 with alpha channel.
    pub const VP6_ALPHA: VideoCodecId = VideoCodecId(5);
    /// Screen video version 2.
    pub const SCREEN_V2: VideoCodecId = VideoCodecId(6);
    /// H.264/AVC.
    pub const AVC: VideoCodecId = VideoCodecId(7);
    /// HEVC as sent by some Chinese CDNs / FFmpeg forks (not in any Adobe spec).
    pub const HEVC_NONSTANDARD: VideoCodecId = VideoCodecId(12);
    /// AV1 as sent by some forks (not in any Adobe spec).
    pub const AV1_NONSTANDARD: VideoCodecId = VideoCodecId(13);

    /// Human name.
    pub fn name(&self) -> String {
        match self.0 {
            1 => "JPEG".into(),
            2 => "Sorenson H.263".into(),
            3 => "Screen video".into(),
            4 => "On2 VP6".into(),
            5 => "On2 VP6 with alpha".into(),
            6 => "Screen video v2".into(),
            7 => "AVC".into(),
            12 => "HEVC (non-standard codec id 12)".into(),
            13 => "AV1 (non-standard codec id 13)".into(),
            n => format!("unknown codec id {n}"),
        }
    }

    /// True when the body carries an AVCPacketType and SI24 composition time.
    pub fn has_avc_packet_type(&self) -> bool {
        matches!(self.0, 7 | 12)
    }
}

/// Legacy `AVCPacketType` (also used by codec id 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AvcPacketType(pub u8);

impl AvcPacketType {
    /// AVC sequence header (decoder configuration record).
    pub const SEQUENCE_HEADER: AvcPacketType = AvcPacketType(0);
    /// One or more NAL units.
    pub const NALU: AvcPacketType = AvcPacketType(1);
    /// End of sequence.
    pub const END_OF_SEQUENCE: AvcPacketType = AvcPacketType(2);

    /// Spec name.
    pub fn name(&self) -> String {
        match self.0 {
            0 => "sequence header".into(),
            1 => "NALU".into(),
            2 => "end of sequence".into(),
            n => format!("unknown AVCPacketType {n}"),
        }
    }
}

/// E-RTMP `VideoPacketType` (`UB[4]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct VideoPacketType(pub u8);

impl VideoPacketType {
    /// Codec configuration record.
    pub const SEQUENCE_START: VideoPacketType = VideoPacketType(0);
    /// Coded frames (SI24 composition time for avc1/hvc1/vvc1).
    pub const CODED_FRAMES: VideoPacketType = VideoPacketType(1);
    /// End of sequence.
    pub const SEQUENCE_END: VideoPacketType = VideoPacketType(2);
    /// Coded frames, composition time implied zero.
    pub const CODED_FRAMES_X: VideoPacketType = VideoPacketType(3);
    /// AMF-encoded metadata (e.g. `colorInfo`).
    pub const METADATA: VideoPacketType = VideoPacketType(4);
    /// MPEG-2 TS sequence start (AV1 video descriptor).
    pub const MPEG2TS_SEQUENCE_START: VideoPacketType = VideoPacketType(5);
    /// Turns on multitrack mode.
    pub const MULTITRACK: VideoPacketType = VideoPacketType(6);
    /// Modifier/extension of the current packet.
    pub const MODEX: VideoPacketType = VideoPacketType(7);

    /// Spec name.
    pub fn name(&self) -> String {
        match self.0 {
            0 => "SequenceStart".into(),
            1 => "CodedFrames".into(),
            2 => "SequenceEnd".into(),
            3 => "CodedFramesX".into(),
            4 => "Metadata".into(),
            5 => "MPEG2TSSequenceStart".into(),
            6 => "Multitrack".into(),
            7 => "ModEx".into(),
            n => format!("reserved VideoPacketType {n}"),
        }
    }
}

/// E-RTMP `AudioPacketType` (`UB[4]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AudioPacketType(pub u8);

impl AudioPacketType {
    /// Codec configuration.
    pub const SEQUENCE_START: AudioPacketType = AudioPacketType(0);
    /// Coded frames.
    pub const CODED_FRAMES: AudioPacketType = AudioPacketType(1);
    /// End of sequence (at least the meaning of a silence message).
    pub const SEQUENCE_END: AudioPacketType = AudioPacketType(2);
    /// Channel order / count / mapping.
    pub const MULTICHANNEL_CONFIG: AudioPacketType = AudioPacketType(4);
    /// Turns on multitrack mode.
    pub const MULTITRACK: AudioPacketType = AudioPacketType(5);
    /// Modifier/extension of the current packet.
    pub const MODEX: AudioPacketType = AudioPacketType(7);

    /// Spec name.
    pub fn name(&self) -> String {
        match self.0 {
            0 => "SequenceStart".into(),
            1 => "CodedFrames".into(),
            2 => "SequenceEnd".into(),
            4 => "MultichannelConfig".into(),
            5 => "Multitrack".into(),
            7 => "ModEx".into(),
            n => format!("reserved AudioPacketType {n}"),
        }
    }
}

/// E-RTMP `AvMultitrackType` (`UB[4]`), shared by audio and video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct MultitrackType(pub u8);

impl MultitrackType {
    /// One track; no per-track size.
    pub const ONE_TRACK: MultitrackType = MultitrackType(0);
    /// Many tracks with one codec.
    pub const MANY_TRACKS: MultitrackType = MultitrackType(1);
    /// Many tracks, each with its own FourCC.
    pub const MANY_TRACKS_MANY_CODECS: MultitrackType = MultitrackType(2);

    /// Spec name.
    pub fn name(&self) -> String {
        match self.0 {
            0 => "OneTrack".into(),
            1 => "ManyTracks".into(),
            2 => "ManyTracksManyCodecs".into(),
            n => format!("reserved AvMultitrackType {n}"),
        }
    }
}

/// Legacy audio `SoundFormat` (`UB[4]`); 9 is the E-RTMP ex-header signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SoundFormat(pub u8);

impl SoundFormat {
    /// Linear PCM, platform endian.
    pub const LPCM_PLATFORM: SoundFormat = SoundFormat(0);
    /// ADPCM.
    pub const ADPCM: SoundFormat = SoundFormat(1);
    /// MP3.
    pub const MP3: SoundFormat = SoundFormat(2);
    /// Linear PCM, little endian.
    pub const LPCM_LE: SoundFormat = SoundFormat(3);
    /// Nellymoser 16 kHz mono.
    pub const NELLYMOSER_16K_MONO: SoundFormat = SoundFormat(4);
    /// Nellymoser 8 kHz mono.
    pub const NELLYMOSER_8K_MONO: SoundFormat = SoundFormat(5);
    /// Nellymoser.
    pub const NELLYMOSER: SoundFormat = SoundFormat(6);
    /// G.711 A-law.
    pub const G711_ALAW: SoundFormat = SoundFormat(7);
    /// G.711 mu-law.
    pub const G711_MULAW: SoundFormat = SoundFormat(8);
    /// E-RTMP: ex-header follows (FourCC mode); formerly reserved.
    pub const EX_HEADER: SoundFormat = SoundFormat(9);
    /// AAC.
    pub const AAC: SoundFormat = SoundFormat(10);
    /// Speex.
    pub const SPEEX: SoundFormat = SoundFormat(11);
    /// MP3 8 kHz.
    pub const MP3_8K: SoundFormat = SoundFormat(14);
    /// Device-specific sound.
    pub const NATIVE: SoundFormat = SoundFormat(15);

    /// Human name.
    pub fn name(&self) -> &'static str {
        match self.0 {
            0 => "Linear PCM (platform endian)",
            1 => "ADPCM",
            2 => "MP3",
            3 => "Linear PCM (little endian)",
            4 => "Nellymoser 16 kHz mono",
            5 => "Nellymoser 8 kHz mono",
            6 => "Nellymoser",
            7 => "G.711 A-law",
            8 => "G.711 mu-law",
            9 => "E-RTMP ex-header",
            10 => "AAC",
            11 => "Speex",
            14 => "MP3 8 kHz",
            15 => "device-specific sound",
            _ => "reserved",
        }
    }
}

/// One ModEx entry read before the real packet type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModEx {
    /// `VideoPacketModExType` / `AudioPacketModExType` (`UB[4]`); 0 = TimestampOffsetNano.
    pub mod_ex_type: u8,
    /// Body offset of the ModEx data.
    pub data_offset: usize,
    /// Length of the ModEx data (1..=65536).
    pub data_len: usize,
    /// For TimestampOffsetNano: the UI24 nanosecond offset from the first three
    /// data bytes (`None` if the data is shorter than 3 bytes or another type).
    pub timestamp_offset_nanos: Option<u32>,
}

/// One track of a multitrack message (a non-multitrack ex-header message has no
/// track list: its single implicit track is described by the message's own fields).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Track {
    /// Track id (0 = default / highest priority by recommendation).
    pub track_id: u8,
    /// The track's codec (per track for ManyTracksManyCodecs, else shared).
    pub fourcc: FourCc,
    /// UI24 `sizeOfVideoTrack` / `sizeOfAudioTrack` as sent (absent for OneTrack).
    pub size: Option<u32>,
    /// Body offset of the track's data (the first byte after the track id, or
    /// after the size field where there is one).
    pub data_offset: usize,
    /// Bytes of the track's data: the UI24 size, or for OneTrack the rest of the
    /// body after the track id.
    pub data_len: usize,
    /// SI24 composition time for CodedFrames of avc1/hvc1/vvc1 (0 implied for
    /// CodedFramesX of those codecs, absent otherwise).
    pub composition_time: Option<i32>,
    /// Audio MultichannelConfig carried by this track.
    pub multichannel: Option<MultichannelConfig>,
    /// Video Metadata (AMF `[name, value]` pairs) carried by this track.
    pub metadata: Option<VideoMetadata>,
    /// Body offset of the codec payload (after the composition time; for
    /// Metadata the AMF bytes, for MultichannelConfig the bytes after it).
    pub payload_offset: usize,
    /// Codec payload length.
    pub payload_len: usize,
}

/// The AMF-encoded `[name, value]` pairs of a video Metadata packet
/// (spec "Metadata Frame"; the only defined pair is `["colorInfo", Object]`).
///
/// The pairs are decoded as AMF0 (an AVM+ marker switches one value to AMF3).
/// Decoding stops at the first malformed value; what decoded is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoMetadata {
    /// Every AMF value in wire order: name, value, name, value, ...
    pub values: Vec<Amf0Value>,
    /// Why AMF decoding stopped before the end of the data, if it did.
    pub error: Option<AmfError>,
}

impl VideoMetadata {
    fn parse(data: &[u8]) -> VideoMetadata {
        let (values, error) = amf0::decode_lax(data);
        VideoMetadata { values, error }
    }

    /// The `[name, value]` pairs; a name that is not a string is shown as "".
    /// A trailing name without a value is paired with `Undefined`.
    pub fn pairs(&self) -> Vec<(&str, &Amf0Value)> {
        const UNDEFINED: &Amf0Value = &Amf0Value::Undefined;
        self.values
            .chunks(2)
            .map(|p| (p[0].as_str().unwrap_or(""), p.get(1).unwrap_or(UNDEFINED)))
            .collect()
    }

    /// The last `colorInfo` of the packet (each new one replaces the current one).
    pub fn color_info(&self) -> Option<ColorInfo> {
        self.pairs()
            .into_iter()
            .rev()
            .find(|(n, _)| *n == "colorInfo")
            .map(|(_, v)| ColorInfo::from_amf(v))
    }

    /// The pairs as a JSON object (name -> natural JSON of the value), plus
    /// `"$error"` when AMF decoding stopped early.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (k, v) in self.pairs() {
            m.insert(k.to_owned(), v.to_json());
        }
        if let Some(e) = &self.error {
            m.insert("$error".into(), serde_json::Value::String(e.to_string()));
        }
        serde_json::Value::Object(m)
    }
}

impl Serialize for VideoMetadata {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// The `colorInfo` object of a video Metadata packet (spec "Metadata Frame":
/// `colorConfig`, `hdrCll`, `hdrMdcv`). Absent or non-numeric properties are `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ColorInfo {
    /// `colorInfo` was Undefined, Null or an empty object: "reset to the original
    /// color state".
    pub reset: bool,
    /// `colorConfig.bitDepth`.
    pub bit_depth: Option<f64>,
    /// `colorConfig.colorPrimaries` (ITU-T H.273 index).
    pub color_primaries: Option<f64>,
    /// `colorConfig.transferCharacteristics` (ITU-T H.273 index).
    pub transfer_characteristics: Option<f64>,
    /// `colorConfig.matrixCoefficients` (ITU-T H.273 index).
    pub matrix_coefficients: Option<f64>,
    /// `hdrCll.maxFall` (cd/m2).
    pub max_fall: Option<f64>,
    /// `hdrCll.maxCLL` (cd/m2).
    pub max_cll: Option<f64>,
    /// `hdrMdcv` chromaticities in wire names: redX, redY, greenX, greenY, blueX,
    /// blueY, whitePointX, whitePointY (each `None` if absent).
    pub mdcv_xy: [Option<f64>; 8],
    /// `hdrMdcv.maxLuminance` (cd/m2).
    pub max_luminance: Option<f64>,
    /// `hdrMdcv.minLuminance` (cd/m2).
    pub min_luminance: Option<f64>,
}

impl ColorInfo {
    /// Names of [`ColorInfo::mdcv_xy`] in order, as on the wire.
    pub const MDCV_XY: [&'static str; 8] = [
        "redX",
        "redY",
        "greenX",
        "greenY",
        "blueX",
        "blueY",
        "whitePointX",
        "whitePointY",
    ];

    fn from_amf(v: &Amf0Value) -> ColorInfo {
        let mut c = ColorInfo::default();
        let props = match v.properties() {
            Some(p) => p,
            None => {
                c.reset = matches!(v, Amf0Value::Undefined | Amf0Value::Null);
                return c;
            }
        };
        c.reset = props.is_empty();
        let num =
            |o: Option<&Amf0Value>, k: &str| o.and_then(|o| o.get(k)).and_then(|x| x.as_f64());
        let cc = v.get("colorConfig");
        c.bit_depth = num(cc, "bitDepth");
        c.color_primaries = num(cc, "colorPrimaries");
        c.transfer_characteristics = num(cc, "transferCharacteristics");
        c.matrix_coefficients = num(cc, "matrixCoefficients");
        let cll = v.get("hdrCll");
        c.max_fall = num(cll, "maxFall");
        c.max_cll = num(cll, "maxCLL");
        let mdcv = v.get("hdrMdcv");
        for (slot, k) in c.mdcv_xy.iter_mut().zip(ColorInfo::MDCV_XY) {
            *slot = num(mdcv, k);
        }
        c.max_luminance = num(mdcv, "maxLuminance");
        c.min_luminance = num(mdcv, "minLuminance");
        c
    }
}

/// The decoded header facts of one video tag/message body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoInfo {
    /// E-RTMP ex-header (top bit of byte 0).
    pub ex_header: bool,
    /// Frame type.
    pub frame_type: FrameType,
    /// Legacy codec id (absent for an ex-header).
    pub codec_id: Option<VideoCodecId>,
    /// Legacy AVCPacketType (codec ids 7 and 12).
    pub avc_packet_type: Option<AvcPacketType>,
    /// E-RTMP packet type; for multitrack the tracks' packet type (after the
    /// Multitrack signal), after all ModEx entries.
    pub packet_type: Option<VideoPacketType>,
    /// E-RTMP FourCC (absent for ManyTracksManyCodecs: see the tracks; absent for
    /// command frames).
    pub fourcc: Option<FourCc>,
    /// Composition time in ms: legacy AVC/HEVC, or single-track CodedFrames of
    /// avc1/hvc1/vvc1 (and 0 implied for their CodedFramesX). For a OneTrack
    /// multitrack message: its one track's.
    pub composition_time: Option<i32>,
    /// `VideoCommand` of a command frame (0 start seek, 1 end seek).
    pub video_command: Option<u8>,
    /// ModEx entries, in wire order.
    pub modex: Vec<ModEx>,
    /// Multitrack type, if the Multitrack signal was present.
    pub multitrack: Option<MultitrackType>,
    /// Tracks of a multitrack message.
    pub tracks: Vec<Track>,
    /// Metadata packet: its AMF `[name, value]` pairs (single track; for
    /// OneTrack the one track's).
    pub metadata: Option<VideoMetadata>,
    /// Body offset of the codec payload (single track and OneTrack: as the
    /// track's; ManyTracks*: where the track list starts).
    pub payload_offset: usize,
    /// Codec payload length (0 for ManyTracks*, see the tracks).
    pub payload_len: usize,
}

/// E-RTMP multichannel configuration (AudioPacketType 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MultichannelConfig {
    /// `AudioChannelOrder`: 0 unspecified, 1 native, 2 custom.
    pub channel_order: u8,
    /// Number of channels.
    pub channel_count: u8,
    /// Native order: `AudioChannelMask` flags.
    pub channel_flags: Option<u32>,
    /// Custom order: one `AudioChannel` per channel.
    pub channel_mapping: Vec<u8>,
}

/// The decoded header facts of one audio tag/message body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudioInfo {
    /// An empty body: the "audio silence" message E-RTMP documents (no header).
    pub silence: bool,
    /// Sound format (absent for silence).
    pub sound_format: Option<SoundFormat>,
    /// Legacy `SoundRate` `UB[2]`: 0 5.5 kHz, 1 11 kHz, 2 22 kHz, 3 44 kHz.
    pub sound_rate: Option<u8>,
    /// Legacy `SoundSize` `UB[1]`: 0 8-bit, 1 16-bit.
    pub sound_size: Option<u8>,
    /// Legacy `SoundType` `UB[1]`: 0 mono, 1 stereo.
    pub sound_type: Option<u8>,
    /// Legacy `AACPacketType` (0 AudioSpecificConfig, 1 raw).
    pub aac_packet_type: Option<u8>,
    /// E-RTMP packet type (tracks' packet type for multitrack), after all ModEx.
    pub packet_type: Option<AudioPacketType>,
    /// E-RTMP FourCC (absent for ManyTracksManyCodecs: see the tracks).
    pub fourcc: Option<FourCc>,
    /// ModEx entries, in wire order.
    pub modex: Vec<ModEx>,
    /// Multitrack type, if the Multitrack signal was present.
    pub multitrack: Option<MultitrackType>,
    /// Tracks of a multitrack message.
    pub tracks: Vec<Track>,
    /// Multichannel configuration (single-track MultichannelConfig packets; for
    /// OneTrack the one track's).
    pub multichannel: Option<MultichannelConfig>,
    /// Body offset of the codec payload (single track and OneTrack: as the
    /// track's; ManyTracks*: where the track list starts).
    pub payload_offset: usize,
    /// Codec payload length (0 for ManyTracks*, see the tracks).
    pub payload_len: usize,
}

/// A bounds-checked reader over a body.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8]) -> Self {
        Cursor { b, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.b.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], MediaError> {
        match self.b.get(self.pos..self.pos.saturating_add(n)) {
            Some(s) if self.pos.checked_add(n).is_some() => {
                self.pos += n;
                Ok(s)
            }
            _ => Err(MediaError::Truncated {
                what,
                offset: self.pos,
                needed: n,
                len: self.b.len(),
            }),
        }
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, MediaError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, MediaError> {
        let s = self.take(2, what)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }

    fn u24(&mut self, what: &'static str) -> Result<u32, MediaError> {
        let s = self.take(3, what)?;
        Ok(u32::from_be_bytes([0, s[0], s[1], s[2]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, MediaError> {
        let s = self.take(4, what)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// SI24: sign-extend the 24-bit value.
    fn i24(&mut self, what: &'static str) -> Result<i32, MediaError> {
        let v = self.u24(what)?;
        Ok(((v << 8) as i32) >> 8)
    }

    /// The unread bytes (empty at or past the end).
    fn rest(&self) -> &'a [u8] {
        self.b.get(self.pos..).unwrap_or(&[])
    }

    fn fourcc(&mut self, what: &'static str) -> Result<FourCc, MediaError> {
        let s = self.take(4, what)?;
        Ok(FourCc([s[0], s[1], s[2], s[3]]))
    }
}

/// Reads the ModEx loop that follows a packet type of ModEx (7 for audio and
/// video), and returns the real packet type nibble.
///
/// Spec: `modExDataSize = UI8 + 1; if (modExDataSize == 256) modExDataSize = UI16 + 1;
/// modExData = `UI8[modExDataSize]`; modExType = `UB[4]`; packetType = `UB[4]``.
fn read_modex(
    cur: &mut Cursor<'_>,
    mut packet_type: u8,
    out: &mut Vec<ModEx>,
) -> Result<u8, MediaError> {
    const MODEX: u8 = 7;
    while packet_type == MODEX {
        let mut size = usize::from(cur.u8("ModEx data size")?) + 1;
        if size == 256 {
            size = usize::from(cur.u16("ModEx data size (UI16)")?) + 1;
        }
        let data_offset = cur.pos;
        let data = cur.take(size, "ModEx data")?;
        let b = cur.u8("ModEx type / packet type")?;
        let mod_ex_type = b >> 4;
        packet_type = b & 0x0f;
        // Each entry consumes at least 3 bytes, so the Vec is bounded by the body.
        out.push(ModEx {
            mod_ex_type,
            data_offset,
            data_len: size,
            timestamp_offset_nanos: match (mod_ex_type, data) {
                (0, [a, b, c, ..]) => Some(u32::from_be_bytes([0, *a, *b, *c])),
                _ => None,
            },
        });
    }
    Ok(packet_type)
}

/// What one track's data (or a single-track body) holds before its payload.
#[derive(Default)]
struct TrackBody {
    composition_time: Option<i32>,
    multichannel: Option<MultichannelConfig>,
    metadata: Option<VideoMetadata>,
}

/// Reads the track loop of a multitrack `ExVideoTagBody` / `ExAudioTagBody`:
/// per track `[FOURCC if ManyTracksManyCodecs] trackId UI8 [UI24 size unless
/// OneTrack]`, then the track's data, decoded by `body` with a cursor that
/// cannot read past the track. OneTrack has one track that runs to the end of
/// the body; the other types loop while bytes remain (at least one track, as the
/// spec's `while (processBody)` loop reads one before testing).
fn read_tracks(
    cur: &mut Cursor<'_>,
    mt: MultitrackType,
    shared: Option<FourCc>,
    mut body: impl FnMut(&mut Cursor<'_>, FourCc) -> Result<TrackBody, MediaError>,
) -> Result<Vec<Track>, MediaError> {
    let mut tracks = Vec::new();
    loop {
        let fourcc = match shared {
            Some(f) => f,
            None => cur.fourcc("track FourCC")?,
        };
        let track_id = cur.u8("trackId")?;
        let (size, end) = if mt == MultitrackType::ONE_TRACK {
            (None, cur.b.len())
        } else {
            let size = cur.u24("sizeOfTrack")?;
            let available = cur.remaining();
            if size as usize > available {
                return Err(MediaError::TrackOverrun {
                    track_id,
                    offset: cur.pos,
                    size,
                    available,
                });
            }
            (Some(size), cur.pos + size as usize)
        };
        let data_offset = cur.pos;
        // Each track's fields must fit the track: a sub-cursor ending at `end`.
        let mut sub = Cursor {
            b: cur.b.get(..end).unwrap_or(cur.b),
            pos: cur.pos,
        };
        let t = body(&mut sub, fourcc)?;
        // Each track consumes at least its id byte, so the Vec is bounded by the body.
        tracks.push(Track {
            track_id,
            fourcc,
            size,
            data_offset,
            data_len: end.saturating_sub(data_offset),
            composition_time: t.composition_time,
            multichannel: t.multichannel,
            metadata: t.metadata,
            payload_offset: sub.pos,
            payload_len: end.saturating_sub(sub.pos),
        });
        cur.pos = end;
        if mt == MultitrackType::ONE_TRACK || cur.remaining() == 0 {
            return Ok(tracks);
        }
    }
}

/// `ExVideoTagBody` of one track (or of the single implicit track): the SI24
/// composition time of avc1/hvc1/vvc1 CodedFrames (0 implied for CodedFramesX),
/// or the AMF pairs of a Metadata packet (which stay the payload).
fn video_track_body(
    cur: &mut Cursor<'_>,
    pt: VideoPacketType,
    fourcc: FourCc,
) -> Result<TrackBody, MediaError> {
    let mut t = TrackBody::default();
    if pt == VideoPacketType::METADATA {
        t.metadata = Some(VideoMetadata::parse(cur.rest()));
    }
    if fourcc.has_composition_time() {
        if pt == VideoPacketType::CODED_FRAMES {
            t.composition_time = Some(cur.i24("CompositionTime")?);
        } else if pt == VideoPacketType::CODED_FRAMES_X {
            t.composition_time = Some(0);
        }
    }
    Ok(t)
}

/// `ExAudioTagBody` of one track (or of the single implicit track): the
/// MultichannelConfig fields; other packet types are all payload.
fn audio_track_body(cur: &mut Cursor<'_>, pt: AudioPacketType) -> Result<TrackBody, MediaError> {
    let mut t = TrackBody::default();
    if pt == AudioPacketType::MULTICHANNEL_CONFIG {
        let channel_order = cur.u8("AudioChannelOrder")?;
        let channel_count = cur.u8("channelCount")?;
        let mut mc = MultichannelConfig {
            channel_order,
            channel_count,
            channel_flags: None,
            channel_mapping: Vec::new(),
        };
        match channel_order {
            // Custom: one UI8 per channel (bounded: take() checks first).
            2 => {
                mc.channel_mapping = cur
                    .take(channel_count.into(), "audioChannelMapping")?
                    .to_vec()
            }
            1 => mc.channel_flags = Some(cur.u32("audioChannelFlags")?),
            _ => {}
        }
        t.multichannel = Some(mc);
    }
    Ok(t)
}

/// The offset of the last ModEx `TimestampOffsetNano` (the spec's loop
/// overwrites the value with each one).
fn last_nano(modex: &[ModEx]) -> Option<u32> {
    modex.iter().rev().find_map(|m| m.timestamp_offset_nanos)
}

impl VideoInfo {
    /// Decodes the header facts of a video tag/message body.
    pub fn parse(body: &[u8]) -> Result<VideoInfo, MediaError> {
        let mut cur = Cursor::new(body);
        let b0 = cur
            .u8("VideoTagHeader")
            .map_err(|_| MediaError::EmptyVideo)?;
        let mut info = VideoInfo {
            ex_header: b0 & 0x80 != 0,
            frame_type: FrameType(0),
            codec_id: None,
            avc_packet_type: None,
            packet_type: None,
            fourcc: None,
            composition_time: None,
            video_command: None,
            modex: Vec::new(),
            multitrack: None,
            tracks: Vec::new(),
            metadata: None,
            payload_offset: 0,
            payload_len: 0,
        };
        if !info.ex_header {
            info.frame_type = FrameType(b0 >> 4);
            let codec = VideoCodecId(b0 & 0x0f);
            info.codec_id = Some(codec);
            if info.frame_type == FrameType::COMMAND {
                // Legacy FLV: "If FrameType = 5, instead of a video payload, the
                // message stream contains a UI8" (E-RTMP keeps that rule).
                info.video_command = Some(cur.u8("VideoCommand")?);
            } else if codec.has_avc_packet_type() {
                info.avc_packet_type = Some(AvcPacketType(cur.u8("AVCPacketType")?));
                info.composition_time = Some(cur.i24("CompositionTime")?);
            }
        } else {
            info.frame_type = FrameType((b0 >> 4) & 0x07);
            let pt = read_modex(&mut cur, b0 & 0x0f, &mut info.modex)?;
            let mut pt = VideoPacketType(pt);
            if pt != VideoPacketType::METADATA && info.frame_type == FrameType::COMMAND {
                // A command frame has no FourCC and no body after the command.
                info.packet_type = Some(pt);
                info.video_command = Some(cur.u8("VideoCommand")?);
            } else if pt == VideoPacketType::MULTITRACK {
                let at = cur.pos;
                let b = cur.u8("AvMultitrackType / VideoPacketType")?;
                let mt = MultitrackType(b >> 4);
                pt = VideoPacketType(b & 0x0f);
                if pt == VideoPacketType::MULTITRACK {
                    return Err(MediaError::NestedMultitrack { offset: at });
                }
                info.multitrack = Some(mt);
                info.packet_type = Some(pt);
                if mt != MultitrackType::MANY_TRACKS_MANY_CODECS {
                    info.fourcc = Some(cur.fourcc("VideoFourCc")?);
                }
                info.payload_offset = cur.pos;
                info.tracks =
                    read_tracks(&mut cur, mt, info.fourcc, |c, f| video_track_body(c, pt, f))?;
                if let (MultitrackType::ONE_TRACK, [t]) = (mt, &info.tracks[..]) {
                    info.composition_time = t.composition_time;
                    info.metadata = t.metadata.clone();
                    info.payload_offset = t.payload_offset;
                    info.payload_len = t.payload_len;
                }
                return Ok(info);
            } else {
                info.packet_type = Some(pt);
                let f = cur.fourcc("VideoFourCc")?;
                info.fourcc = Some(f);
                let t = video_track_body(&mut cur, pt, f)?;
                info.composition_time = t.composition_time;
                info.metadata = t.metadata;
            }
        }
        info.payload_offset = cur.pos;
        info.payload_len = cur.remaining();
        Ok(info)
    }

    /// Human codec name: "AVC", "HEVC (hvc1)", "On2 VP6", ... For ManyTracksManyCodecs
    /// the track codecs joined by '+'.
    pub fn codec_name(&self) -> String {
        if let Some(c) = self.codec_id {
            return c.name();
        }
        if let Some(f) = self.fourcc {
            return f.codec_name();
        }
        if !self.tracks.is_empty() {
            let names: Vec<String> = self.tracks.iter().map(|t| t.fourcc.codec_name()).collect();
            return names.join("+");
        }
        "unknown".into()
    }

    /// Human packet type name ("sequence header", "NALU", "CodedFramesX", ...), or
    /// "" where the codec has none.
    pub fn packet_type_name(&self) -> String {
        if let Some(p) = self.avc_packet_type {
            return p.name();
        }
        if let Some(p) = self.packet_type {
            return p.name();
        }
        String::new()
    }

    /// True when this body carries coded frames (not a configuration, end of
    /// sequence, metadata or command).
    pub fn is_coded_frames(&self) -> bool {
        if self.video_command.is_some() {
            return false;
        }
        if let Some(p) = self.avc_packet_type {
            return p == AvcPacketType::NALU;
        }
        match self.packet_type {
            Some(p) => p == VideoPacketType::CODED_FRAMES || p == VideoPacketType::CODED_FRAMES_X,
            // Legacy codecs without packet types: every body is a frame.
            None => true,
        }
    }

    /// True for a key frame: frame type 1 on a coded-frames body.
    pub fn is_keyframe(&self) -> bool {
        self.frame_type == FrameType::KEY && self.is_coded_frames()
    }

    /// True for a codec configuration: legacy AVC/HEVC sequence header, E-RTMP
    /// SequenceStart or MPEG2TSSequenceStart.
    pub fn is_sequence_header(&self) -> bool {
        if self.video_command.is_some() {
            return false;
        }
        if let Some(p) = self.avc_packet_type {
            return p == AvcPacketType::SEQUENCE_HEADER;
        }
        matches!(
            self.packet_type,
            Some(VideoPacketType::SEQUENCE_START | VideoPacketType::MPEG2TS_SEQUENCE_START)
        )
    }

    /// True for an end of sequence (legacy AVCPacketType 2 or E-RTMP SequenceEnd).
    pub fn is_sequence_end(&self) -> bool {
        if self.video_command.is_some() {
            return false;
        }
        if let Some(p) = self.avc_packet_type {
            return p == AvcPacketType::END_OF_SEQUENCE;
        }
        self.packet_type == Some(VideoPacketType::SEQUENCE_END)
    }

    /// The ModEx `TimestampOffsetNano` of this message (the last one if several).
    pub fn timestamp_offset_nano(&self) -> Option<u32> {
        last_nano(&self.modex)
    }
}

impl AudioInfo {
    /// Decodes the header facts of an audio tag/message body. An empty body is the
    /// E-RTMP "audio silence" message (`silence: true`), not an error.
    pub fn parse(body: &[u8]) -> Result<AudioInfo, MediaError> {
        let mut info = AudioInfo {
            silence: body.is_empty(),
            sound_format: None,
            sound_rate: None,
            sound_size: None,
            sound_type: None,
            aac_packet_type: None,
            packet_type: None,
            fourcc: None,
            modex: Vec::new(),
            multitrack: None,
            tracks: Vec::new(),
            multichannel: None,
            payload_offset: 0,
            payload_len: 0,
        };
        let mut cur = Cursor::new(body);
        let Some(&b0) = body.first() else {
            return Ok(info);
        };
        cur.pos = 1;
        let format = SoundFormat(b0 >> 4);
        info.sound_format = Some(format);
        if format != SoundFormat::EX_HEADER {
            info.sound_rate = Some((b0 >> 2) & 0x03);
            info.sound_size = Some((b0 >> 1) & 0x01);
            info.sound_type = Some(b0 & 0x01);
            if format == SoundFormat::AAC {
                info.aac_packet_type = Some(cur.u8("AACPacketType")?);
            }
        } else {
            let mut pt = AudioPacketType(read_modex(&mut cur, b0 & 0x0f, &mut info.modex)?);
            if pt == AudioPacketType::MULTITRACK {
                let at = cur.pos;
                let b = cur.u8("AvMultitrackType / AudioPacketType")?;
                let mt = MultitrackType(b >> 4);
                pt = AudioPacketType(b & 0x0f);
                if pt == AudioPacketType::MULTITRACK {
                    return Err(MediaError::NestedMultitrack { offset: at });
                }
                info.multitrack = Some(mt);
                info.packet_type = Some(pt);
                if mt != MultitrackType::MANY_TRACKS_MANY_CODECS {
                    info.fourcc = Some(cur.fourcc("AudioFourCc")?);
                }
                info.payload_offset = cur.pos;
                info.tracks =
                    read_tracks(&mut cur, mt, info.fourcc, |c, _| audio_track_body(c, pt))?;
                if let (MultitrackType::ONE_TRACK, [t]) = (mt, &info.tracks[..]) {
                    info.multichannel = t.multichannel.clone();
                    info.payload_offset = t.payload_offset;
                    info.payload_len = t.payload_len;
                }
                return Ok(info);
            }
            info.packet_type = Some(pt);
            info.fourcc = Some(cur.fourcc("AudioFourCc")?);
            info.multichannel = audio_track_body(&mut cur, pt)?.multichannel;
        }
        info.payload_offset = cur.pos;
        info.payload_len = cur.remaining();
        Ok(info)
    }

    /// Human codec name: "AAC", "MP3", "Opus (Opus)", ...
    pub fn codec_name(&self) -> String {
        match (self.sound_format, self.fourcc) {
            (None, _) => "silence".into(),
            (Some(SoundFormat::EX_HEADER), Some(f)) => f.codec_name(),
            (Some(SoundFormat::EX_HEADER), None) => {
                let names: Vec<String> =
                    self.tracks.iter().map(|t| t.fourcc.codec_name()).collect();
                names.join("+")
            }
            (Some(sf), _) => sf.name().into(),
        }
    }

    /// Human packet type name ("AudioSpecificConfig", "raw", "CodedFrames", ...), or ""
    /// where the codec has none.
    pub fn packet_type_name(&self) -> String {
        match (self.aac_packet_type, self.packet_type) {
            (Some(0), _) => "AudioSpecificConfig".into(),
            (Some(1), _) => "raw".into(),
            (Some(n), _) => format!("unknown AACPacketType {n}"),
            (None, Some(p)) => p.name(),
            (None, None) => String::new(),
        }
    }

    /// True for a codec configuration: AAC AudioSpecificConfig or E-RTMP SequenceStart.
    pub fn is_sequence_header(&self) -> bool {
        self.aac_packet_type == Some(0) || self.packet_type == Some(AudioPacketType::SEQUENCE_START)
    }

    /// True when this body carries coded audio.
    pub fn is_coded_frames(&self) -> bool {
        if self.silence {
            return false;
        }
        if let Some(p) = self.aac_packet_type {
            return p == 1;
        }
        match self.packet_type {
            Some(p) => p == AudioPacketType::CODED_FRAMES,
            None => true,
        }
    }

    /// Legacy sound rate in Hz (5512, 11025, 22050, 44100), if present.
    pub fn sound_rate_hz(&self) -> Option<u32> {
        self.sound_rate.map(|r| match r {
            0 => 5512,
            1 => 11025,
            2 => 22050,
            _ => 44100,
        })
    }

    /// Legacy channel count (1 or 2), if present.
    pub fn channels(&self) -> Option<u8> {
        self.sound_type.map(|t| t + 1)
    }

    /// True for an E-RTMP audio SequenceEnd.
    pub fn is_sequence_end(&self) -> bool {
        self.packet_type == Some(AudioPacketType::SEQUENCE_END)
    }

    /// The ModEx `TimestampOffsetNano` of this message (the last one if several).
    pub fn timestamp_offset_nano(&self) -> Option<u32> {
        last_nano(&self.modex)
    }
}

/// What one audio or video message counts as: the one rule that `dump
/// --stats`, `play`, `publish` (and later relay, serve and load) share, so the
/// same stream never gets two frame counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaUnit {
    /// Coded video frames (a key frame or not).
    VideoFrame {
        /// Frame type 1 on coded frames.
        key: bool,
    },
    /// Coded audio frames.
    AudioFrame,
    /// A sequence header or end, metadata, a video command, AAC silence:
    /// configuration, not a frame.
    Config,
    /// A body whose tag header does not parse: not counted as a frame.
    Unparsed,
}

impl MediaUnit {
    /// Classifies the body of an audio (`video == false`) or video message.
    pub fn of(video: bool, body: &[u8]) -> MediaUnit {
        crate::proto::stream_config::classify(video, body).0
    }
}

/// Frame counts of a stream, by the one rule of [`MediaUnit`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MediaCounter {
    /// Coded video frames.
    pub video_frames: u64,
    /// Key frames among them.
    pub keyframes: u64,
    /// Coded audio frames.
    pub audio_frames: u64,
    /// Audio/video bodies whose tag header did not parse.
    pub unparsed: u64,
}

impl MediaCounter {
    /// Counts one audio or video body; returns what it was.
    pub fn count(&mut self, video: bool, body: &[u8]) -> MediaUnit {
        let unit = MediaUnit::of(video, body);
        self.tally(unit);
        unit
    }

    /// Counts a body already classified.
    pub fn tally(&mut self, unit: MediaUnit) {
        match unit {
            MediaUnit::VideoFrame { key } => {
                self.video_frames += 1;
                self.keyframes += u64::from(key);
            }
            MediaUnit::AudioFrame => self.audio_frames += 1,
            MediaUnit::Config => {}
            MediaUnit::Unparsed => self.unparsed += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One rule for every command: a body that does not parse is not a
    /// frame; sequence headers are configuration.
    #[test]
    fn media_units() {
        let mut c = MediaCounter::default();
        assert_eq!(c.count(true, &[0x17, 0, 0, 0, 0]), MediaUnit::Config);
        assert_eq!(
            c.count(true, &[0x17, 1, 0, 0, 0, 0xaa]),
            MediaUnit::VideoFrame { key: true }
        );
        assert_eq!(
            c.count(true, &[0x27, 1, 0, 0, 0, 0xaa]),
            MediaUnit::VideoFrame { key: false }
        );
        assert_eq!(c.count(true, &[]), MediaUnit::Unparsed);
        assert_eq!(c.count(false, &[0xaf, 0, 0x12, 0x10]), MediaUnit::Config);
        assert_eq!(c.count(false, &[0xaf, 1, 0x21]), MediaUnit::AudioFrame);
        assert_eq!(
            c,
            MediaCounter {
                video_frames: 2,
                keyframes: 1,
                audio_frames: 1,
                unparsed: 1
            }
        );
    }
    use proptest::prelude::*;

    fn be24(v: u32) -> [u8; 3] {
        let b = v.to_be_bytes();
        [b[1], b[2], b[3]]
    }

    /// Every prefix of a valid body decodes or fails cleanly with Truncated.
    fn prefixes_clean(body: &[u8], video: bool) {
        for n in 0..body.len() {
            let r = if video {
                VideoInfo::parse(&body[..n]).map(|_| ())
            } else {
                AudioInfo::parse(&body[..n]).map(|_| ())
            };
            if let Err(e) = r {
                assert!(
                    matches!(
                        e,
                        MediaError::Truncated { .. }
                            | MediaError::EmptyVideo
                            | MediaError::TrackOverrun { .. }
                    ),
                    "prefix {n}: unexpected {e}"
                );
                assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn legacy_avc_sequence_header_and_negative_cts() {
        // FLV spec E.4.3.1: 0x17 = key frame (1) + AVC (7); AVCPacketType 0.
        let v = VideoInfo::parse(&[0x17, 0x00, 0, 0, 0, 0x01, 0x64]).unwrap();
        assert_eq!(v.frame_type, FrameType::KEY);
        assert_eq!(v.codec_id, Some(VideoCodecId::AVC));
        assert!(v.is_sequence_header() && !v.is_keyframe());
        assert_eq!((v.payload_offset, v.payload_len), (5, 2));
        assert_eq!(v.codec_name(), "AVC");
        assert_eq!(v.packet_type_name(), "sequence header");
        // SI24 -40 = 0xFFFFD8.
        let v = VideoInfo::parse(&[0x27, 0x01, 0xff, 0xff, 0xd8]).unwrap();
        assert_eq!(v.composition_time, Some(-40));
        assert!(!v.is_keyframe() && v.is_coded_frames());
        // Non-standard HEVC codec id 12 also has packet type + CTS.
        let v = VideoInfo::parse(&[0x1c, 0x01, 0, 0, 0x28, 9]).unwrap();
        assert_eq!(v.codec_name(), "HEVC (non-standard codec id 12)");
        assert_eq!(v.composition_time, Some(40));
        assert!(v.is_keyframe());
        // VP6 has no packet type: every body is a frame.
        let v = VideoInfo::parse(&[0x14, 0, 0]).unwrap();
        assert!(v.is_keyframe() && v.composition_time.is_none());
        // Truncated CTS names the field.
        let e = VideoInfo::parse(&[0x17, 0x01, 0]).unwrap_err();
        assert_eq!(
            e,
            MediaError::Truncated {
                what: "CompositionTime",
                offset: 2,
                needed: 3,
                len: 3
            }
        );
        assert_eq!(VideoInfo::parse(&[]).unwrap_err(), MediaError::EmptyVideo);
        // Legacy command frame: UI8 right after the header byte.
        let v = VideoInfo::parse(&[0x57, 0x01]).unwrap();
        assert_eq!(v.video_command, Some(1));
        assert!(!v.is_keyframe() && !v.is_sequence_header());
    }

    #[test]
    fn legacy_audio() {
        // 0xAF = AAC, 44 kHz, 16-bit, stereo; AACPacketType 0 = AudioSpecificConfig.
        let a = AudioInfo::parse(&[0xaf, 0x00, 0x12, 0x10]).unwrap();
        assert_eq!(a.sound_format, Some(SoundFormat::AAC));
        assert_eq!(
            (a.sound_rate_hz(), a.sound_size, a.channels()),
            (Some(44100), Some(1), Some(2))
        );
        assert!(a.is_sequence_header());
        assert_eq!(a.packet_type_name(), "AudioSpecificConfig");
        assert_eq!((a.payload_offset, a.payload_len), (2, 2));
        // 0x2E = MP3, 44 kHz, 16-bit, mono; no packet type byte.
        let a = AudioInfo::parse(&[0x2e, 0xff, 0xfb]).unwrap();
        assert_eq!(a.codec_name(), "MP3");
        assert_eq!((a.channels(), a.payload_offset), (Some(1), 1));
        assert!(a.is_coded_frames());
        // Unknown format 13 is kept.
        assert_eq!(
            AudioInfo::parse(&[0xd0]).unwrap().sound_format,
            Some(SoundFormat(13))
        );
        // Empty body = silence message.
        let a = AudioInfo::parse(&[]).unwrap();
        assert!(a.silence && !a.is_coded_frames());
        assert!(matches!(
            AudioInfo::parse(&[0xaf]),
            Err(MediaError::Truncated {
                what: "AACPacketType",
                ..
            })
        ));
    }

    /// Hand-assembled E-RTMP bodies for every distinct header the ground truth
    /// `testdata/ertmp/ertmp_hevc.ertmp.tsv` lists (all connections, both
    /// directions), each as long as the tsv's `len`: the parser must return the
    /// tsv's facts and a payload that fills the rest of the body.
    #[test]
    fn ertmp_ground_truth_rows() {
        let tsv = include_str!("../../testdata/ertmp/ertmp_hevc.ertmp.tsv");
        let mut lines = tsv.lines();
        let head: Vec<&str> = lines.next().unwrap().split('\t').collect();
        let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
        let mut rows = 0;
        for line in lines {
            let f: Vec<&str> = line.split('\t').collect();
            let g = |name: &str| f[col(name)];
            let len: usize = g("len").parse().unwrap();
            if g("type") == "8" {
                // Legacy AAC rows: "legacy_aac_ptN".
                let pt: u8 = g("packet_type")
                    .trim_start_matches("legacy_aac_pt")
                    .parse()
                    .unwrap();
                let mut body = vec![0xaf, pt];
                body.resize(len, 0x21);
                let a = AudioInfo::parse(&body).unwrap();
                assert_eq!(a.sound_format.unwrap().0.to_string(), g("sound_format"));
                assert_eq!(a.aac_packet_type, Some(pt));
                assert_eq!(a.is_sequence_header(), g("sequence_start") == "1");
                assert_eq!(a.payload_len, len - 2);
                rows += 1;
                continue;
            }
            assert_eq!(g("ex_header"), "1");
            let ft: u8 = g("frame_type").parse().unwrap();
            let pt: u8 = match g("packet_type") {
                "SequenceStart" => 0,
                "CodedFrames" => 1,
                "SequenceEnd" => 2,
                "CodedFramesX" => 3,
                other => panic!("unexpected packet type {other}"),
            };
            let mut body = vec![0x80 | ft << 4 | pt];
            body.extend_from_slice(g("fourcc").as_bytes());
            let ct = g("composition_time");
            if pt == 1 {
                body.extend_from_slice(&be24(ct.parse::<i32>().unwrap() as u32 & 0xff_ffff));
            }
            let header = body.len();
            body.resize(len, 0x42);
            let v = VideoInfo::parse(&body).unwrap();
            assert!(v.ex_header);
            assert_eq!(v.frame_type, FrameType(ft));
            assert_eq!(v.packet_type_name(), g("packet_type"));
            assert_eq!(v.fourcc.unwrap().text(), g("fourcc"));
            assert_eq!(v.codec_name(), "HEVC (hvc1)");
            match v.composition_time {
                Some(c) => assert_eq!(c.to_string(), ct),
                None => assert_eq!(ct, ""),
            }
            assert_eq!(v.is_keyframe(), g("key_frame") == "1", "{line}");
            assert_eq!(v.is_sequence_header(), g("sequence_start") == "1");
            assert_eq!(v.is_sequence_end(), g("sequence_end") == "1");
            assert_eq!((v.payload_offset, v.payload_len), (header, len - header));
            prefixes_clean(&body[..header.min(body.len())], true);
            rows += 1;
        }
        assert!(rows > 800, "only {rows} rows");
    }

    #[test]
    fn ertmp_modex_timestamp_offset_nano() {
        // Spec "Enhanced Video": packet type ModEx (7), modExDataSize = UI8 + 1 = 3,
        // TimestampOffsetNano 100, then [modExType 0 | packet type CodedFrames].
        let mut body = vec![0x97, 0x02, 0x00, 0x00, 0x64, 0x01];
        body.extend_from_slice(b"hvc1");
        body.extend_from_slice(&[0xff, 0xff, 0xec, 0xAA, 0xBB]);
        let v = VideoInfo::parse(&body).unwrap();
        assert_eq!(v.packet_type, Some(VideoPacketType::CODED_FRAMES));
        assert_eq!(v.modex.len(), 1);
        assert_eq!(v.modex[0].timestamp_offset_nanos, Some(100));
        assert_eq!(v.modex[0].data_offset, 2);
        assert_eq!(v.composition_time, Some(-20));
        assert!(v.is_keyframe());
        assert_eq!((v.payload_offset, v.payload_len), (13, 2));
        prefixes_clean(&body, true);

        // Audio: sound format 9, ModEx with the UI16 escape (UI8 255 -> UI16 + 1 =
        // 300 bytes), then an unknown ModEx type 3 whose data is kept, then CodedFrames.
        let mut body = vec![0x97, 0xff, 0x01, 0x2b];
        body.extend(std::iter::repeat_n(7u8, 300));
        body.push(0x37); // modExType 3, next packet type ModEx again
        body.extend_from_slice(&[0x00, 0x05, 0x01]); // 1 byte data, type 0 -> too short for UI24
        body.extend_from_slice(b"Opus");
        body.push(0xfc);
        let a = AudioInfo::parse(&body).unwrap();
        assert_eq!(a.modex.len(), 2);
        assert_eq!((a.modex[0].mod_ex_type, a.modex[0].data_len), (3, 300));
        assert_eq!(
            (a.modex[1].mod_ex_type, a.modex[1].timestamp_offset_nanos),
            (0, None)
        );
        assert_eq!(a.packet_type, Some(AudioPacketType::CODED_FRAMES));
        assert_eq!(a.codec_name(), "Opus (Opus)");
        assert_eq!(a.payload_len, 1);
        prefixes_clean(&body, false);
    }

    #[test]
    fn ertmp_video_multitrack() {
        // Multitrack (6) / ManyTracksManyCodecs (2) / CodedFrames (1):
        // per track FOURCC, trackId UI8, sizeOfVideoTrack UI24, then the track data
        // (SI24 CTS for avc1, none for av01).
        let mut body = vec![0x96, 0x21];
        body.extend_from_slice(b"avc1");
        body.push(0);
        body.extend_from_slice(&be24(5));
        body.extend_from_slice(&[0, 0, 0x50, 1, 2]);
        body.extend_from_slice(b"av01");
        body.push(1);
        body.extend_from_slice(&be24(3));
        body.extend_from_slice(&[9, 9, 9]);
        let v = VideoInfo::parse(&body).unwrap();
        assert_eq!(v.multitrack, Some(MultitrackType::MANY_TRACKS_MANY_CODECS));
        assert_eq!(v.fourcc, None);
        assert_eq!(v.tracks.len(), 2);
        assert_eq!(v.tracks[0].fourcc, FourCc::AVC1);
        assert_eq!(v.tracks[0].composition_time, Some(80));
        assert_eq!(
            (v.tracks[0].payload_offset, v.tracks[0].payload_len),
            (13, 2)
        );
        assert_eq!((v.tracks[1].track_id, v.tracks[1].size), (1, Some(3)));
        assert_eq!(v.tracks[1].composition_time, None);
        assert_eq!(v.codec_name(), "AVC (avc1)+AV1 (av01)");
        assert!(v.is_keyframe());
        prefixes_clean(&body, true);
        // A track size beyond the body is an overrun, not a panic.
        let mut bad = body.clone();
        bad[7..10].copy_from_slice(&be24(1000));
        assert!(matches!(
            VideoInfo::parse(&bad),
            Err(MediaError::TrackOverrun { size: 1000, .. })
        ));

        // OneTrack: shared FourCC, track id, no size; CodedFramesX implies CTS 0.
        let mut body = vec![0xa6, 0x03];
        body.extend_from_slice(b"hvc1");
        body.extend_from_slice(&[7, 0xde, 0xad]);
        let v = VideoInfo::parse(&body).unwrap();
        assert_eq!(v.fourcc, Some(FourCc::HVC1));
        assert_eq!(v.tracks.len(), 1);
        assert_eq!(v.tracks[0].track_id, 7);
        assert_eq!(v.tracks[0].size, None);
        assert_eq!(v.tracks[0].composition_time, Some(0));
        assert_eq!(v.tracks[0].payload_len, 2);
        assert!(!v.is_keyframe());
        // Nested Multitrack is rejected as the spec says.
        assert!(matches!(
            VideoInfo::parse(&[0x96, 0x06]),
            Err(MediaError::NestedMultitrack { offset: 1 })
        ));
        // Command frame with ex-header: UI8 command, no FourCC.
        let v = VideoInfo::parse(&[0xd1, 0x00]).unwrap();
        assert_eq!(
            (v.frame_type, v.video_command),
            (FrameType::COMMAND, Some(0))
        );
        // Metadata with frame type 5 (as FFmpeg sends it) is not a command.
        let mut body = vec![0xd4];
        body.extend_from_slice(b"av01");
        body.extend_from_slice(&[0x02, 0x00, 0x09]);
        let v = VideoInfo::parse(&body).unwrap();
        assert_eq!(v.video_command, None);
        assert_eq!(v.packet_type_name(), "Metadata");
        assert_eq!(v.payload_len, 3);
        // vp09 CodedFrames carry no composition time.
        let mut body = vec![0x91];
        body.extend_from_slice(b"vp09");
        body.push(0x82);
        let v = VideoInfo::parse(&body).unwrap();
        assert_eq!((v.composition_time, v.payload_offset), (None, 5));
    }

    #[test]
    fn ertmp_audio_multitrack_and_multichannel() {
        // Multitrack (5) / ManyTracks (1) / CodedFrames (1), shared FourCC Opus.
        let mut body = vec![0x95, 0x11];
        body.extend_from_slice(b"Opus");
        body.extend_from_slice(&[0, 0, 0, 2, 0xa, 0xb, 1, 0, 0, 1, 0xc]);
        let a = AudioInfo::parse(&body).unwrap();
        assert_eq!(a.multitrack, Some(MultitrackType::MANY_TRACKS));
        assert_eq!(a.tracks.len(), 2);
        assert_eq!(
            (a.tracks[0].payload_offset, a.tracks[0].payload_len),
            (10, 2)
        );
        assert_eq!((a.tracks[1].track_id, a.tracks[1].payload_len), (1, 1));
        prefixes_clean(&body, false);
        // MultichannelConfig (4), native order (1): 6 channels, mask 0x3F (5.1).
        let mut body = vec![0x94];
        body.extend_from_slice(b"fLaC");
        body.extend_from_slice(&[1, 6, 0, 0, 0, 0x3f]);
        let a = AudioInfo::parse(&body).unwrap();
        let mc = a.multichannel.unwrap();
        assert_eq!(
            (mc.channel_order, mc.channel_count, mc.channel_flags),
            (1, 6, Some(0x3f))
        );
        prefixes_clean(&body, false);
        // Custom order: one AudioChannel per channel.
        let mut body = vec![0x94];
        body.extend_from_slice(b"ac-3");
        body.extend_from_slice(&[2, 3, 0, 1, 3]);
        let a = AudioInfo::parse(&body).unwrap();
        assert_eq!(a.multichannel.unwrap().channel_mapping, vec![0, 1, 3]);
        assert!(matches!(
            AudioInfo::parse(&body[..7]),
            Err(MediaError::Truncated {
                what: "audioChannelMapping",
                needed: 3,
                ..
            })
        ));
        // SequenceStart mp4a and an unknown FourCC.
        let a = AudioInfo::parse(b"\x90mp4a\x12\x10").unwrap();
        assert!(a.is_sequence_header());
        assert_eq!(a.codec_name(), "AAC (mp4a)");
        let a = AudioInfo::parse(b"\x91\x00\xffzz").unwrap();
        assert_eq!(a.codec_name(), "unknown FourCC '\\x00\\xffzz'");
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.contains(r#""fourcc":"\\x00\\xffzz""#), "{json}");
    }

    /// Writes E-RTMP bodies field by field as the spec's bitstream tables list
    /// them ("Enhanced Audio" / "Enhanced Video" pseudocode).
    #[derive(Default, Clone)]
    struct Body(Vec<u8>);

    impl Body {
        /// `UB[1] isExVideoHeader = 1, UB[3] videoFrameType, UB[4] videoPacketType`.
        fn video(frame_type: u8, packet_type: u8) -> Body {
            Body(vec![0x80 | (frame_type & 7) << 4 | packet_type])
        }
        /// `UB[4] soundFormat = 9 (ExHeader), UB[4] audioPacketType`.
        fn audio(packet_type: u8) -> Body {
            Body(vec![0x90 | packet_type])
        }
        /// One ModEx entry: `modExDataSize - 1` as UI8 (or 255 + UI16), the data,
        /// then `UB[4] modExType, UB[4] next packet type`.
        fn modex(mut self, data: &[u8], mod_ex_type: u8, next: u8) -> Body {
            let n = data.len() - 1;
            if n < 255 {
                self.0.push(n as u8);
            } else {
                self.0.push(255);
                self.0.extend_from_slice(&(n as u16).to_be_bytes());
            }
            self.0.extend_from_slice(data);
            self.0.push(mod_ex_type << 4 | next);
            self
        }
        /// TimestampOffsetNano: UI24 data.
        fn nano(self, ns: u32, next: u8) -> Body {
            self.modex(&be24(ns), 0, next)
        }
        /// `UB[4] AvMultitrackType, UB[4] packet type`.
        fn multitrack(mut self, mt: u8, packet_type: u8) -> Body {
            self.0.push(mt << 4 | packet_type);
            self
        }
        fn fourcc(mut self, f: &[u8; 4]) -> Body {
            self.0.extend_from_slice(f);
            self
        }
        fn u8(mut self, v: u8) -> Body {
            self.0.push(v);
            self
        }
        fn bytes(mut self, b: &[u8]) -> Body {
            self.0.extend_from_slice(b);
            self
        }
        /// A sized track: `trackId UI8, sizeOfTrack UI24, data`.
        fn sized(self, track_id: u8, data: &[u8]) -> Body {
            self.u8(track_id)
                .bytes(&be24(data.len() as u32))
                .bytes(data)
        }
    }

    fn si24(v: i32) -> [u8; 3] {
        be24(v as u32 & 0xff_ffff)
    }

    /// `[cts SI24] + payload`.
    fn with_cts(cts: i32, payload: &[u8]) -> Vec<u8> {
        let mut v = si24(cts).to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn video_many_tracks_shared_codec() {
        // Multitrack(6) / ManyTracks(1) / CodedFrames(1), FourCC avc1 once, then
        // per track: trackId, UI24 size, SI24 CTS + NALUs.
        let t0 = with_cts(80, &[0, 0, 0, 1, 0x65]);
        let t3 = with_cts(-40, &[0, 0, 0, 1, 0x41, 9]);
        let body = Body::video(1, 6)
            .multitrack(1, 1)
            .fourcc(b"avc1")
            .sized(0, &t0)
            .sized(3, &t3)
            .0;
        let v = VideoInfo::parse(&body).unwrap();
        assert_eq!(v.multitrack, Some(MultitrackType::MANY_TRACKS));
        assert_eq!(v.packet_type, Some(VideoPacketType::CODED_FRAMES));
        assert_eq!(v.fourcc, Some(FourCc::AVC1));
        assert_eq!(v.composition_time, None, "not one track: see the tracks");
        let ids: Vec<_> = v.tracks.iter().map(|t| t.track_id).collect();
        assert_eq!(ids, [0, 3]);
        let cts: Vec<_> = v.tracks.iter().map(|t| t.composition_time).collect();
        assert_eq!(cts, [Some(80), Some(-40)]);
        assert_eq!(v.tracks[0].size, Some(8));
        assert_eq!((v.tracks[0].data_offset, v.tracks[0].data_len), (10, 8));
        assert_eq!(
            (v.tracks[0].payload_offset, v.tracks[0].payload_len),
            (13, 5)
        );
        assert_eq!((v.tracks[1].data_offset, v.tracks[1].data_len), (22, 9));
        assert_eq!(
            (v.tracks[1].payload_offset, v.tracks[1].payload_len),
            (25, 6)
        );
        assert_eq!(&body[v.tracks[1].payload_offset..], &[0, 0, 0, 1, 0x41, 9]);
        assert!(v.tracks.iter().all(|t| t.fourcc == FourCc::AVC1));
        assert!(v.is_keyframe() && v.is_coded_frames());
        assert_eq!(v.codec_name(), "AVC (avc1)");
        prefixes_clean(&body, true);

        // A track too short for its SI24 fails inside the track, not in the next.
        let bad = Body::video(2, 6)
            .multitrack(1, 1)
            .fourcc(b"hvc1")
            .sized(1, &[0, 0])
            .sized(2, &with_cts(0, &[1]))
            .0;
        assert!(matches!(
            VideoInfo::parse(&bad),
            Err(MediaError::Truncated {
                what: "CompositionTime",
                offset: 10,
                needed: 3,
                len: 12
            })
        ));
        // The body loop reads at least one track: a bare header is truncated.
        let bare = Body::video(2, 6).multitrack(1, 3).fourcc(b"hvc1").0;
        assert!(matches!(
            VideoInfo::parse(&bare),
            Err(MediaError::Truncated {
                what: "trackId",
                ..
            })
        ));
    }

    #[test]
    fn video_many_tracks_many_codecs_mixed_packet_payloads() {
        // ManyTracksManyCodecs / CodedFramesX: per track FourCC, id, size; hvc1
        // implies CTS 0, vp09 and av01 have none.
        let body = Body::video(2, 6)
            .multitrack(2, 3)
            .fourcc(b"hvc1")
            .sized(0, &[0, 0, 0, 2, 0x02, 0x01])
            .fourcc(b"vp09")
            .sized(1, &[0x86])
            .fourcc(b"av01")
            .sized(2, &[0x32, 0x00])
            .0;
        let v = VideoInfo::parse(&body).unwrap();
        assert_eq!(v.fourcc, None);
        let f: Vec<_> = v.tracks.iter().map(|t| t.fourcc.text()).collect();
        assert_eq!(f, ["hvc1", "vp09", "av01"]);
        let cts: Vec<_> = v.tracks.iter().map(|t| t.composition_time).collect();
        assert_eq!(cts, [Some(0), None, None]);
        let sizes: Vec<_> = v.tracks.iter().map(|t| t.size).collect();
        assert_eq!(sizes, [Some(6), Some(1), Some(2)]);
        assert_eq!(v.codec_name(), "HEVC (hvc1)+VP9 (vp09)+AV1 (av01)");
        assert_eq!((v.payload_offset, v.payload_len), (2, 0));
        assert!(!v.is_keyframe() && v.is_coded_frames());
        prefixes_clean(&body, true);

        // SequenceStart for two codecs, SequenceEnd for two tracks (empty data).
        let body = Body::video(1, 6)
            .multitrack(2, 0)
            .fourcc(b"avc1")
            .sized(0, &[1, 0x64, 0, 0x1f])
            .fourcc(b"vvc1")
            .sized(5, &[0xff])
            .0;
        let v = VideoInfo::parse(&body).unwrap();
        assert!(v.is_sequence_header() && !v.is_keyframe());
        assert!(v.tracks.iter().all(|t| t.composition_time.is_none()));
        assert_eq!(v.tracks[1].payload_len, 1);
        let end = Body::video(1, 6)
            .multitrack(1, 2)
            .fourcc(b"hvc1")
            .sized(0, &[])
            .sized(1, &[])
            .0;
        let v = VideoInfo::parse(&end).unwrap();
        assert!(v.is_sequence_end() && !v.is_coded_frames());
        assert_eq!(v.tracks.len(), 2);
        assert!(
            v.tracks
                .iter()
                .all(|t| t.data_len == 0 && t.payload_len == 0)
        );
        prefixes_clean(&end, true);
        // A reserved AvMultitrackType (3) is kept and read as the pseudocode
        // says: shared FourCC (not ManyTracksManyCodecs), sized (not OneTrack).
        let body = Body::video(2, 6)
            .multitrack(3, 1)
            .fourcc(b"vp08")
            .sized(9, &[1, 2])
            .0;
        let v = VideoInfo::parse(&body).unwrap();
        assert_eq!(v.multitrack, Some(MultitrackType(3)));
        assert_eq!(v.multitrack.unwrap().name(), "reserved AvMultitrackType 3");
        assert_eq!((v.tracks[0].track_id, v.tracks[0].payload_len), (9, 2));
    }

    #[test]
    fn video_one_track_modex_as_in_the_capture() {
        // Bytes of ertmp_onetrack_modex_opus.pcap's 58-byte message at ts 80:
        // a7 = inter frame + ModEx; size-1 = 2 (3 bytes) 0x019bce = 105422 ns;
        // 0x06 = TimestampOffsetNano + Multitrack; 0x01 = OneTrack + CodedFrames;
        // hvc1; track 2; CTS 80.
        let mut body = vec![0xa7, 0x02, 0x01, 0x9b, 0xce, 0x06, 0x01];
        body.extend_from_slice(b"hvc1");
        body.extend_from_slice(&[0x02, 0x00, 0x00, 0x50, 0x00, 0x00, 0x00, 0x27, 0x02]);
        body.resize(58, 0x33);
        let v = VideoInfo::parse(&body).unwrap();
        assert_eq!(v.timestamp_offset_nano(), Some(105_422));
        assert_eq!(v.multitrack, Some(MultitrackType::ONE_TRACK));
        assert_eq!(v.packet_type, Some(VideoPacketType::CODED_FRAMES));
        assert_eq!(v.frame_type, FrameType::INTER);
        assert_eq!(v.fourcc, Some(FourCc::HVC1));
        assert_eq!(v.tracks.len(), 1);
        let t = &v.tracks[0];
        assert_eq!(
            (t.track_id, t.size, t.composition_time),
            (2, None, Some(80))
        );
        assert_eq!((t.data_offset, t.data_len), (12, 46));
        assert_eq!((t.payload_offset, t.payload_len), (15, 43));
        // OneTrack: the message's own fields describe its one track.
        assert_eq!(v.composition_time, Some(80));
        assert_eq!((v.payload_offset, v.payload_len), (15, 43));
        prefixes_clean(&body, true);

        // Two ModEx entries (an unknown type 5 with a UI16-escaped size, then
        // TimestampOffsetNano) before a OneTrack CodedFramesX key frame.
        let body = Body::video(1, 7)
            .modex(&[0xee; 256], 5, 7)
            .nano(999_999, 6)
            .multitrack(0, 3)
            .fourcc(b"avc1")
            .u8(4)
            .bytes(&[0, 0, 0, 1, 0x65])
            .0;
        let v = VideoInfo::parse(&body).unwrap();
        assert_eq!(v.modex.len(), 2);
        assert_eq!((v.modex[0].mod_ex_type, v.modex[0].data_len), (5, 256));
        assert_eq!(v.modex[0].timestamp_offset_nanos, None);
        assert_eq!(v.timestamp_offset_nano(), Some(999_999));
        assert_eq!(v.composition_time, Some(0));
        assert!(v.is_keyframe());
        assert_eq!(v.tracks[0].track_id, 4);
        assert_eq!(v.payload_len, 5);
        prefixes_clean(&body, true);
        // ModEx around a single-track SequenceEnd and around a command frame.
        let v = VideoInfo::parse(&Body::video(1, 7).nano(7, 2).fourcc(b"hvc1").0).unwrap();
        assert!(v.is_sequence_end() && !v.is_keyframe());
        assert_eq!((v.timestamp_offset_nano(), v.payload_len), (Some(7), 0));
        let v = VideoInfo::parse(&Body::video(5, 7).nano(1, 1).u8(1).0).unwrap();
        assert_eq!((v.video_command, v.fourcc), (Some(1), None));
    }

    fn color_info_amf() -> Vec<u8> {
        let obj = |p: &[(&str, f64)]| {
            Amf0Value::Object(
                p.iter()
                    .map(|(k, v)| ((*k).to_owned(), Amf0Value::Number(*v)))
                    .collect(),
            )
        };
        let info = Amf0Value::Object(vec![
            (
                "colorConfig".into(),
                obj(&[
                    ("bitDepth", 10.0),
                    ("colorPrimaries", 9.0),
                    ("transferCharacteristics", 16.0),
                    ("matrixCoefficients", 9.0),
                ]),
            ),
            (
                "hdrCll".into(),
                obj(&[("maxFall", 400.0), ("maxCLL", 1000.0)]),
            ),
            (
                "hdrMdcv".into(),
                obj(&[
                    ("redX", 0.708),
                    ("redY", 0.292),
                    ("greenX", 0.17),
                    ("greenY", 0.797),
                    ("blueX", 0.131),
                    ("blueY", 0.046),
                    ("whitePointX", 0.3127),
                    ("whitePointY", 0.329),
                    ("maxLuminance", 1000.0),
                    ("minLuminance", 0.0001),
                ]),
            ),
        ]);
        amf0::encode_all(&[Amf0Value::String("colorInfo".into()), info])
    }

    #[test]
    fn video_metadata_color_info() {
        // Metadata (4) with frame type 5 as FFmpeg sends it; the frame type is
        // ignored, the body is AMF ["colorInfo", Object].
        let amf = color_info_amf();
        let body = Body::video(5, 4).fourcc(b"hvc1").bytes(&amf).0;
        let v = VideoInfo::parse(&body).unwrap();
        assert_eq!(v.video_command, None);
        assert_eq!((v.payload_offset, v.payload_len), (5, amf.len()));
        let m = v.metadata.as_ref().unwrap();
        assert_eq!(m.error, None);
        assert_eq!(m.pairs().len(), 1);
        let c = m.color_info().unwrap();
        assert!(!c.reset);
        assert_eq!(
            (
                c.bit_depth,
                c.color_primaries,
                c.transfer_characteristics,
                c.matrix_coefficients
            ),
            (Some(10.0), Some(9.0), Some(16.0), Some(9.0))
        );
        assert_eq!((c.max_fall, c.max_cll), (Some(400.0), Some(1000.0)));
        assert_eq!(c.mdcv_xy[0], Some(0.708));
        assert_eq!(c.mdcv_xy[7], Some(0.329));
        assert_eq!(
            (c.max_luminance, c.min_luminance),
            (Some(1000.0), Some(0.0001))
        );
        assert_eq!(
            m.to_json()["colorInfo"]["colorConfig"]["bitDepth"],
            serde_json::json!(10.0)
        );
        assert!(!v.is_coded_frames() && !v.is_keyframe());

        // Reset by Undefined, hand-encoded: 02 0009 "colorInfo" 06.
        let mut amf = vec![0x02, 0x00, 0x09];
        amf.extend_from_slice(b"colorInfo");
        amf.push(0x06);
        let body = Body::video(1, 4).fourcc(b"av01").bytes(&amf).0;
        let c = VideoInfo::parse(&body)
            .unwrap()
            .metadata
            .unwrap()
            .color_info()
            .unwrap();
        assert!(c.reset && c.bit_depth.is_none());
        // Reset by an empty object: 03 0000 09.
        let mut e = amf.clone();
        e.pop();
        e.extend_from_slice(&[0x03, 0x00, 0x00, 0x09]);
        let body = Body::video(1, 4).fourcc(b"av01").bytes(&e).0;
        assert!(
            VideoInfo::parse(&body)
                .unwrap()
                .metadata
                .unwrap()
                .color_info()
                .unwrap()
                .reset
        );
        // Broken AMF is kept as what decoded plus the error, never a parse failure.
        let body = Body::video(1, 4).fourcc(b"av01").bytes(&amf[..5]).0;
        let m = VideoInfo::parse(&body).unwrap().metadata.unwrap();
        assert!(m.values.is_empty() && m.error.is_some() && m.color_info().is_none());
        assert!(m.to_json().get("$error").is_some());

        // Metadata per track: ManyTracks, each track's data is its own AMF. The
        // frame type must not be Command here: the pseudocode tests
        // `packetType != Metadata && frameType == Command` on the header's packet
        // type (Multitrack), so (Command, Multitrack) is a command frame.
        let amf = color_info_amf();
        let v = VideoInfo::parse(&Body::video(5, 6).u8(0).0).unwrap();
        assert_eq!((v.video_command, v.multitrack), (Some(0), None));
        let body = Body::video(1, 6)
            .multitrack(1, 4)
            .fourcc(b"hvc1")
            .sized(0, &amf)
            .sized(1, &[0x02, 0x00, 0x01, b'x', 0x05])
            .0;
        let v = VideoInfo::parse(&body).unwrap();
        assert_eq!(v.metadata, None);
        let m0 = v.tracks[0].metadata.as_ref().unwrap();
        assert_eq!(m0.color_info().unwrap().bit_depth, Some(10.0));
        let m1 = v.tracks[1].metadata.as_ref().unwrap();
        assert_eq!(m1.pairs(), vec![("x", &Amf0Value::Null)]);
        assert_eq!(v.tracks[1].payload_len, 5);
        prefixes_clean(&body, true);
        // OneTrack: the message's metadata is its one track's.
        let body = Body::video(1, 6)
            .multitrack(0, 4)
            .fourcc(b"av01")
            .u8(7)
            .bytes(&color_info_amf())
            .0;
        let v = VideoInfo::parse(&body).unwrap();
        assert_eq!(v.metadata, v.tracks[0].metadata);
        assert!(v.metadata.unwrap().color_info().is_some());
    }

    #[test]
    fn audio_fourccs_and_packet_types() {
        for (f, name) in [
            (b"ac-3", "AC-3 (ac-3)"),
            (b"ec-3", "E-AC-3 (ec-3)"),
            (b"Opus", "Opus (Opus)"),
            (b".mp3", "MP3 (.mp3)"),
            (b"fLaC", "FLAC (fLaC)"),
            (b"mp4a", "AAC (mp4a)"),
        ] {
            for pt in [0u8, 1, 2] {
                let body = Body::audio(pt).fourcc(f).bytes(&[1, 2, 3]).0;
                let a = AudioInfo::parse(&body).unwrap();
                assert_eq!(a.codec_name(), name);
                assert_eq!(a.fourcc, Some(FourCc(*f)));
                assert_eq!(a.is_sequence_header(), pt == 0);
                assert_eq!(a.is_coded_frames(), pt == 1);
                assert_eq!(a.is_sequence_end(), pt == 2);
                assert_eq!((a.payload_offset, a.payload_len), (5, 3));
                assert_eq!(a.sound_rate, None, "ex-header: no legacy rate bits");
                prefixes_clean(&body, false);
            }
        }
        // Reserved packet type 3 is kept; its FourCC and payload are read.
        let a = AudioInfo::parse(&Body::audio(3).fourcc(b"Opus").u8(0).0).unwrap();
        assert_eq!(a.packet_type_name(), "reserved AudioPacketType 3");
        assert_eq!(a.payload_len, 1);
    }

    #[test]
    fn audio_modex_and_multitrack_forms() {
        // ModEx TimestampOffsetNano around a single-track CodedFrames.
        let body = Body::audio(7)
            .nano(500_000, 1)
            .fourcc(b"Opus")
            .bytes(&[0xfc, 1])
            .0;
        let a = AudioInfo::parse(&body).unwrap();
        assert_eq!(a.timestamp_offset_nano(), Some(500_000));
        assert_eq!(a.packet_type, Some(AudioPacketType::CODED_FRAMES));
        assert_eq!((a.payload_offset, a.payload_len), (10, 2));
        prefixes_clean(&body, false);

        // ModEx around Multitrack OneTrack (as the capture's Opus track 1).
        let body = Body::audio(7)
            .nano(20_833, 5)
            .multitrack(0, 1)
            .fourcc(b"Opus")
            .u8(1)
            .bytes(&[0xfc, 0xff, 0xfe])
            .0;
        let a = AudioInfo::parse(&body).unwrap();
        assert_eq!(a.timestamp_offset_nano(), Some(20_833));
        assert_eq!(a.multitrack, Some(MultitrackType::ONE_TRACK));
        assert_eq!(a.tracks.len(), 1);
        assert_eq!((a.tracks[0].track_id, a.tracks[0].size), (1, None));
        assert_eq!((a.tracks[0].data_len, a.payload_len), (3, 3));
        assert_eq!(a.tracks[0].composition_time, None);
        prefixes_clean(&body, false);

        // ManyTracksManyCodecs: Opus, mp4a and ac-3 in one message.
        let body = Body::audio(5)
            .multitrack(2, 1)
            .fourcc(b"Opus")
            .sized(1, &[0xfc, 0xff])
            .fourcc(b"mp4a")
            .sized(0, &[0x21, 0x10, 0x04])
            .fourcc(b"ac-3")
            .sized(2, &[0x0b, 0x77])
            .0;
        let a = AudioInfo::parse(&body).unwrap();
        assert_eq!(a.fourcc, None);
        let t: Vec<_> = a
            .tracks
            .iter()
            .map(|t| (t.track_id, t.fourcc.text(), t.size, t.payload_len))
            .collect();
        assert_eq!(
            t,
            [
                (1, "Opus".to_owned(), Some(2), 2),
                (0, "mp4a".to_owned(), Some(3), 3),
                (2, "ac-3".to_owned(), Some(2), 2)
            ]
        );
        assert_eq!(a.codec_name(), "Opus (Opus)+AAC (mp4a)+AC-3 (ac-3)");
        assert!(a.is_coded_frames());
        prefixes_clean(&body, false);
        let mut over = body.clone();
        over[9] = 200; // Opus track's UI24 size low byte: 200 > what remains.
        assert!(matches!(
            AudioInfo::parse(&over),
            Err(MediaError::TrackOverrun {
                track_id: 1,
                size: 200,
                ..
            })
        ));

        // ManyTracks SequenceEnd for two tracks, and a nested Multitrack.
        let body = Body::audio(5)
            .multitrack(1, 2)
            .fourcc(b"fLaC")
            .sized(0, &[])
            .sized(1, &[])
            .0;
        let a = AudioInfo::parse(&body).unwrap();
        assert!(a.is_sequence_end() && !a.is_coded_frames());
        assert_eq!(a.tracks.len(), 2);
        assert!(matches!(
            AudioInfo::parse(&Body::audio(7).nano(1, 5).multitrack(1, 5).0),
            Err(MediaError::NestedMultitrack { offset: 6 })
        ));
    }

    #[test]
    fn audio_multichannel_config_per_track() {
        // ManyTracks MultichannelConfig: track 0 native order 5.1 flags, track 1
        // custom order of 2 channels, track 2 unspecified order.
        let body = Body::audio(5)
            .multitrack(1, 4)
            .fourcc(b"Opus")
            .sized(0, &[1, 6, 0, 0, 0, 0x3f])
            .sized(1, &[2, 2, 0, 1])
            .sized(2, &[0, 8])
            .0;
        let a = AudioInfo::parse(&body).unwrap();
        assert_eq!(a.multichannel, None);
        let mc: Vec<_> = a
            .tracks
            .iter()
            .map(|t| t.multichannel.clone().unwrap())
            .collect();
        assert_eq!((mc[0].channel_order, mc[0].channel_count), (1, 6));
        assert_eq!(mc[0].channel_flags, Some(0x3f));
        assert_eq!(mc[1].channel_mapping, vec![0, 1]);
        assert_eq!((mc[2].channel_order, mc[2].channel_count), (0, 8));
        assert!(a.tracks.iter().all(|t| t.payload_len == 0));
        prefixes_clean(&body, false);
        // A mapping longer than its track fails inside the track.
        let bad = Body::audio(5)
            .multitrack(1, 4)
            .fourcc(b"Opus")
            .sized(0, &[2, 3, 0, 1])
            .sized(1, &[0, 0])
            .0;
        assert!(matches!(
            AudioInfo::parse(&bad),
            Err(MediaError::Truncated {
                what: "audioChannelMapping",
                needed: 3,
                ..
            })
        ));
        // OneTrack: the message's multichannel is its one track's.
        let body = Body::audio(5)
            .multitrack(0, 4)
            .fourcc(b"ec-3")
            .u8(3)
            .bytes(&[1, 2, 0, 0, 0, 3])
            .0;
        let a = AudioInfo::parse(&body).unwrap();
        assert_eq!(a.multichannel.as_ref().unwrap().channel_flags, Some(3));
        assert_eq!(a.multichannel, a.tracks[0].multichannel);
    }

    /// Valid bodies of every form, for the mutation property below.
    fn corpus() -> Vec<(Vec<u8>, bool)> {
        let amf = color_info_amf();
        vec![
            (
                Body::video(1, 6)
                    .multitrack(1, 1)
                    .fourcc(b"avc1")
                    .sized(0, &with_cts(80, &[1, 2]))
                    .sized(3, &with_cts(-1, &[3]))
                    .0,
                true,
            ),
            (
                Body::video(2, 6)
                    .multitrack(2, 3)
                    .fourcc(b"hvc1")
                    .sized(0, &[1])
                    .fourcc(b"vp09")
                    .sized(1, &[2, 3])
                    .0,
                true,
            ),
            (
                Body::video(2, 7)
                    .nano(105_422, 6)
                    .multitrack(0, 1)
                    .fourcc(b"hvc1")
                    .u8(2)
                    .bytes(&with_cts(80, &[0, 0, 0, 1]))
                    .0,
                true,
            ),
            (
                Body::video(1, 6)
                    .multitrack(1, 4)
                    .fourcc(b"hvc1")
                    .sized(0, &amf)
                    .0,
                true,
            ),
            (Body::video(5, 4).fourcc(b"av01").bytes(&amf).0, true),
            (
                Body::video(1, 7).modex(&[0; 300], 3, 2).fourcc(b"hvc1").0,
                true,
            ),
            (
                Body::audio(7)
                    .nano(9, 5)
                    .multitrack(2, 1)
                    .fourcc(b"Opus")
                    .sized(1, &[1])
                    .fourcc(b".mp3")
                    .sized(0, &[0xff, 0xfb])
                    .0,
                false,
            ),
            (
                Body::audio(5)
                    .multitrack(1, 4)
                    .fourcc(b"Opus")
                    .sized(0, &[1, 6, 0, 0, 0, 0x3f])
                    .sized(1, &[2, 2, 0, 1])
                    .0,
                false,
            ),
            (
                Body::audio(4).fourcc(b"ac-3").bytes(&[2, 3, 0, 1, 3]).0,
                false,
            ),
        ]
    }

    /// Invariants of a successful parse: every offset and length stays in the body.
    fn check_bounds(body: &[u8], video: bool) -> Result<(), TestCaseError> {
        let (po, pl, tracks) = if video {
            match VideoInfo::parse(body) {
                Ok(v) => {
                    let _ = (
                        v.codec_name(),
                        v.packet_type_name(),
                        v.timestamp_offset_nano(),
                    );
                    let _ = v.metadata.as_ref().map(|m| (m.to_json(), m.color_info()));
                    (v.payload_offset, v.payload_len, v.tracks)
                }
                Err(e) => {
                    let _ = e.to_string();
                    return Ok(());
                }
            }
        } else {
            match AudioInfo::parse(body) {
                Ok(a) => {
                    let _ = (
                        a.codec_name(),
                        a.packet_type_name(),
                        a.timestamp_offset_nano(),
                    );
                    (a.payload_offset, a.payload_len, a.tracks)
                }
                Err(e) => {
                    let _ = e.to_string();
                    return Ok(());
                }
            }
        };
        prop_assert!(po + pl <= body.len());
        for t in &tracks {
            prop_assert!(t.data_offset + t.data_len <= body.len());
            prop_assert!(t.payload_offset + t.payload_len == t.data_offset + t.data_len);
            if let Some(s) = t.size {
                prop_assert_eq!(s as usize, t.data_len);
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(v) = VideoInfo::parse(&body) {
                prop_assert!(v.payload_offset + v.payload_len <= body.len());
                for t in &v.tracks {
                    prop_assert!(t.payload_offset + t.payload_len <= body.len());
                }
                let _ = (v.codec_name(), v.packet_type_name());
            }
            if let Ok(a) = AudioInfo::parse(&body) {
                prop_assert!(a.payload_offset + a.payload_len <= body.len());
                let _ = (a.codec_name(), a.packet_type_name());
            }
        }

        #[test]
        fn mutated_ertmp_bodies_never_panic(
            pick in 0usize..9,
            flips in proptest::collection::vec((any::<usize>(), 0u8..8), 0..4),
            cut in any::<usize>(),
        ) {
            let (mut body, video) = corpus().swap_remove(pick);
            for (at, bit) in flips {
                let n = body.len();
                body[at % n] ^= 1 << bit;
            }
            let keep = cut % (body.len() + 1);
            check_bounds(&body[..keep], video)?;
            check_bounds(&body, video)?;
        }

        #[test]
        fn ex_header_bodies_never_panic(
            b0 in 0x80u8..=0xff,
            rest in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut body = vec![b0];
            body.extend(rest);
            let _ = VideoInfo::parse(&body);
            body[0] = 0x90 | (b0 & 0x0f);
            let _ = AudioInfo::parse(&body);
        }
    }
}
