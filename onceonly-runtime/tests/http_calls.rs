//! What each call puts on the wire and how answers the real server never gives are read:
//! bodies, query strings, path encoding, error mapping on ordinary endpoints, and waiting
//! against a server that does not long-poll.

mod http_support;

use std::time::Duration;

use http_support::{Reply, Stub};
use onceonly_runtime::models::{RunEvent, RunStatus, UsageKind};
use onceonly_runtime::{Error, OnceOnly};
use serde_json::{Value, json};

const LEASE: &str =
    r#"{"ok":true,"status":"acquired","key":"k","lease_id":"lease_1","version":1,"ttl":300}"#;

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn lease_calls_send_the_documented_bodies() {
    let stub = Stub::start(vec![Reply::json(200, LEASE)]).await;
    let client = stub.client();
    let ai = client.ai();
    let lease = ai.lease("k").ttl(Duration::from_secs(300)).await.unwrap();
    assert_eq!(lease.status, RunStatus::Acquired);
    assert_eq!(lease.lease_id.as_deref(), Some("lease_1"));
    ai.lease("k").await.unwrap();
    ai.extend("k", "lease_1")
        .ttl(Duration::from_secs(60))
        .await
        .unwrap();
    ai.complete("k", "lease_1")
        .result(json!({"sent": true}).as_object().unwrap().clone())
        .result_hash("h1")
        .await
        .unwrap();
    ai.complete("k", "lease_1").await.unwrap();
    ai.fail("k", "lease_1", "card_declined").await.unwrap();
    ai.fail("k", "lease_1", "fn_error")
        .retryable(true)
        .error_hash("e1")
        .await
        .unwrap();
    ai.cancel("k", "lease_1").await.unwrap();
    ai.cancel("k", "lease_1").reason("shutdown").await.unwrap();

    let seen = stub.seen();
    let got: Vec<(String, Value)> = seen.iter().map(|s| (s.path.clone(), s.json())).collect();
    let want = [
        ("/v1/ai/lease", json!({"key": "k", "ttl": 300})),
        ("/v1/ai/lease", json!({"key": "k"})),
        (
            "/v1/ai/extend",
            json!({"key": "k", "lease_id": "lease_1", "ttl": 60}),
        ),
        (
            "/v1/ai/complete",
            json!({"key": "k", "lease_id": "lease_1", "result_hash": "h1", "result": {"sent": true}}),
        ),
        (
            "/v1/ai/complete",
            json!({"key": "k", "lease_id": "lease_1"}),
        ),
        (
            "/v1/ai/fail",
            json!({"key": "k", "lease_id": "lease_1", "error_code": "card_declined"}),
        ),
        // A retryable failure releases the key through `/ai/cancel`, which every server
        // honours; `error_code` (extension) lets onceonly-server keep the code as given.
        (
            "/v1/ai/cancel",
            json!({"key": "k", "lease_id": "lease_1", "reason": "fn_error", "error_code": "fn_error", "error_hash": "e1"}),
        ),
        ("/v1/ai/cancel", json!({"key": "k", "lease_id": "lease_1"})),
        (
            "/v1/ai/cancel",
            json!({"key": "k", "lease_id": "lease_1", "reason": "shutdown"}),
        ),
    ];
    let want: Vec<(String, Value)> = want.into_iter().map(|(p, b)| (p.to_owned(), b)).collect();
    assert_eq!(got, want);
    assert!(seen.iter().all(|s| s.method == "POST"));
}

#[tokio::test]
async fn a_stale_lease_id_is_lease_lost() {
    let stub = Stub::start(vec![Reply::json(
        409,
        r#"{"detail":{"error":"lease_lost","message":"another holder owns the key"}}"#,
    )])
    .await;
    let ai_client = stub.client();
    let ai = ai_client.ai();
    for e in [
        ai.extend("k", "old").await.unwrap_err(),
        ai.complete("k", "old").await.unwrap_err(),
        ai.fail("k", "old", "x").await.unwrap_err(),
        ai.cancel("k", "old").await.unwrap_err(),
    ] {
        assert!(
            matches!(&e, Error::LeaseLost { key } if key == "k"),
            "{e:?}"
        );
    }
    // The engine's other refusals come back as the same errors the embedded backend gives.
    let stub = Stub::start(vec![
        Reply::json(409, r#"{"detail":{"error":"in_progress","key":"k"}}"#),
        Reply::json(
            409,
            r#"{"detail":{"error":"previously_failed","key":"k","error_code":"fraud"}}"#,
        ),
        Reply::json(
            409,
            r#"{"detail":{"error":"blocked","policy_reason":"tool_blocked","decision":"blocked"}}"#,
        ),
    ])
    .await;
    let client = stub.client();
    assert!(matches!(
        client.ai().lease("k").await,
        Err(Error::InProgress { key, .. }) if key == "k"
    ));
    assert!(matches!(
        client.ai().lease("k").await,
        Err(Error::PreviouslyFailed { error_code, .. }) if error_code == "fraud"
    ));
    assert!(matches!(
        client.ai().run("k").await,
        Err(Error::Blocked { reason, .. }) if reason == "tool_blocked"
    ));
    // A conflicting repeat, and any other 409, which stays an API error.
    let stub = Stub::start(vec![
        Reply::json(
            409,
            r#"{"detail":{"error":"conflict","message":"another result","key":"k"}}"#,
        ),
        Reply::json(409, r#"{"detail":{"error":"something_else"}}"#),
    ])
    .await;
    assert!(matches!(
        stub.client().ai().complete("k", "l").await,
        Err(Error::Conflict { key, reason }) if key == "k" && reason == "another result"
    ));
    assert!(matches!(
        stub.client().ai().complete("k", "l").await,
        Err(Error::Api { status: 409, .. })
    ));
}

#[tokio::test]
async fn status_and_result_use_the_query_string() {
    let stub = Stub::start(vec![
        Reply::json(
            200,
            r#"{"ok":true,"status":"IN_PROGRESS","key":"a b&c=d/é","ttl_left":12.5,"lease_id":"lease_x","version":2,"first_seen_at":"2025-01-15T10:30:00Z","done_at":null,"result_hash":null,"error_code":null,"retry_after_sec":5}"#,
        ),
        Reply::json(
            200,
            r#"{"ok":true,"status":"completed","key":"a b&c=d/é","result":{"id":1},"result_hash":null,"error_code":null,"done_at":"2025-01-15T10:31:00Z"}"#,
        ),
        Reply::json(200, r#"{"ok":true,"status":"completed","key":"k","result":"not an object"}"#),
    ])
    .await;
    let client = stub.client();
    let key = "a b&c=d/é";
    let st = client.ai().status(key).await.unwrap();
    assert_eq!(st.status, RunStatus::InProgress);
    assert_eq!(
        (st.ttl_left, st.retry_after_sec, st.version),
        (Some(13), Some(5), 2)
    );
    let res = client.ai().result(key).await.unwrap();
    assert_eq!(res.result, json!({"id": 1}).as_object().cloned());
    // The SDKs keep only object results.
    assert_eq!(client.ai().result("k").await.unwrap().result, None);

    let seen = stub.seen();
    assert_eq!(seen[0].path, "/v1/ai/status");
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].query_pairs(), pairs(&[("key", key)]));
    assert_eq!(seen[1].path, "/v1/ai/result");
    assert_eq!(seen[1].query_pairs(), pairs(&[("key", key)]));
    // Content-Type on a GET without a body, as the official SDKs send it.
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert!(seen[0].body.is_empty());
}

#[tokio::test]
async fn an_answer_of_the_wrong_shape_is_a_decode_error() {
    let stub = Stub::start(vec![
        Reply::json(200, r#"{"status": 5}"#),
        Reply::raw(200, "text/html", b"<html>captive portal</html>"),
    ])
    .await;
    let client = stub.client();
    for _ in 0..2 {
        let e = client.ai().status("k").await.unwrap_err();
        assert!(matches!(e, Error::Decode(_)), "{e:?}");
    }
}

#[tokio::test]
async fn run_sends_key_mode_with_the_run_id_in_metadata() {
    let stub = Stub::start(vec![Reply::json(200, LEASE)]).await;
    let client = stub.client();
    let meta = json!({"agent_id": "a1", "run_id": "replaced"});
    client
        .ai()
        .run("report:2026-04")
        .ttl(Duration::from_secs(600))
        .metadata(meta.as_object().unwrap().clone())
        .run_id("  run-7 ")
        .await
        .unwrap();
    client.ai().run("plain").await.unwrap();
    let e = client.ai().run("k").run_id("   ").await.unwrap_err();
    assert!(
        matches!(e, Error::Validation(ref m) if m.contains("run_id")),
        "{e:?}"
    );

    let seen = stub.seen();
    assert_eq!(seen.len(), 2, "a blank run id must not reach the server");
    assert_eq!(seen[0].path, "/v1/ai/run");
    assert_eq!(
        seen[0].json(),
        json!({"key": "report:2026-04", "ttl": 600, "metadata": {"agent_id": "a1", "run_id": "run-7"}})
    );
    assert_eq!(seen[1].json(), json!({"key": "plain"}));
}

#[tokio::test]
async fn waiting_on_a_server_without_long_poll_polls_at_the_hint_and_never_spins() {
    let in_progress = r#"{"ok":true,"status":"in_progress","key":"k","retry_after_sec":0}"#;
    let stub = Stub::start(vec![
        Reply::json(200, in_progress),
        Reply::json(
            200,
            r#"{"ok":true,"status":"polling","key":"k","retry_after_sec":1}"#,
        ),
        Reply::json(200, r#"{"ok":true,"status":"completed","key":"k"}"#),
        Reply::json(
            200,
            r#"{"ok":true,"status":"completed","key":"k","result":{"n":1}}"#,
        ),
    ])
    .await;
    let res = stub
        .client()
        .ai()
        .wait("k")
        .timeout(Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(res.result, json!({"n": 1}).as_object().cloned());
    let seen = stub.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v1/ai/status",
            "/v1/ai/status",
            "/v1/ai/status",
            "/v1/ai/result"
        ]
    );
    // The long-poll extension is asked for ...
    let first = seen[0].query_pairs();
    assert_eq!(first[0], ("key".to_owned(), "k".to_owned()));
    assert_eq!(first[1].0, "wait_ms");
    // ... and ignored here, so polls are spaced by the hint, clamped to at least 0.5 s. The
    // times are arrivals at the stub, so one request delayed on a loaded machine shortens a
    // gap: the bounds keep a margin, and a client that spins would still be far below them.
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(250));
    assert!(seen[2].at - seen[1].at >= Duration::from_millis(600));
    assert!(seen[2].at - seen[0].at >= Duration::from_millis(1200));
}

#[tokio::test]
async fn a_wait_that_runs_out_is_a_timeout() {
    let stub = Stub::start(vec![Reply::json(
        200,
        r#"{"ok":true,"status":"in_progress","key":"k","retry_after_sec":5}"#,
    )])
    .await;
    let e = stub
        .client()
        .ai()
        .wait("k")
        .timeout(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    // One poll at the start; the 5 s hint is cut short by the deadline, then one last look.
    assert!(stub.seen().len() <= 3, "{}", stub.seen().len());
}

#[tokio::test]
async fn account_calls_send_the_documented_requests() {
    let stub = Stub::start(vec![
        Reply::json(200, r#"{"plan":"pro","is_active":true}"#),
        Reply::json(200, r#"{"email_notifications_enabled":false}"#),
        Reply::json(
            200,
            r#"{"plan":"starter","month":"2026-03","usage":128,"limit":100000,"requests_total_month":410,"blocked_total_month":7}"#,
        ),
        Reply::json(200, r#"{"plan":"starter","month":"2026-03","usage":3,"limit":null}"#),
        Reply::json(
            200,
            r#"{"plan":"starter","month":"2026-03","make":{"usage":1,"limit":null,"requests_total_month":2,"blocked_total_month":0,"charged_total_month":1,"polling_total_month":0},"ai":{"usage":5}}"#,
        ),
        Reply::json(200, r#"[{"type":"duplicate"}]"#),
        Reply::json(200, r#"{"ok":true,"event_id":123,"run_id":"run_1"}"#),
        Reply::json(
            200,
            r#"{"run_id":"run x/y","total":2,"events":[{"id":1,"ts":1705322400,"type":"run_started","status":null},{"ts":1705322401,"type":"note","message":"hi","extra_field":7}]}"#,
        ),
        Reply::json(200, r#"{"days":[]}"#),
    ])
    .await;
    let client = stub.client();
    let me = client.me().await.unwrap();
    assert_eq!((me.plan.as_str(), me.is_active), ("pro", true));
    let prefs = client
        .update_notifications()
        .email_notifications_enabled(false)
        .run_failure_notifications_enabled(true)
        .await
        .unwrap();
    // Members the answer leaves out read as their default (on).
    assert!(!prefs.email_notifications_enabled && prefs.run_failure_notifications_enabled);
    let usage = client.usage().await.unwrap();
    assert_eq!((usage.usage, usage.limit), (128, Some(100_000)));
    let ai = client.usage().kind(UsageKind::Ai).await.unwrap();
    assert_eq!((ai.usage, ai.limit), (3, None));
    let all = client.usage_all().await.unwrap();
    assert_eq!((all.make.charged_total_month, all.ai.usage), (1, 5));
    // A bare array is read as the page's data; the page is the one asked for.
    let events = client.events().limit(10).offset(20).await.unwrap();
    assert_eq!(
        (events.data.len(), events.limit, events.offset),
        (1, 10, 20)
    );
    assert_eq!(events.data[0].kind, "duplicate");
    let mut extra = onceonly_runtime::models::JsonMap::new();
    extra.insert("status".into(), "overridden".into());
    extra.insert("custom".into(), json!([1]));
    client
        .post_event(RunEvent {
            run_id: " run_1 ".into(),
            kind: "tool_call".into(),
            status: Some("started".into()),
            tool: Some("send_email".into()),
            extra,
            ..RunEvent::default()
        })
        .await
        .unwrap();
    let timeline = client.get_run_timeline(" run x/y ").limit(5).await.unwrap();
    assert_eq!(timeline.total, 2);
    assert_eq!(timeline.events.len(), 2);
    assert_eq!(timeline.events[0].run_id, "run x/y");
    assert_eq!(timeline.events[1].message.as_deref(), Some("hi"));
    assert_eq!(timeline.events[1].extra["extra_field"], json!(7));
    client.metrics("2026-04-01", "2026-04-30").await.unwrap();

    let seen = stub.seen();
    let line = |i: usize| {
        (
            seen[i].method.as_str().to_owned(),
            seen[i].path.clone(),
            seen[i].query_pairs(),
        )
    };
    assert_eq!(line(0), ("GET".into(), "/v1/me".into(), vec![]));
    assert_eq!(
        line(1),
        ("POST".into(), "/v1/me/notifications".into(), vec![])
    );
    assert_eq!(
        seen[1].json(),
        json!({"email_notifications_enabled": false, "run_failure_notifications_enabled": true})
    );
    assert_eq!(
        line(2),
        ("GET".into(), "/v1/usage".into(), pairs(&[("kind", "make")]))
    );
    assert_eq!(line(3).2, pairs(&[("kind", "ai")]));
    assert_eq!(line(4), ("GET".into(), "/v1/usage/all".into(), vec![]));
    assert_eq!(
        line(5),
        (
            "GET".into(),
            "/v1/events".into(),
            pairs(&[("limit", "10"), ("offset", "20")])
        )
    );
    assert_eq!(line(6), ("POST".into(), "/v1/events".into(), vec![]));
    // Trimmed; extra members are merged last and win.
    assert_eq!(
        seen[6].json(),
        json!({"run_id": "run_1", "type": "tool_call", "status": "overridden", "tool": "send_email", "custom": [1]})
    );
    // The run id is one path segment, fully escaped.
    assert_eq!(
        line(7),
        (
            "GET".into(),
            "/v1/runs/run%20x%2Fy".into(),
            pairs(&[("limit", "5"), ("offset", "0")])
        )
    );
    assert_eq!(
        line(8),
        (
            "GET".into(),
            "/v1/metrics".into(),
            pairs(&[("from_day", "2026-04-01"), ("to_day", "2026-04-30")])
        )
    );
}

#[tokio::test]
async fn bad_arguments_are_refused_before_any_request() {
    let stub = Stub::start(vec![Reply::json(200, "{}")]).await;
    let client = stub.client();
    let validation = |r: Result<_, Error>, what: &str| match r {
        Err(Error::Validation(m)) => assert!(m.contains(what), "{m}"),
        other => panic!("{other:?}"),
    };
    validation(
        client.update_notifications().await.map(|_| ()),
        "at least one",
    );
    validation(
        client
            .post_event(RunEvent {
                run_id: "  ".into(),
                kind: "note".into(),
                ..RunEvent::default()
            })
            .await
            .map(|_| ()),
        "run_id",
    );
    validation(
        client
            .post_event(RunEvent {
                run_id: "r".into(),
                kind: "".into(),
                ..RunEvent::default()
            })
            .await
            .map(|_| ()),
        "type",
    );
    validation(client.get_run_timeline(" ").await.map(|_| ()), "run_id");
    validation(client.get_run_timeline("..").await.map(|_| ()), "run_id");
    validation(client.get_run_timeline(".").await.map(|_| ()), "run_id");
    assert!(stub.seen().is_empty(), "{:?}", stub.seen());
}

#[tokio::test]
async fn generic_error_mapping() {
    let stub = Stub::start(vec![
        Reply::json(401, r#"{"detail":"Missing Authorization Bearer token"}"#),
        Reply::json(403, r#"{"detail":"Invalid API key"}"#),
        Reply::json(403, r#"{"detail":{"error":"api_key_disabled"}}"#),
        Reply::json(
            403,
            r#"{"detail":{"error":"feature_not_available","message":"Upgrade to Pro"}}"#,
        ),
        Reply::json(
            403,
            r#"{"detail":{"error":"plan_limit","message":"FREE plan limit: max 1 tools"}}"#,
        ),
        Reply::json(
            402,
            r#"{"detail":{"error":"payment_required","highlights":"Plan limit reached","plan":"free","limit":1000,"usage":1001,"upgrade_url":""}}"#,
        ),
        Reply::json(
            422,
            r#"{"detail":[{"type":"missing","loc":["body","key"],"msg":"Field required","input":{}}]}"#,
        ),
        Reply::json(429, r#"{"detail":{"error":"rate_limited"}}"#).header("Retry-After", "15"),
        Reply::json(429, "{}").header("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"),
        Reply::json(404, r#"{"detail":{"error":"not_found","message":"no such run"}}"#),
        Reply::json(400, r#"{"detail":"bad request"}"#),
    ])
    .await;
    let client = stub.client();
    let next = async || client.me().await.unwrap_err();
    assert!(
        matches!(next().await, Error::Unauthorized { detail } if detail == "Missing Authorization Bearer token")
    );
    assert!(matches!(next().await, Error::Unauthorized { detail } if detail == "Invalid API key"));
    assert!(matches!(next().await, Error::Unauthorized { .. }));
    match next().await {
        Error::Api {
            status: 403,
            detail,
        } => {
            assert_eq!(detail["error"], json!("feature_not_available"))
        }
        e => panic!("{e:?}"),
    }
    // The TypeScript rule: a 403 that is not about the key is not "unauthorized".
    match next().await {
        Error::Api {
            status: 403,
            detail,
        } => assert_eq!(detail["error"], json!("plan_limit")),
        e => panic!("{e:?}"),
    }
    match next().await {
        Error::OverLimit(refusal) => {
            assert_eq!((refusal.limit, refusal.usage), (Some(1000), Some(1001)));
            assert_eq!(refusal.plan.as_deref(), Some("free"));
        }
        e => panic!("{e:?}"),
    }
    assert!(matches!(next().await, Error::Validation(m) if m == "body.key: Field required"));
    match next().await {
        Error::RateLimited { retry_after } => {
            assert_eq!(retry_after, Some(Duration::from_secs(15)))
        }
        e => panic!("{e:?}"),
    }
    assert!(matches!(
        next().await,
        Error::RateLimited { retry_after: None }
    ));
    match next().await {
        e @ Error::Api { status: 404, .. } => {
            assert!(e.to_string().contains("no such run"), "{e}")
        }
        e => panic!("{e:?}"),
    }
    assert!(
        matches!(next().await, Error::Api { status: 400, detail } if detail == json!("bad request"))
    );
}

#[tokio::test]
async fn release_lock_uses_the_extension_route_and_reads_unsupported_elsewhere() {
    let stub = Stub::start(vec![
        Reply::json(200, r#"{"ok":true,"key":"k","released":true}"#),
        Reply::json(200, r#"{"ok":true,"key":"k","released":false}"#),
        Reply::json(404, r#"{"detail":"Not Found"}"#),
    ])
    .await;
    let client = stub.client();
    assert!(client.release_lock("k").await.unwrap());
    assert!(!client.release_lock("k").await.unwrap());
    let e = client.release_lock("k").await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Unsupported {
                operation: "release_lock",
                ..
            }
        ),
        "{e:?}"
    );
    let seen = stub.seen();
    assert_eq!(seen[0].path, "/v1/check-lock/release");
    assert_eq!(seen[0].json(), json!({"key": "k"}));
}

#[tokio::test]
async fn release_own_lock_sends_the_lock_id_the_check_lock_answered_with() {
    let stub = Stub::start(vec![
        Reply::json(
            200,
            r#"{"success":true,"status":"locked","key":"k","ttl":60,"lock_id":"lock_abc"}"#,
        ),
        Reply::json(200, r#"{"ok":true,"key":"k","released":false}"#),
        // A duplicate answer that (wrongly) carries a lock id: it is not ours to release.
        Reply::json(
            200,
            r#"{"success":false,"status":"duplicate","key":"k","lock_id":"lock_abc"}"#,
        ),
    ])
    .await;
    let client = stub.client();
    let lock = client.check_lock("k").await.unwrap();
    assert_eq!(lock.lock_id.as_deref(), Some("lock_abc"));
    assert!(!client.release_own_lock(&lock).await.unwrap());
    let dup = client.check_lock("k").await.unwrap();
    assert_eq!(dup.lock_id, None);
    assert!(!client.release_own_lock(&dup).await.unwrap());
    let seen = stub.seen();
    assert_eq!(seen.len(), 3, "no release is sent for a duplicate");
    assert_eq!(seen[1].path, "/v1/check-lock/release");
    assert_eq!(seen[1].json(), json!({"key": "k", "lock_id": "lock_abc"}));
}

#[tokio::test]
async fn base_url_paths_are_kept_and_the_user_agent_can_be_set() {
    let stub = Stub::start(vec![Reply::json(200, "{}")]).await;
    let client = OnceOnly::builder()
        .api_key(http_support::KEY)
        .base_url(format!("{}/custom/prefix//", stub.url()))
        .user_agent("my-service/1.2")
        .build()
        .unwrap();
    client.me().await.unwrap();
    let seen = stub.only();
    assert_eq!(seen.path, "/custom/prefix/me");
    assert_eq!(seen.header("user-agent"), Some("my-service/1.2"));
}

#[tokio::test]
async fn builder_and_env_errors_are_clear() {
    let e = OnceOnly::builder()
        .base_url("http://127.0.0.1:1")
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("ONCEONLY_API_KEY"), "{e}");
    for (builder, what) in [
        (
            OnceOnly::builder().api_key("").base_url("http://h"),
            "empty",
        ),
        (
            OnceOnly::builder()
                .api_key("k")
                .base_url("http://h")
                .timeout(Duration::ZERO),
            "timeout",
        ),
        (
            OnceOnly::builder().api_key("k").base_url("https://"),
            "base URL",
        ),
    ] {
        match builder.build() {
            Err(Error::Config(m)) => assert!(m.contains(what), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    // An API key alone means the hosted API.
    let hosted = OnceOnly::builder().api_key("once_live_x").build().unwrap();
    assert_eq!(hosted.backend().name(), "http");
    assert!(format!("{hosted:?}").contains("https://api.onceonly.tech/v1"));
    let hosted = OnceOnly::new("once_live_x");
    assert!(!format!("{hosted:?}").contains("once_live_x"));
}

#[tokio::test]
async fn repro_replay_reads_the_stored_result_when_the_lease_answer_has_none() {
    // The wire only promises `status: completed` from /ai/lease; the value is in /ai/result.
    let stub = Stub::start(vec![
        Reply::json(200, r#"{"ok":true,"status":"completed","key":"k"}"#),
        Reply::json(
            200,
            r#"{"ok":true,"status":"completed","key":"k","result":{"value":"sent"}}"#,
        ),
    ])
    .await;
    let value: String = stub
        .client()
        .ai()
        .run_fn("k", || async {
            Err::<String, _>(Error::Validation("must not run".into()))
        })
        .await
        .unwrap();
    assert_eq!(value, "sent");
    let paths: Vec<String> = stub.seen().iter().map(|s| s.path.clone()).collect();
    assert_eq!(paths, ["/v1/ai/lease", "/v1/ai/result"]);
}

/// The hosted API caps a lease's TTL per plan: the heartbeat follows the TTL granted (here 1 s
/// for 60 s asked), not the one asked for, or the lease would lapse before its first beat.
#[tokio::test]
async fn the_heartbeat_follows_the_ttl_the_backend_granted() {
    let stub = Stub::start(vec![
        Reply::json(
            200,
            r#"{"ok":true,"status":"acquired","key":"k","ttl":1,"lease_id":"lease_1","version":1}"#,
        ),
        // Every extend, then the completion.
        Reply::json(
            200,
            r#"{"ok":true,"status":"acquired","key":"k","lease_id":"lease_1","version":1,"ttl":1}"#,
        ),
    ])
    .await;
    let value: u32 = stub
        .client()
        .ai()
        .run_fn("k", || async {
            tokio::time::sleep(Duration::from_millis(1200)).await;
            Ok::<_, Error>(7)
        })
        .ttl(Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(value, 7);
    let paths: Vec<String> = stub.seen().iter().map(|s| s.path.clone()).collect();
    let extends = paths.iter().filter(|p| *p == "/v1/ai/extend").count();
    // Every third of the granted second: about three beats in 1.2 s (none at a third of 60 s).
    assert!((2..=5).contains(&extends), "{paths:?}");
    assert_eq!(paths.last().map(String::as_str), Some("/v1/ai/complete"));
}

/// A `complete` that fails in a way worth retrying (a 503 here) is sent again while the lease
/// has time: giving up would leave the lease to expire, and the next caller would run the side
/// effect a second time.
#[tokio::test]
async fn a_completion_that_fails_for_a_moment_is_sent_again() {
    let stub = Stub::start(vec![
        Reply::json(
            200,
            r#"{"ok":true,"status":"acquired","key":"k","ttl":60,"lease_id":"lease_1","version":1}"#,
        ),
        Reply::json(503, r#"{"detail":"store unavailable"}"#),
        Reply::json(200, r#"{"ok":true,"status":"completed","key":"k"}"#),
    ])
    .await;
    let value: u32 = stub
        .client()
        .ai()
        .run_fn("k", || async { Ok::<_, Error>(7) })
        .await
        .unwrap();
    assert_eq!(value, 7);
    let seen = stub.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/v1/ai/lease", "/v1/ai/complete", "/v1/ai/complete"]
    );
    assert_eq!(
        seen[1].json(),
        seen[2].json(),
        "the same completion, sent again"
    );
}

/// Giving the key back after the closure's `Err` is sent again after a failure worth retrying,
/// as a completion is: giving up would leave the key locked for the lease's TTL.
#[tokio::test]
async fn a_release_that_fails_for_a_moment_is_sent_again() {
    let stub = Stub::start(vec![
        Reply::json(
            200,
            r#"{"ok":true,"status":"acquired","key":"k","ttl":60,"lease_id":"lease_1","version":1}"#,
        ),
        Reply::json(503, r#"{"detail":"store unavailable"}"#),
        Reply::json(
            200,
            r#"{"ok":true,"status":"failed","key":"k","error_code":"fn_error","retryable":true}"#,
        ),
    ])
    .await;
    let failed = stub
        .client()
        .ai()
        .run_fn("k", || async {
            Err::<u32, _>(Error::Validation("declined".into()))
        })
        .await;
    assert!(matches!(failed, Err(Error::Validation(_))), "{failed:?}");
    let seen = stub.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert_eq!((paths[0], paths[1]), ("/v1/ai/lease", paths[2]));
    assert_eq!(
        seen[1].json(),
        seen[2].json(),
        "the same release, sent again"
    );
    assert_eq!(
        seen[2].json()["error_code"],
        "fn_error",
        "{}",
        seen[2].json()
    );
}
