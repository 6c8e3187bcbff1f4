//! Key logs (format of `testdata/rtmfp/README.md`): one `RTMFP_SESSION`
//! line per logging endpoint per session, giving the AES keys, HMAC and
//! session-sequence use of each direction. Parsing is strict per line (a
//! bad line is an error naming the line) and never panics. Keys are held in
//! [`DirKeys`]; nothing here prints them.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::crypto::{Cipher, DirKeys};

/// One `RTMFP_SESSION` line.
#[derive(Clone)]
pub struct KeyEntry {
    /// Session id the near end chose (SSID of far → near packets).
    pub near_ssid: [u8; 4],
    /// Session id the far end chose (SSID of near → far packets).
    pub far_ssid: [u8; 4],
    /// Near address.
    pub near: SocketAddr,
    /// Far address.
    pub far: SocketAddr,
    /// `initiator` or `responder`.
    pub role: String,
    /// DH group.
    pub dh_group: u64,
    /// Keys of near → far packets.
    pub tx: DirKeys,
    /// Keys of far → near packets.
    pub rx: DirKeys,
    /// AES key near → far (for comparisons in tests).
    pub enc_key: [u8; 16],
    /// AES key far → near.
    pub dec_key: [u8; 16],
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeyEntry {{ near: {}, far: {}, role: {}, enc_key: {:02x}…, dec_key: {:02x}… }}",
            self.near, self.far, self.role, self.enc_key[0], self.dec_key[0]
        )
    }
}

/// A parsed key log, indexed by (src, dst, ssid) of the packets each key opens.
#[derive(Debug, Clone, Default)]
pub struct KeyLog {
    /// Entries in file order.
    pub entries: Vec<KeyEntry>,
    index: HashMap<(SocketAddr, SocketAddr, [u8; 4]), Vec<DirKeys>, super::vlu::FnvBuild>,
}

/// A key log line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key log line {line}: {reason}")]
pub struct KeyLogError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Most entries a key log may hold.
pub const MAX_ENTRIES: usize = 1 << 20;

fn hex_bytes<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl KeyLog {
    /// Parses a whole key log.
    pub fn parse(text: &str) -> Result<KeyLog, KeyLogError> {
        let mut log = KeyLog::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let e = parse_line(line).map_err(|reason| KeyLogError {
                line: i + 1,
                reason: reason.to_string(),
            })?;
            if log.entries.len() >= MAX_ENTRIES {
                return Err(KeyLogError {
                    line: i + 1,
                    reason: "too many entries".into(),
                });
            }
            log.add(e);
        }
        Ok(log)
    }

    /// Adds an entry.
    pub fn add(&mut self, e: KeyEntry) {
        self.index
            .entry((e.near, e.far, e.far_ssid))
            .or_default()
            .push(e.tx.clone());
        self.index
            .entry((e.far, e.near, e.near_ssid))
            .or_default()
            .push(e.rx.clone());
        self.entries.push(e);
    }

    /// Keys that may open a packet with session id `sid` sent `src` → `dst`.
    pub fn keys_for(&self, src: SocketAddr, dst: SocketAddr, sid: [u8; 4]) -> &[DirKeys] {
        self.index
            .get(&(src, dst, sid))
            .map(|v| &v[..])
            .unwrap_or(&[])
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn parse_line(line: &str) -> Result<KeyEntry, &'static str> {
    let mut it = line.split_ascii_whitespace();
    if it.next() != Some("RTMFP_SESSION") {
        return Err("expected RTMFP_SESSION");
    }
    let mut pos = || it.next().ok_or("missing field");
    let near_ssid = hex_bytes::<4>(pos()?).ok_or("bad near_ssid (8 hex digits)")?;
    let far_ssid = hex_bytes::<4>(pos()?).ok_or("bad far_ssid (8 hex digits)")?;
    let enc_key = hex_bytes::<16>(pos()?).ok_or("bad enc_key (32 hex digits)")?;
    let dec_key = hex_bytes::<16>(pos()?).ok_or("bad dec_key (32 hex digits)")?;
    let mut kv: HashMap<&str, &str> = HashMap::new();
    for w in it {
        let (k, v) = w.split_once('=').ok_or("expected key=value")?;
        kv.insert(k, v);
    }
    let addr = |k: &str| -> Result<SocketAddr, &'static str> {
        kv.get(k)
            .ok_or("missing near= or far=")?
            .parse()
            .map_err(|_| "bad address (ip:port, [v6]:port)")
    };
    let near = addr("near")?;
    let far = addr("far")?;
    let num = |k: &str, d: u64| -> Result<u64, &'static str> {
        match kv.get(k) {
            None => Ok(d),
            Some(v) => v.parse().map_err(|_| "bad number"),
        }
    };
    let hmac = |len_k: &str, key_k: &str| -> Result<Option<([u8; 32], usize)>, &'static str> {
        let n = num(len_k, 0)?;
        if n == 0 {
            return Ok(None);
        }
        if !(1..=32).contains(&n) {
            return Err("HMAC length must be 0..32");
        }
        let k = kv
            .get(key_k)
            .and_then(|s| hex_bytes::<32>(s))
            .ok_or("HMAC length given without a 32-byte HMAC key")?;
        Ok(Some((k, n as usize)))
    };
    let tx = DirKeys {
        cipher: Cipher::new(&enc_key),
        hmac: hmac("tx_hmac", "tx_hmac_key")?,
        sseq: num("tx_sseq", 0)? != 0,
    };
    let rx = DirKeys {
        cipher: Cipher::new(&dec_key),
        hmac: hmac("rx_hmac", "rx_hmac_key")?,
        sseq: num("rx_sseq", 0)? != 0,
    };
    Ok(KeyEntry {
        near_ssid,
        far_ssid,
        near,
        far,
        role: kv.get("role").copied().unwrap_or("").to_string(),
        dh_group: num("dh_group", 0)?,
        tx,
        rx,
        enc_key,
        dec_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LINE: &str = "RTMFP_SESSION 02000000 03000000 4a058fea1d5bc2ac5c62ed80d85557e8 cd92c1b27c1a44529667ade272cdc2ba near=127.0.0.1:19400 far=[::1]:19410 role=responder dh_group=16 tx_hmac=16 tx_hmac_key=2b0360cc5e20c01eb28123ce422ba955e659a560ba90d89336c9e22d39775d63 rx_hmac=0 rx_hmac_key=- tx_sseq=1 rx_sseq=0";

    #[test]
    fn parses_a_line() {
        let k = KeyLog::parse(&format!("# c\n{LINE}\n")).unwrap();
        let e = &k.entries[0];
        assert_eq!(e.far_ssid, [3, 0, 0, 0]);
        assert_eq!(e.far.to_string(), "[::1]:19410");
        assert_eq!(e.tx.hmac.as_ref().unwrap().1, 16);
        assert!(e.rx.hmac.is_none() && e.tx.sseq && !e.rx.sseq);
        assert_eq!(k.keys_for(e.near, e.far, [3, 0, 0, 0]).len(), 1);
        assert!(!format!("{e:?}").contains("4a058fea1d5b"));
        let err = KeyLog::parse("x\nRTMFP_SESSION 02").unwrap_err();
        assert_eq!(err.line, 1);
    }

    proptest! {
        #[test]
        fn never_panics(cut in 0usize..400, flip in 0usize..400, c in any::<char>()) {
            let cut = cut.min(LINE.len());
            let _ = KeyLog::parse(&LINE[..cut]);
            let mut s: Vec<char> = LINE.chars().collect();
            let i = flip % s.len();
            s[i] = c;
            let _ = KeyLog::parse(&s.into_iter().collect::<String>());
        }
        #[test]
        fn garbage(s in ".{0,200}") {
            let _ = KeyLog::parse(&s);
        }
    }
}
