use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use http::{Request, Response};
use onceonly_runtime::BoxFuture;
use onceonly_runtime::models::CheckLockResult;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::check_lock;
use onceonly_runtime::__private::InFlight;

use super::guard::{self, Detached, LockGuard};
use super::key::FoundKey;
use super::layer::Config;
use super::service::take_ready;
use super::trace::{Outcome, Trace};
use crate::body::{BodyWatch, RequestBody, ResponseBody};

pin_project! {
    /// The response future of [`OnceOnlyService`](super::OnceOnlyService).
    ///
    /// A request without a key polls the inner service's future directly; a request the layer
    /// answers itself is ready at once; a check-lock with a key from a header is a small state
    /// machine (claim, call, release on failure) without a boxed future of its own, whose claim
    /// is sent, and on the embedded engine answered, in `call` already (see
    /// [`check_lock`](Self::check_lock)); a request whose body must be read first runs its
    /// steps in one boxed future.
    pub struct ResponseFuture<S, ReqBody, ResBody>
    where
        S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
    {
        #[pin]
        kind: Kind<S, ReqBody, ResBody>,
        // The span of a check-lock driven here; `None` on the other paths.
        trace: Option<Trace>,
    }
}

/// A request waiting for the backend's answer to its claim.
struct Pending<S, ReqBody> {
    service: S,
    request: Request<RequestBody<ReqBody>>,
    claim: Claim,
    config: Arc<Config>,
}

/// What a check-lock carries from `call` to its handler: the namespaced key, where it was
/// found, and the watch on a request body the layer did not read.
pub(crate) struct Claim {
    pub(crate) key: String,
    pub(crate) found: FoundKey,
    pub(crate) watch: Option<BodyWatch>,
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, ReqBody, ResBody>
    where
        S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
    {
        // No key: the inner service's response, untouched.
        Passthrough {
            #[pin]
            future: S::Future,
        },
        // The layer's own answer.
        Ready {
            response: Option<Response<ResponseBody<ResBody>>>,
        },
        // Body read first, or replay: the async steps in one box.
        Guarded {
            future: BoxFuture<'static, Result<Response<ResponseBody<ResBody>>, S::Error>>,
        },
        // Check-lock sent, answer awaited (a remote backend; boxed, so the embedded engine's
        // requests, which never wait here, do not carry its size).
        Locking {
            claim: Box<InFlight<onceonly_runtime::Result<CheckLockResult>>>,
            pending: Option<Pending<S, ReqBody>>,
        },
        // The handler runs; the guard releases the key if it fails or the future is dropped,
        // and if reading the request body failed (`watch`).
        Calling {
            #[pin]
            future: S::Future,
            guard: Option<LockGuard>,
            watch: Option<BodyWatch>,
        },
        // The handler failed; the key is being released before the answer goes out.
        Releasing {
            release: Detached,
            outcome: Option<Result<Response<ResponseBody<ResBody>>, S::Error>>,
        },
    }
}

impl<S, ReqBody, ResBody> ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
{
    pub(crate) fn passthrough(future: S::Future) -> Self {
        ResponseFuture {
            kind: Kind::Passthrough { future },
            trace: None,
        }
    }

    pub(crate) fn ready(response: Response<ResponseBody<ResBody>>) -> Self {
        ResponseFuture {
            kind: Kind::Ready {
                response: Some(response),
            },
            trace: None,
        }
    }

    pub(crate) fn guarded(
        future: BoxFuture<'static, Result<Response<ResponseBody<ResBody>>, S::Error>>,
    ) -> Self {
        ResponseFuture {
            kind: Kind::Guarded { future },
            trace: None,
        }
    }

    /// [`Mode::CheckLock`](super::Mode::CheckLock) for a request with its key: claim, then
    /// call the ready `service` or answer as a duplicate, under `trace`.
    ///
    /// The claim is polled once here. The embedded engine answers on that first poll, so the
    /// decision is taken at once: the ready service is called in place (no clone of it, no
    /// state kept for a later answer). Only a backend that has to wait (HTTP, Redis) leaves
    /// the claim pending; the ready service is then taken and a clone left in its place, as
    /// tower's contract asks of a service that calls its inner one later.
    pub(crate) fn check_lock(
        config: &Arc<Config>,
        service: &mut S,
        request: Request<RequestBody<ReqBody>>,
        claim: Claim,
        mut trace: Trace,
    ) -> Self
    where
        S: Clone,
    {
        let _entered = trace.span().clone().entered();
        let mut lock = check_lock::claim(config, &claim.key);
        let kind = match lock.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(answer) => {
                let kind = decided(config, service, request, claim, answer, &mut trace);
                if let Kind::Ready { .. } = kind {
                    // Not called: as the waiting path does, let go of the ready service.
                    drop(take_ready(service));
                }
                kind
            }
            Poll::Pending => {
                let span = trace.span().clone();
                let settle = guard::release_if_claimed(&config.client, claim.key.clone(), span);
                Kind::Locking {
                    claim: Box::new(InFlight::new(lock, settle)),
                    pending: Some(Pending {
                        service: take_ready(service),
                        request,
                        claim,
                        config: Arc::clone(config),
                    }),
                }
            }
        };
        ResponseFuture {
            kind,
            trace: Some(trace),
        }
    }
}

/// The step after the backend's answer: the layer's own answer, or the handler called under
/// a guard that gives the key back if it fails.
fn decided<S, ReqBody, ResBody>(
    config: &Config,
    service: &mut S,
    request: Request<RequestBody<ReqBody>>,
    claim: Claim,
    answer: onceonly_runtime::Result<CheckLockResult>,
    trace: &mut Trace,
) -> Kind<S, ReqBody, ResBody>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
{
    let Claim { key, found, watch } = claim;
    match check_lock::decide(config, &found, answer, trace) {
        check_lock::Decision::Answer(response) => Kind::Ready {
            response: Some(response),
        },
        check_lock::Decision::Run { claimed } => {
            // Armed before the call: an inner `call` that panics drops it while unwinding,
            // which gives the key back.
            let guard = claimed.map(|c| {
                let span = trace.span().clone();
                LockGuard::new(&config.client, key, c.lock_id, span)
            });
            Kind::Calling {
                future: service.call(request),
                guard,
                watch,
            }
        }
    }
}

impl<S, ReqBody, ResBody> std::fmt::Debug for ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Passthrough { .. } => "passthrough",
            Kind::Ready { .. } => "ready",
            Kind::Guarded { .. } => "guarded",
            Kind::Locking { .. } => "locking",
            Kind::Calling { .. } => "calling",
            Kind::Releasing { .. } => "releasing",
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut kind = this.kind;
        let trace = this.trace;
        // The handler and the layer's events run inside the request's span.
        let _entered = trace.as_ref().map(|t| t.span().clone().entered());
        loop {
            let next = match kind.as_mut().project() {
                KindProj::Passthrough { future } => {
                    let res = ready!(future.poll(cx));
                    return Poll::Ready(res.map(|r| r.map(ResponseBody::inner)));
                }
                KindProj::Ready { response } => {
                    let response = response
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return finish(trace, Ok(response));
                }
                KindProj::Guarded { future } => return future.as_mut().poll(cx),
                KindProj::Locking { claim, pending } => {
                    let answer = ready!(Pin::new(&mut **claim).poll(cx));
                    let Pending {
                        mut service,
                        request,
                        claim,
                        config,
                    } = pending
                        .take()
                        .expect("ResponseFuture polled after completion");
                    let trace = trace
                        .as_mut()
                        .expect("a check-lock future carries its trace");
                    decided(&config, &mut service, request, claim, answer, trace)
                }
                KindProj::Calling {
                    future,
                    guard,
                    watch,
                } => {
                    let outcome = ready!(future.poll(cx));
                    // A body that failed to arrive (the sender hung up mid-upload) made the
                    // handler answer whatever its extractor says (axum: 400), but the event
                    // was never processed: its retry must get in.
                    let failed = match &outcome {
                        _ if watch.as_ref().is_some_and(BodyWatch::failed) => {
                            Some("request body failed")
                        }
                        Ok(res) if res.status().is_server_error() => Some("handler answered 5xx"),
                        Ok(_) => None,
                        Err(_) => Some("handler failed"),
                    };
                    let outcome = outcome.map(|r| r.map(ResponseBody::inner));
                    match (guard.take(), failed) {
                        (Some(guard), Some(why)) => Kind::Releasing {
                            release: guard.into_release(why),
                            outcome: Some(outcome),
                        },
                        (Some(guard), None) => {
                            guard.keep();
                            if let Some(trace) = trace.as_mut() {
                                trace.outcome(Outcome::Executed);
                            }
                            return finish(trace, outcome);
                        }
                        // Fail-open: nothing was claimed, so nothing to keep or release.
                        (None, _) => return finish(trace, outcome),
                    }
                }
                KindProj::Releasing { release, outcome } => {
                    ready!(release.poll(cx));
                    let outcome = outcome
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return finish(trace, outcome);
                }
            };
            kind.set(next);
        }
    }
}

/// Ends the request's trace (recording the answer's status) and hands the answer on.
fn finish<B, E>(
    trace: &mut Option<Trace>,
    outcome: Result<Response<B>, E>,
) -> Poll<Result<Response<B>, E>> {
    if let Some(mut trace) = trace.take() {
        trace.answered(&outcome);
    }
    Poll::Ready(outcome)
}
