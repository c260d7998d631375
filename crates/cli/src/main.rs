//! `bot-sessions`: the operator tool. Look into, fix, move and erase the sessions of a
//! bot built on the bot-sessions library, in any store, through the library's `Store`
//! trait (nothing here is specific to one backend).
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod error;
mod store;
mod teloxide;
mod transfer;
mod util;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // clap exits with 2 on usage errors, 0 for --help and --version.
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bot-sessions: error: cannot start the async runtime: {e}");
            return ExitCode::from(error::exit::FAILED);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bot-sessions: error: {e}");
            ExitCode::from(e.code())
        }
    }
}
