//! AMF3 (Adobe "Action Message Format -- AMF 3", 2013), as carried inside AMF0
//! after the AVM+ marker 0x11 and in RTMP messages 17/15/16.
//!
//! TODO(amf helper): encoder, decoder, tests. The types below are the
//! contract other modules build on; extend them, do not rename them.

/// One AMF3 value. References on the wire are resolved by the decoder into the
/// values they point at (see the decoder for the budget that bounds this).
#[derive(Debug, Clone, PartialEq)]
pub enum Amf3Value {
    /// 0x00.
    Undefined,
    /// 0x01.
    Null,
    /// 0x02 / 0x03.
    Boolean(bool),
    /// 0x04: 29-bit signed integer.
    Integer(i32),
    /// 0x05.
    Double(f64),
    /// 0x06.
    String(String),
    /// 0x07: legacy XMLDocument.
    XmlDocument(String),
    /// 0x08: milliseconds since the epoch.
    Date(f64),
    /// 0x09: associative part (wire order) then dense part.
    Array {
        /// Named members, in wire order.
        assoc: Vec<(String, Amf3Value)>,
        /// Dense (indexed) members.
        dense: Vec<Amf3Value>,
    },
    /// 0x0A.
    Object(Box<Amf3Object>),
    /// 0x0B: E4X XML.
    Xml(String),
    /// 0x0C.
    ByteArray(Vec<u8>),
    /// 0x0D.
    VectorInt {
        /// Fixed-length vector.
        fixed: bool,
        /// Items.
        items: Vec<i32>,
    },
    /// 0x0E.
    VectorUint {
        /// Fixed-length vector.
        fixed: bool,
        /// Items.
        items: Vec<u32>,
    },
    /// 0x0F.
    VectorDouble {
        /// Fixed-length vector.
        fixed: bool,
        /// Items.
        items: Vec<f64>,
    },
    /// 0x10.
    VectorObject {
        /// Fixed-length vector.
        fixed: bool,
        /// Object type name ("*" for any).
        type_name: String,
        /// Items.
        items: Vec<Amf3Value>,
    },
    /// 0x11.
    Dictionary {
        /// Weak keys flag.
        weak_keys: bool,
        /// Key/value pairs in wire order.
        entries: Vec<(Amf3Value, Amf3Value)>,
    },
}

/// An AMF3 object: its traits, sealed member values, and dynamic members.
#[derive(Debug, Clone, PartialEq)]
pub struct Amf3Object {
    /// Class name ("" for anonymous objects).
    pub class_name: String,
    /// Whether the object is dynamic (carries name/value pairs after the sealed members).
    pub dynamic: bool,
    /// Whether the object is externalizable (its body is opaque to AMF).
    pub externalizable: bool,
    /// Sealed member names and values, in trait order.
    pub sealed: Vec<(String, Amf3Value)>,
    /// Dynamic members, in wire order.
    pub dynamic_members: Vec<(String, Amf3Value)>,
    /// For externalizable objects: the opaque body, which AMF cannot delimit
    /// except for the few classes the decoder knows (flex.messaging.io.ArrayCollection ...).
    pub external: Option<Box<Amf3Value>>,
}
