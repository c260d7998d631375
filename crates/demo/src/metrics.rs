//! `--metrics ADDR`: the library's metrics (see `bot_sessions::observe`) in the
//! Prometheus text format at `GET /metrics`.
//!
//! metrics-exporter-prometheus (the `metrics` project's own exporter) records and
//! renders; axum (already in the tree through the library's `discord` feature) serves
//! the one route, so a port in use is an error at start, with the address named.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets of the `_seconds` metrics: 100 µs to 10 s, from an in-memory
/// update to a slow network round trip or a late sweep.
const SECONDS_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How often summaries and idle metrics are tidied up between scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder as the global `metrics` recorder and serves it on
/// `addr` (port 0: any free port) in the background. Returns the bound address.
///
/// Call it before the bot's sessions and manager are built: they register their
/// metrics on first use with the recorder installed then.
///
/// # Errors
///
/// When a recorder is already installed, or `addr` cannot be bound.
pub async fn serve(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .context("invalid histogram buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let listener =
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let bound = listener.local_addr().context("the metrics listener has no address")?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP);
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = axum::Router::new().route("/metrics", axum::routing::get(move || render(handle.clone())));
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("the metrics endpoint failed: {error}");
        }
    });
    Ok(bound)
}

async fn render(handle: PrometheusHandle) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render())
}
