//! `rtmptool completions SHELL`: a completion script on stdout.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

/// Writes the completion script for `args.shell` to `out`.
pub fn run(args: &CompletionsArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "rtmptool", out);
    Ok(())
}
