//! One direction of the simulated link, as a pure model: each datagram offered at a time gets a
//! verdict (delivered at some later time, or dropped, and why). No sockets and no clock: `now`
//! is an argument, so the tests drive it with made-up times.
//!
//! A datagram goes through, in order:
//! 1. **outage**: dropped while an outage window (or the runtime black hole) is on;
//! 2. **rate limit**: a FIFO queue served at the rate (serialization `bytes × 8 / rate`); a
//!    datagram that would take the waiting bytes over the queue bound is dropped (drop-tail), so
//!    an over-full link shows as queueing delay first and loss second, as real bottlenecks do
//!    (not a policer, which would drop at once);
//! 3. **loss**: independent with the loss rate, or a two-state Gilbert model (a "bad" state that
//!    loses everything, left with probability `1 / burst` per datagram and entered with
//!    `loss × (1 / burst) / (1 − loss)`, so the mean burst is `burst` and the average loss stays
//!    `loss`);
//! 4. **delay**: `delay + jitter × N(0, 1)` (never negative). Unless reordering is allowed, a
//!    datagram never overtakes the one before it (it waits for it), as on most real links and
//!    in libwebrtc's simulated network; the mean delay then rises a little above `delay`.
//!
//! Contract: the same parameters, seed and sequence of `(now, bytes)` give the same verdicts.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::rng::SimRng;
use super::spec::LinkParams;

/// What happened to one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forwarded; to be delivered at this time.
    Deliver(Instant),
    /// Dropped by random loss.
    Lost,
    /// Dropped because the rate limit's queue was full.
    QueueFull,
    /// Dropped by an outage (or the black hole).
    Outage,
}

/// What one direction did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LinkCounters {
    /// Datagrams forwarded.
    pub forwarded_packets: u64,
    /// Bytes forwarded (UDP payloads).
    pub forwarded_bytes: u64,
    /// Datagrams dropped by random loss.
    pub dropped_loss: u64,
    /// Datagrams dropped because the queue was full.
    pub dropped_queue: u64,
    /// Datagrams dropped by an outage or the black hole.
    pub dropped_outage: u64,
}

impl LinkCounters {
    /// Every datagram dropped, for whatever reason.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped_loss + self.dropped_queue + self.dropped_outage
    }
}

/// One direction; see the module docs.
#[derive(Debug)]
pub struct LinkModel {
    params: LinkParams,
    rng: SimRng,
    /// Gilbert state: in a loss burst.
    bad: bool,
    /// When the rate limit finishes sending what it has queued.
    busy_until: Option<Instant>,
    /// Latest delivery time handed out (for the no-reordering rule).
    last_delivery: Option<Instant>,
    outages: Vec<(Instant, Instant)>,
    blackhole: bool,
    counters: LinkCounters,
}

impl LinkModel {
    /// A direction with `params`, its random decisions seeded by `seed` and `stream`.
    #[must_use]
    pub fn new(params: LinkParams, seed: u64, stream: u64) -> Self {
        Self {
            params,
            rng: SimRng::new(seed, stream),
            bad: false,
            busy_until: None,
            last_delivery: None,
            outages: Vec::new(),
            blackhole: false,
            counters: LinkCounters::default(),
        }
    }

    /// The current parameters.
    #[must_use]
    pub fn params(&self) -> &LinkParams {
        &self.params
    }

    /// Changes the parameters from now on (what is queued keeps its times).
    pub fn set_params(&mut self, params: LinkParams) {
        self.params = params;
    }

    /// Drops everything between each `(from, until)`.
    pub fn set_outages(&mut self, windows: Vec<(Instant, Instant)>) {
        self.outages = windows;
    }

    /// Drops everything while on (a cable pulled), until turned off.
    pub fn set_blackhole(&mut self, on: bool) {
        self.blackhole = on;
    }

    /// What it did so far.
    #[must_use]
    pub fn counters(&self) -> LinkCounters {
        self.counters
    }

    /// The verdict on a datagram of `bytes` offered at `now`.
    pub fn offer(&mut self, now: Instant, bytes: usize) -> Verdict {
        if self.blackhole || self.outages.iter().any(|(a, b)| *a <= now && now < *b) {
            self.counters.dropped_outage += 1;
            return Verdict::Outage;
        }
        let Some(departure) = self.serialize(now, bytes) else {
            self.counters.dropped_queue += 1;
            return Verdict::QueueFull;
        };
        if self.lose() {
            self.counters.dropped_loss += 1;
            return Verdict::Lost;
        }
        let p = &self.params;
        let extra = p.delay.as_secs_f64() + p.jitter.as_secs_f64() * self.rng.normal();
        let mut at = departure + Duration::from_secs_f64(extra.max(0.0));
        if !p.reorder
            && let Some(last) = self.last_delivery
        {
            at = at.max(last);
        }
        self.last_delivery = Some(self.last_delivery.map_or(at, |l| l.max(at)));
        self.counters.forwarded_packets += 1;
        self.counters.forwarded_bytes += bytes as u64;
        Verdict::Deliver(at)
    }

    /// When the datagram has left the rate limit, or `None` if the queue is full.
    fn serialize(&mut self, now: Instant, bytes: usize) -> Option<Instant> {
        let Some(rate) = self.params.rate_bps else {
            return Some(now);
        };
        let rate = rate as f64;
        let busy = self.busy_until.filter(|b| *b > now);
        if let Some(b) = busy {
            let waiting = (b - now).as_secs_f64() * rate / 8.0;
            let limit = self.params.queue_bytes().unwrap_or(u64::MAX) as f64;
            if waiting + bytes as f64 > limit {
                return None;
            }
        }
        let done = busy.unwrap_or(now) + Duration::from_secs_f64(bytes as f64 * 8.0 / rate);
        self.busy_until = Some(done);
        Some(done)
    }

    fn lose(&mut self) -> bool {
        let p = self.params.loss;
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        let Some(burst) = self.params.burst else {
            return self.rng.chance(p);
        };
        let leave = 1.0 / burst;
        let enter = (p * leave / (1.0 - p)).min(1.0);
        if self.bad {
            if self.rng.chance(leave) {
                self.bad = false;
            }
        } else if self.rng.chance(enter) {
            self.bad = true;
        }
        self.bad
    }
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
