//! Calling a registered tool's URL: a signed `POST`, bounded in time, retried a few times,
//! never redirected, only to allowed hosts.
//!
//! What a call does, in order:
//! 1. The URL's host must be on the [`ToolHosts`] allow-list, or the call is refused
//!    (`tool_host_not_allowed`) before any connection is made.
//! 2. The body is serialized once; every attempt sends the same bytes with
//!    `Content-Type: application/json`, `X-OnceOnly-Signature` (lowercase hex HMAC-SHA256 of
//!    those bytes, keyed with the tool's secret), `X-OnceOnly-Signature-Alg: hmac_sha256` and
//!    `X-OnceOnly-Timestamp` (unix seconds when the attempt starts).
//! 3. Each attempt may take the tool's `timeout_ms`, connection and whole answer included.
//! 4. Retried, up to the tool's `max_retries` times: timeouts, transport failures (connection
//!    refused or reset, DNS, TLS, an answer cut short), `429` and `5xx`. The pause before
//!    retry `n` (from 0) is 100 ms × 2ⁿ, capped at 1 s, less a random part of up to a half;
//!    a `Retry-After` in seconds on the `429`/`5xx` lengthens it, up to 2 s.
//!    Not retried: other `4xx`, `3xx` (redirects are not followed: the allow-list applies to
//!    the registered URL, and a redirect could leave it), and bad answers.
//! 5. A `2xx` answer is read up to 1 MiB. A JSON object is the result; an empty body is the
//!    empty object; any other JSON value `v` becomes `{"result": v}`; a body that is not JSON
//!    (or is larger) is `tool_bad_response`. Tools are expected to answer JSON objects.
//!
//! A [`ToolFailure`] says what went wrong in a short code and a sentence; neither ever
//! contains the secret.

use std::fmt;
use std::sync::Arc;
#[cfg(feature = "http")]
use std::sync::OnceLock;
use std::time::Duration;

use super::{StoredTool, ToolHosts};
use crate::error::JsonMap;

/// Largest answer body read from a tool (1 MiB).
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// The first pause between attempts; doubled each retry.
#[cfg(feature = "http")]
const BASE_DELAY: Duration = Duration::from_millis(100);
/// The longest computed pause between attempts.
#[cfg(feature = "http")]
const MAX_DELAY: Duration = Duration::from_secs(1);
/// The longest pause a tool's `Retry-After` can ask for.
#[cfg(feature = "http")]
const MAX_RETRY_AFTER: Duration = Duration::from_secs(2);
/// How much of an error answer's body a failure message quotes, in characters.
#[cfg(feature = "http")]
const ERROR_EXCERPT_CHARS: usize = 200;

/// What went wrong with a tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ToolFailureKind {
    /// The URL's host is not on the allow-list; nothing was sent.
    HostNotAllowed,
    /// The last attempt took longer than the tool's `timeout_ms`.
    Timeout,
    /// The last attempt could not connect, or the exchange broke off.
    Unreachable,
    /// The tool answered with a status that is not `2xx`.
    HttpError {
        /// The status of the last answer.
        status: u16,
    },
    /// The tool answered `2xx` with a body that is not JSON or is too large.
    BadResponse,
    /// This build cannot make HTTP calls (the runtime's `http` feature is off).
    HttpDisabled,
}

impl ToolFailureKind {
    /// The short machine code: `tool_host_not_allowed`, `tool_timeout`, `tool_unreachable`,
    /// `tool_http_error`, `tool_bad_response` or `tool_http_disabled`.
    pub fn code(self) -> &'static str {
        match self {
            ToolFailureKind::HostNotAllowed => "tool_host_not_allowed",
            ToolFailureKind::Timeout => "tool_timeout",
            ToolFailureKind::Unreachable => "tool_unreachable",
            ToolFailureKind::HttpError { .. } => "tool_http_error",
            ToolFailureKind::BadResponse => "tool_bad_response",
            ToolFailureKind::HttpDisabled => "tool_http_disabled",
        }
    }
}

/// A tool call that did not produce a result: a [kind](ToolFailureKind) with its short
/// machine code, a sentence for people, and how many attempts were made. Never contains the
/// tool's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolFailure {
    kind: ToolFailureKind,
    message: String,
    attempts: u32,
}

impl ToolFailure {
    fn new(kind: ToolFailureKind, message: String, attempts: u32, tool: &StoredTool) -> Self {
        use secrecy::ExposeSecret;
        // A tool (or a proxy) could quote the secret back in an answer we cite.
        let message = message.replace(tool.secret().expose_secret(), "***");
        ToolFailure {
            kind,
            message,
            attempts,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ToolFailureKind {
        self.kind
    }

    /// The short machine code, e.g. `tool_timeout` (see [`ToolFailureKind::code`]).
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The status of the tool's last answer, for `tool_http_error`.
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            ToolFailureKind::HttpError { status } => Some(status),
            _ => None,
        }
    }

    /// A sentence for people: which tool, what happened.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How many requests were sent (0 when the call was refused before sending).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

impl fmt::Display for ToolFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message)
    }
}

impl std::error::Error for ToolFailure {}

/// Calls registered tools over HTTP. Cheap to clone; the HTTP client (one connection pool)
/// is built on the first call.
#[derive(Clone)]
pub struct ToolCaller {
    inner: Arc<Inner>,
}

struct Inner {
    hosts: ToolHosts,
    #[cfg(feature = "http")]
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl fmt::Debug for ToolCaller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolCaller")
            .field("hosts", &self.inner.hosts)
            .finish_non_exhaustive()
    }
}

impl ToolCaller {
    /// A caller that calls tools only on `hosts`.
    pub fn new(hosts: ToolHosts) -> Self {
        ToolCaller {
            inner: Arc::new(Inner {
                hosts,
                #[cfg(feature = "http")]
                client: OnceLock::new(),
            }),
        }
    }

    /// The allow-list.
    pub fn hosts(&self) -> &ToolHosts {
        &self.inner.hosts
    }

    /// POSTs `body`, signed, to `tool`'s URL and returns the tool's JSON answer (see the
    /// [module documentation](self) for the rules). The caller decides the body's shape.
    pub async fn call(&self, tool: &StoredTool, body: &JsonMap) -> Result<JsonMap, ToolFailure> {
        let url = self.target(tool)?;
        self.send(tool, url, body).await
    }

    /// The URL `tool` would be called on, or why it cannot be: unusable, or its host is not
    /// on the allow-list. Nothing is sent; governance asks this before charging a call.
    pub fn target(&self, tool: &StoredTool) -> Result<url::Url, ToolFailure> {
        let url = match url::Url::parse(&tool.url) {
            Ok(url) => url,
            Err(e) => {
                let msg = format!("tool `{}` has an unusable url: {e}", tool.name);
                return Err(ToolFailure::new(ToolFailureKind::Unreachable, msg, 0, tool));
            }
        };
        if !self.inner.hosts.allows(&url) {
            return Err(ToolFailure::new(
                ToolFailureKind::HostNotAllowed,
                not_allowed_message(&tool.name, &url),
                0,
                tool,
            ));
        }
        Ok(url)
    }

    #[cfg(not(feature = "http"))]
    async fn send(
        &self,
        tool: &StoredTool,
        _url: url::Url,
        _body: &JsonMap,
    ) -> Result<JsonMap, ToolFailure> {
        let msg = format!(
            "tool `{}` cannot be called: this build of onceonly-runtime has no HTTP client \
             (enable its `http` feature)",
            tool.name
        );
        Err(ToolFailure::new(
            ToolFailureKind::HttpDisabled,
            msg,
            0,
            tool,
        ))
    }

    #[cfg(feature = "http")]
    async fn send(
        &self,
        tool: &StoredTool,
        url: url::Url,
        body: &JsonMap,
    ) -> Result<JsonMap, ToolFailure> {
        let client = match self.client() {
            Ok(client) => client,
            Err(e) => {
                let msg = format!("tool `{}` cannot be called: {e}", tool.name);
                return Err(ToolFailure::new(ToolFailureKind::Unreachable, msg, 0, tool));
            }
        };
        let bytes = serde_json::to_vec(body).expect("a JSON object always serializes");
        let timeout = Duration::from_millis(tool.timeout_ms);
        let mut retry = 0;
        loop {
            let attempts = retry + 1;
            let attempt = exchange::attempt(client, tool, &url, &bytes);
            let outcome = match tokio::time::timeout(timeout, attempt).await {
                Ok(outcome) => outcome,
                Err(_) => exchange::Outcome::Retry {
                    kind: ToolFailureKind::Timeout,
                    message: format!(
                        "tool `{}` did not answer within {} ms",
                        tool.name, tool.timeout_ms
                    ),
                    retry_after: None,
                },
            };
            match outcome {
                exchange::Outcome::Done(result) => return Ok(result),
                exchange::Outcome::Fail { kind, message } => {
                    return Err(ToolFailure::new(kind, message, attempts, tool));
                }
                exchange::Outcome::Retry {
                    kind,
                    message,
                    retry_after,
                } => {
                    if retry >= tool.max_retries {
                        let message = if retry > 0 {
                            format!("{message} (after {attempts} attempts)")
                        } else {
                            message
                        };
                        return Err(ToolFailure::new(kind, message, attempts, tool));
                    }
                    tracing::debug!(tool = %tool.name, attempt = attempts, %message, "retrying a tool call");
                    tokio::time::sleep(exchange::delay(retry, retry_after)).await;
                    retry += 1;
                }
            }
        }
    }

    #[cfg(feature = "http")]
    fn client(&self) -> Result<&reqwest::Client, &str> {
        self.inner
            .client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("onceonly-runtime/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| format!("the HTTP client could not be built: {e}"))
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

fn not_allowed_message(tool: &str, url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    let entry = match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    format!(
        "tool `{tool}`: host `{entry}` is not on the tool host allow-list, so it was not called; \
         allow it with `onceonly-server --allow-tool-host {entry}` (or \
         ONCEONLY_SERVER_TOOL_HOSTS={entry}), or with the `allow_tool_host` setting of \
         `EngineConfig` in embedded mode"
    )
}

/// One attempt over reqwest, and what to make of its answer.
#[cfg(feature = "http")]
mod exchange {
    use std::time::Duration;

    use reqwest::StatusCode;
    use reqwest::header::{CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER};
    use secrecy::ExposeSecret;
    use serde_json::Value;

    use super::{
        BASE_DELAY, ERROR_EXCERPT_CHARS, MAX_DELAY, MAX_RESPONSE_BYTES, MAX_RETRY_AFTER,
        ToolFailureKind,
    };
    use crate::error::JsonMap;
    use crate::tools::StoredTool;
    use crate::tools::signature::{signature_hex, unix_now};
    use crate::wire::{SIGNATURE_ALGORITHM, header};

    pub(super) enum Outcome {
        Done(JsonMap),
        Fail {
            kind: ToolFailureKind,
            message: String,
        },
        Retry {
            kind: ToolFailureKind,
            message: String,
            retry_after: Option<Duration>,
        },
    }

    pub(super) async fn attempt(
        client: &reqwest::Client,
        tool: &StoredTool,
        url: &url::Url,
        body: &[u8],
    ) -> Outcome {
        let signature = signature_hex(tool.secret().expose_secret().as_bytes(), body);
        let request = client
            .post(url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(header::SIGNATURE, signature)
            .header(
                header::SIGNATURE_ALG,
                HeaderValue::from_static(SIGNATURE_ALGORITHM),
            )
            .header(header::TIMESTAMP, unix_now())
            .body(body.to_vec());
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return unreachable(tool, &e),
        };
        let status = response.status();
        if status.is_success() {
            return match read_capped(&mut response, MAX_RESPONSE_BYTES).await {
                Ok(Some(bytes)) => result(tool, status, &bytes),
                Ok(None) => Outcome::Fail {
                    kind: ToolFailureKind::BadResponse,
                    message: format!(
                        "tool `{}` answered {status} with a body larger than {MAX_RESPONSE_BYTES} bytes",
                        tool.name
                    ),
                },
                Err(e) => unreachable(tool, &e),
            };
        }
        let retry_after = retry_after(&response);
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Quote the start of the answer; a body that cannot be read is not worth more.
        let excerpt = match read_capped(&mut response, 4 * ERROR_EXCERPT_CHARS).await {
            Ok(Some(bytes)) => excerpt(&bytes),
            _ => String::new(),
        };
        let kind = ToolFailureKind::HttpError {
            status: status.as_u16(),
        };
        let mut message = format!("tool `{}` answered {status}", tool.name);
        if status.is_redirection() {
            message.push_str(&format!(
                " redirecting to `{}`; redirects are not followed (the tool host allow-list \
                 applies to the registered url)",
                location.as_deref().unwrap_or("?")
            ));
        } else if !excerpt.is_empty() {
            message.push_str(&format!(": {excerpt}"));
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Outcome::Retry {
                kind,
                message,
                retry_after,
            }
        } else {
            Outcome::Fail { kind, message }
        }
    }

    /// A failed exchange: always worth another attempt.
    fn unreachable(tool: &StoredTool, e: &reqwest::Error) -> Outcome {
        let what = if e.is_connect() {
            "could not connect to"
        } else {
            "lost the connection to"
        };
        Outcome::Retry {
            kind: ToolFailureKind::Unreachable,
            message: format!(
                "tool `{}`: {what} {}: {}",
                tool.name,
                tool.url,
                root_cause(e)
            ),
            retry_after: None,
        }
    }

    fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
        let mut cause = e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        cause.to_string()
    }

    /// The answer of a `2xx`: an object as is, nothing as `{}`, another JSON value `v` as
    /// `{"result": v}`.
    fn result(tool: &StoredTool, status: StatusCode, bytes: &[u8]) -> Outcome {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Outcome::Done(JsonMap::new());
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Outcome::Done(map),
            Ok(other) => {
                let mut map = JsonMap::new();
                map.insert("result".into(), other);
                Outcome::Done(map)
            }
            Err(e) => Outcome::Fail {
                kind: ToolFailureKind::BadResponse,
                message: format!(
                    "tool `{}` answered {status} with a body that is not JSON ({e}): {}",
                    tool.name,
                    excerpt(bytes)
                ),
            },
        }
    }

    /// The body, or `None` when it is longer than `limit` bytes.
    async fn read_capped(
        response: &mut reqwest::Response,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, reqwest::Error> {
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Ok(None);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > limit {
                return Ok(None);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }

    /// The first characters of a body, on one line.
    fn excerpt(bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes);
        let mut out: String = text
            .chars()
            .take(ERROR_EXCERPT_CHARS)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if text.chars().count() > ERROR_EXCERPT_CHARS {
            out.push('…');
        }
        out.trim().to_owned()
    }

    fn retry_after(response: &reqwest::Response) -> Option<Duration> {
        let secs: u64 = response
            .headers()
            .get(RETRY_AFTER)?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
    }

    /// The pause before retry `retry` (from 0): 100 ms × 2ⁿ capped at 1 s, less up to half at
    /// random; at least the tool's `Retry-After` (itself capped at 2 s).
    pub(super) fn delay(retry: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = BASE_DELAY
            .saturating_mul(1u32 << retry.min(16))
            .min(MAX_DELAY);
        let jittered = backoff.mul_f64(1.0 - rand::random::<f64>() / 2.0);
        jittered.max(retry_after.unwrap_or_default())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn delays_are_bounded() {
            for retry in 0..20 {
                let d = delay(retry, None);
                assert!(d <= MAX_DELAY, "{d:?}");
                assert!(d >= BASE_DELAY / 2, "{d:?}");
            }
            assert_eq!(
                delay(0, Some(Duration::from_secs(2))),
                Duration::from_secs(2)
            );
        }

        #[test]
        fn excerpts_are_short_and_on_one_line() {
            let e = excerpt("line one\nline two".as_bytes());
            assert_eq!(e, "line one line two");
            let long = excerpt("x".repeat(1000).as_bytes());
            assert_eq!(long.chars().count(), ERROR_EXCERPT_CHARS + 1);
        }
    }
}
