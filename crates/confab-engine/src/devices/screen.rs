//! Screen capture on Linux: the monitors and windows of an X display, one monitor or one window
//! as a [`VideoSource`](crate::media::VideoSource), and (with the `wayland` feature) the screen
//! or window the desktop's ScreenCast portal grants, read from PipeWire.
//!
//! This module owns the native X11 screen-share source and everything it needs from the X
//! server: the connection (pure Rust, `x11rb`, no libxcb), the monitor list (RandR
//! `GetMonitors`, or the whole root window when RandR is missing), the picture (MIT-SHM
//! `GetImage` into a segment the server creates, or plain `GetImage` when the server does not
//! allow shared memory) and the pointer (XFixes `GetCursorImage`, blended in).
//!
//! | module | owns |
//! |---|---|
//! | `x_display` | connecting (with a clear word when there is no X server, e.g. Wayland without Xwayland), the extensions found, the root window's pixel layout as the server states it |
//! | `monitors` | RandR 1.5 monitors, the root-window fallback, the capture rectangle of one monitor |
//! | `windows` | the top-level windows (EWMH client list, or the root's mapped children), their titles, where one is now |
//! | `pixel_layout` | which ZPixmap layouts we read (24/32 bits per pixel, little-endian true colour) and their copy into packed BGRA |
//! | `shm_segment` | one MIT-SHM 1.2 segment: created by the server, mapped read-only here (the one `unsafe` block) |
//! | `frame_grabber` | one rectangle of the root window into a reused BGRA buffer, by SHM or plain `GetImage` |
//! | `cursor_overlay` | the pointer image alpha-blended onto the BGRA picture |
//! | `bgra_to_i420` | BGRA -> I420 (yuvutils-rs, BT.601 limited range, like [`crate::media::convert`]) into a reused frame, and the fit-within-1080p size |
//! | `x11_source` | [`X11ScreenSource`]: the capture loop's state (what is shared, geometry re-checks, scaling, buffers) |
//! | `portal_session` | (`wayland`) the ScreenCast portal session: the desktop's dialog, the PipeWire node it grants, closing |
//! | `pipewire_stream` | (`wayland`) the granted node read on its own thread and converted ([`bgra_to_i420`]'s `ScreenConverter`) |
//! | `portal_source` | (`wayland`) [`PortalScreenSource`]: the newest portal picture, or the last one again, paced like the X11 source |
//!
//! Contract:
//! - [`X11ScreenSource`] is a [`VideoSource`](crate::media::VideoSource) paced by the runner
//!   ([`Pacing::Interval`](crate::media::source::Pacing::Interval) at the requested frame rate,
//!   15 fps by default); run it with [`spawn_video`](crate::media::source::spawn_video). Each
//!   frame is the monitor's current picture with the pointer drawn in, as I420 (BT.601 limited
//!   range), stamped with [`CaptureTime::now`](crate::media::CaptureTime::now) when the picture
//!   was read, at most 1920x1080 (scaled down keeping the aspect ratio, never up), even sizes.
//! - When the monitor or the root window changes size, the frames follow within a second (the
//!   geometry is looked up again every second, and at once when the server says the rectangle
//!   no longer fits).
//! - A shared window is read from the screen where it is (see `windows`): it is followed as it
//!   moves or changes size (looked up every capture: one round trip), keeps its picture size
//!   across the screen's edge (the part off the screen is black), its last picture is repeated
//!   while it is hidden (minimised; black if it was hidden before the first picture, never the
//!   screen where it was), and capture ends with [`ScreenError::WindowGone`] when it is closed.
//! - Nothing here panics on what the X server sends: a missing display, an unknown monitor, an
//!   unsupported pixel format or a protocol error is a [`ScreenError`] (once capture runs, a
//!   [`SourceError::Format`] for the pixel format and a [`SourceError::Device`] for the rest,
//!   which ends the capture thread).
//! - Buffers are reused from frame to frame: the shared segment, the BGRA picture and (when
//!   scaling) the full-size I420 frame. The frame handed out is new each time, as the consumer
//!   owns it.

mod bgra_to_i420;
mod cursor_overlay;
mod frame_grabber;
mod monitors;
mod pixel_layout;
mod shm_segment;
mod windows;
mod x11_source;
mod x_display;

#[cfg(feature = "wayland")]
mod pipewire_stream;
#[cfg(feature = "wayland")]
mod portal_session;
#[cfg(feature = "wayland")]
mod portal_source;

#[cfg(feature = "wayland")]
pub use portal_source::{FIRST_PICTURE, PortalScreenSource};

pub use bgra_to_i420::{MAX_HEIGHT, MAX_WIDTH, fit_within};
pub use frame_grabber::CaptureTransport;
pub use windows::WindowInfo;
pub use x11_source::{DEFAULT_FPS, ScreenCaptureOptions, X11ScreenSource};

use crate::media::SourceError;
use crate::media::convert::ConvertError;

/// Why the screen could not be listed or captured.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    /// There is no X display to talk to (`$DISPLAY` unset or not a display name).
    #[error("{0}")]
    NoDisplay(String),
    /// The X display named could not be reached.
    #[error(
        "cannot connect to the X display \"{display}\": {reason}. Check $DISPLAY; on a Wayland \
         desktop, screen sharing through X11 needs Xwayland"
    )]
    Connect {
        /// The display name tried, e.g. `:0`.
        display: String,
        /// What went wrong.
        reason: String,
    },
    /// The monitor asked for does not exist.
    #[error(
        "there is no monitor {index}: this display has {count} monitor{} (numbered from 0)",
        plural_s(*.count)
    )]
    MonitorOutOfRange {
        /// The index asked for.
        index: usize,
        /// How many monitors there are.
        count: usize,
    },
    /// The window asked for does not exist (any more): it was closed, or the id is wrong.
    #[error("the window {0:#x} does not exist (any more): it was closed, or the id is wrong")]
    WindowGone(u32),
    /// The window asked for is not on the screen (minimised, on another desktop, or entirely
    /// off the screen) when the share starts.
    #[error(
        "the window \"{0}\" is not on the screen (minimised, or on another desktop): show it, \
         then share it"
    )]
    WindowHidden(String),
    /// The screen's pixel format is not one we read.
    #[error("unsupported screen format: {0}")]
    Unsupported(String),
    /// The X server answered a request with an error, or the connection broke.
    #[error("X11 protocol error during {during}: {reason}")]
    Protocol {
        /// The request or step that failed.
        during: &'static str,
        /// The server's error or the connection's.
        reason: String,
    },
    /// No ScreenCast portal answers on the session bus (Wayland): no `xdg-desktop-portal`, no
    /// backend for this desktop, or no session bus at all.
    #[error(
        "no screen-sharing portal is running ({0}). On Wayland, Confab shares the screen \
         through xdg-desktop-portal and the backend of your desktop (xdg-desktop-portal-gnome, \
         -kde or -wlr); install and start them, or log in to an X11 session"
    )]
    NoPortal(String),
    /// The user closed the desktop's screen-sharing dialog without choosing anything.
    #[error("screen sharing was cancelled in the desktop's dialog")]
    PortalCancelled,
    /// The portal refused or failed the request.
    #[error("the desktop's screen-sharing portal failed: {0}")]
    PortalFailed(String),
    /// The desktop ended the share: stopped from its own indicator, or the shared window or
    /// monitor went away.
    #[error(
        "the desktop ended the screen share (stopped from its indicator, or what was shared went away)"
    )]
    PortalEnded,
    /// The PipeWire stream of the shared screen failed.
    #[error("reading the shared screen from PipeWire: {0}")]
    PipeWire(String),
    /// The screen source sent no picture in time.
    #[error("the desktop sent no picture of the screen within {0} s")]
    NoPicture(u64),
    /// Converting or scaling the picture failed.
    #[error("converting the screen picture: {0}")]
    Convert(#[from] ConvertError),
}

/// "s" unless there is exactly one.
const fn plural_s(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

impl ScreenError {
    /// A [`ScreenError::Protocol`] for `during` from any X error or connection error.
    pub(crate) fn protocol(during: &'static str, err: impl std::fmt::Display) -> Self {
        Self::Protocol {
            during,
            reason: err.to_string(),
        }
    }
}

impl From<ScreenError> for SourceError {
    fn from(e: ScreenError) -> Self {
        match e {
            ScreenError::Unsupported(s) => Self::Format(s),
            other => Self::Device(other.to_string()),
        }
    }
}

/// Whether this build can share through the desktop's ScreenCast portal (the `wayland`
/// feature; [`crate::ScreenInput::Portal`]).
pub const PORTAL_BUILT: bool = cfg!(feature = "wayland");

/// Whether this process runs in a Wayland session, where an app cannot read the screen and
/// shares through the portal (X11 capture there sees only Xwayland's windows):
/// `$XDG_SESSION_TYPE` is `wayland`, or `$WAYLAND_DISPLAY` is set.
#[must_use]
pub fn wayland_session() -> bool {
    std::env::var("XDG_SESSION_TYPE").is_ok_and(|t| t.eq_ignore_ascii_case("wayland"))
        || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty())
}

/// Lists the shown top-level windows of `display` (or of `$DISPLAY` when `None`): the window
/// manager's client list, or without one the root window's mapped children.
///
/// # Errors
/// As [`list_monitors`].
pub fn list_windows(display: Option<&str>) -> Result<Vec<WindowInfo>, ScreenError> {
    let x = x_display::XDisplay::connect(display)?;
    windows::query(&x)
}

/// One monitor of an X display, in root-window pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorInfo {
    /// RandR's name for it (the output's, e.g. `DP-1`), or `screen` for the whole root window.
    pub name: String,
    /// Left edge on the root window.
    pub x: i32,
    /// Top edge on the root window.
    pub y: i32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Whether this is the primary monitor (the whole-root fallback is).
    pub primary: bool,
}

/// Lists the monitors of `display` (or of `$DISPLAY` when `None`), in RandR's order.
///
/// Without RandR 1.5 (or when it reports none) the whole root window is the one monitor.
///
/// # Errors
/// [`ScreenError::NoDisplay`] / [`ScreenError::Connect`] when there is no X server to reach,
/// [`ScreenError::Protocol`] when it fails to answer.
pub fn list_monitors(display: Option<&str>) -> Result<Vec<MonitorInfo>, ScreenError> {
    let x = x_display::XDisplay::connect(display)?;
    monitors::query(&x)
}
