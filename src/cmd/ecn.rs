//! `rtmptool ecn CAPTURE`: runs the analyzer over a capture (RTMFP over
//! UDP, with `--keylog`), feeds its records to [`rtmptool::diag::ecn`] and
//! prints one table (or one `ecn_session` JSON record) per session leg and
//! direction. Exit status 8 when a verdict is a fault.

use std::io::{self, Write};

use anyhow::anyhow;
use comfy_table::{ContentArrangement, Table, presets};
use rtmptool::analyze::{Analyzer, Options};
use rtmptool::diag::ecn::{Ecn, LegDir, Outcome};
use serde_json::json;

use crate::cli::EcnArgs;
use crate::report::{Style, write_json_line};
use crate::{Exit, exit};

const NAMES: [&str; 4] = ["not_ect", "ect1", "ect0", "ce"];

fn counts(c: &[u64; 4]) -> serde_json::Value {
    json!({"not_ect": c[0], "ect0": c[2], "ect1": c[1], "ce": c[3]})
}

/// The `ecn_session` record of one leg direction.
pub fn leg_json(d: &LegDir) -> serde_json::Value {
    let leg = format!(
        "{} -> {}",
        d.src.map(|a| a.to_string()).unwrap_or_default(),
        d.dst.map(|a| a.to_string()).unwrap_or_default()
    );
    let mut v = json!({
        "type": "ecn_session",
        "conn": d.conn,
        "dir": d.dir.map(crate::report::words::dir_name),
        "leg": leg,
        "src": d.src.map(|a| a.to_string()),
        "dst": d.dst.map(|a| a.to_string()),
        "not_ect": d.packets[0], "ect0": d.packets[2], "ect1": d.packets[1], "ce": d.packets[3],
        "packets": counts(&d.packets),
        "user_data_packets": counts(&d.user_data_packets),
        "encrypted_without_key": d.sealed.iter().sum::<u64>(),
        "last_ect_user_data_frame": d.last_ect_user_data_frame,
        "first_not_ect_user_data_frame": d.first_not_ect_user_data_frame,
        "ecn_reports": d.ecn_reports.iter().map(|(f, v)| json!([f, v])).collect::<Vec<_>>(),
        "verdicts": d.verdicts.iter().map(|v| json!({
            "code": v.code, "verdict": v.outcome.as_str(), "message": v.message})).collect::<Vec<_>>(),
    });
    if d.ecn_reports_omitted > 0 {
        v["ecn_reports_omitted"] = json!(d.ecn_reports_omitted);
    }
    if let Some(to) = &d.relayed_to {
        let mut t = serde_json::Map::new();
        for (i, a) in NAMES.iter().enumerate() {
            for (j, b) in NAMES.iter().enumerate() {
                if d.transitions[i][j] > 0 {
                    t.insert(format!("{a}->{b}"), json!(d.transitions[i][j]));
                }
            }
        }
        v["relayed_to"] = json!(to);
        v["transitions"] = serde_json::Value::Object(t);
    }
    v
}

fn leg_text(d: &LegDir, verbose: bool, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "{} {} ({} -> {})",
        d.conn,
        d.dir.map(crate::report::words::dir_name).unwrap_or(""),
        d.src.map(|a| a.to_string()).unwrap_or_default(),
        d.dst.map(|a| a.to_string()).unwrap_or_default()
    )?;
    let mut t = Table::new();
    t.load_style(presets::ASCII_MARKDOWN)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(vec!["packets", "Not-ECT", "ECT(0)", "ECT(1)", "CE"]);
    for (name, c) in [
        ("all", &d.packets),
        ("with user data", &d.user_data_packets),
    ] {
        t.add_row(vec![
            name.to_string(),
            c[0].to_string(),
            c[2].to_string(),
            c[1].to_string(),
            c[3].to_string(),
        ]);
    }
    writeln!(out, "{t}")?;
    let sealed: u64 = d.sealed.iter().sum();
    if sealed > 0 {
        writeln!(
            out,
            "{sealed} packets could not be opened ({})",
            d.sealed_why()
        )?;
    }
    if !d.ecn_reports.is_empty() {
        let list: Vec<String> = d
            .ecn_reports
            .iter()
            .map(|(f, v)| format!("#{f}:{v}"))
            .collect();
        // Long lists: the first and the last few (-v or --json: all).
        let shown = if list.len() > 12 && !verbose {
            format!(
                "{} … {}",
                list[..6].join(" "),
                list[list.len() - 3..].join(" ")
            )
        } else {
            list.join(" ")
        };
        writeln!(
            out,
            "ECN Reports sent ({}, #frame:value): {shown}",
            list.len()
        )?;
    }
    for v in &d.verdicts {
        writeln!(out, "  {:7} {}: {}", v.outcome.as_str(), v.code, v.message)?;
    }
    Ok(())
}

/// Runs `ecn`.
pub fn run(args: &EcnArgs, style: &Style) -> Result<(), Exit> {
    let keylog = super::dump::load_keylog(args.keylog.as_deref())?;
    // Ctrl-C ends the capture: the sessions so far are reported.
    let mut cap = super::dump::Capture::open(&args.input)?;
    let name = cap.name.clone();
    let bad = super::dump::bad_capture(&name);
    let mut an = Analyzer::new(Options {
        keylog,
        ..Default::default()
    });
    let mut ecn = Ecn::new();
    while let Some(p) = cap.next_packet().map_err(&bad)? {
        an.packet(&p, &mut |r| ecn.record(&r));
    }
    let mut tally = super::dump::PacketTally::default();
    an.finish(&mut |r| {
        tally.note(&r.kind);
        ecn.record(&r);
    });
    if let Some(e) = tally.nothing_decoded(&name, "nothing to inspect") {
        return Err(e);
    }
    let not_decoded = tally.not_decoded();
    let legs = ecn.finish();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let write = |out: &mut dyn Write| -> io::Result<()> {
        if legs.is_empty() && !style.json {
            writeln!(out, "no RTMFP session found in {name}")?;
        }
        for (i, d) in legs.iter().enumerate() {
            if i > 0 && !style.json {
                writeln!(out)?;
            }
            if style.json {
                write_json_line(out, &leg_json(d))?;
            } else {
                leg_text(d, style.verbosity > 0, out)?;
            }
        }
        if let Some(t) = &not_decoded {
            crate::report::diagnose::render_not_decoded(out, style, t)?;
        }
        out.flush()
    };
    match write(&mut out) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            return Err(Exit {
                code: exit::FAILURE,
                error: anyhow!("cannot write output: {e}"),
            });
        }
        Ok(()) => {}
    }
    let faults = legs
        .iter()
        .flat_map(|d| &d.verdicts)
        .filter(|v| v.outcome == Outcome::Fault)
        .count();
    if faults > 0 {
        return Err(Exit {
            code: exit::FAULT,
            error: anyhow!(
                "{faults} ECN fault{} found in {name}",
                if faults == 1 { "" } else { "s" }
            ),
        });
    }
    Ok(())
}
