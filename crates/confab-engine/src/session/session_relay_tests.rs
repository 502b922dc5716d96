//! Session tests whose media crosses a [`NetworkSimulator`]: packet loss with NACK and PLI, and
//! a black hole that forces an ICE restart. Two real sessions with media on (synthetic camera
//! and tone), their signals on the in-process bus of `session_tests.rs`, whose harness they
//! share; each engine's candidates reach the other rewritten to the simulator's mirrors by the
//! engine's own `candidate_rewriter` hook, so the tests also check that hook and that nothing
//! bypasses the simulator. Each test prints its seed; `CONFAB_TEST_SEED` replays one.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::time::{Duration, Instant};

use signaling_client::ClientEvent;

use super::super::api::{EngineEvent, LinkState};
use super::super::media::synthetic_video::read_marker;
use super::tests::{Harness, config, participant, start, wait_for, wait_until, welcome};
use crate::netsim::{Direction, NetworkSimulator, NetworkSpec, Side};
use crate::testing::{SignalBus, forward_route};
use std::sync::Arc;

/// Alice ("aaaa", polite, side A) and Bob ("bbbb", impolite, the newcomer who offers, side B),
/// with media on, connected through `sim`.
async fn relayed_call(sim: &NetworkSimulator) -> (Harness, Harness, Arc<SignalBus>) {
    let bus = Arc::new(SignalBus::default());
    let mut a_config = config("alice", true);
    a_config.candidate_rewriter = Some(sim.rewriter(Side::A));
    let a = start(a_config, welcome("aaaa", &[]), bus.sender("aaaa")).await;
    bus.connect("aaaa", a.signaling.clone());
    a.signaling
        .send(ClientEvent::ParticipantJoined(participant("bbbb")))
        .await
        .unwrap();
    let b_queue = bus.reserve("bbbb");
    let mut b_config = config("bob", true);
    b_config.candidate_rewriter = Some(sim.rewriter(Side::B));
    let b = start(b_config, welcome("bbbb", &["aaaa"]), bus.sender("bbbb")).await;
    forward_route(b_queue, b.signaling.clone());
    for h in [&a, &b] {
        wait_for(&h.events, "connected through the simulator", |e| {
            matches!(
                e,
                EngineEvent::Link {
                    state: LinkState::Connected,
                    ..
                }
            )
        })
        .await;
    }
    (a, b, bus)
}

/// Counts intact pictures from the far side for `d`; fails on a corrupt one.
async fn intact_frames_during(h: &Harness, d: Duration) -> u64 {
    let end = Instant::now() + d;
    let mut n = 0;
    while Instant::now() < end {
        while let Ok(f) = h.video.try_recv() {
            if f.from.is_some() {
                assert!(
                    read_marker(&f.frame).is_ok(),
                    "a corrupt picture was decoded"
                );
                n += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    n
}

fn simulator() -> NetworkSimulator {
    simulator_with("loss=0%")
}

fn simulator_with(spec: &str) -> NetworkSimulator {
    let seed = seed();
    NetworkSimulator::start(&NetworkSpec::parse(spec).unwrap(), seed).unwrap()
}

fn seed() -> u64 {
    let seed = std::env::var("CONFAB_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("impairment seed: {seed} (replay with CONFAB_TEST_SEED={seed})");
    seed
}

/// 5 % packet loss both ways: NACKs go out, lost pictures are never decoded corrupt, and video
/// keeps flowing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_survives_packet_loss_through_nack_and_pli() {
    let sim = simulator();
    let (a, b, _bus) = relayed_call(&sim).await;
    assert!(intact_frames_during(&b, Duration::from_secs(1)).await > 0);
    // Everything so far crossed the simulator, both ways.
    for d in [Direction::AToB, Direction::BToA] {
        assert!(
            sim.counters(d).forwarded_packets > 0,
            "{d:?} crosses the simulator"
        );
    }
    assert_eq!(sim.unknown_datagrams(), 0);
    sim.set_loss(0.05);
    sim.set_delay(Duration::from_millis(10));
    let frames = intact_frames_during(&b, Duration::from_secs(5)).await;
    assert!(sim.counters(Direction::AToB).dropped_loss > 0);
    // 15 fps for 5 s is 75 pictures; losses cost some, but the stream must keep going.
    assert!(frames > 25, "only {frames} pictures decoded under 5 % loss");
    let mut nacks = 0;
    let mut lost = 0;
    while let Ok(ev) = b.events.try_recv() {
        if let EngineEvent::Stats(s) = ev
            && let Some(p) = s.first()
        {
            nacks = nacks.max(p.nacks_sent);
            lost = lost.max(p.packets_lost);
        }
    }
    assert!(lost > 0, "losses are reported");
    assert!(nacks > 0, "lost packets were NACKed");
    drop(a);
}

/// A black hole between the peers: ICE notices, the impolite side restarts ICE through
/// signaling, and when the path comes back media flows again without a new call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_connectivity_triggers_an_ice_restart_and_recovers() {
    let sim = simulator();
    let (a, b, bus) = relayed_call(&sim).await;
    assert!(intact_frames_during(&b, Duration::from_secs(1)).await > 0);
    sim.set_blackhole(true);
    wait_for(&b.events, "bob sees the connection drop", |e| {
        matches!(
            e,
            EngineEvent::Link {
                state: LinkState::Reconnecting,
                ..
            }
        )
    })
    .await;
    wait_until("bob (impolite) restarted ICE", || {
        bus.count("bbbb", "ice_restart") > 0
    })
    .await;
    let dropped = sim.counters(Direction::AToB).dropped_outage;
    assert!(dropped > 0, "the black hole dropped datagrams");
    sim.set_blackhole(false);
    wait_for(&b.events, "bob connected again", |e| {
        matches!(
            e,
            EngineEvent::Link {
                state: LinkState::Connected,
                ..
            }
        )
    })
    .await;
    // Drain what was queued during the outage, then require fresh pictures.
    let _ = intact_frames_during(&b, Duration::from_millis(200)).await;
    assert!(
        intact_frames_during(&b, Duration::from_secs(2)).await > 5,
        "video flows again after the restart"
    );
    assert!(
        bus.count("aaaa", "answer") >= 1,
        "alice answered the restart"
    );
    drop(a);
}

/// The first peer connection's DTLS handshake never completes although ICE connects (the
/// webrtc-rs failure under loss, webrtc-rs/rtc#243): bob, the impolite side, gives up on it
/// after the setup time and offers from a new connection; alice sees the new fingerprint and
/// answers from a new one of hers; the call comes up and media flows both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_whose_dtls_handshake_dies_is_recreated_and_the_call_comes_up() {
    let sim = simulator();
    sim.stall_first_dtls_handshake();
    let (a, b, bus) = relayed_call(&sim).await;
    assert!(
        bus.count("bbbb", "offer") >= 2,
        "bob offered again from a new connection"
    );
    assert!(intact_frames_during(&b, Duration::from_secs(1)).await > 0);
    assert!(intact_frames_during(&a, Duration::from_secs(1)).await > 0);
}

/// Impaired from the first datagram (ICE and DTLS included): the call still connects, video
/// flows intact, and the simulator saw the media: at least as many bytes crossed it each way
/// as the receiving side counted as received media, so none of it went around it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_impaired_from_the_start_connects_and_all_its_media_crosses_the_simulator() {
    let sim = simulator_with("loss=5%,burst=2,delay=15ms,jitter=5ms,rate=2mbit");
    let (a, b, _bus) = relayed_call(&sim).await;
    assert!(
        intact_frames_during(&b, Duration::from_secs(3)).await > 10,
        "video flows through the impaired network"
    );
    let mut received = 0;
    while let Ok(ev) = b.events.try_recv() {
        if let EngineEvent::Stats(s) = ev
            && let Some(p) = s.first()
        {
            received = received.max(p.video_bytes_received + p.audio_bytes_received);
        }
    }
    let ab = sim.counters(Direction::AToB);
    assert!(received > 0, "bob's stats counted media");
    assert!(ab.dropped_loss > 0, "the simulator dropped some: {ab:?}");
    assert!(
        ab.forwarded_bytes >= received,
        "{} media bytes received but only {} crossed the simulator",
        received,
        ab.forwarded_bytes
    );
    assert!(sim.counters(Direction::BToA).forwarded_packets > 0);
    assert_eq!(sim.unknown_datagrams(), 0);
    drop(a);
}
