//! The decoder configuration of a live stream, per track: what a player that
//! joins late (serve) or a destination that reconnected (relay) must be sent
//! before the frames, so that every track decodes from its first frame.
//!
//! A stream may configure several decoders of one kind. Enhanced RTMP v2
//! multitrack carries a track id per track (a message without the Multitrack
//! signal is the default track, 0), and each track has its own sequence
//! start: a legacy AAC track 0 beside an Opus track 1, or two video
//! renditions. Keeping "the last audio sequence header" loses all but one of
//! them. [`StreamConfig`] keeps, in arrival order, every configuration message
//! that still configures some track, and forgets one once later messages have
//! configured all its tracks again (or a sequence end ended them).
//!
//! What counts as configuration (by [`ConfigKind`]): sequence headers (legacy
//! AVC/HEVC and AAC, E-RTMP SequenceStart and MPEG2TSSequenceStart), E-RTMP
//! audio MultichannelConfig and video Metadata (HDR colour information).
//!
//! Bounded for hostile publishers: at most [`MAX_ENTRIES`] messages and
//! [`MAX_BYTES`] bytes are kept; past either the oldest go first.

use std::collections::VecDeque;

use crate::proto::media::{
    AudioInfo, AudioPacketType, AvcPacketType, MediaUnit, Track, VideoInfo, VideoPacketType,
};

/// Most configuration messages one stream keeps (both media together).
pub const MAX_ENTRIES: usize = 64;
/// Most bytes of configuration one stream keeps (the newest is always kept).
pub const MAX_BYTES: usize = 1 << 20;

/// A set of track ids (0–255).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackSet([u64; 4]);

impl TrackSet {
    /// The default track alone: a message without the Multitrack signal.
    pub const DEFAULT: TrackSet = TrackSet([1, 0, 0, 0]);

    /// The ids of a multitrack message's tracks.
    pub fn of(tracks: &[Track]) -> TrackSet {
        let mut s = TrackSet::default();
        for t in tracks {
            s.0[usize::from(t.track_id / 64)] |= 1 << (t.track_id % 64);
        }
        s
    }

    /// True when no track is in the set.
    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    /// Takes `other`'s tracks out of this set.
    pub fn remove(&mut self, other: TrackSet) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a &= !b;
        }
    }

    /// True when `id` is in the set.
    pub fn contains(&self, id: u8) -> bool {
        self.0[usize::from(id / 64)] & (1 << (id % 64)) != 0
    }

    /// The ids in the set, ascending.
    pub fn ids(self) -> impl Iterator<Item = u8> {
        (0..=255u8).filter(move |&id| self.contains(id))
    }

    /// The video tracks a video body carries (the default track for one
    /// without the Multitrack signal, or one that does not parse).
    pub fn of_video(body: &[u8]) -> TrackSet {
        match VideoInfo::parse(body) {
            Ok(v) => tracks_of(v.multitrack.is_some(), &v.tracks),
            Err(_) => TrackSet::DEFAULT,
        }
    }
}

/// What a configuration message sets up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    /// Codec configuration: sequence header / SequenceStart.
    SequenceHeader,
    /// E-RTMP audio MultichannelConfig.
    Multichannel,
    /// E-RTMP video Metadata (colour information).
    VideoMetadata,
}

/// Which decoder state a message sets: media, kind and tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigKey {
    /// Video (else audio).
    pub video: bool,
    /// What it sets.
    pub kind: ConfigKind,
    /// The tracks it configures.
    pub tracks: TrackSet,
}

/// What an audio or video message does to a stream's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigChange {
    /// It (re)configures these tracks.
    Set(ConfigKey),
    /// A sequence end: these tracks' codec configuration is over.
    End {
        /// Video (else audio).
        video: bool,
        /// The tracks that ended.
        tracks: TrackSet,
    },
}

fn tracks_of(multitrack: bool, tracks: &[Track]) -> TrackSet {
    if multitrack {
        TrackSet::of(tracks)
    } else {
        TrackSet::DEFAULT
    }
}

impl VideoInfo {
    /// What this message does to the stream's configuration, if anything.
    pub fn config_change(&self) -> Option<ConfigChange> {
        if self.video_command.is_some() {
            return None;
        }
        let tracks = tracks_of(self.multitrack.is_some(), &self.tracks);
        let set = |kind| {
            Some(ConfigChange::Set(ConfigKey {
                video: true,
                kind,
                tracks,
            }))
        };
        let end = Some(ConfigChange::End {
            video: true,
            tracks,
        });
        if let Some(p) = self.avc_packet_type {
            return match p {
                AvcPacketType::SEQUENCE_HEADER => set(ConfigKind::SequenceHeader),
                AvcPacketType::END_OF_SEQUENCE => end,
                _ => None,
            };
        }
        match self.packet_type? {
            VideoPacketType::SEQUENCE_START | VideoPacketType::MPEG2TS_SEQUENCE_START => {
                set(ConfigKind::SequenceHeader)
            }
            VideoPacketType::SEQUENCE_END => end,
            VideoPacketType::METADATA => set(ConfigKind::VideoMetadata),
            _ => None,
        }
    }
}

impl AudioInfo {
    /// What this message does to the stream's configuration, if anything.
    pub fn config_change(&self) -> Option<ConfigChange> {
        let tracks = tracks_of(self.multitrack.is_some(), &self.tracks);
        let set = |kind| {
            Some(ConfigChange::Set(ConfigKey {
                video: false,
                kind,
                tracks,
            }))
        };
        if self.aac_packet_type == Some(0) {
            return set(ConfigKind::SequenceHeader);
        }
        match self.packet_type? {
            AudioPacketType::SEQUENCE_START => set(ConfigKind::SequenceHeader),
            AudioPacketType::SEQUENCE_END => Some(ConfigChange::End {
                video: false,
                tracks,
            }),
            AudioPacketType::MULTICHANNEL_CONFIG => set(ConfigKind::Multichannel),
            _ => None,
        }
    }
}

/// Classifies an audio (`video == false`) or video body with one parse: what
/// it counts as, and what it does to the stream's configuration.
pub fn classify(video: bool, body: &[u8]) -> (MediaUnit, Option<ConfigChange>) {
    if video {
        match VideoInfo::parse(body) {
            Ok(v) if v.is_coded_frames() => (
                MediaUnit::VideoFrame {
                    key: v.is_keyframe(),
                },
                v.config_change(),
            ),
            Ok(v) => (MediaUnit::Config, v.config_change()),
            Err(_) => (MediaUnit::Unparsed, None),
        }
    } else {
        match AudioInfo::parse(body) {
            Ok(a) if a.is_coded_frames() => (MediaUnit::AudioFrame, a.config_change()),
            Ok(a) => (MediaUnit::Config, a.config_change()),
            Err(_) => (MediaUnit::Unparsed, None),
        }
    }
}

struct Entry<T> {
    key: ConfigKey,
    /// The tracks no later message has configured again.
    live: TrackSet,
    len: usize,
    item: T,
}

/// The configuration messages of a stream that still configure some track,
/// in arrival order (see the module documentation).
pub struct StreamConfig<T> {
    entries: VecDeque<Entry<T>>,
    bytes: usize,
}

impl<T> Default for StreamConfig<T> {
    fn default() -> Self {
        StreamConfig {
            entries: VecDeque::new(),
            bytes: 0,
        }
    }
}

impl<T> StreamConfig<T> {
    /// Applies what a message of `len` bytes did; `item` (what to send
    /// again) is kept for a [`ConfigChange::Set`].
    pub fn apply(&mut self, change: ConfigChange, len: usize, item: T) {
        let (video, kinds, tracks) = match change {
            ConfigChange::Set(key) => (key.video, Some(key.kind), key.tracks),
            ConfigChange::End { video, tracks } => {
                (video, Some(ConfigKind::SequenceHeader), tracks)
            }
        };
        let bytes = &mut self.bytes;
        self.entries.retain_mut(|e| {
            if e.key.video == video && Some(e.key.kind) == kinds {
                e.live.remove(tracks);
            }
            let keep = !e.live.is_empty();
            if !keep {
                *bytes -= e.len;
            }
            keep
        });
        if let ConfigChange::Set(key) = change {
            self.entries.push_back(Entry {
                key,
                live: key.tracks,
                len,
                item,
            });
            self.bytes += len;
            while self.entries.len() > 1
                && (self.entries.len() > MAX_ENTRIES || self.bytes > MAX_BYTES)
            {
                if let Some(e) = self.entries.pop_front() {
                    self.bytes -= e.len;
                }
            }
        }
    }

    /// What to send again, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|e| &e.item)
    }

    /// Forgets everything (a new publisher).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Messages kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An E-RTMP OneTrack message: `[ex|frame type|Multitrack] [OneTrack|packet type] FourCC id data`.
    fn one_track(video: bool, packet_type: u8, fourcc: &[u8; 4], id: u8) -> Vec<u8> {
        let first = if video {
            0x80 | (1 << 4) | 6
        } else {
            (9 << 4) | 5
        };
        let mut b = vec![
            first,
            packet_type,
            fourcc[0],
            fourcc[1],
            fourcc[2],
            fourcc[3],
            id,
        ];
        b.extend_from_slice(&[0x11, 0x22]);
        b
    }

    fn keep(c: &mut StreamConfig<&'static str>, video: bool, body: &[u8], name: &'static str) {
        if let (_, Some(ch)) = classify(video, body) {
            c.apply(ch, body.len(), name);
        }
    }

    fn kept(c: &StreamConfig<&'static str>) -> Vec<&'static str> {
        c.iter().copied().collect()
    }

    #[test]
    fn every_track_keeps_its_own_sequence_header() {
        let mut c = StreamConfig::default();
        // Legacy AAC (track 0), then Opus on track 1, then HEVC on track 2.
        keep(&mut c, false, &[0xaf, 0x00, 0x12, 0x10], "aac");
        keep(&mut c, false, &one_track(false, 0, b"Opus", 1), "opus1");
        keep(&mut c, true, &one_track(true, 0, b"hvc1", 2), "hevc2");
        // Frames configure nothing.
        keep(&mut c, false, &[0xaf, 0x01, 0x21], "frame");
        keep(&mut c, false, &one_track(false, 1, b"Opus", 1), "frame");
        assert_eq!(kept(&c), ["aac", "opus1", "hevc2"]);
        // A new AAC config replaces the old one only.
        keep(&mut c, false, &[0xaf, 0x00, 0x11, 0x90], "aac'");
        assert_eq!(kept(&c), ["opus1", "hevc2", "aac'"]);
        // A sequence end on track 2 ends its configuration.
        keep(&mut c, true, &one_track(true, 2, b"hvc1", 2), "end2");
        assert_eq!(kept(&c), ["opus1", "aac'"]);
    }

    #[test]
    fn a_message_for_many_tracks_goes_once_all_are_configured_again() {
        let mut c = StreamConfig::default();
        // ManyTracks SequenceStart for tracks 0 and 1 (UI24 sizes).
        let many = [
            0x80 | (1 << 4) | 6,
            (1 << 4),
            b'a',
            b'v',
            b'c',
            b'1',
            0,
            0,
            0,
            1,
            0xaa,
            1,
            0,
            0,
            1,
            0xbb,
        ];
        keep(&mut c, true, &many, "many");
        keep(&mut c, true, &one_track(true, 0, b"avc1", 1), "one1");
        assert_eq!(kept(&c), ["many", "one1"], "track 0 is still the first's");
        keep(&mut c, true, &one_track(true, 0, b"avc1", 0), "one0");
        assert_eq!(kept(&c), ["one1", "one0"]);
        // A legacy AVC sequence header is the default track.
        keep(&mut c, true, &[0x17, 0x00, 0, 0, 0, 1], "avc");
        assert_eq!(kept(&c), ["one1", "avc"]);
    }

    #[test]
    fn kinds_and_media_are_apart() {
        let mut c = StreamConfig::default();
        keep(&mut c, true, &[0x17, 0x00, 0, 0, 0, 1], "avc");
        keep(&mut c, false, &[0xaf, 0x00, 0x12, 0x10], "aac");
        // Multichannel config of track 0 (ex-header audio, packet type 4).
        keep(
            &mut c,
            false,
            &[(9 << 4) | 4, b'O', b'p', b'u', b's', 0, 2],
            "mc",
        );
        assert_eq!(kept(&c), ["avc", "aac", "mc"]);
        // An audio sequence end does not end the video's.
        keep(
            &mut c,
            false,
            &[(9 << 4) | 2, b'O', b'p', b'u', b's'],
            "end",
        );
        assert_eq!(kept(&c), ["avc", "mc"]);
    }

    #[test]
    fn hostile_streams_stay_bounded() {
        let mut c = StreamConfig::default();
        for id in 0..=255u8 {
            keep(&mut c, false, &one_track(false, 0, b"Opus", id), "opus");
        }
        assert_eq!(c.len(), MAX_ENTRIES);
        let mut c = StreamConfig::default();
        for i in 0..10 {
            c.apply(
                ConfigChange::Set(ConfigKey {
                    video: true,
                    kind: ConfigKind::SequenceHeader,
                    tracks: TrackSet([1 << i, 0, 0, 0]),
                }),
                MAX_BYTES / 3,
                i,
            );
        }
        assert_eq!(c.iter().copied().collect::<Vec<_>>(), [7, 8, 9]);
        assert!(c.bytes <= MAX_BYTES);
        // One over the budget on its own is still kept: it is the newest.
        c.apply(
            ConfigChange::Set(ConfigKey {
                video: true,
                kind: ConfigKind::SequenceHeader,
                tracks: TrackSet::DEFAULT,
            }),
            MAX_BYTES * 2,
            10,
        );
        assert_eq!(c.iter().copied().collect::<Vec<_>>(), [10]);
    }

    #[test]
    fn track_sets() {
        let mut s = TrackSet::default();
        assert!(s.is_empty());
        s.0[3] |= 1 << 63;
        assert!(s.contains(255));
        s.remove(TrackSet([0, 0, 0, 1 << 63]));
        assert!(s.is_empty());
        assert_eq!(
            TrackSet([0b101, 0, 0, 1 << 63]).ids().collect::<Vec<_>>(),
            [0, 2, 255]
        );
        assert_eq!(
            TrackSet::of_video(&one_track(true, 3, b"avc1", 7))
                .ids()
                .collect::<Vec<_>>(),
            [7]
        );
        assert_eq!(
            TrackSet::of_video(&[0x17, 1, 0, 0, 0, 5]),
            TrackSet::DEFAULT
        );
        assert!(TrackSet::DEFAULT.contains(0));
    }
}
