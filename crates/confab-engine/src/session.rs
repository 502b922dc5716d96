//! The call session: one room, one [`PeerLink`] per remote participant.
//!
//! Runs as one task on the engine's runtime. Its inputs, grouped by where they come from:
//! - **user commands** ([`EngineCommand`]): join, leave, mic/camera, sources, chat, ICE restart;
//! - **signaling** ([`ClientEvent`]): participants joining/leaving, offers, answers, candidates,
//!   hang-ups, and the signaling connection dropping and coming back;
//! - **peer connections** ([`PeerEvent`], tagged with the participant): local candidates,
//!   negotiation needed, signaling/connection state, chat, keyframe requests (received media
//!   goes from the link straight to the decoder and the mixer, never through here);
//! - **decoder threads**: "this participant's video needs a keyframe";
//! - **a one-second tick**: statistics and the congestion-control bitrate.
//!
//! Rules it keeps:
//! - The newcomer offers to everyone already in the room (they learn about it from the welcome);
//!   later renegotiations and ICE restarts may come from either side, and crossing offers are
//!   settled by perfect negotiation ([`Negotiation`]).
//! - A signaling reconnect leaves peer connections alone: media never goes through the server.
//! - A connection that drops triggers an ICE restart (the impolite side starts it; the polite
//!   side too if the connection fails outright).
//! - PLIs to one participant are rate-limited.
//! - When a participant leaves, its decoder is stopped before `ParticipantLeft` is emitted, so no
//!   frame of it arrives afterwards.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Sender;
use serde_json::json;
use signaling_client::{
    ClientConfig, ClientEvent, ParticipantId, Signal, SignalingClient, Welcome,
};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tracing::{debug, info, warn};

use super::api::AudioOutput;
use super::api::{
    CallState, EngineCommand, EngineConfig, EngineEvent, LinkState, ParticipantStats, Repaint,
    VideoFrameEvent,
};
use super::devices::DeviceStatus;
use super::incoming::{SharedMixer, VideoDecoderThread, receive_inlet};
use super::media::drop_oldest::DropOldestSender;
use super::media::opus_codec::OpusDecoder;
use super::negotiation::{Negotiation, OfferDecision};
use super::outgoing::{Outgoing, Preview, SenderThread, spawn_audio_sender, spawn_video_sender};
use super::peer::{BitrateRange, ConnectionState, PeerEvent, PeerLink, PeerSettings, PeerStats};
use super::verification::verification_code;

/// Shortest time between two PLIs to the same participant.
/// Our mic/camera state is re-sent to everyone this often (in one-second ticks).
const MEDIA_STATE_REFRESH_TICKS: u64 = 5;

const PLI_INTERVAL: Duration = Duration::from_millis(300);
/// Shortest time between two ICE restarts with the same participant.
const RESTART_INTERVAL: Duration = Duration::from_secs(5);

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

/// Rates need the previous counters.
#[derive(Default, Clone)]
struct Previous {
    at: Option<Instant>,
    stats: PeerStats,
    decoded: u64,
    encoded: u64,
}

struct Peer {
    name: String,
    link: Arc<PeerLink>,
    negotiation: Negotiation,
    decoder: VideoDecoderThread,
    negotiated_once: bool,
    state: LinkState,
    last_pli: Option<Instant>,
    plis_sent: u64,
    last_restart: Option<Instant>,
    code_sent: bool,
    chat_open: bool,
    previous: Previous,
}

/// Everything the session task owns.
pub(crate) struct Session {
    config: EngineConfig,
    events: Sender<EngineEvent>,
    video: DropOldestSender<VideoFrameEvent>,
    repaint: Repaint,
    signaling: Option<Arc<dyn SignalSender>>,
    client: Option<SignalingClient>,
    signaling_events: Option<mpsc::Receiver<ClientEvent>>,
    my_id: Option<ParticipantId>,
    ice_servers: Vec<signaling_client::IceServer>,
    names: HashMap<ParticipantId, String>,
    peers: HashMap<ParticipantId, Peer>,
    peer_events_tx: UnboundedSender<(ParticipantId, PeerEvent)>,
    peer_events: UnboundedReceiver<(ParticipantId, PeerEvent)>,
    keyframe_tx: UnboundedSender<ParticipantId>,
    keyframe_rx: UnboundedReceiver<ParticipantId>,
    outgoing: Arc<Outgoing>,
    mixer: SharedMixer,
    video_sender: Option<SenderThread>,
    audio_sender: Option<SenderThread>,
    /// The UI asked for the sources to run outside a call (lobby preview).
    preview_on: bool,
    joined_at: Option<Instant>,
    /// Stats ticks so far (one a second); every [`MEDIA_STATE_REFRESH_TICKS`]th re-sends our
    /// media state.
    ticks: u64,
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
        Self {
            config,
            events,
            video,
            repaint,
            signaling: None,
            client: None,
            signaling_events: None,
            my_id: None,
            ice_servers: Vec::new(),
            names: HashMap::new(),
            peers: HashMap::new(),
            peer_events_tx,
            peer_events,
            keyframe_tx,
            keyframe_rx,
            outgoing,
            mixer,
            video_sender: None,
            audio_sender: None,
            preview_on: false,
            joined_at: None,
            ticks: 0,
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
                Some((id, ev)) = self.peer_events.recv() => self.on_peer_event(id, ev).await,
                Some(id) = self.keyframe_rx.recv() => self.send_pli(&id).await,
                _ = tick.tick() => self.on_tick().await,
            }
        }
        self.leave("the app closed").await;
    }

    async fn on_command(&mut self, cmd: EngineCommand) {
        match cmd {
            EngineCommand::Join {
                url,
                room,
                password,
            } => self.join(url, room, password).await,
            EngineCommand::Leave => self.leave("you left the call").await,
            EngineCommand::SetMic(on) => {
                self.outgoing.mic_on.store(on, Ordering::Relaxed);
                self.broadcast_media_state().await;
            }
            EngineCommand::SetCamera(on) => {
                self.outgoing.camera_on.store(on, Ordering::Relaxed);
                if on {
                    self.outgoing.request_keyframe();
                }
                self.broadcast_media_state().await;
            }
            EngineCommand::SelectSources { video, audio } => {
                self.config.video_input = video;
                self.config.audio_input = audio;
                // Sources run in a call and in the lobby preview; elsewhere the choice is only
                // recorded for the next start.
                if self.my_id.is_some() || self.preview_on {
                    // Drop the old threads first: one capture device per kind at a time.
                    self.video_sender = None;
                    self.audio_sender = None;
                    self.start_senders();
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
            EngineCommand::SendChat(text) => self.send_chat(text).await,
            EngineCommand::SetName(name) => self.config.name = name,
            EngineCommand::Preview(on) => {
                self.preview_on = on;
                if self.my_id.is_none() {
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
            EngineCommand::RestartIce => {
                let ids: Vec<_> = self.peers.keys().cloned().collect();
                for id in ids {
                    self.restart_ice(&id, true).await;
                }
            }
        }
    }

    async fn join(&mut self, url: String, room: String, password: Option<String>) {
        if self.my_id.is_some() {
            self.emit(EngineEvent::Error(
                "already in a call; hang up first".into(),
            ));
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
                self.emit(EngineEvent::Error(e.to_string()));
                self.emit(EngineEvent::CallState(CallState::Ended {
                    reason: e.to_string(),
                }));
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
        self.my_id = Some(welcome.id.clone());
        self.ice_servers = welcome.ice_servers.clone();
        self.ice_servers
            .extend(self.config.extra_ice_servers.iter().cloned());
        self.joined_at = Some(Instant::now());
        self.outgoing
            .set_target_bps(self.config.video.start_kbps * 1000);
        self.start_senders();
        self.emit(EngineEvent::CallState(CallState::InCall {
            id: welcome.id.clone(),
            room: welcome.room.to_string(),
        }));
        for p in welcome.participants {
            self.names.insert(p.id.clone(), p.name.clone());
            self.emit(EngineEvent::ParticipantJoined {
                id: p.id.clone(),
                name: p.name.clone(),
            });
            // We are the newcomer: we offer.
            if self.create_peer(&p.id).await {
                self.make_offer(&p.id, false).await;
            }
        }
    }

    fn start_senders(&mut self) {
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
            Err(e) => self.emit(EngineEvent::Error(format!("camera: {e}"))),
        }
        match spawn_audio_sender(
            &self.config.audio_input,
            Arc::clone(&self.outgoing),
            self.config.probe.clone(),
            self.events.clone(),
            self.device_status(),
            self.config.processing,
        ) {
            Ok(t) => self.audio_sender = t,
            Err(e) => self.emit(EngineEvent::Error(format!("microphone: {e}"))),
        }
    }

    async fn leave(&mut self, reason: &str) {
        if self.my_id.is_none() {
            return;
        }
        let ids: Vec<_> = self.peers.keys().cloned().collect();
        for id in ids {
            self.signal(&id, Signal::Hangup { reason: None });
            self.remove_peer(&id, false).await;
        }
        if let Some(client) = self.client.take() {
            client.leave().await;
        }
        self.signaling = None;
        self.signaling_events = None;
        self.my_id = None;
        self.video_sender = None;
        self.audio_sender = None;
        self.names.clear();
        self.emit(EngineEvent::CallState(CallState::Ended {
            reason: reason.to_owned(),
        }));
    }

    fn signal(&self, to: &ParticipantId, signal: Signal) {
        if let Some(s) = &self.signaling {
            s.send(to, signal);
        }
    }

    async fn on_signaling(&mut self, event: Option<ClientEvent>) {
        let Some(event) = event else {
            // The client task is gone.
            self.signaling_events = None;
            return;
        };
        match event {
            ClientEvent::ParticipantJoined(p) => {
                self.names.insert(p.id.clone(), p.name.clone());
                if !self.peers.contains_key(&p.id) {
                    self.emit(EngineEvent::ParticipantJoined {
                        id: p.id,
                        name: p.name,
                    });
                }
                // The newcomer offers; we wait for its offer.
            }
            ClientEvent::ParticipantLeft { id, .. } => {
                self.names.remove(&id);
                self.remove_peer(&id, true).await;
            }
            ClientEvent::Signal { from, signal } => self.on_signal(from, signal).await,
            ClientEvent::ServerError { code, message } => {
                warn!(%code, message, "signaling server refused a message");
            }
            ClientEvent::Disconnected { reason } => {
                info!(reason, "signaling lost; calls continue");
                self.emit(EngineEvent::CallState(CallState::Reconnecting));
            }
            ClientEvent::Reconnected(welcome) => {
                if let (Some(id), Some(room)) = (self.my_id.clone(), Some(welcome.room.to_string()))
                {
                    self.emit(EngineEvent::CallState(CallState::InCall { id, room }));
                }
                if !welcome.resumed {
                    // The server lost our session (it restarted): anyone we have no connection
                    // with gets an offer from us, as if we had just joined.
                    self.my_id = Some(welcome.id.clone());
                    for p in welcome.participants {
                        self.names.insert(p.id.clone(), p.name.clone());
                        if !self.peers.contains_key(&p.id) && self.create_peer(&p.id).await {
                            self.make_offer(&p.id, false).await;
                        }
                    }
                }
            }
            ClientEvent::Closed(reason) => {
                self.emit(EngineEvent::Error(format!(
                    "lost the signaling server for good: {reason:?}"
                )));
                self.signaling_events = None;
            }
        }
    }

    async fn on_signal(&mut self, from: ParticipantId, signal: Signal) {
        match signal {
            Signal::Offer { sdp } | Signal::IceRestart { sdp } => {
                if !self.peers.contains_key(&from) && !self.create_peer(&from).await {
                    return;
                }
                let Some(peer) = self.peers.get_mut(&from) else {
                    return;
                };
                let OfferDecision::Accept { rollback_first } = peer.negotiation.on_remote_offer()
                else {
                    debug!(%from, "ignoring a colliding offer (we are impolite)");
                    return;
                };
                let link = Arc::clone(&peer.link);
                match link.accept_offer(&sdp, rollback_first).await {
                    Ok(answer) => {
                        if let Some(peer) = self.peers.get_mut(&from) {
                            peer.negotiation.answered();
                            peer.negotiated_once = true;
                        }
                        self.signal(&from, Signal::Answer { sdp: answer });
                    }
                    Err(e) => warn!(%from, error = %e, "cannot answer an offer"),
                }
            }
            Signal::Answer { sdp } => {
                let Some(peer) = self.peers.get_mut(&from) else {
                    return;
                };
                if !peer.negotiation.on_remote_answer() {
                    debug!(%from, "dropping a stale answer");
                    return;
                }
                peer.negotiated_once = true;
                let link = Arc::clone(&peer.link);
                if let Err(e) = link.accept_answer(&sdp).await {
                    warn!(%from, error = %e, "cannot apply an answer");
                }
            }
            Signal::Candidate {
                candidate,
                sdp_mid,
                sdp_mline_index,
                username_fragment,
            } => {
                let Some(peer) = self.peers.get(&from) else {
                    return;
                };
                let ignoring = peer.negotiation.ignoring_offer();
                let link = Arc::clone(&peer.link);
                if let Err(e) = link
                    .add_remote_candidate(candidate, sdp_mid, sdp_mline_index, username_fragment)
                    .await
                    && !ignoring
                {
                    debug!(%from, error = %e, "remote candidate refused");
                }
            }
            Signal::EndOfCandidates => {}
            Signal::Hangup { .. } => {
                self.remove_peer(&from, true).await;
            }
        }
    }

    /// Creates the peer connection to `id`; false (and an error event) if it cannot.
    async fn create_peer(&mut self, id: &ParticipantId) -> bool {
        let Some(my_id) = &self.my_id else {
            return false;
        };
        let polite = Negotiation::polite_for(my_id.as_str(), id.as_str());
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
        let decoder = match VideoDecoderThread::spawn(
            id.clone(),
            self.video.clone(),
            Arc::clone(&self.repaint),
            self.keyframe_tx.clone(),
        ) {
            Ok(d) => d,
            Err(e) => {
                self.emit(EngineEvent::Error(e.to_string()));
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
        let inlet = receive_inlet(&decoder, audio_inlet);
        let link = match PeerLink::new(&settings, tx, inlet).await {
            Ok(link) => Arc::new(link),
            Err(e) => {
                if let Ok(mut m) = self.mixer.lock() {
                    m.remove_participant(id);
                }
                self.emit(EngineEvent::Error(format!(
                    "cannot set up the connection to {}: {e}",
                    self.name_of(id)
                )));
                return false;
            }
        };
        // Tag this link's events with its participant and merge them into the session's stream.
        let merged = self.peer_events_tx.clone();
        let who = id.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if merged.send((who.clone(), ev)).is_err() {
                    break;
                }
            }
        });
        self.peers.insert(
            id.clone(),
            Peer {
                name: self.name_of(id),
                link,
                negotiation: Negotiation::new(polite),
                decoder,
                negotiated_once: false,
                state: LinkState::Connecting,
                last_pli: None,
                plis_sent: 0,
                last_restart: None,
                code_sent: false,
                chat_open: false,
                previous: Previous::default(),
            },
        );
        self.emit(EngineEvent::Link {
            id: id.clone(),
            state: LinkState::Connecting,
        });
        true
    }

    fn name_of(&self, id: &ParticipantId) -> String {
        self.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    async fn remove_peer(&mut self, id: &ParticipantId, announce: bool) {
        let Some(peer) = self.peers.remove(id) else {
            if announce {
                self.emit(EngineEvent::ParticipantLeft { id: id.clone() });
            }
            return;
        };
        self.outgoing.remove_peer(id);
        peer.link.close().await;
        if let Ok(mut m) = self.mixer.lock() {
            m.remove_participant(id);
        }
        // Joins the decoder thread: nothing of this participant is delivered after this.
        drop(peer.decoder);
        if announce {
            self.emit(EngineEvent::ParticipantLeft { id: id.clone() });
        }
    }

    async fn make_offer(&mut self, id: &ParticipantId, ice_restart: bool) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        peer.negotiation.begin_offer();
        let link = Arc::clone(&peer.link);
        let result = link.create_offer(ice_restart).await;
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        peer.negotiation.offer_sent(result.is_ok());
        match result {
            Ok(sdp) => {
                let signal = if ice_restart {
                    Signal::IceRestart { sdp }
                } else {
                    Signal::Offer { sdp }
                };
                self.signal(id, signal);
            }
            Err(e) => warn!(%id, error = %e, "cannot create an offer"),
        }
    }

    async fn restart_ice(&mut self, id: &ParticipantId, forced: bool) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        if !forced
            && peer
                .last_restart
                .is_some_and(|t| t.elapsed() < RESTART_INTERVAL)
        {
            return;
        }
        peer.last_restart = Some(Instant::now());
        info!(%id, "restarting ICE");
        self.make_offer(id, true).await;
    }

    async fn on_peer_event(&mut self, id: ParticipantId, event: PeerEvent) {
        match event {
            PeerEvent::LocalCandidate {
                candidate,
                sdp_mid,
                sdp_mline_index,
                username_fragment,
            } => self.signal(
                &id,
                Signal::Candidate {
                    candidate,
                    sdp_mid,
                    sdp_mline_index,
                    username_fragment,
                },
            ),
            PeerEvent::GatheringComplete => self.signal(&id, Signal::EndOfCandidates),
            // Tracks and the chat channel are all added when the link is created and the first
            // offer/answer covers them; switching sources replaces frames, not tracks. The event
            // (fired for those initial tracks, and arriving after that first negotiation) would
            // only start a needless second round, so it is not acted on.
            PeerEvent::NegotiationNeeded => debug!(%id, "negotiation needed: covered already"),
            PeerEvent::SignalingStable(stable) => {
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.negotiation.set_stable(stable);
                }
            }
            PeerEvent::Connection(state) => self.on_connection_state(&id, state).await,
            PeerEvent::ChatOpen => {
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.chat_open = true;
                }
                self.send_media_state(&id).await;
            }
            PeerEvent::Chat(text) => self.on_data_message(&id, &text),
            PeerEvent::KeyframeRequested => self.outgoing.request_keyframe(),
        }
    }

    async fn on_connection_state(&mut self, id: &ParticipantId, state: ConnectionState) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let link_state = match state {
            ConnectionState::New | ConnectionState::Connecting => LinkState::Connecting,
            ConnectionState::Connected => LinkState::Connected,
            ConnectionState::Disconnected => LinkState::Reconnecting,
            ConnectionState::Failed => LinkState::Failed,
            ConnectionState::Closed => LinkState::Closed,
        };
        if peer.state == link_state {
            return;
        }
        peer.state = link_state;
        let polite = peer.negotiation.is_polite();
        let link = Arc::clone(&peer.link);
        let code_sent = peer.code_sent;
        self.emit(EngineEvent::Link {
            id: id.clone(),
            state: link_state,
        });
        match link_state {
            LinkState::Connected => {
                self.outgoing.add_peer(id.clone(), Arc::clone(&link));
                if !code_sent && let Some((local, remote)) = link.fingerprints().await {
                    if let Some(peer) = self.peers.get_mut(id) {
                        peer.code_sent = true;
                    }
                    self.emit(EngineEvent::VerificationCode {
                        id: id.clone(),
                        code: verification_code(&local, &remote),
                    });
                }
            }
            LinkState::Reconnecting if !polite => self.restart_ice(id, false).await,
            LinkState::Failed => self.restart_ice(id, false).await,
            _ => {}
        }
    }

    fn on_data_message(&self, id: &ParticipantId, text: &str) {
        let value: Option<serde_json::Value> = serde_json::from_str(text).ok();
        match value
            .as_ref()
            .and_then(|v| v.get("t"))
            .and_then(|t| t.as_str())
        {
            Some("media") => {
                let flag = |k: &str| {
                    value
                        .as_ref()
                        .and_then(|v| v.get(k))
                        .and_then(serde_json::Value::as_bool)
                        .unwrap_or(true)
                };
                self.emit(EngineEvent::RemoteMedia {
                    id: id.clone(),
                    mic: flag("mic"),
                    camera: flag("camera"),
                });
            }
            Some("chat") => {
                let text = value
                    .as_ref()
                    .and_then(|v| v.get("text"))
                    .and_then(|t| t.as_str())
                    .unwrap_or_default()
                    .to_owned();
                self.emit_chat(id.clone(), self.name_of(id), text);
            }
            Some(other) => debug!(%id, kind = other, "ignoring an unknown data-channel message"),
            // Plain text from a client that does not wrap chat in JSON.
            None => self.emit_chat(id.clone(), self.name_of(id), text.to_owned()),
        }
    }

    fn emit_chat(&self, from: ParticipantId, name: String, text: String) {
        self.emit(EngineEvent::Chat {
            from,
            name,
            text,
            at: SystemTime::now(),
        });
    }

    async fn send_chat(&mut self, text: String) {
        let Some(my_id) = self.my_id.clone() else {
            self.emit(EngineEvent::Error("not in a call".into()));
            return;
        };
        let message = json!({"t": "chat", "text": text}).to_string();
        let mut failed = Vec::new();
        for (id, peer) in &self.peers {
            if let Err(e) = peer.link.send_chat(&message).await {
                failed.push(format!("{}: {e}", peer.name));
                debug!(%id, error = %e, "chat not sent");
            }
        }
        if !failed.is_empty() {
            self.emit(EngineEvent::Error(format!(
                "chat message not delivered to {}",
                failed.join(", ")
            )));
        }
        self.emit_chat(my_id, self.config.name.clone(), text);
    }

    fn media_state_message(&self) -> String {
        json!({
            "t": "media",
            "mic": self.outgoing.mic_on.load(Ordering::Relaxed),
            "camera": self.outgoing.camera_on.load(Ordering::Relaxed)
                && self.config.video_input != super::api::VideoInput::None,
        })
        .to_string()
    }

    async fn send_media_state(&self, id: &ParticipantId) {
        let message = self.media_state_message();
        if let Some(peer) = self.peers.get(id)
            && peer.chat_open
            && let Err(e) = peer.link.send_chat(&message).await
        {
            debug!(%id, error = %e, "media state not sent");
        }
    }

    async fn broadcast_media_state(&self) {
        let ids: Vec<_> = self.peers.keys().cloned().collect();
        for id in ids {
            self.send_media_state(&id).await;
        }
    }

    async fn send_pli(&mut self, id: &ParticipantId) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        if peer.last_pli.is_some_and(|t| t.elapsed() < PLI_INTERVAL) {
            return;
        }
        peer.last_pli = Some(Instant::now());
        peer.plis_sent += 1;
        let link = Arc::clone(&peer.link);
        if let Err(e) = link.request_keyframe().await {
            debug!(%id, error = %e, "PLI not sent");
        }
    }

    async fn on_tick(&mut self) {
        if self.peers.is_empty() {
            return;
        }
        self.ticks += 1;
        if self.ticks.is_multiple_of(MEDIA_STATE_REFRESH_TICKS) {
            // Idempotent, and it heals a state message lost as a channel opened (a message sent
            // at that instant was seen to vanish inside webrtc-rs).
            self.broadcast_media_state().await;
        }
        let encoded = self.outgoing.frames_encoded.load(Ordering::Relaxed);
        let encode_micros = self.outgoing.encode_micros.load(Ordering::Relaxed);
        let mut all = Vec::with_capacity(self.peers.len());
        let mut lowest_bwe: Option<u64> = None;
        let ids: Vec<_> = self.peers.keys().cloned().collect();
        for id in ids {
            let Some(peer) = self.peers.get(&id) else {
                continue;
            };
            let link = Arc::clone(&peer.link);
            let stats = link.stats().await;
            let audio_delay_ms = self
                .mixer
                .lock()
                .ok()
                .and_then(|m| {
                    m.buffer(&id)
                        .map(|b| b.target_delay().as_secs_f64() * 1000.0)
                })
                .unwrap_or(0.0);
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            let decoded = peer.decoder.counters.decoded.load(Ordering::Relaxed);
            let now = Instant::now();
            let secs = peer
                .previous
                .at
                .map(|t| now.duration_since(t).as_secs_f64())
                .filter(|s| *s > 0.0);
            let rate = |now_v: u64, prev_v: u64| -> f64 {
                secs.map(|s| now_v.saturating_sub(prev_v) as f64 / s)
                    .unwrap_or(0.0)
            };
            let prev = &peer.previous;
            let counters = &peer.decoder.counters;
            let w = counters.width.load(Ordering::Relaxed);
            let h = counters.height.load(Ordering::Relaxed);
            let video_negotiated = link.video_negotiated();
            // A peer we send no video to (no common codec) must not hold everyone's video
            // bitrate down to what its audio-only estimate says.
            if peer.state == LinkState::Connected
                && video_negotiated
                && stats.bandwidth_estimate_bps > 0
            {
                lowest_bwe = Some(lowest_bwe.map_or(stats.bandwidth_estimate_bps, |b| {
                    b.min(stats.bandwidth_estimate_bps)
                }));
            }
            all.push(ParticipantStats {
                id: id.to_string(),
                name: peer.name.clone(),
                rtt_ms: stats.rtt_ms,
                packets_lost: stats.video_packets_lost + stats.audio_packets_lost,
                jitter_ms: stats.video_jitter_ms,
                video_kbps_out: rate(stats.video_bytes_sent, prev.stats.video_bytes_sent) * 8.0
                    / 1000.0,
                video_kbps_in: rate(stats.video_bytes_received, prev.stats.video_bytes_received)
                    * 8.0
                    / 1000.0,
                audio_kbps_out: rate(stats.audio_bytes_sent, prev.stats.audio_bytes_sent) * 8.0
                    / 1000.0,
                audio_kbps_in: rate(stats.audio_bytes_received, prev.stats.audio_bytes_received)
                    * 8.0
                    / 1000.0,
                fps_out: rate(encoded, prev.encoded),
                fps_in: rate(decoded, prev.decoded),
                resolution_in: (w > 0).then(|| format!("{w}x{h}")),
                frames_decoded: decoded,
                decode_errors: counters.decode_errors.load(Ordering::Relaxed),
                frames_skipped_awaiting_keyframe: counters
                    .skipped_awaiting_keyframe
                    .load(Ordering::Relaxed),
                frames_dropped_decoder_behind: counters
                    .dropped_decoder_behind
                    .load(Ordering::Relaxed),
                frames_dropped_consumer_slow: counters
                    .dropped_consumer_slow
                    .load(Ordering::Relaxed),
                plis_sent: stats.plis_sent.max(peer.plis_sent),
                nacks_sent: stats.nacks_sent,
                keyframe_requests_received: stats.keyframe_requests_received,
                candidate_type: stats.candidate_type.clone(),
                bandwidth_estimate_kbps: stats.bandwidth_estimate_bps as f64 / 1000.0,
                audio_delay_ms,
                video_negotiated,
                codec: if video_negotiated { "H264" } else { "none" },
                frames_sent: encoded,
                video_bytes_received: stats.video_bytes_received,
                audio_bytes_received: stats.audio_bytes_received,
                encode_ms_per_frame: per_frame_ms(encode_micros, encoded),
                decode_ms_per_frame: per_frame_ms(
                    counters.decode_micros.load(Ordering::Relaxed),
                    decoded,
                ),
            });
            peer.previous = Previous {
                at: Some(now),
                stats,
                decoded,
                encoded,
            };
        }
        if let Some(bwe) = lowest_bwe {
            let v = &self.config.video;
            let target = (bwe as u32).clamp(v.min_kbps * 1000, v.max_kbps * 1000);
            self.outgoing.set_target_bps(target);
        }
        self.emit(EngineEvent::Stats(all));
    }
}

fn per_frame_ms(total_micros: u64, frames: u64) -> f64 {
    if frames == 0 {
        0.0
    } else {
        total_micros as f64 / frames as f64 / 1000.0
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
