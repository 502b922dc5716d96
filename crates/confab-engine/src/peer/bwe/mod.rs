//! Send-side bandwidth estimation: Google Congestion Control over transport-wide CC feedback.
//!
//! The estimate is `min(delay-based, loss-based, queue-based)`. The delay-based part is the
//! crate's `Gcc` (arrival-time slope, overuse detector, AIMD rate control), used for its
//! `delay_based_bitrate` only. The loss-based part is ours, [`loss::LossBound`]: the crate's
//! loss controller read every lost TWCC feedback packet as a batch of 100 % loss and never
//! recovered between 2 % and 10 % loss, which collapsed the estimate on a randomly lossy path
//! (see that module, and ARCHITECTURE.md "Bandwidth estimation"). The queue-based part,
//! [`queue::QueueBound`], is ours too: it backs off to the acknowledged rate when the delay
//! *level* shows a standing queue, which a full drop-tail queue hides from the slope.
//!
//! **An estimate is only raised as far as sending has tested it**: an increase stops at
//! [`ACKED_HEADROOM`] × the rate the remote acknowledged + [`ACKED_HEADROOM_BPS`] (libwebrtc's
//! rule in its AIMD rate control). The acknowledged rate is the highest half-second rate of the
//! last [`TESTED_WINDOW`]: at a low frame rate one half-second holds one frame more or less
//! than the next, and the lowest would hold a good estimate back. A sender that does not use its estimate (an encoder short of
//! CPU, a still screen) builds no queue, so nothing else stops the bounds from growing 8 % a
//! second, far past the path: measured at `rate=400kbit` with a CPU-bound debug build, the
//! estimate climbed from 330 to 550 kbit/s in 7 s while about 300 kbit/s was sent. When the
//! headroom holds the estimate, the loss and queue bounds are brought down to it too, so they
//! grow again from it once sending catches up.
//!
//! The estimator lives inside the connection's interceptor chain (moved in at build time), so the
//! application cannot query it. [`PublishingGcc`] stores the current target
//! bitrate in a shared [`AtomicU64`] (as `f64` bits) after every input that can change it:
//! each TWCC feedback batch and each estimator timer. Readers see a value at most one feedback
//! interval (≈100 ms) old.
//!
//! The estimate covers everything this connection sends (audio, video, RTCP); the pacer installed
//! with it sends RTP at this rate, so an encoder configured above it only builds queueing delay.
//! It starts at the configured start bitrate and stays there until TWCC feedback arrives, i.e.
//! until media flows.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtc::interceptor::{BandwidthEstimator, EstimatorStats, Gcc, PacketReport};
use tracing::trace;

pub mod loss;
pub mod queue;

#[cfg(test)]
mod tests;

/// A shared, lock-free view of the current estimate in bits per second.
#[derive(Debug, Clone)]
pub struct EstimateCell(Arc<AtomicU64>);

impl EstimateCell {
    /// A cell holding `bps`.
    pub fn new(bps: f64) -> Self {
        Self(Arc::new(AtomicU64::new(bps.to_bits())))
    }

    fn store(&self, bps: f64) {
        self.0.store(bps.to_bits(), Ordering::Relaxed);
    }

    /// The latest estimate, rounded down to whole bits per second (0 if not finite or negative).
    pub fn bps(&self) -> u64 {
        let v = f64::from_bits(self.0.load(Ordering::Relaxed));
        if v.is_finite() && v > 0.0 {
            // Float-to-int `as` saturates; the value is bounded by the configured maximum.
            v as u64
        } else {
            0
        }
    }
}

/// How much faster than the estimate the pacer may send (libwebrtc uses 2.5): a keyframe burst
/// must leave within a few frame intervals, not be spread over a second.
pub const PACING_FACTOR: f64 = 2.5;

/// An increase of the estimate stops at this multiple of the acknowledged rate (libwebrtc: 1.5).
pub const ACKED_HEADROOM: f64 = 1.5;
/// ...plus this much (bits per second), so a low rate can still grow (libwebrtc: 10 kbit/s).
pub const ACKED_HEADROOM_BPS: f64 = 10_000.0;
/// How far back the acknowledged rate counts for [`ACKED_HEADROOM`].
pub const TESTED_WINDOW: Duration = Duration::from_secs(1);

/// GCC with our loss-based half, publishing its target bitrate into an [`EstimateCell`].
///
/// The congestion-control interceptor reads [`BandwidthEstimator::target_bitrate`] only to set
/// the pacer's rate (`super::pacer`), and the pacer paces at exactly that rate.
/// Pacing at the estimate itself lets every keyframe and every encoder overshoot queue up (seconds
/// of delay were measured), so this reports `estimate × PACING_FACTOR` there, while the
/// application (the encoder's target) reads the plain estimate from the cell.
pub struct PublishingGcc {
    /// The crate's GCC; only its delay-based half is read.
    inner: Gcc,
    loss: loss::LossBound,
    queue: queue::QueueBound,
    min: f64,
    max: f64,
    target: f64,
    /// The acknowledged rate after each feedback batch of the last [`TESTED_WINDOW`].
    tested: VecDeque<(Instant, f64)>,
    out: EstimateCell,
}

impl PublishingGcc {
    /// GCC starting at `start_bps`, clamped to `[min_bps, max_bps]`, publishing into `out`.
    pub fn new(start_bps: u32, min_bps: u32, max_bps: u32, out: EstimateCell) -> Self {
        let (start, min, max) = (f64::from(start_bps), f64::from(min_bps), f64::from(max_bps));
        let inner = Gcc::new(start, min, max);
        let target = inner.delay_based_bitrate();
        out.store(target);
        Self {
            inner,
            loss: loss::LossBound::new(start, min, max),
            queue: queue::QueueBound::new(start, min, max),
            min,
            max,
            target,
            tested: VecDeque::new(),
            out,
        }
    }

    /// The current estimate in bits per second (what the encoder is told).
    pub fn estimate(&self) -> f64 {
        self.target
    }

    /// `proposed`, unless it is an increase past what sending has tested (see the module docs):
    /// then the most of [`ACKED_HEADROOM`] × the acknowledged rate (the highest of the last
    /// [`TESTED_WINDOW`]) + [`ACKED_HEADROOM_BPS`] and the current estimate. Before the
    /// acknowledged rate is known, `proposed` as it is.
    fn limit_increase(&self, proposed: f64) -> f64 {
        if proposed <= self.target {
            return proposed;
        }
        let acked = self.tested.iter().map(|(_, bps)| *bps).reduce(f64::max);
        match acked {
            Some(acked) => {
                let tested = acked * ACKED_HEADROOM + ACKED_HEADROOM_BPS;
                proposed.min(tested.max(self.target))
            }
            None => proposed,
        }
    }

    fn publish(&self) {
        self.out.store(self.estimate());
    }
}

impl BandwidthEstimator for PublishingGcc {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        if reports.is_empty() {
            return;
        }
        self.inner.on_reports(now, reports);
        let delay = self.inner.delay_based_bitrate();
        let queue = self.queue.update(now, reports, self.target);
        let bound = self.loss.update(
            now,
            reports,
            self.target,
            self.queue.queueing(),
            self.queue.acked_bps(),
        );
        let proposed = delay.min(bound).min(queue).clamp(self.min, self.max);
        if let Some(acked) = self.queue.acked_bps() {
            self.tested.push_back((now, acked));
        }
        while self
            .tested
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > TESTED_WINDOW)
        {
            self.tested.pop_front();
        }
        self.target = self.limit_increase(proposed);
        if self.target < proposed {
            self.loss.hold_at_most(self.target);
            self.queue.hold_at_most(self.target);
        }
        trace!(
            delay_bps = delay as u64,
            loss_bound_bps = bound as u64,
            queue_bound_bps = queue as u64,
            acked_bps = self.queue.acked_bps().unwrap_or(0.0) as u64,
            queueing_ms = self.queue.queueing().map_or(0, |q| q.as_millis() as u64),
            loss = self.loss.loss().unwrap_or(0.0),
            "bandwidth estimate"
        );
        self.publish();
    }

    fn target_bitrate(&self) -> f64 {
        self.target * PACING_FACTOR
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
        self.publish();
    }

    // Must be forwarded, or GCC's own timers (loss-based probing, decay) never run.
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        // Non-exhaustive: built by mutation, not by a struct expression.
        let mut stats = self.inner.stats();
        stats.loss_based_bitrate = Some(self.loss.bound());
        stats.packet_loss = self.loss.loss();
        stats
    }
}
