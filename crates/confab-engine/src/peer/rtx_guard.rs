//! The sender's side of loss repair: the crate's NACK responder behind a guard that decides
//! which NACKed packets are worth sending again.
//!
//! The 0.21.1 `NackResponderInterceptor` retransmits every sequence number of every NACK it
//! reads, as often as it is asked. On a path that is already full that is congestion collapse:
//! at `rate=600kbit` retransmissions took over half the link, the drop-tail queue lost a fifth of
//! everything, and each loss was NACKed and resent again (1 200 retransmissions in 20 s and no
//! picture at all). libwebrtc bounds retransmission in two ways, and [`RetransmissionGuard`] does
//! the same before the NACK reaches the responder:
//! - **once per round trip**: a packet already resent less than one RTT ago is not resent again
//!   (the first copy may still be on its way). The RTT is measured here from our RTCP sender
//!   reports and the remote's report blocks about them (RFC 3550 LSR/DLSR), and is
//!   [`DEFAULT_RTT`] until the first report;
//! - **a budget**: retransmissions may use at most [`RTX_SHARE`] of the current bandwidth
//!   estimate (a token bucket [`RTX_BURST`] deep, never below [`MIN_RTX_BPS`]); what is over the
//!   budget is refused, and the receiver's keyframe request heals the picture instead.
//!
//! Contract: it sits in the crate's `NackResponder` slot, so it sees every outgoing RTP packet
//! and RTCP sender report on the write leg (after the application-side generators) and every
//! inbound NACK before the responder. Everything else passes through untouched; a NACK goes on
//! with the refused sequence numbers removed. [`RtxCounters`] (shared with the link) counts the
//! bytes resent and the requests refused.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtc::interceptor::{
    Interceptor, NackResponderBuilder, NackResponderInterceptor, Packet, StreamInfo, TaggedPacket,
};
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

use super::bwe::EstimateCell;

/// Share of the bandwidth estimate retransmissions may use.
pub const RTX_SHARE: f64 = 0.5;
/// Depth of the retransmission budget, as time at its rate: a keyframe's worth of losses may be
/// repaired at once.
pub const RTX_BURST: Duration = Duration::from_millis(250);
/// The budget's rate never drops below this, so a low estimate still repairs a few packets.
pub const MIN_RTX_BPS: f64 = 40_000.0;
/// The round trip assumed before the first measurement (the first report block answering a
/// sender report comes 1-3 s into a call). It only spaces repeats of one packet, which the
/// budget bounds anyway: at the old 100 ms, a lost retransmission in the first seconds of a
/// call waited a tenth of a second for its next repair whatever the path (measured at 10 %
/// loss: re-NACKs at 20, 40, 60, 80 ms refused, pictures 110-150 ms late). Our own receivers
/// re-NACK no faster than [`super::nack::MIN_RESEND`]; this is a little more.
pub const DEFAULT_RTT: Duration = Duration::from_millis(20);
/// Shortest spacing between two retransmissions of one packet, whatever the RTT says.
pub const MIN_REPEAT: Duration = Duration::from_millis(10);
/// Sender reports remembered for matching the remote's LSR field.
const SENDER_REPORTS_KEPT: usize = 16;

/// What the guard did; shared with the link for statistics and the encoder's budget.
#[derive(Debug, Clone, Default)]
pub struct RtxCounters {
    bytes_resent: Arc<AtomicU64>,
    refused_repeat: Arc<AtomicU64>,
    refused_budget: Arc<AtomicU64>,
}

impl RtxCounters {
    /// Payload and header bytes of the packets let through to be resent (cumulative).
    pub fn bytes_resent(&self) -> u64 {
        self.bytes_resent.load(Ordering::Relaxed)
    }

    /// Requests refused because the packet was resent less than a round trip ago.
    pub fn refused_repeat(&self) -> u64 {
        self.refused_repeat.load(Ordering::Relaxed)
    }

    /// Requests refused because retransmissions were over their budget.
    pub fn refused_budget(&self) -> u64 {
        self.refused_budget.load(Ordering::Relaxed)
    }
}

/// One sent packet as the guard remembers it.
#[derive(Debug, Clone, Copy)]
struct Sent {
    seq: u16,
    bytes: u32,
    resent_at: Option<Instant>,
}

/// The packets of one local stream, indexed by sequence number modulo the history size.
struct History {
    slots: Vec<Option<Sent>>,
}

impl History {
    fn new(size: usize) -> Self {
        Self {
            slots: vec![None; size.max(1)],
        }
    }

    fn slot(&mut self, seq: u16) -> &mut Option<Sent> {
        let i = usize::from(seq) % self.slots.len();
        &mut self.slots[i]
    }

    fn record(&mut self, seq: u16, bytes: u32) {
        *self.slot(seq) = Some(Sent {
            seq,
            bytes,
            resent_at: None,
        });
    }

    fn get(&mut self, seq: u16) -> Option<&mut Sent> {
        self.slot(seq).as_mut().filter(|s| s.seq == seq)
    }
}

/// A token bucket in bits.
struct Budget {
    bits: f64,
    at: Option<Instant>,
}

impl Budget {
    fn refill(&mut self, now: Instant, rate_bps: f64) {
        let depth = rate_bps * RTX_BURST.as_secs_f64();
        self.bits = match self.at {
            None => depth,
            Some(t) => {
                (self.bits + now.saturating_duration_since(t).as_secs_f64() * rate_bps).min(depth)
            }
        };
        self.at = Some(now);
    }
}

/// See the module docs.
pub struct RetransmissionGuard {
    inner: NackResponderInterceptor,
    estimate: EstimateCell,
    counters: RtxCounters,
    history_size: usize,
    streams: HashMap<u32, History>,
    /// Our recent sender reports: the middle 32 bits of their NTP time, and when they left.
    sender_reports: VecDeque<(u32, Instant)>,
    rtt: Option<Duration>,
    budget: Budget,
}

impl RetransmissionGuard {
    /// A guard around a responder keeping `history` packets per stream, budgeted from
    /// `estimate`, counting into `counters`.
    pub fn new(history: u16, estimate: EstimateCell, counters: RtxCounters) -> Self {
        Self {
            inner: NackResponderBuilder::new().with_size(history).build(),
            estimate,
            counters,
            history_size: usize::from(history),
            streams: HashMap::new(),
            sender_reports: VecDeque::new(),
            rtt: None,
            budget: Budget {
                bits: 0.0,
                at: None,
            },
        }
    }

    /// The measured round trip, once a report block has answered one of our sender reports.
    #[cfg(test)]
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    fn budget_rate(&self) -> f64 {
        (self.estimate.bps() as f64 * RTX_SHARE).max(MIN_RTX_BPS)
    }

    /// Updates the RTT from report blocks about our streams (RFC 3550 §6.4.1).
    fn on_report_blocks(&mut self, now: Instant, blocks: &[ReceptionReport]) {
        for block in blocks {
            if block.last_sender_report == 0 || !self.streams.contains_key(&block.ssrc) {
                continue;
            }
            let Some(&(_, sent)) = self
                .sender_reports
                .iter()
                .find(|(mid, _)| *mid == block.last_sender_report)
            else {
                continue;
            };
            let held = Duration::from_secs_f64(f64::from(block.delay) / 65_536.0);
            let Some(sample) = now.saturating_duration_since(sent).checked_sub(held) else {
                continue;
            };
            self.rtt = Some(match self.rtt {
                None => sample,
                Some(old) => (old * 7 + sample) / 8,
            });
        }
    }

    /// The sequence numbers of `nack` worth resending now; updates the history and budget.
    fn allowed(&mut self, now: Instant, nack: &TransportLayerNack) -> Vec<u16> {
        let rate = self.budget_rate();
        self.budget.refill(now, rate);
        let repeat = self.rtt.unwrap_or(DEFAULT_RTT).max(MIN_REPEAT);
        let Some(history) = self.streams.get_mut(&nack.media_ssrc) else {
            // Not a stream we keep; the responder ignores it too.
            return Vec::new();
        };
        let mut out = Vec::new();
        for pair in &nack.nacks {
            for seq in pair.packet_list() {
                let Some(sent) = history.get(seq) else {
                    continue;
                };
                if sent
                    .resent_at
                    .is_some_and(|t| now.saturating_duration_since(t) < repeat)
                {
                    self.counters.refused_repeat.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let bits = f64::from(sent.bytes) * 8.0;
                if self.budget.bits < bits {
                    self.counters.refused_budget.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                self.budget.bits -= bits;
                sent.resent_at = Some(now);
                self.counters
                    .bytes_resent
                    .fetch_add(u64::from(sent.bytes), Ordering::Relaxed);
                out.push(seq);
            }
        }
        out
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RetransmissionGuard {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        let now = msg.now;
        if let Packet::Rtcp(packets) = &mut msg.message.packet {
            for p in packets.iter_mut() {
                let any = p.as_any();
                if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                    let blocks = rr.reports.clone();
                    self.on_report_blocks(now, &blocks);
                } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                    let blocks = sr.reports.clone();
                    self.on_report_blocks(now, &blocks);
                } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                    let allowed = self.allowed(now, nack);
                    *p = Box::new(TransportLayerNack {
                        sender_ssrc: nack.sender_ssrc,
                        media_ssrc: nack.media_ssrc,
                        nacks: nack_pairs_from_sequence_numbers(&allowed),
                    });
                }
            }
        }
        self.inner.handle_read(msg)
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.inner.poll_read()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        match &msg.message.packet {
            Packet::Rtp(rtp) => {
                if let Some(history) = self.streams.get_mut(&rtp.header.ssrc) {
                    let bytes = 12 + rtp.payload.len();
                    history.record(
                        rtp.header.sequence_number,
                        u32::try_from(bytes).unwrap_or(u32::MAX),
                    );
                }
            }
            Packet::Rtcp(packets) => {
                for sr in packets
                    .iter()
                    .filter_map(|p| p.as_any().downcast_ref::<SenderReport>())
                {
                    if self.sender_reports.len() == SENDER_REPORTS_KEPT {
                        self.sender_reports.pop_front();
                    }
                    self.sender_reports
                        .push_back(((sr.ntp_time >> 16) as u32, msg.now));
                }
            }
            _ => {}
        }
        self.inner.handle_write(msg)
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.inner.poll_write()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.inner.handle_timeout(now)
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    fn close(&mut self) -> Result<(), Error> {
        self.inner.close()
    }
}

impl Interceptor for RetransmissionGuard {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.inner.bind_local_stream(info);
        self.streams
            .insert(info.ssrc, History::new(self.history_size));
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.inner.unbind_local_stream(info);
        self.streams.remove(&info.ssrc);
    }

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.inner.bind_remote_stream(info);
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.inner.unbind_remote_stream(info);
    }
}

#[cfg(test)]
#[path = "rtx_guard_tests.rs"]
mod tests;
