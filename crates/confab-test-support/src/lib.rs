//! Helpers shared by the integration tests of several workspace crates (the app, the engine and
//! the signaling server). Only ever a dev-dependency.
//!
//! - [`signaling`]: a real signaling server on 127.0.0.1:0 (on the caller's runtime or on its
//!   own), and a raw WebSocket client that can send anything.
//! - [`tcp_proxy`]: a TCP proxy between a client and a server that a test can cut.
//! - [`coturn`]: a real TURN server (coturn) on 127.0.0.1, for relay-only calls.
//! - [`pulse`]: a private PulseAudio daemon with null sinks, for real-device tests.
//! - [`xvfb`]: a private virtual X display (a screen to show windows on, or to share).
//! - [`portal_desktop`]: a private session bus, PipeWire, a screen picture as a PipeWire source
//!   and the ScreenCast portal that grants it (Wayland screen sharing).
//! - [`audio`]: test signals (speech-like, tones, noise, echo paths), their measures, and the
//!   seeds that make them reproducible.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a test failure with its message"
)]

pub mod audio;
pub mod coturn;
pub mod portal_desktop;
pub mod pulse;
pub mod signaling;
pub mod tcp_proxy;
pub mod xvfb;
