//! Helpers shared by the integration tests: a real server on a loopback port, a real client.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

/// Serves `app` on 127.0.0.1 with a free port; returns `http://127.0.0.1:PORT`.
pub async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

/// A client that does not retry and gives up on a hung server instead of hanging the test.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Counts handler runs.
#[derive(Clone, Default)]
pub struct Runs(Arc<AtomicUsize>);

impl Runs {
    /// Records a run; returns how many ran before this one.
    pub fn hit(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst)
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A `POST` handler that counts its runs in `runs` and answers `answer`.
pub fn counting(runs: &Runs, answer: &'static str) -> axum::routing::MethodRouter {
    let runs = runs.clone();
    axum::routing::post(move || async move {
        runs.hit();
        answer
    })
}

/// A `POST` handler whose first run signals the returned receiver and then never answers
/// (the sender gives up and hangs up); later runs answer `answer`. Runs are counted in `runs`.
pub fn hangs_first(
    runs: &Runs,
    answer: &'static str,
) -> (
    axum::routing::MethodRouter,
    tokio::sync::mpsc::UnboundedReceiver<()>,
) {
    let (started_tx, started) = tokio::sync::mpsc::unbounded_channel();
    let runs = runs.clone();
    let route = axum::routing::post(move || async move {
        if runs.hit() == 0 {
            started_tx.send(()).unwrap();
            std::future::pending::<()>().await;
        }
        answer
    });
    (route, started)
}

/// A client of the HTTP backend at a loopback port where nothing listens, with `api_key`,
/// built fail-closed.
pub fn unreachable_client(api_key: &str) -> onceonly_runtime::OnceOnly {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    onceonly_runtime::OnceOnly::builder()
        .base_url(format!("http://127.0.0.1:{port}/v1"))
        .api_key(api_key)
        .fail_open(false)
        .build()
        .expect("the HTTP backend builds for an http:// base URL")
}

/// The value of a response header, or `None`.
pub fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Bounds a wait that should end; a hang becomes a failure with `what` in it.
pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("gave up waiting: {what}"))
}

/// Sends `delivery` until it is processed (not answered `X-OnceOnly-Status: duplicate`): an
/// earlier delivery gives its key back asynchronously, and until it has, a retry may still be
/// a duplicate. Panics with `kept` after 5 seconds of duplicates.
pub async fn until_processed(
    kept: &str,
    delivery: impl Fn() -> reqwest::RequestBuilder,
) -> reqwest::Response {
    for _ in 0..200 {
        let res = delivery().send().await.unwrap();
        if header(&res, "x-onceonly-status").is_none() {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{kept}");
}
