//! Real audio devices: a private PulseAudio server with a null sink, reached through Confab's
//! own speaker and microphone paths (cpal's PulseAudio host), driven through the `confab`
//! binary so the server's address can be given to it in its environment.
//!
//! The server (`confab_test_support::pulse`) is started per test in a fresh runtime directory and killed at
//! the end. Where PulseAudio cannot start (not installed, no permission), the tests print why and
//! return.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::time::Duration;

use confab_test_support::pulse::Pulse;

#[test]
fn the_null_sink_and_its_monitor_are_listed_as_speaker_and_microphone() {
    let Some(pulse) = Pulse::start() else { return };
    let out = pulse.run(env!("CARGO_BIN_EXE_confab"), &["devices", "--json"]);
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
    let out = pulse.run(
        env!("CARGO_BIN_EXE_confab"),
        &[
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
        ],
    );
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

/// The tone played through the speaker path comes back whole through the microphone path: the
/// right frequency and level, for all of its two seconds.
#[test]
fn a_tone_played_through_the_speaker_comes_back_through_the_microphone() {
    let Some(pulse) = Pulse::start() else { return };
    let report = sound_check(&pulse);
    assert_eq!(report["ok"], true);
    let heard = report["heard_hz"].as_f64().expect("the tone was heard");
    assert!((heard - 880.0).abs() < 880.0 * 0.01, "heard {heard} Hz");
    // -12 dBFS peak is -15 dBFS RMS; the null sink passes it unchanged.
    let level = report["level_dbfs"].as_f64().unwrap();
    assert!((level - (-15.0)).abs() < 1.0, "level {level} dBFS");
    assert!(report["tone_purity"].as_f64().unwrap() > 0.9);
    // Nothing lost on the way: the whole tone arrives in one unbroken stretch.
    let heard_for = report["tone_heard_seconds"].as_f64().unwrap();
    assert!(heard_for > 1.9, "only {heard_for} s of the 2 s tone");
    let round_trip = report["round_trip_ms"].as_f64().unwrap();
    assert!(round_trip > 0.0, "round trip {round_trip} ms");
}

/// A machine with no sound card and no audio server (simulated: no PulseAudio server to reach,
/// and an empty ALSA configuration, so ALSA knows no devices): asking for the default
/// microphone and speaker gets a clear message, and the call goes on with video both ways and
/// the others' audio still received.
#[test]
fn without_a_sound_card_the_call_goes_on_and_says_why() {
    let dir = std::env::temp_dir().join(format!("confab-no-sound-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty_alsa = dir.join("asound.conf");
    std::fs::write(&empty_alsa, "# no devices\n").unwrap();
    let (rt, server) = confab_test_support::signaling::start_server_runtime();
    let mut host = confab_engine::observer::CallObserver::new(
        "host",
        confab_engine::testing::start_engine(confab_engine::testing::small_engine_config("host")),
    );
    host.send(confab_engine::EngineCommand::Join {
        url: server.ws_url(),
        room: "no-sound".into(),
        password: None,
    })
    .unwrap();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
        .args([
            "join",
            &server.ws_url(),
            "no-sound",
            "--headless",
            "--microphone",
            "default",
            "--speaker",
            "default",
            "--seconds",
            "4",
            "--resolution",
            "320x240",
            "--bind",
            "127.0.0.1",
            "--json",
        ])
        .env(
            "PULSE_SERVER",
            format!("unix:{}", dir.join("none").display()),
        )
        .env("ALSA_CONFIG_PATH", &empty_alsa)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    println!(
        "{}",
        serde_json::to_string_pretty(&report["device_notices"]).unwrap()
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(report["ok"], true);
    let p = &report["participants"][0];
    assert!(p["frames_received"].as_u64().unwrap() > 10, "{p}");
    assert!(p["audio_kbps"].as_f64().unwrap() > 0.0, "{p}");

    let notices = report["device_notices"].as_array().unwrap();
    let notice = |kind: &str| {
        notices
            .iter()
            .find(|n| n["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} notice in {notices:?}"))
    };
    for (kind, consequence) in [
        ("microphone", "Others will not hear you"),
        ("speaker", "You will not hear the others"),
    ] {
        let n = notice(kind);
        assert_eq!(n["state"], "absent");
        let message = n["message"].as_str().unwrap();
        assert!(message.contains("no sound card found"), "{message}");
        assert!(message.contains(consequence), "{message}");
    }
    // The host still sees the guest.
    let frames = |h: &confab_engine::observer::CallObserver| -> u64 {
        h.view.participants.values().map(|p| p.frames).sum()
    };
    confab_engine::testing::wait_until(&mut host, "the host decodes the guest's video", |h| {
        frames(h) > 0
    });
    assert!(frames(&host) > 0, "the host decoded the guest's video");
    drop(host);
    rt.block_on(server.shutdown(Duration::from_secs(1)));
    let _ = std::fs::remove_dir_all(dir);
}
