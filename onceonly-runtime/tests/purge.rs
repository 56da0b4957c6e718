//! The background purge keeps the memory store bounded without anyone calling it.

use std::sync::Arc;
use std::time::Duration;

use onceonly_runtime::models::CheckLockRequest;
use onceonly_runtime::store::MemoryStore;
use onceonly_runtime::time::ManualClock;
use onceonly_runtime::{Engine, EngineConfig, Error, OnceOnly};

#[tokio::test(start_paused = true)]
async fn expired_entries_are_purged_in_the_background() {
    let clock = ManualClock::default();
    let config = EngineConfig::default()
        .retention(Duration::from_secs(60))
        .purge_interval(Duration::from_secs(30));
    let engine = Engine::with_config(MemoryStore::new(), config, Arc::new(clock.clone()));
    let client = OnceOnly::from_backend(engine.clone());
    for i in 0..100 {
        let mut req = CheckLockRequest::new(format!("evt_{i}"));
        req.ttl = Some(Duration::from_secs(10));
        engine.check_lock(req).await.unwrap();
        let _: u32 = client
            .ai()
            .run_fn(format!("job_{i}"), || async { Ok::<_, Error>(1) })
            .await
            .unwrap();
    }
    assert_eq!(engine.store().len(), (100, 100));

    clock.advance(Duration::from_secs(11)); // locks expired, records still retained
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(
        engine.store().len(),
        (0, 100),
        "expired locks are gone, retained records stay"
    );

    clock.advance(Duration::from_secs(60)); // past retention
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(engine.store().len(), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn the_purge_loop_ends_with_the_engine() {
    let engine = Engine::with_config(
        MemoryStore::new(),
        EngineConfig::default().purge_interval(Duration::from_secs(1)),
        Arc::new(ManualClock::default()),
    );
    engine.check_lock(CheckLockRequest::new("k")).await.unwrap();
    drop(engine);
    tokio::time::sleep(Duration::from_secs(5)).await;
    // The runtime has no task left but ours: a loop still holding the engine would keep one.
    assert_eq!(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        0
    );
}

/// A retention of zero would forget a finished key at once (so it would run again), and a huge
/// one would overflow the purge deadlines: both are refused, or brought into range.
#[tokio::test]
async fn retention_out_of_range_is_refused_or_clamped() {
    use onceonly_runtime::models::{CompleteRequest, LeaseRequest, RunStatus};
    use onceonly_runtime::time::SystemClock;

    for retention in [Duration::ZERO, Duration::MAX] {
        let config = EngineConfig::default().retention(retention);
        let refused =
            Engine::try_with_config(MemoryStore::new(), config.clone(), Arc::new(SystemClock));
        assert!(
            matches!(&refused, Err(Error::Validation(m)) if m.contains("retention")),
            "{retention:?}: {:?}",
            refused.err()
        );
        // The infallible constructor runs with a retention in range: a finished key still
        // answers with its outcome.
        let engine = Engine::with_config(MemoryStore::new(), config, Arc::new(SystemClock));
        let kept = engine.config().retention;
        assert!(kept >= Duration::from_secs(1) && kept <= Duration::from_secs(10 * 365 * 86_400));
        let lease_id = engine
            .lease(LeaseRequest::new("k"))
            .await
            .unwrap()
            .lease_id
            .unwrap();
        engine
            .complete(CompleteRequest::new("k", &lease_id, None))
            .await
            .unwrap();
        assert_eq!(engine.purge_expired().await.unwrap(), 0, "{retention:?}");
        let again = engine.lease(LeaseRequest::new("k")).await.unwrap();
        assert_eq!(again.status, RunStatus::Completed, "{retention:?}");
    }
}

/// An engine that outlives the runtime its purge loop started on (kept in a static, used from
/// several `block_on` calls) starts the loop again in the next runtime: it used to purge
/// nothing from then on, and the store grew without bound.
#[test]
fn the_purge_loop_starts_again_in_a_later_runtime() {
    let clock = ManualClock::default();
    let engine = Engine::with_config(
        MemoryStore::new(),
        EngineConfig::default().purge_interval(Duration::from_secs(1)),
        Arc::new(clock.clone()),
    );
    let lock = |key: &str| {
        let mut req = CheckLockRequest::new(key);
        req.ttl = Some(Duration::from_secs(10));
        req
    };
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    first.block_on(engine.check_lock(lock("a"))).unwrap();
    drop(first);

    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    second.block_on(async {
        engine.check_lock(lock("b")).await.unwrap();
        clock.advance(Duration::from_secs(11));
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            engine.store().len(),
            (0, 0),
            "purged by a loop of this runtime"
        );
    });
}
