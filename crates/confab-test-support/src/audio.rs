//! Audio test signals and measurements at 48 kHz mono: a deterministic speech-like generator, a
//! simulated echo path, powers in dB, least-squares gains, cross-correlation lags and tone SNR.

use std::f64::consts::TAU;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Sample rate of every signal here.
pub const RATE: usize = 48_000;

/// Samples in `ms` milliseconds.
pub const fn ms(ms: usize) -> usize {
    ms * RATE / 1000
}

/// The seed for a test: `CONFAB_TEST_SEED` if set, else `default`; printed so a run can be
/// replayed.
pub fn seed(name: &str, default: u64) -> u64 {
    let seed = std::env::var("CONFAB_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    println!("{name}: seed {seed} (replay with CONFAB_TEST_SEED={seed})");
    seed
}

/// A talker for [`speech_like`].
#[derive(Debug, Clone, Copy)]
pub struct Voice {
    /// Mean fundamental frequency, Hz (about 110 for a low voice, 210 for a high one).
    pub f0_hz: f64,
    /// RMS level during voiced sounds, dBFS.
    pub level_dbfs: f64,
}

/// `len` samples of a speech-like signal: phrases of syllables separated by pauses. Each syllable
/// is a harmonic series (up to 4 kHz, with a falling spectral tilt and two moving formant bumps)
/// on a gliding, jittering pitch, under a raised-cosine envelope; some syllables start with a
/// short noise burst (a fricative). Deterministic for a given `seed`.
pub fn speech_like(len: usize, voice: Voice, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = vec![0.0f32; len];
    let amp = 10f64.powf(voice.level_dbfs / 20.0);
    let mut pos = ms(rng.random_range(50..300));
    while pos < len {
        // One phrase: 2..7 syllables, then a pause.
        let syllables = rng.random_range(2..8);
        for _ in 0..syllables {
            let dur = ms(rng.random_range(120..320));
            let f0_start = voice.f0_hz * rng.random_range(0.8..1.25);
            let f0_end = voice.f0_hz * rng.random_range(0.8..1.25);
            let formant1 = rng.random_range(300.0..900.0);
            let formant2 = rng.random_range(900.0..2500.0);
            let loudness = amp * rng.random_range(0.5..1.4);
            let fricative = ms(rng.random_range(0..60)) * usize::from(rng.random_bool(0.3));
            let harmonics = (4000.0 / voice.f0_hz.min(f0_start).min(f0_end)) as usize;
            let phases: Vec<f64> = (0..harmonics).map(|_| rng.random_range(0.0..TAU)).collect();
            let mut phase = 0.0f64;
            for n in 0..dur {
                let i = pos + n;
                if i >= len {
                    break;
                }
                let t = n as f64 / dur as f64;
                let env = 0.5 - 0.5 * (TAU * t).cos();
                let f0 = f0_start + (f0_end - f0_start) * t + rng.random_range(-1.0..1.0);
                phase += TAU * f0 / RATE as f64;
                let mut s = 0.0;
                for (k, ph) in phases.iter().enumerate() {
                    let h = (k + 1) as f64;
                    let f = h * f0;
                    if f > 4000.0 {
                        break;
                    }
                    let bump = 1.0
                        + 3.0 * (-((f - formant1) / 150.0).powi(2)).exp()
                        + 2.0 * (-((f - formant2) / 250.0).powi(2)).exp();
                    s += bump / h * (h * phase + ph).sin();
                }
                // Normalise roughly to unit RMS for a typical series.
                s *= 0.45;
                if n < fricative {
                    s = 0.5 * s + rng.random_range(-1.0..1.0) * 0.8;
                }
                out[i] = (loudness * env * s) as f32;
            }
            pos += dur + ms(rng.random_range(0..60));
        }
        pos += ms(rng.random_range(200..700));
    }
    out
}

/// `len` samples of uniform white noise with the given RMS level (dBFS).
pub fn white_noise(len: usize, level_dbfs: f64, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    // Uniform in [-a, a] has RMS a / sqrt(3).
    let a = 10f64.powf(level_dbfs / 20.0) * 3f64.sqrt();
    (0..len).map(|_| rng.random_range(-a..a) as f32).collect()
}

/// A sine of `freq_hz` with the given RMS level (dBFS).
pub fn tone(len: usize, freq_hz: f64, level_dbfs: f64) -> Vec<f32> {
    let a = 10f64.powf(level_dbfs / 20.0) * 2f64.sqrt();
    (0..len)
        .map(|n| (a * (TAU * freq_hz * n as f64 / RATE as f64).sin()) as f32)
        .collect()
}

/// Second-order Butterworth low-pass (RBJ biquad), applied to `x`.
pub fn low_pass(x: &[f32], cutoff_hz: f64) -> Vec<f32> {
    let w0 = TAU * cutoff_hz / RATE as f64;
    // alpha = sin(w0) / (2 Q) with Q = 1/sqrt(2).
    let alpha = w0.sin() * std::f64::consts::FRAC_1_SQRT_2;
    let cos = w0.cos();
    let a0 = 1.0 + alpha;
    let b0 = (1.0 - cos) / 2.0 / a0;
    let b1 = (1.0 - cos) / a0;
    let b2 = b0;
    let a1 = -2.0 * cos / a0;
    let a2 = (1.0 - alpha) / a0;
    let (mut x1, mut x2, mut y1, mut y2) = (0.0, 0.0, 0.0, 0.0);
    x.iter()
        .map(|&s| {
            let s = f64::from(s);
            let y = b0 * s + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
            (x2, x1, y2, y1) = (x1, s, y1, y);
            y as f32
        })
        .collect()
}

/// A loudspeaker-to-microphone path: delay, gain, and a low-pass (the speaker and the room),
/// optionally with discrete wall reflections after the direct sound.
#[derive(Debug, Clone, Copy)]
pub struct EchoPath {
    /// Acoustic + buffering delay, ms.
    pub delay_ms: usize,
    /// Linear gain of the direct sound (echo return loss = -20 log10(gain) dB).
    pub gain: f32,
    /// Low-pass cut-off, Hz.
    pub cutoff_hz: f64,
    /// Reflections as (ms after the direct sound, gain relative to it); empty for none.
    pub reflections: &'static [(usize, f32)],
}

impl EchoPath {
    /// What the microphone picks up when `far` is played.
    pub fn apply(&self, far: &[f32]) -> Vec<f32> {
        let filtered = low_pass(far, self.cutoff_hz);
        let taps: Vec<(usize, f32)> = std::iter::once((ms(self.delay_ms), self.gain))
            .chain(
                self.reflections
                    .iter()
                    .map(|&(after, g)| (ms(self.delay_ms + after), self.gain * g)),
            )
            .collect();
        (0..far.len())
            .map(|n| {
                taps.iter()
                    .filter(|&&(d, _)| n >= d)
                    .map(|&(d, g)| g * filtered[n - d])
                    .sum()
            })
            .collect()
    }
}

/// Element-wise sum of equally long signals.
pub fn mix(signals: &[&[f32]]) -> Vec<f32> {
    let len = signals.iter().map(|s| s.len()).min().unwrap_or(0);
    (0..len)
        .map(|n| signals.iter().map(|s| s[n]).sum())
        .collect()
}

/// Mean power of `x`.
pub fn power(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64
}

/// RMS level of `x` in dBFS (a full-scale sine is -3 dBFS).
pub fn level_dbfs(x: &[f32]) -> f64 {
    10.0 * power(x).max(1e-20).log10()
}

/// `10 log10(a / b)`.
pub fn ratio_db(a: f64, b: f64) -> f64 {
    10.0 * (a.max(1e-30) / b.max(1e-30)).log10()
}

/// The lag (samples, `0..=max_lag`) at which `y[n]` best matches `x[n - lag]`, by normalised
/// cross-correlation over the whole signals.
pub fn best_lag(x: &[f32], y: &[f32], max_lag: usize) -> usize {
    let corr = |lag: usize| -> f64 {
        let n = y.len().min(x.len() + lag);
        let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
        for i in lag..n {
            let (a, b) = (f64::from(x[i - lag]), f64::from(y[i]));
            xy += a * b;
            xx += a * a;
            yy += b * b;
        }
        xy / (xx * yy).sqrt().max(1e-30)
    };
    (0..=max_lag)
        .map(|lag| (lag, corr(lag)))
        .fold((0, f64::MIN), |best, c| if c.1 > best.1 { c } else { best })
        .0
}

/// Least-squares gain `g` minimising `|y[n] - g x[n - lag]|^2` over `range` (indices into `y`).
pub fn lsq_gain(x: &[f32], y: &[f32], lag: usize, range: std::ops::Range<usize>) -> f64 {
    let (mut xy, mut xx) = (0.0, 0.0);
    for i in range {
        if i < lag || i >= y.len() {
            continue;
        }
        let (a, b) = (f64::from(x[i - lag]), f64::from(y[i]));
        xy += a * b;
        xx += a * a;
    }
    xy / xx.max(1e-30)
}

/// Signal-to-noise ratio (dB) of a tone of known frequency in `x`, switched on where `on(n)`:
/// the tone is the least-squares fit of `on(n) (a sin + b cos) + c` at `freq_hz`; everything
/// else, over all of `x`, is noise.
pub fn tone_snr_db(x: &[f32], freq_hz: f64, on: impl Fn(usize) -> bool) -> f64 {
    // Normal equations for [sin, cos, 1].
    let basis = |n: usize| {
        let w = TAU * freq_hz * n as f64 / RATE as f64;
        let g = if on(n) { 1.0 } else { 0.0 };
        [g * w.sin(), g * w.cos(), 1.0]
    };
    let mut ata = [[0.0f64; 3]; 3];
    let mut atb = [0.0f64; 3];
    for (n, &s) in x.iter().enumerate() {
        let b = basis(n);
        for i in 0..3 {
            atb[i] += b[i] * f64::from(s);
            for j in 0..3 {
                ata[i][j] += b[i] * b[j];
            }
        }
    }
    let coef = solve3(ata, atb);
    let (mut sig, mut noise) = (0.0, 0.0);
    for (n, &s) in x.iter().enumerate() {
        let b = basis(n);
        let fit = coef[0] * b[0] + coef[1] * b[1];
        sig += fit * fit;
        noise += (f64::from(s) - fit - coef[2]).powi(2);
    }
    ratio_db(sig, noise)
}

/// Solves a 3x3 linear system by Gaussian elimination with partial pivoting.
fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> [f64; 3] {
    for col in 0..3 {
        let pivot = (col..3)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap_or(col);
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..3 {
            let f = a[row][col] / a[col][col];
            let pivot_row = a[col];
            for (x, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                *x -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; 3];
    for row in (0..3).rev() {
        let s: f64 = (row + 1..3).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x
}
