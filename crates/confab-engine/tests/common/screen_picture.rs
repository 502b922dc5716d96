//! The known desktop picture the screen-capture tests put on the X display and expect back.
//!
//! It is made of what makes screen sharing hard and what makes a wrong result easy to see, all
//! generated deterministically (no randomness between runs), as packed BGRX (X11's byte order at
//! depth 24):
//!
//! - a light grey desktop (`DESKTOP`) everywhere else;
//! - a white page of "text" in the top left ([`TEXT`]): rows of dark 5x7 glyphs in 8x16 cells,
//!   each glyph's bits and each word break from a hash of its row and column, so the page is
//!   sharp dark-on-light detail like a document, with gaps between words and lines;
//! - a 1-pixel black and white checkerboard ([`CHECKER`]): the finest detail a screen has, which
//!   any scaling, off-by-one placement or stride mistake turns to grey;
//! - a smooth colour gradient ([`GRADIENT`]): red across, green down;
//! - six solid blocks of saturated colour ([`BLOCKS`]) along the bottom, to sample after
//!   conversion for place and colour;
//! - a flat mid-grey pad ([`POINTER_PAD`]) to park the pointer on when looking for it.
#![allow(dead_code, reason = "each includer uses a part")]

/// A rectangle: x, y, width, height.
pub type Rect = (u32, u32, u32, u32);
/// A solid block: where, and its RGB colour.
pub type Block = (Rect, [u8; 3]);

/// The desktop's grey, RGB.
pub const DESKTOP: [u8; 3] = [224, 224, 224];
/// The text page.
pub const TEXT: Rect = (0, 0, 960, 540);
/// The 1-pixel checkerboard.
pub const CHECKER: Rect = (960, 0, 480, 540);
/// The colour gradient.
pub const GRADIENT: Rect = (1440, 0, 480, 540);
/// The flat pad for the pointer, RGB 128 grey.
pub const POINTER_PAD: Rect = (1600, 640, 240, 240);
/// Where the six coloured blocks are, and their RGB colours.
pub const BLOCKS: [Block; 6] = [
    ((60, 640, 200, 200), [220, 30, 30]),
    ((300, 640, 200, 200), [30, 200, 40]),
    ((540, 640, 200, 200), [40, 60, 220]),
    ((780, 640, 200, 200), [240, 220, 30]),
    ((1020, 640, 200, 200), [30, 210, 220]),
    ((1260, 640, 200, 200), [210, 40, 200]),
];

const INK: [u8; 3] = [30, 30, 30];
const PAPER: [u8; 3] = [250, 250, 250];

fn inside((rx, ry, rw, rh): Rect, x: u32, y: u32) -> bool {
    x >= rx && x < rx + rw && y >= ry && y < ry + rh
}

/// A small integer hash (for glyph shapes and word breaks): the same input, the same bits.
fn hash(a: u32, b: u32) -> u32 {
    let mut h = a.wrapping_mul(0x9e37_79b9) ^ b.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2c1b_3c6d);
    h ^ (h >> 12)
}

/// Whether text pixel (`x`, `y`) of the page is ink.
fn ink(x: u32, y: u32) -> bool {
    let (col, cx) = ((x.saturating_sub(16)) / 8, (x.saturating_sub(16)) % 8);
    let (line, cy) = ((y.saturating_sub(12)) / 16, (y.saturating_sub(12)) % 16);
    if x < 16 || y < 12 || x >= TEXT.2 - 16 || cx >= 5 || cy >= 7 {
        return false;
    }
    let h = hash(line, col);
    // About one cell in six is a space; short lines end early, like paragraphs.
    let line_len = 40 + hash(line, 9999) % 75;
    if h.is_multiple_of(6) || col > line_len {
        return false;
    }
    (hash(h, cy * 5 + cx) & 3) != 0
}

/// RGB of pixel (`x`, `y`) of the picture at `version` (0: the first picture; 1: the same
/// with the checkerboard painted solid orange and the first two blocks' colours swapped).
pub fn rgb_at(x: u32, y: u32, version: u32) -> [u8; 3] {
    for (i, (rect, colour)) in BLOCKS.iter().enumerate() {
        if inside(*rect, x, y) {
            return match (version, i) {
                (1, 0) => BLOCKS[1].1,
                (1, 1) => BLOCKS[0].1,
                _ => *colour,
            };
        }
    }
    if inside(TEXT, x, y) {
        return if ink(x, y) { INK } else { PAPER };
    }
    if inside(CHECKER, x, y) {
        if version == 1 {
            return [250, 140, 20];
        }
        return if (x + y).is_multiple_of(2) {
            [0, 0, 0]
        } else {
            [255, 255, 255]
        };
    }
    if inside(GRADIENT, x, y) {
        let r = (x - GRADIENT.0) * 255 / (GRADIENT.2 - 1);
        let g = (y - GRADIENT.1) * 255 / (GRADIENT.3 - 1);
        return [r as u8, g as u8, 96];
    }
    if inside(POINTER_PAD, x, y) {
        return [128, 128, 128];
    }
    DESKTOP
}

/// The whole `width` x `height` picture at `version`, packed BGRX (X = 0).
pub fn bgrx(width: u32, height: u32, version: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(width as usize * height as usize * 4);
    for y in 0..height {
        for x in 0..width {
            let [r, g, b] = rgb_at(x, y, version);
            out.extend_from_slice(&[b, g, r, 0]);
        }
    }
    out
}

/// The same picture packed RGBA (for the pipeline's own RGBA -> I420 conversion).
pub fn rgba_from_bgrx(bgrx: &[u8]) -> Vec<u8> {
    bgrx.chunks_exact(4)
        .flat_map(|p| [p[2], p[1], p[0], 255])
        .collect()
}
