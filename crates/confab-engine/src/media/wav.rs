//! Looping WAV audio source (and a WAV writer for recordings and fixtures).
//!
//! [`WavSource`] reads a whole WAV file with `hound` when opened: 8/16/24/32-bit integer or 32-bit
//! float PCM, any channel count (downmixed to mono by averaging), any rate from 8 to 384 kHz
//! (resampled to 48 kHz with `rubato`'s FFT resampler). It then serves 10 or 20 ms frames,
//! looping at the end, so one clip can feed Confab and other systems in side-by-side runs. The
//! clip is held in memory (a minute of audio is ~11 MB). Bad files give a [`WavError`]; nothing
//! panics.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use super::frame::{AUDIO_SAMPLE_RATE, AudioFrame, CaptureTime};
use super::source::{AudioSource, Pacing, SourceError};

/// Errors opening or writing a WAV file.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// The file is not a readable WAV file.
    #[error("cannot read WAV {what}: {source}")]
    Read {
        /// The file (or "stream").
        what: String,
        /// The decoder's error.
        #[source]
        source: hound::Error,
    },
    /// The WAV is valid but uses an unsupported layout.
    #[error("unsupported WAV {what}: {reason}")]
    Unsupported {
        /// The file (or "stream").
        what: String,
        /// Why.
        reason: String,
    },
    /// The file has no samples.
    #[error("WAV {0} contains no audio")]
    Empty(String),
    /// Resampling to 48 kHz failed.
    #[error("cannot resample WAV {what} from {rate} Hz: {reason}")]
    Resample {
        /// The file (or "stream").
        what: String,
        /// Its sample rate.
        rate: u32,
        /// Why.
        reason: String,
    },
    /// Frames must be 10 or 20 ms.
    #[error("audio frames must be 480 or 960 samples, got {0}")]
    FrameSize(usize),
    /// Writing failed.
    #[error("cannot write WAV {what}: {source}")]
    Write {
        /// The file.
        what: String,
        /// The encoder's error.
        #[source]
        source: hound::Error,
    },
}

impl From<WavError> for SourceError {
    fn from(e: WavError) -> Self {
        Self::Format(e.to_string())
    }
}

/// A WAV clip served as looping 48 kHz mono frames.
#[derive(Debug, Clone)]
pub struct WavSource {
    name: String,
    samples: Vec<f32>,
    position: usize,
    frame_samples: usize,
    original_rate: u32,
    original_channels: u16,
}

impl WavSource {
    /// Opens and decodes `path`, serving 20 ms frames.
    ///
    /// # Errors
    /// [`WavError`] if the file cannot be read, is empty or has an unsupported format.
    pub fn open(path: &Path) -> Result<Self, WavError> {
        let what = path.display().to_string();
        let reader = hound::WavReader::open(path).map_err(|source| WavError::Read {
            what: what.clone(),
            source,
        })?;
        Self::from_hound(reader, what)
    }

    /// Decodes a WAV stream (e.g. an in-memory file), serving 20 ms frames.
    ///
    /// # Errors
    /// As [`WavSource::open`].
    pub fn from_reader<R: Read>(reader: R) -> Result<Self, WavError> {
        let what = "stream".to_string();
        let reader = hound::WavReader::new(reader).map_err(|source| WavError::Read {
            what: what.clone(),
            source,
        })?;
        Self::from_hound(reader, what)
    }

    /// Serves frames of `samples` samples (480 = 10 ms or 960 = 20 ms) instead.
    ///
    /// # Errors
    /// [`WavError::FrameSize`] for any other size.
    pub fn with_frame_samples(mut self, samples: usize) -> Result<Self, WavError> {
        if ![AudioFrame::SAMPLES_10MS, AudioFrame::SAMPLES_20MS].contains(&samples) {
            return Err(WavError::FrameSize(samples));
        }
        self.frame_samples = samples;
        Ok(self)
    }

    /// The clip as 48 kHz mono samples.
    #[must_use]
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }

    /// Sample rate and channel count of the file before conversion.
    #[must_use]
    pub const fn original_format(&self) -> (u32, u16) {
        (self.original_rate, self.original_channels)
    }

    fn from_hound<R: Read>(reader: hound::WavReader<R>, what: String) -> Result<Self, WavError> {
        let spec = reader.spec();
        let unsupported = |reason: String| WavError::Unsupported {
            what: what.clone(),
            reason,
        };
        if spec.channels == 0 {
            return Err(unsupported("zero channels".into()));
        }
        if !(8_000..=384_000).contains(&spec.sample_rate) {
            return Err(unsupported(format!("sample rate {} Hz", spec.sample_rate)));
        }
        let read_err = |source| WavError::Read {
            what: what.clone(),
            source,
        };
        let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Float, 32) => reader
                .into_samples::<f32>()
                .collect::<Result<_, _>>()
                .map_err(read_err)?,
            (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
                let scale = 1.0 / (1u64 << (bits - 1)) as f32;
                reader
                    .into_samples::<i32>()
                    .map(|s| s.map(|v| v as f32 * scale))
                    .collect::<Result<_, _>>()
                    .map_err(read_err)?
            }
            (format, bits) => {
                return Err(unsupported(format!("{bits}-bit {format:?} samples")));
            }
        };
        let channels = usize::from(spec.channels);
        let mono: Vec<f32> = interleaved
            .chunks_exact(channels)
            .map(|c| c.iter().sum::<f32>() / channels as f32)
            .collect();
        if mono.is_empty() {
            return Err(WavError::Empty(what));
        }
        let samples = if spec.sample_rate == AUDIO_SAMPLE_RATE {
            mono
        } else {
            resample(&mono, spec.sample_rate).map_err(|reason| WavError::Resample {
                what: what.clone(),
                rate: spec.sample_rate,
                reason,
            })?
        };
        if samples.is_empty() {
            return Err(WavError::Empty(what));
        }
        let name = Path::new(&what)
            .file_stem()
            .map_or_else(|| "wav".to_string(), |s| s.to_string_lossy().into_owned());
        Ok(Self {
            name,
            samples,
            position: 0,
            frame_samples: AudioFrame::SAMPLES_20MS,
            original_rate: spec.sample_rate,
            original_channels: spec.channels,
        })
    }

    /// The next frame stamped with `capture_time`, wrapping around at the end of the clip.
    #[must_use]
    pub fn next_frame_at(&mut self, capture_time: CaptureTime) -> AudioFrame {
        let mut samples = Vec::with_capacity(self.frame_samples);
        while samples.len() < self.frame_samples {
            let take = (self.frame_samples - samples.len()).min(self.samples.len() - self.position);
            samples.extend_from_slice(&self.samples[self.position..self.position + take]);
            self.position = (self.position + take) % self.samples.len();
        }
        AudioFrame {
            samples,
            capture_time,
        }
    }
}

fn resample(mono: &[f32], rate: u32) -> Result<Vec<f32>, String> {
    let mut resampler = Fft::<f32>::new(
        rate as usize,
        AUDIO_SAMPLE_RATE as usize,
        1024,
        1,
        FixedSync::Input,
    )
    .map_err(|e| e.to_string())?;
    let input = InterleavedSlice::new(mono, 1, mono.len()).map_err(|e| e.to_string())?;
    let output = resampler
        .process_all(&input, mono.len(), None)
        .map_err(|e| e.to_string())?;
    Ok(output.take_data())
}

impl AudioSource for WavSource {
    fn name(&self) -> String {
        format!("wav-{}", self.name)
    }

    fn pacing(&self) -> Pacing {
        Pacing::Interval(Duration::from_micros(
            self.frame_samples as u64 * 1_000_000 / u64::from(AUDIO_SAMPLE_RATE),
        ))
    }

    fn next_frame(&mut self) -> Result<AudioFrame, SourceError> {
        Ok(self.next_frame_at(CaptureTime::now()))
    }
}

/// Writes 48 kHz mono samples as a 16-bit PCM WAV file (e.g. a loopback recording).
///
/// # Errors
/// [`WavError::Write`] if the file cannot be written.
pub fn write_wav(path: &Path, samples: &[f32]) -> Result<(), WavError> {
    let what = path.display().to_string();
    let write_err = |source| WavError::Write {
        what: what.clone(),
        source,
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: AUDIO_SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(write_err)?;
    for s in samples {
        let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        writer.write_sample(v).map_err(write_err)?;
    }
    writer.finalize().map_err(write_err)
}
