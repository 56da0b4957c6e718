//! Attribute macros of OnceOnly. Use them through `onceonly_runtime`.

use proc_macro::TokenStream;

/// Runs an async fn exactly once per argument set (work in progress).
#[proc_macro_attribute]
pub fn idempotent(_args: TokenStream, item: TokenStream) -> TokenStream {
    let mut out: TokenStream =
        quote::quote!(compile_error!("#[idempotent] is not implemented yet");).into();
    out.extend(item);
    out
}

/// Runs an async fn exactly once per key expression (work in progress).
#[proc_macro_attribute]
pub fn idempotent_ai(_args: TokenStream, item: TokenStream) -> TokenStream {
    let mut out: TokenStream =
        quote::quote!(compile_error!("#[idempotent_ai] is not implemented yet");).into();
    out.extend(item);
    out
}
