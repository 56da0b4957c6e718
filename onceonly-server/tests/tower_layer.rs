//! `OnceOnlyLayer` over the HTTP backend, talking to a real `onceonly-server`: a backend that
//! cannot answer on the first poll, so every claim, replay and release here goes through the
//! layer's waiting path (the embedded engine answers at once and takes the other one).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use onceonly_server::testing::TestServer;
use onceonly_tower::{Mode, OnceOnlyLayer};
use tokio::net::TcpListener;

/// Serves `app` on a free loopback port; returns the URL of `/hook`.
async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

/// A handler that answers 500 on its first run and `"ran N"` after; counts runs in `runs`.
fn flaky_once(runs: &Arc<AtomicUsize>) -> axum::routing::MethodRouter {
    let runs = Arc::clone(runs);
    post(move || async move {
        match runs.fetch_add(1, Ordering::SeqCst) {
            0 => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "database down".to_owned(),
            ),
            n => (StatusCode::OK, format!("ran {n}")),
        }
    })
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn deliver(
    http: &reqwest::Client,
    url: &str,
    key: &str,
) -> (reqwest::StatusCode, Option<String>, String) {
    let res = http
        .post(url)
        .header("idempotency-key", key)
        .body("{}")
        .send()
        .await
        .unwrap();
    let marker = res
        .headers()
        .get("x-onceonly-status")
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status(), marker, res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_lock_over_http_releases_a_failure_and_deduplicates_the_success() {
    let server = TestServer::start().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/hook", flaky_once(&runs))
        .layer(OnceOnlyLayer::new(server.client()));
    let url = serve(app).await;
    let http = http();

    let failed = deliver(&http, &url, "evt_http_1").await;
    assert_eq!(failed.0, 500, "{failed:?}");
    // The failure gave the key back on the server: the retry runs the handler.
    let retried = deliver(&http, &url, "evt_http_1").await;
    assert_eq!(
        (retried.0.as_u16(), retried.1, retried.2.as_str()),
        (200, None, "ran 1")
    );
    let duplicate = deliver(&http, &url, "evt_http_1").await;
    assert_eq!(duplicate.0, 200);
    assert_eq!(duplicate.1.as_deref(), Some("duplicate"), "{duplicate:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    // The lock is the server's: a direct check-lock of the layer's key reads it as held.
    let key = "POST /hook idempotency-key=evt_http_1";
    let lock = server.client().check_lock(key).await.unwrap();
    assert!(lock.duplicate, "{lock:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_over_http_returns_the_first_success_byte_for_byte() {
    let server = TestServer::start().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/hook", flaky_once(&runs))
        .layer(OnceOnlyLayer::new(server.client()).mode(Mode::Replay));
    let url = serve(app).await;
    let http = http();

    assert_eq!(deliver(&http, &url, "evt_http_2").await.0, 500);
    let first = deliver(&http, &url, "evt_http_2").await;
    assert_eq!((first.0.as_u16(), first.2.as_str()), (200, "ran 1"));
    let replayed = deliver(&http, &url, "evt_http_2").await;
    assert_eq!((replayed.0.as_u16(), replayed.2.as_str()), (200, "ran 1"));
    assert_eq!(replayed.1.as_deref(), Some("replayed"), "{replayed:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}
