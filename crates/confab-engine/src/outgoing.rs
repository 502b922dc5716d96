//! Outgoing media: capture → encode → every connected peer.
//!
//! One video thread and one audio thread per engine, whatever the number of participants: each
//! picture is encoded once and the same access unit is written to every peer's track (mesh).
//! The session steers them through [`Outgoing`]: which peers are connected, keyframe requests
//! (any peer's PLI forces an IDR for all), the target bitrate (the lowest congestion-control
//! estimate among the peers, clamped to the configured range), and mic/camera switches.
//!
//! Contract: the threads never block on the network for long — `write_*` only queues into the
//! peer connection — and they stop when their [`SenderThread`] is dropped.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use signaling_client::ParticipantId;
use tracing::{debug, warn};

use super::EngineError;
use crossbeam_channel::Sender;

use super::api::{
    AudioInput, EngineEvent, MediaProbe, Repaint, VideoFrameEvent, VideoInput, VideoSettings,
};
use super::devices::camera::spawn_camera;
use super::devices::microphone::Microphone;
use super::devices::{DeviceKind, DeviceNotice, DeviceState, DeviceStatus};
use super::media::audio_processing::{
    AudioProcessor, ProcessingControl, ProcessingSettings, RenderFeed,
};
use super::media::drop_oldest::{DropOldestReceiver, DropOldestSender};
use super::media::h264::{H264Encoder, H264EncoderConfig};
use super::media::opus_codec::{OpusEncoder, OpusEncoderConfig};
use super::media::source::{CaptureThread, spawn_audio, spawn_audio_with, spawn_video};
use super::media::synthetic_audio::{SyntheticAudio, SyntheticAudioConfig};
use super::media::synthetic_video::SyntheticVideo;
use super::media::wav::WavSource;
use super::media::y4m::Y4mSource;
use super::media::{AudioChunker, AudioFrame, CaptureTime, I420Frame, SourceError};
use super::peer::PeerLink;
use super::reasons::Problem;
use super::worker::{StopFlag, Worker};

/// Shared between the session (which steers) and the sender threads (which obey).
pub(crate) struct Outgoing {
    peers: RwLock<Vec<(ParticipantId, Arc<PeerLink>)>>,
    keyframe_requested: AtomicBool,
    target_bps: AtomicU32,
    pub(crate) mic_on: AtomicBool,
    pub(crate) camera_on: AtomicBool,
    /// Pictures encoded and sent.
    pub(crate) frames_encoded: AtomicU64,
    /// Total time spent encoding, microseconds.
    pub(crate) encode_micros: AtomicU64,
    /// The microphone's audio processor, while one runs: its echo reference and its controls.
    /// Locked by the playout thread every 20 ms and by the session on a settings change only.
    pub(crate) echo: Mutex<Option<EchoLink>>,
    runtime: tokio::runtime::Handle,
}

/// How the playout thread and the session reach the running [`AudioProcessor`].
pub(crate) struct EchoLink {
    pub(crate) feed: RenderFeed,
    pub(crate) control: ProcessingControl,
}

impl Outgoing {
    /// Hands what the speaker plays to the echo canceller, with the speaker's delay as hint.
    pub(crate) fn feed_echo_reference(&self, played: &[f32], output_delay: Duration) {
        let Ok(echo) = self.echo.lock() else { return };
        if let Some(link) = echo.as_ref() {
            // Capture side adds about one 10 ms device period before processing.
            let hint = output_delay.as_millis() as u32 + 10;
            link.control.set_stream_delay_ms(hint);
            let _ = link.feed.push(played);
        }
    }

    /// Applies processing settings to the running processor, if any.
    pub(crate) fn set_processing(&self, settings: ProcessingSettings) {
        if let Ok(echo) = self.echo.lock()
            && let Some(link) = echo.as_ref()
        {
            link.control.set_settings(settings);
        }
    }
}

impl Outgoing {
    pub(crate) fn new(runtime: tokio::runtime::Handle, start_bps: u32) -> Self {
        Self {
            peers: RwLock::new(Vec::new()),
            keyframe_requested: AtomicBool::new(false),
            target_bps: AtomicU32::new(start_bps),
            mic_on: AtomicBool::new(true),
            camera_on: AtomicBool::new(true),
            frames_encoded: AtomicU64::new(0),
            echo: Mutex::new(None),
            encode_micros: AtomicU64::new(0),
            runtime,
        }
    }

    /// Starts sending to `id` (its connection is up). Forces a keyframe so it can decode at once.
    pub(crate) fn add_peer(&self, id: ParticipantId, link: Arc<PeerLink>) {
        if let Ok(mut peers) = self.peers.write() {
            peers.retain(|(p, _)| *p != id);
            peers.push((id, link));
        }
        self.request_keyframe();
    }

    /// Stops sending to `id`.
    pub(crate) fn remove_peer(&self, id: &ParticipantId) {
        if let Ok(mut peers) = self.peers.write() {
            peers.retain(|(p, _)| p != id);
        }
    }

    /// The next picture will be an IDR.
    pub(crate) fn request_keyframe(&self) {
        self.keyframe_requested.store(true, Ordering::Relaxed);
    }

    /// Sets the video bitrate the encoder should aim for.
    pub(crate) fn set_target_bps(&self, bps: u32) {
        self.target_bps.store(bps, Ordering::Relaxed);
    }

    /// Writes one encoded sample to `track` of every peer in `peers`; a failed write affects
    /// only that peer.
    fn fan_out(&self, peers: Vec<Arc<PeerLink>>, track: Track, data: &Bytes, duration: Duration) {
        for peer in peers {
            let data = data.clone();
            let written = self.runtime.block_on(async move {
                match track {
                    Track::Video => peer.write_video(data, duration).await,
                    Track::Audio => peer.write_audio(data, duration).await,
                }
            });
            if let Err(e) = written {
                debug!(error = %e, ?track, "write to a peer failed");
            }
        }
    }

    fn snapshot(&self) -> Vec<Arc<PeerLink>> {
        self.peers
            .read()
            .map(|p| p.iter().map(|(_, l)| Arc::clone(l)).collect())
            .unwrap_or_default()
    }
}

/// Which of a peer's tracks a sender writes.
#[derive(Debug, Clone, Copy)]
enum Track {
    Video,
    Audio,
}

/// A running sender thread; dropping it stops and joins the thread (and its capture thread).
pub(crate) type SenderThread = Worker;

/// Starts a sender thread named `name` running `body` until the returned handle is dropped
/// (`body` must return soon after its stop flag is raised).
fn spawn_sender(
    name: &str,
    body: impl FnOnce(&StopFlag) + Send + 'static,
) -> Result<SenderThread, EngineError> {
    Worker::spawn(name, move |stop| body(&stop)).map_err(|e| EngineError::Media(e.to_string()))
}

/// Where a sender thread sends its local preview, when the UI wants one.
pub(crate) struct Preview {
    pub(crate) frames: DropOldestSender<VideoFrameEvent>,
    pub(crate) repaint: Repaint,
}

/// Opens the video source for `input` and starts its capture thread.
fn open_video(
    input: &VideoInput,
    settings: VideoSettings,
    status: DeviceStatus,
) -> Result<(CaptureThread, DropOldestReceiver<I420Frame>), EngineError> {
    let media = |e: &dyn std::fmt::Display| EngineError::Media(e.to_string());
    match input {
        VideoInput::Camera(id) => {
            spawn_camera(id, settings.width, settings.height, settings.fps, status, 2)
                .map_err(|e| media(&e))
        }
        VideoInput::None => Err(EngineError::Media("no video input".into())),
        VideoInput::Synthetic => {
            let source = SyntheticVideo::new(settings.width, settings.height, settings.fps)
                .map_err(|e| media(&e))?;
            spawn_video(source, 2).map_err(|e| media(&e))
        }
        VideoInput::Y4mFile(path) => {
            let source = Y4mSource::open(path).map_err(|e| media(&e))?;
            spawn_video(source, 2).map_err(|e| media(&e))
        }
    }
}

/// Starts the video sender for `input`; `Ok(None)` for [`VideoInput::None`]. The source and the
/// encoder are built on the new thread (a 720p test pattern takes a moment to render), so the
/// caller never waits for them; a failure there is reported through `errors`.
pub(crate) fn spawn_video_sender(
    input: &VideoInput,
    settings: VideoSettings,
    out: Arc<Outgoing>,
    preview: Option<Preview>,
    errors: Sender<EngineEvent>,
    status: DeviceStatus,
) -> Result<Option<SenderThread>, EngineError> {
    if *input == VideoInput::None {
        return Ok(None);
    }
    let input = input.clone();
    let nominal = Duration::from_secs_f64(1.0 / f64::from(settings.fps.max(1)));
    spawn_sender("confab-video-send", move |stop| {
        let opened = open_video(&input, settings, Arc::clone(&status)).and_then(|capture| {
            H264Encoder::new(H264EncoderConfig::new(
                settings.width,
                settings.height,
                settings.fps as f32,
                settings.start_kbps.saturating_mul(1000),
            ))
            .map(|encoder| (capture, encoder))
            .map_err(|e| EngineError::Media(e.to_string()))
        });
        let ((capture, frames), mut encoder) = match opened {
            Ok(v) => v,
            Err(e) => {
                let _ = errors.send(EngineEvent::Error(Problem::SourceFailed {
                    kind: DeviceKind::Camera,
                    detail: e.to_string(),
                }));
                return;
            }
        };
        let is_camera = matches!(input, VideoInput::Camera(_));
        let mut bitrate = settings.start_kbps.saturating_mul(1000);
        // A target the encoder refused: not retried on every frame, only when the target moves.
        let mut refused_target: Option<u32> = None;
        let mut bitrate_failures = 0u64;
        let mut last_capture: Option<CaptureTime> = None;
        while !stop.is_raised() {
            let Ok(frame) = frames.recv_timeout(Duration::from_millis(100)) else {
                if capture.is_finished() {
                    report_capture_end(capture, DeviceKind::Camera, is_camera, &status, &errors);
                    return;
                }
                continue;
            };
            if let Some(p) = &preview {
                p.frames.send(VideoFrameEvent {
                    from: None,
                    frame: frame.clone(),
                    decoded_at: frame.capture_time,
                });
                (p.repaint)();
            }
            if !out.camera_on.load(Ordering::Relaxed) {
                continue;
            }
            let peers = out.snapshot();
            if peers.is_empty() {
                continue;
            }
            if out.keyframe_requested.swap(false, Ordering::Relaxed) {
                encoder.request_keyframe();
            }
            let target = out.target_bps.load(Ordering::Relaxed);
            if target != bitrate && refused_target != Some(target) {
                match encoder.set_bitrate(target) {
                    Ok(()) => {
                        bitrate = target;
                        refused_target = None;
                    }
                    Err(e) => {
                        refused_target = Some(target);
                        bitrate_failures += 1;
                        if bitrate_failures == 1 {
                            warn!(error = %e, "cannot change the video bitrate (further failures are logged at debug level)");
                        } else {
                            debug!(error = %e, failures = bitrate_failures, "cannot change the video bitrate");
                        }
                    }
                }
            }
            let started = Instant::now();
            let encoded = match encoder.encode(&frame) {
                Ok(Some(encoded)) => encoded,
                Ok(None) => continue,
                Err(e) => {
                    warn!(error = %e, "video encode failed");
                    continue;
                }
            };
            out.encode_micros
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            out.frames_encoded.fetch_add(1, Ordering::Relaxed);
            // The RTP clock advances by each sample's duration: use the real capture gap so
            // timestamps follow capture time even when frames are skipped.
            let duration = last_capture
                .map(|prev| frame.capture_time.saturating_since(prev))
                .filter(|d| !d.is_zero() && *d < Duration::from_secs(1))
                .unwrap_or(nominal);
            last_capture = Some(frame.capture_time);
            out.fan_out(peers, Track::Video, &Bytes::from(encoded.data), duration);
        }
    })
    .map(Some)
}

/// RMS level over ~100 ms windows, in dBFS.
#[derive(Default)]
struct LevelMeter {
    sum_squares: f64,
    samples: usize,
}

impl LevelMeter {
    const WINDOW: usize = 4800;

    /// Adds samples; returns the level when a window is complete.
    fn push(&mut self, samples: &[f32]) -> Option<f32> {
        self.sum_squares += samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>();
        self.samples += samples.len();
        if self.samples < Self::WINDOW {
            return None;
        }
        let rms = (self.sum_squares / self.samples as f64).sqrt();
        *self = Self::default();
        Some(if rms > 1e-5 {
            (20.0 * rms.log10()) as f32
        } else {
            -100.0
        })
    }
}

/// Opens the audio source for `input` and starts its capture thread.
fn open_audio(
    input: &AudioInput,
    status: DeviceStatus,
) -> Result<(CaptureThread, DropOldestReceiver<AudioFrame>), EngineError> {
    let media = |e: &dyn std::fmt::Display| EngineError::Media(e.to_string());
    match input {
        AudioInput::Microphone(id) => {
            let id = id.clone();
            // Opened on its capture thread: the device callback wakes the thread that reads.
            spawn_audio_with("confab-audio-mic", 16, move || {
                Microphone::open(Some(&id), status).map_err(|e| SourceError::Device(e.to_string()))
            })
            .map_err(|e| media(&e))
        }
        AudioInput::None => Err(EngineError::Media("no audio input".into())),
        AudioInput::Synthetic => {
            let source =
                SyntheticAudio::new(SyntheticAudioConfig::default()).map_err(|e| media(&e))?;
            spawn_audio(source, 8).map_err(|e| media(&e))
        }
        AudioInput::WavFile(path) => {
            let source = WavSource::open(path)
                .and_then(|s| s.with_frame_samples(AudioFrame::SAMPLES_20MS))
                .map_err(|e| media(&e))?;
            spawn_audio(source, 8).map_err(|e| media(&e))
        }
    }
}

/// Starts the audio sender for `input`; `Ok(None)` for [`AudioInput::None`]. Like the video
/// sender, it opens its source on its own thread and reports failures through `errors`.
pub(crate) fn spawn_audio_sender(
    input: &AudioInput,
    out: Arc<Outgoing>,
    probe: Option<Arc<dyn MediaProbe>>,
    errors: Sender<EngineEvent>,
    status: DeviceStatus,
    processing: ProcessingSettings,
) -> Result<Option<SenderThread>, EngineError> {
    if *input == AudioInput::None {
        return Ok(None);
    }
    let input = input.clone();
    let silence = vec![0.0f32; AudioFrame::SAMPLES_20MS];
    spawn_sender("confab-audio-send", move |stop| {
        let opened = open_audio(&input, Arc::clone(&status)).and_then(|capture| {
            OpusEncoder::new(OpusEncoderConfig::default())
                .map(|encoder| (capture, encoder))
                .map_err(|e| EngineError::Media(e.to_string()))
        });
        let ((capture, frames), mut encoder) = match opened {
            Ok(v) => v,
            Err(e) => {
                let _ = errors.send(EngineEvent::Error(Problem::SourceFailed {
                    kind: DeviceKind::Microphone,
                    detail: e.to_string(),
                }));
                return;
            }
        };
        let is_mic = matches!(input, AudioInput::Microphone(_));
        // Only a real microphone is cleaned: test sources are what the measurements rely on.
        let mut processor = is_mic.then(|| {
            let processor = AudioProcessor::new(processing);
            if let Ok(mut echo) = out.echo.lock() {
                *echo = Some(EchoLink {
                    feed: processor.render_feed(),
                    control: processor.control(),
                });
            }
            processor
        });
        let mut level = LevelMeter::default();
        // Devices deliver 10 ms; Opus takes 20 ms.
        let mut chunker = AudioChunker::new(AudioFrame::SAMPLES_20MS);
        while !stop.is_raised() {
            let Ok(captured) = frames.recv_timeout(Duration::from_millis(100)) else {
                if capture.is_finished() {
                    report_capture_end(capture, DeviceKind::Microphone, is_mic, &status, &errors);
                    return;
                }
                continue;
            };
            let mut captured = captured;
            if let Some(p) = &mut processor
                && let Err(e) = p.process_capture(&mut captured.samples)
            {
                debug!(error = %e, "audio processing skipped a frame");
            }
            let whole = if captured.samples.len() == AudioFrame::SAMPLES_20MS {
                vec![captured]
            } else {
                chunker.push(&captured)
            };
            for frame in whole {
                send_audio_frame(
                    &frame,
                    &mut AudioSendState {
                        out: &out,
                        probe: probe.as_ref(),
                        errors: &errors,
                        level: &mut level,
                        encoder: &mut encoder,
                        silence: &silence,
                    },
                );
            }
        }
        if processor.is_some()
            && let Ok(mut echo) = out.echo.lock()
        {
            *echo = None;
        }
    })
    .map(Some)
}

/// What [`send_audio_frame`] needs from the audio sender thread.
struct AudioSendState<'a> {
    out: &'a Outgoing,
    probe: Option<&'a Arc<dyn MediaProbe>>,
    errors: &'a Sender<EngineEvent>,
    level: &'a mut LevelMeter,
    encoder: &'a mut OpusEncoder,
    silence: &'a [f32],
}

/// Meters, encodes and fans out one 20 ms frame.
fn send_audio_frame(frame: &AudioFrame, st: &mut AudioSendState<'_>) {
    {
        let AudioSendState {
            out,
            probe,
            errors,
            level,
            encoder,
            silence,
        } = st;
        {
            if let Some(p) = probe {
                p.audio_captured(frame);
            }
            if let Some(db) = level.push(&frame.samples) {
                let _ = errors.send(EngineEvent::MicLevel(db));
            }
            let peers = out.snapshot();
            if peers.is_empty() {
                return;
            }
            // Muted: keep sending (near-empty DTX) frames so the RTP clock keeps pace with
            // real time and the far end's jitter estimate is not disturbed by a gap.
            let samples = if out.mic_on.load(Ordering::Relaxed) {
                &frame.samples[..]
            } else {
                &silence[..]
            };
            let encoded = match encoder.encode(samples) {
                Ok(e) => e,
                Err(e) => {
                    warn!(error = %e, "audio encode failed");
                    return;
                }
            };
            out.fan_out(
                peers,
                Track::Audio,
                &Bytes::from(encoded.data),
                frame.duration(),
            );
        }
    }
}

/// A capture thread ended on its own (device missing or failed for good): tell the user, and
/// say the call goes on without it.
fn report_capture_end(
    capture: CaptureThread,
    kind: DeviceKind,
    is_device: bool,
    status: &DeviceStatus,
    errors: &Sender<EngineEvent>,
) {
    let Err(e) = capture.stop() else { return };
    let what = if kind == DeviceKind::Camera {
        "Others will not see you"
    } else {
        "Others will not hear you"
    };
    if is_device {
        let message = match &e {
            SourceError::Device(text) => format!("{text} {what}; the call goes on."),
            other => format!("{other}. {what}; the call goes on."),
        };
        status(DeviceNotice {
            kind,
            state: DeviceState::Absent,
            device: String::new(),
            message,
        });
    } else {
        let _ = errors.send(EngineEvent::Error(Problem::SourceStopped {
            kind,
            detail: e.to_string(),
        }));
    }
}
