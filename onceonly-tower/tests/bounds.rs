//! Compile-time guarantees: the layer fits every place axum and tower accept a layer, and its
//! types are `Clone + Send + Sync` with a `Send` future.

use axum::Router;
use axum::body::Body;
use axum::routing::{Route, post};
use http::Request;
use onceonly_runtime::OnceOnly;
use onceonly_tower::signature::{SignatureVerifier, VerifySignature, VerifySignatureLayer};
use onceonly_tower::{OnceOnlyLayer, OnceOnlyService};
use tower::{Service, ServiceBuilder};

fn clone_send_sync<T: Clone + Send + Sync + 'static>() {}

#[test]
fn layers_and_services_are_clone_send_sync() {
    clone_send_sync::<OnceOnlyLayer>();
    clone_send_sync::<OnceOnlyService<Route>>();
    clone_send_sync::<VerifySignatureLayer>();
    clone_send_sync::<VerifySignature<Route>>();
}

#[test]
fn futures_are_send_and_errors_are_the_inner_ones() {
    fn check<S>()
    where
        S: Service<Request<Body>, Error = std::convert::Infallible>,
        S::Future: Send + 'static,
    {
    }
    check::<OnceOnlyService<Route>>();
    check::<VerifySignature<Route>>();
    check::<OnceOnlyService<VerifySignature<Route>>>();
}

#[test]
fn fits_every_axum_layer_position() {
    let client = OnceOnly::memory();
    let layer = || OnceOnlyLayer::new(client.clone());
    let _: Router = Router::new()
        .route("/a", post(|| async { "a" }).layer(layer()))
        .route("/b", post(|| async { "b" }))
        .route_layer(layer())
        .layer(layer())
        .layer(VerifySignatureLayer::new(SignatureVerifier::new("s")));
    let nested: Router = Router::new().nest(
        "/hooks",
        Router::new()
            .route("/c", post(|| async { "c" }))
            .layer(layer()),
    );
    let _ = ServiceBuilder::new().layer(layer()).service(nested);
}
