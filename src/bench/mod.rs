//! Load tools behind `nuggetnet bench …`; their results are recorded in `BENCHMARKS.md`.

pub mod connect;
pub mod exchange;
