//! The desktop app under egui_kittest: options with test sources and loopback addresses, a
//! harness, stepping until something shows, and snapshot tolerances.

use std::time::{Duration, Instant};

use confab::ui::{AppOptions, ConfabApp};
use confab_engine::testing::small_engine_config;
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
    Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
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
