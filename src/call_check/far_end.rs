//! The far end of a call check: a second engine in this process that calls the person's own
//! engine like any other participant would, and measures what arrives.
//!
//! It sends no picture and a test sound (the synthetic tone with beeps and voice-like noise,
//! [`AudioInput::TestVoice`], so the person's speaker plays something and their echo canceller
//! has something to lock onto and cancel: AEC3 finds its delay in 1–1.8 kHz, where a pure tone
//! has nothing). It measures, from the
//! media itself:
//! - the person's camera as decoded here ([`PictureCheck`]): how many pictures, whether they are
//!   black, whether they move; the newest one is kept for the screen ("what the others see");
//! - the person's microphone as played here ([`EarProbe`]): the loudest 20 ms, and whether our
//!   own beeps come back in it (an echo the others would hear), by the energy at the beep's
//!   frequency folded over the beep period: an echo is periodic and stands out of that fold by
//!   many dB; a voice is not.
//!
//! Everything here is driven without blocking: [`FarEnd::drain`] takes what the engine queued.

use std::sync::{Arc, Mutex};

use confab_engine::media::synthetic_audio::{SyntheticAudioConfig, goertzel_power};
use confab_engine::media::{AUDIO_SAMPLE_RATE, CaptureTime, I420Frame, NullSink};
use confab_engine::observer::{CallObserver, FrameSink};
use confab_engine::{
    AudioInput, Engine, EngineCommand, EngineConfig, EngineError, MediaProbe, Repaint,
    VideoFrameEvent, VideoInput,
};

/// The name the far end joins with.
pub const FAR_END_NAME: &str = "Confab test peer";

/// Width of one phase bin of the beep period, and of the blocks the beep band is measured in (ms).
const BIN_MS: u64 = 10;

/// What the far end learnt of the pictures it decoded.
#[derive(Debug, Default)]
pub struct PictureCheck {
    /// Pictures decoded.
    pub frames: u64,
    /// Pictures almost uniformly dark (a covered lens, a camera held by another app).
    pub black: u64,
    /// Pictures identical to the one before (a frozen camera).
    pub still: u64,
    /// Size of the newest picture.
    pub size: Option<(u32, u32)>,
    previous: Vec<u8>,
    /// The newest picture, until the screen takes it.
    pub newest: Option<VideoFrameEvent>,
}

impl FrameSink for PictureCheck {
    fn frame(&mut self, _from: &str, frame: &VideoFrameEvent) {
        if frame.role != confab_engine::VideoRole::Camera {
            return;
        }
        self.frames += 1;
        let picture = &frame.frame;
        self.size = Some((picture.width(), picture.height()));
        let sample = luma_sample(picture);
        let n = sample.len().max(1) as f64;
        let mean = sample.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let spread = (sample
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        if mean < 28.0 && spread < 6.0 {
            self.black += 1;
        }
        if sample.len() == self.previous.len() {
            let moved = sample
                .iter()
                .zip(&self.previous)
                .map(|(a, b)| f64::from(a.abs_diff(*b)))
                .sum::<f64>()
                / n;
            if moved < 0.25 {
                self.still += 1;
            }
        }
        self.previous = sample;
        self.newest = Some(frame.clone());
    }
}

/// Every 8th luma sample of every 8th row: enough to tell black, still and moving apart.
fn luma_sample(frame: &I420Frame) -> Vec<u8> {
    let w = frame.width() as usize;
    frame
        .y()
        .chunks(w.max(1))
        .step_by(8)
        .flat_map(|row| row.iter().step_by(8).copied())
        .collect()
}

/// What the far end heard, measured on its playout thread.
#[derive(Debug)]
struct Heard {
    /// Loudest 20 ms of decoded sound (dBFS).
    loudest_db: f32,
    /// Decoded sound played, ms.
    decoded_ms: u64,
    /// Energy at the beep frequency, summed per phase bin of the beep period.
    band_energy: Vec<f64>,
    /// Blocks summed per phase bin.
    band_blocks: Vec<u64>,
}

/// The far end's ear: a [`MediaProbe`] on its playout.
#[derive(Debug)]
pub struct EarProbe {
    heard: Mutex<Heard>,
    beep_hz: f32,
    period_ms: u64,
}

impl Default for EarProbe {
    fn default() -> Self {
        let beeps = SyntheticAudioConfig::default();
        let period_ms = u64::from(beeps.beep_period_ms.max(20));
        let bins = (period_ms / BIN_MS).max(1) as usize;
        Self {
            heard: Mutex::new(Heard {
                loudest_db: -100.0,
                decoded_ms: 0,
                band_energy: vec![0.0; bins],
                band_blocks: vec![0; bins],
            }),
            beep_hz: beeps.beep_hz,
            period_ms,
        }
    }
}

impl MediaProbe for EarProbe {
    fn audio_played(&self, samples: &[f32], at: CaptureTime, decoded: bool) {
        if !decoded || samples.is_empty() {
            return;
        }
        let Ok(mut heard) = self.heard.lock() else {
            return;
        };
        let mean_square = samples
            .iter()
            .map(|&s| f64::from(s) * f64::from(s))
            .sum::<f64>()
            / samples.len() as f64;
        let db = confab_engine::devices::sound_check::mean_square_dbfs(mean_square) as f32;
        heard.loudest_db = heard.loudest_db.max(db);
        heard.decoded_ms += (samples.len() as u64 * 1000) / u64::from(AUDIO_SAMPLE_RATE);
        let block = (u64::from(AUDIO_SAMPLE_RATE) * BIN_MS / 1000) as usize;
        let start_us = at.as_micros();
        for (i, chunk) in samples.chunks(block).enumerate() {
            if chunk.len() < block {
                break;
            }
            let t_ms = start_us / 1000 + i as u64 * BIN_MS;
            let bin = ((t_ms % self.period_ms) / BIN_MS) as usize;
            let energy = goertzel_power(chunk, self.beep_hz);
            if let Some(e) = heard.band_energy.get_mut(bin) {
                *e += energy;
            }
            if let Some(n) = heard.band_blocks.get_mut(bin) {
                *n += 1;
            }
        }
    }
}

/// The far end's hearing, summed up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hearing {
    /// Loudest 20 ms of the person's sound (dBFS), -100 if none was decoded.
    pub loudest_db: f32,
    /// Decoded sound played, ms.
    pub decoded_ms: u64,
    /// Level of our beeps coming back (dBFS at the beep frequency, in the loudest phase bin),
    /// and how far it stands above the other bins (dB); `None` before a full period was heard.
    pub echo: Option<(f64, f64)>,
}

impl EarProbe {
    /// Forgets the beep-band fold so far: what comes after shows the echo once the person's echo
    /// canceller had time to settle.
    pub fn restart_echo_fold(&self) {
        if let Ok(mut heard) = self.heard.lock() {
            heard.band_energy.iter_mut().for_each(|e| *e = 0.0);
            heard.band_blocks.iter_mut().for_each(|n| *n = 0);
        }
    }

    /// What was heard so far.
    pub fn hearing(&self) -> Hearing {
        let Ok(heard) = self.heard.lock() else {
            return Hearing {
                loudest_db: -100.0,
                decoded_ms: 0,
                echo: None,
            };
        };
        let means: Vec<f64> = heard
            .band_energy
            .iter()
            .zip(&heard.band_blocks)
            .filter(|(_, n)| **n > 0)
            .map(|(e, n)| e / *n as f64)
            .collect();
        let echo = (means.len() == heard.band_energy.len()).then(|| {
            let mut sorted = means.clone();
            sorted.sort_by(f64::total_cmp);
            let peak = sorted.last().copied().unwrap_or(0.0);
            let median = sorted[sorted.len() / 2];
            let db = |p: f64| 10.0 * p.max(1e-12).log10();
            (db(peak), db(peak) - db(median))
        });
        Hearing {
            loudest_db: heard.loudest_db,
            decoded_ms: heard.decoded_ms,
            echo,
        }
    }
}

/// The far end: its engine (observed) and its ear.
pub struct FarEnd {
    /// The engine and what it saw, pictures included.
    pub observer: CallObserver<PictureCheck>,
    /// What it heard.
    pub ear: Arc<EarProbe>,
    /// It uses TURN relays only.
    pub relay_only: bool,
}

impl FarEnd {
    /// Starts the far end's engine (idle until [`FarEnd::join`]). `bind_addrs` are the local
    /// addresses for ICE (the person's engine's, so both use the same network path);
    /// `relay_only` forces the call through the server's TURN relay.
    ///
    /// # Errors
    /// [`EngineError`] when the engine cannot start.
    pub fn start(
        bind_addrs: Vec<std::net::SocketAddr>,
        relay_only: bool,
        repaint: Repaint,
    ) -> Result<Self, EngineError> {
        let ear = Arc::new(EarProbe::default());
        let mut config = EngineConfig::new(FAR_END_NAME);
        config.video_input = VideoInput::None;
        config.audio_input = AudioInput::TestVoice;
        config.bind_addrs = bind_addrs;
        config.relay_only = relay_only;
        config.preview = false;
        config.probe = Some(Arc::clone(&ear) as Arc<dyn MediaProbe>);
        let engine = Engine::start(config, Box::new(NullSink), repaint)?;
        Ok(Self {
            observer: CallObserver::with_frames(FAR_END_NAME, engine, PictureCheck::default()),
            ear,
            relay_only,
        })
    }

    /// Joins `room` at `url`.
    pub fn join(&self, url: &str, room: &str) {
        // Fails only once the engine stopped, which the check sees as no connection.
        let _ = self.observer.send(EngineCommand::Join {
            url: url.to_owned(),
            room: room.to_owned(),
            password: None,
        });
    }

    /// Takes what the engine reported since the last call, without waiting.
    pub fn drain(&mut self) {
        self.observer.drain();
    }

    /// Hangs up and stops the engine on a thread of its own (joining its threads takes a moment
    /// the window should not wait for).
    pub fn stop_in_background(self) {
        let observer = self.observer;
        let spawned = std::thread::Builder::new()
            .name("confab-check-stop".into())
            .spawn(move || observer.shutdown());
        if let Err(e) = spawned {
            tracing::warn!("cannot stop the call check's peer in the background: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is the test failing")]

    use super::*;
    use confab_engine::media::synthetic_audio::SyntheticAudio;

    fn play(probe: &EarProbe, samples: &[f32], from_ms: u64) {
        for (i, frame) in samples.chunks(960).enumerate() {
            let at = CaptureTime::from_micros((from_ms + i as u64 * 20) * 1000);
            probe.audio_played(frame, at, true);
        }
    }

    #[test]
    fn our_beeps_coming_back_stand_out_of_the_beep_period_and_a_voice_does_not() {
        // The test peer's own sound, 4 s of it, 30 dB down: an echo.
        let source = SyntheticAudio::new(SyntheticAudioConfig::default()).unwrap();
        let echo = source
            .render(0, 48_000 * 4, CaptureTime::from_micros(0))
            .samples;
        let quiet: Vec<f32> = echo.iter().map(|s| s * 0.03).collect();
        let probe = EarProbe::default();
        play(&probe, &quiet, 1_000);
        let (level, above) = probe.hearing().echo.unwrap();
        assert!(
            above > 15.0,
            "an echo stands out: {above:.1} dB at {level:.1} dBFS"
        );

        // Noise with no period at all (a voice-like stand-in): nothing stands out.
        let mut seed = 7u64;
        let noise: Vec<f32> = (0..48_000 * 4)
            .map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                ((seed >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 0.2
            })
            .collect();
        let probe = EarProbe::default();
        play(&probe, &noise, 1_000);
        let (_, above) = probe.hearing().echo.unwrap();
        assert!(above < 6.0, "noise has no period: {above:.1} dB");
        assert!(probe.hearing().loudest_db > -30.0);
    }

    #[test]
    fn nothing_heard_is_no_echo_and_silence() {
        let probe = EarProbe::default();
        let hearing = probe.hearing();
        assert_eq!(hearing.echo, None);
        assert_eq!(hearing.decoded_ms, 0);
        probe.audio_played(&[0.5; 960], CaptureTime::from_micros(0), false);
        assert_eq!(
            probe.hearing().decoded_ms,
            0,
            "silence before playout is not sound"
        );
    }

    #[test]
    fn black_still_and_moving_pictures_are_told_apart() {
        let mut check = PictureCheck::default();
        let black = I420Frame::black(64, 48).unwrap();
        let event = |frame: I420Frame| VideoFrameEvent {
            from: None,
            role: confab_engine::VideoRole::Camera,
            frame,
            decoded_at: CaptureTime::from_micros(0),
        };
        check.frame("x", &event(black.clone()));
        check.frame("x", &event(black));
        assert_eq!((check.frames, check.black, check.still), (2, 2, 1));
        let mut moving = I420Frame::black(64, 48).unwrap();
        for step in 0..3u8 {
            let (y, _, _) = moving.planes_mut();
            for (i, v) in y.iter_mut().enumerate() {
                *v = 40 + ((i as u8).wrapping_add(step.wrapping_mul(37)) % 150);
            }
            check.frame("x", &event(moving.clone()));
        }
        assert_eq!((check.frames, check.black, check.still), (5, 2, 1));
        assert_eq!(check.size, Some((64, 48)));
        assert!(check.newest.is_some());
    }
}
