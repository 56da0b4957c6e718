//! Memory per live key: how much a check-lock and a completed lease cost while they live, in
//! `MemoryStore` (resident set size of this process) and in Redis (`INFO memory` of a private
//! `redis-server`, skipped when it is not installed), each measured over the same number of
//! keys in one run.
//!
//! `cargo bench -p onceonly-runtime --features redis --bench memory_per_key -- [--keys N]`

use onceonly_runtime::models::{CheckLockRequest, CompleteRequest, LeaseRequest};
use onceonly_runtime::store::{RedisStore, Store};
use onceonly_runtime::testing::RedisServer;
use onceonly_runtime::{Engine, JsonMap};

/// Resident set size of this process, in bytes (Linux).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// `used_memory` of the Redis server at `url`.
async fn redis_used(url: &str) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn result() -> JsonMap {
    let mut m = JsonMap::new();
    m.insert("receipt".into(), "ch_0123456789abcdef".into());
    m.insert("cents".into(), 500.into());
    m
}

/// Creates `n` live check-locks and `n` completed leases with a small result.
async fn fill<S: Store>(engine: &Engine<S>, n: usize) {
    for i in 0..n {
        let lock = CheckLockRequest::new(format!("stripe:evt_{i:08}"));
        engine.check_lock(lock).await.unwrap();
        let key = format!("charge:order_{i:08}");
        let id = engine
            .lease(LeaseRequest::new(key.as_str()))
            .await
            .unwrap()
            .lease_id
            .unwrap();
        engine
            .complete(CompleteRequest::new(key, id, Some(result())))
            .await
            .unwrap();
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let n = argv
        .iter()
        .position(|a| a == "--keys")
        .and_then(|i| argv.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000usize);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("{n} check-locks and {n} completed leases (small result) per store");
        let engine = Engine::memory();
        let before = rss();
        fill(&engine, n).await;
        let memory = rss().saturating_sub(before) as f64 / (2 * n) as f64;
        println!("MemoryStore: {memory:>7.0} bytes per live key (process RSS)");
        match RedisServer::start() {
            Some(server) => {
                let url = server.url();
                let engine = Engine::new(RedisStore::connect(&url).await.unwrap());
                let before = redis_used(&url).await;
                fill(&engine, n).await;
                let redis = redis_used(&url).await.saturating_sub(before) as f64 / (2 * n) as f64;
                println!("RedisStore:  {redis:>7.0} bytes per live key (redis used_memory)");
                println!("ratio Redis / memory: {:.2}", redis / memory);
            }
            None => println!("redis-server is not installed: the Redis figure is skipped"),
        }
    });
}
