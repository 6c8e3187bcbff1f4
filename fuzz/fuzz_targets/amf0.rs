//! AMF0 on arbitrary bytes: never panics; what decodes re-encodes to bytes
//! that decode without error, to the same values unless AMF3 references are
//! involved (a reference resolved to a copy is re-encoded inline, so its
//! inner references may point elsewhere: same data, other sharing) or the
//! element budget cut the decode short (the marker encodes to nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmptool::proto::amf0;

fuzz_target!(|data: &[u8]| {
    let (values, _err) = amf0::decode_lax(data);
    let bytes = amf0::encode_all(&values);
    let (again, err) = amf0::decode_lax(&bytes);
    assert!(err.is_none(), "re-encoded AMF0 does not decode: {err:?}");
    // A decode the element budget cut short encodes what it kept: the
    // marker itself is not a value, so the round trip differs by it.
    let cut = amf0::truncation(&values);
    if let Some(t) = cut {
        assert!(t.limit <= rtmptool::proto::MAX_AMF_ELEMENTS, "{t:?}");
    }
    let a = format!("{values:?}");
    if cut.is_none() && !a.contains("AvmPlus(") {
        assert_eq!(a, format!("{again:?}"));
    }
});
