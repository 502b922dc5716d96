//! The connection's event handler and the poll loops that turn track and channel traffic into
//! [`PeerEvent`]s.
//!
//! The handler's methods are awaited on the connection's driver task, which stalls all I/O of the
//! connection while they run; each one only updates atomics and sends on the unbounded event
//! channel (the receiver is the caller's, which drains it continuously), or spawns a loop.
//!
//! Every remote track and every local track gets a loop that polls it until `poll()` returns
//! `None` (connection closed, track ended): the library queues at most 256 events per track and
//! drops RTP/RTCP beyond that, so a track must never go unpolled.
//!
//! A link that may use a TURN relay also runs [`relay_flush_loop`], which keeps relayed packets
//! from waiting in the library (see there).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tracing::{debug, trace, warn};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::TrackLocalEvent;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSignalingState, StatsSelector,
};

use super::assembler::FrameAssembler;
use super::events::{ConnectionState, PeerEvent};
use super::inlet::ReceivedFrame;
use super::keyframe::is_keyframe_request;
use super::shared::{Shared, lock};
use super::stats;
use crate::api::VideoRole;
use crate::media::CaptureTime;
use crate::media::jitter_buffer::RtpAudioPacket;

/// How many packets the frame assembler holds behind a missing one before giving up on it. Must
/// exceed the packet count of the largest access unit (a 1080p keyframe is ~100 packets).
const VIDEO_MAX_LATE_PACKETS: u16 = 512;
/// How long the frame assembler waits for a missing packet (NACK recovery) before dropping the
/// incomplete frame and reporting `lost_before`, at least.
const VIDEO_MAX_LATE_TIME: Duration = Duration::from_millis(300);
/// The longest it waits, however slow repairs are.
const VIDEO_MAX_LATE_CAP: Duration = Duration::from_secs(1);

/// The frame assembler's wait for a missing packet given the measured repair time: room for a
/// repair and one repeat (the NACK generator asks again 1.5 repair times after the first NACK).
/// On a fast path that is the 300 ms floor; on a slow one (a rate-limited link with a full
/// queue, repairs of 400 ms) a fixed 300 ms dropped every frame that lost a packet before its
/// repair could arrive, and each dropped frame cost a keyframe.
fn video_wait(repair: Option<Duration>) -> Duration {
    repair.map_or(VIDEO_MAX_LATE_TIME, |r| {
        (r * 5 / 2 + Duration::from_millis(50)).clamp(VIDEO_MAX_LATE_TIME, VIDEO_MAX_LATE_CAP)
    })
}
/// How often [`relay_flush_loop`] wakes the connection's driver: the most a relayed packet
/// waits in the library.
const RELAY_FLUSH_INTERVAL: Duration = Duration::from_millis(5);

/// Forwards connection callbacks into the [`Shared`] state and the event channel.
pub(super) struct Handler {
    shared: Arc<Shared>,
}

impl Handler {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_negotiation_needed(&self) {
        self.shared.emit(PeerEvent::NegotiationNeeded);
    }

    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        let init = match event.candidate.to_json() {
            Ok(init) => init,
            Err(e) => {
                warn!(error = %e, "cannot serialise local candidate");
                return;
            }
        };
        // to_json() always says mid "" / index 0; use our first live section and our ufrag.
        let ice = lock(&self.shared.local_ice).clone();
        self.shared.emit(PeerEvent::LocalCandidate {
            candidate: init.candidate,
            sdp_mid: ice.first_mid,
            sdp_mline_index: Some(ice.first_index),
            username_fragment: ice.ufrag,
        });
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.shared.emit(PeerEvent::GatheringComplete);
        }
    }

    async fn on_signaling_state_change(&self, state: RTCSignalingState) {
        // Tracked exactly by PeerLink's own calls; the callback lags behind them.
        trace!(%state, "signalling state");
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let state = match state {
            RTCPeerConnectionState::New => ConnectionState::New,
            RTCPeerConnectionState::Connecting => ConnectionState::Connecting,
            RTCPeerConnectionState::Connected => ConnectionState::Connected,
            RTCPeerConnectionState::Disconnected => ConnectionState::Disconnected,
            RTCPeerConnectionState::Failed => ConnectionState::Failed,
            RTCPeerConnectionState::Closed => ConnectionState::Closed,
            _ => return,
        };
        debug!(?state, "connection state");
        if !self.shared.closed.load(Ordering::Acquire) {
            self.shared.set_connection_state(state);
        }
    }

    async fn on_data_channel(&self, data_channel: Arc<dyn DataChannel>) {
        // Our chat channel is negotiated out of band; an in-band channel from the remote is not
        // part of the protocol. It must not sit unpolled: the driver stops reading SCTP (shared
        // with chat) while a reliable channel holds undelivered messages. Closing waits on the
        // driver, which is running this handler, hence the task.
        debug!(id = ?data_channel.id(), "closing remote-created data channel");
        self.shared.spawn(async move {
            if let Err(e) = data_channel.close().await {
                debug!(error = %e, "closing remote-created data channel");
            }
            while data_channel.poll().await.is_some() {}
        });
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let shared = Arc::clone(&self.shared);
        self.shared.spawn(remote_track_loop(shared, track));
    }
}

async fn remote_track_loop(shared: Arc<Shared>, track: Arc<dyn TrackRemote>) {
    match track.kind().await {
        RtpCodecKind::Video => remote_video_loop(&shared, &track).await,
        RtpCodecKind::Audio => remote_audio_loop(&shared, &track).await,
        other => {
            debug!(kind = ?other, "draining remote track of unexpected kind");
            while track.poll().await.is_some() {}
        }
    }
}

/// Polls a remote video track. Which of the peer's pictures it carries (its camera or its
/// screen) is decided per packet by [`Shared::video_role`]; the track's stream id is read again
/// whenever its SSRC changes (a transceiver reused for a new share gets a new stream).
async fn remote_video_loop(shared: &Shared, track: &Arc<dyn TrackRemote>) {
    let mut assembler =
        FrameAssembler::new(VIDEO_MAX_LATE_TIME, usize::from(VIDEO_MAX_LATE_PACKETS));
    let mut known_ssrc = None;
    let mut stream = String::new();
    let mut last_role = None;
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(_) if shared.closed.load(Ordering::Acquire) => break,
            TrackRemoteEvent::OnRtpPacket(packet) => {
                let ssrc = packet.header.ssrc;
                if known_ssrc != Some(ssrc) {
                    known_ssrc = Some(ssrc);
                    stream = track.stream_id().await;
                }
                let Some(role) = shared.video_role(track, &stream, ssrc) else {
                    trace!(%stream, "video of a track that is neither the camera nor an announced screen");
                    continue;
                };
                if last_role != Some(role) {
                    if last_role.is_some() {
                        // Frames of the other role must not be completed with these packets.
                        assembler = FrameAssembler::new(
                            VIDEO_MAX_LATE_TIME,
                            usize::from(VIDEO_MAX_LATE_PACKETS),
                        );
                    }
                    debug!(%stream, ?role, "remote video track");
                    last_role = Some(role);
                }
                let inlet = shared.inlet.video_for(role);
                assembler.set_max_wait(video_wait(shared.repair_time.get()));
                // Padding (empty payload) goes in too: it takes a sequence number.
                for frame in assembler.push(Instant::now(), packet) {
                    inlet.push_frame(ReceivedFrame {
                        data: frame.data,
                        rtp_timestamp: frame.rtp_timestamp,
                        lost_before: frame.lost_before,
                    });
                }
            }
            TrackRemoteEvent::OnEnded => break,
            other => trace!(?other, "remote video track event"),
        }
    }
    shared.forget_remote_video(track);
}

async fn remote_audio_loop(shared: &Shared, track: &Arc<dyn TrackRemote>) {
    let inlet = Arc::clone(shared.inlet.audio());
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(_) if shared.closed.load(Ordering::Acquire) => break,
            TrackRemoteEvent::OnRtpPacket(packet) => {
                // Empty payloads are padding (bandwidth probing), not audio.
                if packet.payload.is_empty() {
                    continue;
                }
                // Arrival is when the packet leaves the link, not when someone gets to it.
                let arrival = CaptureTime::now();
                inlet.push_packet(
                    RtpAudioPacket {
                        seq: packet.header.sequence_number,
                        timestamp: packet.header.timestamp,
                        payload: packet.payload.to_vec(),
                    },
                    arrival,
                );
            }
            TrackRemoteEvent::OnEnded => break,
            other => trace!(?other, "remote audio track event"),
        }
    }
}

/// Drains RTCP delivered to a local track; for video (`video` names which), PLI/FIR become
/// [`PeerEvent::KeyframeRequested`] or [`PeerEvent::ScreenKeyframeRequested`].
pub(super) async fn local_rtcp_loop(
    shared: Arc<Shared>,
    track: Arc<TrackLocalStaticSample>,
    video: Option<VideoRole>,
) {
    while let Some(event) = track.poll().await {
        let TrackLocalEvent::OnRtcpPacket(packets) = event else {
            continue;
        };
        let Some(role) = video else {
            continue;
        };
        let requests = packets
            .iter()
            .filter(|p| is_keyframe_request(p.as_ref()))
            .count();
        if requests > 0 {
            shared
                .keyframe_requests
                .fetch_add(requests as u64, Ordering::Relaxed);
            shared.emit(match role {
                VideoRole::Camera => PeerEvent::KeyframeRequested,
                VideoRole::Screen => PeerEvent::ScreenKeyframeRequested,
            });
        }
    }
}

/// Reports the chat channel's opening, its text messages and its closing (once).
pub(super) async fn chat_loop(shared: Arc<Shared>, channel: Arc<dyn DataChannel>) {
    while let Some(event) = channel.poll().await {
        match event {
            DataChannelEvent::OnOpen => {
                shared.chat_open.store(true, Ordering::Release);
                shared.emit(PeerEvent::ChatOpen);
            }
            DataChannelEvent::OnMessage(message) if message.is_string => {
                match String::from_utf8(message.data.to_vec()) {
                    Ok(text) => shared.emit(PeerEvent::Chat(text)),
                    Err(_) => warn!("dropping chat message that is not UTF-8"),
                }
            }
            DataChannelEvent::OnMessage(message) => {
                debug!(bytes = message.data.len(), "ignoring binary chat message");
            }
            DataChannelEvent::OnClosing | DataChannelEvent::OnClose => {
                if shared.chat_open.swap(false, Ordering::AcqRel) {
                    shared.emit(PeerEvent::ChatClosed);
                }
            }
            other => trace!(?other, "chat channel event"),
        }
    }
    if shared.chat_open.swap(false, Ordering::AcqRel) {
        shared.emit(PeerEvent::ChatClosed);
    }
}

/// Keeps packets for a TURN relay from waiting inside webrtc-rs 0.21.1.
///
/// Its driver loop flushes the TURN relayer's queue *before* it drains the connection's own
/// output, and a packet for a relay candidate goes from that output into the relayer's queue;
/// so it leaves only on the loop's next turn: the next socket event or timer, and once ICE is
/// connected its timer runs every 200 ms. Each DTLS flight through a relay waited that long:
/// the handshake took ~1.5 s on loopback instead of a few milliseconds. Nothing public flushes
/// the relayer, but any call that wakes the driver makes it take another turn; setting the chat
/// channel's low-water mark to the value it already has does that and nothing else.
///
/// Runs every [`RELAY_FLUSH_INTERVAL`] while the connection comes up; once connected, only if
/// the selected pair is relayed (always with `relay_only`), until the link closes.
pub(super) async fn relay_flush_loop(
    shared: Arc<Shared>,
    pc: Weak<dyn PeerConnection>,
    chat: Arc<dyn DataChannel>,
    relay_only: bool,
) {
    let mut tick = tokio::time::interval(RELAY_FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut relayed = relay_only;
    loop {
        tick.tick().await;
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        if !relayed && shared.connected.load(Ordering::Acquire) {
            let Some(pc) = pc.upgrade() else { return };
            let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
            if stats::from_report(&report, 0, 0).candidate_type.as_deref() != Some("relay") {
                debug!("connected without a relay: no more relay flushing");
                return;
            }
            relayed = true;
        }
        let Ok(threshold) = chat.buffered_amount_low_threshold().await else {
            return;
        };
        if chat
            .set_buffered_amount_low_threshold(threshold)
            .await
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assembler_waits_longer_when_repairs_are_slow() {
        assert_eq!(video_wait(None), VIDEO_MAX_LATE_TIME);
        let fast = video_wait(Some(Duration::from_millis(20)));
        assert_eq!(fast, VIDEO_MAX_LATE_TIME, "a fast path keeps the floor");
        let slow = video_wait(Some(Duration::from_millis(300)));
        assert_eq!(slow, Duration::from_millis(800), "a repair and one repeat");
        assert_eq!(video_wait(Some(Duration::from_secs(2))), VIDEO_MAX_LATE_CAP);
    }
}
