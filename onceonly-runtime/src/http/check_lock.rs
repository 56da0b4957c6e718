//! `POST /check-lock` and its own answer parsing, and the release extension.

use serde_json::Value;

use super::errors::{self, parse_json, truthy};
use super::transport::{Request, Response, Transport};
use super::wire::{self, KeyBody, ReleaseBody, secs, ttl_secs};
use reqwest::header::HeaderName;

use crate::error::{Error, Result};
use crate::models::{CheckLockRequest, CheckLockResult};
use crate::wire::header as wire_header;
use crate::wire::status;

pub(crate) async fn check_lock(t: &Transport, req: CheckLockRequest) -> Result<CheckLockResult> {
    let body = KeyBody {
        key: &req.key,
        ttl: ttl_secs(req.ttl)?,
        metadata: req.metadata.as_ref(),
    };
    let request = Request::post(&["check-lock"], &body)?
        .request_id(req.request_id.as_deref())?
        .unrepeatable();
    let resp = t.send(request).await?;
    parse(&req, &resp, t)
}

fn header(resp: &Response, name: &HeaderName) -> Option<String> {
    resp.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn parse(req: &CheckLockRequest, resp: &Response, t: &Transport) -> Result<CheckLockResult> {
    let request_id = header(resp, &wire_header::REQUEST_ID);
    let requested_ttl = req.ttl.map_or(0, secs);
    if resp.status == 409 {
        // Duplicate mode: {"detail": {"error": "Duplicate blocked", "first_seen_at": ".."}}.
        let detail = errors::detail(parse_json(&resp.body));
        return Ok(CheckLockResult {
            locked: false,
            duplicate: true,
            key: req.key.clone(),
            ttl: requested_ttl,
            first_seen_at: detail
                .as_ref()
                .and_then(|d| d.get("first_seen_at"))
                .and_then(wire::timestamp),
            lock_id: None,
            request_id,
            status_code: 409,
            fail_open: None,
        });
    }
    if !resp.is_success() {
        return Err(errors::check_lock_status_error(
            resp.status,
            &resp.headers,
            &resp.body,
            t.scrub(),
        ));
    }
    let body = errors::success_map(&resp.body);
    let said = |s: Option<String>| {
        s.map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| s == status::LOCKED || s == status::DUPLICATE)
    };
    let status = said(
        body.get("status")
            .and_then(Value::as_str)
            .map(str::to_owned),
    )
    .or_else(|| said(header(resp, &wire_header::ONCEONLY_STATUS)));
    let locked = match status.as_deref() {
        Some(s) => s == status::LOCKED,
        // No status anywhere: `success` decides, and its absence reads as a duplicate.
        None => body.get("success").is_some_and(truthy),
    };
    Ok(CheckLockResult {
        locked,
        duplicate: !locked,
        key: body
            .get("key")
            .and_then(Value::as_str)
            .map_or_else(|| req.key.clone(), str::to_owned),
        ttl: body
            .get("ttl")
            .and_then(Value::as_f64)
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map_or(requested_ttl, |t| t.round() as u64),
        first_seen_at: body.get("first_seen_at").and_then(wire::timestamp),
        // Our server's extension; only meaningful on the answer that took the lock.
        lock_id: body
            .get("lock_id")
            .and_then(Value::as_str)
            .filter(|_| locked)
            .map(str::to_owned),
        request_id,
        status_code: resp.status,
        fail_open: None,
    })
}

/// `POST /check-lock/release {"key", "lock_id"?}` (extension), answering
/// `{"released": bool}`.
pub(crate) async fn release_lock(t: &Transport, key: &str, lock_id: Option<&str>) -> Result<bool> {
    let body = ReleaseBody { key, lock_id };
    let resp = t
        .send(Request::post(&["check-lock", "release"], &body)?)
        .await?;
    // The route answers 200 with `released: false` for a key without a lock, so a 404 or
    // 405 means the server does not have the route at all.
    if resp.status == 404 || resp.status == 405 {
        return Err(Error::Unsupported {
            operation: "release_lock",
            backend: "http",
        });
    }
    let map = wire::read_map(&resp, t.scrub())?;
    Ok(map.get("released").is_some_and(truthy))
}
