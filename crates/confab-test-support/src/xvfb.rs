//! A private virtual X display (Xvfb) for tests that need a screen: the app's window, or a
//! screen to share. It picks its own free display number (`-displayfd`) and goes away when
//! dropped, even when the test panics.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running Xvfb; killed on drop.
pub struct Xvfb {
    child: Child,
    /// The display name, e.g. `:3`.
    pub display: String,
}

impl Xvfb {
    /// Starts a `width` x `height` x 24 screen that listens on no TCP port.
    ///
    /// # Panics
    /// If Xvfb cannot start (`make deps` installs it): a test failure with its reason.
    pub fn start(width: u32, height: u32) -> Self {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &format!("{width}x{height}x24"),
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb runs (make deps installs xvfb)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("Xvfb's stdout"))
            .read_line(&mut line)
            .expect("Xvfb prints its display number");
        let display = format!(":{}", line.trim());
        Self { child, display }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
