//! The RTMP handshake (RTMP 1.0 §5.2: C0/S0, C1/S1, C2/S2), sans-IO, with the
//! Flash Player 9 "digest" handshake that real servers and clients speak.
//!
//! The spec's *simple* handshake is C0 (version byte 3), C1 = time (4 bytes) +
//! zero (4) + 1528 random bytes, C2 = an echo of S1 (and the same for S0/S1/S2).
//! The *digest* handshake (not in the spec; Flash Player 9 and later, FFmpeg,
//! librtmp, nginx-rtmp) puts a version in C1/S1 bytes 4-7 and an HMAC-SHA256
//! digest of the packet at a position derived from the packet itself, in one of
//! two layouts ([`DigestScheme`]); C2/S2 then end with an HMAC keyed by the peer's
//! digest. `PROTOCOL-NOTES.md` ("RTMP handshake") has the facts and sources; the
//! keys are those of librtmp `handshake.h`, FFmpeg `rtmpproto.c` and nginx-rtmp
//! `ngx_rtmp_handshake.c`, checked here against real packets in
//! `testdata/handshake/`.
//!
//! Nothing here reads a clock or draws random numbers: constructors take the
//! caller's `now_ms` (the RTMP epoch time put in C1/S1) and a random source,
//! [`ClientHandshake::handle_input`]/[`ServerHandshake::handle_input`] take the
//! time the bytes arrived, and the bytes to send come out of `poll_transmit`.
//! [`inspect_c1s1`] and [`inspect_c2s2`] analyse packets passively (for `dump`,
//! which sees both directions of a capture).
//!
//! What real peers do (seen in the captures in `testdata/rtmp/`):
//! - FFmpeg 5.1 client: C1 time 0, version 9.0.124.2, digest scheme 0. As a
//!   *player* it checks S1's digest and S2's HMAC and sends a digest C2; as a
//!   *publisher* it sends S1 back verbatim as C2 (no HMAC).
//! - librtmp/rtmpdump 2.4 on plain `rtmp://`: simple handshake (version bytes
//!   zero, C1 time = its uptime), C2 = S1 verbatim.
//! - nginx-rtmp 1.2.2: to a digest C1 it answers S1 = its epoch + 13.14.10.13 +
//!   digest scheme 0, S2 = random + HMAC (so S2's time field is random). To a
//!   C1 with zero version bytes (or whose digest does not verify) it answers
//!   S1 = S2 = C1 verbatim. It never checks C2.

use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use thiserror::Error;

/// Length of C1, C2, S1 and S2 (RTMP 1.0 §5.2.3, §5.2.4).
pub const PACKET_LEN: usize = 1536;
/// Length of the random field of C1/S1 (the packet minus time and version/zero).
pub const RANDOM_LEN: usize = 1528;
/// Length of an HMAC-SHA256 digest.
pub const DIGEST_LEN: usize = 32;
/// The RTMP version byte C0/S0 carries for plain RTMP (RTMP 1.0 §5.2.2).
pub const RTMP_VERSION: u8 = 3;
/// Bytes a client reads during the handshake: S0 + S1 + S2.
pub const SERVER_HANDSHAKE_LEN: usize = 1 + 2 * PACKET_LEN;
/// Bytes a server reads during the handshake: C0 + C1 + C2.
pub const CLIENT_HANDSHAKE_LEN: usize = 1 + 2 * PACKET_LEN;

/// C1 version field FFmpeg sends (9.0.124.2), this crate's client default.
pub const FFMPEG_CLIENT_VERSION: [u8; 4] = [9, 0, 124, 2];
/// C1 version field librtmp sends when it does the digest handshake (10.0.45.2).
pub const LIBRTMP_CLIENT_VERSION: [u8; 4] = [10, 0, 45, 2];
/// S1 version field nginx-rtmp sends (13.14.10.13), this crate's server default.
pub const NGINX_SERVER_VERSION: [u8; 4] = [13, 14, 10, 13];

/// The 32 constant bytes both handshake keys end with.
const KEY_TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];

const fn concat_key<const N: usize>(text: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < text.len() {
        out[i] = text[i];
        i += 1;
    }
    let mut j = 0;
    while j < KEY_TAIL.len() {
        out[text.len() + j] = KEY_TAIL[j];
        j += 1;
    }
    out
}

/// The client ("player") key: `"Genuine Adobe Flash Player 001"` + 32 constant
/// bytes (62 bytes). Its first 30 bytes key the C1 digest, all 62 the C2 HMAC.
pub const CLIENT_KEY: [u8; 62] = concat_key::<62>(b"Genuine Adobe Flash Player 001");
/// Length of the part of [`CLIENT_KEY`] that keys the C1 digest.
pub const CLIENT_KEY_PARTIAL_LEN: usize = 30;
/// The server key: `"Genuine Adobe Flash Media Server 001"` + 32 constant
/// bytes (68 bytes). Its first 36 bytes key the S1 digest, all 68 the S2 HMAC.
pub const SERVER_KEY: [u8; 68] = concat_key::<68>(b"Genuine Adobe Flash Media Server 001");
/// Length of the part of [`SERVER_KEY`] that keys the S1 digest.
pub const SERVER_KEY_PARTIAL_LEN: usize = 36;

/// Which side sent a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The side that opened the connection (sends C0, C1, C2).
    Client,
    /// The side that accepted it (sends S0, S1, S2).
    Server,
}

impl Role {
    /// Key of this role's C1/S1 digest (the partial key).
    fn partial_key(self) -> &'static [u8] {
        match self {
            Role::Client => &CLIENT_KEY[..CLIENT_KEY_PARTIAL_LEN],
            Role::Server => &SERVER_KEY[..SERVER_KEY_PARTIAL_LEN],
        }
    }

    /// Key (before mixing in the peer's digest) of this role's C2/S2 HMAC.
    fn full_key(self) -> &'static [u8] {
        match self {
            Role::Client => &CLIENT_KEY,
            Role::Server => &SERVER_KEY,
        }
    }
}

/// Where the digest of a digest-handshake C1/S1 sits.
///
/// The digest occupies 32 bytes at an offset computed from four bytes of the
/// packet; the HMAC is over the 1536 bytes without those 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestScheme {
    /// Scheme 0: offset = (sum of bytes 8..12) % 728 + 12. Flash Player, FFmpeg
    /// (unencrypted) and nginx-rtmp's S1 use it.
    Scheme0,
    /// Scheme 1: offset = (sum of bytes 772..776) % 728 + 776 (FFmpeg uses it
    /// for RTMPE).
    Scheme1,
}

impl DigestScheme {
    /// The scheme's number as usually written (0 or 1).
    pub fn as_u8(self) -> u8 {
        match self {
            DigestScheme::Scheme0 => 0,
            DigestScheme::Scheme1 => 1,
        }
    }

    /// Offset of the 32 digest bytes in a 1536-byte C1/S1 (always ≤ 1504).
    pub fn digest_offset(self, packet: &[u8; PACKET_LEN]) -> usize {
        let base = match self {
            DigestScheme::Scheme0 => 8,
            DigestScheme::Scheme1 => 772,
        };
        let sum: usize = packet[base..base + 4].iter().map(|&b| usize::from(b)).sum();
        sum % 728 + base + 4
    }
}

/// The handshake this side speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeMode {
    /// RTMP 1.0 §5.2 as written: zero version bytes, C2/S2 echo the peer.
    Simple,
    /// The Flash Player 9 digest handshake. A client puts its C1 digest at
    /// `scheme`; a server answers a digest C1 with a digest S1 at `scheme`
    /// (nginx-rtmp: scheme 0) and a simple C1 with the simple handshake.
    Digest {
        /// Layout of our C1/S1 digest.
        scheme: DigestScheme,
    },
}

/// Settings of one side of the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandshakeConfig {
    /// Simple or digest.
    pub mode: HandshakeMode,
    /// C1/S1 bytes 4-7 in digest mode (simple mode always sends zeros, as the
    /// spec says).
    pub version: [u8; 4],
    /// The C0/S0 byte sent. [`RTMP_VERSION`] (3) unless testing a peer.
    pub rtmp_version: u8,
    /// When true, a peer digest that does not verify is
    /// [`HandshakeError::BadDigest`] and an invalid C2/S2 is
    /// [`HandshakeError::BadResponse`]. When false (the default, like nginx-rtmp,
    /// which falls back to the simple handshake and never checks C2) both are
    /// only reported in the [`HandshakeOutcome`].
    pub strict: bool,
}

impl HandshakeConfig {
    /// A client like FFmpeg: digest scheme 0, version 9.0.124.2.
    pub fn client() -> Self {
        HandshakeConfig {
            mode: HandshakeMode::Digest {
                scheme: DigestScheme::Scheme0,
            },
            version: FFMPEG_CLIENT_VERSION,
            rtmp_version: RTMP_VERSION,
            strict: false,
        }
    }

    /// A server like nginx-rtmp: digest scheme 0, version 13.14.10.13.
    pub fn server() -> Self {
        HandshakeConfig {
            version: NGINX_SERVER_VERSION,
            ..Self::client()
        }
    }

    /// The spec's simple handshake (version bytes zero).
    pub fn simple() -> Self {
        HandshakeConfig {
            mode: HandshakeMode::Simple,
            version: [0; 4],
            ..Self::client()
        }
    }
}

impl Default for HandshakeConfig {
    /// Same as [`HandshakeConfig::client`].
    fn default() -> Self {
        Self::client()
    }
}

/// The kind of C1/S1 a peer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerHandshake {
    /// Version bytes zero and no digest: the spec's simple handshake.
    Simple,
    /// A digest that verifies with the sender's key at `scheme`.
    Digest {
        /// Where the digest was found.
        scheme: DigestScheme,
    },
    /// Non-zero version bytes (so a digest handshake was meant) but no digest
    /// verifies under either scheme. nginx-rtmp then falls back to the simple
    /// handshake; GStreamer clients are known to end up here.
    UnverifiedDigest,
}

impl PeerHandshake {
    /// `None` for a simple handshake, otherwise whether the digest verified.
    pub fn digest_verified(self) -> Option<bool> {
        match self {
            PeerHandshake::Simple => None,
            PeerHandshake::Digest { .. } => Some(true),
            PeerHandshake::UnverifiedDigest => Some(false),
        }
    }
}

/// What a C1 or S1 says ([`inspect_c1s1`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct C1S1Info {
    /// Bytes 0-3: the sender's epoch time in ms.
    pub time: u32,
    /// Bytes 4-7: zero (simple) or a version such as 9.0.124.2.
    pub version: [u8; 4],
    /// Simple, digest (with scheme) or unverified digest.
    pub kind: PeerHandshake,
    /// Offset of the verified digest in the packet.
    pub digest_offset: Option<usize>,
}

impl C1S1Info {
    /// `(scheme, verified)`: `None` for a simple handshake; an unverified digest
    /// has no scheme, so it is `(None, false)`.
    pub fn digest(&self) -> Option<(Option<DigestScheme>, bool)> {
        match self.kind {
            PeerHandshake::Simple => None,
            PeerHandshake::Digest { scheme } => Some((Some(scheme), true)),
            PeerHandshake::UnverifiedDigest => Some((None, false)),
        }
    }

    /// The 32 digest bytes, if one verified.
    fn digest_bytes(&self, packet: &[u8; PACKET_LEN]) -> Option<[u8; DIGEST_LEN]> {
        let off = self.digest_offset?;
        packet.get(off..off + DIGEST_LEN)?.try_into().ok()
    }
}

/// What a C2 or S2 says about the peer's C1/S1 it answers ([`inspect_c2s2`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct C2S2Info {
    /// Bytes 0-3: the spec's "time" (an echo of the C1/S1 time).
    pub time: u32,
    /// Bytes 4-7: the spec's "time2" (when the C1/S1 was read); real peers
    /// echo the C1/S1 version bytes here instead.
    pub time2: u32,
    /// Bytes 0-3 equal the answered C1/S1's time: the time was echoed, so the
    /// answering side's RTT is measurable.
    pub time_echo: bool,
    /// Bytes 8-1535 equal the answered packet's (the simple handshake's echo).
    pub random_echo: bool,
    /// The last 32 bytes are the digest handshake's HMAC (key = HMAC-SHA256(full
    /// key of the sender, digest of the answered C1/S1)). `None` when the
    /// answered C1/S1 had no verified digest, so there is nothing to check.
    pub hmac: Option<bool>,
}

impl C2S2Info {
    /// Valid either way: an echo (simple) or a correct HMAC (digest).
    pub fn is_valid(&self) -> bool {
        self.random_echo || self.hmac == Some(true)
    }
}

/// What the peer did during a completed handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandshakeOutcome {
    /// The peer's C0/S0 byte (always [`RTMP_VERSION`] here: others are errors).
    pub peer_rtmp_version: u8,
    /// Simple, digest or unverified digest.
    pub kind: PeerHandshake,
    /// The peer's C1/S1 bytes 4-7.
    pub peer_version: [u8; 4],
    /// `None` for simple, else whether the peer's C1/S1 digest verified.
    pub peer_digest_verified: Option<bool>,
    /// The peer's C1/S1 time field (its epoch, ms).
    pub peer_time: u32,
    /// The peer's S1 is our C1 byte for byte: nginx-rtmp's answer to a C1
    /// whose version bytes are zero or whose digest it could not verify. `kind`
    /// is then [`PeerHandshake::Simple`] (the echoed version bytes and digest
    /// are ours, not the peer's). Always false on the server side.
    pub peer_hello_is_echo: bool,
    /// The peer's C2/S2 checked against our C1/S1.
    pub peer_response: C2S2Info,
    /// Round-trip time: `now_ms` when the peer's C2/S2 arrived minus `now_ms`
    /// when our C1/S1 was produced, if the C2/S2 echoed our time field
    /// ([`C2S2Info::time_echo`]). nginx-rtmp echoes it only in the simple
    /// handshake (S2 = C1 verbatim; its digest S2 is random); FFmpeg echoes it as
    /// a publisher (C2 = S1 verbatim) but not as a player (digest C2), and
    /// FFmpeg's own server puts the C1 time in S2; librtmp echoes S1 verbatim.
    pub rtt_ms: Option<u32>,
}

/// Why a handshake failed. Cloneable: a failed handshake keeps returning it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandshakeError {
    /// C0/S0 is not 3. `first_bytes` holds up to 16 bytes of what arrived, which
    /// often tells what answered instead ([`describe_bad_version`]).
    #[error("bad RTMP version byte {got:#04x} at offset 0 (expected 0x03): {}; first bytes: {}",
            describe_bad_version(*got, first_bytes), hex_and_text(first_bytes))]
    BadVersion {
        /// The C0/S0 byte.
        got: u8,
        /// Up to 16 bytes from offset 0.
        first_bytes: Vec<u8>,
    },
    /// Strict mode: the peer's C1/S1 had non-zero version bytes but no digest
    /// verified under either scheme.
    #[error(
        "{role:?} {packet} at stream offset 1: version {version:?} but no digest verifies (scheme 0 or 1)"
    )]
    BadDigest {
        /// Who sent it.
        role: Role,
        /// "C1" or "S1".
        packet: &'static str,
        /// Its version bytes.
        version: [u8; 4],
    },
    /// Strict mode: the peer's C2/S2 neither echoes our C1/S1 nor carries the
    /// right HMAC.
    #[error(
        "{role:?} {packet} at stream offset 1537 neither echoes our packet nor has a valid HMAC"
    )]
    BadResponse {
        /// Who sent it.
        role: Role,
        /// "C2" or "S2".
        packet: &'static str,
    },
    /// [`inspect_c1s1`]/[`inspect_c2s2`] got fewer than 1536 bytes.
    #[error("{what}: need {need} bytes, got {got}")]
    Truncated {
        /// Which argument.
        what: &'static str,
        /// 1536.
        need: usize,
        /// Bytes present.
        got: usize,
    },
}

/// A human explanation of a C0/S0 byte that is not 3, using the bytes that came
/// with it: an HTTP response or request (an HTTP port, or RTMPT), a TLS record
/// (an RTMPS port), RTMPE (versions 6, 8, 9: encrypted RTMP, not supported), or
/// what RTMP 1.0 §5.2.2 says of the value.
pub fn describe_bad_version(got: u8, first_bytes: &[u8]) -> &'static str {
    const HTTP_METHODS: [&[u8]; 5] = [b"GET ", b"POST ", b"HEAD ", b"PUT ", b"OPTIONS "];
    const HTML: [&[u8]; 5] = [b"<!doctype", b"<html", b"<head", b"<?xml", b"<body"];
    let lower: Vec<u8> = first_bytes.iter().map(u8::to_ascii_lowercase).collect();
    if first_bytes.starts_with(b"HTTP/") {
        return "an HTTP server answered (an HTTP status line): this is an HTTP port, not RTMP";
    }
    if HTML.iter().any(|m| lower.starts_with(m)) {
        return "an HTTP server answered (an HTML page): this is an HTTP port, not RTMP";
    }
    if first_bytes.starts_with(b"SSH-") {
        return "an SSH server answered (its banner): this is an SSH port, not RTMP";
    }
    if first_bytes.starts_with(b"220 ") || first_bytes.starts_with(b"220-") {
        return "an FTP or SMTP server answered (a 220 banner), not RTMP";
    }
    if HTTP_METHODS.iter().any(|m| first_bytes.starts_with(m)) {
        return "an HTTP request: the peer speaks HTTP (or RTMPT), not RTMP";
    }
    if first_bytes.starts_with(&[0x16, 0x03]) {
        return "a TLS handshake record: this port speaks TLS (use rtmps://)";
    }
    if first_bytes.len() >= 2 && first_bytes[0] == 0x15 && first_bytes[1] == 0x03 {
        return "a TLS alert record: this port speaks TLS (use rtmps://)";
    }
    match got {
        6 | 8 | 9 => "RTMPE (encrypted RTMP), which is not supported",
        0..=2 => "a version the spec calls deprecated (0-2)",
        4..=31 => "a version the spec reserves (4-31)",
        _ => "a version the spec forbids (32-255): not an RTMP peer",
    }
}

fn hex_and_text(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let text: String = bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect();
    format!("{} \"{}\"", hex.join(" "), text)
}

/// HMAC-SHA256 of the concatenation of `parts`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    // HMAC accepts keys of any length, so this never fails; a zero digest
    // (which verifies nothing) keeps the no-panic rule without an unwrap.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return [0; DIGEST_LEN];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The digest a C1/S1 should carry at `offset`: HMAC over the packet without
/// the 32 digest bytes.
fn packet_digest(packet: &[u8; PACKET_LEN], offset: usize, key: &[u8]) -> [u8; DIGEST_LEN] {
    hmac_sha256(key, &[&packet[..offset], &packet[offset + DIGEST_LEN..]])
}

/// Tries scheme 0 then scheme 1; returns the scheme and offset that verify.
fn find_digest(packet: &[u8; PACKET_LEN], key: &[u8]) -> Option<(DigestScheme, usize)> {
    [DigestScheme::Scheme0, DigestScheme::Scheme1]
        .into_iter()
        .find_map(|scheme| {
            let off = scheme.digest_offset(packet);
            (packet_digest(packet, off, key)[..] == packet[off..off + DIGEST_LEN])
                .then_some((scheme, off))
        })
}

/// The HMAC a C2/S2 ends with: key = HMAC(full key, digest of the answered
/// C1/S1), message = the first 1504 bytes.
fn response_hmac(
    sender: Role,
    answered_digest: &[u8; DIGEST_LEN],
    packet: &[u8; PACKET_LEN],
) -> [u8; DIGEST_LEN] {
    let key = hmac_sha256(sender.full_key(), &[answered_digest]);
    hmac_sha256(&key, &[&packet[..PACKET_LEN - DIGEST_LEN]])
}

fn as_packet<'a>(
    bytes: &'a [u8],
    what: &'static str,
) -> Result<&'a [u8; PACKET_LEN], HandshakeError> {
    bytes
        .get(..PACKET_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or(HandshakeError::Truncated {
            what,
            need: PACKET_LEN,
            got: bytes.len(),
        })
}

fn be32(bytes: &[u8; PACKET_LEN], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn c1s1_info(packet: &[u8; PACKET_LEN], sender: Role) -> C1S1Info {
    let version = [packet[4], packet[5], packet[6], packet[7]];
    let found = find_digest(packet, sender.partial_key());
    let kind = match found {
        Some((scheme, _)) => PeerHandshake::Digest { scheme },
        None if version == [0; 4] => PeerHandshake::Simple,
        None => PeerHandshake::UnverifiedDigest,
    };
    C1S1Info {
        time: be32(packet, 0),
        version,
        kind,
        digest_offset: found.map(|(_, off)| off),
    }
}

fn c2s2_info(packet: &[u8; PACKET_LEN], sender: Role, answered: &[u8; PACKET_LEN]) -> C2S2Info {
    // The answered packet was sent by the other role.
    let other = match sender {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    };
    let answered_info = c1s1_info(answered, other);
    let hmac = answered_info
        .digest_bytes(answered)
        .map(|d| response_hmac(sender, &d, packet)[..] == packet[PACKET_LEN - DIGEST_LEN..]);
    C2S2Info {
        time: be32(packet, 0),
        time2: be32(packet, 4),
        time_echo: packet[..4] == answered[..4],
        random_echo: packet[8..] == answered[8..],
        hmac,
    }
}

/// Passive analysis of a C1 (`role` = [`Role::Client`]) or S1
/// ([`Role::Server`]): time, version bytes, and whether a digest verifies
/// under either scheme with that role's key. Bytes after the first 1536 are
/// ignored; pass the packet without C0/S0.
pub fn inspect_c1s1(packet: &[u8], role: Role) -> Result<C1S1Info, HandshakeError> {
    let what = match role {
        Role::Client => "C1",
        Role::Server => "S1",
    };
    Ok(c1s1_info(as_packet(packet, what)?, role))
}

/// Passive analysis of a C2 (`role` = [`Role::Client`], `peer_c1s1` = the S1
/// it answers) or S2 ([`Role::Server`], `peer_c1s1` = the C1): echo of time and
/// random bytes (simple handshake) and the HMAC (digest handshake).
pub fn inspect_c2s2(
    packet: &[u8],
    role: Role,
    peer_c1s1: &[u8],
) -> Result<C2S2Info, HandshakeError> {
    let (what, peer_what) = match role {
        Role::Client => ("C2", "S1"),
        Role::Server => ("S2", "C1"),
    };
    Ok(c2s2_info(
        as_packet(packet, what)?,
        role,
        as_packet(peer_c1s1, peer_what)?,
    ))
}

/// Builds our C1/S1: time, version (zero for simple) and random bytes, with the
/// digest written in for digest mode.
fn make_c1s1(
    config: &HandshakeConfig,
    role: Role,
    now_ms: u32,
    random: &[u8; RANDOM_LEN],
) -> Box<[u8; PACKET_LEN]> {
    let mut p = Box::new([0u8; PACKET_LEN]);
    p[..4].copy_from_slice(&now_ms.to_be_bytes());
    p[8..].copy_from_slice(random);
    if let HandshakeMode::Digest { scheme } = config.mode {
        p[4..8].copy_from_slice(&config.version);
        let off = scheme.digest_offset(&p);
        let d = packet_digest(&p, off, role.partial_key());
        p[off..off + DIGEST_LEN].copy_from_slice(&d);
    }
    p
}

/// Builds our C2/S2 answering the peer's C1/S1: random + HMAC when the peer's
/// digest verified and we speak digest, else a verbatim echo. Verbatim, not
/// with the spec's "time2": nginx-rtmp, FFmpeg and librtmp all echo byte for
/// byte, and librtmp warns when S2 differs from its C1.
fn make_c2s2(
    config: &HandshakeConfig,
    role: Role,
    peer: &[u8; PACKET_LEN],
    peer_info: &C1S1Info,
    random: &[u8; RANDOM_LEN],
) -> Box<[u8; PACKET_LEN]> {
    let mut p = Box::new(*peer);
    if let (HandshakeMode::Digest { .. }, Some(d)) = (config.mode, peer_info.digest_bytes(peer)) {
        p[..RANDOM_LEN].copy_from_slice(random);
        p[RANDOM_LEN..].copy_from_slice(&random[..PACKET_LEN - RANDOM_LEN]);
        let h = response_hmac(role, &d, &p);
        p[PACKET_LEN - DIGEST_LEN..].copy_from_slice(&h);
    }
    p
}

fn draw_random(random: &mut impl FnMut(&mut [u8])) -> Box<[u8; RANDOM_LEN]> {
    let mut r = Box::new([0u8; RANDOM_LEN]);
    random(&mut r[..]);
    r
}

/// Checks C0/S0 as soon as its byte is there.
fn check_version(buf: &BytesMut) -> Result<(), HandshakeError> {
    match buf.first() {
        Some(&v) if v != RTMP_VERSION => Err(HandshakeError::BadVersion {
            got: v,
            first_bytes: buf[..buf.len().min(16)].to_vec(),
        }),
        _ => Ok(()),
    }
}

/// Peer state after its C0+C1 (or S0+S1) arrived.
#[derive(Debug, Clone)]
struct PeerHello {
    rtmp_version: u8,
    packet: Box<[u8; PACKET_LEN]>,
    info: C1S1Info,
    is_echo: bool,
}

/// Progress shared by both sides: waiting for the peer's version + C1/S1,
/// then its C2/S2, then done or failed.
#[derive(Debug, Clone)]
enum Stage {
    AwaitHello,
    AwaitResponse(PeerHello),
    Done(HandshakeOutcome),
    Failed(HandshakeError),
}

/// The logic common to client and server.
#[derive(Debug, Clone)]
struct Side {
    role: Role,
    config: HandshakeConfig,
    /// Our C1/S1 (a server builds it only when C1 arrives, to pick the kind).
    ours: Option<Box<[u8; PACKET_LEN]>>,
    /// `now_ms` when our C1/S1 was produced, for the RTT.
    ours_at_ms: u32,
    /// Time field for our C1/S1.
    epoch_ms: u32,
    random_c1s1: Box<[u8; RANDOM_LEN]>,
    random_c2s2: Box<[u8; RANDOM_LEN]>,
    transmit: Option<Bytes>,
    stage: Stage,
}

impl Side {
    fn new(
        role: Role,
        config: HandshakeConfig,
        now_ms: u32,
        random: &mut impl FnMut(&mut [u8]),
    ) -> Self {
        Side {
            role,
            config,
            ours: None,
            ours_at_ms: now_ms,
            epoch_ms: now_ms,
            random_c1s1: draw_random(random),
            random_c2s2: draw_random(random),
            transmit: None,
            stage: Stage::AwaitHello,
        }
    }

    fn peer_names(&self) -> (&'static str, &'static str) {
        match self.role {
            Role::Client => ("S1", "S2"),
            Role::Server => ("C1", "C2"),
        }
    }

    fn peer_role(&self) -> Role {
        match self.role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }

    fn queue(&mut self, bytes: Bytes) {
        // Concatenate if the caller has not polled yet, so nothing is lost.
        self.transmit = Some(match self.transmit.take() {
            None => bytes,
            Some(prev) => {
                let mut b = BytesMut::with_capacity(prev.len() + bytes.len());
                b.put(prev);
                b.put(bytes);
                b.freeze()
            }
        });
    }

    fn handle_input(
        &mut self,
        buf: &mut BytesMut,
        now_ms: u32,
    ) -> Result<Option<HandshakeOutcome>, HandshakeError> {
        let result = self.step(buf, now_ms);
        if let Err(e) = &result {
            self.stage = Stage::Failed(e.clone());
        }
        result
    }

    fn step(
        &mut self,
        buf: &mut BytesMut,
        now_ms: u32,
    ) -> Result<Option<HandshakeOutcome>, HandshakeError> {
        loop {
            match &self.stage {
                Stage::Done(outcome) => return Ok(Some(*outcome)),
                Stage::Failed(e) => return Err(e.clone()),
                Stage::AwaitHello => {
                    check_version(buf)?;
                    if buf.len() < 1 + PACKET_LEN {
                        return Ok(None);
                    }
                    let hello = buf.split_to(1 + PACKET_LEN);
                    let packet: Box<[u8; PACKET_LEN]> = match hello[1..].try_into() {
                        Ok(p) => Box::new(p),
                        Err(_) => return Ok(None), // unreachable: split_to gave 1537 bytes
                    };
                    let mut info = c1s1_info(&packet, self.peer_role());
                    let is_echo = self.ours.as_deref() == Some(&*packet);
                    if is_echo {
                        info.kind = PeerHandshake::Simple;
                        info.digest_offset = None;
                    }
                    if self.config.strict && info.kind == PeerHandshake::UnverifiedDigest {
                        return Err(HandshakeError::BadDigest {
                            role: self.peer_role(),
                            packet: self.peer_names().0,
                            version: info.version,
                        });
                    }
                    let peer = PeerHello {
                        rtmp_version: hello[0],
                        packet,
                        info,
                        is_echo,
                    };
                    self.answer_hello(&peer, now_ms);
                    self.stage = Stage::AwaitResponse(peer);
                }
                Stage::AwaitResponse(peer) => {
                    if buf.len() < PACKET_LEN {
                        return Ok(None);
                    }
                    let response = buf.split_to(PACKET_LEN);
                    let Ok(response): Result<&[u8; PACKET_LEN], _> = response[..].try_into() else {
                        return Ok(None); // unreachable: split_to gave 1536 bytes
                    };
                    let Some(ours) = &self.ours else {
                        return Ok(None); // unreachable: answer_hello set it
                    };
                    let check = c2s2_info(response, self.peer_role(), ours);
                    if self.config.strict && !check.is_valid() {
                        return Err(HandshakeError::BadResponse {
                            role: self.peer_role(),
                            packet: self.peer_names().1,
                        });
                    }
                    let outcome = HandshakeOutcome {
                        peer_rtmp_version: peer.rtmp_version,
                        kind: peer.info.kind,
                        peer_version: peer.info.version,
                        peer_digest_verified: peer.info.kind.digest_verified(),
                        peer_time: peer.info.time,
                        peer_hello_is_echo: peer.is_echo,
                        peer_response: check,
                        rtt_ms: check
                            .time_echo
                            .then(|| now_ms.wrapping_sub(self.ours_at_ms)),
                    };
                    self.stage = Stage::Done(outcome);
                }
            }
        }
    }

    /// Queues what answers the peer's C0+C1 / S0+S1.
    fn answer_hello(&mut self, peer: &PeerHello, now_ms: u32) {
        if self.role == Role::Server {
            // Like nginx-rtmp: a digest S1 only for a C1 whose digest verified.
            let mut cfg = self.config;
            if peer.info.digest_offset.is_none() {
                cfg.mode = HandshakeMode::Simple;
            }
            let s1 = make_c1s1(&cfg, Role::Server, self.epoch_ms, &self.random_c1s1);
            let s2 = make_c2s2(
                &self.config,
                Role::Server,
                &peer.packet,
                &peer.info,
                &self.random_c2s2,
            );
            let mut out = BytesMut::with_capacity(1 + 2 * PACKET_LEN);
            out.put_u8(self.config.rtmp_version);
            out.put_slice(&s1[..]);
            out.put_slice(&s2[..]);
            self.ours = Some(s1);
            self.ours_at_ms = now_ms;
            self.queue(out.freeze());
        } else {
            let c2 = make_c2s2(
                &self.config,
                Role::Client,
                &peer.packet,
                &peer.info,
                &self.random_c2s2,
            );
            self.queue(Bytes::copy_from_slice(&c2[..]));
        }
    }

    fn outcome(&self) -> Option<&HandshakeOutcome> {
        match &self.stage {
            Stage::Done(o) => Some(o),
            _ => None,
        }
    }
}

/// The client side of the handshake: sends C0+C1, reads S0+S1, sends C2, reads
/// S2.
///
/// ```
/// use bytes::BytesMut;
/// use rtmptool::proto::handshake::{ClientHandshake, HandshakeConfig, ServerHandshake};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Real callers pass a CSPRNG; any byte source works for the handshake.
/// let mut seed = 1u8;
/// let mut rng = |buf: &mut [u8]| {
///     for b in buf {
///         seed = seed.wrapping_mul(31).wrapping_add(7);
///         *b = seed;
///     }
/// };
/// let mut client = ClientHandshake::new(HandshakeConfig::client(), 1000, &mut rng);
/// let mut server = ServerHandshake::new(HandshakeConfig::server(), 5, &mut rng);
/// let (mut to_server, mut to_client) = (BytesMut::new(), BytesMut::new());
/// to_server.extend_from_slice(&client.poll_transmit().ok_or("C0+C1")?);
/// assert!(server.handle_input(&mut to_server, 1001)?.is_none());
/// to_client.extend_from_slice(&server.poll_transmit().ok_or("S0+S1+S2")?);
/// let seen_by_client = client.handle_input(&mut to_client, 1002)?.ok_or("S2")?;
/// assert_eq!(seen_by_client.peer_digest_verified, Some(true));
/// to_server.extend_from_slice(&client.poll_transmit().ok_or("C2")?);
/// let seen_by_server = server.handle_input(&mut to_server, 1003)?.ok_or("C2")?;
/// assert!(seen_by_server.peer_response.is_valid());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    side: Side,
}

impl ClientHandshake {
    /// Starts a client handshake. `now_ms` is the time field of C1 (the RTMP
    /// epoch; FFmpeg sends 0, librtmp its uptime) and the start of the RTT
    /// measurement. `random` is called twice for 1528 bytes (C1's random
    /// field, then C2's in the digest handshake). C0+C1 are ready at once.
    pub fn new(config: HandshakeConfig, now_ms: u32, random: &mut impl FnMut(&mut [u8])) -> Self {
        let mut side = Side::new(Role::Client, config, now_ms, random);
        let c1 = make_c1s1(&config, Role::Client, now_ms, &side.random_c1s1);
        let mut out = BytesMut::with_capacity(1 + PACKET_LEN);
        out.put_u8(config.rtmp_version);
        out.put_slice(&c1[..]);
        side.ours = Some(c1);
        side.queue(out.freeze());
        ClientHandshake { side }
    }

    /// Bytes to send: C0+C1 first, then C2 once S0+S1 has been handled.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.side.transmit.take()
    }

    /// Consumes S0, S1 and S2 (3073 bytes) from the front of `buf` as they
    /// arrive, leaving anything after S2 (the first chunks) in `buf`. Returns
    /// `Ok(None)` while more bytes are needed, then the outcome (again on
    /// every later call, consuming nothing). A bad S0 fails as soon as its byte
    /// arrives; after an error every call returns the same error.
    pub fn handle_input(
        &mut self,
        buf: &mut BytesMut,
        now_ms: u32,
    ) -> Result<Option<HandshakeOutcome>, HandshakeError> {
        self.side.handle_input(buf, now_ms)
    }

    /// The outcome, once the handshake is complete.
    pub fn outcome(&self) -> Option<&HandshakeOutcome> {
        self.side.outcome()
    }
}

/// The server side of the handshake: reads C0+C1, sends S0+S1+S2 in one go
/// (as nginx-rtmp does), reads C2.
///
/// In digest mode a C1 whose digest verifies gets a digest S1 (the configured
/// scheme and version) and an S2 = random + HMAC; any other C1 gets a simple
/// S1 (version bytes zero) and S2 = C1 verbatim. nginx-rtmp instead answers a
/// simple C1 with S1 = S2 = C1; the spec's fresh S1 is used here so that the
/// client's C2 echo can be told apart.
#[derive(Debug, Clone)]
pub struct ServerHandshake {
    side: Side,
}

impl ServerHandshake {
    /// Starts a server handshake. `now_ms` is the time field of S1 (nginx-rtmp
    /// sends its session epoch). `random` is called twice for 1528 bytes (S1's
    /// random field, then S2's in the digest handshake).
    pub fn new(config: HandshakeConfig, now_ms: u32, random: &mut impl FnMut(&mut [u8])) -> Self {
        ServerHandshake {
            side: Side::new(Role::Server, config, now_ms, random),
        }
    }

    /// Bytes to send: S0+S1+S2 once C0+C1 has been handled.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.side.transmit.take()
    }

    /// Consumes C0, C1 and C2 (3073 bytes) from the front of `buf`, leaving
    /// what follows C2 (the client's first chunks, often in the same segment)
    /// in `buf`. Same contract as [`ClientHandshake::handle_input`]; the RTT
    /// runs from the `now_ms` at which C1 was handled (when S1 was produced).
    pub fn handle_input(
        &mut self,
        buf: &mut BytesMut,
        now_ms: u32,
    ) -> Result<Option<HandshakeOutcome>, HandshakeError> {
        self.side.handle_input(buf, now_ms)
    }

    /// The outcome, once the handshake is complete.
    pub fn outcome(&self) -> Option<&HandshakeOutcome> {
        self.side.outcome()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Packets extracted from the captures by `testdata/handshake/extract.py`.
    macro_rules! fixture {
        ($name:literal) => {{
            let b: &[u8] = include_bytes!(concat!("../../testdata/handshake/", $name, ".bin"));
            <[u8; PACKET_LEN]>::try_from(b).expect("1536-byte fixture")
        }};
    }

    /// A random source that hands out the given blocks in order, then zeros.
    fn replay(blocks: Vec<Vec<u8>>) -> impl FnMut(&mut [u8]) {
        let mut blocks = blocks.into_iter();
        move |out: &mut [u8]| {
            out.fill(0);
            if let Some(b) = blocks.next() {
                let n = out.len().min(b.len());
                out[..n].copy_from_slice(&b[..n]);
            }
        }
    }

    /// A deterministic pseudo-random source (xorshift).
    fn rng(seed: u64) -> impl FnMut(&mut [u8]) {
        let mut s = seed | 1;
        move |out: &mut [u8]| {
            for b in out {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                *b = (s >> 24) as u8;
            }
        }
    }

    fn with_c0(c0: u8, packets: &[&[u8]]) -> BytesMut {
        let mut b = BytesMut::new();
        b.put_u8(c0);
        for p in packets {
            b.put_slice(p);
        }
        b
    }

    /// Runs a client and a server against each other in memory.
    fn pair(
        client_cfg: HandshakeConfig,
        server_cfg: HandshakeConfig,
    ) -> (HandshakeOutcome, HandshakeOutcome) {
        let mut client = ClientHandshake::new(client_cfg, 1_000, &mut rng(1));
        let mut server = ServerHandshake::new(server_cfg, 77, &mut rng(2));
        let (mut to_server, mut to_client) = (BytesMut::new(), BytesMut::new());
        to_server.extend_from_slice(&client.poll_transmit().expect("C0+C1"));
        assert_eq!(client.poll_transmit(), None);
        assert_eq!(server.handle_input(&mut to_server, 1_010), Ok(None));
        let s = server.poll_transmit().expect("S0+S1+S2");
        assert_eq!(s.len(), SERVER_HANDSHAKE_LEN);
        to_client.extend_from_slice(&s);
        to_client.extend_from_slice(b"chunks");
        let seen_by_client = client
            .handle_input(&mut to_client, 1_025)
            .expect("client ok")
            .expect("client done");
        assert_eq!(
            &to_client[..],
            b"chunks",
            "bytes after S2 stay in the buffer"
        );
        to_server.extend_from_slice(&client.poll_transmit().expect("C2"));
        to_server.extend_from_slice(b"connect");
        let seen_by_server = server
            .handle_input(&mut to_server, 1_040)
            .expect("server ok")
            .expect("server done");
        assert_eq!(&to_server[..], b"connect");
        // Done is sticky and consumes nothing more.
        assert_eq!(
            server.handle_input(&mut to_server, 2_000),
            Ok(Some(seen_by_server))
        );
        assert_eq!(&to_server[..], b"connect");
        (seen_by_client, seen_by_server)
    }

    /// Rewrites the scheme-0 digest of a modified C1/S1 so that it verifies.
    fn fix_digest(mut p: [u8; PACKET_LEN], role: Role) -> [u8; PACKET_LEN] {
        let off = DigestScheme::Scheme0.digest_offset(&p);
        let d = packet_digest(&p, off, role.partial_key());
        p[off..off + DIGEST_LEN].copy_from_slice(&d);
        assert!(inspect_c1s1(&p, role).unwrap().digest_offset.is_some());
        p
    }

    #[test]
    fn keys_are_the_published_ones() {
        assert_eq!(&CLIENT_KEY[..30], b"Genuine Adobe Flash Player 001");
        assert_eq!(&SERVER_KEY[..36], b"Genuine Adobe Flash Media Server 001");
        assert_eq!(CLIENT_KEY[30..], SERVER_KEY[36..]);
        assert_eq!(CLIENT_KEY[61], 0xAE);
    }

    // Ground truth: testdata/rtmp/pub_ffmpeg_h264aac_re.json, connection 0:
    // c2s handshake c1s1_version 09007c02, c1s1_time 0; s2c 0d0e0a0d, 646945.
    #[test]
    fn ffmpeg_c1_verifies_with_the_client_key_scheme_0() {
        let c1 = fixture!("ffmpeg_pub_c1");
        let info = inspect_c1s1(&c1, Role::Client).unwrap();
        assert_eq!(info.version, [0x09, 0x00, 0x7c, 0x02]);
        assert_eq!(info.version, FFMPEG_CLIENT_VERSION);
        assert_eq!(info.time, 0);
        assert_eq!(info.digest(), Some((Some(DigestScheme::Scheme0), true)));
        // The server key must not verify a client packet.
        let wrong = inspect_c1s1(&c1, Role::Server).unwrap();
        assert_eq!(wrong.kind, PeerHandshake::UnverifiedDigest);
        assert_eq!(wrong.digest(), Some((None, false)));
    }

    #[test]
    fn nginx_s1_and_s2_verify() {
        let (c1, s1, s2) = (
            fixture!("ffmpeg_pub_c1"),
            fixture!("ffmpeg_pub_s1"),
            fixture!("ffmpeg_pub_s2"),
        );
        let info = inspect_c1s1(&s1, Role::Server).unwrap();
        assert_eq!(info.version, [0x0d, 0x0e, 0x0a, 0x0d]);
        assert_eq!(info.version, NGINX_SERVER_VERSION);
        assert_eq!(info.time, 646_945);
        assert_eq!(
            info.kind,
            PeerHandshake::Digest {
                scheme: DigestScheme::Scheme0
            }
        );
        assert_eq!(inspect_c1s1(&s1, Role::Client).unwrap().digest_offset, None);
        let s2i = inspect_c2s2(&s2, Role::Server, &c1).unwrap();
        assert_eq!(s2i.hmac, Some(true), "S2 HMAC keyed by the full server key");
        assert!(!s2i.time_echo, "nginx's digest S2 is random: no time echo");
        assert!(s2i.is_valid());
        // Against another C1 (FFmpeg's C1 is the same in every capture: its
        // random bytes come from a fixed seed) the HMAC fails.
        let mut other_c1 = c1;
        other_c1[1000] ^= 1;
        let other_c1 = fix_digest(other_c1, Role::Client);
        let other = inspect_c2s2(&s2, Role::Server, &other_c1).unwrap();
        assert_eq!(other.hmac, Some(false));
    }

    #[test]
    fn ffmpeg_publisher_c2_echoes_s1_player_c2_has_hmac() {
        // Publishing, FFmpeg sends S1 back verbatim (no HMAC): time echoed.
        let c2 = inspect_c2s2(
            &fixture!("ffmpeg_pub_c2"),
            Role::Client,
            &fixture!("ffmpeg_pub_s1"),
        )
        .unwrap();
        assert_eq!(c2.hmac, Some(false));
        assert!(c2.random_echo && c2.time_echo && c2.is_valid());
        assert_eq!(c2.time, 646_945);
        // Playing, FFmpeg sends random + HMAC (key from the full client key).
        let (s1, c2) = (fixture!("ffmpeg_play_s1"), fixture!("ffmpeg_play_c2"));
        assert_eq!(inspect_c1s1(&s1, Role::Server).unwrap().time, 698_520);
        let info = inspect_c2s2(&c2, Role::Client, &s1).unwrap();
        assert_eq!(info.hmac, Some(true));
        assert!(!info.time_echo && !info.random_echo);
        let mut bad = c2;
        bad[100] ^= 1;
        assert_eq!(
            inspect_c2s2(&bad, Role::Client, &s1).unwrap().hmac,
            Some(false)
        );
    }

    // Ground truth: play_rtmpdump_c4096.json: c1s1_version 00000000, time 398886
    // both ways (nginx answers a simple C1 with S1 = S2 = C1).
    #[test]
    fn rtmpdump_and_pyclient_do_the_simple_handshake() {
        let c1 = fixture!("rtmpdump_play_c1");
        let info = inspect_c1s1(&c1, Role::Client).unwrap();
        assert_eq!(
            (info.time, info.version, info.digest()),
            (398_886, [0; 4], None)
        );
        let s2 = inspect_c2s2(&fixture!("rtmpdump_play_s2"), Role::Server, &c1).unwrap();
        assert!(s2.time_echo && s2.random_echo && s2.is_valid());
        assert_eq!(s2.hmac, None);
        let c2 = inspect_c2s2(
            &fixture!("rtmpdump_play_c2"),
            Role::Client,
            &fixture!("rtmpdump_play_s1"),
        )
        .unwrap();
        assert!(c2.random_echo);
        let py = inspect_c1s1(&fixture!("pyclient_pub_c1"), Role::Client).unwrap();
        assert_eq!(
            (py.time, py.version, py.kind, py.digest()),
            (0, [0; 4], PeerHandshake::Simple, None)
        );
    }

    /// With FFmpeg's random bytes, our client builds FFmpeg's exact C1 and
    /// (as a player) its exact C2, and accepts nginx's real S0+S1+S2.
    #[test]
    fn client_reproduces_ffmpeg_byte_for_byte() {
        let (c1, s1, s2, c2) = (
            fixture!("ffmpeg_play_c1"),
            fixture!("ffmpeg_play_s1"),
            fixture!("ffmpeg_play_s2"),
            fixture!("ffmpeg_play_c2"),
        );
        let mut random = replay(vec![c1[8..].to_vec(), c2[..RANDOM_LEN].to_vec()]);
        let mut client = ClientHandshake::new(HandshakeConfig::client(), 0, &mut random);
        let sent = client.poll_transmit().unwrap();
        assert_eq!(sent[0], 3);
        assert_eq!(&sent[1..], &c1[..]);
        let mut input = with_c0(3, &[&s1, &s2, b"\x02rest"]);
        let outcome = client.handle_input(&mut input, 5).unwrap().unwrap();
        assert_eq!(&input[..], b"\x02rest");
        assert_eq!(&client.poll_transmit().unwrap()[..], &c2[..]);
        assert_eq!(
            outcome.kind,
            PeerHandshake::Digest {
                scheme: DigestScheme::Scheme0
            }
        );
        assert_eq!(outcome.peer_version, NGINX_SERVER_VERSION);
        assert_eq!(outcome.peer_digest_verified, Some(true));
        assert_eq!(outcome.peer_time, 698_520);
        assert_eq!(outcome.peer_response.hmac, Some(true));
        assert_eq!(
            outcome.rtt_ms, None,
            "nginx's digest S2 does not echo our time"
        );
    }

    /// With nginx's random bytes and epoch, our server answers FFmpeg's C1 with
    /// nginx's exact S0+S1+S2, and accepts FFmpeg's publisher C2 (an echo).
    #[test]
    fn server_reproduces_nginx_byte_for_byte() {
        let (c1, s1, s2, c2) = (
            fixture!("ffmpeg_pub_c1"),
            fixture!("ffmpeg_pub_s1"),
            fixture!("ffmpeg_pub_s2"),
            fixture!("ffmpeg_pub_c2"),
        );
        let mut random = replay(vec![s1[8..].to_vec(), s2[..RANDOM_LEN].to_vec()]);
        let mut server = ServerHandshake::new(HandshakeConfig::server(), 646_945, &mut random);
        let mut input = with_c0(3, &[&c1]);
        assert_eq!(server.handle_input(&mut input, 100), Ok(None));
        assert!(input.is_empty());
        let sent = server.poll_transmit().unwrap();
        assert_eq!(sent[..], with_c0(3, &[&s1, &s2])[..]);
        let mut input = BytesMut::from(&c2[..]);
        let outcome = server.handle_input(&mut input, 103).unwrap().unwrap();
        assert_eq!(
            outcome.kind,
            PeerHandshake::Digest {
                scheme: DigestScheme::Scheme0
            }
        );
        assert_eq!(outcome.peer_version, FFMPEG_CLIENT_VERSION);
        assert_eq!(outcome.peer_response.hmac, Some(false));
        assert!(outcome.peer_response.random_echo);
        assert_eq!(
            outcome.rtt_ms,
            Some(3),
            "FFmpeg's publisher C2 echoes our S1 time"
        );
    }

    #[test]
    fn server_answers_rtmpdump_simple() {
        let c1 = fixture!("rtmpdump_play_c1");
        let mut server = ServerHandshake::new(HandshakeConfig::server(), 9, &mut rng(3));
        assert_eq!(server.handle_input(&mut with_c0(3, &[&c1]), 50), Ok(None));
        let out = server.poll_transmit().unwrap();
        let s1 = inspect_c1s1(&out[1..1 + PACKET_LEN], Role::Server).unwrap();
        assert_eq!((s1.time, s1.kind), (9, PeerHandshake::Simple));
        assert_eq!(&out[1 + PACKET_LEN..], &c1[..], "S2 = C1 verbatim");
    }

    #[test]
    fn in_memory_digest_both_schemes() {
        for scheme in [DigestScheme::Scheme0, DigestScheme::Scheme1] {
            let client = HandshakeConfig {
                mode: HandshakeMode::Digest { scheme },
                ..HandshakeConfig::client()
            };
            let server = HandshakeConfig {
                mode: HandshakeMode::Digest {
                    scheme: DigestScheme::Scheme1,
                },
                ..HandshakeConfig::server()
            };
            let (by_client, by_server) = pair(client, server);
            assert_eq!(by_server.kind, PeerHandshake::Digest { scheme });
            assert_eq!(by_server.peer_version, FFMPEG_CLIENT_VERSION);
            assert_eq!(by_server.peer_time, 1_000);
            assert_eq!(by_server.peer_response.hmac, Some(true));
            assert_eq!(by_server.rtt_ms, None);
            assert_eq!(
                by_client.kind,
                PeerHandshake::Digest {
                    scheme: DigestScheme::Scheme1
                }
            );
            assert_eq!(by_client.peer_version, NGINX_SERVER_VERSION);
            assert_eq!(by_client.peer_time, 77);
            assert_eq!(by_client.peer_response.hmac, Some(true));
            assert_eq!(by_client.peer_digest_verified, Some(true));
        }
    }

    #[test]
    fn in_memory_simple_and_mixed() {
        let (by_client, by_server) = pair(HandshakeConfig::simple(), HandshakeConfig::server());
        for o in [by_client, by_server] {
            assert_eq!(
                (o.kind, o.peer_version, o.peer_digest_verified),
                (PeerHandshake::Simple, [0; 4], None)
            );
            assert!(o.peer_response.random_echo && o.peer_response.time_echo);
            assert_eq!(o.peer_response.hmac, None);
        }
        assert_eq!(by_client.rtt_ms, Some(25));
        assert_eq!(by_server.rtt_ms, Some(30));
        // Digest client, simple-only server: the client gets a simple S1.
        let (by_client, by_server) = pair(HandshakeConfig::client(), HandshakeConfig::simple());
        assert_eq!(by_client.kind, PeerHandshake::Simple);
        assert!(by_client.peer_response.random_echo);
        assert_eq!(
            by_server.kind,
            PeerHandshake::Digest {
                scheme: DigestScheme::Scheme0
            }
        );
        assert!(by_server.peer_response.random_echo);
        assert_eq!(by_server.peer_response.hmac, None);
    }

    /// nginx-rtmp answers a C1 it cannot verify with S1 = S2 = C1 (seen in
    /// `rtmpdump_play_*.bin`); a strict digest client must accept that as a
    /// simple handshake, not as a bad server digest.
    #[test]
    fn nginx_style_echo_of_a_digest_c1() {
        let strict = HandshakeConfig {
            strict: true,
            ..HandshakeConfig::client()
        };
        let mut client = ClientHandshake::new(strict, 40, &mut rng(13));
        let c0c1 = client.poll_transmit().unwrap();
        let mut input = BytesMut::from(&c0c1[..]);
        input.extend_from_slice(&c0c1[1..]);
        let o = client.handle_input(&mut input, 42).unwrap().unwrap();
        assert!(o.peer_hello_is_echo);
        assert_eq!(
            (o.kind, o.peer_digest_verified, o.rtt_ms),
            (PeerHandshake::Simple, None, Some(2))
        );
        assert_eq!(
            &client.poll_transmit().unwrap()[..],
            &c0c1[1..],
            "C2 = S1 verbatim"
        );
    }

    #[test]
    fn corrupted_digest_is_not_verified() {
        let mut client = ClientHandshake::new(HandshakeConfig::client(), 0, &mut rng(4));
        let mut c0c1 = BytesMut::from(&client.poll_transmit().unwrap()[..]);
        let c1: [u8; PACKET_LEN] = c0c1[1..].try_into().unwrap();
        let off = DigestScheme::Scheme0.digest_offset(&c1);
        c0c1[1 + off + 5] ^= 0x40;
        let mut strict = ServerHandshake::new(
            HandshakeConfig {
                strict: true,
                ..HandshakeConfig::server()
            },
            0,
            &mut rng(5),
        );
        let err = strict.handle_input(&mut c0c1.clone(), 0).unwrap_err();
        assert!(
            matches!(
                err,
                HandshakeError::BadDigest {
                    role: Role::Client,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            strict.handle_input(&mut BytesMut::new(), 0),
            Err(err),
            "errors are sticky"
        );

        let mut server = ServerHandshake::new(HandshakeConfig::server(), 0, &mut rng(5));
        assert_eq!(server.handle_input(&mut c0c1, 0), Ok(None));
        let out = server.poll_transmit().unwrap();
        // Like nginx-rtmp: no verified digest, so a simple answer.
        assert_eq!(
            inspect_c1s1(&out[1..1 + PACKET_LEN], Role::Server)
                .unwrap()
                .kind,
            PeerHandshake::Simple
        );
        let mut c2 = BytesMut::from(&out[1..1 + PACKET_LEN]);
        let o = server.handle_input(&mut c2, 1).unwrap().unwrap();
        assert_eq!(o.kind, PeerHandshake::UnverifiedDigest);
        assert_eq!(o.peer_digest_verified, Some(false));
    }

    #[test]
    fn tampered_c2_is_detected() {
        for strict in [false, true] {
            let mut client = ClientHandshake::new(HandshakeConfig::client(), 0, &mut rng(6));
            let mut server = ServerHandshake::new(
                HandshakeConfig {
                    strict,
                    ..HandshakeConfig::server()
                },
                0,
                &mut rng(7),
            );
            let mut buf = BytesMut::from(&client.poll_transmit().unwrap()[..]);
            server.handle_input(&mut buf, 0).unwrap();
            let mut buf = BytesMut::from(&server.poll_transmit().unwrap()[..]);
            client.handle_input(&mut buf, 0).unwrap().unwrap();
            let mut c2 = BytesMut::from(&client.poll_transmit().unwrap()[..]);
            c2[700] ^= 1;
            match server.handle_input(&mut c2, 0) {
                Ok(Some(o)) => {
                    assert!(!strict);
                    assert_eq!(o.peer_response.hmac, Some(false));
                    assert!(!o.peer_response.is_valid());
                }
                Err(e) => {
                    assert!(strict);
                    assert_eq!(
                        e,
                        HandshakeError::BadResponse {
                            role: Role::Client,
                            packet: "C2"
                        }
                    );
                }
                Ok(None) => panic!("C2 was complete"),
            }
        }
    }

    /// What answered instead of an RTMP server, named from its first bytes.
    #[test]
    fn bad_version_names_what_answered() {
        for (bytes, want) in [
            (
                &b"HTTP/1.1 400 Bad Request"[..],
                "HTTP server answered (an HTTP status",
            ),
            (
                b"<!DOCTYPE HTML>\n<html>",
                "HTTP server answered (an HTML page)",
            ),
            (b"<html><body>", "HTML page"),
            (b"SSH-2.0-OpenSSH_9.2", "SSH server"),
            (b"220 mail ESMTP", "FTP or SMTP"),
            (b"GET / HTTP/1.1", "HTTP request"),
            (&[0x16, 0x03, 0x01, 0x02][..], "TLS handshake record"),
            (&[0x15, 0x03, 0x03][..], "TLS alert"),
            (&[0x06][..], "RTMPE"),
            (&[0x08][..], "RTMPE"),
            (&[0x09][..], "RTMPE"),
        ] {
            let got = describe_bad_version(bytes[0], bytes);
            assert!(got.contains(want), "{bytes:?}: {got}");
        }
    }

    #[test]
    fn bad_version_carries_the_bytes() {
        let mut client = ClientHandshake::new(HandshakeConfig::client(), 0, &mut rng(8));
        let mut s = with_c0(8, &[&fixture!("ffmpeg_pub_s1")]);
        let err = client.handle_input(&mut s, 0).unwrap_err();
        let HandshakeError::BadVersion { got, first_bytes } = &err else {
            panic!("{err}")
        };
        assert_eq!(*got, 8);
        assert_eq!(first_bytes.len(), 16);
        assert_eq!(first_bytes[1..], fixture!("ffmpeg_pub_s1")[..15]);
        assert!(err.to_string().contains("RTMPE"), "{err}");

        let mut client = ClientHandshake::new(HandshakeConfig::client(), 0, &mut rng(8));
        let mut http = BytesMut::from(&b"HTTP/1.1 400 Bad Request\r\n"[..]);
        let err = client.handle_input(&mut http, 0).unwrap_err();
        assert_eq!(
            err,
            HandshakeError::BadVersion {
                got: b'H',
                first_bytes: b"HTTP/1.1 400 Bad".to_vec()
            }
        );
        assert!(err.to_string().contains("HTTP port"), "{err}");

        let mut server = ServerHandshake::new(HandshakeConfig::server(), 0, &mut rng(8));
        let err = server
            .handle_input(&mut BytesMut::from(&[0x16u8, 0x03, 0x01][..]), 0)
            .unwrap_err();
        assert!(err.to_string().contains("TLS"), "{err}");
        // A single wrong byte is enough to fail.
        let mut server = ServerHandshake::new(HandshakeConfig::server(), 0, &mut rng(8));
        assert!(
            server
                .handle_input(&mut BytesMut::from(&[0x06u8][..]), 0)
                .is_err()
        );
    }

    #[test]
    fn byte_by_byte() {
        let mut server = ServerHandshake::new(HandshakeConfig::server(), 0, &mut rng(9));
        let mut client = ClientHandshake::new(HandshakeConfig::client(), 0, &mut rng(10));
        let c0c1 = client.poll_transmit().unwrap();
        let mut buf = BytesMut::new();
        for &b in &c0c1[..] {
            assert_eq!(server.handle_input(&mut buf, 0), Ok(None));
            buf.put_u8(b);
        }
        assert_eq!(server.handle_input(&mut buf, 0), Ok(None));
        let reply = server.poll_transmit().unwrap();
        let mut buf = BytesMut::new();
        for (i, &b) in reply.iter().enumerate() {
            assert_eq!(client.handle_input(&mut buf, 0), Ok(None), "prefix {i}");
            buf.put_u8(b);
        }
        let o = client.handle_input(&mut buf, 0).unwrap().unwrap();
        assert_eq!(o.peer_response.hmac, Some(true));
        assert!(buf.is_empty());
    }

    #[test]
    fn truncated_packets_are_errors() {
        let c1 = fixture!("ffmpeg_pub_c1");
        for n in [0, 1, 100, PACKET_LEN - 1] {
            assert!(matches!(
                inspect_c1s1(&c1[..n], Role::Client),
                Err(HandshakeError::Truncated { what: "C1", need: PACKET_LEN, got }) if got == n
            ));
            assert!(inspect_c2s2(&c1, Role::Client, &c1[..n]).is_err());
            assert!(inspect_c2s2(&c1[..n], Role::Server, &c1).is_err());
        }
    }

    fn run_client_split(
        cuts: &[usize],
    ) -> (
        Result<Option<HandshakeOutcome>, HandshakeError>,
        Vec<u8>,
        Bytes,
    ) {
        let (s1, s2) = (fixture!("ffmpeg_play_s1"), fixture!("ffmpeg_play_s2"));
        let c1 = fixture!("ffmpeg_play_c1");
        let mut client = ClientHandshake::new(
            HandshakeConfig::client(),
            0,
            &mut replay(vec![c1[8..].to_vec()]),
        );
        client.poll_transmit();
        let stream = with_c0(3, &[&s1, &s2, b"after S2"]);
        let mut buf = BytesMut::new();
        let mut last = Ok(None);
        let mut prev = 0;
        for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
            let cut = cut.clamp(prev, stream.len());
            buf.extend_from_slice(&stream[prev..cut]);
            prev = cut;
            last = client.handle_input(&mut buf, 7);
        }
        (
            last,
            buf.to_vec(),
            client.poll_transmit().unwrap_or_default(),
        )
    }

    proptest! {
        #[test]
        fn splitting_does_not_change_the_outcome(mut cuts in proptest::collection::vec(0usize..3100, 0..8)) {
            cuts.sort_unstable();
            let whole = run_client_split(&[]);
            prop_assert!(matches!(whole.0, Ok(Some(_))));
            prop_assert_eq!(run_client_split(&cuts), whole);
        }

        #[test]
        fn garbage_never_panics(first in prop_oneof![Just(3u8), any::<u8>()],
                                data in proptest::collection::vec(any::<u8>(), 0..4000),
                                cut in 0usize..4000) {
            let mut stream = vec![first];
            stream.extend_from_slice(&data);
            let cut = cut.min(stream.len());
            let mut client = ClientHandshake::new(HandshakeConfig::client(), 0, &mut rng(11));
            let mut server = ServerHandshake::new(HandshakeConfig { strict: true, ..HandshakeConfig::server() }, 0, &mut rng(12));
            for part in [&stream[..cut], &stream[cut..]] {
                let mut b = BytesMut::from(part);
                let _ = client.handle_input(&mut b, 1);
                let mut b = BytesMut::from(part);
                let _ = server.handle_input(&mut b, 1);
            }
            let _ = inspect_c1s1(&data, Role::Client);
            let _ = inspect_c2s2(&data, Role::Server, &data);
            if first != 3 {
                prop_assert!(client.handle_input(&mut BytesMut::new(), 0).is_err());
            }
        }
    }
}
