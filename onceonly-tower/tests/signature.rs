//! Signed tool calls over real TCP: the layer and the extractors accept good signatures and
//! refuse bad, missing and stale ones with 401 and a JSON detail.

mod common;

use axum::Router;
use axum::routing::post;
use common::{Runs, client, header, serve};
use onceonly_tower::signature::{
    ALGORITHM_HEADER, SIGNATURE_HEADER, SignatureVerifier, SignedBody, SignedJson,
    TIMESTAMP_HEADER, VerifySignatureLayer, sign, unix_now,
};
use serde::Deserialize;
use serde_json::Value;

const SECRET: &str = "tool-secret-123";

#[derive(Deserialize)]
struct ToolCall {
    args: Value,
}

/// Three endpoints: the layer, the raw-body extractor and the JSON extractor.
async fn server(runs: &Runs) -> String {
    let verifier = SignatureVerifier::new(SECRET).max_body_bytes(4096);
    let layered = Router::new()
        .route(
            "/layer",
            post({
                let runs = runs.clone();
                move |body: String| async move {
                    runs.hit();
                    body
                }
            }),
        )
        .route_layer(VerifySignatureLayer::new(verifier.clone()));
    let extracted = Router::new()
        .route(
            "/raw",
            post({
                let runs = runs.clone();
                move |SignedBody(body): SignedBody| async move {
                    runs.hit();
                    body
                }
            }),
        )
        .route(
            "/json",
            post({
                let runs = runs.clone();
                move |SignedJson(call): SignedJson<ToolCall>| async move {
                    runs.hit();
                    call.args.to_string()
                }
            }),
        )
        .with_state(verifier);
    serve(layered.merge(extracted)).await
}

const PATHS: [&str; 3] = ["/layer", "/raw", "/json"];
const BODY: &str = r#"{"args":{"to":"a@example.com","subject":"hi"}}"#;

async fn send(base: &str, path: &str, body: &str, headers: &[(&str, String)]) -> reqwest::Response {
    let mut req = client().post(format!("{base}{path}")).body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.unwrap()
}

fn signed(secret: &str, body: &str, ts: u64) -> Vec<(&'static str, String)> {
    sign(secret, body.as_bytes(), ts)
        .pairs()
        .into_iter()
        .map(|(k, v)| {
            let name: &'static str = match k {
                k if k == SIGNATURE_HEADER => "x-onceonly-signature",
                k if k == ALGORITHM_HEADER => "x-onceonly-signature-alg",
                k if k == TIMESTAMP_HEADER => "x-onceonly-timestamp",
                _ => unreachable!(),
            };
            (name, v)
        })
        .collect()
}

async fn assert_refused(res: reqwest::Response, status: u16, needle: &str) {
    assert_eq!(res.status(), status);
    assert_eq!(
        header(&res, "content-type").as_deref(),
        Some("application/json")
    );
    let body: Value = res.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains(needle),
        "{detail:?} should mention {needle:?}"
    );
}

#[tokio::test]
async fn good_signatures_are_accepted() {
    let runs = Runs::default();
    let base = server(&runs).await;
    for path in PATHS {
        let res = send(&base, path, BODY, &signed(SECRET, BODY, unix_now())).await;
        assert_eq!(res.status(), 200, "{path}");
        let text = res.text().await.unwrap();
        if path == "/json" {
            // Compared as JSON: member order depends on serde_json's `preserve_order` feature,
            // which other crates of the workspace may turn on.
            let echoed: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                echoed,
                serde_json::json!({"subject": "hi", "to": "a@example.com"})
            );
        } else {
            assert_eq!(text, BODY, "{path}: the handler gets the signed bytes");
        }
    }
    assert_eq!(runs.get(), 3);
}

#[tokio::test]
async fn bad_missing_and_stale_signatures_are_refused() {
    let runs = Runs::default();
    let base = server(&runs).await;
    let now = unix_now();
    for path in PATHS {
        // Signed with another secret.
        let res = send(&base, path, BODY, &signed("other-secret", BODY, now)).await;
        assert_refused(res, 401, "does not match").await;
        // The body was changed after signing.
        let tampered = BODY.replace("a@example.com", "b@example.com");
        let res = send(&base, path, &tampered, &signed(SECRET, BODY, now)).await;
        assert_refused(res, 401, "does not match").await;
        // No headers at all.
        let res = send(&base, path, BODY, &[]).await;
        assert_refused(res, 401, "missing signature header").await;
        // Each header missing in turn.
        for skip in 0..3 {
            let mut headers = signed(SECRET, BODY, now);
            let (name, _) = headers.remove(skip);
            let res = send(&base, path, BODY, &headers).await;
            assert_refused(res, 401, name).await;
        }
        // Too old and too far in the future. Far outside the window: the one-second edge is
        // unit-tested with a fixed clock, while here the wall clock ticks between sign and check.
        for ts in [now - 3600, now + 3600] {
            let res = send(&base, path, BODY, &signed(SECRET, BODY, ts)).await;
            assert_refused(res, 401, "outside the allowed window").await;
        }
        // Another algorithm.
        let mut headers = signed(SECRET, BODY, now);
        headers[1].1 = "hmac_sha512".into();
        let res = send(&base, path, BODY, &headers).await;
        assert_refused(res, 401, "unsupported signature algorithm").await;
        // Not unix seconds.
        let mut headers = signed(SECRET, BODY, now);
        headers[2].1 = "2026-01-01T00:00:00Z".into();
        let res = send(&base, path, BODY, &headers).await;
        assert_refused(res, 401, "unix seconds").await;
        // Not hex.
        let mut headers = signed(SECRET, BODY, now);
        headers[0].1 = "not-hex".into();
        let res = send(&base, path, BODY, &headers).await;
        assert_refused(res, 401, "does not match").await;
    }
    assert_eq!(runs.get(), 0);
}

#[tokio::test]
async fn oversized_and_malformed_signed_bodies() {
    let runs = Runs::default();
    let base = server(&runs).await;
    let big = format!(r#"{{"args":{{"pad":"{}"}}}}"#, "x".repeat(5000));
    for path in PATHS {
        let res = send(&base, path, &big, &signed(SECRET, &big, unix_now())).await;
        assert_refused(res, 413, "4096 bytes").await;
    }
    // A valid signature over a body that is not the expected JSON.
    let res = send(
        &base,
        "/json",
        "[1,2]",
        &signed(SECRET, "[1,2]", unix_now()),
    )
    .await;
    assert_refused(res, 400, "not the expected JSON").await;
    assert_eq!(runs.get(), 0);
}
