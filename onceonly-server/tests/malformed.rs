//! Client mistakes get a 4xx with a JSON `detail`, never a 5xx, a plain-text body or a panic.

mod common;

use common::{A, Answer, B, F, TestServer, start, start_with};
use reqwest::{Method, StatusCode};
use serde_json::json;

const POSTS: [&str; 10] = [
    "check-lock",
    "check-lock/release",
    "ai/run",
    "ai/lease",
    "ai/extend",
    "ai/complete",
    "ai/fail",
    "ai/cancel",
    "ai/jobs/claim",
    "events",
];

fn assert_client_error(a: &Answer, what: &str) {
    assert!(
        a.status.is_client_error(),
        "{what}: expected 4xx, got {} {}",
        a.status,
        a.text
    );
    assert!(
        a.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: JSON content type, got {:?}",
        a.header("content-type")
    );
    let detail = a.detail();
    assert!(
        detail.as_str().is_some_and(|s| !s.trim().is_empty())
            || detail.get("error").is_some_and(|e| e.is_string()),
        "{what}: a readable detail, got {detail}"
    );
}

async fn raw_post(s: &TestServer, path: &str, body: &[u8]) -> Answer {
    s.raw(Method::POST, path, Some(A), Some(body.to_vec()), &[])
        .await
}

#[tokio::test]
async fn bad_json_empty_and_non_object_bodies_are_422() {
    let s = start().await;
    for path in POSTS {
        for body in [
            &b"{bad json"[..],
            b"",
            b"   ",
            b"[1,2]",
            br#"["k", 60]"#,
            b"\"key\"",
            b"null",
            b"{} trailing",
        ] {
            let a = raw_post(&s, path, body).await;
            assert_client_error(&a, &format!("{path} {:?}", String::from_utf8_lossy(body)));
            assert_eq!(
                a.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{path}: {}",
                a.text
            );
        }
    }
}

#[tokio::test]
async fn missing_fields_and_wrong_types_name_the_field() {
    let s = start().await;
    let cases = [
        ("check-lock", json!({}), "key"),
        ("check-lock", json!({"key": 5}), "key"),
        ("check-lock", json!({"key": "k", "ttl": "60"}), "ttl"),
        ("check-lock", json!({"key": "k", "ttl": -1}), "ttl"),
        (
            "check-lock",
            json!({"key": "k", "metadata": "x"}),
            "metadata",
        ),
        (
            "check-lock",
            json!({"key": "k", "metadata": {}, "meta": {}}),
            "meta",
        ),
        ("ai/lease", json!({"key": ["k"]}), "key"),
        ("ai/lease", json!({"key": "k", "ttl": true}), "ttl"),
        ("ai/extend", json!({"key": "k"}), "lease_id"),
        (
            "ai/complete",
            json!({"key": "k", "lease_id": "l", "result": [1]}),
            "result",
        ),
        (
            "ai/complete",
            json!({"key": "k", "lease_id": 7}),
            "lease_id",
        ),
        (
            "ai/fail",
            json!({"key": "k", "lease_id": "l"}),
            "error_code",
        ),
        (
            "ai/fail",
            json!({"key": "k", "lease_id": "l", "error_code": "e", "retryable": "yes"}),
            "retryable",
        ),
        ("ai/cancel", json!({"lease_id": "l"}), "key"),
        (
            "check-lock/release",
            json!({"key": "k", "lock_id": 12}),
            "lock_id",
        ),
        (
            "check-lock/release",
            json!({"key": "k", "lock_id": null}),
            "lock_id",
        ),
        ("events", json!({"type": "note"}), "run_id"),
        ("events", json!({"run_id": "r"}), "type"),
        (
            "events",
            json!({"run_id": "r", "type": "note", "ts": "now"}),
            "ts",
        ),
        (
            "events",
            json!({"run_id": "r", "type": "note", "data": 3}),
            "data",
        ),
        (
            "me/notifications",
            json!({"email_notifications_enabled": "no"}),
            "email_notifications_enabled",
        ),
    ];
    for (path, body, field) in cases {
        let a = s.post(A, path, body.clone()).await;
        assert_client_error(&a, &format!("{path} {body}"));
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {body}: {}",
            a.text
        );
        let text = a.detail().to_string();
        assert!(
            text.contains(field),
            "{path} {body}: detail should name `{field}`: {text}"
        );
    }
}

#[tokio::test]
async fn invalid_values_are_422_from_the_engine() {
    let s = start().await;
    let long_key = "k".repeat(257);
    let big_meta = json!({"blob": "x".repeat(3000)});
    let cases = [
        ("check-lock", json!({"key": ""})),
        ("check-lock", json!({"key": "   "})),
        ("check-lock", json!({"key": "a\nb"})),
        ("check-lock", json!({"key": long_key})),
        ("check-lock", json!({"key": "k", "ttl": 0})),
        ("check-lock", json!({"key": "k", "ttl": 1e12})),
        ("check-lock", json!({"key": "k", "metadata": big_meta})),
        ("check-lock/release", json!({"key": ""})),
        ("check-lock/release", json!({"key": "k", "lock_id": " "})),
        ("ai/lease", json!({"key": long_key})),
        ("ai/lease", json!({"key": "k", "ttl": 0.5})),
        ("ai/run", json!({"key": ""})),
        ("ai/run", json!({})),
        ("ai/run", json!({"key": "k", "agent_id": "a", "tool": "t"})),
        ("ai/extend", json!({"key": "k", "lease_id": ""})),
        (
            "ai/fail",
            json!({"key": "k", "lease_id": "l", "error_code": ""}),
        ),
        (
            "ai/fail",
            json!({"key": "k", "lease_id": "l", "error_code": "a\u{0}"}),
        ),
        (
            "ai/fail",
            json!({"key": "k", "lease_id": "l", "error_code": "x", "error_hash": "h".repeat(257)}),
        ),
        (
            "ai/complete",
            json!({"key": "k", "lease_id": "l", "result_hash": "h".repeat(3_000_000)}),
        ),
        (
            "ai/complete",
            json!({"key": "k", "lease_id": "l", "result_hash": "a\nb"}),
        ),
        // A run id no timeline could be read under is refused, not silently left untracked.
        (
            "ai/lease",
            json!({"key": "k", "metadata": {"run_id": "x\u{2}y"}}),
        ),
        (
            "ai/lease",
            json!({"key": "k", "metadata": {"run_id": "  "}}),
        ),
        (
            "ai/lease",
            json!({"key": "k", "metadata": {"run_id": "r".repeat(300)}}),
        ),
        (
            "ai/lease",
            json!({"key": "k", "metadata": {"run_id": {"id": 1}}}),
        ),
        (
            "ai/run",
            json!({"key": "k", "metadata": {"run_id": "a\u{1}"}}),
        ),
        ("events", json!({"run_id": "  ", "type": "note"})),
        ("events", json!({"run_id": "r", "type": ""})),
        (
            "events",
            json!({"run_id": "r", "type": "note", "message": "m".repeat(20_000)}),
        ),
        ("me/notifications", json!({})),
        ("me/notifications", json!({"sms_enabled": true})),
    ];
    for (path, body) in cases {
        let a = s.post(A, path, body.clone()).await;
        assert_client_error(&a, &format!("{path} {body}"));
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {body}: {}",
            a.text
        );
    }
    // Nothing was stored by the refused calls.
    assert_eq!(s.get_ok(A, "usage").await["usage"], 0);
    assert_eq!(s.get_ok(A, "events").await["total"], 0);
}

#[tokio::test]
async fn a_bad_acquisition_header_is_422_and_acquires_nothing() {
    let s = start().await;
    let long = "i".repeat(257);
    for path in ["ai/lease", "ai/run"] {
        for value in ["", "   ", "a b", long.as_str()] {
            let a = s
                .raw(
                    Method::POST,
                    path,
                    Some(A),
                    Some(br#"{"key":"idem"}"#.to_vec()),
                    &[("X-OnceOnly-Acquisition", value)],
                )
                .await;
            assert_client_error(&a, &format!("{path} {value:?}"));
            assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
            assert!(
                a.detail().to_string().contains("x-onceonly-acquisition"),
                "{}",
                a.text
            );
        }
    }
    let status = s.get_ok(A, "ai/status?key=idem").await;
    assert_eq!(status["status"], "not_found", "nothing was acquired");
}

#[tokio::test]
async fn bad_queries_and_paths_are_422() {
    let s = start().await;
    for path in [
        "ai/status",
        "ai/status?key=",
        "ai/status?key=k&wait_ms=soon",
        "ai/status?key=k&wait_ms=-5",
        "ai/result",
        "usage?kind=bogus",
        "events?limit=0",
        "events?limit=-1",
        "events?limit=abc",
        "events?limit=501",
        "runs?limit=0",
        "runs/%20%20",
        "runs/r?limit=2001",
        "runs/%FF%FE",
        "ai/status?key=%FF%FE",
        "ai/result?key=k%C3",
        "usage?kind=%FF",
        "metrics",
        "metrics?from_day=2026-01-01",
        "metrics?from_day=yesterday&to_day=2026-01-01",
        "metrics?from_day=2026-02-01&to_day=2026-01-01",
        "metrics?from_day=2025-01-01&to_day=2026-01-01",
        "metrics?from_day=-2026-01-01&to_day=-2026-01-03",
        "metrics?from_day=0000-01-01&to_day=0000-01-02",
        "metrics?from_day=1969-12-30&to_day=1970-01-02",
    ] {
        let a = s.get(A, path).await;
        assert_client_error(&a, path);
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            a.text
        );
    }
    // Percent-encoded UTF-8 is a key like any other, U+FFFD itself included.
    s.post_ok(A, "check-lock", json!({"key": "é\u{FFFD}"}))
        .await;
    for path in ["ai/status?key=%C3%A9%EF%BF%BD", "ai/result?key=%C3%A9"] {
        let a = s.get(A, path).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let s = start().await;
    let huge = format!(
        r#"{{"key":"k","metadata":{{"blob":"{}"}}}}"#,
        "x".repeat(onceonly_server::DEFAULT_BODY_LIMIT + 1)
    );
    for path in ["check-lock", "ai/lease", "events"] {
        let a = raw_post(&s, path, huge.as_bytes()).await;
        assert_eq!(
            a.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{path}: {}",
            a.text
        );
        assert_client_error(&a, path);
    }
    // `complete` takes the engine's largest result: a result just over it is the engine's 422
    // (naming the result), a body over the route's own limit a 413 naming that limit.
    let lease = s.post_ok(A, "ai/lease", json!({"key": "big"})).await;
    let complete = |len: usize| {
        json!({
            "key": "big",
            "lease_id": lease["lease_id"],
            "result": {"blob": "x".repeat(len)},
        })
        .to_string()
    };
    let just_over = raw_post(&s, "ai/complete", complete((1 << 20) + 1024).as_bytes()).await;
    assert_eq!(
        just_over.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        just_over.text
    );
    assert!(just_over.text.contains("result is"), "{}", just_over.text);
    // A result within the limit, escaped as a Python client sends non-ASCII text (`\uXXXX`,
    // three times the bytes of `é`): 2.4 MiB on the wire, 800 KiB to the engine, stored.
    let escaped = json!({
        "key": "big",
        "lease_id": lease["lease_id"],
        "result": {"blob": "é".repeat(400 << 10)},
    })
    .to_string()
    .replace('é', "\\u00e9");
    let escaped = raw_post(&s, "ai/complete", escaped.as_bytes()).await;
    assert_eq!(escaped.status, StatusCode::OK, "{}", escaped.text);
    let limit = onceonly_server::complete_body_limit(onceonly_server::DEFAULT_BODY_LIMIT, 1 << 20);
    let far_over = raw_post(&s, "ai/complete", complete(limit).as_bytes()).await;
    assert_eq!(
        far_over.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        far_over.text
    );
    assert!(
        far_over.text.contains(&limit.to_string()),
        "{}",
        far_over.text
    );
    // The escaped result was stored: the same lease completing with another result is refused.
    let other = json!({"key": "big", "lease_id": lease["lease_id"], "result": {"ok": true}});
    let other = raw_post(&s, "ai/complete", other.to_string().as_bytes()).await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.text);
    assert_eq!(other.detail()["error"], "conflict", "{}", other.text);

    let small = start_with(|c| c.body_limit(64)).await;
    let a = raw_post(
        &small,
        "check-lock",
        br#"{"key":"this body is longer than sixty-four bytes, surely, without a doubt"}"#,
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        small.post_ok(A, "check-lock", json!({"key": "k"})).await["status"],
        "locked"
    );
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_are_json() {
    let s = start().await;
    for (method, path) in [
        (Method::GET, "/nope"),
        (Method::GET, "/v1"),
        (Method::GET, "/v1/"),
        (Method::POST, "/v2/check-lock"),
        (Method::GET, "/v1/unknown/thing"),
        (Method::POST, "/v1/check-lock/"),
    ] {
        let a = s.raw(method.clone(), path, Some(A), None, &[]).await;
        assert_eq!(
            a.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            a.text
        );
        assert_client_error(&a, path);
    }
    for (method, path) in [
        (Method::GET, "/v1/check-lock"),
        (Method::DELETE, "/v1/ai/lease"),
        (Method::POST, "/v1/ai/status"),
        (Method::PUT, "/v1/me"),
        (Method::POST, "/healthz"),
    ] {
        let a = s.raw(method.clone(), path, Some(A), None, &[]).await;
        assert_eq!(
            a.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {}",
            a.text
        );
        assert_client_error(&a, path);
    }
}

#[tokio::test]
async fn governance_paths_need_a_key() {
    let s = start().await;
    for (method, path) in [
        (Method::GET, "policies"),
        (Method::POST, "policies/agent%3A1"),
        (Method::POST, "policies/a/from-template"),
        (Method::POST, "agents/a/disable"),
        (Method::GET, "agents/a/logs?limit=5"),
        (Method::GET, "tools?scope_id=global"),
        (Method::DELETE, "tools/send_email"),
        (Method::POST, "tools/send_email/toggle"),
    ] {
        let anon = s.raw(method.clone(), path, None, None, &[]).await;
        assert_eq!(anon.status, StatusCode::UNAUTHORIZED, "{path}");
        let wrong = s
            .raw(method, path, Some("nope"), Some(b"{}".to_vec()), &[])
            .await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{path}");
    }
}

#[tokio::test]
async fn missing_or_wrong_api_keys_are_401_and_403_on_every_endpoint() {
    let s = start().await;
    let endpoints = [
        (Method::GET, "me"),
        (Method::POST, "me/notifications"),
        (Method::GET, "usage"),
        (Method::GET, "usage/all"),
        (Method::GET, "events"),
        (Method::POST, "events"),
        (Method::GET, "runs"),
        (Method::GET, "runs/r1"),
        (Method::GET, "metrics?from_day=2026-01-01&to_day=2026-01-02"),
        (Method::POST, "check-lock"),
        (Method::POST, "check-lock/release"),
        (Method::POST, "ai/run"),
        (Method::POST, "ai/lease"),
        (Method::POST, "ai/extend"),
        (Method::POST, "ai/complete"),
        (Method::POST, "ai/fail"),
        (Method::POST, "ai/cancel"),
        (Method::POST, "ai/jobs/claim"),
        (Method::GET, "ai/status?key=k"),
        (Method::GET, "ai/result?key=k"),
    ];
    let body = Some(br#"{"key":"k"}"#.to_vec());
    for (method, path) in endpoints {
        let none = s.raw(method.clone(), path, None, body.clone(), &[]).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            none.body,
            json!({"detail": "Missing Authorization Bearer token"})
        );
        // No bearer token is a 401; a token that is not ASCII, or one after a tab, is a
        // wrong key (403), not a missing one.
        for (header, status) in [
            ("Bearer ", StatusCode::UNAUTHORIZED),
            ("Basic abc", StatusCode::UNAUTHORIZED),
            ("Token x", StatusCode::UNAUTHORIZED),
            ("", StatusCode::UNAUTHORIZED),
            ("Bearer éééé", StatusCode::FORBIDDEN),
            ("Bearer\tonce_wrong_key", StatusCode::FORBIDDEN),
        ] {
            let a = s
                .raw(
                    method.clone(),
                    path,
                    None,
                    body.clone(),
                    &[("Authorization", header)],
                )
                .await;
            assert_eq!(a.status, status, "{path} {header:?}");
        }
        let wrong = s
            .raw(
                method.clone(),
                path,
                Some("once_wrong_key"),
                body.clone(),
                &[],
            )
            .await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(wrong.body, json!({"detail": "Invalid API key"}));
        let near = s
            .raw(
                method.clone(),
                path,
                Some(&A[..A.len() - 1]),
                body.clone(),
                &[],
            )
            .await;
        assert_eq!(
            near.status,
            StatusCode::FORBIDDEN,
            "a prefix of a key is no key"
        );
    }
    // Keys are exact: no bearer-scheme games, other tenants' keys still work.
    let lower = s
        .raw(
            Method::GET,
            "me",
            None,
            None,
            &[("Authorization", &format!("bearer {B}"))],
        )
        .await;
    assert_eq!(lower.status, StatusCode::OK);
    assert_eq!(s.get_ok(F, "me").await["plan"], "free");
}

#[tokio::test]
async fn no_content_type_is_fine() {
    let s = start().await;
    let res = s
        .http
        .post(format!("{}/check-lock", s.base))
        .bearer_auth(A)
        .body(r#"{"key":"curl-style"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}
