//! Examples and benchmarks for the pulse workspace. Nothing here is published.
//!
//! See `examples/` and `benches/` beside this file's crate root.
