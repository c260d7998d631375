//! `bot-sessions-demo --metrics ADDR`: the real binary serves its session metrics in
//! the Prometheus text format, and a scrape shows exactly the operations it was driven
//! through.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;

/// Lines of a child's stream, as they come.
fn lines_of(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line that satisfies `want` (the bot is slow under load: no deadline but
/// the test runner's).
fn next_matching(rx: &Receiver<String>, want: impl Fn(&str) -> bool) -> String {
    loop {
        let line = rx.recv().expect("the bot ended early");
        if want(&line) {
            return line;
        }
    }
}

/// `GET /metrics` over plain HTTP/1.1.
fn scrape(addr: &str) -> String {
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(conn, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain"), "{head}");
    body.to_owned()
}

/// Samples by name and sorted labels.
type Samples = BTreeMap<(String, Vec<(String, String)>), f64>;

/// The samples of a Prometheus text body: `name` and its labels, sorted, to the value.
fn samples(body: &str) -> Samples {
    let mut out = BTreeMap::new();
    for line in body.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut labels: Vec<(String, String)> = labels
            .split(',')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect();
        labels.sort();
        out.insert((name.to_owned(), labels), value.parse().unwrap());
    }
    out
}

fn get(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut labels: Vec<(String, String)> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    labels.sort();
    samples.get(&(name.to_owned(), labels)).copied()
}

#[test]
fn metrics_are_served_in_the_prometheus_format() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"))
        .args(["console", "--store", "memory://", "--metrics", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let out = lines_of(child.stdout.take().unwrap());
    let err = lines_of(child.stderr.take().unwrap());
    let announced = next_matching(&err, |l| l.starts_with("metrics on http://"));
    let addr = announced.trim_start_matches("metrics on http://").trim_end_matches("/metrics").to_owned();

    stdin.write_all(b"/count\n/count\n2@-100: /count\n/menu\n").unwrap();
    stdin.flush().unwrap();
    assert!(next_matching(&out, |l| l.starts_with("bot -> ")).ends_with("count: 1"));
    assert!(next_matching(&out, |l| l.starts_with("bot -> ")).ends_with("count: 2"));
    assert!(next_matching(&out, |l| l.starts_with("bot -> ")).ends_with("count: 1"));
    assert_eq!(next_matching(&out, |l| l.starts_with("bot -> ")), "bot -> 1@1: value: 0");
    let plus = next_matching(&out, |l| l.trim_start().starts_with("[+1] "));
    let plus = plus.trim_start().trim_start_matches("[+1] ").to_owned();
    writeln!(stdin, "click {plus}\nclick {plus}\n2@1: click {plus}").unwrap();
    stdin.flush().unwrap();
    assert_eq!(next_matching(&out, |l| l.starts_with("bot -> ")), "bot -> 1@1: value: 1");
    assert_eq!(next_matching(&out, |l| l.starts_with("bot -> ")), "bot -> 1@1: value: 2");
    assert!(next_matching(&out, |l| l.starts_with("bot -> ")).starts_with("bot -> 2@1: "));

    let body = scrape(&addr);
    let s = samples(&body);
    let update_ok = [("backend", "memory"), ("namespace", "counter"), ("operation", "update"), ("outcome", "ok")];
    assert_eq!(get(&s, "bot_sessions_operations_total", &update_ok), Some(3.0), "{body}");
    let latency = [("backend", "memory"), ("namespace", "counter"), ("operation", "update")];
    assert_eq!(get(&s, "bot_sessions_operation_seconds_count", &latency), Some(3.0), "{body}");
    let route = |outcome| [("backend", "memory"), ("namespace", "interactive"), ("kind", "menu"), ("outcome", outcome)];
    assert_eq!(get(&s, "bot_sessions_interactive_routes_total", &route("handled")), Some(2.0), "{body}");
    assert_eq!(get(&s, "bot_sessions_interactive_routes_total", &route("refused")), Some(1.0), "{body}");
    let started = [("backend", "memory"), ("namespace", "interactive"), ("kind", "menu"), ("outcome", "ok")];
    assert_eq!(get(&s, "bot_sessions_interactive_started_total", &started), Some(1.0), "{body}");
    assert!(body.contains("# TYPE bot_sessions_operation_seconds histogram"), "{body}");

    drop(stdin);
    assert!(child.wait().unwrap().success());
}
