//! Camera formats: which of a camera's modes to open, and how its frames become I420.
//!
//! Pure logic with no device access, so every rule is tested without a camera; [`super::camera`]
//! feeds it what nokhwa reports and what the device delivers.
//!
//! **Choosing a mode** ([`choose_mode`]). Given the modes a camera lists and a
//! [`CaptureRequest`] (say 1280x720 at 30 fps), the best mode is the first by these rules:
//! 1. colour before greyscale (an IR sensor's `GRAY` mode only when nothing else exists);
//! 2. modes that reach the frame rate (at least 80 % of it, so a 25 fps mode serves a 30 fps
//!    request) before those that do not: motion matters more than pixels in a call;
//! 3. the exact size, then the closest larger size (downscaled), then the closest smaller one
//!    (upscaled), "closest" by area;
//! 4. NV12, YUYV, MJPEG, RGB24, BGR24 in that order: raw 4:2:x needs no decode and has no JPEG
//!    artefacts, and a camera only lists a raw mode at a frame rate its USB link carries (USB 2
//!    webcams list YUYV 720p at 10 fps or less, so rule 2 already picks MJPEG there);
//! 5. the lowest frame rate that reaches the request, else the highest below it (for a request
//!    of 0 fps, "any", simply the highest).
//!
//! The camera module falls back to the next choice when a mode cannot start (a shared USB bus
//! refuses raw bandwidth at stream start).
//!
//! **Decoding** ([`FrameDecoder`], [`decode_to_i420`]). Every frame becomes an
//! [`I420Frame`](crate::media::I420Frame) in BT.601 limited range, the pipeline's format: MJPEG
//! through zune-jpeg to RGB, then yuvutils-rs; YUYV and NV12 by repacking (a copy, no colour maths;
//! yuvutils-rs has no NV12 -> I420 repack and its YUYV one is broken, see `yuyv_to_i420`); RGB24 /
//! BGR24 through yuvutils-rs; GRAY by mapping full-range luma into 16..=235 with neutral chroma.
//! Raw camera YUV is already limited range, so YUYV and NV12 pass through unchanged. A
//! [`FrameDecoder`] then fits the picture to the requested size: **centre crop** to the requested
//! aspect ratio (even offsets, so chroma stays aligned), then bilinear scaling with
//! [`Scaler`](crate::media::convert::Scaler). Cropping fills the frame the way call apps show a 4:3
//! camera in a 16:9 call; letterboxing would spend bitrate on black bars.
//!
//! Contract: no input panics. Buffers shorter than the mode needs, JPEGs with no end-of-image
//! marker (a frame cut short on the USB bus) and JPEGs the decoder rejects give a
//! [`DecodeError`]; the caller drops that frame and reads the next. Buffers longer than the mode
//! needs are accepted and their tail ignored: V4L2 hands out whole driver buffers.

//!
//! | file | owns |
//! |---|---|
//! | this one | [`PixelFormat`], [`CameraMode`], [`CaptureRequest`] and mode choice ([`choose_mode`]) |
//! | `camera_format/decode.rs` | [`FrameDecoder`], [`decode_to_i420`]: raw YUYV / NV12 / RGB / GRAY -> I420, fitting to the output size |
//! | `camera_format/mjpeg.rs` | MJPEG frames: [`jpeg_extent`] (a frame cut short is refused), zune-jpeg decode |
//! | `camera_format/crop.rs` | [`crop_rect`] and the centre crop to the output aspect ratio |

mod crop;
mod decode;
mod mjpeg;

use std::fmt;

pub use self::decode::FrameDecoder;
#[cfg(any(test, feature = "testing"))]
pub use self::decode::{DecodeError, decode_to_i420, raw_frame_len};

/// How a camera lays out the bytes of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Motion JPEG: each frame a JPEG image (full-range YCbCr inside).
    Mjpeg,
    /// Packed 4:2:2, `Y0 U Y1 V` per two pixels.
    Yuyv,
    /// 4:2:0 with a Y plane followed by one interleaved `U V` plane.
    Nv12,
    /// Packed 8-bit `R G B`.
    Rgb24,
    /// Packed 8-bit `B G R`.
    Bgr24,
    /// 8-bit luma only (infrared and machine-vision cameras).
    Gray,
}

impl PixelFormat {
    /// Preference among formats that serve a request equally well (lower is better).
    const fn rank(self) -> u8 {
        match self {
            Self::Nv12 => 0,
            Self::Yuyv => 1,
            Self::Mjpeg => 2,
            Self::Rgb24 => 3,
            Self::Bgr24 => 4,
            Self::Gray => 5,
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mjpeg => "MJPEG",
            Self::Yuyv => "YUYV",
            Self::Nv12 => "NV12",
            Self::Rgb24 => "RGB24",
            Self::Bgr24 => "BGR24",
            Self::Gray => "GRAY",
        })
    }
}

/// One mode a camera can deliver: pixel format, size and frame rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CameraMode {
    /// Byte layout of each frame.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

impl fmt::Display for CameraMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{} {} at {} fps",
            self.width, self.height, self.format, self.fps
        )
    }
}

/// What the pipeline wants from a camera: the size it sends and the frame rate it encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CaptureRequest {
    /// Output width in pixels.
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
    /// Output frames per second (0: any).
    pub fps: u32,
}

/// Picks the mode that best serves `request` (rules in the module docs); `None` if `modes` holds
/// no usable mode (empty, or only zero-sized entries).
#[must_use]
pub fn choose_mode(modes: &[CameraMode], request: CaptureRequest) -> Option<CameraMode> {
    modes
        .iter()
        .filter(|m| m.width > 0 && m.height > 0)
        .min_by_key(|m| mode_rank(m, request))
        .copied()
}

/// Sort key of a mode for a request; smaller is better, compared field by field.
fn mode_rank(mode: &CameraMode, request: CaptureRequest) -> (bool, bool, u8, u64, u8, (bool, u32)) {
    let greyscale = mode.format == PixelFormat::Gray;
    let fps_short = u64::from(mode.fps) * 5 < u64::from(request.fps) * 4;
    let area = u64::from(mode.width) * u64::from(mode.height);
    let wanted = u64::from(request.width) * u64::from(request.height);
    let (size_class, size_distance) =
        if (mode.width, mode.height) == (request.width, request.height) {
            (0, 0)
        } else if mode.width >= request.width && mode.height >= request.height {
            (1, area - wanted)
        } else {
            (2, wanted.abs_diff(area))
        };
    let fps_key = if request.fps == 0 {
        // Any rate: the fastest.
        (false, u32::MAX - mode.fps)
    } else if mode.fps >= request.fps {
        (false, mode.fps - request.fps)
    } else {
        (true, request.fps - mode.fps)
    };
    (
        greyscale,
        fps_short,
        size_class,
        size_distance,
        mode.format.rank(),
        fps_key,
    )
}

#[cfg(test)]
mod tests {
    use super::PixelFormat::{Bgr24, Gray, Mjpeg, Nv12, Rgb24, Yuyv};
    use super::*;

    fn mode(format: PixelFormat, width: u32, height: u32, fps: u32) -> CameraMode {
        CameraMode {
            format,
            width,
            height,
            fps,
        }
    }

    const HD30: CaptureRequest = CaptureRequest {
        width: 1280,
        height: 720,
        fps: 30,
    };

    #[test]
    fn exact_size_at_the_frame_rate_wins() {
        let modes = [
            mode(Mjpeg, 1920, 1080, 30),
            mode(Mjpeg, 1280, 720, 30),
            mode(Mjpeg, 640, 480, 30),
        ];
        assert_eq!(choose_mode(&modes, HD30), Some(modes[1]));
    }

    #[test]
    fn mjpeg_when_raw_cannot_reach_the_frame_rate() {
        // A typical USB 2 webcam: YUYV 720p only at 10 fps.
        let modes = [
            mode(Yuyv, 1280, 720, 10),
            mode(Yuyv, 640, 480, 30),
            mode(Mjpeg, 1280, 720, 30),
        ];
        assert_eq!(choose_mode(&modes, HD30), Some(modes[2]));
    }

    #[test]
    fn raw_formats_first_when_they_reach_the_frame_rate() {
        let modes = [
            mode(Rgb24, 1280, 720, 30),
            mode(Mjpeg, 1280, 720, 30),
            mode(Yuyv, 1280, 720, 30),
        ];
        assert_eq!(choose_mode(&modes, HD30), Some(modes[2]));
        let with_nv12 = [modes[0], modes[1], modes[2], mode(Nv12, 1280, 720, 30)];
        assert_eq!(choose_mode(&with_nv12, HD30), Some(with_nv12[3]));
        let rgb_or_bgr = [mode(Bgr24, 1280, 720, 30), mode(Rgb24, 1280, 720, 30)];
        assert_eq!(choose_mode(&rgb_or_bgr, HD30), Some(rgb_or_bgr[1]));
    }

    #[test]
    fn close_frame_rates_count_as_reaching_the_request() {
        // A 25 fps (PAL) camera still gives 720p rather than a tiny 30 fps mode.
        let modes = [mode(Mjpeg, 1280, 720, 25), mode(Mjpeg, 320, 240, 30)];
        assert_eq!(choose_mode(&modes, HD30), Some(modes[0]));
    }

    #[test]
    fn frame_rate_beats_size_when_far_short() {
        let modes = [mode(Yuyv, 1280, 720, 10), mode(Yuyv, 640, 480, 30)];
        assert_eq!(choose_mode(&modes, HD30), Some(modes[1]));
    }

    #[test]
    fn closest_larger_size_before_smaller() {
        let modes = [
            mode(Mjpeg, 640, 480, 30),
            mode(Mjpeg, 3840, 2160, 30),
            mode(Mjpeg, 1920, 1080, 30),
            mode(Mjpeg, 1024, 576, 30),
        ];
        assert_eq!(choose_mode(&modes, HD30), Some(modes[2]));
    }

    #[test]
    fn closest_smaller_size_when_nothing_is_larger() {
        let modes = [
            mode(Mjpeg, 320, 240, 30),
            mode(Mjpeg, 960, 540, 30),
            mode(Mjpeg, 640, 480, 30),
        ];
        assert_eq!(choose_mode(&modes, HD30), Some(modes[1]));
        // Wider but shorter does not cover the request: it is a "smaller" size.
        let modes = [mode(Mjpeg, 1280, 480, 30), mode(Mjpeg, 1280, 1024, 30)];
        assert_eq!(choose_mode(&modes, HD30), Some(modes[1]));
    }

    #[test]
    fn lowest_frame_rate_that_reaches_else_highest() {
        let modes = [
            mode(Mjpeg, 1280, 720, 60),
            mode(Mjpeg, 1280, 720, 30),
            mode(Mjpeg, 1280, 720, 15),
        ];
        assert_eq!(choose_mode(&modes, HD30), Some(modes[1]));
        let slow = [
            mode(Mjpeg, 1280, 720, 5),
            mode(Mjpeg, 1280, 720, 15),
            mode(Mjpeg, 1280, 720, 10),
        ];
        assert_eq!(choose_mode(&slow, HD30), Some(slow[1]));
        let any = CaptureRequest { fps: 0, ..HD30 };
        assert_eq!(choose_mode(&modes, any), Some(modes[0]));
    }

    #[test]
    fn greyscale_only_as_a_last_resort() {
        let modes = [mode(Gray, 1280, 720, 30), mode(Yuyv, 320, 240, 5)];
        assert_eq!(choose_mode(&modes, HD30), Some(modes[1]));
        assert_eq!(choose_mode(&modes[..1], HD30), Some(modes[0]));
    }

    #[test]
    fn nothing_usable_gives_none() {
        assert_eq!(choose_mode(&[], HD30), None);
        assert_eq!(choose_mode(&[mode(Mjpeg, 0, 720, 30)], HD30), None);
    }
}
