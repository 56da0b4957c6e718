//! `OnceOnlyLayer` over the HTTP backend, talking to a real `onceonly-server`: a backend that
//! cannot answer on the first poll, so every claim, replay and release here goes through the
//! layer's waiting path (the embedded engine answers at once and takes the other one).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use onceonly_runtime::OnceOnly;
use onceonly_runtime::models::RunStatus;
use onceonly_server::testing::{TEST_API_KEY, TestServer};
use onceonly_tower::{Mode, OnceOnlyLayer, RequestBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::{Layer, Service, ServiceExt};

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

/// A TCP proxy in front of `target` that holds the server's answers back until `open` is set,
/// and notifies `answered` when an answer arrives: a remote backend that has decided but not
/// replied yet.
async fn gated_proxy(target: std::net::SocketAddr) -> (u16, Arc<Notify>, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let answered = Arc::new(Notify::new());
    let (open, gate) = watch::channel(false);
    let notify = Arc::clone(&answered);
    tokio::spawn(async move {
        loop {
            let (client, _) = listener.accept().await.unwrap();
            let server = TcpStream::connect(target).await.unwrap();
            let (mut from_client, mut to_client) = client.into_split();
            let (mut from_server, mut to_server) = server.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut from_client, &mut to_server).await });
            let (notify, mut gate) = (Arc::clone(&notify), gate.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = from_server.read(&mut buf).await?;
                    if n == 0 {
                        return std::io::Result::Ok(());
                    }
                    notify.notify_one();
                    let _ = gate.wait_for(|open| *open).await;
                    to_client.write_all(&buf[..n]).await?;
                }
            });
        }
    });
    (port, answered, open)
}

/// Sends one request through the layer in `mode` over a gated proxy to a real server, drops it
/// once the server has answered the layer's claim (or lease) but before the answer arrives,
/// then lets the answer through. Returns the server and the handler's run count.
async fn drop_while_answered(mode: Mode) -> (TestServer, Arc<AtomicUsize>) {
    let server = TestServer::start().await;
    let target = server
        .base_url()
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .parse()
        .unwrap();
    let (port, answered, open) = gated_proxy(target).await;
    let client = OnceOnly::builder()
        .api_key(TEST_API_KEY)
        .base_url(format!("http://127.0.0.1:{port}/v1"))
        .max_retries(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let handler = tower::service_fn({
        let runs = Arc::clone(&runs);
        move |_req: axum::http::Request<RequestBody<String>>| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, std::convert::Infallible>(axum::http::Response::new(String::new())) }
        }
    });
    let mut svc = OnceOnlyLayer::new(client).mode(mode).layer(handler);
    let request = axum::http::Request::post("/hook")
        .header("idempotency-key", "evt_dropped")
        .body(String::new())
        .unwrap();
    let mut answer = Box::pin(svc.ready().await.unwrap().call(request));
    tokio::select! {
        _ = &mut answer => panic!("answered through a closed gate"),
        () = answered.notified() => {}
    }
    drop(answer);
    // The server did take the key: without the layer giving it back, it stays taken.
    let client = server.client();
    match mode {
        Mode::CheckLock => assert!(client.check_lock(DROPPED_KEY).await.unwrap().duplicate),
        _ => assert_eq!(
            client.ai().status(DROPPED_KEY).await.unwrap().status,
            RunStatus::InProgress
        ),
    }
    open.send(true).unwrap();
    (server, runs)
}

/// Polls `free` until it says the key is free again, for up to 20 s.
async fn until_free<F: std::future::Future<Output = bool>>(
    what: &str,
    mut free: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !free().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: the key was never given back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const DROPPED_KEY: &str = "POST /hook idempotency-key=evt_dropped";

/// A request dropped while its claim is on the wire: the server takes the key, the answer is
/// still on its way, the handler never runs. The layer finishes the claim in the background
/// and gives the key back, so the sender's retry is processed instead of answered as a
/// duplicate for a day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_dropped_while_its_claim_is_answered_gives_the_key_back() {
    let (server, runs) = drop_while_answered(Mode::CheckLock).await;
    let client = server.client();
    until_free("check-lock", || async {
        client.check_lock(DROPPED_KEY).await.unwrap().locked
    })
    .await;
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

/// The same in replay mode: the lease the server granted is given back, so the retry gets the
/// lease (and runs the handler) instead of `409` until the lease expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_dropped_while_its_lease_is_answered_gives_the_key_back() {
    let (server, runs) = drop_while_answered(Mode::Replay).await;
    let client = server.client();
    until_free("lease", || async {
        let lease = client.ai().lease(DROPPED_KEY).await.unwrap();
        lease.lease_id.is_some()
    })
    .await;
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}
