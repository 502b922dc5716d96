//! The engine's public vocabulary: its configuration, the commands it takes and the events it
//! emits. The UI (or the loopback harness, or `confab join`) talks to the engine only through
//! these types.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use signaling_client::{IceServer, ParticipantId};

pub use super::media::AudioSink;
use super::media::audio_processing::ProcessingSettings;
use super::media::{AudioFrame, CaptureTime, I420Frame};
use super::reasons::{EndReason, Problem};

/// Wakes the UI when something arrived (a frame, an event). Never an egui type.
pub type Repaint = Arc<dyn Fn() + Send + Sync>;

/// Where outgoing video comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoInput {
    /// No camera: receive-only video.
    None,
    /// The moving test pattern with embedded frame number and capture time.
    Synthetic,
    /// A looping Y4M file.
    Y4mFile(PathBuf),
    /// A camera, by the id [`crate::devices::enumerate`] lists.
    Camera(String),
}

/// Where a screen share comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScreenInput {
    /// A synthetic desktop: text, fine lines, a moving cursor and the frame marker
    /// ([`crate::media::synthetic_screen::SyntheticScreen`]); what `confab loopback
    /// --screen-share` measures with.
    Synthetic,
    /// An X11 screen: `display` (`None`: `$DISPLAY`) and a monitor by index in
    /// `devices::screen::list_monitors`'s order (`None`: the primary monitor). Linux only;
    /// elsewhere sharing it fails with the reason.
    X11 {
        /// The X display, e.g. `":0"`.
        display: Option<String>,
        /// The monitor's index (`None`: the primary one).
        monitor: Option<usize>,
    },
    /// One window of an X11 display, by its X id as `devices::screen::list_windows` lists it;
    /// followed as it moves and changes size, its last picture kept while it is minimised, the
    /// share ended when it is closed. Linux only.
    X11Window {
        /// The X display, e.g. `":0"`.
        display: Option<String>,
        /// The window's X id.
        window: u32,
    },
    /// Whatever the user picks in the desktop's own screen-sharing dialog (the ScreenCast
    /// portal, read through PipeWire): how screens are shared on Wayland, where an app may not
    /// read the screen itself. Linux builds with the `wayland` feature; elsewhere sharing it
    /// fails with the reason.
    Portal,
}

/// Which of a participant's pictures a frame is: its camera or its shared screen.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum VideoRole {
    /// The camera (or whatever the video input is).
    #[default]
    Camera,
    /// A shared screen.
    Screen,
}

impl VideoRole {
    /// `"camera"` or `"screen"`, as in file names and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Camera => "camera",
            Self::Screen => "screen",
        }
    }
}

/// Why our screen share ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScreenShareEnd {
    /// We stopped it ([`EngineCommand::ShareScreen`] with `None`).
    Stopped,
    /// Someone else started sharing (one share at a time per room).
    Replaced {
        /// Who shares now.
        by: ParticipantId,
    },
    /// The capture failed or the screen went away; `detail` says why.
    SourceFailed {
        /// What the capture reported.
        detail: String,
    },
    /// The call ended.
    CallEnded,
}

/// Our screen share, as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ScreenShareState {
    /// Sharing `source` (a description such as `"X11 :0, monitor 0 (1920x1080)"`).
    Sharing {
        /// What is shared.
        source: String,
    },
    /// Not sharing any more.
    Ended {
        /// Why.
        reason: ScreenShareEnd,
    },
}

/// Where outgoing audio comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioInput {
    /// No microphone.
    None,
    /// A tone with timing beeps.
    Synthetic,
    /// The tone and beeps with voice-like noise under the same envelope
    /// ([`crate::media::synthetic_audio::SyntheticAudioConfig::test_voice`]): a sound an echo
    /// canceller can find its delay in (what the call check's test peer sends).
    TestVoice,
    /// A looping WAV file.
    WavFile(PathBuf),
    /// A microphone, by the id [`crate::devices::enumerate`] lists
    /// ([`crate::devices::audio::DEFAULT_DEVICE`] for the system default). Echo
    /// cancellation, noise suppression and gain control apply to this input only: synthetic and
    /// file sources are clean test signals that the measurements rely on.
    Microphone(String),
}

/// Where remote audio is played.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioOutput {
    /// Nowhere (headless runs).
    None,
    /// A speaker, by the id [`crate::devices::enumerate`] lists
    /// ([`crate::devices::audio::DEFAULT_DEVICE`] for the system default).
    Speaker(String),
}

/// Video encoding settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoSettings {
    /// Capture and encode width.
    pub width: u32,
    /// Capture and encode height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Starting bitrate; congestion control moves it between `min_kbps` and `max_kbps`.
    pub start_kbps: u32,
    /// Lowest bitrate congestion control may pick.
    pub min_kbps: u32,
    /// Highest bitrate congestion control may pick.
    pub max_kbps: u32,
}

impl Default for VideoSettings {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            fps: 30,
            start_kbps: 1500,
            min_kbps: 150,
            max_kbps: 2500,
        }
    }
}

/// Observes media at the device boundaries; used by the loopback report to measure latency.
/// Called on media threads: keep it quick.
pub trait MediaProbe: Send + Sync {
    /// A captured audio frame, before encoding.
    fn audio_captured(&self, _frame: &AudioFrame) {}
    /// 20 ms of mixed playout handed to the speaker at `at`; `decoded` is false for pure
    /// silence before playout starts.
    fn audio_played(&self, _samples: &[f32], _at: CaptureTime, _decoded: bool) {}
}

/// Rewrites each local ICE candidate before it is signaled (trickled, or inside an SDP the
/// engine sends): how a network simulator puts itself between two engines
/// ([`crate::netsim::NetworkSimulator::rewriter`]). Called on the engine's session task: keep it
/// quick.
pub trait CandidateRewriter: Send + Sync {
    /// `candidate` is the attribute value (`candidate:…`, without `a=`). Returns what to signal
    /// instead, or `None` to signal nothing for it (a candidate that must not be used).
    fn rewrite(&self, candidate: &str) -> Option<String>;
}

/// Everything an engine needs to start.
#[derive(Clone)]
pub struct EngineConfig {
    /// Display name.
    pub name: String,
    /// Video encoding.
    pub video: VideoSettings,
    /// Outgoing video.
    pub video_input: VideoInput,
    /// Outgoing audio.
    pub audio_input: AudioInput,
    /// Local UDP addresses for ICE (e.g. `127.0.0.1:0` for loopback-only calls).
    pub bind_addrs: Vec<SocketAddr>,
    /// ICE servers in addition to the ones the signaling server hands out.
    pub extra_ice_servers: Vec<IceServer>,
    /// Use TURN relays only.
    pub relay_only: bool,
    /// Send our own camera picture to the UI as a preview ([`VideoFrameEvent::from`] `None`).
    pub preview: bool,
    /// Measurement taps.
    pub probe: Option<Arc<dyn MediaProbe>>,
    /// List devices every few seconds and report changes ([`EngineEvent::Devices`]), so
    /// pickers show cameras and headsets plugged in while the app runs.
    pub watch_devices: bool,
    /// Echo cancellation, noise suppression and gain control for [`AudioInput::Microphone`].
    pub processing: ProcessingSettings,
    /// Applied to every local candidate before it leaves the engine (`None`: sent as gathered).
    pub candidate_rewriter: Option<Arc<dyn CandidateRewriter>>,
}

impl EngineConfig {
    /// Defaults for `name`: synthetic sources, 720p30, ICE on every local IPv4 address the OS
    /// picks (`0.0.0.0:0`), preview on.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            video: VideoSettings::default(),
            video_input: VideoInput::Synthetic,
            audio_input: AudioInput::Synthetic,
            bind_addrs: vec![SocketAddr::from(([0, 0, 0, 0], 0))],
            extra_ice_servers: Vec::new(),
            relay_only: false,
            preview: true,
            probe: None,
            watch_devices: false,
            processing: ProcessingSettings::default(),
            candidate_rewriter: None,
        }
    }
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("name", &self.name)
            .field("video", &self.video)
            .field("video_input", &self.video_input)
            .field("audio_input", &self.audio_input)
            .field("bind_addrs", &self.bind_addrs)
            .field("relay_only", &self.relay_only)
            .field("preview", &self.preview)
            .field("candidate_rewriter", &self.candidate_rewriter.is_some())
            .finish_non_exhaustive()
    }
}

/// What the UI asks the engine to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineCommand {
    /// Join `room` on the signaling server at `url` (`ws://` or `wss://`).
    Join {
        /// Signaling server URL.
        url: String,
        /// Room name.
        room: String,
        /// Room password.
        password: Option<String>,
    },
    /// Hang up and leave the room.
    Leave,
    /// Microphone on (true) or muted.
    SetMic(bool),
    /// Camera on (true) or off.
    SetCamera(bool),
    /// Switch sources: at once in a call (no renegotiation) or in the lobby preview; otherwise
    /// used from the next start.
    SelectSources {
        /// New video input.
        video: VideoInput,
        /// New audio input.
        audio: AudioInput,
    },
    /// Play remote audio somewhere else, at once (no renegotiation).
    SelectSpeaker(AudioOutput),
    /// Share a screen with everyone in the call (`Some`), replacing our current share, or stop
    /// sharing (`None`). The share is a second video track on every connection, added and
    /// removed by renegotiation; the camera keeps running. Ignored outside a call.
    ShareScreen(Option<ScreenInput>),
    /// Turn echo cancellation, noise suppression or gain control on or off (at once).
    SetAudioProcessing(ProcessingSettings),
    /// Capture size, frame rate and bitrate range from now on: a running camera restarts at the
    /// new size (no renegotiation). A lower ceiling caps the encoder within a second; a higher
    /// one is reached only on connections made after the change (each connection's estimator
    /// gets its ceiling when it is made).
    SetVideoSettings(VideoSettings),
    /// Send a chat message to everyone.
    SendChat(String),
    /// Restart ICE with every participant (what the engine also does by itself when a
    /// connection drops).
    RestartIce,
    /// Use this display name from the next join on.
    SetName(String),
    /// Run the camera and microphone outside a call (lobby preview and level meter), or stop
    /// them. In a call they always run.
    Preview(bool),
}

/// Where the call is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CallState {
    /// Not in a call.
    Idle,
    /// Connecting to the signaling server.
    Connecting,
    /// In the room.
    InCall {
        /// Our participant id.
        id: ParticipantId,
        /// The room.
        room: String,
    },
    /// Signaling is reconnecting; media keeps flowing.
    Reconnecting,
    /// The call ended.
    Ended {
        /// Why.
        reason: EndReason,
    },
}

/// One remote participant's peer-connection state, simplified for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Negotiating or checking connectivity.
    Connecting,
    /// Media can flow.
    Connected,
    /// Connectivity lost; an ICE restart is under way.
    Reconnecting,
    /// Gave up.
    Failed,
    /// Closed.
    Closed,
}

/// What the engine reports.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    /// The call state changed.
    CallState(CallState),
    /// A participant is in the room (including those already there when we joined).
    ParticipantJoined {
        /// Its id.
        id: ParticipantId,
        /// Its display name.
        name: String,
    },
    /// A participant left; no more frames from it follow.
    ParticipantLeft {
        /// Its id.
        id: ParticipantId,
    },
    /// The peer connection to a participant changed state.
    Link {
        /// Who.
        id: ParticipantId,
        /// New state.
        state: LinkState,
    },
    /// A participant muted/unmuted or turned its camera on/off.
    RemoteMedia {
        /// Who.
        id: ParticipantId,
        /// Microphone on.
        mic: bool,
        /// Camera on.
        camera: bool,
    },
    /// A participant started (`sharing`) or stopped sharing its screen; its screen's frames
    /// come as [`VideoFrameEvent`]s with [`VideoRole::Screen`].
    RemoteScreen {
        /// Who.
        id: ParticipantId,
        /// Sharing now.
        sharing: bool,
    },
    /// Our own screen share started or ended.
    ScreenShare(ScreenShareState),
    /// A chat message (ours are echoed with our own id).
    Chat {
        /// Sender id.
        from: ParticipantId,
        /// Sender name.
        name: String,
        /// Text.
        text: String,
        /// When it arrived (or was sent).
        at: SystemTime,
    },
    /// The short code both sides of a connection see when it is end-to-end encrypted with no
    /// one in the middle.
    VerificationCode {
        /// Which connection.
        id: ParticipantId,
        /// For example `"4821 0937"`.
        code: String,
    },
    /// Statistics for every connection, once a second.
    Stats(Vec<ParticipantStats>),
    /// Microphone level (RMS, dBFS, -100 for silence), about ten times a second while the
    /// microphone runs.
    MicLevel(f32),
    /// How loud each remote participant is in what we play (RMS over the last 100 ms, dBFS,
    /// -100 for silence): ten times a second while anyone is heard and for 2 s after all have
    /// gone quiet. The input of an active-speaker highlight.
    SpeakerLevels(Vec<(ParticipantId, f32)>),
    /// The devices a picker can offer changed (sent once at start when watching devices, then
    /// on every change).
    Devices(crate::devices::DeviceList),
    /// A camera, microphone or speaker stopped, came back, or was replaced by the default one.
    Device(crate::devices::DeviceNotice),
    /// The STUN and TURN servers this call uses (the signaling server's and the configured
    /// ones; URLs only, never credentials), once after joining.
    IceServers(Vec<String>),
    /// The microphone's echo canceller, noise suppressor and gain control, once a second in a
    /// call while they run on a microphone.
    AudioProcessing(crate::media::audio_processing::ProcessingStats),
    /// Something went wrong; the call (if any) goes on. The UI words it for the user.
    Error(Problem),
}

/// A decoded remote frame (or our own preview when `from` is `None`).
#[derive(Debug, Clone)]
pub struct VideoFrameEvent {
    /// The remote participant, or `None` for the local preview.
    pub from: Option<ParticipantId>,
    /// Its camera or its shared screen (our own screen's preview has `from: None` and
    /// [`VideoRole::Screen`]).
    pub role: VideoRole,
    /// The picture.
    pub frame: I420Frame,
    /// When it finished decoding (same clock as capture times).
    pub decoded_at: CaptureTime,
}

/// The local ICE candidates of one connection, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LocalCandidates {
    /// Addresses of this computer's own interfaces.
    pub host: u32,
    /// Addresses a STUN server saw us at (through a router's NAT); zero when no STUN server
    /// answered.
    pub srflx: u32,
    /// Addresses on a TURN relay; zero when no TURN server gave us one.
    pub relay: u32,
    /// The first server-reflexive address (`IP:port`): this computer as the internet sees it.
    pub public_address: Option<String>,
    /// The first relay address (`IP:port`) and the TURN server URL that gave it.
    pub relay_address: Option<String>,
}

/// Per-connection statistics (one second window for rates).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ParticipantStats {
    /// The remote participant.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Round-trip time of the selected candidate pair.
    pub rtt_ms: Option<f64>,
    /// Packets lost on the way to us (video + audio), cumulative.
    pub packets_lost: i64,
    /// Inbound video jitter.
    pub jitter_ms: f64,
    /// Video bitrate we send to it.
    pub video_kbps_out: f64,
    /// Video bitrate we receive from it.
    pub video_kbps_in: f64,
    /// Audio bitrate we send to it.
    pub audio_kbps_out: f64,
    /// Audio bitrate we receive from it.
    pub audio_kbps_in: f64,
    /// Frames per second we encode and send.
    pub fps_out: f64,
    /// Frames per second we decode from it.
    pub fps_in: f64,
    /// Resolution of its video (`"WxH"`), once decoded.
    pub resolution_in: Option<String>,
    /// Pictures decoded from it, cumulative.
    pub frames_decoded: u64,
    /// Access units from it that the H.264 decoder rejected (corrupt or undecodable data),
    /// cumulative. Each one makes us ask for a keyframe. Zero in a healthy call; local load
    /// never raises it (see the two `frames_dropped_*` counters for that).
    pub decode_errors: u64,
    /// Access units from it not decoded because the pictures they refer to never reached the
    /// decoder: before its first keyframe (a stream joined mid-GOP), and after lost packets, a
    /// decode error or a dropped unit, until the keyframe we ask for arrives. Cumulative.
    pub frames_skipped_awaiting_keyframe: u64,
    /// Access units from it dropped before decoding because our decoder was behind (its queue
    /// was full, the oldest went): local CPU load, not the network or the sender. Cumulative.
    pub frames_dropped_decoder_behind: u64,
    /// Audio packets from it dropped (oldest first) between the link and its jitter buffer
    /// because playout did not pull them in time: local load, not the network. Cumulative.
    pub audio_packets_dropped_receiver_behind: u64,
    /// Decoded pictures dropped because the app did not take them in time: the engine's
    /// decoded-picture queue (shared by all participants, drop-oldest) was full when one of
    /// this participant's pictures arrived. With several participants the picture dropped may
    /// have been another's. Cumulative.
    pub frames_dropped_consumer_slow: u64,
    /// PLIs we sent to it.
    pub plis_sent: u64,
    /// NACKs we sent to it.
    pub nacks_sent: u64,
    /// Keyframe requests (PLI/FIR) it sent us.
    pub keyframe_requests_received: u64,
    /// `host`, `srflx`, `prflx` or `relay`.
    pub candidate_type: Option<String>,
    /// The local ICE candidates gathered for this connection, by kind: what the STUN and TURN
    /// servers answered (a call check words them).
    pub local_candidates: LocalCandidates,
    /// Congestion control's estimate of the bandwidth toward it.
    pub bandwidth_estimate_kbps: f64,
    /// Current playout delay of its audio.
    pub audio_delay_ms: f64,
    /// Whether video is negotiated with it. False when the two sides share no video codec (a
    /// browser without H.264, such as Firefox without its OpenH264 plugin): the connection then
    /// carries audio and chat only, and no video is sent or expected either way.
    pub video_negotiated: bool,
    /// Video codec (`"H264"`), or `"none"` when video is not negotiated.
    pub codec: &'static str,
    /// Pictures we encoded and sent (to everyone), cumulative.
    pub frames_sent: u64,
    /// Video bytes received from it, cumulative.
    pub video_bytes_received: u64,
    /// Audio bytes received from it, cumulative.
    pub audio_bytes_received: u64,
    /// Mean encode time per picture so far.
    pub encode_ms_per_frame: f64,
    /// Mean decode time per picture from it so far.
    pub decode_ms_per_frame: f64,
    /// RTP packets it retransmitted to us after our NACKs (RTX packets, or repeats on the
    /// original SSRC), cumulative.
    pub retransmitted_packets_received: u64,
    /// RTP packets we retransmitted to it after its NACKs, cumulative.
    pub retransmitted_packets_sent: u64,
    /// Lost packets from it rebuilt from forward error correction (Opus in-band FEC, video FEC),
    /// cumulative.
    pub fec_recovered_packets: u64,
    /// Milliseconds of its audio that playout had to conceal (packet loss concealment, because
    /// the packet was lost or late), cumulative.
    pub audio_concealed_ms: f64,
    /// Milliseconds of its audio played out (decoded or concealed), cumulative; with
    /// `audio_concealed_ms` it gives the concealed share.
    pub audio_played_ms: f64,
    /// Pictures per second we decode of its shared screen (0 when it does not share).
    pub screen_fps_in: f64,
    /// Bitrate of its shared screen as received.
    pub screen_kbps_in: f64,
    /// Resolution of its shared screen (`"WxH"`), once decoded.
    pub screen_resolution_in: Option<String>,
    /// Pictures of its screen decoded, cumulative.
    pub screen_frames_decoded: u64,
    /// Access units of its screen the decoder rejected, cumulative.
    pub screen_decode_errors: u64,
    /// Pictures per second of our shared screen we encode and send (to everyone).
    pub screen_fps_out: f64,
    /// Bitrate of our shared screen as encoded (each peer gets this).
    pub screen_kbps_out: f64,
    /// Screen pictures we encoded and sent (to everyone), cumulative.
    pub screen_frames_sent: u64,
    /// Mean encode time per screen picture so far.
    pub screen_encode_ms_per_frame: f64,
    /// Bytes of its shared screen received, cumulative.
    pub screen_bytes_received: u64,
}
