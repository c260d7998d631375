//! A TCP proxy in front of the PostgreSQL server that the tests steer: hold the
//! requests (the server never sees them until released), hold the replies (the server
//! runs and commits them, the client does not hear), cut every connection (held bytes
//! are dropped), or refuse new connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mode {
    /// Bytes from the client wait in the proxy.
    pub hold_requests: bool,
    /// Bytes from the server wait in the proxy.
    pub hold_replies: bool,
    /// New connections are closed at once.
    pub refuse: bool,
    /// Bumped to cut every open connection.
    generation: u64,
}

/// A running proxy; dropping it stops accepting (open connections run on).
pub struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    live: Arc<AtomicUsize>,
    /// Connections accepted so far, refused ones included.
    accepted: Arc<AtomicUsize>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Proxy {
    /// Starts a proxy on a free loopback port in front of `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (mode, _) = watch::channel(Mode::default());
        let live = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (tx, counter, attempts) = (mode.clone(), live.clone(), accepted.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                attempts.fetch_add(1, Ordering::SeqCst);
                let rx = tx.subscribe();
                // Counted and tied to the current generation before anything awaits, so
                // a cut from now on closes it.
                let (refuse, generation) = {
                    let mode = tx.borrow();
                    (mode.refuse, mode.generation)
                };
                if refuse {
                    drop(client);
                    continue;
                }
                let live = Live::new(counter.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        relay(client, server, rx, generation, live).await;
                    }
                });
            }
        });
        Proxy { addr, mode, live, accepted, accept }
    }

    /// `postgres://postgres@PROXY/db?application_name=app`.
    pub fn url(&self, db: &str, app: &str) -> String {
        format!("postgres://postgres@{}/{db}?application_name={app}", self.addr)
    }

    /// Changes what the proxy does; held bytes move on once nothing holds them.
    pub fn set(&self, f: impl FnOnce(&mut Mode)) {
        self.mode.send_modify(f);
    }

    /// Closes every open connection, dropping the bytes held in them, and waits until
    /// they are all gone (refusing new ones meanwhile).
    pub async fn cut(&self) {
        let refused = self.mode.borrow().refuse;
        self.mode.send_modify(|m| {
            m.refuse = true;
            m.generation += 1;
        });
        super::wait_until("the proxy to close its connections", std::time::Duration::from_secs(60), || async {
            self.live() == 0
        })
        .await;
        self.mode.send_modify(|m| m.refuse = refused);
    }

    /// Connections accepted so far (connection attempts that reached the proxy).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections open through the proxy.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

/// One open connection, counted while it lives.
struct Live(Arc<AtomicUsize>);

impl Live {
    fn new(count: Arc<AtomicUsize>) -> Live {
        count.fetch_add(1, Ordering::SeqCst);
        Live(count)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn relay(client: TcpStream, server: TcpStream, mode: watch::Receiver<Mode>, generation: u64, _live: Live) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let requests = pipe(client_read, server_write, mode.clone(), |m| m.hold_requests);
    let replies = pipe(server_read, client_write, mode.clone(), |m| m.hold_replies);
    let mut cut = mode;
    let cut = async move {
        let _ = cut.wait_for(|m| m.generation != generation).await;
    };
    tokio::select! {
        _ = async { tokio::join!(requests, replies) } => {}
        _ = cut => {}
    }
}

/// Copies `from` to `to`, each chunk once `held` is false; at the end of `from`, shuts
/// `to` down. Write failures are ignored (the rest is read and dropped), so the far
/// side's end is always seen.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
    held: fn(&Mode) -> bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut writable = true;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if mode.wait_for(|m| !held(m)).await.is_err() {
            break;
        }
        if writable && to.write_all(&buf[..n]).await.is_err() {
            writable = false;
        }
    }
    let _ = to.shutdown().await;
}
