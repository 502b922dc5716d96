//! The loopback report: what one measured call found ([`LoopbackReport`] and its parts) and
//! how it is shown, as JSON (`confab loopback --json`, through `Serialize`) or as a readable
//! table ([`render_table`]).
//!
//! Contract: plain data, filled in by [`super::run`]; field names are the JSON keys, so renaming
//! one changes the `--json` output. Rendering only reads the report.

use confab_engine::measure::Percentiles;
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
