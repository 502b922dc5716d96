//! The loss-based half of our congestion controller: [`LossBound`], an upper bound on the
//! estimate driven by transport-wide feedback, replacing the 0.21.1 `LossController`.
//!
//! Why not the crate's: it judges every feedback batch (≈100 ms, ~15 packets) on its own with a
//! short EWMA, and its bound only ever rises when loss is below 2 %. Worse, the feedback history
//! reports every packet a *lost feedback packet* would have acknowledged as lost, so each lost
//! TWCC report (5 % of them at 5 % random loss) reads as one batch of 100 % loss: the average
//! jumps above 10 %, the bound drops by a tenth, and with loss staying in the 2–10 % band it
//! never comes back. Measured: 1.5 Mbit/s fell to 150–690 kbit/s in 20 s at 5 % loss.
//!
//! Rules (libwebrtc's classic loss-based estimator, over a one-second window, or the last
//! [`MIN_PACKETS`] packets when a second holds fewer):
//! - a run of at least [`FEEDBACK_GAP_RUN`] consecutive packets reported lost *at the start of a
//!   batch* is counted as *unknown*, not lost: the history reports the packets of a lost feedback
//!   message (or of an outage) as lost ahead of the next message's own, and random loss almost
//!   never produces such a run (0.05⁸). A run between two arrived packets of one batch was inside
//!   the range one feedback message covered, so it is loss whatever its length: that is what a
//!   drop-tail queue at a rate cap does to a keyframe burst, and leaving it out kept the estimate
//!   above a 600 kbit/s cap with a fifth of the packets dropped;
//! - nothing is decided on fewer than [`MIN_PACKETS`] known packets or less than
//!   [`MIN_SPAN`] of feedback, except that loss above twice [`HIGH_LOSS`] (a rate cap being
//!   overrun, not random loss) is acted on after [`FAST_SPAN`];
//! - loss < [`LOW_LOSS`]: the bound rises [`INCREASE_PER_SECOND`] per second from at least the
//!   current estimate (so it never lags far above or below what is being sent);
//! - [`LOW_LOSS`]..=[`HIGH_LOSS`]: the bound holds; the delay-based half alone moves the estimate
//!   below it;
//! - loss > [`HIGH_LOSS`]: the bound becomes `estimate × (1 − loss / 2)`, at most once per
//!   [`DECREASE_INTERVAL`] (libwebrtc: 300 ms + RTT), and the window restarts so the next
//!   decision sees fresh feedback. A decrease stops at [`ACKED_FLOOR`] × the rate the remote
//!   acknowledged (what the path carried). Loss that high comes from overrunning a cap, and the
//!   cap is about the acknowledged rate: at the start of a call on a 600 kbit/s path, the
//!   1.5 Mbit/s start's backlog kept the drop-tail queue overflowing for a second while it
//!   drained, each decision cut again, and the estimate went 432 → 385 → 288 → 238 → 205 kbit/s,
//!   a third of the path, then took 15 s at 8 %/s to climb back.
//!
//! **Loss that does not come from our rate** (libwebrtc's loss-based v2 calls it *inherent*
//! loss): a radio link or a lossy path drops a share of packets whatever we send, and backing
//! off does not lower it; at 10 % random loss the classic rules above halve the estimate in 20 s
//! (measured: 1.5 Mbit/s → 600 kbit/s, the picture down to 540p20 with 1.6-3.1 s frozen) for
//! nothing. So each decrease of a loss up to [`MAX_INHERENT_LOSS`] is checked by the next
//! decision: when the loss at the lower rate is still at least [`UNCHANGED_SHARE`] of the loss
//! that caused it, the loss is taken as the path's own; the decrease is undone, and the loss
//! becomes the *inherent loss* `I`. From then on both thresholds are measured from `I`: the
//! bound rises below `I + 2 %` and falls above `I + 5 %`. A rate cap fails that check (loss
//! from overrunning a cap falls when the rate does), and so does loss above
//! [`MAX_INHERENT_LOSS`] or with a standing queue ([`QUEUE_FREE`]), which always backs off. `I` follows lower losses down, a quarter of the way
//! per decision ([`INHERENT_FOLLOW`]), and goes up only through the check again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc::interceptor::PacketReport;
use tracing::debug;

/// Below this loss the bound may rise.
pub const LOW_LOSS: f64 = 0.02;
/// Above this loss the bound falls.
pub const HIGH_LOSS: f64 = 0.10;
/// Consecutive losses from which a run is a feedback gap (or outage), not loss.
pub const FEEDBACK_GAP_RUN: usize = 8;
/// Feedback kept for a decision (longer when it holds fewer than [`MIN_PACKETS`]).
pub const WINDOW: Duration = Duration::from_secs(1);
/// Least known packets for a decision.
pub const MIN_PACKETS: usize = 50;
/// Least time spanned by the feedback in the window for a decision.
pub const MIN_SPAN: Duration = Duration::from_millis(900);
/// Least time spanned by the feedback for a decision on loss above twice [`HIGH_LOSS`].
pub const FAST_SPAN: Duration = Duration::from_millis(300);
/// Least known packets for a decision on loss above twice [`HIGH_LOSS`].
pub const FAST_MIN_PACKETS: usize = 20;
/// Least time between two decreases.
pub const DECREASE_INTERVAL: Duration = Duration::from_millis(300);
/// A decrease stops at this share of the acknowledged rate (the queue bound's backoff too).
pub const ACKED_FLOOR: f64 = super::queue::BACKOFF;
/// Growth per second of the bound on a clean path.
pub const INCREASE_PER_SECOND: f64 = 1.08;
/// The most loss that may be taken as the path's own (see the module docs).
pub const MAX_INHERENT_LOSS: f64 = 0.15;
/// A decrease is undone when the loss after it is at least this share of the loss before.
pub const UNCHANGED_SHARE: f64 = 0.8;
/// Above the inherent loss, the bound falls past this much more loss...
pub const INHERENT_HIGH_MARGIN: f64 = 0.05;
/// ...and rises below this much more.
pub const INHERENT_LOW_MARGIN: f64 = 0.02;
/// Loss is only taken as the path's own while the standing queueing delay stays below this
/// (half the queue bound's [`super::queue::QUEUE_LIMIT`]): loss at a full drop-tail queue is the
/// rate's, and the queue takes longer to drain than one decision.
pub const QUEUE_FREE: Duration = Duration::from_millis(40);
/// Share of the way the inherent loss moves towards a lower window loss at each decision.
pub const INHERENT_FOLLOW: f64 = 0.25;

/// One feedback batch's verdict.
#[derive(Debug, Clone, Copy)]
struct Batch {
    at: Instant,
    known: usize,
    lost: usize,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct LossBound {
    bound: f64,
    min: f64,
    max: f64,
    window: VecDeque<Batch>,
    last_decrease: Option<Instant>,
    last_update: Option<Instant>,
    /// Loss taken as the path's own (0 until a decrease turned out not to lower the loss).
    inherent: f64,
    /// The last decrease, to be checked by the next decision: the loss that caused it and the
    /// bound before it.
    unchecked_decrease: Option<(f64, f64)>,
}

/// Known and lost packets of one batch, in send order, with long runs of losses left out.
fn classify(reports: &[PacketReport]) -> (usize, usize) {
    let (mut known, mut lost, mut run) = (0, 0, 0);
    // Whether a packet of this batch arrived before the current run: a run *between* two
    // arrived packets lies inside the range one feedback message covered, so the receiver
    // really reported it lost (a drop-tail burst at a rate cap), however long it is.
    let mut after_arrival = false;
    let close_run = |run: &mut usize, known: &mut usize, lost: &mut usize, inside: bool| {
        if *run < FEEDBACK_GAP_RUN || inside {
            *known += *run;
            *lost += *run;
        }
        *run = 0;
    };
    for report in reports {
        if report.arrived {
            close_run(&mut run, &mut known, &mut lost, after_arrival);
            after_arrival = true;
            known += 1;
        } else {
            run += 1;
        }
    }
    // A run still open at the end of a batch: the history only reports up to the highest
    // *arrived* packet, so this is rare, and judged by the same rule.
    close_run(&mut run, &mut known, &mut lost, false);
    (known, lost)
}

impl LossBound {
    /// A bound starting at `initial`, kept within `[min, max]`.
    pub fn new(initial: f64, min: f64, max: f64) -> Self {
        Self {
            bound: initial.clamp(min, max),
            min,
            max,
            window: VecDeque::new(),
            last_decrease: None,
            last_update: None,
            inherent: 0.0,
            unchecked_decrease: None,
        }
    }

    /// The current bound in bits per second.
    pub fn bound(&self) -> f64 {
        self.bound
    }

    /// Brings the bound down to `ceiling` if it is above (the estimate was held below the
    /// bounds by what the sender uses; see [`super::ACKED_HEADROOM`]), so it grows again from
    /// there rather than from a value no sending has tested.
    pub fn hold_at_most(&mut self, ceiling: f64) {
        self.bound = self.bound.min(ceiling).max(self.min);
    }

    /// Loss over the current window (unknown packets excluded), if any packet is known.
    pub fn loss(&self) -> Option<f64> {
        let (known, lost) = self.totals();
        (known > 0).then(|| lost as f64 / known as f64)
    }

    fn totals(&self) -> (usize, usize) {
        self.window
            .iter()
            .fold((0, 0), |(k, l), b| (k + b.known, l + b.lost))
    }

    /// Takes one feedback batch at `now`, with `estimate` the combined estimate in force;
    /// returns the new bound.
    ///
    /// `queueing` is the path's standing queueing delay as the queue bound sees it (`None`
    /// before it knows): loss with a queue standing is never taken as the path's own. `acked`
    /// is the rate the remote acknowledged recently (`None` before it is known), the floor of
    /// a decrease.
    pub fn update(
        &mut self,
        now: Instant,
        reports: &[PacketReport],
        estimate: f64,
        queueing: Option<Duration>,
        acked: Option<f64>,
    ) -> f64 {
        let no_queue = queueing.is_none_or(|q| q < QUEUE_FREE);
        let elapsed = self
            .last_update
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
            .min(WINDOW);
        self.last_update = Some(now);
        let (known, lost) = classify(reports);
        if known > 0 {
            self.window.push_back(Batch {
                at: now,
                known,
                lost,
            });
        }
        // Older than the window, unless the rest would be too few packets to judge (low rates).
        while let Some(front) = self.window.front()
            && now.saturating_duration_since(front.at) > WINDOW
            && self.totals().0 - front.known >= MIN_PACKETS
        {
            self.window.pop_front();
        }
        let (known, lost) = self.totals();
        let span = self
            .window
            .front()
            .map_or(Duration::ZERO, |b| now.saturating_duration_since(b.at));
        let loss = if known > 0 {
            lost as f64 / known as f64
        } else {
            0.0
        };
        let severe = loss > 2.0 * HIGH_LOSS && known >= FAST_MIN_PACKETS && span >= FAST_SPAN;
        if !severe && (known < MIN_PACKETS || span < MIN_SPAN) {
            return self.bound;
        }
        if let Some((caused_by, before)) = self.unchecked_decrease.take()
            && loss >= UNCHANGED_SHARE * caused_by
            && no_queue
        {
            // Backing off did not lower the loss: it is the path's, not ours.
            self.inherent = caused_by.min(loss).min(MAX_INHERENT_LOSS);
            self.bound = self.bound.max(before);
            debug!(
                inherent = self.inherent,
                bound = self.bound,
                "loss unchanged at a lower rate: taken as the path's own"
            );
            self.window.clear();
            return self.bound;
        }
        if loss < self.inherent {
            // A cleaner window: follow it down, a quarter of the way per decision (one low
            // second of random loss is not a clean path).
            self.inherent -= (self.inherent - loss) * INHERENT_FOLLOW;
        }
        if loss < LOW_LOSS.max(self.inherent + INHERENT_LOW_MARGIN) {
            let growth = INCREASE_PER_SECOND.powf(elapsed.as_secs_f64());
            self.bound = (self.bound.max(estimate) * growth).clamp(self.min, self.max);
        } else if loss > HIGH_LOSS.max(self.inherent + INHERENT_HIGH_MARGIN)
            && self
                .last_decrease
                .is_none_or(|t| now.saturating_duration_since(t) >= DECREASE_INTERVAL)
        {
            let before = self.bound;
            let current = self.bound.min(estimate);
            let floor = acked.map_or(0.0, |a| a * ACKED_FLOOR).min(current);
            self.bound = (current * (1.0 - loss / 2.0))
                .max(floor)
                .clamp(self.min, self.max);
            self.last_decrease = Some(now);
            self.window.clear();
            if loss <= MAX_INHERENT_LOSS && no_queue {
                self.unchecked_decrease = Some((loss, before));
            }
        }
        self.bound
    }
}
