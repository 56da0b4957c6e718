//! One generic request builder for the simple calls: the request struct carries the
//! parameters, [`Call`] carries the client, and `.await` sends.

use std::future::IntoFuture;
use std::time::Duration;

use crate::backend::{Backend, BoxFuture};
use crate::client::OnceOnly;
use crate::error::{JsonMap, Result};
use crate::models::{
    CancelRequest, CompleteRequest, ExtendRequest, FailRequest, Lease, LeaseRequest,
    ToolCallRequest, ToolResult,
};

/// A request that a [`Backend`] can send. Implemented for the request structs of
/// [`models`](crate::models); not meant to be implemented outside this crate.
#[doc(hidden)]
pub trait Request: Send + 'static {
    /// The typed answer.
    type Response: Send + 'static;
    /// Sends the request.
    fn send(self, backend: &dyn Backend) -> BoxFuture<'_, Result<Self::Response>>;
}

/// A call being built. Set options with its methods, then `.await` it.
#[derive(Debug)]
#[must_use = "a call does nothing until it is awaited"]
pub struct Call<'a, R> {
    client: &'a OnceOnly,
    pub(crate) req: R,
}

impl<'a, R> Call<'a, R> {
    pub(crate) fn new(client: &'a OnceOnly, req: R) -> Self {
        Call { client, req }
    }
}

impl<'a, R: Request> IntoFuture for Call<'a, R> {
    type Output = Result<R::Response>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        self.req.send(self.client.backend())
    }
}

macro_rules! request {
    ($req:ty => $resp:ty, $method:ident) => {
        impl Request for $req {
            type Response = $resp;
            fn send(self, backend: &dyn Backend) -> BoxFuture<'_, Result<$resp>> {
                backend.$method(self)
            }
        }
    };
}

request!(LeaseRequest => Lease, lease);
request!(ExtendRequest => Lease, extend);
request!(CompleteRequest => Lease, complete);
request!(FailRequest => Lease, fail);
request!(CancelRequest => Lease, cancel);
request!(ToolCallRequest => ToolResult, run_tool);

impl Call<'_, LeaseRequest> {
    /// How long the holder may work before the lease expires (default: the backend's).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.req.ttl = Some(ttl);
        self
    }

    /// Metadata stored with the run.
    pub fn metadata(mut self, metadata: JsonMap) -> Self {
        self.req.metadata = Some(metadata);
        self
    }
}

impl Call<'_, ExtendRequest> {
    /// The new TTL, counted from now.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.req.ttl = Some(ttl);
        self
    }
}

impl Call<'_, CompleteRequest> {
    /// The result object to store.
    pub fn result(mut self, result: JsonMap) -> Self {
        self.req.result = Some(result);
        self
    }

    /// A digest of the result.
    pub fn result_hash(mut self, hash: impl Into<String>) -> Self {
        self.req.result_hash = Some(hash.into());
        self
    }
}

impl Call<'_, FailRequest> {
    /// Release the key for a retry instead of failing it for good.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.req.retryable = retryable;
        self
    }

    /// A digest of the error.
    pub fn error_hash(mut self, hash: impl Into<String>) -> Self {
        self.req.error_hash = Some(hash.into());
        self
    }
}

impl Call<'_, CancelRequest> {
    /// Why the lease is given back.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.req.reason = Some(reason.into());
        self
    }
}

impl Call<'_, ToolCallRequest> {
    /// The tool's arguments.
    pub fn args(mut self, args: JsonMap) -> Self {
        self.req.args = args;
        self
    }

    /// The spend to account (default: the policy's price for the tool, else 0).
    pub fn spend_usd(mut self, usd: f64) -> Self {
        self.req.spend_usd = Some(usd);
        self
    }

    /// Puts the call on a run's timeline (`args.run_id`).
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        self.req = self.req.run_id(run_id);
        self
    }
}
