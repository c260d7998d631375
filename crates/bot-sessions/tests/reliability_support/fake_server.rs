//! A fake server on a free loopback port that relays to a real server, or accepts
//! connections and never answers, or answers garbage, switchable while connections are
//! open. It runs on a thread and runtime of its own, so the test's runtime counts only
//! the store's tasks; it counts the connections it accepted and those still open.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

/// What the server does with what a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Relays both ways to the real server (a connection accepted in another mode has
    /// no real server behind it, and stays silent).
    Forward,
    /// Reads everything, never writes (the real server's answers are swallowed too).
    Silent,
    /// Answers each read with 1 to 512 random bytes.
    Garbage,
    /// Answers the first read with an HTTP error and closes: a server of the wrong
    /// protocol.
    WrongProtocol,
}

/// The three ways of not being a working server.
pub const FAULTS: [Behaviour; 3] = [Behaviour::Silent, Behaviour::Garbage, Behaviour::WrongProtocol];

/// A running fake server; dropping it closes every connection.
pub struct FakeServer {
    addr: SocketAddr,
    mode: watch::Sender<Behaviour>,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    /// Starts a server behaving as `behaviour`, relaying to `upstream` in
    /// [`Behaviour::Forward`].
    pub fn start(upstream: Option<SocketAddr>, behaviour: Behaviour) -> FakeServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake server");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("fake server address");
        let (mode, _) = watch::channel(behaviour);
        let (accepted, open) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (stop, stopped) = oneshot::channel();
        let (tx, counts) = (mode.clone(), (accepted.clone(), open.clone()));
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("fake server runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                let accept = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else { continue };
                        counts.0.fetch_add(1, Ordering::SeqCst);
                        let live = Live::new(counts.1.clone());
                        tokio::spawn(serve(client, upstream, tx.subscribe(), live));
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime drops every connection task, closing its sockets.
        });
        FakeServer { addr, mode, accepted, open, stop: Some(stop), thread: Some(thread) }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes what the server does, for open connections too.
    pub fn set(&self, behaviour: Behaviour) {
        self.mode.send_replace(behaviour);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections open now (closed by neither side).
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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

enum Event {
    Client(usize),
    Server(usize),
}

/// Serves one connection until either side closes it (or the wrong-protocol answer
/// was sent).
async fn serve(client: TcpStream, upstream: Option<SocketAddr>, mode: watch::Receiver<Behaviour>, _live: Live) {
    let (mut client_read, mut client_write) = client.into_split();
    let server = match (*mode.borrow(), upstream) {
        (Behaviour::Forward, Some(addr)) => Some(addr),
        _ => None,
    };
    let server = match server {
        Some(addr) => match TcpStream::connect(addr).await {
            Ok(s) => Some(s.into_split()),
            Err(_) => return,
        },
        None => None,
    };
    let (mut server_read, mut server_write) = match server {
        Some((r, w)) => (Some(r), Some(w)),
        None => (None, None),
    };
    let (mut from_client, mut from_server) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    loop {
        let event = tokio::select! {
            r = client_read.read(&mut from_client) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => Event::Client(n),
            },
            r = async {
                match server_read.as_mut() {
                    Some(s) => s.read(&mut from_server).await,
                    None => std::future::pending().await,
                }
            } => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => Event::Server(n),
            },
        };
        let behaviour = *mode.borrow();
        let written = match (event, behaviour) {
            (Event::Client(n), Behaviour::Forward) => match server_write.as_mut() {
                Some(w) => w.write_all(&from_client[..n]).await,
                None => Ok(()),
            },
            (Event::Server(n), Behaviour::Forward) => client_write.write_all(&from_server[..n]).await,
            (Event::Client(_), Behaviour::Garbage) => {
                let garbage: Vec<u8> = {
                    let mut rng = rand::rng();
                    let len = rng.random_range(1..=512);
                    (0..len).map(|_| rng.random()).collect()
                };
                client_write.write_all(&garbage).await
            }
            (Event::Client(_), Behaviour::WrongProtocol) => {
                let reply = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request";
                let _ = client_write.write_all(reply).await;
                return;
            }
            // Silent, or the real server's answer while faulting: swallowed.
            (Event::Client(_) | Event::Server(_), _) => Ok(()),
        };
        if written.is_err() {
            return;
        }
    }
}

/// The `host:port` of a URL (`scheme://[user[:password]@]host:port/...`) as a socket
/// address.
pub fn upstream_of(url: &str) -> SocketAddr {
    let (_, rest) = url.split_once("://").expect("a URL with a scheme");
    let authority = rest.split(['/', '?']).next().expect("an authority");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host_port.to_socket_addrs().expect("resolve the server").next().expect("an address")
}

/// `url` with its `host:port` replaced by `addr`.
pub fn url_via(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let user = authority.rsplit_once('@').map(|(u, _)| format!("{u}@")).unwrap_or_default();
    format!("{scheme}://{user}{addr}{tail}")
}
