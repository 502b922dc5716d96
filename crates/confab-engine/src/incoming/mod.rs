//! Incoming media: per-participant video decoder threads and the audio playout thread.
//!
//! Received media does not pass through the session task. Each participant's [`PeerLink`]
//! gets a [`MediaInlet`] when it is created (`receive_inlet`), and its RTP poll tasks push
//! straight into it:
//!
//! ```text
//! link's video poll task --ReceivedFrame--> DecoderInlet --[drop-oldest, 30]--> confab-video-dec-<id>
//!                   (screen track)          DecoderInlet --[drop-oldest, 30]--> confab-screen-dec-<id>
//! link's audio poll task --ArrivedPacket--> mixer inlet  --[drop-oldest, 100]--> jitter buffer
//!                                                           (moved by the playout thread's pull)
//! ```
//!
//! Video: every access unit goes into that participant's decoder queue (one decoder for its
//! camera, one for its shared screen; the link tells them apart, see `peer::shared`), a bounded
//! [`drop_oldest`](crate::media::drop_oldest) channel: when the decoder is behind, the oldest queued unit is evicted
//! (counted as *dropped, decoder behind*) and a keyframe is asked for at once. Units carry a
//! running index, so the decoder sees the hole an eviction leaves and skips to the next keyframe
//! instead of decoding units whose references are gone. Dropping the oldest (rather than
//! refusing the newest) means the decoder gets back to the live picture as soon as the keyframe
//! arrives, instead of first decoding a queue of stale ones. Decoded pictures go to the UI over
//! a drop-oldest channel and the repaint callback wakes it. The thread decodes only what can
//! decode: before the first keyframe, and after lost packets, a decode error or a queue
//! overflow, it skips units until the next IDR and asks the session for a PLI (the session
//! rate-limits them), so a missing reference is never fed to openh264 and never shown as a
//! corrupt picture.
//!
//! Why a picture did not reach the screen is counted separately (`DecodeCounters`, exposed in
//! [`super::api::ParticipantStats`]), because the remedies differ:
//! - **decode errors**: openh264 rejected a unit that should have decoded (corrupt or
//!   undecodable data: a sender or network problem);
//! - **skipped awaiting a keyframe**: units whose references were missing (stream joined
//!   mid-GOP, loss, or one of the drops below);
//! - **dropped, decoder behind**: evicted from the full decode queue (our CPU, not the
//!   network);
//! - **dropped, consumer slow**: decoded pictures the app did not take in time (the UI thread or
//!   `confab join` loop, not the decoder).
//!
//! Audio: the poll task stamps each Opus packet with its arrival time as it leaves the link
//! and sends it into the participant's inlet queue in the shared mixer
//! ([`AudioMixer::add_participant_with_inlet`]) without taking the mixer lock. The playout
//! thread, which pulls 20 ms from the mixer on a steady clock, first moves the queued packets
//! into their jitter buffers. The jitter buffer cannot play a packet before the next pull in
//! any case, so this costs no latency, and the poll task never waits while the playout thread
//! holds the lock to decode and mix. The mix goes to the audio sink (and the probe). The inlet
//! holds as many packets as a jitter buffer, so it drops only if playout stalls for seconds;
//! those drops are counted ([`AudioMixer::inlet_dropped`]).
//!
//! Contract: once a participant's `VideoDecoderThread` is dropped (participant left), no frame
//! of that participant is delivered any more, even if its link still pushes into the inlet
//! (pushes then find the queue disconnected and are discarded).
//!
//! | module | owns |
//! |---|---|
//! | `video_decoder` | `DecoderInlet`, the decode queue, `VideoDecoderThread`, `DecodeCounters` |
//! | `playout` | `PlayoutThread`, `PlayoutControls`, speaker switches |
//!
//! Both threads run as the engine's [`Worker`](crate::worker::Worker): named, stopped and
//! joined when their handle is dropped, a spawn failure an [`EngineError`](crate::EngineError).

mod playout;
mod speaking;
mod video_decoder;

use std::sync::{Arc, Mutex};

use signaling_client::ParticipantId;

use super::media::drop_oldest::DropOldestSender;
use super::media::mixer::{ArrivedPacket, AudioMixer};
use super::media::opus_codec::OpusDecoder;
#[cfg(doc)]
use super::peer::PeerLink;
use super::peer::{Discard, MediaInlet};

pub(crate) use playout::{PlayoutControls, PlayoutThread};
pub(crate) use video_decoder::{DecodeCounters, VideoDecoderThread};

/// The mixer shared by the session (push) and the playout thread (pull).
pub(crate) type SharedMixer = Arc<Mutex<AudioMixer<ParticipantId, OpusDecoder>>>;

/// The inlet for a new participant's link: its camera to `decoder`, its screen to `screen`,
/// audio to the mixer through `audio` (from [`AudioMixer::add_participant_with_inlet`]), or
/// discarded without one.
pub(crate) fn receive_inlet(
    decoder: &VideoDecoderThread,
    screen: &VideoDecoderThread,
    audio: Option<DropOldestSender<ArrivedPacket>>,
) -> MediaInlet {
    let inlet = match audio {
        Some(audio) => MediaInlet::new(decoder.inlet(), audio),
        None => MediaInlet::new(decoder.inlet(), Discard),
    };
    inlet.with_screen(screen.inlet())
}
