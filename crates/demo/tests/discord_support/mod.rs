//! Shared by the Discord tests: the endpoint over HTTP (in process, or the real
//! binary on a free port), requests signed with the library's test key, and the
//! payloads of [`payloads`].
#![allow(dead_code)]

pub mod payloads;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use bot_sessions::DynStore;
use bot_sessions::discord::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use bot_sessions::testing::discord::TestKey;
use bot_sessions_demo::bot::{Bot, BotConfig};
use bot_sessions_demo::discord::{self, Discord};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;

/// A database file no other test uses.
pub fn fresh_db() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("demo-discord-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("discord-{}-{:016x}.db", std::process::id(), rand::random::<u64>()))
}

/// A client of one endpoint, signing with the test key.
#[derive(Clone)]
pub struct Client {
    pub url: String,
    pub key: TestKey,
    http: reqwest::Client,
}

impl Client {
    pub fn new(url: String) -> Self {
        Client { url, key: TestKey::rfc8032(), http: reqwest::Client::new() }
    }

    /// POSTs `body` with these headers; the status and the body as text.
    pub async fn post_raw(&self, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, String) {
        let mut req = self.http.post(&self.url).header("content-type", "application/json").body(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let response = req.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// POSTs `body` signed; the status and the body as text.
    pub async fn post(&self, body: &Value) -> (u16, String) {
        let bytes = serde_json::to_vec(body).unwrap();
        let (signature, timestamp) = self.key.sign(&bytes);
        self.post_raw(bytes, &[(SIGNATURE_HEADER, &signature), (TIMESTAMP_HEADER, &timestamp)]).await
    }

    /// POSTs `body` signed, asserts 200; the JSON response.
    pub async fn send(&self, body: &Value) -> Value {
        let (status, text) = self.post(body).await;
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }
}

/// The bot's endpoint served in this process on a free port.
pub struct InProcess {
    pub client: Client,
    pub bot: Arc<Bot>,
    pub discord: Discord,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl InProcess {
    /// Serves a [`Bot`] on `store` with `config`, calling Discord's REST API at `api_url`.
    pub async fn start(store: DynStore, config: BotConfig, api_url: &str) -> Self {
        let bot = Arc::new(Bot::new(store, config.key(discord::KEY)).await.unwrap());
        let rest = discord::rest(api_url, None).unwrap();
        let on_discord = Discord::new(bot.clone(), TestKey::rfc8032().public_key(), rest).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/interactions", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel();
        let server = on_discord.clone();
        let served = tokio::spawn(async move {
            server
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
        });
        InProcess { client: Client::new(url), bot, discord: on_discord, stop: Some(stop), served }
    }

    /// Stops serving (open menus stay in the store).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.served).await.unwrap().unwrap();
    }
}

/// The real `bot-sessions-demo discord` on a free port.
pub struct Binary {
    pub client: Client,
    child: tokio::process::Child,
}

impl Binary {
    /// Starts `bot-sessions-demo discord --listen 127.0.0.1:0 --public-key <test key>`
    /// with `args`, and waits until it listens.
    pub async fn start(args: &[&str]) -> Self {
        let public = TestKey::rfc8032().public_hex();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"))
            .args(["discord", "--listen", "127.0.0.1:0", "--public-key", &public])
            .args(args)
            .env_remove(discord::TOKEN_VAR)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let mut tx = Some(tx);
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("demo: {line}");
                if let Some(rest) = line.strip_prefix("listening on ")
                    && let Some(tx) = tx.take()
                {
                    let url = rest.split(';').next().unwrap().trim().to_owned();
                    let _ = tx.send(url);
                }
            }
        });
        let url = tokio::time::timeout(std::time::Duration::from_secs(60), rx)
            .await
            .expect("the binary did not start listening within 60 s")
            .expect("the binary exited before listening");
        Binary { client: Client::new(url), child }
    }

    /// Kills the process (SIGKILL: nothing is flushed or detached on the way out).
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}
