//! One connection to an X display: reaching it, and what it offers for screen capture.
//!
//! [`XDisplay::connect`] turns every way of not reaching an X server into a sentence a user can
//! act on (`$DISPLAY` unset, a Wayland session without Xwayland, a display that does not
//! answer) and asks once for the
//! versions of the three extensions capture uses (RandR 1.5 for monitors, XFixes for the cursor,
//! MIT-SHM 1.2 for server-created shared segments). A missing extension is not an error here:
//! the callers fall back (whole root window, no cursor, plain `GetImage`).

use x11rb::connection::{Connection, RequestConnection};
use x11rb::errors::ConnectError;
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::Window;
use x11rb::rust_connection::RustConnection;

use super::ScreenError;
use super::pixel_layout::PixelLayout;

/// Which capture-related extensions the server offers, at the versions we need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Extensions {
    /// RandR 1.5 or later (`GetMonitors`).
    pub(super) randr_monitors: bool,
    /// XFixes 4 or later (`GetCursorImage`).
    pub(super) xfixes_cursor: bool,
    /// MIT-SHM 1.2 or later (`CreateSegment`: the server makes the segment and passes its fd).
    pub(super) shm_fd_segments: bool,
}

/// A connection to an X display and the facts about it capture needs.
pub(super) struct XDisplay {
    /// The connection (pure Rust; `Send`).
    pub(super) conn: RustConnection,
    /// The root window of the display's default screen.
    pub(super) root: Window,
    /// The default screen's number (index into the setup's roots).
    screen: usize,
    /// The extensions found.
    pub(super) extensions: Extensions,
    /// The display name connected to (for logs and the source's name).
    pub(super) name: String,
}

impl std::fmt::Debug for XDisplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XDisplay")
            .field("name", &self.name)
            .field("root", &self.root)
            .field("extensions", &self.extensions)
            .finish_non_exhaustive()
    }
}

impl XDisplay {
    /// Connects to `display`, or to `$DISPLAY` when `None`.
    ///
    /// # Errors
    /// [`ScreenError::NoDisplay`] when no display is named, [`ScreenError::Connect`] when the one
    /// named cannot be reached, [`ScreenError::Protocol`] when the server fails to answer.
    pub(super) fn connect(display: Option<&str>) -> Result<Self, ScreenError> {
        let name = match display {
            Some(d) => d.to_owned(),
            None => std::env::var("DISPLAY")
                .ok()
                .filter(|d| !d.trim().is_empty())
                .ok_or_else(|| ScreenError::NoDisplay(no_display_sentence()))?,
        };
        let (conn, screen) = RustConnection::connect(Some(&name)).map_err(|e| match e {
            ConnectError::DisplayParsingError(_) => ScreenError::NoDisplay(format!(
                "\"{name}\" is not an X display name (expected something like \":0\")"
            )),
            other => ScreenError::Connect {
                display: name.clone(),
                reason: other.to_string(),
            },
        })?;
        let setup = conn.setup();
        let root = setup
            .roots
            .get(screen)
            .map(|s| s.root)
            .ok_or_else(|| ScreenError::Connect {
                display: name.clone(),
                reason: format!("the server has no screen {screen}"),
            })?;
        let extensions = probe_extensions(&conn)?;
        tracing::debug!(display = %name, ?extensions, "connected to the X display");
        Ok(Self {
            conn,
            root,
            screen,
            extensions,
            name,
        })
    }

    /// How the root window's ZPixmap pixels are laid out, if we read that layout.
    ///
    /// # Errors
    /// [`ScreenError::Unsupported`] for anything but 24/32-bit little-endian true colour.
    pub(super) fn pixel_layout(&self) -> Result<PixelLayout, ScreenError> {
        PixelLayout::of_screen(self.conn.setup(), self.screen)
    }
}

/// Why there is no display to connect to, in words.
fn no_display_sentence() -> String {
    let wayland = std::env::var_os("WAYLAND_DISPLAY").is_some_and(|w| !w.is_empty());
    if wayland {
        "no X display: $DISPLAY is not set, and this looks like a Wayland session without \
         Xwayland. Screen sharing through X11 needs an X server: enable Xwayland, or log in to \
         an X11 session"
            .into()
    } else {
        "no X display: $DISPLAY is not set, so there is no X server to capture the screen from"
            .into()
    }
}

/// Asks each extension for its version (required before using RandR and XFixes requests).
fn probe_extensions(conn: &RustConnection) -> Result<Extensions, ScreenError> {
    let present = |name: &'static str| -> Result<bool, ScreenError> {
        conn.extension_information(name)
            .map(|info| info.is_some())
            .map_err(|e| ScreenError::protocol("querying extensions", e))
    };
    let mut ext = Extensions::default();
    // An error reply just means "not usable": the callers fall back.
    if present(randr::X11_EXTENSION_NAME)?
        && let Ok(v) = conn
            .randr_query_version(1, 5)
            .map_err(|e| ScreenError::protocol("RandR QueryVersion", e))?
            .reply()
    {
        ext.randr_monitors = (v.major_version, v.minor_version) >= (1, 5);
    }
    if present(xfixes::X11_EXTENSION_NAME)?
        && let Ok(v) = conn
            .xfixes_query_version(4, 0)
            .map_err(|e| ScreenError::protocol("XFixes QueryVersion", e))?
            .reply()
    {
        ext.xfixes_cursor = v.major_version >= 4;
    }
    if present(shm::X11_EXTENSION_NAME)?
        && let Ok(v) = conn
            .shm_query_version()
            .map_err(|e| ScreenError::protocol("MIT-SHM QueryVersion", e))?
            .reply()
    {
        ext.shm_fd_segments = (v.major_version, v.minor_version) >= (1, 2);
    }
    Ok(ext)
}
