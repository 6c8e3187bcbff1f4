//! `serve --record DIR`: each published stream to an FLV file. A file is
//! never overwritten: `app_name.flv` exists → `app_name-1.flv`, and so on.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::proto::flv::{FlvHeader, TagType, Writer};
use crate::proto::message::{DataMessage, Encoding, Message, MessageType};

use super::hub::Frame;

/// One recording.
pub struct Recorder {
    path: PathBuf,
    out: BufWriter<File>,
    writer: Writer,
    failed: bool,
    /// When the file was last flushed: what was recorded reaches the disk
    /// within [`FLUSH_EVERY`], as `play` writes it (a stream of 300 kbit/s
    /// would otherwise sit 7 s in the buffer, and a crash would lose it).
    flushed: Instant,
}

/// How long recorded media may wait in the buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// A file name from `app/name`: letters, digits, `-`, `_`, `.` kept, the
/// rest `_`.
fn file_stem(key: &str) -> String {
    let s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_start_matches('.').to_owned();
    if s.is_empty() { "stream".into() } else { s }
}

impl Recorder {
    /// Creates a new file in `dir` for stream `key` (never an existing one).
    pub fn create(dir: &Path, key: &str) -> io::Result<Recorder> {
        Self::create_numbered(dir, &file_stem(key), "flv")
    }

    /// Creates `path`, or when it exists `STEM-1.EXT`, `STEM-2.EXT`, …
    /// (never an existing file).
    pub fn create_path(path: &Path) -> io::Result<Recorder> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "relay".into());
        let ext = path
            .extension()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "flv".into());
        Self::create_numbered(dir, &stem, &ext)
    }

    /// `dir/STEM.EXT`, or the first of `STEM-1.EXT`, `STEM-2.EXT`, … that
    /// does not exist.
    fn create_numbered(dir: &Path, stem: &str, ext: &str) -> io::Result<Recorder> {
        for n in 0..10_000u32 {
            let name = if n == 0 {
                format!("{stem}.{ext}")
            } else {
                format!("{stem}-{n}.{ext}")
            };
            match Self::open_new(dir.join(name)) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                r => return r,
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{stem}.{ext} and 9,999 numbered names exist"),
        ))
    }

    fn open_new(path: PathBuf) -> io::Result<Recorder> {
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let mut out = BufWriter::with_capacity(256 * 1024, f);
        let mut writer = Writer::new();
        let mut head = Vec::new();
        writer.write_header(&FlvHeader::new(true, true), &mut head);
        out.write_all(&head)?;
        Ok(Recorder {
            path,
            out,
            writer,
            failed: false,
            flushed: Instant::now(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one message as a tag (a write error stops the recording).
    pub fn write(&mut self, f: &Frame) {
        self.write_message(f.msg_type, f.timestamp, &f.payload);
    }

    /// Appends an audio, video or data message body as a tag (others are
    /// not FLV tags and are skipped). An AMF3 data message (type 15) is
    /// written as the AMF0 script data FLV holds (its values decoded and
    /// encoded again), as `play` writes it; one that does not decode is
    /// skipped.
    ///
    /// An aggregate (type 22) is written as the messages inside it, each at
    /// its own time (`@setDataFrame` taken off their metadata).
    pub fn write_message(&mut self, msg_type: MessageType, timestamp: u32, payload: &[u8]) {
        if self.failed {
            return;
        }
        if msg_type == MessageType::AGGREGATE {
            let body = bytes::Bytes::copy_from_slice(payload);
            let (parts, _) = crate::proto::message::split_aggregate(timestamp, 0, &body);
            for p in parts {
                if p.msg_type != MessageType::AGGREGATE {
                    let b = super::hub::strip_set_data_frame(p.msg_type, &p.payload);
                    self.write_message(p.msg_type, p.timestamp, &b);
                }
            }
            return;
        }
        let amf0;
        let (tag_type, payload) = match msg_type {
            MessageType::AUDIO => (TagType::AUDIO, payload),
            MessageType::VIDEO => (TagType::VIDEO, payload),
            MessageType::DATA_AMF0 => (TagType::SCRIPT, payload),
            MessageType::DATA_AMF3 => {
                match Message::decode(msg_type, bytes::Bytes::copy_from_slice(payload)) {
                    Ok(Message::Data(d)) if !d.values.is_empty() => {
                        amf0 = Message::Data(DataMessage {
                            encoding: Encoding::Amf0,
                            values: d.values,
                        })
                        .encode();
                        (TagType::SCRIPT, &amf0[..])
                    }
                    _ => return,
                }
            }
            _ => return,
        };
        let mut buf = Vec::with_capacity(payload.len() + 15);
        if self
            .writer
            .write_tag_parts(tag_type, timestamp, 0, payload, &mut buf)
            .is_err()
            || self.out.write_all(&buf).is_err()
        {
            self.failed = true;
        } else if self.flushed.elapsed() >= FLUSH_EVERY {
            self.failed = self.out.flush().is_err();
            self.flushed = Instant::now();
        }
    }

    /// Flushes the file.
    pub fn finish(mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::amf0::Amf0Value;

    /// AMF3 data messages (type 15: a format byte 0, then AMF0 values that
    /// may switch to AMF3) become the AMF0 script data FLV holds; one that
    /// does not decode is skipped, not written broken.
    #[test]
    fn amf3_data_is_recorded_as_amf0_script_data() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Recorder::create_path(&dir.path().join("x.flv")).unwrap();
        let meta: &[u8] = b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x01\x00\x01w\x00\x40\x84\x00\x00\x00\x00\x00\x00\x00\x00\x09";
        r.write_message(MessageType::DATA_AMF3, 0, &[&[0u8][..], meta].concat());
        // A real client's: an AVM+ object with a string reference.
        let avm = include_bytes!("../../testdata/amf/pyclient_amf3_data.bin");
        r.write_message(MessageType::DATA_AMF3, 40, avm);
        r.write_message(MessageType::DATA_AMF3, 80, b"\x00\x02\x00\xff");
        let path = r.path().to_owned();
        r.finish();
        let (_, tags, _) = crate::proto::flv::read_all(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(tags.len(), 2, "{tags:?}");
        assert!(tags.iter().all(|t| t.is_script()));
        assert_eq!(&tags[0].data[..], meta);
        let Ok(Message::Data(d)) = Message::decode(MessageType::DATA_AMF0, tags[1].data.clone())
        else {
            panic!("not AMF0 data: {:02x?}", &tags[1].data[..]);
        };
        assert_eq!(d.values[0], Amf0Value::String("onAmf3Data".into()));
        assert_eq!(d.values.len(), 2, "{d:?}");
    }

    /// An aggregate (from `relay --listen`'s encoder) is recorded as the
    /// tags inside it, at the aggregate's time plus each one's offset.
    #[test]
    fn aggregates_are_recorded_as_their_messages() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Recorder::create_path(&dir.path().join("a.flv")).unwrap();
        let mut body = Vec::new();
        for (t, ts, data) in [
            (9u8, 100u32, &[0x17u8, 1, 0, 0, 0, 7][..]),
            (8, 140, &[0xaf, 1, 9]),
        ] {
            body.push(t);
            body.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
            body.extend_from_slice(&ts.to_be_bytes()[1..]);
            body.extend_from_slice(&[0, 0, 0, 0]);
            body.extend_from_slice(data);
            body.extend_from_slice(&(11 + data.len() as u32).to_be_bytes());
        }
        r.write_message(MessageType::AGGREGATE, 5000, &body);
        let path = r.path().to_owned();
        r.finish();
        let (_, tags, _) = crate::proto::flv::read_all(&std::fs::read(path).unwrap()).unwrap();
        let got: Vec<_> = tags
            .iter()
            .map(|t| (t.tag_type.0, t.timestamp, t.data.len()))
            .collect();
        assert_eq!(got, [(9, 5000, 6), (8, 5040, 3)]);
    }
}
