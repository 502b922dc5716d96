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
//! This file holds the processor itself (the `sonora` pipeline, its configuration, frame checks
//! and timing); the handles other threads hold ([`ProcessingSettings`], [`ProcessingStats`],
//! [`RenderFeed`], [`ProcessingControl`]) and the atomics they share with it are in
//! `audio_processing/control.rs`, re-exported here.
//!
//! ```text
//! playout thread ── RenderFeed::push(mix) ──> [drop-oldest queue, 50 x 10 ms] ─┐ one frame per
//!                                                                              │ capture frame,
//! capture thread ── AudioProcessor::process_capture(&mut mic) <────────────────┘ 2 ahead at most
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
//!   every captured frame once.
//! - **Render is consumed in step with capture**, as WebRTC's audio processing expects its
//!   render and capture calls: before each 10 ms capture frame the processor analyses the queued
//!   render frames only until it is [`RENDER_LEAD_FRAMES`] ahead of capture; the rest wait in the
//!   queue for the following capture frames. So what AEC3 sees depends on the order of the audio
//!   only, not on when the threads run: a microphone that the audio system delivers late or in
//!   bursts (PulseAudio did, by tens to hundreds of ms under load) gives AEC3 the same sequence
//!   as a steady one. Draining the whole queue instead let render run ahead of capture by the
//!   delivery delay; AEC3 takes render more than 32 ms ahead for a buffering fault and resets its
//!   delay estimate, and capture that then catches up in a burst ran its render buffer dry
//!   (another reset), each time leaking echo until it found the delay again.
//! - The first capture frame after render starts (and after AEC is turned on) takes everything
//!   queued: AEC3 aligns itself on the newest render at that frame, and the older frames are the
//!   history its delay search and suppressor look back into (without them, echo passed until
//!   AEC3 had found the delay). Pacing starts with the next frame.
//! - In step, the echo reaches capture a fixed number of frames after its render (the lag AEC3
//!   estimates) for as long as neither stream loses audio. When the audio system drops `n`
//!   frames of capture (PulseAudio dropped up to 750 ms under load), the echo comes `n` frames
//!   sooner, and `n` render frames stay queued; once `n` exceeds the lag, the echo would come
//!   before its render, which AEC3 cannot cancel at all. A microphone that is only delivered
//!   late leaves a backlog too, but arrives in a burst that takes one queued frame per capture
//!   frame, so its backlog is gone within as many capture frames as it had frames. So a backlog
//!   above [`RESYNC_BACKLOG_FRAMES`] that outlasts its own size (and [`RESYNC_MIN_FRAMES`]) is
//!   discarded whole: after a loss that restores the lag exactly, so AEC3's delay estimate holds;
//!   had the microphone become late for good instead, the lag grows by the backlog, which AEC3
//!   finds again (it searches about 500 ms), where it could never find a negative one.
//!   Frames the capture side has not consumed within [`RENDER_QUEUE_FRAMES`] x 10 ms are dropped
//!   oldest first. Both are counted in [`ProcessingStats::render_frames_dropped`]. When render
//!   falls behind (the playout thread stalled), it is caught up by at most
//!   `RENDER_LEAD_FRAMES + 2` frames at once.
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

mod control;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use sonora::config::{
    AdaptiveDigital, EchoCanceller, GainController2, HighPassFilter, MaxProcessingRate,
    NoiseSuppression, NoiseSuppressionLevel, Pipeline,
};
use sonora::{AudioProcessing, Config, StreamConfig};

use super::drop_oldest::{self, DropOldestReceiver, DropOldestSender};
use super::frame::AUDIO_SAMPLE_RATE;
use control::Shared;
pub use control::{ProcessingControl, ProcessingSettings, ProcessingStats, RenderFeed};

/// Samples in one 10 ms processing frame at 48 kHz.
pub const PROCESSING_FRAME_SAMPLES: usize = 480;
/// Render frames (10 ms each) the queue holds before it drops the oldest: 500 ms, more than any
/// render-to-capture delay a working call has, and half of AEC3's own transfer queue (100 frames,
/// which drops the *newest* when full).
pub const RENDER_QUEUE_FRAMES: usize = 50;
/// How many 10 ms render frames AEC3 gets ahead of the capture frame it processes: enough that
/// a mix pushed every 20 ms never leaves it without render (its render buffer would run dry and
/// reset), and well inside the 8 blocks (32 ms) of render ahead that AEC3 accepts before it
/// counts a buffering fault (2 frames are 5 of its 4 ms blocks).
pub const RENDER_LEAD_FRAMES: usize = 2;
/// Render frames queued (before a capture frame takes its share) above which the backlog is
/// watched: 50 ms. In step the queue holds at most the newest 20 ms mix, give or take a frame.
pub const RESYNC_BACKLOG_FRAMES: usize = 5;
/// The fewest capture frames in a row a backlog above [`RESYNC_BACKLOG_FRAMES`] must last before
/// the queue is discarded (100 ms); it must also outlast its own size, see the module docs.
pub const RESYNC_MIN_FRAMES: usize = 10;
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

/// Processing-time figures over a window of frames.
#[derive(Debug, Default, Clone, Copy)]
struct TimingWindow {
    total_us: f64,
    max_us: f64,
    frames: u32,
}

/// How far render has been fed to AEC3 relative to capture (see the module docs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct RenderPacer {
    /// Render has started (AEC3 aligned itself on it), and the frames are paced.
    locked: bool,
    /// Render frames analysed since the lock.
    fed: u64,
    /// Capture frames since the lock (less any render that never came).
    due: u64,
    /// Capture frames in a row with a backlog above [`RESYNC_BACKLOG_FRAMES`], and the largest
    /// backlog among them.
    over: usize,
    peak: usize,
}

impl RenderPacer {
    /// Starts counting from the next capture frame, with no render ahead of it yet.
    fn lock(&mut self) {
        *self = Self {
            locked: true,
            ..Self::default()
        };
    }

    /// Notes the backlog before a capture frame; true when the capture side lost audio: the
    /// backlog stayed above [`RESYNC_BACKLOG_FRAMES`] for more capture frames than it was large
    /// (and [`RESYNC_MIN_FRAMES`]). A late microphone delivered in a burst takes one queued
    /// frame per capture frame, so its backlog is gone within as many frames as it had.
    fn backlog_persists(&mut self, backlog: usize) -> bool {
        if backlog <= RESYNC_BACKLOG_FRAMES {
            self.over = 0;
            self.peak = 0;
            return false;
        }
        self.over += 1;
        self.peak = self.peak.max(backlog);
        if self.over <= self.peak.max(RESYNC_MIN_FRAMES) {
            return false;
        }
        self.over = 0;
        self.peak = 0;
        true
    }

    /// Render frames to analyse before the next capture frame (counts that capture frame).
    fn owed(&mut self) -> u64 {
        self.due += 1;
        (self.due + RENDER_LEAD_FRAMES as u64).saturating_sub(self.fed)
    }

    /// After feeding: render that is late is caught up by at most `RENDER_LEAD_FRAMES + 2`
    /// frames at once, never by a burst as long as the gap was.
    fn settle(&mut self) {
        self.due = self.due.min(self.fed + 1);
    }
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
    pacer: RenderPacer,
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
            pacer: RenderPacer::default(),
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

    /// Queues far-end audio from this thread (for callers that own both paths, such as tests),
    /// behind what [`RenderFeed`]s queued: it is analysed in step with the following capture
    /// frames, exactly as if a [`RenderFeed`] had pushed it.
    pub fn process_render(&mut self, samples: &[f32]) -> Result<(), AudioProcessingError> {
        RenderFeed {
            tx: self.render_tx.clone(),
        }
        .push(samples)
    }

    /// Cleans a microphone frame in place (a positive multiple of 480 samples): applies pending
    /// settings, then for each 10 ms part analyses the render frames due (see the module docs)
    /// and runs the enabled stages. On a length error the frame is left untouched.
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
            render_frames_dropped: self.render_tx.dropped() + self.shared.render_discarded(),
        }
    }

    fn process_capture_10ms(&mut self, chunk: &mut [f32]) -> Result<(), AudioProcessingError> {
        if !self.applied.echo_cancellation {
            // Without AEC (or bypassed) the reference has no use: discarded, it does not fill the
            // queue, and AEC starts again from what is queued when it comes back.
            while self.render_rx.try_recv().is_ok() {}
            self.pacer = RenderPacer::default();
            if !self.applied.any() {
                // Bypass: bit-exact output.
                return Ok(());
            }
        } else {
            self.feed_render()?;
        }
        sanitize_into(chunk, &mut self.capture_in);
        self.apm
            .process_capture_f32(&[&self.capture_in], &mut [chunk])?;
        Ok(())
    }

    /// Analyses the render frames due before the next capture frame (see the module docs).
    fn feed_render(&mut self) -> Result<(), AudioProcessingError> {
        let backlog = self.render_rx.len();
        if !self.pacer.locked {
            // Nothing played yet: AEC3 passes capture through until render starts. Once it
            // has, AEC3 aligns itself on the newest render at its first capture frame, and
            // everything queued before is the history its delay search looks back into.
            for _ in 0..backlog {
                let Ok(frame) = self.render_rx.try_recv() else {
                    break;
                };
                self.analyze_render(&frame)?;
            }
            if backlog > 0 {
                self.pacer.lock();
            }
            return Ok(());
        }
        if self.pacer.backlog_persists(backlog) {
            self.discard_render(backlog);
        }
        for _ in 0..self.pacer.owed() {
            let Ok(frame) = self.render_rx.try_recv() else {
                break;
            };
            self.analyze_render(&frame)?;
            self.pacer.fed += 1;
        }
        self.pacer.settle();
        Ok(())
    }

    /// Drops the `count` oldest queued render frames (counted as dropped).
    fn discard_render(&mut self, count: usize) {
        let discarded = (0..count)
            .take_while(|_| self.render_rx.try_recv().is_ok())
            .count();
        self.shared.add_render_discarded(discarded as u64);
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
    fn render_pacer_keeps_render_a_fixed_lead_ahead_and_catches_up_in_small_steps() {
        let lead = RENDER_LEAD_FRAMES as u64;
        let mut pacer = RenderPacer::default();
        pacer.lock();
        // The first capture frame gets the lead as well as its own frame.
        assert_eq!(pacer.owed(), lead + 1);
        pacer.fed += lead + 1;
        pacer.settle();
        // Then one render frame per capture frame, however many are queued.
        for _ in 0..10 {
            assert_eq!(pacer.owed(), 1);
            pacer.fed += 1;
            pacer.settle();
        }
        // The playout thread stalls for 30 capture frames: what it owes grows only so far.
        for _ in 0..30 {
            pacer.owed();
            pacer.settle();
        }
        assert_eq!(pacer.owed(), lead + 2);
    }

    #[test]
    fn render_pacer_resyncs_on_a_backlog_that_outlasts_its_size() {
        let mut pacer = RenderPacer::default();
        pacer.lock();
        // A microphone 400 ms late, delivered in a burst: the backlog drains one frame per
        // capture frame.
        assert!(!(0..=40).rev().any(|b| pacer.backlog_persists(b)));
        // 300 ms of capture lost: the backlog stays; it goes after 31 capture frames.
        let stuck: Vec<bool> = (0..40).map(|_| pacer.backlog_persists(30)).collect();
        assert_eq!(stuck.iter().position(|&r| r), Some(30));
        assert_eq!(stuck.iter().filter(|&&r| r).count(), 1);
        // A small backlog goes after RESYNC_MIN_FRAMES.
        assert!(!pacer.backlog_persists(0));
        let small: Vec<bool> = (0..20)
            .map(|_| pacer.backlog_persists(RESYNC_BACKLOG_FRAMES + 1))
            .collect();
        assert_eq!(small.iter().position(|&r| r), Some(RESYNC_MIN_FRAMES));
    }

    #[test]
    fn render_queued_before_capture_is_history_then_render_is_paced()
    -> Result<(), AudioProcessingError> {
        let mut p = AudioProcessor::new(ProcessingSettings {
            echo_cancellation: true,
            noise_suppression: false,
            auto_gain: false,
        });
        let feed = p.render_feed();
        let mut capture = [0.0; PROCESSING_FRAME_SAMPLES];
        p.process_capture(&mut capture)?;
        // Half a second played before the microphone delivered anything else: all analysed at
        // the next capture frame.
        for _ in 0..25 {
            feed.push(&[0.1; 960])?;
        }
        p.process_capture(&mut capture)?;
        assert_eq!(p.render_rx.len(), 0);
        assert_eq!(p.stats().render_frames_dropped, 0);
        // A burst of render later is taken one frame per capture frame, after the lead.
        for _ in 0..5 {
            feed.push(&[0.1; 960])?;
        }
        p.process_capture(&mut capture)?;
        assert_eq!(p.render_rx.len(), 10 - (RENDER_LEAD_FRAMES + 1));
        p.process_capture(&mut capture)?;
        assert_eq!(p.render_rx.len(), 10 - (RENDER_LEAD_FRAMES + 2));
        Ok(())
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
