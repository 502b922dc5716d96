//! The participants side panel: everyone in the call with their microphone and camera, how
//! good the connection to them is, and the security code of that connection.
//!
//! Contract: draws from the current [`Screen::InCall`] call only (reads, never sends); it shares
//! the chat panel's place and width rules (one side panel at a time, decided in `call_view`).

use eframe::egui::{self, Color32};

use super::app::{ConfabApp, Remote, Screen, display_name};
use super::call_panels::side_panel;
use super::call_view::quality;
use super::style::{good_text, warn_text};
use confab_engine::LinkState;

impl ConfabApp {
    /// The participants panel (see the module docs).
    pub(super) fn people_panel(&mut self, ui: &mut egui::Ui) {
        let Screen::InCall(call) = &self.screen else {
            return;
        };
        let me = display_name(&self.settings.name);
        let mic = call.mic_on && self.has_microphone();
        side_panel("people", ui).show(ui, |ui| {
            ui.heading(format!("People ({})", call.order.len() + 1));
            ui.separator();
            egui::ScrollArea::vertical()
                .auto_shrink([false, false])
                .show(ui, |ui| {
                    person(ui, &format!("{me} (you)"), mic, call.camera_on, None);
                    for id in &call.order {
                        if let Some(r) = call.remotes.get(id) {
                            ui.separator();
                            person(ui, &r.name, r.mic, r.camera, Some(r));
                        }
                    }
                    ui.add_space(8.0);
                    ui.label(
                        "Read each security code with that person: if yours and theirs \
                             match, nobody is listening in.",
                    );
                });
        });
    }
}

/// One row: name, microphone, camera; for a remote also the connection and its code.
fn person(ui: &mut egui::Ui, name: &str, mic: bool, camera: bool, remote: Option<&Remote>) {
    let off = ui.visuals().error_fg_color;
    ui.strong(name);
    ui.horizontal_wrapped(|ui| {
        if mic {
            ui.label("Microphone on");
        } else {
            ui.colored_label(off, "Muted");
        }
        ui.label("·");
        if camera {
            ui.label("Camera on");
        } else {
            ui.colored_label(off, "Camera off");
        }
    });
    let Some(r) = remote else { return };
    let (text, color) = connection(r, ui.visuals());
    ui.horizontal_wrapped(|ui| {
        ui.label("Connection:");
        ui.colored_label(color, text);
    });
    match &r.code {
        Some(code) => {
            ui.horizontal_wrapped(|ui| {
                ui.label("Security code:");
                ui.strong(code);
            });
        }
        None => {
            ui.label("Security code: not yet (connecting)");
        }
    }
}

/// The connection to `r` in words, with its colour (readable on this theme's panel).
fn connection(r: &Remote, v: &egui::Visuals) -> (&'static str, Color32) {
    let (good, warn, bad) = (good_text(v), warn_text(v), v.error_fg_color);
    match (r.link, quality(r)) {
        (LinkState::Connecting, _) => ("connecting…", warn),
        (LinkState::Reconnecting, _) => ("reconnecting…", warn),
        (LinkState::Failed | LinkState::Closed, _) => ("lost", bad),
        (_, 3) => ("good", good),
        (_, 2) => ("fair", warn),
        _ => ("poor", bad),
    }
}
