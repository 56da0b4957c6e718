use tower_layer::Layer;

use super::service::VerifySignature;
use super::verify::SignatureVerifier;

/// Refuses requests whose `X-OnceOnly-Signature` does not verify, with `401` and a JSON
/// detail, before they reach the inner service.
///
/// ```
/// use axum::{Router, routing::post};
/// use onceonly_tower::signature::{SignatureVerifier, VerifySignatureLayer};
///
/// let verifier = SignatureVerifier::new(std::env::var("TOOL_SECRET").unwrap_or_default());
/// let app: Router = Router::new()
///     .route("/tools/send_email", post(|body: String| async move { body }))
///     .route_layer(VerifySignatureLayer::new(verifier));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct VerifySignatureLayer {
    verifier: SignatureVerifier,
}

impl VerifySignatureLayer {
    /// A layer checking signatures with `verifier`.
    pub fn new(verifier: SignatureVerifier) -> Self {
        VerifySignatureLayer { verifier }
    }
}

impl<S> Layer<S> for VerifySignatureLayer {
    type Service = VerifySignature<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifySignature::new(inner, self.verifier.clone())
    }
}
