//! The real `confab join --headless` binary in a room with an in-process engine: media and the
//! verification code both ways, the JSON report, and clear failures.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::process::Command;
use std::time::Duration;

use confab_engine::EngineCommand;
use confab_engine::observer::CallObserver;
use confab_engine::testing::{small_engine_config, start_engine, wait_until};
use confab_test_support::signaling::start_server_runtime;

fn confab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_confab"))
}

#[test]
fn headless_join_exchanges_media_with_an_engine_and_reports_json() {
    let (rt, server) = start_server_runtime();
    let mut host = CallObserver::new("host", start_engine(small_engine_config("host")));
    host.send(EngineCommand::Join {
        url: server.ws_url(),
        room: "cli".into(),
        password: None,
    })
    .unwrap();

    let out = confab()
        .args([
            "join",
            &server.ws_url(),
            "cli",
            "--headless",
            "--fake-media",
            "--name",
            "guest",
            "--seconds",
            "4",
            "--resolution",
            "320x240",
            "--bind",
            "127.0.0.1",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "join failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["ok"], true);
    let p = &report["participants"][0];
    assert_eq!(p["name"], "host");
    assert_eq!(p["connected"], true);
    assert!(p["frames_received"].as_u64().unwrap() > 10, "{p}");
    assert!(p["audio_kbps"].as_f64().unwrap() > 0.0);
    assert_eq!(p["resolution"], "320x240");
    assert_eq!(p["corrupt_frames"], 0);
    assert_eq!(p["decode_errors"], 0);
    assert!(report["frames_sent"].as_u64().unwrap() > 10);

    // The host saw the guest's video and the same verification code.
    let guest = |host: &CallObserver| host.view.participants.values().next().cloned();
    wait_until(&mut host, "the guest's video and code at the host", |h| {
        guest(h).is_some_and(|g| g.code.is_some() && g.frames > 0)
    });
    let g = guest(&host).unwrap();
    let (host_code, host_frames) = (g.code, g.frames);
    // The host's frame queue keeps the newest pictures (drop-oldest), so some are still there.
    assert!(host_frames > 0, "the host decoded the guest's video");
    assert_eq!(p["verification_code"].as_str(), host_code.as_deref());
    drop(host);
    rt.block_on(server.shutdown(Duration::from_secs(1)));
}

#[test]
fn headless_join_fails_clearly() {
    let (rt, server) = start_server_runtime();
    // Alone in the room: not a healthy call.
    let out = confab()
        .args([
            "join",
            &server.ws_url(),
            "empty",
            "--headless",
            "--seconds",
            "1",
            "--json",
        ])
        .args(["--bind", "127.0.0.1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["failure"], "nobody else was in the room");

    // A server that is not there: a clear message naming it, no panic.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/ws");
    let out = confab()
        .args(["join", &url, "r", "--headless", "--seconds", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the signaling server"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    rt.block_on(server.shutdown(Duration::from_secs(1)));
}

/// A `--share-screen` value that names nothing is refused before joining, saying what it takes.
#[test]
fn a_bad_share_screen_value_is_refused_with_what_it_takes() {
    for bad in ["window:zebra", "window:", "second", "window:0x"] {
        let out = confab()
            .args(["join", "127.0.0.1:9", "r", "--headless", "--seconds", "1"])
            .args(["--share-screen", bad])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--share-screen") && err.contains("window:ID"),
            "{bad}: {err}"
        );
        assert!(!err.contains("panicked"), "{bad}: {err}");
    }
}

/// `confab join` takes what the app's lobby takes: HOST:PORT, a ws:// URL with the root path, a
/// confab:// link that names the room. Each reaches the room (alone there, the report says
/// nobody else was in it, which only a joined client can say); a wrong path on the live server
/// says what the address should look like.
#[test]
fn join_takes_the_addresses_the_app_takes() {
    let (rt, server) = start_server_runtime();
    let port = server.local_addr().port();
    let forms: [(String, Option<&str>); 3] = [
        (format!("127.0.0.1:{port}"), Some("alone")),
        (format!("ws://127.0.0.1:{port}/"), Some("alone")),
        (format!("confab://127.0.0.1:{port}/alone"), None),
    ];
    for (address, room) in forms {
        let out = confab()
            .arg("join")
            .arg(&address)
            .args(room)
            .args(["--seconds", "1", "--json", "--bind", "127.0.0.1"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "{address}: no JSON report ({e}): {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(
            report["failure"], "nobody else was in the room",
            "{address}"
        );
    }
    let out = confab()
        .args(["join", &format!("ws://127.0.0.1:{port}/nope"), "r"])
        .args(["--seconds", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("instead of a signaling connection"), "{err}");
    assert!(err.contains("ws://HOST:PORT/ws"), "{err}");
    // No room and none in the address: said so before anything connects.
    let out = confab()
        .args(["join", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("name the room"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rt.block_on(server.shutdown(Duration::from_secs(1)));
}

/// A server that ends the call for everyone (the host's "End for everyone") ends a headless
/// join early, and its report says why: it does not sit reconnecting until --seconds are up.
#[test]
fn a_call_ended_for_everyone_ends_the_headless_join_with_the_reason() {
    let (rt, server) = start_server_runtime();
    let child = KillOnDrop(Some(
        confab()
            .args([
                "join",
                &server.ws_url(),
                "ending",
                "--seconds",
                "60",
                "--json",
            ])
            .args(["--bind", "127.0.0.1"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    // Once it is in the room, the server ends the call.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.room_stats().participants == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the join never got in"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    rt.block_on(server.end_calls(Duration::from_secs(1)));
    let out = child.wait_with_output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(report["ended"]["kind"], "ended_for_everyone", "{report}");
    assert!(
        report["seconds"].as_f64().unwrap() < 60.0,
        "it stayed the full time: {report}"
    );
}

/// A child process killed if the test fails before it is waited for (so a failing test does
/// not leave a `confab join` running for its whole `--seconds`).
struct KillOnDrop(Option<std::process::Child>);

impl KillOnDrop {
    fn wait_with_output(mut self) -> std::process::Output {
        self.0
            .take()
            .expect("not waited for yet")
            .wait_with_output()
            .unwrap()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
