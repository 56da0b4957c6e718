//! One behaviour suite, every backend and store: each case runs against the embedded engine
//! over the memory, Redis (a private `redis-server`) and SQLite (a temporary file) stores, and
//! against the HTTP backend talking to a real `onceonly-server` on loopback over each of those
//! stores. The semantics are written once, in the engine; this suite proves every store and the
//! HTTP translation (client and server) keep every one of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use onceonly_runtime::models::{LeaseRequest, RunEvent, RunStatus, UsageKind};
use onceonly_runtime::{Error, OnceOnly};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Receipt {
    charge_id: String,
    cents: u64,
}

fn receipt(id: &str) -> Receipt {
    Receipt {
        charge_id: id.to_owned(),
        cents: 500,
    }
}

/// How a failed key must read, through `status` and `result` alike.
struct Failed<'a> {
    error_code: &'a str,
    retryable: bool,
    cancel_reason: Option<&'a str>,
}

async fn assert_failed(client: &OnceOnly, key: &str, want: Failed<'_>) {
    let status = client.ai().status(key).await.unwrap();
    let result = client.ai().result(key).await.unwrap();
    for (status, error_code, retryable, reason) in [
        (
            status.status,
            &status.error_code,
            status.retryable,
            &status.cancel_reason,
        ),
        (
            result.status,
            &result.error_code,
            result.retryable,
            &result.cancel_reason,
        ),
    ] {
        assert_eq!(status, RunStatus::Failed, "{key}");
        assert_eq!(error_code.as_deref(), Some(want.error_code), "{key}");
        assert_eq!(retryable, want.retryable, "{key}");
        assert_eq!(reason.as_deref(), want.cancel_reason, "{key}");
    }
    assert!(status.done_at.is_some() && result.result.is_none(), "{key}");
}

/// Governance cases (policies, kill switch, limits, audit, tools registry).
#[path = "backends/gov.rs"]
mod gov;
/// Queued-run cases (workers, claims, retries, resumption).
#[path = "backends/jobs.rs"]
mod jobs;

/// The cases, each a plain async function over a client.
mod cases {
    pub(super) use crate::gov::*;
    pub(super) use crate::jobs::*;

    use super::*;

    pub(super) async fn check_lock_locks_then_reports_duplicates(client: OnceOnly) {
        let first = client
            .check_lock("stripe:evt_1")
            .ttl(Duration::from_secs(60))
            .await
            .unwrap();
        assert!(first.should_proceed(), "{first:?}");
        assert_eq!(first.first_seen_at, None);
        assert_eq!(first.fail_open, None);
        let again = client.check_lock("stripe:evt_1").await.unwrap();
        assert!(again.is_duplicate() && !again.locked, "{again:?}");
        assert!(again.first_seen_at.is_some());
        let other = client.check_lock("stripe:evt_2").await.unwrap();
        assert!(other.should_proceed());
    }

    pub(super) async fn release_lock_lets_the_key_lock_again(client: OnceOnly) {
        assert!(client.check_lock("evt").await.unwrap().locked);
        assert!(client.release_lock("evt").await.unwrap());
        assert!(!client.release_lock("evt").await.unwrap());
        assert!(!client.release_lock("never-locked").await.unwrap());
        assert!(client.check_lock("evt").await.unwrap().should_proceed());
    }

    pub(super) async fn release_own_lock_removes_only_that_lock(client: OnceOnly) {
        let first = client.check_lock("evt").await.unwrap();
        assert!(first.lock_id.is_some(), "{first:?}");
        let dup = client.check_lock("evt").await.unwrap();
        assert_eq!(dup.lock_id, None);
        assert!(
            !client.release_own_lock(&dup).await.unwrap(),
            "a duplicate answer holds nothing to release"
        );
        assert!(client.check_lock("evt").await.unwrap().duplicate);
        assert!(client.release_own_lock(&first).await.unwrap());

        // Someone else locks the key now: the first holder's late release must not touch it.
        let second = client.check_lock("evt").await.unwrap();
        assert!(second.should_proceed());
        assert_ne!(second.lock_id, first.lock_id);
        assert!(!client.release_own_lock(&first).await.unwrap());
        assert!(client.check_lock("evt").await.unwrap().duplicate);
        assert!(client.release_own_lock(&second).await.unwrap());
        assert!(client.check_lock("evt").await.unwrap().should_proceed());
    }

    pub(super) async fn bad_input_is_a_validation_error(client: OnceOnly) {
        for e in [
            client.check_lock("").await.unwrap_err(),
            client.check_lock("k".repeat(257)).await.unwrap_err(),
            client.ai().lease("").await.unwrap_err(),
            client
                .ai()
                .lease("k")
                .ttl(Duration::ZERO)
                .await
                .unwrap_err(),
            // Sub-second and absurd TTLs are refused on every backend, not rounded or clamped.
            client
                .check_lock("k")
                .ttl(Duration::from_millis(500))
                .await
                .unwrap_err(),
            client
                .ai()
                .lease("k")
                .ttl(Duration::from_secs(31 * 24 * 3600))
                .await
                .unwrap_err(),
            client
                .ai()
                .lease("k")
                .metadata(onceonly_runtime::JsonMap::from_iter([(
                    "blob".to_owned(),
                    "x".repeat(4096).into(),
                )]))
                .await
                .unwrap_err(),
            client
                .check_lock("k")
                .request_id("two words")
                .await
                .unwrap_err(),
            client
                .backend()
                .lease(LeaseRequest::new("k").acquisition_id("caf\u{e9}"))
                .await
                .unwrap_err(),
        ] {
            assert!(matches!(e, Error::Validation(_)), "{e:?}");
        }
        // Nothing was locked or leased by the refused calls.
        assert!(client.check_lock("k").await.unwrap().should_proceed());
        assert_eq!(
            client.ai().lease("k").await.unwrap().status,
            RunStatus::Acquired
        );
    }

    pub(super) async fn run_fn_replays_the_typed_value(client: OnceOnly) {
        let calls = AtomicUsize::new(0);
        let charge = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Error>(receipt("ch_1"))
        };
        let first: Receipt = client.ai().run_fn("charge:o1", charge).await.unwrap();
        let again: Receipt = client.ai().run_fn("charge:o1", charge).await.unwrap();
        assert_eq!(first, receipt("ch_1"));
        assert_eq!(again, first);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Non-object values round-trip too.
        let n: u32 = client
            .ai()
            .run_fn("count", || async { Ok::<_, Error>(7u32) })
            .await
            .unwrap();
        let m: u32 = client
            .ai()
            .run_fn("count", || async { Ok::<_, Error>(8u32) })
            .await
            .unwrap();
        assert_eq!((n, m), (7, 7));
        let status = client.ai().status("charge:o1").await.unwrap();
        assert_eq!(status.status, RunStatus::Completed);
        let stored = client.ai().result("charge:o1").await.unwrap();
        assert_eq!(
            stored.result.unwrap()["charge_id"],
            serde_json::json!("ch_1")
        );
    }

    pub(super) async fn concurrent_callers_run_the_closure_once(client: OnceOnly) {
        let runs = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let (client, runs) = (client.clone(), Arc::clone(&runs));
                tokio::spawn(async move {
                    client
                        .ai()
                        .run_fn("charge:concurrent", || async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Ok::<_, Error>(receipt(&format!("ch_{i}")))
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut values = Vec::new();
        for t in tasks {
            values.push(t.await.unwrap());
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(values.iter().all(|v| *v == values[0]), "{values:?}");
    }

    pub(super) async fn a_dropped_holder_releases_the_key(client: OnceOnly) {
        let (started_tx, started_rx) = oneshot::channel();
        let holder = {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .ai()
                    .run_fn("email:u1", || async move {
                        let _ = started_tx.send(());
                        std::future::pending::<Result<Receipt, Error>>().await
                    })
                    .ttl(Duration::from_secs(300))
                    .await
            })
        };
        started_rx.await.unwrap();
        holder.abort();
        let _ = holder.await;
        // The cancel-on-drop runs in the background: wait for the key to settle.
        let settled = client
            .ai()
            .wait("email:u1")
            .timeout(Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(settled.status, RunStatus::Failed);
        let dropped = Failed {
            error_code: "cancelled",
            retryable: true,
            cancel_reason: Some("dropped"),
        };
        assert_failed(&client, "email:u1", dropped).await;
        // The lease lives 300 s; only the cancel-on-drop frees the key within the 30 s bound.
        let value: Receipt = client
            .ai()
            .run_fn("email:u1", || async { Ok::<_, Error>(receipt("second")) })
            .timeout(Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(value, receipt("second"));
    }

    pub(super) async fn a_user_error_releases_the_key(client: OnceOnly) {
        let e = client
            .ai()
            .run_fn("charge:o2", || async {
                Err::<Receipt, _>(Error::Validation("card declined".into()))
            })
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::Validation(ref m) if m == "card declined"),
            "{e:?}"
        );
        let released = Failed {
            error_code: onceonly_runtime::wire::error_code::FN_ERROR,
            retryable: true,
            cancel_reason: None,
        };
        assert_failed(&client, "charge:o2", released).await;
        let calls = AtomicUsize::new(0);
        let value: Receipt = client
            .ai()
            .run_fn("charge:o2", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Error>(receipt("retry"))
            })
            .wait_on_conflict(false)
            .await
            .unwrap();
        assert_eq!((value, calls.load(Ordering::SeqCst)), (receipt("retry"), 1));
    }

    pub(super) async fn terminal_failures_are_remembered(client: OnceOnly) {
        let _ = client
            .ai()
            .run_fn("charge:o3", || async {
                Err::<Receipt, _>(Error::Validation("fraud".into()))
            })
            .terminal_failures(true)
            .error_code("fraud_suspected")
            .await
            .unwrap_err();
        let e = client
            .ai()
            .run_fn("charge:o3", || async { Ok::<_, Error>(receipt("never")) })
            .await
            .unwrap_err();
        match e {
            Error::PreviouslyFailed { key, error_code } => {
                assert_eq!(
                    (key.as_str(), error_code.as_str()),
                    ("charge:o3", "fraud_suspected")
                )
            }
            e => panic!("{e:?}"),
        }
        let terminal = Failed {
            error_code: "fraud_suspected",
            retryable: false,
            cancel_reason: None,
        };
        assert_failed(&client, "charge:o3", terminal).await;
    }

    pub(super) async fn a_conflicting_repeat_is_refused_and_the_first_stands(client: OnceOnly) {
        let ai = client.ai();
        let id = ai.lease("c:1").await.unwrap().lease_id.unwrap();
        let mut first = onceonly_runtime::JsonMap::new();
        first.insert("receipt".into(), "r_1".into());
        ai.complete("c:1", &id).result(first.clone()).await.unwrap();
        ai.complete("c:1", &id)
            .result(first.clone())
            .await
            .expect("the same result again is a no-op");
        let mut second = first.clone();
        second.insert("receipt".into(), "r_2".into());
        let e = ai.complete("c:1", &id).result(second).await.unwrap_err();
        assert!(
            matches!(&e, Error::Conflict { key, reason } if key == "c:1" && !reason.is_empty()),
            "{e:?}"
        );
        assert_eq!(ai.result("c:1").await.unwrap().result, Some(first));
    }

    pub(super) async fn every_failure_reads_back_its_code(client: OnceOnly) {
        let ai = client.ai();
        let lease = |key: &'static str| {
            let ai = client.ai();
            async move { ai.lease(key).await.unwrap().lease_id.unwrap() }
        };
        // Terminal failure, and a repeat with the same code (an idempotent no-op).
        let id = lease("f:terminal").await;
        let failed = ai.fail("f:terminal", &id, "card_declined").await.unwrap();
        assert_eq!(failed.status, RunStatus::Failed);
        assert_eq!(failed.error_code.as_deref(), Some("card_declined"));
        assert!(!failed.retryable);
        ai.fail("f:terminal", &id, "card_declined").await.unwrap();
        let other = ai.fail("f:terminal", &id, "fraud").await.unwrap_err();
        assert!(
            matches!(&other, Error::Conflict { key, .. } if key == "f:terminal"),
            "{other:?}"
        );
        let terminal = Failed {
            error_code: "card_declined",
            retryable: false,
            cancel_reason: None,
        };
        assert_failed(&client, "f:terminal", terminal).await;
        let again = ai.lease("f:terminal").await.unwrap();
        assert_eq!(again.status, RunStatus::Failed);
        assert_eq!(again.error_code.as_deref(), Some("card_declined"));

        // Retryable failure: released with its own code, not `cancelled`.
        let id = lease("f:retry").await;
        let released = ai
            .fail("f:retry", &id, "upstream_timeout")
            .retryable(true)
            .await
            .unwrap();
        assert_eq!(released.error_code.as_deref(), Some("upstream_timeout"));
        assert!(released.retryable);
        let retry = Failed {
            error_code: "upstream_timeout",
            retryable: true,
            cancel_reason: None,
        };
        assert_failed(&client, "f:retry", retry).await;
        assert_eq!(
            ai.lease("f:retry").await.unwrap().status,
            RunStatus::Acquired
        );

        // Cancel with and without a reason: the code is `cancelled`, the reason reads back.
        let id = lease("f:cancel").await;
        let cancelled = ai
            .cancel("f:cancel", &id)
            .reason("user aborted")
            .await
            .unwrap();
        assert_eq!(cancelled.cancel_reason.as_deref(), Some("user aborted"));
        let with_reason = Failed {
            error_code: "cancelled",
            retryable: true,
            cancel_reason: Some("user aborted"),
        };
        assert_failed(&client, "f:cancel", with_reason).await;
        let id = lease("f:cancel-bare").await;
        ai.cancel("f:cancel-bare", &id).await.unwrap();
        let bare = Failed {
            error_code: "cancelled",
            retryable: true,
            cancel_reason: None,
        };
        assert_failed(&client, "f:cancel-bare", bare).await;
    }

    pub(super) async fn a_waiter_is_woken_by_completion(client: OnceOnly) {
        let lease = client
            .ai()
            .lease("report:1")
            .ttl(Duration::from_secs(300))
            .await
            .unwrap();
        assert_eq!(lease.status, RunStatus::Acquired);
        let lease_id = lease.lease_id.unwrap();
        let busy = client.ai().lease("report:1").await.unwrap();
        assert_eq!(busy.status, RunStatus::InProgress);
        assert_eq!(busy.lease_id, None, "the holder's lease id must not leak");
        let waiter = {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .ai()
                    .wait("report:1")
                    .timeout(Duration::from_secs(60))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let result = serde_json::json!({"pages": 3})
            .as_object()
            .cloned()
            .unwrap();
        client
            .ai()
            .complete("report:1", &lease_id)
            .result(result.clone())
            .await
            .unwrap();
        let done = waiter.await.unwrap().unwrap();
        assert_eq!(done.status, RunStatus::Completed);
        assert_eq!(done.result, Some(result));
    }

    pub(super) async fn a_run_fn_waiting_on_a_holder_gets_its_value(client: OnceOnly) {
        let (go_tx, go_rx) = oneshot::channel::<()>();
        let (started_tx, started_rx) = oneshot::channel();
        let holder = {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .ai()
                    .run_fn("sync:1", || async move {
                        let _ = started_tx.send(());
                        let _ = go_rx.await;
                        Ok::<_, Error>(receipt("holder"))
                    })
                    .await
            })
        };
        started_rx.await.unwrap();
        let busy = client
            .ai()
            .run_fn("sync:1", || async { Ok::<_, Error>(receipt("no")) })
            .wait_on_conflict(false)
            .await
            .unwrap_err();
        assert!(matches!(busy, Error::InProgress { .. }), "{busy:?}");
        let waiter = {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .ai()
                    .run_fn("sync:1", || async { Ok::<_, Error>(receipt("waiter")) })
                    .await
            })
        };
        go_tx.send(()).unwrap();
        assert_eq!(holder.await.unwrap().unwrap(), receipt("holder"));
        assert_eq!(waiter.await.unwrap().unwrap(), receipt("holder"));
    }

    pub(super) async fn a_stale_lease_id_is_lease_lost(client: OnceOnly) {
        let ai = client.ai();
        let first = ai.lease("fence").await.unwrap().lease_id.unwrap();
        ai.cancel("fence", &first)
            .reason("giving up")
            .await
            .unwrap();
        let cancelled = Failed {
            error_code: "cancelled",
            retryable: true,
            cancel_reason: Some("giving up"),
        };
        assert_failed(&client, "fence", cancelled).await;
        let second = ai.lease("fence").await.unwrap();
        assert_eq!(second.status, RunStatus::Acquired);
        let second_id = second.lease_id.unwrap();
        assert_ne!(first, second_id);
        for e in [
            ai.complete("fence", &first).await.unwrap_err(),
            ai.extend("fence", &first).await.unwrap_err(),
            ai.fail("fence", &first, "x").await.unwrap_err(),
            ai.cancel("fence", &first).await.unwrap_err(),
        ] {
            assert!(
                matches!(&e, Error::LeaseLost { key } if key == "fence"),
                "{e:?}"
            );
        }
        let extended = ai
            .extend("fence", &second_id)
            .ttl(Duration::from_secs(60))
            .await
            .unwrap();
        assert!(extended.ok);
        ai.complete("fence", &second_id).await.unwrap();
        assert_eq!(
            ai.status("fence").await.unwrap().status,
            RunStatus::Completed
        );
    }

    pub(super) async fn a_holder_that_outlives_its_ttl_gets_lease_lost(client: OnceOnly) {
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
                    // A one-second lease that nothing extends: it runs out under the closure.
                    .ttl(Duration::from_secs(1))
                    .heartbeat(Duration::from_secs(3600))
                    .await
            })
        };
        started_rx.await.unwrap();
        // Nobody has taken the key yet once the lease runs out: it reads as expired.
        let expired = client
            .ai()
            .wait("slow")
            .timeout(Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(expired.status, RunStatus::Failed);
        let lapsed = Failed {
            error_code: "lease_expired",
            retryable: true,
            cancel_reason: None,
        };
        assert_failed(&client, "slow", lapsed).await;
        // Waits for the slow holder, then acquires once its lease has run out.
        let fast: String = client
            .ai()
            .run_fn("slow", || async {
                Ok::<_, Error>("fast result".to_owned())
            })
            .timeout(Duration::from_secs(30))
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
        assert_eq!(stored, "fast result", "the late holder wrote nothing");
    }

    pub(super) async fn observers_of_a_held_lease_see_its_metadata(client: OnceOnly) {
        let ai = client.ai();
        let mut metadata = onceonly_runtime::JsonMap::new();
        metadata.insert("fingerprint".into(), "f-1".into());
        let held = ai.lease("meta").metadata(metadata.clone()).await.unwrap();
        assert_eq!(held.status, RunStatus::Acquired);
        let lease_id = held.lease_id.unwrap();

        let busy = ai.lease("meta").await.unwrap();
        assert_eq!(busy.status, RunStatus::InProgress);
        assert_eq!(busy.metadata, Some(metadata));

        // Only a live holder's metadata is shown: a completed key answers with its result.
        ai.complete("meta", &lease_id).await.unwrap();
        let done = ai.lease("meta").await.unwrap();
        assert_eq!(done.status, RunStatus::Completed);
        assert_eq!(done.metadata, None);
    }

    pub(super) async fn a_result_the_backend_refuses_fails_the_key_for_good(client: OnceOnly) {
        let runs = Arc::new(AtomicUsize::new(0));
        let call = || {
            let runs = runs.clone();
            client.ai().run_fn("too-big", move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                // Just over the engine's 1 MiB result limit, within what the server's
                // `complete` route reads: refused by the engine itself (422).
                Ok::<_, Error>("x".repeat((1 << 20) + (16 << 10)))
            })
        };
        let first = call().await.unwrap_err();
        assert!(first.is_content_refused(), "{first:?}");
        let again = call().await.unwrap_err();
        assert!(
            matches!(&again, Error::PreviouslyFailed { error_code, .. }
                if error_code == onceonly_runtime::wire::error_code::RESULT_NOT_STORED),
            "{again:?}"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the side effect ran once");
        let refused = Failed {
            error_code: onceonly_runtime::wire::error_code::RESULT_NOT_STORED,
            retryable: false,
            cancel_reason: None,
        };
        assert_failed(&client, "too-big", refused).await;
    }

    pub(super) async fn heartbeats_keep_a_long_run_alive(client: OnceOnly) {
        let (go_tx, go_rx) = oneshot::channel::<()>();
        let (started_tx, started_rx) = oneshot::channel();
        let holder = {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .ai()
                    .run_fn("long:1", || async move {
                        let _ = started_tx.send(());
                        let _ = go_rx.await;
                        Ok::<_, Error>(receipt("long"))
                    })
                    .ttl(Duration::from_secs(2))
                    .heartbeat(Duration::from_millis(200))
                    .await
            })
        };
        started_rx.await.unwrap();
        // Twice the TTL: without heartbeats the lease would have expired by now.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let busy = client
            .ai()
            .run_fn("long:1", || async { Ok::<_, Error>(receipt("intruder")) })
            .wait_on_conflict(false)
            .await
            .unwrap_err();
        assert!(matches!(busy, Error::InProgress { .. }), "{busy:?}");
        go_tx.send(()).unwrap();
        assert_eq!(holder.await.unwrap().unwrap(), receipt("long"));
    }

    pub(super) async fn usage_counts_check_locks_and_acquisitions(client: OnceOnly) {
        let make0 = client.usage().await.unwrap();
        let ai0 = client.usage().kind(UsageKind::Ai).await.unwrap();
        client.check_lock("u:1").await.unwrap();
        client.check_lock("u:1").await.unwrap();
        let lease = client.ai().lease("u:job").await.unwrap();
        assert_eq!(lease.status, RunStatus::Acquired);
        // Answers that acquire nothing are free polling, not usage.
        let busy = client.ai().lease("u:job").await.unwrap();
        assert_eq!(busy.status, RunStatus::InProgress);
        let make = client.usage().kind(UsageKind::Make).await.unwrap();
        let ai = client.usage().kind(UsageKind::Ai).await.unwrap();
        assert_eq!(make.usage, make0.usage + 2);
        assert_eq!(ai.usage, ai0.usage + 1);
        assert_eq!(ai.requests_total_month, ai0.requests_total_month + 2);
        let all = client.usage_all().await.unwrap();
        assert_eq!((all.make.usage, all.ai.usage), (make.usage, ai.usage));
        assert_eq!(
            all.ai.polling_total_month,
            ai.requests_total_month - ai.usage
        );
        assert_eq!(all.plan, make.plan);
        let me = client.me().await.unwrap();
        assert_eq!(me.plan, make.plan);
        assert!(me.is_active);
        assert_eq!(me.month.as_deref(), Some(make.month.as_str()));
        assert_eq!(
            me.requests_total_month,
            all.make.requests_total_month + all.ai.requests_total_month
        );
        assert!(me.current_period_start < me.current_period_end);
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        let metrics = client.metrics(&today, &today).await.unwrap();
        assert_eq!(
            (metrics.from_day.as_str(), metrics.days.len()),
            (today.as_str(), 1)
        );
        assert_eq!(metrics.days[0].day, today);
        assert_eq!(metrics.days[0].counts, metrics.totals);
        assert!(metrics.totals.ai.usage >= 1, "{metrics:?}");
        assert!(metrics.totals.make.usage >= 2, "{metrics:?}");
        let e = client.metrics(&today, "yesterday").await.unwrap_err();
        assert!(matches!(e, Error::Validation(_)), "{e:?}");
    }

    pub(super) async fn runs_and_events_build_a_timeline(client: OnceOnly) {
        let run = client
            .ai()
            .run("job:timeline")
            .ttl(Duration::from_secs(60))
            .run_id("run-a")
            .await
            .unwrap();
        // Queued: nobody holds it until a worker claims it (here, a plain lease does).
        assert_eq!(
            (run.status, run.queued, run.lease_id.as_deref(), run.charged),
            (RunStatus::InProgress, true, None, Some(1))
        );
        let run = client
            .ai()
            .lease("job:timeline")
            .ttl(Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!((run.status, run.charged), (RunStatus::Acquired, Some(0)));
        let posted = client
            .post_event(RunEvent {
                run_id: "run-a".into(),
                kind: "note".into(),
                message: Some("halfway".into()),
                ..RunEvent::default()
            })
            .await
            .unwrap();
        assert!(posted.ok && posted.event_id.is_some(), "{posted:?}");
        assert_eq!(posted.run_id, "run-a");
        client
            .ai()
            .complete("job:timeline", run.lease_id.as_deref().unwrap())
            .await
            .unwrap();
        let timeline = client.get_run_timeline("run-a").await.unwrap();
        assert_eq!(timeline.run_id, "run-a");
        let kinds: Vec<&str> = timeline.events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds.first(), Some(&"run_started"), "{kinds:?}");
        assert!(kinds.contains(&"note"), "{kinds:?}");
        let note = timeline.events.iter().find(|e| e.kind == "note").unwrap();
        assert_eq!(note.message.as_deref(), Some("halfway"));
        assert!(timeline.total >= 2);
        let page = client
            .get_run_timeline("run-a")
            .limit(1)
            .offset(1)
            .await
            .unwrap();
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.events[0].kind, kinds[1]);
        let events = client.events().limit(10).await.unwrap();
        assert_eq!(events.limit, 10);
        // Newest first: the completion's run_finished, then the note, then run_started.
        let newest: Vec<&str> = events.data.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            newest[..3],
            ["run_finished", "note", "run_started"],
            "{events:?}"
        );
        assert_eq!(events.data[1].id, posted.event_id);
        assert_eq!(events.data[0].run_id.as_deref(), Some("run-a"));
        let runs = client.list_runs().q("run-").await.unwrap();
        assert_eq!(runs.total, 1);
        assert_eq!(runs.items[0].run_id, "run-a");
        assert_eq!(runs.items[0].events_count, timeline.total);
        assert_eq!(runs.items[0].last_type.as_deref(), Some("run_finished"));
        let prefs = client
            .update_notifications()
            .email_notifications_enabled(false)
            .await
            .unwrap();
        assert!(!prefs.email_notifications_enabled);
        assert!(prefs.tool_error_notifications_enabled && prefs.run_failure_notifications_enabled);
    }

    pub(super) async fn run_and_wait_attaches_to_a_running_job(client: OnceOnly) {
        let holder = client.ai().lease("job:shared").await.unwrap();
        let waiter = {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .ai()
                    .run_and_wait("job:shared")
                    .timeout(Duration::from_secs(60))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let result = serde_json::json!({"rows": 42})
            .as_object()
            .cloned()
            .unwrap();
        client
            .ai()
            .complete("job:shared", holder.lease_id.as_deref().unwrap())
            .result(result.clone())
            .await
            .unwrap();
        let done = waiter.await.unwrap().unwrap();
        assert_eq!(
            (done.status, done.result),
            (RunStatus::Completed, Some(result))
        );
        // Nobody executes a run on these backends: waiting on a fresh one runs out.
        let e = client
            .ai()
            .run_and_wait("job:orphan")
            .timeout(Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    }
}

/// Declares one `#[tokio::test]` per case, each on a fresh client from `$make` (which returns
/// `None` when the store it needs is not installed: see `RedisServer::start`).
macro_rules! suite {
    ($make:path) => {
        suite!(@cases $make;
            check_lock_locks_then_reports_duplicates,
            release_lock_lets_the_key_lock_again,
            release_own_lock_removes_only_that_lock,
            bad_input_is_a_validation_error,
            run_fn_replays_the_typed_value,
            concurrent_callers_run_the_closure_once,
            a_dropped_holder_releases_the_key,
            a_user_error_releases_the_key,
            terminal_failures_are_remembered,
            every_failure_reads_back_its_code,
            a_conflicting_repeat_is_refused_and_the_first_stands,
            a_waiter_is_woken_by_completion,
            a_run_fn_waiting_on_a_holder_gets_its_value,
            a_stale_lease_id_is_lease_lost,
            a_holder_that_outlives_its_ttl_gets_lease_lost,
            observers_of_a_held_lease_see_its_metadata,
            a_result_the_backend_refuses_fails_the_key_for_good,
            heartbeats_keep_a_long_run_alive,
            usage_counts_check_locks_and_acquisitions,
            runs_and_events_build_a_timeline,
            run_and_wait_attaches_to_a_running_job,
            policies_and_the_kill_switch_round_trip,
            a_governed_run_fn_is_refused_for_every_reason,
            an_hourly_limit_is_exact_under_concurrent_calls,
            the_tools_registry_round_trips_and_refuses_the_same,
            competing_workers_execute_each_queued_run_once,
            a_queued_run_waits_for_a_worker_and_matches_patterns,
            a_silent_workers_run_is_resumed_after_its_lease,
            a_failing_handler_is_retried_then_fails_for_good,
            attempts_count_from_one_on_a_key_used_before,
            a_panicking_handler_counts_as_a_failed_attempt,
            concurrent_copies_of_a_claim_take_one_run,
            a_claim_sent_again_gets_the_run_it_took,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(harness) = $make().await else {
                    return;
                };
                crate::cases::$case(harness.client.clone()).await;
                drop(harness);
            }
        )*
    };
}

/// A client and whatever must live as long as it (a server, a `redis-server`, a directory),
/// dropped after the client.
struct Harness {
    client: OnceOnly,
    _keep: Vec<Box<dyn std::any::Any + Send>>,
}

/// Where a harness keeps its state: a fresh store per case, so cases never share keys.
mod stores {
    use onceonly_runtime::Target;
    use onceonly_runtime::testing::RedisServer;

    /// A target and what keeps it alive.
    pub(super) type Store = (Target, Box<dyn std::any::Any + Send>);

    /// The in-process memory store.
    pub(super) fn memory() -> Option<Store> {
        Some((Target::Memory, Box::new(())))
    }

    /// A private `redis-server`; `None` when it is not installed (a failure under `CI=true`).
    pub(super) fn redis() -> Option<Store> {
        let server = RedisServer::start()?;
        Some((Target::Redis(server.url()), Box::new(server)))
    }

    /// A SQLite file in a fresh temporary directory.
    pub(super) fn sqlite() -> Option<Store> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("onceonly.db");
        Some((Target::Sqlite(path), Box::new(dir)))
    }
}

/// The embedded engine over a store.
async fn embedded(store: Option<stores::Store>) -> Option<Harness> {
    let (target, keep) = store?;
    let engine = onceonly_runtime::Engine::connect(&target, Default::default())
        .await
        .expect("the store opens");
    Some(Harness {
        client: OnceOnly::from_backend(engine),
        _keep: vec![keep],
    })
}

/// A fresh `onceonly-server` on a free loopback port over `store`, and a client of it.
async fn served(store: Option<stores::Store>) -> Option<Harness> {
    let (target, keep) = store?;
    let server = onceonly_server::testing::TestServer::start_with(|mut config| {
        config.store = target;
        config
    })
    .await;
    let client = server.client();
    assert_eq!(client.backend().name(), "http");
    Some(Harness {
        client,
        _keep: vec![Box::new(server), keep],
    })
}

mod memory {
    use super::*;

    async fn make() -> Option<Harness> {
        embedded(stores::memory()).await
    }

    suite!(make);
}

mod redis {
    use super::*;

    async fn make() -> Option<Harness> {
        embedded(stores::redis()).await
    }

    suite!(make);
}

mod sqlite {
    use super::*;

    async fn make() -> Option<Harness> {
        embedded(stores::sqlite()).await
    }

    suite!(make);
}

mod http {
    use super::*;

    async fn make() -> Option<Harness> {
        served(stores::memory()).await
    }

    suite!(make);
}

mod http_redis {
    use super::*;

    async fn make() -> Option<Harness> {
        served(stores::redis()).await
    }

    suite!(make);
}

mod http_sqlite {
    use super::*;

    async fn make() -> Option<Harness> {
        served(stores::sqlite()).await
    }

    suite!(make);
}
