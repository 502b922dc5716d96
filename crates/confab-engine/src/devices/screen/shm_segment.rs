//! One MIT-SHM segment the X server writes screen images into.
//!
//! With MIT-SHM 1.2 the server creates the segment (`CreateSegment`) and passes us its file
//! descriptor over the connection's Unix socket, so there is no System V `shmget` and no
//! permission dance; a connection over TCP (or a server that refuses) simply fails here and the
//! caller reads with plain `GetImage` instead. We map the descriptor read-only; `ShmGetImage`
//! makes the server copy the rectangle into it, and once its reply has arrived the bytes are
//! ours to read until the next request. Mapping is the one `unsafe` step, in [`map_segment`].
//!
//! The segment is released on the server by [`ShmSegment::detach`] (or when the connection
//! closes); the mapping when the value drops.

use std::fs::File;
use std::os::fd::OwnedFd;

use memmap2::{Mmap, MmapOptions};
use x11rb::connection::Connection;
use x11rb::errors::ReplyError;
use x11rb::protocol::shm::{ConnectionExt as _, Seg};
use x11rb::protocol::xproto::{ImageFormat, Window};
use x11rb::rust_connection::RustConnection;

use super::ScreenError;
use super::monitors::CaptureRect;

/// Why an SHM read failed: the rectangle no longer fits the screen (look the geometry up again)
/// or anything else (stop using SHM).
#[derive(Debug)]
pub(super) enum ShmFailure {
    /// The server answered `BadMatch`: the rectangle is not (all) on the root window.
    OutsideScreen,
    /// Any other failure, in words.
    Other(ScreenError),
}

/// A server-created shared-memory segment, mapped read-only.
pub(super) struct ShmSegment {
    /// The segment's id on the server.
    seg: Seg,
    /// Our view of it.
    map: Mmap,
}

impl std::fmt::Debug for ShmSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmSegment")
            .field("seg", &self.seg)
            .field("len", &self.map.len())
            .finish()
    }
}

impl ShmSegment {
    /// Asks the server for a segment of `len` bytes and maps it.
    ///
    /// # Errors
    /// [`ScreenError::Protocol`] if the server refuses or cannot pass the descriptor (e.g. a
    /// TCP connection), [`ScreenError::Unsupported`] if the segment cannot be mapped.
    pub(super) fn create(conn: &RustConnection, len: usize) -> Result<Self, ScreenError> {
        let size = u32::try_from(len)
            .map_err(|_| ScreenError::Unsupported(format!("a {len}-byte shared segment")))?;
        let seg = conn
            .generate_id()
            .map_err(|e| ScreenError::protocol("allocating an SHM segment id", e))?;
        let reply = conn
            .shm_create_segment(seg, size, false)
            .map_err(|e| ScreenError::protocol("MIT-SHM CreateSegment", e))?
            .reply()
            .map_err(|e| ScreenError::protocol("MIT-SHM CreateSegment", e))?;
        let map = map_segment(reply.shm_fd, len).map_err(|e| {
            // The server holds the segment until told otherwise.
            let _ = conn.shm_detach(seg);
            ScreenError::Unsupported(format!("mapping the shared segment: {e}"))
        })?;
        Ok(Self { seg, map })
    }

    /// Bytes in the segment.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// Has the server copy `rect` of `root` (ZPixmap, all planes) into the segment, and returns
    /// the image's bytes (`len` of them, as the caller's pixel layout computes).
    ///
    /// # Errors
    /// [`ShmFailure::OutsideScreen`] on `BadMatch`, [`ShmFailure::Other`] otherwise, including
    /// an image larger than the segment.
    pub(super) fn get_image(
        &mut self,
        conn: &RustConnection,
        root: Window,
        rect: CaptureRect,
        len: usize,
    ) -> Result<&[u8], ShmFailure> {
        if len > self.map.len() {
            return Err(ShmFailure::Other(ScreenError::Unsupported(format!(
                "a {len}-byte image in a {}-byte segment",
                self.map.len()
            ))));
        }
        let cookie = conn
            .shm_get_image(
                root,
                rect.x,
                rect.y,
                rect.width,
                rect.height,
                u32::MAX,
                ImageFormat::Z_PIXMAP.into(),
                self.seg,
                0,
            )
            .map_err(|e| ShmFailure::Other(ScreenError::protocol("MIT-SHM GetImage", e)))?;
        match cookie.reply() {
            Ok(_) => Ok(&self.map[..len]),
            Err(ReplyError::X11Error(e)) if e.error_kind == x11rb::protocol::ErrorKind::Match => {
                Err(ShmFailure::OutsideScreen)
            }
            Err(e) => Err(ShmFailure::Other(ScreenError::protocol(
                "MIT-SHM GetImage",
                e,
            ))),
        }
    }

    /// Releases the segment on the server (the mapping goes when `self` drops).
    pub(super) fn detach(self, conn: &RustConnection) {
        if let Err(e) = conn.shm_detach(self.seg) {
            tracing::debug!(%e, "MIT-SHM Detach failed (the connection is going)");
        }
    }
}

/// Maps the first `len` bytes of the segment behind `fd` read-only (the descriptor is closed
/// afterwards; the mapping stays valid).
#[allow(
    unsafe_code,
    reason = "mapping shared memory is unsafe by nature; see SAFETY"
)]
fn map_segment(fd: OwnedFd, len: usize) -> std::io::Result<Mmap> {
    let file = File::from(fd);
    let have = file.metadata()?.len();
    if have < len as u64 {
        return Err(std::io::Error::other(format!(
            "the segment has {have} bytes, {len} were asked for"
        )));
    }
    // SAFETY: `Mmap` hands out `&[u8]`, so the bytes must not change while a borrow lives, and
    // must exist. The file is a segment the X server created for this connection (its
    // descriptor came to us alone) and is at least `len` bytes long (checked just above), so no
    // access falls past its end. The server writes into it only while carrying out our own
    // `ShmGetImage`; `ShmSegment::get_image` takes `&mut self` and lends the bytes out only after
    // that request's reply has arrived, so no later request of ours can run while they are
    // borrowed. (Another X client could name our segment id on purpose; an X client that hostile
    // can already read and fake the whole screen.) The mapping is read-only: we never write.
    unsafe { MmapOptions::new().len(len).map(&file) }
}
