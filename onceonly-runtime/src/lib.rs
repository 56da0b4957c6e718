//! # OnceOnly for Rust
//!
//! Exactly-once execution and governance for AI agents and webhook handlers. Senders retry,
//! agents loop, processes crash; with OnceOnly a charge, an email or a tool call still happens
//! once per business key, and its typed result is replayed to every later caller.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), onceonly_runtime::Error> {
//! use onceonly_runtime::OnceOnly;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Receipt { charge_id: String, cents: u64 }
//!
//! let client = OnceOnly::memory(); // embedded engine: no account, no network
//!
//! // L1: check-lock, for "have I seen this event?"
//! let lock = client.check_lock("stripe:evt_123").await?;
//! assert!(lock.should_proceed());
//!
//! // L3: a side effect exactly once, typed result replayed on duplicates
//! let charge = || async { Ok::<_, onceonly_runtime::Error>(Receipt { charge_id: "ch_1".into(), cents: 500 }) };
//! let first = client.ai().run_fn("charge:order-1", charge).await?;
//! let again = client.ai().run_fn("charge:order-1", charge).await?;
//! assert_eq!(first, again);
//! # Ok(()) }
//! ```
//!
//! The pieces:
//! - [`OnceOnly`]: the client handle (cheap to clone), with [`OnceOnly::check_lock`] and the
//!   [`ai()`](OnceOnly::ai) namespace (`run_fn`, `lease`, `extend`, `complete`, `fail`,
//!   `cancel`, `status`, `result`, `wait`).
//! - [`Engine`]: every rule, written once, over a [`Store`](store::Store) of atomic
//!   primitives; [`MemoryStore`](store::MemoryStore) is the default store.
//! - [`Backend`]: what a client talks to (the engine, or the HTTP API).
//! - [`HeldLease`]: holding a lease while local work runs (heartbeat, release, cancel on
//!   drop), the building block of `run_fn` and of HTTP middleware.
//! - [`Error`]: one error type; [`Error::is_retryable`] tells what a retry can fix.

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod account;
pub mod ai;
mod backend;
mod call;
mod client;
pub mod codec;
mod config;
pub mod engine;
mod error;
mod global;
pub mod holder;
#[cfg(feature = "http")]
pub mod http;
mod ids;
pub mod key;
#[cfg(feature = "macros")]
mod macro_support;
pub mod models;
pub mod run_fn;
pub mod store;
pub mod time;
pub mod validate;

#[cfg(feature = "testing")]
pub mod conformance;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;

pub use backend::{Backend, BoxFuture};
pub use call::Call;
pub use client::{CheckLock, OnceOnly};
pub use config::{ENV_API_KEY, ENV_BASE_URL, OnceOnlyBuilder, Target};
pub use engine::{Engine, EngineConfig};
pub use error::{Error, JsonMap, Result};
pub use holder::HeldLease;
pub use run_fn::{RunFn, RunFnOptions};

#[cfg(feature = "macros")]
pub use onceonly_macros::{idempotent, idempotent_ai};

/// The hosted API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.onceonly.tech/v1";

/// What the macros' generated code needs. Not a public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use serde;
    pub use serde_json;

    pub use crate::key::canonical_hash;
    #[cfg(feature = "macros")]
    #[allow(unused_imports, unreachable_pub)]
    pub use crate::macro_support::*;
}
