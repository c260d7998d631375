//! Dedicated load threads: point loads that may wait, off the async workers, at a
//! fraction of what `spawn_blocking` costs per call; and the connections of the loads
//! that cannot wait, run in the caller's thread ([`QuickReads`]).
//!
//! A load is a few microseconds of SQLite work, but it can block (opening the file,
//! waiting out a lock with the busy timeout), so it must not run on an async worker.
//! Handing each one to tokio's blocking pool cost more than the load itself (the pool
//! grows a thread per concurrent caller, and every call wakes one); a few long-lived
//! threads, each with its own read-only connection, that take jobs from one shared
//! queue keep busy under load without a wake-up per call. Any idle thread takes the
//! next job, so one load stuck on a lock does not hold up the others while another
//! thread is free.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::BACKEND;
use crate::StoreError;

/// Work for a load thread, run on its connection.
type Job = Box<dyn FnOnce(&Connection) + Send>;

/// The load threads of one store.
#[derive(Debug)]
pub(super) struct LoadThreads {
    tx: Option<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

/// Stops the load threads: drop the sender, the threads finish the queued jobs, close
/// their connections and end. Blocking; run it where blocking is fine.
#[derive(Debug)]
pub(super) struct Shutdown {
    tx: Option<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Shutdown {
    pub(super) fn run(mut self) {
        drop(self.tx.take());
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("an sqlite load thread panicked");
            }
        }
    }
}

impl LoadThreads {
    /// Starts one thread per connection.
    pub(super) fn spawn(connections: Vec<Connection>) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::with_capacity(connections.len());
        for conn in connections {
            let rx = rx.clone();
            let thread = std::thread::Builder::new()
                .name("bot-sessions-sqlite-load".into())
                .spawn(move || run(&conn, &rx))
                .map_err(|e| StoreError::backend(BACKEND, None, false, e))?;
            threads.push(thread);
        }
        Ok(LoadThreads { tx: Some(tx), threads })
    }

    /// Takes what stopping the threads needs (`None` if taken before).
    pub(super) fn shutdown(&mut self) -> Option<Shutdown> {
        let tx = self.tx.take()?;
        Some(Shutdown { tx: Some(tx), threads: std::mem::take(&mut self.threads) })
    }

    /// Runs `f` on a load thread's connection and returns what it returned. `None`
    /// when no thread ran it (the store is closing, or `f` panicked).
    pub(super) async fn run<R: Send + 'static>(&self, f: impl FnOnce(&Connection) -> R + Send + 'static) -> Option<R> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // The caller may have gone; nothing to undo for a read.
            let _ = reply.send(f(conn));
        });
        self.tx.as_ref()?.send(job).ok()?;
        answer.await.ok()
    }
}

/// Read connections for point loads in the caller's thread, each with no busy
/// timeout: a load that would wait (the file locked by another process, a WAL being
/// recovered) gives up at once, and the caller hands it to the load threads, whose
/// connections wait. A load that finds every connection in use goes there too. This
/// spares the usual load two thread wake-ups, which cost far more than the load.
#[derive(Debug)]
pub(super) struct QuickReads {
    idle: Mutex<Vec<Connection>>,
}

impl QuickReads {
    pub(super) fn new(connections: Vec<Connection>) -> Self {
        QuickReads { idle: Mutex::new(connections) }
    }

    /// Runs `f` on an idle connection. `None` when none is idle or the file was busy:
    /// nothing was read, run it elsewhere.
    pub(super) fn try_run<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Option<rusqlite::Result<R>> {
        let conn = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
        let out = f(&conn);
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
        match out {
            Err(e) if super::writer::is_busy(&e) => None,
            other => Some(other),
        }
    }

    /// Takes the connections, to close them.
    pub(super) fn take(&self) -> Vec<Connection> {
        std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn run(conn: &Connection, rx: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // Whoever holds the lock waits for the next job; the others wait for the lock.
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = job else { break };
        // A panicking job drops its reply (the caller sees an error); the thread stays.
        if catch_unwind(AssertUnwindSafe(|| job(conn))).is_err() {
            tracing::error!("an sqlite load panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A busy file is no answer: the caller runs the read elsewhere, and the
    /// connection stays for the next one; with no idle connection, elsewhere too.
    #[test]
    fn a_busy_quick_read_is_handed_on_and_keeps_its_connection() {
        let quick = QuickReads::new(vec![Connection::open_in_memory().unwrap()]);
        let busy = || Err::<(), _>(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(5), None));
        assert!(quick.try_run(|_| busy()).is_none());
        let seven = quick.try_run(|c| c.query_row("SELECT 7", [], |r| r.get::<_, i64>(0)));
        assert_eq!(seven.unwrap().unwrap(), 7);
        let held = quick.take();
        assert_eq!(held.len(), 1);
        assert!(quick.try_run(|_| Ok(())).is_none(), "no idle connection");
    }
}
