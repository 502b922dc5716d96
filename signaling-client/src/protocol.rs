//! The Confab signaling wire protocol, version [`PROTOCOL_VERSION`].
//!
//! Every WebSocket text frame is one JSON object with two fixed keys: `"v"` (the protocol
//! version, an integer) and `"type"` (the message kind, snake_case). The remaining keys depend on
//! the type. Clients send [`ClientMessage`]s, the server sends [`ServerMessage`]s; both are wrapped
//! in a [`Frame`] so the version travels with every message. docs/signaling-protocol.md shows every
//! message with an example.
//!
//! Contract: the server never relays a signal to anyone but the participant it is addressed to,
//! and only within the sender's room. Binary frames are not part of the protocol.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks. A frame with any other `v` is rejected with
/// [`ErrorCode::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u32 = 1;

/// A participant's id inside a room, assigned by the server (random, URL-safe).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ParticipantId(pub String);

impl ParticipantId {
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ParticipantId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// A room's name as the participants typed it (1..=64 characters, no control characters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomName(pub String);

impl RoomName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for RoomName {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// One frame on the wire: the protocol version plus a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame<M> {
    /// Protocol version; always [`PROTOCOL_VERSION`] for frames this crate writes.
    pub v: u32,
    /// The message, flattened so its `type` tag sits beside `v`.
    #[serde(flatten)]
    pub msg: M,
}

impl<M: Serialize> Frame<M> {
    /// Wraps `msg` in a frame of the current protocol version.
    pub fn new(msg: M) -> Self {
        Self {
            v: PROTOCOL_VERSION,
            msg,
        }
    }

    /// Serializes the frame to the JSON text sent on the wire.
    pub fn to_json(&self) -> String {
        // Serializing these plain data types cannot fail (no maps with non-string keys, no
        // custom serializers), so an empty string is unreachable in practice.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Messages a client sends to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Join (or create) a room. Must be the first message on a connection.
    Join(JoinRequest),
    /// Relay `signal` to participant `to` in the same room.
    Signal {
        /// The addressee.
        to: ParticipantId,
        /// What to deliver.
        signal: Signal,
    },
    /// Leave the room; the server answers by closing the connection (code 1000).
    Leave,
}

/// The body of a [`ClientMessage::Join`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The room to join; created on first join.
    pub room: RoomName,
    /// The display name other participants see (1..=64 characters).
    pub name: String,
    /// Room password. The first participant sets it; everyone after must give the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Set by a client that is reconnecting: the id and token from its last [`Welcome`], so the
    /// other participants keep their peer connections to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Resume>,
}

/// Reconnection credentials from a previous [`Welcome`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resume {
    /// The id the client had.
    pub id: ParticipantId,
    /// The `resume_token` from that welcome.
    pub token: String,
}

/// Messages the server sends to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to a successful join.
    Welcome(Welcome),
    /// Someone joined the room.
    ParticipantJoined {
        /// Who joined.
        participant: Participant,
    },
    /// Someone left the room (or their connection was lost for longer than the grace period).
    ParticipantLeft {
        /// Who left.
        id: ParticipantId,
        /// Why.
        reason: LeaveReason,
    },
    /// A signal relayed from another participant.
    Signal {
        /// The sender.
        from: ParticipantId,
        /// What they sent.
        signal: Signal,
    },
    /// Something the client sent was refused, or the connection is about to close.
    Error {
        /// Stable machine-readable code.
        code: ErrorCode,
        /// Human-readable explanation (English).
        message: String,
    },
    /// The server is shutting down; the connection closes right after this (code 1001).
    Shutdown {
        /// Human-readable explanation.
        message: String,
        /// The call is over for everyone (the host ended it): do not reconnect. Absent (false)
        /// for a server that stops to come back (a restart): reconnect and resume.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        ended: bool,
    },
}

/// The server's answer to a join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// The id the server gave this participant.
    pub id: ParticipantId,
    /// The room joined.
    pub room: RoomName,
    /// Secret to present in [`JoinRequest::resume`] when reconnecting.
    pub resume_token: String,
    /// Whether this join resumed an earlier session (the others saw no leave/join).
    pub resumed: bool,
    /// Who else is in the room, in order of joining.
    pub participants: Vec<Participant>,
    /// STUN/TURN servers to use for the peer connections (TURN credentials are ephemeral).
    pub ice_servers: Vec<IceServer>,
}

/// A participant as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// Its id.
    pub id: ParticipantId,
    /// Its display name.
    pub name: String,
}

/// Why a participant left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// It sent `leave` or closed its connection cleanly.
    Left,
    /// Its connection was lost and it did not come back within the grace period.
    Disconnected,
    /// The server closed its connection (limits, idle timeout).
    Kicked,
}

/// One ICE server entry, shaped like the browser's `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:`/`turn:`/`turns:` URLs.
    pub urls: Vec<String>,
    /// TURN username (`<expiry unix seconds>:<participant id>`), absent for STUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password (`base64(HMAC-SHA1(secret, username))`), absent for STUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// What one participant sends another to set up, repair or end their peer connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signal {
    /// An SDP offer.
    Offer {
        /// The SDP text.
        sdp: String,
    },
    /// An SDP answer.
    Answer {
        /// The SDP text.
        sdp: String,
    },
    /// A trickled ICE candidate (`candidate:` line without the `a=` prefix).
    Candidate {
        /// The candidate attribute value.
        candidate: String,
        /// The media section id it belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
        /// The media section index it belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mline_index: Option<u16>,
        /// The ICE ufrag it belongs to (distinguishes generations across ICE restarts).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username_fragment: Option<String>,
    },
    /// The sender has gathered all its candidates.
    EndOfCandidates,
    /// An SDP offer that restarts ICE (new ufrag/pwd) on an existing connection.
    IceRestart {
        /// The SDP text.
        sdp: String,
    },
    /// The sender is ending the call with the addressee.
    Hangup {
        /// Optional human-readable reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// Stable machine-readable error codes (snake_case on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON, or not a JSON object.
    MalformedJson,
    /// `v` is missing or not [`PROTOCOL_VERSION`].
    UnsupportedVersion,
    /// `type` names no message this server knows.
    UnknownType,
    /// The message type is known but fields are missing or of the wrong shape.
    InvalidMessage,
    /// Room name, display name or password is empty, too long or has control characters.
    InvalidField,
    /// A message other than `join` arrived before joining.
    NotJoined,
    /// A second `join` on a connection that already joined.
    AlreadyJoined,
    /// A signal was addressed to nobody in the sender's room (unknown, other room, or self).
    UnknownParticipant,
    /// The room already has the maximum number of participants.
    RoomFull,
    /// The room has a password and it was not given or did not match.
    WrongPassword,
    /// The resume token did not match, or the id to resume is connected elsewhere.
    ResumeRejected,
    /// A text frame was larger than the limit (the connection closes with code 1009).
    FrameTooLarge,
    /// A binary frame arrived (the connection closes with code 1003).
    BinaryNotSupported,
    /// Messages arrived faster than the per-connection limit; the excess was dropped.
    RateLimited,
    /// The connection did not join within the join timeout.
    JoinTimeout,
    /// Nothing arrived within the idle timeout.
    IdleTimeout,
    /// The server has reached its connection limit.
    ServerFull,
    /// The server has reached its room limit and cannot create another.
    TooManyRooms,
    /// The server is shutting down.
    ServerShuttingDown,
    /// An unexpected server-side failure.
    Internal,
}

impl ErrorCode {
    /// The wire spelling of the code, e.g. `"room_full"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::UnsupportedVersion => "unsupported_version",
            Self::UnknownType => "unknown_type",
            Self::InvalidMessage => "invalid_message",
            Self::InvalidField => "invalid_field",
            Self::NotJoined => "not_joined",
            Self::AlreadyJoined => "already_joined",
            Self::UnknownParticipant => "unknown_participant",
            Self::RoomFull => "room_full",
            Self::WrongPassword => "wrong_password",
            Self::ResumeRejected => "resume_rejected",
            Self::FrameTooLarge => "frame_too_large",
            Self::BinaryNotSupported => "binary_not_supported",
            Self::RateLimited => "rate_limited",
            Self::JoinTimeout => "join_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::ServerFull => "server_full",
            Self::TooManyRooms => "too_many_rooms",
            Self::ServerShuttingDown => "server_shutting_down",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a received frame could not be understood; carries the [`ErrorCode`] to answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    /// The code to send back.
    pub code: ErrorCode,
    /// What was wrong, for humans.
    pub message: String,
}

impl DecodeError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The `type` values a client may send, for telling an unknown type from a malformed message.
const CLIENT_TYPES: &[&str] = &["join", "signal", "leave"];
/// The `type` values a server may send.
const SERVER_TYPES: &[&str] = &[
    "welcome",
    "participant_joined",
    "participant_left",
    "signal",
    "error",
    "shutdown",
];

/// Parses a client frame, classifying every failure with the error code the server answers.
pub fn decode_client(text: &str) -> Result<ClientMessage, DecodeError> {
    decode(text, CLIENT_TYPES)
}

/// Parses a server frame, classifying failures like [`decode_client`].
pub fn decode_server(text: &str) -> Result<ServerMessage, DecodeError> {
    decode(text, SERVER_TYPES)
}

fn decode<M: for<'de> Deserialize<'de>>(text: &str, known: &[&str]) -> Result<M, DecodeError> {
    let mut value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| DecodeError::new(ErrorCode::MalformedJson, format!("not JSON: {e}")))?;
    let obj = value.as_object_mut().ok_or_else(|| {
        DecodeError::new(ErrorCode::MalformedJson, "a frame must be a JSON object")
    })?;
    match obj.remove("v") {
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(PROTOCOL_VERSION)) => {}
        Some(other) => {
            return Err(DecodeError::new(
                ErrorCode::UnsupportedVersion,
                format!(
                    "protocol version {other} is not supported; this server speaks v{PROTOCOL_VERSION}"
                ),
            ));
        }
        None => {
            return Err(DecodeError::new(
                ErrorCode::UnsupportedVersion,
                format!("missing \"v\"; this server speaks v{PROTOCOL_VERSION}"),
            ));
        }
    }
    match obj.get("type") {
        Some(serde_json::Value::String(t)) if known.contains(&t.as_str()) => {}
        Some(serde_json::Value::String(t)) => {
            return Err(DecodeError::new(
                ErrorCode::UnknownType,
                format!("unknown message type {t:?}"),
            ));
        }
        Some(_) => {
            return Err(DecodeError::new(
                ErrorCode::InvalidMessage,
                "\"type\" must be a string",
            ));
        }
        None => {
            return Err(DecodeError::new(
                ErrorCode::InvalidMessage,
                "missing \"type\"",
            ));
        }
    }
    serde_json::from_value(value)
        .map_err(|e| DecodeError::new(ErrorCode::InvalidMessage, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_version_and_type_side_by_side() {
        let json = Frame::new(ClientMessage::Signal {
            to: "p2".into(),
            signal: Signal::Offer { sdp: "v=0".into() },
        })
        .to_json();
        assert_eq!(
            json,
            r#"{"v":1,"type":"signal","to":"p2","signal":{"kind":"offer","sdp":"v=0"}}"#
        );
        assert_eq!(
            decode_client(&json),
            Ok(ClientMessage::Signal {
                to: "p2".into(),
                signal: Signal::Offer { sdp: "v=0".into() }
            })
        );
    }

    #[test]
    fn every_server_message_round_trips() {
        let msgs = vec![
            ServerMessage::Welcome(Welcome {
                id: "a".into(),
                room: "r".into(),
                resume_token: "t".into(),
                resumed: false,
                participants: vec![Participant {
                    id: "b".into(),
                    name: "Bob".into(),
                }],
                ice_servers: vec![IceServer {
                    urls: vec!["turn:example.org:3478".into()],
                    username: Some("1:a".into()),
                    credential: Some("x".into()),
                }],
            }),
            ServerMessage::ParticipantJoined {
                participant: Participant {
                    id: "c".into(),
                    name: "C".into(),
                },
            },
            ServerMessage::ParticipantLeft {
                id: "c".into(),
                reason: LeaveReason::Disconnected,
            },
            ServerMessage::Signal {
                from: "b".into(),
                signal: Signal::Candidate {
                    candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                    sdp_mid: Some("0".into()),
                    sdp_mline_index: Some(0),
                    username_fragment: None,
                },
            },
            ServerMessage::Error {
                code: ErrorCode::RoomFull,
                message: "full".into(),
            },
            ServerMessage::Shutdown {
                message: "bye".into(),
                ended: false,
            },
            ServerMessage::Shutdown {
                message: "the host ended the call".into(),
                ended: true,
            },
        ];
        for m in msgs {
            let json = Frame::new(m.clone()).to_json();
            assert_eq!(decode_server(&json), Ok(m), "{json}");
        }
    }

    #[test]
    fn every_signal_kind_round_trips() {
        let signals = vec![
            Signal::Offer { sdp: "o".into() },
            Signal::Answer { sdp: "a".into() },
            Signal::Candidate {
                candidate: "c".into(),
                sdp_mid: None,
                sdp_mline_index: None,
                username_fragment: Some("u".into()),
            },
            Signal::EndOfCandidates,
            Signal::IceRestart { sdp: "r".into() },
            Signal::Hangup { reason: None },
        ];
        for s in signals {
            let json = Frame::new(ClientMessage::Signal {
                to: "x".into(),
                signal: s.clone(),
            })
            .to_json();
            assert_eq!(
                decode_client(&json),
                Ok(ClientMessage::Signal {
                    to: "x".into(),
                    signal: s
                })
            );
        }
    }

    #[test]
    fn decode_classifies_failures() {
        let code = |t: &str| decode_client(t).err().map(|e| e.code);
        assert_eq!(code("{"), Some(ErrorCode::MalformedJson));
        assert_eq!(code("[1]"), Some(ErrorCode::MalformedJson));
        assert_eq!(
            code(r#"{"type":"leave"}"#),
            Some(ErrorCode::UnsupportedVersion)
        );
        assert_eq!(
            code(r#"{"v":2,"type":"leave"}"#),
            Some(ErrorCode::UnsupportedVersion)
        );
        assert_eq!(
            code(r#"{"v":"1","type":"leave"}"#),
            Some(ErrorCode::UnsupportedVersion)
        );
        assert_eq!(
            code(r#"{"v":1,"type":"dance"}"#),
            Some(ErrorCode::UnknownType)
        );
        assert_eq!(code(r#"{"v":1}"#), Some(ErrorCode::InvalidMessage));
        assert_eq!(code(r#"{"v":1,"type":7}"#), Some(ErrorCode::InvalidMessage));
        assert_eq!(
            code(r#"{"v":1,"type":"join","name":"x"}"#),
            Some(ErrorCode::InvalidMessage)
        );
        assert_eq!(
            code(r#"{"v":1,"type":"signal","to":"p","signal":{"kind":"wave"}}"#),
            Some(ErrorCode::InvalidMessage)
        );
        assert_eq!(code(r#"{"v":1,"type":"leave"}"#), None);
    }
}
