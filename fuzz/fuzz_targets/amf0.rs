//! AMF0 on arbitrary bytes: never panics; what decodes re-encodes and decodes
//! to the same values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmptool::proto::amf0;

fuzz_target!(|data: &[u8]| {
    let (values, _err) = amf0::decode_lax(data);
    let bytes = amf0::encode_all(&values);
    let (again, err) = amf0::decode_lax(&bytes);
    assert!(err.is_none(), "re-encoded AMF0 does not decode: {err:?}");
    assert_eq!(format!("{values:?}"), format!("{again:?}"));
});
