//! `/metrics`: the server's counters in one Prometheus registry (the `prometheus-client`
//! crate), rendered in the OpenMetrics text format.
//!
//! - `onceonly_http_requests_total{class}`: answers by status class.
//! - `onceonly_outcomes_total{endpoint, outcome}`: what each API endpoint answered, by its
//!   route template (so no key ever becomes a label) and an outcome word: the `status` of a
//!   lease or run answer (`acquired`, `in_progress`, `completed`, `failed`, ...), `locked` or
//!   `duplicate` for check-locks, `claimed` or `empty` for job claims, `ok` for other
//!   successes, and for errors `unauthorized`, `over_limit`, `conflict`, `invalid`,
//!   `too_large`, `rate_limited`, `not_found`, `timeout`, `rejected` (other 4xx) or `error`
//!   (5xx).
//! - `onceonly_tenants`, `onceonly_uptime_seconds`, and the connection counters.

use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::connections::ConnectionStats;

/// The outcome word of an answer, set by the handler that knows it (a response extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome(pub(crate) &'static str);

impl Outcome {
    /// The outcome of an answer whose handler named none: by status.
    pub(crate) fn of_status(status: StatusCode) -> Outcome {
        Outcome(match status.as_u16() {
            200..=299 => "ok",
            401 | 403 => "unauthorized",
            402 => "over_limit",
            404 | 405 => "not_found",
            408 => "timeout",
            409 => "conflict",
            413 => "too_large",
            422 => "invalid",
            429 => "rate_limited",
            400..=499 => "rejected",
            _ => "error",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    endpoint: String,
    outcome: &'static str,
}

/// The registry and the handles the middleware and the accept loop count with.
pub(crate) struct Metrics {
    registry: Registry,
    started: Instant,
    by_class: Family<ClassLabel, Counter>,
    outcomes: Family<OutcomeLabels, Counter>,
    uptime: Gauge,
    /// Connections, and what the connection limits closed or refused.
    pub(crate) connections: Arc<ConnectionStats>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry for a server with `tenants` API keys.
    pub(crate) fn new(tenants: usize) -> Metrics {
        let mut registry = Registry::default();
        let by_class = Family::<ClassLabel, Counter>::default();
        let outcomes = Family::<OutcomeLabels, Counter>::default();
        let tenant_gauge = Gauge::<i64>::default();
        let uptime = Gauge::<i64>::default();
        registry.register(
            "onceonly_http_requests",
            "HTTP requests answered, by status class",
            by_class.clone(),
        );
        registry.register(
            "onceonly_outcomes",
            "API answers by endpoint (route template) and outcome",
            outcomes.clone(),
        );
        registry.register(
            "onceonly_tenants",
            "API keys (tenants) configured",
            tenant_gauge.clone(),
        );
        registry.register(
            "onceonly_uptime_seconds",
            "Seconds since the server started",
            uptime.clone(),
        );
        tenant_gauge.set(i64::try_from(tenants).unwrap_or(i64::MAX));
        let connections = Arc::new(ConnectionStats::default());
        connections.register(&mut registry);
        // Every class appears from the start, so a dashboard sees zeros rather than gaps.
        for class in ["1xx", "2xx", "3xx", "4xx", "5xx"] {
            let _ = by_class.get_or_create(&ClassLabel { class });
        }
        Metrics {
            registry,
            started: Instant::now(),
            by_class,
            outcomes,
            uptime,
            connections,
        }
    }

    /// Counts one answer of `endpoint` (a route template, or `unmatched`).
    pub(crate) fn answered(&self, endpoint: &str, status: StatusCode, outcome: Outcome) {
        const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        let class = CLASSES[usize::from(status.as_u16() / 100).clamp(1, 5) - 1];
        self.by_class.get_or_create(&ClassLabel { class }).inc();
        self.outcomes
            .get_or_create(&OutcomeLabels {
                endpoint: endpoint.to_owned(),
                outcome: outcome.0,
            })
            .inc();
    }

    /// The OpenMetrics text of every metric.
    pub(crate) fn render(&self) -> String {
        self.uptime
            .set(i64::try_from(self.started.elapsed().as_secs()).unwrap_or(i64::MAX));
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "could not render the metrics");
        }
        out
    }
}
