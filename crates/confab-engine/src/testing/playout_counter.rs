//! A [`MediaProbe`] that counts the decoded audio an engine's playout thread plays, so that a
//! test can wait for "this much of the other side's audio has been played" instead of sleeping.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::MediaProbe;
use crate::media::CaptureTime;

/// Counts decoded (not concealed, not silent-for-lack-of-data) samples handed to the speaker.
#[derive(Debug, Default)]
pub struct PlayoutCounter {
    samples: Mutex<u64>,
    played: Condvar,
}

impl PlayoutCounter {
    /// Decoded samples played so far (48 kHz mono).
    #[must_use]
    pub fn samples(&self) -> u64 {
        *self.samples.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `more` decoded audio has been played after `since` samples (a value of
    /// [`samples`](Self::samples)). Returns false after `timeout`.
    #[must_use]
    pub fn wait_for(&self, since: u64, more: Duration, timeout: Duration) -> bool {
        let target = since + (more.as_secs_f64() * 48_000.0) as u64;
        let deadline = Instant::now() + timeout;
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        while *samples < target {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            samples = self
                .played
                .wait_timeout(samples, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

impl MediaProbe for PlayoutCounter {
    fn audio_played(&self, samples: &[f32], _at: CaptureTime, decoded: bool) {
        if decoded {
            *self.samples.lock().unwrap_or_else(PoisonError::into_inner) += samples.len() as u64;
            self.played.notify_all();
        }
    }
}
