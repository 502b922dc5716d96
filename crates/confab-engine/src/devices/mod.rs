//! Real capture and playout devices: cameras (nokhwa), microphones and speakers (cpal).
//!
//! Each device plugs into the media pipeline's device-neutral traits unchanged: a camera is a
//! [`VideoSource`](super::media::VideoSource), a microphone an
//! [`AudioSource`](super::media::AudioSource), a speaker an [`AudioSink`](super::api::AudioSink).
//! Device handles that are not `Send` (nokhwa's `Camera`, cpal's `Stream` on some platforms) live
//! on the one named thread that opened them.
//!
//! | module | owns |
//! |---|---|
//! | `camera` | the camera boundary (`CameraSystem`), the capture thread's `CameraSource`, reopen after unplug; nokhwa itself in `camera/nokhwa_backend.rs` |
//! | `camera_format` | mode choice; the MJPEG / YUYV / NV12 / RGB -> I420 decode path (`decode.rs`, `mjpeg.rs`) and the centre crop (`crop.rs`) |
//! | `audio` | audio device listing, lookup by id, stream configuration choice, cpal error mapping |
//! | `microphone` | `Microphone`: cpal input -> lock-free ring -> 10 ms frames, device loss and fallback |
//! | `speaker` | `Speaker`: playout -> lock-free ring -> cpal output, latency cap, device loss and fallback |
//! | `lifecycle` | the lost / back-off / reopen / fall-back / notify cycle all three device kinds share |
//! | [`sound_check`] | play a tone through a speaker, record it with a microphone, measure it |
//! | `watcher` | hot-plug: lists devices every few seconds on its own thread, reports changes |
//! | `resampler` | streaming rubato resampler for devices that do not run at 48 kHz |
//! | `screen` | (Linux) X11 screen capture: monitors (RandR), `X11ScreenSource` (MIT-SHM or `GetImage`, XFixes cursor, I420 within 1080p) |
//!
//! # Device lifecycle
//!
//! Every running device is in one of these states, and the UI hears of each change as a
//! [`DeviceNotice`] ([`DeviceState`] plus the device's name and a sentence to show):
//!
//! ```text
//!   open ──ok──> Running ──fails──> Lost ──requested one opens──> Running
//!    │                                │
//!    └─error──> Absent                └──default opens (audio only)──> FellBack
//!                                                                        │
//!                          Running <──requested one is back──────────────┘
//! ```
//!
//! - **Opening.** A camera sends `Running` ("Camera "X" is on") once it streams. A camera that
//!   cannot be opened ends its capture thread with an `Absent` notice carrying the reason; a
//!   microphone or speaker that cannot be opened is a [`DeviceError`] to the caller, which
//!   reports `Absent` and goes on without it.
//! - **Lost.** A device fails: a read or stream error, a microphone that delivers nothing or a
//!   speaker that stops asking for audio for 2 s, 90 undecodable camera frames in a row. One
//!   `Lost` notice says so (a camera tells an unplug, "was disconnected; waiting for it to come
//!   back", from other failures, "stopped working; trying to reopen it"). Failed reopen
//!   attempts send nothing more. Meanwhile the call goes on: a microphone sends paced silence,
//!   a speaker discards audio, a camera sends a black frame every 250 ms.
//! - **Back-off.** A microphone or speaker tries again at once and then every 2 s
//!   (`lifecycle::AUDIO_RETRY`); a camera after 0.5 s, 1 s, then every 2 s
//!   (`lifecycle::CAMERA_BACKOFF`). Threads sleep or park in between, never busy-loop.
//! - **Reopen or fall back.** Each attempt opens the device the user picked (a camera is found
//!   again by name, so a new index after a replug is fine). When that fails, a microphone or
//!   speaker the user picked by id falls back to the system default: `FellBack` ("Switched to
//!   the default microphone "Y"."). A camera never falls back to another camera.
//! - **Back.** The picked device opens again: `Running` ("Microphone "X" is back.", "Camera
//!   "X" is back"). While on the default, the picked device is looked for every 2 s and
//!   taken back as soon as it opens.
//!
//! The schedule, the fallback decision and the notices are one `lifecycle::Lifecycle` each
//! device kind plugs into; how a failure is noticed and what a device sends meanwhile stay
//! with the device.
//!
//! Contract: nothing here panics on a missing or failing device. Opening gives a
//! [`DeviceError`]; a device that fails while running reports a [`DeviceNotice`] through the
//! [`DeviceStatus`] callback, waits (no busy loop), and reopens it or falls back to the system
//! default. Every thread the device code starts is named and runs as a `crate::worker::Worker`,
//! whose spawn failure is an error, not a panic (the camera's capture thread is the media
//! pipeline's [`CaptureThread`](crate::media::source::CaptureThread), also named).

pub(crate) mod audio;
pub(crate) mod camera;
pub(crate) mod camera_format;
pub(crate) mod lifecycle;
pub(crate) mod microphone;
mod resampler;
#[cfg(target_os = "linux")]
pub mod screen;
pub mod sound_check;
pub(crate) mod speaker;
pub(crate) mod watcher;

pub use audio::DEFAULT_DEVICE;

use std::sync::Arc;

use serde::Serialize;

/// Why a device could not be listed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// No device with that name / id exists (or none at all).
    #[error("{0}")]
    NotFound(String),
    /// The device exists but cannot be used now (busy, unplugged, no permission).
    #[error("{0}")]
    Unavailable(String),
    /// The device offers no format we can use.
    #[error("{0}")]
    Unsupported(String),
    /// The platform backend failed.
    #[error("{0}")]
    Backend(String),
}

impl From<crate::worker::WorkerError> for DeviceError {
    fn from(e: crate::worker::WorkerError) -> Self {
        Self::Backend(e.to_string())
    }
}

/// Which kind of device a notice or a list entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// A camera.
    Camera,
    /// A microphone.
    Microphone,
    /// A speaker or headphones.
    Speaker,
}

impl DeviceKind {
    /// "Camera" / "Microphone" / "Speaker", for sentences.
    pub const fn noun(self) -> &'static str {
        match self {
            Self::Camera => "Camera",
            Self::Microphone => "Microphone",
            Self::Speaker => "Speaker",
        }
    }
}

/// What happened to a running device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// It was opened (or reopened) and delivers media.
    Running,
    /// It failed or disappeared; we keep trying to get it back.
    Lost,
    /// It failed and we switched to the system default device.
    FellBack,
    /// There is no such device; the call goes on without it.
    Absent,
}

/// A change in a running device's state, with a sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DeviceNotice {
    /// Camera, microphone or speaker.
    pub kind: DeviceKind,
    /// New state.
    pub state: DeviceState,
    /// The device's name, as listed.
    pub device: String,
    /// What the user should read, e.g. "Camera "HD Webcam" was unplugged; waiting for it".
    pub message: String,
}

/// Receives [`DeviceNotice`]s from capture and playout threads. Must be quick.
pub type DeviceStatus = Arc<dyn Fn(DeviceNotice) + Send + Sync>;

/// One device as listed for a picker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// Stable identifier to open it with (a camera index, an audio device id).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Whether this is the system's default device of its kind.
    pub is_default: bool,
}

/// Every device a picker can offer, as found by one [`enumerate`] pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeviceList {
    /// Cameras.
    pub cameras: Vec<DeviceInfo>,
    /// Microphones, the default first.
    pub microphones: Vec<DeviceInfo>,
    /// Speakers and headphones, the default first.
    pub speakers: Vec<DeviceInfo>,
    /// Why a kind of device could not be listed (for example no audio system running).
    pub problems: Vec<String>,
}

/// Lists cameras, microphones and speakers. Never fails: what cannot be listed is explained in
/// [`DeviceList::problems`]. Takes from milliseconds to a few hundred (device probing).
#[must_use]
pub fn enumerate() -> DeviceList {
    let mut list = DeviceList::default();
    match camera::list_cameras() {
        Ok(c) => list.cameras = c,
        Err(e) => list.problems.push(e.to_string()),
    }
    match audio::list_microphones() {
        Ok(m) => list.microphones = m,
        Err(e) => list.problems.push(e.to_string()),
    }
    match audio::list_speakers() {
        Ok(s) => list.speakers = s,
        Err(e) => list.problems.push(e.to_string()),
    }
    if list.microphones.is_empty() && list.speakers.is_empty() && list.problems.is_empty() {
        list.problems.push(
            "No sound card found, and no audio system such as PulseAudio or PipeWire is \
             running: calls work, but without your microphone and speaker."
                .into(),
        );
    }
    list
}

/// Opens where remote audio should play: a speaker, or nowhere.
///
/// # Errors
/// The speaker's [`DeviceError`] (the caller decides whether to fall back to silence).
pub(crate) fn open_sink(
    output: &crate::api::AudioOutput,
    status: DeviceStatus,
) -> Result<Box<dyn crate::api::AudioSink>, DeviceError> {
    match output {
        crate::api::AudioOutput::None => Ok(Box::new(crate::media::NullSink)),
        crate::api::AudioOutput::Speaker(id) => {
            Ok(Box::new(speaker::Speaker::open(Some(id), status)?))
        }
    }
}
