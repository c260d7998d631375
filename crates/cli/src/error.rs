//! The tool's errors and the exit code each one gets.

use bot_sessions::StoreError;

/// The exit codes (documented in `--help`).
pub mod exit {
    /// Not found, conflict, records refused.
    pub const FAILED: u8 = 1;
    /// Usage or bad input.
    pub const USAGE: u8 = 2;
    /// The store is unreachable or failed.
    pub const STORE: u8 = 3;
}

/// A failed command: a message for stderr and an exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or input (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Not found, conflict, refused (exit 1).
    #[error("{0}")]
    Failed(String),
    /// The store is unreachable or failed (exit 3).
    #[error("{0}")]
    Store(String),
}

impl CliError {
    /// The process exit code.
    pub fn code(&self) -> u8 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Failed(_) => exit::FAILED,
            CliError::Store(_) => exit::STORE,
        }
    }

    /// A store error met while talking to `store` (its redacted name), classified.
    pub fn store(store: &str, e: &StoreError) -> Self {
        let msg = format!("store {store}: {e}");
        match e {
            StoreError::Conflict { .. } | StoreError::Corrupt { .. } => CliError::Failed(msg),
            StoreError::Config(_) => CliError::Usage(msg),
            _ => CliError::Store(msg),
        }
    }
}

/// A command's result.
pub type CliResult<T = ()> = Result<T, CliError>;
