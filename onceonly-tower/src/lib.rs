//! # OnceOnly for tower and axum
//!
//! Webhook senders deliver at least once: Stripe, GitHub and every Standard Webhooks sender
//! retry on timeouts and errors, sometimes for days, and sometimes deliver the same event twice
//! at the same moment. [`OnceOnlyLayer`] makes a route process each event once, across retries,
//! concurrent deliveries and replicas, without losing an event whose first delivery failed.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! use axum::{Router, body::Body, http::Request, routing::post};
//! use onceonly_runtime::OnceOnly;
//! use onceonly_tower::OnceOnlyLayer;
//! use tower::ServiceExt;
//!
//! let runs = Arc::new(AtomicUsize::new(0));
//! let counter = runs.clone();
//! let app = Router::new()
//!     .route("/webhooks/stripe", post(move || async move {
//!         counter.fetch_add(1, Ordering::SeqCst); // charge, email, ... once per event
//!         "ok"
//!     }))
//!     // Stripe puts the event id in the body: {"id": "evt_...", ...}
//!     .layer(OnceOnlyLayer::new(OnceOnly::memory()).json_pointer("/id"));
//!
//! let delivery = || Request::post("/webhooks/stripe").body(Body::from(r#"{"id":"evt_1"}"#)).unwrap();
//! let first = app.clone().oneshot(delivery()).await.unwrap();
//! let again = app.clone().oneshot(delivery()).await.unwrap();
//! assert_eq!(first.status(), 200);
//! assert_eq!(again.headers()["x-onceonly-status"], "duplicate");
//! assert_eq!(runs.load(Ordering::SeqCst), 1);
//! # }
//! ```
//!
//! ## Keys
//!
//! The layer looks for the delivery's id in the configured [`KeySource`]s, in order:
//! `Idempotency-Key`, Standard Webhooks' `webhook-id`, `svix-id`, GitHub's `X-GitHub-Hook-ID` +
//! `X-GitHub-Delivery` by default; add a JSON pointer into the body
//! ([`json_pointer("/id")`](OnceOnlyLayer::json_pointer) for Stripe) or your own
//! [`KeyExtractor`]. Keys are namespaced by method and route (axum's matched route template
//! when there is one, else the path), so the same id on two routes does not collide. One
//! route's key is shared by all its paths: in check-lock mode a key used on `/orders/1/pay` is
//! a duplicate on `/orders/2/pay`; in replay mode it is a different request (`422`).
//!
//! A request without a key passes through untouched, at the cost of a few header lookups, or
//! gets `400` with [`require_key(true)`](OnceOnlyLayer::require_key). Only `POST` is handled
//! unless [`methods`](OnceOnlyLayer::methods) says otherwise. Bodies the layer reads are limited
//! to [`max_body_bytes`](OnceOnlyLayer::max_body_bytes) (`413` beyond).
//!
//! ## Modes
//!
//! - [`Mode::CheckLock`] (default): one round trip per request. The first delivery runs the
//!   handler; duplicates get `200` with `X-OnceOnly-Status: duplicate` and a small JSON body,
//!   without reaching the handler. A `5xx` answer, a handler error, a request dropped before
//!   the handler answered (the sender hung up), or a request body that failed to arrive (the
//!   sender hung up mid-upload, or a body-limit layer outside this one cut it off) releases
//!   the key, so the sender's retry is processed. That holds whatever the handler then
//!   answered, even 2xx: a handler that acts on part of a body it could not read whole must
//!   make that action idempotent itself. Other answers (2xx, 3xx, 4xx) keep the key.
//! - [`Mode::Replay`]: for APIs whose clients read the answer (IETF `Idempotency-Key`, Stripe's
//!   semantics). The first request holds a lease while the handler runs; its response (status,
//!   an allow-list of headers, the body up to
//!   [`max_response_bytes`](OnceOnlyLayer::max_response_bytes)) is stored, and later requests
//!   with the key get it back byte for byte with `Idempotency-Replayed: true`. A request that
//!   arrives while the first still runs gets `409` with `Retry-After`; the same key with a
//!   different request (a SHA-256 fingerprint of the path, query and body) gets `422`. The
//!   first response is read up to that cap before it is sent on, so a streamed response
//!   reaches its first client only then (or at its end). Which statuses are stored is decided by
//!   [`is_stored`]: everything but `5xx` and the "try later" `408`/`409`/`425`/`429`, which
//!   release the key like a failed handler or a dropped request does. The body fingerprint
//!   also travels as the lease's metadata, so while the first request runs a duplicate with a
//!   different body already gets `422` (on backends that show a holder's metadata to others:
//!   the embedded engine and `onceonly-server`; on others it gets `409`, then `422` once the
//!   response is stored). If the first request fails and gives the key back, the key is free
//!   again: the next request with it runs, whatever its body, and its request is the one a
//!   later different request is compared with.
//!
//! ## Outages
//!
//! When the backend cannot be reached (transport error, timeout, store failure, 5xx), the layer
//! follows [`fail_open`](OnceOnlyLayer::fail_open) (run the handler without deduplication and
//! log a `tracing` warning) or [`fail_closed`](OnceOnlyLayer::fail_closed) (`503` with
//! `Retry-After`). The default is the client's own setting. A backend that refuses (unauthorized,
//! over a plan limit, rate limited, over a daily quota) always gets `503`: refusals never bypass
//! deduplication. A rate limit's or a quota's own wait becomes the `Retry-After` (for a quota,
//! the time to its reset at midnight UTC).
//! Every answer of the layer is an HTTP response with a JSON `{"detail": ...}` or the small
//! duplicate body; the service's error type is the inner service's.
//!
//! The hosted API has no way to release a check-lock, so on it a failed first delivery keeps
//! its key until the TTL ends; [`Mode::Replay`] releases through leases and works everywhere.
//!
//! ## Tracing
//!
//! Each request the layer deduplicates (one with a key) runs in an `INFO` span named
//! `onceonly.dedup`; the handler and the layer's own log events run inside it. It opens once
//! the key is known (after the body is read when the key comes from it) and carries:
//!
//! - `mode`: `check_lock` or `replay`; `backend`: the client's backend (`embedded`, `http`).
//! - `key_hash`: the first 8 bytes of the SHA-256 of the namespaced key, in hex. Keys often
//!   hold personal data (an email, an order number), so neither the key nor the sender's id
//!   appears in the span or in the layer's log events; the hash still tells one delivery's
//!   retries from another's. It is not a secret: whoever can guess a key can confirm it.
//!   The API key never appears.
//! - `status`: the HTTP status answered (absent when the handler failed with an error).
//! - `duration_ms`: from the moment the key is known to the answer.
//! - `outcome`:
//!
//! | outcome | check-lock | replay |
//! |---|---|---|
//! | `executed` | the handler ran and its answer kept the key | the handler ran and its response was stored |
//! | `replayed` | a duplicate: `200` `X-OnceOnly-Status: duplicate`, handler not run | the stored response replayed |
//! | `waited` | — | `409` with `Retry-After`: the first request with the key is still running |
//! | `released` | `5xx`, handler error or dropped request: the key was given back | the same, and the "try later" statuses that [`is_stored`] refuses |
//! | `failed` | `503`: backend down (fail-closed) or refusing | `503` likewise; `422` (other body); `409` after a failure for good |
//! | `lease_lost` | — | the handler ran but the lease had passed to another request, so nothing was stored |
//! | `fail_open` | backend down, handler run without deduplication | the same |
//!
//! A request dropped before a remote backend answered has no outcome (its claim still
//! finishes in the background and, if it took the key, gives it back). Without a subscriber that
//! enables the span, the layer computes none of it (no clock read, no hash). Requests without
//! a key get no span.
//!
//! ## Plain tower
//!
//! The layer fits `Router::layer`, `Router::route_layer`, `MethodRouter::layer` and any tower
//! service over `http::Request<B>` with `B: http_body::Body<Data = Bytes>`. The inner service is
//! called with `Request<`[`RequestBody<B>`]`>` (the original body, or the bytes the layer read)
//! and the response body becomes [`ResponseBody`].
//!
//! ## Signed tool calls
//!
//! [`signature`] verifies `X-OnceOnly-Signature` on tool endpoints that OnceOnly calls, as a
//! layer or as axum extractors, and holds the signing primitive itself.

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod body;
mod buffer;
mod dedup;
mod response;
pub mod signature;

pub use body::{BoxError, RequestBody, ResponseBody};
pub use dedup::{
    DEFAULT_LEASE_TTL, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TTL,
    IDEMPOTENCY_REPLAYED, KeyExtractor, KeyRequest, KeySource, Mode, ONCEONLY_STATUS,
    OnceOnlyLayer, OnceOnlyService, ResponseFuture, is_stored,
};

/// Header names the layer reads keys from.
pub mod headers {
    pub use crate::dedup::key::{
        GITHUB_DELIVERY, GITHUB_HOOK_ID, IDEMPOTENCY_KEY, SVIX_ID, WEBHOOK_ID,
    };
}
