//! Real OS processes for the distributed tests: `onceonly-server` binaries,
//! `onceonly-worker` processes that race or hold keys, and `onceonly-job-worker` processes that
//! serve queued runs. Every child is killed when dropped and every read of its output is
//! bounded.

#![allow(dead_code, unreachable_pub)]

use std::process::Stdio;
use std::time::Duration;

use onceonly_runtime::OnceOnly;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

pub const SERVER: &str = env!("CARGO_BIN_EXE_onceonly-server");
pub const WORKER: &str = env!("CARGO_BIN_EXE_onceonly-worker");
pub const JOB_WORKER: &str = env!("CARGO_BIN_EXE_onceonly-job-worker");
/// The one tenant of every server process.
pub const API_KEY: &str = "once_test_processes_0001";
/// Bound on any single line a child is expected to print.
const LINE_WITHIN: Duration = Duration::from_secs(90);

/// The next line of a child's stdout, bounded.
pub async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>, what: &str) -> Option<String> {
    tokio::time::timeout(LINE_WITHIN, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("{what}: no output within {LINE_WITHIN:?}"))
        .unwrap_or_else(|e| panic!("{what}: reading stdout: {e}"))
}

fn piped(cmd: &mut Command) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = cmd
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn a child process");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// An `onceonly-server` process with one unlimited tenant ([`API_KEY`]).
pub struct ServerProcess {
    child: Child,
    // Kept open: a closed pipe would turn a later line of the server's into an error.
    _stdout: Lines<BufReader<ChildStdout>>,
    store: String,
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
}

impl ServerProcess {
    /// Starts `onceonly-server --store STORE` on a free loopback port.
    pub async fn start(store: &str) -> ServerProcess {
        ServerProcess::start_with(store, &[]).await
    }

    /// Starts `onceonly-server --store STORE` with more flags.
    pub async fn start_with(store: &str, flags: &[&str]) -> ServerProcess {
        let (child, mut lines) = piped(
            Command::new(SERVER)
                .args(["--listen", "127.0.0.1:0", "--store", store, "--log", "warn"])
                .args(flags)
                .env("ONCEONLY_SERVER_API_KEYS", API_KEY),
        );
        let line = next_line(&mut lines, "onceonly-server")
            .await
            .expect("onceonly-server printed its address");
        let base_url = line
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        ServerProcess {
            child,
            _stdout: lines,
            store: store.to_owned(),
            base_url,
        }
    }

    /// A client of the server: no retries, so an outage shows as the first answer.
    pub fn client(&self, fail_open: bool) -> OnceOnly {
        OnceOnly::builder()
            .base_url(&self.base_url)
            .api_key(API_KEY)
            .max_retries(0)
            .timeout(Duration::from_secs(30))
            .fail_open(fail_open)
            .build()
            .unwrap()
    }

    /// The server's resident memory now, in bytes (`VmRSS` of `/proc/PID/status`).
    pub fn rss_bytes(&self) -> u64 {
        let pid = self.child.id().expect("the server is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kib * 1024
    }

    /// SIGKILL: no shutdown, no flush beyond what the store already made durable.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL onceonly-server");
    }

    /// Kills the server and starts a new one on the same store (on a new port).
    pub async fn restart(&mut self) {
        self.kill().await;
        *self = ServerProcess::start(&self.store).await;
    }
}

/// Worker processes, each running `callers` concurrent `run_fn` calls on `key` through one of
/// `urls` (round robin), released together. Returns every caller's JSON line.
pub async fn race(urls: &[&str], processes: usize, key: &str, callers: usize) -> Vec<Value> {
    let mut workers = Vec::new();
    for i in 0..processes {
        let url = urls[i % urls.len()];
        let (child, mut lines) = piped(
            Command::new(WORKER)
                .args(["race", url, key, &callers.to_string()])
                .env("ONCEONLY_API_KEY", API_KEY),
        );
        let ready = next_line(&mut lines, "worker").await;
        assert_eq!(ready.as_deref(), Some("ready"), "worker {i}");
        workers.push((child, lines));
    }
    for (child, _) in &mut workers {
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").await.unwrap();
        stdin.flush().await.unwrap();
    }
    let mut answers = Vec::new();
    for (mut child, mut lines) in workers {
        while let Some(line) = next_line(&mut lines, "worker").await {
            answers.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}")));
        }
        let status = tokio::time::timeout(LINE_WITHIN, child.wait()).await;
        assert!(status.unwrap().unwrap().success(), "a worker failed");
    }
    answers
}

/// Checks the outcome of a race: every caller answered with the same value and exactly one
/// caller ran its closure. Returns that value.
pub fn one_execution(answers: &[Value], callers: usize) -> Value {
    assert_eq!(answers.len(), callers);
    let errors: Vec<&Value> = answers
        .iter()
        .filter(|a| a.get("error").is_some())
        .collect();
    assert!(
        errors.is_empty(),
        "{} callers failed: {:?}",
        errors.len(),
        &errors[..errors.len().min(3)]
    );
    let ran = answers.iter().filter(|a| a["ran"] == true).count();
    assert_eq!(ran, 1, "exactly one closure ran");
    let value = answers[0]["value"].clone();
    assert!(
        value["pid"].is_u64() && value["started_ms"].is_u64(),
        "{value}"
    );
    for a in answers {
        assert_eq!(
            a["value"], value,
            "every caller gets the one execution's value"
        );
    }
    value
}

/// A worker holding a lease with heartbeats, to be killed mid-lease.
pub struct Holder {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// The holder's lease id.
    pub lease_id: String,
    /// When the holder's last seen acquisition or heartbeat left (ms since the epoch): its
    /// lease ends no earlier than this plus the TTL.
    pub last_sent_ms: u64,
}

impl Holder {
    /// Starts a holder of `key` through `url` with a lease of `ttl_ms`, once it holds it.
    pub async fn start(url: &str, key: &str, ttl_ms: u64) -> Holder {
        let (child, mut lines) = piped(
            Command::new(WORKER)
                .args(["hold", url, key, &ttl_ms.to_string()])
                .env("ONCEONLY_API_KEY", API_KEY),
        );
        let line = next_line(&mut lines, "holder")
            .await
            .expect("the holder acquired");
        let beat: Value = serde_json::from_str(&line).unwrap();
        Holder {
            child,
            lines,
            lease_id: beat["lease_id"].as_str().unwrap().to_owned(),
            last_sent_ms: beat["sent_ms"].as_u64().unwrap(),
        }
    }

    /// Waits for the holder's next heartbeat.
    pub async fn heartbeat(&mut self) {
        let line = next_line(&mut self.lines, "holder")
            .await
            .expect("a heartbeat");
        let beat: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(beat["lease_id"], self.lease_id.as_str());
        self.last_sent_ms = beat["sent_ms"].as_u64().unwrap();
    }

    /// SIGKILL mid-lease, then reads what it printed before it died. Returns the lease id and
    /// the latest heartbeat time it reported.
    pub async fn kill(mut self) -> (String, u64) {
        self.child.kill().await.expect("SIGKILL the holder");
        while let Some(line) = next_line(&mut self.lines, "holder").await {
            let beat: Value = serde_json::from_str(&line).unwrap();
            self.last_sent_ms = beat["sent_ms"].as_u64().unwrap();
        }
        (self.lease_id, self.last_sent_ms)
    }
}

/// An `onceonly-job-worker` process serving queued runs, and what it has printed so far.
pub struct JobWorker {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// The process id, as it appears in the results of its runs.
    pub pid: u32,
    /// Every `{"started": ..}` and `{"finished": ..}` line read so far, in order.
    pub events: Vec<Value>,
}

impl JobWorker {
    /// Starts a worker serving `pattern` through `store` with a lease of `lease_ttl_ms`, each
    /// run working `work_ms`; returns once it is connected.
    pub async fn start(store: &str, pattern: &str, lease_ttl_ms: u64, work_ms: u64) -> JobWorker {
        let (child, mut lines) = piped(Command::new(JOB_WORKER).args([
            store,
            pattern,
            &lease_ttl_ms.to_string(),
            &work_ms.to_string(),
        ]));
        let ready = next_line(&mut lines, "job worker").await;
        assert_eq!(ready.as_deref(), Some("ready"), "the job worker started");
        let pid = child.id().expect("a running child has a pid");
        JobWorker {
            child,
            lines,
            pid,
            events: Vec::new(),
        }
    }

    /// Waits for the worker's next line, `None` once it exited.
    pub async fn next_event(&mut self) -> Option<Value> {
        let line = next_line(&mut self.lines, "job worker").await?;
        let event: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        self.events.push(event.clone());
        Some(event)
    }

    /// Closes its standard input, so it stops claiming and exits once its runs are stored;
    /// returns every line it printed.
    pub async fn stop(mut self) -> Vec<Value> {
        drop(self.child.stdin.take());
        while self.next_event().await.is_some() {}
        let status = tokio::time::timeout(LINE_WITHIN, self.child.wait()).await;
        assert!(status.unwrap().unwrap().success(), "a job worker failed");
        self.events
    }

    /// SIGKILL, in the middle of whatever it runs; returns every line it printed before.
    pub async fn kill(mut self) -> Vec<Value> {
        self.child.kill().await.expect("SIGKILL the job worker");
        while self.next_event().await.is_some() {}
        self.events
    }
}

/// The executions among a job worker's lines: the `started` objects.
pub fn started(events: &[Value]) -> Vec<&Value> {
    events.iter().filter_map(|e| e.get("started")).collect()
}

/// The executions a job worker finished: the `finished` objects.
pub fn finished(events: &[Value]) -> Vec<&Value> {
    events.iter().filter_map(|e| e.get("finished")).collect()
}
