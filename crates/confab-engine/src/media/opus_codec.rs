//! Opus encoding and decoding for call audio (48 kHz mono, 20 ms frames).
//!
//! [`OpusEncoder`] runs libopus in VOIP mode with in-band FEC, a packet-loss hint (which sizes the
//! FEC), and DTX: during silence it emits tiny packets ([`EncodedAudio::is_dtx`]) that need not be
//! sent. [`OpusDecoder`] decodes packets, conceals a lost packet ([`OpusDecoder::conceal`], PLC)
//! and recovers a lost packet from the FEC data carried in the packet after it
//! ([`OpusDecoder::decode_fec`]). Every decode call yields exactly one 20 ms frame
//! ([`FRAME_SAMPLES`] samples), which is what the jitter buffer relies on.

use opus::{Application, Bitrate, Channels};

use super::frame::AUDIO_SAMPLE_RATE;

/// Samples per 20 ms Opus frame at 48 kHz.
pub const FRAME_SAMPLES: usize = 960;
/// Largest packet the encoder may produce (bytes).
const MAX_PACKET: usize = 1500;
/// Packets this small or smaller are DTX/comfort-noise updates, not speech.
const DTX_MAX_BYTES: usize = 2;

/// Errors from the Opus encoder or decoder.
#[derive(Debug, thiserror::Error)]
pub enum OpusError {
    /// libopus rejected a call.
    #[error("opus {op} failed: {source}")]
    Codec {
        /// What was being done.
        op: &'static str,
        /// The libopus error.
        #[source]
        source: opus::Error,
    },
    /// The input frame is not 20 ms at 48 kHz.
    #[error("opus frames must be {FRAME_SAMPLES} samples (20 ms at 48 kHz), got {0}")]
    FrameSize(usize),
    /// The decoder returned a different amount of audio than one 20 ms frame.
    #[error("decoded {0} samples, expected {FRAME_SAMPLES} (packet is not a single 20 ms frame)")]
    DecodedSize(usize),
}

fn codec(op: &'static str) -> impl FnOnce(opus::Error) -> OpusError {
    move |source| OpusError::Codec { op, source }
}

/// Settings for [`OpusEncoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusEncoderConfig {
    /// Target bitrate in bits per second.
    pub bitrate_bps: i32,
    /// Include in-band FEC (LBRR) data for the previous frame in each packet.
    pub inband_fec: bool,
    /// Expected packet loss in percent (0..=100); higher values spend more bits on FEC.
    pub packet_loss_percent: u8,
    /// Discontinuous transmission during silence.
    pub dtx: bool,
    /// Encoder complexity 0..=10.
    pub complexity: u8,
}

impl Default for OpusEncoderConfig {
    fn default() -> Self {
        Self {
            bitrate_bps: 32_000,
            inband_fec: true,
            packet_loss_percent: 10,
            dtx: true,
            complexity: 9,
        }
    }
}

/// One encoded 20 ms packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedAudio {
    /// The Opus packet.
    pub data: Vec<u8>,
}

impl EncodedAudio {
    /// True for a DTX packet (silence): the sender may skip it; the RTP timestamp still advances.
    #[must_use]
    pub fn is_dtx(&self) -> bool {
        self.data.len() <= DTX_MAX_BYTES
    }
}

/// Opus encoder for 48 kHz mono 20 ms frames.
pub struct OpusEncoder {
    encoder: opus::Encoder,
    config: OpusEncoderConfig,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// Creates an encoder in VOIP mode with `config`.
    ///
    /// # Errors
    /// [`OpusError::Codec`] if libopus rejects a setting.
    pub fn new(config: OpusEncoderConfig) -> Result<Self, OpusError> {
        let mut encoder = opus::Encoder::new(AUDIO_SAMPLE_RATE, Channels::Mono, Application::Voip)
            .map_err(codec("create encoder"))?;
        encoder
            .set_bitrate(Bitrate::Bits(config.bitrate_bps))
            .map_err(codec("set bitrate"))?;
        encoder
            .set_inband_fec(config.inband_fec)
            .map_err(codec("set FEC"))?;
        encoder
            .set_packet_loss_perc(i32::from(config.packet_loss_percent.min(100)))
            .map_err(codec("set packet loss"))?;
        encoder.set_dtx(config.dtx).map_err(codec("set DTX"))?;
        encoder
            .set_complexity(i32::from(config.complexity.min(10)))
            .map_err(codec("set complexity"))?;
        Ok(Self { encoder, config })
    }

    /// Current settings.
    #[must_use]
    pub const fn config(&self) -> &OpusEncoderConfig {
        &self.config
    }

    /// Encodes one 20 ms frame ([`FRAME_SAMPLES`] samples).
    ///
    /// # Errors
    /// [`OpusError::FrameSize`] for a wrong-sized frame, [`OpusError::Codec`] from libopus.
    pub fn encode(&mut self, samples: &[f32]) -> Result<EncodedAudio, OpusError> {
        if samples.len() != FRAME_SAMPLES {
            return Err(OpusError::FrameSize(samples.len()));
        }
        let data = self
            .encoder
            .encode_vec_float(samples, MAX_PACKET)
            .map_err(codec("encode"))?;
        Ok(EncodedAudio { data })
    }

    /// Updates the target bitrate (e.g. from congestion control).
    ///
    /// # Errors
    /// [`OpusError::Codec`] if libopus rejects it.
    pub fn set_bitrate(&mut self, bps: i32) -> Result<(), OpusError> {
        self.encoder
            .set_bitrate(Bitrate::Bits(bps))
            .map_err(codec("set bitrate"))?;
        self.config.bitrate_bps = bps;
        Ok(())
    }

    /// Updates the expected-loss hint (e.g. from RTCP receiver reports).
    ///
    /// # Errors
    /// [`OpusError::Codec`] if libopus rejects it.
    pub fn set_packet_loss_percent(&mut self, percent: u8) -> Result<(), OpusError> {
        let percent = percent.min(100);
        self.encoder
            .set_packet_loss_perc(i32::from(percent))
            .map_err(codec("set packet loss"))?;
        self.config.packet_loss_percent = percent;
        Ok(())
    }

    /// Algorithmic delay of the encoder in samples (decoded audio lags the input by this much).
    ///
    /// # Errors
    /// [`OpusError::Codec`] from libopus.
    pub fn lookahead(&mut self) -> Result<usize, OpusError> {
        let samples = self
            .encoder
            .get_lookahead()
            .map_err(codec("get lookahead"))?;
        Ok(usize::try_from(samples).unwrap_or(0))
    }
}

/// Decodes 20 ms Opus packets, with PLC and FEC recovery.
pub trait AudioDecoder: Send {
    /// Decodes `packet` into exactly [`FRAME_SAMPLES`] samples.
    ///
    /// # Errors
    /// A codec error for a corrupt packet.
    fn decode(&mut self, packet: &[u8]) -> Result<Vec<f32>, OpusError>;
    /// Synthesises a frame for a lost packet (packet-loss concealment).
    ///
    /// # Errors
    /// A codec error.
    fn conceal(&mut self) -> Result<Vec<f32>, OpusError>;
    /// Recovers the frame *before* `next_packet` from its in-band FEC data (falls back to PLC
    /// inside libopus when the packet carries none).
    ///
    /// # Errors
    /// A codec error for a corrupt packet.
    fn decode_fec(&mut self, next_packet: &[u8]) -> Result<Vec<f32>, OpusError>;
    /// Whether `packet` carries in-band FEC for the frame before it (so
    /// [`AudioDecoder::decode_fec`] would rebuild that frame rather than conceal it). Decoders
    /// that cannot tell say yes.
    fn has_fec(&self, packet: &[u8]) -> bool {
        let _ = packet;
        true
    }
}

/// Whether an Opus packet carries in-band FEC (SILK LBRR data) for the previous frame
/// (RFC 6716 §3.1 and §4.2.3): only SILK-only and hybrid packets can, and in those the LBRR flag
/// of the first channel follows the VAD flags of the packet's SILK frames at the top of the
/// first frame's first byte (one SILK frame per 10 or 20 ms packet, two for 40 ms, three for
/// 60 ms). Packets whose framing it cannot read count as carrying FEC (decoding then falls back
/// to concealment inside libopus anyway).
#[must_use]
pub fn opus_packet_has_fec(packet: &[u8]) -> bool {
    let Some(&toc) = packet.first() else {
        return false;
    };
    let config = toc >> 3;
    if config >= 16 {
        // CELT-only: no LBRR.
        return false;
    }
    // Frame duration (ms) of SILK-only (10/20/40/60) and hybrid (10/20) configurations.
    let frame_ms = if config < 12 {
        [10, 20, 40, 60][usize::from(config & 3)]
    } else {
        [10, 20][usize::from(config & 1)]
    };
    let silk_frames: u32 = match frame_ms {
        40 => 2,
        60 => 3,
        _ => 1,
    };
    let first_frame_start = match toc & 3 {
        // One frame, or two of equal size: the first starts right after the TOC byte.
        0 | 1 => 1,
        // Two frames, the first's length coded in one or two bytes.
        2 => match packet.get(1) {
            Some(&b) if b < 252 => 2,
            Some(_) => 3,
            None => return false,
        },
        // Arbitrary framing (padding, counts): not parsed here.
        _ => return true,
    };
    let Some(&first) = packet.get(first_frame_start) else {
        return false;
    };
    (first >> (7 - silk_frames)) & 1 == 1
}

/// Opus decoder for 48 kHz mono.
pub struct OpusDecoder {
    decoder: opus::Decoder,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// Creates a decoder.
    ///
    /// # Errors
    /// [`OpusError::Codec`] if libopus fails.
    pub fn new() -> Result<Self, OpusError> {
        let decoder = opus::Decoder::new(AUDIO_SAMPLE_RATE, Channels::Mono)
            .map_err(codec("create decoder"))?;
        Ok(Self { decoder })
    }

    fn run(&mut self, packet: &[u8], fec: bool, op: &'static str) -> Result<Vec<f32>, OpusError> {
        let mut out = vec![0.0f32; FRAME_SAMPLES];
        let n = self
            .decoder
            .decode_float(packet, &mut out, fec)
            .map_err(codec(op))?;
        if n != FRAME_SAMPLES {
            return Err(OpusError::DecodedSize(n));
        }
        Ok(out)
    }
}

impl AudioDecoder for OpusDecoder {
    fn decode(&mut self, packet: &[u8]) -> Result<Vec<f32>, OpusError> {
        self.run(packet, false, "decode")
    }

    fn conceal(&mut self) -> Result<Vec<f32>, OpusError> {
        // An empty packet asks libopus for PLC of one frame (the output length sets how much).
        self.run(&[], false, "conceal")
    }

    fn decode_fec(&mut self, next_packet: &[u8]) -> Result<Vec<f32>, OpusError> {
        self.run(next_packet, true, "decode FEC")
    }

    fn has_fec(&self, packet: &[u8]) -> bool {
        opus_packet_has_fec(packet)
    }
}
