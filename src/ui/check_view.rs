//! The "Test my call" screen: while the check runs, what the test peer decodes of the camera
//! ("what the others see") and where the check is; then the result, one row per part of the
//! call path, with the figures behind a "Details" toggle.
//!
//! The check ([`crate::call_check::CallCheck`]) uses the app's own engine, so it tests exactly
//! the devices and settings a call would use; while it runs, the engine's call events go to the
//! check instead of the call screens (see `ConfabApp::pump`).

use std::time::Duration;

use eframe::egui::{self, RichText};

use super::app::{ConfabApp, Screen};
use super::video::Source;
use crate::call_check::report::{CheckReport, Sources, Status};
use crate::call_check::{CallCheck, CheckOptions, CheckTarget, Stage};
use confab_engine::{AudioInput, AudioOutput, EngineCommand, VideoInput};

/// Seconds of media a check measures once connected.
pub const CHECK_SECONDS: f64 = 8.0;

impl ConfabApp {
    /// Starts "Test my call" through the server in the lobby's address field, or on this
    /// computer when it is empty.
    pub(super) fn start_check(&mut self) {
        self.lobby_error = None;
        let address = self.settings.address.trim().to_owned();
        let target = if address.is_empty() {
            CheckTarget::ThisComputer
        } else {
            match crate::address::parse_join_address(&address) {
                Ok(t) => CheckTarget::Server {
                    address,
                    url: t.url,
                },
                Err(e) => {
                    self.lobby_error = Some(format!("Cannot test through that address: {e}"));
                    return;
                }
            }
        };
        let options = CheckOptions {
            target,
            seconds: CHECK_SECONDS,
            bind_addrs: self.options.engine.bind_addrs.clone(),
            sources: self.check_sources(),
        };
        let ctx = self.repaint.clone();
        match CallCheck::start(options, ctx, std::time::Instant::now()) {
            Ok((check, join)) => {
                let _ = self
                    .engine
                    .send(EngineCommand::SetName(super::app::display_name(
                        &self.settings.name,
                    )));
                let _ = self.engine.send(join);
                self.videos.remove(&Source::CheckEcho);
                self.check_details_open = false;
                self.screen = Screen::Check(Box::new(check));
            }
            Err(e) => self.lobby_error = Some(e.to_string()),
        }
    }

    /// What the engine uses, named for the result's sentences.
    fn check_sources(&self) -> Sources {
        let name = crate::call_check::device_name;
        let camera = match self.settings.video_input(&self.devices) {
            VideoInput::None => None,
            VideoInput::Synthetic => Some("the test pattern".to_owned()),
            VideoInput::Y4mFile(p) => Some(p.display().to_string()),
            VideoInput::Camera(id) => Some(name(&self.devices.cameras, &id, "camera")),
        };
        let (microphone, test_tone) = match self.settings.audio_input() {
            AudioInput::None => (None, false),
            AudioInput::Synthetic | AudioInput::TestVoice => {
                (Some("the test tone".to_owned()), true)
            }
            AudioInput::WavFile(p) => (Some(p.display().to_string()), true),
            AudioInput::Microphone(id) => (
                Some(name(&self.devices.microphones, &id, "microphone")),
                false,
            ),
        };
        let speaker = match self.settings.audio_output() {
            AudioOutput::None => None,
            AudioOutput::Speaker(id) => Some(name(&self.devices.speakers, &id, "speaker")),
        };
        Sources {
            camera,
            microphone,
            test_tone,
            speaker,
            max_video_kbps: self.video_settings().max_kbps,
        }
    }

    /// The check screen.
    pub(super) fn check_ui(&mut self, ui: &mut egui::Ui) {
        let Screen::Check(check) = &self.screen else {
            return;
        };
        let stage = check.stage();
        let report = check.report().cloned();
        let mut action = None;
        egui::CentralPanel::default().show(ui, |ui| {
            ui.add_space(8.0);
            ui.heading("Test my call");
            ui.label(match &self.check_target() {
                Some(address) => format!(
                    "A short call from this computer to a test peer through {address}: camera, \
                     microphone, speaker and network, as a real call uses them."
                ),
                None => "A short call from this computer to a test peer, on this computer \
                         only: camera, microphone and speaker, as a real call uses them."
                    .to_owned(),
            });
            ui.add_space(10.0);
            ui.columns(2, |cols| {
                self.check_picture(&mut cols[0]);
                action = egui::ScrollArea::vertical()
                    .id_salt("check-result")
                    .show(&mut cols[1], |ui| match &report {
                        None => check_progress(ui, stage),
                        Some(r) => self.check_result(ui, r),
                    })
                    .inner;
            });
        });
        if report.is_none() {
            // The stage's timers and the progress bar move without events.
            ui.ctx().request_repaint_after(Duration::from_millis(100));
        }
        match action {
            Some(CheckAction::Cancel | CheckAction::Lobby) => {
                self.leave_check();
                self.back_to_lobby();
            }
            Some(CheckAction::Again) => {
                self.leave_check();
                self.start_check();
            }
            None => {}
        }
    }

    /// Leaves the check screen for the lobby: the check stops (if it still runs), its call is
    /// left, and what that call still sends is not taken for a new call's.
    fn leave_check(&mut self) {
        if let Screen::Check(mut check) = std::mem::replace(&mut self.screen, Screen::Lobby) {
            for command in check.cancel() {
                let _ = self.engine.send(command);
            }
            self.stale_check_call = check.call_open();
        }
    }

    /// The address the check runs through, if not this computer.
    fn check_target(&self) -> Option<String> {
        let address = self.settings.address.trim();
        (!address.is_empty()).then(|| address.to_owned())
    }

    /// What the test peer decoded of our camera.
    fn check_picture(&self, ui: &mut egui::Ui) {
        ui.strong("What the others see");
        let max = egui::vec2(ui.available_width().min(420.0), 236.0);
        match self.videos.tile(&Source::CheckEcho) {
            Some(tile) => {
                let size = super::lobby::fit(tile.size, max);
                ui.add(egui::Image::new((tile.texture(), size)).corner_radius(6.0))
                    .on_hover_text("Your camera, as the test peer decoded it after the network");
            }
            None => {
                let (rect, response) = ui.allocate_exact_size(max, egui::Sense::hover());
                let text = if self.has_camera() {
                    "Waiting for the picture…"
                } else {
                    "No camera: the others see your initials"
                };
                response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, text));
                ui.painter()
                    .rect_filled(rect, 6.0, ui.visuals().extreme_bg_color);
                ui.painter().text(
                    rect.center(),
                    egui::Align2::CENTER_CENTER,
                    text,
                    egui::TextStyle::Body.resolve(ui.style()),
                    ui.visuals().weak_text_color(),
                );
            }
        }
    }

    /// The result rows, the details toggle and the buttons.
    fn check_result(&mut self, ui: &mut egui::Ui, report: &CheckReport) -> Option<CheckAction> {
        let colour = status_colour(ui.visuals(), report.status);
        ui.label(RichText::new(&report.summary).heading().color(colour));
        ui.add_space(6.0);
        for item in &report.items {
            ui.horizontal_top(|ui| {
                let (mark, what) = status_mark(item.status);
                ui.label(
                    RichText::new(mark)
                        .strong()
                        .color(status_colour(ui.visuals(), item.status)),
                )
                .on_hover_text(what);
                ui.vertical(|ui| {
                    ui.strong(item.part.title());
                    ui.label(&item.text);
                });
            });
            ui.add_space(4.0);
        }
        let mut action = None;
        ui.horizontal(|ui| {
            if ui.button("Test again").clicked() {
                action = Some(CheckAction::Again);
            }
            if ui.button("Back to the lobby").clicked() {
                action = Some(CheckAction::Lobby);
            }
        });
        ui.add_space(6.0);
        let details = egui::CollapsingHeader::new("Details")
            .open(Some(self.check_details_open))
            .show(ui, |ui| {
                egui::Grid::new("check-details")
                    .num_columns(2)
                    .striped(true)
                    .show(ui, |ui| {
                        for (label, value) in report.details() {
                            ui.label(label);
                            ui.monospace(value);
                            ui.end_row();
                        }
                    });
            });
        if details.header_response.clicked() {
            self.check_details_open = !self.check_details_open;
        }
        action
    }
}

/// What a button on the check screen asked for.
enum CheckAction {
    Cancel,
    Again,
    Lobby,
}

/// Where a running check is, and its Cancel button.
fn check_progress(ui: &mut egui::Ui, stage: Stage) -> Option<CheckAction> {
    let (text, fraction) = match stage {
        Stage::Joining => ("Reaching the server…", None),
        Stage::Connecting => ("Calling the test peer…", None),
        Stage::Measuring(f) => ("In the test call: say a few words.", Some(f)),
        Stage::Done => ("Done.", Some(1.0)),
    };
    ui.horizontal(|ui| {
        ui.spinner();
        ui.strong(text);
    });
    if let Some(f) = fraction {
        ui.add(egui::ProgressBar::new(f).show_percentage());
        ui.label(
            "The beeps you hear are the test peer: they show whether your speaker works and \
             whether your microphone sends them back as an echo.",
        );
    }
    ui.add_space(8.0);
    ui.button("Cancel").clicked().then_some(CheckAction::Cancel)
}

/// The mark of a status and what it means (its tooltip).
fn status_mark(status: Status) -> (&'static str, &'static str) {
    match status {
        Status::Good => ("✔", "works"),
        Status::Warning => ("⚠", "works, with a note"),
        Status::Problem => ("✖", "does not work"),
        Status::Skipped => ("–", "not tested"),
    }
}

fn status_colour(visuals: &egui::Visuals, status: Status) -> egui::Color32 {
    match status {
        Status::Good => super::style::good_text(visuals),
        Status::Warning => super::style::warn_text(visuals),
        Status::Problem => visuals.error_fg_color,
        Status::Skipped => visuals.weak_text_color(),
    }
}
