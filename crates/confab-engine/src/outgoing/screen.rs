//! The screen sender thread (`confab-screen-send`): screen capture → content-tuned encoder →
//! every peer's screen track.
//!
//! Owns: [`open_screen`] (the capture source for a [`ScreenInput`], started on its own capture
//! thread), [`spawn_screen_sender`] and what the thread keeps between pictures.
//!
//! Screen content is not camera video, and the encoder is set up for it: openh264's
//! screen-content usage, the resolution kept (text must stay legible, so no resolution ladder:
//! pictures larger than [`MAX_SIZE`] are scaled down once to fit, keeping their aspect), the
//! frame rate let fall instead (15 fps with room, 10 then 5 when the bitrate is short: a slide
//! read at 5 fps is fine, a blurred one is not), a bitrate within the share the module docs of
//! `outgoing` give the screen, and an IDR when sharing starts and for every keyframe request.
//!
//! The sharer's own preview gets at most [`PREVIEW_FPS`] pictures a second (the UI shows it
//! small). When the capture thread ends on its own (the screen went away, the X server
//! closed), the thread says why on `ended` and stops.
//!
//! Contract: as every sender, it never waits on the network and stops when its handle drops.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{info, warn};

use super::degradation::FrameRateLimiter;
use super::{Outgoing, Preview, SenderThread, Track, spawn_sender};
use crate::EngineError;
use crate::api::{ScreenInput, VideoFrameEvent, VideoRole};
use crate::media::convert::Scaler;
use crate::media::drop_oldest::DropOldestReceiver;
use crate::media::h264::{H264Encoder, H264EncoderConfig};
use crate::media::source::{CaptureThread, spawn_video};
use crate::media::synthetic_screen::SyntheticScreen;
use crate::media::{CaptureTime, I420Frame};

/// The capture rate of a screen source; the encoder sends this or less.
pub(crate) const SCREEN_FPS: u32 = 15;
/// Pictures larger than this are scaled down to fit (keeping their aspect).
pub(crate) const MAX_SIZE: (u32, u32) = (1920, 1080);
/// The sharer's preview rate.
const PREVIEW_FPS: u32 = 5;
/// Screen pictures waiting for the encoder before the oldest is dropped.
const CAPTURE_QUEUE: usize = 2;

/// A running screen capture: its thread, its pictures, and what it shows (for the UI).
pub(crate) struct ScreenCapture {
    pub(crate) thread: CaptureThread,
    pub(crate) frames: DropOldestReceiver<I420Frame>,
    pub(crate) description: String,
}

/// Opens the screen source for `input` and starts its capture thread. Blocking (an X server
/// round trip, or rendering the synthetic desktop): call it off the session task.
///
/// # Errors
/// A sentence for the user: no display, no such monitor, capture refused.
pub(crate) fn open_screen(input: &ScreenInput) -> Result<ScreenCapture, String> {
    match input {
        ScreenInput::Synthetic => {
            let (w, h) = MAX_SIZE;
            let source = SyntheticScreen::new(w, h, SCREEN_FPS).map_err(|e| e.to_string())?;
            start_capture(source, format!("a synthetic screen ({w}x{h})"))
        }
        ScreenInput::X11 { display, monitor } => open_x11(display.as_deref(), *monitor, None),
        ScreenInput::X11Window { display, window } => {
            open_x11(display.as_deref(), None, Some(*window))
        }
        ScreenInput::Portal => open_portal(),
    }
}

/// Starts `source` on its capture thread, as the share of what `description` says.
fn start_capture(
    source: impl crate::media::VideoSource + Send + 'static,
    description: String,
) -> Result<ScreenCapture, String> {
    let (thread, frames) = spawn_video(source, CAPTURE_QUEUE).map_err(|e| e.to_string())?;
    Ok(ScreenCapture {
        thread,
        frames,
        description,
    })
}

#[cfg(all(target_os = "linux", feature = "wayland"))]
fn open_portal() -> Result<ScreenCapture, String> {
    use crate::devices::screen::PortalScreenSource;
    let source = PortalScreenSource::open(SCREEN_FPS).map_err(|e| e.to_string())?;
    let description = source.description();
    start_capture(source, description)
}

#[cfg(not(all(target_os = "linux", feature = "wayland")))]
fn open_portal() -> Result<ScreenCapture, String> {
    Err(if cfg!(target_os = "linux") {
        "this build of Confab cannot share through the desktop's screen-sharing portal (it was \
         built without the `wayland` feature)"
            .to_owned()
    } else {
        "sharing through the desktop's screen-sharing portal exists only on Linux".to_owned()
    })
}

#[cfg(target_os = "linux")]
fn open_x11(
    display: Option<&str>,
    monitor: Option<usize>,
    window: Option<u32>,
) -> Result<ScreenCapture, String> {
    use crate::devices::screen::{ScreenCaptureOptions, X11ScreenSource};
    let source = X11ScreenSource::open_with(&ScreenCaptureOptions {
        display: display.map(str::to_owned),
        monitor,
        window,
        fps: SCREEN_FPS,
        ..ScreenCaptureOptions::default()
    })
    .map_err(|e| e.to_string())?;
    let description = source.description();
    start_capture(source, description)
}

#[cfg(not(target_os = "linux"))]
fn open_x11(
    _display: Option<&str>,
    _monitor: Option<usize>,
    _window: Option<u32>,
) -> Result<ScreenCapture, String> {
    Err("X11 screen capture exists only on Linux".to_owned())
}

/// The frame rate to send at for a screen `bitrate`: all of [`SCREEN_FPS`] with room, less
/// when short (see the module docs).
fn fps_for(bitrate: u32) -> u32 {
    match bitrate {
        b if b >= 1_200_000 => SCREEN_FPS,
        b if b >= 600_000 => 10,
        _ => 5,
    }
}

/// What the screen sender keeps between pictures.
struct ScreenEncoding {
    encoder: Option<H264Encoder>,
    bitrate: u32,
    fps: u32,
    limiter: FrameRateLimiter,
    scaler: Scaler,
    last_preview: Option<CaptureTime>,
    last_capture: Option<CaptureTime>,
}

impl ScreenEncoding {
    fn new() -> Self {
        Self {
            encoder: None,
            bitrate: 0,
            fps: SCREEN_FPS,
            limiter: FrameRateLimiter::default(),
            scaler: Scaler::new(),
            last_preview: None,
            last_capture: None,
        }
    }

    /// `frame`, scaled down to fit [`MAX_SIZE`] if it is larger.
    fn fitted(&mut self, frame: I420Frame) -> I420Frame {
        let (w, h) = (frame.width(), frame.height());
        let (mw, mh) = MAX_SIZE;
        if w <= mw && h <= mh {
            return frame;
        }
        let scale = f64::min(f64::from(mw) / f64::from(w), f64::from(mh) / f64::from(h));
        let tw = ((f64::from(w) * scale) as u32 & !1).max(2);
        let th = ((f64::from(h) * scale) as u32 & !1).max(2);
        match self.scaler.scale(&frame, tw, th) {
            Ok(scaled) => scaled,
            Err(e) => {
                warn!(error = %e, "cannot scale the screen down; sending it as captured");
                frame
            }
        }
    }

    /// Encodes `frame` at `target` (bits per second), or `None` when the frame rate skips it
    /// or encoding fails.
    fn encode(&mut self, frame: &I420Frame, target: u32, keyframe: bool) -> Option<Vec<u8>> {
        let fps = fps_for(target);
        if fps != self.fps {
            info!(fps, target_kbps = target / 1000, "screen frame rate");
            self.fps = fps;
        }
        if !keyframe
            && !self
                .limiter
                .admit(frame.capture_time.as_micros(), fps, SCREEN_FPS)
        {
            return None;
        }
        let encoder = match &mut self.encoder {
            Some(e) => e,
            None => {
                let config = H264EncoderConfig {
                    allow_frame_skip: false,
                    screen_content: true,
                    ..H264EncoderConfig::new(
                        frame.width(),
                        frame.height(),
                        SCREEN_FPS as f32,
                        target,
                    )
                };
                match H264Encoder::new(config) {
                    Ok(e) => {
                        self.bitrate = target;
                        self.encoder.insert(e)
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot create the screen encoder");
                        return None;
                    }
                }
            }
        };
        if target != self.bitrate && encoder.set_bitrate(target).is_ok() {
            self.bitrate = target;
        }
        if keyframe {
            encoder.request_keyframe();
        }
        match encoder.encode(frame) {
            Ok(Some(unit)) => Some(unit.data),
            Ok(None) => None,
            Err(e) => {
                warn!(error = %e, "screen encode failed");
                None
            }
        }
    }

    /// The RTP duration of this picture: the real gap since the last one sent.
    fn duration(&mut self, at: CaptureTime) -> Duration {
        let nominal = Duration::from_secs(1) / SCREEN_FPS;
        let d = self
            .last_capture
            .map(|prev| at.saturating_since(prev))
            .filter(|d| !d.is_zero() && *d < Duration::from_secs(2))
            .unwrap_or(nominal);
        self.last_capture = Some(at);
        d
    }

    /// Whether the preview is due for a picture captured at `at`.
    fn preview_due(&mut self, at: CaptureTime) -> bool {
        let interval = Duration::from_secs(1) / PREVIEW_FPS;
        if self
            .last_preview
            .is_some_and(|prev| at.saturating_since(prev) < interval)
        {
            return false;
        }
        self.last_preview = Some(at);
        true
    }
}

/// Starts the screen sender on `capture`. When the capture ends on its own, `ended` gets a
/// sentence saying why and the thread stops.
pub(crate) fn spawn_screen_sender(
    capture: ScreenCapture,
    out: Arc<Outgoing>,
    preview: Option<Preview>,
    ended: impl FnOnce(String) + Send + 'static,
) -> Result<SenderThread, EngineError> {
    spawn_sender("confab-screen-send", move |stop| {
        let ScreenCapture { thread, frames, .. } = capture;
        let mut encoding = ScreenEncoding::new();
        while !stop.is_raised() {
            let Ok(frame) = frames.recv_timeout(Duration::from_millis(100)) else {
                if thread.is_finished() {
                    let why = match thread.stop() {
                        Err(e) => e.to_string(),
                        Ok(()) => "the screen capture stopped".to_owned(),
                    };
                    ended(why);
                    return;
                }
                continue;
            };
            let frame = encoding.fitted(frame);
            if let Some(p) = &preview
                && encoding.preview_due(frame.capture_time)
            {
                p.frames.send(VideoFrameEvent {
                    from: None,
                    role: VideoRole::Screen,
                    frame: frame.clone(),
                    decoded_at: frame.capture_time,
                });
                (p.repaint)();
            }
            let peers = out.snapshot();
            if peers.is_empty() {
                continue;
            }
            let keyframe = out.screen_keyframe_requested.swap(false, Ordering::Relaxed);
            let target = out.screen_target_bps.load(Ordering::Relaxed);
            let started = Instant::now();
            let Some(data) = encoding.encode(&frame, target, keyframe) else {
                continue;
            };
            out.screen_encode_micros
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            out.screen_frames_encoded.fetch_add(1, Ordering::Relaxed);
            out.screen_bytes_encoded
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            let duration = encoding.duration(frame.capture_time);
            out.fan_out(peers, Track::Screen, &Bytes::from(data), duration);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_rate_falls_with_the_bitrate() {
        assert_eq!(fps_for(2_500_000), SCREEN_FPS);
        assert_eq!(fps_for(800_000), 10);
        assert_eq!(fps_for(300_000), 5);
    }

    #[test]
    fn large_screens_are_fitted_keeping_their_aspect() {
        let mut encoding = ScreenEncoding::new();
        let Ok(frame) = I420Frame::black(3840, 1600) else {
            panic!("a black frame");
        };
        let fitted = encoding.fitted(frame);
        assert_eq!((fitted.width(), fitted.height()), (1920, 800));
        let Ok(small) = I420Frame::black(1280, 720) else {
            panic!("a black frame");
        };
        let kept = encoding.fitted(small);
        assert_eq!(
            (kept.width(), kept.height()),
            (1280, 720),
            "never scaled up"
        );
    }
}
