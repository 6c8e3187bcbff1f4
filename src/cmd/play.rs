//! `rtmptool play URL [-o FILE|-]`: connect, createStream, play (RTMP 1.0
//! §7.2.2.1, Set Buffer Length §7.1.7), and write what arrives as FLV (Adobe
//! FLV spec v10.1 annex E): header flags from what arrived, onMetaData, every
//! tag with its message timestamp. A regular file is written as `FILE.part`
//! and renamed when done, so a half-written file never sits under the final
//! name; an existing file is replaced only with `--force`. A device or FIFO
//! (`-o /dev/null`, a named pipe) is written in place, never replaced. Every
//! write is a whole tag, so what is kept after a failure is valid FLV.
//!
//! Final statistics: frames, keyframes, GOP length, bitrate, fps, A/V
//! timestamp spread, gaps and timestamp regressions.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;

use super::streaming::{self, ConnectOptions, err, human_bytes, media_time, ms_f};
use crate::cli::{GlobalArgs, PlayArgs};
use crate::report::{Style, write_json_line};
use crate::{Exit, exit};
use rtmptool::net::{DriveError, RtmpUrl};
use rtmptool::proto::flv::{FlvHeader, TagType, Writer};
use rtmptool::proto::media::{MediaUnit, VideoInfo};
use rtmptool::proto::message::{DataMessage, Encoding, Message, UserControl};
use rtmptool::proto::session::{Event, Goal};

/// A timestamp step this large within one track is reported as a gap.
const GAP_MS: u32 = 500;
/// How long tags are held back to learn the FLV header flags.
const HOLD: Duration = Duration::from_millis(1500);
/// Output buffer: small tags are gathered; a payload larger than this is
/// written from where it is (BufWriter passes it through), not copied.
const OUT_BUF: usize = 64 * 1024;
/// Written tags are flushed to the output at least this often.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

enum Sink {
    Null,
    Stdout(BufWriter<std::io::Stdout>),
    /// A device or FIFO named by `-o`: written in place, never renamed.
    Stream(BufWriter<File>, PathBuf),
    File {
        w: BufWriter<File>,
        part: PathBuf,
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
    fn open(p: &Path, force: bool) -> Result<Sink, String> {
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

/// Per-track and overall counters.
#[derive(Debug, Default)]
struct Stats {
    bytes: u64,
    tags: u64,
    video_frames: u64,
    audio_frames: u64,
    keyframes: u64,
    /// Video frame index and timestamp of each keyframe.
    keys: Vec<(u64, u32)>,
    first_ts: Option<u32>,
    last_ts: u32,
    first_video: Option<u32>,
    first_audio: Option<u32>,
    last_video: Option<u32>,
    last_audio: Option<u32>,
    max_spread: u32,
    gaps: u64,
    regressions: u64,
    has_audio: bool,
    has_video: bool,
    interrupted: bool,
    /// Messages from the server that did not decode (skipped).
    malformed: u64,
    /// The reader of stdout or of a FIFO went away (EPIPE): a normal end,
    /// as when `ffprobe -` has seen enough.
    output_closed: bool,
}

impl Stats {
    fn media_ms(&self) -> u64 {
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

    fn bitrate_kbps(&self) -> f64 {
        let ms = self.media_ms();
        if ms == 0 {
            0.0
        } else {
            (self.bytes as f64 * 8.0 / ms as f64 * 10.0).round() / 10.0
        }
    }

    fn fps(&self) -> Option<f64> {
        let (f, l) = (self.first_video?, self.last_video?);
        (l > f && self.video_frames > 1).then(|| {
            ((self.video_frames - 1) as f64 * 1000.0 / f64::from(l - f) * 100.0).round() / 100.0
        })
    }

    /// Average GOP in frames and in ms (between consecutive keyframes).
    fn gop(&self) -> (Option<f64>, Option<f64>) {
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

/// Runs `play`.
pub fn run(args: &PlayArgs, global: &GlobalArgs) -> Result<(), Exit> {
    let style = Style::from_args(global);
    let url = RtmpUrl::parse(
        &args.url,
        args.conn.app.as_deref(),
        args.conn.stream.as_deref(),
    )
    .map_err(|e| err(exit::BAD_INPUT, e.to_string()))?;
    // Open the output before connecting: an unwritable path fails at once.
    let sink = match &args.output {
        None => Sink::Null,
        Some(p) => Sink::open(p, args.force).map_err(|e| err(exit::BAD_INPUT, e))?,
    };
    let rt = super::runtime()?;
    rt.block_on(play(args, global, &url, style, sink))
}

/// One tag waiting to be written.
struct Pending {
    kind: TagType,
    ts: u32,
    data: Bytes,
}

struct Out {
    sink: Sink,
    writer: Writer,
    header: Option<FlvHeader>,
    held: Vec<Pending>,
    buf: Vec<u8>,
    flushed: Instant,
}

impl Out {
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
    fn release(&mut self, st: &Stats) -> std::io::Result<()> {
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
    fn finish(&mut self, st: &Stats) -> std::io::Result<Option<PathBuf>> {
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

enum Wake {
    Interrupt,
    Event(Result<rtmptool::proto::session::SessionEvent, DriveError>),
}

async fn play(
    args: &PlayArgs,
    global: &GlobalArgs,
    url: &RtmpUrl,
    style: Style,
    sink: Sink,
) -> Result<(), Exit> {
    let to_stdout = matches!(sink, Sink::Stdout(_));
    let mut out = Out {
        sink,
        writer: Writer::new(),
        header: None,
        held: Vec::new(),
        buf: Vec::with_capacity(1 << 16),
        flushed: Instant::now(),
    };
    let mut sig = streaming::sigint()?;
    let connected = streaming::connect_or_interrupt(
        ConnectOptions::of(
            url,
            Goal::Play {
                stream: url.stream_with_query(),
                start: args.start,
                buffer_ms: args.buffer_ms,
            },
            &args.conn,
            global.timeout,
        ),
        &mut sig,
        "play",
    )
    .await;
    let mut d = match connected {
        Ok(d) => d,
        Err(e) => {
            discard(&mut out);
            return Err(e);
        }
    };
    let t0 = Instant::now();
    let shown = url.shown(args.conn.reveal_keys);
    let idle = args.idle_timeout.unwrap_or(global.timeout);
    let limit = args.duration.map(|d| d.as_millis() as u64);
    let mut st = Stats::default();
    let mut first_media_at: Option<Instant> = None;
    let mut failure: Option<Exit> = None;
    let bar = (style.progress && !to_stdout).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        b
    });
    let mut last_draw = Instant::now();
    let mut warned_truncated = false;

    loop {
        let deadline = Instant::now() + idle;
        let wake = tokio::select! {
            biased;
            _ = sig.recv() => Wake::Interrupt,
            r = d.next_event(deadline) => Wake::Event(r),
        };
        let ev = match wake {
            Wake::Interrupt => {
                st.interrupted = true;
                break;
            }
            Wake::Event(Ok(ev)) => ev.event,
            Wake::Event(Err(DriveError::Timeout)) => {
                failure = Some(err(
                    exit::NETWORK,
                    if st.tags == 0 {
                        format!(
                            "{shown}: play: no media arrived within {idle:?} of play (is anyone publishing this stream?)"
                        )
                    } else {
                        format!(
                            "{shown}: play: the stream stalled: nothing for {idle:?} after {} tags, {} of media",
                            st.tags,
                            media_time(st.media_ms())
                        )
                    },
                ));
                break;
            }
            Wake::Event(Err(e)) => {
                failure = Some(streaming::broke_mid_stream(
                    &e,
                    &format!("{shown}: play"),
                    &format!(
                        "{} tags, {} of media, {}",
                        st.tags,
                        media_time(st.media_ms()),
                        human_bytes(st.bytes)
                    ),
                ));
                break;
            }
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
                    warn(
                        &bar,
                        &format!(
                            "play: the data message {:?} at timestamp {timestamp} holds more AMF than the budget: {t}; written to the output cut there",
                            data.name()
                        ),
                    );
                }
                let Some(body) = script_body(data) else {
                    continue;
                };
                (TagType(18), timestamp, body)
            }
            Event::Malformed { msg_type, error } => {
                st.malformed += 1;
                if st.malformed == 1 {
                    warn(
                        &bar,
                        &format!(
                            "play: the server sent a malformed {} message ({error}); skipped (further ones are counted in the stats)",
                            rtmptool::proto::message::MessageType(msg_type)
                        ),
                    );
                }
                continue;
            }
            Event::Status(s) if s.is_error() => {
                failure = Some(err(
                    exit::REFUSED,
                    format!(
                        "{shown}: play: the server stopped the stream: {}",
                        streaming::refusal(url, &s.code, &s.description, args.conn.reveal_keys)
                    ),
                ));
                break;
            }
            Event::Status(s)
                if matches!(
                    s.code.as_str(),
                    "NetStream.Play.UnpublishNotify"
                        | "NetStream.Play.Stop"
                        | "NetStream.Play.Complete"
                ) && st.tags > 0 =>
            {
                break;
            }
            Event::UserControl(UserControl::StreamEof(_)) if st.tags > 0 => break,
            _ => continue,
        };
        if kind.0 != 18 {
            let video = kind.0 == 9;
            if let Some(l) = limit
                && st
                    .first_ts
                    .is_some_and(|f| u64::from(ts.saturating_sub(f)) >= l)
            {
                break;
            }
            if video
                && let Some(n) = args.until_keyframes
                && st.keyframes >= n
                && VideoInfo::parse(&data).is_ok_and(|v| v.is_keyframe())
            {
                break;
            }
            st.on_media(video, ts, &data);
            first_media_at.get_or_insert_with(Instant::now);
        }
        if let Err(e) = out.push(Pending { kind, ts, data }) {
            failure = write_error(&out, &e, &mut st);
            break;
        }
        if out.header.is_none()
            && ((st.has_audio && st.has_video)
                || out.held.len() >= 256
                || first_media_at.is_some_and(|t| t.elapsed() >= HOLD))
            && let Err(e) = out.release(&st)
        {
            failure = write_error(&out, &e, &mut st);
            break;
        }
        if let Some(n) = args.frames {
            let frames = if st.has_video {
                st.video_frames
            } else {
                st.audio_frames
            };
            if frames >= n {
                break;
            }
        }
        if let Some(b) = &bar
            && last_draw.elapsed() >= Duration::from_millis(200)
        {
            last_draw = Instant::now();
            b.set_message(format!(
                "{}  {:.0} kbit/s  {}  {} video / {} audio frames",
                media_time(st.media_ms()),
                st.bitrate_kbps(),
                human_bytes(st.bytes),
                st.video_frames,
                st.audio_frames
            ));
            b.tick();
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let wall = t0.elapsed();
    if failure.is_none() || st.interrupted {
        d.session.close();
        let _ = tokio::time::timeout(global.timeout, d.flush()).await;
        let _ = tokio::time::timeout(global.timeout, d.stream.shutdown()).await;
    }
    if st.interrupted && st.tags == 0 && failure.is_none() {
        // Ctrl-C before anything came (waiting for a publisher): nothing
        // could be saved (CLI.md: 130), and no header-only file is left.
        discard(&mut out);
        return Err(err(
            exit::INTERRUPTED,
            format!("{shown}: play: interrupted before any media arrived; nothing written"),
        ));
    }
    let kept = if st.output_closed {
        None
    } else if st.tags == 0 && failure.is_some() {
        discard(&mut out);
        None
    } else {
        match out.finish(&st) {
            Ok(p) => p,
            Err(e) => match write_error(&out, &e, &mut st) {
                None => None,
                Some(f) => {
                    discard(&mut out);
                    return Err(f);
                }
            },
        }
    };
    report(&style, &st, wall, url, args, to_stdout, kept.as_deref());
    match failure {
        None => Ok(()),
        Some(mut f) => {
            if let Some(p) = kept {
                f.error =
                    f.error
                        .context(format!("kept {} whole tags in {}", st.tags, p.display()));
            }
            Err(f)
        }
    }
}

/// A warning line on stderr (around the progress bar).
fn warn(bar: &Option<indicatif::ProgressBar>, w: &str) {
    let line = format!("rtmptool: warning: {}", rtmptool::text::sanitize(w));
    match bar {
        Some(b) => b.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
    }
}

/// A failed write ends the play: with an error, or quietly when the reader
/// of a pipe went away.
fn write_error(out: &Out, e: &std::io::Error, st: &mut Stats) -> Option<Exit> {
    if e.kind() == std::io::ErrorKind::BrokenPipe
        && matches!(out.sink, Sink::Stdout(_) | Sink::Stream(..))
    {
        st.output_closed = true;
        return None;
    }
    Some(write_failed(out, e))
}

fn write_failed(out: &Out, e: &std::io::Error) -> Exit {
    let name = match &out.sink {
        Sink::File { part, .. } => part.display().to_string(),
        Sink::Stream(_, p) => p.display().to_string(),
        _ => "stdout".into(),
    };
    let code = if e.kind() == std::io::ErrorKind::BrokenPipe {
        exit::FAILURE
    } else {
        exit::BAD_INPUT
    };
    err(code, format!("cannot write the output {name}: {e}"))
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
        .map(rtmptool::proto::amf0::Amf0Value::without_avmplus)
        .collect();
    Some(
        Message::Data(DataMessage {
            encoding: Encoding::Amf0,
            values,
        })
        .encode(),
    )
}

fn data_name(values: &[rtmptool::proto::amf0::Amf0Value]) -> &str {
    use rtmptool::proto::amf0::Amf0Value;
    match values.first() {
        Some(Amf0Value::String(s) | Amf0Value::LongString(s)) => s,
        _ => "",
    }
}

fn report(
    style: &Style,
    st: &Stats,
    wall: Duration,
    url: &RtmpUrl,
    args: &PlayArgs,
    to_stdout: bool,
    kept: Option<&Path>,
) {
    // With the FLV on stdout, the statistics go to stderr.
    let mut out: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let (gop_frames, gop_ms) = st.gop();
    let av_start = match (st.first_video, st.first_audio) {
        (Some(v), Some(a)) => Some(i64::from(a) - i64::from(v)),
        _ => None,
    };
    if style.json {
        let _ = write_json_line(
            &mut out,
            &json!({
                "type": "stats",
                "url": url.shown(args.conn.reveal_keys),
                "output": kept.map(|p| p.display().to_string()),
                "bytes": st.bytes,
                "tags": st.tags,
                "video_frames": st.video_frames,
                "audio_frames": st.audio_frames,
                "keyframes": st.keyframes,
                "duration_ms": st.media_ms() as f64,
                "bitrate_kbps": st.bitrate_kbps(),
                "fps": st.fps(),
                "gop_frames": gop_frames,
                "gop_ms": gop_ms,
                "av_start_offset_ms": av_start,
                "av_max_spread_ms": (st.has_audio && st.has_video).then_some(st.max_spread),
                "gaps": st.gaps,
                "regressions": st.regressions,
                "malformed_messages": st.malformed,
                "wall_ms": ms_f(wall),
                "interrupted": st.interrupted,
                "output_closed": st.output_closed,
            }),
        );
    } else if style.verbosity >= 0 {
        let opt = |v: Option<f64>, unit: &str| v.map_or("-".into(), |v| format!("{v}{unit}"));
        let _ = writeln!(
            out,
            "played {}{}: {} video frames ({} keyframes, GOP {} / {}), {} audio frames, {} tags, {} in {} of media ({:.0} kbit/s, {} fps); A/V start offset {}, max spread {}; {} gaps > {GAP_MS} ms, {} timestamp regressions; wall {:.3} s{}",
            url.shown(args.conn.reveal_keys),
            kept.map_or(String::new(), |p| format!(" into {}", p.display())),
            st.video_frames,
            st.keyframes,
            opt(gop_frames, " frames"),
            opt(gop_ms, " ms"),
            st.audio_frames,
            st.tags,
            human_bytes(st.bytes),
            media_time(st.media_ms()),
            st.bitrate_kbps(),
            opt(st.fps(), ""),
            av_start.map_or("-".into(), |v| format!("{v} ms")),
            if st.has_audio && st.has_video {
                format!("{} ms", st.max_spread)
            } else {
                "-".into()
            },
            st.gaps,
            st.regressions,
            wall.as_secs_f64(),
            if st.interrupted {
                " (interrupted)"
            } else if st.output_closed {
                " (the reader of the output went away)"
            } else {
                ""
            }
        );
    }
    let _ = out.flush();
}

fn discard(out: &mut Out) {
    if let Sink::File { part, .. } = &out.sink {
        let _ = std::fs::remove_file(part);
    }
}
