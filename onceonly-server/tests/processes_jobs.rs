//! Queued runs executed by worker processes: four `onceonly-job-worker` processes compete for
//! one run that a thousand callers wait on (it executes once, every caller gets its result),
//! and a worker killed with SIGKILL in the middle of a run is replaced by another process once
//! its lease expires (attempt 2 stores the result; the killed attempt stored nothing).

mod procs;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use onceonly_runtime::models::RunStatus;
use onceonly_runtime::testing::RedisServer;
use onceonly_runtime::{JsonMap, OnceOnly};
use procs::{JobWorker, finished, started};
use serde_json::Value;

const WORKERS: usize = 4;
const CALLERS: usize = 1_000;
/// The lease of the kill case: short, so the resumption waits for its expiry only briefly.
const LEASE_TTL_MS: u64 = 2_000;
/// Longer than any test: a run of this length ends only by its worker being killed.
const FOREVER_MS: u64 = 600_000;
const WAIT: Duration = Duration::from_secs(60);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Calls `run_and_wait(key)` from a task; the result of the completed run.
fn wait_for(client: &OnceOnly, key: &str) -> tokio::task::JoinHandle<JsonMap> {
    let (client, key) = (client.clone(), key.to_owned());
    tokio::spawn(async move {
        let done = client
            .ai()
            .run_and_wait(key.as_str())
            .timeout(WAIT)
            .await
            .unwrap_or_else(|e| panic!("run_and_wait({key}): {e}"));
        assert_eq!(done.status, RunStatus::Completed, "{done:?}");
        done.result.expect("a completed run has a result")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_worker_processes_execute_a_run_once_for_a_thousand_callers() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        workers.push(JobWorker::start(&url, "report:*", 10_000, 500).await);
    }
    let client = OnceOnly::redis(&url).await.unwrap();
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| wait_for(&client, "report:2026-11"))
        .collect();
    let mut results = Vec::new();
    for caller in callers {
        results.push(Value::Object(caller.await.unwrap()));
    }

    let mut events = Vec::new();
    for worker in workers {
        events.extend(worker.stop().await);
    }
    let executions = started(&events);
    assert_eq!(executions.len(), 1, "one execution in all: {executions:?}");
    assert_eq!(finished(&events), executions);
    let execution = executions[0];
    assert_eq!(execution["attempt"], 1, "{execution}");
    assert_eq!(results.len(), CALLERS);
    for result in &results {
        assert_eq!(
            result, execution,
            "every caller gets the one execution's value"
        );
    }
}

/// A worker process is killed while it runs a queued run; a second worker process, running
/// all along, resumes the run once the lease has expired, and the waiter gets its result.
async fn a_killed_workers_run_is_resumed_by_another_process(store: &str) {
    let key = "report:2026-12";
    let observer = OnceOnly::builder().base_url(store).build().unwrap();
    let mut doomed = JobWorker::start(store, "report:*", LEASE_TTL_MS, FOREVER_MS).await;
    let waiter = wait_for(&observer, key);
    let first = doomed
        .next_event()
        .await
        .expect("the first worker starts the run");
    assert_eq!(first["started"]["attempt"], 1, "{first}");

    let mut rescuer = JobWorker::start(store, "report:*", LEASE_TTL_MS, 100).await;
    // Longer than the lease: the first worker's heartbeats keep the run its own meanwhile.
    tokio::time::sleep(Duration::from_millis(LEASE_TTL_MS * 3 / 2)).await;
    let held = observer.ai().status(key).await.unwrap();
    assert_eq!(
        (held.status, held.queued),
        (RunStatus::InProgress, false),
        "held by the first worker: {held:?}"
    );
    let killed_ms = now_ms();
    let doomed = doomed.kill().await;
    assert_eq!(started(&doomed).len(), 1, "{doomed:?}");
    assert!(finished(&doomed).is_empty(), "killed mid-run: {doomed:?}");

    let result = Value::Object(waiter.await.unwrap());
    let resumed = rescuer.next_event().await.expect("the rescuer resumes");
    let execution = &resumed["started"];
    assert_eq!(execution["attempt"], 2, "{resumed}");
    assert_eq!(execution["pid"], rescuer.pid, "{resumed}");
    assert!(
        execution["started_ms"].as_u64().unwrap() >= killed_ms,
        "the rescuer ran the run while the first worker still held it: {resumed}"
    );
    assert_eq!(&result, execution, "the waiter gets attempt 2's result");

    let rescued = rescuer.stop().await;
    assert_eq!(started(&rescued), [execution], "{rescued:?}");
    assert_eq!(finished(&rescued), [execution], "{rescued:?}");
    let stored = observer.ai().result(key).await.unwrap();
    assert_eq!(stored.status, RunStatus::Completed);
    assert_eq!(Value::Object(stored.result.unwrap()), result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_run_is_resumed_by_another_process_over_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    a_killed_workers_run_is_resumed_by_another_process(&redis.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_run_is_resumed_by_another_process_over_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("onceonly.db").display());
    a_killed_workers_run_is_resumed_by_another_process(&store).await;
}
