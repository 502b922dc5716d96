//! The root window's ZPixmap layout, and its copy into packed BGRA.
//!
//! We read true-colour pictures with 8 bits per channel, red in bits 16..24, green in 8..16 and
//! blue in 0..8 of each pixel, stored little-endian (`LSBFirst`) with 32 bits per pixel (depth
//! 24 or 32: bytes B, G, R, X) or 24 bits per pixel (bytes B, G, R), rows padded to the
//! server's scanline pad. That is what Xorg, Xvfb and Xwayland give on every common setup;
//! anything else is [`ScreenError::Unsupported`], said in words. The BGRA output is tightly
//! packed (`width * 4` bytes a row); its fourth byte is not meaningful (the converter ignores it).

use x11rb::protocol::xproto::{ImageOrder, Setup, VisualClass};

use super::ScreenError;

/// How one row of the root window's ZPixmap image is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PixelLayout {
    /// 24 or 32.
    bits_per_pixel: u8,
    /// Rows are padded to a multiple of this many bits (8, 16 or 32).
    scanline_pad: u8,
}

impl PixelLayout {
    /// The layout of screen `screen` of `setup`, if we can read it.
    ///
    /// # Errors
    /// [`ScreenError::Unsupported`] for anything but 24/32-bit little-endian true colour.
    pub(super) fn of_screen(setup: &Setup, screen: usize) -> Result<Self, ScreenError> {
        let root = setup.roots.get(screen).ok_or_else(|| {
            ScreenError::Unsupported(format!("the X server has no screen {screen}"))
        })?;
        let depth = root.root_depth;
        let format = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == depth)
            .ok_or_else(|| {
                ScreenError::Unsupported(format!("no pixmap format for the root depth {depth}"))
            })?;
        let visual = root
            .allowed_depths
            .iter()
            .flat_map(|d| d.visuals.iter())
            .find(|v| v.visual_id == root.root_visual)
            .ok_or_else(|| ScreenError::Unsupported("the root visual is not listed".into()))?;
        if visual.class != VisualClass::TRUE_COLOR && visual.class != VisualClass::DIRECT_COLOR {
            return Err(ScreenError::Unsupported(format!(
                "a {:?} root visual (only true colour is read)",
                visual.class
            )));
        }
        if (visual.red_mask, visual.green_mask, visual.blue_mask)
            != (0x00ff_0000, 0x0000_ff00, 0x0000_00ff)
        {
            return Err(ScreenError::Unsupported(format!(
                "depth {depth} with colour masks red {:#08x}, green {:#08x}, blue {:#08x} \
                 (only 8-bit RGB, as at depth 24 or 32, is read)",
                visual.red_mask, visual.green_mask, visual.blue_mask
            )));
        }
        if setup.image_byte_order != ImageOrder::LSB_FIRST {
            return Err(ScreenError::Unsupported(
                "a big-endian (MSBFirst) image byte order".into(),
            ));
        }
        Self::new(format.bits_per_pixel, format.scanline_pad)
    }

    /// A layout of `bits_per_pixel` (24 or 32) with rows padded to `scanline_pad` bits.
    ///
    /// # Errors
    /// [`ScreenError::Unsupported`] for other pixel sizes or a pad that is not 8, 16 or 32.
    pub(super) fn new(bits_per_pixel: u8, scanline_pad: u8) -> Result<Self, ScreenError> {
        if !matches!(bits_per_pixel, 24 | 32) {
            return Err(ScreenError::Unsupported(format!(
                "{bits_per_pixel} bits per pixel (only 24 and 32 are read)"
            )));
        }
        if !matches!(scanline_pad, 8 | 16 | 32) {
            return Err(ScreenError::Unsupported(format!(
                "a scanline pad of {scanline_pad} bits"
            )));
        }
        Ok(Self {
            bits_per_pixel,
            scanline_pad,
        })
    }

    /// Bytes in one row of a `width`-pixel image, padding included.
    pub(super) fn stride(self, width: u32) -> usize {
        let bits = width as usize * usize::from(self.bits_per_pixel);
        let pad = usize::from(self.scanline_pad);
        bits.div_ceil(pad) * pad / 8
    }

    /// Bytes in a `width` x `height` image.
    pub(super) fn image_len(self, width: u32, height: u32) -> usize {
        self.stride(width) * height as usize
    }

    /// Copies a `width` x `height` image in this layout into `bgra` (resized to `width * height
    /// * 4`).
    ///
    /// # Errors
    /// [`ScreenError::Protocol`] when `raw` is shorter than the image (a short reply).
    pub(super) fn copy_to_bgra(
        self,
        raw: &[u8],
        width: u32,
        height: u32,
        bgra: &mut Vec<u8>,
    ) -> Result<(), ScreenError> {
        let stride = self.stride(width);
        let needed = self.image_len(width, height);
        if raw.len() < needed {
            return Err(ScreenError::Protocol {
                during: "reading the screen image",
                reason: format!(
                    "{} bytes of image for {width}x{height}, expected {needed}",
                    raw.len()
                ),
            });
        }
        let row_out = width as usize * 4;
        bgra.resize(row_out * height as usize, 0);
        if self.bits_per_pixel == 32 && stride == row_out {
            bgra.copy_from_slice(&raw[..needed]);
            return Ok(());
        }
        for (src, dst) in raw.chunks(stride).zip(bgra.chunks_exact_mut(row_out)) {
            if self.bits_per_pixel == 32 {
                dst.copy_from_slice(&src[..row_out]);
            } else {
                for (s, d) in src.chunks_exact(3).zip(dst.chunks_exact_mut(4)) {
                    d[..3].copy_from_slice(s);
                    d[3] = 255;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_follow_the_scanline_pad() -> Result<(), ScreenError> {
        assert_eq!(PixelLayout::new(32, 32)?.stride(3), 12);
        assert_eq!(PixelLayout::new(24, 32)?.stride(3), 12);
        assert_eq!(PixelLayout::new(24, 32)?.stride(2), 8);
        assert_eq!(PixelLayout::new(24, 8)?.stride(3), 9);
        assert!(matches!(
            PixelLayout::new(16, 32),
            Err(ScreenError::Unsupported(_))
        ));
        assert!(matches!(
            PixelLayout::new(32, 12),
            Err(ScreenError::Unsupported(_))
        ));
        Ok(())
    }

    #[test]
    fn copies_32_and_24_bit_rows_into_packed_bgra() -> Result<(), ScreenError> {
        let mut out = Vec::new();
        // 2x2 at 32 bpp: stride 8, no padding.
        let raw32: Vec<u8> = (0..16).collect();
        PixelLayout::new(32, 32)?.copy_to_bgra(&raw32, 2, 2, &mut out)?;
        assert_eq!(out, raw32);
        // 3x2 at 24 bpp with rows padded to 32 bits: stride 12 (9 bytes of pixels + 3 of pad).
        let raw24: Vec<u8> = [
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0],
            [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0],
        ]
        .concat();
        PixelLayout::new(24, 32)?.copy_to_bgra(&raw24, 3, 2, &mut out)?;
        assert_eq!(
            out,
            [
                1, 2, 3, 255, 4, 5, 6, 255, 7, 8, 9, 255, 9, 8, 7, 255, 6, 5, 4, 255, 3, 2, 1, 255
            ]
        );
        // A short image is an error, not a panic.
        assert!(
            PixelLayout::new(24, 32)?
                .copy_to_bgra(&raw24[..20], 3, 2, &mut out)
                .is_err()
        );
        Ok(())
    }
}
