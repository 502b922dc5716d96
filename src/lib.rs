//! Confab: an open desktop video-call app.
//!
//! The library half of the `confab` package. The binary (`src/main.rs`) is a thin CLI over it;
//! integration tests and benchmarks use it directly.
//!
//! - The call engine (media pipeline, WebRTC peer connections, call session, measurement) is
//!   the `confab-engine` workspace crate; this crate uses only its public API.
//! - [`loopback`]: `confab loopback`, a measured call between two in-process engines.
//! - [`call_check`]: "Test my call" (and `confab check`): a short real call through this
//!   computer's devices and network path to a test peer, worded for the person.
//! - [`ui`]: the desktop app (eframe/egui), a client of the engine's command/event API.
//! - [`address`]: what a person gives to join (`HOST:PORT`, a `ws://` URL, a `confab://` link),
//!   turned into a signaling URL; one parser for the app's lobby and `confab join`.
//! - [`host`]: the embedded signaling server behind "Host a call" (and the call check's
//!   private one); `wording`: the sentences for the engine's typed end reasons and problems,
//!   shared by the app and the call check.
//! - [`app_dirs`]: the application id and where settings, window state and logs live.
//! - [`versions`]: what `confab --version` reports (Confab, OpenH264, libopus).
//! - The signaling protocol, client and server live in the `signaling-client` and
//!   `signaling-server` workspace crates.

pub mod address;
pub mod app_dirs;
pub mod call_check;
pub mod host;
pub mod loopback;
pub mod snapshot;
pub mod ui;
pub mod versions;
pub(crate) mod wording;
