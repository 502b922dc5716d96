//! The call core's inputs that are results of its own asynchronous actions: a peer connection
//! was created, an offer was created, a remote offer was answered, a verification code was shown.
//!
//! Contract: the session loop calls each right after carrying out the matching [`Action`], before
//! anything else; each returns the next actions.

use signaling_client::{ParticipantId, Signal};
use tracing::warn;

use super::{Action, AfterCreate, CallCore, PeerState};
use crate::api::{EngineEvent, LinkState};
use crate::negotiation::Negotiation;

impl CallCore {
    /// The peer connection asked for by [`Action::CreatePeer`] exists.
    pub(crate) fn peer_ready(
        &mut self,
        id: &ParticipantId,
        polite: bool,
        then: AfterCreate,
    ) -> Vec<Action> {
        self.peers.insert(
            id.clone(),
            PeerState {
                negotiation: Negotiation::new(polite),
                state: LinkState::Connecting,
                pli: super::pli::PliPacing::default(),
                plis_sent: 0,
                last_restart: None,
                code_sent: false,
                chat_open: false,
                remote_spoke: false,
                ever_connected: false,
                unconnected_ticks: 0,
                remote_fingerprint: None,
                offer_wanted: false,
                remote_screen: None,
                screen_pli: super::pli::PliPacing::default(),
                screen_unconfirmed: false,
            },
        );
        let mut out = vec![Action::Emit(EngineEvent::Link {
            id: id.clone(),
            state: LinkState::Connecting,
        })];
        // While we share, a new connection carries the screen from the start: in our offer,
        // or in the offer we make once we have answered theirs (which cannot include it).
        out.extend(self.screen_for_new_peer(id, matches!(then, AfterCreate::Answer(_))));
        match then {
            AfterCreate::Offer => out.extend(self.make_offer(id, false)),
            AfterCreate::Answer(sdp) => out.extend(self.remote_offer(id, sdp)),
        }
        out
    }

    /// The offer asked for by [`Action::CreateOffer`] was created (`Ok(sdp)`) or not.
    pub(crate) fn offer_created(
        &mut self,
        id: &ParticipantId,
        ice_restart: bool,
        result: Result<String, String>,
    ) -> Vec<Action> {
        let Some(peer) = self.peers.get_mut(id) else {
            return Vec::new();
        };
        peer.negotiation.offer_sent(result.is_ok());
        // This offer carries the tracks as they are now (a failed one carries nothing: a
        // pending change still wants its offer).
        if result.is_ok() {
            peer.offer_wanted = false;
        }
        match result {
            Ok(sdp) => {
                let signal = if ice_restart {
                    Signal::IceRestart { sdp }
                } else {
                    Signal::Offer { sdp }
                };
                vec![Action::Signal {
                    to: id.clone(),
                    signal,
                }]
            }
            Err(e) => {
                warn!(%id, error = %e, "cannot create an offer");
                Vec::new()
            }
        }
    }

    /// The offer handed over by [`Action::AcceptOffer`] was applied and answered (`Ok(sdp)`).
    pub(crate) fn offer_accepted(
        &mut self,
        id: &ParticipantId,
        result: Result<String, String>,
    ) -> Vec<Action> {
        match result {
            Ok(sdp) => {
                if let Some(peer) = self.peers.get_mut(id) {
                    peer.negotiation.answered();
                }
                vec![Action::Signal {
                    to: id.clone(),
                    signal: Signal::Answer { sdp },
                }]
            }
            Err(e) => {
                warn!(%id, error = %e, "cannot answer an offer");
                Vec::new()
            }
        }
    }

    /// The verification code for `id` was shown (both fingerprints were known).
    pub(crate) fn verification_shown(&mut self, id: &ParticipantId) {
        if let Some(peer) = self.peers.get_mut(id) {
            peer.code_sent = true;
        }
    }
}
