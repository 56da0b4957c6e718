//! Answers of the hosted API written more loosely than this crate's own server writes them,
//! from a scripted server: a completion answered `{"ok": true}` or with no body at all, times
//! in naive ISO or Unix seconds, numbers as strings. The official SDKs copy such answers
//! without checking their types; the client reads them too, rather than failing a call whose
//! effect already happened on the server.

mod http_support;

use http_support::{Reply, Stub};
use onceonly_runtime::Error;
use onceonly_runtime::models::{RunEvent, RunStatus};

const ACQUIRED: &str =
    r#"{"ok":true,"status":"acquired","key":"k","lease_id":"lease_1","version":"1","ttl":"60"}"#;

/// A completion the server took but answered without a `status` is a success: the closure's
/// value is returned, not a decode error for a run that did happen.
#[tokio::test]
async fn a_completion_answered_without_a_status_is_a_success() {
    for answer in [
        Reply::json(200, r#"{"ok":true}"#),
        Reply::raw(200, "application/json", b""),
        Reply::raw(204, "text/plain", b""),
    ] {
        let stub = Stub::start(vec![Reply::json(200, ACQUIRED), answer]).await;
        let value: u32 = stub
            .client()
            .ai()
            .run_fn("k", || async { Ok::<_, Error>(7) })
            .await
            .unwrap();
        assert_eq!(value, 7);
        let paths: Vec<String> = stub.seen().iter().map(|s| s.path.clone()).collect();
        assert_eq!(paths, ["/v1/ai/lease", "/v1/ai/complete"]);
    }
}

/// A stored result whose times are naive ISO replays: the times are read as UTC.
#[tokio::test]
async fn a_replay_with_naive_times_is_read() {
    let stub = Stub::start(vec![Reply::json(
        200,
        r#"{"ok":false,"status":"completed","key":"k","result":{"value":"sent"},
            "first_seen_at":"2025-01-15T10:30:00.123456","done_at":1736937000}"#,
    )])
    .await;
    let lease = stub.client().ai().lease("k").await.unwrap();
    assert_eq!(lease.status, RunStatus::Completed);
    let done = lease.done_at.expect("done_at read from Unix seconds");
    assert_eq!(done.to_rfc3339(), "2025-01-15T10:30:00+00:00");
    let first = lease.first_seen_at.expect("first_seen_at read as UTC");
    assert_eq!(first.timestamp_millis(), 1_736_937_000_123);
    let value: String = stub
        .client()
        .ai()
        .run_fn("k", || async { Ok::<_, Error>("again".to_owned()) })
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(value, "sent");
}

/// An event the server filed, acknowledged with its id as a string, is not an error (the
/// caller would post it again, and events are never deduplicated).
#[tokio::test]
async fn an_event_id_written_as_a_string_is_read() {
    let stub = Stub::start(vec![Reply::json(
        200,
        r#"{"ok":"true","event_id":"123","run_id":"run_1"}"#,
    )])
    .await;
    let ack = stub
        .client()
        .post_event(RunEvent {
            run_id: "run_1".into(),
            kind: "note".into(),
            ..RunEvent::default()
        })
        .await
        .unwrap();
    assert_eq!(ack.event_id, Some(123));
}

/// A lease answer that says it acquired but cannot be read (its `result` is not an object)
/// is given back at once: returned as an error, its lease would hold the key for its TTL
/// with nobody knowing its id.
#[tokio::test]
async fn an_unreadable_answer_that_acquired_is_given_back() {
    let stub = Stub::start(vec![
        Reply::json(
            200,
            r#"{"ok":true,"status":"acquired","key":"k","lease_id":"lease_9","result":"x"}"#,
        ),
        Reply::json(200, r#"{"ok":true,"status":"failed","key":"k"}"#),
    ])
    .await;
    let got = stub
        .client()
        .ai()
        .run_fn("k", || async { Ok::<_, Error>(1u8) })
        .await;
    assert!(matches!(got, Err(Error::Decode(_))), "{got:?}");
    let seen = stub.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, ["/v1/ai/lease", "/v1/ai/cancel"]);
    assert_eq!(seen[1].json()["lease_id"], "lease_9");
}

/// A redirect is not followed: a `302` would turn the check-lock into a body-less `GET`
/// whose answer would be read as the lock decision. It is an error naming its status, sent
/// once, and the target is never asked.
#[tokio::test]
async fn a_redirect_is_an_error_not_a_second_request() {
    let stub = Stub::start(vec![
        Reply::json(302, r#"{"detail":"moved"}"#).header("location", "/v1/elsewhere"),
        Reply::json(200, r#"{"success":true,"status":"locked","key":"k"}"#),
    ])
    .await;
    let client = onceonly_runtime::OnceOnly::builder()
        .base_url(stub.url())
        .api_key("once_test_key")
        .fail_open(false)
        .build()
        .unwrap();
    let got = client.check_lock("k").await;
    assert!(
        matches!(got, Err(Error::Api { status: 302, .. })),
        "{got:?}"
    );
    assert_eq!(stub.seen().len(), 1, "the redirect was not followed");
}

/// A deletion answered `204` with no body is the deletion it was asked for.
#[tokio::test]
async fn a_tool_deletion_answered_without_a_body_is_a_deletion() {
    let stub = Stub::start(vec![Reply::raw(204, "text/plain", b"")]).await;
    let gone = stub.client().gov().delete_tool("crm.lookup").await.unwrap();
    assert_eq!((gone.ok, gone.deleted.as_str()), (true, "crm.lookup"));
}

/// A check-lock that fails open reports the TTL it asked for, rounded up to whole seconds as
/// the request sent it (1.5 s is 2).
#[tokio::test]
async fn a_fail_open_lock_reports_the_ttl_sent() {
    let stub = Stub::start(vec![Reply::json(503, r#"{"detail":"down"}"#)]).await;
    let client = onceonly_runtime::OnceOnly::builder()
        .base_url(stub.url())
        .api_key("once_test_key")
        .max_retries(0)
        .fail_open(true)
        .build()
        .unwrap();
    let lock = client
        .check_lock("k")
        .ttl(std::time::Duration::from_millis(1500))
        .await
        .unwrap();
    assert!(lock.fail_open.is_some(), "{lock:?}");
    assert_eq!(lock.ttl, 2);
    assert_eq!(stub.seen()[0].json()["ttl"], 2);
}

/// A 2xx whose body is not JSON did not come from the API (a captive portal, a proxy's page):
/// a completion answered that way is an error, not a result taken as stored.
#[tokio::test]
async fn a_completion_answered_by_a_page_that_is_not_json_is_an_error() {
    let stub = Stub::start(vec![
        Reply::json(200, ACQUIRED),
        Reply::raw(200, "text/html", b"<html>captive portal</html>"),
    ])
    .await;
    let got = stub
        .client()
        .ai()
        .run_fn("k", || async { Ok::<_, Error>(7u32) })
        .await;
    assert!(matches!(got, Err(Error::Decode(_))), "{got:?}");
}

/// The hosted API does not document `/metrics`: what it sends beyond the model's members is
/// kept, not dropped.
#[tokio::test]
async fn metrics_keep_what_the_model_does_not_name() {
    let stub = Stub::start(vec![Reply::json(
        200,
        r#"{"from_day":"2026-01-01","to_day":"2026-01-02","series":[{"d":1}]}"#,
    )])
    .await;
    let m = stub
        .client()
        .metrics("2026-01-01", "2026-01-02")
        .await
        .unwrap();
    assert_eq!(m.from_day, "2026-01-01");
    assert_eq!(m.extra["series"][0]["d"], 1);
}

/// List items and policies are read as loosely as a whole answer: numbers as strings are
/// converted, a non-numeric id reads as absent, and a poster's own `status` is kept as written.
#[tokio::test]
async fn events_and_policies_with_loose_members_are_read() {
    let stub = Stub::start(vec![
        Reply::json(
            200,
            r#"{"run_id":"r","events":[{"id":"7","type":"step","status":"OK","duration_ms":"12.5"}]}"#,
        ),
        Reply::json(
            200,
            r#"{"data":[{"id":"evt_1","type":"note","run_id":null}],"total":"1"}"#,
        ),
        Reply::json(
            200,
            r#"{"agent_id":"a","policy":{"max_actions_per_hour":"100","max_spend_usd_per_day":"2.5","team":"ops","version":"v2"}}"#,
        ),
        Reply::json(200, r#"{"agent_id":"a","is_enabled":"true"}"#),
    ])
    .await;
    let client = stub.client();
    let timeline = client.get_run_timeline("r").await.unwrap();
    let step = &timeline.events[0];
    assert_eq!(
        (step.id, step.duration_ms, step.status.as_deref()),
        (Some(7), Some(13), Some("OK"))
    );
    let page = client.events().await.unwrap();
    assert_eq!(
        (page.data[0].id, page.data[0].run_id.as_deref()),
        (None, None)
    );
    let policy = client.gov().get_policy("a").await.unwrap();
    assert_eq!(
        (policy.max_actions_per_hour, policy.max_spend_usd_per_day),
        (Some(100), Some(2.5))
    );
    // Members the model does not name are the policy's own, kept as written.
    assert_eq!(
        (&policy.extra["team"], &policy.extra["version"]),
        (&"ops".into(), &"v2".into())
    );
    let status = client.gov().enable_agent("a", "").await.unwrap();
    assert!(status.is_enabled, "{status:?}");
}
