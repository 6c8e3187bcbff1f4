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
    /// Timeline for report checks: (frame, was CE) of every ECT/CE packet.
    marks: Vec<(u64, bool)>,
    /// Reports sent before any ECN-capable packet arrived (frames).
    pub reports_without_marks: Vec<u64>,
    /// Verdicts.
    pub verdicts: Vec<Verdict>,
    /// The other leg this one is relayed to/from, and the codepoint
    /// transitions (in -> out) seen on this direction (set on the leg
    /// nearer the sender).
    pub relayed_to: Option<String>,
    /// Transitions [in][out] between this leg and the relayed leg.
    pub transitions: [[u64; 4]; 4],
    /// The reports of this direction were relayed from another leg (named
    /// here): they are judged there, against the marks the reporter got.
    pub reports_from_leg: Option<String>,
    first_frame: u64,
    session_first_frame: u64,
}

/// Cap on timeline entries per direction (beyond it report checks use
/// the counts only).
const MAX_MARKS: usize = 1 << 22;
/// Payload hashes held per direction for pairing legs.
const MAX_HASHES: usize = 1 << 20;

#[derive(Default)]
struct Sess {
    first_frame: u64,
    /// By [`Dir::index`].
    dirs: [LegDir; 2],
    /// FIFO of (hash, ecn) of each direction for leg comparison.
    hashes: [VecDeque<(u64, u8)>; 2],
    /// Any report seen in each direction so far.
    report_seen: [bool; 2],
}

/// The streaming ECN analysis: feed records, then [`Ecn::finish`].
#[derive(Default)]
pub struct Ecn {
    sessions: Vec<Sess>,
    index: HashMap<u64, usize>,
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
        let s = &mut self.sessions[si];
        let i = dir.index();
        let t = r.time.as_f64();
        let e = usize::from(p.ecn & 3);
        if s.hashes[i].len() < MAX_HASHES {
            s.hashes[i].push_back((p.fingerprint, p.ecn & 3));
        }
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
        if e != 0 && d.marks.len() < MAX_MARKS {
            d.marks.push((r.frame, e == 3));
        }
        let Some(pk) = p.packet() else {
            d.sealed[e] += 1;
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
            if d.ecn_reports.len() < MAX_MARKS {
                d.ecn_reports.push((r.frame, *v));
            }
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
        // Reports in this direction judge what this side received.
        if !reports.is_empty() {
            let received_marked = other.marks.iter().any(|(f, _)| *f < r.frame);
            if !received_marked && me.reports_without_marks.len() < 16 {
                me.reports_without_marks.push(r.frame);
            }
        }
    }

    /// Ends the analysis: pairs relayed legs, judges, returns every leg
    /// direction in order of appearance.
    pub fn finish(mut self) -> Vec<LegDir> {
        self.pair_legs();
        let mut out = Vec::new();
        for s in &mut self.sessions {
            for i in 0..2 {
                let reverse_reports = s.dirs[1 - i].ecn_reports.clone();
                let reverse_sealed = s.dirs[1 - i].sealed.iter().sum::<u64>();
                let d = &mut s.dirs[i];
                if d.src.is_none() {
                    continue;
                }
                judge(d, &reverse_reports, reverse_sealed);
            }
            // Report checks: this direction's reports against the CE marks of
            // the other direction on this leg.
            for i in 0..2 {
                let marks = std::mem::take(&mut s.dirs[1 - i].marks);
                if s.dirs[i].src.is_some() {
                    match s.dirs[i].reports_from_leg.clone() {
                        Some(leg) if !s.dirs[i].ecn_reports.is_empty() => {
                            s.dirs[i].verdicts.push(Verdict {
                                code: "reports_match_ce",
                                outcome: Outcome::Info,
                                message: format!(
                                    "these ECN Reports were relayed from leg {leg}, where they are judged"
                                ),
                            })
                        }
                        Some(_) => {}
                        None => judge_reports(&mut s.dirs[i], &marks),
                    }
                }
                s.dirs[1 - i].marks = marks;
            }
            for d in &s.dirs {
                if d.src.is_some() {
                    out.push(d.clone());
                }
            }
        }
        out.sort_by_key(|d| (d.session_first_frame, d.first_frame));
        out
    }

    /// Legs of one session through a relay carry the same payloads: pair
    /// sessions whose first packets are equal, the earlier one nearer the
    /// initiator, and compare codepoints packet by packet.
    fn pair_legs(&mut self) {
        let mut first: HashMap<u64, usize> = HashMap::new();
        let mut pairs = Vec::new();
        for (si, s) in self.sessions.iter().enumerate() {
            let Some(&(h, _)) = s.hashes[0].front() else {
                continue;
            };
            match first.get(&h) {
                Some(&up) => pairs.push((up, si)),
                None => {
                    first.insert(h, si);
                }
            }
        }
        for (up, down) in pairs {
            for i in 0..2 {
                // c2s flows up -> down, s2c down -> up.
                let (from, to) = if i == 0 { (up, down) } else { (down, up) };
                let mut queue: HashMap<u64, VecDeque<u8>> = HashMap::new();
                for &(h, e) in &self.sessions[from].hashes[i] {
                    queue.entry(h).or_default().push_back(e);
                }
                let mut tr = [[0u64; 4]; 4];
                for &(h, e) in &self.sessions[to].hashes[i] {
                    if let Some(q) = queue.get_mut(&h)
                        && let Some(a) = q.pop_front()
                    {
                        tr[usize::from(a)][usize::from(e)] += 1;
                    }
                }
                let name = self.sessions[to].dirs[i].conn.clone();
                let from_name = self.sessions[from].dirs[i].conn.clone();
                let d = &mut self.sessions[from].dirs[i];
                d.relayed_to = Some(name.clone());
                d.transitions = tr;
                // Reports travel with the direction: those on the far leg
                // were written by the sender of this direction, next to `from`.
                self.sessions[to].dirs[i].reports_from_leg = Some(from_name);
            }
        }
    }
}

fn judge(d: &mut LegDir, reverse_reports: &[(u64, u8)], reverse_sealed: u64) {
    let sent_marked = d.user_data_packets[1] + d.user_data_packets[2] + d.user_data_packets[3];
    let sealed: u64 = d.sealed.iter().sum();
    let v = &mut d.verdicts;
    v.push(if d.marked_without_user_data == 0 && sealed > 0 {
        Verdict {
            code: "marks_only_user_data",
            outcome: Outcome::Unknown,
            message: format!(
                "{sealed} packets could not be opened (no key: give --keylog): which carry user data is unknown"
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
    } else if sent_marked > 0 && reverse_reports.is_empty() {
        v.push(Verdict {
            code: "kept_marking_without_reports",
            outcome: Outcome::Ok,
            message: "stopped marking when acks came without ECN Reports".into(),
        });
    }
    if sent_marked > 0 && reverse_reports.is_empty() && reverse_sealed == 0 {
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

/// Judges the reports sent in direction `d` against `marks`, the ECT/CE
/// packets it received (frame, CE) on the same leg.
fn judge_reports(d: &mut LegDir, marks: &[(u64, bool)]) {
    if let Some(&f) = d.reports_without_marks.first() {
        d.verdicts.push(Verdict {
            code: "report_without_marks",
            outcome: Outcome::Fault,
            message: format!(
                "ECN Report sent (frame {f}) before any ECN-capable packet was received (a MUST NOT)"
            ),
        });
    }
    if d.ecn_reports.is_empty() {
        return;
    }
    // CE received before each report, and before the report preceding it.
    let mut over = None;
    let mut j = 0;
    let mut ce: u64 = 0;
    let mut prev_ce: u64 = 0;
    let mut last_lag = 0u64;
    let mut last_allowed = 0u64;
    for &(f, r) in &d.ecn_reports {
        let before = ce;
        while j < marks.len() && marks[j].0 < f {
            ce += u64::from(marks[j].1);
            j += 1;
        }
        let c = (ce & 0xff) as u8;
        let ahead = r.wrapping_sub(c);
        if (1..=0xdf).contains(&ahead) && over.is_none() {
            over = Some((f, r, ce));
        }
        last_lag = u64::from(c.wrapping_sub(r));
        last_allowed = ce - prev_ce;
        prev_ce = before;
    }
    let last = d.ecn_reports.last().map_or(0, |x| x.1);
    d.verdicts.push(match over {
        Some((f, r, c)) => Verdict {
            code: "reports_match_ce",
            outcome: Outcome::Fault,
            message: format!(
                "ECN Report at frame {f} says {r} CE but only {c} (mod 256: {}) CE-marked packets had arrived",
                c % 256
            ),
        },
        None if last_lag > last_allowed => Verdict {
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
                "{} ECN Reports agree with the {ce} CE marks received (last report {last} = {ce} mod 256)",
                d.ecn_reports.len()
            ),
        },
    });
}
