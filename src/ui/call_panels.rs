//! The call view's two optional panels: the chat side panel and the statistics window.
//!
//! Contract: both draw from the current [`Screen::InCall`] call and draw nothing on any other
//! screen; the chat panel only sends what was typed (through `send_chat`), the statistics window
//! only reads. When they show (the `c` / `s` shortcuts, the controls) is decided in `call_view`.

use eframe::egui::{self, Key};

use super::app::{ChatLine, ConfabApp, Screen};
use super::video::Upload;

/// The chat panel's width when first opened, in points.
const CHAT_WIDTH: f32 = 300.0;
/// The narrowest the chat panel can be dragged.
const CHAT_MIN_WIDTH: f32 = 220.0;
/// The widest the chat panel can be dragged (and never more than half the window).
const CHAT_MAX_WIDTH: f32 = 520.0;

impl ConfabApp {
    /// The chat side panel: history (newest at the bottom) and the message field; Enter or
    /// "Send" sends. Its width starts at [`CHAT_WIDTH`], can be dragged between
    /// [`CHAT_MIN_WIDTH`] and [`CHAT_MAX_WIDTH`] (never past half the window, so the video keeps
    /// the other half) and is remembered with the window state; nothing inside it may widen it.
    pub(super) fn chat_panel(&mut self, ui: &mut egui::Ui) {
        let mut send = false;
        side_panel("chat", ui).show(ui, |ui| {
            ui.heading("Messages");
            ui.separator();
            let input_height = 36.0;
            egui::ScrollArea::vertical()
                .max_height(ui.available_height() - input_height)
                .stick_to_bottom(true)
                .auto_shrink([false, false])
                .show(ui, |ui| {
                    if let Screen::InCall(call) = &self.screen {
                        if call.chat.is_empty() {
                            ui.weak("Messages go straight to the others, end-to-end encrypted.");
                        }
                        for line in &call.chat {
                            chat_line(ui, line);
                        }
                    }
                });
            // Send first, right-aligned, and the field takes what is left: the row is
            // exactly as wide as the panel.
            let row = egui::vec2(ui.available_width(), input_height);
            let centred = egui::Layout::right_to_left(egui::Align::Center);
            ui.allocate_ui_with_layout(row, centred, |ui| {
                send |= ui.button("Send").clicked();
                let field = ui.add(
                    egui::TextEdit::singleline(&mut self.chat_input)
                        .hint_text("Message (Enter sends, Esc leaves)")
                        .desired_width(ui.available_width()),
                );
                field.widget_info(|| {
                    egui::WidgetInfo::labeled(egui::Role::TextInput, true, "Message")
                });
                if std::mem::take(&mut self.focus_chat_input) {
                    field.request_focus();
                }
                if field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter)) {
                    send = true;
                    field.request_focus();
                }
            });
        });
        if send {
            self.send_chat();
        }
    }

    /// The statistics window, one table per remote in arrival order, in plain words; it opens
    /// in the top-left corner of the tiles' area (`grid`), clear of the header and its security
    /// codes; closing it clears [`ConfabApp::stats_open`].
    pub(super) fn stats_window(&mut self, ctx: &egui::Context, grid: egui::Rect) {
        let Screen::InCall(call) = &self.screen else {
            return;
        };
        let mut open = true;
        egui::Window::new("Statistics")
            .open(&mut open)
            .default_width(360.0)
            .pivot(egui::Align2::LEFT_TOP)
            .default_pos(grid.left_top() + egui::vec2(12.0, 12.0))
            .constrain_to(grid)
            .show(ctx, |ui| {
                for id in &call.order {
                    let Some(r) = call.remotes.get(id) else {
                        continue;
                    };
                    ui.strong(&r.name);
                    match &r.stats {
                        None => {
                            ui.weak("waiting for statistics…");
                        }
                        Some(s) => {
                            egui::Grid::new(("stats", id.as_str()))
                                .num_columns(2)
                                .show(ui, |ui| {
                                    let rows = [
                                        (
                                            "Picture size",
                                            s.resolution_in.clone().unwrap_or_else(|| "-".into()),
                                        ),
                                        (
                                            "Pictures a second in / out",
                                            format!("{:.0} / {:.0}", s.fps_in, s.fps_out),
                                        ),
                                        (
                                            "Video kbit/s in / out",
                                            format!(
                                                "{:.0} / {:.0}",
                                                s.video_kbps_in, s.video_kbps_out
                                            ),
                                        ),
                                        (
                                            "Audio kbit/s in / out",
                                            format!(
                                                "{:.0} / {:.0}",
                                                s.audio_kbps_in, s.audio_kbps_out
                                            ),
                                        ),
                                        (
                                            "Delay there and back",
                                            s.rtt_ms.map_or("-".into(), |v| format!("{v:.1} ms")),
                                        ),
                                        ("Packets lost", s.packets_lost.to_string()),
                                        (
                                            "Timing wobble (jitter)",
                                            format!("{:.1} ms", s.jitter_ms),
                                        ),
                                        (
                                            "Codec",
                                            if s.video_negotiated {
                                                s.codec.to_owned()
                                            } else {
                                                "no common video codec (audio and chat only)"
                                                    .to_owned()
                                            },
                                        ),
                                        (
                                            "Connection",
                                            path_words(s.candidate_type.as_deref()).to_owned(),
                                        ),
                                        (
                                            "Room for video (estimate)",
                                            format!("{:.0} kbit/s", s.bandwidth_estimate_kbps),
                                        ),
                                        (
                                            "Sound delay (buffer)",
                                            format!("{:.0} ms", s.audio_delay_ms),
                                        ),
                                        (
                                            "Repairs asked: pictures / packets",
                                            format!("{} / {}", s.plis_sent, s.nacks_sent),
                                        ),
                                        (
                                            "Damaged / waiting for a full picture",
                                            format!(
                                                "{} / {}",
                                                s.decode_errors, s.frames_skipped_awaiting_keyframe
                                            ),
                                        ),
                                        (
                                            "Dropped here: decoder / screen behind",
                                            format!(
                                                "{} / {}",
                                                s.frames_dropped_decoder_behind,
                                                s.frames_dropped_consumer_slow
                                            ),
                                        ),
                                    ];
                                    for (k, v) in rows {
                                        ui.label(k);
                                        ui.monospace(v);
                                        ui.end_row();
                                    }
                                });
                        }
                    }
                    ui.separator();
                }
                if let Some(p50) = self.frame_to_screen_p50_ms() {
                    ui.weak(format!("Frame to screen: {p50:.1} ms (median)"));
                }
                if let Some(t) = self.ui_frame_time() {
                    let how = match self.video_upload() {
                        Upload::Gpu => "pictures converted by the graphics card",
                        Upload::Cpu => "pictures converted by the processor",
                    };
                    ui.weak(format!(
                        "Drawing this window: {:.1} ms a frame (median), {:.1} ms (95 %); {how}",
                        t.p50_ms, t.p95_ms
                    ));
                }
            });
        if !open {
            self.stats_open = false;
        }
    }
}

/// One line of the chat: time, who, text; a message of ours that did not get through says so
/// in red under it; an app notice is in italics.
fn chat_line(ui: &mut egui::Ui, line: &ChatLine) {
    ui.horizontal_wrapped(|ui| {
        ui.weak(clock(line.at));
        if line.notice {
            ui.label(egui::RichText::new(&line.text).italics());
            return;
        }
        ui.strong(if line.mine { "You" } else { &line.name });
        ui.label(&line.text);
    });
    if let Some(why) = &line.not_delivered {
        ui.label(
            egui::RichText::new(why)
                .small()
                .color(ui.visuals().error_fg_color),
        );
    }
}

/// The ICE candidate type of the path in use, in words.
fn path_words(candidate_type: Option<&str>) -> &'static str {
    match candidate_type {
        Some("host") => "direct",
        Some("srflx" | "prflx") => "direct, through a router (NAT)",
        Some("relay") => "through a relay server (TURN)",
        Some(_) => "other",
        None => "-",
    }
}

/// A right side panel with the chat's width rules: [`CHAT_WIDTH`] to start, draggable between
/// [`CHAT_MIN_WIDTH`] and [`CHAT_MAX_WIDTH`] and never past half the window (the window is at
/// least 640 pt wide, so the minimum fits), remembered by egui with the window state.
pub(super) fn side_panel(id: &'static str, ui: &egui::Ui) -> egui::Panel {
    let max = (ui.available_width() * 0.5).clamp(CHAT_MIN_WIDTH, CHAT_MAX_WIDTH);
    egui::Panel::right(id)
        .resizable(true)
        .default_size(CHAT_WIDTH)
        .size_range(CHAT_MIN_WIDTH..=max)
}

/// `HH:MM` of a system time in the local time zone.
fn clock(at: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Local>::from(at)
        .format("%H:%M")
        .to_string()
}
