//! The body types the middlewares hand on: the request body the inner service receives and the
//! response body the client receives.
//!
//! Both are enums so that the common case costs nothing: a request the layer does not need to
//! read keeps its original body, and a response the layer does not need to store keeps the
//! inner service's body. Only what the layer had to buffer (a body read for a key, a
//! fingerprint or a signature; a response stored for replay; the layer's own answers) travels
//! as bytes.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

/// Boxed error of a [`ResponseBody`], as in the rest of the tower ecosystem.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    /// The request body an inner service receives from [`OnceOnlyService`] and
    /// [`VerifySignature`]: the original body when the middleware did not read it, or the
    /// bytes it read.
    ///
    /// axum's `Route` accepts any such body, so the layer fits `Router::layer` and
    /// `Router::route_layer` as is; a plain tower service wrapped by the layer is called with
    /// `Request<RequestBody<B>>`.
    ///
    /// [`OnceOnlyService`]: crate::OnceOnlyService
    /// [`VerifySignature`]: crate::signature::VerifySignature
    #[derive(Debug)]
    pub struct RequestBody<B> {
        #[pin]
        kind: RequestKind<B>,
    }
}

pin_project! {
    #[project = RequestKindProj]
    #[derive(Debug)]
    enum RequestKind<B> {
        // The body as it arrived.
        Inner {
            #[pin]
            body: B,
        },
        // The body was read by the middleware; these are its bytes (`None` once handed out).
        Buffered {
            data: Option<Bytes>,
        },
        // The body as it arrived, under a watch that notes a failed read (the sender hung up
        // mid-upload), so the layer can give back a key claimed before the handler read it.
        Watched {
            #[pin]
            body: B,
            failed: BodyWatch,
        },
    }
}

/// Says whether reading a [`RequestBody`] made by [`RequestBody::watched`] failed.
#[derive(Debug, Clone, Default)]
pub(crate) struct BodyWatch(Arc<AtomicBool>);

impl BodyWatch {
    /// Whether the body's stream ended in an error.
    pub(crate) fn failed(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl<B> RequestBody<B> {
    pub(crate) fn inner(body: B) -> Self {
        RequestBody {
            kind: RequestKind::Inner { body },
        }
    }

    /// The body as it arrived, and a watch that says whether reading it failed.
    pub(crate) fn watched(body: B) -> (Self, BodyWatch) {
        let failed = BodyWatch::default();
        let body = RequestBody {
            kind: RequestKind::Watched {
                body,
                failed: failed.clone(),
            },
        };
        (body, failed)
    }

    pub(crate) fn buffered(data: Bytes) -> Self {
        RequestBody {
            kind: RequestKind::Buffered {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    /// Whether the middleware read the body (so it is held in memory).
    pub fn is_buffered(&self) -> bool {
        matches!(self.kind, RequestKind::Buffered { .. })
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project().kind.project() {
            RequestKindProj::Inner { body } => body.poll_frame(cx),
            RequestKindProj::Watched { body, failed } => {
                let frame = body.poll_frame(cx);
                if let Poll::Ready(Some(Err(_))) = &frame {
                    failed.0.store(true, Ordering::Relaxed);
                }
                frame
            }
            RequestKindProj::Buffered { data } => {
                Poll::Ready(data.take().map(|d| Ok(Frame::data(d))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            RequestKind::Inner { body } | RequestKind::Watched { body, .. } => body.is_end_stream(),
            RequestKind::Buffered { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            RequestKind::Inner { body } | RequestKind::Watched { body, .. } => body.size_hint(),
            RequestKind::Buffered { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

pin_project! {
    /// The response body a client receives through the middlewares.
    ///
    /// Its error type is [`BoxError`]: the inner body's errors are passed on boxed.
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        // The inner service's body, untouched.
        Inner {
            #[pin]
            body: B,
        },
        // Bytes: an answer of the middleware, a replay, or a response stored while it passed.
        Full {
            data: Option<Bytes>,
            trailers: Option<HeaderMap>,
        },
        // A response too large to store: the part read so far, then the rest of the body.
        Resumed {
            prefix: Option<Bytes>,
            rest: Pin<Box<B>>,
        },
        // Reading the inner body failed while the middleware buffered it.
        Failed {
            error: Option<BoxError>,
        },
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Inner { .. } => "inner",
            Kind::Full { .. } => "full",
            Kind::Resumed { .. } => "resumed",
            Kind::Failed { .. } => "failed",
        };
        f.debug_struct("ResponseBody").field("kind", &kind).finish()
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn inner(body: B) -> Self {
        ResponseBody {
            kind: Kind::Inner { body },
        }
    }

    pub(crate) fn full(data: Bytes) -> Self {
        ResponseBody::full_with_trailers(data, None)
    }

    pub(crate) fn full_with_trailers(data: Bytes, trailers: Option<HeaderMap>) -> Self {
        ResponseBody {
            kind: Kind::Full {
                data: (!data.is_empty()).then_some(data),
                trailers,
            },
        }
    }

    pub(crate) fn resumed(prefix: Bytes, rest: Pin<Box<B>>) -> Self {
        ResponseBody {
            kind: Kind::Resumed {
                prefix: (!prefix.is_empty()).then_some(prefix),
                rest,
            },
        }
    }

    pub(crate) fn failed(error: BoxError) -> Self {
        ResponseBody {
            kind: Kind::Failed { error: Some(error) },
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Full { data, trailers } => Poll::Ready(match data.take() {
                Some(d) => Some(Ok(Frame::data(d))),
                None => trailers.take().map(|t| Ok(Frame::trailers(t))),
            }),
            KindProj::Resumed { prefix, rest } => match prefix.take() {
                Some(d) => Poll::Ready(Some(Ok(Frame::data(d)))),
                None => rest.as_mut().poll_frame(cx).map_err(Into::into),
            },
            KindProj::Failed { error } => Poll::Ready(error.take().map(Err)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Full { data, trailers } => data.is_none() && trailers.is_none(),
            Kind::Resumed { prefix, rest } => prefix.is_none() && rest.is_end_stream(),
            Kind::Failed { error } => error.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Full { data, .. } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Resumed { prefix, rest } => {
                let extra = prefix.as_ref().map_or(0, |d| d.len() as u64);
                let inner = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(inner.lower() + extra);
                if let Some(upper) = inner.upper() {
                    hint.set_upper(upper + extra);
                }
                hint
            }
            Kind::Failed { .. } => SizeHint::default(),
        }
    }
}
