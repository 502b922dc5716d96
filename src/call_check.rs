//! "Test my call": a short real call between the person's own engine (their camera, microphone,
//! speaker and settings) and a test peer in the same process, through the server they call
//! through (or a private one on this computer), and a result in plain words.
//!
//! # What it checks
//!
//! The whole call path, not just the devices: the signaling server; STUN and TURN (the local
//! candidates the connection gathered); camera → encoder → WebRTC over UDP → the test peer's
//! decoder (the picture it decoded is what the screen shows as "what the others see");
//! microphone → the test peer's playout (how loud the person is there); the test peer's sound →
//! the person's speaker → their microphone → echo cancellation → the test peer (whether its
//! beeps come back, and AEC3's ERLE); and, when the server has a TURN relay, the upload speed
//! through it: the test peer then accepts only relayed paths, so the media crosses the uplink.
//!
//! # Contract
//!
//! [`CallCheck`] is a state machine driven from outside without blocking, so the desktop app
//! runs it on its UI thread and `confab check` in a loop ([`headless`]):
//! - [`CallCheck::start`] starts the private server if needed and returns the `Join` the
//!   person's engine must be given;
//! - every event of that engine goes to [`CallCheck::on_engine_event`] with the time it is
//!   handled; events from before the check's own `Join` took effect (a previous call still
//!   ending) are ignored: the check counts from the `CallState::Connecting` its `Join` produces;
//! - [`CallCheck::poll`] (call it often, at least every 100 ms, with the time) advances the
//!   check and returns the commands for the person's engine (the final `Leave`);
//! - [`CallCheck::report`] is the result once [`CallCheck::is_done`];
//! - whoever leaves the check (done or cancelled) while [`CallCheck::call_open`] must treat the
//!   engine's call events up to its next `CallState::Ended` as the check's, not a new call's.
//!
//! It never waits on a network: each stage has a deadline (joining 15 s, connecting 15 s, a
//! relay-only attempt 10 s before falling back to a direct connection), and its end is a
//! report either way. The test peer and the private server stop on threads of their own.

pub mod far_end;
pub mod headless;
pub mod report;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use signaling_client::ParticipantId;

use crate::host::HostedServer;
use confab_engine::devices::DeviceState;
use confab_engine::{
    CallState, EndReason, EngineCommand, EngineEvent, LinkState, ParticipantStats, Repaint,
    VideoFrameEvent,
};
use far_end::{FAR_END_NAME, FarEnd};
use report::{CheckReport, JoinFailure, Measurements, Sources, Through};

/// Longest wait for the server to let us in.
const JOIN_DEADLINE: Duration = Duration::from_secs(15);
/// Longest wait for the connection to the test peer.
const CONNECT_DEADLINE: Duration = Duration::from_secs(15);
/// A relay-only connection not up by then is given up for a direct one.
const RELAY_DEADLINE: Duration = Duration::from_secs(10);
/// Time an echo canceller gets to settle before the returning echo is measured (or half the
/// measuring time, if shorter): AEC3 finds its delay and converges within about 2 s.
const ECHO_SETTLE: Duration = Duration::from_secs(3);
/// How much of the end of the measuring time the upload figure is taken from: the estimate
/// starts at the configured start bitrate and needs seconds to move to what the path allows.
const ESTIMATE_TAIL: Duration = Duration::from_secs(3);
/// How long to wait for the server's STUN/TURN list after joining before going on without it.
const ICE_SERVERS_GRACE: Duration = Duration::from_secs(1);

/// Where the check's call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckTarget {
    /// A private server on this computer (nothing outside it is tried).
    ThisComputer,
    /// The server the person calls through.
    Server {
        /// As the person typed it (for the result's wording).
        address: String,
        /// Its signaling URL.
        url: String,
    },
}

/// How to run a check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Where the call goes.
    pub target: CheckTarget,
    /// Seconds of media to measure once connected.
    pub seconds: f64,
    /// Local addresses for the test peer's ICE (the person's engine's).
    pub bind_addrs: Vec<SocketAddr>,
    /// What the person's engine uses, for the wording.
    pub sources: Sources,
}

/// Why a check could not start.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The private server did not start.
    #[error("cannot start the test server: {0}")]
    Server(String),
    /// The test peer's engine did not start.
    #[error("cannot start the test peer: {0}")]
    FarEnd(#[from] confab_engine::EngineError),
}

/// Where a check is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stage {
    /// Joining the server.
    Joining,
    /// Connecting to the test peer.
    Connecting,
    /// Measuring: the fraction of the measuring time that has passed.
    Measuring(f32),
    /// Finished.
    Done,
}

enum Phase {
    Joining,
    Connecting { since: Instant },
    Measuring { since: Instant, settled: bool },
    Done,
}

/// A running (or finished) call check; see the module docs.
pub struct CallCheck {
    options: CheckOptions,
    /// The check's `Join` took effect (its `CallState::Connecting` came).
    armed: bool,
    /// The check's call ended (its `CallState::Ended` came).
    call_ended: bool,
    /// The bandwidth estimate toward the test peer while measuring, with when it came.
    estimates: Vec<(Instant, f64)>,
    url: String,
    room: String,
    repaint: Repaint,
    started: Instant,
    phase: Phase,
    server: Option<HostedServer>,
    far: Option<FarEnd>,
    joined_at: Option<Instant>,
    ice_servers: Option<Vec<String>>,
    far_id: Option<ParticipantId>,
    connected_at: Option<Instant>,
    last_stats: Option<ParticipantStats>,
    measured: Measurements,
    report: Option<CheckReport>,
}

impl std::fmt::Debug for CallCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallCheck")
            .field("room", &self.room)
            .field("stage", &self.stage())
            .finish_non_exhaustive()
    }
}

impl CallCheck {
    /// Starts a check: the private server if the target is this computer. Returns the check and
    /// the command that sends the person's engine into the test room.
    ///
    /// # Errors
    /// [`CheckError::Server`] when the private server cannot start.
    pub fn start(
        options: CheckOptions,
        repaint: Repaint,
        now: Instant,
    ) -> Result<(Self, EngineCommand), CheckError> {
        let (server, url) = match &options.target {
            CheckTarget::ThisComputer => {
                let server =
                    HostedServer::start_on([127, 0, 0, 1].into(), 0).map_err(CheckError::Server)?;
                let url = server.local_url();
                (Some(server), url)
            }
            CheckTarget::Server { url, .. } => (None, url.clone()),
        };
        let room = format!("confab-check-{:016x}", rand::random::<u64>());
        let join = EngineCommand::Join {
            url: url.clone(),
            room: room.clone(),
            password: None,
        };
        let check = Self {
            options,
            armed: false,
            call_ended: false,
            estimates: Vec::new(),
            url,
            room,
            repaint,
            started: now,
            phase: Phase::Joining,
            server,
            far: None,
            joined_at: None,
            ice_servers: None,
            far_id: None,
            connected_at: None,
            last_stats: None,
            measured: Measurements {
                heard_loudest_db: -100.0,
                ..Measurements::default()
            },
            report: None,
        };
        Ok((check, join))
    }

    /// Takes one event of the person's engine, handled at `now`.
    pub fn on_engine_event(&mut self, event: &EngineEvent, now: Instant) {
        if !self.armed {
            // Until our Join took effect, events are a previous call's.
            self.armed = matches!(event, EngineEvent::CallState(CallState::Connecting));
            return;
        }
        if self.call_ended {
            return;
        }
        let measuring = matches!(self.phase, Phase::Measuring { .. });
        match event {
            EngineEvent::CallState(CallState::InCall { .. }) if self.joined_at.is_none() => {
                self.joined_at = Some(now);
                self.measured.joined_ms = Some(ms(now - self.started));
            }
            EngineEvent::CallState(CallState::Ended { reason }) => {
                self.call_ended = true;
                if !matches!(self.phase, Phase::Done) {
                    if self.joined_at.is_none() {
                        self.measured.join_failure = Some(JoinFailure::Ended(reason.clone()));
                    } else {
                        self.measured.ended_early = Some(reason.clone());
                    }
                    self.finish(now);
                }
            }
            EngineEvent::IceServers(urls) => self.ice_servers = Some(urls.clone()),
            EngineEvent::ParticipantJoined { id, name } if name == FAR_END_NAME => {
                self.far_id = Some(id.clone());
            }
            EngineEvent::Link { id, state }
                if Some(id) == self.far_id.as_ref()
                    && *state == LinkState::Connected
                    && self.connected_at.is_none() =>
            {
                self.connected_at = Some(now);
                self.measured.connected_ms = Some(ms(now - self.started));
                self.phase = Phase::Measuring {
                    since: now,
                    settled: false,
                };
            }
            EngineEvent::Stats(all) => {
                if let Some(s) = all
                    .iter()
                    .find(|s| Some(s.id.as_str()) == self.far_id_str())
                {
                    if measuring {
                        self.estimates.push((now, s.bandwidth_estimate_kbps));
                    }
                    self.last_stats = Some(s.clone());
                }
            }
            EngineEvent::MicLevel(db) if measuring => {
                let loudest = self.measured.mic_loudest_db.get_or_insert(*db);
                *loudest = loudest.max(*db);
            }
            EngineEvent::AudioProcessing(p) => {
                self.measured.echo_cancellation = p.settings.echo_cancellation;
                if measuring {
                    if let Some(erle) = p.erle_db.filter(|v| v.is_finite()) {
                        let best = self.measured.erle_db.get_or_insert(erle);
                        *best = best.max(erle);
                    }
                    self.measured.erl_db = p.erl_db.filter(|v| v.is_finite());
                    if let Some(delay) = p.aec_delay_ms {
                        self.measured.echo_delay_ms =
                            Some((delay, p.stream_delay_hint_ms.unwrap_or(0)));
                    }
                }
            }
            EngineEvent::Device(notice) if notice.state != DeviceState::Running => {
                self.measured.device_problems.push(notice.clone());
            }
            _ => {}
        }
    }

    /// The person's engine stopped (its events are gone): the check ends with what it has.
    pub fn engine_stopped(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Done) {
            return;
        }
        self.call_ended = true;
        if self.joined_at.is_none() {
            self.measured.join_failure = Some(JoinFailure::Ended(EndReason::AppClosed));
        } else {
            self.measured.ended_early = Some(EndReason::AppClosed);
        }
        self.finish(now);
    }

    /// Whether the check's call may still send events: its `Join` was sent and its `Ended` has
    /// not come (see the module docs).
    pub fn call_open(&self) -> bool {
        !self.call_ended
    }

    fn far_id_str(&self) -> Option<&str> {
        self.far_id.as_ref().map(ParticipantId::as_str)
    }

    /// Advances the check to `now`; returns commands for the person's engine.
    pub fn poll(&mut self, now: Instant) -> Vec<EngineCommand> {
        if let Some(far) = &mut self.far {
            far.drain();
        }
        match self.phase {
            Phase::Joining => {
                if let Some(joined) = self.joined_at {
                    if self.ice_servers.is_some() || now - joined >= ICE_SERVERS_GRACE {
                        self.call_in(false);
                    }
                } else if now - self.started >= JOIN_DEADLINE {
                    self.measured.join_failure = Some(JoinFailure::NoAnswer {
                        seconds: JOIN_DEADLINE.as_secs(),
                    });
                    return self.finish(now);
                }
            }
            Phase::Connecting { since } => {
                let relay_only = self.far.as_ref().is_some_and(|f| f.relay_only);
                if relay_only && now - since >= RELAY_DEADLINE {
                    // The relay does not carry the call: measure the rest on a direct path.
                    self.measured.relay_attempt_failed = true;
                    if let Some(far) = self.far.take() {
                        far.stop_in_background();
                    }
                    self.far_id = None;
                    self.call_in(true);
                } else if now - since >= CONNECT_DEADLINE {
                    return self.finish(now);
                }
            }
            Phase::Measuring { since, settled } => {
                let elapsed = (now - since).as_secs_f64();
                if elapsed >= self.options.seconds {
                    return self.finish(now);
                }
                let settle = ECHO_SETTLE.as_secs_f64().min(self.options.seconds / 2.0);
                if !settled && elapsed >= settle {
                    if let Some(far) = &self.far {
                        far.ear.restart_echo_fold();
                    }
                    self.phase = Phase::Measuring {
                        since,
                        settled: true,
                    };
                }
            }
            Phase::Done => {}
        }
        Vec::new()
    }

    /// Starts the test peer and sends it into the room; `direct` forbids relay-only.
    fn call_in(&mut self, direct: bool) {
        let turn = self
            .ice_servers
            .as_ref()
            .is_some_and(|urls| urls.iter().any(|u| is_turn_url(u)));
        let relay_only =
            !direct && turn && matches!(self.options.target, CheckTarget::Server { .. });
        match FarEnd::start(
            self.options.bind_addrs.clone(),
            relay_only,
            std::sync::Arc::clone(&self.repaint),
        ) {
            Ok(far) => {
                far.join(&self.url, &self.room);
                self.measured.far_relay_only = relay_only;
                self.far = Some(far);
                self.phase = Phase::Connecting {
                    since: Instant::now(),
                };
            }
            Err(e) => {
                tracing::warn!("call check: {e}");
                self.measured.far_end_failure = Some(e.to_string());
                self.finish(Instant::now());
            }
        }
    }

    /// Ends the check: the result from what was measured, the test peer and the private server
    /// stopped in the background, and the person's engine told to leave (unless its call
    /// already ended).
    fn finish(&mut self, now: Instant) -> Vec<EngineCommand> {
        if matches!(self.phase, Phase::Done) {
            return Vec::new();
        }
        if let Phase::Measuring { since, .. } = self.phase {
            self.measured.seconds = (now - since).as_secs_f64();
        }
        self.phase = Phase::Done;
        let mut m = std::mem::take(&mut self.measured);
        m.ice_servers = self.ice_servers.clone().unwrap_or_default();
        m.estimate_kbps = tail_median(&self.estimates, now);
        // The estimate starts at the start bitrate and only climbs on a path with room to
        // spare; a path that limits the call pushes it down below where it started.
        let start = self.estimates.first().map_or(0.0, |(_, kbps)| *kbps);
        let lowest = self
            .estimates
            .iter()
            .map(|(_, kbps)| *kbps)
            .fold(f64::INFINITY, f64::min);
        m.estimate_held_back = lowest < start * 0.9;
        if let Some(s) = &self.last_stats {
            m.candidates = s.local_candidates.clone();
            m.path.clone_from(&s.candidate_type);
            m.rtt_ms = s.rtt_ms;
            m.video_kbps_out = s.video_kbps_out;
            m.frames_sent = s.frames_sent;
            m.played_ms = s.audio_played_ms;
        }
        if let Some(far) = &self.far {
            let pictures = &far.observer.frames;
            m.frames_decoded = pictures.frames;
            m.frames_black = pictures.black;
            m.frames_still = pictures.still;
            m.picture = pictures.size;
            if let Some(me) = far.observer.view.participants.values().next()
                && let Some(s) = &me.stats
            {
                m.fps_decoded = s.fps_in;
            }
            let hearing = far.ear.hearing();
            m.heard_loudest_db = hearing.loudest_db;
            m.heard_ms = hearing.decoded_ms;
            m.echo = hearing.echo;
        }
        m.relay_tested = m.far_relay_only && m.connected_ms.is_some();
        self.stop_helpers();
        let through = match &self.options.target {
            CheckTarget::ThisComputer => Through::ThisComputer,
            CheckTarget::Server { address, .. } => Through::Server {
                address: address.clone(),
            },
        };
        self.report = Some(CheckReport::from_measurements(
            through,
            self.options.sources.clone(),
            m,
        ));
        (self.repaint)();
        self.leave()
    }

    /// The test peer and the private server, stopped in the background.
    fn stop_helpers(&mut self) {
        if let Some(far) = self.far.take() {
            far.stop_in_background();
        }
        if let Some(server) = self.server.take() {
            server.end_in_background();
        }
    }

    /// What the person's engine must do to leave the check's call: nothing once it ended.
    fn leave(&self) -> Vec<EngineCommand> {
        if self.call_ended {
            Vec::new()
        } else {
            vec![EngineCommand::Leave]
        }
    }

    /// Stops the check without a result (the person cancelled it). Returns the commands for the
    /// person's engine; [`CallCheck::call_open`] still says whether the call's end is to come.
    pub fn cancel(&mut self) -> Vec<EngineCommand> {
        if matches!(self.phase, Phase::Done) {
            return Vec::new();
        }
        self.phase = Phase::Done;
        self.stop_helpers();
        self.leave()
    }

    /// Where the check is.
    pub fn stage(&self) -> Stage {
        match self.phase {
            Phase::Joining => Stage::Joining,
            Phase::Connecting { .. } => Stage::Connecting,
            Phase::Measuring { since, .. } => Stage::Measuring(
                (since.elapsed().as_secs_f64() / self.options.seconds.max(0.1)).min(1.0) as f32,
            ),
            Phase::Done => Stage::Done,
        }
    }

    /// Whether the result is ready.
    pub fn is_done(&self) -> bool {
        self.report.is_some()
    }

    /// The result, once done.
    pub fn report(&self) -> Option<&CheckReport> {
        self.report.as_ref()
    }

    /// The newest picture of the person's camera as the test peer decoded it, once.
    pub fn take_far_picture(&mut self) -> Option<VideoFrameEvent> {
        self.far
            .as_mut()
            .and_then(|f| f.observer.frames.newest.take())
    }

    /// The room the check uses (random, private to it).
    pub fn room(&self) -> &str {
        &self.room
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A device's name for the result's sentences: its listed name, "the system default KIND
/// (NAME)" for the default, or the id itself when it is not listed (unplugged).
pub fn device_name(list: &[confab_engine::devices::DeviceInfo], id: &str, kind: &str) -> String {
    if id == confab_engine::devices::DEFAULT_DEVICE {
        return match list.iter().find(|d| d.is_default) {
            Some(d) => format!("the system default {kind} ({})", d.name),
            None => format!("the system default {kind}"),
        };
    }
    list.iter()
        .find(|d| d.id == id)
        .map_or_else(|| id.to_owned(), |d| d.name.clone())
}

/// Whether a STUN/TURN URL names a TURN server.
pub(crate) fn is_turn_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("turn:") || lower.starts_with("turns:")
}

/// The median of the estimates from the last [`ESTIMATE_TAIL`] before `now` (all of them when
/// fewer came then), 0 without any.
fn tail_median(estimates: &[(Instant, f64)], now: Instant) -> f64 {
    let mut tail: Vec<f64> = estimates
        .iter()
        .filter(|(at, _)| now.saturating_duration_since(*at) <= ESTIMATE_TAIL)
        .map(|(_, kbps)| *kbps)
        .collect();
    if tail.is_empty() {
        tail = estimates.iter().map(|(_, kbps)| *kbps).collect();
    }
    if tail.is_empty() {
        return 0.0;
    }
    tail.sort_by(f64::total_cmp);
    tail[tail.len() / 2]
}

#[cfg(test)]
#[path = "call_check_tests.rs"]
mod tests;
