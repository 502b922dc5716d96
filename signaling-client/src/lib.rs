//! Confab signaling: the wire protocol and an async WebSocket client.
//!
//! - [`protocol`]: the JSON messages (serde-tagged enums, versioned frames) that the server, this
//!   client and the browser page all speak. docs/signaling-protocol.md is the human-readable form.
//! - [`SignalingClient`]: connects with a timeout, joins a room, relays [`Signal`]s, and delivers
//!   a stream of typed [`ClientEvent`]s. It survives dropped connections and server restarts by
//!   reconnecting with exponential backoff and jitter and rejoining with its resume token, so a call
//!   in progress keeps its peer connections (and media) while signaling is away.
//!
//! The client never interprets SDP or candidates: it moves them, in order, to the right peer.

mod backoff;
mod client;
mod error;
pub mod protocol;
mod tls;

pub use backoff::Backoff;
pub use client::{ClientConfig, ClientEvent, CloseReason, SignalingClient};
pub use error::ClientError;
pub use protocol::{
    ErrorCode, IceServer, JoinRequest, LeaveReason, Participant, ParticipantId, RoomName, Signal,
    Welcome,
};
