//! Building a [`PeerLink`]: the webrtc-rs configuration (codecs, interceptors, congestion
//! control, pacer, ICE settings and servers), the two local tracks, the chat channel, and the
//! tasks that drain them.
//!
//! Contract: [`PeerLink::new`] either returns a link whose tracks and chat channel exist and are
//! being polled, or an error after closing everything it had built; the event sender is then
//! dropped. It never panics on the settings: unusable ones are [`PeerError::Setup`].

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rtc::data_channel::RTCDataChannelInit;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::configuration::interceptor_registry::{
    CongestionFeedback, configure_congestion_control, configure_rtcp_reports,
    configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, warn};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, RTCConfigurationBuilder, RTCIceServer,
    RTCIceTransportPolicy,
};

use super::events::{CHAT_LABEL, CHAT_STREAM_ID, PeerError, PeerEvent, PeerSettings};
use super::inlet::MediaInlet;
use super::local_tracks::{LocalMedia, random_ssrc};
use super::negotiation_glue::Negotiation;
use super::shared::{EventSink, LocalIce, Shared, library_error};
use super::{PeerLink, bwe, codecs, keyframe, loss_report, nack, pacer, rtx_guard, tasks};

/// Time between ICE connectivity checks.
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// Checks per candidate pair before it counts as failed (28 × 50 ms = 1.4 s).
const ICE_MAX_BINDING_REQUESTS: u16 = 28;
/// Packets of send history per stream the NACK responder can retransmit from (a power of two).
/// 1024 packets of ≤ 1200 bytes hold over 3 s of video at 2.5 Mbit/s, and at least 1 s up to
/// about 9 Mbit/s.
const NACK_HISTORY_PACKETS: u16 = 1024;
/// Video packets the pacer may hold before it refuses new ones (the crate's pacer holds 4096).
/// With that many, a path slower than the start bitrate filled the queue with seconds of stale
/// video that every later packet waited behind: 15 s of latency at `rate=600kbit`. 256 packets
/// are about a second of video at 2.5 Mbit/s, several keyframes; past that, refusing a packet
/// turns the backlog into loss that NACK and the estimator see. (Audio and retransmissions have
/// queues of their own, released first: see `pacer`.)
const PACER_QUEUE_PACKETS: usize = 256;

/// The interceptor chain except congestion control: the crate's default set (RTCP reports,
/// TWCC receiver, simulcast header extensions, NACK responder) with our RTX-aware
/// [`nack::NackGenerator`] in place of the crate's, and the responder behind our
/// [`rtx_guard::RetransmissionGuard`] (once per round trip, within a share of `estimate`). The
/// `nack`/`nack pli` feedback the crate's helper would register is already on our H.264 codec.
fn base_interceptors(
    engine: &mut rtc::peer_connection::configuration::media_engine::MediaEngine,
    estimate: &bwe::EstimateCell,
    rtx: &rtx_guard::RtxCounters,
    repair_time: &nack::RepairTimeCell,
) -> Result<Registry, webrtc::error::Error> {
    configure_simulcast_extension_headers(engine)?;
    let registry = Registry::new()
        .with(
            Slot::NackResponder,
            rtx_guard::RetransmissionGuard::new(
                NACK_HISTORY_PACKETS,
                estimate.clone(),
                rtx.clone(),
            ),
        )
        .with(
            Slot::NackGenerator,
            nack::NackGenerator::with_repair_cell(random_ssrc(0), repair_time.clone()),
        );
    let registry = configure_twcc_receiver_only(registry, engine)?;
    Ok(configure_rtcp_reports(registry))
}

/// Whether `settings` name a TURN server (relay candidates may carry the call).
fn has_turn(settings: &PeerSettings) -> bool {
    settings.ice_servers.iter().any(|s| {
        s.urls.iter().any(|u| {
            let lower = u.to_ascii_lowercase();
            lower.starts_with("turn:") || lower.starts_with("turns:")
        })
    })
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
        let estimate = bwe::EstimateCell::new(f64::from(range.start_bps));
        let rtx = rtx_guard::RtxCounters::default();
        let repair_time = nack::RepairTimeCell::default();
        let registry = base_interceptors(&mut engine, &estimate, &rtx, &repair_time)
            .map_err(setup("registering interceptors"))?;
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
        let reported_loss = loss_report::ReportedLoss::default();
        // The pacer follows congestion control from its first *change*; start it where the
        // estimator starts (with the pacing factor).
        let pacer_counters = pacer::PacerCounters::default();
        let registry = registry
            .with(
                Slot::Pacer,
                pacer::PriorityPacer::new(
                    f64::from(range.start_bps) * bwe::PACING_FACTOR,
                    PACER_QUEUE_PACKETS,
                    pacer_counters.clone(),
                ),
            )
            .with(
                keyframe::SLOT,
                keyframe::KeyframeRequestForwarder::default(),
            )
            .with(
                loss_report::SLOT,
                loss_report::ReceiverReportTap::new(reported_loss.clone()),
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
        let mut setting_engine = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_MAX_BINDING_REQUESTS))
            // On an ICE restart, gather (and so trickle) candidates afresh. Without this the
            // crate keeps its old local candidates and announces none for the new ufrag, and the
            // restarted ICE has nothing to check: the call never recovers (seen in
            // `lost_connectivity_triggers_an_ice_restart_and_recovers`).
            .with_discard_local_candidates_during_ice_restart(true);
        if settings.relay_only {
            // The crate holds back nominating a pair with a relay candidate until 2 s after
            // checks start (1 s for peer-reflexive ones), in case a direct pair turns up. With
            // relays only, nothing better can: that wait was 2 of the 3.4 s a relay-only call
            // took to connect on loopback. (A remote's relay address learnt from its checks
            // before its trickled candidate is peer-reflexive, hence both.)
            setting_engine = setting_engine
                .with_relay_acceptance_min_wait(Some(Duration::ZERO))
                .with_prflx_acceptance_min_wait(Some(Duration::ZERO));
        }
        let setting_engine = setting_engine.build();

        let shared = Arc::new(Shared {
            sink: EventSink(Mutex::new(Some(events))),
            inlet,
            connected: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            stable: AtomicBool::new(true),
            chat_open: AtomicBool::new(false),
            keyframe_requests: AtomicU64::new(0),
            reported_loss,
            rtx,
            pacer: pacer_counters,
            repair_time,
            last_state: Mutex::new(None),
            remote_video: Mutex::new(None),
            remote_screen: Mutex::new(None),
            remote_screen_stream: Mutex::new(None),
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
            Ok(link) => {
                if has_turn(settings) {
                    link.shared.spawn(tasks::relay_flush_loop(
                        Arc::clone(&link.shared),
                        Arc::downgrade(&link.pc),
                        Arc::clone(&link.chat),
                        settings.relay_only,
                    ));
                }
                Ok(link)
            }
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
        let mut video_rtx_ssrc = random_ssrc(video_ssrc);
        while video_rtx_ssrc == audio_ssrc {
            video_rtx_ssrc = random_ssrc(video_ssrc);
        }
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
            None,
        )
        .await?;
        let video = LocalMedia::new(
            pc,
            &stream_id,
            RtpCodecKind::Video,
            "video",
            codecs::h264(),
            video_ssrc,
            Some(video_rtx_ssrc),
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
            Some(crate::api::VideoRole::Camera),
        ));
        shared.spawn(tasks::local_rtcp_loop(
            Arc::clone(shared),
            Arc::clone(&audio.track),
            None,
        ));
        shared.spawn(tasks::chat_loop(Arc::clone(shared), Arc::clone(&chat)));

        Ok(Self {
            pc: Arc::clone(pc),
            shared: Arc::clone(shared),
            negotiation: tokio::sync::Mutex::new(Negotiation::new()),
            video,
            audio,
            screen: Mutex::new(None),
            chat,
            bwe,
        })
    }
}
