//! Our shared screen on one connection: a second video track, added and removed while the call
//! runs ([`PeerLink::start_screen`], [`PeerLink::stop_screen`]), and the remote's announcement
//! of which of its tracks is its screen ([`PeerLink::set_remote_screen_stream`]).
//!
//! Contract: adding or removing the track changes what the next offer says, nothing more: the
//! caller (the session's perfect negotiation) sends that offer. Until a negotiation has put the
//! track's SSRC into our description and the answer left video flowing,
//! [`PeerLink::write_screen`] drops samples, so no RTP leaves on an SSRC the far end was never
//! told about. The track is in its own msid stream named `confab-screen-<8 hex>`, which is how
//! a Confab receiver tells it from the camera; browsers learn it from the media-state message.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tracing::{debug, info};

use super::events::PeerError;
use super::local_tracks::{LocalMedia, random_ssrc};
use super::shared::{library_error, lock};
use super::{PeerLink, codecs, tasks};
use crate::api::VideoRole;

/// The screen's local track and the task draining its RTCP.
pub(super) struct ScreenTrack {
    pub(super) media: Arc<LocalMedia>,
    rtcp: tokio::task::AbortHandle,
}

impl PeerLink {
    /// Adds our screen track in msid stream `stream_id` (a new SSRC each time); the next
    /// offer carries it. Does nothing if one is there already.
    ///
    /// # Errors
    /// [`PeerError::Setup`] if the library refuses the track; [`PeerError::Closed`] after close.
    pub async fn start_screen(&self, stream_id: &str) -> Result<(), PeerError> {
        self.check_open()?;
        if lock(&self.screen).is_some() {
            return Ok(());
        }
        let taken = [self.video.ssrc, self.audio.ssrc];
        let ssrc = fresh_ssrc(&taken);
        let rtx = fresh_ssrc(&[taken[0], taken[1], ssrc]);
        let media = LocalMedia::new(
            &self.pc,
            stream_id,
            RtpCodecKind::Video,
            "screen",
            codecs::h264(),
            ssrc,
            Some(rtx),
        )
        .await?;
        // Not live until a negotiation carries it (see the module docs).
        media.live.store(false, Ordering::Release);
        let rtcp = self.shared.spawn_abortable(tasks::local_rtcp_loop(
            Arc::clone(&self.shared),
            Arc::clone(&media.track),
            Some(VideoRole::Screen),
        ));
        info!(stream_id, ssrc, "screen track added");
        *lock(&self.screen) = Some(ScreenTrack {
            media: Arc::new(media),
            rtcp,
        });
        Ok(())
    }

    /// Removes our screen track (the next offer stops it); false if there was none.
    ///
    /// # Errors
    /// [`PeerError::Negotiation`] if the library refuses; [`PeerError::Closed`] after close.
    pub async fn stop_screen(&self) -> Result<bool, PeerError> {
        self.check_open()?;
        let Some(track) = lock(&self.screen).take() else {
            return Ok(false);
        };
        track.rtcp.abort();
        track.media.live.store(false, Ordering::Release);
        self.pc
            .remove_track(&track.media.sender)
            .await
            .map_err(|e| PeerError::Negotiation(library_error("remove_track(screen)", &e)))?;
        info!(ssrc = track.media.ssrc, "screen track removed");
        Ok(true)
    }

    /// Sends one H.264 access unit of our screen; dropped while not connected, without a
    /// screen track, or before it is negotiated.
    ///
    /// # Errors
    /// As [`PeerLink::write_video`].
    pub async fn write_screen(
        &self,
        access_unit: Bytes,
        duration: Duration,
    ) -> Result<(), PeerError> {
        self.check_open()?;
        if !self.is_connected() {
            return Ok(());
        }
        let media = lock(&self.screen).as_ref().map(|t| Arc::clone(&t.media));
        match media {
            Some(media) => media.write(access_unit, duration).await,
            None => Ok(()),
        }
    }

    /// The msid stream id the remote announced for its screen (`None`: not sharing), from its
    /// media-state message: how a browser's screen track is told from its camera.
    pub fn set_remote_screen_stream(&self, stream_id: Option<String>) {
        let mut current = lock(&self.shared.remote_screen_stream);
        if *current != stream_id {
            debug!(?stream_id, "remote screen stream");
            *current = stream_id;
        }
    }

    /// After a negotiation: the screen track flows if our description (`local_sdp`) names its
    /// SSRC and the answer left video live.
    pub(super) fn screen_negotiated(&self, local_sdp: &str, video_live: bool) {
        let guard = lock(&self.screen);
        let Some(track) = guard.as_ref() else { return };
        track.media.forget_payload_type();
        let named = local_sdp.contains(&format!("a=ssrc:{} ", track.media.ssrc));
        let live = named && video_live;
        if track.media.live.swap(live, Ordering::AcqRel) != live {
            info!(live, "screen track negotiated");
            if live {
                // The keyframe the share started with was dropped while the track was not
                // live: the far end needs one now to show anything.
                self.shared
                    .emit(super::events::PeerEvent::ScreenKeyframeRequested);
            }
        }
    }
}

/// A random SSRC none of `taken`.
fn fresh_ssrc(taken: &[u32]) -> u32 {
    loop {
        let ssrc = random_ssrc(taken[0]);
        if !taken.contains(&ssrc) {
            return ssrc;
        }
    }
}
