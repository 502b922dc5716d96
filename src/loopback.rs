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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use signaling_server::{ServerConfig, SignalingServer};

use confab_engine::measure::{BeepProbe, Percentiles, ProcessMeter, VideoAnalyzer};
use confab_engine::media::NullSink;
use confab_engine::observer::{self, CallObserver, FrameSink};
use confab_engine::{
    AudioInput, Engine, EngineCommand, EngineConfig, ParticipantStats, VideoFrameEvent, VideoInput,
    VideoSettings,
};

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

/// Times from the moment both peers had joined the room.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SetupTimes {
    /// Both peer connections connected.
    pub connected: Option<f64>,
    /// Both sides decoded their first picture.
    pub first_video_frame: Option<f64>,
    /// Both sides played their first decoded audio.
    pub first_audio: Option<f64>,
}

/// One direction of the call.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Direction {
    /// Pictures the sender encoded.
    pub frames_sent: u64,
    /// Pictures the receiver decoded.
    pub frames_received: u64,
    /// Decoded frames per second.
    pub fps: f64,
    /// Decoded picture size, `"WxH"`.
    pub resolution: Option<String>,
    /// Received video bitrate.
    pub video_kbps: f64,
    /// Received audio bitrate.
    pub audio_kbps: f64,
    /// Capture → decoded-picture-ready latency.
    pub latency_ms: Option<Percentiles>,
    /// Mouth-to-ear latency (beep captured → beep played).
    pub audio_latency_ms: Option<AudioLatency>,
    /// Gaps over 500 ms between pictures.
    pub freezes: u64,
    /// Longest gap between pictures.
    pub longest_freeze_ms: f64,
    /// Pictures that decoded corrupt (marker unreadable).
    pub corrupt_frames: u64,
    /// Pictures whose frame number did not increase.
    pub out_of_order_frames: u64,
    /// Frame numbers never decoded (encoder skips and losses).
    pub skipped_frames: u64,
    /// Access units the receiver's H.264 decoder rejected (corrupt or undecodable data).
    pub decode_errors: u64,
    /// Access units the receiver did not decode while waiting for a keyframe.
    pub frames_skipped_awaiting_keyframe: u64,
    /// Access units the receiver dropped because its decoder was behind (CPU load).
    pub frames_dropped_decoder_behind: u64,
    /// Decoded pictures dropped because the report loop did not take them in time.
    pub frames_dropped_consumer_slow: u64,
    /// RTP packets lost on the way.
    pub packets_lost: i64,
    /// NACKs the receiver sent.
    pub nacks: u64,
    /// PLIs the receiver sent.
    pub plis: u64,
    /// Round-trip time.
    pub rtt_ms: Option<f64>,
    /// Sender's mean encode time.
    pub encode_ms_per_frame: f64,
    /// Receiver's mean decode time.
    pub decode_ms_per_frame: f64,
    /// Sender's congestion-control estimate at the end.
    pub bandwidth_estimate_kbps: f64,
    /// Beeps heard at the receiver.
    pub beeps_heard: usize,
    /// Selected candidate type.
    pub candidate_type: Option<String>,
}

/// Audio latency percentiles.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct AudioLatency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
}

/// Process resources over the call.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcessFigures {
    /// CPU time of both peers (and the server) as a percentage of one core.
    pub cpu_percent_of_one_core: f64,
    /// Peak resident memory.
    pub peak_rss_mb: f64,
}

/// The report `confab loopback --json` prints.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoopbackReport {
    /// Whether the call was healthy.
    pub ok: bool,
    /// The first reason it was not, if any.
    pub failure: Option<String>,
    /// Every reason it was not.
    pub failures: Vec<String>,
    /// Seconds of call measured.
    pub seconds: f64,
    /// Setup times, ms.
    pub setup_ms: SetupTimes,
    /// Alice → Bob.
    pub a_to_b: Direction,
    /// Bob → Alice.
    pub b_to_a: Direction,
    /// Process figures.
    pub process: ProcessFigures,
    /// The verification codes both sides showed (must be equal).
    pub verification_codes: Vec<String>,
}

/// Every decoded picture goes through the analyzer (markers read unless file-fed).
struct Pictures {
    analyzer: VideoAnalyzer,
    markers: bool,
}

impl FrameSink for Pictures {
    fn frame(&mut self, _from: &str, frame: &VideoFrameEvent) {
        self.analyzer
            .push(&frame.frame, frame.decoded_at, self.markers);
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
        let engine = Engine::start(config, Box::new(NullSink), Arc::new(|| {}))
            .map_err(|e| LoopbackError::Setup(format!("{name}: {e}")))?;
        let pictures = Pictures {
            analyzer: VideoAnalyzer::default(),
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

    let mut alice = Side::start("alice", options, markers)?;
    let mut bob = Side::start("bob", options, markers)?;
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
    let call_length = Duration::from_secs_f64(options.seconds.max(1.0));
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
    let a_to_b = direction(&alice, &bob, markers, options.audio_file.is_none());
    let b_to_a = direction(&bob, &alice, markers, options.audio_file.is_none());
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
    })
}

fn both_max(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    Some(a?.max(b?))
}

/// The figures of `sender` → `receiver`.
fn direction(sender: &Side, receiver: &Side, markers: bool, beeps: bool) -> Direction {
    let rx = receiver.last_stats().unwrap_or_default();
    let tx = sender.last_stats().unwrap_or_default();
    let video = receiver.video();
    let seconds = video.span_seconds().unwrap_or(0.0);
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
        candidate_type: rx.candidate_type,
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
    if d.freezes > 0 {
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

/// A table row: its label and how to render one direction's cell.
type TableRow = (&'static str, Box<dyn Fn(&Direction) -> String>);

/// The report as a readable table.
pub fn render_table(r: &LoopbackReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    let _ = writeln!(
        out,
        "Confab loopback call: {}",
        if r.ok { "OK" } else { "FAILED" }
    );
    for f in &r.failures {
        let _ = writeln!(out, "  failure: {f}");
    }
    let _ = writeln!(out, "measured {:.1} s", r.seconds);
    let _ = writeln!(
        out,
        "setup (ms from both joined): connected {}  first video {}  first audio {}",
        opt(r.setup_ms.connected),
        opt(r.setup_ms.first_video_frame),
        opt(r.setup_ms.first_audio)
    );
    let _ = writeln!(out, "{:<28}{:>16}{:>16}", "", "alice → bob", "bob → alice");
    let rows: Vec<TableRow> = vec![
        (
            "frames sent / received",
            Box::new(|d| format!("{}/{}", d.frames_sent, d.frames_received)),
        ),
        ("fps", Box::new(|d| format!("{:.1}", d.fps))),
        (
            "resolution",
            Box::new(|d| d.resolution.clone().unwrap_or_else(|| "-".into())),
        ),
        ("video kbps", Box::new(|d| format!("{:.0}", d.video_kbps))),
        ("audio kbps", Box::new(|d| format!("{:.0}", d.audio_kbps))),
        (
            "latency p50/p95/p99 ms",
            Box::new(|d| {
                d.latency_ms.map_or("-".into(), |p| {
                    format!("{:.1}/{:.1}/{:.1}", p.p50, p.p95, p.p99)
                })
            }),
        ),
        (
            "latency max ms",
            Box::new(|d| d.latency_ms.map_or("-".into(), |p| format!("{:.1}", p.max))),
        ),
        (
            "audio latency p50/p95 ms",
            Box::new(|d| {
                d.audio_latency_ms
                    .map_or("-".into(), |p| format!("{:.1}/{:.1}", p.p50, p.p95))
            }),
        ),
        (
            "freezes (longest ms)",
            Box::new(|d| format!("{} ({:.0})", d.freezes, d.longest_freeze_ms)),
        ),
        (
            "corrupt / out of order",
            Box::new(|d| format!("{}/{}", d.corrupt_frames, d.out_of_order_frames)),
        ),
        (
            "decode errors / awaiting IDR",
            Box::new(|d| format!("{}/{}", d.decode_errors, d.frames_skipped_awaiting_keyframe)),
        ),
        (
            "dropped: decoder / consumer",
            Box::new(|d| {
                format!(
                    "{}/{}",
                    d.frames_dropped_decoder_behind, d.frames_dropped_consumer_slow
                )
            }),
        ),
        ("packets lost", Box::new(|d| d.packets_lost.to_string())),
        (
            "nacks / plis",
            Box::new(|d| format!("{}/{}", d.nacks, d.plis)),
        ),
        (
            "rtt ms",
            Box::new(|d| d.rtt_ms.map_or("-".into(), |v| format!("{v:.2}"))),
        ),
        (
            "encode / decode ms/frame",
            Box::new(|d| format!("{:.2}/{:.2}", d.encode_ms_per_frame, d.decode_ms_per_frame)),
        ),
        (
            "bandwidth estimate kbps",
            Box::new(|d| format!("{:.0}", d.bandwidth_estimate_kbps)),
        ),
        (
            "candidate",
            Box::new(|d| d.candidate_type.clone().unwrap_or_else(|| "-".into())),
        ),
    ];
    for (label, f) in rows {
        let _ = writeln!(out, "{label:<28}{:>16}{:>16}", f(&r.a_to_b), f(&r.b_to_a));
    }
    let _ = writeln!(
        out,
        "process: {:.0} % of one core, peak RSS {:.0} MiB",
        r.process.cpu_percent_of_one_core, r.process.peak_rss_mb
    );
    let _ = writeln!(
        out,
        "verification codes: {}",
        r.verification_codes.join(" / ")
    );
    out
}
