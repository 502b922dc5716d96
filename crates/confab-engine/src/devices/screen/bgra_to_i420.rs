//! BGRA -> I420 into a reused frame, and the largest size a shared screen is sent at.
//!
//! The conversion is the same yuvutils-rs call [`crate::media::convert::rgba_to_i420`] makes
//! (BT.601 limited range, balanced mode), for the byte order X11 gives (B, G, R, X), writing
//! into an existing [`I420Frame`] instead of allocating one. [`fit_within`] is the size
//! rule: at most [`MAX_WIDTH`] x [`MAX_HEIGHT`], aspect ratio kept, never scaled up, even.

use yuvutils_rs::{YuvConversionMode, YuvRange, YuvStandardMatrix};

use crate::media::I420Frame;
use crate::media::convert::{ConvertError, planar_image_mut};

/// Widest picture a screen share sends.
pub const MAX_WIDTH: u32 = 1920;
/// Tallest picture a screen share sends.
pub const MAX_HEIGHT: u32 = 1080;

/// Converts the packed BGRA picture `bgra` (`frame`'s size, `width * 4` bytes a row; the fourth
/// byte is ignored) into `frame`'s planes.
///
/// # Errors
/// [`ConvertError::BufferSize`] if `bgra` does not match the frame, [`ConvertError::Yuv`] if
/// the conversion library rejects it.
pub(super) fn bgra_to_i420_into(bgra: &[u8], frame: &mut I420Frame) -> Result<(), ConvertError> {
    let (width, height) = (frame.width(), frame.height());
    let expected = width as usize * height as usize * 4;
    if bgra.len() != expected {
        return Err(ConvertError::BufferSize {
            expected,
            actual: bgra.len(),
            width,
            height,
        });
    }
    let (y, u, v) = frame.planes_mut();
    let mut image = planar_image_mut(width, height, y, u, v);
    yuvutils_rs::bgra_to_yuv420(
        &mut image,
        bgra,
        width * 4,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
        YuvConversionMode::Balanced,
    )
    .map_err(|e| ConvertError::Yuv(e.to_string()))
}

/// The size a `width` x `height` picture is sent at: itself when it fits within
/// [`MAX_WIDTH`] x [`MAX_HEIGHT`], else scaled down to fit keeping its aspect ratio; always
/// even and at least 2x2.
#[must_use]
pub fn fit_within(width: u32, height: u32) -> (u32, u32) {
    let even = |v: u64| (u32::try_from(v).unwrap_or(u32::MAX) & !1).max(2);
    let (w, h) = (u64::from(width.max(1)), u64::from(height.max(1)));
    let (mw, mh) = (u64::from(MAX_WIDTH), u64::from(MAX_HEIGHT));
    if w <= mw && h <= mh {
        return (even(w), even(h));
    }
    if w * mh >= h * mw {
        // Wider than 16:9: the width limits.
        (MAX_WIDTH, even(h * mw / w))
    } else {
        (even(w * mh / h), MAX_HEIGHT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::CaptureTime;
    use crate::media::convert::{psnr, rgba_to_i420};

    #[test]
    fn sizes_fit_within_1080p_keeping_aspect_and_even() {
        assert_eq!(fit_within(1920, 1080), (1920, 1080));
        assert_eq!(fit_within(1280, 1024), (1280, 1024));
        assert_eq!(fit_within(3840, 2160), (1920, 1080));
        assert_eq!(fit_within(2560, 1600), (1728, 1080));
        assert_eq!(fit_within(3440, 1440), (1920, 802));
        assert_eq!(fit_within(1080, 1920), (606, 1080));
        assert_eq!(fit_within(7680, 2), (1920, 2));
        assert_eq!(fit_within(1, 1), (2, 2));
    }

    #[test]
    fn matches_the_rgba_conversion() -> Result<(), Box<dyn std::error::Error>> {
        let (w, h) = (64u32, 48u32);
        let rgba: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                [(x * 4) as u8, (y * 5) as u8, ((x ^ y) * 3) as u8, 255]
            })
            .collect();
        let bgra: Vec<u8> = rgba
            .chunks_exact(4)
            .flat_map(|p| [p[2], p[1], p[0], 0])
            .collect();
        let want = rgba_to_i420(&rgba, w, h, CaptureTime(1))?;
        let mut got = I420Frame::black(w, h)?;
        bgra_to_i420_into(&bgra, &mut got)?;
        got.capture_time = CaptureTime(1);
        assert_eq!(psnr(&want, &got)?, f64::INFINITY);
        assert!(bgra_to_i420_into(&bgra[4..], &mut got).is_err());
        Ok(())
    }
}
