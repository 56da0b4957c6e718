//! Mode::CheckLock over real TCP: axum (or hyper) serving, reqwest delivering, the embedded
//! engine deduplicating.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use common::{Runs, client, hangs_first, header, serve, until_processed, within};
use onceonly_runtime::store::MemoryStore;
use onceonly_runtime::time::ManualClock;
use onceonly_runtime::{Engine, EngineConfig, OnceOnly};
use onceonly_tower::{KeyRequest, KeySource, OnceOnlyLayer};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

fn stripe_layer(client: OnceOnly) -> OnceOnlyLayer {
    OnceOnlyLayer::new(client).json_pointer("/id")
}

fn event(id: &str) -> String {
    json!({"id": id, "object": "event", "type": "charge.succeeded"}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_deliveries_run_the_handler_once() {
    let runs = Runs::default();
    // The handler holds the first delivery until the test has seen 99 duplicates, so every
    // duplicate was answered while the first delivery was still being processed.
    let gate = Arc::new(Semaphore::new(0));
    let app = Router::new()
        .route(
            "/webhooks/stripe",
            post({
                let (runs, gate) = (runs.clone(), gate.clone());
                move || async move {
                    runs.hit();
                    gate.acquire().await.unwrap().forget();
                    "processed"
                }
            }),
        )
        .layer(stripe_layer(OnceOnly::memory()));
    let base = serve(app).await;
    let http = client();

    let (tx, mut rx) = mpsc::unbounded_channel();
    for _ in 0..100 {
        let (http, url, tx) = (http.clone(), format!("{base}/webhooks/stripe"), tx.clone());
        tokio::spawn(async move {
            let res = http.post(url).body(event("evt_100")).send().await.unwrap();
            let status = res.status();
            let marker = header(&res, "x-onceonly-status");
            let body = res.text().await.unwrap();
            tx.send((status, marker, body)).unwrap();
        });
    }
    drop(tx);
    let mut duplicates = 0;
    while duplicates < 99 {
        let (status, marker, body) = within("99 duplicates answered", rx.recv()).await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(marker.as_deref(), Some("duplicate"), "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["status"], "duplicate");
        assert_eq!(body["key"], "evt_100");
        duplicates += 1;
    }
    gate.add_permits(1);
    let (status, marker, body) = within("the first delivery", rx.recv()).await.unwrap();
    assert_eq!(
        (status, marker, body.as_str()),
        (StatusCode::OK, None, "processed")
    );
    assert!(rx.recv().await.is_none());
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn a_delivery_answered_500_is_processed_again_on_retry() {
    let runs = Runs::default();
    let app = Router::new()
        .route(
            "/webhooks/stripe",
            post({
                let runs = runs.clone();
                move || async move {
                    if runs.hit() == 0 {
                        (StatusCode::INTERNAL_SERVER_ERROR, "database down")
                    } else {
                        (StatusCode::OK, "processed")
                    }
                }
            }),
        )
        .layer(stripe_layer(OnceOnly::memory()));
    let base = serve(app).await;
    let http = client();
    let deliver = || {
        http.post(format!("{base}/webhooks/stripe"))
            .body(event("evt_retry"))
            .send()
    };

    let failed = deliver().await.unwrap();
    assert_eq!(failed.status(), 500);
    assert_eq!(failed.text().await.unwrap(), "database down");
    let retried = deliver().await.unwrap();
    assert_eq!(retried.status(), 200);
    assert_eq!(header(&retried, "x-onceonly-status"), None);
    let again = deliver().await.unwrap();
    assert_eq!(
        header(&again, "x-onceonly-status").as_deref(),
        Some("duplicate")
    );
    assert_eq!(runs.get(), 2);
}

/// A handler slower than the lock's TTL: a later delivery locks the key again and succeeds;
/// when the slow one then answers 500, its release must not delete the later lock.
#[tokio::test]
async fn a_late_failure_does_not_release_a_later_deliverys_lock() {
    let clock = ManualClock::default();
    let engine = Engine::with_config(
        MemoryStore::new(),
        EngineConfig::default(),
        Arc::new(clock.clone()),
    );
    let runs = Runs::default();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let finish = Arc::new(Semaphore::new(0));
    let app = Router::new()
        .route(
            "/hooks",
            post({
                let (runs, finish) = (runs.clone(), Arc::clone(&finish));
                move || async move {
                    if runs.hit() > 0 {
                        return (StatusCode::OK, "processed");
                    }
                    started_tx.send(()).unwrap();
                    let _ = finish.acquire().await.unwrap();
                    (StatusCode::INTERNAL_SERVER_ERROR, "gave up")
                }
            }),
        )
        .layer(OnceOnlyLayer::new(OnceOnly::from_backend(engine)).ttl(Duration::from_secs(60)));
    let base = serve(app).await;
    let http = client();
    let deliver = || {
        http.post(format!("{base}/hooks"))
            .header("webhook-id", "msg_slow")
            .send()
    };

    let slow = tokio::spawn(deliver());
    within("the slow delivery to start", started.recv())
        .await
        .unwrap();
    clock.advance(Duration::from_secs(61)); // its lock expires while the handler still runs
    let later = deliver().await.unwrap();
    assert_eq!(later.status(), 200);
    assert_eq!(
        header(&later, "x-onceonly-status"),
        None,
        "the later one ran"
    );

    finish.add_permits(1);
    let slow = within("the slow delivery to answer", slow)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(slow.status(), 500);
    let again = deliver().await.unwrap();
    assert_eq!(
        header(&again, "x-onceonly-status").as_deref(),
        Some("duplicate"),
        "the later delivery's lock survived the slow one's release"
    );
    assert_eq!(runs.get(), 2);
}

#[tokio::test]
async fn a_dropped_delivery_releases_the_key() {
    let runs = Runs::default();
    let (route, mut started) = hangs_first(&runs, "processed");
    let app = Router::new()
        .route("/hooks", route)
        .layer(OnceOnlyLayer::new(OnceOnly::memory()));
    let base = serve(app).await;
    let http = client();
    let url = format!("{base}/hooks");

    let hung = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move { http.post(url).header("webhook-id", "msg_drop").send().await }
    });
    within("the first delivery to start", started.recv())
        .await
        .unwrap();
    hung.abort();

    // The server notices the closed connection and drops the request future; the key is then
    // released. Until it has, the retry may still be answered as a duplicate.
    let answer = until_processed("the dropped delivery never released its key", || {
        http.post(&url).header("webhook-id", "msg_drop")
    })
    .await;
    assert_eq!(answer.text().await.unwrap(), "processed");
    assert_eq!(runs.get(), 2);
}

/// A sender that hangs up halfway through the body: the key came from a header, so it was
/// claimed before the handler read the body, and the handler's `Json` extractor answered 400
/// (a 4xx keeps a key). The event was never processed, so the key must go back for the
/// sender's redelivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_off_midway_releases_the_key() {
    use tokio::io::AsyncWriteExt;

    let runs = Runs::default();
    let counted = runs.clone();
    let app = Router::new()
        .route(
            "/hooks",
            post(move |axum::Json(event): axum::Json<Value>| async move {
                counted.hit();
                format!("processed {}", event["id"])
            }),
        )
        .layer(OnceOnlyLayer::new(OnceOnly::memory()));
    let base = serve(app).await;
    let body = event("evt_cut");

    let mut cut = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /hooks HTTP/1.1\r\nHost: x\r\nwebhook-id: msg_cut\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    cut.write_all(head.as_bytes()).await.unwrap();
    cut.write_all(&body.as_bytes()[..body.len() / 2])
        .await
        .unwrap();
    cut.flush().await.unwrap();
    drop(cut);

    // The redelivery is processed once the cut request has given its key back (it may still
    // be answered as a duplicate until then).
    let http = client();
    let answer = until_processed("the cut-off delivery kept its key", || {
        http.post(format!("{base}/hooks"))
            .header("webhook-id", "msg_cut")
            .header("content-type", "application/json")
            .body(body.clone())
    })
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.text().await.unwrap(), "processed \"evt_cut\"");
    assert_eq!(
        runs.get(),
        1,
        "the cut-off delivery never reached the handler's body"
    );
}

#[tokio::test]
async fn the_same_id_on_two_routes_does_not_collide() {
    let (a, b) = (Runs::default(), Runs::default());
    let app = Router::new()
        .route(
            "/webhooks/a",
            post({
                let a = a.clone();
                move || async move {
                    a.hit();
                    "a"
                }
            }),
        )
        .route(
            "/webhooks/{provider}",
            post({
                let b = b.clone();
                move || async move {
                    b.hit();
                    "b"
                }
            }),
        )
        .layer(OnceOnlyLayer::new(OnceOnly::memory()));
    let base = serve(app).await;
    let http = client();
    for path in ["a", "b", "a", "c"] {
        let res = http
            .post(format!("{base}/webhooks/{path}"))
            .header("idempotency-key", "same-id")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    // "/webhooks/b" and "/webhooks/c" share the route template "/webhooks/{provider}".
    assert_eq!((a.get(), b.get()), (1, 1));
}

#[tokio::test]
async fn requests_without_a_key_pass_through() {
    let runs = Runs::default();
    let app = Router::new()
        .route(
            "/hooks",
            common::counting(&runs, "ran").put({
                let runs = runs.clone();
                move || async move {
                    runs.hit();
                    "ran"
                }
            }),
        )
        .layer(OnceOnlyLayer::new(OnceOnly::memory()));
    let base = serve(app).await;
    let http = client();
    for _ in 0..2 {
        let res = http
            .post(format!("{base}/hooks"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.text().await.unwrap(), "ran");
        // PUT is not a handled method by default, so even a key passes through.
        let res = http
            .put(format!("{base}/hooks"))
            .header("idempotency-key", "k")
            .send()
            .await
            .unwrap();
        assert_eq!(res.text().await.unwrap(), "ran");
    }
    assert_eq!(runs.get(), 4);
}

#[tokio::test]
async fn require_key_answers_400_with_a_json_detail() {
    let runs = Runs::default();
    let app = Router::new()
        .route("/hooks", common::counting(&runs, "ran"))
        .layer(stripe_layer(OnceOnly::memory()).require_key(true));
    let base = serve(app).await;
    let http = client();
    for body in ["{}", "not json", r#"{"id": {"nested": true}}"#] {
        let res = http
            .post(format!("{base}/hooks"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(
            header(&res, "content-type").as_deref(),
            Some("application/json")
        );
        let detail: Value = res.json().await.unwrap();
        let detail = detail["detail"].as_str().unwrap();
        assert!(
            detail.contains("idempotency key") && detail.contains("JSON body at /id"),
            "{detail}"
        );
    }
    let res = http
        .post(format!("{base}/hooks"))
        .body(event("evt_ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413() {
    let runs = Runs::default();
    let app = Router::new()
        .route("/hooks", common::counting(&runs, "ran"))
        .layer(stripe_layer(OnceOnly::memory()).max_body_bytes(64));
    let base = serve(app).await;
    let http = client();
    let big = json!({"id": "evt_big", "pad": "x".repeat(100)}).to_string();
    let res = http
        .post(format!("{base}/hooks"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let detail: Value = res.json().await.unwrap();
    assert!(detail["detail"].as_str().unwrap().contains("64 bytes"));
    // Without a Content-Length the limit is enforced while reading.
    let chunks: Vec<Result<String, std::io::Error>> = vec![
        Ok(r#"{"id":"evt_stream","pad":""#.into()),
        Ok("y".repeat(100)),
        Ok(r#""}"#.into()),
    ];
    let streamed = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let res = http
        .post(format!("{base}/hooks"))
        .body(streamed)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(runs.get(), 0);
}

#[tokio::test]
async fn every_default_key_source_deduplicates() {
    let runs = Runs::default();
    let app = Router::new()
        .route("/hooks", common::counting(&runs, "ran"))
        .layer(OnceOnlyLayer::new(OnceOnly::memory()));
    let base = serve(app).await;
    let http = client();
    let deliveries: [&[(&str, &str)]; 4] = [
        &[("idempotency-key", "k1")],
        &[("webhook-id", "msg_1")],
        &[("svix-id", "msg_1")],
        &[
            ("x-github-hook-id", "42"),
            ("x-github-delivery", "72d3162e"),
        ],
    ];
    for headers in deliveries {
        for attempt in 0..2 {
            let mut req = http.post(format!("{base}/hooks"));
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let res = req.send().await.unwrap();
            let expected = (attempt == 1).then(|| "duplicate".to_owned());
            assert_eq!(header(&res, "x-onceonly-status"), expected, "{headers:?}");
        }
    }
    assert_eq!(runs.get(), 4);
}

#[tokio::test]
async fn a_custom_extractor_and_route_layer() {
    let runs = Runs::default();
    let extractor = |req: &KeyRequest<'_>| {
        let body: Value = serde_json::from_slice(req.body?).ok()?;
        Some(format!(
            "{}:{}",
            body["shop"].as_str()?,
            body["order"].as_u64()?
        ))
    };
    let app = Router::new()
        .route("/orders", common::counting(&runs, "ran"))
        .route_layer(
            OnceOnlyLayer::new(OnceOnly::memory()).key_sources([KeySource::custom(extractor)]),
        );
    let base = serve(app).await;
    let http = client();
    for body in [
        r#"{"shop":"s1","order":7}"#,
        r#"{"order":7,"shop":"s1","note":"resent"}"#,
        r#"{"shop":"s2","order":7}"#,
    ] {
        let res = http
            .post(format!("{base}/orders"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    assert_eq!(runs.get(), 2);
    // route_layer does not touch unmatched paths.
    let res = http.post(format!("{base}/nowhere")).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

/// A plain tower service (no axum routing) served by hyper: an `Err` from the service
/// releases the key, and the body read for the key reaches the service intact.
#[tokio::test]
async fn plain_tower_service_errors_release_the_key() {
    use http_body_util::BodyExt;
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use onceonly_tower::RequestBody;
    use tower::ServiceBuilder;

    #[derive(Debug)]
    struct Boom;
    impl std::fmt::Display for Boom {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("boom")
        }
    }
    impl std::error::Error for Boom {}

    let runs = Runs::default();
    let service = ServiceBuilder::new()
        .layer(stripe_layer(OnceOnly::memory()))
        .service_fn({
            let runs = runs.clone();
            move |req: http::Request<RequestBody<hyper::body::Incoming>>| {
                let runs = runs.clone();
                async move {
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    if runs.hit() == 0 {
                        return Err(Boom);
                    }
                    Ok::<_, Boom>(http::Response::new(http_body_util::Full::new(body)))
                }
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let svc = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let http = client();
    let body = event("evt_plain");
    // An Err from the service makes hyper drop the connection: the client sees an error.
    assert!(http.post(&base).body(body.clone()).send().await.is_err());
    let res = http.post(&base).body(body.clone()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), body);
    let res = http.post(&base).body(body).send().await.unwrap();
    assert_eq!(
        header(&res, "x-onceonly-status").as_deref(),
        Some("duplicate")
    );
    assert_eq!(runs.get(), 2);
}

/// The first delivery's response is the handler's own: same status, headers and framing
/// (a known length stays a `Content-Length`, not chunked) as without the layer.
#[tokio::test]
async fn the_first_response_is_the_handlers_own() {
    let route = || {
        Router::new().route(
            "/hooks",
            post(|| async { (StatusCode::ACCEPTED, [("x-handler", "yes")], "queued") }),
        )
    };
    let plain = serve(route()).await;
    let layered = serve(route().layer(OnceOnlyLayer::new(OnceOnly::memory()))).await;
    let http = client();
    let mut seen = Vec::new();
    for base in [plain, layered] {
        let res = http
            .post(format!("{base}/hooks"))
            .header("idempotency-key", "first")
            .send()
            .await
            .unwrap();
        let mut headers: Vec<(String, String)> = res
            .headers()
            .iter()
            .filter(|(k, _)| *k != "date")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        seen.push((res.status(), headers, res.text().await.unwrap()));
    }
    assert_eq!(seen[0], seen[1]);
    assert!(
        seen[1]
            .1
            .iter()
            .any(|(k, v)| k == "content-length" && v == "6")
    );
}

/// A duplicate is answered without calling the inner service, and what the inner service
/// reserved when it was made ready (here a `ConcurrencyLimit` permit) is given back at once,
/// not held by an idle service until its next request.
#[tokio::test]
async fn a_duplicate_gives_back_what_readiness_reserved() {
    use tower::limit::ConcurrencyLimit;
    use tower::{Layer, Service, ServiceExt};

    let runs = Runs::default();
    let handler = tower::service_fn({
        let runs = runs.clone();
        move |_req: http::Request<onceonly_tower::RequestBody<String>>| {
            runs.hit();
            async { Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok"))) }
        }
    });
    let svc = OnceOnlyLayer::new(OnceOnly::memory()).layer(ConcurrencyLimit::new(handler, 1));
    let request = || {
        http::Request::post("/hooks")
            .header("idempotency-key", "evt_limit")
            .body(String::new())
            .unwrap()
    };
    let first = svc.clone().oneshot(request()).await.unwrap();
    assert_eq!(first.headers().get("x-onceonly-status"), None);

    // Kept alive after its duplicate, like a connection's service between requests.
    let mut idle = svc.clone();
    let duplicate = idle.ready().await.unwrap().call(request()).await.unwrap();
    assert_eq!(
        duplicate.headers().get("x-onceonly-status").unwrap(),
        "duplicate"
    );
    // The only permit must be free for another service.
    let mut other = svc.clone();
    within("another service ready", other.ready())
        .await
        .unwrap();
    assert_eq!(runs.get(), 1);
}

/// An inner service whose `call` panics (before any future exists) does not leave the key
/// taken: the claim's guard is armed first and gives the key back while the panic unwinds.
#[tokio::test]
async fn a_panicking_inner_call_gives_the_key_back() {
    use tower::{Layer, Service, ServiceExt};

    let client = OnceOnly::memory();
    let panicking = tower::service_fn(
        |_req: http::Request<onceonly_tower::RequestBody<String>>| -> std::future::Ready<
            Result<http::Response<String>, std::convert::Infallible>,
        > { panic!("the handler blew up") },
    );
    let mut svc = OnceOnlyLayer::new(client.clone()).layer(panicking);
    let request = http::Request::post("/hooks")
        .header("idempotency-key", "evt_panic")
        .body(String::new())
        .unwrap();
    let ready = svc.ready().await.unwrap();
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ready.call(request)));
    assert!(unwound.is_err(), "the inner call panicked");
    let key = "POST /hooks idempotency-key=evt_panic";
    let lock = within("the key given back", async {
        loop {
            let lock = client.check_lock(key).await.unwrap();
            if lock.locked {
                return lock;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(lock.locked);
}

/// A request without a key, refused with `400` (keys required), gives back what the inner
/// service's readiness reserved, as a duplicate does.
#[tokio::test]
async fn a_missing_key_answer_gives_back_what_readiness_reserved() {
    use tower::limit::ConcurrencyLimit;
    use tower::{Layer, Service, ServiceExt};

    let handler = tower::service_fn(
        |_req: http::Request<onceonly_tower::RequestBody<String>>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
        },
    );
    let svc = OnceOnlyLayer::new(OnceOnly::memory())
        .require_key(true)
        .layer(ConcurrencyLimit::new(handler, 1));
    let mut idle = svc.clone();
    let refused = idle
        .ready()
        .await
        .unwrap()
        .call(http::Request::post("/hooks").body(String::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let mut other = svc.clone();
    within("another service ready", other.ready())
        .await
        .unwrap();
}
