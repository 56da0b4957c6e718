//! The one error type of the runtime.

use std::time::Duration;

/// A JSON object, as found in error details and results.
pub type JsonMap = serde_json::Map<String, serde_json::Value>;

/// Everything that can go wrong when talking to OnceOnly, whatever the backend.
///
/// The variants follow the classes the official SDKs expose (unauthorized, over limit, rate
/// limited, validation, generic API error) plus the states of the exactly-once algorithm
/// (`InProgress`, `LeaseLost`, `PreviouslyFailed`). Sources are kept, never flattened to strings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API key is missing, invalid or disabled (401, and 403 for key problems).
    #[error("unauthorized: {detail}")]
    Unauthorized {
        /// The server's explanation.
        detail: String,
    },

    /// A plan or usage limit was reached (402): plan, bucket, limit, usage and month.
    #[error("usage limit reached: {0}")]
    OverLimit(Box<crate::models::OverLimit>),

    /// A daily quota of the account is used up (429 with `detail.error` = `quota_exceeded`):
    /// which quota, its limit, and when it resets. Not retryable: nothing changes before then.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(Box<crate::models::QuotaExceeded>),

    /// Too many requests (429), with the server's `Retry-After` hint when it gave one.
    #[error("rate limited{}", retry_after.map(|d| format!(", retry after {:.1}s", d.as_secs_f64())).unwrap_or_default())]
    RateLimited {
        /// How long the server asked us to wait.
        retry_after: Option<Duration>,
    },

    /// The request was rejected before anything happened: bad key, TTL, metadata, arguments.
    #[error("invalid request: {0}")]
    Validation(String),

    /// Any other non-success answer from the API.
    #[error("API error {status}: {detail}")]
    Api {
        /// HTTP status code.
        status: u16,
        /// The `detail` of the error body (object, string, or null).
        detail: serde_json::Value,
    },

    /// A governed call was refused by the agent's policy.
    #[error("blocked by policy: {reason}")]
    Blocked {
        /// The policy reason (`tool_blocked`, `daily_spend_exceeded`, ...).
        reason: String,
        /// The decision recorded in the audit log.
        decision: String,
    },

    /// Someone else holds the lease for this key and the caller chose not to wait
    /// (or the wait timed out).
    #[error("another caller is processing key `{key}`{}", retry_after.map(|d| format!("; retry in {}s", d.as_secs())).unwrap_or_default())]
    InProgress {
        /// The contended key.
        key: String,
        /// A hint for when to try again.
        retry_after: Option<Duration>,
    },

    /// The lease id is no longer the current one for this key: the lease expired and another
    /// caller acquired the key, or it was cancelled. The work done under it must not be
    /// considered recorded.
    #[error("lease lost for key `{key}`: another caller owns it now")]
    LeaseLost {
        /// The key whose lease was lost.
        key: String,
    },

    /// A repeated `complete`, `fail` or `cancel` with the same lease id said something other
    /// than the first one did (another result, another error code). The first one stands.
    #[error("conflict on key `{key}`: {reason}")]
    Conflict {
        /// The key.
        key: String,
        /// What differed.
        reason: String,
    },

    /// An earlier execution for this key failed for good (terminal failure).
    #[error("an earlier execution of key `{key}` failed: {error_code}")]
    PreviouslyFailed {
        /// The key.
        key: String,
        /// The error code stored by the failed execution.
        error_code: String,
    },

    /// The operation did not finish within its deadline.
    #[error("timed out after {0:?}")]
    Timeout(Duration),

    /// The request could not be sent or the answer could not be received.
    #[error("transport error: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// A value could not be encoded or decoded (a stored result that does not fit the
    /// requested type, an unparsable answer).
    #[error("could not encode or decode a value: {0}")]
    Decode(#[source] serde_json::Error),

    /// The client is misconfigured (missing environment variable, unknown URL scheme).
    #[error("configuration error: {0}")]
    Config(String),

    /// The selected backend does not offer this operation (for example `release_lock` on the
    /// hosted API, which has no release endpoint).
    #[error(
        "`{operation}` is not supported by the {backend} backend{}",
        unsupported_hint(operation)
    )]
    Unsupported {
        /// The operation that was requested.
        operation: &'static str,
        /// The backend's name.
        backend: &'static str,
    },

    /// What the call names does not exist (a policy, a registered tool). The server answers
    /// 404 with `detail.error = "not_found"`.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },

    /// The store behind the engine failed (I/O, connection), or answered with a value that
    /// cannot be read back ([`is_damaged_data`](Self::is_damaged_data)).
    #[error("store error: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Whether retrying the same call later can succeed: rate limits, transport failures,
    /// timeouts, 5xx answers, store outages and keys busy elsewhere.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. }
            | Error::Transport(_)
            | Error::Timeout(_)
            | Error::InProgress { .. } => true,
            Error::Store(_) => !self.is_damaged_data(),
            Error::Api { status, .. } => matches!(status, 500 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// Whether the store answered with a stored value that cannot be read back (damaged, or
    /// written by an incompatible release), here or behind `onceonly-server` (a `500` whose
    /// `detail.error` is `store_damaged`). Not an outage: no fail-open decision is taken on
    /// it, since the key may well be taken, and retrying does not help until the value is
    /// repaired or removed.
    pub fn is_damaged_data(&self) -> bool {
        match self {
            Error::Store(e) => crate::store::StoreFailure::is_damaged(&**e),
            _ => false,
        }
    }

    /// Whether the backend could not be reached or failed on its side: transport errors,
    /// timeouts, store failures and 5xx answers. This is the one definition every fail-open
    /// decision uses (check-lock, the tower layer, `#[idempotent_ai(fail_open = true)]`).
    /// Refusals (401/402/403/422/429) and conflicts are never outages.
    pub fn is_outage(&self) -> bool {
        match self {
            Error::Timeout(_) | Error::Transport(_) => true,
            Error::Store(_) => !self.is_damaged_data(),
            Error::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Whether the backend refused what the request carried: a validation error (422), a body
    /// too large for it (413), or a result over the account's daily result-bytes quota (429
    /// `quota_exceeded`). Sending the same content again gets the same answer (for a quota, until
    /// midnight UTC), so a result refused this way is not going to be stored: `run_fn`, the
    /// macros and workers then fail the key for good (`result_not_stored`) rather than let the
    /// lease expire and the side effect run again.
    pub fn is_content_refused(&self) -> bool {
        matches!(
            self,
            Error::Validation(_) | Error::Api { status: 413, .. } | Error::QuotaExceeded(_)
        )
    }

    pub(crate) fn validation(msg: impl Into<String>) -> Self {
        Error::Validation(msg.into())
    }

    /// The policy of `agent_id` does not exist (same text on every backend).
    pub(crate) fn policy_not_found(agent_id: &str) -> Self {
        Error::NotFound {
            what: format!("policy for agent `{agent_id}`"),
        }
    }

    /// No tool `name` is registered in `scope` (same text on every backend).
    pub(crate) fn tool_not_found(name: &str, scope: &str) -> Self {
        Error::NotFound {
            what: format!("tool `{name}` in scope `{scope}`"),
        }
    }
}

/// What to do instead, for operations some backends can never offer.
fn unsupported_hint(operation: &str) -> &'static str {
    match operation {
        "register_tool_fn" => {
            ": Rust fn tools run in the process that registered them, so only the embedded \
             engine has them; over HTTP register an HTTP tool with `gov().create_tool(..)`"
        }
        _ => "",
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Decode(e)
    }
}

/// So a function returning `std::io::Result<T>` can use `?` on runtime calls, and the macros
/// can wrap one: the error keeps the runtime's error as its source, of kind
/// [`TimedOut`](std::io::ErrorKind::TimedOut) for a timeout and
/// [`Other`](std::io::ErrorKind::Other) for the rest.
impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        let kind = match e {
            Error::Timeout(_) => std::io::ErrorKind::TimedOut,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

/// Result alias used throughout the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;
