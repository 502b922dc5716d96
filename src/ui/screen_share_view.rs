//! Screen sharing in the call view: the picker (which screen), the "You are sharing" banner
//! with a small preview and Stop, and the presenter layout (the shared screen large, everyone's
//! camera in a strip below; a double click on the screen switches between fitted and 1:1).
//!
//! Contract: drawing and clicks only. What is shared goes to the engine as
//! [`EngineCommand::ShareScreen`]; whether it shares, and who presents, comes back as engine
//! events (`engine_events`). The monitor and window lists are asked of the X server when the
//! picker opens, never while drawing.

use eframe::egui::{self, Align2, Color32, FontId};
use signaling_client::ParticipantId;

use super::app::{ConfabApp, Screen};
use super::lobby::fit;
use super::video::Source;
use confab_engine::{EngineCommand, ScreenInput};

/// One screen or window the picker offers.
pub struct ShareChoice {
    /// What the button says, e.g. `Screen 1 (DP-1, 1920x1080, main)` or `Notes (800x600)`.
    pub label: String,
    /// What sharing it asks of the engine.
    pub input: ScreenInput,
}

/// What the picker offers: the desktop's own dialog (Wayland), or the monitors and the windows
/// found, or why there are none.
pub struct ScreenPicker {
    /// On Wayland (with the portal built in): the one choice, the desktop's dialog, which lists
    /// screens and windows itself. `None` elsewhere.
    pub portal: Option<ShareChoice>,
    /// The monitors of `$DISPLAY`, or the sentence saying why they could not be listed.
    pub monitors: Result<Vec<ShareChoice>, String>,
    /// Its shown top-level windows (empty when none could be listed).
    pub windows: Vec<ShareChoice>,
}

impl ScreenPicker {
    /// Lists the monitors and windows now (on Wayland: offers the desktop's dialog instead, as
    /// X11 capture there would see only Xwayland's windows).
    pub fn open() -> Self {
        if let Some(portal) = portal_choice() {
            return Self {
                portal: Some(portal),
                monitors: Ok(Vec::new()),
                windows: Vec::new(),
            };
        }
        let monitors = list_monitors();
        let windows = if monitors.is_ok() {
            list_windows()
        } else {
            Vec::new()
        };
        Self {
            portal: None,
            monitors,
            windows,
        }
    }
}

/// The desktop's dialog, on a Wayland session with the portal built in.
#[cfg(target_os = "linux")]
fn portal_choice() -> Option<ShareChoice> {
    use confab_engine::devices::screen::{PORTAL_BUILT, wayland_session};
    (PORTAL_BUILT && wayland_session()).then(|| ShareChoice {
        label: "Choose a screen or window…".to_owned(),
        input: ScreenInput::Portal,
    })
}

#[cfg(not(target_os = "linux"))]
fn portal_choice() -> Option<ShareChoice> {
    None
}

#[cfg(target_os = "linux")]
fn list_monitors() -> Result<Vec<ShareChoice>, String> {
    let monitors =
        confab_engine::devices::screen::list_monitors(None).map_err(|e| e.to_string())?;
    Ok(monitors
        .iter()
        .enumerate()
        .map(|(index, m)| {
            let main = if m.primary { ", main" } else { "" };
            ShareChoice {
                label: format!(
                    "Screen {} ({}, {}x{}{main})",
                    index + 1,
                    m.name,
                    m.width,
                    m.height
                ),
                input: ScreenInput::X11 {
                    display: None,
                    monitor: Some(index),
                },
            }
        })
        .collect())
}

/// The windows to offer; a failure here leaves the monitors to choose from (logged).
#[cfg(target_os = "linux")]
fn list_windows() -> Vec<ShareChoice> {
    match confab_engine::devices::screen::list_windows(None) {
        Ok(windows) => windows
            .into_iter()
            .map(|w| ShareChoice {
                label: format!("{} ({}x{})", w.title, w.width, w.height),
                input: ScreenInput::X11Window {
                    display: None,
                    window: w.id,
                },
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "could not list the windows to share");
            Vec::new()
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn list_monitors() -> Result<Vec<ShareChoice>, String> {
    Err("sharing a screen from this system is not built yet (Linux with X11 only)".to_owned())
}

#[cfg(not(target_os = "linux"))]
fn list_windows() -> Vec<ShareChoice> {
    Vec::new()
}

/// The fill of the "You are sharing" banner.
const SHARING_RED: Color32 = Color32::from_rgb(170, 40, 40);

impl ConfabApp {
    /// The control bar's Share screen button: opens the picker, or stops our share.
    pub(super) fn share_screen_clicked(&mut self) {
        let sharing = matches!(&self.screen, Screen::InCall(c) if c.sharing.is_some());
        if sharing {
            self.stop_sharing();
        } else {
            self.screen_picker = Some(ScreenPicker::open());
        }
    }

    /// Stops our screen share.
    pub(super) fn stop_sharing(&mut self) {
        let _ = self.engine.send(EngineCommand::ShareScreen(None));
    }

    fn share(&mut self, input: ScreenInput) {
        self.screen_picker = None;
        let _ = self.engine.send(EngineCommand::ShareScreen(Some(input)));
    }

    /// The picker window, while open: one button per monitor, one per window, and the test
    /// desktop (to try sharing without showing anything real).
    pub(super) fn screen_picker_ui(&mut self, ctx: &egui::Context, area: egui::Rect) {
        let Some(picker) = &self.screen_picker else {
            return;
        };
        let mut choice = None;
        let mut open = true;
        let mut window_open = true;
        let someone_presents = matches!(&self.screen, Screen::InCall(c) if c.presenter.is_some());
        egui::Window::new("Share your screen")
            .open(&mut window_open)
            .collapsible(false)
            .resizable(false)
            .pivot(Align2::CENTER_CENTER)
            .default_pos(area.center())
            .constrain_to(area)
            .show(ctx, |ui| {
                ui.set_max_width(380.0);
                if someone_presents {
                    ui.label("Someone is sharing now: your screen will replace theirs.");
                    ui.add_space(6.0);
                }
                if let Some(portal) = &picker.portal
                    && ui
                        .button(&portal.label)
                        .on_hover_text(
                            "Your desktop asks which screen or window to share, and shows \
                             that you are sharing until you stop",
                        )
                        .clicked()
                {
                    choice = Some(portal.input.clone());
                }
                match &picker.monitors {
                    Ok(monitors) => {
                        for m in monitors {
                            if ui.button(&m.label).clicked() {
                                choice = Some(m.input.clone());
                            }
                        }
                    }
                    Err(why) => {
                        ui.label(format!("No screen can be shared here: {why}"));
                    }
                }
                if !picker.windows.is_empty() {
                    ui.add_space(6.0);
                    ui.label("A window:");
                    egui::ScrollArea::vertical()
                        .max_height(180.0)
                        .show(ui, |ui| {
                            for w in &picker.windows {
                                if ui.button(&w.label).clicked() {
                                    choice = Some(w.input.clone());
                                }
                            }
                        });
                }
                ui.add_space(6.0);
                if ui
                    .button("Test desktop")
                    .on_hover_text(
                        "A made-up desktop (text, lines, a moving pointer): check that sharing \
                         works without showing your screen",
                    )
                    .clicked()
                {
                    choice = Some(ScreenInput::Synthetic);
                }
                ui.add_space(4.0);
                if ui.button("Cancel").clicked() {
                    open = false;
                }
            });
        if !open || !window_open {
            self.screen_picker = None;
        }
        if let Some(input) = choice {
            self.share(input);
        }
    }

    /// While we share: a red banner across the top of the tiles saying so, a small live preview
    /// of what is shared, and Stop.
    pub(super) fn sharing_banner(&mut self, ui: &mut egui::Ui) {
        let Screen::InCall(call) = &self.screen else {
            return;
        };
        let Some(source) = call.sharing.clone() else {
            return;
        };
        let mut stop = false;
        egui::Frame::new()
            .fill(SHARING_RED)
            .corner_radius(8.0)
            .inner_margin(egui::Margin::symmetric(10, 6))
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    if let Some(tile) = self.videos.tile(&Source::MyScreen) {
                        let size = fit(tile.size, egui::vec2(96.0, 54.0));
                        ui.add(egui::Image::new((tile.texture(), size)).corner_radius(4.0))
                            .widget_info(|| {
                                egui::WidgetInfo::labeled(
                                    egui::Role::Image,
                                    true,
                                    "Preview of your shared screen",
                                )
                            });
                    }
                    ui.label(
                        egui::RichText::new(format!("You are sharing {source}"))
                            .color(Color32::WHITE)
                            .strong(),
                    );
                    ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                        stop = ui.button("Stop sharing").clicked();
                    });
                });
            });
        ui.add_space(6.0);
        if stop {
            self.stop_sharing();
        }
    }

    /// The presenter layout: `presenter`'s screen large (fitted, or 1:1 in a scroll area after
    /// a double click), every participant's camera in a strip below. Returns a click on a
    /// camera tile, as the other layouts do.
    pub(super) fn presenter_view(
        &mut self,
        ui: &mut egui::Ui,
        presenter: &ParticipantId,
    ) -> Option<(ParticipantId, bool)> {
        let Screen::InCall(call) = &self.screen else {
            return None;
        };
        let area = ui.available_rect_before_wrap();
        let gap = 6.0;
        let strip_h = (area.height() * 0.18).clamp(70.0, 130.0);
        let big =
            egui::Rect::from_min_max(area.min, egui::pos2(area.max.x, area.max.y - strip_h - gap));
        let name = call
            .remotes
            .get(presenter)
            .map_or_else(String::new, |r| r.name.clone());
        let actual = call.screen_actual_size;
        ui.painter().rect_filled(big, 8.0, Color32::from_gray(16));
        match self.videos.tile(&Source::RemoteScreen(presenter.clone())) {
            Some(tile) if actual => {
                let size = egui::vec2(tile.size[0] as f32, tile.size[1] as f32);
                let texture = tile.texture();
                let mut child = ui.new_child(egui::UiBuilder::new().max_rect(big));
                egui::ScrollArea::both()
                    .id_salt("presenter-actual")
                    .show(&mut child, |ui| {
                        ui.add(egui::Image::new((texture, size)));
                    });
            }
            Some(tile) => {
                let size = fit(tile.size, big.size());
                let rect = egui::Rect::from_center_size(big.center(), size);
                egui::Image::new((tile.texture(), size)).paint_at(ui, rect);
            }
            None => {
                ui.painter().text(
                    big.center(),
                    Align2::CENTER_CENTER,
                    format!("Waiting for {name}'s screen…"),
                    FontId::proportional(18.0),
                    Color32::LIGHT_GRAY,
                );
            }
        }
        // The screen's area takes the double click (fitted ↔ 1:1); its label says whose screen
        // it is and how it is shown (screen readers, the UI tests). Scrolling in 1:1 is the
        // wheel's.
        let label = format!(
            "{name}'s screen{}",
            if actual { ", actual size" } else { "" }
        );
        let response = ui
            .interact(
                big,
                ui.make_persistent_id("presenter"),
                egui::Sense::click(),
            )
            .on_hover_text(if actual {
                "Double-click to fit the screen to the window"
            } else {
                "Double-click for actual size (1:1)"
            });
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));
        let toggled = response.double_clicked();
        let label_rect = egui::Rect::from_min_size(
            big.left_top() + egui::vec2(8.0, 8.0),
            egui::vec2(big.width().min(320.0), 24.0),
        );
        ui.painter()
            .rect_filled(label_rect, 4.0, Color32::from_black_alpha(160));
        ui.scope_builder(
            egui::UiBuilder::new()
                .max_rect(label_rect.shrink2(egui::vec2(6.0, 0.0)))
                .layout(egui::Layout::left_to_right(egui::Align::Center)),
            |ui| {
                ui.add(
                    egui::Label::new(
                        egui::RichText::new(format!("{name} is presenting"))
                            .color(Color32::WHITE)
                            .size(14.0),
                    )
                    .truncate(),
                );
            },
        );
        // Everyone's camera in the strip, the presenter's first.
        let mut ids: Vec<&ParticipantId> = vec![presenter];
        ids.extend(call.order.iter().filter(|id| *id != presenter));
        let clicked = self.camera_strip(ui, area, strip_h, gap, &ids);
        ui.advance_cursor_after_rect(area);
        if toggled && let Screen::InCall(call) = &mut self.screen {
            call.screen_actual_size = !call.screen_actual_size;
        }
        clicked
    }
}
