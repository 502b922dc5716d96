//! Incoming media: per-participant video decoder threads and the audio playout thread.
//!
//! Video: the session hands each received access unit to that participant's decoder thread
//! (bounded queue; when it overflows the unit is dropped and a keyframe is requested, since
//! later units would not decode anyway). Decoded pictures go to the UI over a drop-oldest channel
//! and the repaint callback wakes it. A unit that fails to decode, or follows lost packets,
//! makes the thread ask the session for a PLI (the session rate-limits them).
//!
//! Audio: the session pushes each Opus RTP packet into the participant's jitter buffer in the
//! shared mixer; the playout thread pulls 20 ms from the mixer on a steady clock and hands it to
//! the audio sink (and the probe).
//!
//! Contract: once [`VideoDecoderThread`] is dropped (participant left), no frame of that
//! participant is delivered any more.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use signaling_client::ParticipantId;
use tokio::sync::mpsc::UnboundedSender;

use super::EngineError;
use super::api::{AudioOutput, AudioSink, MediaProbe, Repaint, VideoFrameEvent};
use super::devices::{DeviceKind, DeviceNotice, DeviceState, DeviceStatus, open_sink};
use super::media::CaptureTime;
use super::media::drop_oldest::DropOldestSender;
use super::media::h264::H264Decoder;
use super::media::jitter_buffer::FrameKind;
use super::media::mixer::AudioMixer;
use super::media::opus_codec::OpusDecoder;

/// Access units waiting for one decoder before new ones are dropped.
const DECODE_QUEUE: usize = 30;

/// The mixer shared by the session (push) and the playout thread (pull).
pub(crate) type SharedMixer = Arc<Mutex<AudioMixer<ParticipantId, OpusDecoder>>>;

/// Counters a decoder thread keeps for the stats.
#[derive(Debug, Default)]
pub(crate) struct DecodeCounters {
    pub(crate) decoded: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) decode_micros: AtomicU64,
    pub(crate) width: AtomicU32,
    pub(crate) height: AtomicU32,
}

struct Unit {
    data: Bytes,
    lost_before: bool,
}

/// One participant's decoder thread.
pub(crate) struct VideoDecoderThread {
    queue: Option<SyncSender<Unit>>,
    thread: Option<JoinHandle<()>>,
    pub(crate) counters: Arc<DecodeCounters>,
    keyframe_needed: UnboundedSender<ParticipantId>,
    id: ParticipantId,
}

impl VideoDecoderThread {
    /// Starts decoding for `id`; decoded frames go to `frames`, keyframe needs to `keyframe_needed`.
    pub(crate) fn spawn(
        id: ParticipantId,
        frames: DropOldestSender<VideoFrameEvent>,
        repaint: Repaint,
        keyframe_needed: UnboundedSender<ParticipantId>,
    ) -> Result<Self, EngineError> {
        let mut decoder = H264Decoder::new().map_err(|e| EngineError::Media(e.to_string()))?;
        let (tx, rx): (SyncSender<Unit>, Receiver<Unit>) = sync_channel(DECODE_QUEUE);
        let counters = Arc::new(DecodeCounters::default());
        let c = Arc::clone(&counters);
        let who = id.clone();
        let pli = keyframe_needed.clone();
        let thread = std::thread::Builder::new()
            .name(format!("confab-video-dec-{id}"))
            .spawn(move || {
                // Until a keyframe decodes, units after a loss are useless: ask once, wait.
                let mut broken = false;
                while let Ok(unit) = rx.recv() {
                    if unit.lost_before {
                        broken = true;
                        let _ = pli.send(who.clone());
                    }
                    let started = Instant::now();
                    match decoder.decode(&unit.data, CaptureTime::now()) {
                        Ok(Some(frame)) => {
                            let decoded_at = CaptureTime::now();
                            c.decode_micros
                                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                            c.decoded.fetch_add(1, Ordering::Relaxed);
                            c.width.store(frame.width(), Ordering::Relaxed);
                            c.height.store(frame.height(), Ordering::Relaxed);
                            broken = false;
                            frames.send(VideoFrameEvent {
                                from: Some(who.clone()),
                                frame,
                                decoded_at,
                            });
                            repaint();
                        }
                        Ok(None) => {}
                        Err(e) => {
                            c.dropped.fetch_add(1, Ordering::Relaxed);
                            if !broken {
                                tracing::debug!(id = %who, error = %e, "decode failed; requesting a keyframe");
                            }
                            broken = true;
                            let _ = pli.send(who.clone());
                        }
                    }
                }
            })
            .map_err(|e| EngineError::Media(format!("cannot start a decoder thread: {e}")))?;
        Ok(Self {
            queue: Some(tx),
            thread: Some(thread),
            counters,
            keyframe_needed,
            id,
        })
    }

    /// Queues one access unit; drops it (and asks for a keyframe) if the decoder is behind.
    pub(crate) fn push(&self, data: Bytes, lost_before: bool) {
        let Some(queue) = &self.queue else { return };
        match queue.try_send(Unit { data, lost_before }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                let _ = self.keyframe_needed.send(self.id.clone());
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl Drop for VideoDecoderThread {
    fn drop(&mut self) {
        // Closing the queue ends the thread after the unit in hand.
        self.queue.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the playout thread takes besides the mixer.
pub(crate) struct PlayoutControls {
    /// Switch to another output (opened on the playout thread; no renegotiation).
    pub(crate) switch: crossbeam_channel::Receiver<AudioOutput>,
    /// Where device notices (speaker lost, switched, absent) go.
    pub(crate) status: DeviceStatus,
    /// Every played 20 ms also goes here: the echo canceller's far-end reference.
    pub(crate) render: Option<RenderTap>,
}

/// Receives what is played, with the sink's output delay (the echo canceller's reference).
pub(crate) type RenderTap = Arc<dyn Fn(&[f32], Duration) + Send + Sync>;

/// The playout thread: pulls the mixer every 20 ms.
pub(crate) struct PlayoutThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PlayoutThread {
    pub(crate) fn spawn(
        mixer: SharedMixer,
        mut sink: Box<dyn AudioSink>,
        probe: Option<Arc<dyn MediaProbe>>,
        controls: PlayoutControls,
    ) -> Result<Self, EngineError> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("confab-playout".into())
            .spawn(move || {
                let period = Duration::from_millis(20);
                let mut next = Instant::now() + period;
                while !stop2.load(Ordering::Relaxed) {
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
                }
            })
            .map_err(|e| EngineError::Media(format!("cannot start the playout thread: {e}")))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for PlayoutThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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

/// A sink that discards audio (no sound card, or headless runs).
#[derive(Debug, Default)]
pub struct NullSink;

impl AudioSink for NullSink {
    fn play(&mut self, _samples: &[f32]) {}
}
