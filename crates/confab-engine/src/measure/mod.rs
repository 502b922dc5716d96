//! Call-quality measurement from the media itself, used by `confab loopback` and `confab join`.
//!
//! - [`VideoAnalyzer`] (`video.rs`): reads the frame marker (frame number + capture time) from
//!   every decoded picture of one sender: capture→decoded latency, corrupt pictures, repeats or
//!   reordering, freezes, and from the decode times kept, frozen time, per-second frame rate and
//!   recovery after an outage over any window of the call.
//! - [`BeepProbe`] (`beeps.rs`): a [`crate::MediaProbe`] that detects the synthetic audio's beeps
//!   on the way out (at capture) and on the way in (at playout); pairing them gives mouth-to-ear
//!   latency, counting them gives beeps sent and heard.
//! - [`ProcessMeter`]: this process's CPU time and peak memory (Linux `/proc`; zero elsewhere).
//!
//! Everything here compares [`CaptureTime`]s, which only works when sender and receiver share a
//! clock (one process). For a remote sender, latency is not measurable and is reported as absent.

use std::time::{Duration, Instant};

use serde::Serialize;

mod beeps;
mod video;

pub use beeps::BeepProbe;
pub use video::{FREEZE_THRESHOLD, VideoAnalyzer};

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of `samples_ms`; `None` when empty.
    pub fn of(samples_ms: &[f64]) -> Option<Self> {
        if samples_ms.is_empty() {
            return None;
        }
        let mut v = samples_ms.to_vec();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| nearest_rank(&v, q);
        Some(Self {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: v[v.len() - 1],
        })
    }
}

/// The `q` quantile (0..=1) of sorted, non-empty `v`, by rounding to the nearest rank.
fn nearest_rank(v: &[f64], q: f64) -> f64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// CPU and memory of this process.
#[derive(Debug, Clone, Copy)]
pub struct ProcessMeter {
    started: Instant,
    cpu_at_start: Duration,
}

impl ProcessMeter {
    /// Starts measuring now.
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
            cpu_at_start: process_cpu_time(),
        }
    }

    /// CPU time used since [`ProcessMeter::start`] as a percentage of one core's wall time.
    pub fn cpu_percent_of_one_core(&self) -> f64 {
        let wall = self.started.elapsed().as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        process_cpu_time()
            .saturating_sub(self.cpu_at_start)
            .as_secs_f64()
            / wall
            * 100.0
    }

    /// Peak resident memory of the process so far, MiB.
    pub fn peak_rss_mb() -> f64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

/// User + system CPU time of this process (from `/proc/self/stat`; zero where unavailable).
fn process_cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Linux reports in clock ticks of 1/100 s (USER_HZ is 100 on every mainstream platform).
    let total = ticks(11) + ticks(12);
    Duration::from_millis(total * 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(&v).unwrap_or_default();
        assert_eq!(p.p50, 51.0);
        assert_eq!(p.p99, 99.0);
        assert_eq!(p.max, 100.0);
        assert!(Percentiles::of(&[]).is_none());
    }

    #[test]
    fn cpu_time_is_readable_on_linux() {
        let meter = ProcessMeter::start();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        if cfg!(target_os = "linux") {
            assert!(meter.cpu_percent_of_one_core() > 0.0);
            assert!(ProcessMeter::peak_rss_mb() > 1.0);
        }
    }
}
