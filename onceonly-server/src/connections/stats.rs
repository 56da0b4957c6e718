//! Counters of the connection limits, registered with the server's metrics registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Which timer closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timeout {
    /// The first request head did not arrive in time.
    Header,
    /// A kept-alive connection sent no next request in time.
    Idle,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// What the accept loop and the body reader count. All are monotonic except `open`.
#[derive(Debug, Default)]
pub(crate) struct ConnectionStats {
    open: Gauge,
    accepted: Counter,
    timeouts: Family<KindLabel, Counter>,
    body_timeouts: Counter,
    at_capacity: Counter,
}

impl ConnectionStats {
    /// Registers every counter with `registry`.
    pub(crate) fn register(&self, registry: &mut Registry) {
        // Both kinds show from the start, so a dashboard sees zeros rather than gaps.
        for kind in ["header", "idle"] {
            let _ = self.timeouts.get_or_create(&KindLabel { kind });
        }
        registry.register(
            "onceonly_connections_open",
            "HTTP connections being served",
            self.open.clone(),
        );
        registry.register(
            "onceonly_connections_accepted",
            "HTTP connections accepted",
            self.accepted.clone(),
        );
        registry.register(
            "onceonly_connection_timeouts",
            "Connections closed by a timeout: header (no complete request head in time) or \
             idle (kept alive, no next request)",
            self.timeouts.clone(),
        );
        registry.register(
            "onceonly_request_body_timeouts",
            "Requests answered 408 because their body did not arrive in time",
            self.body_timeouts.clone(),
        );
        registry.register(
            "onceonly_connection_limit_reached",
            "Times new connections had to wait because max_connections were open",
            self.at_capacity.clone(),
        );
    }

    pub(crate) fn opened(&self) {
        self.accepted.inc();
        self.open.inc();
    }

    pub(crate) fn closed(&self) {
        self.open.dec();
    }

    pub(crate) fn timed_out(&self, which: Timeout) {
        let kind = match which {
            Timeout::Header => "header",
            Timeout::Idle => "idle",
        };
        self.timeouts.get_or_create(&KindLabel { kind }).inc();
    }

    pub(crate) fn body_timed_out(&self) {
        self.body_timeouts.inc();
    }

    pub(crate) fn reached_capacity(&self) {
        self.at_capacity.inc();
    }
}
