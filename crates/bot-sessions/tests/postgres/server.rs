//! A PostgreSQL server of the test's own: `initdb` and `postgres` on a free loopback
//! port (as the `postgres` user when run as root, since PostgreSQL refuses root).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::redis_postgres_common::{run, wait_until};

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// A PostgreSQL server binary: from `PATH`, else from the newest
/// `/usr/lib/postgresql/*/bin` (Debian keeps them there).
fn pg_binary(name: &str) -> PathBuf {
    let in_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
        .unwrap_or_default();
    if let Some(found) = in_path {
        return found;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok()).map(|e| e.path().join("bin").join(name)).filter(|f| f.is_file()).collect()
        })
        .unwrap_or_default();
    versions
        .sort_by_key(|p| p.components().nth(4).and_then(|c| c.as_os_str().to_str()?.parse::<u32>().ok()).unwrap_or(0));
    versions.pop().unwrap_or_else(|| panic!("`{name}` is not installed (not in PATH nor /usr/lib/postgresql/*/bin)"))
}

/// A command run as the `postgres` user when we are root.
fn as_postgres(program: &str) -> Command {
    let program = pg_binary(program);
    if running_as_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A PostgreSQL server of the test's own, removed when dropped.
pub struct Server {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// Extra `-c name=value` settings, applied at every start.
    settings: Vec<String>,
}

impl Server {
    pub fn init(port: u16) -> Server {
        let dir = std::env::temp_dir().join(format!("bot-sessions-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        run(as_postgres("initdb").arg("-D").arg(&dir).args(["-A", "trust", "-U", "postgres", "--no-sync"]));
        Server { port, dir, child: None, settings: Vec::new() }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A server setting (`ssl`, `ssl_cert_file`, ...) for the next starts.
    pub fn set(&mut self, name: &str, value: &str) {
        self.settings.retain(|s| !s.starts_with(&format!("{name}=")));
        self.settings.push(format!("{name}={value}"));
    }

    /// Writes `name` into the data directory, owned by the server's user and readable
    /// by it only (PostgreSQL refuses a private key others can read).
    pub fn install(&self, name: &str, contents: &[u8]) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join(name);
        std::fs::write(&path, contents).expect("write into the data directory");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
        if running_as_root() {
            let owner = std::fs::metadata(&self.dir).expect("data directory");
            std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).expect("chown to postgres");
        }
    }

    pub fn start(&mut self) {
        let child = as_postgres("postgres")
            .arg("-D")
            .arg(&self.dir)
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="])
            .args(["-c", "fsync=on", "-c", "synchronous_commit=on"])
            .args(self.settings.iter().flat_map(|s| ["-c", s.as_str()]))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres must be installed for the tests that start their own server");
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub async fn wait_ready(&self) {
        let url = self.url();
        wait_until("postgres to accept connections", Duration::from_secs(60), || {
            let url = url.clone();
            async move {
                match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                    Ok((client, conn)) => {
                        tokio::spawn(conn);
                        client.simple_query("SELECT 1").await.is_ok()
                    }
                    Err(_) => false,
                }
            }
        })
        .await;
    }

    /// SIGQUIT: PostgreSQL's immediate shutdown, which skips the checkpoint and leaves
    /// crash recovery to the next start, like a crash.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            run(Command::new("kill").args(["-QUIT", &c.id().to_string()]));
            c.wait().expect("reap postgres");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        remove_dir(&self.dir);
    }
}

fn remove_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
