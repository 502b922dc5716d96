//! Signaling test helpers: start a real server on 127.0.0.1:0, and a raw WebSocket client that
//! can send anything (including what a well-behaved client never would).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use signaling_client::protocol::{ServerMessage, decode_server};
use signaling_client::{ErrorCode, ParticipantId, Welcome};
use signaling_server::{Limits, ServerConfig, ServerHandle, SignalingServer};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any one expected frame before failing.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits until `cond` holds for the server's state (its connection count, its rooms), which has
/// no event to wait on: it is read every 2 ms.
///
/// # Panics
/// After [`STEP_TIMEOUT`], naming `what`.
pub async fn wait_for_server(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server did not reach this state within {STEP_TIMEOUT:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A signaling server on 127.0.0.1:0 and the runtime it runs on (keep both alive), for tests
/// that drive engines from plain threads.
pub fn start_server_runtime() -> (tokio::runtime::Runtime, ServerHandle) {
    start_server_runtime_with(ServerConfig::new("127.0.0.1:0".parse().unwrap()))
}

/// [`start_server_runtime`] with a configuration of the test's own (TURN credentials, limits).
pub fn start_server_runtime_with(config: ServerConfig) -> (tokio::runtime::Runtime, ServerHandle) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(SignalingServer::start(config)).unwrap();
    (rt, server)
}

/// Starts a server on 127.0.0.1:0 with `limits`.
pub async fn start_server(limits: Limits) -> ServerHandle {
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    config.limits = limits;
    SignalingServer::start(config).await.expect("server starts")
}

/// What ended a raw connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// A close frame with this code.
    Code(u16),
    /// The stream ended (or errored) without a close frame.
    Dropped,
}

/// A WebSocket client that speaks raw frames.
pub struct RawClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl RawClient {
    /// Connects to `url` (no join).
    pub async fn connect(url: &str) -> Self {
        let (ws, _) = tokio::time::timeout(STEP_TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("WebSocket handshake");
        Self { ws }
    }

    /// Sends a text frame as is.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws
            .send(Message::text(text.into()))
            .await
            .expect("send text");
    }

    /// Sends a JSON value as a text frame.
    pub async fn send_json(&mut self, value: serde_json::Value) {
        self.send_text(value.to_string()).await;
    }

    /// Sends a raw frame of any kind.
    pub async fn send_message(&mut self, msg: Message) {
        self.ws.send(msg).await.expect("send frame");
    }

    /// Sends `join` and waits for the welcome.
    pub async fn join(&mut self, room: &str, name: &str) -> Welcome {
        self.send_json(json!({"v": 1, "type": "join", "room": room, "name": name}))
            .await;
        match self.next_message().await {
            Some(ServerMessage::Welcome(w)) => w,
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    /// Sends a signal (`kind: candidate`) carrying `payload` to `to`.
    pub async fn send_candidate(&mut self, to: &ParticipantId, payload: &str) {
        self.send_json(json!({"v": 1, "type": "signal", "to": to,
            "signal": {"kind": "candidate", "candidate": payload}}))
            .await;
    }

    /// The next protocol message, skipping pings/pongs; `None` once the connection closes.
    pub async fn next_message(&mut self) -> Option<ServerMessage> {
        loop {
            let frame = tokio::time::timeout(STEP_TIMEOUT, self.ws.next())
                .await
                .expect("a frame arrives in time");
            match frame {
                Some(Ok(Message::Text(t))) => {
                    return Some(decode_server(t.as_str()).expect("server frames decode"));
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Expects an `error` frame next and returns its code.
    pub async fn expect_error(&mut self) -> ErrorCode {
        match self.next_message().await {
            Some(ServerMessage::Error { code, .. }) => code,
            other => panic!("expected an error frame, got {other:?}"),
        }
    }

    /// Reads until the connection ends and reports how; fails if a protocol message arrives.
    pub async fn expect_closed(&mut self) -> Closed {
        loop {
            let frame = tokio::time::timeout(STEP_TIMEOUT, self.ws.next())
                .await
                .expect("the server closes in time");
            match frame {
                Some(Ok(Message::Close(Some(f)))) => return Closed::Code(u16::from(f.code)),
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return Closed::Dropped,
                Some(Ok(Message::Text(t))) => panic!("expected close, got {t}"),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Asserts nothing but pings arrives within `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }

    /// Drops the TCP connection without a close frame (a crash or a network cut).
    pub fn cut(self) {
        drop(self.ws);
    }
}

/// Proves the server still works: two fresh clients join a fresh room and relay a signal.
pub async fn assert_server_serves(url: &str, room: &str) {
    let mut a = RawClient::connect(url).await;
    let wa = a.join(room, "fresh-a").await;
    let mut b = RawClient::connect(url).await;
    let wb = b.join(room, "fresh-b").await;
    assert_eq!(wb.participants.len(), 1, "b sees a");
    match a.next_message().await {
        Some(ServerMessage::ParticipantJoined { participant }) => assert_eq!(participant.id, wb.id),
        other => panic!("expected participant_joined, got {other:?}"),
    }
    b.send_candidate(&wa.id, "still-alive").await;
    match a.next_message().await {
        Some(ServerMessage::Signal { from, .. }) => assert_eq!(from, wb.id),
        other => panic!("expected the relayed signal, got {other:?}"),
    }
}
