//! Signaling end to end: a real server on 127.0.0.1:0 and real `SignalingClient`s joining rooms,
//! exchanging offers/answers/candidates, leaving, reconnecting, over plain and TLS WebSockets.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use confab_test_support::signaling::{
    RawClient, STEP_TIMEOUT, assert_server_serves, start_server, wait_for_server,
};
use hmac::{Hmac, Mac};
use signaling_client::protocol::ServerMessage;
use signaling_client::{
    ClientConfig, ClientError, ClientEvent, CloseReason, ErrorCode, LeaveReason, Signal,
    SignalingClient,
};
use signaling_server::{Limits, ServerConfig, SignalingServer, TlsFiles, TurnConfig};
use tokio::sync::mpsc::Receiver;

async fn next_event(rx: &mut Receiver<ClientEvent>) -> ClientEvent {
    tokio::time::timeout(STEP_TIMEOUT, rx.recv())
        .await
        .expect("an event arrives in time")
        .expect("the event stream is open")
}

/// The next event that is not a keep-alive detail, e.g. skipping nothing today but kept as the
/// one place to filter if the client grows informational events.
async fn next_signal(rx: &mut Receiver<ClientEvent>) -> (signaling_client::ParticipantId, Signal) {
    match next_event(rx).await {
        ClientEvent::Signal { from, signal } => (from, signal),
        other => panic!("expected a signal, got {other:?}"),
    }
}

fn fast_config(url: &str, room: &str, name: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url, room, name);
    c.reconnect_initial = Duration::from_millis(50);
    c.reconnect_max = Duration::from_millis(300);
    c.give_up_after = Duration::from_secs(20);
    c
}

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
async fn clients_reconnect_and_keep_their_ids_after_a_server_restart() {
    let server = start_server(Limits::default()).await;
    let addr = server.local_addr();
    let url = server.ws_url();
    let (a, wa, mut arx) = SignalingClient::connect(fast_config(&url, "sturdy", "A"))
        .await
        .unwrap();
    let (b, wb, mut brx) = SignalingClient::connect(fast_config(&url, "sturdy", "B"))
        .await
        .unwrap();
    assert!(matches!(
        next_event(&mut arx).await,
        ClientEvent::ParticipantJoined(_)
    ));

    server.shutdown(Duration::from_secs(1)).await;
    for rx in [&mut arx, &mut brx] {
        match next_event(rx).await {
            ClientEvent::Disconnected { reason } => {
                assert!(reason.contains("shutting down"), "told why: {reason}");
            }
            other => panic!("{other:?}"),
        }
    }
    // While the server is away, a signal is queued rather than lost or refused.
    b.send_signal(wa.id.clone(), Signal::EndOfCandidates)
        .unwrap();

    let mut config = ServerConfig::new(addr);
    config.limits = Limits::default();
    let server = SignalingServer::start(config).await.unwrap();

    let mut ids_after = Vec::new();
    for rx in [&mut arx, &mut brx] {
        match next_event(rx).await {
            ClientEvent::Reconnected(w) => ids_after.push(w.id),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        ids_after,
        vec![wa.id.clone(), wb.id.clone()],
        "ids survive the restart"
    );
    assert_eq!(a.id(), wa.id);
    // Signaling works again, both ways.
    a.send_signal(
        wb.id.clone(),
        Signal::Offer {
            sdp: "after".into(),
        },
    )
    .unwrap();
    b.send_signal(
        wa.id.clone(),
        Signal::Answer {
            sdp: "after".into(),
        },
    )
    .unwrap();
    let mut saw_offer = false;
    let mut saw_answer = false;
    for _ in 0..6 {
        if saw_offer && saw_answer {
            break;
        }
        tokio::select! {
            Some(ev) = brx.recv() => if let ClientEvent::Signal { signal: Signal::Offer { sdp }, .. } = ev {
                assert_eq!(sdp, "after");
                saw_offer = true;
            },
            Some(ev) = arx.recv() => if let ClientEvent::Signal { signal: Signal::Answer { sdp }, .. } = ev {
                assert_eq!(sdp, "after");
                saw_answer = true;
            },
            () = tokio::time::sleep(STEP_TIMEOUT) => panic!("signals after restart did not arrive"),
        }
    }
    assert!(saw_offer && saw_answer);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn dropped_connection_resumes_within_grace_without_the_others_noticing() {
    let limits = Limits {
        reconnect_grace: Duration::from_secs(3),
        ..Limits::default()
    };
    let server = start_server(limits).await;
    let url = server.ws_url();
    let mut a = RawClient::connect(&url).await;
    let wa = a.join("blip", "A").await;
    let mut b = RawClient::connect(&url).await;
    let wb = b.join("blip", "B").await;
    assert!(matches!(
        a.next_message().await,
        Some(ServerMessage::ParticipantJoined { .. })
    ));

    b.cut();
    // A's signals to B while B is away are kept for it.
    a.send_candidate(&wb.id, "while-away").await;
    let mut b2 = RawClient::connect(&url).await;
    b2.send_json(
        serde_json::json!({"v": 1, "type": "join", "room": "blip", "name": "B",
        "resume": {"id": wb.id, "token": wb.resume_token}}),
    )
    .await;
    match b2.next_message().await {
        Some(ServerMessage::Welcome(w)) => {
            assert!(w.resumed);
            assert_eq!(w.id, wb.id);
            assert_eq!(w.participants.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    match b2.next_message().await {
        Some(ServerMessage::Signal {
            from,
            signal: Signal::Candidate { candidate, .. },
        }) => {
            assert_eq!(from, wa.id);
            assert_eq!(candidate, "while-away");
        }
        other => panic!("{other:?}"),
    }
    // A saw neither a leave nor a join.
    a.expect_silence(Duration::from_millis(500)).await;

    // A stolen token does not resume someone else's session.
    let mut thief = RawClient::connect(&url).await;
    thief
        .send_json(
            serde_json::json!({"v": 1, "type": "join", "room": "blip", "name": "X",
            "resume": {"id": wa.id, "token": "not-the-token"}}),
        )
        .await;
    assert_eq!(thief.expect_error().await, ErrorCode::ResumeRejected);

    // Without a resume within the grace period the others are told.
    b2.cut();
    match a.next_message().await {
        Some(ServerMessage::ParticipantLeft { id, reason }) => {
            assert_eq!(id, wb.id);
            assert_eq!(reason, LeaveReason::Disconnected);
        }
        other => panic!("{other:?}"),
    }
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn shutdown_tells_clients() {
    let server = start_server(Limits::default()).await;
    let mut c = RawClient::connect(&server.ws_url()).await;
    c.join("bye", "C").await;
    let stop = tokio::spawn(server.shutdown(Duration::from_secs(2)));
    match c.next_message().await {
        Some(ServerMessage::Shutdown { message }) => assert!(!message.is_empty()),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.expect_closed().await,
        confab_test_support::signaling::Closed::Code(1001)
    );
    stop.await.unwrap();
}

#[tokio::test]
async fn healthz_reports_status() {
    let server = start_server(Limits::default()).await;
    let mut c = RawClient::connect(&server.ws_url()).await;
    c.join("h", "H").await;
    let body = http_get(server.local_addr(), "/healthz").await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    let json: serde_json::Value =
        serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["rooms"], 1);
    assert_eq!(json["participants"], 1);
    assert_eq!(json["connections"], 1);
    server.shutdown(Duration::from_secs(1)).await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn client_reports_unreachable_and_bad_urls() {
    // A port nobody listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = SignalingClient::connect(fast_config(&format!("ws://127.0.0.1:{port}/ws"), "r", "n"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
    assert!(err.is_transient());
    let err = SignalingClient::connect(fast_config("http://127.0.0.1:1/ws", "r", "n"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidUrl { .. }), "{err}");
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

#[tokio::test]
async fn wss_with_a_self_signed_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("confab-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();

    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    config.tls = Some(TlsFiles {
        cert: cert_path.clone(),
        key: key_path,
    });
    let server = SignalingServer::start(config).await.unwrap();
    assert!(server.ws_url().starts_with("wss://"));
    let url = format!("wss://localhost:{}/ws", server.local_addr().port());

    // Untrusted certificate: refused.
    let err = SignalingClient::connect(fast_config(&url, "tls", "A"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
    // Trusted: joins and relays.
    let mut cfg = fast_config(&url, "tls", "A");
    cfg.tls_ca_file = Some(cert_path.clone());
    let (a, wa, _arx) = SignalingClient::connect(cfg.clone()).await.unwrap();
    cfg.join.name = "B".into();
    let (_b, wb, mut brx) = SignalingClient::connect(cfg).await.unwrap();
    assert_eq!(wb.participants[0].id, wa.id);
    a.send_signal(wb.id.clone(), Signal::Offer { sdp: "tls".into() })
        .unwrap();
    assert_eq!(
        next_signal(&mut brx).await.1,
        Signal::Offer { sdp: "tls".into() }
    );
    server.shutdown(Duration::from_secs(1)).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn client_resumes_after_a_network_drop_and_the_others_notice_nothing() {
    let server = start_server(Limits::default()).await;
    let proxy = confab_test_support::tcp_proxy::TcpProxy::start(server.local_addr()).await;
    let via_proxy = format!("ws://{}/ws", proxy.addr());
    let (a, wa, mut arx) = SignalingClient::connect(fast_config(&via_proxy, "flaky", "A"))
        .await
        .unwrap();
    let (b, wb, mut brx) = SignalingClient::connect(fast_config(&server.ws_url(), "flaky", "B"))
        .await
        .unwrap();
    assert!(
        matches!(next_event(&mut arx).await, ClientEvent::ParticipantJoined(p) if p.id == wb.id)
    );

    proxy.cut_all();
    assert!(matches!(
        next_event(&mut arx).await,
        ClientEvent::Disconnected { .. }
    ));
    // Both sides keep signalling through the outage: A's signal waits in its client, B's in
    // the server (A keeps its place for the grace period).
    a.send_signal(
        wb.id.clone(),
        Signal::Offer {
            sdp: "queued by A".into(),
        },
    )
    .unwrap();
    // B signals once the server has seen A's connection drop, so that the server keeps it for A
    // (instead of writing it to the dead connection).
    wait_for_server("A's connection dropped", || server.connection_count() == 1).await;
    b.send_signal(
        wa.id.clone(),
        Signal::Answer {
            sdp: "kept for A".into(),
        },
    )
    .unwrap();

    match next_event(&mut arx).await {
        ClientEvent::Reconnected(w) => {
            assert!(w.resumed, "resumed within the grace period");
            assert_eq!(w.id, wa.id);
            assert_eq!(w.participants.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        next_signal(&mut arx).await,
        (
            wb.id.clone(),
            Signal::Answer {
                sdp: "kept for A".into()
            }
        )
    );
    // B saw no leave and no join, only A's queued signal.
    assert_eq!(
        next_signal(&mut brx).await,
        (
            wa.id.clone(),
            Signal::Offer {
                sdp: "queued by A".into()
            }
        )
    );
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn connect_times_out_against_a_server_that_never_answers() {
    // A TCP listener that accepts but never speaks WebSocket.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut cfg = fast_config(&format!("ws://{addr}/ws"), "r", "n");
    cfg.connect_timeout = Duration::from_millis(300);
    let err = SignalingClient::connect(cfg).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    assert!(err.is_transient());
    assert!(
        err.to_string().contains(&addr.to_string()),
        "names the server: {err}"
    );
    hold.abort();
}
