//! E-RTMP capability negotiation in `connect` (E-RTMP v2, "Enhancing
//! NetConnection connect Command").
//!
//! A client announces what it supports in the command object of `connect`:
//! `fourCcList` (a strict array of FourCCs, E-RTMP v1; `"*"` for any
//! codec), `videoFourCcInfoMap` / `audioFourCcInfoMap` (objects from FourCC,
//! or `"*"`, to a `FourCcInfoMask`) and `capsEx` (a `CapsExMask`). The
//! server SHOULD state its own with the same names in its `_result`. Real
//! servers put them in the properties object (the first, with `fmsVer`);
//! some in the information object: both are read.

use super::amf0::Amf0Value;
use super::media::{AudioInfo, FourCc, Track, VideoInfo};

/// `FourCcInfoMask.CanDecode`.
pub const CAN_DECODE: u32 = 0x01;
/// `FourCcInfoMask.CanEncode`.
pub const CAN_ENCODE: u32 = 0x02;
/// `FourCcInfoMask.CanForward`.
pub const CAN_FORWARD: u32 = 0x04;

/// `CapsExMask.Reconnect`: the peer understands a Reconnect Request.
pub const CAPS_RECONNECT: u32 = 0x01;
/// `CapsExMask.Multitrack`.
pub const CAPS_MULTITRACK: u32 = 0x02;
/// `CapsExMask.ModEx`: the peer parses the ModEx signal.
pub const CAPS_MODEX: u32 = 0x04;
/// `CapsExMask.TimestampNanoOffset`.
pub const CAPS_TIMESTAMP_NANO_OFFSET: u32 = 0x08;

/// The names of the properties.
pub const NAMES: [&str; 4] = [
    "fourCcList",
    "videoFourCcInfoMap",
    "audioFourCcInfoMap",
    "capsEx",
];

/// Most FourCCs kept of one list or map (a hostile peer may send many).
const MAX_ENTRIES: usize = 64;

/// What one side stated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Capabilities {
    /// `fourCcList`, if sent.
    pub fourcc_list: Option<Vec<String>>,
    /// `videoFourCcInfoMap`, if sent: FourCC (or `*`) and its mask.
    pub video: Option<Vec<(String, u32)>>,
    /// `audioFourCcInfoMap`, if sent.
    pub audio: Option<Vec<(String, u32)>>,
    /// `capsEx`, if sent.
    pub caps_ex: Option<u32>,
}

fn mask(v: &Amf0Value) -> u32 {
    v.as_f64()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map_or(0, |n| n.min(u32::MAX as f64) as u32)
}

fn text(v: &Amf0Value) -> String {
    v.text().map(|t| t.into_owned()).unwrap_or_default()
}

impl Capabilities {
    /// What a forwarder states: any codec is forwarded as it came, and
    /// multitrack, ModEx and the nanosecond offset pass through unchanged.
    /// It sends no Reconnect Request, so that bit is clear.
    pub fn forwarder() -> Capabilities {
        let any = Some(vec![("*".to_owned(), CAN_FORWARD)]);
        Capabilities {
            fourcc_list: Some(vec!["*".to_owned()]),
            video: any.clone(),
            audio: any,
            caps_ex: Some(CAPS_MULTITRACK | CAPS_MODEX | CAPS_TIMESTAMP_NANO_OFFSET),
        }
    }

    /// What a publisher of `codecs` states, as OBS does and FFmpeg with
    /// `-rtmp_enhanced_codecs`: `fourCcList`, each codec `CanEncode` in its
    /// map, and in `capsEx` the features it sends as they come (multitrack,
    /// ModEx, the nanosecond offset: a file's bodies go out unchanged). No
    /// Reconnect: it does not follow a Reconnect Request. `None` for a
    /// stream of legacy codecs only (the legacy `connect`, unchanged).
    pub fn publisher(codecs: &StreamCodecs) -> Option<Capabilities> {
        if codecs.video.is_empty() && codecs.audio.is_empty() {
            return None;
        }
        let map = |l: &[FourCc]| {
            (!l.is_empty()).then(|| l.iter().map(|f| (f.text(), CAN_ENCODE)).collect())
        };
        Some(Capabilities {
            fourcc_list: Some(
                codecs
                    .video
                    .iter()
                    .chain(&codecs.audio)
                    .map(FourCc::text)
                    .collect(),
            ),
            video: map(&codecs.video),
            audio: map(&codecs.audio),
            caps_ex: Some(CAPS_MULTITRACK | CAPS_MODEX | CAPS_TIMESTAMP_NANO_OFFSET),
        })
    }

    /// Whether an object (a `connect` command object) announces E-RTMP.
    pub fn announced_in(object: &Amf0Value) -> bool {
        NAMES.iter().any(|k| object.get(k).is_some())
    }

    /// What the objects state (the first that has a property wins for it);
    /// `None` if none has any.
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a Amf0Value>) -> Option<Self> {
        let mut c = Capabilities::default();
        let mut any = false;
        for o in objects {
            let map = |k: &str| {
                o.get(k).and_then(Amf0Value::properties).map(|p| {
                    p.iter()
                        .take(MAX_ENTRIES)
                        .map(|(k, v)| (k.clone(), mask(v)))
                        .collect::<Vec<_>>()
                })
            };
            if c.fourcc_list.is_none()
                && let Some(Amf0Value::StrictArray(items)) = o.get("fourCcList")
            {
                c.fourcc_list = Some(items.iter().take(MAX_ENTRIES).map(text).collect());
            }
            if c.video.is_none() {
                c.video = map("videoFourCcInfoMap");
            }
            if c.audio.is_none() {
                c.audio = map("audioFourCcInfoMap");
            }
            if c.caps_ex.is_none() {
                c.caps_ex = o.get("capsEx").map(mask);
            }
            any |= Capabilities::announced_in(o);
        }
        any.then_some(c)
    }

    /// The properties to put in a command object, in the spec's order.
    pub fn to_properties(&self) -> Vec<(String, Amf0Value)> {
        let map = |m: &[(String, u32)]| {
            Amf0Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), Amf0Value::Number((*v).into())))
                    .collect(),
            )
        };
        let mut p = Vec::new();
        if let Some(l) = &self.fourcc_list {
            let items = l.iter().map(|s| Amf0Value::String(s.clone())).collect();
            p.push(("fourCcList".to_owned(), Amf0Value::StrictArray(items)));
        }
        if let Some(m) = &self.video {
            p.push(("videoFourCcInfoMap".to_owned(), map(m)));
        }
        if let Some(m) = &self.audio {
            p.push(("audioFourCcInfoMap".to_owned(), map(m)));
        }
        if let Some(c) = self.caps_ex {
            p.push(("capsEx".to_owned(), Amf0Value::Number(c.into())));
        }
        p
    }

    /// The `capsEx` bits by name (`multitrack`, `modex`…), unknown bits as
    /// `0x..`.
    pub fn caps_ex_names(&self) -> Vec<String> {
        let Some(c) = self.caps_ex else {
            return Vec::new();
        };
        let known = [
            (CAPS_RECONNECT, "reconnect"),
            (CAPS_MULTITRACK, "multitrack"),
            (CAPS_MODEX, "modex"),
            (CAPS_TIMESTAMP_NANO_OFFSET, "timestamp_nano_offset"),
        ];
        let mut names: Vec<String> = known
            .iter()
            .filter(|(b, _)| c & b != 0)
            .map(|(_, n)| (*n).to_owned())
            .collect();
        let rest = c & !known.iter().fold(0, |a, (b, _)| a | b);
        if rest != 0 {
            names.push(format!("{rest:#x}"));
        }
        names
    }
}

/// A `FourCcInfoMask` by name: `decode+encode+forward`, `none` for 0.
pub fn mask_names(m: u32) -> String {
    let names: Vec<&str> = [
        (CAN_DECODE, "decode"),
        (CAN_ENCODE, "encode"),
        (CAN_FORWARD, "forward"),
    ]
    .iter()
    .filter(|(b, _)| m & b != 0)
    .map(|(_, n)| *n)
    .collect();
    let rest = m & !(CAN_DECODE | CAN_ENCODE | CAN_FORWARD);
    match (names.is_empty(), rest) {
        (true, 0) => "none".to_owned(),
        (_, 0) => names.join("+"),
        (_, r) => {
            let mut n = names.join("+");
            if !n.is_empty() {
                n.push('+');
            }
            n + &format!("{r:#x}")
        }
    }
}

/// The E-RTMP codecs a stream uses, gathered from its tags (a publisher's
/// first ones) for [`Capabilities::publisher`]. Legacy codec ids are not
/// E-RTMP and are left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamCodecs {
    /// Video FourCCs, in the order first seen.
    pub video: Vec<FourCc>,
    /// Audio FourCCs, in the order first seen.
    pub audio: Vec<FourCc>,
}

impl StreamCodecs {
    /// Notes a video message body.
    pub fn note_video(&mut self, body: &[u8]) {
        if let Ok(v) = VideoInfo::parse(body) {
            note(&mut self.video, v.fourcc, &v.tracks);
        }
    }

    /// Notes an audio message body.
    pub fn note_audio(&mut self, body: &[u8]) {
        if let Ok(a) = AudioInfo::parse(body) {
            note(&mut self.audio, a.fourcc, &a.tracks);
        }
    }
}

fn note(list: &mut Vec<FourCc>, fourcc: Option<FourCc>, tracks: &[Track]) {
    for f in fourcc.into_iter().chain(tracks.iter().map(|t| t.fourcc)) {
        if !list.contains(&f) && list.len() < MAX_ENTRIES {
            list.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies written from E-RTMP v2's syntax: an ex-header video
    /// SequenceStart of `hvc1`; ManyTracksManyCodecs CodedFramesX with
    /// `av01` (track 1) and `hvc1` again (track 2); an audio SequenceStart
    /// of `Opus`; legacy AVC and AAC, which are not E-RTMP.
    #[test]
    fn a_publisher_states_the_ertmp_codecs_its_stream_uses() {
        let mut c = StreamCodecs::default();
        c.note_video(&[0x17, 0, 0, 0, 0, 1, 0x64]); // legacy AVC sequence header
        c.note_audio(&[0xaf, 0x00, 0x12, 0x10]); // legacy AAC config
        assert_eq!(Capabilities::publisher(&c), None);
        c.note_video(b"\x90hvc1\x01\x02");
        let mut many = vec![0x80 | 0x10 | 6, (2 << 4) | 3];
        for (fcc, id) in [(b"av01", 1u8), (b"hvc1", 2)] {
            many.extend_from_slice(fcc);
            many.extend_from_slice(&[id, 0, 0, 1, 0xaa]);
        }
        c.note_video(&many);
        c.note_audio(b"\x90OpusOpusHead");
        assert_eq!(c.video, [FourCc::HVC1, FourCc::AV01]);
        assert_eq!(c.audio, [FourCc::OPUS]);
        let stated = Capabilities::publisher(&c).expect("E-RTMP");
        let obj = Amf0Value::Object(stated.to_properties());
        assert_eq!(Capabilities::from_objects([&obj]), Some(stated.clone()));
        assert_eq!(
            stated.fourcc_list,
            Some(vec!["hvc1".into(), "av01".into(), "Opus".into()])
        );
        assert_eq!(
            stated.video,
            Some(vec![("hvc1".into(), 2), ("av01".into(), 2)])
        );
        assert_eq!(stated.audio, Some(vec![("Opus".into(), 2)]));
        assert_eq!(stated.caps_ex, Some(0x0e));
    }

    #[test]
    fn a_forwarder_round_trips_through_its_properties() {
        let f = Capabilities::forwarder();
        let obj = Amf0Value::Object(f.to_properties());
        assert!(Capabilities::announced_in(&obj));
        assert_eq!(Capabilities::from_objects([&obj]), Some(f.clone()));
        assert_eq!(f.caps_ex, Some(0x0e));
        assert_eq!(
            f.caps_ex_names(),
            ["multitrack", "modex", "timestamp_nano_offset"]
        );
    }

    #[test]
    fn objects_without_any_state_nothing() {
        let legacy = Amf0Value::Object(vec![(
            "fmsVer".into(),
            Amf0Value::String("FMS/3,0,1,123".into()),
        )]);
        assert_eq!(
            Capabilities::from_objects([&legacy, &Amf0Value::Null]),
            None
        );
    }

    #[test]
    fn the_information_object_is_read_too_and_odd_values_are_bounded() {
        // As some servers send them: in the information object, an ECMA
        // array for the map, a capsEx out of range, a list too long.
        let info = Amf0Value::Object(vec![
            (
                "videoFourCcInfoMap".into(),
                Amf0Value::EcmaArray {
                    count: 1,
                    properties: vec![("hvc1".into(), Amf0Value::Number(7.0))],
                },
            ),
            ("capsEx".into(), Amf0Value::Number(1e300)),
            (
                "fourCcList".into(),
                Amf0Value::StrictArray(vec![Amf0Value::String("av01".into()); 1000]),
            ),
        ]);
        let c = Capabilities::from_objects([&Amf0Value::Null, &info]).unwrap();
        assert_eq!(c.video, Some(vec![("hvc1".to_owned(), 7)]));
        assert_eq!(c.caps_ex, Some(u32::MAX));
        assert_eq!(c.fourcc_list.unwrap().len(), MAX_ENTRIES);
        assert_eq!(mask_names(7), "decode+encode+forward");
        assert_eq!(mask_names(0), "none");
        assert_eq!(mask_names(0x14), "forward+0x10");
    }
}
