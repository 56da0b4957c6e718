//! Account-level calls: who am I, usage, events, run timelines, metrics, notifications.
//!
//! These are thin typed front-ends to the [`Backend`](crate::Backend). The HTTP API answers
//! all of them (the hosted API and `onceonly-server` alike), and so does the embedded engine,
//! which keeps an account of its own; a backend without accounts answers
//! [`Error::Unsupported`].
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> onceonly_runtime::Result<()> {
//! use onceonly_runtime::OnceOnly;
//! use onceonly_runtime::models::{RunEvent, UsageKind};
//!
//! let client = OnceOnly::new("once_live_...");
//! let me = client.me().await?;
//! let ai = client.usage().kind(UsageKind::Ai).await?;
//! println!("plan {}: {} of {:?} AI runs this month", ai.plan, ai.usage, ai.limit);
//!
//! client.post_event(RunEvent {
//!     run_id: "run_support_001".into(),
//!     kind: "note".into(),
//!     message: Some("escalated to a human".into()),
//!     ..RunEvent::default()
//! }).await?;
//! let timeline = client.get_run_timeline("run_support_001").limit(50).await?;
//! for event in &timeline.events {
//!     println!("{:?} {} {:?}", event.ts, event.kind, event.message);
//! }
//! # Ok(()) }
//! ```

use std::future::IntoFuture;

use crate::backend::BoxFuture;
use crate::client::OnceOnly;
use crate::error::{Error, Result};
use crate::models::{
    AccountInfo, EventAck, EventsPage, Metrics, NotificationPrefs, NotificationUpdate, RunEvent,
    RunList, RunTimeline, Usage, UsageAll, UsageKind,
};

/// Default page size of [`OnceOnly::events`].
pub(crate) const DEFAULT_EVENTS_LIMIT: u32 = 50;
/// Default page size of [`OnceOnly::get_run_timeline`].
pub(crate) const DEFAULT_TIMELINE_LIMIT: u32 = 200;

fn non_blank(field: &str, value: String) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Error::Validation(format!("{field} must not be empty")));
    }
    Ok(if trimmed.len() == value.len() {
        value
    } else {
        trimmed.to_owned()
    })
}

impl OnceOnly {
    /// The account behind the API key (`GET /me`): plan, key preview, totals.
    pub async fn me(&self) -> Result<AccountInfo> {
        self.backend().me().await
    }

    /// Changes notification preferences (`POST /me/notifications`); only the preferences set
    /// on the builder are sent, and at least one must be.
    pub fn update_notifications(&self) -> UpdateNotifications<'_> {
        UpdateNotifications {
            client: self,
            update: NotificationUpdate::default(),
        }
    }

    /// This month's usage of one bucket (`GET /usage`; option `.kind(..)`, default
    /// [`UsageKind::Make`], the check-lock bucket).
    pub fn usage(&self) -> GetUsage<'_> {
        GetUsage {
            client: self,
            kind: UsageKind::default(),
        }
    }

    /// This month's usage of both buckets (`GET /usage/all`).
    pub async fn usage_all(&self) -> Result<UsageAll> {
        self.backend().usage_all().await
    }

    /// Recent account-level events, newest first (`GET /events`; options `.limit(..)`,
    /// default 50, and `.offset(..)`).
    pub fn events(&self) -> GetEvents<'_> {
        GetEvents {
            client: self,
            limit: DEFAULT_EVENTS_LIMIT,
            offset: 0,
        }
    }

    /// Appends an event to a run's timeline (`POST /events`). `run_id` and `kind` are trimmed
    /// and must not be blank; extra members are sent at the top level and win over the named
    /// fields.
    pub async fn post_event(&self, mut event: RunEvent) -> Result<EventAck> {
        event.run_id = non_blank("run_id", event.run_id)?;
        event.kind = non_blank("type", event.kind)?;
        self.backend().post_event(event).await
    }

    /// A run's timeline, oldest first (`GET /runs/{run_id}`; options `.limit(..)`, default
    /// 200, and `.offset(..)`). The run id is trimmed and must not be blank.
    pub fn get_run_timeline(&self, run_id: impl Into<String>) -> GetRunTimeline<'_> {
        GetRunTimeline {
            client: self,
            run_id: run_id.into(),
            limit: DEFAULT_TIMELINE_LIMIT,
            offset: 0,
        }
    }

    /// Daily account metrics between two days, inclusive (`GET /metrics`, days as
    /// `YYYY-MM-DD`).
    pub async fn metrics(&self, from_day: &str, to_day: &str) -> Result<Metrics> {
        self.backend().metrics(from_day, to_day).await
    }

    /// Runs with recent events, most recently active first (`GET /runs`; options
    /// `.limit(..)`, default 50, `.offset(..)` and `.q(..)`, a run-id prefix).
    pub fn list_runs(&self) -> ListRuns<'_> {
        ListRuns {
            client: self,
            limit: DEFAULT_EVENTS_LIMIT,
            offset: 0,
            q: None,
        }
    }
}

/// A `POST /me/notifications` being built; `.await` sends it.
#[derive(Debug)]
#[must_use = "a call does nothing until it is awaited"]
pub struct UpdateNotifications<'a> {
    client: &'a OnceOnly,
    update: NotificationUpdate,
}

impl UpdateNotifications<'_> {
    /// E-mail notifications in general.
    pub fn email_notifications_enabled(mut self, on: bool) -> Self {
        self.update.email_notifications_enabled = Some(on);
        self
    }

    /// Notifications when a registered tool fails.
    pub fn tool_error_notifications_enabled(mut self, on: bool) -> Self {
        self.update.tool_error_notifications_enabled = Some(on);
        self
    }

    /// Notifications when a run fails.
    pub fn run_failure_notifications_enabled(mut self, on: bool) -> Self {
        self.update.run_failure_notifications_enabled = Some(on);
        self
    }
}

impl<'a> IntoFuture for UpdateNotifications<'a> {
    type Output = Result<NotificationPrefs>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        if self.update.is_empty() {
            return Box::pin(async {
                Err(Error::Validation(
                    "update_notifications requires at least one preference".into(),
                ))
            });
        }
        self.client.backend().update_notifications(self.update)
    }
}

/// A `GET /usage` being built; `.await` sends it.
#[derive(Debug)]
#[must_use = "a call does nothing until it is awaited"]
pub struct GetUsage<'a> {
    client: &'a OnceOnly,
    kind: UsageKind,
}

impl GetUsage<'_> {
    /// Which bucket: check-locks ([`UsageKind::Make`]) or leases and runs ([`UsageKind::Ai`]).
    pub fn kind(mut self, kind: UsageKind) -> Self {
        self.kind = kind;
        self
    }
}

impl<'a> IntoFuture for GetUsage<'a> {
    type Output = Result<Usage>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        self.client.backend().usage(self.kind)
    }
}

/// A `GET /events` being built; `.await` sends it.
#[derive(Debug)]
#[must_use = "a call does nothing until it is awaited"]
pub struct GetEvents<'a> {
    client: &'a OnceOnly,
    limit: u32,
    offset: u32,
}

impl GetEvents<'_> {
    /// Page size (default 50).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// Events to skip (default 0).
    pub fn offset(mut self, offset: u32) -> Self {
        self.offset = offset;
        self
    }
}

impl<'a> IntoFuture for GetEvents<'a> {
    type Output = Result<EventsPage>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        self.client.backend().events(self.limit, self.offset)
    }
}

/// A `GET /runs/{run_id}` being built; `.await` sends it.
#[derive(Debug)]
#[must_use = "a call does nothing until it is awaited"]
pub struct GetRunTimeline<'a> {
    client: &'a OnceOnly,
    run_id: String,
    limit: u32,
    offset: u32,
}

impl GetRunTimeline<'_> {
    /// Page size (default 200).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// Events to skip (default 0).
    pub fn offset(mut self, offset: u32) -> Self {
        self.offset = offset;
        self
    }
}

impl<'a> IntoFuture for GetRunTimeline<'a> {
    type Output = Result<RunTimeline>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let run_id = non_blank("run_id", self.run_id)?;
            self.client
                .backend()
                .run_timeline(&run_id, self.limit, self.offset)
                .await
        })
    }
}

/// A `GET /runs` being built; `.await` sends it.
#[derive(Debug)]
#[must_use = "a call does nothing until it is awaited"]
pub struct ListRuns<'a> {
    client: &'a OnceOnly,
    limit: u32,
    offset: u32,
    q: Option<String>,
}

impl ListRuns<'_> {
    /// Page size (default 50, at most 500).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// Runs to skip (default 0).
    pub fn offset(mut self, offset: u32) -> Self {
        self.offset = offset;
        self
    }

    /// Only runs whose id starts with `prefix`.
    pub fn q(mut self, prefix: impl Into<String>) -> Self {
        self.q = Some(prefix.into());
        self
    }
}

impl<'a> IntoFuture for ListRuns<'a> {
    type Output = Result<RunList>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            self.client
                .backend()
                .runs(self.limit, self.offset, self.q.as_deref())
                .await
        })
    }
}
