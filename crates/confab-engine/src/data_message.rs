//! The peer-to-peer data-channel protocol (channel `chat`): chat text and media state, one JSON
//! object per message, tagged by `t`. The web client (`assets/web/peer.js`) speaks the same;
//! docs/signaling-protocol.md ("Peer to peer") is the reference for both.
//!
//! Contract for what arrives (nothing from a peer is trusted):
//! - a JSON object whose `t` is known and whose fields have the right types is that message;
//!   a missing `text` is empty, a missing `mic`/`camera` is `true`;
//! - any other JSON object (unknown `t`, no `t`, wrong field types) is ignored;
//! - anything that is not a JSON object is chat text from a client that does not wrap chat.

use serde::{Deserialize, Serialize};

/// One data-channel message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum DataMessage {
    /// A chat message: `{"t":"chat","text":"hello"}`.
    Chat {
        /// What was typed.
        #[serde(default)]
        text: String,
    },
    /// The sender's microphone, camera and screen-share state:
    /// `{"t":"media","mic":true,"camera":false,"screen":"confab-screen-1a2b3c4d"}`. Sent when
    /// the channel opens, on every change and as a periodic refresh.
    Media {
        /// Microphone on.
        #[serde(default = "on")]
        mic: bool,
        /// Camera on.
        #[serde(default = "on")]
        camera: bool,
        /// While sharing a screen: the msid stream id of the screen's video track, which tells
        /// the receiver which of the sender's video tracks is the screen. Absent, `null` or not
        /// a string: not sharing.
        #[serde(
            default,
            deserialize_with = "string_or_none",
            skip_serializing_if = "Option::is_none"
        )]
        screen: Option<String>,
    },
}

fn on() -> bool {
    true
}

/// A string, or `None` for anything else (a peer's bad value is "not sharing", not a rejected
/// message).
fn string_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) if !s.is_empty() && s.len() <= MAX_STREAM_ID => Some(s),
        _ => None,
    })
}

/// The longest screen stream id taken from a peer (msid ids are short tokens; this bounds what
/// a peer can make us keep).
const MAX_STREAM_ID: usize = 128;

/// What a received data-channel text turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A message this client understands.
    Message(DataMessage),
    /// A JSON object this client does not understand; `kind` is its `t` when it had a string one.
    Ignored {
        /// The message's `t`, if any.
        kind: Option<String>,
    },
}

impl DataMessage {
    /// The wire form.
    pub fn encode(&self) -> String {
        // Only strings and booleans: serializing cannot fail. Should it ever, an empty message
        // is ignored by every receiver rather than sending something half-built.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Classifies a received text message (see the module docs for the rules).
    pub fn decode(text: &str) -> Received {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(value @ serde_json::Value::Object(_)) => {
                let kind = value.get("t").and_then(|t| t.as_str()).map(str::to_owned);
                match serde_json::from_value::<DataMessage>(value) {
                    Ok(message) => Received::Message(message),
                    Err(_) => Received::Ignored { kind },
                }
            }
            _ => Received::Message(DataMessage::Chat {
                text: text.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_is_the_documented_one() {
        let chat = DataMessage::Chat {
            text: "hello".into(),
        };
        assert_eq!(chat.encode(), r#"{"t":"chat","text":"hello"}"#);
        let media = DataMessage::Media {
            mic: true,
            camera: false,
            screen: None,
        };
        assert_eq!(media.encode(), r#"{"t":"media","mic":true,"camera":false}"#);
        let sharing = DataMessage::Media {
            mic: true,
            camera: true,
            screen: Some("confab-screen-1a2b3c4d".into()),
        };
        assert_eq!(
            sharing.encode(),
            r#"{"t":"media","mic":true,"camera":true,"screen":"confab-screen-1a2b3c4d"}"#
        );
    }

    #[test]
    fn round_trips() {
        for m in [
            DataMessage::Chat {
                text: "ünïcødé \"quoted\" {braces}".into(),
            },
            DataMessage::Media {
                mic: false,
                camera: true,
                screen: None,
            },
            DataMessage::Media {
                mic: true,
                camera: false,
                screen: Some("{a-browser-stream-id}".into()),
            },
        ] {
            assert_eq!(DataMessage::decode(&m.encode()), Received::Message(m));
        }
    }

    #[test]
    fn missing_fields_take_their_defaults() {
        assert_eq!(
            DataMessage::decode(r#"{"t":"media"}"#),
            Received::Message(DataMessage::Media {
                mic: true,
                camera: true,
                screen: None
            })
        );
        assert_eq!(
            DataMessage::decode(r#"{"t":"chat"}"#),
            Received::Message(DataMessage::Chat {
                text: String::new()
            })
        );
    }

    #[test]
    fn a_screen_that_is_not_a_short_string_means_not_sharing() {
        let long = format!(r#"{{"t":"media","screen":"{}"}}"#, "x".repeat(500));
        for text in [
            r#"{"t":"media","screen":null}"#,
            r#"{"t":"media","screen":5}"#,
            r#"{"t":"media","screen":""}"#,
            r#"{"t":"media","screen":{"id":"x"}}"#,
            long.as_str(),
        ] {
            assert_eq!(
                DataMessage::decode(text),
                Received::Message(DataMessage::Media {
                    mic: true,
                    camera: true,
                    screen: None
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn plain_text_and_non_objects_are_chat() {
        for text in ["just words", "42", "\"quoted\"", "[1,2]", "{not json"] {
            assert_eq!(
                DataMessage::decode(text),
                Received::Message(DataMessage::Chat { text: text.into() }),
                "{text}"
            );
        }
    }

    #[test]
    fn unknown_or_malformed_objects_are_ignored() {
        assert_eq!(
            DataMessage::decode(r#"{"t":"file-offer","size":5}"#),
            Received::Ignored {
                kind: Some("file-offer".into())
            }
        );
        assert_eq!(
            DataMessage::decode(r#"{"text":"no tag"}"#),
            Received::Ignored { kind: None }
        );
        assert_eq!(
            DataMessage::decode(r#"{"t":"media","mic":"yes"}"#),
            Received::Ignored {
                kind: Some("media".into())
            }
        );
        assert_eq!(
            DataMessage::decode(r#"{"t":"chat","text":5}"#),
            Received::Ignored {
                kind: Some("chat".into())
            }
        );
    }
}
