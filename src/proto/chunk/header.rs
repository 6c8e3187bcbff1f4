//! Chunk basic header (RTMP 1.0 §5.3.1.1): fmt in the top two bits, then the
//! chunk stream id in one, two or three bytes.

/// Lowest chunk stream id a peer may use (0 and 1 select the longer forms;
/// 2 is reserved for protocol control messages).
pub const MIN_CSID: u32 = 2;
/// Highest chunk stream id: the three-byte form's 65535 + 64.
pub const MAX_CSID: u32 = 65599;

/// A decoded basic header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasicHeader {
    /// Message header format, 0-3.
    pub fmt: u8,
    /// Chunk stream id, 2..=65599 (or 0/1 never: those select the long forms).
    pub csid: u32,
    /// Bytes the basic header took on the wire: 1, 2 or 3.
    pub len: usize,
}

/// Decodes a basic header from the start of `buf`; `None` when more bytes are needed.
///
/// "Chunk stream IDs 64-319 can be encoded in the 2-byte form ... IDs 64-65599
/// can be encoded in the 3-byte version" (§5.3.1.1): csid 0 means one more byte
/// (+64), csid 1 two more bytes, little-endian (+64).
#[inline]
pub fn decode_basic_header(buf: &[u8]) -> Option<BasicHeader> {
    let b0 = *buf.first()?;
    let fmt = b0 >> 6;
    match b0 & 0x3F {
        0 => Some(BasicHeader {
            fmt,
            csid: u32::from(*buf.get(1)?) + 64,
            len: 2,
        }),
        1 => {
            let lo = u32::from(*buf.get(1)?);
            let hi = u32::from(*buf.get(2)?);
            Some(BasicHeader {
                fmt,
                csid: hi * 256 + lo + 64,
                len: 3,
            })
        }
        id => Some(BasicHeader {
            fmt,
            csid: u32::from(id),
            len: 1,
        }),
    }
}

/// Appends the shortest basic header for `fmt` and `csid` to `out`.
///
/// `csid` is clamped into 2..=65599 by the callers' contract; values outside are
/// a programming error and encode as the nearest valid id.
pub fn encode_basic_header(fmt: u8, csid: u32, out: &mut impl bytes::BufMut) {
    let csid = csid.clamp(MIN_CSID, MAX_CSID);
    let fmt = (fmt & 3) << 6;
    if csid < 64 {
        out.put_u8(fmt | csid as u8);
    } else if csid < 320 {
        out.put_u8(fmt);
        out.put_u8((csid - 64) as u8);
    } else {
        let v = csid - 64;
        out.put_u8(fmt | 1);
        out.put_u8((v & 0xFF) as u8);
        out.put_u8((v >> 8) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_forms() {
        // One byte: csid 2..63.
        assert_eq!(
            decode_basic_header(&[0x03]),
            Some(BasicHeader {
                fmt: 0,
                csid: 3,
                len: 1
            })
        );
        // Two bytes: csid 64 + second byte.
        assert_eq!(
            decode_basic_header(&[0x40, 0x00]),
            Some(BasicHeader {
                fmt: 1,
                csid: 64,
                len: 2
            })
        );
        // Three bytes: third byte * 256 + second byte + 64.
        assert_eq!(
            decode_basic_header(&[0xC1, 0xFF, 0xFF]),
            Some(BasicHeader {
                fmt: 3,
                csid: 65599,
                len: 3
            })
        );
        assert_eq!(decode_basic_header(&[0x01, 0x00]), None);
        assert_eq!(decode_basic_header(&[]), None);
    }

    proptest! {
        #[test]
        fn round_trip(fmt in 0u8..4, csid in MIN_CSID..=MAX_CSID) {
            let mut v = Vec::new();
            encode_basic_header(fmt, csid, &mut v);
            let expected_len = if csid < 64 { 1 } else if csid < 320 { 2 } else { 3 };
            prop_assert_eq!(v.len(), expected_len);
            prop_assert_eq!(decode_basic_header(&v), Some(BasicHeader { fmt, csid, len: expected_len }));
            for cut in 0..v.len() {
                prop_assert_eq!(decode_basic_header(&v[..cut]), None);
            }
        }
    }
}
