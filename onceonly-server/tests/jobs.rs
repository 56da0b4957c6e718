//! Queued runs over HTTP: key-mode `/ai/run` queues a run, `POST /v1/ai/jobs/claim` hands it
//! to exactly one worker, and the worker ends it with the lease API. Driven with raw HTTP and
//! with the Rust client's HTTP backend against a real server on loopback.

use std::sync::Arc;
use std::time::Duration;

use onceonly_runtime::models::{ClaimRequest, ClaimedJob, RunStatus};
use onceonly_runtime::{Error, OnceOnly};
use onceonly_server::ApiKey;
use onceonly_server::testing::{TEST_API_KEY as KEY, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

/// A second tenant.
const OTHER: &str = "once_test_jobs_other_tenant";

struct Harness {
    server: TestServer,
    http: reqwest::Client,
}

async fn start() -> Harness {
    Harness {
        server: TestServer::start_with(|c| c.api_key(ApiKey::new(OTHER).unwrap())).await,
        http: reqwest::Client::new(),
    }
}

impl Harness {
    async fn send(&self, key: &str, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let res = req
            .bearer_auth(key)
            .send()
            .await
            .expect("the server answers");
        let status = res.status();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{status} with a body that is not JSON ({e}): {text}"));
        (status, body)
    }

    async fn post(&self, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let url = format!("{}/{path}", self.server.base_url());
        self.send(key, self.http.post(url).json(&body)).await
    }

    async fn post_ok(&self, key: &str, path: &str, body: Value) -> Value {
        let (status, body) = self.post(key, path, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    async fn get_ok(&self, key: &str, path: &str) -> Value {
        let url = format!("{}/{path}", self.server.base_url());
        let (status, body) = self.send(key, self.http.get(url)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    /// `POST /ai/jobs/claim` as the default tenant; answers `job` (`null` when none came).
    async fn claim(&self, body: Value) -> Value {
        let answer = self.post_ok(KEY, "ai/jobs/claim", body).await;
        assert_eq!(answer["ok"], true, "{answer}");
        answer["job"].clone()
    }

    async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.server.base_url().trim_end_matches("/v1"));
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Claims through the Rust client's HTTP backend.
async fn claim_with(client: &OnceOnly, pattern: &str, wait: Duration) -> Option<ClaimedJob> {
    client
        .backend()
        .claim_job(ClaimRequest::new(pattern).wait(wait))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_run_is_queued_once_and_claimed_with_its_metadata() {
    let h = start().await;
    let run = h
        .post_ok(
            KEY,
            "ai/run",
            json!({"key": "report:1", "ttl": 600, "metadata": {"month": "2026-04"}}),
        )
        .await;
    assert_eq!(
        (&run["status"], &run["queued"], &run["charged"]),
        (&json!("in_progress"), &json!(true), &json!(1)),
        "{run}"
    );
    assert!(
        run.get("lease_id").is_none(),
        "nobody holds a queued run: {run}"
    );
    assert!(run.get("allowed").is_none() && run.get("decision").is_none());
    let attach = h.post_ok(KEY, "ai/run", json!({"key": "report:1"})).await;
    assert_eq!(
        (&attach["status"], &attach["queued"], &attach["charged"]),
        (&json!("in_progress"), &json!(true), &json!(0)),
        "{attach}"
    );
    assert!(attach.get("lease_id").is_none());
    let status = h.get_ok(KEY, "ai/status?key=report:1").await;
    assert_eq!(
        (&status["status"], &status["queued"]),
        (&json!("in_progress"), &json!(true)),
        "{status}"
    );
    assert_eq!(h.get_ok(KEY, "usage?kind=ai").await["usage"], 1);

    let job = h
        .claim(json!({"pattern": "report:*", "lease_ttl": 60, "wait_ms": 5000}))
        .await;
    let lease_id = job["lease_id"].as_str().expect("the claim holds the lease");
    assert!(lease_id.starts_with("lease_"), "{job}");
    assert_eq!(
        job,
        json!({
            "key": "report:1",
            "lease_id": lease_id,
            "run_id": "report:1",
            "metadata": {"month": "2026-04", "run_id": "report:1"},
            "attempt": 1,
            "ttl": 60,
        })
    );
    // Claimed: running, no longer queued, and the claim was free.
    let status = h.get_ok(KEY, "ai/status?key=report:1").await;
    assert_eq!(status["status"], "in_progress");
    assert!(status.get("queued").is_none(), "{status}");
    assert_eq!(h.get_ok(KEY, "usage?kind=ai").await["usage"], 1);
    assert_eq!(h.claim(json!({"pattern": "report:*"})).await, Value::Null);

    let metrics = h.metrics().await;
    for outcome in ["claimed", "empty"] {
        let line = format!(
            "onceonly_outcomes_total{{endpoint=\"/v1/ai/jobs/claim\",outcome=\"{outcome}\"}} 1\n"
        );
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
}

#[tokio::test]
async fn the_rust_client_queues_and_claims_over_http() {
    let h = start().await;
    let client = h.server.client();
    let run = client
        .ai()
        .run("mail:7")
        .run_id("run-mail-7")
        .await
        .unwrap();
    assert_eq!(
        (run.status, run.queued, run.charged, run.lease_id.as_deref()),
        (RunStatus::InProgress, true, Some(1), None)
    );
    let status = client.ai().status("mail:7").await.unwrap();
    assert!(status.queued, "{status:?}");
    let job = client
        .backend()
        .claim_job(ClaimRequest::new("mail:7").lease_ttl(Duration::from_secs(45)))
        .await
        .unwrap()
        .expect("the queued run is claimed");
    assert_eq!(
        (job.key.as_str(), job.run_id.as_str(), job.attempt, job.ttl),
        ("mail:7", "run-mail-7", 1, 45)
    );
    assert_eq!(job.metadata["run_id"], "run-mail-7");
    assert_eq!(claim_with(&client, "mail:*", Duration::ZERO).await, None);
    let e = client
        .backend()
        .claim_job(ClaimRequest::new("mail*:x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Validation(_)), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_of_twenty_concurrent_claimers_gets_the_run() {
    let h = start().await;
    h.post_ok(KEY, "ai/run", json!({"key": "race:1"})).await;
    let client = h.server.client();
    let claimers: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { claim_with(&client, "race:*", Duration::from_secs(2)).await })
        })
        .collect();
    let mut jobs = Vec::new();
    for claimer in claimers {
        jobs.extend(claimer.await.unwrap());
    }
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!((jobs[0].key.as_str(), jobs[0].attempt), ("race:1", 1));
}

#[tokio::test]
async fn a_waiting_claim_is_woken_by_a_run_queued_meanwhile() {
    let h = Arc::new(start().await);
    let started = Instant::now();
    let waiting = {
        let h = Arc::clone(&h);
        tokio::spawn(async move {
            h.claim(json!({"pattern": "wake:*", "wait_ms": 30000}))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.post_ok(KEY, "ai/run", json!({"key": "wake:1"})).await;
    let job = waiting.await.unwrap();
    assert_eq!(job["key"], "wake:1", "{job}");
    // Woken by the run, not by the end of the wait (generous: loaded machines are slow).
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_completed_run_answers_its_result_everywhere() {
    let h = start().await;
    h.post_ok(
        KEY,
        "ai/run",
        json!({"key": "done:1", "metadata": {"run_id": "run-done"}}),
    )
    .await;
    let job = h.claim(json!({"pattern": "done:1"})).await;
    let lease_id = job["lease_id"].clone();
    // The worker heartbeats, then completes.
    let extended = h
        .post_ok(
            KEY,
            "ai/extend",
            json!({"key": "done:1", "lease_id": lease_id, "ttl": 60}),
        )
        .await;
    assert_eq!(extended["status"], "extended", "{extended}");
    h.post_ok(
        KEY,
        "ai/complete",
        json!({"key": "done:1", "lease_id": lease_id, "result": {"rows": 3}}),
    )
    .await;

    let status = h.get_ok(KEY, "ai/status?key=done:1").await;
    assert_eq!(status["status"], "completed", "{status}");
    assert!(status.get("queued").is_none());
    let result = h.get_ok(KEY, "ai/result?key=done:1").await;
    assert_eq!(
        (&result["status"], &result["result"]),
        (&json!("completed"), &json!({"rows": 3}))
    );
    let again = h.post_ok(KEY, "ai/run", json!({"key": "done:1"})).await;
    assert_eq!(
        (&again["status"], &again["result"], &again["charged"]),
        (&json!("completed"), &json!({"rows": 3}), &json!(0)),
        "{again}"
    );
    assert_eq!(h.claim(json!({"pattern": "done:*"})).await, Value::Null);
    let timeline = h.get_ok(KEY, "runs/run-done").await;
    let kinds: Vec<&Value> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["type"])
        .collect();
    assert_eq!(kinds, [&json!("run_started"), &json!("run_finished")]);
}

#[tokio::test]
async fn a_retryable_failure_or_a_cancel_queues_the_run_again() {
    let h = start().await;
    h.post_ok(KEY, "ai/run", json!({"key": "flaky:1"})).await;
    let first = h.claim(json!({"pattern": "flaky:*"})).await;
    assert_eq!(first["attempt"], 1);
    h.post_ok(
        KEY,
        "ai/fail",
        json!({
            "key": "flaky:1",
            "lease_id": first["lease_id"],
            "error_code": "timeout",
            "retryable": true,
        }),
    )
    .await;
    let status = h.get_ok(KEY, "ai/status?key=flaky:1").await;
    assert_eq!(
        (&status["status"], &status["queued"]),
        (&json!("in_progress"), &json!(true)),
        "{status}"
    );

    // Back in the queue: the next claim (woken at the latest by the queue's rescan) gets it.
    let second = h
        .claim(json!({"pattern": "flaky:*", "wait_ms": 10000}))
        .await;
    assert_eq!(
        (&second["key"], &second["attempt"]),
        (&json!("flaky:1"), &json!(2)),
        "{second}"
    );
    assert_ne!(second["lease_id"], first["lease_id"]);
    h.post_ok(
        KEY,
        "ai/cancel",
        json!({"key": "flaky:1", "lease_id": second["lease_id"], "reason": "shutting down"}),
    )
    .await;
    let third = h
        .claim(json!({"pattern": "flaky:1", "wait_ms": 10000}))
        .await;
    assert_eq!(third["attempt"], 3, "{third}");
    // A failure that is not retryable ends the run for good.
    h.post_ok(
        KEY,
        "ai/fail",
        json!({"key": "flaky:1", "lease_id": third["lease_id"], "error_code": "bad_input"}),
    )
    .await;
    let status = h.get_ok(KEY, "ai/status?key=flaky:1").await;
    assert_eq!(
        (&status["status"], &status["error_code"]),
        (&json!("failed"), &json!("bad_input"))
    );
    assert_eq!(h.claim(json!({"pattern": "flaky:*"})).await, Value::Null);
}

#[tokio::test]
async fn a_run_whose_worker_stops_heartbeating_is_claimed_again() {
    let h = start().await;
    h.post_ok(KEY, "ai/run", json!({"key": "lost:1"})).await;
    let first = h.claim(json!({"pattern": "lost:*", "lease_ttl": 1})).await;
    assert_eq!(first["ttl"], 1);
    // No heartbeat: the lease runs out after a second, and the run is claimable again.
    let second = h
        .claim(json!({"pattern": "lost:*", "wait_ms": 15000}))
        .await;
    assert_eq!(
        (&second["key"], &second["attempt"]),
        (&json!("lost:1"), &json!(2)),
        "{second}"
    );
    let (status, late) = h
        .post(
            KEY,
            "ai/complete",
            json!({"key": "lost:1", "lease_id": first["lease_id"], "result": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{late}");
    assert_eq!(late["detail"]["error"], "lease_lost");
}

#[tokio::test]
async fn bad_claims_are_4xx_with_a_json_detail() {
    let h = start().await;
    h.post_ok(KEY, "ai/run", json!({"key": "kept:1"})).await;
    let cases = [
        (json!({}), "no pattern"),
        (json!({"pattern": ""}), "empty pattern"),
        (json!({"pattern": "  "}), "blank pattern"),
        (json!({"pattern": 5}), "pattern type"),
        (json!({"pattern": "a*b*"}), "two stars"),
        (json!({"pattern": "*x"}), "leading star"),
        (json!({"pattern": "re*port"}), "inner star"),
        (json!({"pattern": "*", "lease_ttl": 0}), "zero ttl"),
        (json!({"pattern": "*", "lease_ttl": -1}), "negative ttl"),
        (json!({"pattern": "*", "lease_ttl": "30"}), "ttl type"),
        (
            json!({"pattern": "*", "lease_ttl": 1e9}),
            "ttl over 30 days",
        ),
        (
            json!({"pattern": "*", "wait_ms": 60001}),
            "wait over the max",
        ),
        (json!({"pattern": "*", "wait_ms": -1}), "negative wait"),
        (json!({"pattern": "*", "wait_ms": 1.5}), "fractional wait"),
        (json!(["*"]), "not an object"),
    ];
    for (body, what) in cases {
        let (status, answer) = h.post(KEY, "ai/jobs/claim", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {answer}");
        assert!(
            answer["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {answer}"
        );
    }
    let url = format!("{}/ai/jobs/claim", h.server.base_url());
    let (status, answer) = h.send(KEY, h.http.post(&url).body("{\"pattern\": ")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(answer["detail"].is_string(), "{answer}");
    let (status, _) = h
        .send("once_test_unknown", h.http.post(&url).body("{}"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, answer) = h.send(KEY, h.http.get(&url)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{answer}");

    // The refused claims took nothing.
    let job = h.claim(json!({"pattern": "kept:*"})).await;
    assert_eq!(
        (&job["key"], &job["attempt"]),
        (&json!("kept:1"), &json!(1))
    );
}

#[tokio::test]
async fn a_run_queued_under_one_api_key_is_not_claimed_with_another() {
    let h = start().await;
    h.post_ok(KEY, "ai/run", json!({"key": "tenant:1"})).await;
    let other = h.server.client_for(OTHER);
    assert_eq!(claim_with(&other, "*", Duration::ZERO).await, None);
    assert_eq!(
        claim_with(&other, "tenant:1", Duration::from_millis(300)).await,
        None
    );
    assert_eq!(
        h.get_ok(OTHER, "ai/status?key=tenant:1").await["status"],
        "not_found"
    );
    // The same key queued by the other tenant is that tenant's own run.
    h.post_ok(OTHER, "ai/run", json!({"key": "tenant:1"})).await;
    let theirs = claim_with(&other, "*", Duration::ZERO).await.unwrap();
    let ours = claim_with(&h.server.client(), "*", Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((theirs.attempt, ours.attempt), (1, 1));
    assert_ne!(theirs.lease_id, ours.lease_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_client_hung_up_takes_no_run() {
    let h = start().await;
    let addr = h.server.server().local_addr();
    let body = r#"{"pattern":"ghost:*","wait_ms":30000}"#;
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(
            format!(
                "POST /v1/ai/jobs/claim HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {KEY}\r\n\
                 content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(socket);
    // The abandoned claim stops within a slice of its wait (a second); this leaves room.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    h.post_ok(KEY, "ai/run", json!({"key": "ghost:1"})).await;
    let job = claim_with(&h.server.client(), "ghost:*", Duration::from_secs(5))
        .await
        .expect("the run went to the claimer that is still there");
    assert_eq!(job.attempt, 1, "nobody claimed it before: {job:?}");
}
