//! Property tests of every endpoint's body and query parsing, driven in-process through the
//! router: arbitrary bytes, arbitrary JSON and arbitrary queries never get a 5xx (a panic
//! would: the panic layer answers 500), every refusal is a 4xx with a JSON `detail`, and
//! valid requests round-trip.
//!
//! Each property runs 64 cases; `PROPTEST_CASES=N` runs N instead.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode};
use onceonly_runtime::store::MemoryStore;
use onceonly_runtime::time::SystemClock;
use onceonly_runtime::{Engine, EngineConfig};
use onceonly_server::{ApiKey, AppState, DEFAULT_BODY_LIMIT, router};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

const KEY: &str = "once_test_properties";

/// The POST endpoints and the fields of their bodies.
const POSTS: [(&str, &[&str]); 11] = [
    ("/v1/check-lock", &["key", "ttl", "metadata"]),
    ("/v1/check-lock/release", &["key", "lock_id"]),
    (
        "/v1/ai/run",
        &["key", "ttl", "metadata", "agent_id", "tool"],
    ),
    ("/v1/ai/lease", &["key", "ttl", "meta"]),
    ("/v1/ai/extend", &["key", "lease_id", "ttl"]),
    (
        "/v1/ai/complete",
        &["key", "lease_id", "result", "result_hash"],
    ),
    (
        "/v1/ai/fail",
        &["key", "lease_id", "error_code", "error_hash", "retryable"],
    ),
    ("/v1/ai/cancel", &["key", "lease_id", "reason"]),
    ("/v1/ai/jobs/claim", &["pattern", "lease_ttl", "wait_ms"]),
    (
        "/v1/events",
        &[
            "run_id",
            "type",
            "ts",
            "status",
            "duration_ms",
            "step",
            "tool",
            "lease_id",
        ],
    ),
    (
        "/v1/me/notifications",
        &[
            "email_notifications_enabled",
            "tool_error_notifications_enabled",
            "run_failure_notifications_enabled",
        ],
    ),
];

fn post_path() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&POSTS[..]).prop_map(|(path, _)| path)
}

/// The GET endpoints and their query parameters; `{}` is a fuzzed path segment.
const GETS: [(&str, &[&str]); 9] = [
    ("/v1/ai/status", &["key", "wait_ms"]),
    ("/v1/ai/result", &["key"]),
    ("/v1/usage", &["kind"]),
    ("/v1/usage/all", &[]),
    ("/v1/events", &["limit", "offset"]),
    ("/v1/runs", &["limit", "offset", "q"]),
    ("/v1/runs/{}", &["limit", "offset"]),
    ("/v1/metrics", &["from_day", "to_day"]),
    ("/v1/me", &[]),
];

/// One runtime and one server for all cases: state left by earlier cases is part of the input.
struct Harness {
    rt: tokio::runtime::Runtime,
    app: Router,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(async {
        let engine = Engine::with_config(
            MemoryStore::new(),
            EngineConfig::default(),
            Arc::new(SystemClock),
        );
        let keys = [ApiKey::new(KEY).unwrap()];
        // A short long-poll bound: `wait_ms` is one of the fuzzed inputs.
        let state = AppState::new(
            &engine,
            &keys,
            Duration::from_millis(20),
            DEFAULT_BODY_LIMIT,
        )
        .unwrap();
        router(state)
    });
    Harness { rt, app }
});

/// Sends a request as the test tenant; answers the status and the JSON body (`Null` if none).
fn send(method: Method, uri: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let h = &*HARNESS;
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    h.rt.block_on(async {
        let res = h.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = to_bytes(res.into_body(), usize::MAX).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    })
}

/// The answer is no 5xx, and a refusal is a 4xx with a JSON `detail`.
fn check(what: &str, (status, body): (StatusCode, Value)) -> Result<Value, TestCaseError> {
    prop_assert!(
        !status.is_server_error(),
        "{what}: {status} {body} (a panic or a server error)"
    );
    if status.is_client_error() {
        prop_assert!(
            body.get("detail").is_some(),
            "{what}: {status} without a JSON detail: {body}"
        );
    }
    Ok(body)
}

/// Percent-encodes every byte that is not unreserved.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value for a field: plausible (short ids, small numbers, an object) or anything.
fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => "[a-z0-9:_-]{1,12}".prop_map(Value::String),
        2 => prop_oneof![
            (-1_000i64..100_000).prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e12f64..1e12).prop_map(Value::from),
        ],
        1 => any::<bool>().prop_map(Value::Bool),
        1 => prop::collection::btree_map("[a-z]{1,4}", json(), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        2 => json(),
    ]
}

/// An endpoint and a body with its own fields (each present or not) holding arbitrary values,
/// plus a stray field: past the JSON parser, into the field checks and the engine.
fn api_shaped() -> impl Strategy<Value = (&'static str, Value)> {
    prop::sample::select(&POSTS[..]).prop_flat_map(|(path, fields)| {
        let own = fields
            .iter()
            .map(|f| {
                prop::option::weighted(0.8, field_value().prop_map(move |v| (f.to_string(), v)))
            })
            .collect::<Vec<_>>();
        let stray = prop::option::of((".{0,8}", json()));
        let body = (own, stray).prop_map(|(own, stray)| {
            Value::Object(own.into_iter().flatten().chain(stray).collect())
        });
        (Just(path), body)
    })
}

/// A query value: any text, or one that looks like a number or a day.
fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,16}",
        "[a-z]{0,6}",
        "-?[0-9]{1,22}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}",
    ]
}

/// A key the API accepts: 1 to 256 bytes, not blank, no control characters.
fn valid_key() -> impl Strategy<Value = String> {
    "\\PC{1,60}".prop_filter("not blank", |k| !k.trim().is_empty())
}

/// A key not used by an earlier case.
fn fresh(key: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}:{key}", N.fetch_add(1, Ordering::Relaxed))
}

/// Lease, complete with `result`, read it back.
fn complete_and_read(key: &str, result: &Map<String, Value>) -> Result<Value, TestCaseError> {
    let lease = check(
        "lease",
        send(
            Method::POST,
            "/v1/ai/lease",
            json!({"key": key, "ttl": 60}).to_string().into_bytes(),
        ),
    )?;
    prop_assert_eq!(&lease["status"], "acquired", "{}", lease);
    let done = check(
        "complete",
        send(
            Method::POST,
            "/v1/ai/complete",
            json!({"key": key, "lease_id": lease["lease_id"], "result": result})
                .to_string()
                .into_bytes(),
        ),
    )?;
    prop_assert_eq!(&done["status"], "completed", "{}", done);
    let uri = format!("/v1/ai/result?key={}", encode(key));
    let (status, read) = send(Method::GET, &uri, Vec::new());
    prop_assert_eq!(status, StatusCode::OK, "{}", read);
    prop_assert_eq!(&read["status"], "completed");
    prop_assert_eq!(&read["key"], &Value::from(key));
    Ok(read["result"].clone())
}

#[test]
fn repro_a_float_in_a_result_comes_back_bit_for_bit() {
    // serde_json's default float parsing may land one unit in the last place off.
    let result: Map<String, Value> = [("x".to_owned(), json!(-1.7375116799956355e-180))]
        .into_iter()
        .collect();
    let read = complete_and_read(&fresh("float"), &result).unwrap();
    assert_eq!(read, Value::Object(result));
}

proptest! {
    #![proptest_config(common::proptest_config())]

    #[test]
    fn arbitrary_bytes_never_get_a_5xx(
        path in post_path(),
        body in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        check(path, send(Method::POST, path, body))?;
    }

    #[test]
    fn arbitrary_json_never_gets_a_5xx(
        path in post_path(),
        body in json(),
    ) {
        check(path, send(Method::POST, path, body.to_string().into_bytes()))?;
    }

    #[test]
    fn bodies_shaped_like_the_api_never_get_a_5xx((path, body) in api_shaped()) {
        check(path, send(Method::POST, path, body.to_string().into_bytes()))?;
    }

    #[test]
    fn arbitrary_queries_and_path_segments_never_get_a_5xx(
        (path, params) in prop::sample::select(&GETS[..]).prop_flat_map(|(path, fields)| {
            let own = fields
                .iter()
                .map(|f| prop::option::weighted(0.8, query_value().prop_map(move |v| (f.to_string(), v))))
                .collect::<Vec<_>>();
            let extra = prop::collection::vec((".{0,8}", query_value()), 0..3);
            (Just(path), (own, extra).prop_map(|(own, extra)| {
                own.into_iter().flatten().chain(extra).collect::<Vec<_>>()
            }))
        }),
        segment in ".{1,40}",
    ) {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let uri = format!("{}?{}", path.replace("{}", &encode(&segment)), query.join("&"));
        check(&uri, send(Method::GET, &uri, Vec::new()))?;
    }

    #[test]
    fn check_locks_round_trip(key in valid_key(), ttl in 1u64..=30 * 24 * 3600) {
        let key = fresh(&key);
        let body = json!({"key": key, "ttl": ttl}).to_string().into_bytes();
        let (status, first) = send(Method::POST, "/v1/check-lock", body.clone());
        prop_assert_eq!(status, StatusCode::OK, "{}", first);
        prop_assert_eq!(&first["status"], "locked");
        prop_assert_eq!(&first["key"], &Value::from(key.as_str()));
        prop_assert_eq!(&first["ttl"], &Value::from(ttl));
        let (status, second) = send(Method::POST, "/v1/check-lock", body);
        prop_assert_eq!(status, StatusCode::OK, "{}", second);
        prop_assert_eq!(&second["status"], "duplicate");
        prop_assert_eq!(&second["key"], &Value::from(key.as_str()));
    }

    #[test]
    fn completed_results_round_trip(
        key in valid_key(),
        result in prop::collection::btree_map(".{0,12}", json(), 0..6),
    ) {
        let result: Map<String, Value> = result.into_iter().collect();
        let read = complete_and_read(&fresh(&key), &result)?;
        prop_assert_eq!(read, Value::Object(result));
    }
}
