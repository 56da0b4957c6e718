//! Mode::Replay over real TCP: stored responses, 409 while in flight, 422 on a different body
//! (stored or in flight).

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use common::{Runs, client, hangs_first, serve, within};
use onceonly_runtime::OnceOnly;
use onceonly_tower::{Mode, OnceOnlyLayer};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};

fn replay_layer() -> OnceOnlyLayer {
    OnceOnlyLayer::new(OnceOnly::memory()).mode(Mode::Replay)
}

fn hdr(res: &reqwest::Response, name: &str) -> Option<String> {
    common::header(res, name)
}

/// Every byte value, so a body that is not UTF-8 must round-trip.
fn binary_body() -> Vec<u8> {
    (0..=255u8).rev().chain(0..=255u8).collect()
}

#[tokio::test]
async fn replayed_response_is_byte_identical_and_marked() {
    let runs = Runs::default();
    let app = Router::new()
        .route(
            "/payments",
            post({
                let runs = runs.clone();
                move |body: axum::body::Bytes| async move {
                    let n = runs.hit();
                    (
                        StatusCode::CREATED,
                        [
                            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                            (HeaderName::from_static("x-charge-id"), format!("ch_{n}")),
                            (
                                HeaderName::from_static("x-not-replayed"),
                                "only-once".to_owned(),
                            ),
                        ],
                        [binary_body(), body.to_vec()].concat(),
                    )
                }
            }),
        )
        .layer(replay_layer().replay_header(HeaderName::from_static("x-charge-id")));
    let base = serve(app).await;
    let http = client();
    let pay = || {
        http.post(format!("{base}/payments"))
            .header("idempotency-key", "pay-1")
            .body("amount=500")
            .send()
    };

    let first = pay().await.unwrap();
    assert_eq!(first.status(), 201);
    assert_eq!(hdr(&first, "idempotency-replayed"), None);
    assert_eq!(hdr(&first, "x-not-replayed").as_deref(), Some("only-once"));
    let first_body = first.bytes().await.unwrap();
    assert_eq!(first_body, [binary_body(), b"amount=500".to_vec()].concat());

    for _ in 0..2 {
        let again = pay().await.unwrap();
        assert_eq!(again.status(), 201);
        assert_eq!(hdr(&again, "idempotency-replayed").as_deref(), Some("true"));
        assert_eq!(
            hdr(&again, "content-type").as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(hdr(&again, "x-charge-id").as_deref(), Some("ch_0"));
        assert_eq!(hdr(&again, "x-not-replayed"), None);
        assert_eq!(again.bytes().await.unwrap(), first_body);
    }
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn a_concurrent_duplicate_gets_409_with_retry_after() {
    let runs = Runs::default();
    let gate = Arc::new(Semaphore::new(0));
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/orders",
            post({
                let (runs, gate) = (runs.clone(), gate.clone());
                move || async move {
                    runs.hit();
                    started_tx.send(()).unwrap();
                    gate.acquire().await.unwrap().forget();
                    (StatusCode::CREATED, "order ord_1")
                }
            }),
        )
        .layer(replay_layer());
    let base = serve(app).await;
    let http = client();
    let order = || {
        http.post(format!("{base}/orders"))
            .header("idempotency-key", "order-1")
            .body("{}")
            .send()
    };

    let first = tokio::spawn(order());
    within("the first request to start", started.recv())
        .await
        .unwrap();
    let other_body = http
        .post(format!("{base}/orders"))
        .header("idempotency-key", "order-1")
        .body(r#"{"sku":"other"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        other_body.status(),
        422,
        "a different body is refused while in flight too"
    );
    let busy = order().await.unwrap();
    assert_eq!(busy.status(), 409);
    let retry_after: u64 = hdr(&busy, "retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    let detail: Value = busy.json().await.unwrap();
    assert!(
        detail["detail"]
            .as_str()
            .unwrap()
            .contains("being processed")
    );

    gate.add_permits(1);
    let first = within("the first request", first).await.unwrap().unwrap();
    assert_eq!(first.status(), 201);
    let replayed = order().await.unwrap();
    assert_eq!(replayed.status(), 201);
    assert_eq!(
        hdr(&replayed, "idempotency-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(replayed.text().await.unwrap(), "order ord_1");
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn the_same_key_with_a_different_body_gets_422() {
    let runs = Runs::default();
    let app = Router::new()
        .route("/transfers", common::counting(&runs, "sent"))
        .layer(replay_layer());
    let base = serve(app).await;
    let http = client();
    let send = |body: &'static str| {
        http.post(format!("{base}/transfers"))
            .header("idempotency-key", "tr-1")
            .body(body)
            .send()
    };
    assert_eq!(send(r#"{"cents":100}"#).await.unwrap().status(), 200);
    let mismatch = send(r#"{"cents":999}"#).await.unwrap();
    assert_eq!(mismatch.status(), 422);
    let detail: Value = mismatch.json().await.unwrap();
    assert!(
        detail["detail"]
            .as_str()
            .unwrap()
            .contains("different request body")
    );
    let same = send(r#"{"cents":100}"#).await.unwrap();
    assert_eq!(hdr(&same, "idempotency-replayed").as_deref(), Some("true"));
    assert_eq!(runs.get(), 1);
}

/// Keys are scoped to the route template: the same key on `/orders/1/cancel` and
/// `/orders/2/cancel`, or with another query, is another request, refused, not answered with
/// the first order's response.
#[tokio::test]
async fn the_same_key_on_another_path_or_query_gets_422() {
    let runs = Runs::default();
    let counted = runs.clone();
    let app = Router::new()
        .route(
            "/orders/{id}/cancel",
            post(
                move |axum::extract::Path(id): axum::extract::Path<u32>| async move {
                    counted.hit();
                    format!("cancelled {id}")
                },
            ),
        )
        .layer(replay_layer());
    let base = serve(app).await;
    let http = client();
    let send = |target: &'static str| {
        http.post(format!("{base}{target}"))
            .header("idempotency-key", "cancel-1")
            .send()
    };
    let first = send("/orders/1/cancel?reason=dup").await.unwrap();
    assert_eq!(first.text().await.unwrap(), "cancelled 1");
    for other in [
        "/orders/2/cancel?reason=dup",
        "/orders/1/cancel?reason=fraud",
    ] {
        let refused = send(other).await.unwrap();
        assert_eq!(refused.status(), 422, "{other}");
        let detail: Value = refused.json().await.unwrap();
        assert!(detail["detail"].as_str().unwrap().contains("path or query"));
    }
    let again = send("/orders/1/cancel?reason=dup").await.unwrap();
    assert_eq!(hdr(&again, "idempotency-replayed").as_deref(), Some("true"));
    assert_eq!(again.text().await.unwrap(), "cancelled 1");
    assert_eq!(runs.get(), 1);
}

/// Header values that are not ASCII (UTF-8 or raw bytes) replay byte for byte.
#[tokio::test]
async fn non_ascii_header_values_replay_byte_for_byte() {
    let app = Router::new()
        .route(
            "/things",
            post(|| async {
                let mut res = (StatusCode::CREATED, "made").into_response();
                res.headers_mut().insert(
                    header::LOCATION,
                    header::HeaderValue::from_bytes("/things/ü".as_bytes()).unwrap(),
                );
                res.headers_mut().append(
                    header::LINK,
                    header::HeaderValue::from_bytes(b"</caf\xe9>; rel=next").unwrap(),
                );
                res
            }),
        )
        .layer(replay_layer());
    let base = serve(app).await;
    let http = client();
    let send = || {
        http.post(format!("{base}/things"))
            .header("idempotency-key", "thing-1")
            .send()
    };
    let first = send().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(hdr(&again, "idempotency-replayed").as_deref(), Some("true"));
    for name in [header::LOCATION, header::LINK] {
        let bytes =
            |res: &reqwest::Response| res.headers().get(&name).map(|v| v.as_bytes().to_vec());
        assert!(bytes(&first).is_some(), "{name}");
        assert_eq!(bytes(&again), bytes(&first), "{name}");
    }
}

#[tokio::test]
async fn a_5xx_is_not_stored_and_the_retry_runs() {
    let runs = Runs::default();
    let app = Router::new()
        .route(
            "/jobs",
            post({
                let runs = runs.clone();
                move || async move {
                    match runs.hit() {
                        0 => (StatusCode::SERVICE_UNAVAILABLE, "try later"),
                        _ => (StatusCode::ACCEPTED, "queued"),
                    }
                }
            }),
        )
        .layer(replay_layer());
    let base = serve(app).await;
    let http = client();
    let submit = || {
        http.post(format!("{base}/jobs"))
            .header("idempotency-key", "job-1")
            .send()
    };
    assert_eq!(submit().await.unwrap().status(), 503);
    let retried = submit().await.unwrap();
    assert_eq!(retried.status(), 202);
    assert_eq!(hdr(&retried, "idempotency-replayed"), None);
    let replayed = submit().await.unwrap();
    assert_eq!(replayed.status(), 202);
    assert_eq!(
        hdr(&replayed, "idempotency-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(runs.get(), 2);
}

#[tokio::test]
async fn a_final_4xx_is_stored_but_429_is_not() {
    let runs = Runs::default();
    let app = Router::new()
        .route(
            "/charges",
            post({
                let runs = runs.clone();
                move |body: String| async move {
                    runs.hit();
                    match body.as_str() {
                        "declined" => {
                            (StatusCode::PAYMENT_REQUIRED, "card declined").into_response()
                        }
                        _ => (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response(),
                    }
                }
            }),
        )
        .layer(replay_layer());
    let base = serve(app).await;
    let http = client();
    let charge = |key: &'static str, body: &'static str| {
        http.post(format!("{base}/charges"))
            .header("idempotency-key", key)
            .body(body)
            .send()
    };
    assert_eq!(charge("c1", "declined").await.unwrap().status(), 402);
    let replayed = charge("c1", "declined").await.unwrap();
    assert_eq!(replayed.status(), 402);
    assert_eq!(
        hdr(&replayed, "idempotency-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(runs.get(), 1);

    assert_eq!(charge("c2", "busy").await.unwrap().status(), 429);
    let again = charge("c2", "busy").await.unwrap();
    assert_eq!(again.status(), 429);
    assert_eq!(hdr(&again, "idempotency-replayed"), None);
    assert_eq!(runs.get(), 3);
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413() {
    let runs = Runs::default();
    let app = Router::new()
        .route("/uploads", common::counting(&runs, "stored"))
        .layer(replay_layer().max_body_bytes(1024));
    let base = serve(app).await;
    let http = client();
    let res = http
        .post(format!("{base}/uploads"))
        .header("idempotency-key", "up-1")
        .body(vec![b'x'; 1025])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let detail: Value = res.json().await.unwrap();
    assert!(detail["detail"].as_str().unwrap().contains("1024 bytes"));
    // The refused request did not claim the key.
    let res = http
        .post(format!("{base}/uploads"))
        .header("idempotency-key", "up-1")
        .body(vec![b'x'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn a_dropped_request_cancels_the_lease() {
    let runs = Runs::default();
    let (route, mut started) = hangs_first(&runs, "exported");
    let app = Router::new()
        .route("/exports", route)
        // A long lease: only the cancellation can free the key within this test.
        .layer(replay_layer().lease_ttl(Duration::from_secs(3600)));
    let base = serve(app).await;
    let http = client();
    let url = format!("{base}/exports");

    let hung = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move {
            http.post(url)
                .header("idempotency-key", "ex-1")
                .send()
                .await
        }
    });
    within("the first request to start", started.recv())
        .await
        .unwrap();
    hung.abort();

    let mut attempts = 0;
    let answer = loop {
        let res = http
            .post(&url)
            .header("idempotency-key", "ex-1")
            .send()
            .await
            .unwrap();
        if res.status() != StatusCode::CONFLICT {
            break res;
        }
        attempts += 1;
        assert!(
            attempts < 200,
            "the dropped request never gave its lease back"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "exported");
    assert_eq!(runs.get(), 2);
}

#[tokio::test]
async fn a_response_over_the_cap_reaches_its_client_whole_and_replays_as_a_note() {
    let runs = Runs::default();
    let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let app = Router::new()
        .route(
            "/reports",
            post({
                let (runs, big) = (runs.clone(), big.clone());
                move || async move {
                    runs.hit();
                    // A streamed body: no length known up front.
                    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                        big.chunks(1000).map(|c| Ok(c.to_vec())).collect();
                    axum::body::Body::from_stream(futures_util::stream::iter(chunks))
                }
            }),
        )
        .layer(replay_layer().max_response_bytes(4096));
    let base = serve(app).await;
    let http = client();
    let report = || {
        http.post(format!("{base}/reports"))
            .header("idempotency-key", "rep-1")
            .send()
    };
    let first = report().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.bytes().await.unwrap(), big);
    let again = report().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(hdr(&again, "idempotency-replayed").as_deref(), Some("true"));
    let note: Value = again.json().await.unwrap();
    assert!(note["detail"].as_str().unwrap().contains("4096 bytes"));
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn requests_without_a_key_are_not_stored() {
    let runs = Runs::default();
    let app = Router::new()
        .route("/notes", common::counting(&runs, "noted"))
        .layer(replay_layer());
    let base = serve(app).await;
    let http = client();
    for _ in 0..3 {
        let res = http
            .post(format!("{base}/notes"))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(hdr(&res, "idempotency-replayed"), None);
    }
    assert_eq!(runs.get(), 3);
}

/// A response within `max_response_bytes` that the backend still refuses as a result (the
/// embedded engine's limit is 1 MiB of JSON) is stored without its body, not lost.
#[tokio::test]
async fn a_response_the_backend_refuses_to_store_is_kept_without_its_body() {
    let runs = Runs::default();
    let app = Router::new()
        .route(
            "/exports",
            post({
                let runs = runs.clone();
                move || async move {
                    runs.hit();
                    vec![7u8; 900 * 1024]
                }
            }),
        )
        .layer(replay_layer().max_response_bytes(4 << 20));
    let base = serve(app).await;
    let http = client();
    let export = || {
        http.post(format!("{base}/exports"))
            .header("idempotency-key", "big-1")
            .send()
    };
    let first = export().await.unwrap();
    assert_eq!(first.bytes().await.unwrap().len(), 900 * 1024);
    let again = export().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(hdr(&again, "idempotency-replayed").as_deref(), Some("true"));
    let note: Value = again.json().await.unwrap();
    assert!(
        note["detail"]
            .as_str()
            .unwrap()
            .contains("(921600 bytes) was too large to store"),
        "{note}"
    );
    assert_eq!(runs.get(), 1);
}
