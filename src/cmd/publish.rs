//! `rtmptool publish FILE|- URL`: send an FLV (E. FLV file format, Adobe
//! FLV spec v10.1 annex E) to a server as a live stream, the way encoders do
//! (RTMP 1.0 §7.2.2.6 publish, preceded by releaseStream/FCPublish), with
//! `@setDataFrame`/`onMetaData` from the file's script tag and every tag as
//! an audio/video/data message carrying its timestamp.
//!
//! Pacing: a tag is due at `t0 + (media time)/rate` on a monotonic clock,
//! media time counted from the first tag, so a 10 s file takes 10 s. While
//! waiting, the server's messages are read (pings, acknowledgements,
//! onStatus errors). The input is parsed on a separate thread and handed over
//! a bounded channel, so a slow stdin never stalls the connection and memory
//! stays bounded.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;

use super::streaming::{self, ConnectOptions, err, human_bytes, media_time, ms_f};
use crate::cli::{GlobalArgs, PublishArgs};
use crate::report::{Style, write_json_line};
use crate::{Exit, exit};
use rtmptool::net::{DriveError, Driver, RtmpUrl};
use rtmptool::proto::capabilities::{Capabilities, StreamCodecs};
use rtmptool::proto::flv::{FlvEvent, FlvWarning, Reader, Tag};
use rtmptool::proto::media::MediaUnit;
use rtmptool::proto::message::{Message, MessageType};
use rtmptool::proto::session::{Event, Goal};
use rtmptool::proto::timeline::{Discontinuity, Timeline, Track};

/// What the input thread hands over.
enum Item {
    /// The file header was read (first pass only): whether it flags audio
    /// and video.
    Header { audio: bool, video: bool },
    /// A whole tag.
    Tag(Tag),
    /// Pass N (2, 3, ...) of `--loop` starts.
    Pass,
    /// Clean end of input.
    End,
    /// The input broke: the error and the offset of the end of the last whole tag.
    Broken { error: String, offset: u64 },
    /// The input could not be read.
    Io(String),
    /// Something to warn about once (not per tag).
    Warn(String),
}

/// PreviousTagSize mismatches of one pass: how many, and the first.
#[derive(Default)]
struct Mismatches {
    count: u64,
    first: Option<(u64, u32, u32)>,
}

impl Mismatches {
    fn warning(&self, input: &Path) -> Option<String> {
        let (offset, expected, got) = self.first?;
        Some(format!(
            "{}: {} PreviousTagSize field(s) do not match the tag before them, the first at offset {offset} (says {got}, the tag makes it {expected}); the file was cut and joined, or written by a buggy muxer; tags are sent as found",
            input_name(input),
            self.count
        ))
    }
}

fn open(input: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    if input == Path::new("-") {
        Ok(Box::new(std::io::stdin()))
    } else {
        Ok(Box::new(std::fs::File::open(input)?))
    }
}

/// Parses the input (`loops` times; 0 = forever) and sends items until the
/// receiver goes away.
fn reader_thread(input: PathBuf, loops: u32, tx: mpsc::Sender<Item>) {
    let mut pass = 0u32;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        pass += 1;
        if pass > 1 && tx.blocking_send(Item::Pass).is_err() {
            return;
        }
        let mut src = match open(&input) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Item::Io(e.to_string()));
                return;
            }
        };
        let mut r = Reader::new();
        let mut last_whole = 0u64;
        let mut mismatches = Mismatches::default();
        loop {
            let n = match src.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.blocking_send(Item::Io(e.to_string()));
                    return;
                }
            };
            if n > 0 {
                r.push(&buf[..n]);
            }
            loop {
                match r.poll() {
                    Ok(Some(FlvEvent::Header(h))) => {
                        last_whole = r.offset();
                        let header = Item::Header {
                            audio: h.has_audio,
                            video: h.has_video,
                        };
                        if pass == 1 && tx.blocking_send(header).is_err() {
                            return;
                        }
                    }
                    Ok(Some(FlvEvent::Tag(t))) => {
                        last_whole = t.offset + t.tag_size() as u64;
                        if tx.blocking_send(Item::Tag(t)).is_err() {
                            return;
                        }
                    }
                    Ok(Some(FlvEvent::Warning(FlvWarning::PreviousTagSizeMismatch {
                        offset,
                        expected,
                        got,
                    }))) => {
                        mismatches.count += 1;
                        mismatches.first.get_or_insert((offset, expected, got));
                    }
                    Ok(Some(FlvEvent::Warning(_))) => {}
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.blocking_send(Item::Broken {
                            error: e.to_string(),
                            offset: last_whole,
                        });
                        return;
                    }
                }
            }
            if n == 0 {
                if pass == 1
                    && let Some(w) = mismatches.warning(&input)
                    && tx.blocking_send(Item::Warn(w)).is_err()
                {
                    return;
                }
                if let Err(e) = r.finish() {
                    let _ = tx.blocking_send(Item::Broken {
                        error: e.to_string(),
                        offset: last_whole,
                    });
                    return;
                }
                break;
            }
        }
        if loops != 0 && pass >= loops {
            let _ = tx.blocking_send(Item::End);
            return;
        }
    }
}

/// Counters for the final record.
#[derive(Debug, Default)]
struct Stats {
    bytes: u64,
    tags: u64,
    video_frames: u64,
    audio_frames: u64,
    keyframes: u64,
    /// Media time of the last tag sent (ms from the first).
    media_ms: u64,
    max_lag: Duration,
    passes: u32,
    interrupted: bool,
    /// Timestamp discontinuities bridged.
    discontinuities: u64,
    /// Tags not sent ([`Unsent`]).
    unsent: u64,
}

/// Why a tag of the file is not sent.
#[derive(Clone, Copy)]
enum Unsent {
    /// Its Filter bit is set (encrypted: FLV 10.1 E.4.1).
    Encrypted,
    /// Not audio (8), video (9) or script data (18).
    Type,
    /// Script data that does not decode as AMF0.
    Script,
}

impl Unsent {
    fn warning(self, name: &str, tag: &Tag) -> String {
        let what = match self {
            Unsent::Encrypted => format!(
                "is encrypted (tag type {:#04x}, Filter bit set): rtmptool does not decrypt",
                tag.tag_type.0
            ),
            Unsent::Type => format!(
                "has type {:#04x}, not audio (8), video (9) or script data (18)",
                tag.tag_type.0
            ),
            Unsent::Script => "is script data that does not decode as AMF0".to_owned(),
        };
        format!(
            "{name}: the tag at offset {} {what}: not sent (this and any other such tag; counted as unsent)",
            tag.offset
        )
    }
}

impl Stats {
    fn count(&mut self, tag: &Tag) {
        self.tags += 1;
        self.bytes += tag.data.len() as u64;
        // The one counting rule dump --stats and play use (MediaUnit).
        if tag.is_video() || tag.is_audio() {
            match MediaUnit::of(tag.is_video(), &tag.data) {
                MediaUnit::VideoFrame { key } => {
                    self.video_frames += 1;
                    self.keyframes += u64::from(key);
                }
                MediaUnit::AudioFrame => self.audio_frames += 1,
                MediaUnit::Config | MediaUnit::Unparsed => {}
            }
        }
    }

    fn bitrate_kbps(&self) -> f64 {
        if self.media_ms == 0 {
            0.0
        } else {
            (self.bytes as f64 * 8.0 / self.media_ms as f64 * 10.0).round() / 10.0
        }
    }
}

/// Runs `publish`.
pub fn run(args: &PublishArgs, global: &GlobalArgs) -> Result<(), Exit> {
    let style = Style::from_args(global);
    if args.input == Path::new("-") && args.loops != 1 {
        return Err(err(
            exit::USAGE,
            "--loop needs a file: stdin cannot be read twice".into(),
        ));
    }
    let url = RtmpUrl::parse(
        &args.url,
        args.conn.app.as_deref(),
        args.conn.stream.as_deref(),
    )
    .map_err(|e| err(exit::BAD_INPUT, e.to_string()))?;
    let rt = super::runtime()?;
    rt.block_on(publish(args, global, &url, style))
}

fn input_name(p: &Path) -> String {
    if p == Path::new("-") {
        "stdin".into()
    } else {
        p.display().to_string()
    }
}

/// Wraps a script tag body as the data message encoders send:
/// `@setDataFrame` before `onMetaData`, other script data as is.
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

enum Wake {
    Interrupt,
    Read(Result<usize, DriveError>),
    Item(Option<Item>),
    Due,
}

/// Handles the server's messages while publishing: an onStatus error ends it.
fn server_events(d: &mut Driver, url: &RtmpUrl, reveal: bool) -> Result<(), Exit> {
    while let Some(ev) = d.session.poll_event() {
        if let Event::Status(s) = ev.event
            && s.is_error()
        {
            return Err(err(
                exit::REFUSED,
                format!(
                    "{}: publish: the server stopped the stream: {}",
                    url.shown(reveal),
                    streaming::refusal(url, &s.code, &s.description, reveal)
                ),
            ));
        }
    }
    Ok(())
}

/// Tags the first tags may be: enough to see an audio and a video tag
/// (which carry the codecs) of any real stream, few enough that a file
/// that flags a track it lacks is not read far ahead.
const FIRST_TAGS: usize = 32;

/// The first tags of the input, up to a tag of each track the header flags
/// (or [`FIRST_TAGS`], the end of the input, a failure of it, or 1 s), and
/// the E-RTMP codecs they use. `None` on Ctrl-C.
async fn first_tags(
    rx: &mut mpsc::Receiver<Item>,
    (audio, video): (bool, bool),
    sig: &mut streaming::Interrupt,
) -> Option<(VecDeque<Item>, StreamCodecs)> {
    let mut held = VecDeque::new();
    let mut codecs = StreamCodecs::default();
    let (mut seen_audio, mut seen_video) = (!audio, !video);
    let deadline = tokio::time::sleep(Duration::from_secs(1));
    tokio::pin!(deadline);
    while !(seen_audio && seen_video) && held.len() < FIRST_TAGS {
        let item = tokio::select! {
            biased;
            _ = sig.recv() => return None,
            _ = &mut deadline => break,
            it = rx.recv() => it,
        };
        let Some(item) = item else { break };
        let more = match &item {
            Item::Tag(t) if t.is_video() => {
                seen_video = true;
                codecs.note_video(&t.data);
                true
            }
            Item::Tag(t) if t.is_audio() => {
                seen_audio = true;
                codecs.note_audio(&t.data);
                true
            }
            Item::Tag(_) | Item::Warn(_) => true,
            _ => false,
        };
        held.push_back(item);
        if !more {
            break;
        }
    }
    Some((held, codecs))
}

/// The next item: those held back first, then the reader's.
async fn next_item(held: &mut VecDeque<Item>, rx: &mut mpsc::Receiver<Item>) -> Option<Item> {
    match held.pop_front() {
        Some(it) => Some(it),
        None => rx.recv().await,
    }
}

async fn publish(
    args: &PublishArgs,
    global: &GlobalArgs,
    url: &RtmpUrl,
    style: Style,
) -> Result<(), Exit> {
    let name = input_name(&args.input);
    let reveal = args.conn.reveal_keys;
    let shown = url.shown(reveal);
    let (tx, mut rx) = mpsc::channel(16);
    {
        let input = args.input.clone();
        let loops = args.loops;
        std::thread::spawn(move || reader_thread(input, loops, tx));
    }
    let mut sig = streaming::sigint()?;
    // The header first: not-an-FLV fails before any connection is made.
    let header = tokio::select! {
        biased;
        _ = sig.recv() => {
            return Err(err(
                exit::INTERRUPTED,
                format!("publish: interrupted while waiting for {name}"),
            ));
        }
        h = rx.recv() => h,
    };
    let flags = match header {
        Some(Item::Header { audio, video }) => (audio, video),
        Some(Item::Io(e)) => return Err(err(exit::BAD_INPUT, format!("cannot read {name}: {e}"))),
        Some(Item::Broken { error, .. }) => {
            return Err(err(
                exit::BAD_INPUT,
                format!("{name} is not an FLV: {error}"),
            ));
        }
        _ => return Err(err(exit::BAD_INPUT, format!("{name}: no FLV header"))),
    };
    // The first tags, held back: an E-RTMP stream's codecs are announced
    // in connect.
    let (mut pending, codecs) = first_tags(&mut rx, flags, &mut sig).await.ok_or_else(|| {
        err(
            exit::INTERRUPTED,
            format!("publish: interrupted while waiting for {name}"),
        )
    })?;
    let mut options = ConnectOptions::of(
        url,
        Goal::Publish {
            stream: url.stream_with_query(),
            kind: args.kind.clone(),
        },
        &args.conn,
        global.timeout,
    );
    if let Some(c) = Capabilities::publisher(&codecs) {
        options.connect_extra = c.to_properties();
    }
    let mut d = streaming::connect_or_interrupt(options, &mut sig, "publish").await?;

    let bar = style.progress.then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        b
    });

    let mut st = Stats {
        passes: 1,
        ..Stats::default()
    };
    let mut t0: Option<Instant> = None;
    // Timestamp of the first tag sent; output = base + media time.
    let mut base: Option<u32> = None;
    let mut timeline = Timeline::new(args.max_gap.as_millis().min(u128::from(u32::MAX)) as u64);
    let mut broken: Option<(String, u64)> = None;
    let mut failure: Option<Exit> = None;
    let mut last_draw = Instant::now();
    let mut told = [false; 3];
    let limit = args.duration.map(|d| d.as_millis() as u64);

    'outer: loop {
        let wake = tokio::select! {
            biased;
            _ = sig.recv() => Wake::Interrupt,
            r = d.read_some() => Wake::Read(r),
            it = next_item(&mut pending, &mut rx) => Wake::Item(it),
        };
        let item = match wake {
            Wake::Interrupt => {
                st.interrupted = true;
                break;
            }
            Wake::Read(r) => {
                if let Err(e) = r
                    .map_err(|e| disconnected(&e, &st, &shown))
                    .and_then(|_| server_events(&mut d, url, reveal))
                {
                    failure = Some(e);
                    break;
                }
                continue;
            }
            Wake::Due => continue,
            Wake::Item(None) | Wake::Item(Some(Item::End)) => break,
            Wake::Item(Some(it)) => it,
        };
        let tag = match item {
            Item::Tag(t) => t,
            Item::Pass => {
                timeline.start_pass();
                st.passes += 1;
                continue;
            }
            Item::Broken { error, offset } => {
                broken = Some((error, offset));
                break;
            }
            Item::Io(e) => {
                failure = Some(err(exit::BAD_INPUT, format!("reading {name}: {e}")));
                break;
            }
            Item::Warn(w) => {
                warn(&bar, &w);
                continue;
            }
            Item::Header { .. } | Item::End => continue,
        };
        // What the tag is sent as; a tag that cannot be sent is said (once
        // for each reason) and counted apart, before it takes any time.
        let msg = if tag.is_audio() {
            Ok(Message::Audio(tag.data.clone()))
        } else if tag.is_video() {
            Ok(Message::Video(tag.data.clone()))
        } else if tag.is_script() {
            data_message(&tag.data).ok_or(Unsent::Script)
        } else if tag.tag_type.0 & 0x20 != 0 {
            Err(Unsent::Encrypted)
        } else {
            Err(Unsent::Type)
        };
        let msg = match msg {
            Ok(m) => m,
            Err(why) => {
                st.unsent += 1;
                if !told[why as usize] {
                    told[why as usize] = true;
                    warn(&bar, &why.warning(&name, &tag));
                }
                continue;
            }
        };
        let track = if tag.is_video() {
            Track::Video
        } else if tag.is_audio() {
            Track::Audio
        } else {
            Track::Data
        };
        let (media, jump) = timeline.place(track, tag.timestamp, tag.offset);
        if let Some(j) = jump
            && timeline.discontinuities == 1
        {
            warn(&bar, &discontinuity_warning(&name, &j, args.max_gap));
        }
        if let Some(l) = limit
            && media >= l
        {
            break;
        }
        let base = *base.get_or_insert(args.start_timestamp.unwrap_or(tag.timestamp));
        let out_ts = (u64::from(base) + media) as u32;

        // Pace.
        let start = *t0.get_or_insert_with(Instant::now);
        if !args.no_pace {
            // --rate is 0.01..=1000 (checked at parse time) and media time
            // is bridged over jumps, so this stays small; saturate anyway.
            let wait = Duration::try_from_secs_f64(media as f64 / 1000.0 / args.rate)
                .unwrap_or(Duration::from_secs(u32::MAX.into()));
            let due = start
                .checked_add(wait)
                .unwrap_or_else(|| start + Duration::from_secs(u32::MAX.into()));
            loop {
                if Instant::now() >= due {
                    break;
                }
                let wake = tokio::select! {
                    biased;
                    _ = sig.recv() => Wake::Interrupt,
                    r = d.read_some() => Wake::Read(r),
                    _ = tokio::time::sleep_until(due.into()) => Wake::Due,
                };
                match wake {
                    Wake::Interrupt => {
                        st.interrupted = true;
                        break 'outer;
                    }
                    Wake::Read(r) => {
                        if let Err(e) = r
                            .map_err(|e| disconnected(&e, &st, &shown))
                            .and_then(|_| server_events(&mut d, url, reveal))
                        {
                            failure = Some(e);
                            break 'outer;
                        }
                    }
                    _ => break,
                }
            }
            st.max_lag = st
                .max_lag
                .max(Instant::now().saturating_duration_since(due));
        }

        {
            d.session.send_media(&msg, out_ts);
            // A peer that stops reading ends this within --timeout; Ctrl-C
            // ends it at once.
            let sent = tokio::select! {
                biased;
                _ = sig.recv() => None,
                r = d.flush_within(global.timeout) => Some(r),
            };
            match sent {
                None => {
                    st.interrupted = true;
                    break;
                }
                Some(Err(e)) => {
                    failure = Some(disconnected(&DriveError::Io(e), &st, &shown));
                    break;
                }
                Some(Ok(())) => {}
            }
        }
        st.count(&tag);
        st.media_ms = media;
        if let Some(b) = &bar
            && last_draw.elapsed() >= Duration::from_millis(200)
        {
            last_draw = Instant::now();
            let wall = start.elapsed();
            let lag = wall.as_secs_f64() * args.rate - media as f64 / 1000.0;
            b.set_message(format!(
                "{}  {:.0} kbit/s  {}  lag {:.0} ms",
                media_time(media),
                st.bitrate_kbps(),
                human_bytes(st.bytes),
                (lag * 1000.0).max(0.0)
            ));
            b.tick();
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let wall = t0.map_or(Duration::ZERO, |t| t.elapsed());
    st.discontinuities = timeline.discontinuities;
    if failure.is_none() {
        // Polite end: FCUnpublish + deleteStream, then close our side. After
        // Ctrl-C within a second whatever happens: a server that stopped
        // reading does not get them.
        let limit = if st.interrupted {
            global.timeout.min(Duration::from_millis(400))
        } else {
            global.timeout
        };
        d.session.close();
        let _ = tokio::time::timeout(limit, d.flush()).await;
        let _ = tokio::time::timeout(limit, d.stream.shutdown()).await;
    }
    report(&style, &st, wall, url, args);
    if let Some(f) = failure {
        return Err(f);
    }
    if let Some((error, offset)) = broken {
        return Err(err(
            exit::BAD_INPUT,
            format!(
                "{name}: {error}; published {} tags ({} of media): every whole tag, up to offset {offset}",
                st.tags,
                media_time(st.media_ms)
            ),
        ));
    }
    Ok(())
}

/// A warning line on stderr (around the progress bar).
fn warn(bar: &Option<indicatif::ProgressBar>, w: &str) {
    let line = format!("rtmptool: warning: {}", rtmptool::text::sanitize(w));
    match bar {
        Some(b) => b.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
    }
}

fn discontinuity_warning(name: &str, j: &Discontinuity, max_gap: Duration) -> String {
    let what = if j.backwards {
        format!("step back from {} ms to {} ms", j.previous, j.timestamp)
    } else {
        format!(
            "jump from {} ms to {} ms (more than --max-gap {})",
            j.previous,
            j.timestamp,
            rtmptool::net::human_duration(max_gap)
        )
    };
    format!(
        "{name}: tag timestamps {what} at offset {}; bridged: that tag goes out at {} of media, right after the one before, and the rest follows it (further discontinuities are bridged the same way and counted in the stats)",
        j.offset,
        media_time(j.placed_ms)
    )
}

fn disconnected(e: &DriveError, st: &Stats, shown: &str) -> Exit {
    if let DriveError::Io(io) = e
        && io.kind() == std::io::ErrorKind::TimedOut
    {
        return err(
            exit::NETWORK,
            format!(
                "{shown}: publish: {} (after {} tags, {} of media, {})",
                rtmptool::text::sanitize(&io.to_string()),
                st.tags,
                media_time(st.media_ms),
                human_bytes(st.bytes)
            ),
        );
    }
    streaming::broke_mid_stream(
        e,
        &format!("{shown}: publish"),
        &format!(
            "{} tags, {} of media, {}",
            st.tags,
            media_time(st.media_ms),
            human_bytes(st.bytes)
        ),
    )
}

fn report(style: &Style, st: &Stats, wall: Duration, url: &RtmpUrl, args: &PublishArgs) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if style.json {
        let _ = write_json_line(
            &mut out,
            &json!({
                "type": "stats",
                "url": url.shown(args.conn.reveal_keys),
                "bytes": st.bytes,
                "tags": st.tags,
                "video_frames": st.video_frames,
                "audio_frames": st.audio_frames,
                "keyframes": st.keyframes,
                "duration_ms": st.media_ms as f64,
                "bitrate_kbps": st.bitrate_kbps(),
                "wall_ms": ms_f(wall),
                "max_lag_ms": if args.no_pace { None } else { Some(ms_f(st.max_lag)) },
                "passes": st.passes,
                "discontinuities": st.discontinuities,
                "unsent_tags": st.unsent,
                "interrupted": st.interrupted,
            }),
        );
    } else if style.verbosity >= 0 {
        let _ = writeln!(
            out,
            "published {} to {}: {} video frames ({} keyframes), {} audio frames, {} tags, {} in {} of media ({:.0} kbit/s); wall {:.3} s{}{}{}{}{}",
            input_name(&args.input),
            url.shown(args.conn.reveal_keys),
            st.video_frames,
            st.keyframes,
            st.audio_frames,
            st.tags,
            human_bytes(st.bytes),
            media_time(st.media_ms),
            st.bitrate_kbps(),
            wall.as_secs_f64(),
            if args.no_pace {
                String::new()
            } else {
                format!(", max lag {:.1} ms", ms_f(st.max_lag))
            },
            if st.passes > 1 {
                format!(", {} passes", st.passes)
            } else {
                String::new()
            },
            if st.discontinuities > 0 {
                format!(", {} timestamp discontinuities bridged", st.discontinuities)
            } else {
                String::new()
            },
            if st.unsent > 0 {
                format!(", {} tags not sent", st.unsent)
            } else {
                String::new()
            },
            if st.interrupted { " (interrupted)" } else { "" }
        );
    }
    let _ = out.flush();
}
