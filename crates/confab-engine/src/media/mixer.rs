//! Mixes the playout of several remote participants into one output stream.
//!
//! [`AudioMixer`] owns one [`JitterBuffer`] per participant, keyed by the caller's participant id
//! type. Received packets go to [`AudioMixer::push`]; the playout clock calls
//! [`AudioMixer::pull`] every 20 ms and gets one mixed frame: the sum of every participant's
//! frame, passed through a soft limiter so overlapping speakers do not clip. The mixed output is
//! also what an echo canceller should use as its render reference.

use std::collections::BTreeMap;

use super::frame::CaptureTime;
use super::jitter_buffer::{FrameKind, JitterBuffer, JitterBufferConfig, RtpAudioPacket};
use super::opus_codec::{AudioDecoder, FRAME_SAMPLES};

/// Errors from the mixer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MixerError {
    /// A packet arrived for a participant that was never added (or was removed).
    #[error("no participant {0} in the mixer")]
    UnknownParticipant(String),
}

/// One mixed 20 ms frame.
#[derive(Debug, Clone, PartialEq)]
pub struct MixedFrame<K> {
    /// [`FRAME_SAMPLES`] samples, limited to `[-1, 1]`.
    pub samples: Vec<f32>,
    /// How each participant's contribution was produced.
    pub kinds: Vec<(K, FrameKind)>,
}

/// Per-participant jitter buffers plus a mixer; see the module docs.
#[derive(Debug)]
pub struct AudioMixer<K: Ord + Clone + std::fmt::Display, D: AudioDecoder> {
    buffers: BTreeMap<K, JitterBuffer<D>>,
    config: JitterBufferConfig,
}

impl<K: Ord + Clone + std::fmt::Display, D: AudioDecoder> AudioMixer<K, D> {
    /// An empty mixer whose jitter buffers use `config`.
    #[must_use]
    pub const fn new(config: JitterBufferConfig) -> Self {
        Self {
            buffers: BTreeMap::new(),
            config,
        }
    }

    /// Adds (or replaces) a participant, decoding through `decoder`.
    pub fn add_participant(&mut self, id: K, decoder: D) {
        self.buffers
            .insert(id, JitterBuffer::new(decoder, self.config));
    }

    /// Removes a participant; returns whether it was present.
    pub fn remove_participant(&mut self, id: &K) -> bool {
        self.buffers.remove(id).is_some()
    }

    /// The participant's jitter buffer (for stats and delay reporting).
    #[must_use]
    pub fn buffer(&self, id: &K) -> Option<&JitterBuffer<D>> {
        self.buffers.get(id)
    }

    /// Number of participants.
    #[must_use]
    pub fn len(&self) -> usize {
        self.buffers.len()
    }

    /// True with no participants.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buffers.is_empty()
    }

    /// Routes a received packet to its participant's jitter buffer.
    ///
    /// # Errors
    /// [`MixerError::UnknownParticipant`] if `id` was not added.
    pub fn push(
        &mut self,
        id: &K,
        packet: RtpAudioPacket,
        arrival: CaptureTime,
    ) -> Result<(), MixerError> {
        let buffer = self
            .buffers
            .get_mut(id)
            .ok_or_else(|| MixerError::UnknownParticipant(id.to_string()))?;
        buffer.push(packet, arrival);
        Ok(())
    }

    /// Pulls 20 ms from every participant at playout time `now` and mixes it.
    pub fn pull(&mut self, now: CaptureTime) -> MixedFrame<K> {
        let mut sum = vec![0.0f32; FRAME_SAMPLES];
        let mut kinds = Vec::with_capacity(self.buffers.len());
        for (id, buffer) in &mut self.buffers {
            let frame = buffer.pop(now);
            for (acc, s) in sum.iter_mut().zip(&frame.samples) {
                *acc += *s;
            }
            kinds.push((id.clone(), frame.kind));
        }
        soft_limit(&mut sum);
        MixedFrame {
            samples: sum,
            kinds,
        }
    }
}

/// Limits samples to `[-1, 1]`: linear up to 0.8, then a tanh knee.
pub fn soft_limit(samples: &mut [f32]) {
    const KNEE: f32 = 0.8;
    for s in samples {
        let a = s.abs();
        if a > KNEE {
            *s = s.signum() * (KNEE + (1.0 - KNEE) * ((a - KNEE) / (1.0 - KNEE)).tanh());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_keeps_quiet_samples_and_bounds_loud_ones() {
        let mut s = [0.5, -0.7, 1.5, -3.0, 0.0];
        soft_limit(&mut s);
        assert_eq!(&s[..2], &[0.5, -0.7]);
        assert!(s[2] > 0.8 && s[2] <= 1.0);
        assert!(s[3] < -0.8 && s[3] >= -1.0);
    }
}
