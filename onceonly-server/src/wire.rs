//! Request bodies and query strings as the OnceOnly API takes them. Unknown
//! fields are ignored; metadata is also accepted under its legacy name `meta`.

use std::time::Duration;

use onceonly_runtime::JsonMap;
use serde::{Deserialize, Deserializer};

/// A TTL in seconds: a non-negative number (whole or not), or absent/null.
fn ttl<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    use serde::de::Error;
    match Option::<f64>::deserialize(d)? {
        None => Ok(None),
        Some(secs) if secs.is_finite() && secs >= 0.0 => Duration::try_from_secs_f64(secs)
            .map(Some)
            .map_err(|_| D::Error::custom("ttl is too large")),
        Some(_) => Err(D::Error::custom(
            "ttl must be a non-negative number of seconds",
        )),
    }
}

/// `POST /check-lock` and `POST /ai/lease`.
#[derive(Debug, Deserialize)]
pub(crate) struct KeyBody {
    pub(crate) key: String,
    #[serde(default, deserialize_with = "ttl")]
    pub(crate) ttl: Option<Duration>,
    #[serde(default, alias = "meta")]
    pub(crate) metadata: Option<JsonMap>,
}

/// `POST /ai/run`: key mode, or tool mode (governed tool call).
#[derive(Debug, Deserialize)]
pub(crate) struct RunBody {
    #[serde(default)]
    pub(crate) key: Option<String>,
    #[serde(default, deserialize_with = "ttl")]
    pub(crate) ttl: Option<Duration>,
    #[serde(default, alias = "meta")]
    pub(crate) metadata: Option<JsonMap>,
    #[serde(default)]
    pub(crate) agent_id: Option<String>,
    #[serde(default)]
    pub(crate) tool: Option<String>,
}

/// `POST /ai/extend`.
#[derive(Debug, Deserialize)]
pub(crate) struct ExtendBody {
    pub(crate) key: String,
    pub(crate) lease_id: String,
    #[serde(default, deserialize_with = "ttl")]
    pub(crate) ttl: Option<Duration>,
}

/// `POST /ai/complete`.
#[derive(Debug, Deserialize)]
pub(crate) struct CompleteBody {
    pub(crate) key: String,
    pub(crate) lease_id: String,
    #[serde(default)]
    pub(crate) result: Option<JsonMap>,
    #[serde(default)]
    pub(crate) result_hash: Option<String>,
}

/// `POST /ai/fail` (`retryable` is an extension).
#[derive(Debug, Deserialize)]
pub(crate) struct FailBody {
    pub(crate) key: String,
    pub(crate) lease_id: String,
    pub(crate) error_code: String,
    #[serde(default)]
    pub(crate) error_hash: Option<String>,
    #[serde(default)]
    pub(crate) retryable: bool,
}

/// `POST /ai/cancel`. `error_code` and `error_hash` (extension) make it a retryable failure.
#[derive(Debug, Deserialize)]
pub(crate) struct CancelBody {
    pub(crate) key: String,
    pub(crate) lease_id: String,
    #[serde(default)]
    pub(crate) reason: Option<String>,
    #[serde(default)]
    pub(crate) error_code: Option<String>,
    #[serde(default)]
    pub(crate) error_hash: Option<String>,
}

/// `POST /check-lock/release` (extension). With `lock_id`, only that lock is released.
#[derive(Debug, Deserialize)]
pub(crate) struct ReleaseBody {
    pub(crate) key: String,
    /// Absent: any lock. `null` is refused rather than read as absent, so a client that
    /// meant to fence (and lost its id) never deletes someone else's lock.
    #[serde(default, deserialize_with = "present_string")]
    pub(crate) lock_id: Option<String>,
}

/// A field that, when present, must be a string (`null` included in what is refused).
fn present_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// `?key=`.
#[derive(Debug, Deserialize)]
pub(crate) struct KeyQuery {
    pub(crate) key: String,
}

/// `GET /ai/status?key=&wait_ms=` (`wait_ms` is an extension).
#[derive(Debug, Deserialize)]
pub(crate) struct StatusQuery {
    pub(crate) key: String,
    #[serde(default)]
    pub(crate) wait_ms: Option<u64>,
}

/// `GET /usage?kind=`.
#[derive(Debug, Deserialize)]
pub(crate) struct UsageQuery {
    #[serde(default)]
    pub(crate) kind: Option<String>,
}

/// `?limit=&offset=` (and `q` for `GET /runs`).
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    #[serde(default)]
    pub(crate) limit: Option<u32>,
    #[serde(default)]
    pub(crate) offset: Option<u32>,
    #[serde(default)]
    pub(crate) q: Option<String>,
}

/// `GET /metrics?from_day=&to_day=`.
#[derive(Debug, Deserialize)]
pub(crate) struct MetricsQuery {
    pub(crate) from_day: String,
    pub(crate) to_day: String,
}
