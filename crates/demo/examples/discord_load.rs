//! A load generator for the demo's Discord endpoint: signed interactions fired by
//! concurrent clients over HTTP at a running `bot-sessions-demo discord`, started with
//! the test public key (RFC 8032 test 1):
//!
//! ```text
//! cargo build --release -p bot-sessions-demo --examples
//! target/release/bot-sessions-demo discord --listen 127.0.0.1:8080 --store sqlite:///tmp/load.db \
//!     --public-key d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a &
//! target/release/examples/discord_load --mode count --clients 32 --seconds 10
//! target/release/examples/discord_load --mode click --clients 32 --seconds 10
//! ```
//!
//! - `count`: every client sends `/count` as its own user (`--one-user`: all as one
//!   user, every request a compare-and-set on the same key), one request at a time;
//!   each client checks that its counts go up by one.
//! - `click`: every client opens a `/menu` as its own user, then clicks +1 on it, one
//!   click at a time; each client checks that the value goes up by one.
//!
//! Prints requests per second and the p50 / p99 / max latency of the timed requests.

#[path = "../tests/discord_support/payloads.rs"]
mod payloads;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bot_sessions::discord::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use bot_sessions::testing::discord::TestKey;
use clap::{Parser, ValueEnum};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// `/count`.
    Count,
    /// A +1 click on a menu.
    Click,
}

/// Fires signed interactions at the demo's Discord endpoint.
#[derive(Debug, Parser)]
struct Args {
    /// The endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8080/interactions")]
    url: String,
    /// What to send.
    #[arg(long, value_enum, default_value = "count")]
    mode: Mode,
    /// Concurrent clients (each one request at a time).
    #[arg(long, default_value_t = 32)]
    clients: u64,
    /// How long to fire, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// `count` mode: every client counts as the same user.
    #[arg(long)]
    one_user: bool,
}

struct Client {
    http: reqwest::Client,
    url: String,
    key: TestKey,
}

impl Client {
    async fn send(&self, body: &Value) -> anyhow::Result<Value> {
        let bytes = serde_json::to_vec(body)?;
        let (signature, timestamp) = self.key.sign(&bytes);
        let response = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(TIMESTAMP_HEADER, timestamp)
            .body(bytes)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "HTTP {status}: {text}");
        Ok(serde_json::from_str(&text)?)
    }
}

/// The number after `prefix` in a response's text.
fn number(response: &Value, prefix: &str) -> anyhow::Result<i64> {
    let text = payloads::content(response);
    let n = text.strip_prefix(prefix).ok_or_else(|| anyhow::anyhow!("unexpected answer: {response}"))?;
    Ok(n.parse()?)
}

/// One client: fires until `until`; the latencies of its requests.
async fn run(client: Arc<Client>, args: Arc<Args>, i: u64, until: Instant) -> anyhow::Result<Vec<Duration>> {
    let user = if args.one_user { payloads::OWNER } else { payloads::OWNER + i };
    let channel = payloads::CHANNEL;
    let mut latencies = Vec::new();
    match args.mode {
        Mode::Count => {
            let mut last = None;
            while Instant::now() < until {
                let body = payloads::command("count", user, channel, &format!("load-{i}-{}", latencies.len()));
                let start = Instant::now();
                let response = client.send(&body).await?;
                latencies.push(start.elapsed());
                let n = number(&response, "count: ")?;
                if !args.one_user
                    && let Some(last) = last
                {
                    anyhow::ensure!(n == last + 1, "client {i}: count {n} after {last}");
                }
                last = Some(n);
            }
        }
        Mode::Click => {
            let menu = client.send(&payloads::command("menu", user, channel, &format!("menu-{i}"))).await?;
            let mut inc =
                payloads::custom_ids(&menu).get(1).cloned().ok_or_else(|| anyhow::anyhow!("no +1: {menu}"))?;
            let mut value = number(&menu, "value: ")?;
            let message = 1_000_000 + i;
            while Instant::now() < until {
                let body = payloads::click(&inc, user, channel, message, &format!("click-{i}-{}", latencies.len()));
                let start = Instant::now();
                let response = client.send(&body).await?;
                latencies.push(start.elapsed());
                let n = number(&response, "value: ")?;
                anyhow::ensure!(n == value + 1, "client {i}: value {n} after {value}");
                value = n;
                if let Some(id) = payloads::custom_ids(&response).get(1) {
                    inc.clone_from(id);
                }
            }
        }
    }
    Ok(latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let client = Arc::new(Client {
        http: reqwest::Client::builder().pool_max_idle_per_host(args.clients as usize).build()?,
        url: args.url.clone(),
        key: TestKey::rfc8032(),
    });
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..args.clients).map(|i| tokio::spawn(run(client.clone(), args.clone(), i, until))).collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{:?}{} x {} clients, {:.1} s: {} requests, {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.mode,
        if args.one_user { " (one user)" } else { "" },
        args.clients,
        elapsed.as_secs_f64(),
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    Ok(())
}
