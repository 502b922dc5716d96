//! Raw camera frames to I420: the [`FrameDecoder`] every camera stream keeps, and
//! [`decode_to_i420`] for one frame at its own size.
//!
//! Owns the byte layouts of the raw formats ([`raw_frame_len`]) and their conversion: YUYV and
//! NV12 by repacking (no colour maths: raw camera YUV is already limited range), RGB24 / BGR24
//! through yuvutils-rs (BT.601 limited range), GRAY by mapping full-range luma into 16..=235
//! with neutral chroma. MJPEG frames go to [`super::mjpeg`]; fitting to the output size uses
//! [`super::crop`] and [`Scaler`].
//!
//! Contract: no input panics. A buffer shorter than its mode needs is a
//! [`DecodeError::BufferSize`]; a longer one is accepted and its tail ignored (V4L2 hands out
//! whole driver buffers).

use yuvutils_rs::{YuvConversionMode, YuvRange, YuvStandardMatrix};

use super::PixelFormat;
use super::crop::{crop, crop_rect};
use super::mjpeg::decode_mjpeg;
use crate::media::convert::{ConvertError, Scaler, planar_image_mut};
use crate::media::frame::{CaptureTime, FrameError, I420Frame, chroma_size};

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
#[cfg(any(test, feature = "testing"))]
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

pub(super) fn packed_rgb_to_i420(
    data: &[u8],
    width: u32,
    height: u32,
    format: PixelFormat,
    capture_time: CaptureTime,
) -> Result<I420Frame, DecodeError> {
    let (mut y, mut u, mut v) = planes(width, height);
    {
        let mut image = planar_image_mut(width, height, &mut y, &mut u, &mut v);
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

#[cfg(test)]
mod tests {
    use super::PixelFormat::{Bgr24, Gray, Mjpeg, Nv12, Rgb24, Yuyv};
    use super::*;

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
