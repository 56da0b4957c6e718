//! Check-lock over HTTP against a scripted server: the request it sends and every answer
//! shape the OnceOnly API allows, including those `onceonly-server` never produces.

mod http_support;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use http_support::{KEY, Reply, Stub};
use onceonly_runtime::Error;
use onceonly_runtime::models::JsonMap;
use serde_json::json;

const LOCKED: &str =
    r#"{"success":true,"status":"locked","key":"k","ttl":3600,"first_seen_at":null}"#;

#[tokio::test]
async fn check_lock_sends_the_documented_request() {
    let stub = Stub::start(vec![Reply::json(200, LOCKED)]).await;
    let client = stub.client();
    let mut meta = JsonMap::new();
    meta.insert("source".into(), "stripe".into());
    client
        .check_lock("stripe:evt_1")
        .ttl(Duration::from_secs(60))
        .metadata(meta)
        .request_id("req-42")
        .await
        .unwrap();
    client.check_lock("stripe:evt_2").await.unwrap();

    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    let first = &seen[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/v1/check-lock");
    assert_eq!(
        first.header("authorization"),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(first.header("content-type"), Some("application/json"));
    let ua = first.header("user-agent").unwrap();
    assert_eq!(ua, concat!("onceonly-rust/", env!("CARGO_PKG_VERSION")));
    assert_eq!(first.header("x-request-id"), Some("req-42"));
    assert_eq!(
        first.json(),
        json!({"key": "stripe:evt_1", "ttl": 60, "metadata": {"source": "stripe"}})
    );
    // Absent optionals are omitted, not sent as null; no request id without one.
    assert_eq!(seen[1].json(), json!({"key": "stripe:evt_2"}));
    assert_eq!(seen[1].header("x-request-id"), None);
}

#[tokio::test]
async fn a_sub_second_ttl_is_sent_rounded_up() {
    let stub = Stub::start(vec![Reply::json(200, LOCKED)]).await;
    stub.client()
        .check_lock("k")
        .ttl(Duration::from_millis(1500))
        .await
        .unwrap();
    assert_eq!(stub.only().json()["ttl"], json!(2));
}

#[tokio::test]
async fn documented_answers_are_read() {
    let stub = Stub::start(vec![
        Reply::json(200, LOCKED)
            .header("X-OnceOnly-Status", "locked")
            .header("X-Request-Id", "r1"),
        Reply::json(
            200,
            r#"{"success":false,"status":"duplicate","key":"k","ttl":3600,"first_seen_at":"2025-01-15T10:30:00Z"}"#,
        ),
    ])
    .await;
    let client = stub.client();
    let first = client.check_lock("k").await.unwrap();
    assert!(first.should_proceed() && !first.is_duplicate());
    assert_eq!(first.ttl, 3600);
    assert_eq!(first.request_id.as_deref(), Some("r1"));
    assert_eq!(first.status_code, 200);
    assert_eq!(first.fail_open, None);
    let again = client.check_lock("k").await.unwrap();
    assert!(again.is_duplicate() && !again.locked);
    assert_eq!(
        again.first_seen_at,
        Some(Utc.with_ymd_and_hms(2025, 1, 15, 10, 30, 0).unwrap())
    );
    assert_eq!(again.request_id, None);
}

#[tokio::test]
async fn duplicate_mode_409_is_a_duplicate_not_an_error() {
    let stub = Stub::start(vec![
        Reply::json(
            409,
            r#"{"detail":{"error":"Duplicate blocked","first_seen_at":"2025-01-15T10:30:00Z"}}"#,
        )
        .header("X-Request-Id", "req-9"),
    ])
    .await;
    let res = stub
        .client()
        .check_lock("stripe:evt_1")
        .ttl(Duration::from_secs(120))
        .await
        .unwrap();
    assert!(res.duplicate && !res.locked);
    assert_eq!(res.key, "stripe:evt_1");
    assert_eq!(res.ttl, 120);
    assert_eq!(res.status_code, 409);
    assert_eq!(res.request_id.as_deref(), Some("req-9"));
    assert_eq!(
        res.first_seen_at,
        Some(Utc.with_ymd_and_hms(2025, 1, 15, 10, 30, 0).unwrap())
    );
    assert_eq!(res.fail_open, None);
}

#[tokio::test]
async fn a_409_without_a_body_is_still_a_duplicate() {
    let stub = Stub::start(vec![Reply::raw(409, "text/plain", b"")]).await;
    let res = stub.client().check_lock("k").await.unwrap();
    assert!(res.duplicate);
    assert_eq!((res.ttl, res.first_seen_at), (0, None));
}

#[tokio::test]
async fn status_only_in_the_header_is_honoured() {
    let stub = Stub::start(vec![
        Reply::json(200, "{}").header("X-OnceOnly-Status", " LOCKED "),
        Reply::json(200, r#"{"success":true}"#).header("X-OnceOnly-Status", "duplicate"),
        Reply::raw(200, "text/html", b"<html>ok</html>").header("x-onceonly-status", "locked"),
    ])
    .await;
    let client = stub.client();
    assert!(client.check_lock("a").await.unwrap().should_proceed());
    // The header beats `success`.
    assert!(client.check_lock("b").await.unwrap().is_duplicate());
    // A body that is not JSON still has the header.
    assert!(client.check_lock("c").await.unwrap().should_proceed());
}

#[tokio::test]
async fn body_status_beats_the_header() {
    let stub = Stub::start(vec![
        Reply::json(200, r#"{"status":"Duplicate"}"#).header("X-OnceOnly-Status", "locked"),
    ])
    .await;
    assert!(stub.client().check_lock("k").await.unwrap().is_duplicate());
}

#[tokio::test]
async fn without_any_status_signal_success_decides_and_silence_is_a_duplicate() {
    let stub = Stub::start(vec![
        Reply::json(200, r#"{"success":true}"#),
        Reply::json(200, r#"{"success":1}"#),
        Reply::json(200, r#"{"status":"weird","success":"yes"}"#),
        Reply::json(200, "{}"),
        Reply::raw(200, "application/json", b""),
        Reply::json(200, r#"{"success":0}"#),
    ])
    .await;
    let client = stub.client();
    for want_locked in [true, true, true, false, false, false] {
        let res = client.check_lock("k").await.unwrap();
        assert_eq!(res.locked, want_locked, "{res:?}");
        assert_eq!(res.duplicate, !want_locked);
    }
}

#[tokio::test]
async fn key_and_ttl_fall_back_to_the_request() {
    let stub = Stub::start(vec![
        Reply::json(200, r#"{"status":"locked","key":null,"ttl":null}"#),
        Reply::json(200, r#"{"status":"locked","key":"server-key","ttl":0}"#),
    ])
    .await;
    let client = stub.client();
    let a = client
        .check_lock("mine")
        .ttl(Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!((a.key.as_str(), a.ttl), ("mine", 30));
    // TypeScript rule: a present 0 is kept.
    let b = client
        .check_lock("mine")
        .ttl(Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!((b.key.as_str(), b.ttl), ("server-key", 0));
}

#[tokio::test]
async fn check_lock_401_and_403_are_always_unauthorized() {
    let stub = Stub::start(vec![
        Reply::json(401, r#"{"detail":"Missing Authorization Bearer token"}"#),
        Reply::json(
            403,
            r#"{"detail":{"error":"feature_not_available","message":"Upgrade"}}"#,
        ),
        Reply::json(403, r#"{"detail":{"error":"plan_limit"}}"#),
    ])
    .await;
    let client = stub.client();
    match client.check_lock("k").await {
        Err(Error::Unauthorized { detail }) => {
            assert_eq!(detail, "Missing Authorization Bearer token")
        }
        other => panic!("{other:?}"),
    }
    for _ in 0..2 {
        let e = client.check_lock("k").await.unwrap_err();
        assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    }
}

#[tokio::test]
async fn check_lock_402_422_429_are_errors_even_with_fail_open() {
    let stub = Stub::start(vec![
        Reply::json(
            402,
            r#"{"detail":{"error":"payment_required","plan":"free","limit":1000,"usage":1001}}"#,
        ),
        Reply::json(
            422,
            r#"{"detail":[{"loc":["body","key"],"msg":"Field required"}]}"#,
        ),
        Reply::json(429, r#"{"detail":{"error":"rate_limited"}}"#).header("Retry-After", "15"),
    ])
    .await;
    let client = stub.client();
    assert!(client.fail_open());
    match client.check_lock("k").await {
        Err(Error::OverLimit(refusal)) => assert_eq!(refusal.limit, Some(1000)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.check_lock("k").await,
        Err(Error::Validation(m)) if m == "body.key: Field required"
    ));
    assert!(matches!(
        client.check_lock("k").await,
        Err(Error::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(15)
    ));
}
