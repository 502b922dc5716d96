//! One participant's video decoder thread (`confab-video-dec-<id>` for its camera,
//! `confab-screen-dec-<id>` for its shared screen) and the inlet its link pushes into.
//!
//! Owns: [`DecoderInlet`] (the video half of a participant's `MediaInlet`), the bounded
//! drop-oldest decode queue behind it, [`VideoDecoderThread`] (the thread, a
//! [`Worker`]) and the [`DecodeCounters`] the stats read.
//!
//! Contract:
//! - The link's video poll task pushes every access unit into the [`DecoderInlet`]; when the
//!   decoder is behind, the oldest queued unit is evicted, counted as *dropped, decoder behind*,
//!   and a keyframe is asked for at once. Units carry a running index, so the thread sees the
//!   hole an eviction leaves.
//! - The thread feeds openh264 only what can decode: before the first keyframe and after lost
//!   packets, a decode error or an eviction it skips units until the next IDR (counted) and asks
//!   for a PLI for each (the session rate-limits). Decoded pictures go to the app's drop-oldest
//!   queue (evictions counted as *dropped, consumer slow*) and the repaint callback wakes it.
//! - Dropping a [`VideoDecoderThread`] stops the thread after the unit in hand and joins it
//!   before returning: the session relies on that, so no frame of a participant who left is
//!   delivered after `ParticipantLeft`. The queue's receiver goes with the thread, so later
//!   pushes from a link that is still closing are discarded.
//! - A thread that cannot be started is an [`EngineError::Media`], never a panic.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use signaling_client::ParticipantId;
use tokio::sync::mpsc::UnboundedSender;

use crate::EngineError;
use crate::api::{Repaint, VideoFrameEvent, VideoRole};
use crate::media::CaptureTime;
use crate::media::drop_oldest::{self, DropOldestReceiver, DropOldestSender, SendOutcome};
use crate::media::h264::{AccessUnitKind, H264Decoder, access_unit_kind};
use crate::peer::{ReceivedFrame, VideoInlet};
use crate::worker::Worker;

/// Access units waiting for one decoder before the oldest is dropped.
const DECODE_QUEUE: usize = 30;

/// Counters a decoder thread keeps for the stats (see the module docs for what each means).
#[derive(Debug, Default)]
pub(crate) struct DecodeCounters {
    /// Pictures decoded.
    pub(crate) decoded: AtomicU64,
    /// Units openh264 rejected.
    pub(crate) decode_errors: AtomicU64,
    /// Units not decoded because their references were missing.
    pub(crate) skipped_awaiting_keyframe: AtomicU64,
    /// Units evicted from the full decode queue (the oldest queued one each time).
    pub(crate) dropped_decoder_behind: AtomicU64,
    /// Decoded pictures evicted from the app's queue by this participant's newer ones.
    pub(crate) dropped_consumer_slow: AtomicU64,
    pub(crate) decode_micros: AtomicU64,
    /// Bytes of access units received (queued or dropped).
    pub(crate) bytes_received: AtomicU64,
    pub(crate) width: AtomicU32,
    pub(crate) height: AtomicU32,
}

struct Unit {
    data: Bytes,
    /// Network loss before this unit (the link's frame assembler gave up on a packet).
    lost_before: bool,
    /// Position in the stream of units queued; a jump shows the queue evicted some.
    index: u64,
}

/// The video half of a participant's [`MediaInlet`](crate::peer::MediaInlet): queues access
/// units for its decoder thread (drop-oldest, see the module docs). Cheap to clone; every clone
/// feeds the same queue.
#[derive(Clone)]
pub(crate) struct DecoderInlet {
    queue: DropOldestSender<Unit>,
    /// The next unit's index; held across the send so indices enter the queue in order.
    next_index: Arc<Mutex<u64>>,
    counters: Arc<DecodeCounters>,
    keyframe_needed: UnboundedSender<(ParticipantId, VideoRole)>,
    id: ParticipantId,
    role: VideoRole,
}

impl DecoderInlet {
    /// Queues one access unit; if that evicts older ones, counts them and asks for a keyframe.
    pub(crate) fn push(&self, data: Bytes, lost_before: bool) {
        self.counters
            .bytes_received
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        let mut next = self
            .next_index
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let index = *next;
        *next += 1;
        let outcome = self.queue.send(Unit {
            data,
            lost_before,
            index,
        });
        drop(next);
        if let SendOutcome::QueuedDroppedOldest(n) = outcome {
            self.counters
                .dropped_decoder_behind
                .fetch_add(u64::from(n), Ordering::Relaxed);
            let _ = self.keyframe_needed.send((self.id.clone(), self.role));
        }
    }
}

impl VideoInlet for DecoderInlet {
    fn push_frame(&self, frame: ReceivedFrame) {
        self.push(frame.data, frame.lost_before);
    }
}

/// One participant's decoder thread.
pub(crate) struct VideoDecoderThread {
    inlet: DecoderInlet,
    /// Dropping it raises its stop flag, which ends the thread after the unit in hand whoever
    /// still holds an inlet, and joins the thread. The queue's receiver goes with the thread, so
    /// later pushes from a link that is still closing are discarded.
    _thread: Worker,
    pub(crate) counters: Arc<DecodeCounters>,
}

/// The decoding loop of one participant: state that decides what to feed openh264.
struct DecodeLoop {
    decoder: H264Decoder,
    who: ParticipantId,
    role: VideoRole,
    frames: DropOldestSender<VideoFrameEvent>,
    repaint: Repaint,
    pli: UnboundedSender<(ParticipantId, VideoRole)>,
    counters: Arc<DecodeCounters>,
    /// True until a keyframe decodes, and again after anything broke the reference chain.
    awaiting_keyframe: bool,
    /// The index the next unit has if the queue evicted nothing.
    expected_index: u64,
}

impl DecodeLoop {
    fn handle(&mut self, unit: &Unit) {
        let evicted_before = unit.index != self.expected_index;
        self.expected_index = unit.index.wrapping_add(1);
        if unit.lost_before || evicted_before {
            self.awaiting_keyframe = true;
        }
        let kind = access_unit_kind(&unit.data);
        if self.awaiting_keyframe && kind == AccessUnitKind::Delta {
            // Its references are gone: decoding it would fail or show garbage. Keep asking
            // (the session rate-limits), in case a PLI or the keyframe itself was lost.
            self.counters
                .skipped_awaiting_keyframe
                .fetch_add(1, Ordering::Relaxed);
            let _ = self.pli.send((self.who.clone(), self.role));
            return;
        }
        let started = Instant::now();
        match self.decoder.decode(&unit.data, CaptureTime::now()) {
            Ok(Some(frame)) => {
                let decoded_at = CaptureTime::now();
                let c = &self.counters;
                c.decode_micros
                    .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                c.decoded.fetch_add(1, Ordering::Relaxed);
                c.width.store(frame.width(), Ordering::Relaxed);
                c.height.store(frame.height(), Ordering::Relaxed);
                self.awaiting_keyframe = false;
                let outcome = self.frames.send(VideoFrameEvent {
                    from: Some(self.who.clone()),
                    role: self.role,
                    frame,
                    decoded_at,
                });
                if let SendOutcome::QueuedDroppedOldest(n) = outcome {
                    c.dropped_consumer_slow
                        .fetch_add(u64::from(n), Ordering::Relaxed);
                }
                (self.repaint)();
            }
            Ok(None) => {
                if kind == AccessUnitKind::Keyframe {
                    self.awaiting_keyframe = false;
                }
            }
            Err(e) => {
                self.counters.decode_errors.fetch_add(1, Ordering::Relaxed);
                if !self.awaiting_keyframe {
                    tracing::debug!(id = %self.who, error = %e, "decode failed; requesting a keyframe");
                }
                self.awaiting_keyframe = true;
                let _ = self.pli.send((self.who.clone(), self.role));
            }
        }
    }
}

impl VideoDecoderThread {
    /// Starts decoding `id`'s camera or screen (`role`); decoded frames go to `frames`,
    /// keyframe needs to `keyframe_needed`.
    pub(crate) fn spawn(
        id: ParticipantId,
        role: VideoRole,
        frames: DropOldestSender<VideoFrameEvent>,
        repaint: Repaint,
        keyframe_needed: UnboundedSender<(ParticipantId, VideoRole)>,
    ) -> Result<Self, EngineError> {
        let decoder = H264Decoder::new().map_err(|e| EngineError::Media(e.to_string()))?;
        let (tx, rx): (DropOldestSender<Unit>, DropOldestReceiver<Unit>) =
            drop_oldest::channel(DECODE_QUEUE);
        let counters = Arc::new(DecodeCounters::default());
        let mut state = DecodeLoop {
            decoder,
            who: id.clone(),
            role,
            frames,
            repaint,
            pli: keyframe_needed.clone(),
            counters: Arc::clone(&counters),
            awaiting_keyframe: true,
            expected_index: 0,
        };
        let name = match role {
            VideoRole::Camera => format!("confab-video-dec-{id}"),
            VideoRole::Screen => format!("confab-screen-dec-{id}"),
        };
        let thread = Worker::spawn(&name, move |stop| {
            loop {
                crossbeam_channel::select! {
                    recv(rx) -> unit => match unit {
                        Ok(unit) => state.handle(&unit),
                        Err(_) => break,
                    },
                    // Only ever disconnects: the owner dropped the thread.
                    recv(stop.raised()) -> _ => break,
                }
            }
        })
        .map_err(|e| EngineError::Media(e.to_string()))?;
        Ok(Self {
            inlet: DecoderInlet {
                queue: tx,
                next_index: Arc::new(Mutex::new(0)),
                counters: Arc::clone(&counters),
                keyframe_needed,
                id,
                role,
            },
            _thread: thread,
            counters,
        })
    }

    /// Where the participant's link pushes received access units.
    pub(crate) fn inlet(&self) -> DecoderInlet {
        self.inlet.clone()
    }

    /// Queues one access unit, as the inlet does.
    #[cfg(test)]
    pub(crate) fn push(&self, data: Bytes, lost_before: bool) {
        self.inlet.push(data, lost_before);
    }
}

#[cfg(test)]
mod tests {
    //! The decoder thread's bookkeeping, driven with real H.264 from openh264: what counts as a
    //! decode error and what as a drop. A repaint callback that can hold the thread still makes
    //! the decode queue overflow on demand instead of by timing luck.

    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "test code: a panic is the test failing, with its message"
    )]

    use std::sync::Condvar;
    use std::time::Duration;

    use super::*;
    use crate::media::drop_oldest::{self, DropOldestReceiver};
    use crate::media::h264::{H264Encoder, H264EncoderConfig};
    use crate::media::synthetic_video::SyntheticVideo;

    /// Failure guard for waits on the decoder thread; nothing asserts on speed.
    const GUARD: Duration = Duration::from_secs(20);

    /// `count` access units of a 160x120 test pattern; IDRs at the indices in `keyframes` (and
    /// at 0, where every stream starts).
    fn stream(count: u32, keyframes: &[u32]) -> Vec<Bytes> {
        let source = SyntheticVideo::new(160, 120, 15).unwrap();
        let mut config = H264EncoderConfig::new(160, 120, 15.0, 300_000);
        config.allow_frame_skip = false;
        let mut encoder = H264Encoder::new(config).unwrap();
        (0..count)
            .map(|n| {
                if keyframes.contains(&n) {
                    encoder.request_keyframe();
                }
                let at = CaptureTime::from_micros(u64::from(n) * 66_667);
                let unit = encoder.encode(&source.render(n, at)).unwrap().unwrap();
                assert_eq!(unit.keyframe, n == 0 || keyframes.contains(&n));
                Bytes::from(unit.data)
            })
            .collect()
    }

    /// A repaint callback that blocks the decoder thread while the gate is closed.
    #[derive(Default)]
    struct Gate {
        closed: Mutex<bool>,
        changed: Condvar,
    }

    impl Gate {
        fn set_closed(&self, closed: bool) {
            *self.closed.lock().unwrap() = closed;
            self.changed.notify_all();
        }

        fn pass(&self) {
            let mut closed = self.closed.lock().unwrap();
            while *closed {
                closed = self.changed.wait(closed).unwrap();
            }
        }
    }

    struct Harness {
        decoder: VideoDecoderThread,
        frames: DropOldestReceiver<VideoFrameEvent>,
        plis: tokio::sync::mpsc::UnboundedReceiver<(ParticipantId, VideoRole)>,
        gate: Arc<Gate>,
    }

    impl Harness {
        /// A decoder thread whose pictures go to a queue of `capacity` that nobody drains.
        fn new(capacity: usize) -> Self {
            let (tx, frames) = drop_oldest::channel(capacity);
            let (pli_tx, plis) = tokio::sync::mpsc::unbounded_channel();
            let gate = Arc::new(Gate::default());
            let g = Arc::clone(&gate);
            let decoder = VideoDecoderThread::spawn(
                "ann".into(),
                VideoRole::Camera,
                tx,
                Arc::new(move || g.pass()),
                pli_tx,
            )
            .unwrap();
            Self {
                decoder,
                frames,
                plis,
                gate,
            }
        }

        fn count(&self, what: fn(&DecodeCounters) -> &AtomicU64) -> u64 {
            what(&self.decoder.counters).load(Ordering::Relaxed)
        }

        /// Waits until the thread has handled `n` units in all (decoded, skipped or failed).
        fn wait_handled(&self, n: u64) {
            let deadline = Instant::now() + GUARD;
            loop {
                let c = &self.decoder.counters;
                let handled = c.decoded.load(Ordering::Relaxed)
                    + c.skipped_awaiting_keyframe.load(Ordering::Relaxed)
                    + c.decode_errors.load(Ordering::Relaxed);
                if handled >= n {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "decoder handled {handled} of {n}"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }

        fn plis(&mut self) -> usize {
            std::iter::from_fn(|| self.plis.try_recv().ok()).count()
        }
    }

    #[test]
    fn a_slow_consumer_drops_pictures_but_causes_no_decode_errors() {
        let mut h = Harness::new(2);
        let units = stream(10, &[]);
        for unit in &units {
            h.decoder.push(unit.clone(), false);
        }
        h.wait_handled(10);
        assert_eq!(h.count(|c| &c.decoded), 10);
        assert_eq!(
            h.count(|c| &c.dropped_consumer_slow),
            8,
            "queue of 2, never drained"
        );
        assert_eq!(h.frames.len(), 2);
        assert_eq!(h.count(|c| &c.decode_errors), 0);
        assert_eq!(h.count(|c| &c.skipped_awaiting_keyframe), 0);
        assert_eq!(h.count(|c| &c.dropped_decoder_behind), 0);
        assert_eq!(h.plis(), 0, "nothing to recover from");
    }

    #[test]
    fn a_decoder_that_falls_behind_drops_units_and_skips_to_the_next_keyframe_without_errors() {
        let mut h = Harness::new(64);
        let units = stream(40, &[37]);
        h.gate.set_closed(true);
        h.decoder.push(units[0].clone(), false);
        // The thread now holds the first picture in the repaint callback, its queue empty.
        let deadline = Instant::now() + GUARD;
        while h.count(|c| &c.decoded) == 0 {
            assert!(Instant::now() < deadline, "first picture never decoded");
            std::thread::sleep(Duration::from_millis(5));
        }
        for unit in &units[1..=35] {
            h.decoder.push(unit.clone(), false);
        }
        assert_eq!(
            h.count(|c| &c.dropped_decoder_behind),
            35 - DECODE_QUEUE as u64,
            "the queue holds {DECODE_QUEUE}"
        );
        assert!(h.plis() >= 1, "an overflow asks for a keyframe at once");
        h.gate.set_closed(false);
        h.wait_handled(1 + DECODE_QUEUE as u64);
        // The oldest were evicted (1..5), so everything queued (6..35) follows the hole, and so
        // does 36: all skipped, cheaply. 37 is an IDR, 38..39 follow it.
        for unit in &units[36..] {
            h.decoder.push(unit.clone(), false);
        }
        h.wait_handled(1 + DECODE_QUEUE as u64 + 4);
        assert_eq!(h.count(|c| &c.decoded), 1 + 3);
        assert_eq!(
            h.count(|c| &c.skipped_awaiting_keyframe),
            DECODE_QUEUE as u64 + 1
        );
        assert_eq!(
            h.count(|c| &c.decode_errors),
            0,
            "overflow is not a decode error"
        );
        assert_eq!(h.count(|c| &c.dropped_consumer_slow), 0);
    }

    #[test]
    fn a_stream_joined_mid_gop_waits_for_its_keyframe_without_errors() {
        let mut h = Harness::new(64);
        let units = stream(12, &[8]);
        for unit in &units[3..] {
            h.decoder.push(unit.clone(), false);
        }
        h.wait_handled(9);
        assert_eq!(h.count(|c| &c.skipped_awaiting_keyframe), 5, "units 3..7");
        assert_eq!(h.count(|c| &c.decoded), 4, "units 8..11");
        assert_eq!(h.count(|c| &c.decode_errors), 0);
        assert!(
            h.plis() >= 5,
            "every skipped unit asks (the session rate-limits)"
        );
    }

    #[test]
    fn lost_packets_skip_to_the_next_keyframe() {
        let h = Harness::new(64);
        let units = stream(8, &[5]);
        for (n, unit) in units.iter().enumerate() {
            if n != 2 {
                h.decoder.push(unit.clone(), n == 3);
            }
        }
        h.wait_handled(7);
        assert_eq!(h.count(|c| &c.decoded), 2 + 3, "0..1, then 5..7");
        assert_eq!(h.count(|c| &c.skipped_awaiting_keyframe), 2, "3 and 4");
        assert_eq!(h.count(|c| &c.decode_errors), 0);
    }

    /// A P slice naming picture parameter set 300 (openh264 knows at most 256): undecodable
    /// whatever came before. Bits: first_mb_in_slice ue(0) = `1`, slice_type ue(5) = `00110`,
    /// pps_id ue(300) = `00000000 100101101`, then filler.
    const BAD_SLICE: [u8; 12] = [
        0,
        0,
        0,
        1,
        0x41,
        0b1001_1000,
        0b0000_0010,
        0b0101_1011,
        0xFF,
        0xFF,
        0xFF,
        0x80,
    ];

    #[test]
    fn corrupt_data_counts_as_a_decode_error_and_asks_for_a_keyframe() {
        let mut h = Harness::new(64);
        let units = stream(6, &[4]);
        h.decoder.push(units[0].clone(), false);
        h.decoder.push(units[1].clone(), false);
        h.decoder.push(Bytes::from_static(&BAD_SLICE), false);
        // After the error the reference chain is broken: 2 and 3 wait, 4 (IDR) and 5 decode.
        for unit in &units[2..] {
            h.decoder.push(unit.clone(), false);
        }
        h.wait_handled(7);
        assert_eq!(h.count(|c| &c.decode_errors), 1);
        assert_eq!(h.count(|c| &c.skipped_awaiting_keyframe), 2);
        assert_eq!(h.count(|c| &c.decoded), 4);
        assert_eq!(h.count(|c| &c.dropped_decoder_behind), 0);
        assert!(h.plis() >= 1);
    }

    #[test]
    fn access_units_are_classified_by_their_slices() {
        let units = stream(2, &[]);
        assert_eq!(access_unit_kind(&units[0]), AccessUnitKind::Keyframe);
        assert_eq!(access_unit_kind(&units[1]), AccessUnitKind::Delta);
        assert_eq!(access_unit_kind(&BAD_SLICE), AccessUnitKind::Delta);
        assert_eq!(
            access_unit_kind(&[0, 0, 1, 0x67, 1, 2]),
            AccessUnitKind::NoPicture
        );
        assert_eq!(access_unit_kind(&[]), AccessUnitKind::NoPicture);
    }
}
