//! Building a client: [`OnceOnlyBuilder`], and [`OnceOnly::from_env`].

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::backend::Backend;
use crate::client::OnceOnly;
use crate::engine::{Engine, EngineConfig};
use crate::error::{Error, Result};
use crate::target::Target;

/// Environment variable holding the API key.
pub const ENV_API_KEY: &str = "ONCEONLY_API_KEY";
/// Environment variable holding the base URL, whose scheme picks the backend.
pub const ENV_BASE_URL: &str = "ONCEONLY_BASE_URL";

/// Step-by-step construction of a [`OnceOnly`] client.
///
/// ```
/// use onceonly_runtime::OnceOnly;
/// let client = OnceOnly::builder().base_url("memory:").build().unwrap();
/// assert_eq!(client.backend().name(), "embedded");
/// ```
#[derive(Default)]
#[must_use]
pub struct OnceOnlyBuilder {
    api_key: Option<SecretString>,
    base_url: Option<String>,
    timeout: Option<Duration>,
    fail_open: Option<bool>,
    max_retries: Option<u32>,
    retry_backoff: Option<Duration>,
    retry_max_backoff: Option<Duration>,
    max_retry_after: Option<Duration>,
    user_agent: Option<String>,
    engine_config: Option<EngineConfig>,
    backend: Option<Arc<dyn Backend>>,
}

impl std::fmt::Debug for OnceOnlyBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnceOnlyBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("fail_open", &self.fail_open)
            .field("max_retries", &self.max_retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("retry_max_backoff", &self.retry_max_backoff)
            .field("max_retry_after", &self.max_retry_after)
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

impl OnceOnlyBuilder {
    /// The API key (for the HTTP API). Kept as a secret: never printed.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// Where to send calls; the scheme picks the backend (see [`Target`]).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Per-request timeout of the HTTP backend (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Whether check-lock proceeds when the backend is unreachable (default `true`).
    pub fn fail_open(mut self, fail_open: bool) -> Self {
        self.fail_open = Some(fail_open);
        self
    }

    /// Retries of 429, 5xx and transport errors by the HTTP backend (default 0). Every request
    /// is retried with the same body; acquisitions also keep their `X-OnceOnly-Acquisition`, so a
    /// retried lease whose first answer was lost gets the same lease on `onceonly-server`.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// Base of the HTTP backend's exponential backoff between retries (default 0.5 s).
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = Some(backoff);
        self
    }

    /// Cap of the computed backoff between retries (default 5 s).
    pub fn retry_max_backoff(mut self, max: Duration) -> Self {
        self.retry_max_backoff = Some(max);
        self
    }

    /// Cap of a server's `Retry-After` before a retry (default 30 s).
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = Some(max);
        self
    }

    /// The `User-Agent` of the HTTP backend (default `onceonly-rust/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Configuration of the embedded engine (`memory:` and store URLs).
    pub fn engine_config(mut self, config: EngineConfig) -> Self {
        self.engine_config = Some(config);
        self
    }

    /// Use this backend instead of one chosen from the base URL.
    pub fn backend(mut self, backend: impl Backend) -> Self {
        self.backend = Some(Arc::new(backend));
        self
    }

    /// Builds the client. Without a backend, a base URL or an API key this is an error: there
    /// is no silent fallback to another backend.
    pub fn build(mut self) -> Result<OnceOnly> {
        let fail_open = self.fail_open.unwrap_or(true);
        if let Some(backend) = self.backend {
            return Ok(OnceOnly::from_shared_backend(backend, fail_open));
        }
        let target = match (&self.base_url, &self.api_key) {
            (Some(url), _) => Target::parse(url)?,
            (None, Some(_)) => Target::Http(crate::DEFAULT_BASE_URL.to_owned()),
            (None, None) => {
                return Err(Error::Config(format!(
                    "no backend configured: set {ENV_BASE_URL} (for example memory: for the \
                     embedded engine) or {ENV_API_KEY} for the hosted API"
                )));
            }
        };
        let config = self.engine_config.take().unwrap_or_default();
        match target {
            Target::Http(url) => {
                #[cfg(feature = "http")]
                {
                    let backend = self.http_backend(url)?;
                    Ok(OnceOnly::from_shared_backend(Arc::new(backend), fail_open))
                }
                #[cfg(not(feature = "http"))]
                {
                    let _ = url;
                    Err(Error::Config(
                        "this build has no HTTP backend: enable the `http` feature".into(),
                    ))
                }
            }
            store => {
                let engine = Engine::open(&store, config)?;
                Ok(OnceOnly::from_shared_backend(Arc::new(engine), fail_open))
            }
        }
    }
}

#[cfg(feature = "http")]
impl OnceOnlyBuilder {
    fn http_backend(self, url: String) -> Result<crate::http::HttpBackend> {
        use crate::http::{HttpBackend, HttpConfig, RetryPolicy, USER_AGENT};
        let Some(api_key) = self.api_key else {
            return Err(Error::Config(format!(
                "the HTTP API at {url} needs an API key: set {ENV_API_KEY} or call .api_key(..)"
            )));
        };
        let defaults = RetryPolicy::default();
        let mut retry = defaults;
        retry.max_retries = self.max_retries.unwrap_or(defaults.max_retries);
        retry.backoff = self.retry_backoff.unwrap_or(defaults.backoff);
        retry.max_backoff = self.retry_max_backoff.unwrap_or(defaults.max_backoff);
        retry.max_retry_after = self.max_retry_after.unwrap_or(defaults.max_retry_after);
        let mut config = HttpConfig::new("").base_url(url).retry(retry);
        config.api_key = api_key;
        config.timeout = self.timeout.unwrap_or(crate::http::DEFAULT_TIMEOUT);
        config.user_agent = self.user_agent.unwrap_or_else(|| USER_AGENT.to_owned());
        HttpBackend::new(config)
    }
}

#[cfg(feature = "http")]
impl OnceOnly {
    /// A client of the hosted API (`https://api.onceonly.tech/v1`) with `api_key` and the
    /// defaults: 5 s timeout, no retries, fail-open check-locks.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> onceonly_runtime::Result<()> {
    /// let client = onceonly_runtime::OnceOnly::new("once_live_...");
    /// let lock = client.check_lock("stripe:evt_123").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Panics
    /// If `api_key` is empty or holds characters that cannot travel in an HTTP header. Use
    /// [`OnceOnly::builder`] to get these as an [`Error::Config`] instead.
    pub fn new(api_key: impl Into<String>) -> OnceOnly {
        match OnceOnly::builder().api_key(api_key).build() {
            Ok(client) => client,
            Err(e) => panic!("OnceOnly::new: {e}"),
        }
    }
}

impl OnceOnly {
    /// A client configured from `ONCEONLY_BASE_URL` and `ONCEONLY_API_KEY`.
    ///
    /// The base URL's scheme picks the backend (`http(s)://`, `memory:`, `redis://`,
    /// `sqlite:PATH`). Without a base URL an API key means the hosted API. Neither is an error
    /// naming both variables.
    pub fn from_env() -> Result<OnceOnly> {
        OnceOnly::from_lookup(|name| std::env::var(name).ok())
    }

    /// `from_env` over any variable lookup, so the rules are testable without touching the
    /// process environment. Blank values count as unset.
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<OnceOnly> {
        let read = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut builder = OnceOnly::builder();
        if let Some(key) = read(ENV_API_KEY) {
            builder = builder.api_key(key);
        }
        if let Some(url) = read(ENV_BASE_URL) {
            builder = builder.base_url(url);
        }
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_configured_names_both_variables() {
        let e = OnceOnly::builder().build().unwrap_err().to_string();
        assert!(e.contains(ENV_API_KEY) && e.contains(ENV_BASE_URL), "{e}");
    }

    #[test]
    fn from_env_rules() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let memory = OnceOnly::from_lookup(env(&[(ENV_BASE_URL, "memory:")])).unwrap();
        assert_eq!(memory.backend().name(), "embedded");
        let e = OnceOnly::from_lookup(env(&[])).unwrap_err().to_string();
        assert!(e.contains(ENV_API_KEY) && e.contains(ENV_BASE_URL), "{e}");
        let blank = OnceOnly::from_lookup(env(&[(ENV_BASE_URL, "  "), (ENV_API_KEY, "")]));
        assert!(
            matches!(blank, Err(Error::Config(_))),
            "blank variables count as unset"
        );
        let bad = OnceOnly::from_lookup(env(&[(ENV_BASE_URL, "gopher://x")])).unwrap_err();
        assert!(bad.to_string().contains("gopher://x"), "{bad}");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let b = OnceOnly::builder().api_key("once_live_supersecret");
        assert!(!format!("{b:?}").contains("supersecret"));
    }
}
