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
//! # The surface
//!
//! At the root, what most programs name:
//! - [`OnceOnly`]: the client handle (cheap to clone). [`OnceOnly::memory`] (embedded),
//!   [`OnceOnly::new`] (hosted API), [`OnceOnly::builder`] ([`OnceOnlyBuilder`]),
//!   [`OnceOnly::from_env`] ([`ENV_BASE_URL`], [`ENV_API_KEY`], read by [`Target`]).
//! - Its calls: [`OnceOnly::check_lock`] ([`CheckLock`]), `release_lock`, and the account
//!   calls `me`, `usage` ([`GetUsage`]), `usage_all`, `events` ([`GetEvents`]), `post_event`,
//!   `list_runs` ([`ListRuns`]), `get_run_timeline` ([`GetRunTimeline`]), `metrics`,
//!   `update_notifications` ([`UpdateNotifications`]).
//! - [`Error`] (one error type; [`Error::is_retryable`], [`Error::is_outage`]), [`Result`],
//!   [`JsonMap`].
//! - `#[idempotent]` and `#[idempotent_ai]` (feature `macros`, on by default), and
//!   [`RunFnOptions`], which they fill.
//! - [`canonical_hash`]: the digest in the keys `#[idempotent]` derives, to compute one by hand.
//! - [`HeldLease`]: holding a lease while local work runs (heartbeat, release, fail, cancel on
//!   drop), the building block of `run_fn` and of HTTP middleware.
//! - [`Engine`] and [`EngineConfig`]: every rule, written once, over a store, with optional
//!   per-account daily [`Quotas`]; [`Backend`] and [`BoxFuture`]: what a client talks to (the
//!   engine, or the HTTP API).
//!
//! Modules:
//! - [`ai`]: the `client.ai()` namespace: `run_fn`, `run_tool`, `run`, `run_and_wait`,
//!   `wait`, the lease API `lease / extend / complete / fail / cancel / status / result`, with
//!   their builders, and `worker` ([`ai::Worker`], [`ai::Job`]), which executes queued runs.
//! - [`gov`]: the `client.gov()` namespace: policies, templates, the kill switch, audit logs,
//!   agent metrics and the tools registry.
//! - [`models`]: the typed requests and answers of every call, shared by every backend.
//! - [`wire`]: the wire vocabulary: header names, refusal codes, error codes.
//! - [`engine`]: accounts, plans and tenants of the embedded engine.
//! - [`store`]: the [`Store`](store::Store) trait of atomic primitives and the stores.
//! - [`http`]: the HTTP backend's configuration (feature `http`, on by default).
//! - [`time`]: the engine's clock.
//! - `integrations`: guards for LLM tool frameworks, one line per tool or server: a rig
//!   `Tool` wrapped in `integrations::rig::Governed` (feature `rig`), every tool of an rmcp
//!   `ToolRouter` through `integrations::rmcp::guard` (feature `rmcp`). Each call is governed
//!   by the agent's policy and runs once per distinct arguments; a refusal is an answer the
//!   model reads.
//! - `conformance` (feature `testing`): the suite every store must pass.

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod account;
pub mod ai;
mod backend;
mod call;
mod client;
mod codec;
mod config;
pub mod engine;
mod error;
mod global;
pub mod gov;
mod holder;
#[cfg(feature = "http")]
pub mod http;
mod ids;
mod in_flight;
#[cfg(any(feature = "rig", feature = "rmcp"))]
pub mod integrations;
mod key;
#[cfg(feature = "macros")]
mod macro_support;
pub mod models;
mod run_fn;
pub mod store;
mod target;
mod telemetry;
pub mod time;
pub(crate) mod tools;
mod unwind;
mod validate;
pub mod wire;
mod worker;

#[cfg(feature = "testing")]
pub mod conformance;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;

pub use account::{GetEvents, GetRunTimeline, GetUsage, ListRuns, UpdateNotifications};
pub use backend::{Backend, BoxFuture};
pub use client::{CheckLock, OnceOnly};
pub use config::{ENV_API_KEY, ENV_BASE_URL, OnceOnlyBuilder};
pub use engine::{Engine, EngineConfig, Quotas};
pub use error::{Error, JsonMap, Result};
pub use holder::HeldLease;
pub use key::canonical_hash;
pub use run_fn::RunFnOptions;
pub use target::Target;

#[cfg(feature = "macros")]
pub use onceonly_macros::{idempotent, idempotent_ai};

/// The hosted API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.onceonly.tech/v1";

/// What the macros' generated code and the sibling crates need. Not a public API: it may
/// change in any release.
#[doc(hidden)]
pub mod __private {
    pub use serde;
    pub use serde_json;

    pub use crate::holder::run_detached;
    pub use crate::in_flight::{InFlight, Settle, cancel_if_acquired};
    pub use crate::key::canonical_hash;
    pub use crate::telemetry::{Outcome, key_hash};
    /// Input checks, shared with the server.
    pub mod validate {
        pub use crate::validate::*;
    }
    /// The tools registry's building blocks, for the server and the tower crate's verifier.
    pub mod tools {
        pub use crate::tools::*;
    }
    #[cfg(feature = "macros")]
    #[allow(unused_imports, unreachable_pub)]
    pub use crate::macro_support::*;
    pub use crate::tools::signature::{signature_hex, signature_matches, unix_now};
}
