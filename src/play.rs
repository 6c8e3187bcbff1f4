//! The engine of `rtmptool play`: what arrives on a connection in play
//! state written as FLV (Adobe FLV spec v10.1 annex E) to a [`Sink`]:
//! header flags from what arrived, onMetaData, every tag with its message
//! timestamp; and the statistics of what came ([`PlayStats`]). A regular
//! file is written as `FILE.part` and renamed when done, so a half-written
//! file never sits under the final name; a device or FIFO is written in
//! place. Every write is a whole tag, so what is kept after a failure is
//! valid FLV. The command connects, shows progress and maps a [`Fault`] to
//! its exit code.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::net::{DriveError, Driver};
use crate::proto::flv::{FlvHeader, TagType, Writer};
use crate::proto::media::{MediaUnit, VideoInfo};
use crate::proto::message::{DataMessage, Encoding, Message, UserControl};
use crate::proto::session::{Event, Status};

/// A timestamp step this large within one track is reported as a gap.
pub const GAP_MS: u32 = 500;
/// How long tags are held back to learn the FLV header flags.
const HOLD: Duration = Duration::from_millis(1500);
/// Output buffer: small tags are gathered; a payload larger than this is
/// written from where it is (BufWriter passes it through), not copied.
const OUT_BUF: usize = 64 * 1024;
/// Written tags are flushed to the output at least this often.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Progress is noted at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Where the FLV goes.
pub enum Sink {
    /// Nowhere (no `-o`): the stats only.
    Null,
    /// Standard output (`-o -`).
    Stdout(BufWriter<std::io::Stdout>),
    /// A device or FIFO named by `-o`: written in place, never renamed.
    Stream(BufWriter<File>, PathBuf),
    /// A regular file, written as `part` and renamed to `dest` at the end.
    File {
        /// The writer of `part`.
        w: BufWriter<File>,
        /// `dest` with `.part` appended.
        part: PathBuf,
        /// The name asked for.
        dest: PathBuf,
    },
}

impl Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Null => Ok(()),
            Sink::Stdout(w) => w.write_all(b),
            Sink::Stream(w, _) => w.write_all(b),
            Sink::File { w, .. } => w.write_all(b),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Null => Ok(()),
            Sink::Stdout(w) => w.flush(),
            Sink::Stream(w, _) => w.flush(),
            Sink::File { w, .. } => w.flush(),
        }
    }

    /// Opens `-o PATH`. A regular file is written as `PATH.part` (created
    /// new: an existing `.part` is never truncated) and renamed over `PATH`
    /// at the end; an existing `PATH` is replaced only with `force`. Anything
    /// else that exists (a character device such as /dev/null, a FIFO) is
    /// opened for writing in place: renaming over it would destroy it.
    pub fn open(p: &Path, force: bool) -> Result<Sink, String> {
        if p == Path::new("-") {
            return Ok(Sink::Stdout(BufWriter::with_capacity(
                OUT_BUF,
                std::io::stdout(),
            )));
        }
        let dest = match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => return Err(format!("{} is a directory", p.display())),
            Ok(m) if !m.is_file() => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .map_err(|e| format!("cannot write the output {}: {e}", p.display()))?;
                return Ok(Sink::Stream(
                    BufWriter::with_capacity(OUT_BUF, f),
                    p.to_path_buf(),
                ));
            }
            Ok(_) if !force => {
                return Err(format!(
                    "{} exists; give --force to replace it",
                    p.display()
                ));
            }
            // Through a symlink the target is replaced, not the link.
            Ok(_) => std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()),
            Err(_) => p.to_path_buf(),
        };
        let mut part = dest.clone().into_os_string();
        part.push(".part");
        let part = PathBuf::from(part);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&part)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    format!(
                        "{} exists (left by an interrupted run?); remove it first",
                        part.display()
                    )
                } else {
                    format!("cannot write the output {}: {e}", part.display())
                }
            })?;
        Ok(Sink::File {
            w: BufWriter::with_capacity(OUT_BUF, f),
            part,
            dest,
        })
    }
}

/// Per-track and overall counters of what was played.
#[derive(Debug, Default)]
pub struct PlayStats {
    /// Media payload bytes.
    pub bytes: u64,
    /// Audio and video tags.
    pub tags: u64,
    /// Video frames (configuration excluded).
    pub video_frames: u64,
    /// Audio frames (configuration excluded).
    pub audio_frames: u64,
    /// Video key frames.
    pub keyframes: u64,
    /// Video frame index and timestamp of each keyframe.
    pub keys: Vec<(u64, u32)>,
    /// Earliest media timestamp.
    pub first_ts: Option<u32>,
    /// Latest media timestamp.
    pub last_ts: u32,
    /// First video timestamp.
    pub first_video: Option<u32>,
    /// First audio timestamp.
    pub first_audio: Option<u32>,
    /// Last video timestamp.
    pub last_video: Option<u32>,
    /// Last audio timestamp.
    pub last_audio: Option<u32>,
    /// Largest distance between the last audio and video timestamps (ms).
    pub max_spread: u32,
    /// Steps within a track of more than [`GAP_MS`].
    pub gaps: u64,
    /// Steps back within a track.
    pub regressions: u64,
    /// Audio arrived.
    pub has_audio: bool,
    /// Video arrived.
    pub has_video: bool,
    /// Ctrl-C (or SIGTERM) ended the play.
    pub interrupted: bool,
    /// Messages from the server that did not decode (skipped).
    pub malformed: u64,
    /// The reader of stdout or of a FIFO went away (EPIPE): a normal end,
    /// as when `ffprobe -` has seen enough.
    pub output_closed: bool,
}

impl PlayStats {
    /// Media time from the first to the last timestamp (ms).
    pub fn media_ms(&self) -> u64 {
        self.first_ts
            .map_or(0, |f| u64::from(self.last_ts.saturating_sub(f)))
    }

    fn on_media(&mut self, video: bool, ts: u32, data: &[u8]) {
        self.tags += 1;
        self.bytes += data.len() as u64;
        if video {
            self.has_video = true;
        } else {
            self.has_audio = true;
        }
        // The one counting rule dump --stats and publish use (MediaUnit).
        let unit = MediaUnit::of(video, data);
        match unit {
            MediaUnit::VideoFrame { key } => {
                self.video_frames += 1;
                if key {
                    self.keyframes += 1;
                    self.keys.push((self.video_frames - 1, ts));
                }
            }
            MediaUnit::AudioFrame => self.audio_frames += 1,
            MediaUnit::Config | MediaUnit::Unparsed => {}
        }
        // Configuration does not move the media clock: a server may send a
        // late player the sequence headers with the timestamps they were
        // published at, seconds before the frames it joins.
        if unit == MediaUnit::Config {
            return;
        }
        let f = *self.first_ts.get_or_insert(ts);
        self.first_ts = Some(f.min(ts));
        self.last_ts = self.last_ts.max(ts);
        let last = if video {
            self.first_video.get_or_insert(ts);
            &mut self.last_video
        } else {
            self.first_audio.get_or_insert(ts);
            &mut self.last_audio
        };
        if let Some(p) = *last {
            if ts < p {
                self.regressions += 1;
            } else if ts - p > GAP_MS {
                self.gaps += 1;
            }
        }
        *last = Some(ts);
        if let (Some(v), Some(a)) = (self.last_video, self.last_audio) {
            self.max_spread = self.max_spread.max(v.abs_diff(a));
        }
    }

    /// Media bitrate over the media time.
    pub fn bitrate_kbps(&self) -> f64 {
        let ms = self.media_ms();
        if ms == 0 {
            0.0
        } else {
            (self.bytes as f64 * 8.0 / ms as f64 * 10.0).round() / 10.0
        }
    }

    /// Video frames per second of media time.
    pub fn fps(&self) -> Option<f64> {
        let (f, l) = (self.first_video?, self.last_video?);
        (l > f && self.video_frames > 1).then(|| {
            ((self.video_frames - 1) as f64 * 1000.0 / f64::from(l - f) * 100.0).round() / 100.0
        })
    }

    /// Average GOP in frames and in ms (between consecutive keyframes).
    pub fn gop(&self) -> (Option<f64>, Option<f64>) {
        if self.keys.len() < 2 {
            return (None, None);
        }
        let n = (self.keys.len() - 1) as f64;
        let (f0, t0) = self.keys[0];
        let (f1, t1) = self.keys[self.keys.len() - 1];
        (
            Some(((f1 - f0) as f64 / n * 100.0).round() / 100.0),
            Some((f64::from(t1.saturating_sub(t0)) / n * 10.0).round() / 10.0),
        )
    }
}

/// One tag waiting to be written.
struct Pending {
    kind: TagType,
    ts: u32,
    data: Bytes,
}

/// The FLV being written: its sink, and the tags held back until the
/// header flags are known.
pub struct Output {
    sink: Sink,
    writer: Writer,
    header: Option<FlvHeader>,
    held: Vec<Pending>,
    buf: Vec<u8>,
    flushed: Instant,
}

impl Output {
    fn write_tag(&mut self, p: &Pending) -> std::io::Result<()> {
        // An RTMP message (24-bit length) always fits an FLV tag.
        let (head, tail) = self
            .writer
            .tag_frame(p.kind, p.ts, 0, p.data.len())
            .map_err(std::io::Error::other)?;
        self.sink.write(&head)?;
        self.sink.write(&p.data)?;
        self.sink.write(&tail)
    }

    /// Writes the header (flags from what arrived) and the held tags.
    fn release(&mut self, st: &PlayStats) -> std::io::Result<()> {
        if self.header.is_some() {
            return Ok(());
        }
        let h = FlvHeader::new(st.has_audio, st.has_video);
        self.buf.clear();
        self.writer.write_header(&h, &mut self.buf);
        self.sink.write(&self.buf)?;
        self.header = Some(h);
        for p in std::mem::take(&mut self.held) {
            self.write_tag(&p)?;
        }
        Ok(())
    }

    fn push(&mut self, p: Pending) -> std::io::Result<()> {
        if self.header.is_some() {
            self.write_tag(&p)?;
            // A live recording reaches the file (or pipe) at least every
            // FLUSH_EVERY: a reader following it, or a crash, loses little.
            if self.flushed.elapsed() >= FLUSH_EVERY {
                self.flushed = Instant::now();
                self.sink.flush()?;
            }
            Ok(())
        } else {
            self.held.push(p);
            Ok(())
        }
    }

    /// Completes the output: header flags corrected in a file, flushed,
    /// renamed from `.part`. Returns the final path, if a file.
    pub fn finish(&mut self, st: &PlayStats) -> std::io::Result<Option<PathBuf>> {
        self.release(st)?;
        match &mut self.sink {
            Sink::Null => Ok(None),
            Sink::Stdout(w) => w.flush().map(|_| None),
            Sink::Stream(w, _) => w.flush().map(|_| None),
            Sink::File { w, part, dest } => {
                let h = FlvHeader::new(st.has_audio, st.has_video);
                if Some(&h) != self.header.as_ref() {
                    // Flags learnt after the header went out: patch byte 4.
                    w.flush()?;
                    let f = w.get_mut();
                    f.seek(SeekFrom::Start(4))?;
                    f.write_all(&[h.flags()])?;
                    f.seek(SeekFrom::End(0))?;
                }
                w.flush()?;
                w.get_ref().sync_data()?;
                std::fs::rename(&*part, &*dest)?;
                Ok(Some(dest.clone()))
            }
        }
    }
}

impl Output {
    /// An FLV to `sink`.
    pub fn new(sink: Sink) -> Output {
        Output {
            sink,
            writer: Writer::new(),
            header: None,
            held: Vec::new(),
            buf: Vec::with_capacity(1 << 16),
            flushed: Instant::now(),
        }
    }

    /// Whether the FLV goes to standard output.
    pub fn to_stdout(&self) -> bool {
        matches!(self.sink, Sink::Stdout(_))
    }

    /// The name of the output a write error names.
    pub fn name(&self) -> String {
        match &self.sink {
            Sink::File { part, .. } => part.display().to_string(),
            Sink::Stream(_, p) => p.display().to_string(),
            _ => "stdout".into(),
        }
    }

    /// Removes the `.part` file of a play that kept nothing.
    pub fn discard(&mut self) {
        if let Sink::File { part, .. } = &self.sink {
            let _ = std::fs::remove_file(part);
        }
    }

    /// A failed write: `None` when the reader of a pipe went away (a
    /// normal end, noted in the stats), else the fault.
    pub fn write_error(&self, e: std::io::Error, st: &mut PlayStats) -> Option<Fault> {
        if e.kind() == std::io::ErrorKind::BrokenPipe
            && matches!(self.sink, Sink::Stdout(_) | Sink::Stream(..))
        {
            st.output_closed = true;
            return None;
        }
        Some(Fault::Write(e))
    }
}

/// When a play ends short of what was asked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Nothing arriving for this long is a fault ([`Fault::Idle`]).
    pub idle: Duration,
    /// Media time to play (ms), from the first timestamp.
    pub duration_ms: Option<u64>,
    /// Frames to play (video frames when there is video).
    pub frames: Option<u64>,
    /// Key frames to play: ends before the next one.
    pub until_keyframes: Option<u64>,
}

/// Why a play failed (the command maps each to its exit code).
#[derive(Debug)]
pub enum Fault {
    /// Nothing arrived for [`Limits::idle`] (before any media when
    /// [`PlayStats::tags`] is 0, else the stream stalled).
    Idle,
    /// The connection broke.
    Broke(DriveError),
    /// The server stopped the stream with an error status.
    Stopped(Status),
    /// The output could not be written.
    Write(std::io::Error),
}

/// What a play says while it runs.
pub enum Note<'a> {
    /// A warning, once per kind.
    Warning(String),
    /// The counters so far (at most every 200 ms).
    Progress(&'a PlayStats),
}

/// What ends a play early from outside (Ctrl-C, SIGTERM).
pub trait Stop {
    /// Resolves when the play is to stop.
    fn stopped(&mut self) -> impl Future<Output = ()>;
}

/// Writes what arrives on `d` (a connection in play state) to `out` until
/// the stream ends, a limit is reached, `stop` resolves, or a fault;
/// returns the counters and the fault. The connection stays open and the
/// output unfinished: the caller closes one and finishes the other
/// ([`Output::finish`], or [`Output::discard`] when nothing was kept).
pub async fn receive(
    d: &mut Driver,
    out: &mut Output,
    limits: &Limits,
    stop: &mut impl Stop,
    note: &mut dyn FnMut(Note<'_>),
) -> (PlayStats, Option<Fault>) {
    let mut st = PlayStats::default();
    let mut first_media_at: Option<Instant> = None;
    let mut last_note = Instant::now();
    let mut warned_truncated = false;
    let fault = loop {
        let deadline = Instant::now() + limits.idle;
        let wake = tokio::select! {
            biased;
            _ = stop.stopped() => None,
            r = d.next_event(deadline) => Some(r),
        };
        let ev = match wake {
            None => {
                st.interrupted = true;
                break None;
            }
            Some(Ok(ev)) => ev.event,
            Some(Err(DriveError::Timeout)) => break Some(Fault::Idle),
            Some(Err(e)) => break Some(Fault::Broke(e)),
        };
        let (kind, ts, data) = match ev {
            Event::Audio { timestamp, payload } => (TagType(8), timestamp, payload),
            Event::Video { timestamp, payload } => (TagType(9), timestamp, payload),
            Event::Data {
                timestamp, data, ..
            } => {
                if let Some(t) = data.truncated()
                    && !warned_truncated
                {
                    warned_truncated = true;
                    note(Note::Warning(format!(
                        "play: the data message {:?} at timestamp {timestamp} holds more AMF than the budget: {t}; written to the output cut there",
                        data.name()
                    )));
                }
                let Some(body) = script_body(data) else {
                    continue;
                };
                (TagType(18), timestamp, body)
            }
            Event::Malformed { msg_type, error } => {
                st.malformed += 1;
                if st.malformed == 1 {
                    note(Note::Warning(format!(
                        "play: the server sent a malformed {} message ({error}); skipped (further ones are counted in the stats)",
                        crate::proto::message::MessageType(msg_type)
                    )));
                }
                continue;
            }
            Event::Status(s) if s.is_error() => break Some(Fault::Stopped(s)),
            Event::Status(s)
                if matches!(
                    s.code.as_str(),
                    "NetStream.Play.UnpublishNotify"
                        | "NetStream.Play.Stop"
                        | "NetStream.Play.Complete"
                ) && st.tags > 0 =>
            {
                break None;
            }
            Event::UserControl(UserControl::StreamEof(_)) if st.tags > 0 => break None,
            _ => continue,
        };
        if kind.0 != 18 {
            let video = kind.0 == 9;
            if let Some(l) = limits.duration_ms
                && st
                    .first_ts
                    .is_some_and(|f| u64::from(ts.saturating_sub(f)) >= l)
            {
                break None;
            }
            if video
                && let Some(n) = limits.until_keyframes
                && st.keyframes >= n
                && VideoInfo::parse(&data).is_ok_and(|v| v.is_keyframe())
            {
                break None;
            }
            st.on_media(video, ts, &data);
            first_media_at.get_or_insert_with(Instant::now);
        }
        if let Err(e) = out.push(Pending { kind, ts, data }) {
            break out.write_error(e, &mut st);
        }
        if out.header.is_none()
            && ((st.has_audio && st.has_video)
                || out.held.len() >= 256
                || first_media_at.is_some_and(|t| t.elapsed() >= HOLD))
            && let Err(e) = out.release(&st)
        {
            break out.write_error(e, &mut st);
        }
        if let Some(n) = limits.frames {
            let frames = if st.has_video {
                st.video_frames
            } else {
                st.audio_frames
            };
            if frames >= n {
                break None;
            }
        }
        if last_note.elapsed() >= PROGRESS_EVERY {
            last_note = Instant::now();
            note(Note::Progress(&st));
        }
    };
    (st, fault)
}

/// The FLV script tag body of a data message: `@setDataFrame` dropped,
/// `|RtmpSampleAccess` (a player permission, not stream content) skipped.
fn script_body(data: DataMessage) -> Option<Bytes> {
    let mut values = data.values;
    if data_name(&values) == "@setDataFrame" {
        values.remove(0);
    }
    if data_name(&values).starts_with("|RtmpSampleAccess") || values.is_empty() {
        return None;
    }
    // An FLV script tag is AMF0 only: AMF3 values (a data message of type
    // 15, an AVM+ switch) go in as their AMF0 equivalents.
    let values = values
        .into_iter()
        .map(crate::proto::amf0::Amf0Value::without_avmplus)
        .collect();
    Some(
        Message::Data(DataMessage {
            encoding: Encoding::Amf0,
            values,
        })
        .encode(),
    )
}

fn data_name(values: &[crate::proto::amf0::Amf0Value]) -> &str {
    use crate::proto::amf0::Amf0Value;
    match values.first() {
        Some(Amf0Value::String(s) | Amf0Value::LongString(s)) => s,
        _ => "",
    }
}
