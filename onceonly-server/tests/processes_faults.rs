//! Faults under real `onceonly-server` processes: Redis stopped and started again under a
//! running server (503-class answers and a failing `/readyz` in the gap, or a fail-open
//! check-lock where the client says so; recovery without restarting the server), and a server over SQLite killed with
//! SIGKILL and started again on the same file (nothing acknowledged is lost).

mod procs;

use std::time::{Duration, Instant};

use onceonly_runtime::Error;
use onceonly_runtime::testing::{self, RedisServer};
use procs::ServerProcess;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_fails_clearly_while_redis_is_down_and_recovers() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let server = ServerProcess::start(&redis.url()).await;
    let (strict, open) = (server.client(false), server.client(true));
    assert!(strict.check_lock("before").await.unwrap().locked);
    assert_eq!(
        probe(&server, "/readyz").await,
        (200, json!({"status": "ready"}))
    );

    redis.kill();
    // Alive but not ready: a balancer stops sending requests, an orchestrator does not
    // restart a server whose store is what failed.
    let (status, body) = probe(&server, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["detail"]["error"], "store_unavailable", "{body}");
    assert_eq!(probe(&server, "/healthz").await.0, 200);
    let e = strict.check_lock("gap").await.unwrap_err();
    assert!(
        matches!(e, Error::Api { status: 503, .. }) && e.is_outage(),
        "{e:?}"
    );
    let lock = open.check_lock("gap").await.unwrap();
    assert!(lock.fail_open.is_some(), "{lock:?}");
    let e = open.ai().lease("gap:job").await.unwrap_err();
    assert!(e.is_outage(), "a lease never fails open: {e:?}");

    redis.restart();
    testing::assert_recovers(&strict, &open).await;
    assert_eq!(
        probe(&server, "/readyz").await,
        (200, json!({"status": "ready"}))
    );
}

/// `GET path` at the server's root (outside `/v1`): the status and the JSON body.
async fn probe(server: &ServerProcess, path: &str) -> (u16, Value) {
    let root = server.base_url.trim_end_matches("/v1");
    let res = reqwest::get(format!("{root}{path}")).await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_redis_hangs_and_returns_when_it_answers() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = ServerProcess::start(&redis.url()).await;
    assert_eq!(probe(&server, "/readyz").await.0, 200);

    redis.pause();
    let asked = Instant::now();
    let (status, body) = probe(&server, "/readyz").await;
    let waited = asked.elapsed();
    redis.resume();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["detail"]["error"], "store_unavailable", "{body}");
    // Bounded by the probe's own 2 s (or the store's response timeout, also 2 s): a probe
    // that hung with the store would never answer. Generous, for a loaded machine.
    assert!(
        waited < Duration::from_secs(10),
        "answered after {waited:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    while probe(&server, "/readyz").await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "still not ready after Redis resumed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_over_sqlite_keeps_every_result_and_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("onceonly.db").display());
    let mut server = ServerProcess::start(&store).await;
    let live = testing::write_acknowledged(&server.client(false), 30).await;
    server.restart().await;
    testing::assert_acknowledged(&server.client(false), 30, &live).await;
}
