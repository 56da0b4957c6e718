//! Backend outage: the HTTP backend pointed at a closed loopback port. Fail-closed answers 503
//! without running the handler (fail-open, which logs, is tested in `traces.rs`).

mod common;

use axum::Router;
use common::{Runs, client, header, serve};
use onceonly_tower::{Mode, OnceOnlyLayer};
use serde_json::Value;

fn app(layer: OnceOnlyLayer, runs: &Runs) -> Router {
    Router::new()
        .route("/webhooks/stripe", common::counting(runs, "processed"))
        .layer(layer)
}

#[tokio::test]
async fn fail_closed_answers_503_without_running_the_handler() {
    for mode in [Mode::CheckLock, Mode::Replay] {
        let runs = Runs::default();
        let layer = OnceOnlyLayer::new(common::unreachable_client("k"))
            .json_pointer("/id")
            .mode(mode)
            .fail_closed();
        let base = serve(app(layer, &runs)).await;
        let res = client()
            .post(format!("{base}/webhooks/stripe"))
            .body(r#"{"id":"evt_outage"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 503, "{mode:?}");
        assert!(header(&res, "retry-after").is_some());
        assert_eq!(
            header(&res, "x-onceonly-status").as_deref(),
            Some("unavailable")
        );
        let body: Value = res.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("unavailable"), "{detail}");
        // The answer does not describe the deployment.
        assert!(!detail.contains("127.0.0.1"), "{detail}");
        assert_eq!(runs.get(), 0, "{mode:?}");
    }
}

#[tokio::test]
async fn the_layer_follows_the_clients_fail_open_setting_by_default() {
    let runs = Runs::default();
    // `unreachable_client()` is built with fail_open(false).
    let layer = OnceOnlyLayer::new(common::unreachable_client("k")).json_pointer("/id");
    let base = serve(app(layer, &runs)).await;
    let res = client()
        .post(format!("{base}/webhooks/stripe"))
        .body(r#"{"id":"evt_1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(runs.get(), 0);
}

/// A daily quota used up is a refusal, not an outage: the layer answers 503 without running
/// the handler, with a `Retry-After` that points past the quota's reset (not the usual few
/// seconds), so the sender's retry arrives when it can succeed.
#[tokio::test]
async fn a_used_up_quota_answers_503_with_the_time_to_its_reset() {
    let engine = onceonly_runtime::Engine::with_config(
        onceonly_runtime::store::MemoryStore::new(),
        onceonly_runtime::EngineConfig::default()
            .quotas(onceonly_runtime::Quotas::none().check_locks_per_day(1)),
        std::sync::Arc::new(onceonly_runtime::time::SystemClock),
    );
    let runs = common::Runs::default();
    let app = axum::Router::new()
        .route("/hooks", common::counting(&runs, "ran"))
        .layer(onceonly_tower::OnceOnlyLayer::new(
            onceonly_runtime::OnceOnly::from_backend(engine),
        ));
    let base = common::serve(app).await;
    let http = common::client();
    let send = |key: &'static str| {
        http.post(format!("{base}/hooks"))
            .header("idempotency-key", key)
            .body("{}")
            .send()
    };
    assert_eq!(send("first").await.unwrap().text().await.unwrap(), "ran");
    let refused = send("second").await.unwrap();
    assert_eq!(refused.status(), 503);
    let retry: u64 = common::header(&refused, "retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let to_midnight = 86_400 - now % 86_400;
    assert!(
        retry + 5 >= to_midnight && retry <= to_midnight,
        "Retry-After {retry}s, midnight UTC in {to_midnight}s"
    );
    assert_eq!(runs.get(), 1, "the refused delivery did not run");
}
