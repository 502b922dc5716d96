//! A private virtual X display (Xvfb) for tests that need a screen: the app's window, or a
//! screen to share or capture.
//!
//! [`Xvfb::start`] runs `Xvfb -displayfd 1 -noreset` (the server picks a free display number
//! itself and writes it back once it accepts connections, so parallel tests never race for one)
//! and stops it on drop, including when the test panics (SIGTERM so it removes its socket and
//! lock file, then SIGKILL if it lingers).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A virtual X display that goes away when dropped.
pub struct Xvfb {
    child: Child,
    /// Its name, e.g. `:3`.
    pub display: String,
}

impl Xvfb {
    /// Starts `Xvfb` with one screen of `width` x `height` at `depth` bits and waits until it
    /// accepts connections.
    pub fn start(width: u32, height: u32, depth: u8) -> Self {
        let mut child = Command::new("Xvfb")
            // -noreset: the server would otherwise reset (and refuse connections for a moment)
            // each time its last client leaves, which tests that connect and disconnect do.
            .args([
                "-displayfd",
                "1",
                "-nolisten",
                "tcp",
                "-noreset",
                "-screen",
                "0",
            ])
            .arg(format!("{width}x{height}x{depth}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run Xvfb ({e}); `make deps` installs xvfb"));
        let mut line = String::new();
        let stdout = child.stdout.take().expect("Xvfb's stdout is piped");
        let read = BufReader::new(stdout).read_line(&mut line);
        let xvfb = Self {
            display: format!(":{}", line.trim()),
            child,
        };
        assert!(
            matches!(read, Ok(n) if n > 0) && !line.trim().is_empty(),
            "Xvfb did not report a display number ({read:?})"
        );
        xvfb
    }
}

impl Drop for Xvfb {
    /// Asks Xvfb to quit (SIGTERM, so it removes its socket), and kills it if it has not
    /// within two seconds.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
