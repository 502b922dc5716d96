//! The cross-thread side of the capture-path audio processing: what the UI, the engine and the
//! playout thread hold while an [`AudioProcessor`] runs on the capture thread.
//!
//! Owns [`ProcessingSettings`] (which stages run; persisted by the app), [`ProcessingStats`]
//! (the figures the processor publishes), the echo-reference [`RenderFeed`] (the playout mix
//! into the processor's bounded drop-oldest queue) and [`ProcessingControl`] (settings, the
//! delay hint and statistics), plus the atomics they share with the processor.
//!
//! Contract: nothing here locks or blocks. Settings, the delay hint and the published
//! statistics are atomics the capture thread reads before, and writes after, each 10 ms frame;
//! [`RenderFeed::push`] copies into fixed-size frames and never waits (the oldest queued frame
//! is dropped and counted when the capture side lags). See the parent module for the threading
//! diagram and the processing contract.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::super::drop_oldest::{DropCounter, DropOldestSender, SendOutcome};
use super::{
    AudioProcessingError, MAX_STREAM_DELAY_MS, PROCESSING_FRAME_SAMPLES, RenderFrame, check_len,
    sanitize_into,
};
#[cfg(doc)]
use super::{AudioProcessor, RENDER_QUEUE_FRAMES, RESYNC_BACKLOG_FRAMES};

/// Which capture-path stages run. Persisted in the app settings; each can be toggled in a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessingSettings {
    /// Acoustic echo cancellation (AEC3) against the playout mix.
    pub echo_cancellation: bool,
    /// Stationary noise suppression.
    pub noise_suppression: bool,
    /// Automatic gain control (AGC2 adaptive digital gain).
    pub auto_gain: bool,
}

impl Default for ProcessingSettings {
    fn default() -> Self {
        Self {
            echo_cancellation: true,
            noise_suppression: true,
            auto_gain: true,
        }
    }
}

impl ProcessingSettings {
    /// Every stage off: the processor passes audio through unchanged.
    pub const OFF: Self = Self {
        echo_cancellation: false,
        noise_suppression: false,
        auto_gain: false,
    };

    /// True when at least one stage runs.
    #[must_use]
    pub const fn any(self) -> bool {
        self.echo_cancellation || self.noise_suppression || self.auto_gain
    }

    pub(super) const fn to_bits(self) -> u8 {
        (self.echo_cancellation as u8)
            | ((self.noise_suppression as u8) << 1)
            | ((self.auto_gain as u8) << 2)
    }

    pub(super) const fn from_bits(bits: u8) -> Self {
        Self {
            echo_cancellation: bits & 1 != 0,
            noise_suppression: bits & 2 != 0,
            auto_gain: bits & 4 != 0,
        }
    }
}

/// Figures from the processor, for the stats panel and the loopback/join reports.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProcessingStats {
    /// The stages running now.
    pub settings: ProcessingSettings,
    /// AEC3's echo return loss enhancement estimate, dB (`None` with AEC off or before any frame).
    ///
    /// This is the ERLE of AEC3's *linear* filter alone (its residual-echo suppressor comes on
    /// top), updated only while that filter counts as converged on far-end sound loud and broad
    /// enough. Until then it stays at AEC3's floor, 0.18 dB (the image of its minimum ERLE, 1.0,
    /// through its fast log2 approximation), and it goes back there whenever AEC3 resets. A
    /// narrow-band far end, such as a steady tone, keeps it there even when the echo is removed.
    pub erle_db: Option<f64>,
    /// AEC3's echo return loss estimate (far end to microphone), dB.
    pub erl_db: Option<f64>,
    /// AEC3's current render-to-capture delay estimate, ms.
    pub aec_delay_ms: Option<i32>,
    /// The delay hint last given with `set_stream_delay_ms`.
    pub stream_delay_hint_ms: Option<u32>,
    /// 10 ms capture frames processed (bypassed ones included).
    pub frames: u64,
    /// Mean processing time per 10 ms capture frame (including the analysis of the render frames
    /// drained from the [`RenderFeed`] before it), microseconds, over the last completed second
    /// (or since the start during the first second).
    pub processing_time_mean_us: f64,
    /// Longest processing time of one 10 ms frame in the same window, microseconds.
    pub processing_time_max_us: f64,
    /// Render frames dropped because the capture side did not consume them in time: the queue's
    /// overflow, and backlogs discarded because the capture side lost audio (see
    /// [`RESYNC_BACKLOG_FRAMES`]).
    pub render_frames_dropped: u64,
}

/// State shared by the processor, its control handles and its render feeds. Only atomics.
#[derive(Debug)]
pub(super) struct Shared {
    /// Requested [`ProcessingSettings`] bits.
    pub(super) requested: AtomicU8,
    /// Requested delay hint, `u32::MAX` for none.
    pub(super) delay_hint_ms: AtomicU32,
    // Published by the capture thread after each frame.
    applied: AtomicU8,
    /// `f64` bits; NaN for none.
    erle_db: AtomicU64,
    /// `f64` bits; NaN for none.
    erl_db: AtomicU64,
    /// `i64::MIN` for none.
    aec_delay_ms: AtomicI64,
    frames: AtomicU64,
    /// `f64` bits.
    time_mean_us: AtomicU64,
    /// `f64` bits.
    time_max_us: AtomicU64,
    /// Render frames the capture side discarded after it lost audio.
    render_discarded: AtomicU64,
}

const NO_DELAY_HINT: u32 = u32::MAX;

fn store_f64(cell: &AtomicU64, value: Option<f64>) {
    cell.store(value.unwrap_or(f64::NAN).to_bits(), Ordering::Relaxed);
}

fn load_f64(cell: &AtomicU64) -> Option<f64> {
    let v = f64::from_bits(cell.load(Ordering::Relaxed));
    (!v.is_nan()).then_some(v)
}

impl Shared {
    pub(super) fn new(settings: ProcessingSettings) -> Self {
        Self {
            requested: AtomicU8::new(settings.to_bits()),
            delay_hint_ms: AtomicU32::new(NO_DELAY_HINT),
            applied: AtomicU8::new(settings.to_bits()),
            erle_db: AtomicU64::new(f64::NAN.to_bits()),
            erl_db: AtomicU64::new(f64::NAN.to_bits()),
            aec_delay_ms: AtomicI64::new(i64::MIN),
            frames: AtomicU64::new(0),
            time_mean_us: AtomicU64::new(0f64.to_bits()),
            time_max_us: AtomicU64::new(0f64.to_bits()),
            render_discarded: AtomicU64::new(0),
        }
    }

    pub(super) fn publish(&self, stats: &ProcessingStats) {
        self.applied
            .store(stats.settings.to_bits(), Ordering::Relaxed);
        store_f64(&self.erle_db, stats.erle_db);
        store_f64(&self.erl_db, stats.erl_db);
        self.aec_delay_ms.store(
            stats.aec_delay_ms.map_or(i64::MIN, i64::from),
            Ordering::Relaxed,
        );
        self.frames.store(stats.frames, Ordering::Relaxed);
        store_f64(&self.time_mean_us, Some(stats.processing_time_mean_us));
        store_f64(&self.time_max_us, Some(stats.processing_time_max_us));
    }

    pub(super) fn add_render_discarded(&self, frames: u64) {
        self.render_discarded.fetch_add(frames, Ordering::Relaxed);
    }

    pub(super) fn render_discarded(&self) -> u64 {
        self.render_discarded.load(Ordering::Relaxed)
    }

    pub(super) fn delay_hint(&self) -> Option<u32> {
        let v = self.delay_hint_ms.load(Ordering::Relaxed);
        (v != NO_DELAY_HINT).then_some(v)
    }

    /// The published figures; `render_frames_dropped` counts the queue's own drops, to which
    /// the frames the capture side discarded are added.
    pub(super) fn snapshot(&self, render_frames_dropped: u64) -> ProcessingStats {
        ProcessingStats {
            settings: ProcessingSettings::from_bits(self.applied.load(Ordering::Relaxed)),
            erle_db: load_f64(&self.erle_db),
            erl_db: load_f64(&self.erl_db),
            aec_delay_ms: match self.aec_delay_ms.load(Ordering::Relaxed) {
                i64::MIN => None,
                v => i32::try_from(v).ok(),
            },
            stream_delay_hint_ms: self.delay_hint(),
            frames: self.frames.load(Ordering::Relaxed),
            processing_time_mean_us: load_f64(&self.time_mean_us).unwrap_or(0.0),
            processing_time_max_us: load_f64(&self.time_max_us).unwrap_or(0.0),
            render_frames_dropped: render_frames_dropped + self.render_discarded(),
        }
    }
}

/// Sends the far-end playout mix (the echo reference) to an [`AudioProcessor`] from any thread.
///
/// Cheap to clone; never blocks and never locks. Push exactly what the speaker plays, in
/// positive multiples of 10 ms.
#[derive(Debug, Clone)]
pub struct RenderFeed {
    pub(super) tx: DropOldestSender<RenderFrame>,
}

impl RenderFeed {
    /// Queues `samples` (48 kHz mono, a positive multiple of 480 samples) as echo reference.
    ///
    /// When the capture side lags by more than [`RENDER_QUEUE_FRAMES`] frames the oldest are
    /// dropped. Errors: a bad length ([`AudioProcessingError::FrameLength`], nothing queued), or
    /// the processor is gone ([`AudioProcessingError::ProcessorGone`]).
    pub fn push(&self, samples: &[f32]) -> Result<(), AudioProcessingError> {
        check_len(samples.len())?;
        for chunk in samples.chunks_exact(PROCESSING_FRAME_SAMPLES) {
            let mut frame = [0.0; PROCESSING_FRAME_SAMPLES];
            sanitize_into(chunk, &mut frame);
            if self.tx.send(frame) == SendOutcome::Disconnected {
                return Err(AudioProcessingError::ProcessorGone);
            }
        }
        Ok(())
    }
}

/// Changes settings and reads statistics of an [`AudioProcessor`] from any thread (atomics only).
#[derive(Debug, Clone)]
pub struct ProcessingControl {
    pub(super) shared: Arc<Shared>,
    pub(super) dropped: DropCounter,
}

impl ProcessingControl {
    /// Requests new settings; the capture thread applies them before its next frame.
    pub fn set_settings(&self, settings: ProcessingSettings) {
        self.shared
            .requested
            .store(settings.to_bits(), Ordering::Relaxed);
    }

    /// The settings last requested (applied ones are in [`ProcessingStats::settings`]).
    #[must_use]
    pub fn settings(&self) -> ProcessingSettings {
        ProcessingSettings::from_bits(self.shared.requested.load(Ordering::Relaxed))
    }

    /// Sets the render-to-capture delay hint (clamped to [`MAX_STREAM_DELAY_MS`]); see
    /// [`AudioProcessor::set_stream_delay_ms`].
    pub fn set_stream_delay_ms(&self, delay_ms: u32) {
        self.shared
            .delay_hint_ms
            .store(delay_ms.min(MAX_STREAM_DELAY_MS), Ordering::Relaxed);
    }

    /// The statistics the capture thread published after its latest frame.
    #[must_use]
    pub fn stats(&self) -> ProcessingStats {
        self.shared.snapshot(self.dropped.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_bits_round_trip() {
        for bits in 0..8u8 {
            assert_eq!(ProcessingSettings::from_bits(bits).to_bits(), bits);
        }
        assert!(ProcessingSettings::default().any());
        assert!(!ProcessingSettings::OFF.any());
    }

    #[test]
    fn settings_serde_defaults_missing_fields_to_on() -> Result<(), serde_json::Error> {
        let s: ProcessingSettings = serde_json::from_str(r#"{"auto_gain":false}"#)?;
        assert_eq!(
            s,
            ProcessingSettings {
                auto_gain: false,
                ..ProcessingSettings::default()
            }
        );
        Ok(())
    }

    #[test]
    fn shared_snapshot_round_trips_optional_figures() {
        let shared = Shared::new(ProcessingSettings::OFF);
        let none = shared.snapshot(0);
        assert_eq!(none.erle_db, None);
        assert_eq!(none.aec_delay_ms, None);
        let stats = ProcessingStats {
            settings: ProcessingSettings::default(),
            erle_db: Some(31.5),
            erl_db: Some(-3.0),
            aec_delay_ms: Some(104),
            stream_delay_hint_ms: None,
            frames: 7,
            processing_time_mean_us: 420.0,
            processing_time_max_us: 900.0,
            render_frames_dropped: 3,
        };
        shared.publish(&stats);
        assert_eq!(shared.snapshot(3), stats);
        shared.add_render_discarded(2);
        assert_eq!(shared.snapshot(3).render_frames_dropped, 5);
    }
}
