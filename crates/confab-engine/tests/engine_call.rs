//! Real calls between real engines: a signaling server on 127.0.0.1:0, engines with synthetic
//! media over real UDP, H.264 + Opus + the chat data channel. Small pictures and short calls keep
//! the run quick; the assertions are about behaviour (what arrives, from whom, intact), never
//! about wall-clock speed — speed lives in the loopback report.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use confab_engine::media::synthetic_video::read_marker;
use confab_engine::testing::{small_engine_config, start_engine};
use confab_engine::{CallState, Engine, EngineCommand, EngineEvent, LinkState, ParticipantStats};
use confab_test_support::signaling::start_server_runtime;
use signaling_server::ServerHandle;

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
