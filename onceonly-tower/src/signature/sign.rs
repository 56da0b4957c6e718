//! The signing primitive: what a sender computes and a receiver checks.
//!
//! The signed material is the raw request body only; the timestamp travels beside it and is
//! checked for freshness. This is the scheme OnceOnly uses when it calls a registered tool's
//! URL, so this module is the one place both directions use.

use std::time::Duration;

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use onceonly_runtime::__private as signature;
use onceonly_runtime::wire::header;

/// Header carrying the lowercase hex HMAC-SHA256 of the raw body.
pub const SIGNATURE_HEADER: HeaderName = header::SIGNATURE;
/// Header naming the algorithm; always [`ALGORITHM`].
pub const ALGORITHM_HEADER: HeaderName = header::SIGNATURE_ALG;
/// Header carrying the signing time, in unix seconds.
pub const TIMESTAMP_HEADER: HeaderName = header::TIMESTAMP;
/// The only algorithm: HMAC-SHA256 keyed by the shared secret (as UTF-8 bytes).
pub const ALGORITHM: &str = "hmac_sha256";
/// How far a timestamp may be from the receiver's clock, either way (300 s).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Lowercase hex HMAC-SHA256 of `body` keyed by `secret`.
///
/// ```
/// // RFC 4231, test case 2
/// let sig = onceonly_tower::signature::signature_hex(b"Jefe", b"what do ya want for nothing?");
/// assert_eq!(sig, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
/// ```
pub fn signature_hex(secret: &[u8], body: &[u8]) -> String {
    signature::signature_hex(secret, body)
}

/// Signs `body` at `timestamp` (unix seconds): the three headers a receiver checks.
///
/// ```
/// use onceonly_tower::signature::{sign, unix_now, SIGNATURE_HEADER};
///
/// let body = br#"{"args":{"to":"a@example.com"}}"#;
/// let signed = sign("tool-secret", body, unix_now());
/// let headers = signed.headers();
/// assert_eq!(headers[SIGNATURE_HEADER], signed.signature.as_str());
/// assert_eq!(headers.len(), 3);
/// ```
pub fn sign(secret: impl AsRef<[u8]>, body: &[u8], timestamp: u64) -> Signed {
    Signed {
        signature: signature_hex(secret.as_ref(), body),
        timestamp,
    }
}

/// The result of [`sign`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// Lowercase hex HMAC-SHA256 of the body.
    pub signature: String,
    /// Unix seconds.
    pub timestamp: u64,
}

impl Signed {
    /// The three headers as a map.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(3);
        self.apply(&mut headers);
        headers
    }

    /// Sets the three headers on `headers`, replacing earlier values.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in self.pairs() {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }

    /// The three headers as name/value pairs, for clients with their own header types.
    pub fn pairs(&self) -> [(HeaderName, String); 3] {
        [
            (SIGNATURE_HEADER, self.signature.clone()),
            (ALGORITHM_HEADER, ALGORITHM.to_owned()),
            (TIMESTAMP_HEADER, self.timestamp.to_string()),
        ]
    }
}

/// The current time in unix seconds.
pub fn unix_now() -> u64 {
    signature::unix_now()
}
