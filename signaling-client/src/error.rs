//! Errors the signaling client reports to its caller.

use crate::protocol::ErrorCode;

/// Why connecting, joining or sending failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL could not be parsed or has a scheme other than `ws`/`wss`.
    #[error("invalid signaling URL: {reason}: {url}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
        /// The URL as given.
        url: String,
    },
    /// No connection (or no welcome) within the connect timeout.
    #[error("timed out after {seconds:.1} s connecting to the signaling server {url}")]
    Timeout {
        /// The timeout that expired.
        seconds: f64,
        /// The server URL.
        url: String,
    },
    /// TCP, TLS or the WebSocket handshake failed.
    #[error("cannot reach the signaling server ({reason}): {url}")]
    Unreachable {
        /// The underlying failure.
        reason: String,
        /// The server URL.
        url: String,
    },
    /// Something answered at the URL, but over plain HTTP instead of as a signaling WebSocket
    /// (a wrong path on a Confab server, or not a Confab server at all).
    #[error(
        "{url} answered with HTTP {status} instead of a signaling connection; a Confab server's \
         signaling address is ws://HOST:PORT/ws (or just HOST:PORT)"
    )]
    NotSignaling {
        /// The HTTP status it answered with.
        status: u16,
        /// The server URL.
        url: String,
    },
    /// A TLS certificate file could not be read or parsed.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The server refused the join (room full, wrong password, ...).
    #[error("the server refused to join: {message} ({code})")]
    Rejected {
        /// The server's error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The server sent something this client cannot understand.
    #[error("signaling protocol error: {0}")]
    Protocol(String),
    /// The client has been closed (left, or gave up reconnecting).
    #[error("the signaling client is closed")]
    Closed,
}

impl ClientError {
    /// The server's error code, when the server refused something.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether trying again later may succeed (network trouble rather than a refusal).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Unreachable { .. } => true,
            // A proxy in front of a restarting server answers 502/503 for a while.
            Self::NotSignaling { status, .. } => *status >= 500,
            Self::Rejected { code, .. } => matches!(
                code,
                ErrorCode::ServerFull | ErrorCode::ServerShuttingDown | ErrorCode::Internal
            ),
            _ => false,
        }
    }
}
