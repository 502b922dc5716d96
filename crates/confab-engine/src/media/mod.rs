//! Media pipeline: sources with embedded timing, H.264 and Opus codecs, conversions, jitter buffer.
//!
//! This module owns everything between a capture device (or its synthetic/file stand-in) and the
//! RTP layer, in both directions. It has no WebRTC, UI or device dependency, so the engine, the
//! loopback mode, tests and benchmarks all run it on a machine with no camera or microphone.
//!
//! | module | owns |
//! | --- | --- |
//! | [`frame`] | [`I420Frame`], [`AudioFrame`], [`CaptureTime`] (the shared media clock), [`AudioChunker`] |
//! | [`drop_oldest`] | bounded channel that evicts the oldest item instead of blocking or growing |
//! | [`source`] | [`VideoSource`] / [`AudioSource`] traits and the named capture threads that drive them (`spawn_video`, `spawn_video_with` for thread-bound devices) |
//! | [`synthetic_video`] | moving textured test pattern with a machine-readable frame marker |
//! | [`synthetic_screen`] | a desktop-like picture (text, fine lines, blocks, a moving cursor) with the same frame marker, for measuring screen share |
//! | [`synthetic_audio`] | tone with periodic beeps, and the beep detector |
//! | [`y4m`], [`wav`] | looping file sources (and a Y4M writer for fixtures) |
//! | [`convert`] | I420 <-> RGBA and scaling (yuvutils-rs, fast_image_resize), PSNR |
//! | [`h264`] | openh264 encoder (RTP-sized slices, runtime bitrate, keyframe on demand) and decoder |
//! | [`opus_codec`] | Opus encoder (VOIP, FEC, DTX) and decoder (PLC, FEC) |
//! | [`jitter_buffer`] | adaptive playout buffer for Opus packets |
//! | [`mixer`] | mixes the playout of several remote participants |
//! | [`AudioSink`], [`NullSink`] | where mixed remote audio is played (the speaker, or nowhere) |
//! | [`audio_processing`] | echo cancellation, noise suppression, gain control on the capture path (sonora), fed the playout mix as echo reference |
//!
//! Typical wiring (the engine's job): `spawn_video(SyntheticVideo::new(..)?, 2)` -> frames ->
//! [`h264::H264Encoder::encode`] -> [`h264::EncodedFrame`] (Annex-B) -> RTP; received access units
//! -> [`h264::H264Decoder::decode`] (on `Err`, send a PLI) -> [`synthetic_video::read_marker`]
//! gives the capture time back for latency. Audio: source -> [`AudioChunker`] (20 ms) ->
//! [`opus_codec::OpusEncoder`] -> RTP; received packets -> [`mixer::AudioMixer::push`], and the
//! playout clock calls [`mixer::AudioMixer::pull`] every 20 ms.
//!
//! Contracts shared by every part:
//! - Video is I420 (BT.601 limited range); audio is 48 kHz mono `f32` in `[-1, 1]`.
//! - Every captured frame carries a [`CaptureTime`]: microseconds on one process-wide monotonic
//!   clock, so a time taken on the capture thread can be compared with one taken on the decode or
//!   playout thread.
//! - Nothing here panics on bad input from a file, a device or the network: such input gives a
//!   typed error (each module has its own `thiserror` enum).
//! - Nothing here reads the wall clock inside its logic except the capture threads in [`source`]
//!   (which pace real time); the jitter buffer takes the current time as an argument.

pub mod audio_processing;
pub mod convert;
pub mod drop_oldest;
pub mod frame;
pub mod h264;
pub mod jitter_buffer;
pub mod mixer;
pub mod opus_codec;
mod sink;
pub mod source;
pub mod synthetic_audio;
pub mod synthetic_screen;
pub mod synthetic_video;
pub mod wav;
pub mod y4m;

pub use audio_processing::{ProcessingSettings, ProcessingStats};
pub use convert::i420_to_rgba;
pub use frame::{AUDIO_SAMPLE_RATE, AudioChunker, AudioFrame, CaptureTime, FrameError, I420Frame};
pub use sink::{AudioSink, NullSink};
pub use source::{AudioSource, SourceError, VideoSource};
pub use synthetic_video::read_marker;
