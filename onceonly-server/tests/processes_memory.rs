//! What one tenant can make a server process hold, measured on a real `onceonly-server`
//! process (`VmRSS`), and the daily quotas that bound its keys and results.

mod procs;

use std::sync::Arc;

use onceonly_runtime::Error;
use procs::{API_KEY, ServerProcess};
use serde_json::{Value, json};

/// The documented bound of what an account's events take in a memory-store server (server
/// README, "Per-tenant memory"): 8 MiB of event JSON plus the log's bookkeeping.
const EVENTS_BOUND_BYTES: u64 = 16 << 20;
const EVENTS: usize = 20_000;
/// Concurrent connections posting: a server's memory grows with them too.
const POSTERS: usize = 64;

async fn post_events(base_url: &str, from: usize, to: usize, pad: &str) {
    let http = reqwest::Client::new();
    let pad = Arc::new(pad.to_owned());
    let mut posters = Vec::new();
    for p in 0..POSTERS {
        let (http, pad, url) = (http.clone(), Arc::clone(&pad), format!("{base_url}/events"));
        posters.push(tokio::spawn(async move {
            for i in (from + p..to).step_by(POSTERS) {
                // A new run id per event: the worst case for timelines and the run list.
                let event = json!({
                    "run_id": format!("run-{i:06}"),
                    "type": "tool_result",
                    "status": "ok",
                    "data": {"i": i, "blob": pad.as_str()},
                });
                let resp = http
                    .post(&url)
                    .bearer_auth(API_KEY)
                    .json(&event)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    resp.status(),
                    200,
                    "event {i}: {}",
                    resp.text().await.unwrap()
                );
            }
        }));
    }
    for p in posters {
        p.await.unwrap();
    }
}

async fn get(base_url: &str, path: &str) -> Value {
    let resp = reqwest::Client::new()
        .get(format!("{base_url}{path}"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "GET {path}");
    resp.json().await.unwrap()
}

/// How many check-locks the server answered 429, from its `/metrics`.
async fn refusals(base_url: &str) -> u64 {
    let root = base_url.trim_end_matches("/v1");
    let text = reqwest::get(format!("{root}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("onceonly_outcomes_total") && l.contains("check-lock"))
        .filter(|l| l.contains(r#"outcome="rate_limited""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// 20,000 events of about 3.5 KB (70 MB of JSON), each opening a new run, leave the server
/// process within the documented per-tenant bound, and the account keeps its newest events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_large_events_stay_within_the_per_tenant_bound() {
    let server = ServerProcess::start("memory").await;
    let pad = "x".repeat(3_400);
    // Warm up connections, allocator arenas and code paths with events that stay.
    post_events(&server.base_url, 0, 400, &pad).await;
    let before = server.rss_bytes();
    post_events(&server.base_url, 400, EVENTS, &pad).await;
    let after = server.rss_bytes();
    let grew = after.saturating_sub(before);
    eprintln!(
        "VmRSS {} MiB -> {} MiB: +{:.1} MiB for {EVENTS} events",
        before >> 20,
        after >> 20,
        grew as f64 / (1 << 20) as f64
    );
    assert!(
        grew <= EVENTS_BOUND_BYTES,
        "the server grew by {grew} bytes, over the documented {EVENTS_BOUND_BYTES}"
    );

    // What is kept: the newest events, within 8 MiB of JSON.
    let page = get(&server.base_url, "/events?limit=1").await;
    let kept = page["total"].as_u64().unwrap();
    // Each event is over 3,400 bytes of JSON (its blob alone), so 8 MiB holds fewer than
    // 2,468 of them, and more than 2,000 of these 3.5 KB ones.
    assert!(kept <= (8 << 20) / 3_400, "kept {kept} events, over 8 MiB");
    assert!(
        kept > 2_000,
        "the log keeps about 8 MiB of events, kept {kept}"
    );
    assert_eq!(page["data"][0]["type"], "tool_result");
    let newest = page["data"][0]["run_id"].as_str().unwrap().to_owned();
    // The newest run's timeline is there; the oldest run's went with its event.
    let timeline = get(&server.base_url, &format!("/runs/{newest}")).await;
    assert_eq!(timeline["total"], 1);
    let oldest = get(&server.base_url, "/runs/run-000000").await;
    assert_eq!(oldest["total"], 0, "trimmed from its timeline too");
    let runs = get(&server.base_url, "/runs?limit=1").await;
    assert_eq!(runs["total"].as_u64(), Some(kept), "one run per kept event");
}

/// A server started with a daily check-lock quota refuses the first check-lock past it with
/// 429 and a JSON detail naming the quota and the wait (no `Retry-After`); the Rust client reads it as
/// `Error::QuotaExceeded` at once (no retries) and other tenants' keys are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_quota_refuses_with_429_and_a_detail() {
    let server = ServerProcess::start_with(
        "memory",
        &["--quota-check-locks", "20", "--quota-result-bytes", "100"],
    )
    .await;
    let client = onceonly_runtime::OnceOnly::builder()
        .base_url(&server.base_url)
        .api_key(API_KEY)
        .max_retries(3)
        .build()
        .unwrap();
    for i in 0..20 {
        let r = client.check_lock(format!("q-{i}")).await.unwrap();
        assert!(r.locked, "check-lock {i} is within the quota");
    }
    match client.check_lock("q-over").await {
        Err(Error::QuotaExceeded(q)) => {
            assert_eq!(
                (q.quota.as_str(), q.limit, q.used),
                ("check_locks_per_day", 20, 20)
            );
            assert!(q.resets_at.ends_with("T00:00:00Z"), "{}", q.resets_at);
            assert!(q.retry_after.as_secs() > 0);
        }
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
    assert_eq!(
        refusals(&server.base_url).await,
        1,
        "the client took the refusal as final: no retries"
    );
    let raw = reqwest::Client::new()
        .post(format!("{}/check-lock", server.base_url))
        .bearer_auth(API_KEY)
        .json(&json!({"key": "q-raw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 429);
    // No `Retry-After`: clients that retry a 429 would sleep until midnight UTC.
    assert!(!raw.headers().contains_key("retry-after"));
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["detail"]["error"], "quota_exceeded");
    assert!(
        body["detail"]["retry_after_sec"]
            .as_u64()
            .is_some_and(|s| s > 0)
    );
    assert!(
        body["detail"]["message"]
            .as_str()
            .unwrap()
            .contains("check_locks_per_day")
    );

    // Results: a completion over the byte quota is refused and the lease stays held.
    let lease = client.ai().lease("r-1").await.unwrap();
    let lease_id = lease.lease_id.clone().unwrap();
    let big = json!({"text": "y".repeat(200)});
    let refused = client
        .ai()
        .complete("r-1", &lease_id)
        .result(big.as_object().unwrap().clone())
        .await;
    assert!(
        matches!(&refused, Err(Error::QuotaExceeded(q)) if q.quota == "result_bytes_per_day"),
        "{refused:?}"
    );
    let small = json!({"ok": true});
    let done = client
        .ai()
        .complete("r-1", &lease_id)
        .result(small.as_object().unwrap().clone())
        .await
        .unwrap();
    assert_eq!(
        done.status.as_str(),
        "completed",
        "the lease was still held"
    );
}
