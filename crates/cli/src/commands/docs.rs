//! `completions SHELL` and `man`: generated from the clap definitions.

use std::io::Write as _;

use clap::CommandFactory as _;

use crate::cli::Cli;
use crate::error::{CliError, CliResult};

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "bot-sessions", &mut std::io::stdout());
}

/// Prints the man page, with a section for every subcommand.
pub fn man() -> CliResult {
    let cmd = Cli::command();
    let io = |e: std::io::Error| CliError::Failed(format!("cannot write the man page: {e}"));
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(cmd.clone()).render(&mut out).map_err(io)?;
    for sub in cmd.get_subcommands() {
        let page = clap_mangen::Man::new(sub.clone().bin_name(format!("bot-sessions {}", sub.get_name())));
        writeln!(out, ".SH \"COMMAND: {}\"", sub.get_name().to_uppercase()).map_err(io)?;
        page.render_synopsis_section(&mut out).map_err(io)?;
        page.render_description_section(&mut out).map_err(io)?;
        page.render_options_section(&mut out).map_err(io)?;
        page.render_extra_section(&mut out).map_err(io)?;
    }
    out.flush().map_err(io)
}
