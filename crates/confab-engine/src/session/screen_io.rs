//! The session's side of our screen share: opening the capture off the session task, starting
//! and stopping the screen sender, and telling the core (`call_core/screen.rs`) when to add or
//! remove the tracks.
//!
//! Contract:
//! - Opening a capture can take long (an X server round trip, a remote display that does not
//!   answer): it runs on a blocking task and its result comes back through [`ScreenIo::opened`],
//!   so the session keeps handling signaling, peers and ticks meanwhile.
//! - Every request has a generation; a result or a "capture ended" message of an older one (a
//!   share that was replaced or stopped since, or whose call ended) is dropped, never applied to
//!   the current share.
//! - A failure to open leaves any running share as it was and says why
//!   ([`ScreenShareEnd::SourceFailed`]); a share that starts replaces the running one's capture
//!   but keeps its tracks (only the pictures change).

use std::sync::Arc;

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tracing::{info, warn};

use super::Session;
use crate::api::{EngineEvent, ScreenInput, ScreenShareEnd, ScreenShareState};
use crate::outgoing::{Preview, ScreenCapture, SenderThread, open_screen, spawn_screen_sender};
use crate::peer::SCREEN_STREAM_PREFIX;

/// An opened capture (or why not), tagged with its request's generation.
type Opened = (u64, Result<ScreenCapture, String>);
/// Why a sender's capture ended, tagged with its generation.
type Ended = (u64, String);

/// What the session keeps for our screen share.
pub(super) struct ScreenIo {
    /// The latest share request (a newer one, or a stop, makes older results stale).
    generation: u64,
    /// The generation of the running sender.
    sender_generation: u64,
    /// The running capture and encoder.
    sender: Option<SenderThread>,
    /// Captures opened off the session task.
    pub(super) opened: (UnboundedSender<Opened>, UnboundedReceiver<Opened>),
    /// Why a sender's capture ended on its own, tagged with its generation.
    pub(super) ended: (UnboundedSender<Ended>, UnboundedReceiver<Ended>),
}

impl Default for ScreenIo {
    fn default() -> Self {
        Self {
            generation: 0,
            sender_generation: 0,
            sender: None,
            opened: mpsc::unbounded_channel(),
            ended: mpsc::unbounded_channel(),
        }
    }
}

fn failed(detail: String) -> EngineEvent {
    EngineEvent::ScreenShare(ScreenShareState::Ended {
        reason: ScreenShareEnd::SourceFailed { detail },
    })
}

impl Session {
    /// Starts opening `input` for a share (see the module docs); the rest happens in
    /// [`Session::screen_opened`].
    pub(super) fn share_screen(&mut self, input: ScreenInput) {
        if !self.core.in_call() {
            self.emit(failed("join a call to share your screen".to_owned()));
            return;
        }
        self.screen.generation += 1;
        let generation = self.screen.generation;
        let tx = self.screen.opened.0.clone();
        tokio::spawn(async move {
            let opened = tokio::task::spawn_blocking(move || open_screen(&input))
                .await
                .unwrap_or_else(|e| Err(format!("the screen capture could not start: {e}")));
            let _ = tx.send((generation, opened));
        });
    }

    /// Stops our share (and any capture still being opened).
    pub(super) async fn stop_sharing(&mut self) {
        self.screen.generation += 1;
        let actions = self.core.stop_screen_share(ScreenShareEnd::Stopped);
        self.execute(actions).await;
    }

    /// A capture asked for by [`Session::share_screen`] opened (or not).
    pub(super) async fn screen_opened(
        &mut self,
        generation: u64,
        opened: Result<ScreenCapture, String>,
    ) {
        if generation != self.screen.generation || !self.core.in_call() {
            // Stopped, replaced or the call ended meanwhile: the capture (if any) goes.
            return;
        }
        let capture = match opened {
            Ok(capture) => capture,
            Err(detail) => {
                warn!(%detail, "cannot share the screen");
                self.emit(failed(detail));
                return;
            }
        };
        let source = capture.description.clone();
        let preview = self.config.preview.then(|| Preview {
            frames: self.video.clone(),
            repaint: Arc::clone(&self.repaint),
        });
        // The old capture stops before the new one is used (one sender at a time).
        self.screen.sender = None;
        let ended = self.screen.ended.0.clone();
        let sender =
            spawn_screen_sender(capture, Arc::clone(&self.outgoing), preview, move |why| {
                let _ = ended.send((generation, why));
            });
        match sender {
            Ok(sender) => {
                self.screen.sender = Some(sender);
                self.screen.sender_generation = generation;
            }
            Err(e) => {
                let detail = e.to_string();
                let actions = self.core.stop_screen_share(ScreenShareEnd::SourceFailed {
                    detail: detail.clone(),
                });
                if actions.is_empty() {
                    // Nothing was shared yet: say it here (the core said it otherwise).
                    self.emit(failed(detail));
                }
                self.execute(actions).await;
                return;
            }
        }
        self.outgoing.set_sharing(true);
        self.outgoing.set_target_bps(self.video_target_bps);
        self.outgoing.request_screen_keyframe();
        let stream = format!("{SCREEN_STREAM_PREFIX}{:08x}", rand_u32());
        let actions = self.core.start_screen_share(&stream);
        self.execute(actions).await;
        info!(%source, "sharing the screen");
        self.emit(EngineEvent::ScreenShare(ScreenShareState::Sharing {
            source,
        }));
    }

    /// The capture of the sender of `generation` ended on its own: the share stops, if that
    /// sender is still the running one.
    pub(super) async fn screen_capture_ended(&mut self, generation: u64, why: String) {
        if generation != self.screen.sender_generation || self.screen.sender.is_none() {
            return;
        }
        let actions = self
            .core
            .stop_screen_share(ScreenShareEnd::SourceFailed { detail: why });
        self.execute(actions).await;
    }

    /// Stops our screen's capture and encoder (the core has decided the share ended).
    pub(super) fn stop_screen_sender(&mut self) {
        self.screen.sender = None;
        self.outgoing.set_sharing(false);
        self.outgoing.set_target_bps(self.video_target_bps);
    }
}

/// A random value for a screen's stream id (unique per share, not a secret).
fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish() as u32
}
