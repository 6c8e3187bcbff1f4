//! The media timeline of a published FLV (Adobe FLV spec v10.1, E.4.1: tag
//! timestamps in ms, 24 bits + an extension byte), sans-IO: where each tag
//! lands on the continuous stream `publish` sends, with `--loop` passes
//! joined and timestamp discontinuities bridged.
//!
//! A discontinuity is a tag that steps backwards within its track (audio,
//! video or script data: FLV timestamps are decoding times, which never go
//! back within a track) or that jumps more than `max_gap` past the latest
//! tag of any track. Files cut and joined, or written by a muxer that
//! restarted its clock, have them; a crafted file jumps from 0 to
//! 0x7FFFFFFF. Paced by the raw timestamps, publish would send out of order
//! or sleep for 24.8 days. Instead, the timeline shifts that tag, and every
//! later one, so that it lands one frame step after the latest tag placed
//! so far, and reports the discontinuity (the caller warns once).

/// A bridged discontinuity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discontinuity {
    /// File offset of the tag.
    pub offset: u64,
    /// Its timestamp in the file.
    pub timestamp: u32,
    /// The timestamp in the file of the tag before it on the timeline (the
    /// latest of any track for a jump, the last of its track for a step back).
    pub previous: u32,
    /// True for a step backwards, false for a jump forwards.
    pub backwards: bool,
    /// Where the tag lands instead (ms of media from the first tag).
    pub placed_ms: u64,
}

/// Places tags on a continuous media timeline (ms from the first tag sent).
#[derive(Debug, Clone)]
pub struct Timeline {
    max_gap_ms: u64,
    /// Media time where the current pass starts.
    pass_offset: u64,
    /// First file timestamp of the pass.
    first: Option<u32>,
    /// Added to file timestamps of this pass (after bridging).
    shift: i64,
    /// Per track (audio, video, data): last adjusted timestamp and file timestamp.
    last: [Option<(i64, u32)>; 3],
    /// Latest adjusted timestamp of the pass and its file timestamp.
    latest: Option<(i64, u32)>,
    /// Latest media time placed, over all passes.
    max_media: u64,
    /// Last frame step seen per track (video, then audio, for joining).
    step_video: u64,
    step_audio: u64,
    /// Discontinuities bridged so far.
    pub discontinuities: u64,
}

/// Which track a tag belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// Audio tags (8).
    Audio,
    /// Video tags (9).
    Video,
    /// Script data and anything else.
    Data,
}

impl Timeline {
    /// A timeline bridging jumps larger than `max_gap_ms`.
    pub fn new(max_gap_ms: u64) -> Self {
        Timeline {
            max_gap_ms,
            pass_offset: 0,
            first: None,
            shift: 0,
            last: [None; 3],
            latest: None,
            max_media: 0,
            step_video: 0,
            step_audio: 0,
            discontinuities: 0,
        }
    }

    /// The typical frame step: video's, else audio's, else 40 ms.
    fn step(&self) -> u64 {
        [self.step_video, self.step_audio]
            .into_iter()
            .find(|&s| s > 0 && s <= self.max_gap_ms)
            .unwrap_or(40.min(self.max_gap_ms))
    }

    /// Starts the next `--loop` pass: it continues one frame step after the
    /// latest tag placed.
    pub fn start_pass(&mut self) {
        self.pass_offset = self.max_media + self.step();
        self.first = None;
        self.shift = 0;
        self.last = [None; 3];
        self.latest = None;
    }

    /// Places a tag (file timestamp `ts`, at file `offset`): its media time
    /// in ms from the first tag, and the discontinuity it bridged, if any.
    pub fn place(&mut self, track: Track, ts: u32, offset: u64) -> (u64, Option<Discontinuity>) {
        let first = *self.first.get_or_insert(ts);
        let i = track as usize;
        let mut adjusted = i64::from(ts) + self.shift;
        let mut bridged = None;
        let back = self.last[i].filter(|&(a, _)| adjusted < a);
        let jump = self
            .latest
            .filter(|&(a, _)| adjusted - a > self.max_gap_ms as i64);
        if let Some((_, previous)) = back.or(jump) {
            // Land one frame step after the latest tag of the pass.
            let latest = self.latest.map_or(i64::from(first), |(a, _)| a);
            let target = latest + self.step() as i64;
            self.shift += target - adjusted;
            adjusted = target;
            self.discontinuities += 1;
            bridged = Some(Discontinuity {
                offset,
                timestamp: ts,
                previous,
                backwards: back.is_some(),
                placed_ms: 0,
            });
        }
        // Frame steps, from the adjusted timestamps.
        if let Some((p, _)) = self.last[i]
            && adjusted > p
        {
            let s = (adjusted - p) as u64;
            match track {
                Track::Video => self.step_video = s,
                Track::Audio => self.step_audio = s,
                Track::Data => {}
            }
        }
        self.last[i] = Some((adjusted, ts));
        if self.latest.is_none_or(|(a, _)| adjusted > a) {
            self.latest = Some((adjusted, ts));
        }
        // Before the first tag (a later track starting earlier): clamp at 0.
        let media = self.pass_offset + (adjusted - i64::from(first)).max(0) as u64;
        self.max_media = self.max_media.max(media);
        if let Some(d) = &mut bridged {
            d.placed_ms = media;
        }
        (media, bridged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(t: &mut Timeline, tags: &[(Track, u32)]) -> Vec<u64> {
        tags.iter()
            .enumerate()
            .map(|(i, &(k, ts))| t.place(k, ts, i as u64).0)
            .collect()
    }

    use Track::{Audio as A, Video as V};

    #[test]
    fn ordinary_files_are_untouched() {
        let mut t = Timeline::new(10_000);
        // Interleaved tracks with small cross-track disorder; a start at 1000.
        let got = run(
            &mut t,
            &[
                (V, 1000),
                (A, 1000),
                (A, 1023),
                (V, 1040),
                (A, 1046),
                (V, 1080),
            ],
        );
        assert_eq!(got, [0, 0, 23, 40, 46, 80]);
        assert_eq!(t.discontinuities, 0);
        // A gap under max_gap is kept (a real pause).
        assert_eq!(t.place(V, 9000, 9).0, 8000);
        assert_eq!(t.discontinuities, 0);
    }

    #[test]
    fn a_jump_is_bridged_once() {
        let mut t = Timeline::new(10_000);
        run(&mut t, &[(V, 0), (V, 40), (V, 80)]);
        let (m, d) = t.place(V, 0x7FFF_FFFF, 500);
        assert_eq!(m, 120);
        let d = d.unwrap();
        assert_eq!(
            (d.offset, d.timestamp, d.previous, d.backwards, d.placed_ms),
            (500, 0x7FFF_FFFF, 80, false, 120)
        );
        // The tags after it follow at their own pace.
        assert_eq!(t.place(V, 0x7FFF_FFFF + 40, 501), (160, None));
        assert_eq!(t.discontinuities, 1);
    }

    #[test]
    fn a_step_back_is_bridged() {
        let mut t = Timeline::new(10_000);
        run(&mut t, &[(V, 5000), (A, 5000), (V, 5040), (A, 5023)]);
        // Two files joined: both tracks restart at 0.
        let (m, d) = t.place(V, 0, 7);
        assert!(d.unwrap().backwards);
        assert_eq!(m, 80);
        // Audio restarting too is not a second discontinuity.
        assert_eq!(t.place(A, 0, 8), (80, None));
        assert_eq!(t.place(V, 40, 9), (120, None));
        assert_eq!(t.discontinuities, 1);
    }

    #[test]
    fn passes_continue() {
        let mut t = Timeline::new(10_000);
        run(&mut t, &[(V, 100), (V, 140), (V, 180)]);
        t.start_pass();
        assert_eq!(run(&mut t, &[(V, 100), (V, 140)]), [120, 160]);
        assert_eq!(t.discontinuities, 0);
    }

    #[test]
    fn extremes_never_panic() {
        let mut t = Timeline::new(1);
        for ts in [u32::MAX, 0, u32::MAX, 1, 0, u32::MAX / 2] {
            for k in [A, V, Track::Data] {
                let (m, _) = t.place(k, ts, 0);
                assert!(m < 1 << 40);
            }
        }
    }
}
