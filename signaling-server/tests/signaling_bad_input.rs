//! Bad input never crashes the server and never affects other rooms.
//!
//! Each case runs against its own real server with a pair of well-behaved "bystanders" already
//! talking in another room. The case misbehaves and asserts the exact error code (and close code
//! where the connection must end); afterwards the bystanders still relay to each other with
//! nothing stray in between, and a fresh pair of clients can join and relay.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::time::Duration;

use confab_test_support::signaling::{
    Closed, RawClient, STEP_TIMEOUT, assert_server_serves, start_server, wait_for_server,
};
use serde_json::json;
use signaling_client::protocol::ServerMessage;
use signaling_client::{ClientConfig, ClientEvent, ErrorCode, Signal, SignalingClient};
use signaling_server::{Limits, ServerHandle};
use tokio_tungstenite::tungstenite::Message;

/// Runs `case` with bystanders in room "bystanders", then checks the server is unharmed.
async fn run_case(limits: Limits, case: impl AsyncFnOnce(&ServerHandle)) {
    let server = start_server(limits).await;
    let url = server.ws_url();
    let (x, wx, mut xrx) = SignalingClient::connect(ClientConfig::new(&url, "bystanders", "X"))
        .await
        .expect("bystander X joins");
    let (y, wy, _yrx) = SignalingClient::connect(ClientConfig::new(&url, "bystanders", "Y"))
        .await
        .expect("bystander Y joins");
    assert!(matches!(next(&mut xrx).await, ClientEvent::ParticipantJoined(p) if p.id == wy.id));

    case(&server).await;

    y.send_signal(
        wx.id.clone(),
        Signal::Offer {
            sdp: "still here".into(),
        },
    )
    .expect("bystander sends");
    match next(&mut xrx).await {
        ClientEvent::Signal { from, signal } => {
            assert_eq!(from, wy.id);
            assert_eq!(
                signal,
                Signal::Offer {
                    sdp: "still here".into()
                }
            );
        }
        other => panic!("bystander got something stray: {other:?}"),
    }
    assert_server_serves(&url, "fresh-after-bad-input").await;
    x.leave().await;
    y.leave().await;
    server.shutdown(Duration::from_secs(1)).await;
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<ClientEvent>) -> ClientEvent {
    tokio::time::timeout(STEP_TIMEOUT, rx.recv())
        .await
        .expect("event in time")
        .expect("stream open")
}

/// Sends `frame` on a fresh connection (joined first when `join` is set) and expects `code`;
/// the connection must stay usable afterwards (a join or signal still works).
async fn refused_and_connection_survives(
    server: &ServerHandle,
    join: bool,
    frame: &str,
    code: ErrorCode,
) {
    let mut c = RawClient::connect(&server.ws_url()).await;
    if join {
        c.join("case-room", "case").await;
    }
    c.send_text(frame).await;
    assert_eq!(c.expect_error().await, code, "for frame {frame}");
    if !join {
        c.join("case-room", "case").await;
    } else {
        // Still joined and served: a signal to nobody gets its own precise refusal.
        c.send_candidate(&"nobody0000000".into(), "x").await;
        assert_eq!(c.expect_error().await, ErrorCode::UnknownParticipant);
    }
}

macro_rules! case {
    ($name:ident, $limits:expr, $body:expr) => {
        #[tokio::test]
        async fn $name() {
            run_case($limits, $body).await;
        }
    };
}

case!(
    malformed_json,
    Limits::default(),
    async |s: &ServerHandle| {
        refused_and_connection_survives(s, false, "{not json", ErrorCode::MalformedJson).await;
    }
);

case!(
    json_that_is_not_an_object,
    Limits::default(),
    async |s: &ServerHandle| {
        refused_and_connection_survives(s, false, "[1, 2, 3]", ErrorCode::MalformedJson).await;
    }
);

case!(
    missing_version,
    Limits::default(),
    async |s: &ServerHandle| {
        refused_and_connection_survives(
            s,
            false,
            r#"{"type":"join","room":"r","name":"n"}"#,
            ErrorCode::UnsupportedVersion,
        )
        .await;
    }
);

case!(
    wrong_version,
    Limits::default(),
    async |s: &ServerHandle| {
        refused_and_connection_survives(
            s,
            false,
            r#"{"v":2,"type":"join","room":"r","name":"n"}"#,
            ErrorCode::UnsupportedVersion,
        )
        .await;
    }
);

case!(
    absurd_version_number,
    Limits::default(),
    async |s: &ServerHandle| {
        refused_and_connection_survives(
            s,
            false,
            r#"{"v":1e400,"type":"leave"}"#,
            ErrorCode::MalformedJson,
        )
        .await;
        refused_and_connection_survives(
            s,
            false,
            r#"{"v":-1,"type":"leave"}"#,
            ErrorCode::UnsupportedVersion,
        )
        .await;
    }
);

case!(
    unknown_message_type,
    Limits::default(),
    async |s: &ServerHandle| {
        refused_and_connection_survives(
            s,
            false,
            r#"{"v":1,"type":"dance"}"#,
            ErrorCode::UnknownType,
        )
        .await;
    }
);

case!(
    missing_fields,
    Limits::default(),
    async |s: &ServerHandle| {
        refused_and_connection_survives(
            s,
            false,
            r#"{"v":1,"type":"join","name":"no room"}"#,
            ErrorCode::InvalidMessage,
        )
        .await;
        refused_and_connection_survives(
            s,
            true,
            r#"{"v":1,"type":"signal","to":"x"}"#,
            ErrorCode::InvalidMessage,
        )
        .await;
    }
);

case!(
    wrong_field_types,
    Limits::default(),
    async |s: &ServerHandle| {
        refused_and_connection_survives(
            s,
            false,
            r#"{"v":1,"type":"join","room":5,"name":"n"}"#,
            ErrorCode::InvalidMessage,
        )
        .await;
    }
);

case!(
    unknown_signal_kind,
    Limits::default(),
    async |s: &ServerHandle| {
        refused_and_connection_survives(
            s,
            true,
            r#"{"v":1,"type":"signal","to":"x","signal":{"kind":"wave"}}"#,
            ErrorCode::InvalidMessage,
        )
        .await;
    }
);

case!(
    invalid_names,
    Limits::default(),
    async |s: &ServerHandle| {
        refused_and_connection_survives(
            s,
            false,
            r#"{"v":1,"type":"join","room":"r","name":"   "}"#,
            ErrorCode::InvalidField,
        )
        .await;
        refused_and_connection_survives(
            s,
            false,
            r#"{"v":1,"type":"join","room":"bad\u0007room","name":"n"}"#,
            ErrorCode::InvalidField,
        )
        .await;
        let long = "x".repeat(65);
        refused_and_connection_survives(
            s,
            false,
            &json!({"v":1,"type":"join","room":long,"name":"n"}).to_string(),
            ErrorCode::InvalidField,
        )
        .await;
    }
);

case!(
    signal_before_join,
    Limits::default(),
    async |s: &ServerHandle| {
        refused_and_connection_survives(
            s,
            false,
            r#"{"v":1,"type":"signal","to":"abc","signal":{"kind":"end_of_candidates"}}"#,
            ErrorCode::NotJoined,
        )
        .await;
    }
);

case!(second_join, Limits::default(), async |s: &ServerHandle| {
    refused_and_connection_survives(
        s,
        true,
        r#"{"v":1,"type":"join","room":"other","name":"again"}"#,
        ErrorCode::AlreadyJoined,
    )
    .await;
});

case!(
    signal_to_unknown_participant,
    Limits::default(),
    async |s: &ServerHandle| {
        refused_and_connection_survives(
            s,
            true,
            r#"{"v":1,"type":"signal","to":"zzzzzzzzzzzz","signal":{"kind":"end_of_candidates"}}"#,
            ErrorCode::UnknownParticipant,
        )
        .await;
    }
);

case!(
    signal_to_a_participant_in_another_room,
    Limits::default(),
    async |s: &ServerHandle| {
        // Learn a bystander's id the way an attacker could: join their room briefly.
        let mut spy = RawClient::connect(&s.ws_url()).await;
        let w = spy.join("spy-room", "spy").await;
        let mut c = RawClient::connect(&s.ws_url()).await;
        c.join("attacker-room", "attacker").await;
        c.send_candidate(&w.id, "cross-room").await;
        assert_eq!(c.expect_error().await, ErrorCode::UnknownParticipant);
        spy.expect_silence(Duration::from_millis(200)).await;
    }
);

case!(
    signal_to_self,
    Limits::default(),
    async |s: &ServerHandle| {
        let mut c = RawClient::connect(&s.ws_url()).await;
        let w = c.join("me", "me").await;
        c.send_candidate(&w.id, "echo").await;
        assert_eq!(c.expect_error().await, ErrorCode::UnknownParticipant);
    }
);

case!(
    oversize_frame_closes_with_1009,
    Limits::default(),
    async |s: &ServerHandle| {
        let mut c = RawClient::connect(&s.ws_url()).await;
        c.join("big", "big").await;
        let sdp = "a".repeat(64 * 1024);
        c.send_json(json!({"v":1,"type":"signal","to":"x","signal":{"kind":"offer","sdp":sdp}}))
            .await;
        assert_eq!(c.expect_error().await, ErrorCode::FrameTooLarge);
        assert_eq!(c.expect_closed().await, Closed::Code(1009));
    }
);

case!(
    frame_just_under_the_limit_is_fine,
    Limits::default(),
    async |s: &ServerHandle| {
        let mut c = RawClient::connect(&s.ws_url()).await;
        c.join("big", "big").await;
        let envelope =
            json!({"v":1,"type":"signal","to":"zzzzzzzzzzzz","signal":{"kind":"offer","sdp":""}})
                .to_string();
        let sdp = "a".repeat(64 * 1024 - envelope.len());
        let frame =
            json!({"v":1,"type":"signal","to":"zzzzzzzzzzzz","signal":{"kind":"offer","sdp":sdp}})
                .to_string();
        assert_eq!(frame.len(), 64 * 1024);
        c.send_text(frame).await;
        assert_eq!(c.expect_error().await, ErrorCode::UnknownParticipant);
    }
);

case!(
    binary_frame_closes_with_1003,
    Limits::default(),
    async |s: &ServerHandle| {
        let mut c = RawClient::connect(&s.ws_url()).await;
        c.join("bin", "bin").await;
        c.send_message(Message::binary(vec![1u8, 2, 3])).await;
        assert_eq!(c.expect_error().await, ErrorCode::BinaryNotSupported);
        assert_eq!(c.expect_closed().await, Closed::Code(1003));
    }
);

case!(
    flood_is_rate_limited_then_disconnected,
    Limits {
        messages_per_second: 10,
        message_burst: 10,
        flood_disconnect_after: 50,
        ..Limits::default()
    },
    async |s: &ServerHandle| {
        let mut c = RawClient::connect(&s.ws_url()).await;
        c.join("flood", "flood").await;
        for i in 0..200 {
            c.send_candidate(&"zzzzzzzzzzzz".into(), &format!("{i}"))
                .await;
        }
        let mut codes = Vec::new();
        while let Some(msg) = c.next_message().await {
            match msg {
                ServerMessage::Error { code, .. } => codes.push(code),
                other => panic!("unexpected {other:?}"),
            }
        }
        let limited = codes
            .iter()
            .filter(|c| **c == ErrorCode::RateLimited)
            .count();
        let served = codes
            .iter()
            .filter(|c| **c == ErrorCode::UnknownParticipant)
            .count();
        assert!(limited >= 1, "told it is rate limited: {codes:?}");
        assert!(
            limited <= 3,
            "not answered flood for flood: {limited} rate_limited errors"
        );
        assert!(
            served <= 12,
            "only the burst (and a little refill) was served: {served}"
        );
        // The connection ended (close 1008 was sent; the stream may end before we see it).
    }
);

case!(
    join_timeout_closes_with_1008,
    Limits {
        join_timeout: Duration::from_millis(300),
        ..Limits::default()
    },
    async |s: &ServerHandle| {
        let mut c = RawClient::connect(&s.ws_url()).await;
        assert_eq!(c.expect_error().await, ErrorCode::JoinTimeout);
        assert_eq!(c.expect_closed().await, Closed::Code(1008));
    }
);

case!(
    idle_connection_is_closed,
    Limits {
        idle_timeout: Duration::from_millis(600),
        ping_interval: Duration::from_millis(200),
        ..Limits::default()
    },
    async |s: &ServerHandle| {
        let mut c = RawClient::connect(&s.ws_url()).await;
        c.join("idle", "idle").await;
        // Not reading means not answering the server's pings: silence. A sleep on purpose:
        // what is tested is time passing without a pong (twice the idle timeout).
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(c.expect_error().await, ErrorCode::IdleTimeout);
        assert_eq!(c.expect_closed().await, Closed::Code(1001));
    }
);

case!(
    room_full,
    Limits {
        max_room_size: 2,
        ..Limits::default()
    },
    async |s: &ServerHandle| {
        let mut a = RawClient::connect(&s.ws_url()).await;
        a.join("pair", "a").await;
        let mut b = RawClient::connect(&s.ws_url()).await;
        b.join("pair", "b").await;
        refused_and_connection_survives(
            s,
            false,
            r#"{"v":1,"type":"join","room":"pair","name":"c"}"#,
            ErrorCode::RoomFull,
        )
        .await;
    }
);

case!(
    wrong_password,
    Limits::default(),
    async |s: &ServerHandle| {
        let mut a = RawClient::connect(&s.ws_url()).await;
        a.send_json(json!({"v":1,"type":"join","room":"locked","name":"a","password":"pw"}))
            .await;
        assert!(matches!(
            a.next_message().await,
            Some(ServerMessage::Welcome(_))
        ));
        refused_and_connection_survives(
            s,
            false,
            r#"{"v":1,"type":"join","room":"locked","name":"b","password":"nope"}"#,
            ErrorCode::WrongPassword,
        )
        .await;
    }
);

case!(
    too_many_rooms,
    Limits {
        max_rooms: 2,
        ..Limits::default()
    },
    async |s: &ServerHandle| {
        let mut a = RawClient::connect(&s.ws_url()).await;
        a.join("second-room", "a").await;
        let mut b = RawClient::connect(&s.ws_url()).await;
        b.send_json(json!({"v":1,"type":"join","room":"third-room","name":"b"}))
            .await;
        assert_eq!(b.expect_error().await, ErrorCode::TooManyRooms);
        // Joining an existing room is still fine.
        b.join("second-room", "b").await;
        // Free the room so the fresh-client check can create one.
        a.send_text(r#"{"v":1,"type":"leave"}"#).await;
        b.send_text(r#"{"v":1,"type":"leave"}"#).await;
        wait_for_server("the rooms left (only the bystanders' remains)", || {
            s.room_stats().rooms == 1
        })
        .await;
    }
);

case!(
    server_full_closes_with_1013,
    Limits {
        max_connections: 4,
        ..Limits::default()
    },
    async |s: &ServerHandle| {
        let mut a = RawClient::connect(&s.ws_url()).await;
        a.join("c", "a").await;
        let mut b = RawClient::connect(&s.ws_url()).await;
        b.join("c", "b").await;
        let mut over = RawClient::connect(&s.ws_url()).await;
        assert_eq!(over.expect_error().await, ErrorCode::ServerFull);
        assert_eq!(over.expect_closed().await, Closed::Code(1013));
        a.send_text(r#"{"v":1,"type":"leave"}"#).await;
        b.send_text(r#"{"v":1,"type":"leave"}"#).await;
        wait_for_server(
            "the refused connection gone, a and b still connected",
            || s.connection_count() == 2,
        )
        .await;
    }
);

case!(
    resume_with_a_wrong_token,
    Limits::default(),
    async |s: &ServerHandle| {
        let mut a = RawClient::connect(&s.ws_url()).await;
        let w = a.join("r", "a").await;
        refused_and_connection_survives(
            s,
            false,
            &json!({"v":1,"type":"join","room":"r","name":"imposter",
            "resume": {"id": w.id, "token": "guess"}})
            .to_string(),
            ErrorCode::ResumeRejected,
        )
        .await;
    }
);

case!(
    abrupt_disconnects_mid_join,
    Limits::default(),
    async |s: &ServerHandle| {
        for _ in 0..20 {
            let mut c = RawClient::connect(&s.ws_url()).await;
            c.send_text(r#"{"v":1,"type":"join","room":"churn","name":"c"}"#)
                .await;
            c.cut();
        }
        let mut c = RawClient::connect(&s.ws_url()).await;
        refused_and_connection_survives(s, false, "", ErrorCode::MalformedJson).await;
        c.join("other", "ok").await;
    }
);
