//! A worker stopped while its claim is on the wire: the claim is let finish and the run it
//! took is back in the queue when `serve` returns, instead of being held by nobody for its
//! lease (a runtime that ends with `serve` would lose a give-back left to the background).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use onceonly_runtime::ai::Job;
use onceonly_runtime::models::RunStatus;
use onceonly_runtime::store::{Hooked, MemoryStore, StoreHooks};
use onceonly_runtime::{Engine, Error, OnceOnly};
use tokio::sync::{Notify, oneshot};

/// Once armed, holds the answer of every write of the run's record for 300 ms after it
/// reached the store (a remote store's round trip), and says when one landed.
#[derive(Clone)]
struct SlowRunWrites {
    armed: Arc<AtomicBool>,
    landed: Arc<Notify>,
}

impl StoreHooks for SlowRunWrites {
    fn after_write(
        &self,
        key: &str,
        _: Option<u64>,
    ) -> impl std::future::Future<Output = onceonly_runtime::Result<()>> + Send {
        let slow = self.armed.load(Ordering::SeqCst) && key.ends_with("report:1");
        if slow {
            self.landed.notify_one();
        }
        async move {
            if slow {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Ok(())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_mid_claim_gives_the_run_back() {
    let hooks = SlowRunWrites {
        armed: Arc::new(AtomicBool::new(false)),
        landed: Arc::new(Notify::new()),
    };
    let engine = Engine::new(Hooked::new(MemoryStore::new(), hooks.clone()));
    let client = OnceOnly::from_backend(engine);
    client.ai().run("report:1").await.unwrap();
    hooks.armed.store(true, Ordering::SeqCst);

    // The first worker's claim takes the run; while its answer is on the way, it is stopped.
    let (stop, stopped) = oneshot::channel::<()>();
    let first = client
        .ai()
        .worker("report:*")
        .lease_ttl(Duration::from_secs(300))
        .with_graceful_shutdown(async move {
            stopped.await.ok();
        });
    let first = tokio::spawn(first.serve(|_: Job| async { Ok::<_, Error>("first") }));
    hooks.landed.notified().await;
    stop.send(()).unwrap();
    first.await.unwrap().unwrap();
    let status = client.ai().status("report:1").await.unwrap();
    assert!(
        status.queued,
        "back in the queue when `serve` returns: {status:?}"
    );

    // Without the give-back the run would be held for the first worker's 300 s lease.
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&attempts);
    let (stop, stopped) = oneshot::channel::<()>();
    let second = client
        .ai()
        .worker("report:*")
        .with_graceful_shutdown(async move {
            stopped.await.ok();
        });
    let second = tokio::spawn(second.serve(move |job: Job| {
        seen.lock().unwrap().push(job.attempt);
        async { Ok::<_, Error>("second") }
    }));
    let done = client
        .ai()
        .run_and_wait("report:1")
        .timeout(Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Completed, "{done:?}");
    assert_eq!(done.result.unwrap()["value"], "second");
    // The claim that was given back counted as an attempt: it did take the run.
    assert_eq!(*attempts.lock().unwrap(), [2]);
    stop.send(()).unwrap();
    second.await.unwrap().unwrap();
}
