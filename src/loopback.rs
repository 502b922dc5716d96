//! `confab loopback`: a complete call between two engines ("alice" and "bob") in one process,
//! over a real signaling server on 127.0.0.1:0 and real UDP, with synthetic (or file) media,
//! followed by a measured report.
//!
//! The report is how we judge call quality. Because both engines share one clock, the
//! synthetic media's embedded timing (frame markers, beeps) gives true capture→decode video
//! latency and mouth-to-ear audio latency in each direction. The call is healthy (`ok`) when, in
//! both directions, video and audio arrive and decode, frame numbers strictly increase, no
//! picture decodes corrupt, no freeze exceeds 500 ms after the first picture, beeps are heard,
//! and chat messages arrive intact.
//!
//! With a simulated network ([`LoopbackOptions::network`], `--network`), every UDP datagram of
//! the call crosses a [`NetworkSimulator`] (each engine's candidates are rewritten to its
//! mirrors through [`EngineConfig::candidate_rewriter`]); the call starts its outage clock when
//! both peers are connected. Freezes caused by the impairment are then figures of the report
//! (`freezes`, `frozen_ms_total`, `fps_p10`, `recovery_ms`, …), not failures. Still failures:
//! not connected (at the start, or no longer at the end), no video or audio either way, no
//! beeps heard, corrupt or out-of-order pictures, chat not delivered, a call that ended, codes
//! that differ, and media that did not cross the simulator (fewer bytes forwarded in a
//! direction than the receiver got: something went around it).
//!
//! Windowed figures (`frozen_ms_total`, `fps_p10`, `beeps_sent`, the per-second bandwidth
//! estimate) cover the measured call: from both peers connected until the cameras stop.
//!
//! The report's types and its text rendering are in the `report` submodule
//! (`src/loopback/report.rs`), re-exported here.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use signaling_server::{ServerConfig, SignalingServer};

use confab_engine::measure::{BeepProbe, Percentiles, ProcessMeter, VideoAnalyzer};
use confab_engine::media::{CaptureTime, NullSink};
use confab_engine::netsim::{self, NetworkSimulator, NetworkSpec};
use confab_engine::observer::{self, CallObserver, FrameSink};
use confab_engine::{
    AudioInput, CandidateRewriter, Engine, EngineCommand, EngineConfig, LinkState,
    ParticipantStats, ScreenInput, VideoFrameEvent, VideoInput, VideoRole, VideoSettings,
};

mod report;
mod window;

pub use report::{
    AudioLatency, Direction, LoopbackReport, NetworkFigures, ProcessFigures, Recovery,
    ScreenFigures, SetupTimes, SimulatorFigures, render_table,
};
use window::CallWindow;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoopbackOptions {
    /// Call length after both peers are connected.
    pub seconds: f64,
    /// Video width.
    pub width: u32,
    /// Video height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Starting (and maximum) video bitrate.
    pub bitrate_kbps: u32,
    /// Send this Y4M file instead of the test pattern (no latency markers then).
    pub video_file: Option<PathBuf>,
    /// Send this WAV file instead of the beeping tone (no audio latency then).
    pub audio_file: Option<PathBuf>,
    /// Put this simulated network between the two engines (`None`: straight UDP).
    pub network: Option<NetworkSpec>,
    /// Seed of the simulated network's random decisions (`None`: a random one, reported).
    pub seed: Option<u64>,
    /// Alice shares the synthetic screen once connected (alice → bob gets `screen` figures).
    pub screen_share: bool,
}

impl Default for LoopbackOptions {
    fn default() -> Self {
        Self {
            seconds: 10.0,
            width: 1280,
            height: 720,
            fps: 30,
            bitrate_kbps: 2500,
            video_file: None,
            audio_file: None,
            network: None,
            seed: None,
            screen_share: false,
        }
    }
}

/// Why the loopback could not run at all (as opposed to running and finding the call unhealthy).
#[derive(Debug, thiserror::Error)]
pub enum LoopbackError {
    /// The signaling server or an engine did not start.
    #[error("loopback setup failed: {0}")]
    Setup(String),
}

/// Every decoded picture goes through the analyzer of its track (camera markers read unless
/// file-fed; the synthetic screen always carries them).
struct Pictures {
    analyzer: VideoAnalyzer,
    screen: VideoAnalyzer,
    markers: bool,
}

impl FrameSink for Pictures {
    fn frame(&mut self, _from: &str, frame: &VideoFrameEvent) {
        match frame.role {
            VideoRole::Camera => self
                .analyzer
                .push(&frame.frame, frame.decoded_at, self.markers),
            VideoRole::Screen => self.screen.push(&frame.frame, frame.decoded_at, true),
        }
    }
}

/// One side of the loopback call and what it observed.
struct Side {
    name: &'static str,
    observer: CallObserver<Pictures>,
    probe: Arc<BeepProbe>,
}

impl Side {
    fn start(
        name: &'static str,
        options: &LoopbackOptions,
        markers: bool,
        rewriter: Option<Arc<dyn CandidateRewriter>>,
    ) -> Result<Self, LoopbackError> {
        let probe = Arc::new(BeepProbe::default());
        let mut config = EngineConfig::new(name);
        config.video = VideoSettings {
            width: options.width,
            height: options.height,
            fps: options.fps,
            start_kbps: options.bitrate_kbps,
            min_kbps: 100.min(options.bitrate_kbps),
            max_kbps: options.bitrate_kbps,
        };
        config.video_input = options
            .video_file
            .clone()
            .map_or(VideoInput::Synthetic, VideoInput::Y4mFile);
        config.audio_input = options
            .audio_file
            .clone()
            .map_or(AudioInput::Synthetic, AudioInput::WavFile);
        config.bind_addrs = vec![([127, 0, 0, 1], 0).into()];
        config.preview = false;
        config.probe = Some(Arc::clone(&probe) as Arc<dyn confab_engine::MediaProbe>);
        config.candidate_rewriter = rewriter;
        let engine = Engine::start(config, Box::new(NullSink), Arc::new(|| {}))
            .map_err(|e| LoopbackError::Setup(format!("{name}: {e}")))?;
        let pictures = Pictures {
            analyzer: VideoAnalyzer::default(),
            screen: VideoAnalyzer::default(),
            markers,
        };
        Ok(Self {
            name,
            observer: CallObserver::with_frames(name, engine, pictures),
            probe,
        })
    }

    fn send(&self, command: EngineCommand) {
        // Only fails once the engine has stopped, which the report shows anyway.
        let _ = self.observer.send(command);
    }

    fn video(&self) -> &VideoAnalyzer {
        &self.observer.frames.analyzer
    }

    /// When we got into the room.
    fn joined(&self) -> Option<Instant> {
        self.observer.view.in_call_at
    }

    /// When the (first) peer connection connected.
    fn connected(&self) -> Option<Instant> {
        self.observer
            .view
            .participants
            .values()
            .filter_map(|p| p.connected_at)
            .min()
    }

    /// The latest statistics of the connection to the other side.
    fn last_stats(&self) -> Option<ParticipantStats> {
        self.observer
            .view
            .participants
            .values()
            .find_map(|p| p.stats.clone())
    }

    /// Statistics reports of the connection to the other side, with when they came.
    fn stats_history(&self) -> &[(Instant, ParticipantStats)] {
        self.observer
            .view
            .participants
            .values()
            .next()
            .map_or(&[], |p| p.stats_history.as_slice())
    }

    /// The link to the other side is connected now.
    fn link_connected(&self) -> bool {
        self.observer
            .view
            .participants
            .values()
            .any(|p| p.link == Some(LinkState::Connected))
    }

    /// The verification code shown for the other side.
    fn code(&self) -> Option<String> {
        self.observer
            .view
            .participants
            .values()
            .find_map(|p| p.code.clone())
    }

    /// Chat texts from the other side.
    fn chats(&self) -> impl Iterator<Item = &str> {
        self.observer
            .view
            .chats
            .iter()
            .filter(|c| c.name != self.name)
            .map(|c| c.text.as_str())
    }
}

fn ms_since(start: Instant, t: Option<Instant>) -> Option<f64> {
    t.map(|t| t.saturating_duration_since(start).as_secs_f64() * 1000.0)
}

/// Runs the loopback call and measures it.
pub fn run(options: &LoopbackOptions) -> Result<LoopbackReport, LoopbackError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("confab-loopback-server")
        .enable_all()
        .build()
        .map_err(|e| LoopbackError::Setup(e.to_string()))?;
    let server = runtime
        .block_on(SignalingServer::start(ServerConfig::new(
            ([127, 0, 0, 1], 0).into(),
        )))
        .map_err(|e| LoopbackError::Setup(e.to_string()))?;
    let url = server.ws_url();
    let meter = ProcessMeter::start();
    let markers = options.video_file.is_none();
    let sim = match &options.network {
        Some(spec) => {
            let seed = options.seed.unwrap_or_else(netsim::random_seed);
            Some(
                NetworkSimulator::start(spec, seed)
                    .map_err(|e| LoopbackError::Setup(e.to_string()))?,
            )
        }
        None => None,
    };
    let rewriter = |side| sim.as_ref().map(|s| s.rewriter(side));

    let mut alice = Side::start("alice", options, markers, rewriter(netsim::Side::A))?;
    let mut bob = Side::start("bob", options, markers, rewriter(netsim::Side::B))?;
    let room = "loopback".to_owned();
    for side in [&alice, &bob] {
        side.observer
            .send(EngineCommand::Join {
                url: url.clone(),
                room: room.clone(),
                password: None,
            })
            .map_err(|e| LoopbackError::Setup(e.to_string()))?;
    }

    let mut failures = Vec::new();
    // Setup: both joined, then both connected (or 20 s, reported below).
    let _ = observer::pump_all_until(
        &mut [&mut alice.observer, &mut bob.observer],
        "both peer connections connected",
        Duration::from_secs(20),
        |o| o.iter().all(|side| side.view.connected() > 0),
    );
    let both_joined = match (alice.joined(), bob.joined()) {
        (Some(a), Some(b)) => a.max(b),
        _ => {
            failures.push("the peers did not both join the room".to_owned());
            Instant::now()
        }
    };
    if alice.connected().is_none() || bob.connected().is_none() {
        failures.push("the peer connection did not connect within 20 s".to_owned());
    }

    let chat_a = "hello bob, from alice — ünïcödé ✓".to_owned();
    let chat_b = "hi alice! from bob 🎉".to_owned();
    let call_start = Instant::now();
    let call_start_media = CaptureTime::now();
    if let Some(sim) = &sim {
        sim.call_started(call_start);
    }
    let call_length = Duration::from_secs_f64(options.seconds.max(1.0));
    if failures.is_empty() && options.screen_share {
        alice.send(EngineCommand::ShareScreen(Some(ScreenInput::Synthetic)));
    }
    if failures.is_empty() {
        // The call itself is a stretch of time: measured, whatever arrives.
        let chat_after = Duration::from_millis(500);
        observer::pump_all_for(&mut [&mut alice.observer, &mut bob.observer], chat_after);
        // Chat once the data channels have had a moment to open.
        alice.send(EngineCommand::SendChat(chat_a.clone()));
        bob.send(EngineCommand::SendChat(chat_b.clone()));
        observer::pump_all_for(
            &mut [&mut alice.observer, &mut bob.observer],
            call_length.saturating_sub(call_start.elapsed()),
        );
    }
    let measured_seconds = call_start.elapsed().as_secs_f64();
    let call_end_media = CaptureTime::now();
    // Stop the cameras, let what is in flight arrive, and take one more stats round, so the
    // final "sent" and "received" counts describe the same pictures.
    for side in [&alice, &bob] {
        side.send(EngineCommand::SetCamera(false));
    }
    observer::pump_all_for(
        &mut [&mut alice.observer, &mut bob.observer],
        Duration::from_millis(1300),
    );
    let process = ProcessFigures {
        cpu_percent_of_one_core: meter.cpu_percent_of_one_core(),
        peak_rss_mb: ProcessMeter::peak_rss_mb(),
    };
    if sim.is_some() {
        for side in [&alice, &bob] {
            if let Some(reason) = &side.observer.view.ended {
                failures.push(format!("{}'s call ended: {reason}", side.name));
            } else if !side.link_connected() {
                failures.push(format!("{} was no longer connected at the end", side.name));
            }
        }
    }

    // Hang up cleanly.
    for side in [&alice, &bob] {
        side.send(EngineCommand::Leave);
    }
    // Not hanging up within 5 s is not a call failure; the engines are shut down below anyway.
    let _ = observer::pump_all_until(
        &mut [&mut alice.observer, &mut bob.observer],
        "both calls ended",
        Duration::from_secs(5),
        |o| o.iter().all(|side| side.view.ended.is_some()),
    );

    let setup_ms = SetupTimes {
        connected: ms_since(both_joined, alice.connected().max(bob.connected())),
        first_video_frame: both_max(alice.video().first_at, bob.video().first_at)
            .and_then(|t| ms_since(both_joined, Some(t))),
        first_audio: both_max(
            alice.probe.first_decoded_audio(),
            bob.probe.first_decoded_audio(),
        )
        .and_then(|t| ms_since(both_joined, Some(t))),
    };
    let window = CallWindow {
        start: call_start,
        from: call_start_media,
        to: call_end_media,
        // Beeps sent after the cameras stop are still heard before the hang-up.
        beeps_until: call_end_media.plus(Duration::from_millis(1000)),
        frame_interval: Duration::from_secs_f64(1.0 / f64::from(options.fps.max(1))),
        paths_back: options
            .network
            .as_ref()
            .map(|n| {
                n.outages
                    .iter()
                    .map(|o| call_start_media.plus(o.end()))
                    .collect()
            })
            .unwrap_or_default(),
    };
    let beeps = options.audio_file.is_none();
    let mut a_to_b = direction(&alice, &bob, markers, beeps, &window);
    let b_to_a = direction(&bob, &alice, markers, beeps, &window);
    if options.screen_share {
        let screen = screen_figures(&alice, &bob, &window);
        check_screen(&screen, &mut failures);
        a_to_b.screen = Some(screen);
    }
    check_direction(
        "alice",
        "bob",
        &a_to_b,
        &bob,
        &chat_a,
        markers,
        options,
        &mut failures,
    );
    check_direction(
        "bob",
        "alice",
        &b_to_a,
        &alice,
        &chat_b,
        markers,
        options,
        &mut failures,
    );
    let simulator = sim.as_ref().map(|sim| SimulatorFigures {
        a_to_b: sim.counters(netsim::Direction::AToB),
        b_to_a: sim.counters(netsim::Direction::BToA),
    });
    if let Some(s) = &simulator {
        for (label, crossed, receiver) in [
            ("alice → bob", &s.a_to_b, &bob),
            ("bob → alice", &s.b_to_a, &alice),
        ] {
            let arrived = receiver
                .last_stats()
                .map_or(0, |s| s.video_bytes_received + s.audio_bytes_received);
            if crossed.forwarded_bytes < arrived {
                failures.push(format!(
                    "{label}: {arrived} media bytes arrived but only {} crossed the network \
                     simulator",
                    crossed.forwarded_bytes
                ));
            }
        }
    }
    let codes: Vec<String> = [alice.code(), bob.code()].into_iter().flatten().collect();
    if codes.len() != 2 || codes[0] != codes[1] {
        failures.push(format!(
            "verification codes differ or are missing: {codes:?}"
        ));
    }
    // Engine errors were logged as they came (the observer logs them).
    alice.observer.shutdown();
    bob.observer.shutdown();
    runtime.block_on(server.shutdown(Duration::from_secs(1)));
    let network = sim.as_ref().map(|s| NetworkFigures {
        resolved: s.spec().clone(),
        seed: s.seed(),
    });
    drop(sim);

    Ok(LoopbackReport {
        ok: failures.is_empty(),
        failure: failures.first().cloned(),
        failures,
        seconds: measured_seconds,
        setup_ms,
        a_to_b,
        b_to_a,
        process,
        verification_codes: codes,
        network,
        simulator,
    })
}

fn both_max(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    Some(a?.max(b?))
}

/// The figures of `sender` → `receiver`.
fn direction(
    sender: &Side,
    receiver: &Side,
    markers: bool,
    beeps: bool,
    window: &CallWindow,
) -> Direction {
    let rx = receiver.last_stats().unwrap_or_default();
    let tx = sender.last_stats().unwrap_or_default();
    let video = receiver.video();
    // Without two pictures (no video got through), rates are over the measured call instead.
    let seconds = video
        .span_seconds()
        .unwrap_or_else(|| window.to.saturating_since(window.from).as_secs_f64());
    let kbps = |bytes: u64| {
        if seconds > 0.0 {
            bytes as f64 * 8.0 / 1000.0 / seconds
        } else {
            0.0
        }
    };
    let audio = if beeps {
        let l = receiver.probe.latencies_from(&sender.probe);
        Percentiles::of(&l).map(|p| AudioLatency {
            p50: p.p50,
            p95: p.p95,
        })
    } else {
        None
    };
    Direction {
        frames_sent: tx.frames_sent,
        frames_received: video.frames,
        fps: video.fps(),
        resolution: video.resolution.map(|(w, h)| format!("{w}x{h}")),
        video_kbps: kbps(rx.video_bytes_received),
        audio_kbps: kbps(rx.audio_bytes_received),
        latency_ms: if markers {
            Percentiles::of(&video.latencies_ms)
        } else {
            None
        },
        audio_latency_ms: audio,
        freezes: video.freezes,
        longest_freeze_ms: video.longest_gap_ms,
        corrupt_frames: video.corrupt,
        out_of_order_frames: video.out_of_order,
        skipped_frames: video.skipped,
        decode_errors: rx.decode_errors,
        frames_skipped_awaiting_keyframe: rx.frames_skipped_awaiting_keyframe,
        frames_dropped_decoder_behind: rx.frames_dropped_decoder_behind,
        frames_dropped_consumer_slow: rx.frames_dropped_consumer_slow,
        packets_lost: rx.packets_lost,
        nacks: rx.nacks_sent,
        plis: rx.plis_sent,
        rtt_ms: rx.rtt_ms.or(tx.rtt_ms),
        encode_ms_per_frame: tx.encode_ms_per_frame,
        decode_ms_per_frame: rx.decode_ms_per_frame,
        bandwidth_estimate_kbps: tx.bandwidth_estimate_kbps,
        beeps_heard: receiver.probe.beeps_played(),
        candidate_type: rx.candidate_type.clone(),
        ..window.figures(
            video,
            &sender.probe,
            &receiver.probe,
            &rx,
            sender.stats_history(),
        )
    }
}

/// The shared screen's figures of `sender` → `receiver`.
fn screen_figures(sender: &Side, receiver: &Side, window: &CallWindow) -> ScreenFigures {
    let rx = receiver.last_stats().unwrap_or_default();
    let tx = sender.last_stats().unwrap_or_default();
    let screen = &receiver.observer.frames.screen;
    let seconds = screen
        .span_seconds()
        .unwrap_or_else(|| window.to.saturating_since(window.from).as_secs_f64());
    let bytes = screen_bytes(receiver);
    ScreenFigures {
        frames_sent: tx.screen_frames_sent,
        frames_received: screen.frames,
        fps: screen.fps(),
        resolution: screen.resolution.map(|(w, h)| format!("{w}x{h}")),
        latency_ms: Percentiles::of(&screen.latencies_ms),
        kbps: if seconds > 0.0 {
            bytes as f64 * 8.0 / 1000.0 / seconds
        } else {
            0.0
        },
        encode_ms_per_frame: tx.screen_encode_ms_per_frame,
        decode_errors: rx.screen_decode_errors,
        corrupt_frames: screen.corrupt,
        out_of_order_frames: screen.out_of_order,
        longest_gap_ms: screen.longest_gap_ms,
    }
}

/// Bytes of screen the receiver got from the other side.
fn screen_bytes(receiver: &Side) -> u64 {
    receiver
        .observer
        .view
        .participants
        .values()
        .find_map(|p| p.stats.as_ref().map(|s| s.screen_bytes_received))
        .unwrap_or(0)
}

/// A shared screen that did not arrive, or arrived broken, fails the call.
fn check_screen(s: &ScreenFigures, failures: &mut Vec<String>) {
    if s.frames_received == 0 {
        failures.push("bob received none of alice's shared screen".to_owned());
    }
    if s.corrupt_frames > 0 || s.out_of_order_frames > 0 {
        failures.push(format!(
            "bob decoded alice's screen with {} corrupt and {} out-of-order pictures",
            s.corrupt_frames, s.out_of_order_frames
        ));
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site; each argument is a distinct input"
)]
fn check_direction(
    from: &str,
    to: &str,
    d: &Direction,
    receiver: &Side,
    chat: &str,
    markers: bool,
    options: &LoopbackOptions,
    failures: &mut Vec<String>,
) {
    if d.frames_received == 0 {
        failures.push(format!("{to} received no video"));
    }
    if d.audio_kbps <= 0.0 {
        failures.push(format!("{to} received no audio"));
    }
    if markers {
        if d.corrupt_frames > 0 {
            failures.push(format!(
                "{to} decoded {} corrupt pictures from {from}",
                d.corrupt_frames
            ));
        }
        if d.out_of_order_frames > 0 {
            failures.push(format!(
                "{to} saw {} pictures from {from} whose frame number did not increase",
                d.out_of_order_frames
            ));
        }
    }
    // Under a simulated network, freezes are what is being measured, not a failure.
    if d.freezes > 0 && options.network.is_none() {
        failures.push(format!(
            "{to}'s video from {from} froze {} times (longest {:.0} ms)",
            d.freezes, d.longest_freeze_ms
        ));
    }
    if options.audio_file.is_none() && d.beeps_heard == 0 {
        failures.push(format!("{to} heard no audio markers from {from}"));
    }
    if !receiver.chats().any(|c| c == chat) {
        failures.push(format!(
            "the chat message from {from} did not arrive intact at {to}"
        ));
    }
}
