//! [`VideoAnalyzer`]: what the decoded pictures of one sender show. Counts and the marker
//! checks happen as pictures arrive; the decode time of every picture is kept (8 bytes each), so
//! windowed figures (frozen time, per-second frame rate, the first picture after an outage) are
//! computed afterwards over whatever window the caller names, on the same media clock.

use std::time::{Duration, Instant};

use crate::media::synthetic_video::read_marker;
use crate::media::{CaptureTime, I420Frame};

/// A freeze is a gap between decoded pictures longer than this.
pub const FREEZE_THRESHOLD: Duration = Duration::from_millis(500);

/// Analyzes the decoded pictures of one sender.
#[derive(Debug, Default)]
pub struct VideoAnalyzer {
    /// Pictures decoded.
    pub frames: u64,
    /// Pictures whose marker could not be read or failed its checksum.
    pub corrupt: u64,
    /// Pictures whose frame number was not above the previous one.
    pub out_of_order: u64,
    /// Frame numbers skipped (sent but never decoded, or skipped by the encoder).
    pub skipped: u64,
    /// Capture→decoded latency of each picture, ms.
    pub latencies_ms: Vec<f64>,
    /// Gaps over [`FREEZE_THRESHOLD`].
    pub freezes: u64,
    /// Longest gap between pictures, ms (after the first picture).
    pub longest_gap_ms: f64,
    /// When the first picture was decoded.
    pub first_at: Option<Instant>,
    /// When the last picture was decoded.
    pub last_at: Option<Instant>,
    /// Size of the last picture.
    pub resolution: Option<(u32, u32)>,
    /// Times the decoded picture size changed.
    pub resolution_changes: u64,
    last_number: Option<u32>,
    last_decoded: Option<CaptureTime>,
    decode_times: Vec<CaptureTime>,
    /// When each entry of `latencies_ms` was decoded.
    latency_times: Vec<CaptureTime>,
}

impl VideoAnalyzer {
    /// Takes one decoded picture. `markers` is false for sources without a marker (a file, a
    /// browser camera): then only timing and counts are kept.
    pub fn push(&mut self, frame: &I420Frame, decoded_at: CaptureTime, markers: bool) {
        self.frames += 1;
        let now = Instant::now();
        self.first_at.get_or_insert(now);
        self.last_at = Some(now);
        let size = (frame.width(), frame.height());
        if self.resolution.is_some_and(|r| r != size) {
            self.resolution_changes += 1;
        }
        self.resolution = Some(size);
        self.decode_times.push(decoded_at);
        if let Some(prev) = self.last_decoded {
            let gap = decoded_at.saturating_since(prev).as_secs_f64() * 1000.0;
            self.longest_gap_ms = self.longest_gap_ms.max(gap);
            if gap > FREEZE_THRESHOLD.as_secs_f64() * 1000.0 {
                self.freezes += 1;
            }
        }
        self.last_decoded = Some(decoded_at);
        if !markers {
            return;
        }
        match read_marker(frame) {
            Ok(marker) => {
                if let Some(last) = self.last_number {
                    if marker.frame_number <= last {
                        self.out_of_order += 1;
                    } else {
                        self.skipped += u64::from(marker.frame_number - last - 1);
                    }
                }
                self.last_number = Some(marker.frame_number);
                let captured = marker.capture_time_near(decoded_at);
                self.latencies_ms
                    .push(decoded_at.saturating_since(captured).as_secs_f64() * 1000.0);
                self.latency_times.push(decoded_at);
            }
            Err(_) => self.corrupt += 1,
        }
    }

    /// The latencies (ms) of the pictures decoded at or after `from`.
    #[must_use]
    pub fn latencies_since(&self, from: CaptureTime) -> Vec<f64> {
        self.latency_times
            .iter()
            .zip(&self.latencies_ms)
            .filter(|(t, _)| **t >= from)
            .map(|(_, ms)| *ms)
            .collect()
    }

    /// Seconds from the first to the last decoded picture (`None` before two distinct times).
    pub fn span_seconds(&self) -> Option<f64> {
        match (self.first_at, self.last_at) {
            (Some(a), Some(b)) if b > a => Some(b.duration_since(a).as_secs_f64()),
            _ => None,
        }
    }

    /// When each picture was decoded, in arrival order.
    #[must_use]
    pub fn decode_times(&self) -> &[CaptureTime] {
        &self.decode_times
    }

    /// Milliseconds of `from..to` with no new picture for more than three `frame_interval`s:
    /// every gap between pictures longer than that counts whole (clipped to the window),
    /// including a gap still open at `to`. A window that starts before the first picture counts
    /// the wait for it like any other gap (the window starts once the call is connected, so a
    /// first picture seconds later is a freeze the user sees); with no picture at all by `to`,
    /// the whole window is frozen.
    #[must_use]
    pub fn frozen_ms(&self, from: CaptureTime, to: CaptureTime, frame_interval: Duration) -> f64 {
        let limit = frame_interval * 3;
        if self.decode_times.first().is_none_or(|first| *first > to) {
            return to.saturating_since(from).as_secs_f64() * 1000.0;
        }
        let mut prev = self
            .decode_times
            .iter()
            .rev()
            .find(|t| **t <= from)
            .copied()
            .or(Some(from));
        let mut frozen = Duration::ZERO;
        let mut gap = |a: CaptureTime, b: CaptureTime| {
            if b.saturating_since(a) > limit {
                frozen += b.min(to).saturating_since(a.max(from));
            }
        };
        for t in self.decode_times.iter().filter(|t| **t > from && **t <= to) {
            if let Some(p) = prev {
                gap(p, *t);
            }
            prev = Some(*t);
        }
        if let Some(p) = prev {
            gap(p, to);
        }
        frozen.as_secs_f64() * 1000.0
    }

    /// Pictures decoded in each whole second of `from..to` (a last partial second left out).
    #[must_use]
    pub fn fps_per_second(&self, from: CaptureTime, to: CaptureTime) -> Vec<u32> {
        let seconds = to.saturating_since(from).as_secs() as usize;
        let mut bins = vec![0u32; seconds];
        for t in &self.decode_times {
            if *t < from {
                continue;
            }
            let i = t.saturating_since(from).as_secs() as usize;
            if let Some(b) = bins.get_mut(i) {
                *b += 1;
            }
        }
        bins
    }

    /// The 10th percentile of [`VideoAnalyzer::fps_per_second`] (the worst seconds); `None`
    /// for a window shorter than a second.
    #[must_use]
    pub fn fps_p10(&self, from: CaptureTime, to: CaptureTime) -> Option<f64> {
        let mut v: Vec<f64> = self
            .fps_per_second(from, to)
            .into_iter()
            .map(f64::from)
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(super::nearest_rank(&v, 0.10))
    }

    /// The first picture decoded at or after `t`.
    #[must_use]
    pub fn first_decoded_after(&self, t: CaptureTime) -> Option<CaptureTime> {
        self.decode_times.iter().find(|d| **d >= t).copied()
    }

    /// Frames per second between the first and last decoded picture.
    pub fn fps(&self) -> f64 {
        match self.span_seconds() {
            Some(span) if self.frames > 1 => (self.frames - 1) as f64 / span,
            _ => 0.0,
        }
    }
}

#[cfg(test)]
#[path = "video_tests.rs"]
mod tests;
