//! Redis Cluster beside one Redis server, same update workload (issue 12), one run,
//! 64 concurrent tasks: `Sessions::update` (load, change one field, save with the
//! compare-and-set script) on
//!
//! - one `redis-server` this binary starts on a free loopback port, and
//! - a 3-master Redis Cluster (`--cluster-enabled yes`, no replicas) it starts the same
//!   way, the store in its cluster layout (`cluster=true`).
//!
//! Both servers run with the same settings (no persistence) on the same machine, so on a
//! 2-core machine the cluster's three masters share the cores the one server has: this
//! measures what the cluster client and layout cost, not what more machines would add.
//! Needs `redis-server` and `redis-cli` on the PATH.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bot_sessions::store::redis::RedisStore;
use bot_sessions::{DynStore, Scope, SessionError, SessionKey, Sessions};
use bot_sessions_bench::Bench;

const TASKS: usize = 64;
const OPS: usize = 400;
const ROUNDS: usize = 7;
/// Distinct keys updated, each by user (so spread over the cluster's shards).
const KEYS: i64 = 1_024;

/// `TASKS` tasks x `OPS` updates through `Sessions::update`; the rate in updates/s.
async fn round(sessions: &Sessions<Bench>, round: usize) -> anyhow::Result<f64> {
    let start = std::time::Instant::now();
    let handles: Vec<_> = (0..TASKS)
        .map(|t| {
            let sessions = sessions.clone();
            tokio::spawn(async move {
                for i in 0..OPS {
                    let user = ((t * OPS + i + round) as i64 * 7_919) % KEYS;
                    let key = SessionKey::new(sessions.namespace().clone(), Scope::ChatUser { chat: 1, user });
                    sessions
                        .update(&key, |b| {
                            b.count += 1;
                            Ok::<_, SessionError>(())
                        })
                        .await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for h in handles {
        h.await??;
    }
    Ok((TASKS * OPS) as f64 / start.elapsed().as_secs_f64())
}

fn free_port() -> u16 {
    loop {
        let p: u16 = 20_000 + (std::process::id() as u16 ^ rand_u16()) % 10_000;
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(p) && free(p + 10_000) {
            return p;
        }
    }
}

fn rand_u16() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u16
}

/// The servers this run started; killed at the end.
struct Servers {
    children: Vec<Child>,
    dir: std::path::PathBuf,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Servers {
    fn start(&mut self, port: u16, cluster: bool) -> anyhow::Result<()> {
        let dir = self.dir.join(port.to_string());
        std::fs::create_dir_all(&dir)?;
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null());
        if cluster {
            cmd.args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]);
        }
        self.children.push(cmd.spawn()?);
        wait(|| {
            Command::new("redis-cli")
                .args(["-p", &port.to_string(), "ping"])
                .output()
                .is_ok_and(|o| o.stdout.starts_with(b"PONG"))
        })
    }
}

fn wait(ready: impl Fn() -> bool) -> anyhow::Result<()> {
    for _ in 0..300 {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::bail!("a server did not come up")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("bench-redis-cluster-{}", std::process::id()));
    let mut servers = Servers { children: Vec::new(), dir };
    let single = free_port();
    servers.start(single, false)?;
    let masters: Vec<u16> = (0..3).map(|_| free_port()).collect();
    for &p in &masters {
        servers.start(p, true)?;
    }
    let nodes: Vec<String> = masters.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let created = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(created.success(), "redis-cli --cluster create failed");
    wait(|| {
        masters.iter().all(|p| {
            Command::new("redis-cli")
                .args(["-p", &p.to_string(), "cluster", "info"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
        })
    })?;

    let one: DynStore = std::sync::Arc::new(RedisStore::connect(&format!("redis://127.0.0.1:{single}")).await?);
    let cluster: DynStore =
        std::sync::Arc::new(RedisStore::connect(&format!("redis://{}?cluster=true", nodes.join(","))).await?);
    let contenders = [
        ("one redis-server", Sessions::builder_with_initial(one, Bench::seeded).namespace("bench").build()?),
        ("3-master Redis Cluster", Sessions::builder_with_initial(cluster, Bench::seeded).namespace("bench").build()?),
    ];
    // Interleaved rounds, so drift of a busy machine hits both alike; the median counts.
    let mut rates = vec![Vec::new(); contenders.len()];
    for r in 0..ROUNDS {
        for (i, (_, sessions)) in contenders.iter().enumerate() {
            rates[i].push(round(sessions, r).await?);
        }
    }
    println!("\n## Redis Cluster vs one Redis server: Sessions::update (load, change one field, save)");
    println!("{TASKS} tasks x {OPS} updates over {KEYS} keys, median of {ROUNDS} interleaved rounds\n");
    println!("| store | updates/s | x one server |\n| --- | ---: | ---: |");
    let medians: Vec<f64> = rates
        .iter_mut()
        .map(|r| {
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        })
        .collect();
    for ((name, _), m) in contenders.iter().zip(&medians) {
        println!("| {name} | {m:.0} | {:.2} |", m / medians[0]);
    }
    drop(servers);
    Ok(())
}
