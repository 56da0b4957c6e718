//! Where a request's idempotency key comes from, and how it is namespaced.
//!
//! Senders name their deliveries in different places: a header (`Idempotency-Key`, Standard
//! Webhooks' `webhook-id`, Svix's `svix-id`, GitHub's hook and delivery ids) or a field of the
//! JSON body (Stripe's event `id`). The layer tries the configured [`KeySource`]s in order and
//! takes the first that yields a non-blank id. The body is read only when a body source is
//! reached without an earlier match.
//!
//! The id is then namespaced by method and route (`POST /webhooks/stripe json:/id=evt_1`), so
//! the same id arriving on two routes is two keys. Ids that would make the key longer than a
//! backend accepts, or that hold control characters, are hashed instead of rejected.

use std::fmt;
use std::sync::Arc;

use http::{Extensions, HeaderMap, HeaderName, Method, Uri};
use onceonly_runtime::__private::validate::{self, MAX_KEY_BYTES};
use sha2::{Digest, Sha256};

/// The IETF `Idempotency-Key` request header.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Standard Webhooks' message id header.
pub const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
/// Svix's message id header.
pub const SVIX_ID: HeaderName = HeaderName::from_static("svix-id");
/// GitHub's webhook id header.
pub const GITHUB_HOOK_ID: HeaderName = HeaderName::from_static("x-github-hook-id");
/// GitHub's delivery id header (kept on redeliveries).
pub const GITHUB_DELIVERY: HeaderName = HeaderName::from_static("x-github-delivery");

/// What a [`KeyExtractor`] may look at.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct KeyRequest<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request URI.
    pub uri: &'a Uri,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The request extensions (axum's `MatchedPath`, values set by earlier layers).
    pub extensions: &'a Extensions,
    /// The raw body, when the extractor [reads it](KeyExtractor::reads_body).
    pub body: Option<&'a [u8]>,
}

/// A custom source of idempotency keys.
///
/// Implemented for closures `Fn(&KeyRequest<'_>) -> Option<String>`, which get the body.
///
/// ```
/// use onceonly_tower::{KeyExtractor, KeyRequest};
///
/// /// The `X-Shopify-Webhook-Id` header: no body needed.
/// struct Shopify;
///
/// impl KeyExtractor for Shopify {
///     fn extract(&self, req: &KeyRequest<'_>) -> Option<String> {
///         req.headers.get("x-shopify-webhook-id")?.to_str().ok().map(str::to_owned)
///     }
///     fn reads_body(&self) -> bool {
///         false
///     }
///     fn name(&self) -> &str {
///         "shopify"
///     }
/// }
/// ```
pub trait KeyExtractor: Send + Sync + 'static {
    /// The id of this delivery, or `None` when the request carries none.
    fn extract(&self, req: &KeyRequest<'_>) -> Option<String>;

    /// Whether [`extract`](KeyExtractor::extract) needs the body (default `true`). When
    /// `false`, the layer does not read the body for this source.
    fn reads_body(&self) -> bool {
        true
    }

    /// A short label that namespaces the keys of this source (default `custom`).
    fn name(&self) -> &str {
        "custom"
    }
}

impl<F> KeyExtractor for F
where
    F: Fn(&KeyRequest<'_>) -> Option<String> + Send + Sync + 'static,
{
    fn extract(&self, req: &KeyRequest<'_>) -> Option<String> {
        self(req)
    }
}

/// One place to look for a request's idempotency key.
///
/// The layer tries its sources in order and takes the first non-blank id; the body is read
/// only when a body source is reached without an earlier match. Each source labels its keys
/// (`idempotency-key`, `github`, `json:/id`, ...) so two sources never share a key. See the
/// [crate docs](crate#keys).
#[derive(Clone)]
#[non_exhaustive]
pub enum KeySource {
    /// The value of a header.
    Header(HeaderName),
    /// GitHub: `X-GitHub-Delivery`, qualified by `X-GitHub-Hook-ID` when present.
    GitHub,
    /// A string or number at a JSON pointer (RFC 6901) into the JSON body, such as `/id`. The
    /// body must parse as JSON (`serde_json`); one that does not has no key.
    JsonPointer(String),
    /// A custom extractor.
    Custom(Arc<dyn KeyExtractor>),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Header(name) => f.debug_tuple("Header").field(name).finish(),
            KeySource::GitHub => f.write_str("GitHub"),
            KeySource::JsonPointer(p) => f.debug_tuple("JsonPointer").field(p).finish(),
            KeySource::Custom(ex) => f.debug_tuple("Custom").field(&ex.name()).finish(),
        }
    }
}

impl KeySource {
    /// The `Idempotency-Key` header.
    pub fn idempotency_key() -> Self {
        KeySource::Header(IDEMPOTENCY_KEY)
    }

    /// Standard Webhooks' `webhook-id` header.
    pub fn standard_webhooks() -> Self {
        KeySource::Header(WEBHOOK_ID)
    }

    /// Svix's `svix-id` header.
    pub fn svix() -> Self {
        KeySource::Header(SVIX_ID)
    }

    /// GitHub's `X-GitHub-Delivery` (with `X-GitHub-Hook-ID`).
    pub fn github() -> Self {
        KeySource::GitHub
    }

    /// Any header.
    pub fn header(name: HeaderName) -> Self {
        KeySource::Header(name)
    }

    /// A JSON pointer into the body, such as Stripe's `/id`.
    pub fn json_pointer(pointer: impl Into<String>) -> Self {
        KeySource::JsonPointer(pointer.into())
    }

    /// A custom extractor.
    pub fn custom(extractor: impl KeyExtractor) -> Self {
        KeySource::Custom(Arc::new(extractor))
    }

    /// The sources tried when none are configured: `Idempotency-Key`, `webhook-id`, `svix-id`,
    /// then GitHub's headers.
    pub fn defaults() -> Vec<KeySource> {
        vec![
            KeySource::idempotency_key(),
            KeySource::standard_webhooks(),
            KeySource::svix(),
            KeySource::github(),
        ]
    }

    /// Whether this source needs the request body.
    pub fn reads_body(&self) -> bool {
        match self {
            KeySource::Header(_) | KeySource::GitHub => false,
            KeySource::JsonPointer(_) => true,
            KeySource::Custom(ex) => ex.reads_body(),
        }
    }

    /// How the source reads in error details: `header idempotency-key`, `JSON body at /id`.
    pub(crate) fn describe(&self) -> String {
        match self {
            KeySource::Header(name) => format!("header {name}"),
            KeySource::GitHub => format!("headers {GITHUB_HOOK_ID} + {GITHUB_DELIVERY}"),
            KeySource::JsonPointer(p) => format!("JSON body at {p}"),
            KeySource::Custom(ex) => format!("extractor {}", ex.name()),
        }
    }

    /// Appends the label that namespaces this source's keys (`idempotency-key`, `github`,
    /// `json:/id`, ...): written in place, since it is part of every key.
    fn write_label(&self, out: &mut Vec<u8>) {
        match self {
            KeySource::Header(name) => out.extend_from_slice(name.as_str().as_bytes()),
            KeySource::GitHub => out.extend_from_slice(b"github"),
            KeySource::JsonPointer(p) => {
                out.extend_from_slice(b"json:");
                out.extend_from_slice(p.as_bytes());
            }
            KeySource::Custom(ex) => out.extend_from_slice(ex.name().as_bytes()),
        }
    }

    fn extract(&self, req: &KeyRequest<'_>) -> Option<Vec<u8>> {
        match self {
            KeySource::Header(name) => header_bytes(req.headers, name),
            KeySource::GitHub => {
                let delivery = header_bytes(req.headers, &GITHUB_DELIVERY)?;
                Some(match header_bytes(req.headers, &GITHUB_HOOK_ID) {
                    Some(mut hook) => {
                        hook.push(b'/');
                        hook.extend_from_slice(&delivery);
                        hook
                    }
                    None => delivery,
                })
            }
            KeySource::JsonPointer(pointer) => {
                let id = super::pointer::scalar_at(req.body?, pointer)?;
                non_blank(id.as_bytes())
            }
            KeySource::Custom(ex) => {
                let id = ex.extract(req)?;
                non_blank(id.as_bytes())
            }
        }
    }
}

fn header_bytes(headers: &HeaderMap, name: &HeaderName) -> Option<Vec<u8>> {
    non_blank(headers.get(name)?.as_bytes())
}

fn non_blank(id: &[u8]) -> Option<Vec<u8>> {
    let id = id.trim_ascii();
    (!id.is_empty()).then(|| id.to_vec())
}

/// A key found by a source: the index of the source among those tried, and the sender's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FoundKey {
    pub(crate) source: usize,
    pub(crate) id: Vec<u8>,
}

impl FoundKey {
    /// The sender's id as text, for answers and logs.
    pub(crate) fn id_lossy(&self) -> String {
        String::from_utf8_lossy(&self.id).into_owned()
    }
}

/// The outcome of trying the sources.
#[derive(Debug)]
pub(crate) enum Extraction {
    /// A source matched.
    Found(FoundKey),
    /// A body source was reached before any match: read the body and try again.
    NeedBody,
    /// No source matched.
    Missing,
}

/// Tries `sources` in order. Without a body, the first body source ends the search with
/// [`Extraction::NeedBody`].
pub(crate) fn extract(sources: &[KeySource], req: &KeyRequest<'_>) -> Extraction {
    for (index, source) in sources.iter().enumerate() {
        if req.body.is_none() && source.reads_body() {
            return Extraction::NeedBody;
        }
        if let Some(id) = source.extract(req) {
            return Extraction::Found(FoundKey { source: index, id });
        }
    }
    Extraction::Missing
}

/// The route a request is namespaced under: axum's matched route template when the router
/// recorded one, else the URI path.
pub(crate) fn route<'a>(uri: &'a Uri, extensions: &'a Extensions) -> &'a str {
    #[cfg(feature = "axum")]
    if let Some(matched) = extensions.get::<axum::extract::MatchedPath>() {
        return matched.as_str();
    }
    let _ = extensions;
    uri.path()
}

/// The backend key of a request whose key `found` came from one of `sources`:
/// `"{METHOD} {route} {label}={id}"`, or `"{METHOD} sha256:{hex}"` of that when it is not a
/// valid key as is.
pub(crate) fn namespaced(
    method: &Method,
    route: &str,
    sources: &[KeySource],
    found: &FoundKey,
) -> String {
    let mut raw = Vec::with_capacity(method.as_str().len() + route.len() + found.id.len() + 24);
    raw.extend_from_slice(method.as_str().as_bytes());
    raw.push(b' ');
    raw.extend_from_slice(route.as_bytes());
    raw.push(b' ');
    if let Some(source) = sources.get(found.source) {
        source.write_label(&mut raw);
    }
    raw.push(b'=');
    raw.extend_from_slice(&found.id);
    match String::from_utf8(raw) {
        Ok(key) if key.len() <= MAX_KEY_BYTES && !validate::has_control(&key) => key,
        Ok(key) => hashed(method, key.as_bytes()),
        Err(e) => hashed(method, e.as_bytes()),
    }
}

fn hashed(method: &Method, raw: &[u8]) -> String {
    format!("{} sha256:{}", method, hex::encode(Sha256::digest(raw)))
}

#[cfg(test)]
pub(super) mod tests {
    use http::HeaderValue;
    use onceonly_runtime::__private::validate;

    use super::*;

    pub(in crate::dedup) fn request<'a>(
        headers: &'a HeaderMap,
        body: Option<&'a [u8]>,
        parts: &'a (Method, Uri, Extensions),
    ) -> KeyRequest<'a> {
        KeyRequest {
            method: &parts.0,
            uri: &parts.1,
            headers,
            extensions: &parts.2,
            body,
        }
    }

    pub(in crate::dedup) fn parts() -> (Method, Uri, Extensions) {
        (Method::POST, Uri::from_static("/hooks"), Extensions::new())
    }

    #[test]
    fn sources_are_tried_in_order() {
        let p = parts();
        let mut headers = HeaderMap::new();
        headers.insert(SVIX_ID, HeaderValue::from_static("msg_2"));
        headers.insert(WEBHOOK_ID, HeaderValue::from_static(" msg_1 "));
        let Extraction::Found(found) =
            extract(&KeySource::defaults(), &request(&headers, None, &p))
        else {
            panic!("expected a key")
        };
        assert_eq!(found.source, 1, "webhook-id");
        assert_eq!(found.id, b"msg_1");
    }

    #[test]
    fn blank_headers_do_not_count() {
        let p = parts();
        let mut headers = HeaderMap::new();
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("   "));
        assert!(matches!(
            extract(&KeySource::defaults(), &request(&headers, None, &p)),
            Extraction::Missing
        ));
    }

    #[test]
    fn github_combines_hook_and_delivery() {
        let p = parts();
        let mut headers = HeaderMap::new();
        headers.insert(GITHUB_DELIVERY, HeaderValue::from_static("72d3162e"));
        headers.insert(GITHUB_HOOK_ID, HeaderValue::from_static("292430182"));
        let Extraction::Found(found) =
            extract(&[KeySource::github()], &request(&headers, None, &p))
        else {
            panic!("expected a key")
        };
        assert_eq!(found.id, b"292430182/72d3162e");
    }

    #[test]
    fn json_pointer_needs_the_body_then_reads_it() {
        let p = parts();
        let headers = HeaderMap::new();
        let sources = [KeySource::idempotency_key(), KeySource::json_pointer("/id")];
        assert!(matches!(
            extract(&sources, &request(&headers, None, &p)),
            Extraction::NeedBody
        ));
        let body = br#"{"id":"evt_1","type":"charge.succeeded"}"#;
        let Extraction::Found(found) = extract(&sources, &request(&headers, Some(body), &p)) else {
            panic!("expected a key")
        };
        assert_eq!((found.source, &found.id[..]), (1, &b"evt_1"[..]));
        for body in [
            &b"not json"[..],
            br#"{"id":{"a":1}}"#,
            br#"{"id":""}"#,
            b"[]",
        ] {
            assert!(matches!(
                extract(&sources, &request(&headers, Some(body), &p)),
                Extraction::Missing
            ));
        }
        let Extraction::Found(found) =
            extract(&sources, &request(&headers, Some(br#"{"id":42}"#), &p))
        else {
            panic!("numbers are ids")
        };
        assert_eq!(found.id, b"42");
    }

    #[test]
    fn keys_are_namespaced_and_always_valid() {
        let sources = [
            KeySource::json_pointer("/id"),
            KeySource::github(),
            KeySource::custom(|_: &KeyRequest<'_>| None),
            KeySource::idempotency_key(),
        ];
        let key = |method: &Method, route: &str, source: usize, id: &[u8]| {
            let found = FoundKey {
                source,
                id: id.to_vec(),
            };
            namespaced(method, route, &sources, &found)
        };
        let post = &Method::POST;
        assert_eq!(
            key(post, "/webhooks/stripe", 0, b"evt_1"),
            "POST /webhooks/stripe json:/id=evt_1"
        );
        assert_eq!(key(post, "/gh", 1, b"1/d"), "POST /gh github=1/d");
        assert_eq!(key(post, "/c", 2, b"c"), "POST /c custom=c");
        assert_eq!(key(post, "/h", 3, b"h"), "POST /h idempotency-key=h");
        assert_ne!(key(post, "/a", 0, b"evt_1"), key(post, "/b", 0, b"evt_1"));
        assert_ne!(
            key(post, "/a", 0, b"evt_1"),
            key(&Method::PUT, "/a", 0, b"evt_1")
        );
        assert_ne!(key(post, "/a", 0, b"1"), key(post, "/a", 3, b"1"));
        for id in [vec![b'x'; 400], b"a\tb".to_vec(), vec![0xff, 0xfe]] {
            let key = key(post, "/a", 3, &id);
            validate::key(&key).unwrap();
            assert!(key.starts_with("POST sha256:"), "{key}");
        }
    }
}
