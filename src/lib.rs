//! Examples, benchmarks and stack tests for the pulse workspace. Nothing here
//! is published.
//!
//! The crate's documentation is the repository README, so every ```rust
//! block in it is compiled and run by `cargo test --doc`.
#![doc = include_str!("../README.md")]
