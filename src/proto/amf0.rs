//! AMF0 (Action Message Format version 0), as specified in Adobe's
//! "Action Message Format -- AMF 0" (2007) and used by RTMP command (20),
//! data (18) and shared-object (19) messages (RTMP 1.0 §7.1).
//!
//! TODO(amf helper): encoder, decoder, tests. The types below are the
//! contract other modules build on; extend them, do not rename them.

use crate::proto::amf3::Amf3Value;

/// One AMF0 value.
///
/// Objects and ECMA arrays keep their properties in wire order (a `Vec`, not
/// a map) so that re-encoding is byte-exact and duplicate keys survive.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    /// 0x00: IEEE-754 double.
    Number(f64),
    /// 0x01.
    Boolean(bool),
    /// 0x02: string with a 16-bit length (0x0C long string is [`Amf0Value::LongString`]).
    String(String),
    /// 0x03: anonymous object, properties in wire order.
    Object(Vec<(String, Amf0Value)>),
    /// 0x04: reserved by the spec, "not supported"; kept so it can be reported.
    MovieClip,
    /// 0x05.
    Null,
    /// 0x06.
    Undefined,
    /// 0x07: reference to the n-th complex value (object, typed object, arrays) of
    /// this message, 0-based, as on the wire. Not resolved.
    Reference(u16),
    /// 0x08: associative array; `count` is the wire's associative-count hint, which
    /// peers often get wrong, so it is kept and not trusted.
    EcmaArray {
        /// Associative count as sent.
        count: u32,
        /// Properties in wire order.
        properties: Vec<(String, Amf0Value)>,
    },
    /// 0x0A.
    StrictArray(Vec<Amf0Value>),
    /// 0x0B: milliseconds since the epoch plus the (reserved, normally 0) time zone.
    Date {
        /// Milliseconds since 1970-01-01T00:00:00Z.
        millis: f64,
        /// Time zone offset in minutes as sent (the spec says it should be 0).
        timezone: i16,
    },
    /// 0x0C: string with a 32-bit length.
    LongString(String),
    /// 0x0D.
    Unsupported,
    /// 0x0F: XML document (32-bit length).
    XmlDocument(String),
    /// 0x10: object with a registered class name.
    TypedObject {
        /// Class name.
        class_name: String,
        /// Properties in wire order.
        properties: Vec<(String, Amf0Value)>,
    },
    /// 0x11: AVM+ type marker: the next value is AMF3.
    AvmPlus(Amf3Value),
}
