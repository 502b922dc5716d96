//! The call state machine's data-channel side, driven directly: media state (on open, on
//! change, every fifth tick), chat out and in, and what arrives on the channel. No sockets, no
//! sleeps; helpers from [`super::tests`].

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::time::{Instant, SystemTime};

use super::tests::{id, in_call_with, run, welcome};
use super::*;

#[test]
fn media_state_goes_to_open_channels_on_open_on_change_and_every_fifth_tick() {
    let t0 = Instant::now();
    let mut core = CallCore::new(true);
    let actions = core.entered(&welcome("m", &["a", "b"]));
    run(&mut core, actions);
    // Nothing is sent on a channel that is not open.
    assert!(core.set_mic(false).is_empty());
    let open = core.on_peer(id("a"), PeerEvent::ChatOpen, t0);
    match open.as_slice() {
        [
            Action::SendData {
                to,
                message,
                report: false,
            },
        ] => {
            assert_eq!(to, &[id("a")]);
            assert_eq!(
                message,
                &DataMessage::Media {
                    mic: false,
                    camera: true
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
                    camera: false
                }
            );
        }
        other => panic!("{other:?}"),
    }
    let refreshes: Vec<bool> = (0..10).map(|_| !core.tick().0.is_empty()).collect();
    assert_eq!(
        refreshes,
        [
            false, false, false, false, true, false, false, false, false, true
        ]
    );
    let mut alone = CallCore::new(true);
    assert!(!alone.tick().1, "no stats without peers");
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
                camera: false
            },
            ..
        }]
    ));
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

#[test]
fn chat_goes_to_everyone_and_is_echoed_and_needs_a_call() {
    let mut idle = CallCore::new(true);
    assert!(matches!(
        idle.send_chat("x".into(), "Me", SystemTime::now())
            .as_slice(),
        [Action::Emit(EngineEvent::Error(Problem::NotInCall))]
    ));
    let mut core = CallCore::new(true);
    let actions = core.entered(&welcome("m", &["a", "b"]));
    run(&mut core, actions);
    match core
        .send_chat("hello".into(), "Me", SystemTime::now())
        .as_slice()
    {
        [
            Action::SendData {
                to,
                message,
                report: true,
            },
            Action::Emit(EngineEvent::Chat {
                from, name, text, ..
            }),
        ] => {
            assert_eq!(
                to,
                &[id("a"), id("b")],
                "channel open or not: delivery is reported"
            );
            assert_eq!(
                message,
                &DataMessage::Chat {
                    text: "hello".into()
                }
            );
            assert_eq!(
                (from, name.as_str(), text.as_str()),
                (&id("m"), "Me", "hello")
            );
        }
        other => panic!("{other:?}"),
    }
}
