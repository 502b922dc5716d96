//! The HTTP/WebSocket front: binds, optionally terminates TLS, routes `/ws` to a connection task,
//! `/healthz` to a status page and `/`, `/r/{room}`, `/web/*` to the browser client
//! ([`crate::web`]), and shuts down gracefully.
//!
//! axum serves the routes (one port for the WebSocket, the health check and the browser
//! client's pages); axum-server adds rustls TLS and graceful shutdown on top of it.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
// Signaling frames are small and latency-sensitive: TCP_NODELAY on every accepted socket, or
// Nagle plus delayed ACKs adds up to 40 ms to a relayed message.
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{Limits, ServerConfig, TlsFiles};
use crate::rooms::Rooms;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// State shared by every connection.
pub(crate) struct AppState {
    pub(crate) rooms: Rooms,
    pub(crate) limits: Limits,
    pub(crate) connections: AtomicUsize,
    pub(crate) next_conn: AtomicU64,
    pub(crate) shutdown: watch::Receiver<Stopping>,
    /// Woken when the last open WebSocket connection ends (see [`ServerHandle::shutdown`]).
    pub(crate) idle: Notify,
}

/// Whether the server is stopping, and how (what its `shutdown` frame tells the clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopping {
    /// Not stopping.
    No,
    /// Going away to come back (a restart): clients reconnect and resume.
    ToComeBack,
    /// The call is over for everyone (the host ended it): clients do not reconnect.
    EndingTheCall,
}

/// Decrements the connection count when a connection task ends, however it ends.
struct ConnectionGuard(Arc<AppState>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.0.connections.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Entry point: `SignalingServer::start(config)` runs a server on the current tokio runtime.
#[derive(Debug)]
pub struct SignalingServer;

impl SignalingServer {
    /// Binds `config.listen` and starts serving in the background.
    pub async fn start(config: ServerConfig) -> Result<ServerHandle, ServerError> {
        let listener = TcpListener::bind(config.listen).map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| ServerError::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let (shutdown_tx, shutdown_rx) = watch::channel(Stopping::No);
        let state = Arc::new(AppState {
            rooms: Rooms::new(
                config.limits.clone(),
                config.turn.clone(),
                config.stun_urls.clone(),
            ),
            limits: config.limits.clone(),
            connections: AtomicUsize::new(0),
            next_conn: AtomicU64::new(1),
            shutdown: shutdown_rx,
            idle: Notify::new(),
        });
        let app = Router::new()
            .route("/ws", get(upgrade))
            .route("/healthz", get(healthz))
            .merge(crate::web::routes())
            .with_state(Arc::clone(&state));
        let handle = axum_server::Handle::new();
        let tls = config.tls.is_some();
        let bind_err = |source| ServerError::Bind {
            addr: config.listen,
            source,
        };
        let task: JoinHandle<std::io::Result<()>> = match &config.tls {
            Some(files) => {
                let rustls = RustlsConfig::from_config(load_tls(files)?);
                let acceptor = RustlsAcceptor::new(rustls).acceptor(NoDelayAcceptor::new());
                let server = axum_server::from_tcp(listener)
                    .map_err(bind_err)?
                    .acceptor(acceptor)
                    .handle(handle.clone());
                tokio::spawn(server.serve(app.into_make_service()))
            }
            None => {
                let server = axum_server::from_tcp(listener)
                    .map_err(bind_err)?
                    .acceptor(NoDelayAcceptor::new())
                    .handle(handle.clone());
                tokio::spawn(server.serve(app.into_make_service()))
            }
        };
        info!(%local_addr, tls, "signaling server listening");
        Ok(ServerHandle {
            local_addr,
            tls,
            shutdown: shutdown_tx,
            http: handle,
            task,
            state,
        })
    }
}

/// A running server. Dropping it leaves the server running until the runtime ends; call
/// [`ServerHandle::shutdown`] to stop it and tell the clients.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    tls: bool,
    shutdown: watch::Sender<Stopping>,
    http: axum_server::Handle<SocketAddr>,
    task: JoinHandle<std::io::Result<()>>,
    state: Arc<AppState>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("connections", &self.connections.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The bound address (with the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The WebSocket URL clients on this machine use (`ws://127.0.0.1:PORT/ws` when bound to
    /// an unspecified address).
    pub fn ws_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/ws", self.reachable_addr())
    }

    /// The base HTTP URL (`http(s)://HOST:PORT`).
    pub fn http_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.reachable_addr())
    }

    fn reachable_addr(&self) -> SocketAddr {
        let mut addr = self.local_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        addr
    }

    /// Current open WebSocket connections.
    pub fn connection_count(&self) -> usize {
        self.state.connections.load(Ordering::Relaxed)
    }

    /// Rooms and participants right now.
    pub fn room_stats(&self) -> crate::RoomStats {
        self.state.rooms.stats()
    }

    /// Tells every client the server is going away (a `shutdown` frame, then close 1001), stops
    /// accepting, and waits up to `grace` for connections to finish. Clients reconnect and
    /// resume when a server comes back at the address.
    pub async fn shutdown(self, grace: Duration) {
        self.stop(Stopping::ToComeBack, grace).await;
    }

    /// Ends every call on this server for good, as [`ServerHandle::shutdown`] stops it, but the
    /// `shutdown` frame says the call is over (`"ended": true`): clients end their calls
    /// instead of reconnecting (the host of an embedded server chose "End for everyone").
    pub async fn end_calls(self, grace: Duration) {
        self.stop(Stopping::EndingTheCall, grace).await;
    }

    async fn stop(self, how: Stopping, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        let _ = self.shutdown.send(how);
        self.http.graceful_shutdown(Some(grace));
        // Upgraded WebSocket connections are no longer HTTP connections, so the HTTP server's
        // graceful shutdown does not wait for them: wait here until each has sent its shutdown
        // frame and closed, or the grace period is over. Without this a process exiting right
        // after `shutdown` returned could cut them off before the frame went out.
        loop {
            let idle = self.state.idle.notified();
            if self.state.connections.load(Ordering::Acquire) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                warn!(
                    open = self.state.connections.load(Ordering::Acquire),
                    "connections still open after the grace period"
                );
                break;
            }
        }
        match tokio::time::timeout(grace + Duration::from_secs(1), self.task).await {
            Ok(Ok(Ok(()))) => info!("signaling server stopped"),
            Ok(Ok(Err(e))) => warn!(error = %e, "signaling server ended with an error"),
            Ok(Err(e)) => warn!(error = %e, "signaling server task failed"),
            Err(_) => warn!("signaling server did not stop in time"),
        }
    }
}

fn load_tls(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| ServerError::Tls(format!("certificate {}: {e}", files.cert.display())))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!(
            "no certificate in {}",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| ServerError::Tls(format!("private key {}: {e}", files.key.display())))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ServerError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| ServerError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

async fn upgrade(ws: WebSocketUpgrade, State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let max = state.limits.max_frame_bytes;
    state.connections.fetch_add(1, Ordering::Relaxed);
    let guard = ConnectionGuard(Arc::clone(&state));
    let conn = state.next_conn.fetch_add(1, Ordering::Relaxed);
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            let guard = guard;
            crate::connection::serve(socket, Arc::clone(&guard.0), conn).await;
        })
}

async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let stats = state.rooms.stats();
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "connections": state.connections.load(Ordering::Relaxed),
        "rooms": stats.rooms,
        "participants": stats.participants,
    }))
}
