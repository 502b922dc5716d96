//! Colour conversion, scaling and picture comparison.
//!
//! I420 <-> RGBA use `yuvutils-rs` (SIMD, BT.601 limited range to match what cameras and
//! openh264 produce); scaling uses `fast_image_resize` per plane (bilinear: cheap and good enough
//! for call video). [`Scaler`] keeps its resizer between frames. [`psnr`] compares two pictures.
//!
//! RGBA buffers are tightly packed (`width * 4` bytes per row). Sizes are checked and reported as
//! [`ConvertError`]s; nothing panics on a wrong-sized buffer.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use yuvutils_rs::{
    BufferStoreMut, YuvConversionMode, YuvPlanarImage, YuvPlanarImageMut, YuvRange,
    YuvStandardMatrix,
};

use super::frame::{CaptureTime, I420Frame, chroma_size};

/// Errors converting or scaling pictures.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A buffer does not match the stated dimensions.
    #[error("buffer has {actual} bytes, expected {expected} for {width}x{height}")]
    BufferSize {
        /// Bytes expected.
        expected: usize,
        /// Bytes given.
        actual: usize,
        /// Picture width.
        width: u32,
        /// Picture height.
        height: u32,
    },
    /// Zero-sized picture or target.
    #[error("picture dimensions must be non-zero, got {width}x{height}")]
    ZeroSize {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// The colour conversion library rejected the input.
    #[error("colour conversion failed: {0}")]
    Yuv(String),
    /// The scaler rejected the input.
    #[error("scaling failed: {0}")]
    Resize(String),
    /// The two pictures compared have different sizes.
    #[error("cannot compare {0}x{1} with {2}x{3}")]
    SizeMismatch(u32, u32, u32, u32),
}

fn planar(frame: &I420Frame) -> YuvPlanarImage<'_, u8> {
    let (cw, _) = frame.chroma_size();
    YuvPlanarImage {
        y_plane: frame.y(),
        y_stride: frame.width(),
        u_plane: frame.u(),
        u_stride: cw as u32,
        v_plane: frame.v(),
        v_stride: cw as u32,
        width: frame.width(),
        height: frame.height(),
    }
}

/// Converts an I420 frame to packed RGBA into `rgba` (resized as needed).
///
/// # Errors
/// [`ConvertError::Yuv`] if the conversion library rejects the frame.
pub fn i420_to_rgba(frame: &I420Frame, rgba: &mut Vec<u8>) -> Result<(), ConvertError> {
    let len = frame.width() as usize * frame.height() as usize * 4;
    rgba.resize(len, 0);
    yuvutils_rs::yuv420_to_rgba(
        &planar(frame),
        rgba,
        frame.width() * 4,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
    )
    .map_err(|e| ConvertError::Yuv(e.to_string()))
}

/// The three I420 planes of a `width` x `height` picture (tightly packed: `y` is `width` bytes
/// a row, `u` and `v` half that, rounded up) as the conversion library's output image.
pub(crate) fn planar_image_mut<'a>(
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

/// Converts packed RGBA to an I420 frame stamped with `capture_time`.
///
/// # Errors
/// [`ConvertError::BufferSize`] / [`ConvertError::ZeroSize`] for wrong sizes,
/// [`ConvertError::Yuv`] if the conversion library rejects the input.
pub fn rgba_to_i420(
    rgba: &[u8],
    width: u32,
    height: u32,
    capture_time: CaptureTime,
) -> Result<I420Frame, ConvertError> {
    if width == 0 || height == 0 {
        return Err(ConvertError::ZeroSize { width, height });
    }
    let expected = width as usize * height as usize * 4;
    if rgba.len() != expected {
        return Err(ConvertError::BufferSize {
            expected,
            actual: rgba.len(),
            width,
            height,
        });
    }
    let (cw, ch) = chroma_size(width, height);
    let mut y = vec![0u8; width as usize * height as usize];
    let mut u = vec![0u8; cw * ch];
    let mut v = vec![0u8; cw * ch];
    {
        let mut image = planar_image_mut(width, height, &mut y, &mut u, &mut v);
        yuvutils_rs::rgba_to_yuv420(
            &mut image,
            rgba,
            width * 4,
            YuvRange::Limited,
            YuvStandardMatrix::Bt601,
            YuvConversionMode::Balanced,
        )
        .map_err(|e| ConvertError::Yuv(e.to_string()))?;
    }
    Ok(I420Frame::from_planes_unchecked(
        width,
        height,
        y,
        u,
        v,
        capture_time,
    ))
}

/// Scales I420 frames plane by plane; keep one per stream to reuse its buffers.
pub struct Scaler {
    resizer: Resizer,
    options: ResizeOptions,
}

impl std::fmt::Debug for Scaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scaler").finish_non_exhaustive()
    }
}

impl Default for Scaler {
    fn default() -> Self {
        Self::new()
    }
}

impl Scaler {
    /// A bilinear scaler.
    #[must_use]
    pub fn new() -> Self {
        Self {
            resizer: Resizer::new(),
            options: ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        }
    }

    /// Returns `frame` scaled to `width` x `height` (same capture time).
    ///
    /// # Errors
    /// [`ConvertError::ZeroSize`] for an empty target, [`ConvertError::Resize`] if the scaler fails.
    pub fn scale(
        &mut self,
        frame: &I420Frame,
        width: u32,
        height: u32,
    ) -> Result<I420Frame, ConvertError> {
        if width == 0 || height == 0 {
            return Err(ConvertError::ZeroSize { width, height });
        }
        if (width, height) == (frame.width(), frame.height()) {
            return Ok(frame.clone());
        }
        let (scw, sch) = frame.chroma_size();
        let (dcw, dch) = chroma_size(width, height);
        let y = self.plane(frame.y(), (frame.width(), frame.height()), (width, height))?;
        let u = self.plane(
            frame.u(),
            (scw as u32, sch as u32),
            (dcw as u32, dch as u32),
        )?;
        let v = self.plane(
            frame.v(),
            (scw as u32, sch as u32),
            (dcw as u32, dch as u32),
        )?;
        Ok(I420Frame::from_planes_unchecked(
            width,
            height,
            y,
            u,
            v,
            frame.capture_time,
        ))
    }

    fn plane(
        &mut self,
        src: &[u8],
        (sw, sh): (u32, u32),
        (dw, dh): (u32, u32),
    ) -> Result<Vec<u8>, ConvertError> {
        let src = ImageRef::new(sw, sh, src, PixelType::U8)
            .map_err(|e| ConvertError::Resize(e.to_string()))?;
        let mut dst = Image::new(dw, dh, PixelType::U8);
        self.resizer
            .resize(&src, &mut dst, &self.options)
            .map_err(|e| ConvertError::Resize(e.to_string()))?;
        Ok(dst.into_vec())
    }
}

/// Peak signal-to-noise ratio of two 8-bit planes, in dB (`f64::INFINITY` if identical).
///
/// # Errors
/// [`ConvertError::BufferSize`] if the planes differ in length.
pub fn psnr_plane(a: &[u8], b: &[u8]) -> Result<f64, ConvertError> {
    if a.len() != b.len() || a.is_empty() {
        return Err(ConvertError::BufferSize {
            expected: a.len(),
            actual: b.len(),
            width: 0,
            height: 0,
        });
    }
    let sse: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = i64::from(x) - i64::from(y);
            (d * d) as u64
        })
        .sum();
    if sse == 0 {
        return Ok(f64::INFINITY);
    }
    let mse = sse as f64 / a.len() as f64;
    Ok(10.0 * (255.0 * 255.0 / mse).log10())
}

/// PSNR of two I420 frames over all three planes (weighted 4:1:1 by sample count), in dB.
///
/// # Errors
/// [`ConvertError::SizeMismatch`] if the frames differ in size.
pub fn psnr(a: &I420Frame, b: &I420Frame) -> Result<f64, ConvertError> {
    if (a.width(), a.height()) != (b.width(), b.height()) {
        return Err(ConvertError::SizeMismatch(
            a.width(),
            a.height(),
            b.width(),
            b.height(),
        ));
    }
    let mut sse = 0u64;
    let mut n = 0usize;
    for (pa, pb) in [(a.y(), b.y()), (a.u(), b.u()), (a.v(), b.v())] {
        n += pa.len();
        sse += pa
            .iter()
            .zip(pb)
            .map(|(&x, &y)| {
                let d = i64::from(x) - i64::from(y);
                (d * d) as u64
            })
            .sum::<u64>();
    }
    if sse == 0 {
        return Ok(f64::INFINITY);
    }
    let mse = sse as f64 / n as f64;
    Ok(10.0 * (255.0 * 255.0 / mse).log10())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::synthetic_video::SyntheticVideo;

    #[test]
    fn rgba_round_trip_keeps_the_picture() -> Result<(), Box<dyn std::error::Error>> {
        let frame = SyntheticVideo::new(320, 240, 30)?.render(3, CaptureTime(9));
        let mut rgba = Vec::new();
        i420_to_rgba(&frame, &mut rgba)?;
        let back = rgba_to_i420(&rgba, 320, 240, CaptureTime(9))?;
        assert!(psnr(&frame, &back)? > 35.0);
        assert!(rgba_to_i420(&rgba[4..], 320, 240, CaptureTime(9)).is_err());
        Ok(())
    }

    #[test]
    fn scaling_changes_size_and_keeps_content() -> Result<(), Box<dyn std::error::Error>> {
        let frame = SyntheticVideo::new(640, 480, 30)?.render(3, CaptureTime(9));
        let mut s = Scaler::new();
        let small = s.scale(&frame, 320, 240)?;
        assert_eq!((small.width(), small.height()), (320, 240));
        let big = s.scale(&small, 640, 480)?;
        assert!(psnr(&frame, &big)? > 22.0);
        Ok(())
    }
}
