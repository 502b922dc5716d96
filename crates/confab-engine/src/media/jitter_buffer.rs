//! Adaptive playout (jitter) buffer for one remote participant's Opus stream.
//!
//! Inputs: [`JitterBuffer::push`] for every received RTP packet (sequence number, RTP timestamp
//! at 48 kHz, Opus payload) with its arrival time; [`JitterBuffer::pop`] once per 20 ms from the
//! playout clock, which returns exactly one 20 ms frame. Time is always an argument (a
//! [`CaptureTime`] on the media clock): the logic never reads a clock, so tests drive it with a
//! simulated one.
//!
//! What it does:
//! - Unwraps 16-bit sequence numbers and 32-bit timestamps, reorders packets, drops duplicates and
//!   packets that arrive after their playout time ("late").
//! - A missing frame is recovered from the in-band FEC of the next packet when that packet
//!   directly follows it, is buffered and carries FEC ([`AudioDecoder::has_fec`]), else
//!   concealed with Opus PLC. Sequence numbers tell loss from DTX: a timestamp gap with
//!   contiguous sequence numbers is DTX silence (PLC/comfort noise, not a loss), and in a run of
//!   lost packets each slot accounts for one missing number, so the last of the run is still
//!   rebuilt from the packet after it.
//! - Delay adaptation: each packet's transit time (arrival minus media time) is compared with the
//!   fastest recent packet; the target delay is the 95th percentile of that excess over the last
//!   [`JitterBufferConfig::history_packets`] plus one frame, clamped to the configured range, so it
//!   grows with jitter and shrinks ~5 s after jitter subsides. Playout keeps the delay within
//!   -10/+30 ms of the target by inserting a concealed frame (stretch) or skipping one
//!   (compress), at most one step per 100 ms. A run of more than 10 lost packets (an outage) is
//!   jumped over, not concealed slot by slot, so the audio after it is not played late. When the buffer runs dry the missing audio is treated as delay, not loss (stretch
//!   instead of skipping ahead), so a delay spike grows the buffer instead of dropping audio.
//! - A packet more than [`RESYNC_BEHIND`] behind or [`RESYNC_AHEAD`] ahead of the playout point
//!   (sender restarted, timestamp base jumped) resets the buffer instead of being dropped forever.
//! - [`JitterBuffer::current_delay`] reports the playout delay beyond the fastest packet's transit;
//!   [`JitterBuffer::stats`] counts what happened.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::frame::{AUDIO_SAMPLE_RATE, CaptureTime};
use super::opus_codec::{AudioDecoder, FRAME_SAMPLES};

const FRAME_TS: u64 = FRAME_SAMPLES as u64;
const FRAME_US: i64 = 20_000;
/// Playout delay may sit this far below target before a frame is inserted...
const BAND_BELOW_US: i64 = 10_000;
/// ...and this far above it before a frame is skipped (the band must be wider than a frame, or
/// every step would overshoot and oscillate).
const BAND_ABOVE_US: i64 = 30_000;
/// Frames between two adaptation steps (100 ms).
const ADAPT_COOLDOWN: u32 = 5;
/// A run of more lost packets than this (200 ms: an outage, not random loss) is jumped over
/// rather than concealed slot by slot.
const LONG_GAP_SLOTS: u64 = 10;
/// A packet this far behind the playout point means the stream restarted.
pub const RESYNC_BEHIND: Duration = Duration::from_secs(2);
/// A packet this far ahead of the playout point means the stream's timestamps jumped.
pub const RESYNC_AHEAD: Duration = Duration::from_secs(10);

/// One received RTP packet carrying a 20 ms Opus frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpAudioPacket {
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp (48 kHz clock).
    pub timestamp: u32,
    /// Opus payload.
    pub payload: Vec<u8>,
}

/// Settings for [`JitterBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterBufferConfig {
    /// Smallest target delay.
    pub min_delay: Duration,
    /// Largest target delay (and the most a dry buffer is stretched).
    pub max_delay: Duration,
    /// Packets of transit history used to estimate jitter.
    pub history_packets: usize,
    /// Most packets held; beyond that the oldest are dropped.
    pub max_packets: usize,
}

impl Default for JitterBufferConfig {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(500),
            history_packets: 250,
            max_packets: 100,
        }
    }
}

/// How a played frame was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Playout has not started yet (waiting for the first packets): silence.
    Silence,
    /// Decoded from its own packet.
    Normal,
    /// Recovered from the next packet's in-band FEC.
    Fec,
    /// Concealed (PLC) because its packet was lost or corrupt.
    Concealed,
    /// Concealment inserted to add delay (buffer ran dry or is below target); timeline held.
    Stretched,
    /// A frame was skipped to reduce delay; this is the frame after it.
    Compressed,
    /// DTX silence from the sender: comfort noise via PLC.
    Dtx,
}

/// One 20 ms frame of playout.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayoutFrame {
    /// [`FRAME_SAMPLES`] samples.
    pub samples: Vec<f32>,
    /// How it was produced.
    pub kind: FrameKind,
}

/// Counters since creation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets pushed.
    pub received: u64,
    /// Packets that arrived after their playout time.
    pub late: u64,
    /// Duplicate packets.
    pub duplicates: u64,
    /// Frames recovered from FEC.
    pub fec_recovered: u64,
    /// Frames concealed for loss or decode error.
    pub concealed: u64,
    /// Frames inserted to grow the delay (below target, or the buffer ran dry).
    pub stretched: u64,
    /// Of `stretched`, those inserted because the buffer ran dry (the packet not there yet): a
    /// gap the listener hears, like a loss.
    pub underruns: u64,
    /// Frames skipped to shrink the delay.
    pub compressed: u64,
    /// Payloads the decoder rejected.
    pub decode_errors: u64,
    /// Packets dropped because the buffer was full.
    pub overflow: u64,
    /// Frames played, of any kind.
    pub played: u64,
    /// Times the buffer reset because timestamps jumped.
    pub resyncs: u64,
    /// Long runs of lost packets (outages) jumped over instead of concealed slot by slot.
    pub caught_up: u64,
}

#[derive(Debug, Clone)]
struct Stored {
    seq: u64,
    payload: Vec<u8>,
}

/// Adaptive jitter buffer; see the module docs. `D` is the decoder (Opus in production, a fake in
/// tests).
#[derive(Debug)]
pub struct JitterBuffer<D: AudioDecoder> {
    decoder: D,
    config: JitterBufferConfig,
    packets: BTreeMap<u64, Stored>,
    last_seq: Option<u64>,
    last_ts: Option<u64>,
    /// Extended timestamp of the next frame to play; `None` until playout starts.
    playout_ts: Option<u64>,
    /// Sequence number of the last frame played from a real packet (or recovered).
    played_seq: Option<u64>,
    first_arrival: Option<CaptureTime>,
    transits: VecDeque<i64>,
    target: Duration,
    current_delay: Duration,
    cooldown: u32,
    stats: JitterStats,
}

impl<D: AudioDecoder> JitterBuffer<D> {
    /// An empty buffer playing through `decoder`.
    #[must_use]
    pub fn new(decoder: D, config: JitterBufferConfig) -> Self {
        Self {
            decoder,
            config,
            packets: BTreeMap::new(),
            last_seq: None,
            last_ts: None,
            playout_ts: None,
            played_seq: None,
            first_arrival: None,
            transits: VecDeque::new(),
            target: config.min_delay,
            current_delay: Duration::ZERO,
            cooldown: 0,
            stats: JitterStats::default(),
        }
    }

    /// Counters since creation.
    #[must_use]
    pub const fn stats(&self) -> &JitterStats {
        &self.stats
    }

    /// Target delay derived from measured jitter.
    #[must_use]
    pub const fn target_delay(&self) -> Duration {
        self.target
    }

    /// Playout delay beyond the fastest recent packet's transit, as of the last `pop`.
    #[must_use]
    pub const fn current_delay(&self) -> Duration {
        self.current_delay
    }

    /// Packets waiting to be played.
    #[must_use]
    pub fn buffered_packets(&self) -> usize {
        self.packets.len()
    }

    /// Adds a received packet that arrived at `arrival`.
    pub fn push(&mut self, packet: RtpAudioPacket, arrival: CaptureTime) {
        self.stats.received += 1;
        let mut seq = unwrap(self.last_seq, u64::from(packet.seq), 16);
        let mut ts = unwrap(self.last_ts, u64::from(packet.timestamp), 32);
        if let Some(playout) = self.playout_ts {
            let behind = playout.saturating_sub(ts);
            let ahead = ts.saturating_sub(playout);
            if behind > duration_to_ts(RESYNC_BEHIND) || ahead > duration_to_ts(RESYNC_AHEAD) {
                self.resync();
                seq = unwrap(None, u64::from(packet.seq), 16);
                ts = unwrap(None, u64::from(packet.timestamp), 32);
            }
        }
        self.last_seq = Some(self.last_seq.map_or(seq, |s| s.max(seq)));
        self.last_ts = Some(self.last_ts.map_or(ts, |t| t.max(ts)));
        self.first_arrival.get_or_insert(arrival);

        self.record_transit(ts, arrival);

        if self.playout_ts.is_some_and(|p| ts < p) {
            self.stats.late += 1;
            return;
        }
        if self.packets.contains_key(&ts) {
            self.stats.duplicates += 1;
            return;
        }
        self.packets.insert(
            ts,
            Stored {
                seq,
                payload: packet.payload,
            },
        );
        while self.packets.len() > self.config.max_packets {
            self.packets.pop_first();
            self.stats.overflow += 1;
        }
    }

    /// Forgets the stream (not the counters or the decoder) and starts over as if new.
    fn resync(&mut self) {
        self.stats.resyncs += 1;
        self.packets.clear();
        self.last_seq = None;
        self.last_ts = None;
        self.playout_ts = None;
        self.played_seq = None;
        self.first_arrival = None;
        self.transits.clear();
        self.target = self.config.min_delay;
        self.cooldown = 0;
    }

    fn record_transit(&mut self, ts: u64, arrival: CaptureTime) {
        let transit = i64::try_from(arrival.as_micros()).unwrap_or(i64::MAX) - ts_to_us(ts);
        self.transits.push_back(transit);
        while self.transits.len() > self.config.history_packets.max(1) {
            self.transits.pop_front();
        }
        let min = self.min_transit();
        let mut excess: Vec<i64> = self.transits.iter().map(|t| t - min).collect();
        excess.sort_unstable();
        let idx = (excess.len() * 95).div_ceil(100).saturating_sub(1);
        let p95 = excess.get(idx).copied().unwrap_or(0);
        let target = Duration::from_micros(u64::try_from(p95 + FRAME_US).unwrap_or(0));
        self.target = target.clamp(self.config.min_delay, self.config.max_delay);
    }

    fn min_transit(&self) -> i64 {
        self.transits.iter().copied().min().unwrap_or(0)
    }

    /// Produces the next 20 ms of audio for playout at time `now`.
    pub fn pop(&mut self, now: CaptureTime) -> PlayoutFrame {
        let Some(playout_ts) = self.playout_ts.or_else(|| self.try_start(now)) else {
            return PlayoutFrame {
                samples: vec![0.0; FRAME_SAMPLES],
                kind: FrameKind::Silence,
            };
        };
        self.stats.played += 1;
        let now_us = i64::try_from(now.as_micros()).unwrap_or(i64::MAX);
        let delay_us = now_us - ts_to_us(playout_ts) - self.min_transit();
        self.current_delay = Duration::from_micros(u64::try_from(delay_us).unwrap_or(0));
        let target_us = i64::try_from(self.target.as_micros()).unwrap_or(i64::MAX);
        let max_us = i64::try_from(self.config.max_delay.as_micros()).unwrap_or(i64::MAX);
        self.cooldown = self.cooldown.saturating_sub(1);
        let may_adapt = self.cooldown == 0;

        if let Some(stored) = self.packets.get(&playout_ts).cloned() {
            if may_adapt && delay_us < target_us - BAND_BELOW_US && delay_us < max_us {
                // Below target: insert a concealed frame, keep the packet for the next pop.
                self.cooldown = ADAPT_COOLDOWN;
                self.stats.stretched += 1;
                return self.concealed(FrameKind::Stretched);
            }
            let next_ts = playout_ts + FRAME_TS;
            if may_adapt
                && delay_us > target_us + BAND_ABOVE_US
                && self.packets.contains_key(&next_ts)
            {
                // Above target: decode this frame to keep the decoder's state, discard it, and
                // play the next one.
                self.cooldown = ADAPT_COOLDOWN;
                self.stats.compressed += 1;
                self.packets.remove(&playout_ts);
                if self.decoder.decode(&stored.payload).is_err() {
                    self.stats.decode_errors += 1;
                }
                self.played_seq = Some(stored.seq);
                self.playout_ts = Some(next_ts);
                let mut frame = self.play_from_packet(next_ts);
                if frame.kind == FrameKind::Normal {
                    frame.kind = FrameKind::Compressed;
                }
                return frame;
            }
            return self.play_from_packet(playout_ts);
        }

        // The frame's packet is not here.
        let next = self
            .packets
            .range(playout_ts..)
            .next()
            .map(|(ts, s)| (*ts, s.seq));
        match next {
            None if delay_us < max_us => {
                // Dry buffer: most likely delay, not loss. Hold the timeline.
                self.stats.stretched += 1;
                self.stats.underruns += 1;
                self.concealed(FrameKind::Stretched)
            }
            None => {
                self.stats.concealed += 1;
                self.advance();
                self.concealed(FrameKind::Concealed)
            }
            Some((ts, seq)) => self.fill_gap(playout_ts, ts, seq),
        }
    }

    /// Plays the slot `playout_ts`, whose packet is missing, when the next buffered packet is
    /// `(next_ts, next_seq)`. Sequence numbers tell loss from DTX: between the last packet played
    /// and the next one, `missing` sequence numbers were never seen over `slots` frame slots. No
    /// missing number means the sender paused (DTX); as many missing numbers as slots means every
    /// slot lost its packet (and the slot right before `next` can be rebuilt from its FEC). Each
    /// slot played as a loss accounts for one missing sequence number.
    fn fill_gap(&mut self, playout_ts: u64, next_ts: u64, next_seq: u64) -> PlayoutFrame {
        let slots = (next_ts - playout_ts) / FRAME_TS;
        let missing = self
            .played_seq
            .map_or(slots, |p| next_seq.saturating_sub(p + 1));
        if missing == 0 {
            self.advance();
            return self.concealed(FrameKind::Dtx);
        }
        if missing >= slots && slots > LONG_GAP_SLOTS {
            // Every packet of a long stretch is gone (an outage). Concealing it slot by slot
            // would play everything after it that much later, for as long as compression takes
            // to win the delay back (seconds); jump to the next packet instead, and let the
            // usual adaptation set the delay from there.
            self.stats.caught_up += 1;
            self.played_seq = Some(next_seq.saturating_sub(1));
            self.playout_ts = Some(next_ts);
            self.cooldown = 0;
            return self.play_from_packet(next_ts);
        }
        self.played_seq = Some(next_seq - missing);
        self.advance();
        if slots == 1 && missing == 1 {
            let payload = self.packets.get(&next_ts).map(|s| s.payload.clone());
            if let Some(payload) = payload.filter(|p| self.decoder.has_fec(p)) {
                match self.decoder.decode_fec(&payload) {
                    Ok(samples) => {
                        self.stats.fec_recovered += 1;
                        return PlayoutFrame {
                            samples,
                            kind: FrameKind::Fec,
                        };
                    }
                    Err(_) => self.stats.decode_errors += 1,
                }
            }
        }
        self.stats.concealed += 1;
        self.concealed(FrameKind::Concealed)
    }

    fn try_start(&mut self, now: CaptureTime) -> Option<u64> {
        let first = self.first_arrival?;
        let (&ts, _) = self.packets.first_key_value()?;
        if now.saturating_since(first) < self.target {
            return None;
        }
        self.playout_ts = Some(ts);
        Some(ts)
    }

    fn advance(&mut self) {
        if let Some(ts) = self.playout_ts.as_mut() {
            *ts += FRAME_TS;
        }
    }

    fn play_from_packet(&mut self, ts: u64) -> PlayoutFrame {
        let Some(stored) = self.packets.remove(&ts) else {
            self.advance();
            self.stats.concealed += 1;
            return self.concealed(FrameKind::Concealed);
        };
        self.played_seq = Some(stored.seq);
        self.advance();
        match self.decoder.decode(&stored.payload) {
            Ok(samples) => PlayoutFrame {
                samples,
                kind: FrameKind::Normal,
            },
            Err(_) => {
                self.stats.decode_errors += 1;
                self.stats.concealed += 1;
                self.concealed(FrameKind::Concealed)
            }
        }
    }

    fn concealed(&mut self, kind: FrameKind) -> PlayoutFrame {
        let samples = self
            .decoder
            .conceal()
            .unwrap_or_else(|_| vec![0.0; FRAME_SAMPLES]);
        PlayoutFrame { samples, kind }
    }
}

/// Extends a wrapping counter of `bits` bits to 64 bits, relative to the highest value seen.
fn unwrap(last: Option<u64>, value: u64, bits: u32) -> u64 {
    let Some(last) = last else {
        // Start well above zero so that slightly older packets do not underflow.
        return value + (1u64 << bits);
    };
    let modulus = 1u64 << bits;
    let half = modulus / 2;
    let last_low = last % modulus;
    let forward = value.wrapping_sub(last_low) % modulus;
    if forward < half {
        last + forward
    } else {
        last.saturating_sub(modulus - forward)
    }
}

fn duration_to_ts(d: Duration) -> u64 {
    u64::try_from(d.as_micros() * u128::from(AUDIO_SAMPLE_RATE) / 1_000_000).unwrap_or(u64::MAX)
}

fn ts_to_us(ts: u64) -> i64 {
    i64::try_from(ts * 1_000_000 / u64::from(AUDIO_SAMPLE_RATE)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwrap_handles_wraparound_both_ways() {
        let a = unwrap(None, 65_535, 16);
        let b = unwrap(Some(a), 0, 16);
        assert_eq!(b, a + 1);
        let c = unwrap(Some(b), 65_534, 16);
        assert_eq!(c, a - 1);
        let t = unwrap(None, u64::from(u32::MAX) - 100, 32);
        assert_eq!(unwrap(Some(t), 860, 32), t + 961);
    }
}
