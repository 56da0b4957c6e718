//! The `#[idempotent]` and `#[idempotent_ai]` attribute macros of OnceOnly.
//!
//! Use them through `onceonly_runtime`, which re-exports both (feature `macros`, on by
//! default) and provides what the generated code calls.
#![doc = include_str!("../docs/crate.md")]
#![doc = include_str!("../docs/semantics.md")]

mod attr;
mod expand;
mod key;

#[cfg(test)]
mod expansion_tests;

use proc_macro::TokenStream;

use crate::attr::Kind;

#[doc = include_str!("../docs/idempotent.md")]
#[doc = include_str!("../docs/semantics.md")]
#[proc_macro_attribute]
pub fn idempotent(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::Idempotent, args.into(), item.into()).into()
}

#[doc = include_str!("../docs/idempotent_ai.md")]
#[doc = include_str!("../docs/semantics.md")]
#[proc_macro_attribute]
pub fn idempotent_ai(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::IdempotentAi, args.into(), item.into()).into()
}
