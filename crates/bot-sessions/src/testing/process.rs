//! Multi-process tests: a test re-runs its own test binary, filtered to itself, as a
//! child with a role in an environment variable.
//!
//! ```no_run
//! # use bot_sessions::testing::process;
//! #[tokio::test]
//! async fn two_processes() {
//!     if let Some(role) = process::child_role() {
//!         // child: do the work, exit
//!         return;
//!     }
//!     let children: Vec<_> = (0..2)
//!         .map(|i| process::spawn_child("two_processes", &i.to_string(), &[]).unwrap())
//!         .collect();
//!     // wait for them, then check the totals
//!     # drop(children);
//! }
//! # fn main() {}
//! ```

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::Counter;
use crate::{Namespace, Scope, SessionError, SessionKey, Sessions};

/// The variable that carries a child's role.
pub const CHILD_ENV: &str = "BOT_SESSIONS_TEST_CHILD";

/// This process's role if it is a child started by [`spawn_child`].
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Starts the current test binary as a child that runs only `test_name` (exact match),
/// with `role` in [`CHILD_ENV`] and `env` added. Its stdout is piped (a child can report
/// acknowledged writes there); stderr is inherited.
///
/// # Errors
///
/// When the binary cannot be found or started.
pub fn spawn_child(test_name: &str, role: &str, env: &[(&str, &str)]) -> std::io::Result<Child> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, role)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn()
}

/// What follows `tag` in a line a child printed on its stdout, if the line carries it.
///
/// The test harness in the child prints `test <name> ... ` *without* a newline before
/// the test body runs, so the child's first line arrives glued to it: the tag is looked
/// for anywhere in the line, not only at its start (a parser that only took lines
/// starting with the tag silently dropped the child's first report). Use tags libtest
/// never prints (upper case, like `ACK `): its own lines are lower case.
///
/// ```
/// use bot_sessions::testing::process::tagged;
///
/// assert_eq!(tagged("test t ... ACK 0 1", "ACK "), Some("0 1"));
/// assert_eq!(tagged("ACK 2 7", "ACK "), Some("2 7"));
/// assert_eq!(tagged("running 1 test", "ACK "), None);
/// ```
pub fn tagged<'a>(line: &'a str, tag: &str) -> Option<&'a str> {
    line.find(tag).map(|at| &line[at + tag.len()..])
}

/// Makes `parties` processes start their workload together, so they really overlap:
/// each checks in on a counter key in `ns` and waits (polling, up to `deadline`) until
/// all have.
///
/// # Errors
///
/// Store errors, or [`SessionError::Config`] when the others did not arrive in time.
pub async fn barrier(
    sessions: &Sessions<Counter>,
    ns: &Namespace,
    parties: u64,
    deadline: Duration,
) -> Result<(), SessionError> {
    let key = SessionKey::new(ns.clone(), Scope::Custom { id: "barrier".into(), user: None });
    sessions
        .update(&key, |c| {
            c.n += 1;
            Ok::<_, SessionError>(())
        })
        .await?;
    let until = tokio::time::Instant::now() + deadline;
    while sessions.get(&key).await?.map_or(0, |c| c.n) < parties {
        if tokio::time::Instant::now() >= until {
            return Err(SessionError::Config(format!("barrier: the other processes did not arrive in {deadline:?}")));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}
