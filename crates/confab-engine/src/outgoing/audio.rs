//! The audio sender thread (`confab-audio-send`): capture → (microphone: processing) → Opus →
//! every peer, and the packet-loss hint that sizes Opus's in-band FEC.
//!
//! Owns: [`spawn_audio_sender`], the level meter behind `EngineEvent::MicLevel`, and
//! [`FecLossHint`], the pure rule turning the loss our peers report (RTCP receiver reports for
//! our audio stream, worst peer, once a second) into the encoder's `packet_loss_perc`.
//!
//! Contract: as for every sender, the thread never waits on the network, and stops when its
//! handle is dropped. Every 20 ms frame is sent (silence while muted) so the RTP clock keeps pace.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::Sender;
use tracing::{debug, warn};

use super::{EchoLink, Outgoing, SenderThread, Track, report_capture_end, spawn_sender};
use crate::EngineError;
use crate::api::{AudioInput, EngineEvent, MediaProbe};
use crate::devices::microphone::Microphone;
use crate::devices::sound_check::mean_square_dbfs;
use crate::devices::{DeviceKind, DeviceStatus};
use crate::media::audio_processing::{AudioProcessor, ProcessingSettings};
use crate::media::drop_oldest::DropOldestReceiver;
use crate::media::opus_codec::{OpusEncoder, OpusEncoderConfig};
use crate::media::source::{CaptureThread, spawn_audio, spawn_audio_with};
use crate::media::synthetic_audio::{SyntheticAudio, SyntheticAudioConfig};
use crate::media::wav::WavSource;
use crate::media::{AudioChunker, AudioFrame, SourceError};
use crate::reasons::Problem;

/// The packet-loss hint never goes below this (percent): FEC stays on for the first losses,
/// before any report says so. It must keep libopus out of CELT-only mode, which carries no FEC:
/// at 32 kbit/s it coded the synthetic voice as CELT with a hint of 5 % and as SILK/hybrid with
/// LBRR from 8 % (see the test below).
pub(crate) const FEC_LOSS_FLOOR: u8 = 10;
/// ...nor above this: beyond it, more FEC only takes bits from the audio itself.
pub(crate) const FEC_LOSS_CEILING: u8 = 30;
/// Share of the previous estimate kept at each report when loss falls (about 7 s half-life at
/// one report a second); a rise is taken at once.
const LOSS_DECAY: f64 = 0.9;

/// Turns reported loss into Opus's `packet_loss_perc` (see the module docs): fast attack, slow
/// decay (one report of a random-loss link swings by several percent), rounded up, within
/// [`FEC_LOSS_FLOOR`]..=[`FEC_LOSS_CEILING`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct FecLossHint {
    smoothed: f64,
}

impl FecLossHint {
    /// Folds in one report (`fraction` lost, 0..=1) and returns the hint in percent.
    pub(crate) fn on_report(&mut self, fraction: f64) -> u8 {
        let fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.smoothed = fraction.max(self.smoothed * LOSS_DECAY + fraction * (1.0 - LOSS_DECAY));
        self.percent()
    }

    /// The current hint in percent.
    pub(crate) fn percent(&self) -> u8 {
        let p = (self.smoothed * 100.0).ceil() as u8;
        p.clamp(FEC_LOSS_FLOOR, FEC_LOSS_CEILING)
    }
}

/// RMS level over ~100 ms windows, in dBFS.
#[derive(Default)]
struct LevelMeter {
    sum_squares: f64,
    samples: usize,
}

impl LevelMeter {
    const WINDOW: usize = 4800;

    /// Adds samples; returns the level when a window is complete.
    fn push(&mut self, samples: &[f32]) -> Option<f32> {
        self.sum_squares += samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>();
        self.samples += samples.len();
        if self.samples < Self::WINDOW {
            return None;
        }
        let mean = self.sum_squares / self.samples as f64;
        *self = Self::default();
        Some(mean_square_dbfs(mean) as f32)
    }
}

/// Opens the audio source for `input` and starts its capture thread.
fn open_audio(
    input: &AudioInput,
    status: DeviceStatus,
) -> Result<(CaptureThread, DropOldestReceiver<AudioFrame>), EngineError> {
    let media = |e: &dyn std::fmt::Display| EngineError::Media(e.to_string());
    match input {
        AudioInput::Microphone(id) => {
            let id = id.clone();
            // Opened on its capture thread: the device callback wakes the thread that reads.
            spawn_audio_with("confab-audio-mic", 16, move || {
                Microphone::open(Some(&id), status).map_err(|e| SourceError::Device(e.to_string()))
            })
            .map_err(|e| media(&e))
        }
        AudioInput::None => Err(EngineError::Media("no audio input".into())),
        AudioInput::Synthetic | AudioInput::TestVoice => {
            let config = if *input == AudioInput::TestVoice {
                SyntheticAudioConfig::test_voice()
            } else {
                SyntheticAudioConfig::default()
            };
            let source = SyntheticAudio::new(config).map_err(|e| media(&e))?;
            spawn_audio(source, 8).map_err(|e| media(&e))
        }
        AudioInput::WavFile(path) => {
            let source = WavSource::open(path)
                .and_then(|s| s.with_frame_samples(AudioFrame::SAMPLES_20MS))
                .map_err(|e| media(&e))?;
            spawn_audio(source, 8).map_err(|e| media(&e))
        }
    }
}

/// Starts the audio sender for `input`; `Ok(None)` for [`AudioInput::None`]. Like the video
/// sender, it opens its source on its own thread and reports failures through `errors`.
pub(crate) fn spawn_audio_sender(
    input: &AudioInput,
    out: Arc<Outgoing>,
    probe: Option<Arc<dyn MediaProbe>>,
    errors: Sender<EngineEvent>,
    status: DeviceStatus,
    processing: ProcessingSettings,
) -> Result<Option<SenderThread>, EngineError> {
    if *input == AudioInput::None {
        return Ok(None);
    }
    let input = input.clone();
    let silence = vec![0.0f32; AudioFrame::SAMPLES_20MS];
    spawn_sender("confab-audio-send", move |stop| {
        let opened = open_audio(&input, Arc::clone(&status)).and_then(|capture| {
            OpusEncoder::new(OpusEncoderConfig {
                packet_loss_percent: out.audio_loss_hint(),
                ..OpusEncoderConfig::default()
            })
            .map(|encoder| (capture, encoder))
            .map_err(|e| EngineError::Media(e.to_string()))
        });
        let ((capture, frames), mut encoder) = match opened {
            Ok(v) => v,
            Err(e) => {
                let _ = errors.send(EngineEvent::Error(Problem::SourceFailed {
                    kind: DeviceKind::Microphone,
                    detail: e.to_string(),
                }));
                return;
            }
        };
        let is_mic = matches!(input, AudioInput::Microphone(_));
        // Only a real microphone is cleaned: test sources are what the measurements rely on.
        let mut processor = is_mic.then(|| {
            let processor = AudioProcessor::new(processing);
            if let Ok(mut echo) = out.echo.lock() {
                *echo = Some(EchoLink {
                    feed: processor.render_feed(),
                    control: processor.control(),
                });
            }
            processor
        });
        let mut level = LevelMeter::default();
        // Devices deliver 10 ms; Opus takes 20 ms.
        let mut chunker = AudioChunker::new(AudioFrame::SAMPLES_20MS);
        while !stop.is_raised() {
            let Ok(captured) = frames.recv_timeout(Duration::from_millis(100)) else {
                if capture.is_finished() {
                    report_capture_end(capture, DeviceKind::Microphone, is_mic, &status, &errors);
                    return;
                }
                continue;
            };
            let mut captured = captured;
            if let Some(p) = &mut processor
                && let Err(e) = p.process_capture(&mut captured.samples)
            {
                debug!(error = %e, "audio processing skipped a frame");
            }
            let whole = if captured.samples.len() == AudioFrame::SAMPLES_20MS {
                vec![captured]
            } else {
                chunker.push(&captured)
            };
            for frame in whole {
                send_audio_frame(
                    &frame,
                    &mut AudioSendState {
                        out: &out,
                        probe: probe.as_ref(),
                        errors: &errors,
                        level: &mut level,
                        encoder: &mut encoder,
                        silence: &silence,
                    },
                );
            }
        }
        if processor.is_some()
            && let Ok(mut echo) = out.echo.lock()
        {
            *echo = None;
        }
    })
    .map(Some)
}

/// What [`send_audio_frame`] needs from the audio sender thread.
struct AudioSendState<'a> {
    out: &'a Outgoing,
    probe: Option<&'a Arc<dyn MediaProbe>>,
    errors: &'a Sender<EngineEvent>,
    level: &'a mut LevelMeter,
    encoder: &'a mut OpusEncoder,
    silence: &'a [f32],
}

/// Meters, encodes and fans out one 20 ms frame.
fn send_audio_frame(frame: &AudioFrame, st: &mut AudioSendState<'_>) {
    let AudioSendState {
        out,
        probe,
        errors,
        level,
        encoder,
        silence,
    } = st;
    if let Some(p) = probe {
        p.audio_captured(frame);
    }
    if let Some(db) = level.push(&frame.samples) {
        let _ = errors.send(EngineEvent::MicLevel(db));
    }
    let peers = out.snapshot();
    if peers.is_empty() {
        return;
    }
    let loss = out.audio_loss_hint();
    if loss != encoder.config().packet_loss_percent {
        match encoder.set_packet_loss_percent(loss) {
            Ok(()) => debug!(percent = loss, "Opus FEC packet-loss hint"),
            Err(e) => debug!(error = %e, loss, "cannot change the Opus packet-loss hint"),
        }
    }
    // Muted: keep sending (near-empty DTX) frames so the RTP clock keeps pace with
    // real time and the far end's jitter estimate is not disturbed by a gap.
    let samples = if out.mic_on.load(Ordering::Relaxed) {
        &frame.samples[..]
    } else {
        &silence[..]
    };
    let encoded = match encoder.encode(samples) {
        Ok(e) => e,
        Err(e) => {
            warn!(error = %e, "audio encode failed");
            return;
        }
    };
    out.fan_out(
        peers,
        Track::Audio,
        &Bytes::from(encoded.data),
        frame.duration(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_hint_rises_at_once_and_decays_slowly_within_its_bounds() {
        let mut h = FecLossHint::default();
        assert_eq!(h.percent(), FEC_LOSS_FLOOR, "no report yet: the floor");
        assert_eq!(h.on_report(0.0), FEC_LOSS_FLOOR);
        assert_eq!(h.on_report(0.12), 12, "a rise is taken at once");
        // Reports of a 10 % random-loss link swing; the hint stays near the top of the swing.
        for f in [0.06, 0.14, 0.08, 0.10] {
            h.on_report(f);
        }
        assert!((10..=15).contains(&h.percent()), "{}", h.percent());
        // Loss stops: the hint comes down over seconds, not at the first clean report.
        let after_one = h.on_report(0.0);
        assert!(after_one >= 9, "{after_one}");
        let mut last = after_one;
        for _ in 0..30 {
            last = h.on_report(0.0);
        }
        assert_eq!(last, FEC_LOSS_FLOOR);
        assert_eq!(h.on_report(0.9), FEC_LOSS_CEILING);
        assert_eq!(h.on_report(f64::NAN), FEC_LOSS_CEILING, "NaN is no report");
    }

    #[test]
    fn at_the_floor_hint_speech_packets_carry_fec() -> Result<(), Box<dyn std::error::Error>> {
        use crate::media::CaptureTime;
        use crate::media::opus_codec::opus_packet_has_fec;
        let src = SyntheticAudio::new(SyntheticAudioConfig::default())?;
        let mut enc = OpusEncoder::new(OpusEncoderConfig {
            packet_loss_percent: FecLossHint::default().percent(),
            ..OpusEncoderConfig::default()
        })?;
        let mut with_fec = 0;
        for i in 0..250u64 {
            let frame = src.render(i * 960, 960, CaptureTime::default());
            if opus_packet_has_fec(&enc.encode(&frame.samples)?.data) {
                with_fec += 1;
            }
        }
        println!("{with_fec} of 250 packets carry FEC at the floor hint");
        assert!(with_fec > 125, "{with_fec} of 250");
        Ok(())
    }
}
