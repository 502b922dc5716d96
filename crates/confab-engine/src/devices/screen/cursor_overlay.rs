//! The pointer, drawn into the captured picture.
//!
//! X servers leave the pointer out of `GetImage` (it is a hardware or software sprite), so a
//! screen share would show none. XFixes `GetCursorImage` gives the current cursor's image
//! (32-bit ARGB, premultiplied alpha), its hotspot and the pointer's position on the root
//! window; [`blend_cursor`] composites it "over" the BGRA picture where it falls inside the
//! captured rectangle, clipped at the edges. Without XFixes the picture simply has no pointer
//! (logged once).

use x11rb::protocol::xfixes::ConnectionExt as _;

use super::ScreenError;
use super::monitors::CaptureRect;
use super::x_display::XDisplay;

/// Draws the pointer into captured pictures (or does nothing when turned off or unavailable).
#[derive(Debug)]
pub(super) struct CursorOverlay {
    enabled: bool,
}

impl CursorOverlay {
    /// An overlay for `x`; `wanted: false` never draws.
    pub(super) fn new(x: &XDisplay, wanted: bool) -> Self {
        if wanted && !x.extensions.xfixes_cursor {
            tracing::info!(
                display = %x.name,
                "the X server has no XFixes 4; the shared screen will not show the pointer"
            );
        }
        Self {
            enabled: wanted && x.extensions.xfixes_cursor,
        }
    }

    /// Blends the current cursor into `bgra`, the picture of `rect` (`width * height * 4`).
    ///
    /// # Errors
    /// [`ScreenError::Protocol`] if the server fails to answer.
    pub(super) fn draw(
        &self,
        x: &XDisplay,
        rect: CaptureRect,
        bgra: &mut [u8],
    ) -> Result<(), ScreenError> {
        if !self.enabled {
            return Ok(());
        }
        let cursor = x
            .conn
            .xfixes_get_cursor_image()
            .map_err(|e| ScreenError::protocol("XFixes GetCursorImage", e))?
            .reply()
            .map_err(|e| ScreenError::protocol("XFixes GetCursorImage", e))?;
        let image = CursorImage {
            argb: &cursor.cursor_image,
            width: u32::from(cursor.width),
            height: u32::from(cursor.height),
            left: i32::from(cursor.x) - i32::from(cursor.xhot) - i32::from(rect.x),
            top: i32::from(cursor.y) - i32::from(cursor.yhot) - i32::from(rect.y),
        };
        let (w, h) = rect.size();
        blend_cursor(&image, bgra, w, h);
        Ok(())
    }
}

/// A cursor image placed on the picture.
#[derive(Debug, Clone, Copy)]
pub(super) struct CursorImage<'a> {
    /// `width * height` pixels, `0xAARRGGBB` with premultiplied alpha.
    pub(super) argb: &'a [u32],
    /// Width in pixels.
    pub(super) width: u32,
    /// Height in pixels.
    pub(super) height: u32,
    /// Column of the image's left edge on the picture (may be negative).
    pub(super) left: i32,
    /// Row of the image's top edge on the picture (may be negative).
    pub(super) top: i32,
}

/// Composites `cursor` over the `width` x `height` BGRA picture `bgra` (premultiplied "over":
/// `out = src + dst * (255 - alpha) / 255`). Parts outside the picture are skipped; an image
/// whose pixel count does not match its size is ignored.
pub(super) fn blend_cursor(cursor: &CursorImage<'_>, bgra: &mut [u8], width: u32, height: u32) {
    let (cw, ch) = (cursor.width as usize, cursor.height as usize);
    if cursor.argb.len() != cw * ch || bgra.len() != width as usize * height as usize * 4 {
        return;
    }
    let span = |start: i32, len: usize, limit: u32| -> (usize, usize) {
        // First image index visible, and how many are.
        let skip = usize::try_from(-i64::from(start)).unwrap_or(0).min(len);
        let first = usize::try_from(start).unwrap_or(0);
        let room = (limit as usize).saturating_sub(first);
        (skip, (len - skip).min(room))
    };
    let (skip_x, n_x) = span(cursor.left, cw, width);
    let (skip_y, n_y) = span(cursor.top, ch, height);
    if n_x == 0 || n_y == 0 {
        return;
    }
    let dst_x = usize::try_from(cursor.left).unwrap_or(0);
    let dst_y = usize::try_from(cursor.top).unwrap_or(0);
    for row in 0..n_y {
        let src = &cursor.argb[(skip_y + row) * cw + skip_x..][..n_x];
        let start = ((dst_y + row) * width as usize + dst_x) * 4;
        let dst = &mut bgra[start..start + n_x * 4];
        for (&p, d) in src.iter().zip(dst.chunks_exact_mut(4)) {
            let a = p >> 24;
            if a == 0 && p & 0x00ff_ffff == 0 {
                continue;
            }
            let keep = 255 - a;
            for (i, shift) in [(0, 0), (1, 8), (2, 16)] {
                let s = (p >> shift) & 0xff;
                let blended = s + (u32::from(d[i]) * keep + 127) / 255;
                d[i] = blended.min(255) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_translucent_and_clipped_pixels() {
        // A 2x2 picture, mid grey (B, G, R, X).
        let grey = [100u8, 100, 100, 0];
        let mut pic = grey.repeat(4);
        // 3x3 cursor placed at (-1, -1): only its bottom-right 2x2 lands on the picture.
        let opaque_red = 0xffff_0000;
        let half_white = 0x8080_8080; // premultiplied 50 % white
        let clear = 0;
        #[rustfmt::skip]
        let argb = [
            opaque_red, opaque_red, opaque_red,
            opaque_red, opaque_red, half_white,
            opaque_red, clear,      opaque_red,
        ];
        let cursor = CursorImage {
            argb: &argb,
            width: 3,
            height: 3,
            left: -1,
            top: -1,
        };
        blend_cursor(&cursor, &mut pic, 2, 2);
        assert_eq!(&pic[0..4], &[0, 0, 255, 0], "opaque red over grey");
        // 128 + 100 * 127 / 255 = 128 + 50 = 178
        assert_eq!(&pic[4..8], &[178, 178, 178, 0], "half white over grey");
        assert_eq!(&pic[8..12], &grey, "transparent leaves the picture");
        assert_eq!(&pic[12..16], &[0, 0, 255, 0]);
        // Entirely off the picture, or a malformed image: nothing changes, nothing panics.
        let before = pic.clone();
        for (left, top) in [(2, 0), (-3, 0), (0, 5), (i32::MIN, i32::MAX), (i32::MAX, 0)] {
            blend_cursor(
                &CursorImage {
                    left,
                    top,
                    ..cursor
                },
                &mut pic,
                2,
                2,
            );
        }
        blend_cursor(&CursorImage { width: 4, ..cursor }, &mut pic, 2, 2);
        assert_eq!(pic, before);
    }
}
