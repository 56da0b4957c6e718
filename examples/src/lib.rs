//! Runnable examples live beside this file; see `cargo run -p onceonly-examples --example quickstart`.
