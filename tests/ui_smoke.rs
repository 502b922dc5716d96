//! The real `confab` binary in a real (virtual) X display, started the way a clicked
//! `confab://HOST:PORT/ROOM` link starts it: it joins a room where a headless engine sends the
//! test pattern, and a screenshot must show a window that is not blank with the remote video in
//! the middle. Its first launch must also have created the settings file and a log file in the
//! (temporary) XDG directories. Needs Xvfb and ImageMagick (`make deps` installs them).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use confab_engine::testing::{small_engine_config, start_engine};
use confab_engine::{EngineCommand, VideoSettings};
use confab_test_support::signaling::start_server_runtime;
use confab_test_support::xvfb::Xvfb;

/// A statistic (0..1) of `crop` (ImageMagick geometry) of `png`: `"Gray"` → standard deviation
/// of the grey levels (blank ≈ 0); `"HSL"` → mean saturation (grey UI ≈ 0, the test pattern high).
fn measure(png: &Path, crop: &str, what: &str) -> f64 {
    let mut cmd = Command::new("convert");
    cmd.arg(png).args(["-crop", crop, "+repage"]);
    match what {
        "HSL" => cmd.args([
            "-colorspace",
            "HSL",
            "-channel",
            "G",
            "-separate",
            "-format",
            "%[fx:mean]",
        ]),
        _ => cmd.args(["-colorspace", "Gray", "-format", "%[fx:standard_deviation]"]),
    };
    let out = cmd.arg("info:").output().expect("ImageMagick convert runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0)
}

/// Whether a window titled `title` exists on `display`.
fn window_titled(display: &str, title: &str) -> bool {
    Command::new("xdotool")
        .args(["search", "--name", title])
        .env("DISPLAY", display)
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
}

#[test]
fn the_app_shows_remote_video_in_a_real_window() {
    let (rt, server) = start_server_runtime();
    let mut config = small_engine_config("Bob");
    config.video = VideoSettings {
        width: 640,
        height: 480,
        ..config.video
    };
    let bob = start_engine(config);
    bob.send(EngineCommand::Join {
        url: server.ws_url(),
        room: "smoke".into(),
        password: None,
    })
    .unwrap();

    let x = Xvfb::start(1100, 720, 24);
    let home = std::env::temp_dir().join(format!("confab-smoke-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let link = server
        .ws_url()
        .replace("ws://", "confab://")
        .replace("/ws", "/smoke");
    let mut app = Command::new(env!("CARGO_BIN_EXE_confab"))
        .arg(&link)
        .env("DISPLAY", &x.display)
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("RUST_LOG", "warn,confab=info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let shot = home.join("shot.png");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut whole, mut centre, mut in_call) = (0.0, 0.0, false);
    while Instant::now() < deadline {
        // Polled: the app is another process, seen only through screenshots of the display.
        std::thread::sleep(Duration::from_secs(1));
        assert!(app.try_wait().unwrap().is_none(), "the app exited early");
        let ok = Command::new("import")
            .args(["-window", "root"])
            .arg(&shot)
            .env("DISPLAY", &x.display)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            continue;
        }
        // The title names the room only once the app is in the call.
        in_call = window_titled(&x.display, "^smoke ");
        whole = measure(&shot, "1100x720+0+0", "Gray");
        // The middle of the tile area, where Bob's picture is drawn.
        centre = measure(&shot, "400x240+350+200", "HSL");
        if in_call && whole > 0.05 && centre > 0.25 {
            break;
        }
    }
    let _ = app.kill();
    let _ = app.wait();
    eprintln!(
        "in call: {in_call}; grey deviation of the window {whole:.3}; saturation of the video \
         region {centre:.3} ({})",
        shot.display()
    );
    assert!(in_call, "the app never got into the call ({link})");
    let settings = home.join("config/confab/config.toml");
    assert!(
        settings.is_file(),
        "no settings file at {}",
        settings.display()
    );
    let logs: Vec<_> = std::fs::read_dir(home.join("state/confab/logs"))
        .expect("the log directory exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let log = logs
        .iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("confab."))
        })
        .unwrap_or_else(|| panic!("no confab.*.log in {logs:?}"));
    let text = std::fs::read_to_string(log).unwrap();
    assert!(
        text.contains("Confab 0."),
        "the log does not record the start:\n{text}"
    );
    assert!(whole > 0.05, "the window is blank");
    assert!(
        centre > 0.25,
        "no colourful video in the remote video region"
    );
    drop(bob);
    rt.block_on(server.shutdown(Duration::from_secs(1)));
    let _ = std::fs::remove_dir_all(home);
}
