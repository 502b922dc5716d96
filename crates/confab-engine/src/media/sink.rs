//! Where mixed remote audio goes: the [`AudioSink`] trait the playout clock calls every 20 ms,
//! and [`NullSink`] for headless runs. The app's speaker (`devices::speaker`) is the real one.

/// Plays mixed remote audio (speaker, or a null sink when headless).
pub trait AudioSink: Send {
    /// Plays 20 ms of 48 kHz mono audio. Must not block for long: it runs on the playout clock.
    fn play(&mut self, samples: &[f32]);

    /// How long audio handed to [`AudioSink::play`] now takes to reach the loudspeaker (queued
    /// audio plus the device buffer); the echo canceller's delay hint. Zero when unknown.
    fn output_delay(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// A sink that discards audio (no sound card, or headless runs).
#[derive(Debug, Default)]
pub struct NullSink;

impl AudioSink for NullSink {
    fn play(&mut self, _samples: &[f32]) {}
}
