//! The codecs and RTCP feedback a Confab peer connection offers.
//!
//! Exactly one video codec (plus its retransmission format) and one audio codec are registered, so negotiation with another
//! Confab peer always lands on the same payload types, and a browser can only match these:
//!
//! - H.264 constrained baseline, `profile-level-id=42e01f;packetization-mode=1`, PT 102, with
//!   `nack`, `nack pli`, `ccm fir`, `goog-remb` and `transport-cc` feedback.
//! - Opus 48 kHz stereo, `minptime=10;useinbandfec=1`, PT 111, with `transport-cc`.
//!
//! - RTX (RFC 4588) for that H.264, `video/rtx` PT 103 with `apt=102`: NACKed packets are
//!   resent on a separate SSRC (announced as `a=ssrc-group:FID <media> <rtx>`) with the original
//!   sequence number in front of the payload, so a retransmission never looks like a reordered
//!   or duplicated original and the receiver's loss statistics stay those of the path. A peer
//!   that does not answer with RTX gets retransmissions on the media SSRC instead (the library
//!   drops the repair flow from the sender when the answer lacks the codec).
//!
//! The payload type a remote peer actually negotiated may differ from the numbers above (a
//! browser answering our offer keeps ours, but a browser's own offer uses its numbering); the
//! sender always reads the negotiated one from the RTP sender's parameters.

use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_RTX, MediaEngine,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};

/// Payload type we register for H.264.
pub const H264_PAYLOAD_TYPE: u8 = 102;
/// Payload type we register for RTX of H.264 (`apt=` [`H264_PAYLOAD_TYPE`]).
pub const H264_RTX_PAYLOAD_TYPE: u8 = 103;
/// Payload type we register for Opus.
pub const OPUS_PAYLOAD_TYPE: u8 = 111;
/// RTP clock rate of video.
pub const VIDEO_CLOCK_RATE: u32 = 90_000;
/// RTP clock rate of Opus (always 48 kHz on the wire, RFC 7587).
pub const AUDIO_CLOCK_RATE: u32 = 48_000;

fn feedback(typ: &str, parameter: &str) -> RTCPFeedback {
    RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    }
}

/// The H.264 codec description (also selects the H.264 payloader of a sample track).
pub fn h264() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: VIDEO_CLOCK_RATE,
        channels: 0,
        sdp_fmtp_line: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
            .to_owned(),
        rtcp_feedback: vec![
            feedback("goog-remb", ""),
            feedback("ccm", "fir"),
            feedback("nack", ""),
            feedback("nack", "pli"),
            feedback("transport-cc", ""),
        ],
    }
}

/// The RTX codec description repairing [`h264`] at payload type `apt` (RFC 4588 §8.6: same
/// clock rate as the codec it repairs, no feedback of its own).
pub fn h264_rtx(apt: u8) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_RTX.to_owned(),
        clock_rate: VIDEO_CLOCK_RATE,
        channels: 0,
        sdp_fmtp_line: format!("apt={apt}"),
        rtcp_feedback: Vec::new(),
    }
}

/// The Opus codec description.
pub fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: AUDIO_CLOCK_RATE,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![feedback("transport-cc", "")],
    }
}

/// A media engine with only [`h264`], its [`h264_rtx`] and [`opus`] registered.
///
/// Interceptor helpers (`register_default_interceptors`, `configure_congestion_control`) add
/// header extensions and feedback to this engine, so they must be applied to it afterwards.
///
/// # Errors
/// The library's error if it rejects a codec (it does not for these).
pub fn media_engine() -> Result<MediaEngine, rtc::shared::error::Error> {
    let mut engine = MediaEngine::default();
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: h264(),
            payload_type: H264_PAYLOAD_TYPE,
        },
        RtpCodecKind::Video,
    )?;
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: h264_rtx(H264_PAYLOAD_TYPE),
            payload_type: H264_RTX_PAYLOAD_TYPE,
        },
        RtpCodecKind::Video,
    )?;
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus(),
            payload_type: OPUS_PAYLOAD_TYPE,
        },
        RtpCodecKind::Audio,
    )?;
    Ok(engine)
}
