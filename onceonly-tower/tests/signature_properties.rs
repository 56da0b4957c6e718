//! Property tests of the signature headers: what `sign` writes verifies for any secret, body
//! and time within the tolerance (also in upper case and padded), anything else is refused
//! with the right reason, and arbitrary header values never verify or panic.
//!
//! Each property runs 64 cases; `PROPTEST_CASES=N` runs N instead.

use http::{HeaderMap, HeaderValue};
use onceonly_tower::signature::{
    ALGORITHM, ALGORITHM_HEADER, DEFAULT_TOLERANCE, SIGNATURE_HEADER, SignatureError,
    SignatureVerifier, TIMESTAMP_HEADER, sign, signature_hex,
};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 64;
    }
    config.failure_persistence = None;
    config
}

const TOLERANCE: u64 = DEFAULT_TOLERANCE.as_secs();

fn headers(signature: &str, algorithm: &str, timestamp: &str) -> Option<HeaderMap> {
    let mut h = HeaderMap::new();
    h.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).ok()?);
    h.insert(ALGORITHM_HEADER, HeaderValue::from_str(algorithm).ok()?);
    h.insert(TIMESTAMP_HEADER, HeaderValue::from_str(timestamp).ok()?);
    Some(h)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn what_sign_writes_verifies_within_the_tolerance(
        secret in ".{1,40}",
        body in prop::collection::vec(any::<u8>(), 0..256),
        timestamp in 0u64..4_000_000_000,
        // The edges of the tolerance, or anything inside it.
        skew in prop_oneof![
            Just(-(TOLERANCE as i64)),
            Just(TOLERANCE as i64),
            -(TOLERANCE as i64)..=TOLERANCE as i64,
        ],
    ) {
        let now = timestamp.saturating_add_signed(skew);
        let verifier = SignatureVerifier::new(secret.clone());
        let signed = sign(&secret, &body, timestamp).headers();
        prop_assert_eq!(verifier.verify_at(&signed, &body, now), Ok(()));

        // Hex digits in upper case and blanks around the values are accepted too.
        let hex = signature_hex(secret.as_bytes(), &body).to_uppercase();
        let loose = headers(&format!(" {hex}\t"), &ALGORITHM.to_uppercase(), &format!(" {timestamp} ")).unwrap();
        prop_assert_eq!(verifier.verify_at(&loose, &body, now), Ok(()));
    }

    #[test]
    fn another_body_or_secret_is_a_mismatch(
        secret in ".{1,40}",
        other_secret in ".{1,40}",
        body in prop::collection::vec(any::<u8>(), 1..256),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let now = 1_700_000_000;
        let signed = sign(&secret, &body, now).headers();
        let mut tampered = body.clone();
        tampered[flip.index(body.len())] ^= 1 << bit;
        let verifier = SignatureVerifier::new(secret.clone());
        prop_assert_eq!(verifier.verify_at(&signed, &tampered, now), Err(SignatureError::Mismatch));
        // HMAC pads short keys with zeros: "k" and "k\0" are the same key.
        if other_secret.trim_end_matches('\0') != secret.trim_end_matches('\0') {
            prop_assert_eq!(
                SignatureVerifier::new(other_secret).verify_at(&signed, &body, now),
                Err(SignatureError::Mismatch)
            );
        }
    }

    #[test]
    fn a_timestamp_outside_the_tolerance_is_expired_with_its_skew(
        timestamp in 0u64..4_000_000_000,
        skew in prop_oneof![Just(TOLERANCE + 1), (TOLERANCE + 1)..10_000_000],
        later in any::<bool>(),
    ) {
        let now = if later { timestamp + skew } else { timestamp.saturating_sub(skew) };
        prop_assume!(now.abs_diff(timestamp) > TOLERANCE);
        let signed = sign("s", b"{}", timestamp).headers();
        prop_assert_eq!(
            SignatureVerifier::new("s").verify_at(&signed, b"{}", now),
            Err(SignatureError::Expired { skew_secs: now.abs_diff(timestamp) })
        );
    }

    #[test]
    fn arbitrary_header_values_never_verify(
        signature in "[ -~]{0,80}",
        algorithm in prop_oneof![Just(ALGORITHM.to_owned()), "[ -~]{0,16}"],
        timestamp in prop_oneof!["[0-9]{1,12}", "[ -~]{0,16}"],
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let Some(h) = headers(&signature, &algorithm, &timestamp) else {
            return Ok(());
        };
        let verdict = SignatureVerifier::new("secret").verify_at(&h, &body, 1_700_000_000);
        prop_assert!(verdict.is_err(), "{:?} {:?} {:?}", signature, algorithm, timestamp);
    }
}
