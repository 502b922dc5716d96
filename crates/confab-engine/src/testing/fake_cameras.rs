//! In-process cameras for tests and demos, with fault switches: unplug and replug, busy,
//! corrupt frames. Clones share their state, so a test keeps one handle while the capture
//! thread owns another. Reads are paced at the mode's frame rate (they sleep, like a real
//! camera's blocking read).

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::devices::camera::{CameraSystem, RawFrame};
use crate::devices::camera_format::{
    CameraMode, CaptureRequest, PixelFormat, choose_mode, raw_frame_len,
};
use crate::devices::{DeviceError, DeviceInfo};

/// A set of fake cameras (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct FakeCameras {
    state: Arc<Mutex<Vec<FakeCamera>>>,
    starts: Arc<Mutex<usize>>,
    counts: Arc<(Mutex<FakeCounts>, Condvar)>,
}

/// What the capture side asked of the fake cameras, for a test to wait on (rather than sleep
/// for as long as it should take).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FakeCounts {
    /// Calls to list the cameras (every open and reopen attempt starts with one).
    pub lists: usize,
    /// Calls to start a camera, failed ones included (reopen attempts).
    pub start_attempts: usize,
    /// Corrupt frames handed out.
    pub corrupt_frames: usize,
}

#[derive(Debug)]
struct FakeCamera {
    name: String,
    modes: Vec<CameraMode>,
    plugged: bool,
    busy: bool,
    corrupt: bool,
    /// Bumped on unplug, so streams opened before fail.
    generation: u64,
    frame: Option<RawFrame>,
}

/// A fake camera that is streaming.
#[derive(Debug)]
pub struct FakeStream {
    index: usize,
    generation: u64,
    mode: CameraMode,
    next: Instant,
}

impl FakeCameras {
    /// No cameras.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn cameras(&self) -> MutexGuard<'_, Vec<FakeCamera>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn with(&self, name: &str, change: impl FnOnce(&mut FakeCamera)) {
        if let Some(camera) = self.cameras().iter_mut().find(|c| c.name == name) {
            change(camera);
        }
    }

    /// Plugs in a camera listing `modes`. Until [`FakeCameras::set_frame`] it delivers
    /// mid-grey frames in the chosen mode (MJPEG modes need a frame set).
    pub fn add(&self, name: &str, modes: &[CameraMode]) {
        self.cameras().push(FakeCamera {
            name: name.to_string(),
            modes: modes.to_vec(),
            plugged: true,
            busy: false,
            corrupt: false,
            generation: 0,
            frame: None,
        });
    }

    /// Unplugs (reads on open streams fail, it leaves the list) or replugs a camera.
    pub fn set_plugged(&self, name: &str, plugged: bool) {
        self.with(name, |c| {
            if c.plugged && !plugged {
                c.generation += 1;
            }
            c.plugged = plugged;
        });
    }

    /// Makes starting the camera fail as if another app held it.
    pub fn set_busy(&self, name: &str, busy: bool) {
        self.with(name, |c| c.busy = busy);
    }

    /// Makes every frame undecodable (or good again).
    pub fn set_corrupt(&self, name: &str, corrupt: bool) {
        self.with(name, |c| c.corrupt = corrupt);
    }

    /// What every read delivers from now on.
    pub fn set_frame(
        &self,
        name: &str,
        format: PixelFormat,
        width: u32,
        height: u32,
        data: Vec<u8>,
    ) {
        self.with(name, |c| {
            c.frame = Some(RawFrame {
                format,
                width,
                height,
                data: Bytes::from(data),
            });
        });
    }

    /// What has been asked so far.
    #[must_use]
    pub fn counts(&self) -> FakeCounts {
        *self.counts.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `until` holds for the counts; false after `timeout`.
    #[must_use]
    pub fn wait_counts(&self, timeout: Duration, until: impl Fn(&FakeCounts) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let (counts, changed) = &*self.counts;
        let mut c = counts.lock().unwrap_or_else(PoisonError::into_inner);
        while !until(&c) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            c = changed
                .wait_timeout(c, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    fn count(&self, change: impl FnOnce(&mut FakeCounts)) {
        let (counts, changed) = &*self.counts;
        change(&mut counts.lock().unwrap_or_else(PoisonError::into_inner));
        changed.notify_all();
    }

    /// How many times a camera was started (opened or reopened).
    #[must_use]
    pub fn starts(&self) -> usize {
        *self.starts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn grey(mode: CameraMode) -> RawFrame {
    let format = if mode.format == PixelFormat::Mjpeg {
        PixelFormat::Gray
    } else {
        mode.format
    };
    let len = raw_frame_len(format, mode.width, mode.height);
    let data = match format {
        // Y and chroma interleaved: mid-grey luma, neutral chroma.
        PixelFormat::Yuyv => vec![128; len],
        PixelFormat::Nv12 => {
            let luma = mode.width as usize * mode.height as usize;
            let mut d = vec![126; luma];
            d.resize(len, 128);
            d
        }
        _ => vec![128; len],
    };
    RawFrame {
        format,
        width: mode.width,
        height: mode.height,
        data: Bytes::from(data),
    }
}

impl CameraSystem for FakeCameras {
    type Stream = FakeStream;

    fn list(&self) -> Result<Vec<DeviceInfo>, DeviceError> {
        self.count(|c| c.lists += 1);
        Ok(self
            .cameras()
            .iter()
            .enumerate()
            .filter(|(_, c)| c.plugged)
            .enumerate()
            .map(|(n, (i, c))| DeviceInfo {
                id: i.to_string(),
                name: c.name.clone(),
                is_default: n == 0,
            })
            .collect())
    }

    fn start(
        &self,
        device: &DeviceInfo,
        request: CaptureRequest,
    ) -> Result<(FakeStream, CameraMode), DeviceError> {
        self.count(|c| c.start_attempts += 1);
        let cameras = self.cameras();
        let index = device.id.parse::<usize>().unwrap_or(usize::MAX);
        let camera = cameras.get(index).filter(|c| c.plugged).ok_or_else(|| {
            DeviceError::NotFound(format!("Camera \"{}\" is not connected", device.name))
        })?;
        if camera.busy {
            return Err(DeviceError::Unavailable(format!(
                "Camera \"{}\" is busy; close other apps that use it",
                camera.name
            )));
        }
        let mode = choose_mode(&camera.modes, request).ok_or_else(|| {
            DeviceError::Unsupported(format!(
                "Camera \"{}\" offers no picture format Confab can use",
                camera.name
            ))
        })?;
        *self.starts.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        let stream = FakeStream {
            index,
            generation: camera.generation,
            mode,
            next: Instant::now(),
        };
        Ok((stream, mode))
    }

    fn read(&self, stream: &mut FakeStream) -> Result<RawFrame, String> {
        let interval = Duration::from_secs(1) / stream.mode.fps.max(1);
        std::thread::sleep(stream.next.saturating_duration_since(Instant::now()));
        stream.next = (stream.next + interval).max(Instant::now());
        let cameras = self.cameras();
        let camera = cameras
            .get(stream.index)
            .filter(|c| c.plugged && c.generation == stream.generation)
            .ok_or("No such device (os error 19)")?;
        if camera.corrupt {
            self.count(|c| c.corrupt_frames += 1);
            return Ok(RawFrame {
                format: PixelFormat::Mjpeg,
                width: stream.mode.width,
                height: stream.mode.height,
                data: Bytes::from_static(&[0xFF, 0xD8, 0xFF]),
            });
        }
        Ok(camera.frame.clone().unwrap_or_else(|| grey(stream.mode)))
    }
}
