//! Core endpoints of the OnceOnly API: account, usage, events, run timelines, metrics.

use serde_json::Value;

use super::transport::{Request, Transport};
use super::wire::{self, call, call_map};
use crate::error::Result;
use crate::models::{
    AccountInfo, EventAck, EventsPage, Metrics, NotificationPrefs, NotificationUpdate, RunEvent,
    RunList, RunTimeline, Usage, UsageAll, UsageKind,
};

pub(crate) async fn me(t: &Transport) -> Result<AccountInfo> {
    call(t, Request::get(&["me"])).await
}

pub(crate) async fn update_notifications(
    t: &Transport,
    update: NotificationUpdate,
) -> Result<NotificationPrefs> {
    call(t, Request::post(&["me", "notifications"], &update)?).await
}

pub(crate) async fn usage(t: &Transport, kind: UsageKind) -> Result<Usage> {
    call(t, Request::get(&["usage"]).query("kind", kind.as_str())).await
}

pub(crate) async fn usage_all(t: &Transport) -> Result<UsageAll> {
    let mut map = call_map(t, Request::get(&["usage", "all"])).await?;
    for bucket in UsageKind::ALL.map(UsageKind::as_str) {
        if let Some(Value::Object(b)) = map.get_mut(bucket) {
            wire::tidy(b);
        }
    }
    wire::decode(map)
}

pub(crate) async fn events(t: &Transport, limit: u32, offset: u32) -> Result<EventsPage> {
    let req = Request::get(&["events"])
        .query("limit", limit)
        .query("offset", offset);
    let mut map = call_map(t, req).await?;
    // The hosted API documents only `data`; the page it answered is the one asked for.
    map.entry("limit").or_insert(limit.into());
    map.entry("offset").or_insert(offset.into());
    if let Some(Value::Array(events)) = map.get_mut("data") {
        events.retain(Value::is_object);
        events
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .for_each(wire::tidy_members);
    }
    wire::decode(map)
}

pub(crate) async fn post_event(t: &Transport, event: RunEvent) -> Result<EventAck> {
    // Through a `Value` so that extra members replace named ones instead of repeating them.
    let body = serde_json::to_value(&event)?;
    // Each post is a new event: a repeat after a lost answer would file it twice.
    call(t, Request::post(&["events"], &body)?.unrepeatable()).await
}

pub(crate) async fn runs(
    t: &Transport,
    limit: u32,
    offset: u32,
    q: Option<&str>,
) -> Result<RunList> {
    let mut req = Request::get(&["runs"])
        .query("limit", limit)
        .query("offset", offset);
    if let Some(q) = q {
        req = req.query("q", q);
    }
    call(t, req).await
}

pub(crate) async fn run_timeline(
    t: &Transport,
    run_id: &str,
    limit: u32,
    offset: u32,
) -> Result<RunTimeline> {
    let req = Request::get(&["runs", wire::path_id("run_id", run_id)?])
        .query("limit", limit)
        .query("offset", offset);
    let mut map = call_map(t, req).await?;
    if !map.contains_key("run_id") {
        map.insert("run_id".into(), run_id.into());
    }
    // Timeline items need not repeat their run id.
    let run_id = map.get("run_id").cloned().unwrap_or(Value::Null);
    if let Some(Value::Array(events)) = map.get_mut("events") {
        events.retain(Value::is_object);
        for event in events.iter_mut().filter_map(Value::as_object_mut) {
            wire::tidy_members(event);
            event.entry("run_id").or_insert_with(|| run_id.clone());
        }
    }
    wire::decode(map)
}

pub(crate) async fn metrics(t: &Transport, from_day: &str, to_day: &str) -> Result<Metrics> {
    let req = Request::get(&["metrics"])
        .query("from_day", from_day)
        .query("to_day", to_day);
    call(t, req).await
}
