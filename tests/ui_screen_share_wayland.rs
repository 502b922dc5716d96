//! Screen sharing from the desktop app on a Wayland session, driven headless with egui_kittest:
//! the picker offers the desktop's own dialog instead of X11 monitors and windows, choosing it
//! goes through a ScreenCast portal to a real PipeWire node (a private session bus, PipeWire,
//! WirePlumber, GStreamer's pipewiresink showing a picture; the portal is the test's own, see
//! `confab_test_support::portal_desktop`), the banner says we share and a real engine in the
//! call decodes the screen; the desktop's "stop sharing" ends the share in the app and for the
//! other side.
//!
//! The session type, the bus and PipeWire's socket are read from the environment, so this
//! binary sets them first and holds a single test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unsafe_code,
    reason = "test code; set_var before the app and the engines start (one test per binary)"
)]

mod common;

use common::ui::{harness_stepping, host_call_in, join_engine, only_other, shows, step_until};

use confab::ui::app::Screen;
use confab_engine::testing::wait_until;
use confab_test_support::portal_desktop::PortalDesktop;
use egui_kittest::kittest::Queryable;

const W: u32 = 1280;
const H: u32 = 720;

/// A picture to share: four coloured quarters.
fn quarters() -> Vec<u8> {
    let mut bgrx = Vec::with_capacity((W * H * 4) as usize);
    for y in 0..H {
        for x in 0..W {
            let [r, g, b] = match (x < W / 2, y < H / 2) {
                (true, true) => [220, 30, 30],
                (false, true) => [30, 200, 40],
                (true, false) => [40, 60, 220],
                (false, false) => [240, 220, 30],
            };
            bgrx.extend_from_slice(&[b, g, r, 0]);
        }
    }
    bgrx
}

#[test]
fn on_wayland_the_picker_shares_what_the_desktop_grants_until_the_desktop_stops_it() {
    let mut desktop = PortalDesktop::start_with(|env| {
        for (key, value) in env {
            // SAFETY: one test in this binary, and no other thread has started yet (the
            // desktop calls this before starting any).
            unsafe { std::env::set_var(key, value) };
        }
        // SAFETY: as above.
        unsafe { std::env::set_var("XDG_SESSION_TYPE", "wayland") };
    });
    desktop.show_picture(&quarters(), (W, H), 15);

    let room = "wayland-share";
    let mut h = host_call_in(harness_stepping(0.05), room);
    let mut ben = join_engine(&h, "Ben", room);
    step_until(
        &mut h,
        "Ben in the call",
        |h| matches!(&h.state().screen, Screen::InCall(c) if !c.remotes.is_empty()),
    );

    h.get_by_label("Share screen").click();
    step_until(&mut h, "the picker", |h| {
        shows(h, "Choose a screen or window…")
    });
    assert!(
        h.query_by_label_contains("Screen 1").is_none(),
        "no X11 monitors offered on Wayland"
    );
    assert!(h.query_by_label("Test desktop").is_some());
    h.get_by_label("Choose a screen or window…").click();
    step_until(&mut h, "our banner", |h| {
        matches!(&h.state().screen, Screen::InCall(c) if c.sharing.is_some())
            && shows(h, "You are sharing")
    });
    let ann = only_other(&ben);
    wait_until(&mut ben, "Ben decodes our screen", |b| {
        b.view
            .participant(&ann)
            .is_some_and(|p| p.sharing && p.screen_frames > 5)
    });
    assert_eq!(desktop.sessions(), (1, 0), "one portal session, open");

    // The desktop's "stop sharing" indicator.
    desktop.close_sessions();
    step_until(&mut h, "the share ended in the app", |h| {
        matches!(&h.state().screen, Screen::InCall(c) if c.sharing.is_none())
            && h.query_by_label("Share screen").is_some()
    });
    wait_until(&mut ben, "Ben sees the share end", |b| {
        b.view.participant(&ann).is_some_and(|p| !p.sharing)
    });
    drop(ben);
}
