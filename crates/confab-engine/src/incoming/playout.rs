//! The audio playout thread (`confab-playout`).
//!
//! Owns: [`PlayoutThread`] (a [`Worker`]) and what it takes besides the mixer,
//! [`PlayoutControls`].
//!
//! Contract: every 20 ms on a steady clock (no catch-up burst after a stall) the thread pulls
//! the shared mixer, which first moves each participant's queued packets from its inlet into
//! its jitter buffer, and plays the mix into the audio sink; the same samples, with the sink's
//! output delay, go to the render tap (the echo canceller's far-end reference) and to the
//! probe, and each participant's share of them to the levels tap (who is talking). A speaker switch is opened on this thread; one that fails is reported as an `Absent`
//! notice and the thread plays nowhere (the call goes on). Dropping the [`PlayoutThread`]
//! stops and joins it; a thread that cannot be started is an [`EngineError::Media`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use signaling_client::ParticipantId;

use super::SharedMixer;
use super::speaking::SpeakingMeter;
use crate::EngineError;
use crate::api::{AudioOutput, MediaProbe};
use crate::devices::{DeviceKind, DeviceNotice, DeviceState, DeviceStatus, open_sink};
use crate::media::CaptureTime;
use crate::media::jitter_buffer::FrameKind;
use crate::media::{AudioSink, NullSink};
use crate::worker::Worker;

/// What the playout thread takes besides the mixer.
pub(crate) struct PlayoutControls {
    /// Switch to another output (opened on the playout thread; no renegotiation).
    pub(crate) switch: crossbeam_channel::Receiver<AudioOutput>,
    /// Where device notices (speaker lost, switched, absent) go.
    pub(crate) status: DeviceStatus,
    /// Every played 20 ms also goes here: the echo canceller's far-end reference.
    pub(crate) render: Option<RenderTap>,
    /// Each participant's level every 100 ms while anyone is heard (see [`SpeakingMeter`]).
    pub(crate) levels: Option<LevelsTap>,
}

/// Receives each remote participant's level (dBFS) over the last 100 ms.
pub(crate) type LevelsTap = Arc<dyn Fn(Vec<(ParticipantId, f32)>) + Send + Sync>;

/// Receives what is played, with the sink's output delay (the echo canceller's reference).
pub(crate) type RenderTap = Arc<dyn Fn(&[f32], Duration) + Send + Sync>;

/// The playout thread: pulls the mixer every 20 ms.
pub(crate) struct PlayoutThread {
    /// Dropping it raises its stop flag and joins the thread (within one 20 ms period).
    _thread: Worker,
}

impl PlayoutThread {
    /// Starts `confab-playout`: pulls `mixer` every 20 ms into `sink` (see the module docs).
    pub(crate) fn spawn(
        mixer: SharedMixer,
        mut sink: Box<dyn AudioSink>,
        probe: Option<Arc<dyn MediaProbe>>,
        controls: PlayoutControls,
    ) -> Result<Self, EngineError> {
        let thread = Worker::spawn("confab-playout", move |stop| {
            let period = Duration::from_millis(20);
            let mut next = Instant::now() + period;
            let mut speaking = SpeakingMeter::default();
            while !stop.is_raised() {
                if let Ok(output) = controls.switch.try_recv() {
                    sink = switch_sink(&output, &controls.status);
                }
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
                next += period;
                // After a stall (suspend, debugger) do not try to catch up frame by frame.
                if Instant::now() > next + period * 5 {
                    next = Instant::now() + period;
                }
                let at = CaptureTime::now();
                let mixed = match mixer.lock() {
                    Ok(mut m) => m.pull(at),
                    Err(_) => return,
                };
                let decoded = mixed
                    .kinds
                    .iter()
                    .any(|(_, k)| !matches!(k, FrameKind::Silence));
                sink.play(&mixed.samples);
                if let Some(render) = &controls.render {
                    render(&mixed.samples, sink.output_delay());
                }
                if let Some(p) = &probe {
                    p.audio_played(&mixed.samples, at, decoded);
                }
                if let (Some(tap), Some(levels)) =
                    (&controls.levels, speaking.push(&mixed.energies))
                {
                    tap(levels);
                }
            }
        })
        .map_err(|e| EngineError::Media(e.to_string()))?;
        Ok(Self { _thread: thread })
    }
}

/// Opens `output`; on failure tells the user and plays nowhere (the call goes on).
fn switch_sink(output: &AudioOutput, status: &DeviceStatus) -> Box<dyn AudioSink> {
    match open_sink(output, Arc::clone(status)) {
        Ok(sink) => sink,
        Err(e) => {
            let device = match output {
                AudioOutput::Speaker(id) => id.clone(),
                AudioOutput::None => String::new(),
            };
            status(DeviceNotice {
                kind: DeviceKind::Speaker,
                state: DeviceState::Absent,
                device,
                message: format!("{e} You will not hear the others."),
            });
            Box::new(NullSink)
        }
    }
}
