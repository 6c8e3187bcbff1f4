//! The RTMFP prober's network edge: one UDP socket, the sans-IO
//! [`crate::proto::rtmfp::handshake::Initiator`] driven with the wall clock.
//! IHello is sent again after 1 s, then every 1.5 s more (as rtmfp-cpp
//! does), until the time limit.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use crate::proto::rtmfp::crypto::unscramble_sid;
use crate::proto::rtmfp::handshake::{
    CertInfo, HandshakeError, Initiator, InitiatorEvent, cert_info, fingerprint,
};
use crate::proto::rtmfp::vlu::Address;

/// An `rtmfp://host[:port]/app...` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmfpUrl {
    /// Host (brackets removed from IPv6 literals).
    pub host: String,
    /// Port (default 1935).
    pub port: u16,
    /// The whole URL, as the ancillary-data EPD carries it.
    pub url: String,
}

impl RtmfpUrl {
    /// Parses a URL; `Err` says what is wrong.
    pub fn parse(s: &str) -> Result<RtmfpUrl, String> {
        let rest = s
            .strip_prefix("rtmfp://")
            .ok_or_else(|| format!("{s}: not an rtmfp:// URL"))?;
        let authority = rest.split('/').next().unwrap_or("");
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let (host, port) = if let Some(h) = authority.strip_prefix('[') {
            let (h, after) = h
                .split_once(']')
                .ok_or_else(|| format!("{s}: unclosed '[' in the host"))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(format!("{s}: no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| format!("{s}: bad port {p:?}"))?,
            None => 1935,
        };
        Ok(RtmfpUrl {
            host,
            port,
            url: s.to_string(),
        })
    }
}

/// What to do.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The endpoint discriminator to send.
    pub epd: Vec<u8>,
    /// Go on to IIKeying/RIKeying.
    pub full: bool,
    /// DH groups accepted, in order of preference.
    pub groups: Vec<u64>,
    /// Time limit per phase.
    pub timeout: Duration,
}

/// What the responder said.
#[derive(Debug, Clone, Default)]
pub struct ProbeResult {
    /// Address probed.
    pub server: Option<SocketAddr>,
    /// IHello sent (including resends).
    pub ihellos: u32,
    /// Time from the first IHello to the RHello/Redirect.
    pub rhello_ms: Option<f64>,
    /// Time from the IHello that was answered to the answer.
    pub rtt_ms: Option<f64>,
    /// Cookie.
    pub cookie: Option<Vec<u8>>,
    /// Certificate.
    pub cert: Option<Vec<u8>>,
    /// Its facts.
    pub cert_info: Option<CertInfo>,
    /// Its fingerprint.
    pub fingerprint: Option<[u8; 32]>,
    /// Redirect addresses.
    pub redirect: Option<Vec<Address>>,
    /// IIKeying to RIKeying.
    pub keying_ms: Option<f64>,
    /// First IHello to an open session.
    pub open_ms: Option<f64>,
    /// DH group used.
    pub group: Option<u64>,
    /// The responder's session id.
    pub responder_ssid: Option<[u8; 4]>,
    /// HMAC tag lengths (sent, received); 0 = checksum.
    pub hmac: Option<(usize, usize)>,
    /// Session sequence numbers (sent, received).
    pub sseq: Option<(bool, bool)>,
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Name resolution or socket setup.
    #[error("{0}")]
    Network(String),
    /// No RHello/Redirect (or RIKeying) within the limit.
    #[error(
        "no answer to {what} within {secs:.1} s ({sent} sent): no RTMFP server there, or the EPD does not select it"
    )]
    NoAnswer {
        /// IHello or IIKeying.
        what: &'static str,
        /// Seconds waited.
        secs: f64,
        /// Datagrams sent.
        sent: u32,
    },
    /// A redirect when a session was wanted.
    #[error("redirected to {0}: probe that address instead")]
    Redirected(String),
    /// The responder broke the protocol.
    #[error("{0}")]
    Malformed(HandshakeError),
    /// The handshake failed (groups, keys).
    #[error("{0}")]
    Handshake(HandshakeError),
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // Without a system random source the values are still unique enough
    // for a probe; the clock fills them.
    if getrandom::fill(&mut b).is_err() {
        let t = Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id());
        for (i, x) in b.iter_mut().enumerate() {
            *x = (t >> ((i % 16) * 8)) as u8 ^ i as u8;
        }
    }
    b
}

/// Probes one responder. `result` is filled as far as the probe got.
pub fn probe(
    url: &RtmfpUrl,
    opts: &ProbeOptions,
    result: &mut ProbeResult,
) -> Result<(), ProbeError> {
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| ProbeError::Network(format!("cannot resolve {}: {e}", url.host)))?
        .next()
        .ok_or_else(|| ProbeError::Network(format!("{} has no address", url.host)))?;
    result.server = Some(addr);
    let bind: SocketAddr = if addr.is_ipv6() {
        "[::]:0".parse().unwrap_or(addr)
    } else {
        "0.0.0.0:0".parse().unwrap_or(addr)
    };
    let sock =
        UdpSocket::bind(bind).map_err(|e| ProbeError::Network(format!("UDP socket: {e}")))?;
    sock.connect(addr)
        .map_err(|e| ProbeError::Network(format!("UDP to {addr}: {e}")))?;
    let private: [u8; 60] = random();
    let random64: [u8; 64] = random();
    let mut ssid: [u8; 4] = random();
    if ssid == [0; 4] {
        ssid = [1, 0, 0, 0];
    }
    let mut ini = Initiator::new(
        opts.epd.clone(),
        random(),
        ssid,
        opts.groups.clone(),
        private.to_vec(),
        random64.to_vec(),
    );
    let start = Instant::now();
    let ticks = |t: Instant| ((t - start).as_millis() / 4) as u16;
    let mut buf = vec![0u8; 8192];
    // Phase 1: IHello until RHello/Redirect.
    let mut next_send = start;
    let mut gap = Duration::from_millis(1000);
    let mut last_sent = start;
    // Datagrams that came and were not an answer: at the deadline, the
    // server answered with something that does not decode (exit 9), not
    // nothing (exit 4).
    let mut strange = 0u32;
    let cert = loop {
        let now = Instant::now();
        if now - start >= opts.timeout {
            if strange > 0 {
                return Err(ProbeError::Malformed(HandshakeError::Malformed(
                    "datagrams came from the server, none an RHello or Redirect that decodes",
                )));
            }
            return Err(ProbeError::NoAnswer {
                what: "IHello",
                secs: opts.timeout.as_secs_f64(),
                sent: result.ihellos,
            });
        }
        if now >= next_send {
            let _ = sock.send(&ini.ihello(ticks(now)));
            result.ihellos += 1;
            last_sent = now;
            next_send = now + gap;
            gap = Duration::from_millis(1500);
        }
        let wait = next_send
            .min(start + opts.timeout)
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let _ = sock.set_read_timeout(Some(wait));
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(ProbeError::Network(format!(
                    "{addr}: ICMP port unreachable: nothing listens on that UDP port"
                )));
            }
            Err(_) => continue,
        };
        match ini.handle(&buf[..n]) {
            Ok(InitiatorEvent::RHello { cookie, cert }) => {
                let t = Instant::now();
                result.rhello_ms = Some((t - start).as_secs_f64() * 1e3);
                result.rtt_ms = Some((t - last_sent).as_secs_f64() * 1e3);
                result.cert_info = Some(cert_info(&cert));
                result.fingerprint = Some(fingerprint(&cert));
                result.cookie = Some(cookie);
                result.cert = Some(cert.clone());
                break cert;
            }
            Ok(InitiatorEvent::Redirect(a)) => {
                let t = Instant::now();
                result.rhello_ms = Some((t - start).as_secs_f64() * 1e3);
                result.rtt_ms = Some((t - last_sent).as_secs_f64() * 1e3);
                let list = a
                    .iter()
                    .map(|x| x.addr.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                result.redirect = Some(a);
                if opts.full {
                    return Err(ProbeError::Redirected(if list.is_empty() {
                        "the address the IHello came from".into()
                    } else {
                        list
                    }));
                }
                return Ok(());
            }
            Ok(_) => {
                strange += 1;
                continue;
            }
            Err(e) => return Err(ProbeError::Malformed(e)),
        }
    };
    if !opts.full {
        return Ok(());
    }
    // Phase 2: IIKeying until RIKeying.
    let k0 = Instant::now();
    let mut sent = 0;
    let mut next_send = k0;
    let mut malformed = None;
    loop {
        let now = Instant::now();
        if now - k0 >= opts.timeout {
            if let Some(e) = malformed {
                return Err(ProbeError::Malformed(e));
            }
            return Err(ProbeError::NoAnswer {
                what: "IIKeying",
                secs: opts.timeout.as_secs_f64(),
                sent,
            });
        }
        if now >= next_send {
            let d = ini
                .iikeying(&cert, ticks(now))
                .map_err(ProbeError::Handshake)?;
            let _ = sock.send(&d);
            sent += 1;
            next_send = now + Duration::from_millis(1500);
        }
        let wait = next_send
            .min(k0 + opts.timeout)
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let _ = sock.set_read_timeout(Some(wait));
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(ProbeError::Network(format!(
                    "{addr}: ICMP port unreachable: nothing listens on that UDP port"
                )));
            }
            Err(_) => continue,
        };
        // Session packets that beat the RIKeying are not ours to read yet.
        if unscramble_sid(&buf[..n]) != ssid && unscramble_sid(&buf[..n]) != [0; 4] {
            continue;
        }
        match ini.handle(&buf[..n]) {
            Ok(InitiatorEvent::Open(s)) => {
                let t = Instant::now();
                result.keying_ms = Some((t - k0).as_secs_f64() * 1e3);
                result.open_ms = Some((t - start).as_secs_f64() * 1e3);
                result.group = Some(s.group);
                result.responder_ssid = Some(s.far_ssid);
                result.hmac = Some((
                    s.tx.hmac.as_ref().map_or(0, |h| h.1),
                    s.rx.hmac.as_ref().map_or(0, |h| h.1),
                ));
                result.sseq = Some((s.tx.sseq, s.rx.sseq));
                return Ok(());
            }
            Ok(_) => continue,
            // Noise is waited through; if nothing better comes, it is
            // what the server answered.
            Err(e @ HandshakeError::Malformed(_)) => {
                malformed = Some(e);
                continue;
            }
            Err(e) => return Err(ProbeError::Handshake(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = RtmfpUrl::parse("rtmfp://[::1]:19400/app/x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 19400));
        let u = RtmfpUrl::parse("rtmfp://example.com/live").unwrap();
        assert_eq!(u.port, 1935);
        assert!(RtmfpUrl::parse("rtmp://x/y").is_err());
        assert!(RtmfpUrl::parse("rtmfp://h:x/y").is_err());
    }
}
