//! A client that hangs up in the middle of a lease call cannot cut the call between its steps:
//! the charge, the lease record it pays for and the timeline event stay together.
//!
//! The store is a `MemoryStore` whose first lease-record write waits for the test's go. The
//! client sends `POST /v1/ai/lease` over a raw socket, closes the socket while the engine is
//! held at that write, and only then is the write let through.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use onceonly_runtime::models::{RunStatus, UsageKind};
use onceonly_runtime::store::{Hooked, LeaseRecord, MemoryStore, StoreHooks};
use onceonly_runtime::time::SystemClock;
use onceonly_runtime::{Engine, EngineConfig, OnceOnly, Result};
use onceonly_server::{ApiKey, AppState, DEFAULT_BODY_LIMIT, DEFAULT_MAX_WAIT, router};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};

const KEY: &str = "once_test_hangups";

/// Holds the first lease-record write until the test adds a permit to `go`.
struct Gate {
    passed: AtomicBool,
    entered: Notify,
    go: Semaphore,
}

impl Gate {
    fn closed() -> Self {
        Gate {
            passed: AtomicBool::new(false),
            entered: Notify::new(),
            go: Semaphore::new(0),
        }
    }
}

impl StoreHooks for Gate {
    async fn before_write(&self, _key: &str, _record: &LeaseRecord) -> Result<()> {
        if !self.passed.swap(true, Ordering::SeqCst) {
            self.entered.notify_one();
            self.go
                .acquire()
                .await
                .expect("the gate is never closed")
                .forget();
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_call_finishes_after_its_client_hangs_up() {
    let engine = Engine::with_config(
        Hooked::new(MemoryStore::new(), Gate::closed()),
        EngineConfig::default(),
        Arc::new(SystemClock),
    );
    let state = AppState::new(
        &engine,
        &[ApiKey::new(KEY).unwrap()],
        DEFAULT_MAX_WAIT,
        DEFAULT_BODY_LIMIT,
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await });

    let body = r#"{"key":"charge-1","ttl":60,"metadata":{"run_id":"run-1"}}"#;
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(
            format!(
                "POST /v1/ai/lease HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {KEY}\r\n\
                 content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let gate = engine.store().hooks();
    tokio::time::timeout(Duration::from_secs(30), gate.entered.notified())
        .await
        .expect("the lease call reaches the store");

    // Hang up while the engine is between the charge and the record, and give the server time
    // to notice (it drops the request's future when it does; it takes milliseconds, and the
    // metrics check below tells if it did not).
    drop(socket);
    tokio::time::sleep(Duration::from_secs(1)).await;
    gate.go.add_permits(1);

    let client = OnceOnly::builder()
        .api_key(KEY)
        .base_url(format!("http://{addr}/v1"))
        .build()
        .unwrap();
    // The engine's task may still be finishing: look until everything is there, or 30 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut answered = 0;
    let (status, timeline) = loop {
        let status = client.ai().status("charge-1").await.unwrap().status;
        let timeline = client.get_run_timeline("run-1").await.unwrap();
        answered += 2;
        let settled = status != RunStatus::NotFound && !timeline.events.is_empty();
        if settled || tokio::time::Instant::now() > deadline {
            break (status, timeline);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        status,
        RunStatus::InProgress,
        "the lease that was paid for is recorded"
    );
    let kinds: Vec<&str> = timeline.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["run_started"]);
    let usage = client.usage().kind(UsageKind::Ai).await.unwrap();
    answered += 1;
    assert_eq!(usage.usage, 1, "one acquisition, charged once: {usage:?}");

    // The server did notice the hang-up: the lease call itself was never answered, so every
    // answer it counted is one of this test's own calls above.
    let metrics = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "onceonly_http_requests_total{{class=\"2xx\"}} {answered}\n"
        )),
        "expected {answered} answers, none for the hung-up lease:\n{metrics}"
    );
}
