//! Screen sharing in the real desktop app, driven headless with egui_kittest by its labels,
//! with a real engine in the call: someone else's share takes the presenter layout (their
//! screen large, cameras in a strip, 1:1 on double-click) and the grid comes back when it
//! stops; our own share goes through the picker to the test desktop, shows the "You are
//! sharing" banner with a live preview, reaches the other side as a screen, and gives way when
//! the other side shares. Snapshots of both views are compared with tolerant thresholds (the
//! test desktop's pointer and the cameras move).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

mod common;

use common::ui::{
    harness_stepping, host_call_in, join_engine, only_other, shows, snapshot_tolerance, step_until,
};

use confab::ui::app::Screen;
use confab_engine::observer::CallObserver;
use confab_engine::testing::wait_until;
use confab_engine::{EngineCommand, ScreenInput};
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use signaling_client::ParticipantId;

/// The rectangle of the widget labelled exactly `label`.
fn rect_of(h: &Harness<'static, confab::ui::ConfabApp>, label: &str) -> Option<egui::Rect> {
    h.query_by_label(label).map(|n| n.rect())
}

/// The area of `name`'s camera tile (its label is the name, then words like "video").
fn tile_area(h: &Harness<'static, confab::ui::ConfabApp>, name: &str) -> Option<f32> {
    h.query_all_by_label_contains(name)
        .find(|n| {
            n.accesskit_node()
                .label()
                .is_some_and(|l| l == name || l.starts_with(&format!("{name} ")))
        })
        .map(|n| n.rect().area())
}

/// Two clicks on the widget labelled `label` (a double click: the harness steps 50 ms), after
/// half a second without any (so it is not taken for the end of a triple click).
fn double_click(h: &mut Harness<'static, confab::ui::ConfabApp>, label: &str) {
    for _ in 0..10 {
        h.step();
    }
    h.get_by_label(label).click();
    h.get_by_label(label).click();
    h.step();
}

fn presenter(h: &Harness<'static, confab::ui::ConfabApp>) -> Option<ParticipantId> {
    match &h.state().screen {
        Screen::InCall(call) => call.presenter.clone(),
        _ => None,
    }
}

fn sharing(h: &Harness<'static, confab::ui::ConfabApp>) -> bool {
    matches!(&h.state().screen, Screen::InCall(call) if call.sharing.is_some())
}

/// Screen pictures `observer` decoded from `from`.
fn screens_from(observer: &CallObserver, from: &str) -> u64 {
    observer
        .view
        .participant(from)
        .map_or(0, |p| p.screen_frames)
}

#[test]
fn someone_elses_share_is_presented_and_our_own_share_shows_its_banner() {
    let room = "share-room";
    let mut h = host_call_in(harness_stepping(0.05), room);
    let mut ben = join_engine(&h, "Ben", room);
    let ben_id = ParticipantId(ben.view.id.clone().unwrap());
    step_until(&mut h, "Ben's camera shows", |h| {
        h.state().frames_shown(&Some(ben_id.clone())) > 3
    });

    // Ben shares: his screen large, his camera in the strip below.
    ben.send(EngineCommand::ShareScreen(Some(ScreenInput::Synthetic)))
        .unwrap();
    step_until(&mut h, "Ben presents, and we are told", |h| {
        presenter(h) == Some(ben_id.clone()) && shows(h, "Ben is sharing their screen")
    });
    step_until(&mut h, "Ben's screen shown", |h| {
        h.state()
            .screen_shown(&Some(ben_id.clone()))
            .is_some_and(|(size, n)| size == [1920, 1080] && n > 3)
    });
    let screen = rect_of(&h, "Ben's screen").expect("the screen's picture");
    let camera = tile_area(&h, "Ben").expect("Ben's camera tile");
    assert!(
        screen.area() > 4.0 * camera,
        "the screen is large ({screen:?}), the camera small ({camera})"
    );
    assert!(shows(&h, "Ben is presenting"));
    h.snapshot_options("presenter", &snapshot_tolerance(120_000));

    // A double click shows it at its own size, another fits it again.
    double_click(&mut h, "Ben's screen");
    step_until(&mut h, "actual size", |h| {
        shows(h, "Ben's screen, actual size")
    });
    double_click(&mut h, "Ben's screen, actual size");
    step_until(&mut h, "fitted again", |h| {
        h.query_by_label("Ben's screen").is_some()
    });

    // Ben stops: back to the grid.
    ben.send(EngineCommand::ShareScreen(None)).unwrap();
    step_until(&mut h, "the grid again", |h| {
        presenter(h).is_none() && h.query_by_label("Ben's screen").is_none()
    });

    // Ben turns his camera off, so the moving pattern does not fill the snapshot below.
    ben.send(EngineCommand::SetCamera(false)).unwrap();
    step_until(
        &mut h,
        "Ben's camera off",
        |h| matches!(&h.state().screen, Screen::InCall(c) if c.remotes.values().all(|r| !r.camera)),
    );

    // We share the test desktop through the picker.
    h.get_by_label("Share screen").click();
    step_until(&mut h, "the picker", |h| shows(h, "Test desktop"));
    h.get_by_label("Test desktop").click();
    step_until(&mut h, "our banner with its preview", |h| {
        sharing(h)
            && shows(h, "You are sharing")
            && h.state().screen_shown(&None).is_some_and(|(_, n)| n > 0)
            && h.query_by_label("Preview of your shared screen").is_some()
    });
    assert_eq!(
        h.query_all_by_label("Stop sharing").count(),
        2,
        "bar and banner"
    );
    let ann = only_other(&ben);
    wait_until(&mut ben, "Ben decodes our screen", |b| {
        screens_from(b, &ann) > 5 && b.view.participant(&ann).is_some_and(|p| p.sharing)
    });
    h.step();
    h.snapshot_options("sharing", &snapshot_tolerance(60_000));

    // Ben shares too: ours gives way, his is presented.
    ben.send(EngineCommand::ShareScreen(Some(ScreenInput::Synthetic)))
        .unwrap();
    step_until(&mut h, "our share replaced by Ben's", |h| {
        !sharing(h)
            && presenter(h) == Some(ben_id.clone())
            && shows(h, "Ben is now sharing; your share stopped.")
            && h.query_by_label("Share screen").is_some()
    });
    drop(ben);
}
