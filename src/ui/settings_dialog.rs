//! The settings window: devices (with the preview and the level meter), audio processing,
//! video quality, theme and the download folder. Everything in it is remembered (the settings
//! file) and takes effect at once.
//!
//! Contract: opened from the lobby's "Settings" and the call's "Settings" control
//! ([`ConfabApp::settings_open`]); it only edits [`ConfabApp::settings`] and tells the engine
//! what changed, through the same calls the lobby's pickers use.

use eframe::egui;

use super::app::ConfabApp;
use super::settings::{ThemeChoice, VideoQuality};
use confab_engine::EngineCommand;

impl ConfabApp {
    /// The settings window (see the module docs); drawn over whatever screen shows.
    pub(super) fn settings_window(&mut self, ctx: &egui::Context) {
        let mut open = self.settings_open;
        egui::Window::new("Settings")
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .default_width(420.0)
            .pivot(egui::Align2::CENTER_CENTER)
            .default_pos(ctx.content_rect().center())
            .show(ctx, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    ui.set_max_width(420.0);
                    ui.heading("Devices");
                    self.camera_picker(ui);
                    self.preview_ui(ui, egui::vec2(ui.available_width().min(320.0), 180.0));
                    ui.add_space(6.0);
                    self.audio_pickers(ui, true);
                    ui.separator();
                    ui.heading("Video quality");
                    ui.label(
                        "The most your camera sends; a slow connection gets less. A lower \
                         limit applies at once, a higher one from your next call.",
                    );
                    let mut quality = self.settings.video_quality;
                    for q in VideoQuality::ALL {
                        ui.radio_value(&mut quality, q, q.label());
                    }
                    if quality != self.settings.video_quality {
                        self.settings.video_quality = quality;
                        let _ = self
                            .engine
                            .send(EngineCommand::SetVideoSettings(quality.video_settings()));
                    }
                    ui.separator();
                    ui.heading("Appearance");
                    ui.horizontal(|ui| {
                        for (choice, label) in [
                            (ThemeChoice::System, "Like the system"),
                            (ThemeChoice::Light, "Light"),
                            (ThemeChoice::Dark, "Dark"),
                        ] {
                            ui.selectable_value(&mut self.settings.theme, choice, label);
                        }
                    });
                    ui.separator();
                    ui.heading("Received files");
                    ui.label("Where files sent to you in a call will be saved.");
                    self.download_dir_ui(ui);
                });
            });
        self.settings_open = open;
    }

    /// Where received files go: the system's download folder unless another is typed here.
    fn download_dir_ui(&mut self, ui: &mut egui::Ui) {
        let system = crate::app_dirs::downloads();
        let mut text = self
            .settings
            .download_dir
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let hint = system.as_ref().map_or_else(
            || "a folder".to_owned(),
            |p| format!("{} (the system's)", p.display()),
        );
        ui.horizontal(|ui| {
            let label = ui.label("Save to");
            let field = ui
                .add(egui::TextEdit::singleline(&mut text).hint_text(hint))
                .labelled_by(label.id);
            if field.changed() {
                // Kept as typed (folder names may have spaces, also at the ends); only an empty
                // or blank field means the system's folder.
                self.settings.download_dir = (!text.trim().is_empty()).then(|| text.clone().into());
            }
        });
        if let Some(dir) = &self.settings.download_dir
            && !dir.is_dir()
        {
            ui.colored_label(
                ui.visuals().error_fg_color,
                "That folder does not exist; files will go to the system's download folder.",
            );
        }
    }
}
