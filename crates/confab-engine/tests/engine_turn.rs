//! A relay-only call through a real TURN server: coturn on 127.0.0.1 (`use-auth-secret`,
//! loopback peers allowed, no TLS), the signaling server handing out credentials for it exactly
//! as `confab serve --turn-url … --turn-secret …` does, and two engines with
//! `relay_only` that may use nothing but relay candidates. The call must connect over a
//! `relay` pair on both sides and carry video both ways.
//!
//! How long it took to connect is printed (`setup: …`), never asserted: speed lives in the
//! report and the closing notes of the work that measured it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::time::Duration;

use confab_engine::EngineCommand;
use confab_engine::observer::CallObserver;
use confab_engine::testing::{small_engine_config, start_engine, wait_all_until};
use confab_test_support::coturn::Coturn;
use confab_test_support::signaling::start_server_runtime_with;
use signaling_server::{ServerConfig, TurnConfig};

const SECRET: &str = "confab-test-secret";

fn relay_member(name: &str) -> CallObserver {
    let mut config = small_engine_config(name);
    config.relay_only = true;
    CallObserver::new(name, start_engine(config))
}

/// The local candidate type of `m`'s selected pair, from its latest statistics.
fn candidate_type(m: &CallObserver) -> Option<String> {
    m.view
        .participants
        .values()
        .find_map(|p| p.stats.as_ref()?.candidate_type.clone())
}

fn frames(m: &CallObserver) -> u64 {
    m.view.participants.values().map(|p| p.frames).sum()
}

#[test]
fn relay_only_call_through_coturn_connects_over_relay_candidates() {
    let turn = Coturn::start(SECRET);
    let mut server_config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    server_config.turn = Some(TurnConfig {
        urls: vec![turn.url()],
        secret: SECRET.to_owned(),
        ttl: Duration::from_secs(3600),
    });
    let (_rt, server) = start_server_runtime_with(server_config);

    let mut a = relay_member("ann");
    let mut b = relay_member("ben");
    for m in [&a, &b] {
        m.send(EngineCommand::Join {
            url: server.ws_url(),
            room: "relayed".to_owned(),
            password: None,
        })
        .unwrap();
    }
    // coturn's log explains a failure (allocation refused, permission missing): show it.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_all_until(
            &mut [&mut a, &mut b],
            "both connected over relay candidates, video both ways",
            |m| {
                m.iter().all(|x| {
                    x.view.connected() == 1
                        && frames(x) >= 5
                        && candidate_type(x).as_deref() == Some("relay")
                })
            },
        );
        let joined = a.view.in_call_at.max(b.view.in_call_at).unwrap();
        let connected = [&a, &b]
            .iter()
            .filter_map(|m| m.view.participants.values().find_map(|p| p.connected_at))
            .max()
            .unwrap();
        eprintln!(
            "setup: both in the room -> both connected over TURN: {:.0} ms",
            connected.saturating_duration_since(joined).as_secs_f64() * 1000.0
        );
        for m in [&a, &b] {
            let stats = m
                .view
                .participants
                .values()
                .find_map(|p| p.stats.clone())
                .unwrap();
            assert_eq!(
                stats.candidate_type.as_deref(),
                Some("relay"),
                "{}",
                m.label()
            );
            assert!(
                m.view.errors.is_empty(),
                "{}: {:?}",
                m.label(),
                m.view.errors
            );
        }
        a.send(EngineCommand::Leave).unwrap();
        b.send(EngineCommand::Leave).unwrap();
        wait_all_until(&mut [&mut a, &mut b], "both calls ended", |m| {
            m.iter().all(|x| x.view.ended.is_some())
        });
    }));
    if let Err(panic) = result {
        eprintln!(
            "coturn's log ({}):\n{}",
            turn.log_path().display(),
            turn.log()
        );
        std::panic::resume_unwind(panic);
    }
}
