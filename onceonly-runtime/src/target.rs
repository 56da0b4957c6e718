//! Where calls go, named by one URL: [`Target`]. `OnceOnly::from_env` reads
//! `ONCEONLY_BASE_URL` with it and `onceonly-server --store` reads its flag with it, so the
//! store schemes are spelled here and nowhere else.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The scheme of the embedded engine in memory.
const MEMORY: &str = "memory:";
/// The schemes of a Redis store.
const REDIS: [&str; 2] = ["redis://", "rediss://"];
/// The scheme of a SQLite store.
const SQLITE: &str = "sqlite:";

/// Where a base URL points: the HTTP API, or the embedded engine over one of the stores.
///
/// ```
/// use onceonly_runtime::Target;
///
/// assert_eq!("memory:".parse::<Target>().unwrap(), Target::Memory);
/// assert!(matches!("https://api.onceonly.tech/v1".parse(), Ok(Target::Http(_))));
/// assert!("ftp://example.com".parse::<Target>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// `http://` or `https://`: the OnceOnly HTTP API (hosted, or `onceonly-server`).
    Http(String),
    /// `memory:` (or `memory`): the embedded engine, in-process.
    Memory,
    /// `redis://` or `rediss://`: the embedded engine over a Redis store.
    #[cfg(feature = "redis")]
    Redis(String),
    /// `sqlite:PATH`: the embedded engine over a SQLite file.
    #[cfg(feature = "sqlite")]
    Sqlite(PathBuf),
}

fn has_scheme(lower: &str, scheme: &str) -> bool {
    lower.starts_with(scheme)
}

#[cfg(any(not(feature = "redis"), not(feature = "sqlite")))]
fn not_built(store: &str, feature: &str) -> Error {
    Error::Config(format!(
        "the {store} store is not part of this build: enable the `{feature}` feature of \
         onceonly-runtime"
    ))
}

impl Target {
    /// Reads a base URL by its scheme. A store this build does not include is a clear
    /// [`Error::Config`] naming the feature to enable.
    pub fn parse(url: &str) -> Result<Target> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        if has_scheme(&lower, "http://") || has_scheme(&lower, "https://") {
            Ok(Target::Http(url.to_owned()))
        } else if lower == "memory" || has_scheme(&lower, MEMORY) {
            Ok(Target::Memory)
        } else if REDIS.iter().any(|s| has_scheme(&lower, s)) {
            Self::redis(url)
        } else if has_scheme(&lower, SQLITE) {
            let path = url[SQLITE.len()..].trim_start_matches("//");
            if path.is_empty() {
                return Err(Error::Config(
                    "sqlite: needs a file path, as in sqlite:onceonly.db".into(),
                ));
            }
            Self::sqlite(PathBuf::from(path))
        } else {
            Err(Error::Config(format!(
                "unsupported URL `{url}`: expected http(s)://, {MEMORY}, {}, {} or {SQLITE}PATH",
                REDIS[0], REDIS[1]
            )))
        }
    }

    #[cfg(feature = "redis")]
    fn redis(url: &str) -> Result<Target> {
        Ok(Target::Redis(url.to_owned()))
    }

    #[cfg(not(feature = "redis"))]
    fn redis(_: &str) -> Result<Target> {
        Err(not_built("Redis", "redis"))
    }

    #[cfg(feature = "sqlite")]
    fn sqlite(path: PathBuf) -> Result<Target> {
        Ok(Target::Sqlite(path))
    }

    #[cfg(not(feature = "sqlite"))]
    fn sqlite(_: PathBuf) -> Result<Target> {
        Err(not_built("SQLite", "sqlite"))
    }

    /// Whether this target is a store of the embedded engine (everything but HTTP).
    pub fn is_store(&self) -> bool {
        !matches!(self, Target::Http(_))
    }
}

impl FromStr for Target {
    type Err = Error;

    fn from_str(s: &str) -> Result<Target> {
        Target::parse(s)
    }
}

impl fmt::Display for Target {
    /// The URL, without credentials a Redis URL may carry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Http(url) => f.write_str(url),
            Target::Memory => f.write_str(MEMORY),
            #[cfg(feature = "redis")]
            Target::Redis(url) => f.write_str(&redact_userinfo(url)),
            #[cfg(feature = "sqlite")]
            Target::Sqlite(path) => write!(f, "{SQLITE}{}", path.display()),
        }
    }
}

/// `redis://user:secret@host/` → `redis://***@host/`.
#[cfg(feature = "redis")]
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(Target::parse("memory:").unwrap(), Target::Memory);
        assert_eq!(Target::parse(" MEMORY ").unwrap(), Target::Memory);
        assert!(matches!(
            Target::parse("https://api.onceonly.tech/v1").unwrap(),
            Target::Http(_)
        ));
        assert!(Target::parse("sqlite:").is_err());
        let e = Target::parse("ftp://x").unwrap_err().to_string();
        assert!(e.contains("ftp://x"), "{e}");
        assert!(!Target::Http("http://x".into()).is_store());
        assert!(Target::Memory.is_store());
    }

    #[cfg(not(feature = "redis"))]
    #[test]
    fn stores_not_built_name_their_feature() {
        let e = Target::parse("redis://127.0.0.1/").unwrap_err().to_string();
        assert!(e.contains("`redis` feature"), "{e}");
    }

    #[cfg(not(feature = "sqlite"))]
    #[test]
    fn sqlite_not_built_names_its_feature() {
        let e = Target::parse("sqlite:a.db").unwrap_err().to_string();
        assert!(e.contains("`sqlite` feature"), "{e}");
    }
}
