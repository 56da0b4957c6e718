//! Random identifiers: lease ids, lock ids and acquisition names. 128 random bits each, so
//! they double as unguessable tokens (fencing a release, naming a retried request).

/// `<prefix>_` and 32 hex digits.
pub(crate) fn random(prefix: &str) -> String {
    format!("{prefix}_{:032x}", rand::random::<u128>())
}
