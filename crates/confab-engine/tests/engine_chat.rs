//! Chat delivery between real engines (signaling server on 127.0.0.1:0, real data channels):
//! messages typed before the channel is open and during an ICE restart arrive exactly once and
//! in order, and a message into an empty room is reported instead of shown as sent.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use confab_engine::observer::CallObserver;
use confab_engine::testing::{small_engine_config, start_engine, wait_all_until, wait_until};
use confab_engine::{EngineCommand, Problem};
use confab_test_support::signaling::start_server_runtime;
use signaling_server::ServerHandle;

fn member(name: &str) -> CallObserver {
    CallObserver::new(name, start_engine(small_engine_config(name)))
}

fn join(m: &CallObserver, server: &ServerHandle) {
    m.send(EngineCommand::Join {
        url: server.ws_url(),
        room: "chatty".to_owned(),
        password: None,
    })
    .unwrap();
}

fn say(m: &CallObserver, text: &str) {
    m.send(EngineCommand::SendChat(text.to_owned())).unwrap();
}

fn texts(m: &CallObserver, from: &str) -> Vec<String> {
    m.view.chats_from(from).map(str::to_owned).collect()
}

#[test]
fn chat_sent_before_the_channel_opens_and_during_an_ice_restart_arrives_once_in_order() {
    let (_rt, server) = start_server_runtime();
    let mut ann = member("ann");
    let mut ben = member("ben");

    // Alone in the room: not sent, not echoed, reported.
    join(&ann, &server);
    wait_until(&mut ann, "ann in the room", |m| m.view.id.is_some());
    say(&ann, "is anyone here?");
    wait_until(&mut ann, "ann told nobody got it", |m| {
        m.view
            .errors
            .iter()
            .any(|e| matches!(e, Problem::ChatNoRecipients { text } if text == "is anyone here?"))
    });
    assert!(ann.view.chats.is_empty(), "not shown as sent");

    // Ben types at once after joining, long before his channel to Ann is open.
    join(&ben, &server);
    let early: Vec<String> = (1..=5).map(|n| format!("early {n} from ben")).collect();
    for text in &early {
        say(&ben, text);
    }
    // Ann answers as soon as she sees Ben in the room (her channel is not open either).
    wait_until(&mut ann, "ann sees ben", |m| {
        m.view.participants.values().any(|p| p.joined)
    });
    say(&ann, "welcome ben");
    wait_all_until(
        &mut [&mut ann, &mut ben],
        "the early messages arrive",
        |m| texts(m[0], "ben").len() >= early.len() && !texts(m[1], "ann").is_empty(),
    );

    // An ICE restart, with messages sent while it runs.
    ben.send(EngineCommand::RestartIce).unwrap();
    let during: Vec<String> = (1..=5).map(|n| format!("during restart {n}")).collect();
    for text in &during {
        say(&ben, text);
    }
    wait_until(
        &mut ann,
        "the messages sent during the restart arrive",
        |m| texts(m, "ben").len() >= early.len() + during.len(),
    );
    // One more round trip after everything, so a late duplicate would have arrived first.
    say(&ben, "last");
    wait_until(&mut ann, "the last message arrives", |m| {
        texts(m, "ben").last().map(String::as_str) == Some("last")
    });

    let mut expected = early.clone();
    expected.extend(during);
    expected.push("last".to_owned());
    assert_eq!(texts(&ann, "ben"), expected, "exactly once, in order");
    assert_eq!(texts(&ben, "ann"), ["welcome ben"]);
    for m in [&ann, &ben] {
        assert!(
            !m.view
                .errors
                .iter()
                .any(|e| matches!(e, Problem::ChatNotDelivered { .. })),
            "{}: {:?}",
            m.label(),
            m.view.errors
        );
    }
}
