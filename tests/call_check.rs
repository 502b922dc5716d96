//! "Test my call" end to end: the check's real call (two engines, real UDP, a real signaling
//! server), through this computer only, through a server with a real coturn (STUN and TURN, the
//! test peer relay-only), against a server that is not there, with real sound devices (a
//! private PulseAudio daemon whose null sink's monitor is the microphone: the speaker's sound
//! reaches the microphone, as from a laptop's speakers, so the echo canceller has work to do),
//! and behind a real bottleneck (a network namespace whose nftables rule polices UDP; root only,
//! skipped with the reason elsewhere).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the test failing, with its message"
)]

use confab::call_check::report::{CheckReport, Part, Sources, Status};
use confab::call_check::{CheckOptions, CheckTarget, headless};
use confab_engine::testing::small_engine_config;
use confab_engine::{AudioInput, AudioOutput, VideoInput};
use confab_test_support::coturn::Coturn;
use confab_test_support::pulse::Pulse;
use signaling_server::{ServerConfig, TurnConfig};

/// The test pattern and the test tone, no speaker: the check's call path without devices.
fn test_sources() -> Sources {
    Sources {
        camera: Some("the test pattern".into()),
        microphone: Some("the test tone".into()),
        test_tone: true,
        speaker: None,
        max_video_kbps: 400,
    }
}

fn run(target: CheckTarget, seconds: f64) -> CheckReport {
    let mut config = small_engine_config("checker");
    config.video_input = VideoInput::Synthetic;
    config.audio_input = AudioInput::Synthetic;
    let options = CheckOptions {
        target,
        seconds,
        bind_addrs: Vec::new(),
        sources: test_sources(),
    };
    let report = headless::run(config, options, test_sources(), AudioOutput::None).unwrap();
    println!("{}", report.render_text());
    println!(
        "{}",
        serde_json::to_string_pretty(&report.measurements).unwrap()
    );
    report
}

fn row(r: &CheckReport, part: Part) -> (Status, &str) {
    let item = r.items.iter().find(|i| i.part == part).unwrap();
    (item.status, item.text.as_str())
}

#[test]
fn a_check_on_this_computer_sees_the_picture_and_hears_the_sound_at_the_far_end() {
    let r = run(CheckTarget::ThisComputer, 3.0);
    let m = &r.measurements;
    assert_eq!(row(&r, Part::Connection).0, Status::Good);
    // Camera → encoder → UDP → the test peer's decoder: pictures of the configured size.
    assert_eq!(row(&r, Part::Camera).0, Status::Good);
    assert!(m.frames_decoded >= 20, "{} pictures", m.frames_decoded);
    assert_eq!(m.picture, Some((320, 240)));
    assert_eq!(m.frames_black, 0);
    assert!(m.frames_still < m.frames_decoded / 4, "the pattern moves");
    // Microphone → the test peer's playout: the tone, loud.
    assert_eq!(row(&r, Part::Microphone).0, Status::Good);
    assert!(m.heard_ms > 1000 && m.heard_loudest_db > -30.0);
    // Nothing outside this computer was tried, and the result says so.
    assert_eq!(row(&r, Part::Network).0, Status::Skipped);
    assert_eq!(row(&r, Part::Upload).0, Status::Skipped);
    assert_eq!(row(&r, Part::Speaker).0, Status::Skipped);
    assert!(m.ice_servers.is_empty());
    assert_eq!(r.status, Status::Good);
}

#[test]
fn through_a_server_with_coturn_stun_turn_and_the_upload_through_the_relay_are_tested() {
    let turn = Coturn::start("check-secret");
    let mut config = ServerConfig::new(([127, 0, 0, 1], 0).into());
    config.turn = Some(TurnConfig {
        urls: vec![turn.url()],
        secret: "check-secret".into(),
        ttl: std::time::Duration::from_secs(600),
    });
    config.stun_urls = vec![format!("stun:{}", turn.addr())];
    let (_rt, server) = confab_test_support::signaling::start_server_runtime_with(config);
    let address = server.local_addr().to_string();
    let r = run(
        CheckTarget::Server {
            address: address.clone(),
            url: server.ws_url(),
        },
        6.0,
    );
    let m = &r.measurements;
    assert_eq!(row(&r, Part::Connection).0, Status::Good);
    assert!(row(&r, Part::Connection).1.contains(&address));
    // STUN answered (a server-reflexive address) and TURN gave a relay address.
    assert!(
        m.candidates.srflx > 0 && m.candidates.relay > 0,
        "{:?}",
        m.candidates
    );
    assert_eq!(row(&r, Part::Network).0, Status::Good, "{}", turn.log());
    // The test peer took relayed paths only, and the call still carried the media: the relay
    // works, and the upload was measured through it.
    assert!(m.far_relay_only && !m.relay_attempt_failed);
    assert!(m.frames_decoded >= 20);
    // Nothing limits the path: the estimate reached what the sender sends (400 kbit/s here), or
    // was still climbing to it.
    assert_eq!(
        row(&r, Part::Upload).0,
        Status::Good,
        "{}",
        row(&r, Part::Upload).1
    );
    assert!(row(&r, Part::Upload).1.starts_with("At least"));
    assert!(
        turn.log().contains("ALLOCATE"),
        "coturn saw no allocation: {}",
        turn.log()
    );
}

#[test]
fn a_server_that_is_not_there_is_worded_as_unreachable() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = run(
        CheckTarget::Server {
            address: closed.to_string(),
            url: format!("ws://{closed}/ws"),
        },
        2.0,
    );
    let (status, text) = row(&r, Part::Connection);
    assert_eq!(status, Status::Problem);
    assert!(
        text.contains(&closed.to_string()) && text.contains("Cannot reach the server"),
        "{text}"
    );
    assert_eq!(row(&r, Part::Camera).0, Status::Skipped);
    assert_eq!(r.status, Status::Problem);
}

/// `confab check` against the private PulseAudio daemon: the speaker is its null sink, the
/// microphone that sink's monitor, so everything the speaker plays reaches the microphone.
fn check_with_a_microphone_that_hears_the_speaker(pulse: &Pulse, extra: &[&str]) -> CheckReport {
    let mut args = vec![
        "check",
        "--json",
        "--bind",
        "127.0.0.1",
        "--camera",
        "none",
        "--speaker",
        "pulseaudio:confab_test",
        "--microphone",
        "pulseaudio:confab_test.monitor",
        "--seconds",
        "8",
    ];
    args.extend_from_slice(extra);
    let out = pulse.run(env!("CARGO_BIN_EXE_confab"), &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: CheckReport = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    println!("{}", report.render_text());
    println!(
        "{}",
        serde_json::to_string_pretty(&report.measurements).unwrap()
    );
    report
}

#[test]
fn echo_cancellation_keeps_the_speaker_out_of_what_the_others_hear() {
    let Some(pulse) = Pulse::start() else { return };
    // Without echo cancellation the test peer hears its own beeps come back, loud: the check
    // must say so (and this shows the speaker really reaches the microphone here).
    let r = check_with_a_microphone_that_hears_the_speaker(&pulse, &["--no-echo-cancellation"]);
    let (status, text) = row(&r, Part::Speaker);
    assert_eq!(status, Status::Problem, "{text}");
    assert!(text.contains("would hear themselves"), "{text}");
    let (raw_level, above) = r.measurements.echo.unwrap();
    assert!(
        above >= 12.0 && raw_level > -30.0,
        "{raw_level} dBFS, {above} dB"
    );

    // With it (the default), what comes back is too faint to hear.
    let r = check_with_a_microphone_that_hears_the_speaker(&pulse, &[]);
    let (status, text) = row(&r, Part::Speaker);
    let m = &r.measurements;
    assert!(
        m.played_ms > 4000.0,
        "the test sound played: {} ms",
        m.played_ms
    );
    assert_eq!(status, Status::Good, "{text}");
    let (level, _) = m.echo.unwrap();
    assert!(
        level < raw_level - 30.0,
        "echo cancellation took only {:.0} dB off the echo",
        raw_level - level
    );
}

/// A private network namespace (root only) in which every UDP datagram is policed to a rate by
/// an nftables rule: a real bottleneck, kernel-side. Deleted, with what runs in it, when dropped.
struct PolicedNamespace {
    name: String,
    children: Vec<std::process::Child>,
}

impl PolicedNamespace {
    /// `None` (and why, printed) where namespaces or nftables are not available.
    fn create(kbytes_per_second: u32) -> Option<Self> {
        let name = format!("confab-check-{}", std::process::id());
        let run = |args: &[&str]| {
            std::process::Command::new(args[0])
                .args(&args[1..])
                .output()
                .map(|o| {
                    (
                        o.status.success(),
                        String::from_utf8_lossy(&o.stderr).into_owned(),
                    )
                })
        };
        match run(&["ip", "netns", "add", &name]) {
            Ok((true, _)) => {}
            other => {
                eprintln!(
                    "SKIP: cannot make a network namespace (root and iproute2 needed): {other:?}"
                );
                return None;
            }
        }
        let ns = Self {
            name,
            children: Vec::new(),
        };
        let limit = format!("{kbytes_per_second}");
        for rule in [
            vec!["ip", "link", "set", "lo", "up"],
            vec!["nft", "add", "table", "inet", "t"],
            vec![
                "nft",
                "add",
                "chain",
                "inet",
                "t",
                "in",
                "{ type filter hook input priority 0; }",
            ],
            vec![
                "nft",
                "add",
                "rule",
                "inet",
                "t",
                "in",
                "udp",
                "dport",
                "1-65535",
                "limit",
                "rate",
                "over",
                &limit,
                "kbytes/second",
                "drop",
            ],
        ] {
            let mut args = vec!["ip", "netns", "exec", &ns.name];
            args.extend(rule.iter().copied());
            match run(&args) {
                Ok((true, _)) => {}
                other => {
                    eprintln!(
                        "SKIP: {rule:?} failed in the namespace (nftables needed): {other:?}"
                    );
                    return None;
                }
            }
        }
        Some(ns)
    }

    /// Starts `program` inside the namespace; it is killed when the namespace goes.
    fn spawn(&mut self, program: &str, args: &[&str]) {
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(child);
    }

    /// Runs `program` inside the namespace to its end.
    fn output(&self, program: &str, args: &[&str]) -> std::process::Output {
        std::process::Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for PolicedNamespace {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

/// The upload figure is what the path allows, not where the estimate started: coturn, the
/// server and `confab check` (720p, starting at 1.5 Mbit/s) in a namespace whose UDP is policed
/// to 100 kB/s. Both legs of the relayed call (to the relay and from it) share that, so the
/// media gets well under 1 Mbit/s; the check must say so (a warning with the figure), where the
/// highest estimate seen would have said the start bitrate.
#[test]
fn the_upload_through_a_relay_behind_a_bottleneck_is_what_the_bottleneck_allows() {
    let Some(mut ns) = PolicedNamespace::create(100) else {
        return;
    };
    let port = |base: u16| base + (std::process::id() % 500) as u16;
    let (turn_port, server_port) = (port(20_000), port(21_000));
    let relay_min = port(30_000) * 2;
    let log_dir = std::env::temp_dir().join(format!("confab-check-turn-{}", std::process::id()));
    std::fs::create_dir_all(&log_dir).unwrap();
    ns.spawn(
        "turnserver",
        &[
            "-n",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            &format!("--listening-port={turn_port}"),
            &format!("--min-port={relay_min}"),
            &format!("--max-port={}", relay_min + 63),
            "--use-auth-secret",
            "--static-auth-secret=S",
            "--realm=confab.test",
            "--allow-loopback-peers",
            "--no-tls",
            "--no-dtls",
            "--no-tcp",
            "--no-cli",
            &format!("--log-file={}", log_dir.join("turn.log").display()),
            &format!("--pidfile={}", log_dir.join("turn.pid").display()),
            &format!("--userdb={}", log_dir.join("turndb").display()),
        ],
    );
    ns.spawn(
        env!("CARGO_BIN_EXE_confab"),
        &[
            "serve",
            "--listen",
            &format!("127.0.0.1:{server_port}"),
            "--turn-url",
            &format!("turn:127.0.0.1:{turn_port}"),
            "--turn-secret",
            "S",
            "--stun-url",
            &format!("stun:127.0.0.1:{turn_port}"),
        ],
    );
    // Wait for the server to answer (inside the namespace) before checking through it.
    let address = format!("127.0.0.1:{server_port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ns
        .output(
            "bash",
            &["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{server_port}")],
        )
        .status
        .success()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = ns.output(
        env!("CARGO_BIN_EXE_confab"),
        &[
            "check",
            &address,
            "--json",
            "--bind",
            "127.0.0.1",
            "--camera",
            "test",
            "--microphone",
            "test",
            "--speaker",
            "none",
            "--seconds",
            "10",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: CheckReport = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    println!("{}", report.render_text());
    println!(
        "{}",
        serde_json::to_string_pretty(&report.measurements).unwrap()
    );
    let m = &report.measurements;
    assert!(m.relay_tested, "the relay carried the test call");
    let (status, text) = row(&report, Part::Upload);
    assert!(
        m.estimate_kbps > 0.0 && m.estimate_kbps < 1000.0,
        "{} kbit/s through a 100 kB/s bottleneck shared by both legs",
        m.estimate_kbps
    );
    assert_eq!(status, Status::Warning, "{text}");
    assert!(
        m.estimate_held_back,
        "the bottleneck pushed the estimate down"
    );
    let _ = std::fs::remove_dir_all(&log_dir);
}
