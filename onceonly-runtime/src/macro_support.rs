//! Helpers for the code `#[idempotent]` and `#[idempotent_ai]` generate (re-exported in
//! `__private`).
