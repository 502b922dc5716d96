//! Two `PeerLink`s in one process over real UDP on 127.0.0.1, signalled directly (no server):
//! offer/answer with trickle ICE, H.264 and Opus both ways, chat, keyframe requests, DTLS
//! fingerprints, stats, an offer collision resolved by rollback, and close.
//!
//! The timeouts are failure guards only; nothing asserts on speed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration test: a panic is a test failure with its message"
)]

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use confab_engine::media::CaptureTime;
use confab_engine::media::h264::{H264Encoder, H264EncoderConfig};
use confab_engine::media::jitter_buffer::RtpAudioPacket;
use confab_engine::media::opus_codec::{FRAME_SAMPLES, OpusEncoder, OpusEncoderConfig};
use confab_engine::media::synthetic_video::SyntheticVideo;
use confab_engine::testing::peer::{
    AudioInlet, BitrateRange, ConnectionState, MediaInlet, PeerError, PeerEvent, PeerLink,
    PeerSettings, ReceivedFrame, VideoInlet,
};
use tokio::sync::mpsc::UnboundedReceiver;

/// Failure guard for every wait.
const GUARD: Duration = Duration::from_secs(10);
const FRAME_INTERVAL: Duration = Duration::from_millis(33);
const AUDIO_INTERVAL: Duration = Duration::from_millis(20);

fn settings() -> PeerSettings {
    PeerSettings {
        ice_servers: Vec::new(),
        relay_only: false,
        bind_addrs: vec!["127.0.0.1:0".parse().unwrap()],
        video_bitrate: BitrateRange {
            min_bps: 100_000,
            start_bps: 600_000,
            max_bps: 2_000_000,
        },
    }
}

/// Everything one side reported, other than the candidates its router forwarded.
#[derive(Default)]
struct Observed {
    states: Vec<ConnectionState>,
    stable: Vec<bool>,
    chat_open: bool,
    chats: Vec<String>,
    video: Vec<(Bytes, bool)>,
    audio: Vec<(Bytes, u16)>,
    keyframe_requests: usize,
    candidates: usize,
    events_after_close: usize,
    channel_ended: bool,
}

struct Side {
    name: &'static str,
    link: Arc<PeerLink>,
    seen: Arc<Mutex<Observed>>,
}

impl Side {
    /// Waits until `cond` holds for what this side has observed.
    async fn wait(&self, what: &str, cond: impl Fn(&Observed) -> bool) {
        let deadline = tokio::time::Instant::now() + GUARD;
        loop {
            if cond(&self.seen.lock().unwrap()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: timed out waiting for {what}",
                self.name
            );
            // Polled: the peer connection's callbacks record into a mutex, with no signal.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn connected(&self) -> bool {
        self.seen.lock().unwrap().is_connected()
    }
}

impl Observed {
    fn is_connected(&self) -> bool {
        self.states.last() == Some(&ConnectionState::Connected)
    }

    /// Media and events both count when they come after `Closed`.
    fn note_if_after_close(&mut self) {
        if self.states.last() == Some(&ConnectionState::Closed) {
            self.events_after_close += 1;
        }
    }
}

/// Records the media a link receives (its [`MediaInlet`]) into the same [`Observed`].
#[derive(Clone)]
struct Recorder(Arc<Mutex<Observed>>);

impl VideoInlet for Recorder {
    fn push_frame(&self, frame: ReceivedFrame) {
        let mut s = self.0.lock().unwrap();
        s.note_if_after_close();
        s.video.push((frame.data, frame.lost_before));
    }
}

impl AudioInlet for Recorder {
    fn push_packet(&self, packet: RtpAudioPacket, _arrival: CaptureTime) {
        let mut s = self.0.lock().unwrap();
        s.note_if_after_close();
        s.audio.push((Bytes::from(packet.payload), packet.seq));
    }
}

/// Reads `events` of one link: forwards its candidates to `other`, records the rest.
fn spawn_router(
    mut events: UnboundedReceiver<PeerEvent>,
    other: Arc<PeerLink>,
    seen: Arc<Mutex<Observed>>,
) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let PeerEvent::LocalCandidate {
                candidate,
                sdp_mid,
                sdp_mline_index,
                username_fragment,
            } = event
            {
                seen.lock().unwrap().candidates += 1;
                // The other side may already be closed at the end of the test.
                let _ = other
                    .add_remote_candidate(candidate, sdp_mid, sdp_mline_index, username_fragment)
                    .await;
                continue;
            }
            let mut s = seen.lock().unwrap();
            s.note_if_after_close();
            match event {
                PeerEvent::Connection(state) => s.states.push(state),
                PeerEvent::SignalingStable(stable) => s.stable.push(stable),
                PeerEvent::ChatOpen => s.chat_open = true,
                PeerEvent::Chat(text) => s.chats.push(text),
                PeerEvent::KeyframeRequested => s.keyframe_requests += 1,
                _ => {}
            }
        }
        seen.lock().unwrap().channel_ended = true;
    });
}

async fn pair() -> (Side, Side) {
    // `RUST_LOG=confab_engine::peer=trace` shows what the links do when a run fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (a_tx, a_rx) = tokio::sync::mpsc::unbounded_channel();
    let (b_tx, b_rx) = tokio::sync::mpsc::unbounded_channel();
    let a_seen = Arc::new(Mutex::new(Observed::default()));
    let b_seen = Arc::new(Mutex::new(Observed::default()));
    let inlet = |seen: &Arc<Mutex<Observed>>| {
        MediaInlet::new(Recorder(Arc::clone(seen)), Recorder(Arc::clone(seen)))
    };
    let a = Arc::new(
        PeerLink::new(&settings(), a_tx, inlet(&a_seen))
            .await
            .unwrap(),
    );
    let b = Arc::new(
        PeerLink::new(&settings(), b_tx, inlet(&b_seen))
            .await
            .unwrap(),
    );
    spawn_router(a_rx, Arc::clone(&b), Arc::clone(&a_seen));
    spawn_router(b_rx, Arc::clone(&a), Arc::clone(&b_seen));
    (
        Side {
            name: "A",
            link: a,
            seen: a_seen,
        },
        Side {
            name: "B",
            link: b,
            seen: b_seen,
        },
    )
}

/// `n` real H.264 access units (320x240 synthetic pattern; the first is an IDR with SPS/PPS).
fn h264_access_units(n: u32) -> Vec<Bytes> {
    let src = SyntheticVideo::new(320, 240, 30).unwrap();
    let mut enc = H264Encoder::new(H264EncoderConfig {
        allow_frame_skip: false,
        ..H264EncoderConfig::new(320, 240, 30.0, 400_000)
    })
    .unwrap();
    (0..n)
        .filter_map(|i| {
            let t = CaptureTime::from_micros(1_000_000 + u64::from(i) * 33_333);
            enc.encode(&src.render(i, t)).unwrap()
        })
        .map(|f| Bytes::from(f.data))
        .collect()
}

/// `n` Opus packets of a 440 Hz tone.
fn opus_packets(n: usize) -> Vec<Bytes> {
    let mut enc = OpusEncoder::new(OpusEncoderConfig {
        dtx: false,
        ..OpusEncoderConfig::default()
    })
    .unwrap();
    (0..n)
        .map(|i| {
            let samples: Vec<f32> = (0..FRAME_SAMPLES)
                .map(|k| {
                    let t = (i * FRAME_SAMPLES + k) as f32 / 48_000.0;
                    0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                })
                .collect();
            Bytes::from(enc.encode(&samples).unwrap().data)
        })
        .collect()
}

/// Sends `video` and `audio` on `link`, paced at their real intervals.
async fn send_media(link: Arc<PeerLink>, video: Vec<Bytes>, audio: Vec<Bytes>) {
    let v = {
        let link = Arc::clone(&link);
        async move {
            let mut tick = tokio::time::interval(FRAME_INTERVAL);
            for au in video {
                tick.tick().await;
                link.write_video(au, FRAME_INTERVAL).await.unwrap();
            }
        }
    };
    let a = async move {
        let mut tick = tokio::time::interval(AUDIO_INTERVAL);
        for p in audio {
            tick.tick().await;
            link.write_audio(p, AUDIO_INTERVAL).await.unwrap();
        }
    };
    tokio::join!(v, a);
}

fn ufrag(sdp: &str) -> String {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .unwrap()
        .trim()
        .to_owned()
}

/// `PeerLink` is shared behind `Arc` across tasks, and its futures can be spawned.
#[allow(dead_code, reason = "compile-time check only")]
fn peer_link_is_send_and_sync(link: &PeerLink) {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    send_sync(link);
    send(link.create_offer(false));
    send(link.accept_offer("", true));
    send(link.accept_answer(""));
    send(link.add_remote_candidate(String::new(), None, None, None));
    send(link.write_video(Bytes::new(), FRAME_INTERVAL));
    send(link.write_audio(Bytes::new(), AUDIO_INTERVAL));
    send(link.send_chat(""));
    send(link.request_keyframe());
    send(link.stats());
    send(link.fingerprints());
    send(link.close());
}

async fn guard<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Sends media both ways and checks that each side receives some; returns the AUs sent by A and
/// B, and how many frames A and B had received before, so callers can compare bytes.
async fn exchange_media(
    a: &Side,
    b: &Side,
    frames: u32,
    packets: usize,
) -> (Vec<Bytes>, Vec<Bytes>, usize, usize) {
    let (a_video0, a_audio0) = counts(a);
    let (b_video0, b_audio0) = counts(b);
    let a_aus = h264_access_units(frames);
    let b_aus = h264_access_units(frames);
    let audio = opus_packets(packets);
    guard(
        "sending media",
        futures_join(
            send_media(Arc::clone(&a.link), a_aus.clone(), audio.clone()),
            send_media(Arc::clone(&b.link), b_aus.clone(), audio.clone()),
        ),
    )
    .await;
    b.wait("video from A", |s| s.video.len() > b_video0).await;
    a.wait("video from B", |s| s.video.len() > a_video0).await;
    b.wait("audio from A", |s| s.audio.len() > b_audio0).await;
    a.wait("audio from B", |s| s.audio.len() > a_audio0).await;
    // Audio payloads are handed over unchanged.
    let sent: HashSet<&Bytes> = audio.iter().collect();
    for (side, before) in [(a, a_audio0), (b, b_audio0)] {
        let seen = side.seen.lock().unwrap();
        assert!(
            seen.audio[before..].iter().all(|(p, _)| sent.contains(p)),
            "{}: received an audio payload that was never sent",
            side.name
        );
    }
    (a_aus, b_aus, a_video0, b_video0)
}

/// Sends a picture each way every 50 ms until both sides receive one.
async fn media_flows_again(a: &Side, b: &Side) {
    let (a_video0, _) = counts(a);
    let (b_video0, _) = counts(b);
    let aus = h264_access_units(1);
    let deadline = tokio::time::Instant::now() + GUARD;
    while counts(a).0 == a_video0 || counts(b).0 == b_video0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "media did not flow again after the ICE restart"
        );
        for side in [a, b] {
            let _ = side.link.write_video(aus[0].clone(), FRAME_INTERVAL).await;
        }
        // The sending pace (a picture per 50 ms), not a wait for something.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn futures_join(x: impl Future<Output = ()>, y: impl Future<Output = ()>) {
    tokio::join!(x, y);
}

fn counts(side: &Side) -> (usize, usize) {
    let s = side.seen.lock().unwrap();
    (s.video.len(), s.audio.len())
}

/// At least one access unit received since index `from` is byte-identical to one that was sent.
fn assert_identical_frame(receiver: &Side, sent: &[Bytes], from: usize) {
    let sent: HashSet<&Bytes> = sent.iter().collect();
    let seen = receiver.seen.lock().unwrap();
    let identical = seen.video[from..]
        .iter()
        .filter(|(d, _)| sent.contains(d))
        .count();
    println!(
        "{}: {} access units received since #{from}, {identical} byte-identical to sent ones, \
         {} flagged lost_before",
        receiver.name,
        seen.video.len() - from,
        seen.video[from..].iter().filter(|(_, lost)| *lost).count()
    );
    assert!(
        identical > 0,
        "{}: none of {} received access units matches a sent one",
        receiver.name,
        seen.video.len()
    );
}

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
    b.link.request_keyframe().await.unwrap();
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
    link.request_keyframe().await.unwrap();
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
