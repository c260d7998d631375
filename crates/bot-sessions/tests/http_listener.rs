//! The bounded listener over real sockets: stalled headers and bodies are cut off,
//! connections past the cap wait, oversized bodies get 413.
#![cfg(feature = "listener")]

use std::net::SocketAddr;
use std::time::Duration;

use bot_sessions::http::{Limits, Listener, ListenerError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// A generous bound for "closed within the bound" (the bounds below are 300 ms).
const WITHIN: Duration = Duration::from_secs(5);

fn app() -> axum::Router {
    axum::Router::new()
        .route("/hook", axum::routing::post(|body: axum::body::Bytes| async move { format!("{}", body.len()) }))
}

/// Serves [`app`] within `limits`; the address and the stop switch.
async fn serve(limits: Limits) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let listener = Listener::new(limits).unwrap();
    let served = tokio::spawn(async move {
        listener
            .serve(tcp, app(), async {
                let _ = stopped.await;
            })
            .await
    });
    (addr, stop, served)
}

/// Reads until the server closes; what it sent (an error on a reset counts as closed).
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn post(body: &str) -> String {
    format!("POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

fn short() -> Limits {
    Limits::default().header_timeout(Duration::from_millis(300)).body_timeout(Duration::from_millis(300))
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed_within_the_bound() {
    let (addr, _stop, _served) = serve(short()).await;
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Le").await.unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    tokio::time::timeout(WITHIN, read_to_close(&mut half)).await.expect("half headers: still open");
    tokio::time::timeout(WITHIN, read_to_close(&mut silent)).await.expect("no headers: still open");
    // Served as usual otherwise.
    let mut good = TcpStream::connect(addr).await.unwrap();
    good.write_all(post("hello").as_bytes()).await.unwrap();
    let answer = tokio::time::timeout(WITHIN, read_to_close(&mut good)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("\r\n\r\n5"), "{answer}");
}

#[tokio::test]
async fn a_body_that_stalls_gets_408_and_the_connection_closes() {
    let (addr, _stop, _served) = serve(short()).await;
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n").await.unwrap();
    stalled.write_all(&[b'x'; 50_000]).await.unwrap();
    let answer = tokio::time::timeout(WITHIN, read_to_close(&mut stalled)).await.expect("still open");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn an_oversized_body_gets_413() {
    let (addr, _stop, _served) = serve(short().body_limit(1000)).await;
    // Declared too large: refused before any of it is read.
    let mut declared = TcpStream::connect(addr).await.unwrap();
    declared.write_all(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n").await.unwrap();
    let answer = tokio::time::timeout(WITHIN, read_to_close(&mut declared)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Chunked, no length: read up to the limit, then refused.
    let mut chunked = TcpStream::connect(addr).await.unwrap();
    let chunk = "x".repeat(600);
    let request = format!(
        "POST /hook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    chunked.write_all(request.as_bytes()).await.unwrap();
    let answer = tokio::time::timeout(WITHIN, read_to_close(&mut chunked)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // At the limit: fine.
    let mut fits = TcpStream::connect(addr).await.unwrap();
    fits.write_all(post(&"y".repeat(1000)).as_bytes()).await.unwrap();
    let answer = tokio::time::timeout(WITHIN, read_to_close(&mut fits)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("1000"), "{answer}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_one_to_close() {
    let limits = Limits::default().max_connections(2).header_timeout(Duration::from_secs(60));
    let (addr, _stop, _served) = serve(limits).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"POST /hook HTTP/1.1\r\n").await.unwrap();
        held.push(c);
    }
    // The third is in the kernel's queue: its request is not answered...
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(post("abc").as_bytes()).await.unwrap();
    let mut buf = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "a third connection was served past a cap of 2");
    // ...until one of the first two closes.
    drop(held.pop());
    let answer = tokio::time::timeout(WITHIN, read_to_close(&mut third)).await.expect("still waiting");
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("3"), "{answer}");
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns() {
    let (addr, stop, served) = serve(short()).await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n1").await.unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    stop.send(()).unwrap();
    tokio::time::timeout(WITHIN, served).await.expect("serve did not return").unwrap().unwrap();
}

#[test]
fn limits_out_of_range_are_config_errors() {
    let cases = [
        ("header timeout", Limits::default().header_timeout(Duration::ZERO)),
        ("header timeout", Limits::default().header_timeout(Duration::from_secs(3600))),
        ("body timeout", Limits::default().body_timeout(Duration::ZERO)),
        ("connection cap", Limits::default().max_connections(0)),
        ("connection cap", Limits::default().max_connections(usize::MAX)),
        ("body limit", Limits::default().body_limit(0)),
        ("body limit", Limits::default().body_limit(1 << 30)),
    ];
    for (what, limits) in cases {
        match Listener::new(limits) {
            Err(ListenerError::Config { what: named, .. }) => assert_eq!(named, what),
            other => panic!("{what}: {other:?}"),
        }
    }
    assert!(Listener::new(Limits::default()).is_ok());
}
