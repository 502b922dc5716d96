//! Helpers shared by the integration tests. Each test binary uses a different subset, so unused
//! items are expected here.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a test failure with its message"
)]

pub mod browser;
pub mod firefox;
pub mod ui;
