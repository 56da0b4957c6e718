use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::future::VerifyFuture;
use super::verify::SignatureVerifier;
use crate::body::{BoxError, RequestBody, ResponseBody};
use crate::buffer::{self, ReadError};
use crate::response;

/// The service made by [`VerifySignatureLayer`](super::VerifySignatureLayer).
///
/// It reads the body (up to the verifier's limit, `413` beyond), verifies it, and calls the
/// inner service with the same bytes as `Request<RequestBody<B>>`.
#[derive(Debug, Clone)]
pub struct VerifySignature<S> {
    inner: S,
    verifier: SignatureVerifier,
}

impl<S> VerifySignature<S> {
    pub(crate) fn new(inner: S, verifier: SignatureVerifier) -> Self {
        VerifySignature { inner, verifier }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for VerifySignature<S>
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
    type Future = VerifyFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        VerifyFuture::new(Box::pin(async move {
            let (parts, body) = req.into_parts();
            let limit = verifier.body_limit();
            let bytes = match buffer::read_request(&parts.headers, body, limit).await {
                Ok(bytes) => bytes,
                Err(ReadError::TooLarge) => return Ok(response::too_large(limit)),
                Err(ReadError::Failed(e)) => return Ok(response::unreadable(&e)),
            };
            if let Err(e) = verifier.verify(&parts.headers, &bytes) {
                tracing::debug!(error = %e, uri = %parts.uri, "refused a request with a bad signature");
                return Ok(response::detail(e.status(), e.to_string()));
            }
            let req = Request::from_parts(parts, RequestBody::buffered(bytes));
            Ok(inner.call(req).await?.map(ResponseBody::inner))
        }))
    }
}
