//! `rtmptool diagnose CAPTURE|-`: reads a capture once, runs the
//! [`rtmptool::analyze::Analyzer`] over it and hands its records (and the
//! bytes, for chunk-size inference) to a [`rtmptool::diag::Diagnoser`];
//! prints the findings through `report::diagnose`, and how many packets
//! were not decoded. Exit 8 when a fault (error or warning) is found, 0
//! when none is, 7 for a bad capture or one of which no packet decoded
//! down to IP (an unsupported link type or encapsulation).

use std::io::{self, BufWriter, Write};

use anyhow::anyhow;
use rtmptool::analyze::{Analyzer, Options, RecordKind};
use rtmptool::diag::{Diagnoser, Severity};

use crate::cli::DiagnoseArgs;
use crate::report::Style;
use crate::{Exit, exit};

/// Runs `diagnose`.
pub fn run(args: &DiagnoseArgs, style: &Style, timeout: std::time::Duration) -> Result<(), Exit> {
    if args.input.contains("://") {
        return live(args, style, timeout);
    }
    if args.throughput {
        return Err(Exit {
            code: exit::USAGE,
            error: anyhow!("--throughput measures a server: give an rtmp:// URL, not a capture"),
        });
    }
    // Ctrl-C ends the capture: what was read is diagnosed.
    let mut cap = super::dump::Capture::open(&args.input)?;
    let name = cap.name.clone();
    let bad = super::dump::bad_capture(&name);
    let mut an = Analyzer::new(Options {
        port: args.port,
        report_chunks: false,
        ..Default::default()
    });
    let mut dg = Diagnoser::new(rtmptool::diag::Options {
        reveal_keys: args.reveal_keys,
        ..Default::default()
    });
    let mut connections = 0u64;
    let mut rtmfp_sessions = 0u64;
    let mut result = Ok(());
    loop {
        match cap.next_packet() {
            Ok(Some(p)) => {
                // Two sinks of one pass: records and the bytes they came from.
                let dg_cell = std::cell::RefCell::new(&mut dg);
                an.packet_with_data(
                    &p,
                    &mut |rec| {
                        match rec.kind {
                            RecordKind::Open { .. } => connections += 1,
                            RecordKind::RtmfpSession { .. } => rtmfp_sessions += 1,
                            _ => {}
                        }
                        dg_cell.borrow_mut().record(&rec);
                    },
                    &mut |d| dg_cell.borrow_mut().data(d),
                );
            }
            Ok(None) => break,
            Err(e) => {
                result = Err(bad(e));
                break;
            }
        }
    }
    // Packets read, decoded to IP, not decoded (and why).
    let mut tally = super::dump::PacketTally::default();
    an.finish(&mut |rec| {
        if let RecordKind::Open { .. } = &rec.kind {
            connections += 1;
        }
        tally.note(&rec.kind);
        dg.record(&rec);
    });
    let not_decoded = tally.not_decoded();
    if result.is_ok()
        && let Some(e) = tally.nothing_decoded(&name, "nothing to diagnose")
    {
        return Err(e);
    }
    let unjudged = dg.unjudged();
    let findings = dg.finish();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let written =
        crate::report::diagnose::render(&mut out, style, &findings, connections, rtmfp_sessions)
            .and_then(|()| match &not_decoded {
                Some(t) => crate::report::diagnose::render_not_decoded(&mut out, style, t),
                None => Ok(()),
            })
            .and_then(|()| match unjudged {
                0 => Ok(()),
                n => crate::report::diagnose::render_warning(
                    &mut out,
                    style,
                    "memory_budget",
                    &format!(
                        "{n} direction(s) not fully checked: the connections together held more than diagnose's memory budget (128 MiB of messages in progress, 64 MiB of bytes awaiting a chunk-size judgement); many connections each carry megabytes that do not complete as RTMP messages"
                    ),
                ),
            })
            .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            return Err(Exit {
                code: exit::FAILURE,
                error: anyhow!("cannot write output: {e}"),
            });
        }
        Ok(()) => {}
    }
    result?;
    let faults = findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .count();
    if faults > 0 {
        return Err(Exit {
            code: exit::FAULT,
            error: anyhow!(
                "{faults} fault{} found in {name}",
                if faults == 1 { "" } else { "s" }
            ),
        });
    }
    Ok(())
}

/// `diagnose URL`: live checks against a server.
fn live(args: &DiagnoseArgs, style: &Style, timeout: std::time::Duration) -> Result<(), Exit> {
    use rtmptool::diag::live::{CHECKS, run_checks};
    use rtmptool::net::url::RtmpUrl;
    let url = RtmpUrl::parse(&args.input, None, None).map_err(|e| Exit {
        code: exit::BAD_INPUT,
        error: e.into(),
    })?;
    if url.tls {
        return Err(Exit {
            code: exit::USAGE,
            error: anyhow!(
                "diagnose {}: live checks run over rtmp:// only",
                url.shown(args.reveal_keys)
            ),
        });
    }
    let rt = super::runtime()?;
    let throughput = [rtmptool::diag::live::Check::Throughput(args.measure)];
    let checks: &[rtmptool::diag::live::Check] = if args.throughput {
        &throughput
    } else {
        &CHECKS
    };
    let report = rt.block_on(async {
        let mut sig = super::streaming::sigint()?;
        let stop = async move {
            sig.recv().await;
        };
        Ok::<_, Exit>(run_checks(&url, checks, timeout, args.reveal_keys, args.bitrate, stop).await)
    })?;
    let findings = report.findings;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    // Interrupted before a check ended: nothing to show ("no fault found"
    // would claim what was not checked).
    if !(report.interrupted && findings.is_empty()) {
        let _ = crate::report::diagnose::render(&mut out, style, &findings, 0, 0)
            .and_then(|()| out.flush());
    }
    if report.interrupted {
        // What ran is shown; the diagnosis is not complete.
        return Err(Exit {
            code: exit::INTERRUPTED,
            error: anyhow!(
                "diagnose {}: interrupted after {} of {} checks",
                url.shown(args.reveal_keys),
                findings.len(),
                checks.len()
            ),
        });
    }
    let unreachable = findings
        .iter()
        .all(|f| f.message.starts_with("could not run"));
    if unreachable {
        return Err(Exit {
            code: exit::NETWORK,
            error: anyhow!(
                "diagnose {}: the server could not be reached",
                url.shown(args.reveal_keys)
            ),
        });
    }
    let faults = findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .count();
    if faults > 0 {
        return Err(Exit {
            code: exit::FAULT,
            error: anyhow!(
                "diagnose {}: the server refused {faults} check{}",
                url.shown(args.reveal_keys),
                if faults == 1 { "" } else { "s" }
            ),
        });
    }
    Ok(())
}
