//! `rtmptool man DIR`: one man page per command, written into DIR.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};

/// Writes `rtmptool.1` and `rtmptool-COMMAND.1` for every command; returns the paths.
pub fn run(args: &ManArgs) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create directory {}", args.dir.display()))?;
    let cmd = Cli::command();
    if !args.force {
        let mut names = vec!["rtmptool".to_owned()];
        names.extend(
            cmd.get_subcommands()
                .map(|s| format!("rtmptool-{}", s.get_name())),
        );
        let existing: Vec<String> = names
            .iter()
            .map(|n| format!("{n}.1"))
            .filter(|f| args.dir.join(f).exists())
            .collect();
        if !existing.is_empty() {
            anyhow::bail!(
                "{} already holds {} ({} file(s)); give --force to overwrite them",
                args.dir.display(),
                existing.join(", "),
                existing.len()
            );
        }
    }
    let mut written = Vec::new();
    write_page(&cmd, &args.dir, "rtmptool", &mut written)?;
    for sub in cmd.get_subcommands() {
        let name = format!("rtmptool-{}", sub.get_name());
        let sub = sub.clone().name(&name);
        write_page(&sub, &args.dir, &name, &mut written)?;
    }
    Ok(written)
}

fn write_page(
    cmd: &clap::Command,
    dir: &Path,
    name: &str,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .with_context(|| format!("cannot render the man page of {name}"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buf).with_context(|| format!("cannot write {}", path.display()))?;
    written.push(path);
    Ok(())
}
