//! Watching a running [`Engine`] from outside: one loop that takes its control events and decoded
//! pictures and keeps what a headless caller needs to know about the call (our id, who is in the
//! room, links, chat, remote media state, the latest statistics and their history, errors,
//! device notices).
//!
//! `confab loopback`, `confab join` and the engine's integration tests all drive engines this
//! way. Waiting is on the engine's channels (a `select` over the event channel and, unless
//! pictures are being left queued, the picture channel), never a fixed sleep: a wait returns as
//! soon as what it waits for has arrived.
//!
//! Pictures are handed to a [`FrameSink`] (a marker check, a `VideoAnalyzer`, …), so the observer
//! itself stays small and copies nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crossbeam_channel::{Select, TryRecvError};

use crate::devices::DeviceNotice;
use crate::{CallState, Engine, EngineCommand, EngineError, EngineEvent, LinkState};
use crate::{ParticipantStats, VideoFrameEvent};

/// Longest a wait sleeps on the channels before it looks at its condition again, so that a
/// condition on something outside the engine (a browser, a fake peer) is still seen promptly.
const RECHECK: Duration = Duration::from_millis(100);

/// How many statistics reports (one a second) [`Participant::stats_history`] keeps: an hour.
pub const STATS_HISTORY: usize = 3600;

/// Receives every decoded remote picture the observer takes (cameras and shared screens:
/// [`VideoFrameEvent::role`] says which).
pub trait FrameSink {
    /// A picture from the participant `from` (its id), after the observer counted it.
    fn frame(&mut self, from: &str, frame: &VideoFrameEvent);
}

/// Pictures are counted and nothing else.
impl FrameSink for () {
    fn frame(&mut self, _from: &str, _frame: &VideoFrameEvent) {}
}

/// One remote participant as the observer has seen it.
#[derive(Debug, Clone, Default)]
pub struct Participant {
    /// Its display name (from its join, or its statistics).
    pub name: String,
    /// A `ParticipantJoined` was seen for it.
    pub joined: bool,
    /// A `ParticipantLeft` was seen for it.
    pub left: bool,
    /// Its link's latest state.
    pub link: Option<LinkState>,
    /// Every link state it reported, and when.
    pub link_history: Vec<(Instant, LinkState)>,
    /// When its link first became connected.
    pub connected_at: Option<Instant>,
    /// Its microphone and camera, as it last announced them.
    pub media: Option<(bool, bool)>,
    /// The verification code of our connection to it.
    pub code: Option<String>,
    /// The latest statistics of our connection to it.
    pub stats: Option<ParticipantStats>,
    /// When those statistics came.
    pub stats_at: Option<Instant>,
    /// Every statistics report of our connection to it and when it came, oldest first (the
    /// last [`STATS_HISTORY`] of them): figures over time, such as the bandwidth estimate.
    pub stats_history: Vec<(Instant, ParticipantStats)>,
    /// Pictures of its camera decoded.
    pub frames: u64,
    /// When the first of them came.
    pub first_frame_at: Option<Instant>,
    /// Pictures of its shared screen decoded.
    pub screen_frames: u64,
    /// When the first of them came.
    pub first_screen_frame_at: Option<Instant>,
    /// It shares its screen, as it last announced.
    pub sharing: bool,
    /// Pictures from it that came after it was seen leaving.
    pub frames_after_left: u64,
    /// How loud it was in what we played over the last reported 100 ms (dBFS), if reported.
    pub level_db: Option<f32>,
    /// The loudest of those reports so far (dBFS).
    pub loudest_db: Option<f32>,
}

/// A chat message as the engine reported it (ours are echoed with our own id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Sender id.
    pub from: String,
    /// Sender name.
    pub name: String,
    /// Text.
    pub text: String,
}

/// Everything the observer has learnt about the call.
#[derive(Debug, Clone, Default)]
pub struct CallView {
    /// Our participant id, once in the room.
    pub id: Option<String>,
    /// When we first got into the room.
    pub in_call_at: Option<Instant>,
    /// The reason the call ended, if it did.
    pub ended: Option<crate::EndReason>,
    /// Remote participants by id.
    pub participants: BTreeMap<String, Participant>,
    /// Every chat message, in order.
    pub chats: Vec<ChatMessage>,
    /// Error events, in order.
    pub errors: Vec<crate::Problem>,
    /// Device notices, in order.
    pub device_notices: Vec<DeviceNotice>,
    /// The highest `frames_sent` any statistics reported.
    pub frames_sent: u64,
    /// The engine's event channel is closed (it stopped).
    pub stopped: bool,
    /// The STUN and TURN servers the call uses (URLs).
    pub ice_servers: Vec<String>,
    /// The microphone's processing figures, latest.
    pub audio_processing: Option<crate::media::ProcessingStats>,
    /// Our own screen share, as last reported.
    pub screen_share: Option<crate::ScreenShareState>,
}

impl CallView {
    /// The participant with this id.
    #[must_use]
    pub fn participant(&self, id: &str) -> Option<&Participant> {
        self.participants.get(id)
    }

    /// The first participant with this display name.
    #[must_use]
    pub fn named(&self, name: &str) -> Option<&Participant> {
        self.participants.values().find(|p| p.name == name)
    }

    /// Participants whose link has connected at least once.
    #[must_use]
    pub fn connected(&self) -> usize {
        self.participants
            .values()
            .filter(|p| p.connected_at.is_some())
            .count()
    }

    /// Texts of the chat messages from participants named `name`.
    pub fn chats_from<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.chats
            .iter()
            .filter(move |c| c.name == name)
            .map(|c| c.text.as_str())
    }

    /// Texts of the chat messages from anyone but us.
    pub fn remote_chats(&self) -> impl Iterator<Item = &ChatMessage> + '_ {
        self.chats
            .iter()
            .filter(move |c| self.id.as_deref() != Some(c.from.as_str()))
    }

    fn entry(&mut self, id: &str) -> &mut Participant {
        self.participants.entry(id.to_owned()).or_default()
    }

    fn apply(&mut self, label: &str, event: EngineEvent) {
        match event {
            EngineEvent::CallState(CallState::InCall { id, .. }) => {
                self.id = Some(id.to_string());
                self.in_call_at.get_or_insert_with(Instant::now);
            }
            EngineEvent::CallState(CallState::Ended { reason }) => {
                tracing::debug!(engine = label, %reason, "call ended");
                self.ended = Some(reason);
            }
            EngineEvent::CallState(_) => {}
            EngineEvent::ParticipantJoined { id, name } => {
                let p = self.entry(id.as_str());
                p.name = name;
                p.joined = true;
            }
            EngineEvent::ParticipantLeft { id } => self.entry(id.as_str()).left = true,
            EngineEvent::Link { id, state } => {
                let p = self.entry(id.as_str());
                p.link = Some(state);
                p.link_history.push((Instant::now(), state));
                if state == LinkState::Connected {
                    p.connected_at.get_or_insert_with(Instant::now);
                }
            }
            EngineEvent::RemoteMedia { id, mic, camera } => {
                self.entry(id.as_str()).media = Some((mic, camera));
            }
            EngineEvent::Chat {
                from, name, text, ..
            } => self.chats.push(ChatMessage {
                from: from.to_string(),
                name,
                text,
            }),
            EngineEvent::VerificationCode { id, code } => {
                self.entry(id.as_str()).code = Some(code);
            }
            EngineEvent::Stats(all) => {
                let now = Instant::now();
                for s in all {
                    self.frames_sent = self.frames_sent.max(s.frames_sent);
                    let p = self.entry(&s.id);
                    if p.name.is_empty() {
                        p.name.clone_from(&s.name);
                    }
                    if p.stats_history.len() >= STATS_HISTORY {
                        p.stats_history.remove(0);
                    }
                    p.stats_history.push((now, s.clone()));
                    p.stats = Some(s);
                    p.stats_at = Some(now);
                }
            }
            EngineEvent::Device(notice) => {
                tracing::info!(engine = label, message = %notice.message, "device");
                self.device_notices.push(notice);
            }
            EngineEvent::Error(e) => {
                tracing::warn!(engine = label, error = %e, "engine error");
                self.errors.push(e);
            }
            EngineEvent::SpeakerLevels(levels) => {
                for (id, db) in levels {
                    let p = self.entry(id.as_str());
                    p.level_db = Some(db);
                    p.loudest_db = Some(p.loudest_db.map_or(db, |l| l.max(db)));
                }
            }
            EngineEvent::IceServers(urls) => self.ice_servers = urls,
            EngineEvent::RemoteScreen { id, sharing } => self.entry(id.as_str()).sharing = sharing,
            EngineEvent::ScreenShare(state) => {
                tracing::info!(engine = label, ?state, "screen share");
                self.screen_share = Some(state);
            }
            EngineEvent::AudioProcessing(p) => self.audio_processing = Some(p),
            EngineEvent::MicLevel(_) | EngineEvent::Devices(_) => {}
        }
    }
}

/// Why a wait ended without its condition.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The time ran out.
    #[error("timed out after {timeout:?} waiting for: {what}")]
    TimedOut {
        /// What was waited for.
        what: String,
        /// How long.
        timeout: Duration,
    },
    /// Every observed engine stopped, so nothing more can arrive.
    #[error("the engine stopped while waiting for: {what}")]
    Stopped {
        /// What was waited for.
        what: String,
    },
}

/// An engine and what it has reported so far.
pub struct CallObserver<F: FrameSink = ()> {
    label: String,
    engine: Engine,
    /// What the engine has reported.
    pub view: CallView,
    /// Where decoded remote pictures go.
    pub frames: F,
    take_video: bool,
}

impl<F: FrameSink> std::fmt::Debug for CallObserver<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallObserver")
            .field("label", &self.label)
            .field("view", &self.view)
            .field("take_video", &self.take_video)
            .finish_non_exhaustive()
    }
}

impl CallObserver<()> {
    /// Observes `engine`, counting pictures only. `label` names it in logs and messages.
    pub fn new(label: impl Into<String>, engine: Engine) -> Self {
        Self::with_frames(label, engine, ())
    }
}

impl<F: FrameSink> CallObserver<F> {
    /// Observes `engine`, handing its decoded remote pictures to `frames`.
    pub fn with_frames(label: impl Into<String>, engine: Engine, frames: F) -> Self {
        Self {
            label: label.into(),
            engine,
            view: CallView::default(),
            frames,
            take_video: true,
        }
    }

    /// The name given at creation.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The observed engine.
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Sends a command to the engine.
    pub fn send(&self, command: EngineCommand) -> Result<(), EngineError> {
        self.engine.send(command)
    }

    /// Whether pumping takes decoded pictures. With `false` they stay queued, as behind a
    /// stalled UI, and the engine drops the oldest.
    pub fn set_take_video(&mut self, take: bool) {
        self.take_video = take;
    }

    /// Hangs up and waits for the engine's threads to end.
    pub fn shutdown(self) {
        self.engine.shutdown();
    }

    /// Takes everything already queued, without waiting. Returns whether anything came.
    pub fn drain(&mut self) -> bool {
        let mut any = false;
        loop {
            match self.engine.events().try_recv() {
                Ok(event) => {
                    any = true;
                    self.view.apply(&self.label, event);
                }
                Err(TryRecvError::Disconnected) => {
                    self.view.stopped = true;
                    break;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        if self.take_video {
            while let Ok(frame) = self.engine.video().try_recv() {
                any = true;
                let Some(from) = &frame.from else { continue };
                let from = from.to_string();
                let p = self.view.entry(&from);
                match frame.role {
                    crate::VideoRole::Camera => {
                        p.frames += 1;
                        p.first_frame_at.get_or_insert_with(Instant::now);
                    }
                    crate::VideoRole::Screen => {
                        p.screen_frames += 1;
                        p.first_screen_frame_at.get_or_insert_with(Instant::now);
                    }
                }
                if p.left {
                    p.frames_after_left += 1;
                }
                self.frames.frame(&from, &frame);
            }
        }
        any
    }

    /// Waits up to `timeout` for something to arrive, then takes everything queued.
    pub fn pump(&mut self, timeout: Duration) {
        pump_all(&mut [self], timeout);
    }

    /// Pumps until `done` holds (checked before the first wait, after every arrival, and at
    /// least every 100 ms), or `timeout` passes.
    pub fn pump_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<(), WaitError> {
        pump_all_until(&mut [self], what, timeout, |o| done(&*o[0]))
    }

    /// Pumps for `period`: for what is really a stretch of time (the length of a call).
    pub fn pump_for(&mut self, period: Duration) {
        pump_all_for(&mut [self], period);
    }
}

/// Waits up to `timeout` for any of `observers` to receive something, then drains them all.
pub fn pump_all<F: FrameSink>(observers: &mut [&mut CallObserver<F>], timeout: Duration) {
    wait_any(observers, timeout);
    for o in observers.iter_mut() {
        o.drain();
    }
}

/// [`CallObserver::pump_until`] over several engines at once (a room of them).
pub fn pump_all_until<F: FrameSink>(
    observers: &mut [&mut CallObserver<F>],
    what: &str,
    timeout: Duration,
    mut done: impl FnMut(&[&mut CallObserver<F>]) -> bool,
) -> Result<(), WaitError> {
    let deadline = Instant::now() + timeout;
    for o in observers.iter_mut() {
        o.drain();
    }
    while !done(observers) {
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitError::TimedOut {
                what: what.to_owned(),
                timeout,
            });
        }
        if observers.iter().all(|o| o.view.stopped) {
            return Err(WaitError::Stopped {
                what: what.to_owned(),
            });
        }
        pump_all(observers, (deadline - now).min(RECHECK));
    }
    Ok(())
}

/// Pumps `observers` until `period` has passed.
pub fn pump_all_for<F: FrameSink>(observers: &mut [&mut CallObserver<F>], period: Duration) {
    let end = Instant::now() + period;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if left.is_zero() || observers.iter().all(|o| o.view.stopped) {
            break;
        }
        pump_all(observers, left);
    }
}

/// Blocks until one of the observers' channels has something (or is closed), or `timeout`.
fn wait_any<F: FrameSink>(observers: &[&mut CallObserver<F>], timeout: Duration) {
    let mut select = Select::new();
    let mut watched = 0;
    for o in observers.iter().filter(|o| !o.view.stopped) {
        select.recv(o.engine.events());
        watched += 1;
        if o.take_video {
            select.recv(o.engine.video());
            watched += 1;
        }
    }
    if watched > 0 {
        let _ = select.ready_timeout(timeout);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::time::{Duration, Instant};

    use signaling_client::ParticipantId;

    use super::{CallObserver, CallView, WaitError};
    use crate::testing::{small_engine_config, start_engine};
    use crate::{CallState, EngineEvent, LinkState, ParticipantStats};

    fn id(s: &str) -> ParticipantId {
        ParticipantId(s.to_owned())
    }

    #[test]
    fn the_view_keeps_what_the_events_said() {
        let mut view = CallView::default();
        let events = [
            EngineEvent::CallState(CallState::InCall {
                id: id("me"),
                room: "r".into(),
            }),
            EngineEvent::ParticipantJoined {
                id: id("b"),
                name: "ben".into(),
            },
            EngineEvent::Link {
                id: id("b"),
                state: LinkState::Connected,
            },
            EngineEvent::RemoteMedia {
                id: id("b"),
                mic: false,
                camera: true,
            },
            EngineEvent::Chat {
                from: id("b"),
                name: "ben".into(),
                text: "hi".into(),
                at: std::time::SystemTime::now(),
            },
            EngineEvent::Chat {
                from: id("me"),
                name: "ann".into(),
                text: "hello".into(),
                at: std::time::SystemTime::now(),
            },
            EngineEvent::Stats(vec![ParticipantStats {
                id: "b".into(),
                name: "ben".into(),
                frames_sent: 7,
                ..ParticipantStats::default()
            }]),
            EngineEvent::Error(crate::Problem::NotInCall),
            EngineEvent::ParticipantLeft { id: id("b") },
        ];
        for event in events {
            view.apply("test", event);
        }
        assert_eq!(view.id.as_deref(), Some("me"));
        assert!(view.in_call_at.is_some());
        let ben = view.named("ben").unwrap();
        assert!(ben.joined && ben.left);
        assert_eq!(ben.link, Some(LinkState::Connected));
        assert_eq!(ben.link_history.len(), 1);
        assert!(ben.connected_at.is_some());
        assert_eq!(ben.media, Some((false, true)));
        assert!(ben.stats_at.is_some());
        assert_eq!(ben.stats_history.len(), 1);
        assert_eq!(ben.stats_history[0].1.frames_sent, 7);
        assert_eq!(view.frames_sent, 7);
        assert_eq!(view.connected(), 1);
        assert_eq!(view.chats_from("ben").collect::<Vec<_>>(), ["hi"]);
        let remote: Vec<&str> = view.remote_chats().map(|c| c.text.as_str()).collect();
        assert_eq!(remote, ["hi"], "our own echo is not a remote chat");
        assert_eq!(view.errors, [crate::Problem::NotInCall]);
        assert_eq!(view.participants.len(), 1);
    }

    #[test]
    fn a_wait_that_cannot_be_met_times_out_naming_what_it_waited_for() {
        let mut observer = CallObserver::new("idle", start_engine(small_engine_config("idle")));
        let started = Instant::now();
        let err = observer
            .pump_until(
                "something that never comes",
                Duration::from_millis(300),
                |_| false,
            )
            .unwrap_err();
        let waited = started.elapsed();
        assert!(matches!(err, WaitError::TimedOut { .. }), "{err}");
        assert!(
            err.to_string().contains("something that never comes"),
            "{err}"
        );
        assert!(
            waited >= Duration::from_millis(300),
            "returned early: {waited:?}"
        );
        // A condition that already holds returns at once, without waiting.
        observer
            .pump_until("nothing", Duration::from_secs(30), |_| true)
            .unwrap();
        observer.shutdown();
    }
}
