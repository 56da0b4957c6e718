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
