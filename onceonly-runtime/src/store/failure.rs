//! The context of a failed store primitive: which store, which primitive, and the cause.

use std::error::Error as StdError;
use std::fmt;

/// A failed store primitive, e.g. `redis claim_lock failed: Connection refused`. Wrapped in
/// [`Error::Store`](crate::Error::Store), with the driver's error kept as its source.
#[derive(Debug)]
pub(crate) struct StoreFailure {
    store: &'static str,
    op: &'static str,
    source: Box<dyn StdError + Send + Sync>,
}

impl StoreFailure {
    /// The runtime error for `op` of `store` failing with `source`.
    pub(crate) fn error(
        store: &'static str,
        op: &'static str,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> crate::Error {
        crate::Error::Store(Box::new(StoreFailure {
            store,
            op,
            source: source.into(),
        }))
    }
}

impl fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} failed: {}", self.store, self.op, self.source)
    }
}

impl StdError for StoreFailure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}
