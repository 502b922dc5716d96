//! Raw media frames and the shared media clock.
//!
//! [`I420Frame`] is a tightly packed 4:2:0 planar picture (Y plane `width x height`, U and V planes
//! `ceil(width/2) x ceil(height/2)`, strides equal to widths). [`AudioFrame`] is a block of 48 kHz
//! mono `f32` samples. Both carry the [`CaptureTime`] of their first sample / of the exposure.
//!
//! [`CaptureTime`] counts microseconds since a process-wide epoch fixed the first time the clock is
//! read, on [`std::time::Instant`] (monotonic), so times taken on different threads compare
//! directly. Only the capture threads should call [`CaptureTime::now`]; logic that needs time takes
//! it as an argument so tests can drive it with a simulated clock.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Audio sample rate used everywhere in the pipeline (Opus native rate).
pub const AUDIO_SAMPLE_RATE: u32 = 48_000;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// A point on the process-wide media clock, in microseconds since its epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CaptureTime(pub u64);

impl CaptureTime {
    /// The current time on the shared monotonic media clock.
    #[must_use]
    pub fn now() -> Self {
        let epoch = *EPOCH.get_or_init(Instant::now);
        let micros = Instant::now().saturating_duration_since(epoch).as_micros();
        Self(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// Microseconds since the media clock epoch.
    #[must_use]
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// A time `micros` microseconds after the epoch.
    #[must_use]
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// This time shifted later by `d` (saturating).
    #[must_use]
    pub fn plus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        )
    }

    /// `self - earlier`, or zero if `earlier` is later.
    #[must_use]
    pub fn saturating_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

/// Errors building a frame from caller-supplied buffers.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// Width or height is zero.
    #[error("frame dimensions must be non-zero, got {width}x{height}")]
    ZeroSize {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
    },
    /// A plane buffer has the wrong length for the dimensions.
    #[error("{plane} plane has {actual} bytes, expected {expected} for {width}x{height}")]
    PlaneSize {
        /// Which plane ("Y", "U" or "V").
        plane: &'static str,
        /// Bytes expected.
        expected: usize,
        /// Bytes given.
        actual: usize,
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
    },
}

/// A packed I420 (YUV 4:2:0 planar, 8-bit) picture with its capture time.
#[derive(Clone, PartialEq, Eq)]
pub struct I420Frame {
    width: u32,
    height: u32,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
    /// When the picture was captured (or synthesised).
    pub capture_time: CaptureTime,
}

impl std::fmt::Debug for I420Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I420Frame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("capture_time", &self.capture_time)
            .finish_non_exhaustive()
    }
}

impl I420Frame {
    /// A black frame (Y=16, U=V=128) of the given size.
    ///
    /// # Errors
    /// [`FrameError::ZeroSize`] if a dimension is zero.
    pub fn black(width: u32, height: u32) -> Result<Self, FrameError> {
        if width == 0 || height == 0 {
            return Err(FrameError::ZeroSize { width, height });
        }
        let (cw, ch) = chroma_size(width, height);
        Ok(Self {
            width,
            height,
            y: vec![16; width as usize * height as usize],
            u: vec![128; cw * ch],
            v: vec![128; cw * ch],
            capture_time: CaptureTime::default(),
        })
    }

    /// Wraps packed planes, checking their sizes.
    ///
    /// # Errors
    /// [`FrameError`] if a dimension is zero or a plane has the wrong length.
    pub fn from_planes(
        width: u32,
        height: u32,
        y: Vec<u8>,
        u: Vec<u8>,
        v: Vec<u8>,
        capture_time: CaptureTime,
    ) -> Result<Self, FrameError> {
        if width == 0 || height == 0 {
            return Err(FrameError::ZeroSize { width, height });
        }
        let (cw, ch) = chroma_size(width, height);
        for (plane, buf, expected) in [
            ("Y", &y, width as usize * height as usize),
            ("U", &u, cw * ch),
            ("V", &v, cw * ch),
        ] {
            if buf.len() != expected {
                return Err(FrameError::PlaneSize {
                    plane,
                    expected,
                    actual: buf.len(),
                    width,
                    height,
                });
            }
        }
        Ok(Self {
            width,
            height,
            y,
            u,
            v,
            capture_time,
        })
    }

    /// Wraps planes the caller has sized from validated dimensions (debug-asserted).
    pub(super) fn from_planes_unchecked(
        width: u32,
        height: u32,
        y: Vec<u8>,
        u: Vec<u8>,
        v: Vec<u8>,
        capture_time: CaptureTime,
    ) -> Self {
        debug_assert_eq!(y.len(), width as usize * height as usize);
        debug_assert_eq!(u.len(), v.len());
        Self {
            width,
            height,
            y,
            u,
            v,
            capture_time,
        }
    }

    /// Copies possibly strided planes (as a decoder hands them out) into a packed frame.
    ///
    /// # Errors
    /// [`FrameError`] if a plane is too short for its stride and the dimensions.
    pub fn from_strided(
        width: u32,
        height: u32,
        planes: [(&[u8], usize); 3],
        capture_time: CaptureTime,
    ) -> Result<Self, FrameError> {
        let mut frame = Self::black(width, height)?;
        let (cw, ch) = chroma_size(width, height);
        let dims = [(width as usize, height as usize), (cw, ch), (cw, ch)];
        let names = ["Y", "U", "V"];
        let dsts = [&mut frame.y, &mut frame.u, &mut frame.v];
        for (((src, stride), (w, h)), (dst, plane)) in planes
            .into_iter()
            .zip(dims)
            .zip(dsts.into_iter().zip(names))
        {
            let needed = if h == 0 { 0 } else { stride * (h - 1) + w };
            if stride < w || src.len() < needed {
                return Err(FrameError::PlaneSize {
                    plane,
                    expected: needed.max(w * h),
                    actual: src.len(),
                    width,
                    height,
                });
            }
            for (row, out) in dst.chunks_exact_mut(w).enumerate() {
                let start = row * stride;
                out.copy_from_slice(&src[start..start + w]);
            }
        }
        frame.capture_time = capture_time;
        Ok(frame)
    }

    /// Picture width in pixels.
    #[must_use]
    pub const fn width(&self) -> u32 {
        self.width
    }

    /// Picture height in pixels.
    #[must_use]
    pub const fn height(&self) -> u32 {
        self.height
    }

    /// Width and height of each chroma plane.
    #[must_use]
    pub fn chroma_size(&self) -> (usize, usize) {
        chroma_size(self.width, self.height)
    }

    /// Luma plane, `width * height` bytes.
    #[must_use]
    pub fn y(&self) -> &[u8] {
        &self.y
    }

    /// Cb plane.
    #[must_use]
    pub fn u(&self) -> &[u8] {
        &self.u
    }

    /// Cr plane.
    #[must_use]
    pub fn v(&self) -> &[u8] {
        &self.v
    }

    /// Mutable access to the three planes (Y, U, V) for in-place drawing.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        (&mut self.y, &mut self.u, &mut self.v)
    }
}

/// Size of a chroma plane of a 4:2:0 picture: half the luma size, rounded up.
#[must_use]
pub fn chroma_size(width: u32, height: u32) -> (usize, usize) {
    (width.div_ceil(2) as usize, height.div_ceil(2) as usize)
}

/// A block of 48 kHz mono audio and the capture time of its first sample.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioFrame {
    /// Samples in `[-1, 1]`.
    pub samples: Vec<f32>,
    /// When the first sample was captured (or synthesised).
    pub capture_time: CaptureTime,
}

impl AudioFrame {
    /// Samples in 10 ms at 48 kHz.
    pub const SAMPLES_10MS: usize = 480;
    /// Samples in 20 ms at 48 kHz (one Opus frame).
    pub const SAMPLES_20MS: usize = 960;

    /// Duration of the frame.
    #[must_use]
    pub fn duration(&self) -> Duration {
        samples_to_duration(self.samples.len())
    }

    /// Capture time of the sample at `index` within this frame.
    #[must_use]
    pub fn time_of_sample(&self, index: usize) -> CaptureTime {
        self.capture_time.plus(samples_to_duration(index))
    }
}

/// Re-chunks audio of any block size (a device callback, 10 ms source frames) into frames of a
/// fixed size (960 samples for Opus), keeping the capture time of each output frame's first
/// sample.
#[derive(Debug, Clone)]
pub struct AudioChunker {
    size: usize,
    pending: Vec<f32>,
    pending_start: CaptureTime,
}

impl AudioChunker {
    /// Emits frames of `size` samples (at least 1).
    #[must_use]
    pub fn new(size: usize) -> Self {
        Self {
            size: size.max(1),
            pending: Vec::new(),
            pending_start: CaptureTime::default(),
        }
    }

    /// Adds a block; returns every complete frame now available.
    pub fn push(&mut self, block: &AudioFrame) -> Vec<AudioFrame> {
        let mut out = Vec::new();
        let mut consumed = 0;
        while consumed < block.samples.len() {
            if self.pending.is_empty() {
                self.pending_start = block.time_of_sample(consumed);
            }
            let take = (self.size - self.pending.len()).min(block.samples.len() - consumed);
            self.pending
                .extend_from_slice(&block.samples[consumed..consumed + take]);
            consumed += take;
            if self.pending.len() == self.size {
                out.push(AudioFrame {
                    samples: std::mem::replace(&mut self.pending, Vec::with_capacity(self.size)),
                    capture_time: self.pending_start,
                });
            }
        }
        out
    }
}

/// Duration of `n` samples at 48 kHz.
#[must_use]
pub fn samples_to_duration(n: usize) -> Duration {
    Duration::from_micros(n as u64 * 1_000_000 / u64::from(AUDIO_SAMPLE_RATE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_copy_packs_planes() -> Result<(), FrameError> {
        let y: Vec<u8> = (0..6 * 2).map(|i| i as u8).collect();
        let u = vec![7u8; 4];
        let f = I420Frame::from_strided(4, 2, [(&y, 6), (&u, 4), (&u, 4)], CaptureTime(5))?;
        assert_eq!(f.y(), &[0, 1, 2, 3, 6, 7, 8, 9]);
        assert_eq!(f.u(), &[7, 7]);
        assert!(
            I420Frame::from_strided(4, 2, [(&y[..5], 6), (&u, 4), (&u, 4)], CaptureTime(5))
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn chunker_regroups_and_keeps_times() {
        let mut c = AudioChunker::new(960);
        let mut out = Vec::new();
        for i in 0..5u64 {
            let block = AudioFrame {
                samples: (0..480).map(|s| (i * 480 + s) as f32).collect(),
                capture_time: CaptureTime(i * 10_000),
            };
            out.extend(c.push(&block));
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].samples[0], 960.0);
        assert_eq!(out[1].capture_time, CaptureTime(20_000));
        let odd = AudioFrame {
            samples: vec![0.0; 700],
            capture_time: CaptureTime(1_000_000),
        };
        // 480 pending + 700 = one frame and 220 left; the next frame starts 480 samples (10 ms)
        // into this block.
        let got = c.push(&odd);
        assert_eq!(got.len(), 1);
        let got = c.push(&AudioFrame {
            samples: vec![0.0; 740],
            capture_time: CaptureTime(0),
        });
        assert_eq!(got[0].capture_time, CaptureTime(1_010_000));
    }

    #[test]
    fn clock_is_monotonic() {
        let a = CaptureTime::now();
        let b = CaptureTime::now();
        assert!(b >= a);
    }
}
