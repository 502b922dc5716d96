//! Send-side bandwidth estimation: Google Congestion Control over transport-wide CC feedback.
//!
//! The estimator lives inside the connection's interceptor chain (moved in at build time), so the
//! application cannot query it. [`PublishingGcc`] wraps `Gcc` and stores the current target
//! bitrate in a shared [`AtomicU64`] (as `f64` bits) after every input that can change it:
//! each TWCC feedback batch and each estimator timer. Readers see a value at most one feedback
//! interval (≈100 ms) old.
//!
//! The estimate covers everything this connection sends (audio, video, RTCP); the pacer installed
//! with it sends RTP at this rate, so an encoder configured above it only builds queueing delay.
//! It starts at the configured start bitrate and stays there until TWCC feedback arrives, i.e.
//! until media flows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rtc::interceptor::{BandwidthEstimator, EstimatorStats, Gcc, PacketReport};

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

/// `Gcc` that publishes its target bitrate into an [`EstimateCell`].
///
/// The congestion-control interceptor reads [`BandwidthEstimator::target_bitrate`] only to set
/// the pacer's rate, and the 0.21 pacer paces at exactly that rate with a 4096-packet queue.
/// Pacing at the estimate itself lets every keyframe and every encoder overshoot queue up (seconds
/// of delay were measured), so this reports `estimate × PACING_FACTOR` there, while the
/// application (the encoder's target) reads the plain estimate from the cell.
pub struct PublishingGcc {
    inner: Gcc,
    out: EstimateCell,
}

impl PublishingGcc {
    /// GCC starting at `start_bps`, clamped to `[min_bps, max_bps]`, publishing into `out`.
    pub fn new(start_bps: u32, min_bps: u32, max_bps: u32, out: EstimateCell) -> Self {
        let inner = Gcc::new(f64::from(start_bps), f64::from(min_bps), f64::from(max_bps));
        out.store(inner.target_bitrate());
        Self { inner, out }
    }

    fn publish(&self) {
        self.out.store(self.inner.target_bitrate());
    }
}

impl BandwidthEstimator for PublishingGcc {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.inner.on_reports(now, reports);
        self.publish();
    }

    fn target_bitrate(&self) -> f64 {
        self.inner.target_bitrate() * PACING_FACTOR
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
        self.inner.stats()
    }
}
