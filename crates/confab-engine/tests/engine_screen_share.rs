//! Screen share between real engines: a signaling server on 127.0.0.1:0, engines with
//! synthetic camera and microphone, and the synthetic screen (1920x1080, text, lines, a moving
//! cursor and the frame marker) shared as a second video track over real UDP, added and removed
//! by renegotiation mid-call. Assertions are about behaviour (what arrives, as which track,
//! intact, and that the camera never stops), never about speed: that is in `confab loopback
//! --screen-share`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use confab_engine::media::synthetic_video::read_marker;
use confab_engine::observer::{CallObserver, FrameSink};
use confab_engine::testing::{small_engine_config, start_engine, wait_all_until};
use confab_engine::{
    EngineCommand, ScreenInput, ScreenShareEnd, ScreenShareState, VideoFrameEvent, VideoRole,
};
use confab_test_support::signaling::start_server_runtime;
use signaling_server::ServerHandle;

/// Checks every decoded picture: intact marker, and the size its role implies (the camera is
/// 320x240, the screen 1920x1080), so a screen picture taken for the camera (or the reverse)
/// fails the test.
#[derive(Default)]
struct Roles {
    screens: u64,
}

impl FrameSink for Roles {
    fn frame(&mut self, from: &str, f: &VideoFrameEvent) {
        assert!(read_marker(&f.frame).is_ok(), "intact picture from {from}");
        let size = (f.frame.width(), f.frame.height());
        match f.role {
            VideoRole::Camera => assert_eq!(size, (320, 240), "camera picture from {from}"),
            VideoRole::Screen => {
                assert_eq!(size, (1920, 1080), "screen picture from {from}");
                self.screens += 1;
            }
        }
    }
}

type Member = CallObserver<Roles>;

fn member(name: &str) -> Member {
    CallObserver::with_frames(
        name,
        start_engine(small_engine_config(name)),
        Roles::default(),
    )
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

/// `(camera, screen)` pictures `m` decoded from `from`.
fn pictures(m: &Member, from: &str) -> (u64, u64) {
    m.view
        .participant(from)
        .map_or((0, 0), |p| (p.frames, p.screen_frames))
}

fn sharing(m: &Member, who: &str) -> bool {
    m.view.participant(who).is_some_and(|p| p.sharing)
}

/// One shares mid-call: the other learns it shares, decodes its screen at full size as a
/// screen, and keeps decoding its camera; it stops: the other learns that, no more screen
/// pictures come, and the camera still runs.
#[test]
fn a_screen_share_is_a_second_track_added_and_removed_mid_call() {
    let (_rt, server) = start_server_runtime();
    let mut a = member("ann");
    let mut b = member("ben");
    join(&a, &server, "share");
    wait_all_until(&mut [&mut a], "ann in the room", |m| m[0].view.id.is_some());
    join(&b, &server, "share");
    wait_all_until(&mut [&mut a, &mut b], "both decode the camera", |m| {
        m.iter()
            .all(|x| x.view.participants.values().any(|p| p.frames >= 5))
    });
    let ann = id(&a);
    let ben = id(&b);

    a.send(EngineCommand::ShareScreen(Some(ScreenInput::Synthetic)))
        .unwrap();
    let camera_before = pictures(&b, &ann).0;
    wait_all_until(
        &mut [&mut a, &mut b],
        "ben decodes ann's screen and still her camera",
        |m| {
            let (camera, screen) = pictures(m[1], &ann);
            sharing(m[1], &ann) && screen >= 10 && camera >= camera_before + 10
        },
    );
    assert!(
        matches!(a.view.screen_share, Some(ScreenShareState::Sharing { .. })),
        "ann is told she shares: {:?}",
        a.view.screen_share
    );
    assert_eq!(pictures(&a, &ben).1, 0, "ben shares nothing");
    let stats = b.view.participant(&ann).and_then(|p| p.stats.clone());
    wait_all_until(&mut [&mut a, &mut b], "screen figures in the stats", |m| {
        m[1].view
            .participant(&ann)
            .and_then(|p| p.stats.as_ref())
            .is_some_and(|s| s.screen_fps_in > 0.0 && s.screen_kbps_in > 0.0)
    });
    drop(stats);

    a.send(EngineCommand::ShareScreen(None)).unwrap();
    wait_all_until(&mut [&mut a, &mut b], "ben sees ann stop sharing", |m| {
        !sharing(m[1], &ann)
    });
    assert_eq!(
        a.view.screen_share,
        Some(ScreenShareState::Ended {
            reason: ScreenShareEnd::Stopped
        })
    );
    // Pictures already on their way may still arrive; after that, none.
    let (camera_at_stop, _) = pictures(&b, &ann);
    wait_all_until(
        &mut [&mut a, &mut b],
        "ben keeps decoding ann's camera",
        |m| pictures(m[1], &ann).0 >= camera_at_stop + 15,
    );
    let screen_settled = pictures(&b, &ann).1;
    let camera_now = pictures(&b, &ann).0;
    wait_all_until(&mut [&mut a, &mut b], "another second of camera", |m| {
        pictures(m[1], &ann).0 >= camera_now + 15
    });
    assert_eq!(
        pictures(&b, &ann).1,
        screen_settled,
        "no screen pictures once the share stopped"
    );
}

/// A share reaches whoever joins while it runs (their connection carries it from the first
/// exchange), and a second sharer replaces the first: its share ends, saying who replaced it.
#[test]
fn a_newcomer_gets_the_running_share_and_a_second_sharer_replaces_the_first() {
    let (_rt, server) = start_server_runtime();
    let mut a = member("ann");
    let mut c = member("cat");
    join(&a, &server, "relay");
    wait_all_until(&mut [&mut a], "ann in the room", |m| m[0].view.id.is_some());
    a.send(EngineCommand::ShareScreen(Some(ScreenInput::Synthetic)))
        .unwrap();
    wait_all_until(&mut [&mut a], "ann shares", |m| {
        matches!(
            m[0].view.screen_share,
            Some(ScreenShareState::Sharing { .. })
        )
    });
    let ann = id(&a);
    join(&c, &server, "relay");
    wait_all_until(
        &mut [&mut a, &mut c],
        "cat, who came later, decodes ann's camera and screen",
        |m| {
            let (camera, screen) = pictures(m[1], &ann);
            sharing(m[1], &ann) && camera >= 5 && screen >= 5
        },
    );
    let cat = id(&c);

    c.send(EngineCommand::ShareScreen(Some(ScreenInput::Synthetic)))
        .unwrap();
    wait_all_until(
        &mut [&mut a, &mut c],
        "ann's share gives way to cat's, which ann decodes",
        |m| {
            let replaced = m[0].view.screen_share
                == Some(ScreenShareState::Ended {
                    reason: ScreenShareEnd::Replaced {
                        by: signaling_client::ParticipantId(cat.clone()),
                    },
                });
            replaced && !sharing(m[1], &ann) && pictures(m[0], &cat).1 >= 5
        },
    );
    assert!(a.frames.screens >= 5 && c.frames.screens >= 5);
}
