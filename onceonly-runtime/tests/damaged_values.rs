//! A stored value that does not read back (damaged by hand, or written by an incompatible
//! release) is an error of its own kind, not an outage: no fail-open decision runs a side
//! effect on a key that may well be taken. On Redis, on a SQLite file, and behind
//! `onceonly-server` over HTTP.

use onceonly_runtime::Target;
use onceonly_runtime::testing::RedisServer;
use onceonly_runtime::{Error, OnceOnly};
use onceonly_server::testing::TestServer;

/// Runs `k` once, lets `damage` spoil what was stored, and checks how a second run reads.
async fn assert_damage_is_not_an_outage(client: &OnceOnly, damage: impl AsyncFnOnce()) {
    let first = client
        .ai()
        .run_fn("k", || async { Ok::<_, Error>(1u32) })
        .await
        .unwrap();
    assert_eq!(first, 1);
    damage().await;
    let second = client.ai().run_fn("k", || async { Ok::<_, Error>(2u32) });
    let e = tokio::time::timeout(std::time::Duration::from_secs(60), second)
        .await
        .expect("answered without waiting for a retry")
        .unwrap_err();
    assert!(e.is_damaged_data(), "{e:?}");
    assert!(!e.is_outage() && !e.is_retryable(), "{e:?}");
}

#[tokio::test]
async fn a_damaged_redis_record_is_not_an_outage() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let client = OnceOnly::redis(&server.url()).await.unwrap();
    let url = server.url();
    assert_damage_is_not_an_outage(&client, async || {
        let raw = redis::Client::open(url).unwrap();
        let mut raw = raw.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("onceonly:rec:*")
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(!keys.is_empty());
        for key in keys {
            let _: () = redis::cmd("HSET")
                .arg(key)
                .arg("val")
                .arg("{not json")
                .query_async(&mut raw)
                .await
                .unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn a_damaged_record_behind_the_server_is_not_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let server = TestServer::start_with(|mut config| {
        config.store = Target::Sqlite(path.clone());
        config
    })
    .await;
    // Retries with a backoff far longer than the test: a `store_damaged` answer is final, so
    // the call must not wait for a retry.
    let client = OnceOnly::builder()
        .api_key(onceonly_server::testing::TEST_API_KEY)
        .base_url(server.base_url())
        .max_retries(3)
        .retry_backoff(std::time::Duration::from_secs(600))
        .retry_max_backoff(std::time::Duration::from_secs(600))
        .build()
        .unwrap();
    assert!(client.fail_open());
    assert_damage_is_not_an_outage(&client, async || {
        let file = rusqlite::Connection::open(&path).unwrap();
        let damaged = file
            .execute("UPDATE records SET record = '{not json'", [])
            .unwrap();
        assert!(damaged > 0);
    })
    .await;
}
