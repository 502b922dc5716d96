//! "Test my call" in the real app, driven with egui_kittest by its labels: the lobby's button
//! runs a real check (the app's own engine and a test peer over UDP through a private server),
//! the screen shows what the test peer decodes of the camera and then the result in words, with
//! the figures behind "Details"; a snapshot of the result; Cancel leaves nothing behind (a call
//! can be hosted right after).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

mod common;

use common::ui::{lobby_with_preview, shows, snapshot_tolerance, step_until};
use confab::call_check::Stage;
use confab::call_check::report::{Part, Status};
use confab::ui::app::Screen;
use egui_kittest::kittest::Queryable;

#[test]
fn test_my_call_shows_what_the_others_see_and_words_the_result() {
    let mut h = lobby_with_preview();
    h.get_by_label("Test my call").click();
    step_until(&mut h, "the check screen", |h| {
        shows(h, "A short call from this computer to a test peer")
    });
    // While it measures: the camera as the test peer decoded it, and the instructions.
    step_until(&mut h, "the far end's picture", |h| {
        h.state().check_picture_frames() > 5
    });
    assert!(shows(&h, "say a few words"));
    step_until(
        &mut h,
        "the result",
        |h| matches!(&h.state().screen, Screen::Check(c) if c.is_done()),
    );
    h.step();
    let Screen::Check(check) = &h.state().screen else {
        unreachable!()
    };
    let report = check.report().unwrap().clone();
    assert_eq!(report.status, Status::Good, "{}", report.render_text());
    let camera = report
        .items
        .iter()
        .find(|i| i.part == Part::Camera)
        .unwrap();
    assert_eq!(camera.status, Status::Good);
    // Every row is on the screen, in words.
    assert!(shows(&h, "Your call works."));
    for item in &report.items {
        assert!(shows(&h, item.part.title()), "{:?}", item.part);
        assert!(shows(&h, &item.text), "{}", item.text);
    }
    assert!(shows(&h, "The others see you: 320x240"));
    // The figures stay behind the toggle until asked for.
    assert!(!shows(&h, "Pictures sent / decoded there"));
    h.get_by_label("Details").click();
    step_until(&mut h, "the details", |h| {
        shows(h, "Pictures sent / decoded there")
    });
    h.step();
    // The test peer's decoded picture (about 315x236 = 74,000 pixels of moving pattern) and the
    // timings vary.
    h.snapshot_options("call-check", &snapshot_tolerance(90_000));

    // Again, at once: the first check's call is still ending, and none of that may reach the
    // second check (it would read "You left the call" as its own result).
    h.get_by_label("Test again").click();
    step_until(
        &mut h,
        "the second check's result",
        |h| matches!(&h.state().screen, Screen::Check(c) if c.is_done()),
    );
    let Screen::Check(again) = &h.state().screen else {
        unreachable!()
    };
    let again = again.report().unwrap();
    assert_eq!(again.status, Status::Good, "{}", again.render_text());

    h.get_by_label("Back to the lobby").click();
    step_until(&mut h, "the lobby", |h| {
        matches!(h.state().screen, Screen::Lobby)
    });
    // The engine left the test room and the preview runs again; nothing of the check's call
    // turns up in the lobby.
    let before = h.state().frames_shown(&None);
    step_until(&mut h, "the preview moves again", |h| {
        h.state().frames_shown(&None) > before + 3
    });
    assert!(matches!(h.state().screen, Screen::Lobby));
    assert_eq!(h.state().lobby_error, None);
}

/// Steps the UI for `seconds` of real time (the engine's late events arrive meanwhile).
fn step_for(h: &mut egui_kittest::Harness<'static, confab::ui::ConfabApp>, seconds: f64) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds);
    while std::time::Instant::now() < end {
        h.step();
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn cancelling_the_check_leaves_the_engine_free_to_host_a_call() {
    let mut h = lobby_with_preview();
    // Cancelled while measuring, and cancelled at once (the join still under way): either way
    // the lobby stays the lobby (no call screen for the test room, no "You left the call").
    for at_once in [false, true] {
        h.get_by_label("Test my call").click();
        if at_once {
            step_until(&mut h, "the check screen", |h| shows(h, "Cancel"));
        } else {
            step_until(
                &mut h,
                "measuring",
                |h| matches!(&h.state().screen, Screen::Check(c) if matches!(c.stage(), Stage::Measuring(_))),
            );
        }
        h.get_by_label("Cancel").click();
        step_until(&mut h, "the lobby", |h| shows(h, "Host a call"));
        step_for(&mut h, 2.0);
        assert!(
            matches!(h.state().screen, Screen::Lobby),
            "at once {at_once}: {:?}",
            h.state().screen
        );
        assert_eq!(h.state().lobby_error, None, "at once {at_once}");
    }
    h.state_mut().settings.room = "after-check".into();
    h.get_by_label("Host a call").click();
    step_until(
        &mut h,
        "in the call",
        |h| matches!(&h.state().screen, Screen::InCall(c) if c.room == "after-check"),
    );
}

#[test]
fn a_bad_server_address_is_refused_before_the_check_starts() {
    let mut h = lobby_with_preview();
    h.state_mut().settings.address = "ws://".into();
    h.get_by_label("Test my call").click();
    h.step();
    h.step();
    assert!(matches!(h.state().screen, Screen::Lobby));
    assert!(shows(&h, "Cannot test through that address"));
}
