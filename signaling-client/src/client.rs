//! The reconnecting signaling client.
//!
//! [`SignalingClient::connect`] returns once the server has welcomed us (or refused us); after
//! that one background task owns the WebSocket. It reads server frames into [`ClientEvent`]s,
//! writes the caller's signals, pings the server, and when the connection drops it reconnects
//! with [`Backoff`] and rejoins with the resume token, so the server keeps our participant id and
//! the other participants' peer connections to us stay up.
//!
//! Contract for callers: drain the event receiver; events are delivered in the order the server
//! sent them. Signals sent while disconnected are queued (bounded, oldest dropped first) and
//! delivered after a resumed reconnect; after a non-resumed one they are discarded, because they
//! were addressed to a session that no longer exists.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tracing::{debug, info, warn};

use crate::protocol::{
    ClientMessage, ErrorCode, Frame, JoinRequest, LeaveReason, Participant, ParticipantId, Resume,
    RoomName, ServerMessage, Signal, Welcome, decode_server,
};
use crate::{Backoff, ClientError};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Signals kept while disconnected; beyond this the oldest are dropped.
const OUTBOX_CAPACITY: usize = 256;
/// Events buffered for a slow consumer before the reader waits (back-pressure, nothing dropped).
const EVENT_CAPACITY: usize = 1024;
/// Largest frame we accept from the server (welcome and SDP-carrying signals fit easily).
const MAX_INBOUND_FRAME: usize = 1 << 20;

/// How to reach the server and whom to join as.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `ws://host:port/ws` or `wss://host:port/ws`.
    pub url: String,
    /// Room, display name and optional password. `resume` is managed by the client.
    pub join: JoinRequest,
    /// Limit for TCP + TLS + WebSocket handshake + welcome, per attempt.
    pub connect_timeout: Duration,
    /// First reconnect delay (doubles up to `reconnect_max`, with jitter).
    pub reconnect_initial: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
    /// Stop reconnecting after this long without a connection.
    pub give_up_after: Duration,
    /// Ping interval; the connection counts as lost after three intervals of silence.
    pub keepalive: Duration,
    /// Extra CA certificates (PEM) to trust for `wss://`, e.g. a self-hosted server's own.
    pub tls_ca_file: Option<PathBuf>,
}

impl ClientConfig {
    /// A config with default timings for joining `room` as `name` at `url`.
    pub fn new(url: impl Into<String>, room: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            join: JoinRequest {
                room: RoomName(room.into()),
                name: name.into(),
                password: None,
                resume: None,
            },
            connect_timeout: Duration::from_secs(5),
            reconnect_initial: Duration::from_millis(250),
            reconnect_max: Duration::from_secs(5),
            give_up_after: Duration::from_secs(300),
            keepalive: Duration::from_secs(15),
            tls_ca_file: None,
        }
    }

    /// Sets the room password.
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.join.password = Some(password.into());
        self
    }
}

/// What the client reports after the initial welcome.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// Someone joined the room.
    ParticipantJoined(Participant),
    /// Someone left the room.
    ParticipantLeft {
        /// Who.
        id: ParticipantId,
        /// Why.
        reason: LeaveReason,
    },
    /// A signal from another participant.
    Signal {
        /// The sender.
        from: ParticipantId,
        /// The signal.
        signal: Signal,
    },
    /// The server refused one of our messages; the session goes on.
    ServerError {
        /// Stable code.
        code: ErrorCode,
        /// Explanation.
        message: String,
    },
    /// The connection to the server was lost; the client is reconnecting. Peer connections
    /// should be kept: media does not pass through the server.
    Disconnected {
        /// What happened.
        reason: String,
    },
    /// The client is connected and joined again. `welcome.resumed` says whether the server kept
    /// our session (nobody saw us leave); if not, `welcome.id` may differ from before and the
    /// participant list is the server's current view.
    Reconnected(Welcome),
    /// The client has stopped for good; no more events follow.
    Closed(CloseReason),
}

/// Why the client stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum CloseReason {
    /// We left (or every handle was dropped).
    Left,
    /// The server refused our rejoin.
    Rejected {
        /// Its code.
        code: ErrorCode,
        /// Its explanation.
        message: String,
    },
    /// The server ended the call for everyone (its host ended it); nothing to reconnect to.
    Ended {
        /// The server's explanation.
        message: String,
    },
    /// Reconnecting did not succeed within `give_up_after`.
    GaveUp {
        /// The last failure.
        reason: String,
    },
}

enum Command {
    Signal { to: ParticipantId, signal: Signal },
    Leave(oneshot::Sender<()>),
}

/// A handle to the running client; cheap to clone. Dropping every handle leaves the room.
#[derive(Clone)]
pub struct SignalingClient {
    commands: mpsc::UnboundedSender<Command>,
    id: Arc<Mutex<ParticipantId>>,
}

impl std::fmt::Debug for SignalingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalingClient")
            .field("id", &self.id())
            .finish()
    }
}

impl SignalingClient {
    /// Connects, joins, and starts the background task. Resolves with the welcome, or with the
    /// reason it could not join (timeout, unreachable, room full, wrong password, ...).
    pub async fn connect(
        config: ClientConfig,
    ) -> Result<(Self, Welcome, mpsc::Receiver<ClientEvent>), ClientError> {
        let connector = connector_for(&config)?;
        let (ws, welcome) = open_and_join(&config, &config.join, connector.clone()).await?;
        info!(room = %welcome.room, id = %welcome.id, "joined");
        // Unbounded on purpose: commands are produced by our own engine at signaling rates
        // (SDP and a few dozen candidates per peer), and sending must never block media code.
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_CAPACITY);
        let id = Arc::new(Mutex::new(welcome.id.clone()));
        let task = ClientTask {
            config,
            connector,
            commands: cmd_rx,
            events: ev_tx,
            outbox: VecDeque::new(),
            id: Arc::clone(&id),
            resume: Resume {
                id: welcome.id.clone(),
                token: welcome.resume_token.clone(),
            },
            ended_by_server: None,
        };
        tokio::spawn(task.run(ws));
        Ok((
            Self {
                commands: cmd_tx,
                id,
            },
            welcome,
            ev_rx,
        ))
    }

    /// Our current participant id (changes only after a non-resumed reconnect).
    pub fn id(&self) -> ParticipantId {
        self.id
            .lock()
            .map(|id| id.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Sends `signal` to participant `to`. Queued while reconnecting.
    pub fn send_signal(&self, to: ParticipantId, signal: Signal) -> Result<(), ClientError> {
        self.commands
            .send(Command::Signal { to, signal })
            .map_err(|_| ClientError::Closed)
    }

    /// Leaves the room and waits until the server has been told (or the connection is gone).
    pub async fn leave(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Leave(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

fn connector_for(config: &ClientConfig) -> Result<Option<Connector>, ClientError> {
    if config.url.starts_with("wss://") {
        Ok(Some(Connector::Rustls(crate::tls::client_config(
            config.tls_ca_file.as_deref(),
        )?)))
    } else {
        Ok(None)
    }
}

fn check_url(url: &str) -> Result<(), ClientError> {
    let parsed = url::Url::parse(url).map_err(|e| ClientError::InvalidUrl {
        reason: e.to_string(),
        url: url.to_owned(),
    })?;
    match parsed.scheme() {
        "ws" | "wss" => Ok(()),
        other => Err(ClientError::InvalidUrl {
            reason: format!("scheme must be ws or wss, not {other}"),
            url: url.to_owned(),
        }),
    }
}

/// What a failed WebSocket handshake means: an HTTP answer (the server is there, the path is
/// wrong) or no usable connection at all.
fn handshake_error(e: tokio_tungstenite::tungstenite::Error, url: &str) -> ClientError {
    match e {
        tokio_tungstenite::tungstenite::Error::Http(response) => ClientError::NotSignaling {
            status: response.status().as_u16(),
            url: url.to_owned(),
        },
        other => ClientError::Unreachable {
            reason: other.to_string(),
            url: url.to_owned(),
        },
    }
}

/// One connection attempt: TCP/TLS/WebSocket handshake, `join`, and the server's answer.
async fn open_and_join(
    config: &ClientConfig,
    join: &JoinRequest,
    connector: Option<Connector>,
) -> Result<(Ws, Welcome), ClientError> {
    check_url(&config.url)?;
    let attempt = async {
        let mut ws_config = WebSocketConfig::default();
        ws_config.max_message_size = Some(MAX_INBOUND_FRAME);
        ws_config.max_frame_size = Some(MAX_INBOUND_FRAME);
        let (mut ws, _response) = tokio_tungstenite::connect_async_tls_with_config(
            config.url.as_str(),
            Some(ws_config),
            true,
            connector,
        )
        .await
        .map_err(|e| handshake_error(e, &config.url))?;
        let frame = Frame::new(ClientMessage::Join(join.clone())).to_json();
        ws.send(Message::text(frame))
            .await
            .map_err(|e| ClientError::Unreachable {
                reason: e.to_string(),
                url: config.url.clone(),
            })?;
        loop {
            let msg = ws.next().await;
            match msg {
                Some(Ok(Message::Text(text))) => match decode_server(text.as_str()) {
                    Ok(ServerMessage::Welcome(welcome)) => return Ok((ws, welcome)),
                    Ok(ServerMessage::Error { code, message }) => {
                        return Err(ClientError::Rejected { code, message });
                    }
                    Ok(ServerMessage::Shutdown { message, .. }) => {
                        return Err(ClientError::Rejected {
                            code: ErrorCode::ServerShuttingDown,
                            message,
                        });
                    }
                    Ok(other) => {
                        return Err(ClientError::Protocol(format!(
                            "expected welcome, got {other:?}"
                        )));
                    }
                    Err(e) => return Err(ClientError::Protocol(e.to_string())),
                },
                Some(Ok(Message::Close(frame))) => {
                    return Err(ClientError::Unreachable {
                        reason: format!(
                            "server closed the connection before welcoming us ({})",
                            frame.map(|f| f.reason.to_string()).unwrap_or_default()
                        ),
                        url: config.url.clone(),
                    });
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    return Err(ClientError::Unreachable {
                        reason: e.to_string(),
                        url: config.url.clone(),
                    });
                }
                None => {
                    return Err(ClientError::Unreachable {
                        reason: "connection closed before welcome".into(),
                        url: config.url.clone(),
                    });
                }
            }
        }
    };
    timeout(config.connect_timeout, attempt)
        .await
        .map_err(|_| ClientError::Timeout {
            seconds: config.connect_timeout.as_secs_f64(),
            url: config.url.clone(),
        })?
}

/// How one connected stretch ended.
enum SessionEnd {
    Left,
    Lost(String),
}

struct ClientTask {
    config: ClientConfig,
    connector: Option<Connector>,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<ClientEvent>,
    outbox: VecDeque<(ParticipantId, Signal)>,
    id: Arc<Mutex<ParticipantId>>,
    resume: Resume,
    /// The server said the call is over (`shutdown` with `ended`): however the connection then
    /// goes (close, reset, a failed send), the session ends instead of reconnecting.
    ended_by_server: Option<String>,
}

impl ClientTask {
    async fn run(mut self, ws: Ws) {
        let mut ws = ws;
        loop {
            let reason = match self.session(&mut ws).await {
                SessionEnd::Left => {
                    self.emit(ClientEvent::Closed(CloseReason::Left)).await;
                    return;
                }
                SessionEnd::Lost(_) if self.ended_by_server.is_some() => {
                    let message = self.ended_by_server.take().unwrap_or_default();
                    info!(%message, "the server ended the call");
                    self.emit(ClientEvent::Closed(CloseReason::Ended { message }))
                        .await;
                    return;
                }
                SessionEnd::Lost(reason) => reason,
            };
            warn!(%reason, "signaling connection lost; reconnecting");
            self.emit(ClientEvent::Disconnected {
                reason: reason.clone(),
            })
            .await;
            match self.reconnect(reason).await {
                Ok(new_ws) => ws = new_ws,
                Err(close) => {
                    self.emit(ClientEvent::Closed(close)).await;
                    return;
                }
            }
        }
    }

    async fn emit(&self, event: ClientEvent) {
        // A dropped receiver means nobody listens any more; the session itself goes on.
        let _ = self.events.send(event).await;
    }

    fn queue(&mut self, to: ParticipantId, signal: Signal) {
        if self.outbox.len() == OUTBOX_CAPACITY {
            self.outbox.pop_front();
            warn!("signaling outbox full while disconnected; dropped the oldest signal");
        }
        self.outbox.push_back((to, signal));
    }

    /// Runs one connected stretch: relays commands out and server frames in.
    async fn session(&mut self, ws: &mut Ws) -> SessionEnd {
        // Signals queued while disconnected go first, in order.
        while let Some((to, signal)) = self.outbox.pop_front() {
            let text = Frame::new(ClientMessage::Signal {
                to: to.clone(),
                signal: signal.clone(),
            })
            .to_json();
            if let Err(e) = ws.send(Message::text(text)).await {
                self.outbox.push_front((to, signal));
                return SessionEnd::Lost(e.to_string());
            }
        }
        let mut ping = tokio::time::interval(self.config.keepalive);
        ping.tick().await;
        let mut last_heard = Instant::now();
        let mut shutting_down: Option<(String, bool)> = None;
        loop {
            tokio::select! {
                frame = ws.next() => {
                    last_heard = Instant::now();
                    match frame {
                        Some(Ok(Message::Text(text))) => match decode_server(text.as_str()) {
                            Ok(msg) => {
                                if let ServerMessage::Shutdown { message, ended } = &msg {
                                    shutting_down = Some((message.clone(), *ended));
                                    if *ended {
                                        self.ended_by_server = Some(message.clone());
                                    }
                                }
                                if let Some(event) = event_for(msg) {
                                    self.emit(event).await;
                                }
                            }
                            Err(e) => warn!(error = %e, "ignoring undecodable server frame"),
                        },
                        Some(Ok(Message::Close(frame))) => {
                            let why = shutting_down.take().map(|(m, _)| m).unwrap_or_else(|| {
                                frame.map(|f| format!("server closed the connection: {} {}", u16::from(f.code), f.reason))
                                    .unwrap_or_else(|| "server closed the connection".into())
                            });
                            return SessionEnd::Lost(why);
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return SessionEnd::Lost(e.to_string()),
                        None => return SessionEnd::Lost("connection closed".into()),
                    }
                }
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Signal { to, signal }) => {
                        let text = Frame::new(ClientMessage::Signal { to: to.clone(), signal: signal.clone() }).to_json();
                        if let Err(e) = ws.send(Message::text(text)).await {
                            self.queue(to, signal);
                            return SessionEnd::Lost(e.to_string());
                        }
                    }
                    Some(Command::Leave(done)) => {
                        leave(ws).await;
                        let _ = done.send(());
                        return SessionEnd::Left;
                    }
                    None => {
                        leave(ws).await;
                        return SessionEnd::Left;
                    }
                },
                _ = ping.tick() => {
                    if last_heard.elapsed() > self.config.keepalive * 3 {
                        return SessionEnd::Lost("no answer from the server (keep-alive timed out)".into());
                    }
                    if let Err(e) = ws.send(Message::Ping(Vec::new().into())).await {
                        return SessionEnd::Lost(e.to_string());
                    }
                }
            }
        }
    }

    /// Reconnects with backoff until joined again, told to leave, refused, or out of time.
    async fn reconnect(&mut self, mut last_failure: String) -> Result<Ws, CloseReason> {
        let mut backoff = Backoff::new(self.config.reconnect_initial, self.config.reconnect_max);
        let deadline = Instant::now() + self.config.give_up_after;
        let mut resume = true;
        loop {
            if Instant::now() >= deadline {
                return Err(CloseReason::GaveUp {
                    reason: last_failure,
                });
            }
            let wake = Instant::now() + backoff.next_delay();
            // Keep taking commands while waiting: queue signals, honour leave at once.
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(wake) => break,
                    cmd = self.commands.recv() => match cmd {
                        Some(Command::Signal { to, signal }) => self.queue(to, signal),
                        Some(Command::Leave(done)) => {
                            let _ = done.send(());
                            return Err(CloseReason::Left);
                        }
                        None => return Err(CloseReason::Left),
                    },
                }
            }
            let mut join = self.config.join.clone();
            if resume {
                join.resume = Some(self.resume.clone());
            }
            debug!(resume, "reconnect attempt");
            match open_and_join(&self.config, &join, self.connector.clone()).await {
                Ok((ws, welcome)) => {
                    if !welcome.resumed {
                        // A new session: queued signals were addressed to the old one.
                        self.outbox.clear();
                    }
                    if let Ok(mut id) = self.id.lock() {
                        *id = welcome.id.clone();
                    }
                    self.resume = Resume {
                        id: welcome.id.clone(),
                        token: welcome.resume_token.clone(),
                    };
                    info!(id = %welcome.id, resumed = welcome.resumed, "reconnected");
                    self.emit(ClientEvent::Reconnected(welcome)).await;
                    return Ok(ws);
                }
                Err(ClientError::Rejected {
                    code: ErrorCode::ResumeRejected,
                    ..
                }) => {
                    // Our old session is not ours to take; join afresh.
                    resume = false;
                    backoff.reset();
                }
                Err(e) if e.is_transient() => last_failure = e.to_string(),
                Err(ClientError::Rejected { code, message }) => {
                    return Err(CloseReason::Rejected { code, message });
                }
                Err(e) => last_failure = e.to_string(),
            }
        }
    }
}

async fn leave(ws: &mut Ws) {
    let text = Frame::new(ClientMessage::Leave).to_json();
    if ws.send(Message::text(text)).await.is_ok() {
        // Wait briefly for the server's close so the leave is not lost in a reset.
        let drain = async { while let Some(Ok(_)) = ws.next().await {} };
        let _ = timeout(Duration::from_secs(2), drain).await;
    }
    let _ = ws.close(None).await;
}

fn event_for(msg: ServerMessage) -> Option<ClientEvent> {
    match msg {
        ServerMessage::ParticipantJoined { participant } => {
            Some(ClientEvent::ParticipantJoined(participant))
        }
        ServerMessage::ParticipantLeft { id, reason } => {
            Some(ClientEvent::ParticipantLeft { id, reason })
        }
        ServerMessage::Signal { from, signal } => Some(ClientEvent::Signal { from, signal }),
        ServerMessage::Error { code, message } => Some(ClientEvent::ServerError { code, message }),
        ServerMessage::Shutdown { .. } => None,
        ServerMessage::Welcome(w) => {
            warn!(id = %w.id, "unexpected second welcome ignored");
            None
        }
    }
}
