//! H.264 encoding and decoding on openh264.
//!
//! [`H264Encoder`] is set up for real-time camera video sent over RTP: constrained baseline
//! profile, bitrate rate control at a configured frame rate, slices limited to
//! [`H264EncoderConfig::max_slice_bytes`] (so each NAL fits one RTP packet without
//! fragmentation), SPS/PPS emitted in front of every IDR, keyframes on demand
//! ([`H264Encoder::request_keyframe`], for PLI/FIR), target bitrate and frame-rate changes at
//! runtime ([`H264Encoder::set_bitrate`], [`H264Encoder::set_frame_rate`], for congestion
//! control and degradation) without re-creating the encoder, and a picture of another size
//! re-creating it for that size (starting with an IDR and new SPS/PPS).
//! Output is one Annex-B access unit per frame ([`EncodedFrame`]), ready for a sample writer.
//!
//! [`H264Decoder`] turns Annex-B access units back into [`I420Frame`]s (or RGBA). A corrupt or
//! undecodable access unit (for example a stream joined mid-GOP) gives [`H264Error::Decode`]; the
//! caller should then ask the sender for a keyframe. The decoder recovers at the next IDR.

use std::time::Duration;

use openh264::OpenH264API;
use openh264::Timestamp;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig};
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSource;

use super::convert::ConvertError;
use super::frame::{CaptureTime, FrameError, I420Frame};

/// Errors from the H.264 encoder or decoder.
#[derive(Debug, thiserror::Error)]
pub enum H264Error {
    /// The encoder configuration is invalid.
    #[error("invalid H.264 encoder configuration: {0}")]
    Config(String),
    /// openh264 failed to create or run the encoder.
    #[error("H.264 encode failed: {0}")]
    Encode(String),
    /// The access unit could not be decoded (corrupt, or references missing data). Request a
    /// keyframe from the sender.
    #[error("H.264 decode failed (request a keyframe): {0}")]
    Decode(String),
    /// The decoder produced a picture with unusable dimensions or planes.
    #[error("decoded picture unusable: {0}")]
    Picture(#[from] FrameError),
    /// Converting the decoded picture failed.
    #[error(transparent)]
    Convert(#[from] ConvertError),
}

/// Settings for [`H264Encoder`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct H264EncoderConfig {
    /// Picture width (even).
    pub width: u32,
    /// Picture height (even).
    pub height: u32,
    /// Nominal frame rate, also the encoder's `max_frame_rate`.
    pub fps: f32,
    /// Target bitrate in bits per second.
    pub bitrate_bps: u32,
    /// Largest slice NAL in bytes (`None`: one slice per picture). Default 1200 for RTP.
    pub max_slice_bytes: Option<u32>,
    /// Periodic IDR every this many frames; `None` means only on demand (first frame, PLI).
    pub keyframe_interval: Option<u32>,
    /// Let rate control drop frames to hold the bitrate (true for live calls).
    pub allow_frame_skip: bool,
    /// Encoder threads (1 = single-threaded, deterministic).
    pub threads: u16,
    /// Tune for screen content (openh264's `ScreenContentRealTime` usage: text and flat areas
    /// kept sharp, motion search suited to scrolling and windows) instead of camera video.
    pub screen_content: bool,
}

impl H264EncoderConfig {
    /// Live-call defaults for the given size, frame rate and bitrate: 1200-byte slices, IDR only on
    /// demand, frame skipping allowed, one thread.
    #[must_use]
    pub const fn new(width: u32, height: u32, fps: f32, bitrate_bps: u32) -> Self {
        Self {
            width,
            height,
            fps,
            bitrate_bps,
            max_slice_bytes: Some(1200),
            keyframe_interval: None,
            allow_frame_skip: true,
            threads: 1,
            screen_content: false,
        }
    }

    fn validate(&self) -> Result<(), H264Error> {
        if self.width < 16
            || self.height < 16
            || !self.width.is_multiple_of(2)
            || !self.height.is_multiple_of(2)
        {
            return Err(H264Error::Config(format!(
                "dimensions must be even and at least 16x16, got {}x{}",
                self.width, self.height
            )));
        }
        if self.width > 3840 || self.height > 2160 {
            return Err(H264Error::Config(format!(
                "dimensions above 3840x2160 are not supported, got {}x{}",
                self.width, self.height
            )));
        }
        if !(self.fps > 0.0 && self.fps <= 120.0) {
            return Err(H264Error::Config(format!(
                "fps must be in (0, 120], got {}",
                self.fps
            )));
        }
        if self.bitrate_bps < 10_000 || i32::try_from(self.bitrate_bps).is_err() {
            return Err(H264Error::Config(format!(
                "bitrate must be between 10 kbps and 2 Gbps, got {} bps",
                self.bitrate_bps
            )));
        }
        if self.max_slice_bytes.is_some_and(|s| s < 200) {
            return Err(H264Error::Config(
                "max_slice_bytes must be at least 200".into(),
            ));
        }
        Ok(())
    }

    fn to_openh264(self) -> EncoderConfig {
        let mut c = EncoderConfig::new()
            .usage_type(if self.screen_content {
                UsageType::ScreenContentRealTime
            } else {
                UsageType::CameraVideoRealTime
            })
            .profile(Profile::Baseline)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(self.bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(self.fps))
            .skip_frames(self.allow_frame_skip)
            .complexity(Complexity::Low)
            .num_threads(self.threads)
            .intra_frame_period(IntraFramePeriod::from_num_frames(
                self.keyframe_interval.unwrap_or(0),
            ))
            // Scene-change IDRs would cost bursts of bitrate at arbitrary moments; IDRs come from
            // the interval or from PLI. For screen content openh264 wants it on (a new slide or
            // window is coded as one, with its screen-content tools) and has no adaptive
            // quantisation or background detection.
            .scene_change_detect(self.screen_content)
            .adaptive_quantization(!self.screen_content)
            .background_detection(!self.screen_content);
        if let Some(max) = self.max_slice_bytes {
            c = c.max_slice_len(max);
        }
        c
    }
}

/// One encoded picture: an Annex-B access unit (start-code prefixed NAL units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// Annex-B bytes: `00 00 00 01` + NAL, repeated; SPS and PPS precede every IDR slice.
    pub data: Vec<u8>,
    /// True for an IDR access unit (decodable on its own).
    pub keyframe: bool,
    /// Capture time of the source picture.
    pub capture_time: CaptureTime,
}

impl EncodedFrame {
    /// The NAL units of the access unit, without start codes.
    pub fn nal_units(&self) -> impl Iterator<Item = &[u8]> {
        split_annex_b(&self.data)
    }
}

/// Splits an Annex-B byte stream into NAL units (start codes removed).
pub fn split_annex_b(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    openh264::nal_units(data).map(|nal| {
        // `nal_units` keeps the start code; strip 3- or 4-byte prefixes.
        let skip = nal.iter().take_while(|b| **b == 0).count();
        if nal.get(skip) == Some(&1) {
            &nal[skip + 1..]
        } else {
            nal
        }
    })
}

/// NAL unit type (low five bits of the first byte), e.g. 5 = IDR slice, 7 = SPS, 8 = PPS.
#[must_use]
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1F)
}

/// What an Annex-B access unit holds, as far as a receiver waiting for a keyframe cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessUnitKind {
    /// It has an IDR slice (NAL type 5): decodable without earlier pictures.
    Keyframe,
    /// It has slices, none of them IDR: it needs earlier pictures.
    Delta,
    /// No slice at all (only parameter sets, SEI, delimiters, or nothing).
    NoPicture,
}

/// Classifies an Annex-B access unit by its NAL unit types (see [`AccessUnitKind`]).
#[must_use]
pub fn access_unit_kind(access_unit: &[u8]) -> AccessUnitKind {
    let mut kind = AccessUnitKind::NoPicture;
    for nal in split_annex_b(access_unit) {
        match nal_type(nal) {
            Some(5) => return AccessUnitKind::Keyframe,
            // Coded slice types: non-IDR slice (1) and data partitions (2-4).
            Some(1..=4) => kind = AccessUnitKind::Delta,
            _ => {}
        }
    }
    kind
}

impl YUVSource for I420Frame {
    fn dimensions(&self) -> (usize, usize) {
        (self.width() as usize, self.height() as usize)
    }

    fn strides(&self) -> (usize, usize, usize) {
        let (cw, _) = self.chroma_size();
        (self.width() as usize, cw, cw)
    }

    fn y(&self) -> &[u8] {
        I420Frame::y(self)
    }

    fn u(&self) -> &[u8] {
        I420Frame::u(self)
    }

    fn v(&self) -> &[u8] {
        I420Frame::v(self)
    }
}

/// Real-time H.264 encoder; see the module docs.
pub struct H264Encoder {
    encoder: Encoder,
    config: H264EncoderConfig,
    /// The encoder initialises lazily on its first picture; options can only be set after that.
    initialised: bool,
    keyframe_pending: bool,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl H264Encoder {
    /// Creates an encoder.
    ///
    /// # Errors
    /// [`H264Error::Config`] for invalid settings, [`H264Error::Encode`] if openh264 fails.
    pub fn new(config: H264EncoderConfig) -> Result<Self, H264Error> {
        config.validate()?;
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config.to_openh264())
            .map_err(|e| H264Error::Encode(e.to_string()))?;
        Ok(Self {
            encoder,
            config,
            initialised: false,
            keyframe_pending: false,
        })
    }

    /// Current settings (bitrate reflects [`H264Encoder::set_bitrate`]).
    #[must_use]
    pub const fn config(&self) -> &H264EncoderConfig {
        &self.config
    }

    /// Makes the next encoded picture an IDR (with SPS/PPS), e.g. on PLI/FIR.
    pub fn request_keyframe(&mut self) {
        self.keyframe_pending = true;
    }

    /// Changes the target bitrate in place (no re-initialisation, no forced keyframe).
    ///
    /// # Errors
    /// [`H264Error::Config`] if out of range, [`H264Error::Encode`] if openh264 rejects it.
    pub fn set_bitrate(&mut self, bps: u32) -> Result<(), H264Error> {
        let candidate = H264EncoderConfig {
            bitrate_bps: bps,
            ..self.config
        };
        candidate.validate()?;
        if self.initialised {
            let bps = i32::try_from(bps)
                .map_err(|_| H264Error::Config(format!("bitrate {bps} out of range")))?;
            // The ceiling that rate control and openh264's check use is the *layer's* maximum
            // (`iMaxSpatialBitrate`, which the wrapper sets to the starting bitrate). Setting
            // MAX_BITRATE for all layers only stores a global value that nothing re-checks, so
            // every raise above the starting bitrate failed ("SetOption(6) returned 1"), on every
            // frame. Set the layer's ceiling, and the target for all layers (which updates the
            // global target and spreads it over the layers). Raise the ceiling first when going
            // up and lower the target first when going down, so target > max never happens.
            let max = (
                openh264_sys2::ENCODER_OPTION_MAX_BITRATE,
                openh264_sys2::SPATIAL_LAYER_0,
            );
            let target = (
                openh264_sys2::ENCODER_OPTION_BITRATE,
                openh264_sys2::SPATIAL_LAYER_ALL,
            );
            let order = if bps > self.config.bitrate_bps as i32 {
                [max, target]
            } else {
                [target, max]
            };
            for (option, layer) in order {
                self.set_bitrate_option(option, layer, bps)?;
            }
        } else {
            // Not initialised yet: nothing to keep, so rebuild with the new settings.
            self.encoder =
                Encoder::with_api_config(OpenH264API::from_source(), candidate.to_openh264())
                    .map_err(|e| H264Error::Encode(e.to_string()))?;
        }
        self.config = candidate;
        Ok(())
    }

    /// Changes the frame rate rate control budgets for (the caller sends that many pictures a
    /// second), in place: no re-initialisation, no keyframe. Bits per picture follow
    /// `bitrate / fps`, so a lower rate gives each picture more bits at the same bitrate.
    ///
    /// # Errors
    /// [`H264Error::Config`] if out of range, [`H264Error::Encode`] if openh264 rejects it.
    pub fn set_frame_rate(&mut self, fps: f32) -> Result<(), H264Error> {
        let candidate = H264EncoderConfig { fps, ..self.config };
        candidate.validate()?;
        if self.initialised {
            let mut value = fps;
            // SAFETY: the encoder is initialised; FRAME_RATE takes a pointer to an `f32` that
            // only needs to live for the call, and `value` does. It changes nothing the
            // `openh264` wrapper relies on (dimensions, format).
            #[allow(
                unsafe_code,
                reason = "openh264 exposes runtime frame rate only through SetOption"
            )]
            let rc = unsafe {
                self.encoder.raw_api().set_option(
                    openh264_sys2::ENCODER_OPTION_FRAME_RATE,
                    std::ptr::from_mut(&mut value).cast(),
                )
            };
            if rc != 0 {
                return Err(H264Error::Encode(format!(
                    "SetOption(FRAME_RATE) to {fps} returned {rc}"
                )));
            }
        } else {
            self.encoder =
                Encoder::with_api_config(OpenH264API::from_source(), candidate.to_openh264())
                    .map_err(|e| H264Error::Encode(e.to_string()))?;
        }
        self.config = candidate;
        Ok(())
    }

    #[allow(
        unsafe_code,
        reason = "openh264 exposes runtime bitrate only through SetOption"
    )]
    fn set_bitrate_option(
        &mut self,
        option: openh264_sys2::ENCODER_OPTION,
        layer: openh264_sys2::LAYER_NUM,
        bps: i32,
    ) -> Result<(), H264Error> {
        let mut info = openh264_sys2::SBitrateInfo {
            iLayer: layer,
            iBitrate: bps,
        };
        // SAFETY: the encoder is initialised (checked by the caller); BITRATE and MAX_BITRATE take
        // a pointer to an `SBitrateInfo` that only needs to live for the call, and `info` does.
        // Neither option changes anything the `openh264` wrapper relies on (dimensions, format).
        let rc = unsafe {
            self.encoder
                .raw_api()
                .set_option(option, std::ptr::from_mut(&mut info).cast())
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(H264Error::Encode(format!(
                "SetOption({option}) for layer {layer}, bitrate {bps} returned {rc}"
            )))
        }
    }

    /// Encodes one picture. Returns `None` when rate control skipped it.
    ///
    /// A picture of a different size than configured re-configures the encoder for that size
    /// (keeping the current bitrate) and starts with an IDR.
    ///
    /// # Errors
    /// [`H264Error::Encode`] if openh264 fails; [`H264Error::Config`] for an unusable size.
    pub fn encode(&mut self, frame: &I420Frame) -> Result<Option<EncodedFrame>, H264Error> {
        if (frame.width(), frame.height()) != (self.config.width, self.config.height) {
            let config = H264EncoderConfig {
                width: frame.width(),
                height: frame.height(),
                ..self.config
            };
            config.validate()?;
            self.encoder =
                Encoder::with_api_config(OpenH264API::from_source(), config.to_openh264())
                    .map_err(|e| H264Error::Encode(e.to_string()))?;
            self.config = config;
            self.initialised = false;
        }
        if self.keyframe_pending && self.initialised {
            self.encoder.force_intra_frame();
        }
        self.keyframe_pending = false;
        let ts = Timestamp::from_millis(frame.capture_time.as_micros() / 1000);
        let stream = self
            .encoder
            .encode_at(frame, ts)
            .map_err(|e| H264Error::Encode(e.to_string()))?;
        self.initialised = true;
        let keyframe = match stream.frame_type() {
            FrameType::Skip | FrameType::Invalid => return Ok(None),
            FrameType::IDR => true,
            FrameType::I | FrameType::P | FrameType::IPMixed => false,
        };
        let data = stream.to_vec();
        if data.is_empty() {
            return Ok(None);
        }
        Ok(Some(EncodedFrame {
            data,
            keyframe,
            capture_time: frame.capture_time,
        }))
    }

    /// Nominal time between frames.
    #[must_use]
    pub fn frame_interval(&self) -> Duration {
        Duration::from_secs_f32(1.0 / self.config.fps)
    }
}

/// H.264 decoder producing I420 frames or RGBA; see the module docs.
pub struct H264Decoder {
    decoder: Decoder,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Decoder").finish_non_exhaustive()
    }
}

impl H264Decoder {
    /// Creates a decoder.
    ///
    /// # Errors
    /// [`H264Error::Decode`] if openh264 fails to initialise.
    pub fn new() -> Result<Self, H264Error> {
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
            .map_err(|e| H264Error::Decode(e.to_string()))?;
        Ok(Self { decoder })
    }

    /// Decodes one Annex-B access unit. `capture_time` (from RTP timing) is stamped on the output.
    /// Returns `None` if the data held no complete picture (e.g. only SPS/PPS).
    ///
    /// # Errors
    /// [`H264Error::Decode`] for corrupt or undecodable data: request a keyframe.
    pub fn decode(
        &mut self,
        access_unit: &[u8],
        capture_time: CaptureTime,
    ) -> Result<Option<I420Frame>, H264Error> {
        let Some(yuv) = self.decode_raw(access_unit)? else {
            return Ok(None);
        };
        Ok(Some(to_frame(&yuv, capture_time)?))
    }

    /// Decodes one access unit straight into packed RGBA (`rgba` is resized); returns the picture
    /// size, or `None` if no picture was completed.
    ///
    /// # Errors
    /// [`H264Error::Decode`] for corrupt or undecodable data: request a keyframe.
    pub fn decode_rgba(
        &mut self,
        access_unit: &[u8],
        rgba: &mut Vec<u8>,
    ) -> Result<Option<(u32, u32)>, H264Error> {
        let Some(yuv) = self.decode_raw(access_unit)? else {
            return Ok(None);
        };
        let (w, h) = yuv.dimensions();
        let width = u32::try_from(w).map_err(|_| H264Error::Decode("width overflow".into()))?;
        let height = u32::try_from(h).map_err(|_| H264Error::Decode("height overflow".into()))?;
        rgba.resize(yuv.rgba8_len(), 0);
        // openh264's own SIMD path; the buffer is sized exactly as it requires.
        yuv.write_rgba8(rgba);
        Ok(Some((width, height)))
    }

    fn decode_raw(&mut self, access_unit: &[u8]) -> Result<Option<DecodedYUV<'_>>, H264Error> {
        if access_unit.is_empty() {
            return Ok(None);
        }
        self.decoder
            .decode(access_unit)
            .map_err(|e| H264Error::Decode(e.to_string()))
    }
}

fn to_frame(yuv: &DecodedYUV<'_>, capture_time: CaptureTime) -> Result<I420Frame, H264Error> {
    let (w, h) = yuv.dimensions();
    let (sy, su, sv) = yuv.strides();
    let width = u32::try_from(w).map_err(|_| H264Error::Decode("width overflow".into()))?;
    let height = u32::try_from(h).map_err(|_| H264Error::Decode("height overflow".into()))?;
    Ok(I420Frame::from_strided(
        width,
        height,
        [(yuv.y(), sy), (yuv.u(), su), (yuv.v(), sv)],
        capture_time,
    )?)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is the test failing, with its message"
    )]

    use super::*;
    use crate::media::synthetic_video::SyntheticVideo;

    /// Bytes per second over frames `from..to` of a 320x240 pattern at 15 fps, with the bitrate
    /// set to each `(frame, bps)` when that frame comes.
    fn encode_with(steps: &[(u32, u32)], windows: &[(u32, u32)]) -> Vec<usize> {
        let source = SyntheticVideo::new(320, 240, 15).unwrap();
        let mut encoder =
            H264Encoder::new(H264EncoderConfig::new(320, 240, 15.0, 200_000)).unwrap();
        let mut bytes = vec![0; windows.len()];
        for n in 0..windows.iter().map(|w| w.1).max().unwrap_or(0) {
            for (at, bps) in steps {
                if *at == n {
                    encoder.set_bitrate(*bps).unwrap();
                }
            }
            let t = CaptureTime::from_micros(u64::from(n) * 66_667);
            if let Some(e) = encoder.encode(&source.render(n, t)).unwrap() {
                for (i, (from, to)) in windows.iter().enumerate() {
                    if (*from..*to).contains(&n) {
                        bytes[i] += e.data.len();
                    }
                }
            }
        }
        bytes
    }

    #[test]
    fn bitrate_rises_above_the_starting_one_and_comes_back() {
        // Started at 200 kbps; congestion control then allows 1.5 Mbps, later 300 kbps and
        // 1 Mbps again. Each change must be accepted (it used to fail above the start) and
        // move the output. Windows skip a second of settling after each change.
        let bytes = encode_with(
            &[(45, 1_500_000), (90, 300_000), (135, 1_000_000)],
            &[(15, 45), (60, 90), (105, 135), (150, 180)],
        );
        println!("bytes per 2 s: {bytes:?} at 200k, 1.5M, 300k, 1M");
        assert!(bytes[1] > bytes[0] * 2, "raise had no effect: {bytes:?}");
        assert!(bytes[2] * 2 < bytes[1], "cut had no effect: {bytes:?}");
        assert!(
            bytes[3] * 2 > bytes[2] * 3,
            "second raise had no effect: {bytes:?}"
        );
    }
}
