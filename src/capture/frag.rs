//! IP fragment reassembly (RFC 791 §3.2 for IPv4, RFC 8200 §4.5 for IPv6)
//! for UDP datagrams, in bounded memory: at most [`MAX_DATAGRAMS`] datagrams
//! in progress and [`MAX_BYTES`] bytes held; a datagram is dropped when it
//! would exceed 65 535 bytes, when the capture time moves
//! [`TIMEOUT_SECS`] past its first fragment, or to make room (oldest first).
//! Overlapping fragments keep the first copy of each byte.

use std::collections::HashMap;
use std::net::IpAddr;

use super::IpFragment;

/// Datagrams being reassembled at once.
pub const MAX_DATAGRAMS: usize = 1024;
/// Bytes held over all datagrams in progress.
pub const MAX_BYTES: usize = 16 << 20;
/// A datagram whose fragments take longer than this (capture time) is dropped.
pub const TIMEOUT_SECS: i64 = 30;
/// Largest reassembled payload (IPv4 total length limit).
pub const MAX_DATAGRAM: usize = 65_535;

struct Partial {
    data: Vec<u8>,
    /// Received byte ranges, sorted and merged.
    have: Vec<(u32, u32)>,
    /// Total length, once the last fragment came.
    total: Option<u32>,
    first_sec: i64,
    ecn: u8,
    seq: u64,
}

/// Reassembles fragmented datagrams.
#[derive(Default)]
pub struct Defragmenter {
    parts: HashMap<(IpAddr, IpAddr, u32, u8), Partial>,
    bytes: usize,
    seq: u64,
    /// Datagrams given up (limits, timeouts, truncated fragments).
    pub dropped: u64,
}

/// A reassembled datagram: protocol payload (e.g. UDP header + data) and the
/// ECN codepoint of its first fragment.
pub struct Whole {
    /// The bytes after the IP header(s).
    pub bytes: Vec<u8>,
    /// ECN codepoint of the first fragment seen.
    pub ecn: u8,
}

impl Defragmenter {
    /// A new reassembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.bytes
    }

    /// Datagrams still waiting for a fragment.
    pub fn incomplete(&self) -> usize {
        self.parts.len()
    }

    /// Adds a fragment seen at `sec`; returns the datagram once complete.
    pub fn add(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        ecn: u8,
        f: &IpFragment<'_>,
        sec: i64,
    ) -> Option<Whole> {
        self.expire(sec);
        let key = (src, dst, f.id, f.protocol);
        let end = f.offset as usize + f.payload.len();
        if f.truncated || end > MAX_DATAGRAM {
            if let Some(p) = self.parts.remove(&key) {
                self.bytes -= p.data.len();
            }
            self.dropped += 1;
            return None;
        }
        if !self.parts.contains_key(&key) {
            while self.parts.len() >= MAX_DATAGRAMS || self.bytes + end > MAX_BYTES {
                if !self.drop_oldest() {
                    break;
                }
            }
            self.seq += 1;
            self.parts.insert(
                key,
                Partial {
                    data: Vec::new(),
                    have: Vec::new(),
                    total: None,
                    first_sec: sec,
                    ecn,
                    seq: self.seq,
                },
            );
        }
        let p = self.parts.get_mut(&key)?;
        if p.data.len() < end {
            let grow = end - p.data.len();
            if self.bytes + grow > MAX_BYTES {
                self.bytes -= p.data.len();
                self.parts.remove(&key);
                self.dropped += 1;
                return None;
            }
            self.bytes += grow;
            p.data.resize(end, 0);
        }
        // Keep bytes already received; fill only the holes.
        let (from, to) = (f.offset, end as u32);
        let mut at = from;
        let mut holes = Vec::new();
        for &(a, b) in &p.have {
            if b <= at || a >= to {
                continue;
            }
            if a > at {
                holes.push((at, a));
            }
            at = at.max(b);
        }
        if at < to {
            holes.push((at, to));
        }
        for (a, b) in holes {
            let (a, b) = (a as usize, b as usize);
            p.data[a..b].copy_from_slice(&f.payload[a - from as usize..b - from as usize]);
        }
        p.have.push((from, to));
        p.have.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(p.have.len());
        for &(a, b) in &p.have {
            match merged.last_mut() {
                Some(l) if a <= l.1 => l.1 = l.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        p.have = merged;
        if !f.more {
            p.total = Some(to);
        }
        let done = p
            .total
            .is_some_and(|t| p.have.len() == 1 && p.have[0] == (0, t));
        if done {
            let mut p = self.parts.remove(&key)?;
            self.bytes -= p.data.len();
            p.data.truncate(p.total.unwrap_or(0) as usize);
            return Some(Whole {
                bytes: p.data,
                ecn: p.ecn,
            });
        }
        None
    }

    fn drop_oldest(&mut self) -> bool {
        let Some(k) = self
            .parts
            .iter()
            .min_by_key(|(_, p)| p.seq)
            .map(|(k, _)| *k)
        else {
            return false;
        };
        if let Some(p) = self.parts.remove(&k) {
            self.bytes -= p.data.len();
            self.dropped += 1;
        }
        true
    }

    fn expire(&mut self, sec: i64) {
        if self.parts.is_empty() {
            return;
        }
        let before = self.parts.len();
        let mut freed = 0;
        self.parts.retain(|_, p| {
            let keep = sec - p.first_sec <= TIMEOUT_SECS && sec >= p.first_sec - TIMEOUT_SECS;
            if !keep {
                freed += p.data.len();
            }
            keep
        });
        self.bytes -= freed;
        self.dropped += (before - self.parts.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frag(id: u32, offset: u32, more: bool, payload: &[u8]) -> IpFragment<'_> {
        IpFragment {
            id,
            offset,
            more,
            protocol: 17,
            payload,
            truncated: false,
        }
    }

    proptest! {
        #[test]
        fn any_order_reassembles(data in proptest::collection::vec(any::<u8>(), 1..3000), cut in 1usize..1000, seed: u64) {
            let a: IpAddr = "10.0.0.1".parse().unwrap();
            let mut pieces: Vec<(u32, bool, &[u8])> = data
                .chunks(cut.div_ceil(8) * 8)
                .enumerate()
                .map(|(i, c)| ((i * cut.div_ceil(8) * 8) as u32, true, c))
                .collect();
            if let Some(l) = pieces.last_mut() {
                l.1 = false;
            }
            // A deterministic shuffle and one duplicate.
            let n = pieces.len();
            for i in 0..n {
                let j = (seed.wrapping_mul(i as u64 + 7) % n as u64) as usize;
                pieces.swap(i, j);
            }
            pieces.push(pieces[0]);
            let mut d = Defragmenter::new();
            let mut out = None;
            for (off, more, c) in &pieces {
                if let Some(w) = d.add(a, a, 2, &frag(9, *off, *more, c), 0) {
                    out = Some(w.bytes);
                }
            }
            prop_assert_eq!(out, Some(data));
        }

        #[test]
        fn bounded(frags in proptest::collection::vec((any::<u16>(), 0u32..70_000, any::<bool>(), 0usize..2000), 0..200)) {
            let a: IpAddr = "10.0.0.1".parse().unwrap();
            let buf = vec![0u8; 2000];
            let mut d = Defragmenter::new();
            for (id, off, more, len) in frags {
                let _ = d.add(a, a, 0, &frag(u32::from(id), off, more, &buf[..len]), 0);
                prop_assert!(d.held() <= MAX_BYTES);
            }
        }
    }
}
