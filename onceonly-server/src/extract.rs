//! Extractors whose rejections are JSON error answers, never axum's plain-text bodies.
//!
//! Bodies are read as bytes and parsed as JSON whatever the `Content-Type` (the official SDKs
//! always send `application/json`; curl users often do not). Parse errors name the field
//! (`ttl: invalid type: string "x", expected ...`) and answer 422, like the hosted API's
//! validation errors, so the SDKs raise their `ValidationError`. A body must arrive in full
//! within the body timeout, or the answer is 408 (and the connection is closed).

use axum::body::{Bytes, HttpBody};
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON request body.
pub(crate) struct JsonBody<T>(pub T);

/// A JSON request body that may be left out: an empty body reads as `T::default()`. For
/// bodies whose every member is optional (`{"reason"?}`), which a `curl -X POST` sends none of.
pub(crate) struct OptionalBody<T>(pub T);

/// Parses `bytes` as a `T`, naming the offending field in the error.
///
/// Every body of the API is an object. serde would also read a struct from an array of its
/// fields in order (`["k"]` as `{"key": "k"}`), so anything else is refused before parsing.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::validation(
            "the request body must be a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(invalid_body)?;
    de.end()
        .map_err(|e| ApiError::validation(format!("invalid JSON body: {e}")))?;
    Ok(value)
}

/// Reads an already parsed body (or part of one) as a `T`, with the errors of [`parse_json`].
pub(crate) fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(invalid_body)
}

fn invalid_body(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if path == "." || path == "?" || path.is_empty() {
        ApiError::validation(format!("invalid JSON body: {inner}"))
    } else {
        ApiError::validation(format!("invalid JSON body: {path}: {inner}"))
    }
}

impl<T, S> FromRequest<AppState<S>> for JsonBody<T>
where
    T: DeserializeOwned,
    S: onceonly_runtime::store::Store,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState<S>) -> Result<Self, Self::Rejection> {
        parse_json(&read_body(req, state).await?).map(JsonBody)
    }
}

impl<T, S> FromRequest<AppState<S>> for OptionalBody<T>
where
    T: DeserializeOwned + Default,
    S: onceonly_runtime::store::Store,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState<S>) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalBody(T::default()));
        }
        parse_json(&bytes).map(OptionalBody)
    }
}

/// A request's whole body, within the body limit and the body timeout.
async fn read_body<S: onceonly_runtime::store::Store>(
    req: Request,
    state: &AppState<S>,
) -> Result<Bytes, ApiError> {
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map_or(state.body_limit, |l| l.0);
    // A body announced over the limit is refused from the head, without waiting for it.
    let announced = req.body().size_hint().lower();
    if announced > limit as u64 {
        if announced <= (limit as u64).saturating_add(DRAIN_MAX) {
            drain(req.into_body(), announced, state.body_timeout).await;
        }
        return Err(ApiError::payload_too_large(limit));
    }
    // A deadline for the whole body: tower-http's body timeout restarts on every chunk,
    // which a client sending a byte at a time never lets expire.
    let bytes = tokio::time::timeout(state.body_timeout, Bytes::from_request(req, state))
        .await
        .map_err(|_| {
            state.metrics.connections.body_timed_out();
            tracing::debug!(
                timeout_secs = state.body_timeout.as_secs_f64(),
                "request body timeout"
            );
            ApiError::body_timeout(state.body_timeout)
        })?
        .map_err(|e| body_rejection(&e, limit))?;
    Ok(bytes)
}

/// How far over the limit an announced body may be and still be read (and dropped) before the
/// 413. The server closes a connection whose body it did not read; a client still sending
/// such a body may then get a reset instead of the answer, so a body near the limit (a client
/// that misjudged it) is read first. A larger one is refused from its head alone.
const DRAIN_MAX: u64 = 1 << 20;

/// Reads and drops at most `max` bytes of `body`, within `timeout`.
async fn drain(mut body: axum::body::Body, max: u64, timeout: std::time::Duration) {
    let _ = tokio::time::timeout(timeout, async move {
        let mut read = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.data_ref().map_or(0, |d| d.len() as u64);
            if read > max {
                break;
            }
        }
    })
    .await;
}

/// A route's own body limit, when it differs from the server's (set beside its
/// `DefaultBodyLimit`), so a 413 names the limit that applied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub(crate) usize);

fn body_rejection(e: &BytesRejection, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large(limit)
    } else {
        ApiError::coded(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
    }
}

/// Query parameters; bad or missing ones answer 422.
pub(crate) struct QueryParams<T>(pub T);

impl<T, S> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // The form decoder replaces bytes that are not UTF-8 with U+FFFD, so `?key=%FF` and
        // `?key=%FE` would read as one key. A path segment refuses them; so does a query.
        let query = parts.uri.query().unwrap_or_default();
        if percent_encoding::percent_decode_str(query)
            .decode_utf8()
            .is_err()
        {
            return Err(ApiError::validation(
                "invalid query: a percent-encoded value is not UTF-8",
            ));
        }
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| QueryParams(q))
            .map_err(|e| ApiError::validation(format!("invalid query: {}", e.body_text())))
    }
}

/// One percent-decoded path segment; undecodable ones answer 422.
pub(crate) struct Segment(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Segment {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(s)| Segment(s))
            .map_err(|e| ApiError::validation(format!("invalid path: {}", e.body_text())))
    }
}
