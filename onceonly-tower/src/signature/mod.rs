//! Verifying that a request came from OnceOnly: signed tool calls.
//!
//! When an agent's governed call runs a registered tool, OnceOnly POSTs to the tool's URL with
//! three headers: `X-OnceOnly-Signature` (lowercase hex HMAC-SHA256 of the raw body, keyed by
//! the tool's shared secret), `X-OnceOnly-Signature-Alg: hmac_sha256` and
//! `X-OnceOnly-Timestamp` (unix seconds). A tool endpoint that checks them knows the call is
//! genuine and recent; anyone else gets `401` with a JSON detail.
//!
//! Three ways to check, all with the same [`SignatureVerifier`] (constant-time comparison,
//! 300 s timestamp tolerance either way):
//! - [`VerifySignatureLayer`], on a router or any tower service;
//! - the axum extractors [`SignedBody`] and [`SignedJson`] (feature `axum`);
//! - [`SignatureVerifier::verify`] on headers and bytes you already have.
//!
//! [`sign`] is the other side: what OnceOnly (or a test) sends. Because the timestamp is not
//! part of the signed material, the signature proves who sent the body, and the tolerance
//! bounds how long a captured request can be replayed; tool handlers should still be
//! idempotent.

mod future;
mod layer;
mod service;
mod sign;
mod verify;

#[cfg(feature = "axum")]
mod extract;

#[cfg(feature = "axum")]
pub use self::extract::{SignatureRejection, SignedBody, SignedJson};
pub use self::future::VerifyFuture;
pub use self::layer::VerifySignatureLayer;
pub use self::service::VerifySignature;
pub use self::sign::{
    ALGORITHM, ALGORITHM_HEADER, DEFAULT_TOLERANCE, SIGNATURE_HEADER, Signed, TIMESTAMP_HEADER,
    sign, signature_hex, unix_now,
};
pub use self::verify::{DEFAULT_MAX_SIGNED_BODY_BYTES, SignatureError, SignatureVerifier};
