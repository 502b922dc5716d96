//! Re-creating a peer connection whose DTLS handshake died: the impolite side gives a link that
//! has not connected within [`SETUP_TICKS`] a fresh peer connection and offers from it; the
//! other side sees the new DTLS fingerprint in that offer and re-creates its own to answer it.
//!
//! Why: webrtc-rs 0.21.1's DTLS does not answer a repeated flight with its last one (RFC 6347
//! §4.2.4, upstream webrtc-rs/rtc#243), so one handshake packet lost at the wrong moment leaves
//! the handshake retransmitting until it gives up, about 9 s later, and the call never connects:
//! measured in about 1 of 6 calls set up at 5-10 % loss. An ICE restart cannot help (DTLS runs
//! once per peer connection); a new peer connection is a new handshake, connected in ~1 s.
//!
//! Contract:
//! - only a link that has **never** connected is rebuilt (a connected one that fails gets ICE
//!   restarts as before), by the impolite side only (so the two sides never rebuild at once),
//!   at most [`MAX_REBUILDS`] times per participant;
//! - a remote offer whose `a=fingerprint` differs from the one the current link already knows
//!   is a rebuilt remote peer connection: ours is closed and a fresh one answers it. A remote
//!   offer on a link that knows no remote fingerprint yet is negotiated as usual;
//! - the chat outbox survives a rebuild (it is flushed when the new link's channel opens), and
//!   the UI sees the link go back to `Connecting`, then on as for any new link.

use signaling_client::ParticipantId;
use tracing::{info, warn};

use super::{Action, AfterCreate, CallCore};
use crate::negotiation::Negotiation;

/// One-second ticks a link may spend without ever connecting before the impolite side rebuilds
/// it. Under 10 % loss a healthy handshake finishes within 1-3 s (its first retransmission
/// timer is 1 s); the dead one only gives up after about 9 s.
pub(crate) const SETUP_TICKS: u32 = 5;
/// Rebuilds per participant: past that the other side is likely gone, not stuck.
pub(crate) const MAX_REBUILDS: u32 = 3;

/// The DTLS fingerprint of `sdp` (its first `a=fingerprint:` line's value), if any.
pub(crate) fn sdp_fingerprint(sdp: &str) -> Option<&str> {
    crate::peer::sdp_value(sdp, "a=fingerprint:")
}

impl CallCore {
    /// Remembers the remote fingerprint `sdp` carries for the link to `id`.
    pub(super) fn note_remote_sdp(&mut self, id: &ParticipantId, sdp: &str) {
        if let (Some(peer), Some(fp)) = (self.peers.get_mut(id), sdp_fingerprint(sdp)) {
            peer.remote_fingerprint = Some(fp.to_owned());
        }
    }

    /// Whether an offer carrying `sdp` comes from a new remote peer connection (see the module
    /// docs).
    pub(super) fn offer_from_new_connection(&self, id: &ParticipantId, sdp: &str) -> bool {
        let Some(known) = self
            .peers
            .get(id)
            .and_then(|p| p.remote_fingerprint.as_deref())
        else {
            return false;
        };
        sdp_fingerprint(sdp).is_some_and(|fp| fp != known)
    }

    /// Replaces the link to `id` with a fresh one that answers `offer`.
    pub(super) fn rebuild_to_answer(&mut self, id: &ParticipantId, offer: String) -> Vec<Action> {
        info!(%id, "the other side re-created its connection; re-creating ours to answer it");
        self.rebuild(id, AfterCreate::Answer(offer))
    }

    /// Counts a tick for every link that has never connected; rebuilds those that waited
    /// [`SETUP_TICKS`] where we are impolite.
    pub(super) fn rebuild_stuck_links(&mut self) -> Vec<Action> {
        let mut stuck = Vec::new();
        for (id, peer) in &mut self.peers {
            if peer.ever_connected {
                continue;
            }
            peer.unconnected_ticks += 1;
            if peer.unconnected_ticks >= SETUP_TICKS && !peer.negotiation.is_polite() {
                stuck.push(id.clone());
            }
        }
        stuck.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let mut out = Vec::new();
        for id in stuck {
            let done = self.rebuilds.get(&id).copied().unwrap_or(0);
            if done < MAX_REBUILDS {
                info!(%id, ticks = SETUP_TICKS, "the connection never came up; re-creating it");
                out.extend(self.rebuild(&id, AfterCreate::Offer));
            } else if self
                .peers
                .get(&id)
                .is_some_and(|p| p.unconnected_ticks == SETUP_TICKS)
            {
                warn!(%id, rebuilds = done, "the connection still does not come up; no more re-creating");
            }
        }
        out
    }

    fn rebuild(&mut self, id: &ParticipantId, then: AfterCreate) -> Vec<Action> {
        let Some(my_id) = &self.my_id else {
            return Vec::new();
        };
        let polite = Negotiation::polite_for(my_id.as_str(), id.as_str());
        *self.rebuilds.entry(id.clone()).or_insert(0) += 1;
        // Not `remove_peer`: the participant is still here, and its chat outbox waits for the
        // new link's channel.
        self.peers.remove(id);
        // The new link's `peer_ready` tells the UI it is connecting again.
        vec![
            Action::ClosePeer { id: id.clone() },
            Action::CreatePeer {
                id: id.clone(),
                polite,
                then,
            },
        ]
    }
}

#[cfg(test)]
#[path = "rebuild_tests.rs"]
mod tests;
