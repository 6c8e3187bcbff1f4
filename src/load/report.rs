//! What a load run measures: counters, latency histograms (HdrHistogram, µs,
//! 3 significant digits), failures by phase and reason, frames per stream;
//! the `load_progress` and `load_summary` records built from them; and the
//! `--fail-if` conditions checked against the summary.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::net::Phase;
use crate::proto::media::MediaCounter;

/// The class of a failure: the exit-code classes of the CLI contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Resolution, TCP connect, reset, closed, timeouts (exit 3).
    Network,
    /// The RTMP handshake (exit 4).
    Handshake,
    /// `_error` or an onStatus error (exit 5).
    Refused,
    /// The peer broke the protocol (exit 9).
    Protocol,
}

/// Why one connection failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The phase it failed in (`play`/`publish` also once active).
    pub phase: Phase,
    /// Its class.
    pub class: FailureClass,
    /// A short reason (no secrets: never the stream name).
    pub reason: String,
}

/// One failure kind and how often it happened.
#[derive(Debug, Clone, Serialize)]
pub struct FailureCount {
    /// Phase name.
    pub phase: &'static str,
    /// Class.
    pub class: FailureClass,
    /// Reason.
    pub reason: String,
    /// Connections that failed so.
    pub count: u64,
}

/// p50/p99/max of one histogram, in ms (`null` without samples).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let ms = |us: u64| (us as f64 / 10.0).round() / 100.0;
    Percentiles {
        count: h.len(),
        p50: Some(ms(h.value_at_quantile(0.5))),
        p99: Some(ms(h.value_at_quantile(0.99))),
        max: Some(ms(h.max())),
    }
}

/// Frames one player received, folded per stream.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Range {
    /// Fewest.
    pub min: u64,
    /// Most.
    pub max: u64,
}

impl Range {
    fn add(&mut self, v: u64, first: bool) {
        if first {
            *self = Range { min: v, max: v };
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }
}

/// Per stream: what its publisher sent and what its players received.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamReport {
    /// Stream index (`{i}`).
    pub i: usize,
    /// The stream's URL, redacted unless `--reveal-keys`.
    pub stream: String,
    /// Frames the publisher(s) of this stream sent.
    pub published: MediaCounter,
    /// Players of this stream that reached playing.
    pub players: u64,
    /// Video frames per player (players that reached playing).
    pub video_frames: Range,
    /// Audio frames per player.
    pub audio_frames: Range,
    /// Players that saw the stream end (unpublish notify, Play.Stop, Stream EOF).
    pub ended: u64,
}

/// Live counters of a run (the engine updates them; reports are built from
/// them).
#[derive(Debug)]
pub struct Metrics {
    /// Connections opened so far.
    pub opened: u64,
    /// Connections between TCP connect and playing/publishing.
    pub connecting: u64,
    /// Players playing now.
    pub playing: u64,
    /// Publishers publishing now.
    pub publishing: u64,
    /// Players that reached playing (ever).
    pub players_ok: u64,
    /// Publishers that reached publishing (ever).
    pub publishers_ok: u64,
    /// Publishers that sent the whole FLV (every pass).
    pub publishers_done: u64,
    /// Players that failed.
    pub players_failed: u64,
    /// Publishers that failed.
    pub publishers_failed: u64,
    /// Connections closed cleanly.
    pub closed: u64,
    /// Connections that failed.
    pub failed: u64,
    /// Bytes received by all connections.
    pub bytes_in: u64,
    /// Bytes sent by all connections.
    pub bytes_out: u64,
    /// Frames received by all players.
    pub frames_in: MediaCounter,
    /// Start to playing/publishing (µs).
    pub connect_us: Histogram<u64>,
    /// Start to the first audio or video frame of a player (µs).
    pub first_frame_us: Histogram<u64>,
    /// Probe arrival − probe send (µs).
    pub delay_us: Histogram<u64>,
    /// Failures by (phase, class, reason).
    pub failures: BTreeMap<(&'static str, FailureClass, String), u64>,
    /// Per stream.
    pub streams: Vec<StreamReport>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 1 h, 3 significant digits: a few tens of KB per histogram.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| {
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits are valid"))
    })
}

impl Metrics {
    /// Empty counters for `streams` streams (named by `names`).
    pub fn new(names: Vec<String>) -> Metrics {
        Metrics {
            opened: 0,
            connecting: 0,
            playing: 0,
            publishing: 0,
            players_ok: 0,
            publishers_ok: 0,
            publishers_done: 0,
            players_failed: 0,
            publishers_failed: 0,
            closed: 0,
            failed: 0,
            bytes_in: 0,
            bytes_out: 0,
            frames_in: MediaCounter::default(),
            connect_us: histogram(),
            first_frame_us: histogram(),
            delay_us: histogram(),
            failures: BTreeMap::new(),
            streams: names
                .into_iter()
                .enumerate()
                .map(|(i, stream)| StreamReport {
                    i,
                    stream,
                    ..StreamReport::default()
                })
                .collect(),
        }
    }

    /// Records a latency sample.
    pub fn record(h: &mut Histogram<u64>, us: u64) {
        h.saturating_record(us.max(1));
    }

    /// Counts a failure.
    pub fn fail(&mut self, f: &Failure) {
        self.failed += 1;
        *self
            .failures
            .entry((f.phase.name(), f.class, f.reason.clone()))
            .or_default() += 1;
    }

    /// Folds the final frame counts of one player of stream `i`.
    pub fn player_done(&mut self, i: usize, frames: &MediaCounter, ended: bool) {
        if let Some(s) = self.streams.get_mut(i) {
            let first = s.players == 0;
            s.players += 1;
            s.video_frames.add(frames.video_frames, first);
            s.audio_frames.add(frames.audio_frames, first);
            s.ended += u64::from(ended);
        }
    }

    /// Adds what a publisher of stream `i` sent.
    pub fn publisher_done(&mut self, i: usize, sent: &MediaCounter) {
        if let Some(s) = self.streams.get_mut(i) {
            s.published.video_frames += sent.video_frames;
            s.published.keyframes += sent.keyframes;
            s.published.audio_frames += sent.audio_frames;
            s.published.unparsed += sent.unparsed;
        }
    }

    /// The failures, most frequent first.
    pub fn failure_list(&self) -> Vec<FailureCount> {
        let mut v: Vec<FailureCount> = self
            .failures
            .iter()
            .map(|((phase, class, reason), count)| FailureCount {
                phase,
                class: *class,
                reason: reason.clone(),
                count: *count,
            })
            .collect();
        v.sort_by_key(|f| std::cmp::Reverse(f.count));
        v
    }

    /// A progress snapshot at `elapsed_ms`, with the bitrate since `prev`.
    pub fn progress(&self, elapsed_ms: f64, prev: Option<(f64, u64)>) -> Progress {
        let (bitrate_kbps, per_player_kbps) = match prev {
            Some((t, bytes)) if elapsed_ms > t => {
                let kbps = (self.bytes_in - bytes) as f64 * 8.0 / (elapsed_ms - t);
                let per = if self.playing > 0 {
                    kbps / self.playing as f64
                } else {
                    0.0
                };
                (round1(kbps), round1(per))
            }
            _ => (0.0, 0.0),
        };
        Progress {
            elapsed_ms: round1(elapsed_ms),
            opened: self.opened,
            connecting: self.connecting,
            playing: self.playing,
            publishing: self.publishing,
            failed: self.failed,
            closed: self.closed,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            bitrate_kbps,
            per_player_kbps,
            video_frames: self.frames_in.video_frames,
            audio_frames: self.frames_in.audio_frames,
            connect_ms: percentiles(&self.connect_us),
            first_frame_ms: percentiles(&self.first_frame_us),
            delay_ms: percentiles(&self.delay_us),
            failures: self.failure_list(),
        }
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The `load_progress` record (every second).
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// Time since the run started.
    pub elapsed_ms: f64,
    /// Connections opened so far.
    pub opened: u64,
    /// Connecting now.
    pub connecting: u64,
    /// Playing now.
    pub playing: u64,
    /// Publishing now.
    pub publishing: u64,
    /// Failed so far.
    pub failed: u64,
    /// Closed cleanly so far.
    pub closed: u64,
    /// Bytes received so far.
    pub bytes_in: u64,
    /// Bytes sent so far.
    pub bytes_out: u64,
    /// Received bitrate over the last interval (all connections).
    pub bitrate_kbps: f64,
    /// The same per playing player.
    pub per_player_kbps: f64,
    /// Video frames received by all players.
    pub video_frames: u64,
    /// Audio frames received by all players.
    pub audio_frames: u64,
    /// Connect time so far.
    pub connect_ms: Percentiles,
    /// Time to first frame so far.
    pub first_frame_ms: Percentiles,
    /// Delay so far.
    pub delay_ms: Percentiles,
    /// Failures so far.
    pub failures: Vec<FailureCount>,
}

/// The `load_summary` record.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The URL, redacted unless `--reveal-keys`.
    pub url: String,
    /// Players that reached playing.
    pub players: u64,
    /// Players asked for.
    pub players_requested: u64,
    /// Publishers that reached publishing.
    pub publishers: u64,
    /// Publishers asked for.
    pub publishers_requested: u64,
    /// Connections that failed.
    pub failed: u64,
    /// Wall time of the run.
    pub duration_ms: f64,
    /// Bytes received by all connections.
    pub bytes_in: u64,
    /// Bytes sent by all connections.
    pub bytes_out: u64,
    /// Mean received bitrate over the run.
    pub bitrate_kbps: f64,
    /// Start → playing/publishing.
    pub connect_ms: Percentiles,
    /// Start → first frame (players).
    pub first_frame_ms: Percentiles,
    /// Publisher send → player arrival (`--delay-probe`).
    pub delay_ms: Percentiles,
    /// Failures, most frequent first.
    pub failures: Vec<FailureCount>,
    /// Per stream: frames published and received.
    pub streams: Vec<StreamReport>,
    /// Ctrl-C ended the run.
    pub interrupted: bool,
}

impl Summary {
    /// Builds the summary.
    pub fn new(
        m: &Metrics,
        url: String,
        requested: (u64, u64),
        duration_ms: f64,
        interrupted: bool,
    ) -> Summary {
        Summary {
            url,
            players: m.players_ok,
            players_requested: requested.0,
            publishers: m.publishers_ok,
            publishers_requested: requested.1,
            failed: m.failed,
            duration_ms: round1(duration_ms),
            bytes_in: m.bytes_in,
            bytes_out: m.bytes_out,
            bitrate_kbps: if duration_ms > 0.0 {
                round1(m.bytes_in as f64 * 8.0 / duration_ms)
            } else {
                0.0
            },
            connect_ms: percentiles(&m.connect_us),
            first_frame_ms: percentiles(&m.first_frame_us),
            delay_ms: percentiles(&m.delay_us),
            failures: m.failure_list(),
            streams: m.streams.clone(),
            interrupted,
        }
    }

    /// A summary value by its `--fail-if` key (see [`FailIf::KEYS`]).
    pub fn value(&self, key: &str) -> Option<f64> {
        let pct = |p: &Percentiles, which: &str| match which {
            "p50" => p.p50,
            "p99" => p.p99,
            _ => p.max,
        };
        if let Some((which, metric)) = key.split_once('_')
            && matches!(which, "p50" | "p99" | "max")
        {
            return match metric {
                "connect_ms" => pct(&self.connect_ms, which),
                "first_frame_ms" => pct(&self.first_frame_ms, which),
                "delay_ms" => pct(&self.delay_ms, which),
                _ => None,
            };
        }
        Some(match key {
            "players" => self.players as f64,
            "publishers" => self.publishers as f64,
            "failed" => self.failed as f64,
            "bitrate_kbps" => self.bitrate_kbps,
            "missing_frames" => self.missing_frames() as f64,
            _ => return None,
        })
    }

    /// Frames a player got fewer of than its stream's publisher sent, summed
    /// over streams (by the player that got the fewest).
    pub fn missing_frames(&self) -> u64 {
        self.streams
            .iter()
            .filter(|s| s.players > 0 && s.published.video_frames + s.published.audio_frames > 0)
            .map(|s| {
                s.published.video_frames.saturating_sub(s.video_frames.min)
                    + s.published.audio_frames.saturating_sub(s.audio_frames.min)
            })
            .sum()
    }
}

/// A comparison operator of `--fail-if`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// A `--fail-if` condition: `KEY OP NUMBER`, e.g. `p99_delay_ms>500`.
#[derive(Debug, Clone, PartialEq)]
pub struct FailIf {
    /// Summary key.
    pub key: String,
    /// Operator.
    pub op: Op,
    /// Threshold.
    pub value: f64,
    /// As written.
    pub text: String,
}

impl FailIf {
    /// The keys a condition may test.
    pub const KEYS: &'static [&'static str] = &[
        "players",
        "publishers",
        "failed",
        "bitrate_kbps",
        "missing_frames",
        "p50_connect_ms",
        "p99_connect_ms",
        "max_connect_ms",
        "p50_first_frame_ms",
        "p99_first_frame_ms",
        "max_first_frame_ms",
        "p50_delay_ms",
        "p99_delay_ms",
        "max_delay_ms",
    ];

    /// Parses `KEY OP NUMBER` (spaces allowed).
    pub fn parse(s: &str) -> Result<FailIf, String> {
        let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let at = t
            .find(['>', '<', '=', '!'])
            .ok_or_else(|| format!("'{s}': expected KEY OP NUMBER, e.g. p99_delay_ms>500"))?;
        let (key, rest) = t.split_at(at);
        let (op, num) = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("=", Op::Eq),
        ]
        .iter()
        .find_map(|(p, op)| rest.strip_prefix(p).map(|n| (*op, n)))
        .ok_or_else(|| format!("'{s}': the operator is one of > >= < <= == !="))?;
        if !Self::KEYS.contains(&key) {
            return Err(format!(
                "'{s}': unknown key '{key}' (one of: {})",
                Self::KEYS.join(", ")
            ));
        }
        let value: f64 = num
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| format!("'{s}': '{num}' is not a number"))?;
        Ok(FailIf {
            key: key.to_owned(),
            op,
            value,
            text: t,
        })
    }

    /// Whether the summary violates the condition: `Some(actual)` when it
    /// does (`None` inside when the value is unknown, e.g. no delay samples:
    /// a gate that cannot be checked fails).
    pub fn violated(&self, s: &Summary) -> Option<Option<f64>> {
        let Some(v) = s.value(&self.key) else {
            return Some(None);
        };
        let bad = match self.op {
            Op::Gt => v > self.value,
            Op::Ge => v >= self.value,
            Op::Lt => v < self.value,
            Op::Le => v <= self.value,
            Op::Eq => v == self.value,
            Op::Ne => v != self.value,
        };
        bad.then_some(Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_if_parses_and_checks() {
        let c = FailIf::parse("p99_delay_ms > 500").unwrap();
        assert_eq!(
            (c.key.as_str(), c.op, c.value),
            ("p99_delay_ms", Op::Gt, 500.0)
        );
        assert_eq!(FailIf::parse("failed>=1").unwrap().op, Op::Ge);
        assert!(FailIf::parse("p99_delay>5").is_err());
        assert!(FailIf::parse("failed>x").is_err());
        assert!(FailIf::parse("failed").is_err());
        let mut m = Metrics::new(vec!["s0".into()]);
        Metrics::record(&mut m.delay_us, 600_000);
        let s = Summary::new(&m, "u".into(), (1, 1), 1000.0, false);
        // 3 significant digits: 600 ms reads back within 0.1 %.
        let v = c.violated(&s).flatten().unwrap();
        assert!((v - 600.0).abs() < 0.6, "{v}");
        assert_eq!(FailIf::parse("failed>0").unwrap().violated(&s), None);
        // No samples: the gate cannot be checked, so it fails.
        let ff = FailIf::parse("p99_first_frame_ms>1").unwrap();
        assert_eq!(ff.violated(&s), Some(None));
    }

    #[test]
    fn streams_fold_players() {
        let mut m = Metrics::new(vec!["s0".into()]);
        let sent = MediaCounter {
            video_frames: 10,
            keyframes: 1,
            audio_frames: 20,
            unparsed: 0,
        };
        m.publisher_done(0, &sent);
        m.player_done(0, &sent, true);
        let short = MediaCounter {
            video_frames: 8,
            ..sent
        };
        m.player_done(0, &short, false);
        let s = Summary::new(&m, "u".into(), (2, 1), 1.0, false);
        assert_eq!(s.streams[0].video_frames.min, 8);
        assert_eq!(s.streams[0].video_frames.max, 10);
        assert_eq!(s.missing_frames(), 2);
        m.player_done(7, &sent, true); // no such stream: ignored
    }
}
