//! A TCP proxy that resets connections at random: each chunk it relays (a read from
//! one side, written to the other) is, with a seeded probability, the last one of its
//! connection. A chunk from the client is then cut half-way (the server sees part of a
//! request, or none of it); a chunk from the server is dropped (the server ran the
//! command, the client never hears of it). Both sides are then closed with a reset
//! (`SO_LINGER` 0). The proxy counts its resets, so a test can compare what the user
//! saw with how many faults there were.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxies of one test share: the seeded dice and the counts.
struct Dice {
    rng: Mutex<StdRng>,
    /// Chance of a reset per relayed chunk, in millionths (0: relay faithfully).
    per_million: AtomicUsize,
    resets: AtomicUsize,
    chunks: AtomicUsize,
    /// New connections are refused (closed at once) while set.
    refuse: AtomicBool,
    refused: AtomicUsize,
}

impl Dice {
    /// Whether this chunk ends its connection (counted).
    fn roll(&self) -> bool {
        self.chunks.fetch_add(1, Ordering::Relaxed);
        let p = self.per_million.load(Ordering::Relaxed);
        if p == 0 {
            return false;
        }
        let hit = self.rng.lock().unwrap_or_else(|e| e.into_inner()).random_range(0..1_000_000) < p;
        if hit {
            self.resets.fetch_add(1, Ordering::SeqCst);
        }
        hit
    }

    fn cut_at(&self, n: usize) -> usize {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).random_range(0..n.max(1))
    }
}

/// A running proxy; dropping it stops accepting and ends every relay.
pub struct ResetProxy {
    addr: SocketAddr,
    dice: Arc<Dice>,
    stop: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for ResetProxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.accept.abort();
    }
}

impl ResetProxy {
    /// A proxy in front of `upstream` that relays faithfully until
    /// [`ResetProxy::reset_per_million`] says otherwise; its dice are seeded with `seed`.
    pub async fn start(upstream: SocketAddr, seed: u64) -> ResetProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the reset proxy");
        let addr = listener.local_addr().expect("reset proxy address");
        let dice = Arc::new(Dice {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            per_million: AtomicUsize::new(0),
            resets: AtomicUsize::new(0),
            chunks: AtomicUsize::new(0),
            refuse: AtomicBool::new(false),
            refused: AtomicUsize::new(0),
        });
        let (stop, stopped) = watch::channel(false);
        let shared = dice.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                if shared.refuse.load(Ordering::SeqCst) {
                    let _ = client.set_zero_linger();
                    drop(client);
                    shared.refused.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                let (dice, stopped) = (shared.clone(), stopped.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        relay(client, server, dice, stopped).await;
                    }
                });
            }
        });
        ResetProxy { addr, dice, stop, accept }
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the chance of a reset per relayed chunk, in millionths.
    pub fn reset_per_million(&self, p: usize) {
        self.dice.per_million.store(p, Ordering::SeqCst);
    }

    /// Refuses new connections (a server that is down) or accepts them again.
    pub fn refuse(&self, refuse: bool) {
        self.dice.refuse.store(refuse, Ordering::SeqCst);
    }

    /// Connections refused so far.
    pub fn refused(&self) -> usize {
        self.dice.refused.load(Ordering::SeqCst)
    }

    /// Connections reset so far.
    pub fn resets(&self) -> usize {
        self.dice.resets.load(Ordering::SeqCst)
    }

    /// Chunks relayed (or cut) so far.
    pub fn chunks(&self) -> usize {
        self.dice.chunks.load(Ordering::Relaxed)
    }
}

async fn relay(client: TcpStream, server: TcpStream, dice: Arc<Dice>, mut stopped: watch::Receiver<bool>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let requests = pipe(client_read, server_write, &dice, true);
    let replies = pipe(server_read, client_write, &dice, false);
    // The first pipe to end (a reset, or a side closing) ends the connection.
    let ends = tokio::select! {
        ends = requests => ends,
        ends = replies => ends,
        _ = stopped.wait_for(|s| *s) => None,
    };
    if let Some((a, b)) = ends {
        drop((a, b));
    }
}

/// Copies `from` to `to` until a side closes or the dice say reset. On a reset, a
/// request is cut half-way and a reply dropped; both streams are then closed with a
/// reset. Returns the halves to drop (dropping them closes the sockets).
async fn pipe(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    dice: &Dice,
    request: bool,
) -> Option<(OwnedReadHalf, OwnedWriteHalf)> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return None;
            }
            Ok(n) => n,
        };
        if dice.roll() {
            if request {
                let cut = dice.cut_at(n);
                let _ = to.write_all(&buf[..cut]).await;
            }
            let _ = from.as_ref().set_zero_linger();
            let _ = to.as_ref().set_zero_linger();
            return Some((from, to));
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return None;
        }
    }
}
