//! The estimator fed synthetic transport-wide feedback from a closed-loop path model: the sender
//! sends at the estimate, packets cross a path with random loss and (optionally) a drop-tail
//! bottleneck, and feedback every 100 ms reports them the way the crate's history does (a lost
//! feedback packet turns every packet it covered into a loss in the next batch).

use std::time::{Duration, Instant};

use rtc::interceptor::{BandwidthEstimator, Gcc, PacketReport};
use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

use super::loss::{FEEDBACK_GAP_RUN, LossBound};
use super::{EstimateCell, PublishingGcc};

const PACKET_BYTES: usize = 1200;
const PROPAGATION_MS: f64 = 20.0;
const FEEDBACK_MS: u64 = 100;

/// A drop-tail bottleneck.
struct Bottleneck {
    rate_bps: f64,
    max_queue_ms: f64,
    free_at_ms: f64,
}

struct Path {
    rng: u64,
    epoch: Instant,
    now_ms: u64,
    next_id: u64,
    loss: f64,
    feedback_loss: f64,
    bottleneck: Option<Bottleneck>,
    /// Packets the bottleneck's queue dropped.
    queue_drops: u64,
    /// Sent, not yet reported: (report, arrival in ms on the receiver's clock).
    pending: Vec<(PacketReport, Option<f64>)>,
}

impl Path {
    fn new(seed: u64, loss: f64, feedback_loss: f64) -> Self {
        println!("path seed {seed}, loss {loss}, feedback loss {feedback_loss}");
        Self {
            rng: seed | 1,
            epoch: Instant::now(),
            now_ms: 0,
            next_id: 0,
            loss,
            feedback_loss,
            bottleneck: None,
            queue_drops: 0,
            pending: Vec::new(),
        }
    }

    /// A path without random loss behind a drop-tail bottleneck of `rate_bps` whose queue holds
    /// `max_queue_ms` (a few ms: a policer).
    fn capped(seed: u64, rate_bps: f64, max_queue_ms: f64) -> Self {
        let mut path = Self::new(seed, 0.0, 0.0);
        path.bottleneck = Some(Bottleneck {
            rate_bps,
            max_queue_ms,
            free_at_ms: 0.0,
        });
        path
    }

    fn random(&mut self) -> f64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Sends at `bps` for one feedback interval, then delivers that interval's feedback.
    fn step(&mut self, estimator: &mut dyn BandwidthEstimator, bps: f64) {
        let count = (bps * FEEDBACK_MS as f64 / 1000.0 / (PACKET_BYTES * 8) as f64).max(1.0);
        let spacing = FEEDBACK_MS as f64 / count;
        for i in 0..count as u64 {
            let sent_ms = self.now_ms as f64 + i as f64 * spacing;
            let id = self.next_id;
            self.next_id += 1;
            let mut arrival = (self.random() >= self.loss).then_some(sent_ms + PROPAGATION_MS);
            if let (Some(link), Some(_)) = (self.bottleneck.as_mut(), arrival) {
                let start = link.free_at_ms.max(sent_ms);
                if start - sent_ms > link.max_queue_ms {
                    arrival = None;
                    self.queue_drops += 1;
                } else {
                    link.free_at_ms = start + (PACKET_BYTES * 8) as f64 * 1000.0 / link.rate_bps;
                    arrival = Some(link.free_at_ms + PROPAGATION_MS);
                }
            }
            let report = PacketReport {
                ssrc: 1,
                id,
                rtp_sequence_number: id as u16,
                is_twcc: true,
                twcc_sequence_number: id as u16,
                size: PACKET_BYTES,
                arrived: false,
                departure: self.epoch + Duration::from_micros((sent_ms * 1000.0) as u64),
                arrival: None,
                ecn: Ecn::default(),
            };
            self.pending.push((report, arrival));
        }
        self.now_ms += FEEDBACK_MS;
        let feedback_ms = self.now_ms as f64 + PROPAGATION_MS;
        // Covers everything up to the last packet that has arrived by now.
        let Some(last) = self
            .pending
            .iter()
            .rposition(|(_, a)| a.is_some_and(|a| a <= feedback_ms))
        else {
            return;
        };
        let lost_feedback = self.random() < self.feedback_loss;
        let covered: Vec<_> = self.pending.drain(..=last).collect();
        if lost_feedback {
            // Never acknowledged: the next feedback's batch reports them lost.
            let mut unacknowledged: Vec<_> = covered.into_iter().map(|(r, _)| (r, None)).collect();
            unacknowledged.append(&mut self.pending);
            self.pending = unacknowledged;
            return;
        }
        let reports: Vec<PacketReport> = covered
            .into_iter()
            .map(|(mut r, a)| {
                r.arrived = a.is_some();
                r.arrival = a.map(|ms| Duration::from_micros((ms * 1000.0) as u64));
                r
            })
            .collect();
        let at = self.epoch + Duration::from_micros((feedback_ms * 1000.0) as u64);
        estimator.on_reports(at, &reports);
    }
}

fn ours(start: u32, max: u32) -> PublishingGcc {
    PublishingGcc::new(start, 100_000, max, EstimateCell::new(0.0))
}

/// Runs `seconds` of closed loop; returns the estimate after each second.
fn run(path: &mut Path, gcc: &mut PublishingGcc, seconds: u64) -> Vec<f64> {
    let mut per_second = Vec::new();
    for step in 1..=seconds * 1000 / FEEDBACK_MS {
        let bps = gcc.estimate();
        path.step(gcc, bps);
        if step % (1000 / FEEDBACK_MS) == 0 {
            per_second.push(gcc.estimate());
        }
    }
    per_second
}

/// [`run`] with a sender that never sends more than `limit_bps` (an encoder short of CPU, a
/// still screen), whatever the estimate.
fn run_limited(path: &mut Path, gcc: &mut PublishingGcc, seconds: u64, limit_bps: f64) -> Vec<f64> {
    let mut per_second = Vec::new();
    for step in 1..=seconds * 1000 / FEEDBACK_MS {
        let bps = gcc.estimate().min(limit_bps);
        path.step(gcc, bps);
        if step % (1000 / FEEDBACK_MS) == 0 {
            per_second.push(gcc.estimate());
        }
    }
    per_second
}

/// A sender that uses 300 kbit/s of a clean path: the estimate does not climb past what that
/// sending has tested (1.5 × 300 + 10 kbit/s), however long it lasts; once the sender uses the
/// estimate again it grows from there, at the usual pace (8 % a second), not in a jump.
#[test]
fn an_estimate_the_sender_does_not_use_is_not_raised_past_what_was_tested() {
    let mut path = Path::new(11, 0.0, 0.0);
    let mut gcc = ours(300_000, 2_500_000);
    let limited = run_limited(&mut path, &mut gcc, 30, 300_000.0);
    println!("app-limited at 300 kbit/s: {limited:?}");
    let tested = 300_000.0 * super::ACKED_HEADROOM + super::ACKED_HEADROOM_BPS;
    assert!(
        limited.iter().all(|e| *e <= tested * 1.02),
        "above {tested}: {limited:?}"
    );
    assert!(
        limited[limited.len() - 1] >= 400_000.0,
        "the headroom is there to grow into: {limited:?}"
    );
    let free = run(&mut path, &mut gcc, 10);
    println!("then sending at the estimate: {free:?}");
    assert!(
        free[0] <= limited[limited.len() - 1] * 1.2,
        "no jump: {free:?}"
    );
    assert!(free[9] >= free[0] * 1.5, "it grows again: {free:?}");
}

#[test]
fn five_percent_random_loss_with_flat_delay_keeps_the_estimate() {
    for seed in [1, 2, 3] {
        let mut path = Path::new(seed, 0.05, 0.05);
        let mut gcc = ours(1_500_000, 1_500_000);
        let estimates = run(&mut path, &mut gcc, 20);
        let worst = estimates.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(
            worst >= 1_400_000.0,
            "seed {seed}: fell to {worst}: {estimates:?}"
        );
    }
}

#[test]
fn five_percent_random_loss_holds_a_lower_start_too() {
    let mut path = Path::new(4, 0.05, 0.05);
    let mut gcc = ours(1_000_000, 2_500_000);
    let estimates = run(&mut path, &mut gcc, 20);
    let worst = estimates.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(worst >= 950_000.0, "fell to {worst}: {estimates:?}");
}

/// Why the crate's estimator is not used as it is: the same path collapses it.
#[test]
fn the_crates_gcc_collapses_under_the_same_input() {
    let mut path = Path::new(1, 0.05, 0.05);
    let mut gcc = Gcc::new(1_500_000.0, 100_000.0, 1_500_000.0);
    for _ in 0..200 {
        let bps = gcc.target_bitrate();
        path.step(&mut gcc, bps);
    }
    // Ours keeps ≥ 1.4 Mbit/s on this path (above); the crate's loses about a third.
    assert!(
        gcc.target_bitrate() < 1_200_000.0,
        "the crate's GCC held {} at 5 % loss: is our loss half still needed?",
        gcc.target_bitrate()
    );
}

#[test]
fn a_rate_cap_brings_the_estimate_down_within_two_seconds() {
    let mut path = Path::capped(5, 600_000.0, 300.0);
    let mut gcc = ours(1_500_000, 1_500_000);
    let estimates = run(&mut path, &mut gcc, 10);
    assert!(
        estimates[1] <= 700_000.0,
        "still {} after 2 s: {estimates:?}",
        estimates[1]
    );
    for e in &estimates[2..] {
        assert!(
            (200_000.0..=800_000.0).contains(e),
            "not fitting the cap: {estimates:?}"
        );
    }
}

/// A rate cap with a deep drop-tail queue (200 ms): once the estimate has come down it stays
/// under the cap instead of overrunning it in a sawtooth of burst drops every few seconds (the
/// queue bound; without it the delay slope is flat while the queue sits full).
#[test]
fn a_full_drop_tail_queue_is_not_overrun_again_and_again() {
    let mut path = Path::capped(9, 600_000.0, 200.0);
    let mut gcc = ours(1_500_000, 1_500_000);
    let settling = run(&mut path, &mut gcc, 5);
    let drops_while_settling = path.queue_drops;
    let settled = run(&mut path, &mut gcc, 25);
    let later_drops = path.queue_drops - drops_while_settling;
    println!("settling {settling:?}, settled {settled:?}, later drops {later_drops}");
    assert!(
        settled.iter().all(|e| (300_000.0..=720_000.0).contains(e)),
        "{settled:?}"
    );
    assert!(
        later_drops < 20,
        "{later_drops} packets dropped at the cap after settling: {settled:?}"
    );
}

#[test]
fn heavy_random_loss_lowers_the_estimate_and_a_clean_path_restores_it() {
    let mut path = Path::new(6, 0.25, 0.0);
    let mut gcc = ours(1_500_000, 1_500_000);
    let lossy = run(&mut path, &mut gcc, 5);
    let low = lossy.last().copied().unwrap_or_default();
    assert!(low < 1_000_000.0, "25 % loss kept {lossy:?}");
    path.loss = 0.0;
    let clean = run(&mut path, &mut gcc, 10);
    let restored = clean.last().copied().unwrap_or_default();
    assert!(
        restored > low * 1.3,
        "no recovery: {lossy:?} then {clean:?}"
    );
}

fn report(id: u64, arrived: bool) -> PacketReport {
    PacketReport {
        ssrc: 1,
        id,
        rtp_sequence_number: id as u16,
        is_twcc: true,
        twcc_sequence_number: id as u16,
        size: PACKET_BYTES,
        arrived,
        departure: Instant::now(),
        arrival: arrived.then_some(Duration::from_millis(id)),
        ecn: Ecn::default(),
    }
}

#[test]
fn a_long_run_of_losses_is_unknown_not_lost() {
    let t = Instant::now();
    let mut bound = LossBound::new(1_000_000.0, 100_000.0, 2_000_000.0);
    // One second of batches, each with a feedback-gap-sized run and nothing else lost.
    for i in 0..10u64 {
        let mut batch: Vec<PacketReport> = (0..FEEDBACK_GAP_RUN as u64)
            .map(|k| report(i * 100 + k, false))
            .collect();
        batch.extend((10..30).map(|k| report(i * 100 + k, true)));
        bound.update(
            t + Duration::from_millis(i * 100),
            &batch,
            1_000_000.0,
            None,
            None,
        );
    }
    assert_eq!(bound.loss(), Some(0.0));
    assert!(bound.bound() > 1_000_000.0, "a clean path may rise");
}

#[test]
fn a_long_run_between_arrived_packets_is_loss() {
    let t = Instant::now();
    let mut bound = LossBound::new(1_000_000.0, 100_000.0, 2_000_000.0);
    for i in 0..12u64 {
        // A drop-tail burst: 10 of 40 lost in one run, inside the batch.
        let batch: Vec<PacketReport> = (0..40)
            .map(|k| report(i * 100 + k, !(20..30).contains(&k)))
            .collect();
        bound.update(
            t + Duration::from_millis(i * 100),
            &batch,
            1_000_000.0,
            None,
            None,
        );
    }
    assert!(
        bound.bound() < 1_000_000.0,
        "25 % loss must lower the bound"
    );
}

#[test]
fn a_decrease_stops_at_what_the_path_delivered() {
    // An overrun of a cap: 40 % of every batch lost inside it (drop-tail), while the path goes
    // on delivering 600 kbit/s.
    let t = Instant::now();
    let run = |acked: Option<f64>| {
        let mut bound = LossBound::new(1_000_000.0, 100_000.0, 2_000_000.0);
        let mut estimate = 1_000_000.0;
        for i in 0..30u64 {
            let batch: Vec<PacketReport> = (0..40)
                .map(|k| report(i * 100 + k, !(20..36).contains(&k)))
                .collect();
            estimate = bound.update(
                t + Duration::from_millis(i * 100),
                &batch,
                estimate,
                None,
                acked,
            );
        }
        estimate
    };
    let floored = run(Some(600_000.0));
    let unfloored = run(None);
    assert!(
        (509_000.0..1_000_000.0).contains(&floored),
        "down to 0.85 x the delivered 600 kbit/s and no further: {floored}"
    );
    assert!(
        unfloored < 300_000.0,
        "without the acknowledged rate the same loss goes on cutting: {unfloored}"
    );
}

#[test]
fn short_runs_count_as_loss() {
    let t = Instant::now();
    let mut bound = LossBound::new(1_000_000.0, 100_000.0, 2_000_000.0);
    for i in 0..12u64 {
        // 6 of 30 lost, in runs of 2: 20 %.
        let batch: Vec<PacketReport> = (0..30).map(|k| report(i * 100 + k, k % 10 >= 2)).collect();
        bound.update(
            t + Duration::from_millis(i * 100),
            &batch,
            1_000_000.0,
            None,
            None,
        );
    }
    assert!(
        bound.bound() < 1_000_000.0,
        "20 % loss must lower the bound"
    );
}

/// 10 % random loss with a flat delay (a lossy radio link, not a full queue): backing off does
/// not lower the loss, so after the first decrease the loss is taken as the path's own and the
/// estimate comes back to the cap instead of halving in 20 s.
#[test]
fn ten_percent_random_loss_is_taken_as_the_paths_own_and_keeps_the_estimate() {
    let mut path = Path::new(11, 0.10, 0.10);
    let mut gcc = ours(1_500_000, 1_500_000);
    let estimates = run(&mut path, &mut gcc, 20);
    println!("{estimates:?}");
    assert!(
        estimates[5..].iter().all(|e| *e >= 1_200_000.0),
        "the estimate fell under random loss: {estimates:?}"
    );
}

/// A policer (a rate cap with almost no queue: loss without delay) is not random loss: its
/// loss falls when the rate does, so the decreases stand, down to where its loss is in the
/// 2-10 % band the classic rules hold in: at most 1 / 0.9 of the policed rate.
#[test]
fn a_policer_is_not_taken_for_random_loss() {
    let mut path = Path::capped(12, 1_000_000.0, 5.0);
    let mut gcc = ours(1_500_000, 1_500_000);
    let estimates = run(&mut path, &mut gcc, 20);
    println!("{estimates:?}, {} dropped", path.queue_drops);
    assert!(
        estimates[8..].iter().all(|e| *e <= 1_000_000.0 / 0.9),
        "the estimate stayed above the policed rate: {estimates:?}"
    );
}
