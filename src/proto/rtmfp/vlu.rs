//! Common encodings of RFC 7016 §2.1: variable-length unsigned integers
//! (VLU, §2.1.2), fields (a VLU length then bytes), option lists (§2.1.3)
//! and socket addresses (§2.1.5). Every reader is bounds-checked and returns
//! `None` on truncation; nothing here allocates more than the input holds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Most bytes of a VLU this decoder accepts (a `u64` needs at most 10).
pub const MAX_VLU_LEN: usize = 10;

/// Reads a VLU from the start of `b`: the value and the bytes it took.
/// `None` when `b` ends inside it or the value does not fit in 64 bits.
pub fn read_vlu(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &x) in b.iter().enumerate().take(MAX_VLU_LEN) {
        if v > (u64::MAX >> 7) {
            return None;
        }
        v = (v << 7) | u64::from(x & 0x7f);
        if x & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Appends `v` as a VLU.
pub fn write_vlu(out: &mut Vec<u8>, v: u64) {
    let mut tmp = [0u8; MAX_VLU_LEN];
    let mut n = 0;
    let mut x = v;
    loop {
        tmp[n] = (x & 0x7f) as u8;
        n += 1;
        x >>= 7;
        if x == 0 {
            break;
        }
    }
    for i in (0..n).rev() {
        out.push(tmp[i] | if i > 0 { 0x80 } else { 0 });
    }
}

/// Bytes `v` takes as a VLU.
pub fn vlu_len(v: u64) -> usize {
    let mut n = 1;
    let mut x = v >> 7;
    while x != 0 {
        n += 1;
        x >>= 7;
    }
    n
}

/// A cursor over a byte slice for the readers of this module.
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `b`.
    pub fn new(b: &'a [u8]) -> Self {
        Cursor { b, pos: 0 }
    }
    /// Position from the start.
    pub fn pos(&self) -> usize {
        self.pos
    }
    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }
    /// The bytes left, consumed.
    pub fn rest(&mut self) -> &'a [u8] {
        let r = &self.b[self.pos..];
        self.pos = self.b.len();
        r
    }
    /// One byte.
    pub fn u8(&mut self) -> Option<u8> {
        let x = *self.b.get(self.pos)?;
        self.pos += 1;
        Some(x)
    }
    /// A big-endian u16.
    pub fn u16(&mut self) -> Option<u16> {
        let s = self.bytes(2)?;
        Some(u16::from_be_bytes([s[0], s[1]]))
    }
    /// `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.remaining() < n {
            return None;
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Some(s)
    }
    /// A VLU.
    pub fn vlu(&mut self) -> Option<u64> {
        let (v, n) = read_vlu(&self.b[self.pos..])?;
        self.pos += n;
        Some(v)
    }
    /// A field: VLU length then that many bytes.
    pub fn field(&mut self) -> Option<&'a [u8]> {
        let save = self.pos;
        let n = self.vlu()?;
        match usize::try_from(n).ok().and_then(|n| self.bytes(n)) {
            Some(s) => Some(s),
            None => {
                self.pos = save;
                None
            }
        }
    }
    /// An address of RFC 7016 §2.1.5.
    pub fn address(&mut self) -> Option<Address> {
        let save = self.pos;
        let r = (|| {
            let flags = self.u8()?;
            let ip = if flags & 0x80 != 0 {
                let a: [u8; 16] = self.bytes(16)?.try_into().ok()?;
                IpAddr::V6(Ipv6Addr::from(a))
            } else {
                let a: [u8; 4] = self.bytes(4)?.try_into().ok()?;
                IpAddr::V4(Ipv4Addr::from(a))
            };
            let port = self.u16()?;
            Some(Address {
                addr: SocketAddr::new(ip, port),
                origin: flags & 0x03,
            })
        })();
        if r.is_none() {
            self.pos = save;
        }
        r
    }
}

/// An address with its origin (RFC 7016 §2.1.5): 0 unknown, 1 reported,
/// 2 observed, 3 relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// IP address and port.
    pub addr: SocketAddr,
    /// Origin bits.
    pub origin: u8,
}

impl Address {
    /// Appends the wire form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self.addr.ip() {
            IpAddr::V4(a) => {
                out.push(self.origin & 3);
                out.extend(a.octets());
            }
            IpAddr::V6(a) => {
                out.push(0x80 | (self.origin & 3));
                out.extend(a.octets());
            }
        }
        out.extend(self.addr.port().to_be_bytes());
    }
}

/// One option of an option list: type and value.
pub type Opt = (u64, Vec<u8>);

/// How an option list ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListEnd {
    /// At a marker (a zero length); the bytes after it are not options.
    Marker,
    /// At the end of the input.
    End,
}

/// Most options one list may hold (keeps hostile input bounded; real lists
/// hold fewer than ten).
pub const MAX_OPTIONS: usize = 256;

/// Reads an option list (RFC 7016 §2.1.3): `VLU length | VLU type | value`
/// until a marker or the end of `b`. Returns the options, where it stopped
/// (bytes consumed, marker included) and how. `Err` names what was cut.
pub fn read_options(b: &[u8]) -> Result<(Vec<Opt>, usize, ListEnd), &'static str> {
    let mut c = Cursor::new(b);
    let mut out = Vec::new();
    while c.remaining() > 0 {
        let len = c.vlu().ok_or("truncated option length")?;
        if len == 0 {
            return Ok((out, c.pos(), ListEnd::Marker));
        }
        let body = usize::try_from(len)
            .ok()
            .and_then(|n| c.bytes(n))
            .ok_or("truncated option")?;
        let (ty, n) = read_vlu(body).ok_or("truncated option type")?;
        if out.len() >= MAX_OPTIONS {
            return Err("too many options");
        }
        out.push((ty, body[n..].to_vec()));
    }
    Ok((out, c.pos(), ListEnd::End))
}

/// Appends one option.
pub fn write_option(out: &mut Vec<u8>, ty: u64, value: &[u8]) {
    write_vlu(out, (vlu_len(ty) + value.len()) as u64);
    write_vlu(out, ty);
    out.extend_from_slice(value);
}

/// Appends a field (VLU length + bytes).
pub fn write_field(out: &mut Vec<u8>, value: &[u8]) {
    write_vlu(out, value.len() as u64);
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vlu_known() {
        assert_eq!(read_vlu(&[0x7f]), Some((127, 1)));
        assert_eq!(read_vlu(&[0x84, 0x02]), Some((514, 2)));
        assert_eq!(read_vlu(&[0x80]), None);
        assert_eq!(read_vlu(&[0xff; 11]), None);
    }

    #[test]
    fn options_known() {
        // SKIC of the notes: `02 1d 10 | 03 1a 07 10 | 02 1e 07`.
        let b = [0x02, 0x1d, 0x10, 0x03, 0x1a, 0x07, 0x10, 0x02, 0x1e, 0x07];
        let (o, n, end) = read_options(&b).unwrap();
        assert_eq!(n, b.len());
        assert_eq!(end, ListEnd::End);
        assert_eq!(o[0], (0x1d, vec![0x10]));
        assert_eq!(o[1], (0x1a, vec![0x07, 0x10]));
    }

    proptest! {
        #[test]
        fn vlu_round_trip(v: u64) {
            let mut b = Vec::new();
            write_vlu(&mut b, v);
            prop_assert_eq!(b.len(), vlu_len(v));
            prop_assert_eq!(read_vlu(&b), Some((v, b.len())));
            for i in 0..b.len() {
                prop_assert_eq!(read_vlu(&b[..i]), None);
            }
        }

        #[test]
        fn readers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = read_vlu(&b);
            let _ = read_options(&b);
            let mut c = Cursor::new(&b);
            let _ = c.field();
            let _ = c.address();
            let _ = c.vlu();
        }

        #[test]
        fn options_round_trip(opts in proptest::collection::vec((0u64..100_000, proptest::collection::vec(any::<u8>(), 0..40)), 0..8)) {
            let mut b = Vec::new();
            for (t, v) in &opts {
                write_option(&mut b, *t, v);
            }
            let (o, n, _) = read_options(&b).unwrap();
            prop_assert_eq!(n, b.len());
            prop_assert_eq!(o, opts);
            for i in 0..b.len() {
                let _ = read_options(&b[..i]);
            }
        }
    }
}

/// FNV-1a, for the small fixed keys (addresses, session ids) of the RTMFP
/// maps: much cheaper than SipHash, and the keys come from a capture the
/// user chose, not from an attacker able to aim at collisions in a way
/// that matters (a bucket degrades to a list, nothing worse).
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A `HashMap` hasher of [`Fnv`].
pub type FnvBuild = std::hash::BuildHasherDefault<Fnv>;
