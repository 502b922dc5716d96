//! The call session task: executes what the call's state machine ([`CallCore`]) decides, on
//! the real signaling client, peer connections, decoder threads and jitter buffers.
//!
//! Runs as one task on the engine's runtime. Its inputs, grouped by where they come from:
//! - **user commands** ([`EngineCommand`]): join, leave, mic/camera, sources, chat, ICE restart,
//!   screen share (its capture is opened off this task, then `call_core/screen.rs` decides);
//! - **signaling** ([`ClientEvent`]): participants joining/leaving, offers, answers, candidates,
//!   hang-ups, and the signaling connection dropping and coming back;
//! - **peer connections** ([`PeerEvent`], tagged with the participant): local candidates,
//!   negotiation needed, signaling/connection state, data-channel messages, keyframe requests
//!   (received media goes from the link straight to the decoder and the mixer, never through
//!   here);
//! - **decoder threads**: "this participant's camera (or screen) needs a keyframe";
//! - **the screen sender**: "the screen capture ended" (the share stops);
//! - **a one-second tick**: statistics ([`stats_collector`]) and the congestion-control bitrate.
//!
//! Each input goes to the core, which answers with [`Action`]s; the loop carries them out in
//! order, and feeds the results of the asynchronous ones (offer created, offer answered, peer
//! created, verification code shown) back to the core, whose answers join the same queue. The
//! rules themselves (who offers, glare, restarts, PLI rate limits, the data-channel protocol)
//! live in [`call_core`], with unit tests that need no sockets.
//!
//! Rules the loop keeps:
//! - A signaling reconnect leaves peer connections alone: media never goes through the server.
//! - When a participant leaves, its decoder is stopped before `ParticipantLeft` is emitted, so no
//!   frame of it arrives afterwards.

mod actions;
pub(crate) mod call_core;
mod executor;
mod screen_io;
pub(crate) mod stats_collector;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Sender;
use signaling_client::{
    ClientConfig, ClientEvent, ParticipantId, Signal, SignalingClient, Welcome,
};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tracing::{debug, info, warn};

use super::api::AudioOutput;
use super::api::{
    CallState, EngineCommand, EngineConfig, EngineEvent, Repaint, VideoFrameEvent, VideoRole,
};
use super::devices::{DeviceKind, DeviceStatus};
use super::incoming::{SharedMixer, VideoDecoderThread, receive_inlet};
use super::media::drop_oldest::DropOldestSender;
use super::media::opus_codec::OpusDecoder;
use super::outgoing::{Outgoing, Preview, SenderThread, spawn_audio_sender, spawn_video_sender};
use super::peer::{BitrateRange, PeerEvent, PeerLink, PeerSettings};
use super::reasons::{EndReason, Problem};
use call_core::CallCore;
use stats_collector::{
    AudioPlayoutSnapshot, DecoderSnapshot, EncoderSnapshot, PeerSample, StatsCollector,
};

/// Sends signals; a trait so the session can be driven with a fake signaling channel in tests.
pub trait SignalSender: Send + Sync {
    /// Relays `signal` to `to`.
    fn send(&self, to: &ParticipantId, signal: Signal);
}

impl SignalSender for SignalingClient {
    fn send(&self, to: &ParticipantId, signal: Signal) {
        if let Err(e) = self.send_signal(to.clone(), signal) {
            warn!(error = %e, "signal not sent");
        }
    }
}

/// The I/O side of one peer: what the core's decisions are carried out on.
struct PeerIo {
    link: Arc<PeerLink>,
    decoder: VideoDecoderThread,
    /// Its shared screen's decoder.
    screen_decoder: VideoDecoderThread,
    /// Which of the links ever made for this session this is: events of a link that was
    /// replaced (`call_core/rebuild.rs`) may still be queued, and must not be taken for the
    /// new one's.
    generation: u64,
}

/// Everything the session task owns.
pub(crate) struct Session {
    config: EngineConfig,
    core: CallCore,
    stats: StatsCollector,
    events: Sender<EngineEvent>,
    video: DropOldestSender<VideoFrameEvent>,
    repaint: Repaint,
    signaling: Option<Arc<dyn SignalSender>>,
    client: Option<SignalingClient>,
    signaling_events: Option<mpsc::Receiver<ClientEvent>>,
    ice_servers: Vec<signaling_client::IceServer>,
    peers: HashMap<ParticipantId, PeerIo>,
    peer_events_tx: UnboundedSender<(ParticipantId, u64, PeerEvent)>,
    peer_events: UnboundedReceiver<(ParticipantId, u64, PeerEvent)>,
    /// The generation the next link gets.
    next_generation: u64,
    keyframe_tx: UnboundedSender<(ParticipantId, VideoRole)>,
    keyframe_rx: UnboundedReceiver<(ParticipantId, VideoRole)>,
    outgoing: Arc<Outgoing>,
    mixer: SharedMixer,
    video_sender: Option<SenderThread>,
    audio_sender: Option<SenderThread>,
    /// Our screen share's capture and encoder (`screen_io`).
    screen: screen_io::ScreenIo,
    /// The video bitrate the peers' estimates allow (camera and screen together).
    video_target_bps: u32,
    /// The UI asked for the sources to run outside a call (lobby preview).
    preview_on: bool,
    /// Tells the playout thread to switch speakers.
    speaker_switch: Option<crossbeam_channel::Sender<AudioOutput>>,
    /// Where capture devices report being lost, back, or replaced.
    device_status: Option<DeviceStatus>,
}

impl Session {
    pub(crate) fn new(
        config: EngineConfig,
        events: Sender<EngineEvent>,
        video: DropOldestSender<VideoFrameEvent>,
        repaint: Repaint,
        outgoing: Arc<Outgoing>,
        mixer: SharedMixer,
    ) -> Self {
        let (peer_events_tx, peer_events) = mpsc::unbounded_channel();
        let (keyframe_tx, keyframe_rx) = mpsc::unbounded_channel();
        let video_target_bps = config.video.start_kbps * 1000;
        let mut core = CallCore::new(config.video_input != super::api::VideoInput::None);
        // Not in a call yet: nobody to tell.
        let _ = core.set_sources(
            config.video_input != super::api::VideoInput::None,
            config.audio_input != super::api::AudioInput::None,
        );
        Self {
            config,
            core,
            stats: StatsCollector::default(),
            events,
            video,
            repaint,
            signaling: None,
            client: None,
            signaling_events: None,
            ice_servers: Vec::new(),
            peers: HashMap::new(),
            peer_events_tx,
            peer_events,
            next_generation: 0,
            keyframe_tx,
            keyframe_rx,
            outgoing,
            mixer,
            video_sender: None,
            audio_sender: None,
            screen: screen_io::ScreenIo::default(),
            video_target_bps,
            preview_on: false,
            speaker_switch: None,
            device_status: None,
        }
    }

    /// Connects the session to the playout thread's speaker switch and the device notices.
    pub(crate) fn set_device_controls(
        &mut self,
        speaker_switch: crossbeam_channel::Sender<AudioOutput>,
        status: DeviceStatus,
    ) {
        self.speaker_switch = Some(speaker_switch);
        self.device_status = Some(status);
    }

    /// Where device notices go (a no-op without [`Session::set_device_controls`]).
    fn device_status(&self) -> DeviceStatus {
        self.device_status
            .clone()
            .unwrap_or_else(|| Arc::new(|_notice| {}))
    }

    fn emit(&self, event: EngineEvent) {
        let _ = self.events.send(event);
        (self.repaint)();
    }

    /// Runs until the command channel closes (the engine is shut down).
    pub(crate) async fn run(mut self, mut commands: UnboundedReceiver<EngineCommand>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd).await,
                    None => break,
                },
                ev = next_signaling(&mut self.signaling_events) => self.on_signaling(ev).await,
                Some((id, generation, ev)) = self.peer_events.recv() => {
                    self.on_peer_event(id, generation, ev).await;
                }
                Some((id, role)) = self.keyframe_rx.recv() => {
                    let actions = self.core.keyframe_needed(&id, role, Instant::now());
                    self.execute(actions).await;
                }
                Some((generation, opened)) = self.screen.opened.1.recv() => {
                    self.screen_opened(generation, opened).await;
                }
                Some((generation, why)) = self.screen.ended.1.recv() => {
                    self.screen_capture_ended(generation, why).await;
                }
                _ = tick.tick() => self.on_tick().await,
            }
        }
        self.leave(EndReason::AppClosed).await;
    }

    async fn on_command(&mut self, cmd: EngineCommand) {
        match cmd {
            EngineCommand::Join {
                url,
                room,
                password,
            } => self.join(url, room, password).await,
            EngineCommand::Leave => self.leave(EndReason::Left).await,
            EngineCommand::SetMic(on) => {
                self.outgoing.mic_on.store(on, Ordering::Relaxed);
                let actions = self.core.set_mic(on);
                self.execute(actions).await;
            }
            EngineCommand::SetCamera(on) => {
                self.outgoing.camera_on.store(on, Ordering::Relaxed);
                // With a share running, the camera's part of the bitrate goes to the screen.
                self.outgoing.set_target_bps(self.video_target_bps);
                if on {
                    self.outgoing.request_keyframe();
                }
                let actions = self.core.set_camera(on);
                self.execute(actions).await;
            }
            EngineCommand::SelectSources { video, audio } => {
                let actions = self.core.set_sources(
                    video != super::api::VideoInput::None,
                    audio != super::api::AudioInput::None,
                );
                self.execute(actions).await;
                self.config.video_input = video;
                self.config.audio_input = audio;
                // Sources run in a call and in the lobby preview; elsewhere the choice is only
                // recorded for the next start.
                if self.core.in_call() || self.preview_on {
                    // Drop the old threads first: one capture device per kind at a time.
                    self.video_sender = None;
                    self.audio_sender = None;
                    self.start_senders();
                    self.outgoing.request_keyframe();
                }
            }
            EngineCommand::SetVideoSettings(video) => {
                let new_size = (video.width, video.height, video.fps)
                    != (
                        self.config.video.width,
                        self.config.video.height,
                        self.config.video.fps,
                    );
                self.config.video = video;
                if new_size && (self.core.in_call() || self.preview_on) {
                    self.video_sender = None;
                    self.start_video_sender();
                    self.outgoing.request_keyframe();
                }
            }
            EngineCommand::SetAudioProcessing(settings) => {
                self.config.processing = settings;
                self.outgoing.set_processing(settings);
            }
            EngineCommand::SelectSpeaker(output) => {
                if let Some(switch) = &self.speaker_switch {
                    let _ = switch.send(output);
                }
            }
            EngineCommand::SendChat(text) => {
                let actions =
                    self.core
                        .send_chat(text, &self.config.name, SystemTime::now(), Instant::now());
                self.execute(actions).await;
            }
            EngineCommand::SetName(name) => self.config.name = name,
            EngineCommand::Preview(on) => {
                self.preview_on = on;
                if !self.core.in_call() {
                    if on {
                        if self.video_sender.is_none() && self.audio_sender.is_none() {
                            self.start_senders();
                        }
                    } else {
                        self.video_sender = None;
                        self.audio_sender = None;
                    }
                }
            }
            EngineCommand::ShareScreen(Some(input)) => self.share_screen(input),
            EngineCommand::ShareScreen(None) => self.stop_sharing().await,
            EngineCommand::RestartIce => {
                let actions = self.core.restart_ice_all(Instant::now());
                self.execute(actions).await;
            }
        }
    }

    async fn join(&mut self, url: String, room: String, password: Option<String>) {
        if self.core.in_call() {
            self.emit(EngineEvent::Error(Problem::AlreadyInCall));
            return;
        }
        self.emit(EngineEvent::CallState(CallState::Connecting));
        let mut config = ClientConfig::new(url, room, self.config.name.clone());
        config.join.password = password;
        match SignalingClient::connect(config).await {
            Ok((client, welcome, events)) => {
                let sender: Arc<dyn SignalSender> = Arc::new(client.clone());
                self.client = Some(client);
                self.attach(welcome, sender, events).await;
            }
            Err(e) => {
                let reason = EndReason::from(&e);
                self.emit(EngineEvent::Error(Problem::JoinFailed(reason.clone())));
                self.emit(EngineEvent::CallState(CallState::Ended { reason }));
            }
        }
    }

    /// Enters the room described by `welcome`, signaling through `sender`/`events`.
    pub(crate) async fn attach(
        &mut self,
        welcome: Welcome,
        sender: Arc<dyn SignalSender>,
        events: mpsc::Receiver<ClientEvent>,
    ) {
        info!(id = %welcome.id, room = %welcome.room, others = welcome.participants.len(), "in the room");
        self.signaling = Some(sender);
        self.signaling_events = Some(events);
        self.ice_servers = welcome.ice_servers.clone();
        self.ice_servers
            .extend(self.config.extra_ice_servers.iter().cloned());
        self.emit(EngineEvent::IceServers(
            self.ice_servers
                .iter()
                .flat_map(|s| s.urls.iter().cloned())
                .collect(),
        ));
        self.video_target_bps = self.config.video.start_kbps * 1000;
        self.outgoing.set_target_bps(self.video_target_bps);
        self.start_senders();
        let actions = self.core.entered(&welcome);
        self.execute(actions).await;
    }

    fn start_senders(&mut self) {
        self.start_video_sender();
        self.start_audio_sender();
    }

    fn start_video_sender(&mut self) {
        let preview = self.config.preview.then(|| Preview {
            frames: self.video.clone(),
            repaint: Arc::clone(&self.repaint),
        });
        match spawn_video_sender(
            &self.config.video_input,
            self.config.video,
            Arc::clone(&self.outgoing),
            preview,
            self.events.clone(),
            self.device_status(),
        ) {
            Ok(t) => self.video_sender = t,
            Err(e) => self.emit(EngineEvent::Error(Problem::SourceFailed {
                kind: DeviceKind::Camera,
                detail: e.to_string(),
            })),
        }
    }

    fn start_audio_sender(&mut self) {
        match spawn_audio_sender(
            &self.config.audio_input,
            Arc::clone(&self.outgoing),
            self.config.probe.clone(),
            self.events.clone(),
            self.device_status(),
            self.config.processing,
        ) {
            Ok(t) => self.audio_sender = t,
            Err(e) => self.emit(EngineEvent::Error(Problem::SourceFailed {
                kind: DeviceKind::Microphone,
                detail: e.to_string(),
            })),
        }
    }

    async fn leave(&mut self, reason: EndReason) {
        let actions = self.core.leave(reason);
        self.execute(actions).await;
    }

    async fn on_signaling(&mut self, event: Option<ClientEvent>) {
        let Some(event) = event else {
            // The client task is gone.
            self.signaling_events = None;
            return;
        };
        if matches!(event, ClientEvent::Closed(_)) {
            self.signaling_events = None;
        }
        let actions = self.core.on_signaling(event);
        self.execute(actions).await;
    }

    async fn on_peer_event(&mut self, id: ParticipantId, generation: u64, event: PeerEvent) {
        if self
            .peers
            .get(&id)
            .is_none_or(|p| p.generation != generation)
        {
            debug!(%id, ?event, "event of a closed or replaced link ignored");
            return;
        }
        let actions = self.core.on_peer(id, event, Instant::now());
        self.execute(actions).await;
    }

    fn link(&self, id: &ParticipantId) -> Option<Arc<PeerLink>> {
        self.peers.get(id).map(|p| Arc::clone(&p.link))
    }

    /// Creates the peer connection, decoder and jitter buffer for `id`; false (and an error
    /// event) if it cannot.
    async fn create_peer(&mut self, id: &ParticipantId) -> bool {
        let settings = PeerSettings {
            ice_servers: self.ice_servers.clone(),
            relay_only: self.config.relay_only,
            bind_addrs: self.config.bind_addrs.clone(),
            video_bitrate: BitrateRange {
                min_bps: self.config.video.min_kbps * 1000,
                start_bps: self.config.video.start_kbps * 1000,
                max_bps: self.config.video.max_kbps * 1000,
            },
        };
        // The link's poll tasks push received media straight into these (see `incoming`).
        let decoders = VideoDecoderThread::spawn(
            id.clone(),
            VideoRole::Camera,
            self.video.clone(),
            Arc::clone(&self.repaint),
            self.keyframe_tx.clone(),
        )
        .and_then(|camera| {
            VideoDecoderThread::spawn(
                id.clone(),
                VideoRole::Screen,
                self.video.clone(),
                Arc::clone(&self.repaint),
                self.keyframe_tx.clone(),
            )
            .map(|screen| (camera, screen))
        });
        let (decoder, screen_decoder) = match decoders {
            Ok(d) => d,
            Err(e) => {
                self.emit(EngineEvent::Error(Problem::PeerSetup {
                    name: self.core.name_of(id),
                    detail: e.to_string(),
                }));
                return false;
            }
        };
        let audio_inlet = match OpusDecoder::new() {
            Ok(d) => self
                .mixer
                .lock()
                .ok()
                .map(|mut m| m.add_participant_with_inlet(id.clone(), d)),
            Err(e) => {
                warn!(error = %e, "no audio decoder; this participant will be silent");
                None
            }
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let inlet = receive_inlet(&decoder, &screen_decoder, audio_inlet);
        let link = match PeerLink::new(&settings, tx, inlet).await {
            Ok(link) => Arc::new(link),
            Err(e) => {
                if let Ok(mut m) = self.mixer.lock() {
                    m.remove_participant(id);
                }
                self.emit(EngineEvent::Error(Problem::PeerSetup {
                    name: self.core.name_of(id),
                    detail: e.to_string(),
                }));
                return false;
            }
        };
        // Tag this link's events with its participant and merge them into the session's stream.
        let merged = self.peer_events_tx.clone();
        let who = id.clone();
        let generation = self.next_generation;
        self.next_generation += 1;
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if merged.send((who.clone(), generation, ev)).is_err() {
                    break;
                }
            }
        });
        self.peers.insert(
            id.clone(),
            PeerIo {
                link,
                decoder,
                screen_decoder,
                generation,
            },
        );
        true
    }

    async fn close_peer(&mut self, id: &ParticipantId) {
        let Some(peer) = self.peers.remove(id) else {
            return;
        };
        self.outgoing.remove_peer(id);
        self.stats.remove(id);
        peer.link.close().await;
        if let Ok(mut m) = self.mixer.lock() {
            m.remove_participant(id);
        }
        // Joins the decoder threads: nothing of this participant is delivered after this.
        drop(peer.decoder);
        drop(peer.screen_decoder);
    }

    async fn on_tick(&mut self) {
        let (actions, collect) = self.core.tick(Instant::now());
        self.execute(actions).await;
        if self.signaling.is_some()
            && let Some(processing) = self.outgoing.processing_stats()
        {
            self.emit(EngineEvent::AudioProcessing(processing));
        }
        if !collect {
            return;
        }
        let encoder = EncoderSnapshot {
            frames: self.outgoing.frames_encoded.load(Ordering::Relaxed),
            micros: self.outgoing.encode_micros.load(Ordering::Relaxed),
            screen_frames: self.outgoing.screen_frames_encoded.load(Ordering::Relaxed),
            screen_bytes: self.outgoing.screen_bytes_encoded.load(Ordering::Relaxed),
            screen_micros: self.outgoing.screen_encode_micros.load(Ordering::Relaxed),
        };
        let mut samples = Vec::with_capacity(self.peers.len());
        for id in self.core.peer_ids() {
            let (Some(view), Some(peer)) = (self.core.peer_view(&id), self.peers.get(&id)) else {
                continue;
            };
            let link = Arc::clone(&peer.link);
            let decoder = DecoderSnapshot::of(&peer.decoder.counters);
            let screen = DecoderSnapshot::of(&peer.screen_decoder.counters);
            let link_stats = link.stats().await;
            let (audio_delay_ms, audio_inlet_dropped, audio) = self
                .mixer
                .lock()
                .ok()
                .map(|m| {
                    let buffer = m.buffer(&id);
                    let delay = buffer.map_or(0.0, |b| b.target_delay().as_secs_f64() * 1000.0);
                    let audio = buffer.map(|b| AudioPlayoutSnapshot::of(b.stats()));
                    (
                        delay,
                        m.inlet_dropped(&id).unwrap_or(0),
                        audio.unwrap_or_default(),
                    )
                })
                .unwrap_or_default();
            samples.push(PeerSample {
                id,
                view,
                link: link_stats,
                video_negotiated: link.video_negotiated(),
                decoder,
                screen,
                audio_delay_ms,
                audio_inlet_dropped,
                audio,
            });
        }
        let v = &self.config.video;
        let collected = self.stats.collect(
            samples,
            encoder,
            Instant::now(),
            (v.min_kbps * 1000, v.max_kbps * 1000),
        );
        if let Some(target) = collected.target_bps {
            self.video_target_bps = target;
            self.outgoing.set_target_bps(target);
        }
        if let Some(loss) = collected.audio_loss {
            self.outgoing.report_audio_loss(loss);
        }
        self.emit(EngineEvent::Stats(collected.stats));
    }
}

async fn next_signaling(events: &mut Option<mpsc::Receiver<ClientEvent>>) -> Option<ClientEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "session_relay_tests.rs"]
mod relay_tests;
