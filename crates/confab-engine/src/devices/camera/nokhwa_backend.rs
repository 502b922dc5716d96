//! The real camera system: nokhwa (V4L2 on Linux, AVFoundation on macOS, Media Foundation on
//! Windows) behind [`CameraSystem`].
//!
//! Owns everything that touches nokhwa: listing capture devices ([`list_cameras`], one node
//! per device on Linux), starting a camera in the
//! best mode that works (up to three modes are tried, best first, and a mode only counts as
//! started once one frame was read: V4L2 claims USB bandwidth then), reading frames, and
//! closing cameras.
//!
//! Contract: nokhwa panics are caught ([`guard`], [`release`]) and become errors; every
//! backend error becomes a [`DeviceError`] with a sentence for the user ([`classify`]);
//! [`is_disconnect`] tells an unplug from other failures, for the lost notice.

use std::panic::AssertUnwindSafe;

use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
    Resolution,
};
use nokhwa::{Camera, NokhwaError};
use tracing::{debug, warn};

use super::{CameraSystem, RawFrame};
use crate::devices::camera_format::{CameraMode, CaptureRequest, PixelFormat, choose_mode};
use crate::devices::{DeviceError, DeviceInfo};

/// Every frame format we can decode, as nokhwa names them.
const DECODABLE: [FrameFormat; 6] = [
    FrameFormat::MJPEG,
    FrameFormat::YUYV,
    FrameFormat::NV12,
    FrameFormat::RAWRGB,
    FrameFormat::RAWBGR,
    FrameFormat::GRAY,
];

/// Modes tried, best first, before giving up on opening a camera.
const MODE_ATTEMPTS: usize = 3;

/// Cameras attached now, the system's first one first and marked default.
///
/// On Linux only the first video node of each device is listed (a UVC webcam also has a
/// metadata node that cannot capture). No camera at all is an empty list.
///
/// # Errors
/// [`DeviceError::Backend`] if the platform's camera API cannot be queried.
pub fn list_cameras() -> Result<Vec<DeviceInfo>, DeviceError> {
    let found = guard(|| nokhwa::query(ApiBackend::Auto))
        .map_err(|e| DeviceError::Backend(format!("Cannot list cameras: {e}")))?;
    let mut cameras: Vec<_> = found
        .into_iter()
        .filter(|info| is_capture_node(info.index()))
        .map(|info| (info.index().clone(), info.human_name()))
        .collect();
    cameras.sort_by_key(|(index, _)| (index.as_index().unwrap_or(u32::MAX), index.as_string()));
    Ok(cameras
        .into_iter()
        .enumerate()
        .map(|(i, (index, name))| DeviceInfo {
            id: index.as_string(),
            name,
            is_default: i == 0,
        })
        .collect())
}

/// The platform's cameras through nokhwa.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nokhwa;

/// A nokhwa camera that is streaming; closed (panic-safely) when dropped.
pub struct NokhwaStream(Option<Camera>);

impl std::fmt::Debug for NokhwaStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NokhwaStream").finish_non_exhaustive()
    }
}

impl Drop for NokhwaStream {
    fn drop(&mut self) {
        if let Some(camera) = self.0.take() {
            release(camera);
        }
    }
}

impl CameraSystem for Nokhwa {
    type Stream = NokhwaStream;

    fn list(&self) -> Result<Vec<DeviceInfo>, DeviceError> {
        list_cameras()
    }

    fn start(
        &self,
        device: &DeviceInfo,
        request: CaptureRequest,
    ) -> Result<(NokhwaStream, CameraMode), DeviceError> {
        start(device, request)
    }

    fn read(&self, stream: &mut NokhwaStream) -> Result<RawFrame, String> {
        let camera = stream.0.as_mut().ok_or("the camera is closed")?;
        let buffer = guard(|| camera.frame()).map_err(|e| e.to_string())?;
        let size = buffer.resolution();
        Ok(RawFrame {
            format: pixel_format(buffer.source_frame_format()),
            width: size.width(),
            height: size.height(),
            data: buffer.buffer_bytes(),
        })
    }
}

/// Opens the device without streaming, in whatever mode it accepts first.
fn open_device(device: &DeviceInfo) -> Result<Camera, DeviceError> {
    let index = match device.id.parse::<u32>() {
        Ok(n) => CameraIndex::Index(n),
        Err(_) => CameraIndex::String(device.id.clone()),
    };
    guard(|| {
        Camera::new(
            index,
            RequestedFormat::with_formats(RequestedFormatType::None, &DECODABLE),
        )
    })
    .map_err(|e| classify(&device.name, &e))
}

/// The camera's modes that we can decode, without duplicates.
fn list_modes(stream: &mut NokhwaStream, name: &str) -> Result<Vec<CameraMode>, DeviceError> {
    let Some(camera) = stream.0.as_mut() else {
        return Ok(Vec::new());
    };
    let mut modes: Vec<CameraMode> = match guard(|| camera.compatible_camera_formats()) {
        Ok(formats) => formats.into_iter().map(camera_mode).collect(),
        // Some backends cannot enumerate: the mode it opened in is all we know.
        Err(e) => {
            debug!(camera = name, error = %e, "cannot list camera modes");
            vec![camera_mode(camera.camera_format())]
        }
    };
    let mut seen = std::collections::HashSet::new();
    modes.retain(|m| seen.insert(*m));
    Ok(modes)
}

/// Opens the camera and starts it in the best mode that works.
fn start(
    device: &DeviceInfo,
    request: CaptureRequest,
) -> Result<(NokhwaStream, CameraMode), DeviceError> {
    let mut stream = NokhwaStream(Some(open_device(device)?));
    let mut modes = list_modes(&mut stream, &device.name)?;
    let Some(camera) = stream.0.as_mut() else {
        return Err(DeviceError::Backend("the camera is closed".into()));
    };
    let mut last_error = None;
    for _ in 0..MODE_ATTEMPTS {
        let Some(mode) = choose_mode(&modes, request) else {
            break;
        };
        match start_mode(camera, mode) {
            Ok(actual) => return Ok((stream, actual)),
            Err(e) => {
                debug!(camera = %device.name, %mode, error = %e, "camera mode failed to start");
                let _ = guard(|| camera.stop_stream());
                modes.retain(|m| *m != mode);
                last_error = Some(classify(&device.name, &e));
            }
        }
    }
    Err(last_error.unwrap_or_else(|| {
        DeviceError::Unsupported(format!(
            "Camera \"{}\" offers no picture format Confab can use",
            device.name
        ))
    }))
}

/// Sets `mode`, opens the stream and reads one frame; returns the mode the camera settled on.
fn start_mode(camera: &mut Camera, mode: CameraMode) -> Result<CameraMode, NokhwaError> {
    let fourcc = nokhwa_format(mode.format);
    let wanted = [fourcc];
    let format = CameraFormat::new(Resolution::new(mode.width, mode.height), fourcc, mode.fps);
    let actual = guard(|| {
        camera.set_camera_requset(RequestedFormat::with_formats(
            RequestedFormatType::Closest(format),
            &wanted,
        ))
    })?;
    guard(|| camera.open_stream())?;
    // V4L2 starts streaming, and a busy USB bus refuses the bandwidth, only on the first read.
    guard(|| camera.frame())?;
    Ok(camera_mode(actual))
}

/// Runs a backend call, turning a panic inside nokhwa into an error.
fn guard<T>(call: impl FnOnce() -> Result<T, NokhwaError>) -> Result<T, NokhwaError> {
    std::panic::catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|_| {
        Err(NokhwaError::GeneralError(
            "the camera backend panicked".into(),
        ))
    })
}

/// Drops a camera. nokhwa's `Drop` unwraps its stream shutdown, which can fail on an unplugged
/// device on some backends: that must not end the capture thread.
fn release(camera: Camera) {
    if std::panic::catch_unwind(AssertUnwindSafe(move || drop(camera))).is_err() {
        warn!("the camera backend panicked while closing a camera");
    }
}

/// Maps a backend error to a [`DeviceError`] with a sentence for the user.
fn classify(name: &str, error: &NokhwaError) -> DeviceError {
    let text = error.to_string();
    let lower = text.to_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    if has(&["busy", "(os error 16)"]) {
        DeviceError::Unavailable(format!(
            "Camera \"{name}\" is busy; close other apps that use it"
        ))
    } else if has(&["permission denied", "(os error 13)", "not authorized"]) {
        DeviceError::Unavailable(format!("No permission to use camera \"{name}\""))
    } else if has(&["no space left", "(os error 28)"]) {
        DeviceError::Unavailable(format!(
            "Camera \"{name}\" cannot stream: not enough USB bandwidth (try another port)"
        ))
    } else if is_disconnect(&text) {
        DeviceError::NotFound(format!("Camera \"{name}\" is not connected"))
    } else if matches!(error, NokhwaError::GetPropertyError { error: detail, .. } if detail.contains("Fufill"))
    {
        DeviceError::Unsupported(format!(
            "Camera \"{name}\" offers no picture format Confab can use"
        ))
    } else {
        DeviceError::Backend(format!("Camera \"{name}\" failed: {text}"))
    }
}

/// Whether a backend error text means the device is gone.
pub(super) fn is_disconnect(text: &str) -> bool {
    let lower = text.to_lowercase();
    [
        "no such device",
        "(os error 19)",
        "no such file",
        "(os error 2)",
    ]
    .iter()
    .any(|n| lower.contains(n))
}

const fn pixel_format(format: FrameFormat) -> PixelFormat {
    match format {
        FrameFormat::MJPEG => PixelFormat::Mjpeg,
        FrameFormat::YUYV => PixelFormat::Yuyv,
        FrameFormat::NV12 => PixelFormat::Nv12,
        FrameFormat::RAWRGB => PixelFormat::Rgb24,
        FrameFormat::RAWBGR => PixelFormat::Bgr24,
        FrameFormat::GRAY => PixelFormat::Gray,
    }
}

const fn nokhwa_format(format: PixelFormat) -> FrameFormat {
    match format {
        PixelFormat::Mjpeg => FrameFormat::MJPEG,
        PixelFormat::Yuyv => FrameFormat::YUYV,
        PixelFormat::Nv12 => FrameFormat::NV12,
        PixelFormat::Rgb24 => FrameFormat::RAWRGB,
        PixelFormat::Bgr24 => FrameFormat::RAWBGR,
        PixelFormat::Gray => FrameFormat::GRAY,
    }
}

fn camera_mode(format: CameraFormat) -> CameraMode {
    CameraMode {
        format: pixel_format(format.format()),
        width: format.width(),
        height: format.height(),
        fps: format.frame_rate(),
    }
}

/// Linux: whether `/dev/videoN` is the first node of its device (a UVC webcam's second node
/// carries metadata and cannot capture). Unknown counts as yes.
#[cfg(target_os = "linux")]
fn is_capture_node(index: &CameraIndex) -> bool {
    let Ok(n) = index.as_index() else {
        return true;
    };
    std::fs::read_to_string(format!("/sys/class/video4linux/video{n}/index"))
        .map_or(true, |node| node.trim() == "0")
}

#[cfg(not(target_os = "linux"))]
fn is_capture_node(_index: &CameraIndex) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_errors_read_well() {
        let busy = NokhwaError::OpenStreamError("Device or resource busy (os error 16)".into());
        assert_eq!(
            classify("HD Webcam", &busy),
            DeviceError::Unavailable(
                "Camera \"HD Webcam\" is busy; close other apps that use it".into()
            )
        );
        let gone = NokhwaError::ReadFrameError("No such device (os error 19)".into());
        assert!(matches!(classify("X", &gone), DeviceError::NotFound(_)));
        assert!(is_disconnect(&gone.to_string()));
        let bandwidth = NokhwaError::ReadFrameError("No space left on device (os error 28)".into());
        assert!(
            matches!(classify("X", &bandwidth), DeviceError::Unavailable(m) if m.contains("USB"))
        );
        let other = NokhwaError::GeneralError("strange".into());
        assert!(matches!(classify("X", &other), DeviceError::Backend(m) if m.contains("strange")));
        // "(os error 2)" must not match "(os error 28)".
        assert!(!is_disconnect("No space left on device (os error 28)"));
    }

    #[test]
    fn formats_map_both_ways() {
        for format in DECODABLE {
            assert_eq!(nokhwa_format(pixel_format(format)), format);
        }
    }
}
