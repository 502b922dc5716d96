//! The monitors of an X display, and the rectangle of the root window one of them covers.
//!
//! RandR 1.5 `GetMonitors` (active monitors only) gives each monitor's name, place and size; a
//! server without it, or one that reports no monitor, has the whole root window (its current
//! size, from `GetGeometry`) as its one monitor, named `screen`. [`CaptureRect`] is what capture
//! reads: a monitor's rectangle clipped to the root window and trimmed to even sizes (I420
//! needs them).

use x11rb::cookie::Cookie;
use x11rb::errors::ConnectionError;
use x11rb::protocol::randr::ConnectionExt as _;
use x11rb::protocol::xproto::{ConnectionExt as _, GetAtomNameReply, GetGeometryReply};
use x11rb::rust_connection::RustConnection;

use super::x_display::XDisplay;
use super::{MonitorInfo, ScreenError};

/// The monitors of `x`, in RandR's order (see the module doc for the fallback).
///
/// # Errors
/// [`ScreenError::Protocol`] if the server fails to answer.
pub(super) fn query(x: &XDisplay) -> Result<Vec<MonitorInfo>, ScreenError> {
    Ok(query_with_root(x)?.0)
}

/// The monitors of `x` and the root window's current size (for [`CaptureRect::of_monitor`]).
///
/// # Errors
/// [`ScreenError::Protocol`] if the server fails to answer.
pub(super) fn query_with_root(x: &XDisplay) -> Result<(Vec<MonitorInfo>, (u32, u32)), ScreenError> {
    let root = root_size(x)?;
    if x.extensions.randr_monitors {
        let monitors = randr_monitors(x)?;
        if !monitors.is_empty() {
            return Ok((monitors, root));
        }
    }
    let whole = MonitorInfo {
        name: "screen".into(),
        x: 0,
        y: 0,
        width: root.0,
        height: root.1,
        primary: true,
    };
    Ok((vec![whole], root))
}

/// RandR's active monitors, with their names.
fn randr_monitors(x: &XDisplay) -> Result<Vec<MonitorInfo>, ScreenError> {
    let reply = x
        .conn
        .randr_get_monitors(x.root, true)
        .map_err(|e| ScreenError::protocol("RandR GetMonitors", e))?
        .reply()
        .map_err(|e| ScreenError::protocol("RandR GetMonitors", e))?;
    // Ask for every name first, then read the answers: one round trip, not one each.
    let cookies: Vec<_> = reply
        .monitors
        .iter()
        .map(|m| x.conn.get_atom_name(m.name))
        .collect();
    Ok(reply
        .monitors
        .iter()
        .zip(cookies)
        .enumerate()
        .map(|(i, (m, cookie))| MonitorInfo {
            name: atom_name(cookie).unwrap_or_else(|| format!("monitor-{i}")),
            x: i32::from(m.x),
            y: i32::from(m.y),
            width: u32::from(m.width),
            height: u32::from(m.height),
            primary: m.primary,
        })
        .collect())
}

/// The root window's current size (the setup's figure goes stale after a RandR resize).
pub(super) fn root_size(x: &XDisplay) -> Result<(u32, u32), ScreenError> {
    read_root_size(ask_root_size(x)?)
}

/// The question [`read_root_size`] reads the answer of: sent now, read later, so a caller can
/// ask other things in the same round trip.
pub(super) type RootSizeCookie<'c> = Cookie<'c, RustConnection, GetGeometryReply>;

/// Asks the root window's current size without waiting for the answer.
///
/// # Errors
/// [`ScreenError::Protocol`] if the request cannot be sent.
pub(super) fn ask_root_size(x: &XDisplay) -> Result<RootSizeCookie<'_>, ScreenError> {
    x.conn
        .get_geometry(x.root)
        .map_err(|e| ScreenError::protocol("GetGeometry of the root window", e))
}

/// The answer to [`ask_root_size`]: width and height.
///
/// # Errors
/// [`ScreenError::Protocol`] if the server fails to answer.
pub(super) fn read_root_size(cookie: RootSizeCookie<'_>) -> Result<(u32, u32), ScreenError> {
    let g = cookie
        .reply()
        .map_err(|e| ScreenError::protocol("GetGeometry of the root window", e))?;
    Ok((u32::from(g.width), u32::from(g.height)))
}

/// The text of an atom, or `None` if the server will not say.
fn atom_name(
    cookie: Result<Cookie<'_, RustConnection, GetAtomNameReply>, ConnectionError>,
) -> Option<String> {
    let reply = cookie.ok()?.reply().ok()?;
    Some(String::from_utf8_lossy(&reply.name).into_owned())
}

/// Which monitor a capture follows: the one asked for by index, or the primary one.
///
/// After the first lookup it is followed by name, so a monitor that moves in RandR's list (one
/// plugged in before it) stays the one captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MonitorChoice {
    /// The index asked for (`None`: the primary monitor, else the first).
    index: Option<usize>,
    /// The name of the monitor last chosen.
    name: Option<String>,
}

impl MonitorChoice {
    /// A choice of monitor `index` (or the primary one).
    pub(super) const fn new(index: Option<usize>) -> Self {
        Self { index, name: None }
    }

    /// The monitor to capture among `monitors`.
    ///
    /// # Errors
    /// [`ScreenError::MonitorOutOfRange`] on the first lookup of an index past the end. Later,
    /// a monitor that has gone gives way to the primary one (logged) rather than an error.
    pub(super) fn pick<'m>(
        &mut self,
        monitors: &'m [MonitorInfo],
    ) -> Result<&'m MonitorInfo, ScreenError> {
        let by_name = self
            .name
            .as_ref()
            .and_then(|n| monitors.iter().find(|m| &m.name == n));
        let picked = match (by_name, self.index, &self.name) {
            (Some(m), _, _) => Some(m),
            (None, Some(i), None) => {
                Some(monitors.get(i).ok_or(ScreenError::MonitorOutOfRange {
                    index: i,
                    count: monitors.len(),
                })?)
            }
            (None, None, _) | (None, Some(_), Some(_)) => {
                if let Some(gone) = &self.name {
                    tracing::warn!(monitor = %gone, "the captured monitor is gone; capturing the primary one");
                }
                monitors
                    .iter()
                    .find(|m| m.primary)
                    .or_else(|| monitors.first())
            }
        };
        let m = picked.ok_or(ScreenError::MonitorOutOfRange {
            index: self.index.unwrap_or(0),
            count: 0,
        })?;
        self.name = Some(m.name.clone());
        Ok(m)
    }
}

/// The part of the root window one frame reads: inside the root window, even-sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CaptureRect {
    /// Left edge on the root window.
    pub(super) x: i16,
    /// Top edge on the root window.
    pub(super) y: i16,
    /// Width, even, at least 2.
    pub(super) width: u16,
    /// Height, even, at least 2.
    pub(super) height: u16,
}

impl CaptureRect {
    /// `monitor` clipped to a root window of `root_w` x `root_h`, sizes rounded down to even.
    ///
    /// # Errors
    /// [`ScreenError::Unsupported`] if less than 2x2 pixels of it are on the root window.
    pub(super) fn of_monitor(
        monitor: &MonitorInfo,
        (root_w, root_h): (u32, u32),
    ) -> Result<Self, ScreenError> {
        let clip = |start: i32, len: u32, limit: u32| -> (i64, i64) {
            let lo = i64::from(start).max(0);
            let hi = (i64::from(start) + i64::from(len)).min(i64::from(limit));
            (lo, (hi - lo).max(0) & !1)
        };
        let (x, w) = clip(monitor.x, monitor.width, root_w);
        let (y, h) = clip(monitor.y, monitor.height, root_h);
        let fits = |v: i64| i16::try_from(v).is_ok();
        match (u16::try_from(w), u16::try_from(h)) {
            (Ok(width), Ok(height)) if width >= 2 && height >= 2 && fits(x) && fits(y) => {
                Ok(Self {
                    x: x as i16,
                    y: y as i16,
                    width,
                    height,
                })
            }
            _ => Err(ScreenError::Unsupported(format!(
                "monitor \"{}\" ({}x{} at {},{}) is not on the {root_w}x{root_h} screen",
                monitor.name, monitor.width, monitor.height, monitor.x, monitor.y
            ))),
        }
    }

    /// Width and height as `u32`.
    pub(super) fn size(self) -> (u32, u32) {
        (u32::from(self.width), u32::from(self.height))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(name: &str, x: i32, y: i32, width: u32, height: u32, primary: bool) -> MonitorInfo {
        MonitorInfo {
            name: name.into(),
            x,
            y,
            width,
            height,
            primary,
        }
    }

    #[test]
    fn rect_is_clipped_to_the_root_and_even() -> Result<(), ScreenError> {
        let m = monitor("A", 1920, 0, 1281, 1025, false);
        let r = CaptureRect::of_monitor(&m, (3200, 1024))?;
        assert_eq!((r.x, r.y, r.width, r.height), (1920, 0, 1280, 1024));
        let off = monitor("B", 4000, 0, 800, 600, false);
        assert!(matches!(
            CaptureRect::of_monitor(&off, (3200, 1024)),
            Err(ScreenError::Unsupported(_))
        ));
        Ok(())
    }

    #[test]
    fn choice_follows_the_name_and_reports_a_bad_index() -> Result<(), ScreenError> {
        let two = [
            monitor("A", 0, 0, 800, 600, false),
            monitor("B", 800, 0, 800, 600, true),
        ];
        assert_eq!(MonitorChoice::new(None).pick(&two)?.name, "B");
        let mut second = MonitorChoice::new(Some(1));
        assert_eq!(second.pick(&two)?.name, "B");
        // "C" plugged in before "B": still "B".
        let three = [
            two[0].clone(),
            monitor("C", 1600, 0, 800, 600, false),
            two[1].clone(),
        ];
        assert_eq!(second.pick(&three)?.name, "B");
        // "B" gone: the primary one (none now), else the first.
        assert_eq!(second.pick(&three[..2])?.name, "A");
        match MonitorChoice::new(Some(5)).pick(&two) {
            Err(ScreenError::MonitorOutOfRange { index: 5, count: 2 }) => Ok(()),
            other => panic!("expected out of range, got {other:?}"),
        }
    }
}
