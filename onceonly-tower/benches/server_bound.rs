//! Requests per second of an axum route with and without `OnceOnlyLayer` when the server is the
//! bottleneck: one server thread, driven by `wrk` hard enough to keep it busy.
//!
//! Every variant is served in this process by one tokio runtime with a single worker thread,
//! pinned to CPU 0 when the machine has more than one (with `taskset`); `wrk` runs on the other
//! CPUs. Every request is a `POST` with its own `Idempotency-Key` and a small Stripe-style body
//! with its own `"id"` (`server_bound.lua`), so each one is a full claim on the embedded
//! in-memory backend, never a cheap duplicate. Rounds of the variants are interleaved
//! (A, B, C, ..., A, B, C, ...) so drift of the machine hits every variant alike; each figure
//! is the median of its rounds, with its ratio to the bare route measured in the same run. A
//! round aborts the run if any answer is not 2xx or any request did not reach the handler. A
//! round in which the server thread was not kept busy (`--min-busy`, default 0.95 of the time)
//! or the hypervisor took more than `--max-steal` (default 0.03) of the machine's CPU time, for
//! the variant or the bare route of that round, measured the host rather than the layer and is
//! left out of the medians.
//!
//! ```text
//! cargo bench -p onceonly-tower --bench server_bound -- [--secs 5] [--rounds 5] \
//!     [--connections 64] [--threads 2] [--warmup 2] [--no-pin] [--only 0,2] \
//!     [--min-busy 0.95] [--max-steal 0.03]
//! ```
//!
//! Needs `wrk` on the `PATH` (Debian: `apt-get install wrk`).

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use onceonly_runtime::OnceOnly;
use onceonly_tower::{Mode, OnceOnlyLayer};

use common::{Instant0, PATH, arg, flag, median, stripe};

struct Options {
    secs: u64,
    rounds: usize,
    connections: usize,
    threads: usize,
    warmup: u64,
    pin: bool,
    /// Rounds where the server thread was on a CPU (or waiting for one) less than this share of
    /// the time were not server-bound, and are left out of the medians.
    min_busy: f64,
    /// Rounds where the hypervisor took more than this share of the machine's CPU time were
    /// measuring the host's other tenants, and are left out too.
    max_steal: f64,
}

fn options() -> Options {
    Options {
        secs: arg("--secs").unwrap_or(5).max(1),
        rounds: arg("--rounds").unwrap_or(5).max(1),
        connections: arg("--connections").unwrap_or(64),
        threads: arg("--threads").unwrap_or(2),
        warmup: arg("--warmup").unwrap_or(2),
        pin: !flag("--no-pin"),
        min_busy: arg("--min-busy").unwrap_or(0.95),
        max_steal: arg("--max-steal").unwrap_or(0.03),
    }
}

/// Name of the server runtime's thread, to find it in `/proc`.
const SERVER_THREAD: &str = "bench-server";

/// The thread ids of the server runtime's threads.
fn server_threads() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| {
            let path = t.ok()?.path();
            let comm = std::fs::read_to_string(path.join("comm")).ok()?;
            (comm.trim() == SERVER_THREAD).then(|| path.file_name()?.to_str().map(str::to_owned))?
        })
        .collect()
}

/// Time the server threads spent on a CPU and waiting for one, so far, from
/// `/proc/self/task/*/schedstat` (nanoseconds). A server-bound thread is always doing one or
/// the other; a thread that waits for requests does neither.
fn server_sched(tids: &[String]) -> Option<(Duration, Duration)> {
    let (mut run, mut wait) = (0u64, 0u64);
    for tid in tids {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
        let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().ok());
        run += fields.next()??;
        wait += fields.next()??;
    }
    Some((Duration::from_nanos(run), Duration::from_nanos(wait)))
}

/// Ticks (1/100 s) the hypervisor took from this VM's CPUs so far (`steal` in `/proc/stat`),
/// summed over the CPUs; `None` outside Linux.
fn steal_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let all = stat.lines().find(|l| l.starts_with("cpu "))?;
    all.split_whitespace().nth(8)?.parse().ok()
}

/// Pins the server threads to CPU 0; returns the CPU list `wrk` is to run on, or `None` when
/// nothing was pinned (one CPU, no `taskset`, or `--no-pin`).
fn pin(tids: &[String]) -> Option<String> {
    let cpus = std::thread::available_parallelism().ok()?.get();
    if cpus < 2 || tids.is_empty() {
        return None;
    }
    for tid in tids {
        let ok = Command::new("taskset")
            .args(["-pc", "0", tid])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return None;
        }
    }
    Some(format!("1-{}", cpus - 1))
}

/// What `wrk` reported for one round.
struct Round {
    rps: f64,
    requests: u64,
}

/// Runs `wrk` against `url` for `secs`; `tag` makes this round's keys unique.
fn wrk(o: &Options, cpus: Option<&str>, url: &str, secs: u64, tag: &str) -> Round {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/server_bound.lua");
    let mut cmd = match cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus, "wrk"]);
            c
        }
        None => Command::new("wrk"),
    };
    cmd.args([
        "-t",
        &o.threads.to_string(),
        "-c",
        &o.connections.to_string(),
        "-d",
        &format!("{secs}s"),
        "-s",
        script,
        url,
        "--",
        tag,
    ]);
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("could not run wrk ({e}); install it (Debian: apt-get install wrk)")
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("Non-2xx"),
        "some answers were not 2xx:\n{text}"
    );
    let field = |after: &str| -> Option<f64> {
        let rest = &text[text.find(after)? + after.len()..];
        rest.split_whitespace().next()?.parse().ok()
    };
    let rps = field("Requests/sec:").unwrap_or_else(|| panic!("no Requests/sec in:\n{text}"));
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no request count in:\n{text}"));
    if text.contains("Socket errors") {
        eprintln!("wrk reported socket errors:\n{text}");
    }
    Round { rps, requests }
}

/// Serves `app` on the server runtime; returns its URL.
fn serve(server: &tokio::runtime::Runtime, app: Router) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    server.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        axum::serve(listener, app).await.unwrap()
    });
    format!("http://{addr}{PATH}")
}

/// Puts a variant's layer (or none) around the route.
type Wrap = fn(Router) -> Router;

fn main() {
    let o = options();
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(SERVER_THREAD)
        .enable_all()
        .build()
        .unwrap();
    let variants: Vec<(&str, Wrap)> = vec![
        ("bare route", |r| r),
        ("layer, request without a key (passthrough)", |r| {
            let elsewhere =
                onceonly_tower::KeySource::header(axum::http::HeaderName::from_static("x-absent"));
            r.layer(OnceOnlyLayer::new(OnceOnly::memory()).key_sources([elsewhere]))
        }),
        ("check-lock, Idempotency-Key", |r| {
            r.layer(OnceOnlyLayer::new(OnceOnly::memory()))
        }),
        (
            "check-lock, Idempotency-Key, backend that answers at once (layer alone)",
            |r| r.layer(OnceOnlyLayer::new(OnceOnly::from_backend(Instant0))),
        ),
        ("check-lock, JSON pointer /id", |r| {
            r.layer(
                OnceOnlyLayer::new(OnceOnly::memory())
                    .key_sources([])
                    .json_pointer("/id"),
            )
        }),
        ("replay, Idempotency-Key", |r| {
            r.layer(OnceOnlyLayer::new(OnceOnly::memory()).mode(Mode::Replay))
        }),
    ];
    // `--only 0,3` keeps those variants (the first one kept is the baseline): for profiling.
    let only: Option<Vec<usize>> = arg::<String>("--only").map(|list| {
        list.split(',')
            .filter_map(|i| i.trim().parse().ok())
            .collect()
    });
    let served: Vec<(&str, String, Arc<AtomicU64>)> = variants
        .iter()
        .enumerate()
        .filter(|(i, _)| only.as_ref().is_none_or(|keep| keep.contains(i)))
        .map(|(_, v)| v)
        .map(|(name, wrap)| {
            let runs = Arc::new(AtomicU64::new(0));
            (*name, serve(&server, wrap(stripe(&runs))), runs)
        })
        .collect();
    // The runtime starts its worker lazily; make sure it exists before looking for it.
    server.block_on(async {});
    std::thread::sleep(Duration::from_millis(100));
    let tids = server_threads();
    let cpus = if o.pin { pin(&tids) } else { None };
    eprintln!(
        "server thread(s) {tids:?}; {}",
        match &cpus {
            Some(c) => format!("pinned to CPU 0, wrk on CPUs {c}"),
            None => "not pinned".into(),
        }
    );

    for (i, (_, url, _)) in served.iter().enumerate() {
        wrk(&o, cpus.as_deref(), url, o.warmup, &format!("warmup{i}"));
    }
    // Per variant, per round: wrk's requests per second, and requests per second of server
    // CPU time (what the server would answer with the CPU to itself: steadier than req/s when
    // other work on the machine takes turns with the server thread).
    let mut rounds: Vec<Vec<Sample>> = vec![Vec::new(); served.len()];
    for round in 0..o.rounds {
        for (i, (name, url, runs)) in served.iter().enumerate() {
            let before = runs.load(Ordering::Relaxed);
            let sched = server_sched(&tids);
            let stolen = steal_ticks();
            let r = wrk(&o, cpus.as_deref(), url, o.secs, &format!("r{round}v{i}"));
            let after = server_sched(&tids);
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            let steal = match (stolen, steal_ticks()) {
                (Some(a), Some(b)) => (b - a) as f64 / (100.0 * o.secs as f64 * cpus as f64),
                _ => 0.0,
            };
            let ran = runs.load(Ordering::Relaxed) - before;
            // Requests cut off at the end of the round may have run without being counted by
            // wrk, never the other way round: fewer runs means duplicates were answered.
            assert!(
                ran >= r.requests,
                "{name}: {} requests but {ran} handler runs",
                r.requests
            );
            // Busy: on a CPU; starved: runnable but waiting for one (other work on the machine).
            let ((r0, w0), (r1, w1)) = sched.zip(after).expect("no schedstat for the server");
            let cpu = (r1 - r0).as_secs_f64();
            let sample = Sample {
                rps: r.rps,
                per_cpu: r.requests as f64 / cpu,
                busy: cpu / o.secs as f64,
                starved: (w1 - w0).as_secs_f64() / o.secs as f64,
                steal,
            };
            eprintln!(
                "round {}: {name}: {:.0} req/s, {:.0} req per server CPU-second, server thread busy {:.0}%, starved {:.0}%, stolen {:.1}%",
                round + 1,
                sample.rps,
                sample.per_cpu,
                100.0 * sample.busy,
                100.0 * sample.starved,
                100.0 * sample.steal,
            );
            rounds[i].push(sample);
        }
    }
    println!(
        "\n{} rounds of {}s; wrk -t{} -c{}; one server thread{}\n",
        o.rounds,
        o.secs,
        o.threads,
        o.connections,
        if cpus.is_some() {
            " pinned to CPU 0"
        } else {
            ""
        }
    );
    println!(
        "| variant | req/s | vs bare | req per server CPU-second | vs bare | server thread busy + starved | rounds kept |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let base = &rounds[0];
    // A round counts only when both the variant and the bare route kept the server thread
    // busy and the hypervisor left the machine alone: on a shared host the CPUs are sometimes
    // taken away (`vmstat`'s `st` column), which slows one round and not the next.
    let saturated = |s: &Sample| s.busy + s.starved >= o.min_busy && s.steal <= o.max_steal;
    for ((name, _, _), samples) in served.iter().zip(&rounds) {
        let mut kept: Vec<(&Sample, &Sample)> = samples
            .iter()
            .zip(base)
            .filter(|(s, b)| saturated(s) && saturated(b))
            .collect();
        if kept.is_empty() {
            eprintln!("{name}: no round kept the server busy; using every round");
            kept = samples.iter().zip(base).collect();
        }
        // Each round's ratio pairs the variant with the bare route measured moments before.
        let ratio = |f: fn(&Sample) -> f64| median(kept.iter().map(|(s, b)| f(s) / f(b)).collect());
        let of = |f: fn(&Sample) -> f64| median(kept.iter().map(|(s, _)| f(s)).collect());
        println!(
            "| {name} | {:.0} | {:.3} | {:.0} | {:.3} | {:.0}% | {}/{} |",
            of(|s| s.rps),
            ratio(|s| s.rps),
            of(|s| s.per_cpu),
            ratio(|s| s.per_cpu),
            100.0 * of(|s| s.busy + s.starved),
            kept.len(),
            samples.len(),
        );
    }
}

/// One round of one variant.
#[derive(Clone)]
struct Sample {
    rps: f64,
    per_cpu: f64,
    busy: f64,
    starved: f64,
    /// Share of the machine's CPU time the hypervisor took during the round.
    steal: f64,
}
