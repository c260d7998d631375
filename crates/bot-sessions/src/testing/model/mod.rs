//! A model-based test of the [`Store`](crate::Store) contract over whole key lifetimes.
//!
//! [`operations`] generates random sequences of operations by three interleaved clients
//! on a small key space (three keys of two users, and one key without a user that a
//! write can give an owner with [`Write::with_owner`](crate::Write::with_owner)), so that lifetimes overlap: keys
//! are created, updated, expired, deleted, forgotten and created again while clients
//! still hold versions of earlier incarnations. Each operation runs against the store
//! under test and against a small reference model (a `BTreeMap` of records), and every
//! result must be the same: the value, version, schema version, `user_id`,
//! `created_at`, `updated_at` and `expires_at` of each loaded or scanned record, each
//! `Conflict`, each count. A divergence fails with proptest's shrunk sequence and a
//! trace of what the store answered.
//!
//! [`run_model`] drives proptest's [`TestRunner`] and returns its result (so a test can
//! show that a broken store fails); [`model_lifetimes`] is the conformance entry point,
//! which panics with the shrunk case. The generated sequences come from a fixed seed,
//! so every backend runs the same ones.
//!
//! # Time
//!
//! Time is a manual clock passed to every call, never a sleep. Each case starts it at
//! the real current time; it only moves forward, by the generated `advance` steps
//! (at most [`MAX_LEAD`] ahead of the real time) and by catching up with the real time
//! when that has passed it, so a backend's own expiry (Redis' `PEXPIREAT` at
//! `expires_at` plus a grace) or a background purger working by the real time never
//! removes a record the model still holds live.
//!
//! # Shared servers
//!
//! Every case works in a fresh namespace with fresh user ids, and removes its records
//! at the end. `purge_expired` is global, so its count is not compared; what is
//! compared is what the purge leaves in this case's namespace (every key is loaded
//! and the namespace counted right after it). Another test on the same server may
//! purge with a clock of its own that is ahead of this one and so remove one of this
//! case's records before its `expires_at` in this case's time (the conformance
//! `expiry` property purges three minutes ahead). To tell that from a bug, each write
//! with an expiry is preceded by a *canary* record, in a namespace of its own, that
//! expires [`CANARY_LAG`] after the record would: this case's own purges never reach a
//! canary, so a canary that is gone means a foreign purge ran at least that far
//! ahead. A divergence that disappears when records whose canaries are gone (and that
//! a load finds gone) are taken out of the model is tolerated and noted in the trace;
//! so is an unconditional write that, by the record a load finds, created a new record
//! over one whose canary is gone. Any other divergence fails.
//!
//! The case's own purges run at most [`MAX_LEAD`] ahead of the real time, so they
//! never remove a record that a test on a clock of its own (starting at the real time,
//! with expiries of a minute or more) still holds live.
//!
//! The generator is in `generate.rs`, the reference model in `reference.rs`, one case's
//! run against both in `case.rs`; this file runs the cases.

mod case;
mod generate;
mod reference;

use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use crate::DynStore;
pub use case::run_case;
pub use generate::{CANARY_LAG, CLIENTS, KEYS, MAX_LEAD, Op, Pre, USERS, key_of, operations};

/// How many cases [`run_model`] runs, how long they are, and the seed of the
/// generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    /// Generated cases (each on a fresh namespace).
    pub cases: u32,
    /// The most operations in one case.
    pub max_ops: usize,
    /// The generator's seed: the same seed generates the same sequences.
    pub seed: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig { cases: 64, max_ops: 40, seed: 0x5e55_1045 }
    }
}

impl ModelConfig {
    /// The defaults (64 cases of up to 40 operations, a fixed seed), overridden by
    /// `BOT_SESSIONS_MODEL_CASES`, `BOT_SESSIONS_MODEL_OPS` and
    /// `BOT_SESSIONS_MODEL_SEED` when they are set.
    ///
    /// # Panics
    ///
    /// When one of those variables is set but is not a number (tests only).
    pub fn from_env() -> Self {
        fn var<T: std::str::FromStr>(name: &str) -> Option<T> {
            let text = std::env::var(name).ok()?;
            Some(text.trim().parse().unwrap_or_else(|_| panic!("{name}={text:?} is not a number")))
        }
        let d = Self::default();
        ModelConfig {
            cases: var("BOT_SESSIONS_MODEL_CASES").unwrap_or(d.cases),
            max_ops: var("BOT_SESSIONS_MODEL_OPS").unwrap_or(d.max_ops),
            seed: var("BOT_SESSIONS_MODEL_SEED").unwrap_or(d.seed),
        }
    }

    fn runner(&self) -> TestRunner {
        let config = Config {
            cases: self.cases,
            failure_persistence: None,
            rng_algorithm: RngAlgorithm::ChaCha,
            max_shrink_iters: 4096,
            verbose: 0,
            ..Config::default()
        };
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.seed.to_le_bytes());
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed))
    }
}

/// Runs the model-based test on `store`: `config.cases` generated sequences, each on a
/// fresh namespace, shrinking the first failing one. Returns proptest's verdict: the
/// shrunk sequence and its divergence on failure.
///
/// Inside a tokio runtime it must be a multi-threaded one (it blocks in place and
/// drives the store's futures on the runtime's handle); outside one it starts its own.
///
/// # Panics
///
/// When called on a current-thread tokio runtime, or when no runtime can be started.
pub fn run_model(store: &DynStore, config: &ModelConfig) -> Result<(), TestError<Vec<Op>>> {
    let strategy = operations(config.max_ops);
    let mut runner = config.runner();
    let mut drive = |handle: &tokio::runtime::Handle| {
        runner.run(&strategy, |ops| handle.block_on(run_case(store, &ops)).map_err(TestCaseError::fail))
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            assert!(
                handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread,
                "run_model needs a multi-threaded tokio runtime (#[tokio::test(flavor = \"multi_thread\")])"
            );
            tokio::task::block_in_place(|| drive(&handle))
        }
        Err(_) => {
            let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("cannot start a tokio runtime: {e}"));
            drive(rt.handle())
        }
    }
}

/// The conformance property: [`run_model`] with [`ModelConfig::from_env`] passes.
///
/// # Panics
///
/// With the shrunk failing sequence and the store's divergence from the model.
pub async fn model_lifetimes(store: DynStore) {
    let config = ModelConfig::from_env();
    match run_model(&store, &config) {
        Ok(()) => {}
        Err(TestError::Fail(reason, ops)) => panic!(
            "the store diverged from the model (seed {}, {} cases of up to {} ops); shrunk case:\n{}\n{}",
            config.seed,
            config.cases,
            config.max_ops,
            ops.iter().enumerate().map(|(i, op)| format!("  #{i} {op:?}")).collect::<Vec<_>>().join("\n"),
            reason.message()
        ),
        Err(TestError::Abort(reason)) => panic!("the model-based test was aborted: {}", reason.message()),
    }
}
