//! Signaling rooms end to end: a real server on 127.0.0.1:0 and real `SignalingClient`s joining
//! rooms, exchanging offers/answers/candidates, seeing each other join and leave, room isolation,
//! passwords, room size limits and TURN credentials in the welcome.
//!
//! Connection lifecycle (reconnect, resume, shutdown, TLS, timeouts) is in
//! `signaling_connection.rs`; shared helpers are in `common/mod.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use confab_test_support::signaling::{RawClient, assert_server_serves, start_server};
use hmac::{Hmac, Mac};
use signaling_client::{
    ClientError, ClientEvent, CloseReason, ErrorCode, LeaveReason, Signal, SignalingClient,
};
use signaling_server::{Limits, ServerConfig, SignalingServer, TurnConfig};

mod common;

use common::{fast_config, next_event, next_signal};

#[tokio::test]
async fn two_clients_exchange_offer_answer_and_candidates() {
    let server = start_server(Limits::default()).await;
    let url = server.ws_url();
    let (alice, wa, mut alice_rx) = SignalingClient::connect(fast_config(&url, "r1", "Alice"))
        .await
        .unwrap();
    assert!(wa.participants.is_empty());
    let (bob, wb, mut bob_rx) = SignalingClient::connect(fast_config(&url, "r1", "Bob"))
        .await
        .unwrap();
    assert_eq!(wb.participants.len(), 1);
    assert_eq!(wb.participants[0].id, wa.id);
    assert_eq!(wb.participants[0].name, "Alice");
    match next_event(&mut alice_rx).await {
        ClientEvent::ParticipantJoined(p) => {
            assert_eq!(p.id, wb.id);
            assert_eq!(p.name, "Bob");
        }
        other => panic!("{other:?}"),
    }

    bob.send_signal(
        wa.id.clone(),
        Signal::Offer {
            sdp: "v=0 offer".into(),
        },
    )
    .unwrap();
    for i in 0..3 {
        bob.send_signal(
            wa.id.clone(),
            Signal::Candidate {
                candidate: format!("candidate:{i} 1 udp 1 127.0.0.1 {} typ host", 5000 + i),
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
                username_fragment: None,
            },
        )
        .unwrap();
    }
    bob.send_signal(wa.id.clone(), Signal::EndOfCandidates)
        .unwrap();
    assert_eq!(
        next_signal(&mut alice_rx).await,
        (
            wb.id.clone(),
            Signal::Offer {
                sdp: "v=0 offer".into()
            }
        )
    );
    for i in 0..3 {
        match next_signal(&mut alice_rx).await {
            (from, Signal::Candidate { candidate, .. }) => {
                assert_eq!(from, wb.id);
                assert!(
                    candidate.starts_with(&format!("candidate:{i} ")),
                    "in order"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        next_signal(&mut alice_rx).await,
        (wb.id.clone(), Signal::EndOfCandidates)
    );

    alice
        .send_signal(
            wb.id.clone(),
            Signal::Answer {
                sdp: "v=0 answer".into(),
            },
        )
        .unwrap();
    alice
        .send_signal(
            wb.id.clone(),
            Signal::IceRestart {
                sdp: "v=0 restart".into(),
            },
        )
        .unwrap();
    alice
        .send_signal(
            wb.id.clone(),
            Signal::Hangup {
                reason: Some("bye".into()),
            },
        )
        .unwrap();
    assert_eq!(
        next_signal(&mut bob_rx).await,
        (
            wa.id.clone(),
            Signal::Answer {
                sdp: "v=0 answer".into()
            }
        )
    );
    assert_eq!(
        next_signal(&mut bob_rx).await,
        (
            wa.id.clone(),
            Signal::IceRestart {
                sdp: "v=0 restart".into()
            }
        )
    );
    assert_eq!(
        next_signal(&mut bob_rx).await,
        (
            wa.id.clone(),
            Signal::Hangup {
                reason: Some("bye".into())
            }
        )
    );
    alice.leave().await;
    bob.leave().await;
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn three_clients_see_each_other_and_a_leave() {
    let server = start_server(Limits::default()).await;
    let url = server.ws_url();
    let (a, wa, mut arx) = SignalingClient::connect(fast_config(&url, "trio", "A"))
        .await
        .unwrap();
    let (b, wb, mut brx) = SignalingClient::connect(fast_config(&url, "trio", "B"))
        .await
        .unwrap();
    let (c, wc, mut crx) = SignalingClient::connect(fast_config(&url, "trio", "C"))
        .await
        .unwrap();
    let ids: Vec<_> = wc.participants.iter().map(|p| p.id.clone()).collect();
    assert_eq!(ids, vec![wa.id.clone(), wb.id.clone()], "in join order");
    assert!(
        matches!(next_event(&mut arx).await, ClientEvent::ParticipantJoined(p) if p.id == wb.id)
    );
    assert!(
        matches!(next_event(&mut arx).await, ClientEvent::ParticipantJoined(p) if p.id == wc.id)
    );
    assert!(
        matches!(next_event(&mut brx).await, ClientEvent::ParticipantJoined(p) if p.id == wc.id)
    );

    // Everyone can reach everyone (a mesh).
    for (sender, from, targets) in [
        (&a, &wa.id, vec![&wb.id, &wc.id]),
        (&b, &wb.id, vec![&wa.id, &wc.id]),
        (&c, &wc.id, vec![&wa.id, &wb.id]),
    ] {
        for to in targets {
            sender
                .send_signal(
                    to.clone(),
                    Signal::Offer {
                        sdp: format!("{from}->{to}"),
                    },
                )
                .unwrap();
        }
    }
    for (rx, me) in [(&mut arx, &wa.id), (&mut brx, &wb.id), (&mut crx, &wc.id)] {
        let mut got = vec![next_signal(rx).await, next_signal(rx).await];
        got.sort_by(|x, y| x.0.cmp(&y.0));
        for (from, sig) in got {
            assert_eq!(
                sig,
                Signal::Offer {
                    sdp: format!("{from}->{me}")
                }
            );
        }
    }

    b.leave().await;
    for rx in [&mut arx, &mut crx] {
        match next_event(rx).await {
            ClientEvent::ParticipantLeft { id, reason } => {
                assert_eq!(id, wb.id);
                assert_eq!(reason, LeaveReason::Left);
            }
            other => panic!("{other:?}"),
        }
    }
    match next_event(&mut brx).await {
        ClientEvent::Closed(CloseReason::Left) => {}
        other => panic!("{other:?}"),
    }
    // A signal to the departed participant is refused.
    a.send_signal(wb.id.clone(), Signal::EndOfCandidates)
        .unwrap();
    match next_event(&mut arx).await {
        ClientEvent::ServerError { code, .. } => assert_eq!(code, ErrorCode::UnknownParticipant),
        other => panic!("{other:?}"),
    }
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn rooms_are_isolated() {
    let server = start_server(Limits::default()).await;
    let url = server.ws_url();
    let mut red = RawClient::connect(&url).await;
    let wr = red.join("red", "r").await;
    let mut blue = RawClient::connect(&url).await;
    let wblue = blue.join("blue", "b").await;
    assert!(wblue.participants.is_empty(), "blue sees nobody from red");
    blue.send_candidate(&wr.id, "cross-room").await;
    assert_eq!(blue.expect_error().await, ErrorCode::UnknownParticipant);
    red.expect_silence(Duration::from_millis(300)).await;
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn password_rooms() {
    let server = start_server(Limits::default()).await;
    let url = server.ws_url();
    let (_owner, _, _orx) =
        SignalingClient::connect(fast_config(&url, "secret", "Owner").with_password("hunter2"))
            .await
            .unwrap();
    let guest =
        SignalingClient::connect(fast_config(&url, "secret", "Guest").with_password("hunter2"))
            .await;
    assert!(guest.is_ok(), "right password joins");
    for (password, what) in [(Some("nope"), "wrong"), (None, "missing")] {
        let mut cfg = fast_config(&url, "secret", "Mallory");
        cfg.join.password = password.map(str::to_owned);
        match SignalingClient::connect(cfg).await {
            Err(ClientError::Rejected { code, .. }) => {
                assert_eq!(code, ErrorCode::WrongPassword, "{what} password");
            }
            other => panic!("{what} password: {other:?}"),
        }
    }
    // A password for a room that exists without one is refused too: the room is not private.
    let (_open, _, _) = SignalingClient::connect(fast_config(&url, "open", "O"))
        .await
        .unwrap();
    match SignalingClient::connect(fast_config(&url, "open", "P").with_password("x")).await {
        Err(e) => assert_eq!(e.code(), Some(ErrorCode::WrongPassword)),
        Ok(_) => panic!("joined an open room believing it private"),
    }
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn turn_credentials_follow_the_coturn_rest_scheme() {
    let secret = "coturn-shared-secret";
    let ttl = Duration::from_secs(3600);
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    config.turn = Some(TurnConfig {
        urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
        secret: secret.into(),
        ttl,
    });
    config.stun_urls = vec!["stun:127.0.0.1:3478".into()];
    let server = SignalingServer::start(config).await.unwrap();
    let (_c, welcome, _rx) = SignalingClient::connect(fast_config(&server.ws_url(), "t", "T"))
        .await
        .unwrap();
    assert_eq!(welcome.ice_servers.len(), 2);
    let stun = &welcome.ice_servers[0];
    assert_eq!(stun.urls, vec!["stun:127.0.0.1:3478".to_owned()]);
    assert!(stun.username.is_none() && stun.credential.is_none());
    let turn = &welcome.ice_servers[1];
    assert_eq!(
        turn.urls,
        vec!["turn:127.0.0.1:3478?transport=udp".to_owned()]
    );
    let username = turn.username.clone().unwrap();
    let (expiry, user) = username.split_once(':').unwrap();
    assert_eq!(user, welcome.id.as_str(), "username names the participant");
    let expiry: u64 = expiry.parse().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        expiry >= now + ttl.as_secs() - 60 && expiry <= now + ttl.as_secs() + 1,
        "expiry {expiry} is about now + ttl ({})",
        now + ttl.as_secs()
    );
    // Recompute independently: base64(HMAC-SHA1(secret, username)), as coturn does.
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(username.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(turn.credential.as_deref(), Some(expected.as_str()));
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn room_full_is_refused_with_its_code() {
    let server = start_server(Limits {
        max_room_size: 2,
        ..Limits::default()
    })
    .await;
    let url = server.ws_url();
    let _a = SignalingClient::connect(fast_config(&url, "pair", "A"))
        .await
        .unwrap();
    let _b = SignalingClient::connect(fast_config(&url, "pair", "B"))
        .await
        .unwrap();
    let err = SignalingClient::connect(fast_config(&url, "pair", "C"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::RoomFull), "{err}");
    assert_server_serves(&url, "another").await;
    server.shutdown(Duration::from_secs(1)).await;
}
