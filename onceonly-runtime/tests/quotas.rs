//! Daily quotas on the embedded engine: exact under concurrency, per account, reset at
//! midnight UTC, and a refused completion leaves its lease held. (The same quotas over HTTP:
//! `onceonly-server/tests/processes_memory.rs`.)

use std::sync::Arc;
use std::time::Duration;

use onceonly_runtime::engine::{Account, Plan};
use onceonly_runtime::models::{CheckLockRequest, CompleteRequest, LeaseRequest, UsageKind};
use onceonly_runtime::store::MemoryStore;
use onceonly_runtime::time::ManualClock;
use onceonly_runtime::{Engine, EngineConfig, Error, Quotas};

/// 2026-12-06 23:00:00 UTC: an hour before a reset.
const LATE_EVENING_MS: u64 = 1_796_598_000_000;

fn engine(quotas: Quotas, clock: &ManualClock) -> Engine {
    let config = EngineConfig::default().quotas(quotas);
    Engine::with_config(MemoryStore::default(), config, Arc::new(clock.clone()))
}

fn quota_of(e: &Error) -> (&str, u64, u64) {
    match e {
        Error::QuotaExceeded(q) => (q.quota.as_str(), q.limit, q.used),
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_check_locks_never_pass_the_quota_and_it_resets_at_midnight() {
    let clock = ManualClock::new(LATE_EVENING_MS);
    let engine = engine(Quotas::none().check_locks_per_day(40), &clock);
    let calls = (0..100).map(|i| {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .check_lock(CheckLockRequest::new(format!("k{i}")))
                .await
        })
    });
    let (mut locked, mut refused) = (0, 0);
    for call in calls {
        match call.await.unwrap() {
            Ok(r) => {
                assert!(r.locked);
                locked += 1;
            }
            Err(e) => {
                assert_eq!(quota_of(&e), ("check_locks_per_day", 40, 40));
                let Error::QuotaExceeded(q) = &e else {
                    unreachable!()
                };
                assert_eq!(q.resets_at, "2026-12-07T00:00:00Z");
                assert_eq!(q.retry_after, Duration::from_secs(3600));
                refused += 1;
            }
        }
    }
    assert_eq!((locked, refused), (40, 60), "exactly the quota");
    // Refused requests count as blocked, not as usage.
    let usage = engine.usage(UsageKind::Make).await.unwrap();
    assert_eq!((usage.usage, usage.blocked_total_month), (40, 60));
    // Leases have their own quota (none here).
    assert!(
        engine
            .lease(LeaseRequest::new("l"))
            .await
            .unwrap()
            .lease_id
            .is_some()
    );
    clock.advance(Duration::from_secs(3600));
    let fresh = engine
        .check_lock(CheckLockRequest::new("next-day"))
        .await
        .unwrap();
    assert!(fresh.locked, "a new UTC day has a new quota");
}

#[tokio::test]
async fn the_plan_limit_answers_402_before_the_quota_and_accounts_are_apart() {
    let clock = ManualClock::new(LATE_EVENING_MS);
    // The plan's monthly limit and the daily quota are both 2: the plan answers first.
    let root = engine(Quotas::none().acquisitions_per_day(2), &clock);
    let small = root
        .tenant(Account::tenant("small", Plan::new("free").ai_limit(2)))
        .unwrap();
    let big = root
        .tenant(Account::tenant("big", Plan::unlimited()))
        .unwrap();
    for i in 0..2 {
        small
            .lease(LeaseRequest::new(format!("s{i}")))
            .await
            .unwrap();
    }
    let over = small.lease(LeaseRequest::new("s2")).await.unwrap_err();
    assert!(
        matches!(over, Error::OverLimit(_)),
        "the plan first: {over:?}"
    );
    for i in 0..2 {
        big.lease(LeaseRequest::new(format!("b{i}"))).await.unwrap();
    }
    let over = big.lease(LeaseRequest::new("b2")).await.unwrap_err();
    assert_eq!(quota_of(&over), ("acquisitions_per_day", 2, 2));
    // A key already acquired is not a new acquisition: its holder's repeat answers as before.
    let again = big.lease(LeaseRequest::new("b0")).await.unwrap();
    assert!(again.lease_id.is_none(), "b0 is held: {again:?}");
}

#[tokio::test]
async fn a_completion_over_the_result_quota_is_refused_and_the_lease_stays_held() {
    let clock = ManualClock::new(LATE_EVENING_MS);
    let engine = engine(Quotas::none().result_bytes_per_day(100), &clock);
    let lease = engine.lease(LeaseRequest::new("r")).await.unwrap();
    let id = lease.lease_id.unwrap();
    let result = |len: usize| {
        let v = serde_json::json!({"text": "z".repeat(len)});
        Some(v.as_object().unwrap().clone())
    };
    let big = engine
        .complete(CompleteRequest::new("r", &id, result(120)))
        .await
        .unwrap_err();
    assert_eq!(quota_of(&big), ("result_bytes_per_day", 100, 0));
    // {"text":"…"} is 11 bytes plus the text: 11 + 80 = 91 fits.
    let done = engine
        .complete(CompleteRequest::new("r", &id, result(80)))
        .await
        .unwrap();
    assert_eq!(done.status.as_str(), "completed");
    // The quota now holds 91 of 100 bytes: the next 10-byte result does not fit.
    let other = engine.lease(LeaseRequest::new("r2")).await.unwrap();
    let over = engine
        .complete(CompleteRequest::new(
            "r2",
            other.lease_id.unwrap(),
            result(0),
        ))
        .await
        .unwrap_err();
    assert_eq!(quota_of(&over), ("result_bytes_per_day", 100, 91));
}

#[tokio::test]
async fn a_repeated_completion_is_not_counted_again() {
    let clock = ManualClock::new(LATE_EVENING_MS);
    let engine = engine(Quotas::none().result_bytes_per_day(100), &clock);
    let id = engine
        .lease(LeaseRequest::new("r"))
        .await
        .unwrap()
        .lease_id
        .unwrap();
    let result = serde_json::json!({"text": "z".repeat(80)}); // 91 bytes
    let complete = || CompleteRequest::new("r", &id, result.as_object().cloned());
    engine.complete(complete()).await.unwrap();
    // The answer was lost and the holder sends it again: stored already, nothing to count.
    let again = engine.complete(complete()).await.unwrap();
    assert_eq!(again.status.as_str(), "completed");
}

/// `run_fn` whose value is refused by the result quota: the side effect ran, so the key fails
/// for good (`result_not_stored`) instead of expiring and running again for the next caller.
#[tokio::test]
async fn run_fn_fails_the_key_when_the_result_quota_refuses_its_value() {
    let clock = ManualClock::new(LATE_EVENING_MS);
    let client = onceonly_runtime::OnceOnly::from_backend(engine(
        Quotas::none().result_bytes_per_day(50),
        &clock,
    ));
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..2 {
        let runs = Arc::clone(&runs);
        let answer: Result<String, Error> = client
            .ai()
            .run_fn("charge-1", move || async move {
                runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, Error>("r".repeat(100))
            })
            .await;
        assert!(answer.is_err(), "{answer:?}");
    }
    assert_eq!(
        runs.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the side effect ran once"
    );
    let status = client.ai().status("charge-1").await.unwrap();
    assert_eq!(status.error_code.as_deref(), Some("result_not_stored"));
}
