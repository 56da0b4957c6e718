//! Queued-run cases of the two-backend suite: key-mode runs queued once, claimed once by
//! competing workers, retried, resumed after a silent worker's lease, matched by pattern.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use onceonly_runtime::ai::Job;
use onceonly_runtime::models::{AiResult, ClaimRequest, RunStatus};
use onceonly_runtime::{Error, OnceOnly};
use tokio::sync::oneshot;

/// Executions per key, shared by the handlers of every worker of a case.
type Counts = Arc<Mutex<HashMap<String, u32>>>;

/// Starts a worker on `pattern` (concurrency 2) whose handler counts its executions and
/// answers `done:<key>`; the returned sender stops it.
fn start_worker(
    client: &OnceOnly,
    pattern: &str,
    counts: &Counts,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<onceonly_runtime::Result<()>>,
) {
    let (stop, stopped) = oneshot::channel::<()>();
    let counts = Arc::clone(counts);
    let worker = client
        .ai()
        .worker(pattern)
        .concurrency(2)
        .lease_ttl(Duration::from_secs(5))
        .with_graceful_shutdown(async move {
            stopped.await.ok();
        });
    let serving = tokio::spawn(worker.serve(move |job: Job| {
        let counts = Arc::clone(&counts);
        async move {
            *counts.lock().unwrap().entry(job.key.clone()).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, Error>(format!("done:{}", job.key))
        }
    }));
    (stop, serving)
}

pub(super) async fn competing_workers_execute_each_queued_run_once(client: OnceOnly) {
    let counts = Counts::default();
    let workers: Vec<_> = (0..3)
        .map(|_| start_worker(&client, "report:*", &counts))
        .collect();
    let keys: Vec<String> = (0..6).map(|i| format!("report:{i}")).collect();
    let callers: Vec<_> = (0..30)
        .map(|i| {
            let (client, key) = (client.clone(), keys[i % keys.len()].clone());
            tokio::spawn(async move {
                let done = client
                    .ai()
                    .run_and_wait(key.as_str())
                    .timeout(Duration::from_secs(30))
                    .await
                    .unwrap();
                (key, done)
            })
        })
        .collect();
    for caller in callers {
        let (key, done) = caller.await.unwrap();
        assert_eq!(done.status, RunStatus::Completed, "{key}");
        assert_eq!(done.result.unwrap()["value"], format!("done:{key}"));
    }
    let counts = counts.lock().unwrap().clone();
    assert_eq!(counts.len(), keys.len(), "{counts:?}");
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    for (stop, serving) in workers {
        stop.send(()).unwrap();
        serving.await.unwrap().unwrap();
    }
    // A finished run answers its result to a new run call, uncharged.
    let again = client.ai().run("report:0").await.unwrap();
    assert_eq!(
        (again.status, again.charged),
        (RunStatus::Completed, Some(0))
    );
    assert_eq!(again.result.unwrap()["value"], "done:report:0");
}

pub(super) async fn a_queued_run_waits_for_a_worker_and_matches_patterns(client: OnceOnly) {
    let queued = client.ai().run("email:1").await.unwrap();
    assert_eq!(
        (queued.status, queued.queued, queued.lease_id.clone()),
        (RunStatus::InProgress, true, None)
    );
    let attached = client.ai().run("email:1").await.unwrap();
    assert_eq!(
        (attached.status, attached.charged),
        (RunStatus::InProgress, Some(0))
    );
    let status = client.ai().status("email:1").await.unwrap();
    assert_eq!(
        (status.status, status.queued),
        (RunStatus::InProgress, true)
    );
    // Waiting on a queued run keeps waiting: it is not a failure.
    let e = client
        .ai()
        .wait("email:1")
        .timeout(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");

    let other = ClaimRequest::new("report:*").wait(Duration::from_millis(200));
    assert!(client.backend().claim_job(other).await.unwrap().is_none());
    let exact = ClaimRequest::new("email:1").lease_ttl(Duration::from_secs(10));
    let job = client.backend().claim_job(exact).await.unwrap().unwrap();
    assert_eq!(
        (job.key.as_str(), job.attempt, job.run_id.as_str()),
        ("email:1", 1, "email:1")
    );
    let status = client.ai().status("email:1").await.unwrap();
    assert_eq!(
        (status.status, status.queued),
        (RunStatus::InProgress, false)
    );
    let again = ClaimRequest::new("email:*");
    assert!(
        client.backend().claim_job(again).await.unwrap().is_none(),
        "claimed once"
    );

    // `run_id: null` counts as none: the run is named by its key and has a timeline.
    let mut metadata = onceonly_runtime::JsonMap::new();
    metadata.insert("run_id".into(), serde_json::Value::Null);
    client.ai().run("email:2").metadata(metadata).await.unwrap();
    let exact = ClaimRequest::new("email:2").lease_ttl(Duration::from_secs(10));
    let job = client.backend().claim_job(exact).await.unwrap().unwrap();
    assert_eq!(job.run_id, "email:2");
    let timeline = client.get_run_timeline("email:2").await.unwrap();
    let kinds: Vec<&str> = timeline.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"run_started"), "{kinds:?}");

    for bad in ["", "a*b*", "*x", "re*port"] {
        let e = client
            .backend()
            .claim_job(ClaimRequest::new(bad))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Validation(_)), "{bad:?}: {e:?}");
    }
}

pub(super) async fn a_silent_workers_run_is_resumed_after_its_lease(client: OnceOnly) {
    client.ai().run("report:resume").await.unwrap();
    // A worker that claims and then goes silent (as if its process were killed).
    let claim = ClaimRequest::new("report:resume").lease_ttl(Duration::from_secs(1));
    let dead = client.backend().claim_job(claim).await.unwrap().unwrap();
    assert_eq!(dead.attempt, 1);
    let waiter = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .ai()
                .run_and_wait("report:resume")
                .timeout(Duration::from_secs(30))
                .await
        })
    };
    let counts = Counts::default();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let (stop, stopped) = oneshot::channel::<()>();
    let seen = Arc::clone(&attempts);
    let worker = client
        .ai()
        .worker("report:*")
        .with_graceful_shutdown(async move {
            stopped.await.ok();
        });
    let serving = tokio::spawn(worker.serve(move |job: Job| {
        seen.lock().unwrap().push(job.attempt);
        async move { Ok::<_, Error>(job.attempt) }
    }));
    let done = waiter.await.unwrap().unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    assert_eq!(done.result.unwrap()["value"], 2);
    assert_eq!(*attempts.lock().unwrap(), [2]);
    // The silent worker's late completion is refused: the run is someone else's now.
    let late = client.ai().complete("report:resume", &dead.lease_id).await;
    assert!(matches!(late, Err(Error::LeaseLost { .. })), "{late:?}");
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
    assert!(counts.lock().unwrap().is_empty());
}

/// Queues `key`, serves it with a worker (at most 2 attempts, error code `report_failed`)
/// whose handler always fails, and returns how the run ended and the attempt numbers the
/// handler saw.
async fn run_with_a_failing_handler(client: &OnceOnly, key: &str) -> (AiResult, Vec<u64>) {
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let (stop, stopped) = oneshot::channel::<()>();
    let seen = Arc::clone(&attempts);
    let worker = client
        .ai()
        .worker(key)
        .max_attempts(2)
        .error_code("report_failed")
        .with_graceful_shutdown(async move {
            stopped.await.ok();
        });
    let serving = tokio::spawn(worker.serve(move |job: Job| {
        seen.lock().unwrap().push(job.attempt);
        async move { Err::<(), _>(format!("attempt {} broke", job.attempt)) }
    }));
    let done = client
        .ai()
        .run_and_wait(key)
        .timeout(Duration::from_secs(30))
        .await
        .unwrap();
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
    let attempts = attempts.lock().unwrap().clone();
    (done, attempts)
}

pub(super) async fn a_failing_handler_is_retried_then_fails_for_good(client: OnceOnly) {
    let (done, attempts) = run_with_a_failing_handler(&client, "flaky").await;
    assert_eq!(done.status, RunStatus::Failed);
    assert_eq!(done.error_code.as_deref(), Some("report_failed"));
    assert!(!done.retryable, "the last attempt fails the run for good");
    assert_eq!(attempts, [1, 2]);
}

/// A run queued on a key that callers acquired and released before counts its own attempts
/// from 1: the key's earlier acquisitions are not attempts of the run.
pub(super) async fn attempts_count_from_one_on_a_key_used_before(client: OnceOnly) {
    for _ in 0..2 {
        let failed = client
            .ai()
            .run_fn("reused", || async {
                Err::<(), _>(Error::Validation("declined".into()))
            })
            .await;
        assert!(failed.is_err(), "{failed:?}");
    }
    let (done, attempts) = run_with_a_failing_handler(&client, "reused").await;
    assert_eq!(done.status, RunStatus::Failed);
    assert_eq!(attempts, [1, 2]);
}

/// A panic is a failed attempt like an `Err`: counted against `max_attempts`, not a lease
/// dropped and the run claimed again at once, forever.
pub(super) async fn a_panicking_handler_counts_as_a_failed_attempt(client: OnceOnly) {
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let (stop, stopped) = oneshot::channel::<()>();
    let seen = Arc::clone(&attempts);
    let worker = client
        .ai()
        .worker("panicky")
        .max_attempts(3)
        .error_code("report_panicked")
        .with_graceful_shutdown(async move {
            stopped.await.ok();
        });
    let serving = tokio::spawn(worker.serve(move |job: Job| {
        seen.lock().unwrap().push(job.attempt);
        async move {
            if job.attempt < 10 {
                panic!("attempt {} blew up", job.attempt);
            }
            Ok::<_, Error>(())
        }
    }));
    let done = client
        .ai()
        .run_and_wait("panicky")
        .timeout(Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Failed);
    assert_eq!(done.error_code.as_deref(), Some("report_panicked"));
    assert!(!done.retryable);
    assert_eq!(*attempts.lock().unwrap(), [1, 2, 3]);
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
}

/// Copies of one claim sent at once (a retry while the first is still looking, maybe at
/// another replica) take one run between them, not one each.
pub(super) async fn concurrent_copies_of_a_claim_take_one_run(client: OnceOnly) {
    for i in 0..4 {
        client.ai().run(format!("copies:{i}")).await.unwrap();
    }
    let copies: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let claim = ClaimRequest::new("copies:*")
                    .lease_ttl(Duration::from_secs(60))
                    .wait(Duration::from_secs(2))
                    .acquisition_id("claim-copies");
                client.backend().claim_job(claim).await
            })
        })
        .collect();
    let mut taken = Vec::new();
    for copy in copies {
        let job = copy
            .await
            .unwrap()
            .unwrap()
            .expect("every copy answers the run taken");
        taken.push((job.key, job.lease_id));
    }
    taken.dedup();
    assert_eq!(taken.len(), 1, "one run for all copies: {taken:?}");
    // The other three are still queued for other claims.
    for _ in 0..3 {
        let other = client
            .backend()
            .claim_job(ClaimRequest::new("copies:*"))
            .await
            .unwrap()
            .expect("a queued run is left");
        assert_ne!(other.key, taken[0].0);
    }
}

pub(super) async fn a_claim_sent_again_gets_the_run_it_took(client: OnceOnly) {
    client.ai().run("batch:1").await.unwrap();
    client.ai().run("batch:2").await.unwrap();
    let claim = || {
        ClaimRequest::new("batch:*")
            .lease_ttl(Duration::from_secs(60))
            .acquisition_id("claim-7")
    };
    let first = client.backend().claim_job(claim()).await.unwrap().unwrap();
    let again = client.backend().claim_job(claim()).await.unwrap().unwrap();
    assert_eq!(
        first, again,
        "the same claim sent again is the same run and lease"
    );
    // Another claim takes the other run.
    let other = client
        .backend()
        .claim_job(ClaimRequest::new("batch:*"))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(other.key, first.key);
    // Once the run it took has ended, the name gives nothing back.
    client
        .ai()
        .complete(&first.key, &first.lease_id)
        .await
        .unwrap();
    assert!(client.backend().claim_job(claim()).await.unwrap().is_none());
    let bad = ClaimRequest::new("batch:*").acquisition_id("has space");
    let e = client.backend().claim_job(bad).await.unwrap_err();
    assert!(matches!(e, Error::Validation(_)), "{e:?}");
}
