//! [`Mode::CheckLock`](super::Mode::CheckLock): one check-lock per request.
//!
//! The steps are driven by [`ResponseFuture`](super::ResponseFuture): [`claim`] sends the
//! check-lock, [`decide`] turns the answer into "run the handler" or an answer of the layer's
//! own, and the future releases the key when the handler fails.

use std::sync::Arc;

use http::header::HeaderValue;
use http::{Response, StatusCode};
use onceonly_runtime::models::{CheckLockRequest, CheckLockResult};
use onceonly_runtime::{BoxFuture, Result};
use serde_json::json;

use super::key::FoundKey;
use super::layer::Config;
use super::trace::{Outcome, Trace};
use onceonly_runtime::wire::status;

use super::{ONCEONLY_STATUS, backend_failure};
use crate::body::ResponseBody;
use crate::response;

/// Sends the check-lock of `key`. The backend is called directly, so the layer (not the
/// client) decides what an outage means.
pub(crate) fn claim(
    config: &Arc<Config>,
    key: &str,
) -> BoxFuture<'static, Result<CheckLockResult>> {
    let config = Arc::clone(config);
    let mut lock = CheckLockRequest::new(key);
    lock.ttl = Some(config.ttl);
    Box::pin(async move { config.client.backend().check_lock(lock).await })
}

/// What to do once the backend answered.
// Made once per request and moved once: boxing the response would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Decision<B> {
    /// Call the handler; `claimed` is the lock this request holds (so a failure must release
    /// it), `None` when it runs unclaimed because the backend was down (fail-open).
    Run { claimed: Option<Claimed> },
    /// Answer without calling the handler: a duplicate, or a 503.
    Answer(Response<ResponseBody<B>>),
}

/// Turns the backend's answer into a decision, and sets the outcome it implies: `replayed`
/// for a duplicate, `failed` or `fail_open` for a backend failure, and `released` for a claim
/// (what a request dropped from now on comes to; a handler whose answer stands makes it
/// `executed`).
pub(crate) fn decide<B>(
    config: &Config,
    found: &FoundKey,
    answer: Result<CheckLockResult>,
    trace: &mut Trace,
) -> Decision<B> {
    match answer {
        Ok(claimed) if claimed.duplicate => {
            trace.outcome(Outcome::Replayed);
            Decision::Answer(duplicate(&claimed, found))
        }
        Ok(locked) => {
            trace.outcome(Outcome::Released);
            Decision::Run {
                claimed: Some(Claimed {
                    lock_id: locked.lock_id,
                }),
            }
        }
        Err(e) => match backend_failure(config, trace, &e) {
            Some(answer) => Decision::Answer(answer),
            None => Decision::Run { claimed: None },
        },
    }
}

/// The lock a request took.
pub(crate) struct Claimed {
    /// The fencing token, so the release cannot delete a later delivery's lock when this
    /// handler outlived the TTL. `None` from backends without one.
    pub(crate) lock_id: Option<String>,
}

/// `200`, `X-OnceOnly-Status: duplicate`, and a small JSON body.
fn duplicate<B>(claimed: &CheckLockResult, found: &FoundKey) -> Response<ResponseBody<B>> {
    let mut res = response::json(
        StatusCode::OK,
        &json!({
            "status": status::DUPLICATE,
            "key": found.id_lossy(),
            "first_seen_at": claimed.first_seen_at,
            "detail": "already received; the handler did not run again",
        }),
    );
    res.headers_mut()
        .insert(ONCEONLY_STATUS, HeaderValue::from_static(status::DUPLICATE));
    res
}
