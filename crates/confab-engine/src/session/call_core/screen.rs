//! Screen sharing in the call's state machine: our share's track on every connection (added and
//! removed by renegotiation), the remote's announced screen, and one share per room.
//!
//! Contract:
//! - Starting a share adds our screen track to every connection and offers when the
//!   negotiation can ([`Negotiation::can_offer`](crate::negotiation::Negotiation::can_offer));
//!   otherwise the offer waits (`offer_wanted`) for the next stable signalling state. A
//!   connection made while we share carries the screen from its first offer (or from the offer
//!   we make right after answering theirs). Stopping removes the tracks the same way.
//! - Our media-state message names our screen's msid stream while we share; a remote's names
//!   its own, which goes to its link (so a browser's screen track is told from its camera) and
//!   to the UI as [`EngineEvent::RemoteScreen`] when its sharing starts or stops.
//! - One share at a time: when someone else announces a share (a screen stream different from
//!   its last one) while we share, ours stops ([`ScreenShareEnd::Replaced`]): the newest share
//!   wins, as in the web client. (Two shares
//!   started at the same instant both stop; each side says who replaced it, and either can
//!   share again.)

use signaling_client::ParticipantId;
use tracing::info;

use super::{Action, CallCore};
use crate::api::{EngineEvent, ScreenShareEnd, ScreenShareState};

/// Our running share.
#[derive(Debug, Clone)]
pub(crate) struct LocalShare {
    /// The screen track's msid stream id (the same on every connection).
    pub(crate) stream: String,
}

impl CallCore {
    /// Our share started (its capture runs) with track stream id `stream`. Sharing again
    /// while sharing (another screen) keeps the tracks: only the pictures change.
    pub(crate) fn start_screen_share(&mut self, stream: &str) -> Vec<Action> {
        if !self.in_call() || self.sharing.is_some() {
            return Vec::new();
        }
        info!(%stream, "sharing our screen");
        self.sharing = Some(LocalShare {
            stream: stream.to_owned(),
        });
        let mut out = Vec::new();
        for id in self.peer_ids() {
            out.push(Action::AddScreenTrack {
                id: id.clone(),
                stream: stream.to_owned(),
            });
            out.extend(self.want_offer(&id));
        }
        out.extend(self.broadcast_media_state());
        out
    }

    /// Our share ends (`reason`): tracks removed by renegotiation, everyone told.
    pub(crate) fn stop_screen_share(&mut self, reason: ScreenShareEnd) -> Vec<Action> {
        if self.sharing.is_none() {
            return Vec::new();
        }
        let mut out = self.end_share_locally(reason);
        for id in self.peer_ids() {
            out.push(Action::RemoveScreenTrack { id: id.clone() });
            out.extend(self.want_offer(&id));
        }
        out.extend(self.broadcast_media_state());
        out
    }

    /// Forgets our share and stops its sender, telling the UI why; the tracks are left to the
    /// caller (the call is ending, or [`CallCore::stop_screen_share`] removes them).
    pub(super) fn end_share_locally(&mut self, reason: ScreenShareEnd) -> Vec<Action> {
        if self.sharing.take().is_none() {
            return Vec::new();
        }
        info!(?reason, "screen share ended");
        vec![
            Action::StopScreenSender,
            Action::Emit(EngineEvent::ScreenShare(ScreenShareState::Ended { reason })),
        ]
    }

    /// For a connection just made: while we share, its screen track, and (`answering`) an
    /// offer once the first exchange is done.
    pub(super) fn screen_for_new_peer(
        &mut self,
        id: &ParticipantId,
        answering: bool,
    ) -> Vec<Action> {
        let Some(share) = &self.sharing else {
            return Vec::new();
        };
        let stream = share.stream.clone();
        if let Some(peer) = self.peers.get_mut(id) {
            peer.offer_wanted = answering;
            peer.screen_unconfirmed = true;
        }
        vec![Action::AddScreenTrack {
            id: id.clone(),
            stream,
        }]
    }

    /// Offer to `id` now if the negotiation allows, or once it is stable again.
    fn want_offer(&mut self, id: &ParticipantId) -> Vec<Action> {
        let Some(peer) = self.peers.get_mut(id) else {
            return Vec::new();
        };
        peer.screen_unconfirmed = true;
        if peer.negotiation.can_offer() {
            self.make_offer(id, false)
        } else {
            peer.offer_wanted = true;
            Vec::new()
        }
    }

    /// The signalling state with `id` became stable: make the offer that waited, if any.
    pub(super) fn offer_if_wanted(&mut self, id: &ParticipantId) -> Vec<Action> {
        match self.peers.get_mut(id) {
            Some(peer) if peer.offer_wanted && peer.negotiation.can_offer() => {
                peer.offer_wanted = false;
                // This offer carries the change: until its answer, a rollback must redo it.
                peer.screen_unconfirmed = true;
                self.make_offer(id, false)
            }
            _ => Vec::new(),
        }
    }

    /// `id`'s media state named `stream` as its screen (`None`: it does not share).
    pub(super) fn remote_screen(
        &mut self,
        id: &ParticipantId,
        stream: Option<String>,
    ) -> Vec<Action> {
        let Some(peer) = self.peers.get_mut(id) else {
            return Vec::new();
        };
        if peer.remote_screen == stream {
            return Vec::new();
        }
        let was_sharing = peer.remote_screen.is_some();
        peer.remote_screen = stream.clone();
        let sharing = stream.is_some();
        let mut out = vec![Action::SetRemoteScreen {
            id: id.clone(),
            stream,
        }];
        if sharing != was_sharing {
            out.push(Action::Emit(EngineEvent::RemoteScreen {
                id: id.clone(),
                sharing,
            }));
        }
        // A new announcement (a first one, or another stream: a new share) replaces ours; the
        // periodic refresh repeats the same value and changes nothing (returned above).
        if sharing {
            out.extend(self.stop_screen_share(ScreenShareEnd::Replaced { by: id.clone() }));
        }
        out
    }
}
