//! The FLV every publisher of a load run sends: read once, turned into RTMP
//! messages once (audio/video bodies stay the file's `Bytes`, shared), and
//! handed to every publisher behind an `Arc`, so memory does not grow with
//! the number of publishers. Also the delay probe (see [`Probe`]).

use std::path::Path;

use bytes::Bytes;

use crate::proto::amf0::Amf0Value;
use crate::proto::flv::{FlvEvent, Reader};
use crate::proto::media::MediaCounter;
use crate::proto::message::{DataMessage, Encoding, Message, MessageType};

/// One message of the shared FLV with its time from the first tag.
#[derive(Debug, Clone)]
pub struct Item {
    /// Media time (ms) from the first tag.
    pub media_ms: u32,
    /// The message as publishers send it.
    pub msg: Message,
}

/// An FLV read once, as RTMP messages.
#[derive(Debug, Clone)]
pub struct SharedFlv {
    /// Messages in file order.
    pub items: Vec<Item>,
    /// Frames of the file, by the one rule of [`MediaCounter`].
    pub frames: MediaCounter,
    /// Media time of the last tag (ms).
    pub last_ms: u32,
    /// Time after which a second pass starts (last tag + one frame interval).
    pub period_ms: u32,
    /// Audio/video bytes of one pass.
    pub bytes: u64,
    /// Codec id of the first video tag (the delay probe uses it), if any.
    pub video_codec: Option<u8>,
}

/// Why the FLV cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FlvLoadError {
    /// Reading failed.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// Not an FLV, or cut.
    #[error("{path} is not a usable FLV: {error}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        error: String,
    },
}

/// Wraps a script tag body the way encoders send it: `@setDataFrame` before
/// `onMetaData`, other script data as is.
fn data_message(body: &[u8]) -> Option<Message> {
    let is_meta = body.get(3..13) == Some(b"onMetaData".as_slice()) && body.first() == Some(&2);
    let mut payload = Vec::with_capacity(body.len() + 16);
    if is_meta {
        payload.push(2);
        payload.extend_from_slice(&13u16.to_be_bytes());
        payload.extend_from_slice(b"@setDataFrame");
    }
    payload.extend_from_slice(body);
    Message::decode(MessageType::DATA_AMF0, payload.into()).ok()
}

impl SharedFlv {
    /// Reads a whole FLV file.
    pub fn read(path: &Path) -> Result<SharedFlv, FlvLoadError> {
        let name = path.display().to_string();
        let data = std::fs::read(path).map_err(|error| FlvLoadError::Io {
            path: name.clone(),
            error,
        })?;
        Self::parse(&data).map_err(|error| FlvLoadError::Invalid { path: name, error })
    }

    /// Parses FLV bytes.
    pub fn parse(data: &[u8]) -> Result<SharedFlv, String> {
        let mut r = Reader::new();
        r.push(data);
        let mut items = Vec::new();
        let mut frames = MediaCounter::default();
        let mut first: Option<u32> = None;
        let mut bytes = 0u64;
        let mut video_codec = None;
        let mut header = false;
        let mut last_video: Option<u32> = None;
        loop {
            match r.poll().map_err(|e| e.to_string())? {
                Some(FlvEvent::Header(_)) => header = true,
                Some(FlvEvent::Tag(t)) => {
                    let base = *first.get_or_insert(t.timestamp);
                    let media_ms = t.timestamp.saturating_sub(base);
                    let msg = if t.is_audio() || t.is_video() {
                        frames.count(t.is_video(), &t.data);
                        bytes += t.data.len() as u64;
                        if t.is_video() {
                            last_video = Some(media_ms);
                            if video_codec.is_none() {
                                video_codec = t.data.first().map(|b| b & 0x0f);
                            }
                            Message::Video(t.data.clone())
                        } else {
                            Message::Audio(t.data.clone())
                        }
                    } else if t.is_script() {
                        match data_message(&t.data) {
                            Some(m) => m,
                            None => continue,
                        }
                    } else {
                        continue;
                    };
                    items.push(Item { media_ms, msg });
                }
                Some(FlvEvent::Warning(_)) => {}
                None => break,
            }
        }
        r.finish().map_err(|e| e.to_string())?;
        if !header {
            return Err("no FLV header".into());
        }
        if frames.video_frames + frames.audio_frames == 0 {
            return Err("it holds no audio or video frame".into());
        }
        let last_ms = items.iter().map(|i| i.media_ms).max().unwrap_or(0);
        // One video frame interval after the last tag (or 40 ms).
        let gap = match (last_video, frames.video_frames) {
            (Some(v), n) if n > 1 => (v / (n as u32 - 1)).max(1),
            _ => 40,
        };
        Ok(SharedFlv {
            items,
            frames,
            last_ms,
            period_ms: last_ms + gap,
            bytes,
            video_codec,
        })
    }
}

/// How the delay probe travels from publisher to player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A video command frame (FLV frame type 5: "instead of a video
    /// payload, … a UI8"), the UI8 non-zero so no server takes it for a
    /// sequence header, followed by a marker and the send time. Every
    /// server forwards video; counted as configuration, not a frame, by
    /// [`crate::proto::media::MediaUnit`].
    Video,
    /// An AMF0 data message `onTextData {text, ts}`. Not forwarded by every
    /// server (nginx-rtmp drops it).
    Data,
}

/// Marks a probe body.
const MARK: &[u8] = b"rtmptool-delay";

impl Probe {
    /// The probe message carrying `sent_us` (µs on the run's clock).
    pub fn message(self, sent_us: u64, video_codec: Option<u8>) -> Message {
        match self {
            Probe::Video => {
                let mut b = Vec::with_capacity(2 + MARK.len() + 8);
                b.push(0x50 | video_codec.unwrap_or(7));
                b.push(1);
                b.extend_from_slice(MARK);
                b.extend_from_slice(&sent_us.to_be_bytes());
                Message::Video(Bytes::from(b))
            }
            Probe::Data => Message::Data(DataMessage {
                encoding: Encoding::Amf0,
                values: vec![
                    Amf0Value::String("onTextData".into()),
                    Amf0Value::Object(vec![
                        (
                            "text".into(),
                            Amf0Value::String(String::from_utf8_lossy(MARK).into_owned()),
                        ),
                        ("ts".into(), Amf0Value::Number(sent_us as f64)),
                    ]),
                ],
            }),
        }
    }

    /// The send time in a video body, if it is a probe.
    pub fn of_video(body: &[u8]) -> Option<u64> {
        if body.len() != 2 + MARK.len() + 8 || body[0] >> 4 != 5 {
            return None;
        }
        if &body[2..2 + MARK.len()] != MARK {
            return None;
        }
        let t: [u8; 8] = body[2 + MARK.len()..].try_into().ok()?;
        Some(u64::from_be_bytes(t))
    }

    /// The send time in a data message, if it is a probe.
    pub fn of_data(data: &DataMessage) -> Option<u64> {
        if data.name() != "onTextData" {
            return None;
        }
        let obj = data.values.get(1)?;
        if obj.get("text")?.text()?.as_bytes() != MARK {
            return None;
        }
        let ts = obj.get("ts")?.as_f64()?;
        (ts.is_finite() && ts >= 0.0).then_some(ts as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::media::MediaUnit;

    #[test]
    fn probes_round_trip_and_are_not_frames() {
        let Message::Video(b) = Probe::Video.message(123_456, Some(7)) else {
            panic!("video probe");
        };
        assert_eq!(Probe::of_video(&b), Some(123_456));
        assert_eq!(MediaUnit::of(true, &b), MediaUnit::Config);
        assert_eq!(Probe::of_video(&[0x17, 1, 0, 0, 0]), None);
        let Message::Data(d) = Probe::Data.message(99, None) else {
            panic!("data probe");
        };
        let enc = Message::Data(d).encode();
        let Message::Data(d) = Message::decode(MessageType::DATA_AMF0, enc).unwrap() else {
            panic!("decoded");
        };
        assert_eq!(Probe::of_data(&d), Some(99));
    }

    #[test]
    fn flv_is_read_once() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/rtmp/media/h264base_aac_10s.flv"
        );
        let f = SharedFlv::read(Path::new(path)).unwrap();
        assert!(f.frames.video_frames > 0 && f.frames.audio_frames > 0);
        assert!(f.last_ms > 9000 && f.period_ms > f.last_ms);
        assert!(SharedFlv::parse(b"not an flv").is_err());
    }
}
