//! Outgoing media: capture → encode → every connected peer.
//!
//! One video thread and one audio thread per engine, whatever the number of participants: each
//! picture is encoded once and the same access unit is written to every peer's track (mesh).
//! The session steers them through [`Outgoing`]: which peers are connected, keyframe requests
//! (any peer's PLI forces an IDR for all), the target bitrate (the lowest congestion-control
//! estimate among the peers, clamped to the configured range), and mic/camera switches.
//!
//! The audio encoder's packet-loss hint (how much in-band FEC Opus carries) follows the worst
//! loss any peer reports for our audio ([`Outgoing::report_audio_loss`]).
//!
//! Contract: the threads never block on the network for long — `write_*` only queues into the
//! peer connection — and they stop when their [`SenderThread`] is dropped.
//!
//! | module | owns |
//! |---|---|
//! | `video` | the video sender thread: degrade, scale, encode, fan out |
//! | `degradation` | the balanced degradation policy (send size and frame rate for a bitrate) |
//! | `audio` | the audio sender thread and the FEC loss hint |

mod audio;
mod degradation;
mod screen;
mod video;

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::Sender;
use signaling_client::ParticipantId;
use tracing::debug;

pub(crate) use audio::spawn_audio_sender;
pub(crate) use screen::{ScreenCapture, open_screen, spawn_screen_sender};
pub(crate) use video::spawn_video_sender;

/// The least bitrate a shared screen gets while sharing.
pub(crate) const SCREEN_MIN_BPS: u32 = 300_000;
/// The most bitrate a shared screen gets (1080p text at 5-15 fps reads well at 1.5-2.5 Mbit/s).
pub(crate) const SCREEN_MAX_BPS: u32 = 2_500_000;
/// The camera's floor while a screen takes most of the bitrate.
const CAMERA_FLOOR_BPS: u32 = 150_000;

use super::EngineError;
use super::api::{EngineEvent, Repaint, VideoFrameEvent};
use super::devices::{DeviceKind, DeviceNotice, DeviceState, DeviceStatus};
use super::media::SourceError;
use super::media::audio_processing::{
    ProcessingControl, ProcessingSettings, ProcessingStats, RenderFeed,
};
use super::media::drop_oldest::DropOldestSender;
use super::media::source::CaptureThread;
use super::peer::PeerLink;
use super::reasons::Problem;
use super::worker::{StopFlag, Worker};
use audio::FecLossHint;

/// Shared between the session (which steers) and the sender threads (which obey).
pub(crate) struct Outgoing {
    peers: RwLock<Vec<(ParticipantId, Arc<PeerLink>)>>,
    keyframe_requested: AtomicBool,
    target_bps: AtomicU32,
    /// A screen share is running: the bitrate is split (see the module docs).
    pub(crate) sharing: AtomicBool,
    screen_keyframe_requested: AtomicBool,
    screen_target_bps: AtomicU32,
    /// Screen pictures encoded and sent, and the time spent encoding them (µs).
    pub(crate) screen_frames_encoded: AtomicU64,
    pub(crate) screen_encode_micros: AtomicU64,
    /// Bytes of screen access units sent (to each peer once per picture: counted once).
    pub(crate) screen_bytes_encoded: AtomicU64,
    /// Smoothed loss our peers report for our audio, and the hint it gives (percent).
    audio_loss: Mutex<FecLossHint>,
    audio_loss_hint: AtomicU8,
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

    /// The running processor's figures (`None` without a microphone).
    pub(crate) fn processing_stats(&self) -> Option<ProcessingStats> {
        let echo = self.echo.lock().ok()?;
        echo.as_ref().map(|link| link.control.stats())
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
            sharing: AtomicBool::new(false),
            screen_keyframe_requested: AtomicBool::new(false),
            screen_target_bps: AtomicU32::new(SCREEN_MAX_BPS.min(start_bps.max(SCREEN_MIN_BPS))),
            screen_frames_encoded: AtomicU64::new(0),
            screen_encode_micros: AtomicU64::new(0),
            screen_bytes_encoded: AtomicU64::new(0),
            audio_loss: Mutex::new(FecLossHint::default()),
            audio_loss_hint: AtomicU8::new(FecLossHint::default().percent()),
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

    /// Sets the video bitrate the encoders should aim for together: all of it for the camera,
    /// or split with a shared screen (see the module docs).
    pub(crate) fn set_target_bps(&self, bps: u32) {
        let sharing = self.sharing.load(Ordering::Relaxed);
        let camera_on = self.camera_on.load(Ordering::Relaxed);
        let (camera, screen) = split_bitrate(bps, sharing, camera_on);
        self.target_bps.store(camera, Ordering::Relaxed);
        self.screen_target_bps.store(screen, Ordering::Relaxed);
    }

    /// Starts or stops splitting the bitrate with a screen share; the next
    /// [`Outgoing::set_target_bps`] applies it (the session calls it at once).
    pub(crate) fn set_sharing(&self, sharing: bool) {
        self.sharing.store(sharing, Ordering::Relaxed);
        if sharing {
            self.screen_keyframe_requested
                .store(true, Ordering::Relaxed);
        }
    }

    /// The next screen picture will be an IDR.
    pub(crate) fn request_screen_keyframe(&self) {
        self.screen_keyframe_requested
            .store(true, Ordering::Relaxed);
    }

    /// Folds in the worst fraction of our audio (0..=1) a peer reported lost this second; the
    /// audio sender sizes Opus's in-band FEC from it (see `audio::FecLossHint`).
    pub(crate) fn report_audio_loss(&self, fraction: f64) {
        if let Ok(mut hint) = self.audio_loss.lock() {
            let percent = hint.on_report(fraction);
            self.audio_loss_hint.store(percent, Ordering::Relaxed);
        }
    }

    /// The Opus packet-loss hint in percent.
    pub(crate) fn audio_loss_hint(&self) -> u8 {
        self.audio_loss_hint.load(Ordering::Relaxed)
    }

    /// Writes one encoded sample to `track` of every peer in `peers`; a failed write affects
    /// only that peer.
    fn fan_out(&self, peers: Vec<Arc<PeerLink>>, track: Track, data: &Bytes, duration: Duration) {
        for peer in peers {
            let data = data.clone();
            let written = self.runtime.block_on(async move {
                match track {
                    Track::Video => peer.write_video(data, duration).await,
                    Track::Screen => peer.write_screen(data, duration).await,
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
    Screen,
    Audio,
}

/// `(camera, screen)` bitrates from the total `bps`: without a share all of it is the camera's
/// (the screen keeps the most it could get, unused); with one and the camera off, all of it is
/// the screen's (up to its ceiling); with both, the screen takes two thirds within its bounds and
/// the camera the rest, at least its floor. Never more than `bps` together: below both floors
/// the two thirds / one third split holds as it is.
fn split_bitrate(bps: u32, sharing: bool, camera_on: bool) -> (u32, u32) {
    if !sharing {
        return (bps, SCREEN_MAX_BPS);
    }
    if !camera_on {
        return (bps, bps.min(SCREEN_MAX_BPS));
    }
    if bps < SCREEN_MIN_BPS + CAMERA_FLOOR_BPS {
        let screen = bps / 3 * 2;
        return (bps - screen, screen);
    }
    let screen = (bps / 3 * 2).clamp(SCREEN_MIN_BPS, SCREEN_MAX_BPS);
    let camera = bps.saturating_sub(screen).max(CAMERA_FLOOR_BPS);
    (camera, screen)
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

#[cfg(test)]
mod split_tests {
    use super::*;

    #[test]
    fn the_screen_takes_two_thirds_within_its_bounds() {
        let split = |bps| split_bitrate(bps, true, true);
        assert_eq!(
            split_bitrate(1_500_000, false, true),
            (1_500_000, SCREEN_MAX_BPS)
        );
        assert_eq!(split(3_000_000), (1_000_000, 2_000_000));
        assert_eq!(split(6_000_000), (3_500_000, SCREEN_MAX_BPS));
        assert_eq!(split(600_000), (200_000, 400_000));
    }

    #[test]
    fn the_split_never_exceeds_the_total_and_a_camera_off_leaves_it_all_to_the_screen() {
        for bps in [
            100_000, 300_000, 449_999, 450_000, 1_000_000, 2_500_000, 9_000_000,
        ] {
            let (camera, screen) = split_bitrate(bps, true, true);
            assert!(camera + screen <= bps, "{bps}: {camera}+{screen}");
        }
        assert_eq!(split_bitrate(300_000, true, true), (100_000, 200_000));
        assert_eq!(
            split_bitrate(1_800_000, true, false),
            (1_800_000, 1_800_000)
        );
        assert_eq!(
            split_bitrate(4_000_000, true, false),
            (4_000_000, SCREEN_MAX_BPS)
        );
    }
}
