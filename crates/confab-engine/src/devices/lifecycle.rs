//! The device lifecycle that cameras, microphones and speakers share: when a lost device is
//! tried again, whether the system default may stand in for it, and which [`DeviceNotice`]
//! the user gets at each step.
//!
//! Each device kind keeps what is its own (how a stream is opened, how a failure is noticed,
//! what it delivers while nothing works) and plugs into one [`Lifecycle`]:
//!
//! 1. the device fails: it calls [`Lifecycle::lost`], which sends the [`DeviceState::Lost`]
//!    notice, restarts the backoff and schedules the first attempt;
//! 2. it asks [`Lifecycle::due`] on its own thread's rhythm and, when an [`Attempt`] is due,
//!    calls [`Lifecycle::retry_later`] (the wait until the next one is the next
//!    [`Backoff`] step) and opens ([`open_requested_or_default`] for the audio devices);
//! 3. once something opened, it calls [`Lifecycle::reopened`], which sends
//!    [`DeviceState::Running`] (the requested device is back) or [`DeviceState::FellBack`]
//!    (the default stands in) through [`reopened_notice`]. Failed attempts send nothing.
//!
//! A [`ReopenPolicy`] says how: audio devices try at once and then every [`AUDIO_RETRY`], and
//! fall back to the default ([`Fallback::ToDefault`]), then keep looking for the requested
//! device every [`AUDIO_RETRY`]; a camera first waits [`CAMERA_BACKOFF`]'s 0.5 s, then 1 s, then
//! every 2 s, and only ever reopens the same camera ([`Fallback::Never`]).
//!
//! Pure logic, no device access and no sleeping: the tests below run without devices.

use std::time::{Duration, Instant};

use super::{DeviceError, DeviceKind, DeviceNotice, DeviceState, DeviceStatus};

/// How often a lost microphone or speaker (or the requested one, while on the default) is
/// looked for again.
pub const AUDIO_RETRY: Duration = Duration::from_secs(2);

/// A lost camera's waits: 0.5 s, 1 s, then 2 s each.
pub const CAMERA_BACKOFF: Backoff =
    Backoff::doubling(Duration::from_millis(500), Duration::from_secs(2));

/// The waits between reopen attempts: `first`, doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// `first`, then twice that, and so on up to `max`.
    #[must_use]
    pub const fn doubling(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first,
        }
    }

    /// The same wait every time.
    #[must_use]
    pub const fn fixed(every: Duration) -> Self {
        Self::doubling(every, every)
    }

    /// The next wait; the one after it doubles (up to the maximum).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (delay * 2).min(self.max);
        delay
    }

    /// Starts again from the first wait.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// Whether the system default may stand in for a lost device the user picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Yes; the picked device is still looked for, and taken back when it returns.
    ToDefault,
    /// No: only the same device is reopened (a camera; another one would show another room).
    Never,
}

/// When the first reopen attempt after a loss is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstAttempt {
    /// At once (an audio device that dropped out is often there again, or the default is).
    Immediately,
    /// After the first backoff step (a camera that just reset needs a moment).
    AfterBackoff,
}

/// How one kind of device comes back; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReopenPolicy {
    /// The waits between attempts.
    pub backoff: Backoff,
    /// When the first attempt is made.
    pub first_attempt: FirstAttempt,
    /// Whether the default device may stand in.
    pub fallback: Fallback,
}

impl ReopenPolicy {
    /// Microphones and speakers.
    pub const AUDIO: Self = Self {
        backoff: Backoff::fixed(AUDIO_RETRY),
        first_attempt: FirstAttempt::Immediately,
        fallback: Fallback::ToDefault,
    };

    /// Cameras.
    pub const CAMERA: Self = Self {
        backoff: CAMERA_BACKOFF,
        first_attempt: FirstAttempt::AfterBackoff,
        fallback: Fallback::Never,
    };
}

/// What a due reopen attempt should try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The requested device, else (when the policy allows) the default: nothing works now.
    RequestedOrDefault,
    /// Only the requested device: the default stands in for it, or the policy allows no other.
    RequestedOnly,
}

impl Attempt {
    /// Whether only the requested device is to be opened.
    #[must_use]
    pub const fn requested_only(self) -> bool {
        matches!(self, Self::RequestedOnly)
    }
}

/// One device's lost / back-off / reopen / notify cycle; see the module docs.
pub struct Lifecycle {
    kind: DeviceKind,
    policy: ReopenPolicy,
    status: DeviceStatus,
    backoff: Backoff,
    next_attempt: Instant,
    fell_back: bool,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("kind", &self.kind)
            .field("policy", &self.policy)
            .field("next_attempt", &self.next_attempt)
            .field("fell_back", &self.fell_back)
            .finish_non_exhaustive()
    }
}

impl Lifecycle {
    /// A device of `kind` that was just opened (the one requested); notices go to `status`.
    #[must_use]
    pub fn new(kind: DeviceKind, policy: ReopenPolicy, status: DeviceStatus) -> Self {
        Self {
            kind,
            policy,
            status,
            backoff: policy.backoff,
            next_attempt: Instant::now(),
            fell_back: false,
        }
    }

    /// Sends a notice about this device.
    pub fn notify(&self, state: DeviceState, device: &str, message: String) {
        (self.status)(DeviceNotice {
            kind: self.kind,
            state,
            device: device.to_string(),
            message,
        });
    }

    /// The device stopped: sends [`DeviceState::Lost`] with `message`, restarts the backoff and
    /// schedules the first attempt as the policy says.
    pub fn lost(&mut self, device: &str, message: String, now: Instant) {
        self.notify(DeviceState::Lost, device, message);
        self.backoff.reset();
        self.next_attempt = match self.policy.first_attempt {
            FirstAttempt::Immediately => now,
            FirstAttempt::AfterBackoff => now + self.backoff.next_delay(),
        };
    }

    /// The attempt to make at `now`, if one is due. `has_device`: whether a device (the
    /// requested one or a stand-in) works now. Nothing is due while the requested device runs.
    #[must_use]
    pub fn due(&self, now: Instant, has_device: bool) -> Option<Attempt> {
        if now < self.next_attempt {
            return None;
        }
        if !has_device {
            return Some(match self.policy.fallback {
                Fallback::ToDefault => Attempt::RequestedOrDefault,
                Fallback::Never => Attempt::RequestedOnly,
            });
        }
        self.fell_back.then_some(Attempt::RequestedOnly)
    }

    /// Schedules the next attempt one backoff step after `now` (call it when an attempt starts
    /// or fails).
    pub fn retry_later(&mut self, now: Instant) {
        self.next_attempt = now + self.backoff.next_delay();
    }

    /// When the next attempt is due.
    #[must_use]
    pub const fn next_attempt(&self) -> Instant {
        self.next_attempt
    }

    /// Whether the default device stands in for the requested one.
    #[must_use]
    #[cfg(test)]
    pub const fn fell_back(&self) -> bool {
        self.fell_back
    }

    /// An attempt opened `device`, the default standing in when `fell_back`: sends
    /// [`reopened_notice`].
    pub fn reopened(&mut self, device: &str, fell_back: bool) {
        // A fallback keeps being replaced by the user's device when it returns.
        self.fell_back = fell_back;
        (self.status)(reopened_notice(self.kind, device, fell_back));
    }
}

/// Opens the requested device, or, when that fails and something particular was requested
/// (and not `requested_only`), the system default. Returns the stream and whether it is the
/// default standing in for the requested one; `None` (logged) when nothing could be opened.
/// Microphone and speaker both reopen a lost device through this.
pub fn open_requested_or_default<T>(
    kind: DeviceKind,
    requested: Option<&str>,
    requested_only: bool,
    open: impl Fn(Option<&str>) -> Result<T, DeviceError>,
) -> Option<(T, bool)> {
    let first = match open(requested) {
        Ok(live) => return Some((live, false)),
        Err(e) => e,
    };
    if !requested_only
        && requested.is_some()
        && let Ok(live) = open(None)
    {
        return Some((live, true));
    }
    tracing::debug!(error = %first, kind = kind.noun(), "no device yet");
    None
}

/// What to tell the user when a device came back (`fell_back == false`) or the default one
/// took over (`true`). Camera notices end without a full stop, like its other notices.
#[must_use]
pub fn reopened_notice(kind: DeviceKind, name: &str, fell_back: bool) -> DeviceNotice {
    let what = kind.noun();
    let (state, message) = match (fell_back, kind) {
        (true, _) => (
            DeviceState::FellBack,
            format!(
                "Switched to the default {} \"{name}\".",
                what.to_lowercase()
            ),
        ),
        (false, DeviceKind::Camera) => (DeviceState::Running, format!("{what} \"{name}\" is back")),
        (false, _) => (DeviceState::Running, format!("{what} \"{name}\" is back.")),
    };
    DeviceNotice {
        kind,
        state,
        device: name.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn recorder() -> (DeviceStatus, Arc<Mutex<Vec<DeviceNotice>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        let status: DeviceStatus = Arc::new(move |n| s.lock().unwrap().push(n));
        (status, seen)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_grows_to_two_seconds() {
        let mut b = CAMERA_BACKOFF;
        let delays: Vec<_> = (0..5).map(|_| b.next_delay()).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 2000, 2000].map(Duration::from_millis)
        );
    }

    #[test]
    fn backoff_resets_and_a_fixed_one_never_grows() {
        let mut b = CAMERA_BACKOFF;
        b.next_delay();
        b.next_delay();
        b.reset();
        assert_eq!(b.next_delay(), ms(500));
        let mut fixed = Backoff::fixed(AUDIO_RETRY);
        let delays: Vec<_> = (0..3).map(|_| fixed.next_delay()).collect();
        assert_eq!(delays, [AUDIO_RETRY; 3]);
    }

    #[test]
    fn audio_tries_at_once_then_every_two_seconds_and_falls_back() {
        let (status, seen) = recorder();
        let mut life = Lifecycle::new(DeviceKind::Microphone, ReopenPolicy::AUDIO, status);
        let t0 = Instant::now();
        assert_eq!(life.due(t0, true), None, "the requested device runs");
        life.lost("USB", "Microphone \"USB\" stopped working.".into(), t0);
        assert_eq!(life.due(t0, false), Some(Attempt::RequestedOrDefault));
        life.retry_later(t0);
        assert_eq!(life.due(t0 + ms(1999), false), None);
        assert_eq!(
            life.due(t0 + ms(2000), false),
            Some(Attempt::RequestedOrDefault)
        );
        // The default took over: the requested one is looked for every 2 s.
        life.retry_later(t0 + ms(2000));
        life.reopened("Built-in", true);
        assert!(life.fell_back());
        assert_eq!(life.due(t0 + ms(3000), true), None);
        assert_eq!(life.due(t0 + ms(4000), true), Some(Attempt::RequestedOnly));
        life.retry_later(t0 + ms(4000));
        life.reopened("USB", false);
        assert!(!life.fell_back());
        assert_eq!(
            life.due(t0 + ms(9000), true),
            None,
            "nothing to do once it is back"
        );
        let states: Vec<_> = seen.lock().unwrap().iter().map(|n| n.state).collect();
        assert_eq!(
            states,
            [
                DeviceState::Lost,
                DeviceState::FellBack,
                DeviceState::Running
            ]
        );
    }

    #[test]
    fn a_camera_waits_then_backs_off_and_never_falls_back() {
        let (status, seen) = recorder();
        let mut life = Lifecycle::new(DeviceKind::Camera, ReopenPolicy::CAMERA, status);
        let t0 = Instant::now();
        life.lost("Cam", "Camera \"Cam\" was disconnected".into(), t0);
        assert_eq!(life.next_attempt(), t0 + ms(500));
        assert_eq!(life.due(t0 + ms(499), false), None);
        assert_eq!(life.due(t0 + ms(500), false), Some(Attempt::RequestedOnly));
        // Failures back off: 1 s, then 2 s.
        life.retry_later(t0 + ms(500));
        assert_eq!(life.next_attempt(), t0 + ms(1500));
        life.retry_later(t0 + ms(1500));
        assert_eq!(life.next_attempt(), t0 + ms(3500));
        life.reopened("Cam", false);
        // Lost again: the backoff starts over.
        life.lost(
            "Cam",
            "Camera \"Cam\" stopped working".into(),
            t0 + ms(5000),
        );
        assert_eq!(life.next_attempt(), t0 + ms(5500));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3, "failed attempts send nothing: {seen:?}");
        assert_eq!(seen[1].message, "Camera \"Cam\" is back");
        assert!(
            seen.iter()
                .all(|n| n.kind == DeviceKind::Camera && n.device == "Cam")
        );
    }

    #[test]
    fn a_lost_device_is_reopened_or_replaced_by_the_default() {
        let calls = std::cell::RefCell::new(Vec::new());
        let open = |works: &'static [Option<&'static str>]| {
            let calls = &calls;
            move |id: Option<&str>| {
                calls.borrow_mut().push(id.map(str::to_string));
                if works.contains(&id) {
                    Ok(id.unwrap_or("default").to_string())
                } else {
                    Err(DeviceError::NotFound("gone".into()))
                }
            }
        };
        let mic = DeviceKind::Microphone;
        // The requested device is back.
        let got = open_requested_or_default(mic, Some("usb"), false, open(&[Some("usb"), None]));
        assert_eq!(got, Some(("usb".to_string(), false)));
        // It is gone: the default stands in.
        let got = open_requested_or_default(mic, Some("usb"), false, open(&[None]));
        assert_eq!(got, Some(("default".to_string(), true)));
        // Only the requested one was wanted (a fallback is already playing).
        calls.borrow_mut().clear();
        let got = open_requested_or_default(mic, Some("usb"), true, open(&[None]));
        assert_eq!(got, None);
        assert_eq!(*calls.borrow(), vec![Some("usb".to_string())]);
        // Nothing particular was requested and the default fails: no second try.
        calls.borrow_mut().clear();
        let got = open_requested_or_default(mic, None, false, open(&[]));
        assert_eq!(got, None);
        assert_eq!(*calls.borrow(), vec![None]);
    }

    #[test]
    fn notices_say_which_device_came_back_or_took_over() {
        let n = reopened_notice(DeviceKind::Speaker, "USB Headset", false);
        assert_eq!(n.state, DeviceState::Running);
        assert_eq!(n.message, "Speaker \"USB Headset\" is back.");
        let n = reopened_notice(DeviceKind::Microphone, "Built-in", true);
        assert_eq!(n.state, DeviceState::FellBack);
        assert_eq!(n.device, "Built-in");
        assert_eq!(
            n.message,
            "Switched to the default microphone \"Built-in\"."
        );
    }
}
