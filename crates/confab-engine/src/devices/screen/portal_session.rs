//! The ScreenCast portal session of a Wayland screen share: the desktop asked for a screen or a
//! window (it shows its own dialog), the PipeWire stream it grants, the session kept open while
//! sharing and closed after.
//!
//! Owns the `confab-portal` thread: a one-thread tokio runtime that speaks D-Bus to
//! `xdg-desktop-portal` (ashpd on zbus). It asks once — `CreateSession`, `SelectSources`
//! (monitors, and windows where the portal offers them; the pointer drawn in where it can be;
//! nothing remembered between shares), `Start` (the dialog), `OpenPipeWireRemote` — hands the
//! grant back, then waits until the share stops here ([`PortalSession`] dropped: the session is
//! closed) or the desktop closes the session (its "stop sharing" indicator, the window closed):
//! [`PortalSession::is_closed`] then turns true.
//!
//! Contract: [`PortalSession::open`] blocks until the user chose (or cancelled) in the dialog.
//! Errors are typed: [`ScreenError::NoPortal`] when nothing answers for the ScreenCast portal on
//! the session bus (checked first, by reading its properties), [`ScreenError::PortalCancelled`]
//! when the user closed the dialog, [`ScreenError::PortalFailed`] for anything else the portal
//! refuses.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use ashpd::desktop::PersistMode;
use ashpd::desktop::screencast::{CursorMode, Screencast, SelectSourcesOptions, SourceType};
use futures_util::StreamExt;
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::ScreenError;

/// How long one D-Bus call to the portal may take (not the user's time in its dialog).
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What the portal granted: one PipeWire stream and the connection to read it through.
#[derive(Debug)]
pub(super) struct PortalGrant {
    /// The PipeWire node of the shared screen or window.
    pub(super) node_id: u32,
    /// A connection to the PipeWire daemon that may read that node (and nothing else).
    pub(super) remote: OwnedFd,
    /// The stream's size as the portal states it, when it does.
    pub(super) size: Option<(u32, u32)>,
    /// What the user picked: "a monitor", "a window" or "a virtual screen".
    pub(super) kind: &'static str,
}

/// An open ScreenCast session; closed when dropped.
#[derive(Debug)]
pub(super) struct PortalSession {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    closed: Arc<AtomicBool>,
}

impl PortalSession {
    /// Asks the desktop for a screen or window to share (its dialog shows now) and opens the
    /// PipeWire stream it grants.
    ///
    /// # Errors
    /// See the [module docs](self).
    pub(super) fn open() -> Result<(Self, PortalGrant), ScreenError> {
        let (result_tx, result_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let closed = Arc::new(AtomicBool::new(false));
        let closed_by_desktop = Arc::clone(&closed);
        let thread = std::thread::Builder::new()
            .name("confab-portal".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = result_tx.send(Err(ScreenError::PortalFailed(format!(
                            "cannot start the D-Bus runtime: {e}"
                        ))));
                        return;
                    }
                };
                runtime.block_on(run_session(result_tx, stop_rx, closed_by_desktop));
            })
            .map_err(|e| ScreenError::PortalFailed(format!("cannot start a thread: {e}")))?;
        let mut session = Self {
            stop: Some(stop_tx),
            thread: Some(thread),
            closed,
        };
        match result_rx.recv() {
            Ok(Ok(grant)) => Ok((session, grant)),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                session.stop.take();
                Err(ScreenError::PortalFailed(
                    "the portal thread stopped without an answer".to_owned(),
                ))
            }
        }
    }

    /// Whether the desktop closed the session (the share must end).
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

impl Drop for PortalSession {
    /// Closes the session (the desktop's "sharing" indicator goes away) and ends the thread.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            warn!("the portal thread panicked");
        }
    }
}

/// The whole session on the `confab-portal` thread: ask, answer on `result`, then wait for
/// `stop` or the desktop's `Closed`.
async fn run_session(
    result: std::sync::mpsc::Sender<Result<PortalGrant, ScreenError>>,
    stop: oneshot::Receiver<()>,
    closed: Arc<AtomicBool>,
) {
    // A connection of this session's own: ashpd's shared one would live on the first share's
    // runtime, which is gone by the second share.
    // Method calls time out (a wedged portal must not hang the share's start or end); the
    // user's time in the dialog is not one: `Start` returns at once and answers by signal.
    let connection = match ashpd::zbus::connection::Builder::session() {
        Ok(builder) => builder.method_timeout(CALL_TIMEOUT).build().await,
        Err(e) => Err(e),
    };
    let proxy = match connection {
        Ok(connection) => Screencast::with_connection(connection).await,
        Err(e) => Err(e.into()),
    };
    let proxy = match proxy {
        Ok(p) => p,
        Err(e) => {
            let _ = result.send(Err(ScreenError::NoPortal(e.to_string())));
            return;
        }
    };
    // Reading a property is the first request the portal must answer itself (the proxy's
    // version falls back to 1 when nothing answers): without a portal, this fails.
    let offered = match proxy.available_source_types().await {
        Ok(t) => t,
        Err(e) => {
            let _ = result.send(Err(ScreenError::NoPortal(e.to_string())));
            return;
        }
    };
    let cursor = match proxy.available_cursor_modes().await {
        Ok(modes) if modes.contains(CursorMode::Embedded) => CursorMode::Embedded,
        _ => CursorMode::Hidden,
    };
    let session = match proxy.create_session(Default::default()).await {
        Ok(s) => s,
        Err(e) => {
            let _ = result.send(Err(refused(e)));
            return;
        }
    };
    // Subscribed before the share starts, so a close right after it is not missed.
    let closed_signal = session.receive_closed().await;
    let mut sources = ashpd::enumflags2::BitFlags::from(SourceType::Monitor);
    if offered.contains(SourceType::Window) {
        sources |= SourceType::Window;
    }
    let options = SelectSourcesOptions::default()
        .set_cursor_mode(cursor)
        .set_sources(sources)
        .set_multiple(false)
        .set_persist_mode(PersistMode::DoNot);
    let selected = match proxy.select_sources(&session, options).await {
        Ok(request) => request.response(),
        Err(e) => Err(e),
    };
    if let Err(e) = selected {
        let _ = result.send(Err(refused(e)));
        let _ = close(&session).await;
        return;
    }
    let started = match proxy.start(&session, None, Default::default()).await {
        Ok(request) => request.response(),
        Err(e) => Err(e),
    };
    let streams = match started {
        Ok(s) => s,
        Err(e) => {
            let _ = result.send(Err(refused(e)));
            return;
        }
    };
    let Some(stream) = streams.streams().first() else {
        let _ = result.send(Err(ScreenError::PortalFailed(
            "the desktop granted no screen or window".to_owned(),
        )));
        let _ = close(&session).await;
        return;
    };
    let remote = match proxy
        .open_pipe_wire_remote(&session, Default::default())
        .await
    {
        Ok(fd) => fd,
        Err(e) => {
            let _ = result.send(Err(refused(e)));
            let _ = close(&session).await;
            return;
        }
    };
    let kind = match stream.source_type() {
        Some(SourceType::Window) => "a window",
        Some(SourceType::Virtual) => "a virtual screen",
        _ => "a monitor",
    };
    let size = stream
        .size()
        .and_then(|(w, h)| Some((u32::try_from(w).ok()?, u32::try_from(h).ok()?)));
    info!(
        node = stream.pipe_wire_node_id(),
        ?size,
        kind,
        "the portal granted a screen"
    );
    let grant = PortalGrant {
        node_id: stream.pipe_wire_node_id(),
        remote,
        size,
        kind,
    };
    if result.send(Ok(grant)).is_err() {
        let _ = close(&session).await;
        return;
    }
    match closed_signal {
        Ok(mut closed_by_desktop) => {
            tokio::select! {
                _ = closed_by_desktop.next() => {
                    info!("the desktop closed the screen-cast session");
                    closed.store(true, Ordering::Relaxed);
                }
                _ = stop => {
                    let _ = close(&session).await;
                }
            }
        }
        Err(e) => {
            warn!(error = %e, "cannot watch the screen-cast session; it ends with the share");
            let _ = stop.await;
            let _ = close(&session).await;
        }
    }
}

/// Closes `session`, giving up after [`CALL_TIMEOUT`].
async fn close(
    session: &ashpd::desktop::Session<Screencast>,
) -> Result<(), tokio::time::error::Elapsed> {
    tokio::time::timeout(CALL_TIMEOUT, session.close())
        .await
        .map(|closed| {
            if let Err(e) = closed {
                warn!(error = %e, "closing the screen-cast session");
            }
        })
}

/// A request the portal answered with an error: the user's cancel, or a refusal.
fn refused(e: ashpd::Error) -> ScreenError {
    match e {
        ashpd::Error::Response(ashpd::desktop::ResponseError::Cancelled) => {
            ScreenError::PortalCancelled
        }
        ashpd::Error::PortalNotFound(_) => ScreenError::NoPortal(e.to_string()),
        other => ScreenError::PortalFailed(other.to_string()),
    }
}
