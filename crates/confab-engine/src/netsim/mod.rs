//! The network simulator: loss (independent or in bursts), delay, jitter, a rate limit with a
//! drop-tail queue, and outages, applied per direction in user space to every UDP datagram
//! between two engines (this machine's kernel has no `netem`). `confab loopback --network …`
//! measures calls through it, and the engine's tests impair calls with it.
//!
//! | file | owns |
//! |---|---|
//! | `spec.rs` | [`NetworkSpec`]: parsing `--network` (items, units, profiles) into per-direction [`LinkParams`] and [`Outage`]s; [`SpecError`] |
//! | `link.rs` | [`LinkModel`]: one direction as a pure model (outage → queue → loss → delay), [`LinkCounters`] |
//! | `relay.rs` | [`NetworkSimulator`]: mirror sockets, the candidate rewriter hook, delivery at the model's times |
//! | `rng.rs` | the seeded generator (SplitMix64: same seed, same decisions, on any platform) |
//!
//! Using it: start a [`NetworkSimulator`] with a spec and a seed, give each engine
//! `config.candidate_rewriter = Some(sim.rewriter(Side::A))` (and `Side::B`), call
//! [`NetworkSimulator::call_started`] when the call starts (outages count from there), and read
//! [`NetworkSimulator::counters`] per direction. The parameters can also be changed while it
//! runs ([`NetworkSimulator::set_loss`], [`NetworkSimulator::set_blackhole`], …).
//!
//! Limits: UDP host (and server-reflexive) candidates only; TCP candidates and hostnames are not
//! signaled at all, so nothing bypasses the simulator. Mirrors listen on 127.0.0.1 (or ::1), so
//! both engines must be on this machine.

mod link;
mod relay;
mod rng;
pub mod spec;

pub use link::{LinkCounters, LinkModel, Verdict};
pub use relay::{Direction, NetworkSimulator, Side, SimError};
pub use spec::{LinkParams, NetworkSpec, Outage, QueueLimit, SpecError};

/// A random seed for a run whose seed was not given (print it, so the run can be replayed).
#[must_use]
pub fn random_seed() -> u64 {
    rng::random_seed()
}
