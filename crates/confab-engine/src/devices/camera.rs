//! Cameras on nokhwa (V4L2 on Linux, AVFoundation on macOS, Media Foundation on Windows):
//! listing them, opening one in the best mode for the call, and keeping it alive across unplugs.
//!
//! - [`list_cameras`] lists capture devices for a picker (ids are backend indexes as strings).
//! - [`CameraSource::open`] opens one as a [`CameraSource`], a [`VideoSource`] that yields I420 frames
//!   of exactly the requested size ([`FrameDecoder`] crops and scales when the camera cannot give
//!   that size), paced at no more than the requested frame rate.
//! - [`spawn_camera`] does that on a named capture thread, which is how it must be used: nokhwa's
//!   `Camera` is not `Send`, so the source is built on the thread that reads it and stays there.
//! - [`CameraSystem`] is the device boundary: [`Nokhwa`] in the app, [`FakeCameras`](crate::testing::FakeCameras) (with
//!   unplug, busy and corrupt-frame switches) in tests; [`spawn_camera_with`] and
//!   [`CameraSource::open`] take either.
//!
//! This file owns the [`CameraSystem`] boundary, the [`CameraSource`] (decode, pacing, the
//! lost / reopen cycle, which follows the shared [`lifecycle`](super::lifecycle) with
//! [`ReopenPolicy::CAMERA`]) and its capture thread. Everything that calls nokhwa is in the
//! `nokhwa_backend` submodule; format choice and decoding are in [`super::camera_format`].
//!
//! Opening: the camera is opened, its modes are listed,
//! [`choose_mode`](super::camera_format::choose_mode) picks one, and the stream is started and one
//! frame read (V4L2 only claims USB bandwidth then). If that mode fails to start, the next choice
//! is tried (up to three). Errors are [`DeviceError`]s with a sentence for the user ("No camera
//! found", "Camera \"X\" is busy; ...").
//!
//! Running: a read error (unplug, driver reset) or a long run of undecodable frames releases the
//! camera and reports [`DeviceState::Lost`] once through the [`DeviceStatus`] callback. The source
//! then tries to reopen the same camera (by name, so a new device index after a replug is fine)
//! after 0.5 s, 1 s, then every 2 s ([`CAMERA_BACKOFF`](super::lifecycle::CAMERA_BACKOFF)),
//! sleeping in between (no busy loop), and reports [`DeviceState::Running`] when it is back. A
//! single corrupt frame is just dropped.
//!
//! **Stop contract.** The capture thread's runner checks its stop flag between calls to
//! `next_frame`, so `next_frame` must return regularly:
//! - while streaming it returns with each camera frame (one frame interval);
//! - while the camera is lost it returns a black placeholder frame every 250 ms between reopen
//!   attempts, so stopping takes at most ~250 ms (plus one reopen attempt) and receivers see that
//!   the camera is gone rather than a frozen picture;
//! - a camera that stays open but stops delivering without an error blocks the read inside the
//!   backend (nokhwa exposes no read timeout); unplugging ends such a read with an error.

mod nokhwa_backend;

use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, info, warn};

use self::nokhwa_backend::is_disconnect;
pub use self::nokhwa_backend::{Nokhwa, list_cameras};
use super::camera_format::{CameraMode, CaptureRequest, FrameDecoder, PixelFormat};
use super::lifecycle::{Lifecycle, ReopenPolicy};
use super::{DeviceError, DeviceInfo, DeviceKind, DeviceNotice, DeviceState, DeviceStatus};
use crate::media::drop_oldest::DropOldestReceiver;
use crate::media::source::{CaptureThread, Pacing, spawn_video_with};
use crate::media::{CaptureTime, I420Frame, SourceError, VideoSource};

/// While the camera is lost, a black frame this often keeps `next_frame` returning.
const PLACEHOLDER_INTERVAL: Duration = Duration::from_millis(250);
/// Consecutive undecodable frames (~3 s at 30 fps) after which the camera is reopened.
const MAX_BAD_FRAMES: u32 = 90;
/// Name of the capture thread [`spawn_camera`] starts.
const THREAD_NAME: &str = "confab-video-camera";

/// Opens camera `id` (an id or a name from [`list_cameras`]) on a new capture thread for frames of
/// `width` x `height` at up to `fps` frames per second, and streams its frames
/// into a drop-oldest channel holding `capacity` frames. If the camera cannot be opened the
/// thread ends at once: `status` gets a [`DeviceState::Absent`] notice with the reason, and
/// [`CaptureThread::stop`] returns it as [`SourceError::Device`].
///
/// # Errors
/// [`SourceError::Spawn`] if the thread cannot be started.
pub fn spawn_camera(
    id: &str,
    width: u32,
    height: u32,
    fps: u32,
    status: DeviceStatus,
    capacity: usize,
) -> Result<(CaptureThread, DropOldestReceiver<I420Frame>), SourceError> {
    spawn_camera_with(
        Nokhwa,
        id,
        CaptureRequest { width, height, fps },
        status,
        capacity,
    )
}

/// [`spawn_camera`] on any [`CameraSystem`] (the fake one in tests).
///
/// # Errors
/// [`SourceError::Spawn`] if the thread cannot be started.
pub fn spawn_camera_with<S: CameraSystem + Send + 'static>(
    system: S,
    id: &str,
    request: CaptureRequest,
    status: DeviceStatus,
    capacity: usize,
) -> Result<(CaptureThread, DropOldestReceiver<I420Frame>), SourceError> {
    let id = id.to_string();
    spawn_video_with(THREAD_NAME, capacity, move || {
        CameraSource::open(system, &id, request, status.clone()).map_err(|e| {
            status(DeviceNotice {
                kind: DeviceKind::Camera,
                state: DeviceState::Absent,
                device: id.clone(),
                message: e.to_string(),
            });
            SourceError::Device(e.to_string())
        })
    })
}

/// One frame as a camera delivered it.
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// Byte layout.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The frame's bytes (possibly followed by unused buffer space).
    pub data: Bytes,
}

/// A camera system: lists cameras, starts one streaming, reads its frames. [`Nokhwa`] is the
/// real one; [`FakeCameras`](crate::testing::FakeCameras) stands in for it in tests. [`CameraSource`] adds format
/// choice, decoding, pacing and the lost/reopen cycle on top.
pub trait CameraSystem {
    /// An open, streaming camera; dropping it closes the camera. Need not be `Send`.
    type Stream;

    /// Cameras attached now, the default first.
    ///
    /// # Errors
    /// [`DeviceError::Backend`] if the system cannot be queried.
    fn list(&self) -> Result<Vec<DeviceInfo>, DeviceError>;

    /// Opens `device` and starts it streaming in the best mode for `request`.
    ///
    /// # Errors
    /// A [`DeviceError`] with a sentence for the user.
    fn start(
        &self,
        device: &DeviceInfo,
        request: CaptureRequest,
    ) -> Result<(Self::Stream, CameraMode), DeviceError>;

    /// Blocks until the camera's next frame.
    ///
    /// # Errors
    /// The backend's description of a failed read: the camera is gone or broken.
    fn read(&self, stream: &mut Self::Stream) -> Result<RawFrame, String>;
}

/// A camera as a [`VideoSource`]: [`Pacing::SelfPaced`], frames of the requested size stamped
/// when they arrived from the device. Not `Send` on [`Nokhwa`]: build it on its capture thread.
/// The stop contract is in the module docs.
pub struct CameraSource<S: CameraSystem = Nokhwa> {
    system: S,
    device: DeviceInfo,
    request: CaptureRequest,
    /// Lost / back-off / reopen, shared with the other devices ([`ReopenPolicy::CAMERA`]).
    lifecycle: Lifecycle,
    /// `None` while the camera is lost.
    stream: Option<S::Stream>,
    mode: CameraMode,
    decoder: FrameDecoder,
    pacer: FramePacer,
    bad_frames: u32,
    next_placeholder: Instant,
}

impl<S: CameraSystem> std::fmt::Debug for CameraSource<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraSource")
            .field("device", &self.device)
            .field("mode", &self.mode)
            .field("request", &self.request)
            .field("open", &self.stream.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: CameraSystem> CameraSource<S> {
    /// Opens camera `id` (an id or a name from [`CameraSystem::list`]) on `system` for frames
    /// of the requested size and rate. Reports [`DeviceState::Running`] through `status` once
    /// streaming. Call it on the thread that will read the source ([`spawn_camera`] does).
    ///
    /// # Errors
    /// [`DeviceError::NotFound`] (no camera, or none with that id or name),
    /// [`DeviceError::Unavailable`] (busy, no permission, no USB bandwidth),
    /// [`DeviceError::Unsupported`] (no usable mode, or a zero size), [`DeviceError::Backend`].
    pub fn open(
        system: S,
        id: &str,
        request: CaptureRequest,
        status: DeviceStatus,
    ) -> Result<Self, DeviceError> {
        let decoder = FrameDecoder::new(request.width, request.height)
            .map_err(|e| DeviceError::Unsupported(format!("Cannot capture video: {e}")))?;
        let device = find_camera(&system, id)?;
        let (stream, mode) = system.start(&device, request)?;
        info!(camera = %device.name, %mode, "camera started");
        let now = Instant::now();
        let source = Self {
            system,
            device,
            request,
            lifecycle: Lifecycle::new(DeviceKind::Camera, ReopenPolicy::CAMERA, status),
            stream: Some(stream),
            mode,
            decoder,
            pacer: FramePacer::new(request.fps),
            bad_frames: 0,
            next_placeholder: now,
        };
        source.lifecycle.notify(
            DeviceState::Running,
            &source.device.name,
            format!("Camera \"{}\" is on", source.device.name),
        );
        Ok(source)
    }

    /// Closes the camera and reports it lost; reopening starts after the first backoff step.
    fn lose(&mut self, reason: &str) {
        self.stream = None;
        warn!(camera = %self.device.name, reason, "camera lost");
        let message = if is_disconnect(reason) {
            format!(
                "Camera \"{}\" was disconnected; waiting for it to come back",
                self.device.name
            )
        } else {
            format!(
                "Camera \"{}\" stopped working; trying to reopen it",
                self.device.name
            )
        };
        let now = Instant::now();
        self.lifecycle.lost(&self.device.name, message, now);
        self.next_placeholder = now;
        self.bad_frames = 0;
    }

    /// One step while the camera is lost: a reopen attempt when one is due, else a sleep until
    /// the next attempt or placeholder. Returns a placeholder frame when one is due.
    fn wait_for_camera(&mut self) -> Result<Option<I420Frame>, SourceError> {
        let now = Instant::now();
        // The policy reopens only this camera (found again by name), never another one.
        if self.lifecycle.due(now, false).is_some() {
            let reopened = find_again(&self.system, &self.device).and_then(|device| {
                let started = self.system.start(&device, self.request)?;
                Ok((device, started))
            });
            match reopened {
                Ok((device, (stream, mode))) => {
                    info!(camera = %device.name, %mode, "camera reopened");
                    self.device = device;
                    self.stream = Some(stream);
                    self.mode = mode;
                    self.pacer = FramePacer::new(self.request.fps);
                    self.lifecycle.reopened(&self.device.name, false);
                    return Ok(None);
                }
                Err(e) => {
                    debug!(camera = %self.device.name, error = %e, "camera not back yet");
                    self.lifecycle.retry_later(Instant::now());
                }
            }
        }
        let now = Instant::now();
        if now >= self.next_placeholder {
            self.next_placeholder = now + PLACEHOLDER_INTERVAL;
            let mut frame = I420Frame::black(self.request.width, self.request.height)
                .map_err(|e| SourceError::Format(e.to_string()))?;
            frame.capture_time = CaptureTime::now();
            return Ok(Some(frame));
        }
        let wake = self.lifecycle.next_attempt().min(self.next_placeholder);
        std::thread::sleep(wake.saturating_duration_since(now));
        Ok(None)
    }
}

impl<S: CameraSystem> VideoSource for CameraSource<S> {
    fn name(&self) -> String {
        self.device.name.clone()
    }

    fn pacing(&self) -> Pacing {
        Pacing::SelfPaced
    }

    fn next_frame(&mut self) -> Result<I420Frame, SourceError> {
        loop {
            let Some(stream) = self.stream.as_mut() else {
                if let Some(placeholder) = self.wait_for_camera()? {
                    return Ok(placeholder);
                }
                continue;
            };
            let raw = match self.system.read(stream) {
                Ok(raw) => raw,
                Err(e) => {
                    self.lose(&e);
                    continue;
                }
            };
            let arrived = CaptureTime::now();
            if !self.pacer.admit(arrived) {
                continue;
            }
            match self
                .decoder
                .decode(raw.format, raw.width, raw.height, &raw.data, arrived)
            {
                Ok(frame) => {
                    self.bad_frames = 0;
                    return Ok(frame);
                }
                Err(e) => {
                    self.bad_frames += 1;
                    if self.bad_frames == 1 {
                        warn!(camera = %self.device.name, error = %e, "dropping a bad camera frame");
                    } else {
                        debug!(camera = %self.device.name, error = %e, "dropping a bad camera frame");
                    }
                    if self.bad_frames >= MAX_BAD_FRAMES {
                        self.lose(&format!(
                            "{MAX_BAD_FRAMES} undecodable frames in a row: {e}"
                        ));
                    }
                }
            }
        }
    }
}

/// Finds a listed camera by id, else by name.
fn find_camera<S: CameraSystem>(system: &S, id: &str) -> Result<DeviceInfo, DeviceError> {
    let cameras = system.list()?;
    if cameras.is_empty() {
        return Err(DeviceError::NotFound("No camera found".into()));
    }
    cameras
        .iter()
        .find(|c| c.id == id)
        .or_else(|| cameras.iter().find(|c| c.name == id))
        .cloned()
        .ok_or_else(|| DeviceError::NotFound(format!("Camera \"{id}\" not found")))
}

/// Finds a lost camera again: same id and name, else the same name (a replug can change the
/// index). Another camera that took over the old id is not opened in its place.
fn find_again<S: CameraSystem>(system: &S, lost: &DeviceInfo) -> Result<DeviceInfo, DeviceError> {
    let cameras = system.list()?;
    cameras
        .iter()
        .find(|c| c.id == lost.id && c.name == lost.name)
        .or_else(|| cameras.iter().find(|c| c.name == lost.name))
        .cloned()
        .ok_or_else(|| DeviceError::NotFound(format!("Camera \"{}\" is not connected", lost.name)))
}

/// Passes at most `fps` frames a second from a camera that may deliver more (a 60 fps-only mode
/// for a 30 fps call), dropping the surplus before it is decoded. Frames a little early (a
/// quarter interval) still pass, so a camera at the requested rate with jitter loses none.
#[derive(Debug, Clone)]
struct FramePacer {
    interval: Duration,
    due: Option<CaptureTime>,
}

impl FramePacer {
    fn new(fps: u32) -> Self {
        Self {
            interval: if fps == 0 {
                Duration::ZERO
            } else {
                Duration::from_secs(1) / fps
            },
            due: None,
        }
    }

    fn admit(&mut self, now: CaptureTime) -> bool {
        let next = match self.due {
            None => now,
            Some(due) if now.plus(self.interval / 4) < due => return false,
            // Behind by more than an interval (a slow camera): restart from now, do not burst.
            Some(due) if now > due.plus(self.interval) => now,
            Some(due) => due,
        };
        self.due = Some(next.plus(self.interval));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(pacer: &mut FramePacer, times_ms: impl IntoIterator<Item = u64>) -> usize {
        times_ms
            .into_iter()
            .filter(|&ms| pacer.admit(CaptureTime::from_micros(ms * 1000)))
            .count()
    }

    #[test]
    fn pacer_halves_a_double_rate_camera() {
        let mut pacer = FramePacer::new(30);
        // 60 fps for one second.
        let n = admitted(&mut pacer, (0..60).map(|i| i * 1000 / 60));
        assert_eq!(n, 30);
    }

    #[test]
    fn pacer_keeps_every_frame_at_or_below_the_rate() {
        let mut pacer = FramePacer::new(30);
        // 30 fps with ±5 ms jitter.
        let jittered = (0..90u64).map(|i| i * 1000 / 30 + if i % 2 == 0 { 5 } else { 0 });
        assert_eq!(admitted(&mut pacer, jittered), 90);
        let mut pacer = FramePacer::new(30);
        assert_eq!(admitted(&mut pacer, (0..50).map(|i| i * 40)), 50);
        let mut any = FramePacer::new(0);
        assert_eq!(admitted(&mut any, (0..10).map(|_| 0)), 10);
    }

    #[test]
    fn pacer_does_not_burst_after_a_gap() {
        let mut pacer = FramePacer::new(30);
        assert!(pacer.admit(CaptureTime::from_micros(0)));
        // A one-second stall, then 60 fps: still no more than 30 fps afterwards.
        let after = admitted(&mut pacer, (0..60).map(|i| 1000 + i * 1000 / 60));
        assert!(after <= 31, "{after}");
    }
}
