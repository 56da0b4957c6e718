//! axum extractors that verify the signature before the handler sees the body.

use axum::extract::{FromRef, FromRequest, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::verify::{SignatureError, SignatureVerifier};
use crate::buffer::{self, ReadError};

/// The raw body of a request whose signature verified.
///
/// The [`SignatureVerifier`] comes from the router's state (`SignatureVerifier: FromRef<S>`).
///
/// ```
/// use axum::{Router, routing::post};
/// use onceonly_tower::signature::{SignatureVerifier, SignedBody};
///
/// async fn tool(SignedBody(body): SignedBody) -> String {
///     format!("{} signed bytes", body.len())
/// }
///
/// let app: Router = Router::new()
///     .route("/tools/echo", post(tool))
///     .with_state(SignatureVerifier::new("tool-secret"));
/// ```
#[derive(Debug, Clone)]
pub struct SignedBody(pub Bytes);

/// The JSON body of a request whose signature verified, deserialized into `T`.
///
/// ```
/// use axum::{Router, routing::post};
/// use onceonly_tower::signature::{SignatureVerifier, SignedJson};
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Call { args: serde_json::Value }
///
/// async fn tool(SignedJson(call): SignedJson<Call>) -> String {
///     call.args.to_string()
/// }
///
/// let app: Router = Router::new()
///     .route("/tools/echo", post(tool))
///     .with_state(SignatureVerifier::new("tool-secret"));
/// ```
#[derive(Debug, Clone)]
pub struct SignedJson<T>(pub T);

/// Why a signed extractor refused a request; answers with a JSON `{"detail": ...}`.
#[derive(Debug)]
#[non_exhaustive]
pub enum SignatureRejection {
    /// The signature did not verify: `401`.
    Invalid(SignatureError),
    /// The body is larger than the verifier's limit: `413`.
    TooLarge(usize),
    /// The body could not be read: `400`.
    Unreadable(String),
    /// The signed body is not the expected JSON: `400`.
    InvalidJson(String),
}

impl SignatureRejection {
    /// The status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            SignatureRejection::Invalid(e) => e.status(),
            SignatureRejection::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            SignatureRejection::Unreadable(_) | SignatureRejection::InvalidJson(_) => {
                StatusCode::BAD_REQUEST
            }
        }
    }

    fn detail(&self) -> String {
        match self {
            SignatureRejection::Invalid(e) => e.to_string(),
            SignatureRejection::TooLarge(limit) => {
                format!("request body is larger than the limit of {limit} bytes")
            }
            SignatureRejection::Unreadable(e) => format!("could not read the request body: {e}"),
            SignatureRejection::InvalidJson(e) => {
                format!("request body is not the expected JSON: {e}")
            }
        }
    }
}

impl std::fmt::Display for SignatureRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail())
    }
}

impl std::error::Error for SignatureRejection {}

impl IntoResponse for SignatureRejection {
    fn into_response(self) -> Response {
        let body = json!({ "detail": self.detail() }).to_string();
        (
            self.status(),
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response()
    }
}

impl<S> FromRequest<S> for SignedBody
where
    SignatureVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = SignatureRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = SignatureVerifier::from_ref(state);
        let (parts, body) = req.into_parts();
        let limit = verifier.body_limit();
        let bytes = buffer::read_request(&parts.headers, body, limit)
            .await
            .map_err(|e| match e {
                ReadError::TooLarge => SignatureRejection::TooLarge(limit),
                ReadError::Failed(e) => SignatureRejection::Unreadable(e.to_string()),
            })?;
        verifier
            .verify(&parts.headers, &bytes)
            .map_err(SignatureRejection::Invalid)?;
        Ok(SignedBody(bytes))
    }
}

impl<S, T> FromRequest<S> for SignedJson<T>
where
    SignatureVerifier: FromRef<S>,
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = SignatureRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let SignedBody(bytes) = SignedBody::from_request(req, state).await?;
        serde_json::from_slice(&bytes)
            .map(SignedJson)
            .map_err(|e| SignatureRejection::InvalidJson(e.to_string()))
    }
}
