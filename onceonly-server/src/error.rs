//! Error answers. Every error leaves the server as JSON `{"detail": ...}` with the status the
//! official SDKs classify correctly: 401/403 for keys, 402 for plan limits,
//! 409 for lost leases, 422 for validation, 404 for what does not exist (a policy, a tool, a
//! path), 405/413 for requests that miss the API, 408
//! for a body that does not arrive in time.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use onceonly_runtime::Error;
use onceonly_runtime::models::OverLimit;
use onceonly_runtime::wire::Refusal;
use serde_json::{Value, json};

/// An error answer: a status and the `detail` of its JSON body.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    detail: Value,
    retry_after: Option<u64>,
    /// Whether the answer ends the connection (`Connection: close`).
    close: bool,
}

/// The message of a `503 store_unavailable` for a store that failed.
pub(crate) const STORE_UNAVAILABLE: &str = "the store is unavailable; retry later";

impl ApiError {
    /// An answer with `status` and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<Value>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
            retry_after: None,
            close: false,
        }
    }

    /// `{"detail": {"error": code, "message": message}}`.
    pub fn coded(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError::new(status, json!({"error": code, "message": message.into()}))
    }

    /// 503 `store_unavailable`: the store failed or did not answer in time.
    pub fn store_unavailable(message: impl Into<String>) -> Self {
        ApiError::coded(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            message,
        )
    }

    /// 401: no usable `Authorization: Bearer` header.
    pub fn missing_token() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Missing Authorization Bearer token",
        )
    }

    /// 403: a bearer token that is no configured key.
    pub fn invalid_key() -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "Invalid API key")
    }

    /// 422 with a human-readable message.
    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message.into())
    }

    /// 404 for a path the API does not have.
    pub fn unknown_path(method: &str, path: &str) -> Self {
        ApiError::coded(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such endpoint: {method} {path}"),
        )
    }

    /// 405 for a known path called with the wrong method.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        ApiError::coded(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{path} does not accept {method}"),
        )
    }

    /// 413 for a body over the limit.
    pub fn payload_too_large(limit: usize) -> Self {
        ApiError::coded(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    /// 402 with the body the hosted API documents for a plan limit, plus what the refusal
    /// knows (bucket, month).
    pub fn over_limit(refusal: &OverLimit) -> Self {
        let mut detail = refusal.detail.clone();
        let mut put = |name: &str, value: Value| {
            detail.entry(name).or_insert(value);
        };
        put("error", "payment_required".into());
        put("highlights", "Plan limit reached".into());
        put("message", refusal.to_string().into());
        put("type", "limit_reached".into());
        put("upgrade_url", "".into());
        for (name, value) in [
            ("plan", refusal.plan.clone().map(Value::from)),
            ("kind", refusal.kind.map(|k| k.as_str().into())),
            ("month", refusal.period.clone().map(Value::from)),
            ("limit", refusal.limit.map(Value::from)),
            ("usage", refusal.usage.map(Value::from)),
        ] {
            if let Some(value) = value {
                put(name, value);
            }
        }
        ApiError::new(StatusCode::PAYMENT_REQUIRED, detail)
    }

    /// 409 with `{"error": refusal, "message": .., ..fields}`.
    fn refusal(refusal: Refusal, message: &str, fields: Value) -> Self {
        let mut detail = json!({"error": refusal.as_str(), "message": message});
        if let (Some(d), Value::Object(fields)) = (detail.as_object_mut(), fields) {
            d.extend(fields);
        }
        ApiError::new(StatusCode::CONFLICT, detail)
    }

    /// 408 for a body that did not arrive in full within `timeout`. The rest of the body is
    /// not read, so the connection is closed.
    pub fn body_timeout(timeout: std::time::Duration) -> Self {
        let mut err = ApiError::coded(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} s",
                timeout.as_secs_f64()
            ),
        );
        err.close = true;
        err
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(json!({"detail": self.detail}))).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.close {
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        res
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Validation(msg) => ApiError::validation(msg),
            Error::OverLimit(refusal) => ApiError::over_limit(&refusal),
            Error::LeaseLost { key } => ApiError::refusal(
                Refusal::LeaseLost,
                "this lease id is no longer the current one for the key: its lease expired and \
                 another caller acquired it, or it ended",
                json!({"key": key}),
            ),
            Error::InProgress { key, retry_after } => {
                let mut err = ApiError::refusal(
                    Refusal::InProgress,
                    "another caller holds this key",
                    json!({"key": key}),
                );
                err.retry_after = retry_after.map(|d| d.as_secs().max(1));
                err
            }
            Error::PreviouslyFailed { key, error_code } => ApiError::refusal(
                Refusal::PreviouslyFailed,
                "an earlier execution of this key failed for good",
                json!({"key": key, "error_code": error_code}),
            ),
            Error::Conflict { key, reason } => {
                ApiError::refusal(Refusal::Conflict, &reason, json!({"key": key}))
            }
            Error::Blocked { reason, decision } => ApiError::refusal(
                Refusal::Blocked,
                "blocked by policy",
                json!({"policy_reason": reason, "decision": decision}),
            ),
            Error::NotFound { what } => {
                ApiError::coded(StatusCode::NOT_FOUND, "not_found", format!("no {what}"))
            }
            Error::Unauthorized { .. } => ApiError::invalid_key(),
            Error::QuotaExceeded(q) => {
                let err = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({
                        "error": onceonly_runtime::wire::QUOTA_EXCEEDED,
                        "message": q.to_string(),
                        "quota": q.quota,
                        "limit": q.limit,
                        "used": q.used,
                        "resets_at": q.resets_at,
                        "retry_after_sec": q.retry_after.as_secs().max(1),
                    }),
                );
                // No `Retry-After` header: a quota resets at midnight UTC, hours away, and
                // clients that retry 429s sleep for the header's whole value (the official
                // Python SDK would hang until midnight). The wait is in the body instead.
                err
            }
            Error::RateLimited { retry_after } => {
                let mut err = ApiError::coded(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many requests",
                );
                err.retry_after = Some(retry_after.map_or(1, |d| d.as_secs().max(1)));
                err
            }
            Error::Api { status, detail } => ApiError::new(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                detail,
            ),
            // Not a 503: the store answered, and a client must not fail open on a key that may
            // well be taken.
            e @ Error::Store(_) if e.is_damaged_data() => {
                tracing::error!(error = %e, "a stored value cannot be read back");
                ApiError::coded(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    onceonly_runtime::wire::STORE_DAMAGED,
                    "a stored value cannot be read back; see the server's log",
                )
            }
            Error::Store(e) => {
                tracing::error!(error = %e, "store failure");
                ApiError::store_unavailable(STORE_UNAVAILABLE)
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::coded(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal server error",
                )
            }
        }
    }
}
