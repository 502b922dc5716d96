//! Perfect negotiation (RFC 8829 §4.2 pattern) for one peer connection, as pure decisions.
//!
//! Both sides may start an offer at any time (a track added, an ICE restart). When offers cross,
//! the **polite** side yields: it rolls back its own offer and answers the other. The impolite
//! side ignores the crossing offer and waits for the answer to its own. Politeness is fixed per
//! pair by participant id: the side with the smaller id is polite, so both sides agree without
//! talking about it.
//!
//! This type only decides; the session carries the decisions out on the real peer connection.
//! Inputs, by source: the local side wants to offer ([`Negotiation::begin_offer`] /
//! [`Negotiation::offer_sent`]); the remote side's descriptions arrive
//! ([`Negotiation::on_remote_offer`] / [`Negotiation::on_remote_answer`]); the peer connection
//! reports its signaling state ([`Negotiation::set_stable`]).

/// What to do with a remote offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferDecision {
    /// Apply it and answer. `rollback_first` when our own offer is pending (we are polite).
    Accept {
        /// Roll back our pending local offer before applying the remote one.
        rollback_first: bool,
    },
    /// Ignore it (we are impolite and our offer wins); also ignore its candidates' errors.
    Ignore,
}

/// Negotiation state for one remote participant.
#[derive(Debug, Clone)]
pub struct Negotiation {
    polite: bool,
    making_offer: bool,
    have_local_offer: bool,
    stable: bool,
    ignoring_offer: bool,
}

impl Negotiation {
    /// State for a pair where we are `polite` (our id sorts before theirs).
    pub fn new(polite: bool) -> Self {
        Self {
            polite,
            making_offer: false,
            have_local_offer: false,
            stable: true,
            ignoring_offer: false,
        }
    }

    /// Politeness from the two participant ids: the smaller id is polite.
    pub fn polite_for(my_id: &str, their_id: &str) -> bool {
        my_id < their_id
    }

    /// Whether we are the polite side.
    pub fn is_polite(&self) -> bool {
        self.polite
    }

    /// We are about to create an offer.
    pub fn begin_offer(&mut self) {
        self.making_offer = true;
    }

    /// Our offer was created and set locally (or creating it failed: `sent == false`).
    pub fn offer_sent(&mut self, sent: bool) {
        self.making_offer = false;
        if sent {
            self.have_local_offer = true;
            self.stable = false;
        }
    }

    /// A remote offer arrived: decide whether to take it.
    pub fn on_remote_offer(&mut self) -> OfferDecision {
        let collision = self.making_offer || !self.stable;
        self.ignoring_offer = !self.polite && collision;
        if self.ignoring_offer {
            return OfferDecision::Ignore;
        }
        let rollback_first = collision && self.have_local_offer;
        self.have_local_offer = false;
        OfferDecision::Accept { rollback_first }
    }

    /// We answered a remote offer: back to stable.
    pub fn answered(&mut self) {
        self.stable = true;
        self.have_local_offer = false;
    }

    /// A remote answer arrived; returns whether it answers an offer of ours (apply it) or is
    /// stale (drop it).
    pub fn on_remote_answer(&mut self) -> bool {
        if self.have_local_offer {
            self.have_local_offer = false;
            self.stable = true;
            self.ignoring_offer = false;
            true
        } else {
            false
        }
    }

    /// Whether remote candidates for the ignored offer should be dropped silently.
    pub fn ignoring_offer(&self) -> bool {
        self.ignoring_offer
    }

    /// Whether an offer can be made now: stable, and no offer of ours being made or waiting for
    /// its answer.
    pub fn can_offer(&self) -> bool {
        self.stable && !self.making_offer && !self.have_local_offer
    }

    /// The peer connection reported its signaling state.
    ///
    /// A "stable" report while an offer of ours is out is stale: the connection's state events
    /// and our offer's creation reach the session on different channels, so the "stable" of the
    /// negotiation before (e.g. our answer to their first offer) can arrive after our next offer
    /// was made. Taking it would forget the offer, drop its answer as stale and leave the change
    /// it carried (a screen track) never negotiated. The connection leaves have-local-offer only
    /// through the answer ([`Negotiation::on_remote_answer`]) or a rollback
    /// ([`Negotiation::on_remote_offer`]), which both clear the offer first.
    pub fn set_stable(&mut self, stable: bool) {
        if stable && self.have_local_offer {
            return;
        }
        self.stable = stable;
    }

    /// Whether the connection is in the stable signaling state (no offer outstanding).
    #[cfg(test)]
    pub fn is_stable(&self) -> bool {
        self.stable && !self.making_offer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn politeness_is_agreed_from_ids() {
        assert!(Negotiation::polite_for("aaa", "bbb"));
        assert!(!Negotiation::polite_for("bbb", "aaa"));
    }

    #[test]
    fn crossing_offers_polite_rolls_back_impolite_ignores() {
        let mut polite = Negotiation::new(true);
        let mut impolite = Negotiation::new(false);
        for n in [&mut polite, &mut impolite] {
            n.begin_offer();
            n.offer_sent(true);
        }
        assert_eq!(
            polite.on_remote_offer(),
            OfferDecision::Accept {
                rollback_first: true
            }
        );
        assert_eq!(impolite.on_remote_offer(), OfferDecision::Ignore);
        assert!(impolite.ignoring_offer());
        polite.answered();
        // The polite side's answer reaches the impolite side and settles it.
        assert!(impolite.on_remote_answer());
        assert!(!impolite.ignoring_offer());
        assert!(polite.is_stable() && impolite.is_stable());
    }

    #[test]
    fn offer_while_creating_one_is_a_collision() {
        let mut n = Negotiation::new(false);
        n.begin_offer();
        assert_eq!(n.on_remote_offer(), OfferDecision::Ignore);
        let mut p = Negotiation::new(true);
        p.begin_offer();
        // Nothing set locally yet: accept without rollback.
        assert_eq!(
            p.on_remote_offer(),
            OfferDecision::Accept {
                rollback_first: false
            }
        );
    }

    #[test]
    fn plain_offer_answer_without_collision() {
        let mut offerer = Negotiation::new(false);
        let mut answerer = Negotiation::new(true);
        offerer.begin_offer();
        offerer.offer_sent(true);
        assert!(!offerer.is_stable());
        assert_eq!(
            answerer.on_remote_offer(),
            OfferDecision::Accept {
                rollback_first: false
            }
        );
        answerer.answered();
        assert!(offerer.on_remote_answer());
        assert!(offerer.is_stable());
        // A duplicate answer is stale.
        assert!(!offerer.on_remote_answer());
    }

    #[test]
    fn a_stable_report_older_than_our_offer_does_not_forget_it() {
        let mut n = Negotiation::new(false);
        // We answered their first offer; the connection's "stable" is still on its way when a
        // screen track makes us offer.
        assert_eq!(
            n.on_remote_offer(),
            OfferDecision::Accept {
                rollback_first: false
            }
        );
        n.answered();
        n.begin_offer();
        n.offer_sent(true);
        n.set_stable(true);
        assert!(!n.is_stable(), "our offer is still out");
        assert!(
            n.on_remote_answer(),
            "its answer is applied, not dropped as stale"
        );
        assert!(n.is_stable());
        // The "have-local-offer" report arriving late does not block the next offer for good:
        // the "stable" after the answer follows it.
        n.set_stable(false);
        n.set_stable(true);
        assert!(n.can_offer());
    }

    #[test]
    fn failed_offer_creation_leaves_state_stable() {
        let mut n = Negotiation::new(true);
        n.begin_offer();
        n.offer_sent(false);
        assert!(n.is_stable());
        assert_eq!(
            n.on_remote_offer(),
            OfferDecision::Accept {
                rollback_first: false
            }
        );
    }
}
