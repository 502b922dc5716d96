//! A third bound on the estimate: [`QueueBound`], from the queueing delay the feedback shows.
//!
//! The crate's delay-based estimator reacts to the *trend* of the delay. On a rate-limited path
//! with a drop-tail queue the estimate climbs past the rate, the queue fills, and once it is full
//! the delay stops rising (the tail is dropped instead): the trend is flat, nothing is detected,
//! and the sender keeps overrunning the link in a sawtooth of burst losses (measured at
//! `rate=600kbit`: the estimate reached 700–750 kbit/s every few seconds, each time with a
//! burst of drops and a frozen picture). libwebrtc caps its estimate by the acknowledged rate for
//! the same reason. This bound looks at the *level*:
//! - the one-way delay of every arrived packet (arrival on the remote clock minus departure on
//!   ours; the unknown clock offset cancels out), smoothed, is compared with the path's own
//!   delay: the [`BASE_PERCENTILE`] of the delays over [`BASE_WINDOW`]. Not the minimum: with
//!   30 ms of random jitter on an order-keeping path (`delay=100ms,jitter=30ms`) the smoothed
//!   delay sits ~100 ms above the minimum but stays within ~50 ms of the 10th percentile;
//! - when the smoothed excess passes [`QUEUE_LIMIT`], the bound drops to [`BACKOFF`] × the rate
//!   the remote acknowledged over the last [`ACKED_WINDOW`] (what the path really carries), at
//!   most once per [`DECREASE_INTERVAL`];
//! - below half the limit it rises [`INCREASE_PER_SECOND`] per second from at least the current
//!   estimate, so it never holds the estimate down on a path without a queue.
//!
//! Random jitter of tens of milliseconds stays under the limit; a queue of a fifth of a second
//! does not. The bound drains the queue it detects, so the window keeps seeing the empty path.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc::interceptor::PacketReport;

/// Queueing delay (smoothed) above which the path is overrun.
pub const QUEUE_LIMIT: Duration = Duration::from_millis(80);
/// How long delays are kept for the path's own delay.
pub const BASE_WINDOW: Duration = Duration::from_secs(10);
/// Which delay of the window counts as the path's own (a low percentile).
pub const BASE_PERCENTILE: f64 = 0.10;
/// Delays kept at most (about 20 s of video at 2.5 Mbit/s).
const MAX_SAMPLES: usize = 5000;
/// Span of arrivals the acknowledged rate is measured over.
pub const ACKED_WINDOW: Duration = Duration::from_millis(500);
/// The bound after an overrun, as a share of the acknowledged rate.
pub const BACKOFF: f64 = 0.85;
/// Least time between two decreases (the queue needs a moment to drain).
pub const DECREASE_INTERVAL: Duration = Duration::from_millis(500);
/// Growth per second of the bound while there is no queue.
pub const INCREASE_PER_SECOND: f64 = 1.08;
/// Weight of a new delay sample in the smoothed delay.
const SMOOTHING: f64 = 0.05;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct QueueBound {
    bound: f64,
    min: f64,
    max: f64,
    epoch: Option<Instant>,
    /// One-way delays (seconds, clock offset included) and when they were reported.
    delays: VecDeque<(Instant, f64)>,
    /// The [`BASE_PERCENTILE`] of `delays`, refreshed with each batch.
    base: Option<f64>,
    smoothed: Option<f64>,
    /// Arrived packets: arrival on the remote clock (seconds) and size in bytes.
    acked: VecDeque<(f64, usize)>,
    last_decrease: Option<Instant>,
    last_update: Option<Instant>,
}

impl QueueBound {
    /// A bound starting at `initial`, kept within `[min, max]`.
    pub fn new(initial: f64, min: f64, max: f64) -> Self {
        Self {
            bound: initial.clamp(min, max),
            min,
            max,
            epoch: None,
            delays: VecDeque::new(),
            base: None,
            smoothed: None,
            acked: VecDeque::new(),
            last_decrease: None,
            last_update: None,
        }
    }

    /// The current bound in bits per second.
    #[cfg(test)]
    pub fn bound(&self) -> f64 {
        self.bound
    }

    /// Brings the bound down to `ceiling` if it is above (see [`super::ACKED_HEADROOM`]).
    pub fn hold_at_most(&mut self, ceiling: f64) {
        self.bound = self.bound.min(ceiling).max(self.min);
    }

    /// The smoothed queueing delay, once packets have arrived.
    pub fn queueing(&self) -> Option<Duration> {
        let excess = self.smoothed? - self.base?;
        Some(Duration::from_secs_f64(excess.max(0.0)))
    }

    fn refresh_base(&mut self) {
        // Only the one order statistic is needed: a selection, not a sort of up to 5000 delays
        // on every feedback batch.
        let mut delays: Vec<f64> = self.delays.iter().map(|(_, d)| *d).collect();
        if delays.is_empty() {
            self.base = None;
            return;
        }
        let i = ((delays.len() as f64 * BASE_PERCENTILE) as usize).min(delays.len() - 1);
        let (_, nth, _) = delays.select_nth_unstable_by(i, f64::total_cmp);
        self.base = Some(*nth);
    }

    /// The rate the remote acknowledged over the last [`ACKED_WINDOW`] of arrivals (what the
    /// path carried), once that window is half full.
    pub fn acked_bps(&self) -> Option<f64> {
        let (first, _) = *self.acked.front()?;
        let (last, _) = *self.acked.back()?;
        let span = last - first;
        if span < ACKED_WINDOW.as_secs_f64() / 2.0 {
            return None;
        }
        let bytes: usize = self.acked.iter().skip(1).map(|(_, b)| b).sum();
        Some(bytes as f64 * 8.0 / span)
    }

    /// Takes one feedback batch at `now`, with `estimate` the combined estimate in force;
    /// returns the new bound.
    pub fn update(&mut self, now: Instant, reports: &[PacketReport], estimate: f64) -> f64 {
        let elapsed = self
            .last_update
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
            .min(Duration::from_secs(1));
        self.last_update = Some(now);
        let epoch = *self
            .epoch
            .get_or_insert_with(|| reports.iter().map(|r| r.departure).min().unwrap_or(now));
        for r in reports.iter().filter(|r| r.arrived) {
            let Some(arrival) = r.arrival else { continue };
            let departure = r.departure.saturating_duration_since(epoch).as_secs_f64();
            let delay = arrival.as_secs_f64() - departure;
            if self.delays.len() == MAX_SAMPLES {
                self.delays.pop_front();
            }
            self.delays.push_back((now, delay));
            self.smoothed = Some(match self.smoothed {
                None => delay,
                Some(s) => s + SMOOTHING * (delay - s),
            });
            self.acked.push_back((arrival.as_secs_f64(), r.size));
        }
        while self
            .delays
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > BASE_WINDOW)
        {
            self.delays.pop_front();
        }
        self.refresh_base();
        if let Some(&(last, _)) = self.acked.back() {
            while self
                .acked
                .front()
                .is_some_and(|(a, _)| last - a > ACKED_WINDOW.as_secs_f64())
            {
                self.acked.pop_front();
            }
        }
        let Some(queueing) = self.queueing() else {
            return self.bound;
        };
        if queueing > QUEUE_LIMIT {
            if self
                .last_decrease
                .is_none_or(|t| now.saturating_duration_since(t) >= DECREASE_INTERVAL)
                && let Some(acked) = self.acked_bps()
            {
                self.bound = (acked * BACKOFF)
                    .min(self.bound.min(estimate))
                    .clamp(self.min, self.max);
                self.last_decrease = Some(now);
            }
        } else if queueing < QUEUE_LIMIT / 2 {
            let growth = INCREASE_PER_SECOND.powf(elapsed.as_secs_f64());
            self.bound = (self.bound.max(estimate) * growth).clamp(self.min, self.max);
        }
        self.bound
    }
}

#[cfg(test)]
mod tests {
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    use super::*;

    /// Packets of 1200 bytes every `spacing_ms`, each delayed `delay_ms(i)` one way, reported
    /// 100 ms at a time; the bound after `seconds`.
    fn drive(seconds: u64, spacing_ms: u64, delay_ms: impl Fn(u64) -> f64) -> QueueBound {
        let t0 = Instant::now();
        let mut q = QueueBound::new(1_000_000.0, 100_000.0, 2_000_000.0);
        let per_batch = 100 / spacing_ms;
        for batch in 0..seconds * 10 {
            let reports: Vec<PacketReport> = (0..per_batch)
                .map(|k| {
                    let i = batch * per_batch + k;
                    let sent = Duration::from_millis(i * spacing_ms);
                    PacketReport {
                        ssrc: 1,
                        id: i,
                        rtp_sequence_number: i as u16,
                        is_twcc: true,
                        twcc_sequence_number: i as u16,
                        size: 1200,
                        arrived: true,
                        departure: t0 + sent,
                        arrival: Some(sent + Duration::from_secs_f64(delay_ms(i) / 1000.0)),
                        ecn: Ecn::default(),
                    }
                })
                .collect();
            let now = t0 + Duration::from_millis((batch + 1) * 100 + 50);
            let estimate = q.bound();
            q.update(now, &reports, estimate);
        }
        q
    }

    #[test]
    fn a_path_without_a_queue_lets_the_bound_rise() {
        let q = drive(5, 10, |_| 20.0);
        assert!(q.bound() > 1_000_000.0, "{}", q.bound());
        assert_eq!(q.queueing(), Some(Duration::ZERO));
    }

    /// 100 ms ± 30 ms (normal) of jitter on a path that keeps packets in order (a delayed
    /// packet holds back those behind it, as the network simulator's jitter does), seeded.
    #[test]
    fn random_jitter_is_not_a_queue() {
        let seed = 0x5eed_u64;
        println!("jitter seed {seed}");
        let mut rng = seed;
        let mut uniform = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut delays = Vec::new();
        let mut out: f64 = 0.0;
        for i in 0..3000u64 {
            let (u1, u2) = (uniform().max(1e-12), uniform());
            let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let sent = i as f64 * 10.0;
            out = out.max(sent + (100.0 + 30.0 * normal).max(0.0));
            delays.push(out - sent);
        }
        let q = drive(30, 10, |i| delays[i as usize]);
        assert!(q.bound() >= 1_000_000.0, "{}", q.bound());
        assert!(q.queueing().unwrap() < QUEUE_LIMIT, "{:?}", q.queueing());
    }

    #[test]
    fn a_standing_queue_backs_off_to_the_acknowledged_rate() {
        // 960 kbit/s acknowledged (1200 bytes every 10 ms); after 2 s a 150 ms queue appears
        // and stays.
        let q = drive(4, 10, |i| if i < 200 { 20.0 } else { 170.0 });
        let acked = 1200.0 * 8.0 * 100.0;
        assert!(q.queueing().unwrap() > QUEUE_LIMIT);
        assert!(
            q.bound() <= acked * BACKOFF * 1.01,
            "{} for {acked} acknowledged",
            q.bound()
        );
    }
}
