use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, StatusCode};
use secrecy::{ExposeSecret, SecretString};

use onceonly_runtime::__private as signature;

use super::sign::{
    ALGORITHM, ALGORITHM_HEADER, DEFAULT_TOLERANCE, SIGNATURE_HEADER, TIMESTAMP_HEADER, unix_now,
};

/// Default largest body a verifier reads (1 MiB).
pub const DEFAULT_MAX_SIGNED_BODY_BYTES: usize = 1 << 20;

/// Checks `X-OnceOnly-Signature` on incoming requests. Cheap to clone.
///
/// Use it through [`VerifySignatureLayer`](super::VerifySignatureLayer), the `SignedBody` and
/// `SignedJson` axum extractors, or directly with [`verify`](SignatureVerifier::verify).
///
/// ```
/// use onceonly_tower::signature::{sign, unix_now, SignatureError, SignatureVerifier};
///
/// let verifier = SignatureVerifier::new("tool-secret");
/// let body = br#"{"args":{}}"#;
/// let now = unix_now();
/// assert!(verifier.verify(&sign("tool-secret", body, now).headers(), body).is_ok());
/// let forged = sign("wrong-secret", body, now).headers();
/// assert!(matches!(verifier.verify(&forged, body), Err(SignatureError::Mismatch)));
/// ```
#[derive(Clone)]
#[must_use]
pub struct SignatureVerifier {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    secret: SecretString,
    tolerance: Duration,
    max_body_bytes: usize,
}

impl fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureVerifier")
            .field("secret", &"[redacted]")
            .field("tolerance", &self.inner.tolerance)
            .field("max_body_bytes", &self.inner.max_body_bytes)
            .finish()
    }
}

impl SignatureVerifier {
    /// A verifier for the tool's shared secret, with a 300 s timestamp tolerance.
    pub fn new(secret: impl Into<String>) -> Self {
        SignatureVerifier {
            inner: Arc::new(Inner {
                secret: SecretString::from(secret.into()),
                tolerance: DEFAULT_TOLERANCE,
                max_body_bytes: DEFAULT_MAX_SIGNED_BODY_BYTES,
            }),
        }
    }

    /// How far the timestamp may be from now, either way (default 300 s).
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        Arc::make_mut(&mut self.inner).tolerance = tolerance;
        self
    }

    /// Largest body read for verification (default 1 MiB); larger ones get `413`.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        Arc::make_mut(&mut self.inner).max_body_bytes = limit;
        self
    }

    /// The body limit.
    pub fn body_limit(&self) -> usize {
        self.inner.max_body_bytes
    }

    /// Checks the headers against `body` now.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
        self.verify_at(headers, body, unix_now())
    }

    /// Checks the headers against `body` as of `now` (unix seconds).
    pub fn verify_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: u64,
    ) -> Result<(), SignatureError> {
        let signature = header(headers, &SIGNATURE_HEADER)?;
        let algorithm = header(headers, &ALGORITHM_HEADER)?;
        if !algorithm.eq_ignore_ascii_case(ALGORITHM) {
            return Err(SignatureError::UnsupportedAlgorithm(algorithm.to_owned()));
        }
        let timestamp: u64 = header(headers, &TIMESTAMP_HEADER)?
            .parse()
            .map_err(|_| SignatureError::InvalidTimestamp)?;
        let skew = now.abs_diff(timestamp);
        if skew > self.inner.tolerance.as_secs() {
            return Err(SignatureError::Expired { skew_secs: skew });
        }
        // Constant-time comparison, in the runtime's one signing primitive.
        let secret = self.inner.secret.expose_secret().as_bytes();
        if signature::signature_matches(secret, body, signature) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<&'a str, SignatureError> {
    let missing = || SignatureError::MissingHeader(name.clone());
    let value = headers.get(name).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?.trim();
    if value.is_empty() {
        return Err(missing());
    }
    Ok(value)
}

/// Why a signature was refused. Every case answers `401`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// A header is absent, empty or not text.
    MissingHeader(HeaderName),
    /// `X-OnceOnly-Signature-Alg` is not `hmac_sha256`.
    UnsupportedAlgorithm(String),
    /// `X-OnceOnly-Timestamp` is not unix seconds.
    InvalidTimestamp,
    /// The timestamp is further from now than the tolerance.
    Expired {
        /// Distance from the receiver's clock, in seconds.
        skew_secs: u64,
    },
    /// The signature does not match the body.
    Mismatch,
}

impl SignatureError {
    /// The HTTP status a refused request gets: `401`.
    pub fn status(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::MissingHeader(name) => write!(f, "missing signature header {name}"),
            SignatureError::UnsupportedAlgorithm(alg) => {
                write!(
                    f,
                    "unsupported signature algorithm `{alg}`; expected {ALGORITHM}"
                )
            }
            SignatureError::InvalidTimestamp => {
                write!(f, "{TIMESTAMP_HEADER} must be unix seconds")
            }
            SignatureError::Expired { skew_secs } => write!(
                f,
                "signature timestamp is {skew_secs}s away from the server clock; outside the allowed window"
            ),
            SignatureError::Mismatch => f.write_str("signature does not match the request body"),
        }
    }
}

impl std::error::Error for SignatureError {}

#[cfg(test)]
mod tests {
    use super::super::sign::sign;
    use super::*;

    #[test]
    fn every_refusal() {
        let v = SignatureVerifier::new("s3cret");
        let body = b"{\"args\":{}}";
        let now = 1_700_000_000;
        let good = sign("s3cret", body, now).headers();
        assert_eq!(v.verify_at(&good, body, now + 300), Ok(()));
        assert_eq!(v.verify_at(&good, body, now - 300), Ok(()));
        assert_eq!(
            v.verify_at(&good, body, now + 301),
            Err(SignatureError::Expired { skew_secs: 301 })
        );
        assert_eq!(
            v.verify_at(&good, b"{\"args\":{\"x\":1}}", now),
            Err(SignatureError::Mismatch)
        );
        for name in [SIGNATURE_HEADER, ALGORITHM_HEADER, TIMESTAMP_HEADER] {
            let mut h = good.clone();
            h.remove(&name);
            assert_eq!(
                v.verify_at(&h, body, now),
                Err(SignatureError::MissingHeader(name))
            );
        }
        let mut h = good.clone();
        h.insert(ALGORITHM_HEADER, "hmac_sha1".parse().unwrap());
        assert!(matches!(
            v.verify_at(&h, body, now),
            Err(SignatureError::UnsupportedAlgorithm(_))
        ));
        let mut h = good.clone();
        h.insert(TIMESTAMP_HEADER, "yesterday".parse().unwrap());
        assert_eq!(
            v.verify_at(&h, body, now),
            Err(SignatureError::InvalidTimestamp)
        );
        let mut h = good.clone();
        h.insert(SIGNATURE_HEADER, "zz".parse().unwrap());
        assert_eq!(v.verify_at(&h, body, now), Err(SignatureError::Mismatch));
        let mut h = good;
        h.insert(SIGNATURE_HEADER, "abcd".parse().unwrap());
        assert_eq!(v.verify_at(&h, body, now), Err(SignatureError::Mismatch));
    }

    #[test]
    fn debug_hides_the_secret() {
        let v = SignatureVerifier::new("very-secret-value");
        assert!(!format!("{v:?}").contains("very-secret-value"));
    }
}
