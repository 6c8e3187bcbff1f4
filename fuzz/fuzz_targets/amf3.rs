//! AMF3 on arbitrary bytes: never panics, bounded work.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmptool::proto::amf3;

fuzz_target!(|data: &[u8]| {
    if let Ok((v, used)) = amf3::decode(data) {
        assert!(used <= data.len());
        let mut out = bytes::BytesMut::new();
        amf3::encode(&v, &mut out);
    }
});
