//! Run timelines and the account's recent events, kept in one capped log per account.
//!
//! Every event goes to the account's events log (`GET /events`, newest first), tagged with its
//! run id; a run's timeline (`GET /runs/{run_id}`, oldest first) is that run's topic of the
//! log, and the run list (`GET /runs`) is read from the log too. An event's id is its sequence
//! number in the log. Callers post events (`POST /events`); the engine writes `run_started`
//! when a lease or run carrying `metadata.run_id` acquires (a key-mode run defaults its run id
//! to the key) and `run_finished` when that lease completes, fails or is cancelled.
//!
//! One log per account is what bounds an account's memory: the log keeps the newest
//! [`EVENTS_CAPS`] (10,000 events, 8 MiB of JSON), whatever the number of runs, and the
//! oldest events go first, from the account list and from their run's timeline alike. The log
//! expires after the engine's retention without new events.

use super::Engine;
use crate::error::{Error, JsonMap, Result};
use crate::models::{
    AccountEvent, EventAck, EventsPage, NotificationPrefs, NotificationUpdate, RunEvent, RunList,
    RunStatus, RunSummary, RunTimeline,
};
use crate::store::{LeaseRecord, LeaseState, LogCaps, LogRef, Store};
use crate::time::ms;

/// What an account's events log keeps: its newest 10,000 events, at most 8 MiB of JSON in
/// all (the entry cap binds first for events under 840 bytes). Run timelines and the run list are read from it.
pub(crate) const EVENTS_CAPS: LogCaps = LogCaps {
    entries: 10_000,
    bytes: 8 * 1024 * 1024,
};
/// Largest accepted event, in bytes of JSON.
pub(crate) const MAX_EVENT_BYTES: usize = 16 * 1024;
/// Longest accepted run id, in bytes.
pub(crate) const MAX_RUN_ID_BYTES: usize = 256;
/// Longest accepted event type, in bytes.
pub(crate) const MAX_EVENT_TYPE_BYTES: usize = 64;
/// Largest page of `events` and `runs`.
pub(crate) const MAX_EVENTS_PAGE: u32 = 500;
/// Entries a scan of a whole log (`runs`, agent metrics) reads at a time.
pub(crate) const SCAN_SLICE: usize = 256;
/// Largest page of a run timeline.
pub(crate) const MAX_TIMELINE_PAGE: u32 = 2000;

const EVENTS_LOG: &str = "events";
const PREFS_LOG: &str = "prefs";
const PREFS_KEEP_MS: u64 = 10 * 365 * 86_400_000;
/// The preferences log keeps only the latest choice.
const PREFS_CAPS: LogCaps = LogCaps {
    entries: 1,
    bytes: 0,
};

/// A model as the JSON object a log keeps.
fn to_map(value: &impl serde::Serialize) -> Result<JsonMap> {
    match serde_json::to_value(value)? {
        serde_json::Value::Object(m) => Ok(m),
        _ => Ok(JsonMap::new()),
    }
}

/// A log entry read back as a model.
fn from_map<T: serde::de::DeserializeOwned>(map: JsonMap) -> Result<T> {
    Ok(serde_json::from_value(serde_json::Value::Object(map))?)
}

fn text_field<'a>(field: &str, value: &'a str, max: usize) -> Result<&'a str> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Error::Validation(format!("{field} must not be empty")));
    }
    if v.len() > max {
        return Err(Error::Validation(format!(
            "{field} is {} bytes long; the maximum is {max}",
            v.len()
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::Validation(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(v)
}

/// Checks a run id as `GET /runs/{run_id}` and `POST /events` take it: trimmed, 1 to 256 bytes,
/// no control characters. Returns the trimmed id.
pub(crate) fn validate_run_id(run_id: &str) -> Result<&str> {
    text_field("run_id", run_id, MAX_RUN_ID_BYTES)
}

fn page(field: &str, limit: u32, max: u32) -> Result<usize> {
    if limit == 0 || limit > max {
        return Err(Error::Validation(format!(
            "{field} must be between 1 and {max}, got {limit}"
        )));
    }
    Ok(limit as usize)
}

/// The run id a lease's metadata names, if it names a usable one.
pub(super) fn run_id_of(metadata: Option<&JsonMap>) -> Option<String> {
    run_id(metadata, "metadata.run_id").ok().flatten()
}

/// Refuses a lease or run whose `metadata.run_id` could never name a timeline (not a string
/// or a number, blank, too long, control characters): accepted, its `run_started` and
/// `run_finished` events would be dropped without a word. A lease without one is fine.
pub(super) fn check_run_id(metadata: Option<&JsonMap>) -> Result<()> {
    run_id(metadata, "metadata.run_id").map(drop)
}

/// The run a governed call's `args.run_id` names, checked as `metadata.run_id` is: a call
/// whose timeline could not be written is refused rather than run without one.
pub(super) fn args_run_id(args: &JsonMap) -> Result<Option<String>> {
    run_id(Some(args), "args.run_id")
}

/// The checked `run_id` of `map` (`field` names it in errors), trimmed; a number counts as
/// its digits.
fn run_id(map: Option<&JsonMap>, field: &str) -> Result<Option<String>> {
    let id = match map.and_then(|m| m.get("run_id")) {
        // `null` is how many clients write "none" (Python's `None`).
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(Error::Validation(format!(
                "{field} must be a string (or a number)"
            )));
        }
    };
    validate_run_id(&id).map(|id| Some(id.to_owned()))
}

fn string_of(metadata: Option<&JsonMap>, field: &str) -> Option<String> {
    metadata?.get(field)?.as_str().map(str::to_owned)
}

/// The `run_finished` event of a record that just reached a terminal or released state.
pub(super) fn finished_event(key: &str, rec: &LeaseRecord) -> Option<RunEvent> {
    let status = match rec.state {
        LeaseState::InProgress => return None,
        LeaseState::Completed => RunStatus::Completed.as_str(),
        LeaseState::Failed => RunStatus::Failed.as_str(),
        LeaseState::Released if rec.error_code.as_deref() == Some(super::view::CANCELLED) => {
            super::view::CANCELLED
        }
        LeaseState::Released => RunStatus::Failed.as_str(),
    };
    let run_id = run_id_of(rec.metadata.as_deref())?;
    let mut data = JsonMap::new();
    data.insert("key".into(), key.into());
    data.insert("version".into(), rec.version.into());
    if let Some(code) = &rec.error_code {
        data.insert("error_code".into(), code.clone().into());
    }
    if let Some(reason) = &rec.cancel_reason {
        data.insert("cancel_reason".into(), reason.clone().into());
    }
    if rec.state == LeaseState::Released {
        data.insert("retryable".into(), true.into());
    }
    if let Some(hash) = &rec.result_hash {
        data.insert("result_hash".into(), hash.clone().into());
    }
    Some(RunEvent {
        run_id,
        kind: "run_finished".into(),
        ts: rec.done_at_ms.map(|t| (t / 1000) as i64),
        status: Some(status.into()),
        agent_id: string_of(rec.metadata.as_deref(), "agent_id"),
        data: Some(data),
        ..RunEvent::default()
    })
}

/// The `run_started` event of an acquisition.
pub(super) fn started_event(
    key: &str,
    version: u64,
    metadata: Option<&JsonMap>,
) -> Option<RunEvent> {
    let run_id = run_id_of(metadata)?;
    let mut data = JsonMap::new();
    data.insert("key".into(), key.into());
    data.insert("version".into(), version.into());
    Some(RunEvent {
        run_id,
        kind: "run_started".into(),
        status: Some(RunStatus::InProgress.as_str().into()),
        agent_id: string_of(metadata, "agent_id"),
        data: Some(data),
        ..RunEvent::default()
    })
}

impl<S: Store> Engine<S> {
    fn log_expiry(&self, now: u64) -> u64 {
        now.saturating_add(ms(self.inner.config.retention))
    }

    /// Appends a validated event to the account log and its run's timeline; returns its id.
    async fn append_event(&self, mut event: RunEvent) -> Result<u64> {
        let now = self.now_ms();
        event.id = None;
        event.ts.get_or_insert((now / 1000) as i64);
        let map = to_map(&event)?;
        let log = LogRef::topic(EVENTS_LOG, &event.run_id);
        let expiry = self.log_expiry(now);
        self.inner
            .store
            .append_log(log, map, EVENTS_CAPS, now, expiry)
            .await
    }

    /// Writes an event the engine generated. Failing to write it never fails the operation
    /// that caused it; it is logged instead.
    pub(super) async fn record_run_event(&self, event: Option<RunEvent>) {
        let Some(event) = event else { return };
        // Boxed: most leases have no run id, and every holder operation would otherwise carry
        // the append's state in its own future.
        if let Err(e) = Box::pin(self.append_event(event)).await {
            tracing::warn!(error = %e, "could not write a run timeline event");
        }
    }

    /// Logs an account-level event (no run), best effort.
    pub(super) async fn log_account_event(&self, mut event: AccountEvent) {
        let now = self.now_ms();
        event.ts.get_or_insert((now / 1000) as i64);
        let expiry = self.log_expiry(now);
        let written = match to_map(&event) {
            Ok(map) => {
                self.inner
                    .store
                    .append_log(LogRef::whole(EVENTS_LOG), map, EVENTS_CAPS, now, expiry)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not write an account event");
        }
    }

    /// Appends `event` to its run's timeline (`POST /events`). `run_id` and `type` are
    /// trimmed and must not be blank; `ts` defaults to now (unix seconds); extra fields are
    /// kept verbatim; the whole event is at most 16 KiB of JSON.
    pub async fn post_event(&self, mut event: RunEvent) -> Result<EventAck> {
        event.run_id = validate_run_id(&event.run_id)?.to_owned();
        event.kind = text_field("type", &event.kind, MAX_EVENT_TYPE_BYTES)?.to_owned();
        let len = crate::validate::json_len(&event)?;
        if len > MAX_EVENT_BYTES {
            return Err(Error::Validation(format!(
                "the event is {len} bytes as JSON; the maximum is {MAX_EVENT_BYTES}"
            )));
        }
        let run_id = event.run_id.clone();
        let id = self.append_event(event).await?;
        Ok(EventAck {
            ok: true,
            event_id: Some(id),
            run_id,
        })
    }

    /// The account's recent events, newest first (`GET /events`): run events and
    /// `limit_reached` refusals. `limit` is 1 to 500.
    pub async fn events(&self, limit: u32, offset: u32) -> Result<EventsPage> {
        let n = page("limit", limit, MAX_EVENTS_PAGE)?;
        let log = self
            .inner
            .store
            .read_log(
                LogRef::whole(EVENTS_LOG),
                true,
                offset as usize,
                n,
                self.now_ms(),
            )
            .await?;
        let data = log
            .entries
            .into_iter()
            .map(|e| {
                let mut event: AccountEvent = from_map((*e.value).clone())?;
                event.id = Some(e.seq);
                Ok(event)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(EventsPage {
            data,
            total: log.total,
            limit,
            offset,
        })
    }

    /// A run's timeline, oldest first (`GET /runs/{run_id}`); `limit` is 1 to 2000. An unknown
    /// run, or one whose events the account's log no longer keeps, has an empty timeline.
    pub async fn run_timeline(&self, run_id: &str, limit: u32, offset: u32) -> Result<RunTimeline> {
        let run_id = validate_run_id(run_id)?;
        let n = page("limit", limit, MAX_TIMELINE_PAGE)?;
        let log = self
            .inner
            .store
            .read_log(
                LogRef::topic(EVENTS_LOG, run_id),
                false,
                offset as usize,
                n,
                self.now_ms(),
            )
            .await?;
        let events = log
            .entries
            .into_iter()
            .map(|e| {
                let mut event: RunEvent = from_map((*e.value).clone())?;
                event.id = Some(e.seq);
                Ok(event)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RunTimeline {
            run_id: run_id.to_owned(),
            total: log.total,
            events,
        })
    }

    /// Runs with events in the account's log, most recently active first (`GET /runs`). `q`
    /// keeps run ids starting with it.
    pub async fn runs(&self, limit: u32, offset: u32, q: Option<&str>) -> Result<RunList> {
        let n = page("limit", limit, MAX_EVENTS_PAGE)?;
        let now = self.now_ms();
        let store = &self.inner.store;
        // The log is read a slice at a time, keeping only each run's newest event: a call holds
        // one slice of events, not the whole log (up to 8 MiB), however many run at once.
        let mut seen = std::collections::HashSet::new();
        let mut latest = Vec::new();
        let mut from = 0;
        // Appends during the scan shift it towards older entries (repeats are skipped); the
        // bound ends it even under a constant stream of new events.
        while from < 2 * EVENTS_CAPS.entries {
            let slice = store
                .read_log(LogRef::whole(EVENTS_LOG), true, from, SCAN_SLICE, now)
                .await?;
            let len = slice.entries.len();
            for entry in slice.entries {
                let e = &entry.value;
                let Some(run_id) = e.get("run_id").and_then(|v| v.as_str()) else {
                    continue;
                };
                if q.is_some_and(|q| !run_id.starts_with(q)) || !seen.insert(run_id.to_owned()) {
                    continue;
                }
                let text = |name: &str| e.get(name).and_then(|v| v.as_str()).map(str::to_owned);
                latest.push(RunSummary {
                    run_id: run_id.to_owned(),
                    last_ts: e.get("ts").and_then(serde_json::Value::as_i64),
                    last_type: text("type"),
                    last_status: text("status"),
                    events_count: 0,
                });
            }
            if len < SCAN_SLICE {
                break;
            }
            from += len;
        }
        let total = latest.len() as u64;
        let mut items: Vec<RunSummary> = latest.into_iter().skip(offset as usize).take(n).collect();
        for item in &mut items {
            item.events_count = store
                .read_log(LogRef::topic(EVENTS_LOG, &item.run_id), true, 0, 0, now)
                .await?
                .total;
        }
        Ok(RunList { total, items })
    }

    /// Updates notification preferences (`POST /me/notifications`): only the given ones
    /// change; answers all three. This engine sends no notifications; it keeps the choices.
    pub async fn update_notifications(
        &self,
        update: NotificationUpdate,
    ) -> Result<NotificationPrefs> {
        if update.is_empty() {
            return Err(Error::Validation(
                "give at least one notification preference".into(),
            ));
        }
        let now = self.now_ms();
        let store = &self.inner.store;
        let prefs_log = LogRef::whole(PREFS_LOG);
        let current = store.read_log(prefs_log, true, 0, 1, now).await?;
        let prefs = match current.entries.first() {
            Some(prev) => from_map((*prev.value).clone())?,
            None => NotificationPrefs::default(),
        };
        let merged = update.apply(prefs);
        store
            .append_log(
                prefs_log,
                to_map(&merged)?,
                PREFS_CAPS,
                now,
                now + PREFS_KEEP_MS,
            )
            .await?;
        Ok(merged)
    }
}
