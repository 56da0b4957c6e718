//! [`Mode::Replay`](super::Mode::Replay): a lease per request, the response stored and
//! replayed.
//!
//! The first request with a key acquires the lease and runs the handler under a heartbeat.
//! Its response is stored when it is final ([`is_stored`]); a 5xx, a transient 4xx, a failed
//! handler or a dropped request gives the key back instead. Later requests with the key get
//! the stored response, unless their body differs (`422`) or the first is still running
//! (`409` with `Retry-After`). The body's fingerprint also travels as the lease's metadata, so a
//! duplicate with a different body gets `422` while the first is still running too, on backends
//! that show a holder's metadata (the embedded engine and `onceonly-server`; elsewhere `409`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HeaderName, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use onceonly_runtime::__private::{InFlight, cancel_if_acquired};
use onceonly_runtime::models::{CompleteRequest, Lease, LeaseRequest, RunStatus};
use onceonly_runtime::{Error, HeldLease, JsonMap};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tower_service::Service;
use tracing::Instrument;

use super::key::FoundKey;
use super::layer::Config;
use super::service::passthrough;
use super::trace::{Outcome, Trace};
use onceonly_runtime::wire::status;

/// The cancel reason of a lease whose request went away.
const DROPPED: &str = "request dropped";

use super::{IDEMPOTENCY_REPLAYED, ONCEONLY_STATUS, backend_failure};
use crate::body::{BoxError, ResponseBody};
use crate::buffer::{self, Collected};
use crate::response;

/// Marks what this layer stores, so a result written by something else is never replayed.
const FORMAT: &str = "onceonly-tower/response@1";
/// The lease metadata member holding the request body's fingerprint, named for this layer so
/// that metadata written by anything else sharing the key is never read as a fingerprint.
const FINGERPRINT: &str = "onceonly-tower/fingerprint";

/// Whether a response with `status` is stored and replayed.
///
/// Stored: every 2xx, 3xx and 4xx answer, because repeating the same request would get the same
/// answer (IETF and Stripe semantics). Not stored, the key is released instead: 5xx, and the
/// 4xx that mean "try again later" — `408 Request Timeout`, `409 Conflict`, `425 Too Early`,
/// `429 Too Many Requests`.
pub fn is_stored(status: StatusCode) -> bool {
    !(status.is_server_error()
        || status.is_informational()
        || matches!(status.as_u16(), 408 | 409 | 425 | 429))
}

/// A stored response, as the lease result object.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    format: String,
    /// SHA-256 of the request body, hex.
    fingerprint: String,
    status: u16,
    headers: Vec<(String, String)>,
    /// Base64 of the body; `None` when it was larger than the cap.
    body: Option<String>,
    body_len: u64,
}

/// A header value as stored: each byte as the character of that code point (Latin-1), so
/// any value, UTF-8 or not, is kept byte for byte in JSON text; visible ASCII, the common
/// case, reads as itself.
fn header_text(value: &HeaderValue) -> String {
    value.as_bytes().iter().map(|&b| char::from(b)).collect()
}

/// The value [`header_text`] stored; `None` for text it could not have written.
fn header_value(text: &str) -> Option<HeaderValue> {
    let bytes: Option<Vec<u8>> = text.chars().map(|c| u8::try_from(c).ok()).collect();
    HeaderValue::from_bytes(&bytes?).ok()
}

impl Stored {
    fn to_result(&self) -> JsonMap {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => JsonMap::new(),
        }
    }

    fn from_result(result: Option<JsonMap>) -> Option<Stored> {
        let stored: Stored = serde_json::from_value(serde_json::Value::Object(result?)).ok()?;
        (stored.format == FORMAT).then_some(stored)
    }
}

/// What tells two requests with one key apart: the SHA-256 of the request target (path and
/// query: the key is scoped to the route template, so `/orders/1/pay` and `/orders/2/pay`
/// share it) and of the body.
fn fingerprint(target: &str, body: &[u8]) -> String {
    // Through a buffer: `hex::encode` collects the digits one `char` at a time, which showed in
    // profiles of this path (it runs on every request in replay mode).
    let mut digits = [0u8; 64];
    let digest = Sha256::new()
        .chain_update(target)
        // A target never holds a NUL byte, so no two (target, body) pairs hash the same input.
        .chain_update([0])
        .chain_update(body)
        .finalize();
    hex::encode_to_slice(digest, &mut digits).expect("32 bytes make 64 digits");
    std::str::from_utf8(&digits)
        .expect("hex digits are ASCII")
        .to_owned()
}

/// The fingerprint releases before path-aware fingerprints stored: the body's SHA-256 alone.
fn body_only_fingerprint(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Runs a request with its key, setting the outcome in `trace`.
pub(crate) async fn run<S, B, ResBody>(
    config: &Config,
    inner: S,
    req: Request<B>,
    key: String,
    found: FoundKey,
    body: &Bytes,
    trace: &mut Trace,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let fingerprint = fingerprint(target, body);
    let mut metadata = JsonMap::new();
    metadata.insert(FINGERPRINT.into(), fingerprint.clone().into());
    let lease_req = LeaseRequest::new(key.as_str())
        .ttl(config.lease_ttl)
        .metadata(metadata);
    let call = {
        let client = config.client.clone();
        Box::pin(async move { client.backend().lease(lease_req).await })
    };
    let answer = InFlight::answer(call, || {
        let settle = cancel_if_acquired(&config.client, key.clone(), config.lease_ttl, DROPPED);
        let span = trace.span().clone();
        Box::new(move |answer| Box::pin(settle(answer).instrument(span)))
    });
    let mut lease = match answer.await {
        Ok(lease) => lease,
        Err(e) => {
            return match backend_failure(config, trace, &e) {
                Some(answer) => Ok(answer),
                None => passthrough(inner, req).await,
            };
        }
    };
    match (lease.status, lease.lease_id.take()) {
        (RunStatus::Acquired, Some(lease_id)) => {
            let held = HeldLease::new(&config.client, key, lease_id, config.lease_ttl)
                .cancel_reason(DROPPED);
            // Dropped from now on, the request gives the lease back.
            trace.outcome(Outcome::Released);
            first(config, held, inner, req, fingerprint, trace).await
        }
        (RunStatus::Completed, _) => Ok(replay(
            config,
            lease.result,
            (&fingerprint, body),
            &found,
            trace,
        )),
        (RunStatus::InProgress, _) if held_for_another_body(&lease, &fingerprint) => {
            trace.outcome(Outcome::Failed);
            Ok(different_body(&found))
        }
        _ => Ok(conflict(&lease, &found, trace)),
    }
}

/// A response body: read for storage, or left alone.
enum Answer<B> {
    Read(Collected<B>),
    Unread(B),
}

/// Runs the handler for the first request with the key, and stores or releases. The outcome
/// stays `released` unless the response is stored.
async fn first<S, B, ResBody>(
    config: &Config,
    mut held: HeldLease,
    mut inner: S,
    req: Request<B>,
    fingerprint: String,
    trace: &mut Trace,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let cap = config.max_response_bytes;
    let work = async {
        let res = inner.call(req).await?;
        let stored = is_stored(res.status());
        let (parts, body) = res.into_parts();
        let body = if stored {
            Answer::Read(buffer::read_response(body, cap).await)
        } else {
            Answer::Unread(body)
        };
        Ok((parts, body))
    };
    let every = held.ttl() / 3;
    let (parts, body) = match held.run_with_heartbeat(work, every).await {
        Ok(answer) => answer,
        Err(e) => {
            held.release("handler_error").await;
            return Err(e);
        }
    };
    let stored_headers = |headers: &HeaderMap| -> Vec<(String, String)> {
        config
            .replay_headers
            .iter()
            .flat_map(|name| {
                headers
                    .get_all(name)
                    .iter()
                    .map(move |v| (name.as_str().to_owned(), header_text(v)))
            })
            .collect()
    };
    let collected = match body {
        Answer::Read(collected) => collected,
        Answer::Unread(body) => {
            let code = if parts.status.is_server_error() {
                "http_5xx"
            } else {
                "http_retry_later"
            };
            held.release(code).await;
            return Ok(Response::from_parts(parts, ResponseBody::inner(body)));
        }
    };
    match collected {
        Collected::Failed(e) => {
            held.release("response_body_error").await;
            Ok(Response::from_parts(parts, ResponseBody::failed(e)))
        }
        Collected::Complete { data, trailers } => {
            let stored = Stored {
                format: FORMAT.to_owned(),
                fingerprint,
                status: parts.status.as_u16(),
                headers: stored_headers(&parts.headers),
                body: Some(BASE64.encode(&data)),
                body_len: data.len() as u64,
            };
            trace.outcome(store(held, stored).await);
            Ok(Response::from_parts(
                parts,
                ResponseBody::full_with_trailers(data, trailers),
            ))
        }
        Collected::Overflow { prefix, rest } => {
            let stored = Stored {
                format: FORMAT.to_owned(),
                fingerprint,
                status: parts.status.as_u16(),
                headers: stored_headers(&parts.headers),
                body: None,
                body_len: parts
                    .headers
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(0),
            };
            trace.outcome(store(held, stored).await);
            Ok(Response::from_parts(
                parts,
                ResponseBody::resumed(prefix, rest),
            ))
        }
    }
}

/// Completes the lease with the stored response. A result the backend refuses (too large for
/// it: 422 or 413) is stored without its body; any other failure is logged and the lease left
/// to expire (the handler did run, so an immediate re-run would be worse). Answers `executed`,
/// or `lease_lost` when another request had taken the key over.
async fn store(mut held: HeldLease, mut stored: Stored) -> Outcome {
    // The handler has run: from here a dropped request must not release the key for a re-run.
    held.disarm();
    let held = &held;
    let complete = |result: JsonMap| {
        held.backend().complete(CompleteRequest::new(
            held.key(),
            held.lease_id(),
            Some(result),
        ))
    };
    let mut outcome = complete(stored.to_result()).await;
    if let Err(reason) = &outcome
        && reason.is_content_refused()
        && stored.body.is_some()
    {
        tracing::warn!(%reason, "stored response refused; storing it without its body");
        stored.body = None;
        outcome = complete(stored.to_result()).await;
    }
    match outcome {
        Ok(_) => Outcome::Executed,
        // Its message names the key; the span carries the key's hash instead.
        Err(Error::LeaseLost { .. }) => {
            tracing::warn!(
                "the lease passed to another request before the response was stored; it was not stored"
            );
            Outcome::LeaseLost
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                "could not store the response; duplicates get 409 until the lease expires, then run again"
            );
            Outcome::Executed
        }
    }
}

/// The stored response again (`replayed`), or `422` when the body differs (`failed`).
fn replay<B>(
    config: &Config,
    result: Option<JsonMap>,
    (fingerprint, body): (&str, &[u8]),
    found: &FoundKey,
    trace: &mut Trace,
) -> Response<ResponseBody<B>> {
    trace.outcome(Outcome::Failed);
    let Some(stored) = Stored::from_result(result) else {
        return response::detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "idempotency key `{}` was already used for a different kind of request",
                found.id_lossy()
            ),
        );
    };
    // Responses stored by earlier releases carry the fingerprint of the body alone.
    if stored.fingerprint != fingerprint && stored.fingerprint != body_only_fingerprint(body) {
        return different_body(found);
    }
    trace.outcome(Outcome::Replayed);
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut res = match stored.body.as_deref().map(|b| BASE64.decode(b)) {
        Some(Ok(body)) => {
            let mut res = Response::new(ResponseBody::full(Bytes::from(body)));
            *res.status_mut() = status;
            for (name, value) in &stored.headers {
                if let (Ok(name), Some(value)) =
                    (HeaderName::from_bytes(name.as_bytes()), header_value(value))
                {
                    res.headers_mut().append(name, value);
                }
            }
            res
        }
        _ => response::json(
            status,
            &json!({
                "status": "replayed",
                "key": found.id_lossy(),
                "detail": match stored.body_len {
                    0 => format!(
                        "the original response body was larger than {} bytes and was not stored; only its status is replayed",
                        config.max_response_bytes
                    ),
                    len => format!(
                        "the original response body ({len} bytes) was too large to store; only its status is replayed"
                    ),
                },
            }),
        ),
    };
    res.headers_mut()
        .insert(IDEMPOTENCY_REPLAYED, HeaderValue::from_static("true"));
    res.headers_mut()
        .insert(ONCEONLY_STATUS, HeaderValue::from_static(status::REPLAYED));
    res
}

/// Whether the lease is held by a request whose body differs from this one. `false` when the
/// backend does not show the holder's metadata: the caller then gets `409` and, on its retry,
/// the `422` from the stored response.
fn held_for_another_body(lease: &Lease, fingerprint: &str) -> bool {
    lease
        .metadata
        .as_ref()
        .and_then(|m| m.get(FINGERPRINT))
        .and_then(|f| f.as_str())
        .is_some_and(|held| held != fingerprint)
}

/// `422`: the key was used with a different request (body, path or query).
fn different_body<B>(found: &FoundKey) -> Response<ResponseBody<B>> {
    response::detail(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!(
            "idempotency key `{}` was already used with a different request body, path or query",
            found.id_lossy()
        ),
    )
}

/// `409` with `Retry-After`: the first request is still running or just gave the key back
/// (`waited`); `409` without it when an earlier request failed for good (`failed`).
fn conflict<B>(lease: &Lease, found: &FoundKey, trace: &mut Trace) -> Response<ResponseBody<B>> {
    let id = found.id_lossy();
    let (detail, retry) = match lease.status {
        RunStatus::Failed if !lease.retryable => (
            format!(
                "an earlier request with idempotency key `{id}` failed for good ({})",
                lease.error_code.as_deref().unwrap_or("unknown")
            ),
            None,
        ),
        _ => (
            format!("a request with idempotency key `{id}` is being processed; retry later"),
            Some(lease.retry_after_sec.unwrap_or(1)),
        ),
    };
    let mut res = response::detail(StatusCode::CONFLICT, detail);
    trace.outcome(Outcome::Failed);
    if let Some(secs) = retry {
        trace.outcome(Outcome::Waited);
        res = response::retry_after(res, secs);
    }
    res.headers_mut().insert(
        ONCEONLY_STATUS,
        HeaderValue::from_static(status::IN_PROGRESS),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_the_hex_sha256_of_target_and_body() {
        // printf '/a?b=1\0abc' | sha256sum
        assert_eq!(
            fingerprint("/a?b=1", b"abc"),
            "28e107a2a63c78d7d25c78d8caabdfcffb564ab116184dc8906624392eebe2b6"
        );
        assert_ne!(fingerprint("/a", b"bc"), fingerprint("/ab", b"c"));
        // What earlier releases stored, still recognized: the body's SHA-256 alone.
        assert_eq!(
            body_only_fingerprint(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(fingerprint("/a?x=1", b""), fingerprint("/a?x=2", b""));
    }

    #[test]
    fn header_values_are_kept_byte_for_byte() {
        for bytes in [
            &b"text/plain"[..],
            "/things/ü".as_bytes(),
            b"/caf\xe9",
            b"a\tb",
        ] {
            let value = HeaderValue::from_bytes(bytes).unwrap();
            let text = header_text(&value);
            assert_eq!(header_value(&text).unwrap().as_bytes(), bytes);
        }
        assert_eq!(header_text(&HeaderValue::from_static("abc")), "abc");
        assert!(
            header_value("ā").is_none(),
            "beyond one byte: not something we wrote"
        );
    }

    #[test]
    fn stored_statuses() {
        for ok in [200, 201, 204, 301, 400, 404, 410, 422] {
            assert!(is_stored(StatusCode::from_u16(ok).unwrap()), "{ok}");
        }
        for not in [408, 409, 425, 429, 500, 502, 503] {
            assert!(!is_stored(StatusCode::from_u16(not).unwrap()), "{not}");
        }
    }

    #[test]
    fn stored_responses_round_trip_and_reject_foreign_results() {
        let stored = Stored {
            format: FORMAT.into(),
            fingerprint: fingerprint("/", b"{}"),
            status: 201,
            headers: vec![("content-type".into(), "application/octet-stream".into())],
            body: Some(BASE64.encode([0u8, 159, 146, 150, 255])),
            body_len: 5,
        };
        let back = Stored::from_result(Some(stored.to_result())).unwrap();
        assert_eq!(
            BASE64.decode(back.body.unwrap()).unwrap(),
            [0, 159, 146, 150, 255]
        );
        let foreign = json!({"value": "sent"}).as_object().cloned();
        assert!(Stored::from_result(foreign).is_none());
    }
}
