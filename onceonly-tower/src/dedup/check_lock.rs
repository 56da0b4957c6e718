//! [`Mode::CheckLock`](super::Mode::CheckLock): one check-lock per request.

use http::header::HeaderValue;
use http::{Request, Response, StatusCode};
use onceonly_runtime::models::{CheckLockRequest, CheckLockResult};
use serde_json::json;
use tower_service::Service;

use super::guard::LockGuard;
use super::key::FoundKey;
use super::layer::Config;
use super::service::passthrough;
use super::{ONCEONLY_STATUS, backend_failure};
use crate::body::ResponseBody;
use crate::response;

pub(crate) async fn run<S, B, ResBody>(
    config: &Config,
    mut inner: S,
    req: Request<B>,
    key: String,
    found: FoundKey,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    let mut lock = CheckLockRequest::new(key.clone());
    lock.ttl = Some(config.ttl);
    let claimed = match config.client.backend().check_lock(lock).await {
        Ok(claimed) => claimed,
        Err(e) => {
            return match backend_failure(config, &key, &e) {
                Some(answer) => Ok(answer),
                None => passthrough(inner, req).await,
            };
        }
    };
    if claimed.duplicate {
        return Ok(duplicate(&claimed, &found));
    }
    // Our own key, not the answer's: a remote backend may echo it differently.
    let guard = LockGuard::new(&config.client, key);
    match inner.call(req).await {
        Ok(res) if res.status().is_server_error() => {
            guard.release("handler answered 5xx").await;
            Ok(res.map(ResponseBody::inner))
        }
        Ok(res) => {
            guard.keep();
            Ok(res.map(ResponseBody::inner))
        }
        Err(e) => {
            guard.release("handler failed").await;
            Err(e)
        }
    }
}

/// `200`, `X-OnceOnly-Status: duplicate`, and a small JSON body.
fn duplicate<B>(claimed: &CheckLockResult, found: &FoundKey) -> Response<ResponseBody<B>> {
    let mut res = response::json(
        StatusCode::OK,
        &json!({
            "status": "duplicate",
            "key": found.id_lossy(),
            "first_seen_at": claimed.first_seen_at,
            "detail": "already received; the handler did not run again",
        }),
    );
    res.headers_mut()
        .insert(ONCEONLY_STATUS, HeaderValue::from_static("duplicate"));
    res
}
