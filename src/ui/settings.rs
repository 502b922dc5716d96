//! What the app remembers between runs (eframe storage): name, rooms, devices, theme.

use serde::{Deserialize, Serialize};

use crate::engine::{AudioInput, VideoInput};

/// Most recent rooms kept.
const RECENT_ROOMS: usize = 8;

/// Which camera to use. Real devices arrive with the device work; the test sources are listed
/// as such.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CameraChoice {
    /// The moving test pattern.
    TestPattern,
    /// No camera (receive-only video).
    Off,
}

/// Which microphone to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MicrophoneChoice {
    /// A tone with beeps.
    TestTone,
    /// No microphone.
    Off,
}

/// Light, dark, or whatever the system uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThemeChoice {
    /// Follow the system.
    System,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

/// Persisted settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Display name.
    pub name: String,
    /// Last room.
    pub room: String,
    /// Last address joined.
    pub address: String,
    /// Recently used rooms, newest first.
    pub recent_rooms: Vec<String>,
    /// Camera.
    pub camera: CameraChoice,
    /// Microphone.
    pub microphone: MicrophoneChoice,
    /// Theme.
    pub theme: ThemeChoice,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            name: String::new(),
            room: "my-room".into(),
            address: String::new(),
            recent_rooms: Vec::new(),
            camera: CameraChoice::TestPattern,
            microphone: MicrophoneChoice::TestTone,
            theme: ThemeChoice::System,
        }
    }
}

impl Settings {
    /// Remembers `room` as the most recent.
    pub fn remember_room(&mut self, room: &str) {
        self.recent_rooms.retain(|r| r != room);
        self.recent_rooms.insert(0, room.to_owned());
        self.recent_rooms.truncate(RECENT_ROOMS);
        room.clone_into(&mut self.room);
    }

    /// The engine's video input for the chosen camera.
    pub fn video_input(&self) -> VideoInput {
        match self.camera {
            CameraChoice::TestPattern => VideoInput::Synthetic,
            CameraChoice::Off => VideoInput::None,
        }
    }

    /// The engine's audio input for the chosen microphone.
    pub fn audio_input(&self) -> AudioInput {
        match self.microphone {
            MicrophoneChoice::TestTone => AudioInput::Synthetic,
            MicrophoneChoice::Off => AudioInput::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_rooms_are_unique_newest_first_and_bounded() {
        let mut s = Settings::default();
        for r in ["a", "b", "a", "c", "d", "e", "f", "g", "h", "i"] {
            s.remember_room(r);
        }
        assert_eq!(s.recent_rooms.first().map(String::as_str), Some("i"));
        assert_eq!(s.recent_rooms.len(), RECENT_ROOMS);
        assert_eq!(s.recent_rooms.iter().filter(|r| *r == "a").count(), 1);
        assert_eq!(s.room, "i");
    }

    #[test]
    fn old_or_partial_settings_still_load() {
        let s: Settings = serde_json::from_str(r#"{"name":"Ann"}"#).unwrap_or_default();
        assert_eq!(s.name, "Ann");
        assert_eq!(s.camera, CameraChoice::TestPattern);
    }
}
