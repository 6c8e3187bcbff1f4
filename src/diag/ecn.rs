//! ECN inspection of RTMFP sessions (RFC 3168 codepoints; the ECN Report
//! chunk 0xec of zenomt/rtmfp-cpp): a pure analysis over the analyzer's
//! records. Per session leg and direction it counts the IP ECN codepoints
//! of all packets and of those with user data, lists every ECN Report, and
//! judges:
//!
//! - the receiver's reports agree with the CE marks it was sent (mod 256,
//!   reordering allowed): never more than were received, and the last
//!   report covers what arrived before the one preceding it;
//! - reports are sent only after an ECN-capable packet was received (a MUST
//!   NOT otherwise);
//! - the sender marks only packets with user data;
//! - a sender that gets acks but never a report stops marking;
//! - the path bleaches ECN (marks sent, none seen on the far leg; or marks
//!   sent, acks came, and no report ever);
//! - a relay between two legs of one session rewrites ECN (the legs are
//!   paired by identical payloads; ECT -> CE is congestion marking and
//!   fine, ECT -> Not-ECT bleaching, anything else a violation).
//!
//! Packets no key opened are counted by codepoint but cannot be judged.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use crate::analyze::{Record, RecordKind};
use crate::capture::tcp::Dir;
use crate::proto::rtmfp::chunk::ChunkBody;

/// Counts by codepoint: Not-ECT, ECT(1), ECT(0), CE (index = codepoint).
pub type Counts = [u64; 4];

/// How a verdict came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Checked and fine.
    Ok,
    /// A fault (exit status 8).
    Fault,
    /// Worth knowing, not a fault.
    Info,
    /// Could not be judged (no keys, nothing to judge).
    Unknown,
}

impl Outcome {
    /// `ok`, `fault`, `info`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fault => "fault",
            Outcome::Info => "info",
            Outcome::Unknown => "unknown",
        }
    }
}

/// One verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Stable code.
    pub code: &'static str,
    /// Outcome.
    pub outcome: Outcome,
    /// Words for humans (and JSON `message`).
    pub message: String,
}

/// One direction of one leg (a UDP address pair of a session).
#[derive(Debug, Clone, Default)]
pub struct LegDir {
    /// Session (connection) name, `initiator-responder`.
    pub conn: String,
    /// Connection number.
    pub conn_id: u64,
    /// Direction within the session.
    pub dir: Option<Dir>,
    /// Sender.
    pub src: Option<SocketAddr>,
    /// Receiver.
    pub dst: Option<SocketAddr>,
    /// All packets by codepoint.
    pub packets: Counts,
    /// Packets with user data by codepoint.
    pub user_data_packets: Counts,
    /// Packets no key opened, by codepoint.
    pub sealed: Counts,
    /// Of those, cut by the capture's snaplen.
    pub sealed_cut: u64,
    /// Of those, with keys in the key log that did not open them.
    pub sealed_key_failed: u64,
    /// ECN-capable (ECT/CE) packets without user data.
    pub marked_without_user_data: u64,
    /// Last ECT/CE user-data packet.
    pub last_ect_user_data_frame: Option<u64>,
    /// First Not-ECT user-data packet.
    pub first_not_ect_user_data_frame: Option<u64>,
    /// ECN Reports sent in this direction: (frame, value).
    pub ecn_reports: Vec<(u64, u8)>,
    /// Packets with acks sent in this direction (frame, time).
    pub first_ack: Option<(u64, f64)>,
    /// ECT/CE user-data packets sent after the first ack of the reverse
    /// direction while no report had come (frame of the first).
    pub marked_after_unreported_ack: Vec<u64>,
    /// ECN Reports not kept (over the memory budget), counted.
    pub ecn_reports_omitted: u64,
    /// Report check, streaming: the first report that claimed more CE than
    /// had arrived (frame, value, CE received), CE received at the
    /// previous report, and the last report's lag and allowance.
    over: Option<(u64, u8, u64)>,
    ce_at_prev_report: u64,
    last_lag: u64,
    last_allowed: u64,
    /// Reports in this direction are copies relayed from another leg.
    relayed_copies: u64,
    /// Reports sent before any ECN-capable packet arrived (frames).
    pub reports_without_marks: Vec<u64>,
    /// Verdicts.
    pub verdicts: Vec<Verdict>,
    /// The other leg this one is relayed to/from, and the codepoint
    /// transitions (in -> out) seen on this direction (set on the leg
    /// nearer the sender).
    pub relayed_to: Option<String>,
    /// Transitions `[in][out]` between this leg and the relayed leg.
    pub transitions: [[u64; 4]; 4],
    /// The reports of this direction were relayed from another leg (named
    /// here): they are judged there, against the marks the reporter got.
    pub reports_from_leg: Option<String>,
    first_frame: u64,
    session_first_frame: u64,
}

/// ECN Reports kept over all sessions (16 bytes each); past it they are
/// counted, not listed.
pub const MAX_REPORTS: usize = 1 << 21;
/// Packets of each direction of a session held (fingerprint, codepoint)
/// until their copy on the relayed leg shows up: the first ones of every
/// session, and more once the session is paired with another leg.
const WINDOW_UNPAIRED: usize = 64;
const WINDOW_PAIRED: usize = 8192;

#[derive(Default)]
struct Sess {
    first_frame: u64,
    /// By [`Dir::index`].
    dirs: [LegDir; 2],
    /// Originals not yet matched by a copy on the paired leg.
    window: [VecDeque<(u64, u8)>; 2],
    /// The other leg of the same session, once known.
    paired: Option<usize>,
    /// Any report seen in each direction so far.
    report_seen: [bool; 2],
    /// Packets seen.
    packets: u64,
}

/// The streaming ECN analysis: feed records, then [`Ecn::finish`].
/// Memory: a fixed amount per session plus the listed ECN Reports (at most
/// [`MAX_REPORTS`] over all sessions).
#[derive(Default)]
pub struct Ecn {
    sessions: Vec<Sess>,
    index: HashMap<u64, usize>,
    /// First packet fingerprint of each session: legs of one relayed
    /// session start with the same datagram.
    first: HashMap<u64, (usize, f64)>,
    reports_kept: usize,
}

/// A grace after an ack for packets already on their way (seconds).
const ACK_GRACE: f64 = 0.005;

impl Ecn {
    /// A new analysis.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one record (only RTMFP records count).
    pub fn record(&mut self, r: &Record) {
        let (p, Some(dir)) = (
            match &r.kind {
                RecordKind::Rtmfp(p) => p,
                RecordKind::RtmfpSession { .. } => {
                    let n = self.sessions.len();
                    self.index.insert(r.conn_id, n);
                    self.sessions.push(Sess {
                        first_frame: r.frame,
                        ..Default::default()
                    });
                    return;
                }
                _ => return,
            },
            r.dir,
        ) else {
            return;
        };
        let Some(&si) = self.index.get(&r.conn_id) else {
            return;
        };
        // A duplicated datagram: the receiver counted its CE mark once
        // (it rejects the copy), and so does this.
        if p.duplicate {
            return;
        }
        let i = dir.index();
        let t = r.time.as_f64();
        let e = usize::from(p.ecn & 3);
        let copy = self.relay(si, i, p.fingerprint, p.ecn & 3, t);
        let s = &mut self.sessions[si];
        let first_frame = s.first_frame;
        let d = &mut s.dirs[i];
        if d.src.is_none() {
            d.conn = r.conn.to_string();
            d.conn_id = r.conn_id;
            d.dir = Some(dir);
            d.src = Some(p.src);
            d.dst = Some(p.dst);
            d.first_frame = r.frame;
            d.session_first_frame = first_frame;
        }
        d.packets[e] += 1;
        let Some(pk) = p.packet() else {
            d.sealed[e] += 1;
            if p.truncated {
                d.sealed_cut += 1;
            } else if p.key_failed {
                d.sealed_key_failed += 1;
            }
            return;
        };
        let mut user_data = false;
        let mut acks = false;
        let mut reports = Vec::new();
        for c in &pk.chunks {
            match &c.body {
                ChunkBody::UserData(_) => user_data = true,
                ChunkBody::RangeAck { .. } | ChunkBody::BitmapAck { .. } => acks = true,
                ChunkBody::EcnReport { ce_count } => reports.push(*ce_count),
                _ => {}
            }
        }
        if user_data {
            d.user_data_packets[e] += 1;
            if e != 0 {
                d.last_ect_user_data_frame = Some(r.frame);
            } else if d.first_not_ect_user_data_frame.is_none() {
                d.first_not_ect_user_data_frame = Some(r.frame);
            }
        } else if e != 0 {
            d.marked_without_user_data += 1;
        }
        if acks && d.first_ack.is_none() {
            d.first_ack = Some((r.frame, t));
        }
        for v in &reports {
            if self.reports_kept < MAX_REPORTS {
                d.ecn_reports.push((r.frame, *v));
                self.reports_kept += 1;
            } else {
                d.ecn_reports_omitted += 1;
            }
        }
        if copy && !reports.is_empty() {
            d.relayed_copies += 1;
        }
        if !reports.is_empty() {
            s.report_seen[i] = true;
        }
        // This packet's sender marks user data although the other side has
        // acked (some time ago) and never reported.
        let (a, b) = s.dirs.split_at_mut(1);
        let (me, other) = if i == 0 {
            (&mut a[0], &b[0])
        } else {
            (&mut b[0], &a[0])
        };
        if user_data
            && e != 0
            && !s.report_seen[1 - i]
            && other.first_ack.is_some_and(|(_, at)| t > at + ACK_GRACE)
            && me.marked_after_unreported_ack.len() < 16
        {
            me.marked_after_unreported_ack.push(r.frame);
        }
        // Reports in this direction judge what this side received so far
        // (the other direction's packets on this leg, in capture order).
        if !reports.is_empty() && !copy {
            let marked = other.packets[1] + other.packets[2] + other.packets[3];
            if marked == 0 && me.reports_without_marks.len() < 16 {
                me.reports_without_marks.push(r.frame);
            }
            let ce = other.packets[3];
            for v in reports {
                let ahead = v.wrapping_sub((ce & 0xff) as u8);
                if (1..=0xdf).contains(&ahead) && me.over.is_none() {
                    me.over = Some((r.frame, v, ce));
                }
                me.last_lag = u64::from(((ce & 0xff) as u8).wrapping_sub(v));
                me.last_allowed = ce - me.ce_at_prev_report;
                me.ce_at_prev_report = ce;
            }
        }
    }

    /// Leg pairing and codepoint comparison for one packet of session
    /// `si`, direction `i`, at capture time `t`. Returns whether the packet
    /// is a relayed copy.
    fn relay(&mut self, si: usize, i: usize, fp: u64, ecn: u8, t: f64) -> bool {
        if self.sessions[si].packets == 0 {
            match self.first.get(&fp) {
                // A relay forwards at once: the copy follows within a second.
                Some(&(up, at))
                    if up != si && self.sessions[up].paired.is_none() && (t - at).abs() <= 1.0 =>
                {
                    self.sessions[up].paired = Some(si);
                    self.sessions[si].paired = Some(up);
                    self.first.remove(&fp);
                }
                _ => {
                    // The same first datagram again (a replay, a repeated
                    // IHello): the newest session is the one to pair.
                    if self.first.len() < crate::analyze::MAX_SESSIONS {
                        self.first.insert(fp, (si, t));
                    }
                }
            }
        }
        self.sessions[si].packets += 1;
        if let Some(other) = self.sessions[si].paired {
            let w = &mut self.sessions[other].window[i];
            if let Some(k) = w.iter().position(|x| x.0 == fp) {
                let (_, orig) = w.remove(k).unwrap_or((fp, ecn));
                let name = self.sessions[si].dirs[i].conn.clone();
                let name = if name.is_empty() { None } else { Some(name) };
                let o = &mut self.sessions[other].dirs[i];
                o.transitions[usize::from(orig)][usize::from(ecn)] += 1;
                if o.relayed_to.is_none() {
                    o.relayed_to = name;
                }
                return true;
            }
        }
        let s = &mut self.sessions[si];
        let cap = if s.paired.is_some() {
            WINDOW_PAIRED
        } else {
            WINDOW_UNPAIRED
        };
        let w = &mut s.window[i];
        if w.len() >= cap {
            if s.paired.is_none() {
                return false;
            }
            w.pop_front();
        }
        w.push_back((fp, ecn));
        false
    }

    /// Ends the analysis: judges, returns every leg direction in order of
    /// appearance.
    pub fn finish(mut self) -> Vec<LegDir> {
        // Names of the legs copies went to (known only once both had packets).
        let names: Vec<String> = self
            .sessions
            .iter()
            .map(|s| {
                s.dirs
                    .iter()
                    .find(|d| !d.conn.is_empty())
                    .map(|d| d.conn.clone())
                    .unwrap_or_default()
            })
            .collect();
        let mut out = Vec::new();
        for (si, s) in self.sessions.iter_mut().enumerate() {
            let other = s.paired.map(|o| names[o].clone());
            for i in 0..2 {
                let reverse_reports =
                    s.dirs[1 - i].ecn_reports.len() as u64 + s.dirs[1 - i].ecn_reports_omitted;
                let reverse_sealed = s.dirs[1 - i].sealed.iter().sum::<u64>();
                let d = &mut s.dirs[i];
                if d.src.is_none() {
                    continue;
                }
                if d.transitions.iter().flatten().any(|&n| n > 0) && d.relayed_to.is_none() {
                    d.relayed_to = other.clone();
                }
                if d.relayed_copies > 0 {
                    d.reports_from_leg = other.clone();
                }
                judge(d, reverse_reports, reverse_sealed);
                judge_reports(d);
            }
            let _ = si;
            for d in &s.dirs {
                if d.src.is_some() {
                    out.push(d.clone());
                }
            }
        }
        out.sort_by_key(|d| (d.session_first_frame, d.first_frame));
        out
    }
}

impl LegDir {
    /// Why packets could not be opened: cut by the snaplen, keys that do
    /// not open them, or no key.
    pub fn sealed_why(&self) -> String {
        let sealed: u64 = self.sealed.iter().sum();
        let no_key = sealed.saturating_sub(self.sealed_cut + self.sealed_key_failed);
        let mut why = Vec::new();
        if self.sealed_cut > 0 {
            why.push(format!("{} cut by the capture's snaplen", self.sealed_cut));
        }
        if self.sealed_key_failed > 0 {
            why.push(format!(
                "{} the key log's keys do not open",
                self.sealed_key_failed
            ));
        }
        if no_key > 0 {
            why.push(format!("{no_key} with no key: give --keylog"));
        }
        why.join("; ")
    }
}

fn judge(d: &mut LegDir, reverse_reports: u64, reverse_sealed: u64) {
    let sent_marked = d.user_data_packets[1] + d.user_data_packets[2] + d.user_data_packets[3];
    let sealed: u64 = d.sealed.iter().sum();
    let why = d.sealed_why();
    let v = &mut d.verdicts;
    v.push(if d.marked_without_user_data == 0 && sealed > 0 {
        Verdict {
            code: "marks_only_user_data",
            outcome: Outcome::Unknown,
            message: format!(
                "{sealed} packets could not be opened ({why}): which carry user data is unknown"
            ),
        }
    } else if d.marked_without_user_data == 0 {
        Verdict {
            code: "marks_only_user_data",
            outcome: Outcome::Ok,
            message: "ECN-capable marks only on packets with user data".into(),
        }
    } else {
        Verdict {
            code: "marks_only_user_data",
            outcome: Outcome::Fault,
            message: format!(
                "{} packets without user data carry an ECN-capable codepoint (the sender must mark only user data)",
                d.marked_without_user_data
            ),
        }
    });
    if let Some(&f) = d.marked_after_unreported_ack.first() {
        v.push(Verdict {
            code: "kept_marking_without_reports",
            outcome: Outcome::Fault,
            message: format!(
                "kept marking user data (frame {f}) after acks came without any ECN Report: it must stop"
            ),
        });
    } else if sent_marked > 0 && reverse_reports == 0 {
        v.push(Verdict {
            code: "kept_marking_without_reports",
            outcome: Outcome::Ok,
            message: "stopped marking when acks came without ECN Reports".into(),
        });
    }
    if sent_marked > 0 && reverse_reports == 0 && reverse_sealed == 0 {
        v.push(Verdict {
            code: "path_bleaches_ecn",
            outcome: Outcome::Fault,
            message: format!(
                "{sent_marked} user-data packets were marked but the receiver never sent an ECN Report: the path bleaches ECN or the receiver ignores it"
            ),
        });
    }
    if let Some(to) = &d.relayed_to {
        let t = d.transitions;
        let bleached = t[1][0] + t[2][0] + t[3][0];
        let ce_marked = t[1][3] + t[2][3];
        let illegal = t[0][1] + t[0][2] + t[0][3] + t[3][1] + t[3][2] + t[1][2] + t[2][1];
        if illegal > 0 {
            v.push(Verdict {
                code: "relay_rewrites_ecn",
                outcome: Outcome::Fault,
                message: format!(
                    "between this leg and {to}, {illegal} packets had their ECN codepoint changed in a way RFC 3168 forbids (Not-ECT marked, CE cleared, or ECT(0)/ECT(1) swapped)"
                ),
            });
        }
        if bleached > 0 {
            v.push(Verdict {
                code: "relay_bleaches_ecn",
                outcome: Outcome::Fault,
                message: format!(
                    "between this leg and {to}, {bleached} ECN-capable packets arrived as Not-ECT: the path bleaches ECN"
                ),
            });
        }
        if ce_marked > 0 {
            v.push(Verdict {
                code: "relay_marks_ce",
                outcome: Outcome::Info,
                message: format!(
                    "between this leg and {to}, {ce_marked} ECN-capable packets were marked CE (congestion experienced)"
                ),
            });
        }
        if illegal == 0 && bleached == 0 && ce_marked == 0 {
            v.push(Verdict {
                code: "relay_rewrites_ecn",
                outcome: Outcome::Ok,
                message: format!("codepoints unchanged between this leg and {to}"),
            });
        }
    }
}

/// Judges the reports sent in direction `d` (checked as they came, against
/// the CE marks received on the same leg before each).
fn judge_reports(d: &mut LegDir) {
    if let Some(leg) = d.reports_from_leg.clone() {
        if !d.ecn_reports.is_empty() {
            d.verdicts.push(Verdict {
                code: "reports_match_ce",
                outcome: Outcome::Info,
                message: format!(
                    "these ECN Reports were relayed from leg {leg}, where they are judged"
                ),
            });
        }
        return;
    }
    if let Some(&f) = d.reports_without_marks.first() {
        d.verdicts.push(Verdict {
            code: "report_without_marks",
            outcome: Outcome::Fault,
            message: format!(
                "ECN Report sent (frame {f}) before any ECN-capable packet was received (a MUST NOT)"
            ),
        });
    }
    let Some(&(_, last)) = d.ecn_reports.last() else {
        return;
    };
    let ce = d.ce_at_prev_report;
    let n = d.ecn_reports.len() as u64 + d.ecn_reports_omitted;
    d.verdicts.push(match d.over {
        // Reports of CE where the capture saw none at all, on a leg not
        // seen relayed: the capture point is before the hop that marks (at
        // or near the sender, one leg of a relay), which is ECN working;
        // only a capture at the receiver can convict it of over-reporting.
        // (With both legs of a relay in the capture, the receiver's own
        // leg is known, and there it is a fault.)
        Some((f, r, _)) if ce == 0 && d.relayed_to.is_none() => Verdict {
            code: "reports_match_ce",
            outcome: Outcome::Info,
            message: format!(
                "ECN Reports count CE (frame {f}: {r}, last: {last}) but no CE-marked packet passed the capture point: the marks are made after it (captured at or near the sender), or the receiver over-reports; a capture at the receiver tells"
            ),
        },
        Some((f, r, c)) => Verdict {
            code: "reports_match_ce",
            outcome: Outcome::Fault,
            message: format!(
                "ECN Report at frame {f} says {r} CE but only {c} (mod 256: {}) CE-marked packets had arrived",
                c % 256
            ),
        },
        None if d.last_lag > d.last_allowed => Verdict {
            code: "reports_match_ce",
            outcome: Outcome::Fault,
            message: format!(
                "the last ECN Report says {last} CE but {} (mod 256) CE-marked packets had arrived",
                ce % 256
            ),
        },
        None => Verdict {
            code: "reports_match_ce",
            outcome: Outcome::Ok,
            message: format!(
                "{n} ECN Reports agree with the {ce} CE marks received (last report {last} = {ce} mod 256)"
            ),
        },
    });
}
