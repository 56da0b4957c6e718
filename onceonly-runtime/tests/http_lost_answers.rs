//! Answers lost on the way back: a real `onceonly-server` behind a loopback proxy that forwards
//! every request but swaps the first answer to an acquisition for a `502`, as a load balancer
//! that timed out would. The client's retry must get its own lease back, not be told that
//! someone (itself) holds the key; a retried key-mode run must queue one run, charged once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use onceonly_runtime::OnceOnly;
use onceonly_runtime::models::{ClaimRequest, RunStatus, UsageKind};
use onceonly_server::testing::{TEST_API_KEY as KEY, TestServer};
use tokio::net::TcpListener;

/// What the proxy forwards to, and how many acquisition answers it has swallowed.
#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    leases_seen: Arc<AtomicUsize>,
    /// Lease/run paths whose first answer is dropped.
    drop_first_of: &'static [&'static str],
}

async fn forward(State(proxy): State<Proxy>, uri: Uri, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = proxy
        .http
        .request(
            parts.method.clone(),
            format!("{}{path_and_query}", proxy.upstream),
        )
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            out = out.header(name, value);
        }
    }
    let answer = out.send().await.unwrap();
    let status = answer.status();
    let headers: HeaderMap = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap();

    let dropped = parts.method == Method::POST
        && proxy.drop_first_of.contains(&uri.path())
        && proxy.leases_seen.fetch_add(1, Ordering::SeqCst) == 0;
    if dropped {
        // The server acted on the request; its answer never reaches the client.
        return (StatusCode::BAD_GATEWAY, "upstream timed out").into_response();
    }
    let mut res = Response::new(Body::from(bytes));
    *res.status_mut() = status;
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" {
            res.headers_mut().insert(name, value.clone());
        }
    }
    res
}

/// A server, a proxy in front of it dropping the first answer to `paths`, and a client of
/// the proxy that retries once.
async fn setup(paths: &'static [&'static str]) -> (TestServer, OnceOnly, Arc<AtomicUsize>) {
    let server = TestServer::start().await;
    let upstream = server.base_url().trim_end_matches("/v1").to_owned();
    let leases_seen = Arc::new(AtomicUsize::new(0));
    let proxy = Proxy {
        upstream,
        http: reqwest::Client::new(),
        leases_seen: Arc::clone(&leases_seen),
        drop_first_of: paths,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = OnceOnly::builder()
        .api_key(KEY)
        .base_url(format!("http://{addr}/v1"))
        .max_retries(1)
        .retry_backoff(Duration::from_millis(10))
        .build()
        .unwrap();
    (server, client, leases_seen)
}

#[tokio::test]
async fn a_retried_lease_whose_first_answer_was_lost_gets_the_same_lease() {
    let (_server, client, seen) = setup(&["/v1/ai/lease"]).await;
    let lease = client.ai().lease("job-1").await.unwrap();
    assert_eq!(
        seen.load(Ordering::SeqCst),
        2,
        "the first answer was dropped"
    );
    assert_eq!(lease.status, RunStatus::Acquired, "{lease:?}");
    let lease_id = lease
        .lease_id
        .clone()
        .expect("the retry carries the lease id");

    // It is the one live lease: completing with it works, and a new caller sees the result.
    client
        .ai()
        .complete("job-1", &lease_id)
        .result(serde_json::json!({"ok": true}).as_object().unwrap().clone())
        .await
        .unwrap();
    let status = client.ai().status("job-1").await.unwrap();
    assert_eq!(status.status, RunStatus::Completed);

    // Another call is another acquisition: it is not handed the lease.
    let other = client.ai().lease("job-1").await.unwrap();
    assert_eq!(other.status, RunStatus::Completed);
    assert_eq!(other.lease_id, None);

    let usage = client.usage().kind(UsageKind::Ai).await.unwrap();
    assert_eq!(usage.usage, 1, "the repeated answer is not charged again");
}

#[tokio::test]
async fn run_fn_runs_at_once_when_its_lease_answer_was_lost() {
    let (_server, client, seen) = setup(&["/v1/ai/lease"]).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let value: u32 = tokio::time::timeout(
        Duration::from_secs(10),
        client.ai().run_fn("charge-1", {
            let runs = Arc::clone(&runs);
            move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<_, onceonly_runtime::Error>(42)
            }
        }),
    )
    .await
    .expect("run_fn did not wait on its own lease")
    .unwrap();
    assert_eq!(value, 42);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_key_mode_run_retried_after_a_lost_answer_is_queued_and_charged_once() {
    let (_server, client, seen) = setup(&["/v1/ai/run"]).await;
    let run = client.ai().run("report-7").await.unwrap();
    assert_eq!(
        seen.load(Ordering::SeqCst),
        2,
        "the first answer was dropped"
    );
    // The retry attaches to the run the lost answer queued: nobody holds a queued run, so
    // there is no lease to hand back.
    assert_eq!(
        (run.status, run.queued, run.lease_id.as_deref()),
        (RunStatus::InProgress, true, None),
        "{run:?}"
    );
    let usage = client.usage().kind(UsageKind::Ai).await.unwrap();
    assert_eq!(usage.usage, 1, "the retry is not charged again");
    let job = client
        .backend()
        .claim_job(ClaimRequest::new("report-7"))
        .await
        .unwrap()
        .expect("one queued run");
    assert_eq!(job.attempt, 1);
}

#[tokio::test]
async fn a_claim_retried_after_a_lost_answer_gets_the_run_it_took() {
    let (_server, client, seen) = setup(&["/v1/ai/jobs/claim"]).await;
    client.ai().run("report:1").await.unwrap();
    client.ai().run("report:2").await.unwrap();
    let job = client
        .backend()
        .claim_job(ClaimRequest::new("report:*").lease_ttl(Duration::from_secs(60)))
        .await
        .unwrap()
        .expect("a queued run");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        2,
        "the first answer was dropped"
    );
    assert_eq!(
        job.attempt, 1,
        "the run the lost answer took, not a new attempt"
    );
    // The other run is still queued: the retry did not take a second one.
    let other = if job.key == "report:1" {
        "report:2"
    } else {
        "report:1"
    };
    let status = client.ai().status(other).await.unwrap();
    assert_eq!(
        (status.status, status.queued),
        (RunStatus::InProgress, true)
    );
    // The lease the retry got is the live one.
    client.ai().complete(&job.key, &job.lease_id).await.unwrap();
    let done = client.ai().status(&job.key).await.unwrap();
    assert_eq!(done.status, RunStatus::Completed);
}
