//! One connection pool, the headers every request carries, URL building and the
//! retry loop (with jitter and a capped `Retry-After`).

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::RetryPolicy;
use super::errors::{self, Scrub};
use crate::error::{Error, Result};
use crate::wire::header;

/// Answers worth another attempt.
const RETRYABLE: [u16; 5] = [429, 500, 502, 503, 504];

/// A request before it is sent: path segments (each percent-encoded on its own), query pairs
/// and an optional JSON body.
pub(crate) struct Request {
    method: Method,
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    /// Per-request headers, the same on every retry.
    headers: Vec<(reqwest::header::HeaderName, HeaderValue)>,
    extra_timeout: Duration,
    /// Not safe to repeat once it may have been processed (see [`Request::unrepeatable`]).
    unrepeatable: bool,
}

impl Request {
    fn new(method: Method, segments: &[&str]) -> Self {
        Request {
            method,
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: None,
            headers: Vec::new(),
            extra_timeout: Duration::ZERO,
            unrepeatable: false,
        }
    }

    /// `GET <base>/<segments...>`.
    pub(crate) fn get(segments: &[&str]) -> Self {
        Request::new(Method::GET, segments)
    }

    /// `DELETE <base>/<segments...>`.
    pub(crate) fn delete(segments: &[&str]) -> Self {
        Request::new(Method::DELETE, segments)
    }

    /// `POST <base>/<segments...>` with `body` as JSON.
    pub(crate) fn post(segments: &[&str], body: &impl Serialize) -> Result<Self> {
        let mut req = Request::new(Method::POST, segments);
        req.body = Some(serde_json::to_vec(body)?);
        Ok(req)
    }

    /// Adds a query parameter.
    pub(crate) fn query(mut self, name: &'static str, value: impl ToString) -> Self {
        self.query.push((name, value.to_string()));
        self
    }

    /// Adds a header. A value HTTP cannot carry is the caller's mistake, reported as
    /// [`Error::Validation`] before anything is sent (not as a transport failure, which
    /// would be retried and could fail open).
    fn header(mut self, name: reqwest::header::HeaderName, value: &str) -> Result<Self> {
        crate::validate::token(name.as_str(), value)?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            Error::validation(format!(
                "{name} must be visible ASCII to travel as an HTTP header"
            ))
        })?;
        self.headers.push((name, value));
        Ok(self)
    }

    /// Sends `X-Request-Id` when `id` is non-empty.
    pub(crate) fn request_id(self, id: Option<&str>) -> Result<Self> {
        match id.filter(|id| !id.is_empty()) {
            Some(id) => self.header(header::REQUEST_ID, id),
            None => Ok(self),
        }
    }

    /// Sends `X-OnceOnly-Acquisition` (extension): the same on every retry of one
    /// acquisition, so the server can tell a retried request from a new one.
    pub(crate) fn acquisition(self, id: &str) -> Result<Self> {
        self.header(header::ACQUISITION, id)
    }

    /// Marks a request whose repeat, after a first attempt the server may have processed
    /// (a timeout, a 5xx, a connection lost after sending), would not answer the same: a
    /// check-lock would read `duplicate`, and the caller would skip an event nobody
    /// processed. It is retried only when it surely was not processed: a connection that was
    /// never made, or a `429`.
    pub(crate) fn unrepeatable(mut self) -> Self {
        self.unrepeatable = true;
        self
    }

    /// Lets this request run `extra` longer than the client's timeout (long polls).
    pub(crate) fn extra_timeout(mut self, extra: Duration) -> Self {
        self.extra_timeout = extra;
        self
    }
}

/// An attempt that got no answer.
struct Failed {
    error: Error,
    /// Whether the request may have reached the server.
    sent: bool,
}

/// A received answer, whatever its status.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Everything shared by the requests of one backend.
pub(crate) struct Transport {
    client: reqwest::Client,
    base: Url,
    api_key: SecretString,
    headers: HeaderMap,
    timeout: Duration,
    retry: RetryPolicy,
}

impl Transport {
    pub(crate) fn new(
        base: Url,
        api_key: SecretString,
        user_agent: &str,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self> {
        let mut auth = HeaderValue::try_from(format!("Bearer {}", api_key.expose_secret()))
            .map_err(|_| {
                Error::Config("the API key contains characters not allowed in a header".into())
            })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::try_from(user_agent)
                .map_err(|_| Error::Config(format!("invalid user agent `{user_agent}`")))?,
        );
        // Redirects are not followed: a `302` would turn a `POST /check-lock` into a body-less
        // `GET` whose answer would be read as the lock decision, and a `307` would send a
        // request again that the retry rules say must go once. A redirect is an error that
        // names its status (a base URL that needs `https`, say).
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| Error::Config(format!("could not build the HTTP client: {e}")))?;
        Ok(Transport {
            client,
            base,
            api_key,
            headers,
            timeout,
            retry,
        })
    }

    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// What must never appear in text copied from responses.
    pub(crate) fn scrub(&self) -> Scrub<'_> {
        Scrub(self.api_key.expose_secret())
    }

    fn url(&self, req: &Request) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(&req.segments);
        }
        if !req.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &req.query {
                pairs.append_pair(name, value);
            }
        }
        url
    }

    /// Sends `req`, retrying 429 (but not a quota refusal), 500, 502, 503, 504, timeouts and
    /// transport errors while the budget lasts (an [`unrepeatable`](Request::unrepeatable)
    /// request: only 429 and connections never made). Returns the last answer whatever its
    /// status; errors only when no answer was received.
    pub(crate) async fn send(&self, req: Request) -> Result<Response> {
        let url = self.url(&req);
        let timeout = self.timeout + req.extra_timeout;
        let mut attempt: u32 = 0;
        loop {
            let delay = match self.attempt(&req, url.clone(), timeout).await {
                Ok(resp) if !RETRYABLE.contains(&resp.status) => return Ok(resp),
                Ok(resp) if errors::is_final(resp.status, &resp.body) => return Ok(resp),
                Ok(resp) if attempt >= self.retry.max_retries => return Ok(resp),
                Ok(resp) if req.unrepeatable && resp.status != 429 => return Ok(resp),
                Err(Failed { error, .. }) if attempt >= self.retry.max_retries => {
                    return Err(error);
                }
                Err(Failed { error, sent: true }) if req.unrepeatable => return Err(error),
                Ok(resp) => {
                    let delay = self
                        .retry
                        .delay(attempt, errors::retry_after(&resp.headers));
                    tracing::debug!(
                        method = %req.method, path = url.path(), status = resp.status,
                        attempt, ?delay, "retrying"
                    );
                    delay
                }
                Err(Failed { error: e, .. }) => {
                    let delay = self.retry.delay(attempt, None);
                    tracing::debug!(
                        method = %req.method, path = url.path(), error = %e,
                        attempt, ?delay, "retrying"
                    );
                    delay
                }
            };
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        req: &Request,
        url: Url,
        timeout: Duration,
    ) -> std::result::Result<Response, Failed> {
        let mut builder = self
            .client
            .request(req.method.clone(), url)
            .headers(self.headers.clone())
            .timeout(timeout);
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        let resp = builder.send().await.map_err(|e| Failed {
            // A connection never made carried nothing; any other failure may have come
            // after the server read the request.
            sent: !e.is_connect(),
            error: errors::transport_error(e, timeout),
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = read_body(resp, timeout)
            .await
            .map_err(|error| Failed { error, sent: true })?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// Largest answer body read; the biggest legitimate answers (a 1 MiB result, a page of 2,000
/// timeline events) are far below it.
const MAX_BODY_BYTES: usize = 32 << 20;

/// An answer body larger than [`MAX_BODY_BYTES`].
#[derive(Debug, thiserror::Error)]
#[error("the answer body is larger than {MAX_BODY_BYTES} bytes")]
struct BodyTooLarge;

async fn read_body(mut resp: reqwest::Response, timeout: Duration) -> Result<Vec<u8>> {
    let too_large = || Error::Transport(Box::new(BodyTooLarge));
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| errors::transport_error(e, timeout))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
