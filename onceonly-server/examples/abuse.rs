//! An abuse run against `onceonly-server`, on 127.0.0.1 only, bounded in count and time.
//!
//! Starts the server binary with `--header-timeout 3 --idle-timeout 5 --body-timeout 3`, then:
//!
//! 1. floods it with silent connections (connect, send nothing), slowloris connections (a
//!    request head one byte a second), idle keep-alive connections (one request, then
//!    nothing) and slow bodies (a body one byte a second, answered 408), while a new client asks `GET /healthz` every 250 ms; reports how many flood
//!    connections the server closed within their timeout plus a grace period, and the
//!    `/healthz` latencies;
//! 2. sends fuzzed bodies (random bytes, random JSON, API-shaped JSON) to every POST endpoint
//!    and counts the answers by status class (a 5xx is a failure);
//! 3. sends bodies at, just over and far over the body limit;
//! 4. takes many keys (check-locks on distinct keys), posts many large events (which must stay
//!    within the documented per-tenant bound) and tries many wrong API keys, reporting
//!    throughput and the server's memory.
//!
//! Run it with `scripts/abuse.sh` (builds in release mode, raises `ulimit -n`). Exits non-zero
//! when a check fails.

use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;

const KEY: &str = "once_abuse_run_key_0001";
const HEADER_TIMEOUT: u64 = 3;
const IDLE_TIMEOUT: u64 = 5;
const BODY_TIMEOUT: u64 = 3;
/// How late after its timeout a flood connection may be closed and still count as closed in
/// time.
const GRACE: Duration = Duration::from_secs(3);
/// A flood connection still open after this is given up on (and counted as not closed).
const GIVE_UP: Duration = Duration::from_secs(40);

struct Options {
    server: String,
    silent: usize,
    slowloris: usize,
    idle: usize,
    slow_bodies: usize,
    fuzz: usize,
    keys: usize,
    events: usize,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        server: String::new(),
        silent: 1500,
        slowloris: 200,
        idle: 300,
        slow_bodies: 100,
        fuzz: 3000,
        keys: 20_000,
        events: 20_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let count = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--server" => o.server = value.clone(),
            "--silent" => o.silent = count()?,
            "--slowloris" => o.slowloris = count()?,
            "--idle" => o.idle = count()?,
            "--slow-bodies" => o.slow_bodies = count()?,
            "--fuzz" => o.fuzz = count()?,
            "--keys" => o.keys = count()?,
            "--events" => o.events = count()?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if o.server.is_empty() {
        return Err("--server PATH (the onceonly-server binary) is required".into());
    }
    Ok(o)
}

/// Starts the server on a free loopback port; returns it and its address.
async fn start(binary: &str) -> Result<(Child, String), String> {
    let mut child = Command::new(binary)
        .args(["--listen", "127.0.0.1:0", "--api-key", KEY, "--log", "warn"])
        .args(["--header-timeout", &HEADER_TIMEOUT.to_string()])
        .args(["--idle-timeout", &IDLE_TIMEOUT.to_string()])
        .args(["--body-timeout", &BODY_TIMEOUT.to_string()])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {binary}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    let url = line
        .trim()
        .strip_prefix("onceonly-server listening on http://")
        .and_then(|rest| rest.strip_suffix("/v1"))
        .ok_or(format!("unexpected first line: {line:?}"))?;
    Ok((child, url.to_owned()))
}

/// What one tenant's events may take in the server (server README, "Per-tenant memory").
const EVENTS_BOUND_MIB: f64 = 16.0;

/// The server's resident memory in MiB, from `/proc` (Linux).
fn rss_mib(child: &Child) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()?)).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Reads until the server closes; the time it took, or `None` past [`GIVE_UP`].
async fn until_closed(tcp: &mut TcpStream, since: Instant) -> Option<Duration> {
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(GIVE_UP, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    closed.ok().map(|()| since.elapsed())
}

/// `GET /healthz` on a new connection: the status and the whole exchange's duration.
async fn healthz(addr: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let mut tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    if answer.starts_with(b"HTTP/1.1 200") {
        Ok(started.elapsed())
    } else {
        Err(String::from_utf8_lossy(&answer).into_owned())
    }
}

/// One flood connection of `kind`; the time from connecting (silent, slowloris, slow body) or
/// from its answer (idle) to the server closing it, or `None` when it was not closed or not
/// answered as it should be.
async fn flood_one(mut tcp: TcpStream, kind: &'static str) -> Option<Duration> {
    match kind {
        "silent" => until_closed(&mut tcp, Instant::now()).await,
        "slowloris" | "slow body" => {
            let since = Instant::now();
            let (first, drop): (String, &[u8]) = if kind == "slowloris" {
                ("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".into(), b"a")
            } else {
                (
                    format!(
                        "POST /v1/check-lock HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
                         Content-Length: 1000\r\n\r\n{{\"key\":"
                    ),
                    b" ",
                )
            };
            let (mut r, mut w) = tcp.into_split();
            let drip = tokio::spawn(async move {
                w.write_all(first.as_bytes()).await?;
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    w.write_all(drop).await?;
                }
                #[allow(unreachable_code)]
                Ok::<(), std::io::Error>(())
            });
            let mut answer = Vec::new();
            let mut buf = [0u8; 256];
            let closed = tokio::time::timeout(GIVE_UP, async {
                while let Ok(n @ 1..) = r.read(&mut buf).await {
                    answer.extend_from_slice(&buf[..n]);
                }
            })
            .await;
            drip.abort();
            // A slowloris head gets no answer; a slow body gets 408.
            let expected: &[u8] = if kind == "slowloris" {
                b""
            } else {
                b"HTTP/1.1 408"
            };
            (closed.is_ok() && answer.starts_with(expected)).then(|| since.elapsed())
        }
        _ => {
            tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .ok()?;
            // The answer is small: one read holds it.
            let mut buf = [0u8; 1024];
            let n = tcp.read(&mut buf).await.ok()?;
            if !buf[..n].starts_with(b"HTTP/1.1 200") {
                return None;
            }
            until_closed(&mut tcp, Instant::now()).await
        }
    }
}

/// Phase 1. Returns whether every flood connection was closed in time.
async fn flood(o: &Options, addr: &str, child: &Child) -> bool {
    let started = Instant::now();
    let rss_before = rss_mib(child);
    let connecting = Arc::new(Semaphore::new(200));
    let mut floods = Vec::new();
    for (kind, n, timeout) in [
        ("silent", o.silent, HEADER_TIMEOUT),
        ("slowloris", o.slowloris, HEADER_TIMEOUT),
        ("idle", o.idle, IDLE_TIMEOUT),
        ("slow body", o.slow_bodies, BODY_TIMEOUT),
    ] {
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let (addr, connecting) = (addr.to_owned(), Arc::clone(&connecting));
            tasks.push(tokio::spawn(async move {
                // A few hundred connects in flight at once, as a flood arrives over time.
                let tcp = {
                    let _permit = connecting.acquire().await;
                    TcpStream::connect(&addr).await.ok()?
                };
                flood_one(tcp, kind).await
            }));
        }
        floods.push((kind, timeout, tasks));
    }

    let floods = tokio::spawn(async move {
        let mut done = Vec::new();
        for (kind, timeout, tasks) in floods {
            let mut closed = Vec::with_capacity(tasks.len());
            for task in tasks {
                closed.push(task.await.ok().flatten());
            }
            done.push((kind, timeout, closed));
        }
        done
    });

    // Meanwhile, a new client every 250 ms, until the floods are over.
    let mut probes = Vec::new();
    let mut peak_rss = rss_before.unwrap_or(0.0);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    while !floods.is_finished() && started.elapsed() < GIVE_UP + Duration::from_secs(10) {
        tick.tick().await;
        let addr = addr.to_owned();
        probes.push(tokio::spawn(async move { healthz(&addr).await }));
        peak_rss = peak_rss.max(rss_mib(child).unwrap_or(0.0));
    }
    let floods = floods.await.unwrap_or_default();
    println!(
        "     flood: {} connections, over after {:.1?}",
        o.silent + o.slowloris + o.idle + o.slow_bodies,
        started.elapsed()
    );

    let mut all_in_time = true;
    for (kind, timeout, closed) in floods {
        let bound = Duration::from_secs(timeout) + GRACE;
        let (mut in_time, mut late, mut open, mut worst) = (0, 0, 0, Duration::ZERO);
        for close in closed {
            match close {
                Some(d) => {
                    worst = worst.max(d);
                    if d <= bound {
                        in_time += 1;
                    } else {
                        late += 1;
                    }
                }
                None => open += 1,
            }
        }
        all_in_time &= late == 0 && open == 0;
        println!(
            "{kind:>10}: {in_time} of {} closed within {timeout} s + {} s (latest after {worst:.1?}); \
             {late} later; {open} not closed in {} s or failed",
            in_time + late + open,
            GRACE.as_secs(),
            GIVE_UP.as_secs()
        );
    }

    let mut latencies = Vec::new();
    let mut failed = Vec::new();
    for probe in probes {
        match probe.await {
            Ok(Ok(d)) => latencies.push(d),
            Ok(Err(e)) => failed.push(e),
            Err(e) => failed.push(e.to_string()),
        }
    }
    latencies.sort();
    let pct = |p: usize| latencies.get(latencies.len().saturating_sub(1) * p / 100);
    println!(
        "   healthz: {} probes every 250 ms, {} failed; latency p50 {:?}, p99 {:?}, worst {:?}",
        latencies.len() + failed.len(),
        failed.len(),
        pct(50).copied().unwrap_or_default(),
        pct(99).copied().unwrap_or_default(),
        latencies.last().copied().unwrap_or_default()
    );
    if let Some(e) = failed.first() {
        println!("   first failed probe: {e}");
    }
    println!(
        "    memory: {:.1} MiB before the flood, {peak_rss:.1} MiB at its peak",
        rss_before.unwrap_or(0.0)
    );
    let worst_ok = latencies
        .last()
        .is_some_and(|w| *w < Duration::from_secs(1));
    all_in_time && failed.is_empty() && worst_ok
}

const POSTS: [&str; 10] = [
    "check-lock",
    "check-lock/release",
    "ai/run",
    "ai/lease",
    "ai/extend",
    "ai/complete",
    "ai/fail",
    "ai/cancel",
    "events",
    "me/notifications",
];

const FIELDS: [&str; 12] = [
    "key",
    "ttl",
    "metadata",
    "lease_id",
    "result",
    "error_code",
    "retryable",
    "reason",
    "lock_id",
    "run_id",
    "type",
    "agent_id",
];

fn random_json(rng: &mut impl Rng, depth: u32) -> Value {
    match rng.random_range(0..if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => json!(rng.random::<i64>() >> rng.random_range(0..63)),
        3 => json!(rng.random::<f64>() * 1e6 - 5e5),
        4 => {
            let len = rng.random_range(0..24);
            Value::String((0..len).map(|_| rng.random::<char>()).collect())
        }
        5 => (0..rng.random_range(0..5))
            .map(|_| random_json(rng, depth - 1))
            .collect(),
        _ => Value::Object(
            (0..rng.random_range(0..5))
                .map(|i| (format!("f{i}"), random_json(rng, depth - 1)))
                .collect(),
        ),
    }
}

/// Random bytes, random JSON, or an object of the API's field names with random values.
fn fuzzed_body(rng: &mut impl Rng) -> Vec<u8> {
    match rng.random_range(0..3) {
        0 => (0..rng.random_range(0..2048))
            .map(|_| rng.random())
            .collect(),
        1 => random_json(rng, 4).to_string().into_bytes(),
        _ => {
            let mut body = serde_json::Map::new();
            for field in FIELDS {
                if rng.random_bool(0.6) {
                    body.insert(field.to_owned(), random_json(rng, 2));
                }
            }
            Value::Object(body).to_string().into_bytes()
        }
    }
}

/// Sends only the head of a `POST` announcing `length` bytes; whether the answer is 413.
async fn head_only(addr: String, path: &str, length: usize) -> bool {
    let head = format!(
        "POST /v1/{path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    let answer = async {
        let mut tcp = TcpStream::connect(&addr).await.ok()?;
        tcp.write_all(head.as_bytes()).await.ok()?;
        let mut buf = [0u8; 64];
        let n = tcp.read(&mut buf).await.ok()?;
        Some(buf[..n].starts_with(b"HTTP/1.1 413"))
    };
    tokio::time::timeout(Duration::from_secs(10), answer)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Answers by status class (`[1xx, .., 5xx]`) and transport failures.
#[derive(Default)]
struct Tally {
    classes: [AtomicU64; 5],
    failed: AtomicU64,
}

impl Tally {
    fn count(&self, answer: &reqwest::Result<reqwest::Response>) {
        match answer {
            Ok(res) => {
                let class = usize::from(res.status().as_u16() / 100).clamp(1, 5) - 1;
                self.classes[class].fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn line(&self) -> String {
        let c: Vec<u64> = self
            .classes
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect();
        format!(
            "2xx {}, 4xx {}, 5xx {}, transport failures {}",
            c[1],
            c[3],
            c[4],
            self.failed.load(Ordering::Relaxed)
        )
    }

    fn clean(&self) -> bool {
        self.classes[4].load(Ordering::Relaxed) == 0 && self.failed.load(Ordering::Relaxed) == 0
    }
}

/// Runs `n` requests made by `request(i)`, 16 at a time, counting the answers.
async fn run_requests(
    n: usize,
    request: impl Fn(usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> (Tally, Duration) {
    let started = Instant::now();
    let tally = Arc::new(Tally::default());
    let request = Arc::new(request);
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (tally, request, next) = (tally.clone(), request.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= n {
                        break;
                    }
                    tally.count(&request(i).send().await);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let tally = Arc::try_unwrap(tally).unwrap_or_default();
    (tally, started.elapsed())
}

/// Phases 2 to 4. Returns whether every check held.
async fn requests(o: &Options, addr: &str, child: &Child) -> bool {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client");
    let base = format!("http://{addr}/v1");
    let mut ok = true;

    let (client, url) = (http.clone(), base.clone());
    let (tally, took) = run_requests(o.fuzz, move |i| {
        let mut rng = rand::rng();
        let path = POSTS[i % POSTS.len()];
        client
            .post(format!("{url}/{path}"))
            .bearer_auth(KEY)
            .body(fuzzed_body(&mut rng))
    })
    .await;
    println!(
        "      fuzz: {} bodies to {} endpoints in {took:.1?}: {}",
        o.fuzz,
        POSTS.len(),
        tally.line()
    );
    ok &= tally.clean();

    // Large bodies: at the limit (valid JSON, refused by the engine), one byte over, far over.
    let limit = onceonly_server::DEFAULT_BODY_LIMIT;
    let at_limit = {
        let head = r#"{"key":"big","metadata":{"pad":""#;
        let tail = r#""}}"#;
        let pad = "x".repeat(limit - head.len() - tail.len());
        format!("{head}{pad}{tail}").into_bytes()
    };
    for (what, body) in [
        ("at the limit", at_limit),
        ("1 byte over", vec![b' '; limit + 1]),
    ] {
        let (client, url) = (http.clone(), base.clone());
        let body = bytes::Bytes::from(body);
        let (tally, took) = run_requests(40, move |_| {
            client
                .post(format!("{url}/check-lock"))
                .bearer_auth(KEY)
                .body(body.clone())
        })
        .await;
        println!(
            "     large: 40 bodies {what} in {took:.1?}: {}",
            tally.line()
        );
        ok &= tally.clean();
    }
    // Far over the limit, the answer comes from the head alone: the body is never read (a
    // client still sending it when the server closes gets a reset, so none is sent here).
    for (path, length) in [("check-lock", 8 << 20), ("ai/complete", 6 << 20)] {
        let started = Instant::now();
        let answers: Vec<_> = (0..40)
            .map(|_| tokio::spawn(head_only(addr.to_owned(), path, length)))
            .collect();
        let mut refused = 0;
        for answer in answers {
            refused += usize::from(answer.await.unwrap_or(false));
        }
        println!(
            "     large: 40 heads announcing {} MiB to /v1/{path}: {refused} answered 413 in {:.1?}",
            length >> 20,
            started.elapsed()
        );
        ok &= refused == 40;
    }

    // Many keys: distinct check-locks, then wrong API keys.
    let rss_before = rss_mib(child).unwrap_or(0.0);
    let (client, url) = (http.clone(), base.clone());
    let (tally, took) = run_requests(o.keys, move |i| {
        client
            .post(format!("{url}/check-lock"))
            .bearer_auth(KEY)
            .json(&json!({"key": format!("abuse:key:{i}"), "ttl": 3600}))
    })
    .await;
    let rss_after = rss_mib(child).unwrap_or(0.0);
    println!(
        "      keys: {} distinct check-locks in {took:.1?} ({:.0}/s): {}; memory {rss_before:.1} -> {rss_after:.1} MiB",
        o.keys,
        o.keys as f64 / took.as_secs_f64(),
        tally.line()
    );
    ok &= tally.clean();

    // Many events: 3.5 KB each, a new run id each, from one tenant. The account's events log
    // keeps 8 MiB of them; the server README documents at most 16 MiB of memory for it.
    let rss_before = rss_mib(child).unwrap_or(0.0);
    let (client, url) = (http.clone(), base.clone());
    let blob = "x".repeat(3_400);
    let (tally, took) = run_requests(o.events, move |i| {
        client
            .post(format!("{url}/events"))
            .bearer_auth(KEY)
            .json(&json!({
                "run_id": format!("abuse-run-{i}"),
                "type": "tool_result",
                "data": {"i": i, "blob": blob},
            }))
    })
    .await;
    let rss_after = rss_mib(child).unwrap_or(0.0);
    println!(
        "    events: {} events of 3.5 KB in {took:.1?}: {}; memory {rss_before:.1} -> {rss_after:.1} MiB",
        o.events,
        tally.line()
    );
    ok &= tally.clean() && rss_after - rss_before <= EVENTS_BOUND_MIB;

    let (client, url) = (http.clone(), base.clone());
    let (tally, took) = run_requests(2000, move |i| {
        client
            .get(format!("{url}/me"))
            .bearer_auth(format!("once_wrong_key_{i}"))
    })
    .await;
    println!(
        "  api keys: 2000 wrong keys in {took:.1?}: {}",
        tally.line()
    );
    ok &= tally.clean();
    ok
}

#[tokio::main]
async fn main() -> ExitCode {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("abuse: {e}");
            return ExitCode::from(2);
        }
    };
    let (mut child, addr) = match start(&o.server).await {
        Ok(started) => started,
        Err(e) => {
            eprintln!("abuse: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "onceonly-server on {addr}, --header-timeout {HEADER_TIMEOUT} --idle-timeout {IDLE_TIMEOUT} \
         --body-timeout {BODY_TIMEOUT}"
    );
    let flood_ok = flood(&o, &addr, &child).await;
    let requests_ok = requests(&o, &addr, &child).await;
    if let Ok(res) = reqwest::get(format!("http://{addr}/metrics")).await {
        let text = res.text().await.unwrap_or_default();
        for line in text.lines().filter(|l| {
            l.starts_with("onceonly_connection") || l.starts_with("onceonly_request_body")
        }) {
            println!("   metrics: {line}");
        }
    }
    let _ = child.kill().await;
    if flood_ok && requests_ok {
        println!("all checks held");
        ExitCode::SUCCESS
    } else {
        println!("a check failed");
        ExitCode::FAILURE
    }
}
