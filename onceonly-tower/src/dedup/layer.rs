use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_ENCODING, CONTENT_LANGUAGE, CONTENT_TYPE, ETAG,
    LINK, LOCATION,
};
use http::{HeaderName, Method};
use onceonly_runtime::__private::validate::{MAX_TTL, MIN_TTL};
use onceonly_runtime::OnceOnly;
use tower_layer::Layer;

use super::key::{KeyExtractor, KeySource};
use super::service::OnceOnlyService;

/// How duplicates are answered. See the [crate docs](crate#modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// One check-lock per request: the first delivery runs the handler, duplicates get
    /// `200` with `X-OnceOnly-Status: duplicate`. For webhooks, where the sender only needs a
    /// 2xx. The default.
    #[default]
    CheckLock,
    /// A lease per request and the response stored: duplicates get the first response again,
    /// byte for byte, with `Idempotency-Replayed: true`. For APIs whose clients read the answer
    /// (the IETF `Idempotency-Key` / Stripe semantics).
    Replay,
}

/// Default lifetime of a check-lock: how long duplicates are recognised in
/// [`Mode::CheckLock`] (24 hours).
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// Default lease TTL in [`Mode::Replay`]: how long a handler may run without a heartbeat.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(60);
/// Default largest request body the layer reads (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Default largest response body stored for replay (256 KiB; stored base64-encoded, so well
/// under the embedded engine's 1 MiB result limit).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 << 10;

/// Everything the service needs, shared by every clone.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) client: OnceOnly,
    pub(crate) sources: Vec<KeySource>,
    pub(crate) ttl: Duration,
    pub(crate) lease_ttl: Duration,
    pub(crate) methods: Vec<Method>,
    pub(crate) require_key: bool,
    pub(crate) max_body_bytes: usize,
    pub(crate) max_response_bytes: usize,
    pub(crate) fail_open: bool,
    pub(crate) mode: Mode,
    pub(crate) replay_headers: Vec<HeaderName>,
}

impl Config {
    pub(crate) fn handles(&self, method: &Method) -> bool {
        self.methods.iter().any(|m| m == method)
    }
}

/// Deduplicates requests by idempotency key: each webhook event (or API call) reaches the
/// handler once, across retries, concurrent deliveries and replicas.
///
/// Built by value: `OnceOnlyLayer::new(client).json_pointer("/id").ttl(..)`. Cloning is cheap.
/// See the [crate docs](crate) for the behaviour and an example.
#[derive(Clone)]
#[must_use]
pub struct OnceOnlyLayer {
    config: Arc<Config>,
}

impl fmt::Debug for OnceOnlyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("OnceOnlyLayer")
            .field("backend", &c.client.backend().name())
            .field("mode", &c.mode)
            .field("sources", &c.sources)
            .field("ttl", &c.ttl)
            .field("lease_ttl", &c.lease_ttl)
            .field("methods", &c.methods)
            .field("require_key", &c.require_key)
            .field("max_body_bytes", &c.max_body_bytes)
            .field("max_response_bytes", &c.max_response_bytes)
            .field("fail_open", &c.fail_open)
            .field("replay_headers", &c.replay_headers)
            .finish()
    }
}

impl OnceOnlyLayer {
    /// A layer over `client` with the defaults: [`Mode::CheckLock`], keys from
    /// [`KeySource::defaults`], `POST` only, check-locks kept [24 hours](DEFAULT_TTL), bodies up
    /// to [1 MiB](DEFAULT_MAX_BODY_BYTES), requests without a key passed through, and the
    /// client's fail-open setting (on unless the client was built with `fail_open(false)`).
    pub fn new(client: OnceOnly) -> Self {
        let fail_open = client.fail_open();
        OnceOnlyLayer {
            config: Arc::new(Config {
                client,
                sources: KeySource::defaults(),
                ttl: DEFAULT_TTL,
                lease_ttl: DEFAULT_LEASE_TTL,
                methods: vec![Method::POST],
                require_key: false,
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
                fail_open,
                mode: Mode::CheckLock,
                replay_headers: vec![
                    CONTENT_TYPE,
                    CONTENT_ENCODING,
                    CONTENT_LANGUAGE,
                    CONTENT_DISPOSITION,
                    CACHE_CONTROL,
                    LOCATION,
                    ETAG,
                    LINK,
                ],
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Replaces the key sources; they are tried in the given order.
    pub fn key_sources(self, sources: impl IntoIterator<Item = KeySource>) -> Self {
        let sources = sources.into_iter().collect();
        self.edit(|c| c.sources = sources)
    }

    /// Adds a key source, tried after the others.
    pub fn key_source(self, source: KeySource) -> Self {
        self.edit(|c| c.sources.push(source))
    }

    /// Adds a JSON pointer into the body (Stripe: `/id`), tried after the others.
    pub fn json_pointer(self, pointer: impl Into<String>) -> Self {
        self.key_source(KeySource::json_pointer(pointer))
    }

    /// Adds a custom extractor, tried after the others.
    pub fn key_extractor(self, extractor: impl KeyExtractor) -> Self {
        self.key_source(KeySource::custom(extractor))
    }

    /// How long a key is remembered in [`Mode::CheckLock`] (default 24 hours, clamped to
    /// 1 s – 30 days). Choose it to cover the sender's retry window (Stripe retries for up to
    /// three days). Hosted plans may clamp it further. The backend holds every key for this
    /// long: on the embedded in-memory engine that is memory proportional to the number of
    /// distinct events per TTL. Keep it well above your slowest handler: once a lock expires,
    /// a redelivery runs the handler again. The release after a `5xx` is fenced by the lock id
    /// the check-lock answered with (the embedded engine and `onceonly-server` give one), so a
    /// handler that outlived its lock and then fails never removes the lock of a later
    /// delivery. A backend without lock ids gets an unfenced release.
    pub fn ttl(self, ttl: Duration) -> Self {
        self.edit(|c| c.ttl = ttl.clamp(MIN_TTL, MAX_TTL))
    }

    /// In [`Mode::Replay`], how long the handler may run before another delivery may take over
    /// (default 60 s, clamped to 1 s – 30 days). A heartbeat extends it every third of it while
    /// the handler runs, so it bounds only how long a crashed replica blocks the key.
    pub fn lease_ttl(self, ttl: Duration) -> Self {
        self.edit(|c| c.lease_ttl = ttl.clamp(MIN_TTL, MAX_TTL))
    }

    /// The methods the layer handles (default `POST`); others pass through untouched.
    pub fn methods(self, methods: impl IntoIterator<Item = Method>) -> Self {
        let methods = methods.into_iter().collect();
        self.edit(|c| c.methods = methods)
    }

    /// Answer `400` with a JSON detail when a handled request carries no key (default: pass it
    /// through to the handler).
    pub fn require_key(self, require: bool) -> Self {
        self.edit(|c| c.require_key = require)
    }

    /// Largest request body the layer reads, for a body key source or a fingerprint (default
    /// 1 MiB). Larger bodies get `413`. Requests whose key comes from a header are not read in
    /// [`Mode::CheckLock`], so the handler's own limit applies to them.
    pub fn max_body_bytes(self, limit: usize) -> Self {
        self.edit(|c| c.max_body_bytes = limit)
    }

    /// Largest response body stored for replay (default 256 KiB). A larger response still
    /// reaches its client whole and still completes the key, but replays of it carry a short
    /// JSON note instead of the body.
    pub fn max_response_bytes(self, limit: usize) -> Self {
        self.edit(|c| c.max_response_bytes = limit)
    }

    /// When the backend is unreachable, run the handler without deduplication and log a
    /// warning (`tracing::warn!`).
    pub fn fail_open(self) -> Self {
        self.edit(|c| c.fail_open = true)
    }

    /// When the backend is unreachable, answer `503` with `Retry-After` so the sender retries
    /// later, and never run the handler undeduplicated.
    pub fn fail_closed(self) -> Self {
        self.edit(|c| c.fail_open = false)
    }

    /// How duplicates are answered (default [`Mode::CheckLock`]).
    pub fn mode(self, mode: Mode) -> Self {
        self.edit(|c| c.mode = mode)
    }

    /// Replaces the response headers stored and replayed in [`Mode::Replay`] (default:
    /// `Content-Type`, `Content-Encoding`, `Content-Language`, `Content-Disposition`,
    /// `Cache-Control`, `Location`, `ETag`, `Link`).
    pub fn replay_headers(self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        let headers = headers.into_iter().collect();
        self.edit(|c| c.replay_headers = headers)
    }

    /// Adds a response header to the ones replayed.
    pub fn replay_header(self, header: HeaderName) -> Self {
        self.edit(|c| c.replay_headers.push(header))
    }
}

impl<S> Layer<S> for OnceOnlyLayer {
    type Service = OnceOnlyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OnceOnlyService::new(inner, Arc::clone(&self.config))
    }
}
