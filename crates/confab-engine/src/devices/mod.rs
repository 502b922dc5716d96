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
//! | [`camera`] | camera enumeration, format choice, the capture thread's camera source, reopen after unplug |
//! | [`camera_format`] | format selection and the MJPEG / YUYV / NV12 / RGB -> I420 decode path |
//! | [`audio`] | audio device listing, lookup by id, stream configuration choice, cpal error mapping |
//! | [`microphone`] | [`Microphone`](microphone::Microphone): cpal input -> lock-free ring -> 10 ms frames, device loss and fallback |
//! | [`speaker`] | [`Speaker`](speaker::Speaker): playout -> lock-free ring -> cpal output, latency cap, device loss and fallback |
//! | [`sound_check`] | play a tone through a speaker, record it with a microphone, measure it |
//! | [`watcher`] | hot-plug: lists devices every few seconds on its own thread, reports changes |
//! | `resampler` | streaming rubato resampler for devices that do not run at 48 kHz |
//!
//! Contract: nothing here panics on a missing or failing device. Opening gives a
//! [`DeviceError`]; a device that fails while running reports a [`DeviceNotice`] through the
//! [`DeviceStatus`] callback, waits (no busy loop), and reopens it or falls back to the system
//! default.

pub mod audio;
pub mod camera;
pub mod camera_format;
pub mod lifecycle;
pub mod microphone;
mod resampler;
pub mod sound_check;
pub mod speaker;
pub mod watcher;
pub mod worker;

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

/// Which kind of device a notice or a list entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// A camera.
    Camera,
    /// A microphone.
    Microphone,
    /// A speaker or headphones.
    Speaker,
}

/// What happened to a running device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
pub fn open_sink(
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
