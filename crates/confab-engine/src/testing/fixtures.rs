//! Media fixtures written by tests into a temporary directory: a Y4M clip rendered from the
//! synthetic pattern (so its frames carry markers) and a WAV tone. The same files could feed
//! Confab and another system in a side-by-side benchmark.
#![allow(
    clippy::unwrap_used,
    reason = "test fixtures: a failure to write one is the test failing"
)]

use std::path::{Path, PathBuf};

use crate::media::CaptureTime;
use crate::media::synthetic_video::SyntheticVideo;
use crate::media::wav::write_wav;
use crate::media::y4m::Y4mWriter;

/// A fresh directory `$TMP/confab-{tag}-{pid}`.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("confab-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `frames` pictures of the test pattern at `w`x`h`, 15 fps.
pub fn write_clip(path: &Path, w: u32, h: u32, frames: u32) {
    let pattern = SyntheticVideo::new(w, h, 15).unwrap();
    let mut writer = Y4mWriter::create(path, w, h, 15).unwrap();
    for n in 0..frames {
        writer
            .write_frame(&pattern.render(n, CaptureTime::from_micros(u64::from(n) * 66_666)))
            .unwrap();
    }
    writer.finish().unwrap();
}

/// One second of a 440 Hz tone at 48 kHz.
pub fn write_tone(path: &Path) {
    let samples: Vec<f32> = (0..48_000)
        .map(|i| 0.3 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 48_000.0).sin())
        .collect();
    write_wav(path, &samples).unwrap();
}
