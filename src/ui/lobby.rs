//! The lobby: name, room, host or join, devices with a live preview and a level meter.

use eframe::egui;

use super::app::{ConfabApp, Screen, friendly_error};
use super::settings::{CameraChoice, MicrophoneChoice, ThemeChoice};

impl ConfabApp {
    pub(super) fn lobby_ui(&mut self, ui: &mut egui::Ui) {
        egui::CentralPanel::default().show(ui, |ui| {
            ui.vertical_centered(|ui| {
                ui.add_space(12.0);
                ui.heading("Confab");
                ui.label("Open, end-to-end encrypted video calls.");
                ui.add_space(12.0);
            });
            ui.columns(2, |cols| {
                self.lobby_form(&mut cols[0]);
                self.lobby_devices(&mut cols[1]);
            });
        });
    }

    fn lobby_form(&mut self, ui: &mut egui::Ui) {
        egui::Grid::new("lobby-form")
            .num_columns(2)
            .spacing([8.0, 8.0])
            .show(ui, |ui| {
                let label = ui.label("Your name");
                let name = ui
                    .add(
                        egui::TextEdit::singleline(&mut self.settings.name)
                            .hint_text("How others see you"),
                    )
                    .labelled_by(label.id);
                if self.focus_name {
                    name.request_focus();
                    self.focus_name = false;
                }
                ui.end_row();
                let label = ui.label("Room");
                ui.horizontal(|ui| {
                    ui.add(
                        egui::TextEdit::singleline(&mut self.settings.room).desired_width(140.0),
                    )
                    .labelled_by(label.id);
                    if !self.settings.recent_rooms.is_empty() {
                        let recent = egui::ComboBox::from_id_salt("recent-rooms")
                            .selected_text("Recent")
                            .show_ui(ui, |ui| {
                                for r in self.settings.recent_rooms.clone() {
                                    if ui.selectable_label(false, &r).clicked() {
                                        self.settings.room = r;
                                    }
                                }
                            });
                        recent.response.widget_info(|| {
                            egui::WidgetInfo::labeled(egui::Role::ComboBox, true, "Recent rooms")
                        });
                    }
                });
                ui.end_row();
                let label = ui.label("Password");
                ui.add(
                    egui::TextEdit::singleline(&mut self.password)
                        .password(true)
                        .hint_text("optional"),
                )
                .labelled_by(label.id);
                ui.end_row();
            });
        ui.add_space(12.0);
        ui.group(|ui| {
            ui.strong("Start a call on this computer");
            ui.label("Others join with the address shown once you are in.");
            if ui
                .add(egui::Button::new("Host a call").min_size(egui::vec2(160.0, 30.0)))
                .clicked()
            {
                self.host();
            }
        });
        ui.add_space(8.0);
        ui.group(|ui| {
            ui.strong("Join someone's call");
            ui.horizontal(|ui| {
                let label = ui.label("Address");
                let field = ui
                    .add(
                        egui::TextEdit::singleline(&mut self.settings.address)
                            .hint_text("192.168.1.20:8787 or a confab:// link")
                            .desired_width(220.0),
                    )
                    .labelled_by(label.id);
                let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if ui.button("Join").clicked() || enter {
                    self.join();
                }
            });
        });
        if let Some(err) = &self.lobby_error {
            ui.add_space(8.0);
            ui.colored_label(ui.visuals().error_fg_color, friendly_error(err));
        }
        ui.add_space(12.0);
        ui.horizontal(|ui| {
            ui.label("Theme");
            for (choice, label) in [
                (ThemeChoice::System, "System"),
                (ThemeChoice::Light, "Light"),
                (ThemeChoice::Dark, "Dark"),
            ] {
                ui.selectable_value(&mut self.settings.theme, choice, label);
            }
        });
    }

    fn lobby_devices(&mut self, ui: &mut egui::Ui) {
        let mut changed = picker(
            ui,
            "Camera",
            &mut self.settings.camera,
            &[
                (CameraChoice::TestPattern, "Test pattern (test source)"),
                (CameraChoice::Off, "No camera"),
            ],
        );
        self.preview_ui(ui, egui::vec2(ui.available_width().min(320.0), 180.0));
        ui.add_space(8.0);
        changed |= picker(
            ui,
            "Microphone",
            &mut self.settings.microphone,
            &[
                (MicrophoneChoice::TestTone, "Test tone (test source)"),
                (MicrophoneChoice::Off, "No microphone"),
            ],
        );
        let level = if self.settings.microphone == MicrophoneChoice::Off {
            0.0
        } else {
            ((self.mic_level_db + 60.0) / 60.0).clamp(0.0, 1.0)
        };
        ui.add(
            egui::ProgressBar::new(level)
                .desired_width(ui.available_width().min(320.0))
                .text(if self.settings.microphone == MicrophoneChoice::Off {
                    "microphone off".to_owned()
                } else {
                    format!("level {:.0} dB", self.mic_level_db.max(-99.0))
                }),
        );
        ui.add_space(8.0);
        ui.strong("Speaker");
        ui.label("Default output (no sound device needed for test sources)");
        if changed {
            self.sources_changed();
        }
    }

    /// Our own picture, aspect-correct, or a placeholder.
    pub(super) fn preview_ui(&self, ui: &mut egui::Ui, max: egui::Vec2) {
        match self.videos.tile(&None) {
            Some(tile) => {
                let size = fit(tile.size, max);
                ui.add(egui::Image::new((tile.texture.id(), size)).corner_radius(6.0));
            }
            None => {
                let text = if self.settings.camera == CameraChoice::Off {
                    "Camera off"
                } else {
                    "Starting camera…"
                };
                let (rect, response) = ui.allocate_exact_size(max, egui::Sense::hover());
                response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, text));
                ui.painter()
                    .rect_filled(rect, 6.0, ui.visuals().extreme_bg_color);
                ui.painter().text(
                    rect.center(),
                    egui::Align2::CENTER_CENTER,
                    text,
                    egui::FontId::proportional(14.0),
                    ui.visuals().weak_text_color(),
                );
            }
        }
    }

    pub(super) fn connecting_ui(&mut self, ui: &mut egui::Ui) {
        let Screen::Connecting { target, since } = &self.screen else {
            return;
        };
        let text = format!(
            "Connecting to {target}… ({:.0} s)",
            since.elapsed().as_secs_f64()
        );
        let mut cancel = false;
        egui::CentralPanel::default().show(ui, |ui| {
            ui.vertical_centered(|ui| {
                ui.add_space(ui.available_height() / 3.0);
                ui.spinner();
                ui.label(text);
                cancel = ui.button("Cancel").clicked();
            });
        });
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(500));
        if cancel {
            self.hang_up();
            self.screen = Screen::Lobby;
        }
    }
}

/// A labelled device picker; returns whether the choice changed. Test sources say so in their
/// names, so they are not mistaken for real devices.
fn picker<T: PartialEq + Copy>(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut T,
    options: &[(T, &str)],
) -> bool {
    let heading = ui.strong(label);
    let current = options
        .iter()
        .find(|(v, _)| v == value)
        .map_or("", |(_, name)| *name);
    let mut changed = false;
    let combo = egui::ComboBox::from_id_salt(label)
        .selected_text(current)
        .show_ui(ui, |ui| {
            for (option, name) in options {
                changed |= ui.selectable_value(value, *option, *name).changed();
            }
        });
    combo.response.labelled_by(heading.id);
    changed
}

/// The largest size with `size`'s aspect ratio that fits in `max`.
pub(super) fn fit(size: [usize; 2], max: egui::Vec2) -> egui::Vec2 {
    let (w, h) = (size[0].max(1) as f32, size[1].max(1) as f32);
    let scale = (max.x / w).min(max.y / h);
    egui::vec2(w * scale, h * scale)
}
