//! `rtmptool dump CAPTURE|-`: reads a capture as a stream, runs the
//! [`rtmptool::analyze::Analyzer`] over it and renders its records (human
//! text, `--json` NDJSON, `--hex`, `--stats`) through `report::dump`.
//!
//! Bad input (not a capture, a truncated or corrupt record) ends the run with
//! exit status 7 after everything decoded before it has been printed.

use std::fs::File;
use std::io::{self, BufWriter, Read};

use anyhow::anyhow;
use rtmptool::analyze::{Analyzer, Options};
use rtmptool::capture::Reader;

use crate::cli::DumpArgs;
use crate::report::Style;
use crate::report::dump::{Filter, Renderer};
use crate::{Exit, exit};

/// Runs `dump`.
pub fn run(args: &DumpArgs, style: &Style) -> Result<(), Exit> {
    let filter = Filter::from_args(args).map_err(|e| Exit {
        code: exit::USAGE,
        error: e,
    })?;
    let (input, name, streaming): (Box<dyn Read>, String, bool) = if args.input == "-" {
        let stdin = io::stdin();
        // A pipe or terminal: print records as packets arrive.
        let regular = is_regular_stdin();
        (Box::new(stdin.lock()), "stdin".into(), !regular)
    } else {
        let f = File::open(&args.input).map_err(|e| Exit {
            code: exit::BAD_INPUT,
            error: anyhow!("cannot open capture {}: {e}", args.input),
        })?;
        (Box::new(f), args.input.clone(), false)
    };
    let bad = |e: rtmptool::capture::CaptureError| Exit {
        code: exit::BAD_INPUT,
        error: anyhow!("{name}: {e}"),
    };
    let mut reader = Reader::new(input).map_err(bad)?;
    let stdout = io::stdout();
    let out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut r = Renderer::new(out, *style, args, filter);
    let mut an = Analyzer::new(Options {
        port: args.port,
        report_chunks: style.verbosity > 0 && !style.json && !args.stats,
    });
    let mut io_err: Option<io::Error> = None;
    let mut result = Ok(());
    loop {
        match reader.next_packet() {
            Ok(Some(p)) => {
                an.packet(&p, &mut |rec| {
                    if io_err.is_none()
                        && let Err(e) = r.record(&rec)
                    {
                        io_err = Some(e);
                    }
                });
                if io_err.is_some() {
                    break;
                }
                if streaming
                    && r.take_dirty()
                    && let Err(e) = r.flush()
                {
                    io_err = Some(e);
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                result = Err(bad(e));
                break;
            }
        }
    }
    if io_err.is_none() {
        an.finish(&mut |rec| {
            if io_err.is_none()
                && let Err(e) = r.record(&rec)
            {
                io_err = Some(e);
            }
        });
    }
    if io_err.is_none()
        && let Err(e) = r.finish()
    {
        io_err = Some(e);
    }
    match io_err {
        // `dump ... | head`: the reader went away, which is not a failure.
        Some(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
        Some(e) => {
            return Err(Exit {
                code: exit::FAILURE,
                error: anyhow!("cannot write output: {e}"),
            });
        }
        None => {}
    }
    result
}

/// Whether stdin is a regular file (`dump - < file.pcap`), where buffering
/// output fully is faster and nothing waits for it.
fn is_regular_stdin() -> bool {
    #[cfg(unix)]
    {
        std::fs::metadata("/dev/stdin").is_ok_and(|m| m.is_file())
    }
    #[cfg(not(unix))]
    {
        false
    }
}
