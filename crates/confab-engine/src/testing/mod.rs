//! Test doubles and helpers, compiled only with the `testing` feature (and for the engine's own
//! unit tests). Production code never depends on anything here.
//!
//! - [`FakeCameras`]: in-process cameras behind the camera device boundary, producing real MJPEG
//!   or raw frames, with fault switches (unplug, busy, corrupt frames).
//! - [`NetworkSimulator`]: re-exported from [`crate::netsim`] (public, the app uses it too): the
//!   user-space network that drops, delays, rate-limits or black-holes a call's packets.
//! - [`fixtures`]: Y4M and WAV files for file-fed media.
//! - [`SignalRecorder`] and [`SignalBus`]: signaling without a server, for driving sessions
//!   in-process (record what one sends; deliver between several, holding signals to make offers
//!   cross).
//! - [`PlayoutCounter`]: a probe to wait for an engine to have played some decoded audio.
//! - [`small_engine_config`] and [`start_engine`]: a quick engine for tests.
//! - [`wait_until`] and [`wait_all_until`]: [`crate::observer`] waits that fail the test, with
//!   what was seen, when they time out.
//! - [`peer`] and [`devices`]: the engine-internal types that integration tests drive directly
//!   (one peer connection; a camera, microphone or speaker), re-exported only here: they are
//!   not part of the engine's public API.

mod fake_cameras;
pub mod fixtures;
mod playout_counter;
mod signaling_bus;

use std::sync::Arc;

pub use crate::netsim::NetworkSimulator;
pub use fake_cameras::{FakeCameras, FakeCounts};
pub use playout_counter::PlayoutCounter;
pub use signaling_bus::{BusSender, SignalBus, SignalRecorder, forward_route, signal_kind};

/// One webrtc-rs peer connection, driven without a session (`tests/engine_peer.rs`).
pub mod peer {
    pub use crate::peer::{
        AudioInlet, BitrateRange, ConnectionState, Discard, MediaInlet, PeerError, PeerEvent,
        PeerLink, PeerSettings, ReceivedFrame, VideoInlet,
    };
}

/// Capture and playout devices opened directly (device tests and the camera decode bench).
pub mod devices {
    pub use crate::devices::camera::{list_cameras, spawn_camera, spawn_camera_with};
    pub use crate::devices::camera_format::{
        CameraMode, CaptureRequest, DecodeError, FrameDecoder, PixelFormat, decode_to_i420,
        raw_frame_len,
    };
    pub use crate::devices::microphone::Microphone;
    pub use crate::devices::speaker::Speaker;
}

use crate::media::NullSink;
use crate::observer::{self, CallObserver, FrameSink};
use crate::{Engine, EngineConfig, VideoSettings};

/// 320x240 at 15 fps, synthetic media, ICE on 127.0.0.1, no preview: quick to run.
pub fn small_engine_config(name: &str) -> EngineConfig {
    let mut config = EngineConfig::new(name);
    config.video = VideoSettings {
        width: 320,
        height: 240,
        fps: 15,
        start_kbps: 300,
        min_kbps: 100,
        max_kbps: 400,
    };
    config.bind_addrs = vec![([127, 0, 0, 1], 0).into()];
    config.preview = false;
    config
}

/// Starts an engine with `config`, no speaker and no repaint.
///
/// # Panics
/// If the engine cannot start (a test failure).
#[allow(
    clippy::expect_used,
    reason = "test helper: a panic is the test failing"
)]
pub fn start_engine(config: EngineConfig) -> Engine {
    Engine::start(config, Box::new(NullSink), Arc::new(|| {})).expect("the engine starts")
}

/// How long a test waits for something before it fails. A failure guard only: nothing asserts
/// on speed.
pub const WAIT_GUARD: std::time::Duration = std::time::Duration::from_secs(30);

/// Pumps `observer` until `done` holds.
///
/// # Panics
/// After [`WAIT_GUARD`] (or if the engine stops), naming `what` and showing what was seen.
pub fn wait_until<F: FrameSink>(
    observer: &mut CallObserver<F>,
    what: &str,
    mut done: impl FnMut(&CallObserver<F>) -> bool,
) {
    wait_all_until(&mut [observer], what, |o| done(&*o[0]));
}

/// Pumps every observer until `done` holds.
///
/// # Panics
/// After [`WAIT_GUARD`] (or if every engine stops), naming `what` and showing what each engine
/// had seen.
pub fn wait_all_until<F: FrameSink>(
    observers: &mut [&mut CallObserver<F>],
    what: &str,
    done: impl FnMut(&[&mut CallObserver<F>]) -> bool,
) {
    if let Err(e) = observer::pump_all_until(observers, what, WAIT_GUARD, done) {
        let seen: Vec<String> = observers
            .iter()
            .map(|o| format!("{}: {:#?}", o.label(), o.view))
            .collect();
        panic!("{e}\n{}", seen.join("\n"));
    }
}
