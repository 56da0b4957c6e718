//! The account behind an API key: `GET /me`, notification preferences, and what a plan
//! limit refusal says.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::UsageKind;
use crate::error::JsonMap;

/// Monthly limits of a plan (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlanLimits {
    /// Check-locks per month.
    #[serde(default)]
    pub make: Option<u64>,
    /// Acquired leases and runs per month.
    #[serde(default)]
    pub ai: Option<u64>,
}

/// The account behind the API key: `GET /me`.
///
/// The hosted API sends more members than these (for example all-time totals); they are kept
/// in [`extra`](Self::extra).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AccountInfo {
    /// The plan name.
    #[serde(default)]
    pub plan: String,
    /// Whether the key is active.
    #[serde(default)]
    pub is_active: bool,
    /// The tenant the key belongs to (`onceonly-server` and the embedded engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// A preview of the key that identifies it without revealing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_preview: Option<String>,
    /// The plan's monthly limits.
    #[serde(default)]
    pub limits: PlanLimits,
    /// The current usage month, `YYYY-MM` (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month: Option<String>,
    /// When the current billing period started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_period_start: Option<DateTime<Utc>>,
    /// When it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_period_end: Option<DateTime<Utc>>,
    /// All requests this month, both buckets.
    #[serde(default)]
    pub requests_total_month: u64,
    /// Requests refused at a limit this month, both buckets.
    #[serde(default)]
    pub blocked_total_month: u64,
    /// Members this model does not name, verbatim.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// Notification preferences: the answer of `POST /me/notifications`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationPrefs {
    /// Account emails.
    #[serde(default = "yes")]
    pub email_notifications_enabled: bool,
    /// Emails about failing tools.
    #[serde(default = "yes")]
    pub tool_error_notifications_enabled: bool,
    /// Emails about failed runs.
    #[serde(default = "yes")]
    pub run_failure_notifications_enabled: bool,
}

fn yes() -> bool {
    true
}

impl Default for NotificationPrefs {
    /// Everything on.
    fn default() -> Self {
        NotificationPrefs {
            email_notifications_enabled: true,
            tool_error_notifications_enabled: true,
            run_failure_notifications_enabled: true,
        }
    }
}

/// What a plan-limit refusal (`402`) says: [`Error::OverLimit`](crate::Error::OverLimit).
///
/// The embedded engine and `onceonly-server` fill every field; the hosted API documents
/// `plan`, `limit` and `usage`, so the others may be `None` there. Whatever else the answer
/// carried is in [`detail`](Self::detail).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct OverLimit {
    /// The plan name.
    pub plan: Option<String>,
    /// The bucket whose limit was reached.
    pub kind: Option<UsageKind>,
    /// The monthly limit.
    pub limit: Option<u64>,
    /// The usage counted this month.
    pub usage: Option<u64>,
    /// The usage month, `YYYY-MM` (UTC).
    pub period: Option<String>,
    /// The whole `detail` object of a `402` answer received over HTTP (empty from the
    /// embedded engine).
    pub detail: JsonMap,
}

impl OverLimit {
    /// A refusal of `kind` at `limit` on `plan`, in the month `period`.
    pub fn new(
        plan: impl Into<String>,
        kind: UsageKind,
        limit: u64,
        usage: u64,
        period: impl Into<String>,
    ) -> Self {
        OverLimit {
            plan: Some(plan.into()),
            kind: Some(kind),
            limit: Some(limit),
            usage: Some(usage),
            period: Some(period.into()),
            detail: JsonMap::new(),
        }
    }

    /// Reads the `detail` object of a `402` answer: the documented members when they have
    /// the right types, and the whole object.
    pub fn from_detail(detail: JsonMap) -> Self {
        let text = |name: &str| detail.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let number = |name: &str| detail.get(name).and_then(serde_json::Value::as_u64);
        OverLimit {
            plan: text("plan"),
            kind: text("kind").and_then(|k| k.parse().ok()),
            limit: number("limit"),
            usage: number("usage"),
            period: text("month").or_else(|| text("period")),
            detail,
        }
    }
}

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.plan, self.kind, self.limit) {
            (Some(plan), Some(kind), Some(limit)) => {
                write!(
                    f,
                    "the {plan} plan allows {limit} `{kind}` requests per month"
                )
            }
            (Some(plan), _, Some(limit)) => write!(f, "the {plan} plan's limit of {limit}"),
            _ => f.write_str("plan limit reached"),
        }
    }
}

/// What a daily quota refusal (`429`, `detail.error` = `quota_exceeded`) says:
/// [`Error::QuotaExceeded`](crate::Error::QuotaExceeded). Quotas are set by whoever runs the
/// engine or `onceonly-server` ([`Quotas`](crate::Quotas)); they reset at midnight UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuotaExceeded {
    /// `check_locks_per_day`, `acquisitions_per_day` or `result_bytes_per_day`.
    pub quota: String,
    /// The quota.
    pub limit: u64,
    /// What was counted today before the refused request.
    pub used: u64,
    /// When the quota resets (RFC 3339, the next midnight UTC).
    pub resets_at: String,
    /// How long until then.
    pub retry_after: std::time::Duration,
}

impl QuotaExceeded {
    /// Reads the `detail` object of a quota refusal; the wait is the answer's `Retry-After`
    /// or, without one (`onceonly-server` sends none for a quota), the detail's
    /// `retry_after_sec`.
    pub(crate) fn from_detail(
        detail: Option<&JsonMap>,
        retry_after: Option<std::time::Duration>,
    ) -> Self {
        let text = |name: &str| {
            detail
                .and_then(|d| d.get(name))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let number = |name: &str| {
            detail
                .and_then(|d| d.get(name))
                .and_then(serde_json::Value::as_u64)
                .unwrap_or_default()
        };
        QuotaExceeded {
            quota: text("quota"),
            limit: number("limit"),
            used: number("used"),
            resets_at: text("resets_at"),
            retry_after: retry_after
                .unwrap_or_else(|| std::time::Duration::from_secs(number("retry_after_sec"))),
        }
    }
}

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "over the daily quota {} of {} ({} counted today, this call not counted); it resets at {}",
            self.quota, self.limit, self.used, self.resets_at
        )
    }
}

/// Which notification preferences to change: `POST /me/notifications`. Unset ones keep
/// their value; at least one must be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationUpdate {
    /// Account emails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_notifications_enabled: Option<bool>,
    /// Emails about failing tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_error_notifications_enabled: Option<bool>,
    /// Emails about failed runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_failure_notifications_enabled: Option<bool>,
}

impl NotificationUpdate {
    /// Whether no preference is set.
    pub fn is_empty(&self) -> bool {
        *self == NotificationUpdate::default()
    }

    /// `prefs` with the set preferences changed.
    pub fn apply(&self, mut prefs: NotificationPrefs) -> NotificationPrefs {
        let set = |slot: &mut bool, v: Option<bool>| *slot = v.unwrap_or(*slot);
        set(
            &mut prefs.email_notifications_enabled,
            self.email_notifications_enabled,
        );
        set(
            &mut prefs.tool_error_notifications_enabled,
            self.tool_error_notifications_enabled,
        );
        set(
            &mut prefs.run_failure_notifications_enabled,
            self.run_failure_notifications_enabled,
        );
        prefs
    }
}
