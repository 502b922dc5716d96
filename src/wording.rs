//! What the app tells a person about the engine's typed reasons: one sentence per
//! [`EndReason`] and [`Problem`], with the technical cause in brackets where it helps.
//!
//! Contract: pure functions of the typed value; the UI never inspects engine text.

use confab_engine::devices::DeviceKind;
use confab_engine::{EndReason, Problem};

/// Why the call ended (or never started), for the ended screen and the lobby.
pub(crate) fn end_reason(reason: &EndReason) -> String {
    match reason {
        EndReason::Left => "You left the call.".into(),
        EndReason::EndedForEveryone { .. } => "The host ended the call for everyone.".into(),
        EndReason::AppClosed => "Confab closed.".into(),
        EndReason::RoomFull => "That room is full.".into(),
        EndReason::WrongPassword => "Wrong room password (or the room needs one).".into(),
        EndReason::InvalidAddress { detail } => format!("That address is not valid ({detail})."),
        EndReason::Unreachable { .. } | EndReason::TimedOut { .. } => format!(
            "Cannot reach the server. Check the address and that the host is online.\n({reason})"
        ),
        EndReason::Refused { message, .. } => format!("The server refused: {message}."),
        EndReason::ServerLost { detail } => {
            format!("Lost the connection to the server and could not get it back ({detail}).")
        }
        EndReason::SignalingFailed { detail } => {
            format!("Something went wrong talking to the server ({detail}).")
        }
    }
}

/// A problem the engine reported while it kept running, for a toast or the lobby.
pub(crate) fn problem(problem: &Problem) -> String {
    match problem {
        Problem::AlreadyInCall => "You are already in a call; hang up first.".into(),
        Problem::NotInCall => "You are not in a call.".into(),
        Problem::JoinFailed(reason) | Problem::SignalingClosed(reason) => end_reason(reason),
        Problem::SourceFailed { kind, detail } => format!("{} failed: {detail}", kind.noun()),
        Problem::SourceStopped { kind, detail } => format!(
            "{} stopped ({detail}). Others will not {} you.",
            kind.noun(),
            if *kind == DeviceKind::Camera {
                "see"
            } else {
                "hear"
            }
        ),
        Problem::PeerSetup { name, detail } => {
            format!("Could not connect to {name} ({detail}).")
        }
        Problem::ChatNotDelivered { to } => {
            format!("Your message did not reach {}.", to.join(", "))
        }
        Problem::ChatNoRecipients { .. } => {
            "Nobody else is in the call yet, so your message was not sent.".into()
        }
    }
}

/// "1 person", "3 people".
pub(crate) fn people(n: usize) -> String {
    if n == 1 {
        "1 person".to_owned()
    } else {
        format!("{n} people")
    }
}

/// "1 person is", "3 people are".
pub(crate) fn people_are(n: usize) -> String {
    format!("{} {}", people(n), if n == 1 { "is" } else { "are" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use signaling_client::ErrorCode;

    #[test]
    fn counts_of_people_agree_in_number() {
        assert_eq!(people_are(1), "1 person is");
        assert_eq!(people_are(3), "3 people are");
        assert_eq!(people(2), "2 people");
    }

    #[test]
    fn refusals_read_as_sentences() {
        assert_eq!(end_reason(&EndReason::RoomFull), "That room is full.");
        assert!(end_reason(&EndReason::WrongPassword).starts_with("Wrong room password"));
        let refused = EndReason::Refused {
            code: ErrorCode::ServerFull,
            message: "the server is full".into(),
        };
        assert_eq!(
            end_reason(&refused),
            "The server refused: the server is full."
        );
    }

    #[test]
    fn unreachable_and_timeout_say_cannot_reach() {
        let unreachable = EndReason::Unreachable {
            url: "ws://10.0.0.9:8787".into(),
            detail: "connection refused".into(),
        };
        let text = end_reason(&unreachable);
        assert!(text.starts_with("Cannot reach the server"), "{text}");
        assert!(text.contains("ws://10.0.0.9:8787"), "{text}");
        let timeout = EndReason::TimedOut {
            url: "ws://x".into(),
            seconds: 5.0,
        };
        assert!(end_reason(&timeout).starts_with("Cannot reach the server"));
    }

    #[test]
    fn stopped_sources_say_what_others_miss() {
        let text = problem(&Problem::SourceStopped {
            kind: DeviceKind::Microphone,
            detail: "end of file".into(),
        });
        assert_eq!(
            text,
            "Microphone stopped (end of file). Others will not hear you."
        );
    }
}
