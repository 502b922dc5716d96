//! [`X11ScreenSource`]: one monitor or one window of an X display as a paced [`VideoSource`].
//!
//! Each [`VideoSource::next_frame`]: look the geometry up again if a second has passed (or the
//! server said the rectangle no longer fits; for a window, every frame, as windows move often),
//! read the rectangle ([`FrameGrabber`]: MIT-SHM or
//! plain `GetImage`), draw the pointer in ([`CursorOverlay`]), convert to I420 and scale down to
//! fit 1920x1080 if needed. The capture time is taken as the picture is read.

use std::time::{Duration, Instant};

use super::bgra_to_i420::{ByteOrder, ScreenConverter, fit_within};
use super::cursor_overlay::CursorOverlay;
use super::frame_grabber::{CaptureTransport, FrameGrabber, Grab};
use super::monitors::{self, CaptureRect, MonitorChoice};
use super::windows::{self, WindowArea, WindowPlace};
use super::x_display::XDisplay;
use super::{MonitorInfo, ScreenError};
use crate::media::source::Pacing;
use crate::media::{CaptureTime, I420Frame, SourceError, VideoSource};

/// Frame rate of a screen share unless asked otherwise.
pub const DEFAULT_FPS: u32 = 15;

/// Highest frame rate accepted (more is clamped to it).
const MAX_FPS: u32 = 60;

/// How often the monitor's geometry is looked up again while sharing.
const GEOMETRY_EVERY: Duration = Duration::from_secs(1);

/// How to open an [`X11ScreenSource`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenCaptureOptions {
    /// The X display (`None`: `$DISPLAY`).
    pub display: Option<String>,
    /// Which monitor, as listed by [`super::list_monitors`] (`None`: the primary one, else the
    /// first). Ignored when `window` is set.
    pub monitor: Option<usize>,
    /// A window to share instead of a monitor: its X id, as listed by
    /// [`super::list_windows`].
    pub window: Option<u32>,
    /// Frames per second, 1 to 60 (0 means [`DEFAULT_FPS`]).
    pub fps: u32,
    /// Whether the pointer is drawn in.
    pub draw_cursor: bool,
    /// Whether to read through shared memory when the server allows it (turn off to force plain
    /// `GetImage`, e.g. to compare the two).
    pub use_shared_memory: bool,
}

impl Default for ScreenCaptureOptions {
    fn default() -> Self {
        Self {
            display: None,
            monitor: None,
            window: None,
            fps: DEFAULT_FPS,
            draw_cursor: true,
            use_shared_memory: true,
        }
    }
}

/// What is shared: a monitor (followed by name) or a window (followed by id).
#[derive(Debug)]
enum Target {
    Monitor {
        choice: MonitorChoice,
        /// As last looked up.
        monitor: MonitorInfo,
    },
    Window {
        id: u32,
        /// Its title when the share started (for the description).
        title: String,
        /// Where it was at the last look it was shown.
        area: WindowArea,
        /// Hidden (minimised or off the screen) at the last look: the last picture is repeated.
        hidden: bool,
        /// The picture of the whole window the part on the screen is copied into (BGRA, the
        /// area's canvas size, black elsewhere); reused.
        canvas: Vec<u8>,
    },
}

/// Captures one monitor or one window of an X display; see the [module doc](super) for the
/// contract.
pub struct X11ScreenSource {
    x: XDisplay,
    target: Target,
    rect: CaptureRect,
    grabber: FrameGrabber,
    cursor: CursorOverlay,
    converter: ScreenConverter,
    /// The last frame handed out (a hidden window's picture is this one again).
    last: Option<I420Frame>,
    interval: Duration,
    /// When the geometry was last looked up.
    checked_at: Instant,
}

impl std::fmt::Debug for X11ScreenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X11ScreenSource")
            .field("display", &self.x.name)
            .field("target", &self.target)
            .field("rect", &self.rect)
            .field("transport", &self.grabber.transport())
            .finish_non_exhaustive()
    }
}

impl X11ScreenSource {
    /// Opens monitor `monitor` (`None`: the primary one) of `display` (`None`: `$DISPLAY`) at
    /// `fps` frames per second (0: [`DEFAULT_FPS`]), with the pointer drawn in.
    ///
    /// # Errors
    /// [`ScreenError::NoDisplay`] / [`ScreenError::Connect`] when there is no X server to reach,
    /// [`ScreenError::MonitorOutOfRange`] for a monitor index past the end,
    /// [`ScreenError::WindowGone`] for a window that does not exist,
    /// [`ScreenError::Unsupported`] for a pixel format we do not read,
    /// [`ScreenError::Protocol`] when the server fails to answer.
    pub fn open(
        display: Option<&str>,
        monitor: Option<usize>,
        fps: u32,
    ) -> Result<Self, ScreenError> {
        Self::open_with(&ScreenCaptureOptions {
            display: display.map(str::to_owned),
            monitor,
            fps,
            ..ScreenCaptureOptions::default()
        })
    }

    /// Opens a source as `options` say.
    ///
    /// # Errors
    /// As [`X11ScreenSource::open`].
    pub fn open_with(options: &ScreenCaptureOptions) -> Result<Self, ScreenError> {
        let x = XDisplay::connect(options.display.as_deref())?;
        let (target, rect) = if let Some(id) = options.window {
            let title = windows::title(&x, id).unwrap_or_else(|| format!("window {id:#x}"));
            match windows::window_area(&x, id)? {
                WindowPlace::Shown(area) => (
                    Target::Window {
                        id,
                        title,
                        area,
                        hidden: false,
                        canvas: Vec::new(),
                    },
                    area.grab,
                ),
                WindowPlace::Hidden => return Err(ScreenError::WindowHidden(title)),
            }
        } else {
            let (monitors, root) = monitors::query_with_root(&x)?;
            let mut choice = MonitorChoice::new(options.monitor);
            let monitor = choice.pick(&monitors)?.clone();
            let rect = CaptureRect::of_monitor(&monitor, root)?;
            (Target::Monitor { choice, monitor }, rect)
        };
        let grabber = FrameGrabber::new(&x, options.use_shared_memory)?;
        let cursor = CursorOverlay::new(&x, options.draw_cursor);
        let fps = match options.fps {
            0 => DEFAULT_FPS,
            f => f.min(MAX_FPS),
        };
        tracing::info!(
            display = %x.name,
            target = ?target,
            width = rect.width,
            height = rect.height,
            fps,
            transport = ?grabber.transport(),
            "screen capture opened"
        );
        Ok(Self {
            x,
            target,
            rect,
            grabber,
            cursor,
            converter: ScreenConverter::default(),
            last: None,
            interval: Duration::from_secs(1) / fps,
            checked_at: Instant::now(),
        })
    }

    /// The monitor being captured, as last looked up (`None` when sharing a window).
    #[must_use]
    pub fn monitor(&self) -> Option<&MonitorInfo> {
        match &self.target {
            Target::Monitor { monitor, .. } => Some(monitor),
            Target::Window { .. } => None,
        }
    }

    /// What is shared, in words for the user: `DP-1 (1920x1080)`, `the window "Notes"
    /// (800x600)`.
    #[must_use]
    pub fn description(&self) -> String {
        let (w, h) = self.picture_size();
        match &self.target {
            Target::Monitor { monitor, .. } => format!("{} ({w}x{h})", monitor.name),
            Target::Window { title, .. } => format!("the window \"{title}\" ({w}x{h})"),
        }
    }

    /// How the pixels are read now (shared memory, or through the socket after a fallback).
    #[must_use]
    pub fn transport(&self) -> CaptureTransport {
        self.grabber.transport()
    }

    /// The size frames are sent at now (the monitor's or the window's, even, fitted within
    /// 1920x1080).
    #[must_use]
    pub fn output_size(&self) -> (u32, u32) {
        let (w, h) = self.picture_size();
        fit_within(w, h)
    }

    /// The captured picture's size before scaling: the monitor's rectangle, or the window's
    /// canvas (the whole window, even where it is off the screen).
    fn picture_size(&self) -> (u32, u32) {
        match &self.target {
            Target::Window { area, .. } => area.canvas,
            Target::Monitor { .. } => self.rect.size(),
        }
    }

    /// While the shared window is hidden: its last picture again (stamped now), or a black one
    /// before there was any; never what the screen shows where it was. `None` otherwise.
    fn hidden_window_frame(&self) -> Result<Option<I420Frame>, ScreenError> {
        let Target::Window { hidden: true, .. } = &self.target else {
            return Ok(None);
        };
        let mut frame = match &self.last {
            Some(last) => last.clone(),
            None => {
                let (w, h) = self.output_size();
                I420Frame::black(w, h)
                    .map_err(|e| ScreenError::Unsupported(format!("a {w}x{h} frame: {e}")))?
            }
        };
        frame.capture_time = CaptureTime::now();
        Ok(Some(frame))
    }

    /// Captures one frame (what [`VideoSource::next_frame`] does, with the screen's own error).
    ///
    /// # Errors
    /// [`ScreenError`] when the server fails to answer or the monitor cannot be read.
    pub fn capture(&mut self) -> Result<I420Frame, ScreenError> {
        let window = matches!(self.target, Target::Window { .. });
        if window || self.checked_at.elapsed() >= GEOMETRY_EVERY {
            match self.refresh_geometry() {
                // Mid-reconfiguration a monitor can stick out of the root window for a moment;
                // the old rectangle still reads until the server says it does not fit.
                Err(ScreenError::Unsupported(why)) => {
                    tracing::warn!(%why, "keeping the previous capture rectangle for now");
                }
                other => other?,
            }
        }
        if let Some(frame) = self.hidden_window_frame()? {
            return Ok(frame);
        }
        let mut capture_time = CaptureTime::now();
        if self.grabber.grab(&self.x, self.rect)? == Grab::OutsideScreen {
            // The screen shrank under us: look again and read the new rectangle once.
            self.refresh_geometry()?;
            if let Some(frame) = self.hidden_window_frame()? {
                return Ok(frame);
            }
            capture_time = CaptureTime::now();
            if self.grabber.grab(&self.x, self.rect)? == Grab::OutsideScreen {
                return Err(ScreenError::Protocol {
                    during: "GetImage",
                    reason: format!(
                        "the shared rectangle {:?} is still not on the screen after looking \
                         its geometry up again",
                        self.rect
                    ),
                });
            }
        }
        let bgra = self.grabber.bgra_mut();
        self.cursor.draw(&self.x, self.rect, bgra)?;
        let frame = self.convert(capture_time)?;
        if window {
            self.last = Some(frame.clone());
        }
        Ok(frame)
    }

    /// Looks the monitor (or the window) and the root window up again and follows a change.
    fn refresh_geometry(&mut self) -> Result<(), ScreenError> {
        self.checked_at = Instant::now();
        let rect = match &mut self.target {
            Target::Monitor { choice, monitor } => {
                let (monitors, root) = monitors::query_with_root(&self.x)?;
                let now = choice.pick(&monitors)?;
                let rect = CaptureRect::of_monitor(now, root)?;
                if now != monitor {
                    *monitor = now.clone();
                }
                rect
            }
            Target::Window {
                id, hidden, area, ..
            } => match windows::window_area(&self.x, *id)? {
                WindowPlace::Shown(now) => {
                    *hidden = false;
                    *area = now;
                    now.grab
                }
                WindowPlace::Hidden => {
                    if !*hidden {
                        tracing::info!("the shared window is hidden; repeating its picture");
                    }
                    *hidden = true;
                    self.rect
                }
            },
        };
        if rect != self.rect {
            tracing::info!(
                from = ?self.rect,
                to = ?rect,
                "what is shared changed size or place"
            );
            self.rect = rect;
        }
        Ok(())
    }

    /// The grabbed BGRA picture as an I420 frame at the output size (for a window, copied into
    /// the picture of the whole window first).
    fn convert(&mut self, capture_time: CaptureTime) -> Result<I420Frame, ScreenError> {
        let grabbed = self.grabber.bgra_mut();
        let ((w, h), bgra): ((u32, u32), &[u8]) = match &mut self.target {
            Target::Monitor { .. } => (self.rect.size(), grabbed),
            Target::Window { area, canvas, .. } => {
                place_in_canvas(grabbed, area, canvas);
                (area.canvas, canvas.as_slice())
            }
        };
        self.converter
            .convert(bgra, (w, h, w * 4), ByteOrder::Bgrx, capture_time)
    }
}

/// Copies the grabbed part of a window (`grabbed`, `area.grab`'s size, BGRA) into `canvas` (the
/// whole window's picture, `area.canvas`'s size) at `area.offset`, black around it. The canvas
/// is resized (and cleared) when the window's size changed; otherwise only what the grab does
/// not cover is blackened again.
fn place_in_canvas(grabbed: &[u8], area: &WindowArea, canvas: &mut Vec<u8>) {
    const BLACK: [u8; 4] = [0, 0, 0, 255];
    let (cw, ch) = (area.canvas.0 as usize, area.canvas.1 as usize);
    let (gw, gh) = (usize::from(area.grab.width), usize::from(area.grab.height));
    let (ox, oy) = (area.offset.0 as usize, area.offset.1 as usize);
    let covers_all = (gw, gh) == (cw, ch);
    if canvas.len() != cw * ch * 4 || !covers_all {
        canvas.clear();
        canvas.extend(BLACK.iter().copied().cycle().take(cw * ch * 4));
    }
    for (row, src) in grabbed.chunks_exact(gw * 4).take(gh).enumerate() {
        let y = oy + row;
        if y >= ch {
            break;
        }
        let start = (y * cw + ox) * 4;
        let len = src.len().min((cw - ox.min(cw)) * 4);
        canvas[start..start + len].copy_from_slice(&src[..len]);
    }
}

impl VideoSource for X11ScreenSource {
    fn name(&self) -> String {
        "screen".into()
    }

    fn pacing(&self) -> Pacing {
        Pacing::Interval(self.interval)
    }

    fn next_frame(&mut self) -> Result<I420Frame, SourceError> {
        Ok(self.capture()?)
    }
}
