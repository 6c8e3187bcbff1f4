//! Words and JSON for RTMFP records (`rtmfp_packet`) and the per-session
//! `--stats` of `dump`. Chunk `fields` use the names of the ground truth of
//! `testdata/rtmfp` (flow ids, sequence numbers, ack ranges, ECN count,
//! handshake fields as hex).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rtmptool::analyze::RtmfpPacket;
use rtmptool::capture::Timestamp;
use rtmptool::capture::tcp::Dir;
use rtmptool::proto::rtmfp::chunk::{Chunk, ChunkBody, chunk_name};
use rtmptool::proto::rtmfp::vlu::read_options;
use rtmptool::text::sanitize_bytes;
use serde_json::{Value as Json, json};

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn ecn_name(e: u8) -> &'static str {
    match e {
        1 => "ECT(1)",
        2 => "ECT(0)",
        3 => "CE",
        _ => "Not-ECT",
    }
}

/// Flow metadata for humans: RTMP-in-RTMFP flows (`TC` 0x04, RFC 7425
/// §5.1.3) by their stream, others as text.
pub fn metadata_text(md: &[u8]) -> String {
    if md.len() >= 3 && &md[..3] == b"TC\x04" {
        let stream = match md.get(3) {
            None | Some(0) => 0,
            Some(_) if md.len() > 4 => {
                rtmptool::proto::rtmfp::vlu::read_vlu(&md[4..]).map_or(u64::from(md[3]), |v| v.0)
            }
            Some(&x) => u64::from(x),
        };
        return format!("RTMP stream {stream}");
    }
    format!("\"{}\"", sanitize_bytes(md))
}

fn short(b: &[u8]) -> String {
    if b.len() <= 8 {
        hex(b)
    } else {
        format!("{}…({} B)", hex(&b[..6]), b.len())
    }
}

/// The human summary of one chunk.
pub fn chunk_text(c: &Chunk) -> String {
    let name = chunk_name(c.ty);
    match &c.body {
        ChunkBody::IHello { epd, tag } => {
            let what = match read_options(epd) {
                Ok((o, _, _)) => o
                    .iter()
                    .map(|(t, v)| match t {
                        0x00 => format!("hostname \"{}\"", sanitize_bytes(v)),
                        0x0a => format!("ancillary \"{}\"", sanitize_bytes(v)),
                        0x0f => format!("fingerprint {}", short(v)),
                        _ => format!("option {t:#x} {}", short(v)),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                Err(_) => format!("raw \"{}\"", sanitize_bytes(epd)),
            };
            format!("IHello(epd {what}, tag {})", short(tag))
        }
        ChunkBody::FIHello { reply, tag, .. } => {
            format!("FIHello(reply {}, tag {})", reply.addr, short(tag))
        }
        ChunkBody::RHello { tag, cookie, cert } => format!(
            "RHello(tag {}, cookie {} B, cert {} B)",
            short(tag),
            cookie.len(),
            cert.len()
        ),
        ChunkBody::Redirect { addresses, .. } => format!(
            "Redirect({})",
            if addresses.is_empty() {
                "to the sender's address".into()
            } else {
                addresses
                    .iter()
                    .map(|a| a.addr.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        ChunkBody::CookieChange { new, .. } => format!("CookieChange(new cookie {} B)", new.len()),
        ChunkBody::IIKeying {
            initiator_ssid,
            cert,
            skic,
            ..
        } => format!(
            "IIKeying(initiator session {}, cert {} B, SKIC {} B)",
            hex(initiator_ssid),
            cert.len(),
            skic.len()
        ),
        ChunkBody::RIKeying {
            responder_ssid,
            skrc,
            ..
        } => format!(
            "RIKeying(responder session {}, SKRC {} B)",
            hex(responder_ssid),
            skrc.len()
        ),
        ChunkBody::Ping(m) | ChunkBody::PingReply(m) => format!("{name}({} B)", m.len()),
        ChunkBody::UserData(d) => {
            let mut s = format!("{name}(flow {} seq {}", d.flow_id, d.sequence);
            if let Some(o) = d.fsn_offset {
                let _ = write!(s, " fsn {}", d.sequence.saturating_sub(o));
            }
            if let Some(md) = d.metadata() {
                let _ = write!(s, " metadata {}", metadata_text(md));
            }
            if let Some(r) = d.return_flow() {
                let _ = write!(s, " return-flow {r}");
            }
            let frag = match d.fragment() {
                1 => " begin",
                2 => " end",
                3 => " middle",
                _ => "",
            };
            let fin = if d.flags & 1 != 0 { " FIN" } else { "" };
            let abn = if d.flags & 2 != 0 { " abandoned" } else { "" };
            let _ = write!(s, "{frag}{fin}{abn}, {} B)", d.data.len());
            s
        }
        ChunkBody::BitmapAck {
            flow_id,
            cumulative_ack,
            ..
        } => format!("BitmapAck(flow {flow_id} cum {cumulative_ack})"),
        ChunkBody::RangeAck {
            flow_id,
            buffer_blocks,
            cumulative_ack,
            ranges,
        } => {
            let mut s = format!("RangeAck(flow {flow_id} cum {cumulative_ack}");
            let mut at = *cumulative_ack;
            for (h, r) in ranges {
                let from = at.saturating_add(h.saturating_add(2));
                let to = from.saturating_add(*r);
                let _ = write!(s, " +{from}-{to}");
                at = to;
            }
            let _ = write!(s, ", window {} KiB)", buffer_blocks);
            s
        }
        ChunkBody::BufferProbe { flow_id } => format!("BufferProbe(flow {flow_id})"),
        ChunkBody::FlowException { flow_id, code } => {
            format!("FlowException(flow {flow_id} code {code})")
        }
        ChunkBody::Close => "Close".into(),
        ChunkBody::CloseAck => "CloseAck".into(),
        ChunkBody::EcnReport { ce_count } => format!("EcnReport(CE {ce_count})"),
        ChunkBody::Unknown(raw) => format!("chunk {:#04x}({} B)", c.ty, raw.len()),
        ChunkBody::Malformed { raw, reason } => {
            format!("{name}(malformed: {reason}, {} B)", raw.len())
        }
    }
}

/// The human line of one packet (without the common prefix).
pub fn packet_text(p: &RtmfpPacket) -> String {
    let ecn = if p.ecn != 0 {
        format!(" [{}]", ecn_name(p.ecn))
    } else {
        String::new()
    };
    if p.truncated {
        return format!(
            "RTMFP session {} {} B{ecn} cut short by the capture (snaplen): not decoded",
            hex(&p.sid),
            p.udp_len
        );
    }
    let Some(o) = &p.opened else {
        let why = if p.key_failed {
            "the key log's keys do not open it: HMAC or checksum does not verify, or what they decrypt is not a packet (a wrong decryption key)"
        } else {
            "no key: give --keylog"
        };
        return format!(
            "RTMFP session {} {} B{ecn} encrypted ({why})",
            hex(&p.sid),
            p.udp_len
        );
    };
    let mut s = format!("RTMFP session {} {} key", hex(&p.sid), o.key.as_str());
    if let Some(q) = o.sseq {
        let _ = write!(s, " sseq {q}");
    }
    if o.hmac != rtmptool::proto::rtmfp::crypto::Check::None {
        let _ = write!(s, " hmac {}", o.hmac.as_str());
    }
    match &o.packet {
        Ok(pk) => {
            let mode = match pk.mode() {
                1 => "initiator",
                2 => "responder",
                3 => "startup",
                _ => "mode 0",
            };
            let _ = write!(s, " {mode}");
            if let Some(t) = pk.ts {
                let _ = write!(s, " ts {t}");
            }
            if let Some(t) = pk.tse {
                let _ = write!(s, " tse {t}");
            }
            let _ = write!(s, " {} B{ecn}:", p.udp_len);
            for c in &pk.chunks {
                s.push(' ');
                s.push_str(&chunk_text(c));
            }
            if p.retransmitted > 0 {
                let _ = write!(s, " ({} retransmitted)", p.retransmitted);
            }
            if p.duplicate {
                s.push_str(" (duplicate of an earlier datagram: not counted)");
            }
            if let rtmptool::proto::rtmfp::chunk::ChunkListEnd::Overlong { offset, len } = pk.end {
                let _ = write!(
                    s,
                    " (chunk at offset {offset} claims {len} bytes, more than the packet holds)"
                );
            }
        }
        Err(e) => {
            let _ = write!(s, " {} B{ecn}: {e}", p.udp_len);
        }
    }
    s
}

/// Per-flow counters.
#[derive(Debug, Default, Clone)]
pub struct FlowStats {
    /// Flow metadata as sent.
    pub metadata: Option<Vec<u8>>,
    /// Return flow association.
    pub return_flow: Option<u64>,
    /// User data chunks.
    pub chunks: u64,
    /// User data bytes.
    pub bytes: u64,
    /// Chunks seen before.
    pub retransmitted: u64,
    /// FIN seen.
    pub fin: bool,
    /// Exception code reported by the receiver.
    pub exception: Option<u64>,
}

/// Per-direction counters.
#[derive(Debug, Default, Clone)]
pub struct DirStats {
    packets: u64,
    bytes: u64,
    sealed: u64,
    /// Duplicated datagrams (not counted elsewhere).
    duplicates: u64,
    acks: u64,
    ecn_reports: u64,
    pings: u64,
    buffer_probes: u64,
    flows: BTreeMap<u64, FlowStats>,
    /// Last timestamp sent and when.
    last_ts: Option<(u16, f64)>,
    rtt_ms: Vec<f64>,
}

/// Counters of one RTMFP session.
#[derive(Debug, Default, Clone)]
pub struct SessionStats {
    dirs: [DirStats; 2],
    close: Vec<String>,
}

impl SessionStats {
    /// Counts one packet of direction `d` at `time`.
    pub fn packet(&mut self, d: Dir, time: Timestamp, p: &RtmfpPacket) {
        let t = time.as_f64();
        let i = d.index();
        if p.duplicate {
            self.dirs[i].duplicates += 1;
            return;
        }
        {
            let s = &mut self.dirs[i];
            s.packets += 1;
            s.bytes += u64::from(p.udp_len);
        }
        let Some(pk) = p.packet() else {
            self.dirs[i].sealed += 1;
            return;
        };
        // RTT at the receiver of an echo: its clock now minus the echo.
        if let Some(tse) = pk.tse
            && let Some((ts, at)) = self.dirs[1 - i].last_ts
        {
            let now = ts.wrapping_add(((t - at) * 250.0).round() as u16);
            let d = now.wrapping_sub(tse);
            if d < 32768 && self.dirs[1 - i].rtt_ms.len() < 1 << 20 {
                self.dirs[1 - i].rtt_ms.push(f64::from(d) * 4.0);
            }
        }
        let mut exceptions = Vec::new();
        let s = &mut self.dirs[i];
        if let Some(ts) = pk.ts {
            s.last_ts = Some((ts, t));
        }
        for c in &pk.chunks {
            match &c.body {
                ChunkBody::UserData(u) => {
                    if s.flows.len() >= 4096 && !s.flows.contains_key(&u.flow_id) {
                        continue;
                    }
                    let f = s.flows.entry(u.flow_id).or_default();
                    f.chunks += 1;
                    f.bytes += u.data.len() as u64;
                    if let Some(md) = u.metadata()
                        && f.metadata.is_none()
                    {
                        f.metadata = Some(md.to_vec());
                    }
                    if let Some(r) = u.return_flow() {
                        f.return_flow = Some(r);
                    }
                    f.fin |= u.flags & 1 != 0;
                }
                ChunkBody::RangeAck { .. } | ChunkBody::BitmapAck { .. } => s.acks += 1,
                ChunkBody::EcnReport { .. } => s.ecn_reports += 1,
                ChunkBody::Ping(_) => s.pings += 1,
                ChunkBody::BufferProbe { .. } => s.buffer_probes += 1,
                ChunkBody::FlowException { flow_id, code } => exceptions.push((*flow_id, *code)),
                ChunkBody::Close | ChunkBody::CloseAck if self.close.len() < 16 => {
                    let who = if d == Dir::C2s {
                        "initiator"
                    } else {
                        "responder"
                    };
                    let what = if c.ty == 0x0c { "Close" } else { "CloseAck" };
                    let e = format!("{what} by {who}");
                    if self.close.last() != Some(&e) {
                        self.close.push(e);
                    }
                }
                _ => {}
            }
        }
        let rt = u64::from(p.retransmitted);
        if rt > 0
            && let Some(f) = pk.chunks.iter().find_map(|c| match &c.body {
                ChunkBody::UserData(u) => Some(u.flow_id),
                _ => None,
            })
            && let Some(fl) = s.flows.get_mut(&f)
        {
            fl.retransmitted += rt;
        }
        // An exception is about a flow of the other direction.
        for (flow, code) in exceptions {
            if let Some(f) = self.dirs[1 - i].flows.get_mut(&flow) {
                f.exception = Some(code);
            }
        }
    }

    fn closed(&self) -> String {
        if self.close.is_empty() {
            "not closed in the capture".into()
        } else {
            self.close.join(", ")
        }
    }

    fn rtt(v: &[f64]) -> Json {
        if v.is_empty() {
            return Json::Null;
        }
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(0.0, f64::max);
        let avg = v.iter().sum::<f64>() / v.len() as f64;
        json!({"samples": v.len(), "min": min, "avg": (avg * 1000.0).round() / 1000.0, "max": max})
    }

    /// The `rtmfp_stats` record.
    pub fn json(&self, conn: &str) -> Json {
        let dir = |s: &DirStats| {
            json!({
                "packets": s.packets, "bytes": s.bytes, "encrypted_without_key": s.sealed,
                "duplicates": s.duplicates,
                "acks": s.acks, "ecn_reports": s.ecn_reports, "pings": s.pings,
                "buffer_probes": s.buffer_probes,
                "rtt_ms": Self::rtt(&s.rtt_ms),
                "flows": s.flows.iter().map(|(id, f)| json!({
                    "flow_id": id,
                    "metadata": f.metadata.as_deref().map(|m| String::from_utf8_lossy(m).into_owned()),
                    "return_flow": f.return_flow,
                    "user_data_chunks": f.chunks, "bytes": f.bytes,
                    "retransmitted": f.retransmitted, "fin": f.fin, "exception": f.exception,
                })).collect::<Vec<_>>(),
            })
        };
        json!({"type": "rtmfp_stats", "conn": conn, "c2s": dir(&self.dirs[0]),
               "s2c": dir(&self.dirs[1]), "closed": self.closed()})
    }

    /// The human table.
    pub fn text(&self, title: &str) -> String {
        let mut s = format!("{title}\n");
        for (i, name) in ["initiator -> responder", "responder -> initiator"]
            .iter()
            .enumerate()
        {
            let d = &self.dirs[i];
            let rtt = match Self::rtt(&d.rtt_ms) {
                Json::Null => "rtt -".to_string(),
                r => format!(
                    "rtt {}/{}/{} ms (min/avg/max, {} samples)",
                    r["min"], r["avg"], r["max"], r["samples"]
                ),
            };
            let _ = writeln!(
                s,
                "  {name}: {} packets, {} bytes, {} acks, {} ECN reports, {} pings, {} buffer probes{}; {rtt}",
                d.packets,
                d.bytes,
                d.acks,
                d.ecn_reports,
                d.pings,
                d.buffer_probes,
                match (d.sealed, d.duplicates) {
                    (0, 0) => String::new(),
                    (n, 0) => format!(", {n} encrypted without key"),
                    (0, k) => format!(", {k} duplicated datagrams not counted"),
                    (n, k) =>
                        format!(", {n} encrypted without key, {k} duplicated datagrams not counted"),
                }
            );
            for (id, f) in &d.flows {
                let _ = writeln!(
                    s,
                    "    flow {id}{}{}: {} chunks, {} bytes, {} retransmitted{}{}",
                    f.metadata
                        .as_ref()
                        .map(|m| format!(" {}", metadata_text(m)))
                        .unwrap_or_default(),
                    f.return_flow
                        .map(|r| format!(" (return of {r})"))
                        .unwrap_or_default(),
                    f.chunks,
                    f.bytes,
                    f.retransmitted,
                    if f.fin { ", FIN" } else { "" },
                    f.exception
                        .map(|c| format!(", rejected with exception {c}"))
                        .unwrap_or_default(),
                );
            }
        }
        let _ = writeln!(s, "  closed: {}", self.closed());
        s
    }
}

/// A JSON object written straight into a buffer (the `rtmfp_packet`
/// records are the bulk of `dump --json` on RTMFP captures; building a
/// `serde_json::Value` for each costs most of the time). Strings written
/// here are ASCII of this program's making (hex, names, addresses) or go
/// through [`Obj::str`], which escapes like serde_json plus the characters
/// [`rtmptool::text::is_unsafe`] names.
pub struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl<'a> Obj<'a> {
    /// Opens an object.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj { out, first: true }
    }
    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }
    /// A string value, escaped.
    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        if v.bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        {
            self.out.push(b'"');
            self.out.extend_from_slice(v.as_bytes());
            self.out.push(b'"');
        } else {
            write_str(self.out, v);
        }
        self
    }
    /// A hex string.
    pub fn hex(&mut self, k: &str, v: &[u8]) -> &mut Self {
        self.key(k);
        write_hex(self.out, v);
        self
    }
    /// An unsigned number.
    pub fn num(&mut self, k: &str, v: u64) -> &mut Self {
        self.key(k);
        push_num(self.out, v);
        self
    }
    /// An optional number (`null`).
    pub fn opt(&mut self, k: &str, v: Option<u64>) -> &mut Self {
        match v {
            Some(v) => self.num(k, v),
            None => self.raw(k, "null"),
        }
    }
    /// A boolean.
    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.raw(k, if v { "true" } else { "false" })
    }
    /// Raw JSON text.
    pub fn raw(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        self.out.extend_from_slice(v.as_bytes());
        self
    }
    /// A float as serde_json writes it.
    pub fn float(&mut self, k: &str, v: f64) -> &mut Self {
        self.key(k);
        let _ = serde_json::to_writer(&mut *self.out, &v);
        self
    }
    /// A nested value written by `f`.
    pub fn with(&mut self, k: &str, f: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        self.key(k);
        f(self.out);
        self
    }
    /// Closes the object.
    pub fn end(&mut self) {
        self.out.push(b'}');
    }
}

fn push_num(out: &mut Vec<u8>, v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut x = v;
    loop {
        i -= 1;
        tmp[i] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

fn itoa_buf(v: u64) -> Vec<u8> {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut x = v;
    loop {
        i -= 1;
        tmp[i] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    tmp[i..].to_vec()
}

fn write_hex(out: &mut Vec<u8>, v: &[u8]) {
    out.reserve(v.len() * 2 + 2);
    out.push(b'"');
    for &b in v {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
    out.push(b'"');
}

fn write_str(out: &mut Vec<u8>, v: &str) {
    out.push(b'"');
    for c in v.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 || rtmptool::text::is_unsafe(c) => {
                let _ = std::io::Write::write_fmt(out, format_args!("\\u{:04x}", c as u32));
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn opts_list(out: &mut Vec<u8>, o: &[(u64, Vec<u8>)]) {
    out.push(b'[');
    for (i, (t, v)) in o.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        out.extend_from_slice(&itoa_buf(*t));
        out.push(b',');
        write_hex(out, v);
        out.push(b']');
    }
    out.push(b']');
}

fn addr_list(out: &mut Vec<u8>, a: &[rtmptool::proto::rtmfp::vlu::Address]) {
    out.push(b'[');
    for (i, x) in a.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let mut o = Obj::new(out);
        o.str("addr", &x.addr.to_string())
            .num("origin", u64::from(x.origin));
        o.end();
    }
    out.push(b']');
}

/// Writes the `fields` object of a chunk (field names of
/// the ground truth of `testdata/rtmfp`).
fn fields_fast(out: &mut Vec<u8>, c: &Chunk, with_hex: bool) {
    let mut o = Obj::new(out);
    match &c.body {
        ChunkBody::IHello { epd, tag } => {
            o.hex("epd", epd);
            match read_options(epd) {
                Ok((opts, _, _)) => o.with("epd_options", |w| opts_list(w, &opts)),
                Err(_) => o.str("parse_error", "truncated field"),
            };
            o.hex("tag", tag);
        }
        ChunkBody::FIHello { epd, reply, tag } => {
            o.hex("epd", epd)
                .with("reply", |w| {
                    let mut r = Obj::new(w);
                    r.str("addr", &reply.addr.to_string())
                        .num("origin", u64::from(reply.origin));
                    r.end();
                })
                .hex("tag", tag);
        }
        ChunkBody::RHello { tag, cookie, cert } => {
            o.hex("tag", tag).hex("cookie", cookie).hex("cert", cert);
        }
        ChunkBody::Redirect { tag, addresses } => {
            o.hex("tag", tag)
                .with("addresses", |w| addr_list(w, addresses));
        }
        ChunkBody::CookieChange { old, new } => {
            o.hex("old_cookie", old).hex("new_cookie", new);
        }
        ChunkBody::IIKeying {
            initiator_ssid,
            cookie,
            cert,
            skic,
            signature,
        } => {
            o.hex("initiator_ssid", initiator_ssid)
                .hex("cookie", cookie)
                .hex("cert", cert)
                .hex("skic", skic)
                .hex("signature", signature);
        }
        ChunkBody::RIKeying {
            responder_ssid,
            skrc,
            signature,
        } => {
            o.hex("responder_ssid", responder_ssid)
                .hex("skrc", skrc)
                .hex("signature", signature);
        }
        ChunkBody::Ping(m) | ChunkBody::PingReply(m) => {
            o.hex("message", m);
        }
        ChunkBody::UserData(d) => {
            o.num("flags", u64::from(d.flags))
                .num("flow_id", d.flow_id)
                .num("sequence", d.sequence)
                .opt("fsn_offset", d.fsn_offset);
            if let Some(opts) = &d.options {
                o.with("options", |w| opts_list(w, opts));
            }
            o.num("data_len", d.data.len() as u64);
            if with_hex {
                o.hex("data_hex", &d.data);
            }
        }
        ChunkBody::BitmapAck {
            flow_id,
            buffer_blocks,
            cumulative_ack,
            bitmap,
        } => {
            o.num("flow_id", *flow_id)
                .num("buffer_blocks", *buffer_blocks)
                .num("cumulative_ack", *cumulative_ack)
                .hex("bitmap", bitmap);
        }
        ChunkBody::RangeAck {
            flow_id,
            buffer_blocks,
            cumulative_ack,
            ranges,
        } => {
            o.num("flow_id", *flow_id)
                .num("buffer_blocks", *buffer_blocks)
                .num("cumulative_ack", *cumulative_ack)
                .with("ranges", |w| {
                    w.push(b'[');
                    for (i, (h, r)) in ranges.iter().enumerate() {
                        if i > 0 {
                            w.push(b',');
                        }
                        w.push(b'[');
                        w.extend_from_slice(&itoa_buf(*h));
                        w.push(b',');
                        w.extend_from_slice(&itoa_buf(*r));
                        w.push(b']');
                    }
                    w.push(b']');
                });
        }
        ChunkBody::BufferProbe { flow_id } => {
            o.num("flow_id", *flow_id);
        }
        ChunkBody::FlowException { flow_id, code } => {
            o.num("flow_id", *flow_id).num("exception_code", *code);
        }
        ChunkBody::Close | ChunkBody::CloseAck => {}
        ChunkBody::EcnReport { ce_count } => {
            o.num("ce_count_mod256", u64::from(*ce_count));
        }
        ChunkBody::Unknown(raw) => {
            o.hex("raw", raw);
        }
        ChunkBody::Malformed { raw, reason } => {
            o.hex("raw", raw).str("parse_error", reason);
        }
    }
    o.end();
}

/// Writes one `rtmfp_packet` record (a line) into `out`: the record's
/// common keys, then the packet's (CLI.md `rtmfp_packet`).
pub fn packet_line(
    out: &mut Vec<u8>,
    conn: &str,
    dir: Option<&str>,
    frame: u64,
    time: f64,
    p: &RtmfpPacket,
    with_hex: bool,
) {
    let mut o = Obj::new(out);
    o.str("type", "rtmfp_packet").str("conn", conn);
    match dir {
        Some(d) => o.str("dir", d),
        None => o.raw("dir", "null"),
    };
    o.num("frame", frame)
        .float("time", time)
        .str("src", &p.names.0)
        .str("dst", &p.names.1)
        .hex("session_id", &p.sid)
        .num("udp_len", u64::from(p.udp_len))
        .num("ecn", u64::from(p.ecn))
        .num("dscp", u64::from(p.dscp));
    if p.truncated {
        o.bool("truncated", true);
    }
    let Some(op) = &p.opened else {
        o.bool("encrypted", true).raw("key", "null");
        if p.key_failed {
            o.str(
                "error",
                "the key log's session keys do not open it (HMAC or checksum does not verify, or what they decrypt is not a packet: a wrong decryption key)",
            );
        }
        o.end();
        out.push(b'\n');
        return;
    };
    o.bool("encrypted", false)
        .str("key", op.key.as_str())
        .opt("sseq", op.sseq)
        .str("checksum", op.checksum.as_str())
        .str("hmac", op.hmac.as_str())
        .hex("margin_hex", &op.margin);
    match &op.packet {
        Ok(pk) => {
            o.num("flags", u64::from(pk.flags))
                .num("mode", u64::from(pk.mode()))
                .bool("tc", pk.flags & 0x80 != 0)
                .bool("tcr", pk.flags & 0x40 != 0)
                .opt("ts", pk.ts.map(u64::from))
                .opt("tse", pk.tse.map(u64::from))
                .num("padding_len", pk.padding_len as u64)
                .with("chunks", |w| {
                    w.push(b'[');
                    for (i, c) in pk.chunks.iter().enumerate() {
                        if i > 0 {
                            w.push(b',');
                        }
                        let mut co = Obj::new(w);
                        let t = [
                            b'0',
                            b'x',
                            HEX[usize::from(c.ty >> 4)],
                            HEX[usize::from(c.ty & 15)],
                        ];
                        co.str("type", std::str::from_utf8(&t).unwrap_or("0x??"))
                            .str("name", chunk_name(c.ty))
                            .num("len", u64::from(c.len))
                            .with("fields", |w| fields_fast(w, c, with_hex));
                        co.end();
                    }
                    w.push(b']');
                });
            if p.retransmitted > 0 {
                o.num("retransmitted", u64::from(p.retransmitted));
            }
            if p.duplicate {
                o.raw("duplicate", "true");
            }
            if let rtmptool::proto::rtmfp::chunk::ChunkListEnd::Overlong { offset, len } = pk.end {
                o.str(
                    "error",
                    &format!("chunk at packet offset {offset} claims {len} bytes, more than the packet holds: the rest is not decoded"),
                );
            }
        }
        Err(e) => {
            o.str("error", &e.to_string());
        }
    }
    o.end();
    out.push(b'\n');
}
