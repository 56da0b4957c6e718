//! The middlewares' own answers: small JSON bodies, `{"detail": ...}` for refusals.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::body::ResponseBody;

/// A JSON response with `value` as its body.
pub(crate) fn json<B>(status: StatusCode, value: &Value) -> Response<ResponseBody<B>> {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut res = Response::new(ResponseBody::full(Bytes::from(bytes)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// `{"detail": detail}` with `status`.
pub(crate) fn detail<B>(status: StatusCode, detail: impl Into<Value>) -> Response<ResponseBody<B>> {
    json(status, &json!({ "detail": detail.into() }))
}

/// Adds `Retry-After: secs` (at least one second).
pub(crate) fn retry_after<B>(mut res: Response<B>, secs: u64) -> Response<B> {
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
    res
}

/// 413 with a detail naming the limit.
pub(crate) fn too_large<B>(limit: usize) -> Response<ResponseBody<B>> {
    detail(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than the limit of {limit} bytes"),
    )
}

/// 400 for a request body that could not be read.
pub(crate) fn unreadable<B>(error: &dyn std::fmt::Display) -> Response<ResponseBody<B>> {
    detail(
        StatusCode::BAD_REQUEST,
        format!("could not read the request body: {error}"),
    )
}
