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
use signaling_client::Signal;

use crate::api::{CandidateRewriter, EngineEvent};
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
                    let signal = match &self.config.candidate_rewriter {
                        Some(r) => rewrite_candidates(r.as_ref(), signal),
                        None => signal,
                    };
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
            Action::SendPli { id, role } => {
                if let Some(link) = self.link(&id)
                    && let Err(e) = link.request_keyframe(role).await
                {
                    debug!(%id, error = %e, "PLI not sent");
                }
            }
            Action::RequestLocalKeyframe => self.outgoing.request_keyframe(),
            Action::RequestScreenKeyframe => self.outgoing.request_screen_keyframe(),
            Action::AddScreenTrack { id, stream } => {
                if let Some(link) = self.link(&id)
                    && let Err(e) = link.start_screen(&stream).await
                {
                    warn!(%id, error = %e, "cannot add the screen track");
                }
            }
            Action::RemoveScreenTrack { id } => {
                if let Some(link) = self.link(&id)
                    && let Err(e) = link.stop_screen().await
                {
                    debug!(%id, error = %e, "cannot remove the screen track");
                }
            }
            Action::SetRemoteScreen { id, stream } => {
                if let Some(link) = self.link(&id) {
                    link.set_remote_screen_stream(stream);
                }
            }
            Action::StopScreenSender => self.stop_screen_sender(),
            Action::CloseSignaling => {
                if let Some(client) = self.client.take() {
                    client.leave().await;
                }
                self.signaling = None;
                self.signaling_events = None;
                self.video_sender = None;
                self.audio_sender = None;
                self.stop_screen_sender();
            }
        }
        Vec::new()
    }
}

/// `signal` with our candidates passed through `rewriter` (the
/// [`EngineConfig::candidate_rewriter`](crate::EngineConfig::candidate_rewriter) hook): a
/// trickled candidate is rewritten (or becomes an end-of-candidates marker when refused, which
/// the far side takes as nothing), and every `a=candidate:` line of an SDP we send is rewritten
/// or removed.
fn rewrite_candidates(rewriter: &dyn CandidateRewriter, signal: Signal) -> Signal {
    match signal {
        Signal::Candidate {
            candidate,
            sdp_mid,
            sdp_mline_index,
            username_fragment,
        } => match rewriter.rewrite(&candidate) {
            Some(candidate) => Signal::Candidate {
                candidate,
                sdp_mid,
                sdp_mline_index,
                username_fragment,
            },
            None => Signal::EndOfCandidates,
        },
        Signal::Offer { sdp } => Signal::Offer {
            sdp: rewrite_sdp(rewriter, &sdp),
        },
        Signal::Answer { sdp } => Signal::Answer {
            sdp: rewrite_sdp(rewriter, &sdp),
        },
        Signal::IceRestart { sdp } => Signal::IceRestart {
            sdp: rewrite_sdp(rewriter, &sdp),
        },
        other => other,
    }
}

fn rewrite_sdp(rewriter: &dyn CandidateRewriter, sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        match body
            .strip_prefix("a=")
            .filter(|c| c.starts_with("candidate:"))
        {
            Some(candidate) => {
                if let Some(new) = rewriter.rewrite(candidate) {
                    out.push_str("a=");
                    out.push_str(&new);
                    out.push_str(&line[body.len()..]);
                }
            }
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use signaling_client::Signal;

    use super::{CandidateRewriter, rewrite_candidates};

    /// Rewrites `10.0.0.1` to `10.9.9.9` and refuses `tcp` candidates.
    struct Swap;

    impl CandidateRewriter for Swap {
        fn rewrite(&self, candidate: &str) -> Option<String> {
            (!candidate.contains(" tcp ")).then(|| candidate.replace("10.0.0.1", "10.9.9.9"))
        }
    }

    #[test]
    fn candidates_are_rewritten_in_trickle_and_in_sdp() {
        let c = "candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host";
        let Signal::Candidate { candidate, .. } = rewrite_candidates(
            &Swap,
            Signal::Candidate {
                candidate: c.into(),
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
                username_fragment: None,
            },
        ) else {
            panic!("still a candidate");
        };
        assert_eq!(
            candidate,
            "candidate:1 1 udp 2130706431 10.9.9.9 5000 typ host"
        );
        let refused = Signal::Candidate {
            candidate: "candidate:2 1 tcp 1 10.0.0.1 9 typ host".into(),
            sdp_mid: None,
            sdp_mline_index: None,
            username_fragment: None,
        };
        assert!(matches!(
            rewrite_candidates(&Swap, refused),
            Signal::EndOfCandidates
        ));
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=candidate:1 1 udp 1 10.0.0.1 5000 typ host\r\na=candidate:2 1 tcp 1 10.0.0.1 9 typ host\r\na=mid:0\r\n";
        let Signal::Offer { sdp } = rewrite_candidates(&Swap, Signal::Offer { sdp: sdp.into() })
        else {
            panic!("still an offer");
        };
        assert_eq!(
            sdp,
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=candidate:1 1 udp 1 10.9.9.9 5000 typ host\r\na=mid:0\r\n"
        );
    }
}
