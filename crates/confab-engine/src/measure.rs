//! Call-quality measurement from the media itself, used by `confab loopback` and `confab join`.
//!
//! - [`VideoAnalyzer`]: reads the frame marker (frame number + capture time) from every decoded
//!   picture of one sender: capture→decoded latency, corrupt pictures, repeats or reordering,
//!   freezes.
//! - [`BeepProbe`]: a [`MediaProbe`] that detects the synthetic audio's beeps on the way out (at
//!   capture) and on the way in (at playout); pairing them gives mouth-to-ear latency.
//! - [`ProcessMeter`]: this process's CPU time and peak memory (Linux `/proc`; zero elsewhere).
//!
//! Everything here compares [`CaptureTime`]s, which only works when sender and receiver share a
//! clock (one process). For a remote sender, latency is not measurable and is reported as absent.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::MediaProbe;
use crate::media::synthetic_audio::{BeepDetector, SyntheticAudioConfig};
use crate::media::synthetic_video::read_marker;
use crate::media::{AudioFrame, CaptureTime, I420Frame};

/// A freeze is a gap between decoded pictures longer than this.
pub const FREEZE_THRESHOLD: Duration = Duration::from_millis(500);

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
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Some(Self {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: v[v.len() - 1],
        })
    }
}

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
    last_number: Option<u32>,
    last_decoded: Option<CaptureTime>,
}

impl VideoAnalyzer {
    /// Takes one decoded picture. `markers` is false for sources without a marker (a file, a
    /// browser camera): then only timing and counts are kept.
    pub fn push(&mut self, frame: &I420Frame, decoded_at: CaptureTime, markers: bool) {
        self.frames += 1;
        let now = Instant::now();
        self.first_at.get_or_insert(now);
        self.last_at = Some(now);
        self.resolution = Some((frame.width(), frame.height()));
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
            }
            Err(_) => self.corrupt += 1,
        }
    }

    /// Seconds from the first to the last decoded picture (`None` before two distinct times).
    pub fn span_seconds(&self) -> Option<f64> {
        match (self.first_at, self.last_at) {
            (Some(a), Some(b)) if b > a => Some(b.duration_since(a).as_secs_f64()),
            _ => None,
        }
    }

    /// Frames per second between the first and last decoded picture.
    pub fn fps(&self) -> f64 {
        match self.span_seconds() {
            Some(span) if self.frames > 1 => (self.frames - 1) as f64 / span,
            _ => 0.0,
        }
    }
}

#[derive(Debug)]
struct BeepState {
    captured_detector: BeepDetector,
    played_detector: BeepDetector,
    captured: Vec<CaptureTime>,
    played: Vec<CaptureTime>,
    first_decoded_audio: Option<Instant>,
}

/// Detects beeps at capture and at playout; see the module docs.
#[derive(Debug)]
pub struct BeepProbe {
    state: Mutex<BeepState>,
}

impl Default for BeepProbe {
    fn default() -> Self {
        let amplitude = SyntheticAudioConfig::default().beep_amplitude;
        Self {
            state: Mutex::new(BeepState {
                captured_detector: BeepDetector::new(amplitude),
                played_detector: BeepDetector::new(amplitude),
                captured: Vec::new(),
                played: Vec::new(),
                first_decoded_audio: None,
            }),
        }
    }
}

impl MediaProbe for BeepProbe {
    fn audio_captured(&self, frame: &AudioFrame) {
        if let Ok(mut s) = self.state.lock() {
            let events = s.captured_detector.push_frame(frame);
            s.captured.extend(events.into_iter().map(|e| e.time));
        }
    }

    fn audio_played(&self, samples: &[f32], at: CaptureTime, decoded: bool) {
        if let Ok(mut s) = self.state.lock() {
            if decoded {
                s.first_decoded_audio.get_or_insert_with(Instant::now);
            }
            let frame = AudioFrame {
                samples: samples.to_vec(),
                capture_time: at,
            };
            let events = s.played_detector.push_frame(&frame);
            s.played.extend(events.into_iter().map(|e| e.time));
        }
    }
}

impl BeepProbe {
    /// When audio first played that was decoded from the network.
    pub fn first_decoded_audio(&self) -> Option<Instant> {
        self.state.lock().ok().and_then(|s| s.first_decoded_audio)
    }

    /// Beeps heard at playout.
    pub fn beeps_played(&self) -> usize {
        self.state.lock().map(|s| s.played.len()).unwrap_or(0)
    }

    /// Mouth-to-ear latencies (ms) of beeps captured by `sender` and played here: each played
    /// beep is paired with the latest captured beep before it, within one beep period.
    pub fn latencies_from(&self, sender: &BeepProbe) -> Vec<f64> {
        let period_ms = f64::from(SyntheticAudioConfig::default().beep_period_ms);
        let captured = sender
            .state
            .lock()
            .map(|s| s.captured.clone())
            .unwrap_or_default();
        let played = self
            .state
            .lock()
            .map(|s| s.played.clone())
            .unwrap_or_default();
        played
            .iter()
            .filter_map(|p| {
                captured
                    .iter()
                    .rev()
                    .find(|c| *c <= p)
                    .map(|c| p.saturating_since(*c).as_secs_f64() * 1000.0)
                    .filter(|ms| *ms < period_ms)
            })
            .collect()
    }
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
