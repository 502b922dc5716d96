//! State the [`PeerLink`](super::PeerLink) shares with the connection's event handler and its
//! poll tasks ([`Shared`]), and the event channel they all report on ([`EventSink`]).
//!
//! Contract: [`Shared`] never holds the `PeerConnection` (or the tasks would keep it alive after
//! the link is dropped). Every critical section on its mutexes is a single assignment, take or
//! clone, so none is held across an `await` and a poisoned lock is safe to take over
//! ([`lock`]). Once [`EventSink::close_with`] has run, nothing more is sent.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc::UnboundedSender;
use webrtc::media_stream::track_remote::TrackRemote;

use super::events::{ConnectionState, PeerEvent};
use super::inlet::MediaInlet;
use crate::api::VideoRole;

/// The msid stream id prefix of a Confab screen track (`confab-screen-<8 hex>`): how a receiver
/// knows a track is a screen without waiting for the media-state message.
pub(crate) const SCREEN_STREAM_PREFIX: &str = "confab-screen-";

pub(super) fn library_error(context: &str, e: &webrtc::error::Error) -> String {
    format!("{context}: {e}")
}

/// Takes a std mutex even if a panicking thread poisoned it: the guarded data stays consistent
/// because every critical section here is a single assignment or take.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The event channel; `None` once closed so that nothing is sent after [`PeerLink::close`].
pub(super) struct EventSink(pub(super) Mutex<Option<UnboundedSender<PeerEvent>>>);

impl EventSink {
    pub(super) fn send(&self, event: PeerEvent) {
        if let Some(tx) = lock(&self.0).as_ref() {
            // A dropped receiver means the owner stopped listening; nothing to do about it.
            let _ = tx.send(event);
        }
    }

    /// Sends `last` (if any) and closes, atomically with respect to other senders.
    pub(super) fn close_with(&self, last: Option<PeerEvent>) {
        let mut tx = lock(&self.0);
        if let (Some(tx), Some(last)) = (tx.as_ref(), last) {
            let _ = tx.send(last);
        }
        tx.take();
    }
}

/// A remote video track, for sending PLI.
pub(super) struct RemoteVideo {
    pub(super) track: Arc<dyn TrackRemote>,
    pub(super) ssrc: u32,
}

/// Values from our current local description, used to tag local candidates.
#[derive(Default, Clone)]
pub(super) struct LocalIce {
    pub(super) first_mid: Option<String>,
    pub(super) first_index: u16,
    pub(super) ufrag: Option<String>,
    /// The description itself (which SSRCs it names: `screen_track`).
    pub(super) description: String,
}

/// State shared with the connection's event handler and the poll loops. It must never hold the
/// `PeerConnection`, or the loops would keep it alive after the link is dropped.
pub(super) struct Shared {
    pub(super) sink: EventSink,
    pub(super) inlet: MediaInlet,
    pub(super) connected: AtomicBool,
    pub(super) closed: AtomicBool,
    pub(super) stable: AtomicBool,
    pub(super) chat_open: AtomicBool,
    pub(super) keyframe_requests: AtomicU64,
    /// What the remote's RTCP reports say about our audio (`loss_report`).
    pub(super) reported_loss: super::loss_report::ReportedLoss,
    /// What the retransmission guard let through and refused (`rtx_guard`).
    pub(super) rtx: super::rtx_guard::RtxCounters,
    /// What the pacer refused (`pacer`).
    pub(super) pacer: super::pacer::PacerCounters,
    /// How long a NACKed packet takes to be repaired (`nack`), for the frame assembler's wait.
    pub(super) repair_time: super::nack::RepairTimeCell,
    pub(super) last_state: Mutex<Option<ConnectionState>>,
    /// The remote's camera track: the first video track that is not a screen.
    pub(super) remote_video: Mutex<Option<RemoteVideo>>,
    /// The remote's screen track, while it shares.
    pub(super) remote_screen: Mutex<Option<RemoteVideo>>,
    /// The stream id the remote announced for its screen (data-channel media state).
    pub(super) remote_screen_stream: Mutex<Option<String>>,
    pub(super) local_ice: Mutex<LocalIce>,
    pub(super) tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Shared {
    pub(super) fn emit(&self, event: PeerEvent) {
        self.sink.send(event);
    }

    pub(super) fn set_connection_state(&self, state: ConnectionState) {
        self.connected
            .store(state == ConnectionState::Connected, Ordering::Release);
        let mut last = lock(&self.last_state);
        if *last != Some(state) {
            *last = Some(state);
            drop(last);
            self.emit(PeerEvent::Connection(state));
        }
    }

    pub(super) fn set_stable(&self, stable: bool) {
        if self.stable.swap(stable, Ordering::AcqRel) != stable {
            self.emit(PeerEvent::SignalingStable(stable));
        }
    }

    /// Which of the remote's pictures a packet of `track` (in msid stream `stream`, from
    /// `ssrc`) belongs to: its screen if the stream is a Confab screen stream
    /// ([`SCREEN_STREAM_PREFIX`]) or the one it announced; otherwise its camera if no other
    /// track is the camera yet; otherwise none (a second video track not yet announced as a
    /// screen: dropped, never mixed into the camera's decoder).
    pub(super) fn video_role(
        &self,
        track: &Arc<dyn TrackRemote>,
        stream: &str,
        ssrc: u32,
    ) -> Option<VideoRole> {
        let announced = lock(&self.remote_screen_stream).as_deref() == Some(stream);
        let (slot, role) = if stream.starts_with(SCREEN_STREAM_PREFIX) || announced {
            (&self.remote_screen, VideoRole::Screen)
        } else {
            (&self.remote_video, VideoRole::Camera)
        };
        let mut current = lock(slot);
        match current.as_ref() {
            Some(v) if Arc::ptr_eq(&v.track, track) && v.ssrc == ssrc => {}
            Some(v) if role == VideoRole::Camera && !Arc::ptr_eq(&v.track, track) => return None,
            _ => {
                *current = Some(RemoteVideo {
                    track: Arc::clone(track),
                    ssrc,
                });
            }
        }
        Some(role)
    }

    /// `track` ended: it is no longer the camera or the screen.
    pub(super) fn forget_remote_video(&self, track: &Arc<dyn TrackRemote>) {
        for slot in [&self.remote_video, &self.remote_screen] {
            let mut current = lock(slot);
            if current
                .as_ref()
                .is_some_and(|v| Arc::ptr_eq(&v.track, track))
            {
                current.take();
            }
        }
    }

    pub(super) fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let _ = self.spawn_abortable(fut);
    }

    /// As [`Shared::spawn`] (closing the link ends it), with a handle to end it sooner.
    pub(super) fn spawn_abortable(
        &self,
        fut: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::AbortHandle {
        let handle = tokio::spawn(fut);
        let abort = handle.abort_handle();
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
        abort
    }
}
