//! Worker processes sharing Redis: a stream of jobs with duplicates (each job delivered three
//! times, to different workers) is dealt to N worker processes, which handle their deliveries
//! concurrently with `run_fn`. Every job runs once; every delivery gets that run's result.
//!
//! `cargo run -p onceonly-examples --example workers`
//!
//! Uses `REDIS_URL` when it is set; otherwise it starts a private `redis-server` on a free
//! loopback port (Debian/Ubuntu: `apt install redis-server`) and stops it at the end. The
//! example spawns copies of itself as the workers (`workers --worker RUN URL JOB,JOB,..`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use onceonly_runtime::{Error, OnceOnly};
use serde::{Deserialize, Serialize};

const WORKERS: usize = 4;
const JOBS: usize = 12;
const DELIVERIES: usize = 3;

/// What one execution of a job returns, replayed to every other delivery of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Done {
    job: usize,
    worker: usize,
}

/// One line a worker prints per delivery.
#[derive(Debug, Serialize, Deserialize)]
struct Delivery {
    worker: usize,
    job: usize,
    ran_here: bool,
    result: Done,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--worker") {
        return match worker(&args[2..]).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("worker: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match coordinate() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("workers: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--worker ID RUN URL JOBS`: handles its deliveries concurrently, one JSON line each.
async fn worker(args: &[String]) -> Result<(), Error> {
    let [id, run, url, jobs] = args else {
        return Err(Error::Config(
            "usage: --worker ID RUN URL JOB,JOB,..".into(),
        ));
    };
    let id: usize = id
        .parse()
        .map_err(|_| Error::Config("bad worker id".into()))?;
    let client = OnceOnly::redis(url).await?;
    let mut handles = Vec::new();
    for job in jobs.split(',').filter_map(|j| j.parse::<usize>().ok()) {
        let (client, key) = (client.clone(), format!("workers:{run}:job:{job}"));
        handles.push(tokio::spawn(async move {
            let mut ran_here = false;
            let result = client
                .ai()
                .run_fn(key, || async {
                    ran_here = true;
                    // The side effect: sending the email, charging the card...
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, Error>(Done { job, worker: id })
                })
                .await?;
            Ok::<_, Error>(Delivery {
                worker: id,
                job,
                ran_here,
                result,
            })
        }));
    }
    for handle in handles {
        let delivery = handle.await.map_err(|e| Error::Config(e.to_string()))??;
        println!(
            "{}",
            serde_json::to_string(&delivery).map_err(Error::Decode)?
        );
    }
    Ok(())
}

/// Starts the workers, deals the stream, and checks that every job ran exactly once.
fn coordinate() -> Result<bool, String> {
    let (url, _redis) = match std::env::var("REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => (url, None),
        _ => {
            let redis = LocalRedis::start()?;
            (redis.url(), Some(redis))
        }
    };
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    // Each job is delivered three times, each time to the next worker: duplicates race across
    // processes, not only within one.
    let mut shares = vec![Vec::new(); WORKERS];
    for delivery in 0..DELIVERIES {
        for job in 0..JOBS {
            shares[(job + delivery) % WORKERS].push(job.to_string());
        }
    }
    println!("{WORKERS} workers, {JOBS} jobs delivered {DELIVERIES} times each, Redis at {url}");
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let workers: Vec<Child> = shares
        .iter()
        .enumerate()
        .map(|(id, jobs)| {
            Command::new(&exe)
                .args(["--worker", &id.to_string(), &run.to_string(), &url])
                .arg(jobs.join(","))
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| format!("could not start worker {id}: {e}"))
        })
        .collect::<Result<_, _>>()?;

    let mut by_job: BTreeMap<usize, Vec<Delivery>> = BTreeMap::new();
    for mut child in workers {
        let out = BufReader::new(child.stdout.take().expect("piped stdout"));
        for line in out.lines().map_while(Result::ok) {
            let delivery: Delivery = serde_json::from_str(&line).map_err(|e| e.to_string())?;
            by_job.entry(delivery.job).or_default().push(delivery);
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("a worker failed: {status}"));
        }
    }
    let mut all_once = by_job.len() == JOBS;
    for (job, deliveries) in &by_job {
        let runs: Vec<&Delivery> = deliveries.iter().filter(|d| d.ran_here).collect();
        let same = deliveries.iter().all(|d| d.result == deliveries[0].result);
        let once = runs.len() == 1 && same;
        all_once &= once;
        let ran_by = runs
            .iter()
            .map(|d| d.worker.to_string())
            .collect::<Vec<_>>();
        let seen_by = deliveries
            .iter()
            .map(|d| d.worker.to_string())
            .collect::<Vec<_>>();
        println!(
            "job {job:2}: delivered to workers [{}], ran {} time(s) (by worker {}){}",
            seen_by.join(", "),
            runs.len(),
            ran_by.join(", "),
            if same { "" } else { ", results differ!" }
        );
    }
    if all_once {
        println!("every job ran exactly once across {WORKERS} worker processes");
    } else {
        println!("SOME JOB DID NOT RUN EXACTLY ONCE");
    }
    Ok(all_once)
}

/// A `redis-server` of this example's own, without persistence, stopped when dropped.
struct LocalRedis {
    port: u16,
    child: Child,
}

impl LocalRedis {
    fn start() -> Result<LocalRedis, String> {
        let port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| e.to_string())?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => "redis-server is not installed: install it \
                    (Debian/Ubuntu: apt install redis-server) or set REDIS_URL to a Redis"
                    .to_owned(),
                _ => format!("could not start redis-server: {e}"),
            })?;
        let redis = LocalRedis { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("redis-server did not start on port {port}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
