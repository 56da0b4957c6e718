//! `run_fn`: run a local side effect exactly once per key and return its typed value.
//!
//! The algorithm: lease → (heartbeat while the future runs) → complete or fail → return.
//! On conflict it waits for the holder (woken, not polling) or returns `InProgress`; a
//! completed key replays the stored value; a holder dropped mid-run gives the key back at once.

use std::future::{Future, IntoFuture};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::Instrument;

use crate::backend::BoxFuture;
use crate::client::OnceOnly;
use crate::codec::{decode_result, encode_replayable};
use crate::error::{Error, JsonMap, Result};
use crate::holder::HeldLease;
use crate::in_flight;
use crate::models::{Governance, LeaseRequest, RunStatus};
use crate::telemetry::{Outcome, Traced};
use crate::time::deadline_after;

/// Default lease TTL of `run_fn`.
pub(crate) const DEFAULT_RUN_TTL: Duration = Duration::from_secs(300);
/// Default bound on waiting for another holder.
pub(crate) const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(60);
use crate::wire::error_code::{
    FN_ERROR as DEFAULT_ERROR_CODE, RESULT_NOT_SERIALIZABLE, RESULT_NOT_STORED,
};

/// Options of a `run_fn` call. The builder methods of [`RunFn`] set them; the macros fill them
/// from their attribute arguments.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunFnOptions {
    /// Lease TTL: how long the holder may work without a heartbeat (default 300 s).
    pub ttl: Duration,
    /// Metadata stored with the run.
    pub metadata: Option<JsonMap>,
    /// Wait for a concurrent holder (default) or return [`Error::InProgress`] at once.
    pub wait_on_conflict: bool,
    /// Bound on the wait (default 60 s); running out gives [`Error::InProgress`].
    pub timeout: Duration,
    /// Error code stored when the function returns `Err` (default `fn_error`).
    pub error_code: String,
    /// Make an `Err` fail the key for good (later calls get [`Error::PreviouslyFailed`])
    /// instead of releasing it for a retry (the default).
    pub terminal_failures: bool,
    /// Heartbeat interval (default a third of the TTL); keep it well under the TTL. When the
    /// backend grants a shorter TTL than asked for (the hosted API caps it per plan), the
    /// default is a third of the TTL granted, and an interval set here is cut to half of it.
    pub heartbeat: Option<Duration>,
    /// Makes the call governed: the agent's policy decides before the key is acquired, and a
    /// refusal returns [`Error::Blocked`] without running the function.
    pub governance: Option<Governance>,
}

impl Default for RunFnOptions {
    fn default() -> Self {
        RunFnOptions {
            ttl: DEFAULT_RUN_TTL,
            metadata: None,
            wait_on_conflict: true,
            timeout: DEFAULT_RUN_TIMEOUT,
            error_code: DEFAULT_ERROR_CODE.to_owned(),
            terminal_failures: false,
            heartbeat: None,
            governance: None,
        }
    }
}

/// A `run_fn` call being built; `.await` runs it. Made by [`Ai::run_fn`](crate::ai::Ai::run_fn).
///
/// The closure returns a future of `Result<T, E>` with `E: From<onceonly_runtime::Error>`; the
/// call resolves to the same `Result<T, E>`:
/// - the first caller runs the closure, its `Ok(T)` is stored and returned;
/// - later callers, and concurrent callers after waiting, get the stored `T` back without
///   running the closure (`T` must be `Serialize + DeserializeOwned`, non-object values are stored as `{"value": ..}`);
/// - an `Err` is returned as is and releases the key, so a retry runs again
///   (`.terminal_failures(true)` stores the failure instead);
/// - dropping the call while the closure runs (a timeout, a disconnected client) cancels the
///   lease at once, so the next caller does not wait for the TTL;
/// - an `Ok(T)` that cannot be stored (not serializable as JSON, or refused by the backend, such
///   as a result over the engine's 1 MiB limit) is returned as an error, and the key fails for
///   good ([`RESULT_NOT_SERIALIZABLE`], [`RESULT_NOT_STORED`]): the closure ran, so it never
///   runs again for that key.
#[must_use = "run_fn does nothing until it is awaited"]
pub struct RunFn<'a, F> {
    client: &'a OnceOnly,
    key: String,
    f: F,
    options: RunFnOptions,
}

impl<'a, F> RunFn<'a, F> {
    pub(crate) fn new(client: &'a OnceOnly, key: String, f: F) -> Self {
        RunFn {
            client,
            key,
            f,
            options: RunFnOptions::default(),
        }
    }

    /// Lease TTL (default 300 s); a heartbeat extends it while the closure runs.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.options.ttl = ttl;
        self
    }

    /// Metadata stored with the run.
    pub fn metadata(mut self, metadata: JsonMap) -> Self {
        self.options.metadata = Some(metadata);
        self
    }

    /// Wait for a concurrent holder (default `true`) or return [`Error::InProgress`].
    pub fn wait_on_conflict(mut self, wait: bool) -> Self {
        self.options.wait_on_conflict = wait;
        self
    }

    /// Bound on waiting for another holder (default 60 s); a key still held then gives
    /// [`Error::InProgress`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// Error code stored when the closure returns `Err` (default `fn_error`).
    pub fn error_code(mut self, code: impl Into<String>) -> Self {
        self.options.error_code = code.into();
        self
    }

    /// Make failures terminal instead of releasing the key.
    pub fn terminal_failures(mut self, terminal: bool) -> Self {
        self.options.terminal_failures = terminal;
        self
    }

    /// Heartbeat interval (default a third of the TTL); keep it well under the TTL. When the
    /// backend grants a shorter TTL than asked for (the hosted API caps it per plan), the
    /// default is a third of the TTL granted, and an interval set here is cut to half of it.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.options.heartbeat = Some(every);
        self
    }

    /// Makes this a governed call of `tool` by `agent_id`: the agent's policy (kill switch,
    /// allow/deny lists, hourly and per-tool caps, daily budget) is evaluated together with
    /// acquiring the key. A refusal returns [`Error::Blocked`] and the function never runs;
    /// an allowed call runs once and replays like any other `run_fn`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> onceonly_runtime::Result<()> {
    /// use onceonly_runtime::{Error, OnceOnly, models::Policy};
    ///
    /// let client = OnceOnly::memory();
    /// client.gov().upsert_policy(Policy::new("billing-agent").blocked_tools(["refund_*"])).await?;
    /// let refused = client.ai()
    ///     .run_fn("refund:order-7", || async { Ok::<_, Error>("refunded".to_owned()) })
    ///     .governed("billing-agent", "refund_card")
    ///     .await;
    /// assert!(matches!(refused, Err(Error::Blocked { ref reason, .. }) if reason == "tool_blocked"));
    /// # Ok(()) }
    /// ```
    pub fn governed(mut self, agent_id: impl Into<String>, tool: impl Into<String>) -> Self {
        let gov = self.governance_mut();
        gov.agent_id = agent_id.into();
        gov.tool = tool.into();
        self
    }

    /// The call's arguments, hashed into the audit log (governed calls).
    pub fn args(mut self, args: JsonMap) -> Self {
        self.governance_mut().args = Some(args);
        self
    }

    /// The spend this call accounts against the agent's daily budget (governed calls; default:
    /// the policy's price for the tool, else 0).
    pub fn spend_usd(mut self, usd: f64) -> Self {
        self.governance_mut().spend_usd = Some(usd);
        self
    }

    fn governance_mut(&mut self) -> &mut Governance {
        self.options
            .governance
            .get_or_insert_with(|| Governance::new("", ""))
    }

    /// Replaces all options at once.
    pub fn options(mut self, options: RunFnOptions) -> Self {
        self.options = options;
        self
    }
}

impl<'a, F, Fut, T, E> IntoFuture for RunFn<'a, F>
where
    F: FnOnce() -> Fut + Send + 'a,
    Fut: Future<Output = Result<T, E>> + Send + 'a,
    T: Serialize + DeserializeOwned + Send + 'a,
    E: From<Error> + Send + 'a,
{
    type Output = Result<T, E>;
    type IntoFuture = BoxFuture<'a, Result<T, E>>;

    fn into_future(self) -> Self::IntoFuture {
        let traced = Traced::run_fn(self.client.backend().name(), &self.key);
        let span = traced.span().clone();
        Box::pin(
            async move {
                let (answer, outcome) =
                    run(self.client, self.key, self.f, self.options, &traced).await;
                traced.finish(outcome);
                answer
            }
            .instrument(span),
        )
    }
}

/// What acquiring ended with.
enum Acquired<T> {
    /// We hold the lease with this id, for this long (the TTL the backend granted, which a
    /// plan may cap below the one asked for).
    Lease(String, Duration),
    /// The key already has a value; `waited` when another holder produced it meanwhile.
    Replay { value: T, waited: bool },
}

/// The outcome of a backend error, for the span.
fn outcome_of(e: &Error) -> Outcome {
    match e {
        Error::LeaseLost { .. } => Outcome::LeaseLost,
        _ => Outcome::Failed,
    }
}

async fn run<F, Fut, T, E>(
    client: &OnceOnly,
    key: String,
    f: F,
    opts: RunFnOptions,
    traced: &Traced,
) -> (Result<T, E>, Outcome)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    T: Serialize + DeserializeOwned,
    E: From<Error>,
{
    let lease_id = match acquire::<T>(client, &key, &opts).await {
        Ok(Acquired::Replay { value, waited }) => {
            let outcome = if waited {
                Outcome::Waited
            } else {
                Outcome::Replayed
            };
            return (Ok(value), outcome);
        }
        Ok(Acquired::Lease(lease_id, granted)) => (lease_id, granted),
        Err(e) => {
            let outcome = outcome_of(&e);
            return (Err(e.into()), outcome);
        }
    };
    let (lease_id, granted) = lease_id;
    let mut held = HeldLease::new(client, key, lease_id, opts.ttl);

    // Paced by the TTL granted, not the one asked for (the hosted API caps it per plan): a
    // heartbeat chosen for the TTL asked for is cut to half of a shorter one granted, or the
    // lease would lapse between two beats.
    let every = match opts.heartbeat {
        None => granted / 3,
        Some(every) if granted < opts.ttl => every.min(granted / 2),
        Some(every) => every,
    };
    let outcome = held.run_with_heartbeat(f(), every).await;
    match outcome {
        Ok(value) => {
            // From here on the side effect has happened: the key must not be released for a
            // re-run, so a drop during `complete` leaves the lease to expire instead.
            held.disarm();
            traced.if_unfinished(Outcome::Executed);
            let stored = match encode_replayable(&value) {
                Ok(stored) => stored,
                Err(e) => {
                    held.fail(RESULT_NOT_SERIALIZABLE).await;
                    return (Err(e.into()), Outcome::Failed);
                }
            };
            // A failure after the retries `complete` allows is returned, not hidden.
            let completed = held.complete(stored, granted).await;
            match completed {
                Ok(_) => (Ok(value), Outcome::Executed),
                // The backend will never take this result (too large, say). Left alone, the
                // lease would expire and the next caller run the side effect again; the key
                // fails for good instead, as for a result that cannot be serialized.
                Err(e) if e.is_content_refused() => {
                    held.fail(RESULT_NOT_STORED).await;
                    (Err(e.into()), Outcome::Failed)
                }
                Err(e) => {
                    let outcome = outcome_of(&e);
                    (Err(e.into()), outcome)
                }
            }
        }
        Err(user_error) => {
            // The holder stays armed while the failure is recorded: a drop in the middle still
            // gives the key back (a cancel) instead of leaving it locked for the TTL.
            if opts.terminal_failures {
                held.fail(&opts.error_code).await;
                (Err(user_error), Outcome::Failed)
            } else {
                held.release(&opts.error_code).await;
                (Err(user_error), Outcome::Released)
            }
        }
    }
}

/// Leases the key, waiting out other holders if asked to.
async fn acquire<T: DeserializeOwned>(
    client: &OnceOnly,
    key: &str,
    opts: &RunFnOptions,
) -> Result<Acquired<T>> {
    let backend = client.backend();
    let deadline = deadline_after(opts.timeout);
    let mut waited = false;
    loop {
        let mut req = LeaseRequest::new(key).ttl(opts.ttl);
        req.metadata = opts.metadata.clone();
        req.governance = opts.governance.clone();
        // A caller dropped while the lease is on the wire (a timeout, a disconnect) must not
        // leave the key taken for the TTL by a lease nobody knows the id of.
        let lease = in_flight::lease(client, req, "dropped").await?;
        match lease.status {
            RunStatus::Acquired => {
                // A TTL the answer leaves out is the one asked for.
                let granted = lease
                    .ttl
                    .map_or(opts.ttl, Duration::from_secs)
                    .min(opts.ttl);
                return match lease.lease_id {
                    Some(id) => Ok(Acquired::Lease(id, granted)),
                    None => Err(Error::Api {
                        status: 200,
                        detail: "the backend acquired a lease but sent no lease_id".into(),
                    }),
                };
            }
            RunStatus::Completed => {
                // The wire only promises the status here; the stored value may need a read.
                let stored = match lease.result {
                    Some(result) => Some(result),
                    None => backend.result(key).await?.result,
                };
                let value = decode_result(stored)?;
                return Ok(Acquired::Replay { value, waited });
            }
            RunStatus::Failed if !lease.retryable => {
                return Err(Error::PreviouslyFailed {
                    key: key.to_owned(),
                    error_code: lease.error_code.unwrap_or_default(),
                });
            }
            RunStatus::Blocked => {
                return Err(Error::Blocked {
                    reason: lease.policy_reason.or(lease.error_code).unwrap_or_default(),
                    decision: "blocked".to_owned(),
                });
            }
            // Someone holds it (or just released it): wait, then ask again.
            _ => {}
        }
        let retry_after = lease.retry_after_sec.map(Duration::from_secs);
        if !opts.wait_on_conflict {
            return Err(Error::InProgress {
                key: key.to_owned(),
                retry_after,
            });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // Still held by someone else when the wait ran out: a conflict, not an outage.
            return Err(Error::InProgress {
                key: key.to_owned(),
                retry_after,
            });
        }
        waited = true;
        if lease.status == RunStatus::Failed {
            // Released but not acquired by us: a remote backend lagging; ask again shortly.
            tokio::time::sleep(Duration::from_millis(50).min(left)).await;
        } else {
            backend.wait_status(key, left).await?;
        }
    }
}
