//! Separate OS processes race on one key: through one Redis directly, and through two
//! `onceonly-server` processes sharing one Redis. One execution; every caller gets its value.

mod procs;

use onceonly_runtime::testing::RedisServer;
use procs::{ServerProcess, one_execution, race};

const PROCESSES: usize = 4;
const CALLERS: usize = 250;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_run_one_key_once_through_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let answers = race(&[&redis.url()], PROCESSES, "job:race", CALLERS).await;
    one_execution(&answers, PROCESSES * CALLERS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_over_one_redis_run_one_key_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = ServerProcess::start(&redis.url()).await;
    let b = ServerProcess::start(&redis.url()).await;
    let urls = [a.base_url.as_str(), b.base_url.as_str()];
    let answers = race(&urls, PROCESSES, "job:race", CALLERS).await;
    let value = one_execution(&answers, PROCESSES * CALLERS);
    // Both servers read the one stored result.
    for server in [&a, &b] {
        let stored = server.client(false).ai().result("job:race").await.unwrap();
        assert_eq!(serde_json::Value::Object(stored.result.unwrap()), value);
    }
}
