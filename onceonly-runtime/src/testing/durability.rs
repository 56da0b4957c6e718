//! Probes for crash and outage tests: what a crash must not lose, and recovery after an outage.

use std::time::{Duration, Instant};

use crate::models::RunStatus;
use crate::{Error, OnceOnly};

/// Generous bound on recovery once a store is back.
pub const RECOVERS_WITHIN: Duration = Duration::from_secs(15);

/// Writes through `client` what a crash must not lose: `n` completed `run_fn` results
/// (`job:I` = `I * 10`), `n` check-locks (`evt:I`, 300 s) and one live lease (`job:live`,
/// 300 s), each acknowledged before this returns. Returns the live lease's id.
pub async fn write_acknowledged(client: &OnceOnly, n: u32) -> String {
    for i in 0..n {
        let value: u32 = client
            .ai()
            .run_fn(format!("job:{i}"), || async move { Ok::<_, Error>(i * 10) })
            .await
            .expect("run_fn before the crash");
        assert_eq!(value, i * 10);
        let lock = client
            .check_lock(format!("evt:{i}"))
            .ttl(Duration::from_secs(300));
        assert!(lock.await.expect("check-lock before the crash").locked);
    }
    let live = client
        .ai()
        .lease("job:live")
        .ttl(Duration::from_secs(300))
        .await
        .expect("lease before the crash");
    assert_eq!(live.status, RunStatus::Acquired);
    live.lease_id.expect("an acquired lease has an id")
}

/// Asserts that everything [`write_acknowledged`] wrote reads back through `client`: every
/// result replays without running again, every lock is still held, and the live lease is
/// still its holder's (who can complete it).
pub async fn assert_acknowledged(client: &OnceOnly, n: u32, live_lease_id: &str) {
    for i in 0..n {
        let value: u32 = client
            .ai()
            .run_fn(format!("job:{i}"), || async { Ok::<_, Error>(u32::MAX) })
            .await
            .expect("run_fn after the crash");
        assert_eq!(value, i * 10, "job:{i} was acknowledged before the crash");
        let lock = client.check_lock(format!("evt:{i}")).await.unwrap();
        assert!(lock.is_duplicate(), "evt:{i} was locked before the crash");
    }
    let again = client.ai().lease("job:live").await.unwrap();
    assert_eq!(
        again.status,
        RunStatus::InProgress,
        "the live lease survives"
    );
    let done = client.ai().complete("job:live", live_lease_id).await;
    assert!(done.expect("the holder completes").ok);
}

/// Asserts that, after an outage, `strict` and `fail_open` clients of the same backend lock
/// and run again by themselves within [`RECOVERS_WITHIN`] (keys `after*`).
pub async fn assert_recovers(strict: &OnceOnly, fail_open: &OnceOnly) {
    locks_again(strict, "after").await;
    locks_again(fail_open, "after:open").await;
    let value: u32 = strict
        .ai()
        .run_fn("after:job", || async { Ok::<_, Error>(7) })
        .await
        .expect("run_fn after recovery");
    assert_eq!(value, 7);
}

/// Retries `check_lock(key)` until it answers with a real lock (not a failed-open one).
async fn locks_again(client: &OnceOnly, key: &str) {
    let deadline = Instant::now() + RECOVERS_WITHIN;
    loop {
        match client.check_lock(key).await {
            Ok(lock) if lock.fail_open.is_none() => {
                assert!(lock.should_proceed(), "{lock:?}");
                return;
            }
            other => assert!(
                Instant::now() < deadline,
                "not recovered {RECOVERS_WITHIN:?} after the store came back: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
