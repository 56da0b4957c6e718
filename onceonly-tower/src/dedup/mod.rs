//! The deduplication middleware: [`OnceOnlyLayer`] and [`OnceOnlyService`].
//!
//! Split as tower-http splits its middlewares: the builder ([`layer`](OnceOnlyLayer)), the
//! service and its response future, key extraction, and one file per mode.

mod check_lock;
mod future;
mod guard;
pub(crate) mod key;
mod layer;
mod pointer;
#[cfg(test)]
mod props;
mod replay;
mod service;
mod trace;

use http::header::{HeaderName, HeaderValue};
use http::{Response, StatusCode};
use onceonly_runtime::Error;
use onceonly_runtime::wire::{self, header};

pub use self::future::ResponseFuture;
pub use self::key::{KeyExtractor, KeyRequest, KeySource};
pub use self::layer::{
    DEFAULT_LEASE_TTL, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TTL, Mode,
    OnceOnlyLayer,
};
pub use self::replay::is_stored;
pub use self::service::OnceOnlyService;

use self::layer::Config;
use self::trace::{Outcome, Trace};
use crate::body::ResponseBody;
use crate::response;

/// Response header naming what the layer did: `duplicate` (check-lock), `replayed`,
/// `in_progress` (a 409), `unavailable` (a 503); values in [`wire::status`].
pub const ONCEONLY_STATUS: HeaderName = header::ONCEONLY_STATUS;
/// Response header set to `true` on replayed responses.
pub const IDEMPOTENCY_REPLAYED: HeaderName = header::IDEMPOTENCY_REPLAYED;

/// Seconds a sender is asked to wait after a 503 from the layer.
const UNAVAILABLE_RETRY_SECS: u64 = 5;

/// Decides what a backend failure means for the request: `None` to run the handler without
/// deduplication (fail-open, logged), or the answer to send instead (`503`). Sets the
/// outcome: `fail_open` or `failed`.
///
/// The sender gets a generic detail; the error itself goes to the log, since it may describe
/// the deployment. The log names no key: the request's span carries its hash.
fn backend_failure<B>(
    config: &Config,
    trace: &mut Trace,
    e: &Error,
) -> Option<Response<ResponseBody<B>>> {
    // Refusals (unauthorized, over limit, rate limited) are never bypassed: running handlers
    // undeduplicated because an account is over its limit would be a silent downgrade.
    let outage = e.is_outage();
    if outage && config.fail_open {
        trace.outcome(Outcome::FailOpen);
        tracing::warn!(
            error = %e, backend = config.client.backend().name(),
            "OnceOnly backend unavailable: running the handler without deduplication (fail-open)"
        );
        return None;
    }
    let (detail, retry) = if outage {
        tracing::error!(
            error = %e, backend = config.client.backend().name(),
            "OnceOnly backend unavailable: answering 503 (fail-closed)"
        );
        (
            "deduplication backend unavailable; retry later".to_owned(),
            UNAVAILABLE_RETRY_SECS,
        )
    } else {
        tracing::error!(
            error = %e, backend = config.client.backend().name(),
            "OnceOnly backend refused the request: answering 503"
        );
        let retry = match e {
            Error::RateLimited {
                retry_after: Some(d),
            } => d.as_secs().max(1),
            // The sender's retry is useful once the quota resets.
            Error::QuotaExceeded(q) => q.retry_after.as_secs().max(1),
            _ => UNAVAILABLE_RETRY_SECS,
        };
        (
            "deduplication backend refused the request; retry later".to_owned(),
            retry,
        )
    };
    trace.outcome(Outcome::Failed);
    let mut res = response::retry_after(
        response::detail(StatusCode::SERVICE_UNAVAILABLE, detail),
        retry,
    );
    res.headers_mut().insert(
        ONCEONLY_STATUS,
        HeaderValue::from_static(wire::status::UNAVAILABLE),
    );
    Some(res)
}
