//! What the app remembers between runs: name, rooms, devices, audio processing, video quality,
//! theme, download folder.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use confab_engine::devices::DEFAULT_DEVICE;
use confab_engine::devices::DeviceList;
use confab_engine::media::ProcessingSettings;
use confab_engine::{AudioInput, AudioOutput, VideoInput, VideoSettings};

/// Most recent rooms kept.
const RECENT_ROOMS: usize = 8;

/// Which camera to use. Ids are the engine's device ids; test sources say so in the pickers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CameraChoice {
    /// The first camera found, whichever it is (none: receive-only video).
    Auto,
    /// This camera.
    Device(String),
    /// The moving test pattern.
    TestPattern,
    /// No camera (receive-only video).
    Off,
}

/// Which microphone to use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MicrophoneChoice {
    /// This microphone ([`DEFAULT_DEVICE`]: the system default).
    Device(String),
    /// A tone with beeps.
    TestTone,
    /// No microphone.
    Off,
}

/// Where to hear the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpeakerChoice {
    /// This speaker ([`DEFAULT_DEVICE`]: the system default).
    Device(String),
    /// Nowhere.
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

/// The most the camera sends: size and bitrate ceiling (congestion control picks what the
/// network allows below it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum VideoQuality {
    /// 640x360, up to 600 kbit/s: metered or slow connections.
    DataSaver,
    /// 960x540, up to 1.2 Mbit/s.
    Standard,
    /// 1280x720, up to 2.5 Mbit/s.
    #[default]
    Hd,
    /// 1920x1080, up to 4 Mbit/s.
    FullHd,
}

impl VideoQuality {
    /// Every choice, lowest first.
    pub const ALL: [Self; 4] = [Self::DataSaver, Self::Standard, Self::Hd, Self::FullHd];

    /// What the settings dialog calls it.
    pub fn label(self) -> &'static str {
        match self {
            Self::DataSaver => "Data saver (360p, up to 0.6 Mbit/s)",
            Self::Standard => "Standard (540p, up to 1.2 Mbit/s)",
            Self::Hd => "HD (720p, up to 2.5 Mbit/s)",
            Self::FullHd => "Full HD (1080p, up to 4 Mbit/s)",
        }
    }

    /// The engine's video settings for it (30 frames a second).
    pub fn video_settings(self) -> VideoSettings {
        let (width, height, start_kbps, max_kbps) = match self {
            Self::DataSaver => (640, 360, 400, 600),
            Self::Standard => (960, 540, 800, 1200),
            Self::Hd => (1280, 720, 1500, 2500),
            Self::FullHd => (1920, 1080, 2000, 4000),
        };
        VideoSettings {
            width,
            height,
            fps: 30,
            start_kbps,
            min_kbps: 150,
            max_kbps,
        }
    }
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
    /// Speaker.
    pub speaker: SpeakerChoice,
    /// Echo cancellation, noise suppression, gain control on the microphone.
    pub processing: ProcessingSettings,
    /// Theme.
    pub theme: ThemeChoice,
    /// The most the camera sends.
    pub video_quality: VideoQuality,
    /// Where received files go; `None`: the system's download folder.
    pub download_dir: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            name: String::new(),
            room: "my-room".into(),
            address: String::new(),
            recent_rooms: Vec::new(),
            camera: CameraChoice::Auto,
            microphone: MicrophoneChoice::Device(DEFAULT_DEVICE.into()),
            speaker: SpeakerChoice::Device(DEFAULT_DEVICE.into()),
            processing: ProcessingSettings::default(),
            theme: ThemeChoice::System,
            video_quality: VideoQuality::default(),
            download_dir: None,
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

    /// Defaults that touch no device: the test sources and no sound (tests, demos).
    #[must_use]
    pub fn with_test_sources() -> Self {
        Self {
            camera: CameraChoice::TestPattern,
            microphone: MicrophoneChoice::TestTone,
            speaker: SpeakerChoice::Off,
            ..Self::default()
        }
    }

    /// The engine's video input for the chosen camera, given the cameras plugged in now.
    pub fn video_input(&self, devices: &DeviceList) -> VideoInput {
        match &self.camera {
            CameraChoice::Auto => devices
                .cameras
                .first()
                .map_or(VideoInput::None, |c| VideoInput::Camera(c.id.clone())),
            CameraChoice::Device(id) => VideoInput::Camera(id.clone()),
            CameraChoice::TestPattern => VideoInput::Synthetic,
            CameraChoice::Off => VideoInput::None,
        }
    }

    /// The engine's audio input for the chosen microphone.
    pub fn audio_input(&self) -> AudioInput {
        match &self.microphone {
            MicrophoneChoice::Device(id) => AudioInput::Microphone(id.clone()),
            MicrophoneChoice::TestTone => AudioInput::Synthetic,
            MicrophoneChoice::Off => AudioInput::None,
        }
    }

    /// The engine's audio output for the chosen speaker.
    pub fn audio_output(&self) -> AudioOutput {
        match &self.speaker {
            SpeakerChoice::Device(id) => AudioOutput::Speaker(id.clone()),
            SpeakerChoice::Off => AudioOutput::None,
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
        assert_eq!(s.camera, CameraChoice::Auto);
        let old: Settings =
            serde_json::from_str(r#"{"camera":"TestPattern","microphone":"Off"}"#).unwrap();
        assert_eq!(old.camera, CameraChoice::TestPattern);
        assert_eq!(old.audio_input(), AudioInput::None);
    }

    #[test]
    fn auto_camera_follows_what_is_plugged_in() {
        let s = Settings::default();
        let mut devices = DeviceList::default();
        assert_eq!(s.video_input(&devices), VideoInput::None);
        devices.cameras.push(confab_engine::devices::DeviceInfo {
            id: "0".into(),
            name: "HD Webcam".into(),
            is_default: true,
        });
        assert_eq!(s.video_input(&devices), VideoInput::Camera("0".into()));
        assert_eq!(
            s.audio_input(),
            AudioInput::Microphone(DEFAULT_DEVICE.into())
        );
    }
}
