//! AMF0 (Action Message Format version 0), as specified in Adobe's
//! "Action Message Format -- AMF 0" (2007), §2 (data types) and §3.1 (the AVM+
//! type marker that switches one value to AMF3), as used by RTMP command (20),
//! data (18) and shared-object (19) messages (RTMP 1.0 §7.1).
//!
//! The decoder works on one complete message payload (`&[u8]`); running out of
//! bytes is therefore an error ([`AmfError::Truncated`]), not "need more".
//! Every count and length read from the wire is checked against the bytes left
//! before anything is allocated, nesting is limited to
//! [`MAX_AMF_DEPTH`], and nothing panics.
//!
//! A string value (0x02, 0x0C) that is not valid UTF-8 does not fail the
//! message: it is kept, bytes as sent, as [`Amf0Value::InvalidString`] (so it
//! re-encodes to the same bytes, and output can say so). Property names and
//! class names are decoded strictly: invalid UTF-8 there is
//! [`AmfError::InvalidUtf8`] with the offset of the string's first byte;
//! [`decode_lax`] keeps the values decoded before such an error for forensic
//! dumps.
//!
//! Element budget: one message decodes at most [`MAX_AMF_ELEMENTS`]
//! elements (each value one, each property name one; AMF3 values after an
//! AVM+ marker draw on the same budget, in the AMF3 decoder's units). Nulls
//! and undefineds count like any value, so a strict array of 16 M nulls
//! costs its count in budget, never 16 M boxed values in memory. Past the
//! bound, decoding stops and says so: an [`Amf0Value::Truncated`] marker
//! takes the place of the next value (in a strict array, as its last item;
//! in an object, as the value of a property with an empty name), every
//! enclosing container ends there, and no further value of the message is
//! decoded. [`truncation`] finds the marker. Nothing is allocated from a
//! declared count beyond a small head start.
//!
//! AMF3 reference tables across AVM+ switches: one [`Decoder`] (one message
//! body) keeps a single AMF3 context for all its 0x11 values, and a new
//! [`Decoder`] starts with empty tables. This is what Adobe's own BlazeDS
//! (`Amf0Input` creates its `Amf3Input` once and resets it with the AMF0 input
//! per message body) and PyAMF (`amf3_context` lives in the AMF0 context) do;
//! FFmpeg does not decode AMF3 at all. [`encode_all`] and [`Encoder`] encode the
//! same way, so values round-trip.

use bytes::BufMut;
use serde_json::{Map, Value as Json};

use crate::proto::amf3::{self, Amf3Value};
use crate::proto::{MAX_AMF_DEPTH, MAX_AMF_ELEMENTS};

/// AMF0 type markers (AMF0 §2.1).
mod marker {
    pub const NUMBER: u8 = 0x00;
    pub const BOOLEAN: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const OBJECT: u8 = 0x03;
    pub const MOVIECLIP: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const REFERENCE: u8 = 0x07;
    pub const ECMA_ARRAY: u8 = 0x08;
    pub const OBJECT_END: u8 = 0x09;
    pub const STRICT_ARRAY: u8 = 0x0A;
    pub const DATE: u8 = 0x0B;
    pub const LONG_STRING: u8 = 0x0C;
    pub const UNSUPPORTED: u8 = 0x0D;
    pub const XML_DOCUMENT: u8 = 0x0F;
    pub const TYPED_OBJECT: u8 = 0x10;
    pub const AVMPLUS: u8 = 0x11;
}

/// Why AMF0 or AMF3 decoding stopped. Offsets are byte offsets within the
/// buffer given to the decoder (for AMF3 inside AMF0: the AMF0 buffer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmfError {
    /// The input ended inside a value.
    #[error("truncated at byte {offset}: {needed} more byte(s) needed")]
    Truncated {
        /// Where the missing bytes should have started.
        offset: usize,
        /// How many more bytes the field needs.
        needed: usize,
    },
    /// A type marker this format does not define (or reserves, like AMF0 0x0E recordset).
    #[error("unknown type marker 0x{marker:02x} at byte {offset}")]
    UnknownMarker {
        /// Offset of the marker byte.
        offset: usize,
        /// The marker.
        marker: u8,
    },
    /// An AMF0 object-end marker (0x09) where a value was expected.
    #[error("object-end marker 0x09 outside an object at byte {offset}")]
    UnexpectedObjectEnd {
        /// Offset of the marker byte.
        offset: usize,
    },
    /// Containers nested deeper than [`MAX_AMF_DEPTH`].
    #[error("values nested deeper than {max} at byte {offset}")]
    TooDeep {
        /// Offset of the container that is one level too deep.
        offset: usize,
        /// The limit.
        max: usize,
    },
    /// A string that is not valid UTF-8.
    #[error("string at byte {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Offset of the string's first byte.
        offset: usize,
    },
    /// An element count that cannot fit in the bytes left (each element needs
    /// at least `min_size` bytes), refused before allocating.
    #[error("{what} count {count} at byte {offset} cannot fit in the {remaining} byte(s) left")]
    CountTooLarge {
        /// Offset of the count field.
        offset: usize,
        /// What was counted.
        what: &'static str,
        /// The count as sent.
        count: u64,
        /// Bytes left after the count field.
        remaining: usize,
    },
    /// Resolving AMF3 references would produce more than the decoder's work
    /// budget (a "billion laughs" input).
    #[error("AMF3 reference expansion at byte {offset} exceeds the work budget of {limit} units")]
    BudgetExceeded {
        /// Offset where the budget ran out.
        offset: usize,
        /// The budget.
        limit: usize,
    },
    /// An AMF3 reference to a table entry that does not exist.
    #[error("AMF3 {table} reference {index} at byte {offset}, but the table has {len} entries")]
    BadReference {
        /// Offset of the reference.
        offset: usize,
        /// `"string"`, `"object"` or `"traits"`.
        table: &'static str,
        /// The index sent.
        index: u32,
        /// Entries in that table at that point.
        len: usize,
    },
    /// An AMF3 externalizable object of a class whose body format is unknown:
    /// AMF cannot tell where its body ends.
    #[error(
        "AMF3 externalizable object of class {class_name:?} at byte {offset}: body format unknown"
    )]
    Externalizable {
        /// Offset of the object marker.
        offset: usize,
        /// Its class name.
        class_name: String,
    },
}

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
    /// 0x02 or 0x0C string whose bytes are not valid UTF-8, kept as sent.
    InvalidString {
        /// Sent as a long string (0x0C).
        long: bool,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Not a wire value: decoding stopped here because the message used up
    /// its element budget (see the module doc). Encodes to nothing.
    Truncated(Truncation),
}

/// Where and why the decoding of a message's AMF stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    /// Offset of the first byte not decoded.
    pub offset: usize,
    /// The element budget that ran out.
    pub limit: usize,
    /// Bytes of the message from `offset` to its end, not decoded.
    pub bytes_left: usize,
}

impl std::fmt::Display for Truncation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AMF truncated at byte {}: the budget of {} elements per message ran out; {} byte(s) not decoded",
            self.offset, self.limit, self.bytes_left
        )
    }
}

/// The truncation marker of decoded values, if decoding stopped early: it is
/// always on the path of last values (the last value, its last item or
/// property, and so on).
pub fn truncation(values: &[Amf0Value]) -> Option<&Truncation> {
    let mut v = values.last()?;
    loop {
        v = match v {
            Amf0Value::Truncated(t) => return Some(t),
            Amf0Value::StrictArray(items) => items.last()?,
            Amf0Value::Object(p)
            | Amf0Value::EcmaArray { properties: p, .. }
            | Amf0Value::TypedObject { properties: p, .. } => &p.last()?.1,
            _ => return None,
        };
    }
}

/// An AMF3 value as the AMF0 value closest to it (see
/// [`Amf0Value::without_avmplus`]).
fn from_amf3(v: &Amf3Value) -> Amf0Value {
    let members = |m: &[(String, Amf3Value)]| {
        m.iter()
            .map(|(k, v)| (k.clone(), from_amf3(v)))
            .collect::<Vec<_>>()
    };
    let numbers = |it: &mut dyn Iterator<Item = f64>| {
        Amf0Value::StrictArray(it.map(Amf0Value::Number).collect())
    };
    match v {
        Amf3Value::Undefined => Amf0Value::Undefined,
        Amf3Value::Null | Amf3Value::ByteArray(_) | Amf3Value::CyclicReference(_) => {
            Amf0Value::Null
        }
        Amf3Value::Boolean(b) => Amf0Value::Boolean(*b),
        Amf3Value::Integer(i) => Amf0Value::Number(f64::from(*i)),
        Amf3Value::Double(d) => Amf0Value::Number(*d),
        Amf3Value::String(s) => Amf0Value::String(s.clone()),
        Amf3Value::XmlDocument(s) | Amf3Value::Xml(s) => Amf0Value::XmlDocument(s.clone()),
        Amf3Value::Date(ms) => Amf0Value::Date {
            millis: *ms,
            timezone: 0,
        },
        Amf3Value::Array { assoc, dense } if assoc.is_empty() => {
            Amf0Value::StrictArray(dense.iter().map(from_amf3).collect())
        }
        Amf3Value::Array { assoc, dense } => {
            let mut properties = members(assoc);
            properties.extend(
                dense
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), from_amf3(v))),
            );
            Amf0Value::EcmaArray {
                count: properties.len() as u32,
                properties,
            }
        }
        Amf3Value::Object(o) => {
            if o.externalizable {
                return o.external.as_deref().map_or(Amf0Value::Null, from_amf3);
            }
            let mut properties = members(&o.sealed);
            properties.extend(members(&o.dynamic_members));
            if o.class_name.is_empty() {
                Amf0Value::Object(properties)
            } else {
                Amf0Value::TypedObject {
                    class_name: o.class_name.clone(),
                    properties,
                }
            }
        }
        Amf3Value::VectorInt { items, .. } => numbers(&mut items.iter().map(|&i| f64::from(i))),
        Amf3Value::VectorUint { items, .. } => numbers(&mut items.iter().map(|&i| f64::from(i))),
        Amf3Value::VectorDouble { items, .. } => numbers(&mut items.iter().copied()),
        Amf3Value::VectorObject { items, .. } => {
            Amf0Value::StrictArray(items.iter().map(from_amf3).collect())
        }
        Amf3Value::Dictionary { entries, .. } => {
            let properties: Vec<(String, Amf0Value)> = entries
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Amf3Value::String(s) => s.clone(),
                        k => k.to_json().to_string(),
                    };
                    (key, from_amf3(v))
                })
                .collect();
            Amf0Value::EcmaArray {
                count: properties.len() as u32,
                properties,
            }
        }
    }
}

/// What of an AMF3 value has no AMF0 equivalent (see
/// [`Amf0Value::avmplus_loss`]).
fn amf3_loss(v: &Amf3Value) -> Option<String> {
    match v {
        Amf3Value::ByteArray(b) => Some(format!("a byte array ({} bytes)", b.len())),
        Amf3Value::CyclicReference(_) => Some("a reference to an enclosing value".into()),
        Amf3Value::Object(o) if o.externalizable && o.external.is_none() => Some(format!(
            "an externalizable object of class \"{}\"",
            o.class_name
        )),
        Amf3Value::Object(o) => o
            .external
            .iter()
            .map(|b| &**b)
            .chain(o.sealed.iter().chain(&o.dynamic_members).map(|(_, v)| v))
            .find_map(amf3_loss),
        Amf3Value::Array { assoc, dense } => assoc
            .iter()
            .map(|(_, v)| v)
            .chain(dense)
            .find_map(amf3_loss),
        Amf3Value::VectorObject { items, .. } => items.iter().find_map(amf3_loss),
        Amf3Value::Dictionary { entries, .. } => entries.iter().find_map(|(_, v)| amf3_loss(v)),
        _ => None,
    }
}

impl Amf0Value {
    /// What of this value [`Amf0Value::without_avmplus`] cannot carry (it
    /// becomes null): the first AMF3 byte array, reference to an enclosing
    /// value or externalizable object whose body is opaque, in words.
    pub fn avmplus_loss(&self) -> Option<String> {
        match self {
            Amf0Value::AvmPlus(v) => amf3_loss(v),
            Amf0Value::StrictArray(v) => v.iter().find_map(Amf0Value::avmplus_loss),
            v => v.properties()?.iter().find_map(|(_, v)| v.avmplus_loss()),
        }
    }

    /// The string inside [`Amf0Value::String`] or [`Amf0Value::LongString`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) | Amf0Value::LongString(s) => Some(s),
            _ => None,
        }
    }

    /// The text of any string value: [`Amf0Value::as_str`], or for an
    /// [`Amf0Value::InvalidString`] its valid parts with each invalid byte
    /// written as `\xNN`.
    pub fn text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Amf0Value::String(s) | Amf0Value::LongString(s) => Some(std::borrow::Cow::Borrowed(s)),
            Amf0Value::InvalidString { bytes, .. } => Some(crate::text::escape_invalid_utf8(bytes)),
            _ => None,
        }
    }

    /// The number inside [`Amf0Value::Number`].
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The properties of an object, ECMA array or typed object, in wire order.
    pub fn properties(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Amf0Value::Object(p)
            | Amf0Value::EcmaArray { properties: p, .. }
            | Amf0Value::TypedObject { properties: p, .. } => Some(p),
            _ => None,
        }
    }

    /// The value with every AVM+ switch (an AMF3 value inside AMF0)
    /// replaced by the AMF0 value closest to it, for places that take AMF0
    /// only: an FLV script tag (FLV 10.1 §E.4.4 knows no 0x11 marker, and
    /// FFmpeg's demuxer stops at it). AMF3 integers and doubles become
    /// numbers; an array with named members an ECMA array (the dense
    /// members under "0", "1", …), one without a strict array; an object
    /// an object (a typed object when it has a class name), sealed members
    /// first; vectors strict arrays; a dictionary an ECMA array keyed by
    /// each key's text or JSON; XML an XML document; a byte array, a cyclic
    /// reference or an opaque externalizable object null.
    pub fn without_avmplus(self) -> Amf0Value {
        let props = |p: Vec<(String, Amf0Value)>| {
            p.into_iter()
                .map(|(k, v)| (k, v.without_avmplus()))
                .collect::<Vec<_>>()
        };
        match self {
            Amf0Value::AvmPlus(v) => from_amf3(&v),
            Amf0Value::Object(p) => Amf0Value::Object(props(p)),
            Amf0Value::EcmaArray { count, properties } => Amf0Value::EcmaArray {
                count,
                properties: props(properties),
            },
            Amf0Value::TypedObject {
                class_name,
                properties,
            } => Amf0Value::TypedObject {
                class_name,
                properties: props(properties),
            },
            Amf0Value::StrictArray(v) => {
                Amf0Value::StrictArray(v.into_iter().map(Amf0Value::without_avmplus).collect())
            }
            v => v,
        }
    }

    /// The first property called `name` of an object, ECMA array or typed object.
    pub fn get(&self, name: &str) -> Option<&Amf0Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The value as natural JSON, for `dump --json`:
    ///
    /// - number → JSON number (non-finite → `null`); boolean; string and long
    ///   string → string; null and undefined → `null`;
    /// - object and ECMA array → JSON object in wire order (for duplicate keys
    ///   the last value wins, at the first key's position); typed object → the
    ///   same with a leading `"$class": "<class name>"` member;
    /// - strict array → array;
    /// - date → `{"$date": <ms since epoch>}` plus `"$tz": <minutes>` when the
    ///   time zone is not 0;
    /// - XML document → `{"$xml": "<text>"}`;
    /// - reference → `{"$ref": <index>}`;
    /// - movieclip / unsupported → `{"$marker": "movieclip" | "unsupported"}`;
    /// - AVM+ → the AMF3 value's own JSON ([`Amf3Value::to_json`]);
    /// - truncation marker → `{"$truncated": {"offset": …, "element_limit": …, "bytes_left": …}}`.
    pub fn to_json(&self) -> Json {
        match self {
            Amf0Value::Number(n) => number_json(*n),
            Amf0Value::Boolean(b) => Json::Bool(*b),
            Amf0Value::String(s) | Amf0Value::LongString(s) => Json::String(s.clone()),
            Amf0Value::InvalidString { bytes, .. } => invalid_string_json(bytes),
            Amf0Value::Object(p) | Amf0Value::EcmaArray { properties: p, .. } => {
                Json::Object(props_json(None, p))
            }
            Amf0Value::TypedObject {
                class_name,
                properties,
            } => Json::Object(props_json(Some(class_name), properties)),
            Amf0Value::MovieClip => marker_json("movieclip"),
            Amf0Value::Unsupported => marker_json("unsupported"),
            Amf0Value::Null | Amf0Value::Undefined => Json::Null,
            Amf0Value::Reference(i) => {
                let mut m = Map::new();
                m.insert("$ref".into(), Json::from(*i));
                Json::Object(m)
            }
            Amf0Value::StrictArray(items) => {
                Json::Array(items.iter().map(|v| v.to_json()).collect())
            }
            Amf0Value::Date { millis, timezone } => {
                let mut m = Map::new();
                m.insert("$date".into(), number_json(*millis));
                if *timezone != 0 {
                    m.insert("$tz".into(), Json::from(*timezone));
                }
                Json::Object(m)
            }
            Amf0Value::XmlDocument(s) => {
                let mut m = Map::new();
                m.insert("$xml".into(), Json::String(s.clone()));
                Json::Object(m)
            }
            Amf0Value::AvmPlus(v) => v.to_json(),
            Amf0Value::Truncated(t) => {
                let mut m = Map::new();
                m.insert(
                    "$truncated".into(),
                    serde_json::json!({
                        "offset": t.offset,
                        "element_limit": t.limit,
                        "bytes_left": t.bytes_left,
                    }),
                );
                Json::Object(m)
            }
        }
    }
}

/// A finite number as a JSON number, anything else as `null`.
pub(crate) fn number_json(n: f64) -> Json {
    serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
}

/// A string that is not valid UTF-8, for JSON: the decoded text (invalid
/// bytes as U+FFFD) and the bytes in hex as the marker:
/// `{"$invalid_utf8": "6162ff", "$text": "ab\u{fffd}"}`.
pub fn invalid_string_json(bytes: &[u8]) -> Json {
    let mut m = Map::new();
    let mut hex = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    m.insert("$invalid_utf8".into(), Json::String(hex));
    m.insert(
        "$text".into(),
        Json::String(String::from_utf8_lossy(bytes).into_owned()),
    );
    Json::Object(m)
}

fn marker_json(name: &str) -> Json {
    let mut m = Map::new();
    m.insert("$marker".into(), Json::String(name.into()));
    Json::Object(m)
}

fn props_json(class_name: Option<&str>, props: &[(String, Amf0Value)]) -> Map<String, Json> {
    let mut m = Map::new();
    if let Some(c) = class_name {
        m.insert("$class".into(), Json::String(c.into()));
    }
    for (k, v) in props {
        m.insert(k.clone(), v.to_json());
    }
    m
}

/// Decodes AMF0 values one after another from one message payload.
#[derive(Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    /// AMF3 context shared by every AVM+ value of this message (see the module doc).
    amf3: Option<amf3::Decoder<'a>>,
    /// Elements decoded so far (AMF3 units included).
    used: usize,
    /// The element budget.
    limit: usize,
    /// Set once the budget ran out: nothing more is decoded.
    stopped: Option<Truncation>,
}

impl<'a> Decoder<'a> {
    /// A decoder at the start of `buf`, with empty AMF3 reference tables and
    /// the budget of [`MAX_AMF_ELEMENTS`].
    pub fn new(buf: &'a [u8]) -> Self {
        Self::with_limit(buf, MAX_AMF_ELEMENTS)
    }

    /// A decoder with an element budget of `limit` (see the module doc).
    pub fn with_limit(buf: &'a [u8], limit: usize) -> Self {
        Decoder {
            buf,
            pos: 0,
            amf3: None,
            used: 0,
            limit,
            stopped: None,
        }
    }

    /// Where decoding stopped because the budget ran out, if it did.
    pub fn truncated(&self) -> Option<Truncation> {
        self.stopped
    }

    /// Spends one element; false (and decoding stops, with the marker for
    /// `at`) when the budget is gone.
    fn charge(&mut self, at: usize) -> Option<Amf0Value> {
        self.used = self.used.saturating_add(1);
        if self.used > self.limit {
            Some(self.stop(at))
        } else {
            None
        }
    }

    fn stop(&mut self, at: usize) -> Amf0Value {
        let t = *self.stopped.get_or_insert(Truncation {
            offset: at,
            limit: self.limit,
            bytes_left: self.buf.len().saturating_sub(at),
        });
        self.pos = self.buf.len();
        Amf0Value::Truncated(t)
    }

    /// Offset of the next byte to decode.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Decodes the next value. On error the position is unspecified. Once
    /// the budget has run out, the value is (or ends in) an
    /// [`Amf0Value::Truncated`] marker and the decoder is at the end.
    pub fn decode_value(&mut self) -> Result<Amf0Value, AmfError> {
        self.value(0)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], AmfError> {
        let rest = self.buf.len() - self.pos;
        if rest < n {
            return Err(AmfError::Truncated {
                offset: self.pos,
                needed: n - rest,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, AmfError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, AmfError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, AmfError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, AmfError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn utf8(&mut self, len: usize) -> Result<String, AmfError> {
        let start = self.pos;
        // `take` checks the length against the bytes present before any allocation.
        let b = self.take(len)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| AmfError::InvalidUtf8 { offset: start })
    }

    fn string16(&mut self) -> Result<String, AmfError> {
        let len = self.u16()? as usize;
        self.utf8(len)
    }

    fn string32(&mut self) -> Result<String, AmfError> {
        let len = self.u32()? as usize;
        self.utf8(len)
    }

    /// A string value: kept as bytes when they are not UTF-8.
    fn string_value(&mut self, long: bool) -> Result<Amf0Value, AmfError> {
        let len = if long {
            self.u32()? as usize
        } else {
            self.u16()? as usize
        };
        let b = self.take(len)?;
        Ok(match std::str::from_utf8(b) {
            Ok(t) if long => Amf0Value::LongString(t.to_owned()),
            Ok(t) => Amf0Value::String(t.to_owned()),
            Err(_) => Amf0Value::InvalidString {
                long,
                bytes: b.to_vec(),
            },
        })
    }

    fn enter(&self, depth: usize, at: usize) -> Result<usize, AmfError> {
        if depth >= MAX_AMF_DEPTH {
            return Err(AmfError::TooDeep {
                offset: at,
                max: MAX_AMF_DEPTH,
            });
        }
        Ok(depth + 1)
    }

    /// Name/value pairs up to the object-end marker (UTF-8-empty 0x09), AMF0 §2.5.
    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Amf0Value)>, AmfError> {
        let mut props = Vec::new();
        loop {
            let at = self.pos;
            let key = self.string16()?;
            if key.is_empty() && self.buf.get(self.pos) == Some(&marker::OBJECT_END) {
                self.pos += 1;
                return Ok(props);
            }
            if let Some(marker) = self.charge(at) {
                props.push((String::new(), marker));
                return Ok(props);
            }
            let v = self.value(depth)?;
            props.push((key, v));
            if self.stopped.is_some() {
                return Ok(props);
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value, AmfError> {
        let at = self.pos;
        if let Some(marker) = self.charge(at) {
            return Ok(marker);
        }
        let m = self.u8()?;
        Ok(match m {
            marker::NUMBER => Amf0Value::Number(self.f64()?),
            // AMF0 §2.3: "a zero byte value denotes false while a non-zero byte value denotes true".
            marker::BOOLEAN => Amf0Value::Boolean(self.u8()? != 0),
            marker::STRING => self.string_value(false)?,
            marker::OBJECT => {
                let d = self.enter(depth, at)?;
                Amf0Value::Object(self.properties(d)?)
            }
            marker::MOVIECLIP => Amf0Value::MovieClip,
            marker::NULL => Amf0Value::Null,
            marker::UNDEFINED => Amf0Value::Undefined,
            marker::REFERENCE => Amf0Value::Reference(self.u16()?),
            marker::ECMA_ARRAY => {
                let d = self.enter(depth, at)?;
                // The count is a hint only (AMF0 §2.10); termination is the end marker.
                let count = self.u32()?;
                Amf0Value::EcmaArray {
                    count,
                    properties: self.properties(d)?,
                }
            }
            marker::OBJECT_END => return Err(AmfError::UnexpectedObjectEnd { offset: at }),
            marker::STRICT_ARRAY => {
                let d = self.enter(depth, at)?;
                let count_at = self.pos;
                let count = self.u32()?;
                // Every value takes at least its one marker byte.
                let remaining = self.buf.len() - self.pos;
                if count as usize > remaining {
                    return Err(AmfError::CountTooLarge {
                        offset: count_at,
                        what: "strict array",
                        count: count.into(),
                        remaining,
                    });
                }
                let mut items = Vec::with_capacity(prealloc(count));
                for _ in 0..count {
                    items.push(self.value(d)?);
                    if self.stopped.is_some() {
                        break;
                    }
                }
                Amf0Value::StrictArray(items)
            }
            marker::DATE => {
                let millis = self.f64()?;
                let timezone = self.u16()? as i16;
                Amf0Value::Date { millis, timezone }
            }
            marker::LONG_STRING => self.string_value(true)?,
            marker::UNSUPPORTED => Amf0Value::Unsupported,
            marker::XML_DOCUMENT => Amf0Value::XmlDocument(self.string32()?),
            marker::TYPED_OBJECT => {
                let d = self.enter(depth, at)?;
                let class_name = self.string16()?;
                Amf0Value::TypedObject {
                    class_name,
                    properties: self.properties(d)?,
                }
            }
            marker::AVMPLUS => {
                let buf = self.buf;
                let dec = self.amf3.get_or_insert_with(|| amf3::Decoder::new(buf));
                dec.set_position(self.pos);
                // One budget for the message: AMF3 spends from what is left,
                // and its references expand no further than AMF3's own
                // per-byte bound allows (a 755-byte message of references
                // once cost 262 k units, a millisecond each).
                let limit = self.limit.min(amf3::default_budget(buf.len()));
                dec.set_budget(self.used, limit);
                let r = dec.decode_at_depth(depth);
                self.used = dec.spent();
                match r {
                    Ok(v) => {
                        self.pos = dec.position();
                        Amf0Value::AvmPlus(v)
                    }
                    Err(AmfError::BudgetExceeded { limit, .. }) => {
                        self.limit = limit;
                        self.stop(at)
                    }
                    Err(e) => return Err(e),
                }
            }
            other => {
                return Err(AmfError::UnknownMarker {
                    offset: at,
                    marker: other,
                });
            }
        })
    }
}

/// Capacity to reserve for `count` elements already checked against the
/// bytes left: a hostile count still only gets a bounded head start.
pub(crate) fn prealloc(count: u32) -> usize {
    (count as usize).min(1024)
}

/// Decodes every value in `buf` (one message payload) until its end.
pub fn decode_all(buf: &[u8]) -> Result<Vec<Amf0Value>, AmfError> {
    let mut d = Decoder::new(buf);
    let mut out = Vec::new();
    while !d.is_empty() {
        out.push(d.decode_value()?);
    }
    Ok(out)
}

/// Decodes values until the end or the first error, and returns both what
/// decoded and that error (for forensic dumps that show where decoding stopped).
pub fn decode_lax(buf: &[u8]) -> (Vec<Amf0Value>, Option<AmfError>) {
    let mut d = Decoder::new(buf);
    let mut out = Vec::new();
    while !d.is_empty() {
        match d.decode_value() {
            Ok(v) => out.push(v),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// Encodes AMF0 values of one message; AVM+ values share one AMF3 context
/// (string and traits references), matching [`Decoder`].
#[derive(Debug, Default)]
pub struct Encoder {
    amf3: amf3::Encoder,
}

impl Encoder {
    /// An encoder with empty AMF3 tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `value` to `out`.
    ///
    /// Values the wire cannot express are written as closely as possible:
    /// a [`Amf0Value::String`] longer than 65535 bytes is written as a long
    /// string (0x0C); property names and class names longer than 65535 bytes,
    /// and long strings / XML longer than 4 GiB, are cut at the last character
    /// boundary that fits.
    pub fn encode(&mut self, value: &Amf0Value, out: &mut impl BufMut) {
        match value {
            Amf0Value::Number(n) => {
                out.put_u8(marker::NUMBER);
                out.put_f64(*n);
            }
            Amf0Value::Boolean(b) => {
                out.put_u8(marker::BOOLEAN);
                out.put_u8(u8::from(*b));
            }
            Amf0Value::String(s) if s.len() <= 0xFFFF => {
                out.put_u8(marker::STRING);
                put_string16(s, out);
            }
            Amf0Value::String(s) | Amf0Value::LongString(s) => {
                out.put_u8(marker::LONG_STRING);
                put_string32(s, out);
            }
            Amf0Value::InvalidString { long, bytes } => {
                if !*long && bytes.len() <= 0xFFFF {
                    out.put_u8(marker::STRING);
                    out.put_u16(bytes.len() as u16);
                } else {
                    out.put_u8(marker::LONG_STRING);
                    out.put_u32(bytes.len() as u32);
                }
                out.put_slice(bytes);
            }
            Amf0Value::Object(props) => {
                out.put_u8(marker::OBJECT);
                self.put_properties(props, out);
            }
            Amf0Value::MovieClip => out.put_u8(marker::MOVIECLIP),
            Amf0Value::Null => out.put_u8(marker::NULL),
            Amf0Value::Undefined => out.put_u8(marker::UNDEFINED),
            Amf0Value::Reference(i) => {
                out.put_u8(marker::REFERENCE);
                out.put_u16(*i);
            }
            Amf0Value::EcmaArray { count, properties } => {
                out.put_u8(marker::ECMA_ARRAY);
                // The count as given, so that decoded input re-encodes byte for byte.
                out.put_u32(*count);
                self.put_properties(properties, out);
            }
            Amf0Value::StrictArray(items) => {
                out.put_u8(marker::STRICT_ARRAY);
                let real = items
                    .iter()
                    .filter(|v| !matches!(v, Amf0Value::Truncated(_)));
                let n = real.clone().count();
                out.put_u32(u32::try_from(n).unwrap_or(u32::MAX));
                for v in real.take(u32::MAX as usize) {
                    self.encode(v, out);
                }
            }
            // Not a wire value: what was not decoded cannot be written back.
            Amf0Value::Truncated(_) => {}
            Amf0Value::Date { millis, timezone } => {
                out.put_u8(marker::DATE);
                out.put_f64(*millis);
                out.put_i16(*timezone);
            }
            Amf0Value::Unsupported => out.put_u8(marker::UNSUPPORTED),
            Amf0Value::XmlDocument(s) => {
                out.put_u8(marker::XML_DOCUMENT);
                put_string32(s, out);
            }
            Amf0Value::TypedObject {
                class_name,
                properties,
            } => {
                out.put_u8(marker::TYPED_OBJECT);
                put_string16(class_name, out);
                self.put_properties(properties, out);
            }
            Amf0Value::AvmPlus(v) => {
                out.put_u8(marker::AVMPLUS);
                self.amf3.encode(v, out);
            }
        }
    }

    fn put_properties(&mut self, props: &[(String, Amf0Value)], out: &mut impl BufMut) {
        for (k, v) in props {
            if matches!(v, Amf0Value::Truncated(_)) {
                continue;
            }
            put_string16(k, out);
            self.encode(v, out);
        }
        out.put_slice(&[0, 0, marker::OBJECT_END]);
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub(crate) fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn put_string16(s: &str, out: &mut impl BufMut) {
    let s = truncate_str(s, 0xFFFF);
    out.put_u16(s.len() as u16); // ok: truncated to 0xFFFF above
    out.put_slice(s.as_bytes());
}

fn put_string32(s: &str, out: &mut impl BufMut) {
    let s = truncate_str(s, u32::MAX as usize);
    out.put_u32(s.len() as u32); // ok: truncated to u32::MAX above
    out.put_slice(s.as_bytes());
}

/// Appends one AMF0 value to `out` (a fresh AMF3 context for an AVM+ value;
/// use [`Encoder`] or [`encode_all`] for several values of one message).
pub fn encode(value: &Amf0Value, out: &mut impl BufMut) {
    Encoder::new().encode(value, out);
}

/// Encodes the values of one message, one after another.
pub fn encode_all(values: &[Amf0Value]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = Encoder::new();
    for v in values {
        enc.encode(v, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amf3_values_become_their_amf0_equivalents() {
        use crate::proto::amf3::Amf3Object;
        let obj = |class: &str| {
            Amf3Value::Object(Box::new(Amf3Object {
                class_name: class.into(),
                dynamic: true,
                externalizable: false,
                sealed: vec![("a".into(), Amf3Value::Integer(-3))],
                dynamic_members: vec![("b".into(), Amf3Value::Double(0.5))],
                external: None,
            }))
        };
        let props = vec![
            ("a".to_string(), Amf0Value::Number(-3.0)),
            ("b".to_string(), Amf0Value::Number(0.5)),
        ];
        let v = Amf0Value::StrictArray(vec![
            Amf0Value::AvmPlus(obj("")),
            Amf0Value::Object(vec![("t".into(), Amf0Value::AvmPlus(obj("C")))]),
            Amf0Value::AvmPlus(Amf3Value::Array {
                assoc: vec![("k".into(), Amf3Value::Boolean(true))],
                dense: vec![Amf3Value::String("x".into())],
            }),
            Amf0Value::AvmPlus(Amf3Value::VectorInt {
                fixed: false,
                items: vec![1, -1],
            }),
            Amf0Value::AvmPlus(Amf3Value::ByteArray(vec![1, 2])),
        ]);
        assert_eq!(
            v.without_avmplus(),
            Amf0Value::StrictArray(vec![
                Amf0Value::Object(props.clone()),
                Amf0Value::Object(vec![(
                    "t".into(),
                    Amf0Value::TypedObject {
                        class_name: "C".into(),
                        properties: props,
                    }
                )]),
                Amf0Value::EcmaArray {
                    count: 2,
                    properties: vec![
                        ("k".into(), Amf0Value::Boolean(true)),
                        ("0".into(), Amf0Value::String("x".into())),
                    ],
                },
                Amf0Value::StrictArray(vec![Amf0Value::Number(1.0), Amf0Value::Number(-1.0)]),
                Amf0Value::Null,
            ])
        );
    }
    #[test]
    fn what_amf0_cannot_carry_is_named() {
        use crate::proto::amf3::Amf3Object;
        let plain = Amf0Value::Object(vec![(
            "a".into(),
            Amf0Value::AvmPlus(Amf3Value::VectorInt {
                fixed: false,
                items: vec![1],
            }),
        )]);
        assert_eq!(plain.avmplus_loss(), None);
        let deep = Amf0Value::StrictArray(vec![
            plain,
            Amf0Value::AvmPlus(Amf3Value::Object(Box::new(Amf3Object {
                class_name: String::new(),
                dynamic: true,
                externalizable: false,
                sealed: vec![],
                dynamic_members: vec![("thumb".into(), Amf3Value::ByteArray(vec![0; 5]))],
                external: None,
            }))),
        ]);
        assert_eq!(
            deep.avmplus_loss().as_deref(),
            Some("a byte array (5 bytes)")
        );
    }
    use crate::proto::amf3::tests::arb_amf3;
    use proptest::prelude::*;
    use serde_json::json;

    /// The fixtures these tests use, compiled in (the core reads no files).
    const FIXTURES: &[(&str, &[u8])] = &[
        (
            "testdata/amf/ffmpeg_connect.bin",
            include_bytes!("../../testdata/amf/ffmpeg_connect.bin"),
        ),
        (
            "testdata/amf/ffmpeg_setdataframe_onmetadata.bin",
            include_bytes!("../../testdata/amf/ffmpeg_setdataframe_onmetadata.bin"),
        ),
        (
            "testdata/amf/nginx_connect_result.bin",
            include_bytes!("../../testdata/amf/nginx_connect_result.bin"),
        ),
        (
            "testdata/amf/pyclient_amf3_connect.bin",
            include_bytes!("../../testdata/amf/pyclient_amf3_connect.bin"),
        ),
        (
            "testdata/amf/pyclient_amf3_data.bin",
            include_bytes!("../../testdata/amf/pyclient_amf3_data.bin"),
        ),
        (
            "testdata/amf/pyclient_amf3_ping.bin",
            include_bytes!("../../testdata/amf/pyclient_amf3_ping.bin"),
        ),
        (
            "testdata/rtmp/pub_ffmpeg_h264aac_re.json",
            include_bytes!("../../testdata/rtmp/pub_ffmpeg_h264aac_re.json"),
        ),
        (
            "testdata/rtmp/pyclient_amf3.json",
            include_bytes!("../../testdata/rtmp/pyclient_amf3.json"),
        ),
    ];

    fn read(path: &str) -> Vec<u8> {
        FIXTURES
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, b)| b.to_vec())
            .unwrap_or_else(|| panic!("{path} is not in FIXTURES"))
    }

    /// The sidecar's decoded values of the message at stream offset `off`, in
    /// this module's JSON form: the sidecar wraps ECMA arrays as
    /// `{"ecma_array": …}` and AVM+ values as `{"amf3": …}`; unwrap them.
    fn sidecar(capture: &str, dir: &str, off: u64) -> Json {
        fn unwrap(v: Json) -> Json {
            match v {
                Json::Object(m)
                    if m.len() == 1 && (m.contains_key("ecma_array") || m.contains_key("amf3")) =>
                {
                    unwrap(m.into_iter().next().unwrap().1)
                }
                Json::Object(m) => {
                    Json::Object(m.into_iter().map(|(k, v)| (k, unwrap(v))).collect())
                }
                Json::Array(a) => Json::Array(a.into_iter().map(unwrap).collect()),
                v => v,
            }
        }
        let all: Json =
            serde_json::from_slice(&read(&format!("testdata/rtmp/{capture}.json"))).unwrap();
        let msgs = all["ground_truth"]["connections"][0][dir]["amf_messages"]
            .as_array()
            .unwrap();
        let m = msgs.iter().find(|m| m["off"] == off).unwrap();
        unwrap(m["amf"].clone())
    }

    /// (payload file, capture, direction, stream offset, leading format bytes to skip)
    const VECTORS: &[(&str, &str, &str, u64, usize)] = &[
        (
            "ffmpeg_connect.bin",
            "pub_ffmpeg_h264aac_re",
            "c2s",
            3073,
            0,
        ),
        (
            "nginx_connect_result.bin",
            "pub_ffmpeg_h264aac_re",
            "s2c",
            3122,
            0,
        ),
        (
            "ffmpeg_setdataframe_onmetadata.bin",
            "pub_ffmpeg_h264aac_re",
            "c2s",
            3399,
            0,
        ),
        ("pyclient_amf3_connect.bin", "pyclient_amf3", "c2s", 3073, 1),
        ("pyclient_amf3_data.bin", "pyclient_amf3", "c2s", 3441, 1),
        ("pyclient_amf3_ping.bin", "pyclient_amf3", "c2s", 3570, 1),
    ];

    #[test]
    fn capture_vectors_match_the_sidecar_and_reencode_exactly() {
        for &(file, capture, dir, off, skip) in VECTORS {
            let b = read(&format!("testdata/amf/{file}"));
            let body = &b[skip..];
            let values = decode_all(body).unwrap_or_else(|e| panic!("{file}: {e}"));
            let got = Json::Array(values.iter().map(Amf0Value::to_json).collect());
            let want = sidecar(capture, dir, off);
            // Compare as text so member order counts too.
            assert_eq!(got.to_string(), want.to_string(), "{file}");
            assert_eq!(encode_all(&values), body, "{file}: re-encode");
        }
    }

    #[test]
    fn capture_details() {
        let b = read("testdata/amf/ffmpeg_setdataframe_onmetadata.bin");
        let v = decode_all(&b).unwrap();
        let Amf0Value::EcmaArray { count, properties } = &v[2] else {
            panic!("{:?}", v[2])
        };
        assert_eq!((*count, properties.len()), (13, 13));
        assert_eq!(
            v[2].get("encoder").and_then(Amf0Value::as_str),
            Some("Lavf59.27.100")
        );
        // onAmf3Data's "title2" is sent as string reference 1 (06 02): it must resolve.
        let b = read("testdata/amf/pyclient_amf3_data.bin");
        assert!(b.windows(9).any(|w| w == b"\x0dtitle2\x06\x02"));
        let v = decode_all(&b[1..]).unwrap();
        let Amf0Value::AvmPlus(Amf3Value::Object(o)) = &v[1] else {
            panic!("{:?}", v[1])
        };
        let title2 = o
            .dynamic_members
            .iter()
            .find(|(k, _)| k == "title2")
            .unwrap();
        assert_eq!(title2.1, Amf3Value::String("amf3 test".into()));
    }

    #[test]
    fn amf3_tables_shared_across_avmplus_values_of_one_message() {
        // 11 06 03 'a' | 11 06 00 (string reference 0) — valid only with shared tables.
        let b = [0x11, 0x06, 0x03, b'a', 0x11, 0x06, 0x00];
        let a = Amf0Value::AvmPlus(Amf3Value::String("a".into()));
        assert_eq!(decode_all(&b).unwrap(), vec![a.clone(), a.clone()]);
        assert_eq!(encode_all(&[a.clone(), a]), b);
        // A new decoder (a new message) starts with empty tables.
        assert!(matches!(
            decode_all(&b[4..]),
            Err(AmfError::BadReference {
                table: "string",
                offset: 2,
                ..
            })
        ));
    }

    #[test]
    fn spec_encodings() {
        let cases: Vec<(Amf0Value, Vec<u8>)> = vec![
            (
                Amf0Value::Number(1.0),
                vec![0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0],
            ),
            (Amf0Value::Boolean(true), vec![0x01, 0x01]),
            (
                Amf0Value::String("ab".into()),
                vec![0x02, 0x00, 0x02, b'a', b'b'],
            ),
            (
                Amf0Value::Object(vec![("a".into(), Amf0Value::Null)]),
                vec![0x03, 0x00, 0x01, b'a', 0x05, 0x00, 0x00, 0x09],
            ),
            (Amf0Value::Reference(0x0102), vec![0x07, 0x01, 0x02]),
            (
                Amf0Value::EcmaArray {
                    count: 7,
                    properties: vec![],
                },
                vec![0x08, 0, 0, 0, 7, 0x00, 0x00, 0x09],
            ),
            (
                Amf0Value::StrictArray(vec![Amf0Value::Undefined]),
                vec![0x0A, 0, 0, 0, 1, 0x06],
            ),
            (
                Amf0Value::Date {
                    millis: 0.0,
                    timezone: -60,
                },
                vec![0x0B, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xC4],
            ),
            (
                Amf0Value::LongString("x".into()),
                vec![0x0C, 0, 0, 0, 1, b'x'],
            ),
            (Amf0Value::Unsupported, vec![0x0D]),
            (
                Amf0Value::XmlDocument("<a/>".into()),
                vec![0x0F, 0, 0, 0, 4, b'<', b'a', b'/', b'>'],
            ),
            (
                Amf0Value::TypedObject {
                    class_name: "C".into(),
                    properties: vec![],
                },
                vec![0x10, 0x00, 0x01, b'C', 0x00, 0x00, 0x09],
            ),
            (Amf0Value::MovieClip, vec![0x04]),
        ];
        for (v, b) in cases {
            assert_eq!(encode_all(std::slice::from_ref(&v)), b, "{v:?}");
            assert_eq!(decode_all(&b).unwrap(), vec![v]);
        }
        // Any non-zero byte is true (AMF0 §2.3).
        assert_eq!(
            decode_all(&[0x01, 0x07]).unwrap(),
            vec![Amf0Value::Boolean(true)]
        );
        // A String too long for a U16 length goes out as a long string.
        let long = "x".repeat(70_000);
        let b = encode_all(&[Amf0Value::String(long.clone())]);
        assert_eq!(b[0], 0x0C);
        assert_eq!(decode_all(&b).unwrap(), vec![Amf0Value::LongString(long)]);
    }

    #[test]
    fn hostile_inputs_fail_fast() {
        // Strict array of 4e9 elements in 10 bytes: refused before allocating.
        let r = decode_all(&[0x0A, 0xEE, 0x6B, 0x28, 0x00, 0x05, 0x05, 0x05, 0x05, 0x05]);
        assert!(
            matches!(
                r,
                Err(AmfError::CountTooLarge {
                    offset: 1,
                    count: 4_000_000_000,
                    remaining: 5,
                    ..
                })
            ),
            "{r:?}"
        );
        // Long string / XML claiming 4 GiB.
        for m in [0x0C, 0x0F] {
            let r = decode_all(&[m, 0xFF, 0xFF, 0xFF, 0xFF, b'a']);
            assert!(
                matches!(
                    r,
                    Err(AmfError::Truncated {
                        offset: 5,
                        needed: 0xFFFF_FFFE
                    })
                ),
                "{r:?}"
            );
        }
        // 100 000 nested objects and strict arrays: errors, not stack overflows.
        for unit in [
            &[0x03, 0x00, 0x01, b'a'][..],
            &[0x0A, 0, 0, 0, 1][..],
            &[0x11, 0x09, 0x03, 0x01][..],
        ] {
            let r = decode_all(&unit.repeat(100_000));
            assert!(matches!(r, Err(AmfError::TooDeep { .. })), "{r:?}");
        }
        // Object nesting right at the limit decodes; one more level fails.
        let nest = |n: usize| {
            let mut b = [0x03, 0x00, 0x01, b'a'].repeat(n - 1);
            b.push(0x03);
            b.extend([0, 0, 9].repeat(n));
            b
        };
        assert!(decode_all(&nest(MAX_AMF_DEPTH)).is_ok());
        assert!(matches!(
            decode_all(&nest(MAX_AMF_DEPTH + 1)),
            Err(AmfError::TooDeep { .. })
        ));
        assert_eq!(
            decode_all(&[0x0E]),
            Err(AmfError::UnknownMarker {
                offset: 0,
                marker: 0x0E
            })
        );
        assert_eq!(
            decode_all(&[0x09]),
            Err(AmfError::UnexpectedObjectEnd { offset: 0 })
        );
        // A string value keeps its bytes; a property name must be UTF-8.
        let bad = [0x02, 0x00, 0x02, b'a', 0xFF];
        let v = decode_all(&bad).unwrap();
        assert_eq!(
            v,
            vec![Amf0Value::InvalidString {
                long: false,
                bytes: vec![b'a', 0xFF]
            }]
        );
        assert_eq!(encode_all(&v), bad);
        assert_eq!(v[0].text().unwrap(), "a\\xff");
        assert_eq!(
            v[0].to_json(),
            serde_json::json!({"$invalid_utf8": "61ff", "$text": "a\u{fffd}"})
        );
        assert_eq!(
            decode_all(&[0x03, 0x00, 0x01, 0xFF, 0x05, 0x00, 0x00, 0x09]),
            Err(AmfError::InvalidUtf8 { offset: 3 })
        );
    }

    /// Past the element budget decoding stops with a marker where the next
    /// value would be; enclosing containers end there; nothing after is decoded.
    #[test]
    fn budget_truncates_with_a_marker() {
        // ["a", [null × 1000], 1.0] with a budget of 100 elements.
        let mut b = vec![0x02, 0, 1, b'a', 0x0A, 0, 0, 0x03, 0xE8];
        b.extend(std::iter::repeat_n(0x05, 1000));
        b.extend([0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0]);
        let mut d = Decoder::with_limit(&b, 100);
        let mut values = Vec::new();
        while !d.is_empty() {
            values.push(d.decode_value().unwrap());
        }
        assert_eq!(values.len(), 2, "the number after the array is not decoded");
        let Amf0Value::StrictArray(items) = &values[1] else {
            panic!("{values:?}")
        };
        // "a" and the array cost 2: 98 nulls, then the marker.
        assert_eq!(items.len(), 99);
        assert!(items[..98].iter().all(|v| *v == Amf0Value::Null));
        let t = Truncation {
            offset: 9 + 98,
            limit: 100,
            bytes_left: b.len() - 9 - 98,
        };
        assert_eq!(items[98], Amf0Value::Truncated(t));
        assert_eq!(d.truncated(), Some(t));
        assert_eq!(truncation(&values), Some(&t));
        assert_eq!(
            values[1].to_json()[98],
            json!({"$truncated": {"offset": 107, "element_limit": 100, "bytes_left": 911}})
        );
        // What decoded re-encodes as valid AMF0 without the marker.
        let again = decode_all(&encode_all(&values)).unwrap();
        let Amf0Value::StrictArray(items) = &again[1] else {
            panic!()
        };
        assert_eq!(items.len(), 98);
        assert_eq!(truncation(&again), None);

        // An object: the marker is the value of an empty-named property.
        let mut b = vec![0x03];
        for _ in 0..50 {
            b.extend([0, 1, b'k', 0x05]);
        }
        b.extend([0, 0, 9]);
        let mut d = Decoder::with_limit(&b, 21);
        let v = d.decode_value().unwrap();
        let p = v.properties().unwrap();
        // The object (1) + 10 properties × (name + value).
        assert_eq!(p.len(), 11);
        assert_eq!(p[10].0, "");
        assert!(matches!(p[10].1, Amf0Value::Truncated(_)));
        assert!(d.is_empty());
        assert!(truncation(std::slice::from_ref(&v)).is_some());
        // Under the budget nothing changes.
        assert_eq!(truncation(&decode_all(&b).unwrap()), None);
    }

    /// AMF3 after an AVM+ marker spends the same budget; running out there
    /// is a marker in place of the AVM+ value, not an error.
    #[test]
    fn budget_is_shared_with_amf3() {
        // 0x11, AMF3 array of 1000 nulls: 09 (1000 << 1 | 1 as U29) 01 (empty key) 01 × 1000.
        let mut b = vec![0x05, 0x11, 0x09];
        crate::proto::amf3::put_u29(1000 << 1 | 1, &mut b);
        b.push(0x01);
        b.extend(std::iter::repeat_n(0x01, 1000));
        let mut d = Decoder::with_limit(&b, 300);
        let a = d.decode_value().unwrap();
        let v = d.decode_value().unwrap();
        assert_eq!(a, Amf0Value::Null);
        assert!(
            matches!(v, Amf0Value::Truncated(Truncation { offset: 1, .. })),
            "{v:?}"
        );
        assert!(d.is_empty());
        // With room, it decodes.
        let v = decode_all(&b).unwrap();
        assert!(
            matches!(&v[1], Amf0Value::AvmPlus(Amf3Value::Array { dense, .. }) if dense.len() == 1000)
        );
    }

    /// AMF3 references inside AMF0 expand only in proportion to the
    /// message: 64 strings referenced 1000 times (~65 k units from 2.3 KB)
    /// stop at AMF3's per-byte budget, not at the message's 262 k elements.
    #[test]
    fn amf3_references_expand_in_proportion_to_the_message() {
        let mut b = vec![0x11, 0x09];
        crate::proto::amf3::put_u29(64 << 1 | 1, &mut b);
        b.push(0x01);
        for i in 0..64u8 {
            b.extend([0x06, 0x07, b's', b'0' + i / 10, b'0' + i % 10]);
        }
        b.extend([0x11, 0x09]);
        crate::proto::amf3::put_u29(1000 << 1 | 1, &mut b);
        b.push(0x01);
        for _ in 0..1000 {
            b.extend([0x09, 0x00]);
        }
        let budget = crate::proto::amf3::default_budget(b.len());
        assert!(budget < 65_000, "{budget}");
        let (v, e) = decode_lax(&b);
        assert_eq!(e, None);
        assert!(
            matches!(&v[0], Amf0Value::AvmPlus(Amf3Value::Array { dense, .. }) if dense.len() == 64)
        );
        assert_eq!(
            v[1],
            Amf0Value::Truncated(Truncation {
                offset: 325,
                limit: budget,
                bytes_left: b.len() - 325,
            })
        );
        // With a budget that has room, every reference resolves.
        let mut d = Decoder::new(&b);
        d.decode_value().unwrap();
        let mut a3 = crate::proto::amf3::Decoder::with_budget(&b, 1 << 20);
        a3.set_position(1);
        a3.decode_value().unwrap();
        a3.set_position(326);
        assert!(
            matches!(a3.decode_value().unwrap(), Amf3Value::Array { dense, .. } if dense.len() == 1000)
        );
    }

    /// A fuzzer's 755 bytes of nested references (fuzz/regressions/amf0)
    /// decode within the per-byte budget.
    #[test]
    fn fuzzed_reference_nest_stays_in_budget() {
        let b = include_bytes!(
            "../../fuzz/regressions/amf0/oom-7b122db88e869562d961c6a62ea562dfbd310cf4"
        );
        let mut d = Decoder::new(b);
        while !d.is_empty() {
            if d.decode_value().is_err() {
                break;
            }
        }
        let budget = crate::proto::amf3::default_budget(b.len());
        match d.truncated() {
            Some(t) => assert_eq!(t.limit, budget),
            None => assert!(d.used <= budget, "{}", d.used),
        }
    }

    #[test]
    fn lax_keeps_what_decoded() {
        let (v, e) = decode_lax(&[0x05, 0x06, 0x02, 0x00, 0x09, b'x']);
        assert_eq!(v, vec![Amf0Value::Null, Amf0Value::Undefined]);
        assert_eq!(
            e,
            Some(AmfError::Truncated {
                offset: 5,
                needed: 8
            })
        );
    }

    #[test]
    fn json_forms() {
        let v = Amf0Value::StrictArray(vec![
            Amf0Value::Number(f64::INFINITY),
            Amf0Value::TypedObject {
                class_name: "C".into(),
                properties: vec![
                    ("z".into(), Amf0Value::Number(1.5)),
                    ("a".into(), Amf0Value::Undefined),
                ],
            },
            Amf0Value::Date {
                millis: 1.0,
                timezone: 0,
            },
            Amf0Value::Reference(3),
            Amf0Value::XmlDocument("<a/>".into()),
        ]);
        assert_eq!(
            v.to_json().to_string(),
            json!([null, {"$class": "C", "z": 1.5, "a": null}, {"$date": 1.0}, {"$ref": 3}, {"$xml": "<a/>"}])
                .to_string()
        );
    }

    fn finite() -> impl Strategy<Value = f64> {
        any::<f64>().prop_filter("NaN is not equal to itself", |f| !f.is_nan())
    }

    fn arb_amf0() -> impl Strategy<Value = Amf0Value> {
        let leaf = prop_oneof![
            finite().prop_map(Amf0Value::Number),
            any::<bool>().prop_map(Amf0Value::Boolean),
            "\\PC{0,12}".prop_map(Amf0Value::String),
            Just(Amf0Value::MovieClip),
            Just(Amf0Value::Null),
            Just(Amf0Value::Undefined),
            any::<u16>().prop_map(Amf0Value::Reference),
            (finite(), any::<i16>())
                .prop_map(|(millis, timezone)| Amf0Value::Date { millis, timezone }),
            "\\PC{0,12}".prop_map(Amf0Value::LongString),
            Just(Amf0Value::Unsupported),
            "\\PC{0,12}".prop_map(Amf0Value::XmlDocument),
            arb_amf3().prop_map(Amf0Value::AvmPlus),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            let props = prop::collection::vec(("\\PC{0,8}", inner.clone()), 0..5);
            prop_oneof![
                props.clone().prop_map(Amf0Value::Object),
                (any::<u32>(), props.clone())
                    .prop_map(|(count, properties)| Amf0Value::EcmaArray { count, properties }),
                prop::collection::vec(inner, 0..5).prop_map(Amf0Value::StrictArray),
                ("\\PC{0,8}", props).prop_map(|(class_name, properties)| Amf0Value::TypedObject {
                    class_name,
                    properties
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trip(values in prop::collection::vec(arb_amf0(), 0..4)) {
            let b = encode_all(&values);
            let d = decode_all(&b).unwrap();
            prop_assert_eq!(&d, &values);
            // Decoded input re-encodes byte for byte.
            prop_assert_eq!(encode_all(&d), b);
        }

        #[test]
        fn every_truncated_prefix_is_a_clean_error(v in arb_amf0()) {
            let b = encode_all(std::slice::from_ref(&v));
            for cut in 0..b.len() {
                let mut d = Decoder::new(&b[..cut]);
                match d.decode_value() {
                    Err(AmfError::Truncated { .. } | AmfError::CountTooLarge { .. }) => {}
                    other => prop_assert!(false, "prefix {cut}/{}: {other:?}", b.len()),
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..64)) {
            let (_, _) = decode_lax(&b);
        }
    }

    #[test]
    fn capture_prefixes_are_clean_errors() {
        for &(file, _, _, _, skip) in VECTORS {
            let b = read(&format!("testdata/amf/{file}"));
            let body = &b[skip..];
            let full = decode_all(body).unwrap();
            for cut in 0..body.len() {
                let (v, e) = decode_lax(&body[..cut]);
                // What decoded is a prefix of the real values, and the rest is "truncated".
                assert_eq!(v[..], full[..v.len()], "{file} cut {cut}");
                assert!(v.len() < full.len(), "{file} cut {cut}");
                if let Some(e) = e {
                    assert!(
                        matches!(
                            e,
                            AmfError::Truncated { .. } | AmfError::CountTooLarge { .. }
                        ),
                        "{file} cut {cut}: {e}"
                    );
                }
            }
        }
    }
}
