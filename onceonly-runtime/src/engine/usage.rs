//! Usage accounting: per account, per UTC month and day, for the `make` (check-lock) and `ai`
//! (lease and run) buckets, enforced against the account's [`Plan`](super::Plan).
//!
//! Three counters per bucket and window: `usage` (what the plan limits: every answered
//! check-lock; only *acquired* leases and runs), `blocked` (refused at the limit) and
//! `polling` (lease and run answers that acquired nothing, which are free). Totals derive from
//! them: requests = usage + blocked + polling, charged = usage. The monthly `usage` counter is
//! the one checked against the limit, atomically in the store, so concurrent requests never
//! take it past the limit.

use std::sync::{Arc, Mutex};

use chrono::{Datelike, NaiveDate};

use super::{Engine, quota};
use crate::error::{Error, JsonMap, Result};
use crate::models::{
    AccountEvent, AccountInfo, AiCounts, DayMetrics, MakeCounts, Metrics, MetricsCounts, OverLimit,
    PlanLimits, Usage, UsageAll, UsageBucket, UsageKind,
};
use crate::store::{COUNTER_GROUP_END, CounterAdd, CounterDelta, Store};
use crate::time::datetime_from_ms;

const DAY_MS: u64 = 86_400_000;
/// How long counters stay readable after their window ends (about three months).
const KEEP_AFTER_WINDOW_MS: u64 = 100 * DAY_MS;
/// Longest range of days one `metrics` call covers.
pub(crate) const MAX_METRICS_DAYS: i64 = 93;

/// The counters of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Usage,
    Blocked,
    Polling,
}

use Field::{Blocked as BLOCKED, Polling as POLLING, Usage as USAGE};

impl Field {
    const ALL: [Field; 3] = [Field::Usage, Field::Blocked, Field::Polling];

    fn name(self) -> &'static str {
        match self {
            Field::Usage => "usage",
            Field::Blocked => "blocked",
            Field::Polling => "polling",
        }
    }
}

fn kind_index(kind: UsageKind) -> usize {
    match kind {
        UsageKind::Make => 0,
        UsageKind::Ai => 1,
    }
}

/// The UTC month and day a request falls in, with the store keys of its counters.
#[derive(Debug, Clone)]
pub(super) struct Window {
    year: i32,
    month: u32,
    day: u32,
    month_end_ms: u64,
    day_start_ms: u64,
    day_end_ms: u64,
    /// `[kind][field]` -> (month key, day key).
    keys: [[(String, String); 3]; 2],
}

/// The current day's [`Window`], built once per UTC day per engine so the hot path formats
/// no keys.
#[derive(Debug, Default)]
pub(super) struct WindowCache(Mutex<Option<Arc<Window>>>);

impl WindowCache {
    pub(super) fn get(&self, now_ms: u64) -> Arc<Window> {
        let mut cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = cached.as_ref()
            && (w.day_start_ms..w.day_end_ms).contains(&now_ms)
        {
            return Arc::clone(w);
        }
        let w = Arc::new(Window::at(now_ms));
        *cached = Some(Arc::clone(&w));
        w
    }
}

impl Window {
    pub(super) fn at(now_ms: u64) -> Window {
        let dt = datetime_from_ms(now_ms);
        let (year, month) = (dt.year(), dt.month());
        let next_month = if month == 12 {
            NaiveDate::from_ymd_opt(year + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(year, month + 1, 1)
        };
        let month_end_ms = next_month
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map_or(u64::MAX, |d| d.and_utc().timestamp_millis() as u64);
        let day = dt.day();
        let key = |kind: usize, field: Field| {
            let kind = UsageKind::ALL[kind].as_str();
            let field = field.name();
            (
                format!("u{COUNTER_GROUP_END}{kind}/{year:04}-{month:02}/{field}"),
                format!("u{COUNTER_GROUP_END}{kind}/{year:04}-{month:02}-{day:02}/{field}"),
            )
        };
        Window {
            year,
            month,
            day,
            month_end_ms,
            day_start_ms: now_ms / DAY_MS * DAY_MS,
            day_end_ms: (now_ms / DAY_MS + 1) * DAY_MS,
            keys: [0, 1].map(|k| Field::ALL.map(|f| key(k, f))),
        }
    }

    fn of_day(day: NaiveDate) -> Window {
        let start = day
            .and_hms_opt(0, 0, 0)
            .map_or(0, |d| d.and_utc().timestamp_millis().max(0) as u64);
        Window::at(start)
    }

    pub(super) fn month_label(&self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }

    /// When this window's day ends (unix ms): when a daily quota resets.
    pub(super) fn day_end_ms(&self) -> u64 {
        self.day_end_ms
    }

    pub(super) fn day_label(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    fn month_key(&self, kind: UsageKind, field: Field) -> &str {
        &self.keys[kind_index(kind)][field as usize].0
    }

    fn day_key(&self, kind: UsageKind, field: Field) -> &str {
        &self.keys[kind_index(kind)][field as usize].1
    }

    fn month_expiry(&self) -> u64 {
        self.month_end_ms.saturating_add(KEEP_AFTER_WINDOW_MS)
    }

    fn day_expiry(&self) -> u64 {
        self.day_end_ms.saturating_add(KEEP_AFTER_WINDOW_MS)
    }

    fn period_bounds(&self) -> (u64, u64) {
        let start = NaiveDate::from_ymd_opt(self.year, self.month, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc().timestamp_millis() as u64)
            .unwrap_or_default();
        (start, self.month_end_ms)
    }
}

/// The outcome of [`Engine::try_charge`].
pub(super) enum Charged {
    /// One unit counted, in this window.
    Taken(Arc<Window>, Charge),
    /// The plan's limit is reached; nothing was counted.
    Refused {
        /// The window the unit would have been counted in.
        window: Arc<Window>,
        /// The bucket's usage this month.
        usage: u64,
    },
}

/// What a charged request reports back (`charged`, `usage`, `limit` on lease answers).
#[derive(Debug, Clone, Copy)]
pub(super) struct Charge {
    pub(super) usage: u64,
    pub(super) limit: Option<u64>,
}

impl<S: Store> Engine<S> {
    /// The month and day counters of `field`, as one atomic change of both (the plan's
    /// `limit` on the month's, the daily `quota` on the day's), so every accounting step is
    /// one store round trip.
    fn deltas<'w>(
        w: &'w Window,
        kind: UsageKind,
        field: Field,
        delta: i64,
        (limit, quota): (Option<u64>, Option<u64>),
    ) -> [CounterDelta<'w>; 2] {
        [
            CounterDelta {
                key: w.month_key(kind, field),
                delta,
                limit,
                expires_at_ms: w.month_expiry(),
            },
            CounterDelta {
                key: w.day_key(kind, field),
                delta,
                limit: quota,
                expires_at_ms: w.day_expiry(),
            },
        ]
    }

    async fn bump(
        &self,
        w: &Window,
        kind: UsageKind,
        field: Field,
        delta: i64,
        now: u64,
    ) -> Result<()> {
        let adds = Self::deltas(w, kind, field, delta, (None, None));
        self.inner.store.add_counters(&adds, now).await?;
        Ok(())
    }

    /// Counts one unit of `kind` against the plan and the daily quota. At the plan's limit
    /// nothing is counted but a blocked request, a `limit_reached` event is logged, and the
    /// answer is [`Error::OverLimit`]; at the quota, [`Error::QuotaExceeded`].
    pub(super) async fn charge(&self, kind: UsageKind, now: u64) -> Result<(Arc<Window>, Charge)> {
        match self.try_charge(kind, now).await? {
            Charged::Taken(w, charge) => Ok((w, charge)),
            // Boxed: the refusal (a blocked count, an event) is rare and its state would
            // otherwise make every caller's future larger.
            Charged::Refused { window, usage } => {
                Err(Box::pin(self.refused(&window, kind, usage, now)).await)
            }
        }
    }

    /// The atomic part of [`charge`](Self::charge): counts one unit unless the plan's limit or
    /// the daily quota is reached, and does nothing else either way, so a caller may look
    /// again before refusing.
    pub(super) async fn try_charge(&self, kind: UsageKind, now: u64) -> Result<Charged> {
        let w = self.inner.windows.get(now);
        let limit = self.inner.account.plan.limit(kind);
        let quota = self.inner.config.quotas.per_day(kind);
        // The month's counter holds the limit, the day's the quota, in the same step.
        let adds = Self::deltas(&w, kind, USAGE, 1, (limit, quota));
        match self.inner.store.add_counters(&adds, now).await? {
            CounterAdd::Added(usage) => Ok(Charged::Taken(w, Charge { usage, limit })),
            CounterAdd::Refused(usage) => Ok(Charged::Refused { window: w, usage }),
        }
    }

    /// The refusal of a unit at the plan's limit or the daily quota: counts a blocked
    /// request; at the plan's limit logs `limit_reached` and returns the 402 error, at the
    /// quota the 429 one (or the store's error, if counting failed).
    ///
    /// `usage` is the refused counter's value: the month's when the plan refused (checked
    /// first, so it is at the limit), else the day's.
    pub(super) async fn refused(&self, w: &Window, kind: UsageKind, usage: u64, now: u64) -> Error {
        if let Err(e) = self.bump(w, kind, BLOCKED, 1, now).await {
            return e;
        }
        let plan_limit = self.inner.account.plan.limit(kind);
        if let Some(quota) = self.inner.config.quotas.per_day(kind)
            && plan_limit.is_none_or(|l| usage < l)
        {
            let name = match kind {
                UsageKind::Make => quota::CHECK_LOCKS_PER_DAY,
                UsageKind::Ai => quota::ACQUISITIONS_PER_DAY,
            };
            return quota::exceeded(name, quota, usage, w, now);
        }
        let limit = plan_limit.unwrap_or(usage);
        let refusal = OverLimit::new(
            self.inner.account.plan.name.clone(),
            kind,
            limit,
            usage,
            w.month_label(),
        );
        let mut extra = JsonMap::new();
        extra.insert("plan".into(), self.inner.account.plan.name.clone().into());
        extra.insert("kind".into(), kind.as_str().into());
        extra.insert("month".into(), w.month_label().into());
        extra.insert("limit".into(), limit.into());
        extra.insert("usage".into(), usage.into());
        self.log_account_event(AccountEvent {
            kind: "limit_reached".into(),
            extra,
            ..AccountEvent::default()
        })
        .await;
        Error::OverLimit(Box::new(refusal))
    }

    /// Gives back one unit charged in `w` for a request that ended up acquiring nothing. A
    /// refund that fails is logged: the answer stands and the account is over-counted by one.
    pub(super) async fn refund(&self, w: &Window, kind: UsageKind, now: u64) {
        if let Err(e) = self.bump(w, kind, USAGE, -1, now).await {
            tracing::warn!(kind = kind.as_str(), error = %e, "could not refund an unused charge");
        }
    }

    /// Counts a free (non-acquiring) lease or run answer and reads the bucket's usage.
    pub(super) async fn count_polling(&self, kind: UsageKind) -> Result<Charge> {
        let now = self.now_ms();
        let w = self.inner.windows.get(now);
        self.bump(&w, kind, POLLING, 1, now).await?;
        let usage = self
            .inner
            .store
            .get_counter(w.month_key(kind, USAGE), now)
            .await?;
        Ok(Charge {
            usage,
            limit: self.inner.account.plan.limit(kind),
        })
    }

    async fn bucket(&self, w: &Window, kind: UsageKind, now: u64) -> Result<UsageBucket> {
        let store = &self.inner.store;
        let usage = store.get_counter(w.month_key(kind, USAGE), now).await?;
        let blocked = store.get_counter(w.month_key(kind, BLOCKED), now).await?;
        let polling = store.get_counter(w.month_key(kind, POLLING), now).await?;
        Ok(UsageBucket {
            usage,
            limit: self.inner.account.plan.limit(kind),
            requests_total_month: usage + blocked + polling,
            blocked_total_month: blocked,
            charged_total_month: usage,
            polling_total_month: polling,
        })
    }

    /// This month's usage of one bucket (`GET /usage?kind=`).
    pub async fn usage(&self, kind: UsageKind) -> Result<Usage> {
        let now = self.now_ms();
        let w = self.inner.windows.get(now);
        let b = self.bucket(&w, kind, now).await?;
        Ok(Usage {
            plan: self.inner.account.plan.name.clone(),
            month: w.month_label(),
            usage: b.usage,
            limit: b.limit,
            requests_total_month: b.requests_total_month,
            blocked_total_month: b.blocked_total_month,
        })
    }

    /// This month's usage of both buckets (`GET /usage/all`).
    pub async fn usage_all(&self) -> Result<UsageAll> {
        let now = self.now_ms();
        let w = self.inner.windows.get(now);
        Ok(UsageAll {
            plan: self.inner.account.plan.name.clone(),
            month: w.month_label(),
            make: self.bucket(&w, UsageKind::Make, now).await?,
            ai: self.bucket(&w, UsageKind::Ai, now).await?,
        })
    }

    /// The account (`GET /me`): plan, limits, this month's period and usage.
    pub async fn me(&self) -> Result<AccountInfo> {
        let now = self.now_ms();
        let w = self.inner.windows.get(now);
        let account = &self.inner.account;
        let make = self.bucket(&w, UsageKind::Make, now).await?;
        let ai = self.bucket(&w, UsageKind::Ai, now).await?;
        let (start, end) = w.period_bounds();
        Ok(AccountInfo {
            plan: account.plan.name.clone(),
            is_active: true,
            tenant_id: account.tenant_id.clone(),
            key_preview: account.key_preview.clone(),
            limits: PlanLimits {
                make: account.plan.make_limit,
                ai: account.plan.ai_limit,
            },
            month: Some(w.month_label()),
            current_period_start: Some(datetime_from_ms(start)),
            current_period_end: Some(datetime_from_ms(end)),
            requests_total_month: make.requests_total_month + ai.requests_total_month,
            blocked_total_month: make.blocked_total_month + ai.blocked_total_month,
            extra: JsonMap::new(),
        })
    }

    /// Daily usage between two UTC days, inclusive (`GET /metrics?from_day=&to_day=`, days
    /// as `YYYY-MM-DD`, at most 93 days).
    pub async fn metrics(&self, from_day: &str, to_day: &str) -> Result<Metrics> {
        let parse = |field: &str, v: &str| {
            let day = NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").map_err(|_| {
                Error::Validation(format!("{field} must be a date as YYYY-MM-DD, got {v:?}"))
            })?;
            // Counters are kept by Unix day: nothing can have been counted before the epoch.
            if day < chrono::DateTime::UNIX_EPOCH.date_naive() {
                return Err(Error::Validation(format!(
                    "{field} must be 1970-01-01 or later, got {v:?}"
                )));
            }
            Ok(day)
        };
        let from = parse("from_day", from_day)?;
        let to = parse("to_day", to_day)?;
        let span = (to - from).num_days();
        if span < 0 {
            return Err(Error::Validation(
                "to_day must not be before from_day".into(),
            ));
        }
        if span >= MAX_METRICS_DAYS {
            return Err(Error::Validation(format!(
                "a metrics range covers at most {MAX_METRICS_DAYS} days"
            )));
        }
        let now = self.now_ms();
        let store = &self.inner.store;
        let mut days = Vec::new();
        let mut totals = MetricsCounts::default();
        for day in from.iter_days().take(span as usize + 1) {
            let w = Window::of_day(day);
            let read = |kind, field| store.get_counter(w.day_key(kind, field), now);
            let counts = MetricsCounts {
                make: MakeCounts {
                    usage: read(UsageKind::Make, USAGE).await?,
                    blocked: read(UsageKind::Make, BLOCKED).await?,
                },
                ai: AiCounts {
                    usage: read(UsageKind::Ai, USAGE).await?,
                    blocked: read(UsageKind::Ai, BLOCKED).await?,
                    polling: read(UsageKind::Ai, POLLING).await?,
                },
            };
            totals.make.usage += counts.make.usage;
            totals.make.blocked += counts.make.blocked;
            totals.ai.usage += counts.ai.usage;
            totals.ai.blocked += counts.ai.blocked;
            totals.ai.polling += counts.ai.polling;
            days.push(DayMetrics {
                day: w.day_label(),
                counts,
            });
        }
        Ok(Metrics {
            from_day: from.format("%Y-%m-%d").to_string(),
            to_day: to.format("%Y-%m-%d").to_string(),
            days,
            totals,
            extra: JsonMap::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_utc_months_and_days() {
        // 2026-12-31T23:59:59.999Z
        let w = Window::at(1_798_761_599_999);
        assert_eq!(w.month_label(), "2026-12");
        assert_eq!(w.day_label(), "2026-12-31");
        assert_eq!(w.month_end_ms, 1_798_761_600_000);
        assert_eq!(w.day_end_ms, 1_798_761_600_000);
        let next = Window::at(1_798_761_600_000);
        assert_eq!(next.month_label(), "2027-01");
        assert_eq!(next.month_key(UsageKind::Ai, USAGE), "u#ai/2027-01/usage");
        assert_eq!(
            next.day_key(UsageKind::Make, BLOCKED),
            "u#make/2027-01-01/blocked"
        );
    }
}
