//! What a job claim puts on the wire (`POST /ai/jobs/claim`) and how its answers are read,
//! against a scripted server: the body, both answers, long polls longer than the client's
//! timeout, waits split into several polls, and the errors.

mod http_support;

use std::time::Duration;

use http_support::{Reply, Stub};
use onceonly_runtime::Error;
use onceonly_runtime::models::{ClaimRequest, ClaimedJob};
use serde_json::json;

const JOB: &str = r#"{"ok":true,"job":{"key":"report:1","lease_id":"lease_1","run_id":"run-1","metadata":{"run_id":"run-1","month":"2026-04"},"attempt":2,"ttl":45}}"#;
const NONE: &str = r#"{"ok":true,"job":null}"#;

#[tokio::test]
async fn a_claim_sends_the_documented_body_and_reads_both_answers() {
    let stub = Stub::start(vec![Reply::json(200, JOB), Reply::json(200, NONE)]).await;
    let client = stub.client();
    let job = client
        .backend()
        .claim_job(
            ClaimRequest::new("report:*")
                .lease_ttl(Duration::from_secs(45))
                .wait(Duration::from_millis(1500)),
        )
        .await
        .unwrap()
        .expect("a job");
    assert_eq!(
        (
            job.key.as_str(),
            job.lease_id.as_str(),
            job.run_id.as_str(),
            job.attempt,
            job.ttl
        ),
        ("report:1", "lease_1", "run-1", 2, 45)
    );
    assert_eq!(
        serde_json::Value::Object(job.metadata),
        json!({"run_id": "run-1", "month": "2026-04"})
    );
    let none = client
        .backend()
        .claim_job(ClaimRequest::new("report:1"))
        .await
        .unwrap();
    assert_eq!(none, None);

    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|s| s.method == "POST" && s.path == "/v1/ai/jobs/claim")
    );
    assert_eq!(
        seen[0].json(),
        json!({"pattern": "report:*", "lease_ttl": 45, "wait_ms": 1500})
    );
    // No wait: the field is left out; the TTL is the default 30 s.
    assert_eq!(
        seen[1].json(),
        json!({"pattern": "report:1", "lease_ttl": 30})
    );
    assert_eq!(
        seen[0].header("authorization"),
        Some(&*format!("Bearer {}", http_support::KEY))
    );
}

#[tokio::test]
async fn answers_are_read_tolerantly() {
    let stub = Stub::start(vec![
        Reply::json(200, r#"{"ok":true}"#),
        Reply::json(
            200,
            r#"{"ok":true,"job":{"key":"k","lease_id":"l","run_id":"k","metadata":null,"attempt":1,"ttl":30.2,"extra":1}}"#,
        ),
        Reply::json(200, r#"{"ok":true,"job":"k"}"#),
    ])
    .await;
    let client = stub.client();
    let claim = || client.backend().claim_job(ClaimRequest::new("k"));
    assert_eq!(
        claim().await.unwrap(),
        None,
        "no job member: nothing claimed"
    );
    let job: ClaimedJob = claim().await.unwrap().unwrap();
    assert!(job.metadata.is_empty());
    assert_eq!(job.ttl, 31, "whole seconds, rounded up");
    let e = claim().await.unwrap_err();
    assert!(matches!(e, Error::Decode(_)), "{e:?}");
}

#[tokio::test]
async fn a_long_poll_may_outlast_the_client_timeout() {
    let stub = Stub::start(vec![
        Reply::json(200, JOB).delay(Duration::from_millis(700)),
    ])
    .await;
    let client = stub
        .builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let job = client
        .backend()
        .claim_job(ClaimRequest::new("report:*").wait(Duration::from_secs(2)))
        .await
        .unwrap();
    assert!(job.is_some());
    // Without a wait, the client's own timeout applies.
    let e = client
        .backend()
        .claim_job(ClaimRequest::new("report:*"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
}

#[tokio::test]
async fn long_waits_are_several_polls_that_never_spin() {
    // A wait longer than one poll asks for at most 20 s at a time.
    let stub = Stub::start(vec![Reply::json(200, JOB)]).await;
    stub.client()
        .backend()
        .claim_job(ClaimRequest::new("*").wait(Duration::from_secs(45)))
        .await
        .unwrap();
    assert_eq!(stub.only().json()["wait_ms"], 20_000);

    // A server that answers at once is asked again after half a second, until the wait ends.
    let stub = Stub::start(vec![Reply::json(200, NONE)]).await;
    let job = stub
        .client()
        .backend()
        .claim_job(ClaimRequest::new("*").wait(Duration::from_millis(1200)))
        .await
        .unwrap();
    assert_eq!(job, None);
    let seen = stub.seen();
    assert!((3..=4).contains(&seen.len()), "{}", seen.len());
    assert_eq!(seen[0].json()["wait_ms"], 1200);
    // Half a second apart, except the last look, at the deadline.
    let (last, polls) = seen.split_last().unwrap();
    for pair in polls.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(450), "{gap:?}");
        assert!(pair[1].json()["wait_ms"].as_u64().unwrap() < 1200);
    }
    assert!(last.at - seen[0].at >= Duration::from_millis(1150));
}

#[tokio::test]
async fn refusals_are_errors_and_bad_requests_are_never_sent() {
    let stub = Stub::start(vec![
        Reply::json(
            422,
            r#"{"detail":"pattern \"a*b\": only a trailing `*` is a wildcard"}"#,
        ),
        Reply::json(404, r#"{"detail":"Not Found"}"#),
        Reply::json(405, r#"{"detail":{"error":"method_not_allowed"}}"#),
        Reply::json(403, r#"{"detail":"Invalid API key"}"#),
    ])
    .await;
    let client = stub.client();
    let claim = |req: ClaimRequest| {
        let client = client.clone();
        async move { client.backend().claim_job(req).await.unwrap_err() }
    };
    let e = claim(ClaimRequest::new("a*b")).await;
    assert!(
        matches!(e, Error::Validation(ref m) if m.contains("wildcard")),
        "{e:?}"
    );
    // A server without the route (the hosted API): unsupported, not an API error.
    for _ in 0..2 {
        let e = claim(ClaimRequest::new("*")).await;
        assert!(
            matches!(
                e,
                Error::Unsupported {
                    operation: "ai.jobs.claim",
                    backend: "http"
                }
            ),
            "{e:?}"
        );
    }
    let e = claim(ClaimRequest::new("*")).await;
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    assert_eq!(stub.seen().len(), 4);

    let e = claim(ClaimRequest::new("*").wait(Duration::from_secs(61))).await;
    assert!(
        matches!(e, Error::Validation(ref m) if m.contains("wait")),
        "{e:?}"
    );
    let e = claim(ClaimRequest::new("*").lease_ttl(Duration::from_millis(500))).await;
    assert!(
        matches!(e, Error::Validation(ref m) if m.contains("lease_ttl")),
        "{e:?}"
    );
    assert_eq!(stub.seen().len(), 4, "refused before sending");
}
