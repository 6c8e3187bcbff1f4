//! Chunk stream decoding and encoding throughput on real media: the tags of
//! testdata/rtmp/media/h264base_aac_60s.flv framed as RTMP messages at chunk
//! sizes 128 (the default, many chunks) and 4096 (nginx-rtmp's default);
//! and the boundary search (`walk::find_boundary`) over 64 KiB of bytes
//! that are not chunks, as after a handshake whose connection carries
//! something else (the worst case of a search: every position judged).

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtmptool::proto::chunk::walk::{Search, SearchOptions, WalkState, find_boundary};
use rtmptool::proto::chunk::{ChunkDecoder, ChunkEncoder, ChunkEvent, MessageHeader};
use rtmptool::proto::flv;
use rtmptool::proto::message::MessageType;

fn tags() -> Vec<(MessageHeader, Bytes)> {
    let data = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/rtmp/media/h264base_aac_60s.flv"
    ))
    .expect("testdata FLV");
    let (_, tags, _) = flv::read_all(&data).expect("valid FLV");
    tags.into_iter()
        .map(|t| {
            (
                MessageHeader {
                    timestamp: t.timestamp,
                    msg_type: MessageType(t.tag_type.base().0),
                    stream_id: 1,
                },
                t.data,
            )
        })
        .collect()
}

fn encode(tags: &[(MessageHeader, Bytes)], chunk_size: u32) -> Vec<u8> {
    let mut enc = ChunkEncoder::default();
    enc.set_chunk_size(chunk_size);
    let mut out = Vec::new();
    for (h, body) in tags {
        let csid = if h.msg_type == MessageType::AUDIO {
            4
        } else {
            6
        };
        enc.encode(csid, h, body, &mut out);
    }
    out
}

fn bench(c: &mut Criterion) {
    let tags = tags();
    for chunk_size in [128u32, 4096] {
        let wire = encode(&tags, chunk_size);
        let mut g = c.benchmark_group(format!("chunk_size_{chunk_size}"));
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_function("decode", |b| {
            b.iter(|| {
                let mut dec = ChunkDecoder::default();
                dec.set_chunk_size(chunk_size);
                let mut n = 0usize;
                // Feed as a TCP receiver would: 64 KiB reads.
                for piece in wire.chunks(65536) {
                    dec.push(piece);
                    while let Ok(Some(ev)) = dec.poll() {
                        if let ChunkEvent::Message(m) = ev {
                            n += m.payload.len();
                        }
                    }
                }
                assert!(n > 0);
                n
            })
        });
        g.bench_function("encode", |b| b.iter(|| encode(&tags, chunk_size).len()));
        g.finish();
    }
    // xorshift bytes: the same every run.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let junk: Vec<u8> = (0..65536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut g = c.benchmark_group("boundary_search");
    g.throughput(Throughput::Bytes(junk.len() as u64));
    g.bench_function("random_64k", |b| {
        b.iter(|| {
            let opts = SearchOptions::join();
            let mut pending = Vec::new();
            let mut from = 0;
            // Skips past each false boundary, as the analyzer does.
            let mut found = 0;
            while from < junk.len() {
                match find_boundary(&junk[from..], &WalkState::default(), &opts, &mut pending) {
                    Search::Found(b) => {
                        found += 1;
                        from += b.pos + 1;
                        pending.clear();
                    }
                    _ => break,
                }
            }
            found
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
