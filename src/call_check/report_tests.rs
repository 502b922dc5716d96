//! The call check's sentences from figures: each verdict and the thresholds between them.

use super::*;
use confab_engine::EndReason;

fn sources() -> Sources {
    Sources {
        camera: Some("HD Webcam".into()),
        microphone: Some("USB Mic".into()),
        test_tone: false,
        speaker: Some("Speakers".into()),
        max_video_kbps: 2500,
    }
}

fn server() -> Through {
    Through::Server {
        address: "calls.example.org:8787".into(),
    }
}

/// A check that went well through a server with STUN and TURN, via the relay.
fn good() -> Measurements {
    Measurements {
        joined_ms: Some(40.0),
        connected_ms: Some(900.0),
        ice_servers: vec![
            "stun:calls.example.org:3478".into(),
            "turn:calls.example.org:3478".into(),
        ],
        candidates: LocalCandidates {
            host: 2,
            srflx: 1,
            relay: 1,
            public_address: Some("203.0.113.7:50000".into()),
            relay_address: Some("198.51.100.2:49152".into()),
        },
        path: Some("host".into()),
        far_relay_only: true,
        relay_tested: true,
        estimate_kbps: 2500.0,
        frames_sent: 240,
        frames_decoded: 238,
        picture: Some((1280, 720)),
        fps_decoded: 30.0,
        seconds: 8.0,
        heard_loudest_db: -20.0,
        heard_ms: 8000,
        echo: Some((-80.0, 2.0)),
        erle_db: Some(25.0),
        echo_cancellation: true,
        played_ms: 8000.0,
        ..Measurements::default()
    }
}

fn row(r: &CheckReport, part: Part) -> &CheckItem {
    r.items
        .iter()
        .find(|i| i.part == part)
        .unwrap_or_else(|| unreachable!())
}

#[test]
fn a_good_call_is_worded_as_working_in_every_row() {
    let r = CheckReport::from_measurements(server(), sources(), good());
    assert_eq!(r.status, Status::Good, "{}", r.render_text());
    assert_eq!(r.summary, "Your call works.");
    assert!(row(&r, Part::Network).text.contains("203.0.113.7"));
    assert!(
        !row(&r, Part::Network).text.contains("50000"),
        "the IP, not the port"
    );
    assert!(row(&r, Part::Camera).text.contains("1280x720"));
    assert!(
        row(&r, Part::Speaker)
            .text
            .contains("Echo cancellation works")
    );
    assert!(row(&r, Part::Upload).text.contains("At least 2.5 Mbit/s"));
    assert_eq!(r.items.len(), 6);
    assert!(
        r.details()
            .iter()
            .any(|(k, v)| *k == "Path used" && v == "host")
    );
}

#[test]
fn an_echo_the_others_would_hear_is_a_problem_with_the_fix() {
    let mut m = good();
    m.echo = Some((-35.0, 30.0));
    let r = CheckReport::from_measurements(server(), sources(), m.clone());
    assert_eq!(row(&r, Part::Speaker).status, Status::Problem);
    assert!(row(&r, Part::Speaker).text.contains("headphones"));
    assert_eq!(r.status, Status::Problem);
    m.echo_cancellation = false;
    let r = CheckReport::from_measurements(server(), sources(), m.clone());
    assert!(
        row(&r, Part::Speaker)
            .text
            .contains("Turn echo cancellation on")
    );
    // A periodic trace too faint to hear is not an echo.
    m.echo = Some((-75.0, 30.0));
    let r = CheckReport::from_measurements(server(), sources(), m.clone());
    assert_eq!(row(&r, Part::Speaker).status, Status::Good);
    // The test tone beeps like the test peer: its "echo" is its own beeps, never a verdict.
    m.echo = Some((-10.0, 40.0));
    let tone = Sources {
        microphone: Some("the test tone".into()),
        test_tone: true,
        ..sources()
    };
    let r = CheckReport::from_measurements(server(), tone, m.clone());
    assert_eq!(row(&r, Part::Speaker).status, Status::Good);
    assert!(
        row(&r, Part::Speaker)
            .text
            .contains("Echo is tested with a microphone")
    );
    // Nothing measured: no claim about echo either way.
    m.echo = None;
    let r = CheckReport::from_measurements(server(), sources(), m);
    assert!(!row(&r, Part::Speaker).text.contains("came back"));
}

#[test]
fn no_connection_says_so_and_leaves_the_media_untested() {
    let mut m = good();
    m.connected_ms = None;
    let r = CheckReport::from_measurements(server(), sources(), m);
    assert_eq!(row(&r, Part::Connection).status, Status::Problem);
    assert!(row(&r, Part::Connection).text.contains("firewall"));
    assert_eq!(row(&r, Part::Camera).status, Status::Skipped);
    // What the candidates say about STUN/TURN is still worth telling.
    assert_eq!(row(&r, Part::Network).status, Status::Good);

    let failed = Measurements {
        join_failure: Some(JoinFailure::Ended(EndReason::RoomFull)),
        ..Measurements::default()
    };
    let r = CheckReport::from_measurements(server(), sources(), failed);
    let text = &row(&r, Part::Connection).text;
    assert!(
        text.contains("calls.example.org") && text.contains("That room is full."),
        "{text}"
    );
    assert_eq!(r.status, Status::Problem);

    // The server dropped the call after joining: said as such, not blamed on a firewall.
    let mut m = good();
    m.ended_early = Some(EndReason::ServerLost {
        detail: "reset".into(),
    });
    let r = CheckReport::from_measurements(server(), sources(), m);
    let text = &row(&r, Part::Connection).text;
    assert!(
        text.starts_with("The test call ended early.") && !text.contains("firewall"),
        "{text}"
    );

    let mut m = good();
    m.far_end_failure = Some("no UDP socket".into());
    let r = CheckReport::from_measurements(server(), sources(), m);
    assert!(
        row(&r, Part::Connection)
            .text
            .contains("The test peer could not start")
    );
}

#[test]
fn stun_and_turn_answers_decide_the_network_row() {
    let cases = [
        // (stun answered, relay answered, status, words)
        (true, true, Status::Good, "relay carries the call"),
        (true, false, Status::Warning, "TURN relay did not answer"),
        (
            false,
            true,
            Status::Warning,
            "will go through the server's relay",
        ),
        (false, false, Status::Problem, "probably fail"),
    ];
    for (stun, relay, status, words) in cases {
        let mut m = good();
        if !stun {
            m.candidates.srflx = 0;
            m.candidates.public_address = None;
        }
        if !relay {
            m.candidates.relay = 0;
            m.candidates.relay_address = None;
            m.far_relay_only = false;
            m.relay_tested = false;
        }
        let r = CheckReport::from_measurements(server(), sources(), m);
        let network = row(&r, Part::Network);
        assert_eq!(
            network.status, status,
            "stun {stun} relay {relay}: {}",
            network.text
        );
        assert!(network.text.contains(words), "{}", network.text);
    }
    // The relay gave an address but the relay-only test call did not connect through it.
    let mut m = good();
    m.relay_tested = false;
    m.relay_attempt_failed = true;
    m.far_relay_only = false;
    let r = CheckReport::from_measurements(server(), sources(), m);
    assert_eq!(row(&r, Part::Network).status, Status::Warning);
    assert!(row(&r, Part::Network).text.contains("did not connect"));
    assert!(!row(&r, Part::Network).text.contains("tested: it works"));
    let mut m = good();
    m.ice_servers.clear();
    let r = CheckReport::from_measurements(server(), sources(), m);
    assert!(row(&r, Part::Network).text.contains("no STUN or TURN"));
    let r = CheckReport::from_measurements(Through::ThisComputer, sources(), good());
    assert_eq!(row(&r, Part::Network).status, Status::Skipped);
}

#[test]
fn the_upload_is_measured_only_through_the_relay() {
    let mut m = good();
    m.far_relay_only = false;
    m.relay_tested = false;
    let r = CheckReport::from_measurements(Through::ThisComputer, sources(), m.clone());
    assert_eq!(row(&r, Part::Upload).status, Status::Skipped);
    assert!(
        row(&r, Part::Upload)
            .text
            .contains("stayed on this computer")
    );
    // Our end of the path is a relay (the test peer's end is then direct).
    m.path = Some("relay".into());
    m.estimate_held_back = true;
    m.estimate_kbps = 900.0;
    let r = CheckReport::from_measurements(server(), sources(), m.clone());
    assert_eq!(row(&r, Part::Upload).status, Status::Warning);
    assert!(row(&r, Part::Upload).text.contains("0.9 Mbit/s"));
    m.estimate_kbps = 1800.0;
    let r = CheckReport::from_measurements(server(), sources(), m.clone());
    assert_eq!(row(&r, Part::Upload).status, Status::Good);
    assert!(row(&r, Part::Upload).text.contains("540p"));
    // Never pushed below where it started: a floor, not the path's limit.
    m.estimate_kbps = 400.0;
    m.estimate_held_back = false;
    let r = CheckReport::from_measurements(server(), sources(), m);
    assert_eq!(row(&r, Part::Upload).status, Status::Good);
    assert!(row(&r, Part::Upload).text.contains("At least 0.4 Mbit/s"));
}

#[test]
fn camera_and_microphone_failures_name_the_cause() {
    let mut m = good();
    m.frames_black = 200;
    let r = CheckReport::from_measurements(server(), sources(), m.clone());
    assert_eq!(row(&r, Part::Camera).status, Status::Warning);
    assert!(row(&r, Part::Camera).text.contains("black"));
    m.frames_black = 0;
    m.frames_decoded = 0;
    m.frames_sent = 0;
    m.device_problems.push(DeviceNotice {
        kind: DeviceKind::Camera,
        state: confab_engine::devices::DeviceState::Lost,
        device: "HD Webcam".into(),
        message: "Camera \"HD Webcam\" stopped".into(),
    });
    let r = CheckReport::from_measurements(server(), sources(), m.clone());
    assert_eq!(row(&r, Part::Camera).status, Status::Problem);
    assert_eq!(row(&r, Part::Camera).text, "Camera \"HD Webcam\" stopped");
    m.heard_loudest_db = -70.0;
    let r = CheckReport::from_measurements(server(), sources(), m.clone());
    assert_eq!(row(&r, Part::Microphone).status, Status::Warning);
    assert!(row(&r, Part::Microphone).text.contains("heard no voice"));
    m.heard_ms = 0;
    let r = CheckReport::from_measurements(server(), sources(), m);
    assert_eq!(row(&r, Part::Microphone).status, Status::Problem);
    let none = Sources {
        camera: None,
        microphone: None,
        speaker: None,
        ..sources()
    };
    let r = CheckReport::from_measurements(server(), none, good());
    for part in [Part::Camera, Part::Microphone, Part::Speaker] {
        assert_eq!(row(&r, part).status, Status::Skipped);
    }
}
