//! `onceonly-job-worker`: a test-support process (feature `testing`) that serves queued runs
//! through a store URL (`redis://..`, `sqlite:PATH`) or an `onceonly-server` URL (with the API
//! key in `ONCEONLY_API_KEY`), so tests can make worker processes compete for runs and kill one
//! in the middle of a run.
//!
//! `onceonly-job-worker STORE PATTERN LEASE_TTL_MS WORK_MS` prints `ready` once connected, then
//! serves `PATTERN` with claims of a `LEASE_TTL_MS` lease. For every run it executes it prints
//! `{"started": KEY, "attempt": N, "pid": P, "started_ms": T}`, works for `WORK_MS`, prints
//! the same object under `"finished"` and returns it (without the `started`/`finished` member)
//! as the run's result. It stops when its standard input closes, after storing the results of
//! the runs it had started.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use onceonly_runtime::ai::Job;
use onceonly_runtime::{Error, OnceOnly};
use serde_json::json;

fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.map_or(0, |d| d.as_millis() as u64)
}

/// Completes when standard input reaches its end.
async fn stdin_closed() {
    let (closed, on_close) = tokio::sync::oneshot::channel::<()>();
    // A plain thread: a blocking read must not hold one of the runtime's workers.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = closed.send(());
    });
    let _ = on_close.await;
}

async fn serve(
    store: &str,
    pattern: &str,
    lease_ttl: Duration,
    work: Duration,
) -> Result<(), Error> {
    let mut client = OnceOnly::builder().base_url(store);
    // An `onceonly-server` (or the hosted API) needs an API key; stores do not.
    if let Ok(key) = std::env::var("ONCEONLY_API_KEY") {
        client = client.api_key(key);
    }
    let client = client.build()?;
    // Connects now, so that `ready` means the store answers.
    client.ai().status("onceonly-job-worker:ready").await?;
    println!("ready");
    client
        .ai()
        .worker(pattern)
        .concurrency(2)
        .lease_ttl(lease_ttl)
        .with_graceful_shutdown(stdin_closed())
        .serve(move |job: Job| async move {
            let execution = json!({
                "key": job.key,
                "attempt": job.attempt,
                "pid": std::process::id(),
                "started_ms": now_ms(),
            });
            // Printed before the work, so a test can kill this process in the middle of it.
            println!("{}", json!({"started": execution}));
            tokio::time::sleep(work).await;
            println!("{}", json!({"finished": execution}));
            Ok::<_, Error>(execution)
        })
        .await
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ms = |i: usize| {
        args.get(i)
            .and_then(|n| n.parse::<u64>().ok())
            .map(Duration::from_millis)
    };
    let (Some(store), Some(pattern), Some(lease_ttl), Some(work)) =
        (args.first(), args.get(1), ms(2), ms(3))
    else {
        eprintln!("usage: onceonly-job-worker STORE PATTERN LEASE_TTL_MS WORK_MS");
        return ExitCode::from(2);
    };
    match serve(store, pattern, lease_ttl, work).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("onceonly-job-worker: {e}");
            ExitCode::FAILURE
        }
    }
}
