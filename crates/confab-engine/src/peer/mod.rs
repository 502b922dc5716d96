//! One WebRTC peer connection to one remote participant: the [`PeerLink`].
//!
//! A `PeerLink` wraps a single webrtc-rs 0.21.1 `PeerConnection` with a fixed shape: one
//! sendrecv Opus audio track, one sendrecv H.264 video track and one reliable, ordered chat data
//! channel (plus, while we share a screen, a second H.264 track added and removed mid-call:
//! `screen_track`), out-of-band negotiated as `"chat"` with stream id 0 (both sides create it; a browser
//! peer does the same with `{negotiated: true, id: 0}`). Audio comes first in our offers, so it
//! is the BUNDLE-tagged section: a peer that rejects our video (no H.264, like Firefox without
//! its OpenH264 plugin) then keeps the transport, and audio and chat still connect.
//!
//! # Two ways out: control events and received media
//!
//! [`PeerLink::new`] takes two destinations, and nothing goes to the wrong one:
//!
//! - **Control events** ([`PeerEvent`]: candidates, gathering, negotiation needed, signalling
//!   and connection state, chat open and messages, keyframe requests) go on the unbounded
//!   channel. The connection's callbacks run on its driver task and only forward into it. The
//!   owner (the session task) may take its time with them: it may be awaiting
//!   [`PeerLink::stats`] or [`PeerLink::accept_offer`] meanwhile, and no media waits for it.
//! - **Received media** goes to the [`MediaInlet`], pushed by the poll task of the remote
//!   track itself (on a tokio worker; see `inlet` for the contract). Video RTP is reassembled
//!   into Annex-B access units ([`ReceivedFrame`]) by a `FrameAssembler` in that task; audio
//!   RTP goes out packet by packet, in arrival order, stamped with its arrival time
//!   ([`CaptureTime::now`](crate::media::CaptureTime::now)) as it leaves the link. The engine's
//!   inlet (see [`crate::incoming`]) is two bounded drop-oldest queues
//!   ([`crate::media::drop_oldest`]): one to the participant's decoder thread, one in front of
//!   its jitter buffer in the mixer; each counts what it drops, so a slow consumer costs the
//!   oldest media, never a blocked poll task or a growing delay.
//!
//! # A peer without H.264
//!
//! Answering an offer whose video section lists no H.264, the link removes its video track
//! first, so the answer rejects that section (port 0) and accepts audio and chat; an answer to
//! our offer may reject our video the same way. Either way [`PeerLink::video_negotiated`] turns
//! false and video writes are dropped; the track is not re-added later (see `sections`).
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
//!   first live section's `mid` and index and our current ICE ufrag. Remote candidates go to
//!   [`PeerLink::add_remote_candidate`]; they are buffered until a remote description exists, and
//!   candidates whose ufrag names another ICE generation than the remote description's are held
//!   back until a matching description arrives (so stale ones from before an ICE restart never
//!   reach the agent).
//! - **Sending media.** [`PeerLink::write_video`] takes one Annex-B access unit per call and
//!   [`PeerLink::write_audio`] one Opus packet; both are dropped (returning `Ok`) until the
//!   connection is [`ConnectionState::Connected`], and while their kind is not negotiated.
//!
//! # Timing properties worth knowing
//!
//! - A received video access unit is released the moment it is complete: its marker-bit
//!   packet has arrived and no packet before it is missing (see `assembler`). A missing packet
//!   holds later frames back for up to 300 ms (time for a NACK retransmission); then the
//!   incomplete frame is dropped whole and the next complete one is flagged `lost_before`.
//! - Received audio is not reordered or delayed here; the jitter buffer downstream does that.
//! - The bandwidth estimate ([`PeerLink::bandwidth_estimate_bps`]) starts at
//!   [`BitrateRange::start_bps`] and moves once media flows (TWCC feedback); a pacer sends at
//!   that rate, so the video encoder should follow it.
//!
//! # Module map
//!
//! | module | owns |
//! |---|---|
//! | `events` | the public value types: settings, [`PeerEvent`], [`ConnectionState`], [`PeerStats`], [`PeerError`] |
//! | `inlet` | [`MediaInlet`], [`VideoInlet`], [`AudioInlet`]: where received media goes |
//! | `setup` | building the connection (codecs, interceptors, GCC, pacer, ICE), [`PeerLink::new`] |
//! | `local_tracks` | our two local tracks and writing samples to them |
//! | `negotiation_glue` | offer/answer, rollback, remote candidates, signalling state |
//! | `shared` | state shared with the handler and poll tasks, and the event channel |
//! | `tasks` | the connection's event handler and the track/channel poll loops |
//! | `assembler` | RTP → H.264 access units, released as soon as complete |
//! | `codecs` | the H.264 and Opus registrations (PT 102 / 111, RTCP feedback) |
//! | `bwe` | GCC wrapped to publish its estimate |
//! | `keyframe` | the interceptor that lets inbound PLI/FIR reach the app |
//! | `loss_report` | the interceptor that reads the remote's reported loss of our audio |
//! | `rtx_guard` | the NACK responder behind a once-per-RTT rule and a retransmission budget |
//! | `pacer` | the pacer: one rate, released audio first, then retransmissions, then video |
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
//!   is dropped, so the receiver yields `None` once drained; the poll loops stop pushing media
//!   (a push already under way may complete). Dropping a `PeerLink` without `close` closes it in
//!   the background (if a tokio runtime is available).
//! - Nothing here panics on remote input: malformed SDP, candidates, RTP or chat text become
//!   errors or are dropped with a log line.

mod assembler;
mod bwe;
mod codecs;
mod events;
mod inlet;
mod keyframe;
mod local_tracks;
mod loss_report;
mod nack;
mod negotiation_glue;
mod pacer;
mod rtx_guard;
mod screen_track;
mod sections;
mod setup;
mod shared;
mod stats;
mod tasks;
#[cfg(test)]
mod test_packets;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use tracing::debug;
use webrtc::data_channel::DataChannel;
use webrtc::peer_connection::{PeerConnection, StatsSelector};

pub use events::{
    BitrateRange, ConnectionState, MAX_CHAT_BYTES, PeerError, PeerEvent, PeerSettings, PeerStats,
};
pub use inlet::{AudioInlet, Discard, MediaInlet, ReceivedFrame, VideoInlet};
pub(crate) use shared::SCREEN_STREAM_PREFIX;

use local_tracks::LocalMedia;
use negotiation_glue::Negotiation;
pub(crate) use sections::sdp_value;
use shared::{Shared, library_error, lock};

/// A WebRTC connection to one remote participant. See the module docs for the contract.
pub struct PeerLink {
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    negotiation: tokio::sync::Mutex<Negotiation>,
    video: LocalMedia,
    audio: LocalMedia,
    /// Our shared screen's track, while we share (`screen_track`).
    screen: std::sync::Mutex<Option<screen_track::ScreenTrack>>,
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

impl PeerLink {
    fn check_open(&self) -> Result<(), PeerError> {
        if self.shared.closed.load(Ordering::Acquire) {
            Err(PeerError::Closed)
        } else {
            Ok(())
        }
    }

    /// True while the signalling state is stable (no offer outstanding in either direction).
    #[cfg(any(test, feature = "testing"))]
    pub fn is_stable(&self) -> bool {
        self.shared.stable.load(Ordering::Acquire)
    }

    /// Whether the last negotiation left video flowing: false when the remote peer shares no
    /// video codec with us (it rejected our H.264, or offered none), so neither side sends
    /// video. True before the first negotiation.
    pub fn video_negotiated(&self) -> bool {
        self.video.live.load(Ordering::Acquire)
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

    /// Asks the remote peer for a keyframe of its camera or its screen (RTCP PLI). Does
    /// nothing until that track has delivered its first packet.
    ///
    /// # Errors
    /// [`PeerError::Media`] if the RTCP cannot be queued; [`PeerError::Closed`] after close.
    pub async fn request_keyframe(&self, role: crate::api::VideoRole) -> Result<(), PeerError> {
        self.check_open()?;
        let slot = match role {
            crate::api::VideoRole::Camera => &self.shared.remote_video,
            crate::api::VideoRole::Screen => &self.shared.remote_screen,
        };
        let target = lock(slot).as_ref().map(|v| (Arc::clone(&v.track), v.ssrc));
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
    #[cfg(any(test, feature = "testing"))]
    pub fn bandwidth_estimate_bps(&self) -> u64 {
        self.bwe.bps()
    }

    /// A statistics snapshot (see [`PeerStats`] for which fields mean what).
    pub async fn stats(&self) -> PeerStats {
        let report = self.pc.get_stats(Instant::now(), StatsSelector::None).await;
        let mut out = stats::from_report(
            &report,
            self.shared.keyframe_requests.load(Ordering::Relaxed),
            self.bwe.bps(),
        );
        out.audio_fraction_lost_remote = self.shared.reported_loss.audio_fraction_lost();
        out.retransmitted_bytes_sent = self.shared.rtx.bytes_resent();
        out.retransmissions_refused =
            self.shared.rtx.refused_repeat() + self.shared.rtx.refused_budget();
        out.pacer_refused = self.shared.pacer.refused();
        out
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
            sdp_value(&local.sdp, "a=fingerprint:")?.to_owned(),
            sdp_value(&remote.sdp, "a=fingerprint:")?.to_owned(),
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
        lock(&self.shared.remote_screen).take();
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
        lock(&self.shared.remote_screen).take();
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
