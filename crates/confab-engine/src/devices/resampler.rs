//! Streaming mono resampler for devices that do not run at 48 kHz (rubato's FFT resampler).
//!
//! Used off the real-time threads only: the microphone resamples on its capture thread (fixed
//! 10 ms output frames), the speaker on the playout thread (fixed 20 ms input frames).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

/// A mono resampler fed in chunks.
pub(crate) struct StreamResampler {
    inner: Fft<f32>,
    out: Vec<f32>,
}

impl StreamResampler {
    /// Produces exactly `chunk` output samples per call; the input size varies
    /// ([`Self::input_frames_next`]).
    pub(crate) fn fixed_output(from: u32, to: u32, chunk: usize) -> Result<Self, String> {
        Self::new(from, to, chunk, FixedSync::Output)
    }

    /// Takes exactly `chunk` input samples per call; the output size varies.
    pub(crate) fn fixed_input(from: u32, to: u32, chunk: usize) -> Result<Self, String> {
        Self::new(from, to, chunk, FixedSync::Input)
    }

    fn new(from: u32, to: u32, chunk: usize, fixed: FixedSync) -> Result<Self, String> {
        let inner = Fft::<f32>::new(from as usize, to as usize, chunk, 1, fixed)
            .map_err(|e| format!("cannot resample {from} Hz to {to} Hz: {e}"))?;
        let out = vec![0.0; inner.output_frames_max()];
        Ok(Self { inner, out })
    }

    /// Input samples the next [`Self::process`] call needs.
    pub(crate) fn input_frames_next(&self) -> usize {
        self.inner.input_frames_next()
    }

    /// Resamples exactly [`Self::input_frames_next`] samples.
    pub(crate) fn process(&mut self, input: &[f32]) -> Result<Vec<f32>, String> {
        let frames_out = self.inner.output_frames_next();
        if self.out.len() < frames_out {
            self.out.resize(frames_out, 0.0);
        }
        let source = InterleavedSlice::new(input, 1, input.len()).map_err(|e| e.to_string())?;
        let mut sink = InterleavedSlice::new_mut(&mut self.out[..frames_out], 1, frames_out)
            .map_err(|e| e.to_string())?;
        let (_, written) = self
            .inner
            .process_into_buffer(&source, &mut sink, None)
            .map_err(|e| e.to_string())?;
        Ok(self.out[..written].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_output_resampling_keeps_the_rate_ratio() {
        let mut r = StreamResampler::fixed_output(44_100, 48_000, 480).unwrap();
        let tone: Vec<f32> = (0..44_100)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 44_100.0).sin() * 0.5)
            .collect();
        let mut used = 0;
        let mut produced = 0;
        while used + r.input_frames_next() <= tone.len() {
            let need = r.input_frames_next();
            let out = r.process(&tone[used..used + need]).unwrap();
            assert_eq!(out.len(), 480);
            used += need;
            produced += out.len();
        }
        let ratio = produced as f64 / used as f64;
        assert!((ratio - 48_000.0 / 44_100.0).abs() < 0.01, "ratio {ratio}");
    }

    #[test]
    fn fixed_input_takes_the_same_chunk_every_time() {
        let mut r = StreamResampler::fixed_input(48_000, 44_100, 960).unwrap();
        let silence = vec![0.0; 960];
        let mut produced = 0;
        for _ in 0..50 {
            assert_eq!(r.input_frames_next(), 960);
            produced += r.process(&silence).unwrap().len();
        }
        let expected = 50.0 * 960.0 * 44_100.0 / 48_000.0;
        assert!(
            (produced as f64 - expected).abs() < 2.0 * 960.0,
            "{produced}"
        );
    }
}
