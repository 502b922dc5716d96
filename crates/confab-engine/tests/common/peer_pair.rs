//! The harness of `engine_peer.rs`: two `PeerLink`s in one process, signalled directly (each
//! one's local candidates forwarded to the other), everything they report recorded in an
//! [`Observed`], plus real H.264 / Opus media to send and the checks on what arrives.
//!
//! Contract: every wait is bounded by [`GUARD`] and fails the test with what it waited for;
//! nothing here asserts on speed. Included with `#[path = "common/peer_pair.rs"] mod peer_pair;`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test harness: a panic is a test failure with its message"
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
    AudioInlet, BitrateRange, ConnectionState, MediaInlet, PeerEvent, PeerLink, PeerSettings,
    ReceivedFrame, VideoInlet,
};
use tokio::sync::mpsc::UnboundedReceiver;

/// Failure guard for every wait.
pub const GUARD: Duration = Duration::from_secs(10);
/// The pace of the video sent (about 30 frames per second).
pub const FRAME_INTERVAL: Duration = Duration::from_millis(33);
/// The pace of the audio sent (one 20 ms Opus frame each).
pub const AUDIO_INTERVAL: Duration = Duration::from_millis(20);

/// Link settings for a loopback test: no ICE servers, host candidates on 127.0.0.1 only.
pub fn settings() -> PeerSettings {
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
pub struct Observed {
    /// Connection states, in order.
    pub states: Vec<ConnectionState>,
    /// `SignalingStable` reports, in order.
    pub stable: Vec<bool>,
    /// The chat channel opened.
    pub chat_open: bool,
    /// Chat messages received.
    pub chats: Vec<String>,
    /// Video access units received, with their `lost_before` flag.
    pub video: Vec<(Bytes, bool)>,
    /// Audio payloads received, with their sequence numbers.
    pub audio: Vec<(Bytes, u16)>,
    /// Keyframe requests from the other side.
    pub keyframe_requests: usize,
    /// Local candidates forwarded to the other side.
    pub candidates: usize,
    /// Media and events that came after `Closed`.
    pub events_after_close: usize,
    /// The event channel ended.
    pub channel_ended: bool,
}

/// One link of a [`pair`] with what it observed.
pub struct Side {
    /// "A" or "B", for messages.
    pub name: &'static str,
    /// The link.
    pub link: Arc<PeerLink>,
    /// What it observed.
    pub seen: Arc<Mutex<Observed>>,
}

impl Side {
    /// Waits until `cond` holds for what this side has observed.
    pub async fn wait(&self, what: &str, cond: impl Fn(&Observed) -> bool) {
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

    /// The last connection state reported is `Connected`.
    pub fn connected(&self) -> bool {
        self.seen.lock().unwrap().is_connected()
    }
}

impl Observed {
    /// The last connection state recorded is `Connected`.
    pub fn is_connected(&self) -> bool {
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
pub struct Recorder(pub Arc<Mutex<Observed>>);

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
pub fn spawn_router(
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

/// Two links, A and B, wired to each other: each one's candidates are forwarded to the other,
/// and its events and media are recorded. Nothing is negotiated yet.
pub async fn pair() -> (Side, Side) {
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
pub fn h264_access_units(n: u32) -> Vec<Bytes> {
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
pub fn opus_packets(n: usize) -> Vec<Bytes> {
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
pub async fn send_media(link: Arc<PeerLink>, video: Vec<Bytes>, audio: Vec<Bytes>) {
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

/// The ICE username fragment in `sdp` (panics if there is none).
pub fn ufrag(sdp: &str) -> String {
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
    send(link.request_keyframe(confab_engine::VideoRole::Camera));
    send(link.stats());
    send(link.fingerprints());
    send(link.close());
}

/// `fut`, failing the test with `what` if it takes longer than [`GUARD`].
pub async fn guard<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Sends media both ways and checks that each side receives some; returns the AUs sent by A and
/// B, and how many frames A and B had received before, so callers can compare bytes.
pub async fn exchange_media(
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
pub async fn media_flows_again(a: &Side, b: &Side) {
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

/// Runs `x` and `y` concurrently to completion.
pub async fn futures_join(x: impl Future<Output = ()>, y: impl Future<Output = ()>) {
    tokio::join!(x, y);
}

/// Video frames and audio packets `side` has received so far.
pub fn counts(side: &Side) -> (usize, usize) {
    let s = side.seen.lock().unwrap();
    (s.video.len(), s.audio.len())
}

/// At least one access unit received since index `from` is byte-identical to one that was sent.
pub fn assert_identical_frame(receiver: &Side, sent: &[Bytes], from: usize) {
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
