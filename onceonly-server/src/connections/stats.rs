//! Counters of the connection limits, kept in one place and rendered for `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the accept loop and the body reader count. All are monotonic except `open`.
#[derive(Debug, Default)]
pub(crate) struct ConnectionStats {
    /// Connections being served now.
    open: AtomicU64,
    /// Connections accepted since start.
    accepted: AtomicU64,
    /// Connections closed because no complete request head arrived in the header timeout.
    header_timeouts: AtomicU64,
    /// Kept-alive connections closed because no next request arrived in the idle timeout.
    idle_timeouts: AtomicU64,
    /// Requests answered 408 because their body did not arrive in the body timeout.
    body_timeouts: AtomicU64,
    /// Times the accept loop reached `max_connections` and paused.
    at_capacity: AtomicU64,
}

/// Which timer closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timeout {
    /// The first request head did not arrive in time.
    Header,
    /// A kept-alive connection sent no next request in time.
    Idle,
}

impl ConnectionStats {
    pub(crate) fn opened(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn timed_out(&self, which: Timeout) {
        match which {
            Timeout::Header => &self.header_timeouts,
            Timeout::Idle => &self.idle_timeouts,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn body_timed_out(&self) {
        self.body_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reached_capacity(&self) {
        self.at_capacity.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the Prometheus text of these counters to `out`.
    pub(crate) fn render(&self, out: &mut String) {
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP onceonly_connections_open HTTP connections being served.\n\
             # TYPE onceonly_connections_open gauge\n\
             onceonly_connections_open {}\n\
             # HELP onceonly_connections_accepted_total HTTP connections accepted.\n\
             # TYPE onceonly_connections_accepted_total counter\n\
             onceonly_connections_accepted_total {}\n\
             # HELP onceonly_connection_timeouts_total Connections closed by a timeout: \
             header (no complete request head in time) or idle (kept alive, no next request).\n\
             # TYPE onceonly_connection_timeouts_total counter\n\
             onceonly_connection_timeouts_total{{kind=\"header\"}} {}\n\
             onceonly_connection_timeouts_total{{kind=\"idle\"}} {}\n\
             # HELP onceonly_request_body_timeouts_total Requests answered 408 because their \
             body did not arrive in time.\n\
             # TYPE onceonly_request_body_timeouts_total counter\n\
             onceonly_request_body_timeouts_total {}\n\
             # HELP onceonly_connection_limit_reached_total Times new connections had to wait \
             because max_connections were open.\n\
             # TYPE onceonly_connection_limit_reached_total counter\n\
             onceonly_connection_limit_reached_total {}\n",
            get(&self.open),
            get(&self.accepted),
            get(&self.header_timeouts),
            get(&self.idle_timeouts),
            get(&self.body_timeouts),
            get(&self.at_capacity),
        );
    }
}
