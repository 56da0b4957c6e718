//! A lease holder killed with SIGKILL mid-lease: its heartbeat stops, and another process takes
//! the key over only once the dead holder's lease has expired. Never two live holders; the dead
//! holder's late `complete` is refused as lease lost.

mod procs;

use std::time::{SystemTime, UNIX_EPOCH};

use onceonly_runtime::testing::RedisServer;
use onceonly_runtime::{Error, OnceOnly};
use procs::{Holder, one_execution, race};

const TRIALS: usize = 3;
/// The holder's lease TTL: short, so a takeover waits for its expiry only briefly.
const TTL_MS: u64 = 2_000;
/// Two taker processes of a few callers each contend for the key while it is held.
const TAKERS: usize = 2;
const CALLERS: usize = 5;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_is_taken_over_only_after_its_lease_expires() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let observer = OnceOnly::redis(&url).await.unwrap();
    for trial in 0..TRIALS {
        let key = format!("job:takeover:{trial}");
        let mut holder = Holder::start(&url, &key, TTL_MS).await;
        holder.heartbeat().await;
        // The takers start while the lease is live and its heartbeats still arrive.
        let takers = {
            let (url, key) = (url.clone(), key.clone());
            tokio::spawn(async move { race(&[&url], TAKERS, &key, CALLERS).await })
        };
        holder.heartbeat().await;
        let killed_ms = now_ms();
        let (lease_id, last_sent_ms) = holder.kill().await;

        let answers = takers.await.unwrap();
        let taken = one_execution(&answers, TAKERS * CALLERS);
        let started_ms = taken["started_ms"].as_u64().unwrap();
        let expired_ms = last_sent_ms + TTL_MS;
        assert!(
            started_ms >= expired_ms,
            "trial {trial}: the taker ran at {started_ms}, before the dead holder's lease \
             ended (no earlier than {expired_ms})"
        );
        // Recovery is prompt: a generous bound, not a timing assertion.
        assert!(
            started_ms < killed_ms + TTL_MS + 15_000,
            "trial {trial}: takeover took {} ms after the kill",
            started_ms - killed_ms
        );

        let stale = observer.ai().complete(&key, &lease_id).await.unwrap_err();
        assert!(
            matches!(stale, Error::LeaseLost { .. }),
            "trial {trial}: {stale:?}"
        );
        let stored = observer.ai().result(&key).await.unwrap();
        assert_eq!(
            serde_json::Value::Object(stored.result.unwrap()),
            taken,
            "trial {trial}: the taker's result stands"
        );
    }
}
