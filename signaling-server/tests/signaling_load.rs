//! Load: 500 concurrent clients in 250 rooms, each relaying 100 messages to its room-mate.
//! Every message must arrive exactly once, in order, at the right peer. Loopback only, bounded in
//! count (50,000 messages) and time (the whole test must finish within `LIMIT`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use signaling_client::{ClientConfig, ClientEvent, Signal, SignalingClient};
use signaling_server::Limits;

const ROOMS: usize = 250;
const MESSAGES: usize = 100;
/// Generous bound so a slow CI machine does not hang; the run takes a few seconds here.
const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_clients_relay_in_order_exactly_once() {
    let server = confab_test_support::signaling::start_server(Limits::default()).await;
    let url = server.ws_url();
    let started = Instant::now();
    let outcome = tokio::time::timeout(LIMIT, async {
        let rooms = join_all((0..ROOMS).map(|r| room_pair(url.clone(), r))).await;
        assert_eq!(server.room_stats().rooms, ROOMS);
        assert_eq!(server.room_stats().participants, ROOMS * 2);
        let total: usize = join_all(rooms.into_iter().map(exchange))
            .await
            .into_iter()
            .sum();
        total
    })
    .await;
    let delivered = outcome.expect("load test finished within its time limit");
    assert_eq!(delivered, ROOMS * 2 * MESSAGES);
    eprintln!(
        "load: {} clients, {} rooms, {} messages delivered in {:.2?}",
        ROOMS * 2,
        ROOMS,
        delivered,
        started.elapsed()
    );
    server.shutdown(Duration::from_secs(2)).await;
}

type Peer = (
    SignalingClient,
    signaling_client::Welcome,
    tokio::sync::mpsc::Receiver<ClientEvent>,
);

async fn room_pair(url: String, room: usize) -> (Peer, Peer) {
    let name = format!("room-{room}");
    let mut a = SignalingClient::connect(ClientConfig::new(&url, &name, "a"))
        .await
        .expect("a joins");
    let b = SignalingClient::connect(ClientConfig::new(&url, &name, "b"))
        .await
        .expect("b joins");
    assert_eq!(b.1.participants.len(), 1);
    // Take a's "b joined" so only relayed signals remain in either stream.
    match a.2.recv().await {
        Some(ClientEvent::ParticipantJoined(p)) => assert_eq!(p.id, b.1.id),
        other => panic!("expected b's join, got {other:?}"),
    }
    (a, b)
}

/// Both sides send `MESSAGES` numbered signals to each other; each checks what it receives.
async fn exchange(((a, wa, mut arx), (b, wb, mut brx)): (Peer, Peer)) -> usize {
    let tag = |from: &str, i: usize| format!("{from}:{}:{i}", wa.room);
    for i in 0..MESSAGES {
        a.send_signal(
            wb.id.clone(),
            Signal::Candidate {
                candidate: tag("a", i),
                sdp_mid: None,
                sdp_mline_index: None,
                username_fragment: None,
            },
        )
        .expect("a sends");
        b.send_signal(
            wa.id.clone(),
            Signal::Candidate {
                candidate: tag("b", i),
                sdp_mid: None,
                sdp_mline_index: None,
                username_fragment: None,
            },
        )
        .expect("b sends");
    }
    let (got_b, got_a) = tokio::join!(
        receive(&mut brx, &wa.id, |i| tag("a", i)),
        receive(&mut arx, &wb.id, |i| tag("b", i))
    );
    // Nothing beyond the 100: a leaves, and b's very next event is that leave; then b leaves, and
    // a's stream ends without another signal.
    a.leave().await;
    match brx.recv().await {
        Some(ClientEvent::ParticipantLeft { id, .. }) => assert_eq!(id, wa.id),
        other => panic!("expected a's leave after the last message, got {other:?}"),
    }
    b.leave().await;
    while let Some(ev) = arx.recv().await {
        assert!(
            !matches!(ev, ClientEvent::Signal { .. }),
            "a duplicate arrived: {ev:?}"
        );
        if matches!(ev, ClientEvent::Closed(_)) {
            break;
        }
    }
    got_a + got_b
}

async fn receive(
    rx: &mut tokio::sync::mpsc::Receiver<ClientEvent>,
    from_expected: &signaling_client::ParticipantId,
    expected: impl Fn(usize) -> String,
) -> usize {
    for i in 0..MESSAGES {
        match rx.recv().await {
            Some(ClientEvent::Signal {
                from,
                signal: Signal::Candidate { candidate, .. },
            }) => {
                assert_eq!(&from, from_expected, "from the room-mate");
                assert_eq!(candidate, expected(i), "exactly once, in order");
            }
            other => panic!("expected message {i}, got {other:?}"),
        }
    }
    MESSAGES
}
