//! Capture-path audio processing: acoustic echo cancellation (AEC3), noise suppression and
//! automatic gain control (AGC2), from `sonora`, a pure-Rust port of WebRTC's audio processing.
//!
//! # What it owns
//!
//! [`AudioProcessor`] owns one `sonora::AudioProcessing` instance and runs it on the **capture
//! thread**: it cleans each microphone frame in place ([`AudioProcessor::process_capture`]). The
//! echo reference is the far-end playout mix (what the speaker plays), which arrives from the
//! **playout thread** through a [`RenderFeed`]. Settings and statistics cross threads through a
//! [`ProcessingControl`]. Nothing here opens a device; the engine calls it with the frames it
//! already has.
//!
//! ```text
//! playout thread ── RenderFeed::push(mix) ──> [drop-oldest queue, 50 x 10 ms] ─┐
//!                                                                              │ drained before
//! capture thread ── AudioProcessor::process_capture(&mut mic) <────────────────┘ each 10 ms
//!                    (sonora: render analysis, then HPF -> AEC3 -> NS -> AGC2 -> limiter)
//! UI / engine    ── ProcessingControl::{set_settings, set_stream_delay_ms, stats} (atomics)
//! ```
//!
//! # Contract
//!
//! - Audio is 48 kHz mono `f32` in `[-1, 1]`, in frames of a positive multiple of 10 ms
//!   ([`PROCESSING_FRAME_SAMPLES`] = 480 samples); 20 ms frames (960) are processed as two halves.
//!   Any other length gives [`AudioProcessingError::FrameLength`] and leaves the frame untouched.
//! - Render and capture must describe the same clock: push every played frame once, and process
//!   every captured frame once. Frames the capture side has not consumed within
//!   [`RENDER_QUEUE_FRAMES`] x 10 ms are dropped oldest first (counted in
//!   [`ProcessingStats::render_frames_dropped`]); AEC3 re-aligns itself after such a gap.
//! - **No lock in the real-time path.** [`RenderFeed::push`] copies into fixed-size frames and
//!   `try_send`s them into a bounded crossbeam array channel (lock-free while nobody blocks on it,
//!   and nobody does). The capture side `try_recv`s them. Settings, the delay hint and the
//!   published statistics are atomics. `sonora` itself allocates a little per render frame, so
//!   call it from a processing thread, not from inside a device callback.
//! - **Toggles** ([`ProcessingSettings`]) take effect at the next capture frame. AGC on/off only
//!   restarts the gain controller; the echo canceller keeps its state. Turning AEC or NS on or off
//!   changes `sonora`'s pipeline layout, which re-initialises every submodule: the echo canceller
//!   starts over (the integration test measures 16..37 dB ERLE in the first 500 ms, against 50+
//!   dB converged) and the AGC gain restarts from its initial 15 dB. With everything off the
//!   processor is bypassed and the output is bit-exact to the input.
//! - **Latency**: no buffering: each call returns the same 10 ms it was given, processed. The
//!   filters inside add a fixed group delay, measured with broadband noise by the
//!   `audio_processing` integration test: the output lags by 1 ms with AGC alone (band splitting
//!   and high-pass filter), 7 ms with NS, 9 ms with AEC3, 15 ms with all three. The high-pass
//!   filter also shifts the phase of the lowest voice harmonics.
//! - Noise suppression is built for speech: a *steady* tone is learned as noise and removed.
//! - Non-finite samples are replaced by silence and samples are clamped to `[-1, 1]` before
//!   `sonora` sees them, so one bad frame cannot poison the adaptive filters.
//! - The processing time per 10 ms frame is measured with the monotonic clock for
//!   [`ProcessingStats`] only; no decision depends on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sonora::config::{
    AdaptiveDigital, EchoCanceller, GainController2, HighPassFilter, MaxProcessingRate,
    NoiseSuppression, NoiseSuppressionLevel, Pipeline,
};
use sonora::{AudioProcessing, Config, StreamConfig};

use super::drop_oldest::{self, DropCounter, DropOldestReceiver, DropOldestSender, SendOutcome};
use super::frame::AUDIO_SAMPLE_RATE;

/// Samples in one 10 ms processing frame at 48 kHz.
pub const PROCESSING_FRAME_SAMPLES: usize = 480;
/// Render frames (10 ms each) the queue holds before it drops the oldest: 500 ms, more than any
/// render-to-capture delay a working call has, and half of AEC3's own transfer queue (100 frames,
/// which drops the *newest* when full).
pub const RENDER_QUEUE_FRAMES: usize = 50;
/// Largest stream delay hint `sonora` accepts.
pub const MAX_STREAM_DELAY_MS: u32 = 500;
/// Frames per statistics window for the processing-time figures (1 s).
const TIMING_WINDOW_FRAMES: u32 = 100;

type RenderFrame = [f32; PROCESSING_FRAME_SAMPLES];

/// Errors from [`AudioProcessor`] and [`RenderFeed`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioProcessingError {
    /// The frame is not a positive multiple of 10 ms at 48 kHz.
    #[error(
        "audio processing frames must be a positive multiple of {PROCESSING_FRAME_SAMPLES} \
         samples (10 ms at 48 kHz), got {len}"
    )]
    FrameLength {
        /// Samples given.
        len: usize,
    },
    /// `sonora` rejected a call.
    #[error("audio processing failed: {0}")]
    Sonora(#[from] sonora::Error),
    /// The [`AudioProcessor`] this feed belonged to is gone; the render frame was discarded.
    #[error("the audio processor is gone; render frame discarded")]
    ProcessorGone,
}

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

    const fn to_bits(self) -> u8 {
        (self.echo_cancellation as u8)
            | ((self.noise_suppression as u8) << 1)
            | ((self.auto_gain as u8) << 2)
    }

    const fn from_bits(bits: u8) -> Self {
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
    /// Render frames dropped because the capture side did not consume them in time.
    pub render_frames_dropped: u64,
}

/// State shared by the processor, its control handles and its render feeds. Only atomics.
#[derive(Debug)]
struct Shared {
    /// Requested [`ProcessingSettings`] bits.
    requested: AtomicU8,
    /// Requested delay hint, `u32::MAX` for none.
    delay_hint_ms: AtomicU32,
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
    fn new(settings: ProcessingSettings) -> Self {
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
        }
    }

    fn publish(&self, stats: &ProcessingStats) {
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

    fn delay_hint(&self) -> Option<u32> {
        let v = self.delay_hint_ms.load(Ordering::Relaxed);
        (v != NO_DELAY_HINT).then_some(v)
    }

    fn snapshot(&self, render_frames_dropped: u64) -> ProcessingStats {
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
            render_frames_dropped,
        }
    }
}

/// Sends the far-end playout mix (the echo reference) to an [`AudioProcessor`] from any thread.
///
/// Cheap to clone; never blocks and never locks. Push exactly what the speaker plays, in
/// positive multiples of 10 ms.
#[derive(Debug, Clone)]
pub struct RenderFeed {
    tx: DropOldestSender<RenderFrame>,
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
    shared: Arc<Shared>,
    dropped: DropCounter,
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

/// Processing-time figures over a window of frames.
#[derive(Debug, Default, Clone, Copy)]
struct TimingWindow {
    total_us: f64,
    max_us: f64,
    frames: u32,
}

/// Echo cancellation, noise suppression and gain control for the capture path. See the module
/// documentation for the threading contract.
pub struct AudioProcessor {
    apm: AudioProcessing,
    applied: ProcessingSettings,
    applied_delay_hint: Option<u32>,
    shared: Arc<Shared>,
    render_rx: DropOldestReceiver<RenderFrame>,
    render_tx: DropOldestSender<RenderFrame>,
    capture_in: RenderFrame,
    render_out: RenderFrame,
    frames: u64,
    window: TimingWindow,
    last_window: TimingWindow,
}

impl std::fmt::Debug for AudioProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioProcessor")
            .field("settings", &self.applied)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

/// The `sonora` configuration for `settings`.
///
/// The high-pass filter and the gain controller (with its limiter) stay present whatever the
/// settings, so that an AGC toggle only swaps the adaptive digital controller instead of changing
/// the pipeline layout, which would re-initialise every submodule (AEC3 included).
fn sonora_config(settings: ProcessingSettings) -> Config {
    Config {
        pipeline: Pipeline {
            // Full band: speech above 16 kHz stays, and no 48 -> 32 kHz resampling.
            maximum_internal_processing_rate: MaxProcessingRate::Rate48kHz,
            multi_channel_render: false,
            multi_channel_capture: false,
            ..Pipeline::default()
        },
        high_pass_filter: Some(HighPassFilter::default()),
        echo_canceller: settings.echo_cancellation.then(EchoCanceller::default),
        noise_suppression: settings.noise_suppression.then_some(NoiseSuppression {
            level: NoiseSuppressionLevel::High,
            analyze_linear_aec_output_when_available: false,
        }),
        gain_controller2: Some(GainController2 {
            input_volume_controller: false,
            adaptive_digital: settings.auto_gain.then(AdaptiveDigital::default),
            ..GainController2::default()
        }),
        ..Config::default()
    }
}

fn check_len(len: usize) -> Result<(), AudioProcessingError> {
    if len == 0 || !len.is_multiple_of(PROCESSING_FRAME_SAMPLES) {
        return Err(AudioProcessingError::FrameLength { len });
    }
    Ok(())
}

/// A sample `sonora` can digest: finite and within `[-1, 1]`.
fn sanitize(x: f32) -> f32 {
    if x.is_finite() {
        x.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

fn sanitize_into(src: &[f32], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = sanitize(*s);
    }
}

impl AudioProcessor {
    /// A processor for 48 kHz mono with the given stages enabled.
    #[must_use]
    pub fn new(settings: ProcessingSettings) -> Self {
        let stream = StreamConfig::new(AUDIO_SAMPLE_RATE, 1);
        let apm = AudioProcessing::builder()
            .config(sonora_config(settings))
            .capture_config(stream)
            .render_config(stream)
            .build();
        let (render_tx, render_rx) = drop_oldest::channel(RENDER_QUEUE_FRAMES);
        Self {
            apm,
            applied: settings,
            applied_delay_hint: None,
            shared: Arc::new(Shared::new(settings)),
            render_rx,
            render_tx,
            capture_in: [0.0; PROCESSING_FRAME_SAMPLES],
            render_out: [0.0; PROCESSING_FRAME_SAMPLES],
            frames: 0,
            window: TimingWindow::default(),
            last_window: TimingWindow::default(),
        }
    }

    /// A handle for the playout thread to push the echo reference with.
    #[must_use]
    pub fn render_feed(&self) -> RenderFeed {
        RenderFeed {
            tx: self.render_tx.clone(),
        }
    }

    /// A handle for other threads to toggle stages, set the delay hint and read statistics.
    #[must_use]
    pub fn control(&self) -> ProcessingControl {
        ProcessingControl {
            shared: Arc::clone(&self.shared),
            dropped: self.render_tx.drop_counter(),
        }
    }

    /// The stages running now.
    #[must_use]
    pub fn settings(&self) -> ProcessingSettings {
        self.applied
    }

    /// Enables or disables stages now (same as [`ProcessingControl::set_settings`], applied
    /// immediately instead of at the next frame).
    pub fn set_settings(&mut self, settings: ProcessingSettings) {
        self.shared
            .requested
            .store(settings.to_bits(), Ordering::Relaxed);
        self.apply_requested_settings();
    }

    /// Hints the delay between a frame being pushed as render and its echo reaching
    /// [`process_capture`](Self::process_capture) (playout buffering + acoustic path + capture
    /// buffering), clamped to [`MAX_STREAM_DELAY_MS`]. AEC3 estimates the delay itself; the hint
    /// only sets where its search starts after a reset.
    pub fn set_stream_delay_ms(&mut self, delay_ms: u32) {
        self.shared
            .delay_hint_ms
            .store(delay_ms.min(MAX_STREAM_DELAY_MS), Ordering::Relaxed);
    }

    /// Feeds far-end audio directly on this thread (for callers that own both paths, such as
    /// tests). Frames queued by [`RenderFeed`]s are analysed first, so the order is kept.
    pub fn process_render(&mut self, samples: &[f32]) -> Result<(), AudioProcessingError> {
        check_len(samples.len())?;
        self.drain_render()?;
        for chunk in samples.chunks_exact(PROCESSING_FRAME_SAMPLES) {
            let mut frame = [0.0; PROCESSING_FRAME_SAMPLES];
            sanitize_into(chunk, &mut frame);
            if self.applied.echo_cancellation {
                self.analyze_render(&frame)?;
            }
        }
        Ok(())
    }

    /// Cleans a microphone frame in place (a positive multiple of 480 samples): analyses the
    /// queued render frames, applies pending settings, then runs the enabled stages on each
    /// 10 ms part. On a length error the frame is left untouched.
    pub fn process_capture(&mut self, samples: &mut [f32]) -> Result<(), AudioProcessingError> {
        check_len(samples.len())?;
        self.apply_requested_settings();
        self.apply_delay_hint()?;
        for chunk in samples.chunks_exact_mut(PROCESSING_FRAME_SAMPLES) {
            let started = Instant::now();
            let result = self.process_capture_10ms(chunk);
            self.record_frame(started.elapsed().as_secs_f64() * 1e6);
            result?;
        }
        Ok(())
    }

    /// Current figures (the same ones [`ProcessingControl::stats`] reads on other threads).
    #[must_use]
    pub fn stats(&self) -> ProcessingStats {
        let window = if self.last_window.frames > 0 {
            self.last_window
        } else {
            self.window
        };
        let stats = self.apm.statistics();
        let aec = self.applied.echo_cancellation;
        ProcessingStats {
            settings: self.applied,
            erle_db: stats.echo_return_loss_enhancement.filter(|_| aec),
            erl_db: stats.echo_return_loss.filter(|_| aec),
            aec_delay_ms: stats.delay_ms.filter(|_| aec),
            stream_delay_hint_ms: self.shared.delay_hint(),
            frames: self.frames,
            processing_time_mean_us: if window.frames > 0 {
                window.total_us / f64::from(window.frames)
            } else {
                0.0
            },
            processing_time_max_us: window.max_us,
            render_frames_dropped: self.render_tx.dropped(),
        }
    }

    fn process_capture_10ms(&mut self, chunk: &mut [f32]) -> Result<(), AudioProcessingError> {
        if !self.applied.any() {
            // Bypass: bit-exact output; the render reference is stale once processing resumes.
            while self.render_rx.try_recv().is_ok() {}
            return Ok(());
        }
        self.drain_render()?;
        sanitize_into(chunk, &mut self.capture_in);
        self.apm
            .process_capture_f32(&[&self.capture_in], &mut [chunk])?;
        Ok(())
    }

    fn drain_render(&mut self) -> Result<(), AudioProcessingError> {
        while let Ok(frame) = self.render_rx.try_recv() {
            // Without AEC the reference has no use; draining keeps the queue from filling.
            if self.applied.echo_cancellation {
                self.analyze_render(&frame)?;
            }
        }
        Ok(())
    }

    fn analyze_render(&mut self, frame: &RenderFrame) -> Result<(), AudioProcessingError> {
        self.apm
            .process_render_f32(&[frame], &mut [&mut self.render_out])?;
        Ok(())
    }

    fn apply_requested_settings(&mut self) {
        let requested =
            ProcessingSettings::from_bits(self.shared.requested.load(Ordering::Relaxed));
        if requested != self.applied {
            // With everything off the processor is bypassed; keep sonora as it was so that
            // turning the same stages back on needs no re-initialisation.
            if requested.any() {
                self.apm.apply_config(sonora_config(requested));
            }
            self.applied = requested;
        }
    }

    fn apply_delay_hint(&mut self) -> Result<(), AudioProcessingError> {
        let hint = self.shared.delay_hint();
        if hint != self.applied_delay_hint {
            if let Some(ms) = hint {
                // Clamped on the way in, so sonora never reports StreamParameterClamped.
                self.apm
                    .set_stream_delay_ms(i32::try_from(ms).unwrap_or(i32::MAX))?;
            }
            self.applied_delay_hint = hint;
        }
        Ok(())
    }

    fn record_frame(&mut self, elapsed_us: f64) {
        self.frames += 1;
        self.window.total_us += elapsed_us;
        self.window.max_us = self.window.max_us.max(elapsed_us);
        self.window.frames += 1;
        if self.window.frames >= TIMING_WINDOW_FRAMES {
            self.last_window = std::mem::take(&mut self.window);
        }
        self.shared.publish(&self.stats());
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
    fn frame_length_must_be_a_multiple_of_10ms() {
        assert!(check_len(480).is_ok());
        assert!(check_len(960).is_ok());
        assert!(check_len(4800).is_ok());
        for len in [0, 1, 479, 481, 720] {
            assert_eq!(
                check_len(len),
                Err(AudioProcessingError::FrameLength { len })
            );
        }
    }

    #[test]
    fn sanitize_clamps_and_silences_non_finite() {
        assert_eq!(sanitize(0.25), 0.25);
        assert_eq!(sanitize(1.5), 1.0);
        assert_eq!(sanitize(-3.0), -1.0);
        assert_eq!(sanitize(f32::NAN), 0.0);
        assert_eq!(sanitize(f32::INFINITY), 0.0);
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
    }

    #[test]
    fn render_feed_reports_a_gone_processor() {
        let feed = AudioProcessor::new(ProcessingSettings::OFF).render_feed();
        assert_eq!(
            feed.push(&[0.0; PROCESSING_FRAME_SAMPLES]),
            Err(AudioProcessingError::ProcessorGone)
        );
    }
}
