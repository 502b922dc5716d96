//! The check's state machine with a made-up clock and made-up engine events: which events count,
//! the deadlines, and what leaving asks of the engine. No network: the target is a server that
//! is never reached (nothing in these paths starts the test peer).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::report::{JoinFailure, Status};
use super::*;

fn check(at: Instant) -> CallCheck {
    let options = CheckOptions {
        target: CheckTarget::Server {
            address: "calls.example.org:8787".into(),
            url: "ws://calls.example.org:8787/ws".into(),
        },
        seconds: 8.0,
        bind_addrs: Vec::new(),
        sources: Sources::default(),
    };
    let (check, join) = CallCheck::start(options, Arc::new(|| {}), at).unwrap_or_else(|e| {
        panic!("a check through a server starts without I/O: {e}");
    });
    assert!(
        matches!(join, EngineCommand::Join { ref room, .. } if room.starts_with("confab-check-"))
    );
    check
}

fn ended(reason: EndReason) -> EngineEvent {
    EngineEvent::CallState(CallState::Ended { reason })
}

fn connecting() -> EngineEvent {
    EngineEvent::CallState(CallState::Connecting)
}

#[test]
fn a_previous_calls_end_before_our_join_took_effect_is_not_ours() {
    let t0 = Instant::now();
    let mut c = check(t0);
    // Still ending from before ("Test again" right after a check): ignored.
    c.on_engine_event(&ended(EndReason::Left), t0);
    c.on_engine_event(&EngineEvent::IceServers(vec!["turn:x".into()]), t0);
    assert!(!c.is_done());
    assert!(c.call_open());
    // Our Join: from here the events are ours.
    c.on_engine_event(&connecting(), t0);
    c.on_engine_event(&ended(EndReason::RoomFull), t0 + Duration::from_millis(5));
    assert!(c.is_done());
    assert!(!c.call_open(), "the call's end came");
    let m = &c.report().unwrap_or_else(|| unreachable!()).measurements;
    assert_eq!(
        m.join_failure,
        Some(JoinFailure::Ended(EndReason::RoomFull))
    );
    assert!(m.ice_servers.is_empty(), "the earlier list was not ours");
    // It ended by itself: nothing to leave.
    assert!(c.cancel().is_empty());
}

#[test]
fn no_answer_within_the_join_deadline_ends_the_check_and_leaves() {
    let t0 = Instant::now();
    let mut c = check(t0);
    c.on_engine_event(&connecting(), t0);
    assert!(
        c.poll(t0 + JOIN_DEADLINE - Duration::from_millis(1))
            .is_empty()
    );
    assert_eq!(c.stage(), Stage::Joining);
    let commands = c.poll(t0 + JOIN_DEADLINE);
    assert_eq!(commands, vec![EngineCommand::Leave]);
    let r = c.report().unwrap_or_else(|| unreachable!());
    assert_eq!(
        r.measurements.join_failure,
        Some(JoinFailure::NoAnswer { seconds: 15 })
    );
    assert_eq!(r.status, Status::Problem);
    // The engine was told to leave; its end is still to come.
    assert!(c.call_open());
    c.on_engine_event(&ended(EndReason::Left), t0 + JOIN_DEADLINE);
    assert!(!c.call_open());
    // Polling a finished check changes nothing.
    assert!(c.poll(t0 + JOIN_DEADLINE * 2).is_empty());
}

#[test]
fn cancelling_leaves_the_call_once_and_gives_no_result() {
    let t0 = Instant::now();
    let mut c = check(t0);
    assert_eq!(c.cancel(), vec![EngineCommand::Leave]);
    assert!(c.cancel().is_empty());
    assert!(!c.is_done(), "a cancelled check has no result");
    assert!(c.call_open(), "the call's end is still to come");
}

#[test]
fn the_upload_figure_is_the_median_of_the_last_seconds() {
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    // The estimate starts high (the start bitrate) and falls to what the path allows.
    let estimates: Vec<(Instant, f64)> = [1500.0, 1200.0, 900.0, 620.0, 600.0, 610.0, 590.0, 605.0]
        .iter()
        .enumerate()
        .map(|(i, k)| (at(i as u64 + 1), *k))
        .collect();
    assert_eq!(tail_median(&estimates, at(8)), 605.0);
    assert_eq!(
        tail_median(&estimates[..1], at(20)),
        1500.0,
        "too few: all of them"
    );
    assert_eq!(tail_median(&[], at(1)), 0.0);
    assert!(is_turn_url(" TURNS:relay.example.org:443"));
    assert!(!is_turn_url("stun:relay.example.org"));
}
