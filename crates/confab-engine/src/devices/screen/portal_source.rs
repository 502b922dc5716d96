//! [`PortalScreenSource`]: the screen or window the desktop's ScreenCast portal grants (Wayland,
//! and any desktop running `xdg-desktop-portal`), as a paced [`VideoSource`].
//!
//! Opening it shows the desktop's own dialog (the user picks a monitor or a window there; the
//! app cannot choose for them on Wayland) through [`PortalSession`], then reads the granted
//! PipeWire stream through [`PipeWireStream`]. Compositors send a picture when something
//! changed; the source is paced like the X11 one (an interval at the share's frame rate) and
//! hands out the newest picture, or the last one again when nothing changed, so the encoder
//! always has a picture for a keyframe and the far side's frame rate does not read as a freeze.
//!
//! Contract: as [`super::X11ScreenSource`]'s: I420, at most 1920x1080, stamped when the
//! picture arrived; `next_frame` never blocks. [`PortalScreenSource::open`] (blocking: the
//! dialog, then the first picture) waits for the first picture up to [`FIRST_PICTURE`]
//! ([`ScreenError::NoPicture`] after). Capture ends with [`ScreenError::PortalEnded`] when the
//! desktop closes the session (its "stop sharing" indicator, the shared window closed) or the
//! stream is unlinked, and with the stream's error when PipeWire fails. Dropping the source
//! stops the stream, then closes the session (the desktop's indicator goes away).

use std::time::{Duration, Instant};

use super::ScreenError;
use super::pipewire_stream::PipeWireStream;
use super::portal_session::PortalSession;
use crate::media::drop_oldest::{self, DropOldestReceiver};
use crate::media::source::Pacing;
use crate::media::{CaptureTime, I420Frame, SourceError, VideoSource};

/// How long the first picture may take after the user chose.
pub const FIRST_PICTURE: Duration = Duration::from_secs(10);

/// The screen or window granted by the ScreenCast portal; see the [module docs](self).
#[derive(Debug)]
pub struct PortalScreenSource {
    // Dropped in this order: the stream first (it reads through the session's remote), then
    // the session.
    stream: PipeWireStream,
    session: PortalSession,
    frames: DropOldestReceiver<I420Frame>,
    /// The last picture handed out (repeated while nothing changes).
    last: Option<I420Frame>,
    interval: Duration,
    kind: &'static str,
}

impl PortalScreenSource {
    /// Asks the desktop for a screen or window (its dialog shows now and this waits for the
    /// user), starts reading it at `fps` pictures a second (0: 15) and waits for its first
    /// picture.
    ///
    /// # Errors
    /// [`ScreenError::NoPortal`] when no ScreenCast portal runs, [`ScreenError::PortalCancelled`]
    /// when the user cancels the dialog, [`ScreenError::PortalFailed`] when the portal refuses,
    /// [`ScreenError::PipeWire`] when the granted stream cannot be read,
    /// [`ScreenError::NoPicture`] when it sends nothing within [`FIRST_PICTURE`].
    pub fn open(fps: u32) -> Result<Self, ScreenError> {
        let fps = match fps {
            0 => super::DEFAULT_FPS,
            f => f.min(60),
        };
        let (session, grant) = PortalSession::open()?;
        let (tx, frames) = drop_oldest::channel(1);
        let stream = PipeWireStream::start(grant.remote, grant.node_id, fps, grant.size, tx)?;
        let mut source = Self {
            stream,
            session,
            frames,
            last: None,
            interval: Duration::from_secs(1) / fps,
            kind: grant.kind,
        };
        source.wait_for_first_picture()?;
        Ok(source)
    }

    /// Waits (here, while opening, which runs off the session's task) for the first picture,
    /// so that `next_frame` never blocks.
    fn wait_for_first_picture(&mut self) -> Result<(), ScreenError> {
        let deadline = Instant::now() + FIRST_PICTURE;
        loop {
            if let Ok(frame) = self.frames.recv_timeout(Duration::from_millis(100)) {
                self.last = Some(frame);
                return Ok(());
            }
            if let Some(why) = self.ended() {
                return Err(why);
            }
            if Instant::now() >= deadline {
                return Err(ScreenError::NoPicture(FIRST_PICTURE.as_secs()));
            }
        }
    }

    /// What is shared, for the UI: "a monitor (chosen in the desktop's dialog)".
    #[must_use]
    pub fn description(&self) -> String {
        format!("{} (chosen in the desktop's dialog)", self.kind)
    }

    /// Why the share must end now, if it must.
    fn ended(&self) -> Option<ScreenError> {
        if self.session.is_closed() {
            return Some(ScreenError::PortalEnded);
        }
        if let Some(why) = self.stream.ended() {
            return Some(why);
        }
        self.stream
            .is_finished()
            .then_some(ScreenError::PortalEnded)
    }
}

impl VideoSource for PortalScreenSource {
    fn name(&self) -> String {
        "screen (portal)".to_owned()
    }

    fn pacing(&self) -> Pacing {
        Pacing::Interval(self.interval)
    }

    fn next_frame(&mut self) -> Result<I420Frame, SourceError> {
        if let Some(why) = self.ended() {
            return Err(why.into());
        }
        if let Ok(frame) = self.frames.try_recv() {
            self.last = Some(frame.clone());
            return Ok(frame);
        }
        // Nothing changed: the last picture again (there is one: `open` waited for it).
        let Some(last) = &self.last else {
            return Err(ScreenError::NoPicture(FIRST_PICTURE.as_secs()).into());
        };
        let mut again = last.clone();
        again.capture_time = CaptureTime::now();
        Ok(again)
    }
}
