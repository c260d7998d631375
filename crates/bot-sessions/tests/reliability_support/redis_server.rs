//! A `redis-server` of the test's own on a free loopback port, with an append-only
//! file synced on every write (`appendonly yes`, `appendfsync always`), that the test
//! can crash (SIGKILL) and start again on the same port and directory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or crashed) server.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server in a fresh directory and waits until it answers.
    pub fn start() -> RedisServer {
        let mut server = RedisServer { port: super::free_port(), dir: super::temp_dir("redis"), child: None };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// SIGKILL: a crash, not a shutdown.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL redis-server");
            c.wait().expect("reap redis-server");
        }
    }

    /// Starts the server (again) on the same port and directory, so it loads its
    /// append-only file, and waits until it answers PING (it refuses commands while
    /// loading).
    pub fn restart(&mut self) {
        self.crash();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(&self.dir)
            .args(["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.ping() {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server on port {} did not come up", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else { return false };
        let Ok(mut con) = client.get_connection_with_timeout(Duration::from_secs(1)) else { return false };
        redis::cmd("PING").query::<String>(&mut con).is_ok_and(|r| r == "PONG")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
