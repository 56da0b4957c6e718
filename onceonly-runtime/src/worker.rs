//! Workers: processes that claim queued runs (key-mode `ai.run`) and execute each exactly once.
//!
//! A worker claims a run whose key matches its pattern, runs the handler under the run's lease
//! (heartbeating so a long job keeps it), and stores the handler's value as the run's result,
//! which every `run_and_wait` on the key then returns. The claim is the acquisition of the
//! run's lease, so among any number of workers in any number of processes exactly one gets a
//! given run; a worker that dies stops heartbeating, its lease expires, and the run goes to the
//! next claim as a new attempt.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::OnceOnly;
use crate::codec::encode_result;
use crate::error::{Error, JsonMap, Result};
use crate::holder::HeldLease;
use crate::models::{CancelRequest, ClaimRequest, ClaimedJob};
use crate::unwind::unwinding;
use crate::wire::error_code::{FN_ERROR, RESULT_NOT_SERIALIZABLE, RESULT_NOT_STORED};

/// Default lease of a claimed run: how long a worker may go silent before another resumes it.
const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);
/// Default attempts of one run before an `Err` fails it for good.
const DEFAULT_MAX_ATTEMPTS: u64 = 3;
/// How long a claim on the wire when the worker stops may still answer (and have its run
/// given back): a round trip with room to spare.
const CLAIM_GRACE: Duration = Duration::from_secs(2);
/// Long poll of one claim: a worker with nothing to do makes one request per this interval.
const CLAIM_WAIT: Duration = Duration::from_secs(25);
/// Pause after a claim failed for a reason that may pass (the backend is unreachable).
const CLAIM_BACKOFF: Duration = Duration::from_secs(1);

/// A queued run, as a worker's handler gets it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Job {
    /// The run's key.
    pub key: String,
    /// The metadata the run was queued with.
    pub metadata: JsonMap,
    /// The run's timeline id (`metadata.run_id`, by default the key).
    pub run_id: String,
    /// 1 for the first execution; more when an earlier attempt failed and released the run, or
    /// its worker died holding it.
    pub attempt: u64,
}

/// A worker being configured: made by [`Ai::worker`](crate::ai::Ai::worker), started by
/// [`serve`](Worker::serve).
#[derive(Debug)]
#[must_use = "a worker does nothing until `serve` is awaited"]
pub struct Worker {
    client: OnceOnly,
    pattern: String,
    concurrency: usize,
    lease_ttl: Duration,
    max_attempts: u64,
    error_code: String,
    shutdown: Option<Shutdown>,
}

struct Shutdown(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>);

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Shutdown")
    }
}

impl Worker {
    pub(crate) fn new(client: &OnceOnly, pattern: String) -> Self {
        Worker {
            client: client.clone(),
            pattern,
            concurrency: 1,
            lease_ttl: DEFAULT_LEASE_TTL,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            error_code: FN_ERROR.to_owned(),
            shutdown: None,
        }
    }

    /// How many runs this worker executes at once (default 1; at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The lease a claim takes (default 30 s, at least 1 s). The worker extends it every third
    /// of it while the handler runs; if the worker dies, another resumes the run this long
    /// after the last heartbeat.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// How many executions a run gets (default 3). A handler `Err` gives the run back for
    /// another attempt (a retryable failure with the [`error_code`](Self::error_code)) until
    /// this many attempts have failed; the last one fails the run for good, so its waiters
    /// stop with `failed`. `1` fails a run at its first `Err`. A handler that panics has
    /// failed its attempt the same way (the panic's message is logged).
    pub fn max_attempts(mut self, n: u64) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The error code a handler `Err` is recorded with (default `fn_error`).
    pub fn error_code(mut self, code: impl Into<String>) -> Self {
        self.error_code = code.into();
        self
    }

    /// Stops the worker when `signal` completes: no new claims, the running handlers finish
    /// and store their results, then [`serve`](Self::serve) returns `Ok(())`. For Ctrl-C:
    /// `.with_graceful_shutdown(async { tokio::signal::ctrl_c().await.ok(); })`. Without it,
    /// a worker serves until its process ends (a run cut off that way is resumed by another
    /// worker once its lease expires). A claim on the wire when the signal comes may still
    /// answer for 2 s; a run it took goes back to the queue at once (that claim counts as
    /// one of the run's attempts).
    pub fn with_graceful_shutdown(
        mut self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.shutdown = Some(Shutdown(Box::pin(signal)));
        self
    }

    /// Claims matching runs and executes them with `handler`, up to
    /// [`concurrency`](Self::concurrency) at once.
    ///
    /// The handler's `Ok(T)` is stored as the run's result (`T: Serialize`; a non-object value
    /// is stored as `{"value": ..}`, the way `run_fn` stores it) and every waiter gets it. An
    /// `Err` is logged and handled per [`max_attempts`](Self::max_attempts). A value that
    /// cannot be stored (not serializable, or refused by the backend as too large) fails the
    /// run for good, since the handler's side effects happened.
    ///
    /// Returns `Err` only for a worker that can never claim anything: an invalid pattern or
    /// lease TTL, or a backend without queued runs. A backend that cannot be reached is
    /// retried every second, logged.
    pub async fn serve<F, Fut, T, E>(mut self, handler: F) -> Result<()>
    where
        F: Fn(Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
        T: Serialize + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        let handler = Arc::new(handler);
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let mut running = JoinSet::new();
        let mut shutdown = self
            .shutdown
            .take()
            .map_or_else(|| Box::pin(std::future::pending()) as _, |s| s.0);
        let settings = Arc::new(Settings {
            lease_ttl: self.lease_ttl,
            max_attempts: self.max_attempts,
            error_code: self.error_code.clone(),
        });
        loop {
            // A free slot first, so a claimed run never waits for one.
            let slot = tokio::select! {
                slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
                () = &mut shutdown => break,
            };
            let claim = ClaimRequest::new(self.pattern.as_str())
                .lease_ttl(self.lease_ttl)
                .wait(CLAIM_WAIT);
            let mut call = self.client.backend().claim_job(claim);
            let claimed = tokio::select! {
                claimed = &mut call => claimed,
                () = &mut shutdown => {
                    // A claim on the wire may have taken a run: let it answer (briefly) and
                    // give the run back before `serve` returns. Left to the background, the
                    // give-back would be lost with a runtime that ends with `serve`, and the
                    // run held by nobody for its lease. A claim still waiting after the grace
                    // is dropped; the rare remote claim granted at that very instant loses its
                    // answer, and its run waits out its lease.
                    if let Ok(Ok(Some(job))) = tokio::time::timeout(CLAIM_GRACE, call).await {
                        give_back(&self.client, job).await;
                    }
                    break;
                }
            };
            // Reap finished handlers so the set does not grow.
            while running.try_join_next().is_some() {}
            let job = match claimed {
                Ok(Some(job)) => job,
                Ok(None) => continue,
                Err(e @ (Error::Validation(_) | Error::Unsupported { .. })) => {
                    // Let the handlers already running finish: dropping the set would abort
                    // them in the middle of their side effects.
                    while running.join_next().await.is_some() {}
                    return Err(e);
                }
                Err(e) => {
                    tracing::warn!(error = %e, pattern = %self.pattern, "could not claim a run; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(CLAIM_BACKOFF) => continue,
                        () = &mut shutdown => break,
                    }
                }
            };
            let (client, handler, settings) = (
                self.client.clone(),
                Arc::clone(&handler),
                Arc::clone(&settings),
            );
            running.spawn(async move {
                execute(&client, &settings, job, &*handler).await;
                drop(slot);
            });
        }
        while running.join_next().await.is_some() {}
        Ok(())
    }
}

/// Gives a claimed run back to the queue at once (a cancel of its lease).
async fn give_back(client: &OnceOnly, job: ClaimedJob) {
    let req = CancelRequest::new(
        job.key.as_str(),
        job.lease_id,
        Some("worker stopped".into()),
    );
    if let Err(e) = client.backend().cancel(req).await {
        tracing::warn!(key = %job.key, error = %e, "could not give back a run claimed while stopping; it waits for its lease to end");
    }
}

/// What every execution of one worker shares.
struct Settings {
    lease_ttl: Duration,
    max_attempts: u64,
    error_code: String,
}

/// Executes one claimed run and ends its lease.
async fn execute<F, Fut, T, E>(
    client: &OnceOnly,
    settings: &Settings,
    claimed: ClaimedJob,
    handler: &F,
) where
    F: Fn(Job) -> Fut,
    Fut: Future<Output = std::result::Result<T, E>>,
    T: Serialize,
    E: fmt::Display,
{
    let key = claimed.key.clone();
    let attempt = claimed.attempt;
    // The TTL granted, which a backend may cap below the one asked for: the heartbeat and the
    // completion's retries are paced by it.
    let granted = match claimed.ttl {
        0 => settings.lease_ttl,
        secs => Duration::from_secs(secs).min(settings.lease_ttl),
    };
    let mut held = HeldLease::new(client, claimed.key, claimed.lease_id, settings.lease_ttl)
        .cancel_reason("worker_stopped");
    let job = Job {
        key: key.clone(),
        metadata: claimed.metadata,
        run_id: claimed.run_id,
        attempt,
    };
    // A panicking handler is a failed attempt like an `Err`: left to unwind, it would drop
    // the lease (given back at once) and the run would be claimed again and again, never
    // counted against `max_attempts`.
    let outcome = held
        .run_with_heartbeat(unwinding(async { handler(job).await }), granted / 3)
        .await;
    let outcome = match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(format!("the handler panicked: {panic}")),
    };
    match outcome {
        Ok(value) => {
            // The side effects happened: from here the run is never given back for a re-run.
            held.disarm();
            let result = match encode_result(&value) {
                Ok(result) => result,
                Err(e) => {
                    tracing::error!(%key, error = %e, "a run's result is not JSON; the run fails");
                    held.fail(RESULT_NOT_SERIALIZABLE).await;
                    return;
                }
            };
            match held.complete(result, granted).await {
                Ok(_) => {}
                Err(e) if e.is_content_refused() => {
                    tracing::error!(%key, error = %e, "a run's result was refused; the run fails");
                    held.fail(RESULT_NOT_STORED).await;
                }
                // Lease lost (the worker was too slow) or the backend is down: the run is
                // resumed by another worker after the lease, as if this one had died.
                Err(e) => tracing::error!(%key, error = %e, "could not store a run's result"),
            }
        }
        Err(e) if attempt >= settings.max_attempts => {
            tracing::warn!(%key, attempt, error = %e, "a run failed its last attempt");
            held.fail(&settings.error_code).await;
        }
        Err(e) => {
            tracing::warn!(%key, attempt, error = %e, "a run failed; it is queued again");
            held.release(&settings.error_code).await;
        }
    }
}
