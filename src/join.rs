//! `confab join URL ROOM --headless`: one engine joins a room on any signaling server, sends
//! synthetic (or file) media, and reports what it received from each participant. The building
//! block for tests against other peers (browsers, other machines).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use confab::engine::incoming::NullSink;
use confab::engine::{
    AudioInput, CallState, Engine, EngineCommand, EngineConfig, EngineEvent, LinkState,
    ParticipantStats, VideoInput, VideoSettings,
};
use confab::measure::{ProcessMeter, VideoAnalyzer};
use serde::Serialize;

/// What `confab join` was asked to do.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    pub url: String,
    pub room: String,
    pub name: String,
    pub password: Option<String>,
    pub video_file: Option<PathBuf>,
    pub audio_file: Option<PathBuf>,
    pub seconds: f64,
    pub resolution: (u32, u32),
    pub bind: IpAddr,
    pub json: bool,
    pub ice_servers: Vec<signaling_client::IceServer>,
    pub relay_only: bool,
}

#[derive(Debug, Default, Serialize)]
struct RemoteReport {
    id: String,
    name: String,
    connected: bool,
    verification_code: Option<String>,
    frames_received: u64,
    fps: f64,
    resolution: Option<String>,
    video_kbps: f64,
    audio_kbps: f64,
    /// Pictures whose Confab frame marker failed its checksum (only counted when the sender
    /// embeds markers, i.e. another Confab with synthetic video).
    corrupt_frames: u64,
    /// Pictures from a marker-embedding sender whose frame number did not increase.
    out_of_order_frames: u64,
    decode_errors: u64,
    freezes: u64,
    longest_freeze_ms: f64,
    packets_lost: i64,
    rtt_ms: Option<f64>,
    candidate_type: Option<String>,
    chat_received: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
struct JoinReport {
    ok: bool,
    failure: Option<String>,
    seconds: f64,
    id: Option<String>,
    participants: Vec<RemoteReport>,
    frames_sent: u64,
    process: Process,
}

#[derive(Debug, Default, Serialize)]
struct Process {
    cpu_percent_of_one_core: f64,
    peak_rss_mb: f64,
}

#[derive(Default)]
struct Remote {
    name: String,
    connected: bool,
    code: Option<String>,
    video: VideoAnalyzer,
    stats: Option<ParticipantStats>,
    chats: Vec<String>,
}

/// Joins, runs for the requested time, leaves, prints the report.
pub fn run(o: &JoinOptions) -> Result<()> {
    let mut config = EngineConfig::new(o.name.clone());
    config.video = VideoSettings {
        width: o.resolution.0,
        height: o.resolution.1,
        fps: 30,
        start_kbps: 1000,
        min_kbps: 100,
        max_kbps: 2000,
    };
    config.video_input = o
        .video_file
        .clone()
        .map_or(VideoInput::Synthetic, VideoInput::Y4mFile);
    config.audio_input = o
        .audio_file
        .clone()
        .map_or(AudioInput::Synthetic, AudioInput::WavFile);
    config.bind_addrs = vec![SocketAddr::new(o.bind, 0)];
    config.extra_ice_servers = o.ice_servers.clone();
    config.relay_only = o.relay_only;
    config.preview = false;
    let engine = Engine::start(config, Box::new(NullSink), Arc::new(|| {}))?;
    engine.send(EngineCommand::Join {
        url: o.url.clone(),
        room: o.room.clone(),
        password: o.password.clone(),
    })?;
    let meter = ProcessMeter::start();
    let mut remotes: BTreeMap<String, Remote> = BTreeMap::new();
    let mut my_id = None;
    let mut failure = None;
    let mut started: Option<Instant> = None;
    let deadline_to_join = Instant::now() + Duration::from_secs(15);
    let mut frames_sent = 0;
    loop {
        while let Ok(ev) = engine.events().try_recv() {
            match ev {
                EngineEvent::CallState(CallState::InCall { id, .. }) => {
                    my_id = Some(id.to_string());
                    started.get_or_insert_with(Instant::now);
                }
                EngineEvent::CallState(CallState::Ended { reason }) if started.is_none() => {
                    failure = Some(reason);
                }
                EngineEvent::ParticipantJoined { id, name } => {
                    remotes.entry(id.to_string()).or_default().name = name;
                }
                EngineEvent::Link {
                    id,
                    state: LinkState::Connected,
                } => {
                    remotes.entry(id.to_string()).or_default().connected = true;
                }
                EngineEvent::VerificationCode { id, code } => {
                    remotes.entry(id.to_string()).or_default().code = Some(code);
                }
                EngineEvent::Chat { from, text, .. } if Some(from.to_string()) != my_id => {
                    remotes
                        .entry(from.to_string())
                        .or_default()
                        .chats
                        .push(text);
                }
                EngineEvent::Stats(all) => {
                    for s in all {
                        frames_sent = frames_sent.max(s.frames_sent);
                        let id = s.id.clone();
                        remotes.entry(id).or_default().stats = Some(s);
                    }
                }
                EngineEvent::Error(e) => tracing::warn!(error = %e, "engine"),
                _ => {}
            }
        }
        while let Ok(frame) = engine.video().try_recv() {
            if let Some(from) = frame.from {
                let r = remotes.entry(from.to_string()).or_default();
                r.video.push(&frame.frame, frame.decoded_at, true);
            }
        }
        if failure.is_some() {
            break;
        }
        match started {
            Some(t) if t.elapsed().as_secs_f64() >= o.seconds => break,
            None if Instant::now() > deadline_to_join => {
                failure = Some("did not get into the room within 15 s".into());
                break;
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = engine.send(EngineCommand::Leave);
    let seconds = started.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let process = Process {
        cpu_percent_of_one_core: meter.cpu_percent_of_one_core(),
        peak_rss_mb: ProcessMeter::peak_rss_mb(),
    };
    engine.shutdown();

    let participants: Vec<RemoteReport> = remotes
        .into_iter()
        .map(|(id, r)| {
            let s = r.stats.unwrap_or_default();
            let span = r.video.span_seconds().unwrap_or(seconds.max(1.0));
            // A sender without Confab's markers (a browser camera) fails every read: then those
            // reads are not errors. Latency is not reported: marker times are on the sender's
            // process-local clock (`confab loopback` measures it, with both peers in one process).
            let has_markers = r.video.corrupt < r.video.frames;
            RemoteReport {
                id,
                name: r.name,
                connected: r.connected,
                verification_code: r.code,
                frames_received: r.video.frames,
                fps: r.video.fps(),
                resolution: r.video.resolution.map(|(w, h)| format!("{w}x{h}")),
                video_kbps: s.video_bytes_received as f64 * 8.0 / 1000.0 / span,
                audio_kbps: s.audio_bytes_received as f64 * 8.0 / 1000.0 / span,
                corrupt_frames: if has_markers { r.video.corrupt } else { 0 },
                out_of_order_frames: if has_markers { r.video.out_of_order } else { 0 },
                decode_errors: s.frames_dropped,
                freezes: r.video.freezes,
                longest_freeze_ms: r.video.longest_gap_ms,
                packets_lost: s.packets_lost,
                rtt_ms: s.rtt_ms,
                candidate_type: s.candidate_type,
                chat_received: r.chats,
            }
        })
        .collect();
    if failure.is_none() {
        if participants.is_empty() {
            failure = Some("nobody else was in the room".into());
        } else if let Some(p) = participants.iter().find(|p| p.frames_received == 0) {
            failure = Some(format!("received no video from {}", p.name));
        } else if let Some(p) = participants.iter().find(|p| p.audio_kbps <= 0.0) {
            failure = Some(format!("received no audio from {}", p.name));
        } else if let Some(p) = participants.iter().find(|p| p.corrupt_frames > 0) {
            failure = Some(format!(
                "decoded {} corrupt pictures from {}",
                p.corrupt_frames, p.name
            ));
        }
    }
    let report = JoinReport {
        ok: failure.is_none(),
        failure,
        seconds,
        id: my_id,
        participants,
        frames_sent,
        process,
    };
    if o.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "joined as {} for {:.1} s: {}",
            report.id.as_deref().unwrap_or("-"),
            report.seconds,
            if report.ok { "OK" } else { "FAILED" }
        );
        for p in &report.participants {
            println!(
                "  {} ({}): {} frames, {:.1} fps, {}, video {:.0} kbps, audio {:.0} kbps, code {}",
                p.name,
                p.id,
                p.frames_received,
                p.fps,
                p.resolution.as_deref().unwrap_or("-"),
                p.video_kbps,
                p.audio_kbps,
                p.verification_code.as_deref().unwrap_or("-")
            );
        }
    }
    match report.failure {
        Some(f) => bail!("{f}"),
        None => Ok(()),
    }
}
