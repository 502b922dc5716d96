//! The loopback report: what one measured call found ([`LoopbackReport`] and its parts) and
//! how it is shown, as JSON (`confab loopback --json`, through `Serialize`) or as a readable
//! table ([`render_table`]).
//!
//! Contract: plain data, filled in by [`super::run`]; field names are the JSON keys, so renaming
//! one changes the `--json` output. Rendering only reads the report.

use confab_engine::measure::Percentiles;
use confab_engine::netsim::{LinkCounters, NetworkSpec};
use serde::Serialize;

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
    /// The same over the call after its first [`super::window::ADAPTATION`] (5 s): what a rate
    /// limit leaves once the sender has had the time it is given to fit it; at call start the
    /// queue the start bitrate built dominates `latency_ms`'s p95.
    pub latency_after_adaptation_ms: Option<Percentiles>,
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
    /// Milliseconds of the call with no new picture for more than three frame intervals
    /// (each such gap counted whole).
    pub frozen_ms_total: f64,
    /// `frozen_ms_total` as a share of the call (0..=1).
    pub freeze_ratio: f64,
    /// 10th percentile of the pictures decoded in each second of the call (its worst seconds).
    pub fps_p10: Option<f64>,
    /// Times the decoded picture size changed.
    pub resolution_changes: u64,
    /// Packets the sender retransmitted that the receiver got (after its NACKs).
    pub retransmitted_packets: u64,
    /// Lost packets the receiver rebuilt from forward error correction.
    pub fec_recovered: u64,
    /// Milliseconds of audio the receiver had to conceal.
    pub audio_concealed_ms: f64,
    /// `audio_concealed_ms` as a share of the audio played (0..=1).
    pub audio_concealed_ratio: f64,
    /// Beeps the sender sent during the call (`beeps_heard` counts those heard).
    pub beeps_sent: usize,
    /// The sender's bandwidth estimate toward the receiver, one value per second of the call
    /// (the last statistics report in that second; the one before when a second had none).
    pub bandwidth_estimate_kbps_per_second: Vec<f64>,
    /// With `--network … outage=…`: how long after the path came back video and audio did
    /// (the slowest over the outages; `null` inside if one never came back).
    pub recovery_ms: Option<Recovery>,
    /// With `--screen-share`, in the sharer's direction: the shared screen's figures.
    pub screen: Option<ScreenFigures>,
}

/// The shared screen in one direction (`--screen-share`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScreenFigures {
    /// Screen pictures the sender encoded.
    pub frames_sent: u64,
    /// Screen pictures the receiver decoded.
    pub frames_received: u64,
    /// Decoded screen pictures per second.
    pub fps: f64,
    /// Decoded screen size, `"WxH"`.
    pub resolution: Option<String>,
    /// Capture → decoded latency of the screen (from the synthetic screen's markers).
    pub latency_ms: Option<Percentiles>,
    /// Received screen bitrate.
    pub kbps: f64,
    /// Sender's mean screen encode time.
    pub encode_ms_per_frame: f64,
    /// Screen access units the receiver's decoder rejected.
    pub decode_errors: u64,
    /// Screen pictures that decoded corrupt (marker unreadable).
    pub corrupt_frames: u64,
    /// Screen pictures whose frame number did not increase.
    pub out_of_order_frames: u64,
    /// Longest gap between screen pictures.
    pub longest_gap_ms: f64,
}

/// Time from the path coming back after an outage to media arriving again.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Recovery {
    /// Path back → first picture decoded after it.
    pub video: Option<f64>,
    /// Path back → first beep heard after it. Beeps come every 500 ms, so this includes up to
    /// 500 ms of waiting for the next beep to be sent.
    pub audio: Option<f64>,
}

/// The simulated network of a `--network` run: the spec as given, resolved to its parameters
/// per direction (a profile expanded), its outages and the seed that replays it.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkFigures {
    /// The parsed spec: `spec` (as given), `profile`, `a_to_b`, `b_to_a`, `outages`.
    #[serde(flatten)]
    pub resolved: NetworkSpec,
    /// The random seed (`--seed` replays the same decisions).
    pub seed: u64,
}

/// What the network simulator did, per direction.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SimulatorFigures {
    /// Alice → bob.
    pub a_to_b: LinkCounters,
    /// Bob → alice.
    pub b_to_a: LinkCounters,
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
    /// The simulated network (`--network`), or `null` for a clean one.
    pub network: Option<NetworkFigures>,
    /// What the simulator forwarded and dropped, or `null` without `--network`.
    pub simulator: Option<SimulatorFigures>,
}

/// A table row: its label and how to render one direction's cell.
type TableRow = (&'static str, Box<dyn Fn(&Direction) -> String>);
/// How to render one direction's shared-screen cell.
type ScreenCell = Box<dyn Fn(&ScreenFigures) -> String>;

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
    if let (Some(n), Some(sim)) = (&r.network, &r.simulator) {
        let _ = writeln!(
            out,
            "network: {} (profile {}, seed {})",
            n.resolved.spec,
            n.resolved.profile.unwrap_or("-"),
            n.seed
        );
        for (label, c) in [("alice → bob", &sim.a_to_b), ("bob → alice", &sim.b_to_a)] {
            let _ = writeln!(
                out,
                "  {label}: forwarded {} ({:.1} MB), dropped: loss {}, queue {}, outage {}",
                c.forwarded_packets,
                c.forwarded_bytes as f64 / 1e6,
                c.dropped_loss,
                c.dropped_queue,
                c.dropped_outage
            );
        }
    }
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
            "latency p95 after 5 s ms",
            Box::new(|d| {
                d.latency_after_adaptation_ms
                    .map_or("-".into(), |p| format!("{:.1}", p.p95))
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
        (
            "frozen ms (share)",
            Box::new(|d| format!("{:.0} ({:.1}%)", d.frozen_ms_total, d.freeze_ratio * 100.0)),
        ),
        (
            "fps p10 / size changes",
            Box::new(|d| format!("{}/{}", opt_f(d.fps_p10, 0), d.resolution_changes)),
        ),
        (
            "retransmitted / FEC",
            Box::new(|d| format!("{}/{}", d.retransmitted_packets, d.fec_recovered)),
        ),
        (
            "audio concealed ms (share)",
            Box::new(|d| {
                format!(
                    "{:.0} ({:.1}%)",
                    d.audio_concealed_ms,
                    d.audio_concealed_ratio * 100.0
                )
            }),
        ),
        (
            "beeps heard / sent",
            Box::new(|d| format!("{}/{}", d.beeps_heard, d.beeps_sent)),
        ),
        (
            "estimate kbps min/med/max",
            Box::new(|d| spread(&d.bandwidth_estimate_kbps_per_second)),
        ),
    ];
    for (label, f) in rows {
        let _ = writeln!(out, "{label:<28}{:>16}{:>16}", f(&r.a_to_b), f(&r.b_to_a));
    }
    if r.a_to_b.screen.is_some() || r.b_to_a.screen.is_some() {
        let screen_rows: Vec<(&str, ScreenCell)> = vec![
            (
                "screen frames sent / recv",
                Box::new(|s| format!("{}/{}", s.frames_sent, s.frames_received)),
            ),
            ("screen fps", Box::new(|s| format!("{:.1}", s.fps))),
            (
                "screen resolution",
                Box::new(|s| s.resolution.clone().unwrap_or_else(|| "-".into())),
            ),
            ("screen kbps", Box::new(|s| format!("{:.0}", s.kbps))),
            (
                "screen latency p50/p95 ms",
                Box::new(|s| {
                    s.latency_ms
                        .map_or("-".into(), |p| format!("{:.1}/{:.1}", p.p50, p.p95))
                }),
            ),
            (
                "screen encode ms/frame",
                Box::new(|s| format!("{:.2}", s.encode_ms_per_frame)),
            ),
            (
                "screen longest gap ms",
                Box::new(|s| format!("{:.0}", s.longest_gap_ms)),
            ),
        ];
        for (label, f) in screen_rows {
            let cell = |d: &Direction| d.screen.as_ref().map_or("-".into(), &f);
            let _ = writeln!(
                out,
                "{label:<28}{:>16}{:>16}",
                cell(&r.a_to_b),
                cell(&r.b_to_a)
            );
        }
    }
    if r.a_to_b.recovery_ms.is_some() || r.b_to_a.recovery_ms.is_some() {
        let recovery = |d: &Direction| {
            d.recovery_ms.map_or("-".into(), |rec| {
                format!("{}/{}", opt_f(rec.video, 0), opt_f(rec.audio, 0))
            })
        };
        let _ = writeln!(
            out,
            "{:<28}{:>16}{:>16}",
            "recovery video/audio ms",
            recovery(&r.a_to_b),
            recovery(&r.b_to_a)
        );
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

/// `v` with `decimals`, or `-`.
fn opt_f(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// `min/median/max` of a series, or `-` when empty.
fn spread(v: &[f64]) -> String {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match (s.first(), s.get(s.len() / 2), s.last()) {
        (Some(min), Some(med), Some(max)) => format!("{min:.0}/{med:.0}/{max:.0}"),
        _ => "-".into(),
    }
}
