//! A call between the engine and a peer that shares no video codec with it: the shape of
//! Firefox on a machine without its OpenH264 plugin (VP8/VP9 only), imitated by a webrtc-rs
//! peer connection whose media engine registers only VP8 video and Opus audio. It joins the room
//! through the real signaling server like any participant, with video, audio and the
//! negotiated chat channel.
//!
//! Both directions: the VP8-only peer offers (the engine must reject the video section and
//! answer with audio and chat), and the engine offers H.264 to it (the peer rejects video; the
//! engine's audio section is the BUNDLE tag, so the transport survives). Either way audio flows
//! both ways, chat crosses both ways, and the engine reports that video is not negotiated with
//! that peer — with no decode errors and no error events.
//!
//! The timeouts are failure guards only; nothing asserts on speed. The VP8-only peer itself is
//! in `common/vp8_peer.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration test: a panic is a test failure with its message"
)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use confab_engine::EngineCommand;
use confab_engine::observer::CallObserver;
use confab_engine::testing::{small_engine_config, start_engine};
use confab_test_support::signaling::start_server_runtime;
use signaling_server::ServerHandle;

#[path = "common/vp8_peer.rs"]
mod vp8_peer;

use vp8_peer::{GUARD, PEER_NAME, Seen, run_vp8_peer};

/// What the VP8-only peer has seen, for failure messages.
fn peer_state(peer: &Mutex<Option<Arc<Seen>>>) -> String {
    format!(
        "{:?}",
        peer.lock().unwrap().as_ref().map(|p| (
            p.connected.load(Ordering::Relaxed),
            p.chat_open.load(Ordering::Relaxed),
            p.audio_packets.load(Ordering::Relaxed),
            p.messages.lock().unwrap().clone()
        ))
    )
}

/// Pumps the engine until `done`; on failure shows what both sides had seen.
fn pump_until(
    engine: &mut CallObserver,
    peer: &Mutex<Option<Arc<Seen>>>,
    what: &str,
    done: impl FnMut(&CallObserver) -> bool,
) {
    if let Err(e) = engine.pump_until(what, GUARD, done) {
        panic!(
            "{e}; engine: {:#?}; VP8 peer (connected, chat open, audio packets, messages): {}",
            engine.view,
            peer_state(peer)
        );
    }
}

/// The engine's latest statistics of its connection to the VP8-only peer.
fn peer_stats(engine: &CallObserver) -> Option<&confab_engine::ParticipantStats> {
    engine.view.named(PEER_NAME)?.stats.as_ref()
}

/// When the engine's latest statistics of the VP8-only peer came.
fn peer_stats_at(engine: &CallObserver) -> Option<Instant> {
    engine.view.named(PEER_NAME)?.stats_at
}

/// One call; `vp8_peer_offers` chooses who joins first (the newcomer offers).
fn call_with_vp8_only_peer(vp8_peer_offers: bool) {
    // `RUST_LOG=confab=debug` shows what the engine did when a run fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (server_rt, server): (tokio::runtime::Runtime, ServerHandle) = start_server_runtime();
    let peer_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut engine = CallObserver::new("native", start_engine(small_engine_config("native")));
    let seen: Arc<Mutex<Option<Arc<Seen>>>> = Arc::default();
    let sdps: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (in_room_tx, in_room) = std::sync::mpsc::channel();
    let join = |engine: &CallObserver| {
        engine
            .send(EngineCommand::Join {
                url: server.ws_url(),
                room: "codecs".into(),
                password: None,
            })
            .unwrap();
    };
    let spawn_peer = || {
        peer_rt.spawn(run_vp8_peer(
            server.ws_url(),
            vp8_peer_offers,
            Arc::clone(&seen),
            in_room_tx.clone(),
            Arc::clone(&sdps),
            "hello without H.264".into(),
            Arc::clone(&stop),
        ))
    };
    let peer_task = if vp8_peer_offers {
        join(&engine);
        pump_until(&mut engine, &seen, "the engine in the room", |e| {
            e.view.id.is_some()
        });
        spawn_peer()
    } else {
        let task = spawn_peer();
        // The engine joins once the server has the peer in the room: the engine is the newcomer.
        in_room
            .recv_timeout(GUARD)
            .expect("the VP8 peer gets into the room");
        join(&engine);
        task
    };

    // The peer task publishes what it sees once its connection exists.
    let peer_seen = || seen.lock().unwrap().clone();
    pump_until(
        &mut engine,
        &seen,
        "audio both ways and chat from the VP8 peer",
        |e| {
            peer_stats(e).is_some_and(|st| st.audio_bytes_received > 0)
                && peer_seen().is_some_and(|p| p.audio_packets.load(Ordering::Relaxed) > 0)
                && e.view.chats_from(PEER_NAME).next().is_some()
        },
    );
    engine
        .send(EngineCommand::SendChat("hello from the native side".into()))
        .unwrap();
    pump_until(&mut engine, &seen, "chat from the engine", |_| {
        peer_seen().is_some_and(|p| {
            p.messages
                .lock()
                .unwrap()
                .iter()
                .any(|m| m.contains("hello from the native side"))
        })
    });
    // Two more stats rounds, so that anything video-related would have shown up.
    for round in ["one more stats round", "a second more stats round"] {
        let before = peer_stats_at(&engine);
        pump_until(&mut engine, &seen, round, |e| peer_stats_at(e) > before);
    }

    stop.store(true, Ordering::Release);
    peer_rt.block_on(peer_task).unwrap();
    let p = peer_seen().expect("the VP8 peer started");
    let stats = peer_stats(&engine)
        .cloned()
        .expect("stats for the VP8 peer");
    let sdps = sdps.lock().unwrap().clone();
    eprintln!("engine's stats of the VP8 peer: {stats:#?}");
    eprintln!(
        "VP8 peer: {} audio packets, {} video packets received",
        p.audio_packets.load(Ordering::Relaxed),
        p.video_packets.load(Ordering::Relaxed)
    );

    let chats: Vec<&str> = engine.view.chats_from(PEER_NAME).collect();
    assert_eq!(chats, ["hello without H.264"]);
    assert!(
        engine.view.errors.is_empty(),
        "engine errors: {:?}",
        engine.view.errors
    );
    assert!(!stats.video_negotiated, "{stats:?}");
    assert_eq!(stats.codec, "none");
    assert!(stats.audio_bytes_received > 0);
    assert_eq!(stats.frames_decoded, 0);
    assert_eq!(stats.video_bytes_received, 0);
    assert_eq!(stats.decode_errors, 0);
    assert_eq!(
        p.video_packets.load(Ordering::Relaxed),
        0,
        "no video was negotiated"
    );
    let answer = sdps.last().expect("an answer was exchanged");
    let video = answer
        .split("m=")
        .find(|s| s.starts_with("video"))
        .expect("the answer keeps the video section");
    assert!(
        video.starts_with("video 0 "),
        "video rejected with port 0: {video}"
    );
    assert!(
        answer.split("m=").any(|s| s.starts_with("audio 9 ")),
        "audio accepted: {answer}"
    );

    engine.shutdown();
    drop(peer_rt);
    drop(server);
    drop(server_rt);
}

/// The VP8-only peer joins second and offers VP8 + Opus + chat: the engine answers with video
/// rejected (port 0), and audio and chat work.
#[test]
fn engine_answers_an_offer_without_h264_with_audio_and_chat() {
    call_with_vp8_only_peer(true);
}

/// The engine joins second and offers H.264 + Opus + chat: the VP8-only peer rejects video, and
/// audio and chat work.
#[test]
fn engine_offer_with_video_rejected_keeps_audio_and_chat() {
    call_with_vp8_only_peer(false);
}
