//! Session tests whose media crosses an [`ImpairmentRelay`]: packet loss with NACK and PLI, and a
//! black hole that forces an ICE restart. Two real sessions with media on (synthetic camera and
//! tone), their signals on the in-process bus of `session_tests.rs`, whose harness they share.
//! Each test prints its impairment seed; `CONFAB_TEST_SEED` replays one.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use signaling_client::{ClientEvent, ParticipantId, Signal};
use tokio::sync::mpsc;

use super::super::api::{EngineEvent, LinkState};
use super::super::media::synthetic_video::read_marker;
use super::SignalSender;
use super::tests::{Harness, config, participant, start, wait_for, wait_until, welcome};
use crate::testing::{ImpairmentRelay, SignalBus, forward_route, strip_candidates};

/// Signals for sessions whose media crosses an [`ImpairmentRelay`] go through this sender:
/// candidates are rewritten to the relay's mirrors (and SDPs carry none), in order, per sender,
/// then delivered on the [`SignalBus`].
struct RelaySender(mpsc::UnboundedSender<(ParticipantId, Signal)>);

impl SignalSender for RelaySender {
    fn send(&self, to: &ParticipantId, signal: Signal) {
        let _ = self.0.send((to.clone(), signal));
    }
}

/// `signal` as it must look for its media to cross `relay`.
fn through_relay(relay: &Arc<ImpairmentRelay>, signal: Signal) -> Signal {
    match signal {
        Signal::Candidate {
            candidate,
            sdp_mid,
            sdp_mline_index,
            username_fragment,
        } => Signal::Candidate {
            candidate: relay.rewrite_candidate(&candidate),
            sdp_mid,
            sdp_mline_index,
            username_fragment,
        },
        Signal::Offer { sdp } => Signal::Offer {
            sdp: strip_candidates(&sdp),
        },
        Signal::Answer { sdp } => Signal::Answer {
            sdp: strip_candidates(&sdp),
        },
        Signal::IceRestart { sdp } => Signal::IceRestart {
            sdp: strip_candidates(&sdp),
        },
        other => other,
    }
}

fn relay_sender(me: &str, bus: Arc<SignalBus>, relay: Arc<ImpairmentRelay>) -> Arc<RelaySender> {
    let me = ParticipantId::from(me);
    let (tx, mut rx) = mpsc::unbounded_channel::<(ParticipantId, Signal)>();
    tokio::spawn(async move {
        while let Some((to, signal)) = rx.recv().await {
            let signal = through_relay(&relay, signal);
            bus.record(&me, &signal);
            if let Some(route) = bus.route(&to) {
                let _ = route
                    .send(ClientEvent::Signal {
                        from: me.clone(),
                        signal,
                    })
                    .await;
            }
        }
    });
    Arc::new(RelaySender(tx))
}

/// Alice ("aaaa", polite) and Bob ("bbbb", impolite, the newcomer who offers), with media on,
/// connected through `relay`.
async fn relayed_call(relay: &Arc<ImpairmentRelay>) -> (Harness, Harness, Arc<SignalBus>) {
    let bus = Arc::new(SignalBus::default());
    let a = start(
        config("alice", true),
        welcome("aaaa", &[]),
        relay_sender("aaaa", bus.clone(), relay.clone()),
    )
    .await;
    bus.connect("aaaa", a.signaling.clone());
    a.signaling
        .send(ClientEvent::ParticipantJoined(participant("bbbb")))
        .await
        .unwrap();
    let b_queue = bus.reserve("bbbb");
    let b = start(
        config("bob", true),
        welcome("bbbb", &["aaaa"]),
        relay_sender("bbbb", bus.clone(), relay.clone()),
    )
    .await;
    forward_route(b_queue, b.signaling.clone());
    for h in [&a, &b] {
        wait_for(&h.events, "connected through the relay", |e| {
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
    let relay = ImpairmentRelay::new(seed());
    let (a, b, _bus) = relayed_call(&relay).await;
    assert!(intact_frames_during(&b, Duration::from_secs(1)).await > 0);
    relay.set_loss(0.05);
    relay.set_delay(Duration::from_millis(10));
    let frames = intact_frames_during(&b, Duration::from_secs(5)).await;
    assert!(relay.dropped.load(std::sync::atomic::Ordering::Relaxed) > 0);
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
    let relay = ImpairmentRelay::new(seed());
    let (a, b, bus) = relayed_call(&relay).await;
    assert!(intact_frames_during(&b, Duration::from_secs(1)).await > 0);
    relay.set_blackhole(true);
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
    relay.set_blackhole(false);
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
