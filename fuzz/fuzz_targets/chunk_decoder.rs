//! The chunk decoder on arbitrary bytes, with Set Chunk Size, Abort and gaps
//! chosen by the input: it never panics, never holds more than its partial
//! limit, and every message it delivers re-encodes and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmptool::proto::chunk::{ChunkDecoder, ChunkEncoder, ChunkEvent, DecoderConfig, EncoderConfig};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let size = [1u32, 2, 128, 4096, 65536][data[0] as usize % 5];
    let resume = data[1] & 1 == 1;
    let limit = 1 << 20;
    let mut dec = ChunkDecoder::new(DecoderConfig {
        chunk_size: size,
        resume,
        max_partial_bytes: limit,
        ..Default::default()
    });
    let mut msgs = Vec::new();
    // The rest in pieces; a piece's first byte may declare a gap.
    for piece in data[2..].chunks(97) {
        if piece[0] == 0xEE {
            let _ = dec.skip(u64::from(piece.get(1).copied().unwrap_or(1)));
        }
        dec.push(piece);
        loop {
            match dec.poll() {
                Ok(Some(ChunkEvent::Message(m))) => msgs.push(m),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        assert!(dec.partial_bytes() <= limit);
    }
    // Round trip: what was decoded, encoded again, decodes to the same.
    let mut enc = ChunkEncoder::new(EncoderConfig::default());
    let mut out = bytes::BytesMut::new();
    for m in &msgs {
        let csid = m.csid.clamp(3, 65599);
        enc.encode(csid, &m.header, &m.payload, &mut out);
        // A Set Chunk Size applies to what follows, on both sides.
        if m.header.msg_type.0 == 1 && m.payload.len() >= 4 {
            let v = u32::from_be_bytes([m.payload[0], m.payload[1], m.payload[2], m.payload[3]]);
            if v & 0x7FFF_FFFF != 0 {
                enc.set_chunk_size(v & 0x7FFF_FFFF);
            }
        }
    }
    let mut again = ChunkDecoder::new(DecoderConfig::default());
    again.push(&out);
    let mut n = 0;
    while let Ok(Some(ev)) = again.poll() {
        if let ChunkEvent::Message(m) = ev {
            assert_eq!(m.payload, msgs[n].payload);
            assert_eq!(m.header.msg_type, msgs[n].header.msg_type);
            n += 1;
        }
    }
});
