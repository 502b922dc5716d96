//! Synthetic audio: a steady tone with short periodic beeps, and the beep detector.
//!
//! [`SyntheticAudio`] produces a 440 Hz tone (the "voice": it keeps the codec busy and lets tests
//! check the decoded frequency), amplitude-modulated at a syllable rate (4 Hz) because Opus/SILK
//! treats a perfectly steady tone as background noise after a moment and then sends no in-band
//! FEC for it, plus, every [`SyntheticAudioConfig::beep_period_ms`], a short
//! 2400 Hz beep with 1 ms raised-cosine edges. Beep `k` starts exactly at stream sample
//! `k * period`, so its capture time is known from the frame that carries it.
//!
//! [`BeepDetector`] high-passes the signal (two cascaded 1.2 kHz biquads remove the tone) and
//! reports the first sample where the remaining amplitude crosses half the beep amplitude, then
//! waits for silence before re-arming. Run on the source and on the decoded output, the detected
//! onsets differ by the pipeline's delay (codec lookahead, jitter buffer, network): that is the
//! mouth-to-ear latency. [`goertzel_power`] measures the energy at one frequency.

use std::f64::consts::PI;
use std::time::Duration;

use super::frame::{AUDIO_SAMPLE_RATE, AudioFrame, CaptureTime};
use super::source::{AudioSource, Pacing, SourceError};

/// Settings for [`SyntheticAudio`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyntheticAudioConfig {
    /// Continuous tone frequency (Hz).
    pub tone_hz: f32,
    /// Peak tone amplitude (0..1).
    pub tone_amplitude: f32,
    /// Syllable-rate amplitude modulation of the tone (Hz; 0 = steady tone). The envelope swings
    /// between 10 % and 100 % of the amplitude.
    pub tone_modulation_hz: f32,
    /// Beep frequency (Hz); must be well above 1.2 kHz for the detector.
    pub beep_hz: f32,
    /// Beep amplitude (0..1).
    pub beep_amplitude: f32,
    /// Time between beep starts.
    pub beep_period_ms: u32,
    /// Beep length.
    pub beep_length_ms: u32,
    /// Samples per frame: 480 (10 ms) or 960 (20 ms).
    pub frame_samples: usize,
    /// RMS of band-limited noise added under the tone's envelope (0: none). It makes the
    /// sound voice-like for an echo canceller: AEC3 estimates the echo delay from 1–1.8 kHz
    /// only, where the tone has almost nothing, and the tone alone repeats every envelope
    /// period, so several delays fit it. The noise is uniform noise through two 20-sample
    /// boxcars (nulls at 2.4 kHz and its multiples: the beeps' frequency stays empty), a
    /// function of the sample index like the rest.
    pub voice_noise_rms: f32,
}

impl Default for SyntheticAudioConfig {
    fn default() -> Self {
        Self {
            tone_hz: 440.0,
            tone_amplitude: 0.25,
            tone_modulation_hz: 4.0,
            beep_hz: 2400.0,
            beep_amplitude: 0.5,
            beep_period_ms: 500,
            beep_length_ms: 20,
            frame_samples: AudioFrame::SAMPLES_20MS,
            voice_noise_rms: 0.0,
        }
    }
}

impl SyntheticAudioConfig {
    /// The default sound with voice-like noise (RMS 0.2, about -18 dBFS under the envelope): what the call
    /// check's test peer sends, so the person's echo canceller has something to lock onto.
    #[must_use]
    pub fn test_voice() -> Self {
        Self {
            voice_noise_rms: 0.2,
            ..Self::default()
        }
    }
}

/// Taps of each of the voice noise's two boxcars: 20 samples at 48 kHz put the response's nulls
/// at 2.4 kHz and its multiples.
const NOISE_BOXCAR: usize = 20;

/// Standard deviation of uniform noise in [-0.5, 0.5) through the two boxcars: the noise's
/// unscaled RMS. The triangle's squared taps sum to (L² + (L-1)L(2L-1)/3) / L⁴.
fn boxcar_noise_std() -> f64 {
    let l = NOISE_BOXCAR as f64;
    let taps = (l * l + (l - 1.0) * l * (2.0 * l - 1.0) / 3.0) / (l * l * l * l);
    (taps / 12.0).sqrt()
}

/// Uniform in [-0.5, 0.5) from a sample index (SplitMix64): deterministic, no state.
fn noise_at(index: u64) -> f64 {
    let mut z = index.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 - 0.5
}

/// The voice noise for samples `start..start + len`, unscaled (RMS [`boxcar_noise_std`]).
fn boxcar_noise(start: u64, len: usize) -> Vec<f64> {
    let warm = 2 * (NOISE_BOXCAR - 1);
    let raw: Vec<f64> = (0..len + warm)
        .map(|i| noise_at(start.wrapping_sub(warm as u64).wrapping_add(i as u64)))
        .collect();
    let boxcar = |x: &[f64]| -> Vec<f64> {
        x.windows(NOISE_BOXCAR)
            .map(|w| w.iter().sum::<f64>() / NOISE_BOXCAR as f64)
            .collect()
    };
    boxcar(&boxcar(&raw))
}

/// Tone-plus-beeps audio source; see the module docs.
#[derive(Debug, Clone)]
pub struct SyntheticAudio {
    config: SyntheticAudioConfig,
    next_sample: u64,
}

impl SyntheticAudio {
    /// A source with `config`.
    ///
    /// # Errors
    /// [`SourceError::Format`] for a frame size other than 480/960, a zero period or a beep
    /// longer than its period.
    pub fn new(config: SyntheticAudioConfig) -> Result<Self, SourceError> {
        if ![AudioFrame::SAMPLES_10MS, AudioFrame::SAMPLES_20MS].contains(&config.frame_samples) {
            return Err(SourceError::Format(format!(
                "audio frames must be 480 or 960 samples, got {}",
                config.frame_samples
            )));
        }
        if config.beep_period_ms == 0 || config.beep_length_ms >= config.beep_period_ms {
            return Err(SourceError::Format(
                "beep must be shorter than its period".into(),
            ));
        }
        Ok(Self {
            config,
            next_sample: 0,
        })
    }

    /// The settings.
    #[must_use]
    pub const fn config(&self) -> &SyntheticAudioConfig {
        &self.config
    }

    /// Samples between beep starts.
    #[must_use]
    pub fn beep_period_samples(&self) -> u64 {
        u64::from(self.config.beep_period_ms) * u64::from(AUDIO_SAMPLE_RATE) / 1000
    }

    /// Renders `len` samples starting at stream sample `start` (deterministic; no clock read).
    #[must_use]
    pub fn render(&self, start: u64, len: usize, capture_time: CaptureTime) -> AudioFrame {
        let c = &self.config;
        let sr = f64::from(AUDIO_SAMPLE_RATE);
        let period = self.beep_period_samples().max(1);
        let beep_len = u64::from(c.beep_length_ms) * u64::from(AUDIO_SAMPLE_RATE) / 1000;
        let ramp = (u64::from(AUDIO_SAMPLE_RATE) / 1000)
            .min(beep_len / 2)
            .max(1);
        let noise = (c.voice_noise_rms > 0.0).then(|| {
            let gain = f64::from(c.voice_noise_rms) / boxcar_noise_std();
            (boxcar_noise(start, len), gain)
        });
        let samples = (start..start + len as u64)
            .enumerate()
            .map(|(i, n)| {
                let t = n as f64 / sr;
                let envelope = if c.tone_modulation_hz > 0.0 {
                    0.55 + 0.45 * (2.0 * PI * f64::from(c.tone_modulation_hz) * t).sin()
                } else {
                    1.0
                };
                let mut s = envelope
                    * f64::from(c.tone_amplitude)
                    * (2.0 * PI * f64::from(c.tone_hz) * t).sin();
                if let Some((noise, gain)) = &noise {
                    s += envelope * gain * noise.get(i).copied().unwrap_or(0.0);
                }
                let pos = n % period;
                if pos < beep_len {
                    let edge = pos.min(beep_len - 1 - pos);
                    let env = if edge < ramp {
                        0.5 - 0.5 * (PI * edge as f64 / ramp as f64).cos()
                    } else {
                        1.0
                    };
                    let bt = pos as f64 / sr;
                    s += env
                        * f64::from(c.beep_amplitude)
                        * (2.0 * PI * f64::from(c.beep_hz) * bt).sin();
                }
                s as f32
            })
            .collect();
        AudioFrame {
            samples,
            capture_time,
        }
    }
}

impl AudioSource for SyntheticAudio {
    fn name(&self) -> String {
        "tone".into()
    }

    fn pacing(&self) -> Pacing {
        Pacing::Interval(Duration::from_micros(
            self.config.frame_samples as u64 * 1_000_000 / u64::from(AUDIO_SAMPLE_RATE),
        ))
    }

    fn next_frame(&mut self) -> Result<AudioFrame, SourceError> {
        let frame = self.render(
            self.next_sample,
            self.config.frame_samples,
            CaptureTime::now(),
        );
        self.next_sample += self.config.frame_samples as u64;
        Ok(frame)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
    x: [f64; 2],
    y: [f64; 2],
}

impl Biquad {
    /// RBJ cookbook high-pass.
    fn high_pass(fc: f64, q: f64) -> Self {
        let w0 = 2.0 * PI * fc / f64::from(AUDIO_SAMPLE_RATE);
        let alpha = w0.sin() / (2.0 * q);
        let cos = w0.cos();
        let a0 = 1.0 + alpha;
        Self {
            b: [
                (1.0 + cos) / 2.0 / a0,
                -(1.0 + cos) / a0,
                (1.0 + cos) / 2.0 / a0,
            ],
            a: [-2.0 * cos / a0, (1.0 - alpha) / a0],
            x: [0.0; 2],
            y: [0.0; 2],
        }
    }

    fn run(&mut self, x: f64) -> f64 {
        let y = self.b[0] * x + self.b[1] * self.x[0] + self.b[2] * self.x[1]
            - self.a[0] * self.y[0]
            - self.a[1] * self.y[1];
        self.x = [x, self.x[0]];
        self.y = [y, self.y[0]];
        y
    }
}

/// A detected beep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeepEvent {
    /// Index of the onset sample, counted from the first sample pushed into the detector.
    pub sample: u64,
    /// Capture time of that sample (from the frame's capture time).
    pub time: CaptureTime,
}

/// Streaming beep-onset detector; see the module docs.
#[derive(Debug, Clone)]
pub struct BeepDetector {
    filters: [Biquad; 2],
    threshold: f64,
    rearm_samples: u64,
    quiet_run: u64,
    armed: bool,
    seen: u64,
}

impl BeepDetector {
    /// A detector for beeps of `beep_amplitude` (use the source's configured amplitude).
    #[must_use]
    pub fn new(beep_amplitude: f32) -> Self {
        Self {
            filters: [Biquad::high_pass(1200.0, 0.707); 2],
            threshold: f64::from(beep_amplitude) * 0.5,
            // 40 ms of quiet re-arms: longer than a beep's ringing, far shorter than the period.
            rearm_samples: u64::from(AUDIO_SAMPLE_RATE) / 25,
            quiet_run: 0,
            armed: true,
            seen: 0,
        }
    }

    /// Feeds samples; returns the stream indices of beep onsets found in them.
    pub fn push(&mut self, samples: &[f32]) -> Vec<u64> {
        let mut onsets = Vec::new();
        for &s in samples {
            let mut v = f64::from(s);
            for f in &mut self.filters {
                v = f.run(v);
            }
            let loud = v.abs() >= self.threshold;
            if loud {
                self.quiet_run = 0;
                if self.armed {
                    onsets.push(self.seen);
                    self.armed = false;
                }
            } else {
                self.quiet_run += 1;
                if self.quiet_run >= self.rearm_samples {
                    self.armed = true;
                }
            }
            self.seen += 1;
        }
        onsets
    }

    /// Feeds a frame; returns onsets with their capture times.
    pub fn push_frame(&mut self, frame: &AudioFrame) -> Vec<BeepEvent> {
        let first = self.seen;
        self.push(&frame.samples)
            .into_iter()
            .map(|sample| BeepEvent {
                sample,
                time: frame.time_of_sample(usize::try_from(sample - first).unwrap_or(0)),
            })
            .collect()
    }
}

/// Beep onsets (sample indices) in a whole buffer, for beeps of `beep_amplitude`.
#[must_use]
pub fn detect_beeps(samples: &[f32], beep_amplitude: f32) -> Vec<u64> {
    BeepDetector::new(beep_amplitude).push(samples)
}

/// Normalised power of `samples` at `freq_hz` (Goertzel): ~`A²/4` for a sine of amplitude `A`.
#[must_use]
pub fn goertzel_power(samples: &[f32], freq_hz: f32) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let w = 2.0 * PI * f64::from(freq_hz) / f64::from(AUDIO_SAMPLE_RATE);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = samples.len() as f64;
    power / (n * n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_finds_every_beep_at_its_start() -> Result<(), SourceError> {
        let src = SyntheticAudio::new(SyntheticAudioConfig::default())?;
        let audio = src.render(0, 48_000 * 3, CaptureTime::default());
        let onsets = detect_beeps(&audio.samples, 0.5);
        assert_eq!(onsets.len(), 6, "{onsets:?}");
        for (k, onset) in onsets.iter().enumerate() {
            let expected = k as u64 * src.beep_period_samples();
            assert!(
                onset.abs_diff(expected) <= 48,
                "beep {k} at {onset}, expected ~{expected}"
            );
        }
        Ok(())
    }

    #[test]
    fn goertzel_sees_the_tone() -> Result<(), SourceError> {
        let src = SyntheticAudio::new(SyntheticAudioConfig::default())?;
        // A stretch between beeps.
        let audio = src.render(2_000, 9_600, CaptureTime::default());
        assert!(goertzel_power(&audio.samples, 440.0) > 0.001);
        assert!(goertzel_power(&audio.samples, 1000.0) < 0.0001);
        Ok(())
    }

    #[test]
    fn the_test_voice_adds_noise_where_an_echo_canceller_looks_and_none_at_the_beeps() {
        let Ok(voice) = SyntheticAudio::new(SyntheticAudioConfig::test_voice()) else {
            unreachable!()
        };
        let Ok(tone) = SyntheticAudio::new(SyntheticAudioConfig::default()) else {
            unreachable!()
        };
        // Between beeps, 200 ms.
        let v = voice.render(2_000, 9_600, CaptureTime::default()).samples;
        let t = tone.render(2_000, 9_600, CaptureTime::default()).samples;
        // 1-1.8 kHz: the tone has almost nothing there, the voice a lot.
        for hz in [1_000.0, 1_400.0, 1_800.0] {
            let (pv, pt) = (goertzel_power(&v, hz), goertzel_power(&t, hz));
            assert!(pv > pt * 100.0, "{hz} Hz: voice {pv:e}, tone {pt:e}");
        }
        // The beep's frequency stays as empty as with the tone alone (the boxcars' null).
        assert!(goertzel_power(&v, 2_400.0) < 1e-6);
        // The noise's level is as configured (under the envelope: mean square 0.55² + 0.45²/2).
        let diff: Vec<f64> = v.iter().zip(&t).map(|(a, b)| f64::from(a - b)).collect();
        let rms = (diff.iter().map(|x| x * x).sum::<f64>() / diff.len() as f64).sqrt();
        let expected = 0.2 * (0.55f64.powi(2) + 0.45f64.powi(2) / 2.0).sqrt();
        assert!(
            (rms / expected - 1.0).abs() < 0.15,
            "rms {rms}, expected {expected}"
        );
        // Rendering in pieces gives the same samples as at once.
        let whole = voice.render(0, 4_800, CaptureTime::default()).samples;
        let mut pieces = voice.render(0, 1_000, CaptureTime::default()).samples;
        pieces.extend(voice.render(1_000, 3_800, CaptureTime::default()).samples);
        assert_eq!(whole, pieces);
        // And every beep is still found.
        let audio = voice.render(0, 48_000 * 3, CaptureTime::default());
        assert_eq!(detect_beeps(&audio.samples, 0.5).len(), 6);
    }
}
