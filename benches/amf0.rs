//! AMF0 decode throughput on real message bodies cut from the captures
//! (`testdata/amf/README.md`): ffmpeg's `connect`, nginx-rtmp's `_result`
//! and ffmpeg's `@setDataFrame onMetaData` data message.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtmptool::proto::amf0;
use std::hint::black_box;

const VECTORS: &[(&str, &[u8])] = &[
    (
        "connect",
        include_bytes!("../testdata/amf/ffmpeg_connect.bin"),
    ),
    (
        "_result",
        include_bytes!("../testdata/amf/nginx_connect_result.bin"),
    ),
    (
        "onMetaData",
        include_bytes!("../testdata/amf/ffmpeg_setdataframe_onmetadata.bin"),
    ),
    // Type 15 body: skip its format byte; AMF0 with an AVM+ (AMF3) object.
    (
        "amf3_data",
        include_bytes!("../testdata/amf/pyclient_amf3_data.bin"),
    ),
];

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("amf0_decode");
    for &(name, bytes) in VECTORS {
        let body = if name == "amf3_data" {
            &bytes[1..]
        } else {
            bytes
        };
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| b.iter(|| amf0::decode_all(black_box(body))));
    }
    g.finish();
    let mut g = c.benchmark_group("amf0_encode");
    for &(name, bytes) in VECTORS {
        let body = if name == "amf3_data" {
            &bytes[1..]
        } else {
            bytes
        };
        let Ok(values) = amf0::decode_all(body) else {
            continue;
        };
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| b.iter(|| amf0::encode_all(black_box(&values))));
    }
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
