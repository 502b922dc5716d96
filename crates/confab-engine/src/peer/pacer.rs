//! The connection's pacer, [`PriorityPacer`], in the crate's `Slot::Pacer` instead of its FIFO
//! `PacerInterceptor`.
//!
//! Why not the crate's: it holds every RTP packet in one queue, so a retransmission or an audio
//! packet waits behind whatever video is queued. A large frame (a keyframe, a scene change:
//! 50-100 packets at 720p) leaves over tens of milliseconds at the pacing rate, and a
//! retransmission asked for while it leaves waited behind all of it: measured at 10 % loss,
//! repairs of packets early in such a frame arrived 60-120 ms after the loss, the smoothed repair
//! time grew, re-NACKs slowed down with it, and now and then a hole outlived the frame
//! assembler's wait, which costs a keyframe and half a second of frozen picture.
//!
//! Contract:
//! - RTP is released by one leaky bucket (the crate's [`Pacer`], its burst a tenth of a second at
//!   the rate), at the rate the congestion controller attaches to feedback on the read leg
//!   (`Attribute::TargetBitrateChanged`), exactly as the crate's pacer follows it;
//! - packets are released in strict priority: audio, then retransmissions, then video, each class
//!   first in, first out, so no stream is reordered within itself except a retransmission,
//!   which is out of order by nature. A retransmission is what the NACK responder tagged
//!   (`Attribute::Retransmission`) or anything on a bound stream's RTX SSRC;
//! - a class whose queue is full refuses the arrival (counted in [`PacerCounters`]) rather than
//!   evicting what is queued, which would leave a hole in the middle of a stream;
//! - RTCP is not paced; everything released gets the release instant as its `now`, so what is
//!   after the pacer on the write path (TWCC numbering, the send history) sees when it left.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Pacer, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use rtc::shared::marshal::MarshalSize;

/// Audio packets held before new ones are refused (about 2.5 s of 20 ms frames).
pub const AUDIO_QUEUE_PACKETS: usize = 128;
/// Retransmissions held before new ones are refused.
pub const REPAIR_QUEUE_PACKETS: usize = 256;

/// What a packet is, for the order of release (lower leaves first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Audio = 0,
    Repair = 1,
    Video = 2,
}

/// Packets each class refused because its queue was full; shared with the link's statistics.
#[derive(Debug, Clone, Default)]
pub struct PacerCounters(Arc<[AtomicU64; 3]>);

impl PacerCounters {
    fn count(&self, class: Class) {
        self.0[class as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Refused packets in all classes.
    pub fn refused(&self) -> u64 {
        self.0.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// See the module docs.
pub struct PriorityPacer {
    bucket: Pacer,
    /// Local SSRC to class, from the bound streams (unknown SSRCs are video).
    classes: HashMap<u32, Class>,
    /// One queue per [`Class`], indexed by it.
    queues: [VecDeque<TaggedPacket>; 3],
    limits: [usize; 3],
    counters: PacerCounters,
    /// Released packets and unpaced RTCP, waiting to join the belt.
    write_queue: VecDeque<TaggedPacket>,
    read_queue: VecDeque<TaggedPacket>,
}

impl PriorityPacer {
    /// Paces at `bits_per_second` until the congestion controller says otherwise, holding at most
    /// `video_queue` video packets.
    pub fn new(bits_per_second: f64, video_queue: usize, counters: PacerCounters) -> Self {
        Self {
            bucket: Pacer::new(bits_per_second),
            classes: HashMap::new(),
            queues: Default::default(),
            limits: [
                AUDIO_QUEUE_PACKETS,
                REPAIR_QUEUE_PACKETS,
                video_queue.max(1),
            ],
            counters,
            write_queue: VecDeque::new(),
            read_queue: VecDeque::new(),
        }
    }

    /// The rate being paced at, in bits per second.
    #[cfg(test)]
    pub fn rate(&self) -> f64 {
        self.bucket.target_bitrate()
    }

    fn class_of(&self, msg: &TaggedPacket, ssrc: u32) -> Class {
        if msg.message.has(&Attribute::Retransmission) {
            return Class::Repair;
        }
        self.classes.get(&ssrc).copied().unwrap_or(Class::Video)
    }

    /// The size the budget is charged for (RTP only; RTCP is not paced).
    fn bits_of(packet: &TaggedPacket) -> f64 {
        match &packet.message.packet {
            Packet::Rtp(rtp) => (rtp.marshal_size() * 8) as f64,
            _ => 0.0,
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for PriorityPacer {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        // The estimate rides feedback up the read leg (the controller is wire-most); observed,
        // not consumed, like the crate's pacer does.
        if let Some(Attribute::TargetBitrateChanged { bits_per_second }) =
            msg.message.get(&Attribute::TargetBitrateChanged {
                bits_per_second: 0.0,
            })
        {
            self.bucket.set_target_bitrate(*bits_per_second);
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        let ssrc = match &msg.message.packet {
            Packet::Rtp(rtp) => rtp.header.ssrc,
            // RTCP (and anything else): control, only useful while fresh, so not paced.
            _ => {
                self.write_queue.push_back(msg);
                return Ok(());
            }
        };
        // Current at enqueue time, so the deadline `poll_timeout` computes is never in the past.
        self.bucket.refill(msg.now);
        let class = self.class_of(&msg, ssrc);
        let queue = &mut self.queues[class as usize];
        if queue.len() >= self.limits[class as usize] {
            self.counters.count(class);
            return Ok(());
        }
        queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write_queue.pop_front()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.bucket.refill(now);
        // The first non-empty queue in class order holds the next packet to leave.
        while let Some(queue) = self.queues.iter_mut().find(|q| !q.is_empty()) {
            let bits = queue.front().map_or(0.0, Self::bits_of);
            // Strict priority: a lower class never skips a head that cannot go yet.
            if !self.bucket.can_release(bits) {
                break;
            }
            self.bucket.consume(bits);
            if let Some(mut packet) = queue.pop_front() {
                packet.now = now;
                self.write_queue.push_back(packet);
            }
        }
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let head = self.queues.iter().find_map(|q| q.front())?;
        self.bucket.releasable_at(Self::bits_of(head))
    }
}

impl Interceptor for PriorityPacer {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        let class = if info.mime_type.to_ascii_lowercase().starts_with("audio/") {
            Class::Audio
        } else {
            Class::Video
        };
        self.classes.insert(info.ssrc, class);
        if let Some(rtx) = info.ssrc_rtx {
            self.classes.insert(rtx, Class::Repair);
        }
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.classes.remove(&info.ssrc);
        if let Some(rtx) = info.ssrc_rtx {
            self.classes.remove(&rtx);
        }
    }

    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}

    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
#[path = "pacer_tests.rs"]
mod tests;
