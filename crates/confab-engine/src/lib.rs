//! The call engine: everything between devices and the network, with no UI types (this crate
//! does not depend on eframe, egui, wgpu or winit).
//!
//! The app talks to an [`Engine`] only through [`EngineCommand`]s in and [`EngineEvent`]s (plus
//! decoded [`VideoFrameEvent`]s) out; a [`Repaint`] callback wakes the UI when something
//! arrives. The engine runs on its own tokio runtime (threads `confab-engine*`) and its own media
//! threads (`confab-video-*`, `confab-audio-*`, `confab-playout`).
//!
//! # Public surface
//!
//! | what | where |
//! |---|---|
//! | start, command, stop | [`Engine`], [`EngineCommand`], [`EngineError`] |
//! | configuration | [`EngineConfig`], [`VideoSettings`], [`VideoInput`], [`AudioInput`], [`AudioOutput`], [`media::ProcessingSettings`] |
//! | screen share | [`EngineCommand::ShareScreen`] with a [`ScreenInput`]; [`ScreenShareState`] / [`ScreenShareEnd`] in [`EngineEvent::ScreenShare`], [`EngineEvent::RemoteScreen`], frames tagged [`VideoRole`]; monitors in [`devices::screen`] |
//! | events | [`EngineEvent`], [`CallState`], [`LinkState`], [`VideoFrameEvent`] |
//! | why a call ended, what went wrong | [`EndReason`], [`Problem`] ([`reasons`]) |
//! | statistics | [`ParticipantStats`] (in [`EngineEvent::Stats`], once a second, with each connection's [`LocalCandidates`]); [`media::ProcessingStats`] (in [`EngineEvent::AudioProcessing`]) |
//! | media traits | [`AudioSink`] (where played audio goes; [`media::NullSink`] discards it), [`MediaProbe`] (taps for measurements) |
//! | pictures for display | [`media::I420Frame`], [`media::i420_to_rgba`] |
//! | device listing | [`devices::enumerate`], [`devices::DeviceList`], [`devices::DeviceInfo`], [`devices::DeviceKind`], [`devices::DEFAULT_DEVICE`]; notices [`devices::DeviceNotice`], [`devices::DeviceState`] |
//! | sound check | [`devices::sound_check`] |
//! | the peer-to-peer data-channel protocol | [`data_message`] |
//! | the verification code | [`verification`] |
//! | driving an engine headless (loopback, `confab join`, tests) | [`observer`], [`measure`] |
//! | a simulated network between two engines (loss, bursts, delay, jitter, rate, outages) | [`netsim`] ([`EngineConfig::candidate_rewriter`] is its hook) |
//! | codec library versions (`--version`) | [`codec_versions`] |
//! | the media toolkit (frames, codecs, jitter buffer, mixer, file and synthetic sources) | [`media`] |
//! | test doubles, only with the `testing` feature | `testing` |
//!
//! Everything else is `pub(crate)`: the session, the peer connection, the receive path, the
//! send path and the device internals.
//!
//! # Modules inside
//!
//! | module | owns |
//! |---|---|
//! | [`api`] | config, commands, events, stats types, the probe and sink traits |
//! | `session` | the call: a state machine without I/O (`session::call_core`), the task that carries out its actions, the stats collector |
//! | `negotiation` | perfect negotiation decisions for one peer connection |
//! | `peer` | one webrtc-rs peer connection: tracks, data channel, RTCP, stats; received media leaves it through a `MediaInlet` |
//! | `outgoing` | capture → encode → every connected peer |
//! | `incoming` | decoder threads, jitter buffers + mixer, playout |
//! | [`verification`] | the short code derived from both DTLS fingerprints |
//! | [`media`] | sources, codecs, conversion, jitter buffer, mixer |
//! | [`devices`] | cameras, microphones, speakers, hot-plug watching, one reopen lifecycle |
//! | [`observer`] | driving an engine headless: its events and pictures, waits on them |
//! | [`netsim`] | the network simulator: spec parsing, the per-direction link model, mirror sockets |

pub mod api;
pub mod codec_versions;
pub mod data_message;
pub mod devices;
pub(crate) mod incoming;
pub mod measure;
pub mod media;
pub(crate) mod negotiation;
pub mod netsim;
pub mod observer;
mod outgoing;
pub(crate) mod peer;
pub mod reasons;
mod session;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod verification;
mod worker;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use api::{
    AudioInput, AudioOutput, AudioSink, CallState, CandidateRewriter, EngineCommand, EngineConfig,
    EngineEvent, LinkState, LocalCandidates, MediaProbe, ParticipantStats, Repaint, ScreenInput,
    ScreenShareEnd, ScreenShareState, VideoFrameEvent, VideoInput, VideoRole, VideoSettings,
};
pub use reasons::{EndReason, Problem};
pub use session::SignalSender;

use devices::DeviceStatus;
use media::drop_oldest::{self, DropOldestReceiver};
use media::jitter_buffer::JitterBufferConfig;
use media::mixer::AudioMixer;

/// Decoded frames buffered for the UI before the oldest is dropped.
const VIDEO_QUEUE: usize = 8;

/// Why the engine could not do something.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A media component (source, codec, thread) failed.
    #[error("media: {0}")]
    Media(String),
    /// The engine's runtime could not start.
    #[error("cannot start the engine: {0}")]
    Start(String),
    /// The engine has stopped.
    #[error("the engine has stopped")]
    Stopped,
}

/// Device notices become [`EngineEvent::Device`] and wake the UI.
fn device_status(events: crossbeam_channel::Sender<EngineEvent>, repaint: Repaint) -> DeviceStatus {
    Arc::new(move |notice| {
        let _ = events.send(EngineEvent::Device(notice));
        repaint();
    })
}

/// A running call engine. Dropping it hangs up and stops every thread.
pub struct Engine {
    commands: tokio::sync::mpsc::UnboundedSender<EngineCommand>,
    events: crossbeam_channel::Receiver<EngineEvent>,
    video: DropOldestReceiver<VideoFrameEvent>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts an engine; it idles until [`EngineCommand::Join`].
    pub fn start(
        config: EngineConfig,
        sink: Box<dyn AudioSink>,
        repaint: Repaint,
    ) -> Result<Self, EngineError> {
        // Unbounded on purpose: commands come from a person at human rate, and the UI thread
        // must never block on the engine.
        let (cmd_tx, cmd_rx) = tokio::sync::mpsc::unbounded_channel();
        // Unbounded on purpose: control events are few (no media), and none may be lost; media
        // frames travel on the bounded drop-oldest video channel instead.
        let (ev_tx, ev_rx) = crossbeam_channel::unbounded();
        let (video_tx, video_rx) = drop_oldest::channel(VIDEO_QUEUE);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("confab-engine-rt")
            .enable_all()
            .build()
            .map_err(|e| EngineError::Start(e.to_string()))?;
        let outgoing = Arc::new(outgoing::Outgoing::new(
            runtime.handle().clone(),
            config.video.start_kbps * 1000,
        ));
        let echo_out = Arc::clone(&outgoing);
        let probe = config.probe.clone();
        let status = device_status(ev_tx.clone(), Arc::clone(&repaint));
        let (switch_tx, switch_rx) = crossbeam_channel::unbounded();
        let mixer = Arc::new(Mutex::new(AudioMixer::new(JitterBufferConfig::default())));
        let playout = incoming::PlayoutThread::spawn(
            Arc::clone(&mixer),
            sink,
            probe,
            incoming::PlayoutControls {
                switch: switch_rx,
                status: Arc::clone(&status),
                render: Some(Arc::new(move |played: &[f32], delay: Duration| {
                    echo_out.feed_echo_reference(played, delay);
                })),
                levels: Some({
                    let events = ev_tx.clone();
                    let wake = Arc::clone(&repaint);
                    Arc::new(move |levels| {
                        if events.send(EngineEvent::SpeakerLevels(levels)).is_ok() {
                            wake();
                        }
                    })
                }),
            },
        )?;
        let watcher = if config.watch_devices {
            let events = ev_tx.clone();
            let wake = Arc::clone(&repaint);
            let watcher =
                devices::watcher::DeviceWatcher::spawn(devices::watcher::POLL_EVERY, move |list| {
                    let _ = events.send(EngineEvent::Devices(list));
                    wake();
                })
                .map_err(|e| EngineError::Start(format!("cannot watch devices: {e}")))?;
            Some(watcher)
        } else {
            None
        };
        let mut session = session::Session::new(config, ev_tx, video_tx, repaint, outgoing, mixer);
        session.set_device_controls(switch_tx, status);
        let thread = std::thread::Builder::new()
            .name("confab-engine".into())
            .spawn(move || {
                runtime.block_on(session.run(cmd_rx));
                drop(watcher);
                drop(playout);
                runtime.shutdown_timeout(Duration::from_secs(2));
            })
            .map_err(|e| EngineError::Start(e.to_string()))?;
        Ok(Self {
            commands: cmd_tx,
            events: ev_rx,
            video: video_rx,
            thread: Some(thread),
        })
    }

    /// Sends a command; never blocks.
    pub fn send(&self, command: EngineCommand) -> Result<(), EngineError> {
        self.commands
            .send(command)
            .map_err(|_| EngineError::Stopped)
    }

    /// Control events (call state, participants, chat, stats, errors).
    pub fn events(&self) -> &crossbeam_channel::Receiver<EngineEvent> {
        &self.events
    }

    /// Decoded remote frames and the local preview (bounded; oldest dropped).
    pub fn video(&self) -> &DropOldestReceiver<VideoFrameEvent> {
        &self.video
    }

    /// Hangs up and waits for every engine thread to end.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let (closed_tx, _) = tokio::sync::mpsc::unbounded_channel();
        // Replacing the sender drops the only one, which ends the session loop.
        self.commands = closed_tx;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}
