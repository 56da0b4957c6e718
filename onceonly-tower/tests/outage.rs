//! Backend outage: the HTTP backend pointed at a closed loopback port. Fail-open runs the
//! handler and logs a warning; fail-closed answers 503 without running it.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use common::{Runs, client, header, serve};
use onceonly_runtime::OnceOnly;
use onceonly_tower::{Mode, OnceOnlyLayer};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A base URL where nothing listens: a port that was just free.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/v1")
}

fn unreachable_client() -> OnceOnly {
    OnceOnly::builder()
        .base_url(closed_port_url())
        .api_key("k")
        .fail_open(false)
        .build()
        .expect("the HTTP backend builds for an http:// base URL")
}

/// Collects what the `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn app(layer: OnceOnlyLayer, runs: &Runs) -> Router {
    Router::new()
        .route("/webhooks/stripe", common::counting(runs, "processed"))
        .layer(layer)
}

// A current-thread runtime keeps the server on this thread, under the test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn fail_open_runs_the_handler_and_logs_it() {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let runs = Runs::default();
    // The client says fail-closed; the layer's own setting wins.
    let layer = OnceOnlyLayer::new(unreachable_client())
        .json_pointer("/id")
        .fail_open();
    let base = serve(app(layer, &runs)).await;
    let http = client();
    for _ in 0..2 {
        let res = http
            .post(format!("{base}/webhooks/stripe"))
            .body(r#"{"id":"evt_outage"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), "processed");
    }
    // Without a backend nothing can be deduplicated: both deliveries ran, both were logged.
    assert_eq!(runs.get(), 2);
    let logs = logs.text();
    assert_eq!(logs.matches("fail-open").count(), 2, "{logs}");
    assert!(logs.contains("WARN"), "{logs}");
    // The log follows the delivery by its key's hash, never by the key itself.
    let key = "POST /webhooks/stripe json:/id=evt_outage";
    let hash = hex::encode(&Sha256::digest(key)[..8]);
    assert_eq!(
        logs.matches(&format!("key_hash=\"{hash}\"")).count(),
        2,
        "{logs}"
    );
    assert!(!logs.contains("evt_outage"), "{logs}");
}

#[tokio::test]
async fn fail_closed_answers_503_without_running_the_handler() {
    for mode in [Mode::CheckLock, Mode::Replay] {
        let runs = Runs::default();
        let layer = OnceOnlyLayer::new(unreachable_client())
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
    let layer = OnceOnlyLayer::new(unreachable_client()).json_pointer("/id");
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
