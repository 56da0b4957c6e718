//! Building a client: [`OnceOnlyBuilder`], and [`OnceOnly::from_env`].

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::backend::Backend;
use crate::client::OnceOnly;
use crate::engine::{Engine, EngineConfig};
use crate::error::{Error, Result};

/// Environment variable holding the API key.
pub const ENV_API_KEY: &str = "ONCEONLY_API_KEY";
/// Environment variable holding the base URL, whose scheme picks the backend.
pub const ENV_BASE_URL: &str = "ONCEONLY_BASE_URL";

/// Where a base URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// `http://` or `https://`: the OnceOnly HTTP API (hosted, or `onceonly-server`).
    Http(String),
    /// `memory:`: the embedded engine, in-process.
    Memory,
    /// `redis://` or `rediss://`: the embedded engine over a Redis store.
    Redis(String),
    /// `sqlite:PATH`: the embedded engine over a SQLite file.
    Sqlite(String),
}

impl Target {
    /// Reads a base URL by its scheme.
    pub fn parse(url: &str) -> Result<Target> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            Ok(Target::Http(url.to_owned()))
        } else if lower == "memory:" || lower.starts_with("memory:") {
            Ok(Target::Memory)
        } else if lower.starts_with("redis://") || lower.starts_with("rediss://") {
            Ok(Target::Redis(url.to_owned()))
        } else if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.trim_start_matches("//");
            if path.is_empty() {
                return Err(Error::Config(
                    "sqlite: needs a file path, as in sqlite:onceonly.db".into(),
                ));
            }
            Ok(Target::Sqlite(path.to_owned()))
        } else {
            Err(Error::Config(format!(
                "unsupported base URL `{url}`: expected http(s)://, memory:, redis://, rediss:// or sqlite:PATH"
            )))
        }
    }
}

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

    /// Retries of 429, 5xx and transport errors by the HTTP backend (default 0).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
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
    pub fn build(self) -> Result<OnceOnly> {
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
        let config = self.engine_config.unwrap_or_default();
        match target {
            Target::Memory => {
                let engine = Engine::with_config(
                    crate::store::MemoryStore::new(),
                    config,
                    Arc::new(crate::time::SystemClock),
                );
                Ok(OnceOnly::from_shared_backend(Arc::new(engine), fail_open))
            }
            Target::Http(_) => Err(Error::Config(
                "the HTTP backend is not part of this build yet; use memory: for the embedded engine"
                    .into(),
            )),
            Target::Redis(_) | Target::Sqlite(_) => Err(Error::Config(
                "the Redis and SQLite stores are not part of this build yet; use memory:".into(),
            )),
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
        let read = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
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
    fn targets() {
        assert_eq!(Target::parse("memory:").unwrap(), Target::Memory);
        assert_eq!(Target::parse("MEMORY:").unwrap(), Target::Memory);
        assert!(matches!(
            Target::parse("https://api.onceonly.tech/v1").unwrap(),
            Target::Http(_)
        ));
        assert!(matches!(
            Target::parse("redis://127.0.0.1/").unwrap(),
            Target::Redis(_)
        ));
        assert_eq!(
            Target::parse("sqlite:a.db").unwrap(),
            Target::Sqlite("a.db".into())
        );
        assert!(Target::parse("sqlite:").is_err());
        let e = Target::parse("ftp://x").unwrap_err().to_string();
        assert!(e.contains("ftp://x"), "{e}");
    }

    #[test]
    fn nothing_configured_names_both_variables() {
        let e = OnceOnly::builder().build().unwrap_err().to_string();
        assert!(e.contains(ENV_API_KEY) && e.contains(ENV_BASE_URL), "{e}");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let b = OnceOnly::builder().api_key("once_live_supersecret");
        assert!(!format!("{b:?}").contains("supersecret"));
    }
}
