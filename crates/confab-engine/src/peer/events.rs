//! The public value types of the peer module: what a link is built from ([`PeerSettings`],
//! [`BitrateRange`]), what it reports ([`PeerEvent`], [`ConnectionState`], [`PeerStats`]) and how
//! it fails ([`PeerError`]), plus the chat channel's fixed parameters.
//!
//! Contract: these are plain data. Nothing here touches the connection; the variants of
//! [`PeerEvent`] are control events only (received media goes to the link's
//! [`MediaInlet`](super::MediaInlet), never through the event channel).

use std::net::SocketAddr;

#[cfg(doc)]
use super::PeerLink;

/// Label of the chat data channel.
pub const CHAT_LABEL: &str = "chat";
/// SCTP stream id of the out-of-band negotiated chat channel.
pub const CHAT_STREAM_ID: u16 = 0;
/// Largest chat message accepted by [`PeerLink::send_chat`] (the library's default SCTP limit).
pub const MAX_CHAT_BYTES: usize = 65_536;
/// Send/receive bitrate bounds for congestion control, in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitrateRange {
    /// The estimate never goes below this.
    pub min_bps: u32,
    /// The estimate before any feedback has arrived.
    pub start_bps: u32,
    /// The estimate never goes above this.
    pub max_bps: u32,
}

impl Default for BitrateRange {
    fn default() -> Self {
        Self {
            min_bps: 100_000,
            start_bps: 300_000,
            max_bps: 2_500_000,
        }
    }
}

/// Everything needed to build one peer connection.
#[derive(Debug, Clone)]
pub struct PeerSettings {
    /// STUN/TURN servers from the signalling server's welcome. Only `stun:` and UDP `turn:` are
    /// used by the library; `turn:`/`turns:` URLs without username and credential are skipped.
    pub ice_servers: Vec<signaling_client::IceServer>,
    /// Use only TURN relay candidates (`RTCIceTransportPolicy::Relay`).
    pub relay_only: bool,
    /// Local UDP addresses to bind, e.g. `127.0.0.1:0`; each becomes a host candidate. Must be
    /// non-empty. Prefer explicit interface addresses over `0.0.0.0`, which skips loopback.
    pub bind_addrs: Vec<SocketAddr>,
    /// Congestion-control bounds (GCC initial/min/max).
    pub video_bitrate: BitrateRange,
}

/// Connection state, as `RTCPeerConnectionState` without the `Unspecified` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// Nothing has happened yet.
    New,
    /// ICE or DTLS is in progress.
    Connecting,
    /// ICE and DTLS are up: media and chat can flow.
    Connected,
    /// Connectivity was lost; it may recover on its own or need an ICE restart.
    Disconnected,
    /// Connectivity failed; only an ICE restart (or a new link) can recover.
    Failed,
    /// The link was closed.
    Closed,
}

/// What a [`PeerLink`] reports, on the channel given to [`PeerLink::new`].
#[derive(Debug)]
pub enum PeerEvent {
    /// A local ICE candidate to signal to the remote peer.
    LocalCandidate {
        /// `candidate:...` attribute line.
        candidate: String,
        /// The mid of our description's first section that is not rejected (all media is
        /// bundled on it).
        sdp_mid: Option<String>,
        /// That section's index (0 unless the first section was rejected).
        sdp_mline_index: Option<u16>,
        /// Our ICE ufrag at the time, so the remote can discard candidates of old generations.
        username_fragment: Option<String>,
    },
    /// Candidate gathering finished (may repeat after renegotiation or ICE restart); signal an
    /// end-of-candidates if the remote needs one.
    GatheringComplete,
    /// Something changed that needs a new offer/answer exchange. Also fires after
    /// [`PeerLink::new`] for the initial tracks and channel.
    NegotiationNeeded,
    /// The signalling state became stable (`true`) or left stable (`false`).
    SignalingStable(bool),
    /// The connection state changed.
    Connection(ConnectionState),
    /// The chat channel opened; [`PeerLink::send_chat`] works from now on.
    ChatOpen,
    /// The chat channel closed (once, after [`PeerEvent::ChatOpen`]); [`PeerLink::send_chat`]
    /// fails from now on. It does not close across an ICE restart: the SCTP association, and
    /// with it the channel, outlives the ICE transport's restart.
    ChatClosed,
    /// A chat text message from the remote peer.
    Chat(String),
    /// The remote peer asked for a keyframe of our video (PLI or FIR).
    KeyframeRequested,
    /// The remote peer asked for a keyframe of our shared screen.
    ScreenKeyframeRequested,
}

/// A snapshot of connection statistics (see [`PeerLink::stats`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerStats {
    /// Current round-trip time of the selected candidate pair, once measured.
    pub rtt_ms: Option<f64>,
    /// Local candidate type of the selected pair: `host`, `srflx`, `prflx` or `relay`.
    pub candidate_type: Option<String>,
    /// Remote candidate type of the selected pair.
    pub remote_candidate_type: Option<String>,
    /// The local candidates gathered, by kind.
    pub local_candidates: crate::api::LocalCandidates,
    /// Inbound video packets lost (cumulative, per RFC 3550 may go negative with duplicates).
    pub video_packets_lost: i64,
    /// Inbound audio packets lost.
    pub audio_packets_lost: i64,
    /// Inbound video interarrival jitter.
    pub video_jitter_ms: f64,
    /// Inbound audio interarrival jitter.
    pub audio_jitter_ms: f64,
    /// Outbound video payload bytes.
    pub video_bytes_sent: u64,
    /// Inbound video payload bytes.
    pub video_bytes_received: u64,
    /// Outbound audio payload bytes.
    pub audio_bytes_sent: u64,
    /// Inbound audio payload bytes.
    pub audio_bytes_received: u64,
    /// Outbound video RTP packets.
    pub video_packets_sent: u64,
    /// Inbound video RTP packets.
    pub video_packets_received: u64,
    /// NACKs we sent about inbound streams.
    pub nacks_sent: u64,
    /// PLIs we sent about inbound video.
    pub plis_sent: u64,
    /// Inbound video packets that arrived as RTX retransmissions (cumulative).
    pub retransmitted_packets_received: u64,
    /// Video packets we retransmitted on our RTX SSRC after the remote's NACKs (cumulative).
    pub retransmitted_packets_sent: u64,
    /// Bytes of the packets we retransmitted after the remote's NACKs (cumulative).
    pub retransmitted_bytes_sent: u64,
    /// NACKed packets not retransmitted: resent less than a round trip before, or over the
    /// retransmission budget (cumulative).
    pub retransmissions_refused: u64,
    /// RTP packets the pacer refused because their class's queue was full (cumulative).
    pub pacer_refused: u64,
    /// PLI/FIR packets the remote sent about our video.
    pub keyframe_requests_received: u64,
    /// Current send-side bandwidth estimate.
    pub bandwidth_estimate_bps: u64,
    /// Fraction (0..=1) of our audio the remote reported lost in its latest RTCP report block
    /// (`None` before the first); the library leaves this out of its stats report.
    pub audio_fraction_lost_remote: Option<f64>,
}

/// Errors from a [`PeerLink`].
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The peer connection could not be built (bad settings, socket bind failure, ...).
    #[error("peer connection setup failed: {0}")]
    Setup(String),
    /// An offer/answer step failed or was not valid in the current signalling state.
    #[error("negotiation failed: {0}")]
    Negotiation(String),
    /// The remote candidate was rejected.
    #[error("remote ICE candidate rejected: {0}")]
    Candidate(String),
    /// Handing media to the connection failed.
    #[error("sending media failed: {0}")]
    Media(String),
    /// The chat channel is not open (yet, or any more).
    #[error("chat channel is not open")]
    ChatNotOpen,
    /// The chat message could not be sent.
    #[error("sending chat failed: {0}")]
    Chat(String),
    /// The link has been closed.
    #[error("peer connection is closed")]
    Closed,
}
