//! AMF3 (Adobe "Action Message Format -- AMF 3", January 2013): U29 integers
//! (§1.3.1), the data types of §3.2–§3.16 and the three reference tables
//! (strings, objects, traits) of §2.2, as carried inside AMF0 after the AVM+
//! marker 0x11 and in RTMP messages 17/15/16.
//!
//! References are resolved by the decoder: a reference to a finished value
//! yields a clone of it; a reference to an object, array, vector or dictionary
//! that is still being decoded (a cycle) yields
//! [`Amf3Value::CyclicReference`]. Cloning is bounded by a work budget (see
//! [`Decoder::with_budget`]) so a "billion laughs" input — references to
//! references to large values — errors with [`AmfError::BudgetExceeded`]
//! instead of exhausting memory. Nesting is limited to
//! [`MAX_AMF_DEPTH`] and every count is checked
//! against the bytes left before allocating. A string that is not valid
//! UTF-8 does not fail the message: its invalid bytes are shown as `\xNN`
//! (the text a terminal and JSON can carry; the exact bytes are not kept).
//!
//! The [`Encoder`] writes strings and traits by reference the way Flash does
//! (the first occurrence inline, later ones by index; the empty string always
//! inline, §3.8) and never writes object references except for
//! [`Amf3Value::CyclicReference`], because values have no identity here.

use std::collections::HashMap;
use std::rc::Rc;

use bytes::BufMut;
use serde_json::{Map, Value as Json};

pub use crate::proto::amf0::AmfError;
use crate::proto::amf0::{number_json, prealloc, truncate_str};
use crate::proto::{MAX_AMF_DEPTH, MAX_AMF_ELEMENTS};

/// AMF3 type markers (§3.1).
mod marker {
    pub const UNDEFINED: u8 = 0x00;
    pub const NULL: u8 = 0x01;
    pub const FALSE: u8 = 0x02;
    pub const TRUE: u8 = 0x03;
    pub const INTEGER: u8 = 0x04;
    pub const DOUBLE: u8 = 0x05;
    pub const STRING: u8 = 0x06;
    pub const XML_DOC: u8 = 0x07;
    pub const DATE: u8 = 0x08;
    pub const ARRAY: u8 = 0x09;
    pub const OBJECT: u8 = 0x0A;
    pub const XML: u8 = 0x0B;
    pub const BYTE_ARRAY: u8 = 0x0C;
    pub const VECTOR_INT: u8 = 0x0D;
    pub const VECTOR_UINT: u8 = 0x0E;
    pub const VECTOR_DOUBLE: u8 = 0x0F;
    pub const VECTOR_OBJECT: u8 = 0x10;
    pub const DICTIONARY: u8 = 0x11;
}

/// Smallest and largest integers an AMF3 integer (29-bit signed) can carry (§3.6).
pub const INT_MIN: i32 = -(1 << 28);
/// See [`INT_MIN`].
pub const INT_MAX: i32 = (1 << 28) - 1;
/// Largest U29 value (§1.3.1).
pub const U29_MAX: u32 = (1 << 29) - 1;

/// Externalizable classes whose body is exactly one AMF3 value (Flex's
/// `ArrayCollection`/`ArrayList` write their source array, `ObjectProxy` its object).
const KNOWN_EXTERNALIZABLE: &[&str] = &[
    "flex.messaging.io.ArrayCollection",
    "flex.messaging.io.ArrayList",
    "flex.messaging.io.ObjectProxy",
];

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
    /// An object-table reference (0-based index, as on the wire) to a value that
    /// was still being decoded when the reference was read: a cycle, which a
    /// tree of owned values cannot hold. The encoder writes it back as the same
    /// object reference.
    CyclicReference(u32),
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

impl Amf3Value {
    /// The value as natural JSON, for `dump --json`:
    ///
    /// - undefined / null → `null`; boolean; integer and double → number
    ///   (non-finite → `null`); string → string;
    /// - array → JSON array of the dense part when there are no named members,
    ///   otherwise an object: named members in wire order, then the dense
    ///   members under keys "0", "1", …;
    /// - object → JSON object: `"$class"` first when the class name is not
    ///   empty, then sealed and dynamic members in order; an externalizable
    ///   object → `{"$class": name, "$external": <body or null>}`;
    /// - vectors → arrays; dictionary → array of `[key, value]` pairs;
    /// - date → `{"$date": <ms since epoch>}`; XML and XMLDocument →
    ///   `{"$xml": "<text>"}`; byte array → `{"$bytes": "<lowercase hex>"}`;
    /// - cyclic reference → `{"$ref": <object table index>}`.
    pub fn to_json(&self) -> Json {
        fn one(key: &str, v: Json) -> Json {
            let mut m = Map::new();
            m.insert(key.into(), v);
            Json::Object(m)
        }
        match self {
            Amf3Value::Undefined | Amf3Value::Null => Json::Null,
            Amf3Value::Boolean(b) => Json::Bool(*b),
            Amf3Value::Integer(i) => Json::from(*i),
            Amf3Value::Double(d) => number_json(*d),
            Amf3Value::String(s) => Json::String(s.clone()),
            Amf3Value::XmlDocument(s) | Amf3Value::Xml(s) => one("$xml", Json::String(s.clone())),
            Amf3Value::Date(ms) => one("$date", number_json(*ms)),
            Amf3Value::Array { assoc, dense } if assoc.is_empty() => {
                Json::Array(dense.iter().map(Amf3Value::to_json).collect())
            }
            Amf3Value::Array { assoc, dense } => {
                let mut m = Map::new();
                for (k, v) in assoc {
                    m.insert(k.clone(), v.to_json());
                }
                for (i, v) in dense.iter().enumerate() {
                    m.insert(i.to_string(), v.to_json());
                }
                Json::Object(m)
            }
            Amf3Value::Object(o) => {
                let mut m = Map::new();
                if !o.class_name.is_empty() || o.externalizable {
                    m.insert("$class".into(), Json::String(o.class_name.clone()));
                }
                if o.externalizable {
                    m.insert(
                        "$external".into(),
                        o.external.as_ref().map_or(Json::Null, |v| v.to_json()),
                    );
                }
                for (k, v) in o.sealed.iter().chain(&o.dynamic_members) {
                    m.insert(k.clone(), v.to_json());
                }
                Json::Object(m)
            }
            Amf3Value::ByteArray(b) => {
                let mut s = String::with_capacity(b.len() * 2);
                for x in b {
                    s.push_str(&format!("{x:02x}"));
                }
                one("$bytes", Json::String(s))
            }
            Amf3Value::VectorInt { items, .. } => {
                Json::Array(items.iter().map(|&i| Json::from(i)).collect())
            }
            Amf3Value::VectorUint { items, .. } => {
                Json::Array(items.iter().map(|&i| Json::from(i)).collect())
            }
            Amf3Value::VectorDouble { items, .. } => {
                Json::Array(items.iter().map(|&d| number_json(d)).collect())
            }
            Amf3Value::VectorObject { items, .. } => {
                Json::Array(items.iter().map(Amf3Value::to_json).collect())
            }
            Amf3Value::Dictionary { entries, .. } => Json::Array(
                entries
                    .iter()
                    .map(|(k, v)| Json::Array(vec![k.to_json(), v.to_json()]))
                    .collect(),
            ),
            Amf3Value::CyclicReference(i) => one("$ref", Json::from(*i)),
        }
    }
}

/// Traits of an object class (§3.12), as kept in the traits table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Traits {
    class_name: String,
    dynamic: bool,
    externalizable: bool,
    sealed: Vec<String>,
}

/// An object-table entry.
#[derive(Debug)]
enum Slot {
    /// Still being decoded: a reference to it is a cycle.
    Pending,
    /// Finished, with its weight (work units a clone costs).
    Done(Amf3Value, usize),
}

/// Work units the default budget allows per input byte.
pub const BUDGET_PER_BYTE: usize = 16;
/// Work units the default budget allows regardless of input size: enough for
/// any reasonable sharing in a small message, little enough that a few
/// hundred bytes of references cannot make a millisecond of work each.
pub const BUDGET_BASE: usize = 1 << 12;
/// Hard cap on the default budget, whatever the input size: the per-message
/// element bound shared with AMF0 ([`MAX_AMF_ELEMENTS`]), so a decode never
/// holds more than some 30 MB.
pub const BUDGET_CAP: usize = MAX_AMF_ELEMENTS;

/// The default work budget for `len` input bytes:
/// `16 × len + 4096` units, capped at [`BUDGET_CAP`].
pub fn default_budget(len: usize) -> usize {
    len.saturating_mul(BUDGET_PER_BYTE)
        .saturating_add(BUDGET_BASE)
        .min(BUDGET_CAP)
}

/// Decodes AMF3 values, keeping the three reference tables across values.
///
/// Work budget: each value produced costs one unit plus one per 16 bytes of
/// string/byte payload (vector items: one per 16 bytes of items); a clone made
/// to resolve a reference costs the clone's units, and so does the copy kept in
/// the object table. Without references a decode costs at most about twice its
/// input size; the default limit is [`default_budget`], capped at
/// [`BUDGET_CAP`].
#[derive(Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    strings: Vec<String>,
    objects: Vec<Slot>,
    traits: Vec<Rc<Traits>>,
    /// Units of values produced (tree weight); differences give a value's weight.
    produced: usize,
    /// All units spent (produced + object-table copies).
    used: usize,
    limit: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder at the start of `buf` with empty tables and the default budget.
    pub fn new(buf: &'a [u8]) -> Self {
        Self::with_budget(buf, default_budget(buf.len()))
    }

    /// A decoder with an explicit work budget (units as described on [`Decoder`]).
    pub fn with_budget(buf: &'a [u8], limit: usize) -> Self {
        Decoder {
            buf,
            pos: 0,
            strings: Vec::new(),
            objects: Vec::new(),
            traits: Vec::new(),
            produced: 0,
            used: 0,
            limit,
        }
    }

    /// Offset of the next byte to decode.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Moves to `pos` (clamped to the buffer), keeping the tables.
    pub fn set_position(&mut self, pos: usize) {
        self.pos = pos.min(self.buf.len());
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Shares a budget with a caller (AMF0's decoder, for an AVM+ value):
    /// `used` units already spent of `limit`.
    pub fn set_budget(&mut self, used: usize, limit: usize) {
        self.used = used;
        self.limit = limit;
    }

    /// Units spent so far (see [`Decoder::set_budget`]).
    pub fn spent(&self) -> usize {
        self.used
    }

    /// Empties the three reference tables (a new AMF3 context); the budget spent stays spent.
    pub fn reset_tables(&mut self) {
        self.strings.clear();
        self.objects.clear();
        self.traits.clear();
    }

    /// Decodes the next value.
    pub fn decode_value(&mut self) -> Result<Amf3Value, AmfError> {
        self.value(0)
    }

    /// Decodes the next value as if already nested `depth` levels deep (for AMF0's AVM+ switch).
    pub(crate) fn decode_at_depth(&mut self, depth: usize) -> Result<Amf3Value, AmfError> {
        self.value(depth)
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

    fn f64(&mut self) -> Result<f64, AmfError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    /// U29 (§1.3.1): 1 to 4 bytes, 7 bits per byte with a continuation bit,
    /// all 8 bits of the fourth byte.
    fn u29(&mut self) -> Result<u32, AmfError> {
        let mut v: u32 = 0;
        for _ in 0..3 {
            let b = self.u8()?;
            v = (v << 7) | u32::from(b & 0x7F);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        let b = self.u8()?;
        Ok((v << 8) | u32::from(b))
    }

    fn charge(&mut self, units: usize) -> Result<(), AmfError> {
        self.produced = self.produced.saturating_add(units);
        self.charge_extra(units)
    }

    fn charge_extra(&mut self, units: usize) -> Result<(), AmfError> {
        self.used = self.used.saturating_add(units);
        if self.used > self.limit {
            return Err(AmfError::BudgetExceeded {
                offset: self.pos,
                limit: self.limit,
            });
        }
        Ok(())
    }

    fn check_count(
        &self,
        at: usize,
        what: &'static str,
        count: u32,
        min_size: usize,
    ) -> Result<(), AmfError> {
        let remaining = self.buf.len() - self.pos;
        if (count as usize).saturating_mul(min_size) > remaining {
            return Err(AmfError::CountTooLarge {
                offset: at,
                what,
                count: count.into(),
                remaining,
            });
        }
        Ok(())
    }

    fn utf8(&mut self, len: usize) -> Result<String, AmfError> {
        let b = self.take(len)?;
        // Invalid UTF-8 does not fail the message: the string keeps its valid
        // parts and shows each invalid byte as `\xNN` (a peer's bytes, named).
        Ok(crate::text::escape_invalid_utf8(b).into_owned())
    }

    /// UTF-8-vr (§1.3.2/§3.8): inline (added to the string table unless empty) or by reference.
    fn string(&mut self) -> Result<String, AmfError> {
        let at = self.pos;
        let h = self.u29()?;
        if h & 1 == 0 {
            let index = h >> 1;
            let s = self
                .strings
                .get(index as usize)
                .ok_or(AmfError::BadReference {
                    offset: at,
                    table: "string",
                    index,
                    len: self.strings.len(),
                })?
                .clone();
            self.charge(1 + s.len() / 16)?;
            return Ok(s);
        }
        let s = self.utf8((h >> 1) as usize)?;
        if !s.is_empty() {
            self.strings.push(s.clone());
        }
        Ok(s)
    }

    /// The U29 header of a referenceable value: `Ok(Err(value))` for a resolved
    /// reference, `Ok(Ok(h >> 1))` for an inline value.
    fn header(&mut self) -> Result<Result<u32, Amf3Value>, AmfError> {
        let at = self.pos;
        let h = self.u29()?;
        if h & 1 == 1 {
            return Ok(Ok(h >> 1));
        }
        let index = h >> 1;
        let weight = match self.objects.get(index as usize) {
            None => {
                return Err(AmfError::BadReference {
                    offset: at,
                    table: "object",
                    index,
                    len: self.objects.len(),
                });
            }
            Some(Slot::Pending) => None,
            Some(Slot::Done(_, w)) => Some(*w),
        };
        // Charge before cloning, so that an over-budget clone never happens.
        self.charge(weight.unwrap_or(1))?;
        Ok(Err(match self.objects.get(index as usize) {
            Some(Slot::Done(v, _)) => v.clone(),
            _ => Amf3Value::CyclicReference(index),
        }))
    }

    /// Reserves an object-table slot for a container about to be decoded.
    fn reserve(&mut self) -> usize {
        self.objects.push(Slot::Pending);
        self.objects.len() - 1
    }

    /// Fills slot `idx` with a copy of `v`, whose weight is `produced - start`.
    fn fill(&mut self, idx: usize, v: &Amf3Value, start: usize) -> Result<(), AmfError> {
        let w = self.produced - start;
        self.charge_extra(w)?;
        if let Some(slot) = self.objects.get_mut(idx) {
            *slot = Slot::Done(v.clone(), w);
        }
        Ok(())
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

    fn value(&mut self, depth: usize) -> Result<Amf3Value, AmfError> {
        let at = self.pos;
        let m = self.u8()?;
        let start = self.produced;
        let v = match m {
            marker::UNDEFINED => Amf3Value::Undefined,
            marker::NULL => Amf3Value::Null,
            marker::FALSE => Amf3Value::Boolean(false),
            marker::TRUE => Amf3Value::Boolean(true),
            marker::INTEGER => {
                let u = self.u29()?;
                // Sign-extend the 29-bit two's complement value (§3.6).
                Amf3Value::Integer(((u << 3) as i32) >> 3)
            }
            marker::DOUBLE => Amf3Value::Double(self.f64()?),
            marker::STRING => {
                let s = self.string()?;
                // `string` charged references; charge inline strings here.
                Amf3Value::String(s)
            }
            marker::XML_DOC | marker::XML => {
                let len = match self.header()? {
                    Err(v) => return Ok(v),
                    Ok(len) => len,
                };
                let s = self.utf8(len as usize)?;
                self.charge(1 + s.len() / 16)?;
                let v = if m == marker::XML {
                    Amf3Value::Xml(s)
                } else {
                    Amf3Value::XmlDocument(s)
                };
                self.objects
                    .push(Slot::Done(v.clone(), self.produced - start));
                return Ok(v);
            }
            marker::DATE => {
                if let Err(v) = self.header()? {
                    return Ok(v);
                }
                let v = Amf3Value::Date(self.f64()?);
                self.charge(1)?;
                self.objects.push(Slot::Done(v.clone(), 1));
                return Ok(v);
            }
            marker::BYTE_ARRAY => {
                let len = match self.header()? {
                    Err(v) => return Ok(v),
                    Ok(len) => len,
                };
                let b = self.take(len as usize)?.to_vec();
                self.charge(1 + b.len() / 16)?;
                let v = Amf3Value::ByteArray(b);
                self.objects
                    .push(Slot::Done(v.clone(), self.produced - start));
                return Ok(v);
            }
            marker::ARRAY => return self.array(at, depth),
            marker::OBJECT => return self.object(at, depth),
            marker::VECTOR_INT
            | marker::VECTOR_UINT
            | marker::VECTOR_DOUBLE
            | marker::VECTOR_OBJECT => {
                return self.vector(at, m, depth);
            }
            marker::DICTIONARY => return self.dictionary(at, depth),
            other => {
                return Err(AmfError::UnknownMarker {
                    offset: at,
                    marker: other,
                });
            }
        };
        // Scalars and strings: one unit each (plus string payload).
        let extra = match &v {
            Amf3Value::String(s) => s.len() / 16,
            _ => 0,
        };
        if self.produced == start {
            self.charge(1 + extra)?;
        }
        Ok(v)
    }

    /// §3.11: U29A (dense count), associative name/value pairs up to the empty
    /// name, then the dense values.
    fn array(&mut self, at: usize, depth: usize) -> Result<Amf3Value, AmfError> {
        let start = self.produced;
        let count_at = self.pos;
        let count = match self.header()? {
            Err(v) => return Ok(v),
            Ok(c) => c,
        };
        let d = self.enter(depth, at)?;
        let idx = self.reserve();
        self.charge(1)?;
        let mut assoc = Vec::new();
        loop {
            let k = self.string()?;
            if k.is_empty() {
                break;
            }
            let v = self.value(d)?;
            assoc.push((k, v));
        }
        // Each dense value needs at least its marker byte.
        self.check_count(count_at, "array", count, 1)?;
        let mut dense = Vec::with_capacity(prealloc(count));
        for _ in 0..count {
            dense.push(self.value(d)?);
        }
        let v = Amf3Value::Array { assoc, dense };
        self.fill(idx, &v, start)?;
        Ok(v)
    }

    /// §3.12: U29O with inline or referenced traits, sealed values, dynamic members.
    fn object(&mut self, at: usize, depth: usize) -> Result<Amf3Value, AmfError> {
        let start = self.produced;
        let h = match self.header()? {
            Err(v) => return Ok(v),
            Ok(h) => h,
        };
        let d = self.enter(depth, at)?;
        let idx = self.reserve();
        self.charge(1)?;
        // `h` is the U29O without its low (inline object) bit.
        let traits = if h & 1 == 0 {
            let index = h >> 1;
            self.traits
                .get(index as usize)
                .cloned()
                .ok_or(AmfError::BadReference {
                    offset: at + 1,
                    table: "traits",
                    index,
                    len: self.traits.len(),
                })?
        } else {
            let externalizable = h & 2 != 0;
            let dynamic = h & 4 != 0;
            let sealed_count = if externalizable { 0 } else { h >> 3 };
            let class_name = self.string()?;
            // Each sealed name needs at least one byte.
            self.check_count(at + 1, "sealed member", sealed_count, 1)?;
            let mut sealed = Vec::with_capacity(prealloc(sealed_count));
            for _ in 0..sealed_count {
                sealed.push(self.string()?);
            }
            let t = Rc::new(Traits {
                class_name,
                dynamic: dynamic && !externalizable,
                externalizable,
                sealed,
            });
            self.traits.push(t.clone());
            t
        };
        let mut obj = Amf3Object {
            class_name: traits.class_name.clone(),
            dynamic: traits.dynamic,
            externalizable: traits.externalizable,
            sealed: Vec::new(),
            dynamic_members: Vec::new(),
            external: None,
        };
        if traits.externalizable {
            if !KNOWN_EXTERNALIZABLE.contains(&traits.class_name.as_str()) {
                return Err(AmfError::Externalizable {
                    offset: at,
                    class_name: traits.class_name.clone(),
                });
            }
            obj.external = Some(Box::new(self.value(d)?));
        } else {
            self.check_count(at + 1, "sealed member", traits.sealed.len() as u32, 1)?;
            obj.sealed.reserve(traits.sealed.len());
            for name in &traits.sealed {
                let v = self.value(d)?;
                obj.sealed.push((name.clone(), v));
            }
            if traits.dynamic {
                loop {
                    let k = self.string()?;
                    if k.is_empty() {
                        break;
                    }
                    let v = self.value(d)?;
                    obj.dynamic_members.push((k, v));
                }
            }
        }
        let v = Amf3Value::Object(Box::new(obj));
        self.fill(idx, &v, start)?;
        Ok(v)
    }

    /// §3.15: U29V count, fixed flag, then items (typed name first for objects).
    fn vector(&mut self, at: usize, m: u8, depth: usize) -> Result<Amf3Value, AmfError> {
        let start = self.produced;
        let count_at = self.pos;
        let count = match self.header()? {
            Err(v) => return Ok(v),
            Ok(c) => c,
        };
        let d = self.enter(depth, at)?;
        let idx = self.reserve();
        let fixed = self.u8()? != 0;
        let n = count as usize;
        let v = match m {
            marker::VECTOR_INT | marker::VECTOR_UINT => {
                self.check_count(count_at, "vector", count, 4)?;
                self.charge(1 + n / 4)?;
                let b = self.take(n * 4)?;
                let words = b.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
                if m == marker::VECTOR_INT {
                    Amf3Value::VectorInt {
                        fixed,
                        items: words.map(i32::from_be_bytes).collect(),
                    }
                } else {
                    Amf3Value::VectorUint {
                        fixed,
                        items: words.map(u32::from_be_bytes).collect(),
                    }
                }
            }
            marker::VECTOR_DOUBLE => {
                self.check_count(count_at, "vector", count, 8)?;
                self.charge(1 + n / 2)?;
                let b = self.take(n * 8)?;
                let items = b
                    .chunks_exact(8)
                    .map(|c| {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(c);
                        f64::from_be_bytes(a)
                    })
                    .collect();
                Amf3Value::VectorDouble { fixed, items }
            }
            _ => {
                self.charge(1)?;
                let type_name = self.string()?;
                self.check_count(count_at, "vector", count, 1)?;
                let mut items = Vec::with_capacity(prealloc(count));
                for _ in 0..count {
                    items.push(self.value(d)?);
                }
                Amf3Value::VectorObject {
                    fixed,
                    type_name,
                    items,
                }
            }
        };
        self.fill(idx, &v, start)?;
        Ok(v)
    }

    /// §3.16: U29Dict count, weak-keys flag, then key/value pairs.
    fn dictionary(&mut self, at: usize, depth: usize) -> Result<Amf3Value, AmfError> {
        let start = self.produced;
        let count_at = self.pos;
        let count = match self.header()? {
            Err(v) => return Ok(v),
            Ok(c) => c,
        };
        let d = self.enter(depth, at)?;
        let idx = self.reserve();
        self.charge(1)?;
        let weak_keys = self.u8()? != 0;
        // A key and a value need at least one byte each.
        self.check_count(count_at, "dictionary", count, 2)?;
        let mut entries = Vec::with_capacity(prealloc(count));
        for _ in 0..count {
            let k = self.value(d)?;
            let v = self.value(d)?;
            entries.push((k, v));
        }
        let v = Amf3Value::Dictionary { weak_keys, entries };
        self.fill(idx, &v, start)?;
        Ok(v)
    }
}

/// Decodes one AMF3 value from the start of `buf`; returns it and the bytes it took.
pub fn decode(buf: &[u8]) -> Result<(Amf3Value, usize), AmfError> {
    let mut d = Decoder::new(buf);
    let v = d.decode_value()?;
    Ok((v, d.position()))
}

/// Encodes AMF3 values, keeping string and traits tables across values (one
/// AMF3 context) the way Flash does.
#[derive(Debug, Default)]
pub struct Encoder {
    strings: HashMap<String, u32>,
    traits: HashMap<Traits, u32>,
    /// Complex values written so far: the object-table index the next one gets,
    /// so that a [`Amf3Value::CyclicReference`] means the same to the decoder.
    objects: u32,
}

/// Writes a U29 (§1.3.1); values above [`U29_MAX`] are masked to 29 bits.
pub fn put_u29(v: u32, out: &mut impl BufMut) {
    let v = v & U29_MAX;
    if v < 0x80 {
        out.put_u8(v as u8);
    } else if v < 0x4000 {
        out.put_slice(&[((v >> 7) as u8) | 0x80, (v & 0x7F) as u8]);
    } else if v < 0x20_0000 {
        out.put_slice(&[
            ((v >> 14) as u8) | 0x80,
            ((v >> 7) as u8 & 0x7F) | 0x80,
            (v & 0x7F) as u8,
        ]);
    } else {
        out.put_slice(&[
            ((v >> 22) as u8 & 0x7F) | 0x80,
            ((v >> 15) as u8 & 0x7F) | 0x80,
            ((v >> 8) as u8 & 0x7F) | 0x80,
            v as u8,
        ]);
    }
}

/// The largest length a U29 header with a flag bit can carry (2^28 - 1).
const MAX_LEN: usize = (U29_MAX >> 1) as usize;

/// U29 header for an inline value of length/count `n` (clamped to 2^28 - 1).
fn inline_header(n: usize) -> u32 {
    ((n.min(MAX_LEN) as u32) << 1) | 1 // ok: clamped to 2^28 - 1 first
}

impl Encoder {
    /// An encoder with empty tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `value` to `out`.
    ///
    /// Integers outside the 29-bit range are written as doubles (§3.6).
    /// Things the wire cannot express are written as closely as possible:
    /// strings, XML and byte arrays longer than 2^28 - 1 bytes are cut (strings
    /// at a character boundary); an associative-array or dynamic member with an
    /// empty name is skipped (the empty name ends the list on the wire);
    /// containers with more than 2^28 - 1 items are cut.
    pub fn encode(&mut self, value: &Amf3Value, out: &mut impl BufMut) {
        match value {
            Amf3Value::Undefined => out.put_u8(marker::UNDEFINED),
            Amf3Value::Null => out.put_u8(marker::NULL),
            Amf3Value::Boolean(false) => out.put_u8(marker::FALSE),
            Amf3Value::Boolean(true) => out.put_u8(marker::TRUE),
            Amf3Value::Integer(i) if (INT_MIN..=INT_MAX).contains(i) => {
                out.put_u8(marker::INTEGER);
                put_u29(*i as u32, out);
            }
            Amf3Value::Integer(i) => {
                out.put_u8(marker::DOUBLE);
                out.put_f64(f64::from(*i));
            }
            Amf3Value::Double(d) => {
                out.put_u8(marker::DOUBLE);
                out.put_f64(*d);
            }
            Amf3Value::String(s) => {
                out.put_u8(marker::STRING);
                self.put_string(s, out);
            }
            Amf3Value::XmlDocument(s) | Amf3Value::Xml(s) => {
                out.put_u8(if matches!(value, Amf3Value::Xml(_)) {
                    marker::XML
                } else {
                    marker::XML_DOC
                });
                self.objects += 1;
                let s = truncate_str(s, MAX_LEN);
                put_u29(inline_header(s.len()), out);
                out.put_slice(s.as_bytes());
            }
            Amf3Value::Date(ms) => {
                out.put_u8(marker::DATE);
                self.objects += 1;
                put_u29(1, out);
                out.put_f64(*ms);
            }
            Amf3Value::Array { assoc, dense } => {
                out.put_u8(marker::ARRAY);
                self.objects += 1;
                put_u29(inline_header(dense.len()), out);
                for (k, v) in assoc {
                    if !k.is_empty() {
                        self.put_string(k, out);
                        self.encode(v, out);
                    }
                }
                put_u29(1, out);
                for v in dense.iter().take(MAX_LEN) {
                    self.encode(v, out);
                }
            }
            Amf3Value::Object(o) => {
                out.put_u8(marker::OBJECT);
                self.objects += 1;
                self.put_object(o, out);
            }
            Amf3Value::ByteArray(b) => {
                out.put_u8(marker::BYTE_ARRAY);
                self.objects += 1;
                let b = &b[..b.len().min(MAX_LEN)];
                put_u29(inline_header(b.len()), out);
                out.put_slice(b);
            }
            Amf3Value::VectorInt { fixed, items } => {
                out.put_u8(marker::VECTOR_INT);
                self.vector_header(items.len(), *fixed, out);
                for i in items.iter().take(MAX_LEN) {
                    out.put_i32(*i);
                }
            }
            Amf3Value::VectorUint { fixed, items } => {
                out.put_u8(marker::VECTOR_UINT);
                self.vector_header(items.len(), *fixed, out);
                for i in items.iter().take(MAX_LEN) {
                    out.put_u32(*i);
                }
            }
            Amf3Value::VectorDouble { fixed, items } => {
                out.put_u8(marker::VECTOR_DOUBLE);
                self.vector_header(items.len(), *fixed, out);
                for d in items.iter().take(MAX_LEN) {
                    out.put_f64(*d);
                }
            }
            Amf3Value::VectorObject {
                fixed,
                type_name,
                items,
            } => {
                out.put_u8(marker::VECTOR_OBJECT);
                self.vector_header(items.len(), *fixed, out);
                self.put_string(type_name, out);
                for v in items.iter().take(MAX_LEN) {
                    self.encode(v, out);
                }
            }
            Amf3Value::Dictionary { weak_keys, entries } => {
                out.put_u8(marker::DICTIONARY);
                self.vector_header(entries.len(), *weak_keys, out);
                for (k, v) in entries.iter().take(MAX_LEN) {
                    self.encode(k, out);
                    self.encode(v, out);
                }
            }
            Amf3Value::CyclicReference(i) => {
                // Only object-like containers are ever pending; 0x0A is as good as any.
                out.put_u8(marker::OBJECT);
                put_u29((i & (U29_MAX >> 1)) << 1, out);
            }
        }
    }

    fn vector_header(&mut self, n: usize, flag: bool, out: &mut impl BufMut) {
        self.objects += 1;
        put_u29(inline_header(n), out);
        out.put_u8(u8::from(flag));
    }

    /// UTF-8-vr: the empty string always inline, others by reference after their first use.
    fn put_string(&mut self, s: &str, out: &mut impl BufMut) {
        if s.is_empty() {
            put_u29(1, out);
            return;
        }
        if let Some(&i) = self.strings.get(s) {
            put_u29(i << 1, out);
            return;
        }
        let s = truncate_str(s, MAX_LEN);
        // Indexes beyond the U29 range could not be referenced anyway.
        let n = self.strings.len() as u32;
        if n < (U29_MAX >> 1) {
            self.strings.insert(s.to_owned(), n);
        }
        put_u29(inline_header(s.len()), out);
        out.put_slice(s.as_bytes());
    }

    fn put_object(&mut self, o: &Amf3Object, out: &mut impl BufMut) {
        let traits = Traits {
            class_name: o.class_name.clone(),
            dynamic: o.dynamic && !o.externalizable,
            externalizable: o.externalizable,
            sealed: if o.externalizable {
                Vec::new()
            } else {
                o.sealed.iter().map(|(k, _)| k.clone()).collect()
            },
        };
        if let Some(&i) = self.traits.get(&traits) {
            // U29O-traits-ref: index << 2 | 0b01.
            put_u29((i << 2) | 1, out);
        } else {
            let h = if traits.externalizable {
                0b111
            } else {
                let n = traits.sealed.len().min((U29_MAX >> 4) as usize) as u32; // ok: clamped
                (n << 4) | (u32::from(traits.dynamic) << 3) | 0b011
            };
            put_u29(h, out);
            self.put_string(&traits.class_name, out);
            for name in &traits.sealed {
                self.put_string(name, out);
            }
            let n = self.traits.len() as u32;
            self.traits.insert(traits.clone(), n);
        }
        if o.externalizable {
            if let Some(body) = &o.external {
                self.encode(body, out);
            }
            return;
        }
        for (_, v) in &o.sealed {
            self.encode(v, out);
        }
        if traits.dynamic {
            for (k, v) in &o.dynamic_members {
                if !k.is_empty() {
                    self.put_string(k, out);
                    self.encode(v, out);
                }
            }
            put_u29(1, out);
        }
    }
}

/// Appends one AMF3 value to `out` with fresh tables.
pub fn encode(value: &Amf3Value, out: &mut impl BufMut) {
    Encoder::new().encode(value, out);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A string that is not valid UTF-8 keeps its valid parts and names the
    /// invalid bytes; the value around it still decodes.
    #[test]
    fn invalid_utf8_does_not_fail_the_value() {
        // Object, dynamic, anonymous class: "k" -> string 61 ff 62, end.
        let b = [
            0x0a, 0x0b, 0x01, 0x03, b'k', 0x06, 0x07, b'a', 0xff, b'b', 0x01,
        ];
        let (v, used) = decode(&b).unwrap();
        assert_eq!(used, b.len());
        let j = v.to_json();
        assert_eq!(j["k"], "a\\xffb", "{j}");
    }
    use proptest::prelude::*;

    fn enc(v: &Amf3Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode(v, &mut out);
        out
    }

    fn u29_bytes(v: u32) -> Vec<u8> {
        let mut out = Vec::new();
        put_u29(v, &mut out);
        out
    }

    /// U29 encodings worked out by hand from §1.3.1's table.
    #[test]
    fn u29_spec_boundaries() {
        let cases: &[(u32, &[u8])] = &[
            (0, &[0x00]),
            (0x7F, &[0x7F]),
            (0x80, &[0x81, 0x00]),
            (0x3FFF, &[0xFF, 0x7F]),
            (0x4000, &[0x81, 0x80, 0x00]),
            (0x1F_FFFF, &[0xFF, 0xFF, 0x7F]),
            (0x20_0000, &[0x80, 0xC0, 0x80, 0x00]),
            (0x0FFF_FFFF, &[0xBF, 0xFF, 0xFF, 0xFF]),
            (0x1FFF_FFFF, &[0xFF, 0xFF, 0xFF, 0xFF]),
        ];
        for (v, bytes) in cases {
            assert_eq!(u29_bytes(*v), *bytes, "encode {v:#x}");
            let mut d = Decoder::new(bytes);
            assert_eq!(d.u29().unwrap(), *v, "decode {v:#x}");
            assert!(d.is_empty());
        }
    }

    #[test]
    fn integers_signed_and_out_of_range() {
        // -1 is 0x1FFFFFFF in 29-bit two's complement; -2^28 is 0x10000000.
        assert_eq!(enc(&Amf3Value::Integer(-1)), [0x04, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(
            enc(&Amf3Value::Integer(INT_MIN)),
            [0x04, 0xC0, 0x80, 0x80, 0x00]
        );
        assert_eq!(
            enc(&Amf3Value::Integer(INT_MAX)),
            [0x04, 0xBF, 0xFF, 0xFF, 0xFF]
        );
        // The capture's "neg": -7 is 04 ff ff ff f9.
        assert_eq!(
            decode(&[0x04, 0xFF, 0xFF, 0xFF, 0xF9]).unwrap().0,
            Amf3Value::Integer(-7)
        );
        for i in [INT_MAX + 1, INT_MIN - 1, i32::MAX, i32::MIN] {
            let b = enc(&Amf3Value::Integer(i));
            assert_eq!(b[0], 0x05, "{i} must go out as a double");
            assert_eq!(decode(&b).unwrap().0, Amf3Value::Double(f64::from(i)));
        }
    }

    #[test]
    fn strings_by_reference_but_never_the_empty_one() {
        let v = Amf3Value::Array {
            assoc: vec![],
            dense: vec![
                Amf3Value::String("".into()),
                Amf3Value::String("".into()),
                Amf3Value::String("a".into()),
                Amf3Value::String("a".into()),
            ],
        };
        // 09 (4<<1|1) 01(no assoc) 06 01 06 01 06 03 'a' 06 00(ref 0)
        assert_eq!(
            enc(&v),
            [
                0x09, 0x09, 0x01, 0x06, 0x01, 0x06, 0x01, 0x06, 0x03, b'a', 0x06, 0x00
            ]
        );
        assert_eq!(decode(&enc(&v)).unwrap().0, v);
    }

    #[test]
    fn traits_sent_by_reference() {
        let obj = |x: i32| {
            Amf3Value::Object(Box::new(Amf3Object {
                class_name: "P".into(),
                dynamic: false,
                externalizable: false,
                sealed: vec![("x".into(), Amf3Value::Integer(x))],
                dynamic_members: vec![],
                external: None,
            }))
        };
        let v = Amf3Value::Array {
            assoc: vec![],
            dense: vec![obj(1), obj(2)],
        };
        let b = enc(&v);
        // first object: 0a 13 (1 sealed, inline traits) 03 'P' 03 'x' 04 01;
        // second: 0a 01 (traits ref 0) 04 02.
        assert_eq!(
            b,
            [
                0x09, 0x05, 0x01, 0x0A, 0x13, 0x03, b'P', 0x03, b'x', 0x04, 0x01, 0x0A, 0x01, 0x04,
                0x02
            ]
        );
        assert_eq!(decode(&b).unwrap().0, v);
    }

    #[test]
    fn self_reference_is_a_cycle_not_a_hang() {
        // Anonymous dynamic object whose member "a" is object reference 0 (itself).
        let b = [0x0A, 0x0B, 0x01, 0x03, b'a', 0x0A, 0x00, 0x01];
        let (v, n) = decode(&b).unwrap();
        assert_eq!(n, b.len());
        let Amf3Value::Object(o) = &v else {
            panic!("{v:?}")
        };
        assert_eq!(
            o.dynamic_members,
            vec![("a".to_string(), Amf3Value::CyclicReference(0))]
        );
        assert_eq!(enc(&v), b, "a cycle re-encodes as the same reference");
        assert_eq!(v.to_json(), serde_json::json!({"a": {"$ref": 0}}));
    }

    #[test]
    fn reference_to_a_finished_value_is_cloned() {
        // [ [1], ref 1 ]: the inner array is object index 1.
        let b = [0x09, 0x05, 0x01, 0x09, 0x03, 0x01, 0x04, 0x01, 0x09, 0x02];
        let inner = Amf3Value::Array {
            assoc: vec![],
            dense: vec![Amf3Value::Integer(1)],
        };
        assert_eq!(
            decode(&b).unwrap().0,
            Amf3Value::Array {
                assoc: vec![],
                dense: vec![inner.clone(), inner]
            }
        );
    }

    #[test]
    fn bad_references() {
        assert!(matches!(
            decode(&[0x06, 0x04]),
            Err(AmfError::BadReference {
                table: "string",
                index: 2,
                len: 0,
                offset: 1
            })
        ));
        assert!(matches!(
            decode(&[0x09, 0x00]),
            Err(AmfError::BadReference {
                table: "object",
                index: 0,
                ..
            })
        ));
        assert!(matches!(
            decode(&[0x0A, 0x05]),
            Err(AmfError::BadReference {
                table: "traits",
                index: 1,
                ..
            })
        ));
    }

    #[test]
    fn billion_laughs_is_refused_fast() {
        // Outer array of 30 levels; level 0 = 10 integers, level k = 10 references
        // to level k-1 (object index k): 10^30 nodes if expanded naively.
        let mut b = vec![0x09];
        put_u29((30 << 1) | 1, &mut b);
        b.push(0x01);
        b.extend([0x09, 0x15, 0x01]);
        b.extend([0x04, 0x01].repeat(10));
        for k in 1..30u32 {
            b.extend([0x09, 0x15, 0x01]);
            for _ in 0..10 {
                b.push(0x09);
                put_u29(k << 1, &mut b);
            }
        }
        // The work budget, not a clock, is what stops it.
        let r = decode(&b);
        assert!(matches!(r, Err(AmfError::BudgetExceeded { .. })), "{r:?}");
        // The same with a long string referenced over and over.
        let mut b = vec![0x09];
        put_u29((20000 << 1) | 1, &mut b);
        b.push(0x01);
        b.push(0x06);
        put_u29((60000 << 1) | 1, &mut b);
        b.extend(std::iter::repeat_n(b'x', 60000));
        b.extend([0x06, 0x00].repeat(19999));
        assert!(matches!(decode(&b), Err(AmfError::BudgetExceeded { .. })));
    }

    #[test]
    fn budget_leaves_real_sized_data_alone() {
        // 10 000 typed objects (shared traits, repeated strings) decode in full.
        let obj = |i: i32| {
            Amf3Value::Object(Box::new(Amf3Object {
                class_name: "com.example.Row".into(),
                dynamic: true,
                externalizable: false,
                sealed: vec![
                    ("id".into(), Amf3Value::Integer(i)),
                    ("name".into(), Amf3Value::String("row".into())),
                ],
                dynamic_members: vec![("tag".into(), Amf3Value::String(format!("t{}", i % 7)))],
                external: None,
            }))
        };
        let v = Amf3Value::Array {
            assoc: vec![],
            dense: (0..10_000).map(obj).collect(),
        };
        assert_eq!(decode(&enc(&v)).unwrap().0, v);
        // 2 000 references to one 10-item array (about 22 000 units) resolve.
        let mut b = vec![0x09];
        put_u29((2001 << 1) | 1, &mut b);
        b.extend([0x01, 0x09, 0x15, 0x01]);
        b.extend([0x04, 0x01].repeat(10));
        b.extend([0x09, 0x02].repeat(2000));
        let Amf3Value::Array { dense, .. } = decode(&b).unwrap().0 else {
            panic!()
        };
        assert_eq!(dense.len(), 2001);
        assert_eq!(dense[0], dense[2000]);
    }

    #[test]
    fn hostile_counts_and_depth() {
        // Array claiming 2^28-1 dense items in 6 bytes.
        let r = decode(&[0x09, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
        assert!(
            matches!(r, Err(AmfError::CountTooLarge { what: "array", .. })),
            "{r:?}"
        );
        // Vector<double> of 2^28-1 items.
        let r = decode(&[0x0F, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0, 0]);
        assert!(
            matches!(r, Err(AmfError::CountTooLarge { what: "vector", .. })),
            "{r:?}"
        );
        // ByteArray / string / XML of 2^28-1 bytes in a few bytes.
        for m in [0x0C, 0x06, 0x0B] {
            let r = decode(&[m, 0xFF, 0xFF, 0xFF, 0xFF, 0x00]);
            assert!(matches!(r, Err(AmfError::Truncated { .. })), "{r:?}");
        }
        // Dictionary of 2^28-1 entries.
        let r = decode(&[0x11, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x01]);
        assert!(matches!(r, Err(AmfError::CountTooLarge { .. })), "{r:?}");
        // Sealed member count 2^24.
        let r = decode(&[0x0A, 0xFF, 0xFF, 0xFF, 0xF3, 0x01]);
        assert!(matches!(r, Err(AmfError::CountTooLarge { .. })), "{r:?}");
        // 100 000 nested arrays: an error, not a stack overflow.
        let b = [0x09, 0x03, 0x01].repeat(100_000);
        let r = decode(&b);
        assert!(
            matches!(
                r,
                Err(AmfError::TooDeep {
                    max: MAX_AMF_DEPTH,
                    ..
                })
            ),
            "{r:?}"
        );
        // Unknown externalizable class.
        let mut b = vec![0x0A, 0x07];
        b.push(0x07);
        b.extend(b"a.B");
        assert!(matches!(decode(&b), Err(AmfError::Externalizable { .. })));
    }

    #[test]
    fn known_externalizable_array_collection() {
        let v = Amf3Value::Object(Box::new(Amf3Object {
            class_name: "flex.messaging.io.ArrayCollection".into(),
            dynamic: false,
            externalizable: true,
            sealed: vec![],
            dynamic_members: vec![],
            external: Some(Box::new(Amf3Value::Array {
                assoc: vec![],
                dense: vec![Amf3Value::Integer(5)],
            })),
        }));
        let b = enc(&v);
        assert_eq!(&b[..2], [0x0A, 0x07]);
        assert_eq!(decode(&b).unwrap().0, v);
    }

    #[test]
    fn json_forms() {
        let v = Amf3Value::Array {
            assoc: vec![("k".into(), Amf3Value::Double(f64::NAN))],
            dense: vec![Amf3Value::ByteArray(vec![0xAB, 0x01]), Amf3Value::Date(5.0)],
        };
        assert_eq!(
            serde_json::to_string(&v.to_json()).unwrap(),
            r#"{"k":null,"0":{"$bytes":"ab01"},"1":{"$date":5.0}}"#
        );
    }

    fn finite() -> impl Strategy<Value = f64> {
        any::<f64>().prop_filter("NaN is not equal to itself", |f| !f.is_nan())
    }

    /// Arbitrary AMF3 values of bounded depth and size (no cyclic references,
    /// which only arise from wire input).
    pub(crate) fn arb_amf3() -> impl Strategy<Value = Amf3Value> {
        let name = "\\PC{1,8}";
        let leaf = prop_oneof![
            Just(Amf3Value::Undefined),
            Just(Amf3Value::Null),
            any::<bool>().prop_map(Amf3Value::Boolean),
            (INT_MIN..=INT_MAX).prop_map(Amf3Value::Integer),
            finite().prop_map(Amf3Value::Double),
            "\\PC{0,12}".prop_map(Amf3Value::String),
            prop_oneof!["[a-c]{0,2}", "\\PC{0,3}"].prop_map(Amf3Value::String),
            "\\PC{0,12}".prop_map(Amf3Value::XmlDocument),
            "\\PC{0,12}".prop_map(Amf3Value::Xml),
            finite().prop_map(Amf3Value::Date),
            prop::collection::vec(any::<u8>(), 0..20).prop_map(Amf3Value::ByteArray),
            (any::<bool>(), prop::collection::vec(any::<i32>(), 0..6))
                .prop_map(|(fixed, items)| Amf3Value::VectorInt { fixed, items }),
            (any::<bool>(), prop::collection::vec(any::<u32>(), 0..6))
                .prop_map(|(fixed, items)| Amf3Value::VectorUint { fixed, items }),
            (any::<bool>(), prop::collection::vec(finite(), 0..6))
                .prop_map(|(fixed, items)| Amf3Value::VectorDouble { fixed, items }),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            let members = prop::collection::vec((name, inner.clone()), 0..4);
            prop_oneof![
                (members.clone(), prop::collection::vec(inner.clone(), 0..4))
                    .prop_map(|(assoc, dense)| Amf3Value::Array { assoc, dense }),
                (
                    prop_oneof![Just(String::new()), Just("a.B".to_string()), "\\PC{0,6}"],
                    any::<bool>(),
                    prop::collection::vec(("\\PC{0,6}", inner.clone()), 0..3),
                    members.clone(),
                )
                    .prop_map(|(class_name, dynamic, sealed, dynamic_members)| {
                        Amf3Value::Object(Box::new(Amf3Object {
                            class_name,
                            dynamic,
                            externalizable: false,
                            sealed,
                            dynamic_members: if dynamic { dynamic_members } else { vec![] },
                            external: None,
                        }))
                    }),
                inner
                    .clone()
                    .prop_map(|v| Amf3Value::Object(Box::new(Amf3Object {
                        class_name: "flex.messaging.io.ObjectProxy".into(),
                        dynamic: false,
                        externalizable: true,
                        sealed: vec![],
                        dynamic_members: vec![],
                        external: Some(Box::new(v)),
                    }))),
                (
                    any::<bool>(),
                    "\\PC{0,4}",
                    prop::collection::vec(inner.clone(), 0..4)
                )
                    .prop_map(|(fixed, type_name, items)| {
                        Amf3Value::VectorObject {
                            fixed,
                            type_name,
                            items,
                        }
                    }),
                (
                    any::<bool>(),
                    prop::collection::vec((inner.clone(), inner), 0..3)
                )
                    .prop_map(|(weak_keys, entries)| Amf3Value::Dictionary { weak_keys, entries }),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trip(v in arb_amf3()) {
            let b = enc(&v);
            let (d, n) = decode(&b).unwrap();
            prop_assert_eq!(n, b.len());
            prop_assert_eq!(&d, &v);
            // Our encoder's output re-encodes identically (references included).
            prop_assert_eq!(enc(&d), b);
        }

        #[test]
        fn every_truncated_prefix_is_a_clean_error(v in arb_amf3()) {
            let b = enc(&v);
            for cut in 0..b.len() {
                match decode(&b[..cut]) {
                    Err(AmfError::Truncated { .. } | AmfError::CountTooLarge { .. }) => {}
                    other => prop_assert!(false, "prefix {cut}/{}: {other:?}", b.len()),
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&b);
        }
    }
}
