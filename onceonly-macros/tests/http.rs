//! The macros over the HTTP backend against a real `onceonly-server` on loopback: the same
//! exactly-once, replay and failure semantics as on the embedded engine, and `fail_open`
//! through a real outage (the server gone).

use std::sync::atomic::{AtomicUsize, Ordering};

use onceonly_runtime::{Error, OnceOnly, idempotent, idempotent_ai};
use onceonly_server::testing::TestServer;
use serde::{Deserialize, Serialize};

async fn server_and_client() -> (TestServer, OnceOnly) {
    let server = TestServer::start().await;
    let client = server.client();
    (server, client)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Receipt {
    charge_id: String,
    cents: u64,
}

static CHARGES: AtomicUsize = AtomicUsize::new(0);

#[idempotent(client = client, skip(client))]
async fn charge(client: &OnceOnly, order_id: &str, cents: u64) -> Result<Receipt, Error> {
    let n = CHARGES.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    Ok(Receipt {
        charge_id: format!("ch_{order_id}_{n}"),
        cents,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_over_http_run_the_body_once_and_replay_the_typed_value() {
    let (server, client) = server_and_client().await;
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { charge(&client, "o-http", 900).await.unwrap() })
        })
        .collect();
    let mut receipts = Vec::new();
    for t in tasks {
        receipts.push(t.await.unwrap());
    }
    assert_eq!(
        CHARGES.load(Ordering::SeqCst),
        1,
        "the body ran exactly once"
    );
    assert!(receipts.iter().all(|r| r == &receipts[0]));
    assert_eq!(charge(&client, "o-http", 900).await.unwrap(), receipts[0]);
    server.shutdown().await;
}

static FLAKY: AtomicUsize = AtomicUsize::new(0);

#[idempotent_ai(key = format!("flaky:{id}"), client = client)]
async fn flaky(client: &OnceOnly, id: u32) -> Result<u32, Error> {
    if FLAKY.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(Error::Validation("first attempt fails".into()));
    }
    Ok(id)
}

static DOOMED: AtomicUsize = AtomicUsize::new(0);

#[idempotent_ai(key = format!("doomed:{id}"), client = client, terminal_failures, error_code = "gone")]
async fn doomed(client: &OnceOnly, id: u32) -> Result<u32, Error> {
    DOOMED.fetch_add(1, Ordering::SeqCst);
    Err(Error::Validation(format!("{id} is gone")))
}

#[tokio::test]
async fn failures_release_or_stick_over_http_as_on_the_engine() {
    let (server, client) = server_and_client().await;
    assert!(matches!(flaky(&client, 1).await, Err(Error::Validation(_))));
    assert_eq!(flaky(&client, 1).await.unwrap(), 1, "the key was released");
    assert_eq!(FLAKY.load(Ordering::SeqCst), 2);

    assert!(matches!(
        doomed(&client, 2).await,
        Err(Error::Validation(_))
    ));
    match doomed(&client, 2).await {
        Err(Error::PreviouslyFailed { error_code, .. }) => assert_eq!(error_code, "gone"),
        other => panic!("expected PreviouslyFailed, got {other:?}"),
    }
    assert_eq!(DOOMED.load(Ordering::SeqCst), 1);
    server.shutdown().await;
}

static OPEN: AtomicUsize = AtomicUsize::new(0);

#[idempotent_ai(key = format!("open:{id}"), client = client, fail_open = true)]
async fn open(client: &OnceOnly, id: u32) -> Result<u32, Error> {
    OPEN.fetch_add(1, Ordering::SeqCst);
    Ok(id)
}

#[idempotent_ai(key = format!("closed:{id}"), client = client)]
async fn closed(client: &OnceOnly, id: u32) -> Result<u32, Error> {
    Ok(id)
}

#[tokio::test]
async fn fail_open_runs_the_body_when_the_server_is_gone() {
    let (server, client) = server_and_client().await;
    assert_eq!(open(&client, 1).await.unwrap(), 1);
    assert_eq!(open(&client, 1).await.unwrap(), 1);
    assert_eq!(
        OPEN.load(Ordering::SeqCst),
        1,
        "exactly once while the server is up"
    );

    server.shutdown().await;
    match closed(&client, 1).await {
        Err(e) => assert!(e.is_retryable(), "an outage, not {e:?}"),
        Ok(v) => panic!("ran without a server: {v}"),
    }
    assert_eq!(open(&client, 1).await.unwrap(), 1);
    assert_eq!(
        OPEN.load(Ordering::SeqCst),
        2,
        "failed open: the body ran without a lease"
    );
}
