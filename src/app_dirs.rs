//! Where Confab keeps its files on each platform, and the one application id every installer,
//! desktop entry and window uses.
//!
//! | what | Linux | macOS | Windows |
//! |---|---|---|---|
//! | settings ([`AppDirs::settings_file`]) | `$XDG_CONFIG_HOME/confab/config.toml` | `~/Library/Application Support/org.confab.Confab/config.toml` | `%APPDATA%\confab\Confab\config\config.toml` |
//! | window state ([`AppDirs::window_state_file`]) | `$XDG_DATA_HOME/confab/app.ron` | `~/Library/Application Support/org.confab.Confab/app.ron` | `%APPDATA%\confab\Confab\data\app.ron` |
//! | logs ([`AppDirs::log_dir`]) | `$XDG_STATE_HOME/confab/logs/` | `~/Library/Logs/Confab/` | `%LOCALAPPDATA%\confab\Confab\data\logs\` |
//!
//! The directories come from the `directories` crate (XDG base directories, the Known Folder
//! API, Apple's guidelines); nothing here creates them — their users do, when they first write.

use std::path::{Path, PathBuf};

/// The reverse-DNS application id: the desktop file (`org.confab.Confab.desktop`), the AppStream
/// id, the icon name, the macOS bundle identifier and the window's Wayland app id / X11 class.
pub const APP_ID: &str = "org.confab.Confab";

/// The settings file's name inside the config directory.
const SETTINGS_FILE: &str = "config.toml";
/// eframe's window and UI state file (its own name for it).
const WINDOW_STATE_FILE: &str = "app.ron";

/// This user's download folder (the XDG download directory, `~/Downloads`, the Downloads Known
/// Folder), where received files go unless the settings name another; `None` without a home.
pub fn downloads() -> Option<PathBuf> {
    directories::UserDirs::new().map(|u| {
        u.download_dir()
            .map_or_else(|| u.home_dir().join("Downloads"), Path::to_path_buf)
    })
}

/// No home directory: nowhere to keep settings or logs.
#[derive(Debug, thiserror::Error)]
#[error("cannot find the home directory (is $HOME set?), so settings and logs have no place")]
pub struct NoHomeDir;

/// The platform directories of this user's Confab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDirs {
    config_dir: PathBuf,
    data_dir: PathBuf,
    log_dir: PathBuf,
}

impl AppDirs {
    /// This user's directories.
    ///
    /// # Errors
    /// [`NoHomeDir`] when the platform reports no home directory.
    pub fn locate() -> Result<Self, NoHomeDir> {
        let project = directories::ProjectDirs::from("org", "confab", "Confab").ok_or(NoHomeDir)?;
        let log_dir = if cfg!(target_os = "macos") {
            // Console.app lists ~/Library/Logs; `directories` has no name for it.
            directories::BaseDirs::new()
                .ok_or(NoHomeDir)?
                .home_dir()
                .join("Library/Logs/Confab")
        } else {
            // `state_dir` exists on Linux only (XDG_STATE_HOME); elsewhere the local data dir
            // is the place that is not synchronised between machines.
            project
                .state_dir()
                .unwrap_or_else(|| project.data_local_dir())
                .join("logs")
        };
        Ok(Self {
            config_dir: project.config_dir().to_owned(),
            data_dir: project.data_dir().to_owned(),
            log_dir,
        })
    }

    /// The settings people may read and edit (TOML).
    pub fn settings_file(&self) -> PathBuf {
        self.config_dir.join(SETTINGS_FILE)
    }

    /// eframe's window size/position and UI memory.
    pub fn window_state_file(&self) -> PathBuf {
        self.data_dir.join(WINDOW_STATE_FILE)
    }

    /// The directory of the app's daily log files.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Before these directories existed, eframe kept everything (settings included) in its own
    /// storage directory named after the window's app id, `confab`. Copies that file to
    /// [`Self::window_state_file`] once, so the window and the settings it holds carry over
    /// (the settings are then moved into the settings file, see `ui::settings_file`).
    /// On Linux both are the same file and nothing happens.
    ///
    /// Returns the file copied from, if one was.
    ///
    /// # Errors
    /// The copy failed (the old file stays where it was).
    pub fn adopt_legacy_window_state(&self) -> std::io::Result<Option<PathBuf>> {
        let Some(legacy) = eframe::storage_dir("confab").map(|d| d.join(WINDOW_STATE_FILE)) else {
            return Ok(None);
        };
        adopt(&legacy, &self.window_state_file())
    }
}

/// Copies `from` to `to` when `to` does not exist yet and `from` does.
fn adopt(from: &Path, to: &Path) -> std::io::Result<Option<PathBuf>> {
    if from == to || to.exists() || !from.is_file() {
        return Ok(None);
    }
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::copy(from, to)?;
    Ok(Some(from.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_live_under_the_platform_directories() {
        let Ok(dirs) = AppDirs::locate() else {
            return; // no home directory on this machine: nothing to check
        };
        assert!(dirs.settings_file().ends_with("config.toml"));
        assert!(dirs.window_state_file().ends_with("app.ron"));
        let config = dirs.settings_file();
        let text = config.to_string_lossy();
        assert!(
            text.contains("confab") || text.contains("org.confab.Confab"),
            "{text}"
        );
        assert_ne!(dirs.log_dir(), dirs.settings_file().parent().unwrap());
    }

    #[test]
    fn legacy_state_is_copied_once_and_never_over_a_newer_file() {
        let root = std::env::temp_dir().join(format!("confab-adopt-{}", std::process::id()));
        let old = root.join("old/app.ron");
        let new = root.join("new/dir/app.ron");
        std::fs::create_dir_all(old.parent().unwrap()).unwrap();
        std::fs::write(&old, "old").unwrap();
        assert_eq!(adopt(&old, &new).unwrap(), Some(old.clone()));
        assert_eq!(std::fs::read_to_string(&new).unwrap(), "old");
        std::fs::write(&old, "older still").unwrap();
        assert_eq!(adopt(&old, &new).unwrap(), None);
        assert_eq!(std::fs::read_to_string(&new).unwrap(), "old");
        assert_eq!(adopt(&root.join("missing"), &root.join("x")).unwrap(), None);
        assert_eq!(adopt(&new, &new).unwrap(), None);
        std::fs::remove_dir_all(root).unwrap();
    }
}
