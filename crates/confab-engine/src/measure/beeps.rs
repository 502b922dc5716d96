//! [`BeepProbe`]: beeps of the synthetic audio detected at capture (what a sender sent) and at
//! playout (what a receiver heard), with their times on the shared media clock.

use std::sync::Mutex;
use std::time::Instant;

use crate::MediaProbe;
use crate::media::synthetic_audio::{BeepDetector, SyntheticAudioConfig};
use crate::media::{AudioFrame, CaptureTime};

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

    /// Beeps captured (sent) from `from` up to `to`.
    #[must_use]
    pub fn beeps_captured_between(&self, from: CaptureTime, to: CaptureTime) -> usize {
        self.state
            .lock()
            .map(|s| {
                s.captured
                    .iter()
                    .filter(|t| **t >= from && **t <= to)
                    .count()
            })
            .unwrap_or(0)
    }

    /// When the first beep at or after `t` was heard at playout.
    #[must_use]
    pub fn first_played_after(&self, t: CaptureTime) -> Option<CaptureTime> {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.played.iter().find(|p| **p >= t).copied())
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

#[cfg(test)]
#[path = "beeps_tests.rs"]
mod tests;
