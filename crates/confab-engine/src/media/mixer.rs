//! Mixes the playout of several remote participants into one output stream.
//!
//! [`AudioMixer`] owns one [`JitterBuffer`] per participant, keyed by the caller's participant id
//! type. Received packets go to [`AudioMixer::push`]; the playout clock calls
//! [`AudioMixer::pull`] every 20 ms and gets one mixed frame: the sum of every participant's
//! frame, passed through a soft limiter so overlapping speakers do not clip. The mixed output is
//! also what an echo canceller should use as its render reference.
//!
//! # Inlets: receiving without the mixer lock
//!
//! The mixer is shared behind a mutex by whoever receives packets and the playout thread, and
//! `pull` (which decodes Opus for every participant) holds that lock for a while. So that a
//! receiving thread never waits for it, a participant added with
//! [`AudioMixer::add_participant_with_inlet`] gets a bounded drop-oldest queue
//! ([`super::drop_oldest`]) in front of its jitter buffer: the receiver sends
//! [`ArrivedPacket`]s (packet plus the arrival time it measured) into the returned sender without
//! touching the mixer, and [`AudioMixer::pull`] moves everything queued into the jitter buffers
//! right before it pops. The jitter buffer therefore sees exactly the packets it would have seen
//! with a direct [`AudioMixer::push`] at arrival (nothing is played between arrival and the next
//! pull anyway), with the same arrival times: the queue adds no playout latency. What the queue
//! drops (only if the puller stalls for longer than the queue holds) is counted
//! ([`AudioMixer::inlet_dropped`]).

use std::collections::BTreeMap;

use super::drop_oldest::{self, DropCounter, DropOldestReceiver, DropOldestSender};
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

/// A received packet with the time it arrived, queued for a participant's jitter buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrivedPacket {
    /// The packet.
    pub packet: RtpAudioPacket,
    /// When it left the network (the jitter buffer's transit measurements use this).
    pub arrival: CaptureTime,
}

/// One participant: its jitter buffer and, if it has one, the inlet queue in front of it.
#[derive(Debug)]
struct Participant<D: AudioDecoder> {
    buffer: JitterBuffer<D>,
    inlet: Option<(DropOldestReceiver<ArrivedPacket>, DropCounter)>,
}

impl<D: AudioDecoder> Participant<D> {
    /// Moves every queued packet into the jitter buffer.
    fn drain_inlet(&mut self) {
        if let Some((rx, _)) = &self.inlet {
            for arrived in rx.try_iter() {
                self.buffer.push(arrived.packet, arrived.arrival);
            }
        }
    }
}

/// One mixed 20 ms frame.
#[derive(Debug, Clone, PartialEq)]
pub struct MixedFrame<K> {
    /// [`FRAME_SAMPLES`] samples, limited to `[-1, 1]`.
    pub samples: Vec<f32>,
    /// How each participant's contribution was produced.
    pub kinds: Vec<(K, FrameKind)>,
    /// Each participant's contribution as a mean square (0 for silence, 1 for a full-scale
    /// square wave), before mixing: who is talking, and how loud.
    pub energies: Vec<(K, f32)>,
}

/// Per-participant jitter buffers plus a mixer; see the module docs.
#[derive(Debug)]
pub struct AudioMixer<K: Ord + Clone + std::fmt::Display, D: AudioDecoder> {
    buffers: BTreeMap<K, Participant<D>>,
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
        self.buffers.insert(
            id,
            Participant {
                buffer: JitterBuffer::new(decoder, self.config),
                inlet: None,
            },
        );
    }

    /// Adds (or replaces) a participant whose packets arrive through the returned inlet (see
    /// the module docs). The inlet holds as many packets as a jitter buffer does
    /// ([`JitterBufferConfig::max_packets`]), so it never drops what the buffer would keep; it
    /// disconnects when the participant is removed or replaced.
    pub fn add_participant_with_inlet(
        &mut self,
        id: K,
        decoder: D,
    ) -> DropOldestSender<ArrivedPacket> {
        let (tx, rx) = drop_oldest::channel(self.config.max_packets);
        let counter = tx.drop_counter();
        self.buffers.insert(
            id,
            Participant {
                buffer: JitterBuffer::new(decoder, self.config),
                inlet: Some((rx, counter)),
            },
        );
        tx
    }

    /// Packets the participant's inlet dropped because they were not pulled in time (0 without
    /// an inlet); `None` for an unknown participant.
    #[must_use]
    pub fn inlet_dropped(&self, id: &K) -> Option<u64> {
        self.buffers
            .get(id)
            .map(|p| p.inlet.as_ref().map_or(0, |(_, dropped)| dropped.get()))
    }

    /// Removes a participant; returns whether it was present.
    pub fn remove_participant(&mut self, id: &K) -> bool {
        self.buffers.remove(id).is_some()
    }

    /// The participant's jitter buffer (for stats and delay reporting).
    #[must_use]
    pub fn buffer(&self, id: &K) -> Option<&JitterBuffer<D>> {
        self.buffers.get(id).map(|p| &p.buffer)
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
        let participant = self
            .buffers
            .get_mut(id)
            .ok_or_else(|| MixerError::UnknownParticipant(id.to_string()))?;
        // Whatever the inlet holds arrived earlier.
        participant.drain_inlet();
        participant.buffer.push(packet, arrival);
        Ok(())
    }

    /// Moves what every inlet holds into its jitter buffer, then pulls 20 ms from every
    /// participant at playout time `now` and mixes it.
    pub fn pull(&mut self, now: CaptureTime) -> MixedFrame<K> {
        let mut sum = vec![0.0f32; FRAME_SAMPLES];
        let mut kinds = Vec::with_capacity(self.buffers.len());
        let mut energies = Vec::with_capacity(self.buffers.len());
        for (id, participant) in &mut self.buffers {
            participant.drain_inlet();
            let frame = participant.buffer.pop(now);
            let mut squares = 0.0f32;
            for (acc, s) in sum.iter_mut().zip(&frame.samples) {
                *acc += *s;
                squares += *s * *s;
            }
            kinds.push((id.clone(), frame.kind));
            energies.push((id.clone(), squares / frame.samples.len().max(1) as f32));
        }
        soft_limit(&mut sum);
        MixedFrame {
            samples: sum,
            kinds,
            energies,
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
    use crate::media::drop_oldest::SendOutcome;
    use crate::media::opus_codec::OpusError;

    /// Decodes every packet to a constant: the inlet tests count packets, not samples.
    #[derive(Debug)]
    struct Constant;

    impl AudioDecoder for Constant {
        fn decode(&mut self, _packet: &[u8]) -> Result<Vec<f32>, OpusError> {
            Ok(vec![0.25; FRAME_SAMPLES])
        }
        fn conceal(&mut self) -> Result<Vec<f32>, OpusError> {
            Ok(vec![0.0; FRAME_SAMPLES])
        }
        fn decode_fec(&mut self, _next_packet: &[u8]) -> Result<Vec<f32>, OpusError> {
            Ok(vec![0.0; FRAME_SAMPLES])
        }
    }

    fn arrived(seq: u16) -> ArrivedPacket {
        ArrivedPacket {
            packet: RtpAudioPacket {
                seq,
                timestamp: u32::from(seq) * FRAME_SAMPLES as u32,
                payload: vec![1],
            },
            arrival: CaptureTime::from_micros(1_000_000 + u64::from(seq) * 20_000),
        }
    }

    #[test]
    fn inlet_packets_reach_the_jitter_buffer_at_the_next_pull() {
        let mut mixer = AudioMixer::new(JitterBufferConfig::default());
        let inlet = mixer.add_participant_with_inlet("ann".to_owned(), Constant);
        for seq in 0..3 {
            assert_eq!(inlet.send(arrived(seq)), SendOutcome::Queued);
        }
        let buffer = |m: &AudioMixer<String, Constant>| {
            m.buffer(&"ann".to_owned()).map(|b| b.stats().received)
        };
        assert_eq!(buffer(&mixer), Some(0), "queued, not yet in the buffer");
        mixer.pull(CaptureTime::from_micros(1_100_000));
        assert_eq!(buffer(&mixer), Some(3));
        assert_eq!(mixer.inlet_dropped(&"ann".to_owned()), Some(0));
    }

    #[test]
    fn a_full_inlet_drops_and_counts_the_oldest_packets() {
        let config = JitterBufferConfig {
            max_packets: 4,
            ..JitterBufferConfig::default()
        };
        let mut mixer = AudioMixer::new(config);
        let inlet = mixer.add_participant_with_inlet("ann".to_owned(), Constant);
        for seq in 0..10 {
            inlet.send(arrived(seq));
        }
        assert_eq!(
            mixer.inlet_dropped(&"ann".to_owned()),
            Some(6),
            "the inlet holds max_packets"
        );
        mixer.pull(CaptureTime::from_micros(1_300_000));
        assert_eq!(
            mixer.buffer(&"ann".to_owned()).map(|b| b.stats().received),
            Some(4),
            "the newest four reached the buffer"
        );
        assert_eq!(mixer.inlet_dropped(&"nobody".to_owned()), None);
    }

    #[test]
    fn removing_a_participant_disconnects_its_inlet() {
        let mut mixer = AudioMixer::new(JitterBufferConfig::default());
        let inlet = mixer.add_participant_with_inlet("ann".to_owned(), Constant);
        assert!(!inlet.is_disconnected());
        assert!(mixer.remove_participant(&"ann".to_owned()));
        assert!(inlet.is_disconnected());
        assert_eq!(inlet.send(arrived(0)), SendOutcome::Disconnected);
    }

    #[test]
    fn limiter_keeps_quiet_samples_and_bounds_loud_ones() {
        let mut s = [0.5, -0.7, 1.5, -3.0, 0.0];
        soft_limit(&mut s);
        assert_eq!(&s[..2], &[0.5, -0.7]);
        assert!(s[2] > 0.8 && s[2] <= 1.0);
        assert!(s[3] < -0.8 && s[3] >= -1.0);
    }
}
