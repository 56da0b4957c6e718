//! A backend for the option tests: the real embedded engine behind a switch that turns
//! chosen calls into store outages, and a record of the metadata each lease carried.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use onceonly_runtime::models::{
    AiResult, AiStatus, CancelRequest, CheckLockRequest, CheckLockResult, CompleteRequest,
    ExtendRequest, FailRequest, Lease, LeaseRequest,
};
use onceonly_runtime::{Backend, BoxFuture, Engine, Error, JsonMap, OnceOnly, Result};

/// The embedded engine, with outages on demand.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    inner: Arc<ProbeInner>,
}

#[derive(Debug)]
struct ProbeInner {
    engine: Engine,
    lease_down: AtomicBool,
    complete_down: AtomicBool,
    leases: Mutex<Vec<Option<JsonMap>>>,
}

impl Default for ProbeInner {
    fn default() -> Self {
        ProbeInner {
            engine: Engine::memory(),
            lease_down: AtomicBool::new(false),
            complete_down: AtomicBool::new(false),
            leases: Mutex::new(Vec::new()),
        }
    }
}

fn outage() -> Error {
    Error::Store("store unreachable (simulated outage)".into())
}

impl Probe {
    /// A probe and a client over it.
    pub fn client() -> (Probe, OnceOnly) {
        let probe = Probe::default();
        (probe.clone(), OnceOnly::from_backend(probe))
    }

    /// Makes every `lease` fail with a store error.
    pub fn fail_leases(&self, down: bool) {
        self.inner.lease_down.store(down, Ordering::SeqCst);
    }

    /// Makes every `complete` fail with a store error.
    pub fn fail_completes(&self, down: bool) {
        self.inner.complete_down.store(down, Ordering::SeqCst);
    }

    /// The engine, as a backend (its inherent methods have the same names).
    fn engine(&self) -> &dyn Backend {
        &self.inner.engine
    }

    /// The metadata of every lease request so far.
    pub fn lease_metadata(&self) -> Vec<Option<JsonMap>> {
        self.inner.leases.lock().unwrap().clone()
    }
}

impl Backend for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }

    fn check_lock(&self, req: CheckLockRequest) -> BoxFuture<'_, Result<CheckLockResult>> {
        self.engine().check_lock(req)
    }

    fn release_lock<'a>(
        &'a self,
        key: &'a str,
        lock_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool>> {
        self.engine().release_lock(key, lock_id)
    }

    fn lease(&self, req: LeaseRequest) -> BoxFuture<'_, Result<Lease>> {
        self.inner.leases.lock().unwrap().push(req.metadata.clone());
        if self.inner.lease_down.load(Ordering::SeqCst) {
            return Box::pin(async { Err(outage()) });
        }
        self.engine().lease(req)
    }

    fn extend(&self, req: ExtendRequest) -> BoxFuture<'_, Result<Lease>> {
        self.engine().extend(req)
    }

    fn complete(&self, req: CompleteRequest) -> BoxFuture<'_, Result<Lease>> {
        if self.inner.complete_down.load(Ordering::SeqCst) {
            return Box::pin(async { Err(outage()) });
        }
        self.engine().complete(req)
    }

    fn fail(&self, req: FailRequest) -> BoxFuture<'_, Result<Lease>> {
        self.engine().fail(req)
    }

    fn cancel(&self, req: CancelRequest) -> BoxFuture<'_, Result<Lease>> {
        self.engine().cancel(req)
    }

    fn status<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<AiStatus>> {
        self.engine().status(key)
    }

    fn result<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<AiResult>> {
        self.engine().result(key)
    }

    fn wait_status<'a>(
        &'a self,
        key: &'a str,
        max_wait: Duration,
    ) -> BoxFuture<'a, Result<AiStatus>> {
        self.engine().wait_status(key, max_wait)
    }
}
