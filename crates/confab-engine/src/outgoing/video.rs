//! The video sender thread (`confab-video-send`): capture → degrade → encode → every peer.
//!
//! Owns: [`spawn_video_sender`] and [`VideoEncoding`], what the thread keeps between pictures (the
//! encoder, the bitrate it was given, the degradation policy, the frame-rate limiter and the
//! scaler).
//!
//! Each captured picture is offered to the local preview at full size, then, while someone
//! receives: the session's target bitrate goes to the encoder and to the
//! [`Degradation`] policy, which picks the send format; pictures the format's frame rate does
//! not need are dropped here ([`FrameRateLimiter`]), the rest are scaled to its size
//! ([`Scaler`], bilinear, aspect kept) and encoded. A new size re-creates the encoder (a
//! keyframe with new SPS/PPS, which the receiver's decoder follows); a new frame rate only
//! changes rate control's budget per picture.
//!
//! Contract: as for every sender, the thread never waits on the network, and stops when its
//! handle is dropped.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::Sender;
use tracing::{debug, info, warn};

use super::degradation::{Degradation, FrameRateLimiter, Ladder, Rung};
use super::{Outgoing, Preview, SenderThread, Track, report_capture_end, spawn_sender};
use crate::EngineError;
use crate::api::{EngineEvent, VideoFrameEvent, VideoInput, VideoSettings};
use crate::devices::camera::spawn_camera;
use crate::devices::{DeviceKind, DeviceStatus};
use crate::media::convert::Scaler;
use crate::media::drop_oldest::DropOldestReceiver;
use crate::media::h264::{EncodedFrame, H264Encoder, H264EncoderConfig};
use crate::media::source::{CaptureThread, spawn_video};
use crate::media::synthetic_video::SyntheticVideo;
use crate::media::y4m::Y4mSource;
use crate::media::{CaptureTime, I420Frame};
use crate::reasons::Problem;

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

/// What the video sender keeps between pictures; see the module docs.
struct VideoEncoding {
    encoder: H264Encoder,
    source_fps: u32,
    /// The bitrate the encoder has.
    bitrate: u32,
    /// A target the encoder refused: not retried on every frame, only when the target moves.
    refused_target: Option<u32>,
    bitrate_failures: u64,
    /// Built for the source's size on its first picture (a camera may not give what was asked).
    degradation: Option<((u32, u32), Degradation)>,
    limiter: FrameRateLimiter,
    scaler: Scaler,
}

impl VideoEncoding {
    fn new(encoder: H264Encoder, settings: VideoSettings) -> Self {
        Self {
            encoder,
            source_fps: settings.fps.max(1),
            bitrate: settings.start_kbps.saturating_mul(1000),
            refused_target: None,
            bitrate_failures: 0,
            degradation: None,
            limiter: FrameRateLimiter::default(),
            scaler: Scaler::new(),
        }
    }

    /// Applies `target` to the encoder's bitrate (retrying a refused value only once it moves).
    fn apply_bitrate(&mut self, target: u32) {
        if target == self.bitrate || self.refused_target == Some(target) {
            return;
        }
        match self.encoder.set_bitrate(target) {
            Ok(()) => {
                self.bitrate = target;
                self.refused_target = None;
            }
            Err(e) => {
                self.refused_target = Some(target);
                self.bitrate_failures += 1;
                if self.bitrate_failures == 1 {
                    warn!(error = %e, "cannot change the video bitrate (further failures are logged at debug level)");
                } else {
                    debug!(error = %e, failures = self.bitrate_failures, "cannot change the video bitrate");
                }
            }
        }
    }

    /// The send format for `frame` at `target`, updating the policy (and the encoder's frame
    /// rate when the format's changes).
    fn format_for(&mut self, frame: &I420Frame, target: u32, now: Instant) -> Rung {
        let size = (frame.width(), frame.height());
        let fresh = self.degradation.as_ref().is_none_or(|(s, _)| *s != size);
        if fresh {
            let ladder = Ladder::for_source(size.0, size.1, self.source_fps);
            let policy = Degradation::new(ladder, target, now);
            info!(format = %policy.current(), target_kbps = target / 1000, "video send format");
            self.set_fps(policy.current().fps);
            self.degradation = Some((size, policy));
        }
        let Some((_, policy)) = self.degradation.as_mut() else {
            // Unreachable: set just above. Sending the source as it is would be the fallback.
            return Rung {
                width: size.0,
                height: size.1,
                fps: self.source_fps,
                min_bps: 0,
            };
        };
        let before = policy.current();
        let Some(next) = policy.update(target, now) else {
            return before;
        };
        info!(from = %before, to = %next, target_kbps = target / 1000, "video send format changed");
        if next.fps != before.fps {
            self.set_fps(next.fps);
        }
        next
    }

    fn set_fps(&mut self, fps: u32) {
        if let Err(e) = self.encoder.set_frame_rate(fps as f32) {
            debug!(error = %e, fps, "cannot change the encoder's frame rate");
        }
    }

    /// Degrades and encodes one picture at `target`; `None` when it is not sent (dropped for
    /// the frame rate, skipped by rate control, or failed).
    fn encode(&mut self, frame: &I420Frame, target: u32, now: Instant) -> Option<EncodedFrame> {
        self.apply_bitrate(target);
        let rung = self.format_for(frame, target, now);
        if !self
            .limiter
            .admit(frame.capture_time.as_micros(), rung.fps, self.source_fps)
        {
            return None;
        }
        let scaled;
        let picture = if (rung.width, rung.height) == (frame.width(), frame.height()) {
            frame
        } else {
            match self.scaler.scale(frame, rung.width, rung.height) {
                Ok(s) => {
                    scaled = s;
                    &scaled
                }
                Err(e) => {
                    debug!(error = %e, "scaling for the send format failed; sending full size");
                    frame
                }
            }
        };
        match self.encoder.encode(picture) {
            Ok(encoded) => encoded,
            Err(e) => {
                warn!(error = %e, "video encode failed");
                None
            }
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
            H264Encoder::new(H264EncoderConfig {
                // The frame rate is ours to choose (the degradation ladder lowers it evenly when
                // the bitrate is short); openh264's rate control skipping pictures on its own
                // made uneven gaps: 5-30 % of the pictures of a 720p call at 1.35-1.5 Mbit/s,
                // seen as freezes by the receiver.
                allow_frame_skip: false,
                ..H264EncoderConfig::new(
                    settings.width,
                    settings.height,
                    settings.fps as f32,
                    settings.start_kbps.saturating_mul(1000),
                )
            })
            .map(|encoder| (capture, encoder))
            .map_err(|e| EngineError::Media(e.to_string()))
        });
        let ((capture, frames), encoder) = match opened {
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
        let mut encoding = VideoEncoding::new(encoder, settings);
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
                    role: crate::api::VideoRole::Camera,
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
                encoding.encoder.request_keyframe();
            }
            let target = out.target_bps.load(Ordering::Relaxed);
            let started = Instant::now();
            let Some(encoded) = encoding.encode(&frame, target, started) else {
                continue;
            };
            out.encode_micros
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            out.frames_encoded.fetch_add(1, Ordering::Relaxed);
            // The RTP clock advances by each sample's duration: use the real capture gap so
            // timestamps follow capture time even when frames are skipped or dropped.
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
