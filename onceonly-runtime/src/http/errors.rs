//! Reading answers: the generic success parsing, the status → [`Error`] mapping,
//! `Retry-After`, and the classification of transport failures, as the official SDKs do them.
//!
//! Everything copied from a response into an error goes through [`Scrub`], so an upstream that
//! echoes the `Authorization` header back cannot leak the API key into an error message.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::error::{Error, JsonMap};

/// Longest piece of a non-JSON error body kept in [`Error::Api`]'s detail.
const MAX_TEXT_DETAIL: usize = 200;

/// Removes one secret from text copied out of responses.
#[derive(Clone, Copy)]
pub(crate) struct Scrub<'a>(pub(crate) &'a str);

impl Scrub<'_> {
    pub(crate) fn text(self, text: &str) -> String {
        if self.0.is_empty() || !text.contains(self.0) {
            return text.to_owned();
        }
        text.replace(self.0, "[redacted]")
    }

    pub(crate) fn value(self, mut value: Value) -> Value {
        self.in_place(&mut value);
        value
    }

    fn in_place(self, value: &mut Value) {
        match value {
            Value::String(s) if !self.0.is_empty() && s.contains(self.0) => *s = self.text(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.in_place(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.in_place(v)),
            _ => {}
        }
    }
}

/// The body as JSON, or `None` when it is empty or not JSON.
pub(crate) fn parse_json(body: &[u8]) -> Option<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    serde_json::from_slice(body).ok()
}

/// A 2xx body as a map: objects as they are, other JSON wrapped as `{"data": ..}`, and
/// empty, unparsable or falsy bodies (`null`, `false`, `0`, `""`) as `{}`.
pub(crate) fn success_map(body: &[u8]) -> JsonMap {
    match parse_json(body) {
        Some(Value::Object(map)) => map,
        Some(v) if truthy(&v) => JsonMap::from_iter([("data".to_owned(), v)]),
        _ => JsonMap::new(),
    }
}

/// [`success_map`] of an answer that has to be JSON when it has a body at all: a 2xx whose
/// body is not JSON (an HTML page from a captive portal or a proxy) did not come from the API,
/// so it is an error, not an empty answer that would read as a call that went through.
pub(crate) fn json_success_map(body: &[u8]) -> Result<JsonMap, serde_json::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(JsonMap::new());
    }
    let value: Value = serde_json::from_slice(body)?;
    Ok(match value {
        Value::Object(map) => map,
        v if truthy(&v) => JsonMap::from_iter([("data".to_owned(), v)]),
        _ => JsonMap::new(),
    })
}

/// JavaScript truthiness, which decides `success` in check-lock answers.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// The `detail` of an error body: the `detail` member of an object body, else the whole
/// JSON, else `None` for bodies that are not JSON.
pub(crate) fn detail(json: Option<Value>) -> Option<Value> {
    match json? {
        Value::Object(mut map) if map.contains_key("detail") => map.remove("detail"),
        other => Some(other),
    }
}

/// A human message from a detail (TypeScript rule: only non-blank strings count), with
/// FastAPI validation lists rendered as `body.key: Field required; ...`.
pub(crate) fn error_text(detail: Option<&Value>, default: impl FnOnce() -> String) -> String {
    let non_blank = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    match detail {
        Some(Value::Object(map)) => non_blank(map.get("error"))
            .or_else(|| non_blank(map.get("message")))
            .unwrap_or_else(default),
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(Value::Array(items)) => validation_list(items).unwrap_or_else(default),
        _ => default(),
    }
}

/// `[{"loc": ["body","key"], "msg": "Field required"}, ..]` → `body.key: Field required; ..`.
fn validation_list(items: &[Value]) -> Option<String> {
    let parts: Vec<String> = items
        .iter()
        .filter_map(|item| {
            let msg = item.get("msg")?.as_str()?;
            let loc = item
                .get("loc")
                .and_then(Value::as_array)
                .map(|loc| {
                    loc.iter()
                        .map(|p| match p {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(".")
                })
                .unwrap_or_default();
            Some(if loc.is_empty() {
                msg.to_owned()
            } else {
                format!("{loc}: {msg}")
            })
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// `Retry-After` in seconds: a decimal number, trimmed; negative values count as zero;
/// an HTTP date, a blank or an unparsable value counts as absent.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = raw.trim().parse().ok()?;
    if !secs.is_finite() {
        return None;
    }
    Some(Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX))
}

/// Whether a 403 detail means "this API key is not accepted" (TypeScript SDK rule).
fn is_key_problem(detail: Option<&Value>) -> bool {
    const STRINGS: [&str; 3] = ["forbidden", "invalid api key", "api key disabled"];
    const CODES: [&str; 3] = ["invalid_api_key", "api_key_disabled", "forbidden"];
    let lower = |v: Option<&Value>| v.and_then(Value::as_str).map(|s| s.trim().to_lowercase());
    match detail {
        Some(Value::String(s)) => STRINGS.contains(&s.trim().to_lowercase().as_str()),
        Some(Value::Object(map)) => {
            lower(map.get("error")).is_some_and(|e| CODES.contains(&e.as_str()))
                || lower(map.get("message")).is_some_and(|m| STRINGS.contains(&m.as_str()))
        }
        _ => false,
    }
}

/// Whether a retryable status is final all the same: a quota refusal changes nothing before
/// its reset, hours away, and a damaged stored value nothing before it is repaired, so
/// retrying them only delays the error.
pub(crate) fn is_final(status: u16, body: &[u8]) -> bool {
    let detail = detail(parse_json(body));
    matches!(
        (status, error_code(detail.as_ref())),
        (429, Some(crate::wire::QUOTA_EXCEEDED)) | (500, Some(crate::wire::STORE_DAMAGED))
    )
}

/// `detail.error`, the machine-readable code of an error answer.
pub(crate) fn error_code(detail: Option<&Value>) -> Option<&str> {
    detail?.get("error")?.as_str()
}

/// The detail kept in [`Error::Api`]: the JSON detail, or the start of a text body.
fn api_detail(json_detail: Option<Value>, body: &[u8]) -> Value {
    if let Some(d) = json_detail {
        return d;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return Value::Null;
    }
    let mut end = text.len().min(MAX_TEXT_DETAIL);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Value::String(text[..end].to_owned())
}

/// The generic mapping of a non-2xx answer, with the TypeScript SDK's finer 403 rule.
pub(crate) fn status_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    scrub: Scrub<'_>,
) -> Error {
    let json = parse_json(body).map(|v| scrub.value(v));
    let detail = detail(json);
    match status {
        401 => Error::Unauthorized {
            detail: error_text(detail.as_ref(), || "Invalid API Key (Unauthorized).".into()),
        },
        403 if error_code(detail.as_ref()) == Some("feature_not_available") => Error::Api {
            status,
            detail: detail.unwrap_or(Value::Null),
        },
        403 if is_key_problem(detail.as_ref()) => Error::Unauthorized {
            detail: error_text(detail.as_ref(), || "Invalid API Key (Unauthorized).".into()),
        },
        402 => Error::OverLimit(Box::new(crate::models::OverLimit::from_detail(
            match detail {
                Some(Value::Object(d)) => d,
                _ => JsonMap::new(),
            },
        ))),
        429 if error_code(detail.as_ref()) == Some(crate::wire::QUOTA_EXCEEDED) => {
            let d = detail.as_ref().and_then(Value::as_object);
            Error::QuotaExceeded(Box::new(crate::models::QuotaExceeded::from_detail(
                d,
                retry_after(headers),
            )))
        }
        429 => Error::RateLimited {
            retry_after: retry_after(headers),
        },
        422 => Error::Validation(error_text(detail.as_ref(), || {
            format!(
                "Validation Error: {}",
                scrub.text(&String::from_utf8_lossy(body))
            )
        })),
        // The server's store answered with a value it cannot read back: not an outage.
        500 if error_code(detail.as_ref()) == Some(crate::wire::STORE_DAMAGED) => {
            crate::store::StoreFailure::damaged(
                "onceonly-server",
                "request",
                error_text(detail.as_ref(), || {
                    "a stored value cannot be read back".into()
                }),
            )
        }
        _ => Error::Api {
            status,
            detail: api_detail(
                detail,
                &scrub.text(&String::from_utf8_lossy(body)).into_bytes(),
            ),
        },
    }
}

/// check-lock's own mapping: 401 and 403 are always [`Error::Unauthorized`].
pub(crate) fn check_lock_status_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    scrub: Scrub<'_>,
) -> Error {
    if status == 401 || status == 403 {
        let detail = detail(parse_json(body).map(|v| scrub.value(v)));
        return Error::Unauthorized {
            detail: error_text(detail.as_ref(), || "Invalid API Key (Unauthorized).".into()),
        };
    }
    status_error(status, headers, body, scrub)
}

/// A failed exchange: timeouts become [`Error::Timeout`], everything else (refused, reset,
/// DNS, TLS, a body cut short) [`Error::Transport`]. The fail-open rule of check-lock relies
/// on this split.
pub(crate) fn transport_error(e: reqwest::Error, timeout: Duration) -> Error {
    if e.is_timeout() {
        Error::Timeout(timeout)
    } else {
        // reqwest's messages carry the URL (never the key, which travels in a header).
        Error::Transport(Box::new(e.without_url()))
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderValue, RETRY_AFTER};
    use serde_json::json;

    use super::*;

    const NO_SECRET: Scrub<'static> = Scrub("");

    fn err(status: u16, body: &str) -> Error {
        status_error(status, &HeaderMap::new(), body.as_bytes(), NO_SECRET)
    }

    #[test]
    fn success_bodies() {
        assert_eq!(success_map(b""), JsonMap::new());
        assert_eq!(success_map(b"<html>"), JsonMap::new());
        for falsy in ["null", "false", "0", "\"\""] {
            assert_eq!(success_map(falsy.as_bytes()), JsonMap::new(), "{falsy}");
        }
        assert_eq!(Value::Object(success_map(b"[1]")), json!({"data": [1]}));
        assert_eq!(Value::Object(success_map(b"{\"a\":1}")), json!({"a": 1}));
    }

    #[test]
    fn forbidden_follows_the_typescript_rule() {
        for body in [
            r#"{"detail":"Invalid API key"}"#,
            r#"{"detail":" API key disabled "}"#,
            r#"{"detail":"forbidden"}"#,
            r#"{"detail":{"error":"invalid_api_key"}}"#,
            r#"{"detail":{"error":"x","message":"Invalid API key"}}"#,
        ] {
            assert!(
                matches!(err(403, body), Error::Unauthorized { .. }),
                "{body}"
            );
        }
        for body in [
            r#"{"detail":{"error":"plan_limit","message":"FREE plan limit: max 1 tools"}}"#,
            r#"{"detail":{"error":"x"}}"#,
            r#"{"detail":"nope"}"#,
            "<html>403</html>",
        ] {
            assert!(
                matches!(err(403, body), Error::Api { status: 403, .. }),
                "{body}"
            );
        }
        let Error::Api { detail, .. } = err(403, r#"{"detail":{"error":"feature_not_available"}}"#)
        else {
            panic!("feature_not_available is an API error")
        };
        assert_eq!(detail, json!({"error": "feature_not_available"}));
    }

    #[test]
    fn texts() {
        let Error::Unauthorized { detail } = err(401, "") else {
            panic!()
        };
        assert_eq!(detail, "Invalid API Key (Unauthorized).");
        let Error::Validation(msg) = err(
            422,
            r#"{"detail":[{"type":"missing","loc":["body","key"],"msg":"Field required","input":{}}]}"#,
        ) else {
            panic!()
        };
        assert_eq!(msg, "body.key: Field required");
        let Error::Validation(msg) = err(422, "bad things") else {
            panic!()
        };
        assert_eq!(msg, "Validation Error: bad things");
        let Error::OverLimit(refusal) = err(402, r#"{"detail":"x"}"#) else {
            panic!()
        };
        assert_eq!(*refusal, crate::models::OverLimit::default());
        let Error::OverLimit(refusal) = err(
            402,
            r#"{"detail":{"error":"payment_required","plan":"free","limit":1000,"usage":1001}}"#,
        ) else {
            panic!()
        };
        assert_eq!(refusal.plan.as_deref(), Some("free"));
        assert_eq!((refusal.limit, refusal.usage), (Some(1000), Some(1001)));
        assert_eq!(refusal.detail["error"], "payment_required");
    }

    #[test]
    fn html_bodies_keep_a_short_text_detail() {
        let page = format!(
            "<html>\n  <h1>502 Bad Gateway</h1>{}</html>",
            "x".repeat(500)
        );
        let Error::Api { status, detail } = err(502, &page) else {
            panic!()
        };
        assert_eq!(status, 502);
        let text = detail.as_str().unwrap();
        assert!(
            text.starts_with("<html> <h1>502 Bad Gateway</h1>"),
            "{text}"
        );
        assert_eq!(text.len(), MAX_TEXT_DETAIL);
    }

    #[test]
    fn retry_after_values() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            retry_after(&h)
        };
        assert_eq!(with("15"), Some(Duration::from_secs(15)));
        assert_eq!(with(" 1.5 "), Some(Duration::from_millis(1500)));
        assert_eq!(with("-3"), Some(Duration::ZERO));
        assert_eq!(with("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(with("   "), None);
        assert_eq!(with("NaN"), None);
        assert_eq!(with("inf"), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn secrets_are_scrubbed_from_copied_text() {
        let body = r#"{"detail":{"error":"bad header Bearer once_live_s3cr3t"}}"#;
        let e = status_error(
            400,
            &HeaderMap::new(),
            body.as_bytes(),
            Scrub("once_live_s3cr3t"),
        );
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        let e = status_error(
            500,
            &HeaderMap::new(),
            b"echo once_live_s3cr3t",
            Scrub("once_live_s3cr3t"),
        );
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    }
}
