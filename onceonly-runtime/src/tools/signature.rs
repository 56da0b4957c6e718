//! The signing primitive of tool calls, both directions: what the engine computes when it
//! calls a tool's URL, and what `onceonly-tower`'s verifier checks.
//!
//! The signed material is the raw request body only, keyed by the tool's shared secret (its
//! UTF-8 bytes); the timestamp travels beside it and is checked for freshness by the receiver.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac
}

/// Lowercase hex HMAC-SHA256 of `body` keyed by `secret`: the value of
/// `X-OnceOnly-Signature`.
pub fn signature_hex(secret: &[u8], body: &[u8]) -> String {
    hex::encode(mac(secret, body).finalize().into_bytes())
}

/// Whether `given_hex` (hex digits in either case) is the HMAC-SHA256 of `body` keyed by
/// `secret`. The comparison takes the same time whatever the digits; text that is not hex is
/// a mismatch.
pub fn signature_matches(secret: &[u8], body: &[u8], given_hex: &str) -> bool {
    match hex::decode(given_hex) {
        Ok(given) => mac(secret, body).verify_slice(&given).is_ok(),
        Err(_) => false,
    }
}

/// The current time in unix seconds: the value of `X-OnceOnly-Timestamp`.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4231_case_2() {
        let sig = signature_hex(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(signature_matches(
            b"Jefe",
            b"what do ya want for nothing?",
            &sig
        ));
        assert!(signature_matches(
            b"Jefe",
            b"what do ya want for nothing?",
            &sig.to_uppercase()
        ));
        assert!(!signature_matches(b"Jefe", b"what do ya want?", &sig));
        assert!(!signature_matches(
            b"jefe",
            b"what do ya want for nothing?",
            &sig
        ));
        assert!(!signature_matches(b"Jefe", b"", "zz"));
        assert!(!signature_matches(b"Jefe", b"", &sig[..10]));
    }
}
