//! `relay SRC DST`: plays a stream from one server and publishes it to
//! another, forwarding metadata, sequence headers, audio and video bodies
//! byte for byte with their timestamps (RTMP 1.0 §7.1; no AMF or media
//! body is re-encoded).
//!
//! The engine runs over two connected [`Driver`]s and reconnects through a
//! [`Connector`] the command supplies. After the destination is reached
//! again, the cached metadata and sequence headers go first and video
//! resumes at a key frame, so the downstream stream is decodable from its
//! first frame. A destination slower than the source is bounded: past
//! `queue_bytes` waiting, media is dropped until the next key frame, and
//! the drop is reported.

mod hot;
pub mod proxy;

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use crate::net::{DriveError, Driver};
use crate::proto::media::{MediaCounter, MediaUnit};
use crate::proto::message::{MessageType, UserControl, is_metadata};
use crate::proto::session::{ClientSession, Event};
use crate::proto::stream_config::{self, StreamConfig};

/// Which end of the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Where the stream is played from.
    Source,
    /// Where it is published to.
    Destination,
}

impl Side {
    /// `source` or `destination`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Destination => "destination",
        }
    }
}

/// Why an end could not be reached (the command's words and exit code).
#[derive(Debug)]
pub struct ConnectError {
    /// Exit code of CLI.md for it.
    pub code: u8,
    /// One line.
    pub message: String,
}

/// Reaches one end: play from the source, publish to the destination, up
/// to the first onStatus.
pub trait Connector {
    /// Connects `side`.
    fn connect(&mut self, side: Side) -> impl Future<Output = Result<Driver, ConnectError>>;
}

/// Settings of a relay.
#[derive(Debug, Clone, Copy)]
pub struct RelayConfig {
    /// Reconnect an end that dropped (with backoff) instead of stopping.
    pub reconnect: bool,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
    /// Bytes waiting for the destination beyond which media is dropped to
    /// the next key frame.
    pub queue_bytes: usize,
    /// The destination must take a byte within this long.
    pub stall: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            reconnect: false,
            max_backoff: Duration::from_secs(10),
            queue_bytes: 4 << 20,
            stall: Duration::from_secs(10),
        }
    }
}

/// Counters of a relay.
#[derive(Debug, Clone, Default)]
pub struct RelayStats {
    /// Media and data bytes forwarded.
    pub bytes: u64,
    /// Frames forwarded, by the shared counting rule.
    pub frames: MediaCounter,
    /// Reconnections of the source.
    pub source_reconnects: u32,
    /// Reconnections of the destination.
    pub destination_reconnects: u32,
    /// Messages dropped (slow destination, or waiting for a key frame
    /// after a reconnect).
    pub dropped: u64,
    /// Bytes waiting for the destination now.
    pub queued: usize,
    /// Added to the source's timestamps since its stream started again
    /// behind the destination's time (0: unchanged).
    pub timestamp_shift_ms: u32,
    /// Microseconds from a message's arrival from the source to the moment
    /// the destination's socket had taken all of it: what the relay adds.
    pub latency_us: LatencyHistogram,
}

/// A histogram of per-message relay latencies (µs, 1 µs to 60 s), made at
/// the first measure (its counts take some 100 KB: an empty one costs
/// nothing to make or copy).
#[derive(Debug, Clone, Default)]
pub struct LatencyHistogram(Option<Box<hdrhistogram::Histogram<u64>>>);

impl LatencyHistogram {
    fn record(&mut self, us: u64) {
        let h = self.0.get_or_insert_with(|| {
            Box::new(
                hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            )
        });
        let _ = h.record(us.clamp(1, 60_000_000));
    }

    /// Messages measured.
    pub fn count(&self) -> u64 {
        self.0.as_ref().map_or(0, |h| h.len())
    }

    /// The value at quantile `q` (0..=1), in ms.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        self.0
            .as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| h.value_at_quantile(q) as f64 / 1000.0)
    }
}

impl RelayStats {
    /// The counters without the latencies (what a live status line shows;
    /// copying the histogram once a second touched fresh memory: page
    /// faults).
    pub fn counters(&self) -> RelayStats {
        RelayStats {
            bytes: self.bytes,
            frames: self.frames,
            source_reconnects: self.source_reconnects,
            destination_reconnects: self.destination_reconnects,
            dropped: self.dropped,
            queued: self.queued,
            timestamp_shift_ms: self.timestamp_shift_ms,
            latency_us: LatencyHistogram::default(),
        }
    }
}

/// What the relay reports as it goes.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Both ends are up; the stream flows.
    Flowing,
    /// An end dropped; `retry_in` until the next attempt (when reconnecting).
    Dropped {
        /// Which end.
        side: Side,
        /// Why.
        why: String,
    },
    /// An end is back.
    Reconnected {
        /// Which end.
        side: Side,
    },
    /// Once a second while the stream flows (for a live status line).
    Tick,
    /// Media dropped to the next key frame (slow destination).
    Skipping {
        /// Bytes waiting when it began.
        queued: usize,
        /// The stream has video: media resumes at its next key frame
        /// (else audio resumes once the destination takes it again).
        video: bool,
    },
    /// The source's publisher left; with `--reconnect` the relay waits for
    /// the next one, the destination's stream staying up.
    SourceEnded,
    /// The source's stream started again behind the destination's time:
    /// from here on its timestamps are sent this much later, so that the
    /// destination's never go back.
    Shifted {
        /// The shift now in force (ms, added modulo 2^32).
        shift_ms: u32,
    },
}

/// Why the relay stopped early.
#[derive(Debug)]
pub struct RelayError {
    /// Which end.
    pub side: Side,
    /// Exit code of CLI.md.
    pub code: u8,
    /// One line.
    pub message: String,
    /// What was relayed until then.
    pub stats: RelayStats,
}

/// Metadata and the configuration of every track (sequence headers, E-RTMP
/// multichannel configs and video metadata), for a reconnected destination.
#[derive(Default)]
struct Cache {
    /// The type (AMF0 or AMF3 data), time and body of the last metadata.
    metadata: Option<(MessageType, u32, Bytes)>,
    config: StreamConfig<(MessageType, u32, Bytes)>,
}

/// The state of a relay that outlives its connections.
struct Flow {
    stats: RelayStats,
    cache: Cache,
    /// Arrival times of messages not yet all taken by the destination.
    in_flight: std::collections::VecDeque<Instant>,
    /// Video waits for a key frame (after a reconnect or a skip).
    need_key: bool,
    skipping: bool,
    /// The latest timestamp sent to the destination (modulo 2^32).
    last_ts: Option<u32>,
    /// The source's stream (re)started (a new publisher, or the source
    /// reconnected): its first message decides whether to shift.
    restarted: bool,
    /// Video was seen (a skip ends at a key frame; without video, once
    /// audio goes out again).
    has_video: bool,
}

/// How the steady state of a relay ended.
enum Outcome {
    /// Stopped (Ctrl-C, `--duration`).
    Stop,
    /// The source's publisher left (without `--reconnect`).
    Ended,
    /// The destination refused the stream (without `--reconnect`).
    Refused(String),
    /// An end failed.
    Failed(Side, DriveError),
}

impl Flow {
    fn new(stats: RelayStats) -> Flow {
        Flow {
            stats,
            cache: Cache::default(),
            in_flight: Default::default(),
            need_key: false,
            skipping: false,
            last_ts: None,
            restarted: false,
            has_video: false,
        }
    }

    /// Forwards what the source's session decoded; true when its publisher
    /// left.
    fn on_source(
        &mut self,
        src: &mut ClientSession,
        dst: &mut ClientSession,
        dst_unsent: usize,
        cfg: RelayConfig,
        arrived: Instant,
        progress: &mut impl FnMut(&Progress, &RelayStats),
    ) -> bool {
        let mut ended = false;
        while let Some(ev) = src.poll_event() {
            let (t, ts, payload) = match ev.event {
                Event::Audio { timestamp, payload } => (MessageType::AUDIO, timestamp, payload),
                Event::Video { timestamp, payload } => (MessageType::VIDEO, timestamp, payload),
                // As it came: an AMF3 data message (15) keeps its type, and
                // its format byte stays in the body.
                Event::Data {
                    timestamp,
                    raw,
                    data,
                } => {
                    let t = match data.encoding {
                        crate::proto::message::Encoding::Amf0 => MessageType::DATA_AMF0,
                        crate::proto::message::Encoding::Amf3 { .. } => MessageType::DATA_AMF3,
                    };
                    (t, timestamp, raw)
                }
                // The publisher left (nginx-rtmp: Stream EOF; others say it
                // with a status).
                Event::Status(s)
                    if s.code == "NetStream.Play.UnpublishNotify"
                        || s.code == "NetStream.Play.Stop"
                        || s.code == "NetStream.Play.Complete" =>
                {
                    ended = true;
                    self.source_ended(cfg, progress);
                    continue;
                }
                Event::UserControl(UserControl::StreamEof(_)) if self.stats.bytes > 0 => {
                    ended = true;
                    self.source_ended(cfg, progress);
                    continue;
                }
                _ => continue,
            };
            let queued = dst_unsent + dst.poll_transmit_len();
            if forward(self, dst, queued, cfg, t, ts, payload, progress)
                && self.in_flight.len() < 65_536
            {
                self.in_flight.push_back(arrived);
            }
        }
        ended
    }

    /// The source's publisher left: what was cached of its stream is not
    /// the next one's, whose timestamps may start again from 0.
    fn source_ended(
        &mut self,
        cfg: RelayConfig,
        progress: &mut impl FnMut(&Progress, &RelayStats),
    ) {
        if self.restarted {
            return;
        }
        self.restarted = true;
        self.cache = Cache::default();
        if cfg.reconnect {
            progress(&Progress::SourceEnded, &self.stats);
        }
    }

    /// Reads the destination's events: the error it sent, when that stops
    /// the relay.
    fn on_destination(&mut self, dst: &mut ClientSession, cfg: RelayConfig) -> Option<String> {
        while let Some(ev) = dst.poll_event() {
            if let Event::Status(s) = ev.event
                && s.is_error()
                && !cfg.reconnect
            {
                return Some(format!(
                    "the destination sent {} ({})",
                    s.code, s.description
                ));
            }
        }
        None
    }

    /// The destination's socket took everything: what the relay added to
    /// each message waiting.
    fn all_sent(&mut self, now: Instant) {
        for t in self.in_flight.drain(..) {
            self.stats
                .latency_us
                .record(now.duration_since(t).as_micros() as u64);
        }
    }
}

/// How often [`Progress::Tick`] comes.
const TICK: Duration = Duration::from_secs(1);

/// Runs the relay until the source ends (or `stop`), reconnecting when
/// configured.
pub async fn run<C: Connector>(
    connector: &mut C,
    cfg: RelayConfig,
    mut progress: impl FnMut(&Progress, &RelayStats),
    mut stop: watch::Receiver<bool>,
) -> Result<RelayStats, RelayError> {
    let stats = RelayStats::default();
    let fail = |side: Side, e: ConnectError, stats: &RelayStats| RelayError {
        side,
        code: e.code,
        message: e.message,
        stats: stats.clone(),
    };
    // Ctrl-C while an end is being reached stops at once.
    let mut src = tokio::select! {
        r = connector.connect(Side::Source) => r.map_err(|e| fail(Side::Source, e, &stats))?,
        _ = stop.changed() => return Ok(stats),
    };
    let mut dst = tokio::select! {
        r = connector.connect(Side::Destination) => {
            r.map_err(|e| fail(Side::Destination, e, &stats))?
        }
        _ = stop.changed() => return Ok(stats),
    };
    progress(&Progress::Flowing, &stats);
    let mut flow = Flow::new(stats);
    // One stop future for the whole run, not one per message (each is a
    // registration with the channel: measurable at ~70 messages a second).
    let mut hot_stop = stop.clone();
    let stopping = async move {
        let _ = hot_stop.changed().await;
    };
    tokio::pin!(stopping);
    loop {
        // The steady state runs on a thread of its own, off the runtime
        // (a third of the CPU per message), for TLS ends too. What the
        // source sent while the other end was being reached goes on at
        // once.
        let unsent = dst.unsent();
        let ended = flow.on_source(
            &mut src.session,
            &mut dst.session,
            unsent,
            cfg,
            Instant::now(),
            &mut progress,
        );
        let outcome = if ended && !cfg.reconnect {
            Outcome::Ended
        } else if let Some(e) = src.session.error() {
            // The source broke the stream in the read that brought what
            // was just forwarded (while its end was being reached, or a
            // reconnect): no more bytes may come to say so again.
            Outcome::Failed(Side::Source, e.clone().into())
        } else if let Some(e) = dst.session.error() {
            Outcome::Failed(Side::Destination, e.clone().into())
        } else {
            match hot::run(src, dst, flow, cfg, &mut progress, &mut stopping).await {
                Ok((s, d, f, o)) => {
                    (src, dst, flow) = (s, d, f);
                    o
                }
                Err(e) => {
                    return Err(RelayError {
                        side: Side::Source,
                        code: 1,
                        message: e.to_string(),
                        stats: RelayStats::default(),
                    });
                }
            }
        };
        let (side, error) = match outcome {
            Outcome::Stop => {
                src.session.close();
                dst.session.close();
                let _ = tokio::time::timeout(Duration::from_secs(2), src.flush()).await;
                let _ = tokio::time::timeout(Duration::from_secs(2), dst.flush()).await;
                return Ok(flow.stats);
            }
            Outcome::Ended => {
                // The publisher left: the relay is done once the
                // destination has taken what is queued.
                // (Ctrl-C meanwhile stops at once.)
                tokio::select! {
                    r = dst.flush_within(cfg.stall) => if let Err(e) = r {
                        return Err(undelivered(e, flow.stats));
                    },
                    _ = stop.changed() => return Ok(flow.stats),
                }
                src.session.close();
                dst.session.close();
                let _ = tokio::time::timeout(Duration::from_secs(2), src.flush()).await;
                let _ = tokio::time::timeout(Duration::from_secs(2), dst.flush()).await;
                return Ok(flow.stats);
            }
            Outcome::Refused(message) => {
                return Err(RelayError {
                    side: Side::Destination,
                    code: 5,
                    message,
                    stats: flow.stats,
                });
            }
            Outcome::Failed(side, error) => (side, error),
        };
        let stats = &mut flow.stats;
        // A TLS record or alert that breaks the protocol (CLI.md: a TLS
        // failure, exit 6).
        let tls_fault = error.tls_fault();
        let why = match &error {
            DriveError::Closed => format!("the {} closed the connection", side.name()),
            e if tls_fault => format!("TLS: {e}"),
            DriveError::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe => format!(
                "the {} closed the connection while the relay was sending (broken pipe)",
                side.name()
            ),
            DriveError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => {
                format!("the {} reset the connection", side.name())
            }
            e => e.to_string(),
        };
        if !cfg.reconnect {
            if side == Side::Source {
                // The destination gets what was relayed, then a polite end.
                tokio::select! {
                    r = dst.flush_within(cfg.stall) => if let Err(e) = r {
                        return Err(undelivered(e, flow.stats));
                    },
                    _ = stop.changed() => return Ok(flow.stats),
                }
                dst.session.close();
                let _ = tokio::time::timeout(Duration::from_secs(2), dst.flush()).await;
            }
            // A source that closes without ending the stream (no Stream EOF,
            // UnpublishNotify or Play.Stop: its server died or dropped us)
            // broke the stream, as `play` says of the same close.
            let why = match (&error, side) {
                (DriveError::Closed, Side::Source) => format!(
                    "{why} mid-stream, without ending the stream (no Stream EOF or UnpublishNotify), after {} video and {} audio frames",
                    flow.stats.frames.video_frames, flow.stats.frames.audio_frames
                ),
                _ => why,
            };
            return Err(RelayError {
                side,
                code: match &error {
                    DriveError::Session(_) => 9,
                    _ if tls_fault => 6,
                    _ => 3,
                },
                message: why,
                stats: flow.stats,
            });
        }
        progress(&Progress::Dropped { side, why }, stats);
        let mut wait = Duration::from_millis(250);
        let d = loop {
            let attempt = tokio::select! {
                r = connector.connect(side) => Some(r),
                _ = stop.changed() => None,
            };
            match attempt {
                None => return Ok(flow.stats),
                Some(Ok(d)) => break d,
                Some(Err(_)) => {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return Ok(flow.stats),
                    }
                    wait = (wait * 2).min(cfg.max_backoff);
                }
            }
        };
        let stats = &mut flow.stats;
        match side {
            Side::Source => {
                src = d;
                stats.source_reconnects += 1;
                flow.need_key = true;
                flow.restarted = true;
            }
            Side::Destination => {
                dst = d;
                stats.destination_reconnects += 1;
                // Decodable from its first frame: metadata and sequence
                // headers first, video from the next key frame.
                // Stamped with the stream's time now (where the frames go
                // on), not when they were first published.
                let cached = flow.cache.metadata.iter().chain(flow.cache.config.iter());
                for (t, ts, p) in cached {
                    dst.session
                        .send_raw_media(*t, flow.last_ts.unwrap_or(*ts), p);
                }
                flow.need_key = true;
            }
        }
        progress(&Progress::Reconnected { side }, &flow.stats);
    }
}

/// The source ended but the destination did not take what was queued
/// (it stopped reading, or failed): not a clean end.
fn undelivered(e: std::io::Error, stats: RelayStats) -> RelayError {
    RelayError {
        side: Side::Destination,
        code: 3,
        message: format!("the source ended, but the stream did not all reach the destination: {e}"),
        stats,
    }
}

#[allow(clippy::too_many_arguments)]
fn forward(
    flow: &mut Flow,
    dst: &mut ClientSession,
    queued: usize,
    cfg: RelayConfig,
    t: MessageType,
    ts: u32,
    payload: Bytes,
    progress: &mut impl FnMut(&Progress, &RelayStats),
) -> bool {
    // One parse of the tag header per message: its unit and what it does
    // to the stream's configuration (per track).
    let media = matches!(t, MessageType::AUDIO | MessageType::VIDEO);
    let (unit, change) = if media {
        stream_config::classify(t == MessageType::VIDEO, &payload)
    } else {
        (MediaUnit::Config, None)
    };
    let cache = &mut flow.cache;
    if let Some(change) = change {
        cache
            .config
            .apply(change, payload.len(), (t, ts, payload.clone()));
    } else if is_metadata(t, &payload) {
        cache.metadata = Some((t, ts, payload.clone()));
    }
    let stats = &mut flow.stats;
    stats.queued = queued;
    let frame = matches!(unit, MediaUnit::VideoFrame { .. } | MediaUnit::AudioFrame);
    flow.has_video |= t == MessageType::VIDEO;
    if queued > cfg.queue_bytes && frame {
        if !flow.skipping {
            flow.skipping = true;
            progress(
                &Progress::Skipping {
                    queued,
                    video: flow.has_video,
                },
                stats,
            );
        }
        flow.need_key = true;
        stats.dropped += 1;
        return false;
    }
    if flow.need_key {
        match unit {
            MediaUnit::VideoFrame { key: true } => {
                flow.need_key = false;
                flow.skipping = false;
            }
            MediaUnit::VideoFrame { key: false } => {
                stats.dropped += 1;
                return false;
            }
            // Audio alone: the skip is over once it goes out again (a
            // later one is said again).
            _ if !flow.has_video => {
                flow.need_key = false;
                flow.skipping = false;
            }
            _ => {}
        }
    }
    if flow.restarted {
        flow.restarted = false;
        // Behind what the destination has (its publisher restarted from
        // 0): go on 1 ms after it instead, A/V offsets kept.
        if let Some(last) = flow.last_ts
            && (last.wrapping_sub(ts.wrapping_add(flow.stats.timestamp_shift_ms)) as i32) > 0
        {
            flow.stats.timestamp_shift_ms = last.wrapping_add(1).wrapping_sub(ts);
            progress(
                &Progress::Shifted {
                    shift_ms: flow.stats.timestamp_shift_ms,
                },
                &flow.stats,
            );
        }
    }
    let ts = ts.wrapping_add(flow.stats.timestamp_shift_ms);
    let stats = &mut flow.stats;
    dst.send_raw_media(t, ts, &payload);
    // The latest timestamp sent (audio and video interleave: not the last).
    if flow.last_ts.is_none_or(|l| (ts.wrapping_sub(l) as i32) > 0) {
        flow.last_ts = Some(ts);
    }
    stats.bytes += payload.len() as u64;
    if media {
        stats.frames.tally(unit);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::session::{Goal, SessionConfig};

    /// An audio-only stream through a destination that falls behind twice:
    /// each skip is said (it used to end only at a video key frame, so the
    /// second went unsaid), and says audio resumes, not a key frame.
    #[test]
    fn every_skip_of_an_audio_only_stream_is_said() {
        let cfg = RelayConfig {
            queue_bytes: 1000,
            ..RelayConfig::default()
        };
        let config = SessionConfig::new("live", "rtmp://h/live", Goal::Connect);
        let mut dst = ClientSession::new(config, Duration::ZERO, &mut |b: &mut [u8]| b.fill(0));
        let mut f = Flow::new(RelayStats::default());
        let mut said = Vec::new();
        let mut progress = |p: &Progress, _: &RelayStats| {
            if let Progress::Skipping { video, .. } = p {
                said.push(*video);
            }
        };
        let aac = Bytes::from_static(&[0xaf, 1, 0x21, 0x10]);
        for queued in [0, 5000, 5000, 0, 0, 5000, 0] {
            forward(
                &mut f,
                &mut dst,
                queued,
                cfg,
                MessageType::AUDIO,
                0,
                aac.clone(),
                &mut progress,
            );
        }
        assert_eq!(said, [false, false]);
        assert_eq!(f.stats.dropped, 3);
    }
}
