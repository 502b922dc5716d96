//! Hot-plug: a named thread that lists devices every few seconds and reports changes.
//!
//! Enumeration is cheap on most systems but can take a few hundred milliseconds (device
//! probing), so it runs on its own thread (`confab-devices`), never on the engine's runtime or
//! the UI thread. The first list is reported at once; later ones only when they differ.
//! Dropping the [`DeviceWatcher`] stops the thread (within one poll step).

use std::time::Duration;

use super::{DeviceList, enumerate};
use crate::worker::{Worker, WorkerError};

/// How often devices are listed.
pub const POLL_EVERY: Duration = Duration::from_secs(3);
/// Name of the watcher's thread.
const THREAD_NAME: &str = "confab-devices";

/// The running watcher thread.
#[derive(Debug)]
pub struct DeviceWatcher {
    _thread: Worker,
}

impl DeviceWatcher {
    /// Starts watching; `on_change` gets the first list and every changed one.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn spawn(
        every: Duration,
        on_change: impl Fn(DeviceList) + Send + 'static,
    ) -> Result<Self, WorkerError> {
        Self::spawn_with(every, enumerate, on_change)
    }

    /// Like [`DeviceWatcher::spawn`] with a custom lister (tests).
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn spawn_with(
        every: Duration,
        list: impl Fn() -> DeviceList + Send + 'static,
        on_change: impl Fn(DeviceList) + Send + 'static,
    ) -> Result<Self, WorkerError> {
        let thread = Worker::spawn(THREAD_NAME, move |stop| {
            let mut last: Option<DeviceList> = None;
            while !stop.is_raised() {
                let now = list();
                if last.as_ref() != Some(&now) {
                    on_change(now.clone());
                    last = Some(now);
                }
                stop.sleep(every);
            }
        })?;
        Ok(Self { _thread: thread })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::DeviceInfo;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    #[test]
    fn reports_the_first_list_and_then_only_changes() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let c = Arc::clone(&calls);
        let lister = move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            let mut list = DeviceList::default();
            // A headset appears at the fourth look.
            if n >= 3 {
                list.microphones.push(DeviceInfo {
                    id: "alsa:headset".into(),
                    name: "Headset".into(),
                    is_default: false,
                });
            }
            list
        };
        let s = Arc::clone(&seen);
        let watcher = DeviceWatcher::spawn_with(Duration::from_millis(5), lister, move |l| {
            s.lock().unwrap().push(l);
        })
        .unwrap();
        while calls.load(Ordering::SeqCst) < 8 {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(watcher);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[0].microphones.is_empty());
        assert_eq!(seen[1].microphones[0].name, "Headset");
    }
}
