//! The app's look: a type scale that reads at 100 % and 200 % (egui scales points by the
//! display's pixels-per-point), roomier spacing, and text colours with WCAG AA contrast
//! (4.5:1 for body text) on every panel, in both themes.
//!
//! Contract: [`apply`] is called once at start and sets both the light and the dark style;
//! switching theme keeps them. The contrast rule is checked by this module's tests.

use eframe::egui::{self, Color32, FontFamily, FontId, TextStyle, Theme};

/// Body text, buttons and fields (points).
const BODY: f32 = 15.0;
/// Headings.
const HEADING: f32 = 21.0;
/// Small print (tooltips of figures, chat notes).
const SMALL: f32 = 12.0;
/// Figures in the statistics.
const MONOSPACE: f32 = 14.0;

/// Sets the type scale, spacing and text colours of both themes.
pub fn apply(ctx: &egui::Context) {
    for theme in [Theme::Dark, Theme::Light] {
        ctx.style_mut_of(theme, |style| {
            style.text_styles = [
                (
                    TextStyle::Heading,
                    FontId::new(HEADING, FontFamily::Proportional),
                ),
                (TextStyle::Body, FontId::new(BODY, FontFamily::Proportional)),
                (
                    TextStyle::Button,
                    FontId::new(BODY, FontFamily::Proportional),
                ),
                (
                    TextStyle::Small,
                    FontId::new(SMALL, FontFamily::Proportional),
                ),
                (
                    TextStyle::Monospace,
                    FontId::new(MONOSPACE, FontFamily::Monospace),
                ),
            ]
            .into();
            style.spacing.item_spacing = egui::vec2(8.0, 6.0);
            style.spacing.button_padding = egui::vec2(8.0, 4.0);
            style.spacing.interact_size.y = 24.0;
            readable(&mut style.visuals, theme);
        });
    }
}

/// Text colours with AA contrast: egui's defaults draw body text at grey 140 on grey 27 (5:1)
/// and weak text at 60 % of that (under 3:1), and the light theme's weak text under 3:1 too.
fn readable(visuals: &mut egui::Visuals, theme: Theme) {
    let (text, weak, error) = match theme {
        Theme::Dark => (
            Color32::from_gray(215),
            Color32::from_gray(165),
            Color32::from_rgb(255, 110, 110),
        ),
        Theme::Light => (
            Color32::from_gray(35),
            Color32::from_gray(90),
            Color32::from_rgb(190, 0, 0),
        ),
    };
    visuals.widgets.noninteractive.fg_stroke.color = text;
    visuals.weak_text_color = Some(weak);
    // egui's pure red is under 4.5:1 on both themes' panels.
    visuals.error_fg_color = error;
}

/// Text saying something is good (a connection), readable on this theme's panels.
pub fn good_text(visuals: &egui::Visuals) -> Color32 {
    if visuals.dark_mode {
        Color32::from_rgb(90, 210, 120)
    } else {
        Color32::from_rgb(0, 115, 40)
    }
}

/// Text saying something is so-so or under way, readable on this theme's panels.
pub fn warn_text(visuals: &egui::Visuals) -> Color32 {
    if visuals.dark_mode {
        Color32::from_rgb(235, 185, 60)
    } else {
        Color32::from_rgb(140, 85, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WCAG 2 relative luminance of an opaque colour.
    fn luminance(c: Color32) -> f64 {
        let channel = |v: u8| {
            let v = f64::from(v) / 255.0;
            if v <= 0.039_28 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(c.r()) + 0.7152 * channel(c.g()) + 0.0722 * channel(c.b())
    }

    /// WCAG 2 contrast ratio, 1 to 21.
    fn contrast(a: Color32, b: Color32) -> f64 {
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    #[test]
    fn every_text_colour_has_aa_contrast_on_its_background_in_both_themes() {
        let ctx = egui::Context::default();
        apply(&ctx);
        for theme in [Theme::Dark, Theme::Light] {
            let style = ctx.style_of(theme);
            let v = &style.visuals;
            let checks = [
                ("text on panels", v.text_color(), v.panel_fill),
                ("text in windows", v.text_color(), v.window_fill),
                ("weak text on panels", v.weak_text_color(), v.panel_fill),
                ("weak text in windows", v.weak_text_color(), v.window_fill),
                (
                    "button text",
                    v.widgets.inactive.fg_stroke.color,
                    v.widgets.inactive.weak_bg_fill,
                ),
                ("field text", v.text_color(), v.text_edit_bg_color()),
                ("error text", v.error_fg_color, v.panel_fill),
                ("good text", good_text(v), v.panel_fill),
                ("warning text", warn_text(v), v.panel_fill),
            ];
            for (what, fg, bg) in checks {
                let ratio = contrast(fg, bg);
                assert!(
                    ratio >= 4.5,
                    "{theme:?}: {what} {fg:?} on {bg:?} is {ratio:.2}:1, under AA's 4.5:1"
                );
            }
        }
    }

    #[test]
    fn the_defaults_this_replaces_failed_aa() {
        // The reason for `readable`: egui's own weak text is under 4.5:1 in both themes.
        for v in [egui::Visuals::dark(), egui::Visuals::light()] {
            let weak = v.weak_text_color();
            // Weak text is drawn with alpha; what the eye sees is it over the panel.
            let seen = blend(weak, v.panel_fill);
            assert!(contrast(seen, v.panel_fill) < 4.5);
        }
    }

    /// `fg` (premultiplied, maybe translucent) over an opaque `bg`.
    fn blend(fg: Color32, bg: Color32) -> Color32 {
        let a = f32::from(fg.a()) / 255.0;
        let mix = |f: u8, b: u8| (f32::from(f) + f32::from(b) * (1.0 - a)).round() as u8;
        Color32::from_rgb(
            mix(fg.r(), bg.r()),
            mix(fg.g(), bg.g()),
            mix(fg.b(), bg.b()),
        )
    }
}
