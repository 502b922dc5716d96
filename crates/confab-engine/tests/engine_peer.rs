//! Two `PeerLink`s in one process over real UDP on 127.0.0.1, signalled directly (no server):
//! offer/answer with trickle ICE, H.264 and Opus both ways, chat, keyframe requests, DTLS
//! fingerprints, stats, an offer collision resolved by rollback, and close.
//!
//! The timeouts are failure guards only; nothing asserts on speed. The harness (the pair of
//! links, the recorded events, media to send and checks) is in `common/peer_pair.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration test: a panic is a test failure with its message"
)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use confab_engine::media::CaptureTime;
use confab_engine::media::h264::{H264Encoder, H264EncoderConfig};
use confab_engine::media::synthetic_video::SyntheticVideo;
use confab_engine::testing::peer::{
    BitrateRange, ConnectionState, MediaInlet, PeerError, PeerEvent, PeerLink, PeerSettings,
};

#[path = "common/peer_pair.rs"]
mod peer_pair;

use peer_pair::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_links_connect_exchange_media_chat_and_survive_offer_collision() {
    let (a, b) = pair().await;

    // Nothing is sent before the connection is up, and writing early is not an error.
    a.link
        .write_video(Bytes::from_static(&[0, 0, 0, 1, 0x65, 1]), FRAME_INTERVAL)
        .await
        .unwrap();
    assert!(a.link.is_stable() && b.link.is_stable());

    // Offer/answer with trickle ICE (A's candidates may reach B before the offer: buffered).
    let offer = guard("create offer", a.link.create_offer(false))
        .await
        .unwrap();
    assert!(!a.link.is_stable());
    let answer = guard("accept offer", b.link.accept_offer(&offer, false))
        .await
        .unwrap();
    guard("accept answer", a.link.accept_answer(&answer))
        .await
        .unwrap();
    assert!(a.link.is_stable() && b.link.is_stable());

    a.wait("connected", Observed::is_connected).await;
    b.wait("connected", Observed::is_connected).await;
    a.wait("chat open", |s| s.chat_open).await;
    b.wait("chat open", |s| s.chat_open).await;
    assert!(
        a.seen.lock().unwrap().candidates > 0,
        "A gathered no candidate"
    );
    a.wait("stable events", |s| s.stable == [false, true]).await;
    b.wait("stable events", |s| s.stable == [false, true]).await;

    // Media both ways.
    let (a_aus, b_aus, a_from, b_from) = exchange_media(&a, &b, 60, 90).await;
    assert_identical_frame(&b, &a_aus, b_from);
    assert_identical_frame(&a, &b_aus, a_from);

    // Chat both ways.
    a.link.send_chat("hello from A").await.unwrap();
    b.link.send_chat("hello from B ✓").await.unwrap();
    b.wait("chat from A", |s| {
        s.chats.iter().any(|c| c == "hello from A")
    })
    .await;
    a.wait("chat from B", |s| {
        s.chats.iter().any(|c| c == "hello from B ✓")
    })
    .await;

    // B asks A for a keyframe.
    b.link
        .request_keyframe(confab_engine::VideoRole::Camera)
        .await
        .unwrap();
    a.wait("keyframe request", |s| s.keyframe_requests > 0)
        .await;

    // Fingerprints match crosswise.
    let (a_local, a_remote) = a.link.fingerprints().await.unwrap();
    let (b_local, b_remote) = b.link.fingerprints().await.unwrap();
    assert!(a_local.starts_with("sha-256 "), "{a_local}");
    assert_eq!(a_local, b_remote);
    assert_eq!(b_local, a_remote);
    assert_ne!(a_local, b_local);

    // Stats: host pair, RTT measured (consent checks may take a few seconds), bytes flowing.
    let deadline = tokio::time::Instant::now() + GUARD;
    let stats = loop {
        let stats = a.link.stats().await;
        if stats.rtt_ms.is_some() {
            break stats;
        }
        assert!(tokio::time::Instant::now() < deadline, "no RTT: {stats:?}");
        // Polled: statistics are read on demand, nothing announces a first RTT.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stats.candidate_type.as_deref(), Some("host"), "{stats:?}");
    // The remote side's type is informational: a check that arrives before the trickled
    // candidate makes it peer-reflexive, and 0.21 sometimes leaves it out of the stats.
    assert!(
        matches!(
            stats.remote_candidate_type.as_deref(),
            None | Some("host" | "prflx")
        ),
        "{stats:?}"
    );
    assert!(
        stats.video_bytes_sent > 0 && stats.video_packets_sent > 0,
        "{stats:?}"
    );
    assert!(stats.audio_bytes_sent > 0, "{stats:?}");
    assert!(stats.video_bytes_received > 0 && stats.audio_bytes_received > 0);
    assert!(stats.keyframe_requests_received >= 1, "{stats:?}");
    assert!(stats.bandwidth_estimate_bps > 0 && a.link.bandwidth_estimate_bps() > 0);
    println!("A stats: {stats:?}");
    let b_stats = b.link.stats().await;
    assert!(b_stats.plis_sent >= 1, "{b_stats:?}");

    // Offer collision: both offer at once. A is impolite (ignores B's offer), B is polite
    // (rolls back its own offer and answers A's).
    let (offer_a, offer_b) = tokio::join!(a.link.create_offer(false), b.link.create_offer(false));
    let (offer_a, _ignored_offer_b) = (offer_a.unwrap(), offer_b.unwrap());
    assert!(!a.link.is_stable() && !b.link.is_stable());
    assert!(matches!(
        b.link.accept_offer(&offer_a, false).await,
        Err(PeerError::Negotiation(_))
    ));
    let answer = b.link.accept_offer(&offer_a, true).await.unwrap();
    a.link.accept_answer(&answer).await.unwrap();
    assert!(a.link.is_stable() && b.link.is_stable());
    // A stray answer with nothing pending is refused.
    assert!(matches!(
        b.link.accept_answer(&answer).await,
        Err(PeerError::Negotiation(_))
    ));

    // Media still flows after the renegotiation.
    let (a_aus, b_aus, a_from, b_from) = exchange_media(&a, &b, 30, 30).await;
    assert!(a.connected() && b.connected());
    assert_identical_frame(&b, &a_aus, b_from);
    assert_identical_frame(&a, &b_aus, a_from);
    a.link.send_chat("still here").await.unwrap();
    b.wait("chat after collision", |s| {
        s.chats.iter().any(|c| c == "still here")
    })
    .await;

    // ICE restart (B repairs the path): new credentials both ways, candidates of the new
    // generation may arrive before the description that introduces them (held back, then
    // added), and media keeps flowing.
    let restart = b.link.create_offer(true).await.unwrap();
    assert_ne!(
        ufrag(&restart),
        ufrag(&offer),
        "ICE restart must change the ufrag"
    );
    let answer = a.link.accept_offer(&restart, false).await.unwrap();
    assert_ne!(ufrag(&answer), ufrag(&offer_a));
    b.link.accept_answer(&answer).await.unwrap();
    assert!(a.link.is_stable() && b.link.is_stable());
    a.wait("connected after ICE restart", Observed::is_connected)
        .await;
    b.wait("connected after ICE restart", Observed::is_connected)
        .await;
    // The restart gathers candidates on fresh sockets (so a broken path can be replaced), so
    // media pauses until the new pair is checked: keep sending until it flows again.
    media_flows_again(&a, &b).await;
    let (a_aus, b_aus, a_from, b_from) = exchange_media(&a, &b, 15, 15).await;
    assert_identical_frame(&b, &a_aus, b_from);
    assert_identical_frame(&a, &b_aus, a_from);

    // Close: idempotent, the last event is Closed, then the channel ends.
    a.link.close().await;
    a.link.close().await;
    b.link.close().await;
    for side in [&a, &b] {
        side.wait("event channel to end", |s| s.channel_ended).await;
        let seen = side.seen.lock().unwrap();
        assert_eq!(seen.states.last(), Some(&ConnectionState::Closed));
        assert_eq!(
            seen.events_after_close, 0,
            "{}: events after Closed",
            side.name
        );
    }
    assert!(matches!(
        a.link.write_video(Bytes::new(), FRAME_INTERVAL).await,
        Err(PeerError::Closed)
    ));
    assert!(matches!(
        a.link.send_chat("late").await,
        Err(PeerError::Closed)
    ));
    assert!(matches!(
        a.link.create_offer(false).await,
        Err(PeerError::Closed)
    ));
}

#[tokio::test]
async fn settings_are_validated() {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let no_bind = PeerSettings {
        bind_addrs: Vec::new(),
        ..settings()
    };
    assert!(matches!(
        PeerLink::new(&no_bind, tx.clone(), MediaInlet::discard()).await,
        Err(PeerError::Setup(_))
    ));
    let relay_without_turn = PeerSettings {
        relay_only: true,
        ice_servers: vec![signaling_client::IceServer {
            urls: vec!["stun:127.0.0.1:3478".into(), "turn:127.0.0.1:3478".into()],
            username: None,
            credential: None,
        }],
        ..settings()
    };
    assert!(matches!(
        PeerLink::new(&relay_without_turn, tx.clone(), MediaInlet::discard()).await,
        Err(PeerError::Setup(_))
    ));
    let bad_range = PeerSettings {
        video_bitrate: BitrateRange {
            min_bps: 500_000,
            start_bps: 100_000,
            max_bps: 1_000_000,
        },
        ..settings()
    };
    assert!(matches!(
        PeerLink::new(&bad_range, tx, MediaInlet::discard()).await,
        Err(PeerError::Setup(_))
    ));
}

#[tokio::test]
async fn early_candidates_chat_and_keyframe_requests_are_harmless() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let link = PeerLink::new(&settings(), tx, MediaInlet::discard())
        .await
        .unwrap();
    // No remote description yet: buffered, not an error.
    link.add_remote_candidate(
        "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host".into(),
        Some("0".into()),
        Some(0),
        None,
    )
    .await
    .unwrap();
    assert!(matches!(
        link.send_chat("too early").await,
        Err(PeerError::ChatNotOpen)
    ));
    link.request_keyframe(confab_engine::VideoRole::Camera)
        .await
        .unwrap();
    link.write_audio(Bytes::from_static(&[0xfc]), AUDIO_INTERVAL)
        .await
        .unwrap();
    assert_eq!(link.stats().await.video_bytes_sent, 0);
    assert!(link.fingerprints().await.is_none());
    link.close().await;
    // Drains whatever came before Closed, then the channel ends.
    let mut last = None;
    while let Some(event) = guard("channel end", rx.recv()).await {
        last = Some(event);
    }
    assert!(matches!(
        last,
        Some(PeerEvent::Connection(ConnectionState::Closed))
    ));
}

/// 720p frames at a high bitrate span 50-100 RTP packets each (more than the 64 packets a
/// sample builder is often configured to hold); they must come out whole and byte-identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_keyframes_arrive_intact() {
    let (a, b) = pair().await;
    let offer = a.link.create_offer(false).await.unwrap();
    let answer = b.link.accept_offer(&offer, false).await.unwrap();
    a.link.accept_answer(&answer).await.unwrap();
    a.wait("connected", Observed::is_connected).await;
    b.wait("connected", Observed::is_connected).await;

    let src = SyntheticVideo::new(1280, 720, 30).unwrap();
    let mut enc = H264Encoder::new(H264EncoderConfig {
        allow_frame_skip: false,
        ..H264EncoderConfig::new(1280, 720, 30.0, 8_000_000)
    })
    .unwrap();
    let aus: Vec<Bytes> = (0..6)
        .filter_map(|i| {
            let t = CaptureTime::from_micros(1_000_000 + u64::from(i) * 33_333);
            enc.encode(&src.render(i, t)).unwrap()
        })
        .map(|f| Bytes::from(f.data))
        .collect();
    println!(
        "720p access unit sizes: {:?}",
        aus.iter().map(Bytes::len).collect::<Vec<_>>()
    );
    // The last one stays in the sample builder until a later packet shows it is complete.
    let expected: Vec<Bytes> = aus[..aus.len() - 1].to_vec();
    guard(
        "sending 720p",
        send_media(Arc::clone(&a.link), aus, Vec::new()),
    )
    .await;
    b.wait("every 720p access unit but the last", |s| {
        expected
            .iter()
            .all(|au| s.video.iter().any(|(d, _)| d == au))
    })
    .await;
    a.link.close().await;
    b.link.close().await;
}

#[tokio::test]
async fn dropping_a_link_without_close_ends_its_event_channel() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let link = PeerLink::new(&settings(), tx, MediaInlet::discard())
        .await
        .unwrap();
    let _offer = link.create_offer(false).await.unwrap();
    drop(link);
    while guard("channel end", rx.recv()).await.is_some() {}
}
