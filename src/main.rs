//! `confab`: the desktop video-call app and its command-line tools.
//!
//! Thin on purpose: parses the command line, sets up logging, and hands over to the library
//! crates. Subcommands today: `serve` (the signaling server). The desktop app, `loopback` and
//! `join` arrive with the call engine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use signaling_server::{Limits, ServerConfig, SignalingServer, TlsFiles, TurnConfig};

/// Confab: open, end-to-end encrypted video calls on the desktop.
#[derive(Debug, Parser)]
#[command(name = "confab", version, about, long_about = None)]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the signaling server that lets participants find each other.
    Serve(ServeArgs),
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
    let cli = Cli::parse();
    init_logging(cli.log_json);
    match cli.command {
        Some(Command::Serve(args)) => serve(args),
        None => bail!(
            "the desktop app is not built yet; run `confab serve` for the signaling server \
             (see `confab --help`)"
        ),
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
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
