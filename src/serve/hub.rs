//! The stream hub of `serve`: one entry per stream name, one publisher, any
//! number of players. Each published message is shared (`Arc`) by every
//! player through a bounded broadcast queue: the publisher never waits for a
//! player, and a player that falls more than the queue behind skips to the
//! next key frame ([`Subscription`]). A GOP cache (metadata, sequence
//! headers, the frames since the last key frame; bounded) lets a new player
//! start on a key frame with everything it needs before it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::sync::broadcast;

use crate::proto::chunk::{ChunkEncoder, MessageHeader};
use crate::proto::media::MediaUnit;
use crate::proto::message::{MessageType, is_metadata};
use crate::proto::session::media_csid;
use crate::proto::stream_config::{self, ConfigChange, StreamConfig, TrackSet};

/// One message of a published stream, as received (body byte for byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Audio, video or data (AMF0/AMF3).
    pub msg_type: MessageType,
    /// Timestamp (ms), unchanged.
    pub timestamp: u32,
    /// The body.
    pub payload: Bytes,
    /// What it counts as.
    pub unit: MediaUnit,
    /// What it does to the stream's configuration (sequence headers per
    /// track).
    pub config: Option<ConfigChange>,
    /// The message chunked once for every player: full (type 0) headers,
    /// message stream [`WIRE_STREAM_ID`], the server's chunk size.
    pub wire: Bytes,
}

/// What a cached frame costs besides its bytes: the `Frame`, its `Arc`, two
/// `Bytes` handles and the queue slot, rounded up.
pub const FRAME_OVERHEAD: usize = 192;

/// The message stream id of [`Frame::wire`]: the first (and in practice
/// only) stream a client creates.
pub const WIRE_STREAM_ID: u32 = 1;

impl Frame {
    /// Classifies a message body and chunks it at `chunk_size`, once for
    /// every player.
    pub fn new(msg_type: MessageType, timestamp: u32, payload: Bytes, chunk_size: u32) -> Frame {
        let (unit, config) = match msg_type {
            MessageType::VIDEO => stream_config::classify(true, &payload),
            MessageType::AUDIO => stream_config::classify(false, &payload),
            _ => (MediaUnit::Config, None),
        };
        // A fresh encoder: type 0 headers, which read right whatever the
        // player's chunk streams carried before.
        let mut enc = ChunkEncoder::default();
        enc.set_chunk_size(chunk_size);
        let mut wire = BytesMut::with_capacity(payload.len() + payload.len() / 128 + 32);
        let header = MessageHeader {
            timestamp,
            msg_type,
            stream_id: WIRE_STREAM_ID,
        };
        enc.encode(media_csid(msg_type), &header, &payload, &mut wire);
        Frame {
            msg_type,
            timestamp,
            payload,
            unit,
            config,
            wire: wire.freeze(),
        }
    }

    /// What keeping it costs: its body, its chunked copy and the
    /// bookkeeping around them ([`FRAME_OVERHEAD`]). A publisher of many
    /// tiny messages (or aggregates of 1-byte parts) would otherwise hold
    /// a hundred times the memory the GOP bound counts.
    pub fn cost(&self) -> usize {
        self.payload.len() + self.wire.len() + FRAME_OVERHEAD
    }

    /// A video key frame.
    pub fn is_keyframe(&self) -> bool {
        self.unit == MediaUnit::VideoFrame { key: true }
    }
}

/// A `@setDataFrame` data message's body without the `@setDataFrame` string
/// (what nginx-rtmp and FMS hand to players), byte for byte otherwise; an
/// AMF3 data message (type 15) keeps its format byte 0 before the rest.
/// Other messages as they are.
pub fn strip_set_data_frame(msg_type: MessageType, p: &Bytes) -> Bytes {
    const SDF: &[u8] = b"\x02\x00\x0d@setDataFrame";
    match msg_type {
        MessageType::DATA_AMF0 if p.starts_with(SDF) => p.slice(SDF.len()..),
        MessageType::DATA_AMF3 if p.first() == Some(&0) && p[1..].starts_with(SDF) => {
            let mut b = BytesMut::with_capacity(p.len() - SDF.len());
            b.extend_from_slice(&[0]);
            b.extend_from_slice(&p[1 + SDF.len()..]);
            b.freeze()
        }
        _ => p.clone(),
    }
}

/// An AMF3 data message (type 15: a format byte, then AMF0 values that may
/// switch to AMF3, as Flash Player and AIR publishers with objectEncoding 3
/// send `@setDataFrame`/`onMetaData`) as the AMF0 data message (type 18)
/// closest to it ([`Amf0Value::without_avmplus`]), the form nginx-rtmp
/// hands its players (it sends metadata as type 18) and the only one FFmpeg
/// reads (it skips type 15: its players would get no metadata). Anything
/// else, and a type 15 body that does not decode (the strict analysis
/// reports it), as it is. The third value names what AMF0 could not carry
/// (it became null), with the data's name.
///
/// [`Amf0Value::without_avmplus`]: crate::proto::amf0::Amf0Value::without_avmplus
pub fn data_as_amf0(msg_type: MessageType, p: &Bytes) -> (MessageType, Bytes, Option<String>) {
    use crate::proto::amf0::Amf0Value;
    use crate::proto::message::{DataMessage, Encoding, Message};
    if msg_type != MessageType::DATA_AMF3 {
        return (msg_type, p.clone(), None);
    }
    match Message::decode(msg_type, p.clone()) {
        Ok(Message::Data(d)) => {
            let loss = d
                .values
                .iter()
                .find_map(Amf0Value::avmplus_loss)
                .map(|what| {
                    let name = d
                        .values
                        .iter()
                        .filter_map(Amf0Value::as_str)
                        .find(|n| *n != "@setDataFrame")
                        .unwrap_or("");
                    format!("\"{}\" holds {what}", name.escape_debug())
                });
            let values = d
                .values
                .into_iter()
                .map(Amf0Value::without_avmplus)
                .collect();
            let m = Message::Data(DataMessage {
                encoding: Encoding::Amf0,
                values,
            });
            (MessageType::DATA_AMF0, m.encode(), loss)
        }
        _ => (msg_type, p.clone(), None),
    }
}

/// Bounds of the hub.
#[derive(Debug, Clone, Copy)]
pub struct HubLimits {
    /// Messages a player may lag behind before it skips to a key frame.
    pub queue: usize,
    /// Memory of the GOP cache per stream (frames since the last key
    /// frame: each one's body, its chunked copy and [`FRAME_OVERHEAD`]);
    /// over it the cache is dropped until the next key frame.
    pub gop_bytes: usize,
}

impl Default for HubLimits {
    fn default() -> Self {
        HubLimits {
            queue: 1024,
            // About 16 MiB of media (the chunked copy doubles it).
            gop_bytes: 32 << 20,
        }
    }
}

/// What is published on a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// A message.
    Frame(Arc<Frame>),
    /// The publisher left.
    Unpublished,
    /// A publisher started.
    Published,
}

struct Slot {
    publisher: Option<u64>,
    tx: broadcast::Sender<Update>,
    /// onMetaData (after @setDataFrame was stripped): the last replaces
    /// the one before.
    metadata: Option<Arc<Frame>>,
    /// Every track's sequence header (and E-RTMP multichannel config and
    /// video metadata).
    config: StreamConfig<Arc<Frame>>,
    gop: VecDeque<Arc<Frame>>,
    gop_bytes: usize,
    /// Number of the frame at the front of `gop` (frames are numbered as
    /// they are cached).
    gop_base: u64,
    /// Per video track (E-RTMP multitrack: renditions), the number of its
    /// latest key frame in `gop`: the cache starts at the earliest of them,
    /// so a late player gets a key frame of every track, not only of the
    /// one whose key frame came last.
    last_keys: Vec<(u8, u64)>,
    /// A key frame started the cache (else it holds nothing useful).
    gop_valid: bool,
    has_video: bool,
    /// Timestamp of the last frame (not configuration).
    last_ts: Option<u32>,
    players: usize,
}

impl Slot {
    fn clear_gop(&mut self) {
        self.gop.clear();
        self.gop_bytes = 0;
        self.gop_base = 0;
        self.gop_valid = false;
        self.last_keys.clear();
    }
}

/// All streams of a server.
pub struct Hub {
    limits: HubLimits,
    streams: Mutex<HashMap<String, Slot>>,
}

/// Why a publish is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishRefused {
    /// Another connection publishes this name (nginx: `NetStream.Publish.BadName`).
    Busy,
}

/// A player's view of a stream: what to send first, then the live queue.
pub struct Subscription {
    /// Metadata, sequence headers and the frames since the last key frame.
    pub start: Vec<Arc<Frame>>,
    /// Live messages after them.
    pub rx: broadcast::Receiver<Update>,
    /// Whether the stream has a publisher now.
    pub live: bool,
}

impl Hub {
    /// An empty hub.
    pub fn new(limits: HubLimits) -> Arc<Hub> {
        Arc::new(Hub {
            limits,
            streams: Mutex::new(HashMap::new()),
        })
    }

    fn slot<'a>(&self, map: &'a mut HashMap<String, Slot>, name: &str) -> &'a mut Slot {
        map.entry(name.to_owned()).or_insert_with(|| Slot {
            publisher: None,
            tx: broadcast::channel(self.limits.queue.max(1)).0,
            metadata: None,
            config: StreamConfig::default(),
            gop: VecDeque::new(),
            gop_bytes: 0,
            gop_base: 0,
            last_keys: Vec::new(),
            gop_valid: false,
            has_video: false,
            last_ts: None,
            players: 0,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // A panic elsewhere cannot leave the map inconsistent in a way that
        // matters more than stopping every stream would.
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `conn` the publisher of `name`, unless someone else is.
    pub fn publish(&self, name: &str, conn: u64) -> Result<(), PublishRefused> {
        let mut map = self.lock();
        let s = self.slot(&mut map, name);
        if s.publisher.is_some_and(|p| p != conn) {
            return Err(PublishRefused::Busy);
        }
        s.publisher = Some(conn);
        s.metadata = None;
        s.config.clear();
        s.clear_gop();
        s.has_video = false;
        s.last_ts = None;
        let _ = s.tx.send(Update::Published);
        Ok(())
    }

    /// `conn` stopped publishing `name` (if it was its publisher).
    pub fn unpublish(&self, name: &str, conn: u64) {
        let mut map = self.lock();
        let gone = match map.get_mut(name) {
            Some(s) if s.publisher == Some(conn) => {
                s.publisher = None;
                let _ = s.tx.send(Update::Unpublished);
                s.players == 0
            }
            _ => false,
        };
        if gone {
            map.remove(name);
        }
    }

    /// A message from the publisher of `name`.
    pub fn frame(&self, name: &str, frame: Frame) {
        let frame = Arc::new(frame);
        let mut map = self.lock();
        let Some(s) = map.get_mut(name) else { return };
        if let Some(change) = frame.config {
            if frame.msg_type == MessageType::VIDEO {
                s.has_video = true;
            }
            s.config.apply(change, frame.payload.len(), frame.clone());
        } else if is_metadata(frame.msg_type, &frame.payload) {
            s.metadata = Some(frame.clone());
        } else if frame.msg_type == MessageType::VIDEO || frame.msg_type == MessageType::AUDIO {
            if frame.msg_type == MessageType::VIDEO {
                s.has_video = true;
            }
            s.last_ts = Some(frame.timestamp);
            let key = frame.is_keyframe();
            if key {
                let seq = s.gop_base + s.gop.len() as u64;
                for id in TrackSet::of_video(&frame.payload).ids() {
                    match s.last_keys.iter_mut().find(|k| k.0 == id) {
                        Some(k) => k.1 = seq,
                        None => s.last_keys.push((id, seq)),
                    }
                }
                s.gop_valid = true;
            }
            if s.gop_valid {
                s.gop_bytes += frame.cost();
                s.gop.push_back(frame.clone());
                if key {
                    // From the earliest of every track's latest key frame.
                    let start = s.last_keys.iter().map(|k| k.1).min().unwrap_or(0);
                    while s.gop_base < start {
                        if let Some(f) = s.gop.pop_front() {
                            s.gop_bytes -= f.cost();
                        }
                        s.gop_base += 1;
                    }
                }
                if s.gop_bytes > self.limits.gop_bytes {
                    // Too long a GOP to keep: new players wait for the next
                    // key frame instead.
                    s.clear_gop();
                }
            }
        }
        let _ = s.tx.send(Update::Frame(frame));
    }

    /// Subscribes a player to `name` (which need not be published yet).
    pub fn subscribe(&self, name: &str) -> Subscription {
        let mut map = self.lock();
        let s = self.slot(&mut map, name);
        s.players += 1;
        let gop = s.gop_valid || !s.has_video;
        // Metadata and configuration go at the time the player joins (the
        // first frame it gets), as nginx-rtmp sends its cached headers: not
        // seconds before it, as they were published.
        let join = gop
            .then(|| s.gop.front().map(|f| f.timestamp))
            .flatten()
            .or(s.last_ts);
        let mut start: Vec<Arc<Frame>> = s
            .metadata
            .iter()
            .chain(s.config.iter())
            .map(|f| match join {
                Some(ts) if ts != f.timestamp => Arc::new(Frame {
                    timestamp: ts,
                    // Chunked for the player alone, at the new time.
                    wire: Bytes::new(),
                    ..(**f).clone()
                }),
                _ => f.clone(),
            })
            .collect();
        if gop {
            start.extend(s.gop.iter().cloned());
        }
        Subscription {
            start,
            rx: s.tx.subscribe(),
            live: s.publisher.is_some(),
        }
    }

    /// A player of `name` left.
    pub fn unsubscribe(&self, name: &str) {
        let mut map = self.lock();
        let gone = match map.get_mut(name) {
            Some(s) => {
                s.players = s.players.saturating_sub(1);
                s.players == 0 && s.publisher.is_none()
            }
            None => false,
        };
        if gone {
            map.remove(name);
        }
    }

    /// Whether `name` has a video track (players that lagged wait for a key
    /// frame only then).
    pub fn has_video(&self, name: &str) -> bool {
        self.lock().get(name).is_some_and(|s| s.has_video)
    }

    /// Streams and their player counts.
    pub fn streams(&self) -> Vec<(String, bool, usize)> {
        self.lock()
            .iter()
            .map(|(k, s)| (k.clone(), s.publisher.is_some(), s.players))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(key: bool, seq: bool) -> Frame {
        let b0 = if key { 0x17 } else { 0x27 };
        let pt = if seq { 0 } else { 1 };
        Frame::new(
            MessageType::VIDEO,
            0,
            Bytes::from(vec![b0, pt, 0, 0, 0, 1, 2, 3]),
            4096,
        )
    }

    /// An E-RTMP OneTrack avc1 CodedFramesX message of `track` at `ts`.
    fn rendition(track: u8, key: bool, ts: u32) -> Frame {
        let b0 = 0x80 | (if key { 1 } else { 2 } << 4) | 6;
        Frame::new(
            MessageType::VIDEO,
            ts,
            Bytes::from(vec![b0, 3, b'a', b'v', b'c', b'1', track, 0, 0, 0, 1, 9]),
            4096,
        )
    }

    /// Two renditions (E-RTMP multitrack, as OBS's enhanced broadcasting
    /// sends them) with their key frames at one time, track 0's first: the
    /// cache keeps both (it used to start again at track 1's, and a late
    /// player got track 0 from an inter frame). A rendition's key frame on
    /// its own later does not cut the other's GOP.
    #[test]
    fn every_renditions_key_frame_is_kept_for_a_late_player() {
        let hub = Hub::new(HubLimits::default());
        hub.publish("s", 1).unwrap();
        for gop in 0..3u32 {
            let t = gop * 1000;
            hub.frame("s", rendition(0, true, t));
            hub.frame("s", rendition(1, true, t));
            for i in 1..5 {
                hub.frame("s", rendition(0, false, t + i * 40));
                hub.frame("s", rendition(1, false, t + i * 40));
            }
        }
        let start = hub.subscribe("s").start;
        assert_eq!(start.len(), 10);
        assert!(start[0].is_keyframe() && start[1].is_keyframe());
        assert_eq!(start[0].timestamp, 2000);
        assert_eq!(
            [start[0].payload[6], start[1].payload[6]],
            [0, 1],
            "a key frame of each"
        );
        // Track 1 alone starts a GOP: track 0's last key frame stays.
        hub.frame("s", rendition(1, true, 2200));
        let start = hub.subscribe("s").start;
        assert_eq!(start[0].timestamp, 2000);
        assert_eq!(start.len(), 11);
        // Both again: the cache starts at the earlier of the two.
        hub.frame("s", rendition(0, true, 3000));
        hub.frame("s", rendition(1, true, 3000));
        let start = hub.subscribe("s").start;
        assert_eq!(start.len(), 2);
    }

    #[test]
    fn a_new_player_starts_with_config_then_the_gop_from_its_key_frame() {
        let hub = Hub::new(HubLimits::default());
        hub.publish("s", 1).unwrap();
        hub.frame("s", video(false, false)); // before any key frame: not cached
        hub.frame("s", video(true, true)); // sequence header
        hub.frame("s", video(true, false));
        hub.frame("s", video(false, false));
        let sub = hub.subscribe("s");
        assert_eq!(sub.start.len(), 3);
        assert_eq!(*sub.start[0], video(true, true));
        assert_eq!(*sub.start[1], video(true, false));
        assert!(sub.live);
        assert_eq!(hub.publish("s", 2), Err(PublishRefused::Busy));
        hub.unpublish("s", 2); // not the publisher: nothing happens
        assert_eq!(hub.publish("s", 2), Err(PublishRefused::Busy));
        hub.unpublish("s", 1);
        assert_eq!(hub.publish("s", 2), Ok(()));
    }

    #[test]
    fn an_oversized_gop_is_dropped_until_the_next_key_frame() {
        let one = video(true, false).cost();
        let hub = Hub::new(HubLimits {
            queue: 8,
            gop_bytes: one * 5 / 2,
        });
        hub.publish("s", 1).unwrap();
        hub.frame("s", video(true, false));
        hub.frame("s", video(false, false));
        hub.frame("s", video(false, false));
        assert!(hub.subscribe("s").start.is_empty());
        hub.frame("s", video(true, false));
        assert_eq!(hub.subscribe("s").start.len(), 1);
    }

    /// Tiny messages count what they really hold: 10,000 frames of one
    /// byte are not 10 KB of cache.
    #[test]
    fn tiny_frames_count_their_overhead() {
        let limit = 64 << 10;
        let hub = Hub::new(HubLimits {
            queue: 8,
            gop_bytes: limit,
        });
        hub.publish("s", 1).unwrap();
        hub.frame("s", video(true, false));
        let tiny = || Frame::new(MessageType::VIDEO, 0, Bytes::from_static(&[0x27]), 4096);
        for n in 0..10_000 {
            hub.frame("s", tiny());
            let held = hub.subscribe("s").start.len();
            assert!(
                held * FRAME_OVERHEAD <= limit,
                "{held} frames held after {n}"
            );
        }
    }

    #[test]
    fn set_data_frame_is_stripped_byte_for_byte() {
        let mut p = b"\x02\x00\x0d@setDataFrame".to_vec();
        p.extend_from_slice(b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00\x00\x00\x09");
        let s = strip_set_data_frame(MessageType::DATA_AMF0, &Bytes::from(p.clone()));
        assert!(is_metadata(MessageType::DATA_AMF0, &s));
        assert_eq!(
            &s[..],
            b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00\x00\x00\x09"
        );
        // AMF3 data: the format byte stays.
        let amf3 = Bytes::from([&[0u8][..], &p].concat());
        let s3 = strip_set_data_frame(MessageType::DATA_AMF3, &amf3);
        assert_eq!(s3[0], 0);
        assert_eq!(&s3[1..], &s[..]);
        assert!(is_metadata(MessageType::DATA_AMF3, &s3));
        // Not data, or the AMF0 form in an AMF3 message: untouched.
        assert_eq!(
            strip_set_data_frame(MessageType::DATA_AMF3, &Bytes::from(p.clone()))[..],
            p[..]
        );
        assert_eq!(
            strip_set_data_frame(MessageType::VIDEO, &Bytes::from(p.clone()))[..],
            p[..]
        );
    }

    /// AMF3 data (an AVM+ switch inside) becomes the AMF0 data message with
    /// the same values; AMF0 data and a body that does not decode stay.
    #[test]
    fn amf3_data_becomes_amf0_data() {
        use crate::proto::amf0::Amf0Value as V;
        use crate::proto::amf3::{Amf3Object, Amf3Value as V3};
        use crate::proto::message::{DataMessage, Encoding, Message};
        let meta = V3::Object(Box::new(Amf3Object {
            class_name: String::new(),
            dynamic: true,
            externalizable: false,
            sealed: vec![],
            dynamic_members: vec![
                ("width".into(), V3::Integer(320)),
                ("encoder".into(), V3::String("flash".into())),
            ],
            external: None,
        }));
        let data = |encoding, last| {
            Message::Data(DataMessage {
                encoding,
                values: vec![V::String("onMetaData".into()), last],
            })
            .encode()
        };
        let amf3 = data(Encoding::Amf3 { format: 0 }, V::AvmPlus(meta));
        assert_eq!(amf3[0], 0);
        let amf0 = data(
            Encoding::Amf0,
            V::Object(vec![
                ("width".into(), V::Number(320.0)),
                ("encoder".into(), V::String("flash".into())),
            ]),
        );
        let (t, b, loss) = data_as_amf0(MessageType::DATA_AMF3, &amf3);
        assert_eq!((t, &b[..], loss), (MessageType::DATA_AMF0, &amf0[..], None));
        let bad = Bytes::from_static(&[0, 0x11, 0x0a]);
        assert_eq!(
            data_as_amf0(MessageType::DATA_AMF3, &bad),
            (MessageType::DATA_AMF3, bad.clone(), None)
        );
        let a0 = amf0;
        assert_eq!(
            data_as_amf0(MessageType::DATA_AMF0, &a0),
            (MessageType::DATA_AMF0, a0.clone(), None)
        );
        // What AMF0 cannot carry becomes null, and is named.
        let thumb = V::AvmPlus(V3::ByteArray(vec![1, 2, 3]));
        let (_, b, loss) = data_as_amf0(
            MessageType::DATA_AMF3,
            &data(Encoding::Amf3 { format: 0 }, thumb),
        );
        assert_eq!(&b[..], &data(Encoding::Amf0, V::Null)[..]);
        assert_eq!(
            loss.as_deref(),
            Some("\"onMetaData\" holds a byte array (3 bytes)")
        );
    }
}
