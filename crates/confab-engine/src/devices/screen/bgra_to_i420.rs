//! Packed BGRA/RGBA -> I420 into a reused frame, the largest size a shared screen is sent at,
//! and [`ScreenConverter`], which does both for every screen source.
//!
//! The conversion is the same yuvutils-rs call [`crate::media::convert::rgba_to_i420`] makes
//! (BT.601 limited range, balanced mode), for the byte orders screens give (B, G, R, X from X11
//! and most PipeWire producers; R, G, B, X from some), rows `stride` bytes apart, writing into
//! an existing [`I420Frame`] instead of allocating one. [`fit_within`] is the size rule: at
//! most [`MAX_WIDTH`] x [`MAX_HEIGHT`], aspect ratio kept, never scaled up, even.

use yuvutils_rs::{YuvConversionMode, YuvRange, YuvStandardMatrix};

use super::ScreenError;
use crate::media::convert::{ConvertError, Scaler, planar_image_mut};
use crate::media::{CaptureTime, I420Frame};

/// Widest picture a screen share sends.
pub const MAX_WIDTH: u32 = 1920;
/// Tallest picture a screen share sends.
pub const MAX_HEIGHT: u32 = 1080;

/// The order of the four bytes of a packed screen pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    /// Blue, green, red, then alpha or padding (X11; PipeWire's `BGRx` / `BGRA`).
    Bgrx,
    /// Red, green, blue, then alpha or padding (PipeWire's `RGBx` / `RGBA`).
    #[cfg_attr(
        not(feature = "wayland"),
        allow(dead_code, reason = "only PipeWire gives this order")
    )]
    Rgbx,
}

/// Converts the packed picture `pixels` (`frame`'s size, rows `stride` bytes apart, four bytes a
/// pixel in `order`; the fourth byte is ignored) into `frame`'s planes.
///
/// # Errors
/// [`ConvertError::BufferSize`] if `pixels` is shorter than `stride` x the frame's height, or
/// the stride is shorter than a row; [`ConvertError::Yuv`] if the conversion library rejects it.
pub(super) fn packed_to_i420_into(
    pixels: &[u8],
    stride: u32,
    order: ByteOrder,
    frame: &mut I420Frame,
) -> Result<(), ConvertError> {
    let (width, height) = (frame.width(), frame.height());
    let row = width as usize * 4;
    // Every row with its padding, the last one's too: the conversion walks the picture in
    // whole strides (a shorter last row would be left out).
    let needed = (stride as usize).saturating_mul(height as usize);
    if (stride as usize) < row || pixels.len() < needed {
        return Err(ConvertError::BufferSize {
            expected: needed.max(row * height as usize),
            actual: pixels.len(),
            width,
            height,
        });
    }
    let (y, u, v) = frame.planes_mut();
    let mut image = planar_image_mut(width, height, y, u, v);
    let convert = match order {
        ByteOrder::Bgrx => yuvutils_rs::bgra_to_yuv420,
        ByteOrder::Rgbx => yuvutils_rs::rgba_to_yuv420,
    };
    convert(
        &mut image,
        &pixels[..needed],
        stride,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
        YuvConversionMode::Balanced,
    )
    .map_err(|e| ConvertError::Yuv(e.to_string()))
}

/// Turns screen pictures into frames to send: converted to I420, then scaled down to
/// [`fit_within`] 1080p when larger. Keeps the full-size frame and the scaler between pictures;
/// every frame it hands out is new (the consumer owns it).
#[derive(Default)]
pub(super) struct ScreenConverter {
    /// The full-size frame converted into when scaling (reused); `None` until needed.
    full: Option<I420Frame>,
    scaler: Scaler,
}

impl ScreenConverter {
    /// The `width` x `height` picture `pixels` (rows `stride` bytes apart, in `order`) as a
    /// frame to send, stamped `capture_time`.
    ///
    /// # Errors
    /// [`ScreenError::Unsupported`] for a size no frame can have, [`ScreenError::Convert`] when
    /// the picture does not match its size or the conversion fails.
    pub(super) fn convert(
        &mut self,
        pixels: &[u8],
        (width, height, stride): (u32, u32, u32),
        order: ByteOrder,
        capture_time: CaptureTime,
    ) -> Result<I420Frame, ScreenError> {
        let (w, h) = (width, height);
        let (ow, oh) = fit_within(w, h);
        if (ow, oh) == (w, h) {
            let mut frame = I420Frame::black(w, h)
                .map_err(|e| ScreenError::Unsupported(format!("a {w}x{h} frame: {e}")))?;
            packed_to_i420_into(pixels, stride, order, &mut frame)?;
            frame.capture_time = capture_time;
            return Ok(frame);
        }
        let full = match self.full.take() {
            Some(f) if (f.width(), f.height()) == (w, h) => f,
            _ => I420Frame::black(w, h)
                .map_err(|e| ScreenError::Unsupported(format!("a {w}x{h} frame: {e}")))?,
        };
        let full = self.full.insert(full);
        packed_to_i420_into(pixels, stride, order, full)?;
        full.capture_time = capture_time;
        Ok(self.scaler.scale(full, ow, oh)?)
    }
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
        packed_to_i420_into(&bgra, w * 4, ByteOrder::Bgrx, &mut got)?;
        got.capture_time = CaptureTime(1);
        assert_eq!(psnr(&want, &got)?, f64::INFINITY);
        assert!(packed_to_i420_into(&bgra[4..], w * 4, ByteOrder::Bgrx, &mut got).is_err());
        Ok(())
    }

    #[test]
    fn rgbx_with_a_padded_stride_matches_packed_bgrx() -> Result<(), Box<dyn std::error::Error>> {
        let (w, h) = (30u32, 20u32);
        let bgrx: Vec<u8> = (0..w * h)
            .flat_map(|i| [(i * 7) as u8, (i * 3) as u8, (i / 5) as u8, 0])
            .collect();
        // The same picture as RGBx with 8 bytes of padding after every row.
        let stride = w * 4 + 8;
        let mut rgbx = vec![0xAAu8; (stride * h) as usize];
        for (i, p) in bgrx.chunks_exact(4).enumerate() {
            let (x, y) = (i as u32 % w, i as u32 / w);
            let at = (y * stride + x * 4) as usize;
            rgbx[at..at + 4].copy_from_slice(&[p[2], p[1], p[0], 0]);
        }
        let mut want = I420Frame::black(w, h)?;
        packed_to_i420_into(&bgrx, w * 4, ByteOrder::Bgrx, &mut want)?;
        let mut got = I420Frame::black(w, h)?;
        packed_to_i420_into(&rgbx, stride, ByteOrder::Rgbx, &mut got)?;
        assert_eq!(psnr(&want, &got)?, f64::INFINITY);
        // Too short for the stride, or a stride shorter than a row: refused, no panic.
        assert!(
            packed_to_i420_into(&rgbx[..rgbx.len() - 9], stride, ByteOrder::Rgbx, &mut got)
                .is_err()
        );
        assert!(packed_to_i420_into(&rgbx, w * 4 - 4, ByteOrder::Rgbx, &mut got).is_err());
        Ok(())
    }

    #[test]
    fn the_converter_scales_large_pictures_down() -> Result<(), Box<dyn std::error::Error>> {
        let mut converter = ScreenConverter::default();
        let (w, h) = (2560u32, 1440u32);
        let pixels = vec![200u8; (w * h * 4) as usize];
        let frame = converter.convert(&pixels, (w, h, w * 4), ByteOrder::Bgrx, CaptureTime(7))?;
        assert_eq!((frame.width(), frame.height()), (1920, 1080));
        assert_eq!(frame.capture_time, CaptureTime(7));
        let small = converter.convert(
            &pixels[..640 * 480 * 4],
            (640, 480, 640 * 4),
            ByteOrder::Rgbx,
            CaptureTime(8),
        )?;
        assert_eq!((small.width(), small.height()), (640, 480));
        assert!(
            converter
                .convert(
                    &pixels[..100],
                    (640, 480, 640 * 4),
                    ByteOrder::Rgbx,
                    CaptureTime(9)
                )
                .is_err()
        );
        Ok(())
    }
}
