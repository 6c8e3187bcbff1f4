//! Output for humans and machines. Commands build records; these helpers
//! decide colour and write NDJSON, so that human and JSON output carry the
//! same content and `--json` prints nothing but JSON lines on stdout.

pub mod diagnose;
pub mod dump;
pub mod rtmfp;
pub mod words;

use std::io::{IsTerminal, Write};

use crate::cli::{ColorChoice, GlobalArgs};

/// How output is to be written, resolved once from the global flags.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// NDJSON on stdout instead of human text.
    pub json: bool,
    /// ANSI colour in human output.
    pub color: bool,
    /// Verbosity: -1 quiet, 0 normal, 1.. more detail.
    pub verbosity: i8,
    /// Progress bars allowed (interactive stderr, not JSON, not quiet).
    pub progress: bool,
}

impl Style {
    /// Resolves `--json`, `--color`, `-q`, `-v` against the environment:
    /// colour only on a terminal stdout and never with `NO_COLOR` (unless
    /// `--color always`); progress only on a terminal stderr.
    pub fn from_args(g: &GlobalArgs) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = !g.json
            && match g.color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => !no_color && std::io::stdout().is_terminal(),
            };
        let verbosity = if g.quiet { -1 } else { g.verbose.min(10) as i8 };
        Style {
            json: g.json,
            color,
            verbosity,
            progress: !g.json && !g.quiet && std::io::stderr().is_terminal(),
        }
    }
}

/// Writes one JSON value as one line. serde_json escapes C0 controls but
/// writes DEL, C1 controls (U+009B is a CSI to many terminals) and invisible
/// format characters raw; they are escaped here as `\uXXXX`, which decodes
/// to the same value, so no raw control character reaches a terminal.
pub fn write_json_line(out: &mut dyn Write, value: &serde_json::Value) -> std::io::Result<()> {
    let text = serde_json::to_string(value)?;
    if text.chars().any(rtmptool::text::is_unsafe) {
        let mut safe = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            if rtmptool::text::is_unsafe(c) {
                // All of them are in the BMP: one \uXXXX each.
                safe.push_str(&format!("\\u{:04x}", u32::from(c)));
            } else {
                safe.push(c);
            }
        }
        out.write_all(safe.as_bytes())?;
    } else {
        out.write_all(text.as_bytes())?;
    }
    out.write_all(b"\n")
}
