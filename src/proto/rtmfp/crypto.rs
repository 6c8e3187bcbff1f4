//! The Flash cryptography profile (RFC 7425 §4) and the plain test profile
//! of zenomt/rtmfp-cpp: session id scrambling (RFC 7016 §2.2.2), AES-128-CBC
//! with a zero IV and 0xff padding, the 16-bit checksum with rtmfp-cpp's
//! odd-length rule, session sequence numbers, HMAC-SHA256 tags, key
//! derivation (RFC 7425 §4.6) and Diffie-Hellman (groups 2, 14, 16).

use aes::Aes128;
use aes::cipher::common::array::Array;
use aes::cipher::consts::U16;
use aes::cipher::{BlockCipherDecrypt, BlockModeEncrypt, InnerIvInit};
use hmac::{Hmac, KeyInit, Mac};
use num_bigint::BigUint;
use sha2::Sha256;

/// The default session key, RFC 7425 §4.1: "Adobe Systems 02".
pub const DEFAULT_KEY: [u8; 16] = *b"Adobe Systems 02";

/// The session id of a datagram: the first three 32-bit words XORed
/// (short payloads are zero-padded, as rtmfp-cpp does).
pub fn unscramble_sid(payload: &[u8]) -> [u8; 4] {
    let mut w = [0u8; 12];
    let n = payload.len().min(12);
    w[..n].copy_from_slice(&payload[..n]);
    [
        w[0] ^ w[4] ^ w[8],
        w[1] ^ w[5] ^ w[9],
        w[2] ^ w[6] ^ w[10],
        w[3] ^ w[7] ^ w[11],
    ]
}

/// The scrambled session id for `sid` given the first 8 bytes after it.
pub fn scramble_sid(sid: [u8; 4], after: &[u8]) -> [u8; 4] {
    let mut w = [0u8; 8];
    let n = after.len().min(8);
    w[..n].copy_from_slice(&after[..n]);
    [
        sid[0] ^ w[0] ^ w[4],
        sid[1] ^ w[1] ^ w[5],
        sid[2] ^ w[2] ^ w[6],
        sid[3] ^ w[3] ^ w[7],
    ]
}

/// The 16-bit one's-complement sum of rtmfp-cpp (Checksums.cpp:61-95):
/// big-endian words, and an odd final byte added as the LOW byte.
pub fn checksum(b: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut it = b.chunks_exact(2);
    for w in &mut it {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [x] = it.remainder() {
        sum += u64::from(*x);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An AES-128 key ready for CBC with a zero IV.
#[derive(Clone)]
pub struct Cipher(Aes128);

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(..)")
    }
}

impl Cipher {
    /// A cipher for `key`.
    pub fn new(key: &[u8; 16]) -> Self {
        Cipher(Aes128::new(&Array::from(*key)))
    }

    /// Decrypts `ct` (a multiple of 16 bytes) into `out` (replaced): CBC
    /// with a zero IV. The blocks are decrypted in parallel, then chained.
    pub fn decrypt(&self, ct: &[u8], out: &mut Vec<u8>) {
        let n = ct.len() / 16 * 16;
        out.clear();
        out.resize(n, 0);
        let (inb, _) = Array::<u8, U16>::slice_as_chunks(&ct[..n]);
        let (outb, _) = Array::<u8, U16>::slice_as_chunks_mut(&mut out[..n]);
        if self.0.decrypt_blocks_b2b(inb, outb).is_err() {
            out.clear();
            return;
        }
        for i in 16..n {
            out[i] ^= ct[i - 16];
        }
    }

    /// Encrypts `pt` (a multiple of 16 bytes) in place: CBC, zero IV.
    pub fn encrypt(&self, pt: &mut [u8]) {
        let n = pt.len() / 16 * 16;
        let (blocks, _) = Array::<u8, U16>::slice_as_chunks_mut(&mut pt[..n]);
        let mut enc =
            cbc::Encryptor::<Aes128>::inner_iv_init(self.0.clone(), &Array::from([0u8; 16]));
        enc.encrypt_blocks(blocks);
    }
}

/// HMAC-SHA256 of the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return [0; 32];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Keys and framing of one direction of a session (from a key log or a
/// handshake). Its `Debug` shows no key material.
#[derive(Clone)]
pub struct DirKeys {
    /// AES key.
    pub cipher: Cipher,
    /// HMAC key and tag length, when this direction carries tags.
    pub hmac: Option<([u8; 32], usize)>,
    /// Packets start with a session sequence number.
    pub sseq: bool,
}

impl std::fmt::Debug for DirKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirKeys")
            .field("hmac_len", &self.hmac.as_ref().map(|h| h.1))
            .field("sseq", &self.sseq)
            .finish_non_exhaustive()
    }
}

impl DirKeys {
    /// The startup framing: default key, checksum, no sequence number.
    pub fn default_key() -> Self {
        DirKeys {
            cipher: Cipher::new(&DEFAULT_KEY),
            hmac: None,
            sseq: false,
        }
    }
}

/// Whether a check passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Verified.
    Ok,
    /// Present and wrong.
    Bad,
    /// Not present in this framing.
    None,
    /// Plain profile: differs from the unsalted sum by the salt.
    Salted(u16),
}

impl Check {
    /// `ok`, `bad`, `none`, `salted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Ok => "ok",
            Check::Bad => "bad",
            Check::None => "none",
            Check::Salted(_) => "salted",
        }
    }
}

/// A decrypted datagram: the cleartext block and its framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// Session sequence number, if this direction carries one.
    pub sseq: Option<u64>,
    /// The checksum verdict.
    pub checksum: Check,
    /// The HMAC verdict.
    pub hmac: Check,
    /// Bytes before the packet (sequence number + checksum).
    pub margin_len: usize,
}

/// Why a datagram could not be opened with some keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Too short, or the ciphertext is not a non-zero multiple of 16.
    #[error("not a whole number of AES blocks")]
    BadLength,
    /// The HMAC tag did not verify.
    #[error("HMAC does not verify")]
    BadHmac,
    /// The checksum did not verify.
    #[error("checksum does not verify")]
    BadChecksum,
    /// The sequence number did not parse.
    #[error("bad session sequence number")]
    BadSseq,
}

/// Opens a Flash-profile datagram (`payload` = UDP payload, SSID included)
/// with `keys`; the cleartext block goes to `plain`.
pub fn open_flash(
    payload: &[u8],
    keys: &DirKeys,
    plain: &mut Vec<u8>,
) -> Result<Opened, OpenError> {
    let tag_len = keys.hmac.as_ref().map_or(0, |h| h.1);
    if payload.len() < 4 + tag_len {
        return Err(OpenError::BadLength);
    }
    let ct = &payload[4..payload.len() - tag_len];
    if ct.is_empty() || !ct.len().is_multiple_of(16) {
        return Err(OpenError::BadLength);
    }
    let hmac = match &keys.hmac {
        Some((k, n)) => {
            let t = hmac_sha256(k, &[ct]);
            if t[..*n] != payload[payload.len() - n..] {
                return Err(OpenError::BadHmac);
            }
            Check::Ok
        }
        None => Check::None,
    };
    keys.cipher.decrypt(ct, plain);
    let mut pos = 0;
    let sseq = if keys.sseq {
        let (v, n) = super::vlu::read_vlu(plain).ok_or(OpenError::BadSseq)?;
        pos = n;
        Some(v)
    } else {
        None
    };
    let checksum = if keys.hmac.is_none() {
        if plain.len() < pos + 2 {
            return Err(OpenError::BadChecksum);
        }
        let want = u16::from_be_bytes([plain[pos], plain[pos + 1]]);
        pos += 2;
        if checksum(&plain[pos..]) != want {
            return Err(OpenError::BadChecksum);
        }
        Check::Ok
    } else {
        Check::None
    };
    Ok(Opened {
        sseq,
        checksum,
        hmac,
        margin_len: pos,
    })
}

/// Seals a Flash-profile packet: `[sseq] [checksum] packet 0xff..` encrypted
/// with `keys`, SSID scrambled, HMAC appended.
pub fn seal_flash(sid: [u8; 4], packet: &[u8], sseq: u64, keys: &DirKeys) -> Vec<u8> {
    let mut block = Vec::with_capacity(packet.len() + 32);
    if keys.sseq {
        super::vlu::write_vlu(&mut block, sseq);
    }
    let ck_at = block.len();
    if keys.hmac.is_none() {
        block.extend([0, 0]);
    }
    let body = block.len();
    block.extend_from_slice(packet);
    while !block.len().is_multiple_of(16) {
        block.push(0xff);
    }
    if keys.hmac.is_none() {
        let c = checksum(&block[body..]);
        block[ck_at..ck_at + 2].copy_from_slice(&c.to_be_bytes());
    }
    keys.cipher.encrypt(&mut block);
    let mut out = scramble_sid(sid, &block).to_vec();
    out.extend_from_slice(&block);
    if let Some((k, n)) = &keys.hmac {
        let t = hmac_sha256(k, &[&block]);
        out.extend_from_slice(&t[..*n]);
    }
    out
}

/// Length of the plain profile's trailer: 16 bytes of 0xff and a checksum.
pub const PLAIN_TRAILER: usize = 18;

/// Opens a PlainCryptoAdapter datagram (`SSSS | packet | 16 x 0xff |
/// cksum16`): the packet's length, and the checksum verdict (`Salted` when
/// the sum differs: rtmfp-cpp adds the peer's 2-byte salt after keying).
/// `None` when the trailer is not there.
pub fn open_plain(payload: &[u8]) -> Option<(usize, Check)> {
    if payload.len() < 4 + 1 + PLAIN_TRAILER {
        return None;
    }
    let end = payload.len() - 2;
    if payload[end - 16..end].iter().any(|&b| b != 0xff) {
        return None;
    }
    let want = u16::from_be_bytes([payload[end], payload[end + 1]]);
    let sum = checksum(&payload[4..end]);
    let check = if sum == want {
        Check::Ok
    } else {
        Check::Salted(want.wrapping_sub(sum))
    };
    Some((end - 16 - 4, check))
}

/// Session keys derived at the end of the handshake (RFC 7425 §4.6;
/// rtmfp-cpp FlashCryptoAdapter.cpp:878-918).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// Key for packets this end sends.
    pub encrypt: [u8; 16],
    /// Key for packets this end receives.
    pub decrypt: [u8; 16],
    /// HMAC key for packets sent (used when negotiated).
    pub tx_hmac: [u8; 32],
    /// HMAC key for packets received.
    pub rx_hmac: [u8; 32],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SessionKeys {{ encrypt: {:02x}{:02x}…, decrypt: {:02x}{:02x}… }}",
            self.encrypt[0], self.encrypt[1], self.decrypt[0], self.decrypt[1]
        )
    }
}

/// Derives the keys of one end from the shared secret `s` (minimal
/// big-endian bytes), this end's keying component `near` and the far end's
/// `far`.
pub fn derive_keys(s: &[u8], near: &[u8], far: &[u8]) -> SessionKeys {
    let enc = hmac_sha256(s, &[&hmac_sha256(far, &[near])]);
    let dec = hmac_sha256(s, &[&hmac_sha256(near, &[far])]);
    let mut encrypt = [0u8; 16];
    let mut decrypt = [0u8; 16];
    encrypt.copy_from_slice(&enc[..16]);
    decrypt.copy_from_slice(&dec[..16]);
    SessionKeys {
        encrypt,
        decrypt,
        tx_hmac: hmac_sha256(s, &[&enc]),
        rx_hmac: hmac_sha256(s, &[&dec]),
    }
}

const MODP_1024: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF";
const MODP_2048: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF";
const MODP_4096: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D788719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA993B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF";

/// A Diffie-Hellman group of RFC 7425 §4.6 (2, 14 or 16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhGroup {
    /// Group number.
    pub id: u64,
    p: BigUint,
}

impl DhGroup {
    /// The group with this number, if known.
    pub fn new(id: u64) -> Option<Self> {
        let hex = match id {
            2 => MODP_1024,
            14 => MODP_2048,
            16 => MODP_4096,
            _ => return None,
        };
        let p = BigUint::parse_bytes(hex.as_bytes(), 16)?;
        Some(DhGroup { id, p })
    }

    /// Private exponent bits rtmfp-cpp uses for this group.
    pub fn private_bits(&self) -> usize {
        match self.id {
            2 => 224,
            14 => 320,
            _ => 480,
        }
    }

    /// Public key `2^x mod p` for private bytes `x`, minimal big-endian.
    pub fn public(&self, private: &[u8]) -> Vec<u8> {
        BigUint::from(2u32)
            .modpow(&BigUint::from_bytes_be(private), &self.p)
            .to_bytes_be()
    }

    /// Shared secret `y^x mod p`, minimal big-endian; `None` when the peer's
    /// key fails the checks of RFC 7425 §4.6.2 as rtmfp-cpp applies them.
    pub fn shared(&self, private: &[u8], peer: &[u8]) -> Option<Vec<u8>> {
        let y = BigUint::from_bytes_be(peer);
        let lo = BigUint::from(1u32) << 24u32;
        if y < lo || y > &self.p - &lo {
            return None;
        }
        let ones: u64 = peer.iter().map(|b| u64::from(b.count_ones())).sum();
        let zeros = (y.bits() - ones) as i64;
        if ones < 16 || zeros < 16 {
            return None;
        }
        Some(
            y.modpow(&BigUint::from_bytes_be(private), &self.p)
                .to_bytes_be(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn odd_checksum_low_byte() {
        // 0x0102 + 0x03 (low byte), complemented.
        assert_eq!(checksum(&[1, 2, 3]), !0x0105);
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn derived_keys_are_mirrored() {
        let a = derive_keys(b"secret", b"skic", b"skrc");
        let b = derive_keys(b"secret", b"skrc", b"skic");
        assert_eq!(a.encrypt, b.decrypt);
        assert_eq!(a.tx_hmac, b.rx_hmac);
    }

    #[test]
    fn dh_agrees() {
        for g in [2, 14] {
            let g = DhGroup::new(g).unwrap();
            let a = [0x5a; 28];
            let b = [0xa7; 28];
            let (pa, pb) = (g.public(&a), g.public(&b));
            assert_eq!(g.shared(&a, &pb), g.shared(&b, &pa));
            assert!(g.shared(&a, &[1]).is_none());
        }
    }

    proptest! {
        #[test]
        fn seal_open_round_trip(pkt in proptest::collection::vec(any::<u8>(), 1..200), sseq in 0u64..100_000, h in 0usize..3, s: bool) {
            let keys = DirKeys {
                cipher: Cipher::new(&[7; 16]),
                hmac: if h == 0 { None } else { Some(([3; 32], 4 + 6 * h)) },
                sseq: s,
            };
            let d = seal_flash([1, 2, 3, 4], &pkt, sseq, &keys);
            prop_assert_eq!(unscramble_sid(&d), [1, 2, 3, 4]);
            let mut plain = Vec::new();
            let o = open_flash(&d, &keys, &mut plain).unwrap();
            prop_assert_eq!(o.sseq, s.then_some(sseq));
            prop_assert_eq!(&plain[o.margin_len..o.margin_len + pkt.len()], &pkt[..]);
            for cut in 0..d.len() {
                let _ = open_flash(&d[..cut], &keys, &mut plain);
            }
        }
    }
}
