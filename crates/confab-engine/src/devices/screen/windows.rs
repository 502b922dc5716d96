//! The top-level windows of an X display, and the rectangle of the root window one of them
//! covers.
//!
//! Listing: the window manager's client list (`_NET_CLIENT_LIST`, EWMH) when a window manager
//! keeps one, else the root window's mapped, non-override-redirect children (a display without
//! a window manager, such as a bare Xvfb). A window's title is its `_NET_WM_NAME` (UTF-8), else
//! its `WM_NAME`; a window without either is listed as `window 0x…`.
//!
//! Capture reads the window's rectangle *from the root window*, as the monitor capture does:
//! what is on screen there, clipped to the screen. That works on every X server (no Composite
//! needed) and follows moves and resizes; a window on top of the shared one shows in the share,
//! as it does on the sharer's own screen. [`window_rect`] answers where the window is now, or
//! that it is not shown (minimised), or that it is gone.

use x11rb::errors::ReplyError;
use x11rb::protocol::ErrorKind;
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, MapState, Window};

use super::ScreenError;
use super::monitors::CaptureRect;
use super::x_display::XDisplay;

/// Longest title kept (in characters); longer ones are cut with an ellipsis.
const MAX_TITLE_CHARS: usize = 200;

/// One top-level window of an X display, in root-window pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowInfo {
    /// The X window id (what [`crate::ScreenInput::X11Window`] names).
    pub id: u32,
    /// Its title (`window 0x…` when it has none).
    pub title: String,
    /// Left edge on the root window.
    pub x: i32,
    /// Top edge on the root window.
    pub y: i32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Where a shared window is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WindowPlace {
    /// Shown, covering this part of the screen.
    Shown(CaptureRect),
    /// Mapped nowhere (minimised, on another desktop) or entirely off the screen.
    Hidden,
}

/// The shown top-level windows of `x`, in the window manager's order (or stacking order,
/// bottom first, without one). Windows smaller than 2x2 pixels are left out.
///
/// # Errors
/// [`ScreenError::Protocol`] if the server fails to answer the first question; a window that
/// disappears while it is being looked at is left out.
pub(super) fn query(x: &XDisplay) -> Result<Vec<WindowInfo>, ScreenError> {
    let candidates = match client_list(x)? {
        Some(list) if !list.is_empty() => list,
        _ => root_children(x)?,
    };
    let mut windows = Vec::with_capacity(candidates.len());
    for id in candidates {
        if let Ok(Some(info)) = describe(x, id) {
            windows.push(info);
        }
    }
    Ok(windows)
}

/// The EWMH client list, or `None` when no window manager keeps one.
fn client_list(x: &XDisplay) -> Result<Option<Vec<Window>>, ScreenError> {
    let atom = x
        .conn
        .intern_atom(true, b"_NET_CLIENT_LIST")
        .map_err(|e| ScreenError::protocol("InternAtom _NET_CLIENT_LIST", e))?
        .reply()
        .map_err(|e| ScreenError::protocol("InternAtom _NET_CLIENT_LIST", e))?
        .atom;
    if atom == x11rb::NONE {
        return Ok(None);
    }
    let reply = x
        .conn
        .get_property(false, x.root, atom, AtomEnum::WINDOW, 0, 4096)
        .map_err(|e| ScreenError::protocol("GetProperty _NET_CLIENT_LIST", e))?
        .reply()
        .map_err(|e| ScreenError::protocol("GetProperty _NET_CLIENT_LIST", e))?;
    Ok(reply.value32().map(Iterator::collect))
}

/// The root window's children that are mapped and not override-redirect (menus, tooltips).
fn root_children(x: &XDisplay) -> Result<Vec<Window>, ScreenError> {
    let tree = x
        .conn
        .query_tree(x.root)
        .map_err(|e| ScreenError::protocol("QueryTree of the root window", e))?
        .reply()
        .map_err(|e| ScreenError::protocol("QueryTree of the root window", e))?;
    let cookies: Vec<_> = tree
        .children
        .iter()
        .map(|&w| (w, x.conn.get_window_attributes(w)))
        .collect();
    Ok(cookies
        .into_iter()
        .filter_map(|(w, cookie)| {
            let a = cookie.ok()?.reply().ok()?;
            (a.map_state == MapState::VIEWABLE && !a.override_redirect).then_some(w)
        })
        .collect())
}

/// `id` as a [`WindowInfo`], `None` if it is hidden or too small, an error if it is gone.
fn describe(x: &XDisplay, id: Window) -> Result<Option<WindowInfo>, ScreenError> {
    let Geometry {
        origin,
        size: (width, height),
        viewable,
    } = geometry(x, id)?;
    if !viewable || width < 2 || height < 2 {
        return Ok(None);
    }
    let title = title(x, id).unwrap_or_else(|| format!("window {id:#x}"));
    Ok(Some(WindowInfo {
        id,
        title,
        x: origin.0,
        y: origin.1,
        width,
        height,
    }))
}

/// Where the window `id` is now: its rectangle on the screen (clipped to it, even-sized), or
/// hidden.
///
/// # Errors
/// [`ScreenError::WindowGone`] when the window no longer exists (closed),
/// [`ScreenError::Protocol`] for any other failure.
pub(super) fn window_rect(
    x: &XDisplay,
    id: Window,
    root: (u32, u32),
) -> Result<WindowPlace, ScreenError> {
    let Geometry {
        origin: (left, top),
        size: (width, height),
        viewable,
    } = geometry(x, id)?;
    if !viewable {
        return Ok(WindowPlace::Hidden);
    }
    let on_screen = super::MonitorInfo {
        name: format!("window {id:#x}"),
        x: left,
        y: top,
        width,
        height,
        primary: false,
    };
    Ok(CaptureRect::of_monitor(&on_screen, root).map_or(WindowPlace::Hidden, WindowPlace::Shown))
}

/// Where a window is, as the server says now.
struct Geometry {
    /// Its top-left corner on the root window.
    origin: (i32, i32),
    /// Its size (inside its border).
    size: (u32, u32),
    /// Whether it is mapped and all its ancestors are (shown).
    viewable: bool,
}

/// Where the window `id` is now.
fn geometry(x: &XDisplay, id: Window) -> Result<Geometry, ScreenError> {
    let gone = |during: &'static str, e: ReplyError| match e {
        ReplyError::X11Error(ref x11)
            if matches!(x11.error_kind, ErrorKind::Window | ErrorKind::Drawable) =>
        {
            ScreenError::WindowGone(id)
        }
        other => ScreenError::protocol(during, other),
    };
    let attributes = x
        .conn
        .get_window_attributes(id)
        .map_err(|e| ScreenError::protocol("GetWindowAttributes", e))?;
    let size = x
        .conn
        .get_geometry(id)
        .map_err(|e| ScreenError::protocol("GetGeometry of a window", e))?;
    let place = x
        .conn
        .translate_coordinates(id, x.root, 0, 0)
        .map_err(|e| ScreenError::protocol("TranslateCoordinates", e))?;
    let attributes = attributes
        .reply()
        .map_err(|e| gone("GetWindowAttributes", e))?;
    let size = size
        .reply()
        .map_err(|e| gone("GetGeometry of a window", e))?;
    let place = place.reply().map_err(|e| gone("TranslateCoordinates", e))?;
    Ok(Geometry {
        origin: (i32::from(place.dst_x), i32::from(place.dst_y)),
        size: (u32::from(size.width), u32::from(size.height)),
        viewable: attributes.map_state == MapState::VIEWABLE,
    })
}

/// The window's `_NET_WM_NAME`, else its `WM_NAME`, cut to [`MAX_TITLE_CHARS`], control
/// characters removed; `None` when it has neither (or only blanks).
fn title(x: &XDisplay, id: Window) -> Option<String> {
    let utf8 = |name: &[u8]| -> Option<u32> {
        Some(x.conn.intern_atom(true, name).ok()?.reply().ok()?.atom).filter(|a| *a != 0)
    };
    let net_wm_name = utf8(b"_NET_WM_NAME").zip(utf8(b"UTF8_STRING"));
    let read = |property: u32, kind: u32| -> Option<String> {
        let reply = x
            .conn
            .get_property(false, id, property, kind, 0, 1024)
            .ok()?
            .reply()
            .ok()?;
        clean_title(&String::from_utf8_lossy(&reply.value))
    };
    net_wm_name
        .and_then(|(name, kind)| read(name, kind))
        .or_else(|| read(AtomEnum::WM_NAME.into(), AtomEnum::STRING.into()))
}

/// `raw` without control characters, trimmed and cut to [`MAX_TITLE_CHARS`]; `None` if blank.
fn clean_title(raw: &str) -> Option<String> {
    let cleaned: String = raw.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        return None;
    }
    if cleaned.chars().count() > MAX_TITLE_CHARS {
        let mut cut: String = cleaned.chars().take(MAX_TITLE_CHARS - 1).collect();
        cut.push('…');
        return Some(cut);
    }
    Some(cleaned.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_cleaned_and_cut() {
        assert_eq!(
            clean_title("  Notes\n\u{0}— draft\t "),
            Some("Notes— draft".into())
        );
        assert_eq!(clean_title(" \n\t"), None);
        let long = "é".repeat(MAX_TITLE_CHARS + 50);
        let cut = clean_title(&long).unwrap_or_default();
        assert_eq!(cut.chars().count(), MAX_TITLE_CHARS);
        assert!(cut.ends_with('…'));
    }
}
