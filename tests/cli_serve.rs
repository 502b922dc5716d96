//! The real `confab serve` binary: starts on 127.0.0.1:0, serves clients, stops gracefully on
//! SIGINT (Ctrl-C) after telling them, and refuses bad options with a clear message.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use confab_test_support::signaling::{Closed, RawClient};
use signaling_client::protocol::ServerMessage;

fn confab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_confab"))
}

/// Starts `confab serve` and returns the child and the WebSocket URL it printed.
fn spawn_serve(extra: &[&str]) -> (Child, String) {
    let mut child = confab()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("confab starts");
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("server on ").nth(1) {
                let url = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(url);
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("confab serve prints its URL");
    (child, url)
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        // Polled: std's `Child` has no wait with a timeout.
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("confab serve did not exit");
}

#[tokio::test]
async fn serve_relays_and_stops_gracefully_on_ctrl_c() {
    let (mut child, url) = spawn_serve(&["--max-room-size", "3"]);
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    let mut a = RawClient::connect(&url).await;
    let wa = a.join("cli", "A").await;
    let mut b = RawClient::connect(&url).await;
    let wb = b.join("cli", "B").await;
    assert!(matches!(
        a.next_message().await,
        Some(ServerMessage::ParticipantJoined { .. })
    ));
    b.send_candidate(&wa.id, "via the binary").await;
    match a.next_message().await {
        Some(ServerMessage::Signal { from, .. }) => assert_eq!(from, wb.id),
        other => panic!("{other:?}"),
    }

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for c in [&mut a, &mut b] {
        match c.next_message().await {
            Some(ServerMessage::Shutdown { .. }) => {}
            other => panic!("expected shutdown notice, got {other:?}"),
        }
        assert_eq!(c.expect_closed().await, Closed::Code(1001));
    }
    let status = tokio::task::spawn_blocking(move || wait_exit(&mut child))
        .await
        .unwrap();
    assert!(status.success(), "clean exit after Ctrl-C: {status}");
}

#[test]
fn serve_rejects_bad_options_clearly() {
    // TLS certificate without its key: refused by the argument parser.
    let out = confab()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent.pem",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-key"), "{err}");

    // Certificate files that do not exist: a clear error naming the file, no panic.
    let out = confab()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // A TURN URL without the secret.
    let out = confab()
        .args(["serve", "--turn-url", "turn:127.0.0.1:3478"])
        .env_remove("CONFAB_TURN_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--turn-secret"));

    // An address already in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = confab()
        .args(["serve", "--listen", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on"), "{err}");
}
