//! Queued runs executed by worker processes: a producer asks for the same monthly report three
//! times at once while two worker processes compete for queued runs. The report is generated
//! once, by one of the workers, and all three callers get that report.
//!
//! `cargo run -p onceonly-examples --example jobs`
//!
//! No account and no network: the processes share a SQLite file in a temporary directory, or
//! the Redis at `REDIS_URL` when it is set. The example spawns copies of itself as the workers
//! (`jobs --worker ID STORE`); a worker stops, finishing what it runs, when its standard input
//! closes.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use onceonly_runtime::ai::Job;
use onceonly_runtime::models::{AiResult, RunStatus};
use onceonly_runtime::{Error, OnceOnly};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

const WORKERS: usize = 2;
const CALLERS: usize = 3;
const MONTH: &str = "2026-11";

/// The report a worker generates, stored as the run's result and returned to every caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Report {
    month: String,
    generated_by: usize,
    attempt: u64,
    orders: u64,
    revenue_cents: u64,
}

/// The line a worker prints each time it generates a report.
#[derive(Debug, Serialize, Deserialize)]
struct Generated {
    worker: usize,
    key: String,
    attempt: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let outcome = match args.get(1).map(String::as_str) {
        Some("--worker") => worker(&args[2..])
            .await
            .map(|()| true)
            .map_err(|e| e.to_string()),
        _ => produce().await,
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("jobs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--worker ID STORE`: serves `report:*` until its standard input closes.
async fn worker(args: &[String]) -> Result<(), Error> {
    let [id, store] = args else {
        return Err(Error::Config("usage: --worker ID STORE".into()));
    };
    let id: usize = id
        .parse()
        .map_err(|_| Error::Config("bad worker id".into()))?;
    let client = OnceOnly::builder().base_url(store).build()?;
    println!("ready");
    client
        .ai()
        .worker("report:*")
        .concurrency(2)
        .lease_ttl(Duration::from_secs(10))
        .with_graceful_shutdown(stdin_closed())
        .serve(move |job: Job| async move {
            let line = Generated {
                worker: id,
                key: job.key.clone(),
                attempt: job.attempt,
            };
            println!("{}", serde_json::to_string(&line).map_err(Error::Decode)?);
            // Stands in for the slow part: the queries behind a month of orders.
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok::<_, Error>(Report {
                month: MONTH.to_owned(),
                generated_by: id,
                attempt: job.attempt,
                orders: 1_284,
                revenue_cents: 9_731_450,
            })
        })
        .await
}

/// Completes when standard input reaches its end: the producer's way to stop a worker.
async fn stdin_closed() {
    let (closed, on_close) = tokio::sync::oneshot::channel::<()>();
    // A plain thread: a blocking read must not hold a runtime worker.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = closed.send(());
    });
    let _ = on_close.await;
}

/// Starts the workers, asks for the report three times at once, and checks that it was
/// generated once and that every caller got it.
async fn produce() -> Result<bool, String> {
    // Kept until the end: dropping it deletes the SQLite file.
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (store, key) = match std::env::var("REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => {
            // Redis outlives this run: a key of its own keeps an earlier run's report out.
            let run = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            (url, format!("report:{MONTH}:{run}"))
        }
        _ => {
            let path = dir.path().join("onceonly.db");
            (
                format!("sqlite:{}", path.display()),
                format!("report:{MONTH}"),
            )
        }
    };
    // Opened first, so the file and its schema exist before the workers open it.
    let client = OnceOnly::builder()
        .base_url(&store)
        .build()
        .map_err(|e| e.to_string())?;
    println!("{WORKERS} worker processes and {CALLERS} callers of {key}, store {store}");

    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut workers = Vec::new();
    for id in 0..WORKERS {
        let mut child = Command::new(&exe)
            .args(["--worker", &id.to_string(), &store])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("could not start worker {id}: {e}"))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let ready = next_line(&mut lines).await?;
        if ready.as_deref() != Some("ready") {
            return Err(format!("worker {id} did not start: {ready:?}"));
        }
        workers.push((child, lines));
    }

    // The three requests race: the first queues the run, the others attach to it, and all
    // three wait for whichever worker claims it.
    let ask = || {
        client
            .ai()
            .run_and_wait(key.as_str())
            .timeout(Duration::from_secs(30))
    };
    let answers = tokio::join!(ask(), ask(), ask());
    let answers = [answers.0, answers.1, answers.2];

    let mut generated = Vec::new();
    for (id, (mut child, mut lines)) in workers.into_iter().enumerate() {
        drop(child.stdin.take());
        while let Some(line) = next_line(&mut lines).await? {
            let line: Generated = serde_json::from_str(&line).map_err(|e| e.to_string())?;
            generated.push(line);
        }
        let status = child.wait().await.map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("worker {id} failed: {status}"));
        }
    }
    for g in &generated {
        println!(
            "worker {} generated {} (attempt {})",
            g.worker, g.key, g.attempt
        );
    }

    let mut reports = Vec::new();
    for (caller, answer) in answers.into_iter().enumerate() {
        match report(answer) {
            Ok(report) => {
                println!(
                    "caller {caller} got the {} report of worker {}: {} orders, {}.{:02} in revenue",
                    report.month,
                    report.generated_by,
                    report.orders,
                    report.revenue_cents / 100,
                    report.revenue_cents % 100
                );
                reports.push(report);
            }
            Err(e) => println!("caller {caller} got no report: {e}"),
        }
    }
    let once = generated.len() == 1
        && reports.len() == CALLERS
        && reports.iter().all(|r| *r == reports[0]);
    if once {
        println!("the report was generated once and all {CALLERS} callers got it");
    } else {
        println!("THE REPORT WAS NOT GENERATED EXACTLY ONCE FOR EVERY CALLER");
    }
    Ok(once)
}

/// The report in a caller's answer.
fn report(answer: Result<AiResult, Error>) -> Result<Report, String> {
    let done = answer.map_err(|e| e.to_string())?;
    if done.status != RunStatus::Completed {
        return Err(format!("the run ended {:?}", done.status));
    }
    let result = done.result.ok_or("a completed run without a result")?;
    serde_json::from_value(result.into()).map_err(|e| e.to_string())
}

/// The next line a worker printed; `None` once it exited.
async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> Result<Option<String>, String> {
    match tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await {
        Ok(line) => line.map_err(|e| e.to_string()),
        Err(_) => Err("a worker printed nothing for 30 s".into()),
    }
}
