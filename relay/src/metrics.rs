//! Prometheus metrics, served as text on `--metrics ADDR` (`GET /metrics`).
//!
//! | metric | type | meaning |
//! | --- | --- | --- |
//! | `vset_relay_applied_total` | counter | rows Redis stored (`VSET`/`VDEL` answered 1) |
//! | `vset_relay_rejected_total` | counter | rows Redis refused as stale, at/below the floor, or cold (answered 0); acked, since a miss is safe |
//! | `vset_relay_invalid_rows_total` | counter | malformed rows turned into a tombstone/`DEL`, or skipped (no key) |
//! | `vset_relay_foreign_replaced_total` | counter | rows whose key held a value of another type (`WRONGTYPE`): the key was deleted and the row applied |
//! | `vset_relay_acked_total` | counter | rows deleted from the outbox by a committed batch |
//! | `vset_relay_errors_total{kind}` | counter | failed rounds by cause: `postgres`, `redis`, `cold` |
//! | `vset_relay_cold_starts_total` | counter | times the relay found the module cold and set `VFLOOR` |
//! | `vset_relay_batch_size` | histogram | rows per non-empty batch |
//! | `vset_relay_batch_duration_seconds` | histogram | claim + apply + commit, per non-empty batch |
//! | `vset_relay_backlog` | gauge | rows waiting in `vset.outbox` (refreshed every `--backlog-interval`) |
//! | `vset_relay_lag_seconds` | histogram | commit-to-apply lag, measured from the row's `created_at` to the moment Redis answered |
//!
//! Lag is measured from `created_at`, which the extension sets when the row is
//! written, i.e. inside the writing transaction, slightly *before* its commit; the
//! relay compares it with its own clock, so the two hosts' clocks must agree.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::error::{RelayError, Result};

/// Every metric the relay keeps. Cheap to clone (all handles are `Arc`s inside).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub applied: IntCounter,
    pub rejected: IntCounter,
    pub foreign_replaced: IntCounter,
    pub invalid_rows: IntCounter,
    pub acked: IntCounter,
    pub errors: IntCounterVec,
    pub cold_starts: IntCounter,
    pub batch_size: Histogram,
    pub batch_duration: Histogram,
    pub backlog: IntGauge,
    pub lag: Histogram,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(h.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    h
}

impl Metrics {
    // The names and bucket layouts are constants of this file: a failure to build
    // them is a programming error caught by the unit test below, hence the panics.
    pub fn new() -> Self {
        let registry = Registry::new();
        let errors = IntCounterVec::new(
            Opts::new(
                "vset_relay_errors_total",
                "Failed claim/apply/ack rounds by cause",
            ),
            &["kind"],
        )
        .unwrap_or_else(|e| panic!("errors metric: {e}"));
        registry
            .register(Box::new(errors.clone()))
            .unwrap_or_else(|e| panic!("errors metric: {e}"));
        let backlog = IntGauge::new("vset_relay_backlog", "Rows waiting in vset.outbox")
            .unwrap_or_else(|e| panic!("backlog metric: {e}"));
        registry
            .register(Box::new(backlog.clone()))
            .unwrap_or_else(|e| panic!("backlog metric: {e}"));
        // 100 µs … ~52 s: covers a loopback round trip up to a long outage.
        let seconds = exponential_buckets(0.0001, 2.0, 20).unwrap_or_default();
        Self {
            applied: counter(
                &registry,
                "vset_relay_applied_total",
                "Rows stored by Redis (VSET/VDEL answered 1)",
            ),
            rejected: counter(
                &registry,
                "vset_relay_rejected_total",
                "Rows refused by Redis as stale, below the floor or cold (answered 0)",
            ),
            foreign_replaced: counter(
                &registry,
                "vset_relay_foreign_replaced_total",
                "Rows whose key held a value of another type (WRONGTYPE): key deleted, row applied",
            ),
            invalid_rows: counter(
                &registry,
                "vset_relay_invalid_rows_total",
                "Malformed outbox rows, turned into a tombstone or DEL, or skipped",
            ),
            acked: counter(
                &registry,
                "vset_relay_acked_total",
                "Rows acknowledged (deleted from vset.outbox by a committed batch)",
            ),
            cold_starts: counter(
                &registry,
                "vset_relay_cold_starts_total",
                "Cold starts of the Redis module ended with VFLOOR",
            ),
            batch_size: histogram(
                &registry,
                "vset_relay_batch_size",
                "Rows per non-empty batch",
                exponential_buckets(1.0, 2.0, 18).unwrap_or_default(),
            ),
            batch_duration: histogram(
                &registry,
                "vset_relay_batch_duration_seconds",
                "Claim + apply + commit time per non-empty batch",
                seconds.clone(),
            ),
            lag: histogram(
                &registry,
                "vset_relay_lag_seconds",
                "Commit-to-apply lag, from the outbox row's created_at to Redis' answer",
                seconds,
            ),
            errors,
            backlog,
            registry,
        }
    }

    /// Records the lag of one applied row.
    pub fn observe_lag(&self, created_at: SystemTime, applied_at: SystemTime) {
        let lag = applied_at
            .duration_since(created_at)
            .unwrap_or(Duration::ZERO);
        self.lag.observe(lag.as_secs_f64());
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Binds `addr` now (so a taken port is reported at start-up) and serves
/// `GET /metrics` in the background. A tiny HTTP/1.0 responder is enough for a
/// scraper and avoids pulling an HTTP stack into the relay.
pub async fn serve(metrics: Metrics, addr: SocketAddr) -> Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| RelayError::Metrics { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| RelayError::Metrics { addr, source })?;
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let mut request = Vec::with_capacity(1024);
                let mut buf = [0u8; 1024];
                // Read the request head (bounded, with a timeout): only the request
                // line matters.
                let read = tokio::time::timeout(Duration::from_secs(5), async {
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024
                    {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                })
                .await;
                if read.is_err() {
                    return;
                }
                let line = String::from_utf8_lossy(&request);
                let line = line.lines().next().unwrap_or("");
                let response = if line.starts_with("GET /metrics ") || line.starts_with("GET / ") {
                    let body = metrics.render();
                    format!(
                        "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
                };
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed_by_name() {
        let m = Metrics::new();
        m.applied.inc_by(3);
        m.errors.with_label_values(&["redis"]).inc();
        m.observe_lag(
            SystemTime::UNIX_EPOCH,
            SystemTime::UNIX_EPOCH + Duration::from_millis(2),
        );
        let text = m.render();
        for name in [
            "vset_relay_applied_total 3",
            "vset_relay_rejected_total 0",
            "vset_relay_invalid_rows_total 0",
            "vset_relay_acked_total 0",
            "vset_relay_errors_total{kind=\"redis\"} 1",
            "vset_relay_cold_starts_total 0",
            "vset_relay_batch_size_bucket",
            "vset_relay_batch_duration_seconds_bucket",
            "vset_relay_backlog 0",
            "vset_relay_lag_seconds_count 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }

    #[tokio::test]
    async fn serves_metrics_over_http_and_404s_elsewhere() {
        let m = Metrics::new();
        m.acked.inc_by(5);
        let addr = serve(m, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let get = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .expect("write");
            let mut out = String::new();
            s.read_to_string(&mut out).await.expect("read");
            out
        };
        let ok = get("/metrics").await;
        assert!(ok.starts_with("HTTP/1.0 200 OK"), "{ok}");
        assert!(ok.contains("vset_relay_acked_total 5"), "{ok}");
        let missing = get("/nope").await;
        assert!(missing.starts_with("HTTP/1.0 404"), "{missing}");
    }
}
