//! `confab check`: "Test my call" from a terminal (the same check as the app's lobby button),
//! with the devices chosen on the command line.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Result, bail};
use confab::call_check::report::{Sources, Status};
use confab::call_check::{CheckOptions, CheckTarget, device_name, headless};
use confab_engine::devices::{DEFAULT_DEVICE, enumerate};
use confab_engine::{AudioInput, AudioOutput, EngineConfig, VideoInput, VideoSettings};

/// Arguments of `confab check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The server you call through: HOST:PORT, a ws(s):// URL or a confab:// link. Its STUN and
    /// TURN servers are tested too, and the upload speed through its relay. Without it the
    /// check runs on a private server on this computer.
    #[arg(value_name = "ADDRESS")]
    address: Option<String>,
    /// Camera: an id from `confab devices`, `test` (the moving test pattern) or `none`.
    /// Default: the first camera found, else none.
    #[arg(long)]
    camera: Option<String>,
    /// Microphone: an id from `confab devices`, `default`, `test` (a test tone) or `none`.
    #[arg(long, default_value = DEFAULT_DEVICE)]
    microphone: String,
    /// Speaker: an id from `confab devices`, `default` or `none`.
    #[arg(long, default_value = DEFAULT_DEVICE)]
    speaker: String,
    /// Seconds of media to measure once connected.
    #[arg(long, default_value_t = 8.0)]
    seconds: f64,
    /// Turn echo cancellation off (to hear what it does).
    #[arg(long)]
    no_echo_cancellation: bool,
    /// Local address for ICE (UDP); 0.0.0.0 lets the OS pick each interface.
    #[arg(long, default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs the check and prints its result; fails when something in the call does not work.
pub fn check(args: &CheckArgs) -> Result<()> {
    if !(1.0..=120.0).contains(&args.seconds) {
        bail!("--seconds must be between 1 and 120");
    }
    let target = match &args.address {
        None => CheckTarget::ThisComputer,
        Some(address) => {
            let parsed =
                confab::address::parse_join_address(address).map_err(anyhow::Error::msg)?;
            CheckTarget::Server {
                address: address.clone(),
                url: parsed.url,
            }
        }
    };
    let devices = enumerate();
    let video = VideoSettings::default();
    let mut config = EngineConfig::new("Confab check");
    config.video = video;
    config.bind_addrs = vec![SocketAddr::new(args.bind, 0)];
    config.preview = false;
    config.processing.echo_cancellation = !args.no_echo_cancellation;
    let camera = args
        .camera
        .clone()
        .or_else(|| devices.cameras.first().map(|c| c.id.clone()));
    let (video_input, camera_name) = match camera.as_deref() {
        None | Some("none") => (VideoInput::None, None),
        Some("test") => (VideoInput::Synthetic, Some("the test pattern".to_owned())),
        Some(id) => (
            VideoInput::Camera(id.to_owned()),
            Some(device_name(&devices.cameras, id, "camera")),
        ),
    };
    let (audio_input, microphone, test_tone) = match args.microphone.as_str() {
        "none" => (AudioInput::None, None, false),
        "test" => (
            AudioInput::Synthetic,
            Some("the test tone".to_owned()),
            true,
        ),
        id => (
            AudioInput::Microphone(id.to_owned()),
            Some(device_name(&devices.microphones, id, "microphone")),
            false,
        ),
    };
    let (output, speaker) = match args.speaker.as_str() {
        "none" => (AudioOutput::None, None),
        id => (
            AudioOutput::Speaker(id.to_owned()),
            Some(device_name(&devices.speakers, id, "speaker")),
        ),
    };
    config.video_input = video_input;
    config.audio_input = audio_input;
    let sources = Sources {
        camera: camera_name,
        microphone,
        test_tone,
        speaker,
        max_video_kbps: video.max_kbps,
    };
    let options = CheckOptions {
        target,
        seconds: args.seconds,
        bind_addrs: Vec::new(),
        sources: sources.clone(),
    };
    if !args.json {
        eprintln!(
            "Testing your call for about {:.0} s: say a few words; the beeps are the test peer.",
            args.seconds + 2.0
        );
    }
    let report = headless::run(config, options, sources, output)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    if report.status == Status::Problem {
        bail!("{}", report.summary);
    }
    Ok(())
}
