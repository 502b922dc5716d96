//! The top-level windows of an X display, and the rectangle of the root window one of them
//! covers.
//!
//! Listing: the window manager's client list (`_NET_CLIENT_LIST`, EWMH) when a window manager
//! keeps one, else the root window's mapped, non-override-redirect children (a display without
//! a window manager, such as a bare Xvfb). A window's title is its `_NET_WM_NAME` (UTF-8), else
//! its `WM_NAME`; a window without either is listed as `window 0x…`.
//!
//! Capture reads the window's rectangle *from the root window*, as the monitor capture does:
//! what is on screen there. That works on every X server (no Composite needed) and follows
//! moves and resizes; a window on top of the shared one shows in the share, as it does on the
//! sharer's own screen. [`window_area`] answers where the window is now ([`WindowArea`]: the
//! part of it on the screen, and where that part goes in a picture of the whole window, so a
//! window dragged across the screen's edge keeps its picture size and the part off the screen is
//! black), or that it is not shown (minimised, or entirely off the screen), or that it is gone.

use x11rb::errors::ReplyError;
use x11rb::protocol::ErrorKind;
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, MapState, Window};

use super::ScreenError;
use super::monitors::{self, CaptureRect};
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
    /// Shown, at least in part.
    Shown(WindowArea),
    /// Mapped nowhere (minimised, on another desktop) or entirely off the screen.
    Hidden,
}

/// A shown window: what to read from the screen, and the picture it goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WindowArea {
    /// The part of the window on the screen (even-sized).
    pub(super) grab: CaptureRect,
    /// The picture's size: the window's, at most the screen's, even.
    pub(super) canvas: (u32, u32),
    /// Where `grab` goes in the picture (its top-left corner).
    pub(super) offset: (u32, u32),
}

impl WindowArea {
    /// The area of a window at `origin` of `size` on a root window of `root` pixels, or `None`
    /// when less than 2x2 pixels of it are on the screen.
    fn of(origin: (i32, i32), size: (u32, u32), root: (u32, u32)) -> Option<Self> {
        // One axis: the visible span's start on the screen, its length, and its offset in the
        // picture, whose length is `canvas`.
        let axis = |start: i32, len: u32, limit: u32| -> Option<(i64, i64, i64, i64)> {
            let (start, len, limit) = (i64::from(start), i64::from(len), i64::from(limit));
            let canvas = len.min(limit) & !1;
            let lo = start.max(0);
            let hi = (start + len).min(limit);
            let visible = ((hi - lo) & !1).min(canvas);
            if canvas < 2 || visible < 2 {
                return None;
            }
            // A window larger than the screen: its picture is the screen's size, so the visible
            // part starts at most where it still fits.
            let offset = (lo - start).min(canvas - visible);
            Some((lo, visible, canvas, offset))
        };
        let (x, w, cw, ox) = axis(origin.0, size.0, root.0)?;
        let (y, h, ch, oy) = axis(origin.1, size.1, root.1)?;
        let grab = CaptureRect {
            x: i16::try_from(x).ok()?,
            y: i16::try_from(y).ok()?,
            width: u16::try_from(w).ok()?,
            height: u16::try_from(h).ok()?,
        };
        Some(Self {
            grab,
            canvas: (u32::try_from(cw).ok()?, u32::try_from(ch).ok()?),
            offset: (u32::try_from(ox).ok()?, u32::try_from(oy).ok()?),
        })
    }
}

/// The shown top-level windows of `x`, in the window manager's order (or stacking order,
/// bottom first, without one). Windows smaller than 2x2 pixels are left out.
///
/// # Errors
/// [`ScreenError::Protocol`] if the server fails to answer the first question; a window that
/// disappears while it is being looked at is left out.
pub(super) fn query(x: &XDisplay) -> Result<Vec<WindowInfo>, ScreenError> {
    let root = monitors::root_size(x)?;
    let candidates = match client_list(x)? {
        Some(list) if !list.is_empty() => list,
        _ => root_children(x)?,
    };
    let mut windows = Vec::with_capacity(candidates.len());
    for id in candidates {
        if let Ok(Some(info)) = describe(x, id, root) {
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

/// `id` as a [`WindowInfo`], `None` if it is hidden, too small or off a screen of `root`
/// pixels, an error if it is gone.
fn describe(x: &XDisplay, id: Window, root: (u32, u32)) -> Result<Option<WindowInfo>, ScreenError> {
    let Geometry {
        origin,
        size: (width, height),
        viewable,
    } = geometry(x, id)?;
    if !viewable || WindowArea::of(origin, (width, height), root).is_none() {
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

/// Where the window `id` is now (one round trip: every question is sent before any answer is
/// read).
///
/// # Errors
/// [`ScreenError::WindowGone`] when the window no longer exists (closed),
/// [`ScreenError::Protocol`] for any other failure.
pub(super) fn window_area(x: &XDisplay, id: Window) -> Result<WindowPlace, ScreenError> {
    let root = monitors::ask_root_size(x)?;
    let g = geometry(x, id)?;
    let root = monitors::read_root_size(root)?;
    if !g.viewable {
        return Ok(WindowPlace::Hidden);
    }
    Ok(WindowArea::of(g.origin, g.size, root).map_or(WindowPlace::Hidden, WindowPlace::Shown))
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

/// Where the window `id` is now (its three questions sent before any answer is read).
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
pub(super) fn title(x: &XDisplay, id: Window) -> Option<String> {
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
    fn a_window_keeps_its_picture_size_across_the_screen_edge() {
        let root = (1920, 1080);
        // Fully on the screen: all of it, at offset 0.
        let a = WindowArea::of((200, 150), (640, 360), root).expect("shown");
        assert_eq!(
            (a.grab.x, a.grab.y, a.grab.width, a.grab.height),
            (200, 150, 640, 360)
        );
        assert_eq!((a.canvas, a.offset), ((640, 360), (0, 0)));
        // Half off the right edge: the left 320 columns, same picture size.
        let r = WindowArea::of((1599, 40), (640, 360), root).expect("shown");
        assert_eq!((r.grab.x, r.grab.width), (1599, 320));
        assert_eq!((r.canvas, r.offset), ((640, 360), (0, 0)));
        // Off the left and top edges: the visible part goes to the right and bottom.
        let l = WindowArea::of((-101, -50), (640, 360), root).expect("shown");
        assert_eq!(
            (l.grab.x, l.grab.y, l.grab.width, l.grab.height),
            (0, 0, 538, 310)
        );
        assert_eq!((l.canvas, l.offset), ((640, 360), (101, 50)));
        // Larger than the screen: a screen-sized picture.
        let big = WindowArea::of((-500, 0), (4000, 1081), root).expect("shown");
        assert_eq!(big.canvas, (1920, 1080));
        assert_eq!((big.grab.width, big.grab.height), (1920, 1080));
        assert_eq!(big.offset, (0, 0));
        // Entirely off the screen, or too thin to show: hidden.
        assert!(WindowArea::of((1920, 0), (640, 360), root).is_none());
        assert!(WindowArea::of((-640, 0), (640, 360), root).is_none());
        assert!(WindowArea::of((1919, 0), (640, 360), root).is_none());
        assert!(WindowArea::of((0, 0), (1, 360), root).is_none());
        assert!(WindowArea::of((i32::MIN, i32::MAX), (u32::MAX, u32::MAX), root).is_none());
    }

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
