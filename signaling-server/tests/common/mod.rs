//! Helpers shared by the signaling end-to-end tests (`signaling_rooms.rs`,
//! `signaling_connection.rs`): waiting for the next client event or signal (failing the test
//! after `STEP_TIMEOUT`) and a client configuration that retries fast.

#![allow(
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use std::time::Duration;

use confab_test_support::signaling::STEP_TIMEOUT;
use signaling_client::{ClientConfig, ClientEvent, Signal};
use tokio::sync::mpsc::Receiver;

/// The next client event; panics if none arrives within `STEP_TIMEOUT` or the stream ends.
pub async fn next_event(rx: &mut Receiver<ClientEvent>) -> ClientEvent {
    tokio::time::timeout(STEP_TIMEOUT, rx.recv())
        .await
        .expect("an event arrives in time")
        .expect("the event stream is open")
}

/// The next event that is not a keep-alive detail, e.g. skipping nothing today but kept as the
/// one place to filter if the client grows informational events.
pub async fn next_signal(
    rx: &mut Receiver<ClientEvent>,
) -> (signaling_client::ParticipantId, Signal) {
    match next_event(rx).await {
        ClientEvent::Signal { from, signal } => (from, signal),
        other => panic!("expected a signal, got {other:?}"),
    }
}

/// A client configuration for `url`, `room`, `name` that reconnects within 50–300 ms and
/// gives up after 20 s.
pub fn fast_config(url: &str, room: &str, name: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url, room, name);
    c.reconnect_initial = Duration::from_millis(50);
    c.reconnect_max = Duration::from_millis(300);
    c.give_up_after = Duration::from_secs(20);
    c
}
