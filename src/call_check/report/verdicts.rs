//! The sentence for each part of the call path, from the check's figures: one function per
//! [`Part`], each a pure function of [`Measurements`] (and what was used and where).

use super::{
    CheckItem, ECHO_AUDIBLE_DBFS, ECHO_STANDS_OUT_DB, JoinFailure, Measurements, Part, Sources,
    Status, Through, VOICE_DBFS,
};
use crate::call_check::is_turn_url;
use crate::wording::end_reason;
use confab_engine::devices::DeviceKind;

fn item(part: Part, status: Status, text: impl Into<String>) -> CheckItem {
    CheckItem {
        part,
        status,
        text: text.into(),
    }
}

pub(super) fn connection(through: &Through, m: &Measurements) -> CheckItem {
    let server = match through {
        Through::ThisComputer => "the test server on this computer".to_owned(),
        Through::Server { address } => address.clone(),
    };
    if let Some(e) = &m.far_end_failure {
        return item(
            Part::Connection,
            Status::Problem,
            format!("The test peer could not start on this computer ({e})."),
        );
    }
    match (&m.join_failure, &m.ended_early, m.connected_ms) {
        (Some(JoinFailure::Ended(reason)), _, _) => item(
            Part::Connection,
            Status::Problem,
            format!(
                "Could not get into a call on {server}. {}",
                end_reason(reason)
            ),
        ),
        (Some(JoinFailure::NoAnswer { seconds }), _, _) => item(
            Part::Connection,
            Status::Problem,
            format!("No answer from {server} within {seconds} s."),
        ),
        (None, Some(reason), _) => item(
            Part::Connection,
            Status::Problem,
            format!("The test call ended early. {}", end_reason(reason)),
        ),
        (None, None, Some(ms)) => item(
            Part::Connection,
            Status::Good,
            format!(
                "Reached {server} and connected to the test peer in {:.1} s.",
                ms / 1000.0
            ),
        ),
        (None, None, None) => item(
            Part::Connection,
            Status::Problem,
            format!(
                "Reached {server}, but no connection to the test peer came up: calls would not \
                 connect either. A firewall may block UDP."
            ),
        ),
    }
}

pub(super) fn network(through: &Through, m: &Measurements) -> CheckItem {
    if *through == Through::ThisComputer {
        return item(
            Part::Network,
            Status::Skipped,
            "Tested on this computer only. Enter the address of the server you call through \
             (under \"Join someone's call\") to test STUN and TURN too.",
        );
    }
    let stun = m.ice_servers.iter().any(|u| u.starts_with("stun:"));
    let turn = m.ice_servers.iter().any(|u| is_turn_url(u));
    let c = &m.candidates;
    if !stun && !turn {
        return item(
            Part::Network,
            Status::Warning,
            "This server hands out no STUN or TURN server: only people who can reach this \
             computer directly (on the same network, or through a forwarded port) can call you.",
        );
    }
    let public = c.public_address.as_deref().map(address_only);
    // What the relay did: carried the test call, gave an address but did not carry it, or
    // gave nothing.
    let relay = if m.relay_tested {
        Relay::Carries
    } else if c.relay > 0 {
        Relay::AddressOnly
    } else {
        Relay::None
    };
    match (public, relay) {
        (Some(ip), Relay::Carries) => item(
            Part::Network,
            Status::Good,
            format!(
                "Direct calls should work: the internet sees you at {ip}. If someone's network \
                 blocks them, the server's relay carries the call (tested: it works)."
            ),
        ),
        (None, Relay::Carries) => item(
            Part::Network,
            Status::Warning,
            "The STUN server did not answer, but the relay works (tested): calls with people \
             outside your network will go through the server's relay.",
        ),
        (_, Relay::AddressOnly) => item(
            Part::Network,
            Status::Warning,
            format!(
                "{}The TURN relay gave an address, but a call through it did not connect: \
                 people behind strict firewalls may not reach you.",
                public.map_or(String::new(), |ip| format!(
                    "Direct calls should work (the internet sees you at {ip}). "
                ))
            ),
        ),
        (Some(ip), Relay::None) if turn => item(
            Part::Network,
            Status::Warning,
            format!(
                "Direct calls should work (the internet sees you at {ip}), but the TURN relay \
                 did not answer: people behind strict firewalls may not reach you."
            ),
        ),
        (Some(ip), Relay::None) => item(
            Part::Network,
            Status::Good,
            format!(
                "Direct calls should work: the internet sees you at {ip}. (This server has no \
                 relay for networks that block them.)"
            ),
        ),
        (None, Relay::None) => item(
            Part::Network,
            Status::Problem,
            "Neither STUN nor TURN answered: calls with people outside your network will \
             probably fail. A firewall may block UDP to the server.",
        ),
    }
}

/// What the check found of the server's TURN relay.
enum Relay {
    /// The relay-only test peer connected through it.
    Carries,
    /// It gave a relay address, but no call through it connected.
    AddressOnly,
    /// No relay address.
    None,
}

/// `IP` of an `IP:port`.
fn address_only(a: &str) -> &str {
    a.rsplit_once(':').map_or(a, |(ip, _)| ip)
}

pub(super) fn camera(sources: &Sources, m: &Measurements) -> CheckItem {
    let Some(name) = &sources.camera else {
        return item(
            Part::Camera,
            Status::Skipped,
            "No camera chosen: the others see your initials.",
        );
    };
    let problem = m.problem(DeviceKind::Camera);
    if m.frames_decoded == 0 {
        let why = match (problem, m.frames_sent) {
            (Some(p), _) => p.to_owned(),
            (None, 0) => format!("{name} gave no picture."),
            (None, _) => "Pictures were sent but none could be decoded.".to_owned(),
        };
        return item(Part::Camera, Status::Problem, why);
    }
    let size = m
        .picture
        .map_or(String::new(), |(w, h)| format!("{w}x{h}, "));
    let shown = format!(
        "The others see you: {size}{:.0} pictures a second from {name}.",
        m.fps_decoded
    );
    let half = m.frames_decoded / 2;
    if m.frames_black > half {
        item(
            Part::Camera,
            Status::Warning,
            format!(
                "{shown} But the picture is black: is the lens covered, or is another app \
                 using the camera?"
            ),
        )
    } else if m.frames_still > half + m.frames_decoded / 4 {
        item(
            Part::Camera,
            Status::Warning,
            format!("{shown} But the picture does not move: the camera may be stuck."),
        )
    } else {
        item(Part::Camera, Status::Good, shown)
    }
}

pub(super) fn microphone(sources: &Sources, m: &Measurements) -> CheckItem {
    let Some(name) = &sources.microphone else {
        return item(
            Part::Microphone,
            Status::Skipped,
            "No microphone chosen: nobody will hear you.",
        );
    };
    if m.heard_ms == 0 {
        let why = m.problem(DeviceKind::Microphone).map_or_else(
            || format!("No sound from {name} reached the others."),
            str::to_owned,
        );
        return item(Part::Microphone, Status::Problem, why);
    }
    if m.heard_loudest_db >= VOICE_DBFS {
        item(
            Part::Microphone,
            Status::Good,
            format!(
                "The others hear you: {name} reached them (loudest {:.0} dBFS).",
                m.heard_loudest_db
            ),
        )
    } else {
        item(
            Part::Microphone,
            Status::Warning,
            format!(
                "{name} works, but the test heard no voice. Speak during the test, or check \
                 the microphone's volume and that it is not muted in the system."
            ),
        )
    }
}

pub(super) fn speaker(sources: &Sources, m: &Measurements) -> CheckItem {
    let Some(name) = &sources.speaker else {
        return item(
            Part::Speaker,
            Status::Skipped,
            "No speaker chosen: you will not hear the others.",
        );
    };
    if let Some(p) = m.problem(DeviceKind::Speaker) {
        return item(Part::Speaker, Status::Problem, p);
    }
    if m.played_ms <= 0.0 {
        return item(
            Part::Speaker,
            Status::Problem,
            "The test sound reached this computer but was not played.",
        );
    }
    let played = format!("The test sound (a tone, noise and beeps) played on {name}.");
    if sources.test_tone || sources.microphone.is_none() {
        // The test tone beeps like the test peer, and without a microphone nothing comes back:
        // there is no echo to measure either way.
        return item(
            Part::Speaker,
            Status::Good,
            format!("{played} (Echo is tested with a microphone.)"),
        );
    }
    let Some((level, above)) = m.echo else {
        return item(Part::Speaker, Status::Good, played);
    };
    if above >= ECHO_STANDS_OUT_DB && level >= ECHO_AUDIBLE_DBFS {
        let fix = if m.echo_cancellation {
            "Use headphones, or turn the speaker down."
        } else {
            "Turn echo cancellation on (Settings), or use headphones."
        };
        return item(
            Part::Speaker,
            Status::Problem,
            format!(
                "{played} Your microphone picked it up and the others would hear themselves \
                 echo. {fix}"
            ),
        );
    }
    let verdict = if m.echo_cancellation {
        "Echo cancellation works: none of it came back to the others."
    } else {
        "None of it came back to the others (headphones?)."
    };
    item(Part::Speaker, Status::Good, format!("{played} {verdict}"))
}

pub(super) fn upload(through: &Through, sources: &Sources, m: &Measurements) -> CheckItem {
    // A test peer that takes relayed paths only receives everything through the relay, whatever
    // our own end of the path is.
    let via_relay = m.path.as_deref() == Some("relay") || m.far_relay_only;
    if !via_relay {
        let why = if *through == Through::ThisComputer {
            "Not measured: the test call stayed on this computer. Enter your server's address \
             to measure through its relay."
        } else {
            "Not measured: the server has no working relay to measure through, so the test \
             call stayed on this computer."
        };
        return item(Part::Upload, Status::Skipped, why);
    }
    let mbit = m.estimate_kbps / 1000.0;
    let ceiling = f64::from(sources.max_video_kbps);
    if ceiling > 0.0 && m.estimate_kbps >= ceiling * 0.9 {
        return item(
            Part::Upload,
            Status::Good,
            format!(
                "At least {mbit:.1} Mbit/s through the relay: as much video as your quality \
                 setting sends."
            ),
        );
    }
    if !m.estimate_held_back {
        // It only climbed from the start bitrate: the path did not limit it.
        return item(
            Part::Upload,
            Status::Good,
            format!(
                "At least {mbit:.1} Mbit/s through the relay (nothing held the test call \
                 back)."
            ),
        );
    }
    let (status, quality) = match m.estimate_kbps {
        k if k >= 2500.0 => (Status::Good, "HD (720p) video"),
        k if k >= 1200.0 => (Status::Good, "540p video"),
        k if k >= 600.0 => (Status::Warning, "360p video only"),
        _ => (
            Status::Warning,
            "a small, choppy picture: close other uploads, or move closer to the Wi-Fi",
        ),
    };
    item(
        Part::Upload,
        status,
        format!("About {mbit:.1} Mbit/s through the relay: enough for {quality}."),
    )
}
