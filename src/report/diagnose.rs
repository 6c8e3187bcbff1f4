//! `diagnose` output: findings grouped per connection for humans (what, where,
//! why, the fix), one `finding` JSON record each with `--json` (CLI.md).

use std::io::{self, Write};

use owo_colors::OwoColorize;
use rtmptool::capture::tcp::Dir;
use rtmptool::diag::{Fact, Finding, Severity};
use serde_json::{Map, Value as Json, json};

use super::{Style, words, write_json_line};

/// The JSON record of one finding.
pub fn finding_json(f: &Finding) -> Json {
    let mut m = Map::new();
    m.insert("type".into(), json!("finding"));
    m.insert("code".into(), json!(f.code.as_str()));
    m.insert("severity".into(), json!(f.severity.as_str()));
    m.insert("conn".into(), json!(&*f.conn));
    // Live checks carry "check" and "url" (facts) in place of dir, frame and offset.
    if check(f).is_none() {
        m.insert("dir".into(), json!(f.dir.map(words::dir_name)));
        m.insert("frame".into(), json!(f.frame));
        m.insert("offset".into(), json!(f.offset));
    }
    if let Some(t) = f.time {
        m.insert("time".into(), json!(t.as_f64()));
    }
    m.insert("message".into(), json!(f.message));
    m.insert("fix".into(), json!(f.fix));
    for (k, v) in &f.facts {
        let v = match v {
            Fact::Int(n) => json!(n),
            Fact::Float(x) => json!((x * 1000.0).round() / 1000.0),
            Fact::Text(s) => json!(s),
        };
        m.insert((*k).into(), v);
    }
    Json::Object(m)
}

/// The live check a finding reports, if it is one.
fn check(f: &Finding) -> Option<&str> {
    f.facts.iter().find_map(|(k, v)| match (k, v) {
        (&"check", Fact::Text(s)) => Some(s.as_str()),
        _ => None,
    })
}

fn fact_text<'a>(f: &'a Finding, key: &str) -> &'a str {
    f.facts
        .iter()
        .find_map(|(k, v)| match v {
            Fact::Text(s) if *k == key => Some(s.as_str()),
            _ => None,
        })
        .unwrap_or("")
}

/// Live checks: one line per check, what the server accepts and refuses.
fn render_checks(out: &mut dyn Write, style: &Style, findings: &[Finding]) -> io::Result<()> {
    if let Some(f) = findings.first() {
        writeln!(out, "checks against {}", fact_text(f, "url"))?;
    }
    for f in findings {
        if style.verbosity < 0 && f.severity < Severity::Warning {
            continue;
        }
        writeln!(
            out,
            "  {} {:<28} {}",
            severity_word(f.severity, style.color),
            check(f).unwrap_or(""),
            f.message
        )?;
        if !f.fix.is_empty() {
            writeln!(out, "          fix: {}", f.fix)?;
        }
    }
    Ok(())
}

fn severity_word(s: Severity, color: bool) -> String {
    let w = format!("{:<7}", s.as_str());
    if !color {
        return w;
    }
    match s {
        Severity::Error => w.red().bold().to_string(),
        Severity::Warning => w.yellow().bold().to_string(),
        Severity::Info => w.cyan().to_string(),
    }
}

/// Writes every finding; `connections` is how many RTMP connections were read.
pub fn render(
    out: &mut dyn Write,
    style: &Style,
    findings: &[Finding],
    connections: u64,
    rtmfp_sessions: u64,
) -> io::Result<()> {
    if style.json {
        for f in findings {
            write_json_line(out, &finding_json(f))?;
        }
        return Ok(());
    }
    if findings.iter().any(|f| check(f).is_some()) {
        return render_checks(out, style, findings);
    }
    let shown: Vec<&Finding> = findings
        .iter()
        .filter(|f| style.verbosity > 0 || f.severity > Severity::Info)
        .collect();
    let mut last_conn = None;
    for f in &shown {
        if style.verbosity < 0 && f.severity < Severity::Error {
            continue;
        }
        if last_conn != Some(f.conn_id) {
            if last_conn.is_some() {
                writeln!(out)?;
            }
            writeln!(out, "connection #{} {}", f.conn_id, f.conn)?;
            last_conn = Some(f.conn_id);
        }
        let mut place = Vec::new();
        if let Some(d) = f.dir {
            place.push(match d {
                Dir::C2s => "c2s".to_string(),
                Dir::S2c => "s2c".to_string(),
            });
        }
        if let Some(fr) = f.frame {
            place.push(format!("frame {fr}"));
        }
        if let Some(o) = f.offset {
            place.push(format!("offset {o}"));
        }
        let code = if style.color {
            f.code.as_str().bold().to_string()
        } else {
            f.code.as_str().to_string()
        };
        writeln!(
            out,
            "  {} {code} ({})",
            severity_word(f.severity, style.color),
            place.join(", ")
        )?;
        writeln!(out, "          {}", f.message)?;
        writeln!(out, "          fix: {}", f.fix)?;
    }
    if style.verbosity >= 0 {
        let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
        let (e, w, i) = (
            count(Severity::Error),
            count(Severity::Warning),
            count(Severity::Info),
        );
        if !shown.is_empty() {
            writeln!(out)?;
        }
        if e + w == 0 {
            write!(
                out,
                "no fault found in {connections} RTMP connection{}",
                if connections == 1 { "" } else { "s" }
            )?;
            notes(out, i, style)?;
            writeln!(out)?;
            rtmfp(out, rtmfp_sessions)?;
        } else {
            write!(
                out,
                "{e} error{}, {w} warning{} in {connections} RTMP connection{}",
                if e == 1 { "" } else { "s" },
                if w == 1 { "" } else { "s" },
                if connections == 1 { "" } else { "s" }
            )?;
            notes(out, i, style)?;
            writeln!(out)?;
            rtmfp(out, rtmfp_sessions)?;
        }
    }
    Ok(())
}

/// The capture's packets that were not decoded (`words::not_decoded`): what
/// was diagnosed is not the whole capture. A `warning` record in JSON.
pub fn render_not_decoded(out: &mut dyn Write, style: &Style, text: &str) -> io::Result<()> {
    render_warning(out, style, "undecodable", text)
}

/// A last warning line about the run itself (a `warning` record with
/// `code` in JSON).
pub fn render_warning(
    out: &mut dyn Write,
    style: &Style,
    code: &str,
    text: &str,
) -> io::Result<()> {
    if style.json {
        return write_json_line(
            out,
            &json!({"type": "warning", "code": code, "message": text}),
        );
    }
    if style.verbosity < 0 {
        return Ok(());
    }
    let w = if style.color {
        "warning:".yellow().bold().to_string()
    } else {
        "warning:".to_string()
    };
    writeln!(out, "{w} {text}")
}

/// What diagnose leaves to `ecn`: the capture's RTMFP sessions.
fn rtmfp(out: &mut dyn Write, sessions: u64) -> io::Result<()> {
    if sessions == 0 {
        return Ok(());
    }
    writeln!(
        out,
        "the capture also holds {sessions} RTMFP session{}: diagnose judges RTMP; `rtmptool ecn --keylog FILE` judges their ECN, `rtmptool dump` decodes them",
        if sessions == 1 { "" } else { "s" }
    )
}

/// " (N notes; -v shows them)" after the summary, when there are notes.
fn notes(out: &mut dyn Write, n: usize, style: &Style) -> io::Result<()> {
    let s = if n == 1 { "" } else { "s" };
    match (n, style.verbosity) {
        (0, _) => Ok(()),
        (_, 0) => write!(out, " ({n} note{s}; -v shows them)"),
        _ => write!(out, " ({n} note{s})"),
    }
}
