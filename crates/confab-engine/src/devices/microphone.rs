//! The microphone: a cpal input stream as an [`AudioSource`] of 10 ms, 48 kHz mono frames.
//!
//! Data path: the device callback (a real-time thread: no allocation, no lock) down-mixes each
//! interleaved frame to mono `f32` and pushes it into a lock-free SPSC ring buffer (`rtrb`), then
//! unparks the capture thread. [`Microphone::next_frame`] (on the capture thread that opened it)
//! drains the ring, resamples to 48 kHz with `rubato` when the device runs at another rate, and
//! cuts 480-sample frames stamped with the capture time of their first sample (now minus what
//! is still buffered).
//!
//! Device loss: the stream's error callback raises a flag; the next call reports
//! [`DeviceState::Lost`](super::DeviceState::Lost), closes the stream on another thread (closing a
//! dead stream can block) and falls back to the system default device
//! ([`DeviceState::FellBack`](super::DeviceState::FellBack)). Devices are reopened on a short-lived
//! thread of their own while the capture thread keeps the call alive with paced silence; a lost
//! device is retried every [`AUDIO_RETRY`](super::lifecycle::AUDIO_RETRY), so the thread never busy-loops, never blocks on the
//! audio system, and always stops promptly. A device that delivers nothing for [`STALL_AFTER`] is
//! treated as lost too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};

use super::audio::{DEFAULT_DEVICE, is_fatal_stream_error, map_error, open_stream, retire};
use super::lifecycle::{Attempt, Lifecycle, ReopenPolicy, open_requested_or_default};
use super::resampler::StreamResampler;
use super::{DeviceError, DeviceKind, DeviceStatus};
use crate::media::source::Pacing;
use crate::media::{AUDIO_SAMPLE_RATE, AudioFrame, AudioSource, CaptureTime, SourceError};
use crate::worker::Worker;

/// A running stream that delivers nothing for this long is treated as lost.
pub const STALL_AFTER: Duration = Duration::from_secs(2);
/// Ring buffer between the callback and the capture thread: 500 ms at the device rate.
const RING_MS: u32 = 500;

/// One open input stream.
struct LiveInput {
    _stream: cpal::Stream,
    ring: rtrb::Consumer<f32>,
    rate: u32,
    failed: Arc<AtomicBool>,
    overruns: Arc<AtomicU64>,
    name: String,
    last_data: Instant,
}

/// A microphone opened through cpal; see the module docs.
pub struct Microphone {
    /// The device the user picked (`None`: the default).
    requested: Option<String>,
    /// Lost / back-off / reopen / fallback, shared with the other devices.
    lifecycle: Lifecycle,
    live: Option<LiveInput>,
    resampler: Option<StreamResampler>,
    /// Device-rate samples taken from the ring, not yet in a frame.
    pending: Vec<f32>,
    /// Pacing of the silence sent while no device works.
    silence_due: Instant,
    /// A device being opened in the background (see [`Microphone::start_reopen`]).
    reopening: Option<std::sync::mpsc::Receiver<Option<(LiveInput, bool)>>>,
}

impl std::fmt::Debug for Microphone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Microphone")
            .field("requested", &self.requested)
            .field("device", &self.live.as_ref().map(|l| &l.name))
            .field("rate", &self.live.as_ref().map(|l| l.rate))
            .finish_non_exhaustive()
    }
}

impl Microphone {
    /// Opens microphone `id` (`None` or `"default"`: the system default). Call it on the thread
    /// that will call [`AudioSource::next_frame`]: the device callback wakes that thread.
    ///
    /// # Errors
    /// A [`DeviceError`] with a sentence for the user (no such device, busy, no sound card).
    pub fn open(id: Option<&str>, status: DeviceStatus) -> Result<Self, DeviceError> {
        let requested = id.filter(|i| *i != DEFAULT_DEVICE).map(str::to_string);
        let live = open_input(requested.as_deref(), &std::thread::current())?;
        let mut mic = Self {
            requested,
            lifecycle: Lifecycle::new(DeviceKind::Microphone, ReopenPolicy::AUDIO, status),
            resampler: None,
            live: None,
            pending: Vec::new(),
            silence_due: Instant::now(),
            reopening: None,
        };
        mic.install(live)?;
        Ok(mic)
    }

    /// Name of the device in use, if any.
    #[must_use]
    pub fn device_name(&self) -> Option<&str> {
        self.live.as_ref().map(|l| l.name.as_str())
    }

    /// The rate the device runs at (48 000 means no resampling).
    #[must_use]
    #[cfg(any(test, feature = "testing"))]
    pub fn device_rate(&self) -> Option<u32> {
        self.live.as_ref().map(|l| l.rate)
    }

    /// Samples the callback had to drop because the capture thread fell behind.
    #[must_use]
    pub fn overruns(&self) -> u64 {
        self.live
            .as_ref()
            .map_or(0, |l| l.overruns.load(Ordering::Relaxed))
    }

    fn install(&mut self, live: LiveInput) -> Result<(), DeviceError> {
        self.resampler = if live.rate == AUDIO_SAMPLE_RATE {
            None
        } else {
            Some(
                StreamResampler::fixed_output(
                    live.rate,
                    AUDIO_SAMPLE_RATE,
                    AudioFrame::SAMPLES_10MS,
                )
                .map_err(DeviceError::Backend)?,
            )
        };
        self.pending.clear();
        self.live = Some(live);
        Ok(())
    }

    /// The device stopped: tell the user, fall back to the default device if the user had
    /// picked another one, else wait for it.
    fn lose(&mut self, why: &str) {
        let Some(old) = self.live.take() else { return };
        tracing::warn!(device = %old.name, why, "microphone lost");
        self.lifecycle.lost(
            &old.name,
            format!("Microphone \"{}\" stopped working ({why}).", old.name),
            Instant::now(),
        );
        retire(old, "microphone");
        self.silence_due = Instant::now();
        self.start_reopen(Attempt::RequestedOrDefault);
    }

    /// Starts opening the requested device (then, for [`Attempt::RequestedOrDefault`], the
    /// default one) on a thread of its own: opening can take a second or more (an audio server
    /// starting a stream), and the capture thread keeps delivering paced silence meanwhile.
    fn start_reopen(&mut self, attempt: Attempt) {
        self.lifecycle.retry_later(Instant::now());
        let requested_only = attempt.requested_only();
        if self.reopening.is_some() {
            return;
        }
        let requested = self.requested.clone();
        let waker = std::thread::current();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let spawned = Worker::spawn("confab-mic-open", move |_stop| {
            let opened = open_requested_or_default(
                DeviceKind::Microphone,
                requested.as_deref(),
                requested_only,
                |id| open_input(id, &waker),
            );
            // A microphone dropped meanwhile no longer wants it: it closes here.
            let _ = tx.send(opened);
            waker.unpark();
        });
        match spawned {
            // Opening can block in the audio system: the result comes through `rx`, and a
            // microphone dropped meanwhile does not wait for it.
            Ok(worker) => {
                worker.detach();
                self.reopening = Some(rx);
            }
            Err(e) => tracing::warn!(error = %e, "cannot start a thread to open the microphone"),
        }
    }

    /// Takes over a device [`Self::start_reopen`] opened, if it has finished.
    fn finish_reopen(&mut self) {
        let Some(rx) = &self.reopening else { return };
        let opened = match rx.try_recv() {
            Ok(opened) => opened,
            Err(std::sync::mpsc::TryRecvError::Empty) => return,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => None,
        };
        self.reopening = None;
        let Some((live, fell_back)) = opened else {
            return;
        };
        let name = live.name.clone();
        if let Some(old) = self.live.take() {
            retire(old, "microphone");
        }
        if self.install(live).is_err() {
            return;
        }
        self.lifecycle.reopened(&name, fell_back);
    }

    /// One 10 ms frame from `pending` if enough is there.
    fn take_frame(&mut self, buffered_in_ring: usize) -> Option<AudioFrame> {
        let rate = self.live.as_ref().map_or(AUDIO_SAMPLE_RATE, |l| l.rate);
        let samples = match &mut self.resampler {
            None => {
                if self.pending.len() < AudioFrame::SAMPLES_10MS {
                    return None;
                }
                self.pending.drain(..AudioFrame::SAMPLES_10MS).collect()
            }
            Some(resampler) => {
                let need = resampler.input_frames_next();
                if self.pending.len() < need {
                    return None;
                }
                match resampler.process(&self.pending[..need]) {
                    Ok(out) => {
                        self.pending.drain(..need);
                        out
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "microphone resampling failed");
                        self.pending.drain(..need);
                        return None;
                    }
                }
            }
        };
        // The frame's first sample was captured before everything still queued behind it.
        let queued = self.pending.len() + buffered_in_ring + samples.len();
        let age = Duration::from_micros(queued as u64 * 1_000_000 / u64::from(rate.max(1)));
        let now = CaptureTime::now();
        let capture_time = CaptureTime::from_micros(
            now.as_micros()
                .saturating_sub(u64::try_from(age.as_micros()).unwrap_or(u64::MAX)),
        );
        Some(AudioFrame {
            samples,
            capture_time,
        })
    }

    /// Paced silence while no device works.
    fn silence(&mut self) -> AudioFrame {
        let now = Instant::now();
        if self.silence_due > now {
            std::thread::sleep(self.silence_due - now);
        } else if now - self.silence_due > Duration::from_millis(200) {
            self.silence_due = now;
        }
        self.silence_due += Duration::from_millis(10);
        AudioFrame {
            samples: vec![0.0; AudioFrame::SAMPLES_10MS],
            capture_time: CaptureTime::now(),
        }
    }
}

impl AudioSource for Microphone {
    fn name(&self) -> String {
        "mic".into()
    }

    fn pacing(&self) -> Pacing {
        Pacing::SelfPaced
    }

    fn next_frame(&mut self) -> Result<AudioFrame, SourceError> {
        loop {
            self.finish_reopen();
            // On a fallback: is the device the user picked back? Switch to it. With no
            // device: try again.
            if let Some(attempt) = self.lifecycle.due(Instant::now(), self.live.is_some()) {
                self.start_reopen(attempt);
            }
            let Some(live) = &mut self.live else {
                return Ok(self.silence());
            };
            if live.failed.load(Ordering::Relaxed) {
                self.lose("the device was disconnected");
                continue;
            }
            let available = live.ring.slots();
            if available > 0 {
                live.last_data = Instant::now();
                if let Ok(chunk) = live.ring.read_chunk(available) {
                    let (a, b) = chunk.as_slices();
                    self.pending.extend_from_slice(a);
                    self.pending.extend_from_slice(b);
                    chunk.commit_all();
                }
            } else if live.last_data.elapsed() > STALL_AFTER {
                self.lose("it delivers no sound");
                continue;
            }
            let in_ring = self.live.as_ref().map_or(0, |l| l.ring.slots());
            if let Some(frame) = self.take_frame(in_ring) {
                return Ok(frame);
            }
            // The callback unparks us when data arrives; the timeout bounds the wait so a
            // silent failure is still noticed.
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }
}

/// Opens the input stream of device `id` (default when `None`) and starts it; its callback
/// unparks `waker` (the capture thread) whenever audio arrives.
fn open_input(id: Option<&str>, waker: &std::thread::Thread) -> Result<LiveInput, DeviceError> {
    open_stream(
        DeviceKind::Microphone,
        id,
        |device, name, config, format| build(device, name, config, format, waker.clone()),
    )
}

fn build(
    device: &cpal::Device,
    name: &str,
    config: &StreamConfig,
    format: SampleFormat,
    waker: std::thread::Thread,
) -> Result<LiveInput, DeviceError> {
    let (producer, ring) = rtrb::RingBuffer::new((config.sample_rate * RING_MS / 1000) as usize);
    let failed = Arc::new(AtomicBool::new(false));
    let overruns = Arc::new(AtomicU64::new(0));
    let parts = CallbackParts {
        producer,
        channels: usize::from(config.channels.max(1)),
        failed: Arc::clone(&failed),
        overruns: Arc::clone(&overruns),
        waker,
    };
    let stream = match format {
        SampleFormat::F32 => build_typed::<f32>(device, config, parts),
        SampleFormat::I16 => build_typed::<i16>(device, config, parts),
        SampleFormat::I32 => build_typed::<i32>(device, config, parts),
        SampleFormat::U16 => build_typed::<u16>(device, config, parts),
        other => {
            return Err(DeviceError::Unsupported(format!(
                "Microphone \"{name}\" uses sample format {other}, which Confab cannot read."
            )));
        }
    }
    .map_err(|e| map_error(DeviceKind::Microphone, name, &e))?;
    stream
        .play()
        .map_err(|e| map_error(DeviceKind::Microphone, name, &e))?;
    Ok(LiveInput {
        _stream: stream,
        ring,
        rate: config.sample_rate,
        failed,
        overruns,
        name: name.to_string(),
        last_data: Instant::now(),
    })
}

/// What the real-time callback owns.
struct CallbackParts {
    producer: rtrb::Producer<f32>,
    channels: usize,
    failed: Arc<AtomicBool>,
    overruns: Arc<AtomicU64>,
    waker: std::thread::Thread,
}

fn build_typed<T>(
    device: &cpal::Device,
    config: &StreamConfig,
    parts: CallbackParts,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let CallbackParts {
        mut producer,
        channels,
        failed,
        overruns,
        waker,
    } = parts;
    let error_flag = Arc::clone(&failed);
    let error_waker = waker.clone();
    let scale = 1.0 / channels as f32;
    device.build_input_stream::<T, _, _>(
        *config,
        move |data: &[T], _info| {
            // Real-time thread: no allocation, no lock, no logging.
            let mut dropped = 0u64;
            for frame in data.chunks_exact(channels) {
                let mono = frame.iter().map(|s| s.to_sample::<f32>()).sum::<f32>() * scale;
                if producer.push(mono).is_err() {
                    dropped += 1;
                }
            }
            if dropped > 0 {
                overruns.fetch_add(dropped, Ordering::Relaxed);
            }
            waker.unpark();
        },
        move |err| {
            tracing::debug!(error = %err, kind = ?err.kind(), "microphone stream error");
            if is_fatal_stream_error(&err) {
                error_flag.store(true, Ordering::Relaxed);
                error_waker.unpark();
            }
        },
        Some(Duration::from_secs(2)),
    )
}
