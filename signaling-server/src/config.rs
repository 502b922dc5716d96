//! Server configuration: where to listen, TLS, TURN, and the limits that protect it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything [`crate::SignalingServer::start`] needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind; port 0 picks a free port (read it back from the handle).
    pub listen: SocketAddr,
    /// Serve `wss://` and `https://` with this certificate and key.
    pub tls: Option<TlsFiles>,
    /// Hand out ephemeral TURN credentials for these servers.
    pub turn: Option<TurnConfig>,
    /// STUN URLs to include in every welcome (no credentials).
    pub stun_urls: Vec<String>,
    /// Resource limits.
    pub limits: Limits,
}

impl ServerConfig {
    /// A plain-WebSocket server on `listen` with default limits and no ICE servers.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            tls: None,
            turn: None,
            stun_urls: Vec::new(),
            limits: Limits::default(),
        }
    }
}

/// PEM files for TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// TURN REST-API style credentials (coturn `use-auth-secret` / `static-auth-secret`).
#[derive(Debug, Clone)]
pub struct TurnConfig {
    /// `turn:host:port?transport=udp` style URLs.
    pub urls: Vec<String>,
    /// The secret shared with coturn's `static-auth-secret`.
    pub secret: String,
    /// How long issued credentials stay valid.
    pub ttl: Duration,
}

/// Limits, each answered with a specific [`signaling_client::ErrorCode`] when exceeded.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest text frame accepted; larger ones close the connection with code 1009.
    pub max_frame_bytes: usize,
    /// Sustained messages per second per connection.
    pub messages_per_second: u32,
    /// Burst allowance above the sustained rate.
    pub message_burst: u32,
    /// A connection that keeps flooding after this many dropped messages is closed (1008).
    pub flood_disconnect_after: u32,
    /// Participants per room.
    pub max_room_size: usize,
    /// Rooms on the server.
    pub max_rooms: usize,
    /// Concurrent WebSocket connections.
    pub max_connections: usize,
    /// A connection must join within this time.
    pub join_timeout: Duration,
    /// A connection that sends nothing (not even a pong) for this long is closed.
    pub idle_timeout: Duration,
    /// How often the server pings each connection.
    pub ping_interval: Duration,
    /// How long a participant whose connection dropped (without `leave` or a close frame) keeps
    /// its place, so it can resume without the others seeing it leave.
    pub reconnect_grace: Duration,
    /// Messages queued toward one connection before it counts as too slow and is dropped.
    pub outbound_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            messages_per_second: 50,
            message_burst: 200,
            flood_disconnect_after: 200,
            max_room_size: 16,
            max_rooms: 10_000,
            max_connections: 10_000,
            join_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(20),
            reconnect_grace: Duration::from_secs(10),
            outbound_queue: 512,
        }
    }
}
