//! The store conformance suite: the engine's guarantees, checked over any [`Store`].
//!
//! Every store must pass every case. Cases drive an [`Engine`] with a [`ManualClock`], so
//! expiry edges are checked to the millisecond without sleeping. Use the macro to get one
//! `#[tokio::test]` per case:
//!
//! ```ignore
//! onceonly_runtime::store_conformance_tests!(|| async { onceonly_runtime::store::MemoryStore::new() });
//! ```
//!
//! The factory is called once per case and must return an empty store (for a shared server,
//! a fresh key namespace).

#![allow(missing_docs)]

mod accounting;
mod docs;
mod leases;
mod locks;
mod timelines;
mod waiting;

pub use accounting::*;
pub use docs::*;
pub use leases::*;
pub use locks::*;
pub use timelines::*;
pub use waiting::*;

use std::sync::Arc;
use std::time::Duration;

use crate::engine::{Account, Engine, EngineConfig, Plan};
use crate::error::{Error, JsonMap};
use crate::models::{
    CancelRequest, CheckLockRequest, CompleteRequest, ExtendRequest, FailRequest, LeaseRequest,
    RunEvent, RunStatus, UsageKind,
};
use crate::store::{CounterAdd, CounterDelta, LogCaps, LogPage, LogRef, Store};
use crate::time::ManualClock;

/// Retention used by the suite (shorter than the default, to test it).
pub const RETENTION: Duration = Duration::from_secs(3600);
const TTL: Duration = Duration::from_secs(10);
const MS: Duration = Duration::from_millis(1);

/// An engine over `store` with a manual clock.
pub fn engine<S: Store>(store: S) -> (Engine<S>, ManualClock) {
    let clock = ManualClock::default();
    let config = EngineConfig::default().retention(RETENTION);
    (
        Engine::with_config(store, config, Arc::new(clock.clone())),
        clock,
    )
}

fn lock(key: &str, ttl: Duration) -> CheckLockRequest {
    let mut req = CheckLockRequest::new(key);
    req.ttl = Some(ttl);
    req
}

fn lease(key: &str) -> LeaseRequest {
    LeaseRequest::new(key).ttl(TTL)
}

fn result(v: serde_json::Value) -> Option<JsonMap> {
    v.as_object().cloned()
}

/// Generates one `#[tokio::test]` per conformance case for a store factory
/// (`|| async { store }`).
///
/// `optional: || async { Option<store> }` is for stores that need an outside service: a factory
/// that answers `None` (having said why) makes the case return without running.
#[macro_export]
macro_rules! store_conformance_tests {
    (optional: $make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            lock_claim_race, lock_expiry_edge, lock_release, lock_release_fenced, lease_claim_race,
            record_revision_race, lease_repeated_acquisition,
            lease_expiry_edge, stale_lease_rejected, late_complete_refused, completed_replays,
            fail_terminal_and_retryable, cancel_releases, extend_moves_expiry, retention,
            expired_record_reacquired_before_purge, waiter_woken_on_completion,
            bad_input_rejected, counter_limit_race, counter_window, counters_all_or_nothing,
            counters_group_race, log_cap_and_pages, log_byte_cap, log_topics, log_model,
            tenant_isolation, plan_limits, run_timeline_events,
            doc_round_trip, doc_overwrite, doc_delete, doc_list_prefix_order_limit,
            doc_list_component_prefix, doc_list_non_ascii, doc_list_empty, doc_count_prefix, doc_never_expires,
            doc_concurrent_puts, doc_tenant_isolation);
    };
    ($make:expr) => {
        $crate::store_conformance_tests!(optional: || async {
            ::std::option::Option::Some(($make)().await)
        });
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let ::std::option::Option::Some(store) = ($make)().await else {
                    return;
                };
                $crate::conformance::$case(store).await;
            }
        )*
    };
}
