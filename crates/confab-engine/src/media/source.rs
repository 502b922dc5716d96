//! Capture sources and the named threads that drive them.
//!
//! A [`VideoSource`] yields [`I420Frame`]s, an [`AudioSource`] yields 48 kHz mono [`AudioFrame`]s
//! of 10 or 20 ms; each stamps the [`CaptureTime`](super::CaptureTime) of the frame. A source
//! either blocks until the device has a frame ([`Pacing::SelfPaced`], e.g. a camera or a
//! microphone callback queue) or produces one immediately and lets the runner pace it
//! ([`Pacing::Interval`], e.g. synthetic and file sources).
//!
//! [`spawn_video`] / [`spawn_audio`] move a source onto its own named thread and hand frames over
//! a [`super::drop_oldest`] channel, so a slow consumer loses the oldest frames
//! instead of stalling capture or queueing latency. Device handles that are not `Send` (nokhwa's
//! `Camera`) use [`spawn_video_with`] / [`spawn_audio_with`], which build the source on the
//! capture thread from a `Send` factory and keep it there; the traits themselves do not require
//! `Send`. The returned
//! [`CaptureThread`] stops and joins the thread when dropped; a source error ends the thread and is
//! returned once by [`CaptureThread::stop`]. Underneath, a capture thread is the engine's one
//! stoppable named-thread handle (`crate::worker::Worker`).

use std::time::{Duration, Instant};

use super::drop_oldest::{self, DropCounter, DropOldestReceiver, SendOutcome};
use super::frame::{AudioFrame, I420Frame};
use crate::worker::{Worker, WorkerError};

/// Errors from a capture source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading a file failed.
    #[error("I/O error reading {what}: {source}")]
    Io {
        /// What was being read.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The input is not in a format the source understands.
    #[error("unsupported or malformed input: {0}")]
    Format(String),
    /// A capture device failed or disappeared.
    #[error("capture device error: {0}")]
    Device(String),
    /// The source has no more frames and does not loop.
    #[error("end of stream")]
    EndOfStream,
    /// The capture thread could not be started.
    #[error("could not start capture thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// The capture thread panicked.
    #[error("capture thread panicked")]
    Panicked,
}

impl From<WorkerError> for SourceError {
    fn from(e: WorkerError) -> Self {
        match e {
            WorkerError::Spawn { source, .. } => Self::Spawn(source),
            WorkerError::Panicked { .. } => Self::Panicked,
        }
    }
}

/// How a source's frames are paced in real time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// `next_frame` blocks until the device delivers a frame (camera, microphone).
    SelfPaced,
    /// `next_frame` returns at once; the runner calls it once per interval.
    Interval(Duration),
}

/// A source of I420 video frames (camera, synthetic pattern, Y4M file).
pub trait VideoSource {
    /// Short human-readable name, used for the thread name and logs.
    fn name(&self) -> String;
    /// How the runner should pace calls to [`VideoSource::next_frame`].
    fn pacing(&self) -> Pacing;
    /// The next frame, stamped with its capture time.
    ///
    /// # Errors
    /// A [`SourceError`] ends capture.
    fn next_frame(&mut self) -> Result<I420Frame, SourceError>;
}

/// A source of 48 kHz mono audio in 10 or 20 ms frames (microphone, tone, WAV file).
pub trait AudioSource {
    /// Short human-readable name, used for the thread name and logs.
    fn name(&self) -> String;
    /// How the runner should pace calls to [`AudioSource::next_frame`].
    fn pacing(&self) -> Pacing;
    /// The next frame (480 or 960 samples), stamped with the capture time of its first sample.
    ///
    /// # Errors
    /// A [`SourceError`] ends capture.
    fn next_frame(&mut self) -> Result<AudioFrame, SourceError>;
}

impl<S: VideoSource + ?Sized> VideoSource for Box<S> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn pacing(&self) -> Pacing {
        (**self).pacing()
    }
    fn next_frame(&mut self) -> Result<I420Frame, SourceError> {
        (**self).next_frame()
    }
}

impl<S: AudioSource + ?Sized> AudioSource for Box<S> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn pacing(&self) -> Pacing {
        (**self).pacing()
    }
    fn next_frame(&mut self) -> Result<AudioFrame, SourceError> {
        (**self).next_frame()
    }
}

/// Handle to a running capture thread. Dropping it stops and joins the thread.
#[derive(Debug)]
pub struct CaptureThread {
    /// `None` once stopped.
    worker: Option<Worker<Result<(), SourceError>>>,
    dropped: DropCounter,
}

impl CaptureThread {
    /// Frames dropped so far because the consumer was slower than capture.
    #[must_use]
    pub fn dropped_frames(&self) -> u64 {
        self.dropped.get()
    }

    /// True once the thread has ended (stopped, source error, or consumer gone).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.worker.as_ref().is_none_or(Worker::is_finished)
    }

    /// Stops the thread, waits for it, and returns the source error that ended it, if any.
    ///
    /// # Errors
    /// The [`SourceError`] that ended capture, or [`SourceError::Panicked`].
    pub fn stop(mut self) -> Result<(), SourceError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), SourceError> {
        match self.worker.take() {
            Some(worker) => worker.join().map_err(SourceError::from)?,
            None => Ok(()),
        }
    }
}

impl Drop for CaptureThread {
    fn drop(&mut self) {
        if let Err(err) = self.stop_and_join() {
            tracing::warn!(%err, "capture thread ended with an error");
        }
    }
}

/// Runs `source` on a thread named `confab-video-<name>`; frames arrive on the returned receiver,
/// which holds at most `capacity` frames (oldest dropped first).
///
/// # Errors
/// [`SourceError::Spawn`] if the thread cannot be created.
pub fn spawn_video<S: VideoSource + Send + 'static>(
    source: S,
    capacity: usize,
) -> Result<(CaptureThread, DropOldestReceiver<I420Frame>), SourceError> {
    let name = format!("confab-video-{}", source.name());
    spawn_video_with(&name, capacity, move || Ok(source))
}

/// Builds a source with `make` on a new thread named `thread_name` and runs it there (for device
/// handles that must stay on one thread). An error from `make` ends the thread like a source error.
///
/// # Errors
/// [`SourceError::Spawn`] if the thread cannot be created.
pub fn spawn_video_with<S, F>(
    thread_name: &str,
    capacity: usize,
    make: F,
) -> Result<(CaptureThread, DropOldestReceiver<I420Frame>), SourceError>
where
    S: VideoSource,
    F: FnOnce() -> Result<S, SourceError> + Send + 'static,
{
    spawn_runner(thread_name, capacity, move |run| {
        let mut source = make()?;
        let pacing = source.pacing();
        run(pacing, &mut || source.next_frame())
    })
}

/// Runs `source` on a thread named `confab-audio-<name>`; see [`spawn_video`].
///
/// # Errors
/// [`SourceError::Spawn`] if the thread cannot be created.
pub fn spawn_audio<S: AudioSource + Send + 'static>(
    source: S,
    capacity: usize,
) -> Result<(CaptureThread, DropOldestReceiver<AudioFrame>), SourceError> {
    let name = format!("confab-audio-{}", source.name());
    spawn_audio_with(&name, capacity, move || Ok(source))
}

/// Audio counterpart of [`spawn_video_with`].
///
/// # Errors
/// [`SourceError::Spawn`] if the thread cannot be created.
pub fn spawn_audio_with<S, F>(
    thread_name: &str,
    capacity: usize,
    make: F,
) -> Result<(CaptureThread, DropOldestReceiver<AudioFrame>), SourceError>
where
    S: AudioSource,
    F: FnOnce() -> Result<S, SourceError> + Send + 'static,
{
    spawn_runner(thread_name, capacity, move |run| {
        let mut source = make()?;
        let pacing = source.pacing();
        run(pacing, &mut || source.next_frame())
    })
}

/// The capture loop handed to a thread body: paces and forwards frames until stopped.
type RunLoop<'a, T> = &'a mut dyn FnMut(
    Pacing,
    &mut dyn FnMut() -> Result<T, SourceError>,
) -> Result<(), SourceError>;

fn spawn_runner<T, B>(
    name: &str,
    capacity: usize,
    body: B,
) -> Result<(CaptureThread, DropOldestReceiver<T>), SourceError>
where
    T: Send + 'static,
    B: FnOnce(RunLoop<'_, T>) -> Result<(), SourceError> + Send + 'static,
{
    let (tx, rx) = drop_oldest::channel(capacity);
    let dropped = tx.drop_counter();
    let worker = Worker::spawn(name, move |stop| {
        let mut run = |pacing: Pacing,
                       next: &mut dyn FnMut() -> Result<T, SourceError>|
         -> Result<(), SourceError> {
            let mut deadline = Instant::now();
            while !stop.is_raised() {
                if let Pacing::Interval(interval) = pacing {
                    let now = Instant::now();
                    if deadline > now {
                        std::thread::sleep(deadline - now);
                    } else if now - deadline > interval * 4 {
                        // Far behind (suspended, overloaded): resynchronise, do not burst.
                        deadline = now;
                    }
                    deadline += interval;
                }
                let item = next()?;
                if tx.send(item) == SendOutcome::Disconnected {
                    break;
                }
            }
            Ok(())
        };
        body(&mut run)
    })?;
    Ok((
        CaptureThread {
            worker: Some(worker),
            dropped,
        },
        rx,
    ))
}
