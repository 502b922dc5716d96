//! The call view: header (room, timer, security code, share address), the grid of remote tiles,
//! our picture-in-picture, the controls with keyboard shortcuts, toasts, and the ended screen.
//! The chat panel and the statistics window it opens are drawn by the sibling `call_panels`.

use std::time::{Duration, Instant};

use eframe::egui::{self, Align2, Color32, FontId, Key, KeyboardShortcut, Modifiers};
use signaling_client::ParticipantId;

use super::app::{ConfabApp, Remote, Screen, TileLayout, display_name};
use super::lobby::fit;
use super::video::Source;
use confab_engine::LinkState;

const MUTE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::M);
const CAMERA: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::V);
const CHAT: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::C);
const STATS: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::S);
const PEOPLE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::P);
const SHARE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::D);
const HANG_UP_W: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::W);
const HANG_UP_Q: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::Q);
const FULL_SCREEN: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::F11);

/// Grid shape for `n` tiles: 1, 2, 3–4, 5–6 (and beyond, three columns).
pub(super) fn grid_shape(n: usize) -> (usize, usize) {
    match n {
        0 | 1 => (1, 1),
        2 => (2, 1),
        3 | 4 => (2, 2),
        5 | 6 => (3, 2),
        n => (3, n.div_ceil(3)),
    }
}

/// How a control-bar button looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ControlLook {
    /// Nothing special.
    Normal,
    /// Its panel or view is open.
    Selected,
    /// A device that is off, or Hang up: red.
    Off,
}

/// [`ControlLook::Off`] for a device that is off.
fn off(is_off: bool) -> ControlLook {
    if is_off {
        ControlLook::Off
    } else {
        ControlLook::Normal
    }
}

/// [`ControlLook::Selected`] for an open panel or view.
fn selected(is_open: bool) -> ControlLook {
    if is_open {
        ControlLook::Selected
    } else {
        ControlLook::Normal
    }
}

/// How many buttons the control bar has (it is centred from their sizes).
const CONTROLS: f32 = 10.0;
/// The size of one control-bar button (icon above its label) when the window is wide enough.
const CONTROL_SIZE: egui::Vec2 = egui::vec2(84.0, 52.0);
/// The space between control-bar buttons.
const CONTROL_GAP: f32 = 6.0;

/// One control-bar button: an icon above its label, red when off, tinted when selected. Its
/// accessible label is the label alone (screen readers, the UI tests).
fn control(
    ui: &mut egui::Ui,
    size: egui::Vec2,
    icon: &str,
    label: &str,
    look: ControlLook,
) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(size, egui::Sense::click());
    let visuals = ui.visuals();
    let (fill, text) = match look {
        ControlLook::Off => (OFF_RED, Color32::WHITE),
        ControlLook::Selected => (visuals.selection.bg_fill, visuals.selection.stroke.color),
        ControlLook::Normal => (
            visuals.widgets.inactive.weak_bg_fill,
            visuals.widgets.inactive.fg_stroke.color,
        ),
    };
    let fill = if response.hovered() {
        fill.gamma_multiply(1.25)
    } else {
        fill
    };
    let painter = ui.painter();
    painter.rect_filled(rect, 10.0, fill);
    painter.text(
        rect.center_top() + egui::vec2(0.0, 17.0),
        Align2::CENTER_CENTER,
        icon,
        FontId::proportional(20.0),
        text,
    );
    painter.text(
        rect.center_bottom() - egui::vec2(0.0, 11.0),
        Align2::CENTER_CENTER,
        label,
        FontId::proportional(12.5),
        text,
    );
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, label));
    response
}

/// Full screen on or off (F11, the control, a double click on a tile).
fn toggle_full_screen(ctx: &egui::Context) {
    let now = ctx.input(|i| i.viewport().fullscreen.unwrap_or(false));
    ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(!now));
}

/// The frame of a tile whose participant is talking.
const SPEAKING_GREEN: Color32 = Color32::from_rgb(60, 200, 90);

/// The fill of a microphone or camera that is off, and of Hang up.
const OFF_RED: Color32 = Color32::from_rgb(200, 50, 50);

/// Connection quality from RTT and loss: 3 good, 2 fair, 1 poor, 0 unknown/down.
pub(super) fn quality(remote: &Remote) -> u8 {
    if remote.link != LinkState::Connected {
        return 0;
    }
    let Some(s) = &remote.stats else { return 3 };
    let rtt = s.rtt_ms.unwrap_or(0.0);
    let fps_ok = s.fps_in >= 10.0 || !remote.camera;
    match (rtt, fps_ok) {
        (r, true) if r < 150.0 => 3,
        (r, _) if r < 400.0 => 2,
        _ => 1,
    }
}

impl ConfabApp {
    pub(super) fn call_ui(&mut self, ui: &mut egui::Ui) {
        self.call_shortcuts(ui.ctx());
        if !matches!(self.screen, Screen::InCall(_)) {
            return;
        }
        self.call_header(ui);
        self.call_controls(ui);
        if self.chat_open {
            self.chat_panel(ui);
        } else if self.people_open {
            self.people_panel(ui);
        }
        let grid = egui::CentralPanel::default()
            .show(ui, |ui| {
                self.sharing_banner(ui);
                self.tiles(ui);
                ui.max_rect()
            })
            .inner;
        self.picture_in_picture(ui.ctx(), grid);
        self.screen_picker_ui(ui.ctx(), grid);
        if self.devices_open {
            let mut open = true;
            // Bottom-left of the tiles, above the controls: clear of the header and the codes.
            egui::Window::new("Devices")
                .open(&mut open)
                .resizable(false)
                .collapsible(false)
                .pivot(Align2::LEFT_BOTTOM)
                .default_pos(grid.left_bottom() + egui::vec2(12.0, -12.0))
                .constrain_to(grid)
                .show(ui.ctx(), |ui| {
                    ui.set_max_width(340.0);
                    self.camera_picker(ui);
                    ui.add_space(8.0);
                    self.audio_pickers(ui, false);
                    ui.add_space(4.0);
                    if ui.button("More settings…").clicked() {
                        self.settings_open = true;
                    }
                });
            self.devices_open &= open;
        }
        if self.stats_open {
            self.stats_window(ui.ctx(), grid);
        }
        if self.confirm_leave {
            self.leave_dialog(ui.ctx());
        }
        // The call timer ticks once a second even when no frame arrives.
        ui.ctx().request_repaint_after(Duration::from_secs(1));
    }

    fn call_shortcuts(&mut self, ctx: &egui::Context) {
        let Screen::InCall(call) = &self.screen else {
            return;
        };
        let (mic, cam) = (call.mic_on, call.camera_on);
        // Single-letter shortcuts must not fire while typing (in the chat field or any other
        // text field); Esc leaves the field first.
        let typing = ctx.text_edit_focused();
        let (m, v, c, s, p, d, hang, full) = ctx.input_mut(|i| {
            let letter = |i: &mut egui::InputState, k| !typing && i.consume_shortcut(&k);
            (
                letter(i, MUTE),
                letter(i, CAMERA),
                letter(i, CHAT),
                letter(i, STATS),
                letter(i, PEOPLE),
                letter(i, SHARE),
                i.consume_shortcut(&HANG_UP_W) || i.consume_shortcut(&HANG_UP_Q),
                i.consume_shortcut(&FULL_SCREEN),
            )
        });
        if d {
            self.share_screen_clicked();
        }
        if p {
            self.toggle_people();
        }
        if full {
            toggle_full_screen(ctx);
        }
        if m {
            self.set_mic(!mic);
        }
        if v {
            self.set_camera(!cam);
        }
        if c {
            self.toggle_chat();
        }
        if s {
            self.stats_open = !self.stats_open;
        }
        if hang {
            self.hang_up();
        }
    }

    /// Opens the chat (with the keyboard in its message field, so what is typed next is the
    /// message, not shortcuts) or closes it.
    fn toggle_chat(&mut self) {
        self.chat_open = !self.chat_open;
        self.people_open &= !self.chat_open;
        self.focus_chat_input = self.chat_open;
        if let Screen::InCall(call) = &mut self.screen
            && self.chat_open
        {
            call.unread = 0;
        }
    }

    /// Opens or closes the participants panel (closing the chat: one side panel at a time).
    fn toggle_people(&mut self) {
        self.people_open = !self.people_open;
        self.chat_open &= !self.people_open;
    }

    fn call_header(&mut self, ui: &mut egui::Ui) {
        let Screen::InCall(call) = &self.screen else {
            return;
        };
        let elapsed = call.started.elapsed().as_secs();
        let timer = format!("{:02}:{:02}", elapsed / 60, elapsed % 60);
        let share = self.hosted.as_ref().map(|h| {
            (
                h.share_address(),
                h.share_link(&call.room),
                h.browser_link(&call.room),
            )
        });
        let codes: Vec<(String, String)> = call
            .order
            .iter()
            .filter_map(|id| call.remotes.get(id))
            .filter_map(|r| r.code.clone().map(|c| (r.name.clone(), c)))
            .collect();
        let reconnecting = call.reconnecting;
        let room = call.room.clone();
        egui::Panel::top("call-header").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading(&room);
                ui.label(timer);
                if reconnecting {
                    ui.colored_label(
                        Color32::from_rgb(230, 160, 40),
                        "Reconnecting to the server… the call continues",
                    );
                }
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if let Some((address, link, browser)) = &share {
                        if ui.button("Copy link").on_hover_text(link).clicked() {
                            ui.ctx().copy_text(link.clone());
                            self.toasts.push(super::app::Toast {
                                text: "Link copied".into(),
                                at: std::time::Instant::now(),
                            });
                        }
                        let hint = format!(
                            "{browser}\nFor someone without Confab: opens the call in a web \
                             browser (their camera needs https: confab serve --tls-cert)"
                        );
                        if ui.button("Browser link").on_hover_text(hint).clicked() {
                            ui.ctx().copy_text(browser.clone());
                            self.toasts.push(super::app::Toast {
                                text: "Browser link copied".into(),
                                at: std::time::Instant::now(),
                            });
                        }
                        ui.label(format!("Others join at {address}"));
                    }
                });
            });
            if !codes.is_empty() {
                ui.horizontal_wrapped(|ui| {
                    ui.label(if codes.len() == 1 {
                        "Security code:"
                    } else {
                        "Security codes:"
                    });
                    for (name, code) in &codes {
                        // One code per person: each connection has its own keys.
                        ui.label(egui::RichText::new(format!("{name} {code}")).strong())
                            .on_hover_text(format!("your connection with {name}"));
                    }
                    ui.label(if codes.len() == 1 {
                        "Read it to each other; if it matches, nobody is listening in."
                    } else {
                        "Read each code with that person; if it matches, nobody is listening in."
                    });
                });
            }
        });
    }

    fn call_controls(&mut self, ui: &mut egui::Ui) {
        let Screen::InCall(call) = &self.screen else {
            return;
        };
        let (mic, cam, unread) = (call.mic_on, call.camera_on, call.unread);
        let has_mic = self.has_microphone();
        let mut actions = (false, false, false, false, false);
        egui::Panel::bottom("call-controls").show(ui, |ui| {
            ui.add_space(6.0);
            let ctx = ui.ctx().clone();
            let shortcut = |s: &KeyboardShortcut| ctx.format_shortcut(s);
            let people = match &self.screen {
                Screen::InCall(call) => call.order.len() + 1,
                _ => 1,
            };
            let speaker =
                matches!(&self.screen, Screen::InCall(c) if c.layout == TileLayout::Speaker);
            // Centred; narrower buttons when the window is too narrow for all at full width.
            let gaps = (CONTROLS - 1.0) * CONTROL_GAP;
            let w = ((ui.available_width() - gaps) / CONTROLS).min(CONTROL_SIZE.x);
            let size = egui::vec2(w, CONTROL_SIZE.y);
            let left = ((ui.available_width() - CONTROLS * w - gaps) / 2.0).max(0.0);
            let control = |ui: &mut egui::Ui, icon: &str, label: &str, look| {
                control(ui, size, icon, label, look)
            };
            ui.horizontal(|ui| {
                ui.spacing_mut().item_spacing.x = CONTROL_GAP;
                ui.add_space(left);
                // Off is red, not "selected" blue: a muted microphone must not look active.
                if has_mic {
                    actions.0 = control(ui, "🎤", if mic { "Mute" } else { "Unmute" }, off(!mic))
                        .on_hover_text(if mic {
                            format!("Mute your microphone ({})", shortcut(&MUTE))
                        } else {
                            format!("You are muted: unmute ({})", shortcut(&MUTE))
                        })
                        .clicked();
                } else if control(ui, "🎤", "No mic", ControlLook::Off)
                    .on_hover_text("No microphone is chosen: nobody hears you. Pick one here.")
                    .clicked()
                {
                    self.devices_open = true;
                }
                let camera = if cam { "Camera off" } else { "Camera on" };
                actions.1 = control(ui, "🎥", camera, off(!cam))
                    .on_hover_text(if cam {
                        format!("Turn your camera off ({})", shortcut(&CAMERA))
                    } else {
                        format!("Your camera is off: turn it on ({})", shortcut(&CAMERA))
                    })
                    .clicked();
                let chat_label = if unread > 0 {
                    format!("Chat ({unread})")
                } else {
                    "Chat".to_owned()
                };
                actions.2 = control(ui, "💬", &chat_label, selected(self.chat_open))
                    .on_hover_text(format!("Messages to everyone ({})", shortcut(&CHAT)))
                    .clicked();
                let people_label = format!("People ({people})");
                if control(ui, "👥", &people_label, selected(self.people_open))
                    .on_hover_text(format!(
                        "Who is here, their connection and security code ({})",
                        shortcut(&PEOPLE)
                    ))
                    .clicked()
                {
                    self.toggle_people();
                }
                if control(ui, "🗖", "Speaker view", selected(speaker))
                    .on_hover_text(
                        "The person talking (or the one you pinned) large, the others in a \
                         strip; click again for the grid",
                    )
                    .clicked()
                    && let Screen::InCall(call) = &mut self.screen
                {
                    call.layout = if speaker {
                        TileLayout::Grid
                    } else {
                        TileLayout::Speaker
                    };
                }
                let sharing = matches!(&self.screen, Screen::InCall(c) if c.sharing.is_some());
                let share_label = if sharing {
                    "Stop sharing"
                } else {
                    "Share screen"
                };
                if control(ui, "🖵", share_label, off(sharing))
                    .on_hover_text(if sharing {
                        format!("Stop sharing your screen ({})", shortcut(&SHARE))
                    } else {
                        format!(
                            "Show your screen to everyone; it replaces anyone else's share ({})",
                            shortcut(&SHARE)
                        )
                    })
                    .clicked()
                {
                    self.share_screen_clicked();
                }
                actions.3 = control(ui, "📊", "Stats", selected(self.stats_open))
                    .on_hover_text(format!("Connection statistics ({})", shortcut(&STATS)))
                    .clicked();
                if control(ui, "⚙", "Devices", selected(self.devices_open))
                    .on_hover_text("Switch camera, microphone or speaker")
                    .clicked()
                {
                    self.devices_open = !self.devices_open;
                }
                if control(ui, "⛶", "Full screen", ControlLook::Normal)
                    .on_hover_text(format!("Full screen ({})", shortcut(&FULL_SCREEN)))
                    .clicked()
                {
                    toggle_full_screen(ui.ctx());
                }
                actions.4 = control(ui, "📞", "Hang up", ControlLook::Off)
                    .on_hover_text(format!(
                        "Leave the call ({} or {})",
                        shortcut(&HANG_UP_W),
                        shortcut(&HANG_UP_Q)
                    ))
                    .clicked();
            });
            ui.add_space(4.0);
        });

        if actions.0 {
            self.set_mic(!mic);
        }
        if actions.1 {
            self.set_camera(!cam);
        }
        if actions.2 {
            self.toggle_chat();
        }
        if actions.3 {
            self.stats_open = !self.stats_open;
        }
        if actions.4 {
            self.hang_up();
        }
    }

    /// The tiles in the chosen layout; a click on a tile pins it (again: unpins), a double
    /// click toggles full screen.
    fn tiles(&mut self, ui: &mut egui::Ui) {
        let Screen::InCall(call) = &self.screen else {
            return;
        };
        let presenter = call
            .presenter
            .clone()
            .filter(|p| call.remotes.contains_key(p));
        let clicks = match (presenter, call.layout) {
            (Some(p), _) => self.presenter_view(ui, &p),
            (None, TileLayout::Speaker) if call.order.len() > 1 => self.speaker_view(ui),
            _ => self.tile_grid(ui),
        };
        // A click pins only once it is clearly not the first half of a double click (which
        // is full screen): otherwise the layout would change under the second click.
        let now = Instant::now();
        match clicks {
            Some((_, true)) => {
                self.pending_pin = None;
                toggle_full_screen(ui.ctx());
            }
            Some((id, false)) => self.pending_pin = Some((id, now)),
            None => {}
        }
        let wait =
            Duration::from_secs_f64(ui.ctx().options(|o| o.input_options.max_double_click_delay));
        if let Some((id, at)) = self.pending_pin.take() {
            if now.duration_since(at) < wait {
                self.pending_pin = Some((id, at));
                ui.ctx().request_repaint_after(wait);
            } else if let Screen::InCall(call) = &mut self.screen {
                if call.pinned.as_ref() == Some(&id) {
                    call.pinned = None;
                } else {
                    // Pinning is asking for that person large: the speaker view shows it.
                    call.pinned = Some(id);
                    call.layout = TileLayout::Speaker;
                }
            }
        }
    }

    /// One large tile (see [`super::app::Call::spotlight`]) and the others in a strip below.
    fn speaker_view(&self, ui: &mut egui::Ui) -> Option<(ParticipantId, bool)> {
        let Screen::InCall(call) = &self.screen else {
            return None;
        };
        let big = call.spotlight()?.clone();
        let others: Vec<&ParticipantId> = call.order.iter().filter(|id| **id != big).collect();
        let area = ui.available_rect_before_wrap();
        let gap = 6.0;
        let strip_h = (area.height() * 0.22).clamp(80.0, 160.0);
        let big_rect =
            egui::Rect::from_min_max(area.min, egui::pos2(area.max.x, area.max.y - strip_h - gap));
        let mut clicked = None;
        if let Some(remote) = call.remotes.get(&big) {
            clicked = clicked.or(self.tile(ui, big_rect, &big, remote));
        }
        clicked = clicked.or(self.camera_strip(ui, area, strip_h, gap, &others));
        ui.allocate_rect(area, egui::Sense::hover());
        clicked
    }

    /// The tiles of `ids` in a strip `strip_h` high along the bottom of `area`, centred, each
    /// at most 16:9, `gap` apart (the speaker view's and the presenter layout's strip);
    /// returns a click on one, as [`Self::tile`] does.
    pub(super) fn camera_strip(
        &self,
        ui: &mut egui::Ui,
        area: egui::Rect,
        strip_h: f32,
        gap: f32,
        ids: &[&ParticipantId],
    ) -> Option<(ParticipantId, bool)> {
        let Screen::InCall(call) = &self.screen else {
            return None;
        };
        let n = ids.len().max(1) as f32;
        let w = ((area.width() - gap * (n - 1.0)) / n).min(strip_h * 16.0 / 9.0);
        let strip_w = w * n + gap * (n - 1.0);
        let mut x = area.center().x - strip_w / 2.0;
        let mut clicked = None;
        for id in ids {
            let rect = egui::Rect::from_min_size(
                egui::pos2(x, area.max.y - strip_h),
                egui::vec2(w, strip_h),
            );
            if let Some(remote) = call.remotes.get(*id) {
                clicked = clicked.or(self.tile(ui, rect, id, remote));
            }
            x += w + gap;
        }
        clicked
    }

    fn tile_grid(&self, ui: &mut egui::Ui) -> Option<(ParticipantId, bool)> {
        let Screen::InCall(call) = &self.screen else {
            return None;
        };
        let ids: Vec<&ParticipantId> = call.order.iter().collect();
        if ids.is_empty() {
            ui.centered_and_justified(|ui| {
                let mut text = "Waiting for others to join…".to_owned();
                if let Some(h) = &self.hosted {
                    text.push_str(&format!(
                        "\n\nShare this address: {}\nor the link {}\nor, for a web browser, {}",
                        h.share_address(),
                        h.share_link(&call.room),
                        h.browser_link(&call.room)
                    ));
                }
                ui.label(text);
            });
            return None;
        }
        let (cols, rows) = grid_shape(ids.len());
        let area = ui.available_rect_before_wrap();
        let gap = 6.0;
        let cell = egui::vec2(
            (area.width() - gap * (cols as f32 - 1.0)) / cols as f32,
            (area.height() - gap * (rows as f32 - 1.0)) / rows as f32,
        );
        let mut clicked = None;
        for (i, id) in ids.iter().enumerate() {
            let (c, r) = (i % cols, i / cols);
            let min = area.min + egui::vec2(c as f32 * (cell.x + gap), r as f32 * (cell.y + gap));
            let rect = egui::Rect::from_min_size(min, cell);
            if let Some(remote) = call.remotes.get(*id) {
                clicked = clicked.or(self.tile(ui, rect, id, remote));
            }
        }
        ui.allocate_rect(area, egui::Sense::hover());
        clicked
    }

    /// Draws one participant's tile; returns a click on it (`true` for a double click).
    fn tile(
        &self,
        ui: &mut egui::Ui,
        rect: egui::Rect,
        id: &ParticipantId,
        remote: &Remote,
    ) -> Option<(ParticipantId, bool)> {
        let (speaking, pinned) = match &self.screen {
            Screen::InCall(call) => (call.speaking(id), call.pinned.as_ref() == Some(id)),
            _ => (false, false),
        };
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 8.0, Color32::from_gray(24));
        let source = Source::Remote(id.clone());
        match self.videos.tile(&source).filter(|_| remote.camera) {
            Some(tile) => {
                let size = fit(tile.size, rect.size());
                let image_rect = egui::Rect::from_center_size(rect.center(), size);
                egui::Image::new((tile.texture(), size))
                    .corner_radius(8.0)
                    .paint_at(ui, image_rect);
            }
            None => {
                let initials = super::lobby::initials(&remote.name);
                painter.circle_filled(rect.center(), 36.0, Color32::from_rgb(70, 90, 140));
                painter.text(
                    rect.center(),
                    Align2::CENTER_CENTER,
                    initials,
                    FontId::proportional(28.0),
                    Color32::WHITE,
                );
            }
        }
        // Name plate with mute badge and quality bars.
        let plate = egui::Rect::from_min_size(
            rect.left_bottom() + egui::vec2(8.0, -30.0),
            egui::vec2(rect.width().min(260.0), 24.0),
        );
        painter.rect_filled(plate, 4.0, Color32::from_black_alpha(160));
        let mut label = remote.name.clone();
        if !remote.mic {
            label.push_str("  (muted)");
        }
        if remote.link == LinkState::Reconnecting {
            label.push_str("  reconnecting…");
        }
        painter.text(
            plate.left_center() + egui::vec2(6.0, 0.0),
            Align2::LEFT_CENTER,
            &label,
            FontId::proportional(14.0),
            Color32::WHITE,
        );
        let q = quality(remote);
        for b in 0..3u8 {
            let x = plate.right() - 30.0 + f32::from(b) * 8.0;
            let h = 6.0 + f32::from(b) * 5.0;
            let bar = egui::Rect::from_min_max(
                egui::pos2(x, plate.bottom() - 4.0 - h),
                egui::pos2(x + 5.0, plate.bottom() - 4.0),
            );
            let color = match (q, b < q) {
                (_, false) => Color32::from_gray(90),
                (3, true) => Color32::from_rgb(60, 200, 90),
                (2, true) => Color32::from_rgb(230, 180, 40),
                _ => Color32::from_rgb(220, 60, 60),
            };
            painter.rect_filled(bar, 1.0, color);
        }
        if speaking {
            // Who is talking: a green frame, like Meet's.
            painter.rect_stroke(
                rect.shrink(1.5),
                8.0,
                egui::Stroke::new(3.0, SPEAKING_GREEN),
                egui::StrokeKind::Inside,
            );
        }
        if pinned {
            painter.text(
                rect.right_top() + egui::vec2(-10.0, 10.0),
                Align2::RIGHT_TOP,
                "Pinned",
                FontId::proportional(13.0),
                Color32::WHITE,
            );
        }
        // Accessible text for the tile (screen readers, UI tests): "Ben muted speaking video".
        let response = ui.interact(
            rect,
            ui.make_persistent_id(id.as_str()),
            egui::Sense::click(),
        );
        let mut description = remote.name.clone();
        for (on, word) in [
            (!remote.mic, "muted"),
            (speaking, "speaking"),
            (pinned, "pinned"),
            (self.videos.tile(&source).is_some(), "video"),
        ] {
            if on {
                description.push(' ');
                description.push_str(word);
            }
        }
        let response = response.on_hover_text(if pinned {
            "Click to unpin; double-click for full screen (F11)"
        } else {
            "Click to pin to the large tile; double-click for full screen (F11)"
        });
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &description));
        if response.double_clicked() {
            Some((id.clone(), true))
        } else if response.clicked() {
            Some((id.clone(), false))
        } else {
            None
        }
    }

    /// Our picture, docked in the bottom-right corner of the tile area: it never covers the
    /// controls, the header or an open side panel (it moves aside when the chat opens, and back
    /// when it closes).
    fn picture_in_picture(&self, ctx: &egui::Context, grid: egui::Rect) {
        let Screen::InCall(call) = &self.screen else {
            return;
        };
        let camera_on = call.camera_on;
        egui::Window::new("You")
            .title_bar(false)
            .resizable(false)
            .movable(false)
            .pivot(Align2::RIGHT_BOTTOM)
            .fixed_pos(grid.right_bottom() - egui::vec2(12.0, 12.0))
            .frame(egui::Frame::window(&ctx.global_style()).inner_margin(4.0))
            .show(ctx, |ui| {
                if camera_on {
                    self.preview_ui(ui, egui::vec2(200.0, 120.0));
                } else {
                    let (rect, _) =
                        ui.allocate_exact_size(egui::vec2(200.0, 120.0), egui::Sense::hover());
                    ui.painter().rect_filled(rect, 6.0, Color32::from_gray(30));
                    ui.painter().text(
                        rect.center(),
                        Align2::CENTER_CENTER,
                        "Camera off",
                        FontId::proportional(14.0),
                        Color32::LIGHT_GRAY,
                    );
                }
                let mut label = format!("{} (you)", display_name(&self.settings.name));
                if !call.mic_on || !self.has_microphone() {
                    label.push_str("  muted");
                }
                ui.label(label);
                // The whole self-view, for screen readers and the layout tests.
                ui.interact(
                    ui.min_rect(),
                    ui.make_persistent_id("self-view"),
                    egui::Sense::hover(),
                )
                .widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, "Self-view"));
            });
    }

    /// The host's choice when leaving a call others are in: end it for everyone, leave it
    /// running for them (while this app stays open), or stay. Esc or a click outside stays.
    fn leave_dialog(&mut self, ctx: &egui::Context) {
        let mut choice = None;
        let modal = egui::Modal::new(egui::Id::unique("leave-dialog")).show(ctx, |ui| {
            ui.set_max_width(380.0);
            ui.heading("Leave the call?");
            ui.label(
                "This computer hosts the call. You can end it for everyone, or leave and let \
                 the others carry on while Confab stays open here.",
            );
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                if ui
                    .add(
                        egui::Button::new(
                            egui::RichText::new("End for everyone").color(Color32::WHITE),
                        )
                        .fill(OFF_RED),
                    )
                    .clicked()
                {
                    choice = Some(true);
                }
                if ui.button("Leave").clicked() {
                    choice = Some(false);
                }
                if ui.button("Cancel").clicked() {
                    self.confirm_leave = false;
                }
            });
        });
        if modal.should_close() {
            self.confirm_leave = false;
        }
        match choice {
            Some(true) => self.end_for_everyone(),
            Some(false) => self.leave_call(),
            None => {}
        }
    }

    pub(super) fn toasts_ui(&self, ctx: &egui::Context) {
        if self.toasts.is_empty() {
            return;
        }
        egui::Area::new(egui::Id::unique("toasts"))
            .anchor(Align2::CENTER_BOTTOM, egui::vec2(0.0, -84.0))
            .interactable(false)
            .show(ctx, |ui| {
                for t in &self.toasts {
                    egui::Frame::popup(ui.style()).show(ui, |ui| {
                        // One line each: the area is as narrow as its content, so wrapping
                        // would break a toast into a word per line.
                        ui.add(egui::Label::new(&t.text).extend());
                    });
                }
            });
    }

    pub(super) fn ended_ui(&mut self, ui: &mut egui::Ui) {
        let Screen::Ended { duration, reason } = &self.screen else {
            return;
        };
        let summary = match duration {
            Some(d) => format!(
                "Call ended after {:02}:{:02}",
                d.as_secs() / 60,
                d.as_secs() % 60
            ),
            None => "Call ended".to_owned(),
        };
        let reason = reason.clone();
        let still_hosting = self.hosted_others();
        let (mut back, mut end) = (false, false);
        egui::CentralPanel::default().show(ui, |ui| {
            ui.vertical_centered(|ui| {
                ui.add_space(ui.available_height() / 3.0);
                ui.heading(summary);
                ui.label(reason);
                ui.add_space(12.0);
                if still_hosting > 0 {
                    ui.label(format!(
                        "{} still in the call this computer hosts.",
                        crate::wording::people_are(still_hosting)
                    ));
                    end = ui.button("End the call for everyone").clicked();
                }
                back = ui.button("Back to the lobby").clicked();
            });
        });
        if end {
            self.end_for_everyone();
        }
        if back {
            self.back_to_lobby();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_shapes() {
        assert_eq!(grid_shape(1), (1, 1));
        assert_eq!(grid_shape(2), (2, 1));
        assert_eq!(grid_shape(3), (2, 2));
        assert_eq!(grid_shape(4), (2, 2));
        assert_eq!(grid_shape(5), (3, 2));
        assert_eq!(grid_shape(6), (3, 2));
        assert_eq!(grid_shape(7), (3, 3));
    }
}
