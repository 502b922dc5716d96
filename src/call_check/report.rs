//! A call check's result in plain words: one [`CheckItem`] per part of the call path (server,
//! network, camera, microphone, speaker and echo, upload), each with a status and a sentence,
//! and the figures behind them for the "Details" toggle.
//!
//! [`CheckReport::from_measurements`] is a pure function of [`Measurements`] (what the check
//! measured), so every sentence is unit-tested without devices or a network.

mod verdicts;

use serde::{Deserialize, Serialize};

use confab_engine::devices::{DeviceKind, DeviceNotice};
use confab_engine::{EndReason, LocalCandidates};

/// How one part of the call path did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Works.
    Good,
    /// Works, with something the person should know or fix.
    Warning,
    /// Does not work.
    Problem,
    /// Not part of this check (no device chosen, nothing to test against).
    Skipped,
}

/// Which part of the call path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Reaching the signaling server and the test peer.
    Connection,
    /// STUN and TURN: whether people outside this network can reach us.
    Network,
    /// Camera → encoder → network → decoder.
    Camera,
    /// Microphone → network → the others' speakers.
    Microphone,
    /// The test sound on our speaker, and what echo cancellation left of it.
    Speaker,
    /// How much video we can send.
    Upload,
}

impl Part {
    /// The row's title.
    pub fn title(self) -> &'static str {
        match self {
            Self::Connection => "Connection",
            Self::Network => "Reaching people elsewhere",
            Self::Camera => "Camera",
            Self::Microphone => "Microphone",
            Self::Speaker => "Speaker and echo",
            Self::Upload => "Upload speed",
        }
    }
}

/// One row of the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckItem {
    /// Which part.
    pub part: Part,
    /// How it did.
    pub status: Status,
    /// What to tell the person, one or two sentences.
    pub text: String,
}

/// What the person's engine was set to use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sources {
    /// The camera's name, `None` without one.
    pub camera: Option<String>,
    /// The microphone's name, `None` without one.
    pub microphone: Option<String>,
    /// The microphone is the test tone (no echo cancellation applies to it).
    pub test_tone: bool,
    /// The speaker's name, `None` without one.
    pub speaker: Option<String>,
    /// The most video the settings send, kbit/s.
    pub max_video_kbps: u32,
}

/// Where the check ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Through {
    /// A private server inside this app: nothing outside this computer was tried.
    ThisComputer,
    /// The server the person calls through.
    Server {
        /// Its address as given.
        address: String,
    },
}

/// Why the check's call never got into the room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinFailure {
    /// The engine's call ended first (unreachable, refused, …).
    Ended(EndReason),
    /// No answer within the deadline.
    NoAnswer {
        /// The deadline, seconds.
        seconds: u64,
    },
}

/// Everything a check measured, as plain figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurements {
    /// The signaling server answered, and how long joining took (ms).
    pub joined_ms: Option<f64>,
    /// Why joining failed.
    pub join_failure: Option<JoinFailure>,
    /// The call ended after joining, before the check was over (the server dropped it).
    pub ended_early: Option<EndReason>,
    /// The test peer's engine did not start (the engine's error).
    pub far_end_failure: Option<String>,
    /// The STUN and TURN URLs the server handed out.
    pub ice_servers: Vec<String>,
    /// The connection to the test peer came up, after how long (ms).
    pub connected_ms: Option<f64>,
    /// The test peer used TURN relays only.
    pub far_relay_only: bool,
    /// A relay-only attempt failed and the check fell back to a direct connection.
    pub relay_attempt_failed: bool,
    /// The test peer took relayed paths only and the call connected: the relay carries calls.
    pub relay_tested: bool,
    /// Our local candidates for the connection.
    pub candidates: LocalCandidates,
    /// The path the connection took (`host`, `srflx`, `prflx`, `relay`).
    pub path: Option<String>,
    /// Round trip (ms).
    pub rtt_ms: Option<f64>,
    /// Bandwidth estimate toward the test peer (kbit/s): the median of its last 3 s, once it
    /// had the measuring time to move from the start bitrate to what the path allows.
    pub estimate_kbps: f64,
    /// The path pushed the estimate below where it started (congestion control backed off): the
    /// figure is the path's limit. Otherwise the estimate only climbed, and the path allows at
    /// least that much.
    pub estimate_held_back: bool,
    /// Video we sent (kbit/s, the last second).
    pub video_kbps_out: f64,
    /// Pictures our encoder sent.
    pub frames_sent: u64,
    /// Pictures the test peer decoded, and of them black and unchanged ones.
    pub frames_decoded: u64,
    /// Of those, almost uniformly dark.
    pub frames_black: u64,
    /// Of those, identical to the one before.
    pub frames_still: u64,
    /// Size of the pictures the test peer decoded.
    pub picture: Option<(u32, u32)>,
    /// Pictures a second the test peer decoded (last second).
    pub fps_decoded: f64,
    /// Seconds the media was measured for.
    pub seconds: f64,
    /// Loudest 20 ms of our sound as the test peer played it (dBFS).
    pub heard_loudest_db: f32,
    /// Our sound the test peer played (ms).
    pub heard_ms: u64,
    /// Our microphone's loudest level, after processing, as our engine measured it (dBFS).
    pub mic_loudest_db: Option<f32>,
    /// The test peer's beeps coming back in our sound, once echo cancellation had 3 s to
    /// settle: level (dBFS) and how far it stands out of the beep period (dB).
    pub echo: Option<(f64, f64)>,
    /// Echo cancellation's best echo return loss enhancement (dB).
    pub erle_db: Option<f64>,
    /// Echo cancellation's echo return loss estimate (dB).
    pub erl_db: Option<f64>,
    /// Echo cancellation's estimate of the delay from speaker to microphone (ms), and the
    /// delay the speaker's buffer reported as a hint (ms).
    pub echo_delay_ms: Option<(i32, u32)>,
    /// Echo cancellation is on.
    pub echo_cancellation: bool,
    /// The test peer's sound we played (ms).
    pub played_ms: f64,
    /// Device problems reported during the check (lost, absent, replaced by the default).
    pub device_problems: Vec<DeviceNotice>,
}

impl Measurements {
    /// The latest problem reported for a kind of device, in the engine's words.
    pub(super) fn problem(&self, kind: DeviceKind) -> Option<&str> {
        self.device_problems
            .iter()
            .rev()
            .find(|n| n.kind == kind)
            .map(|n| n.message.as_str())
    }
}

/// A dB figure over which the returned beeps count as an echo the others hear.
pub const ECHO_STANDS_OUT_DB: f64 = 12.0;
/// Below this (dBFS at the beep frequency) returned beeps are too faint to hear over a call:
/// 40 dB under the echo a microphone that hears the speaker fully sends without echo
/// cancellation (-9 to -12 dBFS in `tests/call_check.rs`'s PulseAudio test).
pub const ECHO_AUDIBLE_DBFS: f64 = -50.0;
/// A voice counts as heard above this level.
pub const VOICE_DBFS: f32 = -45.0;

/// The result of a call check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Where it ran.
    pub through: Through,
    /// What was used.
    pub sources: Sources,
    /// One line for the whole check.
    pub summary: String,
    /// The worst status of the rows (never `Skipped`: all good or skipped is `Good`).
    pub status: Status,
    /// The rows.
    pub items: Vec<CheckItem>,
    /// The figures.
    pub measurements: Measurements,
}

impl CheckReport {
    /// Words the measurements.
    pub fn from_measurements(through: Through, sources: Sources, m: Measurements) -> Self {
        use verdicts::{camera, connection, microphone, network, speaker, upload};
        let mut items = vec![connection(&through, &m)];
        if m.connected_ms.is_some() {
            items.push(network(&through, &m));
            items.push(camera(&sources, &m));
            items.push(microphone(&sources, &m));
            items.push(speaker(&sources, &m));
            items.push(upload(&through, &sources, &m));
        } else {
            for part in [
                Part::Network,
                Part::Camera,
                Part::Microphone,
                Part::Speaker,
                Part::Upload,
            ] {
                items.push(CheckItem {
                    part,
                    status: Status::Skipped,
                    text: "Not tested: the test call did not connect.".into(),
                });
            }
            if !m.ice_servers.is_empty() || matches!(through, Through::Server { .. }) {
                items[1] = network(&through, &m);
            }
        }
        let status = worst(&items);
        let summary = match status {
            Status::Good | Status::Skipped => "Your call works.",
            Status::Warning => "Your call works; see the notes below.",
            Status::Problem => "Something in your call does not work; see below.",
        }
        .to_owned();
        Self {
            through,
            sources,
            summary,
            status,
            items,
            measurements: m,
        }
    }

    /// The result as text, one row a line (the CLI's output).
    pub fn render_text(&self) -> String {
        let mut out = format!("{}\n", self.summary);
        for item in &self.items {
            let mark = match item.status {
                Status::Good => "ok  ",
                Status::Warning => "note",
                Status::Problem => "FAIL",
                Status::Skipped => "-   ",
            };
            out.push_str(&format!(
                "  [{mark}] {}: {}\n",
                item.part.title(),
                item.text
            ));
        }
        out
    }

    /// The figures behind the words, as label and value, for the details toggle.
    pub fn details(&self) -> Vec<(&'static str, String)> {
        let m = &self.measurements;
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0} ms"));
        let c = &m.candidates;
        vec![
            ("Joined the server in", ms(m.joined_ms)),
            ("Connected to the test peer in", ms(m.connected_ms)),
            ("STUN/TURN servers", list(&m.ice_servers)),
            (
                "Local addresses: own / public / relay",
                format!("{} / {} / {}", c.host, c.srflx, c.relay),
            ),
            (
                "Public address",
                c.public_address.clone().unwrap_or_else(|| "-".into()),
            ),
            (
                "Relay address",
                c.relay_address.clone().unwrap_or_else(|| "-".into()),
            ),
            ("Path used", m.path.clone().unwrap_or_else(|| "-".into())),
            ("Round trip", ms(m.rtt_ms)),
            (
                "Bandwidth estimate (last 3 s)",
                format!("{:.0} kbit/s", m.estimate_kbps),
            ),
            ("Video sent", format!("{:.0} kbit/s", m.video_kbps_out)),
            (
                "Pictures sent / decoded there",
                format!("{} / {}", m.frames_sent, m.frames_decoded),
            ),
            (
                "Picture size there, pictures a second",
                match m.picture {
                    Some((w, h)) => format!("{w}x{h}, {:.0}", m.fps_decoded),
                    None => "-".into(),
                },
            ),
            (
                "Black / unchanged pictures",
                format!("{} / {}", m.frames_black, m.frames_still),
            ),
            (
                "Your sound there: loudest",
                format!("{:.0} dBFS over {} ms", m.heard_loudest_db, m.heard_ms),
            ),
            (
                "Microphone loudest (here)",
                m.mic_loudest_db
                    .map_or("-".into(), |v| format!("{v:.0} dBFS")),
            ),
            ("Test sound played here", format!("{:.0} ms", m.played_ms)),
            (
                "Beeps coming back: level, above the rest",
                m.echo
                    .map_or("-".into(), |(l, a)| format!("{l:.0} dBFS, {a:.0} dB")),
            ),
            (
                "Echo cancellation: ERLE / ERL",
                match (m.erle_db, m.erl_db) {
                    (None, None) => "-".into(),
                    (e, l) => format!(
                        "{} / {}",
                        e.map_or("-".into(), |v| format!("{v:.0} dB")),
                        l.map_or("-".into(), |v| format!("{v:.0} dB"))
                    ),
                },
            ),
            (
                "Echo delay: estimated / speaker buffer",
                m.echo_delay_ms
                    .map_or("-".into(), |(e, h)| format!("{e} ms / {h} ms")),
            ),
            ("Measured for", format!("{:.1} s", m.seconds)),
        ]
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn worst(items: &[CheckItem]) -> Status {
    let rank = |s: Status| match s {
        Status::Skipped | Status::Good => 0,
        Status::Warning => 1,
        Status::Problem => 2,
    };
    match items.iter().map(|i| rank(i.status)).max() {
        Some(2) => Status::Problem,
        Some(1) => Status::Warning,
        _ => Status::Good,
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
