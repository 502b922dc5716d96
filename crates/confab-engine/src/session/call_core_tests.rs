//! The call state machine driven directly: inputs in, actions out. No sockets, no threads, no
//! sleeps; time is passed in. The loop's side of each asynchronous action (peer created, offer
//! created, offer answered) is played by the test calling the matching result method.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::time::{Duration, Instant};

use signaling_client::{
    ClientEvent, CloseReason, LeaveReason, Participant, ParticipantId, Signal, Welcome,
};

use super::*;
use crate::testing::signal_kind;

pub(super) fn id(s: &str) -> ParticipantId {
    ParticipantId(s.into())
}

pub(super) fn welcome(me: &str, others: &[&str]) -> Welcome {
    Welcome {
        id: id(me),
        room: "room".into(),
        resume_token: "token".into(),
        resumed: false,
        participants: others
            .iter()
            .map(|o| Participant {
                id: id(o),
                name: format!("name-{o}"),
            })
            .collect(),
        ice_servers: vec![],
    }
}

/// Plays the loop: carries out the actions the way `Session::execute` does, with every
/// asynchronous step succeeding (SDP texts are made up), and returns everything that was
/// carried out, in order.
pub(super) fn run(core: &mut CallCore, actions: Vec<Action>) -> Vec<Action> {
    let mut done = Vec::new();
    let mut queue: std::collections::VecDeque<Action> = actions.into();
    while let Some(a) = queue.pop_front() {
        let follow_up = match &a {
            Action::CreatePeer { id, polite, then } => core.peer_ready(id, *polite, then.clone()),
            Action::CreateOffer { id, ice_restart } => {
                core.offer_created(id, *ice_restart, Ok(format!("offer-to-{id}")))
            }
            Action::AcceptOffer { id, .. } => {
                core.offer_accepted(id, Ok(format!("answer-to-{id}")))
            }
            Action::ShowVerificationCode { id } => {
                core.verification_shown(id);
                Vec::new()
            }
            _ => Vec::new(),
        };
        done.push(a);
        for f in follow_up.into_iter().rev() {
            queue.push_front(f);
        }
    }
    done
}

pub(super) fn signals(actions: &[Action]) -> Vec<(String, &'static str)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Signal { to, signal } => Some((to.to_string(), signal_kind(signal))),
            _ => None,
        })
        .collect()
}

/// A core in a room with `others`: our offers answered, each connected with its chat channel
/// open.
pub(super) fn in_call_with(me: &str, others: &[&str], now: Instant) -> CallCore {
    let mut core = CallCore::new(true);
    let actions = core.entered(&welcome(me, others));
    run(&mut core, actions);
    for o in others {
        let answer = core.on_signaling(ClientEvent::Signal {
            from: id(o),
            signal: Signal::Answer { sdp: "a".into() },
        });
        assert!(matches!(answer.as_slice(), [Action::ApplyAnswer { .. }]));
        let actions = core.on_peer(
            id(o),
            PeerEvent::Connection(ConnectionState::Connected),
            now,
        );
        run(&mut core, actions);
        let actions = core.on_peer(id(o), PeerEvent::ChatOpen, now);
        run(&mut core, actions);
        let actions = remote_speaks(&mut core, o, now);
        run(&mut core, actions);
    }
    core
}

/// The first message from `from` on its chat channel (its media state, as every client sends
/// when its side of the channel opens): from then on the channel is ready for chat.
pub(super) fn remote_speaks(core: &mut CallCore, from: &str, now: Instant) -> Vec<Action> {
    let state = DataMessage::Media {
        mic: true,
        camera: true,
        screen: None,
    };
    core.on_peer(id(from), PeerEvent::Chat(state.encode()), now)
}

#[test]
fn the_newcomer_offers_to_everyone_already_in_the_room() {
    let mut core = CallCore::new(true);
    let actions = core.entered(&welcome("m", &["a", "z"]));
    let done = run(&mut core, actions);
    assert!(matches!(
        &done[0],
        Action::Emit(EngineEvent::CallState(CallState::InCall { .. }))
    ));
    assert_eq!(
        signals(&done),
        [("a".into(), "offer"), ("z".into(), "offer")]
    );
    let polite: Vec<_> = done
        .iter()
        .filter_map(|a| match a {
            Action::CreatePeer { id, polite, .. } => Some((id.to_string(), *polite)),
            _ => None,
        })
        .collect();
    assert_eq!(
        polite,
        [("a".into(), false), ("z".into(), true)],
        "the smaller id is polite"
    );
    assert_eq!(core.peer_ids(), [id("a"), id("z")]);
}

#[test]
fn an_existing_participant_waits_for_the_offer_and_answers_it() {
    let mut core = CallCore::new(true);
    let actions = core.entered(&welcome("a", &[]));
    run(&mut core, actions);
    let joined = core.on_signaling(ClientEvent::ParticipantJoined(Participant {
        id: id("b"),
        name: "Bea".into(),
    }));
    assert!(
        matches!(
            joined.as_slice(),
            [Action::Emit(EngineEvent::ParticipantJoined { .. })]
        ),
        "no peer connection before the newcomer's offer: {joined:?}"
    );
    let offer = core.on_signaling(ClientEvent::Signal {
        from: id("b"),
        signal: Signal::Offer { sdp: "o".into() },
    });
    let done = run(&mut core, offer);
    assert!(done.iter().any(|a| matches!(
        a,
        Action::AcceptOffer {
            rollback_first: false,
            ..
        }
    )));
    assert_eq!(signals(&done), [("b".into(), "answer")]);
    assert_eq!(core.name_of(&id("b")), "Bea");
}

#[test]
fn crossing_offers_polite_rolls_back_and_impolite_ignores() {
    let now = Instant::now();
    // "a" < "b": a is polite towards b.
    let mut polite = in_call_with("a", &["b"], now);
    let mut impolite = in_call_with("b", &["a"], now);
    // Both restart ICE; neither offer is answered when the other's arrives.
    for core in [&mut polite, &mut impolite] {
        let restart = core.restart_ice_all(now);
        let sent = run(core, restart);
        assert_eq!(signals(&sent).len(), 1, "{sent:?}");
    }
    // The impolite side ignores the crossing offer, and its candidates quietly.
    let ignored = impolite.on_signaling(ClientEvent::Signal {
        from: id("a"),
        signal: Signal::IceRestart { sdp: "x".into() },
    });
    assert!(ignored.is_empty(), "{ignored:?}");
    let cand = impolite.on_signaling(ClientEvent::Signal {
        from: id("a"),
        signal: Signal::Candidate {
            candidate: "candidate:1".into(),
            sdp_mid: None,
            sdp_mline_index: None,
            username_fragment: None,
        },
    });
    assert!(matches!(
        cand.as_slice(),
        [Action::AddCandidate { quiet: true, .. }]
    ));
    // The polite side rolls its own offer back and answers.
    let accepted = polite.on_signaling(ClientEvent::Signal {
        from: id("b"),
        signal: Signal::IceRestart { sdp: "y".into() },
    });
    assert!(
        matches!(
            accepted.as_slice(),
            [Action::AcceptOffer {
                rollback_first: true,
                ..
            }]
        ),
        "{accepted:?}"
    );
    assert_eq!(
        signals(&run(&mut polite, accepted)),
        [("b".into(), "answer")]
    );
    // The impolite side applies that answer to its own offer.
    let answer = impolite.on_signaling(ClientEvent::Signal {
        from: id("a"),
        signal: Signal::Answer { sdp: "z".into() },
    });
    assert!(matches!(answer.as_slice(), [Action::ApplyAnswer { .. }]));
}

#[test]
fn a_stale_answer_is_dropped() {
    // Our offer was answered in `in_call_with`: another answer answers nothing.
    let mut core = in_call_with("m", &["a"], Instant::now());
    let again = core.on_signaling(ClientEvent::Signal {
        from: id("a"),
        signal: Signal::Answer { sdp: "ans".into() },
    });
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn plis_to_one_participant_are_rate_limited() {
    let t0 = Instant::now();
    let mut core = in_call_with("m", &["a"], t0);
    assert_eq!(
        core.keyframe_needed(&id("a"), VideoRole::Camera, t0).len(),
        1
    );
    assert!(
        core.keyframe_needed(&id("a"), VideoRole::Camera, t0 + PLI_INTERVAL / 2)
            .is_empty()
    );
    assert_eq!(
        core.keyframe_needed(&id("a"), VideoRole::Camera, t0 + PLI_INTERVAL)
            .len(),
        1
    );
    assert!(
        core.keyframe_needed(&id("nobody"), VideoRole::Camera, t0)
            .is_empty()
    );
    assert_eq!(core.peer_view(&id("a")).unwrap().plis_sent, 2);
}

#[test]
fn a_dropped_connection_restarts_ice_from_the_impolite_side_at_most_every_five_seconds() {
    let t0 = Instant::now();
    let drop_link = |core: &mut CallCore, who: &str, at: Instant| {
        let mut out = core.on_peer(
            id(who),
            PeerEvent::Connection(ConnectionState::Disconnected),
            at,
        );
        out.extend(core.on_peer(
            id(who),
            PeerEvent::Connection(ConnectionState::Connected),
            at,
        ));
        out
    };
    let restarts = |actions: &[Action]| {
        actions
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::CreateOffer {
                        ice_restart: true,
                        ..
                    }
                )
            })
            .count()
    };
    // "z" > "m": we ("z") are impolite towards "m".
    let mut impolite = in_call_with("z", &["m"], t0);
    assert_eq!(restarts(&drop_link(&mut impolite, "m", t0)), 1);
    assert_eq!(
        restarts(&drop_link(&mut impolite, "m", t0 + Duration::from_secs(1))),
        0
    );
    assert_eq!(
        restarts(&drop_link(&mut impolite, "m", t0 + RESTART_INTERVAL)),
        1
    );
    // A failed connection restarts from either side.
    let failed = impolite.on_peer(
        id("m"),
        PeerEvent::Connection(ConnectionState::Failed),
        t0 + RESTART_INTERVAL * 2,
    );
    assert_eq!(restarts(&failed), 1);
    let mut polite = in_call_with("a", &["m"], t0);
    assert_eq!(restarts(&drop_link(&mut polite, "m", t0)), 0);
    let failed = polite.on_peer(id("m"), PeerEvent::Connection(ConnectionState::Failed), t0);
    assert_eq!(restarts(&failed), 1);
    // Asked for by the user: not rate-limited.
    assert_eq!(restarts(&polite.restart_ice_all(t0)), 1);
}

#[test]
fn connected_starts_sending_and_shows_the_code_once() {
    let t0 = Instant::now();
    let mut core = CallCore::new(true);
    let actions = core.entered(&welcome("m", &["a"]));
    run(&mut core, actions);
    let up = core.on_peer(
        id("a"),
        PeerEvent::Connection(ConnectionState::Connected),
        t0,
    );
    let done = run(&mut core, up);
    assert!(
        done.iter()
            .any(|a| matches!(a, Action::StartSending { .. }))
    );
    assert!(
        done.iter()
            .any(|a| matches!(a, Action::ShowVerificationCode { .. }))
    );
    // The same state again: nothing. Down and up again: sending, but no second code.
    assert!(
        core.on_peer(
            id("a"),
            PeerEvent::Connection(ConnectionState::Connected),
            t0
        )
        .is_empty()
    );
    core.on_peer(
        id("a"),
        PeerEvent::Connection(ConnectionState::Disconnected),
        t0,
    );
    let again = core.on_peer(
        id("a"),
        PeerEvent::Connection(ConnectionState::Connected),
        t0,
    );
    assert!(
        again
            .iter()
            .any(|a| matches!(a, Action::StartSending { .. }))
    );
    assert!(
        !again
            .iter()
            .any(|a| matches!(a, Action::ShowVerificationCode { .. }))
    );
}

#[test]
fn leaving_hangs_up_on_everyone_then_closes_signaling_and_ends() {
    let t0 = Instant::now();
    let mut core = in_call_with("m", &["a", "b"], t0);
    let done = core.leave(EndReason::Left);
    assert_eq!(
        signals(&done),
        [("a".into(), "hangup"), ("b".into(), "hangup")]
    );
    let closes = done
        .iter()
        .filter(|a| matches!(a, Action::ClosePeer { .. }))
        .count();
    assert_eq!(closes, 2);
    let n = done.len();
    assert!(matches!(done[n - 2], Action::CloseSignaling));
    assert!(matches!(
        &done[n - 1],
        Action::Emit(EngineEvent::CallState(CallState::Ended {
            reason: EndReason::Left
        }))
    ));
    assert!(!core.in_call());
    assert!(
        core.leave(EndReason::AppClosed).is_empty(),
        "leaving twice does nothing"
    );
}

#[test]
fn a_remote_hangup_or_leave_closes_the_peer_before_announcing_it() {
    let t0 = Instant::now();
    let mut core = in_call_with("m", &["a", "b"], t0);
    let hangup = core.on_signaling(ClientEvent::Signal {
        from: id("a"),
        signal: Signal::Hangup { reason: None },
    });
    assert!(matches!(
        hangup.as_slice(),
        [
            Action::ClosePeer { .. },
            Action::Emit(EngineEvent::ParticipantLeft { .. })
        ]
    ));
    let left = core.on_signaling(ClientEvent::ParticipantLeft {
        id: id("b"),
        reason: LeaveReason::Left,
    });
    assert!(matches!(
        left.as_slice(),
        [
            Action::ClosePeer { .. },
            Action::Emit(EngineEvent::ParticipantLeft { .. })
        ]
    ));
    assert!(core.peer_ids().is_empty());
    // Someone we never connected to: announced, nothing to close.
    let stranger = core.on_signaling(ClientEvent::ParticipantLeft {
        id: id("c"),
        reason: LeaveReason::Left,
    });
    assert!(matches!(
        stranger.as_slice(),
        [Action::Emit(EngineEvent::ParticipantLeft { .. })]
    ));
}

#[test]
fn a_server_restart_offers_only_to_participants_without_a_connection() {
    let t0 = Instant::now();
    let mut core = in_call_with("m", &["a"], t0);
    let lost = core.on_signaling(ClientEvent::Disconnected {
        reason: "reset".into(),
    });
    assert!(matches!(
        lost.as_slice(),
        [Action::Emit(EngineEvent::CallState(
            CallState::Reconnecting
        ))]
    ));
    let mut fresh = welcome("m2", &["a", "n"]);
    fresh.resumed = false;
    let actions = core.on_signaling(ClientEvent::Reconnected(fresh));
    let done = run(&mut core, actions);
    assert!(matches!(
        &done[0],
        Action::Emit(EngineEvent::CallState(CallState::InCall { id: me, .. })) if me == &id("m")
    ));
    assert_eq!(signals(&done), [("n".into(), "offer")]);
    // A resumed session changes nothing about the peers.
    let mut resumed = welcome("m2", &["a", "n", "q"]);
    resumed.resumed = true;
    let actions = core.on_signaling(ClientEvent::Reconnected(resumed));
    assert!(signals(&run(&mut core, actions)).is_empty());
}

#[test]
fn signaling_closed_for_good_is_reported_with_its_reason() {
    let mut core = in_call_with("m", &[], Instant::now());
    let closed = core.on_signaling(ClientEvent::Closed(CloseReason::GaveUp {
        reason: "gone".into(),
    }));
    assert!(matches!(
        closed.as_slice(),
        [Action::Emit(EngineEvent::Error(Problem::SignalingClosed(
            EndReason::ServerLost { .. }
        )))]
    ));
}

/// The host ended the call for everyone: not a problem to report while the peer connections
/// carry on (as when reconnecting gives up), but the end of the call, peers closed.
#[test]
fn a_call_ended_for_everyone_ends_here_too() {
    let mut core = in_call_with("m", &["a", "b"], Instant::now());
    let done = core.on_signaling(ClientEvent::Closed(CloseReason::Ended {
        message: "the host ended the call".into(),
    }));
    let closes = done
        .iter()
        .filter(|a| matches!(a, Action::ClosePeer { .. }))
        .count();
    assert_eq!(closes, 2, "{done:?}");
    assert!(matches!(
        done.last(),
        Some(Action::Emit(EngineEvent::CallState(CallState::Ended {
            reason: EndReason::EndedForEveryone { .. }
        })))
    ));
    assert!(!core.in_call());
}

#[test]
fn local_candidates_and_end_of_candidates_are_signalled() {
    let t0 = Instant::now();
    let mut core = in_call_with("m", &["a"], t0);
    let c = core.on_peer(
        id("a"),
        PeerEvent::LocalCandidate {
            candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        },
        t0,
    );
    let e = core.on_peer(id("a"), PeerEvent::GatheringComplete, t0);
    let mut all = c;
    all.extend(e);
    assert_eq!(
        signals(&all),
        [("a".into(), "candidate"), ("a".into(), "end_of_candidates")]
    );
}
