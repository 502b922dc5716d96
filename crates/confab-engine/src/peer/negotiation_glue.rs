//! Offer/answer and trickle ICE on the `RTCPeerConnection`: the [`PeerLink`] methods
//! [`create_offer`](PeerLink::create_offer), [`accept_offer`](PeerLink::accept_offer),
//! [`accept_answer`](PeerLink::accept_answer) and
//! [`add_remote_candidate`](PeerLink::add_remote_candidate), and the signalling state they
//! track ([`Negotiation`]).
//!
//! Contract: every step runs under the link's negotiation mutex, so concurrent calls run one
//! at a time. The signalling state is tracked here from our own calls (the library has no
//! getter, and its callback lags), and [`PeerEvent::SignalingStable`](super::PeerEvent) is sent
//! only on changes, from inside the call that causes them. Remote candidates are held (at most
//! [`MAX_PENDING_CANDIDATES`], oldest dropped) until a remote description of their ICE
//! generation exists. A kind the remote offer cannot carry loses its track before we answer,
//! so that its section is rejected instead of the whole answer failing.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use rtc::peer_connection::configuration::RTCOfferOptions;
use tracing::{debug, info, warn};
use webrtc::peer_connection::{RTCIceCandidateInit, RTCSessionDescription};

use super::events::PeerError;
use super::shared::{library_error, lock};
use super::{PeerLink, sdp_value, sections};

/// Remote candidates held while no (matching) remote description exists; the oldest is dropped
/// beyond this, so a misbehaving peer cannot grow memory without bound.
const MAX_PENDING_CANDIDATES: usize = 256;

/// Our signalling state, as far as our own calls have moved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignalingState {
    Stable,
    HaveLocalOffer,
    HaveRemoteOffer,
}

/// What our negotiation calls know about the current offer/answer state.
pub(super) struct Negotiation {
    state: SignalingState,
    has_remote_description: bool,
    remote_ufrag: Option<String>,
    pending_candidates: VecDeque<RTCIceCandidateInit>,
}

impl Negotiation {
    /// Stable, with no remote description and no buffered candidates.
    pub(super) fn new() -> Self {
        Self {
            state: SignalingState::Stable,
            has_remote_description: false,
            remote_ufrag: None,
            pending_candidates: VecDeque::new(),
        }
    }
}

impl PeerLink {
    /// Records mid and ufrag of a description we are about to apply locally, so candidates
    /// gathered for it are tagged correctly.
    fn note_local_description(&self, sdp: &str) {
        let (first_mid, first_index) = sections::MediaSections::parse(sdp)
            .first_live()
            .unwrap_or((None, 0));
        let mut ice = lock(&self.shared.local_ice);
        ice.first_mid = first_mid;
        ice.first_index = first_index;
        ice.ufrag = sdp_value(sdp, "a=ice-ufrag:").map(str::to_owned);
        ice.description = sdp.to_owned();
    }

    fn negotiation_error(&self, step: &str, e: &webrtc::error::Error) -> PeerError {
        if self.shared.closed.load(Ordering::Acquire)
            || matches!(e, webrtc::error::Error::ErrConnectionClosed)
        {
            PeerError::Closed
        } else {
            PeerError::Negotiation(library_error(step, e))
        }
    }

    /// Creates an offer (with new ICE credentials if `ice_restart`), applies it locally and
    /// returns its SDP. Leaves the signalling state `have-local-offer`.
    ///
    /// # Errors
    /// [`PeerError::Negotiation`] if a remote offer is pending or the library fails;
    /// [`PeerError::Closed`] after close.
    pub async fn create_offer(&self, ice_restart: bool) -> Result<String, PeerError> {
        self.check_open()?;
        let mut neg = self.negotiation.lock().await;
        if neg.state == SignalingState::HaveRemoteOffer {
            return Err(PeerError::Negotiation(
                "cannot offer while a remote offer is being answered".to_owned(),
            ));
        }
        let offer = self
            .pc
            .create_offer(Some(RTCOfferOptions { ice_restart }))
            .await
            .map_err(|e| self.negotiation_error("create_offer", &e))?;
        let sdp = offer.sdp.clone();
        self.note_local_description(&sdp);
        self.pc
            .set_local_description(offer)
            .await
            .map_err(|e| self.negotiation_error("set_local_description(offer)", &e))?;
        neg.state = SignalingState::HaveLocalOffer;
        self.shared.set_stable(false);
        Ok(sdp)
    }

    /// Applies a remote offer and returns our answer (applied locally), after first rolling
    /// back our own pending offer if `rollback_first` (the polite side of an offer collision; a
    /// no-op if we have no pending offer). Buffered remote candidates are added afterwards.
    /// Leaves the signalling state stable.
    ///
    /// # Errors
    /// [`PeerError::Negotiation`] if the offer is invalid or collides with our own offer and
    /// `rollback_first` is false; the state is then what it was before the call, except that a
    /// requested rollback has happened. [`PeerError::Closed`] after close.
    pub async fn accept_offer(&self, sdp: &str, rollback_first: bool) -> Result<String, PeerError> {
        self.check_open()?;
        let mut neg = self.negotiation.lock().await;
        if neg.state == SignalingState::HaveLocalOffer {
            if !rollback_first {
                return Err(PeerError::Negotiation(
                    "remote offer collides with our pending offer".to_owned(),
                ));
            }
            let rollback = RTCSessionDescription::rollback(None)
                .map_err(|e| self.negotiation_error("rollback description", &e))?;
            self.pc
                .set_local_description(rollback)
                .await
                .map_err(|e| self.negotiation_error("rollback", &e))?;
            neg.state = SignalingState::Stable;
            // Deliberately no SignalingStable(true) here: we leave stable again at once.
        }
        let offer = RTCSessionDescription::offer(sdp.to_owned())
            .map_err(|e| self.negotiation_error("parsing remote offer", &e))?;
        if let Err(e) = self.pc.set_remote_description(offer).await {
            self.shared.set_stable(neg.state == SignalingState::Stable);
            return Err(self.negotiation_error("set_remote_description(offer)", &e));
        }
        neg.state = SignalingState::HaveRemoteOffer;
        neg.has_remote_description = true;
        neg.remote_ufrag = sdp_value(sdp, "a=ice-ufrag:").map(str::to_owned);
        self.shared.set_stable(false);

        let answer = match self.answer(sdp).await {
            Ok(answer) => answer,
            Err(e) => {
                // Return to stable so the caller can carry on with the previous session.
                match RTCSessionDescription::rollback(None) {
                    Ok(rollback) => {
                        if let Err(rb) = self.pc.set_local_description(rollback).await {
                            debug!(error = %rb, "rollback after failed answer");
                        } else {
                            neg.state = SignalingState::Stable;
                            self.shared.set_stable(true);
                        }
                    }
                    Err(rb) => debug!(error = %rb, "rollback description"),
                }
                return Err(e);
            }
        };
        neg.state = SignalingState::Stable;
        self.negotiation_completed(&answer);
        self.flush_candidates(&mut neg).await;
        self.shared.set_stable(true);
        Ok(answer)
    }

    /// Creates and applies our answer to the remote `offer` (already applied). A kind the offer
    /// cannot carry (no codec of ours, or rejected) loses its track first, so that the library
    /// rejects its section instead of failing the whole answer.
    async fn answer(&self, offer: &str) -> Result<String, PeerError> {
        let offered = sections::MediaSections::parse(offer);
        for media in [&self.audio, &self.video] {
            if offered.offers_kind_without(media.kind(), media.encoding_name())
                && !media.removed.swap(true, Ordering::AcqRel)
            {
                info!(
                    kind = media.kind(),
                    codec = media.encoding_name(),
                    "the remote offer has no codec of ours for this kind; answering without it"
                );
                self.pc
                    .remove_track(&media.sender)
                    .await
                    .map_err(|e| self.negotiation_error("remove_track", &e))?;
            }
        }
        let answer = self
            .pc
            .create_answer(None)
            .await
            .map_err(|e| self.negotiation_error("create_answer", &e))?;
        let sdp = answer.sdp.clone();
        self.note_local_description(&sdp);
        self.pc
            .set_local_description(answer)
            .await
            .map_err(|e| self.negotiation_error("set_local_description(answer)", &e))?;
        Ok(sdp)
    }

    /// Applies the remote answer to our pending offer and adds buffered remote candidates.
    /// Leaves the signalling state stable.
    ///
    /// # Errors
    /// [`PeerError::Negotiation`] if we have no pending offer (e.g. it was rolled back) or the
    /// answer is invalid; [`PeerError::Closed`] after close.
    pub async fn accept_answer(&self, sdp: &str) -> Result<(), PeerError> {
        self.check_open()?;
        let mut neg = self.negotiation.lock().await;
        if neg.state != SignalingState::HaveLocalOffer {
            return Err(PeerError::Negotiation(
                "answer received but no offer of ours is pending".to_owned(),
            ));
        }
        let answer = RTCSessionDescription::answer(sdp.to_owned())
            .map_err(|e| self.negotiation_error("parsing remote answer", &e))?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(|e| self.negotiation_error("set_remote_description(answer)", &e))?;
        neg.state = SignalingState::Stable;
        neg.has_remote_description = true;
        neg.remote_ufrag = sdp_value(sdp, "a=ice-ufrag:").map(str::to_owned);
        self.negotiation_completed(sdp);
        self.flush_candidates(&mut neg).await;
        self.shared.set_stable(true);
        Ok(())
    }

    /// After an offer/answer exchange that ended with `answer` (ours or theirs): send
    /// parameters may have changed, so re-read them on the next write, and note which kinds
    /// the answer left flowing.
    fn negotiation_completed(&self, answer: &str) {
        let answer = sections::MediaSections::parse(answer);
        for media in [&self.audio, &self.video] {
            media.forget_payload_type();
            let live = answer.is_live(media.kind()) && !media.removed.load(Ordering::Acquire);
            if media.live.swap(live, Ordering::AcqRel) != live {
                info!(kind = media.kind(), live, "media negotiated");
            }
        }
        let local = lock(&self.shared.local_ice).description.clone();
        self.screen_negotiated(&local, answer.is_live("video"));
    }

    /// Whether `c` belongs to the remote description's ICE generation (unknown counts as yes).
    fn matches_generation(neg: &Negotiation, c: &RTCIceCandidateInit) -> bool {
        match (&c.username_fragment, &neg.remote_ufrag) {
            (Some(theirs), Some(current)) if !theirs.is_empty() => theirs == current,
            _ => true,
        }
    }

    async fn flush_candidates(&self, neg: &mut Negotiation) {
        let pending = std::mem::take(&mut neg.pending_candidates);
        for candidate in pending {
            if Self::matches_generation(neg, &candidate) {
                if let Err(e) = self.pc.add_ice_candidate(candidate).await {
                    // Handled here: one bad candidate must not stop the others.
                    warn!(error = %e, "buffered remote candidate rejected");
                }
            } else {
                // Probably for a description not applied yet (or a dead generation): keep it.
                neg.pending_candidates.push_back(candidate);
            }
        }
    }

    /// Adds a remote ICE candidate, or buffers it while there is no remote description (or
    /// its ufrag names an ICE generation other than the current remote description's). An empty
    /// `candidate` is an end-of-candidates marker and is accepted.
    ///
    /// # Errors
    /// [`PeerError::Candidate`] if the library rejects it; [`PeerError::Closed`] after close.
    pub async fn add_remote_candidate(
        &self,
        candidate: String,
        sdp_mid: Option<String>,
        sdp_mline_index: Option<u16>,
        username_fragment: Option<String>,
    ) -> Result<(), PeerError> {
        self.check_open()?;
        let init = RTCIceCandidateInit {
            candidate,
            sdp_mid,
            sdp_mline_index,
            username_fragment,
            url: None,
        };
        let mut neg = self.negotiation.lock().await;
        if !neg.has_remote_description || !Self::matches_generation(&neg, &init) {
            if neg.pending_candidates.len() >= MAX_PENDING_CANDIDATES {
                neg.pending_candidates.pop_front();
                warn!("too many buffered remote candidates; dropping the oldest");
            }
            neg.pending_candidates.push_back(init);
            return Ok(());
        }
        self.pc.add_ice_candidate(init).await.map_err(|e| {
            if self.shared.closed.load(Ordering::Acquire) {
                PeerError::Closed
            } else {
                PeerError::Candidate(e.to_string())
            }
        })
    }
}
