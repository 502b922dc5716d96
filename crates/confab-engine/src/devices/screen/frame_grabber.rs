//! One rectangle of the root window into a packed BGRA buffer, by MIT-SHM or plain `GetImage`.
//!
//! [`FrameGrabber`] prefers shared memory: the server copies the pixels into a segment we have
//! mapped, so nothing travels through the socket. It keeps that segment between frames and
//! makes a new one only when the rectangle outgrows it. When the server does not offer MIT-SHM
//! 1.2, refuses a segment, or fails a shared read for any reason but the rectangle (a TCP
//! display, a sandbox), it falls back for good to plain `GetImage`, where the image comes in the
//! reply, and says so once in the log. A rectangle that no longer fits the screen (`BadMatch`,
//! after a RandR shrink) is reported as [`Grab::OutsideScreen`] so the caller can look the
//! geometry up again.

use x11rb::errors::ReplyError;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};

use super::ScreenError;
use super::monitors::CaptureRect;
use super::pixel_layout::PixelLayout;
use super::shm_segment::{ShmFailure, ShmSegment};
use super::x_display::XDisplay;

/// How the screen's pixels reach us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureTransport {
    /// MIT-SHM: the server copies into shared memory (the normal case on a local display).
    SharedMemory,
    /// Plain `GetImage`: the picture comes through the socket (remote displays, no MIT-SHM).
    GetImage,
}

/// What one grab gave.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Grab {
    /// The BGRA buffer holds the rectangle's picture.
    Done,
    /// The rectangle is not all on the root window any more; nothing was read.
    OutsideScreen,
}

/// Reads rectangles of the root window into a reused BGRA buffer.
#[derive(Debug)]
pub(super) struct FrameGrabber {
    /// How the root window's pixels are laid out.
    layout: PixelLayout,
    /// The segment while SHM is in use; `None` before the first grab or after falling back.
    shm: Option<ShmSegment>,
    /// Whether SHM is still to be used.
    use_shm: bool,
    /// The picture of the last grab, `width * height * 4` bytes.
    bgra: Vec<u8>,
}

impl FrameGrabber {
    /// A grabber for `x`; `allow_shm: false` (or a server without MIT-SHM 1.2) reads with plain
    /// `GetImage` only.
    ///
    /// # Errors
    /// [`ScreenError::Unsupported`] when the screen's pixel layout is not one we read.
    pub(super) fn new(x: &XDisplay, allow_shm: bool) -> Result<Self, ScreenError> {
        let layout = x.pixel_layout()?;
        let use_shm = allow_shm && x.extensions.shm_fd_segments;
        if allow_shm && !use_shm {
            tracing::info!(
                display = %x.name,
                "the X server offers no MIT-SHM 1.2; screen capture reads through the socket"
            );
        }
        Ok(Self {
            layout,
            shm: None,
            use_shm,
            bgra: Vec::new(),
        })
    }

    /// How the next grab will read.
    pub(super) fn transport(&self) -> CaptureTransport {
        if self.use_shm {
            CaptureTransport::SharedMemory
        } else {
            CaptureTransport::GetImage
        }
    }

    /// The picture of the last [`Grab::Done`], and the buffer the cursor is drawn into.
    pub(super) fn bgra_mut(&mut self) -> &mut [u8] {
        &mut self.bgra
    }

    /// Reads `rect` of the root window into the BGRA buffer.
    ///
    /// # Errors
    /// [`ScreenError::Protocol`] when the server fails the read (or the connection is gone).
    pub(super) fn grab(&mut self, x: &XDisplay, rect: CaptureRect) -> Result<Grab, ScreenError> {
        let (w, h) = rect.size();
        let len = self.layout.image_len(w, h);
        if self.use_shm {
            match self.grab_shm(x, rect, len) {
                Ok(grab) => return Ok(grab),
                Err(e) => {
                    tracing::info!(
                        display = %x.name,
                        error = %e,
                        "screen capture through shared memory failed; reading through the socket"
                    );
                    self.use_shm = false;
                    if let Some(seg) = self.shm.take() {
                        seg.detach(&x.conn);
                    }
                }
            }
        }
        let cookie = x
            .conn
            .get_image(
                ImageFormat::Z_PIXMAP,
                x.root,
                rect.x,
                rect.y,
                rect.width,
                rect.height,
                u32::MAX,
            )
            .map_err(|e| ScreenError::protocol("GetImage", e))?;
        match cookie.reply() {
            Ok(reply) => {
                self.layout
                    .copy_to_bgra(&reply.data, w, h, &mut self.bgra)?;
                Ok(Grab::Done)
            }
            Err(ReplyError::X11Error(e)) if e.error_kind == x11rb::protocol::ErrorKind::Match => {
                Ok(Grab::OutsideScreen)
            }
            Err(e) => Err(ScreenError::protocol("GetImage", e)),
        }
    }

    /// One SHM read; an `Err` means "stop using SHM".
    fn grab_shm(
        &mut self,
        x: &XDisplay,
        rect: CaptureRect,
        len: usize,
    ) -> Result<Grab, ScreenError> {
        if self.shm.as_ref().is_none_or(|s| s.len() < len) {
            if let Some(old) = self.shm.take() {
                old.detach(&x.conn);
            }
            let seg = ShmSegment::create(&x.conn, len)?;
            tracing::debug!(bytes = len, "new MIT-SHM segment for screen capture");
            self.shm = Some(seg);
        }
        let Some(seg) = self.shm.as_mut() else {
            return Err(ScreenError::Unsupported("no shared segment".into()));
        };
        match seg.get_image(&x.conn, x.root, rect, len) {
            Ok(raw) => {
                let (w, h) = rect.size();
                self.layout.copy_to_bgra(raw, w, h, &mut self.bgra)?;
                Ok(Grab::Done)
            }
            Err(ShmFailure::OutsideScreen) => Ok(Grab::OutsideScreen),
            Err(ShmFailure::Other(e)) => Err(e),
        }
    }
}
