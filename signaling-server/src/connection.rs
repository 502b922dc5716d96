//! One WebSocket connection: reads client frames, enforces the per-connection limits, and writes
//! what its room queues for it.
//!
//! The task owns the socket; nothing else writes to it. Inputs, by source:
//! - the client: `join`, `signal`, `leave`, pongs, close, and anything malformed;
//! - its room: frames queued on its bounded channel (the channel closing means "you are too slow"
//!   or "another connection resumed your session");
//! - timers: join timeout, idle timeout, ping interval;
//! - the server: shutdown.
//!
//! Every refusal is answered with an `error` frame carrying a stable code. Refusals that end the
//! connection send the error, then a close frame with the matching close code.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use signaling_client::protocol::{ClientMessage, Frame, ServerMessage, decode_client};
use signaling_client::{ErrorCode, LeaveReason, ParticipantId};
use tokio::sync::mpsc;
use tokio::time::sleep_until;
use tracing::{debug, info};

use crate::rate::TokenBucket;
use crate::server::{AppState, Stopping};

/// WebSocket close codes (RFC 6455 section 7.4.1).
mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const UNSUPPORTED_DATA: u16 = 1003;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// At most one `rate_limited` error per this interval, so a flood is not answered by a flood.
const RATE_ERROR_INTERVAL: Duration = Duration::from_secs(1);

/// Longest wait for the client's reply to our close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// How a connection ended, which decides what its room hears.
enum End {
    /// Left cleanly (`leave` or a close frame): the others hear `left` at once.
    Left,
    /// Lost without a goodbye: the participant keeps its place for the grace period.
    Lost,
    /// Closed by the server for breaking a limit.
    Kicked,
    /// Idle timeout: the peer is presumed gone.
    Idle,
    /// The room dropped this connection (too slow, or resumed elsewhere).
    Dropped,
    /// Server shutdown: rooms go away with the server.
    Shutdown,
}

/// Serves one upgraded socket until it ends.
pub(crate) async fn serve(mut socket: WebSocket, state: Arc<AppState>, conn: u64) {
    let limits = state.limits.clone();
    if state.connections.load(Ordering::Relaxed) > limits.max_connections {
        send_error(
            &mut socket,
            ErrorCode::ServerFull,
            "the server has too many connections; try again later",
        )
        .await;
        close(&mut socket, close_code::TRY_AGAIN_LATER, "server full").await;
        return;
    }
    let (tx, mut rx) = mpsc::channel::<String>(limits.outbound_queue);
    // Held until the join hands it to the room, so `rx` does not close before then.
    let mut tx_slot = Some(tx);
    let mut joined: Option<ParticipantId> = None;
    let opened = Instant::now();
    let join_deadline = tokio::time::Instant::from_std(opened + limits.join_timeout);
    let mut last_heard = tokio::time::Instant::now();
    let mut ping = tokio::time::interval(limits.ping_interval);
    ping.tick().await;
    let mut bucket = TokenBucket::new(limits.messages_per_second, limits.message_burst, opened);
    let mut dropped_for_rate: u32 = 0;
    let mut last_rate_error: Option<Instant> = None;
    let mut shutdown = state.shutdown.clone();
    // Frames from the room that this connection could not write; kept for a resume.
    let mut unsent: Vec<String> = Vec::new();

    let end = loop {
        let idle_deadline = last_heard + limits.idle_timeout;
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                let ended = *shutdown.borrow() == Stopping::EndingTheCall;
                let message = if ended {
                    "the host ended the call"
                } else {
                    "the server is shutting down"
                };
                let frame = Frame::new(ServerMessage::Shutdown {
                    message: message.into(),
                    ended,
                }).to_json();
                let _ = socket.send(Message::text(frame)).await;
                close(&mut socket, close_code::GOING_AWAY, "server shutting down").await;
                break End::Shutdown;
            }
            queued = rx.recv() => match queued {
                Some(frame) => {
                    if socket.send(Message::text(frame.clone())).await.is_err() {
                        unsent.push(frame);
                        break End::Lost;
                    }
                }
                None => {
                    close(&mut socket, close_code::POLICY, "dropped by the room (too slow or resumed elsewhere)").await;
                    break End::Dropped;
                }
            },
            _ = sleep_until(join_deadline), if joined.is_none() => {
                send_error(&mut socket, ErrorCode::JoinTimeout, "no join within the join timeout").await;
                close(&mut socket, close_code::POLICY, "join timeout").await;
                break End::Kicked;
            }
            _ = sleep_until(idle_deadline) => {
                send_error(&mut socket, ErrorCode::IdleTimeout, "nothing received within the idle timeout").await;
                close(&mut socket, close_code::GOING_AWAY, "idle timeout").await;
                break End::Idle;
            }
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break End::Lost;
                }
            }
            incoming = socket.recv() => {
                last_heard = tokio::time::Instant::now();
                let msg = match incoming {
                    None => break End::Lost,
                    Some(Err(e)) => {
                        if is_capacity_error(e) {
                            send_error(&mut socket, ErrorCode::FrameTooLarge, &format!(
                                "frames are limited to {} bytes", limits.max_frame_bytes)).await;
                            close_after_read_error(&mut socket, close_code::TOO_BIG, "frame too large").await;
                            break End::Kicked;
                        }
                        break End::Lost;
                    }
                    Some(Ok(msg)) => msg,
                };
                let text = match msg {
                    Message::Text(text) => text,
                    Message::Binary(_) => {
                        send_error(&mut socket, ErrorCode::BinaryNotSupported,
                            "binary frames are not part of the protocol; send JSON text frames").await;
                        close(&mut socket, close_code::UNSUPPORTED_DATA, "binary frames not supported").await;
                        break End::Kicked;
                    }
                    Message::Close(_) => break End::Left,
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                if !bucket.try_take(Instant::now()) {
                    dropped_for_rate += 1;
                    if dropped_for_rate > limits.flood_disconnect_after {
                        send_error(&mut socket, ErrorCode::RateLimited, "too many messages; disconnecting").await;
                        close(&mut socket, close_code::POLICY, "message flood").await;
                        break End::Kicked;
                    }
                    if last_rate_error.is_none_or(|t| t.elapsed() >= RATE_ERROR_INTERVAL) {
                        last_rate_error = Some(Instant::now());
                        send_error(&mut socket, ErrorCode::RateLimited, &format!(
                            "more than {} messages per second; excess messages are dropped",
                            limits.messages_per_second)).await;
                    }
                    continue;
                }
                match decode_client(text.as_str()) {
                    Err(e) => send_error(&mut socket, e.code, &e.message).await,
                    Ok(ClientMessage::Join(req)) => {
                        if joined.is_some() {
                            send_error(&mut socket, ErrorCode::AlreadyJoined, "this connection has already joined a room").await;
                            continue;
                        }
                        let Some(tx) = tx_slot.clone() else { continue };
                        match state.rooms.join(conn, tx, &req) {
                            Ok(welcome) => {
                                info!(conn, id = %welcome.id, room = %welcome.room, resumed = welcome.resumed, "joined");
                                joined = Some(welcome.id.clone());
                                tx_slot = None;
                                let frame = Frame::new(ServerMessage::Welcome(welcome)).to_json();
                                if socket.send(Message::text(frame)).await.is_err() {
                                    break End::Lost;
                                }
                            }
                            Err((code, message)) => send_error(&mut socket, code, &message).await,
                        }
                    }
                    Ok(ClientMessage::Signal { to, signal }) => {
                        let Some(from) = &joined else {
                            send_error(&mut socket, ErrorCode::NotJoined, "join a room before sending signals").await;
                            continue;
                        };
                        if let Err((code, message)) = state.rooms.relay(from, &to, signal) {
                            send_error(&mut socket, code, &message).await;
                        }
                    }
                    Ok(ClientMessage::Leave) => {
                        close(&mut socket, close_code::NORMAL, "left").await;
                        break End::Left;
                    }
                }
            }
        }
    };

    let Some(id) = joined else { return };
    match end {
        End::Left => state.rooms.leave(&id, conn, LeaveReason::Left),
        End::Kicked | End::Dropped => state.rooms.leave(&id, conn, LeaveReason::Kicked),
        End::Idle => state.rooms.leave(&id, conn, LeaveReason::Disconnected),
        End::Shutdown => {}
        End::Lost => {
            let grace = limits.reconnect_grace;
            if grace.is_zero() {
                state.rooms.leave(&id, conn, LeaveReason::Disconnected);
                return;
            }
            while let Ok(frame) = rx.try_recv() {
                unsent.push(frame);
            }
            if state.rooms.detach(&id, conn, unsent) {
                debug!(conn, %id, "connection lost; holding the place for the grace period");
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    tokio::time::sleep(grace).await;
                    state.rooms.expire(&id, conn);
                });
            }
        }
    }
}

async fn send_error(socket: &mut WebSocket, code: ErrorCode, message: &str) {
    debug!(%code, message, "refusing");
    let frame = Frame::new(ServerMessage::Error {
        code,
        message: message.to_owned(),
    })
    .to_json();
    let _ = socket.send(Message::text(frame)).await;
}

/// Sends a close frame; false when the socket is already gone.
async fn send_close(socket: &mut WebSocket, code: u16, reason: &str) -> bool {
    socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await
        .is_ok()
}

/// Sends a close frame and completes the closing handshake: reads (and discards) until the
/// client's close reply, or [`CLOSE_LINGER`]. Dropping the socket at once could reset the TCP
/// connection while the client still has our last frames unread, and they would be lost.
async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    if !send_close(socket, code, reason).await {
        return;
    }
    let drain = async {
        loop {
            match socket.recv().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_LINGER, drain).await;
}

/// Like [`close`], after a read error that left unread input (the rest of an oversize frame) in
/// the kernel buffer: the stream cannot be drained, and dropping the socket would reset the
/// connection before the client reads our error and close frame, so hold it for the linger time.
async fn close_after_read_error(socket: &mut WebSocket, code: u16, reason: &str) {
    if send_close(socket, code, reason).await {
        tokio::time::sleep(CLOSE_LINGER).await;
    }
}

/// Whether a receive error is tungstenite's "message/frame too long".
fn is_capacity_error(e: axum::Error) -> bool {
    let inner = e.into_inner();
    matches!(
        inner.downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}
