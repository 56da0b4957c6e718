//! Per-account daily quotas: what bounds the keys and results one account can create.
//!
//! A plan's limits are commercial (monthly, `402`); quotas protect the server that keeps the
//! state (daily, `429`). Every key a client creates is charged to the account's day counters
//! (`make` for check-locks, `ai` for acquisitions) and lives at most its TTL (30 days at most)
//! plus the engine's retention, so a daily quota bounds how many keys an account holds; the
//! result bytes quota bounds what they hold. Events and audit entries need no quota: each
//! account keeps them in one capped log.
//!
//! The quotas ride on the counters usage accounting already moves in one atomic store step:
//! a check-lock or acquisition costs no extra round trip, and concurrent requests never take
//! a day past its quota.

use std::time::Duration;

use super::Engine;
use super::usage::Window;
use crate::error::{Error, Result};
use crate::models::{QuotaExceeded, UsageKind};
use crate::store::{COUNTER_GROUP_END, CounterAdd, Store};
use crate::time::datetime_from_ms;

/// The daily quotas every account of an engine gets. `None` is no quota; [`Quotas::none`] (no
/// quota at all) is the engine's default, [`Quotas::server_default`] that of
/// `onceonly-server`.
///
/// ```
/// use onceonly_runtime::{EngineConfig, Quotas};
///
/// let config = EngineConfig::default().quotas(
///     Quotas::none()
///         .check_locks_per_day(50_000)
///         .result_bytes_per_day(64 << 20),
/// );
/// assert_eq!(config.quotas.acquisitions_per_day, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Quotas {
    /// Check-locks an account may make per UTC day (each one may create a lock).
    pub check_locks_per_day: Option<u64>,
    /// Leases and runs an account may acquire or queue per UTC day (each one may create a
    /// record).
    pub acquisitions_per_day: Option<u64>,
    /// Bytes of result JSON an account may store per UTC day (counted per `complete` that
    /// carries a result).
    pub result_bytes_per_day: Option<u64>,
}

impl Quotas {
    /// No quota at all: the embedded engine's default, where the only account is the
    /// process's own.
    pub fn none() -> Self {
        Quotas::default()
    }

    /// `onceonly-server`'s defaults: 1,000,000 check-locks, 1,000,000 acquisitions and 1 GiB
    /// of results per account per day. High enough not to get in the way of real traffic or a
    /// load test; an operator exposing a server sizes them to its memory (server README,
    /// "Per-tenant memory").
    pub fn server_default() -> Self {
        Quotas {
            check_locks_per_day: Some(1_000_000),
            acquisitions_per_day: Some(1_000_000),
            result_bytes_per_day: Some(1 << 30),
        }
    }

    /// Sets the check-locks per day.
    pub fn check_locks_per_day(mut self, n: u64) -> Self {
        self.check_locks_per_day = Some(n);
        self
    }

    /// Sets the acquisitions per day.
    pub fn acquisitions_per_day(mut self, n: u64) -> Self {
        self.acquisitions_per_day = Some(n);
        self
    }

    /// Sets the result bytes per day.
    pub fn result_bytes_per_day(mut self, bytes: u64) -> Self {
        self.result_bytes_per_day = Some(bytes);
        self
    }

    /// The quota on a usage bucket's day counter.
    pub(super) fn per_day(&self, kind: UsageKind) -> Option<u64> {
        match kind {
            UsageKind::Make => self.check_locks_per_day,
            UsageKind::Ai => self.acquisitions_per_day,
        }
    }
}

/// The names a refusal gives its quota (`detail.quota`).
pub(super) const CHECK_LOCKS_PER_DAY: &str = "check_locks_per_day";
pub(super) const ACQUISITIONS_PER_DAY: &str = "acquisitions_per_day";
pub(super) const RESULT_BYTES_PER_DAY: &str = "result_bytes_per_day";

/// The refusal of a request over a daily quota of `limit`, with `used` counted today.
pub(super) fn exceeded(quota: &str, limit: u64, used: u64, w: &Window, now: u64) -> Error {
    let resets = w.day_end_ms();
    Error::QuotaExceeded(Box::new(QuotaExceeded {
        quota: quota.to_owned(),
        limit,
        used,
        resets_at: datetime_from_ms(resets).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        retry_after: Duration::from_millis(resets.saturating_sub(now)),
    }))
}

/// Result bytes counted for a completion, so a refund goes back to the same day's counter.
#[derive(Debug)]
pub(super) struct ResultBytes {
    key: String,
    bytes: u64,
    expires_at_ms: u64,
}

impl<S: Store> Engine<S> {
    /// Counts `bytes` of result against today's quota, or refuses them (`None`: no quota).
    pub(super) async fn charge_result_bytes(
        &self,
        bytes: u64,
        now: u64,
    ) -> Result<Option<ResultBytes>> {
        let Some(limit) = self.inner.config.quotas.result_bytes_per_day else {
            return Ok(None);
        };
        let w = self.inner.windows.get(now);
        let charged = ResultBytes {
            key: format!("q{COUNTER_GROUP_END}result_bytes/{}", w.day_label()),
            bytes,
            expires_at_ms: w.day_end_ms(),
        };
        let delta = i64::try_from(bytes).unwrap_or(i64::MAX);
        let added = self
            .inner
            .store
            .add_counter(&charged.key, delta, Some(limit), now, charged.expires_at_ms)
            .await?;
        match added {
            CounterAdd::Added(_) => Ok(Some(charged)),
            CounterAdd::Refused(used) => Err(exceeded(RESULT_BYTES_PER_DAY, limit, used, &w, now)),
        }
    }

    /// Gives back result bytes counted for a completion that did not happen, best effort.
    pub(super) async fn refund_result_bytes(&self, charged: ResultBytes) {
        let delta = -i64::try_from(charged.bytes).unwrap_or(i64::MAX);
        let refunded = self
            .inner
            .store
            .add_counter(
                &charged.key,
                delta,
                None,
                self.now_ms(),
                charged.expires_at_ms,
            )
            .await;
        if let Err(e) = refunded {
            tracing::warn!(error = %e, "could not refund result bytes");
        }
    }
}
