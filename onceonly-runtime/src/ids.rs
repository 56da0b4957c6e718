//! Random identifiers: lease ids, lock ids and acquisition names. 128 random bits each, so
//! they are unique without coordination between processes sharing a store, and unguessable.

/// `<prefix>_` and 32 lowercase hex digits.
///
/// Every check-lock makes one (before it knows whether it will claim), so this is on the
/// hottest path: written by hand, it costs a fraction of what `format!` does.
pub(crate) fn random(prefix: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = rand::random::<u128>();
    let mut id = String::with_capacity(prefix.len() + 33);
    id.push_str(prefix);
    id.push('_');
    for shift in (0..32).rev() {
        id.push(HEX[((bits >> (shift * 4)) & 0xf) as usize] as char);
    }
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
