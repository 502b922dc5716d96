//! `confab join --snapshot DIR`: the last decoded picture of every remote track (cameras and
//! shared screens) written as PNG at exit, so a test or a person debugging can look at what was
//! received.
//!
//! Contract: a file is named `<name>-<id>-<role>.png` (`role` is `camera` or `screen`), where
//! the participant's display name, which comes from a peer and is not trusted, is reduced to
//! ASCII letters, digits, `-` and `_` (at most 40 of them), and the id likewise; nothing a peer
//! says can make a path leave `DIR`. A picture that cannot be written is an error naming the
//! file; the others are still written.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use confab_engine::VideoRole;
use confab_engine::media::{I420Frame, i420_to_rgba};

/// Why a snapshot could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The directory could not be made.
    #[error("cannot create the snapshot directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A picture could not be converted or written.
    #[error("cannot write the snapshot {path}: {detail}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
}

/// One picture to write: whose, which track, the picture.
pub struct Snapshot<'a> {
    /// The participant's display name (untrusted).
    pub name: &'a str,
    /// The participant's id (untrusted).
    pub id: &'a str,
    /// Its camera or its screen.
    pub role: VideoRole,
    /// The last decoded picture.
    pub frame: &'a I420Frame,
}

/// Writes every snapshot into `dir` (created if missing). Returns the files written and the
/// errors of those that were not.
pub fn write_all(dir: &Path, snapshots: &[Snapshot<'_>]) -> (Vec<PathBuf>, Vec<SnapshotError>) {
    if let Err(source) = std::fs::create_dir_all(dir) {
        return (
            Vec::new(),
            vec![SnapshotError::Directory {
                path: dir.to_owned(),
                source,
            }],
        );
    }
    let mut written = Vec::new();
    let mut errors = Vec::new();
    for s in snapshots {
        let path = dir.join(file_name(s.name, s.id, s.role));
        match write_png(&path, s.frame) {
            Ok(()) => written.push(path),
            Err(detail) => errors.push(SnapshotError::Write { path, detail }),
        }
    }
    (written, errors)
}

/// `<name>-<id>-<role>.png` with only safe characters (see the module docs).
pub fn file_name(name: &str, id: &str, role: VideoRole) -> String {
    format!("{}-{}-{}.png", safe(name), safe(id), role.as_str())
}

fn safe(text: &str) -> String {
    let kept: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect();
    if kept.is_empty() {
        "unnamed".to_owned()
    } else {
        kept
    }
}

/// `frame` as an RGBA PNG at `path`.
fn write_png(path: &Path, frame: &I420Frame) -> Result<(), String> {
    let mut rgba = Vec::new();
    i420_to_rgba(frame, &mut rgba).map_err(|e| e.to_string())?;
    let file = File::create(path).map_err(|e| e.to_string())?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), frame.width(), frame.height());
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&rgba).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is the test failing, with its message"
    )]

    use super::*;

    #[test]
    fn names_from_peers_cannot_leave_the_directory() {
        assert_eq!(
            file_name("../../etc/passwd", "a/b", VideoRole::Screen),
            "etcpasswd-ab-screen.png"
        );
        assert_eq!(
            file_name("", "..", VideoRole::Camera),
            "unnamed-unnamed-camera.png"
        );
        assert_eq!(
            file_name("Zoë Müller", "x1", VideoRole::Camera),
            "ZoMller-x1-camera.png"
        );
        assert_eq!(safe(&"a".repeat(100)).len(), 40);
    }

    #[test]
    fn a_picture_is_written_as_a_png_of_its_size() {
        let dir = std::env::temp_dir().join(format!("confab-snapshot-{}", std::process::id()));
        let frame = I420Frame::black(64, 48).unwrap();
        let (written, errors) = write_all(
            &dir,
            &[Snapshot {
                name: "ann",
                id: "p1",
                role: VideoRole::Screen,
                frame: &frame,
            }],
        );
        assert!(errors.is_empty(), "{errors:?}");
        let decoder = png::Decoder::new(std::io::BufReader::new(File::open(&written[0]).unwrap()));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (64, 48));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
