//! The `rtmptool` binary: parse the command line, run the command, map errors
//! to the exit codes of the CLI contract.

mod cli;
mod cmd;
#[allow(dead_code)] // used by the commands (dump, probe, ...) as they land
mod report;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// mimalloc keeps freed memory for reuse: `play` and `publish` allocate a
/// buffer per media message (often hundreds of KB), which glibc's malloc
/// returns to the kernel and faults back in, page by page, every frame.
/// Built without transparent huge pages (`no_thp`): a purged region faulted
/// back in was zeroed 2 MB at a time, a fifth of the relay's CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes of the CLI contract.
#[allow(dead_code)]
pub mod exit {
    /// Unexpected failure.
    pub const FAILURE: u8 = 1;
    /// Usage error.
    pub const USAGE: u8 = 2;
    /// Network: resolution, TCP connect refused or timed out, reset.
    pub const NETWORK: u8 = 3;
    /// RTMP/RTMFP handshake failed or timed out.
    pub const HANDSHAKE: u8 = 4;
    /// Refused by the server.
    pub const REFUSED: u8 = 5;
    /// TLS failure.
    pub const TLS: u8 = 6;
    /// Bad input: unreadable/invalid FLV, pcap, key log, URL.
    pub const BAD_INPUT: u8 = 7;
    /// `diagnose`/`ecn` found a fault.
    pub const FAULT: u8 = 8;
    /// The peer broke the protocol.
    pub const PROTOCOL: u8 = 9;
    /// Interrupted before anything could be saved.
    pub const INTERRUPTED: u8 = 130;
}

/// An error that carries its exit code.
#[derive(Debug)]
pub struct Exit {
    /// Exit status.
    pub code: u8,
    /// What to print on stderr.
    pub error: anyhow::Error,
}

fn run(cli: Cli) -> Result<(), Exit> {
    let fail = |error: anyhow::Error| Exit {
        code: exit::FAILURE,
        error,
    };
    match cli.command {
        Command::Probe(args) => cmd::probe::run(&args, &cli.global),
        Command::Dump(args) => cmd::dump::run(&args, &report::Style::from_args(&cli.global)),
        Command::Diagnose(args) => cmd::diagnose::run(
            &args,
            &report::Style::from_args(&cli.global),
            cli.global.timeout,
        ),
        Command::Ecn(args) => cmd::ecn::run(&args, &report::Style::from_args(&cli.global)),
        Command::Publish(args) => cmd::publish::run(&args, &cli.global),
        Command::Play(args) => cmd::play::run(&args, &cli.global),
        Command::Load(args) => cmd::load::run(&args, &cli.global),
        Command::Serve(args) => cmd::serve::run(&args, &cli.global),
        Command::Relay(args) => cmd::relay::run(&args, &cli.global),
        Command::Completions(args) => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            cmd::completions::run(&args, &mut out).map_err(fail)?;
            out.flush().map_err(|e| fail(e.into()))
        }
        Command::Man(args) => {
            let written = cmd::man::run(&args).map_err(fail)?;
            if !cli.global.quiet && !cli.global.json {
                eprintln!(
                    "wrote {} man pages to {}",
                    written.len(),
                    args.dir.display()
                );
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Exit { code, error }) => {
            // One line, always: no part of the message (a peer's text, an
            // OS error) may break it or reach the terminal raw.
            let text = format!("{error:#}");
            eprintln!("rtmptool: {}", rtmptool::text::one_line(&text));
            ExitCode::from(code)
        }
    }
}
