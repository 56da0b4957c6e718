//! The Redis store against the shared conformance suite, on a private `redis-server`, plus what
//! only a real Redis shows: its restart under a live store, and notifications across stores.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use onceonly_runtime::Error;
use onceonly_runtime::store::{
    Hooked, LeaseRecord, LockClaim, LockEntry, LogCaps, LogRef, RedisStore, Store, StoreHooks,
};
use onceonly_runtime::testing::{self, RedisServer};

/// Keeps the shared server alive while a case uses its store.
struct KeepAlive(#[allow(dead_code)] Arc<RedisServer>);

impl StoreHooks for KeepAlive {}

/// One server for the cases running at the same time; killed when the last of them ends
/// (statics are never dropped, so a server kept in one would outlive the test process).
fn shared_server() -> Option<Arc<RedisServer>> {
    static SERVER: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());
    let mut shared = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = shared.upgrade() {
        return Some(server);
    }
    let server = Arc::new(RedisServer::start()?);
    *shared = Arc::downgrade(&server);
    Some(server)
}

/// A namespace no other case uses.
fn fresh_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("case{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A store of its own on `server`.
async fn fresh_store(server: &RedisServer) -> RedisStore {
    RedisStore::builder(server.url())
        .prefix(fresh_prefix())
        .connect()
        .await
        .expect("connect to the test redis-server")
}

/// A plain connection, to look at what the store wrote.
async fn raw_conn(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(server.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

onceonly_runtime::store_conformance_tests!(optional: || async {
    let server = shared_server()?;
    let store = fresh_store(&server).await;
    Some(Hooked::new(store, KeepAlive(server)))
});

/// 2026-01-01, as the suite's manual clock: far behind the real time.
const NOW: u64 = 1_767_225_600_000;
/// Generous bound for what happens "by itself" in the background.
const EVENTUALLY: Duration = Duration::from_secs(30);

fn lock(id: &str, now: u64) -> LockEntry {
    testing::lock_entry(id, now, 60_000)
}

fn record() -> LeaseRecord {
    testing::in_progress_record("lease_1", NOW, 60_000)
}

/// Retries `claim_lock` until the store answers again (a reconnection may cost a failed call
/// or two), within [`EVENTUALLY`].
async fn claim_when_back(store: &RedisStore, key: &str) -> LockClaim {
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        match store.claim_lock(key, NOW, lock("l", NOW)).await {
            Ok(claim) => return claim,
            Err(e) if tokio::time::Instant::now() < deadline => {
                assert!(e.is_outage(), "only outage errors while reconnecting: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the store did not recover after Redis came back: {e}"),
        }
    }
}

/// How many Lua scripts the server has cached (`INFO memory`).
async fn cached_scripts(server: &RedisServer) -> u64 {
    let mut conn = raw_conn(server).await;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("number_of_cached_scripts:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO memory lists number_of_cached_scripts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_under_a_live_store() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&server.url()).await.unwrap();
    assert_eq!(
        store
            .claim_lock("before", NOW, lock("a", NOW))
            .await
            .unwrap(),
        LockClaim::Claimed
    );

    server.kill();
    let err = store
        .claim_lock("gap", NOW, lock("b", NOW))
        .await
        .expect_err("a call while Redis is down fails");
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    assert!(err.is_outage() && err.is_retryable());
    assert!(
        err.to_string().contains("redis claim_lock failed"),
        "the error names the store and the step: {err}"
    );

    // A new server knows no scripts: the store loads them again by itself.
    server.restart();
    assert_eq!(cached_scripts(&server).await, 0);
    assert_eq!(claim_when_back(&store, "after").await, LockClaim::Claimed);
    assert_eq!(
        store
            .claim_lock("after", NOW, lock("c", NOW))
            .await
            .unwrap(),
        LockClaim::Held {
            first_seen_at_ms: NOW,
            expires_at_ms: NOW + 60_000
        },
        "the claim script (for a key that exists) runs on the restarted server"
    );
    assert!(cached_scripts(&server).await >= 1, "it was loaded again");
    assert!(
        store
            .put_record("rec", None, record())
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_woken_across_stores_and_after_a_reconnect() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let waiter = RedisStore::connect(&server.url()).await.unwrap();
    let writer = RedisStore::connect(&server.url()).await.unwrap();

    // Another store's write reaches this store's waiter through pub/sub.
    let mut sub = waiter.subscribe("k1").await.unwrap();
    writer.put_record("k1", None, record()).await.unwrap();
    tokio::time::timeout(EVENTUALLY, sub.changed())
        .await
        .expect("woken by the other store's write");

    // Writes while the listener is disconnected are lost: after it is back, every waiter is
    // woken to read again.
    let mut sub = waiter.subscribe("k2").await.unwrap();
    server.kill();
    server.restart();
    tokio::time::timeout(EVENTUALLY, sub.changed())
        .await
        .expect("woken once the pub/sub connection is back");

    // And the listener hears new writes again.
    let mut sub = waiter.subscribe("k3").await.unwrap();
    claim_when_back(&writer, "wake-up").await;
    writer.put_record("k3", None, record()).await.unwrap();
    tokio::time::timeout(EVENTUALLY, sub.changed())
        .await
        .expect("woken by a write after the reconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_follow_the_engine_clock_not_redis() {
    let Some(server) = shared_server() else {
        return;
    };
    let store = fresh_store(&server).await;
    let mut conn = raw_conn(&server).await;
    // An engine clock a year behind or ahead of Redis: the lock lives for its TTL either way.
    for (key, now) in [("past", NOW - 365 * 86_400_000), ("future", NOW * 2)] {
        assert_eq!(
            store.claim_lock(key, now, lock("x", now)).await.unwrap(),
            LockClaim::Claimed
        );
        assert!(matches!(
            store
                .claim_lock(key, now + 59_999, lock("y", now))
                .await
                .unwrap(),
            LockClaim::Held { .. }
        ));
        let pttl: i64 = redis::cmd("PTTL")
            .arg(format!("{}:lock:{key}", store.prefix()))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(
            pttl > 60_000,
            "Redis keeps the key past its deadline (relative TTL plus margin), got {pttl} ms"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_keep_stores_apart() {
    let Some(server) = shared_server() else {
        return;
    };
    let connect = |prefix: String| RedisStore::builder(server.url()).prefix(prefix).connect();
    let (a, b) = (
        connect(fresh_prefix()).await.unwrap(),
        connect(fresh_prefix()).await.unwrap(),
    );
    assert_eq!(
        a.claim_lock("k", NOW, lock("a", NOW)).await.unwrap(),
        LockClaim::Claimed
    );
    assert_eq!(
        b.claim_lock("k", NOW, lock("b", NOW)).await.unwrap(),
        LockClaim::Claimed
    );
    // Something else under b's prefix is not b's to purge, and does not stop the purge.
    let mut conn = raw_conn(&server).await;
    let foreign = format!("{}:other", b.prefix());
    let _: () = redis::cmd("RPUSH")
        .arg(&foreign)
        .arg("x")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        b.purge_expired(NOW + 120_000).await.unwrap(),
        1,
        "b's purge removes b's lock only"
    );
    let left: bool = redis::cmd("EXISTS")
        .arg(&foreign)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(left);
    assert!(matches!(
        a.claim_lock("k", NOW, lock("a2", NOW)).await.unwrap(),
        LockClaim::Held { .. }
    ));
    for bad in ["", "a:b", "a*", "a b"] {
        assert!(matches!(connect(bad.into()).await, Err(Error::Config(_))));
    }
}

/// Every member of a sorted set, in order.
async fn zrange(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<String> {
    redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_share_one_hash_tag_and_carry_no_ttl() {
    let Some(server) = shared_server() else {
        return;
    };
    let store = fresh_store(&server).await;
    let mut conn = raw_conn(&server).await;
    let mut doc = onceonly_runtime::JsonMap::new();
    doc.insert("on".into(), true.into());
    for key in ["gov/tool/a", "gov/tool/b", "gov/tool/c"] {
        store.put_doc(key, doc.clone()).await.unwrap();
    }

    let p = store.prefix();
    let (value_key, index) = (
        format!("{p}:doc:{{{p}}}:gov/tool/a"),
        format!("{p}:docs:{{{p}}}"),
    );
    let json: String = redis::cmd("GET")
        .arg(&value_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(json, r#"{"on":true}"#, "compact JSON");
    for key in [&value_key, &index] {
        let pttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(pttl, -1, "{key} exists and never expires");
    }
    assert_eq!(
        zrange(&mut conn, &index).await,
        ["gov/tool/a", "gov/tool/b", "gov/tool/c"]
    );

    // An index entry whose document is gone (evicted, or deleted by hand) is skipped, and the
    // next entry takes its place within the limit.
    let _: () = redis::cmd("DEL")
        .arg(format!("{p}:doc:{{{p}}}:gov/tool/b"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let listed = store.list_docs("gov/tool/", 2).await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["gov/tool/a", "gov/tool/c"]);
    assert_eq!(store.get_doc("gov/tool/b").await.unwrap(), None);

    // A delete takes the index entry with the document.
    assert!(store.delete_doc("gov/tool/a").await.unwrap());
    assert_eq!(
        zrange(&mut conn, &index).await,
        ["gov/tool/b", "gov/tool/c"]
    );

    // Another store over the same Redis sees none of these documents.
    let other = fresh_store(&server).await;
    assert!(other.list_docs("", 10).await.unwrap().is_empty());
    assert_eq!(other.get_doc("gov/tool/c").await.unwrap(), None);
}

/// A log an earlier release wrote (entries but no size count) is measured on its next append,
/// so its byte cap holds from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_written_before_sizes_were_kept_still_gets_its_byte_cap() {
    let Some(server) = shared_server() else {
        return;
    };
    let store = fresh_store(&server).await;
    let mut conn = raw_conn(&server).await;
    // The old shape: first, last, exp and one `e<seq>` per entry, no `bytes`.
    let old_entry = format!(r#"{{"pad":"{}"}}"#, "x".repeat(90)); // 100 bytes
    let exp = (NOW + 60_000).to_string();
    let _: () = redis::cmd("HSET")
        .arg(format!("{}:log:old", store.prefix()))
        .arg(&["first", "1", "last", "3", "exp", exp.as_str()])
        .arg(&[
            "e1",
            old_entry.as_str(),
            "e2",
            old_entry.as_str(),
            "e3",
            old_entry.as_str(),
        ])
        .query_async(&mut conn)
        .await
        .unwrap();
    let caps = LogCaps {
        entries: 100,
        bytes: 300,
    };
    let mut small = onceonly_runtime::JsonMap::new();
    small.insert("n".into(), 1.into()); // {"n":1}: 7 bytes
    let seq = store
        .append_log(LogRef::whole("old"), small, caps, NOW, NOW + 60_000)
        .await
        .unwrap();
    assert_eq!(seq, 4);
    let page = store
        .read_log(LogRef::whole("old"), false, 0, 10, NOW)
        .await
        .unwrap();
    let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        [2, 3, 4],
        "307 bytes were over the cap of 300: the oldest went"
    );
}

/// A store outlives the runtime that opened it (a client kept in a static and used from
/// several tests or `block_on` calls): other stores' writes still wake its waiters. The
/// listener used to be a task of the first runtime and ended with it, without a word.
#[test]
fn a_store_outliving_the_runtime_that_opened_it_still_hears_other_stores() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let first = tokio::runtime::Runtime::new().unwrap();
    let waiter = first.block_on(RedisStore::connect(&url)).unwrap();
    drop(first);
    let second = tokio::runtime::Runtime::new().unwrap();
    second.block_on(async {
        let writer = RedisStore::connect(&url).await.unwrap();
        let mut sub = waiter.subscribe("k").await.unwrap();
        writer.put_record("k", None, record()).await.unwrap();
        tokio::time::timeout(EVENTUALLY, sub.changed())
            .await
            .expect("woken by the other store's write");
    });
}

/// A store outlives the runtime that opened it: its commands still work in the next runtime,
/// from the first one on (the connection's driver was a task of the first runtime, so the
/// first command in a later one failed with a broken pipe while it reconnected).
#[test]
fn a_store_outliving_the_runtime_that_opened_it_answers_at_once() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let first = tokio::runtime::Runtime::new().unwrap();
    let store = first.block_on(RedisStore::connect(&url)).unwrap();
    first
        .block_on(store.put_record("k", None, record()))
        .unwrap();
    drop(first);
    for _ in 0..3 {
        let next = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let read = next.block_on(store.get_record("k"));
        assert!(matches!(read, Ok(Some(_))), "{read:?}");
    }
}

/// Log lines written to a shared buffer, for a test to read.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A Redis that evicts keys with a TTL at its memory limit would drop live locks silently:
/// connecting to one warns; connecting to one that does not stays quiet.
#[test]
fn connecting_to_a_redis_that_evicts_warns() {
    for (policy, warned) in [("volatile-lru", true), ("noeviction", false)] {
        let Some(server) =
            RedisServer::start_with(&["--maxmemory", "64mb", "--maxmemory-policy", policy])
        else {
            return;
        };
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::WARN)
            .finish();
        let _quiet = tracing::subscriber::set_default(subscriber);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(RedisStore::connect(&server.url()))
            .unwrap();
        let logged = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(logged.contains("noeviction"), warned, "{policy}: {logged}");
    }
}
