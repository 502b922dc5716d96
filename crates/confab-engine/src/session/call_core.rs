//! The call's state machine without I/O: who is in the room, the negotiation and link state of
//! each peer connection, rate limits (PLIs, ICE restarts), the data-channel protocol, and what
//! the UI is told.
//!
//! Chat delivery (per-participant queues, exactly once and in order, or reported) is in
//! `call_core/chat.rs`; re-creating a link whose DTLS handshake died in `call_core/rebuild.rs`.
//!
//! Contract: every input is a method, grouped by where it comes from (user commands, signaling,
//! peer connections, decoder threads, the tick, and the results of actions the loop carried
//! out); every method returns the [`Action`]s to carry out, in order. Time is an argument
//! (`now`), so tests drive it without sockets and without sleeping. [`super::Session`] owns one
//! and executes its actions on the real peer connections, signaling client and media threads.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use signaling_client::{ClientEvent, CloseReason, Participant, ParticipantId, Signal, Welcome};
use tracing::{debug, info, warn};

pub(crate) use super::actions::{Action, AfterCreate, PeerView};
use crate::api::{CallState, EngineEvent, LinkState, VideoRole};
use crate::data_message::{DataMessage, Received};
use crate::negotiation::{Negotiation, OfferDecision};
use crate::peer::{ConnectionState, PeerEvent};
use crate::reasons::{EndReason, Problem};
pub(crate) use outbox::Pending;

#[cfg(test)]
pub(crate) use pli::PLI_INTERVAL;
/// Shortest time between two ICE restarts with the same participant.
pub(crate) const RESTART_INTERVAL: Duration = Duration::from_secs(5);
/// Our mic/camera state is re-sent to everyone this often (in one-second ticks).
pub(crate) const MEDIA_STATE_REFRESH_TICKS: u64 = 5;

/// What the core keeps per remote participant with a peer connection.
#[derive(Debug)]
struct PeerState {
    negotiation: Negotiation,
    state: LinkState,
    pli: pli::PliPacing,
    plis_sent: u64,
    last_restart: Option<Instant>,
    code_sent: bool,
    chat_open: bool,
    /// A data-channel message from the other side has arrived since the channel opened: its
    /// side is open too (see `call_core/chat.rs`).
    remote_spoke: bool,
    /// The link has been connected at least once (a never-connected one may be rebuilt).
    ever_connected: bool,
    /// One-second ticks this link has spent without ever connecting.
    unconnected_ticks: u32,
    /// The DTLS fingerprint of the remote description this link applied (`call_core/rebuild.rs`).
    remote_fingerprint: Option<String>,
    /// Our tracks changed (a screen share started or stopped) while an offer could not be made:
    /// offer once the signalling state is stable (`call_core/screen.rs`).
    offer_wanted: bool,
    /// The msid stream the remote announced for its shared screen.
    remote_screen: Option<String>,
    /// PLI pacing for its screen (the camera's is `pli`).
    screen_pli: pli::PliPacing,
    /// Our screen track was added or removed and no answer to an offer saying so has arrived.
    screen_unconfirmed: bool,
}

impl PeerState {
    /// Chat may be handed to the channel: it is open on both sides (see `call_core/chat.rs`).
    fn chat_ready(&self) -> bool {
        self.chat_open && self.remote_spoke
    }
}

/// The call state machine (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct CallCore {
    my_id: Option<ParticipantId>,
    names: HashMap<ParticipantId, String>,
    peers: HashMap<ParticipantId, PeerState>,
    ticks: u64,
    mic_off: bool,
    camera_off: bool,
    no_video_source: bool,
    no_audio_source: bool,
    /// Chat messages waiting for each participant's channel (see `call_core/chat.rs`).
    outboxes: HashMap<ParticipantId, outbox::Outbox>,
    /// Links re-created per participant (`call_core/rebuild.rs`).
    rebuilds: HashMap<ParticipantId, u32>,
    /// Our screen share, while it runs (`call_core/screen.rs`).
    sharing: Option<screen::LocalShare>,
}

impl CallCore {
    /// A core that is not in a room; mic and camera on.
    pub(crate) fn new(has_video_source: bool) -> Self {
        Self {
            no_video_source: !has_video_source,
            ..Self::default()
        }
    }

    /// Whether we are in a room.
    pub(crate) fn in_call(&self) -> bool {
        self.my_id.is_some()
    }

    /// The participants we have a peer connection with (sorted, for stable output).
    pub(crate) fn peer_ids(&self) -> Vec<ParticipantId> {
        let mut ids: Vec<_> = self.peers.keys().cloned().collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        ids
    }

    /// What the stats collector needs about `id`.
    pub(crate) fn peer_view(&self, id: &ParticipantId) -> Option<PeerView> {
        self.peers.get(id).map(|p| PeerView {
            name: self.name_of(id),
            state: p.state,
            plis_sent: p.plis_sent,
        })
    }

    /// The display name of `id` (its id when unknown).
    pub(crate) fn name_of(&self, id: &ParticipantId) -> String {
        self.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    // ---- user commands ----

    /// We joined: `welcome` describes the room.
    pub(crate) fn entered(&mut self, welcome: &Welcome) -> Vec<Action> {
        self.my_id = Some(welcome.id.clone());
        let mut out = vec![Action::Emit(EngineEvent::CallState(CallState::InCall {
            id: welcome.id.clone(),
            room: welcome.room.to_string(),
        }))];
        for p in &welcome.participants {
            self.names.insert(p.id.clone(), p.name.clone());
            out.push(Action::Emit(EngineEvent::ParticipantJoined {
                id: p.id.clone(),
                name: p.name.clone(),
            }));
            // We are the newcomer: we offer.
            out.extend(self.create_peer(&p.id, AfterCreate::Offer));
        }
        out
    }

    /// We leave the room (hang-up, or the engine stops).
    pub(crate) fn leave(&mut self, reason: EndReason) -> Vec<Action> {
        if self.my_id.is_none() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut waiting: Vec<ParticipantId> = self.outboxes.keys().cloned().collect();
        waiting.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        for id in waiting {
            out.extend(self.drop_outbox(&id, "the call ended first"));
        }
        out.extend(self.end_share_locally(crate::api::ScreenShareEnd::CallEnded));
        for id in self.peer_ids() {
            out.push(Action::Signal {
                to: id.clone(),
                signal: Signal::Hangup { reason: None },
            });
            out.extend(self.remove_peer(&id, false));
        }
        out.push(Action::CloseSignaling);
        self.my_id = None;
        self.names.clear();
        out.push(Action::Emit(EngineEvent::CallState(CallState::Ended {
            reason,
        })));
        out
    }

    /// Our microphone was turned on or off.
    pub(crate) fn set_mic(&mut self, on: bool) -> Vec<Action> {
        self.mic_off = !on;
        self.broadcast_media_state()
    }

    /// Our camera was turned on or off.
    pub(crate) fn set_camera(&mut self, on: bool) -> Vec<Action> {
        self.camera_off = !on;
        self.broadcast_media_state()
    }

    /// Which media we send at all (a source other than "none" chosen for each): without a
    /// microphone we count as muted, without a camera as camera off; the others are told.
    pub(crate) fn set_sources(&mut self, video: bool, audio: bool) -> Vec<Action> {
        self.no_video_source = !video;
        self.no_audio_source = !audio;
        self.broadcast_media_state()
    }

    /// The user asked to restart ICE with everyone (not rate-limited).
    pub(crate) fn restart_ice_all(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        for id in self.peer_ids() {
            out.extend(self.restart_ice(&id, true, now));
        }
        out
    }

    // ---- signaling ----

    /// An event from the signaling client (`Closed` included; the loop forgets the client).
    pub(crate) fn on_signaling(&mut self, event: ClientEvent) -> Vec<Action> {
        match event {
            ClientEvent::ParticipantJoined(p) => self.participant_joined(p),
            ClientEvent::ParticipantLeft { id, .. } => {
                let out = self.remove_peer(&id, true);
                self.names.remove(&id);
                out
            }
            ClientEvent::Signal { from, signal } => self.on_signal(from, signal),
            ClientEvent::ServerError { code, message } => {
                warn!(%code, message, "signaling server refused a message");
                Vec::new()
            }
            ClientEvent::Disconnected { reason } => {
                info!(reason, "signaling lost; calls continue");
                vec![Action::Emit(EngineEvent::CallState(
                    CallState::Reconnecting,
                ))]
            }
            ClientEvent::Reconnected(welcome) => self.reconnected(welcome),
            // The host ended the call: there is no server to come back to, and the others
            // are leaving too, so the call ends here (peer connections included).
            ClientEvent::Closed(reason @ CloseReason::Ended { .. }) => {
                self.leave(EndReason::from(&reason))
            }
            ClientEvent::Closed(reason) => vec![Action::Emit(EngineEvent::Error(
                Problem::SignalingClosed(EndReason::from(&reason)),
            ))],
        }
    }

    fn participant_joined(&mut self, p: Participant) -> Vec<Action> {
        self.names.insert(p.id.clone(), p.name.clone());
        // The newcomer offers; we wait for its offer.
        if self.peers.contains_key(&p.id) {
            Vec::new()
        } else {
            vec![Action::Emit(EngineEvent::ParticipantJoined {
                id: p.id,
                name: p.name,
            })]
        }
    }

    fn reconnected(&mut self, welcome: Welcome) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(id) = self.my_id.clone() {
            out.push(Action::Emit(EngineEvent::CallState(CallState::InCall {
                id,
                room: welcome.room.to_string(),
            })));
        }
        if !welcome.resumed {
            // The server lost our session (it restarted): anyone we have no connection with
            // gets an offer from us, as if we had just joined.
            self.my_id = Some(welcome.id.clone());
            for p in welcome.participants {
                self.names.insert(p.id.clone(), p.name.clone());
                if !self.peers.contains_key(&p.id) {
                    out.extend(self.create_peer(&p.id, AfterCreate::Offer));
                }
            }
        }
        out
    }

    fn on_signal(&mut self, from: ParticipantId, signal: Signal) -> Vec<Action> {
        match signal {
            Signal::Offer { sdp } | Signal::IceRestart { sdp } => {
                if self.offer_from_new_connection(&from, &sdp) {
                    self.rebuild_to_answer(&from, sdp)
                } else if self.peers.contains_key(&from) {
                    self.remote_offer(&from, sdp)
                } else {
                    self.create_peer(&from, AfterCreate::Answer(sdp))
                }
            }
            Signal::Answer { sdp } => {
                let Some(peer) = self.peers.get_mut(&from) else {
                    return Vec::new();
                };
                if !peer.negotiation.on_remote_answer() {
                    debug!(%from, "dropping a stale answer");
                    return Vec::new();
                }
                // The answer to an offer made before a later change does not confirm it: the
                // offer that carries it is still to come.
                if !peer.offer_wanted {
                    peer.screen_unconfirmed = false;
                }
                self.note_remote_sdp(&from, &sdp);
                vec![Action::ApplyAnswer { id: from, sdp }]
            }
            Signal::Candidate {
                candidate,
                sdp_mid,
                sdp_mline_index,
                username_fragment,
            } => {
                let Some(peer) = self.peers.get(&from) else {
                    return Vec::new();
                };
                vec![Action::AddCandidate {
                    id: from,
                    candidate,
                    sdp_mid,
                    sdp_mline_index,
                    username_fragment,
                    quiet: peer.negotiation.ignoring_offer(),
                }]
            }
            Signal::EndOfCandidates => Vec::new(),
            Signal::Hangup { .. } => self.remove_peer(&from, true),
        }
    }

    fn remote_offer(&mut self, from: &ParticipantId, sdp: String) -> Vec<Action> {
        let Some(peer) = self.peers.get_mut(from) else {
            return Vec::new();
        };
        match peer.negotiation.on_remote_offer() {
            OfferDecision::Accept { rollback_first } => {
                if rollback_first && peer.screen_unconfirmed {
                    // The offer we roll back carried a screen change: make it again afterwards.
                    peer.offer_wanted = true;
                }
                self.note_remote_sdp(from, &sdp);
                vec![Action::AcceptOffer {
                    id: from.clone(),
                    sdp,
                    rollback_first,
                }]
            }
            OfferDecision::Ignore => {
                debug!(%from, "ignoring a colliding offer (we are impolite)");
                Vec::new()
            }
        }
    }

    // ---- peer connections ----

    /// A control event from the peer connection to `id`.
    pub(crate) fn on_peer(
        &mut self,
        id: ParticipantId,
        event: PeerEvent,
        now: Instant,
    ) -> Vec<Action> {
        match event {
            PeerEvent::LocalCandidate {
                candidate,
                sdp_mid,
                sdp_mline_index,
                username_fragment,
            } => vec![Action::Signal {
                to: id,
                signal: Signal::Candidate {
                    candidate,
                    sdp_mid,
                    sdp_mline_index,
                    username_fragment,
                },
            }],
            PeerEvent::GatheringComplete => vec![Action::Signal {
                to: id,
                signal: Signal::EndOfCandidates,
            }],
            // Tracks and the chat channel are all added when the link is created and the first
            // offer/answer covers them; switching sources replaces frames, not tracks. The event
            // (fired for those initial tracks, and arriving after that first negotiation) would
            // only start a needless second round, so it is not acted on.
            PeerEvent::NegotiationNeeded => {
                debug!(%id, "negotiation needed: covered already");
                Vec::new()
            }
            PeerEvent::SignalingStable(stable) => {
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.negotiation.set_stable(stable);
                }
                if stable {
                    self.offer_if_wanted(&id)
                } else {
                    Vec::new()
                }
            }
            PeerEvent::Connection(state) => self.on_connection_state(&id, state, now),
            PeerEvent::ChatOpen => {
                let mut ready = false;
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.chat_open = true;
                    ready = peer.chat_ready();
                }
                let mut out = self.send_media_state(&id);
                if ready {
                    out.extend(self.flush_outbox(&id));
                }
                out
            }
            PeerEvent::ChatClosed => {
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.chat_open = false;
                    peer.remote_spoke = false;
                }
                Vec::new()
            }
            PeerEvent::Chat(text) => {
                let mut out = Vec::new();
                if let Some(peer) = self.peers.get_mut(&id)
                    && !peer.remote_spoke
                {
                    peer.remote_spoke = true;
                    if peer.chat_ready() {
                        out.extend(self.flush_outbox(&id));
                    }
                }
                out.extend(self.on_data_message(&id, &text));
                out
            }
            PeerEvent::KeyframeRequested => vec![Action::RequestLocalKeyframe],
            PeerEvent::ScreenKeyframeRequested => vec![Action::RequestScreenKeyframe],
        }
    }

    fn on_connection_state(
        &mut self,
        id: &ParticipantId,
        state: ConnectionState,
        now: Instant,
    ) -> Vec<Action> {
        let Some(peer) = self.peers.get_mut(id) else {
            return Vec::new();
        };
        let link_state = match state {
            ConnectionState::New | ConnectionState::Connecting => LinkState::Connecting,
            ConnectionState::Connected => LinkState::Connected,
            ConnectionState::Disconnected => LinkState::Reconnecting,
            ConnectionState::Failed => LinkState::Failed,
            ConnectionState::Closed => LinkState::Closed,
        };
        if peer.state == link_state {
            return Vec::new();
        }
        peer.state = link_state;
        let polite = peer.negotiation.is_polite();
        let mut out = vec![Action::Emit(EngineEvent::Link {
            id: id.clone(),
            state: link_state,
        })];
        match link_state {
            LinkState::Connected => {
                peer.ever_connected = true;
                out.push(Action::StartSending { id: id.clone() });
                if !peer.code_sent {
                    out.push(Action::ShowVerificationCode { id: id.clone() });
                }
            }
            LinkState::Reconnecting if !polite => out.extend(self.restart_ice(id, false, now)),
            LinkState::Failed => out.extend(self.restart_ice(id, false, now)),
            _ => {}
        }
        out
    }

    fn on_data_message(&mut self, id: &ParticipantId, text: &str) -> Vec<Action> {
        match DataMessage::decode(text) {
            Received::Message(DataMessage::Media {
                mic,
                camera,
                screen,
            }) => {
                let mut out = vec![Action::Emit(EngineEvent::RemoteMedia {
                    id: id.clone(),
                    mic,
                    camera,
                })];
                out.extend(self.remote_screen(id, screen));
                out
            }
            Received::Message(DataMessage::Chat { text }) => {
                vec![Action::Emit(EngineEvent::Chat {
                    from: id.clone(),
                    name: self.name_of(id),
                    text,
                    at: SystemTime::now(),
                })]
            }
            Received::Ignored { kind } => {
                debug!(%id, ?kind, "ignoring a data-channel message this client does not know");
                Vec::new()
            }
        }
    }

    // ---- decoder threads ----

    /// The decoder of `id`'s camera or screen (`role`) needs a keyframe: send a PLI when its
    /// pacing says so (`pli`; each role is paced on its own).
    pub(crate) fn keyframe_needed(
        &mut self,
        id: &ParticipantId,
        role: VideoRole,
        now: Instant,
    ) -> Vec<Action> {
        let Some(peer) = self.peers.get_mut(id) else {
            return Vec::new();
        };
        let pacing = match role {
            VideoRole::Camera => &mut peer.pli,
            VideoRole::Screen => &mut peer.screen_pli,
        };
        if !pacing.due(now) {
            return Vec::new();
        }
        peer.plis_sent += 1;
        vec![Action::SendPli {
            id: id.clone(),
            role,
        }]
    }

    // ---- the one-second tick ----

    /// Once a second; returns the actions and whether statistics should be collected (only
    /// with someone to collect them for). Chat messages that waited too long are given up on.
    pub(crate) fn tick(&mut self, now: Instant) -> (Vec<Action>, bool) {
        let mut out = self.expire_outboxes(now);
        if self.peers.is_empty() {
            return (out, false);
        }
        self.ticks += 1;
        out.extend(self.rebuild_stuck_links());
        if self.ticks.is_multiple_of(MEDIA_STATE_REFRESH_TICKS) {
            // Idempotent, and it heals a state message lost as a channel opened (a message sent
            // at that instant was seen to vanish inside webrtc-rs).
            out.extend(self.broadcast_media_state());
        }
        (out, true)
    }

    // ---- shared steps ----

    fn create_peer(&mut self, id: &ParticipantId, then: AfterCreate) -> Vec<Action> {
        let Some(my_id) = &self.my_id else {
            return Vec::new();
        };
        vec![Action::CreatePeer {
            id: id.clone(),
            polite: Negotiation::polite_for(my_id.as_str(), id.as_str()),
            then,
        }]
    }

    fn remove_peer(&mut self, id: &ParticipantId, announce: bool) -> Vec<Action> {
        let mut out = Vec::new();
        if self.peers.remove(id).is_some() {
            out.push(Action::ClosePeer { id: id.clone() });
        }
        self.rebuilds.remove(id);
        out.extend(self.drop_outbox(id, "left before it was delivered"));
        if announce {
            out.push(Action::Emit(EngineEvent::ParticipantLeft {
                id: id.clone(),
            }));
        }
        out
    }

    fn make_offer(&mut self, id: &ParticipantId, ice_restart: bool) -> Vec<Action> {
        let Some(peer) = self.peers.get_mut(id) else {
            return Vec::new();
        };
        peer.negotiation.begin_offer();
        vec![Action::CreateOffer {
            id: id.clone(),
            ice_restart,
        }]
    }

    fn restart_ice(&mut self, id: &ParticipantId, forced: bool, now: Instant) -> Vec<Action> {
        let Some(peer) = self.peers.get_mut(id) else {
            return Vec::new();
        };
        if !forced
            && peer
                .last_restart
                .is_some_and(|t| now.duration_since(t) < RESTART_INTERVAL)
        {
            return Vec::new();
        }
        peer.last_restart = Some(now);
        info!(%id, "restarting ICE");
        self.make_offer(id, true)
    }

    fn media_state(&self) -> DataMessage {
        DataMessage::Media {
            mic: !self.mic_off && !self.no_audio_source,
            camera: !self.camera_off && !self.no_video_source,
            screen: self.sharing.as_ref().map(|s| s.stream.clone()),
        }
    }

    fn send_media_state(&self, id: &ParticipantId) -> Vec<Action> {
        match self.peers.get(id) {
            Some(peer) if peer.chat_open => vec![Action::SendData {
                to: vec![id.clone()],
                message: self.media_state(),
            }],
            _ => Vec::new(),
        }
    }

    fn broadcast_media_state(&self) -> Vec<Action> {
        let to: Vec<_> = self
            .peer_ids()
            .into_iter()
            .filter(|id| self.peers.get(id).is_some_and(|p| p.chat_open))
            .collect();
        if to.is_empty() {
            return Vec::new();
        }
        vec![Action::SendData {
            to,
            message: self.media_state(),
        }]
    }
}

mod chat;
mod outbox;
mod pli;
mod rebuild;
mod results;
mod screen;

#[cfg(test)]
#[path = "call_core_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "call_core_data_tests.rs"]
mod data_tests;
