//! `confab join URL ROOM --headless`: one engine joins a room on any signaling server, sends
//! synthetic (or file) media, and reports what it received from each participant. The building
//! block for tests against other peers (browsers, other machines).
//!
//! With `--chat TEXT` it sends one chat message as soon as the first participant's chat channel
//! is open (known from that participant's `media` message, which every Confab client sends when
//! the channel opens). The report counts the audio it played out (decoded, and audible), so a
//! test can tell real sound from silence.
//!
//! With `--share-screen [MONITOR]` it shares a screen of `$DISPLAY` (or the synthetic one) once
//! in the room; the report says how that went (`screen_share`) and, per participant, whether it
//! shares and how many of its screen's pictures decoded. With `--snapshot DIR` the last picture
//! of every remote track is written there as PNG at exit (`src/snapshot.rs`).
//!
//! Latency across processes: our own markers are on this process's media clock, so the report
//! gives that clock's offset to the wall clock (`media_clock_offset_us`), which lets a receiver
//! on the same machine (the web client's marker probe) turn them into capture→render latency.
//! With `--wall-clock-markers` the other participants' test patterns are taken to carry
//! wall-clock capture times (the web client's "Test pattern" camera does), and the report gives
//! capture→decoded latency for each of them.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use confab::snapshot::Snapshot;
use confab_engine::devices::DeviceNotice;
use confab_engine::measure::{Percentiles, ProcessMeter, VideoAnalyzer};
use confab_engine::media::{AudioFrame, CaptureTime, I420Frame};
use confab_engine::media::{NullSink, read_marker};
use confab_engine::observer::{CallObserver, FrameSink};
use confab_engine::{
    AudioInput, AudioOutput, Engine, EngineCommand, EngineConfig, MediaProbe, ScreenInput,
    ScreenShareEnd, ScreenShareState, VideoFrameEvent, VideoInput, VideoRole, VideoSettings,
};
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
    /// Microphone id (`default` for the system's) to send instead of synthetic audio.
    pub microphone: Option<String>,
    /// Speaker id (`default` for the system's) to play the others on.
    pub speaker: Option<String>,
    pub seconds: f64,
    pub resolution: (u32, u32),
    pub bind: IpAddr,
    pub json: bool,
    pub ice_servers: Vec<signaling_client::IceServer>,
    pub relay_only: bool,
    /// Chat message to send once the first participant's chat channel is open.
    pub chat: Option<String>,
    /// The others' frame markers carry wall-clock capture times: report latency from them.
    pub wall_clock_markers: bool,
    /// Share this screen once in the room (`--share-screen`).
    pub share_screen: Option<ScreenInput>,
    /// Write the last picture of every remote track here at exit (`--snapshot`).
    pub snapshot_dir: Option<PathBuf>,
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
    /// Pictures without an intact Confab frame marker in the middle of a marked stream (see
    /// [`MarkerRuns`]); zero for senders that embed no markers (a camera).
    corrupt_frames: u64,
    /// Pictures from a marker-embedding sender whose frame number did not increase.
    out_of_order_frames: u64,
    /// Its access units our H.264 decoder rejected (corrupt or undecodable data).
    decode_errors: u64,
    /// Its access units not decoded while waiting for a keyframe (joined mid-GOP, or after a
    /// loss or one of the drops below).
    frames_skipped_awaiting_keyframe: u64,
    /// Its access units dropped because our decoder was behind (local CPU load).
    frames_dropped_decoder_behind: u64,
    /// Its decoded pictures dropped because this process's loop did not take them in time.
    frames_dropped_consumer_slow: u64,
    /// False when we share no video codec with it (a browser without H.264): audio and chat
    /// only, and receiving no video from it is then no failure.
    video_negotiated: bool,
    freezes: u64,
    longest_freeze_ms: f64,
    packets_lost: i64,
    rtt_ms: Option<f64>,
    candidate_type: Option<String>,
    chat_received: Vec<String>,
    /// Its microphone and camera as it last announced them (`media` message), if it did.
    remote_mic: Option<bool>,
    remote_camera: Option<bool>,
    /// From our entering the room to its connection being up, and to its first decoded picture.
    connected_ms: Option<f64>,
    first_frame_ms: Option<f64>,
    /// Capture→decoded latency from its wall-clock markers (`--wall-clock-markers` only).
    latency_ms: Option<Percentiles>,
    /// It shares its screen, as it last announced.
    sharing: bool,
    /// Pictures of its shared screen decoded.
    screen_frames_received: u64,
    screen_fps: f64,
    screen_resolution: Option<String>,
}

#[derive(Debug, Default, Serialize)]
struct JoinReport {
    ok: bool,
    failure: Option<String>,
    /// Why the call ended before `--seconds` were up, if it did (the host ended it for
    /// everyone: `{"kind":"ended_for_everyone",…}`); `null` when we left on time.
    ended: Option<confab_engine::EndReason>,
    seconds: f64,
    id: Option<String>,
    participants: Vec<RemoteReport>,
    frames_sent: u64,
    /// 20 ms frames of remote audio played out (decoded or concealed), all participants mixed.
    audio_frames_played: u64,
    /// Of those, frames louder than -50 dBFS: sound, not silence or comfort noise.
    audio_frames_audible: u64,
    /// The chat message given with `--chat`, once sent.
    chat_sent: Option<String>,
    /// What happened to the microphone and speaker (`--microphone`, `--speaker`), in order.
    device_notices: Vec<DeviceNotice>,
    /// How old our audio is when it reaches the Opus encoder: from the first sample of each
    /// 20 ms chunk leaving the device to the encoder, so it includes the 20 ms chunk itself,
    /// framing, the microphone's buffering as far as we can see it, and audio processing.
    audio_capture_to_encoder_ms: Option<Percentiles>,
    /// Wall-clock microseconds minus this process's media-clock microseconds (what our frame
    /// markers carry): a receiver on this machine adds it to read our markers as wall time.
    media_clock_offset_us: i64,
    /// Our screen share (`--share-screen`), as last reported.
    screen_share: Option<ScreenShareState>,
    /// The files `--snapshot` wrote.
    snapshots: Vec<PathBuf>,
    process: Process,
}

/// Pictures whose marker could not be read, counted as corrupt only between two that could.
///
/// A sender may switch sources mid-call (a browser from its camera to its test pattern, or
/// back): pictures before the first marker, after the last one, and runs longer than
/// [`SOURCE_SWITCH_RUN`] are another source, not damage.
#[derive(Debug, Default)]
struct MarkerRuns {
    seen_marker: bool,
    pending: u64,
    corrupt: u64,
}

/// A run of unmarked pictures this long (1 s at 30 fps) means the source has no markers.
const SOURCE_SWITCH_RUN: u64 = 30;

impl MarkerRuns {
    fn push(&mut self, marked: bool) {
        if marked {
            if self.pending <= SOURCE_SWITCH_RUN {
                self.corrupt += self.pending;
            }
            self.pending = 0;
            self.seen_marker = true;
        } else if self.seen_marker {
            self.pending += 1;
        }
    }
}

/// Microseconds since the Unix epoch.
fn wall_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Wall-clock milliseconds from a marker's capture time (low 32 bits of wall-clock µs) to
/// `decoded_wall_us`; `None` if the marker is not plausibly from the last minute.
fn marker_latency_ms(capture_low: u32, decoded_wall_us: i64) -> Option<f64> {
    // Truncation intended: markers carry the low 32 bits.
    let delta = (decoded_wall_us as u32).wrapping_sub(capture_low);
    (delta < 60_000_000).then(|| f64::from(delta) / 1000.0)
}

/// Counts the remote audio the playout thread plays, and how old our own audio is when it
/// reaches the encoder.
#[derive(Default)]
struct AudioCounter {
    played: AtomicU64,
    audible: AtomicU64,
    /// Age of each 20 ms chunk's first sample at the encoder, ms.
    capture_to_encoder_ms: std::sync::Mutex<Vec<f64>>,
}

/// RMS above this (-50 dBFS) counts as audible.
const AUDIBLE_RMS: f32 = 0.003_162;

impl MediaProbe for AudioCounter {
    fn audio_captured(&self, frame: &AudioFrame) {
        let age = CaptureTime::now().saturating_since(frame.capture_time);
        if let Ok(mut ages) = self.capture_to_encoder_ms.lock() {
            ages.push(age.as_secs_f64() * 1000.0);
        }
    }

    fn audio_played(&self, samples: &[f32], _at: CaptureTime, decoded: bool) {
        if !decoded || samples.is_empty() {
            return;
        }
        self.played.fetch_add(1, Ordering::Relaxed);
        let rms = (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt();
        if rms > AUDIBLE_RMS {
            self.audible.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Debug, Default, Serialize)]
struct Process {
    cpu_percent_of_one_core: f64,
    peak_rss_mb: f64,
}

/// What the pictures from one participant showed.
#[derive(Default)]
struct RemotePictures {
    video: VideoAnalyzer,
    wall_latencies_ms: Vec<f64>,
    markers: MarkerRuns,
}

/// Reads every decoded camera picture's marker, per participant; counts shared screens; keeps
/// the last picture of each track when snapshots are wanted.
struct Pictures {
    wall_clock_markers: bool,
    media_clock_offset_us: i64,
    from: BTreeMap<String, RemotePictures>,
    screens: BTreeMap<String, VideoAnalyzer>,
    /// The last picture of each (participant, track), with `--snapshot`.
    last: Option<BTreeMap<(String, VideoRole), I420Frame>>,
}

impl FrameSink for Pictures {
    fn frame(&mut self, from: &str, frame: &VideoFrameEvent) {
        if let Some(last) = &mut self.last {
            last.insert((from.to_owned(), frame.role), frame.frame.clone());
        }
        if frame.role == VideoRole::Screen {
            let markers = read_marker(&frame.frame).is_ok();
            self.screens.entry(from.to_owned()).or_default().push(
                &frame.frame,
                frame.decoded_at,
                markers,
            );
            return;
        }
        let r = self.from.entry(from.to_owned()).or_default();
        r.video.push(&frame.frame, frame.decoded_at, true);
        let marker = read_marker(&frame.frame).ok();
        r.markers.push(marker.is_some());
        if self.wall_clock_markers
            && let Some(marker) = marker
        {
            let decoded = i64::try_from(frame.decoded_at.as_micros()).unwrap_or(i64::MAX)
                + self.media_clock_offset_us;
            if let Some(ms) = marker_latency_ms(marker.capture_time_low, decoded) {
                r.wall_latencies_ms.push(ms);
            }
        }
    }
}

/// Milliseconds from `start` to `t`.
fn ms_after(start: Option<Instant>, t: Option<Instant>) -> Option<f64> {
    Some(t?.saturating_duration_since(start?).as_secs_f64() * 1000.0)
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
    config.audio_input = match (&o.microphone, &o.audio_file) {
        (Some(id), _) => AudioInput::Microphone(id.clone()),
        (None, Some(file)) => AudioInput::WavFile(file.clone()),
        (None, None) => AudioInput::Synthetic,
    };
    config.bind_addrs = vec![SocketAddr::new(o.bind, 0)];
    config.extra_ice_servers = o.ice_servers.clone();
    config.relay_only = o.relay_only;
    config.preview = false;
    let audio = Arc::new(AudioCounter::default());
    config.probe = Some(Arc::clone(&audio) as Arc<dyn MediaProbe>);
    let engine = Engine::start(config, Box::new(NullSink), Arc::new(|| {}))?;
    let media_clock_offset_us =
        wall_micros() - i64::try_from(CaptureTime::now().as_micros()).unwrap_or(i64::MAX);
    let pictures = Pictures {
        wall_clock_markers: o.wall_clock_markers,
        media_clock_offset_us,
        from: BTreeMap::new(),
        screens: BTreeMap::new(),
        last: o.snapshot_dir.as_ref().map(|_| BTreeMap::new()),
    };
    let mut observer = CallObserver::with_frames(o.name.clone(), engine, pictures);
    if let Some(id) = &o.speaker {
        observer.send(EngineCommand::SelectSpeaker(AudioOutput::Speaker(
            id.clone(),
        )))?;
    }
    observer.send(EngineCommand::Join {
        url: o.url.clone(),
        room: o.room.clone(),
        password: o.password.clone(),
    })?;
    let meter = ProcessMeter::start();
    let mut failure = None;
    let deadline_to_join = Instant::now() + Duration::from_secs(15);
    let mut chat_sent = None;
    let mut share = o.share_screen.clone();
    loop {
        let wait = match observer.view.in_call_at {
            Some(t) => Duration::from_secs_f64(o.seconds).saturating_sub(t.elapsed()),
            None => deadline_to_join.saturating_duration_since(Instant::now()),
        };
        observer.pump(wait.min(Duration::from_millis(100)));
        // In the room: share the screen if asked (tracks reach everyone, now and later).
        if observer.view.in_call_at.is_some()
            && let Some(input) = share.take()
        {
            observer.send(EngineCommand::ShareScreen(Some(input)))?;
        }
        let view = &observer.view;
        // A participant's chat channel is open (its `media` message came): say what we were
        // asked to say, once.
        if chat_sent.is_none()
            && let Some(text) = &o.chat
            && view.participants.values().any(|p| p.media.is_some())
        {
            observer.send(EngineCommand::SendChat(text.clone()))?;
            chat_sent = Some(text.clone());
        }
        let view = &observer.view;
        if let (Some(reason), None) = (&view.ended, view.in_call_at) {
            failure = Some(reason.to_string());
            break;
        }
        // Ended by someone else (the host ended it for everyone): report what we got so far.
        if view.ended.is_some() {
            break;
        }
        match view.in_call_at {
            Some(t) if t.elapsed().as_secs_f64() >= o.seconds => break,
            None if Instant::now() > deadline_to_join => {
                failure = Some("did not get into the room within 15 s".into());
                break;
            }
            _ => {}
        }
        if view.stopped {
            failure = Some("the engine stopped".into());
            break;
        }
    }
    let ended = observer
        .view
        .ended
        .clone()
        .filter(|_| observer.view.in_call_at.is_some());
    let _ = observer.send(EngineCommand::Leave);
    let started = observer.view.in_call_at;
    let seconds = started.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let process = Process {
        cpu_percent_of_one_core: meter.cpu_percent_of_one_core(),
        peak_rss_mb: ProcessMeter::peak_rss_mb(),
    };
    let view = std::mem::take(&mut observer.view);
    let mut pictures = std::mem::take(&mut observer.frames.from);
    let mut screens = std::mem::take(&mut observer.frames.screens);
    let last = observer.frames.last.take();
    observer.shutdown();
    let mut snapshots = Vec::new();
    if let (Some(dir), Some(last)) = (&o.snapshot_dir, &last) {
        let list: Vec<Snapshot<'_>> = last
            .iter()
            .map(|((id, role), frame)| Snapshot {
                name: view.participant(id).map_or("", |p| p.name.as_str()),
                id,
                role: *role,
                frame,
            })
            .collect();
        let (written, errors) = confab::snapshot::write_all(dir, &list);
        for e in &errors {
            eprintln!("{e}");
        }
        if failure.is_none()
            && let Some(e) = errors.first()
        {
            failure = Some(e.to_string());
        }
        snapshots = written;
    }
    if failure.is_none()
        && let Some(ScreenShareState::Ended {
            reason: ScreenShareEnd::SourceFailed { detail },
        }) = &view.screen_share
    {
        failure = Some(format!("could not share the screen: {detail}"));
    }
    let my_id = view.id.clone();

    let participants: Vec<RemoteReport> = view
        .participants
        .iter()
        .map(|(id, p)| {
            let r = pictures.remove(id).unwrap_or_default();
            let screen = screens.remove(id).unwrap_or_default();
            let s = p.stats.clone().unwrap_or_default();
            let span = r.video.span_seconds().unwrap_or(seconds.max(1.0));
            // A sender without Confab's markers (a browser camera) fails every read: then those
            // reads are not errors. Media-clock latency is not reported: marker times are on the
            // sender's process-local clock (`confab loopback` measures it, with both peers in one
            // process); wall-clock markers are (`--wall-clock-markers`).
            let has_markers = r.markers.seen_marker;
            let chats = view
                .remote_chats()
                .filter(|c| c.from == *id)
                .map(|c| c.text.clone())
                .collect();
            RemoteReport {
                id: id.clone(),
                name: p.name.clone(),
                connected: p.connected_at.is_some(),
                verification_code: p.code.clone(),
                frames_received: r.video.frames,
                fps: r.video.fps(),
                resolution: r.video.resolution.map(|(w, h)| format!("{w}x{h}")),
                video_kbps: s.video_bytes_received as f64 * 8.0 / 1000.0 / span,
                audio_kbps: s.audio_bytes_received as f64 * 8.0 / 1000.0 / span,
                corrupt_frames: r.markers.corrupt,
                out_of_order_frames: if has_markers { r.video.out_of_order } else { 0 },
                decode_errors: s.decode_errors,
                frames_skipped_awaiting_keyframe: s.frames_skipped_awaiting_keyframe,
                frames_dropped_decoder_behind: s.frames_dropped_decoder_behind,
                frames_dropped_consumer_slow: s.frames_dropped_consumer_slow,
                video_negotiated: s.video_negotiated,
                freezes: r.video.freezes,
                longest_freeze_ms: r.video.longest_gap_ms,
                packets_lost: s.packets_lost,
                rtt_ms: s.rtt_ms,
                candidate_type: s.candidate_type,
                chat_received: chats,
                remote_mic: p.media.map(|m| m.0),
                remote_camera: p.media.map(|m| m.1),
                connected_ms: ms_after(started, p.connected_at),
                first_frame_ms: ms_after(started, p.first_frame_at),
                latency_ms: Percentiles::of(&r.wall_latencies_ms),
                sharing: p.sharing,
                screen_frames_received: screen.frames,
                screen_fps: screen.fps(),
                screen_resolution: screen.resolution.map(|(w, h)| format!("{w}x{h}")),
            }
        })
        .collect();
    if failure.is_none() {
        if participants.is_empty() {
            failure = Some("nobody else was in the room".into());
        } else if let Some(p) = participants
            .iter()
            .find(|p| p.video_negotiated && p.frames_received == 0)
        {
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
        ended,
        seconds,
        id: my_id,
        participants,
        frames_sent: view.frames_sent,
        audio_frames_played: audio.played.load(Ordering::Relaxed),
        audio_frames_audible: audio.audible.load(Ordering::Relaxed),
        chat_sent,
        device_notices: view.device_notices,
        audio_capture_to_encoder_ms: audio
            .capture_to_encoder_ms
            .lock()
            .ok()
            .and_then(|ages| Percentiles::of(&ages)),
        media_clock_offset_us,
        screen_share: view.screen_share,
        snapshots,
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
        if let Some(reason) = &report.ended {
            println!("  the call ended early: {reason}");
        }
        for n in &report.device_notices {
            println!("  {}", n.message);
        }
        for p in &report.participants {
            println!(
                "  {} ({}): {} frames, {:.1} fps, {}, video {:.0} kbps, audio {:.0} kbps, code {}",
                p.name,
                p.id,
                p.frames_received,
                p.fps,
                if p.video_negotiated {
                    p.resolution.as_deref().unwrap_or("-")
                } else {
                    "no common video codec"
                },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmarked_pictures_count_as_corrupt_only_inside_a_marked_stream() {
        let mut runs = MarkerRuns::default();
        // A camera first, then the test pattern with two damaged pictures, then a camera again.
        for marked in [false; 40]
            .into_iter()
            .chain([true, true, false, false, true, true])
            .chain([false; 100])
        {
            runs.push(marked);
        }
        assert_eq!(runs.corrupt, 2);
        // Back to the pattern after a long camera stretch: a source switch, not damage.
        runs.push(true);
        assert_eq!(runs.corrupt, 2);
    }

    #[test]
    fn marker_latency_wraps_with_the_32_bit_clock() {
        assert_eq!(marker_latency_ms(1_000, 26_000), Some(25.0));
        // The low 32 bits wrapped between capture and decode.
        let decoded = (1_i64 << 32) + 5_000;
        assert_eq!(marker_latency_ms(u32::MAX - 4_999, decoded), Some(10.0));
        // A marker "from the future" (another clock) is not a latency.
        assert_eq!(marker_latency_ms(30_000, 20_000), None);
    }
}
