//! Request bodies as the wire wants them (absent optionals omitted), and the tolerant reading
//! of answers into the typed models.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::errors::{self, Scrub};
use super::transport::{Request, Response, Transport};
use crate::error::{Error, JsonMap, Result};

/// Whole seconds, rounded up (a 1.5 s TTL is sent as 2, never as 1 or 0).
pub(crate) fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A TTL as the wire carries it, in whole seconds, after the same checks the embedded engine
/// makes (1 s to 30 days): a 500 ms TTL is refused here, not rounded up to a second.
pub(crate) fn ttl_secs(ttl: Option<Duration>) -> Result<Option<u64>> {
    ttl.map(|d| crate::validate::ttl("ttl", d).map(|()| secs(d)))
        .transpose()
}

/// `{"key", "ttl"?, "metadata"?}`: check-lock, lease and key-mode run.
#[derive(Serialize)]
pub(crate) struct KeyBody<'a> {
    pub(crate) key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ttl: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<&'a JsonMap>,
}

/// `{"key", "lock_id"?}`: the check-lock release extension.
#[derive(Serialize)]
pub(crate) struct ReleaseBody<'a> {
    pub(crate) key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lock_id: Option<&'a str>,
}

/// Sends `req` and reads a 2xx answer as a map, anything else as an error.
pub(crate) async fn call_map(t: &Transport, req: Request) -> Result<JsonMap> {
    let resp = t.send(req).await?;
    read_map(&resp, t.scrub())
}

/// Sends `req` and reads a 2xx answer into `T`.
pub(crate) async fn call<T: DeserializeOwned>(t: &Transport, req: Request) -> Result<T> {
    decode(call_map(t, req).await?)
}

pub(crate) fn read_map(resp: &Response, scrub: Scrub<'_>) -> Result<JsonMap> {
    if resp.is_success() {
        errors::json_success_map(&resp.body).map_err(Error::Decode)
    } else {
        Err(errors::status_error(
            resp.status,
            &resp.headers,
            &resp.body,
            scrub,
        ))
    }
}

/// Reads an answer map into a model after [`tidy`]: `null` members count as absent, `status`
/// is read case-insensitively, and known members written another way are converted or read
/// as absent. Nested lists (events) are tidied by their callers; what is still the wrong type
/// for the model after that is an [`Error::Decode`].
pub(crate) fn decode<T: DeserializeOwned>(mut map: JsonMap) -> Result<T> {
    tidy(&mut map);
    serde_json::from_value(Value::Object(map)).map_err(Error::Decode)
}

/// An id as a single path segment (percent-encoded by the transport). `.` and `..` would be
/// read as path navigation by every URL parser on the way, so they are refused before sending.
pub(crate) fn path_id<'a>(field: &str, id: &'a str) -> Result<&'a str> {
    match id {
        "" => Err(Error::Validation(format!("{field} must not be empty"))),
        "." | ".." => Err(Error::Validation(format!(
            "{field} `{id}` cannot be used in a URL path"
        ))),
        id => Ok(id),
    }
}

/// The objects of a list answer, as the official SDKs read them: a bare array (which the
/// transport wraps as `{"data": [..]}`), `{"items": [..]}` or `{"data": [..]}`. Items that are
/// not objects are skipped; an answer with no list is an empty one.
pub(crate) fn list_items(mut map: JsonMap) -> impl Iterator<Item = JsonMap> {
    let list = ["items", "data"]
        .into_iter()
        .find_map(|name| match map.remove(name) {
            Some(Value::Array(items)) => Some(items),
            _ => None,
        })
        .unwrap_or_default();
    list.into_iter().filter_map(|item| match item {
        Value::Object(item) => Some(item),
        _ => None,
    })
}

/// Sets `name` to `value` unless the answer already has a non-null one: answers that do not
/// repeat what the request named (an agent id, a tool's scope) read as if they had.
pub(crate) fn default_member(map: &mut JsonMap, name: &str, value: impl Into<Value>) {
    if map.get(name).is_none_or(Value::is_null) {
        map.insert(name.to_owned(), value.into());
    }
}

/// Whether `e` is a 404 answer whose `detail.error` is `code`.
pub(crate) fn is_404(e: &Error, code: &str) -> bool {
    matches!(e, Error::Api { status: 404, detail } if errors::error_code(Some(detail)) == Some(code))
}

/// Reads a 404 whose `detail.error` is `code` as `to`; every other error passes unchanged.
pub(crate) fn on_404(
    code: &'static str,
    to: impl FnOnce() -> Error,
) -> impl FnOnce(Error) -> Error {
    move |e| if is_404(&e, code) { to() } else { e }
}

/// Members the models read as whole non-negative numbers, in an answer and its events.
const WHOLE_NUMBERS: [&str; 19] = [
    "total",
    "offset",
    "events_count",
    "ttl",
    "ttl_left",
    "retry_after_sec",
    "version",
    "charged",
    "usage",
    "limit",
    "requests_total_month",
    "total_actions",
    "blocked_actions",
    "timeout_ms",
    "max_retries",
    "max_actions_per_hour",
    "duration_ms",
    "event_id",
    "id",
];

/// Members the models read as amounts (USD).
const AMOUNTS: [&str; 3] = ["spend_usd", "total_spend_usd", "max_spend_usd_per_day"];

/// Members the models read as flags.
const FLAGS: [&str; 8] = [
    "ok",
    "allowed",
    "retryable",
    "enabled",
    "is_enabled",
    "has_secret",
    "queued",
    "dry_run",
];

/// Members the models read as times: RFC 3339 for the models, whatever the server wrote.
const TIMES: [&str; 5] = [
    "first_seen_at",
    "done_at",
    "disabled_at",
    "current_period_start",
    "current_period_end",
];

/// Makes an answer map fit the models, as tolerantly as the official SDKs read answers, which
/// copy what they get without checking its type: a member of a known name written another
/// way (a number as a string or with a fraction, a flag as `"true"`, a time in naive ISO or as
/// Unix seconds) is converted, and one that cannot be read as its kind is dropped (read as
/// absent) rather than failing the whole answer. A call whose answer failed to decode may have
/// changed state on the server all the same (a lease acquired, an event filed).
pub(crate) fn tidy(map: &mut JsonMap) {
    if let Some(Value::String(s)) = map.get_mut("status") {
        *s = s.trim().to_ascii_lowercase();
    }
    // `metadata` is this project's extension of the lease answer (an object); a server that
    // uses the name for something else has not sent it.
    if map.get("metadata").is_some_and(|m| !m.is_object()) {
        map.remove("metadata");
    }
    tidy_members(map);
}

/// [`tidy`] for an item of a list (an event): nulls dropped and known members
/// converted, but its `status` and `metadata` are the poster's own and kept as written.
pub(crate) fn tidy_members(map: &mut JsonMap) {
    map.retain(|_, v| !v.is_null());
    convert(map, &WHOLE_NUMBERS, whole_number);
    convert(map, &AMOUNTS, amount);
    convert(map, &FLAGS, |v| match v {
        Value::Bool(b) => Some(Value::Bool(*b)),
        Value::Number(n) => Some(Value::Bool(n.as_f64().is_some_and(|f| f != 0.0))),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(Value::Bool(true)),
            "false" | "0" | "no" | "" => Some(Value::Bool(false)),
            _ => None,
        },
        _ => None,
    });
    convert(map, &TIMES, |v| {
        timestamp(v).map(|t| Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)))
    });
}

/// A policy as [`tidy_members`] reads an item, but only its own limits are converted: its
/// other members are the policy's extensions, kept as written.
pub(crate) fn tidy_policy(map: &mut JsonMap) {
    map.retain(|_, v| !v.is_null());
    convert(map, &["max_actions_per_hour"], whole_number);
    convert(map, &["max_spend_usd_per_day"], amount);
}

/// Replaces each present member named in `names` by `read` of it, or removes it when `read`
/// cannot make it out.
fn convert(map: &mut JsonMap, names: &[&str], read: impl Fn(&Value) -> Option<Value>) {
    for name in names {
        if let Some(v) = map.get_mut(*name) {
            match read(v) {
                Some(read) => *v = read,
                None => {
                    map.remove(*name);
                }
            }
        }
    }
}

/// A whole non-negative number: `retry_after_sec: 0.5` or `ttl_left: "12.3"` is rounded up,
/// not failed.
fn whole_number(v: &Value) -> Option<Value> {
    let f = number(v)?;
    (f.is_finite() && f >= 0.0).then(|| Value::from(f.ceil() as u64))
}

/// An amount (USD), written as a number or a string.
fn amount(v: &Value) -> Option<Value> {
    number(v)
        .filter(|f| f.is_finite())
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
}

/// A JSON number, or a string that holds one.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An RFC 3339 timestamp, a naive ISO one (read as UTC), or Unix seconds.
pub(crate) fn timestamp(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => {
            let s = s.trim();
            DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&Utc))
                .ok()
                .or_else(|| {
                    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                        .ok()
                        .map(|n| n.and_utc())
                })
        }
        Value::Number(n) => {
            let secs = n.as_f64()?;
            DateTime::from_timestamp_millis((secs * 1000.0) as i64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_up() {
        assert_eq!(secs(Duration::from_secs(60)), 60);
        assert_eq!(secs(Duration::from_millis(1500)), 2);
        assert_eq!(secs(Duration::from_millis(1)), 1);
        assert_eq!(secs(Duration::ZERO), 0);
    }

    #[test]
    fn answers_are_read_tolerantly() {
        let map = serde_json::json!({
            "status": " Completed ", "key": "k", "version": null, "retry_after_sec": 0.5,
            "ttl_left": -1.5, "ttl": -3, "ok": true, "metadata": "not ours"
        });
        let Value::Object(mut map) = map else {
            unreachable!()
        };
        tidy(&mut map);
        assert_eq!(
            Value::Object(map),
            serde_json::json!({"status": "completed", "key": "k", "retry_after_sec": 1, "ok": true})
        );
        let mut held = JsonMap::new();
        held.insert("metadata".into(), serde_json::json!({"fingerprint": "ab"}));
        tidy(&mut held);
        assert_eq!(held["metadata"]["fingerprint"], "ab");
    }

    #[test]
    fn timestamps() {
        let want = DateTime::parse_from_rfc3339("2025-01-15T10:30:00Z").unwrap();
        for v in [
            serde_json::json!("2025-01-15T10:30:00Z"),
            serde_json::json!("2025-01-15T10:30:00+00:00"),
            serde_json::json!("2025-01-15T10:30:00"),
            serde_json::json!(1736937000),
        ] {
            assert_eq!(timestamp(&v), Some(want.with_timezone(&Utc)), "{v}");
        }
        assert_eq!(timestamp(&serde_json::json!("yesterday")), None);
        assert_eq!(timestamp(&serde_json::json!(null)), None);
    }

    #[test]
    fn members_written_another_way_are_converted_or_dropped() {
        let Value::Object(mut map) = serde_json::json!({
            "ttl": "1800", "version": "1", "event_id": "123", "id": "evt_1",
            "total_actions": 450.0, "spend_usd": "0.5", "allowed": "false", "ok": 1,
            "retryable": "maybe", "done_at": "2025-01-15T10:30:00.5", "first_seen_at": "",
            "disabled_at": 1736937000, "name": "123"
        }) else {
            unreachable!()
        };
        tidy(&mut map);
        assert_eq!(
            Value::Object(map),
            serde_json::json!({
                "ttl": 1800, "version": 1, "event_id": 123, "total_actions": 450,
                "spend_usd": 0.5, "allowed": false, "ok": true,
                "done_at": "2025-01-15T10:30:00.500Z", "disabled_at": "2025-01-15T10:30:00Z",
                "name": "123"
            })
        );
    }

    #[test]
    fn bodies_omit_absent_optionals() {
        let body = KeyBody {
            key: "k",
            ttl: None,
            metadata: None,
        };
        assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"key":"k"}"#);
    }
}
