//! Every endpoint against a real server over TCP, with raw HTTP.

mod common;

use std::time::Duration;

use common::{A, start};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn healthz_needs_no_key() {
    let s = start().await;
    let a = s.raw(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["status"], "ok");
}

#[tokio::test]
async fn prometheus_metrics_count_answers_by_class_without_keys() {
    let s = start().await;
    s.post_ok(A, "check-lock", json!({"key": "m1"})).await;
    s.get(A, "nope").await;
    s.raw(Method::GET, "me", None, None, &[]).await;
    let a = s.raw(Method::GET, "/metrics", None, None, &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.header("content-type")
            .is_some_and(|c| c.starts_with("application/openmetrics-text"))
    );
    assert!(
        a.text
            .contains("onceonly_http_requests_total{class=\"2xx\"} 1\n"),
        "{}",
        a.text
    );
    assert!(
        a.text
            .contains("onceonly_http_requests_total{class=\"4xx\"} 2\n"),
        "{}",
        a.text
    );
    // A, B and F, plus the test server's default tenant.
    assert!(a.text.contains("onceonly_tenants 4\n"), "{}", a.text);
    assert!(!a.text.contains(A));
    // Outcomes per endpoint, by route template, never by key.
    let outcome = |endpoint: &str, outcome: &str| {
        format!("onceonly_outcomes_total{{endpoint=\"{endpoint}\",outcome=\"{outcome}\"}} 1\n")
    };
    for line in [
        outcome("/v1/check-lock", "locked"),
        outcome("unmatched", "not_found"),
        outcome("/v1/me", "unauthorized"),
    ] {
        assert!(a.text.contains(&line), "{line} in {}", a.text);
    }
    assert!(!a.text.contains("m1"), "no key in metrics: {}", a.text);
}

#[tokio::test]
async fn check_lock_locks_then_reports_duplicates_in_body_and_headers() {
    let s = start().await;
    let first = s
        .post(A, "check-lock", json!({"key": "stripe:evt_1", "ttl": 60}))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let mut body = first.body.clone();
    let lock_id = body.as_object_mut().unwrap().remove("lock_id").unwrap();
    assert!(
        lock_id.as_str().is_some_and(|id| id.starts_with("lock_")),
        "{lock_id}"
    );
    assert_eq!(
        body,
        json!({"success": true, "status": "locked", "key": "stripe:evt_1", "ttl": 60, "first_seen_at": null})
    );
    assert_eq!(first.header("x-onceonly-status"), Some("locked"));
    assert!(
        first
            .header("x-request-id")
            .is_some_and(|id| id.starts_with("req_"))
    );

    let dup = s
        .raw(
            Method::POST,
            "check-lock",
            Some(A),
            Some(br#"{"key":"stripe:evt_1","meta":{"source":"legacy"}}"#.to_vec()),
            &[("X-Request-Id", "caller-42")],
        )
        .await;
    assert_eq!(dup.status, StatusCode::OK);
    assert_eq!(dup.body["success"], false);
    assert_eq!(dup.body["status"], "duplicate");
    assert_eq!(dup.body["ttl"], 3600, "default TTL when none is given");
    assert!(
        dup.body["first_seen_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(dup.header("x-onceonly-status"), Some("duplicate"));
    assert_eq!(dup.header("x-request-id"), Some("caller-42"), "echoed");

    // A fractional TTL reads back in whole seconds rounded up, as a lease's does.
    let short = s
        .post_ok(A, "check-lock", json!({"key": "stripe:evt_2", "ttl": 1.5}))
        .await;
    assert_eq!(short["ttl"], 2, "{short}");
}

#[tokio::test]
async fn unusable_request_ids_are_replaced_not_echoed() {
    let s = start().await;
    let long = "r".repeat(300);
    for (i, id) in ["", "   ", "a b", "é", long.as_str()]
        .into_iter()
        .enumerate()
    {
        let a = s
            .raw(
                Method::POST,
                "check-lock",
                Some(A),
                Some(format!(r#"{{"key":"rid-{i}"}}"#).into_bytes()),
                &[("X-Request-Id", id)],
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{id:?}: {}", a.text);
        assert!(
            a.header("x-request-id")
                .is_some_and(|got| got.starts_with("req_") && got.len() == 28),
            "{id:?} got {:?}",
            a.header("x-request-id")
        );
    }
}

#[tokio::test]
async fn check_lock_release_extension_lets_the_retry_in() {
    let s = start().await;
    s.post_ok(A, "check-lock", json!({"key": "evt_r"})).await;
    let rel = s
        .post_ok(A, "check-lock/release", json!({"key": "evt_r"}))
        .await;
    assert_eq!(rel, json!({"ok": true, "key": "evt_r", "released": true}));
    let again = s.post_ok(A, "check-lock", json!({"key": "evt_r"})).await;
    assert_eq!(again["status"], "locked");
    let none = s
        .post_ok(A, "check-lock/release", json!({"key": "never"}))
        .await;
    assert_eq!(none["released"], false);
}

#[tokio::test]
async fn check_lock_release_with_a_lock_id_removes_only_that_lock() {
    let s = start().await;
    let first = s.post_ok(A, "check-lock", json!({"key": "evt_f"})).await;
    let first_id = first["lock_id"]
        .as_str()
        .expect("the locking answer has a lock_id");
    let dup = s.post_ok(A, "check-lock", json!({"key": "evt_f"})).await;
    assert!(dup.get("lock_id").is_none(), "{dup}");

    let wrong = s
        .post_ok(
            A,
            "check-lock/release",
            json!({"key": "evt_f", "lock_id": "lock_someone_else"}),
        )
        .await;
    assert_eq!(wrong["released"], false);
    let dup = s.post_ok(A, "check-lock", json!({"key": "evt_f"})).await;
    assert_eq!(dup["status"], "duplicate", "the lock survived a wrong id");

    let own = s
        .post_ok(
            A,
            "check-lock/release",
            json!({"key": "evt_f", "lock_id": first_id}),
        )
        .await;
    assert_eq!(own["released"], true);
    let again = s.post_ok(A, "check-lock", json!({"key": "evt_f"})).await;
    assert_eq!(again["status"], "locked");
    assert_ne!(again["lock_id"], first["lock_id"]);
}

#[tokio::test]
async fn lease_lifecycle_hides_the_holder_and_replays_the_result() {
    let s = start().await;
    let l = s
        .post_ok(
            A,
            "ai/lease",
            json!({"key": "job-1", "ttl": 120, "metadata": {"who": "t"}}),
        )
        .await;
    assert_eq!(l["status"], "acquired");
    assert_eq!(
        (l["ok"].clone(), l["version"].clone(), l["ttl"].clone()),
        (json!(true), json!(1), json!(120))
    );
    assert_eq!(l["charged"], 1);
    let id = l["lease_id"].as_str().unwrap().to_owned();

    let busy = s.post_ok(A, "ai/lease", json!({"key": "job-1"})).await;
    assert_eq!(busy["status"], "in_progress");
    assert!(
        busy.get("lease_id").is_none(),
        "never the holder's lease id: {busy}"
    );
    assert!(
        busy["retry_after_sec"]
            .as_u64()
            .is_some_and(|s| (1..=5).contains(&s))
    );
    assert_eq!(busy["charged"], 0);

    let ext = s
        .post_ok(
            A,
            "ai/extend",
            json!({"key": "job-1", "lease_id": id, "ttl": 300}),
        )
        .await;
    assert_eq!(ext["ttl"], 300);
    assert_eq!(
        ext["status"], "extended",
        "as the hosted API answers an extension"
    );

    let st = s.get_ok(A, "ai/status?key=job-1").await;
    assert_eq!(st["status"], "in_progress");
    assert!(st["ttl_left"].as_u64().is_some_and(|t| t > 200));

    let done = s
        .post_ok(
            A,
            "ai/complete",
            json!({"key": "job-1", "lease_id": id, "result": {"receipt": "r1"}, "result_hash": "h1"}),
        )
        .await;
    assert_eq!(done["status"], "completed");
    let again = s
        .post_ok(
            A,
            "ai/complete",
            json!({"key": "job-1", "lease_id": id, "result": {"receipt": "r1"}}),
        )
        .await;
    assert_eq!(
        again["status"], "completed",
        "a retried complete is a no-op"
    );

    let replay = s.post_ok(A, "ai/lease", json!({"key": "job-1"})).await;
    assert_eq!(replay["status"], "completed");
    assert_eq!(replay["result"], json!({"receipt": "r1"}));
    let st = s.get_ok(A, "ai/status?key=job-1").await;
    assert_eq!(
        (st["status"].clone(), st["result_hash"].clone()),
        (json!("completed"), json!("h1"))
    );
    let r = s.get_ok(A, "ai/result?key=job-1").await;
    assert_eq!(r["ok"], true);
    assert_eq!(r["result"], json!({"receipt": "r1"}));
    assert!(r["done_at"].is_string());
    assert!(
        r.get("error_code").is_some(),
        "result always carries error_code: {r}"
    );

    let unknown = s.get_ok(A, "ai/status?key=nobody").await;
    assert_eq!(unknown["status"], "not_found");
    let unknown = s.get_ok(A, "ai/result?key=nobody").await;
    assert_eq!(
        (unknown["status"].clone(), unknown["result"].clone()),
        (json!("not_found"), json!(null))
    );
}

#[tokio::test]
async fn stale_lease_id_gets_409_lease_lost() {
    let s = start().await;
    let id = s.post_ok(A, "ai/lease", json!({"key": "k"})).await["lease_id"].clone();
    s.post_ok(
        A,
        "ai/cancel",
        json!({"key": "k", "lease_id": id, "reason": "shutdown"}),
    )
    .await;
    let st = s.get_ok(A, "ai/status?key=k").await;
    assert_eq!(
        (
            st["status"].clone(),
            st["error_code"].clone(),
            st["retryable"].clone()
        ),
        (json!("failed"), json!("cancelled"), json!(true)),
        "a released key reads as a retryable failure so waiting SDKs stop"
    );
    let fresh = s.post_ok(A, "ai/lease", json!({"key": "k"})).await;
    assert_eq!(
        (fresh["status"].clone(), fresh["version"].clone()),
        (json!("acquired"), json!(2))
    );
    for path in ["ai/extend", "ai/complete", "ai/cancel"] {
        let a = s.post(A, path, json!({"key": "k", "lease_id": id})).await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{path}: {}", a.text);
        assert_eq!(a.detail()["error"], "lease_lost");
    }
    let a = s
        .post(
            A,
            "ai/fail",
            json!({"key": "k", "lease_id": id, "error_code": "x"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.detail()["error"], "lease_lost");
}

#[tokio::test]
async fn fail_is_terminal_unless_retryable() {
    let s = start().await;
    let id = s.post_ok(A, "ai/lease", json!({"key": "t"})).await["lease_id"].clone();
    let f = s
        .post_ok(
            A,
            "ai/fail",
            json!({"key": "t", "lease_id": id, "error_code": "card_declined", "error_hash": "e"}),
        )
        .await;
    assert_eq!(f["status"], "failed");
    let l = s.post_ok(A, "ai/lease", json!({"key": "t"})).await;
    assert_eq!(
        (l["status"].clone(), l["error_code"].clone()),
        (json!("failed"), json!("card_declined"))
    );
    assert!(l.get("retryable").is_none());
    let r = s.get_ok(A, "ai/result?key=t").await;
    assert_eq!(
        (r["ok"].clone(), r["error_code"].clone()),
        (json!(false), json!("card_declined"))
    );

    let id = s.post_ok(A, "ai/lease", json!({"key": "r"})).await["lease_id"].clone();
    s.post_ok(
        A,
        "ai/fail",
        json!({"key": "r", "lease_id": id, "error_code": "timeout", "retryable": true}),
    )
    .await;
    let st = s.get_ok(A, "ai/status?key=r").await;
    assert_eq!(
        (st["status"].clone(), st["retryable"].clone()),
        (json!("failed"), json!(true))
    );
    let again = s.post_ok(A, "ai/lease", json!({"key": "r"})).await;
    assert_eq!(again["status"], "acquired");
}

#[tokio::test]
async fn key_mode_run_queues_or_attaches_and_stays_in_progress_until_completed() {
    let s = start().await;
    let run = s
        .post_ok(
            A,
            "ai/run",
            json!({"key": "report:2026-04", "ttl": 600, "metadata": {"run_id": "run-r"}}),
        )
        .await;
    assert_eq!(
        (&run["status"], &run["queued"], &run["charged"]),
        (&json!("in_progress"), &json!(true), &json!(1)),
        "{run}"
    );
    assert!(run.get("lease_id").is_none(), "{run}");
    assert!(
        run.get("allowed").is_none() && run.get("decision").is_none(),
        "key-mode shape: {run}"
    );
    let attach = s
        .post_ok(A, "ai/run", json!({"key": "report:2026-04"}))
        .await;
    assert_eq!(
        (&attach["status"], &attach["charged"]),
        (&json!("in_progress"), &json!(0))
    );
    assert!(attach.get("lease_id").is_none());
    // A worker claims the run and completes it under the run's lease.
    let job = s
        .post_ok(A, "ai/jobs/claim", json!({"pattern": "report:*"}))
        .await["job"]
        .clone();
    s.post_ok(
        A,
        "ai/complete",
        json!({"key": "report:2026-04", "lease_id": job["lease_id"], "result": {"rows": 3}}),
    )
    .await;
    let done = s
        .post_ok(A, "ai/run", json!({"key": "report:2026-04"}))
        .await;
    assert_eq!(
        (done["status"].clone(), done["result"].clone()),
        (json!("completed"), json!({"rows": 3}))
    );
    let t = s.get_ok(A, "runs/run-r").await;
    let kinds: Vec<_> = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(kinds, [json!("run_started"), json!("run_finished")]);

    // Without metadata.run_id the run id is the key; the run starts when it is claimed.
    s.post_ok(A, "ai/run", json!({"key": "solo"})).await;
    let job = s
        .post_ok(A, "ai/jobs/claim", json!({"pattern": "solo"}))
        .await["job"]
        .clone();
    assert_eq!(job["run_id"], "solo");
    assert_eq!(s.get_ok(A, "runs/solo").await["total"], 1);
}

#[tokio::test]
async fn long_poll_status_returns_when_the_key_completes() {
    let s = start().await;
    let id = s
        .post_ok(A, "ai/lease", json!({"key": "lp", "ttl": 600}))
        .await["lease_id"]
        .clone();
    // A short bound on a held key returns the in-progress status at the bound.
    let st = s.get_ok(A, "ai/status?key=lp&wait_ms=50").await;
    assert_eq!(st["status"], "in_progress");

    let poll = {
        let http = s.http.clone();
        let url = format!("{}/ai/status?key=lp&wait_ms=25000", s.base);
        tokio::spawn(async move {
            http.get(url)
                .bearer_auth(A)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.post_ok(A, "ai/complete", json!({"key": "lp", "lease_id": id}))
        .await;
    let st = tokio::time::timeout(Duration::from_secs(20), poll)
        .await
        .expect("woken by the completion, not by the 25 s bound")
        .unwrap();
    assert_eq!(st["status"], "completed");
}

#[tokio::test]
async fn events_and_run_timelines() {
    let s = start().await;
    let posted = s
        .post_ok(
            A,
            "events",
            json!({"run_id": "run/1: x", "type": "tool_call", "tool": "send_email", "step": "s1",
                   "duration_ms": 12, "data": {"to": "u1"}, "custom_field": [1, 2]}),
        )
        .await;
    assert_eq!(posted["ok"], true);
    assert_eq!(posted["run_id"], "run/1: x");
    assert!(posted["event_id"].as_u64().is_some());
    s.post_ok(
        A,
        "events",
        json!({"run_id": "run/1: x", "type": "note", "ts": 1700000000, "message": "m"}),
    )
    .await;
    s.post_ok(A, "events", json!({"run_id": "other", "type": "note"}))
        .await;

    // The official SDKs percent-encode run ids in the path.
    let t = s.get_ok(A, "runs/run%2F1%3A%20x?limit=200&offset=0").await;
    assert_eq!(t["run_id"], "run/1: x");
    assert_eq!(t["total"], 2);
    let ev = &t["events"][0];
    assert_eq!(
        (ev["type"].clone(), ev["tool"].clone(), ev["step"].clone()),
        (json!("tool_call"), json!("send_email"), json!("s1"))
    );
    assert_eq!(ev["custom_field"], json!([1, 2]), "extra fields are kept");
    assert!(ev["ts"].as_i64().is_some(), "ts filled in");
    assert_eq!(t["events"][1]["ts"], 1700000000);
    let page = s.get_ok(A, "runs/run%2F1%3A%20x?limit=1&offset=1").await;
    assert_eq!(page["events"][0]["type"], "note");
    assert_eq!(s.get_ok(A, "runs/unknown-run").await["total"], 0);

    let recent = s.get_ok(A, "events?limit=2&offset=0").await;
    assert_eq!(recent["total"], 3);
    assert_eq!(recent["data"].as_array().unwrap().len(), 2);
    assert_eq!(recent["data"][0]["run_id"], "other", "newest first");

    let runs = s.get_ok(A, "runs?limit=10").await;
    assert_eq!(runs["total"], 2);
    assert_eq!(runs["items"][0]["run_id"], "other");
    assert_eq!(runs["items"][1]["events_count"], 2);
    assert_eq!(runs["items"][1]["last_type"], "note");
    assert_eq!(s.get_ok(A, "runs?q=run%2F").await["total"], 1);
}

#[tokio::test]
async fn account_usage_metrics_and_notifications() {
    let s = start().await;
    s.post_ok(A, "check-lock", json!({"key": "u1"})).await;
    s.post_ok(A, "check-lock", json!({"key": "u1"})).await;
    s.post_ok(A, "ai/lease", json!({"key": "l1"})).await;
    s.post_ok(A, "ai/lease", json!({"key": "l1"})).await;

    let me = s.get_ok(A, "me").await;
    assert_eq!(me["plan"], "unlimited");
    assert_eq!(me["is_active"], true);
    let preview = me["key_preview"].as_str().unwrap();
    assert!(!preview.contains(A) && preview.contains('…'), "{preview}");
    assert!(!me.to_string().contains(A), "the key never appears in /me");

    let make = s.get_ok(A, "usage?kind=make").await;
    assert_eq!(
        (make["usage"].clone(), make["requests_total_month"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(make["limit"], json!(null));
    assert!(make["month"].as_str().is_some_and(|m| m.len() == 7));
    assert_eq!(
        s.get_ok(A, "usage").await["usage"],
        2,
        "kind defaults to make"
    );
    let ai = s.get_ok(A, "usage?kind=ai").await;
    assert_eq!(
        (ai["usage"].clone(), ai["requests_total_month"].clone()),
        (json!(1), json!(2)),
        "only acquisitions count"
    );

    let all = s.get(A, "usage/all").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.body["ai"]["polling_total_month"], 1);
    assert_eq!(all.body["make"]["charged_total_month"], 2);
    assert_eq!(all.header("x-onceonly-plan"), Some("unlimited"));
    assert_eq!(all.header("x-onceonly-month"), all.body["month"].as_str());

    let month = make["month"].as_str().unwrap();
    let day = format!("{month}-01");
    let m = s
        .get_ok(A, &format!("metrics?from_day={day}&to_day={month}-28"))
        .await;
    assert_eq!(m["days"].as_array().unwrap().len(), 28);
    assert_eq!(m["totals"]["make"]["usage"], 2);
    assert_eq!(
        m["totals"]["ai"],
        json!({"usage": 1, "blocked": 0, "polling": 1})
    );

    let prefs = s
        .post_ok(
            A,
            "me/notifications",
            json!({"email_notifications_enabled": false}),
        )
        .await;
    assert_eq!(
        prefs,
        json!({"email_notifications_enabled": false, "tool_error_notifications_enabled": true,
               "run_failure_notifications_enabled": true})
    );
    let prefs = s
        .post_ok(
            A,
            "me/notifications",
            json!({"run_failure_notifications_enabled": false}),
        )
        .await;
    assert_eq!(
        prefs["email_notifications_enabled"], false,
        "earlier choices are kept"
    );
}
