//! One UDP payload as RTMFP (RFC 7016 §2.2.2-§2.2.4): unscramble the session
//! id, open the encryption framing with the keys that fit (session keys
//! first, then the default key; the plain test profile by its trailer), and
//! decode the packet. A payload no key opens is reported sealed, with what
//! is visible (session id, size).

use bytes::Bytes;

use super::chunk::{Packet, PacketError, decode_packet_shared};
use super::crypto::{Check, DirKeys, open_flash, open_plain, unscramble_sid};

/// Which key opened a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsed {
    /// The default key "Adobe Systems 02" (startup packets).
    Default,
    /// A session key (from a key log or a handshake).
    Session,
    /// The plain test profile (no encryption).
    Plain,
}

impl KeyUsed {
    /// `default`, `session`, `plain`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUsed::Default => "default",
            KeyUsed::Session => "session",
            KeyUsed::Plain => "plain",
        }
    }
}

/// An opened datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// Unscrambled session id (4 bytes as on the wire).
    pub sid: [u8; 4],
    /// Key that opened it.
    pub key: KeyUsed,
    /// Session sequence number.
    pub sseq: Option<u64>,
    /// Checksum verdict.
    pub checksum: Check,
    /// HMAC verdict.
    pub hmac: Check,
    /// The bytes before the packet (sequence number and checksum).
    pub margin: Vec<u8>,
    /// The cleartext after the margin: the packet and its padding.
    pub plain: Bytes,
    /// The packet.
    pub packet: Result<Packet, PacketError>,
}

/// Opens `payload` with `session` keys (tried in order), then the default
/// key. `buf` is scratch space reused between calls. `None`: no key fits.
pub fn open(payload: &[u8], session: &[DirKeys], buf: &mut Vec<u8>) -> Option<Opened> {
    let sid = unscramble_sid(payload);
    if let Some((len, checksum)) = open_plain(payload) {
        let body = Bytes::copy_from_slice(&payload[4..4 + len + 16]);
        let packet = decode_packet_shared(&body);
        if plausible(&packet) {
            return Some(Opened {
                sid,
                key: KeyUsed::Plain,
                sseq: None,
                checksum,
                hmac: Check::None,
                margin: Vec::new(),
                plain: body,
                packet,
            });
        }
    }
    if sid != [0; 4] {
        for k in session {
            if let Ok(o) = open_flash(payload, k, buf) {
                // Without a checksum, the HMAC vouches for the ciphertext
                // only: a wrong decryption key beside the right HMAC key
                // gives noise. Noise is not a packet (a mode, chunks that
                // end where the packet does): the next key is tried, and
                // with none the packet does not open.
                let unchecked = o.checksum == Check::None;
                let opened = finish(sid, KeyUsed::Session, o, buf);
                if !unchecked || whole(&opened.packet) {
                    return Some(opened);
                }
            }
        }
    }
    let d = DirKeys::default_key();
    let o = open_flash(payload, &d, buf).ok()?;
    Some(finish(sid, KeyUsed::Default, o, buf))
}

/// Opens with the default key only (startup packets).
pub fn open_default(payload: &[u8], buf: &mut Vec<u8>) -> Option<Opened> {
    let o = open_flash(payload, &DirKeys::default_key(), buf).ok()?;
    Some(finish(unscramble_sid(payload), KeyUsed::Default, o, buf))
}

fn plausible(p: &Result<Packet, PacketError>) -> bool {
    matches!(p, Ok(p) if p.mode() != 0 && !p.chunks.is_empty())
}

/// A session packet as a sender makes one: a session mode, chunks, and a
/// chunk list that ends where the packet does.
fn whole(p: &Result<Packet, PacketError>) -> bool {
    matches!(p, Ok(p) if matches!(p.mode(), 1 | 2)
        && !p.chunks.is_empty()
        && !matches!(p.end, super::chunk::ChunkListEnd::Overlong { .. }))
}

fn finish(sid: [u8; 4], key: KeyUsed, o: super::crypto::Opened, buf: &mut Vec<u8>) -> Opened {
    // The packet keeps the buffer (user data shares it): no copy.
    let all = Bytes::from(std::mem::take(buf));
    Opened {
        sid,
        key,
        sseq: o.sseq,
        checksum: o.checksum,
        hmac: o.hmac,
        margin: all[..o.margin_len].to_vec(),
        plain: all.slice(o.margin_len..),
        packet: decode_packet_shared(&all.slice(o.margin_len..)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut buf = Vec::new();
            let _ = open(&b, &[DirKeys::default_key()], &mut buf);
        }
    }
}
