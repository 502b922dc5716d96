//! The Confab signaling server: rooms in memory, a relay for offers/answers/candidates between
//! participants of the same room, limits that keep bad clients from hurting good ones, and
//! ephemeral TURN credentials.
//!
//! Use it as a library (the app's "host a call" and `confab loopback` embed it) or through
//! `confab serve`:
//!
//! ```no_run
//! # async fn run() -> Result<(), signaling_server::ServerError> {
//! use signaling_server::{ServerConfig, SignalingServer};
//! let server = SignalingServer::start(ServerConfig::new("127.0.0.1:0".parse().unwrap())).await?;
//! println!("clients connect to {}", server.ws_url());
//! server.shutdown(std::time::Duration::from_secs(2)).await;
//! # Ok(()) }
//! ```
//!
//! Routes on one port: `GET /ws` (WebSocket, the protocol in `signaling_client::protocol`),
//! `GET /healthz` (JSON status), and the browser client: `GET /` (join form), `GET /r/{room}`
//! (join that room), `GET /web/{file}` (its scripts and styles, embedded in the binary).
//!
//! The server never looks inside SDP; it checks who may talk to whom, and how much.

mod config;
mod connection;
mod rate;
mod rooms;
mod server;
mod turn;
mod web;

pub use config::{Limits, ServerConfig, TlsFiles, TurnConfig};
pub use rooms::RoomStats;
pub use server::{ServerError, ServerHandle, SignalingServer};
pub use turn::{turn_credentials, turn_password};
pub use web::asset_names;
