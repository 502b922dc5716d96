//! Camera frames of one known picture (colour bars over a grey ramp) in every format the camera
//! path decodes, shared by `tests/camera_decode.rs` and `benches/camera_decode.rs`. The raw
//! layouts (YUYV, NV12) are written out by hand from BT.601, not made by the code under test, so
//! they are an independent check of it; MJPEG comes from `jpeg-encoder`, as a webcam's would.
#![allow(dead_code, reason = "each includer uses a part")]
#![allow(clippy::unwrap_used, reason = "fixtures: a panic is the test failing")]

use confab_engine::testing::devices::{PixelFormat, raw_frame_len};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

/// The fixed seed of [`noisy_picture`]'s noise (xorshift32), so every run decodes the same bytes.
pub const NOISE_SEED: u32 = 0x9e37_79b9;

/// The eight SMPTE-style bars across the top half.
pub const BARS: [[u8; 3]; 8] = [
    [235, 235, 235],
    [235, 235, 16],
    [16, 235, 235],
    [16, 235, 16],
    [235, 16, 235],
    [235, 16, 16],
    [16, 16, 235],
    [16, 16, 16],
];

/// Packed RGB: eight vertical bars over the top half, a horizontal grey ramp below.
pub fn picture(width: u32, height: u32) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            let px = if y < height / 2 {
                BARS[(x * 8 / width) as usize]
            } else {
                let g = (x * 255 / (width - 1)) as u8;
                [g, g, g]
            };
            rgb.extend_from_slice(&px);
        }
    }
    rgb
}

/// BT.601 limited-range Y, Cb, Cr of one RGB pixel, written out here rather than taken from the
/// library under test, so the raw frames below are an independent check of the decode path.
pub fn ycbcr(p: &[u8]) -> [f64; 3] {
    let (r, g, b) = (f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
    [
        16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0,
        128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0,
        128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0,
    ]
}

pub fn to_u8(v: f64) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// A YUYV (4:2:2) frame of the picture, chroma averaged over each pixel pair.
pub fn yuyv_frame(width: u32, height: u32) -> Vec<u8> {
    let rgb = picture(width, height);
    let mut out = Vec::with_capacity(raw_frame_len(PixelFormat::Yuyv, width, height));
    for row in rgb.chunks_exact(width as usize * 3) {
        for pair in row.chunks_exact(6) {
            let a = ycbcr(&pair[..3]);
            let b = ycbcr(&pair[3..]);
            out.extend_from_slice(&[
                to_u8(a[0]),
                to_u8((a[1] + b[1]) / 2.0),
                to_u8(b[0]),
                to_u8((a[2] + b[2]) / 2.0),
            ]);
        }
    }
    out
}

/// An NV12 (4:2:0) frame of the picture, chroma averaged over each 2x2 block.
pub fn nv12_frame(width: u32, height: u32) -> Vec<u8> {
    let rgb = picture(width, height);
    let (w, h) = (width as usize, height as usize);
    let at = |x: usize, y: usize| ycbcr(&rgb[(y * w + x) * 3..(y * w + x) * 3 + 3]);
    let mut out: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .map(|(x, y)| to_u8(at(x, y)[0]))
        .collect();
    for y in (0..h).step_by(2) {
        for x in (0..w).step_by(2) {
            let block = [at(x, y), at(x + 1, y), at(x, y + 1), at(x + 1, y + 1)];
            let mean = |c: usize| block.iter().map(|p| p[c]).sum::<f64>() / 4.0;
            out.push(to_u8(mean(1)));
            out.push(to_u8(mean(2)));
        }
    }
    out
}

/// A webcam-like MJPEG frame: baseline JPEG, 4:2:2, quality 85.
pub fn mjpeg_frame(width: u32, height: u32) -> Vec<u8> {
    let mut jpeg = Vec::new();
    let mut encoder = Encoder::new(&mut jpeg, 85);
    encoder.set_sampling_factor(SamplingFactor::R_4_2_2);
    encoder
        .encode(
            &picture(width, height),
            width as u16,
            height as u16,
            ColorType::Rgb,
        )
        .unwrap();
    jpeg
}

/// [`picture`] with sensor-like noise (±12 per channel, from [`NOISE_SEED`]): a real camera
/// picture has it, and it makes the JPEG several times bigger and slower to decode than the clean
/// picture's.
pub fn noisy_picture(width: u32, height: u32) -> Vec<u8> {
    let mut noisy = picture(width, height);
    let mut seed = NOISE_SEED;
    for v in &mut noisy {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        *v = v.saturating_add((seed % 24) as u8).saturating_sub(12);
    }
    noisy
}

/// [`noisy_picture`] as a webcam's MJPEG frame (baseline, 4:2:2, quality 85).
pub fn noisy_mjpeg_frame(width: u32, height: u32) -> Vec<u8> {
    let mut jpeg = Vec::new();
    let mut encoder = Encoder::new(&mut jpeg, 85);
    encoder.set_sampling_factor(SamplingFactor::R_4_2_2);
    encoder
        .encode(
            &noisy_picture(width, height),
            width as u16,
            height as u16,
            ColorType::Rgb,
        )
        .unwrap();
    jpeg
}
