//! Our two local tracks and sending on them: [`LocalMedia`] wraps one
//! `TrackLocalStaticSample` with its `RtpSender`, the negotiated payload type and whether the
//! last negotiation left the kind flowing. The video track's encoding also names its RTX SSRC
//! (RFC 4588), which the library announces as `a=ssrc-group:FID` and hands to the NACK
//! responder with the negotiated RTX payload type; the samples themselves only ever go out on
//! the media SSRC.
//!
//! Contract: [`LocalMedia::write`] drops samples (returning `Ok`) while its kind is not live or
//! no payload type has been negotiated; it waits only on the library's send queue. The payload
//! type is read from the sender once per negotiation and cached
//! ([`LocalMedia::forget_payload_type`] after each one).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters,
    RtpCodecKind,
};
use tracing::debug;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::peer_connection::PeerConnection;
use webrtc::rtp_transceiver::RtpSender;

use super::events::PeerError;
use super::shared::library_error;

/// One local track with its sender.
pub(super) struct LocalMedia {
    pub(super) track: Arc<TrackLocalStaticSample>,
    pub(super) sender: Arc<dyn RtpSender>,
    pub(super) ssrc: u32,
    pub(super) mime_type: String,
    /// Negotiated payload type, [`NO_PAYLOAD_TYPE`] until read after a negotiation.
    pub(super) payload_type: AtomicU16,
    /// The last negotiation left this kind flowing (true before the first one).
    pub(super) live: AtomicBool,
    /// The track was removed to answer an offer without a codec of ours; never re-added.
    pub(super) removed: AtomicBool,
}

const NO_PAYLOAD_TYPE: u16 = u16::MAX;

impl LocalMedia {
    pub(super) async fn new(
        pc: &Arc<dyn PeerConnection>,
        stream_id: &str,
        kind: RtpCodecKind,
        id: &str,
        codec: RTCRtpCodec,
        ssrc: u32,
        rtx_ssrc: Option<u32>,
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
                            // Named here rather than minted by the library, so it is ours to
                            // log and distinct from the media SSRCs; the library still drops it
                            // when the media engine or the answer has no RTX codec.
                            rtx: rtx_ssrc.map(|ssrc| RTCRtpRtxParameters { ssrc }),
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
    pub(super) fn kind(&self) -> &'static str {
        if self.mime_type.to_ascii_lowercase().starts_with("video/") {
            "video"
        } else {
            "audio"
        }
    }

    /// The codec's encoding name as in `a=rtpmap` (`H264`, `opus`).
    pub(super) fn encoding_name(&self) -> &str {
        self.mime_type
            .split_once('/')
            .map_or(self.mime_type.as_str(), |(_, name)| name)
    }

    /// The negotiated payload type, read from the sender once per negotiation.
    pub(super) async fn payload_type(&self) -> Result<Option<u8>, PeerError> {
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

    pub(super) fn forget_payload_type(&self) {
        self.payload_type.store(NO_PAYLOAD_TYPE, Ordering::Release);
    }

    pub(super) async fn write(&self, data: Bytes, duration: Duration) -> Result<(), PeerError> {
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

/// A random non-zero SSRC, distinct from `other`.
pub(super) fn random_ssrc(other: u32) -> u32 {
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
