//! [`Worker`]: the one stoppable, named thread handle of the whole engine. Device threads
//! (watcher, microphone opener, sound check, stream retirement), the sender threads, the capture
//! threads behind [`CaptureThread`](crate::media::source::CaptureThread), the per-participant
//! video decoders and the playout thread all run as one.
//!
//! Contract:
//! - [`Worker::spawn`] starts a thread with the given name (names show up in debuggers, `top -H`
//!   and panic messages, so every engine thread has one) and hands its body a [`StopFlag`]. A
//!   thread that cannot be started is a [`WorkerError::Spawn`], never a panic.
//! - The body must look at its [`StopFlag`] regularly ([`StopFlag::sleep`] waits in short steps
//!   and returns early once the flag is raised) and return soon after it is raised. A body that
//!   blocks on a channel selects on [`StopFlag::raised`] as well, which disconnects the moment
//!   the flag is raised, so it wakes at once instead of polling.
//! - Dropping a [`Worker`] raises the flag and joins the thread. [`Worker::join`] does the same
//!   and hands back the body's result. [`Worker::detach`] lets go of a thread that may block
//!   in a platform call forever (closing a dead audio stream, opening a slow device): nobody
//!   waits for it, and its result goes wherever its body sends it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

/// Longest step [`StopFlag::sleep`] sleeps before looking at the flag again.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Why a [`Worker`] could not run.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The operating system refused to start the thread.
    #[error("cannot start thread {name}: {source}")]
    Spawn {
        /// The thread's name.
        name: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The thread's body panicked.
    #[error("thread {name} panicked")]
    Panicked {
        /// The thread's name.
        name: String,
    },
}

/// Raised when the owner of a [`Worker`] wants its thread to end. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StopFlag(Arc<FlagInner>);

#[derive(Debug)]
struct FlagInner {
    raised: AtomicBool,
    /// Dropped when the flag is raised, which disconnects `raised_rx`.
    raised_tx: Mutex<Option<Sender<()>>>,
    raised_rx: Receiver<()>,
}

impl Default for StopFlag {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::bounded(0);
        Self(Arc::new(FlagInner {
            raised: AtomicBool::new(false),
            raised_tx: Mutex::new(Some(tx)),
            raised_rx: rx,
        }))
    }
}

impl StopFlag {
    /// A flag that is not raised.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the flag.
    pub fn raise(&self) {
        self.0.raised.store(true, Ordering::Relaxed);
        self.0
            .raised_tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Whether the flag is raised.
    #[must_use]
    pub fn is_raised(&self) -> bool {
        self.0.raised.load(Ordering::Relaxed)
    }

    /// A channel that never carries a message and disconnects once the flag is raised: select
    /// on it next to a work queue to wake the moment the owner asks the thread to stop.
    #[must_use]
    pub fn raised(&self) -> &Receiver<()> {
        &self.0.raised_rx
    }

    /// Sleeps for `duration`, in steps of at most 50 ms (or `duration`, when shorter), and
    /// returns early once the flag is raised. Returns whether the flag is raised.
    pub fn sleep(&self, duration: Duration) -> bool {
        let until = Instant::now() + duration;
        loop {
            if self.is_raised() {
                return true;
            }
            let now = Instant::now();
            if now >= until {
                return false;
            }
            std::thread::sleep((until - now).min(STOP_POLL).min(duration));
        }
    }
}

/// A named thread that is told to stop and joined when dropped; see the module docs.
#[derive(Debug)]
pub struct Worker<T = ()> {
    name: String,
    stop: StopFlag,
    thread: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> Worker<T> {
    /// Starts `body` on a thread named `name`, with the flag that asks it to stop.
    ///
    /// # Errors
    /// [`WorkerError::Spawn`] if the thread cannot be started.
    pub fn spawn(
        name: &str,
        body: impl FnOnce(StopFlag) -> T + Send + 'static,
    ) -> Result<Self, WorkerError> {
        let stop = StopFlag::new();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || body(flag))
            .map_err(|source| WorkerError::Spawn {
                name: name.to_string(),
                source,
            })?;
        Ok(Self {
            name: name.to_string(),
            stop,
            thread: Some(thread),
        })
    }

    /// The thread's name.
    #[must_use]
    #[cfg(test)]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True once the body has returned (or the thread was joined or detached).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Asks the thread to stop without waiting for it.
    pub fn stop(&self) {
        self.stop.raise();
    }

    /// Asks the thread to stop, waits for it and returns what its body returned.
    ///
    /// # Errors
    /// [`WorkerError::Panicked`] if the body panicked.
    pub fn join(mut self) -> Result<T, WorkerError> {
        self.stop.raise();
        let panicked = || WorkerError::Panicked {
            name: self.name.clone(),
        };
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| panicked()),
            None => Err(panicked()),
        }
    }

    /// Lets the thread run on by itself: it is neither stopped nor joined (see the module docs).
    pub fn detach(mut self) {
        self.thread.take();
    }
}

impl<T> Drop for Worker<T> {
    fn drop(&mut self) {
        // Nothing left to stop after `join` or `detach`.
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.raise();
        if thread.join().is_err() {
            tracing::warn!(thread = %self.name, "an engine thread panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn the_thread_is_named_and_returns_its_result() {
        let worker = Worker::spawn("confab-test-worker", |_stop| {
            std::thread::current().name().map(str::to_string)
        })
        .unwrap();
        assert_eq!(worker.name(), "confab-test-worker");
        assert_eq!(
            worker.join().unwrap().as_deref(),
            Some("confab-test-worker")
        );
    }

    #[test]
    fn dropping_stops_and_joins_the_thread() {
        let rounds = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&rounds);
        let worker = Worker::spawn("confab-test-loop", move |stop| {
            while !stop.sleep(Duration::from_secs(60)) {
                r.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
        let started = Instant::now();
        drop(worker);
        // Joined: the body has returned, well before its 60 s sleep would have ended.
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(rounds.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_panicking_body_is_an_error_not_a_panic() {
        let worker = Worker::spawn("confab-test-panic", |_stop| -> u32 {
            panic!("the body failed");
        })
        .unwrap();
        let err = worker.join().unwrap_err();
        assert!(matches!(&err, WorkerError::Panicked { name } if name == "confab-test-panic"));
        assert_eq!(
            crate::devices::DeviceError::from(err),
            crate::devices::DeviceError::Backend("thread confab-test-panic panicked".into())
        );
    }

    #[test]
    fn a_body_blocked_on_a_channel_wakes_when_the_flag_is_raised() {
        let (_work_tx, work_rx) = crossbeam_channel::unbounded::<u32>();
        let worker = Worker::spawn("confab-test-select", move |stop| {
            crossbeam_channel::select! {
                recv(work_rx) -> _ => "work",
                recv(stop.raised()) -> _ => "stopped",
            }
        })
        .unwrap();
        assert!(!worker.is_finished());
        let started = Instant::now();
        assert_eq!(worker.join().unwrap(), "stopped");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn is_finished_once_the_body_returns() {
        let worker = Worker::spawn("confab-test-finished", |_stop| 7).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !worker.is_finished() {
            assert!(Instant::now() < deadline, "the body never returned");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(worker.join().unwrap(), 7);
    }

    #[test]
    fn stop_flag_sleep_returns_early_once_raised() {
        let flag = StopFlag::new();
        assert!(!flag.sleep(Duration::from_millis(1)));
        flag.raise();
        let started = Instant::now();
        assert!(flag.sleep(Duration::from_secs(60)));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_detached_thread_runs_on() {
        let (tx, rx) = std::sync::mpsc::channel();
        let worker = Worker::spawn("confab-test-detached", move |stop| {
            std::thread::sleep(Duration::from_millis(20));
            let _ = tx.send(stop.is_raised());
        })
        .unwrap();
        worker.detach();
        // Not told to stop: detaching is not stopping.
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(false));
    }
}
