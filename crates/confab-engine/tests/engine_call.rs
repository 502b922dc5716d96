//! Real calls between real engines: a signaling server on 127.0.0.1:0, engines with synthetic
//! media over real UDP, H.264 + Opus + the chat data channel. Small pictures and short calls keep
//! the run quick; the assertions are about behaviour (what arrives, from whom, intact), never
//! about wall-clock speed — speed lives in the loopback report.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::time::{Duration, Instant};

use confab_engine::EngineCommand;
use confab_engine::VideoFrameEvent;
use confab_engine::media::synthetic_video::read_marker;
use confab_engine::observer::{CallObserver, FrameSink};
use confab_engine::testing::{small_engine_config, start_engine, wait_all_until};
use confab_test_support::signaling::start_server_runtime;
use signaling_server::ServerHandle;

/// Every decoded picture must carry an intact synthetic-video marker.
struct Intact;

impl FrameSink for Intact {
    fn frame(&mut self, _from: &str, f: &VideoFrameEvent) {
        assert!(read_marker(&f.frame).is_ok(), "decoded picture is intact");
    }
}

/// An engine in a test room and what it has seen.
type Member = CallObserver<Intact>;

fn member(name: &str) -> Member {
    CallObserver::with_frames(name, start_engine(small_engine_config(name)), Intact)
}

fn join(m: &Member, server: &ServerHandle, room: &str) {
    m.send(EngineCommand::Join {
        url: server.ws_url(),
        room: room.to_owned(),
        password: None,
    })
    .unwrap();
}

fn id(m: &Member) -> String {
    m.view.id.clone().unwrap()
}

/// Pictures `m` decoded from `from`.
fn frames_from(m: &Member, from: &str) -> u64 {
    m.view.participant(from).map_or(0, |p| p.frames)
}

/// Pictures `m` got from participants after seeing them leave.
fn frames_after_leave(m: &Member) -> u64 {
    m.view
        .participants
        .values()
        .map(|p| p.frames_after_left)
        .sum()
}

/// Three participants: everyone connects to and decodes video from both others (mesh); chat
/// reaches everyone; when one leaves, the others are told and get no more of its frames.
#[test]
fn three_party_mesh_then_one_leaves_mid_call() {
    let (rt, server) = start_server_runtime();
    let mut a = member("ann");
    let mut b = member("ben");
    let mut c = member("cat");
    join(&a, &server, "trio");
    wait_all_until(&mut [&mut a], "ann in the room", |m| m[0].view.id.is_some());
    join(&b, &server, "trio");
    join(&c, &server, "trio");
    wait_all_until(
        &mut [&mut a, &mut b, &mut c],
        "everyone decodes both others",
        |m| {
            m.iter().all(|x| {
                let decoding: Vec<u64> = x
                    .view
                    .participants
                    .values()
                    .map(|p| p.frames)
                    .filter(|n| *n > 0)
                    .collect();
                x.view.connected() == 2 && decoding.len() == 2 && decoding.iter().all(|n| *n >= 5)
            })
        },
    );
    for m in [&a, &b, &c] {
        let joined = m.view.participants.values().filter(|p| p.joined).count();
        assert_eq!(joined, 2, "{} saw both others join", m.label());
    }

    a.send(EngineCommand::SendChat("hello everyone".into()))
        .unwrap();
    wait_all_until(
        &mut [&mut a, &mut b, &mut c],
        "chat reaches ben and cat",
        |m| {
            m[1..]
                .iter()
                .all(|x| x.view.chats_from("ann").any(|t| t == "hello everyone"))
        },
    );

    // Ben mutes: the others see it.
    b.send(EngineCommand::SetMic(false)).unwrap();
    let ben = id(&b);
    wait_all_until(
        &mut [&mut a, &mut b, &mut c],
        "ben's mute reaches ann and cat",
        |m| {
            [&m[0], &m[2]]
                .iter()
                .all(|x| x.view.participant(&ben).and_then(|p| p.media) == Some((false, true)))
        },
    );

    // Cat leaves mid-call.
    let cat = id(&c);
    c.send(EngineCommand::Leave).unwrap();
    wait_all_until(&mut [&mut a, &mut b], "ann and ben see cat leave", |m| {
        m.iter()
            .all(|x| x.view.participant(&cat).is_some_and(|p| p.left))
    });
    // The call between the remaining two goes on.
    let ann = id(&a);
    let ann_had = frames_from(&a, &ben);
    let ben_had = frames_from(&b, &ann);
    wait_all_until(
        &mut [&mut a, &mut b],
        "ann and ben keep decoding each other",
        |m| frames_from(m[0], &ben) > ann_had + 10 && frames_from(m[1], &ann) > ben_had + 10,
    );
    assert_eq!(
        frames_after_leave(&a),
        0,
        "no frames from cat after it left"
    );
    assert_eq!(
        frames_after_leave(&b),
        0,
        "no frames from cat after it left"
    );
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
    let mut a = member("ann");
    let mut b = member("ben");
    join(&a, &server, "stall");
    wait_all_until(&mut [&mut a], "ann in the room", |m| m[0].view.id.is_some());
    join(&b, &server, "stall");
    wait_all_until(&mut [&mut a, &mut b], "both decode each other", |m| {
        m.iter().all(|x| {
            x.view
                .participants
                .values()
                .next()
                .is_some_and(|p| p.frames >= 5)
        })
    });
    let ben = id(&b);

    // Ann's app takes no pictures for three seconds (events still flow, ben is served).
    a.set_take_video(false);
    let stalled = Instant::now();
    let stats_after_stall = |m: &Member| {
        m.view
            .participant(&ben)
            .filter(|p| {
                p.stats_at
                    .is_some_and(|at| at.duration_since(stalled) > Duration::from_secs(3))
            })
            .and_then(|p| p.stats.clone())
    };
    wait_all_until(&mut [&mut a, &mut b], "statistics after the stall", |m| {
        stats_after_stall(m[0]).is_some()
    });
    let stats = stats_after_stall(&a).unwrap();
    eprintln!("ann's stats of ben after the stall: {stats:#?}");
    assert!(
        stats.frames_dropped_consumer_slow > 0,
        "pictures were dropped for the stalled app: {stats:?}"
    );
    assert_eq!(stats.decode_errors, 0, "{stats:?}");
    assert!(stats.video_negotiated);

    // Taking pictures again: they are intact (`Intact` checks every marker) and keep coming.
    a.set_take_video(true);
    let had = frames_from(&a, &ben);
    wait_all_until(&mut [&mut a, &mut b], "ann decodes ben again", |m| {
        frames_from(m[0], &ben) > had + 10
    });
    drop((a, b));
    rt.block_on(server.shutdown(Duration::from_secs(1)));
}
