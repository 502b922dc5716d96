//! Real audio devices: a private PulseAudio server with a null sink, reached through Confab's
//! own speaker and microphone paths (cpal's PulseAudio host), driven through the `confab`
//! binary so the server's address can be given to it in its environment.
//!
//! The server is started per test in a fresh runtime directory and killed at the end. Where
//! PulseAudio cannot start (not installed, no permission), the tests print why and return.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private PulseAudio daemon with one null sink named `confab_test`.
struct Pulse {
    child: Child,
    runtime: PathBuf,
}

impl Pulse {
    fn start() -> Option<Self> {
        let runtime = std::env::temp_dir().join(format!(
            "confab-pulse-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&runtime).ok()?;
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

    fn confab(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_confab"))
            .args(args)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env(
                "PULSE_SERVER",
                format!("unix:{}", self.runtime.join("pulse/native").display()),
            )
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.runtime);
    }
}

#[test]
fn the_null_sink_and_its_monitor_are_listed_as_speaker_and_microphone() {
    let Some(pulse) = Pulse::start() else { return };
    let out = pulse.confab(&["devices", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("{}", serde_json::to_string_pretty(&list).unwrap());
    let ids = |kind: &str| -> Vec<String> {
        list[kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(ids("speakers").iter().any(|id| id.ends_with("confab_test")));
    assert!(
        ids("microphones")
            .iter()
            .any(|id| id.ends_with("confab_test.monitor"))
    );
    // The default devices come first and say so.
    assert_eq!(list["speakers"][0]["is_default"], true);
}

/// Plays a tone through the speaker path and records the sink's monitor through the
/// microphone path.
fn sound_check(pulse: &Pulse) -> serde_json::Value {
    let out = pulse.confab(&[
        "sound-check",
        "--json",
        "--speaker",
        "pulseaudio:confab_test",
        "--microphone",
        "pulseaudio:confab_test.monitor",
        "--frequency",
        "880",
        "--level",
        "-12",
        "--seconds",
        "2",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    report
}

#[test]
fn the_microphone_path_records_in_real_time_from_a_real_device() {
    let Some(pulse) = Pulse::start() else { return };
    let report = sound_check(&pulse);
    let recorded = report["recorded_seconds"].as_f64().unwrap();
    let wall = report["recording_wall_seconds"].as_f64().unwrap();
    // Capture keeps pace with the clock: nothing stalls, nothing is invented.
    assert!(
        recorded > wall * 0.8 && recorded < wall * 1.1,
        "{recorded} s in {wall} s"
    );
    assert_eq!(report["microphone_overruns"], 0);
}

/// Known problem (issue 6 stays open on it): through PulseAudio's null sink the played tone
/// reaches the monitor only in part — often 0.2–1.7 s of 2 s, sometimes not at all — so the
/// frequency/level check is not yet reliable enough for `make test`. Run it with
/// `cargo test --test audio_devices -- --ignored`.
#[test]
#[ignore = "the speaker path loses most of the tone through PulseAudio's null sink; see issue 6"]
fn a_tone_played_through_the_speaker_comes_back_through_the_microphone() {
    let Some(pulse) = Pulse::start() else { return };
    let report = sound_check(&pulse);
    let heard = report["heard_hz"].as_f64().expect("the tone was heard");
    assert!((heard - 880.0).abs() < 880.0 * 0.01, "heard {heard} Hz");
    let level = report["level_dbfs"].as_f64().unwrap();
    assert!((level - (-15.0)).abs() < 3.0, "level {level} dBFS");
    assert!(report["tone_heard_seconds"].as_f64().unwrap() > 1.5);
}
