//! `confab`: the desktop video-call app and its command-line tools.
// A release build on Windows is a GUI program: no console window behind the app.
#![cfg_attr(all(windows, not(debug_assertions)), windows_subsystem = "windows")]
//!
//! Thin on purpose: parses the command line, sets up logging, and hands over to the library
//! crates. With no subcommand it opens the desktop app (or, with no display, runs the headless
//! loopback call); with a `confab://HOST:PORT/ROOM` link it opens the app straight into that
//! room. Subcommands: `gui`, `serve` (the signaling server), `loopback` (a measured call between
//! two in-process engines), `join` (one headless engine in any room), `devices` and `sound-check`
//! (what devices Confab sees, and whether sound works end to end), `check` (the app's "Test my
//! call": a short real call to a test peer, worded).
//!
//! The desktop app logs to a file in the platform's log directory; everything else to stderr
//! (see `logging`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use confab::app_dirs::AppDirs;
use signaling_server::{Limits, ServerConfig, SignalingServer, TlsFiles, TurnConfig};

mod check_cli;
mod cli_docs;
mod devices_cli;
mod join;
mod logging;

/// Confab: open, end-to-end encrypted video calls on the desktop.
#[derive(Debug, Parser)]
#[command(name = "confab", version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    /// Open the app and join this room: a confab://HOST:PORT/ROOM link.
    #[arg(value_name = "LINK", value_parser = confab_scheme)]
    link: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The top-level positional must at least be a `confab:` link (a mistyped subcommand is not
/// taken for one); whether the link is complete is the app's to explain.
fn confab_scheme(s: &str) -> Result<String, String> {
    let scheme = s.trim_start().get(..7).unwrap_or_default();
    if scheme.eq_ignore_ascii_case("confab:") {
        Ok(s.to_owned())
    } else {
        Err("neither a subcommand nor a confab://HOST:PORT/ROOM link (see --help)".into())
    }
}

/// The command line, with the versions of the media libraries in `--version` and the links,
/// files and environment in `--help`.
fn cli_command() -> clap::Command {
    Cli::command()
        .long_version(confab::versions::long_version())
        .after_long_help(cli_docs::help_epilogue())
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open the desktop app (the default when a display is available).
    Gui(GuiArgs),
    /// Run the signaling server that lets participants find each other.
    Serve(ServeArgs),
    /// Run a complete call between two in-process peers over real UDP and print a measured
    /// report; exits non-zero if the call was unhealthy.
    Loopback(LoopbackArgs),
    /// Join a room on any signaling server with one headless engine and report what it receives.
    Join(JoinArgs),
    /// List the cameras, microphones and speakers Confab can use.
    Devices(devices_cli::DevicesArgs),
    /// Play a tone through a speaker and record it with a microphone: does sound work?
    SoundCheck(devices_cli::SoundCheckArgs),
    /// Test my call: a short real call through this computer's camera, microphone, speaker
    /// and network to a test peer, and what works, in plain words; exits non-zero when
    /// something does not.
    Check(check_cli::CheckArgs),
    /// Write the man pages (confab.1, confab-SUBCOMMAND.1) into a directory (packaging).
    #[command(hide = true)]
    Manpages {
        /// Where to write them.
        out_dir: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct GuiArgs {
    /// Join this call right away: HOST:PORT, ws(s):// URL, or a confab://HOST:PORT/ROOM link.
    #[arg(long)]
    join: Option<String>,
    /// Room to join with --join (a confab:// link names its own).
    #[arg(long)]
    room: Option<String>,
}

#[derive(Debug, clap::Args)]
struct LoopbackArgs {
    /// Seconds of call to measure.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Video size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720", value_parser = parse_resolution)]
    resolution: (u32, u32),
    /// Frames per second.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Video bitrate (start and ceiling), kbit/s.
    #[arg(long, default_value_t = 2500)]
    bitrate_kbps: u32,
    /// Send this Y4M file instead of the test pattern.
    #[arg(long)]
    video_file: Option<PathBuf>,
    /// Send this WAV file instead of the beeping tone.
    #[arg(long)]
    audio_file: Option<PathBuf>,
    /// Put a simulated network between the two engines: a profile (wifi, lossy, 3g, congested)
    /// or items such as loss=5%,burst=4,delay=40ms,jitter=15ms,rate=800kbit,outage=3s@8s
    /// (--help lists them all).
    #[arg(long, value_name = "PROFILE_OR_SPEC", long_help = network_help())]
    network: Option<confab_engine::netsim::NetworkSpec>,
    /// Seed of the simulated network's random decisions (default: random; the report prints
    /// it, and the same seed replays the same decisions).
    #[arg(long, requires = "network")]
    seed: Option<u64>,
    /// Alice also shares a screen (the synthetic 1920x1080 desktop: text, lines, a moving
    /// cursor, frame markers) once connected; the report adds its figures (`screen`).
    #[arg(long)]
    screen_share: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// `--network`'s long help: the grammar and the profiles.
fn network_help() -> String {
    format!(
        "Put a simulated network between the two engines: every UDP datagram of the call, each \
         direction on its own, crosses it. Freezes it causes are reported, not failures.\n\n{}\n\n{}",
        confab_engine::netsim::spec::SPEC_HELP,
        confab_engine::netsim::spec::profiles_help()
    )
}

#[derive(Debug, clap::Args)]
struct JoinArgs {
    /// Where to join, as for the app: HOST:PORT (what "Host a call" shows), a ws(s):// URL
    /// (/ws is added to a bare host), or a confab://HOST:PORT/ROOM link.
    #[arg(value_name = "ADDRESS")]
    address: String,
    /// Room to join (optional when ADDRESS is a link that names it).
    room: Option<String>,
    /// Display name.
    #[arg(long, default_value = "confab-headless")]
    name: String,
    /// Room password.
    #[arg(long)]
    password: Option<String>,
    /// Accepted for older scripts: `confab join` always runs without a window (the app joins
    /// with `confab --join ADDRESS --room ROOM`).
    #[arg(long)]
    headless: bool,
    /// Send the synthetic test pattern and beeping tone (the default when no file is given).
    #[arg(long, conflicts_with = "video_file")]
    fake_media: bool,
    /// Send this Y4M file as video.
    #[arg(long)]
    video_file: Option<PathBuf>,
    /// Share a screen once in the room: the main monitor of $DISPLAY (X11), or the monitor with
    /// this number, or `window:ID` for one window (`confab devices` lists both), or `portal` for
    /// whatever you pick in the desktop's own dialog (Wayland), or `synthetic` for the test
    /// desktop.
    #[arg(long, value_name = "MONITOR", num_args = 0..=1, default_missing_value = "")]
    share_screen: Option<String>,
    /// At exit, write the last decoded picture of every remote track (camera and screen) into
    /// this directory as PNG, named by participant and track.
    #[arg(long, value_name = "DIR")]
    snapshot: Option<PathBuf>,
    /// Send this WAV file as audio.
    #[arg(long, conflicts_with = "microphone")]
    audio_file: Option<PathBuf>,
    /// Send this microphone's sound (an id from `confab devices`, or `default`) instead of the
    /// beeping tone.
    #[arg(long)]
    microphone: Option<String>,
    /// Play the others' sound on this speaker (an id from `confab devices`, or `default`);
    /// without it their sound is decoded and measured but not played.
    #[arg(long)]
    speaker: Option<String>,
    /// Leave after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Video size, WIDTHxHEIGHT.
    #[arg(long, default_value = "640x480", value_parser = parse_resolution)]
    resolution: (u32, u32),
    /// Local address for ICE (UDP); 0.0.0.0 lets the OS pick each interface.
    #[arg(long, default_value = "0.0.0.0")]
    bind: std::net::IpAddr,
    /// Extra STUN server (repeatable), e.g. stun:stun.example.org:3478; added to the ones the
    /// signaling server hands out.
    #[arg(long = "stun-url")]
    stun_urls: Vec<String>,
    /// Extra TURN server (repeatable), e.g. turn:turn.example.org:3478?transport=udp. Needs
    /// --turn-username and --turn-credential.
    #[arg(long = "turn-url", requires_all = ["turn_username", "turn_credential"])]
    turn_urls: Vec<String>,
    /// Username for --turn-url.
    #[arg(long)]
    turn_username: Option<String>,
    /// Password for --turn-url.
    #[arg(long, env = "CONFAB_TURN_CREDENTIAL", hide_env_values = true)]
    turn_credential: Option<String>,
    /// Use TURN relays only (no direct or server-reflexive paths).
    #[arg(long)]
    relay_only: bool,
    /// Send this chat message once the first participant's chat channel is open.
    #[arg(long)]
    chat: Option<String>,
    /// The others' test patterns carry wall-clock capture times in their frame markers (the web
    /// client's "Test pattern" camera does): report capture→decoded latency from them.
    #[arg(long)]
    wall_clock_markers: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_resolution(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected WIDTHxHEIGHT, got {s:?}"))?;
    let w: u32 = w
        .trim()
        .parse()
        .map_err(|_| format!("bad width in {s:?}"))?;
    let h: u32 = h
        .trim()
        .parse()
        .map_err(|_| format!("bad height in {s:?}"))?;
    if w < 160 || h < 64 || w > 3840 || h > 2160 || !w.is_multiple_of(2) || !h.is_multiple_of(2) {
        return Err(format!(
            "{w}x{h} is not supported: even sizes from 160x64 to 3840x2160"
        ));
    }
    Ok((w, h))
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, default_value = "0.0.0.0:8787")]
    listen: SocketAddr,
    /// TLS certificate chain (PEM); serve wss:// and https://. Needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM). Needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// TURN server URL to hand out (repeatable), e.g. turn:turn.example.org:3478. Needs
    /// --turn-secret.
    #[arg(long = "turn-url", requires = "turn_secret")]
    turn_urls: Vec<String>,
    /// Shared secret of the TURN server (coturn's static-auth-secret).
    #[arg(
        long,
        requires = "turn_urls",
        env = "CONFAB_TURN_SECRET",
        hide_env_values = true
    )]
    turn_secret: Option<String>,
    /// Lifetime of issued TURN credentials, in seconds.
    #[arg(long, default_value_t = 86_400)]
    turn_ttl_secs: u64,
    /// STUN server URL to hand out (repeatable), e.g. stun:stun.example.org:3478.
    #[arg(long = "stun-url")]
    stun_urls: Vec<String>,
    /// Maximum participants per room.
    #[arg(long, default_value_t = Limits::default().max_room_size)]
    max_room_size: usize,
    /// Maximum rooms on the server.
    #[arg(long, default_value_t = Limits::default().max_rooms)]
    max_rooms: usize,
    /// Maximum concurrent connections.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Largest accepted text frame, in bytes.
    #[arg(long, default_value_t = Limits::default().max_frame_bytes)]
    max_frame_bytes: usize,
    /// Sustained messages per second per connection.
    #[arg(long, default_value_t = Limits::default().messages_per_second)]
    messages_per_second: u32,
    /// Seconds a new connection has to join a room.
    #[arg(long, default_value_t = Limits::default().join_timeout.as_secs())]
    join_timeout_secs: u64,
    /// Seconds of silence (no frames, no pongs) before a connection is closed.
    #[arg(long, default_value_t = Limits::default().idle_timeout.as_secs())]
    idle_timeout_secs: u64,
}

fn main() -> Result<()> {
    let matches = cli_command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let json = cli.log_json;
    let Some(command) = cli.command else {
        return match cli.link {
            Some(link) => open_link(&link, json),
            None if has_display() => gui(confab::ui::AppOptions::default(), json),
            None => {
                logging::init_stderr(json);
                eprintln!(
                    "No display: running the headless loopback call instead of the app \
                     (see `confab --help` for gui, serve, join and loopback)."
                );
                loopback(&LoopbackArgs {
                    seconds: 10.0,
                    resolution: (1280, 720),
                    fps: 30,
                    bitrate_kbps: 2500,
                    video_file: None,
                    audio_file: None,
                    network: None,
                    seed: None,
                    screen_share: false,
                    json: false,
                })
            }
        };
    };
    if !matches!(command, Command::Gui(_)) {
        logging::init_stderr(json);
    }
    match command {
        Command::Gui(args) => {
            let options = confab::ui::AppOptions {
                join_now: args.join.map(|address| (address, args.room)),
                ..Default::default()
            };
            gui(options, json)
        }
        Command::Serve(args) => serve(args),
        Command::Loopback(args) => loopback(&args),
        Command::Join(args) => join::run(&args.try_into()?),
        Command::Devices(args) => devices_cli::devices(&args),
        Command::SoundCheck(args) => devices_cli::sound_check(&args),
        Command::Check(args) => check_cli::check(&args),
        Command::Manpages { out_dir } => {
            for page in cli_docs::write_man_pages(cli_command(), &out_dir)? {
                println!("{}", page.display());
            }
            Ok(())
        }
    }
}

/// Whether a window can be opened (X11 or Wayland on Unix; always elsewhere).
fn has_display() -> bool {
    if cfg!(any(target_os = "windows", target_os = "macos")) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// `confab confab://HOST:PORT/ROOM`: the app, joining that room. A broken link opens the lobby
/// with the reason (a clicked link has no terminal to print to); without a display there is no
/// app to open, and the error says how to join headless instead.
fn open_link(link: &str, json: bool) -> Result<()> {
    let parsed = confab::address::parse_confab_link(link);
    if !has_display() {
        logging::init_stderr(json);
        let target = parsed.map_err(anyhow::Error::msg)?;
        bail!(
            "cannot open {link}: there is no display for the app (DISPLAY and WAYLAND_DISPLAY \
             are unset). To join that room without a window: confab join {} {:?} --headless",
            target.url,
            target.room
        );
    }
    let options = match parsed {
        Ok(target) => confab::ui::AppOptions {
            join_now: Some((target.url, Some(target.room))),
            ..Default::default()
        },
        Err(reason) => confab::ui::AppOptions {
            lobby_message: Some(format!("Cannot open that link: {reason}")),
            ..Default::default()
        },
    };
    gui(options, json)
}

/// The desktop app: logs to the platform's log directory, settings in its config directory.
fn gui(mut options: confab::ui::AppOptions, json: bool) -> Result<()> {
    let dirs = AppDirs::locate();
    let _log_guard = match &dirs {
        Ok(d) => match logging::init_files(d.log_dir(), json) {
            Ok(guard) => Some(guard),
            Err(e) => {
                logging::init_stderr(json);
                tracing::warn!(
                    "cannot log to {}: {e}; logging to stderr",
                    d.log_dir().display()
                );
                None
            }
        },
        Err(e) => {
            logging::init_stderr(json);
            tracing::warn!("{e}; logging to stderr, settings not remembered");
            None
        }
    };
    tracing::info!(
        "Confab {} starting",
        confab::versions::long_version().replace('\n', ", ")
    );
    if let Ok(d) = &dirs {
        match d.adopt_legacy_window_state() {
            Ok(Some(old)) => tracing::info!("window state carried over from {}", old.display()),
            Ok(None) => {}
            Err(e) => tracing::warn!("window state of an older version not carried over: {e}"),
        }
        options.settings_file = Some(d.settings_file());
        options.window_state_file = Some(d.window_state_file());
    }
    confab::ui::run(options).map_err(|e| anyhow::anyhow!("the app window failed: {e}"))
}

fn loopback(args: &LoopbackArgs) -> Result<()> {
    let options = confab::loopback::LoopbackOptions {
        seconds: args.seconds,
        width: args.resolution.0,
        height: args.resolution.1,
        fps: args.fps,
        bitrate_kbps: args.bitrate_kbps,
        video_file: args.video_file.clone(),
        audio_file: args.audio_file.clone(),
        network: args.network.clone(),
        seed: args.seed,
        screen_share: args.screen_share,
    };
    let report = confab::loopback::run(&options)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", confab::loopback::render_table(&report));
    }
    if report.ok {
        Ok(())
    } else {
        bail!(
            "unhealthy call: {}",
            report.failure.unwrap_or_else(|| "unknown".into())
        )
    }
}

impl TryFrom<JoinArgs> for join::JoinOptions {
    type Error = anyhow::Error;

    /// The address goes through the app's parser, so `confab join` takes what the lobby takes.
    fn try_from(a: JoinArgs) -> Result<Self> {
        // `--headless` changes nothing: there is no windowed `confab join`.
        let _ = a.headless;
        let target = confab::address::parse_join_address(&a.address).map_err(anyhow::Error::msg)?;
        let Some(room) = a.room.or(target.room) else {
            bail!(
                "name the room: confab join {} ROOM (or give a confab://HOST:PORT/ROOM link)",
                a.address
            );
        };
        Ok(Self {
            url: target.url,
            room,
            name: a.name,
            password: a.password,
            video_file: a.video_file,
            audio_file: a.audio_file,
            microphone: a.microphone,
            speaker: a.speaker,
            seconds: a.seconds,
            resolution: a.resolution,
            bind: a.bind,
            json: a.json,
            ice_servers: extra_ice_servers(
                a.stun_urls,
                a.turn_urls,
                a.turn_username,
                a.turn_credential,
            ),
            relay_only: a.relay_only,
            chat: a.chat,
            wall_clock_markers: a.wall_clock_markers,
            share_screen: a.share_screen.as_deref().map(screen_input).transpose()?,
            snapshot_dir: a.snapshot,
        })
    }
}

/// What `--share-screen [MONITOR]` names: the main monitor of `$DISPLAY` (no value), a monitor
/// by number, a window (`window:0x1a00003` or decimal), the desktop's portal dialog, or the
/// synthetic test desktop.
fn screen_input(value: &str) -> Result<confab_engine::ScreenInput> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("synthetic") {
        return Ok(confab_engine::ScreenInput::Synthetic);
    }
    if value.eq_ignore_ascii_case("portal") {
        return Ok(confab_engine::ScreenInput::Portal);
    }
    if let Some(id) = value.strip_prefix("window:") {
        let id = id.trim();
        let parsed = match id.strip_prefix("0x").or_else(|| id.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16),
            None => id.parse::<u32>(),
        };
        let window = parsed.map_err(|_| {
            anyhow::anyhow!(
                "--share-screen window:ID takes a window id such as 0x1a00003 (see `confab devices`), not {id:?}"
            )
        })?;
        return Ok(confab_engine::ScreenInput::X11Window {
            display: None,
            window,
        });
    }
    let monitor = if value.is_empty() {
        None
    } else {
        Some(value.parse::<usize>().map_err(|_| {
            anyhow::anyhow!(
                "--share-screen takes a monitor number, window:ID (see `confab devices`), `portal` or `synthetic`, not {value:?}"
            )
        })?)
    };
    Ok(confab_engine::ScreenInput::X11 {
        display: None,
        monitor,
    })
}

fn extra_ice_servers(
    stun: Vec<String>,
    turn: Vec<String>,
    username: Option<String>,
    credential: Option<String>,
) -> Vec<signaling_client::IceServer> {
    let mut servers = Vec::new();
    if !stun.is_empty() {
        servers.push(signaling_client::IceServer {
            urls: stun,
            username: None,
            credential: None,
        });
    }
    if !turn.is_empty() {
        servers.push(signaling_client::IceServer {
            urls: turn,
            username,
            credential,
        });
    }
    servers
}

fn serve(args: ServeArgs) -> Result<()> {
    let mut config = ServerConfig::new(args.listen);
    config.tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
    };
    config.turn = args.turn_secret.map(|secret| TurnConfig {
        urls: args.turn_urls,
        secret,
        ttl: Duration::from_secs(args.turn_ttl_secs),
    });
    config.stun_urls = args.stun_urls;
    config.limits = Limits {
        max_room_size: args.max_room_size,
        max_rooms: args.max_rooms,
        max_connections: args.max_connections,
        max_frame_bytes: args.max_frame_bytes,
        messages_per_second: args.messages_per_second,
        join_timeout: Duration::from_secs(args.join_timeout_secs),
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        ..Limits::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("confab-serve")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let server = SignalingServer::start(config).await?;
        eprintln!(
            "Confab signaling server on {} (health: {}/healthz). Ctrl-C stops it.",
            server.ws_url(),
            server.http_url()
        );
        wait_for_stop_signal().await?;
        eprintln!("Shutting down; telling clients...");
        server.shutdown(Duration::from_secs(5)).await;
        Ok(())
    })
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one.
async fn wait_for_stop_signal() -> Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot listen for Ctrl-C")?,
            _ = term.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot listen for Ctrl-C")
    }
}
