//! A private PulseAudio daemon for real-device tests: one null sink named `confab_test` (the
//! default speaker; its monitor is the default microphone), more sinks on request, in a fresh
//! runtime directory, killed when dropped.
//!
//! Where PulseAudio cannot start (not installed, no permission), [`Pulse::start`] prints why
//! and returns `None`, and the test returns early.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The running daemon.
pub struct Pulse {
    child: Child,
    runtime: PathBuf,
}

impl Pulse {
    /// Starts the daemon and waits for its socket (which appears after the sink exists).
    pub fn start() -> Option<Self> {
        let runtime = std::env::temp_dir().join(format!(
            "confab-pulse-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(runtime.join("client-home")).ok()?;
        let child = Command::new("pulseaudio")
            .args([
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--disallow-exit",
                "--disable-shm",
                "-n",
                // The sink first: the socket, which the test waits for, then means it exists.
                "--load=module-null-sink sink_name=confab_test rate=48000",
                // A private socket in a private directory: no cookie needed (a client that
                // reads the cookie before the daemon has written it would be refused).
                "--load=module-native-protocol-unix auth-anonymous=1",
                // For `pacmd` (killing a stream, as a failing device would).
                "--load=module-cli-protocol-unix",
            ])
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("HOME", &runtime)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                eprintln!("SKIP: cannot start pulseaudio ({e}); install pulseaudio");
                return None;
            }
        };
        let socket = runtime.join("pulse/native");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
                eprintln!("SKIP: pulseaudio did not start (no socket at {socket:?})");
                let _ = child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self { child, runtime })
    }

    /// The environment a client needs to reach this daemon. `HOME` is a fresh, empty
    /// directory: like a new account or a CI machine, it has no PulseAudio cookie yet.
    pub fn env(&self) -> [(&'static str, String); 3] {
        [
            (
                "HOME",
                self.runtime.join("client-home").display().to_string(),
            ),
            ("XDG_RUNTIME_DIR", self.runtime.display().to_string()),
            (
                "PULSE_SERVER",
                format!("unix:{}", self.runtime.join("pulse/native").display()),
            ),
        ]
    }

    /// Runs `program` (for example the test's `env!("CARGO_BIN_EXE_confab")`) against this daemon.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .envs(self.env())
            .env("RUST_LOG", "warn")
            .output()
            .expect("run program under test")
    }

    /// Runs `pactl` against this daemon; panics with its message when it fails.
    pub fn pactl(&self, args: &[&str]) -> String {
        let out = Command::new("pactl")
            .args(args)
            .envs(self.env())
            .output()
            .expect("run pactl (package pulseaudio-utils)");
        assert!(
            out.status.success(),
            "pactl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs `pacmd` against this daemon (it can do what `pactl` cannot, such as killing a
    /// stream); panics with its message when it fails.
    pub fn pacmd(&self, args: &[&str]) -> String {
        let out = Command::new("pacmd")
            .args(args)
            .envs(self.env())
            .output()
            .expect("run pacmd (package pulseaudio-utils)");
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success() && !stdout.contains("No "),
            "pacmd {args:?}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Adds a null sink (a speaker named `description`, with `NAME.monitor` as a microphone
    /// named "Monitor of `description`"); returns its module index for [`Pulse::unplug`].
    /// `description` must not contain spaces.
    pub fn plug_sink(&self, name: &str, description: &str) -> String {
        self.pactl(&[
            "load-module",
            "module-null-sink",
            &format!("sink_name={name}"),
            "rate=48000",
            &format!("sink_properties=device.description={description}"),
        ])
    }

    /// Removes a sink added by [`Pulse::plug_sink`], as if its device were unplugged.
    pub fn unplug(&self, module: &str) {
        self.pactl(&["unload-module", module]);
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.runtime);
    }
}
