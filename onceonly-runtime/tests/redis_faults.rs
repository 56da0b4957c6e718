//! Faults of a real Redis under a live embedded client: calls made while Redis is down fail
//! with a store error, or fail open where the client says so (check-lock only); once Redis is
//! back the same client works again by itself. With AOF and `appendfsync always`, a Redis
//! killed with SIGKILL loses nothing it acknowledged.

use onceonly_runtime::testing::{self, RedisServer};
use onceonly_runtime::{Error, OnceOnly};

fn client(url: &str, fail_open: bool) -> OnceOnly {
    OnceOnly::builder()
        .base_url(url)
        .fail_open(fail_open)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_client_fails_clearly_while_redis_is_down_and_recovers() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let strict = client(&redis.url(), false);
    let open = client(&redis.url(), true);
    assert!(strict.check_lock("before").await.unwrap().locked);

    redis.kill();
    let e = strict.check_lock("gap").await.unwrap_err();
    assert!(matches!(e, Error::Store(_)) && e.is_outage(), "{e:?}");
    assert!(e.to_string().starts_with("store error: "), "{e}");
    let lock = open.check_lock("gap").await.unwrap();
    assert!(
        lock.fail_open.is_some() && lock.lock_id.is_none(),
        "{lock:?}"
    );
    // Only check-lock fails open: a lease is never handed out without the store.
    let e = open.ai().lease("gap:job").await.unwrap_err();
    assert!(matches!(e, Error::Store(_)), "{e:?}");

    redis.restart();
    testing::assert_recovers(&strict, &open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_killed_redis_with_aof() {
    let Some(mut redis) =
        RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
    else {
        return;
    };
    let client = client(&redis.url(), false);
    let live = testing::write_acknowledged(&client, 50).await;

    // SIGKILL: no shutdown, no final rewrite. Only what AOF already fsynced survives.
    redis.kill();
    redis.restart();
    let fresh = OnceOnly::redis(&redis.url()).await.unwrap();
    testing::assert_acknowledged(&fresh, 50, &live).await;
}
