//! `confab check`: a call check without a window. The person's side is an engine started here
//! with the devices given on the command line (the system defaults unless told otherwise); the
//! check drives it exactly as the desktop app's "Test my call" drives the app's engine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use super::report::{CheckReport, Sources};
use super::{CallCheck, CheckError, CheckOptions};
use confab_engine::media::NullSink;
use confab_engine::{AudioOutput, Engine, EngineCommand, EngineConfig, EngineError};

/// How often the check is advanced while no event arrives.
const TICK: Duration = Duration::from_millis(20);

/// Why a headless check could not run.
#[derive(Debug, thiserror::Error)]
pub enum HeadlessError {
    /// The person's engine did not start.
    #[error("cannot start the engine: {0}")]
    Engine(#[from] EngineError),
    /// The check did not start.
    #[error(transparent)]
    Check(#[from] CheckError),
}

/// Runs a check with an engine started from `config` (its sources are the person's devices)
/// playing on `output`; `sources` words them in the result. Returns when the check is done.
///
/// # Errors
/// [`HeadlessError`] when the engine or the check cannot start; a call that fails is a report,
/// not an error.
pub fn run(
    config: EngineConfig,
    mut options: CheckOptions,
    sources: Sources,
    output: AudioOutput,
) -> Result<CheckReport, HeadlessError> {
    options.bind_addrs.clone_from(&config.bind_addrs);
    options.sources = sources;
    let engine = Engine::start(config, Box::new(NullSink), Arc::new(|| {}))?;
    if output != AudioOutput::None {
        send(&engine, EngineCommand::SelectSpeaker(output));
    }
    let (mut check, join) = CallCheck::start(options, Arc::new(|| {}), Instant::now())?;
    send(&engine, join);
    let report = loop {
        match engine.events().recv_timeout(TICK) {
            Ok(event) => {
                check.on_engine_event(&event, Instant::now());
                // Take everything queued before advancing.
                while let Ok(event) = engine.events().try_recv() {
                    check.on_engine_event(&event, Instant::now());
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                // The engine stopped: nothing more will come; the check words what it has.
                check.engine_stopped(Instant::now());
            }
        }
        // Pictures are not shown here; keep the queue from filling.
        while engine.video().try_recv().is_ok() {}
        for command in check.poll(Instant::now()) {
            send(&engine, command);
        }
        if let Some(report) = check.report() {
            break report.clone();
        }
    };
    engine.shutdown();
    Ok(report)
}

fn send(engine: &Engine, command: EngineCommand) {
    // Fails only once the engine stopped, which the report already says.
    let _ = engine.send(command);
}
