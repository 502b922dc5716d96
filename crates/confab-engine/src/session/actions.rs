//! What the call's state machine ([`super::call_core::CallCore`]) asks the session loop to do
//! ([`Action`]), and what it tells the stats collector about a peer ([`PeerView`]).
//!
//! Contract: actions are carried out in the order given; those that do something asynchronous
//! on a peer connection name the `CallCore` method that takes their result, and the loop calls
//! it before carrying out anything else, so no other input interleaves.

use signaling_client::{ParticipantId, Signal};

use super::call_core::Pending;
use crate::api::{EngineEvent, LinkState, VideoRole};
use crate::data_message::DataMessage;

/// What to do once a requested peer connection exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AfterCreate {
    /// We are the newcomer (or the server forgot us): offer.
    Offer,
    /// The remote offered first: answer this SDP.
    Answer(String),
}

/// Something for the session loop to carry out.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Tell the UI.
    Emit(EngineEvent),
    /// Relay a signal through the signaling server.
    Signal {
        /// To whom.
        to: ParticipantId,
        /// What.
        signal: Signal,
    },
    /// Create the peer connection, decoder and jitter buffer for `id`; then report
    /// [`super::call_core::CallCore::peer_ready`] (or nothing, after emitting the failure, if it cannot).
    CreatePeer {
        /// Who.
        id: ParticipantId,
        /// Whether we are the polite side of the pair.
        polite: bool,
        /// What to do once it exists.
        then: AfterCreate,
    },
    /// Create an offer (an ICE-restart offer when `ice_restart`); report
    /// [`super::call_core::CallCore::offer_created`].
    CreateOffer {
        /// To whom.
        id: ParticipantId,
        /// Restart ICE with it.
        ice_restart: bool,
    },
    /// Apply a remote offer and create the answer; report [`super::call_core::CallCore::offer_accepted`].
    AcceptOffer {
        /// From whom.
        id: ParticipantId,
        /// The offer.
        sdp: String,
        /// Roll back our own pending offer first (we are polite and offers crossed).
        rollback_first: bool,
    },
    /// Apply a remote answer.
    ApplyAnswer {
        /// From whom.
        id: ParticipantId,
        /// The answer.
        sdp: String,
    },
    /// Add a remote ICE candidate; `quiet` when it belongs to an offer we ignored (a refusal is
    /// then expected and not logged).
    AddCandidate {
        /// From whom.
        id: ParticipantId,
        /// `candidate:...` attribute line.
        candidate: String,
        /// The media section it belongs to.
        sdp_mid: Option<String>,
        /// That section's index.
        sdp_mline_index: Option<u16>,
        /// The ICE generation (ufrag) it belongs to.
        username_fragment: Option<String>,
        /// Do not log a refusal.
        quiet: bool,
    },
    /// Close the connection, decoder and jitter buffer of `id` (joins the decoder: no frame of
    /// it is delivered afterwards).
    ClosePeer {
        /// Who.
        id: ParticipantId,
    },
    /// The connection to `id` is up: start sending it our media.
    StartSending {
        /// To whom.
        id: ParticipantId,
    },
    /// Compute the verification code from both fingerprints and emit it; report
    /// [`super::call_core::CallCore::verification_shown`].
    ShowVerificationCode {
        /// For which connection.
        id: ParticipantId,
    },
    /// Send a data-channel message to each of `to`, best effort (media state: it is re-sent
    /// periodically anyway).
    SendData {
        /// Recipients.
        to: Vec<ParticipantId>,
        /// The message.
        message: DataMessage,
    },
    /// Hand these chat messages, in order, to the chat channel of `id`; if the link refuses
    /// one, report it and everything after it to
    /// [`super::call_core::CallCore::chat_not_sent`].
    SendChat {
        /// To whom.
        id: ParticipantId,
        /// The messages, oldest first.
        messages: Vec<Pending>,
    },
    /// Ask `id` for a keyframe of its camera or its screen (PLI).
    SendPli {
        /// Whom.
        id: ParticipantId,
        /// Which of its pictures.
        role: VideoRole,
    },
    /// A remote asked for a keyframe of our video.
    RequestLocalKeyframe,
    /// A remote asked for a keyframe of our shared screen.
    RequestScreenKeyframe,
    /// Add our screen track (msid stream `stream`) to the connection to `id`; an offer follows
    /// from the core.
    AddScreenTrack {
        /// Which connection.
        id: ParticipantId,
        /// The screen's msid stream id.
        stream: String,
    },
    /// Remove our screen track from the connection to `id`; an offer follows from the core.
    RemoveScreenTrack {
        /// Which connection.
        id: ParticipantId,
    },
    /// Tell the connection to `id` which msid stream its remote announced as its screen.
    SetRemoteScreen {
        /// Which connection.
        id: ParticipantId,
        /// The announced stream id (`None`: it does not share).
        stream: Option<String>,
    },
    /// Stop capturing and encoding our screen.
    StopScreenSender,
    /// Leave the signaling server and stop our senders.
    CloseSignaling,
}

/// What the stats collector needs to know about one peer from the core.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PeerView {
    /// Display name.
    pub(crate) name: String,
    /// Link state.
    pub(crate) state: LinkState,
    /// PLIs we sent it.
    pub(crate) plis_sent: u64,
}
