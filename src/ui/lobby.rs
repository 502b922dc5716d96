//! The lobby: name, room, host or join, devices with a live preview and a level meter.

use eframe::egui;

use super::app::{ConfabApp, Screen};
use super::settings::{CameraChoice, MicrophoneChoice, SpeakerChoice};
use super::video::Source;
use confab_engine::devices::DEFAULT_DEVICE;
use confab_engine::devices::{DeviceInfo, DeviceKind};

impl ConfabApp {
    pub(super) fn lobby_ui(&mut self, ui: &mut egui::Ui) {
        egui::CentralPanel::default().show(ui, |ui| {
            ui.vertical_centered(|ui| {
                ui.add_space(12.0);
                ui.heading("Confab");
                ui.label("Open, end-to-end encrypted video calls.");
                ui.add_space(12.0);
                self.still_hosting_banner(ui);
            });
            ui.columns(2, |cols| {
                self.lobby_form(&mut cols[0]);
                self.lobby_devices(&mut cols[1]);
            });
        });
    }

    /// After leaving a call this computer hosts, while others are still in it: say so, and let
    /// the host end it.
    fn still_hosting_banner(&mut self, ui: &mut egui::Ui) {
        let others = self.hosted_others();
        if others == 0 {
            return;
        }
        // The count changes as they leave; the lobby otherwise sleeps.
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_secs(1));
        let mut end = false;
        ui.group(|ui| {
            ui.label(format!(
                "This computer still hosts a call: {} in it.",
                crate::wording::people_are(others)
            ));
            end = ui.button("End the call for everyone").clicked();
        });
        ui.add_space(8.0);
        if end {
            self.end_for_everyone();
        }
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
            ui.colored_label(ui.visuals().error_fg_color, err);
        }
        ui.add_space(12.0);
        ui.horizontal(|ui| {
            if ui
                .button("Settings")
                .on_hover_text("Devices, sound processing, video quality, theme, download folder")
                .clicked()
            {
                self.settings_open = true;
            }
            if ui
                .button("Test my call")
                .on_hover_text(
                    "A short call to a test peer (8 s once connected): camera, microphone, speaker \
                     and network, checked the way a call uses them (through the server in \
                     Address, if given)",
                )
                .clicked()
            {
                self.start_check();
            }
        });
    }

    fn lobby_devices(&mut self, ui: &mut egui::Ui) {
        self.camera_picker(ui);
        self.preview_ui(ui, egui::vec2(ui.available_width().min(320.0), 180.0));
        ui.add_space(8.0);
        self.audio_pickers(ui, false);
    }

    /// The camera picker and its problem, if any.
    pub(super) fn camera_picker(&mut self, ui: &mut egui::Ui) {
        let auto = match self.devices.cameras.first() {
            Some(c) => format!("Default camera ({})", c.name),
            None => "Default camera (none found)".to_owned(),
        };
        let mut options = vec![(CameraChoice::Auto, auto)];
        options.extend(
            self.devices
                .cameras
                .iter()
                .map(|c| (CameraChoice::Device(c.id.clone()), c.name.clone())),
        );
        if let CameraChoice::Device(id) = &self.settings.camera
            && !self.devices.cameras.iter().any(|c| &c.id == id)
        {
            options.push((
                self.settings.camera.clone(),
                format!("{id} (not connected)"),
            ));
        }
        options.push((
            CameraChoice::TestPattern,
            "Test pattern (test source)".to_owned(),
        ));
        options.push((CameraChoice::Off, "No camera".to_owned()));
        if picker(ui, "Camera", &mut self.settings.camera, &options) {
            self.sources_changed();
        }
        self.device_note_ui(ui, DeviceKind::Camera);
    }

    /// Microphone and speaker pickers, the level meter and, with `processing`, the switches of
    /// echo cancellation, noise suppression and automatic volume (the settings window has them;
    /// the lobby and the in-call device switcher keep to what a call needs).
    pub(super) fn audio_pickers(&mut self, ui: &mut egui::Ui, processing: bool) {
        let mut options = vec![(
            MicrophoneChoice::Device(DEFAULT_DEVICE.to_owned()),
            default_label(&self.devices.microphones, "microphone"),
        )];
        options.extend(
            self.devices
                .microphones
                .iter()
                .map(|m| (MicrophoneChoice::Device(m.id.clone()), m.name.clone())),
        );
        if let MicrophoneChoice::Device(id) = &self.settings.microphone
            && id != DEFAULT_DEVICE
            && !self.devices.microphones.iter().any(|m| &m.id == id)
        {
            options.push((
                self.settings.microphone.clone(),
                format!("{id} (not connected)"),
            ));
        }
        options.push((
            MicrophoneChoice::TestTone,
            "Test tone (test source)".to_owned(),
        ));
        options.push((MicrophoneChoice::Off, "No microphone".to_owned()));
        if picker(ui, "Microphone", &mut self.settings.microphone, &options) {
            self.sources_changed();
        }
        let off = self.settings.microphone == MicrophoneChoice::Off;
        // Muted in a call: the others hear nothing, so the meter shows nothing either.
        let muted = matches!(&self.screen, Screen::InCall(call) if !call.mic_on);
        let level = if off || muted {
            0.0
        } else {
            ((self.mic_level_db + 60.0) / 60.0).clamp(0.0, 1.0)
        };
        ui.add(
            egui::ProgressBar::new(level)
                .desired_width(ui.available_width().min(320.0))
                .text(if off {
                    "microphone off".to_owned()
                } else if muted {
                    "muted: the others hear nothing".to_owned()
                } else {
                    format!("level {:.0} dB", self.mic_level_db.max(-99.0))
                }),
        );
        self.device_note_ui(ui, DeviceKind::Microphone);
        if processing && matches!(self.settings.microphone, MicrophoneChoice::Device(_)) {
            let p = &mut self.settings.processing;
            let mut changed = false;
            ui.horizontal_wrapped(|ui| {
                changed |= ui
                    .checkbox(&mut p.echo_cancellation, "Echo cancellation")
                    .on_hover_text("Removes the others' voices picked up from your speakers")
                    .changed();
                changed |= ui
                    .checkbox(&mut p.noise_suppression, "Noise suppression")
                    .on_hover_text("Reduces fans, hum and other steady background noise")
                    .changed();
                changed |= ui
                    .checkbox(&mut p.auto_gain, "Automatic volume")
                    .on_hover_text("Keeps your voice at an even level")
                    .changed();
            });
            if changed {
                self.processing_changed();
            }
        }
        ui.add_space(8.0);
        let mut options = vec![(
            SpeakerChoice::Device(DEFAULT_DEVICE.to_owned()),
            default_label(&self.devices.speakers, "speaker"),
        )];
        options.extend(
            self.devices
                .speakers
                .iter()
                .map(|d| (SpeakerChoice::Device(d.id.clone()), d.name.clone())),
        );
        if let SpeakerChoice::Device(id) = &self.settings.speaker
            && id != DEFAULT_DEVICE
            && !self.devices.speakers.iter().any(|d| &d.id == id)
        {
            options.push((
                self.settings.speaker.clone(),
                format!("{id} (not connected)"),
            ));
        }
        options.push((SpeakerChoice::Off, "No sound".to_owned()));
        if picker(ui, "Speaker", &mut self.settings.speaker, &options) {
            self.speaker_changed();
        }
        self.device_note_ui(ui, DeviceKind::Speaker);
    }

    /// The latest problem with a kind of device, in the warning colour.
    fn device_note_ui(&self, ui: &mut egui::Ui, kind: DeviceKind) {
        if let Some(note) = self.device_notes.iter().rev().find(|n| n.kind == kind) {
            ui.colored_label(ui.visuals().warn_fg_color, &note.message);
        }
    }

    /// Our own picture, aspect-correct, or a placeholder.
    pub(super) fn preview_ui(&self, ui: &mut egui::Ui, max: egui::Vec2) {
        match self.videos.tile(&Source::Preview) {
            Some(tile) => {
                let size = fit(tile.size, max);
                ui.add(egui::Image::new((tile.texture(), size)).corner_radius(6.0));
            }
            None => {
                let camera = self.has_camera();
                let (rect, response) = ui.allocate_exact_size(max, egui::Sense::hover());
                let text = if camera {
                    "Starting camera…"
                } else {
                    "No camera: others see your initials"
                };
                response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, text));
                let painter = ui.painter();
                painter.rect_filled(rect, 6.0, ui.visuals().extreme_bg_color);
                let weak = ui.visuals().weak_text_color();
                if camera {
                    painter.text(
                        rect.center(),
                        egui::Align2::CENTER_CENTER,
                        text,
                        egui::FontId::proportional(14.0),
                        weak,
                    );
                } else {
                    // The avatar tile: initials in a circle, as the others see us.
                    let radius = (rect.height() * 0.28).min(rect.width() * 0.2);
                    let centre = rect.center() - egui::vec2(0.0, rect.height() * 0.08);
                    painter.circle_filled(centre, radius, ui.visuals().selection.bg_fill);
                    painter.text(
                        centre,
                        egui::Align2::CENTER_CENTER,
                        initials(&self.settings.name),
                        egui::FontId::proportional(radius * 0.9),
                        egui::Color32::WHITE,
                    );
                    painter.text(
                        egui::pos2(rect.center().x, rect.bottom() - 12.0),
                        egui::Align2::CENTER_BOTTOM,
                        if self.settings.camera == CameraChoice::Off {
                            "Camera off"
                        } else {
                            "No camera found"
                        },
                        egui::FontId::proportional(12.0),
                        weak,
                    );
                }
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
fn picker<T: PartialEq + Clone>(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut T,
    options: &[(T, String)],
) -> bool {
    let heading = ui.strong(label);
    let current = options
        .iter()
        .find(|(v, _)| v == value)
        .map_or("", |(_, name)| name.as_str());
    let mut changed = false;
    let combo = egui::ComboBox::from_id_salt(label)
        .selected_text(current)
        .width(ui.available_width().min(320.0))
        .show_ui(ui, |ui| {
            for (option, name) in options {
                changed |= ui
                    .selectable_value(value, option.clone(), name.as_str())
                    .changed();
            }
        });
    combo.response.labelled_by(heading.id);
    changed
}

/// Up to two initials of a display name ("?" for none).
pub(super) fn initials(name: &str) -> String {
    let letters: String = name
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .take(2)
        .flat_map(char::to_uppercase)
        .collect();
    if letters.is_empty() {
        "?".to_owned()
    } else {
        letters
    }
}

/// "System default (NAME)" for the default device of a kind, or a plain label without one.
fn default_label(devices: &[DeviceInfo], kind: &str) -> String {
    match devices.iter().find(|d| d.is_default) {
        Some(d) => format!("System default ({})", d.name),
        None if devices.is_empty() => format!("System default (no {kind} found)"),
        None => "System default".to_owned(),
    }
}

/// The largest size with `size`'s aspect ratio that fits in `max`.
pub(super) fn fit(size: [usize; 2], max: egui::Vec2) -> egui::Vec2 {
    let (w, h) = (size[0].max(1) as f32, size[1].max(1) as f32);
    let scale = (max.x / w).min(max.y / h);
    egui::vec2(w * scale, h * scale)
}
