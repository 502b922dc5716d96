//! One WebRTC peer connection to one remote participant: the [`PeerLink`].
//!
//! A `PeerLink` wraps a single webrtc-rs 0.21.1 `PeerConnection` with a fixed shape: one
//! sendrecv Opus audio track, one sendrecv H.264 video track and one reliable, ordered chat data
//! channel, out-of-band negotiated as `"chat"` with stream id 0 (both sides create it; a browser
//! peer does the same with `{negotiated: true, id: 0}`). Audio comes first in our offers, so it
//! is the BUNDLE-tagged section: a peer that rejects our video (no H.264, like Firefox without
//! its OpenH264 plugin) then keeps the transport, and audio and chat still connect.
//!
//! # A peer without H.264
//!
//! Answering an offer whose video section lists no H.264, the link removes its video track
//! first, so the answer rejects that section (port 0) and accepts audio and chat; an answer to
//! our offer may reject our video the same way. Either way [`PeerLink::video_negotiated`] turns
//! false and video writes are dropped; the track is not re-added later (see `sections`). Everything the connection reports
//! arrives as a [`PeerEvent`] on the unbounded channel given to [`PeerLink::new`]; the
//! connection's own callbacks run on its driver task and only forward into that channel.
//!
//! # What the caller drives
//!
//! - **Signalling.** The link does not decide who offers; the caller runs perfect negotiation.
//!   [`PeerLink::create_offer`], [`PeerLink::accept_offer`] (optionally rolling back our own
//!   offer first: the polite side of a collision) and [`PeerLink::accept_answer`] each complete
//!   one step and return the SDP to send. [`PeerLink::is_stable`] and
//!   [`PeerEvent::SignalingStable`] track the signalling state from these calls (the library has
//!   no getter, and its callback lags), so they are exact between calls.
//! - **Trickle ICE.** Local candidates arrive as [`PeerEvent::LocalCandidate`], tagged with the
//!   first media `mid`, m-line index 0 and our current ICE ufrag. Remote candidates go to
//!   [`PeerLink::add_remote_candidate`]; they are buffered until a remote description exists, and
//!   candidates whose ufrag names another ICE generation than the remote description's are held
//!   back until a matching description arrives (so stale ones from before an ICE restart never
//!   reach the agent).
//! - **Media.** [`PeerLink::write_video`] takes one Annex-B access unit per call and
//!   [`PeerLink::write_audio`] one Opus packet; both are dropped (returning `Ok`) until the
//!   connection is [`ConnectionState::Connected`]. Incoming video is reassembled into access
//!   units and incoming audio is handed over packet by packet, both straight from the track's
//!   poll task into the [`MediaInlet`] given to [`PeerLink::new`] (never on the event channel).
//!
//! # Timing properties worth knowing
//!
//! - A received video access unit is released when the first packet of the *next* one arrives
//!   (the sample builder needs it to know the frame is complete), so video is delayed by one
//!   frame interval; the last frame before a pause is held until sending resumes. A missing
//!   packet holds frames back for up to 300 ms (NACK recovery) before the incomplete frame is
//!   dropped and the next one flagged `lost_before`.
//! - The bandwidth estimate ([`PeerLink::bandwidth_estimate_bps`]) starts at
//!   [`BitrateRange::start_bps`] and moves once media flows (TWCC feedback); a pacer sends at
//!   that rate, so the video encoder should follow it.
//!
//! # Module map
//!
//! | module | owns |
//! |---|---|
//! | `codecs` | the H.264 and Opus registrations (PT 102 / 111, RTCP feedback) |
//! | `bwe` | GCC wrapped to publish its estimate |
//! | `keyframe` | the interceptor that lets inbound PLI/FIR reach the app |
//! | `tasks` | the connection's event handler and the track/channel poll loops |
//! | `stats` | report → [`PeerStats`], working around unfilled library fields |
//! | `sections` | reading the media sections of an offer or answer (codecs, rejection) |
//!
//! # Invariants
//!
//! - The signalling state starts stable without an event; [`PeerEvent::SignalingStable`] is
//!   sent only on changes, from inside the negotiation call that causes them.
//! - Negotiation calls are serialised internally; calling them concurrently from several tasks
//!   is safe but they run one at a time.
//! - After [`PeerLink::close`] returns, no further event is sent and the event channel's sender
//!   is dropped, so the receiver yields `None` once drained. Dropping a `PeerLink` without
//!   `close` closes it in the background (if a tokio runtime is available).
//! - Nothing here panics on remote input: malformed SDP, candidates, RTP or chat text become
//!   errors or are dropped with a log line.

mod assembler;
mod bwe;
mod codecs;
mod inlet;
mod keyframe;
mod sections;
mod stats;
mod tasks;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::data_channel::RTCDataChannelInit;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{PacerBuilder, Registry, Slot};
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCOfferOptions;
use rtc::peer_connection::configuration::interceptor_registry::{
    CongestionFeedback, configure_congestion_control, register_default_interceptors,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info, warn};
use webrtc::data_channel::DataChannel;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, RTCConfigurationBuilder, RTCIceCandidateInit,
    RTCIceServer, RTCIceTransportPolicy, RTCSessionDescription, StatsSelector,
};
use webrtc::rtp_transceiver::RtpSender;

pub use codecs::{H264_PAYLOAD_TYPE, OPUS_PAYLOAD_TYPE};
pub use inlet::{AudioInlet, Discard, MediaInlet, ReceivedFrame, VideoInlet};

/// Label of the chat data channel.
pub const CHAT_LABEL: &str = "chat";
/// SCTP stream id of the out-of-band negotiated chat channel.
pub const CHAT_STREAM_ID: u16 = 0;
/// Largest chat message accepted by [`PeerLink::send_chat`] (the library's default SCTP limit).
pub const MAX_CHAT_BYTES: usize = 65_536;
/// Remote candidates held while no (matching) remote description exists; the oldest is dropped
/// beyond this, so a misbehaving peer cannot grow memory without bound.
const MAX_PENDING_CANDIDATES: usize = 256;

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
    /// A chat text message from the remote peer.
    Chat(String),
    /// The remote peer asked for a keyframe of our video (PLI or FIR).
    KeyframeRequested,
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
    /// PLI/FIR packets the remote sent about our video.
    pub keyframe_requests_received: u64,
    /// Current send-side bandwidth estimate.
    pub bandwidth_estimate_bps: u64,
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

fn library_error(context: &str, e: &webrtc::error::Error) -> String {
    format!("{context}: {e}")
}

/// Takes a std mutex even if a panicking thread poisoned it: the guarded data stays consistent
/// because every critical section here is a single assignment or take.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The event channel; `None` once closed so that nothing is sent after [`PeerLink::close`].
struct EventSink(Mutex<Option<UnboundedSender<PeerEvent>>>);

impl EventSink {
    fn send(&self, event: PeerEvent) {
        if let Some(tx) = lock(&self.0).as_ref() {
            // A dropped receiver means the owner stopped listening; nothing to do about it.
            let _ = tx.send(event);
        }
    }

    /// Sends `last` (if any) and closes, atomically with respect to other senders.
    fn close_with(&self, last: Option<PeerEvent>) {
        let mut tx = lock(&self.0);
        if let (Some(tx), Some(last)) = (tx.as_ref(), last) {
            let _ = tx.send(last);
        }
        tx.take();
    }
}

/// The remote video track, for sending PLI.
struct RemoteVideo {
    track: Arc<dyn TrackRemote>,
    ssrc: u32,
}

/// Values from our current local description, used to tag local candidates.
#[derive(Default, Clone)]
struct LocalIce {
    first_mid: Option<String>,
    first_index: u16,
    ufrag: Option<String>,
}

/// State shared with the connection's event handler and the poll loops. It must never hold the
/// `PeerConnection`, or the loops would keep it alive after the link is dropped.
struct Shared {
    sink: EventSink,
    inlet: MediaInlet,
    connected: AtomicBool,
    closed: AtomicBool,
    stable: AtomicBool,
    chat_open: AtomicBool,
    keyframe_requests: AtomicU64,
    last_state: Mutex<Option<ConnectionState>>,
    remote_video: Mutex<Option<RemoteVideo>>,
    local_ice: Mutex<LocalIce>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Shared {
    fn emit(&self, event: PeerEvent) {
        self.sink.send(event);
    }

    fn set_connection_state(&self, state: ConnectionState) {
        self.connected
            .store(state == ConnectionState::Connected, Ordering::Release);
        let mut last = lock(&self.last_state);
        if *last != Some(state) {
            *last = Some(state);
            drop(last);
            self.emit(PeerEvent::Connection(state));
        }
    }

    fn set_stable(&self, stable: bool) {
        if self.stable.swap(stable, Ordering::AcqRel) != stable {
            self.emit(PeerEvent::SignalingStable(stable));
        }
    }

    fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(fut);
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }
}

/// Our signalling state, as far as our own calls have moved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignalingState {
    Stable,
    HaveLocalOffer,
    HaveRemoteOffer,
}

struct Negotiation {
    state: SignalingState,
    has_remote_description: bool,
    remote_ufrag: Option<String>,
    pending_candidates: VecDeque<RTCIceCandidateInit>,
}

/// One local track with its sender.
struct LocalMedia {
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    ssrc: u32,
    mime_type: String,
    /// Negotiated payload type, [`NO_PAYLOAD_TYPE`] until read after a negotiation.
    payload_type: AtomicU16,
    /// The last negotiation left this kind flowing (true before the first one).
    live: AtomicBool,
    /// The track was removed to answer an offer without a codec of ours; never re-added.
    removed: AtomicBool,
}

const NO_PAYLOAD_TYPE: u16 = u16::MAX;

impl LocalMedia {
    async fn new(
        pc: &Arc<dyn PeerConnection>,
        stream_id: &str,
        kind: RtpCodecKind,
        id: &str,
        codec: RTCRtpCodec,
        ssrc: u32,
    ) -> Result<Self, PeerError> {
        let mime_type = codec.mime_type.clone();
        // The driver routes RTCP to tracks by track id across local *and* remote tracks, so a
        // fixed id like "video" on both ends would deliver the remote's PLI to our receiver.
        let id = format!("{id}-{ssrc:08x}");
        let track = Arc::new(
            TrackLocalStaticSample::new(
                Instant::now(),
                MediaStreamTrack::new(
                    stream_id.to_owned(),
                    id.clone(),
                    id,
                    kind,
                    vec![RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters {
                            ssrc: Some(ssrc),
                            ..Default::default()
                        },
                        codec,
                        ..Default::default()
                    }],
                ),
            )
            .map_err(|e| PeerError::Setup(library_error("creating local track", &e)))?,
        );
        let sender = pc
            .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
            .await
            .map_err(|e| PeerError::Setup(library_error("adding local track", &e)))?;
        Ok(Self {
            track,
            sender,
            ssrc,
            mime_type,
            payload_type: AtomicU16::new(NO_PAYLOAD_TYPE),
            live: AtomicBool::new(true),
            removed: AtomicBool::new(false),
        })
    }

    /// `"audio"` or `"video"`, as on the `m=` line.
    fn kind(&self) -> &'static str {
        if self.mime_type.to_ascii_lowercase().starts_with("video/") {
            "video"
        } else {
            "audio"
        }
    }

    /// The codec's encoding name as in `a=rtpmap` (`H264`, `opus`).
    fn encoding_name(&self) -> &str {
        self.mime_type
            .split_once('/')
            .map_or(self.mime_type.as_str(), |(_, name)| name)
    }

    /// The negotiated payload type, read from the sender once per negotiation.
    async fn payload_type(&self) -> Result<Option<u8>, PeerError> {
        let cached = self.payload_type.load(Ordering::Acquire);
        if let Ok(pt) = u8::try_from(cached) {
            return Ok(Some(pt));
        }
        let params = self
            .sender
            .get_parameters()
            .await
            .map_err(|e| PeerError::Media(library_error("reading sender parameters", &e)))?;
        let pt = params
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(&self.mime_type))
            .map(|c| c.payload_type);
        if let Some(pt) = pt {
            self.payload_type.store(u16::from(pt), Ordering::Release);
        }
        Ok(pt)
    }

    fn forget_payload_type(&self) {
        self.payload_type.store(NO_PAYLOAD_TYPE, Ordering::Release);
    }

    async fn write(&self, data: Bytes, duration: Duration) -> Result<(), PeerError> {
        if !self.live.load(Ordering::Acquire) {
            return Ok(());
        }
        let Some(pt) = self.payload_type().await? else {
            debug!(mime = %self.mime_type, "no negotiated payload type; dropping sample");
            return Ok(());
        };
        let sample = Sample {
            data,
            duration,
            ..Sample::new(Instant::now())
        };
        // Boxed: the library's write future is several KB, which would bloat every caller's.
        Box::pin(
            self.track
                .sample_writer(self.ssrc, pt)
                .write_sample(&sample),
        )
        .await
        .map_err(|e| PeerError::Media(library_error("writing sample", &e)))
    }
}

/// A WebRTC connection to one remote participant. See the module docs for the contract.
pub struct PeerLink {
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    negotiation: tokio::sync::Mutex<Negotiation>,
    video: LocalMedia,
    audio: LocalMedia,
    chat: Arc<dyn DataChannel>,
    bwe: bwe::EstimateCell,
}

impl std::fmt::Debug for PeerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerLink")
            .field("video_ssrc", &self.video.ssrc)
            .field("audio_ssrc", &self.audio.ssrc)
            .field("connected", &self.shared.connected.load(Ordering::Relaxed))
            .field("closed", &self.shared.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn ice_servers(settings: &PeerSettings) -> Result<Vec<RTCIceServer>, PeerError> {
    let mut out = Vec::new();
    let mut relay_urls = 0usize;
    for server in &settings.ice_servers {
        let username = server.username.clone().unwrap_or_default();
        let credential = server.credential.clone().unwrap_or_default();
        let has_credentials = !username.is_empty() && !credential.is_empty();
        let urls: Vec<String> = server
            .urls
            .iter()
            .filter(|url| {
                let lower = url.to_ascii_lowercase();
                let is_turn = lower.starts_with("turn:") || lower.starts_with("turns:");
                if is_turn && !has_credentials {
                    // The library rejects the whole configuration for such a URL.
                    warn!("skipping TURN server without credentials");
                    return false;
                }
                lower.starts_with("stun:") || is_turn
            })
            .cloned()
            .collect();
        relay_urls += urls
            .iter()
            .filter(|u| u.to_ascii_lowercase().starts_with("turn:"))
            .count();
        if !urls.is_empty() {
            out.push(RTCIceServer {
                urls,
                username,
                credential,
            });
        }
    }
    if settings.relay_only && relay_urls == 0 {
        return Err(PeerError::Setup(
            "relay_only needs at least one turn: server with credentials".to_owned(),
        ));
    }
    Ok(out)
}

/// A random non-zero SSRC, distinct from `other`.
fn random_ssrc(other: u32) -> u32 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        // RandomState is seeded from the OS per process and varies per instance.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(t.as_nanos());
        }
        let bytes = h.finish().to_le_bytes();
        let v = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if v != 0 && v != other {
            return v;
        }
    }
}

/// The value of the first `prefix` line (e.g. `a=mid:`) in `sdp`, trimmed.
fn sdp_value(sdp: &str, prefix: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .map(|v| v.trim().to_owned())
}

/// Time between ICE connectivity checks.
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// Checks per candidate pair before it counts as failed (28 × 50 ms = 1.4 s).
const ICE_MAX_BINDING_REQUESTS: u16 = 28;

impl PeerLink {
    /// Builds the connection, adds the video and audio tracks and the chat channel, and starts
    /// the loops that turn their traffic into [`PeerEvent`]s. Must run inside a tokio runtime.
    ///
    /// Expect [`PeerEvent::NegotiationNeeded`] soon after; the caller decides who offers.
    ///
    /// # Errors
    /// [`PeerError::Setup`] for empty `bind_addrs`, unusable ICE servers, or a failure to
    /// bind the sockets or build the connection.
    pub async fn new(
        settings: &PeerSettings,
        events: UnboundedSender<PeerEvent>,
        inlet: MediaInlet,
    ) -> Result<Self, PeerError> {
        if settings.bind_addrs.is_empty() {
            return Err(PeerError::Setup("bind_addrs is empty".to_owned()));
        }
        let range = settings.video_bitrate;
        if range.min_bps > range.start_bps || range.start_bps > range.max_bps {
            return Err(PeerError::Setup(format!(
                "bitrate range must satisfy min <= start <= max, got {range:?}"
            )));
        }
        let setup = |context: &str| {
            let context = context.to_owned();
            move |e: webrtc::error::Error| PeerError::Setup(library_error(&context, &e))
        };

        let mut engine = codecs::media_engine().map_err(setup("registering codecs"))?;
        let registry = register_default_interceptors(Registry::new(), &mut engine)
            .map_err(setup("registering interceptors"))?;
        let estimate = bwe::EstimateCell::new(f64::from(range.start_bps));
        let registry = configure_congestion_control(
            registry,
            bwe::PublishingGcc::new(
                range.start_bps,
                range.min_bps,
                range.max_bps,
                estimate.clone(),
            ),
            CongestionFeedback::Twcc,
            &mut engine,
        )
        .map_err(setup("configuring congestion control"))?;
        // The pacer's own default is a fixed 1 Mbit/s until congestion control reports a
        // *change*; start it where the estimator starts (with the pacing factor) instead.
        let registry = registry
            .with(
                Slot::Pacer,
                PacerBuilder::new()
                    .with_target_bitrate(f64::from(range.start_bps) * bwe::PACING_FACTOR)
                    .build(),
            )
            .with(
                keyframe::SLOT,
                keyframe::KeyframeRequestForwarder::default(),
            );

        let mut config = RTCConfigurationBuilder::new().with_ice_servers(ice_servers(settings)?);
        if settings.relay_only {
            config = config.with_ice_transport_policy(RTCIceTransportPolicy::Relay);
        }
        // mDNS needs a multicast-capable interface (ENODEV on loopback-only hosts), and we never
        // want to hide or resolve .local candidates in a call app that signals real addresses.
        //
        // ICE checks every 50 ms (libwebrtc's pace) instead of the crate's 200 ms: checks start
        // before trickled candidates arrive, and each idle tick was a fifth of a second of call
        // setup. 28 attempts keep the crate's 1.4 s per-pair budget.
        let setting_engine = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_MAX_BINDING_REQUESTS))
            // On an ICE restart, gather (and so trickle) candidates afresh. Without this the
            // crate keeps its old local candidates and announces none for the new ufrag, and the
            // restarted ICE has nothing to check: the call never recovers (seen in
            // `lost_connectivity_triggers_an_ice_restart_and_recovers`).
            .with_discard_local_candidates_during_ice_restart(true)
            .build();

        let shared = Arc::new(Shared {
            sink: EventSink(Mutex::new(Some(events))),
            inlet,
            connected: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            stable: AtomicBool::new(true),
            chat_open: AtomicBool::new(false),
            keyframe_requests: AtomicU64::new(0),
            last_state: Mutex::new(None),
            remote_video: Mutex::new(None),
            local_ice: Mutex::new(LocalIce::default()),
            tasks: Mutex::new(Vec::new()),
        });

        let builder = PeerConnectionBuilder::new()
            .with_configuration(config.build())
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .with_setting_engine(setting_engine)
            .with_handler(Arc::new(tasks::Handler::new(Arc::clone(&shared))))
            .with_udp_addrs(settings.bind_addrs.clone());
        // Boxed: the build future is ~20 KB.
        let pc = Box::pin(builder.build())
            .await
            .map_err(setup("building peer connection"))?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);

        match Self::attach(&pc, &shared, estimate).await {
            Ok(link) => Ok(link),
            Err(e) => {
                shared.sink.close_with(None);
                if let Err(close_err) = pc.close().await {
                    debug!(error = %close_err, "closing half-built peer connection");
                }
                Err(e)
            }
        }
    }

    async fn attach(
        pc: &Arc<dyn PeerConnection>,
        shared: &Arc<Shared>,
        bwe: bwe::EstimateCell,
    ) -> Result<Self, PeerError> {
        let video_ssrc = random_ssrc(0);
        let audio_ssrc = random_ssrc(video_ssrc);
        // One stream for both tracks, so a browser treats them as one (lip-synced) stream.
        let stream_id = format!("confab-{video_ssrc:08x}");
        // Audio first: the first section of our offers is the BUNDLE tag, and a peer that
        // rejects the tagged section (Firefox rejecting H.264 video) drops the whole transport.
        let audio = LocalMedia::new(
            pc,
            &stream_id,
            RtpCodecKind::Audio,
            "audio",
            codecs::opus(),
            audio_ssrc,
        )
        .await?;
        let video = LocalMedia::new(
            pc,
            &stream_id,
            RtpCodecKind::Video,
            "video",
            codecs::h264(),
            video_ssrc,
        )
        .await?;
        let chat = pc
            .create_data_channel(
                CHAT_LABEL,
                Some(RTCDataChannelInit {
                    ordered: true,
                    max_packet_life_time: None,
                    max_retransmits: None,
                    protocol: String::new(),
                    negotiated: Some(CHAT_STREAM_ID),
                }),
            )
            .await
            .map_err(|e| PeerError::Setup(library_error("creating chat channel", &e)))?;

        // Tracks are bound at add_track, so their RTCP queues exist now and must be drained.
        shared.spawn(tasks::local_rtcp_loop(
            Arc::clone(shared),
            Arc::clone(&video.track),
            true,
        ));
        shared.spawn(tasks::local_rtcp_loop(
            Arc::clone(shared),
            Arc::clone(&audio.track),
            false,
        ));
        shared.spawn(tasks::chat_loop(Arc::clone(shared), Arc::clone(&chat)));

        Ok(Self {
            pc: Arc::clone(pc),
            shared: Arc::clone(shared),
            negotiation: tokio::sync::Mutex::new(Negotiation {
                state: SignalingState::Stable,
                has_remote_description: false,
                remote_ufrag: None,
                pending_candidates: VecDeque::new(),
            }),
            video,
            audio,
            chat,
            bwe,
        })
    }

    fn check_open(&self) -> Result<(), PeerError> {
        if self.shared.closed.load(Ordering::Acquire) {
            Err(PeerError::Closed)
        } else {
            Ok(())
        }
    }

    /// Records mid and ufrag of a description we are about to apply locally, so candidates
    /// gathered for it are tagged correctly.
    fn note_local_description(&self, sdp: &str) {
        let (first_mid, first_index) = sections::MediaSections::parse(sdp)
            .first_live()
            .unwrap_or((None, 0));
        let mut ice = lock(&self.shared.local_ice);
        ice.first_mid = first_mid;
        ice.first_index = first_index;
        ice.ufrag = sdp_value(sdp, "a=ice-ufrag:");
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
        neg.remote_ufrag = sdp_value(sdp, "a=ice-ufrag:");
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
        neg.remote_ufrag = sdp_value(sdp, "a=ice-ufrag:");
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
    }

    /// Whether the last negotiation left video flowing: false when the remote peer shares no
    /// video codec with us (it rejected our H.264, or offered none), so neither side sends
    /// video. True before the first negotiation.
    pub fn video_negotiated(&self) -> bool {
        self.video.live.load(Ordering::Acquire)
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

    /// True while the signalling state is stable (no offer outstanding in either direction).
    pub fn is_stable(&self) -> bool {
        self.shared.stable.load(Ordering::Acquire)
    }

    /// True while the connection state is [`ConnectionState::Connected`].
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// Sends one H.264 access unit (Annex-B; SPS and PPS in front of IDR slices) lasting
    /// `duration` (the frame interval, which advances the RTP timestamp). Dropped while not
    /// connected. Waits when the connection's send queue is full.
    ///
    /// # Errors
    /// [`PeerError::Media`] if the library refuses the sample; [`PeerError::Closed`] after close.
    pub async fn write_video(
        &self,
        access_unit: Bytes,
        duration: Duration,
    ) -> Result<(), PeerError> {
        self.check_open()?;
        if !self.is_connected() {
            return Ok(());
        }
        self.video.write(access_unit, duration).await
    }

    /// Sends one Opus packet lasting `duration` (typically 20 ms). Dropped while not connected.
    ///
    /// # Errors
    /// As [`PeerLink::write_video`].
    pub async fn write_audio(
        &self,
        opus_packet: Bytes,
        duration: Duration,
    ) -> Result<(), PeerError> {
        self.check_open()?;
        if !self.is_connected() {
            return Ok(());
        }
        self.audio.write(opus_packet, duration).await
    }

    /// Sends a chat text message.
    ///
    /// # Errors
    /// [`PeerError::ChatNotOpen`] before [`PeerEvent::ChatOpen`] or after the channel closed;
    /// [`PeerError::Chat`] if the message exceeds [`MAX_CHAT_BYTES`] or sending fails;
    /// [`PeerError::Closed`] after close.
    pub async fn send_chat(&self, text: &str) -> Result<(), PeerError> {
        self.check_open()?;
        if !self.shared.chat_open.load(Ordering::Acquire) {
            return Err(PeerError::ChatNotOpen);
        }
        if text.len() > MAX_CHAT_BYTES {
            return Err(PeerError::Chat(format!(
                "message of {} bytes exceeds the {MAX_CHAT_BYTES}-byte limit",
                text.len()
            )));
        }
        self.chat
            .send_text(text)
            .await
            .map_err(|e| PeerError::Chat(e.to_string()))
    }

    /// Asks the remote peer for a video keyframe (RTCP PLI). Does nothing until the remote
    /// video track has delivered its first packet.
    ///
    /// # Errors
    /// [`PeerError::Media`] if the RTCP cannot be queued; [`PeerError::Closed`] after close.
    pub async fn request_keyframe(&self) -> Result<(), PeerError> {
        self.check_open()?;
        let target = lock(&self.shared.remote_video)
            .as_ref()
            .map(|v| (Arc::clone(&v.track), v.ssrc));
        let Some((track, media_ssrc)) = target else {
            return Ok(());
        };
        track
            .write_rtcp(vec![Box::new(PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            })])
            .await
            .map_err(|e| PeerError::Media(library_error("sending PLI", &e)))
    }

    /// The current send-side bandwidth estimate (GCC over TWCC), in bits per second.
    pub fn bandwidth_estimate_bps(&self) -> u64 {
        self.bwe.bps()
    }

    /// A statistics snapshot (see [`PeerStats`] for which fields mean what).
    pub async fn stats(&self) -> PeerStats {
        let report = self.pc.get_stats(Instant::now(), StatsSelector::None).await;
        stats::from_report(
            &report,
            self.shared.keyframe_requests.load(Ordering::Relaxed),
            self.bwe.bps(),
        )
    }

    /// `(local, remote)` DTLS certificate fingerprints as in the SDP, e.g.
    /// `"sha-256 AB:CD:..."`, once both descriptions exist. DTLS verifies the remote certificate
    /// against the remote one, so once connected both are authenticated by the handshake.
    pub async fn fingerprints(&self) -> Option<(String, String)> {
        let local = match self.pc.current_local_description().await {
            Some(d) => Some(d),
            None => self.pc.local_description().await,
        }?;
        let remote = match self.pc.current_remote_description().await {
            Some(d) => Some(d),
            None => self.pc.remote_description().await,
        }?;
        Some((
            sdp_value(&local.sdp, "a=fingerprint:")?,
            sdp_value(&remote.sdp, "a=fingerprint:")?,
        ))
    }

    /// Closes the connection and ends all loops. Idempotent. Emits
    /// `Connection(Closed)` (if not already reported) as the last event, then drops the event
    /// sender.
    pub async fn close(&self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.chat_open.store(false, Ordering::Release);
        if let Err(e) = self.pc.close().await {
            debug!(error = %e, "closing peer connection");
        }
        for task in lock(&self.shared.tasks).drain(..) {
            task.abort();
        }
        lock(&self.shared.remote_video).take();
        self.shared.stable.store(false, Ordering::Release);
        self.shared.connected.store(false, Ordering::Release);
        let already_reported = lock(&self.shared.last_state).replace(ConnectionState::Closed)
            == Some(ConnectionState::Closed);
        // Closed goes out last: nothing can be sent between it and the channel's end.
        self.shared.sink.close_with(
            (!already_reported).then_some(PeerEvent::Connection(ConnectionState::Closed)),
        );
    }
}

impl Drop for PeerLink {
    fn drop(&mut self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.sink.close_with(None);
        for task in lock(&self.shared.tasks).drain(..) {
            task.abort();
        }
        lock(&self.shared.remote_video).take();
        // Without close() the driver task would keep the sockets open.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let pc = Arc::clone(&self.pc);
            runtime.spawn(async move {
                if let Err(e) = pc.close().await {
                    debug!(error = %e, "closing dropped peer connection");
                }
            });
        }
    }
}
