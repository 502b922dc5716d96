//! Synthetic video: a moving, textured test pattern with a machine-readable frame marker.
//!
//! The picture is a smooth multi-frequency texture that pans along a triangle-wave path, plus a
//! bouncing checkered box, so the encoder has real motion search and residual work to do. Two
//! copies of a [`FrameMarker`] (one band at the top, one at the bottom) carry the frame number and
//! the low 32 bits of the capture time as [`MARKER_COLUMNS`] x [`MARKER_ROWS`] large black/white
//! blocks protected by a CRC-16. The blocks are `width / 40` pixels wide (8 px at 320x240, 32 px
//! at 1280x720) so they survive H.264 at call bitrates; [`read_marker`] (I420) and
//! [`read_marker_rgba`] recover them from a decoded frame and report a checksum failure instead
//! of returning garbage. This is how the loopback report measures capture-to-render latency and
//! detects dropped, repeated or corrupted frames.
//!
//! Minimum size: 160x64 (the marker blocks must be at least 4 px).

use std::time::Duration;

use super::frame::{CaptureTime, I420Frame, chroma_size};
use super::source::{Pacing, SourceError, VideoSource};

/// Blocks per marker row.
pub const MARKER_COLUMNS: u32 = 40;
/// Rows of blocks per marker band.
pub const MARKER_ROWS: u32 = 2;
const MARKER_BITS: usize = (MARKER_COLUMNS * MARKER_ROWS) as usize;
const LUMA_ONE: u8 = 220;
const LUMA_ZERO: u8 = 30;
/// How far (pixels) the texture pans before turning back.
const PAN_RANGE: u32 = 128;

/// What a frame marker carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameMarker {
    /// Frame number, counted from 0 by the source.
    pub frame_number: u32,
    /// Low 32 bits of the capture time in microseconds (wraps every ~71.6 minutes).
    pub capture_time_low: u32,
}

impl FrameMarker {
    /// Marker for a frame.
    #[must_use]
    pub const fn new(frame_number: u32, capture_time: CaptureTime) -> Self {
        Self {
            frame_number,
            // Truncation intended: the marker carries the low 32 bits; see `capture_time_near`.
            capture_time_low: capture_time.as_micros() as u32,
        }
    }

    /// The full capture time closest to `reference` whose low 32 bits match this marker
    /// (pass the time the frame was decoded; any reference within ±35 minutes works).
    #[must_use]
    pub fn capture_time_near(&self, reference: CaptureTime) -> CaptureTime {
        const SPAN: i128 = 1 << 32;
        let r = i128::from(reference.as_micros());
        let base = r - (r.rem_euclid(SPAN)) + i128::from(self.capture_time_low);
        let best = [base - SPAN, base, base + SPAN]
            .into_iter()
            .filter(|c| *c >= 0)
            .min_by_key(|c| (c - r).abs())
            .unwrap_or(base.max(0));
        CaptureTime::from_micros(u64::try_from(best).unwrap_or(0))
    }

    fn to_bits(self) -> [bool; MARKER_BITS] {
        let mut bytes = [0u8; 10];
        bytes[..4].copy_from_slice(&self.frame_number.to_be_bytes());
        bytes[4..8].copy_from_slice(&self.capture_time_low.to_be_bytes());
        let crc = crc16(&bytes[..8]);
        bytes[8..].copy_from_slice(&crc.to_be_bytes());
        let mut bits = [false; MARKER_BITS];
        for (i, bit) in bits.iter_mut().enumerate() {
            *bit = bytes[i / 8] & (0x80 >> (i % 8)) != 0;
        }
        bits
    }

    fn from_bits(bits: &[bool; MARKER_BITS]) -> Result<Self, MarkerError> {
        let mut bytes = [0u8; 10];
        for (i, bit) in bits.iter().enumerate() {
            if *bit {
                bytes[i / 8] |= 0x80 >> (i % 8);
            }
        }
        let expected = u16::from_be_bytes([bytes[8], bytes[9]]);
        if crc16(&bytes[..8]) != expected {
            return Err(MarkerError::Checksum);
        }
        Ok(Self {
            frame_number: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            capture_time_low: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        })
    }
}

/// Why a marker could not be read.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum MarkerError {
    /// The frame is too small to hold a marker.
    #[error("frame {width}x{height} is too small for a marker (min 160x64)")]
    TooSmall {
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
    },
    /// Neither marker copy passed its CRC: the frame is corrupted or not from this source.
    #[error("marker checksum mismatch in both copies (corrupted frame)")]
    Checksum,
    /// The buffer is shorter than the stated dimensions.
    #[error("pixel buffer too short for the stated dimensions")]
    BufferSize,
}

#[derive(Debug, Clone, Copy)]
struct MarkerGeometry {
    block: u32,
    x0: u32,
    top_y0: u32,
    bottom_y0: u32,
}

fn geometry(width: u32, height: u32) -> Result<MarkerGeometry, MarkerError> {
    let block = (width / MARKER_COLUMNS) & !1;
    if block < 4 || height < 4 * MARKER_ROWS * block {
        return Err(MarkerError::TooSmall { width, height });
    }
    let band = MARKER_ROWS * block;
    Ok(MarkerGeometry {
        block,
        x0: ((width - MARKER_COLUMNS * block) / 2) & !1,
        top_y0: 0,
        bottom_y0: (height - band) & !1,
    })
}

/// CRC-16/CCITT-FALSE.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Draws `marker` into both marker bands of `frame` (luma blocks, neutral chroma).
///
/// # Errors
/// [`MarkerError::TooSmall`] if the frame cannot hold a marker.
pub fn write_marker(frame: &mut I420Frame, marker: FrameMarker) -> Result<(), MarkerError> {
    let (width, height) = (frame.width(), frame.height());
    let g = geometry(width, height)?;
    let bits = marker.to_bits();
    let (cw, _) = chroma_size(width, height);
    let (y, u, v) = frame.planes_mut();
    let w = width as usize;
    let band_w = (MARKER_COLUMNS * g.block) as usize;
    for y0 in [g.top_y0, g.bottom_y0] {
        for row in 0..(MARKER_ROWS * g.block) {
            let py = (y0 + row) as usize;
            let bit_row = (row / g.block) as usize;
            let line = &mut y[py * w..(py + 1) * w];
            for (col, chunk) in line[g.x0 as usize..g.x0 as usize + band_w]
                .chunks_exact_mut(g.block as usize)
                .enumerate()
            {
                let bit = bits[bit_row * MARKER_COLUMNS as usize + col];
                chunk.fill(if bit { LUMA_ONE } else { LUMA_ZERO });
            }
            if row % 2 == 0 {
                let cy = py / 2;
                let cx0 = g.x0 as usize / 2;
                let range = cy * cw + cx0..cy * cw + cx0 + band_w / 2;
                u[range.clone()].fill(128);
                v[range].fill(128);
            }
        }
    }
    Ok(())
}

/// Reads the marker from a decoded I420 frame, trying the top band then the bottom band.
///
/// # Errors
/// [`MarkerError::Checksum`] if neither copy is intact, [`MarkerError::TooSmall`] if the frame
/// cannot hold one.
pub fn read_marker(frame: &I420Frame) -> Result<FrameMarker, MarkerError> {
    let w = frame.width() as usize;
    read_with(frame.width(), frame.height(), |x, y| {
        frame.y().get(y * w + x).copied()
    })
}

/// Reads the marker from a tightly packed RGBA picture (e.g. the decoder's display output).
///
/// # Errors
/// As [`read_marker`]; [`MarkerError::BufferSize`] if `rgba` is shorter than `width*height*4`.
pub fn read_marker_rgba(rgba: &[u8], width: u32, height: u32) -> Result<FrameMarker, MarkerError> {
    if rgba.len() < width as usize * height as usize * 4 {
        return Err(MarkerError::BufferSize);
    }
    let w = width as usize;
    read_with(width, height, |x, y| {
        let i = (y * w + x) * 4;
        let px = rgba.get(i..i + 3)?;
        // Integer BT.601 luma; the marker is grey so any reasonable weighting works.
        let l = (u32::from(px[0]) * 77 + u32::from(px[1]) * 150 + u32::from(px[2]) * 29) >> 8;
        u8::try_from(l).ok()
    })
}

fn read_with(
    width: u32,
    height: u32,
    sample: impl Fn(usize, usize) -> Option<u8>,
) -> Result<FrameMarker, MarkerError> {
    let g = geometry(width, height)?;
    let mut last = MarkerError::Checksum;
    for y0 in [g.top_y0, g.bottom_y0] {
        let mut bits = [false; MARKER_BITS];
        for (i, bit) in bits.iter_mut().enumerate() {
            let col = i as u32 % MARKER_COLUMNS;
            let row = i as u32 / MARKER_COLUMNS;
            // Average the inner half of the block: edges carry the codec's ringing.
            let bx = g.x0 + col * g.block + g.block / 4;
            let by = y0 + row * g.block + g.block / 4;
            let n = g.block / 2;
            let mut sum = 0u32;
            for dy in 0..n {
                for dx in 0..n {
                    match sample((bx + dx) as usize, (by + dy) as usize) {
                        Some(v) => sum += u32::from(v),
                        None => return Err(MarkerError::BufferSize),
                    }
                }
            }
            *bit = sum / (n * n) >= 128;
        }
        match FrameMarker::from_bits(&bits) {
            Ok(marker) => return Ok(marker),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A moving textured test pattern with an embedded [`FrameMarker`] in every frame.
#[derive(Debug, Clone)]
pub struct SyntheticVideo {
    width: u32,
    height: u32,
    fps: u32,
    next_frame_number: u32,
    // Texture planes larger than the frame by PAN_RANGE in each direction; frames are windows.
    tex_y: Vec<u8>,
    tex_u: Vec<u8>,
    tex_v: Vec<u8>,
}

impl SyntheticVideo {
    /// A pattern of the given size, delivered at `fps` frames per second by the capture runner.
    ///
    /// # Errors
    /// [`SourceError::Format`] if the size is below 160x64, odd, or `fps` is zero.
    pub fn new(width: u32, height: u32, fps: u32) -> Result<Self, SourceError> {
        if fps == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(SourceError::Format(format!(
                "synthetic video needs even dimensions and fps > 0, got {width}x{height}@{fps}"
            )));
        }
        geometry(width, height).map_err(|e| SourceError::Format(e.to_string()))?;
        let tw = width + PAN_RANGE;
        let th = height + PAN_RANGE;
        let mut tex_y = Vec::with_capacity(tw as usize * th as usize);
        for y in 0..th {
            let fy = f64::from(y);
            for x in 0..tw {
                let fx = f64::from(x);
                let v = 128.0
                    + 45.0 * (fx * 0.045 + 1.5 * (fy * 0.021).sin()).sin()
                    + 25.0 * (fy * 0.083 + fx * 0.017).sin()
                    + 12.0 * ((fx * fx + fy * fy).sqrt() * 0.15).sin()
                    + f64::from(hash_noise(x, y)) * 0.06;
                tex_y.push(v.clamp(16.0, 235.0) as u8);
            }
        }
        let (ctw, cth) = (tw / 2, th / 2);
        let mut tex_u = Vec::with_capacity(ctw as usize * cth as usize);
        let mut tex_v = Vec::with_capacity(ctw as usize * cth as usize);
        for y in 0..cth {
            for x in 0..ctw {
                let (fx, fy) = (f64::from(x), f64::from(y));
                tex_u.push((128.0 + 45.0 * (fx * 0.031 + fy * 0.012).sin()) as u8);
                tex_v.push((128.0 + 45.0 * (fy * 0.027 - fx * 0.009).cos()) as u8);
            }
        }
        Ok(Self {
            width,
            height,
            fps,
            next_frame_number: 0,
            tex_y,
            tex_u,
            tex_v,
        })
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

    /// Renders frame `frame_number` stamped with `capture_time` (deterministic; no clock read).
    #[must_use]
    pub fn render(&self, frame_number: u32, capture_time: CaptureTime) -> I420Frame {
        let (w, h) = (self.width as usize, self.height as usize);
        let tw = (self.width + PAN_RANGE) as usize;
        // Pan 3 px/frame horizontally and 1 px/frame vertically, turning back at the range ends.
        let ox = triangle(frame_number.wrapping_mul(3), PAN_RANGE) as usize & !1;
        let oy = triangle(frame_number, PAN_RANGE) as usize & !1;
        let mut y = Vec::with_capacity(w * h);
        for row in 0..h {
            let start = (row + oy) * tw + ox;
            y.extend_from_slice(&self.tex_y[start..start + w]);
        }
        let (cw, ch) = (w / 2, h / 2);
        let ctw = tw / 2;
        let (cox, coy) = (ox / 2, oy / 2);
        let mut u = Vec::with_capacity(cw * ch);
        let mut v = Vec::with_capacity(cw * ch);
        for row in 0..ch {
            let start = (row + coy) * ctw + cox;
            u.extend_from_slice(&self.tex_u[start..start + cw]);
            v.extend_from_slice(&self.tex_v[start..start + cw]);
        }
        self.draw_box(frame_number, &mut y, &mut u, &mut v);
        let mut frame =
            I420Frame::from_planes_unchecked(self.width, self.height, y, u, v, capture_time);
        // Cannot fail: `new` validated the geometry.
        let _ = write_marker(&mut frame, FrameMarker::new(frame_number, capture_time));
        frame
    }

    /// A checkered box bouncing around the frame: local motion on top of the global pan.
    fn draw_box(&self, n: u32, y: &mut [u8], u: &mut [u8], v: &mut [u8]) {
        let (w, h) = (self.width, self.height);
        let size = (h / 4).max(8) & !1;
        let bx = triangle(n.wrapping_mul(5), w - size) & !1;
        let by = triangle(n.wrapping_mul(3), h - size) & !1;
        for row in 0..size {
            let py = (by + row) as usize;
            for col in 0..size {
                let px = (bx + col) as usize;
                let check = ((row / 8) + (col / 8) + n / 4).is_multiple_of(2);
                y[py * w as usize + px] = if check { 200 } else { 60 };
            }
        }
        let cw = (w / 2) as usize;
        for row in 0..size / 2 {
            let py = (by / 2 + row) as usize;
            let start = py * cw + (bx / 2) as usize;
            u[start..start + (size / 2) as usize].fill(90);
            v[start..start + (size / 2) as usize].fill(200);
        }
    }
}

impl VideoSource for SyntheticVideo {
    fn name(&self) -> String {
        format!("synthetic-{}x{}", self.width, self.height)
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

/// Triangle wave over `0..=range` with unit slope.
fn triangle(t: u32, range: u32) -> u32 {
    if range == 0 {
        return 0;
    }
    let period = 2 * range;
    let p = t % period;
    if p <= range { p } else { period - p }
}

/// Deterministic pseudo-random value in `-128..128` per pixel (fine texture).
fn hash_noise(x: u32, y: u32) -> i32 {
    let mut h = x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    (h & 0xFF) as i32 - 128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_on_raw_frames() -> Result<(), Box<dyn std::error::Error>> {
        for (w, h) in [(160, 120), (320, 240), (640, 480), (1280, 720)] {
            let src = SyntheticVideo::new(w, h, 30)?;
            for n in [0, 1, 77, u32::MAX] {
                let t = CaptureTime::from_micros(0x1_2345_6789);
                let frame = src.render(n, t);
                let m = read_marker(&frame)?;
                assert_eq!(m.frame_number, n);
                assert_eq!(m.capture_time_near(t.plus(Duration::from_millis(80))), t);
            }
        }
        Ok(())
    }

    #[test]
    fn corrupted_marker_is_reported() -> Result<(), Box<dyn std::error::Error>> {
        let src = SyntheticVideo::new(320, 240, 30)?;
        let mut frame = src.render(5, CaptureTime::from_micros(1));
        let (y, _, _) = frame.planes_mut();
        // Flip one block in each band.
        for y0 in [0usize, 240 - 16] {
            for row in y0..y0 + 8 {
                for px in &mut y[row * 320..row * 320 + 8] {
                    *px = 255 - *px;
                }
            }
        }
        assert_eq!(read_marker(&frame), Err(MarkerError::Checksum));
        Ok(())
    }

    #[test]
    fn capture_time_unwraps_across_the_32_bit_boundary() {
        let t = CaptureTime::from_micros((1u64 << 32) - 10);
        let m = FrameMarker::new(1, t);
        assert_eq!(
            m.capture_time_near(CaptureTime::from_micros((1u64 << 32) + 50_000)),
            t
        );
        assert_eq!(
            m.capture_time_near(CaptureTime::from_micros(0)),
            CaptureTime::from_micros((1 << 32) - 10)
        );
    }
}
