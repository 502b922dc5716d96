//! The call state machine's data-channel side, driven directly: media state (on open, on
//! change, every fifth tick), chat out and in (queued until a channel opens, flushed in order,
//! failures reported), and what arrives on the channel. No sockets, no
//! sleeps; helpers from [`super::tests`].

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::time::{Duration, Instant, SystemTime};

use signaling_client::{ClientEvent, LeaveReason, Participant};

use super::outbox::CHAT_DELIVERY_TIMEOUT;
use super::tests::{id, in_call_with, remote_speaks, run, welcome};
use super::*;

#[test]
fn media_state_goes_to_open_channels_on_open_on_change_and_every_fifth_tick() {
    let t0 = Instant::now();
    let mut core = CallCore::new(true);
    let actions = core.entered(&welcome("m", &["a", "b"]));
    run(&mut core, actions);
    // Both links are up (a link that never connects would be rebuilt on the fifth tick).
    for o in ["a", "b"] {
        let up = core.on_peer(id(o), PeerEvent::Connection(ConnectionState::Connected), t0);
        run(&mut core, up);
    }
    // Nothing is sent on a channel that is not open.
    assert!(core.set_mic(false).is_empty());
    let open = core.on_peer(id("a"), PeerEvent::ChatOpen, t0);
    match open.as_slice() {
        [Action::SendData { to, message }] => {
            assert_eq!(to, &[id("a")]);
            assert_eq!(
                message,
                &DataMessage::Media {
                    mic: false,
                    camera: true,
                    screen: None
                }
            );
        }
        other => panic!("expected the media state to a: {other:?}"),
    }
    match core.set_camera(false).as_slice() {
        [Action::SendData { to, message, .. }] => {
            assert_eq!(to, &[id("a")], "b's channel is not open");
            assert_eq!(
                message,
                &DataMessage::Media {
                    mic: false,
                    camera: false,
                    screen: None
                }
            );
        }
        other => panic!("{other:?}"),
    }
    let refreshes: Vec<bool> = (0..10).map(|_| !core.tick(t0).0.is_empty()).collect();
    assert_eq!(
        refreshes,
        [
            false, false, false, false, true, false, false, false, false, true
        ]
    );
    let mut alone = CallCore::new(true);
    assert!(!alone.tick(t0).1, "no stats without peers");
}

#[test]
fn no_video_source_is_reported_as_camera_off() {
    let t0 = Instant::now();
    let mut core = CallCore::new(false);
    let actions = core.entered(&welcome("m", &["a"]));
    run(&mut core, actions);
    let open = core.on_peer(id("a"), PeerEvent::ChatOpen, t0);
    assert!(matches!(
        open.as_slice(),
        [Action::SendData {
            message: DataMessage::Media {
                mic: true,
                camera: false,
                screen: None
            },
            ..
        }]
    ));
}

#[test]
fn no_microphone_is_reported_as_muted_and_a_change_of_sources_is_told() {
    let t0 = Instant::now();
    let mut core = in_call_with("m", &["a"], t0);
    let _ = core.on_peer(id("a"), PeerEvent::ChatOpen, t0);
    let told = core.set_sources(true, false);
    assert!(
        matches!(
            told.as_slice(),
            [Action::SendData {
                message: DataMessage::Media {
                    mic: false,
                    camera: true,
                    screen: None
                },
                ..
            }]
        ),
        "{told:?}"
    );
}

#[test]
fn data_messages_become_chat_and_remote_media_events() {
    let t0 = Instant::now();
    let mut core = in_call_with("m", &["a"], t0);
    let chat = core.on_peer(
        id("a"),
        PeerEvent::Chat(r#"{"t":"chat","text":"hi"}"#.into()),
        t0,
    );
    assert!(matches!(
        chat.as_slice(),
        [Action::Emit(EngineEvent::Chat { name, text, .. })] if name == "name-a" && text == "hi"
    ));
    let plain = core.on_peer(id("a"), PeerEvent::Chat("plain words".into()), t0);
    assert!(matches!(
        plain.as_slice(),
        [Action::Emit(EngineEvent::Chat { text, .. })] if text == "plain words"
    ));
    let media = core.on_peer(
        id("a"),
        PeerEvent::Chat(r#"{"t":"media","mic":false}"#.into()),
        t0,
    );
    assert!(matches!(
        media.as_slice(),
        [Action::Emit(EngineEvent::RemoteMedia {
            mic: false,
            camera: true,
            ..
        })]
    ));
    let unknown = core.on_peer(id("a"), PeerEvent::Chat(r#"{"t":"later"}"#.into()), t0);
    assert!(unknown.is_empty());
    assert!(matches!(
        core.on_peer(id("a"), PeerEvent::KeyframeRequested, t0)
            .as_slice(),
        [Action::RequestLocalKeyframe]
    ));
}

/// The texts of every [`Action::SendChat`] to `to`, in order.
fn chats_to(actions: &[Action], to: &str) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendChat { id, messages } if id.as_str() == to => {
                Some(messages.iter().map(|m| m.text.clone()))
            }
            _ => None,
        })
        .flatten()
        .collect()
}

fn not_delivered(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit(EngineEvent::Error(Problem::ChatNotDelivered { to })) => Some(to.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn echoed(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit(EngineEvent::Chat { text, .. }) => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn chat(core: &mut CallCore, text: &str, now: Instant) -> Vec<Action> {
    core.send_chat(text.into(), "Me", SystemTime::now(), now)
}

#[test]
fn chat_needs_a_call_and_someone_to_receive_it() {
    let t0 = Instant::now();
    let mut idle = CallCore::new(true);
    assert!(matches!(
        chat(&mut idle, "x", t0).as_slice(),
        [Action::Emit(EngineEvent::Error(Problem::NotInCall))]
    ));
    let mut alone = CallCore::new(true);
    let actions = alone.entered(&welcome("m", &[]));
    run(&mut alone, actions);
    match chat(&mut alone, "anyone?", t0).as_slice() {
        [Action::Emit(EngineEvent::Error(Problem::ChatNoRecipients { text }))] => {
            assert_eq!(text, "anyone?", "not sent, not echoed, and given back");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn chat_goes_straight_to_open_channels_and_is_echoed() {
    let t0 = Instant::now();
    let mut core = in_call_with("m", &["a", "b"], t0);
    let sent = chat(&mut core, "hello", t0);
    assert_eq!(chats_to(&sent, "a"), ["hello"]);
    assert_eq!(chats_to(&sent, "b"), ["hello"]);
    assert_eq!(echoed(&sent), ["hello"]);
    match sent.last() {
        Some(Action::Emit(EngineEvent::Chat { from, name, .. })) => {
            assert_eq!(
                (from, name.as_str()),
                (&id("m"), "Me"),
                "the echo comes last"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn chat_before_the_channel_is_ready_waits_and_goes_out_in_order_when_it_is() {
    let t0 = Instant::now();
    let mut core = CallCore::new(true);
    let actions = core.entered(&welcome("m", &["a", "b"]));
    run(&mut core, actions);
    // Someone who joined after us, whose offer has not come yet, is queued for too.
    core.on_signaling(ClientEvent::ParticipantJoined(Participant {
        id: id("c"),
        name: "name-c".into(),
    }));
    let mut echoes = Vec::new();
    for text in ["one", "two", "three"] {
        let out = chat(&mut core, text, t0);
        assert!(
            chats_to(&out, "a").is_empty(),
            "nothing is open yet: {out:?}"
        );
        echoes.extend(echoed(&out));
    }
    assert_eq!(
        echoes,
        ["one", "two", "three"],
        "queued messages are shown as sent"
    );
    let open = core.on_peer(id("a"), PeerEvent::ChatOpen, t0);
    assert!(
        matches!(open.as_slice(), [Action::SendData { .. }]),
        "our media state goes out, the chat waits for a's side of the channel: {open:?}"
    );
    assert!(chats_to(&chat(&mut core, "four", t0), "a").is_empty());
    let ready = remote_speaks(&mut core, "a", t0);
    assert_eq!(chats_to(&ready, "a"), ["one", "two", "three", "four"]);
    assert!(chats_to(&ready, "b").is_empty());
    // Flushed once: a second open or message from a (or a later line) does not send them again.
    assert!(chats_to(&core.on_peer(id("a"), PeerEvent::ChatOpen, t0), "a").is_empty());
    assert!(chats_to(&remote_speaks(&mut core, "a", t0), "a").is_empty());
    assert_eq!(chats_to(&chat(&mut core, "five", t0), "a"), ["five"]);
    // b's side speaks first, then ours opens: all five go out then, in order.
    assert!(chats_to(&remote_speaks(&mut core, "b", t0), "b").is_empty());
    let open_b = core.on_peer(id("b"), PeerEvent::ChatOpen, t0);
    assert_eq!(
        chats_to(&open_b, "b"),
        ["one", "two", "three", "four", "five"]
    );
}

#[test]
fn a_message_refused_by_a_closed_channel_waits_in_front_for_it_to_reopen() {
    let t0 = Instant::now();
    let mut core = in_call_with("m", &["a"], t0);
    let sent = chat(&mut core, "m1", t0);
    let Some(Action::SendChat { messages, .. }) = sent.first() else {
        panic!("{sent:?}")
    };
    // The link refused it: its channel had closed in the meantime.
    assert!(
        core.chat_not_sent(&id("a"), messages.clone(), true, "chat channel is not open")
            .is_empty()
    );
    // Later messages queue behind it instead of overtaking it.
    assert!(chats_to(&chat(&mut core, "m2", t0), "a").is_empty());
    let reopened = core.on_peer(id("a"), PeerEvent::ChatOpen, t0);
    assert!(
        chats_to(&reopened, "a").is_empty(),
        "a's side has not spoken since"
    );
    assert_eq!(
        chats_to(&remote_speaks(&mut core, "a", t0), "a"),
        ["m1", "m2"]
    );

    // A channel reported closed queues too.
    assert!(core.on_peer(id("a"), PeerEvent::ChatClosed, t0).is_empty());
    assert!(chats_to(&chat(&mut core, "m3", t0), "a").is_empty());
    let reopened = core.on_peer(id("a"), PeerEvent::ChatOpen, t0);
    run(&mut core, reopened);
    assert_eq!(chats_to(&remote_speaks(&mut core, "a", t0), "a"), ["m3"]);

    // Any other refusal (too large) is reported at once, naming who and what.
    let big = chat(&mut core, "huge", t0);
    let Some(Action::SendChat { messages, .. }) = big.first() else {
        panic!("{big:?}")
    };
    let failed = core.chat_not_sent(&id("a"), messages.clone(), false, "too large");
    assert_eq!(not_delivered(&failed), [r#"name-a: too large ("huge")"#]);
}

#[test]
fn waiting_chat_is_reported_when_its_recipient_leaves_times_out_or_we_hang_up() {
    let t0 = Instant::now();
    let mut core = CallCore::new(true);
    let actions = core.entered(&welcome("m", &["a", "b", "c"]));
    run(&mut core, actions);
    chat(&mut core, "early", t0);
    chat(&mut core, "second", t0 + Duration::from_secs(1));

    let left = core.on_signaling(ClientEvent::ParticipantLeft {
        id: id("a"),
        reason: LeaveReason::Left,
    });
    assert_eq!(
        not_delivered(&left),
        ["name-a: left before it was delivered (2 messages)"]
    );
    // Nothing is reported while the deadline has not passed…
    let (early_tick, _) = core.tick(t0 + CHAT_DELIVERY_TIMEOUT);
    assert!(not_delivered(&early_tick).is_empty());
    // …then each message that waited too long, once.
    let (late_tick, _) = core.tick(t0 + CHAT_DELIVERY_TIMEOUT + Duration::from_millis(500));
    assert_eq!(
        not_delivered(&late_tick),
        [
            r#"name-b: no connection within 20 s ("early")"#,
            r#"name-c: no connection within 20 s ("early")"#
        ]
    );
    let ended = core.leave(EndReason::Left);
    assert_eq!(
        not_delivered(&ended),
        [
            r#"name-b: the call ended first ("second")"#,
            r#"name-c: the call ended first ("second")"#
        ]
    );
    assert!(
        matches!(
            ended.last(),
            Some(Action::Emit(EngineEvent::CallState(
                CallState::Ended { .. }
            )))
        ),
        "reported before the call ends: {ended:?}"
    );
}
