//! Transport behaviour of the HTTP backend against scripted servers and closed ports:
//! retries, `Retry-After`, timeouts, fail-open, and the API key never being shown.

mod http_support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_support::{KEY, Reply, Stub, closed_port};
use onceonly_runtime::models::{FailOpenReason, LeaseRequest};
use onceonly_runtime::{Error, OnceOnly};
use serde_json::json;

const LOCKED: &str = r#"{"success":true,"status":"locked","key":"k","ttl":60}"#;
const ACQUIRED: &str = r#"{"ok":true,"status":"acquired","key":"k","lease_id":"l1","version":1}"#;
const HTML_502: &[u8] = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

#[tokio::test]
async fn no_retries_by_default() {
    let stub = Stub::start(vec![Reply::json(503, "{}")]).await;
    let e = stub.client().ai().lease("k").await.unwrap_err();
    assert!(matches!(e, Error::Api { status: 503, .. }), "{e:?}");
    assert_eq!(stub.seen().len(), 1);
}

#[tokio::test]
async fn retryable_answers_are_retried_with_the_same_body() {
    let stub = Stub::start(vec![
        Reply::json(503, "{}"),
        Reply::raw(502, "text/html", HTML_502),
        Reply::json(429, "{}"),
        Reply::json(500, "{}"),
        Reply::json(504, "{}"),
        Reply::json(200, ACQUIRED),
    ])
    .await;
    let lease = stub.fast_retries(5).ai().lease("k").await.unwrap();
    assert_eq!(lease.lease_id.as_deref(), Some("l1"));
    let seen = stub.seen();
    assert_eq!(seen.len(), 6);
    assert!(seen.iter().all(|s| s.body == seen[0].body));
}

/// A check-lock the server may have processed (a 5xx, a timeout) is not sent again: the repeat
/// would read `duplicate`, and the caller would skip an event nobody processed. A `429` (not
/// processed) is retried, and so is a connection that was never made.
#[tokio::test]
async fn a_check_lock_is_retried_only_when_it_surely_was_not_processed() {
    let retrying = |stub: &Stub, timeout: Duration| {
        stub.builder()
            .max_retries(3)
            .retry_backoff(Duration::from_millis(1))
            .timeout(timeout)
            .fail_open(false)
            .build()
            .unwrap()
    };
    for status in [500, 502, 503, 504] {
        let stub = Stub::start(vec![Reply::json(status, "{}"), Reply::json(200, LOCKED)]).await;
        let e = retrying(&stub, Duration::from_secs(10))
            .check_lock("k")
            .await
            .unwrap_err();
        assert!(e.is_outage(), "{status}: {e:?}");
        assert_eq!(stub.seen().len(), 1, "{status}: sent once");
    }
    let stub = Stub::start(vec![
        Reply::json(200, LOCKED).delay(Duration::from_secs(5)),
        Reply::json(200, LOCKED),
    ])
    .await;
    let e = retrying(&stub, Duration::from_millis(200))
        .check_lock("k")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    assert_eq!(
        stub.seen().len(),
        1,
        "a timed-out check-lock is not sent again"
    );

    let stub = Stub::start(vec![Reply::json(429, "{}"), Reply::json(200, LOCKED)]).await;
    let res = retrying(&stub, Duration::from_secs(10))
        .check_lock("k")
        .await
        .unwrap();
    assert!(res.should_proceed() && res.fail_open.is_none(), "{res:?}");
    assert_eq!(stub.seen().len(), 2, "a 429 was not processed: retried");

    // An event posted again after a 503 could be filed twice: sent once.
    let stub = Stub::start(vec![
        Reply::json(503, "{}"),
        Reply::json(200, r#"{"ok":true,"id":1}"#),
    ])
    .await;
    let event = onceonly_runtime::models::RunEvent {
        run_id: "run_1".into(),
        kind: "note".into(),
        ..Default::default()
    };
    let e = retrying(&stub, Duration::from_secs(10))
        .post_event(event)
        .await
        .unwrap_err();
    assert!(e.is_outage(), "{e:?}");
    assert_eq!(
        stub.seen().len(),
        1,
        "an event post is not repeated after a 503"
    );
}

#[tokio::test]
async fn an_acquisition_keeps_its_name_across_retries_and_no_other_call_shares_it() {
    let stub = Stub::start(vec![
        Reply::json(502, "{}"),
        Reply::json(200, ACQUIRED),
        Reply::json(200, ACQUIRED),
        Reply::json(200, ACQUIRED),
        Reply::json(200, LOCKED),
    ])
    .await;
    let client = stub.fast_retries(1);
    client.ai().lease("k").await.unwrap();
    client.ai().lease("k").await.unwrap();
    client.ai().run("k").await.unwrap();
    client.check_lock("k").await.unwrap();
    let seen = stub.seen();
    let keys: Vec<Option<&str>> = seen
        .iter()
        .map(|s| s.header("x-onceonly-acquisition"))
        .collect();
    let first = keys[0].expect("a lease names its acquisition");
    assert!(first.starts_with("acq_") && first.len() > 20, "{first}");
    assert_eq!(keys[1], keys[0], "the retry is the same acquisition");
    assert!(
        keys[2].is_some() && keys[2] != keys[0],
        "a new call is a new acquisition"
    );
    assert!(keys[3].is_some() && keys[3] != keys[2], "key-mode runs too");
    assert_eq!(keys[4], None, "only acquisitions carry one");
}

/// A value HTTP cannot carry in a header is the caller's mistake: a validation error before
/// anything is sent, never a transport error that would be retried or fail open.
#[tokio::test]
async fn header_values_http_cannot_carry_are_validation_errors_not_outages() {
    let stub = Stub::start(vec![Reply::json(200, LOCKED)]).await;
    let client = stub.fast_retries(3);
    assert!(client.fail_open());
    let e = client
        .check_lock("k")
        .request_id("line\nbreak")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Validation(m) if m.contains("x-request-id")),
        "{e:?}"
    );
    let e = client
        .check_lock("k")
        .request_id("caf\u{e9}")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Validation(_)), "{e:?}");
    for bad in ["with space", "caf\u{e9}", ""] {
        let req = LeaseRequest::new("k").acquisition_id(bad);
        let e = client.backend().lease(req).await.unwrap_err();
        assert!(
            matches!(&e, Error::Validation(m) if m.contains("acquisition_id")),
            "{e:?}"
        );
    }
    assert!(stub.seen().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn the_last_answer_is_mapped_when_retries_run_out() {
    let stub = Stub::start(vec![
        Reply::json(503, "{}"),
        Reply::json(429, r#"{"detail":{"error":"rate_limited"}}"#).header("Retry-After", "0"),
    ])
    .await;
    let e = stub.fast_retries(1).ai().status("k").await.unwrap_err();
    assert!(
        matches!(e, Error::RateLimited { retry_after: Some(d) } if d.is_zero()),
        "{e:?}"
    );
    assert_eq!(stub.seen().len(), 2);
}

#[tokio::test]
async fn other_client_errors_are_not_retried() {
    for status in [400, 401, 402, 403, 404, 409, 422, 501] {
        let stub = Stub::start(vec![Reply::json(status, "{}")]).await;
        assert!(stub.fast_retries(3).ai().status("k").await.is_err());
        assert_eq!(stub.seen().len(), 1, "status {status} was retried");
    }
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let stub = Stub::start(vec![
        Reply::json(429, "{}").header("Retry-After", "1"),
        Reply::json(200, LOCKED),
    ])
    .await;
    stub.fast_retries(1).check_lock("k").await.unwrap();
    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    // The computed backoff is 5 ms at most: only the header explains a second's pause.
    assert!(seen[1].at - seen[0].at >= Duration::from_secs(1));
}

#[tokio::test]
async fn retry_after_is_capped() {
    let stub = Stub::start(vec![
        Reply::json(503, "{}").header("Retry-After", "3600"),
        Reply::json(200, ACQUIRED),
    ])
    .await;
    let client = stub
        .builder()
        .max_retries(1)
        .max_retry_after(Duration::from_millis(50))
        .build()
        .unwrap();
    // Without the cap this would sleep an hour and the test would never end.
    let lease = tokio::time::timeout(Duration::from_secs(60), client.ai().lease("k"))
        .await
        .expect("Retry-After was not capped")
        .unwrap();
    assert_eq!(lease.lease_id.as_deref(), Some("l1"));
    let seen = stub.seen();
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(50));
}

#[tokio::test]
async fn transport_errors_are_retried_then_returned() {
    let url = closed_port().await;
    let client = OnceOnly::builder()
        .api_key(KEY)
        .base_url(url)
        .max_retries(2)
        .retry_backoff(Duration::from_millis(1))
        .build()
        .unwrap();
    let e = client.ai().lease("k").await.unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e:?}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn connection_refused_fails_open() {
    let url = closed_port().await;
    let client = OnceOnly::builder()
        .api_key(KEY)
        .base_url(url)
        .build()
        .unwrap();
    let res = client
        .check_lock("stripe:evt_1")
        .ttl(Duration::from_secs(90))
        .await
        .unwrap();
    assert!(res.should_proceed());
    assert_eq!(res.fail_open, Some(FailOpenReason::RequestError));
    assert_eq!(res.key, "stripe:evt_1");
    assert_eq!(res.ttl, 90);
    assert_eq!(res.request_id.as_deref(), Some("fail-open"));
    assert_eq!(res.status_code, 0);
    assert_eq!(res.first_seen_at, None);
}

#[tokio::test]
async fn connection_refused_without_fail_open_is_a_transport_error() {
    let url = closed_port().await;
    let client = OnceOnly::builder()
        .api_key(KEY)
        .base_url(url)
        .fail_open(false)
        .build()
        .unwrap();
    let e = client.check_lock("k").await.unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e:?}");
}

#[tokio::test]
async fn only_check_lock_fails_open() {
    let url = closed_port().await;
    let client = OnceOnly::builder()
        .api_key(KEY)
        .base_url(url)
        .build()
        .unwrap();
    assert!(matches!(
        client.ai().lease("k").await,
        Err(Error::Transport(_))
    ));
    assert!(matches!(client.me().await, Err(Error::Transport(_))));
}

#[tokio::test]
async fn a_timeout_fails_open_and_is_a_timeout_error_otherwise() {
    let stub = Stub::start(vec![
        Reply::json(200, LOCKED).delay(Duration::from_secs(30)),
    ])
    .await;
    let timeout = Duration::from_millis(200);
    let open = stub.builder().timeout(timeout).build().unwrap();
    let res = open.check_lock("k").await.unwrap();
    assert_eq!(res.fail_open, Some(FailOpenReason::Timeout));
    assert!(res.should_proceed());

    let closed = stub
        .builder()
        .timeout(timeout)
        .fail_open(false)
        .build()
        .unwrap();
    match closed.check_lock("k").await {
        Err(Error::Timeout(d)) => assert_eq!(d, timeout),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        closed.ai().status("k").await,
        Err(Error::Timeout(_))
    ));
}

#[tokio::test]
async fn html_5xx_fails_open() {
    let stub = Stub::start(vec![Reply::raw(502, "text/html", HTML_502)]).await;
    let res = stub.client().check_lock("k").await.unwrap();
    assert_eq!(res.fail_open, Some(FailOpenReason::Api5xx));
    assert!(res.should_proceed());
}

#[tokio::test]
async fn html_5xx_without_fail_open_is_an_api_error_with_the_page_start() {
    let stub = Stub::start(vec![Reply::raw(502, "text/html", HTML_502)]).await;
    let client = stub.builder().fail_open(false).build().unwrap();
    for e in [
        client.check_lock("k").await.unwrap_err(),
        client.ai().lease("k").await.unwrap_err(),
    ] {
        let Error::Api { status, detail } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(*status, 502);
        assert!(
            detail.as_str().unwrap().contains("502 Bad Gateway"),
            "{detail}"
        );
        assert!(e.is_retryable());
    }
}

#[tokio::test]
async fn json_5xx_keeps_its_detail() {
    let stub = Stub::start(vec![Reply::json(
        500,
        r#"{"detail":{"error":"internal","message":"boom"}}"#,
    )])
    .await;
    let client = stub.builder().fail_open(false).build().unwrap();
    match client.check_lock("k").await {
        Err(Error::Api {
            status: 500,
            detail,
        }) => {
            assert_eq!(detail, json!({"error": "internal", "message": "boom"}))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn one_connection_is_reused_across_calls_and_clones() {
    let stub = Stub::start(vec![Reply::json(200, LOCKED)]).await;
    let client = stub.client();
    for i in 0..5 {
        client.clone().check_lock(format!("k{i}")).await.unwrap();
    }
    let peers: Vec<_> = stub.seen().iter().map(|s| s.peer).collect();
    assert_eq!(peers.len(), 5);
    assert!(peers.iter().all(|p| *p == peers[0]), "{peers:?}");
}

/// Collects everything `tracing` writes, at every level, from every crate.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_api_key_never_shows_in_debug_errors_or_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // A proxy that echoes the Authorization header back in its error pages.
    let echo = format!("bad token: Bearer {KEY}");
    let stub = Stub::start(vec![
        Reply::json(400, &json!({"detail": {"error": echo}}).to_string()),
        Reply::json(401, &json!({"detail": echo}).to_string()),
        Reply::raw(502, "text/plain", echo.as_bytes()),
        Reply::json(422, &json!({"detail": echo}).to_string()),
        Reply::raw(422, "text/plain", echo.as_bytes()),
    ])
    .await;
    let client = stub.builder().max_retries(0).build().unwrap();
    let mut shown = format!("{client:?} {:?}", client.backend());
    for _ in 0..5 {
        let e = client.ai().lease("k").await.unwrap_err();
        shown.push_str(&format!("{e} {e:?}"));
    }
    // Fail-open logs the error it swallowed.
    let echoing_5xx = Stub::start(vec![Reply::raw(500, "text/plain", echo.as_bytes())]).await;
    let res = echoing_5xx.client().check_lock("k").await.unwrap();
    assert!(res.fail_open.is_some());
    let refused = OnceOnly::builder()
        .api_key(KEY)
        .base_url(closed_port().await)
        .max_retries(1)
        .retry_backoff(Duration::from_millis(1))
        .build()
        .unwrap();
    refused.check_lock("k").await.unwrap();
    let e = refused.ai().lease("k").await.unwrap_err();
    shown.push_str(&format!("{e} {e:?}"));

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("failed open"), "nothing was logged: {logs}");
    assert!(!shown.contains(KEY), "{shown}");
    assert!(!logs.contains(KEY), "{logs}");
    assert!(shown.contains("[redacted]"), "{shown}");
}

#[tokio::test]
async fn an_oversized_answer_is_refused_not_buffered() {
    let huge = vec![b' '; (32 << 20) + 1];
    let stub = Stub::start(vec![Reply::raw(200, "application/json", &huge)]).await;
    let e = stub.client().me().await.unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e:?}");
    assert!(e.to_string().contains("larger than"), "{e}");
}

/// A client outlives the runtime that made its first request (a client in a static, used
/// from several `#[tokio::test]`s): the next runtime's requests answer, from the first one.
#[test]
fn a_client_outliving_its_first_runtime_still_answers() {
    let server = tokio::runtime::Runtime::new().unwrap();
    let ok = r#"{"success":true,"status":"locked","key":"k","ttl":60}"#;
    let stub = server.block_on(Stub::start(vec![Reply::json(200, ok); 4]));
    let client = stub.builder().max_retries(0).build().unwrap();
    for _ in 0..4 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let lock = runtime.block_on(std::future::IntoFuture::into_future(client.check_lock("k")));
        assert!(lock.is_ok(), "{lock:?}");
    }
}
