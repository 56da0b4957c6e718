//! Eight bytes at a time: the tests behind the key and JSON scans, exact about whether a word
//! holds such a byte (not about which one).

/// `0x01` in every byte.
const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
/// The high bit of every byte.
const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);

/// The eight bytes of `chunk` as one word.
pub(super) fn load(chunk: &[u8]) -> u64 {
    u64::from_ne_bytes(chunk.try_into().expect("eight bytes"))
}

/// Whether any byte of `w` is 0x80 or above.
pub(super) fn has_high(w: u64) -> bool {
    w & HIGH != 0
}

/// Whether any byte of `w` is below `n` (`n` at most 0x80).
pub(super) fn has_below(w: u64, n: u8) -> bool {
    // A byte's high bit is set after the subtraction only when it was below `n` (or borrowed
    // from a lower byte that was); `!w` drops bytes that were 0x80 or above to begin with.
    w.wrapping_sub(u64::from(n) * ONES) & !w & HIGH != 0
}

/// Whether any byte of `w` equals `b`.
pub(super) fn has_byte(w: u64, b: u8) -> bool {
    has_below(w ^ (u64::from(b) * ONES), 1)
}
