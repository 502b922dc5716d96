//! Carrying out the core's [`Action`]s on the real signaling client, peer connections and media
//! threads: [`Session::execute`].
//!
//! Contract: actions run in order; an asynchronous step's result goes back to the core at once
//! and the core's answer runs before the next queued action, so no other input interleaves with
//! an offer/answer or a peer creation.

use std::collections::VecDeque;

use tracing::{debug, warn};

use super::Session;
use super::call_core::Action;
use crate::api::EngineEvent;
use crate::data_message::DataMessage;
use crate::peer::PeerError;
use crate::verification::verification_code;

impl Session {
    /// Carries out `actions` in order; results of asynchronous steps go back to the core and
    /// its answers are carried out in turn.
    pub(super) async fn execute(&mut self, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            let follow_up = self.carry_out(action).await;
            for a in follow_up.into_iter().rev() {
                queue.push_front(a);
            }
        }
    }

    async fn carry_out(&mut self, action: Action) -> Vec<Action> {
        match action {
            Action::Emit(event) => self.emit(event),
            Action::Signal { to, signal } => {
                if let Some(s) = &self.signaling {
                    s.send(&to, signal);
                }
            }
            Action::CreatePeer { id, polite, then } => {
                if self.create_peer(&id).await {
                    return self.core.peer_ready(&id, polite, then);
                }
            }
            Action::CreateOffer { id, ice_restart } => {
                if let Some(link) = self.link(&id) {
                    let result = link
                        .create_offer(ice_restart)
                        .await
                        .map_err(|e| e.to_string());
                    return self.core.offer_created(&id, ice_restart, result);
                }
            }
            Action::AcceptOffer {
                id,
                sdp,
                rollback_first,
            } => {
                if let Some(link) = self.link(&id) {
                    let result = link
                        .accept_offer(&sdp, rollback_first)
                        .await
                        .map_err(|e| e.to_string());
                    return self.core.offer_accepted(&id, result);
                }
            }
            Action::ApplyAnswer { id, sdp } => {
                if let Some(link) = self.link(&id)
                    && let Err(e) = link.accept_answer(&sdp).await
                {
                    warn!(%id, error = %e, "cannot apply an answer");
                }
            }
            Action::AddCandidate {
                id,
                candidate,
                sdp_mid,
                sdp_mline_index,
                username_fragment,
                quiet,
            } => {
                if let Some(link) = self.link(&id)
                    && let Err(e) = link
                        .add_remote_candidate(
                            candidate,
                            sdp_mid,
                            sdp_mline_index,
                            username_fragment,
                        )
                        .await
                    && !quiet
                {
                    debug!(%id, error = %e, "remote candidate refused");
                }
            }
            Action::ClosePeer { id } => self.close_peer(&id).await,
            Action::StartSending { id } => {
                if let Some(link) = self.link(&id) {
                    self.outgoing.add_peer(id, link);
                }
            }
            Action::ShowVerificationCode { id } => {
                if let Some(link) = self.link(&id)
                    && let Some((local, remote)) = link.fingerprints().await
                {
                    self.core.verification_shown(&id);
                    self.emit(EngineEvent::VerificationCode {
                        id,
                        code: verification_code(&local, &remote),
                    });
                }
            }
            Action::SendData { to, message } => {
                let text = message.encode();
                for id in to {
                    let Some(link) = self.link(&id) else { continue };
                    if let Err(e) = link.send_chat(&text).await {
                        debug!(%id, error = %e, "data-channel message not sent");
                    }
                }
            }
            Action::SendChat { id, mut messages } => {
                let Some(link) = self.link(&id) else {
                    return self
                        .core
                        .chat_not_sent(&id, messages, false, "no connection");
                };
                for n in 0..messages.len() {
                    let text = DataMessage::Chat {
                        text: messages[n].text.clone(),
                    }
                    .encode();
                    if let Err(e) = link.send_chat(&text).await {
                        debug!(%id, error = %e, "chat message not handed to the channel");
                        let rest = messages.split_off(n);
                        let closed = matches!(e, PeerError::ChatNotOpen);
                        return self.core.chat_not_sent(&id, rest, closed, &e.to_string());
                    }
                }
            }
            Action::SendPli { id } => {
                if let Some(link) = self.link(&id)
                    && let Err(e) = link.request_keyframe().await
                {
                    debug!(%id, error = %e, "PLI not sent");
                }
            }
            Action::RequestLocalKeyframe => self.outgoing.request_keyframe(),
            Action::CloseSignaling => {
                if let Some(client) = self.client.take() {
                    client.leave().await;
                }
                self.signaling = None;
                self.signaling_events = None;
                self.video_sender = None;
                self.audio_sender = None;
            }
        }
        Vec::new()
    }
}
