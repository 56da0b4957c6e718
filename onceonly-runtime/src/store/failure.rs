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
    /// The store answered, with a value that does not read back (damaged, or written by an
    /// incompatible release): not an outage, so no fail-open decision is taken on it.
    damaged: bool,
}

impl StoreFailure {
    /// The runtime error for `op` of `store` failing with `source`.
    pub(crate) fn error(
        store: &'static str,
        op: &'static str,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> crate::Error {
        Self::wrapped(store, op, source.into(), false)
    }

    /// The runtime error for `op` of `store` reading a stored value it cannot make out.
    pub(crate) fn damaged(
        store: &'static str,
        op: &'static str,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> crate::Error {
        Self::wrapped(store, op, source.into(), true)
    }

    fn wrapped(
        store: &'static str,
        op: &'static str,
        source: Box<dyn StdError + Send + Sync>,
        damaged: bool,
    ) -> crate::Error {
        crate::Error::Store(Box::new(StoreFailure {
            store,
            op,
            source,
            damaged,
        }))
    }

    /// Whether `e` (the source of an [`Error::Store`](crate::Error::Store)) is a damaged value
    /// rather than a store that did not answer.
    pub(crate) fn is_damaged(e: &(dyn StdError + Send + Sync + 'static)) -> bool {
        e.downcast_ref::<StoreFailure>().is_some_and(|f| f.damaged)
    }
}

impl fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (store, op, source) = (self.store, self.op, &self.source);
        if self.damaged {
            write!(f, "{store} {op} read a value it cannot make out: {source}")
        } else {
            write!(f, "{store} {op} failed: {source}")
        }
    }
}

impl StdError for StoreFailure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}
