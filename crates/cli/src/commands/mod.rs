//! One module per group of commands; [`run`] dispatches.

pub mod browse;
mod docs;
mod edit;
mod interactive;
mod quarantine;
mod rekey;
mod stats;

use crate::cli::{Cli, Command, InteractiveCommand, QuarantineCommand};
use crate::error::CliResult;
use crate::store;
use crate::transfer;

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> CliResult {
    let json = cli.json;
    // Commands that need no store.
    match &cli.command {
        Command::Completions { shell } => {
            docs::completions(*shell);
            return Ok(());
        }
        Command::Man => return docs::man(),
        _ => {}
    }
    let ring = rekey::ring(cli.keys.as_deref(), cli.keys_file.as_deref())?;
    let s = store::open(cli.store.as_deref()).await?;
    match cli.command {
        Command::List { namespace, limit } => browse::list(&s, namespace.as_deref(), limit, json).await,
        Command::Get { key, raw } => browse::get(&s, &key, raw, ring.as_ref(), json).await,
        Command::Set(args) => edit::set(&s, &args, ring.as_ref(), json).await,
        Command::Delete { key, if_version } => edit::delete(&s, &key, if_version, json).await,
        Command::ForgetUser { user_id } => edit::forget_user(&s, user_id, json).await,
        Command::PurgeExpired => edit::purge_expired(&s, json).await,
        Command::Stats => stats::stats(&s, json).await,
        Command::Quarantine(q) => match q {
            QuarantineCommand::List { namespace } => quarantine::list(&s, namespace.as_deref(), json).await,
            QuarantineCommand::Show { key } => quarantine::show(&s, &key, json).await,
            QuarantineCommand::Restore { key, force } => quarantine::restore(&s, &key, force, json).await,
            QuarantineCommand::Drop { key } => quarantine::drop(&s, &key, json).await,
        },
        Command::Export { namespace, output } => transfer::export(&s, namespace.as_deref(), output.as_deref()).await,
        Command::Import { file, force } => transfer::import(&s, file.as_deref(), force, json).await,
        Command::Copy { to, namespace, force } => transfer::copy(&s, &to, namespace.as_deref(), force, json).await,
        Command::ImportTeloxide { from, serializer, namespace, force } => {
            crate::teloxide::import(&s, &from, serializer, namespace.as_deref(), force, json).await
        }
        Command::Rekey { namespace, accept_plaintext } => {
            rekey::rekey(&s, ring, namespace.as_deref(), accept_plaintext, json).await
        }
        Command::Interactive(i) => match i {
            InteractiveCommand::List { namespace } => interactive::list(&s, &namespace, ring.as_ref(), json).await,
            InteractiveCommand::End { session, namespace } => {
                interactive::end(&s, &namespace, &session, ring.as_ref(), json).await
            }
        },
        Command::Completions { .. } | Command::Man => Ok(()),
    }
}
