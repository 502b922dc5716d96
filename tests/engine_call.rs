//! Real calls between real engines: a signaling server on 127.0.0.1:0, engines with synthetic
//! media over real UDP, H.264 + Opus + the chat data channel. Small pictures and short calls keep
//! the run quick; the assertions are about behaviour (what arrives, from whom, intact), never
//! about wall-clock speed — speed lives in the loopback report.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::engine::{small_engine_config, start_engine, start_server_runtime};
use confab::engine::media::synthetic_video::read_marker;
use confab::engine::{CallState, Engine, EngineCommand, EngineEvent, LinkState, ParticipantStats};
use confab::loopback::{LoopbackOptions, run};
use signaling_server::ServerHandle;

/// A short, small loopback call; its report must be healthy in every field the issue names.
#[test]
fn loopback_call_is_healthy_both_ways() {
    let report = run(&LoopbackOptions {
        seconds: 4.0,
        width: 320,
        height: 240,
        fps: 15,
        bitrate_kbps: 400,
        video_file: None,
        audio_file: None,
    })
    .expect("loopback runs");
    let json = serde_json::to_value(&report).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&json).unwrap());
    assert!(report.ok, "unhealthy call: {:?}", report.failures);
    assert_eq!(json["failure"], serde_json::Value::Null);
    for key in ["connected", "first_video_frame", "first_audio"] {
        assert!(json["setup_ms"][key].as_f64().is_some(), "setup_ms.{key}");
    }
    for d in [&report.a_to_b, &report.b_to_a] {
        assert!(
            d.frames_received > 10,
            "video decoded: {}",
            d.frames_received
        );
        assert!(d.frames_sent >= d.frames_received);
        assert_eq!(d.resolution.as_deref(), Some("320x240"));
        assert_eq!(d.corrupt_frames, 0);
        assert_eq!(d.out_of_order_frames, 0);
        assert_eq!(d.freezes, 0);
        assert!(d.latency_ms.is_some(), "latency measured from the markers");
        assert!(d.audio_latency_ms.is_some(), "beeps heard and paired");
        assert!(d.video_kbps > 0.0 && d.audio_kbps > 0.0);
    }
    for key in ["a_to_b", "b_to_a"] {
        for field in [
            "frames_sent",
            "frames_received",
            "fps",
            "resolution",
            "video_kbps",
            "audio_kbps",
            "latency_ms",
            "audio_latency_ms",
            "freezes",
            "longest_freeze_ms",
            "packets_lost",
            "nacks",
            "plis",
            "rtt_ms",
            "encode_ms_per_frame",
            "decode_ms_per_frame",
        ] {
            assert!(
                json[key].get(field).is_some(),
                "{key}.{field} in the report"
            );
        }
        for p in ["p50", "p95", "p99", "max"] {
            assert!(json[key]["latency_ms"][p].as_f64().is_some());
        }
    }
    assert!(
        json["process"]["cpu_percent_of_one_core"]
            .as_f64()
            .is_some()
    );
    assert!(json["process"]["peak_rss_mb"].as_f64().unwrap_or(0.0) > 0.0);
    assert_eq!(report.verification_codes.len(), 2);
    assert_eq!(report.verification_codes[0], report.verification_codes[1]);
}

/// An engine in a test room and what it has seen.
struct Member {
    name: String,
    engine: Engine,
    id: Option<String>,
    joined: BTreeMap<String, String>,
    left: BTreeSet<String>,
    connected: BTreeSet<String>,
    frames_from: BTreeMap<String, u64>,
    frames_after_leave: u64,
    chats: Vec<(String, String)>,
    remote_media: BTreeMap<String, (bool, bool)>,
    /// The latest statistics of each connection, by remote id, and when they came.
    stats: BTreeMap<String, (Instant, ParticipantStats)>,
}

impl Member {
    fn start(name: &str) -> Self {
        let engine = start_engine(small_engine_config(name));
        Self {
            name: name.to_owned(),
            engine,
            id: None,
            joined: BTreeMap::new(),
            left: BTreeSet::new(),
            connected: BTreeSet::new(),
            frames_from: BTreeMap::new(),
            frames_after_leave: 0,
            chats: Vec::new(),
            remote_media: BTreeMap::new(),
            stats: BTreeMap::new(),
        }
    }

    fn join(&self, server: &ServerHandle, room: &str) {
        self.engine
            .send(EngineCommand::Join {
                url: server.ws_url(),
                room: room.to_owned(),
                password: None,
            })
            .unwrap();
    }

    fn pump(&mut self) {
        self.pump_events();
        while let Ok(f) = self.engine.video().try_recv() {
            let Some(from) = f.from else { continue };
            assert!(read_marker(&f.frame).is_ok(), "decoded picture is intact");
            if self.left.contains(from.as_str()) {
                self.frames_after_leave += 1;
            }
            *self.frames_from.entry(from.to_string()).or_default() += 1;
        }
    }

    /// Takes events only, leaving decoded pictures queued (a stalled UI).
    fn pump_events(&mut self) {
        while let Ok(ev) = self.engine.events().try_recv() {
            match ev {
                EngineEvent::CallState(CallState::InCall { id, .. }) => {
                    self.id = Some(id.to_string());
                }
                EngineEvent::ParticipantJoined { id, name } => {
                    self.joined.insert(id.to_string(), name);
                }
                EngineEvent::ParticipantLeft { id } => {
                    self.left.insert(id.to_string());
                }
                EngineEvent::Link {
                    id,
                    state: LinkState::Connected,
                } => {
                    self.connected.insert(id.to_string());
                }
                EngineEvent::Chat { name, text, .. } => self.chats.push((name, text)),
                EngineEvent::RemoteMedia { id, mic, camera } => {
                    self.remote_media.insert(id.to_string(), (mic, camera));
                }
                EngineEvent::Stats(all) => {
                    for st in all {
                        self.stats.insert(st.id.clone(), (Instant::now(), st));
                    }
                }
                _ => {}
            }
        }
    }
}

fn pump_until(members: &mut [&mut Member], what: &str, done: impl Fn(&[&mut Member]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(members) {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        for m in members.iter_mut() {
            m.pump();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Three participants: everyone connects to and decodes video from both others (mesh); chat
/// reaches everyone; when one leaves, the others are told and get no more of its frames.
#[test]
fn three_party_mesh_then_one_leaves_mid_call() {
    let (rt, server) = start_server_runtime();
    let mut a = Member::start("ann");
    let mut b = Member::start("ben");
    let mut c = Member::start("cat");
    a.join(&server, "trio");
    pump_until(&mut [&mut a], "ann in the room", |m| m[0].id.is_some());
    b.join(&server, "trio");
    c.join(&server, "trio");
    pump_until(
        &mut [&mut a, &mut b, &mut c],
        "everyone decodes both others",
        |m| {
            m.iter().all(|x| {
                x.connected.len() == 2
                    && x.frames_from.len() == 2
                    && x.frames_from.values().all(|n| *n >= 5)
            })
        },
    );
    for m in [&a, &b, &c] {
        assert_eq!(m.joined.len(), 2, "{} saw both others join", m.name);
    }

    a.engine
        .send(EngineCommand::SendChat("hello everyone".into()))
        .unwrap();
    pump_until(
        &mut [&mut a, &mut b, &mut c],
        "chat reaches ben and cat",
        |m| {
            m[1..].iter().all(|x| {
                x.chats
                    .iter()
                    .any(|(n, t)| n == "ann" && t == "hello everyone")
            })
        },
    );

    // Ben mutes: the others see it.
    b.engine.send(EngineCommand::SetMic(false)).unwrap();
    let ben = b.id.clone().unwrap();
    pump_until(
        &mut [&mut a, &mut b, &mut c],
        "ben's mute reaches ann and cat",
        |m| {
            [&m[0], &m[2]]
                .iter()
                .all(|x| x.remote_media.get(&ben) == Some(&(false, true)))
        },
    );

    // Cat leaves mid-call.
    let cat = c.id.clone().unwrap();
    c.engine.send(EngineCommand::Leave).unwrap();
    pump_until(&mut [&mut a, &mut b], "ann and ben see cat leave", |m| {
        m.iter().all(|x| x.left.contains(&cat))
    });
    // The call between the remaining two goes on.
    let ann = a.id.clone().unwrap();
    let ann_had = a.frames_from.get(&ben).copied().unwrap_or(0);
    let ben_had = b.frames_from.get(&ann).copied().unwrap_or(0);
    pump_until(
        &mut [&mut a, &mut b],
        "ann and ben keep decoding each other",
        |m| {
            m[0].frames_from.get(&ben).copied().unwrap_or(0) > ann_had + 10
                && m[1].frames_from.get(&ann).copied().unwrap_or(0) > ben_had + 10
        },
    );
    assert_eq!(a.frames_after_leave, 0, "no frames from cat after it left");
    assert_eq!(b.frames_after_leave, 0, "no frames from cat after it left");
    drop((a, b, c));
    rt.block_on(server.shutdown(Duration::from_secs(1)));
}

/// A receiver whose app stops taking decoded pictures for a while (a stalled UI, or a loaded
/// machine): the engine's picture queue overflows and drops the oldest. Those pictures are
/// counted as dropped for a slow consumer — never as decode errors, which is what made browser
/// interop tests fail under load — and the call is intact once the app takes pictures again.
#[test]
fn a_stalled_consumer_drops_pictures_but_has_no_decode_errors() {
    let (rt, server) = start_server_runtime();
    let mut a = Member::start("ann");
    let mut b = Member::start("ben");
    a.join(&server, "stall");
    pump_until(&mut [&mut a], "ann in the room", |m| m[0].id.is_some());
    b.join(&server, "stall");
    pump_until(&mut [&mut a, &mut b], "both decode each other", |m| {
        m.iter()
            .all(|x| x.frames_from.values().next().is_some_and(|n| *n >= 5))
    });
    let ben = b.id.clone().unwrap();

    // Ann's app takes no pictures for three seconds (events still flow, ben is served).
    let stalled = Instant::now();
    let deadline = stalled + Duration::from_secs(30);
    let stats = loop {
        a.pump_events();
        b.pump();
        if let Some((at, st)) = a.stats.get(&ben)
            && at.duration_since(stalled) > Duration::from_secs(3)
        {
            break st.clone();
        }
        assert!(Instant::now() < deadline, "no statistics after the stall");
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!("ann's stats of ben after the stall: {stats:#?}");
    assert!(
        stats.frames_dropped_consumer_slow > 0,
        "pictures were dropped for the stalled app: {stats:?}"
    );
    assert_eq!(stats.decode_errors, 0, "{stats:?}");
    assert!(stats.video_negotiated);

    // Taking pictures again: they are intact (pump checks every marker) and keep coming.
    let had = a.frames_from.get(&ben).copied().unwrap_or(0);
    pump_until(&mut [&mut a, &mut b], "ann decodes ben again", |m| {
        m[0].frames_from.get(&ben).copied().unwrap_or(0) > had + 10
    });
    drop((a, b));
    rt.block_on(server.shutdown(Duration::from_secs(1)));
}
