//! Confab: an open desktop video-call app.
//!
//! The library half of the `confab` package. The binary (`src/main.rs`) is a thin CLI over it;
//! integration tests and benchmarks use it directly.
//!
//! - [`engine`]: the call engine (media pipeline today; peer connections next). Never imports UI
//!   code.
//! - The signaling protocol, client and server live in the `signaling-client` and
//!   `signaling-server` workspace crates.

pub mod engine;
