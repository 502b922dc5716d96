//! How long the UI thread works per frame: eframe's own figure (the app's `ui` plus tessellation
//! and painting, without waiting for vsync), kept for the last frames and summarised in the
//! statistics window and, every 30 s during a call, in the log (which is how the figures in
//! ARCHITECTURE.md were read).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Frames kept for the summary.
const KEPT: usize = 600;
/// How often a call logs the summary.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// Median and 95th percentile of the UI thread's time per frame, ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameTime {
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// Frames summarised.
    pub frames: usize,
}

/// The recent frames' times.
#[derive(Debug)]
pub struct UiTiming {
    recent: VecDeque<f64>,
    last_log: Instant,
}

impl Default for UiTiming {
    fn default() -> Self {
        Self {
            recent: VecDeque::with_capacity(KEPT),
            last_log: Instant::now(),
        }
    }
}

impl UiTiming {
    /// Records the previous frame's time (`None` on the first frame).
    pub fn record(&mut self, seconds: Option<f32>) {
        let Some(s) = seconds.filter(|s| s.is_finite() && *s >= 0.0) else {
            return;
        };
        if self.recent.len() == KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back(f64::from(s) * 1000.0);
    }

    /// The summary of the recent frames.
    pub fn summary(&self) -> Option<FrameTime> {
        if self.recent.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = self.recent.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Some(FrameTime {
            p50_ms: at(0.5),
            p95_ms: at(0.95),
            frames: v.len(),
        })
    }

    /// Logs the summary when it is due (`what` says what the window showed).
    pub fn log_if_due(&mut self, what: &str) {
        if self.last_log.elapsed() < LOG_EVERY {
            return;
        }
        self.last_log = Instant::now();
        if let Some(t) = self.summary() {
            tracing::info!(
                "ui thread per frame over the last {} frames ({what}): p50 {:.2} ms, p95 {:.2} ms",
                t.frames,
                t.p50_ms,
                t.p95_ms
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_the_median_and_95th_percentile_of_the_kept_frames() {
        let mut t = UiTiming::default();
        assert_eq!(t.summary(), None);
        t.record(None);
        t.record(Some(f32::NAN));
        for ms in 1..=100 {
            t.record(Some(ms as f32 / 1000.0));
        }
        let s = t.summary().unwrap_or_else(|| unreachable!());
        assert_eq!(s.frames, 100);
        assert!((s.p50_ms - 51.0).abs() < 0.01, "{s:?}");
        assert!((s.p95_ms - 95.0).abs() < 0.01, "{s:?}");
        for _ in 0..KEPT {
            t.record(Some(0.002));
        }
        let s = t.summary().unwrap_or_else(|| unreachable!());
        assert_eq!(s.frames, KEPT);
        assert!(
            (s.p95_ms - 2.0).abs() < 0.01,
            "older frames are forgotten: {s:?}"
        );
    }
}
