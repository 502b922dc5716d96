//! Synthetic screen: a desktop-like picture for measuring screen share without a display.
//!
//! What screen content looks like to an encoder: large flat areas, sharp one-pixel text strokes
//! and lines, a few saturated blocks, and little motion (a cursor, a line of text being typed).
//! The picture is a light desktop with a window of text-like glyph rows, a fine grid, coloured
//! blocks, a line that grows by one glyph per frame and an arrow cursor on a circular path.
//! Both marker bands of [`super::synthetic_video`] ([`write_marker`]) carry the frame number and
//! capture time, so the receiver measures capture-to-decode latency exactly as for the camera.
//!
//! Contract: deterministic (frame `n` at time `t` is always the same picture; the static part is
//! rendered once in [`SyntheticScreen::new`], each frame copies it and draws the moving parts);
//! even sizes from 320x180 up.

use std::time::Duration;

use super::frame::{CaptureTime, I420Frame};
use super::source::{Pacing, SourceError, VideoSource};
use super::synthetic_video::{FrameMarker, MARKER_ROWS, write_marker};

/// Glyph cell size in pixels (text at about the size of a 13 px UI font).
const GLYPH_W: u32 = 8;
const GLYPH_H: u32 = 14;
/// The cursor's size in pixels.
const CURSOR: u32 = 20;
const BACKGROUND: (u8, u8, u8) = (225, 128, 128);
const WINDOW: (u8, u8, u8) = (250, 128, 128);
const INK: (u8, u8, u8) = (25, 128, 128);
const TITLE: (u8, u8, u8) = (90, 150, 110);

/// The synthetic desktop; see the module docs.
#[derive(Debug, Clone)]
pub struct SyntheticScreen {
    width: u32,
    height: u32,
    fps: u32,
    next_frame_number: u32,
    background: I420Frame,
    /// The typing line: its top-left corner and how many glyphs fit.
    typing: (u32, u32, u32),
}

impl SyntheticScreen {
    /// A desktop of `width` x `height`, delivered at `fps` frames per second by the runner.
    ///
    /// # Errors
    /// [`SourceError::Format`] for odd sizes, sizes under 320x180, or `fps` 0.
    pub fn new(width: u32, height: u32, fps: u32) -> Result<Self, SourceError> {
        if fps == 0
            || !width.is_multiple_of(2)
            || !height.is_multiple_of(2)
            || width < 320
            || height < 180
        {
            return Err(SourceError::Format(format!(
                "a synthetic screen needs even dimensions of at least 320x180 and fps > 0, got {width}x{height}@{fps}"
            )));
        }
        let mut background =
            I420Frame::black(width, height).map_err(|e| SourceError::Format(e.to_string()))?;
        let mut canvas = Canvas::new(&mut background);
        canvas.fill(0, 0, width, height, BACKGROUND);
        // The marker bands take the top and bottom rows of blocks; the window sits between.
        let band = (width / 40) * MARKER_ROWS + 4;
        let (wx, wy) = (width / 16, band + height / 30);
        let (ww, wh) = (width - 2 * wx, height - 2 * wy);
        canvas.fill(wx, wy, ww, wh, WINDOW);
        canvas.fill(wx, wy, ww, GLYPH_H + 8, TITLE);
        canvas.text(wx + 8, wy + 4, ww / 3 / GLYPH_W, 7, (250, 128, 128));
        // Text rows on the left two thirds.
        let rows = (wh - GLYPH_H * 4) / (GLYPH_H + 6);
        let columns = (ww * 2 / 3 - 16) / GLYPH_W;
        for r in 0..rows.saturating_sub(1) {
            let length = columns - (r * 7919 % (columns / 2 + 1));
            canvas.text(wx + 8, wy + GLYPH_H * 2 + r * (GLYPH_H + 6), length, r, INK);
        }
        // A fine grid (1 px lines every 4 px) and coloured blocks on the right third.
        let (gx, gy) = (wx + ww * 2 / 3 + 8, wy + GLYPH_H * 2);
        let gw = ww / 3 - 16;
        let gh = wh / 2 - GLYPH_H * 2;
        for y in 0..gh {
            for x in 0..gw {
                if x % 4 == 0 || y % 4 == 0 {
                    canvas.put(gx + x, gy + y, INK);
                }
            }
        }
        let colours = [(82, 90, 240), (145, 54, 34), (41, 240, 110), (210, 16, 146)];
        let block = gw / 4;
        for (i, colour) in colours.into_iter().enumerate() {
            let bx = gx + i as u32 * block;
            canvas.fill(bx + 2, gy + gh + 16, block - 4, wh / 4, colour);
        }
        let typing = (wx + 8, wy + wh - GLYPH_H - 8, columns);
        Ok(Self {
            width,
            height,
            fps,
            next_frame_number: 0,
            background,
            typing,
        })
    }

    /// Renders frame `frame_number` stamped with `capture_time` (deterministic; no clock read).
    #[must_use]
    pub fn render(&self, frame_number: u32, capture_time: CaptureTime) -> I420Frame {
        let mut frame = self.background.clone();
        frame.capture_time = capture_time;
        let mut canvas = Canvas::new(&mut frame);
        let (tx, ty, columns) = self.typing;
        canvas.text(tx, ty, frame_number % columns.max(1), 1000, INK);
        // The cursor circles the middle of the screen, one turn every 8 s at 15 fps.
        let angle = f64::from(frame_number % 120) / 120.0 * std::f64::consts::TAU;
        let radius = f64::from(self.height) / 4.0;
        let cx = (f64::from(self.width) / 2.0 + radius * angle.cos()) as u32;
        let cy = (f64::from(self.height) / 2.0 + radius * angle.sin()) as u32;
        canvas.cursor(cx, cy);
        // Cannot fail: `new` checked the size is well above the marker's minimum.
        let _ = write_marker(&mut frame, FrameMarker::new(frame_number, capture_time));
        frame
    }

    /// Frame width.
    #[must_use]
    pub const fn width(&self) -> u32 {
        self.width
    }

    /// Frame height.
    #[must_use]
    pub const fn height(&self) -> u32 {
        self.height
    }
}

impl VideoSource for SyntheticScreen {
    fn name(&self) -> String {
        format!("synthetic-screen-{}x{}", self.width, self.height)
    }

    fn pacing(&self) -> Pacing {
        Pacing::Interval(Duration::from_secs(1) / self.fps)
    }

    fn next_frame(&mut self) -> Result<I420Frame, SourceError> {
        let n = self.next_frame_number;
        self.next_frame_number = n.wrapping_add(1);
        Ok(self.render(n, CaptureTime::now()))
    }
}

/// Drawing on an I420 frame in (Y, U, V) colours; everything is clipped to the frame.
struct Canvas<'a> {
    frame: &'a mut I420Frame,
}

impl<'a> Canvas<'a> {
    fn new(frame: &'a mut I420Frame) -> Self {
        Self { frame }
    }

    fn put(&mut self, x: u32, y: u32, (cy, cu, cv): (u8, u8, u8)) {
        let (w, h) = (self.frame.width(), self.frame.height());
        if x >= w || y >= h {
            return;
        }
        let cw = w.div_ceil(2) as usize;
        let (py, pu, pv) = self.frame.planes_mut();
        py[y as usize * w as usize + x as usize] = cy;
        let c = (y / 2) as usize * cw + (x / 2) as usize;
        pu[c] = cu;
        pv[c] = cv;
    }

    fn fill(&mut self, x: u32, y: u32, w: u32, h: u32, colour: (u8, u8, u8)) {
        for row in y..y.saturating_add(h) {
            for col in x..x.saturating_add(w) {
                self.put(col, row, colour);
            }
        }
    }

    /// `count` text-like glyphs from (`x`, `y`): each a deterministic pattern of one-pixel
    /// strokes chosen from `seed` and its position, with a space now and then.
    fn text(&mut self, x: u32, y: u32, count: u32, seed: u32, ink: (u8, u8, u8)) {
        for i in 0..count {
            let h = hash(seed.wrapping_mul(131).wrapping_add(i));
            if h.is_multiple_of(7) {
                continue; // a space between words
            }
            let gx = x + i * GLYPH_W;
            // Strokes: a vertical at one of three columns, up to three horizontals, one
            // diagonal; all one pixel wide, like small anti-aliasing-free UI text.
            let stem = 1 + h % 3 * 2;
            let top = if h & 0x10 != 0 { 2 } else { 5 };
            for row in top..GLYPH_H - 3 {
                self.put(gx + stem, y + row, ink);
            }
            for (bit, row) in [(0x20, 5), (0x40, 8), (0x80, GLYPH_H - 4)] {
                if h & bit != 0 {
                    for col in 1..GLYPH_W - 2 {
                        self.put(gx + col, y + row, ink);
                    }
                }
            }
            if h & 0x100 != 0 {
                for d in 0..GLYPH_W - 3 {
                    self.put(gx + 1 + d, y + GLYPH_H - 4 - d, ink);
                }
            }
        }
    }

    /// An arrow cursor with its tip at (`x`, `y`): black outline, white inside.
    fn cursor(&mut self, x: u32, y: u32) {
        for row in 0..CURSOR {
            let width = (row * 2 / 3).max(1);
            for col in 0..=width {
                let edge = col == 0 || col == width || row == CURSOR - 1;
                let colour = if edge { INK } else { (250, 128, 128) };
                self.put(x + col, y + row, colour);
            }
        }
    }
}

/// A small integer hash (deterministic glyph shapes).
fn hash(v: u32) -> u32 {
    let mut h = v.wrapping_mul(0x9E37_79B1);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^ (h >> 12)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is the test failing, with its message"
    )]

    use super::*;
    use crate::media::synthetic_video::read_marker;

    #[test]
    fn frames_carry_their_marker_and_change_only_a_little() {
        let screen = SyntheticScreen::new(1920, 1080, 15).unwrap();
        let t = CaptureTime::from_micros(5_000_000);
        let a = screen.render(10, t);
        let b = screen.render(11, t.plus(Duration::from_millis(66)));
        assert_eq!((a.width(), a.height()), (1920, 1080));
        let marker = read_marker(&b).unwrap();
        assert_eq!(marker.frame_number, 11);
        // Screen content: most of the picture stays; the cursor, the typed glyph and the
        // markers move.
        let changed = a.y().iter().zip(b.y()).filter(|(p, q)| p != q).count();
        let share = changed as f64 / a.y().len() as f64;
        assert!(share > 0.0 && share < 0.05, "changed share {share}");
    }

    #[test]
    fn has_sharp_text_and_flat_areas() {
        let screen = SyntheticScreen::new(1280, 720, 15).unwrap();
        let frame = screen.render(0, CaptureTime::from_micros(0));
        let y = frame.y();
        let ink = y.iter().filter(|&&v| v == INK.0).count();
        let window = y.iter().filter(|&&v| v == WINDOW.0).count();
        assert!(ink > 10_000, "{ink} ink pixels");
        assert!(window > y.len() / 3, "{window} window pixels");
    }

    #[test]
    fn bad_sizes_are_refused() {
        for (w, h, fps) in [
            (319, 180, 15),
            (320, 178, 15),
            (1920, 1080, 0),
            (321, 181, 15),
        ] {
            assert!(SyntheticScreen::new(w, h, fps).is_err(), "{w}x{h}@{fps}");
        }
    }

    #[test]
    fn is_deterministic() {
        let screen = SyntheticScreen::new(640, 360, 15).unwrap();
        let t = CaptureTime::from_micros(77);
        assert_eq!(screen.render(5, t).y(), screen.render(5, t).y());
    }
}
