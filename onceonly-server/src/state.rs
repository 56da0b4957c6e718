//! Shared state: one tenant engine per API key, and the bearer-token extractor that picks it.
//!
//! Keys are looked up by their SHA-256 digest, so the table never compares secrets byte by
//! byte, and a tenant's id (the prefix of its store keys) is derived from the digest, so it is
//! stable across restarts without ever writing the key into the store.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use onceonly_runtime::Engine;
use onceonly_runtime::engine::{Account, TenantEngine};
use onceonly_runtime::store::Store;
use sha2::{Digest, Sha256};

use crate::config::{ApiKey, ConfigError};
use crate::error::ApiError;

type KeyDigest = [u8; 32];

fn digest(token: &str) -> KeyDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// The tenant id of a key: 24 hex digits of its SHA-256.
pub fn tenant_id(key: &str) -> String {
    hex::encode(&digest(key)[..12])
}

/// A preview that identifies a key to its owner without revealing it: keys of 16 characters
/// or more show their first 8 and last 4, keys of 8 or more their last 2, shorter ones nothing.
pub fn key_preview(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() >= 16 {
        let head: String = chars[..8].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    } else if chars.len() >= 8 {
        let tail: String = chars[chars.len() - 2..].iter().collect();
        format!("…{tail}")
    } else {
        "…".to_owned()
    }
}

/// What every handler can reach.
pub struct AppState<S: Store> {
    tenants: Arc<HashMap<KeyDigest, TenantEngine<S>>>,
    /// The root engine, for `/readyz`'s look at the store every tenant shares.
    pub(crate) probe: Engine<S>,
    pub(crate) max_wait: Duration,
    pub(crate) body_limit: usize,
    /// The body limit of `POST /v1/ai/complete`: room for the largest result the engine takes.
    pub(crate) complete_body_limit: usize,
    /// How long a request body has to arrive in full.
    pub(crate) body_timeout: Duration,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
}

impl<S: Store> Clone for AppState<S> {
    fn clone(&self) -> Self {
        AppState {
            tenants: Arc::clone(&self.tenants),
            probe: self.probe.clone(),
            max_wait: self.max_wait,
            body_limit: self.body_limit,
            complete_body_limit: self.complete_body_limit,
            body_timeout: self.body_timeout,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

impl<S: Store> AppState<S> {
    /// One tenant engine per key, over `root`'s store.
    pub fn new(
        root: &Engine<S>,
        keys: &[ApiKey],
        max_wait: Duration,
        body_limit: usize,
    ) -> Result<Self, ConfigError> {
        let mut tenants = HashMap::with_capacity(keys.len());
        for key in keys {
            let secret = key.secret();
            let account = Account::tenant(tenant_id(secret), key.plan_ref().clone())
                .key_preview(key_preview(secret));
            let engine = root
                .tenant(account)
                .map_err(|e| ConfigError(e.to_string()))?;
            tenants.insert(digest(secret), engine);
        }
        Ok(AppState {
            tenants: Arc::new(tenants),
            probe: root.clone(),
            max_wait,
            body_limit,
            complete_body_limit: crate::config::complete_body_limit(
                body_limit,
                root.config().max_result_bytes,
            ),
            body_timeout: crate::config::DEFAULT_BODY_TIMEOUT,
            metrics: Arc::new(crate::metrics::Metrics::new(keys.len())),
        })
    }

    /// Sets how long a request body has to arrive in full (default
    /// [`DEFAULT_BODY_TIMEOUT`](crate::DEFAULT_BODY_TIMEOUT)); later, the answer is 408.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// The counters the accept loop shares with `/metrics`.
    pub(crate) fn connection_stats(&self) -> Arc<crate::connections::ConnectionStats> {
        Arc::clone(&self.metrics.connections)
    }

    /// How many API keys (tenants) are configured.
    pub fn tenants(&self) -> usize {
        self.tenants.len()
    }

    fn lookup(&self, token: &str) -> Option<&TenantEngine<S>> {
        self.tenants.get(&digest(token))
    }
}

/// The engine of the tenant whose API key the request carries. Extracting it answers 401 when
/// the `Authorization: Bearer` header is missing or blank and 403 when the key is unknown.
pub struct Tenant<S: Store>(pub TenantEngine<S>);

impl<S: Store> Deref for Tenant<S> {
    type Target = TenantEngine<S>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S: Store> Tenant<S> {
    /// Runs a lease call to its end even if the client hangs up meanwhile.
    ///
    /// hyper drops a request's future when its connection closes; an engine call dropped
    /// between its steps (a charge and the record it pays for, a record and its timeline
    /// event) would leave them apart. On its own task it finishes whatever happens to the
    /// request; a panic inside it is re-raised here, where the panic layer answers it.
    /// Check-lock does not use it: the task costs about a quarter of its throughput, and a
    /// check-lock cut short only over-counts one unit.
    pub(crate) async fn settle<F, Fut, T>(&self, op: F) -> T
    where
        F: FnOnce(TenantEngine<S>) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        match tokio::spawn(op(self.0.clone())).await {
            Ok(answer) => answer,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => panic!("an engine call was cancelled by the runtime shutting down"),
            },
        }
    }
}

/// The token of an `Authorization` value: `Bearer <token>`, scheme case-insensitive, any
/// whitespace between them. Bytes, not text: a token that is not ASCII is still a token (one
/// no key matches, so a 403), not a missing header.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let at = value.iter().position(u8::is_ascii_whitespace)?;
    let (scheme, token) = value.split_at(at);
    let token = token.trim_ascii();
    (scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty()).then_some(token)
}

impl<S: Store> FromRequestParts<AppState<S>> for Tenant<S> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState<S>,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(AUTHORIZATION) else {
            return Err(ApiError::missing_token());
        };
        let token = bearer(value.as_bytes()).ok_or_else(ApiError::missing_token)?;
        match std::str::from_utf8(token)
            .ok()
            .and_then(|t| state.lookup(t))
        {
            Some(engine) => Ok(Tenant(engine.clone())),
            None => Err(ApiError::invalid_key()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer   abc  "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Bearer\tabc"), Some(&b"abc"[..]));
        assert_eq!(bearer("Bearer é".as_bytes()), Some("é".as_bytes()));
        assert_eq!(bearer(b"Bearer \xe9\xe9"), Some(&b"\xe9\xe9"[..]));
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"abc"), None);
    }

    #[test]
    fn previews_hide_the_key() {
        assert_eq!(key_preview("once_live_0123456789abcdef"), "once_liv…cdef");
        assert_eq!(key_preview("short_key"), "…ey");
        assert_eq!(key_preview("k"), "…");
        assert_eq!(tenant_id("k").len(), 24);
        assert_ne!(tenant_id("a"), tenant_id("b"));
    }
}
