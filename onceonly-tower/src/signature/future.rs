use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use onceonly_runtime::BoxFuture;

use crate::body::ResponseBody;

/// The response future of [`VerifySignature`](super::VerifySignature): reads the body,
/// verifies it, then calls the inner service.
#[must_use = "futures do nothing unless polled"]
pub struct VerifyFuture<B, E> {
    future: BoxFuture<'static, Result<Response<ResponseBody<B>>, E>>,
}

impl<B, E> VerifyFuture<B, E> {
    pub(crate) fn new(future: BoxFuture<'static, Result<Response<ResponseBody<B>>, E>>) -> Self {
        VerifyFuture { future }
    }
}

impl<B, E> std::fmt::Debug for VerifyFuture<B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyFuture").finish_non_exhaustive()
    }
}

impl<B, E> Future for VerifyFuture<B, E> {
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.future.as_mut().poll(cx)
    }
}
