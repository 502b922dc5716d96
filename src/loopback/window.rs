//! The measured stretch of a loopback call and the report figures computed over it: frozen
//! time, the worst seconds' frame rate, beeps sent, the per-second bandwidth estimate, the
//! resilience counters from the receiver's statistics, and recovery after outages.
//!
//! Contract: pure computation over what the two sides recorded; the window is from both peers
//! connected (`from`, `start`) to the cameras stopping (`to`), on the media clock the pictures
//! and beeps are timed with.

use std::time::{Duration, Instant};

use confab_engine::ParticipantStats;
use confab_engine::measure::{BeepProbe, Percentiles, VideoAnalyzer};
use confab_engine::media::CaptureTime;

use super::report::{Direction, Recovery};

/// How long a call is given to adapt to its network before `latency_after_adaptation_ms` counts.
pub(super) const ADAPTATION: Duration = Duration::from_secs(5);

/// The measured call, on both clocks.
pub(super) struct CallWindow {
    /// When the call started (both connected), on the `Instant` clock of statistics reports.
    pub(super) start: Instant,
    /// The same moment on the media clock.
    pub(super) from: CaptureTime,
    /// When the cameras were stopped.
    pub(super) to: CaptureTime,
    /// Beeps sent up to here count as sent (audio goes on a little after the cameras stop).
    pub(super) beeps_until: CaptureTime,
    /// One frame at the configured rate.
    pub(super) frame_interval: Duration,
    /// When each outage of the simulated network ended.
    pub(super) paths_back: Vec<CaptureTime>,
}

impl CallWindow {
    /// The windowed figures of one direction (the other fields left at their defaults).
    pub(super) fn figures(
        &self,
        video: &VideoAnalyzer,
        sender: &BeepProbe,
        receiver: &BeepProbe,
        rx: &ParticipantStats,
        sender_stats: &[(Instant, ParticipantStats)],
    ) -> Direction {
        let length_ms = self.to.saturating_since(self.from).as_secs_f64() * 1000.0;
        let frozen = video.frozen_ms(self.from, self.to, self.frame_interval);
        Direction {
            frozen_ms_total: frozen,
            freeze_ratio: if length_ms > 0.0 {
                frozen / length_ms
            } else {
                0.0
            },
            fps_p10: video.fps_p10(self.from, self.to),
            latency_after_adaptation_ms: Percentiles::of(
                &video.latencies_since(self.from.plus(ADAPTATION)),
            ),
            resolution_changes: video.resolution_changes,
            retransmitted_packets: rx.retransmitted_packets_received,
            fec_recovered: rx.fec_recovered_packets,
            audio_concealed_ms: rx.audio_concealed_ms,
            audio_concealed_ratio: if rx.audio_played_ms > 0.0 {
                rx.audio_concealed_ms / rx.audio_played_ms
            } else {
                0.0
            },
            beeps_sent: sender.beeps_captured_between(self.from, self.beeps_until),
            bandwidth_estimate_kbps_per_second: self
                .per_second(sender_stats, |s| s.bandwidth_estimate_kbps),
            recovery_ms: self.recovery(video, receiver),
            ..Direction::default()
        }
    }

    /// One value per second of the call (its length rounded to whole seconds): the last report
    /// in that second, or the value before it when a second had none (0 before the first).
    fn per_second(
        &self,
        history: &[(Instant, ParticipantStats)],
        value: impl Fn(&ParticipantStats) -> f64,
    ) -> Vec<f64> {
        let seconds = self.to.saturating_since(self.from).as_secs_f64().round() as u32;
        let mut out = Vec::with_capacity(seconds as usize);
        let mut last = history
            .iter()
            .rev()
            .find(|(at, _)| *at < self.start)
            .map_or(0.0, |(_, s)| value(s));
        for k in 0..seconds {
            let from = self.start + Duration::from_secs(u64::from(k));
            let to = from + Duration::from_secs(1);
            if let Some((_, s)) = history.iter().rev().find(|(at, _)| *at >= from && *at < to) {
                last = value(s);
            }
            out.push(last);
        }
        out
    }

    /// The slowest recovery over the outages that ended within the call, `None` without any.
    fn recovery(&self, video: &VideoAnalyzer, receiver: &BeepProbe) -> Option<Recovery> {
        let backs: Vec<CaptureTime> = self
            .paths_back
            .iter()
            .copied()
            .filter(|b| *b < self.to)
            .collect();
        if backs.is_empty() {
            return None;
        }
        let mut worst = Recovery {
            video: Some(0.0),
            audio: Some(0.0),
        };
        let since = |back: CaptureTime, t: Option<CaptureTime>| {
            t.map(|t| t.saturating_since(back).as_secs_f64() * 1000.0)
        };
        for back in &backs {
            let v = since(*back, video.first_decoded_after(*back));
            let a = since(*back, receiver.first_played_after(*back));
            worst.video = worst.video.zip(v).map(|(w, v)| w.max(v));
            worst.audio = worst.audio.zip(a).map(|(w, a)| w.max(a));
        }
        Some(worst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_estimate_per_second_carrying_the_last_one_over_gaps() {
        let start = Instant::now();
        let w = CallWindow {
            start,
            from: CaptureTime(0),
            to: CaptureTime(4_500_000),
            beeps_until: CaptureTime(4_500_000),
            frame_interval: Duration::from_millis(33),
            paths_back: Vec::new(),
        };
        let report = |ms: u64, kbps: f64| {
            (
                start + Duration::from_millis(ms),
                ParticipantStats {
                    bandwidth_estimate_kbps: kbps,
                    ..ParticipantStats::default()
                },
            )
        };
        let history = [
            report(0, 900.0),
            report(400, 1000.0),
            report(1400, 1200.0),
            report(3100, 800.0),
        ];
        let v = w.per_second(&history, |s| s.bandwidth_estimate_kbps);
        assert_eq!(v, [1000.0, 1200.0, 1200.0, 800.0, 800.0]);
        assert!(
            w.recovery(&VideoAnalyzer::default(), &BeepProbe::default())
                .is_none()
        );
    }
}
