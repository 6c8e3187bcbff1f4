//! Chunk codec tests: spec examples, round trips, truncation, hostile input.

use bytes::{BufMut, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::proto::message::MessageType;

fn hdr(timestamp: u32, msg_type: u8, stream_id: u32) -> MessageHeader {
    MessageHeader {
        timestamp,
        msg_type: MessageType(msg_type),
        stream_id,
    }
}

fn decode_all(dec: &mut ChunkDecoder) -> Result<Vec<ChunkEvent>, ChunkError> {
    let mut out = Vec::new();
    while let Some(ev) = dec.poll()? {
        out.push(ev);
    }
    Ok(out)
}

fn messages(events: &[ChunkEvent]) -> Vec<RawMessage> {
    events
        .iter()
        .filter_map(|e| match e {
            ChunkEvent::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// RTMP 1.0 §5.3.2.1, "Example 1": four audio messages of 32 bytes on csid 3,
/// stream 12345, timestamps 1000, 1020, 1040, 1060: fmt 0, 2, 3, 3.
#[test]
fn spec_example_1_audio() {
    let mut wire = Vec::new();
    wire.push(0x03); // fmt 0, csid 3
    wire.extend_from_slice(&[0x00, 0x03, 0xE8]); // 1000
    wire.extend_from_slice(&[0x00, 0x00, 0x20, 8]); // length 32, audio
    wire.extend_from_slice(&12345u32.to_le_bytes());
    wire.extend_from_slice(&[0xA1; 32]);
    wire.push(0x83); // fmt 2
    wire.extend_from_slice(&[0x00, 0x00, 20]);
    wire.extend_from_slice(&[0xA2; 32]);
    wire.push(0xC3); // fmt 3
    wire.extend_from_slice(&[0xA3; 32]);
    wire.push(0xC3);
    wire.extend_from_slice(&[0xA4; 32]);

    let mut dec = ChunkDecoder::default();
    dec.push(&wire);
    let msgs = messages(&decode_all(&mut dec).unwrap());
    let ts: Vec<u32> = msgs.iter().map(|m| m.header.timestamp).collect();
    assert_eq!(ts, [1000, 1020, 1040, 1060]);
    assert!(msgs.iter().all(|m| m.header.stream_id == 12345
        && m.header.msg_type == MessageType::AUDIO
        && m.payload.len() == 32));
    assert_eq!(msgs[3].payload[0], 0xA4);
    assert_eq!(dec.offset(), wire.len() as u64);

    // Our encoder frames the same four messages with the same headers, except
    // that it sends fmt 2 (not 3) right after fmt 0.
    let mut enc = ChunkEncoder::default();
    let mut out = Vec::new();
    for (i, t) in [1000u32, 1020, 1040, 1060].iter().enumerate() {
        enc.encode(3, &hdr(*t, 8, 12345), &[0xA1 + i as u8; 32], &mut out);
    }
    assert_eq!(out, wire);
}

/// RTMP 1.0 §5.3.2.2, "Example 2": one 307-byte video message at chunk size
/// 128: a fmt-0 chunk and two fmt-3 chunks.
#[test]
fn spec_example_2_split_message() {
    let payload: Vec<u8> = (0..307u32).map(|i| i as u8).collect();
    let mut enc = ChunkEncoder::default();
    let mut out = Vec::new();
    enc.encode(4, &hdr(1000, 9, 12346), &payload, &mut out);
    assert_eq!(out.len(), 12 + 128 + 1 + 128 + 1 + 51);
    assert_eq!(out[12 + 128], 0xC4);
    assert_eq!(out[12 + 128 + 1 + 128], 0xC4);

    let mut dec = ChunkDecoder::default();
    dec.push(&out);
    let msgs = messages(&decode_all(&mut dec).unwrap());
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].payload.as_ref(), payload.as_slice());
    assert_eq!(msgs[0].chunks, 3);
    assert_eq!(msgs[0].header.timestamp, 1000);
}

#[test]
fn set_chunk_size_applies_from_next_chunk() {
    let mut enc = ChunkEncoder::default();
    let mut out = BytesMut::new();
    enc.encode(2, &hdr(0, 1, 0), &4096u32.to_be_bytes(), &mut out);
    enc.set_chunk_size(4096);
    let big = vec![7u8; 5000];
    enc.encode(6, &hdr(40, 9, 1), &big, &mut out);

    let mut dec = ChunkDecoder::new(DecoderConfig {
        start_offset: 3073,
        ..Default::default()
    });
    dec.push(&out);
    let evs = decode_all(&mut dec).unwrap();
    assert!(
        matches!(evs[0], ChunkEvent::Message(ref m) if m.header.msg_type == MessageType::SET_CHUNK_SIZE)
    );
    assert_eq!(
        evs[1],
        ChunkEvent::ChunkSizeChanged {
            old: 128,
            new: 4096,
            raw: 4096,
            offset: 3073 + 16
        }
    );
    let msgs = messages(&evs);
    assert_eq!(msgs[1].payload.len(), 5000);
    assert_eq!(msgs[1].chunks, 2);
    assert_eq!(msgs[1].offset, 3073 + 16);
    assert_eq!(dec.chunk_size(), 4096);
}

#[test]
fn interleaved_chunk_streams() {
    // Video on csid 6 and audio on csid 4 interleaved chunk by chunk (chunk size 128).
    let video = vec![0x17u8; 300];
    let audio = [0xAFu8; 200];
    let mut wire = Vec::new();
    wire.push(0x06);
    wire.extend_from_slice(&[0, 0, 10, 0, 1, 44, 9, 1, 0, 0, 0]);
    wire.extend_from_slice(&video[..128]);
    wire.push(0x04);
    wire.extend_from_slice(&[0, 0, 11, 0, 0, 200, 8, 1, 0, 0, 0]);
    wire.extend_from_slice(&audio[..128]);
    wire.push(0xC6);
    wire.extend_from_slice(&video[128..256]);
    wire.push(0xC4);
    wire.extend_from_slice(&audio[128..]);
    wire.push(0xC6);
    wire.extend_from_slice(&video[256..]);
    let mut dec = ChunkDecoder::default();
    dec.push(&wire);
    let msgs = messages(&decode_all(&mut dec).unwrap());
    assert_eq!(msgs.len(), 2);
    assert_eq!(
        (
            msgs[0].csid,
            msgs[0].payload.len(),
            msgs[0].header.timestamp
        ),
        (4, 200, 11)
    );
    assert_eq!(
        (
            msgs[1].csid,
            msgs[1].payload.len(),
            msgs[1].header.timestamp
        ),
        (6, 300, 10)
    );
    assert_eq!(msgs[1].offset, 0);
}

#[test]
fn abort_drops_partial_message() {
    let mut wire = Vec::new();
    wire.push(0x06);
    wire.extend_from_slice(&[0, 0, 10, 0, 1, 44, 9, 1, 0, 0, 0]);
    wire.extend_from_slice(&[1u8; 128]);
    // Abort csid 6 on csid 2.
    wire.extend_from_slice(&[0x02, 0, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 0, 0, 0, 6]);
    // A new message on csid 6 (fmt 0).
    wire.push(0x06);
    wire.extend_from_slice(&[0, 0, 20, 0, 0, 3, 9, 1, 0, 0, 0, 9, 9, 9]);
    let mut dec = ChunkDecoder::default();
    dec.push(&wire);
    let evs = decode_all(&mut dec).unwrap();
    assert!(evs.contains(&ChunkEvent::Aborted {
        csid: 6,
        discarded: 128,
        offset: 140
    }));
    let msgs = messages(&evs);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1].payload.as_ref(), &[9, 9, 9]);
    assert_eq!(dec.partial_bytes(), 0);
}

#[test]
fn extended_timestamp_both_type3_conventions() {
    let payload: Vec<u8> = (0..400u32).map(|i| (i % 251) as u8).collect();
    for (present, convention) in [
        (true, Type3ExtendedTimestamp::Present),
        (false, Type3ExtendedTimestamp::Absent),
    ] {
        let mut enc = ChunkEncoder::new(EncoderConfig {
            type3_extended_timestamp: present,
            ..Default::default()
        });
        let mut out = Vec::new();
        // fmt 0 with an extended timestamp, fmt 2 with a small delta, then a
        // timestamp that goes back: fmt 0 with an extended timestamp again.
        enc.encode(6, &hdr(16_777_300, 9, 1), &payload, &mut out);
        enc.encode(6, &hdr(16_777_340, 9, 1), &payload, &mut out);
        enc.encode(6, &hdr(16_777_320, 9, 1), &payload, &mut out);
        let mut dec = ChunkDecoder::default();
        dec.push(&out);
        let evs = decode_all(&mut dec).unwrap();
        let msgs = messages(&evs);
        let ts: Vec<u32> = msgs.iter().map(|m| m.header.timestamp).collect();
        assert_eq!(ts, [16_777_300, 16_777_340, 16_777_320]);
        assert!(
            msgs.iter()
                .all(|m| m.payload.as_ref() == payload.as_slice())
        );
        let ext: Vec<bool> = msgs.iter().map(|m| m.extended_timestamp).collect();
        assert_eq!(ext, [true, false, true]);
        assert_eq!(
            dec.type3_convention(),
            Some(convention),
            "present={present}"
        );
    }
}

#[test]
fn fmt1_without_previous_header_is_an_error() {
    let mut dec = ChunkDecoder::new(DecoderConfig {
        start_offset: 3709,
        ..Default::default()
    });
    dec.push(&[0x69, 0, 0, 0, 0, 0, 5, 9]);
    assert_eq!(
        dec.poll(),
        Err(ChunkError::NoPreviousHeader {
            offset: 3709,
            fmt: 1,
            csid: 41
        })
    );
    // The error sticks.
    assert!(dec.poll().is_err());
}

#[test]
fn hostile_lengths_do_not_allocate() {
    // 60 chunk streams each announcing a 16 MiB message with chunk size 1.
    let mut dec = ChunkDecoder::default();
    dec.set_chunk_size(1);
    let mut wire = Vec::new();
    for csid in 3..63u8 {
        wire.push(csid);
        wire.extend_from_slice(&[0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0, 0]);
    }
    dec.push(&wire);
    assert!(decode_all(&mut dec).unwrap().is_empty());
    assert_eq!(dec.partial_bytes(), 60);

    // Partial data beyond the limit is refused with an error.
    let mut dec = ChunkDecoder::new(DecoderConfig {
        max_partial_bytes: 1000,
        chunk_size: 600,
        ..Default::default()
    });
    let mut wire = Vec::new();
    for csid in 3..5u8 {
        wire.push(csid);
        wire.extend_from_slice(&[0, 0, 0, 0x01, 0x00, 0x00, 9, 1, 0, 0, 0]);
        wire.extend_from_slice(&[0u8; 600]);
    }
    dec.push(&wire);
    assert!(matches!(
        decode_all(&mut dec),
        Err(ChunkError::TooMuchBuffered { shared: false, .. })
    ));
}

/// Decoders sharing a budget hold at most its limit together: the one
/// whose chunk would cross it fails (naming the shared limit), and what a
/// decoder held goes back when it gives its messages up or is dropped.
#[test]
fn decoders_sharing_a_budget_hold_at_most_its_limit_together() {
    use super::decoder::{ReserveBudget, UNCOUNTED_PARTIAL};
    // Each decoder's first 16 KiB in progress is its own; past it the
    // shared count moves in 16 KiB steps.
    let budget = ReserveBudget::with_held_limit(1 << 20, 40_000);
    let new = || {
        ChunkDecoder::new(DecoderConfig {
            chunk_size: 20_000,
            reserve_budget: Some(budget.clone()),
            ..Default::default()
        })
    };
    // A message of 65536 bytes, its first 20000 sent.
    let mut first = Vec::new();
    first.push(4u8);
    first.extend_from_slice(&[0, 0, 0, 0x01, 0x00, 0x00, 9, 1, 0, 0, 0]);
    first.extend_from_slice(&[0x17; 20_000]);
    const { assert!(20_000 > UNCOUNTED_PARTIAL) };
    let (mut a, mut b) = (new(), new());
    for d in [&mut a, &mut b] {
        d.push(&first);
        assert!(decode_all(d).unwrap().is_empty());
    }
    assert_eq!(budget.held(), 2 * 16_384);
    // Alone each is far under its own 64 MiB: the third crosses the
    // shared 40000.
    let mut c = new();
    c.push(&first);
    match decode_all(&mut c) {
        Err(e @ ChunkError::TooMuchBuffered { shared: true, .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("of all connections would hold 49152 bytes, over the limit of 40000"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(budget.held(), 2 * 16_384);
    // Given up for a boundary search: counted, not held; a restart reports
    // the message cut with what it had received.
    a.free_partials();
    assert_eq!(budget.held(), 16_384);
    a.restart(100_000);
    let cut = std::iter::from_fn(|| a.poll().ok().flatten())
        .find_map(|e| match e {
            ChunkEvent::Damaged(m) => Some(m),
            _ => None,
        })
        .expect("the message in progress is reported cut");
    assert_eq!((cut.length, cut.captured), (65536, 20_000));
    assert_eq!(budget.held(), 16_384);
    // A decoder dropped (its connection ended) gives back what it held.
    drop(b);
    assert_eq!(budget.held(), 0);
    drop((a, c));
}

#[derive(Debug, Clone)]
struct TestMsg {
    csid: u32,
    header: MessageHeader,
    payload: Vec<u8>,
    /// Change the chunk size (with a Set Chunk Size message) before this one.
    new_chunk_size: Option<u32>,
}

fn arb_msgs() -> impl Strategy<Value = Vec<TestMsg>> {
    let csid = prop_oneof![
        Just(2u32),
        3u32..8,
        64u32..70,
        318u32..322,
        65590u32..=65599
    ];
    let msg = (
        csid,
        prop_oneof![0u32..100, 0xFF_FFF0u32..0x100_0010, any::<u32>()],
        prop_oneof![Just(8u8), Just(9u8), Just(20u8), Just(18u8), any::<u8>()],
        prop_oneof![Just(0u32), Just(1u32), any::<u32>()],
        prop::collection::vec(any::<u8>(), 0..700),
        prop_oneof![8 => Just(None), 1 => (1u32..400).prop_map(Some)],
    );
    prop::collection::vec(msg, 1..25).prop_map(|v| {
        let mut ts_by_csid = std::collections::HashMap::new();
        v.into_iter()
            .map(|(csid, step, t, sid, payload, new_cs)| {
                // Timestamps mostly move forward per csid, sometimes jump.
                let ts: &mut u32 = ts_by_csid.entry(csid).or_insert(0);
                *ts = ts.wrapping_add(step);
                // Types 1 and 2 would change decoder state by themselves.
                let t = if t == 1 || t == 2 { 3 } else { t };
                TestMsg {
                    csid,
                    header: hdr(*ts, t, sid),
                    payload,
                    new_chunk_size: new_cs,
                }
            })
            .collect()
    })
}

fn encode_msgs(msgs: &[TestMsg], type3_ext: bool) -> (Vec<u8>, Vec<TestMsg>) {
    let mut enc = ChunkEncoder::new(EncoderConfig {
        type3_extended_timestamp: type3_ext,
        ..Default::default()
    });
    let mut out = Vec::new();
    let mut expected = Vec::new();
    for m in msgs {
        if let Some(cs) = m.new_chunk_size {
            let scs = TestMsg {
                csid: 2,
                header: hdr(0, 1, 0),
                payload: cs.to_be_bytes().to_vec(),
                new_chunk_size: None,
            };
            enc.encode(2, &scs.header, &scs.payload, &mut out);
            enc.set_chunk_size(cs);
            expected.push(scs);
        }
        enc.encode(m.csid, &m.header, &m.payload, &mut out);
        expected.push(m.clone());
    }
    (out, expected)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Encode, cut into arbitrary pieces, decode: the same messages come out.
    #[test]
    fn round_trip(msgs in arb_msgs(), cuts in prop::collection::vec(1usize..300, 0..40)) {
        let (wire, expected) = encode_msgs(&msgs, true);
        let mut dec = ChunkDecoder::default();
        let mut got = Vec::new();
        let mut pos = 0usize;
        for c in cuts.iter().chain(std::iter::once(&usize::MAX)) {
            let end = pos.saturating_add(*c).min(wire.len());
            dec.push(&wire[pos..end]);
            pos = end;
            got.extend(messages(&decode_all(&mut dec).unwrap()));
        }
        prop_assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            prop_assert_eq!(g.csid, e.csid);
            prop_assert_eq!(g.header, e.header);
            prop_assert_eq!(g.payload.as_ref(), e.payload.as_slice());
        }
        prop_assert_eq!(dec.offset(), wire.len() as u64);
        prop_assert_eq!(dec.pending(), 0);
        prop_assert_eq!(dec.partial_bytes(), 0);
    }

    /// Every truncated prefix decodes to a prefix of the messages and then
    /// asks for more bytes: never an error, never a panic.
    #[test]
    fn truncated_prefixes(msgs in arb_msgs(), cut_frac in 0.0f64..1.0) {
        let (wire, expected) = encode_msgs(&msgs, false);
        let cut = (wire.len() as f64 * cut_frac) as usize;
        let mut dec = ChunkDecoder::default();
        dec.push(&wire[..cut]);
        let got = messages(&decode_all(&mut dec).unwrap());
        prop_assert!(got.len() <= expected.len());
        for (g, e) in got.iter().zip(&expected) {
            prop_assert_eq!(g.header, e.header);
            prop_assert_eq!(g.payload.as_ref(), e.payload.as_slice());
        }
    }

    /// Arbitrary bytes never panic and never hold more than the limit.
    #[test]
    fn garbage_never_panics(data in prop::collection::vec(any::<u8>(), 0..4000)) {
        let mut dec = ChunkDecoder::new(DecoderConfig { max_partial_bytes: 100_000, ..Default::default() });
        dec.push(&data);
        let _ = decode_all(&mut dec);
        prop_assert!(dec.partial_bytes() <= 100_000);
    }
}

#[test]
fn encoder_uses_compact_headers() {
    let mut enc = ChunkEncoder::default();
    let mut out = BytesMut::new();
    enc.encode(4, &hdr(0, 8, 1), &[1, 2], &mut out); // fmt 0: 12 + 2
    enc.encode(4, &hdr(23, 8, 1), &[1, 2], &mut out); // fmt 2: 4 + 2
    enc.encode(4, &hdr(46, 8, 1), &[1, 2], &mut out); // fmt 3: 1 + 2
    enc.encode(4, &hdr(69, 8, 1), &[1, 2, 3], &mut out); // fmt 1: 8 + 3
    enc.encode(4, &hdr(10, 8, 1), &[1, 2, 3], &mut out); // backwards: fmt 0
    let fmts: Vec<u8> = [0usize, 14, 20, 23, 34]
        .iter()
        .map(|&i| out[i] >> 6)
        .collect();
    assert_eq!(fmts, [0, 2, 3, 1, 0]);
    assert_eq!(out.len(), 14 + 6 + 3 + 11 + 15);
    let _ = out.remaining_mut();
}

proptest! {
    /// The reservation bound holds for every header form: any chunk size,
    /// csid width, extended timestamps on every chunk, payloads of any
    /// length, one message after another on the same csid.
    #[test]
    fn max_encoded_len_bounds_what_encode_writes(
        chunk_size in 1u32..5000,
        csid in prop_oneof![Just(2u32), Just(63), Just(64), Just(319), Just(320), Just(65599)],
        msgs in proptest::collection::vec((0usize..20_000, any::<u32>(), 0u8..30), 1..6),
    ) {
        let mut enc = ChunkEncoder::new(EncoderConfig {
            type3_extended_timestamp: true,
            ..Default::default()
        });
        enc.set_chunk_size(chunk_size);
        for (len, ts, t) in msgs {
            let payload = vec![0u8; len];
            let mut out = Vec::new();
            let bound = enc.max_encoded_len(len);
            enc.encode(csid, &hdr(ts, t, 1), &payload, &mut out);
            prop_assert!(out.len() <= bound, "{} > {bound}", out.len());
        }
    }
}
