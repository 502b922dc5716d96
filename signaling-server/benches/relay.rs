//! Relay latency and throughput through a real signaling server on loopback.
//!
//! Phase 1 (paced): `PAIRS` pairs of real `SignalingClient`s; each sender sends at a fixed rate
//! so the server relays `RATE` messages/s in total for `SECONDS`; every message carries its send
//! time, and the receiver records client-to-client latency. Reports p50/p90/p99/max.
//! Phase 2 (saturation): every sender sends `BURST` messages as fast as it can; reports the
//! relayed messages/s. Clients and server share this process and its two runtime threads, so
//! the figures are an upper bound on the server's own cost.
//!
//! `cargo bench -p signaling-server --bench relay` (env: CONFAB_BENCH_SECONDS, CONFAB_BENCH_RATE).

use std::sync::Arc;
use std::time::{Duration, Instant};

use signaling_client::{ClientConfig, ClientEvent, Signal, SignalingClient};
use signaling_server::{Limits, ServerConfig, SignalingServer};
use tokio::sync::mpsc::Receiver;

const PAIRS: usize = 50;
const BURST: usize = 2_000;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; this harness has no options of its own.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.block_on(run());
}

struct Pair {
    sender: SignalingClient,
    /// Held so the receiving client stays in the room for the whole run.
    _receiver: SignalingClient,
    to: signaling_client::ParticipantId,
    inbox: Receiver<ClientEvent>,
}

async fn run() {
    let seconds = env_or("CONFAB_BENCH_SECONDS", 10);
    let rate = env_or("CONFAB_BENCH_RATE", 5_000);
    let mut config = ServerConfig::new(([127, 0, 0, 1], 0).into());
    config.limits = Limits {
        messages_per_second: 1_000_000,
        message_burst: 1_000_000,
        outbound_queue: 4 * BURST,
        ..Limits::default()
    };
    let server = SignalingServer::start(config)
        .await
        .unwrap_or_else(|e| panic!("server: {e}"));
    let url = server.ws_url();
    let mut pairs = Vec::new();
    for i in 0..PAIRS {
        let room = format!("bench-{i}");
        // The sender's own events (the receiver joining) are not needed: drop its stream.
        let (sender, _, _) = SignalingClient::connect(ClientConfig::new(&url, &room, "tx"))
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let (receiver, welcome, inbox) =
            SignalingClient::connect(ClientConfig::new(&url, &room, "rx"))
                .await
                .unwrap_or_else(|e| panic!("connect: {e}"));
        pairs.push(Pair {
            sender,
            _receiver: receiver,
            to: welcome.id,
            inbox,
        });
    }

    let epoch = Arc::new(Instant::now());
    let per_pair = rate as f64 / PAIRS as f64;
    let per_pair_total = (per_pair * seconds as f64).round() as usize;
    println!(
        "relay bench: {PAIRS} pairs, {rate} msg/s total for {seconds} s ({per_pair_total} messages per pair)"
    );
    let mut tasks = Vec::new();
    let period = Duration::from_secs_f64(1.0 / per_pair);
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    for (k, pair) in pairs.into_iter().enumerate() {
        let epoch = Arc::clone(&epoch);
        // Stagger the senders across one period so the server sees an even stream, not
        // synchronized bursts of PAIRS messages.
        let first = start + period.mul_f64(k as f64 / PAIRS as f64);
        tasks.push(tokio::spawn(paced_pair(
            pair,
            epoch,
            first,
            period,
            per_pair_total,
        )));
    }
    let started = Instant::now();
    let mut latencies_us = Vec::new();
    let mut pairs = Vec::new();
    for t in tasks {
        let (pair, lat) = t.await.unwrap_or_else(|e| panic!("pair task: {e}"));
        latencies_us.extend(lat);
        pairs.push(pair);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    let pct = |p: f64| {
        let idx = ((latencies_us.len() as f64 - 1.0) * p).round() as usize;
        latencies_us.get(idx).copied().unwrap_or(0) as f64 / 1000.0
    };
    println!(
        "paced:      {} messages in {:.2} s = {:.0} msg/s; latency ms p50 {:.3} p90 {:.3} p99 {:.3} max {:.3}",
        latencies_us.len(),
        elapsed,
        latencies_us.len() as f64 / elapsed,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );

    let started = Instant::now();
    let mut tasks = Vec::new();
    for pair in pairs {
        tasks.push(tokio::spawn(async move {
            // Bind the whole pair: a closure capturing only some fields would drop the
            // receiver's handle, and with it the receiver's membership.
            let mut pair = pair;
            for i in 0..BURST {
                let _ = pair
                    .sender
                    .send_signal(pair.to.clone(), candidate(i as u64));
            }
            for _ in 0..BURST {
                match pair.inbox.recv().await {
                    Some(ClientEvent::Signal { .. }) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap_or_else(|e| panic!("burst task: {e}"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = PAIRS * BURST;
    println!(
        "saturation: {total} messages in {elapsed:.2} s = {:.0} msg/s relayed",
        total as f64 / elapsed
    );
    server.shutdown(Duration::from_secs(2)).await;
}

fn candidate(payload: u64) -> Signal {
    Signal::Candidate {
        candidate: payload.to_string(),
        sdp_mid: None,
        sdp_mline_index: None,
        username_fragment: None,
    }
}

/// Sends `total` messages, one per `period` from `first`, each stamped with its send time (µs since `epoch`), and
/// returns the latencies the receiver measured.
async fn paced_pair(
    mut pair: Pair,
    epoch: Arc<Instant>,
    first: tokio::time::Instant,
    period: Duration,
    total: usize,
) -> (Pair, Vec<u64>) {
    let sender = pair.sender.clone();
    let to = pair.to.clone();
    let send_epoch = Arc::clone(&epoch);
    let send = tokio::spawn(async move {
        let epoch = send_epoch;
        let mut tick = tokio::time::interval_at(first, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for _ in 0..total {
            tick.tick().await;
            let _ = sender.send_signal(to.clone(), candidate(epoch.elapsed().as_nanos() as u64));
        }
    });
    let mut latencies = Vec::with_capacity(total);
    for _ in 0..total {
        match pair.inbox.recv().await {
            Some(ClientEvent::Signal {
                signal: Signal::Candidate { candidate, .. },
                ..
            }) => {
                let sent_ns: u64 = candidate.parse().unwrap_or(0);
                let now_ns = epoch.elapsed().as_nanos() as u64;
                latencies.push(now_ns.saturating_sub(sent_ns) / 1000);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let _ = send.await;
    (pair, latencies)
}
