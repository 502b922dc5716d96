//! Typed reasons the engine reports: why a call ended ([`EndReason`]) and what went wrong while
//! it kept running ([`Problem`]).
//!
//! Contract: every variant is something a person can be told about in a sentence; the UI maps
//! them to its own wording (it never inspects the `Display` text). `Display` is a plain technical
//! description for logs and the CLI. Free-text `detail` fields carry the underlying cause (an OS
//! or library message) only for display, never for matching.

use std::fmt;

use serde::Serialize;

use signaling_client::{ClientError, CloseReason, ErrorCode};

use crate::devices::DeviceKind;

/// Why a call ended, or why joining never got as far as a call. Serialized (for `--json`
/// reports) as an object with a snake_case `kind` and the variant's fields.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EndReason {
    /// We hung up.
    Left,
    /// The call's host ended it for everyone (the server said so and is not coming back).
    EndedForEveryone {
        /// The server's explanation.
        message: String,
    },
    /// The engine shut down (the app closed) while in a call.
    AppClosed,
    /// The room already has as many participants as the server allows.
    RoomFull,
    /// The room has a password and it was missing or wrong.
    WrongPassword,
    /// The signaling address is not a valid `ws://`/`wss://` URL.
    InvalidAddress {
        /// What is wrong with it.
        detail: String,
    },
    /// TCP, TLS or the WebSocket handshake to the signaling server failed.
    Unreachable {
        /// The server URL.
        url: String,
        /// The underlying failure.
        detail: String,
    },
    /// No answer from the signaling server within the connect timeout.
    TimedOut {
        /// The server URL.
        url: String,
        /// The timeout that expired.
        seconds: f64,
    },
    /// The server refused for another reason (server full, shutting down, rejoin refused, ...).
    Refused {
        /// The server's code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The connection to the signaling server was lost and reconnecting gave up.
    ServerLost {
        /// The last failure.
        detail: String,
    },
    /// The signaling client failed in another way (TLS setup, protocol error).
    SignalingFailed {
        /// The underlying failure.
        detail: String,
    },
}

impl EndReason {
    /// The reason for a refusal with this server code.
    pub fn refused(code: ErrorCode, message: String) -> Self {
        match code {
            ErrorCode::RoomFull => Self::RoomFull,
            ErrorCode::WrongPassword => Self::WrongPassword,
            _ => Self::Refused { code, message },
        }
    }
}

impl From<&ClientError> for EndReason {
    fn from(e: &ClientError) -> Self {
        match e {
            ClientError::InvalidUrl { .. } | ClientError::NotSignaling { .. } => {
                Self::InvalidAddress {
                    detail: e.to_string(),
                }
            }
            ClientError::Timeout { seconds, url } => Self::TimedOut {
                url: url.clone(),
                seconds: *seconds,
            },
            ClientError::Unreachable { reason, url } => Self::Unreachable {
                url: url.clone(),
                detail: reason.clone(),
            },
            ClientError::Rejected { code, message } => Self::refused(*code, message.clone()),
            ClientError::Tls(_) | ClientError::Protocol(_) | ClientError::Closed => {
                Self::SignalingFailed {
                    detail: e.to_string(),
                }
            }
        }
    }
}

impl From<&CloseReason> for EndReason {
    fn from(r: &CloseReason) -> Self {
        match r {
            CloseReason::Left => Self::Left,
            CloseReason::Ended { message } => Self::EndedForEveryone {
                message: message.clone(),
            },
            CloseReason::Rejected { code, message } => Self::refused(*code, message.clone()),
            CloseReason::GaveUp { reason } => Self::ServerLost {
                detail: reason.clone(),
            },
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Left => f.write_str("you left the call"),
            Self::EndedForEveryone { message } => {
                write!(f, "the call ended for everyone: {message}")
            }
            Self::AppClosed => f.write_str("the app closed"),
            Self::RoomFull => f.write_str("the room is full (room_full)"),
            Self::WrongPassword => f.write_str("wrong or missing room password (wrong_password)"),
            Self::InvalidAddress { detail } => f.write_str(detail),
            Self::Unreachable { url, detail } => {
                write!(f, "cannot reach the signaling server ({detail}): {url}")
            }
            Self::TimedOut { url, seconds } => write!(
                f,
                "timed out after {seconds:.1} s connecting to the signaling server {url}"
            ),
            Self::Refused { code, message } => {
                write!(f, "the server refused: {message} ({code})")
            }
            Self::ServerLost { detail } => {
                write!(f, "lost the signaling server for good: {detail}")
            }
            Self::SignalingFailed { detail } => f.write_str(detail),
        }
    }
}

/// Something that went wrong while the engine kept running (the call, if any, goes on).
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// `Join` while already in a call.
    AlreadyInCall,
    /// A call-only command (chat) while not in a call.
    NotInCall,
    /// Joining failed; a [`crate::CallState::Ended`] with the same reason follows.
    JoinFailed(EndReason),
    /// The signaling connection closed for good; peer connections already up keep going.
    SignalingClosed(EndReason),
    /// A camera or microphone (or the file/synthetic source standing in for it) could not be
    /// opened or its encoder could not start.
    SourceFailed {
        /// Camera or microphone.
        kind: DeviceKind,
        /// The underlying failure.
        detail: String,
    },
    /// A file or synthetic source stopped mid-call; others no longer see or hear it.
    SourceStopped {
        /// Camera or microphone.
        kind: DeviceKind,
        /// The underlying failure.
        detail: String,
    },
    /// The connection to one participant could not be set up.
    PeerSetup {
        /// That participant's display name.
        name: String,
        /// The underlying failure.
        detail: String,
    },
    /// A chat message did not reach these participants (display names): they left, the call
    /// ended, or their connection did not come up in time while it waited for them.
    ChatNotDelivered {
        /// Who did not get it, with the reason for each (and the message, or how many).
        to: Vec<String>,
    },
    /// A chat message was not sent because nobody else is in the room (it is not shown as
    /// sent either).
    ChatNoRecipients {
        /// What was typed, so the UI can give it back.
        text: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyInCall => f.write_str("already in a call; hang up first"),
            Self::NotInCall => f.write_str("not in a call"),
            Self::JoinFailed(reason) => write!(f, "cannot join: {reason}"),
            Self::SignalingClosed(reason) => write!(f, "signaling closed: {reason}"),
            Self::SourceFailed { kind, detail } => write!(f, "{}: {detail}", kind.noun()),
            Self::SourceStopped { kind, detail } => {
                write!(f, "{} stopped: {detail}", kind.noun())
            }
            Self::PeerSetup { name, detail } => {
                write!(f, "cannot set up the connection to {name}: {detail}")
            }
            Self::ChatNotDelivered { to } => {
                write!(f, "chat message not delivered to {}", to.join(", "))
            }
            Self::ChatNoRecipients { .. } => {
                f.write_str("chat message not sent: nobody else is in the room")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_codes_become_their_own_reasons() {
        assert_eq!(
            EndReason::refused(ErrorCode::RoomFull, "full".into()),
            EndReason::RoomFull
        );
        assert_eq!(
            EndReason::refused(ErrorCode::WrongPassword, "no".into()),
            EndReason::WrongPassword
        );
        assert!(matches!(
            EndReason::refused(ErrorCode::ServerFull, "busy".into()),
            EndReason::Refused {
                code: ErrorCode::ServerFull,
                ..
            }
        ));
    }

    #[test]
    fn client_errors_map_to_reasons() {
        let timeout = ClientError::Timeout {
            seconds: 5.0,
            url: "ws://x".into(),
        };
        assert_eq!(
            EndReason::from(&timeout),
            EndReason::TimedOut {
                url: "ws://x".into(),
                seconds: 5.0
            }
        );
        let unreachable = ClientError::Unreachable {
            reason: "refused".into(),
            url: "ws://x".into(),
        };
        assert!(matches!(
            EndReason::from(&unreachable),
            EndReason::Unreachable { .. }
        ));
        let gave_up = CloseReason::GaveUp {
            reason: "reset".into(),
        };
        assert_eq!(
            EndReason::from(&gave_up),
            EndReason::ServerLost {
                detail: "reset".into()
            }
        );
    }
}
