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
//! **Decoding** ([`FrameDecoder`], [`decode_to_i420`]). Every frame becomes an [`I420Frame`] in
//! BT.601 limited range, the pipeline's format: MJPEG through zune-jpeg to RGB, then yuvutils-rs;
//! YUYV and NV12 by repacking (a copy, no colour maths; yuvutils-rs has no NV12 -> I420 repack
//! and its YUYV one is broken, see `yuyv_to_i420`); RGB24 / BGR24 through yuvutils-rs; GRAY by mapping
//! full-range luma into 16..=235 with neutral chroma. Raw camera YUV is already limited range, so
//! YUYV and NV12 pass through unchanged. A [`FrameDecoder`] then fits the picture to the requested
//! size: **centre crop** to the requested aspect ratio (even offsets, so chroma stays aligned),
//! then bilinear scaling with [`Scaler`]. Cropping fills the frame the way call apps show a 4:3
//! camera in a 16:9 call; letterboxing would spend bitrate on black bars.
//!
//! Contract: no input panics. Buffers shorter than the mode needs, JPEGs with no end-of-image
//! marker (a frame cut short on the USB bus) and JPEGs the decoder rejects give a
//! [`DecodeError`]; the caller drops that frame and reads the next. Buffers longer than the mode
//! needs are accepted and their tail ignored: V4L2 hands out whole driver buffers.

use std::fmt;

use yuvutils_rs::{
    BufferStoreMut, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix,
};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::media::convert::{ConvertError, Scaler};
use crate::media::frame::{CaptureTime, FrameError, I420Frame, chroma_size};

/// Largest JPEG side we decode (8K). A corrupt header cannot make us allocate more.
const MAX_JPEG_SIDE: usize = 7680;

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

/// Why a camera frame could not be turned into an I420 picture.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The buffer is shorter than the mode needs.
    #[error("{format} frame of {width}x{height} needs {expected} bytes, got {actual}")]
    BufferSize {
        /// The frame's pixel format.
        format: PixelFormat,
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// Width or height is zero.
    #[error("frame dimensions must be non-zero, got {width}x{height}")]
    ZeroSize {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// The buffer does not start with a JPEG start-of-image marker.
    #[error("not a JPEG frame (no start-of-image marker)")]
    NotJpeg,
    /// The JPEG ends before its end-of-image marker (cut short on the way from the camera).
    #[error("JPEG frame is truncated (no end-of-image marker)")]
    Truncated,
    /// The JPEG decoder rejected the frame.
    #[error("JPEG frame is corrupt: {0}")]
    Jpeg(String),
    /// Colour conversion or scaling failed.
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// The decoded planes did not form a frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Decodes camera frames to I420 of one fixed output size, reusing its buffers between frames.
/// Keep one per camera stream.
#[derive(Debug)]
pub struct FrameDecoder {
    width: u32,
    height: u32,
    scaler: Scaler,
    rgb: Vec<u8>,
}

impl FrameDecoder {
    /// A decoder whose frames all come out `width` x `height`.
    ///
    /// # Errors
    /// [`DecodeError::ZeroSize`] if a dimension is zero.
    pub fn new(width: u32, height: u32) -> Result<Self, DecodeError> {
        if width == 0 || height == 0 {
            return Err(DecodeError::ZeroSize { width, height });
        }
        Ok(Self {
            width,
            height,
            scaler: Scaler::new(),
            rgb: Vec::new(),
        })
    }

    /// The size every output frame has.
    #[must_use]
    pub const fn output_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Decodes one camera frame of `format` and nominal size `width` x `height` (an MJPEG frame's
    /// own header wins over the nominal size), then crops and scales it to the output size.
    ///
    /// # Errors
    /// A [`DecodeError`] for a short or corrupt buffer; the decoder stays usable.
    pub fn decode(
        &mut self,
        format: PixelFormat,
        width: u32,
        height: u32,
        data: &[u8],
        capture_time: CaptureTime,
    ) -> Result<I420Frame, DecodeError> {
        let native = decode_native(format, width, height, data, capture_time, &mut self.rgb)?;
        self.fit(native)
    }

    /// Crops `frame` to the output aspect ratio and scales it to the output size.
    ///
    /// # Errors
    /// [`DecodeError::Convert`] if scaling fails.
    pub fn fit(&mut self, frame: I420Frame) -> Result<I420Frame, DecodeError> {
        if (frame.width(), frame.height()) == (self.width, self.height) {
            return Ok(frame);
        }
        let rect = crop_rect(frame.width(), frame.height(), self.width, self.height);
        let cropped = if rect.is_whole(&frame) {
            frame
        } else {
            crop(&frame, rect)?
        };
        Ok(self.scaler.scale(&cropped, self.width, self.height)?)
    }
}

/// Decodes one camera frame to I420 at its own size (no cropping or scaling).
///
/// # Errors
/// A [`DecodeError`] for a short or corrupt buffer.
pub fn decode_to_i420(
    format: PixelFormat,
    width: u32,
    height: u32,
    data: &[u8],
    capture_time: CaptureTime,
) -> Result<I420Frame, DecodeError> {
    decode_native(format, width, height, data, capture_time, &mut Vec::new())
}

fn decode_native(
    format: PixelFormat,
    width: u32,
    height: u32,
    data: &[u8],
    capture_time: CaptureTime,
    rgb: &mut Vec<u8>,
) -> Result<I420Frame, DecodeError> {
    if format == PixelFormat::Mjpeg {
        return decode_mjpeg(data, capture_time, rgb);
    }
    if width == 0 || height == 0 {
        return Err(DecodeError::ZeroSize { width, height });
    }
    let expected = raw_frame_len(format, width, height);
    let Some(data) = data.get(..expected) else {
        return Err(DecodeError::BufferSize {
            format,
            width,
            height,
            expected,
            actual: data.len(),
        });
    };
    match format {
        PixelFormat::Yuyv => Ok(yuyv_to_i420(data, width, height, capture_time)?),
        PixelFormat::Nv12 => Ok(nv12_to_i420(data, width, height, capture_time)?),
        PixelFormat::Rgb24 | PixelFormat::Bgr24 => {
            packed_rgb_to_i420(data, width, height, format, capture_time)
        }
        PixelFormat::Gray => Ok(gray_to_i420(data, width, height, capture_time)?),
        PixelFormat::Mjpeg => Err(DecodeError::NotJpeg),
    }
}

/// Bytes one raw (non-JPEG) frame of this size occupies, tightly packed.
#[must_use]
pub fn raw_frame_len(format: PixelFormat, width: u32, height: u32) -> usize {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = chroma_size(width, height);
    match format {
        PixelFormat::Yuyv => 4 * cw * h,
        PixelFormat::Nv12 => w * h + 2 * cw * ch,
        PixelFormat::Rgb24 | PixelFormat::Bgr24 => 3 * w * h,
        PixelFormat::Gray => w * h,
        PixelFormat::Mjpeg => 0,
    }
}

/// Empty I420 planes for a picture of this size.
fn planes(width: u32, height: u32) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (cw, ch) = chroma_size(width, height);
    (
        vec![0; width as usize * height as usize],
        vec![0; cw * ch],
        vec![0; cw * ch],
    )
}

fn planar_mut<'a>(
    width: u32,
    height: u32,
    y: &'a mut [u8],
    u: &'a mut [u8],
    v: &'a mut [u8],
) -> YuvPlanarImageMut<'a, u8> {
    let (cw, _) = chroma_size(width, height);
    YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: width,
        u_plane: BufferStoreMut::Borrowed(u),
        u_stride: cw as u32,
        v_plane: BufferStoreMut::Borrowed(v),
        v_stride: cw as u32,
        width,
        height,
    }
}

fn yuv_error(e: &yuvutils_rs::YuvError) -> DecodeError {
    DecodeError::Convert(ConvertError::Yuv(e.to_string()))
}

/// YUYV to I420 by repacking: luma is every other byte, chroma the mean of each row pair.
/// (yuvutils-rs 0.8.3's `yuyv422_to_yuv420` is not used: its scalar tail skips as many pixel
/// pairs as its SIMD part converted pixels, leaving the last 16 pixels of every 1280-wide row
/// unwritten, and it drops the last row of an odd height.)
fn yuyv_to_i420(
    data: &[u8],
    width: u32,
    height: u32,
    capture_time: CaptureTime,
) -> Result<I420Frame, FrameError> {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = chroma_size(width, height);
    let row_bytes = 4 * cw;
    let rows: Vec<&[u8]> = data.chunks_exact(row_bytes).take(h).collect();
    let mut y = Vec::with_capacity(w * h);
    for row in &rows {
        y.extend(row.iter().step_by(2).take(w));
    }
    let mut u = Vec::with_capacity(cw * ch);
    let mut v = Vec::with_capacity(cw * ch);
    for pair in rows.chunks(2) {
        let (top, bottom) = (pair[0], pair[pair.len() - 1]);
        for (a, b) in top.chunks_exact(4).zip(bottom.chunks_exact(4)) {
            u.push(mean(a[1], b[1]));
            v.push(mean(a[3], b[3]));
        }
    }
    I420Frame::from_planes(width, height, y, u, v, capture_time)
}

/// Rounded mean of two samples.
const fn mean(a: u8, b: u8) -> u8 {
    (a as u16 + b as u16).div_ceil(2) as u8
}

fn nv12_to_i420(
    data: &[u8],
    width: u32,
    height: u32,
    capture_time: CaptureTime,
) -> Result<I420Frame, FrameError> {
    let luma = width as usize * height as usize;
    let (y, uv) = data.split_at(luma.min(data.len()));
    let (cw, ch) = chroma_size(width, height);
    let mut u = Vec::with_capacity(cw * ch);
    let mut v = Vec::with_capacity(cw * ch);
    for pair in uv.chunks_exact(2) {
        u.push(pair[0]);
        v.push(pair[1]);
    }
    I420Frame::from_planes(width, height, y.to_vec(), u, v, capture_time)
}

fn packed_rgb_to_i420(
    data: &[u8],
    width: u32,
    height: u32,
    format: PixelFormat,
    capture_time: CaptureTime,
) -> Result<I420Frame, DecodeError> {
    let (mut y, mut u, mut v) = planes(width, height);
    {
        let mut image = planar_mut(width, height, &mut y, &mut u, &mut v);
        let convert = if format == PixelFormat::Bgr24 {
            yuvutils_rs::bgr_to_yuv420
        } else {
            yuvutils_rs::rgb_to_yuv420
        };
        convert(
            &mut image,
            data,
            width * 3,
            YuvRange::Limited,
            YuvStandardMatrix::Bt601,
            YuvConversionMode::Balanced,
        )
        .map_err(|e| yuv_error(&e))?;
    }
    Ok(I420Frame::from_planes(
        width,
        height,
        y,
        u,
        v,
        capture_time,
    )?)
}

fn gray_to_i420(
    data: &[u8],
    width: u32,
    height: u32,
    capture_time: CaptureTime,
) -> Result<I420Frame, FrameError> {
    let y = data.iter().map(|&g| full_to_limited_luma(g)).collect();
    let (cw, ch) = chroma_size(width, height);
    I420Frame::from_planes(
        width,
        height,
        y,
        vec![128; cw * ch],
        vec![128; cw * ch],
        capture_time,
    )
}

/// Maps full-range luma (0..=255) into BT.601 limited range (16..=235), rounding.
#[must_use]
pub const fn full_to_limited_luma(g: u8) -> u8 {
    (16 + (g as u32 * 219 + 127) / 255) as u8
}

fn decode_mjpeg(
    data: &[u8],
    capture_time: CaptureTime,
    rgb: &mut Vec<u8>,
) -> Result<I420Frame, DecodeError> {
    let jpeg = &data[..jpeg_extent(data)?];
    // zune-jpeg is fuzzed, but a panic in a third-party decoder must not end capture: a bad
    // frame is dropped like any other corrupt frame.
    let (width, height) =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_jpeg_rgb(jpeg, rgb)))
            .map_err(|_| DecodeError::Jpeg("the JPEG decoder panicked".into()))??;
    packed_rgb_to_i420(
        &rgb[..width as usize * height as usize * 3],
        width,
        height,
        PixelFormat::Rgb24,
        capture_time,
    )
}

/// Decodes a JPEG into packed RGB in `rgb` (resized as needed); returns its size.
fn decode_jpeg_rgb(jpeg: &[u8], rgb: &mut Vec<u8>) -> Result<(u32, u32), DecodeError> {
    let jpeg_error = |e: zune_jpeg::errors::DecodeErrors| DecodeError::Jpeg(e.to_string());
    // Lenient ("fast") mode: webcams bend the JPEG rules (junk between segments, missing
    // Huffman tables); cut-short frames were already refused by `jpeg_extent`.
    let options = DecoderOptions::new_fast()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(MAX_JPEG_SIDE)
        .set_max_height(MAX_JPEG_SIDE);
    let mut decoder = JpegDecoder::new_with_options(jpeg, options);
    decoder.decode_headers().map_err(jpeg_error)?;
    let (Some((width, height)), Some(size)) = (decoder.dimensions(), decoder.output_buffer_size())
    else {
        return Err(DecodeError::Jpeg("no frame header".into()));
    };
    if width == 0 || height == 0 || size != width * height * 3 {
        return Err(DecodeError::Jpeg(format!(
            "unexpected {width}x{height} output of {size} bytes"
        )));
    }
    rgb.resize(size, 0);
    decoder.decode_into(rgb).map_err(jpeg_error)?;
    // Both sides are at most MAX_JPEG_SIDE, checked by the decoder.
    Ok((width as u32, height as u32))
}

/// Length of the JPEG at the start of `data`, through its end-of-image marker, found by walking
/// the marker segments and the entropy-coded scans (where `FF` is always followed by a stuffed
/// `00` or a restart marker). What follows is ignored: V4L2 hands out whole driver buffers.
///
/// # Errors
/// [`DecodeError::NotJpeg`] without a start-of-image marker, [`DecodeError::Truncated`] if the
/// data ends before the end-of-image marker.
pub fn jpeg_extent(data: &[u8]) -> Result<usize, DecodeError> {
    if data.get(..2) != Some(&[0xFF, 0xD8][..]) {
        return Err(DecodeError::NotJpeg);
    }
    let mut i = 2;
    loop {
        // Find the next marker: FF (any number of fill FFs) then a non-FF code. Junk between
        // segments is skipped, as lenient decoders do.
        let ff = data
            .get(i..)
            .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
            .ok_or(DecodeError::Truncated)?;
        i += ff;
        while data.get(i) == Some(&0xFF) {
            i += 1;
        }
        let marker = *data.get(i).ok_or(DecodeError::Truncated)?;
        i += 1;
        match marker {
            0xD9 => return Ok(i),
            // Standalone markers (TEM, RSTn) carry no length; a stuffed 00 here is junk.
            0x00 | 0x01 | 0xD0..=0xD7 => {}
            _ => {
                let len = data
                    .get(i..i + 2)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                    .ok_or(DecodeError::Truncated)?;
                if len < 2 {
                    return Err(DecodeError::Jpeg(format!(
                        "marker FF{marker:02X} has length {len}"
                    )));
                }
                i += len;
                if marker == 0xDA {
                    i = end_of_scan(data, i)?;
                }
            }
        }
    }
}

/// Index of the marker that ends the entropy-coded data starting at `start`.
fn end_of_scan(data: &[u8], start: usize) -> Result<usize, DecodeError> {
    let mut j = start;
    loop {
        let ff = data
            .get(j..)
            .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
            .ok_or(DecodeError::Truncated)?;
        j += ff;
        match data.get(j + 1) {
            None => return Err(DecodeError::Truncated),
            // A stuffed zero byte or a restart marker: still inside the scan.
            Some(0x00 | 0xD0..=0xD7) => j += 2,
            // A fill byte before a marker.
            Some(0xFF) => j += 1,
            Some(_) => return Ok(j),
        }
    }
}

/// A rectangle inside a picture, with even offsets so 4:2:0 chroma stays aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropRect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl CropRect {
    fn is_whole(&self, frame: &I420Frame) -> bool {
        (self.x, self.y, self.width, self.height) == (0, 0, frame.width(), frame.height())
    }
}

/// The centred part of a `src_w` x `src_h` picture with the aspect ratio of `dst_w` x `dst_h`
/// (the whole picture when the ratios match, or for a zero-sized input). Sizes and offsets are
/// even unless the source side itself is odd and kept whole.
#[must_use]
pub fn crop_rect(src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> CropRect {
    let whole = CropRect {
        x: 0,
        y: 0,
        width: src_w,
        height: src_h,
    };
    if src_w == 0 || src_h == 0 || dst_w == 0 || dst_h == 0 {
        return whole;
    }
    let (sw, sh, dw, dh) = (
        u64::from(src_w),
        u64::from(src_h),
        u64::from(dst_w),
        u64::from(dst_h),
    );
    let even = |n: u64, limit: u32| -> u32 {
        let n = u32::try_from(n).unwrap_or(limit).min(limit);
        (n & !1).max(2).min(limit)
    };
    match (sw * dh).cmp(&(dw * sh)) {
        std::cmp::Ordering::Greater => {
            // Source is wider: keep the height, cut the sides.
            let width = even((sh * dw + dh / 2) / dh, src_w);
            CropRect {
                x: ((src_w - width) / 2) & !1,
                width,
                ..whole
            }
        }
        std::cmp::Ordering::Less => {
            // Source is taller: keep the width, cut top and bottom.
            let height = even((sw * dh + dw / 2) / dw, src_h);
            CropRect {
                y: ((src_h - height) / 2) & !1,
                height,
                ..whole
            }
        }
        std::cmp::Ordering::Equal => whole,
    }
}

/// Copies the part of `frame` inside `rect` into a new frame.
fn crop(frame: &I420Frame, rect: CropRect) -> Result<I420Frame, FrameError> {
    let (cw, _) = frame.chroma_size();
    let y_start = rect.y as usize * frame.width() as usize + rect.x as usize;
    let c_start = (rect.y / 2) as usize * cw + (rect.x / 2) as usize;
    fn tail(plane: &[u8], start: usize) -> &[u8] {
        plane.get(start..).unwrap_or_default()
    }
    I420Frame::from_strided(
        rect.width,
        rect.height,
        [
            (tail(frame.y(), y_start), frame.width() as usize),
            (tail(frame.u(), c_start), cw),
            (tail(frame.v(), c_start), cw),
        ],
        frame.capture_time,
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

    #[test]
    fn crop_rect_keeps_the_centre_with_even_edges() {
        // 4:3 into 16:9: cut top and bottom.
        assert_eq!(
            crop_rect(640, 480, 1280, 720),
            CropRect {
                x: 0,
                y: 60,
                width: 640,
                height: 360
            }
        );
        // 16:9 into 4:3: cut the sides.
        assert_eq!(
            crop_rect(1280, 720, 640, 480),
            CropRect {
                x: 160,
                y: 0,
                width: 960,
                height: 720
            }
        );
        // Same aspect ratio: whole picture.
        assert_eq!(crop_rect(1920, 1080, 1280, 720).width, 1920);
        assert_eq!(crop_rect(1920, 1080, 1280, 720).height, 1080);
        // Odd results round to even.
        let r = crop_rect(1000, 750, 1280, 720);
        assert_eq!((r.width % 2, r.y % 2), (0, 0));
        assert!(crop_rect(0, 10, 10, 10).width == 0);
    }

    #[test]
    fn gray_maps_into_limited_range() {
        assert_eq!(full_to_limited_luma(0), 16);
        assert_eq!(full_to_limited_luma(255), 235);
        assert_eq!(full_to_limited_luma(128), 126);
    }

    #[test]
    fn short_raw_buffers_are_errors() {
        for format in [Yuyv, Nv12, Rgb24, Bgr24, Gray] {
            let len = raw_frame_len(format, 64, 48);
            let short = vec![0u8; len - 1];
            assert!(
                matches!(
                    decode_to_i420(format, 64, 48, &short, CaptureTime(0)),
                    Err(DecodeError::BufferSize { .. })
                ),
                "{format}"
            );
            let padded = vec![0u8; len + 100];
            assert!(decode_to_i420(format, 64, 48, &padded, CaptureTime(0)).is_ok());
            assert!(decode_to_i420(format, 0, 48, &padded, CaptureTime(0)).is_err());
        }
    }

    #[test]
    fn odd_sizes_decode() -> Result<(), DecodeError> {
        for format in [Yuyv, Nv12, Rgb24, Gray] {
            let data = vec![100u8; raw_frame_len(format, 33, 17)];
            let f = decode_to_i420(format, 33, 17, &data, CaptureTime(3))?;
            assert_eq!(
                (f.width(), f.height(), f.capture_time),
                (33, 17, CaptureTime(3))
            );
        }
        Ok(())
    }

    #[test]
    fn yuyv_repacks_every_pixel() -> Result<(), DecodeError> {
        // 41x3: wider than one SIMD block, odd width (a padded last pair), odd height.
        let (w, h) = (41u32, 3u32);
        let mut data = Vec::new();
        for row in 0..h {
            for pair in 0..w.div_ceil(2) {
                let luma = (pair * 2 + row * 50) as u8;
                data.extend_from_slice(&[luma, 10 + row as u8 * 4, luma + 1, 200 - row as u8 * 4]);
            }
        }
        let f = decode_to_i420(Yuyv, w, h, &data, CaptureTime(0))?;
        let y = |x: u32, row: u32| f.y()[(row * w + x) as usize];
        assert_eq!((y(0, 0), y(1, 0), y(40, 0)), (0, 1, 40));
        assert_eq!((y(39, 2), y(40, 2)), (139, 140));
        // Chroma: rows 0 and 1 averaged, row 2 alone; every column including the last.
        assert!(f.u()[..21].iter().all(|&u| u == 12));
        assert!(f.v()[..21].iter().all(|&v| v == 198));
        assert!(f.u()[21..].iter().all(|&u| u == 18));
        assert!(f.v()[21..].iter().all(|&v| v == 192));
        Ok(())
    }

    #[test]
    fn nv12_deinterleaves_chroma() -> Result<(), DecodeError> {
        let mut data = vec![50u8; 4 * 2];
        data.extend_from_slice(&[1, 2, 3, 4]);
        let f = decode_to_i420(Nv12, 4, 2, &data, CaptureTime(0))?;
        assert_eq!(f.u(), &[1, 3]);
        assert_eq!(f.v(), &[2, 4]);
        assert_eq!(f.y(), &[50; 8]);
        Ok(())
    }

    #[test]
    fn jpeg_extent_walks_segments_and_scans() {
        // SOI, APP0 (len 4), SOS (len 3), scan data with stuffing and a restart, EOI, junk.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xFF, 0xD9, // an APP0 whose payload is FF D9
            0xFF, 0xDA, 0x00, 0x03, 0x00, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56, 0xFF, 0xFF,
            0xD9, 0xAA, 0xFF, 0xD9,
        ];
        assert_eq!(jpeg_extent(&jpeg).ok(), Some(23));
        assert!(matches!(
            jpeg_extent(&jpeg[..20]),
            Err(DecodeError::Truncated)
        ));
        assert!(matches!(
            jpeg_extent(&jpeg[..7]),
            Err(DecodeError::Truncated)
        ));
        assert!(matches!(jpeg_extent(&[0xFF]), Err(DecodeError::NotJpeg)));
        assert!(matches!(jpeg_extent(&[]), Err(DecodeError::NotJpeg)));
        assert!(jpeg_extent(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01]).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let len = (next() % 4096) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if next() % 2 == 0 && data.len() > 2 {
                data[0] = 0xFF;
                data[1] = 0xD8;
            }
            let _ = decode_to_i420(Mjpeg, 64, 48, &data, CaptureTime(0));
            let _ = decode_to_i420(Yuyv, 64, 48, &data, CaptureTime(0));
        }
    }
}
