//! The settings file (`config.toml` in the platform config directory, see `app_dirs`): created on
//! first launch, read at start, written back when the settings change.
//!
//! - **First launch**: no file yet. The settings are the ones eframe's storage held for older
//!   versions (migrated), or the defaults, and the file is written at once.
//! - **Unreadable file** (bad TOML, wrong types): it is renamed to `config.toml.broken` (never
//!   silently overwritten), the defaults are used, and the app tells the person so.
//! - **Writes** go to a temporary file next to it, then replace it by rename, so a crash never
//!   leaves half a file; nothing is written when the settings did not change.

use std::path::{Path, PathBuf};

use super::settings::Settings;

/// A failure reading or writing the settings file.
#[derive(Debug, thiserror::Error)]
pub enum SettingsFileError {
    /// The file or its directory could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The settings could not be turned into TOML (a bug).
    #[error("cannot encode the settings: {0}")]
    Encode(#[from] toml::ser::Error),
}

/// How the settings were obtained at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// Read from the file.
    FromFile,
    /// No file: created with the defaults (first launch).
    Created,
    /// No file: created from what an older version kept in eframe's storage.
    Migrated,
    /// The file could not be read; it was kept under `backup` and the defaults are used.
    Replaced {
        /// Where the unreadable file went.
        backup: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
}

/// The settings file and what was last written to it.
#[derive(Debug)]
pub struct SettingsFile {
    path: PathBuf,
    written: Option<Settings>,
}

impl SettingsFile {
    /// Reads `path`, or creates it from `legacy` (settings an older version left in eframe's
    /// storage) or `defaults`. Returns the file, the settings, and how they were obtained.
    ///
    /// # Errors
    /// The file exists but cannot be read, or a new file cannot be written.
    pub fn open(
        path: PathBuf,
        legacy: Option<Settings>,
        defaults: Settings,
    ) -> Result<(Self, Settings, Loaded), SettingsFileError> {
        let mut file = Self {
            path,
            written: None,
        };
        let text = match std::fs::read_to_string(&file.path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(file.io("cannot read", source)),
        };
        let (settings, loaded) = match text {
            Some(text) => match toml::from_str::<Settings>(&text) {
                Ok(settings) => {
                    file.written = Some(settings.clone());
                    return Ok((file, settings, Loaded::FromFile));
                }
                Err(e) => {
                    let backup = file.path.with_extension("toml.broken");
                    std::fs::rename(&file.path, &backup)
                        .map_err(|source| file.io("cannot move aside", source))?;
                    let reason = e.message().to_owned();
                    (defaults, Loaded::Replaced { backup, reason })
                }
            },
            None => match legacy {
                Some(old) => (old, Loaded::Migrated),
                None => (defaults, Loaded::Created),
            },
        };
        file.save(&settings)?;
        Ok((file, settings, loaded))
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `settings` if they differ from what was last written. Returns whether it wrote.
    ///
    /// # Errors
    /// The directory or the file could not be written.
    pub fn save(&mut self, settings: &Settings) -> Result<bool, SettingsFileError> {
        if self.written.as_ref() == Some(settings) {
            return Ok(false);
        }
        let text = format!(
            "# Confab settings. Written by the app when they change; edit while it is closed.\n{}",
            toml::to_string(settings)?
        );
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| self.io("cannot create", source))?;
        }
        let tmp = self.path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(|source| self.io("cannot write", source))?;
        std::fs::rename(&tmp, &self.path).map_err(|source| self.io("cannot replace", source))?;
        self.written = Some(settings.clone());
        Ok(true)
    }

    fn io(&self, action: &'static str, source: std::io::Error) -> SettingsFileError {
        SettingsFileError::Io {
            action,
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::settings::{CameraChoice, MicrophoneChoice, ThemeChoice};

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("confab-settings-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn first_launch_creates_the_file_and_the_next_one_reads_it() {
        let dir = scratch("first");
        let path = dir.join("nested/config.toml");
        let (mut file, mut settings, loaded) =
            SettingsFile::open(path.clone(), None, Settings::default()).unwrap();
        assert_eq!(loaded, Loaded::Created);
        assert!(path.is_file(), "the first launch writes the file");
        assert_eq!(settings, Settings::default());

        settings.name = "Ann".into();
        settings.camera = CameraChoice::Device("usb-cam".into());
        settings.microphone = MicrophoneChoice::Off;
        settings.theme = ThemeChoice::Dark;
        settings.remember_room("standup");
        assert!(file.save(&settings).unwrap());
        assert!(!file.save(&settings).unwrap(), "unchanged: nothing written");

        let (_, again, loaded) = SettingsFile::open(path, None, Settings::default()).unwrap();
        assert_eq!(loaded, Loaded::FromFile);
        assert_eq!(again, settings);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn settings_from_an_older_version_are_migrated_once() {
        let dir = scratch("migrate");
        let path = dir.join("config.toml");
        let old = Settings {
            name: "Bo".into(),
            ..Settings::default()
        };
        let (_, settings, loaded) =
            SettingsFile::open(path.clone(), Some(old.clone()), Settings::default()).unwrap();
        assert_eq!((settings, loaded), (old.clone(), Loaded::Migrated));
        // The file now rules; eframe's copy is not looked at again.
        let other = Settings {
            name: "Stale".into(),
            ..Settings::default()
        };
        let (_, settings, loaded) =
            SettingsFile::open(path, Some(other), Settings::default()).unwrap();
        assert_eq!((settings, loaded), (old, Loaded::FromFile));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_unreadable_file_is_kept_aside_and_replaced_by_defaults() {
        let dir = scratch("broken");
        let path = dir.join("config.toml");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, "name = [unclosed").unwrap();
        let (_, settings, loaded) =
            SettingsFile::open(path.clone(), None, Settings::with_test_sources()).unwrap();
        assert_eq!(settings, Settings::with_test_sources());
        let Loaded::Replaced { backup, reason } = loaded else {
            panic!("expected Replaced, got {loaded:?}");
        };
        assert!(!reason.is_empty());
        assert_eq!(std::fs::read_to_string(backup).unwrap(), "name = [unclosed");
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.starts_with("# Confab settings"), "{written}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_hand_edited_partial_file_keeps_the_other_defaults() {
        let dir = scratch("partial");
        let path = dir.join("config.toml");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, "name = \"Cy\"\ntheme = \"Light\"\n").unwrap();
        let (_, settings, loaded) = SettingsFile::open(path, None, Settings::default()).unwrap();
        assert_eq!(loaded, Loaded::FromFile);
        assert_eq!(settings.name, "Cy");
        assert_eq!(settings.theme, ThemeChoice::Light);
        assert_eq!(settings.room, Settings::default().room);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
