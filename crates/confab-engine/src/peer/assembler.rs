//! H.264 access-unit assembly from RTP, released the moment a frame is complete.
//!
//! The crate's `SampleBuilder` only knows a frame is complete when the first packet of the *next*
//! frame arrives, which adds a whole frame interval (33 ms at 30 fps) to every picture. A frame
//! is complete earlier than that: when its marker-bit packet has arrived and no sequence number
//! before it is missing. [`FrameAssembler`] releases frames exactly then.
//!
//! Contract:
//! - Packets may arrive reordered or duplicated; they are put back in sequence order (extended
//!   over the 16-bit wrap) before depacketizing.
//! - A missing packet is waited for up to `max_wait` (time for a NACK retransmission) from when
//!   the first packet after it arrived, so several holes wait at the same time. After
//!   that, or when too many packets pile up behind the hole, the hole is skipped: the frame it
//!   belonged to is dropped whole, and the next complete frame is flagged `lost_before` so the
//!   receiver can ask for a keyframe.
//! - A frame is only released if it started at a partition head and every one of its packets
//!   depacketized; partial pictures are never handed to the decoder.
//! - Padding-only packets (empty payload: bandwidth probes, which a browser sends on the media
//!   SSRC when no RTX is negotiated) must be pushed too: they take sequence numbers, and leaving
//!   them out looked like loss — a 300 ms hold and a `lost_before` frame at every probe.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::rtp::Packet;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer;

/// One complete Annex-B access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AssembledFrame {
    pub(crate) data: Bytes,
    pub(crate) rtp_timestamp: u32,
    /// Packets were lost (or frames dropped) since the previous released frame.
    pub(crate) lost_before: bool,
}

/// Reorders RTP packets and assembles H.264 access units; see the module docs.
pub(crate) struct FrameAssembler {
    depacketizer: H264Packet,
    /// Packets not yet assembled, with their arrival time.
    pending: BTreeMap<u64, (Instant, Packet)>,
    next: Option<u64>,
    highest: Option<u64>,
    frame: BytesMut,
    frame_ts: Option<u32>,
    frame_valid: bool,
    lost: bool,
    max_wait: Duration,
    max_pending: usize,
}

impl FrameAssembler {
    /// Waits up to `max_wait` for a missing packet, and holds at most `max_pending` packets
    /// behind a hole.
    pub(crate) fn new(max_wait: Duration, max_pending: usize) -> Self {
        Self {
            depacketizer: H264Packet::default(),
            pending: BTreeMap::new(),
            next: None,
            highest: None,
            frame: BytesMut::new(),
            frame_ts: None,
            frame_valid: false,
            lost: false,
            max_wait,
            max_pending: max_pending.max(1),
        }
    }

    /// Changes how long a missing packet is waited for (from the next push on).
    pub(crate) fn set_max_wait(&mut self, max_wait: Duration) {
        self.max_wait = max_wait;
    }

    /// Extends a 16-bit sequence number to 64 bits, relative to the highest seen so far.
    fn extend(&mut self, seq: u16) -> u64 {
        let ext = match self.highest {
            // Start one cycle up so packets reordered before the first one stay positive.
            None => (1u64 << 16) + u64::from(seq),
            Some(h) => {
                let delta = i64::from(seq.wrapping_sub(h as u16) as i16);
                (h as i64 + delta).max(0) as u64
            }
        };
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        ext
    }

    /// Takes one packet; returns the frames it completed (usually zero or one).
    pub(crate) fn push(&mut self, now: Instant, packet: Packet) -> Vec<AssembledFrame> {
        let ext = self.extend(packet.header.sequence_number);
        let Some(next) = self.next else {
            if packet.payload.is_empty() {
                return Vec::new();
            }
            // Not started: anchor on the first frame start; hold anything else until one comes
            // (packets may arrive reordered, and a stream joined mid-frame starts with a tail).
            if self.depacketizer.is_partition_head(&packet.payload) {
                self.next = Some(ext);
                self.pending.retain(|k, _| *k > ext);
                self.pending.insert(ext, (now, packet));
                return self.drain(now);
            }
            self.pending.insert(ext, (now, packet));
            if self.pending.len() > self.max_pending {
                self.pending.clear();
            }
            return Vec::new();
        };
        if ext < next {
            // Older than what was already assembled or skipped: a duplicate or hopelessly late.
            return Vec::new();
        }
        self.pending.entry(ext).or_insert((now, packet));
        self.drain(now)
    }

    /// Processes pending packets in order, skipping a hole that waited too long.
    fn drain(&mut self, now: Instant) -> Vec<AssembledFrame> {
        let mut out = Vec::new();
        while let Some(next) = self.next {
            if let Some((_, p)) = self.pending.remove(&next) {
                self.next = Some(next + 1);
                // Padding only fills its sequence number.
                if !p.payload.is_empty()
                    && let Some(frame) = self.process(&p)
                {
                    out.push(frame);
                }
                continue;
            }
            // The hole has been known since the first packet after it arrived: holes are waited
            // for together, not one after another (a burst of 20 holes once took 20 waits).
            let Some((&first, &(since, _))) = self.pending.first_key_value() else {
                break;
            };
            if now.saturating_duration_since(since) < self.max_wait
                && self.pending.len() <= self.max_pending
            {
                break;
            }
            // Give up on the hole: what it belonged to is lost.
            self.next = Some(first);
            self.lost = true;
            self.frame_valid = false;
        }
        out
    }

    fn process(&mut self, p: &Packet) -> Option<AssembledFrame> {
        if self.frame_ts != Some(p.header.timestamp) {
            if self.frame_ts.is_some() {
                // The previous frame never saw its marker: incomplete.
                self.lost = true;
            }
            self.frame.clear();
            self.frame_ts = Some(p.header.timestamp);
            self.depacketizer = H264Packet::default();
            // A frame picked up in its middle (after a skipped hole) cannot be decoded.
            self.frame_valid = self.depacketizer.is_partition_head(&p.payload);
        }
        if self.frame_valid {
            match self.depacketizer.depacketize(&p.payload) {
                Ok(bytes) => self.frame.extend_from_slice(&bytes),
                Err(_) => self.frame_valid = false,
            }
        }
        if !p.header.marker {
            return None;
        }
        let complete = self.frame_valid && !self.frame.is_empty();
        let ts = self.frame_ts.take().unwrap_or(p.header.timestamp);
        let data = self.frame.split().freeze();
        if complete {
            let lost_before = std::mem::take(&mut self.lost);
            Some(AssembledFrame {
                data,
                rtp_timestamp: ts,
                lost_before,
            })
        } else {
            self.lost = true;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use rtc::rtp::Header;

    use super::*;

    const WAIT: Duration = Duration::from_millis(100);

    fn packet(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Packet {
        Packet {
            header: Header {
                version: 2,
                marker,
                payload_type: 102,
                sequence_number: seq,
                timestamp: ts,
                ssrc: 1,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(payload),
        }
    }

    /// A frame as packets: one single-NAL packet for `nal`, or FU-A fragments of `chunk` bytes.
    fn frame_packets(first_seq: u16, ts: u32, nal: &[u8], chunk: usize) -> Vec<Packet> {
        if nal.len() <= chunk {
            return vec![packet(first_seq, ts, true, nal)];
        }
        let header = nal[0];
        let body = &nal[1..];
        let parts: Vec<&[u8]> = body.chunks(chunk).collect();
        parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let start = if i == 0 { 0x80 } else { 0 };
                let end = if i == parts.len() - 1 { 0x40 } else { 0 };
                let mut payload = vec![(header & 0xE0) | 28, start | end | (header & 0x1F)];
                payload.extend_from_slice(part);
                packet(
                    first_seq.wrapping_add(i as u16),
                    ts,
                    i == parts.len() - 1,
                    &payload,
                )
            })
            .collect()
    }

    fn annex_b(nal: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 1];
        v.extend_from_slice(nal);
        v
    }

    fn nal(kind: u8, len: usize, fill: u8) -> Vec<u8> {
        let mut v = vec![0x60 | kind];
        v.extend(std::iter::repeat_n(fill, len - 1));
        v
    }

    #[test]
    fn releases_each_frame_on_its_marker_without_waiting_for_the_next() {
        let mut a = FrameAssembler::new(WAIT, 64);
        let t = Instant::now();
        let n = nal(1, 50, 7);
        let out = a.push(t, packet(10, 3000, true, &n));
        assert_eq!(out.len(), 1, "released at once");
        assert_eq!(out[0].data.as_ref(), annex_b(&n).as_slice());
        assert!(!out[0].lost_before);
    }

    #[test]
    fn fragmented_and_reordered_frame_is_reassembled_exactly() {
        let mut a = FrameAssembler::new(WAIT, 64);
        let t = Instant::now();
        let n = nal(5, 3000, 9);
        let mut packets = frame_packets(100, 9000, &n, 1000);
        assert_eq!(packets.len(), 3);
        packets.swap(0, 2);
        let mut out = Vec::new();
        for p in packets {
            out.extend(a.push(t, p));
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data.as_ref(), annex_b(&n).as_slice());
    }

    #[test]
    fn a_lost_packet_drops_its_frame_and_flags_the_next() {
        let mut a = FrameAssembler::new(WAIT, 64);
        let t0 = Instant::now();
        let f1 = frame_packets(0, 0, &nal(5, 2500, 1), 1000);
        let f2 = frame_packets(3, 3000, &nal(1, 40, 2), 1000);
        // f1's middle fragment never arrives.
        assert!(a.push(t0, f1[0].clone()).is_empty());
        assert!(a.push(t0, f1[2].clone()).is_empty());
        assert!(a.push(t0, f2[0].clone()).is_empty(), "held behind the hole");
        // After the wait, the hole is skipped: f1 is dropped, f2 comes out flagged.
        let later = t0 + WAIT + Duration::from_millis(1);
        let f3 = frame_packets(4, 6000, &nal(1, 40, 3), 1000);
        let out = a.push(later, f3[0].clone());
        assert_eq!(out.len(), 2);
        assert!(out[0].lost_before);
        assert_eq!(out[0].rtp_timestamp, 3000);
        assert!(!out[1].lost_before);
        assert_eq!(out[1].rtp_timestamp, 6000);
    }

    /// Three frames each missing a packet, all known missing at `t0`: one wait later all three
    /// holes are given up at once and the frame after them comes out, instead of one hole per
    /// wait (three waits).
    #[test]
    fn several_holes_are_waited_for_together() {
        let mut a = FrameAssembler::new(WAIT, 64);
        let t0 = Instant::now();
        for k in 0..3u16 {
            let f = frame_packets(k * 3, u32::from(k) * 3000, &nal(1, 2500, 1), 1000);
            assert!(a.push(t0, f[0].clone()).is_empty());
            assert!(a.push(t0, f[2].clone()).is_empty());
        }
        let f4 = frame_packets(9, 9000, &nal(1, 40, 4), 1000);
        assert!(
            a.push(t0, f4[0].clone()).is_empty(),
            "held behind the holes"
        );
        let later = t0 + WAIT + Duration::from_millis(1);
        let f5 = frame_packets(10, 12_000, &nal(1, 40, 5), 1000);
        let out = a.push(later, f5[0].clone());
        let stamps: Vec<u32> = out.iter().map(|f| f.rtp_timestamp).collect();
        assert_eq!(
            stamps,
            vec![9000, 12_000],
            "all three holes skipped in one wait"
        );
        assert!(out[0].lost_before);
    }

    #[test]
    fn padding_between_frames_is_not_loss() {
        let mut a = FrameAssembler::new(WAIT, 64);
        let t = Instant::now();
        assert!(
            a.push(t, packet(7, 0, false, &[])).is_empty(),
            "padding before any frame"
        );
        let f1 = a.push(t, packet(8, 0, true, &nal(5, 40, 1)));
        // Two probes between the frames, on the same SSRC, with the last frame's timestamp.
        assert!(a.push(t, packet(9, 0, false, &[])).is_empty());
        assert!(a.push(t, packet(10, 0, false, &[])).is_empty());
        let f2 = a.push(t, packet(11, 3000, true, &nal(1, 40, 2)));
        assert_eq!(f1.len(), 1);
        assert_eq!(f2.len(), 1, "released at once, not held behind a hole");
        assert!(!f2[0].lost_before);
        assert_eq!(f2[0].data.as_ref(), annex_b(&nal(1, 40, 2)).as_slice());
    }

    #[test]
    fn a_retransmission_within_the_wait_fills_the_hole() {
        let mut a = FrameAssembler::new(WAIT, 64);
        let t = Instant::now();
        let n = nal(5, 2500, 4);
        let f = frame_packets(0, 0, &n, 1000);
        assert!(a.push(t, f[0].clone()).is_empty());
        assert!(a.push(t, f[2].clone()).is_empty());
        let out = a.push(t + WAIT / 2, f[1].clone());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data.as_ref(), annex_b(&n).as_slice());
        assert!(!out[0].lost_before);
    }

    /// RTX repairs arrive de-encapsulated on the media SSRC: late, repeated, or both.
    #[test]
    fn repeated_repairs_of_one_packet_assemble_the_frame_once() {
        let mut a = FrameAssembler::new(WAIT, 64);
        let t = Instant::now();
        let n = nal(5, 2500, 4);
        let f = frame_packets(0, 0, &n, 1000);
        assert!(a.push(t, f[0].clone()).is_empty());
        assert!(
            a.push(t, f[0].clone()).is_empty(),
            "duplicate while incomplete"
        );
        assert!(a.push(t, f[2].clone()).is_empty());
        let out = a.push(t, f[1].clone());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data.as_ref(), annex_b(&n).as_slice());
        // A second retransmission of the same packet (its first NACK's answer was only late).
        assert!(a.push(t, f[1].clone()).is_empty());
        let next = a.push(t, packet(3, 3000, true, &nal(1, 40, 5)));
        assert_eq!(next.len(), 1);
        assert!(!next[0].lost_before);
    }

    #[test]
    fn a_repair_arriving_after_its_hole_was_given_up_changes_nothing() {
        let mut a = FrameAssembler::new(WAIT, 64);
        let t0 = Instant::now();
        let f1 = frame_packets(0, 0, &nal(5, 2500, 1), 1000);
        assert!(a.push(t0, f1[0].clone()).is_empty());
        assert!(a.push(t0, f1[2].clone()).is_empty());
        assert!(a.push(t0, packet(3, 3000, true, &nal(1, 40, 2))).is_empty());
        let later = t0 + WAIT + Duration::from_millis(1);
        let out = a.push(later, packet(4, 6000, true, &nal(1, 40, 3)));
        assert_eq!(out.len(), 2, "the hole was skipped");
        assert!(a.push(later, f1[1].clone()).is_empty(), "too late");
        let out = a.push(later, packet(5, 9000, true, &nal(1, 40, 4)));
        assert_eq!(out.len(), 1);
        assert!(!out[0].lost_before, "the late repair is not a new loss");
    }

    #[test]
    fn sequence_numbers_wrap_and_duplicates_are_ignored() {
        let mut a = FrameAssembler::new(WAIT, 64);
        let t = Instant::now();
        let mut seq = 65_534u16;
        let mut got = 0;
        for i in 0..5u32 {
            let p = packet(seq, i * 3000, true, &nal(1, 20, i as u8));
            got += a.push(t, p.clone()).len();
            assert!(a.push(t, p).is_empty(), "duplicate ignored");
            seq = seq.wrapping_add(1);
        }
        assert_eq!(got, 5);
    }

    #[test]
    fn a_pile_up_behind_a_hole_is_not_held_forever() {
        let mut a = FrameAssembler::new(Duration::from_secs(60), 4);
        let t = Instant::now();
        assert_eq!(a.push(t, packet(0, 0, true, &nal(1, 10, 0))).len(), 1);
        // Packet 1 is lost; frames 2.. pile up until the limit forces the skip.
        let mut out = Vec::new();
        for s in 2..8u16 {
            out.extend(a.push(t, packet(s, u32::from(s) * 3000, true, &nal(1, 10, 1))));
        }
        assert!(!out.is_empty());
        assert!(out[0].lost_before);
    }
}
