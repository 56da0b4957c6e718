use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use tower_service::Service;

use super::future::{Claim, ResponseFuture};
use super::key::{self, Extraction, FoundKey, KeyRequest, KeySource};
use super::layer::{Config, Mode};
use super::replay;
use super::trace::Trace;
use crate::body::{BoxError, RequestBody, ResponseBody};
use crate::buffer::{self, ReadError};
use crate::response;
use tracing::Instrument;

/// The service made by [`OnceOnlyLayer`](super::OnceOnlyLayer). See the [crate docs](crate).
///
/// It calls the inner service with `Request<RequestBody<B>>` and answers
/// `Response<ResponseBody<_>>`; its error is the inner service's error. Conflicts, mismatches
/// and outages are HTTP responses, never errors.
#[derive(Clone)]
pub struct OnceOnlyService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for OnceOnlyService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnceOnlyService")
            .field("inner", &self.inner)
            .field("mode", &self.config.mode)
            .finish_non_exhaustive()
    }
}

impl<S> OnceOnlyService<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        OnceOnlyService { inner, config }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// Takes the ready `service` (the one `poll_ready` was called on) and leaves a fresh clone in
/// its place: for a call made later, or, dropped at once, to let go of whatever its readiness
/// reserved (a concurrency permit, a buffer slot) when the layer answers without calling it.
pub(crate) fn take_ready<S: Clone>(service: &mut S) -> S {
    let clone = service.clone();
    std::mem::replace(service, clone)
}

/// The answer to a handled request without a key when keys are required.
pub(crate) fn missing_key<B>(config: &Config) -> Response<ResponseBody<B>> {
    let names: Vec<String> = config.sources.iter().map(KeySource::describe).collect();
    response::detail(
        StatusCode::BAD_REQUEST,
        format!(
            "this endpoint requires an idempotency key; none was found in: {}",
            names.join(", ")
        ),
    )
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for OnceOnlyService<S>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if !self.config.handles(req.method()) {
            return ResponseFuture::passthrough(self.inner.call(req.map(RequestBody::inner)));
        }
        let extraction = key::extract(
            &self.config.sources,
            &KeyRequest {
                method: req.method(),
                uri: req.uri(),
                headers: req.headers(),
                extensions: req.extensions(),
                body: None,
            },
        );
        if let Extraction::Missing = extraction {
            if self.config.require_key {
                drop(take_ready(&mut self.inner));
                return ResponseFuture::ready(missing_key(&self.config));
            }
            return ResponseFuture::passthrough(self.inner.call(req.map(RequestBody::inner)));
        }
        match extraction {
            // The common webhook case: a key from a header, no body to read.
            Extraction::Found(found) if self.config.mode == Mode::CheckLock => {
                let route = key::route(req.uri(), req.extensions());
                let key = key::namespaced(req.method(), route, &self.config.sources, &found);
                let trace = Trace::new(&self.config, &key);
                let (parts, body) = req.into_parts();
                let (body, watch) = RequestBody::watched(body);
                let req = Request::from_parts(parts, body);
                let claim = Claim {
                    key,
                    found,
                    watch: Some(watch),
                };
                ResponseFuture::check_lock(&self.config, &mut self.inner, req, claim, trace)
            }
            extraction => {
                let inner = take_ready(&mut self.inner);
                let config = Arc::clone(&self.config);
                ResponseFuture::guarded(Box::pin(guarded(config, inner, req, extraction)))
            }
        }
    }
}

/// The steps of a request that has a key, or needs its body read to find one.
async fn guarded<S, ReqBody, ResBody>(
    config: Arc<Config>,
    inner: S,
    req: Request<ReqBody>,
    extraction: Extraction,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>> + Clone,
    ReqBody: Body<Data = Bytes>,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let needs_body = matches!(extraction, Extraction::NeedBody) || config.mode == Mode::Replay;
    let (body, bytes, watch) = if needs_body {
        match buffer::read_request(&parts.headers, body, config.max_body_bytes).await {
            Ok(bytes) => (RequestBody::buffered(bytes.clone()), Some(bytes), None),
            Err(ReadError::TooLarge) => return Ok(response::too_large(config.max_body_bytes)),
            Err(ReadError::Failed(e)) => return Ok(response::unreadable(&e)),
        }
    } else {
        let (body, watch) = RequestBody::watched(body);
        (body, None, Some(watch))
    };
    let found: Option<FoundKey> = match extraction {
        Extraction::Found(found) => Some(found),
        _ => match key::extract(
            &config.sources,
            &KeyRequest {
                method: &parts.method,
                uri: &parts.uri,
                headers: &parts.headers,
                extensions: &parts.extensions,
                body: bytes.as_deref(),
            },
        ) {
            Extraction::Found(found) => Some(found),
            _ => None,
        },
    };
    let req = Request::from_parts(parts, body);
    let Some(found) = found else {
        if config.require_key {
            return Ok(missing_key(&config));
        }
        return passthrough(inner, req).await;
    };
    let route = key::route(req.uri(), req.extensions());
    let key = key::namespaced(req.method(), route, &config.sources, &found);
    let mut trace = Trace::new(&config, &key);
    match config.mode {
        Mode::CheckLock => {
            let mut inner = inner;
            let claim = Claim { key, found, watch };
            ResponseFuture::check_lock(&config, &mut inner, req, claim, trace).await
        }
        Mode::Replay => {
            let bytes = bytes.unwrap_or_default();
            // Boxed: its state is twice the size of the check-lock path's, and every request
            // would otherwise carry (and copy) it.
            let span = trace.span().clone();
            let steps = replay::run(&config, inner, req, key, found, &bytes, &mut trace);
            let answer = Box::pin(steps.instrument(span)).await;
            trace.answered(&answer);
            answer
        }
    }
}

/// Calls the inner service and passes its response on untouched.
pub(crate) async fn passthrough<S, B, ResBody>(
    mut inner: S,
    req: Request<B>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    Ok(inner.call(req).await?.map(ResponseBody::inner))
}
