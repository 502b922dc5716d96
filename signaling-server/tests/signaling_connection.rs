//! Signaling connections end to end: a real server on 127.0.0.1:0 and real clients losing and
//! regaining it (server restart, dropped connections resumed within the grace period, network
//! drops through a proxy), shutdown notices, the health endpoint, unreachable and bad URLs,
//! connect timeouts, and WSS with a self-signed certificate.
//!
//! Rooms and relaying are in `signaling_rooms.rs`; shared helpers are in `common/mod.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::time::Duration;

use confab_test_support::signaling::{RawClient, STEP_TIMEOUT, start_server, wait_for_server};
use signaling_client::protocol::ServerMessage;
use signaling_client::{
    ClientError, ClientEvent, CloseReason, ErrorCode, LeaveReason, Signal, SignalingClient,
};
use signaling_server::{Limits, ServerConfig, SignalingServer, TlsFiles};

mod common;

use common::{fast_config, next_event, next_signal};

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
        Some(ServerMessage::Shutdown { message, ended }) => {
            assert!(!message.is_empty());
            assert!(!ended, "a restart is not the end of the call");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.expect_closed().await,
        confab_test_support::signaling::Closed::Code(1001)
    );
    stop.await.unwrap();
}

/// Ending the calls (the host's "End for everyone"): the frame says so, and the Rust client
/// ends instead of reconnecting.
#[tokio::test]
async fn ending_the_calls_tells_clients_not_to_come_back() {
    let server = start_server(Limits::default()).await;
    let mut raw = RawClient::connect(&server.ws_url()).await;
    raw.join("over", "Raw").await;
    let (_client, _welcome, mut events) =
        SignalingClient::connect(fast_config(&server.ws_url(), "over", "Rust"))
            .await
            .unwrap();
    let stop = tokio::spawn(server.end_calls(Duration::from_secs(2)));
    loop {
        match raw.next_message().await {
            Some(ServerMessage::Shutdown { message, ended }) => {
                assert!(ended, "the frame says the call is over");
                assert!(message.contains("ended"), "{message}");
                break;
            }
            Some(ServerMessage::ParticipantJoined { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        raw.expect_closed().await,
        confab_test_support::signaling::Closed::Code(1001)
    );
    loop {
        match next_event(&mut events).await {
            ClientEvent::Closed(CloseReason::Ended { message }) => {
                assert!(message.contains("ended"), "{message}");
                break;
            }
            ClientEvent::ParticipantJoined(_) => {}
            other => panic!("the client did not end: {other:?}"),
        }
    }
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

/// A live Confab server at the wrong path (its web pages answer plain HTTP there): the error
/// says the server answered and what the signaling address looks like, and is not retried.
#[tokio::test]
async fn a_wrong_path_on_a_live_server_says_what_to_use() {
    let server = SignalingServer::start(ServerConfig::new("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let port = server.local_addr().port();
    for path in ["", "r/standup", "nope"] {
        let url = format!("ws://127.0.0.1:{port}/{path}");
        let err = SignalingClient::connect(fast_config(&url, "r", "n"))
            .await
            .unwrap_err();
        let ClientError::NotSignaling { status, .. } = &err else {
            panic!("{url}: {err}");
        };
        assert!((200..500).contains(status), "{url}: {status}");
        assert!(!err.is_transient(), "{url}");
        assert!(err.to_string().contains("ws://HOST:PORT/ws"), "{err}");
    }
    // The right path still joins.
    let url = format!("ws://127.0.0.1:{port}/ws");
    SignalingClient::connect(fast_config(&url, "r", "n"))
        .await
        .unwrap();
    server.shutdown(std::time::Duration::from_secs(1)).await;
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
