//! The desktop app under egui_kittest: options with test sources and loopback addresses, a
//! harness, stepping until something shows, and snapshot tolerances.

use std::time::{Duration, Instant};

use confab::ui::app::Screen;
use confab::ui::{AppOptions, ConfabApp};
use confab_engine::EngineCommand;
use confab_engine::observer::CallObserver;
use confab_engine::testing::{small_engine_config, start_engine, wait_until};
use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};

/// Test sources, no sound, loopback addresses, no settings file.
pub fn options() -> AppOptions {
    AppOptions {
        engine: small_engine_config("ui-test"),
        host_bind: [127, 0, 0, 1].into(),
        join_now: None,
        // Test sources and no sound: the snapshots must not depend on this machine's devices.
        devices: false,
        // No settings file: nothing read from or written to this machine's config directory.
        ..AppOptions::default()
    }
}

/// The app in a 1100x720 window.
pub fn harness() -> Harness<'static, ConfabApp> {
    harness_stepping(0.25)
}

/// [`harness`] whose every step (one per queued event) advances egui's clock by `dt` seconds.
/// The default quarter second is too long for a double click: a click is three events (move,
/// press, release), so two clicks' presses are half a second apart, over egui's 0.3 s.
pub fn harness_stepping(dt: f32) -> Harness<'static, ConfabApp> {
    Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
        .with_step_dt(dt)
        .build_eframe(|cc| ConfabApp::new(cc, options()).expect("the app starts"))
}

/// The app in its lobby once the live preview shows.
pub fn lobby_with_preview() -> Harness<'static, ConfabApp> {
    let mut h = harness();
    step_until(&mut h, "the preview shows", |h| {
        h.state().frames_shown(&None) > 2
    });
    h
}

/// Steps the UI (real time passes for the network) until `done`, failing after 30 s.
pub fn step_until(
    h: &mut Harness<'static, ConfabApp>,
    what: &str,
    done: impl Fn(&Harness<'static, ConfabApp>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        h.step();
        if done(h) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        // The UI's state is only seen by stepping it; between steps the engine runs.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether any widget's accessible label contains `text`.
pub fn shows(h: &Harness<'static, ConfabApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

/// Snapshot comparison that tolerates moving video and changing figures in that many pixels.
pub fn snapshot_tolerance(max_failed_pixels: usize) -> SnapshotOptions {
    SnapshotOptions::new()
        .threshold(2.0)
        .max_failed_pixels(max_failed_pixels)
}

/// Hosts "room" as Ann and returns the harness in the call.
pub fn host_call(room: &str) -> Harness<'static, ConfabApp> {
    host_call_in(harness(), room)
}

/// [`host_call`] in the harness `h`.
pub fn host_call_in(mut h: Harness<'static, ConfabApp>, room: &str) -> Harness<'static, ConfabApp> {
    h.get_by_label("Your name").type_text("Ann");
    h.state_mut().settings.room = room.into();
    h.get_by_label("Host a call").click();
    step_until(&mut h, "in the call", |h| {
        matches!(h.state().screen, Screen::InCall(_))
    });
    h
}

/// A headless engine named `name` joins the call `h` hosts.
pub fn join_engine(h: &Harness<'static, ConfabApp>, name: &str, room: &str) -> CallObserver {
    join_engine_with(h, small_engine_config(name), room)
}

/// [`join_engine`] with this configuration.
pub fn join_engine_with(
    h: &Harness<'static, ConfabApp>,
    config: confab_engine::EngineConfig,
    room: &str,
) -> CallObserver {
    let name = config.name.clone();
    let mut peer = CallObserver::new(&name, start_engine(config));
    peer.send(EngineCommand::Join {
        url: h.state().hosted_url().expect("hosting"),
        room: room.into(),
        password: None,
    })
    .unwrap();
    wait_until(&mut peer, "the engine joins", |p| p.view.id.is_some());
    peer
}

/// The id of the one participant `peer` sees in the call (the app's user, when `peer` joined it alone).
pub fn only_other(peer: &CallObserver) -> String {
    peer.view
        .participants
        .keys()
        .next()
        .cloned()
        .expect("the engine sees the app's user")
}
