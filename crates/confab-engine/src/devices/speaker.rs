//! The speaker: a cpal output stream as an [`AudioSink`] for the engine's playout thread.
//!
//! Data path: the playout thread calls [`Speaker::play`] with 20 ms of 48 kHz mono every 20 ms;
//! it is resampled to the device rate when needed and pushed into a lock-free SPSC ring buffer
//! (`rtrb`). The device callback (real-time: no allocation, no lock) pops it, copies the mono
//! sample to every channel, and fills silence on underrun. The callback waits for
//! [`PREBUFFER_MS`] before it starts (and after an underrun) and discards anything beyond
//! [`MAX_BUFFERED_MS`], so clock drift between our 20 ms timer and the device's clock costs a
//! rare short glitch, never a growing delay.
//!
//! Device loss: the error callback raises a flag, or the device stops asking for audio for
//! [`STALL_AFTER`] (an audio server that drops a stream whose device went away may say nothing; the
//! first request may take up to [`FIRST_REQUEST_WITHIN`]); the next `play` reports
//! [`DeviceState::Lost`](super::DeviceState::Lost) and falls back to the default device
//! ([`DeviceState::FellBack`](super::DeviceState::FellBack)); while nothing works, audio is
//! discarded and the device is retried every [`AUDIO_RETRY`](super::lifecycle::AUDIO_RETRY) (the
//! shared [`lifecycle`](super::lifecycle)). `play` never blocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};

use super::audio::{DEFAULT_DEVICE, is_fatal_stream_error, map_error, open_stream, retire};
use super::lifecycle::{Attempt, Lifecycle, ReopenPolicy, open_requested_or_default};
use super::microphone::STALL_AFTER;
use super::resampler::StreamResampler;
use super::{DeviceError, DeviceKind, DeviceStatus};
use crate::api::AudioSink;
use crate::media::{AUDIO_SAMPLE_RATE, AudioFrame};

/// Audio queued before the device starts playing (and after an underrun).
pub const PREBUFFER_MS: u32 = 30;
/// Longest wait for a new stream's first callback before the device counts as lost (PulseAudio's
/// null sink, for one, wakes on a timer of up to 2 s).
pub const FIRST_REQUEST_WITHIN: Duration = Duration::from_secs(5);
/// Queued audio beyond this is cut back to [`PREBUFFER_MS`] to bound the delay.
pub const MAX_BUFFERED_MS: u32 = 100;

struct LiveOutput {
    _stream: cpal::Stream,
    ring: rtrb::Producer<f32>,
    rate: u32,
    failed: Arc<AtomicBool>,
    underruns: Arc<AtomicU64>,
    /// Frames per device callback, as last seen (for the delay estimate).
    period: Arc<AtomicUsize>,
    /// Device callbacks so far.
    callbacks: Arc<AtomicU64>,
    /// The callback count last seen by `play`, and until when it may stay unchanged.
    seen_callbacks: u64,
    stall_deadline: Instant,
    name: String,
}

impl LiveOutput {
    /// Whether the device failed or stopped asking for audio.
    fn has_failed(&mut self) -> bool {
        if self.failed.load(Ordering::Relaxed) {
            return true;
        }
        let count = self.callbacks.load(Ordering::Relaxed);
        let now = Instant::now();
        if count != self.seen_callbacks {
            self.seen_callbacks = count;
            self.stall_deadline = now + STALL_AFTER;
            false
        } else {
            now > self.stall_deadline
        }
    }
}

/// A speaker opened through cpal; see the module docs.
pub struct Speaker {
    requested: Option<String>,
    /// Lost / back-off / reopen / fallback, shared with the other devices.
    lifecycle: Lifecycle,
    live: Option<LiveOutput>,
    resampler: Option<StreamResampler>,
}

impl std::fmt::Debug for Speaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speaker")
            .field("requested", &self.requested)
            .field("device", &self.live.as_ref().map(|l| &l.name))
            .field("rate", &self.live.as_ref().map(|l| l.rate))
            .finish_non_exhaustive()
    }
}

impl Speaker {
    /// Opens speaker `id` (`None` or `"default"`: the system default) and starts it (playing
    /// silence until audio arrives).
    ///
    /// # Errors
    /// A [`DeviceError`] with a sentence for the user (no such device, no sound card).
    pub fn open(id: Option<&str>, status: DeviceStatus) -> Result<Self, DeviceError> {
        let requested = id.filter(|i| *i != DEFAULT_DEVICE).map(str::to_string);
        let live = open_output(requested.as_deref())?;
        let mut speaker = Self {
            requested,
            lifecycle: Lifecycle::new(DeviceKind::Speaker, ReopenPolicy::AUDIO, status),
            live: None,
            resampler: None,
        };
        speaker.install(live)?;
        Ok(speaker)
    }

    /// Name of the device in use, if any.
    #[must_use]
    pub fn device_name(&self) -> Option<&str> {
        self.live.as_ref().map(|l| l.name.as_str())
    }

    /// Times the device ran dry (each is a short gap in the sound).
    #[must_use]
    pub fn underruns(&self) -> u64 {
        self.live
            .as_ref()
            .map_or(0, |l| l.underruns.load(Ordering::Relaxed))
    }

    fn install(&mut self, live: LiveOutput) -> Result<(), DeviceError> {
        self.resampler = if live.rate == AUDIO_SAMPLE_RATE {
            None
        } else {
            Some(
                StreamResampler::fixed_input(
                    AUDIO_SAMPLE_RATE,
                    live.rate,
                    AudioFrame::SAMPLES_20MS,
                )
                .map_err(DeviceError::Backend)?,
            )
        };
        self.live = Some(live);
        Ok(())
    }

    fn try_reopen(&mut self, attempt: Attempt) {
        self.lifecycle.retry_later(Instant::now());
        let Some((live, fell_back)) = open_requested_or_default(
            DeviceKind::Speaker,
            self.requested.as_deref(),
            attempt.requested_only(),
            open_output,
        ) else {
            return;
        };
        let name = live.name.clone();
        if self.install(live).is_err() {
            return;
        }
        self.lifecycle.reopened(&name, fell_back);
    }
}

impl AudioSink for Speaker {
    fn play(&mut self, samples: &[f32]) {
        // On a fallback: is the device the user picked back? Switch to it.
        if let Some(attempt @ Attempt::RequestedOnly) =
            self.lifecycle.due(Instant::now(), self.live.is_some())
        {
            self.try_reopen(attempt);
        }
        if self.live.as_mut().is_some_and(LiveOutput::has_failed) {
            if let Some(old) = self.live.take() {
                tracing::warn!(device = %old.name, "speaker lost");
                self.lifecycle.lost(
                    &old.name,
                    format!("Speaker \"{}\" stopped working.", old.name),
                    Instant::now(),
                );
                retire(old, "speaker");
            }
            self.try_reopen(Attempt::RequestedOrDefault);
        }
        // No device: try again when due.
        if let Some(attempt) = self.lifecycle.due(Instant::now(), self.live.is_some()) {
            self.try_reopen(attempt);
        }
        let resampled;
        let out = match &mut self.resampler {
            Some(r) if samples.len() == r.input_frames_next() => match r.process(samples) {
                Ok(v) => {
                    resampled = v;
                    &resampled[..]
                }
                Err(e) => {
                    tracing::warn!(error = %e, "speaker resampling failed");
                    return;
                }
            },
            Some(_) => return,
            None => samples,
        };
        if let Some(live) = &mut self.live {
            // A full ring means the device is not pulling: the callback trims old audio, and
            // what does not fit now is dropped rather than blocking playout.
            let _ = live.ring.push_partial_slice(out);
        }
    }

    fn output_delay(&self) -> Duration {
        let Some(live) = &self.live else {
            return Duration::ZERO;
        };
        let queued = live.ring.buffer().capacity() - live.ring.slots();
        let frames = queued + live.period.load(Ordering::Relaxed);
        Duration::from_micros(frames as u64 * 1_000_000 / u64::from(live.rate.max(1)))
    }
}

fn open_output(id: Option<&str>) -> Result<LiveOutput, DeviceError> {
    open_stream(DeviceKind::Speaker, id, build)
}

fn build(
    device: &cpal::Device,
    name: &str,
    config: &StreamConfig,
    format: SampleFormat,
) -> Result<LiveOutput, DeviceError> {
    let rate = config.sample_rate;
    // Room for the cap plus one playout period of slack.
    let capacity = (rate * (MAX_BUFFERED_MS + 40) / 1000) as usize;
    let (ring, consumer) = rtrb::RingBuffer::new(capacity);
    let failed = Arc::new(AtomicBool::new(false));
    let underruns = Arc::new(AtomicU64::new(0));
    let period = Arc::new(AtomicUsize::new(0));
    let callbacks = Arc::new(AtomicU64::new(0));
    let parts = CallbackParts {
        ring: consumer,
        channels: usize::from(config.channels.max(1)),
        prebuffer: (rate * PREBUFFER_MS / 1000) as usize,
        max_buffered: (rate * MAX_BUFFERED_MS / 1000) as usize,
        failed: Arc::clone(&failed),
        underruns: Arc::clone(&underruns),
        period: Arc::clone(&period),
        callbacks: Arc::clone(&callbacks),
    };
    let stream = match format {
        SampleFormat::F32 => build_typed::<f32>(device, config, parts),
        SampleFormat::I16 => build_typed::<i16>(device, config, parts),
        SampleFormat::I32 => build_typed::<i32>(device, config, parts),
        SampleFormat::U16 => build_typed::<u16>(device, config, parts),
        other => {
            return Err(DeviceError::Unsupported(format!(
                "Speaker \"{name}\" uses sample format {other}, which Confab cannot write."
            )));
        }
    }
    .map_err(|e| map_error(DeviceKind::Speaker, name, &e))?;
    stream
        .play()
        .map_err(|e| map_error(DeviceKind::Speaker, name, &e))?;
    Ok(LiveOutput {
        _stream: stream,
        ring,
        rate,
        failed,
        underruns,
        period,
        callbacks,
        seen_callbacks: 0,
        stall_deadline: Instant::now() + FIRST_REQUEST_WITHIN,
        name: name.to_string(),
    })
}

struct CallbackParts {
    ring: rtrb::Consumer<f32>,
    channels: usize,
    prebuffer: usize,
    max_buffered: usize,
    failed: Arc<AtomicBool>,
    underruns: Arc<AtomicU64>,
    period: Arc<AtomicUsize>,
    callbacks: Arc<AtomicU64>,
}

fn build_typed<T>(
    device: &cpal::Device,
    config: &StreamConfig,
    parts: CallbackParts,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32>,
{
    let CallbackParts {
        mut ring,
        channels,
        prebuffer,
        max_buffered,
        failed,
        underruns,
        period,
        callbacks,
    } = parts;
    let mut playing = false;
    device.build_output_stream::<T, _, _>(
        *config,
        move |data: &mut [T], _info| {
            // Real-time thread: no allocation, no lock, no logging.
            let frames = data.len() / channels;
            period.store(frames, Ordering::Relaxed);
            callbacks.fetch_add(1, Ordering::Relaxed);
            // Too much queued (the device stalled, or our feed ran ahead): drop the oldest
            // audio down to the prebuffer, so the delay does not stay high after the stall.
            let queued = ring.slots();
            if queued > max_buffered
                && let Ok(chunk) = ring.read_chunk(queued - prebuffer)
            {
                chunk.commit_all();
            }
            // The server may ask for more than we ever queue (a big first request, a catch-up
            // after a stall): start once the prebuffer is there, whatever the request size.
            if !playing && ring.slots() >= prebuffer {
                playing = true;
            }
            let silence = T::from_sample(0.0f32);
            for frame in data.chunks_exact_mut(channels) {
                let value = if playing {
                    match ring.pop() {
                        Ok(v) => T::from_sample(v),
                        Err(_) => {
                            playing = false;
                            underruns.fetch_add(1, Ordering::Relaxed);
                            silence
                        }
                    }
                } else {
                    silence
                };
                frame.fill(value);
            }
        },
        move |err| {
            tracing::debug!(error = %err, kind = ?err.kind(), "speaker stream error");
            if is_fatal_stream_error(&err) {
                failed.store(true, Ordering::Relaxed);
            }
        },
        Some(Duration::from_secs(2)),
    )
}
