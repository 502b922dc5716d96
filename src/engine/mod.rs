//! The call engine: everything between devices and the network, with no UI types.
//!
//! - [`media`]: sources (synthetic, file, later camera/microphone), codecs (H.264, Opus),
//!   colour conversion and scaling, and the audio jitter buffer.

pub mod media;
