//! The README's code blocks are compiled and run as doc tests here, so the documentation
//! cannot drift from the API.

#[doc = include_str!("../../README.md")]
mod readme {}
