//! The desktop app (eframe/egui). It talks to the engine only through `EngineCommand`s and
//! `EngineEvent`s; nothing here touches the network or media devices directly.
//!
//! | module | owns |
//! |---|---|
//! | [`app`] | [`ConfabApp`]: settings, the engine, the screens, draining the engine each frame |
//! | `active_speaker` | who is talking (smoothed levels) and who has the speaker view's big tile |
//! | `engine_events` | engine events turned into changes to the model (call, toasts, devices) |
//! | `lobby` | name, room, host/join, device pickers with preview and level meter |
//! | `call_view` | tiles grid, picture-in-picture, controls and shortcuts, toasts, ended screen |
//! | `check_view` | "Test my call": the running check and its result in words |
//! | `call_panels` | the chat side panel and the statistics window of a call |
//! | `people_panel` | the participants side panel: mic/camera, connection, security code each |
//! | [`screen_share_view`] | screen sharing: the picker, the "You are sharing" banner with preview and Stop, the presenter layout |
//! | [`video`] | decoded frames into long-lived textures: I420 converted by a wgpu shader, or on the CPU |
//! | [`ui_timing`] | the UI thread's time per frame (statistics window, log) |
//! | `settings_dialog` | the settings window: devices, processing, video quality, theme, downloads |
//! | `style` | the type scale, spacing and AA-contrast text colours of both themes |
//! | [`settings`] | what is remembered between runs |
//! | [`settings_file`] | where it is remembered: the settings file, created on first launch |

mod active_speaker;
pub mod app;
mod call_panels;
mod call_view;
mod check_view;
mod engine_events;
mod lobby;
mod people_panel;
pub mod screen_share_view;
pub mod settings;
mod settings_dialog;
pub mod settings_file;
mod style;
pub mod ui_timing;
pub mod video;

pub use app::{AppOptions, ConfabApp};

/// The window icon (also used by the packages).
pub const ICON_PNG: &[u8] = include_bytes!("../../assets/icon-256.png");

/// Opens the app window and runs until it is closed.
pub fn run(options: AppOptions) -> eframe::Result {
    let mut viewport = eframe::egui::ViewportBuilder::default()
        .with_title("Confab")
        // Wayland compositors and X11 docks match the window to org.confab.Confab.desktop.
        .with_app_id(crate::app_dirs::APP_ID)
        .with_inner_size([1100.0, 720.0])
        .with_min_inner_size([640.0, 420.0]);
    if let Ok(icon) = eframe::icon_data::from_png_bytes(ICON_PNG) {
        viewport = viewport.with_icon(icon);
    }
    let native = eframe::NativeOptions {
        viewport,
        persist_window: true,
        persistence_path: options.window_state_file.clone(),
        ..Default::default()
    };
    eframe::run_native(
        "Confab",
        native,
        Box::new(move |cc| Ok(Box::new(ConfabApp::new(cc, options)?))),
    )
}
