//! The RTMFP four-way handshake with the Flash profile (RFC 7016 §3.5.1.1,
//! RFC 7425 §4): endpoint discriminators, IHello, RHello / Redirect,
//! IIKeying, RIKeying, ephemeral Diffie-Hellman keying (groups 2, 14, 16),
//! the HMAC and session-sequence negotiation, and key derivation. Sans-IO:
//! datagrams in and out; randomness (tags, private keys, session ids) and
//! timestamps are passed in by the caller.

use sha2::{Digest, Sha256};

use super::chunk::{
    ChunkBody, decode_packet, ihello_payload, iikeying_payload, rhello_payload, rikeying_payload,
    ty, write_chunk, write_header,
};
use super::crypto::{Cipher, DhGroup, DirKeys, SessionKeys, derive_keys, hmac_sha256, seal_flash};
use super::datagram::open_default;
use super::vlu::{Address, read_options, read_vlu, write_option, write_vlu};

/// EPD option: required hostname (RFC 7425 §4.4.2).
pub const EPD_HOSTNAME: u64 = 0x00;
/// EPD option: ancillary data (the rtmfp: URI).
pub const EPD_ANCILLARY: u64 = 0x0a;
/// EPD option: fingerprint (32 bytes).
pub const EPD_FINGERPRINT: u64 = 0x0f;

/// An EPD with one option.
pub fn epd(option: u64, value: &[u8]) -> Vec<u8> {
    let mut e = Vec::new();
    write_option(&mut e, option, value);
    e
}

/// Startup packet flags: timestamp present, mode 3.
const STARTUP: u8 = 0x08 | 3;

/// The IHello datagram (session id 0, default key).
pub fn ihello(epd: &[u8], tag: &[u8; 16], ts: u16) -> Vec<u8> {
    let mut p = Vec::new();
    write_header(&mut p, STARTUP, Some(ts), None);
    write_chunk(&mut p, ty::IHELLO, &ihello_payload(epd, tag));
    seal_flash([0; 4], &p, 0, &DirKeys::default_key())
}

/// Certificate fingerprint (RFC 7425 §4.4.3): SHA-256 of the certificate
/// up to and including its first marker, or of all of it.
pub fn fingerprint(cert: &[u8]) -> [u8; 32] {
    let end = match read_options(cert) {
        Ok((_, n, super::vlu::ListEnd::Marker)) => n,
        _ => cert.len(),
    };
    Sha256::digest(&cert[..end]).into()
}

/// Facts of a certificate (RFC 7425 §4.3 options).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertInfo {
    /// Hostname option.
    pub hostname: Option<Vec<u8>>,
    /// Accepts ancillary data.
    pub accepts_ancillary: bool,
    /// Ephemeral DH groups offered.
    pub ephemeral_groups: Vec<u64>,
    /// Static DH keys: (group, key length).
    pub static_keys: Vec<(u64, usize)>,
    /// Extra randomness bytes.
    pub randomness: usize,
    /// Options this decoder does not name: (type, length).
    pub other: Vec<(u64, usize)>,
    /// Why the options did not parse, if they did not.
    pub error: Option<&'static str>,
}

/// Reads a certificate's options.
pub fn cert_info(cert: &[u8]) -> CertInfo {
    let mut c = CertInfo::default();
    match read_options(cert) {
        Ok((opts, _, _)) => {
            for (t, v) in opts {
                match t {
                    0x00 => c.hostname = Some(v),
                    0x0a => c.accepts_ancillary = true,
                    0x0e => c.randomness = v.len(),
                    0x15 => {
                        if let Some((g, _)) = read_vlu(&v) {
                            c.ephemeral_groups.push(g)
                        }
                    }
                    0x1d => {
                        if let Some((g, n)) = read_vlu(&v) {
                            c.static_keys.push((g, v.len() - n))
                        }
                    }
                    _ => c.other.push((t, v.len())),
                }
            }
        }
        Err(e) => c.error = Some(e),
    }
    c
}

/// Why a handshake step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The datagram did not open with the default key or did not parse.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The responder offers no DH group this end can use.
    #[error("the responder offers no usable Diffie-Hellman group (it offers {0:?})")]
    NoGroup(Vec<u64>),
    /// The peer's DH public key fails the checks of RFC 7425 §4.6.2.
    #[error("the peer's Diffie-Hellman public key is invalid")]
    BadPublicKey,
    /// A step came out of order.
    #[error("unexpected {0}")]
    Unexpected(&'static str),
}

/// What the initiator learnt from a datagram.
#[derive(Debug, Clone)]
pub enum InitiatorEvent {
    /// RHello: cookie and responder certificate.
    RHello {
        /// Cookie.
        cookie: Vec<u8>,
        /// Certificate.
        cert: Vec<u8>,
    },
    /// Redirect to these addresses.
    Redirect(Vec<Address>),
    /// RIKeying: the session is open with these keys.
    Open(Box<OpenSession>),
    /// A datagram for another tag or session: ignored.
    Ignored,
}

/// An open session's parameters.
#[derive(Debug, Clone)]
pub struct OpenSession {
    /// Session id of the far end (SSID of packets this end sends).
    pub far_ssid: [u8; 4],
    /// Derived keys.
    pub keys: SessionKeys,
    /// Framing of packets this end sends.
    pub tx: DirKeys,
    /// Framing of packets this end receives.
    pub rx: DirKeys,
    /// DH group used.
    pub group: u64,
}

/// Negotiation flags (RFC 7425 §4.6.5): will send always, on request, request.
const SEND_ALWAYS: u8 = 0x04;
const SEND_ON_REQUEST: u8 = 0x02;
const REQUEST: u8 = 0x01;

/// (HMAC flags, HMAC length, sseq flags) of a keying component.
fn negotiation(comp: &[u8]) -> (u8, usize, u8) {
    let mut out = (0, 16, 0);
    if let Ok((opts, _, _)) = read_options(comp) {
        for (t, v) in opts {
            match t {
                0x1a if !v.is_empty() => {
                    out.0 = v[0];
                    if let Some((n, _)) = read_vlu(&v[1..]) {
                        out.1 = (n as usize).clamp(4, 32);
                    }
                }
                0x1e if !v.is_empty() => out.2 = v[0],
                _ => {}
            }
        }
    }
    out
}

fn sends(near: u8, far: u8) -> bool {
    near & SEND_ALWAYS != 0 || (far & REQUEST != 0 && near & SEND_ON_REQUEST != 0)
}

/// The framing both ways from the two components.
fn framing(keys: &SessionKeys, near: &[u8], far: &[u8]) -> (DirKeys, DirKeys) {
    let (nh, nlen, ns) = negotiation(near);
    let (fh, flen, fs) = negotiation(far);
    let tx = DirKeys {
        cipher: Cipher::new(&keys.encrypt),
        hmac: sends(nh, fh).then_some((keys.tx_hmac, flen)),
        sseq: sends(ns, fs),
    };
    let rx = DirKeys {
        cipher: Cipher::new(&keys.decrypt),
        hmac: sends(fh, nh).then_some((keys.rx_hmac, nlen)),
        sseq: sends(fs, ns),
    };
    (tx, rx)
}

/// The ephemeral DH public key option of a keying component.
fn dh_option(comp: &[u8]) -> Option<(u64, Vec<u8>)> {
    let (opts, _, _) = read_options(comp).ok()?;
    opts.into_iter()
        .find(|(t, _)| *t == 0x0d)
        .and_then(|(_, v)| {
            let (g, n) = read_vlu(&v)?;
            Some((g, v[n..].to_vec()))
        })
}

/// A keying component: DH key, randomness, HMAC and sseq negotiation.
fn component(group: u64, public: &[u8], random: &[u8], flags: u8) -> Vec<u8> {
    let mut c = Vec::new();
    let mut dh = Vec::new();
    write_vlu(&mut dh, group);
    dh.extend_from_slice(public);
    write_option(&mut c, 0x0d, &dh);
    write_option(&mut c, 0x0e, random);
    write_option(&mut c, 0x1a, &[flags, 16]);
    write_option(&mut c, 0x1e, &[flags]);
    c
}

/// The initiator side of the handshake.
pub struct Initiator {
    epd: Vec<u8>,
    tag: [u8; 16],
    ssid: [u8; 4],
    groups: Vec<u64>,
    private: Vec<u8>,
    random: Vec<u8>,
    flags: u8,
    cookie: Option<Vec<u8>>,
    skic: Option<Vec<u8>>,
    group: Option<DhGroup>,
}

impl Initiator {
    /// An initiator with its EPD, IHello tag, session id, the DH groups it
    /// accepts in order of preference, a private exponent (random bytes of
    /// the group's size, e.g. 40) and 64 bytes of extra randomness.
    pub fn new(
        epd: Vec<u8>,
        tag: [u8; 16],
        ssid: [u8; 4],
        groups: Vec<u64>,
        private: Vec<u8>,
        random: Vec<u8>,
    ) -> Self {
        Initiator {
            epd,
            tag,
            ssid,
            groups,
            private,
            random,
            flags: SEND_ON_REQUEST | REQUEST,
            cookie: None,
            skic: None,
            group: None,
        }
    }

    /// The IHello datagram.
    pub fn ihello(&self, ts: u16) -> Vec<u8> {
        ihello(&self.epd, &self.tag, ts)
    }

    /// Handles a datagram from the responder.
    pub fn handle(&mut self, datagram: &[u8]) -> Result<InitiatorEvent, HandshakeError> {
        let mut buf = Vec::new();
        let o = open_default(datagram, &mut buf).ok_or(HandshakeError::Malformed(
            "does not open with the default key",
        ))?;
        let p = o
            .packet
            .map_err(|_| HandshakeError::Malformed("packet header"))?;
        for c in p.chunks {
            match c.body {
                ChunkBody::RHello { tag, cookie, cert } if tag == self.tag => {
                    self.cookie = Some(cookie.clone());
                    return Ok(InitiatorEvent::RHello { cookie, cert });
                }
                ChunkBody::Redirect { tag, addresses } if tag == self.tag => {
                    return Ok(InitiatorEvent::Redirect(addresses));
                }
                ChunkBody::RIKeying {
                    responder_ssid,
                    skrc,
                    ..
                } => {
                    let (Some(skic), Some(g)) = (&self.skic, &self.group) else {
                        return Err(HandshakeError::Unexpected("RIKeying before IIKeying"));
                    };
                    let (rg, peer) = dh_option(&skrc)
                        .ok_or(HandshakeError::Malformed("SKRC without a DH public key"))?;
                    if rg != g.id {
                        return Err(HandshakeError::NoGroup(vec![rg]));
                    }
                    let s = g
                        .shared(&self.private, &peer)
                        .ok_or(HandshakeError::BadPublicKey)?;
                    let keys = derive_keys(&s, skic, &skrc);
                    let (tx, rx) = framing(&keys, skic, &skrc);
                    return Ok(InitiatorEvent::Open(Box::new(OpenSession {
                        far_ssid: responder_ssid,
                        keys,
                        tx,
                        rx,
                        group: g.id,
                    })));
                }
                ChunkBody::Malformed { reason, .. } => {
                    return Err(HandshakeError::Malformed(reason));
                }
                _ => {}
            }
        }
        Ok(InitiatorEvent::Ignored)
    }

    /// The IIKeying datagram, after an RHello with this certificate.
    pub fn iikeying(&mut self, cert: &[u8], ts: u16) -> Result<Vec<u8>, HandshakeError> {
        let cookie = self
            .cookie
            .clone()
            .ok_or(HandshakeError::Unexpected("IIKeying before RHello"))?;
        let info = cert_info(cert);
        let offered: Vec<u64> = info
            .ephemeral_groups
            .iter()
            .copied()
            .chain(info.static_keys.iter().map(|k| k.0))
            .collect();
        let gid = self
            .groups
            .iter()
            .copied()
            .find(|g| offered.contains(g))
            .ok_or(HandshakeError::NoGroup(offered))?;
        let g = DhGroup::new(gid).ok_or(HandshakeError::NoGroup(vec![gid]))?;
        let public = g.public(&self.private);
        let skic = component(gid, &public, &self.random, self.flags);
        // Our certificate: accepts ancillary data, offers this group.
        let mut my_cert = Vec::new();
        write_option(&mut my_cert, 0x0a, &[]);
        let mut gv = Vec::new();
        write_vlu(&mut gv, gid);
        write_option(&mut my_cert, 0x15, &gv);
        let mut p = Vec::new();
        write_header(&mut p, STARTUP, Some(ts), None);
        write_chunk(
            &mut p,
            ty::IIKEYING,
            &iikeying_payload(self.ssid, &cookie, &my_cert, &skic, b"X"),
        );
        self.skic = Some(skic);
        self.group = Some(g);
        Ok(seal_flash([0; 4], &p, 0, &DirKeys::default_key()))
    }
}

/// What the responder does with a datagram.
#[derive(Debug, Clone)]
pub enum ResponderEvent {
    /// Send this datagram back.
    Reply(Vec<u8>),
    /// Send this datagram back: the session is open.
    Open(Vec<u8>, Box<OpenSession>),
    /// Not for this responder (EPD not selected, bad cookie, ...).
    Ignored(&'static str),
}

/// A responder (server side) built from the same codec, for tests and
/// loopback checks.
pub struct Responder {
    /// Certificate sent in RHello.
    pub cert: Vec<u8>,
    hostname: Option<Vec<u8>>,
    secret: [u8; 32],
    ssid: [u8; 4],
    private: Vec<u8>,
    random: Vec<u8>,
    /// Redirect every IHello to these addresses instead.
    pub redirect: Option<Vec<Address>>,
}

impl Responder {
    /// A responder offering `groups`, with a hostname (or none), a cookie
    /// secret, its session id, a private exponent and 64 random bytes.
    pub fn new(
        hostname: Option<&str>,
        groups: &[u64],
        secret: [u8; 32],
        ssid: [u8; 4],
        private: Vec<u8>,
        random: Vec<u8>,
    ) -> Self {
        let mut cert = Vec::new();
        if let Some(h) = hostname {
            write_option(&mut cert, 0x00, h.as_bytes());
        }
        write_option(&mut cert, 0x0a, &[]);
        for g in groups {
            let mut v = Vec::new();
            write_vlu(&mut v, *g);
            write_option(&mut cert, 0x15, &v);
        }
        write_option(&mut cert, 0x0e, &random);
        Responder {
            cert,
            hostname: hostname.map(|h| h.as_bytes().to_vec()),
            secret,
            ssid,
            private,
            random,
            redirect: None,
        }
    }

    fn selected(&self, epd: &[u8]) -> bool {
        let Ok((opts, _, _)) = read_options(epd) else {
            return false;
        };
        if let Some((_, fp)) = opts.iter().find(|(t, _)| *t == EPD_FINGERPRINT) {
            return fp[..] == fingerprint(&self.cert)[..];
        }
        if let Some((_, h)) = opts.iter().find(|(t, _)| *t == EPD_HOSTNAME) {
            return self.hostname.as_deref() == Some(&h[..]);
        }
        opts.iter().any(|(t, _)| *t == EPD_ANCILLARY)
    }

    fn cookie(&self) -> Vec<u8> {
        hmac_sha256(&self.secret, &[b"cookie"]).to_vec()
    }

    /// Handles one datagram from an initiator at timestamp `ts`.
    pub fn handle(&self, datagram: &[u8], ts: u16) -> Result<ResponderEvent, HandshakeError> {
        let mut buf = Vec::new();
        let o = open_default(datagram, &mut buf).ok_or(HandshakeError::Malformed(
            "does not open with the default key",
        ))?;
        let p = o
            .packet
            .map_err(|_| HandshakeError::Malformed("packet header"))?;
        let Some(c) = p.chunks.into_iter().next() else {
            return Ok(ResponderEvent::Ignored("no chunk"));
        };
        let mut out = Vec::new();
        write_header(&mut out, STARTUP, Some(ts), None);
        match c.body {
            ChunkBody::IHello { epd, tag } => {
                if !self.selected(&epd) {
                    return Ok(ResponderEvent::Ignored(
                        "EPD does not select this responder",
                    ));
                }
                if let Some(addrs) = &self.redirect {
                    let mut pl = Vec::new();
                    super::vlu::write_field(&mut pl, &tag);
                    for a in addrs {
                        a.encode(&mut pl);
                    }
                    write_chunk(&mut out, ty::REDIRECT, &pl);
                } else {
                    write_chunk(
                        &mut out,
                        ty::RHELLO,
                        &rhello_payload(&tag, &self.cookie(), &self.cert),
                    );
                }
                Ok(ResponderEvent::Reply(seal_flash(
                    [0; 4],
                    &out,
                    0,
                    &DirKeys::default_key(),
                )))
            }
            ChunkBody::IIKeying {
                initiator_ssid,
                cookie,
                skic,
                ..
            } => {
                if cookie != self.cookie() {
                    return Ok(ResponderEvent::Ignored("cookie does not match"));
                }
                let (gid, peer) =
                    dh_option(&skic).ok_or(HandshakeError::Malformed("SKIC without a DH key"))?;
                let g = DhGroup::new(gid).ok_or(HandshakeError::NoGroup(vec![gid]))?;
                let s = g
                    .shared(&self.private, &peer)
                    .ok_or(HandshakeError::BadPublicKey)?;
                let skrc = component(
                    gid,
                    &g.public(&self.private),
                    &self.random,
                    SEND_ALWAYS | SEND_ON_REQUEST | REQUEST,
                );
                let keys = derive_keys(&s, &skrc, &skic);
                let (tx, rx) = framing(&keys, &skrc, &skic);
                write_chunk(
                    &mut out,
                    ty::RIKEYING,
                    &rikeying_payload(self.ssid, &skrc, b"X"),
                );
                // RIKeying goes to the initiator's session id, default key.
                let d = seal_flash(initiator_ssid, &out, 0, &DirKeys::default_key());
                Ok(ResponderEvent::Open(
                    d,
                    Box::new(OpenSession {
                        far_ssid: initiator_ssid,
                        keys,
                        tx,
                        rx,
                        group: gid,
                    }),
                ))
            }
            _ => Ok(ResponderEvent::Ignored("not a startup chunk")),
        }
    }
}

/// Decodes a datagram a session end receives, for checks after the
/// handshake: the packet opened with `rx`.
pub fn open_session(datagram: &[u8], rx: &DirKeys) -> Option<super::chunk::Packet> {
    let mut buf = Vec::new();
    let o = super::crypto::open_flash(datagram, rx, &mut buf).ok()?;
    decode_packet(&buf[o.margin_len..]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(group: u64) {
        let resp = Responder::new(
            Some("srv"),
            &[16, 14, 2],
            [9; 32],
            [7, 0, 0, 0],
            vec![0x35; 40],
            vec![1; 64],
        );
        let mut ini = Initiator::new(
            epd(EPD_ANCILLARY, b"rtmfp://127.0.0.1/app"),
            [3; 16],
            [2, 0, 0, 0],
            vec![group],
            vec![0x5c; 40],
            vec![2; 64],
        );
        let ResponderEvent::Reply(rh) = resp.handle(&ini.ihello(0), 5).unwrap() else {
            panic!()
        };
        let InitiatorEvent::RHello { cert, .. } = ini.handle(&rh).unwrap() else {
            panic!()
        };
        let ik = ini.iikeying(&cert, 1).unwrap();
        let ResponderEvent::Open(rik, rs) = resp.handle(&ik, 6).unwrap() else {
            panic!()
        };
        let InitiatorEvent::Open(is) = ini.handle(&rik).unwrap() else {
            panic!()
        };
        assert_eq!(is.group, group);
        assert_eq!(is.keys.encrypt, rs.keys.decrypt);
        assert_eq!(is.keys.tx_hmac, rs.keys.rx_hmac);
        assert_eq!(is.far_ssid, [7, 0, 0, 0]);
        // A session packet each way.
        let mut p = Vec::new();
        write_header(&mut p, 0x08 | 1, Some(2), None);
        write_chunk(&mut p, ty::PING, b"hi");
        let d = seal_flash(is.far_ssid, &p, 0, &is.tx);
        let got = open_session(&d, &rs.rx).unwrap();
        assert_eq!(got.chunks[0].body, ChunkBody::Ping(b"hi".to_vec()));
        assert!(is.tx.hmac.is_some() && is.tx.sseq && is.rx.hmac.is_some());
    }

    #[test]
    fn full_handshake_group_2_and_14() {
        run(2);
        run(14);
    }

    #[test]
    fn epd_selection() {
        let resp = Responder::new(
            Some("srv"),
            &[2],
            [9; 32],
            [7, 0, 0, 0],
            vec![0x35; 40],
            vec![1; 64],
        );
        let fp = fingerprint(&resp.cert);
        for (e, ok) in [
            (epd(EPD_FINGERPRINT, &fp), true),
            (epd(EPD_FINGERPRINT, &[0; 32]), false),
            (epd(EPD_HOSTNAME, b"srv"), true),
            (epd(EPD_HOSTNAME, b"other"), false),
        ] {
            let r = resp.handle(&ihello(&e, &[1; 16], 0), 0).unwrap();
            assert_eq!(matches!(r, ResponderEvent::Reply(_)), ok);
        }
    }
}
