//! Where a [`PeerLink`](super::PeerLink) delivers received media: the [`MediaInlet`].
//!
//! Received RTP never goes through the link's event channel. The poll task of the remote video
//! track reassembles access units and pushes each one into [`MediaInlet::video`]; the poll task
//! of the remote audio track stamps every Opus packet with its arrival time
//! ([`CaptureTime::now`], taken as the packet leaves the link) and pushes it into
//! [`MediaInlet::audio`]. Both pushes run on the poll task itself, so media never waits behind
//! the owner's handling of control events (stats, negotiation, chat).
//!
//! Contract for implementors of [`VideoInlet`] and [`AudioInlet`]:
//! - `push_*` is called on a tokio worker thread, once per frame or packet, in arrival order. It
//!   must not block (no waiting on a full queue, no lock held by a slow thread): a bounded
//!   queue that drops its oldest item and counts the drop is the intended shape, and
//!   [`DropOldestSender`] implements both traits that way.
//! - After [`PeerLink::close`](super::PeerLink::close) the poll loops stop; a push already under
//!   way may still complete, so a consumer that must stop receiving owns that guarantee itself
//!   (the engine's decoder thread does, by ending).

use std::sync::Arc;

use bytes::Bytes;

use crate::media::CaptureTime;
use crate::media::drop_oldest::DropOldestSender;
use crate::media::jitter_buffer::RtpAudioPacket;
use crate::media::mixer::ArrivedPacket;

/// One received, complete H.264 access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedFrame {
    /// Annex-B access unit (start-code prefixed NAL units).
    pub data: Bytes,
    /// RTP timestamp (90 kHz clock) of the access unit.
    pub rtp_timestamp: u32,
    /// Packets were lost before this frame: decoding may fail until the next keyframe.
    pub lost_before: bool,
}

/// Takes received video access units from a link's poll task. See the module docs.
pub trait VideoInlet: Send + Sync + 'static {
    /// Accepts one access unit; never blocks.
    fn push_frame(&self, frame: ReceivedFrame);
}

/// Takes received Opus packets from a link's poll task. See the module docs.
pub trait AudioInlet: Send + Sync + 'static {
    /// Accepts one packet (in arrival order, not reordered) with its arrival time; never blocks.
    fn push_packet(&self, packet: RtpAudioPacket, arrival: CaptureTime);
}

impl VideoInlet for DropOldestSender<ReceivedFrame> {
    fn push_frame(&self, frame: ReceivedFrame) {
        // Drops are counted by the channel; a disconnected consumer means nobody wants it.
        let _ = self.send(frame);
    }
}

impl AudioInlet for DropOldestSender<ArrivedPacket> {
    fn push_packet(&self, packet: RtpAudioPacket, arrival: CaptureTime) {
        let _ = self.send(ArrivedPacket { packet, arrival });
    }
}

/// Discards what it is given: for a link whose media nobody consumes (or a kind with no
/// decoder).
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl VideoInlet for Discard {
    fn push_frame(&self, _frame: ReceivedFrame) {}
}

impl AudioInlet for Discard {
    fn push_packet(&self, _packet: RtpAudioPacket, _arrival: CaptureTime) {}
}

/// The two destinations of a link's received media, given to
/// [`PeerLink::new`](super::PeerLink::new).
#[derive(Clone)]
pub struct MediaInlet {
    video: Arc<dyn VideoInlet>,
    screen: Arc<dyn VideoInlet>,
    audio: Arc<dyn AudioInlet>,
}

impl std::fmt::Debug for MediaInlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaInlet").finish_non_exhaustive()
    }
}

impl MediaInlet {
    /// Video access units go to `video`, Opus packets to `audio`; a shared screen is
    /// discarded (see [`MediaInlet::with_screen`]).
    pub fn new(video: impl VideoInlet, audio: impl AudioInlet) -> Self {
        Self {
            video: Arc::new(video),
            screen: Arc::new(Discard),
            audio: Arc::new(audio),
        }
    }

    /// The remote's shared screen goes to `screen`.
    #[must_use]
    pub fn with_screen(mut self, screen: impl VideoInlet) -> Self {
        self.screen = Arc::new(screen);
        self
    }

    /// Where access units of the remote's camera (or screen) go.
    #[must_use]
    pub fn video_for(&self, role: crate::api::VideoRole) -> &Arc<dyn VideoInlet> {
        match role {
            crate::api::VideoRole::Camera => &self.video,
            crate::api::VideoRole::Screen => &self.screen,
        }
    }

    /// An inlet that discards all received media.
    #[must_use]
    #[cfg(any(test, feature = "testing"))]
    pub fn discard() -> Self {
        Self::new(Discard, Discard)
    }

    /// Where received video access units of the camera go (tests; links use
    /// [`MediaInlet::video_for`]).
    #[must_use]
    #[cfg(any(test, feature = "testing"))]
    pub fn video(&self) -> &Arc<dyn VideoInlet> {
        &self.video
    }

    /// Where received Opus packets go.
    #[must_use]
    pub fn audio(&self) -> &Arc<dyn AudioInlet> {
        &self.audio
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is the test failing, with its message"
    )]

    use super::*;
    use crate::media::drop_oldest;

    fn packet(seq: u16) -> RtpAudioPacket {
        RtpAudioPacket {
            seq,
            timestamp: u32::from(seq) * 960,
            payload: vec![0xfc, seq as u8],
        }
    }

    fn frame(n: u8) -> ReceivedFrame {
        ReceivedFrame {
            data: Bytes::from(vec![0, 0, 0, 1, 0x41, n]),
            rtp_timestamp: u32::from(n) * 3000,
            lost_before: false,
        }
    }

    #[test]
    fn a_full_audio_inlet_drops_and_counts_the_oldest_packets() {
        let (tx, rx) = drop_oldest::channel::<ArrivedPacket>(3);
        let counter = tx.drop_counter();
        let inlet = MediaInlet::new(Discard, tx);
        for seq in 0..5u16 {
            inlet.audio().push_packet(
                packet(seq),
                CaptureTime::from_micros(u64::from(seq) * 20_000),
            );
        }
        assert_eq!(counter.get(), 2, "capacity 3, five pushed");
        let kept: Vec<_> = rx.try_iter().collect();
        assert_eq!(
            kept.iter().map(|p| p.packet.seq).collect::<Vec<_>>(),
            vec![2, 3, 4],
            "the newest stay, in order"
        );
        assert_eq!(
            kept[0].arrival,
            CaptureTime::from_micros(40_000),
            "the arrival time travels with its packet"
        );
    }

    #[test]
    fn a_full_video_inlet_drops_and_counts_the_oldest_frames() {
        let (tx, rx) = drop_oldest::channel::<ReceivedFrame>(2);
        let counter = tx.drop_counter();
        let inlet = MediaInlet::new(tx, Discard);
        for n in 0..4u8 {
            inlet.video().push_frame(frame(n));
        }
        assert_eq!(counter.get(), 2);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![frame(2), frame(3)]);
    }

    #[test]
    fn an_inlet_whose_consumer_is_gone_discards_without_counting() {
        let (tx, rx) = drop_oldest::channel::<ReceivedFrame>(1);
        let counter = tx.drop_counter();
        drop(rx);
        let inlet = MediaInlet::new(tx, Discard);
        for n in 0..3u8 {
            inlet.video().push_frame(frame(n));
        }
        assert_eq!(counter.get(), 0, "nothing queued, so nothing evicted");
    }
}
