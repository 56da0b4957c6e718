//! `onceonly-worker`: a test-support process (feature `testing`) that drives one key through a
//! store URL (`redis://..`, `sqlite:PATH`) or an `onceonly-server` (`http://..`, API key in
//! `ONCEONLY_API_KEY`), so tests can race and kill real OS processes.
//!
//! - `onceonly-worker race URL KEY CALLERS`: prints `ready`, waits for a line on stdin (so
//!   every process starts together), runs `CALLERS` concurrent `run_fn` calls on `KEY`, and
//!   prints one JSON line per caller: `{"ran": bool, "value": Execution}` or `{"error": ..}`.
//! - `onceonly-worker hold URL KEY TTL_MS`: acquires the lease of `KEY` for `TTL_MS` and keeps
//!   it alive with heartbeats, printing `{"lease_id", "sent_ms"}` after the acquisition and after
//!   every heartbeat (`sent_ms`: wall-clock time the request left, so the lease ends no earlier
//!   than `sent_ms + TTL_MS`). It never completes: it is meant to be killed.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use onceonly_runtime::{Error, OnceOnly};
use serde::{Deserialize, Serialize};

/// How long a closure works, so that the other callers find the key held.
const WORK: Duration = Duration::from_millis(300);
/// A holder exits by itself after this long if nobody kills it.
const HOLD_AT_MOST: Duration = Duration::from_secs(120);

/// What the one execution of a key returns; every caller must get this same value back.
#[derive(Debug, Serialize, Deserialize)]
struct Execution {
    pid: u32,
    caller: usize,
    started_ms: u64,
}

fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.map_or(0, |d| d.as_millis() as u64)
}

fn client(url: &str) -> Result<OnceOnly, Error> {
    let mut builder = OnceOnly::builder()
        .base_url(url)
        .max_retries(0)
        .timeout(Duration::from_secs(60));
    if let Ok(key) = std::env::var("ONCEONLY_API_KEY") {
        builder = builder.api_key(key);
    }
    builder.build()
}

async fn race(client: OnceOnly, key: String, callers: usize) {
    println!("ready");
    let mut go = String::new();
    let _ = std::io::stdin().lock().read_line(&mut go);
    let calls = (0..callers).map(|caller| {
        let (client, key) = (client.clone(), key.clone());
        tokio::spawn(async move {
            let ran = AtomicBool::new(false);
            let answer = client
                .ai()
                .run_fn(key, || async {
                    ran.store(true, Ordering::SeqCst);
                    let started_ms = now_ms();
                    tokio::time::sleep(WORK).await;
                    Ok::<_, Error>(Execution {
                        pid: std::process::id(),
                        caller,
                        started_ms,
                    })
                })
                .timeout(Duration::from_secs(60))
                .await;
            match answer {
                Ok(value) => serde_json::json!({"ran": ran.load(Ordering::SeqCst), "value": value}),
                Err(e) => serde_json::json!({"error": e.to_string()}),
            }
        })
    });
    let handles: Vec<_> = calls.collect();
    for handle in handles {
        let line = handle
            .await
            .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}));
        println!("{line}");
    }
}

async fn hold(client: OnceOnly, key: String, ttl: Duration) -> Result<(), Error> {
    let mut sent_ms = now_ms();
    let lease = client.ai().lease(&key).ttl(ttl).await?;
    let Some(lease_id) = lease.lease_id else {
        return Err(Error::InProgress {
            key,
            retry_after: None,
        });
    };
    let until = tokio::time::Instant::now() + HOLD_AT_MOST;
    while tokio::time::Instant::now() < until {
        println!(
            "{}",
            serde_json::json!({"lease_id": lease_id, "sent_ms": sent_ms})
        );
        tokio::time::sleep(ttl / 4).await;
        sent_ms = now_ms();
        client.ai().extend(&key, &lease_id).ttl(ttl).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: onceonly-worker race URL KEY CALLERS | hold URL KEY TTL_MS";
    let (Some(mode), Some(url), Some(key), Some(n)) = (
        args.first(),
        args.get(1),
        args.get(2),
        args.get(3).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let client = match client(url) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("onceonly-worker: {e}");
            return ExitCode::from(2);
        }
    };
    let done = match mode.as_str() {
        "race" => {
            race(client, key.clone(), n as usize).await;
            Ok(())
        }
        "hold" => hold(client, key.clone(), Duration::from_millis(n)).await,
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("onceonly-worker: {e}");
            ExitCode::FAILURE
        }
    }
}
