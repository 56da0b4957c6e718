//! Random identifiers: lease ids, lock ids and acquisition names. 128 random bits each, so
//! they are unique without coordination between processes sharing a store, and unguessable.

/// `<prefix>_` and 32 lowercase hex digits.
///
/// Every check-lock makes one (before it knows whether it will claim), so the id is written
/// into one buffer of the right size rather than through `format!`.
pub(crate) fn random(prefix: &str) -> String {
    let mut digits = [0u8; 32];
    hex::encode_to_slice(rand::random::<[u8; 16]>(), &mut digits).expect("32 digits for 16 bytes");
    let mut id = String::with_capacity(prefix.len() + 1 + digits.len());
    id.push_str(prefix);
    id.push('_');
    id.push_str(std::str::from_utf8(&digits).expect("hex digits are ASCII"));
    id
}

#[cfg(test)]
mod tests {
    use super::random;

    #[test]
    fn shape_and_uniqueness() {
        let a = random("lock");
        assert_eq!(a.len(), 5 + 32);
        assert!(a.starts_with("lock_"));
        assert!(
            a[5..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(a, random("lock"));
    }
}
