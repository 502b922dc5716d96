//! NACK generation that understands RTX (RFC 4588), replacing the crate's `NackGenerator`.
//!
//! The 0.21.1 generator keeps a receive log per bound SSRC and re-NACKs every hole in it on a
//! fixed 100 ms tick, with no retry limit. With RTX negotiated, a repaired packet arrives on the
//! *RTX* SSRC (the chain sees it before the endpoint de-encapsulates it), so the primary log never
//! learns the hole was filled: every lost packet would be NACKed, and retransmitted, about every
//! 100 ms until it scrolled out of the 512-packet log, roughly 30 times. It also NACKs the RTX
//! flow's own sequence gaps, which no sender can answer.
//!
//! [`NackGenerator`] sits in the crate's `NackGenerator` slot and:
//! - tracks each bound stream that negotiated generic `nack`, and maps its RTX SSRC (from the
//!   binding's `ssrc_rtx`) to it: a packet on the RTX SSRC marks its original sequence number
//!   (the first two payload bytes) as received. The RTX flow itself is never NACKed;
//! - NACKs a hole [`REORDER_GRACE`] after it is seen (not at the next tick), and again every
//!   [`NackGenerator::resend_interval`] (1.5 × the measured repair time, clamped to
//!   [`MIN_RESEND`]..[`MAX_RESEND`]) while it stays open, so a lost retransmission is asked for
//!   again about one round trip later;
//! - gives up on a hole after [`MAX_SENDS`] NACKs or [`MAX_AGE`], and treats a jump of more than
//!   [`MAX_GAP`] packets (an outage, a restarted sender) as a discontinuity, not as loss to
//!   repair: the frame assembler skips it and the receiver asks for a keyframe instead.
//!
//! Packets pass through untouched in both directions; the only output of its own is RTCP
//! `TransportLayerNack`, written above the pacer (so it is paced like all RTCP).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtc::interceptor::{AttributedPacket, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};
use rtc::sansio::Protocol;
use rtc::shared::TransportContext;
use rtc::shared::error::Error;

/// How long a hole is left alone before the first NACK: packets reordered by the path arrive
/// within a few milliseconds.
pub const REORDER_GRACE: Duration = Duration::from_millis(5);
/// Fastest re-NACK of the same packet: a little over the sender's
/// [`super::rtx_guard::MIN_REPEAT`], so a re-NACK on a fast path is answered rather than
/// refused as a repeat. At 10 % loss a quarter of the holes need a second or third round; at
/// the old 20 ms floor those rounds were what made pictures 40-70 ms late on a 1 ms path.
pub const MIN_RESEND: Duration = Duration::from_millis(12);
/// Re-NACK interval before any repair time is measured.
pub const INITIAL_RESEND: Duration = Duration::from_millis(150);
/// Slowest re-NACK of the same packet. Repairs that take long mean a long queue on the way
/// (a rate-limited path, a sender's backed-up pacer): asking again before the first repair can
/// arrive only makes the sender queue the same packet twice, and on a path already at its rate
/// that feeds the queue that made the repair slow (measured at `rate=600kbit`: ~3 NACKs and
/// retransmissions per hole, a pacer backlog of seconds). So the interval follows the measured
/// repair time up to half a second.
pub const MAX_RESEND: Duration = Duration::from_millis(500);
/// NACKs per missing packet before it is given up.
pub const MAX_SENDS: u8 = 8;
/// Age after which a hole is given up: matches the sender's history (about 1 s at the highest
/// bitrate) and is well past the frame assembler's wait.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// A sequence jump larger than this is a discontinuity, not loss worth repairing.
pub const MAX_GAP: u64 = 400;

/// The generator's smoothed repair time (NACK to retransmission), shared with the link's frame
/// assembler so it waits long enough for a repair on a slow path. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RepairTimeCell(Arc<AtomicU64>);

impl RepairTimeCell {
    /// The latest smoothed repair time, `None` before the first repair.
    pub fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }

    fn set(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.0.store(micros, Ordering::Relaxed);
    }
}

/// One open hole.
#[derive(Debug, Clone, Copy)]
struct Missing {
    detected: Instant,
    last_sent: Option<Instant>,
    sends: u8,
}

/// The receive state of one primary stream.
#[derive(Debug, Default)]
struct StreamLog {
    highest: Option<u64>,
    missing: BTreeMap<u64, Missing>,
}

impl StreamLog {
    /// Extends `seq` relative to the highest seen.
    fn extend(&self, seq: u16) -> u64 {
        match self.highest {
            None => (1u64 << 16) + u64::from(seq),
            Some(h) => {
                let delta = i64::from(seq.wrapping_sub(h as u16) as i16);
                (h as i64 + delta).max(0) as u64
            }
        }
    }

    /// Records `seq` as received; returns how long its hole was NACKed for (a repair time
    /// sample) when it filled one after a NACK.
    fn received(&mut self, now: Instant, seq: u16) -> Option<Duration> {
        let ext = self.extend(seq);
        match self.highest {
            None => {
                self.highest = Some(ext);
                None
            }
            Some(h) if ext > h => {
                if ext - h > MAX_GAP {
                    self.missing.clear();
                } else {
                    for s in h + 1..ext {
                        self.missing.insert(
                            s,
                            Missing {
                                detected: now,
                                last_sent: None,
                                sends: 0,
                            },
                        );
                    }
                }
                self.highest = Some(ext);
                None
            }
            Some(_) => {
                let hole = self.missing.remove(&ext)?;
                hole.last_sent.map(|t| now.saturating_duration_since(t))
            }
        }
    }

    /// Sequence numbers due for a NACK now, updating their state; drops holes given up.
    fn due(&mut self, now: Instant, resend: Duration) -> Vec<u16> {
        self.missing.retain(|_, m| {
            m.sends < MAX_SENDS && now.saturating_duration_since(m.detected) < MAX_AGE
        });
        let mut out = Vec::new();
        for (&seq, m) in &mut self.missing {
            let due = match m.last_sent {
                None => m.detected + REORDER_GRACE,
                Some(t) => t + resend,
            };
            if now >= due {
                m.last_sent = Some(now);
                m.sends += 1;
                out.push(seq as u16);
            }
        }
        out
    }

    /// When the next hole becomes due, if any.
    fn next_due(&self, resend: Duration) -> Option<Instant> {
        self.missing
            .values()
            .map(|m| match m.last_sent {
                None => m.detected + REORDER_GRACE,
                Some(t) => t + resend,
            })
            .min()
    }
}

/// See the module docs.
pub struct NackGenerator {
    sender_ssrc: u32,
    streams: HashMap<u32, StreamLog>,
    rtx_to_primary: HashMap<u32, u32>,
    /// Smoothed time from a NACK to the repair's arrival, once measured.
    repair_time: Option<Duration>,
    /// Where `repair_time` is published.
    repair_cell: RepairTimeCell,
    next_timeout: Option<Instant>,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl NackGenerator {
    /// A generator signing its NACKs with `sender_ssrc`.
    #[cfg(test)]
    pub fn new(sender_ssrc: u32) -> Self {
        Self::with_repair_cell(sender_ssrc, RepairTimeCell::default())
    }

    /// A generator signing its NACKs with `sender_ssrc` and publishing its repair time in
    /// `repair_cell`.
    pub fn with_repair_cell(sender_ssrc: u32, repair_cell: RepairTimeCell) -> Self {
        Self {
            sender_ssrc,
            streams: HashMap::new(),
            rtx_to_primary: HashMap::new(),
            repair_time: None,
            repair_cell,
            next_timeout: None,
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        }
    }

    /// Time between two NACKs of the same packet.
    pub fn resend_interval(&self) -> Duration {
        self.repair_time.map_or(INITIAL_RESEND, |rtt| {
            (rtt * 3 / 2 + Duration::from_millis(5)).clamp(MIN_RESEND, MAX_RESEND)
        })
    }

    fn on_repair_sample(&mut self, sample: Duration) {
        let smoothed = match self.repair_time {
            None => sample,
            Some(old) => (old * 7 + sample) / 8,
        };
        self.repair_time = Some(smoothed);
        self.repair_cell.set(smoothed);
    }

    fn reschedule(&mut self) {
        let resend = self.resend_interval();
        self.next_timeout = self
            .streams
            .values()
            .filter_map(|s| s.next_due(resend))
            .min();
    }

    fn on_rtp(&mut self, now: Instant, packet: &rtc::rtp::Packet) {
        let ssrc = packet.header.ssrc;
        let (primary, seq) = match self.rtx_to_primary.get(&ssrc) {
            Some(&primary) => {
                let Some(osn) = packet.payload.get(..2) else {
                    return;
                };
                (primary, u16::from_be_bytes([osn[0], osn[1]]))
            }
            None => (ssrc, packet.header.sequence_number),
        };
        let Some(log) = self.streams.get_mut(&primary) else {
            return;
        };
        if let Some(sample) = log.received(now, seq) {
            self.on_repair_sample(sample);
        }
        // Holes are few (a handful per second at 5 % loss), so a full rescan is cheap.
        self.reschedule();
    }
}

/// Whether the stream negotiated generic NACK (`a=rtcp-fb:<pt> nack`, not `nack pli`).
fn supports_nack(info: &StreamInfo) -> bool {
    info.rtcp_feedback
        .iter()
        .any(|fb| fb.typ.eq_ignore_ascii_case("nack") && fb.parameter.is_empty())
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for NackGenerator {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtp(packet) = &msg.message.packet {
            self.on_rtp(msg.now, packet);
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if self.next_timeout.is_none_or(|t| now < t) {
            return Ok(());
        }
        let resend = self.resend_interval();
        for (&media_ssrc, log) in &mut self.streams {
            let due = log.due(now, resend);
            if due.is_empty() {
                continue;
            }
            let nack = TransportLayerNack {
                sender_ssrc: self.sender_ssrc,
                media_ssrc,
                nacks: nack_pairs_from_sequence_numbers(&due),
            };
            self.writes.push_back(TaggedPacket {
                now,
                transport: TransportContext::default(),
                message: AttributedPacket::new(Packet::Rtcp(vec![Box::new(nack)])),
            });
        }
        self.reschedule();
        // The contract: a deadline must lie after the `now` just handled.
        if let Some(t) = self.next_timeout
            && t <= now
        {
            self.next_timeout = Some(now + Duration::from_millis(1));
        }
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.next_timeout
    }
}

impl Interceptor for NackGenerator {
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        // The crate binds an RTX flow twice: as the primary's `ssrc_rtx`, then on its own.
        if self.rtx_to_primary.contains_key(&info.ssrc) || !supports_nack(info) {
            return;
        }
        self.streams.entry(info.ssrc).or_default();
        if let Some(rtx) = info.ssrc_rtx {
            self.rtx_to_primary.insert(rtx, info.ssrc);
            self.streams.remove(&rtx);
        }
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        if self.streams.remove(&info.ssrc).is_some() {
            self.rtx_to_primary
                .retain(|_, primary| *primary != info.ssrc);
        }
    }

    fn bind_local_stream(&mut self, _info: &StreamInfo) {}

    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
#[path = "nack_tests.rs"]
mod tests;
