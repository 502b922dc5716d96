//! Where log lines go. The command-line tools (`serve`, `loopback`, `join`, ...) log to stderr,
//! where whoever started them reads it. The desktop app has nobody watching its stderr, so it
//! logs to a file in the platform's log directory (`confab::app_dirs`), a new file each day,
//! keeping the last [`LOG_FILES_KEPT`]; a panic is logged there too.
//!
//! `RUST_LOG` picks the level (default [`DEFAULT_FILTER`]); `--log-json` writes JSON lines.

use std::path::Path;

/// `info`, without two chatty dependencies: cpal's PulseAudio client logs every stream it
/// closes as an error ("Reactor error: Client disconnected"; each speaker stream has its own
/// connection), and its INFO line repeats every connection. Device trouble reaches the user
/// and the log as Confab's own device notices.
pub const DEFAULT_FILTER: &str = "info,pulseaudio::client::reactor=off,pulseaudio::client=warn";

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Daily log files kept in the app's log directory (older ones are deleted).
pub const LOG_FILES_KEPT: usize = 7;

/// Keeps the file writer's background thread alive; dropping it flushes what is queued.
#[must_use = "dropping the guard stops file logging"]
pub struct FileLogGuard(
    #[allow(dead_code, reason = "held for its Drop")] tracing_appender::non_blocking::WorkerGuard,
);

/// Logs to stderr.
pub fn init_stderr(json: bool) {
    install(std::io::stderr, json, false);
}

/// Logs to daily files `confab.YYYY-MM-DD.log` in `dir` (created if missing).
///
/// # Errors
/// The directory cannot be created or the first file cannot be opened.
pub fn init_files(dir: &Path, json: bool) -> Result<FileLogGuard, std::io::Error> {
    std::fs::create_dir_all(dir)?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("confab")
        .filename_suffix("log")
        .max_log_files(LOG_FILES_KEPT)
        .build(dir)
        .map_err(std::io::Error::other)?;
    // Lossless: the app logs little, and a lost line is worse than a short wait.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("confab-log")
        .finish(appender);
    install(writer, json, true);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!("panic: {info}");
        previous(info);
    }));
    Ok(FileLogGuard(guard))
}

fn install<W>(writer: W, json: bool, to_file: bool)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    // Colour codes are for terminals (stderr keeps the NO_COLOR-aware default).
    let builder = if to_file {
        builder.with_ansi(false)
    } else {
        builder
    };
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
