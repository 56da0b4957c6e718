//! Spans for the calls users care about: one per `check_lock` and one per `run_fn` (and so per
//! macro call), with the backend, the outcome and the duration.
//!
//! Keys may carry personal data (an email address, an order id), so a span never shows one:
//! it shows `key_hash`, the first 16 hex digits of the key's SHA-256, enough to correlate the
//! spans of one key across services without revealing it. The API key never reaches a span.
//! The digest is computed only when a subscriber has enabled the span.

use std::time::Instant;

use sha2::{Digest, Sha256};
use tracing::Span;

/// What a traced call ended with: the `outcome` field (of the runtime's spans and of the tower
/// layer's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The work ran here: a check-lock that locked, a `run_fn` whose closure ran and whose
    /// value was stored.
    Executed,
    /// Nothing ran: a duplicate check-lock, or a `run_fn` that returned the stored value.
    Replayed,
    /// A `run_fn` waited for another holder and returned that holder's value.
    Waited,
    /// The closure failed and the key was given back for a retry.
    Released,
    /// The call failed: a terminal failure, a refusal or a backend error.
    Failed,
    /// The holder's lease ended before it completed; its value was not stored.
    LeaseLost,
    /// The backend was unreachable and the check-lock let the caller proceed unlocked.
    FailOpen,
}

impl Outcome {
    /// The word the `outcome` field carries.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Executed => "executed",
            Outcome::Replayed => "replayed",
            Outcome::Waited => "waited",
            Outcome::Released => "released",
            Outcome::Failed => "failed",
            Outcome::LeaseLost => "lease_lost",
            Outcome::FailOpen => "fail_open",
        }
    }
}

/// The first 16 hex digits of the SHA-256 of `key`.
pub fn key_hash(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..8])
}

/// A span being filled in: created before the call, finished with its outcome.
pub(crate) struct Traced {
    span: Span,
    start: Option<Instant>,
    /// The outcome recorded if the call ends without [`finish`](Traced::finish) (its future
    /// was dropped or panicked); `None` once finished. Behind a mutex: a `run_fn` sets it
    /// from inside its future, which must stay `Send`.
    unfinished: std::sync::Mutex<Option<Outcome>>,
}

impl Traced {
    /// The span of a `check_lock`.
    pub(crate) fn check_lock(backend: &'static str, key: &str) -> Traced {
        let span = tracing::info_span!(
            "onceonly.check_lock",
            backend,
            key_hash = tracing::field::Empty,
            outcome = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        Traced::start(span, key, None)
    }

    /// The span of a `run_fn`. A run whose future is dropped or panics reads `released` (its
    /// lease, if it took one, is cancelled), or `executed` once its closure has returned.
    pub(crate) fn run_fn(backend: &'static str, key: &str) -> Traced {
        let span = tracing::info_span!(
            "onceonly.run_fn",
            backend,
            key_hash = tracing::field::Empty,
            outcome = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        Traced::start(span, key, Some(Outcome::Released))
    }

    fn start(span: Span, key: &str, unfinished: Option<Outcome>) -> Traced {
        let start = (!span.is_disabled()).then(|| {
            span.record("key_hash", key_hash(key));
            Instant::now()
        });
        Traced {
            span,
            start,
            unfinished: std::sync::Mutex::new(unfinished),
        }
    }

    /// What the call comes to if it ends without [`finish`](Traced::finish) from now on: for
    /// a `run_fn` whose closure returned, `executed` (the side effect happened, whatever
    /// becomes of its completion).
    pub(crate) fn if_unfinished(&self, outcome: Outcome) {
        *self.unfinished_slot() = Some(outcome);
    }

    fn unfinished_slot(&self) -> std::sync::MutexGuard<'_, Option<Outcome>> {
        // Poisoned only by a panic while it was held, which cannot happen: take what it holds.
        self.unfinished.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The span, to instrument the call's future with.
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Records the outcome and the time since the span started.
    pub(crate) fn finish(&self, outcome: Outcome) {
        self.unfinished_slot().take();
        self.record(outcome);
    }

    fn record(&self, outcome: Outcome) {
        if let Some(start) = self.start {
            self.span.record("outcome", outcome.as_str());
            self.span
                .record("duration_ms", start.elapsed().as_secs_f64() * 1000.0);
        }
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        if let Some(outcome) = self.unfinished_slot().take() {
            self.record(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hashes_are_short_and_stable() {
        assert_eq!(key_hash("stripe:evt_1"), key_hash("stripe:evt_1"));
        assert_eq!(key_hash("stripe:evt_1").len(), 16);
        assert_ne!(key_hash("stripe:evt_1"), key_hash("stripe:evt_2"));
    }
}
