//! The VP8-only peer of `engine_codec_mismatch.rs`: the shape of Firefox without its OpenH264
//! plugin, imitated by a webrtc-rs peer connection whose media engine registers only VP8 video
//! and Opus audio, joining a room through the real signaling server with a negotiated chat
//! channel ([`run_vp8_peer`]), and what it saw ([`Seen`]).
//!
//! Contract: the peer only imitates a browser; it asserts nothing about the engine (the test
//! does, from [`Seen`] and the SDP it records). Every wait is bounded by [`GUARD`].
//! Included with `#[path = "common/vp8_peer.rs"] mod vp8_peer;`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test harness: a panic is a test failure with its message"
)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use confab_engine::media::opus_codec::{FRAME_SAMPLES, OpusEncoder, OpusEncoderConfig};
use rtc::data_channel::RTCDataChannelInit;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Registry;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use signaling_client::{ClientConfig, ClientEvent, ParticipantId, Signal, SignalingClient};
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription,
};
use webrtc::rtp_transceiver::RtpSender;

/// Failure guard for every wait.
pub const GUARD: Duration = Duration::from_secs(30);
const AUDIO_SSRC: u32 = 0x000a_0d10;
const VIDEO_SSRC: u32 = 0x000b_0e20;
/// The VP8-only peer's display name.
pub const PEER_NAME: &str = "firefox-like";

/// What the VP8-only peer has seen.
#[derive(Default)]
pub struct Seen {
    /// The peer connection is connected (its latest state).
    pub connected: AtomicBool,
    /// RTP audio packets received with a payload.
    pub audio_packets: AtomicU64,
    /// RTP video packets received with a payload.
    pub video_packets: AtomicU64,
    /// The chat channel is open.
    pub chat_open: AtomicBool,
    /// Chat messages received.
    pub messages: Mutex<Vec<String>>,
}

/// Forwards local candidates to the signaling loop and counts received RTP per kind.
struct Handler {
    seen: Arc<Seen>,
    candidates: mpsc::UnboundedSender<RTCIceCandidateInit>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.candidates.send(init);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.seen.connected.store(
            state == RTCPeerConnectionState::Connected,
            Ordering::Release,
        );
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let seen = Arc::clone(&self.seen);
        tokio::spawn(async move {
            let counter = match track.kind().await {
                RtpCodecKind::Video => &seen.video_packets,
                _ => &seen.audio_packets,
            };
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(p) = event
                    && !p.payload.is_empty()
                {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

fn codec(mime: &str, clock_rate: u32, channels: u16, fmtp: &str) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: mime.to_owned(),
        clock_rate,
        channels,
        sdp_fmtp_line: fmtp.to_owned(),
        rtcp_feedback: Vec::new(),
    }
}

/// A local sample track of `kind` added to `pc`.
async fn add_track(
    pc: &Arc<dyn PeerConnection>,
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    ssrc: u32,
) -> (Arc<TrackLocalStaticSample>, Arc<dyn RtpSender>) {
    let id = format!("{kind}-{ssrc:x}");
    let track = Arc::new(
        TrackLocalStaticSample::new(
            std::time::Instant::now(),
            MediaStreamTrack::new(
                "vp8-peer".to_owned(),
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
        .unwrap(),
    );
    let sender = pc
        .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
        .await
        .unwrap();
    (track, sender)
}

/// The Firefox imitation: VP8 + Opus only, video track first (like a page that adds its
/// camera before its microphone), the chat channel negotiated as id 0.
struct Vp8Peer {
    pc: Arc<dyn PeerConnection>,
    audio: Arc<TrackLocalStaticSample>,
    audio_sender: Arc<dyn RtpSender>,
    video_sender: Arc<dyn RtpSender>,
    chat: Arc<dyn DataChannel>,
    seen: Arc<Seen>,
    candidates: mpsc::UnboundedReceiver<RTCIceCandidateInit>,
}

impl Vp8Peer {
    async fn new() -> Self {
        let mut engine = MediaEngine::default();
        engine
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: codec(MIME_TYPE_VP8, 90_000, 0, ""),
                    payload_type: 96,
                },
                RtpCodecKind::Video,
            )
            .unwrap();
        engine
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: codec(MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1"),
                    payload_type: 109,
                },
                RtpCodecKind::Audio,
            )
            .unwrap();
        let registry = register_default_interceptors(Registry::new(), &mut engine).unwrap();
        let seen = Arc::new(Seen::default());
        let (tx, candidates) = mpsc::unbounded_channel();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .with_setting_engine(
                SettingEngineBuilder::new()
                    .with_multicast_dns_mode(MulticastDnsMode::Disabled)
                    .build(),
            )
            .with_handler(Arc::new(Handler {
                seen: Arc::clone(&seen),
                candidates: tx,
            }))
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()]);
        let pc: Arc<dyn PeerConnection> = Arc::new(Box::pin(pc.build()).await.unwrap());
        let (_, video_sender) = add_track(
            &pc,
            RtpCodecKind::Video,
            codec(MIME_TYPE_VP8, 90_000, 0, ""),
            VIDEO_SSRC,
        )
        .await;
        let (audio, audio_sender) = add_track(
            &pc,
            RtpCodecKind::Audio,
            codec(MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1"),
            AUDIO_SSRC,
        )
        .await;
        let chat = pc
            .create_data_channel(
                "chat",
                Some(RTCDataChannelInit {
                    ordered: true,
                    max_packet_life_time: None,
                    max_retransmits: None,
                    protocol: String::new(),
                    negotiated: Some(0),
                }),
            )
            .await
            .unwrap();
        let s = Arc::clone(&seen);
        let c = Arc::clone(&chat);
        tokio::spawn(async move {
            while let Some(event) = c.poll().await {
                match event {
                    DataChannelEvent::OnOpen => s.chat_open.store(true, Ordering::Release),
                    DataChannelEvent::OnMessage(m) => s
                        .messages
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&m.data).into_owned()),
                    _ => {}
                }
            }
        });
        Self {
            pc,
            audio,
            audio_sender,
            video_sender,
            chat,
            seen,
            candidates,
        }
    }

    async fn offer(&self) -> String {
        let offer = self.pc.create_offer(None).await.unwrap();
        let sdp = offer.sdp.clone();
        self.pc.set_local_description(offer).await.unwrap();
        sdp
    }

    /// Answers `sdp` as Firefox would: a video section without VP8 is rejected. (Firefox does
    /// that by itself; webrtc-rs needs the track removed first, as the engine does.)
    async fn answer(&self, sdp: &str) -> String {
        self.pc
            .set_remote_description(RTCSessionDescription::offer(sdp.to_owned()).unwrap())
            .await
            .unwrap();
        let video = sdp.split("m=").find(|s| s.starts_with("video"));
        if video.is_some_and(|v| !v.contains("VP8/90000")) {
            self.pc.remove_track(&self.video_sender).await.unwrap();
        }
        let answer = self.pc.create_answer(None).await.unwrap();
        let sdp = answer.sdp.clone();
        self.pc.set_local_description(answer).await.unwrap();
        sdp
    }

    /// The negotiated Opus payload type, once negotiated.
    async fn audio_payload_type(&self) -> Option<u8> {
        let params = self.audio_sender.get_parameters().await.ok()?;
        params
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_OPUS))
            .map(|c| c.payload_type)
    }
}

/// Runs the VP8-only peer's side of the room: joins, offers if `offers`, answers otherwise,
/// trickles candidates both ways, and sends Opus (a 440 Hz tone) every 20 ms once connected.
/// Says on `in_room` when the server has let it in. Returns when `stop` is set.
pub async fn run_vp8_peer(
    url: String,
    offers: bool,
    seen_out: Arc<Mutex<Option<Arc<Seen>>>>,
    in_room: std::sync::mpsc::Sender<()>,
    sdp_out: Arc<Mutex<Vec<String>>>,
    chat_to_send: String,
    stop: Arc<AtomicBool>,
) {
    let mut peer = Vp8Peer::new().await;
    *seen_out.lock().unwrap() = Some(Arc::clone(&peer.seen));
    let (client, welcome, mut events) =
        SignalingClient::connect(ClientConfig::new(url, "codecs", PEER_NAME))
            .await
            .unwrap();
    // The welcome came: the server has it in the room.
    let _ = in_room.send(());
    let mut remote: Option<ParticipantId> = welcome.participants.first().map(|p| p.id.clone());
    if offers {
        let to = remote.clone().expect("the engine is in the room first");
        let sdp = peer.offer().await;
        sdp_out.lock().unwrap().push(sdp.clone());
        client.send_signal(to, Signal::Offer { sdp }).unwrap();
    }
    let mut pending: Vec<RTCIceCandidateInit> = Vec::new();
    let mut has_remote = false;
    let mut opus = OpusEncoder::new(OpusEncoderConfig::default()).unwrap();
    let mut phase = 0.0f32;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut chat_sent = false;
    let mut chat_open_since: Option<Instant> = None;
    while !stop.load(Ordering::Acquire) {
        tokio::select! {
            Some(event) = events.recv() => match event {
                ClientEvent::ParticipantJoined(p) => remote = Some(p.id),
                ClientEvent::Signal { from, signal } => match signal {
                    Signal::Offer { sdp } | Signal::IceRestart { sdp } => {
                        let answer = peer.answer(&sdp).await;
                        sdp_out.lock().unwrap().push(answer.clone());
                        client.send_signal(from, Signal::Answer { sdp: answer }).unwrap();
                        has_remote = true;
                    }
                    Signal::Answer { sdp } => {
                        sdp_out.lock().unwrap().push(sdp.clone());
                        peer.pc
                            .set_remote_description(RTCSessionDescription::answer(sdp).unwrap())
                            .await
                            .unwrap();
                        has_remote = true;
                    }
                    Signal::Candidate { candidate, sdp_mid, sdp_mline_index, username_fragment } => {
                        pending.push(RTCIceCandidateInit {
                            candidate,
                            sdp_mid,
                            sdp_mline_index,
                            username_fragment,
                            url: None,
                        });
                    }
                    _ => {}
                },
                _ => {}
            },
            Some(init) = peer.candidates.recv() => {
                if let Some(to) = &remote {
                    let _ = client.send_signal(to.clone(), Signal::Candidate {
                        candidate: init.candidate,
                        sdp_mid: init.sdp_mid,
                        sdp_mline_index: init.sdp_mline_index,
                        username_fragment: init.username_fragment,
                    });
                }
            }
            _ = tick.tick() => {
                if peer.seen.connected.load(Ordering::Acquire)
                    && let Some(pt) = peer.audio_payload_type().await
                {
                    let samples: Vec<f32> = (0..FRAME_SAMPLES)
                        .map(|_| {
                            phase += 440.0 / 48_000.0;
                            (phase * std::f32::consts::TAU).sin() * 0.3
                        })
                        .collect();
                    let data = Bytes::from(opus.encode(&samples).unwrap().data);
                    let sample = Sample {
                        data,
                        duration: Duration::from_millis(20),
                        ..Sample::new(std::time::Instant::now())
                    };
                    Box::pin(peer.audio.sample_writer(AUDIO_SSRC, pt).write_sample(&sample))
                        .await
                        .unwrap();
                }
                // Like a user typing, not at the instant our end opens: a message sent then can
                // reach a webrtc-rs peer before its end of the negotiated channel exists, and is
                // lost (seen here with the engine's own `media` message; a separate issue).
                if peer.seen.chat_open.load(Ordering::Acquire) {
                    chat_open_since.get_or_insert_with(Instant::now);
                }
                if !chat_sent
                    && chat_open_since.is_some_and(|t| t.elapsed() > Duration::from_millis(500))
                {
                    let message = serde_json::json!({"t": "chat", "text": chat_to_send});
                    peer.chat.send_text(&message.to_string()).await.unwrap();
                    chat_sent = true;
                }
            }
        }
        if has_remote {
            for c in pending.drain(..) {
                peer.pc.add_ice_candidate(c).await.unwrap();
            }
        }
    }
    client.leave().await;
    let _ = peer.pc.close().await;
}
