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
