//! The `onceonly.dedup` span: one per request the layer deduplicates, with what became of it.
//!
//! The span opens once the request's key is known and closes when the answer is ready; the
//! handler and the layer's own log events run inside it. Its fields are filled in as the
//! request goes: the outcome is the last one set, so a request dropped after its key was
//! claimed reads `released` (the key is given back), and one dropped before a remote backend
//! answered has none (the embedded engine answers before the request future exists). Without
//! a subscriber that wants the span, nothing is computed: no clock read, no hash.

use std::time::Instant;

use http::{Response, StatusCode};
use tracing::Span;
use tracing::field::Empty;

pub(crate) use onceonly_runtime::__private::Outcome;
use onceonly_runtime::__private::key_hash;

use super::layer::{Config, Mode};

/// The span of one request, recorded when it is dropped.
pub(crate) struct Trace {
    span: Span,
    /// `None` when no subscriber wants the span: then nothing is recorded.
    started: Option<Instant>,
    outcome: Option<Outcome>,
    status: Option<StatusCode>,
}

impl Trace {
    /// Opens the span of a request whose (namespaced) key is `key`.
    pub(crate) fn new(config: &Config, key: &str) -> Trace {
        let span = tracing::info_span!(
            "onceonly.dedup",
            mode = match config.mode {
                Mode::CheckLock => "check_lock",
                Mode::Replay => "replay",
            },
            backend = config.client.backend().name(),
            key_hash = Empty,
            outcome = Empty,
            status = Empty,
            duration_ms = Empty,
        );
        let started = if span.is_disabled() {
            None
        } else {
            span.record("key_hash", key_hash(key));
            Some(Instant::now())
        };
        Trace {
            span,
            started,
            outcome: None,
            status: None,
        }
    }

    /// The span, to enter while the request's work runs.
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Sets the outcome recorded when the trace ends (the last one set wins).
    pub(crate) fn outcome(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
    }

    /// Notes the status of the answer, when there is one (not a handler error).
    pub(crate) fn answered<B, E>(&mut self, answer: &Result<Response<B>, E>) {
        if let Ok(response) = answer {
            self.status = Some(response.status());
        }
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        let Some(started) = self.started else {
            return;
        };
        if let Some(outcome) = self.outcome {
            self.span.record("outcome", outcome.as_str());
        }
        if let Some(status) = self.status {
            self.span.record("status", status.as_u16());
        }
        self.span
            .record("duration_ms", started.elapsed().as_secs_f64() * 1e3);
    }
}
