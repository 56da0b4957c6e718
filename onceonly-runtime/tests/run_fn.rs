//! `run_fn` on the embedded engine: exactly once under concurrency, replay, cancellation,
//! fencing, failures and waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use onceonly_runtime::models::{LeaseRequest, RunStatus};
use onceonly_runtime::store::MemoryStore;
use onceonly_runtime::time::ManualClock;
use onceonly_runtime::{Engine, EngineConfig, Error, OnceOnly};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Receipt {
    charge_id: String,
    cents: u64,
}

fn manual_client() -> (OnceOnly, Engine, ManualClock) {
    let clock = ManualClock::default();
    let engine = Engine::with_config(
        MemoryStore::new(),
        EngineConfig::default(),
        Arc::new(clock.clone()),
    );
    (OnceOnly::from_backend(engine.clone()), engine, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_callers_run_the_closure_once_and_share_its_value() {
    let client = OnceOnly::memory();
    let runs = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let (client, runs) = (client.clone(), runs.clone());
            tokio::spawn(async move {
                client
                    .ai()
                    .run_fn("charge:order-1", || async move {
                        let n = runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, Error>(Receipt {
                            charge_id: format!("ch_{i}_{n}"),
                            cents: 500,
                        })
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut receipts = Vec::new();
    for t in tasks {
        receipts.push(t.await.unwrap());
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the closure ran exactly once"
    );
    assert!(
        receipts.iter().all(|r| r == &receipts[0]),
        "every caller got the same typed value"
    );
    assert_eq!(receipts[0].cents, 500);
}

#[tokio::test]
async fn a_duplicate_replays_the_stored_value_without_running() {
    let client = OnceOnly::memory();
    let first: String = client
        .ai()
        .run_fn("k", || async { Ok::<_, Error>("sent".to_owned()) })
        .await
        .unwrap();
    let again: String = client
        .ai()
        .run_fn("k", || async {
            Err::<String, _>(Error::Validation("must not run".into()))
        })
        .await
        .unwrap();
    assert_eq!((first.as_str(), again.as_str()), ("sent", "sent"));
    let unit: () = client
        .ai()
        .run_fn("unit", || async { Ok::<_, Error>(()) })
        .await
        .unwrap();
    let () = client
        .ai()
        .run_fn("unit", || async { Ok::<_, Error>(()) })
        .await
        .unwrap();
    assert_eq!(unit, ());
    let stored = client.ai().result("k").await.unwrap();
    assert_eq!(stored.status, RunStatus::Completed);
    assert_eq!(stored.result.unwrap()["value"], "sent");
}

#[tokio::test]
async fn a_stored_value_of_another_type_is_a_decode_error_not_a_rerun() {
    let client = OnceOnly::memory();
    let _: u32 = client
        .ai()
        .run_fn("typed", || async { Ok::<_, Error>(7u32) })
        .await
        .unwrap();
    let err = client
        .ai()
        .run_fn("typed", || async {
            Ok::<_, Error>(Receipt {
                charge_id: "x".into(),
                cents: 1,
            })
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_holder_releases_the_key_at_once() {
    let client = OnceOnly::memory();
    let (started_tx, started_rx) = oneshot::channel();
    let holder = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .ai()
                .run_fn("job", || async move {
                    started_tx.send(()).unwrap();
                    std::future::pending::<Result<u32, Error>>().await
                })
                .ttl(Duration::from_secs(3600))
                .await
        })
    };
    started_rx.await.unwrap();
    let busy = client
        .ai()
        .run_fn("job", || async { Ok::<_, Error>(1u32) })
        .wait_on_conflict(false)
        .await;
    assert!(matches!(busy, Err(Error::InProgress { .. })), "{busy:?}");

    holder.abort();
    assert!(holder.await.unwrap_err().is_cancelled());
    // No waiting for the one-hour TTL: the key is free as soon as the holder is gone.
    let status = client.ai().status("job").await.unwrap();
    assert_eq!(
        (status.status, status.error_code.as_deref()),
        (RunStatus::Failed, Some("cancelled"))
    );
    let v = client
        .ai()
        .run_fn("job", || async { Ok::<_, Error>(2u32) })
        .wait_on_conflict(false)
        .await
        .unwrap();
    assert_eq!(v, 2);
}

#[tokio::test]
async fn repro_lease_lost_after_expiry_and_reacquisition() {
    let (client, _engine, clock) = manual_client();
    let (started_tx, started_rx) = oneshot::channel();
    let (finish_tx, finish_rx) = oneshot::channel::<()>();
    let slow = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .ai()
                .run_fn("slow", || async move {
                    started_tx.send(()).unwrap();
                    finish_rx.await.unwrap();
                    Ok::<_, Error>("slow result".to_owned())
                })
                .ttl(Duration::from_secs(10))
                .heartbeat(Duration::from_secs(3600))
                .await
        })
    };
    started_rx.await.unwrap();
    clock.advance(Duration::from_secs(11));
    let fast: String = client
        .ai()
        .run_fn("slow", || async {
            Ok::<_, Error>("fast result".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(fast, "fast result");

    finish_tx.send(()).unwrap();
    let late = slow.await.unwrap();
    assert!(
        matches!(late, Err(Error::LeaseLost { ref key }) if key == "slow"),
        "{late:?}"
    );
    let stored: String = client
        .ai()
        .run_fn("slow", || async { Ok::<_, Error>("never".to_owned()) })
        .await
        .unwrap();
    assert_eq!(
        stored, "fast result",
        "the late holder did not overwrite the result"
    );
}

#[tokio::test(start_paused = true)]
async fn the_heartbeat_keeps_a_long_job_exclusive() {
    let (client, engine, clock) = manual_client();
    let probe = engine.clone();
    let out = client
        .ai()
        .run_fn("long", || async move {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                clock.advance(Duration::from_secs(3)); // 15 s in all, past the 10 s TTL
            }
            let other = probe.lease(LeaseRequest::new("long")).await?;
            Ok::<_, Error>(other.status)
        })
        .ttl(Duration::from_secs(10))
        .heartbeat(Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(
        out,
        RunStatus::InProgress,
        "extended leases stay exclusive past the first TTL"
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiter_wakes_when_the_holder_completes_not_on_a_polling_tick() {
    let client = OnceOnly::memory();
    let (started_tx, started_rx) = oneshot::channel();
    let holder = {
        let client = client.clone();
        tokio::spawn(async move {
            let v = client
                .ai()
                .run_fn("wake", || async move {
                    started_tx.send(()).unwrap();
                    tokio::time::sleep(Duration::from_millis(1234)).await;
                    Ok::<_, Error>(41u32)
                })
                .await
                .unwrap();
            (v, tokio::time::Instant::now())
        })
    };
    started_rx.await.unwrap();
    let waited = client
        .ai()
        .run_fn("wake", || async { Ok::<_, Error>(0u32) })
        .await
        .unwrap();
    let woke_at = tokio::time::Instant::now();
    let (v, completed_at) = holder.await.unwrap();
    assert_eq!((v, waited), (41, 41));
    // The paused clock only moves to the next timer: a polling waiter would wake on its own
    // tick, after the completion; a notified waiter wakes at the completion's instant.
    assert_eq!(
        woke_at, completed_at,
        "the waiter woke at the completion, with no polling delay"
    );
}

#[tokio::test]
async fn an_error_releases_the_key_so_a_retry_runs_again() {
    let client = OnceOnly::memory();
    let first = client
        .ai()
        .run_fn("flaky", || async {
            Err::<u32, _>(Error::Validation("card declined".into()))
        })
        .await;
    assert!(matches!(first, Err(Error::Validation(ref m)) if m == "card declined"));
    let status = client.ai().status("flaky").await.unwrap();
    assert_eq!(
        (
            status.status,
            status.error_code.as_deref(),
            status.retryable
        ),
        (RunStatus::Failed, Some("fn_error"), true)
    );
    let second = client
        .ai()
        .run_fn("flaky", || async { Ok::<_, Error>(9u32) })
        .await
        .unwrap();
    assert_eq!(second, 9);
}

#[tokio::test]
async fn terminal_failures_stick() {
    let client = OnceOnly::memory();
    let first = client
        .ai()
        .run_fn("final", || async {
            Err::<u32, _>(Error::Validation("no".into()))
        })
        .terminal_failures(true)
        .error_code("card_declined")
        .await;
    assert!(first.is_err());
    let again = client
        .ai()
        .run_fn("final", || async { Ok::<_, Error>(1u32) })
        .await;
    assert!(
        matches!(again, Err(Error::PreviouslyFailed { ref error_code, .. }) if error_code == "card_declined"),
        "{again:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_is_bounded_by_the_timeout() {
    let client = OnceOnly::memory();
    let lease = client
        .ai()
        .lease("held")
        .ttl(Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(lease.status, RunStatus::Acquired);
    let err = client
        .ai()
        .run_fn("held", || async { Ok::<_, Error>(1u32) })
        .timeout(Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InProgress { ref key, retry_after: Some(_) } if key == "held"),
        "{err:?}"
    );
    assert!(err.is_retryable());
    let waited = client
        .ai()
        .wait("held")
        .timeout(Duration::from_secs(1))
        .await;
    assert!(matches!(waited, Err(Error::Timeout(_))), "{waited:?}");
}

#[tokio::test]
async fn a_waiter_takes_over_when_the_holder_fails() {
    let client = OnceOnly::memory();
    let (started_tx, started_rx) = oneshot::channel();
    let (fail_tx, fail_rx) = oneshot::channel::<()>();
    let holder = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .ai()
                .run_fn("handover", || async move {
                    started_tx.send(()).unwrap();
                    fail_rx.await.unwrap();
                    Err::<u32, _>(Error::Validation("first attempt failed".into()))
                })
                .await
        })
    };
    started_rx.await.unwrap();
    let waiter = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .ai()
                .run_fn("handover", || async { Ok::<_, Error>(2u32) })
                .await
        })
    };
    tokio::task::yield_now().await;
    fail_tx.send(()).unwrap();
    assert!(holder.await.unwrap().is_err());
    assert_eq!(
        waiter.await.unwrap().unwrap(),
        2,
        "the waiter acquired the released key and ran"
    );
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_runs() {
    let client = OnceOnly::memory();
    let ran = Arc::new(AtomicUsize::new(0));
    for key in [String::new(), "k".repeat(300)] {
        let ran = ran.clone();
        let err = client
            .ai()
            .run_fn(key, || async move {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Error>(())
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Validation(_)), "{err:?}");
    }
    let err = client
        .ai()
        .run_fn("k", || async { Ok::<_, Error>(()) })
        .ttl(Duration::ZERO)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ttl"), "{err}");
    let err = client
        .check_lock("k")
        .ttl(Duration::from_secs(400 * 24 * 3600))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Validation(_)),
        "validation errors never fail open: {err:?}"
    );
    let mut meta = onceonly_runtime::JsonMap::new();
    meta.insert("blob".into(), "x".repeat(5000).into());
    let err = client.check_lock("k").metadata(meta).await.unwrap_err();
    assert!(err.to_string().contains("metadata"), "{err}");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn check_lock_locks_then_reports_duplicates_until_released() {
    let client = OnceOnly::memory();
    let first = client
        .check_lock("evt_1")
        .ttl(Duration::from_secs(60))
        .request_id("req-1")
        .await
        .unwrap();
    assert!(first.should_proceed() && first.fail_open.is_none());
    assert_eq!(
        (first.ttl, first.request_id.as_deref()),
        (60, Some("req-1"))
    );
    let dup = client.check_lock("evt_1").await.unwrap();
    assert!(dup.is_duplicate() && !dup.should_proceed());
    assert!(dup.first_seen_at.is_some());
    assert!(client.release_lock("evt_1").await.unwrap());
    assert!(client.check_lock("evt_1").await.unwrap().should_proceed());
}

#[tokio::test]
async fn repro_unbounded_waits_do_not_overflow_the_clock() {
    let client = OnceOnly::memory();
    let v: u32 = client
        .ai()
        .run_fn("forever", || async { Ok::<_, Error>(3) })
        .timeout(Duration::MAX)
        .heartbeat(Duration::MAX)
        .await
        .unwrap();
    assert_eq!(v, 3);
    let waited = client
        .ai()
        .wait("forever")
        .timeout(Duration::MAX)
        .await
        .unwrap();
    assert_eq!(waited.status, RunStatus::Completed);
    let st = client
        .backend()
        .wait_status("forever", Duration::MAX)
        .await
        .unwrap();
    assert_eq!(st.status, RunStatus::Completed);
}

/// Runs `value` twice under `key` and checks that the first call's value was refused as
/// unstorable (`Error::Decode`), the key failed for good, and the closure ran once.
async fn an_unstorable_value_fails_the_key_for_good<T>(key: &str, value: fn() -> T)
where
    T: Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let client = OnceOnly::memory();
    let runs = Arc::new(AtomicUsize::new(0));
    let call = || {
        let runs = runs.clone();
        client.ai().run_fn(key, move || async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Error>(value())
        })
    };
    let first = call().await;
    assert!(matches!(first, Err(Error::Decode(_))), "{:?}", first.err());
    let again = call().await;
    assert!(
        matches!(again, Err(Error::PreviouslyFailed { ref error_code, .. }) if error_code == onceonly_runtime::wire::error_code::RESULT_NOT_SERIALIZABLE),
        "{:?}",
        again.err()
    );
    let ran = runs.load(Ordering::SeqCst);
    assert_eq!(ran, 1, "the side effect is not repeated");
}

/// JSON has no NaN: stored as `null`, the value would fail to decode on every replay. It is
/// refused like an unserializable value instead, and the key fails for good.
#[tokio::test]
async fn a_result_that_would_not_read_back_fails_the_key_for_good() {
    an_unstorable_value_fails_the_key_for_good("nan", || f64::NAN).await;
}

#[tokio::test]
async fn repro_a_result_that_cannot_be_stored_fails_the_key_for_good() {
    use std::collections::HashMap;
    // JSON objects need string keys: this map cannot be stored, but the closure did run.
    an_unstorable_value_fails_the_key_for_good("unstorable", || HashMap::from([((1u8, 2u8), 3u8)]))
        .await;
}

/// Holds the answer of every lease write for 200 ms after it reached the store, as a remote
/// store's or server's round trip does.
struct SlowLeaseAnswers;

impl onceonly_runtime::store::StoreHooks for SlowLeaseAnswers {
    fn after_write(
        &self,
        key: &str,
        _: Option<u64>,
    ) -> impl std::future::Future<Output = onceonly_runtime::Result<()>> + Send {
        let slow = key == "slow";
        async move {
            if slow {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(())
        }
    }
}

/// A caller cut off while its lease is on the wire (a timeout fired, a client hung up) does
/// not leave the key taken by a lease nobody knows the id of: the lease call finishes in the
/// background and, having acquired, cancels. Without that the next caller waits out the TTL.
#[tokio::test]
async fn a_caller_dropped_while_its_lease_is_on_the_wire_leaves_the_key_free() {
    use onceonly_runtime::store::Hooked;
    use std::future::IntoFuture;
    let engine = Engine::new(Hooked::new(MemoryStore::new(), SlowLeaseAnswers));
    let client = OnceOnly::from_backend(engine);
    let ran = Arc::new(AtomicUsize::new(0));
    let call = |value: u8| {
        let ran = ran.clone();
        client
            .ai()
            .run_fn("slow", move || async move {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Error>(value)
            })
            .ttl(Duration::from_secs(300))
            .wait_on_conflict(false)
            .into_future()
    };
    let cut = tokio::time::timeout(Duration::from_millis(50), call(1)).await;
    assert!(
        cut.is_err(),
        "the first caller was cut off mid-lease: {cut:?}"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);

    // The lease landed; its answer arrives 200 ms later and the background cancels it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let value = loop {
        match call(2).await {
            Ok(value) => break value,
            Err(Error::InProgress { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("the key stayed taken (TTL 300 s): {other:?}"),
        }
    };
    assert_eq!((value, ran.load(Ordering::SeqCst)), (2, 1));
}
