//! Rebuilding a link that never connected, and answering a rebuilt remote connection, driven
//! through the call core with the test loop of `call_core_tests.rs`. SDP texts are made up; the
//! ones that matter here carry only an `a=fingerprint` line.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::time::{Duration, Instant, SystemTime};

use signaling_client::{ClientEvent, Signal};

use super::super::tests::{id, remote_speaks, run, signals, welcome};
use super::*;
use crate::peer::{ConnectionState, PeerEvent};

fn sdp(fingerprint: &str) -> String {
    format!("v=0\r\na=fingerprint:sha-256 {fingerprint}\r\na=setup:actpass\r\n")
}

fn ticks(core: &mut CallCore, n: u32, now: Instant) -> Vec<Action> {
    let mut done = Vec::new();
    for _ in 0..n {
        let (actions, _) = core.tick(now);
        done.extend(run(core, actions));
    }
    done
}

fn rebuilt(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ClosePeer { id } => Some(id.to_string()),
            _ => None,
        })
        .collect()
}

/// "m" joins a room with "a" (m is impolite towards a) and offers; a answers with fingerprint
/// AA, and the link never connects.
fn stuck_impolite() -> CallCore {
    let mut core = CallCore::new(true);
    let actions = core.entered(&welcome("m", &["a"]));
    run(&mut core, actions);
    let answer = core.on_signaling(ClientEvent::Signal {
        from: id("a"),
        signal: Signal::Answer { sdp: sdp("AA") },
    });
    run(&mut core, answer);
    core
}

#[test]
fn the_impolite_side_recreates_a_link_that_never_connects_and_offers_again() {
    let now = Instant::now();
    let mut core = stuck_impolite();
    assert!(
        rebuilt(&ticks(&mut core, SETUP_TICKS - 1, now)).is_empty(),
        "nothing before the setup time is up"
    );
    let done = ticks(&mut core, 1, now);
    assert_eq!(rebuilt(&done), ["a"]);
    let close = done
        .iter()
        .position(|a| matches!(a, Action::ClosePeer { .. }))
        .unwrap();
    let create = done
        .iter()
        .position(|a| {
            matches!(
                a,
                Action::CreatePeer {
                    then: AfterCreate::Offer,
                    polite: false,
                    ..
                }
            )
        })
        .unwrap();
    assert!(
        close < create,
        "the old link is closed before the new one is made"
    );
    assert_eq!(signals(&done), [("a".to_owned(), "offer")]);
    assert!(done.iter().any(|a| matches!(
        a,
        Action::Emit(crate::api::EngineEvent::Link {
            state: crate::api::LinkState::Connecting,
            ..
        })
    )));
    // Each new link gets the same time again, up to the limit; then the last one is kept.
    let mut total = 1;
    for _ in 0..10 {
        total += rebuilt(&ticks(&mut core, SETUP_TICKS, now)).len();
    }
    assert_eq!(total, MAX_REBUILDS as usize);
}

#[test]
fn a_link_that_connected_once_and_the_polite_side_are_never_recreated() {
    let now = Instant::now();
    let mut core = stuck_impolite();
    let up = core.on_peer(
        id("a"),
        PeerEvent::Connection(ConnectionState::Connected),
        now,
    );
    run(&mut core, up);
    let down = core.on_peer(id("a"), PeerEvent::Connection(ConnectionState::Failed), now);
    let done = run(&mut core, down);
    assert_eq!(
        signals(&done),
        [("a".to_owned(), "ice_restart")],
        "a failed link restarts ICE"
    );
    assert!(rebuilt(&ticks(&mut core, 3 * SETUP_TICKS, now)).is_empty());

    // "a" is polite towards "m": it waits for m to rebuild.
    let mut polite = CallCore::new(true);
    let actions = polite.entered(&welcome("a", &["m"]));
    run(&mut polite, actions);
    assert!(rebuilt(&ticks(&mut polite, 3 * SETUP_TICKS, now)).is_empty());
}

#[test]
fn an_offer_with_a_new_fingerprint_gets_a_new_link_and_the_chat_outbox_survives() {
    let now = Instant::now();
    // "a" is in the room; "m" joins and offers with fingerprint M1.
    let mut core = CallCore::new(true);
    let actions = core.entered(&welcome("a", &[]));
    run(&mut core, actions);
    let first = core.on_signaling(ClientEvent::Signal {
        from: id("m"),
        signal: Signal::Offer { sdp: sdp("M1") },
    });
    let done = run(&mut core, first);
    assert_eq!(signals(&done), [("m".to_owned(), "answer")]);
    // A renegotiation from the same connection is answered on the same link.
    let again = core.on_signaling(ClientEvent::Signal {
        from: id("m"),
        signal: Signal::IceRestart { sdp: sdp("M1") },
    });
    let done = run(&mut core, again);
    assert!(rebuilt(&done).is_empty());
    assert_eq!(signals(&done), [("m".to_owned(), "answer")]);
    // A chat line typed while the link is down waits in the outbox.
    let chat = core.send_chat("still there?".into(), "a", SystemTime::now(), now);
    run(&mut core, chat);

    // m re-created its connection: new fingerprint.
    let rebuilt_offer = core.on_signaling(ClientEvent::Signal {
        from: id("m"),
        signal: Signal::Offer { sdp: sdp("M2") },
    });
    let done = run(&mut core, rebuilt_offer);
    assert_eq!(rebuilt(&done), ["m"]);
    assert!(done.iter().any(|a| matches!(
        a,
        Action::CreatePeer { then: AfterCreate::Answer(s), polite: true, .. } if s.contains("M2")
    )));
    assert_eq!(signals(&done), [("m".to_owned(), "answer")]);
    let open = core.on_peer(id("m"), PeerEvent::ChatOpen, now + Duration::from_secs(1));
    run(&mut core, open);
    let ready = remote_speaks(&mut core, "m", now + Duration::from_secs(1));
    let done = run(&mut core, ready);
    assert!(
        done.iter().any(|a| matches!(
            a,
            Action::SendChat { messages, .. } if messages.iter().any(|m| m.text == "still there?")
        )),
        "the waiting chat line goes out on the new link: {done:?}"
    );
}

#[test]
fn the_fingerprint_is_read_from_the_sdp() {
    assert_eq!(
        sdp_fingerprint(&sdp("AB:CD")),
        Some("sha-256 AB:CD"),
        "the value after the attribute name"
    );
    assert_eq!(
        sdp_fingerprint("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"),
        None
    );
}
