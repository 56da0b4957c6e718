//! The HTTP backend: the hosted OnceOnly API, or a self-hosted `onceonly-server`.
//!
//! [`HttpBackend`] is a thin translation of [`Backend`] calls to the OnceOnly wire protocol.
//! It decides nothing: the lease state machine, check-lock and every other rule run on the far
//! side. What it does own is how the wire is spoken, and it speaks it the way the official
//! SDKs do, so a Rust service and a Python worker sharing one account see the same answers.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> onceonly_runtime::Result<()> {
//! use std::time::Duration;
//! use onceonly_runtime::OnceOnly;
//!
//! // The hosted API (https://api.onceonly.tech/v1) ...
//! let hosted = OnceOnly::new("once_live_...");
//! // ... or a self-hosted onceonly-server, with retries.
//! let client = OnceOnly::builder()
//!     .api_key("once_live_...")
//!     .base_url("http://127.0.0.1:8080")          // normalised to http://127.0.0.1:8080/v1
//!     .timeout(Duration::from_secs(5))
//!     .max_retries(3)
//!     .build()?;
//! let lock = client.check_lock("stripe:evt_123").await?;
//! if lock.should_proceed() { /* handle the event */ }
//! # Ok(()) }
//! ```
//!
//! # Transport
//! - One [`reqwest::Client`] per backend: connections are pooled and reused by every clone of
//!   the [`OnceOnly`](crate::OnceOnly) client. TLS is rustls.
//! - Every request carries `Authorization: Bearer <key>`, `Content-Type: application/json`
//!   (GET included) and `User-Agent: onceonly-rust/<version>`; check-lock adds `X-Request-Id`
//!   when one is given. Absent optional fields are omitted from bodies, never sent as `null`.
//!   Path segments (a run id, an agent id, a tool name) are percent-encoded, so `run x/y`
//!   travels as `run%20x%2Fy`; `.` and `..` are refused before sending.
//! - The base URL is normalised as the official SDKs do: trailing
//!   slashes go, and a URL without a path gets `/v1`.
//! - The timeout (default 5 s) bounds each attempt, connection included.
//!
//! # The API key
//! The key is a [`SecretString`]. The `Authorization` header is marked sensitive, `Debug` of
//! the backend and of the client prints `[redacted]`, nothing is logged with it, and any text
//! copied from a response into an [`Error`] (error details, non-JSON bodies) has the key
//! replaced by `[redacted]`, in case a proxy echoes request headers back.
//!
//! # Errors
//! Answers map to [`Error`] as in the official SDKs:
//!
//! | Answer | Error |
//! |---|---|
//! | 401 | [`Error::Unauthorized`] |
//! | 403 whose detail is `forbidden`, `invalid api key` or `api key disabled` (string, `error` or `message`; case-insensitive), or whose `error` is `invalid_api_key` / `api_key_disabled` | [`Error::Unauthorized`] |
//! | 403 `feature_not_available`, and any other 403 | [`Error::Api`] with status 403 |
//! | 402 | [`Error::OverLimit`] with the detail object |
//! | 422 | [`Error::Validation`] (FastAPI lists rendered as `body.key: Field required`) |
//! | 429 (after retries) | [`Error::RateLimited`] with `Retry-After` |
//! | 409 on a lease or run call whose `detail.error` is `lease_lost`, `in_progress`, `previously_failed` or `blocked` (`onceonly-server` reporting an engine refusal) | [`Error::LeaseLost`], [`Error::InProgress`], [`Error::PreviouslyFailed`], [`Error::Blocked`] |
//! | 404 whose `detail.error` is `not_found` on `get_policy` / `get_tool` | [`Error::NotFound`] |
//! | 404 whose `detail.error` is `tool_not_found` on tool-mode `POST /ai/run` | not an error: a blocked [`ToolResult`] with `policy_reason` `tool_not_found`, as the engine answers |
//! | any other non-2xx, including 5xx | [`Error::Api`] with the `detail` (or the start of a non-JSON body) |
//! | no answer within the timeout | [`Error::Timeout`] |
//! | connection refused or reset, DNS, TLS, a body cut short | [`Error::Transport`] |
//!
//! The 403 rule is the TypeScript SDK's, the finer of the two: the Python SDK calls every 403
//! "unauthorized", which would tell a user whose plan lacks a feature that their key is bad.
//! Check-lock keeps its own protocol rule: 401 and 403 are always [`Error::Unauthorized`], and
//! a 409 is a duplicate, not an error.
//!
//! Check-lock's fail-open (on by default) is decided by error *type*, never by message text:
//! [`Error::Timeout`], [`Error::Transport`] and [`Error::Api`] with status ≥ 500 proceed, all
//! others are returned.
//!
//! # Retries
//! With [`max_retries`](crate::OnceOnlyBuilder::max_retries) above 0 (the default is 0, as in
//! the official SDKs) the backend retries 429, 500, 502, 503, 504, timeouts and transport
//! errors, with the same body (so the same idempotency key), on every endpoint but two:
//! `POST /check-lock` and `POST /events` are retried only when they surely were not processed
//! (a `429`, a connection never made). A check-lock repeated after a timeout or a `5xx` that
//! came after the server locked the key would read `duplicate`, and the caller would skip an
//! event nobody processed; an event would be filed twice. The official SDKs retry them too.
//! Otherwise:
//! - a `Retry-After` header (seconds) is honoured, capped at
//!   [`RetryPolicy::max_retry_after`] (default 30 s): a server asking for an hour does not
//!   block a caller for an hour, the caller gets the answer after its retries instead;
//! - otherwise the delay is exponential, `min(max_backoff, backoff × 2^attempt)` (defaults
//!   0.5 s and 5 s), drawn uniformly from its upper half (jitter), so clients that failed
//!   together do not retry together;
//! - `POST /ai/lease` and key-mode `POST /ai/run` carry an `X-OnceOnly-Acquisition` header
//!   (random, the same on every retry of one call): when the answer that acquired is lost (a
//!   proxy timed out, the connection dropped) `onceonly-server` answers the retry with the
//!   same lease instead of `in_progress`, so no lease is left held by a caller who never
//!   learned its id. This is the one header the official SDKs do not send. The hosted API is
//!   not known to honour it: there, with retries on, a lost acquisition answer leaves the key
//!   held until its lease TTL runs out.
//!
//! # Waiting
//! [`Backend::wait_status`] asks `GET /ai/status?key=..&wait_ms=..`: `onceonly-server` holds
//! the request until the key settles or the wait ends (a long poll), so a waiter learns of a
//! completion at once. A server that ignores `wait_ms` (the hosted API) answers at once; the
//! backend then polls, with consecutive polls at least the server's `retry_after_sec` hint
//! apart, clamped to \[0.5 s, 5 s\]. Either way two polls never start less than 0.5 s apart:
//! it never spins.
//!
//! # Extensions
//! [`Lease::metadata`](crate::models::Lease::metadata) (the metadata a live lease's holder
//! acquired it with, shown to every other caller of the same API key),
//! [`Backend::release_lock`] (`POST /check-lock/release`, with the `lock_id` that check-lock
//! answered), the governed lease (`agent_id`, `tool`, `args`, `spend_usd` on `POST /ai/lease`,
//! answered `status: "blocked"` with its `policy_reason` when the policy refuses),
//! `retryable` on `/ai/fail` (this backend releases through `/ai/cancel` instead, which every
//! server honours), `wait_ms` and [`Backend::claim_job`] (`POST /ai/jobs/claim`, long-polled
//! like the status, answering [`Error::Unsupported`] where the route is missing) exist on
//! `onceonly-server` only. The hosted API has no
//! release: there [`OnceOnly::release_lock`](crate::OnceOnly::release_lock) returns
//! [`Error::Unsupported`].

mod account;
mod ai;
mod check_lock;
mod errors;
mod gov;
mod jobs;
mod tools;
mod transport;
mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use crate::backend::{Backend, BoxFuture};
use crate::error::{Error, Result};
use crate::models::{
    AccountInfo, AiResult, AiStatus, CancelRequest, CheckLockRequest, CheckLockResult,
    ClaimRequest, ClaimedJob, CompleteRequest, EventAck, EventsPage, ExtendRequest, FailRequest,
    Lease, LeaseRequest, Metrics, NotificationPrefs, NotificationUpdate, RunEvent, RunList,
    RunTimeline, Usage, UsageAll, UsageKind,
};
use crate::models::{
    AgentLogItem, AgentLogsRequest, AgentMetrics, AgentMetricsRequest, AgentStatus,
    DeleteToolRequest, GetToolRequest, ListToolsRequest, Policy, TemplateRequest,
    ToggleToolRequest, Tool, ToolCallRequest, ToolDeleted, ToolResult, ToolSpec,
};
use transport::Transport;

/// Per-request timeout used when none is configured.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The `User-Agent` sent by default: `onceonly-rust/<crate version>`.
pub(crate) const USER_AGENT: &str = concat!("onceonly-rust/", env!("CARGO_PKG_VERSION"));

/// When and how long the HTTP backend waits before trying a request again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Extra attempts after the first (default 0: no retries).
    pub max_retries: u32,
    /// Base of the exponential backoff (default 0.5 s).
    pub backoff: Duration,
    /// Cap of the computed backoff (default 5 s).
    pub max_backoff: Duration,
    /// Cap of a server's `Retry-After` (default 30 s).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 0,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `attempt + 1`: the server's `Retry-After` capped at
    /// [`max_retry_after`](Self::max_retry_after), else `min(max_backoff, backoff × 2^attempt)`
    /// drawn uniformly from its upper half.
    ///
    /// ```
    /// use std::time::Duration;
    /// use onceonly_runtime::http::RetryPolicy;
    ///
    /// let policy = RetryPolicy::default();
    /// let d = policy.delay(2, None); // 0.5 s × 2² = 2 s, jittered into [1 s, 2 s]
    /// assert!(d >= Duration::from_secs(1) && d <= Duration::from_secs(2));
    /// assert_eq!(policy.delay(0, Some(Duration::from_secs(3600))), Duration::from_secs(30));
    /// ```
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        self.delay_with(attempt, retry_after, rand::random::<f64>())
    }

    fn delay_with(&self, attempt: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(self.max_retry_after);
        }
        let factor = 2u32.checked_pow(attempt).unwrap_or(u32::MAX);
        let full = self
            .backoff
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max_backoff);
        let half = full / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Normalises a base URL as the official SDKs do: trailing slashes are removed, and a URL
/// whose path is then empty gets `/v1`; any other path is kept as it is.
#[cfg(test)]
fn normalize_base_url(url: &str) -> Result<String> {
    Ok(parse_base_url(url)?.as_str().to_owned())
}

fn parse_base_url(raw: &str) -> Result<Url> {
    let trimmed = raw.trim().trim_end_matches('/');
    let mut url = Url::parse(trimmed)
        .map_err(|e| Error::Config(format!("invalid base URL `{trimmed}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "the HTTP backend needs an http:// or https:// base URL, got `{trimmed}`"
        )));
    }
    if url.cannot_be_a_base() {
        return Err(Error::Config(format!("`{trimmed}` cannot be a base URL")));
    }
    if url.path().trim_end_matches('/').is_empty() {
        url.set_path("/v1");
    } else {
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&path);
    }
    Ok(url)
}

/// Everything [`HttpBackend::new`] needs. [`OnceOnly::builder`](crate::OnceOnly::builder) fills
/// it from its settings; build one directly to share a backend between clients.
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    /// The API key, sent as `Authorization: Bearer <key>`.
    pub api_key: SecretString,
    /// The base URL (normalised: `/v1` added to a bare host, trailing slashes removed).
    pub base_url: String,
    /// Per-attempt timeout (default 5 s).
    pub timeout: Duration,
    /// Retries (default: none).
    pub retry: RetryPolicy,
    /// The `User-Agent` (default `onceonly-rust/<version>`).
    pub user_agent: String,
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("api_key", &"[redacted]")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl HttpConfig {
    /// The hosted API with `api_key` and every default.
    pub fn new(api_key: impl Into<String>) -> Self {
        HttpConfig {
            api_key: SecretString::from(api_key.into()),
            base_url: crate::DEFAULT_BASE_URL.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            user_agent: USER_AGENT.to_owned(),
        }
    }

    /// Sets the base URL.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Sets the per-attempt timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// A [`Backend`] speaking the OnceOnly HTTP API. Cheap to clone; clones share one connection
/// pool.
#[derive(Clone)]
pub struct HttpBackend {
    inner: Arc<Transport>,
}

impl fmt::Debug for HttpBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpBackend")
            .field("base_url", &self.inner.base().as_str())
            .field("api_key", &"[redacted]")
            .field("timeout", &self.inner.timeout())
            .field("retry", self.inner.retry())
            .finish()
    }
}

impl HttpBackend {
    /// A backend for `config`. Fails on an empty API key, a base URL that is not
    /// `http(s)://`, a zero timeout, or a key that cannot travel in a header.
    pub fn new(config: HttpConfig) -> Result<Self> {
        if config.api_key.expose_secret().trim().is_empty() {
            return Err(Error::Config("the API key is empty".into()));
        }
        if config.timeout.is_zero() {
            return Err(Error::Config("the timeout must be above zero".into()));
        }
        let base = parse_base_url(&config.base_url)?;
        let transport = Transport::new(
            base,
            config.api_key,
            &config.user_agent,
            config.timeout,
            config.retry,
        )?;
        Ok(HttpBackend {
            inner: Arc::new(transport),
        })
    }

    /// The normalised base URL every path is appended to.
    pub fn base_url(&self) -> &str {
        self.inner.base().as_str()
    }
}

impl Backend for HttpBackend {
    fn name(&self) -> &'static str {
        "http"
    }

    fn check_lock(&self, req: CheckLockRequest) -> BoxFuture<'_, Result<CheckLockResult>> {
        Box::pin(check_lock::check_lock(&self.inner, req))
    }

    fn release_lock<'a>(
        &'a self,
        key: &'a str,
        lock_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(check_lock::release_lock(&self.inner, key, lock_id))
    }

    fn lease(&self, req: LeaseRequest) -> BoxFuture<'_, Result<Lease>> {
        Box::pin(ai::lease(&self.inner, &["ai", "lease"], req))
    }

    fn run(&self, mut req: LeaseRequest) -> BoxFuture<'_, Result<Lease>> {
        // Key mode carries no governance (a server refuses key and agent_id together).
        req.governance = None;
        Box::pin(ai::lease(&self.inner, &["ai", "run"], req))
    }

    fn claim_job(&self, req: ClaimRequest) -> BoxFuture<'_, Result<Option<ClaimedJob>>> {
        Box::pin(jobs::claim_job(&self.inner, req))
    }

    fn extend(&self, req: ExtendRequest) -> BoxFuture<'_, Result<Lease>> {
        Box::pin(ai::extend(&self.inner, req))
    }

    fn complete(&self, req: CompleteRequest) -> BoxFuture<'_, Result<Lease>> {
        Box::pin(ai::complete(&self.inner, req))
    }

    fn fail(&self, req: FailRequest) -> BoxFuture<'_, Result<Lease>> {
        Box::pin(ai::fail(&self.inner, req))
    }

    fn cancel(&self, req: CancelRequest) -> BoxFuture<'_, Result<Lease>> {
        Box::pin(ai::cancel(&self.inner, req))
    }

    fn status<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<AiStatus>> {
        Box::pin(ai::status(&self.inner, key))
    }

    fn result<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<AiResult>> {
        Box::pin(ai::result(&self.inner, key))
    }

    fn wait_status<'a>(
        &'a self,
        key: &'a str,
        max_wait: Duration,
    ) -> BoxFuture<'a, Result<AiStatus>> {
        Box::pin(ai::wait_status(&self.inner, key, max_wait))
    }

    fn me(&self) -> BoxFuture<'_, Result<AccountInfo>> {
        Box::pin(account::me(&self.inner))
    }

    fn update_notifications(
        &self,
        update: NotificationUpdate,
    ) -> BoxFuture<'_, Result<NotificationPrefs>> {
        Box::pin(account::update_notifications(&self.inner, update))
    }

    fn usage(&self, kind: UsageKind) -> BoxFuture<'_, Result<Usage>> {
        Box::pin(account::usage(&self.inner, kind))
    }

    fn usage_all(&self) -> BoxFuture<'_, Result<UsageAll>> {
        Box::pin(account::usage_all(&self.inner))
    }

    fn events(&self, limit: u32, offset: u32) -> BoxFuture<'_, Result<EventsPage>> {
        Box::pin(account::events(&self.inner, limit, offset))
    }

    fn post_event(&self, event: RunEvent) -> BoxFuture<'_, Result<EventAck>> {
        Box::pin(account::post_event(&self.inner, event))
    }

    fn run_timeline<'a>(
        &'a self,
        run_id: &'a str,
        limit: u32,
        offset: u32,
    ) -> BoxFuture<'a, Result<RunTimeline>> {
        Box::pin(account::run_timeline(&self.inner, run_id, limit, offset))
    }

    fn runs<'a>(
        &'a self,
        limit: u32,
        offset: u32,
        q: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RunList>> {
        Box::pin(account::runs(&self.inner, limit, offset, q))
    }

    fn metrics<'a>(&'a self, from_day: &'a str, to_day: &'a str) -> BoxFuture<'a, Result<Metrics>> {
        Box::pin(account::metrics(&self.inner, from_day, to_day))
    }

    fn upsert_policy(&self, policy: Policy) -> BoxFuture<'_, Result<Policy>> {
        Box::pin(gov::upsert_policy(&self.inner, policy))
    }

    fn policy_from_template(&self, req: TemplateRequest) -> BoxFuture<'_, Result<Policy>> {
        Box::pin(gov::policy_from_template(&self.inner, req))
    }

    fn get_policy<'a>(&'a self, agent_id: &'a str) -> BoxFuture<'a, Result<Policy>> {
        Box::pin(gov::get_policy(&self.inner, agent_id))
    }

    fn list_policies(&self) -> BoxFuture<'_, Result<Vec<Policy>>> {
        Box::pin(gov::list_policies(&self.inner))
    }

    fn set_agent_enabled<'a>(
        &'a self,
        agent_id: &'a str,
        enable: bool,
        reason: Option<&'a str>,
    ) -> BoxFuture<'a, Result<AgentStatus>> {
        Box::pin(gov::set_agent_enabled(
            &self.inner,
            agent_id,
            enable,
            reason,
        ))
    }

    fn agent_logs(&self, req: AgentLogsRequest) -> BoxFuture<'_, Result<Vec<AgentLogItem>>> {
        Box::pin(gov::agent_logs(&self.inner, req))
    }

    fn agent_metrics(&self, req: AgentMetricsRequest) -> BoxFuture<'_, Result<AgentMetrics>> {
        Box::pin(gov::agent_metrics(&self.inner, req))
    }

    fn run_tool(&self, req: ToolCallRequest) -> BoxFuture<'_, Result<ToolResult>> {
        Box::pin(tools::run_tool(&self.inner, req))
    }

    fn create_tool(&self, spec: ToolSpec) -> BoxFuture<'_, Result<Tool>> {
        Box::pin(tools::create_tool(&self.inner, spec))
    }

    fn list_tools(&self, req: ListToolsRequest) -> BoxFuture<'_, Result<Vec<Tool>>> {
        Box::pin(tools::list_tools(&self.inner, req))
    }

    fn get_tool(&self, req: GetToolRequest) -> BoxFuture<'_, Result<Tool>> {
        Box::pin(tools::get_tool(&self.inner, req))
    }

    fn toggle_tool(&self, req: ToggleToolRequest) -> BoxFuture<'_, Result<Tool>> {
        Box::pin(tools::toggle_tool(&self.inner, req))
    }

    fn delete_tool(&self, req: DeleteToolRequest) -> BoxFuture<'_, Result<ToolDeleted>> {
        Box::pin(tools::delete_tool(&self.inner, req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised_like_the_official_sdks() {
        let n = |u: &str| normalize_base_url(u).unwrap();
        assert_eq!(
            n("https://api.onceonly.tech"),
            "https://api.onceonly.tech/v1"
        );
        assert_eq!(
            n("https://api.onceonly.tech/"),
            "https://api.onceonly.tech/v1"
        );
        assert_eq!(
            n("https://api.onceonly.tech///"),
            "https://api.onceonly.tech/v1"
        );
        assert_eq!(
            n("https://api.onceonly.tech/v1"),
            "https://api.onceonly.tech/v1"
        );
        assert_eq!(n(" http://h:1/custom/ "), "http://h:1/custom");
        assert_eq!(n("http://h:1/a/b"), "http://h:1/a/b");
        for bad in ["", "ftp://h", "h:1", "http://"] {
            assert!(
                matches!(normalize_base_url(bad), Err(Error::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn backoff_is_exponential_capped_and_jittered_into_the_upper_half() {
        let p = RetryPolicy::default();
        let ms = |attempt, unit| p.delay_with(attempt, None, unit).as_millis();
        assert_eq!((ms(0, 0.0), ms(0, 1.0)), (250, 500));
        assert_eq!((ms(1, 0.0), ms(1, 1.0)), (500, 1000));
        assert_eq!((ms(3, 0.0), ms(3, 1.0)), (2000, 4000));
        assert_eq!((ms(4, 0.0), ms(4, 1.0)), (2500, 5000));
        assert_eq!((ms(40, 0.0), ms(40, 1.0)), (2500, 5000));
        assert_eq!(ms(u32::MAX, 0.5), 3750);
        for _ in 0..100 {
            let d = p.delay(1, None);
            assert!((Duration::from_millis(500)..=Duration::from_secs(1)).contains(&d));
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_its_cap() {
        let p = RetryPolicy::default();
        let d = |s| p.delay_with(5, Some(Duration::from_secs(s)), 0.3);
        assert_eq!(d(0), Duration::ZERO);
        assert_eq!(d(15), Duration::from_secs(15));
        assert_eq!(d(3600), Duration::from_secs(30));
    }

    #[test]
    fn construction_checks() {
        let bad = |c: HttpConfig| matches!(HttpBackend::new(c), Err(Error::Config(_)));
        assert!(bad(HttpConfig::new("")));
        assert!(bad(HttpConfig::new("  ")));
        assert!(bad(HttpConfig::new("k\nx")));
        assert!(bad(HttpConfig::new("k").timeout(Duration::ZERO)));
        assert!(bad(HttpConfig::new("k").base_url("memory:")));
        let b = HttpBackend::new(HttpConfig::new("once_live_hush").base_url("http://h")).unwrap();
        assert_eq!(b.base_url(), "http://h/v1");
        let shown = format!("{b:?} {:?}", HttpConfig::new("once_live_hush"));
        assert!(!shown.contains("hush"), "{shown}");
    }
}
