//! Tenants (API keys) are isolated, and plan limits answer the documented 402.

mod common;

use common::{A, B, F, start};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn tenant_a_can_neither_see_nor_release_tenant_b_keys() {
    let s = start().await;
    assert_eq!(
        s.post_ok(A, "check-lock", json!({"key": "shared"})).await["status"],
        "locked"
    );
    assert_eq!(
        s.post_ok(B, "check-lock", json!({"key": "shared"})).await["status"],
        "locked",
        "B's key space is its own"
    );
    let rel = s
        .post_ok(B, "check-lock/release", json!({"key": "shared"}))
        .await;
    assert_eq!(rel["released"], true, "B releases its own lock");
    assert_eq!(
        s.post_ok(A, "check-lock", json!({"key": "shared"})).await["status"],
        "duplicate",
        "A's lock survived B's release"
    );
    s.post_ok(B, "check-lock/release", json!({"key": "shared"}))
        .await;
    assert_eq!(
        s.post_ok(A, "check-lock", json!({"key": "shared"})).await["status"],
        "duplicate"
    );

    let lease = s
        .post_ok(
            A,
            "ai/lease",
            json!({"key": "job", "metadata": {"run_id": "r"}}),
        )
        .await;
    let id = lease["lease_id"].clone();
    assert_eq!(
        s.get_ok(B, "ai/status?key=job").await["status"],
        "not_found"
    );
    assert_eq!(
        s.get_ok(B, "ai/result?key=job").await["result"],
        json!(null)
    );
    for path in ["ai/complete", "ai/cancel", "ai/extend"] {
        let a = s.post(B, path, json!({"key": "job", "lease_id": id})).await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{path}");
        assert_eq!(a.detail()["error"], "lease_lost");
    }
    assert_eq!(
        s.get_ok(A, "ai/status?key=job").await["status"],
        "in_progress"
    );
    assert_eq!(s.get_ok(B, "runs/r").await["total"], 0);
    assert_eq!(s.get_ok(A, "runs/r").await["total"], 1);
    assert_eq!(s.get_ok(B, "events").await["total"], 0);
    assert_eq!(s.get_ok(B, "usage?kind=ai").await["usage"], 0);
    assert_ne!(
        s.get_ok(A, "me").await["tenant_id"],
        s.get_ok(B, "me").await["tenant_id"]
    );
}

#[tokio::test]
async fn plan_limits_answer_402_with_the_documented_body() {
    let s = start().await;
    for i in 0..3 {
        s.post_ok(F, "check-lock", json!({"key": format!("k{i}")}))
            .await;
    }
    let over = s.post(F, "check-lock", json!({"key": "k3"})).await;
    assert_eq!(over.status, StatusCode::PAYMENT_REQUIRED, "{}", over.text);
    let d = over.detail();
    assert_eq!(d["error"], "payment_required");
    assert_eq!(d["highlights"], "Plan limit reached");
    assert_eq!(
        (d["plan"].clone(), d["limit"].clone(), d["usage"].clone()),
        (json!("free"), json!(3), json!(3))
    );
    assert_eq!(d["upgrade_url"], "");
    assert_eq!(d["kind"], "make");
    let usage = s.get_ok(F, "usage?kind=make").await;
    assert_eq!(
        (
            usage["usage"].clone(),
            usage["limit"].clone(),
            usage["blocked_total_month"].clone(),
            usage["requests_total_month"].clone()
        ),
        (json!(3), json!(3), json!(1), json!(4))
    );
    assert_eq!(
        s.get_ok(F, "events").await["data"][0]["type"],
        "limit_reached"
    );

    // ai: only acquisitions count; polling is free.
    let l = s.post_ok(F, "ai/lease", json!({"key": "j1"})).await;
    assert_eq!(
        (l["usage"].clone(), l["limit"].clone(), l["charged"].clone()),
        (json!(1), json!(2), json!(1))
    );
    assert_eq!(
        s.post_ok(F, "ai/lease", json!({"key": "j1"})).await["charged"],
        0
    );
    s.post_ok(F, "ai/run", json!({"key": "j2"})).await;
    let over = s.post(F, "ai/lease", json!({"key": "j3"})).await;
    assert_eq!(over.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(over.detail()["kind"], "ai");
    // The refused acquisition changed nothing.
    let j3 = s.get_ok(F, "ai/status?key=j3").await;
    assert_eq!(j3["status"], "not_found");
    // At the limit, answers that acquire nothing still work (polling is free).
    let busy = s.post_ok(F, "ai/lease", json!({"key": "j1"})).await;
    assert_eq!(
        (busy["status"].clone(), busy["charged"].clone()),
        (json!("in_progress"), json!(0))
    );

    // Other tenants are not affected.
    assert_eq!(
        s.post_ok(A, "check-lock", json!({"key": "k9"})).await["status"],
        "locked"
    );
}
